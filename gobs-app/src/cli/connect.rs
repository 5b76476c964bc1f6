//! `gobs-app --connect URI run|put-file|get-file|status …`: using a machine shared with
//! you ([`crate::shares`]) with nothing but the URI `gobs-app share` printed. No daemon, no
//! state directory: the command dials the URI with an OCapN node made for the call
//! (tcp-tls, dial-only, a fresh identity) and calls the share, which answers as the
//! control socket does; the answer prints as the same command's would.
//!
//! Its command line is its own ([`ConnectCli`]): the machine is the share's, so the
//! commands take no machine name. [`asked`] tells `main` which one to parse.

use std::ffi::OsString;
use std::future::IntoFuture;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};
use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::netlayer::{Netlayer, TcpTls};
use gobs_ocapn::node::Node;
use gobs_runtime::{Promise, Ref};

use crate::backend::timeouts::Timeouts;
use crate::cli::terminal::Terminal;
use crate::cli::{copy, output, whole_copy};
use crate::config::human::HumanDuration;
use crate::error::AppError;
use crate::files::{FileContent, FileMode};
use crate::hosts::link::Driven;
use crate::model::{BackendError, ErrorKind, MachineName};
use crate::ops::{GetFile, PutFile, Request, Response, Run};
use crate::shares::saved::Grant;

/// How long reaching the share may take.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(60);

/// Use a machine shared with you (`gobs-app share` on its boss printed the URI): needs no
/// daemon and no state directory.
#[derive(Debug, Parser)]
#[command(name = "gobs-app", version)]
pub struct ConnectCli {
    /// The share's URI (ocapn://…), as `gobs-app share` printed it
    #[arg(long, value_name = "URI")]
    pub connect: String,

    /// Log more to stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Print JSON for programs instead of text for people (errors too, on stderr)
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do on the shared machine.
    #[command(subcommand)]
    pub command: Shared,
}

/// What a share may be asked (what it allows is the share's own business).
#[derive(Debug, Subcommand)]
pub enum Shared {
    /// Run a command on the shared machine; exits with the command's exit code
    Run {
        /// Kill the command after this long, e.g. "90s" [default: its provider's]
        #[arg(long, value_name = "DURATION")]
        timeout: Option<HumanDuration>,
        /// Write the command's output to a terminal as it is, escape sequences included
        #[arg(long)]
        raw: bool,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Copy a local file onto the shared machine (at most 512 KiB)
    PutFile {
        /// The file to copy
        #[arg(value_name = "LOCAL_PATH")]
        local: PathBuf,
        /// Where it goes on the machine (an absolute path)
        #[arg(value_name = "REMOTE_PATH")]
        path: String,
        /// Its permission bits, in octal [default: the local file's]
        #[arg(long, value_name = "OCTAL")]
        mode: Option<FileMode>,
    },
    /// Copy a file off the shared machine to a local file, or to standard output
    GetFile {
        /// The file on the machine (an absolute path)
        #[arg(value_name = "REMOTE_PATH")]
        path: String,
        /// Where to write it; `-` or nothing: standard output
        #[arg(value_name = "LOCAL_PATH")]
        local: Option<PathBuf>,
    },
    /// Show the shared machine's record
    Status,
}

/// Whether the command line `args` (the program first) uses a share: `--connect` before
/// any `--`.
pub fn asked(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .filter_map(|a| a.to_str())
        .any(|a| a == "--connect" || a.starts_with("--connect="))
}

/// Does what `cli` asks of the share; returns the exit code.
pub fn run(
    cli: &ConnectCli,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, AppError> {
    let request = request(&cli.command)?;
    let destination = request.as_ref().and_then(copy::destination);
    let terminal = match &cli.command {
        Shared::Run { raw: true, .. } => Terminal::RAW,
        _ => terminal,
    };
    let answer = call(&cli.connect, request)?;
    let response: Response = serde_json::from_str(&answer).map_err(|e| {
        backend(
            ErrorKind::Provider,
            format!("the share answered what this gobs-app cannot read ({e})"),
        )
    })?;
    match (&response, destination) {
        (Response::GetFile(file), Some(local)) => {
            whole_copy::write_local(&local, &file.content.0)?;
            let mode = std::fs::metadata(&local).map_or(0, |m| {
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777
            });
            let written = whole_copy::written(&file.content.0, mode);
            output::print_saved(file, &local, &written, cli.json, out).map_err(AppError::Output)?;
            Ok(0)
        }
        _ => output::print(&response, cli.json, terminal, out, err),
    }
}

/// The request `command` sends (`None`: `status`, which takes none). The machine named in
/// it is a placeholder: the share puts its own in.
fn request(command: &Shared) -> Result<Option<Request>, AppError> {
    let name: MachineName = "shared".parse().map_err(|_| {
        backend(
            ErrorKind::Internal,
            "a placeholder is no machine name".into(),
        )
    })?;
    Ok(Some(match command {
        Shared::Run {
            timeout, command, ..
        } => Request::Run(Run {
            name,
            command: command.clone(),
            timeout: *timeout,
            raw: false,
            stream: false,
            terminal: false,
            tty: None,
            io: None,
        }),
        Shared::PutFile { local, path, mode } => whole_copy::prepare(Request::PutFile(PutFile {
            name,
            path: path.clone(),
            mode: *mode,
            recursive: false,
            content: FileContent::default(),
            local: local.clone(),
            stream: false,
            io: None,
        }))?,
        Shared::GetFile { path, local } => Request::GetFile(GetFile {
            name,
            path: path.clone(),
            local: local.clone(),
            recursive: false,
            stream: false,
            io: None,
        }),
        Shared::Status => return Ok(None),
    }))
}

/// Dials `uri` and asks its share for `request` (`status` if `None`): the answer (JSON).
fn call(uri: &str, request: Option<Request>) -> Result<String, AppError> {
    let limit = match &request {
        Some(Request::Run(run)) => run
            .timeout
            .map_or(Timeouts::default().run, |t| t.0 + Duration::from_secs(120)),
        _ => Timeouts::default().files,
    };
    let json = request
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| {
            backend(
                ErrorKind::Internal,
                format!("cannot write the request: {e}"),
            )
        })?;
    let runtime = Driven::start().map_err(|e| backend(ErrorKind::Internal, e))?;
    let asking = async move {
        let layers = vec![Arc::new(TcpTls::dial_only()) as Arc<dyn Netlayer>];
        let node = Node::start(layers, SessionConfig::default())
            .map_err(|e| format!("cannot start a node to dial it: {e}"))?;
        let grant: Ref<Grant> = tokio::time::timeout(CONNECT_LIMIT, node.enliven(uri))
            .await
            .map_err(|_| {
                format!(
                    "nothing answered within {}",
                    humantime::format_duration(CONNECT_LIMIT)
                )
            })?
            .map_err(|e| e.to_string())?;
        let asked: Promise<String> = match (&request, json) {
            (Some(Request::Run(_)), Some(json)) => grant.send().run(json),
            (Some(Request::PutFile(_)), Some(json)) => grant.send().put_file(json),
            (Some(Request::GetFile(_)), Some(json)) => grant.send().get_file(json),
            _ => grant.send().status(),
        };
        let answered = tokio::time::timeout(limit, asked.into_future()).await;
        Ok::<_, String>((node, answered))
    };
    let reached = runtime.handle.block_on(asking);
    let (_node, answered) = reached.map_err(|e| {
        backend(
            ErrorKind::Provider,
            format!("cannot reach the share at {uri}: {e}"),
        )
    })?;
    match answered {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(backend(
            ErrorKind::Provider,
            format!("the share did not answer: {e}; the boss may have stopped, or be unreachable"),
        )),
        Err(_) => Err(backend(
            ErrorKind::Provider,
            format!(
                "the share did not answer within {}",
                humantime::format_duration(limit)
            ),
        )),
    }
}

fn backend(kind: ErrorKind, message: String) -> AppError {
    AppError::Backend(BackendError::new(kind, message))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        ConnectCli::command().debug_assert();
    }

    #[test]
    fn connect_before_the_dashes_asks_for_a_share() {
        assert!(asked(&args(&[
            "gobs-app",
            "--connect",
            "ocapn://x",
            "run",
            "--",
            "ls"
        ])));
        assert!(asked(&args(&["gobs-app", "--connect=ocapn://x", "status"])));
        assert!(!asked(&args(&[
            "gobs-app",
            "run",
            "m",
            "--",
            "x",
            "--connect"
        ])));
        assert!(!asked(&args(&["gobs-app", "list-machines"])));
        let cli =
            ConnectCli::try_parse_from(["gobs-app", "--connect", "u", "run", "--", "id"]).unwrap();
        let request = request(&cli.command).unwrap().unwrap();
        assert_eq!(request.op(), "run");
        assert!(
            ConnectCli::try_parse_from(["gobs-app", "--connect", "u", "list-machines"]).is_err()
        );
    }
}
