//! Compile-fail and compile-pass cases for `#[define_actor]`.
//!
//! Each `ui/fail/*.rs` is one misuse, named after it, beside the `.stderr` a user sees.
//! The toolchain is pinned (`rust-toolchain.toml`) because that text drifts between
//! compilers; regenerate with `TRYBUILD=overwrite cargo test -p gobs-tests --test ui`
//! and read the diff before committing it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}
