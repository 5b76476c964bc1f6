//! The hob-client's side of a copy's stream ([`super::copy_boss`] has the protocol):
//! `put-stream PATH SINK` pulls the stream from the boss's sink and writes it at PATH
//! ([`crate::files::unpack`]: all or nothing, each file's sha256 checked); `get-stream
//! PATH RECURSIVE SINK` reads PATH and pushes the stream to the sink
//! ([`crate::files::pack`]). Both answer `[files bytes mode sha256-or-#f]` once done, from a
//! thread of their own, with the flow control of the run's stream (a window of chunks
//! ahead, [`super::run_stream`]).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::node::{Cx, Node};
use gobs_ocapn::syrup::Value;

use super::copy_boss::{self, GET_STREAM, PUT_STREAM};
use super::run_stream::{from_boss, to_boss};
use super::wire;
use crate::files::chunks::{SinkWriter, SourceReader};
use crate::files::unpack::Unpacked;
use crate::files::{check_remote_path, pack, unpack};

/// Answers `put-stream` or `get-stream` (`method`) with a promise settled once the copy is
/// done.
pub(super) fn answer(
    cx: &mut Cx<'_>,
    node: &Arc<OnceLock<Node>>,
    method: &str,
    args: &[Term],
) -> Result<Term, Term> {
    let (path, recursive, sink) = match (method, args) {
        (PUT_STREAM, [path, Term::Ref(sink)]) => (path, false, sink),
        (GET_STREAM, [path, recursive, Term::Ref(sink)]) => {
            let recursive = matches!(recursive.to_value(), Some(Value::Bool(true)));
            (path, recursive, sink)
        }
        _ => {
            return Err(wire::text(&format!(
                "{method} takes a path{} and a sink",
                if method == GET_STREAM {
                    ", whether to copy a tree"
                } else {
                    ""
                }
            )));
        }
    };
    let path = wire::as_string(path).ok_or_else(|| wire::text("a copy's path is a string"))?;
    check_remote_path("this machine", &path).map_err(|e| wire::text(&e))?;
    let node = node
        .get()
        .cloned()
        .ok_or_else(|| wire::text("the hob-client is still starting"))?;
    let (sink, put) = (sink.clone(), method == PUT_STREAM);
    let (p, _resolver) = cx.promise();
    std::thread::spawn(move || {
        let done = if put {
            put_stream(&node, &sink, Path::new(&path))
        } else {
            get_stream(&node, &sink, Path::new(&path), recursive)
        };
        let outcome = done
            .map(|u| copy_boss::copied_term(&u))
            .map_err(|e| wire::text(&e));
        node.post(move |core| core.settle_promise(p, outcome));
    });
    Ok(Term::local(p))
}

fn put_stream(node: &Node, sink: &CapRef, path: &Path) -> Result<Unpacked, String> {
    let input = SourceReader::new(from_boss(node, sink));
    unpack::unpack(input, path, "on this machine", &mut |_| {})
}

fn get_stream(
    node: &Node,
    sink: &CapRef,
    path: &Path,
    recursive: bool,
) -> Result<Unpacked, String> {
    let plan = pack::plan(path, recursive, "on this machine")?;
    let mut out = SinkWriter::new(to_boss(node, sink, "stdout"));
    pack::pack(&plan, None, &mut out, &mut |_| {})?;
    std::io::Write::flush(&mut out).map_err(|e| format!("the boss ended the copy: {e}"))?;
    Ok(Unpacked {
        files: plan.files,
        bytes: plan.bytes,
        mode: 0,
        sha256: None,
    })
}
