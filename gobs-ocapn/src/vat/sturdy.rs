//! [`SturdyRemote`]: a remote reference a portrait can hold, saved as its sturdyref and
//! live again after a restore.

use gobs_runtime::Promise;

use super::remote::{RemoteError, error_text};
use crate::captp::{Ref, Term};
use crate::node::Node;

/// The node that [`SturdyRemote`]s reach the network through, process-wide.
static DEFAULT_NODE: std::sync::OnceLock<std::sync::Mutex<Option<Node>>> =
    std::sync::OnceLock::new();

/// Sets the node [`SturdyRemote`]s use (call it once at startup, before restoring vats
/// whose portraits hold them).
pub fn set_default_node(node: &Node) {
    let slot = DEFAULT_NODE.get_or_init(|| std::sync::Mutex::new(None));
    if let Ok(mut s) = slot.lock() {
        *s = Some(node.clone());
    }
}

fn default_node() -> Option<Node> {
    DEFAULT_NODE
        .get()
        .and_then(|m| m.lock().ok().and_then(|n| n.clone()))
}

/// A remote reference that can live in a portrait: it is saved as its sturdyref URI and,
/// after a restore, becomes live again on its first send (enlivened through the node
/// given to [`set_default_node`]). Use it as a field of a persistent actor.
///
/// ```
/// use gobs_ocapn::locator::Sturdyref;
/// use gobs_ocapn::vat::SturdyRemote;
/// let s = SturdyRemote::new(Sturdyref::parse("ocapn://abc.tcp-tls/s/c2VjcmV0?host=h&port=1").unwrap());
/// let saved = gobs_ocapn::syrup::to_bytes(&s).unwrap();
/// let back: SturdyRemote = gobs_ocapn::syrup::from_bytes(&saved).unwrap();
/// assert_eq!(back.sturdyref(), s.sturdyref());
/// ```
#[derive(Clone, Debug)]
pub struct SturdyRemote {
    sturdyref: crate::locator::Sturdyref,
    live: std::sync::Arc<std::sync::Mutex<Option<Ref>>>,
}

impl SturdyRemote {
    /// A portrait-safe reference to the object named by `sturdyref`.
    pub fn new(sturdyref: crate::locator::Sturdyref) -> SturdyRemote {
        SturdyRemote {
            sturdyref,
            live: Default::default(),
        }
    }

    /// The sturdyref it is saved as.
    pub fn sturdyref(&self) -> &crate::locator::Sturdyref {
        &self.sturdyref
    }

    /// Sends `method` with `args`, enlivening the sturdyref first if this reference is not
    /// live yet (after a restore, or when its session was lost).
    pub fn send(&self, method: &str, args: Vec<Term>) -> Promise<Term> {
        let Some(node) = default_node() else {
            return Promise::broken(gobs_runtime::Error::actor(
                "remote object",
                RemoteError(format!(
                    "no node to reach {} through: call gobs_ocapn::vat::set_default_node first",
                    self.sturdyref.to_uri()
                )),
            ));
        };
        let (promise, resolver) = Promise::pair();
        let live = self.live.clone();
        let sturdyref = self.sturdyref.clone();
        let mut all = vec![Term::sym(method)];
        all.extend(args);
        let cached = live.lock().ok().and_then(|l| l.clone());
        node.post(move |core| {
            let target = match cached {
                Some(r) => r,
                None => {
                    let p = core.enliven(&sturdyref);
                    let live = live.clone();
                    core.when_settled(
                        p,
                        Box::new(move |outcome| {
                            if let (Ok(Term::Ref(r)), Ok(mut l)) = (outcome, live.lock()) {
                                *l = Some(r);
                            }
                        }),
                    );
                    Ref::Local(p)
                }
            };
            let p = core.send(target, all);
            core.when_settled(
                p,
                Box::new(move |outcome| match outcome {
                    Ok(v) => resolver.fulfill(v),
                    Err(e) => {
                        // A broken session: forget the live reference, enliven again next time.
                        if let Ok(mut l) = live.lock() {
                            *l = None;
                        }
                        resolver.break_with(gobs_runtime::Error::actor(
                            "remote object",
                            RemoteError(error_text(&e)),
                        ))
                    }
                }),
            );
        });
        promise
    }
}

impl serde::Serialize for SturdyRemote {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.sturdyref.to_uri())
    }
}

impl<'de> serde::Deserialize<'de> for SturdyRemote {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SturdyRemote, D::Error> {
        let uri = String::deserialize(d)?;
        crate::locator::Sturdyref::parse(&uri)
            .map(SturdyRemote::new)
            .map_err(serde::de::Error::custom)
    }
}
