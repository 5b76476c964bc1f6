//! Round trips between two processes over loopback: OCapN CapTP (tcp-testing-only and
//! tcp-tls, to a node-level echo object and to a gobs actor through its typed
//! far `Ref<T>` send, which goes by method name)
//! against a gRPC unary call with tonic, and gobs's in-process cross-vat round trip;
//! all in the same run, with the ratios printed after criterion's timings. The floor
//! rows are a raw ping-pong of the same sizes over the same sockets ([`floor`]): what the
//! machine's loopback and thread wake-ups cost before any protocol does.
//!
//! The table after criterion's timings has, per row, the median and p99 of single round
//! trips, the ratio of the median to tonic's, and the context switches and CPU time of
//! both processes per round trip (from `/proc`): sequential calls, 1,000 concurrent calls, and a chain of
//! 3 calls pipelined against the same 3 awaited one by one. Rows run in turn, several
//! rounds, so that a drift of the machine's load spreads over all of them.
//! `GOBS_BENCH_ROUNDS` and `GOBS_BENCH_CALLS` change how many; `GOBS_BENCH_ROWS=text`
//! keeps only the rows whose name has `text` in it, to profile one of them.
//!
//! The servers run in a child process: this same bench binary re-run with
//! `GOBS_BENCH_SERVE` set, which prints its addresses and serves until its stdin closes.
//! Everything there runs on one current-thread tokio runtime (tonic, the OCapN nodes), and
//! the gobs actor twice: in a vat on the worker pool (one thread switch from the
//! connection to the vat) and in a vat on a `LocalWorker` polled by that runtime (none).
//! The gRPC service is hand-written ([`grpc`]), so no `protoc` is needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use gobs_bench::{Counts, Latencies, Switches};
use gobs_ocapn::captp::{CapRef, SessionConfig, Term};
use gobs_ocapn::fixtures::{self, ECHO_GC};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly, TcpTls, TlsIdentity};
use gobs_ocapn::node::Node;
use gobs_ocapn::syrup::Value;
use gobs_ocapn::vat::{RemoteObject, export_actor};
use gobs_runtime::{LocalWorker, Ref, Vat, define_actor, self_ref, spawn};

mod floor;
mod grpc;

use floor::Floor;
use grpc::{EchoServer, grpc_concurrent, grpc_round_trip};

const SERVE: &str = "GOBS_BENCH_SERVE";

#[define_actor]
pub struct Echo {
    n: u64,
}

#[define_actor]
impl Echo {
    pub fn echo(&self, x: u64) -> u64 {
        x + self.n
    }

    /// Itself: the link of a chain of calls, pipelined or awaited.
    pub fn next(&self) -> Ref<Echo> {
        self_ref::<Echo>().expect("a method runs inside its actor's turn")
    }
}

fn rt(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap()
}

/// The child: an OCapN node per netlayer (the conformance echo and an exported gobs
/// actor) and a tonic server.
fn serve() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async {
        let vat = Vat::spawn("bench-echo").unwrap();
        let echo = vat.spawn_actor(Echo { n: 0 }).unwrap();
        let (worker, run) = LocalWorker::new();
        tokio::task::spawn_local(run);
        let here = Vat::spawn_on("bench-echo-here", &worker).unwrap();
        let echo_here = here.post(|| Ok(spawn(Echo { n: 0 }))).await.unwrap();
        let tcp = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let tls = TcpTls::bind(
            "127.0.0.1:0".parse().unwrap(),
            &TlsIdentity::generate().unwrap(),
            None,
        )
        .await
        .unwrap();
        for (name, n) in [
            ("TCP", Arc::new(tcp) as Arc<dyn Netlayer>),
            ("TLS", Arc::new(tls) as Arc<dyn Netlayer>),
        ] {
            let node = Node::start(vec![n], SessionConfig::default()).unwrap();
            node.with_core(fixtures::install).await.unwrap();
            let Term::Ref(CapRef::Local(obj)) = export_actor(&node, echo.clone()).await.unwrap()
            else {
                panic!("no export")
            };
            node.with_core(move |c| c.bind_swiss(b"bench-actor", obj))
                .await
                .unwrap();
            let Term::Ref(CapRef::Local(obj)) =
                export_actor(&node, echo_here.clone()).await.unwrap()
            else {
                panic!("no export")
            };
            node.with_core(move |c| c.bind_swiss(b"bench-actor-here", obj))
                .await
                .unwrap();
            println!("{name} {}", node.locator().to_uri());
            std::mem::forget(node);
        }
        let floor_tcp = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let floor_tls = TcpTls::bind(
            "127.0.0.1:0".parse().unwrap(),
            &TlsIdentity::generate().unwrap(),
            None,
        )
        .await
        .unwrap();
        for (name, n) in [
            ("FLOOR-TCP", Arc::new(floor_tcp) as Arc<dyn Netlayer>),
            ("FLOOR-TLS", Arc::new(floor_tls) as Arc<dyn Netlayer>),
        ] {
            println!("{name} {}", n.locator().to_uri());
            tokio::spawn(floor::serve(n));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("GRPC {}", listener.local_addr().unwrap().port());
        tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(
            EchoServer,
            tokio_stream::wrappers::TcpListenerStream::new(listener),
        ));
        println!("READY");
        let _ = tokio::task::spawn_blocking(|| std::io::read_to_string(std::io::stdin())).await;
        vat.shutdown();
        here.shutdown();
    });
}

/// The server process: asked to end (its stdin closed) when dropped, so that a profiler
/// running it writes its output; killed if it has not ended within 10 s.
struct Server {
    child: Child,
    pid: u32,
    tcp: String,
    tls: String,
    floor_tcp: String,
    floor_tls: String,
    grpc: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(SERVE, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut tcp, mut tls, mut grpc) = (String::new(), String::new(), 0);
    let (mut floor_tcp, mut floor_tls) = (String::new(), String::new());
    for line in lines {
        let line = line.unwrap();
        match line.split_once(' ') {
            Some(("TCP", u)) => tcp = u.to_owned(),
            Some(("TLS", u)) => tls = u.to_owned(),
            Some(("FLOOR-TCP", u)) => floor_tcp = u.to_owned(),
            Some(("FLOOR-TLS", u)) => floor_tls = u.to_owned(),
            Some(("GRPC", p)) => grpc = p.parse().unwrap(),
            _ if line == "READY" => break,
            _ => {}
        }
    }
    Server {
        pid: child.id(),
        child,
        tcp,
        tls,
        floor_tcp,
        floor_tls,
        grpc,
    }
}

struct Peer {
    client: Node,
    echo: CapRef,
    /// The actor in a vat on the server's worker pool.
    actor: Ref<Echo>,
    /// The same actor in a vat on the server runtime's own thread.
    actor_here: Ref<Echo>,
}

async fn connect(netlayer: Arc<dyn Netlayer>, uri: &str) -> Peer {
    let client = Node::start(vec![netlayer], SessionConfig::default()).unwrap();
    let server = gobs_ocapn::locator::PeerLocator::parse(uri).unwrap();
    let echo = Sturdyref {
        peer: server.clone(),
        swiss: ECHO_GC.to_vec(),
    };
    let p = client.with_core(move |c| c.enliven(&echo)).await.unwrap();
    let Ok(Term::Ref(echo)) = client.settled(p).await.unwrap() else {
        panic!("no echo")
    };
    let sturdy = |swiss: &[u8]| Sturdyref {
        peer: server.clone(),
        swiss: swiss.to_vec(),
    };
    let actor = RemoteObject::enliven_as(&client, &sturdy(b"bench-actor"))
        .await
        .unwrap();
    let actor_here = RemoteObject::enliven_as(&client, &sturdy(b"bench-actor-here"))
        .await
        .unwrap();
    Peer {
        client,
        echo,
        actor,
        actor_here,
    }
}

async fn ocapn_round_trip(peer: &Peer) {
    let echo = peer.echo.clone();
    let p = peer
        .client
        .with_core(move |c| c.send(echo, vec![Term::Data(Value::from(42u8))]))
        .await
        .unwrap();
    peer.client.settled(p).await.unwrap().unwrap();
}

async fn actor_round_trip(peer: &Peer) {
    let n = peer.actor.send().echo(42).await.unwrap();
    assert_eq!(n, 42);
}

async fn actor_here_round_trip(peer: &Peer) {
    let n = peer.actor_here.send().echo(42).await.unwrap();
    assert_eq!(n, 42);
}

/// `calls` typed calls in flight at once.
async fn actor_concurrent(peer: &Peer, calls: u64) {
    let answers: Vec<_> = (0..calls).map(|i| peer.actor.send().echo(i)).collect();
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.await.unwrap(), i as u64);
    }
}

/// `next().next().echo(42)`, each call sent to the promised answer of the one before:
/// three calls, one round trip.
async fn actor_chain_pipelined(peer: &Peer) {
    let first = peer.actor.send().next().pipeline();
    let second = first.send().next().pipeline();
    assert_eq!(second.send().echo(42).await.unwrap(), 42);
}

/// The same three calls, each awaited before the next is sent.
async fn actor_chain_awaited(peer: &Peer) {
    let first = peer.actor.send().next().await.unwrap();
    let second = first.send().next().await.unwrap();
    assert_eq!(second.send().echo(42).await.unwrap(), 42);
}

/// A row of the table: a unit of work (one call, a batch of concurrent calls, a chain)
/// and what was measured of it.
struct Row<'a> {
    group: &'static str,
    name: &'static str,
    /// Round trips (calls) one unit makes: the per-call figures divide by it.
    calls: u32,
    /// Units each round.
    units: u32,
    run: Box<dyn Fn() + 'a>,
    latencies: Latencies,
    /// Context switches so far, of the client (this process) and of the server.
    switches: Option<[Counts; 2]>,
}

impl<'a> Row<'a> {
    fn new(
        group: &'static str,
        name: &'static str,
        calls: u32,
        units: u32,
        run: impl Fn() + 'a,
    ) -> Self {
        Row {
            group,
            name,
            calls,
            units,
            run: Box::new(run),
            latencies: Latencies::default(),
            switches: Some([Counts::default(); 2]),
        }
    }

    fn round(&mut self, switches: &Switches) {
        let before = switches.read_each();
        self.latencies.time(self.units, &self.run);
        let after = switches.read_each();
        self.switches = match (self.switches, before, after) {
            (Some([client, server]), Some(b), Some(a)) => {
                Some([client.plus(a[0].since(b[0])), server.plus(a[1].since(b[1]))])
            }
            _ => None,
        };
    }

    /// The `q` quantile of one call (a unit's time over its calls), in µs.
    fn per_call_us(&mut self, q: f64) -> f64 {
        self.latencies.quantile(q).as_secs_f64() * 1e6 / f64::from(self.calls)
    }

    /// Per call: all switches, the client's, the server's, the voluntary ones of both;
    /// and the CPU time of the client and of the server, in µs.
    fn switches_per_call(&self) -> Option<[f64; 6]> {
        let calls = (self.latencies.len() as f64 * f64::from(self.calls)).max(1.0);
        let [client, server] = self.switches?;
        let per = |n: u64| n as f64 / calls;
        Some([
            per(client.total() + server.total()),
            per(client.total()),
            per(server.total()),
            per(client.voluntary + server.voluntary),
            per(client.cpu_ns) / 1e3,
            per(server.cpu_ns) / 1e3,
        ])
    }
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints the table: per group, each row against the group's tonic row.
fn table(rows: &mut [Row<'_>], rounds: u32) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n{rounds} rounds; load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "\n| round trip (two processes, loopback; a chain's figures are per chain) | median / call | p99 / call | median / tonic | context switches / call: all (client + server) | of them voluntary | CPU / call: client + server |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut tonic = f64::NAN;
    for row in rows.iter_mut() {
        let (median, p99) = (row.per_call_us(0.5), row.per_call_us(0.99));
        if row.name.starts_with("grpc tonic") {
            tonic = median;
        }
        let switches = row.switches_per_call().map_or(
            "– | – | –".to_owned(),
            |[all, client, server, voluntary, client_cpu, server_cpu]| {
                format!(
                    "{all:.1} ({client:.1} + {server:.1}) | {voluntary:.1} | \
                     {client_cpu:.0} + {server_cpu:.0} µs"
                )
            },
        );
        println!(
            "| {}: {} | {median:.1} µs | {p99:.1} µs | {:.2}× | {switches} |",
            row.group,
            row.name,
            median / tonic,
        );
    }
}

fn bench(c: &mut Criterion) {
    let server = start_server();
    let rt = rt(2);
    let (tcp, tls, floor_tcp, floor_tls, grpc) = rt.block_on(async {
        let tcp_netlayer: Arc<dyn Netlayer> = Arc::new(
            TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap(),
        );
        let tls_netlayer: Arc<dyn Netlayer> = Arc::new(
            TcpTls::bind(
                "127.0.0.1:0".parse().unwrap(),
                &TlsIdentity::generate().unwrap(),
                None,
            )
            .await
            .unwrap(),
        );
        let floor_tcp = Floor::connect(&*tcp_netlayer, &server.floor_tcp).await;
        let floor_tls = Floor::connect(&*tls_netlayer, &server.floor_tls).await;
        let tcp = connect(tcp_netlayer, &server.tcp).await;
        let tls = connect(tls_netlayer, &server.tls).await;
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", server.grpc))
                .unwrap()
                .connect()
                .await
                .unwrap();
        let grpc = tonic::client::Grpc::new(channel);
        (tcp, tls, floor_tcp, floor_tls, grpc)
    });
    let vat_a = Vat::spawn("bench-a").unwrap();
    let vat_b = Vat::spawn("bench-b").unwrap();
    let local = vat_b.spawn_actor(Echo { n: 0 }).unwrap();
    let cross_vat = || {
        let l = local.clone();
        vat_a
            .run(move || l.send().echo(42))
            .unwrap()
            .wait()
            .unwrap();
    };

    let mut g = c.benchmark_group("two-process round trip");
    g.bench_function("grpc tonic unary", |b| {
        b.iter(|| rt.block_on(grpc_round_trip(&grpc)))
    });
    g.bench_function("ocapn tcp-testing-only (gobs actor, typed send)", |b| {
        b.iter(|| rt.block_on(actor_round_trip(&tcp)))
    });
    g.bench_function("ocapn tcp-tls (gobs actor, typed send)", |b| {
        b.iter(|| rt.block_on(actor_round_trip(&tls)))
    });
    g.finish();

    // The table: every row measured again, in turn, in this run.
    let calls = env_u32("GOBS_BENCH_CALLS", 1000);
    let rounds = env_u32("GOBS_BENCH_ROUNDS", 3);
    const BATCH: u64 = 1000;
    let batches = (calls / 100).max(1);
    let chains = (calls / 3).max(1);
    let (seq, conc, chain) = ("sequential", "1,000 concurrent", "chain of 3");
    let mut rows = vec![
        Row::new(seq, "grpc tonic unary", 1, calls, || {
            rt.block_on(grpc_round_trip(&grpc))
        }),
        Row::new(
            seq,
            "the floor: raw ping-pong, tcp-testing-only",
            1,
            calls,
            || rt.block_on(floor_tcp.round_trip()),
        ),
        Row::new(seq, "the floor: raw ping-pong, tcp-tls", 1, calls, || {
            rt.block_on(floor_tls.round_trip())
        }),
        Row::new(seq, "typed gobs actor, tcp-testing-only", 1, calls, || {
            rt.block_on(actor_round_trip(&tcp))
        }),
        Row::new(seq, "typed gobs actor, tcp-tls", 1, calls, || {
            rt.block_on(actor_round_trip(&tls))
        }),
        Row::new(
            seq,
            "typed, vat on the node's thread, tcp-testing-only",
            1,
            calls,
            || rt.block_on(actor_here_round_trip(&tcp)),
        ),
        Row::new(
            seq,
            "typed, vat on the node's thread, tcp-tls",
            1,
            calls,
            || rt.block_on(actor_here_round_trip(&tls)),
        ),
        Row::new(seq, "echo object, tcp-testing-only", 1, calls, || {
            rt.block_on(ocapn_round_trip(&tcp))
        }),
        Row::new(seq, "echo object, tcp-tls", 1, calls, || {
            rt.block_on(ocapn_round_trip(&tls))
        }),
        Row::new(seq, "gobs in-process cross-vat", 1, calls, cross_vat),
        Row::new(conc, "grpc tonic unary", BATCH as u32, batches, || {
            rt.block_on(grpc_concurrent(&grpc, BATCH))
        }),
        Row::new(
            conc,
            "typed gobs actor, tcp-testing-only",
            BATCH as u32,
            batches,
            || rt.block_on(actor_concurrent(&tcp, BATCH)),
        ),
        Row::new(
            conc,
            "typed gobs actor, tcp-tls",
            BATCH as u32,
            batches,
            || rt.block_on(actor_concurrent(&tls, BATCH)),
        ),
        Row::new(chain, "grpc tonic unary, 3 awaited", 1, chains, || {
            rt.block_on(async {
                for _ in 0..3 {
                    grpc_round_trip(&grpc).await;
                }
            })
        }),
        Row::new(chain, "tcp-testing-only, 3 awaited", 1, chains, || {
            rt.block_on(actor_chain_awaited(&tcp))
        }),
        Row::new(chain, "tcp-testing-only, pipelined", 1, chains, || {
            rt.block_on(actor_chain_pipelined(&tcp))
        }),
        Row::new(chain, "tcp-tls, 3 awaited", 1, chains, || {
            rt.block_on(actor_chain_awaited(&tls))
        }),
        Row::new(chain, "tcp-tls, pipelined", 1, chains, || {
            rt.block_on(actor_chain_pipelined(&tls))
        }),
    ];
    // For profiling one row: only the rows whose name has this in it.
    if let Ok(only) = std::env::var("GOBS_BENCH_ROWS") {
        rows.retain(|r| format!("{}: {}", r.group, r.name).contains(only.as_str()));
    }
    let switches = Switches::new(&[std::process::id(), server.pid]);
    for _ in 0..rounds {
        for row in &mut rows {
            row.round(&switches);
        }
    }
    table(&mut rows, rounds);
    drop(rows);
    drop(server);
    vat_a.shutdown();
    vat_b.shutdown();
}

fn main() {
    if std::env::var_os(SERVE).is_some() {
        serve();
        return;
    }
    let mut c = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
