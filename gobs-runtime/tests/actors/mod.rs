//! Actors for the runtime's own tests.
#![allow(dead_code)]

use gobs_runtime::{Ref, define_actor};

/// A counter that also remembers every value it was told, to check ordering.
#[define_actor]
#[derive(Debug, Default)]
pub struct Counter {
    pub count: u64,
    pub seen: Vec<u64>,
}

#[define_actor]
impl Counter {
    pub fn increment(&mut self) -> u64 {
        self.count += 1;
        self.count
    }

    pub fn get(&self) -> u64 {
        self.count
    }
}

/// Holds references to other actors.
#[define_actor]
pub struct Holder {
    pub target: Option<Ref<Counter>>,
    pub other: Option<Ref<Holder>>,
}

#[define_actor]
impl Holder {}
