//! `omen bench --plot`: the PNG it writes, and its failure without a font.
//!
//! The text of a plot needs a TrueType font found at run time. On a machine
//! without one these tests check the error path instead of the picture, so
//! they pass with or without `fonts-dejavu-core`.

use std::path::Path;
use std::process::Command;

use omen_engine::index::SearchParams;
use omen_tools::commands::bench::{SweepRow, plot_sweep};
use omen_tools::plot;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

fn row(ef: usize, recall: f64, qps: f64) -> SweepRow {
    SweepRow {
        params: SearchParams {
            ef,
            ..SearchParams::default()
        },
        recall,
        qps,
        mean_ms: 1000.0 / qps,
        p50_ms: 1000.0 / qps,
        p95_ms: 2000.0 / qps,
        p99_ms: 3000.0 / qps,
        pages: ef as f64,
        bytes: ef as f64 * 4096.0,
        rounds: ef as f64 / 4.0,
        wait_ms: 0.0,
        submit_ms: 0.0,
        code_distances: ef as f64 * 64.0,
        exact_distances: ef as f64,
        rss_bytes: 64 << 20,
    }
}

/// Decodes a PNG and returns (width, height, pixels that are not white).
fn inspect_png(path: &Path) -> (u32, u32, usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes[..8], PNG_SIGNATURE, "{} is not a PNG", path.display());
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let ink = buf[..info.buffer_size()]
        .chunks(info.color_type.samples())
        .filter(|px| px.iter().any(|&c| c < 250))
        .count();
    (info.width, info.height, ink)
}

#[test]
fn plot_of_a_few_rows_is_a_readable_png() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep.png");
    let rows = [
        row(10, 0.71, 4100.0),
        row(20, 0.84, 2600.0),
        row(40, 0.92, 1500.0),
        row(80, 0.957, 820.0),
        row(160, 0.981, 430.0),
    ];
    let result = plot_sweep(&out, "test sweep", "OmenDB", 10, "ef", &rows);
    if let Err(no_font) = plot::find_font() {
        let err = result.expect_err("a plot without a font must fail");
        assert!(err.to_string().contains("font"), "{err}");
        eprintln!("no font on this machine, checked the error path: {no_font}");
        return;
    }
    result.unwrap();
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size > 8 * 1024, "suspiciously small PNG: {size} bytes");
    let (w, h, ink) = inspect_png(&out);
    assert_eq!((w, h), (960, 640));
    // Axes, grid, five labelled points, a legend and a title: far more than
    // a blank canvas, far less than a filled one.
    let total = (w * h) as usize;
    assert!(
        ink > total / 100 && ink < total / 2,
        "{ink} of {total} pixels drawn"
    );
}

#[test]
fn nothing_plottable_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("empty.png");
    assert!(plot_sweep(&out, "t", "OmenDB", 10, "ef", &[]).is_err());
    // Zero QPS cannot sit on a log axis.
    assert!(plot_sweep(&out, "t", "OmenDB", 10, "ef", &[row(10, 0.5, 0.0)]).is_err());
    assert!(!out.exists());
}

/// Builds a tiny segment and runs `omen bench --plot`, once as is and once
/// with `$OMEN_PLOT_FONT` naming a missing file: exit 1 with a message, no
/// panic, no file, and the failure comes before the sweep runs.
#[test]
fn bench_plot_end_to_end_and_without_a_font() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let omen = env!("CARGO_BIN_EXE_omen");
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new(omen)
        .args([
            "data",
            "synth",
            "--n",
            "2000",
            "--dim",
            "16",
            "--queries",
            "20",
            "--out",
        ])
        .arg(d));
    run(Command::new(omen)
        .args(["data", "gt", "--k", "10", "--metric", "l2", "--base"])
        .arg(d.join("base.fbin"))
        .arg("--queries")
        .arg(d.join("query.fbin"))
        .arg("--out")
        .arg(d.join("gt.ibin")));
    run(Command::new(env!("CARGO_BIN_EXE_omen-build"))
        .args([
            "--quiet",
            "--R",
            "16",
            "--L",
            "32",
            "--upper-degree",
            "8",
            "--input",
        ])
        .arg(d.join("base.fbin"))
        .arg("--out")
        .arg(d.join("index.omen")));
    let bench = |png: &Path, font: Option<&str>| {
        let mut cmd = Command::new(omen);
        cmd.args(["bench", "--sweep", "ef=10,40", "--io", "mmap", "--segment"])
            .arg(d.join("index.omen"))
            .arg("--queries")
            .arg(d.join("query.fbin"))
            .arg("--gt")
            .arg(d.join("gt.ibin"))
            .arg("--plot")
            .arg(png);
        if let Some(f) = font {
            cmd.env(plot::FONT_ENV, f);
        }
        cmd.output().expect("run omen bench")
    };

    let missing = d.join("no-font.png");
    let out = bench(&missing, Some("/nonexistent/font.ttf"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("font") && !err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty(), "searched before failing");
    assert!(!missing.exists());

    let png = d.join("sweep.png");
    let out = bench(&png, None);
    if plot::find_font().is_err() {
        assert_eq!(out.status.code(), Some(1));
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h, ink) = inspect_png(&png);
    assert_eq!((w, h), (960, 640));
    assert!(ink > 1000, "{ink}");
}
