//! End-to-end tests against the real `crest` binary on 127.0.0.1:0 with a temporary data dir.

mod e2e {
    pub mod alerting;
    pub mod auth;
    pub mod bombs;
    pub mod crash;
    pub mod dashboards;
    pub mod diskfull;
    pub mod durability;
    pub mod harness;
    pub mod http;
    pub mod interop;
    pub mod otlp;
    pub mod planning;
    pub mod scrape;
    pub mod simulate;
    pub mod ui;
}
