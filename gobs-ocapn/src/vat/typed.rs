//! Typed far references: a [`gobs_runtime::Ref<T>`] to a gobs actor on a peer, made of a
//! [`RemoteObject`] — a `Ref<T>` is near or far, as in Goblins (see
//! [`gobs_runtime::Ref`]).

use std::sync::Arc;

use gobs_runtime::{Actor, Error, Ref};

use super::remote::{RemoteError, RemoteObject};
use crate::captp::{CapRef, Term};
use crate::locator::Sturdyref;
use crate::node::Node;
use crate::syrup::Value;

impl RemoteObject {
    /// This reference, taken to be a `T` (a `#[define_actor]` actor): a far `Ref<T>`
    /// whose `send()` is the actor's generated proxy, each method going by name over
    /// CapTP.
    ///
    /// - `far.send().method(args)` returns the method's `Promise`, as for a `Ref<T>` in
    ///   another vat. Every `pub` method that is not `#[actor(local)]` goes by name; the
    ///   others, and the closure forms (`send_with`, …), break with
    ///   [`Error::NotByName`]. A near `call()` fails with [`Error::FarCall`].
    /// - Arguments and results cross as in [`RemoteObject::call`]: a near `Ref<U>` is
    ///   exported, a far one goes as itself, and a reference in the answer where the
    ///   method's type says `Ref<U>` arrives as a `Ref<U>` — near for an actor of this
    ///   process, far otherwise.
    /// - The type is the caller's claim, as a sturdyref carries no type: a method the
    ///   peer's object lacks, or arguments it does not take, break the promise with the
    ///   peer's error and do nothing there ([`RemoteObject::enliven_as`] checks it with
    ///   a gobs peer).
    /// - A typed send's answer can be sent to before it arrives: `.pipeline()` of a
    ///   `Promise<Ref<U>>` from a far send gives a `PromisedRef<U>` whose typed sends go
    ///   to the answer's position at once (`desc:answer`), so a chain of calls costs one
    ///   round trip (see [`gobs_runtime::far`]).
    /// - In a portrait it is saved as its sturdyref and is live again after a restore.
    ///
    /// ```
    /// # #![allow(clippy::unwrap_used)]
    /// use std::sync::Arc;
    /// use gobs_ocapn::captp::SessionConfig;
    /// use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly};
    /// use gobs_ocapn::node::Node;
    /// use gobs_ocapn::vat::{RemoteObject, export_actor};
    /// use gobs_runtime::{Ref, Vat, define_actor};
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
    /// let obj = export_actor(&server, counter).await.unwrap();
    /// let gobs_ocapn::captp::Term::Ref(gobs_ocapn::captp::CapRef::Local(obj)) = obj else { panic!() };
    /// server.with_core(move |c| c.bind_swiss(b"counter", obj)).await.unwrap();
    ///
    /// // ...and the client, knowing it is a `Counter`, sends to it as to a local one.
    /// let sturdyref = gobs_ocapn::locator::Sturdyref {
    ///     peer: server.locator().clone(),
    ///     swiss: b"counter".to_vec(),
    /// };
    /// let remote: Ref<Counter> = RemoteObject::enliven_as(&client, &sturdyref).await.unwrap();
    /// assert!(remote.is_far());
    /// assert_eq!(remote.send().add(2).await.unwrap(), 2);
    /// assert_eq!(remote.send().add(3).await.unwrap(), 5);
    /// # }
    /// ```
    pub fn typed<T: Actor>(self) -> Ref<T> {
        Ref::from_far(Arc::new(self))
    }

    /// The remote object behind a far `Ref<T>` (`None` for a near one, or a far
    /// reference restored from a portrait whose registry has no node attached yet).
    pub fn of<T: Actor>(r: &Ref<T>) -> Option<RemoteObject> {
        r.far_object()?
            .as_any()
            .downcast_ref::<RemoteObject>()
            .cloned()
    }

    /// Enlivens `sturdyref` through `node` as a `T` (see [`RemoteObject::enliven`]), and
    /// checks the claim where it can: a gobs node says which actor the sturdyref names
    /// (`gobs:actor-type`, one more round trip), and one that is not a `T` (by its
    /// registry name or an alias) is an error naming the type it is. An object that is
    /// not a gobs actor, or a peer that is not a gobs node, cannot say; the claim is
    /// then taken as it is (see [`RemoteObject::typed`]).
    pub async fn enliven_as<T: Actor>(node: &Node, sturdyref: &Sturdyref) -> Result<Ref<T>, Error> {
        let object = RemoteObject::enliven(node, sturdyref).await?;
        if let Some(CapRef::Remote(import)) = object.target() {
            let p = node
                .with_core(move |c| c.ask_actor_type(&import))
                .await
                .map_err(|e| Error::actor(T::type_name(), RemoteError(e.to_string())))?;
            let answer = node.settled(p).await;
            if let Ok(Ok(Term::Data(Value::String(name)))) = answer {
                let entry = T::entry();
                if !entry.names().any(|n| n == name) {
                    return Err(Error::actor(
                        T::type_name(),
                        RemoteError(wrong_type(sturdyref, &name, entry)),
                    ));
                }
            }
        }
        Ok(object.typed())
    }
}

/// The claim was wrong: say what it names, and take it as that.
fn wrong_type(sturdyref: &Sturdyref, named: &str, claimed: &gobs_runtime::ActorEntry) -> String {
    // The registry name is `module::path::Type`; the type's own name is its last part.
    let short = named.rsplit("::").next().unwrap_or(named);
    format!(
        "{} names a `{named}`, not a `{}` ({}): take it as a Ref<{short}> \
         (`RemoteObject::enliven_as::<{short}>`), or check the sturdyref",
        sturdyref.to_uri(),
        claimed.type_name,
        claimed.name,
    )
}
