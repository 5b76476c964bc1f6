//! Running a command as a local child process in a machine's directory: what `run` does on
//! `process` machines (both backends use it). Blocking: call it off the vats.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::backend::RunOutput;

/// Each of a command's stdout and stderr is cut at this many bytes.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// Runs `argv` with `dir` as its working directory and `HOME`, stdin closed, and captures
/// what it prints. With `shell` (e.g. `/bin/sh`) it runs `shell -c "ARGV..."` instead.
/// `machine` only names the machine in error messages.
///
/// An `Err` means the command could not be started; a command that ran and failed is an
/// `Ok` with its exit code.
pub fn run_in(
    dir: &Path,
    machine: &str,
    shell: Option<&str>,
    argv: &[String],
) -> Result<RunOutput, String> {
    let mut cmd = match shell {
        Some(shell) => {
            let mut cmd = Command::new(shell);
            cmd.arg("-c").arg(shell_join(argv));
            cmd
        }
        None => {
            let (first, rest) = argv
                .split_first()
                .ok_or_else(|| "no command to run".to_string())?;
            let mut cmd = Command::new(first);
            cmd.args(rest);
            cmd
        }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            format!(
                "machine {machine} has no working directory {} and it cannot be made: {e}",
                dir.display()
            )
        })?;
    let output = cmd
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "cannot start {:?} on machine {machine}: {e}",
                shell.unwrap_or_else(|| argv.first().map_or("", String::as_str))
            )
        })?;
    Ok(RunOutput {
        exit_code: output.status.code(),
        signal: output.status.signal(),
        stdout: capped(&output.stdout),
        stderr: capped(&output.stderr),
    })
}

/// `bytes` as text (lossy UTF-8), cut at [`MAX_OUTPUT_BYTES`] with a note saying so.
pub fn capped(bytes: &[u8]) -> String {
    if bytes.len() <= MAX_OUTPUT_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut text = String::from_utf8_lossy(&bytes[..MAX_OUTPUT_BYTES]).into_owned();
    text.push_str("\n[gobs-app: output cut at 4 MiB]\n");
    text
}

/// Joins argv into one line a POSIX shell reads back as the same words.
///
/// ```
/// use gobs_app::providers::command::shell_join;
/// let argv = ["echo", "a b", "it's"].map(String::from);
/// assert_eq!(shell_join(&argv), r#"echo 'a b' 'it'\''s'"#);
/// ```
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn shell_join_quotes_what_needs_it() {
        let argv: Vec<String> = ["echo", "a b", "it's", "", "x=1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shell_join(&argv), r#"echo 'a b' 'it'\''s' '' x=1"#);
    }

    #[test]
    fn output_is_capped() {
        let big = vec![b'x'; MAX_OUTPUT_BYTES + 1];
        assert!(capped(&big).ends_with("cut at 4 MiB]\n"));
    }

    #[test]
    fn runs_in_the_directory_with_home_there() {
        let dir = tempfile::tempdir().unwrap();
        let machine = dir.path().join("m");
        let out = run_in(
            &machine,
            "m",
            None,
            &["sh".into(), "-c".into(), "pwd; echo $HOME".into()],
        )
        .unwrap();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(lines[0].ends_with("/m"), "{out:?}");
        assert!(lines[1].ends_with("/m"), "{out:?}");
        let err = run_in(&machine, "m", None, &["/no/such/program".into()]).unwrap_err();
        assert!(err.contains("cannot start"), "{err}");
    }
}
