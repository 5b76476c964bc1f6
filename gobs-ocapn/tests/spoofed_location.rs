//! A peer that claims another node's location in its `op:start-session` (signed with a
//! key of its own, as any peer can) cannot displace that node's session: over tcp-tls the
//! real node proves its location with its certificate, the impostors do not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{Impostor, publish, tls_node, within};
use gobs_ocapn::captp::{DuplicateSession, SessionConfig};
use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::netlayer::{Netlayer, TcpTls, TlsIdentity};
use gobs_ocapn::node::Node;
use gobs_ocapn::vat::RemoteObject;
use gobs_runtime::{Ref, Vat, define_actor};

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

/// Whether `node` believes its session with `location` is with `location`.
async fn believed(node: &Node, location: &PeerLocator) -> bool {
    let location = location.clone();
    node.with_core(move |c| c.believes(&location))
        .await
        .unwrap()
}

/// The listener believes a reconnecting peer (`ReplaceOld`, as gobs-app's machine listener
/// does), so only proof keeps impostors from replacing the real session: 40 of them, with
/// a certificate of their own or none, while the real node keeps calling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_impostors_cannot_disturb_the_session_of_the_node_they_claim_to_be() {
    let listener = tls_node(
        &TlsIdentity::generate().unwrap(),
        SessionConfig {
            duplicate_session: DuplicateSession::ReplaceOld,
            ..SessionConfig::default()
        },
    )
    .await;
    let vat = Vat::spawn("adder").unwrap();
    let adder = vat.spawn_actor(Adder { base: 1000 }).unwrap();
    let sturdyref = publish(&listener, adder, b"adder").await;

    let real = tls_node(&TlsIdentity::generate().unwrap(), SessionConfig::default()).await;
    let remote: Ref<Adder> = within(RemoteObject::enliven_as(&real, &sturdyref))
        .await
        .unwrap();
    assert_eq!(
        within(remote.send().add(1).into_future()).await.unwrap(),
        1001
    );
    assert!(
        believed(&listener, real.locator()).await,
        "the real node proved its location with its certificate"
    );

    // The real node calls without pause while the impostors come.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let caller = tokio::spawn({
        let (stop, calls, remote) = (stop.clone(), calls.clone(), remote.clone());
        async move {
            let mut failed = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let n = calls.fetch_add(1, Ordering::AcqRel);
                match remote.send().add(n).await {
                    Ok(sum) => assert_eq!(sum, 1000 + n),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            failed
        }
    });

    let mut refused = 0;
    for i in 0..40 {
        let inner = if i % 2 == 0 {
            // A certificate of its own: proves a location, not the one it claims.
            TcpTls::bind(
                "127.0.0.1:0".parse().unwrap(),
                &TlsIdentity::generate().unwrap(),
                None,
            )
            .await
            .unwrap()
        } else {
            // No certificate at all.
            TcpTls::dial_only()
        };
        let impostor = Node::start(
            vec![Arc::new(Impostor {
                inner,
                claims: real.locator().clone(),
            }) as Arc<dyn Netlayer>],
            SessionConfig::default(),
        )
        .unwrap();
        let got: Result<Ref<Adder>, _> =
            within(RemoteObject::enliven_as(&impostor, &sturdyref)).await;
        if got.is_err() {
            refused += 1;
        }
    }
    let before = calls.load(Ordering::Acquire);
    // A few more calls after the last impostor, then the tally.
    while calls.load(Ordering::Acquire) < before + 10 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Release);
    let failed = within(caller).await.unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed, the first: {:?}",
        failed.len(),
        calls.load(Ordering::Acquire),
        failed.first()
    );
    assert_eq!(refused, 40, "every impostor's session is refused");
    assert!(believed(&listener, real.locator()).await);
    vat.shutdown();
}
