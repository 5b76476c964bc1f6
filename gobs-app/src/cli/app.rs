//! What each command does: resolve the state directory and config, then `init`, run the
//! daemon, or send a request (daemon or embedded) and print the answer.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cli::progress::StepLines;
use crate::cli::terminal::{Neutral, Terminal};
use crate::cli::{Cli, Command};
use crate::cli::{client, copy, output, raw_terminal, run_stream};
use crate::config::state_dir::{self, StatePaths};
use crate::config::{DEFAULT_CONFIG_TOML, default_provider};
use crate::daemon;
use crate::error::AppError;
use crate::ops::{Request, Run};

/// Runs the parsed command line; returns the exit code. `env` reads the environment
/// variables the defaults come from (`$XDG_STATE_HOME`, `$HOME`); `$GOBS_STATE_DIR` and
/// `$GOBS_CONFIG` were read by clap, as the flags' values. `terminal` says which of `out`
/// and `err` are terminals, to be shown machines' bytes neutralised (unless `run --raw`).
pub fn run(
    cli: &Cli,
    env: impl Fn(&str) -> Option<OsString>,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, AppError> {
    let explicit_config = cli.config.clone().filter(|p| !p.as_os_str().is_empty());
    let state_paths = || -> Result<StatePaths, AppError> {
        let dir = state_dir::resolve(cli.state_dir.as_deref(), &env)?;
        let path = dir.path.clone();
        let paths = StatePaths::new(dir).map_err(|e| AppError::io("resolve", path, e))?;
        tracing::debug!(
            "state directory {} (from {})",
            paths.dir.display(),
            paths.source
        );
        Ok(paths)
    };
    let request = match &cli.command {
        Command::Init { force } => {
            let path = match explicit_config {
                Some(path) => path,
                None => {
                    let paths = state_paths()?;
                    paths
                        .create()
                        .map_err(|e| AppError::io("create state directory", &paths.dir, e))?;
                    paths.default_config()
                }
            };
            let choice = default_provider::for_this_host();
            let text = default_provider::config_text(DEFAULT_CONFIG_TOML, &choice);
            write_config(&path, &text, *force)?;
            let written = if cli.json {
                let path = path.display().to_string();
                let json = serde_json::json!({
                    "config": path,
                    "default_provider": choice.provider,
                    "why": choice.why,
                });
                writeln!(out, "{json}")
            } else {
                writeln!(
                    out,
                    "wrote the default config to {}\ndefault provider: {} ({})",
                    path.display(),
                    choice.provider,
                    choice.why
                )
            };
            written.map_err(AppError::Output)?;
            return Ok(0);
        }
        Command::Daemon => {
            daemon::run(&state_paths()?, explicit_config.as_deref())?;
            return Ok(0);
        }
        Command::HobClient { dir, registration } => {
            let options = crate::hob_net::client::ClientOptions {
                dir: dir.clone(),
                registration: registration.clone(),
            };
            crate::hob_net::client::run(&options)?;
            return Ok(0);
        }
        Command::Agent {
            join,
            listen,
            public_host,
        } => {
            let options = crate::hosts::agent::AgentOptions {
                join: join.clone(),
                listen: listen.clone(),
                public_host: public_host.clone(),
            };
            crate::hosts::agent::run(&state_paths()?, explicit_config.as_deref(), options)?;
            return Ok(0);
        }
        Command::ContainerInit { dir } => {
            crate::providers::container::init::run(dir).map_err(AppError::ContainerInit)?;
            return Ok(0);
        }
        Command::Op(Request::Events {
            machine,
            after,
            follow,
            ..
        }) => {
            let paths = state_paths()?;
            // Events carry machines' words (a failed machine's console, say).
            let mut out = Neutral::new(out, terminal.stdout);
            let code = crate::cli::events::run(
                &paths,
                explicit_config.as_deref(),
                machine.clone(),
                *after,
                *follow,
                cli.json,
                &mut out,
            )?;
            out.finish().map_err(AppError::Output)?;
            return Ok(code);
        }
        Command::State(command) => {
            let paths = state_paths()?;
            return crate::cli::state::run(
                command,
                &paths,
                explicit_config.as_deref(),
                cli.json,
                out,
            );
        }
        Command::Shell { name, timeout } => Request::Run(Run::login_shell(name.clone(), *timeout)),
        Command::Op(request) => request.clone(),
    };
    let request = match request {
        Request::Run(run) if run.terminal => Request::Run(with_terminal(run, cli.json, &env)?),
        request => request,
    };
    let terminal = match &request {
        Request::Run(Run { raw: true, .. } | Run { tty: Some(_), .. }) => Terminal::RAW,
        _ => terminal,
    };
    let paths = state_paths()?;
    if !cli.json {
        note_dummy_default(&request, explicit_config.as_deref(), &paths, err);
    }
    if let Request::Run(run) = &request
        && !cli.json
    {
        let config = explicit_config.as_deref();
        return run_stream::run(&paths, config, run.clone(), terminal, out, err);
    }
    // Copies stream, but for `get-file --json` to standard output (the bytes in the JSON).
    let config = explicit_config.as_deref();
    let via = copy::Via::State {
        paths: &paths,
        explicit_config: config,
    };
    if let Some(code) = copy::copy_and_print(&via, &request, cli.json, terminal, out, err)? {
        return Ok(code);
    }
    // Long work shows its steps, on a terminal only: piped, or with --json, the answer
    // comes alone.
    let mut request = request;
    let response = match request.progress_mut() {
        Some(_) if terminal.stderr && !cli.json => {
            let mut lines = StepLines::new(err);
            client::execute_watched(&paths, config, request, Some(&mut lines))?
        }
        _ => client::execute(&paths, config, request)?,
    };
    output::print(&response, cli.json, terminal, out, err)
}

/// `run` given the terminal `-t` asks for: this one's type (`$TERM`, read by `env`) and
/// size; refused with `--json` (a terminal's screen is no JSON) or without a terminal.
fn with_terminal(
    mut run: Run,
    json: bool,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Run, AppError> {
    let refused = |message: String| AppError::Backend(crate::model::BackendError::invalid(message));
    if json {
        return Err(refused(
            "run -t (and shell) draws the machine's terminal here, which has no --json form; \
             drop --json, or drop -t to get the whole output as JSON"
                .into(),
        ));
    }
    let term = env("TERM").and_then(|t| t.into_string().ok());
    run.tty = Some(raw_terminal::local_tty(term).map_err(refused)?);
    Ok(run)
}

/// Says (on `err`) why a machine about to be made with the built-in default provider is a
/// dummy, and what to install for a real one: the one line a new user needs.
fn note_dummy_default(
    request: &Request,
    explicit_config: Option<&Path>,
    paths: &StatePaths,
    err: &mut dyn Write,
) {
    let pinned = std::env::var_os(default_provider::ENV).is_some_and(|v| !v.is_empty());
    let configured = pinned || explicit_config.is_some() || paths.default_config().exists();
    if let Some(note) = dummy_note(request, configured, default_provider::for_this_host) {
        let _ = writeln!(err, "{note}");
    }
}

/// The note for `request` when it makes a machine with the default provider, no config
/// (nor `$GOBS_DEFAULT_PROVIDER`) chose it, and the host's `choice` is a dummy.
fn dummy_note(
    request: &Request,
    configured: bool,
    choice: impl FnOnce() -> default_provider::ProviderChoice,
) -> Option<String> {
    let by_default = matches!(request, Request::CreateMachine { provider: None, .. });
    if !by_default || configured {
        return None;
    }
    let choice = choice();
    (choice.provider == "dummy").then(|| format!("note: {}", choice.why))
}

/// Writes config `text` to `path`; refuses to replace a file unless `force`.
pub fn write_config(path: &Path, text: &str, force: bool) -> Result<(), AppError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| AppError::io("create directory", parent, e))?;
    }
    if !force {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => AppError::ConfigExists {
                    path: path.to_path_buf(),
                },
                _ => AppError::io("create config file", path, e),
            })?;
        return file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| AppError::io("write config file", path, e));
    }
    let tmp = temporary_sibling(path);
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        AppError::io("write config file", path, e)
    })
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn only_an_unconfigured_default_dummy_gets_the_note() {
        use default_provider::ProviderChoice;
        let create = |provider: Option<&str>| Request::CreateMachine {
            name: "web-1".parse().unwrap(),
            provider: provider.map(str::to_string),
            host: None,
            progress: Default::default(),
        };
        let chosen = |provider: &str| {
            let provider = provider.to_string();
            move || ProviderChoice {
                provider,
                why: "machines are dummy (they run nothing): install passt".into(),
            }
        };
        assert_eq!(
            dummy_note(&create(None), false, chosen("dummy")).as_deref(),
            Some("note: machines are dummy (they run nothing): install passt")
        );
        assert_eq!(dummy_note(&create(None), false, chosen("container")), None);
        assert_eq!(dummy_note(&create(None), true, chosen("dummy")), None);
        assert_eq!(
            dummy_note(&create(Some("dummy")), false, chosen("dummy")),
            None
        );
        assert_eq!(
            dummy_note(&Request::ListMachines {}, false, chosen("dummy")),
            None
        );
    }

    #[test]
    fn init_refuses_to_overwrite_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        write_config(&path, DEFAULT_CONFIG_TOML, false).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), DEFAULT_CONFIG_TOML);
        fs::write(&path, "# mine\n").unwrap();
        let err = write_config(&path, DEFAULT_CONFIG_TOML, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "# mine\n");
        write_config(&path, DEFAULT_CONFIG_TOML, true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), DEFAULT_CONFIG_TOML);
        assert!(!temporary_sibling(&path).exists());
    }
}
