//! `omen-build` when the disk fills up: a clear error that names the file,
//! and no segment or half-written temporary left behind.
//!
//! Two real kernel errors, from real processes: ENOSPC from a 1 MiB tmpfs
//! (needs permission to mount; skipped with a note when not granted) and
//! EFBIG from `ulimit -f` (always runs). SIGXFSZ is ignored for the child
//! by its shell (`trap '' XFSZ`, inherited across exec), so the kernel fails
//! the write with EFBIG instead of killing the process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Filesystem size and file-size limit: well below the segment built here.
const LIMIT_KIB: u64 = 1024;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// 3,000 × 64 f32 vectors: a segment of about 1.8 MB.
fn dataset(dir: &Path) -> PathBuf {
    let synth = Command::new(env!("CARGO_BIN_EXE_omen"))
        .args(["-q", "data", "synth", "--n", "3000", "--dim", "64"])
        .args(["--queries", "10", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(synth.status.success(), "{}", text(&synth.stderr));
    dir.join("base.fbin")
}

/// The same build without a limit, to show the limit is what fails it.
fn segment_bytes(input: &Path, dir: &Path) -> u64 {
    let out = dir.join("unlimited.omen");
    let build = Command::new(env!("CARGO_BIN_EXE_omen-build"))
        .args(["-q", "--R", "16", "--L", "32", "--input"])
        .arg(input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", text(&build.stderr));
    std::fs::metadata(&out).unwrap().len()
}

/// Runs `omen-build` writing into `out_dir` under a shell prelude (a
/// `ulimit`, or nothing).
fn build_into(input: &Path, out_dir: &Path, prelude: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("{prelude} exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_omen-build"))
        .args(["-q", "--R", "16", "--L", "32", "--input"])
        .arg(input)
        .arg("--out")
        .arg(out_dir.join("index.omen"))
        .output()
        .unwrap()
}

/// The failed build said which file and why, and left nothing behind.
fn assert_failed_cleanly(out: &Output, out_dir: &Path, reason: &str) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "the build succeeded: {stderr}");
    // Exit code 1 with a message, not death by a signal.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let tmp = out_dir.join("index.omen.tmp");
    assert!(
        stderr.contains(&tmp.display().to_string()) && stderr.contains(reason),
        "expected an error naming {} and {reason:?}: {stderr}",
        tmp.display()
    );
    let left: Vec<_> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Unmounts the tmpfs even when an assertion fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn build_on_a_full_filesystem_fails_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let input = dataset(d.path());
    let full = segment_bytes(&input, d.path());
    assert!(
        full > 1024 * LIMIT_KIB,
        "segment of {full} bytes fits the limit"
    );

    let mnt = d.path().join("tmpfs");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={LIMIT_KIB}k"), "tmpfs"])
        .arg(&mnt)
        .output();
    match mounted {
        Ok(m) if m.status.success() => {
            let _guard = Unmount(mnt.clone());
            let out = build_into(&input, &mnt, "");
            assert_failed_cleanly(&out, &mnt, "No space left on device");
        }
        Ok(m) => eprintln!(
            "tmpfs not mountable here ({}); ENOSPC half skipped",
            text(&m.stderr).trim()
        ),
        Err(e) => eprintln!("mount not runnable ({e}); ENOSPC half skipped"),
    }
}

#[test]
fn build_over_the_file_size_limit_fails_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let input = dataset(d.path());
    let out_dir = d.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = build_into(
        &input,
        &out_dir,
        &format!("trap '' XFSZ; ulimit -f {LIMIT_KIB};"),
    );
    assert_failed_cleanly(&out, &out_dir, "File too large");
}
