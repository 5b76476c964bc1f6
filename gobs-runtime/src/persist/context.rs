//! How references are written into portraits and read back.
//!
//! serde has no room for context, so a persistent vat installs a thread-local context
//! while it encodes or decodes portraits. A reference to an actor of the same vat is saved
//! as `[0, id]`; one to an actor of another persistent vat as `[1, vat name, id]`, which
//! the persistence registry reconnects on restore, whatever order the vats come back in.

use std::any::TypeId;
use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize as _;
use serde::de::Error as _;
use serde::ser::{Error as _, SerializeTuple};

use crate::persist::entries::{EntrySink, EntrySource};
use crate::persist::names::NameTable;
use crate::portrait::ActorId;
use crate::vat::VatShared;

/// Names vats for portraits and finds them again: the persistence registry's job.
pub(crate) trait VatDirectory {
    /// The saved name of `vat`, if it is a persistent vat this directory knows.
    fn name_of(&self, vat: &Arc<VatShared>) -> Option<String>;
    /// The vat saved as `name` (started later if it is not up yet).
    fn find(&self, name: &str) -> Result<Arc<VatShared>, String>;
}

/// What encoding one vat's portraits needs.
pub(crate) struct SaveContext<'a> {
    pub vat: &'a Arc<VatShared>,
    pub directory: Option<&'a dyn VatDirectory>,
    /// Local actors the portraits refer to, for reachability.
    pub edges: Vec<ActorId>,
    /// Other vats of the registry the portraits refer to (they must be listed in the
    /// registry's store in the same commit).
    pub far: Vec<String>,
    /// The registry's interned names (none for a lone vat: names are written in full).
    pub names: Option<&'a Mutex<NameTable>>,
    /// Where the actor being saved writes its map entries as portraits of their own
    /// (see [`entries`](super::entries)); `None` writes maps inline.
    pub entries: Option<EntrySink<'a>>,
}

/// What decoding one vat's portraits needs.
pub(crate) struct RestoreContext<'a> {
    pub vat: &'a Arc<VatShared>,
    pub directory: Option<&'a dyn VatDirectory>,
    /// Where to look up actor names held by type-erased references.
    pub env: Option<&'a crate::Env>,
    /// Local references decoded, with the type each expects, checked once all are back.
    pub expected: Vec<(ActorId, TypeId, &'static str)>,
    /// The registry's interned names, to read numbered names back.
    pub names: Option<&'a Mutex<NameTable>>,
    /// The entry portraits saved for the actor being restored.
    pub entries: Option<EntrySource>,
}

thread_local! {
    pub(super) static SAVE: RefCell<Option<SaveContext<'static>>> = const { RefCell::new(None) };
    pub(super) static RESTORE: RefCell<Option<RestoreContext<'static>>> = const { RefCell::new(None) };
}

/// Runs `f` with `ctx` installed for encoding references; returns the context back.
pub(crate) fn with_save<'a, R>(
    ctx: SaveContext<'a>,
    f: impl FnOnce() -> R,
) -> (R, SaveContext<'a>) {
    // SAFETY: the context is removed again before this function returns (also on panic,
    // by the guard), so the erased lifetime never outlives the borrow it stands for.
    let erased: SaveContext<'static> = unsafe { std::mem::transmute(ctx) };
    let prev = SAVE.with(|s| s.replace(Some(erased)));
    struct Restore(Option<Option<SaveContext<'static>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(prev) = self.0.take() {
                SAVE.with(|s| *s.borrow_mut() = prev);
            }
        }
    }
    let mut guard = Restore(Some(prev));
    let r = f();
    let prev = guard.0.take().unwrap_or(None);
    let ctx = SAVE.with(|s| s.replace(prev));
    // SAFETY: this is the same value that was installed above, with its real lifetime.
    let ctx: Option<SaveContext<'a>> = unsafe { std::mem::transmute(ctx) };
    match ctx {
        Some(ctx) => (r, ctx),
        None => unreachable_context(),
    }
}

/// Runs `f` with `ctx` installed for decoding references; returns the context back.
pub(crate) fn with_restore<'a, R>(
    ctx: RestoreContext<'a>,
    f: impl FnOnce() -> R,
) -> (R, RestoreContext<'a>) {
    // SAFETY: as in `with_save`.
    let erased: RestoreContext<'static> = unsafe { std::mem::transmute(ctx) };
    let prev = RESTORE.with(|s| s.replace(Some(erased)));
    struct Restore(Option<Option<RestoreContext<'static>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(prev) = self.0.take() {
                RESTORE.with(|s| *s.borrow_mut() = prev);
            }
        }
    }
    let mut guard = Restore(Some(prev));
    let r = f();
    let prev = guard.0.take().unwrap_or(None);
    let ctx = RESTORE.with(|s| s.replace(prev));
    // SAFETY: the same value installed above.
    let ctx: Option<RestoreContext<'a>> = unsafe { std::mem::transmute(ctx) };
    match ctx {
        Some(ctx) => (r, ctx),
        None => unreachable_context(),
    }
}

/// Runs `f` (an upgrade step re-encoding a portrait's arguments during a restore) with a
/// save context made from the restore context in force, so the references the step
/// carries over encode as they were read. Names are written in full (no interning: a
/// restore commits nothing). Outside a restore, or inside a save, `f` runs as it is.
pub(crate) fn encode_during_restore<R>(f: impl FnOnce() -> R) -> R {
    if SAVE.with(|s| s.borrow().is_some()) {
        return f();
    }
    let from_restore = RESTORE.with(|r| {
        r.borrow()
            .as_ref()
            .map(|ctx| (ctx.vat as *const Arc<VatShared>, ctx.directory))
    });
    let Some((vat, directory)) = from_restore else {
        return f();
    };
    // SAFETY: the restore context in force holds these borrows for as long as it is
    // installed, and it stays installed while `f` runs (we are called from inside its
    // `with_restore`, which removes it only after returning).
    let vat: &Arc<VatShared> = unsafe { &*vat };
    let ctx = SaveContext {
        vat,
        directory,
        edges: Vec::new(),
        far: Vec::new(),
        names: None,
        entries: None,
    };
    with_save(ctx, f).0
}

#[cold]
fn unreachable_context() -> ! {
    // `f` cannot remove the context: only these two functions touch the thread-locals.
    panic!("gobs: persistence context vanished during a save or restore")
}

/// Encodes a reference to `id` in `vat`.
pub(crate) fn encode_ref<S: serde::Serializer>(
    vat: &Arc<VatShared>,
    id: ActorId,
    describe: impl Fn() -> String,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    enum Form {
        Local,
        Far(String),
    }
    let form = SAVE.with(|s| {
        let mut s = s.borrow_mut();
        let Some(ctx) = s.as_mut() else {
            return Err(format!(
                "{} cannot be encoded here: references are only saved by a persistent vat \
                 (in a portrait)",
                describe()
            ));
        };
        if ctx.vat.id == vat.id {
            ctx.edges.push(id);
            return Ok(Form::Local);
        }
        match ctx.directory.and_then(|d| d.name_of(vat)) {
            Some(name) => {
                if ctx.far.last() != Some(&name) {
                    ctx.far.push(name.clone());
                }
                Ok(Form::Far(name))
            }
            None => Err(format!(
                "{}: that vat is not a persistent vat of this persistence registry, so a \
                 portrait cannot refer to it; start it with the same registry \
                 (`Registry::start_vat` or `Registry::spawn_vat`)",
                describe()
            )),
        }
    });
    match form.map_err(S::Error::custom)? {
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
    }
}

/// Decodes a reference written by [`encode_ref`], expecting an actor of type `expect`.
pub(crate) fn decode_ref<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    expect: TypeId,
    type_name: &'static str,
) -> Result<(Arc<VatShared>, ActorId), D::Error> {
    enum Repr {
        Local(u64),
        Far(String, u64),
    }
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Repr;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a saved reference: [0, id] or [1, vat, id]")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Repr, A::Error> {
            let bad = || A::Error::custom("malformed reference in a portrait");
            match seq.next_element::<u8>()?.ok_or_else(bad)? {
                0 => Ok(Repr::Local(seq.next_element()?.ok_or_else(bad)?)),
                1 => {
                    let vat = seq.next_element()?.ok_or_else(bad)?;
                    Ok(Repr::Far(vat, seq.next_element()?.ok_or_else(bad)?))
                }
                _ => Err(bad()),
            }
        }
    }
    let repr = deserializer.deserialize_seq(V)?;
    RESTORE.with(|r| {
        let mut r = r.borrow_mut();
        let Some(ctx) = r.as_mut() else {
            return Err(D::Error::custom(
                "references are only decoded while a persistent vat restores its portraits",
            ));
        };
        match repr {
            Repr::Local(id) => {
                let id = ActorId(id);
                ctx.expected.push((id, expect, type_name));
                Ok((ctx.vat.clone(), id))
            }
            Repr::Far(name, id) => {
                let directory = ctx.directory.ok_or_else(|| {
                    D::Error::custom(format!(
                        "a portrait refers to an actor in vat \"{name}\", but this vat was \
                         restored without a persistence registry; spawn it with the registry \
                         it was saved with"
                    ))
                })?;
                let vat = directory.find(&name).map_err(D::Error::custom)?;
                Ok((vat, ActorId(id)))
            }
        }
    })
}

/// The number of actor name `name` in the saving registry's table, if names are interned.
pub(crate) fn intern_name(name: &str) -> Option<u32> {
    SAVE.with(|s| {
        let s = s.borrow();
        let table = s.as_ref()?.names?;
        Some(
            table
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .id(name),
        )
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
            SavedName::Numbered(id) => RESTORE.with(|r| {
                let r = r.borrow();
                let table = r.as_ref().and_then(|ctx| ctx.names).ok_or_else(|| {
                    format!(
                        "a saved reference names its actor type by number ({id}), but this \
                         vat is restored without the registry that numbered it"
                    )
                })?;
                let table = table.lock().unwrap_or_else(PoisonError::into_inner);
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
    let from_env = RESTORE.with(|r| {
        r.borrow()
            .as_ref()
            .and_then(|ctx| ctx.env.map(|env| (env.lookup(name), env.describe())))
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
    let name = SAVE.with(|s| -> Result<String, String> {
        let mut s = s.borrow_mut();
        let ctx = s.as_mut().ok_or_else(|| {
            format!(
                "vat \"{}\" cannot be encoded here: vat handles are only saved in portraits",
                vat.name
            )
        })?;
        if ctx.vat.id == vat.id {
            return Ok(vat.name.clone());
        }
        let name = ctx.directory.and_then(|d| d.name_of(vat)).ok_or_else(|| {
            format!(
                "vat \"{}\" is not a persistent vat of this persistence registry, so a portrait \
                 cannot hold it; start it with `Registry::start_vat` or `Registry::spawn_vat`",
                vat.name
            )
        })?;
        if ctx.far.last() != Some(&name) {
            ctx.far.push(name.clone());
        }
        Ok(name)
    });
    serializer.serialize_str(&name.map_err(S::Error::custom)?)
}

/// Decodes a vat handle: the registry finds (and if needed starts) the vat.
pub(crate) fn decode_vat<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Arc<VatShared>, D::Error> {
    let name = String::deserialize(deserializer)?;
    RESTORE.with(|r| {
        let r = r.borrow();
        let ctx = r.as_ref().ok_or_else(|| {
            D::Error::custom("vat handles are only decoded while a persistent vat restores")
        })?;
        if ctx.vat.name == name {
            return Ok(ctx.vat.clone());
        }
        let directory = ctx.directory.ok_or_else(|| {
            D::Error::custom(format!(
                "a portrait holds vat \"{name}\", but this vat was restored without a persistence registry"
            ))
        })?;
        directory.find(&name).map_err(D::Error::custom)
    })
}
