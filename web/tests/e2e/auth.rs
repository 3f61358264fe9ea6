//! X1: every route in the route table, without a token and with a token of the wrong scope.

use super::harness::{client, start, try_start};
use crest_web::auth::Scope;
use crest_web::server::route_table;

const READ: &str = "read-token-0123456789abcdef";
const WRITE: &str = "write-token-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdef";

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("crest.toml");
    std::fs::write(
        &p,
        format!(
            "[[tokens]]\nname='r'\ntoken='{READ}'\nscopes=['read']\n[[tokens]]\nname='w'\ntoken='{WRITE}'\nscopes=['write']\n"
        ),
    )
    .expect("write config");
    p
}

#[test]
fn every_route_requires_the_right_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let s = start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().expect("utf8")],
        &[("CREST_ADMIN_TOKEN", ADMIN)],
    );
    let c = client();
    let mut public = Vec::new();
    for (spec, _) in route_table() {
        let url = s.url(spec.path);
        let req = |token: Option<&str>| {
            let mut r = c.request(spec.method.clone(), &url);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send().expect("send").status().as_u16()
        };
        let Some(scope) = spec.scope else {
            public.push(spec.path);
            assert_eq!(req(None), 200, "{} {}", spec.method, spec.path);
            continue;
        };
        assert_eq!(
            req(None),
            401,
            "{} {} without a token",
            spec.method,
            spec.path
        );
        assert_eq!(
            req(Some("not-a-token-at-all-xxxxx")),
            401,
            "{} {} unknown token",
            spec.method,
            spec.path
        );
        let wrong = match scope {
            Scope::Read => WRITE,
            Scope::Write | Scope::Admin => READ,
        };
        assert_eq!(
            req(Some(wrong)),
            403,
            "{} {} with the wrong scope",
            spec.method,
            spec.path
        );
        let right = match scope {
            Scope::Read => READ,
            Scope::Write => WRITE,
            Scope::Admin => ADMIN,
        };
        let st = req(Some(right));
        assert!(
            st != 401 && st != 403,
            "{} {} with the right scope got {st}",
            spec.method,
            spec.path
        );
        assert_ne!(req(Some(ADMIN)), 403, "admin may do everything");
    }
    public.sort_unstable();
    assert_eq!(
        public,
        vec!["/health", "/ready"],
        "a new public route needs a decision here"
    );
    // Influx clients send `Token`.
    let r = c
        .post(s.url("/api/v2/write?bucket=b"))
        .header("Authorization", format!("Token {WRITE}"))
        .body("m v=1 1")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
}

#[test]
fn without_a_token_only_loopback_is_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = std::process::Command::new(super::harness::bin());
    let out = cmd
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("CREST_ADMIN_TOKEN")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without any token"),
        "{err}"
    );
    // A broken config file names the file and the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[storage]\nretention = 'forever'\n").expect("write");
    let err = try_start(dir.path(), &["--config", bad.to_str().expect("utf8")], &[])
        .err()
        .expect("refused");
    assert!(err.contains("bad.toml") && err.contains("forever"), "{err}");
}
