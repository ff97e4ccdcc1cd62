//! End-to-end tests of the `omen`, `omen-build` and `omen-serve` binaries:
//! reproducible output, exit codes, and error messages that name the file
//! and the byte offset.

use std::path::Path;
use std::process::{Command, Output};

use omen_format::dataset::{GroundTruthFile, VectorFile};

fn omen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omen"))
        .args(args)
        .output()
        .expect("run omen")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn synth(dir: &Path, extra: &[&str], threads: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_omen"))
        .env("RAYON_NUM_THREADS", threads)
        .args([
            "data",
            "synth",
            "--n",
            "3000",
            "--dim",
            "24",
            "--queries",
            "40",
            "--seed",
            "7",
            "--out",
        ])
        .arg(dir)
        .args(extra)
        .output()
        .expect("run omen");
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

/// Runs `omen data gt` and returns its output.
fn gt(base: &Path, queries: &Path, out: &Path, k: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omen"))
        .args(["data", "gt", "--k", k, "--metric", "l2", "--base"])
        .arg(base)
        .arg("--queries")
        .arg(queries)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run omen")
}

/// A failed command: exit 1, `error: ` prefix, no panic, and every needle.
fn assert_user_error(out: &Output, needles: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{err:?} lacks {n:?}");
    }
}

#[test]
fn synth_is_reproducible_across_runs_and_thread_counts() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let out = synth(a.path(), &[], "2");
    let summary = text(&out.stdout);
    assert!(summary.contains("3,000 × 24"), "{summary}");
    assert!(summary.contains("clusters"), "{summary}");
    synth(b.path(), &[], "1");
    for name in ["base.fbin", "query.fbin"] {
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        assert_eq!(
            x.len(),
            if name == "base.fbin" {
                8 + 3000 * 24 * 4
            } else {
                8 + 40 * 24 * 4
            }
        );
        assert!(x == y, "{name} differs between runs");
    }
    assert!(!a.path().join("base.fbin.tmp").exists());
    let base = std::fs::read(a.path().join("base.fbin")).unwrap();
    let query = std::fs::read(a.path().join("query.fbin")).unwrap();
    assert_ne!(
        base[8..8 + 96],
        query[8..8 + 96],
        "queries are not base copies"
    );

    // Another seed gives other data.
    let c = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_omen"))
        .args([
            "-q",
            "data",
            "synth",
            "--n",
            "3000",
            "--dim",
            "24",
            "--queries",
            "40",
        ])
        .args(["--seed", "8", "--out"])
        .arg(c.path())
        .output()
        .unwrap();
    assert_ne!(std::fs::read(c.path().join("base.fbin")).unwrap(), base);

    // Integer types.
    synth(a.path(), &["--dtype", "u8"], "2");
    let u = VectorFile::<u8>::open(a.path().join("base.u8bin")).unwrap();
    assert_eq!((u.len(), u.dim()), (3000, 24));
    synth(a.path(), &["--dtype", "i8"], "2");
    let i = VectorFile::<i8>::open(a.path().join("query.i8bin")).unwrap();
    assert_eq!((i.len(), i.dim()), (40, 24));
}

#[test]
fn gt_writes_valid_ground_truth() {
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), &[], "2");
    let out = gt(
        &d.path().join("base.fbin"),
        &d.path().join("query.fbin"),
        &d.path().join("gt.ibin"),
        "10",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("k = 10"),
        "{}",
        text(&out.stdout)
    );
    let g = GroundTruthFile::open(d.path().join("gt.ibin")).unwrap();
    assert_eq!((g.nq(), g.k()), (40, 10));
    g.check_ids(3000).unwrap();
    for q in 0..g.nq() {
        assert!(g.distances(q).windows(2).all(|w| w[0] <= w[1]));
    }

    let info = omen(&["data", "info", d.path().join("gt.ibin").to_str().unwrap()]);
    assert!(text(&info.stdout).contains("k:       10"));
    let info = omen(&[
        "data",
        "info",
        "--check",
        d.path().join("base.fbin").to_str().unwrap(),
    ]);
    assert!(info.status.success());
    assert!(text(&info.stdout).contains("every value is finite"));

    // k above n is refused, naming the file.
    let out = gt(
        &d.path().join("query.fbin"),
        &d.path().join("query.fbin"),
        &d.path().join("gt2.ibin"),
        "41",
    );
    assert_user_error(&out, &["k = 41", "query.fbin"]);
    assert!(!d.path().join("gt2.ibin").exists());
}

#[test]
fn corrupt_inputs_fail_with_path_and_offset() {
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), &[], "2");
    let base = d.path().join("base.fbin");
    let query = d.path().join("query.fbin");
    let bytes = std::fs::read(&base).unwrap();

    // Truncated by 3 bytes.
    let truncated = d.path().join("truncated.fbin");
    std::fs::write(&truncated, &bytes[..bytes.len() - 3]).unwrap();
    let out = gt(&truncated, &query, &d.path().join("gt.ibin"), "10");
    let expected = bytes.len().to_string();
    assert_user_error(
        &out,
        &[
            truncated.to_str().unwrap(),
            "truncated",
            "offset",
            &expected,
        ],
    );
    assert!(!d.path().join("gt.ibin").exists());

    // A NaN in row 5, component 3.
    let mut nan = bytes.clone();
    let offset = 8 + (5 * 24 + 3) * 4;
    nan[offset..offset + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let nan_path = d.path().join("nan.fbin");
    std::fs::write(&nan_path, &nan).unwrap();
    let out = gt(&nan_path, &query, &d.path().join("gt.ibin"), "10");
    assert_user_error(
        &out,
        &[
            nan_path.to_str().unwrap(),
            &format!("offset {offset}"),
            "row 5, component 3 is NaN",
        ],
    );

    // A header whose dimension disagrees with the size.
    let mut bad = bytes.clone();
    bad[4..8].copy_from_slice(&25i32.to_le_bytes());
    let bad_path = d.path().join("bad.fbin");
    std::fs::write(&bad_path, &bad).unwrap();
    let out = omen(&["data", "info", bad_path.to_str().unwrap()]);
    assert_user_error(&out, &[bad_path.to_str().unwrap(), "offset"]);

    // Queries of another dimension.
    let other = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_omen"))
        .args([
            "data",
            "synth",
            "--n",
            "50",
            "--dim",
            "12",
            "--queries",
            "5",
            "--out",
        ])
        .arg(other.path())
        .output()
        .unwrap();
    let other_q = other.path().join("query.fbin");
    let out = gt(&base, &other_q, &d.path().join("gt.ibin"), "10");
    assert_user_error(
        &out,
        &["dimension 12", "dimension 24", "base.fbin", "query.fbin"],
    );

    // A missing file.
    let out = omen(&["data", "info", "/nonexistent/x.fbin"]);
    assert_user_error(&out, &["/nonexistent/x.fbin", "No such file"]);
    // An unknown extension.
    let out = omen(&["data", "info", "Cargo.toml"]);
    assert_user_error(&out, &["Cargo.toml", ".fbin"]);
}

#[test]
fn demo_runs_small() {
    let d = tempfile::tempdir().unwrap();
    let out = omen(&[
        "demo",
        "--quiet",
        "--n",
        "2000",
        "--queries",
        "20",
        "--k",
        "10",
        "--dir",
        d.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("verified") && s.contains("relative contrast"),
        "{s}"
    );
    assert!(d.path().join("gt.ibin").exists());
    assert!(
        s.contains("recall") && d.path().join("index.omen").exists(),
        "{s}"
    );
}

#[test]
fn help_and_stub_binaries() {
    let out = omen(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("Examples:"));
    let out = omen(&["data", "synth", "--help"]);
    assert!(text(&out.stdout).contains("byte-identical"));
    let out = omen(&["data", "synth"]);
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit 2");

    let help = Command::new(env!("CARGO_BIN_EXE_omen-build"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(
        text(&help.stdout).contains("Examples:"),
        "{}",
        text(&help.stdout)
    );
    let run = Command::new(env!("CARGO_BIN_EXE_omen-build"))
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(2),
        "missing --input is a usage error"
    );

    let bin = env!("CARGO_BIN_EXE_omen-serve");
    let help = Command::new(bin).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("Example"));
    // Without anything to serve it says what to give, and does not listen.
    let run = Command::new(bin).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    let needle = "nothing to serve: give --data DIR or --table name=path";
    assert!(text(&run.stderr).contains(needle), "{}", text(&run.stderr));
}

fn omen_build(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omen-build"))
        .args(["--quiet", "--R", "16", "--L", "32", "--upper-degree", "8"])
        .args(args)
        .output()
        .expect("run omen-build")
}

/// Nothing but the inputs: no segment and no temporary file.
fn assert_nothing_written(dir: &Path, keep: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(keep.contains(&name.as_str()), "left behind: {name}");
    }
}

#[test]
fn build_then_bench_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), &[], "2");
    let base = d.path().join("base.fbin");
    let query = d.path().join("query.fbin");
    let gt_path = d.path().join("gt.ibin");
    assert!(gt(&base, &query, &gt_path, "10").status.success());
    let seg = d.path().join("index.omen");
    let out = omen_build(&[
        "--input".as_ref(),
        base.as_os_str(),
        "--out".as_ref(),
        seg.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("bytes per vector"),
        "{}",
        text(&out.stdout)
    );
    // 24-d f32 records with R = 16 (`omen_build`'s) are 172 bytes, 23 to a
    // page; at R = 17 they are 176, still 23, and at 18 only 22 fit.
    assert!(
        text(&out.stdout).contains("--R up to 17 would fill the same pages (23 per page)"),
        "{}",
        text(&out.stdout)
    );
    assert!(!d.path().join("index.omen.tmp").exists());

    let out = Command::new(env!("CARGO_BIN_EXE_omen"))
        .args(["bench", "--json", "--sweep", "ef=10,200", "--segment"])
        .arg(&seg)
        .arg("--queries")
        .arg(&query)
        .arg("--gt")
        .arg(&gt_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let recall = |line: &str| -> f64 {
        let at = line.find("\"recall\":").unwrap() + 9;
        line[at..].split(',').next().unwrap().parse().unwrap()
    };
    assert!(recall(&lines[1]) >= 0.95, "{}", lines[1]);
    assert!(recall(&lines[1]) >= recall(&lines[0]), "{lines:?}");
    assert!(lines[0].contains("\"reads_per_query\"") && lines[0].contains("\"io\""));
}

#[test]
fn build_rejects_bad_input_and_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let seg = d.path().join("index.omen");

    // NaN at row 1, component 2: byte offset 8 + (1 * 4 + 2) * 4 = 32.
    let nan = d.path().join("nan.fbin");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&3i32.to_le_bytes());
    bytes.extend_from_slice(&4i32.to_le_bytes());
    for i in 0..12 {
        let v = if i == 6 { f32::NAN } else { i as f32 };
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&nan, &bytes).unwrap();
    let out = omen_build(&[
        "--input".as_ref(),
        nan.as_os_str(),
        "--out".as_ref(),
        seg.as_os_str(),
    ]);
    assert_user_error(&out, &["nan.fbin", "offset 32", "NaN"]);

    // Empty file, and a header that promises more rows than the file holds.
    let empty = d.path().join("empty.fbin");
    std::fs::write(&empty, b"").unwrap();
    let out = omen_build(&[
        "--input".as_ref(),
        empty.as_os_str(),
        "--out".as_ref(),
        seg.as_os_str(),
    ]);
    assert_user_error(&out, &["empty.fbin", "truncated"]);
    let short = d.path().join("short.fbin");
    std::fs::write(&short, &bytes[..bytes.len() - 4]).unwrap();
    let out = omen_build(&[
        "--input".as_ref(),
        short.as_os_str(),
        "--out".as_ref(),
        seg.as_os_str(),
    ]);
    assert_user_error(&out, &["short.fbin"]);

    // A budget too small for the index itself.
    let ok = d.path().join("ok.fbin");
    bytes[32..36].copy_from_slice(&1.0f32.to_le_bytes());
    std::fs::write(&ok, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_omen-build"))
        .args(["--quiet", "--memory-budget", "16", "--input"])
        .arg(&ok)
        .arg("--out")
        .arg(&seg)
        .output()
        .unwrap();
    assert_user_error(&out, &["memory budget"]);

    // An output directory that does not exist: an I/O error naming it.
    let nowhere = d.path().join("missing-dir").join("index.omen");
    let out = omen_build(&[
        "--input".as_ref(),
        ok.as_os_str(),
        "--out".as_ref(),
        nowhere.as_os_str(),
    ]);
    assert_user_error(&out, &["missing-dir"]);

    assert_nothing_written(
        d.path(),
        &["nan.fbin", "empty.fbin", "short.fbin", "ok.fbin"],
    );
}

/// The ground truth agrees with an independent numpy brute force
/// (tests/python/check_dataset.py) for every metric.
#[test]
fn ground_truth_agrees_with_numpy() {
    let python_ok = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !python_ok {
        // CI installs numpy (.ci/run); there the check must run.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have python3 with numpy"
        );
        eprintln!("skipping: python3 with numpy is not installed");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), &[], "2");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/check_dataset.py");
    for metric in ["l2", "ip", "cos"] {
        let gt_path = d.path().join(format!("gt-{metric}.ibin"));
        let out = Command::new(env!("CARGO_BIN_EXE_omen"))
            .args(["data", "gt", "--k", "20", "--metric", metric, "--base"])
            .arg(d.path().join("base.fbin"))
            .arg("--queries")
            .arg(d.path().join("query.fbin"))
            .arg("--out")
            .arg(&gt_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let check = Command::new("python3")
            .arg(&script)
            .arg("--data")
            .arg(d.path())
            .arg("--gt")
            .arg(&gt_path)
            .args(["--metric", metric])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{metric}: {}{}",
            text(&check.stdout),
            text(&check.stderr)
        );
    }
}

#[test]
fn filtered_build_attach_and_bench_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    synth(d.path(), &[], "2");
    let base = d.path().join("base.fbin");
    let query = d.path().join("query.fbin");
    let gt_path = d.path().join("gt.ibin");
    assert!(gt(&base, &query, &gt_path, "10").status.success());
    let attrs = d.path().join("attrs.csv");
    let out = omen(&[
        "data",
        "attrs",
        "--n",
        "3000",
        "--dim",
        "24",
        "--seed",
        "7",
        "--out",
        attrs.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("'clustered < 30'"),
        "{}",
        text(&out.stdout)
    );

    // Built with attributes.
    let seg = d.path().join("index.omen");
    let out = omen_build(&[
        "--input".as_ref(),
        base.as_os_str(),
        "--out".as_ref(),
        seg.as_os_str(),
        "--attributes".as_ref(),
        attrs.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("clustered int64"),
        "{}",
        text(&out.stdout)
    );

    // Attached to a segment built without them.
    let plain = d.path().join("plain.omen");
    assert!(
        omen_build(&[
            "--input".as_ref(),
            base.as_os_str(),
            "--out".as_ref(),
            plain.as_os_str()
        ])
        .status
        .success()
    );
    let attached = d.path().join("attached.omen");
    let out = omen(&[
        "attach",
        "--segment",
        plain.to_str().unwrap(),
        "--attributes",
        attrs.to_str().unwrap(),
        "--out",
        attached.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    for s in [&seg, &attached] {
        let out = omen(&[
            "bench",
            "--segment",
            s.to_str().unwrap(),
            "--queries",
            query.to_str().unwrap(),
            "--gt",
            gt_path.to_str().unwrap(),
            "--filter",
            "clustered < 30",
            "--filter",
            "independent < 1500 AND clustered >= 0",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let recall = |label: &str| -> f64 {
            let line = stdout.lines().find(|l| l.starts_with(label)).unwrap();
            let cols: Vec<&str> = line.split_whitespace().collect();
            let strategy = cols
                .iter()
                .position(|c| c.contains('-') && c.len() > 5)
                .unwrap();
            cols[strategy + 1].parse().unwrap()
        };
        assert!(
            stdout.contains("exact-scan") && stdout.contains("filtered-walk"),
            "{stdout}"
        );
        assert!(stdout.contains("post-filter"), "{stdout}");
        assert!(recall("clustered < 30") >= 0.95, "{stdout}");
        assert!(recall("independent < 1500") >= 0.9, "{stdout}");
    }

    // Bad predicates and side files get clear errors.
    let out = omen(&[
        "bench",
        "--segment",
        seg.to_str().unwrap(),
        "--queries",
        query.to_str().unwrap(),
        "--gt",
        gt_path.to_str().unwrap(),
        "--filter",
        "clustered = 'x'",
    ]);
    assert_user_error(&out, &["\"clustered\"", "int64"]);
    std::fs::write(d.path().join("bad.csv"), "a,b\n1,2\n3,x\n").unwrap();
    let out = omen_build(&[
        "--input".as_ref(),
        base.as_os_str(),
        "--out".as_ref(),
        d.path().join("bad.omen").as_os_str(),
        "--attributes".as_ref(),
        d.path().join("bad.csv").as_os_str(),
        "--attr-types".as_ref(),
        "b:int64".as_ref(),
    ]);
    assert_user_error(&out, &["bad.csv", "line 3", "\"b\""]);
}
