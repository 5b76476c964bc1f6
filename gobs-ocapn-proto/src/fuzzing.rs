//! Fuzzing entry points: arbitrary bytes through the Syrup decoder, CapTP's op parser,
//! a whole CapTP session (the sans-I/O state machine, as a hostile peer drives it) and the
//! `ocapn://` locator parsers. They panic only when an oracle fails: an accepted Syrup
//! value that does not re-encode to the same bytes, a locator that does not print and
//! parse back the same.
//!
//! The `fuzz/` crate's cargo-fuzz targets call these, and the workspace test
//! `robustness/tests/fuzz_corpus.rs` replays every committed corpus through the same functions.
//! Not a stable API: behind the `fuzzing` feature and hidden from the docs.
//!
//! ```
//! gobs_ocapn_proto::fuzzing::syrup(b"[3:abc3\"abc3'abc]");
//! gobs_ocapn_proto::fuzzing::ocapn_uri(b"ocapn://abc.tcp-testing-only?host=127.0.0.1&port=1");
//! ```

use crate::captp::{
    ConnId, Event, KeyPair, LocalRef, ObjId, Op, OutTarget, Session, SessionConfig, Term,
};
use crate::locator::{PeerLocator, Sturdyref};
use crate::syrup::{self, Limits, Value};

/// `data` decoded as one Syrup value. Accepted input is canonical, so it must encode back
/// to exactly `data`, and that must decode to an equal value; the prefix decoder a stream
/// uses must agree with the whole-input one.
pub fn syrup(data: &[u8]) {
    let whole = syrup::decode(data);
    if let Ok(value) = &whole {
        let bytes = syrup::encode(value);
        assert_eq!(bytes, data, "decode→encode is not byte-exact");
        match syrup::decode(&bytes) {
            Ok(back) => assert!(same(&back, value), "re-decoded value differs"),
            Err(e) => panic!("re-encoded value does not decode: {e}"),
        }
    }
    if let Ok((value, used)) = syrup::decode_prefix(data, &Limits::default()) {
        assert!(
            used <= data.len() && used > 0,
            "prefix length {used} is out of range"
        );
        assert_eq!(
            syrup::encode(&value),
            data[..used],
            "prefix is not byte-exact"
        );
        if used == data.len() {
            assert!(
                whole.is_ok(),
                "prefix took all the input but decode refused it"
            );
        }
    }
}

/// Values are equal, NaNs included (Syrup floats are compared by their bits).
fn same(a: &Value, b: &Value) -> bool {
    syrup::encode(a) == syrup::encode(b)
}

/// `data` read as a stream of CapTP frames (Syrup values, as a session reads them), each
/// parsed as an op. What parses is only checked not to panic.
pub fn captp_message(data: &[u8]) {
    let limits = SessionConfig::default().limits;
    let mut rest = data;
    loop {
        let general = syrup::decode_prefix(rest, &limits);
        // A far call's ops, read straight from the bytes: only frames the general path
        // takes too, as the same op, length and labels.
        if let Some((hot, used, labels)) = crate::captp::hot::read(rest, &limits) {
            let Ok((frame, general_used)) = &general else {
                panic!("the hot reader took a frame the decoder refuses: {general:?}");
            };
            assert_eq!(used, *general_used, "the hot reader took another length");
            assert_eq!(
                labels,
                crate::captp::labels_of(frame),
                "other labels learnt"
            );
            assert_eq!(
                Ok(format!("{:?}", hot.into_op())),
                Op::parse(frame)
                    .map(|op| format!("{op:?}"))
                    .map_err(|e| e.to_string()),
                "the hot reader read another op"
            );
        }
        let Ok((frame, used)) = general else {
            break;
        };
        let parsed = Op::parse(&frame).map(|op| format!("{op:?}"));
        // A frame the session owns is parsed without copying its arguments: the same op.
        let owned = Op::parse_owned(frame).map(|op| format!("{op:?}"));
        assert_eq!(
            owned.as_ref().map_err(ToString::to_string),
            parsed.as_ref().map_err(ToString::to_string),
            "parsed owned and borrowed, a frame gives the same op or error"
        );
        rest = &rest[used..];
    }
}

/// The session under test's key: fixed, so a seed corpus can carry a valid peer hello.
pub const SESSION_SEED: [u8; 32] = [7; 32];

/// The peer key the seed corpus's hellos are signed with.
pub const PEER_SEED: [u8; 32] = [9; 32];

/// The locator the session under test announces.
pub fn session_locator() -> PeerLocator {
    PeerLocator::new("fuzz", "under-test")
}

/// `data` as everything a hostile peer sends on one CapTP session, fed in chunks (the
/// first byte sets the chunk size, so frames split across reads too). The host side acts
/// as a node would: it binds a promise for every answer asked for, answers each
/// delivery with `op:deliver-only` to its resolver, and releases what the peer drops.
pub fn captp_session(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let boot = LocalRef {
        id: ObjId(0),
        promise: false,
    };
    let mut session = Session::new(
        ConnId(1),
        SessionConfig::default(),
        KeyPair::from_seed(&SESSION_SEED),
        &session_locator(),
        boot,
    );
    let mut next_promise = 1000u64;
    for piece in stream.chunks(chunk) {
        session.receive(piece);
        while let Some(event) = session.poll_event() {
            match event {
                Event::Deliver {
                    args,
                    answer_pos,
                    resolve_me,
                    ..
                } => {
                    if let Some(pos) = answer_pos {
                        next_promise += 1;
                        session.bind_answer(
                            pos,
                            LocalRef {
                                id: ObjId(next_promise),
                                promise: true,
                            },
                        );
                    }
                    if let Some(resolver) = resolve_me {
                        let mut answer = vec![Term::sym("fulfill")];
                        answer.extend(args);
                        let _ = session.send_deliver_only(
                            OutTarget::of(&resolver),
                            &answer,
                            &mut |_| Err(crate::captp::CaptpError::Protocol("no handoff".into())),
                        );
                    }
                }
                Event::Aborted { .. } => {}
                _ => {}
            }
        }
        let _ = session.take_output();
        session.collect_garbage();
    }
}

/// `data` as an `ocapn://` URI, parsed as a peer locator and as a sturdyref. What parses
/// must print and parse back to the same URI, and go through Syrup and back the same.
pub fn ocapn_uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(peer) = PeerLocator::parse(text) {
        let uri = peer.to_uri();
        match PeerLocator::parse(&uri) {
            Ok(back) => assert_eq!(back.to_uri(), uri, "peer locator changed through its URI"),
            Err(e) => panic!("printed peer locator {uri:?} does not parse: {e}"),
        }
        match PeerLocator::from_value(&peer.to_value()) {
            Ok(back) => assert_eq!(back.to_uri(), uri, "peer locator changed through Syrup"),
            Err(e) => panic!("peer locator {uri:?} does not come back from Syrup: {e}"),
        }
    }
    if let Ok(sref) = Sturdyref::parse(text) {
        let uri = sref.to_uri();
        match Sturdyref::parse(&uri) {
            Ok(back) => assert_eq!(back, sref, "sturdyref changed through its URI"),
            Err(e) => panic!("printed sturdyref {uri:?} does not parse: {e}"),
        }
        match Sturdyref::from_value(&sref.to_value()) {
            Ok(back) => assert_eq!(back, sref, "sturdyref changed through Syrup"),
            Err(e) => panic!("sturdyref {uri:?} does not come back from Syrup: {e}"),
        }
    }
}
