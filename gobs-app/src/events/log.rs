//! [`EventLog`]: the actor that keeps the event log, in the boss's vat and store. Entries
//! are saved one per churn (a [`JournalMap`] keyed by sequence number), so adding one costs
//! one entry, not the log; past the retention the oldest go.
//!
//! Followers do not poll: [`EventLog::wait_after`] answers with a promise that the next
//! [`EventLog::append`] fulfils.

use std::sync::{Arc, Mutex, PoisonError};

use gobs_runtime::{JournalMap, Promise, Resolver, define_actor};

use crate::events::{DEFAULT_RETAIN, Event, EventPage, EventQuery, PAGE_EVENTS, What, now_ms};

/// Promises to fulfil at the next append. Not saved: a follower that outlives a restart
/// asks again.
#[derive(Debug, Clone, Default)]
pub struct Waiters(Arc<Mutex<Vec<Resolver<()>>>>);

impl Waiters {
    fn add(&self) -> Promise<()> {
        let (promise, resolver) = Promise::pair();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(resolver);
        promise
    }

    fn wake(&self) {
        let waiting = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        for resolver in waiting {
            resolver.fulfill(());
        }
    }
}

/// The event log. Build it with `EventLog::new()` inside a turn.
#[define_actor]
#[derive(Debug)]
pub struct EventLog {
    #[actor(default = JournalMap::new())]
    events: JournalMap<u64, Event>,
    /// The next entry's sequence number.
    #[actor(default = 1)]
    next_seq: u64,
    /// How many entries are kept.
    #[actor(default = DEFAULT_RETAIN)]
    retain: u64,
    #[actor(transient)]
    waiters: Waiters,
}

#[define_actor]
impl EventLog {
    /// Adds an entry about `machine` (now), drops the oldest past the retention, and wakes
    /// the followers. Returns its sequence number.
    #[actor(local)]
    pub fn append(&mut self, machine: Option<String>, what: What) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let event = Event {
            seq,
            at_ms: now_ms(),
            machine,
            what,
        };
        crate::metrics::observe_event(&event);
        self.events.insert(seq, event);
        self.prune();
        self.waiters.wake();
        seq
    }

    /// Keeps at most `retain` entries from now on (at least 1), dropping the oldest.
    #[actor(local)]
    pub fn set_retention(&mut self, retain: u64) {
        self.retain = retain.max(1);
        self.prune();
    }

    /// How many entries are kept.
    #[actor(local)]
    pub fn retention(&self) -> u64 {
        self.retain
    }

    /// The entries matching `query`, oldest first, at most [`PAGE_EVENTS`].
    #[actor(local)]
    pub fn page(&self, query: EventQuery) -> EventPage {
        let mut page = EventPage {
            next: query.after,
            ..EventPage::default()
        };
        let wanted = |e: &Event| {
            query
                .machine
                .as_deref()
                .is_none_or(|m| e.machine.as_deref() == Some(m))
        };
        for (seq, event) in self.events.iter().filter(|(seq, _)| **seq > query.after) {
            if page.events.len() == PAGE_EVENTS {
                page.more = true;
                break;
            }
            page.next = *seq;
            if wanted(event) {
                page.events.push(event.clone());
            }
        }
        page
    }

    /// Resolves once there is an entry after `seq`: at once if there is one, else at the
    /// next [`append`](EventLog::append).
    #[actor(local)]
    pub fn wait_after(&self, seq: u64) -> Promise<()> {
        if self.next_seq > seq + 1 {
            return Promise::fulfilled(());
        }
        self.waiters.add()
    }

    /// The last sequence number given out (0 if none).
    #[actor(local)]
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// How many entries are kept now.
    #[actor(local)]
    pub fn kept(&self) -> usize {
        self.events.len()
    }
}

impl EventLog {
    fn prune(&mut self) {
        let excess = (self.events.len() as u64).saturating_sub(self.retain);
        let oldest: Vec<u64> = self
            .events
            .keys()
            .take(usize::try_from(excess).unwrap_or(usize::MAX))
            .copied()
            .collect();
        for seq in oldest {
            self.events.remove(&seq);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::events::MachineState;
    use gobs_runtime::{Vat, spawn};

    fn state(state: MachineState) -> What {
        What::State {
            state,
            provider: "dummy".into(),
            error: None,
        }
    }

    #[test]
    fn keeps_the_newest_entries_and_pages_by_machine() {
        let vat = Vat::spawn("event-log").unwrap();
        let log = vat.run(|| spawn(EventLog::new())).unwrap();
        log.send().set_retention(5).wait().unwrap();
        for i in 0..8u64 {
            let machine = if i % 2 == 0 { "a" } else { "b" };
            let seq = log
                .send()
                .append(Some(machine.into()), state(MachineState::Creating))
                .wait()
                .unwrap();
            assert_eq!(seq, i + 1);
        }
        let all = log.send().page(EventQuery::default()).wait().unwrap();
        let seqs: Vec<u64> = all.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [4, 5, 6, 7, 8]);
        assert_eq!((all.next, all.more), (8, false));
        let a = log
            .send()
            .page(EventQuery {
                machine: Some("a".into()),
                after: 4,
            })
            .wait()
            .unwrap();
        let seqs: Vec<u64> = a.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [5, 7]);
        vat.shutdown();
    }

    #[test]
    fn a_follower_is_woken_by_the_next_entry() {
        let vat = Vat::spawn("event-wait").unwrap();
        let log = vat.run(|| spawn(EventLog::new())).unwrap();
        let pending = log.send().wait_after(0);
        // The log has answered every message sent before this one: the wait is pending.
        assert_eq!(log.send().last_seq().wait().unwrap(), 0);
        let Err(pending) = pending.wait_timeout(std::time::Duration::ZERO) else {
            panic!("woken without an entry");
        };
        log.send()
            .append(None, state(MachineState::Running))
            .wait()
            .unwrap();
        pending.wait().unwrap();
        // Already there: at once.
        log.send().wait_after(0).wait().unwrap();
        vat.shutdown();
    }
}
