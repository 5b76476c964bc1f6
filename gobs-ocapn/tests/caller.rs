//! An actor exported with `ExportOptions { caller: true, .. }` learns, in each method, the
//! location the calling session proved (`Caller`), which a peer can neither claim nor
//! forge; one exported with `PeerErrors::Text` answers a failure as a plain string.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::IntoFuture;
use std::sync::Arc;

use common::{Impostor, tls_node, within};
use gobs_ocapn::captp::{CapRef, SessionConfig, Term};
use gobs_ocapn::locator::{PeerLocator, Sturdyref};
use gobs_ocapn::netlayer::{Netlayer, TcpTls, TlsIdentity};
use gobs_ocapn::node::Node;
use gobs_ocapn::syrup::Value;
use gobs_ocapn::vat::{Caller, ExportOptions, PeerErrors, RemoteObject, export_actor_with};
use gobs_runtime::{Ref, Vat, define_actor};

/// Answers each caller with the location its session proved.
#[define_actor]
pub struct Door {
    opened: u64,
}

#[define_actor]
impl Door {
    /// The caller's proven location (its URI), if any.
    pub fn who(&self, caller: Caller) -> Option<String> {
        caller.proven().map(PeerLocator::to_uri)
    }

    /// The caller's proven location beside what the peer passed.
    pub fn claim(&self, caller: Caller, claimed: String) -> (Option<String>, String) {
        (caller.proven().map(PeerLocator::to_uri), claimed)
    }

    /// Opens only for a caller at `allowed`; a failure names why.
    pub fn open(&mut self, caller: Caller, allowed: String) -> Result<u64, String> {
        match caller.proven() {
            Some(at) if at.to_uri() == allowed => {
                self.opened += 1;
                Ok(self.opened)
            }
            _ => Err("refused: this door opens for its owner only".into()),
        }
    }
}

/// Hands out its door (exported as the door was first exported).
#[define_actor]
pub struct Lobby {
    door: Ref<Door>,
}

#[define_actor]
impl Lobby {
    pub fn door(&self) -> Ref<Door> {
        self.door.clone()
    }
}

/// `door` on `node` under `swiss`, exported as `options` say; its sturdyref.
async fn publish(
    node: &Node,
    door: Ref<Door>,
    swiss: &'static [u8],
    options: ExportOptions,
) -> Sturdyref {
    let Term::Ref(CapRef::Local(obj)) = export_actor_with(node, door, options).await.unwrap()
    else {
        panic!("exporting an actor gave no local reference")
    };
    node.with_core(move |c| c.bind_swiss(swiss, obj))
        .await
        .unwrap();
    Sturdyref {
        peer: node.locator().clone(),
        swiss: swiss.to_vec(),
    }
}

/// `lobby` on `node`, exported as usual; its sturdyref.
async fn publish_lobby(node: &Node, lobby: Ref<Lobby>) -> Sturdyref {
    let Term::Ref(CapRef::Local(obj)) = gobs_ocapn::vat::export_actor(node, lobby).await.unwrap()
    else {
        panic!("exporting an actor gave no local reference")
    };
    node.with_core(move |c| c.bind_swiss(b"lobby", obj))
        .await
        .unwrap();
    Sturdyref {
        peer: node.locator().clone(),
        swiss: b"lobby".to_vec(),
    }
}

/// Sends `method ARGS` to `to` from `node`, as an untyped peer does: the raw answer.
async fn send(node: &Node, to: &RemoteObject, method: &str, args: Vec<Term>) -> Result<Term, Term> {
    let to = to.target().unwrap();
    let mut all = vec![Term::sym(method)];
    all.extend(args);
    let p = node.with_core(move |c| c.send(to, all)).await.unwrap();
    within(node.settled(p)).await.unwrap()
}

fn text(t: &Term) -> String {
    match t.to_value() {
        Some(Value::String(s)) => s,
        other => panic!("not a plain string: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_learns_the_location_its_caller_proved_and_nothing_a_peer_claims() {
    let host = tls_node(&TlsIdentity::generate().unwrap(), SessionConfig::default()).await;
    let vat = Vat::spawn("doors").unwrap();
    let door = vat.spawn_actor(Door { opened: 0 }).unwrap();
    let with_caller = ExportOptions {
        caller: true,
        ..ExportOptions::default()
    };
    let sturdyref = publish(&host, door.clone(), b"door", with_caller).await;

    // A peer with a certificate of its own: its own location, proved.
    let owner = tls_node(&TlsIdentity::generate().unwrap(), SessionConfig::default()).await;
    let at_owner = within(RemoteObject::enliven(&owner, &sturdyref))
        .await
        .unwrap();
    let who: Option<String> = within(at_owner.call("who", &()).into_future())
        .await
        .unwrap();
    assert_eq!(who.as_deref(), Some(owner.locator().to_uri().as_str()));

    // A call pipelined on the answer of another waits on a promise of the host's first,
    // and still learns its caller.
    let lobby = vat.spawn_actor(Lobby { door }).unwrap();
    let lobby = publish_lobby(&host, lobby).await;
    let at_lobby = within(RemoteObject::enliven(&owner, &lobby)).await.unwrap();
    let pipelined = at_lobby.call_pipelined("door", &());
    let who: Option<String> = within(pipelined.call("who", &()).into_future())
        .await
        .unwrap();
    assert_eq!(who.as_deref(), Some(owner.locator().to_uri().as_str()));

    // What the peer passes goes to the method's own parameters; the caller stays the
    // node's word, whatever the peer writes where it could stand.
    let fake = "ocapn://someone-else.tcp-tls";
    let (proven, claimed): (Option<String>, String) =
        within(at_owner.call("claim", &(fake,)).into_future())
            .await
            .unwrap();
    assert_eq!(proven.as_deref(), Some(owner.locator().to_uri().as_str()));
    assert_eq!(claimed, fake);

    // An impostor claims the location of a node that never called, with a certificate
    // of its own: its session proves another location, so the method learns of none.
    let absent = tls_node(&TlsIdentity::generate().unwrap(), SessionConfig::default()).await;
    let impostor = Node::start(
        vec![Arc::new(Impostor {
            inner: TcpTls::bind(
                "127.0.0.1:0".parse().unwrap(),
                &TlsIdentity::generate().unwrap(),
                None,
            )
            .await
            .unwrap(),
            claims: absent.locator().clone(),
        }) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    let at_impostor = within(RemoteObject::enliven(&impostor, &sturdyref))
        .await
        .unwrap();
    let who: Option<String> = within(at_impostor.call("who", &()).into_future())
        .await
        .unwrap();
    assert_eq!(
        who,
        None,
        "the impostor only claims {}",
        absent.locator().to_uri()
    );
    vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_answers_failures_as_a_record_or_as_plain_text_as_chosen() {
    let host = tls_node(&TlsIdentity::generate().unwrap(), SessionConfig::default()).await;
    let vat = Vat::spawn("doors").unwrap();
    let as_text = ExportOptions {
        caller: true,
        errors: PeerErrors::Text,
    };
    let as_record = ExportOptions {
        caller: true,
        errors: PeerErrors::Record,
    };
    let plain = publish(
        &host,
        vat.spawn_actor(Door { opened: 0 }).unwrap(),
        b"plain",
        as_text,
    )
    .await;
    let record = publish(
        &host,
        vat.spawn_actor(Door { opened: 0 }).unwrap(),
        b"record",
        as_record,
    )
    .await;

    let peer = tls_node(&TlsIdentity::generate().unwrap(), SessionConfig::default()).await;
    let me = Term::str(&peer.locator().to_uri());
    let nobody = Term::str("ocapn://nobody.tcp-tls");
    let plain = within(RemoteObject::enliven(&peer, &plain)).await.unwrap();
    let record = within(RemoteObject::enliven(&peer, &record)).await.unwrap();

    let refused = send(&peer, &plain, "open", vec![nobody.clone()])
        .await
        .unwrap_err();
    assert_eq!(
        text(&refused),
        "refused: this door opens for its owner only"
    );
    let opened = send(&peer, &plain, "open", vec![me.clone()]).await.unwrap();
    assert_eq!(opened.to_value(), Some(Value::from(1i64)));

    let refused = send(&peer, &record, "open", vec![nobody])
        .await
        .unwrap_err();
    match refused.to_value() {
        Some(Value::Record(label, fields)) => {
            assert_eq!(label.as_symbol(), Some(gobs_ocapn::vat::ERROR_LABEL));
            assert!(
                fields.contains(&Value::String(
                    "refused: this door opens for its owner only".into()
                )),
                "{fields:?}"
            );
        }
        other => panic!("not a <gobs:error> record: {other:?}"),
    }
    vat.shutdown();
}
