//! Typed far references: a far `Ref<T>` sends to a `#[define_actor]` actor on another
//! node with the same generated `send().method(..)` as a near one, by method name over
//! CapTP (two nodes on loopback TCP). Results, failures, promises, references both
//! ways (a `Ref<U>` in an answer arrives far), methods that cannot go by name, types
//! without serde, a wrong type claim, and a far `Ref<T>` kept in a persistent portrait
//! and restored live.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{publish, tcp_node};

use gobs_ocapn::vat::{RemoteObject, set_default_node};
use gobs_runtime::store::MemoryStore;
use gobs_runtime::{
    Error, PersistentVat, Promise, Ref, Vat, common_env, define_actor, persistence_env, spawn,
};

/// Deserializable but not serializable: a by-name argument no far send can encode.
#[derive(serde::Deserialize)]
pub struct OnlyIn(#[allow(dead_code)] u8);

/// Serializable but not deserializable: a by-name result no far send can decode.
#[derive(serde::Serialize, Debug, PartialEq)]
pub struct OnlyOut(u8);

#[define_actor]
pub struct Counter {
    n: u64,
    made: Option<Ref<Counter>>,
}

#[define_actor]
impl Counter {
    pub fn add(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }

    pub fn get(&self) -> u64 {
        self.n
    }

    pub fn reset(&mut self) {
        self.n = 0;
    }

    /// Fails after changing the count: the change is undone, the error reaches the caller.
    pub fn add_checked(&mut self, by: u64) -> Result<u64, String> {
        self.n += by;
        if self.n > 100 {
            return Err(format!("{} is over the limit of 100", self.n));
        }
        Ok(self.n)
    }

    /// Answers later, through a promise of its own.
    pub fn later(&self) -> Promise<u64> {
        Promise::fulfilled(self.n * 10)
    }

    /// Sends to a counter it is handed: a `Ref` of the caller's process arrives here as
    /// a far reference, typed.
    pub fn bump(&self, other: Ref<Counter>, by: u64) -> Promise<u64> {
        other.send().add(by)
    }

    /// Reads a counter handed back to its own node: it arrives as the `Ref` it is.
    pub fn read(&self, c: Ref<Counter>) -> Result<u64, Error> {
        c.call().get()
    }

    /// A counter of this node (the same one each time).
    pub fn make(&mut self) -> Ref<Counter> {
        self.made
            .get_or_insert_with(|| {
                spawn(Counter {
                    n: 1000,
                    made: None,
                })
            })
            .clone()
    }

    /// A counter of this node, or an error.
    pub fn make_checked(&mut self, ok: bool) -> Result<Ref<Counter>, String> {
        if !ok {
            return Err("no counter for you".into());
        }
        Ok(self.make())
    }

    /// Answers with a far reference it was handed.
    pub fn echo(&self, c: Ref<Counter>) -> Ref<Counter> {
        c
    }

    pub fn takes_only_in(&self, _x: OnlyIn) -> u64 {
        1
    }

    pub fn out(&self) -> OnlyOut {
        OnlyOut(9)
    }

    #[actor(local)]
    pub fn local_only(&self) -> u64 {
        self.n
    }

    fn private(&self) -> u64 {
        self.n
    }
}

#[define_actor]
pub struct Greeter {}

#[define_actor]
impl Greeter {
    pub fn greet(&self, who: String) -> String {
        format!("hello, {who}")
    }

    /// Trailing `Option`s: a `None` crosses as a left-out argument (CapTP has no nil).
    pub fn greet_in(&self, who: String, lang: Option<String>, times: Option<u8>) -> String {
        let word = match lang.as_deref() {
            Some("fr") => "bonjour",
            Some(other) => other,
            None => "hello",
        };
        vec![format!("{word}, {who}"); usize::from(times.unwrap_or(1))].join(" ")
    }
}

/// Pipelines to a remote counter from inside its turns.
#[define_actor]
pub struct Piper {
    factory: Ref<Counter>,
}

#[define_actor]
impl Piper {
    /// Asks for a counter and adds to it, without waiting for it.
    pub fn make_and_add(&self, by: u64) -> Promise<u64> {
        let made = pipelined(&self.factory, "make");
        made.send().add(by)
    }

    /// The same, then fails: nothing may leave.
    pub fn make_add_then_fail(&self, by: u64) -> Result<(), String> {
        let made = pipelined(&self.factory, "make");
        let _ = made.send().add(by);
        Err("failed on purpose".into())
    }
}

/// Keeps a typed far reference in its portrait.
#[define_actor]
pub struct Keeper {
    counter: Option<Ref<Counter>>,
}

#[define_actor]
impl Keeper {
    pub fn keep(&mut self, counter: Ref<Counter>) {
        self.counter = Some(counter);
    }

    pub fn add(&self, by: u64) -> Promise<u64> {
        match &self.counter {
            Some(c) => c.send().add(by),
            None => Promise::broken(Error::actor("keeper", "no counter kept")),
        }
    }

    /// Sends, then fails: the send must never leave.
    pub fn add_then_fail(&self, by: u64) -> Result<(), String> {
        if let Some(c) = &self.counter {
            let _ = c.send().add(by);
        }
        Err("failed on purpose".into())
    }
}

/// The far answer of by-name method `method` of a far counter, sent to before it exists.
fn pipelined(factory: &Ref<Counter>, method: &str) -> Ref<Counter> {
    let object = RemoteObject::of(factory).expect("a far counter");
    object.call_pipelined(method, &()).typed()
}

fn counter(n: u64) -> Counter {
    Counter { n, made: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_sends_reach_a_remote_actor_by_name() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let vat = Vat::spawn("server").unwrap();
    let local = vat.spawn_actor(counter(0)).unwrap();
    let s = publish(&server, local.clone(), b"counter").await;
    let remote: Ref<Counter> = RemoteObject::enliven_as(&client, &s).await.unwrap();

    assert_eq!(remote.send().add(2).await.unwrap(), 2);
    assert_eq!(remote.send().add(3).await.unwrap(), 5);
    assert_eq!(remote.send().get().await.unwrap(), 5);
    assert_eq!(remote.send().later().await.unwrap(), 50);
    remote.send().reset().await.unwrap();
    assert_eq!(
        local.send().get().await.unwrap(),
        0,
        "the server's actor changed"
    );

    // A failing method: the peer's error, and its change undone there.
    assert_eq!(remote.send().add_checked(40).await.unwrap(), 40);
    let err = remote.send().add_checked(70).await.unwrap_err().to_string();
    assert!(err.contains("110 is over the limit of 100"), "{err}");
    assert_eq!(remote.send().get().await.unwrap(), 40);

    // Clones share the reference; sends from several tasks all arrive.
    let sends: Vec<_> = (0..20).map(|_| remote.clone().send().add(1)).collect();
    for s in sends {
        s.await.unwrap();
    }
    assert_eq!(local.send().get().await.unwrap(), 60);
    assert!(format!("{remote:?}").contains("Counter at remote object ocapn://"));
    vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_cross_typed_sends_both_ways() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let server_vat = Vat::spawn("server").unwrap();
    let s = publish(&server, server_vat.spawn_actor(counter(0)).unwrap(), b"c").await;
    let remote: Ref<Counter> = RemoteObject::enliven_as(&client, &s).await.unwrap();

    // A counter of the client's process goes out as an export; the server's actor
    // takes it as a far `Ref<Counter>` and sends to it from inside its turn.
    let client_vat = Vat::spawn("client").unwrap();
    let mine = client_vat.spawn_actor(counter(7)).unwrap();
    assert_eq!(remote.send().bump(mine.clone(), 2).await.unwrap(), 9);
    let n: u64 = RemoteObject::of(&remote)
        .unwrap()
        .call("bump", &(mine.clone(), 3))
        .await
        .unwrap();
    assert_eq!(n, 12);
    assert_eq!(mine.send().get().await.unwrap(), 12);

    // Handed back, the client's own counter is the near `Ref` it is.
    let back = remote.send().echo(mine.clone()).await.unwrap();
    assert_eq!(back, mine);
    assert!(!back.is_far());
    assert_eq!(back.send().add(1).await.unwrap(), 13);

    // A counter of the server's process arrives as a far `Ref<Counter>`, typed.
    let made = remote.send().make().await.unwrap();
    assert!(made.is_far(), "{made:?}");
    assert_eq!(made.send().add(1).await.unwrap(), 1001);
    assert_eq!(made.send().get().await.unwrap(), 1001);
    // Inside an `Option` from a fallible method, too.
    let again = remote.send().make_checked(true).await.unwrap();
    assert_eq!(again.send().get().await.unwrap(), 1001);
    // A near call on it is an error naming the fix, not a panic.
    let err = made.call_with(|c| c.n).unwrap_err();
    assert!(matches!(err, Error::FarCall { .. }), "{err:?}");
    assert!(err.to_string().contains(".send()"), "{err}");
    // Passed back to the server, it is the server's own actor again (a near call there).
    assert_eq!(remote.send().read(made.clone()).await.unwrap(), 1001);
    // And passed back to us, a far reference stays far and still reaches it.
    let echoed = remote.send().echo(made.clone()).await.unwrap();
    assert_eq!(echoed.send().add(1).await.unwrap(), 1002);
    server_vat.shutdown();
    client_vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_go_by_name_breaks_with_a_reason() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let vat = Vat::spawn("server").unwrap();
    let local = vat.spawn_actor(counter(3)).unwrap();
    let s = publish(&server, local.clone(), b"c").await;
    let remote: Ref<Counter> = RemoteObject::enliven_as(&client, &s).await.unwrap();

    for err in [
        remote.send().local_only().await.unwrap_err(),
        remote.send().private().await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::NotByName { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("by method name only") && text.contains("remote object"),
            "{text}"
        );
    }

    // Types without serde: the send breaks naming the type, and nothing reaches the peer.
    let err = remote
        .send()
        .takes_only_in(OnlyIn(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("OnlyIn") && err.contains("Serialize"), "{err}");
    let err = remote.send().out().await.unwrap_err().to_string();
    assert!(
        err.contains("OnlyOut") && err.contains("Deserialize"),
        "{err}"
    );
    // The local forms of the same methods still work.
    assert_eq!(local.send().out().await.unwrap(), OnlyOut(9));
    assert_eq!(local.send().takes_only_in(OnlyIn(1)).await.unwrap(), 1);
    assert_eq!(remote.send().get().await.unwrap(), 3);

    // Enlivened as another type, a gobs peer's actor is refused, naming both types.
    let err = RemoteObject::enliven_as::<Greeter>(&client, &s)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("names a `typed::Counter`, not a `Greeter` (typed::Greeter)")
            && err.contains("take it as a Ref<Counter>"),
        "{err}"
    );
    // An object that is not a gobs actor cannot say what it is: taken as claimed.
    server
        .with_core(gobs_ocapn::fixtures::install)
        .await
        .unwrap();
    let echo = gobs_ocapn::locator::Sturdyref {
        peer: server.locator().clone(),
        swiss: gobs_ocapn::fixtures::ECHO_GC.to_vec(),
    };
    let not_an_actor = RemoteObject::enliven_as::<Greeter>(&client, &echo)
        .await
        .unwrap();
    let err = not_an_actor
        .send()
        .greet("x".into())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not decode"), "{err}");

    // A wrong type claim made without enlivening: the peer's object has no such method,
    // and says so.
    let greeter: Ref<Greeter> = RemoteObject::of(&remote).unwrap().typed();
    let err = greeter
        .send()
        .greet("x".into())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("greet"), "{err}");
    assert_eq!(local.send().get().await.unwrap(), 3);
    vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_in_a_portrait_is_restored_live_and_a_failed_turn_sends_nothing() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    set_default_node(&client);
    let server_vat = Vat::spawn("server").unwrap();
    let local = server_vat.spawn_actor(counter(0)).unwrap();
    let s = publish(&server, local.clone(), b"kept").await;

    let env = persistence_env!("typed", extends: [common_env()], actors: [Keeper]).unwrap();
    let store = MemoryStore::new();
    let open = move |fresh: bool| {
        let (env, store) = (env.clone(), store.clone());
        move || {
            PersistentVat::builder("keeper")
                .env(env)
                .store(store)
                .spawn(move || {
                    assert!(fresh, "the root is restored, not rebuilt");
                    spawn(Keeper { counter: None })
                })
                .unwrap()
        }
    };
    let (vat, keeper) = tokio::task::spawn_blocking(open(true)).await.unwrap();
    keeper
        .send()
        .keep(RemoteObject::from_sturdyref(s.clone()).typed())
        .await
        .unwrap();
    assert_eq!(keeper.send().add(4).await.unwrap(), 4);
    let err = keeper
        .send()
        .add_then_fail(1000)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed on purpose"), "{err}");
    vat.shutdown();

    let (vat, keeper) = tokio::task::spawn_blocking(open(false)).await.unwrap();
    assert_eq!(
        keeper.send().add(1).await.unwrap(),
        5,
        "the failed turn's send left"
    );
    assert_eq!(local.send().get().await.unwrap(), 5);
    vat.shutdown();
    server_vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_pipelining_sends_to_an_answer_before_it_exists() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let vat = Vat::spawn("server").unwrap();
    let factory_ref = vat.spawn_actor(counter(0)).unwrap();
    let s = publish(&server, factory_ref.clone(), b"factory").await;
    let factory: Ref<Counter> = RemoteObject::enliven_as(&client, &s).await.unwrap();

    // Outside a turn: the answer is sent to at once, in order.
    let made = pipelined(&factory, "make");
    let first = made.send().add(1);
    let second = made.send().add(2);
    assert_eq!(first.await.unwrap(), 1001);
    assert_eq!(second.await.unwrap(), 1003);
    // A failing call breaks what was sent to its answer, with its error.
    let none: Ref<Counter> = RemoteObject::of(&factory)
        .unwrap()
        .call_pipelined("make_checked", &(false,))
        .typed();
    let err = none.send().add(1).await.unwrap_err().to_string();
    assert!(err.contains("no counter for you"), "{err}");
    let some: Ref<Counter> = RemoteObject::of(&factory)
        .unwrap()
        .call_pipelined("make_checked", &(true,))
        .typed();
    assert_eq!(some.send().get().await.unwrap(), 1003);

    // From inside a turn: it leaves at commit; a failed turn sends nothing.
    let here = Vat::spawn("client").unwrap();
    let piper = here.spawn_actor(Piper { factory }).unwrap();
    assert_eq!(piper.send().make_and_add(10).await.unwrap(), 1013);
    let err = piper
        .send()
        .make_add_then_fail(500)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed on purpose"), "{err}");
    assert_eq!(piper.send().make_and_add(0).await.unwrap(), 1013);
    here.shutdown();
    vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_none_arguments_cross_as_left_out_ones() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let vat = Vat::spawn("server").unwrap();
    let local = vat.spawn_actor(Greeter {}).unwrap();
    let s = publish(&server, local, b"greeter").await;
    let remote: Ref<Greeter> = RemoteObject::enliven_as(&client, &s).await.unwrap();

    let greet = |lang: Option<&str>, times| {
        remote
            .send()
            .greet_in("ann".into(), lang.map(str::to_owned), times)
    };
    assert_eq!(greet(None, None).await.unwrap(), "hello, ann");
    assert_eq!(greet(Some("fr"), None).await.unwrap(), "bonjour, ann");
    assert_eq!(greet(Some("hi"), Some(2)).await.unwrap(), "hi, ann hi, ann");
    // A `None` before a `Some` is not trailing: it crosses as an empty list, which no
    // `Option<String>` reads, and the error says which argument.
    let err = greet(None, Some(2)).await.unwrap_err().to_string();
    assert!(err.contains("greet_in"), "{err}");
    vat.shutdown();
}
