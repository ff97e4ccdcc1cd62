//! A writable collection end to end: writes are searchable at once, survive
//! flush and reopen, deletes and upserts hide old versions without losing
//! recall, compaction keeps the content, and bad input gets clear errors.

mod collection_common;

use std::collections::BTreeMap;

use collection_common::{small_options, vector, vectors};
use omendb::Metric;
use omendb::engine::EngineError;
use omendb::engine::collection::{Collection, Schema};
use omendb::engine::index::SearchParams;
use omendb::format::{ColumnSchema, ColumnType, Value};

const DIM: usize = 16;

fn content(c: &Collection) -> BTreeMap<u64, Vec<f32>> {
    let mut out = BTreeMap::new();
    c.scan_live(&mut |id, v, _| {
        assert!(out.insert(id, v.to_vec()).is_none(), "id {id} twice");
    })
    .unwrap();
    out
}

fn nearest(c: &Collection, q: &[f32]) -> (u64, f32) {
    let hits = c.search(q, 1, &SearchParams::default()).unwrap();
    (hits[0].id, hits[0].distance)
}

#[test]
fn tiny_flushes_build_valid_segments() {
    // k-means, shards and upper layers must cope with a handful of rows.
    for n in [1u64, 2, 5, 40, 300, 2500] {
        let dir = tempfile::tempdir().unwrap();
        let c = Collection::create(
            dir.path(),
            Schema::new(DIM, Metric::L2),
            small_options(1 << 20),
        )
        .unwrap();
        let ids: Vec<u64> = (0..n).map(|i| i * 3 + 1).collect();
        c.insert(&ids, &vectors(&ids, 0, DIM), &[]).unwrap();
        c.flush().unwrap();
        let stats = c.stats();
        assert_eq!(stats.segments.len(), 1, "n = {n}");
        assert_eq!(stats.memtable_rows, 0);
        for &id in ids.iter().step_by((n as usize / 7).max(1)) {
            let (got, d) = nearest(&c, &vector(id, 0, DIM));
            assert_eq!((got, d), (id, 0.0), "n = {n}");
        }
        assert_eq!(content(&c).len(), n as usize);
    }
}

#[test]
fn writes_are_searchable_at_once_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let c =
        Collection::create(dir.path(), Schema::new(DIM, Metric::L2), small_options(500)).unwrap();
    let mut model = BTreeMap::new();
    for batch in 0..8u64 {
        let ids: Vec<u64> = (batch * 200..batch * 200 + 200).collect();
        c.insert(&ids, &vectors(&ids, 0, DIM), &[]).unwrap();
        for &id in &ids {
            model.insert(id, vector(id, 0, DIM));
            // Acknowledged means searchable.
        }
        let last = *ids.last().unwrap();
        assert_eq!(nearest(&c, &vector(last, 0, DIM)).0, last);
    }
    // Delete a third, upsert a third.
    let deleted: Vec<u64> = (0..1600).step_by(3).collect();
    c.delete(&deleted).unwrap();
    let replaced: Vec<u64> = (1..1600).step_by(3).collect();
    c.upsert(&replaced, &vectors(&replaced, 1, DIM), &[])
        .unwrap();
    for id in &deleted {
        model.remove(id);
    }
    for &id in &replaced {
        model.insert(id, vector(id, 1, DIM));
    }
    assert_eq!(content(&c), model);
    // A deleted vector is never returned; the old version of a replaced one
    // neither.
    for &id in deleted.iter().take(50) {
        let hits = c
            .search(&vector(id, 0, DIM), 10, &SearchParams::default())
            .unwrap();
        assert!(hits.iter().all(|h| h.id != id));
    }
    for &id in replaced.iter().take(50) {
        let hits = c
            .search(&vector(id, 0, DIM), 10, &SearchParams::default())
            .unwrap();
        assert!(hits.iter().all(|h| h.id != id || h.distance > 0.0));
        assert_eq!(nearest(&c, &vector(id, 1, DIM)), (id, 0.0));
    }
    c.flush().unwrap();
    assert_eq!(content(&c), model);
    c.close().unwrap();

    let c = Collection::open(dir.path(), small_options(500)).unwrap();
    assert_eq!(content(&c), model);
    assert!(c.stats().segments.len() >= 3);
    let n = c.compact().unwrap();
    assert!(n >= 1);
    assert_eq!(content(&c), model);
    // After compaction, tombstoned rows are gone from the files.
    let stats = c.stats();
    let rows: u64 = stats.segments.iter().map(|s| s.2 - s.3).sum();
    assert_eq!(rows as usize, model.len());
    for (&id, v) in model.iter().step_by(37) {
        assert_eq!(nearest(&c, v), (id, 0.0));
    }
    drop(c);
    let c = Collection::open(dir.path(), small_options(500)).unwrap();
    assert_eq!(content(&c), model);
}

#[test]
fn unflushed_writes_replay_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new(DIM, Metric::Cosine).with_column(ColumnSchema {
        name: "tag".into(),
        ty: ColumnType::Text,
        nullable: true,
    });
    let c = Collection::create(dir.path(), schema.clone(), small_options(1000)).unwrap();
    let ids = [5u64, 6, 7];
    let values = [
        Value::Text("a".into()),
        Value::Null,
        Value::Text("c".into()),
    ];
    c.insert(&ids, &vectors(&ids, 0, DIM), &values).unwrap();
    c.delete(&[6]).unwrap();
    drop(c);
    let c = Collection::open(dir.path(), small_options(1000)).unwrap();
    assert_eq!(c.schema(), &schema);
    let mut seen = Vec::new();
    c.scan_live(&mut |id, _, vals| seen.push((id, vals.to_vec())))
        .unwrap();
    seen.sort_by_key(|s| s.0);
    assert_eq!(
        seen,
        vec![
            (5, vec![Value::Text("a".into())]),
            (7, vec![Value::Text("c".into())])
        ]
    );
}

#[test]
fn bad_writes_get_clear_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new(4, Metric::L2).with_column(ColumnSchema {
        name: "price".into(),
        ty: ColumnType::Float64,
        nullable: false,
    });
    let c = Collection::create(dir.path(), schema, small_options(1000)).unwrap();
    c.insert(&[1], &[0.0; 4], &[Value::Float64(1.0)]).unwrap();
    let e = c
        .insert(
            &[2, 1],
            &[0.0; 8],
            &[Value::Float64(1.0), Value::Float64(2.0)],
        )
        .unwrap_err();
    assert!(matches!(e, EngineError::Duplicate { id: 1 }), "{e}");
    let e = c
        .insert(&[3], &[0.0; 3], &[Value::Float64(1.0)])
        .unwrap_err();
    assert!(e.to_string().contains("4 vector values"), "{e}");
    let e = c
        .insert(&[3], &[f32::NAN, 0.0, 0.0, 0.0], &[Value::Float64(1.0)])
        .unwrap_err();
    assert!(e.to_string().contains("finite"), "{e}");
    let e = c.insert(&[3], &[0.0; 4], &[Value::Int64(1)]).unwrap_err();
    assert!(e.to_string().contains("price"), "{e}");
    let e = c.insert(&[3], &[0.0; 4], &[Value::Null]).unwrap_err();
    assert!(e.to_string().contains("not nullable"), "{e}");
    assert_eq!(c.len(), 1);
    // The duplicate batch wrote nothing: id 2 is not there.
    c.insert(&[2], &[1.0; 4], &[Value::Float64(2.0)]).unwrap();
    assert_eq!(c.len(), 2);
    // A second handle on the same directory is refused.
    let e = Collection::open(dir.path(), small_options(1000)).unwrap_err();
    assert!(e.to_string().contains("open in another"), "{e}");
    // So is creating over an existing collection.
    let e =
        Collection::create(dir.path(), Schema::new(4, Metric::L2), small_options(10)).unwrap_err();
    assert!(e.to_string().contains("empty directory"), "{e}");
}
