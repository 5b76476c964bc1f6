//! The hob-client's state, in a gobs persistence registry of its own (`<dir>/vats`): its
//! node identity (gobs-ocapn's node vat, as the boss keeps its own) and its client record
//! ([`ClientRecord`], vat [`CLIENT_VAT`]): the machine's name, the boss's attach sturdyref,
//! the attach credential and how far its rotation got. Every change is one commit of the
//! registry, durable before the call that made it returns.
//!
//! **The rotation's crash window** (see [`super::credential`]): the next credential is
//! stored (committed, [`Rotation::Stored`]) before it is confirmed to the boss, and marked
//! [`Rotation::Confirmed`] after; a client that stopped in between attaches with the stored
//! one, which the boss still accepts.
//!
//! **Upgrade.** Earlier releases kept the same in `<dir>/client.json` beside a `node`
//! identity file. On the first open they are read once, moved into the registry, and
//! renamed `client.json.migrated` and `node.migrated` once it has committed them.

use std::path::{Path, PathBuf};

use gobs_ocapn::netlayer::TlsIdentity;
use gobs_ocapn::persist::{NODE_VAT, NodeState, NodeStore};
use gobs_runtime::store::LogOptions;
use gobs_runtime::{Env, Ref, Registry, StoreKind, define_actor, spawn};
use serde::{Deserialize, Serialize};

use super::credential;

/// The registry's directory inside the hob-client's state directory.
pub const VATS_DIR: &str = "vats";
/// The client record's vat in the registry.
pub const CLIENT_VAT: &str = "hob-client";
/// Where an earlier release kept the client record, and (beside it) its identity.
const LEGACY_STATE: &str = "client.json";
const LEGACY_NODE: &str = "node";

/// How far the last credential rotation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rotation {
    /// The boss was told the credential is stored (or it never rotated).
    Confirmed,
    /// Stored, not yet confirmed: the client stopped in the rotation's window.
    Stored,
}

/// What a registered hob-client keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientState {
    /// The machine's name, as the boss knows it.
    pub machine: String,
    /// The boss's attach sturdyref for this machine.
    pub boss: String,
    /// The attach credential; `None` in state from before rotation.
    pub credential: Option<Vec<u8>>,
    /// How far its last rotation got.
    pub rotation: Rotation,
}

/// The client record (see the module docs).
#[define_actor(name = "gobs_app::hob_net::ClientRecord")]
#[derive(Debug)]
pub struct ClientRecord {
    state: ClientState,
}

#[define_actor]
impl ClientRecord {
    /// All of it.
    #[actor(local)]
    pub fn state(&self) -> ClientState {
        self.state.clone()
    }

    /// `next` is the credential from now on, not yet confirmed to the boss.
    #[actor(local)]
    pub fn store_next(&mut self, next: Vec<u8>) {
        self.state.credential = Some(next);
        self.state.rotation = Rotation::Stored;
    }

    /// The boss was told `credential` is stored (nothing changes if it is not the one held).
    #[actor(local)]
    pub fn confirmed(&mut self, credential: Vec<u8>) {
        if self.state.credential.as_deref() == Some(credential.as_slice()) {
            self.state.rotation = Rotation::Confirmed;
        }
    }
}

/// The env of the hob-client's registry.
pub fn env() -> Result<Env, gobs_runtime::Error> {
    gobs_runtime::persistence_env!(
        "hob-client",
        extends: [gobs_ocapn::persist::env()?],
        actors: [ClientRecord]
    )
}

/// `client.json` as earlier releases wrote it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyState {
    machine: String,
    boss: String,
    #[serde(default)]
    credential: Option<String>,
    /// Read so that `deny_unknown_fields` accepts it: the bindings are the release's own.
    #[allow(dead_code)]
    bindings: Vec<String>,
}

/// The hob-client's state, open (see the module docs).
#[derive(Debug)]
pub struct ClientStore {
    dir: PathBuf,
    registry: Registry,
    node: NodeStore,
    record: Option<Ref<ClientRecord>>,
}

/// Why the state cannot be opened or changed: the message names the directory and what
/// to do.
fn damaged(dir: &Path, why: impl std::fmt::Display) -> String {
    format!(
        "the hob-client's state in {} cannot be read ({why}); if it is damaged, move the \
         directory away and give the machine a new registration (destroy the machine and \
         create it again)",
        dir.display()
    )
}

impl ClientStore {
    /// Opens the state in `dir` (made, owner-only, if missing), moving an earlier release's
    /// `client.json` and `node` in. Blocking: call before the client's runtime starts.
    pub fn open(dir: &Path) -> Result<ClientStore, String> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let env = env().map_err(|e| format!("the hob-client's env: {e}"))?;
        let registry = Registry::open(
            dir.join(VATS_DIR),
            env,
            StoreKind::Log(LogOptions::default()),
        )
        .map_err(|e| damaged(dir, e))?;
        let node = NodeStore::open(&registry, Some(&dir.join(LEGACY_NODE)))
            .map_err(|e| damaged(dir, e))?;
        let mut store = ClientStore {
            dir: dir.to_path_buf(),
            registry,
            node,
            record: None,
        };
        let legacy = dir.join(LEGACY_STATE);
        if store.has_record() {
            store.record = Some(store.start_record(None)?);
            // Moved in by an open that ended before it could rename the file.
            if legacy.exists() {
                store.set_legacy_aside(&legacy)?;
            }
        } else if legacy.exists() {
            let state = read_legacy(dir, &legacy)?;
            let record = store.start_record(Some(state))?;
            // The answer leaves the vat only once the churn that made the record committed.
            record.send().state().wait().map_err(|e| damaged(dir, e))?;
            store.record = Some(record);
            store.set_legacy_aside(&legacy)?;
        }
        Ok(store)
    }

    /// The node's tcp-tls identity.
    pub fn tls(&self) -> Result<TlsIdentity, String> {
        self.node.tls().map_err(|e| damaged(&self.dir, e))
    }

    /// The client record, if the client has registered.
    pub async fn state(&self) -> Result<Option<ClientState>, String> {
        let Some(record) = &self.record else {
            return Ok(None);
        };
        let state = record.send().state().await;
        state.map(Some).map_err(|e| damaged(&self.dir, e))
    }

    /// Keeps the record of a registration (durable when this returns).
    pub async fn keep(&mut self, state: ClientState) -> Result<(), String> {
        let record = self.start_record(Some(state))?;
        // The answer leaves the vat only once the churn that made the record committed.
        record.send().state().await.map_err(|e| {
            format!(
                "cannot store the registration in {}: {e}",
                self.dir.display()
            )
        })?;
        self.record = Some(record);
        Ok(())
    }

    /// Stores `next` as the credential, not yet confirmed (durable when this returns).
    pub async fn store_next(&self, next: &[u8]) -> Result<(), String> {
        let record = self.registered()?;
        record.send().store_next(next.to_vec()).await.map_err(|e| {
            format!(
                "cannot store the next credential in {}: {e}",
                self.dir.display()
            )
        })
    }

    /// Notes that the boss was told `credential` is stored.
    pub async fn confirmed(&self, credential: &[u8]) -> Result<(), String> {
        let record = self.registered()?;
        record
            .send()
            .confirmed(credential.to_vec())
            .await
            .map_err(|e| {
                format!(
                    "cannot note the confirmation in {}: {e}",
                    self.dir.display()
                )
            })
    }

    /// Stops the registry (its last commit flushed).
    pub fn close(&self) {
        self.registry.shutdown();
    }

    fn registered(&self) -> Result<&Ref<ClientRecord>, String> {
        self.record
            .as_ref()
            .ok_or_else(|| "the hob-client has not registered (a bug)".to_string())
    }

    fn has_record(&self) -> bool {
        self.registry.vat_names().iter().any(|n| n == CLIENT_VAT)
    }

    fn start_record(&self, seed: Option<ClientState>) -> Result<Ref<ClientRecord>, String> {
        let (_, record) = self
            .registry
            .try_start_vat(CLIENT_VAT, move || {
                let state = seed.ok_or_else(|| {
                    format!("the client's vat \"{CLIENT_VAT}\" is listed but holds no record")
                })?;
                Ok::<_, String>(spawn(ClientRecord { state }))
            })
            .map_err(|e| damaged(&self.dir, e))?;
        Ok(record)
    }

    fn set_legacy_aside(&self, legacy: &Path) -> Result<(), String> {
        let to = PathBuf::from(format!("{}.migrated", legacy.display()));
        std::fs::rename(legacy, &to).map_err(|e| {
            format!(
                "the hob-client's state moved into {}, but {} cannot be renamed ({e}); move it \
                 away by hand",
                self.dir.join(VATS_DIR).display(),
                legacy.display()
            )
        })?;
        tracing::info!(from = %legacy.display(), to = %to.display(), "hob-client state migrated into its registry");
        Ok(())
    }
}

fn read_legacy(dir: &Path, path: &Path) -> Result<ClientState, String> {
    let bytes =
        std::fs::read(path).map_err(|e| damaged(dir, format!("{}: {e}", path.display())))?;
    let old: LegacyState = serde_json::from_slice(&bytes).map_err(|e| {
        damaged(
            dir,
            format!("{} is not a hob-client state: {e}", path.display()),
        )
    })?;
    let credential = match &old.credential {
        Some(text) => Some(credential::decode(text).map_err(|e| damaged(dir, e))?),
        None => None,
    };
    Ok(ClientState {
        machine: old.machine,
        boss: old.boss,
        credential,
        rotation: Rotation::Confirmed,
    })
}

/// What the state in `dir` holds, read without changing anything (for inspection and
/// tests, also while the client runs): the identity and the record, from the registry or
/// from an earlier release's files. `None` for an identity that was never made.
pub fn inspect(dir: &Path) -> Result<(Option<TlsIdentity>, Option<ClientState>), String> {
    let log = dir
        .join(VATS_DIR)
        .join(StoreKind::Log(LogOptions::default()).file_name());
    // A store is open in one place at a time (the client's): read a copy of it.
    let copy = std::env::temp_dir().join(format!(
        "gobs-hob-client-inspect-{}-{}",
        std::process::id(),
        COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let read = match std::fs::read(&log) {
        Ok(bytes) => {
            std::fs::create_dir_all(&copy)
                .and_then(|()| {
                    std::fs::write(copy.join(log.file_name().unwrap_or_default()), bytes)
                })
                .map_err(|e| format!("cannot copy {} to {}: {e}", log.display(), copy.display()))?;
            inspect_copy(dir, Some(&copy))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => inspect_copy(dir, None),
        Err(e) => Err(damaged(dir, format!("{}: {e}", log.display()))),
    };
    let _ = std::fs::remove_dir_all(&copy);
    read
}

/// Numbers [`inspect`]'s copies within this process.
static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// [`inspect`], the registry read from `vats` (a copy of the client's).
fn inspect_copy(
    dir: &Path,
    vats: Option<&Path>,
) -> Result<(Option<TlsIdentity>, Option<ClientState>), String> {
    let registry = match vats {
        Some(vats) => {
            let env = env().map_err(|e| format!("the hob-client's env: {e}"))?;
            let kind = StoreKind::Log(LogOptions {
                read_only: true,
                ..LogOptions::default()
            });
            Some(Registry::open(vats, env, kind).map_err(|e| damaged(dir, e))?)
        }
        None => None,
    };
    let held = |vat: &str| {
        registry
            .as_ref()
            .is_some_and(|r| r.vat_names().iter().any(|n| n == vat))
    };
    let legacy_node = dir.join(LEGACY_NODE);
    let tls = match &registry {
        Some(r) if held(NODE_VAT) => Some(
            NodeStore::open(r, None)
                .and_then(|n| n.tls())
                .map_err(|e| damaged(dir, e))?,
        ),
        _ if legacy_node.exists() => Some(
            NodeState::open(&legacy_node)
                .map_err(|e| damaged(dir, e))?
                .tls,
        ),
        _ => None,
    };
    let legacy = dir.join(LEGACY_STATE);
    let state = match &registry {
        Some(r) if held(CLIENT_VAT) => {
            let (_, record) = r
                .try_start_vat(CLIENT_VAT, || {
                    Err::<Ref<ClientRecord>, _>("the client's vat holds no record".to_string())
                })
                .map_err(|e| damaged(dir, e))?;
            Some(record.send().state().wait().map_err(|e| damaged(dir, e))?)
        }
        _ if legacy.exists() => Some(read_legacy(dir, &legacy)?),
        _ => None,
    };
    if let Some(r) = registry {
        r.shutdown();
    }
    Ok((tls, state))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn registered() -> ClientState {
        ClientState {
            machine: "m1".into(),
            boss: "ocapn://boss.tcp-tls/s/abc".into(),
            credential: Some(vec![1; 32]),
            rotation: Rotation::Confirmed,
        }
    }

    #[test]
    fn an_earlier_release_s_files_move_in_once_and_are_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let old_identity = NodeState::open(&d.join("node")).unwrap().tls.designator();
        std::fs::write(
            d.join("client.json"),
            br#"{"machine":"h1","boss":"ocapn://b.tcp-tls/s/x","credential":"AQID","bindings":["run"]}"#,
        )
        .unwrap();
        let want = ClientState {
            machine: "h1".into(),
            boss: "ocapn://b.tcp-tls/s/x".into(),
            credential: Some(vec![1, 2, 3]),
            rotation: Rotation::Confirmed,
        };
        for _ in 0..2 {
            let store = ClientStore::open(d).unwrap();
            assert_eq!(store.tls().unwrap().designator(), old_identity);
            assert_eq!(block_on(store.state()).unwrap(), Some(want.clone()));
            store.close();
            assert!(!d.join("client.json").exists() && !d.join("node").exists());
            assert!(d.join("client.json.migrated").exists() && d.join("node.migrated").exists());
        }
        let (tls, state) = inspect(d).unwrap();
        assert_eq!(
            (tls.unwrap().designator(), state),
            (old_identity, Some(want.clone()))
        );

        // An open that committed the move and ended before the rename: the file is not read
        // again (a changed copy would not count), only set aside.
        std::fs::write(
            d.join("client.json"),
            br#"{"machine":"other","boss":"ocapn://b.tcp-tls/s/y","bindings":[]}"#,
        )
        .unwrap();
        let store = ClientStore::open(d).unwrap();
        assert_eq!(block_on(store.state()).unwrap(), Some(want));
        store.close();
        assert!(!d.join("client.json").exists());
    }

    #[test]
    fn a_stored_credential_survives_a_restart_unconfirmed_until_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ClientStore::open(dir.path()).unwrap();
        assert_eq!(block_on(store.state()).unwrap(), None, "not registered yet");
        let identity = store.tls().unwrap().designator();
        block_on(store.keep(registered())).unwrap();
        block_on(store.store_next(&[2; 32])).unwrap();
        store.close();

        let store = ClientStore::open(dir.path()).unwrap();
        assert_eq!(store.tls().unwrap().designator(), identity);
        let state = block_on(store.state()).unwrap().unwrap();
        assert_eq!(
            (state.credential, state.rotation),
            (Some(vec![2; 32]), Rotation::Stored)
        );
        block_on(store.confirmed(&[1; 32])).unwrap();
        let state = block_on(store.state()).unwrap().unwrap();
        assert_eq!(state.rotation, Rotation::Stored, "not the credential held");
        block_on(store.confirmed(&[2; 32])).unwrap();
        store.close();
        let (_, state) = inspect(dir.path()).unwrap();
        assert_eq!(state.unwrap().rotation, Rotation::Confirmed);
    }

    #[test]
    fn damaged_state_names_the_directory_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = ClientStore::open(dir.path()).unwrap();
        store.close();
        let log = dir.path().join(VATS_DIR).join("registry.log");
        let mut bytes = std::fs::read(&log).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle..].iter_mut().for_each(|b| *b ^= 0x5a);
        bytes.extend_from_slice(&[0x5a; 64]);
        std::fs::write(&log, bytes).unwrap();
        let err = ClientStore::open(dir.path()).unwrap_err();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("move the directory away"), "{err}");

        let old = tempfile::tempdir().unwrap();
        std::fs::write(old.path().join("client.json"), b"{\"machine\":").unwrap();
        let err = ClientStore::open(old.path()).unwrap_err();
        assert!(
            err.contains("client.json is not a hob-client state"),
            "{err}"
        );
        assert!(err.contains("move the directory away"), "{err}");
        assert!(old.path().join("client.json").exists(), "left as it is");
    }
}
