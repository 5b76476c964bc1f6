//! What `#[define_actor]`'s generated code calls. Not a public API: names here may change
//! in any release. Generated code reaches it as `::gobs_runtime::__private`.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::actor::Actor;
pub use crate::entry::{ActorEntry, Registered};
pub use crate::error::FarErrorType;
pub use crate::error::{BoxError, Error};
pub use crate::methods::{DispatchError, MethodInfo, MethodKind, Methods, Reply};
pub use crate::promise::{Promise, SendTarget};
pub use crate::reference::Ref;
pub use inventory;

mod far;
pub use far::*;

/// Implemented by `#[define_actor]` on a struct; its impl block checks for it, so that an
/// impl block whose struct lacks the attribute says so (beside rustc's "cannot find type
/// `NameCall`").
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `#[define_actor]` on its struct",
    label = "this impl block has `#[define_actor]`, but the struct `{Self}` does not",
    note = "add `#[gobs_runtime::define_actor]` to `struct {Self}` too: its fields are the actor's \
            saved state, and it defines the `{Self}Call`/`{Self}Send` proxies the impl block fills in"
)]
pub trait StructDefined {}

/// A field saved in a portrait: serializable both ways and cloneable (to undo a turn).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be saved in an actor's portrait",
    label = "this field is saved with the actor",
    note = "a saved field must implement serde's `Serialize` and `Deserialize` (derive them) and `Clone`; \
            a live resource (a process handle, a socket) belongs in a `#[actor(transient)]` field"
)]
pub trait SavedField: Sized {
    fn encode_field(&self, out: &mut Vec<u8>, entry: &ActorEntry) -> Result<(), Error>;
    fn decode_field(input: &mut &[u8], entry: &ActorEntry) -> Result<Self, Error>;
    /// Taken the first time a turn (or savepoint) touches the actor mutably: what undoes
    /// the turn's changes to the field, as a value of the field's own type (a clone; for
    /// a `JournalMap`, a mark in its undo journal). Of the field's type, so that the
    /// actor's snapshot type names no projection (which would repeat a missing-trait
    /// error once per use).
    fn snapshot_field(&mut self) -> Self;
    /// Puts the field back as it was when `snapshot` was taken.
    fn rollback_field(&mut self, snapshot: Self);
}

impl<T: Serialize + DeserializeOwned + Clone> SavedField for T {
    fn encode_field(&self, out: &mut Vec<u8>, entry: &ActorEntry) -> Result<(), Error> {
        rmp_serde::encode::write(out, self)
            .map_err(|e| portrait(entry, format!("saving a {}: {e}", entry.type_name)))
    }

    fn decode_field(input: &mut &[u8], entry: &ActorEntry) -> Result<Self, Error> {
        crate::msgpack::decode_one(input).map_err(|e| {
            portrait(
                entry,
                format!(
                    "restoring a {} ({}): a saved field does not decode: {e}",
                    entry.type_name, entry.name
                ),
            )
        })
    }

    fn snapshot_field(&mut self) -> T {
        self.clone()
    }

    fn rollback_field(&mut self, snapshot: T) {
        *self = snapshot;
    }
}

/// A transient field's initial value when none is given.
#[diagnostic::on_unimplemented(
    message = "transient field of type `{Self}` has no way to be rebuilt on restore",
    label = "not saved, and `{Self}` has no `Default`",
    note = "give it an initial value with `#[actor(transient = expr)]` (and fix it up in an \
            `on_restore` hook), or use a type that implements `Default` (e.g. `Option<_>`)"
)]
pub trait TransientDefault {
    fn transient_default() -> Self;
}

impl<T: Default> TransientDefault for T {
    fn transient_default() -> Self {
        T::default()
    }
}

/// The start of a portrait: a MessagePack array header for `fields` saved fields.
pub fn begin_portrait(fields: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(&mut out, fields);
    out
}

/// Checks a portrait's array header and returns the bytes of its fields.
pub fn open_portrait<'a>(
    entry: &ActorEntry,
    args: &'a [u8],
    fields: u32,
) -> Result<&'a [u8], Error> {
    let mut input = args;
    let n = rmp::decode::read_array_len(&mut input).map_err(|e| {
        portrait(
            entry,
            format!(
                "restoring a {} ({}): its portrait is not an argument list: {e}",
                entry.type_name, entry.name
            ),
        )
    })?;
    if n != fields {
        return Err(portrait(
            entry,
            format!(
                "restoring a {} ({}) at version {}: the portrait has {n} saved fields but the \
             actor has {fields}. If the fields changed, raise `version` and add an upgrade step",
                entry.type_name, entry.name, entry.version
            ),
        ));
    }
    Ok(input)
}

/// Checks nothing is left after a portrait's last field (a sign the bytes are not what the
/// fields say: a wrong version or a damaged store).
pub fn close_portrait(entry: &ActorEntry, rest: &[u8]) -> Result<(), Error> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(portrait(
            entry,
            format!(
                "restoring a {} ({}) at version {}: {} bytes follow its last saved field; the \
             portrait does not match the actor's fields (was `version` raised when they changed?)",
                entry.type_name,
                entry.name,
                entry.version,
                rest.len()
            ),
        ))
    }
}

/// One actor's upgrade steps: `from` version and its arguments → the next version's,
/// or `None` when there is no step from `from`.
pub type UpgradeFn = fn(u32, &[u8]) -> Option<Result<Vec<u8>, Error>>;

/// Upgrades portrait arguments from `version` to the entry's version, one step at a time.
pub fn upgrade<'a>(
    entry: &ActorEntry,
    version: u32,
    args: &'a [u8],
    step: UpgradeFn,
) -> Result<Cow<'a, [u8]>, Error> {
    if version > entry.version {
        return Err(Error::PortraitNewer {
            actor: entry.type_name.to_string(),
            name: entry.name.to_string(),
            saved: version,
            current: entry.version,
        });
    }
    let mut args = Cow::Borrowed(args);
    let mut at = version;
    while at < entry.version {
        match step(at, &args) {
            Some(upgraded) => args = Cow::Owned(upgraded?),
            None => {
                return Err(Error::MissingUpgrade {
                    actor: entry.type_name.to_string(),
                    name: entry.name.to_string(),
                    saved: version,
                    current: entry.version,
                    from: at,
                });
            }
        }
        at += 1;
    }
    Ok(args)
}

/// Runs one upgrade step: decodes the old arguments as `A`, encodes what `f` returns.
pub fn upgrade_step<A, B, F>(
    entry: &ActorEntry,
    from: u32,
    args: &[u8],
    f: F,
) -> Result<Vec<u8>, Error>
where
    A: PortraitArgs,
    B: PortraitArgs,
    F: FnOnce(A) -> B,
{
    let old = A::decode_args(args).map_err(|e| {
        portrait(
            entry,
            format!(
                "upgrading a {} ({}) from version {from}: the saved arguments do not decode as \
             the step's input `{}`: {e}",
                entry.type_name,
                entry.name,
                std::any::type_name::<A>()
            ),
        )
    })?;
    let new = f(old);
    crate::persist::context::encode_during_restore(|| new.encode_args()).map_err(|e| {
        portrait(
            entry,
            format!(
                "upgrading a {} ({}) from version {from}: the step's output does not encode: {e}",
                entry.type_name, entry.name
            ),
        )
    })
}

/// A portrait's arguments as an upgrade step sees them: a tuple of the saved fields, in
/// declaration order (`()` for none, `(T,)` for one). Encoded as a MessagePack array,
/// exactly like a portrait.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a portrait's argument list",
    label = "an upgrade step takes and returns the saved fields as a tuple",
    note = "write the step as `fn(old_fields) -> new_fields`, both tuples of the saved fields in \
            declaration order, e.g. `fn from_v1((count,): (u32,)) -> (u64, String)`; \
            one field is `(T,)`; each element is serde `Serialize + Deserialize`"
)]
pub trait PortraitArgs: Sized {
    /// The MessagePack array of the elements.
    fn encode_args(&self) -> Result<Vec<u8>, String>;
    /// Reads a MessagePack array of exactly this many elements.
    fn decode_args(bytes: &[u8]) -> Result<Self, String>;
}

macro_rules! portrait_args {
    ($($n:literal => ($($t:ident $v:ident),*);)*) => {$(
        impl<$($t: Serialize + DeserializeOwned),*> PortraitArgs for ($($t,)*) {
            // `()` writes and reads no elements.
            #[allow(unused_mut)]
            fn encode_args(&self) -> Result<Vec<u8>, String> {
                let ($($v,)*) = self;
                let mut out = begin_portrait($n);
                $(rmp_serde::encode::write(&mut out, $v).map_err(|e| e.to_string())?;)*
                Ok(out)
            }

            #[allow(unused_mut, unused_variables)]
            fn decode_args(bytes: &[u8]) -> Result<Self, String> {
                let mut input = bytes;
                let n = rmp::decode::read_array_len(&mut input)
                    .map_err(|e| format!("not an argument list: {e}"))?;
                if n != $n {
                    return Err(format!("{n} saved fields, but the step takes {}", $n));
                }
                let mut de = rmp_serde::Deserializer::new(&mut input);
                $(let $v = $t::deserialize(&mut de).map_err(|e| e.to_string())?;)*
                Ok(($($v,)*))
            }
        }
    )*};
}

portrait_args! {
    0 => ();
    1 => (A a);
    2 => (A a, B b);
    3 => (A a, B b, C c);
    4 => (A a, B b, C c, D d);
    5 => (A a, B b, C c, D d, E e);
    6 => (A a, B b, C c, D d, E e, F f);
    7 => (A a, B b, C c, D d, E e, F f, G g);
    8 => (A a, B b, C c, D d, E e, F f, G g, H h);
    9 => (A a, B b, C c, D d, E e, F f, G g, H h, I i);
    10 => (A a, B b, C c, D d, E e, F f, G g, H h, I i, J j);
    11 => (A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k);
    12 => (A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l);
    13 => (A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l, M m);
    14 => (A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l, M m, N n);
    15 => (A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l, M m, N n, O o);
    16 => (A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l, M m, N n, O o, P p);
}

/// Any number of saved fields, each as it was written (raw MessagePack, references as their
/// saved ids): the input and output of an upgrade step for an actor whose older portraits
/// differ in their number of fields, e.g. several actor types merged into one, each saved
/// under an alias. The step looks at what it finds and returns the next version's fields;
/// they are then read as usual, so a list the actor cannot take is reported there.
impl PortraitArgs for Vec<rmpv::Value> {
    fn encode_args(&self) -> Result<Vec<u8>, String> {
        let count = u32::try_from(self.len()).map_err(|_| "too many fields".to_string())?;
        let mut out = begin_portrait(count);
        for field in self {
            rmpv::encode::write_value(&mut out, field).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    fn decode_args(bytes: &[u8]) -> Result<Self, String> {
        let mut input = bytes;
        let n = rmp::decode::read_array_len(&mut input)
            .map_err(|e| format!("not an argument list: {e}"))?;
        (0..n)
            .map(|_| rmpv::decode::read_value(&mut input).map_err(|e| e.to_string()))
            .collect()
    }
}

/// A method's result type that can fail the turn: any `Result<T, E>` whose `E` is a
/// [`TurnError`].
pub trait TurnResult {
    type Ok;
    fn into_turn(self) -> Result<Self::Ok, BoxError>;
}

impl<T, E: TurnError> TurnResult for Result<T, E> {
    type Ok = T;
    fn into_turn(self) -> Result<T, BoxError> {
        self.map_err(TurnError::into_box)
    }
}

/// The error type of a message's `Result`: anything that converts into a [`BoxError`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of a message: a failed turn carries a boxed error",
    label = "an `Err` of this type would fail the turn",
    note = "use an error type that implements `std::error::Error + Send + Sync + 'static` \
            (derive it with `thiserror`), or `String`, `&'static str` or \
            `Box<dyn std::error::Error + Send + Sync>`"
)]
pub trait TurnError {
    fn into_box(self) -> BoxError;
}

impl<E: Into<BoxError>> TurnError for E {
    fn into_box(self) -> BoxError {
        self.into()
    }
}

/// An argument of a method callable by name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a method called by name",
    label = "arguments of `pub` messages are decoded from MessagePack",
    note = "derive serde's `Deserialize` for it, or keep the method off the by-name entry \
            with `#[actor(local)]`"
)]
pub trait ByNameArg: Sized {
    fn read_arg(reader: &mut ArgReader<'_>) -> Result<Self, DispatchError>;
}

impl<T: DeserializeOwned> ByNameArg for T {
    fn read_arg(reader: &mut ArgReader<'_>) -> Result<Self, DispatchError> {
        if reader.read == reader.given {
            // Left out by the caller: as nil, which only an `Option` (or `()`) takes.
            return T::deserialize(&mut rmp_serde::Deserializer::new(&[0xc0u8][..]))
                .map_err(|_| reader.bad(reader.count_error()));
        }
        reader.read += 1;
        let mut de = rmp_serde::Deserializer::new(&mut reader.input);
        T::deserialize(&mut de).map_err(|e| reader.bad(e.to_string()))
    }
}

/// The result of a method callable by name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of a method called by name",
    label = "results of `pub` messages are encoded as MessagePack",
    note = "derive serde's `Serialize` for it, or keep the method off the by-name entry \
            with `#[actor(local)]`"
)]
pub trait ByNameResult {
    fn encode_result(&self) -> Result<Vec<u8>, DispatchError>;
}

impl<T: Serialize> ByNameResult for T {
    fn encode_result(&self) -> Result<Vec<u8>, DispatchError> {
        encode_result(self)
    }
}

pub fn encode_result<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, DispatchError> {
    crate::reference::encoding::encode_by_name(value)
}

/// A by-name call's answer, encoded now.
pub fn reply_now(encoded: Result<Vec<u8>, DispatchError>) -> Result<Reply, DispatchError> {
    encoded.map(Reply::Now)
}

/// A by-name call's answer for a message that returned a promise: its value, encoded when
/// it arrives.
pub fn reply_later<T: ByNameResult + Send + 'static>(
    method: &'static str,
    promise: Promise<T>,
) -> Result<Reply, DispatchError> {
    // A carrying call's promised result is encoded carrying too, into the same table.
    let sink = crate::carry::current_sink();
    Ok(Reply::Later(promise.then_direct(move |r| {
        r.and_then(|value| {
            crate::carry::encoding_into(sink, || value.encode_result()).map_err(|e| match e {
                DispatchError::RefInResult { reference } => Error::RefByName {
                    actor: "(the actor that answered)".into(),
                    method: method.to_string(),
                    reference,
                },
                DispatchError::BadResult(detail) => Error::Dispatch {
                    actor: format!("the promised answer of `{method}`"),
                    detail: format!("it cannot be encoded: {detail}"),
                },
                other => Error::Dispatch {
                    actor: format!("the promised answer of `{method}`"),
                    detail: format!("{other:?}"),
                },
            })
        })
    })))
}

/// Reads a by-name call's arguments: a MessagePack array, one element per parameter.
/// Trailing `Option` parameters may be left out (they read as `None`), so a method can
/// take a new last argument and still answer callers written before it.
pub struct ArgReader<'a> {
    method: &'static str,
    expected: &'static str,
    input: &'a [u8],
    /// How many arguments the caller gave, and how many were read.
    given: u32,
    read: u32,
    /// How many the method takes.
    count: u32,
}

impl<'a> ArgReader<'a> {
    pub fn new(
        method: &'static str,
        expected: &'static str,
        args: &'a [u8],
        count: u32,
    ) -> Result<Self, DispatchError> {
        let mut reader = ArgReader {
            method,
            expected,
            input: args,
            given: 0,
            read: 0,
            count,
        };
        // No bytes, or MessagePack nil (what `rmp_serde::to_vec(&())` writes), is the
        // empty argument list.
        let n = if args.is_empty() || args == [0xc0] {
            reader.input = &[];
            0
        } else {
            rmp::decode::read_array_len(&mut reader.input)
                .map_err(|e| reader.bad(format!("arguments are not a list: {e}")))?
        };
        reader.given = n;
        if n > count {
            return Err(reader.bad(reader.count_error()));
        }
        Ok(reader)
    }

    fn count_error(&self) -> String {
        let (n, count) = (self.given, self.count);
        if n < count {
            format!(
                "got {n} arguments, expected {count} (only trailing `Option` parameters may \
                 be left out)"
            )
        } else {
            format!("got {n} arguments, expected {count}")
        }
    }

    /// Checks every argument was read.
    pub fn finish(self) -> Result<(), DispatchError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(self.bad(format!(
                "{} bytes follow the last argument",
                self.input.len()
            )))
        }
    }

    fn bad(&self, detail: String) -> DispatchError {
        DispatchError::BadArguments {
            method: self.method,
            expected: self.expected,
            detail,
        }
    }
}

/// A portrait error about `entry`'s actor.
fn portrait(entry: &ActorEntry, detail: String) -> Error {
    Error::Portrait {
        actor: entry.type_name.to_string(),
        detail,
    }
}
