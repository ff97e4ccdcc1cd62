//! Readers, writers and the compactor at the same time: every search sees
//! a consistent snapshot (sorted, no duplicate ids, nothing deleted before
//! it started, every row acknowledged before it started findable), and the
//! final content is exactly what the writers wrote.

mod collection_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use collection_common::{small_options, vector, vectors};
use omendb::Metric;
use omendb::engine::collection::{Collection, CollectionOptions, Schema};
use omendb::engine::index::SearchParams;

const DIM: usize = 12;

#[test]
fn readers_writers_and_compaction_together() {
    let dir = tempfile::tempdir().unwrap();
    let options = CollectionOptions {
        auto_compact: true,
        compaction_fanout: 3,
        ..small_options(300)
    };
    let c =
        Arc::new(Collection::create(dir.path(), Schema::new(DIM, Metric::L2), options).unwrap());
    // Ids deleted for good, and ids written once and never touched again,
    // each recorded after its write was acknowledged.
    let dead = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stable = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let (c, dead, stable) = (Arc::clone(&c), Arc::clone(&dead), Arc::clone(&stable));
            std::thread::spawn(move || {
                let mut model = BTreeMap::new();
                let base = w << 40;
                for round in 0..25u64 {
                    let ids: Vec<u64> = (0..60).map(|i| base + round * 60 + i).collect();
                    c.insert(&ids, &vectors(&ids, 0, DIM), &[]).unwrap();
                    for &id in &ids {
                        model.insert(id, 0u64);
                    }
                    // Ids ending in 0..=1: stable; 2..=3: deleted; 4..=5: upserted.
                    stable
                        .lock()
                        .unwrap()
                        .extend(ids.iter().filter(|&&id| id % 10 <= 1));
                    let del: Vec<u64> = ids
                        .iter()
                        .copied()
                        .filter(|id| (2..=3).contains(&(id % 10)))
                        .collect();
                    c.delete(&del).unwrap();
                    for id in &del {
                        model.remove(id);
                    }
                    dead.lock().unwrap().extend(&del);
                    let up: Vec<u64> = ids
                        .iter()
                        .copied()
                        .filter(|id| (4..=5).contains(&(id % 10)))
                        .collect();
                    c.upsert(&up, &vectors(&up, round + 1, DIM), &[]).unwrap();
                    for &id in &up {
                        model.insert(id, round + 1);
                    }
                }
                model
            })
        })
        .collect();

    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (c, dead, stable, stop) = (
                Arc::clone(&c),
                Arc::clone(&dead),
                Arc::clone(&stable),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut checks = 0u64;
                let mut i = r;
                while !stop.load(Ordering::Acquire) {
                    i += 7;
                    let dead_now = dead.lock().unwrap().clone();
                    let stable_now = stable.lock().unwrap().clone();
                    if let Some(&id) = dead_now.get(i as usize % dead_now.len().max(1)) {
                        let hits = c
                            .search(&vector(id, 0, DIM), 10, &SearchParams::default())
                            .unwrap();
                        assert!(hits.iter().all(|h| h.id != id), "deleted id {id} returned");
                        assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
                        let mut ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
                        ids.sort_unstable();
                        ids.dedup();
                        assert_eq!(ids.len(), hits.len(), "duplicate ids in {hits:?}");
                        checks += 1;
                    }
                    if let Some(&id) = stable_now.get(i as usize % stable_now.len().max(1)) {
                        let hits = c
                            .search(&vector(id, 0, DIM), 5, &SearchParams::default())
                            .unwrap();
                        assert_eq!((hits[0].id, hits[0].distance), (id, 0.0), "stable id {id}");
                        checks += 1;
                    }
                }
                checks
            })
        })
        .collect();

    let compactor = {
        let (c, stop) = (Arc::clone(&c), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Acquire) {
                runs += c.compact().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            runs
        })
    };

    let mut model = BTreeMap::new();
    for w in writers {
        model.extend(w.join().unwrap());
    }
    c.flush().unwrap();
    c.compact().unwrap();
    stop.store(true, Ordering::Release);
    let checks: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    compactor.join().unwrap();
    assert!(checks > 0);
    let stats = c.stats();
    assert!(stats.compactions > 0, "no compaction ran: {stats:?}");
    assert!(stats.background_error.is_none());

    let mut got = BTreeMap::new();
    c.scan_live(&mut |id, v, _| {
        assert!(got.insert(id, v.to_vec()).is_none());
    })
    .unwrap();
    let want: BTreeMap<u64, Vec<f32>> = model
        .iter()
        .map(|(&id, &ver)| (id, vector(id, ver, DIM)))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want);
}
