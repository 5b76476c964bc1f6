//! [`Remote<T>`]: a typed far reference to a gobs actor on a peer.

use std::marker::PhantomData;

use gobs_runtime::{Actor, Error, SendTarget};

use super::RemoteObject;
use crate::captp::{Ref as CapRef, Term};
use crate::locator::Sturdyref;
use crate::node::Node;
use crate::syrup::Value;

/// A far reference to a `T` (a `#[define_actor]` actor) on another node: the same typed
/// `send()` as a [`gobs_runtime::Ref<T>`], reaching the actor by method name over CapTP.
///
/// - `remote.send().method(args)` returns the method's `Promise`, as for a `Ref<T>` in
///   another vat. Every `pub` method that is not `#[actor(local)]` goes by name; the
///   others, and the closure forms (`send_with`, …), break with
///   [`Error::NotByName`](gobs_runtime::Error::NotByName). There is no near `call()`:
///   the actor is never in the caller's vat.
/// - Arguments and results cross as in [`RemoteObject::call`]: a `Ref<U>` of this
///   process is exported, a `Remote<U>` or [`RemoteObject`] goes as itself, and an
///   answer holding a reference decodes as `Ref<U>` only for one of this process's own
///   actors; a method answering with an actor of the peer is reached through
///   [`Remote::pipeline`] (a `Remote<U>` at once, pipelined) or [`RemoteObject::call`]
///   with a `Remote<U>` result.
/// - The type is the caller's claim, as a sturdyref carries no type: a method the peer's
///   object lacks, or arguments it does not take, break the promise with the peer's
///   error (an unknown method, a wrong argument) and do nothing there.
/// - In a portrait and as a method's parameter it behaves as the [`RemoteObject`] it
///   wraps: saved as its sturdyref, live again after a restore.
///
/// ```
/// # #![allow(clippy::unwrap_used)]
/// use std::sync::Arc;
/// use gobs_ocapn::captp::{Ref, SessionConfig, Term};
/// use gobs_ocapn::locator::Sturdyref;
/// use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly};
/// use gobs_ocapn::node::Node;
/// use gobs_ocapn::vat::{Remote, export_actor};
/// use gobs_runtime::{Vat, define_actor};
///
/// #[define_actor]
/// pub struct Counter { count: u64 }
///
/// #[define_actor]
/// impl Counter {
///     pub fn add(&mut self, by: u64) -> u64 {
///         self.count += by;
///         self.count
///     }
/// }
///
/// # async fn node() -> Node {
/// #     let n = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
/// #     Node::start(vec![Arc::new(n) as Arc<dyn Netlayer>], SessionConfig::default()).unwrap()
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (server, client) = (node().await, node().await);
/// // The server exports a counter under a swiss number...
/// let vat = Vat::spawn("server").unwrap();
/// let counter = vat.spawn_actor(Counter { count: 0 }).unwrap();
/// let Term::Ref(Ref::Local(obj)) = export_actor(&server, counter).await.unwrap() else { panic!() };
/// server.with_core(move |c| c.bind_swiss(b"counter", obj)).await.unwrap();
///
/// // ...and the client, knowing it is a `Counter`, sends to it as to a local one.
/// let sturdyref = Sturdyref { peer: server.locator().clone(), swiss: b"counter".to_vec() };
/// let remote: Remote<Counter> = Remote::enliven(&client, &sturdyref).await.unwrap();
/// assert_eq!(remote.send().add(2).await.unwrap(), 2);
/// assert_eq!(remote.send().add(3).await.unwrap(), 5);
/// # }
/// ```
pub struct Remote<T> {
    object: RemoteObject,
    _type: PhantomData<fn() -> T>,
}

impl<T: Actor> Remote<T> {
    /// `object`, taken to be a `T` (see the type's docs: the claim is checked by the
    /// peer, message by message).
    pub fn new(object: RemoteObject) -> Remote<T> {
        Remote {
            object,
            _type: PhantomData,
        }
    }

    /// A reference to the `T` that `sturdyref` names, enlivened on its first send
    /// through the default node ([`set_default_node`](super::set_default_node)).
    pub fn from_sturdyref(sturdyref: Sturdyref) -> Remote<T> {
        Remote::new(RemoteObject::from_sturdyref(sturdyref))
    }

    /// Enlivens `sturdyref` through `node` as a `T` (see [`RemoteObject::enliven`]), and
    /// checks the claim where it can: a gobs node says which actor the sturdyref names
    /// (`gobs:actor-type`, one more round trip), and one that is not a `T` (by its
    /// registry name or an alias) is an error naming both. An object that is not a gobs
    /// actor, or a peer that is not a gobs node, cannot say; the claim is then taken as
    /// it is (see the type's docs).
    pub async fn enliven(node: &Node, sturdyref: &Sturdyref) -> Result<Remote<T>, Error> {
        let object = RemoteObject::enliven(node, sturdyref).await?;
        if let Some(CapRef::Remote(import)) = object.target() {
            let p = node
                .with_core(move |c| c.ask_actor_type(&import))
                .await
                .map_err(|e| Error::actor(T::type_name(), super::RemoteError(e.to_string())))?;
            let answer = node.settled(p).await;
            if let Ok(Ok(Term::Data(Value::String(name)))) = answer {
                let entry = T::entry();
                if !entry.names().any(|n| n == name) {
                    return Err(Error::actor(
                        T::type_name(),
                        super::RemoteError(format!(
                            "{} names a `{name}`, not a `{}` ({}): take it as a \
                             Remote<{}> of that type, or check the sturdyref",
                            sturdyref.to_uri(),
                            T::type_name(),
                            entry.name,
                            T::type_name(),
                        )),
                    ));
                }
            }
        }
        Ok(Remote::new(object))
    }

    /// `actor`, of this process, as a far reference through `node`: what to pass to a
    /// peer's method that takes a `Remote<T>` (the peer gets this node's export of it).
    pub async fn export(node: &Node, actor: gobs_runtime::Ref<T>) -> Result<Remote<T>, Error> {
        match super::export_actor(node, actor).await {
            Ok(Term::Ref(target)) => Ok(Remote::new(RemoteObject::new(node.clone(), target))),
            Ok(other) => Err(Error::actor(
                T::type_name(),
                super::RemoteError(format!("exporting it gave {other:?}, not a reference")),
            )),
            Err(e) => Err(Error::actor(
                T::type_name(),
                super::RemoteError(e.to_string()),
            )),
        }
    }

    /// Typed asynchronous sends, by method name: `counter.send().add(1)` returns a
    /// promise of the method's result.
    pub fn send(&self) -> T::Sender<'_> {
        T::Sender::from(SendTarget::Far(&self.object))
    }

    /// Sends by-name method `method` with `args` (a tuple) and gives at once a typed far
    /// reference to its answer, a `U` (promise pipelining; see
    /// [`RemoteObject::call_pipelined`]): for a method answering with an actor of the
    /// peer, `factory.pipeline::<Car, _>("make", &("red",)).send().drive()` is one round
    /// trip, not two.
    pub fn pipeline<U: Actor, A: serde::Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
    ) -> Remote<U> {
        Remote::new(self.object.call_pipelined(method, args))
    }

    /// The untyped far reference.
    pub fn object(&self) -> &RemoteObject {
        &self.object
    }

    /// The untyped far reference, consuming this one.
    pub fn into_object(self) -> RemoteObject {
        self.object
    }

    /// Its sturdyref, if known (see [`RemoteObject::sturdyref`]).
    pub fn sturdyref(&self) -> Option<Sturdyref> {
        self.object.sturdyref()
    }

    /// `Counter at remote object ocapn://…`: how errors name it.
    pub fn describe(&self) -> String {
        format!("{} at {}", T::type_name(), self.object.describe())
    }
}

impl RemoteObject {
    /// This reference, taken to be a `T`: a typed [`Remote<T>`].
    pub fn typed<T: Actor>(self) -> Remote<T> {
        Remote::new(self)
    }
}

impl<T> Clone for Remote<T> {
    fn clone(&self) -> Self {
        Remote {
            object: self.object.clone(),
            _type: PhantomData,
        }
    }
}

impl<T: Actor> std::fmt::Debug for Remote<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.describe())
    }
}

/// As the [`RemoteObject`] it wraps: its sturdyref in a portrait, itself in a call.
impl<T> serde::Serialize for Remote<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.object.serialize(s)
    }
}

impl<'de, T> serde::Deserialize<'de> for Remote<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Remote<T>, D::Error> {
        RemoteObject::deserialize(d).map(|object| Remote {
            object,
            _type: PhantomData,
        })
    }
}
