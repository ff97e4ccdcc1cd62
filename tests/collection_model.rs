//! A property test of the collection's state transitions (writes, flushes
//! that add segments and tombstones, compactions that replace segments,
//! reopen) against a model: a map from id to the version last written.

mod collection_common;

use std::collections::BTreeMap;

use collection_common::{small_options, vector, vectors};
use omendb::Metric;
use omendb::engine::collection::{Collection, CollectionOptions, Schema};
use proptest::prelude::*;

const DIM: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Insert(u8),
    Upsert(Vec<u8>),
    Delete(Vec<u8>),
    Flush,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..30).prop_map(Op::Insert),
        2 => proptest::collection::vec(any::<u8>(), 1..12).prop_map(Op::Upsert),
        2 => proptest::collection::vec(any::<u8>(), 1..12).prop_map(Op::Delete),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn options() -> CollectionOptions {
    CollectionOptions {
        compaction_fanout: 2,
        compaction_dead_fraction: 0.25,
        ..small_options(25)
    }
}

fn check(c: &Collection, model: &BTreeMap<u64, u64>) -> Result<(), TestCaseError> {
    let mut got = BTreeMap::new();
    c.scan_live(&mut |id, v, _| {
        got.insert(id, v.to_vec());
    })
    .unwrap();
    let want: BTreeMap<u64, Vec<f32>> = model
        .iter()
        .map(|(&id, &v)| (id, vector(id, v, DIM)))
        .collect();
    prop_assert_eq!(got, want);
    // The segment set accounts for every row exactly once: live segment rows
    // plus memtable rows cover the model, and tombstones never exceed rows.
    let stats = c.stats();
    for s in &stats.segments {
        prop_assert!(s.3 <= s.2);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn collection_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Some(Collection::create(dir.path(), Schema::new(DIM, Metric::L2), options()).unwrap());
        let mut model: BTreeMap<u64, u64> = BTreeMap::new();
        let (mut next_id, mut version) = (0u64, 0u64);
        for op in ops {
            version += 1;
            let col = c.as_ref().unwrap();
            let existing: Vec<u64> = model.keys().copied().collect();
            let choose = |picks: &[u8]| -> Vec<u64> {
                let mut ids: Vec<u64> = picks
                    .iter()
                    .filter_map(|&p| existing.get(p as usize % existing.len().max(1)).copied())
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            };
            match op {
                Op::Insert(n) => {
                    let ids: Vec<u64> = (next_id..next_id + u64::from(n)).collect();
                    next_id += u64::from(n);
                    col.insert(&ids, &vectors(&ids, version, DIM), &[]).unwrap();
                    for id in ids { model.insert(id, version); }
                }
                Op::Upsert(picks) => {
                    let ids = choose(&picks);
                    col.upsert(&ids, &vectors(&ids, version, DIM), &[]).unwrap();
                    for id in ids { model.insert(id, version); }
                }
                Op::Delete(picks) => {
                    let ids = choose(&picks);
                    col.delete(&ids).unwrap();
                    for id in ids { model.remove(&id); }
                }
                Op::Flush => col.flush().unwrap(),
                Op::Compact => { col.compact().unwrap(); }
                Op::Reopen => {
                    c.take().unwrap().close().unwrap();
                    c = Some(Collection::open(dir.path(), options()).unwrap());
                }
            }
            check(c.as_ref().unwrap(), &model)?;
        }
    }
}
