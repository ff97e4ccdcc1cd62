//! The dataset pipeline through the public facade: generate with
//! `engine::synth`, store with `format::dataset`, score with
//! `engine::ground_truth`, and check the result against a naive scan, for
//! every metric, f32 and u8, big-ann and TEXMEX layouts.

use std::path::Path;

use omendb::engine::distance::distance;
use omendb::engine::ground_truth::{GroundTruthParams, exact_knn, exact_knn_files};
use omendb::engine::synth::{SynthConfig, write_dataset};
use omendb::format::dataset::{AnyVectorFile, GroundTruthFile, Layout, VectorFile, texmex};
use omendb::{ElementType, Metric};

const METRICS: [Metric; 3] = [Metric::L2, Metric::InnerProduct, Metric::Cosine];

fn naive_top<T: omendb::Element + omendb::format::dataset::DatasetElement>(
    base: &VectorFile<T>,
    query: &[T],
    k: usize,
    metric: Metric,
) -> Vec<(f32, i32)> {
    let mut all: Vec<(f32, i32)> = base
        .vectors()
        .iter()
        .enumerate()
        .map(|(i, row)| (distance(metric, query, row), i as i32))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all
}

fn config(element: ElementType) -> SynthConfig {
    SynthConfig {
        n: 1500,
        dim: 20,
        queries: 12,
        seed: 99,
        element,
    }
}

#[test]
fn f32_pipeline_matches_naive_for_every_metric() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_dataset(&config(ElementType::F32), dir.path(), &|_| {}).unwrap();
    assert_eq!(summary.base_path, dir.path().join("base.fbin"));
    let base = VectorFile::<f32>::open(&summary.base_path).unwrap();
    let queries = VectorFile::<f32>::open(&summary.query_path).unwrap();
    base.check_finite().unwrap();
    for metric in METRICS {
        let params = GroundTruthParams {
            chunk_rows: 400,
            ..GroundTruthParams::new(15, metric)
        };
        let nb = exact_knn(base.vectors(), queries.vectors(), &params, &|_| {}).unwrap();
        let gt_path = dir.path().join(format!("gt-{metric}.ibin"));
        nb.write(&gt_path).unwrap();
        let g = GroundTruthFile::open(&gt_path).unwrap();
        for q in 0..queries.len() {
            let want = naive_top(&base, queries.row(q), 15, metric);
            let got: Vec<(f32, i32)> = g
                .distances(q)
                .iter()
                .copied()
                .zip(g.ids(q).iter().copied())
                .collect();
            assert_eq!(got, want, "{metric}, query {q}");
        }
    }
}

#[test]
fn u8_pipeline_and_texmex_copy_agree() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_dataset(&config(ElementType::U8), dir.path(), &|_| {}).unwrap();
    assert_eq!(summary.base_path, dir.path().join("base.u8bin"));
    let base = AnyVectorFile::open(&summary.base_path).unwrap();
    let queries = AnyVectorFile::open(&summary.query_path).unwrap();

    // The same rows as a TEXMEX .bvecs file give the same answers.
    let typed = VectorFile::<u8>::open(&summary.base_path).unwrap();
    let bvecs = dir.path().join("base.bvecs");
    texmex::write(&bvecs, typed.dim(), typed.rows(0..typed.len()).unwrap()).unwrap();
    let as_texmex = AnyVectorFile::open(&bvecs).unwrap();
    assert_eq!(as_texmex.layout(), Layout::Texmex);

    let typed_q = VectorFile::<u8>::open(&summary.query_path).unwrap();
    for metric in METRICS {
        let params = GroundTruthParams::new(10, metric);
        let a = exact_knn_files(&base, &queries, &params, &|_| {}).unwrap();
        let b = exact_knn_files(&as_texmex, &queries, &params, &|_| {}).unwrap();
        assert_eq!(a, b, "{metric}");
        for q in 0..typed_q.len() {
            let want = naive_top(&typed, typed_q.row(q), 10, metric);
            let ids: Vec<i32> = want.iter().map(|w| w.1).collect();
            assert_eq!(a.ids(q), &ids[..], "{metric}, query {q}");
        }
    }
}

#[test]
fn mismatched_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_dataset(&config(ElementType::F32), &dir.path().join("f"), &|_| {});
    assert!(f.is_err(), "a missing directory is an error, not a panic");
    std::fs::create_dir(dir.path().join("f")).unwrap();
    std::fs::create_dir(dir.path().join("u")).unwrap();
    let f = write_dataset(&config(ElementType::F32), &dir.path().join("f"), &|_| {}).unwrap();
    let u = write_dataset(&config(ElementType::U8), &dir.path().join("u"), &|_| {}).unwrap();
    let base = AnyVectorFile::open(&f.base_path).unwrap();
    let uq = AnyVectorFile::open(&u.query_path).unwrap();
    let err = exact_knn_files(&base, &uq, &GroundTruthParams::new(5, Metric::L2), &|_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("f32") && err.contains("u8"), "{err}");
    assert!(
        err.contains(&*f.base_path.to_string_lossy()) && err.contains(path_str(&u.query_path)),
        "{err}"
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
