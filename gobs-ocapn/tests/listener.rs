//! The listener against a peer that opens connections and never uses them: an aborted
//! session gives its file descriptor back at once, whatever the peer does.
//!
//! The tests count this process's open descriptors (`/proc/self/fd`), so they take
//! [`FDS`] to run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{HANG, within};
use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::netlayer::{ListenConfig, Netlayer, TcpTestingOnly, TcpTls, TlsIdentity};
use gobs_ocapn::node::Node;
use tokio::io::AsyncReadExt;

/// Held by each test that counts descriptors.
static FDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Polls `done` until it holds; fails the test after [`HANG`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < HANG, "{what}: not within {HANG:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn sessions(node: &Node) -> usize {
    node.with_core(|c| c.session_stats().len()).await.unwrap()
}

async fn until_sessions(node: &Node, n: usize) {
    let start = std::time::Instant::now();
    while sessions(node).await != n {
        assert!(start.elapsed() < HANG, "never {n} sessions within {HANG:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peers_give_their_descriptors_back_once_their_sessions_are_aborted() {
    let _one = FDS.lock().await;
    let tcp = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let tls = TcpTls::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        &TlsIdentity::generate().unwrap(),
        None,
        ListenConfig {
            handshake_timeout: Duration::from_millis(300),
            ..ListenConfig::default()
        },
    )
    .await
    .unwrap();
    let tls_locator = tls.locator();
    let tls_port = tls.local_addr().unwrap().port();
    let node = Node::start(
        vec![Arc::new(tcp) as Arc<dyn Netlayer>, Arc::new(tls)],
        SessionConfig {
            hello_timeout: Duration::from_millis(300),
            ..SessionConfig::default()
        },
    )
    .unwrap();
    let baseline = open_fds();

    // Peers that connect (over TLS: finish the handshake, or never start it) and then say
    // nothing, and never close: only the node can give these descriptors back.
    const EACH: usize = 16;
    let mut raw = Vec::new();
    let mut tls_peers = Vec::new();
    let mut no_handshake = Vec::new();
    let dialer = TcpTls::dial_only();
    for _ in 0..EACH {
        raw.push(
            tokio::net::TcpStream::connect(("127.0.0.1", tcp_port))
                .await
                .unwrap(),
        );
        tls_peers.push(within(dialer.connect(&tls_locator)).await.unwrap());
        no_handshake.push(
            tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
                .await
                .unwrap(),
        );
    }
    // Each connection costs the node one descriptor and this test one.
    let peers = 3 * EACH;
    until_sessions(&node, 0).await;
    let aborted = std::time::Instant::now();
    // At most (not exactly): a descriptor an earlier test's runtime still held may close
    // meanwhile; every one the node took for these peers must be back.
    until("the node closes the aborted connections", || {
        open_fds() <= baseline + peers
    })
    .await;
    eprintln!(
        "{peers} aborted connections closed {:?} after their sessions ended",
        aborted.elapsed()
    );

    // The node said why and ended the stream in order (the peer sees the end, no reset).
    let mut got = Vec::new();
    within(raw[0].read_to_end(&mut got)).await.unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("no op:start-session in time"), "{text}");
    let mut got = Vec::new();
    within(tls_peers[0].read_to_end(&mut got)).await.unwrap();
    assert!(
        String::from_utf8_lossy(&got).contains("no op:start-session in time"),
        "{got:?}"
    );
}

/// Whether the node behind `stream` took the connection: it speaks first (its
/// `op:start-session`, or tcp-tls's certificate preamble); a refused connection just ends.
async fn taken(stream: &mut tokio::net::TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(within(stream.read(&mut first)).await, Ok(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_bound_of_connections() {
    let _one = FDS.lock().await;
    const BOUND: usize = 4;
    let listen = ListenConfig {
        per_source: BOUND,
        ..ListenConfig::default()
    };
    let tcp = TcpTestingOnly::bind_with("127.0.0.1:0".parse().unwrap(), listen.clone())
        .await
        .unwrap();
    let tls = TcpTls::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        &TlsIdentity::generate().unwrap(),
        None,
        listen,
    )
    .await
    .unwrap();
    let ports = [
        tcp.local_addr().unwrap().port(),
        tls.local_addr().unwrap().port(),
    ];
    let _node = Node::start(
        vec![Arc::new(tcp) as Arc<dyn Netlayer>, Arc::new(tls)],
        SessionConfig::default(),
    )
    .unwrap();
    for port in ports {
        let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));
        let mut held = Vec::new();
        for _ in 0..BOUND {
            let mut s = connect().await.unwrap();
            assert!(
                taken(&mut s).await,
                "port {port}: a connection within the bound"
            );
            held.push(s);
        }
        for _ in 0..3 {
            let mut s = connect().await.unwrap();
            assert!(
                !taken(&mut s).await,
                "port {port}: a connection past the bound"
            );
        }
        // Once one ends, its place is free again (as soon as the node has seen it end).
        drop(held.pop());
        let start = std::time::Instant::now();
        loop {
            let mut s = connect().await.unwrap();
            if taken(&mut s).await {
                break;
            }
            assert!(
                start.elapsed() < HANG,
                "port {port}: a freed place is never taken"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Set in the child process of [`a_shortage_of_descriptors_is_logged_once_per_burst`].
const CHILD: &str = "GOBS_LISTENER_FD_CHILD";

/// A node whose process runs out of descriptors: it says so once, naming the limit and
/// the fix, retries with backoff rather than logging every attempt, and says when it
/// accepts again. The node runs in a child process whose descriptor limit is lowered, so
/// this process (and the other tests) keep theirs.
/// A tcp-tls listener told to stop (as its node does when it halts) closes the
/// connections it handshook that nobody took, answers `accept` with an error, and gives
/// its port back; without that, a halted node's peers would wait on those connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_tcp_tls_listener_closes_what_it_queued_and_listens_no_more() {
    let tls = TcpTls::bind(
        "127.0.0.1:0".parse().unwrap(),
        &TlsIdentity::generate().unwrap(),
        None,
    )
    .await
    .unwrap();
    let addr = tls.local_addr().unwrap();
    let dialer = TcpTls::dial_only();
    // Handshaken, and taken by no `accept`: they wait in the listener's queue.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(within(dialer.connect(&tls.locator())).await.unwrap());
    }
    tls.stop_accepting();
    for stream in &mut waiting {
        let mut byte = [0u8; 1];
        let read = within(stream.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "a queued connection is closed: {read:?}"
        );
    }
    let err = within(tls.accept()).await.unwrap_err();
    assert!(err.to_string().contains("listener stopped"), "{err}");
    assert!(tls.listening_at().is_empty());
    let start = std::time::Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            start.elapsed() < HANG,
            "{addr} still listens after {HANG:?}"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        within(dialer.connect(&tls.locator())).await.is_err(),
        "no handshake after the stop"
    );
}

#[test]
fn a_shortage_of_descriptors_is_logged_once_per_burst() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    if std::env::var_os(CHILD).is_some() {
        return shortage_child();
    }
    // The child's pipes are descriptors of this process.
    let _one = FDS.blocking_lock();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_shortage_of_descriptors_is_logged_once_per_burst",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = stdout
        .by_ref()
        .map_while(Result::ok)
        // After libtest's own "test … " on the same line.
        .find_map(|l| {
            l.split_once("PORT ")
                .map(|(_, port)| port.trim().to_owned())
        })
        .expect("the child says its port")
        .parse()
        .unwrap();
    // The child's test harness still writes its verdict there.
    std::thread::spawn(move || stdout.for_each(drop));
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut log = Vec::new();
    let wait_for = |what: &str, log: &mut Vec<String>, done: &dyn Fn(&[String]) -> bool| {
        while !done(log) {
            match lines.recv_timeout(HANG) {
                Ok(line) => log.push(line),
                Err(e) => panic!("{what}: {e}; the child logged:\n{}", log.join("\n")),
            }
        }
    };
    // More connections than the child has descriptors for: it accepts until it has none.
    let peers: Vec<std::net::TcpStream> = (0..32)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    wait_for("the shortage is retried a few times", &mut log, &|log| {
        log.iter()
            .filter(|l| l.contains("accept still failing"))
            .count()
            >= 3
    });
    drop(peers);
    wait_for("accepting works again", &mut log, &|log| {
        log.iter()
            .any(|l| l.contains("accepting connections again"))
    });
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    log.extend(lines.try_iter());
    assert!(status.success(), "the child failed:\n{}", log.join("\n"));
    let warned: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("accepting connections fails"))
        .collect();
    assert_eq!(
        warned.len(),
        1,
        "one warning for the burst:\n{}",
        log.join("\n")
    );
    assert!(
        warned[0].contains("no file descriptor left") && warned[0].contains("RLIMIT_NOFILE"),
        "{}",
        warned[0]
    );
    assert!(warned[0].contains("ulimit -n"), "{}", warned[0]);
}

/// The child: a node on loopback with a descriptor limit a few above what it holds; it
/// runs until its stdin closes.
fn shortage_child() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    use std::io::Read;

    tracing_subscriber::fmt()
        .with_env_filter("gobs_ocapn=debug")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let node = rt.block_on(async {
        let tcp = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        println!("PORT {}", tcp.local_addr().unwrap().port());
        Node::start(
            vec![Arc::new(tcp) as Arc<dyn Netlayer>],
            SessionConfig::default(),
        )
        .unwrap()
    });
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = Some(open_fds() as u64 + 8);
    setrlimit(Resource::Nofile, limit).unwrap();
    std::io::stdin().read_to_end(&mut Vec::new()).unwrap();
    drop(node);
}
