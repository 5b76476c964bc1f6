//! A real Goblins 0.18 in its own process (`peer.scm`) and gobs nodes on default settings,
//! both on tcp-tls at 127.0.0.1, for the interop tests.
//!
//! Every wait is on an event (a line from the Goblins process, a promise of a gobs node)
//! with a generous deadline; nothing sleeps to synchronise.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test file uses part of it

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use gobs_ocapn::captp::{CapRef, LocalRef, SessionConfig, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::netlayer::{Netlayer, TcpTls, TlsIdentity};
use gobs_ocapn::node::{Core, Cx, LocalObject, Node};
use gobs_ocapn::syrup::{self, Value};

/// How long any one event may take: generous, for a loaded CI machine.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// What the Goblins process answered to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The promise was fulfilled with this value (decoded from Goblins' own Syrup).
    Ok(Value),
    /// The bytes Goblins' encoder wrote for the value, undecoded.
    OkBytes(Vec<u8>),
    /// Fulfilled with a reference (not printable as Syrup).
    OkRef,
    /// The promise was broken with this value.
    Err(Value),
    /// Broken with something that is not Syrup (Goblins' printed form).
    Fail(String),
}

/// A Goblins peer process. Killed and reaped on drop.
pub struct Goblins {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Lines read while waiting for another command's answer.
    stash: Vec<String>,
    /// Sturdyref URIs of the objects it offers, by name.
    pub uris: HashMap<String, String>,
    next_id: u64,
    state: PathBuf,
    /// How long to wait for the next line: [`DEADLINE`], or more while a command does
    /// much work (see [`Goblins::outcome_of_many`]).
    patience: Duration,
    /// The state directory when it is this peer's own ([`Goblins::fresh`]): a field, so it
    /// is removed after `drop` has ended the process.
    owned: Option<tempfile::TempDir>,
}

/// A Scheme file beside this harness (found from gobs-ocapn's tests and gobs-bench's
/// benches alike: both crates sit in the workspace root).
fn scheme(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gobs-ocapn/tests/goblins")
        .join(name)
}

impl Goblins {
    /// Starts `peer.scm` on a fresh state directory of its own, removed when it is
    /// dropped.
    pub fn fresh() -> Goblins {
        let dir = state_dir();
        let mut goblins = Goblins::start(dir.path());
        goblins.owned = Some(dir);
        goblins
    }

    /// Starts `peer.scm` with its identity and port in `state` (kept across restarts) and
    /// waits until it offers its objects.
    pub fn start(state: &Path) -> Goblins {
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(r#". /opt/goblins/env.sh && export GUILE_AUTO_COMPILE=0 && exec guile "$0" "$1""#)
            .arg(scheme("peer.scm"))
            .arg(state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start guile (is Goblins installed in /opt/goblins?)");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut g = Goblins {
            child,
            stdin,
            lines,
            stash: Vec::new(),
            uris: HashMap::new(),
            next_id: 0,
            state: state.to_owned(),
            patience: DEADLINE,
            owned: None,
        };
        loop {
            let line = g.next_line("the Goblins peer to start");
            match line.split(' ').collect::<Vec<_>>().as_slice() {
                ["ready"] => break,
                ["ready", name, uri] => {
                    g.uris.insert((*name).to_owned(), (*uri).to_owned());
                }
                _ => panic!("unexpected line from the Goblins peer while starting: {line}"),
            }
        }
        g
    }

    /// Stops this process and starts another on the same state (same identity and port).
    pub fn restart(mut self) -> Goblins {
        let (state, owned) = (self.state.clone(), self.owned.take());
        drop(self);
        let mut goblins = Goblins::start(&state);
        goblins.owned = owned;
        goblins
    }

    /// The sturdyref of one of its objects.
    pub fn uri(&self, name: &str) -> &str {
        &self.uris[name]
    }

    pub fn sturdyref(&self, name: &str) -> Sturdyref {
        Sturdyref::parse(self.uri(name)).expect("Goblins printed a sturdyref URI")
    }

    fn next_line(&mut self, waiting_for: &str) -> String {
        match self.lines.recv_timeout(self.patience) {
            Ok(l) => l,
            Err(e) => panic!("no line from the Goblins peer while waiting for {waiting_for}: {e}"),
        }
    }

    /// Sends a command (its id is added) and returns the id.
    pub fn send(&mut self, command: &str, rest: &[&str]) -> String {
        self.next_id += 1;
        let id = format!("c{}", self.next_id);
        let mut line = format!("{command} {id}");
        for r in rest {
            line.push(' ');
            line.push_str(r);
        }
        writeln!(self.stdin, "{line}").expect("the Goblins peer's stdin is open");
        self.stdin.flush().expect("flush to the Goblins peer");
        id
    }

    /// Waits for the line `ID WORD ...` and returns its words after the id.
    pub fn expect(&mut self, id: &str) -> Vec<String> {
        let prefix = format!("{id} ");
        if let Some(i) = self.stash.iter().position(|l| l.starts_with(&prefix)) {
            let l = self.stash.remove(i);
            return words(&l[prefix.len()..]);
        }
        loop {
            let line = self.next_line(&format!("the answer to command {id}"));
            if let Some(rest) = line.strip_prefix(&prefix) {
                return words(rest);
            }
            assert!(
                !line.starts_with("? "),
                "the Goblins peer did not understand a command: {line}"
            );
            self.stash.push(line);
        }
    }

    /// Waits for the outcome of command `id`, which makes `calls` calls one after another:
    /// the deadline grows with the work (it only bounds a hang, on however busy a machine).
    pub fn outcome_of_many(&mut self, id: &str, calls: u32) -> Reply {
        self.patience = DEADLINE + Duration::from_millis(50) * calls;
        let reply = self.outcome(id);
        self.patience = DEADLINE;
        reply
    }

    /// Waits for the outcome of command `id`.
    pub fn outcome(&mut self, id: &str) -> Reply {
        let w = self.expect(id);
        match w.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["ok", hex] => {
                let bytes = unhex(hex);
                match syrup::decode(&bytes) {
                    Ok(v) => Reply::Ok(v),
                    Err(_) => Reply::OkBytes(bytes),
                }
            }
            ["ok-ref", ..] => Reply::OkRef,
            ["err", hex] => Reply::Err(syrup::decode(&unhex(hex)).expect("Goblins wrote Syrup")),
            ["fail", ..] => Reply::Fail(w[1..].join(" ")),
            _ => panic!("unexpected answer to {id}: {w:?}"),
        }
    }

    /// `call`: Goblins calls `method` on the object at `uri` with `args`; waits for it.
    pub fn call(&mut self, uri: &str, method: &str, args: &[Value]) -> Reply {
        let id = self.send("call", &[uri, method, &args_hex(args)]);
        self.outcome(&id)
    }

    /// `call`, answering the raw Syrup Goblins' own encoder wrote for the answer.
    pub fn call_bytes(&mut self, uri: &str, method: &str, args: &[Value]) -> Vec<u8> {
        let id = self.send("call", &[uri, method, &args_hex(args)]);
        let w = self.expect(&id);
        assert_eq!(w[0], "ok", "Goblins' call to {method} failed: {w:?}");
        unhex(&w[1])
    }
}

impl Drop for Goblins {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_owned).collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex from the Goblins peer"))
        .collect()
}

/// The arguments of a command: a Syrup list, hex.
pub fn args_hex(args: &[Value]) -> String {
    hex(&syrup::encode(&Value::List(args.to_vec())))
}

/// A gobs node on default settings, listening on tcp-tls at 127.0.0.1.
pub struct Gobs {
    pub node: Node,
    pub identity: TlsIdentity,
    pub port: u16,
}

/// The swiss number of the gobs test object.
pub const GOBS_SWISS: &[u8] = b"gobs-interop-test-object-swiss-1";

impl Gobs {
    /// A node with a fresh identity on a free port, offering [`gobs_object`].
    pub async fn start() -> Gobs {
        Gobs::start_as(TlsIdentity::generate().expect("a TLS identity"), 0).await
    }

    /// A node with `identity` on `port` (0: any), offering [`gobs_object`] at
    /// [`GOBS_SWISS`]: the same identity and port give the same sturdyref.
    pub async fn start_as(identity: TlsIdentity, port: u16) -> Gobs {
        // `RUST_LOG=gobs_ocapn=debug,gobs_ocapn_proto=debug` traces the node's connections.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let tls = TcpTls::bind(addr, &identity, None)
            .await
            .expect("bind tcp-tls on 127.0.0.1");
        let port = tls.local_addr().expect("a listening address").port();
        let node = Node::start(
            vec![Arc::new(tls) as Arc<dyn Netlayer>],
            SessionConfig::default(),
        )
        .expect("start a node");
        node.with_core(|core| {
            let obj = core.spawn(Box::new(GobsObject::default()));
            core.bind_swiss(GOBS_SWISS, obj);
        })
        .await
        .expect("node running");
        Gobs {
            node,
            identity,
            port,
        }
    }

    /// The sturdyref URI of the test object.
    pub fn uri(&self) -> String {
        Sturdyref {
            peer: self.node.locator().clone(),
            swiss: GOBS_SWISS.to_vec(),
        }
        .to_uri()
    }

    /// Calls `args` (method first) on the object at `sturdyref`; waits for the outcome.
    pub async fn call(&self, sturdyref: &Sturdyref, args: Vec<Term>) -> Result<Term, Term> {
        let s = sturdyref.clone();
        let p = self
            .node
            .with_core(move |core| {
                let target = core.enliven(&s);
                core.send(CapRef::Local(target), args)
            })
            .await
            .expect("node running");
        self.settled(p).await
    }

    /// Waits for a promise of this node.
    pub async fn settled(&self, p: LocalRef) -> Result<Term, Term> {
        tokio::time::timeout(DEADLINE, self.node.settled(p))
            .await
            .expect("a promise settled before the deadline")
            .expect("node running")
    }

    /// Runs `f` on the core.
    pub async fn core<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core) -> R + Send + 'static,
    ) -> R {
        self.node.with_core(f).await.expect("node running")
    }
}

/// A method call's arguments: the method symbol, then the values.
pub fn msg(method: &str, args: &[Term]) -> Vec<Term> {
    let mut v = vec![Term::sym(method)];
    v.extend_from_slice(args);
    v
}

/// The gobs object Goblins calls, by method name:
/// - `echo v` answers v; `fail msg` breaks with the string;
/// - `call-me ref` calls `echo "called back"` on ref and answers with that answer;
/// - `relay p` answers with p (a promise from Goblins: gobs listens on it);
/// - `next` counts; `make` answers a new such object;
/// - `never` answers a promise that never settles (it breaks when the session ends);
/// - `receive ref` (a handed-off reference) calls `echo "handed"` on it;
/// - `introduce recipient target` sends `receive target` to recipient.
#[derive(Default)]
pub struct GobsObject {
    count: u64,
}

impl LocalObject for GobsObject {
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let method = args.first().and_then(Term::as_symbol).map(str::to_owned);
        let rest = &args[args.len().min(1)..];
        let reference = |i: usize| match rest.get(i) {
            Some(Term::Ref(r)) => Ok(r.clone()),
            other => Err(Term::str(&format!(
                "argument {i} is not a reference: {other:?}"
            ))),
        };
        match (method.as_deref(), rest) {
            (Some("echo"), [v]) => Ok(v.clone()),
            (Some("fail"), [Term::Data(Value::String(m))]) => Err(Term::str(m)),
            (Some("call-me"), [_]) => {
                let r = reference(0)?;
                Ok(Term::local(
                    cx.send(&r, msg("echo", &[Term::str("called back")])),
                ))
            }
            (Some("relay"), [p]) => Ok(p.clone()),
            (Some("never"), []) => {
                let (p, _resolver) = cx.promise();
                Ok(Term::local(p))
            }
            (Some("make"), []) => Ok(cx.spawn(GobsObject::default())),
            (Some("next"), []) => {
                self.count += 1;
                Ok(Term::Data(Value::from(self.count)))
            }
            (Some("receive"), [_]) => {
                let r = reference(0)?;
                Ok(Term::local(
                    cx.send(&r, msg("echo", &[Term::str("handed")])),
                ))
            }
            (Some("introduce"), [_, target]) => {
                let recipient = reference(0)?;
                Ok(Term::local(cx.send(
                    &recipient,
                    msg("receive", std::slice::from_ref(target)),
                )))
            }
            _ => Err(Term::str(&format!("no such method or arity: {args:?}"))),
        }
    }
}

/// What most interop tests begin with: a [`Goblins::fresh`] peer and a gobs node on
/// default settings.
pub async fn goblins_and_gobs() -> (Goblins, Gobs) {
    let goblins = blocking(Goblins::fresh);
    (goblins, Gobs::start().await)
}

/// A fresh directory for a Goblins peer's state, removed on drop.
pub fn state_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("gobs-goblins-{}-", std::process::id()))
        .tempdir()
        .expect("a temporary directory")
}

/// A multi-threaded runtime (the Goblins harness blocks while it waits for lines).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Waits, without blocking the runtime's other tasks, for a blocking harness call.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}
