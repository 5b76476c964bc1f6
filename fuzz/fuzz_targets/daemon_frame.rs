//! Fuzz target: `gobs_app::fuzzing::daemon_frame` (see its docs for what the bytes mean and the
//! oracle). The corpus replay test in `robustness/tests/fuzz_corpus.rs` calls the same function.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gobs_app::fuzzing::daemon_frame(data));
