//! Type-name interning: a registry-wide table of actor registry names, so that a portrait
//! or a reference names its actor type by a small integer instead of a 30-byte string.
//!
//! The table lives in the registry's store and grows only. A name gets its number the
//! first time a vat of the registry encodes it; every commit carries the names numbered
//! since the last commit, so a portrait never reaches the store before the names it uses.
//! A lone persistent vat is a registry of one vat and numbers its names too; names written
//! in full (by older stores) are always read back, so old stores still restore.

use std::collections::HashMap;

/// Registry names and their numbers.
#[derive(Debug, Default)]
pub(crate) struct NameTable {
    by_name: HashMap<String, u32>,
    names: Vec<String>,
    /// How many of `names` the store holds.
    committed: usize,
}

impl NameTable {
    /// The table as the store holds it: each name with its number. (A number the store
    /// lacks reads back as an empty name, which no actor has: a clear error on use.)
    pub(crate) fn loaded(pairs: Vec<(u32, String)>) -> NameTable {
        let len = pairs
            .iter()
            .map(|(id, _)| *id as usize + 1)
            .max()
            .unwrap_or(0);
        let mut names = vec![String::new(); len];
        for (id, name) in pairs {
            names[id as usize] = name;
        }
        let by_name = names
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.is_empty())
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        NameTable {
            by_name,
            committed: names.len(),
            names,
        }
    }

    /// The number of `name`, numbering it if it is new.
    pub(crate) fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// The name numbered `id`.
    pub(crate) fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }

    /// Names numbered since the last commit, with their numbers.
    pub(crate) fn pending(&self) -> Vec<(u32, String)> {
        self.names[self.committed..]
            .iter()
            .enumerate()
            .map(|(i, n)| ((self.committed + i) as u32, n.clone()))
            .collect()
    }

    /// The store now holds the first `upto` names.
    pub(crate) fn committed(&mut self, upto: usize) {
        self.committed = self.committed.max(upto.min(self.names.len()));
    }
}
