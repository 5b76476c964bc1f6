//! CapTP over loopback: the round trip of a small message to an echo object on another
//! node (tcp-testing-only, tcp-tls, unix socket) beside gobs's in-process cross-vat round
//! trip; pipelined throughput (100k sends, then await the last); and, printed after the
//! timings, the memory one node spends per session with 10,000 sessions open (the clients
//! run in a child process: the file-descriptor limit here is 20,000 per process).
//!
//! Both nodes of a round trip run in this process (two nodes, one tokio runtime, real
//! sockets); the session memory figure is the server process's resident-set growth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use gobs_ocapn::captp::{CapRef, KeyPair, SessionConfig, Term};
use gobs_ocapn::fixtures::{self, ECHO_GC};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly, TcpTls, TlsIdentity, UnixSocket};
use gobs_ocapn::node::Node;
use gobs_ocapn::syrup::{self, Value};
use gobs_runtime::{Vat, define_actor};

#[define_actor]
pub struct Echo {
    n: u64,
}

#[define_actor]
impl Echo {
    pub fn echo(&self, x: u64) -> u64 {
        x + self.n
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn pair(a: Arc<dyn Netlayer>, b: Arc<dyn Netlayer>) -> (Node, CapRef) {
    let client = Node::start(vec![a], SessionConfig::default()).unwrap();
    let server = Node::start(vec![b], SessionConfig::default()).unwrap();
    server.with_core(fixtures::install).await.unwrap();
    let s = Sturdyref {
        peer: server.locator().clone(),
        swiss: ECHO_GC.to_vec(),
    };
    let p = client.with_core(move |c| c.enliven(&s)).await.unwrap();
    let Ok(Term::Ref(echo)) = client.settled(p).await.unwrap() else {
        panic!("no echo")
    };
    std::mem::forget(server); // keep it running for the whole bench
    (client, echo)
}

async fn round_trip(client: &Node, echo: &CapRef) {
    let echo = echo.clone();
    let p = client
        .with_core(move |c| c.send(echo, vec![Term::Data(Value::from(42u8))]))
        .await
        .unwrap();
    client.settled(p).await.unwrap().unwrap();
}

fn bench(c: &mut Criterion) {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let nodes = rt.block_on(async {
        let tcp = pair(
            Arc::new(
                TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap(),
            ),
            Arc::new(
                TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap(),
            ),
        )
        .await;
        let tls = pair(
            Arc::new(
                TcpTls::bind(
                    "127.0.0.1:0".parse().unwrap(),
                    &TlsIdentity::generate().unwrap(),
                    None,
                )
                .await
                .unwrap(),
            ),
            Arc::new(
                TcpTls::bind(
                    "127.0.0.1:0".parse().unwrap(),
                    &TlsIdentity::generate().unwrap(),
                    None,
                )
                .await
                .unwrap(),
            ),
        )
        .await;
        let unix = pair(
            Arc::new(UnixSocket::bind(&dir.path().join("a")).unwrap()),
            Arc::new(UnixSocket::bind(&dir.path().join("b")).unwrap()),
        )
        .await;
        [("tcp-testing-only", tcp), ("tcp-tls", tls), ("unix", unix)]
    });

    let mut g = c.benchmark_group("round trip");
    for (name, (client, echo)) in &nodes {
        g.bench_function(*name, |b| b.iter(|| rt.block_on(round_trip(client, echo))));
    }
    let vat = Vat::spawn("bench-echo").unwrap();
    let actor = vat.spawn_actor(Echo { n: 1 }).unwrap();
    g.bench_function("in-process cross-vat (gobs-runtime)", |b| {
        b.iter(|| actor.send_with(|e: &Echo| e.echo(41)).wait().unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("pipelined 100k sends then await the last");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let (client, echo) = &nodes[0].1;
    g.bench_function("tcp-testing-only", |b| {
        b.iter(|| {
            rt.block_on(async {
                let echo = echo.clone();
                let (last, all) = client
                    .with_core(move |c| {
                        let mut all = Vec::with_capacity(100_000);
                        for i in 0..100_000u32 {
                            all.push(c.send(echo.clone(), vec![Term::Data(Value::from(i))]));
                        }
                        (all[all.len() - 1], all)
                    })
                    .await
                    .unwrap();
                client.settled(last).await.unwrap().unwrap();
                client
                    .with_core(move |c| all.into_iter().for_each(|p| c.release(p)))
                    .await
                    .unwrap();
            })
        })
    });
    g.finish();
    vat.shutdown();
}

const CHILD: &str = "GOBS_OCAPN_BENCH_CLIENTS";
const SESSIONS: usize = 10_000;

/// In the child: opens `SESSIONS` sessions (a real op:start-session each) to the port.
fn clients(port: u16) {
    let mut streams = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let keys = KeyPair::generate().unwrap();
        let loc = Value::record(
            "ocapn-peer",
            vec![
                Value::symbol("tcp-testing-only"),
                Value::from(format!("client-{i}")),
                Value::Bool(false),
            ],
        );
        let sig = keys.sign_value(&Value::record("my-location", vec![loc.clone()]));
        let hello = Value::record(
            "op:start-session",
            vec![Value::from("1.0"), keys.public().to_value(), loc, sig],
        );
        s.write_all(&syrup::encode(&hello)).unwrap();
        streams.push(s);
    }
    println!("READY");
    let _ = std::io::read_to_string(std::io::stdin());
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn session_memory() {
    let rt = rt();
    rt.block_on(async {
        let n = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = n.local_addr().unwrap().port();
        let node = Node::start(vec![Arc::new(n) as Arc<dyn Netlayer>], SessionConfig::default()).unwrap();
        node.with_core(fixtures::install).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss_kib();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        tokio::task::block_in_place(|| out.read_line(&mut line).unwrap());
        let mut open = 0;
        for _ in 0..600 {
            open = node
                .with_core(|c| c.session_stats().iter().filter(|s| s.1.is_some()).count())
                .await
                .unwrap();
            if open >= SESSIONS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let after = rss_kib();
        println!(
            "sessions: {open} open sessions into one node; resident memory {before} KiB -> {after} KiB: {:.1} KiB per session",
            (after.saturating_sub(before)) as f64 / open.max(1) as f64
        );
        drop(child.stdin.take());
        let _ = child.kill();
        let _ = child.wait();
    });
}

fn main() {
    if let Ok(port) = std::env::var(CHILD) {
        clients(port.parse().unwrap());
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    // Only when benchmarks really run (not under `cargo bench --no-run` or `--list`).
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        session_memory();
    }
}
