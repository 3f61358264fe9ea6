//! H2: decompression bombs are refused without the server's memory growing with them.

use super::harness::{Server, client, snappy_length_claim, start};
use std::io::Write;

/// Peak resident memory of the server so far (VmHWM), in bytes.
fn peak_rss(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

fn gzip_of_zeros(n: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    for _ in 0..n >> 20 {
        e.write_all(&block).expect("gzip");
    }
    e.finish().expect("gzip")
}

#[test]
fn decompression_bombs_are_refused_with_little_memory_growth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    // Warm up the paths the bombs take, so the baseline includes their normal working set.
    let r = client()
        .post(s.url("/api/v2/write?bucket=b"))
        .body("warm v=1i 1\n")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
    let before = peak_rss(&s);
    let zeros = gzip_of_zeros(1 << 30); // 1 GiB of zeros in about 1 MiB
    assert!(zeros.len() < 2 << 20);
    // The snappy length claim: a remote-write header declaring 1 GiB.
    let snappy_claim = snappy_length_claim(1 << 30);
    for round in 0..3 {
        for (path, ctype, enc, body) in [
            ("/api/v2/write?bucket=b", "text/plain", "gzip", &zeros),
            ("/write?db=b", "text/plain", "gzip", &zeros),
            ("/v1/metrics", "application/x-protobuf", "gzip", &zeros),
            ("/v1/traces", "application/json", "gzip", &zeros),
            (
                "/api/v1/write",
                "application/x-protobuf",
                "snappy",
                &snappy_claim,
            ),
        ] {
            let r = client()
                .post(s.url(path))
                .header("content-type", ctype)
                .header("content-encoding", enc)
                .body(body.clone())
                .send()
                .expect("send");
            assert_eq!(r.status().as_u16(), 413, "round {round} {path} {enc}");
        }
    }
    let growth = peak_rss(&s).saturating_sub(before);
    eprintln!("H2: peak RSS grew by {} KiB over 15 bombs", growth / 1024);
    assert!(growth < 64 << 20, "peak RSS grew by {growth} bytes");
    // The server is still fine.
    let r = client()
        .post(s.url("/api/v2/write?bucket=b"))
        .body("warm v=2i 2\n")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
}
