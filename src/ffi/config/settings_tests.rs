//! Through the C ABI: each setter refuses bad input itself, with its own code and the precise
//! reason in `dps_config_result_detail` (and the log): nothing is left for `dps_client_new`
//! or the connection to discover.

use core::cell::RefCell;
use core::ffi::{c_char, c_void, CStr};
use core::ptr;
use std::ffi::CString;

use super::*;
use crate::ffi::result::dps_result::*;
use crate::ffi::transport::dps_log_level;
use crate::settings::*;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// The detail of the config's last refusal.
fn detail(cfg: *const dps_config) -> String {
    let text = dps_config_result_detail(cfg);
    assert!(!text.is_null());
    // SAFETY: a non-NULL detail is a NUL-terminated string valid until the next setter call.
    unsafe { CStr::from_ptr(text) }.to_str().unwrap().to_owned()
}

/// Runs `f` on a fresh config, freed afterwards.
fn with_config(f: impl FnOnce(*mut dps_config)) {
    let cfg = dps_config_new();
    assert!(!cfg.is_null());
    f(cfg);
    dps_config_free(cfg);
}

#[test]
fn impossible_host_names_are_refused_by_the_setter() {
    with_config(|cfg| {
        assert_eq!(detail(cfg), "", "nothing refused yet");
        for (host, why) in [
            ("exa mple.com", r#"host "exa mple.com" contains ' '"#),
            ("x..y", r#"host "x..y" has an empty label"#),
            (
                "a:b",
                r#"host "a:b" contains ':' but is not an IPv6 address"#,
            ),
            ("", "host is empty"),
            ("dps.example.", "without the trailing dot"),
            (&"a".repeat(254), "a host name has at most 253"),
        ] {
            assert_eq!(
                dps_config_set_endpoint(cfg, c(host).as_ptr(), 8883),
                DPS_ERR_INVALID_ARGUMENT,
                "{host:?}"
            );
            assert!(detail(cfg).contains(why), "{host:?}: {}", detail(cfg));
        }
        for host in ["dps.example", "127.0.0.1", "::1", "[::1]"] {
            assert_eq!(
                dps_config_set_endpoint(cfg, c(host).as_ptr(), 8883),
                DPS_OK,
                "{host}"
            );
        }
        // SAFETY: a live config used by this thread only.
        assert_eq!(
            unsafe { &(*cfg).inner }.host.as_str(),
            "::1",
            "held without brackets"
        );
    });
}

#[test]
fn a_refused_host_leaves_the_endpoint_as_it_was() {
    with_config(|cfg| {
        assert_eq!(
            dps_config_set_endpoint(cfg, c("dps.example").as_ptr(), 8443),
            DPS_OK
        );
        assert_eq!(
            dps_config_set_endpoint(cfg, c("x..y").as_ptr(), 1),
            DPS_ERR_INVALID_ARGUMENT
        );
        // SAFETY: as above.
        let inner = unsafe { &(*cfg).inner };
        assert_eq!(
            (inner.host.as_str(), inner.port.get()),
            ("dps.example", 8443)
        );
    });
}

#[test]
fn a_host_alone_lets_the_port_follow_websocket() {
    with_config(|cfg| {
        // SAFETY: as above (read between calls, never across one).
        let port = || unsafe { &(*cfg).inner }.port.get();
        assert_eq!(dps_config_set_host(cfg, c("dps.example").as_ptr()), DPS_OK);
        assert_eq!(port(), 8883);
        assert_eq!(dps_config_set_websocket(cfg, true), DPS_OK);
        assert_eq!(port(), 443);
        assert_eq!(
            dps_config_set_host(cfg, c("x..y").as_ptr()),
            DPS_ERR_INVALID_ARGUMENT
        );
        assert!(detail(cfg).contains("empty label"), "{}", detail(cfg));
        assert_eq!(
            dps_config_set_endpoint(cfg, c("dps.example").as_ptr(), 0),
            DPS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(detail(cfg), "port 0 is not a port; give 1 to 65535");
        assert_eq!(
            dps_config_set_endpoint(cfg, c("dps.example").as_ptr(), 8443),
            DPS_OK
        );
        assert_eq!(dps_config_set_websocket(cfg, false), DPS_OK);
        assert_eq!(
            dps_config_set_host(cfg, c("other.example").as_ptr()),
            DPS_OK
        );
        assert_eq!(port(), 8443, "an explicit port is kept");
        assert_eq!(
            dps_config_set_host(cfg, ptr::null()),
            DPS_ERR_INVALID_NULL_POINTER
        );
    });
}

#[cfg(feature = "tls")]
#[test]
fn the_proxy_host_follows_the_same_rule() {
    with_config(|cfg| {
        let set = |host: &str, port: u16| {
            dps_config_set_proxy(cfg, c(host).as_ptr(), port, ptr::null(), ptr::null())
        };
        assert_eq!(set("proxy.example", 3128), DPS_OK);
        assert_eq!(set("[::1]", 3128), DPS_OK);
        for (host, port, why) in [
            (
                "exa mple.com",
                3128,
                r#"proxy host "exa mple.com" contains ' '"#,
            ),
            ("x..y", 3128, r#"proxy host "x..y" has an empty label"#),
            ("a:b", 3128, r#"proxy host "a:b" contains ':'"#),
            ("proxy.example", 0, "proxy port 0 is not a port"),
        ] {
            assert_eq!(set(host, port), DPS_ERR_INVALID_ARGUMENT, "{host:?}");
            assert!(detail(cfg).starts_with(why), "{host:?}: {}", detail(cfg));
        }
    });
}

#[test]
fn payload_too_big_too_deep_and_not_json_are_told_apart() {
    with_config(|cfg| {
        let set = |json: &str| dps_config_set_payload_json(cfg, c(json).as_ptr());
        let too_big = format!("\"{}\"", "x".repeat(100_000 - 2));
        assert_eq!(set(&too_big), DPS_ERR_INVALID_PAYLOAD);
        assert_eq!(
            detail(cfg),
            "payload is 100000 bytes; the service accepts at most 98304"
        );
        let too_deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(set(&too_deep), DPS_ERR_INVALID_PAYLOAD);
        assert_eq!(detail(cfg), "payload nests 65 levels deep; at most 64");
        assert_eq!(set("{not json"), DPS_ERR_INVALID_PAYLOAD);
        assert!(
            detail(cfg).starts_with("payload is not valid JSON: key must be a string"),
            "{}",
            detail(cfg)
        );
        assert_eq!(set(r#" {"site": [1, 2]} "#), DPS_OK);
        // SAFETY: as above.
        let payload = unsafe { &(*cfg).inner }.payload.clone().unwrap();
        assert_eq!(payload.as_str(), r#"{"site": [1, 2]}"#);
    });
}

#[test]
fn keep_alive_range_is_5_to_1767_seconds() {
    assert_eq!(DPS_KEEP_ALIVE_MIN_S, 5);
    assert_eq!(DPS_KEEP_ALIVE_MAX_S, 1767);
    assert_eq!(
        dps_config_set_keep_alive_s(ptr::null_mut(), 60),
        DPS_ERR_INVALID_NULL_POINTER
    );
    with_config(|cfg| {
        // SAFETY: as above (read between calls, never across one).
        let secs = || unsafe { &(*cfg).inner }.timing.keep_alive_secs;
        assert_eq!(secs(), DPS_KEEP_ALIVE_DEFAULT_S);
        for ok in [5, 240, 1767] {
            assert_eq!(dps_config_set_keep_alive_s(cfg, ok), DPS_OK);
            assert_eq!(secs(), ok);
        }
        for bad in [0, 4, 1768, u16::MAX] {
            assert_eq!(
                dps_config_set_keep_alive_s(cfg, bad),
                DPS_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                detail(cfg),
                format!("keep-alive (s) {bad} is outside 5..=1767")
            );
            assert_eq!(secs(), 1767, "unchanged");
        }
    });
}

#[test]
fn max_packet_size_range_is_1_kib_to_mqtts_largest_packet() {
    assert_eq!(
        dps_config_set_max_packet_size(ptr::null_mut(), 4096),
        DPS_ERR_INVALID_NULL_POINTER
    );
    with_config(|cfg| {
        // SAFETY: as above (read between calls, never across one).
        let bytes = || unsafe { &(*cfg).inner }.max_packet_size.bytes();
        assert_eq!(bytes(), 99_328);
        for ok in [DPS_MAX_PACKET_SIZE_MIN, 4096, DPS_MAX_PACKET_SIZE_MAX] {
            assert_eq!(dps_config_set_max_packet_size(cfg, ok), DPS_OK);
            assert_eq!(bytes(), ok as usize);
        }
        for bad in [0, 1023, 268_435_461, u32::MAX] {
            assert_eq!(
                dps_config_set_max_packet_size(cfg, bad),
                DPS_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                detail(cfg),
                format!("maximum packet size (bytes) {bad} is outside 1024..=268435460")
            );
        }
        assert_eq!(bytes(), 268_435_460, "unchanged");
    });
}

#[test]
fn id_scope_and_registration_id_refusals_name_the_character() {
    with_config(|cfg| {
        assert_eq!(
            dps_config_set_id_scope(cfg, c("0ne/1").as_ptr()),
            DPS_ERR_INVALID_ID_SCOPE
        );
        assert!(detail(cfg).contains("contains '/'"), "{}", detail(cfg));
        assert_eq!(
            dps_config_set_registration_id(cfg, c("dev.").as_ptr()),
            DPS_ERR_INVALID_REGISTRATION_ID
        );
        assert!(detail(cfg).contains("ends with '.'"), "{}", detail(cfg));
    });
}

thread_local! {
    static LOGGED: RefCell<Vec<(dps_log_level, String)>> = const { RefCell::new(Vec::new()) };
}

extern "C" fn record(_user: *mut c_void, level: dps_log_level, message: *const c_char) {
    // SAFETY: the library passes a NUL-terminated message valid during the call.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    LOGGED.with(|l| l.borrow_mut().push((level, text)));
}

#[test]
fn a_refusal_reaches_the_log_callback_too() {
    with_config(|cfg| {
        assert_eq!(
            dps_config_set_log_callback(cfg, Some(record), ptr::null_mut(), 1),
            DPS_OK
        );
        assert_eq!(
            dps_config_set_endpoint(cfg, c("x..y").as_ptr(), 8883),
            DPS_ERR_INVALID_ARGUMENT
        );
        let logged = LOGGED.with(|l| l.borrow().clone());
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert_eq!(logged[0].0, dps_log_level::DPS_LOG_ERROR);
        assert_eq!(logged[0].1, detail(cfg));
    });
    assert!(dps_config_result_detail(ptr::null()).is_null());
}

#[test]
fn null_and_utf8_refusals_keep_their_own_codes() {
    with_config(|cfg| {
        assert_eq!(
            dps_config_set_endpoint(cfg, ptr::null(), 8883),
            DPS_ERR_INVALID_NULL_POINTER
        );
        let not_utf8 = [0xffu8, 0];
        assert_eq!(
            dps_config_set_endpoint(cfg, not_utf8.as_ptr().cast(), 8883),
            dps_result::DPS_ERR_INVALID_UTF8
        );
    });
}
