//! The smallest actors: a unit struct, and a struct with no methods (empty impl block).
use gobs_runtime::{Actor, Vat, define_actor};

#[define_actor]
pub struct Marker;

#[define_actor]
impl Marker {}

#[define_actor]
pub struct Note {
    text: String,
}

#[define_actor]
impl Note {}

fn main() {
    let saved = Marker.save().unwrap();
    assert!(Marker::restore(1, &saved).is_ok());
    let note = Note::restore(1, &Note { text: "hi".into() }.save().unwrap()).unwrap();
    assert_eq!(note.text, "hi");

    let vat = Vat::spawn("unit").unwrap();
    let marker = vat.spawn_actor(Marker).unwrap();
    assert!(marker.methods().is_empty());
    vat.shutdown();
}
