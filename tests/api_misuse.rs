//! The C ABI misused, called from Rust: calls in the wrong order and after completion,
//! re-entrant driving calls from inside the log and status callbacks, out-of-range integers,
//! invalid UTF-8 and NULL frees. Each must return an error code (or be a no-op), never crash.

mod common;

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CString};
use std::ptr;

use common::{c, ffi_client, ffi_config, sym_emulator, test_key, Emulator};
use dps_mqtt::ffi::client::*;
use dps_mqtt::ffi::config::*;
use dps_mqtt::ffi::result::dps_result::{self, *};
use dps_mqtt::ffi::result::*;
use dps_mqtt::ffi::transport::{dps_log_level, dps_status};
use serde_json::json;

/// A config for `name` on this emulator with its symmetric key, every setter checked.
fn config(emu: &Emulator, name: &str) -> *mut dps_config {
    let cfg = ffi_config(emu, name);
    assert_eq!(
        dps_config_set_symmetric_key(cfg, c(&test_key(name)).as_ptr()),
        DPS_OK
    );
    cfg
}

fn emulator(name: &str) -> Emulator {
    sym_emulator(name, json!({ "retryAfter": 0 }), &[])
}

#[test]
fn free_null_is_a_no_op_and_null_clients_are_refused() {
    dps_client_free(ptr::null_mut());
    dps_config_free(ptr::null_mut());
    let null = ptr::null_mut();
    assert_eq!(
        dps_client_do_work(null, ptr::null_mut()),
        DPS_ERR_INVALID_NULL_POINTER
    );
    assert_eq!(dps_client_register(null), DPS_ERR_INVALID_NULL_POINTER);
    assert_eq!(dps_client_last_result(null), DPS_ERR_INVALID_NULL_POINTER);
    assert!(dps_client_assigned_hub(null).is_null());
    assert!(!dps_client_wants_write(null));
    assert_eq!(dps_client_http_status(null), 0);
    assert_eq!(dps_client_retry_after_ms(null), -1);
    let mut out = ptr::null_mut();
    assert_eq!(
        dps_client_new(ptr::null(), ptr::null(), &mut out),
        DPS_ERR_INVALID_NULL_POINTER
    );
    assert!(out.is_null());
}

#[test]
fn out_of_range_integers_are_rejected() {
    let cfg = dps_config_new();
    extern "C" fn log(_: *mut c_void, _: dps_log_level, _: *const c_char) {}
    for level in [0, 5, u32::MAX] {
        assert_eq!(
            dps_config_set_log_callback(cfg, Some(log), ptr::null_mut(), level),
            DPS_ERR_INVALID_ARGUMENT,
            "level {level}"
        );
    }
    for level in 1..=4 {
        assert_eq!(
            dps_config_set_log_callback(cfg, Some(log), ptr::null_mut(), level),
            DPS_OK
        );
    }
    assert_eq!(dps_config_set_timeout_ms(cfg, 0), DPS_ERR_INVALID_ARGUMENT);
    assert_eq!(
        dps_config_set_endpoint(cfg, c("localhost").as_ptr(), 0),
        DPS_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        dps_config_set_endpoint(cfg, c("").as_ptr(), 8883),
        DPS_ERR_INVALID_ARGUMENT
    );
    dps_config_free(cfg);

    for code in [2, 99, 999, 0x8000_0000, u32::MAX] {
        assert!(!dps_result_str(code).is_null());
        assert!(!dps_result_name(code).is_null());
        assert_eq!(dps_result_class(code), dps_class::DPS_CLASS_INTERNAL);
        assert!(!dps_result_is_retryable(code));
    }
    // Known codes map to different strings than unknown ones.
    assert_ne!(dps_result_str(DPS_OK as u32), dps_result_str(u32::MAX));
}

#[test]
fn invalid_utf8_strings_are_rejected() {
    let cfg = dps_config_new();
    let bad = CString::new(vec![b'a', 0xff, 0xfe, b'b']).expect("no NUL");
    let lone_continuation = CString::new(vec![0x80]).expect("no NUL");
    let overlong = CString::new(vec![0xc0, 0xaf]).expect("no NUL");
    for s in [&bad, &lone_continuation, &overlong] {
        let p = s.as_ptr();
        assert_eq!(dps_config_set_id_scope(cfg, p), DPS_ERR_INVALID_UTF8);
        assert_eq!(dps_config_set_registration_id(cfg, p), DPS_ERR_INVALID_UTF8);
        assert_eq!(dps_config_set_symmetric_key(cfg, p), DPS_ERR_INVALID_UTF8);
        assert_eq!(dps_config_set_group_key(cfg, p), DPS_ERR_INVALID_UTF8);
        assert_eq!(dps_config_set_endpoint(cfg, p, 8883), DPS_ERR_INVALID_UTF8);
        assert_eq!(dps_config_set_payload_json(cfg, p), DPS_ERR_INVALID_UTF8);
        assert_eq!(dps_config_set_api_version(cfg, p), DPS_ERR_INVALID_UTF8);
    }
    // Nothing was stored: the config is still incomplete.
    let mut out = ptr::null_mut();
    assert_eq!(
        dps_client_new(cfg, ptr::null(), &mut out),
        DPS_ERR_INVALID_CONFIG
    );
    assert!(out.is_null(), "out is written only on success");
    dps_config_free(cfg);
}

#[test]
fn calls_in_the_wrong_order_and_after_completion() {
    let name = "order-dev";
    let emu = emulator(name);
    let cfg = config(&emu, name);
    let cl = ffi_client(cfg);
    // The config may go before the client: the client copied what it needs.
    dps_config_free(cfg);

    // Getters before any attempt.
    assert_eq!(dps_client_last_result(cl), DPS_ERR_INVALID_STATE);
    assert!(dps_client_assigned_hub(cl).is_null());
    assert!(dps_client_device_id(cl).is_null());
    assert!(dps_client_payload_json(cl).is_null());
    assert!(dps_client_result_detail(cl).is_null());
    assert_eq!(dps_client_http_status(cl), 0);
    assert_eq!(dps_client_error_code(cl), 0);
    assert_eq!(dps_client_retry_after_ms(cl), -1);
    assert!(!dps_client_wants_write(cl));

    // Register, then register again on the same handle: a second full attempt.
    assert_eq!(dps_client_register(cl), DPS_OK);
    assert_eq!(dps_client_last_result(cl), DPS_OK);
    assert!(!dps_client_assigned_hub(cl).is_null());
    assert_eq!(dps_client_http_status(cl), 200);
    assert_eq!(dps_client_register(cl), DPS_OK);
    assert_eq!(dps_client_last_result(cl), DPS_OK);

    // do_work after completion starts a new attempt, which also completes.
    let mut next = u32::MAX;
    let mut code = dps_client_do_work(cl, &mut next);
    let mut calls = 1;
    while code == DPS_PENDING {
        assert!(calls < 100_000, "do_work never finished");
        code = dps_client_do_work(cl, ptr::null_mut());
        calls += 1;
    }
    assert_eq!(code, DPS_OK);
    assert_eq!(dps_client_last_result(cl), DPS_OK);
    assert!(!dps_client_device_id(cl).is_null());
    dps_client_free(cl);
}

thread_local! {
    /// The client under test, for the callbacks (which run on the calling thread).
    static CLIENT: Cell<*mut dps_client> = const { Cell::new(ptr::null_mut()) };
    /// What each re-entrant call returned, by callback.
    static SEEN: RefCell<Vec<(&'static str, dps_result)>> = const { RefCell::new(Vec::new()) };
}

fn reenter(from: &'static str) {
    let cl = CLIENT.with(Cell::get);
    let mut results = vec![
        dps_client_do_work(cl, ptr::null_mut()),
        dps_client_register(cl),
    ];
    // Freeing from inside a callback must not free the client in use.
    dps_client_free(cl);
    // Getters are allowed, and the client is still alive.
    results.push(dps_client_last_result(cl));
    let _ = dps_client_assigned_hub(cl);
    SEEN.with(|s| {
        s.borrow_mut()
            .extend(results.into_iter().map(|r| (from, r)))
    });
}

extern "C" fn log_reentrant(_: *mut c_void, _: dps_log_level, _: *const c_char) {
    reenter("log");
}

extern "C" fn status_reentrant(_: *mut c_void, _: dps_status) {
    reenter("status");
}

#[test]
fn reentrant_calls_from_callbacks_are_refused() {
    let name = "reentrant-dev";
    let emu = emulator(name);
    let cfg = config(&emu, name);
    assert_eq!(
        dps_config_set_log_callback(cfg, Some(log_reentrant), ptr::null_mut(), 4),
        DPS_OK
    );
    assert_eq!(
        dps_config_set_status_callback(cfg, Some(status_reentrant), ptr::null_mut()),
        DPS_OK
    );
    let cl = ffi_client(cfg);
    dps_config_free(cfg);
    CLIENT.with(|c| c.set(cl));

    assert_eq!(dps_client_register(cl), DPS_OK);
    let seen = SEEN.with(|s| s.take());
    for from in ["log", "status"] {
        let calls: Vec<dps_result> = seen
            .iter()
            .filter(|(f, _)| *f == from)
            .map(|(_, r)| *r)
            .collect();
        assert!(!calls.is_empty(), "the {from} callback never ran");
        for chunk in calls.chunks(3) {
            // Driving calls are refused; the getter sees the step that ran the callback.
            assert!(
                matches!(
                    chunk,
                    [
                        DPS_ERR_INVALID_STATE,
                        DPS_ERR_INVALID_STATE,
                        DPS_PENDING | DPS_OK
                    ]
                ),
                "from the {from} callback: {chunk:?}"
            );
        }
    }

    // The same through the non-blocking entry point, then the client still works.
    let mut code = dps_client_do_work(cl, ptr::null_mut());
    while code == DPS_PENDING {
        code = dps_client_do_work(cl, ptr::null_mut());
    }
    assert_eq!(code, DPS_OK);
    assert!(!SEEN.with(|s| s.borrow().is_empty()));
    assert!(SEEN.with(|s| s
        .borrow()
        .iter()
        .all(|(_, r)| matches!(r, DPS_ERR_INVALID_STATE | DPS_PENDING | DPS_OK))));
    CLIENT.with(|c| c.set(ptr::null_mut()));
    dps_client_free(cl);
}
