//! The node's shell on real sockets: its timers fire on the runtime's clock (a peer that
//! never says hello is dropped at the deadline), and calls made from many threads at once,
//! some of them from inside the core's own callbacks, all get their answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{publish, tcp_node, within};
use gobs_ocapn::node::HELLO_TIMEOUT;
use gobs_ocapn::vat::RemoteObject;
use gobs_runtime::{Ref, Vat, define_actor};
use tokio::io::AsyncReadExt;

/// The runtime's clock is paused: it jumps to the next timer whenever every task waits,
/// so the 30 s deadline passes at once, and no earlier than the deadline.
#[tokio::test(start_paused = true)]
async fn a_peer_that_never_says_hello_is_dropped_at_the_hello_deadline() {
    let node = tcp_node().await;
    let port = node.locator().hint("port").unwrap().parse::<u16>().unwrap();
    let start = tokio::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut got = Vec::new();
    // The node says hello, then aborts the session and closes once the deadline passes.
    within(silent.read_to_end(&mut got)).await.unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("op:start-session"), "{text}");
    assert!(text.contains("no op:start-session in time"), "{text}");
    assert!(
        start.elapsed() >= HELLO_TIMEOUT,
        "dropped after {:?}",
        start.elapsed()
    );
}

#[define_actor]
pub struct Adder {
    base: u64,
}

#[define_actor]
impl Adder {
    pub fn add(&self, x: u64) -> u64 {
        self.base + x
    }
}

/// Threads outside the runtime and tasks inside it call at once: every call is answered,
/// whichever thread ends up running the core for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_many_threads_at_once_are_all_answered() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let vat = Vat::spawn("adder").unwrap();
    let adder = vat.spawn_actor(Adder { base: 1000 }).unwrap();
    let sturdyref = publish(&server, adder, b"adder").await;
    let remote: Ref<Adder> = RemoteObject::enliven_as(&client, &sturdyref).await.unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let remote = remote.clone();
            std::thread::spawn(move || {
                let answers: Vec<_> = (0..200).map(|i| remote.send().add(t * 1000 + i)).collect();
                for (i, a) in answers.into_iter().enumerate() {
                    assert_eq!(a.wait().unwrap(), 1000 + t * 1000 + i as u64);
                }
            })
        })
        .collect();
    let tasks: Vec<_> = (0..4u64)
        .map(|t| {
            let remote = remote.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    assert_eq!(remote.send().add(t + i).await.unwrap(), 1000 + t + i);
                }
            })
        })
        .collect();
    for task in tasks {
        within(task).await.unwrap();
    }
    let joined = tokio::task::spawn_blocking(move || threads.into_iter().all(|t| t.join().is_ok()));
    assert!(within(joined).await.unwrap(), "a calling thread failed");
    vat.shutdown();
}
