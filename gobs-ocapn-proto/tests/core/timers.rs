//! The node core's deadlines on a simulated clock: a hello that never comes, an idle session, a
//! dial that never answers or is refused, each a setting.

use super::*;

#[test]
fn a_peer_that_never_says_hello_is_aborted_at_the_deadline_and_not_before() {
    let net = Net::new();
    let node = sim(&net, "me");
    let mut silent = net.connect(&node, my_location("silent", 1));
    let hello = silent.recv().unwrap();
    assert_eq!(hello.as_record().unwrap().0, "op:start-session");
    net.advance(HELLO_TIMEOUT - Duration::from_millis(1));
    assert!(silent.try_recv().is_none(), "aborted before the deadline");
    assert_eq!(node.with_core(|c| c.session_stats().len()), 1);
    net.advance(Duration::from_millis(1));
    let abort = silent.recv().unwrap();
    assert_eq!(
        format!("{abort:?}"),
        r#"<'op:abort "no op:start-session in time">"#
    );
    assert!(silent.recv().is_none(), "the connection stays open");
    assert!(
        node.with_core(|c| c.session_stats().is_empty()),
        "the session is gone"
    );
}

#[test]
fn the_hello_deadline_is_a_setting() {
    let net = Net::new();
    let short = Duration::from_millis(250);
    let node = net.node(
        PeerLocator::new("sim", "me"),
        SessionConfig {
            hello_timeout: short,
            ..SessionConfig::default()
        },
    );
    let mut silent = net.connect(&node, my_location("silent", 1));
    assert_eq!(
        silent.recv().unwrap().as_record().unwrap().0,
        "op:start-session"
    );
    net.advance(short - Duration::from_millis(1));
    assert!(silent.try_recv().is_none(), "aborted before the deadline");
    net.advance(Duration::from_millis(1));
    assert!(
        format!("{:?}", silent.recv().unwrap()).contains("no op:start-session in time"),
        "aborted at the configured deadline"
    );
}

#[test]
fn a_peer_that_says_hello_in_time_keeps_its_session_past_the_deadline() {
    let net = Net::new();
    // No idle sweep either, so that no timer at all is left.
    let node = net.node(
        PeerLocator::new("sim", "me"),
        SessionConfig {
            idle_timeout: None,
            ..SessionConfig::default()
        },
    );
    node.with_core(fixtures::install);
    let mut late = net.connect(&node, my_location("late", 1));
    net.advance(HELLO_TIMEOUT - Duration::from_millis(1));
    late.setup();
    net.advance(HELLO_TIMEOUT * 2);
    assert_eq!(node.sessions_with("late"), 1);
    late.fetch(fixtures::GREETER);
    assert_eq!(
        node.with_core(|c| c.poll_timeout()),
        None,
        "no timer is left once every peer said hello"
    );
}

#[test]
fn a_session_with_nothing_in_it_is_closed_after_the_idle_timeout_and_not_before() {
    let net = Net::new();
    let node = sim(&net, "me");
    let mut idle = net.connect(&node, my_location("idle", 1));
    idle.setup();
    net.advance(IDLE_TIMEOUT);
    assert!(idle.try_recv().is_none(), "closed before the idle timeout");
    assert_eq!(node.sessions_with("idle"), 1);
    net.advance(IDLE_TIMEOUT / 2);
    assert_eq!(format!("{:?}", idle.recv().unwrap()), IDLE_ABORT);
    assert_eq!(node.sessions_with("idle"), 0, "the session is gone");
}

#[test]
fn a_session_that_holds_a_reference_is_never_idle() {
    let net = Net::new();
    let node = sim(&net, "me");
    let mut holder = net.connect(&node, my_location("holder", 1));
    holder.setup();
    let greeter = holder.fetch(fixtures::GREETER);
    while holder.try_recv().is_some() {}
    net.advance(IDLE_TIMEOUT * 5);
    assert!(
        holder.try_recv().is_none(),
        "a session holding a reference was closed"
    );
    assert_eq!(node.sessions_with("holder"), 1);

    // Once it lets go of it, the session is empty and goes in its turn.
    let pos = greeter.as_record().unwrap().1[0].as_int().unwrap() as u64;
    holder.gc_export(pos, 1);
    net.advance(IDLE_TIMEOUT * 2);
    let mut last = None;
    while let Some(m) = holder.try_recv() {
        last = Some(m);
    }
    assert_eq!(format!("{:?}", last.unwrap()), IDLE_ABORT);
}

#[test]
fn a_peer_that_keeps_talking_keeps_its_session() {
    let net = Net::new();
    let node = sim(&net, "me");
    let mut talker = net.connect(&node, my_location("talker", 1));
    talker.setup();
    for _ in 0..8 {
        net.advance(IDLE_TIMEOUT / 3);
        // Says something that leaves nothing held: a fetch of an unknown swiss number.
        let r = talker.deliver(
            gobs_ocapn_proto::testing::export(0),
            vec![
                Value::Symbol("fetch".into()),
                Value::Bytes(b"none".to_vec()),
            ],
            None,
        );
        assert_eq!(talker.resolution(r)[0], Value::Symbol("break".into()));
    }
    assert_eq!(node.sessions_with("talker"), 1);
}

#[test]
fn the_idle_timeout_is_a_setting_and_can_be_off() {
    for (idle_timeout, closed) in [(Some(Duration::from_secs(4)), true), (None, false)] {
        let net = Net::new();
        let node = net.node(
            PeerLocator::new("sim", "me"),
            SessionConfig {
                idle_timeout,
                ..SessionConfig::default()
            },
        );
        let mut idle = net.connect(&node, my_location("idle", 1));
        idle.setup();
        net.advance(Duration::from_secs(6));
        assert_eq!(
            node.sessions_with("idle"),
            usize::from(!closed),
            "{idle_timeout:?}"
        );
    }
}

#[test]
fn a_dialed_peer_that_never_answers_breaks_the_enlivening_at_the_deadline() {
    let net = Net::new();
    let node = sim(&net, "me");
    let location = my_location("mute", 2);
    let listener = net.listen(location.clone());
    let p = node.enliven(&Sturdyref {
        peer: PeerLocator::from_value(&location).unwrap(),
        swiss: b"anything".to_vec(),
    });
    let mut mute = listener.accept();
    assert_eq!(
        mute.recv().unwrap().as_record().unwrap().0,
        "op:start-session"
    );
    assert_eq!(
        node.settled(p),
        None,
        "pending while the peer may still answer"
    );
    net.advance(HELLO_TIMEOUT);
    assert!(
        matches!(node.settled(p), Some(Err(_))),
        "{:?}",
        node.settled(p)
    );
    let abort = mute.expect("op:abort");
    assert_eq!(
        format!("{abort:?}"),
        r#"<'op:abort "no op:start-session in time">"#
    );
    assert!(mute.recv().is_none(), "the connection stays open");
}

/// A peer that refuses every session on reading its hello (what the losing side of
/// crossed hellos sees): the fetch asked on the refused dial is asked again on new dials
/// (none of them waits, as no connection accepted here awaits its hello), a bounded number
/// of times, and then breaks naming the peer; it is never lost nor left pending.
#[test]
fn a_peer_that_refuses_every_dial_breaks_the_fetch_after_a_few_dials() {
    let net = Net::new();
    let node = sim(&net, "me");
    let location = my_location("refuser", 3);
    let listener = net.listen(location.clone());
    let p = node.enliven(&Sturdyref {
        peer: PeerLocator::from_value(&location).unwrap(),
        swiss: b"anything".to_vec(),
    });
    let mut dials = 0;
    while node.settled(p).is_none() {
        let mut refuser = listener.accept();
        dials += 1;
        refuser.setup();
        refuser.abort("crossed hellos: this connection loses");
        net.drive();
        assert!(dials <= 10, "the fetch is asked again without end");
    }
    assert_eq!(dials, 5, "the first dial and four more");
    let Some(Err(reason)) = node.settled(p) else {
        unreachable!()
    };
    assert!(
        format!("{reason:?}").contains("refuser"),
        "the error names the peer: {reason:?}"
    );
}

#[test]
fn a_dial_to_no_one_breaks_the_enlivening_at_once() {
    let net = Net::new();
    let node = sim(&net, "me");
    let nobody = PeerLocator::new("sim", "nobody");
    let p = node.enliven(&Sturdyref {
        peer: nobody.clone(),
        swiss: b"x".to_vec(),
    });
    let Some(Err(reason)) = node.settled(p) else {
        panic!("{:?}", node.settled(p))
    };
    assert!(
        gobs_ocapn_proto::node::is_kind(&reason, gobs_ocapn_proto::node::kinds::UNREACHABLE),
        "{reason:?}"
    );
    let why = format!("{reason:?}");
    assert!(why.contains(&nobody.to_uri()), "{why}");
    assert_eq!(net.elapsed(), Duration::ZERO, "no time passed");
}
