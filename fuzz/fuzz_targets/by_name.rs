//! Fuzz target: `gobs_runtime::fuzzing::by_name` (see its docs for what the bytes mean and the
//! oracle). The corpus replay test in `robustness/tests/fuzz_corpus.rs` calls the same function.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gobs_runtime::fuzzing::by_name(data));
