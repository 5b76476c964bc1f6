//! What a reference does with its actor's type: names it in errors, and erases to an
//! [`AnyRef`] and back. Apart from the rest of [`Ref`] because it needs the [`Actor`]
//! trait, which itself names `Ref`.

use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::Arc;

use super::{AnyRef, FarObject, Ref, elsewhere};
use crate::actor::Actor;
use crate::portrait::ActorId;

impl<T: Actor> Ref<T> {
    /// A far reference to a `T`: `object`, on another node, taken to be one. Nothing is
    /// checked here (a sturdyref carries no type); a method the object lacks breaks its
    /// promise with the peer's error.
    pub fn from_far(object: Arc<dyn FarObject>) -> Self {
        let (vat, hold) = elsewhere().clone();
        Ref {
            vat,
            id: ActorId(0),
            hold,
            far: Some(object),
            _type: PhantomData,
        }
    }

    /// `Counter#3 in vat "main"` (or `Counter at remote object ocapn://…` for a far
    /// reference): how errors name this actor.
    pub fn describe(&self) -> String {
        match &self.far {
            Some(far) => format!("{} at {}", T::type_name(), far.describe()),
            None => format!("{}{} in vat \"{}\"", T::type_name(), self.id, self.vat.name),
        }
    }
}

impl<T: Actor> std::fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ref({})", self.describe())
    }
}

/// A far `Ref<T>` becomes a far `AnyRef` whose entry is `T`'s, the type it was claimed
/// to be: [`downcast`](AnyRef::downcast) gives it back as a `Ref<T>` only.
impl<T: Actor> From<Ref<T>> for AnyRef {
    fn from(r: Ref<T>) -> Self {
        AnyRef {
            vat: r.vat,
            id: r.id,
            entry: T::entry(),
            hold: r.hold,
            far: r.far,
        }
    }
}

impl AnyRef {
    /// The typed reference, if the actor is a `T` (for a far reference: if it was
    /// claimed to be one).
    pub fn downcast<T: Actor>(&self) -> Option<Ref<T>> {
        (self.entry.type_id() == TypeId::of::<T>()).then(|| match &self.far {
            Some(far) => Ref::from_far(far.clone()),
            None => Ref::with_hold(self.vat.clone(), self.id, self.hold.clone()),
        })
    }
}
