//! Moving a registry between stores: every vat, the catalog and the name table copied
//! from one [`Store`] into another that holds nothing, in one commit, portraits
//! byte for byte (log to SQLite and back, say).

use std::collections::BTreeMap;

use super::{RegistryCommit, Store, StoreError, VatRecord, VatWrite};

/// What a copy moved.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    /// Vats (saved or listed).
    pub vats: usize,
    /// Actors' portraits (map entries included).
    pub portraits: usize,
    /// Names in the name table.
    pub names: usize,
}

/// Copies everything `from` holds into `to`, which must hold nothing, as one atomic
/// commit of `to`. A damaged vat is refused (salvage or destroy it first), and so is a
/// `to` that holds a vat already.
pub fn copy_registry(from: &mut dyn Store, to: &mut dyn Store) -> Result<Copied, StoreError> {
    let held = to.load()?;
    if let Some(name) = held.keys().next() {
        return Err(StoreError::Corrupt {
            path: to.describe().into(),
            offset: 0,
            detail: format!(
                "it already holds vat \"{name}\": copy a registry into an empty store only"
            ),
        });
    }
    let records: BTreeMap<String, VatRecord> = from.load()?;
    let mut names = from.load_names()?;
    names.sort();
    let mut writes = Vec::with_capacity(records.len());
    let mut portraits = 0;
    for (name, record) in &records {
        match record {
            VatRecord::Saved(graph) => {
                portraits += graph.actors.len();
                writes.push((name.as_str(), VatWrite::Snapshot(graph)));
            }
            VatRecord::Listed => writes.push((name.as_str(), VatWrite::List)),
            VatRecord::Damaged(why) => {
                return Err(StoreError::Corrupt {
                    path: from.describe().into(),
                    offset: 0,
                    detail: format!(
                        "vat \"{name}\" cannot be read ({why}); destroy it or restore the \
                         store from a backup before copying"
                    ),
                });
            }
        }
    }
    let copied = Copied {
        vats: writes.len(),
        portraits,
        names: names.len(),
    };
    to.commit(&RegistryCommit { writes, names })?;
    to.flush()?;
    Ok(copied)
}
