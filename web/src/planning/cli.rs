//! `crest plan --milestone M --format csv|json|parquet`: fetches a milestone's capacity plan
//! from a running Crest and writes it to stdout or `--out FILE`.

use clap::Args;
use std::io::Write;

/// `crest plan` flags.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Milestone id or name.
    #[arg(long)]
    pub milestone: String,
    /// Output format: csv, json (an array of rows), jsonl, parquet or arrow.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Write here instead of stdout (required for parquet and arrow on a terminal).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// The Crest server.
    #[arg(long, default_value = "http://127.0.0.1:8086", env = "CREST_URL")]
    pub url: String,
    /// A token with the read scope.
    #[arg(long, env = "CREST_TOKEN")]
    pub token: Option<String>,
}

/// Runs `crest plan`.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let format = args.format.as_str();
    if query::encode::Format::from_param(format).is_none() {
        anyhow::bail!("unknown --format {format:?}: use csv, json, jsonl, parquet or arrow");
    }
    let binary = matches!(format, "parquet" | "arrow");
    if binary && args.out.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!("--format {format} is binary: give --out FILE or redirect stdout");
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()?;
    let mut url =
        reqwest::Url::parse(&args.url).map_err(|e| anyhow::anyhow!("--url {:?}: {e}", args.url))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("--url {:?} cannot take a path", args.url))?
        .pop_if_empty()
        .extend(["api", "v1", "plans", &args.milestone]);
    url.query_pairs_mut().append_pair("format", format);
    let mut req = client.get(url);
    if let Some(t) = &args.token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", args.url))?;
    let status = resp.status();
    let bytes = resp.bytes()?;
    if !status.is_success() {
        let msg = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|e| e.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        anyhow::bail!("{status}: {msg}");
    }
    match &args.out {
        Some(p) => {
            let tmp = p.with_extension("tmp-crest");
            std::fs::write(&tmp, &bytes)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, p)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
        }
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(())
}
