//! Roots: what a persistent vat is spawned with and hands back on every start.

use std::any::TypeId;

use crate::actor::Actor;
use crate::error::Error;
use crate::portrait::ActorId;
use crate::reference::Ref;
use crate::vat::Vat;

/// The root actor(s) of a persistent vat: a `Ref<T>` or a tuple of them.
///
/// Only what the roots reach is saved.
pub trait Roots: Send + Sized + 'static {
    /// The roots' ids, in order.
    #[doc(hidden)]
    fn ids(&self) -> Vec<ActorId>;
    /// Rebuilds the roots from a vat's roots, checking each actor's type.
    #[doc(hidden)]
    fn from_ids(vat: &Vat, saved: &SavedRoots) -> Result<Self, Error>;
}

/// One root of a running or restored vat, as `Roots::from_ids` checks it.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct SavedRoot {
    /// Its id.
    pub id: ActorId,
    /// Its type, if the vat holds it.
    pub ty: Option<TypeId>,
    /// Its type's name, if the vat holds it.
    pub type_name: Option<&'static str>,
}

/// A vat's roots, and whether the vat was already running (nothing was restored).
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct SavedRoots {
    /// The roots in order.
    pub roots: Vec<SavedRoot>,
    /// True when the vat was running before (so asking for its roots restored nothing).
    pub running: bool,
}

fn root<T: Actor>(vat: &Vat, saved: &SavedRoots, i: usize) -> Result<Ref<T>, Error> {
    let mismatch = |what: String| Error::RootMismatch {
        vat: vat.name().to_string(),
        index: i,
        expected: format!("a {}", T::type_name()),
        saved: what,
        running: saved.running,
    };
    let Some(root) = saved.roots.get(i) else {
        return Err(mismatch(format!(
            "no root (it holds {} root(s))",
            saved.roots.len()
        )));
    };
    if root.ty != Some(TypeId::of::<T>()) {
        return Err(mismatch(match root.type_name {
            Some(name) => format!("a {name}"),
            None => format!("no actor (root {} is missing)", root.id),
        }));
    }
    Ok(Ref::new(vat.shared.clone(), root.id))
}

impl<T: Actor> Roots for Ref<T> {
    fn ids(&self) -> Vec<ActorId> {
        vec![self.id]
    }

    fn from_ids(vat: &Vat, saved: &SavedRoots) -> Result<Self, Error> {
        root(vat, saved, 0)
    }
}

macro_rules! tuple_roots {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Actor),+> Roots for ($(Ref<$t>,)+) {
            fn ids(&self) -> Vec<ActorId> {
                vec![$(self.$i.id),+]
            }

            fn from_ids(vat: &Vat, saved: &SavedRoots) -> Result<Self, Error> {
                Ok(($(root::<$t>(vat, saved, $i)?,)+))
            }
        }
    };
}

tuple_roots!(A 0);
tuple_roots!(A 0, B 1);
tuple_roots!(A 0, B 1, C 2);
tuple_roots!(A 0, B 1, C 2, D 3);

/// No roots: a vat started only to be restored (it has saved roots of its own).
impl Roots for () {
    fn ids(&self) -> Vec<ActorId> {
        Vec::new()
    }

    fn from_ids(_vat: &Vat, _saved: &SavedRoots) -> Result<Self, Error> {
        Ok(())
    }
}
