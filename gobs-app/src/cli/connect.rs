//! `gobs-app --connect URI run|put-file|get-file|status …`: using a machine shared with
//! you ([`crate::shares`]) with nothing but the URI `gobs-app share` printed. No daemon, no
//! state directory: the command dials the URI with an OCapN node made for the call
//! (tcp-tls, dial-only, a fresh identity) and calls the share, which answers as the
//! control socket does; the answer prints as the same command's would.
//!
//! Its command line is its own ([`ConnectCli`]): the machine is the share's, so the
//! commands take no machine name. [`asked`] tells `main` which one to parse.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};

use clap::{ArgAction, Parser, Subcommand};

use crate::backend::timeouts::Timeouts;
use crate::cli::run_stream::Shown;
use crate::cli::share_stream::ShareLink;
use crate::cli::terminal::Terminal;
use crate::cli::{copy, output};
use crate::config::human::HumanDuration;
use crate::error::AppError;
use crate::files::{FileContent, FileMode};
use crate::model::{BackendError, ErrorKind, MachineName};
use crate::ops::{GetFile, PutFile, Request, Response, Run};
use crate::run_io::CHUNK;

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
    /// Copy a local file (or, with -r, a tree) onto the shared machine
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
        /// Copy a directory and everything in it
        #[arg(short, long)]
        recursive: bool,
    },
    /// Copy a file (or, with -r, a tree) off the shared machine to a local path, or a
    /// file to standard output
    GetFile {
        /// The file on the machine (an absolute path)
        #[arg(value_name = "REMOTE_PATH")]
        path: String,
        /// Where to write it; `-` or nothing: standard output
        #[arg(value_name = "LOCAL_PATH")]
        local: Option<PathBuf>,
        /// Copy a directory and everything in it
        #[arg(short, long)]
        recursive: bool,
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
    let link = ShareLink::dial(&cli.connect)?;
    let Some(request) = request(&cli.command)? else {
        let answer = link.answer(link.grant().send().status(), Timeouts::default().answer)?;
        return output::print(&read(&answer)?, cli.json, terminal, out, err);
    };
    let via = copy::Via::Share(&link);
    if let Some(code) = copy::copy_and_print(&via, &request, cli.json, terminal, out, err)? {
        return Ok(code);
    }
    let terminal = match &cli.command {
        Shared::Run { raw: true, .. } => Terminal::RAW,
        _ => terminal,
    };
    let response = match &request {
        Request::Run(_) => {
            let mut shown = Shown::new(&mut *out, &mut *err, terminal);
            let response = link.exchange(&request, stdin_chunks(), &mut |which, bytes| {
                shown
                    .write(which, &bytes)
                    .map_err(|e| format!("cannot write the command's output here: {e}"))
            })?;
            shown.finish().map_err(AppError::Output)?;
            response
        }
        // `get-file --json` to standard output: whole, its bytes in the JSON.
        _ => {
            let json = serde_json::to_string(&request).map_err(|e| {
                backend(
                    ErrorKind::Internal,
                    format!("cannot write the request: {e}"),
                )
            })?;
            let asked = link.grant().send().get_file(json);
            read(&link.answer(asked, Timeouts::default().files)?)?
        }
    };
    output::print(&response, cli.json, terminal, out, err)
}

/// An answer of the share (JSON).
fn read(answer: &str) -> Result<Response, AppError> {
    serde_json::from_str(answer).map_err(|e| {
        backend(
            ErrorKind::Provider,
            format!("the share answered what this gobs-app cannot read ({e})"),
        )
    })
}

/// This process's standard input, in chunks, on a thread of its own (it ends with it).
fn stdin_chunks() -> Receiver<Vec<u8>> {
    let (tx, rx) = sync_channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut chunk = vec![0; CHUNK];
            match stdin.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.send(chunk).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
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
            stream: true,
            terminal: false,
            tty: None,
            io: None,
        }),
        Shared::PutFile {
            local,
            path,
            mode,
            recursive,
        } => Request::PutFile(PutFile {
            name,
            path: path.clone(),
            mode: *mode,
            recursive: *recursive,
            content: FileContent::default(),
            local: local.clone(),
            stream: true,
            io: None,
        }),
        Shared::GetFile {
            path,
            local,
            recursive,
        } => Request::GetFile(GetFile {
            name,
            path: path.clone(),
            local: local.clone(),
            recursive: *recursive,
            stream: true,
            io: None,
        }),
        Shared::Status => return Ok(None),
    }))
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
