//! Messages to a [`RemoteObject`]: by CapTP terms, by method name with carried
//! arguments, pipelined to an answer, and the far `Ref<T>` sends that go through them
//! ([`FarObject`]). Each leaves when its turn commits and is tried again as [`retry`]
//! says.

use std::sync::Arc;

use gobs_runtime::carry::{Carried, CarriedReply, encode_carrying, on_commit};
use gobs_runtime::far::{FarObject, decode_answer};
use gobs_runtime::{Error, Promise};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::export::export;
use super::remote::{RemoteObject, broken};
use super::sturdyref_asks::with_sturdyrefs;
use super::terms::{answer_in, args_out};
use super::{far_error, peer_error, retry};
use crate::captp::Term;
use crate::locator::Sturdyref;
use crate::node::{Core, Node, NodeStopped};

impl RemoteObject {
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
        let node = self.route().map_err(|_| NodeStopped)?;
        let me = self.clone();
        let p = node
            .with_core(move |core| {
                let target = me.target_in(core).ok()?;
                Some(core.send(target, args))
            })
            .await?
            .ok_or(NodeStopped)?;
        Ok(RemoteObject::answer(node, p))
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
        let node = match self.route() {
            Ok(n) => n,
            Err(e) => return Promise::broken(e),
        };
        let (promise, resolver) = Promise::pair();
        let (me, me2) = (self.clone(), self.clone());
        on_commit(move || {
            let on = node.clone();
            on.post(move |core| {
                let done = Box::new(move |core: &mut Core, outcome| match outcome {
                    Ok(v) => resolver.fulfill(v),
                    Err(e) => resolver
                        .break_with(far_error::from_reason(&far_error::name_in(core, &me), &e)),
                });
                retry::send(core, &node, &me2, all, done)
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
    /// use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    /// use gobs_ocapn::captp::{CapRef, SessionConfig, Term};
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
    /// let Term::Ref(CapRef::Local(obj)) = export_actor(&boss, registry).await.unwrap() else { panic!() };
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
        let me = self.clone();
        self.deliver(method, bytes, refs, move |answer| {
            resolver.settle(answer.and_then(|(bytes, refs)| {
                decode_answer::<R>(&bytes, refs).map_err(|e| {
                    broken(format!(
                        "the answer of {} does not decode: {e}",
                        me.describe()
                    ))
                })
            }))
        });
        promise
    }

    /// [`RemoteObject::call`] with the arguments already encoded carrying (a MessagePack
    /// array and its references); the answer comes back the same way, as one value.
    pub fn call_carrying(
        &self,
        method: &str,
        bytes: Vec<u8>,
        refs: Vec<Carried>,
    ) -> Promise<CarriedReply> {
        let (promise, resolver) = Promise::pair();
        self.deliver(method, bytes, refs, move |answer| resolver.settle(answer));
        promise
    }

    /// Sends `method` with carried arguments once the turn commits, and tells `done` the
    /// answer (on the node's task).
    fn deliver(
        &self,
        method: &str,
        bytes: Vec<u8>,
        refs: Vec<Carried>,
        done: impl FnOnce(Result<CarriedReply, Error>) + Send + 'static,
    ) {
        let node = match self.route() {
            Ok(n) => n,
            Err(e) => return done(Err(e)),
        };
        let (me, method) = (self.clone(), method.to_owned());
        on_commit(move || {
            let node2 = node.clone();
            node.post(move |core| {
                let all = match message_in(&node2, core, &method, &bytes, refs) {
                    Ok(all) => all,
                    Err(e) => return done(Err(broken(e))),
                };
                let told = answer_to(node2.clone(), me.clone(), done);
                retry::send(core, &node2, &me, all, told)
            })
        });
    }

    /// Calls `method` by name like [`RemoteObject::call`], and gives at once a far
    /// reference to its answer: messages sent to it go before the answer exists
    /// (`desc:answer` on the wire, promise pipelining), and break with the answer's error
    /// if the call fails. Made inside a turn, the call leaves when the turn commits; if
    /// the turn fails, nothing is sent and sends to the answer break saying so.
    ///
    /// For a typed answer, take it as a far `Ref<U>` with
    /// [`typed`](RemoteObject::typed): `factory.call_pipelined("make", &()).typed::<Car>()`.
    pub fn call_pipelined<A: Serialize + ?Sized>(&self, method: &str, args: &A) -> RemoteObject {
        let encoded = encode_carrying(args)
            .map_err(|e| format!("the arguments of `{method}` cannot be encoded: {e}"));
        self.pipelined(method, encoded, None)
    }

    /// Sends `method` with carried arguments once the turn commits, as one message, and
    /// gives at once a far reference to its answer's position; `done`, if given, is told
    /// the answer (on the node's task). A message that certainly did not arrive is tried
    /// again as for [`call`](RemoteObject::call), for `done` only: what was pipelined to
    /// the first try's answer breaks with its error.
    fn pipelined(
        &self,
        method: &str,
        encoded: Result<(Vec<u8>, Vec<Carried>), String>,
        done: Option<Told>,
    ) -> RemoteObject {
        let answer = RemoteObject::unsent_answer(self.node());
        let unsent = |why: String, done: Option<Told>| {
            if let Some(done) = done {
                done(Err(broken(&why)));
            }
            answer.set_unsent(why);
        };
        let (bytes, refs) = match encoded {
            Ok(encoded) => encoded,
            Err(e) => {
                unsent(e, done);
                return answer;
            }
        };
        let node = match self.route() {
            Ok(n) => n,
            Err(e) => {
                unsent(e.to_string(), done);
                return answer;
            }
        };
        answer.set_not_left(method, self);
        let (me, method, out) = (self.clone(), method.to_owned(), answer.clone());
        on_commit(move || {
            let node2 = node.clone();
            node.post(move |core| {
                let told = done.map(|done| answer_to(node2.clone(), me.clone(), done));
                let why = |e: String| out.set_unsent(e);
                let all = match message_in(&node2, core, &method, &bytes, refs) {
                    Ok(all) => all,
                    Err(e) => {
                        let e = format!("`{method}` could not be sent: {e}");
                        if let Some(told) = told {
                            told(core, Err(Term::str(&e)));
                        }
                        return why(e);
                    }
                };
                let target = match me.target_in(core) {
                    Ok(t) => t,
                    Err(e) => {
                        why(format!(
                            "`{method}` could not be sent: {}",
                            peer_error::text(&e)
                        ));
                        if let Some(told) = told {
                            told(core, Err(e));
                        }
                        return;
                    }
                };
                let again = told.as_ref().and_then(|_| retry::again(&me, 1, &all));
                let p = core.send(target, all);
                out.set_answer(node2.clone(), p);
                if let Some(told) = told {
                    core.when_settled_with_core(
                        p,
                        Box::new(move |core, outcome| {
                            retry::after(core, node2, me, again, 1, outcome, told)
                        }),
                    );
                }
            })
        });
        answer
    }

    /// Enlivens `sturdyref` through `node`: the live reference (which knows its
    /// sturdyref, so it can be saved), or the error that says why not (no such object,
    /// the peer cannot be reached).
    pub async fn enliven(node: &Node, sturdyref: &Sturdyref) -> Result<RemoteObject, Error> {
        let s = sturdyref.clone();
        let p = node
            .with_core(move |c| c.enliven(&s))
            .await
            .map_err(broken)?;
        match node.settled(p).await.map_err(broken)? {
            Ok(Term::Ref(r)) => Ok(RemoteObject::enlivened(node.clone(), r, sturdyref.clone())),
            Ok(other) => Err(broken(format!(
                "{} answered with {other:?}, not a reference",
                sturdyref.to_uri()
            ))),
            Err(e) => Err(far_error::from_reason(&sturdyref.to_uri(), &e)),
        }
    }
}

/// Who is told a far answer, as carried bytes and references.
type Told = Box<dyn FnOnce(Result<CarriedReply, Error>) + Send>;

/// On the node's task: the message `method` with carried arguments, as CapTP terms.
fn message_in(
    node: &Node,
    core: &mut Core,
    method: &str,
    bytes: &[u8],
    refs: Vec<Carried>,
) -> Result<Vec<Term>, String> {
    let args = args_out(node, core, bytes, refs, export).map_err(|e| e.to_string())?;
    let mut all = Vec::with_capacity(1 + args.len());
    all.push(Term::sym(method));
    all.extend(args);
    Ok(all)
}

/// Tells `done` the outcome of a message to `far`: its answer carried, the references in
/// it having learnt their sturdyrefs from their exporters first (so that they can be
/// saved), or the error, named.
fn answer_to(
    on: Node,
    far: RemoteObject,
    done: impl FnOnce(Result<CarriedReply, Error>) + Send + 'static,
) -> retry::Done {
    Box::new(move |core: &mut Core, outcome| match outcome {
        Ok(v) => match answer_in(core, &on, &v) {
            Ok((bytes, refs)) => {
                with_sturdyrefs(core, refs, Box::new(move |_, refs| done(Ok((bytes, refs)))))
            }
            Err(e) => done(Err(broken(format!(
                "the answer {v:?} cannot be taken: {e}"
            )))),
        },
        Err(e) => done(Err(far_error::from_reason(
            &far_error::name_in(core, &far),
            &e,
        ))),
    })
}

/// What a far `Ref<T>` ([`RemoteObject::typed`]) sends its by-name methods through (see
/// [`gobs_runtime::far`]).
impl FarObject for RemoteObject {
    fn send_by_name(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> Promise<CarriedReply> {
        self.call_carrying(method, args, refs)
    }

    /// One `op:deliver`, whose answer position both settles the promise and takes the
    /// messages pipelined to it.
    fn send_by_name_pipelined(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> (Promise<CarriedReply>, Option<Arc<dyn FarObject>>) {
        let (promise, resolver) = Promise::pair();
        let answer = self.pipelined(
            method,
            Ok((args, refs)),
            Some(Box::new(move |answer| resolver.settle(answer))),
        );
        (promise, Some(Arc::new(answer)))
    }

    fn describe(&self) -> String {
        RemoteObject::describe(self)
    }

    fn sturdyref(&self) -> Result<String, String> {
        self.saved_form()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
