//! A provider's book of its machines: those that are up, those being made, and those
//! destroyed while being made (the saved part of its state that the lifecycle keeps).

use std::collections::{BTreeMap, BTreeSet};

use gobs_runtime::{Actor, Ref};
use serde::{Deserialize, Serialize};

/// A provider's machines: the saved part of its state that the lifecycle keeps.
pub struct MachineBook<M> {
    /// Machines that are up, by name.
    pub(super) machines: BTreeMap<String, Ref<M>>,
    /// Machines being made.
    pub(super) creating: BTreeSet<String>,
    /// Machines being made that were destroyed meanwhile.
    pub(super) cancelled: BTreeSet<String>,
}

impl<M: Actor> MachineBook<M> {
    /// An empty book.
    pub fn new() -> Self {
        MachineBook {
            machines: BTreeMap::new(),
            creating: BTreeSet::new(),
            cancelled: BTreeSet::new(),
        }
    }

    /// Machine `name`, if it is up.
    pub fn get(&self, name: &str) -> Option<&Ref<M>> {
        self.machines.get(name)
    }

    /// Names of the machines that are up, sorted.
    pub fn names(&self) -> Vec<String> {
        self.machines.keys().cloned().collect()
    }

    /// Whether machine `name` is being made.
    pub fn is_creating(&self, name: &str) -> bool {
        self.creating.contains(name)
    }

    /// After a restart: creations that were in flight are gone (their promises did not
    /// survive); the boss marks their machines failed, and destroying them cleans up.
    pub fn forget_in_flight(&mut self) {
        self.creating.clear();
        self.cancelled.clear();
    }
}

impl<M: Actor> Default for MachineBook<M> {
    fn default() -> Self {
        Self::new()
    }
}

// By hand: derives would ask `M: Clone`/`M: Debug`/`M: Serialize`, which actors are not;
// only `Ref<M>` needs to be.
impl<M> Clone for MachineBook<M> {
    fn clone(&self) -> Self {
        MachineBook {
            machines: self.machines.clone(),
            creating: self.creating.clone(),
            cancelled: self.cancelled.clone(),
        }
    }
}

impl<M: Actor> std::fmt::Debug for MachineBook<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineBook")
            .field("machines", &self.machines)
            .field("creating", &self.creating)
            .field("cancelled", &self.cancelled)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "M: Actor", deserialize = "M: Actor"))]
struct BookRepr<M> {
    machines: BTreeMap<String, Ref<M>>,
    creating: BTreeSet<String>,
    cancelled: BTreeSet<String>,
}

impl<M: Actor> Serialize for MachineBook<M> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        BookRepr {
            machines: self.machines.clone(),
            creating: self.creating.clone(),
            cancelled: self.cancelled.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de, M: Actor> Deserialize<'de> for MachineBook<M> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = BookRepr::<M>::deserialize(deserializer)?;
        Ok(MachineBook {
            machines: repr.machines,
            creating: repr.creating,
            cancelled: repr.cancelled,
        })
    }
}
