//! What the store holds of each saved actor, as the reachability bookkeeping remembers it
//! so that writing a portrait the store already holds is skipped.
//!
//! A portrait written since the vat started is remembered by its fingerprint. One the
//! restore read, and nothing rewrote since, is remembered by where its bytes are in the
//! image the restore read (which the store keeps anyway: a log store's file bytes), and
//! compared byte for byte if a churn encodes its actor again: a restore hashes nothing,
//! and most restored actors are never written again.

use std::hash::{BuildHasher, Hash};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::portrait::Portrait;

/// What the store holds of one actor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Nothing known: the next write of the actor is kept.
    #[default]
    Unknown,
    /// The fingerprint ([`fingerprint`]) of the portrait last written, as two words (a
    /// `u128` would align the bookkeeping's nodes to 16 bytes).
    Print([u64; 2]),
    /// The portrait the restore read: of type `ty` of the [`StoredImage`], its arguments
    /// the image's bytes `at..at + len`.
    Read { ty: u32, len: u32, at: u64 },
}

/// The bytes and types of the image a vat was restored from, which [`Stored::Read`]
/// entries point into.
pub(crate) struct StoredImage {
    pub(crate) bytes: Arc<Vec<u8>>,
    pub(crate) types: Vec<(String, u32)>,
}

impl Stored {
    /// The fingerprint of `portrait`, as what the store holds once it is written.
    pub(crate) fn written(portrait: &Portrait) -> Stored {
        Stored::print(fingerprint(portrait))
    }

    fn print(print: u128) -> Stored {
        Stored::Print([print as u64, (print >> 64) as u64])
    }

    /// An actor the restore read: of type `ty` of the image, its arguments at `range` in
    /// the image's bytes. `None` for arguments too long to note this way.
    pub(crate) fn read(ty: u32, range: Range<usize>) -> Option<Stored> {
        Some(Stored::Read {
            ty,
            len: u32::try_from(range.len()).ok()?,
            at: u64::try_from(range.start).ok()?,
        })
    }

    /// The fingerprint of a portrait of type `ty` (its fingerprint state) with
    /// arguments `args`.
    pub(crate) fn typed(ty: &TypePrint, args: &[u8]) -> Stored {
        Stored::print(fingerprint_typed(ty, args))
    }

    /// This in four words and a kind, so that the bookkeeping's node can pack it with
    /// its own fields (an enum of two-word payloads takes three words; a restore keeps
    /// one node per actor). [`Stored::unpack`] gives it back.
    pub(crate) fn pack(self) -> (u8, [u32; 4]) {
        let split = |a: u64, b: u64| [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32];
        match self {
            Stored::Unknown => (0, [0; 4]),
            Stored::Print([a, b]) => (1, split(a, b)),
            Stored::Read { ty, len, at } => (2, [ty, len, at as u32, (at >> 32) as u32]),
        }
    }

    /// What [`Stored::pack`] packed.
    pub(crate) fn unpack(kind: u8, w: [u32; 4]) -> Stored {
        let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
        match kind {
            1 => Stored::Print([join(w[0], w[1]), join(w[2], w[3])]),
            2 => Stored::Read {
                ty: w[0],
                len: w[1],
                at: join(w[2], w[3]),
            },
            _ => Stored::Unknown,
        }
    }

    /// `None` when the store holds `portrait` already; else what it holds once
    /// `portrait` is written.
    pub(crate) fn check(&self, portrait: &Portrait, image: Option<&StoredImage>) -> Option<Stored> {
        match *self {
            Stored::Read { ty, len, at } => {
                let held = image.and_then(|image| {
                    let (name, version) = image.types.get(ty as usize)?;
                    let at = usize::try_from(at).ok()?;
                    let args = image.bytes.get(at..at.checked_add(len as usize)?)?;
                    Some(
                        *name == portrait.name
                            && *version == portrait.version
                            && args == portrait.args,
                    )
                });
                (held != Some(true)).then(|| Stored::written(portrait))
            }
            Stored::Print(_) | Stored::Unknown => {
                let now = Stored::written(portrait);
                (now != *self).then_some(now)
            }
        }
    }
}

/// A fingerprint of a portrait: a 128-bit SipHash-1-3 under a key drawn once per
/// process, over the fingerprint of its name ([`name_print`]), its version and its
/// arguments. Equal portraits match; two different ones collide with odds of about
/// 2^-128, and an outsider who does not know the key cannot make them collide.
pub(crate) fn fingerprint(portrait: &Portrait) -> u128 {
    fingerprint_typed(
        &TypePrint::new(name_print(&portrait.name), portrait.version),
        &portrait.args,
    )
}

/// The fingerprint of an actor name, which [`TypePrint::new`] takes: a restore hashes
/// each type's name once, not once per actor (a name is often longer than the arguments).
pub(crate) fn name_print(name: &str) -> u128 {
    let mut h = hasher();
    name.hash(&mut h);
    h.finish128().as_u128()
}

/// A fingerprint's hash state once it took a portrait's type (its name's fingerprint and
/// its version): one per run of actors of one type, then [`fingerprint_typed`] hashes
/// each actor's arguments alone, with the same result as [`fingerprint`].
#[derive(Clone)]
pub(crate) struct TypePrint(SipHasher13);

impl TypePrint {
    pub(crate) fn new(name: u128, version: u32) -> TypePrint {
        let mut h = hasher();
        name.hash(&mut h);
        version.hash(&mut h);
        TypePrint(h)
    }
}

/// [`fingerprint`] of a portrait of type `ty` with arguments `args`.
pub(crate) fn fingerprint_typed(ty: &TypePrint, args: &[u8]) -> u128 {
    let mut h = ty.0;
    args.hash(&mut h);
    h.finish128().as_u128()
}

fn hasher() -> SipHasher13 {
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    let &(k0, k1) = KEY.get_or_init(|| {
        // Each RandomState is keyed at random; what it hashes nothing to is as random.
        let random = || std::collections::hash_map::RandomState::new().hash_one(());
        (random(), random())
    });
    SipHasher13::new_with_keys(k0, k1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn portrait(name: &str, version: u32, args: &[u8]) -> Portrait {
        Portrait {
            name: name.into(),
            version,
            args: args.to_vec(),
        }
    }

    fn image() -> StoredImage {
        StoredImage {
            bytes: Arc::new(b"..abc..xyz".to_vec()),
            types: vec![("a".into(), 1), ("b".into(), 2)],
        }
    }

    #[test]
    fn packing_gives_back_every_kind_whole() {
        let all = [
            Stored::Unknown,
            Stored::Print([0x0123_4567_89ab_cdef, u64::MAX - 5]),
            Stored::Read {
                ty: 7,
                len: u32::MAX,
                at: (5 << 32) | 9,
            },
            Stored::written(&portrait("a", 1, b"x")),
        ];
        for stored in all {
            let (kind, words) = stored.pack();
            assert_eq!(Stored::unpack(kind, words), stored);
        }
    }

    #[test]
    fn a_portrait_the_restore_read_is_held_until_one_byte_of_it_changes() {
        let image = image();
        let read = Stored::read(0, 2..5).unwrap();
        assert!(matches!(
            read,
            Stored::Read {
                ty: 0,
                len: 3,
                at: 2
            }
        ));
        assert_eq!(read.check(&portrait("a", 1, b"abc"), Some(&image)), None);
        for other in [
            portrait("a", 1, b"abd"),
            portrait("a", 1, b"ab"),
            portrait("a", 2, b"abc"),
            portrait("b", 1, b"abc"),
        ] {
            assert_eq!(
                read.check(&other, Some(&image)),
                Some(Stored::written(&other)),
                "{other:?}"
            );
        }
        // Without the image, or pointing outside it, nothing is known to be held.
        let same = portrait("a", 1, b"abc");
        assert_eq!(read.check(&same, None), Some(Stored::written(&same)));
        let outside = Stored::Read {
            ty: 0,
            len: 3,
            at: 9,
        };
        assert!(outside.check(&same, Some(&image)).is_some());
        let no_type = Stored::Read {
            ty: 7,
            len: 3,
            at: 2,
        };
        assert!(no_type.check(&same, Some(&image)).is_some());
    }

    #[test]
    fn arguments_outside_the_image_are_fingerprinted_as_a_write_would_be() {
        let p = portrait("b", 2, b"elsewhere");
        let ty = TypePrint::new(name_print("b"), 2);
        let read = Stored::typed(&ty, &p.args);
        assert_eq!(read, Stored::written(&p));
        assert_eq!(read.check(&p, Some(&image())), None);
        let changed = portrait("b", 2, b"elsewhere!");
        assert_eq!(read.check(&changed, None), Some(Stored::written(&changed)));
        assert!(Stored::Unknown.check(&p, None).is_some());
    }
}
