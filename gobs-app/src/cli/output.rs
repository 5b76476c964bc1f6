//! Printing answers: aligned tables and sentences for people, JSON (`--json`) for programs.
//! Whatever mode answered (daemon or embedded), the same [`Response`] prints the same way.
//! What goes to a terminal is neutralised first ([`crate::cli::terminal`]): answers carry
//! machines' bytes.

use std::io::{self, Write};

use std::path::Path;

use crate::cli::columns::{rfc3339, table};
use crate::cli::share_text;
use crate::cli::terminal::{Neutral, Terminal};
use crate::error::AppError;
use crate::files::unpack::Unpacked;
use crate::files::{FileCopied, RemoteFile};
use crate::hosts::model::{HostAnswer, HostInfo, LOCAL_HOST};
use crate::model::{MachineInfo, ProviderInfo, RunOutput};
use crate::ops::Response;

/// Prints `response`, neutralised where `terminal` says; returns the process exit code
/// (the command's own for `run`).
pub fn print(
    response: &Response,
    json: bool,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, AppError> {
    let mut out = Neutral::new(out, terminal.stdout);
    let mut err = Neutral::new(err, terminal.stderr);
    let code = print_plain(response, json, &mut out, &mut err)?;
    out.finish()
        .and_then(|()| err.finish())
        .map_err(AppError::Output)?;
    Ok(code)
}

fn print_plain(
    response: &Response,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, AppError> {
    let written = match response {
        Response::Run(run) => return print_run(run, json, out, err).map_err(AppError::Output),
        Response::Error(e) => return Err(AppError::Backend(e.clone())),
        response if json => print_json(response, out),
        Response::CreateMachine(m) => writeln!(
            out,
            "created machine {} (provider {}, {})",
            m.name, m.provider, m.status
        ),
        Response::DestroyMachine(m) => writeln!(out, "destroyed machine {}", m.name),
        Response::Machine(m) => out.write_all(machine_details(m).as_bytes()),
        Response::ListMachines(list) => out.write_all(machine_table(list).as_bytes()),
        Response::Providers(list) => out.write_all(provider_table(list).as_bytes()),
        Response::PutFile(copied) => writeln!(out, "{}", copied_text(copied)),
        // To standard output: the bytes, nothing else (`get-file m /f > f` is a copy).
        Response::GetFile(file) => out.write_all(&file.content.0).and_then(|()| out.flush()),
        Response::Web(web) => {
            let shown = |url: &Option<String>| url.clone().unwrap_or_else(|| "off".into());
            writeln!(out, "metrics:   {}", shown(&web.metrics))
                .and_then(|()| writeln!(out, "dashboard: {}", shown(&web.dashboard)))
        }
        Response::Events(page) => page.events.iter().try_for_each(|e| writeln!(out, "{e}")),
        Response::Hosts(list) => out.write_all(host_table(list).as_bytes()),
        Response::Host(answer) => out.write_all(host_text(answer).as_bytes()),
        Response::Share(answer) => out.write_all(share_text::shared(answer).as_bytes()),
        Response::Shares(list) => out.write_all(share_text::list(list).as_bytes()),
        Response::Revoke(share) => out.write_all(share_text::revoked(share).as_bytes()),
        // A machine operation added later prints as JSON until it gets words of its own.
        #[allow(unreachable_patterns)]
        other => print_json(other, out),
    };
    written.map_err(AppError::Output)?;
    Ok(0)
}

/// Prints what `get-file` did when it wrote the file it got to `local`.
pub fn print_saved(
    file: &RemoteFile,
    local: &Path,
    written: &Unpacked,
    json: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let size = written.bytes;
    if json {
        let value = serde_json::json!({
            "machine": file.machine,
            "path": file.path,
            "size": size,
            "files": written.files,
            "sha256": written.sha256,
            "local": local.display().to_string(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)
    } else if written.sha256.is_none() {
        writeln!(
            out,
            "copied {} ({} files, {size} bytes) from machine {} to {}",
            file.path,
            written.files,
            file.machine,
            local.display()
        )
    } else {
        writeln!(
            out,
            "copied {} ({size} bytes) from machine {} to {}",
            file.path,
            file.machine,
            local.display()
        )
    }
}

fn copied_text(c: &FileCopied) -> String {
    match &c.sha256 {
        Some(sha) => format!(
            "copied {} bytes to {} on machine {} (mode {}, sha256 {sha})",
            c.size, c.path, c.machine, c.mode
        ),
        None => format!(
            "copied {} files ({} bytes) to {} on machine {} (mode {})",
            c.files, c.size, c.path, c.machine, c.mode
        ),
    }
}

/// Prints an error to stderr: `error: …` for people, `{"error":{"kind":…,"message":…}}` for
/// programs; neutralised if stderr is a terminal (`terminal.stderr`).
pub fn print_error(error: &AppError, json: bool, terminal: Terminal, err: &mut dyn Write) {
    let mut err = Neutral::new(err, terminal.stderr);
    let _ = if json {
        let value = serde_json::json!({
            "error": { "kind": error.kind(), "message": error.to_string() }
        });
        writeln!(err, "{value}")
    } else {
        writeln!(err, "error: {error}")
    };
    let _ = err.finish();
}

fn print_json(response: &Response, out: &mut dyn Write) -> io::Result<()> {
    let text = serde_json::to_string_pretty(&response.data_json()?)?;
    writeln!(out, "{text}")
}

fn print_run(
    run: &RunOutput,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(run)?)?;
    } else {
        out.write_all(run.stdout.as_bytes())?;
        out.flush()?;
        err.write_all(run.stderr.as_bytes())?;
    }
    Ok(run_exit_code(run))
}

/// `run` exits like the command did: its code, or 128 + the signal that ended it.
pub fn run_exit_code(run: &RunOutput) -> u8 {
    match (run.exit_code, run.signal) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

fn machine_details(m: &MachineInfo) -> String {
    let mut rows = vec![("name", m.name.clone())];
    if let Some(host) = &m.host {
        rows.push(("host", host.clone()));
    }
    rows.extend([
        ("provider", m.provider.clone()),
        ("status", m.status.to_string()),
        ("created", rfc3339(m.created_at)),
        ("bindings", list_or_dash(&m.bindings)),
    ]);
    if let Some(error) = &m.error {
        rows.push(("error", error.clone()));
    }
    rows.iter()
        .map(|(key, value)| format!("{:<9} {value}\n", format!("{key}:")))
        .collect()
}

fn machine_table(list: &[MachineInfo]) -> String {
    if list.is_empty() {
        return "no machines; create one with `gobs-app create-machine NAME`\n".to_string();
    }
    // A HOST column once machines are on more hosts than the boss's own.
    let hosts = list.iter().any(|m| m.host.is_some());
    let rows = list.iter().map(|m| {
        let mut row = vec![m.name.clone()];
        if hosts {
            row.push(m.host.clone().unwrap_or_else(|| LOCAL_HOST.into()));
        }
        row.extend([
            m.provider.clone(),
            m.status.to_string(),
            rfc3339(m.created_at),
            list_or_dash(&m.bindings),
            m.error.clone().unwrap_or_default(),
        ]);
        row
    });
    let mut header = vec!["NAME"];
    if hosts {
        header.push("HOST");
    }
    header.extend(["PROVIDER", "STATUS", "CREATED", "BINDINGS", "ERROR"]);
    table(&header, rows)
}

fn host_table(list: &[HostInfo]) -> String {
    let rows = list.iter().map(|h| {
        let since = h.since.map(rfc3339).unwrap_or_else(|| "-".into());
        vec![
            h.name.clone(),
            h.state.to_string(),
            since,
            h.machines.to_string(),
        ]
    });
    table(&["NAME", "STATE", "SINCE", "MACHINES"], rows)
}

fn host_text(answer: &HostAnswer) -> String {
    match &answer.enrolment {
        Some(uri) => format!(
            "added host {}; on it, run (this URI works once, keep it secret):\n  gobs-app agent \
             --listen ADDR:PORT --join '{uri}'\n",
            answer.name
        ),
        None if !answer.destroyed.is_empty() => format!(
            "destroyed machines {} and removed host {}\n",
            answer.destroyed.join(", "),
            answer.name
        ),
        None if !answer.forgotten.is_empty() => format!(
            "forgot machines {} (whatever runs of them on the host is left as it is) and \
             removed host {}\n",
            answer.forgotten.join(", "),
            answer.name
        ),
        None => format!("removed host {}\n", answer.name),
    }
}

fn provider_table(list: &[ProviderInfo]) -> String {
    if list.is_empty() {
        return "no providers are enabled; add a [providers.NAME] table to the config\n"
            .to_string();
    }
    let rows = list.iter().map(|p| {
        vec![
            p.name.clone(),
            p.kind.clone(),
            if p.default { "yes" } else { "" }.to_string(),
        ]
    });
    table(&["NAME", "KIND", "DEFAULT"], rows)
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(",")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::MachineStatus;

    fn machine(name: &str) -> MachineInfo {
        MachineInfo {
            name: name.into(),
            provider: "dummy".into(),
            status: MachineStatus::Running,
            created_at: 86_400 * 365,
            bindings: vec![],
            error: None,
            host: None,
        }
    }

    fn printed(response: Response, json: bool) -> (String, String, u8) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = print(&response, json, Terminal::RAW, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            code,
        )
    }

    #[test]
    fn machine_list_is_an_aligned_table() {
        let (out, _, code) = printed(
            Response::ListMachines(vec![machine("web-1"), machine("db")]),
            false,
        );
        assert_eq!(code, 0);
        assert_eq!(
            out,
            "NAME   PROVIDER  STATUS   CREATED               BINDINGS  ERROR\n\
             web-1  dummy     running  1971-01-01T00:00:00Z  -\n\
             db     dummy     running  1971-01-01T00:00:00Z  -\n"
        );
    }

    #[test]
    fn machines_of_other_hosts_add_a_host_column() {
        let mut remote = machine("web-2");
        remote.host = Some("h1".into());
        let (out, _, _) = printed(
            Response::ListMachines(vec![machine("web-1"), remote]),
            false,
        );
        assert_eq!(
            out,
            "NAME   HOST   PROVIDER  STATUS   CREATED               BINDINGS  ERROR\n\
             web-1  local  dummy     running  1971-01-01T00:00:00Z  -\n\
             web-2  h1     dummy     running  1971-01-01T00:00:00Z  -\n"
        );
    }

    #[test]
    fn empty_lists_say_what_to_do() {
        let (out, _, _) = printed(Response::ListMachines(vec![]), false);
        assert!(out.contains("create-machine"), "{out}");
    }

    #[test]
    fn json_is_the_data_itself() {
        let (out, _, _) = printed(Response::ListMachines(vec![machine("a")]), true);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value[0]["name"], "a");
        assert_eq!(value[0]["status"], "running");
        assert_eq!(value[0]["created_at"], 86_400 * 365);
    }

    #[test]
    fn details_and_sentences() {
        let mut m = machine("a");
        m.error = Some("broken".into());
        let (out, _, _) = printed(Response::Machine(m.clone()), false);
        assert!(out.contains("status:   running\n"), "{out}");
        assert!(out.contains("error:    broken\n"), "{out}");
        let (out, _, _) = printed(Response::DestroyMachine(m), false);
        assert_eq!(out, "destroyed machine a\n");
    }

    #[test]
    fn run_passes_output_and_exit_code_through() {
        let run = RunOutput {
            exit_code: Some(3),
            signal: None,
            stdout: "out\n".into(),
            stderr: "err\n".into(),
            truncated: false,
        };
        let (out, err, code) = printed(Response::Run(run.clone()), false);
        assert_eq!((out.as_str(), err.as_str(), code), ("out\n", "err\n", 3));
        let killed = RunOutput {
            exit_code: None,
            signal: Some(9),
            ..run
        };
        assert_eq!(run_exit_code(&killed), 137);
    }

    fn printed_on(response: &Response, json: bool, terminal: Terminal) -> (Vec<u8>, Vec<u8>) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print(response, json, terminal, &mut out, &mut err).unwrap();
        (out, err)
    }

    #[test]
    fn a_terminal_is_shown_a_machines_escape_sequences_escaped_and_a_pipe_the_bytes() {
        let run = Response::Run(RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout: "\x1b]0;owned\x07\x1b[2Jtext\tend\n".into(),
            stderr: "\x1b[31merr\r\n".into(),
            truncated: false,
        });
        let tty = Terminal {
            stdout: true,
            stderr: true,
        };
        let (out, err) = printed_on(&run, false, tty);
        assert_eq!(out, b"\\x1b]0;owned\\x07\\x1b[2Jtext\tend\n");
        assert_eq!(err, b"\\x1b[31merr\\r\n");
        // Only the terminal one of the two.
        let half = Terminal {
            stdout: false,
            stderr: true,
        };
        let (out, err) = printed_on(&run, false, half);
        assert_eq!(out, b"\x1b]0;owned\x07\x1b[2Jtext\tend\n");
        assert_eq!(err, b"\\x1b[31merr\\r\n");
        let (out, err) = printed_on(&run, false, Terminal::RAW);
        assert_eq!(out, b"\x1b]0;owned\x07\x1b[2Jtext\tend\n");
        assert_eq!(err, b"\x1b[31merr\r\n");
        // JSON on a terminal is still JSON, with the same strings.
        let (out, _) = printed_on(&run, true, tty);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["stdout"], "\x1b]0;owned\x07\x1b[2Jtext\tend\n");
        let file = Response::GetFile(RemoteFile {
            machine: "m".into(),
            path: "/f".into(),
            content: crate::files::FileContent(b"\x1b[2J\xff".to_vec()),
            size: 3,
            files: 1,
        });
        assert_eq!(printed_on(&file, false, tty).0, b"\\x1b[2J\\xff");
        assert_eq!(printed_on(&file, false, Terminal::RAW).0, b"\x1b[2J\xff");
    }

    #[test]
    fn errors_on_a_terminal_are_neutralised() {
        let error = AppError::Backend(crate::model::BackendError::provider("bad\x1b[2J"));
        let tty = Terminal {
            stdout: false,
            stderr: true,
        };
        let mut err = Vec::new();
        print_error(&error, false, tty, &mut err);
        assert_eq!(err, b"error: bad\\x1b[2J\n");
        let mut err = Vec::new();
        print_error(&error, true, tty, &mut err);
        let value: serde_json::Value = serde_json::from_slice(&err).unwrap();
        assert_eq!(value["error"]["message"], "bad\x1b[2J");
    }

    #[test]
    fn errors_in_json_carry_their_kind() {
        let error = AppError::Backend(crate::model::BackendError::unknown_machine("x", []));
        let mut err = Vec::new();
        print_error(&error, true, Terminal::RAW, &mut err);
        let value: serde_json::Value = serde_json::from_slice(&err).unwrap();
        assert_eq!(value["error"]["kind"], "not-found");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
