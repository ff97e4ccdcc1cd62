//! `omen bench ingest` and `omen inspect DIR` end to end on a small
//! collection: the commands run, print what they promise, and inspect
//! reports what the collection holds without changing it.

use std::process::Command;

fn omen(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_omen"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bench_ingest_then_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let d = dir.to_str().unwrap();
    let (ok, out, err) = omen(&[
        "bench",
        "ingest",
        "--dir",
        d,
        "--n",
        "3000",
        "--dim",
        "16",
        "--batch",
        "250",
        "--queries",
        "10",
        "--memtable-rows",
        "1000",
        "--delete-fraction",
        "0.3",
    ]);
    assert!(ok, "{out}\n{err}");
    for needle in [
        "durable vectors/s",
        "the last vector of 12/12 batches was found at distance 0",
        "recall@10 during ingest",
        "deleted 900 rows",
        "re-inserted 900 rows",
        "compaction:",
        "fresh build of the 3000 live rows",
    ] {
        assert!(out.contains(needle), "missing '{needle}' in:\n{out}");
    }

    let before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let (ok, out, err) = omen(&["inspect", d]);
    assert!(ok, "{out}\n{err}");
    for needle in [
        "(collection)",
        "segments",
        "tier",
        "tombstones",
        "wal ",
        "compaction",
        "in use        no",
    ] {
        assert!(out.contains(needle), "missing '{needle}' in:\n{out}");
    }
    let mut after: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after, "inspect changed the directory");

    // A damaged manifest: inspect fails with the file named, exit 1.
    let manifest = dir.join("MANIFEST");
    let mut bytes = std::fs::read(&manifest).unwrap();
    bytes[30] ^= 0xff;
    std::fs::write(&manifest, &bytes).unwrap();
    let (ok, _, err) = omen(&["inspect", d]);
    assert!(!ok);
    assert!(
        err.contains("MANIFEST") && err.contains("checksum"),
        "{err}"
    );
}

#[test]
fn bench_ingest_refuses_a_used_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("x"), b"x").unwrap();
    let (ok, _, err) = omen(&[
        "bench",
        "ingest",
        "--dir",
        tmp.path().to_str().unwrap(),
        "--n",
        "10",
    ]);
    assert!(!ok);
    assert!(err.contains("empty directory"), "{err}");
}
