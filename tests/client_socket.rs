//! `dps_client_socket`: the built-in transport's socket, for a caller that waits for
//! readiness itself and drives the client with `dps_client_do_work`. It is there from the
//! start of the TCP connect (non-blocking: wait for writability) to the end of the connection.

mod common;

use std::ptr;
use std::time::Duration;

use common::{c, ffi_client, ffi_config, sym_emulator, test_key};
use dps_mqtt::ffi::client::*;
use dps_mqtt::ffi::config::*;
use dps_mqtt::ffi::result::dps_result::*;
use serde_json::json;

#[test]
fn the_socket_is_there_exactly_while_the_built_in_transport_is_connected() {
    assert_eq!(dps_client_socket(ptr::null()), -1);
    let name = "socket-getter";
    // The emulator holds each answer back, so that at least one `do_work` returns while the
    // connection waits for it. Without the delay, loopback can answer faster than one call's
    // rounds end, and the whole registration finishes inside a single call.
    let emu = sym_emulator(name, json!({ "retryAfter": 0, "delayMs": 50 }), &[]);
    let cfg = ffi_config(&emu, name);
    assert_eq!(
        dps_config_set_symmetric_key(cfg, c(&test_key(name)).as_ptr()),
        DPS_OK
    );
    let cl = ffi_client(cfg);
    assert_eq!(
        dps_client_socket(cl),
        -1,
        "no connection before the first step"
    );

    let mut seen = Vec::new();
    let mut next_ms = 0u32;
    let result = loop {
        let r = dps_client_do_work(cl, &mut next_ms);
        if r != DPS_PENDING {
            break r;
        }
        let fd = dps_client_socket(cl);
        if fd < 0 {
            // Only while the name resolves (on a helper thread): there is no socket yet.
            assert!(
                seen.is_empty(),
                "the socket went away mid-attempt: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(u64::from(next_ms.min(10))));
            continue;
        }
        seen.push(fd);
        // What an event loop would wait on: the connection itself.
        #[cfg(target_os = "linux")]
        {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("open fd");
            assert!(link.to_string_lossy().starts_with("socket:"), "{link:?}");
        }
        // An event loop would wait on `fd` for up to `next_ms`; without one, the timer part.
        std::thread::sleep(Duration::from_millis(u64::from(next_ms.min(10))));
    };
    assert_eq!(result, DPS_OK);
    assert!(!seen.is_empty());
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "one connection: {seen:?}"
    );
    assert_eq!(dps_client_socket(cl), -1, "closed once assigned");
    dps_client_free(cl);
    dps_config_free(cfg);
}
