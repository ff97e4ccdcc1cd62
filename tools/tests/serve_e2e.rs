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
    psql_with(port, user, password, &[], sql)
}

/// [`psql`] with extra libpq environment variables (`PGSSLMODE`, …).
fn psql_with(
    port: u16,
    user: &str,
    password: Option<&str>,
    env: &[(&str, &str)],
    sql: &str,
) -> (bool, String) {
    let mut cmd = Command::new("psql");
    cmd.envs(env.iter().copied());
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

/// Runs python3 with `args`, then the server ports and the dimension, and
/// fails the test (showing its output) unless it exits with success.
fn python(what: &str, args: &[&str], ports: &[u16]) {
    let py = Command::new("python3")
        .args(args)
        .args(ports.iter().map(|p| p.to_string()))
        .arg(DIM.to_string())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&py.stdout).to_string() + &String::from_utf8_lossy(&py.stderr);
    println!("{text}");
    assert!(py.status.success(), "{what} failed:\n{text}");
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
    python(
        "psycopg checks",
        &[script.to_str().unwrap()],
        &[ro_server.port, rw_server.port, auth_server.port],
    );

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

/// A self-signed certificate and key for `CN=localhost`, made with the
/// openssl CLI (installed by .ci/run).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed by .ci/run");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// psycopg 3 over TLS: `sslmode=require` is encrypted and searches with
/// pgvector's binary vectors; a plain-text client of the `--require-tls`
/// server is refused. Prints one line per check; exits 1 on a failure.
const PSYCOPG_TLS: &str = r#"
import sys
import numpy as np
import psycopg
from pgvector.psycopg import register_vector
port, strict, dim = (int(a) for a in sys.argv[1:4])
with psycopg.connect(host="127.0.0.1", port=port, user="omen", dbname="omen", sslmode="require", autocommit=True) as conn:
    register_vector(conn)
    assert conn.pgconn.ssl_in_use, "sslmode=require is not encrypted"
    q = np.linspace(-1, 1, dim, dtype=np.float32)
    rows = conn.execute("SELECT id, embedding <-> %s FROM items ORDER BY embedding <-> %s LIMIT 5", (q, q), binary=True).fetchall()
    assert len(rows) == 5, rows
    print("ok   psycopg sslmode=require: encrypted, search works")
with psycopg.connect(host="127.0.0.1", port=port, user="omen", dbname="omen", sslmode="disable") as conn:
    assert not conn.pgconn.ssl_in_use
    assert conn.execute("SELECT 1").fetchone()[0] == 1
    print("ok   psycopg sslmode=disable: served in plain text without --require-tls")
try:
    psycopg.connect(host="127.0.0.1", port=strict, user="omen", dbname="omen", sslmode="disable").close()
    raise SystemExit("FAIL a plain-text client was accepted by --require-tls")
except psycopg.OperationalError as e:
    assert "requires TLS" in str(e), e
    print("ok   psycopg sslmode=disable refused by --require-tls")
"#;

/// TLS end to end: psql and psycopg with `sslmode=require` get encrypted
/// connections; a plain-text client is served by default (as PostgreSQL
/// with ssl=on) and refused by `--require-tls`; `sslmode=require` against
/// a server without TLS fails in the client.
#[test]
fn tls_with_psql_and_psycopg() {
    let (root, dir) = tempdir_with("tls");
    build(&dir.join("items.omen"), 200, 4);
    let (cert, key) = self_signed(root.path());
    let tls_args = [
        "--data",
        dir.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let tls = Server::start(&tls_args);
    let strict = Server::start(&[&tls_args[..], &["--require-tls"]].concat());
    let plain = Server::start(&["--data", dir.to_str().unwrap()]);
    let sql = "\\conninfo\nSELECT count(*) FROM items;\n";
    let require = [("PGSSLMODE", "require")];
    let disable = [("PGSSLMODE", "disable")];

    for server in [&tls, &strict] {
        let (ok, out) = psql_with(server.port, "omen", None, &require, sql);
        assert!(
            ok && out.contains("SSL connection (protocol: TLS") && out.contains("\n200"),
            "{out}"
        );
    }
    let (ok, out) = psql_with(tls.port, "omen", None, &disable, sql);
    assert!(
        ok && !out.contains("SSL connection") && out.contains("\n200"),
        "{out}"
    );
    let (ok, out) = psql_with(strict.port, "omen", None, &disable, sql);
    assert!(!ok && out.contains("requires TLS"), "{out}");
    let (ok, out) = psql_with(plain.port, "omen", None, &require, sql);
    assert!(!ok && out.contains("SSL"), "{out}");
    // The refused client did not disturb the server.
    let (ok, out) = psql_with(
        strict.port,
        "omen",
        None,
        &require,
        "SELECT 'still here';\n",
    );
    assert!(ok && out.contains("still here"), "{out}");

    python(
        "psycopg TLS checks",
        &["-c", PSYCOPG_TLS],
        &[tls.port, strict.port],
    );
}

/// pgvector's binary vector format, for a tokio-postgres parameter.
#[derive(Debug)]
struct PgVector<'a>(&'a [f32]);

impl tokio_postgres::types::ToSql for PgVector<'_> {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // pgvector's vector_send: int16 dimension, int16 0, big-endian f32s.
        out.extend_from_slice(&(self.0.len() as i16).to_be_bytes());
        out.extend_from_slice(&0i16.to_be_bytes());
        for x in self.0 {
            out.extend_from_slice(&x.to_be_bytes());
        }
        Ok(tokio_postgres::types::IsNull::No)
    }
    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        ty.name() == "vector"
    }
    tokio_postgres::types::to_sql_checked!();
}

/// tokio-postgres, a driver that prepares every statement and sends
/// parameters in binary: create, load with a prepared INSERT, search and
/// filtered search with a binary vector parameter (checked against brute
/// force), count, an error then a good query on the same connection.
#[test]
fn tokio_postgres_prepares_and_binds_binary_vectors() {
    let (_root, dir) = tempdir_with("tp");
    let server = Server::start(&["--data", dir.to_str().unwrap(), "--writable"]);
    let mut rng = SplitMix64::new(9);
    let vectors: Vec<Vec<f32>> = (0..60)
        .map(|_| (0..DIM).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect())
        .collect();
    let q: Vec<f32> = (0..DIM).map(|i| i as f32 / DIM as f32 - 0.5).collect();
    let l2 = |v: &[f32]| -> f64 {
        v.iter()
            .zip(&q)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=omen dbname=omen",
                server.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "CREATE TABLE docs (id bigint PRIMARY KEY, embedding vector({DIM}), category text, price float8)"
            ))
            .await
            .unwrap();
        let insert = client
            .prepare("INSERT INTO docs (id, embedding, category, price) VALUES ($1, $2, $3, $4)")
            .await
            .unwrap();
        for (i, v) in vectors.iter().enumerate() {
            let category = if i % 3 == 0 { "a" } else { "b" };
            let n = client
                .execute(&insert, &[&(i as i64), &PgVector(v), &category, &(i as f64)])
                .await
                .unwrap();
            assert_eq!(n, 1);
        }
        let count: i64 = client
            .query_one("SELECT count(*) FROM docs", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 60);

        // Search: the memtable is scanned exactly, so the answer is the
        // brute-force one.
        let search = client
            .prepare("SELECT id, embedding <-> $1 AS dist FROM docs ORDER BY embedding <-> $1 LIMIT 5")
            .await
            .unwrap();
        let rows = client.query(&search, &[&PgVector(&q)]).await.unwrap();
        let mut exact: Vec<(f64, i64)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (l2(v), i as i64))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        let got: Vec<(i64, f64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            exact[..5].iter().map(|e| e.1).collect::<Vec<_>>()
        );
        for ((_, d), (e, _)) in got.iter().zip(&exact) {
            assert!((d - e).abs() < 1e-4, "{d} vs {e}");
        }

        // Filtered search, every value a bound parameter.
        let filtered = client
            .prepare(
                "SELECT id, category, price FROM docs WHERE category = $2 AND price < $3 \
                 ORDER BY embedding <-> $1 LIMIT 4",
            )
            .await
            .unwrap();
        let rows = client
            .query(&filtered, &[&PgVector(&q), &"a", &40.0f64])
            .await
            .unwrap();
        let want: Vec<i64> = exact
            .iter()
            .filter(|(_, i)| i % 3 == 0 && (*i as f64) < 40.0)
            .take(4)
            .map(|e| e.1)
            .collect();
        assert_eq!(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(), want);
        assert!(rows.iter().all(|r| r.get::<_, &str>(1) == "a"));

        // A by-id read of the stored vector, in binary.
        let row = client
            .query_one("SELECT price FROM docs WHERE id = $1", &[&7i64])
            .await
            .unwrap();
        assert_eq!(row.get::<_, f64>(0), 7.0);

        // Errors, then a good query on the same connection.
        let err = client
            .query(&search, &[&PgVector(&q[..DIM - 1])])
            .await
            .unwrap_err();
        assert_eq!(
            err.code().map(|c| c.code()),
            Some("22000"),
            "wrong dimension: {err}"
        );
        let err = client.query("SELEC 1", &[]).await.unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("42601"), "{err}");
        let rows = client.query(&search, &[&PgVector(&q)]).await.unwrap();
        assert_eq!(rows.len(), 5);
        drop(client);
        connection.await.unwrap().unwrap();
    });
}

/// One PostgreSQL protocol message from `stream`: (type, body).
fn read_message(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(4)];
    stream.read_exact(&mut body)?;
    Ok((head[0], body))
}

/// A metric's value from the Prometheus endpoint.
fn metric(port: u16, name: &str) -> f64 {
    let mut http = TcpStream::connect(("127.0.0.1", port)).unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    http.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

/// A client that sends a long run of searches and disconnects while the
/// server is executing them: other clients keep being served, the server
/// stops running the abandoned statements, and the connection is gone from
/// the open-connections gauge (nothing leaks).
#[test]
fn client_disconnecting_during_searches_does_not_disturb_others() {
    let (_root, dir) = tempdir_with("cut");
    build(&dir.join("items.omen"), 1500, 5);
    let server = Server::start(&["--data", dir.to_str().unwrap(), "--metrics", "127.0.0.1:0"]);
    let metrics = server.metrics.expect("metrics port");

    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let params = b"user\0omen\0database\0omen\0\0";
    let mut startup = ((8 + params.len()) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(&196_608u32.to_be_bytes());
    startup.extend_from_slice(params);
    s.write_all(&startup).unwrap();
    loop {
        let (kind, _) = read_message(&mut s).unwrap();
        if kind == b'Z' {
            break;
        }
    }
    assert_eq!(metric(metrics, "omen_connections_open"), 1.0);
    // Exact scans (<=> on an l2 table reads every row), many of them in
    // one simple-query message: seconds of work for the server.
    let q = (0..DIM)
        .map(|i| format!("{}", i as f32 / 7.0 - 1.0))
        .collect::<Vec<_>>()
        .join(",");
    let one = format!("SELECT id FROM items ORDER BY embedding <=> '[{q}]' LIMIT 10;");
    let mut query = one.repeat(3000).into_bytes();
    query.push(0);
    let mut message = vec![b'Q'];
    message.extend_from_slice(&((query.len() + 4) as u32).to_be_bytes());
    message.extend_from_slice(&query);
    let before = metric(metrics, "omen_queries_total");
    s.write_all(&message).unwrap();
    // Wait until the server is executing them, then hang up.
    let start = Instant::now();
    while metric(metrics, "omen_queries_total") < before + 20.0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the searches never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(s);
    let cut_at = metric(metrics, "omen_queries_total");

    // Another client is served while the abandoned work may still run.
    let (ok, out) = psql(
        server.port,
        "omen",
        None,
        &format!(
            "SELECT id FROM items ORDER BY embedding <-> '[{q}]' LIMIT 3;\nSELECT count(*) FROM items;\n"
        ),
    );
    assert!(ok && out.trim_end().ends_with("1500"), "{out}");

    // No leak: the gauge returns to zero.
    let start = Instant::now();
    while metric(metrics, "omen_connections_open") != 0.0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the dropped connection is still open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let total = metric(metrics, "omen_queries_total");
    println!(
        "queries before the cut: {}, at the cut: {cut_at}, in all: {total}",
        before
    );
    assert!(total >= cut_at, "{total} < {cut_at}");
    // Had the server run all 3,000 for nobody, the count would be over 3,000.
    assert!(
        total < before + 3000.0,
        "the statements of a client that hung up still ran: {total}"
    );
}
