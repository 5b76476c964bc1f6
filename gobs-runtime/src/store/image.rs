//! A vat's saved graph as a store hands it to a restore: per actor its id, its type (an
//! index into the vat's few distinct types) and where its arguments are. A log store's
//! images point into the log file's bytes, read once at open, so opening a registry does
//! not copy each actor's name and arguments into a [`Portrait`] of its own; the restore
//! reads every actor where it lies.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::encoded::{Args, PortraitRef};
use crate::portrait::{ActorId, Graph, Portrait};

/// One vat's saved graph, to restore from (see [`Store::load_images`](super::Store::load_images)).
pub struct VatImage {
    roots: Vec<ActorId>,
    next_id: u64,
    /// The distinct types (name, version) of the vat's actors.
    types: Vec<(String, u32)>,
    /// In id order.
    actors: Vec<Actor>,
    /// The arguments of actors whose [`Actor::len`] is [`ELSEWHERE`].
    elsewhere: Vec<Args>,
    /// The bytes [`Args::Loaded`] ranges point into (a log file's, read at open).
    file: Arc<Vec<u8>>,
}

/// One actor of an image, in 24 bytes (an `Args` alone takes 24): at a million actors
/// the image is one of a restore's largest tables.
struct Actor {
    id: ActorId,
    /// Its arguments are `file[at..at + len]`; or, with `len` [`ELSEWHERE`], `elsewhere[at]`
    /// (arguments of their own, written since the file was read, or too long for `len`).
    at: u64,
    len: u32,
    ty: u32,
}

/// See [`Actor::len`].
const ELSEWHERE: u32 = u32::MAX;

impl Actor {
    fn new(id: ActorId, ty: u32, args: &Args, elsewhere: &mut Vec<Args>) -> Actor {
        if let Args::Loaded(range) = args
            && let (Ok(at), Ok(len)) = (u64::try_from(range.start), u32::try_from(range.len()))
            && len != ELSEWHERE
        {
            return Actor { id, at, len, ty };
        }
        elsewhere.push(args.clone());
        Actor {
            id,
            at: (elsewhere.len() - 1) as u64,
            len: ELSEWHERE,
            ty,
        }
    }

    /// Where its arguments lie in the file's bytes, if they do.
    fn range(&self, elsewhere: &[Args]) -> Option<Range<usize>> {
        if self.len != ELSEWHERE {
            let at = usize::try_from(self.at).ok()?;
            return Some(at..at.checked_add(self.len as usize)?);
        }
        match elsewhere.get(usize::try_from(self.at).ok()?)? {
            Args::Loaded(range) => Some(range.clone()),
            Args::Own(_) => None,
        }
    }

    fn args<'a>(&self, elsewhere: &'a [Args], file: &'a [u8]) -> &'a [u8] {
        if self.len == ELSEWHERE {
            let args = usize::try_from(self.at).ok().and_then(|i| elsewhere.get(i));
            return args.map_or(&[], |a| a.bytes(file));
        }
        self.range(elsewhere)
            .and_then(|range| file.get(range))
            .unwrap_or_default()
    }
}

impl VatImage {
    /// The vat's roots, in the order its root constructor returned them.
    pub(crate) fn roots(&self) -> &[ActorId] {
        &self.roots
    }

    /// The next actor id the vat will hand out.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
    }

    /// How many actors the vat saved.
    pub(crate) fn len(&self) -> usize {
        self.actors.len()
    }

    /// Every saved actor, in id order, borrowed.
    pub(crate) fn portraits(&self) -> impl Iterator<Item = PortraitRef<'_>> {
        self.actors.iter().map(|a| {
            let (name, version) = &self.types[a.ty as usize];
            PortraitRef {
                id: a.id,
                name,
                version: *version,
                args: a.args(&self.elsewhere, &self.file),
            }
        })
    }

    /// Every saved actor, in id order, with its type's index in [`VatImage::types`] and,
    /// when its arguments lie in [`VatImage::bytes`], where.
    pub(crate) fn placed(
        &self,
    ) -> impl Iterator<Item = (PortraitRef<'_>, u32, Option<Range<usize>>)> {
        self.portraits()
            .zip(&self.actors)
            .map(|(p, a)| (p, a.ty, a.range(&self.elsewhere)))
    }

    /// The distinct types (name, version) of the vat's actors.
    pub(crate) fn types(&self) -> &[(String, u32)] {
        &self.types
    }

    /// The bytes the image's arguments lie in (a log file's, or the image's own).
    pub(crate) fn bytes(&self) -> &Arc<Vec<u8>> {
        &self.file
    }

    /// The image as an owned graph (what [`Store::load`](super::Store::load) returns).
    pub(crate) fn to_graph(&self) -> Graph {
        Graph {
            roots: self.roots.clone(),
            next_id: self.next_id,
            actors: self
                .portraits()
                .map(|p| {
                    let portrait = Portrait {
                        name: p.name.to_string(),
                        version: p.version,
                        args: p.args.to_vec(),
                    };
                    (p.id, portrait)
                })
                .collect(),
        }
    }
}

impl From<Graph> for VatImage {
    fn from(graph: Graph) -> Self {
        let mut image = ImageBuilder::default();
        for (id, p) in &graph.actors {
            image.append(*id, &p.name, p.version, &p.args);
        }
        image.finish_owned(graph.roots, graph.next_id)
    }
}

impl std::fmt::Debug for VatImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VatImage")
            .field("roots", &self.roots)
            .field("next_id", &self.next_id)
            .field("actors", &self.actors.len())
            .field("types", &self.types)
            .finish()
    }
}

/// A vat's image, built an actor at a time in id order: either over a file's bytes
/// ([`ImageBuilder::push`], [`ImageBuilder::finish`]) or with bytes of its own
/// ([`ImageBuilder::append`], [`ImageBuilder::finish_owned`]).
#[derive(Default)]
pub(crate) struct ImageBuilder {
    types: Vec<(String, u32)>,
    index: HashMap<(String, u32), u32>,
    /// The type of the last actor pushed: actors of one type come in runs.
    last: Option<u32>,
    actors: Vec<Actor>,
    elsewhere: Vec<Args>,
    /// The arguments appended, one buffer for the whole vat.
    bytes: Vec<u8>,
    /// The image's type of each graph type met by [`ImageBuilder::push_entry`] (`u32::MAX`:
    /// not met yet).
    by_graph_type: Vec<u32>,
}

impl ImageBuilder {
    /// A builder with room for `actors` actors.
    pub(crate) fn with_capacity(actors: usize) -> ImageBuilder {
        ImageBuilder {
            actors: Vec::with_capacity(actors),
            ..ImageBuilder::default()
        }
    }

    fn type_of(&mut self, name: &str, version: u32) -> u32 {
        if let Some(ty) = self.last {
            let (n, v) = &self.types[ty as usize];
            if n == name && *v == version {
                return ty;
            }
        }
        let ty = match self.index.get(&(name.to_string(), version)) {
            Some(ty) => *ty,
            None => {
                // A vat's types are at most its actors, which ids bound far below 2^32.
                let ty = u32::try_from(self.types.len()).unwrap_or(u32::MAX);
                self.types.push((name.to_string(), version));
                self.index.insert((name.to_string(), version), ty);
                ty
            }
        };
        self.last = Some(ty);
        ty
    }

    /// Adds actor `id` of a graph's type `graph_ty`, named `name` at `version` (looked at
    /// only the first time the type comes), its arguments where the graph has them (the
    /// image is finished over the graph's file bytes).
    pub(crate) fn push_entry(
        &mut self,
        id: ActorId,
        graph_ty: u32,
        name: &str,
        version: u32,
        args: &Args,
    ) {
        let at = graph_ty as usize;
        let ty = match self.by_graph_type.get(at) {
            Some(&ty) if ty != u32::MAX => ty,
            _ => {
                let ty = self.type_of(name, version);
                if self.by_graph_type.len() <= at {
                    self.by_graph_type.resize(at + 1, u32::MAX);
                }
                self.by_graph_type[at] = ty;
                ty
            }
        };
        self.actors
            .push(Actor::new(id, ty, args, &mut self.elsewhere));
    }

    /// Adds actor `id`, its arguments copied to the end of the image's own bytes.
    pub(crate) fn append(&mut self, id: ActorId, name: &str, version: u32, args: &[u8]) {
        let ty = self.type_of(name, version);
        let at = self.bytes.len();
        self.bytes.extend_from_slice(args);
        let args = Args::Loaded(at..self.bytes.len());
        self.actors
            .push(Actor::new(id, ty, &args, &mut self.elsewhere));
    }

    /// The image of the actors appended.
    pub(crate) fn finish_owned(mut self, roots: Vec<ActorId>, next_id: u64) -> VatImage {
        let bytes = Arc::new(std::mem::take(&mut self.bytes));
        self.finish(roots, next_id, bytes)
    }

    /// The image of the actors pushed, over `file`.
    pub(crate) fn finish(self, roots: Vec<ActorId>, next_id: u64, file: Arc<Vec<u8>>) -> VatImage {
        debug_assert!(
            self.bytes.is_empty(),
            "appended actors are finished with their own bytes"
        );
        VatImage {
            roots,
            next_id,
            types: self.types,
            actors: self.actors,
            elsewhere: self.elsewhere,
            file,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn arguments_stay_where_the_graph_has_them_and_types_are_named_once() {
        let file = Arc::new((0u8..64).collect::<Vec<u8>>());
        let own = Args::own(&[7u8; 5]);
        let mut image = ImageBuilder::default();
        image.push_entry(ActorId(1), 3, "a", 1, &Args::Loaded(3..9));
        image.push_entry(ActorId(2), 3, "ignored: type 3 is named", 9, &own);
        image.push_entry(ActorId(5), 0, "b", 2, &Args::Loaded(60..64));
        image.push_entry(ActorId(6), 3, "a", 1, &Args::Loaded(9..9));
        let image = image.finish(vec![ActorId(1)], 9, file.clone());
        let at: Vec<_> = image
            .actors
            .iter()
            .map(|a| a.range(&image.elsewhere))
            .collect();
        assert_eq!(at[..3], [Some(3..9), None, Some(60..64)]);
        assert_eq!(image.elsewhere.len(), 1, "only the arguments of their own");
        // Two distinct types, each named once.
        assert_eq!(image.types.len(), 2);
        let read: Vec<_> = image
            .portraits()
            .map(|p| (p.id, p.name.to_string(), p.version, p.args.to_vec()))
            .collect();
        assert_eq!(
            read,
            vec![
                (ActorId(1), "a".to_string(), 1, file[3..9].to_vec()),
                (ActorId(2), "a".to_string(), 1, vec![7u8; 5]),
                (ActorId(5), "b".to_string(), 2, file[60..].to_vec()),
                (ActorId(6), "a".to_string(), 1, Vec::new()),
            ]
        );
        let placed: Vec<_> = image.placed().map(|(p, ty, at)| (p.id, ty, at)).collect();
        assert_eq!(placed[0], (ActorId(1), 0, Some(3..9)));
        assert_eq!(placed[1], (ActorId(2), 0, None));
        assert_eq!(placed[2], (ActorId(5), 1, Some(60..64)));
        assert_eq!(
            (image.roots(), image.next_id(), image.len()),
            (&[ActorId(1)][..], 9, 4)
        );
    }

    #[test]
    fn an_actor_takes_three_words_and_arguments_too_long_for_it_are_kept_whole() {
        assert!(size_of::<Actor>() <= 24, "{}", size_of::<Actor>());
        let mut elsewhere = Vec::new();
        let long = 10..10 + u32::MAX as usize;
        let far = Actor::new(ActorId(1), 0, &Args::Loaded(long.clone()), &mut elsewhere);
        assert_eq!(far.range(&elsewhere), Some(long));
        let near = Actor::new(ActorId(2), 0, &Args::Loaded(4..6), &mut elsewhere);
        assert_eq!(near.args(&elsewhere, &[0, 1, 2, 3, 4, 5, 6]), &[4, 5]);
        assert_eq!(elsewhere.len(), 1);
    }

    #[test]
    fn an_image_of_a_graph_reads_back_as_the_graph() {
        let mut graph = Graph {
            roots: vec![ActorId(0)],
            next_id: 40,
            ..Graph::default()
        };
        for i in 0..30u64 {
            let portrait = Portrait {
                name: format!("t{}", i / 7),
                version: (i % 2) as u32,
                args: vec![i as u8; i as usize],
            };
            graph.actors.insert(ActorId(i), portrait);
        }
        assert_eq!(VatImage::from(graph.clone()).to_graph(), graph);
    }
}
