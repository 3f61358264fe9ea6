//! D6: the data volume fills up. Writes get 503 with Retry-After, reads keep working, writes
//! resume once space returns, and no acknowledged point is lost.
//!
//! Needs a real small filesystem: a tmpfs mounted for the test (root). `.ci/run` sets
//! `CREST_DISKFULL=1` when this machine can mount one, and then the test must run; elsewhere it
//! skips with a message.

use super::harness::{client, sql, start};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn batch(k: usize) -> String {
    (0..200)
        .map(|i| {
            format!(
                "fill,batch=b{k},slot=s{i} v={}i,pad=\"{}\" {}\n",
                k * 1000 + i,
                "x".repeat(64),
                1_700_000_000_000_000_000i64 + (k * 1000 + i) as i64
            )
        })
        .collect()
}

fn post(base: &super::harness::Server, body: String) -> reqwest::blocking::Response {
    client()
        .post(base.url("/api/v2/write?bucket=b&precision=ns"))
        .body(body)
        .send()
        .expect("send")
}

#[test]
fn a_full_disk_answers_503_keeps_reads_and_loses_nothing() {
    let required = std::env::var("CREST_DISKFULL").is_ok_and(|v| v == "1");
    let root = tempfile::tempdir().expect("tempdir");
    let Some(mount) = Mount::tmpfs(&root.path().join("vol"), "24m") else {
        assert!(
            !required,
            "CREST_DISKFULL=1 but a tmpfs could not be mounted"
        );
        eprintln!("skipping D6: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = mount.0.join("data");
    let s = start(&data, &["--snapshot-interval", "3600s"], &[]);
    // Take almost all the space, leaving room for a few writes.
    let filler = mount.0.join("filler");
    let free = fs_free(&mount.0);
    std::fs::write(&filler, vec![1u8; free.saturating_sub(600 * 1024) as usize]).expect("filler");
    let mut acked = 0usize;
    let mut refused = None;
    for k in 0..400 {
        let r = post(&s, batch(k));
        match r.status().as_u16() {
            204 => acked += 1,
            503 => {
                let retry = r.headers().get("retry-after").cloned();
                refused = Some((k, retry, r.text().unwrap_or_default()));
                break;
            }
            other => panic!(
                "batch {k}: unexpected {other}: {}",
                r.text().unwrap_or_default()
            ),
        }
    }
    let (k, retry, text) = refused.expect("the disk filled up within 400 batches");
    assert!(acked > 0, "some writes fit before the disk filled");
    assert!(retry.is_some(), "503 carries Retry-After");
    assert!(
        text.to_lowercase().contains("space") || text.contains("full"),
        "{text}"
    );
    // Reads keep working on a full disk.
    let n = sql(&s, None, "SELECT count(*) AS n FROM fill")[0]["n"].clone();
    assert_eq!(n, acked * 200, "reads see every acknowledged point");
    // A snapshot on a disk with no byte left fails, and leaves no half-written file behind.
    let rest = mount.0.join("rest");
    std::fs::write(&rest, vec![1u8; fs_free(&mount.0) as usize]).expect("take the rest");
    let snap = client()
        .post(s.url("/api/v1/admin/snapshot"))
        .send()
        .expect("snapshot");
    assert!(
        !snap.status().is_success(),
        "a snapshot cannot succeed on a full disk"
    );
    let leftovers: Vec<_> = walk(&data)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_file(&rest).expect("free space");
    // Space returns: writes resume without a restart.
    std::fs::remove_file(&filler).expect("free space");
    assert_eq!(post(&s, batch(k)).status().as_u16(), 204, "writes resume");
    acked += 1;
    let snap = client()
        .post(s.url("/api/v1/admin/snapshot"))
        .send()
        .expect("snapshot");
    assert!(
        snap.status().is_success(),
        "{}",
        snap.text().unwrap_or_default()
    );
    s.kill9();
    let s = start(&data, &[], &[]);
    let rows = sql(
        &s,
        None,
        "SELECT count(*) AS n, count(DISTINCT v) AS d FROM fill",
    );
    assert_eq!(rows[0]["n"], acked * 200, "{rows:?}");
    assert_eq!(rows[0]["d"], acked * 200, "{rows:?}");
    s.terminate();
}

fn fs_free(p: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(p)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
