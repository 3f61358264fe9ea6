//! Crash points for durability tests: with `CREST_FAILPOINT=<name>` set, the process aborts
//! (as a kill -9 would stop it) when it reaches the named step. Unset, a check is one load.
//!
//! Names: `persist:before-rename`, `persist:after-rename`, `manifest:before-write`,
//! `manifest:before-rename`, `manifest:after-commit`, `compact:before-write`,
//! `compact:before-commit`, `compact:after-commit`.

use std::sync::OnceLock;

static ARMED: OnceLock<Option<String>> = OnceLock::new();

/// Aborts the process if the failpoint `name` is armed.
pub fn hit(name: &str) {
    let armed = ARMED.get_or_init(|| std::env::var("CREST_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("failpoint {name} hit: aborting");
        std::process::abort();
    }
}
