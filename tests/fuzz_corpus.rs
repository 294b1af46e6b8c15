//! Runs every seed in fuzz/corpus/<target>/ through the same checks as the libFuzzer targets, so
//! stable Rust and CI exercise them without nightly.

use std::path::Path;

#[path = "../fuzz/src/targets.rs"]
mod targets;

fn run_corpus(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        eprintln!("{target}: {}", path.display());
        check(&data);
        seeds += 1;
    }
    assert!(seeds >= 5, "{}: only {seeds} seeds", dir.display());
}

#[test]
fn mqtt_stream_corpus() {
    run_corpus("mqtt_stream", targets::mqtt_stream);
}

#[test]
fn response_corpus() {
    run_corpus("response", targets::response);
}

#[test]
fn engine_corpus() {
    run_corpus("engine", targets::engine);
}
