//! What a machine's hob-client does for each machine operation: the machine's side of it,
//! answered through the client's bindings object ([`super::client`]). The operation reads
//! its arguments and writes its answer itself ([`MachineOp`]); this file only does the
//! work. Adding an operation adds its arm to [`answer`].

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gobs_ocapn::captp::Term;
use gobs_ocapn::node::{Cx, Node};

use super::wire;
use crate::model::Cancel;
use crate::ops::{GetFile, MachineOp, PutFile, Run};
use crate::providers::local::run::{Limits, run_command};

/// Answers the machine operation `name` with `args`, as the operation reads and answers
/// them ([`MachineOp`]); `node` is the client's own, for answering `run` from the thread it
/// runs on.
pub(super) fn answer(
    cx: &mut Cx<'_>,
    node: &Arc<OnceLock<Node>>,
    name: &str,
    args: &[Term],
) -> Result<Term, Term> {
    match name {
        Run::NAME => {
            let (argv, timeout) = Run::read_args(args).map_err(|e| wire::text(&e))?;
            let node = node
                .get()
                .cloned()
                .ok_or_else(|| wire::text("the hob-client is still starting"))?;
            let (p, _resolver) = cx.promise();
            std::thread::spawn(move || {
                let outcome = reply::<Run>(run_argv(&argv, timeout));
                node.post(move |core| core.settle_promise(p, outcome));
            });
            Ok(Term::local(p))
        }
        super::run_sink::RUN_STREAM => super::run_stream::answer(cx, node, args, false),
        super::run_sink::RUN_TERMINAL => super::run_stream::answer(cx, node, args, true),
        PutFile::NAME => {
            let (path, bytes, mode) = PutFile::read_args(args).map_err(|e| wire::text(&e))?;
            reply::<PutFile>(write_file_atomically(Path::new(&path), &bytes, mode))
        }
        GetFile::NAME => {
            let path = GetFile::read_args(args).map_err(|e| wire::text(&e))?;
            reply::<GetFile>(read_file_bounded(Path::new(&path)))
        }
        other => Err(wire::text(&format!(
            "this machine has no binding `{other}` (it has {})",
            crate::ops::MACHINE_BINDINGS.join(", ")
        ))),
    }
}

/// What the machine did for operation `O`, as it answers it.
fn reply<O: MachineOp>(done: Result<O::Reply, String>) -> Result<Term, Term> {
    done.map(|r| O::reply_term(&r)).map_err(|e| wire::text(&e))
}

fn run_argv(argv: &[String], timeout: u64) -> Result<crate::model::RunOutput, String> {
    let (first, rest) = argv
        .split_first()
        .ok_or_else(|| "no command to run".to_string())?;
    let mut cmd = Command::new(first);
    cmd.args(rest);
    let limits = Limits {
        timeout: Duration::from_secs(timeout.max(1)),
        max_output: wire::MAX_REMOTE_OUTPUT,
    };
    run_command(cmd, first, "this machine", limits, &Cancel::new())
}

/// Whom this hob-client runs as, for messages about permissions.
fn running_as() -> String {
    format!(
        "the hob-client runs as uid {} on this machine",
        rustix::process::geteuid().as_raw()
    )
}

/// Writes `bytes` to `path` with permission bits `mode` (the umask not applied), all or
/// nothing: into a temporary file beside it, synced, then renamed over it.
fn write_file_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!("put-file takes an absolute path, not {shown}"));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(format!("{shown} names no file; add the file's name"));
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "{} is not a directory on this machine",
                dir.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "directory {} does not exist on this machine; create it first (`mkdir -p {}` through gobs-app run)",
                dir.display(),
                dir.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot look at {}: {e}; {}",
                dir.display(),
                running_as()
            ));
        }
    }
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(format!(
            "{shown} is a directory on this machine; give the path of the file to write"
        ));
    }
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).map_err(|e| format!("cannot draw a temporary name: {e}"))?;
    let tmp = dir.join(format!(
        ".{}.gobs-put-{}",
        name.to_string_lossy(),
        data_encoding::HEXLOWER.encode(&tag)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        // fchmod, not the open's mode: the umask must not change what was asked.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        let hint = match e.kind() {
            std::io::ErrorKind::PermissionDenied => format!("; {}", running_as()),
            std::io::ErrorKind::StorageFull => "; free some space on the machine".to_string(),
            _ => String::new(),
        };
        format!("cannot write {shown} on this machine: {e}{hint} (nothing was changed)")
    })
}

/// Reads the regular file `path`, at most [`wire::MAX_FILE`] bytes of it (a file that is, or
/// grows, larger is refused with its size).
fn read_file_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!("get-file takes an absolute path, not {shown}"));
    }
    let cannot = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("there is no file {shown} on this machine; check the path")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot read {shown}: {e}; {}", running_as())
        }
        _ => format!("cannot read {shown}: {e}"),
    };
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if meta.is_dir() {
        return Err(format!(
            "{shown} is a directory on this machine, not a regular file; get-file copies one file (archive a directory first, e.g. with tar through gobs-app run)"
        ));
    }
    if !meta.is_file() {
        return Err(format!(
            "{shown} is not a regular file on this machine (a device, fifo or socket); get-file copies regular files only"
        ));
    }
    crate::files::check_size(&format!("{shown} on this machine"), meta.len())?;
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(wire::MAX_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    crate::files::check_size(&format!("{shown} on this machine"), bytes.len() as u64)?;
    Ok(bytes)
}
