//! Backtests on a real slice (Capital Bikeshare, the last 24 weeks) and on synthetic series.

use forecast::model::ModelChoice;
use forecast::{
    BacktestConfig, Forecaster, ForecasterConfig, PrepareOptions, Series, TimeWindow, backtest,
    peak_quantiles, prepare,
};

/// Unix seconds of `YYYY-MM-DD HH:MM:SS` read as UTC.
fn parse_time(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().expect("time field");
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

fn bike_slice() -> Series {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bikesharing_slice.csv"
    );
    let mut rdr = csv::Reader::from_path(path).expect("slice csv");
    let pts: Vec<(i64, f64)> = rdr
        .records()
        .map(|r| {
            let r = r.expect("csv record");
            (parse_time(&r[0]), r[1].parse().expect("count"))
        })
        .collect();
    let (s, report) = prepare(&pts, &PrepareOptions::default()).expect("prepare");
    assert_eq!(report.filled, 0);
    assert_eq!(s.step, 3600);
    s
}

fn small_config() -> BacktestConfig {
    let mut cfg = BacktestConfig::hourly();
    cfg.windows = 3;
    cfg.forecaster.inner_windows = 4;
    cfg
}

#[test]
fn time_parser_is_right() {
    assert_eq!(parse_time("1970-01-02 01:00:00"), 90_000);
    assert_eq!(parse_time("2019-09-01 00:00:00"), 1_567_296_000);
}

#[test]
fn auto_matches_or_beats_weekly_naive_on_bikeshare() {
    let s = bike_slice();
    let cfg = small_config();
    let mut seen = 0;
    let auto = backtest(
        &s,
        "dc_bikeshare",
        &cfg,
        &ModelChoice::Auto,
        &[],
        &mut |_, _| seen += 1,
    )
    .unwrap();
    assert_eq!(seen, 3);
    let snaive = ModelChoice::parse("snaive", &[24, 168]).unwrap();
    let naive = backtest(&s, "dc_bikeshare", &cfg, &snaive, &[], &mut |_, _| {}).unwrap();
    let a = &auto.row;
    let b = &naive.row;
    assert!(a.model.starts_with("auto:"), "{}", a.model);
    assert_eq!(a.windows, 3);
    // The weekly naive against itself.
    assert!((b.rel_mase - 1.0).abs() < 1e-9, "{}", b.rel_mase);
    assert!(a.rel_mase < 1.05, "auto {a:?}");
    for r in [a, b] {
        for v in [
            r.mase,
            r.cov80,
            r.cov95,
            r.msis95,
            r.peak_ape,
            r.peak_over_band,
            r.fit_seconds,
        ] {
            assert!(v.is_finite() && v >= 0.0, "{r:?}");
        }
        assert!(r.cov80 <= r.cov95, "{r:?}");
        assert!(r.cov95 > 0.6, "{r:?}");
    }
}

#[test]
fn every_model_runs_the_protocol_on_bikeshare() {
    let s = bike_slice();
    let mut cfg = small_config();
    cfg.windows = 1;
    for name in ["snaive24", "mstl", "mstl_fast", "regression", "ensemble"] {
        let choice = ModelChoice::parse(name, &[24, 168]).unwrap();
        let r = backtest(&s, "b", &cfg, &choice, &[], &mut |_, _| {}).unwrap();
        assert_eq!(r.row.model, name);
        assert!(r.row.mase.is_finite() && r.row.mase < 3.0, "{:?}", r.row);
    }
}

#[test]
fn too_short_series_is_a_clear_error() {
    let s = Series::from_values(0, 3600, (0..500).map(f64::from).collect());
    let err = backtest(
        &s,
        "x",
        &BacktestConfig::hourly(),
        &ModelChoice::Auto,
        &[],
        &mut |_, _| {},
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("too short") && msg.contains("500"), "{msg}");
}

#[test]
fn constant_series_is_a_clear_error() {
    let s = Series::from_values(0, 3600, vec![5.0; 4000]);
    let mut cfg = small_config();
    cfg.windows = 1;
    let err = backtest(
        &s,
        "x",
        &cfg,
        &ModelChoice::parse("snaive", &[24, 168]).unwrap(),
        &[],
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("zero seasonal-naive error"),
        "{err}"
    );
}

#[test]
fn peak_quantiles_of_a_real_forecast_are_ordered_and_above_the_median_path() {
    let s = bike_slice();
    let f = Forecaster::new(
        ForecasterConfig {
            inner_windows: 4,
            ..ForecasterConfig::hourly()
        },
        ModelChoice::Auto,
    )
    .unwrap();
    let out = f.forecast(&s, &[]).unwrap();
    let fc = &out.forecast;
    assert_eq!(out.scores.len(), 3);
    let q = peak_quantiles(fc, 0..168, &[0.5, 0.9, 0.99]).unwrap();
    assert!(q[0] <= q[1] && q[1] <= q[2], "{q:?}");
    let point_peak = fc.point.iter().copied().fold(f64::MIN, f64::max);
    // Errors at the peak are not symmetric around zero in general, but the P99 of the peak
    // must sit above the point forecast's peak and below the max of the pointwise 99.9% bounds
    // plus slack.
    assert!(q[2] > point_peak, "{q:?} vs {point_peak}");
    let hi = fc.interval(0.999).upper;
    let max_hi = hi.iter().copied().fold(f64::MIN, f64::max);
    assert!(q[2] <= max_hi + 1e-9, "{q:?} vs {max_hi}");
}

#[test]
fn masked_synthetic_load_is_not_learned() {
    // A clean daily/weekly pattern; the last week before the origin carries a stress test
    // (x10 for 6 hours). Masked, the forecast stays at organic levels.
    let n = 24 * 7 * 14;
    let y: Vec<f64> = (0..n)
        .map(|i| {
            100.0
                + 30.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin()
                + if (i / 24) % 7 >= 5 { -20.0 } else { 0.0 }
                + ((i * 7919) % 17) as f64 * 0.2
        })
        .collect();
    let mut s = Series::from_values(0, 3600, y.clone());
    let stress = (n - 100)..(n - 94);
    for i in stress.clone() {
        s.values[i] *= 10.0;
    }
    s.mask_windows(&[TimeWindow {
        start: stress.start as i64 * 3600,
        end: stress.end as i64 * 3600,
    }]);
    let f = Forecaster::new(
        ForecasterConfig {
            inner_windows: 3,
            ..ForecasterConfig::hourly()
        },
        ModelChoice::parse("snaive", &[24, 168]).unwrap(),
    )
    .unwrap();
    let fc = f.forecast(&s, &[]).unwrap().forecast;
    let max = fc.point.iter().copied().fold(f64::MIN, f64::max);
    assert!(max < 200.0, "stress test leaked into the forecast: {max}");
}

#[test]
fn auto_drops_a_clearly_worse_candidate_after_the_first_inner_windows() {
    // A weekly pattern the daily naive cannot follow (weekends are a quarter of weekdays).
    let y: Vec<f64> = (0..24 * 7 * 20)
        .map(|i| {
            let day = 10.0 + 5.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin();
            let weekend = if (i / 24) % 7 >= 5 { 0.25 } else { 1.0 };
            day * weekend + 0.1 * ((i * 7919 % 13) as f64 / 13.0)
        })
        .collect();
    let s = Series::from_values(0, 3600, y);
    let f = Forecaster::new(ForecasterConfig::hourly(), ModelChoice::Auto).unwrap();
    let out = f.forecast(&s, &[]).unwrap();
    let by_name = |n: &str| out.scores.iter().find(|c| c.model == n).unwrap();
    let weekly = by_name("snaive168");
    let daily = by_name("snaive24");
    assert_eq!(weekly.windows, 8, "{:?}", out.scores);
    assert!(weekly.mean_mase.is_finite());
    assert_eq!(
        daily.windows,
        forecast::forecaster::RACE_WINDOWS,
        "{:?}",
        out.scores
    );
    assert!(daily.mean_mase.is_infinite(), "{:?}", out.scores);
    assert_ne!(out.forecast.model, "snaive24");
}
