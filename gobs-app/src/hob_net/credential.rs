//! A machine's attach credential: how the boss tells the machine's own hob-client from a
//! copy of its state (its credential copied into another machine, a cloned disk), and how
//! the credential rotates so that a stale copy stops working.
//!
//! What an attach must prove:
//!
//! - **The machine's identity.** The hob-client that registered proved a location (its
//!   tcp-tls key, kept in its state with the credential): that is the machine's
//!   **home**. An attach from any other proven location is refused, whatever credential it
//!   carries, so a copied credential alone never serves the machine and never displaces
//!   its real session.
//! - **The current credential.** Every accepted attach is answered with the next
//!   credential (32 random bytes; the boss keeps only their SHA-256). The client writes it
//!   to its state (one durable commit of its registry, [`super::client_state`]) and then
//!   `confirm`s it; from then on the old one is stale. A copy of the whole state (key included) is
//!   therefore refused once the real client attached after the copy was made.
//!
//! **The crash window.** Between the answer and the `confirm`, the boss accepts both the
//! credential presented (`current`) and the one it issued (`next`): a client that crashed
//! before its write attaches with the old one (and is issued a fresh `next`), one that
//! crashed after it attaches with the new one (which is then promoted, as a `confirm`
//! would). Either way the real machine gets in, and the old credential lives no longer
//! than the client takes to store the new one. The boss saves `next` before answering, so
//! a boss crash leaves the same two choices.
//!
//! **A whole copy** (identity and credential, e.g. a cloned disk) proves the machine's
//! location: its session replaces the machine's at the session layer, and the first of
//! the two to attach after the copy was made rotates the credential; the other presents a
//! replaced one and is refused as a conflict. If the copy attached first (while the
//! machine's own client was away), the machine's own client is the one refused; the
//! conflict is shown, and the operator stops the copy (and destroys the machine if it
//! must be recreated): two identical states cannot be told apart over the network.
//!
//! **Registration** is one-time, except for the identity that used it: a client that
//! crashed before storing the answer registers again with the same sturdyref and is
//! answered again, with a new credential (only the machine's own key can do that).
//!
//! **Upgrade.** State written before rotation has no credential on either side: the boss's
//! entry has no `current` and no `home`, the client's state no `credential`. Such
//! an entry accepts an attach without a credential; that first attach records the home
//! and issues the first credential, and from then on an attach without one is stale.
//!
//! **Conflicts** (refused attaches) are shown on the machine (its `error`, with the time,
//! the count and the proven location they came from) and logged as events, at most once a
//! [`REPORT_PERIOD`] per machine and source. A hob-client told of a conflict stops.

use std::time::{Duration, SystemTime};

use data_encoding::BASE64URL_NOPAD;
use gobs_ocapn::locator::PeerLocator;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How a refusal for a conflict begins (the hob-client stops on it).
pub const CONFLICT: &str = "credential conflict";

/// One machine's conflicts from one source are logged at most this often.
pub const REPORT_PERIOD: Duration = Duration::from_secs(60);

/// What the boss keeps of one machine's attach credential (in its attach actor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keeper {
    /// The location the machine's hob-client proved (`ocapn://DESIGNATOR.TRANSPORT`);
    /// `None` in state written before rotation, until its first attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    home: Option<String>,
    /// SHA-256 (base64url) of the credential the client holds; `None` before rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<String>,
    /// SHA-256 of the credential issued last, until it is confirmed or presented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Why an attach was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictKind {
    /// It came from a location other than the machine's own.
    Elsewhere {
        /// The machine's own location.
        home: String,
    },
    /// Its credential was replaced since (or never issued).
    Stale,
    /// Its session proved no location.
    Unproved,
}

/// The refused attaches to one machine, as the machine shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Why the last one was refused.
    pub kind: ConflictKind,
    /// The location the last one came from.
    pub from: String,
    /// When the first one came.
    pub first: SystemTime,
    /// When the last one came.
    pub last: SystemTime,
    /// How many came.
    pub count: u64,
    reported: Option<SystemTime>,
}

impl Keeper {
    /// The keeper of a machine whose hob-client just registered from `home`, and the
    /// first credential to hand it.
    pub fn registered(home: &PeerLocator) -> Result<(Keeper, Vec<u8>), String> {
        let secret = draw()?;
        let keeper = Keeper {
            home: Some(place(home)),
            current: Some(digest(&secret)),
            next: None,
        };
        Ok((keeper, secret))
    }

    /// Whether `from` is the location the machine's hob-client registered from.
    pub fn is_home(&self, from: &PeerLocator) -> bool {
        self.home.as_deref() == Some(place(from).as_str())
    }

    /// Whether an attach presenting `presented` from `from` (the session's proven
    /// location) may attach the machine.
    pub fn judge(
        &self,
        presented: Option<&[u8]>,
        from: Option<&PeerLocator>,
    ) -> Result<(), ConflictKind> {
        let Some(from) = from else {
            return Err(ConflictKind::Unproved);
        };
        if let Some(home) = &self.home
            && *home != place(from)
        {
            return Err(ConflictKind::Elsewhere { home: home.clone() });
        }
        let presented = presented.map(digest);
        let known = match (&self.current, &presented) {
            // Before the first rotation: only a client without a credential.
            (None, None) => true,
            (Some(current), Some(p)) if current == p => true,
            _ => presented.is_some() && presented == self.next,
        };
        if known {
            Ok(())
        } else {
            Err(ConflictKind::Stale)
        }
    }

    /// The keeper after an attach that [`Keeper::judge`] admitted, and the credential to
    /// answer it with: a presented `next` is promoted, the home recorded, a new `next`
    /// drawn. Save it before answering.
    pub fn rotated(
        &self,
        presented: Option<&[u8]>,
        from: &PeerLocator,
    ) -> Result<(Keeper, Vec<u8>), String> {
        let presented = presented.map(digest);
        let current = match presented {
            Some(p) if Some(&p) == self.next.as_ref() => Some(p),
            _ => self.current.clone(),
        };
        let secret = draw()?;
        let keeper = Keeper {
            home: Some(self.home.clone().unwrap_or_else(|| place(from))),
            current,
            next: Some(digest(&secret)),
        };
        Ok((keeper, secret))
    }

    /// The keeper once the client confirmed it stored `presented`: `None` if nothing
    /// changes (already current), an error if it is neither current nor next.
    pub fn confirmed(&self, presented: &[u8]) -> Result<Option<Keeper>, ConflictKind> {
        let p = digest(presented);
        if self.current.as_ref() == Some(&p) {
            return Ok(None);
        }
        if self.next.as_ref() != Some(&p) {
            return Err(ConflictKind::Stale);
        }
        Ok(Some(Keeper {
            home: self.home.clone(),
            current: Some(p),
            next: None,
        }))
    }
}

impl Conflict {
    /// The machine's conflicts (`before`, if any) with a refused attach of `kind` from
    /// `from` at `now` added; and whether to log it (a new kind or source, or
    /// [`REPORT_PERIOD`] since the last log).
    pub fn note(
        before: Option<Conflict>,
        kind: ConflictKind,
        from: &str,
        now: SystemTime,
    ) -> (Conflict, bool) {
        let mut c = before.unwrap_or_else(|| Conflict {
            kind: kind.clone(),
            from: from.to_string(),
            first: now,
            last: now,
            count: 0,
            reported: None,
        });
        let same = c.reported.is_some() && c.kind == kind && c.from == from;
        c.kind = kind;
        c.from = from.to_string();
        c.last = now;
        c.count += 1;
        let due = !same
            || c.reported.is_none_or(|at| {
                now.duration_since(at)
                    .is_ok_and(|since| since >= REPORT_PERIOD)
            });
        if due {
            c.reported = Some(now);
        }
        (c, due)
    }

    /// The refusal of the last attach, for the client that made it.
    pub fn refusal(&self, machine: &str) -> String {
        let what = match &self.kind {
            ConflictKind::Elsewhere { home } => format!(
                "this hob-client ({}) is not machine {machine:?}'s own ({home}): it holds a \
                 copy of the machine's attach credential",
                self.from
            ),
            ConflictKind::Stale => format!(
                "this hob-client ({}) holds an attach credential of machine {machine:?} that \
                 was replaced: a stale copy of the machine's state",
                self.from
            ),
            ConflictKind::Unproved => {
                "this hob-client's session proves no location (over tcp-tls, present the \
                 node's certificate)"
                    .to_string()
            }
        };
        format!(
            "{CONFLICT}: {what}; refused. If this is the machine itself and its state was \
             lost, destroy the machine and create it again"
        )
    }

    /// What the machine shows: the last refused attach, when and from where.
    pub fn describe(&self, machine: &str) -> String {
        let why = match &self.kind {
            ConflictKind::Elsewhere { home } => {
                format!("presented its credential, but the machine's own hob-client is {home}")
            }
            ConflictKind::Stale => "presented a credential that was replaced".to_string(),
            ConflictKind::Unproved => "proved no location".to_string(),
        };
        let times = match self.count {
            1 => String::new(),
            n => format!(
                " ({n} refused attaches since {})",
                humantime::format_rfc3339_seconds(self.first)
            ),
        };
        format!(
            "{CONFLICT} at {}: a hob-client at {} {why}{times}; it was refused and machine \
             {machine}'s own session was kept. Find and stop that client (a copy of the \
             machine's hob-client state or a clone of the machine)",
            humantime::format_rfc3339_seconds(self.last),
            self.from
        )
    }
}

/// A location as the keeper compares them: transport and designator, no hints.
pub fn place(l: &PeerLocator) -> String {
    PeerLocator::new(l.transport.clone(), l.designator.clone()).to_uri()
}

/// A credential as earlier releases' `client.json` kept it.
pub fn encode(secret: &[u8]) -> String {
    BASE64URL_NOPAD.encode(secret)
}

/// A credential from an earlier release's `client.json`.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|_| "the saved attach credential is not base64url".to_string())
}

fn digest(secret: &[u8]) -> String {
    BASE64URL_NOPAD.encode(&Sha256::digest(secret))
}

fn draw() -> Result<Vec<u8>, String> {
    let mut s = vec![0u8; 32];
    getrandom::fill(&mut s).map_err(|e| format!("cannot draw an attach credential: {e}"))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn node(d: &str) -> PeerLocator {
        PeerLocator::new("tcp-tls", d).with_hint("port", "4000")
    }

    #[test]
    fn each_attach_rotates_and_the_old_credential_is_stale_once_the_new_one_is_used() {
        let (k0, c0) = Keeper::registered(&node("m")).unwrap();
        assert_eq!(k0.judge(Some(&c0), Some(&node("m"))), Ok(()));
        let (k1, c1) = k0.rotated(Some(&c0), &node("m")).unwrap();
        // The window: both work until the new one is confirmed.
        assert_eq!(k1.judge(Some(&c0), Some(&node("m"))), Ok(()));
        assert_eq!(k1.judge(Some(&c1), Some(&node("m"))), Ok(()));
        let k2 = k1.confirmed(&c1).unwrap().unwrap();
        assert_eq!(
            k2.confirmed(&c1),
            Ok(None),
            "confirming twice changes nothing"
        );
        assert_eq!(
            k2.judge(Some(&c0), Some(&node("m"))),
            Err(ConflictKind::Stale)
        );
        assert_eq!(k2.confirmed(&c0), Err(ConflictKind::Stale));
        assert_eq!(k2.judge(None, Some(&node("m"))), Err(ConflictKind::Stale));
    }

    #[test]
    fn a_client_that_crashed_in_the_window_gets_in_with_either_credential() {
        let (k0, c0) = Keeper::registered(&node("m")).unwrap();
        let (k1, c1) = k0.rotated(Some(&c0), &node("m")).unwrap();
        // Crashed before storing c1: attaches with c0, and is issued another.
        let (k2, c2) = k1.rotated(Some(&c0), &node("m")).unwrap();
        assert_eq!(
            k2.judge(Some(&c1), Some(&node("m"))),
            Err(ConflictKind::Stale)
        );
        // Stored c2, crashed before confirming: attaching with c2 promotes it.
        assert_eq!(k2.judge(Some(&c2), Some(&node("m"))), Ok(()));
        let (k3, _) = k2.rotated(Some(&c2), &node("m")).unwrap();
        assert_eq!(
            k3.judge(Some(&c0), Some(&node("m"))),
            Err(ConflictKind::Stale)
        );
        assert_eq!(k3.judge(Some(&c2), Some(&node("m"))), Ok(()));
    }

    #[test]
    fn another_node_is_refused_whatever_it_presents() {
        let (k, c) = Keeper::registered(&node("m")).unwrap();
        let home = place(&node("m"));
        assert_eq!(
            k.judge(Some(&c), Some(&node("copy"))),
            Err(ConflictKind::Elsewhere { home })
        );
        assert_eq!(k.judge(Some(&c), None), Err(ConflictKind::Unproved));
        assert!(k.is_home(&node("m")) && !k.is_home(&node("copy")));
        assert!(
            !Keeper::default().is_home(&node("m")),
            "no home before rotation"
        );
    }

    #[test]
    fn state_from_before_rotation_attaches_once_without_a_credential_then_rotates() {
        let old: Keeper = serde_json::from_str("{}").unwrap();
        assert_eq!(old.judge(None, Some(&node("m"))), Ok(()));
        assert_eq!(
            old.judge(Some(b"made up"), Some(&node("m"))),
            Err(ConflictKind::Stale)
        );
        let (k1, c1) = old.rotated(None, &node("m")).unwrap();
        let k2 = k1.confirmed(&c1).unwrap().unwrap();
        assert_eq!(k2.judge(None, Some(&node("m"))), Err(ConflictKind::Stale));
        assert!(matches!(
            k2.judge(Some(&c1), Some(&node("other"))),
            Err(ConflictKind::Elsewhere { .. })
        ));
        assert_eq!(k2.judge(Some(&c1), Some(&node("m"))), Ok(()));
    }

    #[test]
    fn conflicts_are_counted_and_logged_once_a_period_per_source() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let (c, log) = Conflict::note(None, ConflictKind::Stale, "ocapn://a", t0);
        assert!(log);
        let soon = t0 + Duration::from_secs(1);
        let (c, log) = Conflict::note(Some(c), ConflictKind::Stale, "ocapn://a", soon);
        assert!(!log, "the same source within the period");
        let (c, log) = Conflict::note(Some(c), ConflictKind::Stale, "ocapn://b", soon);
        assert!(log, "another source");
        let later = soon + REPORT_PERIOD;
        let (c, log) = Conflict::note(Some(c), ConflictKind::Stale, "ocapn://b", later);
        assert!(log, "a period later");
        assert_eq!((c.count, c.first, c.last), (4, t0, later));
        let shown = c.describe("m1");
        assert!(shown.starts_with(CONFLICT), "{shown}");
        assert!(shown.contains("ocapn://b"), "{shown}");
        assert!(shown.contains("4 refused attaches since"), "{shown}");
        assert!(c.refusal("m1").starts_with(CONFLICT));
    }
}
