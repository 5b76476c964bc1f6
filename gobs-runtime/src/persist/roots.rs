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
    /// Rebuilds the roots from restored ids, checking each actor's type.
    #[doc(hidden)]
    fn from_ids(vat: &Vat, ids: &[(ActorId, Option<TypeId>)]) -> Result<Self, Error>;
}

fn root<T: Actor>(vat: &Vat, ids: &[(ActorId, Option<TypeId>)], i: usize) -> Result<Ref<T>, Error> {
    let Some((id, ty)) = ids.get(i) else {
        return Err(Error::Persistence(format!(
            "vat \"{}\" was saved with {} root(s), but this program expects at least {}: \
             the root constructor's type changed",
            vat.name(),
            ids.len(),
            i + 1
        )));
    };
    if *ty != Some(TypeId::of::<T>()) {
        return Err(Error::Persistence(format!(
            "root {i} of vat \"{}\" (actor {id}) is not a {}: the root constructor's type \
             changed since the vat was saved",
            vat.name(),
            T::type_name()
        )));
    }
    Ok(Ref::new(vat.shared.clone(), *id))
}

impl<T: Actor> Roots for Ref<T> {
    fn ids(&self) -> Vec<ActorId> {
        vec![self.id]
    }

    fn from_ids(vat: &Vat, ids: &[(ActorId, Option<TypeId>)]) -> Result<Self, Error> {
        root(vat, ids, 0)
    }
}

macro_rules! tuple_roots {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Actor),+> Roots for ($(Ref<$t>,)+) {
            fn ids(&self) -> Vec<ActorId> {
                vec![$(self.$i.id),+]
            }

            fn from_ids(vat: &Vat, ids: &[(ActorId, Option<TypeId>)]) -> Result<Self, Error> {
                Ok(($(root::<$t>(vat, ids, $i)?,)+))
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

    fn from_ids(_vat: &Vat, _ids: &[(ActorId, Option<TypeId>)]) -> Result<Self, Error> {
        Ok(())
    }
}
