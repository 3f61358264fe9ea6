//! The `crest` command line: `crest serve`, `crest loadgen`, `crest backtest`, `crest alerts`,
//! `crest plan` and `crest simulate`.

use crate::auth::Auth;
use crate::config::ConfigFile;
use crate::metrics::ServerMetrics;
use crate::server::{self, AppState, BodyLimits};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ingest::db::{Limits, Retention};
use ingest::wal::WalConfig;
use ingest::{Db, DbArgs, DbConfig};
use query::{QueryConfig, QueryEngine};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Crest: collect metrics, answer SQL over them, and plan capacity for a known traffic peak.
#[derive(Debug, Parser)]
#[command(name = "crest", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server on an embedded local data directory.
    Serve(ServeArgs),
    /// Generate node-exporter-like load against a Crest (or VictoriaMetrics) endpoint and report
    /// the ingest rate.
    ///
    /// A request answered 503 or 429 is sent again after its Retry-After (up to 60 times), as
    /// Prometheus and the OTLP exporters do; the rate includes that wait and the JSON summary
    /// counts `retries`. Any other failure counts in `errors` and fails the run.
    Loadgen(crate::loadgen::LoadgenArgs),
    /// Backtest forecast models on a CSV series by rolling origin and print accuracy, interval
    /// coverage and peak errors (the forecast accuracy benchmark).
    Backtest(crate::backtest_cmd::BacktestArgs),
    /// Alerting tools: `crest alerts test RULE --from T1 --to T2` replays a rule over stored data.
    Alerts(crate::alert::replay::AlertsArgs),
    /// Fetch a milestone's capacity plan from a running Crest as CSV, JSON or Parquet.
    Plan(crate::planning::cli::PlanArgs),
    /// Play the reference festival campaign (SCENARIO.md) into a running Crest over remote
    /// write and OTLP: backfill history fast, then run live; writes the milestone calendar.
    Simulate(crate::simulate::SimulateArgs),
}

/// `crest serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding the WAL, the manifest and the Parquet files. Created if missing.
    #[arg(long, default_value = "./crest-data", env = "CREST_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on. Use port 0 for any free port (the chosen address is printed).
    /// Anything but a loopback address requires at least one token.
    #[arg(long, default_value = "127.0.0.1:8086", env = "CREST_LISTEN")]
    pub listen: SocketAddr,
    /// TOML config file with tokens, limits, retention and query limits (see
    /// crest.example.toml). Without it, defaults apply and no token is configured.
    #[arg(long, env = "CREST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Start even if the WAL is corrupt in the middle, dropping the corrupt record and
    /// everything after it (logged). Without it, such a WAL refuses start-up.
    #[arg(long)]
    pub wal_repair: bool,
    /// Override the config's snapshot interval, e.g. 10s (a buffer over half full is persisted
    /// at once regardless).
    #[arg(long)]
    pub snapshot_interval: Option<crate::config::HumanDuration>,
    /// How often Crest writes its own /metrics into `crest_*` tables (`0s`: never). Overrides
    /// `[self_monitoring] interval`.
    #[arg(long, env = "CREST_SELF_MONITORING_INTERVAL")]
    pub self_monitoring_interval: Option<crate::config::HumanDuration>,
    /// How long a dashboard panel's or variable's result is reused for the same expanded SQL
    /// (`0s`: never). Ranges ending at `now` are aligned to the panel's bucket width, so a
    /// reload inside one bucket is answered from memory.
    #[arg(long, env = "CREST_QUERY_CACHE_TTL", default_value = "30s")]
    pub query_cache_ttl: crate::config::HumanDuration,
    /// Address of the OTLP/gRPC listener (`off`: none). Like `--listen`, anything but loopback
    /// requires a token.
    #[arg(long, env = "CREST_OTLP_GRPC_LISTEN", default_value = "127.0.0.1:4317")]
    pub otlp_grpc_listen: String,
    /// Milestone file (JSON or YAML; a list of milestones or a `crest simulate` calendar)
    /// loaded at start: each milestone is created, or replaced by name. Overrides
    /// `[planning] milestones_file`.
    #[arg(long)]
    pub milestones: Option<PathBuf>,
    /// Folder of dashboard YAML files provisioned at start (a missing default folder means
    /// no dashboards).
    #[arg(long, default_value = "./dashboards", env = "CREST_DASHBOARDS")]
    pub dashboards: PathBuf,
    /// Alerting flags.
    #[command(flatten)]
    pub alerting: crate::alert::AlertFlags,
}

/// Runs the server until SIGTERM or Ctrl-C, then persists the buffer and exits.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let auth = Auth::new(&file.tokens, std::env::var("CREST_ADMIN_TOKEN").ok());
    if auth.is_open() && !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {} without any token: set CREST_ADMIN_TOKEN or add [[tokens]] to the config file, or listen on a loopback address",
            args.listen
        );
    }
    let s = &file.storage;
    let interval = args.snapshot_interval.unwrap_or(s.snapshot_interval).0;
    if interval.is_zero() {
        // A zero period would stop the snapshot loop at its first tick, leaving the buffer
        // and the WAL to grow until shutdown.
        anyhow::bail!("--snapshot-interval must be above zero");
    }
    let config = DbConfig {
        wal: WalConfig {
            repair: args.wal_repair,
            segment_bytes: s.wal_segment.0 as u64,
            ..WalConfig::default()
        },
        limits: Limits {
            max_tags: file.limits.max_tags,
            max_name_len: file.limits.max_name_len,
            max_tag_value_len: file.limits.max_tag_value_len,
            max_series_per_table: file.limits.max_series_per_table,
            ..Limits::default()
        },
        retention: Retention {
            default_ns: s.retention.map(|d| duration_ns(d.0)),
            per_table: s
                .table_retention
                .iter()
                .map(|(k, v)| (k.clone(), duration_ns(v.0)))
                .collect(),
        },
        max_buffer_bytes: s.max_buffer.0,
        ..DbConfig::new(&args.data_dir)
    };
    let data_dir = args.data_dir.clone();
    let db = tokio::task::spawn_blocking(move || {
        Db::open(DbArgs {
            config,
            clock: Arc::new(ingest::clock::SystemClock),
        })
    })
    .await?
    .with_context(|| format!("cannot open the data directory {}", data_dir.display()))?;
    let rec = db.recovery().clone();
    if let Some((file, offset)) = &rec.truncated_tail {
        tracing::warn!(segment = %file.display(), offset, "Started after truncating a torn WAL tail.");
    }
    let db = Arc::new(db);
    let engine = QueryEngine::new(
        Arc::clone(&db),
        QueryConfig {
            memory_limit: file.query.memory.0,
            timeout: file.query.timeout.0,
            max_concurrent: file.query.max_concurrent,
            ..QueryConfig::default()
        },
    )?;
    let routes = server::route_table()
        .iter()
        .map(|(s, _)| format!("{} {}", s.method, s.path))
        .collect();
    let alerting = Arc::new(
        crate::alert::Alerting::new(args.alerting.resolve(&file.alerting, &args.data_dir))
            .map_err(anyhow::Error::msg)?,
    );
    let planning = Arc::new(crate::planning::Planning {
        store: crate::planning::store::MetaStore::open(&args.data_dir)?,
        cfg: file.planning.clone(),
        live: Default::default(),
    });
    if let Some(path) = args
        .milestones
        .as_ref()
        .or(file.planning.milestones_file.as_ref())
    {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read milestone file {}", path.display()))?;
        let specs = crate::planning::file::parse(&text)
            .map_err(|e| anyhow::anyhow!("milestone file {}: {e}", path.display()))?;
        let saved = planning.store.upsert_all(&specs)?;
        tracing::info!(file = %path.display(), milestones = saved.len(), "Milestones loaded.");
    }
    engine.set_extra_tables(Arc::new(crate::planning::export::MetaTables(Arc::clone(
        &planning,
    ))));
    let ready = Arc::new(AtomicBool::new(false));
    let state = AppState {
        db: Arc::clone(&db),
        engine: Arc::new(engine),
        auth: Arc::new(auth),
        limits: BodyLimits {
            max_body: file.http.max_body.0,
            max_decoded: file.http.max_decoded.0,
        },
        metrics: Arc::new(ServerMetrics::new(routes)),
        ready: Arc::clone(&ready),
        rate: crate::ratelimit::RateLimiter::new(
            file.limits.max_points_per_second,
            file.limits.burst_points,
        )
        .map(Arc::new),
        alerting: Arc::clone(&alerting),
        planning,
        dashboards: Arc::new(
            if args.dashboards.is_dir() || args.dashboards != std::path::Path::new("./dashboards") {
                crate::dashboards::load_dir(&args.dashboards)
            } else {
                crate::dashboards::Dashboards::default()
            },
        ),
        query_cache: Arc::new(crate::query_cache::QueryCache::new(512, 200_000)),
        query_cache_ttl: args.query_cache_ttl.0,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let grpc_listener = match args.otlp_grpc_listen.trim() {
        "off" | "none" | "" => None,
        a => {
            let at: std::net::SocketAddr = a.parse().with_context(|| {
                format!(
                    "--otlp-grpc-listen {a:?} is not an address such as 127.0.0.1:4317 (or off)"
                )
            })?;
            if state.auth.is_open() && !at.ip().is_loopback() {
                anyhow::bail!(
                    "refusing to listen for OTLP/gRPC on {at} without any token: set CREST_ADMIN_TOKEN or add [[tokens]] to the config file, or listen on a loopback address"
                );
            }
            Some(
                tokio::net::TcpListener::bind(at)
                    .await
                    .with_context(|| format!("cannot listen for OTLP/gRPC on {at}"))?,
            )
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let bg = tokio::spawn(server::background_loop(
        Arc::clone(&db),
        interval,
        Arc::clone(&stop),
    ));
    let scrape_tasks = crate::scrape::spawn(&db, &file.scrape, file.http.max_decoded.0, &stop)?;
    alerting.set_default_external_url(&format!("http://{addr}"));
    alerting.set_planning(state.sources(), Arc::clone(&state.planning));
    let self_interval = args
        .self_monitoring_interval
        .unwrap_or(file.self_monitoring.interval)
        .0;
    let self_task = (!self_interval.is_zero()).then(|| {
        tokio::spawn(crate::scrape::self_monitor(
            Arc::clone(&db),
            Arc::clone(&state.metrics),
            self_interval,
            Arc::clone(&stop),
        ))
    });
    let mut alert_tasks = alerting.spawn(Arc::clone(&state.engine), Arc::clone(&stop));
    alert_tasks.push(tokio::spawn(crate::planning::scoring_loop(
        state.clone(),
        Arc::clone(&stop),
    )));
    ready.store(true, Ordering::Relaxed);
    tracing::info!(%addr, data_dir = %args.data_dir.display(), replayed = rec.replayed_records, "Crest is serving.");
    let grpc_task = match grpc_listener {
        Some(l) => {
            let at = l.local_addr()?;
            tracing::info!(%at, "OTLP/gRPC receiver listening.");
            println!("crest OTLP/gRPC listening on {at}");
            let router = crate::api::otlp_grpc::router(state.clone());
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(l, router).await {
                    tracing::error!(error = %e, "OTLP/gRPC listener failed.");
                }
            }))
        }
        None => None,
    };
    println!("crest listening on http://{addr}");
    let app = server::router(state).merge(crate::ui::router(addr));
    let ready_flag = Arc::clone(&ready);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            ready_flag.store(false, Ordering::Relaxed);
            tracing::info!("Shutting down: finishing requests, then persisting the buffer.");
        })
        .await?;
    stop.store(true, Ordering::Relaxed);
    bg.abort();
    alert_tasks.iter().for_each(tokio::task::JoinHandle::abort);
    scrape_tasks.iter().for_each(tokio::task::JoinHandle::abort);
    if let Some(t) = &self_task {
        t.abort();
    }
    if let Some(t) = &grpc_task {
        t.abort();
    }
    let d = Arc::clone(&db);
    let report = tokio::task::spawn_blocking(move || d.shutdown()).await??;
    tracing::info!(
        files = report.files,
        rows = report.rows,
        "Buffer persisted; bye."
    );
    Ok(())
}

fn duration_ns(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
