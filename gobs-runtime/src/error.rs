//! The one error type of gobs-runtime: what went wrong, to which actor or vat, what to do.

use std::sync::Arc;

use crate::store::StoreError;

mod far_types;
mod kind;
mod matching;
#[doc(hidden)]
pub use far_types::FarErrorType;
pub use far_types::{decode_far_error, encode_far_error};
pub use kind::{ErrorKind, FarFailure};

/// A boxed error an actor method returned; kept so callers can downcast it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when talking to actors and vats.
///
/// Actors are named as `Type#id in vat "name"` so a message points at the right object.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A synchronous call was made to an actor that lives in another vat.
    #[error(
        "cannot call {actor} synchronously from vat \"{current}\": it lives in vat \"{vat}\". \
         Near calls only reach actors of the same vat; use `.send()` and handle the promise"
    )]
    FarCall {
        /// The actor that was called.
        actor: String,
        /// The vat it lives in.
        vat: String,
        /// The vat whose turn made the call.
        current: String,
    },
    /// A vat operation was used outside any vat turn.
    #[error("{what} needs a vat turn, and none is running on this thread. {fix}")]
    NotInTurn {
        /// What was attempted.
        what: &'static str,
        /// How to get a turn.
        fix: &'static str,
    },
    /// A blocking wait was attempted inside a turn, which would stall the vat.
    #[error(
        "{what} would block vat \"{vat}\" inside a turn. A turn never blocks: \
         use `promise.then(...)` to continue when the answer arrives"
    )]
    WouldBlock {
        /// What was attempted.
        what: &'static str,
        /// The vat that would have stalled.
        vat: String,
    },
    /// A blocking wait was attempted on a thread that drives the event loop that would
    /// answer it (an OCapN node on a current-thread tokio runtime): it would never return.
    #[error(
        "{what} would block {driver} on this thread, so the answer could never arrive. \
         `.await` the promise instead, or run a multi-thread runtime and wait from \
         `tokio::task::spawn_blocking` (see `gobs_runtime::Promise`, \"blocking or async\")"
    )]
    WouldDeadlock {
        /// What was attempted.
        what: &'static str,
        /// What runs on this thread.
        driver: &'static str,
    },
    /// A message to an object on a network peer failed outside the object's own code (not
    /// found, refused, unreachable, session lost): [`FarFailure::kind`] says which. Boxed,
    /// to keep `Error` small on the near-call path.
    #[error("{0}")]
    Far(Box<FarFailure>),
    /// A near call reached an actor that is already busy further up the same turn.
    #[error(
        "re-entrant call: {actor} is already handling a message further up this turn \
         (A calls B calls A). Use `.send()` to queue the message for a later turn, \
         or pass the data down instead of calling back"
    )]
    Reentrant {
        /// The busy actor.
        actor: String,
    },
    /// A reference points at an actor its vat no longer has.
    #[error(
        "{actor} no longer exists: it was spawned in a turn that failed, \
         or collected because no root reached it"
    )]
    NoSuchActor {
        /// The missing actor.
        actor: String,
    },
    /// The vat was shut down before (or while) handling the message.
    #[error("vat \"{vat}\" has stopped and takes no more messages; start a new vat")]
    VatStopped {
        /// The stopped vat.
        vat: String,
    },
    /// The vat could not go on (its restore, or undoing a turn, panicked) and stopped;
    /// what was waiting for it breaks with this.
    #[error(
        "vat \"{vat}\" stopped because {reason}; the messages waiting for it were not handled. \
         Fix the cause and start the vat again (a persistent vat restores its last saved churn)"
    )]
    VatFailed {
        /// The vat.
        vat: String,
        /// Why it stopped.
        reason: String,
    },
    /// A turn panicked; everything it did was rolled back.
    #[error("turn in vat \"{vat}\" panicked and was rolled back: {message}")]
    Panicked {
        /// The vat.
        vat: String,
        /// The panic message.
        message: String,
    },
    /// An actor method returned an error; the turn was rolled back.
    #[error("{actor} failed: {message}")]
    Actor {
        /// The actor whose method failed (or the vat, for `Vat::try_run`).
        actor: String,
        /// The error's message.
        message: String,
        /// The error itself, for downcasting.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// A promise's resolver was dropped without an answer.
    #[error("promise was never answered: its resolver was dropped ({context})")]
    Unanswered {
        /// Where the resolver was dropped.
        context: &'static str,
    },
    /// A call by method name failed before reaching the method.
    #[error("{actor}: {detail}")]
    Dispatch {
        /// The actor that was called.
        actor: String,
        /// What was wrong (unknown method, bad arguments, ...).
        detail: String,
    },
    /// The operating system refused to start a vat's thread.
    #[error("could not start vat \"{vat}\": {detail}")]
    Start {
        /// The vat.
        vat: String,
        /// The OS error.
        detail: String,
    },
    /// Two different actors claim one registry name in an env.
    #[error(
        "env {env}: the actor name `{name}` is claimed by two definitions: {first} and {second}. \
         Give one of them another name with #[define_actor(name = \"...\")]"
    )]
    DuplicateName {
        /// The env being built.
        env: String,
        /// The contested name.
        name: String,
        /// The first definition (type, file and line).
        first: String,
        /// The second definition.
        second: String,
    },
    /// An actor was spawned into a persistent vat whose env does not list its type.
    #[error(
        "cannot spawn a {actor} (`{name}`) in persistent vat \"{vat}\": its env {env} does not list it, \
         so it could not be restored. Add it to the env (`.add::<{actor}>()` or `persistence_env!`)"
    )]
    NotInEnv {
        /// The actor type.
        actor: String,
        /// Its registry name.
        name: String,
        /// The vat.
        vat: String,
        /// The env, with what it extends.
        env: String,
    },
    /// A store could not save or load; the churn that needed it was rolled back. The
    /// store's error is kept: [`StoreError::kind`] tells a full disk from damage from a bug.
    #[error("vat \"{vat}\": {source}")]
    Store {
        /// The vat (or `(registry)` for the registry's own records).
        vat: String,
        /// The store's error, which names the file and what to do.
        #[source]
        source: Arc<StoreError>,
    },
    /// A portrait could not be written or read: its bytes do not match the actor's fields
    /// (a damaged store, a changed actor without a version bump, or a bug).
    #[error("{detail}")]
    Portrait {
        /// The actor type concerned.
        actor: String,
        /// What was wrong, naming the actor and what to do.
        detail: String,
    },
    /// A portrait was saved by a newer version of the actor than this program has.
    #[error(
        "a {actor} ({name}) was saved at version {saved}, newer than this program's version \
         {current}: run the program that saved it (or a newer one), or restore an older store"
    )]
    PortraitNewer {
        /// The actor type.
        actor: String,
        /// Its registry name.
        name: String,
        /// The version in the store.
        saved: u32,
        /// This program's version.
        current: u32,
    },
    /// An old portrait has no upgrade step to the next version.
    #[error(
        "cannot restore a {actor} ({name}) saved at version {saved} to this program's version \
         {current}: there is no upgrade step from version {from} to version {next}. Add \
         `upgrade(from = {from}, with = ...)` to its #[define_actor]",
        next = from + 1
    )]
    MissingUpgrade {
        /// The actor type.
        actor: String,
        /// Its registry name.
        name: String,
        /// The version in the store.
        saved: u32,
        /// This program's version.
        current: u32,
        /// The version with no step out of it.
        from: u32,
    },
    /// A vat's saved actors could not be restored.
    #[error("restoring vat \"{vat}\" from {store}: {detail}")]
    Restore {
        /// The vat.
        vat: String,
        /// The store it was restored from.
        store: String,
        /// What went wrong (which actor, and how to fix it).
        detail: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Arc<Error>>,
    },
    /// A churn's portraits could not be written; the churn was rolled back.
    #[error("vat \"{vat}\" cannot save actor {actor}: {source}")]
    Save {
        /// The vat.
        vat: String,
        /// The actor whose portrait failed.
        actor: String,
        /// Why.
        #[source]
        source: Arc<Error>,
    },
    /// A restore-only start found no saved state: nothing was restored and no constructor ran.
    #[error(
        "vat \"{vat}\" has no saved state in {store}: nothing was restored and no constructor \
         was run. Start it with `start_vat` to build it anew, or point the program at the \
         store that holds it"
    )]
    NothingSaved {
        /// The vat.
        vat: String,
        /// The store searched.
        store: String,
    },
    /// A vat was started with root types other than those it holds.
    #[error("{}", root_mismatch(vat, *index, expected, saved, *running))]
    RootMismatch {
        /// The vat.
        vat: String,
        /// Which root (0-based).
        index: usize,
        /// The type this program asked for (`a Counter`), or how many roots.
        expected: String,
        /// What the vat holds there (`a Account`, or `no root`).
        saved: String,
        /// True when the vat was already running (so nothing was restored); false when it
        /// was restored from its store and then stopped again.
        running: bool,
    },
    /// A name cannot be used for a persistent vat.
    #[error(
        "\"{name}\" cannot name a persistent vat: use 1 to 128 letters, digits, '-', '_' or \
         '.', not starting with '.'"
    )]
    BadVatName {
        /// The name given.
        name: String,
    },
    /// A persistent vat's builder lacks a required setting.
    #[error("persistent vat \"{vat}\" needs {missing}: call `.{missing}(...)` on the builder")]
    Builder {
        /// The vat.
        vat: String,
        /// The missing setting.
        missing: &'static str,
    },
    /// `spawn_vat` was asked for a name a running vat already has.
    #[error("a vat named \"{vat}\" already exists in this registry; pick another name")]
    VatExists {
        /// The vat.
        vat: String,
    },
    /// A persistence operation reached a vat that is not persistent.
    #[error("vat \"{vat}\" is not persistent: {what}")]
    NotPersistent {
        /// The vat.
        vat: String,
        /// What could not be done.
        what: &'static str,
    },
    /// A vat the registry holds is missing or damaged: it cannot start; references to it
    /// came back broken. The rest of the registry works.
    #[error(
        "vat \"{vat}\" of {store} cannot be restored: {reason}. The other vats work; references \
         to this one are broken. Destroy it (`Registry::destroy_vat`) to remove it, or restore \
         the store from a backup"
    )]
    VatBroken {
        /// The vat.
        vat: String,
        /// The registry's store.
        store: String,
        /// Why (missing, or the restore error).
        reason: String,
    },
    /// A registry's store that existed is gone.
    #[error(
        "the store {store} is gone, but {evidence}: refusing to start afresh, which would \
         forget everything. Put the store back (from a backup), or remove {dir} to really \
         start empty"
    )]
    StoreMissing {
        /// The missing file.
        store: String,
        /// What shows it existed.
        evidence: String,
        /// The directory to remove to start empty.
        dir: String,
    },
    /// A message called by name answered with a reference (a `Ref`, an `AnyRef`, a
    /// `Value::Ref`), which a by-name result cannot carry: it is data, encoded as
    /// MessagePack, and references are capabilities.
    #[error(
        "`{method}` of {actor} answered with a reference ({reference}), which a call by name \
         cannot carry: by-name results are data, references are capabilities. Send to the \
         typed reference instead (`.send().{method}(..)`), or keep the method off the by-name \
         table with `#[actor(local)]`"
    )]
    RefByName {
        /// The actor called.
        actor: String,
        /// The method.
        method: String,
        /// The reference in its answer.
        reference: String,
    },
    /// A closure, or a method off the by-name table, was sent to an object elsewhere (an
    /// actor on a network peer), which only takes calls by method name.
    #[error(
        "cannot send a closure to {target}: it is reached over the network, by method name \
         only. Send one of its `pub` methods that is not `#[actor(local)]` (`.send().method(..)`)"
    )]
    NotByName {
        /// The far object.
        target: String,
    },
    /// A typed view of a collection found a value of another type.
    #[error(
        "{place} holds {found}, not {expected}: something stored another type there. \
         Read it with the untyped actor (`GHash`/`Cell`) or fix the writer"
    )]
    WrongType {
        /// Where the value was (`key "alice" of GHash#3 in vat "bank"`).
        place: String,
        /// The type the view expects.
        expected: String,
        /// What was there.
        found: String,
    },
    /// `Promise::any` (or `race`) had no promise to be fulfilled: every one broke, or
    /// there were none.
    #[error("{}", none_fulfilled(errors))]
    NoneFulfilled {
        /// Each promise's error, in the order the promises were given.
        errors: Vec<Error>,
    },
}

fn root_mismatch(vat: &str, index: usize, expected: &str, saved: &str, running: bool) -> String {
    if running {
        format!(
            "vat \"{vat}\" is already running, and its root {index} is {saved}, not {expected}: \
             nothing was restored and the running vat is unchanged. Ask for the type it holds"
        )
    } else {
        format!(
            "vat \"{vat}\" was saved with {saved} as root {index}, but this program asks for \
             {expected}: the root constructor's type changed since it was saved. It was not \
             started (nothing runs from it); start it with the saved type, or upgrade it"
        )
    }
}

fn none_fulfilled(errors: &[Error]) -> String {
    match errors {
        [] => "no promise was given to wait for, so none can be fulfilled".to_string(),
        [only] => format!("the only promise broke: {only}"),
        [first, ..] => format!(
            "all {} promises broke; the first with: {first}",
            errors.len()
        ),
    }
}

impl Error {
    /// The store error behind this error, if a store failed (directly or under a save).
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            Error::Store { source, .. } => Some(source),
            Error::Save { source, .. } => source.store_error(),
            Error::Restore {
                source: Some(source),
                ..
            } => source.store_error(),
            _ => None,
        }
    }

    /// A boxed error as a gobs error: one that already is (a near call's, an awaited
    /// promise's) comes back as it was, still matchable; any other is wrapped as
    /// [`Error::Actor`] for `context`.
    pub(crate) fn from_boxed(context: impl FnOnce() -> String, boxed: BoxError) -> Self {
        match boxed.downcast::<Error>() {
            Ok(error) => *error,
            Err(other) => Error::actor(context(), other),
        }
    }

    /// Wraps an actor method's error.
    pub fn actor(actor: impl Into<String>, err: impl Into<BoxError>) -> Self {
        let err: BoxError = err.into();
        Error::Actor {
            actor: actor.into(),
            message: err.to_string(),
            source: Some(Arc::from(err)),
        }
    }
}

/// Unboxes an error the hot path carried boxed (see `vat::near_call`), so `?` takes it.
impl From<Box<Error>> for Error {
    fn from(boxed: Box<Error>) -> Self {
        *boxed
    }
}

/// Result with gobs' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
