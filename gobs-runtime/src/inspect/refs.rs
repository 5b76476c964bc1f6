//! The references between stored actors: read from the portraits' bytes alone, without
//! the program's types.
//!
//! A reference is saved as `[0, id]` (an actor of the same vat) or `[1, vat, id]` (an
//! actor of another vat of the registry). Without the types, such an array cannot be told
//! from data of the same shape, so a value counts as a reference when it has that shape
//! *and* names an actor the store holds. The graph therefore never misses a reference,
//! and may hold an edge that is data: an actor reported unreachable is truly unreachable.
//! A map saved as entry portraits (`JournalMap`) links its owner to each entry.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt::Write as _;

use rmpv::Value;

use super::{ActorInfo, StoreImage, decode_args};
use crate::persist::entries::{ENTRY_NAME, owner_of};
use crate::portrait::ActorId;

/// Where a reference points.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Target {
    /// The vat.
    pub vat: String,
    /// The actor's id in it.
    pub id: u64,
}

/// One reference from a stored actor to another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Reference {
    /// The actor holding it.
    pub from: Target,
    /// The actor it points at.
    pub to: Target,
}

impl StoreImage {
    fn holds(&self, vat: &str, id: u64) -> bool {
        self.graph(vat)
            .is_some_and(|g| g.actors.contains_key(&ActorId::from_raw(id)))
    }

    /// Every reference between stored actors, sorted (see the module docs for how they
    /// are found).
    pub fn references(&self) -> Vec<Reference> {
        let mut out = BTreeSet::new();
        for (vat, graph) in self.vats.keys().filter_map(|v| Some((v, self.graph(v)?))) {
            for (id, p) in &graph.actors {
                let from = Target {
                    vat: vat.clone(),
                    id: id.get(),
                };
                if p.name == ENTRY_NAME
                    && let Some((owner, _)) = owner_of(&p.args)
                {
                    out.insert(Reference {
                        from: Target {
                            vat: vat.clone(),
                            id: owner.get(),
                        },
                        to: from.clone(),
                    });
                }
                if let Ok(value) = decode_args(&p.args) {
                    let mut found = Vec::new();
                    self.scan(vat, &value, &mut found);
                    out.extend(found.into_iter().map(|to| Reference {
                        from: from.clone(),
                        to,
                    }));
                }
            }
        }
        out.into_iter().collect()
    }

    /// The reference-shaped values in `value` that name a stored actor.
    fn scan(&self, vat: &str, value: &Value, found: &mut Vec<Target>) {
        match value {
            Value::Array(items) => {
                let target = match items.as_slice() {
                    [Value::Integer(k), Value::Integer(id)] if k.as_u64() == Some(0) => {
                        id.as_u64().map(|id| (vat.to_string(), id))
                    }
                    [Value::Integer(k), Value::String(v), Value::Integer(id)]
                        if k.as_u64() == Some(1) =>
                    {
                        v.as_str()
                            .zip(id.as_u64())
                            .map(|(v, id)| (v.to_string(), id))
                    }
                    _ => None,
                };
                match target {
                    Some((vat, id)) if self.holds(&vat, id) => found.push(Target { vat, id }),
                    _ => items.iter().for_each(|v| self.scan(vat, v, found)),
                }
            }
            Value::Map(pairs) => {
                for (k, v) in pairs {
                    self.scan(vat, k, found);
                    self.scan(vat, v, found);
                }
            }
            _ => {}
        }
    }

    /// The actors no vat's root reaches through [`references`](StoreImage::references).
    /// A registry only saves what its roots reach, so any actor listed here is a sign of
    /// damage or of a bug.
    pub fn unreachable(&self) -> Vec<ActorInfo> {
        let refs = self.references();
        let mut seen: HashSet<Target> = HashSet::new();
        let mut queue: VecDeque<Target> = VecDeque::new();
        for (vat, graph) in self.vats.keys().filter_map(|v| Some((v, self.graph(v)?))) {
            for root in &graph.roots {
                queue.push_back(Target {
                    vat: vat.clone(),
                    id: root.get(),
                });
            }
        }
        while let Some(t) = queue.pop_front() {
            if !seen.insert(t.clone()) {
                continue;
            }
            let start = refs.partition_point(|r| r.from < t);
            for r in refs[start..].iter().take_while(|r| r.from == t) {
                queue.push_back(r.to.clone());
            }
        }
        self.actors()
            .into_iter()
            .filter(|a| {
                !seen.contains(&Target {
                    vat: a.vat.clone(),
                    id: a.id,
                })
            })
            .collect()
    }

    /// The reference graph in Graphviz's dot language: one cluster per vat, one node per
    /// actor (`Type #id`, roots in bold), one edge per reference.
    pub fn dot(&self) -> String {
        let node = |t: &Target| quote(&format!("{}#{}", t.vat, t.id));
        let mut out = String::from("digraph gobs {\n  node [shape=box, fontname=monospace];\n");
        for (n, (vat, graph)) in self
            .vats
            .keys()
            .filter_map(|v| Some((v, self.graph(v)?)))
            .enumerate()
        {
            let _ = writeln!(out, "  subgraph cluster_{n} {{\n    label={};", quote(vat));
            for (id, p) in &graph.actors {
                let short = p.name.rsplit("::").next().unwrap_or(&p.name);
                let bold = if graph.roots.contains(id) {
                    ", style=bold"
                } else {
                    ""
                };
                let t = Target {
                    vat: vat.clone(),
                    id: id.get(),
                };
                let _ = writeln!(
                    out,
                    "    {} [label={}{bold}];",
                    node(&t),
                    quote(&format!("{short} #{}", id.get()))
                );
            }
            out.push_str("  }\n");
        }
        for r in self.references() {
            let _ = writeln!(out, "  {} -> {};", node(&r.from), node(&r.to));
        }
        out.push_str("}\n");
        out
    }
}

/// A dot string literal.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
