//! A graph kept as its log snapshot encodes it: per actor, its type (interned: a few
//! distinct types serve many actors) and its arguments' bytes. Writing the whole graph
//! is then a copy (no re-encoding), a commit touches only what it changed, and the size
//! of a fresh snapshot is kept exact at every commit (it decides compaction). The body
//! layout is documented in [`compact`](super::compact).
//!
//! A graph read from a log file keeps the file's bytes and points into them: opening a
//! log allocates nothing per actor. An actor a commit changes gets bytes of its own; the
//! file's bytes are let go with the graph (a log that grew past its snapshot is compacted,
//! which bounds what they hold beyond the live actors).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::ops::{Bound, Range};
use std::sync::Arc;

use super::compact::{self, Link, link_len, write_varint};
use crate::portrait::{ActorId, Delta, Graph, Portrait};

/// One actor: its type (an index into [`Types`]) and its arguments.
#[derive(Clone, Debug)]
struct Entry {
    ty: u32,
    args: Args,
}

/// Where an actor's arguments are.
#[derive(Clone, Debug)]
pub(crate) enum Args {
    /// In the bytes the graph was read from.
    Loaded(Range<usize>),
    /// In bytes of their own (written since).
    Own(Box<[u8]>),
}

impl Args {
    pub(crate) fn own(bytes: &[u8]) -> Args {
        Args::Own(bytes.into())
    }

    /// The arguments, `loaded` being the bytes a [`Args::Loaded`] range points into.
    pub(crate) fn bytes<'a>(&'a self, loaded: &'a [u8]) -> &'a [u8] {
        match self {
            Args::Loaded(range) => loaded.get(range.clone()).unwrap_or_default(),
            Args::Own(bytes) => bytes,
        }
    }
}

/// The distinct portrait types of a graph, encoded once each.
#[derive(Clone, Debug, Default)]
struct Types {
    list: Vec<TypeInfo>,
    index: HashMap<Box<[u8]>, u32>,
}

#[derive(Clone, Debug)]
struct TypeInfo {
    bytes: Box<[u8]>,
    name: String,
    version: u32,
}

impl Types {
    /// The index of the type encoded as `bytes`, adding it (checked) when new.
    fn intern(&mut self, bytes: &[u8]) -> Result<u32, String> {
        if let Some(i) = self.index.get(bytes) {
            return Ok(*i);
        }
        let (name, version) = compact::decode_type(bytes)?;
        let i = u32::try_from(self.list.len()).map_err(|_| "more than 2^32 actor types")?;
        self.list.push(TypeInfo {
            bytes: bytes.into(),
            name,
            version,
        });
        self.index.insert(bytes.into(), i);
        Ok(i)
    }

    fn of(&mut self, p: &Portrait) -> u32 {
        let bytes = compact::encode_type(&p.name, p.version);
        // `encode_type` output always decodes.
        self.intern(&bytes).unwrap_or(0)
    }
}

/// One saved actor as a graph holds it, borrowed.
#[derive(Copy, Clone, Debug)]
pub(crate) struct PortraitRef<'a> {
    pub id: ActorId,
    pub name: &'a str,
    pub version: u32,
    pub args: &'a [u8],
}

/// A [`Graph`] held encoded.
#[derive(Clone, Debug, Default)]
pub(crate) struct EncodedGraph {
    roots: Vec<ActorId>,
    next_id: u64,
    actors: BTreeMap<ActorId, Entry>,
    types: Types,
    /// Bytes the actors take in a compact body, exactly.
    entry_bytes: u64,
    /// The bytes the graph was read from, which [`Args::Loaded`] point into.
    loaded: Arc<Vec<u8>>,
}

/// The MessagePack header of a `bin 32` of `n` bytes (how a compact body is framed in a
/// record, so the record stays a MessagePack array).
pub(crate) const BIN32_LEN: u64 = 5;

impl EncodedGraph {
    fn args<'a>(&'a self, e: &'a Entry) -> &'a [u8] {
        e.args.bytes(&self.loaded)
    }

    /// The bytes the graph was read from (which its loaded actors' arguments lie in).
    pub(crate) fn file(&self) -> &Arc<Vec<u8>> {
        &self.loaded
    }

    fn link<'a>(&'a self, id: ActorId, e: &'a Entry) -> Link<'a> {
        Link {
            id,
            ty: e.ty,
            ty_len: self
                .types
                .list
                .get(e.ty as usize)
                .map_or(0, |t| t.bytes.len()),
            args: self.args(e),
        }
    }

    /// Builds a graph from actors in increasing id order (one pass, no tree walks), their
    /// loaded arguments in `loaded`.
    fn from_sorted(
        roots: Vec<ActorId>,
        next_id: u64,
        types: Types,
        sorted: Vec<(ActorId, Entry)>,
        loaded: Arc<Vec<u8>>,
    ) -> Self {
        let mut out = EncodedGraph {
            roots,
            next_id,
            types,
            loaded,
            ..EncodedGraph::default()
        };
        let mut prev: Option<Link<'_>> = None;
        let mut bytes = 0;
        for (id, e) in &sorted {
            let this = out.link(*id, e);
            bytes += link_len(prev, this);
            prev = Some(this);
        }
        out.entry_bytes = bytes;
        out.actors = sorted.into_iter().collect();
        out
    }

    /// Encodes every actor of `graph`.
    pub(crate) fn from_graph(graph: &Graph) -> Self {
        let mut types = Types::default();
        let sorted = graph
            .actors
            .iter()
            .map(|(id, p)| {
                let ty = types.of(p);
                (
                    *id,
                    Entry {
                        ty,
                        args: Args::own(&p.args),
                    },
                )
            })
            .collect();
        EncodedGraph::from_sorted(
            graph.roots.clone(),
            graph.next_id,
            types,
            sorted,
            Arc::default(),
        )
    }

    /// Reads a compact snapshot body (see [`compact`]) from a copy of it.
    pub(crate) fn from_compact(body: &[u8]) -> Result<Self, String> {
        EncodedGraph::from_loaded(Arc::new(body.to_vec()), 0..body.len())
    }

    /// Reads the compact snapshot body at `body` in `file` (a log file's bytes), keeping
    /// the bytes: each actor's arguments stay where they are.
    pub(crate) fn from_loaded(file: Arc<Vec<u8>>, body: Range<usize>) -> Result<Self, String> {
        let base = file.as_ptr().addr();
        let bytes = file
            .get(body)
            .ok_or("the snapshot body lies outside the file")?;
        let head = compact::read_head(bytes)?;
        let mut reader = head.actors;
        let mut types = Types::default();
        let cap = usize::try_from(reader.left()).unwrap_or(0).min(bytes.len());
        let mut sorted = Vec::with_capacity(cap);
        let mut ty = 0;
        while let Some(actor) = reader.next_actor()? {
            if let Some(bytes) = actor.ty {
                ty = types.intern(bytes)?;
            }
            // The arguments are a slice of `file`: where they start in it.
            let start = actor.args.as_ptr().addr() - base;
            sorted.push((
                actor.id,
                Entry {
                    ty,
                    args: Args::Loaded(start..start + actor.args.len()),
                },
            ));
        }
        Ok(EncodedGraph::from_sorted(
            head.roots,
            head.next_id,
            types,
            sorted,
            file,
        ))
    }

    /// Decodes the graph back (what `load` returns).
    pub(crate) fn to_graph(&self) -> Graph {
        let actors = self
            .actors
            .iter()
            .map(|(id, e)| {
                let t = &self.types.list[e.ty as usize];
                let p = Portrait {
                    name: t.name.clone(),
                    version: t.version,
                    args: self.args(e).to_vec(),
                };
                (*id, p)
            })
            .collect();
        Graph {
            roots: self.roots.clone(),
            next_id: self.next_id,
            actors,
        }
    }

    /// Every actor, in id order, as the graph holds it: its type (an index for
    /// [`EncodedGraph::type_at`]) and where its arguments are (in [`EncodedGraph::file`]
    /// when loaded).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (ActorId, u32, &Args)> {
        self.actors.iter().map(|(id, e)| (*id, e.ty, &e.args))
    }

    /// The name and version of type `ty`.
    pub(crate) fn type_at(&self, ty: u32) -> Option<(&str, u32)> {
        let t = self.types.list.get(ty as usize)?;
        Some((&t.name, t.version))
    }

    /// How many distinct types the graph's actors have.
    pub(crate) fn type_count(&self) -> usize {
        self.types.list.len()
    }

    /// Whether the graph has roots or has handed out ids: the graph of a lone vat, not a
    /// registry log's layout (whose top level has neither).
    pub(crate) fn is_one_vat(&self) -> bool {
        !self.roots.is_empty() || self.next_id != 0
    }

    /// The cost of the links into and out of `id` (the actors around it as they are).
    fn around(&self, id: ActorId, this: Option<&Entry>) -> u64 {
        let prev = self.actors.range(..id).next_back();
        let next = self
            .actors
            .range((Bound::Excluded(id), Bound::Unbounded))
            .next();
        let prev = prev.map(|(i, e)| self.link(*i, e));
        let next = next.map(|(i, e)| self.link(*i, e));
        match this {
            Some(e) => {
                let this = self.link(id, e);
                link_len(prev, this) + next.map_or(0, |n| link_len(Some(this), n))
            }
            None => next.map_or(0, |n| link_len(prev, n)),
        }
    }

    fn upsert(&mut self, id: ActorId, e: Entry) {
        let before = self.around(id, self.actors.get(&id));
        let after = self.around(id, Some(&e));
        self.entry_bytes = self.entry_bytes + after - before;
        self.actors.insert(id, e);
    }

    fn remove(&mut self, id: ActorId) {
        let Some(old) = self.actors.get(&id) else {
            return;
        };
        let before = self.around(id, Some(old));
        let after = self.around(id, None);
        self.entry_bytes = self.entry_bytes + after - before;
        self.actors.remove(&id);
    }

    /// Applies a delta (same meaning as [`Graph::apply`]).
    pub(crate) fn apply(&mut self, d: &Delta) {
        if let Some(roots) = &d.roots {
            self.roots.clone_from(roots);
        }
        self.next_id = self.next_id.max(d.next_id);
        for (id, p) in &d.upserts {
            let ty = self.types.of(p);
            self.upsert(
                *id,
                Entry {
                    ty,
                    args: Args::own(&p.args),
                },
            );
        }
        for id in &d.removes {
            self.remove(*id);
        }
    }

    /// The ids held in `range`, in order.
    pub(crate) fn ids_in(&self, range: std::ops::Range<ActorId>) -> Vec<ActorId> {
        self.actors.range(range).map(|(id, _)| *id).collect()
    }

    /// Number of actors.
    pub(crate) fn len(&self) -> usize {
        self.actors.len()
    }

    /// Encodes the small fields that precede the actors: roots, next id and count.
    fn prefix(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 + 9 * self.roots.len());
        // Writing to a Vec cannot fail.
        let _ = rmp::encode::write_array_len(&mut buf, self.roots.len() as u32);
        for r in &self.roots {
            let _ = rmp::encode::write_uint(&mut buf, r.0);
        }
        let _ = rmp::encode::write_uint(&mut buf, self.next_id);
        let _ = rmp::encode::write_uint(&mut buf, self.actors.len() as u64);
        buf
    }

    /// Length of [`EncodedGraph::write_body`]'s output: a compact body, exactly.
    pub(crate) fn body_len(&self) -> u64 {
        self.prefix().len() as u64 + self.entry_bytes
    }

    /// Writes the graph as a compact body to `w`, feeding it to `crc` too; returns its
    /// length.
    pub(crate) fn write_body<W: Write>(
        &self,
        w: &mut W,
        crc: &mut crc32fast::Hasher,
    ) -> io::Result<u64> {
        let mut w = CrcWriter { w, crc, n: 0 };
        w.write_all(&self.prefix())?;
        let mut prev: Option<(ActorId, u32)> = None;
        for (id, e) in &self.actors {
            let same = prev.is_some_and(|(_, ty)| ty == e.ty);
            write_varint(&mut w, id.0.wrapping_sub(prev.map_or(0, |(p, _)| p.0)))?;
            let args = self.args(e);
            write_varint(&mut w, compact::header(args.len(), same))?;
            if !same {
                w.write_all(&self.types.list[e.ty as usize].bytes)?;
            }
            w.write_all(args)?;
            prev = Some((*id, e.ty));
        }
        Ok(w.n)
    }
}

/// A writer that feeds what it writes to a CRC and counts it.
struct CrcWriter<'a, W> {
    w: &'a mut W,
    crc: &'a mut crc32fast::Hasher,
    n: u64,
}

impl<W: Write> Write for CrcWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.crc.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
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
                ActorId(i * 1000 + (i % 7)),
                Portrait {
                    name: if i % 5 == 0 {
                        format!("\u{1}{}", i % 3)
                    } else {
                        format!("gobs::test::Actor{}", (i / 4) % 3)
                    },
                    version: (i % 300) as u32,
                    args: vec![i as u8; (i % 170) as usize],
                },
            );
        }
        g
    }

    fn body(enc: &EncodedGraph) -> Vec<u8> {
        let mut out = Vec::new();
        let mut crc = crc32fast::Hasher::new();
        let len = enc.write_body(&mut out, &mut crc).unwrap();
        assert_eq!(len, out.len() as u64);
        assert_eq!(enc.body_len(), len);
        assert_eq!(crc.finalize(), crc32fast::hash(&out));
        out
    }

    #[test]
    fn a_compact_body_reads_back_as_the_graph() {
        for n in [0, 1, 15, 16, 300, 70_000] {
            let g = graph(n);
            let enc = EncodedGraph::from_graph(&g);
            let out = body(&enc);
            let back = EncodedGraph::from_compact(&out).unwrap();
            assert_eq!(back.to_graph(), g, "n = {n}");
            assert_eq!(back.body_len(), enc.body_len());
        }
    }

    #[test]
    fn a_body_read_in_place_keeps_pointing_at_its_file_through_commits() {
        let mut g = graph(300);
        let out = body(&EncodedGraph::from_graph(&g));
        // The body sits after other bytes, as a snapshot frame does in a log file.
        let mut file = vec![7u8; 13];
        file.extend_from_slice(&out);
        file.extend_from_slice(&[9u8; 5]);
        let mut enc = EncodedGraph::from_loaded(Arc::new(file), 13..13 + out.len()).unwrap();
        assert_eq!(enc.to_graph(), g);
        let d = Delta {
            roots: None,
            next_id: 0,
            upserts: vec![(
                ActorId(2002),
                Portrait {
                    name: "z".into(),
                    version: 1,
                    args: vec![4; 3],
                },
            )],
            removes: vec![ActorId(5005)],
        };
        g.apply(&d);
        enc.apply(&d);
        assert_eq!(enc.to_graph(), g);
        assert_eq!(body(&enc), body(&EncodedGraph::from_graph(&g)));
        assert!(EncodedGraph::from_loaded(Arc::new(out.clone()), 1..out.len() + 1).is_err());
    }

    #[test]
    fn a_damaged_body_is_refused() {
        let out = body(&EncodedGraph::from_graph(&graph(40)));
        for cut in [1, 5, out.len() / 2, out.len() - 1] {
            assert!(
                EncodedGraph::from_compact(&out[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = out.clone();
        longer.push(0);
        assert!(EncodedGraph::from_compact(&longer).is_err());
    }

    #[test]
    fn apply_matches_graph_apply_and_keeps_the_length_exact() {
        let mut g = graph(40);
        let mut enc = EncodedGraph::from_graph(&g);
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
                    ActorId(1500),
                    Portrait {
                        name: "gobs::test::Actor1".into(),
                        version: 1,
                        args: vec![],
                    },
                ),
                (
                    ActorId(123_456),
                    Portrait {
                        name: "y".into(),
                        version: 1,
                        args: vec![9; 200],
                    },
                ),
            ],
            removes: vec![ActorId(2002), ActorId(0), ActorId(999_999)],
        };
        g.apply(&d);
        enc.apply(&d);
        assert_eq!(enc.to_graph(), g);
        let fresh = EncodedGraph::from_graph(&g);
        assert_eq!(enc.body_len(), fresh.body_len());
        assert_eq!(body(&enc).len() as u64, enc.body_len());
    }
}
