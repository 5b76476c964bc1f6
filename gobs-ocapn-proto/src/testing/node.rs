//! A node core on the simulated network, as the test holds it.

use crate::captp::{ConnId, LocalRef, SessionConfig, Term};
use crate::locator::{PeerLocator, Sturdyref};
use crate::node::Core;

use super::net::{LinkId, Net};

/// A handle to one node of a [`Net`]. Clones name the same node.
#[derive(Clone)]
pub struct SimNode {
    net: Net,
    index: usize,
    locator: PeerLocator,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimNode({})", self.locator.to_uri())
    }
}

/// Nodes on the network, and what tests ask of the links between them.
impl Net {
    /// A node known as `locator`: others reach it by dialing that locator.
    pub fn node(&self, locator: PeerLocator, config: SessionConfig) -> SimNode {
        let index = self.add_core(locator.clone(), config);
        SimNode::new(self.clone(), index, locator)
    }

    /// Holds what `from` writes on `link` (the other way keeps flowing).
    pub fn hold_from(&self, link: LinkId, from: &SimNode) {
        self.hold_from_node(link, from.index());
    }

    /// Lets go what `from` wrote on `link`, as one read.
    pub fn release_from(&self, link: LinkId, from: &SimNode) {
        self.release_from_node(link, from.index());
    }

    /// The link between two nodes (the latest, if they have had several).
    pub fn link_between(&self, a: &SimNode, b: &SimNode) -> Option<LinkId> {
        self.link_between_nodes(a.index(), b.index())
    }

    /// The connection `node` has on `link`.
    pub fn conn_on(&self, link: LinkId, node: &SimNode) -> Option<ConnId> {
        self.conn_of_node(link, node.index())
    }
}

impl SimNode {
    fn new(net: Net, index: usize, locator: PeerLocator) -> SimNode {
        SimNode {
            net,
            index,
            locator,
        }
    }

    pub(super) fn index(&self) -> usize {
        self.index
    }

    /// The node's locator.
    pub fn locator(&self) -> &PeerLocator {
        &self.locator
    }

    /// Runs `f` on the node's core, then what it queued (as the tokio shell does after a
    /// call): its writes are in flight when this returns, not delivered.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let mut w = self.net.world.borrow_mut();
        let core = &mut w.cores[self.index];
        let r = f(core);
        core.run();
        w.flush();
        r
    }

    /// How many objects and promises the node holds now.
    pub fn objects(&self) -> usize {
        self.with_core(|c| c.object_count())
    }

    /// How many open sessions the node has with the peer named `designator`.
    pub fn sessions_with(&self, designator: &str) -> usize {
        self.with_core(|c| {
            c.session_stats()
                .iter()
                .filter(|(_, peer, _, _)| peer.as_ref().is_some_and(|p| p.designator == designator))
                .count()
        })
    }

    /// Sends `args` to `to` from outside any object; the promise for the answer.
    pub fn send(&self, to: crate::captp::CapRef, args: Vec<Term>) -> LocalRef {
        self.with_core(|c| c.send(to, args))
    }

    /// Enlivens a sturdyref; the promise for the object.
    pub fn enliven(&self, sturdyref: &Sturdyref) -> LocalRef {
        self.with_core(|c| c.enliven(sturdyref))
    }

    /// Drives the network until nothing is in flight, then takes the outcome of promise
    /// `p` (`None` if it is still pending then).
    pub fn settled(&self, p: LocalRef) -> Option<Result<Term, Term>> {
        self.net.drive();
        self.with_core(|c| c.promise_state(p.id))
    }

    /// The node's links (one per connection it has had, in the order they were made).
    pub fn links(&self) -> Vec<LinkId> {
        self.net.links_of(self.index)
    }
}
