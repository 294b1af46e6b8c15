//! Fuzz target bodies, kept in one file so the libFuzzer binaries and the stable-Rust corpus
//! test (`tests/fuzz_corpus.rs`, which `#[path]`-includes `targets.rs`) run exactly the same
//! checks.

#[path = "targets.rs"]
pub mod targets;
