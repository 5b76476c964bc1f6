//! Vats meet the network: gobs actors exported to CapTP peers, and remote objects reached
//! from vat code.
//!
//! - [`export_actor`] hosts a `#[define_actor]` actor on a node: a peer calls it by
//!   method name (the first argument, a symbol), the other arguments go to the method
//!   (Syrup → MessagePack, the form by-name calls take), and the result comes back the
//!   same way. The call runs as a turn of the actor's vat, so a failing method breaks the
//!   peer's promise and leaves no trace.
//! - [`RemoteObject`] is a far reference to an object on a peer: [`RemoteObject::send`]
//!   returns a gobs [`Promise`], like any far send; there is no near call.
//!
//! MessagePack has no symbols, records or sets: symbols arrive as strings, records and
//! sets are refused, and a `nil` result (a method returning `()`) becomes `[]`.
//! - [`SturdyRemote`] is a remote reference a portrait can hold: saved as its sturdyref,
//!   live again after a restore.

use gobs_runtime::{Actor, Promise, Ref as ActorRef};

use crate::captp::{Ref, Term};
use crate::node::{Cx, LocalObject, Node};
use crate::syrup::Value;

/// Why a value could not cross between Syrup and MessagePack.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct BridgeError(String);

/// Syrup data → a MessagePack value.
pub fn to_msgpack(v: &Value) -> Result<rmpv::Value, BridgeError> {
    Ok(match v {
        Value::Bool(b) => rmpv::Value::Boolean(*b),
        Value::Int(i) => {
            if let Ok(i) = i64::try_from(*i) {
                rmpv::Value::from(i)
            } else if let Ok(u) = u64::try_from(*i) {
                rmpv::Value::from(u)
            } else {
                return Err(BridgeError(format!("integer {i} does not fit MessagePack")));
            }
        }
        Value::F32(x) => rmpv::Value::F32(*x),
        Value::F64(x) => rmpv::Value::F64(*x),
        Value::Bytes(b) => rmpv::Value::Binary(b.clone()),
        Value::String(s) | Value::Symbol(s) => rmpv::Value::from(s.as_str()),
        Value::List(l) => rmpv::Value::Array(l.iter().map(to_msgpack).collect::<Result<_, _>>()?),
        Value::Dict(d) => rmpv::Value::Map(
            d.iter()
                .map(|(k, v)| Ok((to_msgpack(k)?, to_msgpack(v)?)))
                .collect::<Result<_, BridgeError>>()?,
        ),
        Value::Set(_) | Value::Record(..) => {
            return Err(BridgeError(format!(
                "a {} cannot be passed to a gobs actor method (MessagePack has none)",
                v.kind()
            )));
        }
    })
}

/// A MessagePack value → Syrup data.
pub fn from_msgpack(v: &rmpv::Value) -> Result<Value, BridgeError> {
    Ok(match v {
        rmpv::Value::Nil => Value::List(vec![]),
        rmpv::Value::Boolean(b) => Value::Bool(*b),
        rmpv::Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(i), _) => Value::from(i),
            (_, Some(u)) => Value::from(u),
            _ => return Err(BridgeError("MessagePack integer out of range".into())),
        },
        rmpv::Value::F32(x) => Value::F32(*x),
        rmpv::Value::F64(x) => Value::F64(*x),
        rmpv::Value::String(s) => match s.as_str() {
            Some(s) => Value::from(s),
            None => return Err(BridgeError("MessagePack string is not UTF-8".into())),
        },
        rmpv::Value::Binary(b) => Value::Bytes(b.clone()),
        rmpv::Value::Array(a) => Value::List(a.iter().map(from_msgpack).collect::<Result<_, _>>()?),
        rmpv::Value::Map(m) => Value::Dict(
            m.iter()
                .map(|(k, v)| Ok((from_msgpack(k)?, from_msgpack(v)?)))
                .collect::<Result<_, BridgeError>>()?,
        ),
        rmpv::Value::Ext(..) => {
            return Err(BridgeError(
                "MessagePack extension types have no Syrup form".into(),
            ));
        }
    })
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);

struct ActorObject<T: Actor> {
    actor: ActorRef<T>,
    node: Node,
}

impl<T: Actor> LocalObject for ActorObject<T> {
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let mut it = args.into_iter();
        let method = it
            .next()
            .and_then(|t| t.as_symbol().map(str::to_owned))
            .ok_or_else(|| {
                Term::str("a gobs actor is called with a method name (a symbol) first")
            })?;
        let info = T::METHODS
            .iter()
            .find(|m| m.name == method)
            .ok_or_else(|| Term::str(&format!("{} has no method {method}", T::type_name())))?;
        let mut margs = Vec::new();
        for a in it {
            let v = a.to_value().ok_or_else(|| {
                Term::str("references cannot be passed to a gobs actor method yet")
            })?;
            margs.push(to_msgpack(&v).map_err(|e| Term::str(&e.0))?);
        }
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &rmpv::Value::Array(margs))
            .map_err(|e| Term::str(&format!("cannot encode the arguments: {e}")))?;
        // A by-name call runs as a turn of the actor's vat (rolled back if it fails); a
        // message answering with a promise is answered when that promise settles.
        let promise: Promise<Vec<u8>> = self.actor.invoke(info.name, bytes);
        let (p, _resolver) = cx.promise();
        let node = self.node.clone();
        tokio::spawn(async move {
            let outcome = match promise.await {
                Ok(result) => rmpv::decode::read_value(&mut result.as_slice())
                    .map_err(|e| BridgeError(format!("the result is not MessagePack: {e}")))
                    .and_then(|v| from_msgpack(&v))
                    .map(Term::from_value)
                    .map_err(|e| Term::str(&e.0)),
                Err(e) => Err(Term::str(&e.to_string())),
            };
            node.post(move |core| core.settle_promise(p, outcome));
        });
        Ok(Term::local(p))
    }
}

/// Hosts `actor` on `node` (the actor stays in its vat; the node forwards calls by method
/// name) and returns the reference to hand out, e.g. with a sturdyref.
pub async fn export_actor<T: Actor>(
    node: &Node,
    actor: ActorRef<T>,
) -> Result<Term, crate::node::NodeStopped> {
    let obj = ActorObject {
        actor,
        node: node.clone(),
    };
    node.with_core(move |core| Term::local(core.spawn(Box::new(obj))))
        .await
}

/// A far reference to an object on a peer (or to the promised answer of a message to one).
#[derive(Clone, Debug)]
pub struct RemoteObject {
    node: Node,
    target: Ref,
    _answer: Option<std::sync::Arc<AnswerGuard>>,
}

/// Releases the node's promise behind a pipelined [`RemoteObject`] when the last clone
/// goes.
#[derive(Debug)]
struct AnswerGuard {
    node: Node,
    promise: crate::captp::LocalRef,
}

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        let p = self.promise;
        self.node.post(move |core| core.release(p));
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

    /// Sends `method` with `args` and returns, at once, a far reference to the answer:
    /// messages sent to it travel before the answer exists (`desc:answer` on the wire,
    /// promise pipelining), and break if the answer does.
    pub async fn pipeline(
        &self,
        method: &str,
        args: Vec<Term>,
    ) -> Result<RemoteObject, crate::node::NodeStopped> {
        let mut all = vec![Term::sym(method)];
        all.extend(args);
        self.pipeline_args(all).await
    }

    /// [`RemoteObject::pipeline`] with the arguments as they are (no method symbol first),
    /// for objects that take no method name, as many Goblins objects do.
    pub async fn pipeline_args(
        &self,
        args: Vec<Term>,
    ) -> Result<RemoteObject, crate::node::NodeStopped> {
        let target = self.target.clone();
        let p = self
            .node
            .with_core(move |core| core.send(target, args))
            .await?;
        Ok(RemoteObject {
            node: self.node.clone(),
            target: Ref::Local(p),
            _answer: Some(std::sync::Arc::new(AnswerGuard {
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
        let target = self.target.clone();
        self.node.post(move |core| {
            let p = core.send(target, all);
            core.when_settled(
                p,
                Box::new(move |outcome| match outcome {
                    Ok(v) => resolver.fulfill(v),
                    Err(e) => resolver.break_with(gobs_runtime::Error::actor(
                        "remote object",
                        Failed(match e.to_value() {
                            Some(Value::String(s)) => s,
                            Some(other) => format!("{other:?}"),
                            None => "broken with a reference".into(),
                        }),
                    )),
                }),
            );
        });
        promise
    }
}

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
                Failed(format!(
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
                            Failed(match e.to_value() {
                                Some(Value::String(s)) => s,
                                Some(other) => format!("{other:?}"),
                                None => "broken with a reference".into(),
                            }),
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
