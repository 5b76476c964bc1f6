//! The command line (clap derive types only; [`app`] acts on them). The operations'
//! subcommands come from the list in [`crate::ops`]; `init`, `daemon`, `agent`,
//! `hob-client`, `state …` and the hidden `container-init` are not requests.

pub mod app;
pub mod client;
pub mod columns;
pub mod connect;
pub mod copy;
pub mod copy_progress;
pub mod events;
#[cfg(test)]
mod older_daemon;
pub mod outcome;
pub mod output;
pub mod progress;
pub mod raw_terminal;
pub mod run_stream;
pub mod share_stream;
pub mod share_text;
pub mod state;
pub mod terminal;

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};

use crate::ops::Request;

/// Manage machines through a gobs boss: create them with a provider, list, run commands on
/// them, destroy them.
///
/// Commands talk to `gobs-app daemon` when one serves the state directory, and otherwise
/// open the state themselves; the results are the same.
///
/// A machine shared with you (`gobs-app share`) is used with its URI alone: `gobs-app
/// --connect URI run|put-file|get-file|status …` (see `gobs-app --connect URI --help`).
#[derive(Debug, Parser)]
#[command(name = "gobs-app", version, propagate_version = true)]
pub struct Cli {
    /// Config file [default: STATE_DIR/config.toml if it exists, else built-in defaults]
    #[arg(long, global = true, value_name = "FILE", env = "GOBS_CONFIG")]
    pub config: Option<PathBuf>,

    /// State directory [default: $XDG_STATE_HOME/gobs, else ~/.local/state/gobs]
    #[arg(long, global = true, value_name = "DIR", env = "GOBS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Log more to stderr (-v info, -vv debug, -vvv trace); without it, $RUST_LOG applies
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Print JSON for programs instead of text for people (errors too, on stderr)
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands: the operations, plus `init` and `daemon`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented default config file (to --config, $GOBS_CONFIG or
    /// STATE_DIR/config.toml)
    Init {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },

    /// Serve the state directory in the foreground until SIGINT or SIGTERM
    Daemon,

    /// Run on a machine: register with the boss over OCapN and serve its bindings
    /// (status, run, put-file, get-file), reconnecting whenever the session is lost
    HobClient {
        /// The machine's hob-client state (its identity, the boss's sturdyref)
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The one-time registration sturdyref the boss issued (only needed until the
        /// machine registered)
        #[arg(long, value_name = "URI", env = "GOBS_HOB_REGISTRATION")]
        registration: Option<String>,
    },

    /// Run a host agent in the foreground (a daemon of this host's machines that a boss
    /// reaches over OCapN) until SIGINT or SIGTERM
    Agent {
        /// The one-time enrolment URI `gobs-app host add NAME` printed on the boss (only
        /// needed until the agent joined)
        #[arg(long, value_name = "URI")]
        join: Option<String>,
        /// Where to listen for the boss, ADDR:PORT (port 0 picks one); kept, so only
        /// needed on the first start
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// The host the boss dials, if not the address listened on
        #[arg(long, value_name = "HOST")]
        public_host: Option<String>,
    },

    /// The first process of a `container` machine (started by the container provider)
    #[command(hide = true)]
    ContainerInit {
        /// The machine's directory on the host (its spec comes on standard input)
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },

    /// Open a login shell on a machine in a terminal (the machine's $SHELL, else /bin/sh):
    /// `run -t NAME -- <login shell>`; exits with the shell's exit code
    Shell {
        /// The machine's name
        name: crate::model::MachineName,
        /// End the shell after this long, e.g. "8h" [default: its provider's run_timeout]
        #[arg(long, value_name = "DURATION")]
        timeout: Option<crate::config::human::HumanDuration>,
    },

    /// Work on the state directory's store itself: salvage a damaged one (stop the daemon
    /// first)
    #[command(subcommand)]
    State(state::StateCommand),

    /// An operation (see [`crate::ops`]).
    #[command(flatten)]
    Op(Request),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ops::{GetFile, PutFile, Run};
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere_and_run_takes_everything_after_dashes() {
        let cli = Cli::try_parse_from([
            "gobs-app",
            "run",
            "web-1",
            "--state-dir",
            "/s",
            "-vv",
            "--",
            "ls",
            "-l",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.state_dir, Some(PathBuf::from("/s")));
        assert_eq!(cli.verbose, 2);
        assert!(!cli.json);
        match cli.command {
            Command::Op(Request::Run(Run {
                name,
                command,
                timeout,
                raw,
                ..
            })) => {
                assert_eq!(name.as_str(), "web-1");
                assert_eq!(command, ["ls", "-l", "--json"]);
                assert_eq!((timeout, raw), (None, false));
            }
            other => panic!("{other:?}"),
        }
        // `-t` asks for a terminal; `shell` is a login shell in one.
        let cli = Cli::try_parse_from(["gobs-app", "run", "-t", "m", "--", "top"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Op(Request::Run(Run { terminal: true, .. }))
        ));
        let cli = Cli::try_parse_from(["gobs-app", "shell", "m", "--timeout", "8h"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Shell {
                timeout: Some(_),
                ..
            }
        ));
        let cli = Cli::try_parse_from(["gobs-app", "list-machines", "--json"]).unwrap();
        assert!(cli.json);
    }

    #[test]
    fn put_file_and_get_file_take_their_paths_in_order() {
        let cli = Cli::try_parse_from([
            "gobs-app",
            "put-file",
            "web-1",
            "./a.bin",
            "/tmp/a.bin",
            "--mode",
            "0640",
        ])
        .unwrap();
        match cli.command {
            Command::Op(Request::PutFile(PutFile {
                name,
                path,
                mode,
                content,
                local,
                ..
            })) => {
                assert_eq!(name.as_str(), "web-1");
                assert_eq!(local, PathBuf::from("./a.bin"));
                assert_eq!(path, "/tmp/a.bin");
                assert_eq!(mode, Some(crate::files::FileMode(0o640)));
                assert!(content.0.is_empty(), "read later, not while parsing");
            }
            other => panic!("{other:?}"),
        }
        let err = Cli::try_parse_from(["gobs-app", "put-file", "w", "a", "/b", "--mode", "rw"])
            .unwrap_err();
        assert!(err.to_string().contains("octal"), "{err}");
        assert!(Cli::try_parse_from(["gobs-app", "put-file", "w", "a"]).is_err());
        for (args, local) in [
            (&["gobs-app", "get-file", "w", "/etc/motd"][..], None),
            (
                &["gobs-app", "get-file", "w", "/etc/motd", "-"][..],
                Some("-"),
            ),
            (
                &["gobs-app", "get-file", "w", "/etc/motd", "m.txt"][..],
                Some("m.txt"),
            ),
        ] {
            match Cli::try_parse_from(args).unwrap().command {
                Command::Op(Request::GetFile(GetFile { path, local: l, .. })) => {
                    assert_eq!(path, "/etc/motd");
                    assert_eq!(l, local.map(PathBuf::from));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn the_local_paths_never_travel() {
        let request = Request::GetFile(GetFile {
            name: "w".parse().unwrap(),
            path: "/x".into(),
            local: Some("/home/me/secret-place".into()),
            recursive: false,
            stream: false,
            io: None,
        });
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json, r#"{"op":"get-file","name":"w","path":"/x"}"#);
        let back: Request = serde_json::from_str(&json).unwrap();
        assert!(matches!(
            back,
            Request::GetFile(GetFile { local: None, .. })
        ));
        let request = Request::PutFile(PutFile {
            name: "w".parse().unwrap(),
            path: "/x".into(),
            mode: Some(crate::files::FileMode(0o600)),
            content: crate::files::FileContent(vec![0, 1, 255]),
            local: "/home/me/a".into(),
            recursive: true,
            stream: false,
            io: None,
        });
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            r#"{"op":"put-file","name":"w","path":"/x","mode":384,"content":"AAH/"}"#
        );
    }

    #[test]
    fn run_takes_a_time_limit_and_raw_before_the_dashes() {
        let cli = Cli::try_parse_from([
            "gobs-app",
            "run",
            "--timeout",
            "2h",
            "--raw",
            "web-1",
            "--",
            "make",
        ])
        .unwrap();
        match cli.command {
            Command::Op(Request::Run(Run { timeout, raw, .. })) => {
                assert_eq!(timeout.map(|t| t.0.as_secs()), Some(7200));
                assert!(raw);
            }
            other => panic!("{other:?}"),
        }
        let err = Cli::try_parse_from(["gobs-app", "run", "--timeout", "soon", "w", "--", "x"])
            .unwrap_err();
        assert!(err.to_string().contains("is not a duration"), "{err}");
    }

    #[test]
    fn run_needs_a_command() {
        assert!(Cli::try_parse_from(["gobs-app", "run", "web-1"]).is_err());
    }

    #[test]
    fn machine_names_are_checked_while_parsing() {
        let err = Cli::try_parse_from(["gobs-app", "machine", "../etc"]).unwrap_err();
        assert!(err.to_string().contains("invalid machine name"), "{err}");
        for op in [
            "create-machine",
            "list-machines",
            "machine",
            "run",
            "destroy-machine",
            "providers",
            "put-file",
            "get-file",
            "events",
        ] {
            let help = Cli::try_parse_from(["gobs-app", op, "--help"]).unwrap_err();
            assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp, "{op}");
        }
    }
}
