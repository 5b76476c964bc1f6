//! [`RemoteObject`]: a far reference, from vat code, to an object reached through a node
//! (on a peer, or a promise or object the node hosts).

use std::sync::Arc;

use gobs_runtime::carry::{self, decode_carrying, encode_carrying, on_commit};
use gobs_runtime::{Error, Promise, Resolver};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bridge::{BridgeError, args_in, term_out};
use super::export::enable;
use crate::captp::{LocalRef, Ref, Term};
use crate::node::{Core, Node, NodeStopped};
use crate::syrup::Value;

/// What a remote object's promise is broken with: the peer's error, or why the message
/// could not go.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RemoteError(pub String);

/// A far reference to an object on a peer (or to the promised answer of a message to one,
/// or to anything else a node hosts). Like any far reference it has no near call: every
/// send returns a gobs [`Promise`].
///
/// - [`send`](RemoteObject::send) takes and answers CapTP [`Term`]s (any peer, any
///   object);
/// - [`call`](RemoteObject::call) is the typed form for a gobs actor (or any object that
///   takes a method symbol first): the arguments are a serde tuple that may hold
///   references — a `Ref<T>` of this process (exported, once per actor), another
///   `RemoteObject` — and the answer decodes into any serde type, references included.
///
/// A `RemoteObject` is also what a `#[define_actor]` method takes to receive a reference
/// from a peer: a parameter of this type is the far reference the caller passed, which
/// the actor can `send()` to and keep in a field.
///
/// Sends made inside a turn leave when the turn commits, and not at all if it fails.
#[derive(Clone, Debug)]
pub struct RemoteObject {
    node: Node,
    target: Ref,
    _answer: Option<Arc<AnswerGuard>>,
}

/// Releases the node's promise behind a pipelined [`RemoteObject`] when the last clone
/// goes.
#[derive(Debug)]
struct AnswerGuard {
    node: Node,
    promise: LocalRef,
}

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        let p = self.promise;
        self.node.post(move |core| core.release(p));
    }
}

fn broken(e: impl std::fmt::Display) -> Error {
    Error::actor("remote object", RemoteError(e.to_string()))
}

/// A peer's error term as the text of a gobs error.
pub(crate) fn error_text(e: &Term) -> String {
    match e.to_value() {
        Some(Value::String(s)) => s,
        Some(other) => format!("{other:?}"),
        None => "broken with a reference".into(),
    }
}

impl RemoteObject {
    /// The reference `target` (usually from enlivening a sturdyref) reached through `node`.
    pub fn new(node: Node, target: Ref) -> RemoteObject {
        RemoteObject {
            node,
            target,
            _answer: None,
        }
    }

    /// The node it is reached through.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The CapTP reference (to pass in a [`Term`]).
    pub fn target(&self) -> Option<Ref> {
        Some(self.target.clone())
    }

    /// The reference as a term, to pass as an argument of [`send`](RemoteObject::send).
    pub fn to_term(&self) -> Term {
        Term::Ref(self.target.clone())
    }

    /// How errors name it.
    pub fn describe(&self) -> String {
        match &self.target {
            Ref::Remote(r) => format!(
                "remote object (import {} of connection {}) through {}",
                r.position(),
                r.conn().0,
                self.node.locator().to_uri()
            ),
            Ref::Local(l) => format!("object {} of node {}", l.id.0, self.node.locator().to_uri()),
        }
    }

    /// Sends `method` with `args` and returns, at once, a far reference to the answer:
    /// messages sent to it travel before the answer exists (`desc:answer` on the wire,
    /// promise pipelining), and break if the answer does.
    pub async fn pipeline(
        &self,
        method: &str,
        args: Vec<Term>,
    ) -> Result<RemoteObject, NodeStopped> {
        let mut all = vec![Term::sym(method)];
        all.extend(args);
        self.pipeline_args(all).await
    }

    /// [`RemoteObject::pipeline`] with the arguments as they are (no method symbol first),
    /// for objects that take no method name, as many Goblins objects do.
    pub async fn pipeline_args(&self, args: Vec<Term>) -> Result<RemoteObject, NodeStopped> {
        let target = self.target.clone();
        let p = self
            .node
            .with_core(move |core| core.send(target, args))
            .await?;
        Ok(RemoteObject {
            node: self.node.clone(),
            target: Ref::Local(p),
            _answer: Some(Arc::new(AnswerGuard {
                node: self.node.clone(),
                promise: p,
            })),
        })
    }

    /// Sends `method` with `args`; the promise is fulfilled with the answer or broken with
    /// the peer's error (or the lost connection's, naming the peer).
    pub fn send(&self, method: &str, args: Vec<Term>) -> Promise<Term> {
        let mut all = vec![Term::sym(method)];
        all.extend(args);
        self.send_args(all)
    }

    /// [`RemoteObject::send`] with the arguments as they are (no method symbol first).
    pub fn send_args(&self, all: Vec<Term>) -> Promise<Term> {
        let (promise, resolver) = Promise::pair();
        let (node, target) = (self.node.clone(), self.target.clone());
        on_commit(move || {
            node.post(move |core| {
                send_then(core, target, all, move |_, outcome| match outcome {
                    Ok(v) => resolver.fulfill(v),
                    Err(e) => resolver.break_with(broken(error_text(&e))),
                })
            })
        });
        promise
    }

    /// Calls `method` by name with typed arguments and a typed answer: `args` is a tuple
    /// of the arguments (`()` for none, `(x,)` for one) and may hold references, a
    /// `Ref<T>` of this process or another `RemoteObject`; the answer decodes as `R`, and
    /// the references in it as `Ref<T>` (one of this process's actors, handed back) or
    /// `RemoteObject`.
    ///
    /// ```
    /// # #![allow(clippy::unwrap_used)]
    /// use std::sync::Arc;
    /// use gobs_ocapn::captp::{Ref, SessionConfig, Term};
    /// use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly};
    /// use gobs_ocapn::node::Node;
    /// use gobs_ocapn::vat::{RemoteObject, export_actor};
    /// use gobs_runtime::{Vat, define_actor};
    ///
    /// /// The boss's side: machines register their bindings, a reference to an object on
    /// /// the machine's own node.
    /// #[define_actor]
    /// pub struct Registry { machines: Vec<(String, RemoteObject)> }
    ///
    /// #[define_actor]
    /// impl Registry {
    ///     pub fn register(&mut self, name: String, bindings: RemoteObject) -> usize {
    ///         self.machines.push((name, bindings));
    ///         self.machines.len()
    ///     }
    ///     pub fn bindings(&self, name: String) -> Option<RemoteObject> {
    ///         self.machines.iter().find(|(n, _)| *n == name).map(|(_, b)| b.clone())
    ///     }
    /// }
    ///
    /// /// The machine's side: what it exposes.
    /// #[define_actor]
    /// pub struct Bindings { status: String }
    ///
    /// #[define_actor]
    /// impl Bindings {
    ///     pub fn status(&self) -> String { self.status.clone() }
    /// }
    ///
    /// # async fn node() -> Node {
    /// #     let n = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    /// #     Node::start(vec![Arc::new(n) as Arc<dyn Netlayer>], SessionConfig::default()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (boss, machine) = (node().await, node().await);
    /// let vat = Vat::spawn("boss").unwrap();
    /// let registry = vat.spawn_actor(Registry { machines: vec![] }).unwrap();
    /// let Term::Ref(Ref::Local(obj)) = export_actor(&boss, registry).await.unwrap() else { panic!() };
    /// boss.with_core(move |c| c.bind_swiss(b"registry", obj)).await.unwrap();
    ///
    /// // The machine enlivens the boss's sturdyref and passes its own actor along.
    /// let here = Vat::spawn("machine").unwrap();
    /// let bindings = here.spawn_actor(Bindings { status: "up".into() }).unwrap();
    /// let sturdyref = gobs_ocapn::locator::Sturdyref {
    ///     peer: boss.locator().clone(),
    ///     swiss: b"registry".to_vec(),
    /// };
    /// let registry = RemoteObject::enliven(&machine, &sturdyref).await.unwrap();
    /// let count: usize = registry.call("register", &("m1", bindings.clone())).await.unwrap();
    /// assert_eq!(count, 1);
    ///
    /// // The boss's actor holds a far reference to the machine's bindings: it answers
    /// // with it, and the machine gets its own actor back.
    /// let back: Option<gobs_runtime::Ref<Bindings>> =
    ///     registry.call("bindings", &("m1",)).await.unwrap();
    /// assert_eq!(back, Some(bindings));
    /// # }
    /// ```
    pub fn call<A, R>(&self, method: &str, args: &A) -> Promise<R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + Send + 'static,
    {
        let (bytes, refs) = match encode_carrying(args) {
            Ok(encoded) => encoded,
            Err(e) => return Promise::broken(broken(format!("cannot encode the arguments: {e}"))),
        };
        let (promise, resolver) = Promise::pair();
        let (node, target, method) = (self.node.clone(), self.target.clone(), method.to_owned());
        on_commit(move || {
            let node2 = node.clone();
            node.post(move |core| {
                enable(core, &node2);
                let args = match term_out(core, &bytes, refs) {
                    Ok(Term::List(args)) => args,
                    Ok(other) => vec![other],
                    Err(e) => return resolver.break_with(broken(e)),
                };
                let mut all = vec![Term::sym(&method)];
                all.extend(args);
                send_then(core, target, all, move |core, outcome| match outcome {
                    Ok(v) => settle_typed(core, &node2, v, resolver),
                    Err(e) => resolver.break_with(broken(error_text(&e))),
                })
            })
        });
        promise
    }

    /// Enlivens `sturdyref` through `node`: the live reference, or the error that says
    /// why not (no such object, the peer cannot be reached).
    pub async fn enliven(
        node: &Node,
        sturdyref: &crate::locator::Sturdyref,
    ) -> Result<RemoteObject, Error> {
        let s = sturdyref.clone();
        let p = node
            .with_core(move |c| c.enliven(&s))
            .await
            .map_err(broken)?;
        match node.settled(p).await.map_err(broken)? {
            Ok(Term::Ref(r)) => Ok(RemoteObject::new(node.clone(), r)),
            Ok(other) => Err(broken(format!(
                "{} answered with {other:?}, not a reference",
                sturdyref.to_uri()
            ))),
            Err(e) => Err(broken(format!(
                "cannot enliven {}: {}",
                sturdyref.to_uri(),
                error_text(&e)
            ))),
        }
    }
}

/// Sends `args` to `target` and calls `then` with the core and the outcome; the node's
/// promise is released once told.
fn send_then(
    core: &mut Core,
    target: Ref,
    args: Vec<Term>,
    then: impl FnOnce(&mut Core, Result<Term, Term>) + Send + 'static,
) {
    let p = core.send(target, args);
    core.when_settled_with_core(p, Box::new(then));
    core.release(p);
}

/// Decodes a peer's answer as `R`, references carried (a reference to one of this node's
/// exported actors decodes as that actor).
fn settle_typed<R: DeserializeOwned + Send + 'static>(
    core: &mut Core,
    node: &Node,
    answer: Term,
    resolver: Resolver<R>,
) {
    let decoded =
        args_in(core, node, None, std::slice::from_ref(&answer)).and_then(|(bytes, refs)| {
            decode_carrying::<(R,)>(&bytes, refs)
                .map(|(r,)| r)
                .map_err(|e| BridgeError(format!("the answer {answer:?} does not decode: {e}")))
        });
    match decoded {
        Ok(r) => resolver.fulfill(r),
        Err(e) => resolver.break_with(broken(e)),
    }
}

/// While an actor's portrait is saved a `RemoteObject` is refused, naming what to do; in
/// a call by name (carrying) it travels as the reference it is.
impl Serialize for RemoteObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if carry::is_carrying() {
            return carry::serialize_foreign(self.clone(), s);
        }
        Err(serde::ser::Error::custom(format!(
            "{} cannot be saved: a live remote reference has no saved form; keep a \
             SturdyRemote (its sturdyref) in a persistent actor",
            self.describe()
        )))
    }
}

impl<'de> serde::Deserialize<'de> for RemoteObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RemoteObject, D::Error> {
        if carry::is_carrying() {
            return carry::deserialize_foreign::<RemoteObject, D>(d);
        }
        Err(serde::de::Error::custom(
            "a RemoteObject is only passed in a call, never restored: a persistent actor \
             keeps a SturdyRemote",
        ))
    }
}
