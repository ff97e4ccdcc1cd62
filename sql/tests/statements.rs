//! Statements end to end through the executor (no network): searches
//! agree with the engine and with pgvector's definitions, errors carry the
//! right SQLSTATE, and collections take writes.

use std::path::Path;
use std::sync::Arc;

use omen_engine::index::{
    BuildOptions, MemoryRows, SearchParams, Segment, SegmentOptions, build_segment,
};
use omen_engine::rng::SplitMix64;
use omen_format::Metric;
use omen_sql::SqlError;
use omen_sql::catalog::{Catalog, SegmentTable};
use omen_sql::datum::{Datum, SqlType};
use omen_sql::exec::{Executor, Outcome, parse};
use omen_sql::session::Session;
use omen_sql::vector::DistanceOp;

const DIM: usize = 8;
const N: usize = 400;

fn vectors() -> Vec<f32> {
    let mut rng = SplitMix64::new(11);
    (0..N * DIM)
        .map(|_| rng.uniform() as f32 * 4.0 - 2.0)
        .collect()
}

fn build(dir: &Path, metric: Metric) -> std::path::PathBuf {
    let v = vectors();
    let ids: Vec<u64> = (0..N as u64).collect();
    let out = dir.join("items.omen");
    let options = BuildOptions {
        max_degree: 16,
        list_size: 32,
        upper_degree: 8,
        ..BuildOptions::default()
    };
    build_segment(
        &MemoryRows {
            dim: DIM,
            vectors: &v,
            ids: &ids,
            label: "test",
        },
        metric,
        &out,
        &options,
        &|_, _, _| {},
    )
    .unwrap();
    out
}

fn executor(dir: &Path, metric: Metric) -> (Executor, std::path::PathBuf) {
    let path = build(dir, metric);
    let catalog = Arc::new(Catalog::new());
    catalog.put(Arc::new(
        SegmentTable::open("items", &path, &SegmentOptions::default()).unwrap(),
    ));
    (Executor::new(catalog, true), path)
}

fn run(
    exec: &Executor,
    session: &mut Session,
    sql: &str,
    params: Vec<Datum>,
) -> Result<Outcome, SqlError> {
    let stmts = parse(sql)?;
    let mut last = None;
    for s in &stmts {
        last = Some(exec.execute(s, session, params.clone())?);
    }
    Ok(last.expect("one statement"))
}

fn rows(o: Outcome) -> Vec<Vec<Datum>> {
    match o {
        Outcome::Rows { rows, .. } => rows,
        other => panic!("expected rows, got {other:?}"),
    }
}

fn query() -> Vec<f32> {
    (0..DIM).map(|i| (i as f32) * 0.1 - 0.3).collect()
}

#[test]
fn search_matches_the_engine_and_pgvector_distances() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, path) = executor(dir.path(), Metric::L2);
    let mut s = Session::default();
    let q = query();
    let got = rows(run(&exec, &mut s, "SELECT id, embedding <-> $1 AS dist, embedding FROM items ORDER BY embedding <-> $1 LIMIT 10", vec![Datum::Vector(q.clone())]).unwrap());
    let segment = Segment::open(&path, &SegmentOptions::default()).unwrap();
    let (hits, _) = segment.search(&q, 10, &SearchParams::default()).unwrap();
    assert_eq!(got.len(), 10);
    let all = vectors();
    for (row, hit) in got.iter().zip(&hits) {
        assert_eq!(row[0], Datum::Int(hit.id as i64));
        let Datum::Float(d) = row[1] else {
            panic!("{row:?}")
        };
        // pgvector's <-> is the Euclidean distance, computed here from the
        // stored vector the query returned.
        let Datum::Vector(v) = &row[2] else {
            panic!("{row:?}")
        };
        assert_eq!(v.as_slice(), &all[hit.id as usize * DIM..][..DIM]);
        let exact: f64 = v
            .iter()
            .zip(&q)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((d - exact).abs() < 1e-4, "{d} vs {exact}");
    }
    // Text parameters and literals give the same answer.
    let text = omen_sql::vector::format_text(&q);
    let again = rows(
        run(
            &exec,
            &mut s,
            &format!("SELECT id FROM items ORDER BY embedding <-> '{text}' LIMIT 10"),
            vec![],
        )
        .unwrap(),
    );
    assert_eq!(
        again.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        got.iter().map(|r| r[0].clone()).collect::<Vec<_>>()
    );
    let with_param = rows(
        run(
            &exec,
            &mut s,
            "SELECT id FROM items ORDER BY embedding <-> $1 LIMIT $2",
            vec![Datum::Text(text), Datum::Text("3".into())],
        )
        .unwrap(),
    );
    assert_eq!(with_param.len(), 3);
}

#[test]
fn settings_counts_explain_and_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, path) = executor(dir.path(), Metric::L2);
    let mut s = Session::default();
    run(&exec, &mut s, "SET hnsw.ef_search = 200", vec![]).unwrap();
    assert_eq!(
        rows(run(&exec, &mut s, "SHOW omen.ef_search", vec![]).unwrap()),
        vec![vec![Datum::Text("200".into())]]
    );
    assert_eq!(
        rows(
            run(
                &exec,
                &mut s,
                "SELECT current_setting('omen.ef_search')",
                vec![]
            )
            .unwrap()
        ),
        vec![vec![Datum::Text("200".into())]]
    );
    assert_eq!(
        rows(run(&exec, &mut s, "SELECT count(*) FROM items", vec![]).unwrap()),
        vec![vec![Datum::Int(N as i64)]]
    );
    let text = plan_text(
        run(
            &exec,
            &mut s,
            "EXPLAIN SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 5",
            vec![Datum::Vector(query())],
        )
        .unwrap(),
    );
    assert!(text.contains("ef=200"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("Filter: none"), "{text}");
    let one = rows(
        run(
            &exec,
            &mut s,
            "SELECT id, embedding FROM items WHERE id = 7",
            vec![],
        )
        .unwrap(),
    );
    assert_eq!(
        one[0][1],
        Datum::Vector(vectors()[7 * DIM..8 * DIM].to_vec())
    );
    let lit = rows(run(&exec, &mut s, "SELECT '[1,2,3]'::vector <#> '[4,5,6]', cosine_distance('[1,0]', '[0,1]'), vector_dims('[1,2,3]')", vec![]).unwrap());
    assert_eq!(
        lit[0],
        vec![Datum::Float(-32.0), Datum::Float(1.0), Datum::Int(3)]
    );
}

#[test]
fn errors_carry_sqlstates() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, _) = executor(dir.path(), Metric::L2);
    let mut s = Session::default();
    let code = |sql: &str, params: Vec<Datum>| -> String {
        let mut s2 = Session::default();
        run(&exec, &mut s2, sql, params)
            .unwrap_err()
            .sqlstate()
            .to_string()
    };
    assert_eq!(code("SELEC 1", vec![]), "42601");
    assert_eq!(code("INSERT INTO items VALUES (1, '[1]')", vec![]), "25006");
    assert_eq!(code("DELETE FROM items WHERE id = 1", vec![]), "25006");
    assert_eq!(
        code(
            "SELECT id FROM items ORDER BY embedding <=> '[1,2,3,4,5,6,7,8]' DESC LIMIT 3",
            vec![]
        ),
        "0A000"
    );
    assert_eq!(
        code(
            "SELECT id FROM items ORDER BY embedding <-> '[1,2]' LIMIT 3",
            vec![]
        ),
        "22000"
    );
    assert_eq!(
        code(
            "SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 3",
            vec![Datum::Text("[1,2,3,4,5,6,7,NaN]".into())]
        ),
        "22023"
    );
    assert_eq!(
        code(
            "SELECT id FROM items ORDER BY embedding <-> $1",
            vec![Datum::Vector(query())]
        ),
        "0A000"
    );
    assert_eq!(code("SELECT id FROM nowhere", vec![]), "42P01");
    assert_eq!(code("SELECT nope FROM items WHERE id = 1", vec![]), "42703");
    assert_eq!(
        code("SELECT * FROM items a JOIN items b ON a.id = b.id", vec![]),
        "0A000"
    );
    let msg = run(&exec, &mut s, "SELECT id FROM items ORDER BY id", vec![])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("<->"),
        "the message says what is supported: {msg}"
    );
}

#[test]
fn describe_types_parameters_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, _) = executor(dir.path(), Metric::L2);
    let stmt =
        &parse("SELECT id, embedding <-> $1 AS dist FROM items ORDER BY embedding <-> $1 LIMIT $2")
            .unwrap()[0];
    let d = exec.describe(stmt, &Session::default(), vec![]).unwrap();
    assert_eq!(d.params, vec![SqlType::Vector, SqlType::Int8]);
    let cols: Vec<_> = d.columns.iter().map(|c| (c.name.as_str(), c.ty)).collect();
    assert_eq!(cols, vec![("id", SqlType::Int8), ("dist", SqlType::Float8)]);
    // What psycopg's TypeInfo.fetch asks.
    let stmt = &parse("SELECT typname AS name, oid, typarray AS array_oid, oid::regtype::text AS regtype, typdelim AS delimiter FROM pg_type t WHERE t.oid = to_regtype($1) ORDER BY t.oid").unwrap()[0];
    let mut s = Session::default();
    let out = rows(
        exec.execute(stmt, &mut s, vec![Datum::Text("vector".into())])
            .unwrap(),
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][0], Datum::Text("vector".into()));
    assert_eq!(
        out[0][1],
        Datum::Int(i64::from(omen_sql::datum::VECTOR_OID))
    );
}

#[test]
fn inner_product_tables_use_the_negative_inner_product() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, _) = executor(dir.path(), Metric::InnerProduct);
    let mut s = Session::default();
    let q = query();
    let got = rows(
        run(
            &exec,
            &mut s,
            "SELECT id, embedding <#> $1, embedding FROM items ORDER BY embedding <#> $1 LIMIT 5",
            vec![Datum::Vector(q.clone())],
        )
        .unwrap(),
    );
    for r in &got {
        let (Datum::Float(d), Datum::Vector(v)) = (&r[1], &r[2]) else {
            panic!()
        };
        let ip: f64 = v.iter().zip(&q).map(|(a, b)| f64::from(a * b)).sum();
        assert!((d + ip).abs() < 1e-4, "{d} vs -{ip}");
    }
    let ds: Vec<f64> = got
        .iter()
        .map(|r| if let Datum::Float(d) = r[1] { d } else { 0.0 })
        .collect();
    assert!(ds.windows(2).all(|w| w[0] <= w[1]), "closest first: {ds:?}");
}

#[test]
fn collections_take_writes() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Executor::new(Arc::new(Catalog::new()), false).with_data_dir(dir.path());
    let mut s = Session::default();
    let ok = |sql: &str, s: &mut Session| run(&exec, s, sql, vec![]).unwrap();
    ok(
        "CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3), category text, price float8)",
        &mut s,
    );
    assert!(matches!(
        ok(
            "INSERT INTO items VALUES (1, '[1,2,3]', 'a', 5), (2, '[4,5,6]', 'b', 20), (3, '[1,1,1]', NULL, 7)",
            &mut s
        ),
        Outcome::Command { rows: Some(3), .. }
    ));
    let near = rows(ok(
        "SELECT id, category, embedding <-> '[1,1,1]' FROM items ORDER BY embedding <-> '[1,1,1]' LIMIT 2",
        &mut s,
    ));
    assert_eq!(near[0][..2], [Datum::Int(3), Datum::Null]);
    assert_eq!(near[1][..2], [Datum::Int(1), Datum::Text("a".into())]);
    assert_eq!(near[1][2], Datum::Float(5f64.sqrt()));
    ok(
        "UPDATE items SET price = 9, embedding = '[9,9,9]' WHERE id = 3",
        &mut s,
    );
    assert_eq!(
        rows(ok(
            "SELECT price, embedding FROM items WHERE id = 3",
            &mut s
        )),
        vec![vec![Datum::Float(9.0), Datum::Vector(vec![9.0; 3])]]
    );
    assert!(matches!(
        ok("DELETE FROM items WHERE id IN (2, 42)", &mut s),
        Outcome::Command { rows: Some(1), .. }
    ));
    assert_eq!(
        rows(ok("SELECT count(*) FROM items", &mut s)),
        vec![vec![Datum::Int(2)]]
    );
    // Row 3 has price 9 and a NULL category: NULL never matches.
    assert_eq!(
        rows(ok("SELECT count(*) FROM items WHERE price < 10", &mut s)),
        vec![vec![Datum::Int(2)]]
    );
    assert_eq!(
        rows(ok(
            "SELECT count(*) FROM items WHERE category = 'a' OR category IS NULL",
            &mut s
        )),
        vec![vec![Datum::Int(2)]]
    );
    assert_eq!(
        rows(ok(
            "SELECT count(*) FROM items WHERE category <> 'a'",
            &mut s
        )),
        vec![vec![Datum::Int(0)]]
    );
    let dup = run(
        &exec,
        &mut s,
        "INSERT INTO items VALUES (1, '[0,0,0]', 'x', 1)",
        vec![],
    )
    .unwrap_err();
    assert_eq!(dup.sqlstate(), "23505", "{dup}");
    ok("DROP TABLE items", &mut s);
    assert!(!dir.path().join("items").exists());
}

/// A segment built with attribute columns: WHERE goes to the engine's
/// filtered search, every hit satisfies it, and EXPLAIN names the strategy.
#[test]
fn segment_attributes_filter_inside_the_search() {
    use omen_format::attr::{ColumnSchema, ColumnType, Value};
    use omen_format::segment::attributes::AttributeColumns;
    let dir = tempfile::tempdir().unwrap();
    let v = vectors();
    let ids: Vec<u64> = (0..N as u64).collect();
    let schema = vec![
        ColumnSchema {
            name: "category".into(),
            ty: ColumnType::Text,
            nullable: false,
        },
        ColumnSchema {
            name: "price".into(),
            ty: ColumnType::Float64,
            nullable: false,
        },
    ];
    let category = |i: usize| if i.is_multiple_of(3) { "a" } else { "b" };
    let price = |i: usize| (i % 100) as f64;
    let mut cols = AttributeColumns::new(schema).unwrap();
    for i in 0..N {
        cols.push_row(&[Value::Text(category(i).into()), Value::Float64(price(i))])
            .unwrap();
    }
    let options = BuildOptions {
        max_degree: 16,
        list_size: 32,
        upper_degree: 8,
        attributes: Some(Arc::new(cols)),
        ..BuildOptions::default()
    };
    let path = dir.path().join("shop.omen");
    build_segment(
        &MemoryRows {
            dim: DIM,
            vectors: &v,
            ids: &ids,
            label: "test",
        },
        Metric::L2,
        &path,
        &options,
        &|_, _, _| {},
    )
    .unwrap();
    let catalog = Arc::new(Catalog::new());
    catalog.put(Arc::new(
        SegmentTable::open("shop", &path, &SegmentOptions::default()).unwrap(),
    ));
    let exec = Executor::new(catalog, true);
    let mut s = Session::default();
    let q = Datum::Vector(query());
    let got = rows(run(&exec, &mut s, "SELECT id, embedding <-> $1 FROM shop WHERE category = 'a' AND price < 50 ORDER BY embedding <-> $1 LIMIT 5", vec![q.clone()]).unwrap());
    assert_eq!(got.len(), 5);
    for r in &got {
        let Datum::Int(id) = r[0] else {
            panic!("{r:?}")
        };
        assert_eq!(category(id as usize), "a", "{r:?}");
        assert!(price(id as usize) < 50.0, "{r:?}");
    }
    let text = plan_text(
        run(
            &exec,
            &mut s,
            "EXPLAIN SELECT id FROM shop WHERE category = 'a' ORDER BY embedding <-> $1 LIMIT 5",
            vec![q],
        )
        .unwrap(),
    );
    assert!(
        text.contains("Filter: category = 'a'") && text.contains("estimated selectivity"),
        "{text}"
    );
    // Attribute columns are returned per row, after a search and by id.
    let got = rows(ok_on(
        &exec,
        "SELECT id, category, price FROM shop WHERE price >= 90 ORDER BY embedding <-> '[0,0,0,0,0,0,0,0]' LIMIT 3",
        &mut s,
    ));
    assert_eq!(got.len(), 3);
    for r in &got {
        let Datum::Int(id) = r[0] else {
            panic!("{r:?}")
        };
        assert_eq!(r[1], Datum::Text(category(id as usize).into()), "{r:?}");
        assert_eq!(r[2], Datum::Float(price(id as usize)), "{r:?}");
    }
    assert_eq!(
        rows(ok_on(
            &exec,
            "SELECT category, price FROM shop WHERE id = 7",
            &mut s
        )),
        vec![vec![
            Datum::Text(category(7).into()),
            Datum::Float(price(7))
        ]]
    );
    // count(*) evaluates the filter on the segment's columns.
    let want = (0..N)
        .filter(|&i| category(i) == "a" && price(i) < 50.0)
        .count();
    assert_eq!(
        rows(ok_on(
            &exec,
            "SELECT count(*) FROM shop WHERE category = 'a' AND price < 50",
            &mut s
        )),
        vec![vec![Datum::Int(want as i64)]]
    );
    assert_eq!(
        rows(ok_on(
            &exec,
            "SELECT count(*) FROM shop WHERE price > 1000",
            &mut s
        )),
        vec![vec![Datum::Int(0)]]
    );
}

fn ok_on(exec: &Executor, sql: &str, s: &mut Session) -> Outcome {
    run(exec, s, sql, vec![]).unwrap()
}

fn plan_text(out: Outcome) -> String {
    rows(out).iter().map(|r| r[0].to_string() + "\n").collect()
}

/// pgvector: an index serves only its operator class; another operator on
/// the same column is a sequential scan with exact results. So here, on a
/// segment (with the segment's own operator still using the index).
#[test]
fn other_operators_fall_back_to_an_exact_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, _) = executor(dir.path(), Metric::L2);
    let mut s = Session::default();
    let q = query();
    let all = vectors();
    for op in [DistanceOp::Cosine, DistanceOp::NegativeInnerProduct] {
        let sql = format!(
            "SELECT id, embedding {0} $1 FROM items ORDER BY embedding {0} $1 LIMIT 7",
            op.symbol()
        );
        let got = rows(run(&exec, &mut s, &sql, vec![Datum::Vector(q.clone())]).unwrap());
        let mut exact: Vec<(f64, u64)> = (0..N)
            .map(|i| (op.eval(&all[i * DIM..(i + 1) * DIM], &q).unwrap(), i as u64))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(got.len(), 7, "{}", op.symbol());
        for (row, (best, _)) in got.iter().zip(&exact) {
            let (Datum::Int(id), Datum::Float(d)) = (&row[0], &row[1]) else {
                panic!("{row:?}")
            };
            let i = *id as usize;
            let own = op.eval(&all[i * DIM..(i + 1) * DIM], &q).unwrap();
            assert!(
                (d - own).abs() < 1e-4,
                "{}: id {id}: {d} vs {own}",
                op.symbol()
            );
            assert!(
                (d - best).abs() < 1e-4,
                "{}: {d} vs the exact {best}",
                op.symbol()
            );
        }
        let plan = plan_text(
            run(
                &exec,
                &mut s,
                &format!("EXPLAIN {sql}"),
                vec![Datum::Vector(q.clone())],
            )
            .unwrap(),
        );
        assert!(plan.contains("Exact scan on items"), "{plan}");
        assert!(
            plan.contains("Index not used") && plan.contains("vector_l2_ops"),
            "{plan}"
        );
    }
    let plan = plan_text(
        run(
            &exec,
            &mut s,
            "EXPLAIN SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 3",
            vec![Datum::Vector(q.clone())],
        )
        .unwrap(),
    );
    assert!(
        plan.contains("Vector search on items using omen") && !plan.contains("Exact scan"),
        "{plan}"
    );
    let plan = plan_text(ok_on(
        &exec,
        "EXPLAIN SELECT * FROM items WHERE id = 3",
        &mut s,
    ));
    assert!(
        plan.contains("Point lookup on items by id (1 id)"),
        "{plan}"
    );
    assert_eq!(
        rows(ok_on(
            &exec,
            "SELECT id FROM items WHERE id IN (3, 3, 9999)",
            &mut s
        )),
        vec![vec![Datum::Int(3)]],
        "IN is a set; absent ids are not rows"
    );
}

/// The same on a collection, with a filter: the exact scan honours WHERE,
/// and `WHERE id = …` reads, updates and deletes through point lookups.
#[test]
fn collections_exact_scans_and_point_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Executor::new(Arc::new(Catalog::new()), false).with_data_dir(dir.path());
    let mut s = Session::default();
    ok_on(
        &exec,
        "CREATE TABLE docs (id bigint PRIMARY KEY, embedding vector(3), category text)",
        &mut s,
    );
    ok_on(
        &exec,
        "INSERT INTO docs VALUES (1, '[5,5,0]', 'a'), (2, '[0.2,0.3,0]', 'a'), (3, '[9,0,0]', 'b'), (4, '[3,0.1,0]', 'a')",
        &mut s,
    );
    let ids = |sql: &str, s: &mut Session| -> Vec<Datum> {
        rows(ok_on(&exec, sql, s))
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    };
    let q = "'[1,0,0]'";
    // Cosine order among category 'a' is 4, 1, 2; L2 order is 2, 4, 1.
    assert_eq!(
        ids(
            &format!("SELECT id FROM docs WHERE category = 'a' ORDER BY embedding <=> {q} LIMIT 3"),
            &mut s
        ),
        vec![Datum::Int(4), Datum::Int(1), Datum::Int(2)]
    );
    assert_eq!(
        ids(
            &format!("SELECT id FROM docs WHERE category = 'a' ORDER BY embedding <-> {q} LIMIT 3"),
            &mut s
        ),
        vec![Datum::Int(2), Datum::Int(4), Datum::Int(1)]
    );
    let d = rows(ok_on(
        &exec,
        &format!("SELECT embedding <=> {q} FROM docs ORDER BY embedding <=> {q} LIMIT 1"),
        &mut s,
    ));
    assert_eq!(
        d,
        vec![vec![Datum::Float(0.0)]],
        "id 3 is parallel to the query"
    );
    let plan = plan_text(ok_on(
        &exec,
        &format!(
            "EXPLAIN SELECT id FROM docs WHERE category = 'a' ORDER BY embedding <#> {q} LIMIT 3"
        ),
        &mut s,
    ));
    assert!(
        plan.contains("Exact scan on docs") && plan.contains("Filter: category = 'a'"),
        "{plan}"
    );
    // Point lookups, also for UPDATE and DELETE.
    let plan = plan_text(ok_on(
        &exec,
        "EXPLAIN SELECT * FROM docs WHERE id IN (1, 2)",
        &mut s,
    ));
    assert!(
        plan.contains("Point lookup on docs by id (2 ids)"),
        "{plan}"
    );
    assert_eq!(
        rows(ok_on(
            &exec,
            "SELECT id FROM docs WHERE id IN (4, 1, 4)",
            &mut s
        )),
        vec![vec![Datum::Int(4)], vec![Datum::Int(1)]]
    );
    ok_on(&exec, "UPDATE docs SET category = 'c' WHERE id = 2", &mut s);
    assert_eq!(
        rows(ok_on(
            &exec,
            "SELECT category FROM docs WHERE id = 2",
            &mut s
        )),
        vec![vec![Datum::Text("c".into())]]
    );
    assert!(matches!(
        ok_on(&exec, "DELETE FROM docs WHERE id IN (2, 2, 77)", &mut s),
        Outcome::Command { rows: Some(1), .. }
    ));
    assert!(rows(ok_on(&exec, "SELECT id FROM docs WHERE id = 2", &mut s)).is_empty());
    assert_eq!(
        rows(ok_on(
            &exec,
            "SELECT count(*) FROM docs WHERE id IN (1, 2, 3, 1)",
            &mut s
        )),
        vec![vec![Datum::Int(2)]]
    );
}
