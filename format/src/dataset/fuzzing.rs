//! The body of the dataset-reader fuzz target (fuzz/fuzz_targets/
//! dataset_readers.rs), shared with the property tests that CI runs.
//!
//! The readers map files, so the bytes are written to files in `dir` under
//! every supported extension and opened with every reader.

use std::path::Path;

use super::{AnyVectorFile, GroundTruthFile};

/// Opens `bytes` as every dataset format and reads whatever opens. Returns
/// the number of formats that accepted the bytes. Must never panic.
pub fn open_everything(dir: &Path, bytes: &[u8]) -> usize {
    let mut accepted = 0;
    for name in [
        "a.fbin", "a.f16bin", "a.u8bin", "a.i8bin", "a.fvecs", "a.bvecs", "a.ivecs",
    ] {
        let path = dir.join(name);
        if std::fs::write(&path, bytes).is_err() {
            continue;
        }
        if let Ok(file) = AnyVectorFile::open(&path) {
            assert!(!file.is_empty() && file.dim() > 0, "{name}: opened empty");
            let _ = file.check_finite();
            if let AnyVectorFile::F32(f) = &file {
                assert_eq!(f.vectors().iter().count(), f.len(), "{name}: row count");
                assert!(f.get(f.len() - 1).is_some(), "{name}: last row");
            }
            accepted += 1;
        }
    }
    let path = dir.join("a.ibin");
    if std::fs::write(&path, bytes).is_ok()
        && let Ok(gt) = GroundTruthFile::open(&path)
    {
        assert!(
            gt.get_ids(gt.nq() - 1).is_some(),
            "ground truth: last query"
        );
        let _ = gt.check_ids(10);
        accepted += 1;
    }
    accepted
}

/// Parses `bytes` as a CSV and as a JSON-lines attribute side file, with
/// inferred types and with every column declared text. Returns how many
/// parses succeeded. Must never panic.
pub fn parse_side_files(bytes: &[u8]) -> usize {
    use super::side_file::{SideFormat, parse_side_file};
    let label = Path::new("fuzz-input");
    let mut accepted = 0;
    for format in [SideFormat::Csv, SideFormat::JsonLines] {
        if let Ok(columns) = parse_side_file(label, bytes, format, &[]) {
            let cols = columns.columns();
            assert_eq!(cols.len(), columns.schema().len());
            accepted += 1;
        }
    }
    accepted
}
