//! [`NodeRecord`]: the persistent actor that holds a node's state in the registry — its
//! identity, the port it listens on, its swiss numbers by name, and the swiss numbers
//! bound to gobs actors (published by name, or minted for peers).

use std::collections::BTreeMap;

use gobs_runtime::{AnyRef, define_actor};
use subtle::ConstantTimeEq;

type V1 = (
    String,
    String,
    BTreeMap<String, Vec<u8>>,
    Vec<(Vec<u8>, AnyRef)>,
);
type V2 = (
    String,
    String,
    BTreeMap<String, Vec<u8>>,
    Vec<(Vec<u8>, AnyRef)>,
    Option<u16>,
);

/// Version 2 keeps the port: a version 1 record has none yet (the next listen picks one).
fn with_port((cert_pem, key_pem, names, minted): V1) -> V2 {
    (cert_pem, key_pem, names, minted, None)
}

/// The saved state of a node: its tcp-tls identity, the port it listens on, its swiss
/// numbers by name, and the swiss numbers bound to gobs actors (with the actors, saved as
/// the references they are, so they come back with their vats). A name with an actor is
/// published; a swiss number with an actor and no name was minted for a peer.
#[define_actor(
    name = "gobs_ocapn::persist::NodeRecord",
    version = 2,
    upgrade(from = 1, with = with_port)
)]
pub struct NodeRecord {
    pub(super) cert_pem: String,
    pub(super) key_pem: String,
    pub(super) names: BTreeMap<String, Vec<u8>>,
    pub(super) minted: Vec<(Vec<u8>, AnyRef)>,
    pub(super) port: Option<u16>,
}

/// What [`NodeRecord::publish`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Publish {
    /// The name is bound to the actor under this swiss number (now, or since earlier).
    Bound(Vec<u8>),
    /// The name is already published to another actor.
    Taken,
}

#[define_actor]
impl NodeRecord {
    /// The tcp-tls identity: (certificate PEM, key PEM).
    #[actor(local)]
    pub fn identity(&self) -> (String, String) {
        (self.cert_pem.clone(), self.key_pem.clone())
    }

    /// The port the node listened on last, if it has listened.
    #[actor(local)]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The node listens on `port` from now on.
    #[actor(local)]
    pub fn keep_port(&mut self, port: u16) {
        self.port = Some(port);
    }

    /// The swiss number exported under `name`; `fresh` becomes it on first use.
    #[actor(local)]
    pub fn swiss_for(&mut self, name: String, fresh: Vec<u8>) -> Vec<u8> {
        self.names.entry(name).or_insert(fresh).clone()
    }

    /// Publishes `actor` under `name` (with `fresh` as its swiss number if the name has
    /// none yet). Publishing the same actor again under its name is a no-op.
    #[actor(local)]
    pub fn publish(&mut self, name: String, fresh: Vec<u8>, actor: AnyRef) -> Publish {
        let swiss = self.names.entry(name).or_insert(fresh).clone();
        match self.minted.iter().find(|(s, _)| *s == swiss) {
            Some((_, bound)) if *bound == actor => Publish::Bound(swiss),
            Some(_) => Publish::Taken,
            None => {
                self.minted.push((swiss.clone(), actor));
                Publish::Bound(swiss)
            }
        }
    }

    /// Every export name and its swiss number.
    #[actor(local)]
    pub fn names(&self) -> BTreeMap<String, Vec<u8>> {
        self.names.clone()
    }

    /// The swiss numbers bound to actors (published or minted for peers).
    #[actor(local)]
    pub fn minted(&self) -> Vec<(Vec<u8>, AnyRef)> {
        self.minted.clone()
    }

    /// Forgets the name `name` and its actor: its swiss number, or `None` if the record
    /// has no such name.
    #[actor(local)]
    pub fn unpublish(&mut self, name: String) -> Option<Vec<u8>> {
        let swiss = self.names.remove(&name)?;
        self.minted.retain(|(s, _)| *s != swiss);
        Some(swiss)
    }

    /// Forgets `swiss` (compared in constant time), whether it is an export name's or a
    /// minted one, with the actor bound to it: what it was, or `None` if the record does
    /// not hold it.
    #[actor(local)]
    pub fn forget(&mut self, swiss: Vec<u8>) -> Option<Revoked> {
        let same = |s: &Vec<u8>| bool::from(s.as_slice().ct_eq(&swiss));
        let before = self.minted.len();
        self.minted.retain(|(s, _)| !same(s));
        let had_actor = self.minted.len() < before;
        if let Some(name) = self
            .names
            .iter()
            .find(|(_, s)| same(s))
            .map(|(n, _)| n.clone())
        {
            self.names.remove(&name);
            return Some(Revoked::Named(name));
        }
        had_actor.then_some(Revoked::Minted)
    }

    /// Remembers a swiss number minted for `actor`.
    #[actor(local)]
    pub fn remember(&mut self, swiss: Vec<u8>, actor: AnyRef) {
        if !self.minted.iter().any(|(s, _)| *s == swiss) {
            self.minted.push((swiss, actor));
        }
    }
}

/// What [`NodeStore::revoke`](super::NodeStore::revoke) took back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The swiss number of this export name ([`NodeStore::swiss_for`](super::NodeStore::swiss_for)
    /// or a published name); asked for again, the name gets a new one.
    Named(String),
    /// A swiss number the node minted for a peer (`gobs:sturdyref`).
    Minted,
    /// A swiss number bound on the running node only (`Core::bind_swiss` by the host,
    /// not saved in the store).
    Bound,
}
