//! Crash safety of collections, with real processes: a child `omen debug
//! crash-writer` runs a script of writes, flushes and compactions and is
//! SIGKILLed at a random moment or at a failpoint (mid WAL append, after a
//! flush built its segment, before and after a manifest swap, during a
//! compaction). The test then reopens the collection and checks that every
//! acknowledged write is there and that the one write in flight is either
//! wholly there or wholly absent.
//!
//! CI runs 30 iterations. For 1,000:
//!   OMEN_CRASH_ITERATIONS=1000 cargo test --release -p omen-tools \
//!       --test collection_crash -- --nocapture
//! (`OMEN_CRASH_SEED` picks another random sequence.)

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use omen_engine::collection::Collection;
use omen_engine::index::SearchParams;
use omen_engine::rng::SplitMix64;
use omen_tools::commands::debug::{crash_options, crash_vector};

const DIM: usize = 8;
const MEMTABLE_ROWS: usize = 150;
const FANOUT: usize = 3;

const FAILPOINTS: &[&str] = &[
    "wal-torn",
    "flush-built",
    "manifest-swap",
    "manifest-swapped",
    "compaction-built",
    "compaction-swap",
    "compaction-swapped",
];

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, Vec<u64>),
    Upsert(u64, Vec<u64>),
    Delete(Vec<u64>),
    Flush,
    Compact,
}

impl Op {
    fn line(&self) -> String {
        let ids = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        match self {
            Op::Insert(v, i) => format!("i {v} {}", ids(i)),
            Op::Upsert(v, i) => format!("u {v} {}", ids(i)),
            Op::Delete(i) => format!("d {}", ids(i)),
            Op::Flush => "f".into(),
            Op::Compact => "c".into(),
        }
    }

    /// Applies to a model: id -> version.
    fn apply(&self, model: &mut BTreeMap<u64, u64>) {
        match self {
            Op::Insert(v, ids) | Op::Upsert(v, ids) => {
                for &id in ids {
                    model.insert(id, *v);
                }
            }
            Op::Delete(ids) => {
                for id in ids {
                    model.remove(id);
                }
            }
            Op::Flush | Op::Compact => {}
        }
    }
}

/// A script of random operations that are valid against `model`.
fn script(
    rng: &mut SplitMix64,
    model: &BTreeMap<u64, u64>,
    next_id: &mut u64,
    version: &mut u64,
) -> Vec<Op> {
    let mut m = model.clone();
    let mut ops = Vec::new();
    for _ in 0..60 {
        let roll = rng.below(100);
        *version += 1;
        let live: Vec<u64> = m.keys().copied().collect();
        let pick = |rng: &mut SplitMix64, n: usize| -> Vec<u64> {
            let mut ids: Vec<u64> = (0..n.min(live.len()))
                .map(|_| live[rng.below(live.len())])
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        // Keep the collection near 2,000-4,000 rows so that a long run
        // (1,000 iterations) stays as fast per iteration as a short one.
        let insert_share = if live.len() > 4000 { 15 } else { 50 };
        let op = if roll < insert_share || live.len() < 20 {
            let n = 10 + rng.below(50) as u64;
            let ids: Vec<u64> = (*next_id..*next_id + n).collect();
            *next_id += n;
            Op::Insert(*version, ids)
        } else if roll < insert_share + 22 {
            let n = 5 + rng.below(30);
            let mut ids = pick(rng, n);
            ids.push(*next_id);
            *next_id += 1;
            Op::Upsert(*version, ids)
        } else if roll < 92 {
            let n = 3 + rng.below(25);
            Op::Delete(pick(rng, n))
        } else if roll < 97 {
            Op::Flush
        } else {
            Op::Compact
        };
        op.apply(&mut m);
        ops.push(op);
    }
    ops
}

fn expected(model: &BTreeMap<u64, u64>) -> BTreeMap<u64, Vec<f32>> {
    model
        .iter()
        .map(|(&id, &v)| (id, crash_vector(id, v, DIM)))
        .collect()
}

fn content(dir: &Path) -> BTreeMap<u64, Vec<f32>> {
    let c = Collection::open(dir, crash_options(MEMTABLE_ROWS, FANOUT))
        .unwrap_or_else(|e| panic!("reopen after the crash failed: {e}"));
    let mut out = BTreeMap::new();
    c.scan_live(&mut |id, v, _| {
        assert!(
            out.insert(id, v.to_vec()).is_none(),
            "id {id} is live twice"
        );
    })
    .unwrap();
    // Acknowledged rows are searchable, at distance 0.
    for (&id, v) in out.iter().step_by(97) {
        let hits = c.search(v, 3, &SearchParams::default()).unwrap();
        assert!(
            hits.iter().any(|h| h.id == id && h.distance == 0.0),
            "id {id} not found by search: {hits:?}"
        );
    }
    c.close().unwrap();
    out
}

#[test]
fn sigkill_at_random_points_loses_no_acknowledged_write() {
    let iterations: usize = std::env::var("OMEN_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("OMEN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261121);
    let mut rng = SplitMix64::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let script_path = tmp.path().join("script.txt");
    let mut model = BTreeMap::new();
    let (mut next_id, mut version) = (1u64, 0u64);
    let mut kills_at: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();
    for it in 0..iterations {
        let ops = script(&mut rng, &model, &mut next_id, &mut version);
        let text: String = ops.iter().map(|o| o.line() + "\n").collect();
        std::fs::write(&script_path, text).unwrap();
        let failpoint = (rng.below(2) == 0).then(|| {
            format!(
                "{}:{}",
                FAILPOINTS[rng.below(FAILPOINTS.len())],
                1 + rng.below(2)
            )
        });
        let delay = Duration::from_millis(rng.below(250) as u64);

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_omen"));
        cmd.args(["debug", "crash-writer", "--dir"])
            .arg(&dir)
            .arg("--script")
            .arg(&script_path)
            .args(["--dim", &DIM.to_string()])
            .args(["--memtable-rows", &MEMTABLE_ROWS.to_string()])
            .args(["--fanout", &FANOUT.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(fp) = &failpoint {
            cmd.env("OMEN_FAILPOINT", fp);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut acked: Option<usize> = None;
        let mut how = "random delay".to_string();
        let deadline = Instant::now()
            + if failpoint.is_some() {
                Duration::from_secs(20)
            } else {
                delay
            };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(n) = line.strip_prefix("ack ") {
                        acked = Some(n.parse().unwrap());
                    } else if let Some(fp) = line.strip_prefix("failpoint ") {
                        how = format!("failpoint {fp}");
                        break;
                    } else if line == "done" {
                        how = "finished".into();
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    how = "exited".into();
                    break;
                }
            }
        }
        // SIGKILL (what `Child::kill` sends on Unix).
        let _ = child.kill();
        let status = child.wait().unwrap();
        // Acks printed before the kill are still in the pipe.
        reader.join().unwrap();
        while let Ok(line) = rx.try_recv() {
            if let Some(n) = line.strip_prefix("ack ") {
                acked = Some(n.parse().unwrap());
            }
        }
        if how == "exited" {
            assert!(
                status.code().is_none_or(|c| c == 0),
                "iteration {it}: the writer failed with {status}"
            );
        }
        *kills_at
            .entry(how.split(':').next().unwrap().to_string())
            .or_default() += 1;

        let done = acked.map_or(0, |a| a + 1);
        let mut model_acked = model.clone();
        for op in &ops[..done] {
            op.apply(&mut model_acked);
        }
        let mut model_plus = model_acked.clone();
        if let Some(op) = ops.get(done) {
            op.apply(&mut model_plus);
        }
        let got = content(&dir);
        if got == expected(&model_acked) {
            model = model_acked;
        } else if got == expected(&model_plus) {
            model = model_plus;
        } else {
            let want = expected(&model_acked);
            let missing: Vec<_> = want
                .keys()
                .filter(|k| !got.contains_key(k))
                .take(10)
                .collect();
            let extra: Vec<_> = got
                .keys()
                .filter(|k| !want.contains_key(k))
                .take(10)
                .collect();
            panic!(
                "iteration {it} ({how}, {done} ops acknowledged, in flight: {:?}): \
                 {} rows, expected {}; missing {missing:?}, unexpected {extra:?}",
                ops.get(done)
                    .map(Op::line)
                    .map(|l| l.chars().take(60).collect::<String>()),
                got.len(),
                want.len()
            );
        }
    }
    println!(
        "{iterations} crash iterations in {:.1} s, {} live rows at the end; kills: {kills_at:?}",
        started.elapsed().as_secs_f64(),
        model.len()
    );
}
