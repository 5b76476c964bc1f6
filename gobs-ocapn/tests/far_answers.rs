//! A reference that arrives as the *answer* of a typed call is a far `Ref<U>`, and can be
//! saved however it arrived — the answer itself, inside an `Option`, through a promise —
//! because the answer path asks its exporter for its sturdyref before the caller gets
//! it. Restored after a restart of the keeper's registry, it reaches the network through
//! the node attached to that registry, even when the vat is restored first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::IntoFuture;

use common::{publish, tcp_node, within};

use gobs_ocapn::vat::RemoteObject;
use gobs_runtime::{Promise, Ref, Registry, Vat, common_env, define_actor, persistence_env, spawn};

#[define_actor]
pub struct Account {
    owner: String,
    balance: u64,
}

#[define_actor]
impl Account {
    pub fn deposit(&mut self, amount: u64) -> u64 {
        self.balance += amount;
        self.balance
    }

    #[actor(local)]
    pub fn owner_is(&self, owner: String) -> bool {
        self.owner == owner
    }
}

#[define_actor]
pub struct Bank {
    accounts: Vec<Ref<Account>>,
}

#[define_actor]
impl Bank {
    pub fn open(&mut self, owner: String) -> Ref<Account> {
        let account = spawn(Account { owner, balance: 0 });
        self.accounts.push(account.clone());
        account
    }

    pub fn find(&self, owner: String) -> Option<Ref<Account>> {
        self.accounts
            .iter()
            .find(|a| a.call().owner_is(owner.clone()).unwrap_or(false))
            .cloned()
    }

    pub fn open_later(&mut self, owner: String) -> Promise<Ref<Account>> {
        Promise::fulfilled(self.open(owner))
    }
}

/// Keeps far accounts in its portrait.
#[define_actor]
pub struct Auditor {
    accounts: Vec<Ref<Account>>,
}

#[define_actor]
impl Auditor {
    pub fn watch(&mut self, account: Ref<Account>) -> usize {
        self.accounts.push(account);
        self.accounts.len()
    }

    /// Deposits `amount` into every account watched; their balances.
    pub fn deposit_all(&self, amount: u64) -> Promise<Vec<u64>> {
        Promise::all(self.accounts.iter().map(|a| a.send().deposit(amount)))
    }
}

fn env() -> gobs_runtime::Env {
    persistence_env!("far-answers", extends: [common_env()], actors: [Auditor]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_far_refs_are_saved_and_live_after_a_restart() {
    let server = tcp_node().await;
    let bank_vat = Vat::spawn("bank").unwrap();
    let bank = bank_vat.spawn_actor(Bank { accounts: vec![] }).unwrap();
    let s = publish(&server, bank, b"bank").await;

    let registry = Registry::in_memory(env());
    let client = tcp_node().await;
    client.attach_to(&registry);
    let bank: Ref<Bank> = RemoteObject::enliven_as(&client, &s).await.unwrap();

    // Typed calls answering with the bank's accounts: far references, each knowing its
    // sturdyref before the caller has it (`find` answers gina's account again).
    let gina = within(bank.send().open("gina".into()).into_future())
        .await
        .unwrap();
    let found = within(bank.send().find("gina".into()).into_future())
        .await
        .unwrap();
    let later = within(bank.send().open_later("hugo".into()).into_future())
        .await
        .unwrap();
    let found = found.expect("gina's account is found");
    for account in [&gina, &found, &later] {
        assert!(account.is_far(), "{account:?}");
        let object = RemoteObject::of(account).unwrap();
        assert!(object.sturdyref().is_some(), "{account:?} has no sturdyref");
    }
    assert_eq!(gina.send().deposit(5).await.unwrap(), 5);

    let (_, auditor) = registry
        .start_vat("auditor", || spawn(Auditor { accounts: vec![] }))
        .unwrap();
    for account in [gina, found, later] {
        within(auditor.send().watch(account).into_future())
            .await
            .unwrap();
    }
    assert_eq!(
        within(auditor.send().deposit_all(1).into_future())
            .await
            .unwrap(),
        vec![6, 7, 1]
    );

    // The auditor's process restarts: a new registry over the same store restores the
    // auditor before its new node is attached; the first send finds the node.
    let registry = tokio::task::spawn_blocking(move || registry.restart().unwrap())
        .await
        .unwrap();
    let (_, auditor): (_, Ref<Auditor>) = registry.restore_vat("auditor").unwrap();
    let client = tcp_node().await;
    client.attach_to(&registry);
    assert_eq!(
        within(auditor.send().deposit_all(10).into_future())
            .await
            .unwrap(),
        vec![17, 27, 11]
    );
    registry.shutdown();
    bank_vat.shutdown();
}

const BANK_DIR: &str = "GOBS_FAR_ANSWERS_BANK_DIR";
const BANK_PORT: &str = "GOBS_FAR_ANSWERS_BANK_PORT";

fn bank_env() -> gobs_runtime::Env {
    persistence_env!(
        "far-answers-bank",
        extends: [common_env(), gobs_ocapn::persist::env().unwrap()],
        actors: [Bank, Account]
    )
    .unwrap()
}

/// Not a test of its own: the bank's process (a no-op unless `GOBS_FAR_ANSWERS_BANK_DIR`
/// is set). A persistent bank on tcp-tls, its node state in its registry; prints its
/// port and sturdyref, then answers `sync` (the minted sturdyrefs are committed) with
/// `SYNCED`, until killed.
#[test]
fn bank_process() {
    let Ok(dir) = std::env::var(BANK_DIR) else {
        return;
    };
    let port: u16 = std::env::var(BANK_PORT).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let open = move || {
            let registry = Registry::open(
                std::path::Path::new(&dir),
                bank_env(),
                gobs_runtime::StoreKind::Log(Default::default()),
            )
            .unwrap();
            let store = gobs_ocapn::persist::NodeStore::open(&registry, None).unwrap();
            let (_, bank) = registry
                .start_vat("bank", || spawn(Bank { accounts: vec![] }))
                .unwrap();
            let swiss = store.swiss_for("bank").unwrap();
            (registry, store, bank, swiss)
        };
        let (_registry, store, bank, swiss) = tokio::task::spawn_blocking(open).await.unwrap();
        let tls = gobs_ocapn::netlayer::TcpTls::bind(
            format!("127.0.0.1:{port}").parse().unwrap(),
            &store.tls().unwrap(),
            None,
        )
        .await
        .unwrap();
        let port = tls.local_addr().unwrap().port();
        let node = gobs_ocapn::node::Node::start(
            vec![std::sync::Arc::new(tls) as std::sync::Arc<dyn gobs_ocapn::netlayer::Netlayer>],
            gobs_ocapn::captp::SessionConfig::default(),
        )
        .unwrap();
        store.attach(&node).await.unwrap();
        let gobs_ocapn::captp::Term::Ref(gobs_ocapn::captp::CapRef::Local(obj)) =
            gobs_ocapn::vat::export_actor(&node, bank).await.unwrap()
        else {
            panic!("exporting the bank gave no local reference")
        };
        let s2 = swiss.clone();
        node.with_core(move |c| c.bind_swiss(&s2, obj))
            .await
            .unwrap();
        let uri = gobs_ocapn::locator::Sturdyref {
            peer: node.locator().clone(),
            swiss,
        };
        println!("BANK {port} {}", uri.to_uri());
        tokio::task::spawn_blocking(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                if line == "sync" {
                    store.names().unwrap();
                    println!("SYNCED");
                }
            }
        })
        .await
        .unwrap();
    });
}

/// A child process, SIGKILLed (and reaped) when dropped: it gets no chance to save
/// anything more.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bank's process; SIGKILLed when dropped.
struct BankProcess {
    child: KilledOnDrop,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    port: u16,
    sturdyref: gobs_ocapn::locator::Sturdyref,
}

impl BankProcess {
    fn start(dir: &std::path::Path, port: u16) -> BankProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "bank_process", "--nocapture", "--test-threads=1"])
            .env(BANK_DIR, dir)
            .env(BANK_PORT, port.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let child = KilledOnDrop(child);
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .expect("the bank ended before it was ready")
                .unwrap();
            // libtest may have written "test bank_process ... " on the same line.
            if let Some((_, rest)) = line.split_once("BANK ") {
                let (port, uri) = rest.trim().split_once(' ').unwrap();
                return BankProcess {
                    child,
                    lines,
                    port: port.parse().unwrap(),
                    sturdyref: gobs_ocapn::locator::Sturdyref::parse(uri).unwrap(),
                };
            }
        }
    }

    /// Waits until what the bank minted so far is committed.
    fn sync(&mut self) {
        use std::io::Write;
        let stdin = self.child.0.stdin.as_mut().unwrap();
        writeln!(stdin, "sync").unwrap();
        loop {
            let line = self.lines.next().expect("the bank ended").unwrap();
            if line.contains("SYNCED") {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_far_ref_survives_kill_9_of_the_bank_and_a_restart_of_the_auditor() {
    let bank_dir = tempfile::Builder::new()
        .prefix(&format!("gobs-far-answers-{}-", std::process::id()))
        .tempdir()
        .unwrap();
    let mut bank_process = tokio::task::block_in_place(|| BankProcess::start(bank_dir.path(), 0));
    let registry = Registry::in_memory(env());
    let client = gobs_ocapn_tls_node().await;
    client.attach_to(&registry);
    let bank: Ref<Bank> = RemoteObject::enliven_as(&client, &bank_process.sturdyref)
        .await
        .unwrap();
    let gina = within(bank.send().open("gina".into()).into_future())
        .await
        .unwrap();
    let (_, auditor) = registry
        .start_vat("auditor", || spawn(Auditor { accounts: vec![] }))
        .unwrap();
    within(auditor.send().watch(gina).into_future())
        .await
        .unwrap();
    assert_eq!(
        within(auditor.send().deposit_all(5).into_future())
            .await
            .unwrap(),
        vec![5]
    );
    tokio::task::block_in_place(|| bank_process.sync());

    // kill -9 of the bank, and a new bank process on the same state and port.
    let port = bank_process.port;
    drop(bank_process);
    let _bank_process = tokio::task::block_in_place(|| BankProcess::start(bank_dir.path(), port));
    // The auditor's process restarts too: its saved account reaches the new bank.
    let registry = tokio::task::spawn_blocking(move || registry.restart().unwrap())
        .await
        .unwrap();
    let (_, auditor): (_, Ref<Auditor>) = registry.restore_vat("auditor").unwrap();
    let client = gobs_ocapn_tls_node().await;
    client.attach_to(&registry);
    assert_eq!(
        within(auditor.send().deposit_all(1).into_future())
            .await
            .unwrap(),
        vec![6]
    );
    registry.shutdown();
}

/// A client node on tcp-tls with a fresh identity.
async fn gobs_ocapn_tls_node() -> gobs_ocapn::node::Node {
    let tls = gobs_ocapn::netlayer::TcpTls::bind(
        "127.0.0.1:0".parse().unwrap(),
        &gobs_ocapn::netlayer::TlsIdentity::generate().unwrap(),
        None,
    )
    .await
    .unwrap();
    gobs_ocapn::node::Node::start(
        vec![std::sync::Arc::new(tls) as std::sync::Arc<dyn gobs_ocapn::netlayer::Netlayer>],
        gobs_ocapn::captp::SessionConfig::default(),
    )
    .unwrap()
}
