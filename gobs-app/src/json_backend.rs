//! [`JsonBackend`]: a stand-in [`Backend`] that keeps machines in `state.json` in the state
//! directory, until the actor-based boss replaces it (see [`crate::backend::open_backend`]).
//!
//! Every change is written atomically (temporary file, fsync, rename, fsync of the
//! directory) and applied in memory only once written, so a failed write changes nothing.
//! Providers: `dummy` machines exist only in the file; `process` machines get a directory
//! under `machines/` in which `run` executes commands as local child processes.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, BackendError, MachineInfo, MachineStatus, ProviderInfo, RunOutput};
use crate::config::{Config, ProviderKind};
use crate::error::AppError;

const STATE_FILE: &str = "state.json";
const FORMAT: u32 = 1;

/// Machines in a JSON file.
#[derive(Debug)]
pub struct JsonBackend {
    dir: PathBuf,
    providers: BTreeMap<String, ProviderKind>,
    state: StateFile,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: u32,
    machines: BTreeMap<String, Record>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    provider: String,
    created_at: u64,
}

impl JsonBackend {
    /// Opens (or starts) the state in `dir`, with the enabled providers of `config`.
    pub fn open(dir: &Path, config: &Config) -> Result<JsonBackend, AppError> {
        let path = dir.join(STATE_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => parse_state(&bytes, &path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => StateFile {
                format: FORMAT,
                machines: BTreeMap::new(),
            },
            Err(e) => return Err(AppError::io("read state file", path, e)),
        };
        tracing::debug!(
            "opened {} with {} machine(s)",
            path.display(),
            state.machines.len()
        );
        Ok(JsonBackend {
            dir: dir.to_path_buf(),
            providers: config
                .enabled_providers()
                .map(|(name, p)| (name.to_string(), p.kind.clone()))
                .collect(),
            state,
        })
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.state.machines.keys().map(String::as_str)
    }

    fn record(&self, name: &str) -> Result<&Record, BackendError> {
        self.state
            .machines
            .get(name)
            .ok_or_else(|| BackendError::unknown_machine(name, self.names()))
    }

    fn info(&self, name: &str, record: &Record) -> MachineInfo {
        let enabled = self.providers.contains_key(&record.provider);
        MachineInfo {
            name: name.to_string(),
            provider: record.provider.clone(),
            status: if enabled {
                MachineStatus::Running
            } else {
                MachineStatus::Stopped
            },
            created_at: record.created_at,
            bindings: Vec::new(),
            error: (!enabled).then(|| {
                format!(
                    "provider {:?} is not enabled in the config; enable it to use this machine",
                    record.provider
                )
            }),
        }
    }

    fn machine_dir(&self, name: &str) -> PathBuf {
        self.dir.join("machines").join(name)
    }

    /// Writes `state` atomically, then makes it current.
    fn commit(&mut self, state: StateFile) -> Result<(), BackendError> {
        let path = self.dir.join(STATE_FILE);
        write_atomically(&self.dir, &path, &state).map_err(|e| {
            BackendError::storage(format!(
                "cannot save machines to {}: {e}; check free space and the permissions of the \
                 state directory (nothing was changed)",
                path.display()
            ))
        })?;
        self.state = state;
        Ok(())
    }
}

fn parse_state(bytes: &[u8], path: &Path) -> Result<StateFile, AppError> {
    let state: StateFile = serde_json::from_slice(bytes).map_err(|e| {
        BackendError::storage(format!(
            "state file {} is damaged ({e}); restore it from a backup, or move it away to start \
             with no machines",
            path.display()
        ))
    })?;
    if state.format != FORMAT {
        return Err(BackendError::storage(format!(
            "state file {} has format {}, this gobs-app reads format {FORMAT}; use the gobs-app \
             that wrote it",
            path.display(),
            state.format
        ))
        .into());
    }
    Ok(state)
}

fn write_atomically(dir: &Path, path: &Path, state: &StateFile) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(state)?;
    bytes.push(b'\n');
    let tmp = path.with_extension("json.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Backend for JsonBackend {
    fn create_machine(&mut self, name: &str, provider: &str) -> Result<MachineInfo, BackendError> {
        if self.state.machines.contains_key(name) {
            return Err(BackendError::machine_exists(name, self.names()));
        }
        let kind = self.providers.get(provider).ok_or_else(|| {
            BackendError::unknown_provider(provider, self.providers.keys().map(String::as_str))
        })?;
        let dir = self.machine_dir(name);
        let made_dir = matches!(kind, ProviderKind::Process { .. });
        if made_dir {
            if dir.exists() {
                tracing::info!("removing leftover directory {}", dir.display());
                fs::remove_dir_all(&dir).map_err(|e| {
                    BackendError::provider(format!(
                        "cannot clear leftover machine directory {}: {e}; remove it by hand",
                        dir.display()
                    ))
                })?;
            }
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| {
                    BackendError::provider(format!(
                        "cannot create machine directory {}: {e}",
                        dir.display()
                    ))
                })?;
        }
        let record = Record {
            provider: provider.to_string(),
            created_at: now_unix(),
        };
        let mut next = self.state.clone();
        next.machines.insert(name.to_string(), record.clone());
        if let Err(e) = self.commit(next) {
            if made_dir {
                let _ = fs::remove_dir_all(&dir);
            }
            return Err(e);
        }
        Ok(self.info(name, &record))
    }

    fn list_machines(&mut self) -> Result<Vec<MachineInfo>, BackendError> {
        Ok(self
            .state
            .machines
            .iter()
            .map(|(name, record)| self.info(name, record))
            .collect())
    }

    fn machine(&mut self, name: &str) -> Result<MachineInfo, BackendError> {
        let record = self.record(name)?;
        Ok(self.info(name, record))
    }

    fn run(&mut self, name: &str, command: &[String]) -> Result<RunOutput, BackendError> {
        let record = self.record(name)?;
        let Some(kind) = self.providers.get(&record.provider) else {
            return Err(BackendError::provider(format!(
                "machine {name:?} belongs to provider {:?}, which is not enabled in the config; \
                 enable it to run commands on this machine",
                record.provider
            )));
        };
        match kind {
            ProviderKind::Dummy => Ok(RunOutput {
                exit_code: Some(0),
                signal: None,
                stdout: format!(
                    "dummy machine {name} ran: {}\n",
                    crate::command::shell_join(command)
                ),
                stderr: String::new(),
            }),
            ProviderKind::Process { command: program } => {
                crate::command::run_in(&self.machine_dir(name), name, program.as_deref(), command)
                    .map_err(BackendError::provider)
            }
        }
    }

    fn destroy_machine(&mut self, name: &str) -> Result<MachineInfo, BackendError> {
        let info = self.info(name, self.record(name)?);
        let mut next = self.state.clone();
        next.machines.remove(name);
        self.commit(next)?;
        let dir = self.machine_dir(name);
        if dir.exists()
            && let Err(e) = fs::remove_dir_all(&dir)
        {
            tracing::warn!(
                "machine {name} is destroyed but its directory {} could not be removed: {e}",
                dir.display()
            );
        }
        Ok(info)
    }

    fn providers(&mut self) -> Result<Vec<ProviderInfo>, BackendError> {
        Ok(self
            .providers
            .iter()
            .map(|(name, kind)| ProviderInfo {
                name: name.clone(),
                kind: kind.name().to_string(),
                default: false,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::backend::ErrorKind;

    fn open(dir: &Path) -> JsonBackend {
        JsonBackend::open(dir, &Config::default()).unwrap()
    }

    #[test]
    fn machines_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(dir.path());
        b.create_machine("a", "dummy").unwrap();
        b.create_machine("b", "local").unwrap();
        assert!(dir.path().join("machines/b").is_dir());
        let mut b = open(dir.path());
        let names: Vec<_> = b
            .list_machines()
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        b.destroy_machine("b").unwrap();
        assert!(!dir.path().join("machines/b").exists());
        assert_eq!(open(dir.path()).list_machines().unwrap().len(), 1);
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn a_failed_save_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(dir.path());
        b.create_machine("a", "dummy").unwrap();
        // A directory where the temporary file goes makes the write fail.
        fs::create_dir(dir.path().join("state.json.tmp")).unwrap();
        let err = b.create_machine("b", "local").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Storage);
        assert!(err.message.contains("nothing was changed"), "{err}");
        assert_eq!(b.list_machines().unwrap().len(), 1);
        assert!(!dir.path().join("machines/b").exists());
        assert!(b.destroy_machine("a").is_err());
        assert_eq!(b.list_machines().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_state_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("state.json"), "{not json").unwrap();
        let err = JsonBackend::open(dir.path(), &Config::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("state.json"), "{msg}");
        assert!(msg.contains("move it away"), "{msg}");
    }

    #[test]
    fn process_machines_run_commands_in_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = open(dir.path());
        b.create_machine("p", "local").unwrap();
        let out = b.run("p", &["pwd".to_string()]).unwrap();
        assert_eq!(out.exit_code, Some(0));
        assert!(out.stdout.trim_end().ends_with("machines/p"), "{out:?}");
        let out = b
            .run(
                "p",
                &["sh".into(), "-c".into(), "echo oops >&2; exit 3".into()],
            )
            .unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stderr, "oops\n");
        let err = b.run("p", &["/no/such/program".into()]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Provider);
    }

    #[test]
    fn a_configured_shell_gets_the_quoted_command() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.providers.insert(
            "sh".into(),
            crate::config::ProviderConfig {
                enabled: true,
                kind: ProviderKind::Process {
                    command: Some("/bin/sh".into()),
                },
            },
        );
        let mut b = JsonBackend::open(dir.path(), &config).unwrap();
        b.create_machine("s", "sh").unwrap();
        let out = b
            .run(
                "s",
                &["printf".into(), "%s|".into(), "it's".into(), "a b".into()],
            )
            .unwrap();
        assert_eq!(out.stdout, "it's|a b|");
    }

    #[test]
    fn machines_of_a_disabled_provider_are_stopped() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).create_machine("a", "local").unwrap();
        let mut config = Config::default();
        config.providers.get_mut("local").unwrap().enabled = false;
        let mut b = JsonBackend::open(dir.path(), &config).unwrap();
        let m = b.machine("a").unwrap();
        assert_eq!(m.status, MachineStatus::Stopped);
        assert!(m.error.unwrap().contains("not enabled"));
        assert_eq!(
            b.run("a", &["true".into()]).unwrap_err().kind,
            ErrorKind::Provider
        );
        b.destroy_machine("a").unwrap();
    }
}
