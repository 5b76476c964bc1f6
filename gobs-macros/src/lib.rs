//! `#[define_actor]`: turns a plain Rust type into a persistent gobs actor.
//!
//! Use it through `gobs_runtime::define_actor`; this crate holds no runtime logic.
