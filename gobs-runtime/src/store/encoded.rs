//! A graph kept as MessagePack, one encoded entry per actor, so that writing the whole
//! graph costs a copy (no re-encoding) and a commit re-encodes only what it changed.
//!
//! [`EncodedGraph::write_body`] writes exactly the bytes `rmp_serde::to_vec(&graph)` gives,
//! so the body decodes with `rmp_serde` as a [`Graph`].

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::portrait::{ActorId, Delta, Graph, Portrait};

/// One actor's map entry in an encoded [`Graph`]: its id then its portrait, as MessagePack.
pub(crate) type Entry = Box<[u8]>;

/// A [`Graph`] held as encoded entries.
#[derive(Clone, Debug, Default)]
pub(crate) struct EncodedGraph {
    roots: Vec<ActorId>,
    next_id: u64,
    actors: BTreeMap<ActorId, Entry>,
    /// Sum of the entries' lengths.
    entry_bytes: u64,
}

/// A delta whose upserts are already encoded (so applying it cannot fail half-way).
#[derive(Debug)]
pub(crate) struct EncodedDelta<'a> {
    delta: &'a Delta,
    upserts: Vec<(ActorId, Entry)>,
}

/// Encodes one actor's map entry.
pub(crate) fn encode_entry(id: ActorId, portrait: &Portrait) -> Result<Entry, String> {
    let mut buf = Vec::with_capacity(portrait.name.len() + portrait.args.len() + 16);
    rmp_serde::encode::write(&mut buf, &id).map_err(|e| e.to_string())?;
    rmp_serde::encode::write(&mut buf, portrait).map_err(|e| e.to_string())?;
    Ok(buf.into_boxed_slice())
}

/// Encodes the upserts of `delta`, ready to apply.
pub(crate) fn encode_delta(delta: &Delta) -> Result<EncodedDelta<'_>, String> {
    let upserts = delta
        .upserts
        .iter()
        .map(|(id, p)| Ok((*id, encode_entry(*id, p)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(EncodedDelta { delta, upserts })
}

/// The MessagePack header of a map of `n` entries (the smallest form, as rmp writes it).
fn map_header(n: usize) -> io::Result<([u8; 5], usize)> {
    let mut h = [0u8; 5];
    if n <= 15 {
        h[0] = 0x80 | n as u8;
        Ok((h, 1))
    } else if let Ok(n) = u16::try_from(n) {
        h[0] = 0xde;
        h[1..3].copy_from_slice(&n.to_be_bytes());
        Ok((h, 3))
    } else if let Ok(n) = u32::try_from(n) {
        h[0] = 0xdf;
        h[1..5].copy_from_slice(&n.to_be_bytes());
        Ok((h, 5))
    } else {
        Err(io::Error::other("more than 2^32 actors in one graph"))
    }
}

impl EncodedGraph {
    /// Encodes every actor of `graph`.
    pub(crate) fn from_graph(graph: &Graph) -> Result<Self, String> {
        let mut out = EncodedGraph {
            roots: graph.roots.clone(),
            next_id: graph.next_id,
            actors: BTreeMap::new(),
            entry_bytes: 0,
        };
        // Collected from the graph's sorted order: built in one pass.
        out.actors = graph
            .actors
            .iter()
            .map(|(id, p)| Ok((*id, encode_entry(*id, p)?)))
            .collect::<Result<_, String>>()?;
        out.entry_bytes = out.actors.values().map(|e| e.len() as u64).sum();
        Ok(out)
    }

    /// Decodes the graph back (what `load` returns after commits).
    pub(crate) fn to_graph(&self) -> Result<Graph, String> {
        let mut actors = BTreeMap::new();
        for (id, e) in &self.actors {
            let mut slice: &[u8] = e;
            let _: ActorId = rmp_serde::decode::from_read(&mut slice).map_err(|e| e.to_string())?;
            let p: Portrait = rmp_serde::from_slice(slice).map_err(|e| e.to_string())?;
            actors.insert(*id, p);
        }
        Ok(Graph {
            roots: self.roots.clone(),
            next_id: self.next_id,
            actors,
        })
    }

    /// Applies an encoded delta (same meaning as [`Graph::apply`]).
    pub(crate) fn apply(&mut self, d: EncodedDelta<'_>) {
        if let Some(roots) = &d.delta.roots {
            self.roots.clone_from(roots);
        }
        self.next_id = self.next_id.max(d.delta.next_id);
        for (id, e) in d.upserts {
            self.entry_bytes += e.len() as u64;
            if let Some(old) = self.actors.insert(id, e) {
                self.entry_bytes -= old.len() as u64;
            }
        }
        for id in &d.delta.removes {
            if let Some(old) = self.actors.remove(id) {
                self.entry_bytes -= old.len() as u64;
            }
        }
    }

    /// Number of actors.
    /// The ids held in `range`, in order.
    pub(crate) fn ids_in(&self, range: std::ops::Range<ActorId>) -> Vec<ActorId> {
        self.actors.range(range).map(|(id, _)| *id).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.actors.len()
    }

    /// Encoded bytes of the actors' entries alone (ids and portraits).
    pub(crate) fn entry_bytes(&self) -> u64 {
        self.entry_bytes
    }

    /// Encodes the small fields that precede the actors: the struct header, roots, next
    /// id and the map header.
    fn prefix(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0x93]; // Graph is a struct of 3 fields, encoded as an array
        rmp_serde::encode::write(&mut buf, &self.roots).map_err(io::Error::other)?;
        rmp_serde::encode::write(&mut buf, &self.next_id).map_err(io::Error::other)?;
        let (h, n) = map_header(self.actors.len())?;
        buf.extend_from_slice(&h[..n]);
        Ok(buf)
    }

    /// Length of [`EncodedGraph::write_body`]'s output.
    pub(crate) fn body_len(&self) -> io::Result<u64> {
        Ok(self.prefix()?.len() as u64 + self.entry_bytes)
    }

    /// Writes the graph's MessagePack encoding to `w`, feeding it to `crc` too; returns
    /// its length.
    pub(crate) fn write_body<W: Write>(
        &self,
        w: &mut W,
        crc: &mut crc32fast::Hasher,
    ) -> io::Result<u64> {
        let prefix = self.prefix()?;
        w.write_all(&prefix)?;
        crc.update(&prefix);
        for e in self.actors.values() {
            w.write_all(e)?;
            crc.update(e);
        }
        Ok(prefix.len() as u64 + self.entry_bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn graph(n: u64) -> Graph {
        let mut g = Graph {
            roots: vec![ActorId(0), ActorId(3)],
            next_id: n + 7,
            ..Graph::default()
        };
        for i in 0..n {
            g.actors.insert(
                ActorId(i * 1000),
                Portrait {
                    name: format!("gobs::test::Actor{}", i % 3),
                    version: (i % 300) as u32,
                    args: vec![i as u8; (i % 70) as usize],
                },
            );
        }
        g
    }

    #[test]
    fn body_is_rmp_serde_encoding() {
        for n in [0, 1, 15, 16, 300, 70_000] {
            let g = graph(n);
            let enc = EncodedGraph::from_graph(&g).unwrap();
            let mut out = Vec::new();
            let mut crc = crc32fast::Hasher::new();
            let len = enc.write_body(&mut out, &mut crc).unwrap();
            assert_eq!(out, rmp_serde::to_vec(&g).unwrap(), "n = {n}");
            assert_eq!(len, out.len() as u64);
            assert_eq!(enc.body_len().unwrap(), len);
            assert_eq!(crc.finalize(), crc32fast::hash(&out));
            assert_eq!(enc.to_graph().unwrap(), g);
        }
    }

    #[test]
    fn apply_matches_graph_apply() {
        let mut g = graph(40);
        let mut enc = EncodedGraph::from_graph(&g).unwrap();
        let d = Delta {
            roots: Some(vec![ActorId(5)]),
            next_id: 99,
            upserts: vec![
                (
                    ActorId(1000),
                    Portrait {
                        name: "x".into(),
                        version: 2,
                        args: vec![1, 2, 3],
                    },
                ),
                (
                    ActorId(123_456),
                    Portrait {
                        name: "y".into(),
                        version: 1,
                        args: vec![],
                    },
                ),
            ],
            removes: vec![ActorId(2000), ActorId(999_999)],
        };
        g.apply(&d);
        enc.apply(encode_delta(&d).unwrap());
        assert_eq!(enc.to_graph().unwrap(), g);
        assert_eq!(
            enc.entry_bytes(),
            EncodedGraph::from_graph(&g).unwrap().entry_bytes()
        );
    }
}
