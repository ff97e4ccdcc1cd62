//! `omen-build --memory-budget`: a build of data larger than its budget
//! stays within the budget plus a small fixed slack, measured by the kernel
//! (the child's peak RSS), not by the build's own accounting.

use std::process::Command;

/// What the process needs beyond the budget: the binary's text and data,
/// thread stacks, allocator slack.
const SLACK_MIB: f64 = 12.0;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Peak RSS of the largest child this process has waited for, in MiB.
fn children_peak_rss_mib() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given,
    // which points to a zeroed, properly aligned `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: getrusage succeeded, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss as f64 / 1024.0 // kilobytes on Linux
}

#[test]
fn build_larger_than_the_budget_stays_within_it() {
    let d = tempfile::tempdir().unwrap();
    // 200,000 × 64 f32 = 51 MiB of vectors: more than the 40 MiB budget.
    let synth = Command::new(env!("CARGO_BIN_EXE_omen"))
        .args([
            "-q",
            "data",
            "synth",
            "--n",
            "200k",
            "--dim",
            "64",
            "--queries",
            "10",
            "--out",
        ])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(synth.status.success(), "{}", text(&synth.stderr));
    let budget_mib = 40.0;
    // The peak below is the largest of all children, synth included. A
    // synth peak under the asserted bound cannot make the check pass
    // wrongly: an omen-build above the bound still raises the maximum
    // above it. (The `omen` binary now links the SQL shell, which adds
    // about 1 MiB of baseline RSS; synth peaks near 40 MiB.)
    let before = children_peak_rss_mib();
    assert!(
        before < budget_mib + SLACK_MIB,
        "synth itself peaked at {before:.1} MiB"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_omen-build"))
        .args([
            "-q",
            "--R",
            "16",
            "--L",
            "24",
            "--upper-degree",
            "8",
            "--memory-budget",
            "40MiB",
        ])
        .arg("--input")
        .arg(d.path().join("base.fbin"))
        .arg("--out")
        .arg(d.path().join("index.omen"))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{}", stdout, text(&out.stderr));
    let shards: usize = stdout
        .split(" shard(s)")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no shard count in {stdout}"));
    assert!(
        shards > 1,
        "a budget below the data must shard the build: {stdout}"
    );
    let peak = children_peak_rss_mib();
    eprintln!("omen-build peak RSS {peak:.1} MiB, budget {budget_mib} MiB, {shards} shards");
    assert!(
        peak <= budget_mib + SLACK_MIB,
        "peak RSS {peak:.1} MiB exceeds the {budget_mib} MiB budget + {SLACK_MIB} MiB slack\n{stdout}"
    );
}
