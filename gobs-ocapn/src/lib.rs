//! OCapN for gobs: actors on other nodes, reached as `Ref<T>`s, persistent on both sides.
//!
//! # Networking
//!
//! ## A node in a few lines
//!
//! A node lives in the application's persistence registry: [`Node::open`] keeps its
//! identity, its port and the names it publishes there, so what it hands out stays valid
//! across restarts. [`Node::publish`] gives an actor a sturdyref — an `ocapn://` URI with
//! a random swiss number — and [`Node::enliven`] turns such a URI into a far
//! [`Ref<T>`](gobs_runtime::Ref), sent to with the same typed `send()` as an actor in
//! another vat:
//!
//! ```
//! use gobs_ocapn::prelude::*;
//! use gobs_runtime::{Ref, Registry, StoreKind, common_env, define_actor, persistence_env, spawn};
//!
//! #[define_actor]
//! pub struct Greeter {
//!     greeted: u64,
//! }
//!
//! #[define_actor]
//! impl Greeter {
//!     pub fn greet(&mut self, name: String) -> String {
//!         self.greeted += 1;
//!         format!("hello {name}, you are number {}", self.greeted)
//!     }
//! }
//!
//! /// The registry in `dir`: its env extends the node's (`gobs_ocapn::persist::env()`).
//! fn registry(dir: &std::path::Path) -> Result<Registry, gobs_runtime::Error> {
//!     let env = persistence_env!(
//!         "greeting",
//!         extends: [common_env(), gobs_ocapn::persist::env()?],
//!         actors: [Greeter]
//!     )?;
//!     Registry::open(dir, env, StoreKind::Log(Default::default()))
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     # let (server_dir, client_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
//!     # let (server_dir, client_dir) = (server_dir.path(), client_dir.path());
//!     // Blocking work first, outside async code: registries, vats, opening the nodes.
//!     let server = registry(server_dir)?;
//!     let server_node = Node::open(&server)?;
//!     let (_vat, greeter) = server.start_vat("greeter", || spawn(Greeter { greeted: 0 }))?;
//!     let client = registry(client_dir)?;
//!     let client_node = Node::open(&client)?;
//!
//!     tokio::runtime::Runtime::new()?.block_on(async {
//!         // The first run picks a free port and keeps it; later runs listen on it again.
//!         let server_node = server_node.listen_tls("127.0.0.1:0").await?;
//!         let uri = server_node.publish("greeter", &greeter).await?.to_uri();
//!         assert!(uri.starts_with("ocapn://") && uri.contains("/s/"));
//!
//!         // Elsewhere, with the URI: a typed far reference.
//!         let client_node = client_node.listen_tls("127.0.0.1:0").await?;
//!         let greeter: Ref<Greeter> = client_node.enliven(&uri).await?;
//!         let answer = greeter.send().greet("ada".into()).await?;
//!         assert_eq!(answer, "hello ada, you are number 1");
//!         Ok(())
//!     })
//! }
//! ```
//!
//! ## Publishing
//!
//! A published name keeps its swiss number and its actor in the registry: the URI is the
//! same on every run and reaches the actor as soon as the node listens again. Publishing
//! the same actor under its name again is a no-op; another actor under a taken name is
//! [`NodeError::NameTaken`]. [`Node::unpublish`] takes a URI back for good. The port is
//! kept too: an explicit one (`listen_tls("0.0.0.0:7000")`) wins, and a kept one that is
//! taken is [`NodeError::PortTaken`], naming it. Swiss numbers are 32 random bytes from
//! the OS: a sturdyref is a capability, so never make one from a guessable name.
//!
//! ## Saving far references
//!
//! A far `Ref<T>` from a gobs peer — enlivened from a URI, passed in as an argument,
//! answered by a call (`bank.send().open(owner)`), or handed on by a third node — knows
//! its sturdyref, so it is saved
//! in a portrait like a near one and is live again after either side restarts:
//! references restored from a registry reach the network through the node opened from
//! it. `examples/bank.rs` is a whole program of two processes (a bank, and an auditor
//! keeping accounts in its portrait), which a test kills with `kill -9` in turn.
//!
//! ## Stopping
//!
//! [`Node::stop`] stops a node for good, and so does the tokio runtime that runs it
//! shutting down: its connections close (each peer sees its session end and can ask
//! elsewhere), it stops listening, and whatever waits on it is answered
//! [`node::NodeStopped`]. Handles to a node (its objects, far references given to vats)
//! do not keep it running.
//!
//! ## Blocking or async
//!
//! Open registries, start vats and call `wait()` outside async code; inside it, `.await`
//! promises. The rule, and the error where blocking would deadlock, are in
//! [`gobs_runtime::Promise`]'s docs.
//!
//! ## Latency
//!
//! A vat on the worker pool is woken on a pool thread, so a far call to its actor costs
//! the server one thread switch. For the lowest latency, serve from a current-thread tokio
//! runtime and put the served vat on a [`gobs_runtime::LocalWorker`] that runtime polls:
//! its turns run between the node's tasks, and a call is read, handled and answered on one
//! thread (the `rpc` bench in gobs-bench shows both). Keep such a vat's turns short: while
//! one runs, the node's other connections wait.
//!
//! # The crate
//!
//! - [`prelude`]: the names above, for `use gobs_ocapn::prelude::*`.
//! - [`syrup`]: the codec every OCapN message is written in.
//! - [`locator`]: `ocapn://` peer and sturdyref locators.
//! - [`captp`]: the CapTP session as a pure state machine (bytes in, events and bytes out).
//! - [`node`]: a node's objects, promises and sessions ([`node::Core`], sans-I/O) and the
//!   tokio shell that runs them ([`node::Node`]).
//! - [`netlayer`]: `tcp-testing-only`, `tcp-tls` (Goblins-compatible) and unix sockets.
//! - [`fixtures`]: the objects the public conformance suite expects.
//! - [`vat`]: gobs actors exported to peers (their methods take and return references),
//!   remote objects reached from vats and kept in portraits.
//! - [`persist`]: a node's identity, port and published names in a persistence registry
//!   (or a file of its own), so sturdyrefs survive restarts.
//!
//! Answers of far objects are gobs [`Promise`](gobs_runtime::Promise)s: `.await` them in
//! async code, and call `wait()` only from threads that run no node (the rule:
//! [blocking or async](gobs_runtime::Promise#blocking-or-async-one-rule)).
//!
//! Syrup, locators, CapTP and the node core are the crate `gobs-ocapn-proto` (no I/O, no
//! tokio, no gobs-runtime), re-exported here at their old paths; this crate adds the I/O
//! and the vats. It is its own crate, not a module of `gobs-runtime`, so that local-only
//! users build no tokio, rustls or ed25519.

pub mod netlayer;
pub mod node;
pub mod persist;
pub mod prelude;
pub mod vat;

// The protocol core, at the paths it had before it became a crate of its own.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use gobs_ocapn_proto::fuzzing;
pub use gobs_ocapn_proto::{captp, fixtures, locator, syrup};

pub use node::{Node, NodeBuilder, NodeError};
