//! Nothing to link: this crate holds the workspace's robustness tests.
//!
//! - `tests/fuzz_corpus.rs` replays every committed corpus of the `fuzz/` crate's targets
//!   through the same entry points (`gobs_*::fuzzing`), so a regression fails CI without
//!   libFuzzer; it also writes the seed corpus (an ignored test).
//! - `tests/store_faults.rs` runs the log store and the registry log through loops of
//!   injected write and fsync errors, and registries (log and SQLite) onto a full tmpfs.
