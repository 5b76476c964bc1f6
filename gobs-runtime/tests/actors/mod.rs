//! Hand-written actors for the runtime's own tests (the macro has its own suite).
#![allow(dead_code)]

use gobs_runtime::{Actor, NoMethods, Ref};

/// A counter that also remembers every value it was told, to check ordering.
#[derive(Debug, Default)]
pub struct Counter {
    pub count: u64,
    pub seen: Vec<u64>,
}

impl Actor for Counter {
    type Snapshot = (u64, Vec<u64>);
    type Caller<'r> = NoMethods<'r, Self>;
    type Sender<'r> = NoMethods<'r, Self>;

    fn snapshot(&self) -> Self::Snapshot {
        (self.count, self.seen.clone())
    }

    fn rollback(&mut self, (count, seen): Self::Snapshot) {
        self.count = count;
        self.seen = seen;
    }
}

/// Holds a reference to another actor.
pub struct Holder {
    pub target: Option<Ref<Counter>>,
    pub other: Option<Ref<Holder>>,
}

impl Actor for Holder {
    type Snapshot = (Option<Ref<Counter>>, Option<Ref<Holder>>);
    type Caller<'r> = NoMethods<'r, Self>;
    type Sender<'r> = NoMethods<'r, Self>;

    fn snapshot(&self) -> Self::Snapshot {
        (self.target.clone(), self.other.clone())
    }

    fn rollback(&mut self, (target, other): Self::Snapshot) {
        self.target = target;
        self.other = other;
    }
}
