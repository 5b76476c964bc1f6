//! `#[define_actor]` features beyond the basics, at run time: `#[cfg]` on fields and
//! messages, generated proxies that raise no clippy lint, a rollback through a cfg-gated
//! snapshot, an actor whose struct and methods stand in two modules. (The compile-time side is in `ui/pass/cfg_*.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::{Actor, Error, Vat, define_actor};

/// One field and one message exist only in builds where `any()` holds (never): the
/// portrait, the snapshot and the by-name table are those of the other fields.
#[define_actor]
#[derive(Debug)]
pub struct Gated {
    kept: u32,
    #[cfg(any())]
    gone: String,
    also_kept: Vec<u8>,
}

#[define_actor]
impl Gated {
    pub fn add(&mut self, n: u32) -> Result<u32, String> {
        self.kept += n;
        self.also_kept.push(n as u8);
        if n > 100 {
            Err("too much".into())
        } else {
            Ok(self.kept)
        }
    }

    #[cfg(any())]
    pub fn gone(&self) -> String {
        self.gone.clone()
    }
}

/// `len` without `is_empty`, `new` not returning `Self`, `iter` not returning an iterator:
/// shapes clippy lints on, here as messages. The generated proxies must not add lints of
/// their own (CI runs clippy with `-D warnings` on this file).
#[define_actor]
#[derive(Default)]
pub struct Lengthy {
    items: Vec<u32>,
}

#[define_actor]
#[allow(clippy::len_without_is_empty, clippy::new_ret_no_self)]
impl Lengthy {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn new(&mut self, item: u32) -> u32 {
        self.items.push(item);
        item
    }

    pub fn iter(&self) -> Vec<u32> {
        self.items.clone()
    }
}

#[test]
fn a_cfg_gated_field_is_not_in_the_portrait() {
    let g = Gated {
        kept: 3,
        also_kept: vec![1],
    };
    let args = g.save().unwrap();
    let (kept, also): (u32, Vec<u8>) = rmp_serde::from_slice(&args).unwrap();
    assert_eq!((kept, also), (3, vec![1]));
    let back = Gated::restore(1, &args).unwrap();
    assert_eq!((back.kept, back.also_kept), (3, vec![1]));
}

#[test]
fn a_cfg_gated_snapshot_rolls_back() {
    let vat = Vat::spawn("gated").unwrap();
    let g = vat
        .spawn_actor(Gated {
            kept: 1,
            also_kept: Vec::new(),
        })
        .unwrap();
    assert_eq!(g.send().add(2).wait().unwrap(), 3);
    // The method's own error, wrapped for the actor: the turn is rolled back, nothing else.
    match g.send().add(200).wait() {
        Err(Error::Actor { actor, message, .. }) => {
            assert!(actor.contains("Gated"), "{actor}");
            assert_eq!(message, "too much");
        }
        other => panic!("not the method's own error: {other:?}"),
    }
    assert_eq!(
        g.send_with(|g| (g.kept, g.also_kept.clone()))
            .wait()
            .unwrap(),
        (3, vec![2])
    );
    let names: Vec<&str> = g.methods().iter().map(|m| m.name).collect();
    assert_eq!(names, ["add"]);
    vat.shutdown();
}

#[test]
fn proxies_of_lint_prone_messages_work() {
    let vat = Vat::spawn("lengthy").unwrap();
    let l = vat.spawn_actor(Lengthy::default()).unwrap();
    l.send().new(4).wait().unwrap();
    assert_eq!(l.send().len().wait().unwrap(), 1);
    assert_eq!(l.send().iter().wait().unwrap(), vec![4]);
    vat.shutdown();
}

/// Two actors that hold references to each other keep their saved forms in one module
/// and their methods in a module each (as gobs-app's shares do), so that the modules
/// import no circle.
mod saved {
    use gobs_runtime::{Ref, define_actor};

    #[define_actor]
    #[derive(Debug, Default)]
    pub struct Ledger {
        pub(crate) notes: Vec<String>,
    }

    #[define_actor]
    #[derive(Debug)]
    pub struct Clerk {
        pub(crate) ledger: Ref<Ledger>,
    }
}

mod ledger {
    use super::saved::{Ledger, LedgerCall, LedgerSend};
    use gobs_runtime::define_actor;

    #[define_actor]
    impl Ledger {
        pub fn note(&mut self, what: String) -> usize {
            self.notes.push(what);
            self.notes.len()
        }

        pub fn notes(&self) -> Vec<String> {
            self.notes.clone()
        }
    }
}

mod clerk {
    use super::saved::{Clerk, ClerkCall, ClerkSend};
    use gobs_runtime::define_actor;

    #[define_actor]
    impl Clerk {
        pub fn file(&mut self, what: String) -> usize {
            self.ledger.call().note(what).unwrap()
        }
    }
}

#[test]
fn an_actors_methods_may_stand_in_another_module_than_its_struct() {
    let vat = Vat::spawn("split").unwrap();
    let ledger = vat.spawn_actor(saved::Ledger::default()).unwrap();
    let clerk = vat
        .spawn_actor(saved::Clerk {
            ledger: ledger.clone(),
        })
        .unwrap();
    assert_eq!(clerk.send().file("one".into()).wait().unwrap(), 1);
    assert_eq!(clerk.send().file("two".into()).wait().unwrap(), 2);
    assert_eq!(ledger.send().notes().wait().unwrap(), ["one", "two"]);
    vat.shutdown();
}
