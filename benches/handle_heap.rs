//! The heap of one TLS handle, counted by the library's global allocator (`platform::memory`,
//! which counts every allocation of the process: the library's, rustls' and this program's)
//! against the real emulator: idle after
//! `Client::new`, the peak while `register_blocking` runs, what the finished handle still
//! holds, and what a second idle handle adds. Twice: against records written whole, and
//! against a server that sends every byte in its own TLS record.
//!
//! A report, never a test: `cargo bench --bench handle_heap`. The C API's figures, which add
//! its handle's own wrapper, come from `tools/handle_heap.sh`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{device_key, emulator_config, sym_enrollment, test_key, Emulator};
use dps_mqtt::engine::Client;
use dps_mqtt::hosted::{SystemClock, TcpTransport};
use dps_mqtt::platform::memory;

fn held() -> usize {
    memory::usage().0
}

/// Idle, in flight (peak), finished and a second idle handle, in bytes.
fn measure(emu: &Emulator, registration_id: &str) -> [usize; 4] {
    let cfg = emulator_config(emu, Some(registration_id), device_key(registration_id));
    let new_client = || {
        let settings = cfg.settings().expect("valid settings");
        Client::new(settings, TcpTransport::default(), SystemClock::default()).expect("client")
    };
    let before = held();
    let mut client = new_client();
    let idle = held() - before;
    let before_second = held();
    let second = new_client();
    let second_idle = held() - before_second;
    drop(second);
    memory::reset_peak();
    client.start().expect("start");
    client
        .register_blocking(&mut |_| {})
        .expect("assigned by the emulator");
    let peak = memory::usage().1 - before;
    let finished = held() - before;
    drop(client);
    [idle, peak, finished, second_idle]
}

fn main() {
    let whole = "bench-whole";
    let bytes = "bench-one-byte-records";
    let emu = Emulator::start(
        serde_json::json!({ "enrollments": [
            sym_enrollment(whole, &test_key(whole), serde_json::json!({ "retryAfter": 0 })),
            sym_enrollment(bytes, &test_key(bytes),
                serde_json::json!({ "retryAfter": 0, "fragment": true })),
        ] }),
        &[],
    );
    // A first registration warms what a process keeps once (the name lookup's state and
    // the like), so that the rows show a handle's own cost.
    measure(&emu, whole);
    println!(
        "{:<30} {:>8} {:>18} {:>10} {:>13}",
        "one TLS handle (Rust API)", "idle", "in flight (peak)", "finished", "second idle"
    );
    for (name, id) in [
        ("records written whole", whole),
        ("one byte per TLS record", bytes),
    ] {
        let mut runs: Vec<[usize; 4]> = (0..5).map(|_| measure(&emu, id)).collect();
        runs.sort_by_key(|r| r[1]);
        let [idle, peak, finished, second] = runs[runs.len() / 2];
        let peaks: Vec<String> = runs.iter().map(|r| r[1].to_string()).collect();
        println!(
            "{name:<30} {idle:>8} {peak:>18} {finished:>10} {second:>13}   (peaks of 5 runs: {})",
            peaks.join(", ")
        );
    }
}
