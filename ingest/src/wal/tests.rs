use super::*;
use proptest::prelude::*;
use std::sync::Mutex;

type Applied = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;
/// A named way to damage a record at an offset.
type Damage = (&'static str, fn(&mut Vec<u8>, usize));

fn open(dir: &Path, cfg: WalConfig, after: u64) -> Result<(Wal<Vec<u8>>, Recovery, Applied)> {
    let applied: Applied = Arc::default();
    let sink = Arc::clone(&applied);
    let (wal, rec) = Wal::open(
        dir,
        cfg,
        after,
        Box::new(move |seq, item: &Vec<u8>| sink.lock().expect("lock").push((seq, item.clone()))),
    )?;
    Ok((wal, rec, applied))
}

fn append(wal: &Wal<Vec<u8>>, payload: &[u8]) -> u64 {
    let acked = futures::executor::block_on(wal.append(payload.to_vec(), payload.to_vec()))
        .expect("append");
    assert_eq!(
        (acked.bytes.as_slice(), acked.item.as_slice()),
        (payload, payload),
        "the ack hands back the record's bytes and item"
    );
    acked.seq
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(paths::wal_dir(dir))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

#[test]
fn appends_are_applied_in_order_and_replayed_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, rec, applied) = open(dir.path(), WalConfig::for_tests(), 0).expect("open");
    assert!(rec.records.is_empty());
    for i in 0..100u32 {
        assert_eq!(append(&wal, &i.to_le_bytes()), u64::from(i) + 1);
    }
    assert_eq!(applied.lock().expect("lock").len(), 100);
    wal.shutdown();
    let (_wal, rec, _) = open(dir.path(), WalConfig::for_tests(), 40).expect("reopen");
    let seqs: Vec<u64> = rec.records.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (41..=100).collect::<Vec<_>>());
    assert_eq!(rec.next_seq, 101);
}

#[test]
fn concurrent_appenders_share_fsyncs_and_all_get_unique_sequences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _, applied) = open(dir.path(), WalConfig::default(), 0).expect("open");
    let wal = Arc::new(wal);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || (0..50).map(|i| append(&wal, &[t, i])).collect::<Vec<_>>())
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("join"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    let applied = applied.lock().expect("lock");
    assert!(
        applied.windows(2).all(|w| w[0].0 + 1 == w[1].0),
        "applied in sequence order"
    );
}

#[test]
fn truncate_drops_only_persisted_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _, _) = open(dir.path(), WalConfig::for_tests(), 0).expect("open");
    let payload = vec![7u8; 1000];
    for _ in 0..20 {
        append(&wal, &payload);
    }
    let before = segments(dir.path()).len();
    assert!(before > 3, "small segments roll: {before}");
    let removed = futures::executor::block_on(wal.truncate(10)).expect("truncate");
    assert!(removed > 0);
    wal.shutdown();
    let (_w, rec, _) = open(dir.path(), WalConfig::for_tests(), 10).expect("reopen");
    let seqs: Vec<u64> = rec.records.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (11..=20).collect::<Vec<_>>(),
        "every record after the cut survives"
    );
}

/// D3: cut the last segment at every byte offset of its last records.
#[test]
fn torn_tail_at_every_offset_is_truncated_and_earlier_records_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = WalConfig {
        segment_bytes: u64::MAX,
        ..WalConfig::default()
    };
    let (wal, _, _) = open(dir.path(), cfg.clone(), 0).expect("open");
    let mut ends = vec![MAGIC.len() as u64];
    for i in 0..6u8 {
        append(&wal, &vec![i; 20 + usize::from(i) * 7]);
        ends.push(ends[ends.len() - 1] + HEADER as u64 + 20 + u64::from(i) * 7);
    }
    wal.shutdown();
    let seg = segments(dir.path()).into_iter().next().expect("segment");
    let full = std::fs::read(&seg).expect("read");
    assert_eq!(full.len() as u64, ends[6]);
    let first_cut = ends[3];
    for cut in first_cut..full.len() as u64 {
        let copy = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(paths::wal_dir(copy.path())).expect("mkdir");
        let target = paths::wal_dir(copy.path()).join(seg.file_name().expect("name"));
        std::fs::write(&target, &full[..usize::try_from(cut).expect("usize")]).expect("write");
        let (wal, rec, _) = open(copy.path(), cfg.clone(), 0)
            .unwrap_or_else(|e| panic!("open after cut at {cut} failed: {e}"));
        let complete = ends.iter().filter(|&&e| e <= cut).count() as u64 - 1;
        assert_eq!(rec.records.len() as u64, complete, "cut at {cut}");
        assert_eq!(
            rec.truncated_tail.is_some(),
            !ends.contains(&cut),
            "cut at {cut}"
        );
        // And the log keeps working after the cut.
        assert_eq!(append(&wal, b"after"), complete + 1);
        wal.shutdown();
        let (_w, rec, _) = open(copy.path(), cfg.clone(), 0).expect("reopen");
        assert_eq!(rec.records.len() as u64, complete + 1);
    }
}

/// D4: damage in the middle refuses to open and names file and offset; repair keeps the prefix.
#[test]
fn mid_log_corruption_refuses_start_and_repair_keeps_prefix() {
    let cases: [Damage; 3] = [
        ("bit flip", |b, off| b[off + HEADER + 3] ^= 0x10),
        ("bad length", |b, off| {
            b[off..off + 4].copy_from_slice(&9_999u32.to_le_bytes())
        }),
        ("zeroed block", |b, off| b[off..off + HEADER + 8].fill(0)),
    ];
    for (what, damage) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = WalConfig {
            segment_bytes: u64::MAX,
            ..WalConfig::default()
        };
        let (wal, _, _) = open(dir.path(), cfg.clone(), 0).expect("open");
        for i in 0..10u8 {
            append(&wal, &[i; 32]);
        }
        wal.shutdown();
        let seg = segments(dir.path()).into_iter().next().expect("segment");
        let mut bytes = std::fs::read(&seg).expect("read");
        let off = MAGIC.len() + 4 * (HEADER + 32); // record 5
        damage(&mut bytes, off);
        std::fs::write(&seg, &bytes).expect("write");
        let err = open(dir.path(), cfg.clone(), 0)
            .err()
            .unwrap_or_else(|| panic!("{what}: opened"));
        let msg = err.to_string();
        assert!(msg.contains(&format!("offset {off}")), "{what}: {msg}");
        assert!(msg.contains(&seg.display().to_string()), "{what}: {msg}");
        let repair = WalConfig {
            repair: true,
            ..cfg
        };
        let (_w, rec, _) = open(dir.path(), repair, 0).expect("repair opens");
        assert_eq!(rec.records.len(), 4, "{what}");
        assert!(rec.repaired_at.is_some());
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Reopen,
    TearGarbage(Vec<u8>),
    Persist,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..600).prop_map(Op::Append),
        1 => Just(Op::Reopen),
        1 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Op::TearGarbage),
        1 => Just(Op::Persist),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// Model-based: random append / persist / crash-with-torn-tail / reopen against a Vec model.
    #[test]
    fn wal_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = WalConfig::for_tests();
        let mut persisted = 0u64;
        let mut model: Vec<(u64, Vec<u8>)> = Vec::new();
        let (mut wal, _, _) = open(dir.path(), cfg.clone(), 0).expect("open");
        for op in ops {
            match op {
                Op::Append(p) => {
                    let seq = append(&wal, &p);
                    prop_assert!(model.last().is_none_or(|(s, _)| seq > *s));
                    model.push((seq, p));
                }
                Op::Persist => {
                    persisted = model.last().map_or(persisted, |(s, _)| *s);
                    futures::executor::block_on(wal.truncate(persisted)).expect("truncate");
                    model.retain(|(s, _)| *s > persisted);
                }
                Op::Reopen | Op::TearGarbage(_) => {
                    wal.shutdown();
                    if let Op::TearGarbage(g) = op {
                        let last = segments(dir.path()).pop().expect("segment");
                        let mut f = OpenOptions::new().append(true).open(last).expect("open seg");
                        f.write_all(&g).expect("garbage");
                    }
                    let (w, rec, _) = open(dir.path(), cfg.clone(), persisted).expect("reopen");
                    prop_assert_eq!(&rec.records, &model);
                    wal = w;
                }
            }
        }
    }
}

#[test]
fn a_backlog_over_its_limit_is_refused_as_unavailable_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = WalConfig {
        max_queued_bytes: 64,
        ..WalConfig::for_tests()
    };
    let (wal, _, applied) = open(dir.path(), cfg, 0).expect("open");
    let err =
        futures::executor::block_on(wal.append(vec![0; 100], vec![0; 100])).expect_err("refused");
    assert_eq!(err.kind(), crate::error::ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("backlog"), "{err}");
    assert!(applied.lock().expect("lock").is_empty());
    assert_eq!(append(&wal, &[1; 10]), 1, "small writes still pass");
}

/// An item whose record ends with bytes it holds.
struct WithTail(Vec<u8>);

impl Tail for WithTail {
    fn tail(&self) -> &[u8] {
        &self.0
    }
}

#[test]
fn a_record_is_its_bytes_then_its_items_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _) = Wal::open(
        dir.path(),
        WalConfig::for_tests(),
        0,
        Box::new(|_, _: &WithTail| {}),
    )
    .expect("open");
    // Several groups, segments rolled between them (4 KiB segments, 5 KB records).
    for i in 0..20u8 {
        let acked = futures::executor::block_on(wal.append(vec![i; 3], WithTail(vec![i; 5000])))
            .expect("append");
        assert_eq!(acked.item.0.len(), 5000, "the item comes back");
    }
    wal.shutdown();
    let (_wal, rec, _) = open(dir.path(), WalConfig::for_tests(), 0).expect("reopen");
    assert_eq!(rec.records.len(), 20);
    for (i, (_, payload)) in (0u8..).zip(&rec.records) {
        assert_eq!(payload.len(), 5003);
        assert!(payload.iter().all(|b| *b == i), "record {i}");
    }
}
