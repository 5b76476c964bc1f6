//! How a reference is encoded and decoded: as the codec in force on this thread says
//! (see [`crate::codec`]). Inside a portrait (while a persistent vat saves) a reference
//! becomes a stable id; in a carrying call it travels in a table beside the bytes; in a
//! by-name result it is refused; anywhere else, encoding one is an error: references are
//! capabilities, not data.

use std::sync::Arc;

use serde::de::Error as _;
use serde::ser::{Error as _, SerializeTuple};
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::carry;
use crate::codec::Codec;
use crate::entry::ActorEntry;
use crate::methods::DispatchError;
use crate::persist::context::{
    self as persist, Decoded, SavedName, decode_ref, intern_name, lookup_entry,
};
use crate::portrait::ActorId;
use crate::reference::{AnyRef, Carried, FarObject, Ref};
use crate::vat::context::{carrying, with_codec, with_current_codec};
use crate::vat::{Hold, VatShared};

impl<T: Actor> Serialize for Ref<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_ref(
            Target {
                vat: &self.vat,
                id: self.id,
                far: self.far.as_ref(),
            },
            || self.describe(),
            || self.clone().into(),
            serializer,
        )
    }
}

impl<'de, T: Actor> Deserialize<'de> for Ref<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if carrying() {
            let any = carry::deserialize_actor(deserializer, Some(T::entry()))?;
            return carry::typed::<T>(any).map_err(D::Error::custom);
        }
        match decode_ref(deserializer, T::entry())? {
            Decoded::Near(vat, id, None) => Ok(Ref::new(vat, id)),
            Decoded::Near(vat, id, Some(hold)) => Ok(Ref::with_hold(vat, id, hold)),
            Decoded::Far(far) => Ok(Ref::from_far(far)),
        }
    }
}

/// What a reference is, to encode it.
struct Target<'a> {
    vat: &'a Arc<VatShared>,
    id: ActorId,
    far: Option<&'a Arc<dyn FarObject>>,
}

impl AnyRef {
    fn target(&self) -> Target<'_> {
        Target {
            vat: &self.vat,
            id: self.id,
            far: self.far.as_ref(),
        }
    }
}

impl Serialize for AnyRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let describe = || self.describe();
        if carrying() {
            return serialize_ref(self.target(), describe, || self.clone(), serializer);
        }
        struct Inner<'a>(&'a AnyRef);
        impl Serialize for Inner<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let r = self.0;
                serialize_ref(r.target(), || r.describe(), || r.clone(), s)
            }
        }
        let mut t = serializer.serialize_tuple(2)?;
        // In a registry the name is interned: a small number instead of the string.
        match intern_name(self.entry.name) {
            Some(id) => t.serialize_element(&id)?,
            None => t.serialize_element(self.entry.name)?,
        }
        t.serialize_element(&Inner(self))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for AnyRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if carrying() {
            return carry::deserialize_actor(deserializer, None);
        }
        struct Saved(Decoded, &'static ActorEntry);
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Saved;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a saved reference: [entry name, reference]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Saved, A::Error> {
                let name: SavedName = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("saved reference without its actor name"))?;
                let name = name.resolve().map_err(A::Error::custom)?;
                let entry = lookup_entry(&name).map_err(A::Error::custom)?;
                let decoded = seq
                    .next_element_seed(RefSeed(entry))?
                    .ok_or_else(|| A::Error::custom("saved reference without its id"))?;
                Ok(Saved(decoded, entry))
            }
        }
        struct RefSeed(&'static ActorEntry);
        impl<'de> serde::de::DeserializeSeed<'de> for RefSeed {
            type Value = Decoded;
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                decode_ref(d, self.0)
            }
        }
        match deserializer.deserialize_tuple(2, V)? {
            Saved(Decoded::Near(vat, id, hold), entry) => {
                let hold = hold.unwrap_or_else(|| Hold::of(&vat, id));
                Ok(AnyRef {
                    vat,
                    id,
                    entry,
                    hold,
                    far: None,
                })
            }
            Saved(Decoded::Far(far), entry) => Ok(AnyRef::far(far, entry)),
        }
    }
}

/// Encodes a reference, as the codec in force says.
fn serialize_ref<S: serde::Serializer>(
    target: Target<'_>,
    describe: impl Fn() -> String,
    as_any: impl FnOnce() -> AnyRef,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    enum Then {
        Carry(Result<u32, String>),
        Save(Result<persist::Form, String>),
    }
    let Target { vat, id, far } = target;
    let then = with_current_codec(|c| match c {
        Some(Codec::Carry(tables)) => Ok(Then::Carry(tables.put(match far {
            Some(far) => Carried::far(far.clone()),
            None => Carried::actor(as_any()),
        }))),
        Some(Codec::ByName(first)) => {
            let reference = describe();
            let message = format!("{reference} cannot be carried by a call by name");
            first.get_or_insert(reference);
            Err(message)
        }
        Some(Codec::Save(ctx)) => Ok(Then::Save(match far {
            Some(far) => persist::Form::of_far(far.as_ref()),
            None => ctx.form_of(vat, id, &describe),
        })),
        Some(Codec::Restore(_)) | None => Ok(Then::Save(Err(persist::unsaved(&describe)))),
    });
    match then.map_err(S::Error::custom)? {
        Then::Carry(index) => carry::placeholder(index.map_err(S::Error::custom)?, serializer),
        Then::Save(form) => form.map_err(S::Error::custom)?.serialize(id, serializer),
    }
}

/// Encodes a by-name call's result as MessagePack. A reference inside (a `Ref`, an
/// `AnyRef`, a `Value::Ref`) is refused as [`DispatchError::RefInResult`], naming it:
/// results by name are data, references are capabilities. Inside a carrying call the
/// references are carried instead (see [`crate::carry`]).
pub(crate) fn encode_by_name<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, DispatchError> {
    let (encoded, reference) = if carrying() {
        (rmp_serde::to_vec(value), None)
    } else {
        match with_codec(Codec::ByName(None), || rmp_serde::to_vec(value)) {
            (encoded, Codec::ByName(reference)) => (encoded, reference),
            (encoded, _) => (encoded, None),
        }
    };
    match (encoded, reference) {
        (Ok(bytes), _) => Ok(bytes),
        (Err(_), Some(reference)) => Err(DispatchError::RefInResult { reference }),
        (Err(e), None) => Err(DispatchError::BadResult(e.to_string())),
    }
}
