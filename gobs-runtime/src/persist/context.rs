//! How references are written into portraits and read back.
//!
//! A persistent vat puts its [`SaveContext`] or [`RestoreContext`] (defined, with the other
//! codecs, in [`crate::codec`]) in force as the thread's [`Codec`] while it encodes or
//! decodes portraits. A reference to an actor of the same vat is saved
//! as `[0, id]`; one to an actor of another persistent vat as `[1, vat name, id]`, which
//! the persistence registry reconnects on restore, whatever order the vats come back in;
//! a far reference (an actor on another node) as `[2, sturdyref URI]`, which comes back
//! reaching the network through the node attached to the registry
//! ([`crate::far::FarResolver`]).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Deserialize as _;
use serde::de::Error as _;
use serde::ser::{Error as _, SerializeTuple};

use crate::codec::Codec;
pub(crate) use crate::codec::{
    Directory, EntrySink, EntrySource, EntryWrites, RestoreContext, SaveContext, VatDirectory,
};
use crate::entry::ActorEntry;
use crate::far::{FarObject, Revived};
use crate::persist::names::NameTable;
use crate::portrait::ActorId;
use crate::vat::context::{with_codec, with_core_and_codec, with_current_codec};
use crate::vat::{Hold, VatShared};

/// Runs `f` with `ctx` in force for encoding references; returns the context back.
pub(crate) fn with_save<R>(ctx: SaveContext, f: impl FnOnce() -> R) -> (R, SaveContext) {
    match with_codec(Codec::Save(ctx), f) {
        (r, Codec::Save(ctx)) => (r, ctx),
        _ => context_replaced(),
    }
}

/// Runs `f` with `ctx` in force for decoding references; returns the context back.
pub(crate) fn with_restore<R>(ctx: RestoreContext, f: impl FnOnce() -> R) -> (R, RestoreContext) {
    match with_codec(Codec::Restore(ctx), f) {
        (r, Codec::Restore(ctx)) => (r, ctx),
        _ => context_replaced(),
    }
}

/// Runs `f` on the restore context in force (one that [`with_restore`] put in force
/// further up this thread's stack).
pub(crate) fn current_restore<R>(f: impl FnOnce(&mut RestoreContext) -> R) -> R {
    with_current_codec(|c| match c {
        Some(Codec::Restore(ctx)) => f(ctx),
        _ => context_replaced(),
    })
}

#[cold]
fn context_replaced() -> ! {
    // `with_codec` hands back the value it installed; only code holding `&mut Codec`
    // through `with_current_codec` could swap it, and none does.
    panic!("gobs: a persistence context was replaced during a save or restore")
}

/// Runs `f` (an upgrade step re-encoding a portrait's arguments during a restore) with a
/// save context made from the restore context in force, so the references the step
/// carries over encode as they were read. Names are written in full (no interning: a
/// restore commits nothing). Outside a restore, `f` runs as it is.
pub(crate) fn encode_during_restore<R>(f: impl FnOnce() -> R) -> R {
    let from_restore = with_current_codec(|c| match c {
        Some(Codec::Restore(ctx)) => Some((ctx.vat.clone(), ctx.directory.clone())),
        _ => None,
    });
    let Some((vat, directory)) = from_restore else {
        return f();
    };
    let ctx = SaveContext {
        vat,
        directory,
        edges: Vec::new(),
        far: Vec::new(),
        intern: false,
        entries: None,
    };
    with_save(ctx, f).0
}

/// How a reference is written in a portrait.
pub(crate) enum Form {
    /// `[0, id]`: an actor of the vat being saved.
    Local,
    /// `[1, vat, id]`: an actor of another vat of the registry.
    Far(String),
    /// `[2, uri]`: an object on another node, by its sturdyref.
    Sturdy(String),
}

impl Form {
    pub(crate) fn serialize<S: serde::Serializer>(
        self,
        id: ActorId,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match self {
            Form::Local => {
                let mut t = serializer.serialize_tuple(2)?;
                t.serialize_element(&0u8)?;
                t.serialize_element(&id.0)?;
                t.end()
            }
            Form::Far(name) => {
                let mut t = serializer.serialize_tuple(3)?;
                t.serialize_element(&1u8)?;
                t.serialize_element(&name)?;
                t.serialize_element(&id.0)?;
                t.end()
            }
            Form::Sturdy(uri) => {
                let mut t = serializer.serialize_tuple(2)?;
                t.serialize_element(&2u8)?;
                t.serialize_element(&uri)?;
                t.end()
            }
        }
    }

    /// How a far reference is written: its sturdyref, or the error the save fails with
    /// (the far object's own sentence: it names the object, its peer and what to do).
    pub(crate) fn of_far(far: &dyn FarObject) -> Result<Form, String> {
        far.sturdyref().map(Form::Sturdy)
    }
}

/// A reference read back from a portrait.
pub(crate) enum Decoded {
    /// An actor of this process, with the hold its restored slot keeps when the vat
    /// restoring it already placed it (else the reference takes one from the vat's map).
    Near(Arc<VatShared>, ActorId, Option<Arc<Hold>>),
    /// An object on another node, live again through the registry's node.
    Far(Arc<dyn FarObject>),
}

impl SaveContext {
    /// How a reference to actor `id` of `vat` is written, noting it as an edge.
    pub(crate) fn form_of(
        &mut self,
        vat: &Arc<VatShared>,
        id: ActorId,
        describe: &dyn Fn() -> String,
    ) -> Result<Form, String> {
        if self.vat.id == vat.id {
            self.edges.push(id);
            return Ok(Form::Local);
        }
        match self.far_name(vat) {
            Some(name) => Ok(Form::Far(name)),
            None => Err(format!(
                "{}: that vat is not a persistent vat of this persistence registry, so a \
                 portrait cannot refer to it; start it with the same registry \
                 (`Registry::start_vat` or `Registry::spawn_vat`)",
                describe()
            )),
        }
    }

    /// The registry name of another vat, noted as one the portraits refer to.
    fn far_name(&mut self, vat: &Arc<VatShared>) -> Option<String> {
        let name = self.directory.as_ref()?.name_of(vat)?;
        if self.far.last() != Some(&name) {
            self.far.push(name.clone());
        }
        Some(name)
    }
}

/// Why a reference cannot be encoded where no save or carrying call is under way.
pub(crate) fn unsaved(describe: &dyn Fn() -> String) -> String {
    format!(
        "{} cannot be encoded here: references are only saved by a persistent vat \
         (in a portrait)",
        describe()
    )
}

fn lock(names: &Mutex<NameTable>) -> MutexGuard<'_, NameTable> {
    names.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Decodes a reference written by [`Form::serialize`], expecting an actor of `expect`'s
/// type.
pub(crate) fn decode_ref<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    expect: &'static ActorEntry,
) -> Result<Decoded, D::Error> {
    enum Repr {
        Local(u64),
        Far(String, u64),
        Sturdy(String),
    }
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Repr;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a saved reference: [0, id], [1, vat, id] or [2, sturdyref]")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Repr, A::Error> {
            let bad = || A::Error::custom("malformed reference in a portrait");
            match seq.next_element::<u8>()?.ok_or_else(bad)? {
                0 => Ok(Repr::Local(seq.next_element()?.ok_or_else(bad)?)),
                1 => {
                    let vat = seq.next_element()?.ok_or_else(bad)?;
                    Ok(Repr::Far(vat, seq.next_element()?.ok_or_else(bad)?))
                }
                2 => Ok(Repr::Sturdy(seq.next_element()?.ok_or_else(bad)?)),
                _ => Err(bad()),
            }
        }
    }
    let repr = deserializer.deserialize_seq(V)?;
    with_core_and_codec(|core, c| {
        let Some(Codec::Restore(ctx)) = c else {
            return Err(D::Error::custom(
                "references are only decoded while a persistent vat restores its portraits",
            ));
        };
        match repr {
            Repr::Local(id) => {
                let id = ActorId(id);
                // Most references point back to actors restored before them (spawned
                // earlier): their slot's hold serves, with no lock and no map entry, and
                // their type is checked now.
                let placed = core.and_then(|core| core.restored_hold(&ctx.vat, id));
                let (hold, unchecked) = match placed {
                    Some((hold, ty)) if ty == expect.type_id() => (Some(hold), None),
                    Some((hold, _)) => (Some(hold), Some(expect)),
                    None => (None, Some(expect)),
                };
                ctx.expected.push((id, unchecked));
                Ok(Decoded::Near(ctx.vat.clone(), id, hold))
            }
            // A sturdyref carries no type: the peer checks each message.
            Repr::Sturdy(uri) => {
                let link = ctx.directory.as_ref().map(|d| d.far_link());
                Ok(Decoded::Far(Revived::object_for(uri, link)))
            }
            Repr::Far(name, id) => {
                let directory = ctx.directory.as_ref().ok_or_else(|| {
                    D::Error::custom(format!(
                        "a portrait refers to an actor in vat \"{name}\", but this vat was \
                         restored without a persistence registry; spawn it with the registry \
                         it was saved with"
                    ))
                })?;
                let vat = directory.find(&name).map_err(D::Error::custom)?;
                Ok(Decoded::Near(vat, ActorId(id), None))
            }
        }
    })
}

/// The number of actor name `name` in the saving registry's table, if names are interned.
pub(crate) fn intern_name(name: &str) -> Option<u32> {
    with_current_codec(|c| match c {
        Some(Codec::Save(ctx)) if ctx.intern => {
            Some(lock(ctx.directory.as_ref()?.names()).id(name))
        }
        _ => None,
    })
}

/// An actor name as saved: in full, or numbered in the registry's table.
pub(crate) enum SavedName {
    Full(String),
    Numbered(u64),
}

impl<'de> serde::Deserialize<'de> for SavedName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SavedName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an actor name, or its number in the registry's name table")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SavedName, E> {
                Ok(SavedName::Full(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SavedName, E> {
                Ok(SavedName::Full(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SavedName, E> {
                Ok(SavedName::Numbered(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl SavedName {
    /// The full name, looking a number up in the restoring registry's table.
    pub(crate) fn resolve(self) -> Result<String, String> {
        match self {
            SavedName::Full(name) => Ok(name),
            SavedName::Numbered(id) => with_current_codec(|c| {
                let directory = match c {
                    Some(Codec::Restore(ctx)) => ctx.directory.as_ref(),
                    _ => None,
                };
                let table = directory.map(|d| d.names()).ok_or_else(|| {
                    format!(
                        "a saved reference names its actor type by number ({id}), but this \
                         vat is restored without the registry that numbered it"
                    )
                })?;
                let table = lock(table);
                u32::try_from(id)
                    .ok()
                    .and_then(|id| table.name(id))
                    .map(str::to_string)
                    .ok_or_else(|| {
                        format!(
                            "a saved reference names actor type number {id}, which the \
                             registry's name table lacks: the store is damaged"
                        )
                    })
            }),
        }
    }
}

/// The entry saved as `name`: from the restoring vat's env, else from every registered actor.
pub(crate) fn lookup_entry(name: &str) -> Result<&'static crate::ActorEntry, String> {
    let from_env = with_current_codec(|c| match c {
        Some(Codec::Restore(RestoreContext { env: Some(env), .. })) => {
            Some((env.lookup(name), env.describe()))
        }
        _ => None,
    });
    match from_env {
        Some((Some(entry), _)) => Ok(entry),
        Some((None, env)) => Err(format!(
            "a saved reference names actor `{name}`, which env {env} does not have; add it to the env"
        )),
        None => crate::entry::registered()
            .find(|e| e.names().any(|n| n == name))
            .ok_or_else(|| {
                format!(
                    "a saved reference names actor `{name}`, which this program does not define"
                )
            }),
    }
}

/// Encodes a vat handle (by its persistent name).
pub(crate) fn encode_vat<S: serde::Serializer>(
    vat: &Arc<VatShared>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let name = with_current_codec(|c| -> Result<String, String> {
        let Some(Codec::Save(ctx)) = c else {
            return Err(format!(
                "vat \"{}\" cannot be encoded here: vat handles are only saved in portraits",
                vat.name
            ));
        };
        if ctx.vat.id == vat.id {
            return Ok(vat.name.clone());
        }
        ctx.far_name(vat).ok_or_else(|| {
            format!(
                "vat \"{}\" is not a persistent vat of this persistence registry, so a portrait \
                 cannot hold it; start it with `Registry::start_vat` or `Registry::spawn_vat`",
                vat.name
            )
        })
    });
    serializer.serialize_str(&name.map_err(S::Error::custom)?)
}

/// Decodes a vat handle: the registry finds (and if needed starts) the vat.
pub(crate) fn decode_vat<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Arc<VatShared>, D::Error> {
    let name = String::deserialize(deserializer)?;
    with_current_codec(|c| {
        let Some(Codec::Restore(ctx)) = c else {
            return Err(D::Error::custom(
                "vat handles are only decoded while a persistent vat restores",
            ));
        };
        if ctx.vat.name == name {
            return Ok(ctx.vat.clone());
        }
        let directory = ctx.directory.as_ref().ok_or_else(|| {
            D::Error::custom(format!(
                "a portrait holds vat \"{name}\", but this vat was restored without a persistence registry"
            ))
        })?;
        directory.find(&name).map_err(D::Error::custom)
    })
}
