//! Attribute columns in a collection: logged in the WAL, kept in the
//! memtable, written to segments by flushes and carried by compactions;
//! `search_filtered` returns only live rows that match, before and after
//! each of those steps.

mod collection_common;

use std::collections::BTreeMap;

use collection_common::{small_options, vector};
use omendb::Metric;
use omendb::engine::collection::{Collection, CollectionOptions, Schema};
use omendb::engine::filter::{CompareOp, Filter};
use omendb::engine::index::SearchParams;
use omendb::format::{ColumnSchema, ColumnType, Value};

const DIM: usize = 8;

fn options() -> CollectionOptions {
    CollectionOptions {
        compaction_fanout: 2,
        ..small_options(250)
    }
}

fn schema() -> Schema {
    Schema::new(DIM, Metric::L2)
        .with_column(ColumnSchema {
            name: "category".into(),
            ty: ColumnType::Text,
            nullable: false,
        })
        .with_column(ColumnSchema {
            name: "price".into(),
            ty: ColumnType::Float64,
            nullable: true,
        })
}

fn row(id: u64) -> Vec<Value> {
    vec![
        Value::Text(["red", "green", "blue"][id as usize % 3].into()),
        if id.is_multiple_of(7) {
            Value::Null
        } else {
            Value::Float64((id % 100) as f64)
        },
    ]
}

fn matches(values: &[Value]) -> bool {
    // category = 'red' AND price < 50 (NULL price: unknown, no match)
    values[0] == Value::Text("red".into()) && matches!(values[1], Value::Float64(p) if p < 50.0)
}

fn filter() -> Filter {
    Filter::And(vec![
        Filter::eq("category", Value::Text("red".into())),
        Filter::cmp("price", CompareOp::Lt, Value::Float64(50.0)),
    ])
}

fn check(c: &Collection, model: &BTreeMap<u64, Vec<Value>>, stage: &str) {
    let mut got = BTreeMap::new();
    c.scan_live(&mut |id, _, values| {
        got.insert(id, values.to_vec());
    })
    .unwrap();
    assert!(&got == model, "{stage}: stored attribute values differ");
    let params = SearchParams {
        ef: 200,
        ..SearchParams::default()
    };
    let mut found = 0;
    let mut total = 0;
    for q in (0..600u64).step_by(37) {
        let query = vector(q, 0, DIM);
        let hits = c.search_filtered(&query, 10, &filter(), &params).unwrap();
        for h in &hits {
            let values = model
                .get(&h.id)
                .unwrap_or_else(|| panic!("{stage}: dead id {}", h.id));
            assert!(matches(values), "{stage}: id {} does not match", h.id);
        }
        // Exact answer over the model.
        let mut exact: Vec<(f32, u64)> = model
            .iter()
            .filter(|(_, v)| matches(v))
            .map(|(&id, _)| {
                let v = vector(id, 0, DIM);
                let d: f32 = v.iter().zip(&query).map(|(a, b)| (a - b) * (a - b)).sum();
                (d, id)
            })
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        let want: Vec<u64> = exact.iter().take(10).map(|e| e.1).collect();
        total += want.len();
        found += hits.iter().filter(|h| want.contains(&h.id)).count();
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.95, "{stage}: filtered recall {recall}");
}

#[test]
fn attributes_survive_flush_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collection::create(dir.path(), schema(), options()).unwrap();
    let mut model = BTreeMap::new();
    for chunk in (0..600u64).collect::<Vec<_>>().chunks(100) {
        let vectors: Vec<f32> = chunk.iter().flat_map(|&id| vector(id, 0, DIM)).collect();
        let values: Vec<Value> = chunk.iter().flat_map(|&id| row(id)).collect();
        c.insert(chunk, &vectors, &values).unwrap();
        for &id in chunk {
            model.insert(id, row(id));
        }
    }
    check(&c, &model, "memtables");
    let deleted: Vec<u64> = (0..600).step_by(5).collect();
    c.delete(&deleted).unwrap();
    for id in &deleted {
        model.remove(id);
    }
    c.flush().unwrap();
    check(&c, &model, "segments");
    assert!(c.compact().unwrap() >= 1);
    check(&c, &model, "compacted");
    drop(c);
    let c = Collection::open(dir.path(), options()).unwrap();
    check(&c, &model, "reopened");
    let e = c
        .search_filtered(
            &vector(1, 0, DIM),
            5,
            &Filter::eq("colour", Value::Int64(1)),
            &SearchParams::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
}
