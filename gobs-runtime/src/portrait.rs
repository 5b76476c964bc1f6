//! Portraits: the saved form of an actor (registry name, version, serialized constructor args).
//!
//! A portrait is what a store keeps for each actor. The `args` bytes are the actor's
//! constructor arguments encoded with MessagePack (rmp-serde), with references inside them
//! replaced by stable ids; the store treats them as opaque bytes.

use serde::{Deserialize, Serialize};

/// The id of an actor inside its vat. Stable across restarts of a persistent vat.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActorId(pub(crate) u64);

impl ActorId {
    /// The raw number, for logs and store formats.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Builds an id from a number read back from a store. Ids only name actors inside a
    /// store or a vat: holding one gives no access to the actor (that takes a `Ref`).
    pub fn from_raw(raw: u64) -> Self {
        ActorId(raw)
    }
}

impl std::fmt::Display for ActorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The saved form of one actor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Portrait {
    /// Registry name of the actor's entry (e.g. `gobs_runtime::lib::GHash`).
    pub name: String,
    /// Version of the actor definition that wrote `args`.
    pub version: u32,
    /// Constructor arguments, MessagePack-encoded.
    #[serde(with = "serde_bytes_compat")]
    pub args: Vec<u8>,
}

/// The whole saved graph of one persistent vat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    /// The vat's roots, in the order its root constructor returned them.
    pub roots: Vec<ActorId>,
    /// The next actor id the vat will hand out (ids are never reused).
    pub next_id: u64,
    /// Every saved actor.
    #[serde(deserialize_with = "sorted_map::deserialize")]
    pub actors: std::collections::BTreeMap<ActorId, Portrait>,
}

/// Decodes a map by collecting its entries first: a `BTreeMap` built from sorted entries
/// is built in one pass (stores write it sorted), instead of one tree walk per insert.
mod sorted_map {
    use std::collections::BTreeMap;

    use serde::Deserializer;
    use serde::de::{MapAccess, Visitor};

    use super::{ActorId, Portrait};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ActorId, Portrait>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BTreeMap<ActorId, Portrait>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of actor ids to portraits")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(entry) = map.next_entry::<ActorId, Portrait>()? {
                    entries.push(entry);
                }
                Ok(entries.into_iter().collect())
            }
        }
        d.deserialize_map(V)
    }
}

/// What one churn changed: the unit a store commits atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// New roots, when they changed (always set by the first commit of a vat).
    pub roots: Option<Vec<ActorId>>,
    /// The next actor id after this churn.
    pub next_id: u64,
    /// Actors added or changed in this churn, with their new portraits.
    pub upserts: Vec<(ActorId, Portrait)>,
    /// Actors no root reaches any more: removed from the store.
    pub removes: Vec<ActorId>,
}

impl Delta {
    /// True when committing this delta would change nothing.
    pub fn is_empty(&self) -> bool {
        self.roots.is_none() && self.upserts.is_empty() && self.removes.is_empty()
    }
}

impl Graph {
    /// Applies a committed delta to this graph (what restoring a log replays).
    pub fn apply(&mut self, delta: &Delta) {
        if let Some(roots) = &delta.roots {
            self.roots.clone_from(roots);
        }
        self.next_id = self.next_id.max(delta.next_id);
        for (id, portrait) in &delta.upserts {
            self.actors.insert(*id, portrait.clone());
        }
        for id in &delta.removes {
            self.actors.remove(id);
        }
    }
}

/// Encodes `args` as a MessagePack binary (bin8/16/32) rather than an array of integers.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("portrait argument bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}
