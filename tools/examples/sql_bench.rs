//! Load generator for omen-serve, with tokio-postgres (a real driver: the
//! extended protocol, binary parameters, pgvector's binary vector format).
//!
//! Latency: one client runs every query of a .fbin file in turn and prints
//! the mean and percentiles of the round trip:
//!   cargo run --release -p omen-tools --example sql_bench -- \
//!       --addr 127.0.0.1:5433 --table final --queries /tmp/d200/query.fbin
//! Load: N clients for S seconds; errors, throughput and the server's RSS
//! every 5 s (`--server-pid`):
//!   … --clients 64 --seconds 60 --server-pid $(pgrep -n omen-serve)
//!
//! Numbers are measurements of that run; nothing here asserts a speed.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// pgvector's binary vector format, for a parameter of type `vector`.
#[derive(Debug)]
struct Vector<'a>(&'a [f32]);

impl ToSql for Vector<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let mut v = Vec::new();
        omen_sql::vector::encode_binary(self.0, &mut v);
        out.extend_from_slice(&v);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        ty.name() == "vector"
    }
    to_sql_checked!();
}

struct Args {
    addr: String,
    table: String,
    queries: String,
    k: i64,
    clients: usize,
    seconds: u64,
    server_pid: Option<u32>,
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:5433".into(),
        table: "final".into(),
        queries: "/tmp/d200/query.fbin".into(),
        k: 10,
        clients: 1,
        seconds: 0,
        server_pid: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--addr" => a.addr = v,
            "--table" => a.table = v,
            "--queries" => a.queries = v,
            "--k" => a.k = v.parse().expect("--k"),
            "--clients" => a.clients = v.parse().expect("--clients"),
            "--seconds" => a.seconds = v.parse().expect("--seconds"),
            "--server-pid" => a.server_pid = Some(v.parse().expect("--server-pid")),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn read_fbin(path: &str) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(path).expect("query file");
    let n = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let d = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| {
            bytes[8 + i * d * 4..8 + (i + 1) * d * 4]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        })
        .collect()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn connect(addr: &str) -> tokio_postgres::Client {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let (client, conn) = tokio_postgres::Config::new()
        .host(host)
        .port(port.parse().expect("port"))
        .user("omen")
        .dbname("omen")
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let queries = Arc::new(read_fbin(&args.queries));
    let sql = format!(
        "SELECT id, embedding <-> $1 AS dist FROM {} ORDER BY embedding <-> $1 LIMIT $2",
        args.table
    );
    if args.clients <= 1 && args.seconds == 0 {
        let client = connect(&args.addr).await;
        let stmt = client.prepare(&sql).await.expect("prepare");
        // Warm up the connection and the statement.
        for q in queries.iter().take(20) {
            client
                .query(&stmt, &[&Vector(q), &args.k])
                .await
                .expect("query");
        }
        let mut lat = Vec::with_capacity(queries.len());
        for q in queries.iter() {
            let t = Instant::now();
            let rows = client
                .query(&stmt, &[&Vector(q), &args.k])
                .await
                .expect("query");
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            assert_eq!(rows.len(), args.k as usize);
        }
        lat.sort_by(f64::total_cmp);
        let mean = lat.iter().sum::<f64>() / lat.len() as f64;
        let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
        println!(
            "wire k={} queries={} mean={:.1}us p50={:.1}us p99={:.1}us",
            args.k,
            lat.len(),
            mean,
            pct(0.5),
            pct(0.99)
        );
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (queries, stop, ok, errors, sql, addr, k) = (
            queries.clone(),
            stop.clone(),
            ok.clone(),
            errors.clone(),
            sql.clone(),
            args.addr.clone(),
            args.k,
        );
        tasks.push(tokio::spawn(async move {
            let client = connect(&addr).await;
            let stmt = client.prepare(&sql).await.expect("prepare");
            let mut i = c * 7919;
            while !stop.load(Ordering::Relaxed) {
                let q = &queries[i % queries.len()];
                match client.query(&stmt, &[&Vector(q), &k]).await {
                    Ok(rows) if rows.len() == k as usize => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(_) | Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
                i += 1;
            }
        }));
    }
    let start = Instant::now();
    let mut last = 0;
    while start.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let done = ok.load(Ordering::Relaxed);
        println!(
            "t={:>3}s queries={} qps={:.0} errors={} server_rss={}",
            start.elapsed().as_secs(),
            done,
            (done - last) as f64 / 5.0,
            errors.load(Ordering::Relaxed),
            args.server_pid
                .and_then(rss_kib)
                .map(|k| format!("{:.1}MiB", k as f64 / 1024.0))
                .unwrap_or_else(|| "?".into())
        );
        last = done;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "clients={} seconds={} queries={} errors={} qps={:.0}",
        args.clients,
        args.seconds,
        ok.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
    );
}
