//! Two persistent programs over OCapN: a bank that serves accounts, and an auditor that
//! keeps far references to accounts in its own saved state. Kill either (even with
//! `kill -9`) and start it again: the bank's URI stays the same, and the auditor's saved
//! accounts work again.
//!
//! ```sh
//! cargo run -p gobs-ocapn --example bank -- serve /tmp/bank
//! #   bank at ocapn://…tcp-tls/s/…?host=127.0.0.1&port=…
//! cargo run -p gobs-ocapn --example bank -- audit /tmp/auditor 'ocapn://…'
//! #   then type: deposit gina 100 | withdraw gina 500 | balance gina | audit
//! ```
//!
//! The auditor reads one command a line and answers each with one line:
//! `balance OWNER N`, `refused OWNER WHY` or `total N`.

use std::collections::BTreeMap;
use std::path::Path;

use gobs_ocapn::prelude::{Node, NodeBuilder};
use gobs_runtime::{Ref, Registry, StoreKind, common_env, define_actor, persistence_env, spawn};
use tokio::io::AsyncBufReadExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One owner's money. Withdrawals are booked first and checked after: an overdraft
/// fails the turn, which takes the booking back.
#[define_actor(name = "bank_example::Account")]
pub struct Account {
    deposited: u64,
    withdrawn: u64,
}

#[define_actor]
impl Account {
    pub fn balance(&self) -> u64 {
        self.deposited - self.withdrawn
    }

    pub fn deposit(&mut self, amount: u64) -> u64 {
        self.deposited += amount;
        self.balance()
    }

    pub fn withdraw(&mut self, amount: u64) -> Result<u64, String> {
        self.withdrawn += amount;
        if self.withdrawn > self.deposited {
            return Err(format!("overdraft: {amount} is more than the balance"));
        }
        Ok(self.balance())
    }
}

/// The accounts, by owner: opening one that exists gives it back.
#[define_actor(name = "bank_example::Bank")]
pub struct Bank {
    accounts: BTreeMap<String, Ref<Account>>,
}

#[define_actor]
impl Bank {
    pub fn open(&mut self, owner: String) -> Ref<Account> {
        self.accounts
            .entry(owner)
            .or_insert_with(|| {
                spawn(Account {
                    deposited: 0,
                    withdrawn: 0,
                })
            })
            .clone()
    }
}

/// The accounts the auditor watches, saved as the far references they are.
#[define_actor(name = "bank_example::Auditor")]
pub struct Auditor {
    accounts: BTreeMap<String, Ref<Account>>,
}

#[define_actor]
impl Auditor {
    #[actor(local)]
    pub fn watch(&mut self, owner: String, account: Ref<Account>) {
        self.accounts.insert(owner, account);
    }

    #[actor(local)]
    pub fn accounts(&self) -> BTreeMap<String, Ref<Account>> {
        self.accounts.clone()
    }
}

/// The registry in `dir`, its node (not listening yet), and its vat `vat`'s root, built
/// by `root` on the first run. These calls block: they run before the async part.
fn open<T: gobs_runtime::Actor>(
    dir: &Path,
    vat: &str,
    root: impl FnOnce() -> Ref<T> + Send + 'static,
) -> Result<(NodeBuilder, Ref<T>), Error> {
    let env = persistence_env!(
        "bank-example",
        extends: [common_env(), gobs_ocapn::persist::env()?],
        actors: [Account, Bank, Auditor]
    )?;
    let registry = Registry::open(dir, env, StoreKind::Log(Default::default()))?;
    let node = Node::open(&registry)?;
    let (_vat, root) = registry.start_vat(vat, root)?;
    Ok((node, root))
}

async fn serve(node: NodeBuilder, bank: Ref<Bank>) -> Result<(), Error> {
    // The same port every run, so the same URI.
    let node = node.listen_tls("127.0.0.1:0").await?;
    let uri = node.publish("bank", &bank).await?;
    println!("bank at {}", uri.to_uri());
    std::future::pending().await
}

async fn audit(node: NodeBuilder, auditor: Ref<Auditor>, bank_uri: &str) -> Result<(), Error> {
    let node = node.listen_tls("127.0.0.1:0").await?;
    let mut accounts = auditor.send().accounts().await?;
    if accounts.is_empty() {
        let bank = node.enliven::<Bank>(bank_uri).await?;
        for owner in ["gina", "hal"] {
            let account = bank.send().open(owner.into()).await?;
            auditor.send().watch(owner.into(), account.clone()).await?;
            accounts.insert(owner.into(), account);
        }
    }
    println!("watching {}", accounts.len());
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        println!("{}", command(&accounts, &line).await);
    }
    Ok(())
}

/// Runs one command line on the accounts: its answer line.
async fn command(accounts: &BTreeMap<String, Ref<Account>>, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    if let ["audit"] = words[..] {
        let mut total = 0;
        for account in accounts.values() {
            match account.send().balance().await {
                Ok(n) => total += n,
                Err(e) => return format!("refused audit {e}"),
            }
        }
        return format!("total {total}");
    }
    let (verb, owner, amount) = match words[..] {
        [verb, owner] => (verb, owner, 0),
        [verb, owner, n] => match n.parse() {
            Ok(n) => (verb, owner, n),
            Err(e) => return format!("refused {owner} {n:?} is not an amount: {e}"),
        },
        _ => return format!("refused {line:?}: deposit|withdraw OWNER N, balance OWNER, audit"),
    };
    let Some(account) = accounts.get(owner) else {
        return format!("refused {owner} is not watched");
    };
    let answer = match verb {
        "deposit" => account.send().deposit(amount).await,
        "withdraw" => account.send().withdraw(amount).await,
        "balance" => account.send().balance().await,
        _ => return format!("refused {owner} unknown command {verb:?}"),
    };
    match answer {
        Ok(n) => format!("balance {owner} {n}"),
        Err(e) => format!("refused {owner} {e}"),
    }
}

/// `serve DIR` or `audit DIR BANK-URI`.
pub fn run(args: &[String]) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args {
        [cmd, dir] if cmd == "serve" => {
            let (node, bank) = open(Path::new(dir), "bank", || {
                spawn(Bank {
                    accounts: BTreeMap::new(),
                })
            })?;
            rt.block_on(serve(node, bank))
        }
        [cmd, dir, uri] if cmd == "audit" => {
            let (node, auditor) = open(Path::new(dir), "auditor", || {
                spawn(Auditor {
                    accounts: BTreeMap::new(),
                })
            })?;
            rt.block_on(audit(node, auditor, uri))
        }
        _ => Err("usage: bank serve DIR | bank audit DIR BANK-URI".into()),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bank: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
