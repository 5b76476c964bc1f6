//! Carrying references through calls by name (`gobs_runtime::carry`): actors and
//! foreign references in arguments and results, a promised result that holds one, the
//! errors for a reference of the wrong type or kind, and plain `invoke` still refusing
//! references.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::carry::{
    Carried, decode_carrying, deserialize_foreign, encode_carrying, is_carrying, serialize_foreign,
};
use gobs_runtime::{Promise, Ref, Vat, define_actor, spawn};

#[define_actor]
pub struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {
    pub fn get(&self) -> u64 {
        self.n
    }
}

/// A stand-in for a network layer's far reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Far(String);

impl serde::Serialize for Far {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        assert!(is_carrying());
        serialize_foreign(self.clone(), s)
    }
}

impl<'de> serde::Deserialize<'de> for Far {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Far, D::Error> {
        deserialize_foreign::<Far, D>(d)
    }
}

#[define_actor]
pub struct Desk {
    far: Option<Far>,
}

#[define_actor]
impl Desk {
    pub fn make(&mut self, n: u64) -> Ref<Counter> {
        spawn(Counter { n })
    }

    pub fn read(&self, c: Ref<Counter>) -> Result<u64, gobs_runtime::Error> {
        c.call().get()
    }

    pub fn keep(&mut self, far: Far) -> String {
        let name = far.0.clone();
        self.far = Some(far);
        name
    }

    pub fn kept(&self) -> Option<Far> {
        self.far.clone()
    }

    pub fn later(&mut self, n: u64) -> Promise<Ref<Counter>> {
        Promise::fulfilled(spawn(Counter { n }))
    }
}

fn setup() -> (Vat, Ref<Desk>) {
    let vat = Vat::spawn("carry").unwrap();
    let desk = vat.spawn_actor(Desk { far: None }).unwrap();
    (vat, desk)
}

#[test]
fn an_actor_reference_goes_out_and_comes_back_typed() {
    let (vat, desk) = setup();
    let (args, refs) = encode_carrying(&(7u64,)).unwrap();
    let (bytes, refs) = desk.invoke_carrying("make", args, refs).wait().unwrap();
    assert_eq!(refs.len(), 1);
    assert!(refs[0].actor.is_some());
    let counter: Ref<Counter> = decode_carrying(&bytes, refs).unwrap();
    assert_eq!(counter.send().get().wait().unwrap(), 7);

    let (args, refs) = encode_carrying(&(counter,)).unwrap();
    let (bytes, refs) = desk.invoke_carrying("read", args, refs).wait().unwrap();
    assert!(refs.is_empty());
    assert_eq!(decode_carrying::<u64>(&bytes, refs).unwrap(), 7);
    vat.shutdown();
}

#[test]
fn a_reference_of_another_type_or_kind_is_refused_naming_both() {
    let (vat, desk) = setup();
    let (args, refs) = encode_carrying(&(desk.clone(),)).unwrap();
    let err = desk
        .invoke_carrying("read", args, refs)
        .wait()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expected a reference to a Counter, got Desk"),
        "{err}"
    );
    let (args, refs) = encode_carrying(&(Far("elsewhere".into()),)).unwrap();
    let err = desk
        .invoke_carrying("read", args, refs)
        .wait()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expected a reference to a Counter of this process"),
        "{err}"
    );
    vat.shutdown();
}

#[test]
fn a_foreign_reference_is_kept_and_answered_with() {
    let (vat, desk) = setup();
    let (args, refs) = encode_carrying(&(Far("peer-1".into()),)).unwrap();
    assert!(refs[0].foreign_as::<Far>().is_some());
    let (bytes, refs) = desk.invoke_carrying("keep", args, refs).wait().unwrap();
    assert_eq!(decode_carrying::<String>(&bytes, refs).unwrap(), "peer-1");
    let (bytes, refs) = desk
        .invoke_carrying("kept", Vec::new(), Vec::new())
        .wait()
        .unwrap();
    assert_eq!(
        decode_carrying::<Option<Far>>(&bytes, refs).unwrap(),
        Some(Far("peer-1".into()))
    );
    vat.shutdown();
}

#[test]
fn a_promised_result_carries_its_reference() {
    let (vat, desk) = setup();
    let (args, refs) = encode_carrying(&(3u64,)).unwrap();
    let (bytes, refs) = desk.invoke_carrying("later", args, refs).wait().unwrap();
    let counter: Ref<Counter> = decode_carrying(&bytes, refs).unwrap();
    assert_eq!(counter.send().get().wait().unwrap(), 3);
    vat.shutdown();
}

#[test]
fn plain_invoke_still_refuses_a_reference_and_a_missing_entry_is_an_error() {
    let (vat, desk) = setup();
    let err = desk
        .invoke("make", rmp_serde::to_vec(&(1u64,)).unwrap())
        .wait()
        .unwrap_err();
    assert!(
        matches!(err, gobs_runtime::Error::RefByName { .. }),
        "{err}"
    );
    // A placeholder whose entry is not there.
    let (args, _refs) = encode_carrying(&(desk.clone(),)).unwrap();
    let err = desk
        .invoke_carrying("read", args, Vec::<Carried>::new())
        .wait()
        .unwrap_err()
        .to_string();
    assert!(err.contains("no carried reference number 0"), "{err}");
    vat.shutdown();
}
