//! The simulated network: node cores and raw peers joined by in-memory links, a clock
//! that moves only when told to, and the faults a test may inject.
//!
//! A link carries what one end writes to the other as frames (one write, one frame), each
//! due at the time it was written plus the link's latency. Frames arrive in the order
//! they are due, ties in the order they were written, so the same test always sees the
//! same interleaving. Nothing happens by itself: a test moves frames with [`Net::run`],
//! [`Net::drive`] or [`Net::advance`], or by reading on a raw peer.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::captp::{ConnId, SessionConfig};
use crate::locator::PeerLocator;
use crate::node::{Action, Core};

/// Names a link between two ends (a node's connection, or a raw peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub(super) u64);

/// One end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum End {
    /// A connection of the node at this index.
    Node(usize, ConnId),
    /// A raw peer (its bytes wait in the link's inbox for the test to read).
    Peer,
}

struct Frame {
    due: Duration,
    seq: u64,
    bytes: Vec<u8>,
}

pub(super) struct Link {
    ends: [End; 2],
    /// `flight[i]`: written by end `i`, on its way to the other end.
    flight: [VecDeque<Frame>; 2],
    /// End `i` has closed (why): the other end reads EOF once `flight[i]` is empty.
    closing: [Option<String>; 2],
    /// End `i` has been told the connection ended.
    ended: [bool; 2],
    latency: Duration,
    /// `held[i]`: what end `i` writes stays in flight until released.
    held: [bool; 2],
    /// What reached the raw-peer end and was not read yet.
    pub(super) inbox: Vec<u8>,
}

impl Link {
    fn side_of(&self, end: End) -> usize {
        usize::from(self.ends[0] != end)
    }

    /// Whether the raw-peer end has read EOF.
    pub(super) fn peer_ended(&self) -> bool {
        self.ended[self.side_of(End::Peer)]
    }
}

pub(super) struct World {
    origin: Instant,
    elapsed: Duration,
    seq: u64,
    pub(super) cores: Vec<Core>,
    listeners: Vec<(PeerLocator, VecDeque<LinkId>)>,
    pub(super) links: BTreeMap<LinkId, Link>,
    by_conn: HashMap<(usize, ConnId), LinkId>,
    failed_dials: HashSet<(usize, ConnId)>,
    next_link: u64,
    latency: Duration,
}

/// What [`World::step`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Delivered a frame or an end of stream.
    Moved,
    /// Nothing is in flight (held links aside).
    Quiet,
}

/// A simulated network. Clones are handles to the same network; everything runs on the
/// test's thread, and the clock starts at [`Net::now`] and moves only when the test (or a
/// read waiting for a frame still in flight) moves it.
#[derive(Clone)]
pub struct Net {
    pub(super) world: Rc<RefCell<World>>,
}

impl Default for Net {
    fn default() -> Net {
        Net::new()
    }
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self.world.borrow();
        f.debug_struct("Net")
            .field("elapsed", &w.elapsed)
            .field("nodes", &w.cores.len())
            .field("links", &w.links.len())
            .finish()
    }
}

impl Net {
    /// An empty network at time zero, with no latency.
    pub fn new() -> Net {
        Net {
            world: Rc::new(RefCell::new(World {
                origin: Instant::now(),
                elapsed: Duration::ZERO,
                seq: 0,
                cores: Vec::new(),
                listeners: Vec::new(),
                links: BTreeMap::new(),
                by_conn: HashMap::new(),
                failed_dials: HashSet::new(),
                next_link: 1,
                latency: Duration::ZERO,
            })),
        }
    }

    /// Adds a node core known as `locator`; returns its index.
    pub(super) fn add_core(&self, locator: PeerLocator, config: SessionConfig) -> usize {
        let mut w = self.world.borrow_mut();
        w.cores.push(Core::new(locator, config));
        w.cores.len() - 1
    }

    /// A connection the node at `index` accepted from a raw peer, of which the netlayer
    /// proved `proof`; returns its link.
    pub(super) fn accept_raw(&self, index: usize, proof: crate::node::PeerProof) -> LinkId {
        let mut w = self.world.borrow_mut();
        let now = w.now();
        let core = &mut w.cores[index];
        let conn = core.accepted_with(proof);
        core.connected(conn, now);
        let link = w.add_link([End::Node(index, conn), End::Peer]);
        w.flush();
        link
    }

    /// Makes `locator` reachable by a raw peer: a node dialing it connects to it.
    pub(super) fn add_listener(&self, locator: PeerLocator) {
        self.world
            .borrow_mut()
            .listeners
            .push((locator, VecDeque::new()));
    }

    /// The simulated time now.
    pub fn now(&self) -> Instant {
        self.world.borrow().now()
    }

    /// How far the clock has moved since the network was made.
    pub fn elapsed(&self) -> Duration {
        self.world.borrow().elapsed
    }

    /// The latency of links made from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.world.borrow_mut().latency = latency;
    }

    /// Changes one link's latency (for frames written from now on).
    pub fn set_link_latency(&self, link: LinkId, latency: Duration) {
        self.world.borrow_mut().link(link).latency = latency;
    }

    /// Delivers every frame due by now, and what the deliveries make due by now, until
    /// none is left. The clock does not move.
    pub fn run(&self) {
        let mut w = self.world.borrow_mut();
        let now = w.elapsed;
        while w.step(now) == Step::Moved {}
    }

    /// Delivers everything in flight, moving the clock to each frame's arrival, until
    /// nothing is in flight (held links aside). Timers fire as the clock passes them, but
    /// the clock is not moved for a timer alone: see [`Net::advance`].
    pub fn drive(&self) {
        let mut w = self.world.borrow_mut();
        while w.step(Duration::MAX) == Step::Moved {}
    }

    /// Moves the clock forward by `by`, delivering frames and firing the nodes' timers in
    /// time order on the way.
    pub fn advance(&self, by: Duration) {
        let mut w = self.world.borrow_mut();
        let until = w.elapsed + by;
        loop {
            let now = w.elapsed;
            while w.step(now) == Step::Moved {}
            match w.next_event() {
                Some(at) if at <= until => w.set_clock(at),
                _ => break,
            }
        }
        w.set_clock(until);
        while w.step(until) == Step::Moved {}
    }

    /// Holds a link's frames (both ways) where they are until [`Net::release`].
    pub fn hold(&self, link: LinkId) {
        self.world.borrow_mut().link(link).held = [true, true];
    }

    /// Holds what the node at `index` writes on `link` (the other way keeps flowing).
    pub(super) fn hold_from_node(&self, link: LinkId, index: usize) {
        let mut w = self.world.borrow_mut();
        let side = w.node_side(link, index);
        w.link(link).held[side] = true;
    }

    /// Lets a held link go (both ways): what was held arrives as one read per direction
    /// (as a socket may coalesce writes), due at once.
    pub fn release(&self, link: LinkId) {
        let mut w = self.world.borrow_mut();
        for side in 0..2 {
            w.release_side(link, side);
        }
    }

    /// Lets go what the node at `index` wrote on `link`, as one read.
    pub(super) fn release_from_node(&self, link: LinkId, index: usize) {
        let mut w = self.world.borrow_mut();
        let side = w.node_side(link, index);
        w.release_side(link, side);
    }

    /// Whether neither end of `link` has closed it.
    pub fn is_open(&self, link: LinkId) -> bool {
        let mut w = self.world.borrow_mut();
        w.link(link).closing.iter().all(Option::is_none)
    }

    /// Cuts a link: what is in flight is lost, and both ends are told the connection ended
    /// now.
    pub fn cut(&self, link: LinkId) {
        let mut w = self.world.borrow_mut();
        let l = w.link(link);
        for side in 0..2 {
            l.flight[side].clear();
            l.closing[side].get_or_insert_with(|| "connection cut".to_owned());
        }
        w.end_both(link);
        w.flush();
    }

    /// The links of the node at `index` (in the order they were made).
    pub(super) fn links_of(&self, index: usize) -> Vec<LinkId> {
        let w = self.world.borrow();
        w.links
            .iter()
            .filter(|(_, l)| {
                l.ends
                    .iter()
                    .any(|e| matches!(e, End::Node(n, _) if *n == index))
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The link between the nodes at `a` and `b` (the latest, if they have had several).
    pub(super) fn link_between_nodes(&self, a: usize, b: usize) -> Option<LinkId> {
        let w = self.world.borrow();
        let joins = |l: &Link, x: usize, y: usize| matches!(l.ends, [End::Node(p, _), End::Node(q, _)] if (p, q) == (x, y));
        w.links
            .iter()
            .rev()
            .find(|(_, l)| joins(l, a, b) || joins(l, b, a))
            .map(|(id, _)| *id)
    }

    /// The connection the node at `index` has on `link`.
    pub(super) fn conn_of_node(&self, link: LinkId, index: usize) -> Option<ConnId> {
        let w = self.world.borrow();
        w.links.get(&link)?.ends.iter().find_map(|e| match e {
            End::Node(n, c) if *n == index => Some(*c),
            _ => None,
        })
    }
}

impl World {
    pub(super) fn now(&self) -> Instant {
        self.origin + self.elapsed
    }

    fn link(&mut self, id: LinkId) -> &mut Link {
        self.links
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no link {id:?} on this network"))
    }

    fn node_side(&mut self, link: LinkId, index: usize) -> usize {
        let l = self.link(link);
        l.ends
            .iter()
            .position(|e| matches!(e, End::Node(n, _) if *n == index))
            .unwrap_or_else(|| panic!("node {index} is not on link {link:?}"))
    }

    fn release_side(&mut self, link: LinkId, side: usize) {
        let now = self.elapsed;
        let l = self.link(link);
        l.held[side] = false;
        let flight = &mut l.flight[side];
        if let Some(seq) = flight.front().map(|f| f.seq) {
            let bytes = flight.drain(..).flat_map(|f| f.bytes).collect();
            flight.push_back(Frame {
                due: now,
                seq,
                bytes,
            });
        }
    }

    fn add_link(&mut self, ends: [End; 2]) -> LinkId {
        let id = LinkId(self.next_link);
        self.next_link += 1;
        for end in ends {
            if let End::Node(n, c) = end {
                self.by_conn.insert((n, c), id);
            }
        }
        self.links.insert(
            id,
            Link {
                ends,
                flight: [VecDeque::new(), VecDeque::new()],
                closing: [None, None],
                ended: [false, false],
                latency: self.latency,
                held: [false, false],
                inbox: Vec::new(),
            },
        );
        id
    }

    /// Queues `bytes` written by `from` on `link`.
    pub(super) fn write(&mut self, link: LinkId, from: End, bytes: Vec<u8>) {
        let seq = self.seq;
        self.seq += 1;
        let now = self.elapsed;
        let l = self.link(link);
        let side = l.side_of(from);
        if l.closing[side].is_some() {
            return;
        }
        let due = now + l.latency;
        l.flight[side].push_back(Frame { due, seq, bytes });
    }

    /// End `from` of `link` closes: the other end reads EOF after what is in flight.
    pub(super) fn close(&mut self, link: LinkId, from: End, why: &str) {
        let l = self.link(link);
        let side = l.side_of(from);
        l.closing[side].get_or_insert_with(|| why.to_owned());
    }

    /// Carries out what every core asked for, until none asks for more.
    pub(super) fn flush(&mut self) {
        loop {
            let mut any = false;
            for n in 0..self.cores.len() {
                let mut actions = self.cores[n].take_actions();
                // A dial connects before the bytes queued for it go out (as the shell
                // buffers them until the connection is up).
                actions.sort_by_key(|a| !matches!(a, Action::Dial(..)));
                for action in actions {
                    any = true;
                    self.act(n, action);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn act(&mut self, n: usize, action: Action) {
        match action {
            Action::Write(conn, bytes) => match self.by_conn.get(&(n, conn)) {
                Some(&link) => self.write(link, End::Node(n, conn), bytes),
                // Written for a dial that failed: the shell drops it too.
                None if self.failed_dials.contains(&(n, conn)) => {}
                None => panic!("node {n} wrote to connection {conn:?}, which it never had"),
            },
            Action::Close(conn) => {
                if let Some(&link) = self.by_conn.get(&(n, conn)) {
                    self.close(link, End::Node(n, conn), "closed by the peer");
                }
            }
            Action::Dial(conn, to) => self.dial(n, conn, &to),
        }
    }

    fn dial(&mut self, n: usize, conn: ConnId, to: &PeerLocator) {
        let now = self.now();
        let same = |l: &PeerLocator| l.transport == to.transport && l.designator == to.designator;
        if let Some(m) = (0..self.cores.len()).find(|&m| same(self.cores[m].locator())) {
            let accepted = self.cores[m].accepted();
            self.cores[m].connected(accepted, now);
            self.cores[n].connected(conn, now);
            self.add_link([End::Node(n, conn), End::Node(m, accepted)]);
        } else if let Some(i) = self.listeners.iter().position(|(l, _)| same(l)) {
            self.cores[n].connected(conn, now);
            let link = self.add_link([End::Node(n, conn), End::Peer]);
            self.listeners[i].1.push_back(link);
        } else {
            let why = format!("no peer at {} on this simulated network", to.to_uri());
            self.failed_dials.insert((n, conn));
            self.cores[n].dial_failed(conn, &why);
        }
    }

    /// The next connection a node made to the listener at `locator`.
    pub(super) fn take_dialed(&mut self, locator: &PeerLocator) -> Option<LinkId> {
        let (_, queue) = self.listeners.iter_mut().find(|(l, _)| l == locator)?;
        queue.pop_front()
    }

    /// Delivers the earliest frame (or end of stream) due by `until`, moving the clock to
    /// its arrival if that is later than now.
    pub(super) fn step(&mut self, until: Duration) -> Step {
        if let Some(link) = self.next_eof() {
            self.end_both(link);
            self.flush();
            return Step::Moved;
        }
        let next = self
            .links
            .iter()
            .flat_map(|(id, l)| {
                (0..2)
                    .filter(|&side| !l.held[side])
                    .filter_map(move |side| {
                        l.flight[side].front().map(|f| (f.due, f.seq, *id, side))
                    })
            })
            .min();
        let Some((due, _, link, side)) = next.filter(|n| n.0 <= until) else {
            return Step::Quiet;
        };
        if due > self.elapsed {
            self.set_clock(due);
        }
        let l = self.link(link);
        let Some(frame) = l.flight[side].pop_front() else {
            return Step::Quiet;
        };
        match l.ends[1 - side] {
            End::Peer => l.inbox.extend_from_slice(&frame.bytes),
            End::Node(m, conn) => {
                if !l.ended[1 - side] {
                    self.cores[m].bytes(conn, &frame.bytes);
                }
            }
        }
        self.flush();
        Step::Moved
    }

    /// A link with an end that closed and has nothing more in flight, whose other end has
    /// not been told yet.
    fn next_eof(&self) -> Option<LinkId> {
        self.links.iter().find_map(|(id, l)| {
            (0..2)
                .any(|side| {
                    l.closing[side].is_some() && l.flight[side].is_empty() && !l.ended[1 - side]
                })
                .then_some(*id)
        })
    }

    /// Tells each end whose peer closed (with nothing left in flight) that it ended.
    fn end_both(&mut self, link: LinkId) {
        let l = self.link(link);
        let mut told = Vec::new();
        for side in 0..2 {
            if l.ended[1 - side] || !l.flight[side].is_empty() {
                continue;
            }
            let Some(why) = l.closing[side].clone() else {
                continue;
            };
            l.ended[1 - side] = true;
            // An end that closed itself is not told again.
            if l.closing[1 - side].is_none() || why == "connection cut" {
                told.push((l.ends[1 - side], why));
            }
        }
        for (end, why) in told {
            if let End::Node(m, conn) = end {
                self.cores[m].closed(conn, &why);
            }
        }
    }

    /// The earliest time something is due: a frame in flight or a node's timer.
    fn next_event(&mut self) -> Option<Duration> {
        let frames = self.links.values().flat_map(|l| {
            (0..2)
                .filter(|&side| !l.held[side])
                .filter_map(|side| l.flight[side].front().map(|f| f.due))
        });
        let origin = self.origin;
        let timers = self
            .cores
            .iter_mut()
            .filter_map(|c| c.poll_timeout())
            .map(|t| t.saturating_duration_since(origin))
            .collect::<Vec<_>>();
        frames.chain(timers).min()
    }

    /// Moves the clock to `to` (never back) and fires the timers due by then.
    fn set_clock(&mut self, to: Duration) {
        self.elapsed = self.elapsed.max(to);
        let now = self.now();
        for core in &mut self.cores {
            if core.poll_timeout().is_some_and(|t| t <= now) {
                core.handle_timeout(now);
            }
        }
        self.flush();
    }
}
