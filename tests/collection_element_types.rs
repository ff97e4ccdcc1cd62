//! Collections of f16, u8 and i8 vectors (SPEC.md §8.3, §8.5): rows are
//! checked against the type, the WAL and the segments store it, and every
//! part (memtable, flat flushes, compacted graphs, WAL replay) answers
//! exactly what a brute-force scan of the stored values answers.

mod collection_common;

use std::collections::BTreeMap;

use collection_common::{live, small_options};
use omendb::engine::collection::{Collection, Schema, inspect};
use omendb::engine::index::SearchParams;
use omendb::engine::rng::SplitMix64;
use omendb::format::segment::SegmentFile;
use omendb::{ElementType, Metric};

const DIM: usize = 8;

/// A vector the type holds exactly (f16: any float; it is rounded).
fn vector(element: ElementType, id: u64, version: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(id.wrapping_mul(0x9E37_79B9) ^ version);
    (0..DIM)
        .map(|_| {
            let u = rng.uniform() as f32;
            match element {
                ElementType::F32 | ElementType::F16 => u * 20.0 - 10.0,
                ElementType::U8 => (u * 255.0).floor(),
                ElementType::I8 => (u * 255.0).floor() - 128.0,
            }
        })
        .collect()
}

fn vectors(element: ElementType, ids: &[u64], version: u64) -> Vec<f32> {
    ids.iter()
        .flat_map(|&id| vector(element, id, version))
        .collect()
}

fn stored(element: ElementType, v: Vec<f32>) -> Vec<f32> {
    match element {
        ElementType::F16 => v
            .into_iter()
            .map(|x| half::f16::from_f32(x).to_f32())
            .collect(),
        _ => v,
    }
}

fn check_exact(c: &Collection, element: ElementType, expected: &BTreeMap<u64, Vec<f32>>) {
    assert_eq!(&live(c), expected, "{element}: stored values");
    let params = SearchParams {
        ef: 1000,
        stop_permille: None,
        ..SearchParams::default()
    };
    for q in 0..12u64 {
        let query = vector(element, 7000 + q, 9);
        let mut all: Vec<(f32, u64)> = expected
            .iter()
            .map(|(&id, v)| {
                let d = v.iter().zip(&query).map(|(a, b)| (a - b) * (a - b)).sum();
                (d, id)
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let want: Vec<u64> = all.iter().take(10).map(|x| x.1).collect();
        let hits = c.search(&query, 10, &params).unwrap();
        let got: Vec<u64> = hits.iter().map(|h| h.id).collect();
        assert_eq!(got, want, "{element}: query {q}");
        for (h, w) in hits.iter().zip(&all) {
            assert!((h.distance - w.0).abs() <= 1e-3 * w.0.max(1.0), "{element}");
        }
    }
}

fn segment_types(c: &Collection) -> Vec<ElementType> {
    inspect(c.dir())
        .unwrap()
        .segments
        .iter()
        .map(|s| {
            SegmentFile::open(c.dir().join(&s.file), Default::default())
                .unwrap()
                .info()
                .element_type
        })
        .collect()
}

#[test]
fn every_element_type_is_stored_and_searched_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for element in [ElementType::F16, ElementType::U8, ElementType::I8] {
        let path = dir.path().join(element.to_string());
        let mut options = small_options(150);
        options.compaction_fanout = 2;
        let schema = Schema {
            element_type: element,
            ..Schema::new(DIM, Metric::L2)
        };
        let c = Collection::create(&path, schema, options.clone()).unwrap();
        let mut expected = BTreeMap::new();
        let ids: Vec<u64> = (0..400).collect();
        for chunk in ids.chunks(100) {
            c.insert(chunk, &vectors(element, chunk, 0), &[]).unwrap();
        }
        for &id in &ids {
            expected.insert(id, stored(element, vector(element, id, 0)));
        }
        // Memtable and frozen memtables, then flat segments.
        check_exact(&c, element, &expected);
        c.flush().unwrap();
        assert!(!segment_types(&c).is_empty());
        assert!(segment_types(&c).iter().all(|&t| t == element), "{element}");
        check_exact(&c, element, &expected);

        // Upserts and deletes over the segments, then compaction: graphs.
        let moved: Vec<u64> = (0..400).step_by(5).collect();
        c.upsert(&moved, &vectors(element, &moved, 1), &[]).unwrap();
        for &id in &moved {
            expected.insert(id, stored(element, vector(element, id, 1)));
        }
        let gone: Vec<u64> = (1..400).step_by(9).collect();
        c.delete(&gone).unwrap();
        for id in &gone {
            expected.remove(id);
        }
        c.flush().unwrap();
        assert!(c.compact().unwrap() >= 1);
        assert!(segment_types(&c).iter().all(|&t| t == element), "{element}");
        check_exact(&c, element, &expected);

        // Typed WAL records replay.
        let recent: Vec<u64> = (900..930).collect();
        c.insert(&recent, &vectors(element, &recent, 0), &[])
            .unwrap();
        for &id in &recent {
            expected.insert(id, stored(element, vector(element, id, 0)));
        }
        c.close().unwrap();
        let c = Collection::open(&path, options).unwrap();
        assert_eq!(c.schema().element_type, element);
        check_exact(&c, element, &expected);
        c.close().unwrap();
    }
}

#[test]
fn out_of_range_values_name_the_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(ElementType, f32, &str); 6] = [
        (ElementType::U8, 300.0, "outside u8"),
        (ElementType::U8, -1.0, "outside u8"),
        (ElementType::U8, 1.5, "not an integer"),
        (ElementType::I8, -129.0, "outside i8"),
        (ElementType::I8, 128.0, "outside i8"),
        (ElementType::F16, 1.0e6, "outside the f16 range"),
    ];
    for (i, (element, bad, why)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("c{i}"));
        let schema = Schema {
            element_type: element,
            ..Schema::new(DIM, Metric::L2)
        };
        let c = Collection::create(&path, schema, small_options(100)).unwrap();
        let ids = [5u64, 6, 7];
        let mut v = vectors(element, &ids, 0);
        v[2 * DIM + 3] = bad;
        let err = c.insert(&ids, &v, &[]).unwrap_err().to_string();
        assert!(
            err.contains("row 7")
                && err.contains("vector column, component 3")
                && err.contains(why),
            "{element} {bad}: {err}"
        );
        assert!(c.is_empty(), "a refused batch writes nothing");
        // The collection keeps serving.
        c.insert(&ids, &vectors(element, &ids, 0), &[]).unwrap();
        assert_eq!(c.len(), 3);
    }
}
