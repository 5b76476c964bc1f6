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
use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly, TcpTls, TlsIdentity};
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
    let tls = TcpTls::bind(
        "127.0.0.1:0".parse().unwrap(),
        &TlsIdentity::generate().unwrap(),
        None,
    )
    .await
    .unwrap();
    let tls_locator = tls.locator();
    let node = Node::start(
        vec![Arc::new(tcp) as Arc<dyn Netlayer>, Arc::new(tls)],
        SessionConfig {
            hello_timeout: Duration::from_millis(300),
            ..SessionConfig::default()
        },
    )
    .unwrap();
    let baseline = open_fds();

    // Peers that connect (over TLS: finish the handshake) and then say nothing, and never
    // close: only the node can give these descriptors back.
    const EACH: usize = 16;
    let mut raw = Vec::new();
    let mut tls_peers = Vec::new();
    let dialer = TcpTls::dial_only();
    for _ in 0..EACH {
        raw.push(
            tokio::net::TcpStream::connect(("127.0.0.1", tcp_port))
                .await
                .unwrap(),
        );
        tls_peers.push(within(dialer.connect(&tls_locator)).await.unwrap());
    }
    // Each connection costs the node one descriptor and this test one.
    let peers = 2 * EACH;
    until_sessions(&node, 0).await;
    let aborted = std::time::Instant::now();
    until("the node closes the aborted connections", || {
        open_fds() == baseline + peers
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
