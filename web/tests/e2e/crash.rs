//! D1: kill -9 at random moments during sustained ingest; compare with a ledger of acknowledged
//! writes. `CREST_CRASH_CYCLES` runs more cycles (default 20).

use super::harness::{client, sql, start};
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn kill9_during_ingest_loses_no_acknowledged_point_and_adds_no_phantom() {
    let cycles: usize = std::env::var("CREST_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let acked: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let sent: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let mut next_id = 0i64;
    for cycle in 0..cycles {
        // Short snapshot interval so kills also land during persistence.
        let s = start(dir.path(), &["--snapshot-interval", "200ms"], &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..3 {
            let (url, stop, acked, sent) = (
                s.url("/api/v2/write?bucket=b"),
                Arc::clone(&stop),
                Arc::clone(&acked),
                Arc::clone(&sent),
            );
            let base = next_id + w * 1_000_000;
            writers.push(std::thread::spawn(move || {
                let c = client();
                let mut id = base;
                while !stop.load(Ordering::Relaxed) {
                    let ids: Vec<i64> = (id..id + 50).collect();
                    id += 50;
                    let body: String = ids
                        .iter()
                        .map(|i| {
                            format!(
                                "ledger,writer=w{w},hour=h{} id={i}i {}\n",
                                i % 3,
                                1_700_000_000_000_000_000i64 + i * 1_000_000_000
                            )
                        })
                        .collect();
                    sent.lock().expect("lock").extend(&ids);
                    match c.post(&url).body(body).send() {
                        Ok(r) if r.status().as_u16() == 204 => {
                            acked.lock().expect("lock").extend(&ids)
                        }
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        Err(_) => break, // the server died mid-request: not acknowledged
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(100..900)));
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("writer");
        }
        next_id += 3_000_000;
        eprintln!(
            "cycle {cycle}: {} acknowledged so far",
            acked.lock().expect("lock").len()
        );
    }
    let s = start(dir.path(), &[], &[]);
    let rows = sql(&s, None, "SELECT id FROM ledger");
    let stored: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().expect("id")).collect();
    let stored_set: BTreeSet<i64> = stored.iter().copied().collect();
    assert_eq!(stored.len(), stored_set.len(), "no point stored twice");
    let acked = acked.lock().expect("lock");
    let sent = sent.lock().expect("lock");
    let lost: Vec<_> = acked.difference(&stored_set).take(10).collect();
    assert!(
        lost.is_empty(),
        "acknowledged points lost: {lost:?} (of {})",
        acked.len()
    );
    let phantoms: Vec<_> = stored_set.difference(&sent).take(10).collect();
    assert!(phantoms.is_empty(), "phantom points: {phantoms:?}");
    assert!(acked.len() > 1000, "the test really wrote: {}", acked.len());
}
