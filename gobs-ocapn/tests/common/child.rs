//! The other process of a two-process test: this same test binary re-run as one of its own
//! tests (a no-op unless its environment says otherwise). The child prints `KEY value`
//! lines once it listens; the parent reads them, and kills the child when its handle drops.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::netlayer::{Netlayer, TcpTls, TlsIdentity};
use gobs_ocapn::node::Node;

/// A running child test; SIGKILLed when dropped.
pub struct ChildTest {
    child: Child,
    said: HashMap<String, String>,
}

impl ChildTest {
    /// Runs this binary's test `test` with `env`, and reads its output until it has said a
    /// line `KEY value` for each of `keys`.
    pub fn start(test: &str, env: &[(&str, String)], keys: &[&str]) -> ChildTest {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut said = HashMap::new();
        while !keys.iter().all(|k| said.contains_key(*k)) {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("{test} ended before it said {keys:?}"))
                .unwrap();
            // libtest may have written "test NAME ... " on the same line.
            for key in keys {
                if let Some((_, value)) = line.split_once(&format!("{key} ")) {
                    said.insert(key.to_string(), value.trim().to_string());
                }
            }
        }
        ChildTest { child, said }
    }

    /// The value the child said for `key` (one of the keys `start` waited for).
    pub fn said(&self, key: &str) -> &str {
        &self.said[key]
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildTest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node on tcp-tls at 127.0.0.1:`port` (0: any free port) with `identity`, and the port
/// it listens on.
pub async fn tls_node_on(port: u16, identity: &TlsIdentity) -> (Node, u16) {
    let tls = TcpTls::bind(format!("127.0.0.1:{port}").parse().unwrap(), identity, None)
        .await
        .unwrap();
    let port = tls.local_addr().unwrap().port();
    let node = Node::start(
        vec![Arc::new(tls) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    (node, port)
}

/// A node on tcp-tls at 127.0.0.1, any free port, with a fresh identity: the parent's side.
pub async fn tls_node() -> Node {
    tls_node_on(0, &TlsIdentity::generate().unwrap()).await.0
}

/// Keeps a child test alive until its parent closes its stdin (or kills it).
pub async fn live_until_parent_lets_go() {
    let _ = tokio::task::spawn_blocking(|| std::io::read_to_string(std::io::stdin())).await;
}
