//! gobs' CapTP pieces against the answers Goblins 0.18 computes (`vectors/goblins.scm`):
//! peer and sturdyref records and URIs, session public keys, side and session ids as two
//! CapTP coordinators compute them, the start-session location signature and a whole
//! `op:start-session`, a handoff certificate's signature, and the tcp-tls designator the
//! Goblins netlayer announces for a certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod vectors;

use std::collections::BTreeMap;

use gobs_ocapn::captp::{
    CaptpError, ConnId, Event, KeyPair, LocalRef, ObjId, PublicKey, Session, SessionConfig,
    session_id,
};
use gobs_ocapn::locator::{PeerLocator, Sturdyref};
use gobs_ocapn::netlayer::designator_of;
use gobs_ocapn::syrup::{self, Value};
use gobs_testkit::Need;
use vectors::{assert_both_ways, goblins, parse_vectors, vector};

#[test]
fn locators_read_and_write_as_goblins_does() {
    let vectors = goblins();
    let text = |name| String::from_utf8(vector(&vectors, name).to_vec()).unwrap();
    let designator = "hz4g3bvtlcstzmqgeyjtdxoctr6nkrxbbvn5qh7ep2cz2kpcjuoq";

    // Goblins' <ocapn-peer>: read, and written back byte for byte (hints as Goblins wrote them).
    let peer_bytes = vector(&vectors, "locator:peer");
    let peer = PeerLocator::from_value(&syrup::decode(peer_bytes).unwrap()).unwrap();
    assert_eq!(peer.transport, "tcp-tls");
    assert_eq!(peer.designator, designator);
    assert_eq!(peer.hint("host"), Some("127.0.0.1"));
    assert_eq!(peer.hint("port"), Some("9045"));
    assert_eq!(syrup::encode(&peer.to_value()), peer_bytes);

    // Goblins' peer URI names the same peer with the same hints.
    let from_uri = PeerLocator::parse(&text("locator:peer-uri")).unwrap();
    assert_eq!(from_uri, peer);
    assert_eq!(
        (from_uri.hint("host"), from_uri.hint("port")),
        (Some("127.0.0.1"), Some("9045"))
    );

    // The sturdyref, as a record and as a URI (base64url, no padding, `-` and `_` in it).
    let sref_bytes = vector(&vectors, "locator:sturdyref");
    let sref = Sturdyref::from_value(&syrup::decode(sref_bytes).unwrap()).unwrap();
    assert_eq!(sref.peer, peer);
    assert_eq!(sref.swiss, [251, 239, 190, 255, 0, 1, 2]);
    assert_eq!(syrup::encode(&sref.to_value()), sref_bytes);
    let sref_uri = text("locator:sturdyref-uri");
    assert!(sref_uri.contains("/s/----_wABAg?"), "{sref_uri}");
    assert_eq!(Sturdyref::parse(&sref_uri).unwrap(), sref);
    // gobs writes its own URI (hints sorted), and Goblins reads it as the same sturdyref.
    assert_eq!(sref.to_uri(), text("locator:gobs-sturdyref-uri"));
    assert_eq!(
        vector(&vectors, "locator:gobs-sturdyref-uri-read"),
        sref_bytes
    );

    // A hint that needs escaping: written and read alike.
    let escaped_uri = text("locator:escaped-peer-uri");
    let escaped = PeerLocator::parse(&escaped_uri).unwrap();
    assert_eq!(escaped.hint("path"), Some("/tmp/gobs dir/node.sock"));
    assert_eq!(escaped.to_uri(), escaped_uri);
    assert_both_ways(
        "Goblins' record for a peer with an escaped hint",
        &escaped.to_value(),
        vector(&vectors, "locator:escaped-peer"),
    );

    // A URI written by hand becomes, in gobs, the record Goblins makes of it: string hint
    // keys, the swiss number as bytes.
    let hand = Sturdyref::parse(&text("locator:hand-written-uri")).unwrap();
    assert_both_ways(
        "Goblins' record for a hand-written sturdyref URI",
        &hand.to_value(),
        vector(&vectors, "locator:hand-written-sturdyref"),
    );
}

struct Keys {
    a: KeyPair,
    b: KeyPair,
}

fn goblins_keys(vectors: &BTreeMap<&str, Vec<u8>>) -> Keys {
    let seed = |name| -> [u8; 32] { vector(vectors, name).try_into().unwrap() };
    Keys {
        a: KeyPair::from_seed(&seed("key:a-seed")),
        b: KeyPair::from_seed(&seed("key:b-seed")),
    }
}

#[test]
fn session_keys_and_ids_are_the_ones_goblins_computes() {
    let vectors = goblins();
    let keys = goblins_keys(&vectors);
    for (side, pair) in [("a", &keys.a), ("b", &keys.b)] {
        // The public key's gcrypt-style form, from the same seed.
        let goblins_public = vector(&vectors, &format!("key:{side}-public"));
        assert_both_ways(
            &format!("public key {side}"),
            &pair.public().to_value(),
            goblins_public,
        );
        let read = PublicKey::from_value(&syrup::decode(goblins_public).unwrap()).unwrap();
        assert_eq!(read, pair.public());
        // The side id (the spec's Public Identifier) a Goblins coordinator gives it.
        assert_eq!(
            pair.public().side_id(),
            vector(&vectors, &format!("session:{side}-side-id")),
            "side id of {side}"
        );
    }
    // The session id, as each of the two coordinators computed it, in either argument order.
    for at in ["session:id-at-a", "session:id-at-b"] {
        assert_eq!(
            session_id(&keys.a.public(), &keys.b.public()),
            vector(&vectors, at),
            "{at}"
        );
        assert_eq!(
            session_id(&keys.b.public(), &keys.a.public()),
            vector(&vectors, at),
            "{at}"
        );
    }
}

#[test]
fn location_signature_is_the_one_goblins_makes() {
    let vectors = goblins();
    let keys = goblins_keys(&vectors);
    // What op:start-session carries: a's signature over <my-location peer>.
    let peer = syrup::decode(vector(&vectors, "locator:peer")).unwrap();
    let signed = Value::record("my-location", vec![peer]);
    let goblins_sig = syrup::decode(vector(&vectors, "session:a-location-sig")).unwrap();
    // Ed25519 is deterministic: the same key signs the same bytes identically.
    assert_both_ways(
        "location signature",
        &keys.a.sign_value(&signed),
        vector(&vectors, "session:a-location-sig"),
    );
    keys.a.public().verify_value(&signed, &goblins_sig).unwrap();
    assert_eq!(
        keys.b.public().verify_value(&signed, &goblins_sig),
        Err(CaptpError::BadSignature),
        "b's key accepted a's signature"
    );
    let other = Value::record("my-location", vec!["elsewhere".into()]);
    assert_eq!(
        keys.a.public().verify_value(&other, &goblins_sig),
        Err(CaptpError::BadSignature),
        "the signature checked over another location"
    );
}

/// A gobs session fed the `op:start-session` Goblins writes.
fn session_given(hello: &[u8]) -> Vec<Event> {
    let mut session = Session::new(
        ConnId(1),
        SessionConfig::default(),
        KeyPair::generate().unwrap(),
        &PeerLocator::new("tcp-tls", "gobs"),
        LocalRef {
            id: ObjId(0),
            promise: false,
        },
    );
    session.receive(hello);
    std::iter::from_fn(|| session.poll_event()).collect()
}

#[test]
fn goblins_start_session_opens_a_gobs_session() {
    let vectors = goblins();
    let keys = goblins_keys(&vectors);
    let hello = vector(&vectors, "session:a-start-session");
    let peer =
        PeerLocator::from_value(&syrup::decode(vector(&vectors, "locator:peer")).unwrap()).unwrap();
    match session_given(hello).as_slice() {
        [
            Event::Opened {
                location,
                remote_key,
            },
        ] => {
            assert_eq!(**location, peer);
            assert_eq!(*remote_key, keys.a.public());
        }
        other => panic!("Goblins' op:start-session gave {other:?}"),
    }
    // The same hello claiming b's key: a's signature no longer checks, and gobs says so.
    let mut forged = syrup::decode(hello).unwrap();
    let Value::Record(_, fields) = &mut forged else {
        panic!("{forged:?}")
    };
    fields[1] = keys.b.public().to_value();
    match session_given(&syrup::encode(&forged)).as_slice() {
        [Event::Aborted { reason, by_peer }] => {
            assert!(!by_peer);
            assert_eq!(reason, &CaptpError::BadLocationSignature.to_string());
        }
        other => panic!("a forged op:start-session gave {other:?}"),
    }
}

#[test]
fn handoff_certificate_signature_is_the_one_goblins_makes() {
    let vectors = goblins();
    let keys = goblins_keys(&vectors);
    let envelope = syrup::decode(vector(&vectors, "handoff:give-envelope")).unwrap();
    let (label, fields) = envelope.as_record().unwrap();
    assert_eq!(label, "desc:sig-envelope");
    let [give, sig] = fields else {
        panic!("desc:sig-envelope with {} fields", fields.len())
    };
    let (label, give_fields) = give.as_record().unwrap();
    assert_eq!(label, "desc:handoff-give");
    let [receiver_key, exporter, session, gifter_side, gift_id] = give_fields else {
        panic!("desc:handoff-give with {} fields", give_fields.len())
    };
    // The fields are what gobs computes for the same keys and peer.
    assert_eq!(receiver_key, &keys.b.public().to_value());
    assert_eq!(
        PeerLocator::from_value(exporter).unwrap(),
        PeerLocator::from_value(&syrup::decode(vector(&vectors, "locator:peer")).unwrap()).unwrap()
    );
    let session_bytes = session_id(&keys.a.public(), &keys.b.public());
    assert_eq!(session.as_bytes(), Some(&session_bytes[..]));
    assert_eq!(gifter_side.as_bytes(), Some(&keys.a.public().side_id()[..]));
    assert_eq!(gift_id.as_bytes().map(<[u8]>::len), Some(32));
    // gobs checks Goblins' signature, and signs the certificate identically.
    keys.a.public().verify_value(give, sig).unwrap();
    assert_eq!(&keys.a.sign_value(give), sig);
    assert_eq!(
        keys.b.public().verify_value(give, sig),
        Err(CaptpError::BadSignature)
    );
}

#[test]
fn tcp_tls_designator_is_the_one_goblins_announces() {
    let vectors = goblins();
    let pem = include_bytes!("vectors/goblins-tls-cert.pem");
    let designator = String::from_utf8(vector(&vectors, "tcp-tls:designator").to_vec()).unwrap();
    assert_eq!(designator_of(pem), designator);
}

/// Reruns `vectors/goblins.scm` and compares with the committed vectors, so they cannot rot.
#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: run shared/tools/goblins/install.sh as root, then set GOBS_REQUIRE_PRIVILEGED=1 (CI sets CI)"
)]
fn goblins_still_computes_the_committed_vectors() {
    gobs_testkit::need(&[Need::Goblins]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/goblins.scm");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". /opt/goblins/env.sh && exec guile --no-auto-compile '{script}'"
        ))
        .env("GUILE_WARN_DEPRECATED", "no")
        .output()
        .expect("cannot run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed: {stderr}");
    let now = String::from_utf8(out.stdout).expect("the script wrote non-UTF-8");
    let committed = include_str!("vectors/goblins.txt");
    let (now_v, committed_v) = (parse_vectors(&now), parse_vectors(committed));
    let differ: std::collections::BTreeSet<&&str> = now_v
        .keys()
        .chain(committed_v.keys())
        .filter(|k| now_v.get(*k) != committed_v.get(*k))
        .collect();
    assert!(
        differ.is_empty() && now == committed,
        "Goblins now computes other vectors than vectors/goblins.txt holds ({differ:?}); \
         see the script's header to regenerate, and find out why they changed"
    );
}
