//! A test peer for the public OCapN conformance suite.
//!
//! `cargo run --release --example ocapn-test-peer -- --port PORT` listens on
//! `tcp-testing-only` at 127.0.0.1:PORT (0 = any free port), exposes the suite's fixture
//! objects at their swiss numbers, and prints its `ocapn://…` URI as the first line of
//! standard output. Run the suite with `python3 test_runner.py '<that URI>'`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use clap::Parser;
use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::fixtures;
use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly};
use gobs_ocapn::node::Node;

/// OCapN conformance-suite test peer.
#[derive(Parser)]
struct Args {
    /// TCP port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port);
    let netlayer = TcpTestingOnly::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    // Default settings: the session learns the suite's labels from the peer.
    let node = Node::start(
        vec![Arc::new(netlayer) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )?;
    node.with_core(fixtures::install).await?;
    println!("{}", node.locator().to_uri());
    use std::io::Write;
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    Ok(())
}
