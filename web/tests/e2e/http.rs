//! Ingest and SQL over HTTP, statuses, formats, idempotent retries, restart.

use super::harness::{client, sql, start, start_with_config, write_lp};
use std::io::Write;

#[test]
fn write_then_sql_sees_it_at_once_and_after_restart_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    let body = "cpu,host=a,region=eu usage=1.5,count=3i 1700000000000000000\ncpu,host=b usage=2.5 1700000000000000000\n";
    for _ in 0..2 {
        // S1: every request sent twice reads back once.
        assert_eq!(write_lp(&s, None, body).0, 204);
    }
    let rows = sql(
        &s,
        None,
        "SELECT host, region, usage, count FROM cpu ORDER BY host",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["host"], "a");
    assert_eq!(rows[0]["region"], "eu");
    assert_eq!(rows[0]["usage"], 1.5);
    assert_eq!(rows[0]["count"], 3);
    assert!(rows[1].get("region").is_none_or(serde_json::Value::is_null));
    assert!(s.terminate().success(), "SIGTERM exits cleanly");
    let s = start(dir.path(), &[], &[]);
    assert_eq!(write_lp(&s, None, body).0, 204, "a retry after the restart");
    let rows = sql(&s, None, "SELECT count(*) AS n FROM cpu");
    assert_eq!(rows[0]["n"], 2);
    s.kill9();
    let s = start(dir.path(), &[], &[]);
    let rows = sql(&s, None, "SELECT count(*) AS n FROM cpu");
    assert_eq!(rows[0]["n"], 2, "after kill -9 too");
}

#[test]
fn line_protocol_partial_writes_name_bad_lines_and_keep_good_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    assert_eq!(write_lp(&s, None, "m,t=x f=1 1\n").0, 204);
    let body = "m,t=a f=2 2\nm,t=b f=\"oops\" 3\nnot a line\n# comment\n\nm,t=c f=4 4\n";
    let (status, text) = write_lp(&s, None, body);
    assert_eq!(status, 400, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["line"], 2, "{v}");
    let lines: Vec<i64> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_i64().expect("n"))
        .collect();
    assert_eq!(lines, vec![2, 3]);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .expect("msg")
            .contains('f'),
        "{v}"
    );
    assert_eq!(v["accepted"], 2);
    let rows = sql(&s, None, "SELECT t FROM m ORDER BY t");
    let tags: Vec<&str> = rows.iter().map(|r| r["t"].as_str().expect("t")).collect();
    assert_eq!(tags, vec!["a", "c", "x"]);
}

#[test]
fn v1_write_precision_gzip_and_bad_requests_get_clear_statuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    let c = client();
    let r = c
        .post(s.url("/write?db=x&precision=s"))
        .body("sec v=1 1700000000")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
    let rows = sql(&s, None, "SELECT CAST(time AS BIGINT) AS t FROM sec");
    assert_eq!(rows[0]["t"], 1_700_000_000_000_000_000i64);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"gz v=2 1\n").expect("gzip");
    let r = c
        .post(s.url("/api/v2/write?bucket=b"))
        .header("Content-Encoding", "gzip")
        .body(gz.finish().expect("gzip"))
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
    // Unknown encoding: 415. Missing bucket: 400. Bad precision: 400 naming it.
    let r = c
        .post(s.url("/api/v2/write?bucket=b"))
        .header("Content-Encoding", "br")
        .body("x v=1")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 415);
    let r = c
        .post(s.url("/api/v2/write"))
        .body("x v=1")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let r = c
        .post(s.url("/api/v2/write?bucket=b&precision=h"))
        .body("x v=1")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().expect("text").contains("precision"));
    // A gzip bomb: 413 without inflating it all.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'a'; 200 << 20]).expect("gzip");
    let r = c
        .post(s.url("/api/v2/write?bucket=b"))
        .header("Content-Encoding", "gzip")
        .body(gz.finish().expect("gzip"))
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 413);
    // Too large as sent: answered from the declared length, before the body is read.
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        tcp,
        "POST /api/v2/write?bucket=b HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        17 << 20
    )
    .expect("head");
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut tcp, &mut head).expect("response");
    assert_eq!(&head, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&head));
    // Type conflict: 400 naming the field and the line.
    let (status, text) = write_lp(&s, None, "gz v=\"str\" 2");
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["line"], 1, "{text}");
    let msg = v["errors"][0]["message"].as_str().expect("message");
    assert!(
        msg.contains("\"v\"") && msg.contains("string") && msg.contains("float"),
        "{msg}"
    );
}

#[test]
fn remote_write_is_decoded_and_queryable_with_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    let c = client();
    let labels = |name: &str, job: &str| {
        vec![
            ("job".to_string(), job.to_string()),
            ("__name__".to_string(), name.to_string()),
        ]
    };
    let body = ingest::decode::remote_write::encode(&[
        (
            labels("up", "node"),
            vec![(1_700_000_000_000, 1.0), (1_700_000_015_000, 0.0)],
        ),
        (labels("up", "prom"), vec![(1_700_000_000_000, 1.0)]),
    ]);
    let send = |body: Vec<u8>, enc: &str| {
        c.post(s.url("/api/v1/write"))
            .header("Content-Encoding", enc)
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .expect("send")
    };
    assert_eq!(send(body.clone(), "snappy").status().as_u16(), 204);
    assert_eq!(send(body.clone(), "snappy").status().as_u16(), 204);
    let rows = sql(&s, None, "SELECT job, value FROM up ORDER BY job, time");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[2]["job"], "prom");
    assert_eq!(send(body.clone(), "gzip").status().as_u16(), 415);
    assert_eq!(send(b"garbage".to_vec(), "snappy").status().as_u16(), 400);
    // A snappy header claiming 1 GiB: 413 before allocating.
    let bomb = super::harness::snappy_length_claim(1 << 30);
    assert_eq!(send(bomb, "snappy").status().as_u16(), 413);
    // A series without a name is rejected, the other kept.
    let bad = ingest::decode::remote_write::encode(&[
        (vec![("job".to_string(), "x".to_string())], vec![(1, 1.0)]),
        (labels("up", "late"), vec![(1_700_000_030_000, 1.0)]),
    ]);
    let r = send(bad, "snappy");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().expect("text").contains("__name__"));
    assert_eq!(sql(&s, None, "SELECT count(*) AS n FROM up")[0]["n"], 4);
}

#[test]
fn sql_answers_in_every_format_and_refuses_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    assert_eq!(
        write_lp(&s, None, "cpu,host=a usage=1 1\ncpu,host=b usage=2 2").0,
        204
    );
    let c = client();
    let q = "SELECT host, usage FROM cpu ORDER BY host";
    let csv = c
        .post(s.url("/api/v1/sql?format=csv"))
        .body(q)
        .send()
        .expect("send");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv.text().expect("text"), "host,usage\na,1.0\nb,2.0\n");
    let arrow = c
        .post(s.url("/api/v1/sql"))
        .header("Accept", "application/vnd.apache.arrow.stream")
        .json(&serde_json::json!({"sql": q}))
        .send()
        .expect("send")
        .bytes()
        .expect("bytes");
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow.to_vec()), None)
            .expect("ipc");
    let n: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(n, 2);
    let pq = c
        .post(s.url("/api/v1/sql?format=parquet"))
        .body(q)
        .send()
        .expect("send")
        .bytes()
        .expect("bytes");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(pq)
        .expect("parquet")
        .build()
        .expect("reader");
    let n: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(n, 2);
    let r = c
        .get(s.url("/api/v1/sql"))
        .query(&[("sql", "SELECT count(*) AS n FROM cpu")])
        .send()
        .expect("send");
    assert_eq!(r.json::<serde_json::Value>().expect("json")[0]["n"], 2);
    let r = c
        .post(s.url("/api/v1/sql?format=xml"))
        .body(q)
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let r = c
        .post(s.url("/api/v1/sql"))
        .body("DROP TABLE cpu")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().expect("text").contains("read-only"));
    let r = c
        .post(s.url("/api/v1/sql"))
        .body("SELECT * FROM nope")
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().expect("text").contains("nope"));
    let m = c
        .get(s.url("/metrics"))
        .send()
        .expect("send")
        .text()
        .expect("text");
    assert!(m.contains("crest_points_written_total 2"), "{m}");
    assert!(
        m.contains("crest_http_requests_total{route=\"POST /api/v1/sql\",status=\"4xx\"} 3"),
        "{m}"
    );
}

/// Over the configured per-token ingest rate, a write is refused whole with 429 and
/// Retry-After; another token keeps its own allowance; once the bucket refills, writes pass.
#[test]
fn ingest_rate_limit_answers_429_per_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("crest.toml");
    std::fs::write(
        &cfg,
        "[[tokens]]\nname = \"a\"\ntoken = \"token-a-0123456789abcdef\"\nscopes = [\"write\", \"read\"]\n\
         [[tokens]]\nname = \"b\"\ntoken = \"token-b-0123456789abcdef\"\nscopes = [\"write\"]\n\
         [limits]\nmax_points_per_second = 100\nburst_points = 100\n",
    )
    .expect("config");
    let s = start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
        &[],
    );
    let body = |from: usize| -> String {
        (from..from + 100)
            .map(|i| {
                format!(
                    "r,k=v{i} x={i}i {}\n",
                    1_700_000_000_000_000_000i64 + i as i64
                )
            })
            .collect()
    };
    assert_eq!(
        write_lp(&s, Some("token-a-0123456789abcdef"), &body(0)).0,
        204
    );
    let r = client()
        .post(s.url("/api/v2/write?bucket=b&precision=ns"))
        .bearer_auth("token-a-0123456789abcdef")
        .body(body(100))
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let answer: serde_json::Value = r.json().expect("json");
    let msg = answer["message"].as_str().unwrap_or_default();
    assert!(msg.contains("rate") && msg.contains("\"a\""), "{answer}");
    assert_eq!(
        write_lp(&s, Some("token-b-0123456789abcdef"), &body(200)).0,
        204,
        "own bucket"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        write_lp(&s, Some("token-a-0123456789abcdef"), &body(100)).0,
        204,
        "refilled"
    );
    let n = sql(
        &s,
        Some("token-a-0123456789abcdef"),
        "SELECT count(*) AS n FROM r",
    )[0]["n"]
        .clone();
    assert_eq!(n, 300, "the refused request wrote nothing");
}

/// H4: past the per-table series limit, new series are refused with a 4xx naming the limit;
/// existing series (and other tables) keep being accepted.
#[test]
fn series_cardinality_limit_refuses_only_new_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start_with_config(dir.path(), "[limits]\nmax_series_per_table = 3\n", &[]);
    let lines = |hosts: &[&str], t: i64| -> String {
        hosts
            .iter()
            .map(|h| format!("card,host={h} v=1i {t}\n"))
            .collect()
    };
    assert_eq!(write_lp(&s, None, &lines(&["a", "b", "c"], 1)).0, 204);
    let (status, body) = write_lp(&s, None, &lines(&["a", "d", "b"], 2));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("limit of 3 active series"), "{body}");
    assert!(
        body.contains("\"line\":2"),
        "the new series' line is named: {body}"
    );
    assert_eq!(
        write_lp(&s, None, &lines(&["c"], 3)).0,
        204,
        "existing series still accepted"
    );
    assert_eq!(
        write_lp(&s, None, "other,host=d v=1i 4\n").0,
        204,
        "other tables unaffected"
    );
    let rows = sql(
        &s,
        None,
        "SELECT host, count(*) AS n FROM card GROUP BY host ORDER BY host",
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["n"], 2);
    assert_eq!(rows[2]["n"], 2);
}

/// The UI bundle is served gzip-compressed to browsers that accept it, identical once
/// decompressed, and a reload with the ETag is a 304 without a body.
#[test]
fn ui_bundle_is_gzipped_and_revalidated_by_etag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[], &[]);
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut req = client().get(s.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().expect("get")
    };
    for (path, content_type) in [
        ("/pkg/client_bg.wasm", "application/wasm"),
        ("/pkg/client.js", "text/javascript; charset=utf-8"),
        ("/ui/crest.css", "text/css; charset=utf-8"),
    ] {
        let plain = get(path, &[]);
        assert_eq!(plain.status(), 200, "{path}");
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        assert_eq!(plain.headers()["content-type"], content_type);
        let etag = plain.headers()["etag"].to_str().expect("etag").to_string();
        let plain = plain.bytes().expect("body");

        let gz = get(path, &[("accept-encoding", "br;q=1.0, gzip;q=0.8")]);
        assert_eq!(gz.status(), 200);
        assert_eq!(gz.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(gz.headers()["vary"], "accept-encoding");
        assert_eq!(gz.headers()["etag"].to_str().expect("etag"), etag);
        let gz = gz.bytes().expect("body");
        assert!(
            gz.len() < plain.len(),
            "{path}: {} >= {}",
            gz.len(),
            plain.len()
        );
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped)
            .expect("gunzip");
        assert!(
            unzipped == plain,
            "{path}: the gzip form differs once decompressed"
        );

        for refusal in ["gzip;q=0", "br, gzip; q=0.000"] {
            let refused = get(path, &[("accept-encoding", refusal)]);
            assert!(
                refused.headers().get("content-encoding").is_none(),
                "{path}: {refusal}"
            );
        }

        let again = get(path, &[("if-none-match", &etag)]);
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().expect("body").is_empty());
        let other = get(path, &[("if-none-match", "\"stale\"")]);
        assert_eq!(other.status(), 200, "{path}");
    }
}
