//! Two gobs nodes over each netlayer: a sturdyref is enlivened, a message goes and its
//! answer comes back; tcp-tls refuses a certificate whose hash is not the designator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

mod common;

use common::within;
use gobs_ocapn::captp::{CapRef, SessionConfig, Term};
use gobs_ocapn::fixtures::{self, ECHO_GC};
use gobs_ocapn::locator::{PeerLocator, Sturdyref};
use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly, TcpTls, TlsIdentity, UnixSocket};
use gobs_ocapn::node::{Node, is_kind, kinds};
use gobs_ocapn::syrup::Value;

async fn echo_round_trip(client: &Node, server: &PeerLocator) -> Result<Term, Term> {
    let sturdyref = Sturdyref {
        peer: server.clone(),
        swiss: ECHO_GC.to_vec(),
    };
    let p = client
        .with_core(move |c| c.enliven(&sturdyref))
        .await
        .unwrap();
    let echo = within(client.settled(p)).await.unwrap()?;
    let Term::Ref(r @ CapRef::Remote(_)) = echo else {
        panic!("enlivening gave {echo:?}");
    };
    let p = client
        .with_core(move |c| c.send(r, vec![Term::str("ping"), Term::Data(Value::from(42u8))]))
        .await
        .unwrap();
    within(client.settled(p)).await.unwrap()
}

fn ping_answer() -> Term {
    Term::List(vec![Term::str("ping"), Term::Data(Value::from(42u8))])
}

#[tokio::test]
async fn tcp_testing_only_round_trip() {
    let a = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let b = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let a = Node::start(
        vec![Arc::new(a) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    let b = Node::start(
        vec![Arc::new(b) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    b.with_core(fixtures::install).await.unwrap();
    assert_eq!(echo_round_trip(&a, b.locator()).await, Ok(ping_answer()));
}

#[tokio::test]
async fn unix_socket_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let a = UnixSocket::bind(&dir.path().join("a.sock")).unwrap();
    let b = UnixSocket::bind(&dir.path().join("b.sock")).unwrap();
    let a = Node::start(
        vec![Arc::new(a) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    let b = Node::start(
        vec![Arc::new(b) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    b.with_core(fixtures::install).await.unwrap();
    assert_eq!(b.locator().transport, "unix");
    assert_eq!(echo_round_trip(&a, b.locator()).await, Ok(ping_answer()));
}

async fn tls_node(identity: &TlsIdentity) -> Node {
    let n = TcpTls::bind("127.0.0.1:0".parse().unwrap(), identity, None)
        .await
        .unwrap();
    Node::start(
        vec![Arc::new(n) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn tcp_tls_round_trip_and_uri() {
    let server_id = TlsIdentity::generate().unwrap();
    let a = tls_node(&TlsIdentity::generate().unwrap()).await;
    let b = tls_node(&server_id).await;
    b.with_core(fixtures::install).await.unwrap();
    let loc = b.locator().clone();
    assert_eq!(loc.designator, server_id.designator());
    assert_eq!(loc.designator.len(), 52);
    let uri = Sturdyref {
        peer: loc.clone(),
        swiss: ECHO_GC.to_vec(),
    }
    .to_uri();
    assert!(
        uri.starts_with(&format!("ocapn://{}.tcp-tls/s/", loc.designator)),
        "{uri}"
    );
    assert!(
        uri.contains("host=127.0.0.1") && uri.contains("port="),
        "{uri}"
    );
    assert_eq!(Sturdyref::parse(&uri).unwrap().swiss, ECHO_GC);
    assert_eq!(echo_round_trip(&a, &loc).await, Ok(ping_answer()));
}

#[tokio::test]
async fn tcp_tls_listens_at_a_second_address_until_told_to_stop() {
    let server_id = TlsIdentity::generate().unwrap();
    let layer = Arc::new(
        TcpTls::bind("127.0.0.1:0".parse().unwrap(), &server_id, None)
            .await
            .unwrap(),
    );
    let port = layer.local_addr().unwrap().port();
    // Loopback's other addresses are this host's too: a second place on the same port.
    let second = std::net::SocketAddr::from(([127, 0, 0, 2], port));
    assert_eq!(layer.listen_also(second).await.unwrap(), second);
    let first = layer.local_addr().unwrap();
    let mut both = layer.listening_at();
    both.sort();
    assert_eq!(both, [first, second]);
    let b = Node::start(
        vec![layer.clone() as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    b.with_core(fixtures::install).await.unwrap();
    let at_second = b.locator().clone().with_hint("host", "127.0.0.2");
    let a = tls_node(&TlsIdentity::generate().unwrap()).await;
    assert_eq!(echo_round_trip(&a, &at_second).await, Ok(ping_answer()));
    let named = b.locator().hint("port").map(str::to_owned);
    assert_eq!(
        named,
        Some(port.to_string()),
        "the locator names the first address"
    );

    assert!(layer.stop_listening(second));
    assert!(!layer.stop_listening(second), "stopped once");
    assert_eq!(layer.listening_at(), [first]);
    // The port is free at the second address once its listener is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match tokio::net::TcpListener::bind(second).await {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("{second} is still taken after its listener was dropped: {e}"),
        }
    }
    let dial_only = TcpTls::dial_only();
    let err = dial_only.listen_also(second).await.unwrap_err();
    assert!(err.to_string().contains("only dials"), "{err}");
}

#[tokio::test]
async fn tcp_tls_refuses_a_certificate_that_does_not_match_the_designator() {
    let a = tls_node(&TlsIdentity::generate().unwrap()).await;
    let b = tls_node(&TlsIdentity::generate().unwrap()).await;
    b.with_core(fixtures::install).await.unwrap();
    // The right address, the wrong designator (another certificate's hash).
    let imposter = TlsIdentity::generate().unwrap().designator();
    let mut wrong = PeerLocator::new("tcp-tls", imposter.clone());
    wrong = wrong
        .with_hint("host", b.locator().hint("host").unwrap())
        .with_hint("port", b.locator().hint("port").unwrap());
    let err = echo_round_trip(&a, &wrong).await.unwrap_err();
    assert!(is_kind(&err, kinds::UNREACHABLE), "{err:?}");
    let msg = format!("{err:?}");
    assert!(msg.contains("cannot reach"), "{msg}");
    assert!(
        msg.contains(&format!("not the designator {imposter}")),
        "{msg}"
    );
}

#[tokio::test]
async fn dialling_a_dead_peer_breaks_the_promise_naming_it() {
    let a = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let a = Node::start(
        vec![Arc::new(a) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    // A port nobody listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let dead = PeerLocator::new("tcp-testing-only", "dead")
        .with_hint("host", "127.0.0.1")
        .with_hint("port", port.to_string());
    let err = echo_round_trip(&a, &dead).await.unwrap_err();
    assert!(is_kind(&err, kinds::UNREACHABLE), "{err:?}");
    let msg = format!("{err:?}");
    assert!(
        msg.contains("cannot reach ocapn://dead.tcp-testing-only"),
        "{msg}"
    );
}
