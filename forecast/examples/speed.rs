//! Fit speed and accuracy of one or more models on the hourly series in `../shared/data`, by the
//! benchmark protocol, without the server: a quick loop for work on the models.
//! `crest backtest` (bench/forecast.sh) is the benchmark of record; this example skips the I-94
//! holiday column, so its `i94_traffic` rows can differ slightly.
//!
//! usage: cargo run --release -p forecast --example speed -- [models] [data-dir]

use forecast::{BacktestConfig, ModelChoice, PrepareOptions, backtest, prepare};
use std::error::Error;

struct Input {
    name: &'static str,
    file: &'static str,
    time: &'static str,
    value: &'static str,
    from: Option<&'static str>,
    to: Option<&'static str>,
}

const INPUTS: [Input; 4] = [
    Input {
        name: "dc_bikeshare",
        file: "hourly_bikesharing.csv",
        time: "ts",
        value: "count",
        from: None,
        to: None,
    },
    Input {
        name: "elec_hourly",
        file: "hourly_electricity.csv",
        time: "ts",
        value: "y",
        from: None,
        to: None,
    },
    Input {
        name: "i94_traffic",
        file: "hourly_traffic_volume.csv",
        time: "date_time",
        value: "traffic_volume",
        from: Some("2016-07-01 00:00:00"),
        to: Some("2018-09-30 23:00:00"),
    },
    Input {
        name: "sf_traffic",
        file: "hourly_sf_traffic.csv",
        time: "ts",
        value: "y",
        from: None,
        to: None,
    },
];

fn parse_time(s: &str) -> Result<i64, Box<dyn Error>> {
    Ok(
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")?
            .and_utc()
            .timestamp(),
    )
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let models = args.get(1).map_or("auto", String::as_str);
    let dir = args.get(2).map_or("../shared/data", String::as_str);
    let cfg = BacktestConfig::hourly();
    println!("series,model,mase,rel_mase,cov95,peak_over_band,fit_seconds");
    let mut sums: Vec<(String, f64, f64, f64, f64, usize)> = Vec::new();
    for input in &INPUTS {
        let mut rdr = csv::Reader::from_path(format!("{dir}/{}", input.file))?;
        let headers = rdr.headers()?.clone();
        let col = |name: &str| headers.iter().position(|h| h == name).ok_or("no column");
        let (tc, vc) = (col(input.time)?, col(input.value)?);
        let mut points = Vec::new();
        for rec in rdr.records() {
            let rec = rec?;
            points.push((parse_time(&rec[tc])?, rec[vc].parse::<f64>()?));
        }
        let opts = PrepareOptions {
            from: input.from.map(parse_time).transpose()?,
            to: input.to.map(parse_time).transpose()?,
            ..PrepareOptions::default()
        };
        let (series, _) = prepare(&points, &opts)?;
        for model in models.split(',') {
            let choice = ModelChoice::parse(model, &cfg.forecaster.seasons)?;
            let report = backtest(&series, input.name, &cfg, &choice, &[], &mut |_, _| {})?;
            let r = &report.row;
            println!(
                "{},{},{:.4},{:.4},{:.4},{:.4},{:.5}",
                r.series, r.model, r.mase, r.rel_mase, r.cov95, r.peak_over_band, r.fit_seconds
            );
            match sums.iter_mut().find(|s| s.0 == model) {
                Some(s) => {
                    s.1 += r.rel_mase.ln();
                    s.2 += r.cov95;
                    s.3 += r.peak_over_band;
                    s.4 += r.fit_seconds;
                    s.5 += 1;
                }
                None => sums.push((
                    model.to_string(),
                    r.rel_mase.ln(),
                    r.cov95,
                    r.peak_over_band,
                    r.fit_seconds,
                    1,
                )),
            }
        }
    }
    for (m, lr, cov, over, fit, n) in sums {
        let n = n as f64;
        println!(
            "all,{m},gm_rel_mase={:.4},cov95={:.4},peak_over={:.4},fit_s={:.5},series_per_s={:.1}",
            (lr / n).exp(),
            cov / n,
            over / n,
            fit / n,
            n / fit
        );
    }
    Ok(())
}
