//! Filtered search: exactness against a brute-force filtered scan for every
//! predicate kind at every selectivity, under both strategies; planning,
//! zero-match filters, type errors, columns read on demand.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use omendb::Metric;
use omendb::engine::distance::Kernels;
use omendb::engine::filter::{CompareOp, Filter, SearchStrategy};
use omendb::engine::index::{BuildOptions, SearchParams, Segment, SegmentOptions, build_segment};
use omendb::engine::synth::{SynthConfig, write_dataset};
use omendb::format::attr::{ColumnSchema, ColumnType, Value};
use omendb::format::dataset::VectorFile;
use omendb::format::segment::attributes::AttributeColumns;

const N: usize = 2000;

struct Fixture {
    path: PathBuf,
    plain: PathBuf,
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    rows: Vec<Vec<Value>>,
    schema: Vec<ColumnSchema>,
}

fn col(name: &str, ty: ColumnType, nullable: bool) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        ty,
        nullable,
    }
}

/// Row `i`'s attributes: values chosen so that predicates hit 0.1% to 100%.
fn attributes(i: usize) -> Vec<Value> {
    let i64_ = i as i64;
    vec![
        Value::Int64(i64_),
        Value::Int64(i64_ % 100),
        if i.is_multiple_of(13) {
            Value::Null
        } else {
            Value::Float64((i * 7 % 1000) as f64 / 10.0)
        },
        if i.is_multiple_of(11) {
            Value::Null
        } else {
            Value::Text(format!("t{:02}", i % 50))
        },
        Value::Bool(i.is_multiple_of(3)),
        Value::Timestamp(i64_ * 1_000_000),
    ]
}

fn build(dir: &Path) -> Fixture {
    let config = SynthConfig {
        n: N as u64,
        dim: 16,
        queries: 12,
        seed: 5,
        element: omendb::ElementType::F32,
    };
    let summary = write_dataset(&config, dir, &|_| {}).unwrap();
    let base = VectorFile::<f32>::open(&summary.base_path).unwrap();
    let queries = VectorFile::<f32>::open(&summary.query_path).unwrap();
    let schema = vec![
        col("id", ColumnType::Int64, false),
        col("bucket", ColumnType::Int64, false),
        col("score", ColumnType::Float64, true),
        col("tag", ColumnType::Text, true),
        col("flag", ColumnType::Bool, false),
        col("at", ColumnType::Timestamp, false),
    ];
    let rows: Vec<Vec<Value>> = (0..N).map(attributes).collect();
    let mut cols = AttributeColumns::new(schema.clone()).unwrap();
    for r in &rows {
        cols.push_row(r).unwrap();
    }
    let mut options = BuildOptions {
        max_degree: 24,
        list_size: 48,
        upper_degree: 8,
        training_sample: 5000,
        attributes: Some(Arc::new(cols)),
        ..BuildOptions::default()
    };
    let path = dir.join("attrs.omen");
    let reader = base.row_reader().unwrap();
    build_segment(&reader, Metric::L2, &path, &options, &|_, _, _| {}).unwrap();
    options.attributes = None;
    let plain = dir.join("plain.omen");
    build_segment(&reader, Metric::L2, &plain, &options, &|_, _, _| {}).unwrap();
    let all = |f: &VectorFile<f32>| (0..f.len()).map(|i| f.row(i).to_vec()).collect();
    Fixture {
        path,
        plain,
        base: all(&base),
        queries: all(&queries),
        rows,
        schema,
    }
}

/// SQL semantics by the book, on `Value`s: `Some(true)`, `Some(false)` or
/// unknown (`None`).
fn truth(f: &Filter, schema: &[ColumnSchema], row: &[Value]) -> Option<bool> {
    let get = |c: &str| &row[schema.iter().position(|s| s.name == c).unwrap()];
    let cmp = |a: &Value, op: CompareOp, b: &Value| -> Option<bool> {
        let o = a.sql_cmp(b)?;
        Some(match op {
            CompareOp::Eq => o == Ordering::Equal,
            CompareOp::Ne => o != Ordering::Equal,
            CompareOp::Lt => o == Ordering::Less,
            CompareOp::Le => o != Ordering::Greater,
            CompareOp::Gt => o == Ordering::Greater,
            CompareOp::Ge => o != Ordering::Less,
        })
    };
    match f {
        Filter::Compare { column, op, value } => cmp(get(column), *op, value),
        Filter::Between { column, low, high } => truth(
            &Filter::And(vec![
                Filter::cmp(column.clone(), CompareOp::Ge, low.clone()),
                Filter::cmp(column.clone(), CompareOp::Le, high.clone()),
            ]),
            schema,
            row,
        ),
        Filter::In { column, values } => {
            let mut out = Some(false);
            for v in values {
                match cmp(get(column), CompareOp::Eq, v) {
                    Some(true) => return Some(true),
                    None => out = None,
                    Some(false) => {}
                }
            }
            out
        }
        Filter::IsNull { column } => Some(get(column).is_null()),
        Filter::And(parts) => {
            let mut out = Some(true);
            for p in parts {
                match truth(p, schema, row) {
                    Some(false) => return Some(false),
                    None => out = None,
                    Some(true) => {}
                }
            }
            out
        }
        Filter::Or(parts) => {
            let mut out = Some(false);
            for p in parts {
                match truth(p, schema, row) {
                    Some(true) => return Some(true),
                    None => out = None,
                    Some(false) => {}
                }
            }
            out
        }
        Filter::Not(inner) => truth(inner, schema, row).map(|t| !t),
    }
}

fn brute_force(fx: &Fixture, query: &[f32], k: usize, f: &Filter) -> Vec<u64> {
    let kernels = Kernels::<f32>::best();
    let mut all: Vec<(f32, u64)> = (0..N)
        .filter(|&i| truth(f, &fx.schema, &fx.rows[i]) == Some(true))
        .map(|i| (kernels.distance(Metric::L2, query, &fx.base[i]), i as u64))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

fn i(v: i64) -> Value {
    Value::Int64(v)
}
fn t(s: &str) -> Value {
    Value::Text(s.into())
}

/// Every predicate kind, each at several selectivities (comment: matching
/// rows of 2000).
fn filters() -> Vec<Filter> {
    use CompareOp::*;
    vec![
        Filter::eq("id", i(1234)),                      // 1 row (0.05%)
        Filter::eq("bucket", i(7)),                     // 20 (1%)
        Filter::eq("tag", t("t07")),                    // ~36 (2%)
        Filter::cmp("id", Lt, i(2)),                    // 2 (0.1%)
        Filter::cmp("id", Le, i(19)),                   // 20 (1%)
        Filter::cmp("id", Gt, i(1799)),                 // 200 (10%)
        Filter::cmp("id", Ge, i(1000)),                 // 1000 (50%)
        Filter::cmp("score", Lt, Value::Float64(10.0)), // ~9%
        Filter::cmp("score", Ge, i(50)),                // int literal on a float column
        Filter::cmp("bucket", Le, Value::Float64(4.5)), // float literal on an int column
        Filter::cmp("id", Ne, i(5)),                    // ~100%
        Filter::cmp("tag", Ne, t("t01")),               // NULLs excluded
        Filter::cmp("tag", Lt, t("t05")),               // text range
        Filter::cmp("tag", Ge, t("t45")),
        Filter::cmp("flag", Eq, Value::Bool(true)), // 33%
        Filter::cmp("at", Lt, Value::Timestamp(20_000_000)), // 1%
        Filter::In {
            column: "bucket".into(),
            values: vec![i(1), i(2), i(99)],
        }, // 3%
        Filter::In {
            column: "tag".into(),
            values: vec![t("t03"), t("zzz"), Value::Null],
        },
        Filter::In {
            column: "score".into(),
            values: vec![Value::Float64(0.7), i(1)],
        },
        Filter::Between {
            column: "id".into(),
            low: i(100),
            high: i(299),
        }, // 10%
        Filter::Between {
            column: "at".into(),
            low: Value::Timestamp(0),
            high: Value::Timestamp(1_000_000_000),
        }, // 50%
        Filter::IsNull {
            column: "score".into(),
        }, // 7.7%
        Filter::Not(Box::new(Filter::IsNull {
            column: "tag".into(),
        })),
        Filter::And(vec![
            Filter::cmp("bucket", Lt, i(50)),
            Filter::eq("flag", Value::Bool(false)),
        ]),
        Filter::Or(vec![
            Filter::eq("bucket", i(3)),
            Filter::cmp("score", Gt, Value::Float64(99.0)),
        ]),
        Filter::Not(Box::new(Filter::cmp("score", Lt, Value::Float64(50.0)))),
        Filter::Or(vec![
            Filter::cmp("score", Lt, Value::Null),
            Filter::eq("bucket", i(9)),
        ]),
    ]
}

fn fixture() -> &'static Fixture {
    static FX: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FX.get_or_init(|| {
        // Kept for the whole test binary: the segment files live in it.
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        build(dir.path())
    })
}

#[test]
fn evaluation_matches_sql_semantics_row_by_row() {
    let fx = fixture();
    let segment = Segment::open(&fx.path, &SegmentOptions::default()).unwrap();
    assert_eq!(segment.attribute_schema(), fx.schema);
    // Rows are stored in node order; the filter sees node rows, so map
    // through the external ids.
    let mut id_of_row = vec![0u64; N];
    segment
        .scan_rows(|row, id, _| {
            id_of_row[row as usize] = id;
            Ok(())
        })
        .unwrap();
    for f in filters() {
        let compiled = segment.compile_filter(&f).unwrap();
        let want: Vec<u64> = (0..N as u64)
            .filter(|&id| truth(&f, &fx.schema, &fx.rows[id as usize]) == Some(true))
            .collect();
        let mut by_bitmap: Vec<u64> = compiled
            .matching_rows()
            .iter()
            .map(|&r| id_of_row[r as usize])
            .collect();
        by_bitmap.sort_unstable();
        assert_eq!(by_bitmap, want, "bitmap evaluation of {f}");
        let mut by_row: Vec<u64> = (0..N)
            .filter(|&r| compiled.matches(r))
            .map(|r| id_of_row[r])
            .collect();
        by_row.sort_unstable();
        assert_eq!(by_row, want, "row evaluation of {f}");
    }
}

#[test]
fn both_strategies_are_exact_when_allowed_to_look_everywhere() {
    let fx = fixture();
    let segment = Segment::open(&fx.path, &SegmentOptions::default()).unwrap();
    let everything = SearchParams {
        ef: N,
        stop_permille: None,
        ..SearchParams::default()
    };
    for f in filters() {
        for q in &fx.queries[..4] {
            let want = brute_force(fx, q, 10, &f);
            for strategy in [SearchStrategy::ExactScan, SearchStrategy::FilteredWalk] {
                let (hits, stats) = segment
                    .search_filtered_using(q, 10, &f, &everything, strategy)
                    .unwrap();
                let got: Vec<u64> = hits.iter().map(|h| h.id).collect();
                assert_eq!(got, want, "{strategy} on {f}");
                assert_eq!(stats.strategy, strategy);
            }
        }
    }
}

#[test]
fn planned_search_returns_only_matches_with_high_recall() {
    let fx = fixture();
    let segment = Segment::open(&fx.path, &SegmentOptions::default()).unwrap();
    let params = SearchParams::default();
    let (mut found, mut wanted) = (0usize, 0usize);
    for f in filters() {
        let plan = segment.plan_filter(&f).unwrap();
        for q in &fx.queries {
            let want = brute_force(fx, q, 10, &f);
            let (hits, stats) = segment.search_filtered(q, 10, &f, &params).unwrap();
            assert_eq!(stats.strategy, plan.strategy, "{f}");
            for h in &hits {
                assert_eq!(
                    truth(&f, &fx.schema, &fx.rows[h.id as usize]),
                    Some(true),
                    "{f} returned id {}",
                    h.id
                );
            }
            assert_eq!(hits.len(), want.len(), "{f}: {plan}");
            found += hits.iter().filter(|h| want.contains(&h.id)).count();
            wanted += want.len();
        }
    }
    let recall = found as f64 / wanted as f64;
    eprintln!("planned filtered search: recall@10 {recall:.3}");
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn plans_follow_the_statistics() {
    let fx = fixture();
    let segment = Segment::open(&fx.path, &SegmentOptions::default()).unwrap();
    let plan = segment.plan_filter(&Filter::eq("id", i(5))).unwrap();
    assert_eq!(plan.strategy, SearchStrategy::ExactScan, "{plan}");
    assert!(plan.estimated_rows() < 5.0, "{plan}");
    let plan = segment
        .plan_filter(&Filter::cmp("id", CompareOp::Ge, i(1000)))
        .unwrap();
    assert_eq!(plan.strategy, SearchStrategy::FilteredWalk, "{plan}");
    assert!((plan.selectivity - 0.5).abs() < 0.05, "{plan}");
    // The most common values are exact.
    let plan = segment
        .plan_filter(&Filter::eq("flag", Value::Bool(true)))
        .unwrap();
    assert!((plan.selectivity - 667.0 / 2000.0).abs() < 1e-9, "{plan}");
    assert_eq!(plan.columns, vec![("flag".to_string(), true)]);
}

#[test]
fn filters_matching_nothing_return_nothing_without_reading() {
    let fx = fixture();
    let segment = Segment::open(&fx.path, &SegmentOptions::default()).unwrap();
    let params = SearchParams::default();
    // Outside [min, max]: the statistics prove it.
    let f = Filter::eq("id", i(-5));
    assert_eq!(
        segment.plan_filter(&f).unwrap().strategy,
        SearchStrategy::NoMatch
    );
    let (hits, stats) = segment
        .search_filtered(&fx.queries[0], 10, &f, &params)
        .unwrap();
    assert!(hits.is_empty());
    assert_eq!(
        (stats.pages_read, stats.strategy),
        (0, SearchStrategy::NoMatch)
    );
    // Not provable from the statistics: the scan finds no row, reads nothing.
    for f in [
        Filter::eq("tag", t("nope")),
        Filter::And(vec![Filter::eq("bucket", i(1)), Filter::eq("bucket", i(2))]),
        Filter::cmp("score", CompareOp::Eq, Value::Null),
    ] {
        let (hits, stats) = segment
            .search_filtered(&fx.queries[0], 10, &f, &params)
            .unwrap();
        assert!(hits.is_empty(), "{f}");
        assert_eq!(stats.pages_read, 0, "{f}: {stats:?}");
    }
}

#[test]
fn type_mismatches_and_unknown_columns_get_clear_errors() {
    let fx = fixture();
    let segment = Segment::open(&fx.path, &SegmentOptions::default()).unwrap();
    let params = SearchParams::default();
    let q = &fx.queries[0];
    let err = segment
        .search_filtered(q, 10, &Filter::eq("bucket", t("seven")), &params)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"bucket\"") && err.contains("int64") && err.contains("'seven'"),
        "{err}"
    );
    let err = segment
        .plan_filter(&Filter::Between {
            column: "at".into(),
            low: i(1),
            high: i(2),
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"at\"") && err.contains("timestamp"), "{err}");
    let err = segment
        .search_filtered(q, 10, &Filter::eq("colour", t("red")), &params)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"colour\"") && err.contains("bucket"),
        "{err}"
    );
    // A segment without attributes says so.
    let plain = Segment::open(&fx.plain, &SegmentOptions::default()).unwrap();
    let err = plain
        .search_filtered(q, 10, &Filter::eq("bucket", i(1)), &params)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no attribute columns"), "{err}");
    // And the segment keeps serving.
    assert_eq!(segment.search(q, 10, &params).unwrap().0.len(), 10);
}

#[test]
fn columns_over_the_budget_are_read_on_demand() {
    let fx = fixture();
    let resident = Segment::open(&fx.path, &SegmentOptions::default()).unwrap();
    let on_demand = Segment::open(
        &fx.path,
        &SegmentOptions {
            attribute_budget: 0,
            ..SegmentOptions::default()
        },
    )
    .unwrap();
    assert!(on_demand.ram_bytes() < resident.ram_bytes());
    let f = Filter::cmp("score", CompareOp::Lt, Value::Float64(10.0));
    assert_eq!(
        on_demand.plan_filter(&f).unwrap().columns,
        vec![("score".to_string(), false)]
    );
    let params = SearchParams::default();
    for q in &fx.queries {
        assert_eq!(
            resident.search_filtered(q, 10, &f, &params).unwrap().0,
            on_demand.search_filtered(q, 10, &f, &params).unwrap().0
        );
    }
}

#[test]
fn attributes_attached_to_a_built_segment_search_like_built_ones() {
    let fx = fixture();
    let mut cols = AttributeColumns::new(fx.schema.clone()).unwrap();
    for r in &fx.rows {
        cols.push_row(r).unwrap();
    }
    let out = fx.plain.with_file_name("attached.omen");
    omendb::engine::index::attach_attributes(&fx.plain, &cols, &out).unwrap();
    let attached = Segment::open(&out, &SegmentOptions::default()).unwrap();
    // (Two builds need not give the same graph, so compare with the brute
    // force rather than with the segment built with attributes.)
    let everything = SearchParams {
        ef: N,
        stop_permille: None,
        ..SearchParams::default()
    };
    for f in filters() {
        for q in &fx.queries[..3] {
            let (hits, _) = attached
                .search_filtered_using(q, 10, &f, &everything, SearchStrategy::ExactScan)
                .unwrap();
            let got: Vec<u64> = hits.iter().map(|h| h.id).collect();
            assert_eq!(got, brute_force(fx, q, 10, &f), "{f}");
        }
    }
    // The copy passes a full verification, and a second attach is refused.
    let file = omendb::format::segment::SegmentFile::open(
        &out,
        omendb::format::segment::OpenOptions {
            verify: omendb::format::segment::Verify::Full,
        },
    )
    .unwrap();
    assert!(file.attributes().unwrap().is_some());
    let err =
        omendb::engine::index::attach_attributes(&out, &cols, &out.with_file_name("again.omen"))
            .unwrap_err()
            .to_string();
    assert!(err.contains("attributes") && err.contains("twice"), "{err}");
}
