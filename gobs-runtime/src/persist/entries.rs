//! Entry portraits: how a large map is saved one entry at a time, so that a write costs
//! the change and not the size of the actor holding the map.
//!
//! # The design
//!
//! An actor's portrait is its saved fields; re-encoding them all after every churn makes
//! one `set` on a table of 100k entries cost 100k entries. A field of type
//! [`JournalMap`](crate::JournalMap) is instead saved as:
//!
//! - in the actor's own portrait (its *head*), a marker in the field's place: a
//!   MessagePack `fixext 8` of type [`MARKER_TYPE`] holding the number of entries;
//! - each entry as a portrait of its own, named [`ENTRY_NAME`], under an actor id of its
//!   own taken from the vat's id space (so every store keeps, commits, removes and
//!   compacts it like any portrait: no store format changed). Its arguments are
//!   `[owner id, field number, key, value]`; the field number counts the actor's
//!   `JournalMap` fields in declaration order.
//!
//! A churn that changes one key of such an actor writes its head (its other fields, and
//! the count) and that one entry portrait; removing a key removes its entry portrait.
//! Both go into the churn's one commit, so the store's atomic commit keeps the head and
//! its entries consistent at every crash instant; on restore the count is checked
//! against the entries found.
//!
//! **Which keys changed** comes from the map's undo journal (see
//! [`JournalMap`](crate::JournalMap)): the records since the last save name them, and
//! the ids of entries whose keys went away. Taking a turn's snapshot of the map is O(1)
//! (a position in that journal), and rolling back replays the records of that turn.
//!
//! **Reachability.** An entry portrait is a node of [`Reach`](super::reach) with its own
//! edges (the local references inside its key and value), pinned by its owner: the owner's
//! node keeps the set of its entry ids apart from the edges of its head, and a churn
//! patches that set (added, removed entries) instead of listing it again. Removing the
//! owner cascades to its entries.
//!
//! **Full writes.** A save writes every entry of a map (and the marker) when the actor is
//! not in the store yet (first save, or newly reachable), during a full snapshot, and
//! when the map was read from an old portrait that held it inline — an old-format
//! portrait restores as it is, and the next save moves its entries out. Outside a
//! persistent vat's save (an upgrade step re-encoding arguments, a call by name) a map is
//! written inline, exactly as a `BTreeMap` of the same keys and values would be.
//!
//! **Limits.** An upgrade step of an actor whose map is stored as entries sees the marker
//! in the map's place, not the map: a step cannot change a `JournalMap` field's key or
//! value types (add a new field instead). Restoring such a portrait at an older version
//! fails with an error that says so.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::persist::context::{RestoreContext, SaveContext};
use crate::portrait::{ActorId, Portrait};
use crate::vat::context::with_current_codec;

/// The registry name of entry portraits.
pub(crate) const ENTRY_NAME: &str = "gobs_runtime::JournalEntry";
/// The version of entry portraits' argument layout.
pub(crate) const ENTRY_VERSION: u32 = 1;
/// The MessagePack extension type of the marker a map leaves in its actor's portrait.
pub(crate) const MARKER_TYPE: i8 = 0x4a;

/// How the `JournalMap` field being saved is written.
pub(crate) enum SaveMode {
    /// In the actor's portrait, as a map.
    Inline,
    /// As entry portraits, the field getting number `part`; `full` asks for every entry.
    Entries { part: u32, full: bool },
}

/// Runs `f` on the save context in force, if any.
fn with_save<R>(f: impl FnOnce(Option<&mut SaveContext>) -> R) -> R {
    with_current_codec(|c| match c {
        Some(Codec::Save(ctx)) => f(Some(ctx)),
        _ => f(None),
    })
}

/// Runs `f` on the restore context in force, if any.
fn with_restore<R>(f: impl FnOnce(Option<&mut RestoreContext>) -> R) -> R {
    with_current_codec(|c| match c {
        Some(Codec::Restore(ctx)) => f(Some(ctx)),
        _ => f(None),
    })
}

/// Starts saving a `JournalMap` field: inline, or as entries under the next field number.
pub(crate) fn begin_save() -> SaveMode {
    with_save(|ctx| match ctx.and_then(|ctx| ctx.entries.as_mut()) {
        Some(sink) => {
            let part = sink.next_part;
            sink.next_part += 1;
            SaveMode::Entries {
                part,
                full: sink.full,
            }
        }
        None => SaveMode::Inline,
    })
}

/// A fresh id for a new entry of the actor being saved.
pub(crate) fn reserve_id() -> Result<ActorId, String> {
    with_save(|ctx| {
        let sink = ctx.and_then(|ctx| ctx.entries.as_mut());
        let sink = sink.ok_or_else(|| "a map entry is saved outside its vat's save".to_string())?;
        let id = ActorId(sink.next_free);
        sink.next_free = sink.next_free.saturating_add(1);
        Ok(id)
    })
}

/// Writes one entry portrait of the actor being saved.
pub(crate) fn write_entry<K: Serialize, V: Serialize>(
    id: ActorId,
    part: u32,
    key: &K,
    value: &V,
) -> Result<(), String> {
    let (owner, mark) = with_save(|ctx| {
        let ctx = ctx?;
        Some((ctx.entries.as_ref()?.owner, ctx.edges.len()))
    })
    .ok_or_else(|| "a map entry is saved outside its vat's save".to_string())?;
    let mut args = Vec::with_capacity(32);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(&mut args, 4);
    let _ = rmp::encode::write_uint(&mut args, owner.0);
    let _ = rmp::encode::write_uint(&mut args, u64::from(part));
    rmp_serde::encode::write(&mut args, key).map_err(|e| format!("a key: {e}"))?;
    rmp_serde::encode::write(&mut args, value).map_err(|e| format!("a value: {e}"))?;
    with_save(|ctx| {
        if let Some(ctx) = ctx {
            let edges = ctx.edges.split_off(mark.min(ctx.edges.len()));
            if let Some(sink) = ctx.entries.as_mut() {
                sink.writes.upserts.push((
                    id,
                    Portrait {
                        name: ENTRY_NAME.to_string(),
                        version: ENTRY_VERSION,
                        args,
                    },
                    edges,
                ));
            }
        }
    });
    Ok(())
}

/// Removes entry portrait `id` of the actor being saved.
pub(crate) fn remove_entry(id: ActorId) {
    with_save(|ctx| {
        if let Some(sink) = ctx.and_then(|c| c.entries.as_mut()) {
            sink.writes.removes.push(id);
        }
    });
}

/// Writes the marker a map stored as entries leaves in its actor's portrait.
pub(crate) fn write_marker(out: &mut Vec<u8>, count: u64) {
    out.push(0xd7);
    out.extend_from_slice(&MARKER_TYPE.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
}

/// Reads the marker, if the field holds one (else the field is an inline map).
pub(crate) fn read_marker(input: &mut &[u8]) -> Option<u64> {
    let bytes: &[u8] = input;
    match bytes {
        [0xd7, t, rest @ ..] if t.to_be_bytes() == MARKER_TYPE.to_be_bytes() => {
            let count: [u8; 8] = rest.get(..8)?.try_into().ok()?;
            *input = rest.get(8..)?;
            Some(u64::from_be_bytes(count))
        }
        _ => None,
    }
}

/// The entries saved for the next `JournalMap` field of the actor being restored.
pub(crate) fn take_part() -> Result<Vec<(ActorId, Vec<u8>)>, String> {
    with_restore(|ctx| {
        let source = ctx.and_then(|ctx| ctx.entries.as_mut()).ok_or_else(|| {
            "the map was saved as entry portraits, which only its persistent vat's \
                 restore can read"
                .to_string()
        })?;
        let part = source.next_part;
        source.next_part += 1;
        Ok(source.parts.remove(&part).unwrap_or_default())
    })
}

/// The owner and field number of an entry portrait's arguments.
pub(crate) fn owner_of(args: &[u8]) -> Option<(ActorId, u32)> {
    let mut input = args;
    let n = rmp::decode::read_array_len(&mut input).ok()?;
    let owner: u64 = rmp::decode::read_int(&mut input).ok()?;
    let part: u32 = rmp::decode::read_int(&mut input).ok()?;
    (n == 4).then_some((ActorId(owner), part))
}

/// Decodes one entry portrait (its key and value), noting the references it holds.
pub(crate) fn read_entry<K: DeserializeOwned, V: DeserializeOwned>(
    id: ActorId,
    args: &[u8],
) -> Result<(K, V), String> {
    let mut input = args;
    let header = rmp::decode::read_array_len(&mut input).ok();
    let owner: Option<u64> = rmp::decode::read_int(&mut input).ok();
    let part: Option<u32> = rmp::decode::read_int(&mut input).ok();
    if header != Some(4) || owner.is_none() || part.is_none() {
        return Err(format!("entry {id} is not [owner, field, key, value]"));
    }
    let expected_len = || with_restore(|ctx| ctx.map_or(0, |c| c.expected.len()));
    let start = expected_len();
    let key: K = crate::msgpack::decode_one(&mut input)
        .map_err(|e| format!("the key of entry {id}: {e}"))?;
    let value: V = crate::msgpack::decode_one(&mut input)
        .map_err(|e| format!("the value of entry {id}: {e}"))?;
    if !input.is_empty() {
        return Err(format!(
            "entry {id}: {} bytes follow its value",
            input.len()
        ));
    }
    let end = expected_len();
    with_restore(|ctx| {
        if let Some(source) = ctx.and_then(|c| c.entries.as_mut()) {
            source.restored.push((id, start..end));
        }
    });
    Ok((key, value))
}
