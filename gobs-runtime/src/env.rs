//! Persistence environments: the table of actor names a persistent vat saves and restores.
//!
//! An env lists entries and may extend other envs. Two different actors under one name is
//! an error naming both definitions (Goblins silently keeps the last).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use crate::actor::Actor;
use crate::entry::{self, ActorEntry};
use crate::error::Error;

/// A persistence environment: actor names → entries.
///
/// ```
/// use gobs_runtime::{Env, actor_lib::{Cell, GHash}, common_env};
/// let env = Env::builder("app").extend(&common_env()).build().unwrap();
/// assert!(env.contains::<GHash>() && env.contains::<Cell>());
/// ```
#[derive(Clone)]
pub struct Env {
    inner: Arc<EnvInner>,
}

struct EnvInner {
    name: String,
    /// Every name and alias.
    by_name: HashMap<&'static str, &'static ActorEntry>,
    by_type: HashMap<TypeId, &'static ActorEntry>,
    /// Envs this one was built from, for error messages.
    parts: Vec<String>,
}

/// Builds an [`Env`]: start with [`Env::builder`], add actor types and other envs, then
/// [`build`](EnvBuilder::build), which fails if two different actors claim one name.
///
/// ```
/// use gobs_runtime::{Env, common_env, define_actor};
///
/// #[define_actor(name = "app::Boss")]
/// pub struct Boss {
///     machines: Vec<String>,
/// }
///
/// #[define_actor]
/// impl Boss {}
///
/// let env = Env::builder("app").extend(&common_env()).add::<Boss>().build().unwrap();
/// assert!(env.lookup("app::Boss").is_some());
/// assert_eq!(env.describe(), "\"app\" (extends \"common\")");
/// ```
pub struct EnvBuilder {
    name: String,
    entries: Vec<&'static ActorEntry>,
    parts: Vec<String>,
}

impl Env {
    /// Starts an env called `name` (the name appears in error messages).
    pub fn builder(name: impl Into<String>) -> EnvBuilder {
        EnvBuilder {
            name: name.into(),
            entries: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// An env of every `#[define_actor]` type linked into this program.
    pub fn registered(name: impl Into<String>) -> Result<Env, Error> {
        let mut b = Env::builder(name);
        b.entries.extend(entry::registered());
        b.build()
    }

    /// The env's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The env's name with the envs it extends: `app (extends common)`.
    pub fn describe(&self) -> String {
        if self.inner.parts.is_empty() {
            format!("\"{}\"", self.inner.name)
        } else {
            format!(
                "\"{}\" (extends {})",
                self.inner.name,
                self.inner.parts.join(", ")
            )
        }
    }

    /// The entry saved under `name` (or one of its aliases).
    pub fn lookup(&self, name: &str) -> Option<&'static ActorEntry> {
        self.inner.by_name.get(name).copied()
    }

    /// The entry of actor type `T`, if this env has it.
    pub fn entry_of<T: Actor>(&self) -> Option<&'static ActorEntry> {
        self.entry_of_type(TypeId::of::<T>())
    }

    pub(crate) fn entry_of_type(&self, type_id: TypeId) -> Option<&'static ActorEntry> {
        self.inner.by_type.get(&type_id).copied()
    }

    /// Whether actors of type `T` can be saved and restored with this env.
    pub fn contains<T: Actor>(&self) -> bool {
        self.entry_of::<T>().is_some()
    }

    /// Every entry, sorted by name.
    pub fn entries(&self) -> Vec<&'static ActorEntry> {
        let mut v: Vec<_> = self.inner.by_type.values().copied().collect();
        v.sort_by_key(|e| e.name);
        v
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("name", &self.inner.name)
            .field(
                "entries",
                &self.entries().iter().map(|e| e.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl EnvBuilder {
    /// Adds actor type `T`.
    pub fn add<T: Actor>(mut self) -> Self {
        self.entries.push(T::entry());
        self
    }

    /// Adds an entry.
    pub fn add_entry(mut self, entry: &'static ActorEntry) -> Self {
        self.entries.push(entry);
        self
    }

    /// Adds every entry of `other`.
    pub fn extend(mut self, other: &Env) -> Self {
        self.entries.extend(other.inner.by_type.values().copied());
        self.parts.push(format!("\"{}\"", other.inner.name));
        self
    }

    /// An env with no entries (what `build` gives for an empty builder, infallibly).
    pub(crate) fn build_empty(self) -> Env {
        Env {
            inner: Arc::new(EnvInner {
                name: self.name,
                by_name: HashMap::new(),
                by_type: HashMap::new(),
                parts: Vec::new(),
            }),
        }
    }

    /// Builds the env; fails if two different actors claim one name.
    pub fn build(self) -> Result<Env, Error> {
        let mut by_name: HashMap<&'static str, &'static ActorEntry> = HashMap::new();
        let mut by_type = HashMap::new();
        for entry in self.entries {
            for name in entry.names() {
                if let Some(other) = by_name.get(name)
                    && other.type_id() != entry.type_id()
                {
                    return Err(Error::DuplicateName {
                        env: self.name,
                        name: name.to_string(),
                        first: other.definition(),
                        second: entry.definition(),
                    });
                }
                by_name.insert(name, entry);
            }
            by_type.insert(entry.type_id(), entry);
        }
        Ok(Env {
            inner: Arc::new(EnvInner {
                name: self.name,
                by_name,
                by_type,
                parts: self.parts,
            }),
        })
    }
}

/// Builds an [`Env`]: a name, envs to extend, actor types.
///
/// ```
/// use gobs_runtime::{persistence_env, common_env, actor_lib::GHash};
/// let env = persistence_env!("app", extends: [common_env()], actors: [GHash]).unwrap();
/// assert_eq!(env.name(), "app");
/// ```
#[macro_export]
macro_rules! persistence_env {
    ($name:expr $(, extends: [$($ext:expr),* $(,)?])? $(, actors: [$($ty:ty),* $(,)?])? $(,)?) => {{
        let builder = $crate::Env::builder($name);
        $($(let builder = builder.extend(&$ext);)*)?
        $($(let builder = builder.add::<$ty>();)*)?
        builder.build()
    }};
}
