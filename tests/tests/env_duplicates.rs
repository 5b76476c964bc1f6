//! Two actors claiming one registry name: an env refuses them, naming both definitions.
//!
//! A test binary of its own, because the clash also (rightly) makes `Env::registered`
//! fail for every test linked with these actors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::{Actor, Env, Error, define_actor};

const FIRST_LINE: u32 = line!() + 3;
#[define_actor(name = "tests::Same")]
#[derive(Default)]
pub struct First {
    a: u32,
}

#[define_actor]
impl First {}

const SECOND_LINE: u32 = line!() + 3;
#[define_actor(name = "tests::Same")]
#[derive(Default)]
pub struct Second {
    b: String,
}

#[define_actor]
impl Second {}

/// Its alias is `Third`'s name.
#[define_actor(name = "tests::Renamed", aliases = ["tests::Third"])]
pub struct Renamed {
    c: u8,
}

#[define_actor]
impl Renamed {}

#[define_actor(name = "tests::Third")]
pub struct Third {
    d: u8,
}

#[define_actor]
impl Third {}

fn where_defined(line: u32) -> String {
    format!("{}:{line}", file!())
}

#[test]
fn entries_record_file_and_line_of_the_struct() {
    assert_eq!(First::entry().file, file!());
    assert_eq!(First::entry().line, FIRST_LINE);
    assert_eq!(Second::entry().line, SECOND_LINE);
}

#[test]
fn two_actors_with_one_name_are_an_error_naming_both_definitions() {
    let err = Env::builder("clash")
        .add::<First>()
        .add::<Second>()
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateName { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("env clash"), "{msg}");
    assert!(msg.contains("`tests::Same`"), "{msg}");
    assert!(
        msg.contains(&format!("First ({})", where_defined(FIRST_LINE))),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("Second ({})", where_defined(SECOND_LINE))),
        "{msg}"
    );
    assert!(msg.contains("name = "), "{msg}");
}

#[test]
fn an_alias_clashing_with_another_name_is_an_error_too() {
    let err = Env::builder("alias-clash")
        .add::<Third>()
        .add::<Renamed>()
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`tests::Third`"), "{msg}");
    assert!(
        msg.contains("Third (") && msg.contains("Renamed ("),
        "{msg}"
    );
}

#[test]
fn a_clash_between_extended_envs_is_found() {
    let a = Env::builder("a").add::<First>().build().unwrap();
    let b = Env::builder("b").add::<Second>().build().unwrap();
    let err = Env::builder("app")
        .extend(&a)
        .extend(&b)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("`tests::Same`"), "{err}");
}

#[test]
fn the_registered_env_reports_the_clash() {
    let err = Env::registered("everything").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`tests::Same`") || msg.contains("`tests::Third`"),
        "{msg}"
    );
}
