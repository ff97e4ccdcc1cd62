//! `Collection::get`: point lookups by primary key return each id's newest
//! live version, wherever it lives (active or frozen memtable, any segment),
//! hide deleted and superseded rows, agree with a full scan, and keep
//! working after compaction and reopen.

mod collection_common;

use std::collections::BTreeMap;

use collection_common::{small_options, vector, vectors};
use omendb::Metric;
use omendb::engine::collection::{Collection, Schema};
use omendb::format::{ColumnSchema, ColumnType, Value};

const DIM: usize = 8;

fn schema() -> Schema {
    Schema::new(DIM, Metric::L2).with_column(ColumnSchema {
        name: "tag".into(),
        ty: ColumnType::Int64,
        nullable: true,
    })
}

/// Every live row by a full scan: what `get` must agree with.
fn scanned(c: &Collection) -> BTreeMap<u64, (Vec<f32>, Vec<Value>)> {
    let mut out = BTreeMap::new();
    c.scan_live(&mut |id, v, values| {
        out.insert(id, (v.to_vec(), values.to_vec()));
    })
    .unwrap();
    out
}

fn check_against_scan(c: &Collection, probe: &[u64]) {
    let all = scanned(c);
    let got = c.get(probe).unwrap();
    let expected: Vec<u64> = probe
        .iter()
        .copied()
        .filter(|id| all.contains_key(id))
        .collect();
    assert_eq!(
        got.iter().map(|r| r.id).collect::<Vec<_>>(),
        expected,
        "ids found, in the order asked"
    );
    for r in &got {
        let (v, values) = &all[&r.id];
        assert_eq!(&r.vector, v, "id {}", r.id);
        assert_eq!(&r.values, values, "id {}", r.id);
    }
}

fn tags(ids: &[u64], version: i64) -> Vec<Value> {
    ids.iter()
        .map(|&id| Value::Int64(id as i64 * 10 + version))
        .collect()
}

#[test]
fn get_finds_the_newest_live_version_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collection::create(dir.path(), schema(), small_options(1 << 20)).unwrap();
    // Segment 1: ids 0..300.
    let first: Vec<u64> = (0..300).collect();
    c.insert(&first, &vectors(&first, 0, DIM), &tags(&first, 0))
        .unwrap();
    c.flush().unwrap();
    // Segment 2: new versions of 0..50 and new ids 300..400.
    let second: Vec<u64> = (0..50).chain(300..400).collect();
    c.upsert(&second, &vectors(&second, 1, DIM), &tags(&second, 1))
        .unwrap();
    c.flush().unwrap();
    // Memtable: deletes from both segments, a third version of 10..20,
    // ids 400..410 new.
    c.delete(&[5, 120, 310]).unwrap();
    let third: Vec<u64> = (10..20).chain(400..410).collect();
    c.upsert(&third, &vectors(&third, 2, DIM), &tags(&third, 2))
        .unwrap();
    assert_eq!(c.stats().segments.len(), 2);

    let probe: Vec<u64> = vec![0, 5, 12, 49, 50, 120, 121, 299, 300, 310, 399, 405, 999, 12];
    check_against_scan(&c, &probe);
    let got = c.get(&[12, 40, 150, 405, 5]).unwrap();
    assert_eq!(got.len(), 4, "deleted id 5 is not returned");
    assert_eq!(got[0].vector, vector(12, 2, DIM), "memtable version");
    assert_eq!(got[0].values, vec![Value::Int64(122)]);
    assert_eq!(got[1].vector, vector(40, 1, DIM), "newer segment");
    assert_eq!(got[2].vector, vector(150, 0, DIM), "older segment");
    assert_eq!(got[3].vector, vector(405, 2, DIM), "memtable only");

    // After the memtable is flushed, then compacted into one segment, and
    // after reopening, the answers do not change.
    c.flush().unwrap();
    check_against_scan(&c, &probe);
    let before = c.get(&probe).unwrap();
    c.compact().unwrap();
    assert_eq!(c.get(&probe).unwrap(), before);
    c.close().unwrap();
    let c = Collection::open(dir.path(), small_options(1 << 20)).unwrap();
    assert_eq!(c.get(&probe).unwrap(), before);
    check_against_scan(&c, &(0..420).collect::<Vec<_>>());
}

#[test]
fn get_on_an_empty_collection_and_unknown_ids() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collection::create(dir.path(), schema(), small_options(1 << 20)).unwrap();
    assert!(c.get(&[1, 2, 3]).unwrap().is_empty());
    assert!(c.get(&[]).unwrap().is_empty());
    c.insert(&[7], &vector(7, 0, DIM), &[Value::Null]).unwrap();
    c.delete(&[7]).unwrap();
    assert!(c.get(&[7]).unwrap().is_empty());
}
