//! Base-layer graph builders: recall on clustered data for every metric and
//! two element types, exactness when the list covers the set, structural
//! invariants, determinism, and block reordering.

mod graph_common;

use graph_common::{dataset, ground_truth, recall, type_name};
use omendb::Metric;
use omendb::engine::distance::Element;
use omendb::engine::graph::search::SearchParams;
use omendb::engine::graph::{
    BuildParams, Builder, Graph, Permutation, SearchScratch, beam_search, block_order, build_graph,
    build_graph_from_rows, same_page_fraction,
};
use omendb::engine::synth::SynthElement;
use omendb::engine::vectors::{FlatVectors, VectorSet};

const DIM: usize = 32;

fn search_all<T: Element>(
    graph: &Graph,
    base: &FlatVectors<'_, T>,
    queries: &FlatVectors<'_, T>,
    metric: Metric,
    params: &SearchParams,
) -> (Vec<Vec<u32>>, f64) {
    let mut scratch = SearchScratch::new(graph.len());
    let mut expanded = 0usize;
    let found = (0..queries.len())
        .map(|qi| {
            let (res, stats) = beam_search(
                graph,
                base,
                metric,
                queries.get(qi),
                &[],
                params,
                &mut scratch,
            );
            expanded += stats.expanded;
            res.iter().map(|n| n.id).collect()
        })
        .collect();
    (found, expanded as f64 / queries.len() as f64)
}

fn assert_well_formed(graph: &Graph, n: usize, r: usize, metric: Metric) {
    assert_eq!(graph.len(), n);
    assert_eq!(graph.max_degree(), r);
    assert_eq!(graph.find_violation(), None);
    for u in 0..n as u32 {
        let list = graph.neighbours(u);
        assert!(list.len() <= r);
        assert!(!list.contains(&u), "self loop at {u}");
    }
    // Every node is reachable from the entry, or no search could find it.
    let mut seen = vec![false; n];
    let mut stack = vec![graph.entry()];
    seen[graph.entry() as usize] = true;
    while let Some(u) = stack.pop() {
        for &v in graph.neighbours(u) {
            if !seen[v as usize] {
                seen[v as usize] = true;
                stack.push(v);
            }
        }
    }
    let unreached = seen.iter().filter(|&&s| !s).count();
    if metric == Metric::InnerProduct {
        // MIPS graphs route towards large norms; points inside the hull are
        // legitimately unreachable (see build.rs); recall is what counts.
        eprintln!("inner product: {unreached} of {n} nodes unreachable from the entry");
    } else {
        assert_eq!(unreached, 0, "unreachable nodes");
    }
    // A pruned graph that is still connected keeps most nodes well linked.
    assert!(
        graph.mean_degree() > 2.0,
        "mean degree {}",
        graph.mean_degree()
    );
}

fn check_recall<T: SynthElement + Element>(metric: Metric, params: BuildParams, bound: f64) {
    check_recall_of(metric, params, bound, |rows: Vec<T>| {
        let base = FlatVectors::new(&rows, DIM).unwrap();
        build_graph(&base, metric, &params, &|_, _| {}).unwrap()
    });
}

/// [`check_recall`] of the graph that `build` makes from the rows.
fn check_recall_of<T: SynthElement + Element>(
    metric: Metric,
    params: BuildParams,
    bound: f64,
    build: impl FnOnce(Vec<T>) -> Graph,
) {
    let n = 6000;
    let (rows, queries) = dataset::<T>(7, n, 200, DIM);
    let base = FlatVectors::new(&rows, DIM).unwrap();
    let queries = FlatVectors::new(&queries, DIM).unwrap();
    let graph = build(rows.clone());
    assert_well_formed(&graph, n, params.max_degree, metric);
    let truth = ground_truth(&base, &queries, metric, 10);
    let search = SearchParams {
        k: 10,
        list_size: 64,
        nodes_per_page: 0,
    };
    let (found, expanded) = search_all(&graph, &base, &queries, metric, &search);
    let r = recall(&truth, &found, 10);
    eprintln!(
        "{:?} {metric:?} {}: recall@10 {r:.4}, {expanded:.1} expanded",
        params.builder,
        type_name::<T>()
    );
    assert!(
        r >= bound,
        "{:?} {metric:?} {}: recall {r} < {bound}",
        params.builder,
        type_name::<T>()
    );
}

#[test]
fn vamana_recall_f32_all_metrics() {
    check_recall::<f32>(Metric::L2, BuildParams::vamana(24, 48), 0.97);
    check_recall::<f32>(Metric::Cosine, BuildParams::vamana(24, 48), 0.97);
    check_recall::<f32>(Metric::InnerProduct, BuildParams::vamana(24, 48), 0.95);
}

/// One pass with `alpha`, as DiskANN builds and as segment builds default to.
#[test]
fn one_pass_vamana_recall_f32_all_metrics() {
    let one_pass = BuildParams {
        one_pass: true,
        ..BuildParams::vamana(24, 48)
    };
    check_recall::<f32>(Metric::L2, one_pass, 0.97);
    check_recall::<f32>(Metric::Cosine, one_pass, 0.97);
    check_recall::<f32>(Metric::InnerProduct, one_pass, 0.95);
}

#[test]
fn vamana_recall_u8_all_metrics() {
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        check_recall::<u8>(metric, BuildParams::vamana(24, 48), 0.95);
    }
}

#[test]
fn hnsw_heuristic_recall_f32() {
    for metric in [Metric::L2, Metric::Cosine] {
        check_recall::<f32>(metric, BuildParams::hnsw(24, 48), 0.93);
    }
}

#[test]
fn saturation_fills_lists_and_keeps_recall() {
    let n = 4000;
    let (base, queries) = dataset::<f32>(13, n, 100, DIM);
    let base = FlatVectors::new(&base, DIM).unwrap();
    let queries = FlatVectors::new(&queries, DIM).unwrap();
    let truth = ground_truth(&base, &queries, Metric::L2, 10);
    let search = SearchParams {
        k: 10,
        list_size: 24,
        nodes_per_page: 0,
    };
    let plain = BuildParams::vamana(24, 48);
    // Re-prunes fill to the default share of R, or all the way.
    let partial = BuildParams {
        saturate: true,
        ..plain
    };
    let full = BuildParams {
        reprune_fill: 1.0,
        ..partial
    };
    let mut results = Vec::new();
    for params in [plain, partial, full] {
        let graph = build_graph(&base, Metric::L2, &params, &|_, _| {}).unwrap();
        assert_well_formed(&graph, n, params.max_degree, Metric::L2);
        let (found, expanded) = search_all(&graph, &base, &queries, Metric::L2, &search);
        let r = recall(&truth, &found, 10);
        eprintln!(
            "saturate {}, re-prune fill {}: mean degree {:.1}, recall@10 {r:.4}, {expanded:.1} expanded",
            params.saturate,
            params.reprune_fill,
            graph.mean_degree()
        );
        results.push((graph.mean_degree(), r));
    }
    let (plain_degree, plain_recall) = results[0];
    let (partial_degree, partial_recall) = results[1];
    let (full_degree, full_recall) = results[2];
    // The search lists hold 48 candidates: almost every list fills to R.
    assert!(
        full_degree > 0.95 * 24.0,
        "saturated mean degree {full_degree}"
    );
    // Re-pruned lists hold at least 18 edges, and reverse edges refill them.
    assert!(
        partial_degree > 0.8 * 24.0 && partial_degree < full_degree,
        "{partial_degree} vs {full_degree}"
    );
    assert!(
        partial_degree > plain_degree + 1.0,
        "{plain_degree} vs {partial_degree}"
    );
    for r in [partial_recall, full_recall] {
        assert!(r >= plain_recall - 0.01, "{plain_recall} vs {r}");
    }
}

#[test]
fn list_covering_the_set_gives_exact_results() {
    let n = 600;
    let (base, queries) = dataset::<f32>(11, n, 30, 16);
    let base = FlatVectors::new(&base, 16).unwrap();
    let queries = FlatVectors::new(&queries, 16).unwrap();
    for builder in [BuildParams::vamana(12, 32), BuildParams::hnsw(12, 32)] {
        let graph = build_graph(&base, Metric::L2, &builder, &|_, _| {}).unwrap();
        let truth = ground_truth(&base, &queries, Metric::L2, 10);
        let search = SearchParams {
            k: 10,
            list_size: n,
            nodes_per_page: 0,
        };
        let (found, expanded) = search_all(&graph, &base, &queries, Metric::L2, &search);
        assert_eq!(found, truth, "{:?}", builder.builder);
        // Every node is reachable from the entry.
        assert!(
            (expanded - n as f64).abs() < 1e-9,
            "{:?}: expanded {expanded}",
            builder.builder
        );
    }
}

/// A rayon pool of one thread, on which a build is sequential and so a
/// pure function of its inputs and seed.
fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
}

#[test]
fn single_threaded_build_is_deterministic() {
    let (base, _) = dataset::<f32>(3, 2000, 1, DIM);
    let base = FlatVectors::new(&base, DIM).unwrap();
    let pool = one_thread();
    let params = BuildParams::vamana(16, 32);
    let a = pool.install(|| build_graph(&base, Metric::L2, &params, &|_, _| {}).unwrap());
    let b = pool.install(|| build_graph(&base, Metric::L2, &params, &|_, _| {}).unwrap());
    assert_eq!(a, b);
    let other = BuildParams { seed: 99, ..params };
    let c = pool.install(|| build_graph(&base, Metric::L2, &other, &|_, _| {}).unwrap());
    assert_ne!(a, c, "the seed must matter");
}

/// Building over rows it owns, the builder stores them region by region
/// (6,000 rows make five cells) and renames the graph back at the end.
/// With one thread and one pass, and no two distances equal (random f32
/// rows), that is the graph `build_graph` makes, edge for edge.
#[test]
fn building_over_owned_rows_gives_the_same_graph() {
    let (rows, _) = dataset::<f32>(13, 6000, 1, DIM);
    let base = FlatVectors::new(&rows, DIM).unwrap();
    let pool = one_thread();
    let params = BuildParams {
        one_pass: true,
        ..BuildParams::vamana(16, 32)
    };
    for metric in [Metric::L2, Metric::InnerProduct] {
        let (a, b) = pool.install(|| {
            (
                build_graph(&base, metric, &params, &|_, _| {}).unwrap(),
                build_graph_from_rows(rows.clone(), DIM, metric, &params, &|_, _| {}).unwrap(),
            )
        });
        assert!(a == b, "{metric:?}: the graphs differ");
    }
    let short = rows[..rows.len() - 1].to_vec();
    assert!(build_graph_from_rows(short, DIM, Metric::L2, &params, &|_, _| {}).is_err());
}

/// The same over 8-bit rows, whose equal distances the new names break
/// differently, with two passes and every thread: the recall holds.
#[test]
fn owned_rows_build_recall_u8() {
    let params = BuildParams::vamana(24, 48);
    check_recall_of::<u8>(Metric::L2, params, 0.95, |rows| {
        build_graph_from_rows(rows, DIM, Metric::L2, &params, &|_, _| {}).unwrap()
    });
}

#[test]
fn progress_reaches_the_total_and_is_monotone_enough() {
    let (base, _) = dataset::<f32>(5, 3000, 1, 16);
    let base = FlatVectors::new(&base, 16).unwrap();
    let last = std::sync::Mutex::new((0u64, 0u64, 0usize));
    build_graph(
        &base,
        Metric::L2,
        &BuildParams::vamana(8, 16),
        &|done, total| {
            let mut l = last.lock().unwrap();
            l.0 = l.0.max(done);
            l.1 = total;
            l.2 += 1;
        },
    )
    .unwrap();
    let (done, total, calls) = *last.lock().unwrap();
    assert_eq!(total, 6000, "two passes over 3000 nodes");
    assert_eq!(done, total);
    assert!((2..=64).contains(&calls), "{calls} calls");
}

#[test]
fn tiny_and_degenerate_inputs() {
    let empty: Vec<f32> = Vec::new();
    let set = FlatVectors::new(&empty, 4).unwrap();
    let g = build_graph(&set, Metric::L2, &BuildParams::vamana(8, 16), &|_, _| {}).unwrap();
    assert!(g.is_empty());
    // Identical points: all distances zero, pruning must not loop or panic.
    let same = vec![1.0f32; 4 * 50];
    let set = FlatVectors::new(&same, 4).unwrap();
    let g = build_graph(&set, Metric::L2, &BuildParams::vamana(8, 16), &|_, _| {}).unwrap();
    assert_eq!(g.find_violation(), None);
    let one = vec![0.5f32; 4];
    let set = FlatVectors::new(&one, 4).unwrap();
    let g = build_graph(&set, Metric::Cosine, &BuildParams::hnsw(8, 16), &|_, _| {}).unwrap();
    assert_eq!(g.degree(0), 0);
    assert!(build_graph(&set, Metric::L2, &BuildParams::vamana(0, 16), &|_, _| {}).is_err());
    assert!(matches!(
        build_graph(
            &set,
            Metric::L2,
            &BuildParams {
                alpha: f32::NAN,
                ..BuildParams::vamana(8, 16)
            },
            &|_, _| {}
        ),
        Err(omendb::engine::EngineError::InvalidArgument(_))
    ));
}

#[test]
fn from_parts_rejects_broken_graphs() {
    let ok = Graph::from_parts(2, 0, vec![1, 1], vec![1, u32::MAX, 0, u32::MAX]);
    assert!(ok.is_ok());
    for (degrees, slots) in [
        (vec![1, 1], vec![0, u32::MAX, 0, u32::MAX]), // self loop
        (vec![2, 0], vec![1, 1, u32::MAX, u32::MAX]), // repeat
        (vec![1, 0], vec![5, u32::MAX, u32::MAX, u32::MAX]), // out of range
        (vec![3, 0], vec![1, u32::MAX, u32::MAX, u32::MAX]), // degree > R
        (vec![1, 0], vec![1, 0, u32::MAX, u32::MAX]), // dirty unused slot
    ] {
        assert!(
            Graph::from_parts(2, 0, degrees.clone(), slots).is_err(),
            "{degrees:?}"
        );
    }
}

#[test]
fn block_order_packs_neighbours_and_preserves_search() {
    let n = 4000;
    let npp = 5;
    let (base, queries) = dataset::<f32>(13, n, 100, DIM);
    let base_v = FlatVectors::new(&base, DIM).unwrap();
    let queries = FlatVectors::new(&queries, DIM).unwrap();
    let graph = build_graph(
        &base_v,
        Metric::L2,
        &BuildParams::vamana(16, 32),
        &|_, _| {},
    )
    .unwrap();
    let perm = block_order(&graph, npp);
    let mut seen = vec![false; n];
    for (new, &old) in perm.new_to_old.iter().enumerate() {
        assert!(!seen[old as usize]);
        seen[old as usize] = true;
        assert_eq!(perm.old_to_new[old as usize] as usize, new);
    }
    let reordered = graph.relabel(&perm);
    assert_eq!(reordered.find_violation(), None);
    let before = same_page_fraction(&graph, npp);
    let after = same_page_fraction(&reordered, npp);
    eprintln!("same-page edge fraction: {before:.4} -> {after:.4}");
    assert!(after > 4.0 * before && after > 0.1, "{before} -> {after}");
    // Searching the relabelled graph over relabelled vectors finds the
    // same nodes, and touches fewer pages.
    let permuted: Vec<f32> = perm
        .new_to_old
        .iter()
        .flat_map(|&o| base_v.get(o as usize).iter().copied())
        .collect();
    let permuted = FlatVectors::new(&permuted, DIM).unwrap();
    let search = SearchParams {
        k: 10,
        list_size: 40,
        nodes_per_page: npp,
    };
    let mut s1 = SearchScratch::new(n);
    let mut s2 = SearchScratch::new(n);
    let (mut pages_before, mut pages_after) = (0, 0);
    for qi in 0..queries.len() {
        let q = queries.get(qi);
        let (a, sa) = beam_search(&graph, &base_v, Metric::L2, q, &[], &search, &mut s1);
        let (b, sb) = beam_search(&reordered, &permuted, Metric::L2, q, &[], &search, &mut s2);
        let a: Vec<u32> = a.iter().map(|x| perm.old_to_new[x.id as usize]).collect();
        let b: Vec<u32> = b.iter().map(|x| x.id).collect();
        assert_eq!(a, b);
        assert_eq!(sa.expanded, sb.expanded);
        pages_before += sa.pages;
        pages_after += sb.pages;
    }
    eprintln!("pages per query: {pages_before} -> {pages_after} (x100 queries)");
    assert!(pages_after < pages_before);
    assert_eq!(Permutation::from_new_to_old(vec![0, 0]), None);
    assert_eq!(Permutation::identity(3).new_to_old, vec![0, 1, 2]);
    let _ = Builder::Vamana;
}

/// The measurement driver (release only):
/// `cargo test --release -p omendb --test graph_build -- --ignored --nocapture`.
/// Sizes can be overridden with `OMEN_MEASURE_N` and `OMEN_MEASURE_Q`.
#[test]
#[ignore = "measurement: minutes in release mode"]
fn measure_builders() {
    use omendb::engine::graph::{UpperLayers, UpperParams};
    use std::time::Instant;
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("OMEN_MEASURE_N", 200_000);
    let nq = env("OMEN_MEASURE_Q", 500);
    let dim = 128;
    let metric = Metric::L2;
    let t = Instant::now();
    let (base, queries) = dataset::<f32>(42, n, nq, dim);
    let base = FlatVectors::new(&base, dim).unwrap();
    let queries = FlatVectors::new(&queries, dim).unwrap();
    let truth = ground_truth(&base, &queries, metric, 10);
    eprintln!(
        "data {n} x {dim} f32 l2, {nq} queries, truth in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let configs = [
        ("vamana a=1.2", BuildParams::vamana(32, 64)),
        ("vamana a=1.2", BuildParams::vamana(32, 100)),
        ("vamana a=1.2", BuildParams::vamana(64, 64)),
        ("vamana a=1.2", BuildParams::vamana(64, 100)),
        ("hnsw-l0", BuildParams::hnsw(32, 100)),
        ("hnsw-l0", BuildParams::hnsw(64, 100)),
    ];
    let mut rows = Vec::new();
    for (name, p) in configs {
        let t = Instant::now();
        let g = pool.install(|| build_graph(&base, metric, &p, &|_, _| {}).unwrap());
        let secs = t.elapsed().as_secs_f64();
        // Node record on disk: vector + u16 degree + R ids.
        let npp = 4088 / (dim * 4 + 2 + 4 * p.max_degree);
        let perm = block_order(&g, npp);
        let reordered = g.relabel(&perm);
        let permuted: Vec<f32> = perm
            .new_to_old
            .iter()
            .flat_map(|&o| base.get(o as usize).iter().copied())
            .collect();
        let permuted = FlatVectors::new(&permuted, dim).unwrap();
        eprintln!(
            "\n{name} R={} L={}: build {secs:.1} s (2 threads), mean degree {:.1}, same-page edges {:.3} -> {:.3} ({npp} nodes/page)",
            p.max_degree,
            p.list_size,
            g.mean_degree(),
            same_page_fraction(&g, npp),
            same_page_fraction(&reordered, npp)
        );
        eprintln!("  search L | recall@10 | expanded | pages (id order) | pages (block order)");
        for ls in [10, 16, 24, 32, 48, 64, 100, 150] {
            let search = SearchParams {
                k: 10,
                list_size: ls,
                nodes_per_page: npp,
            };
            let (mut found, mut exp, mut pg, mut pg2) = (Vec::new(), 0, 0, 0);
            let mut s1 = SearchScratch::new(n);
            let mut s2 = SearchScratch::new(n);
            for qi in 0..nq {
                let q = queries.get(qi);
                let (res, st) = beam_search(&g, &base, metric, q, &[], &search, &mut s1);
                let (_, st2) = beam_search(&reordered, &permuted, metric, q, &[], &search, &mut s2);
                found.push(res.iter().map(|x| x.id).collect::<Vec<u32>>());
                exp += st.expanded;
                pg += st.pages;
                pg2 += st2.pages;
            }
            let r = recall(&truth, &found, 10);
            let per = |x: usize| x as f64 / nq as f64;
            eprintln!(
                "  {ls:>8} | {r:>9.4} | {:>8.1} | {:>16.1} | {:>19.1}",
                per(exp),
                per(pg),
                per(pg2)
            );
            rows.push((
                name,
                p.max_degree,
                p.list_size,
                secs,
                ls,
                r,
                per(exp),
                per(pg2),
            ));
        }
        if p.max_degree == 32 && p.list_size == 64 {
            // Upper layers: RAM cost and the effect of a better entry.
            let t = Instant::now();
            let upper = UpperLayers::build(&base, metric, &UpperParams::new(32)).unwrap();
            eprintln!(
                "  upper layers M=32: {} levels, {} level-1 nodes, {:.2} B per base vector, built in {:.1} s",
                upper.levels(),
                upper.nodes(1).len(),
                upper.heap_bytes() as f64 / n as f64,
                t.elapsed().as_secs_f64()
            );
            let kern = omendb::Kernels::<f32>::best();
            for ls in [16, 32, 64] {
                let search = SearchParams {
                    k: 10,
                    list_size: ls,
                    nodes_per_page: 0,
                };
                let (mut found, mut exp) = (Vec::new(), 0);
                let mut s1 = SearchScratch::new(n);
                for qi in 0..nq {
                    let q = queries.get(qi);
                    let entries: Vec<u32> = upper
                        .descend(
                            &mut |id| kern.distance(metric, q, base.get(id as usize)),
                            &|_| {},
                            4,
                        )
                        .iter()
                        .map(|x| x.id)
                        .collect();
                    let (res, st) = beam_search(&g, &base, metric, q, &entries, &search, &mut s1);
                    found.push(res.iter().map(|x| x.id).collect::<Vec<u32>>());
                    exp += st.expanded;
                }
                eprintln!(
                    "  with upper-layer entries, L={ls}: recall@10 {:.4}, {:.1} expanded",
                    recall(&truth, &found, 10),
                    exp as f64 / nq as f64
                );
            }
        }
    }
    // Summary: fewest page reads (block order) reaching recall@10 >= 0.95.
    eprintln!(
        "\nbuilder      R    L  build s | first search L with recall >= 0.95: expanded, pages (block order)"
    );
    let mut seen = std::collections::HashSet::new();
    for &(name, r, l, secs, _, _, _, _) in &rows {
        if !seen.insert((name, r, l)) {
            continue;
        }
        let best = rows
            .iter()
            .filter(|x| x.0 == name && x.1 == r && x.2 == l && x.5 >= 0.95)
            .min_by(|a, b| a.7.total_cmp(&b.7));
        match best {
            Some(b) => eprintln!(
                "{name:<12} {r:>2} {l:>4} {secs:>8.1} | L={} recall {:.4}: {:.1} expanded, {:.1} pages",
                b.4, b.5, b.6, b.7
            ),
            None => eprintln!("{name:<12} {r:>2} {l:>4} {secs:>8.1} | never"),
        }
    }
}

proptest::proptest! {
    /// Moving rows in place puts old row `new_to_old[new]` at `new`, for
    /// any permutation and row width.
    #[test]
    fn move_rows_follows_the_permutation(
        keys in proptest::collection::vec(proptest::num::u32::ANY, 1..80),
        width in 1usize..5,
    ) {
        let n = keys.len();
        let mut new_to_old: Vec<u32> = (0..n as u32).collect();
        new_to_old.sort_by_key(|&i| (keys[i as usize], i));
        let perm = Permutation::from_new_to_old(new_to_old).unwrap();
        let rows: Vec<u64> = (0..(n * width) as u64).collect();
        let mut moved = rows.clone();
        perm.move_rows(&mut moved, width);
        for new in 0..n {
            let old = perm.new_to_old[new] as usize;
            proptest::prop_assert_eq!(
                &moved[new * width..(new + 1) * width],
                &rows[old * width..(old + 1) * width]
            );
        }
        let mut back = moved;
        perm.clone().inverse().move_rows(&mut back, width);
        proptest::prop_assert_eq!(back, rows);
    }

    /// Relabelling in place, which moves rows along the permutation's
    /// cycles, gives every renamed node the renamed list it had, for any
    /// graph and any permutation (fixed points, long cycles, the identity).
    #[test]
    fn relabel_in_place_renames_every_list(
        lists in proptest::collection::vec(proptest::collection::vec(0u32..60, 0..6), 1..60),
        keys in proptest::collection::vec(proptest::num::u32::ANY, 60),
        entry in 0usize..60,
    ) {
        let n = lists.len();
        let mut graph = Graph::new(n, 5).unwrap();
        for (u, list) in lists.iter().enumerate() {
            let mut clean: Vec<u32> = Vec::new();
            for &v in list {
                let v = v % n as u32;
                if v as usize != u && !clean.contains(&v) && clean.len() < 5 {
                    clean.push(v);
                }
            }
            graph.set_neighbours(u as u32, &clean);
        }
        graph.set_entry((entry % n) as u32);
        // A permutation of 0..n: nodes sorted by a random key.
        let mut new_to_old: Vec<u32> = (0..n as u32).collect();
        new_to_old.sort_by_key(|&i| (keys[i as usize], i));
        let perm = Permutation::from_new_to_old(new_to_old).unwrap();
        let mut moved = graph.clone();
        moved.relabel_in_place(&perm);
        proptest::prop_assert_eq!(moved.find_violation(), None);
        proptest::prop_assert_eq!(moved.entry(), perm.old_to_new[graph.entry() as usize]);
        for old in 0..n as u32 {
            let want: Vec<u32> = graph
                .neighbours(old)
                .iter()
                .map(|&v| perm.old_to_new[v as usize])
                .collect();
            proptest::prop_assert_eq!(moved.neighbours(perm.old_to_new[old as usize]), &want[..]);
        }
    }
}
