//! Round trips between two processes over loopback: OCapN CapTP (tcp-testing-only and
//! tcp-tls, to a node-level echo object and to a gobs actor through its typed
//! far `Ref<T>` send, which goes by method name)
//! against a gRPC unary call with tonic, and gobs's in-process cross-vat round trip;
//! all in the same run, with the ratios printed after criterion's timings.
//!
//! The servers run in a child process: this same bench binary re-run with
//! `GOBS_BENCH_SERVE` set, which prints its addresses and serves until its stdin closes.
//! The gRPC service is hand-written (a `prost::Message` and tonic's generic server and
//! client), so no `protoc` is needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::Criterion;
use gobs_bench::per_op;
use gobs_ocapn::captp::{Ref as CapRef, SessionConfig, Term};
use gobs_ocapn::fixtures::{self, ECHO_GC};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly, TcpTls, TlsIdentity};
use gobs_ocapn::node::Node;
use gobs_ocapn::syrup::Value;
use gobs_ocapn::vat::{RemoteObject, export_actor};
use gobs_runtime::{Ref, Vat, define_actor};
use tonic::codegen::{BoxFuture, Service, http};

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
}

/// The gRPC message: one integer, as small as the CapTP one.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Msg {
    #[prost(uint64, tag = "1")]
    pub n: u64,
}

const GRPC_PATH: &str = "/gobs.bench.Echo/Echo";

/// What `tonic-build` would generate for `service Echo { rpc Echo(Msg) returns (Msg); }`.
#[derive(Clone)]
struct EchoServer;

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = "gobs.bench.Echo";
}

struct EchoUnary;

impl tonic::server::UnaryService<Msg> for EchoUnary {
    type Response = Msg;
    type Future = BoxFuture<tonic::Response<Msg>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<Msg>) -> Self::Future {
        Box::pin(async move { Ok(tonic::Response::new(request.into_inner())) })
    }
}

impl<B> Service<http::Request<B>> for EchoServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == GRPC_PATH {
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(EchoUnary, req).await)
            })
        } else {
            Box::pin(async move {
                let mut r = http::Response::new(tonic::body::Body::default());
                r.headers_mut().insert(
                    "grpc-status",
                    http::HeaderValue::from(tonic::Code::Unimplemented as i32),
                );
                Ok(r)
            })
        }
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
    let rt = rt(2);
    rt.block_on(async {
        let vat = Vat::spawn("bench-echo").unwrap();
        let echo = vat.spawn_actor(Echo { n: 0 }).unwrap();
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
            println!("{name} {}", node.locator().to_uri());
            std::mem::forget(node);
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
    });
}

/// The server process, killed (by its own handle) when dropped.
struct Server {
    child: Child,
    tcp: String,
    tls: String,
    grpc: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
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
    for line in lines {
        let line = line.unwrap();
        match line.split_once(' ') {
            Some(("TCP", u)) => tcp = u.to_owned(),
            Some(("TLS", u)) => tls = u.to_owned(),
            Some(("GRPC", p)) => grpc = p.parse().unwrap(),
            _ if line == "READY" => break,
            _ => {}
        }
    }
    Server {
        child,
        tcp,
        tls,
        grpc,
    }
}

struct Peer {
    client: Node,
    echo: CapRef,
    actor: Ref<Echo>,
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
    let actor = RemoteObject::enliven_as(
        &client,
        &Sturdyref {
            peer: server,
            swiss: b"bench-actor".to_vec(),
        },
    )
    .await
    .unwrap();
    Peer {
        client,
        echo,
        actor,
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

type GrpcClient = tonic::client::Grpc<tonic::transport::Channel>;

async fn grpc_round_trip(client: &GrpcClient) {
    let mut client = client.clone();
    client.ready().await.unwrap();
    let reply: tonic::Response<Msg> = client
        .unary(
            tonic::Request::new(Msg { n: 42 }),
            http::uri::PathAndQuery::from_static(GRPC_PATH),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(reply.into_inner().n, 42);
}

fn bench(c: &mut Criterion) {
    let server = start_server();
    let rt = rt(2);
    let (tcp, tls, grpc) = rt.block_on(async {
        let tcp = connect(
            Arc::new(
                TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap(),
            ),
            &server.tcp,
        )
        .await;
        let tls = connect(
            Arc::new(
                TcpTls::bind(
                    "127.0.0.1:0".parse().unwrap(),
                    &TlsIdentity::generate().unwrap(),
                    None,
                )
                .await
                .unwrap(),
            ),
            &server.tls,
        )
        .await;
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", server.grpc))
                .unwrap()
                .connect()
                .await
                .unwrap();
        (tcp, tls, tonic::client::Grpc::new(channel))
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
            .unwrap()
    };

    let mut g = c.benchmark_group("two-process round trip");
    g.bench_function("ocapn tcp-testing-only (echo object)", |b| {
        b.iter(|| rt.block_on(ocapn_round_trip(&tcp)))
    });
    g.bench_function("ocapn tcp-tls (echo object)", |b| {
        b.iter(|| rt.block_on(ocapn_round_trip(&tls)))
    });
    g.bench_function("ocapn tcp-testing-only (gobs actor, typed send)", |b| {
        b.iter(|| rt.block_on(actor_round_trip(&tcp)))
    });
    g.bench_function("ocapn tcp-tls (gobs actor, typed send)", |b| {
        b.iter(|| rt.block_on(actor_round_trip(&tls)))
    });
    g.bench_function("grpc tonic unary", |b| {
        b.iter(|| rt.block_on(grpc_round_trip(&grpc)))
    });
    g.bench_function("gobs in-process cross-vat", |b| b.iter(cross_vat));
    g.finish();

    // The ratio table: every row measured again here, back to back, in this run.
    let n = 2000;
    let rows = [
        (
            "ocapn tcp-testing-only (echo object)",
            per_op(n, || rt.block_on(ocapn_round_trip(&tcp))),
        ),
        (
            "ocapn tcp-tls (echo object)",
            per_op(n, || rt.block_on(ocapn_round_trip(&tls))),
        ),
        (
            "ocapn tcp-testing-only (gobs actor, typed send)",
            per_op(n, || rt.block_on(actor_round_trip(&tcp))),
        ),
        (
            "ocapn tcp-tls (gobs actor, typed send)",
            per_op(n, || rt.block_on(actor_round_trip(&tls))),
        ),
        (
            "grpc tonic unary",
            per_op(n, || rt.block_on(grpc_round_trip(&grpc))),
        ),
        (
            "gobs in-process cross-vat",
            per_op(n, || {
                cross_vat();
            }),
        ),
    ];
    let grpc_time = rows[4].1.as_secs_f64();
    println!("\n| round trip (two processes, loopback) | per op | / tonic gRPC |");
    println!("| --- | ---: | ---: |");
    for (name, t) in rows {
        println!(
            "| {name} | {:.1} µs | {:.2}× |",
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() / grpc_time
        );
    }
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
