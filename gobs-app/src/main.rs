//! The `gobs-app` binary: parse the command line, set up logging, run, report.

use std::process::ExitCode;

use clap::Parser;
use gobs_app::cli::Cli;
use gobs_app::cli::terminal::Terminal;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Whatever gobs-app creates (stores, config, machine directories, sockets) is for its
    // owner alone; the code sets tighter modes where it matters, and this covers the rest
    // (the runtime's store files among them).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if gobs_app::cli::connect::asked(&args) {
        return connect(&args);
    }
    let cli = Cli::parse_from(args);
    init_logging(cli.verbose);
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let terminal = Terminal::detect();
    let env = |key: &str| std::env::var_os(key);
    match gobs_app::cli::app::run(&cli, env, terminal, &mut out, &mut err) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            gobs_app::cli::output::print_error(&error, cli.json, terminal, &mut err);
            ExitCode::FAILURE
        }
    }
}

/// `gobs-app --connect URI …`: a machine shared with the user, reached with the URI alone.
fn connect(args: &[std::ffi::OsString]) -> ExitCode {
    let cli = gobs_app::cli::connect::ConnectCli::parse_from(args);
    init_logging(cli.verbose);
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let terminal = Terminal::detect();
    match gobs_app::cli::connect::run(&cli, terminal, &mut out, &mut err) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            gobs_app::cli::output::print_error(&error, cli.json, terminal, &mut err);
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: `-v` info, `-vv` debug, `-vvv` trace; without `-v`, `$RUST_LOG`
/// (default: warnings only).
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => None,
        1 => Some("info"),
        2 => Some("debug"),
        _ => Some("trace"),
    };
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person: a daemon's log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
