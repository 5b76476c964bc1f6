//! The boss's side of hob over OCapN: an OCapN node (tcp-tls) on which the boss hosts, for
//! each network machine, a one-time **registration** object and an **attach** object, and
//! through which it reaches the **bindings** each machine's hob-client registered.
//!
//! - [`Gateway::issue`] makes machine M's registration sturdyref (what the provider hands
//!   the machine at boot). It works once (`registration`): `register` through it
//!   marks it used, and a second use is refused with the reason. Revoking it
//!   ([`Gateway::revoke`]: the machine was destroyed or its creation failed) refuses it
//!   likewise. Spent sturdyrefs are remembered, so the refusal says which it was.
//! - `register` answers with the machine's attach sturdyref: the only other capability a
//!   machine ever holds. With it, after a lost session (a boss restart, a network cut), the
//!   hob-client attaches its bindings again, proving its identity and a credential that
//!   rotates on each attach ([`super::credential`]: a copy of the machine's state is
//!   refused and shown as a conflict, never served). Neither object reaches the boss's admin
//!   surface: they accept `register`/`attach`/`ping` and nothing else, and the control
//!   socket is not on the network at all.
//! - A watcher checks every [`WATCH_PERIOD`] which sessions are still open; a machine whose
//!   session ended is `unreachable` from then on ([`Gateway::reach`]), and `running` again
//!   once its hob-client attached.
//!
//! It listens only where machines reach it ([`super::listen`]): each provider adds its
//! place ([`Gateway::listen_at`]), all on the one port.
//!
//! The node's tcp-tls identity and its table of machines (`table_store`: a registration
//! and an attach actor per machine) are kept in the boss's registry, so its designator, and
//! every sturdyref handed out, survive restarts, and each registration, revocation and
//! credential rotation is a turn of those actors that commits with the rest of the boss
//! before it is answered (the registry's output gate). The port is chosen
//! at the first start (when the config says 0) and kept, since the sturdyrefs name it.
//!
//! The gateway carries calls ([`Gateway::ask`]) and knows none of them: each operation's
//! call and answer are in [`crate::providers::remote_machine`]. What a machine answers is
//! checked, and waited for at most a deadline, by [`super::answers`].
//!
//! A boss has one, started through its [`super::boss_gateway::BossGateway`] (the
//! capability it passes to what needs it); it runs outside the vats, on a tokio runtime of
//! its own thread, which ends when the boss stops it or the last handle is dropped. Its
//! blocking methods must not be called from a vat's turn.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use data_encoding::BASE64URL_NOPAD;
use gobs_ocapn::captp::{CapRef, ConnId, DuplicateSession, SessionConfig, Term};
use gobs_ocapn::locator::{PeerLocator, Sturdyref};
use gobs_ocapn::netlayer::{Netlayer, TcpTls, TlsIdentity};
use gobs_ocapn::node::{Cx, Node};
use gobs_runtime::Ref;

use super::credential::Conflict;
use super::listen::{cannot_listen, port_conflict};
use super::table::{RegState, refusal};
use super::table_store::{Bound, Registrations};
use super::wire;

pub use super::table::DESTROYED;

/// How long a stopping gateway waits for its node's tasks.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(2);

/// How often the gateway checks which machines' sessions are still open.
pub const WATCH_PERIOD: Duration = Duration::from_millis(500);

/// How a machine's session stands, as the boss shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Its hob-client has not registered yet.
    Waiting,
    /// Its session is up, since then.
    Up(SystemTime),
    /// Its session is down, since then.
    Down(SystemTime),
}

#[derive(Debug, Clone)]
pub(super) struct Live {
    pub(super) reach: Reach,
    pub(super) bindings: Option<(CapRef, ConnId)>,
}

pub(super) struct Inner {
    pub(super) node: Node,
    pub(super) runtime: tokio::runtime::Handle,
    locator: PeerLocator,
    /// Its netlayer, listening at each place machines reach it.
    tls: Arc<TcpTls>,
    /// The port it listens on, everywhere.
    port: u16,
    /// Held while a place is added, so two callers never bind the same one.
    adding_place: Mutex<()>,
    /// Its table, in the boss's registry.
    table: Ref<Registrations>,
    /// Told when a machine's session goes down or comes back, or an attach is refused.
    reach_listener: Option<ReachListener>,
    /// Its thread, and the sender that ends it (dropped with the last handle, or by
    /// [`Gateway::shutdown`]): the runtime then stops the node's listeners and sessions.
    thread: Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            std::thread::JoinHandle<()>,
        )>,
    >,
    pub(super) live: Mutex<BTreeMap<String, Live>>,
    /// Per machine, the attaches refused since the gateway started.
    pub(super) conflicts: Mutex<BTreeMap<String, Conflict>>,
    pub(super) changed: Condvar,
}

/// The boss's OCapN node for hob (see the module docs). Cloning gives another handle.
#[derive(Clone)]
pub struct Gateway {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gateway({})", self.inner.locator.to_uri())
    }
}

/// What a [`ReachListener`] is told about a registered machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReachChange {
    /// Its session went down.
    Down,
    /// Its session came back.
    Up,
    /// An attach was refused as a conflict (what the machine shows of it).
    Conflict(String),
}

/// Told when a registered machine's session goes down or comes back, or an attach to it
/// is refused: how the boss logs `unreachable`, `running` again, and conflicts.
pub type ReachListener = Arc<dyn Fn(&str, ReachChange) + Send + Sync>;

impl Gateway {
    /// Starts the gateway's node with tcp-tls identity `identity`, listening at `listen`
    /// (port 0: the port chosen at the first start, or a new one), serving the machines of
    /// `table`; `reach_listener` is told of machines' sessions. Blocking: off the vats.
    pub(super) fn open(
        identity: &TlsIdentity,
        table: Ref<Registrations>,
        listen: SocketAddr,
        reach_listener: Option<ReachListener>,
    ) -> Result<Gateway, String> {
        let (kept_port, bound) = table
            .send_with(|t| (t.port(), t.bound()))
            .wait()
            .map_err(|e| format!("cannot read the hob gateway's table: {e}"))?;
        let bound = bound.map_err(|e| format!("cannot read the hob gateway's table: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the hob gateway's runtime: {e}"))?;
        let handle = runtime.handle().clone();
        if kept_port != 0 && listen.port() != 0 && listen.port() != kept_port {
            return Err(port_conflict(listen.port(), kept_port));
        }
        let port = if kept_port != 0 {
            kept_port
        } else {
            listen.port()
        };
        let addr = SocketAddr::new(listen.ip(), port);
        let tls = identity.clone();
        let (node, locator, netlayer) = handle.block_on(async move {
            let netlayer = TcpTls::bind(addr, &tls, None)
                .await
                .map_err(|e| cannot_listen(addr, &e))?;
            let locator = netlayer.locator();
            let netlayer = Arc::new(netlayer);
            let node = Node::start(
                vec![netlayer.clone() as Arc<dyn Netlayer>],
                SessionConfig {
                    // A machine that died without closing its connection (a killed VM)
                    // comes back with the same identity: believe the new session rather
                    // than refuse it until the dead one times out.
                    duplicate_session: DuplicateSession::ReplaceOld,
                    ..SessionConfig::default()
                },
            )
            .map_err(|e| format!("cannot start the hob gateway's node: {e}"))?;
            Ok::<_, String>((node, locator, netlayer))
        })?;
        let chosen = locator
            .hint("port")
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(port);
        if kept_port != chosen {
            table
                .send_mut_with(move |t| t.set_port(chosen))
                .wait()
                .map_err(|e| format!("cannot keep the hob gateway's port: {e}"))?;
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hob-gateway".into())
            .spawn(move || {
                // Ends (an error) when the sender is dropped.
                let _ = runtime.block_on(stopped);
                runtime.shutdown_timeout(SHUTDOWN_LIMIT);
            })
            .map_err(|e| format!("cannot start the hob gateway's thread: {e}"))?;
        let inner = Arc::new(Inner {
            node,
            runtime: handle,
            locator,
            tls: netlayer,
            port: chosen,
            adding_place: Mutex::new(()),
            table,
            reach_listener,
            thread: Mutex::new(Some((stop, thread))),
            live: Mutex::new(BTreeMap::new()),
            conflicts: Mutex::new(BTreeMap::new()),
            changed: Condvar::new(),
        });
        let g = Gateway { inner };
        for b in &bound {
            g.bind(b);
            if registered(b) {
                g.set_live(&b.machine, Reach::Down(SystemTime::now()), None);
            } else if b.state == RegState::Open && b.attach.is_some() {
                // Issued before the restart, and still usable: as just after `issue`.
                g.set_live(&b.machine, Reach::Waiting, None);
            }
        }
        g.watch();
        tracing::info!(locator = %g.inner.locator.to_uri(), "hob gateway listening");
        Ok(g)
    }

    /// Tells the boss's reach listener, if it has one, of `change` to machine `machine`.
    pub(super) fn tell_reach(&self, machine: &str, change: ReachChange) {
        if let Some(listener) = &self.inner.reach_listener {
            listener(machine, change);
        }
    }

    /// Stops the node (its listeners and sessions) and waits until it has, at most
    /// [`SHUTDOWN_LIMIT`] for its tasks: the boss is shutting down, and what it listened on
    /// is free when this returns. Calls made through other handles fail from then on.
    /// Blocking: off the vats and off the gateway's own thread.
    pub(super) fn shutdown(&self) {
        let taken = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, thread)) = taken {
            drop(stop);
            if thread.join().is_err() {
                tracing::error!("the hob gateway's thread panicked while it stopped");
            }
        }
    }

    /// The port the gateway listens on.
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// Listens at `addr`'s address too, on the gateway's port (`addr`'s port must be that
    /// or 0); nothing to do where it listens already. Blocking: off the vats.
    pub fn listen_at(&self, addr: SocketAddr) -> Result<(), String> {
        let port = self.port();
        if addr.port() != 0 && addr.port() != port {
            return Err(port_conflict(addr.port(), port));
        }
        let at = SocketAddr::new(addr.ip(), port);
        // One caller at a time, so two never bind the same place.
        let _one = self
            .inner
            .adding_place
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if self.inner.tls.listening_at().contains(&at) {
            return Ok(());
        }
        let tls = self.inner.tls.clone();
        self.inner
            .runtime
            .block_on(async move { tls.listen_also(at).await })
            .map_err(|e| cannot_listen(at, &e))?;
        tracing::info!(%at, "hob gateway listening there too");
        Ok(())
    }

    /// Stops listening at `ip` (a bridge that was removed).
    pub fn stop_listening_at(&self, ip: IpAddr) {
        if self
            .inner
            .tls
            .stop_listening(SocketAddr::new(ip, self.port()))
        {
            tracing::info!(%ip, "hob gateway no longer listening there");
        }
    }

    /// Machine `machine`'s one-time registration sturdyref, for a hob-client to dial at
    /// `host` (the address the machine reaches the boss at). Revokes the machine's earlier
    /// one, if any. Saved before it is answered.
    pub fn issue(&self, machine: &str, host: &str) -> Result<Sturdyref, String> {
        let registration = BASE64URL_NOPAD.encode(&random_swiss()?);
        let attach = BASE64URL_NOPAD.encode(&random_swiss()?);
        let m = machine.to_string();
        let cannot = |e: &dyn std::fmt::Display| {
            format!("cannot save machine {machine:?}'s registration: {e}")
        };
        let (issued, revoked) = self
            .inner
            .table
            .send_mut_with(move |t| t.issue(&m, registration, attach))
            .wait()
            .map_err(|e| cannot(&e))?
            .map_err(|e| cannot(&e))?;
        self.revoked(machine, revoked);
        self.bind(&issued);
        self.set_live(machine, Reach::Waiting, None);
        Ok(self.sturdyref(&issued.registration_swiss, host))
    }

    /// Revokes machine `machine`'s registration and forgets its session: what the provider
    /// does when the machine is destroyed or its creation failed. Nothing to do for a
    /// machine the gateway does not know. Blocking: off the vats.
    pub fn revoke(&self, machine: &str) -> Result<(), String> {
        let m = machine.to_string();
        let cannot = |e: &dyn std::fmt::Display| {
            format!("cannot revoke machine {machine:?}'s registration: {e}")
        };
        let revoked = self
            .inner
            .table
            .send_mut_with(move |t| t.revoke(&m))
            .wait()
            .map_err(|e| cannot(&e))?
            .map_err(|e| cannot(&e))?;
        self.revoked(machine, revoked);
        Ok(())
    }

    /// The table revoked machine `machine`'s registration `spent` (if it had one): it is
    /// refused with the reason from now on, and the machine's session forgotten.
    fn revoked(&self, machine: &str, spent: Option<Bound>) {
        if let Some(spent) = spent {
            // The attach object stays bound but refuses a machine no longer registered.
            self.bind_refusal(&spent.registration_swiss, machine, spent.state);
        }
        self.forget_live(machine);
    }

    fn sturdyref(&self, swiss_b64: &str, host: &str) -> Sturdyref {
        let mut peer = PeerLocator::new("tcp-tls", self.inner.locator.designator.clone())
            .with_hint("host", host);
        if let Some(port) = self.inner.locator.hint("port") {
            peer = peer.with_hint("port", port);
        }
        Sturdyref {
            peer,
            swiss: BASE64URL_NOPAD
                .decode(swiss_b64.as_bytes())
                .unwrap_or_default(),
        }
    }

    pub(super) fn bind_refusal(&self, registration: &str, machine: &str, state: RegState) {
        let Ok(swiss) = BASE64URL_NOPAD.decode(registration.as_bytes()) else {
            return;
        };
        let machine = machine.to_string();
        self.inner.node.post(move |core| {
            let why = refusal(&machine, state);
            let obj = core.spawn(Box::new(move |_: &mut Cx<'_>, _: Vec<Term>| {
                Err::<Term, Term>(wire::text(&why))
            }));
            core.bind_swiss(&swiss, obj);
        });
    }
}

/// Whether `b` is a machine that registered and was not revoked since.
fn registered(b: &Bound) -> bool {
    b.state == RegState::Used && b.attach.is_some()
}

fn random_swiss() -> Result<Vec<u8>, String> {
    let mut s = vec![0u8; 32];
    getrandom::fill(&mut s).map_err(|e| format!("cannot draw a swiss number: {e}"))?;
    Ok(s)
}
