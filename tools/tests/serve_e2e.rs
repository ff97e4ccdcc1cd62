//! omen-serve end to end: real servers (child processes) driven by real
//! clients, psql and Python's psycopg 3 with pgvector-python (installed by
//! .ci/run). Covers search, writes on a writable server, the read-only
//! rejection, authentication, bad input, hot reload, metrics and SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use omen_engine::index::{BuildOptions, MemoryRows, build_segment};
use omen_engine::rng::SplitMix64;
use omen_format::Metric;

const DIM: usize = 16;

fn build(out: &Path, n: usize, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let v: Vec<f32> = (0..n * DIM)
        .map(|_| rng.uniform() as f32 * 2.0 - 1.0)
        .collect();
    let ids: Vec<u64> = (0..n as u64).collect();
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
            label: "e2e",
        },
        Metric::L2,
        out,
        &options,
        &|_, _, _| {},
    )
    .unwrap();
}

/// A running omen-serve; killed on drop.
struct Server {
    child: Child,
    port: u16,
    metrics: Option<u16>,
    out: BufReader<std::process::ChildStdout>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_omen-serve"))
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--reload-ms", "100"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        // "omen-serve: listening on 127.0.0.1:PORT; tables: …[; metrics on http://127.0.0.1:PORT/metrics]"
        let port_after = |marker: &str| -> Option<u16> {
            let rest = &line[line.find(marker)? + marker.len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        };
        let port =
            port_after("listening on 127.0.0.1:").unwrap_or_else(|| panic!("no port in {line:?}"));
        let metrics = port_after("metrics on http://127.0.0.1:");
        Server {
            child,
            port,
            metrics,
            out,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs psql with `sql` on stdin; returns (success, stdout + stderr).
fn psql(port: u16, user: &str, password: Option<&str>, sql: &str) -> (bool, String) {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        user,
        "-d",
        "omen",
        "-X",
        "-At",
        "-v",
        "VERBOSITY=verbose",
    ])
    .env_remove("PGPASSWORD")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let mut child = cmd
        .spawn()
        .expect("psql (postgresql-client) is installed by .ci/run");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn tempdir_with(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    (root, dir)
}

#[test]
fn psql_and_psycopg_against_real_servers() {
    let (_ro_root, ro) = tempdir_with("ro");
    build(&ro.join("items.omen"), 1500, 1);
    let (_rw_root, rw) = tempdir_with("rw");
    let users = ro.parent().unwrap().join("users.txt");
    std::fs::write(&users, "# test users\nalice:s3cret\n").unwrap();

    let ro_server = Server::start(&["--data", ro.to_str().unwrap(), "--metrics", "127.0.0.1:0"]);
    let rw_server = Server::start(&["--data", rw.to_str().unwrap(), "--writable"]);
    let auth_server = Server::start(&[
        "--data",
        ro.to_str().unwrap(),
        "--users",
        users.to_str().unwrap(),
    ]);

    // psql: search, count, EXPLAIN, settings.
    let q = (0..DIM)
        .map(|i| format!("{}", i as f32 / 10.0))
        .collect::<Vec<_>>()
        .join(",");
    let (ok, out) = psql(
        ro_server.port,
        "omen",
        None,
        &format!(
            "SELECT count(*) FROM items;\nSET omen.ef_search = 90;\n\
             SELECT id FROM items ORDER BY embedding <-> '[{q}]' LIMIT 3;\n\
             EXPLAIN SELECT id FROM items ORDER BY embedding <-> '[{q}]' LIMIT 3;\n"
        ),
    );
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1500", "{out}");
    assert!(
        lines[2..5]
            .iter()
            .all(|l| l.parse::<u64>().is_ok_and(|id| id < 1500)),
        "{out}"
    );
    assert!(out.contains("ef=90") && out.contains("items.omen"), "{out}");

    // psql: a malformed query then a good one in the same session; a write
    // on the read-only server.
    let (_, out) = psql(
        ro_server.port,
        "omen",
        None,
        "SELEC 1;\nSELECT 41 + 1;\nINSERT INTO items VALUES (1, '[1]');\nSELECT 'still here';\n",
    );
    assert!(out.contains("42601"), "{out}");
    assert!(out.contains("42\n"), "{out}");
    assert!(out.contains("25006"), "{out}");
    assert!(out.contains("still here"), "{out}");

    // psql: authentication.
    let (ok, out) = psql(auth_server.port, "alice", Some("wrong"), "SELECT 1;\n");
    assert!(!ok, "a wrong password must fail: {out}");
    let (ok, out) = psql(auth_server.port, "alice", Some("s3cret"), "SELECT 'in';\n");
    assert!(ok && out.contains("in"), "{out}");

    // psycopg 3 + pgvector-python.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pg_clients.py");
    let py = Command::new("python3")
        .arg(&script)
        .args([ro_server.port, rw_server.port, auth_server.port].map(|p| p.to_string()))
        .arg(DIM.to_string())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&py.stdout).to_string() + &String::from_utf8_lossy(&py.stderr);
    println!("{text}");
    assert!(py.status.success(), "psycopg checks failed:\n{text}");

    // psql's \copy (COPY FROM STDIN, text format) on the writable server.
    let csv = rw.parent().unwrap().join("rows.tsv");
    std::fs::write(
        &csv,
        "1\t[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n2\t[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]\n",
    )
    .unwrap();
    let (ok, out) = psql(
        rw_server.port,
        "omen",
        None,
        &format!(
            "CREATE TABLE loaded (id bigint PRIMARY KEY, embedding vector({DIM}));\n\\copy loaded FROM '{}'\nSELECT count(*) FROM loaded;\n",
            csv.display()
        ),
    );
    assert!(
        ok && out.contains("COPY 2") && out.trim_end().ends_with('2'),
        "{out}"
    );

    // Hot reload: a segment published into the directory becomes a table.
    let tmp = ro.join("more.partial");
    build(&tmp, 300, 2);
    std::fs::rename(&tmp, ro.join("more.omen")).unwrap();
    let start = Instant::now();
    loop {
        let (ok, out) = psql(ro_server.port, "omen", None, "SELECT count(*) FROM more;\n");
        if ok && out.trim() == "300" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "new segment never appeared: {out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Metrics.
    let mut http =
        TcpStream::connect(("127.0.0.1", ro_server.metrics.expect("metrics port"))).unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    http.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let queries: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("omen_queries_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(queries > 10, "{body}");
    assert!(
        body.contains("omen_query_duration_seconds_bucket"),
        "{body}"
    );

    // SIGTERM: a graceful exit with status 0.
    let mut ro_server = ro_server;
    let sent = Command::new("kill")
        .args(["-TERM", &ro_server.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -TERM failed: {sent}");
    let status = ro_server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    ro_server.out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
    drop(rw_server);
    drop(auth_server);
}

/// `omen sql`: `-c` commands and a script on stdin, on a data directory
/// with a segment and a new collection.
#[test]
fn omen_sql_shell_runs_commands_and_scripts() {
    let (_root, dir) = tempdir_with("data");
    build(&dir.join("items.omen"), 200, 3);
    let omen = env!("CARGO_BIN_EXE_omen");
    let out = Command::new(omen)
        .args([
            "sql",
            dir.to_str().unwrap(),
            "-c",
            "\\d",
            "-c",
            "SELECT count(*) FROM items",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("items | segment (read-only) | 16"), "{text}");
    assert!(text.contains(" 200 "), "{text}");

    let mut child = Command::new(omen)
        .args(["sql", dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"CREATE TABLE notes (id bigint PRIMARY KEY, embedding vector(2), tag text);\n\
              INSERT INTO notes VALUES (1, '[0,0]', 'a'),\n  (2, '[3,4]', 'b');\n\
              SELECT id, tag, embedding <-> '[3,4]' AS d FROM notes ORDER BY embedding <-> '[3,4]' LIMIT 2;\n\
              SELEC oops;\nSELECT 'never';\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("INSERT 0 2"), "{text}");
    assert!(text.contains(" 2  | b   | 0 "), "{text}");
    assert!(text.contains(" 1  | a   | 5 "), "{text}");
    assert!(
        !out.status.success() && err.contains("syntax error"),
        "a script stops at its first error: {err}"
    );
    assert!(!text.contains("never"), "{text}");
    assert!(dir.join("notes").join("MANIFEST").is_file());
}
