//! The node core without I/O: what it asks its shell to do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::node::{Action, Core};
use gobs_ocapn::syrup::{self, Limits};

#[test]
fn a_peer_that_never_says_hello_is_aborted_at_the_deadline() {
    let mut core = Core::new(PeerLocator::new("test", "me"), SessionConfig::default());
    let conn = core.accepted();
    let hello = core.take_actions();
    assert!(
        matches!(hello.as_slice(), [Action::Write(c, _)] if *c == conn),
        "{hello:?}"
    );
    core.hello_deadline(conn);
    let actions = core.take_actions();
    let [Action::Write(_, bytes), Action::Close(c)] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert_eq!(*c, conn);
    let (abort, _) = syrup::decode_prefix(bytes, &Limits::default()).unwrap();
    assert_eq!(
        format!("{abort:?}"),
        r#"<'op:abort "no op:start-session in time">"#
    );
    assert!(core.session_stats().is_empty(), "the session is gone");
}

#[test]
fn swiss_numbers_are_found_only_when_equal() {
    let mut core = Core::new(PeerLocator::new("test", "me"), SessionConfig::default());
    let obj = core.spawn(Box::new(|_: &mut gobs_ocapn::node::Cx<'_>, _| {
        Ok(gobs_ocapn::captp::Term::sym("hi"))
    }));
    core.bind_swiss(b"0123456789abcdef0123456789abcdef", obj);
    assert_eq!(
        core.lookup_swiss(b"0123456789abcdef0123456789abcdef"),
        Some(obj)
    );
    assert_eq!(core.lookup_swiss(b"0123456789abcdef0123456789abcdeF"), None);
    assert_eq!(core.lookup_swiss(b""), None);
}
