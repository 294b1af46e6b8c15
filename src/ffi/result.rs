//! Result codes for C: the `dps_result` and `dps_class` enums, their mapping from the core's
//! `ErrorKind` and `ErrorClass`, and names, messages, hints and classes by integer value.
//!
//! Values are grouped by class in blocks of 100: the block is part of the ABI and never
//! changes meaning; new codes are appended inside their block. The enums are written out
//! because cbindgen reads the source and cannot see into macros; the error codes of
//! `dps_result` (values and doc comments) are what the one table in `error` says, which a test
//! checks and `DPS_BLESS=1 cargo test -p dps-mqtt --lib results_` rewrites, together with
//! README's result table. The mapping below is generated from the table and matches each kind
//! by its C name.

use core::ffi::{c_char, CStr};

use super::guard_value;
use crate::error::{for_each_result, Error, ErrorClass, ErrorKind};

/// Outcome of a dps-mqtt call. `DPS_OK` is zero; `DPS_PENDING` means "call again later";
/// every other value is an error whose class is shown by its name's prefix and by
/// `dps_result_class()`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum dps_result {
    /// Success.
    DPS_OK = 0,
    /// Work is in progress: call `dps_client_do_work` again within the returned delay.
    DPS_PENDING = 1,

    // results:begin (generated from `error::for_each_result!`; do not edit by hand)
    /// An argument is out of range or malformed.
    ///
    /// What to do: fix the argument the detail names; nothing was sent.
    DPS_ERR_INVALID_ARGUMENT = 100,
    /// A required pointer argument was NULL.
    ///
    /// What to do: pass a valid pointer; the function's doc says which may be NULL.
    DPS_ERR_INVALID_NULL_POINTER = 101,
    /// A string argument is not valid UTF-8.
    ///
    /// What to do: pass NUL-terminated UTF-8 text.
    DPS_ERR_INVALID_UTF8 = 102,
    /// The registration id breaks the service's rules (1–128 of `a-z A-Z 0-9 - . _ :`, last
    /// character alphanumeric or `-`).
    ///
    /// What to do: use the registration id exactly as enrolled in DPS.
    DPS_ERR_INVALID_REGISTRATION_ID = 103,
    /// A key is not valid base64, or is empty.
    ///
    /// What to do: copy the enrollment's base64 key exactly, without quotes or spaces.
    DPS_ERR_INVALID_KEY = 104,
    /// The custom payload is not one JSON value, is over 96 KiB, or nests over 64 levels.
    ///
    /// What to do: pass one JSON value of at most 96 KiB and 64 levels.
    DPS_ERR_INVALID_PAYLOAD = 105,
    /// The configuration is incomplete or contradictory (no id scope, no credential, ...).
    ///
    /// What to do: set an id scope and exactly one credential; the detail names what is wrong.
    DPS_ERR_INVALID_CONFIG = 106,
    /// The call is not allowed in the handle's current state (wrong order, re-entrant call from a
    /// callback).
    ///
    /// What to do: call in the documented order, never from inside a callback.
    DPS_ERR_INVALID_STATE = 107,
    /// A certificate or trust-anchor PEM/DER could not be parsed.
    ///
    /// What to do: pass a PEM (-----BEGIN CERTIFICATE-----) or DER certificate.
    DPS_ERR_INVALID_CERTIFICATE = 108,
    /// The id scope is empty or contains characters the service never issues.
    ///
    /// What to do: copy the ID Scope (0ne...) from the DPS instance's overview.
    DPS_ERR_INVALID_ID_SCOPE = 109,
    /// The registration id does not match the client certificate's subject CN (X.509 attestation
    /// requires them to be equal), or the certificate has no usable CN.
    ///
    /// What to do: leave the registration id unset or make it the certificate's CN.
    DPS_ERR_INVALID_CERTIFICATE_CN = 110,
    /// The private key could not be read: not PEM or DER, or not an unencrypted PKCS#8, PKCS#1
    /// (RSA) or SEC1 (EC) key of a supported algorithm.
    ///
    /// What to do: decrypt the key: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pem.
    DPS_ERR_INVALID_PRIVATE_KEY = 111,
    /// The private key does not belong to the client certificate (the leaf's public key).
    ///
    /// What to do: pass the key made with this certificate, the leaf first in the chain.
    DPS_ERR_INVALID_CERTIFICATE_KEY_MISMATCH = 112,
    /// The call needs a feature this build of the library leaves out: TLS settings in a build
    /// without the `tls` feature (CMake `DPS_MQTT_TLS=OFF`), where TLS is always the transport's
    /// job.
    ///
    /// What to do: configure TLS in the transport, or build with TLS (DPS_MQTT_TLS=ON).
    DPS_ERR_INVALID_UNSUPPORTED = 130,
    /// The output buffer is NULL or too small; the size needed was reported.
    ///
    /// What to do: call again with a buffer of the size reported.
    DPS_ERR_INVALID_BUFFER_TOO_SMALL = 115,
    /// A stored assignment blob is truncated, corrupt or of an unknown format version.
    ///
    /// What to do: discard the stored assignment and register again.
    DPS_ERR_INVALID_ASSIGNMENT = 116,
    /// The certificate signing request is not one DER (or PEM) PKCS#10 structure.
    ///
    /// What to do: pass one PKCS#10 CSR (openssl req -new ... -outform DER).
    DPS_ERR_INVALID_CSR = 117,
    /// The model id is not a DTMI (e.g. `dtmi:com:example:Thermostat;1`).
    ///
    /// What to do: use a DTMI such as dtmi:com:example:Thermostat;1.
    DPS_ERR_INVALID_MODEL_ID = 113,

    /// The server refused the MQTT CONNECT as not authorized (CONNACK 5).
    ///
    /// What to do: check the key, the id scope and the device clock (SAS tokens expire).
    DPS_ERR_AUTH_NOT_AUTHORIZED = 200,
    /// The server refused the user name or password as malformed (CONNACK 4).
    ///
    /// What to do: check the id scope, registration id and api-version.
    DPS_ERR_AUTH_BAD_CREDENTIALS = 201,
    /// The server does not know the id scope (CONNACK 3).
    ///
    /// What to do: copy the ID Scope from the DPS instance; check the endpoint host.
    DPS_ERR_AUTH_UNKNOWN_ID_SCOPE = 202,
    /// The service answered a request with 401 (wrong key, expired token, unknown registration id,
    /// certificate not matching the enrollment).
    ///
    /// What to do: check key vs group key, the registration id and the device clock.
    DPS_ERR_AUTH_UNAUTHORIZED = 203,
    /// The server refused the client identifier (CONNACK 2).
    ///
    /// What to do: check the registration id.
    DPS_ERR_AUTH_IDENTIFIER_REJECTED = 204,
    /// The external signing callback reported a failure (HSM, TPM or secure element).
    ///
    /// What to do: check the signing callback and the key in the secure element.
    DPS_ERR_AUTH_SIGNING_FAILED = 205,

    /// The TLS handshake failed for a reason not covered below.
    ///
    /// What to do: check that host and port reach DPS without a TLS-inspecting proxy.
    DPS_ERR_TLS_HANDSHAKE = 300,
    /// The server's certificate does not chain to a trusted anchor.
    ///
    /// What to do: add the server's root CA (--ca-file, dps_config_add_trust_anchors_pem).
    DPS_ERR_TLS_CERT_UNTRUSTED = 301,
    /// The server's certificate is expired or not yet valid (by the clock hook).
    ///
    /// What to do: set the device clock (SNTP, dps_config_set_clock) before registering.
    DPS_ERR_TLS_CERT_EXPIRED = 302,
    /// The server's certificate is not valid for the host name.
    ///
    /// What to do: connect by the host name the server's certificate names.
    DPS_ERR_TLS_CERT_NAME_MISMATCH = 303,
    /// No TLS protocol version or cipher suite in common with the server.
    ///
    /// What to do: connect to a TLS 1.2/1.3 endpoint; an old proxy may be in the way.
    DPS_ERR_TLS_PROTOCOL_VERSION = 304,
    /// The server sent a fatal TLS alert, or sent bytes that are not TLS.
    ///
    /// What to do: retry; if it persists, check that the port speaks TLS (8883, 443).
    DPS_ERR_TLS_ALERT = 305,

    /// The transport's connect hook failed (refused, unreachable, name not resolved).
    ///
    /// What to do: check network and DNS; if port 8883 is blocked, use WebSocket on 443.
    DPS_ERR_TRANSPORT_CONNECT = 400,
    /// The peer closed the connection and no retry was possible.
    ///
    /// What to do: retry with back-off; if a firewall closes 8883, use WebSocket on 443.
    DPS_ERR_TRANSPORT_CLOSED = 401,
    /// The transport's send or receive hook reported an error.
    ///
    /// What to do: retry with back-off; the detail has the transport's error.
    DPS_ERR_TRANSPORT_IO = 402,
    /// The HTTP proxy refused or failed the CONNECT tunnel (its status is in the detail), or did
    /// not answer like an HTTP proxy.
    ///
    /// What to do: check the proxy address and that it allows CONNECT to the DPS port.
    DPS_ERR_TRANSPORT_PROXY = 403,
    /// The HTTP proxy wants credentials, or refused the ones given (407, or 401 as tinyproxy
    /// answers). Not retryable: fix the proxy user name or password.
    ///
    /// What to do: set the proxy user and password (--proxy-user, dps_config_set_proxy).
    DPS_ERR_TRANSPORT_PROXY_AUTH = 404,

    /// The server sent bytes that are not valid MQTT 3.1.1.
    ///
    /// What to do: retry; if it persists, check that the endpoint is DPS.
    DPS_ERR_PROTOCOL_MALFORMED = 500,
    /// The server sent a packet larger than the configured maximum.
    ///
    /// What to do: retry; if it persists, raise the maximum packet size.
    DPS_ERR_PROTOCOL_PACKET_TOO_LARGE = 501,
    /// The server sent a packet that is not allowed at this point.
    ///
    /// What to do: retry; if it persists, check that the endpoint is DPS.
    DPS_ERR_PROTOCOL_UNEXPECTED_PACKET = 502,
    /// A response topic or body could not be understood.
    ///
    /// What to do: retry; if it persists, report it with the tracking id.
    DPS_ERR_PROTOCOL_BAD_RESPONSE = 503,
    /// The service answered with a status this client does not handle (e.g. 302, 999).
    ///
    /// What to do: retry; if it persists, report the status and the tracking id.
    DPS_ERR_PROTOCOL_UNEXPECTED_STATUS = 504,
    /// CONNACK with a return code that MQTT 3.1.1 does not define, or code 1 (protocol version
    /// refused).
    ///
    /// What to do: retry; if it persists, check that the endpoint is DPS.
    DPS_ERR_PROTOCOL_CONNACK = 505,
    /// The subscription to the response topic was refused.
    ///
    /// What to do: retry; if it persists, check that the endpoint is DPS.
    DPS_ERR_PROTOCOL_SUBSCRIBE_REFUSED = 506,
    /// The server refused or botched the WebSocket upgrade (not 101, wrong Sec-WebSocket-Accept, no
    /// `mqtt` subprotocol).
    ///
    /// What to do: retry; if it persists, check the endpoint serves MQTT over WebSocket.
    DPS_ERR_PROTOCOL_WEBSOCKET_HANDSHAKE = 507,
    /// The server broke the WebSocket framing rules (masked or text frames, bad opcode or
    /// fragmentation).
    ///
    /// What to do: retry; if it persists, try without the proxy or on port 8883.
    DPS_ERR_PROTOCOL_WEBSOCKET = 508,

    /// The overall deadline passed.
    ///
    /// What to do: retry later, or with a longer timeout.
    DPS_ERR_TIMEOUT = 600,
    /// The overall deadline passed while the service kept throttling (429) or failing (5xx).
    ///
    /// What to do: retry later with back-off; spread the fleet's registrations out.
    DPS_ERR_TIMEOUT_THROTTLED = 601,
    /// The overall deadline passed while the service was still assigning.
    ///
    /// What to do: retry with a longer timeout.
    DPS_ERR_TIMEOUT_ASSIGNING = 602,

    /// The service finished the registration with status `failed`.
    ///
    /// What to do: check the enrollment's linked IoT hubs and allocation policy.
    DPS_ERR_REGISTRATION_FAILED = 700,
    /// The enrollment is disabled.
    ///
    /// What to do: enable the enrollment (or its group) in DPS.
    DPS_ERR_REGISTRATION_DISABLED = 701,
    /// The service rejected the request (a 4xx other than 401 and 429, e.g. 400 or 404).
    ///
    /// What to do: see the errorCode in the detail; for 404 create the enrollment.
    DPS_ERR_REGISTRATION_REJECTED = 702,

    /// A Rust panic was caught at the C boundary. The handle should be freed.
    ///
    /// What to do: free the handle; please report it with the log.
    DPS_ERR_PANIC = 900,
    /// An internal invariant failed; please report it.
    ///
    /// What to do: please report it with the log and the detail.
    DPS_ERR_INTERNAL = 901,
    /// The allocator installed with `dps_set_allocator` returned NULL during the call. The attempt
    /// was ended and its memory released; the handle can be used again (a larger heap, or the same
    /// one after freeing other memory).
    ///
    /// What to do: give the allocator more heap (dps_heap_usage shows the peak).
    DPS_ERR_OUT_OF_MEMORY = 902,
    /// The entropy source failed: the callback set with `dps_config_set_entropy` returned non-zero,
    /// or the operating system gave no random bytes.
    ///
    /// What to do: check the entropy callback (dps_config_set_entropy) and the RNG.
    DPS_ERR_ENTROPY_FAILED = 903,
    // results:end
}

/// The class of a result code: what a caller (or the CLI's exit code) acts on.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum dps_class {
    DPS_CLASS_OK = 0,
    DPS_CLASS_PENDING = 1,
    DPS_CLASS_INVALID = 2,
    DPS_CLASS_AUTH = 3,
    DPS_CLASS_TLS = 4,
    DPS_CLASS_TRANSPORT = 5,
    DPS_CLASS_PROTOCOL = 6,
    DPS_CLASS_TIMEOUT = 7,
    DPS_CLASS_REGISTRATION = 8,
    DPS_CLASS_INTERNAL = 9,
}

macro_rules! c_mapping {
    ($($class:ident { $($kind:ident = $c_name:ident = $value:literal => $message:literal {
        doc: $doc:literal, cause: $cause:literal, action: $action:ident, hint: $hint:literal,
    })* })*) => {
        impl From<ErrorKind> for dps_result {
            fn from(kind: ErrorKind) -> dps_result {
                match kind {
                    $($(ErrorKind::$kind => dps_result::$c_name,)*)*
                }
            }
        }
    };
}

for_each_result!(c_mapping);

impl From<Error> for dps_result {
    fn from(error: Error) -> dps_result {
        error.kind.into()
    }
}

impl From<ErrorClass> for dps_class {
    fn from(class: ErrorClass) -> dps_class {
        match class {
            ErrorClass::Invalid => dps_class::DPS_CLASS_INVALID,
            ErrorClass::Auth => dps_class::DPS_CLASS_AUTH,
            ErrorClass::Tls => dps_class::DPS_CLASS_TLS,
            ErrorClass::Transport => dps_class::DPS_CLASS_TRANSPORT,
            ErrorClass::Protocol => dps_class::DPS_CLASS_PROTOCOL,
            ErrorClass::Timeout => dps_class::DPS_CLASS_TIMEOUT,
            ErrorClass::Registration => dps_class::DPS_CLASS_REGISTRATION,
            ErrorClass::Internal => dps_class::DPS_CLASS_INTERNAL,
        }
    }
}

/// A kind's name and message as C strings with a static lifetime.
fn kind_strings(kind: ErrorKind) -> (&'static CStr, &'static CStr) {
    (
        static_cstr(kind.name_nul()),
        static_cstr(kind.message_nul()),
    )
}

/// The table's strings end in their only NUL (the names, messages and hints are plain text).
fn static_cstr(s: &'static str) -> &'static CStr {
    CStr::from_bytes_with_nul(s.as_bytes()).unwrap_or(c"")
}

/// The error kind of an integer that came from C; success, pending and unknown values give
/// `None` (never UB).
pub(crate) fn kind_from_u32(value: u32) -> Option<ErrorKind> {
    ErrorKind::ALL
        .iter()
        .copied()
        .find(|&k| dps_result::from(k) as u32 == value)
}

/// `DPS_OK`'s message, also the detail of an assigned attempt.
pub(crate) const OK_MESSAGE: &CStr = c"success";

/// The C code of an attempt's end: `DPS_OK` when assigned, else its error's code.
pub(crate) fn result_to_c(result: Result<(), ErrorKind>) -> dps_result {
    result.map_or_else(dps_result::from, |()| dps_result::DPS_OK)
}

/// What C asks about a value: success, pending, an error kind, or unknown.
enum Code {
    Ok,
    Pending,
    Error(ErrorKind),
}

fn code_from_u32(value: u32) -> Option<Code> {
    match value {
        v if v == dps_result::DPS_OK as u32 => Some(Code::Ok),
        v if v == dps_result::DPS_PENDING as u32 => Some(Code::Pending),
        v => kind_from_u32(v).map(Code::Error),
    }
}

/// A static, human-readable description of a result code, e.g. "the deadline passed".
/// Unknown values give "unknown result code". Never NULL; never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn dps_result_str(result: u32) -> *const c_char {
    guard_value(c"internal panic".as_ptr(), || {
        match code_from_u32(result) {
            Some(Code::Ok) => OK_MESSAGE,
            Some(Code::Pending) => c"in progress; call again",
            Some(Code::Error(k)) => kind_strings(k).1,
            None => c"unknown result code",
        }
        .as_ptr()
    })
}

/// A static one-line hint saying what to do about a result code, e.g. "retry later, or with a
/// longer timeout" for `DPS_ERR_TIMEOUT`, or "check key vs group key, the registration id and
/// the device clock" for `DPS_ERR_AUTH_UNAUTHORIZED`. Meant to be shown next to
/// `dps_result_str`. Unknown values give a generic hint. Never NULL; never free it.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn dps_result_hint(result: u32) -> *const c_char {
    let panic_hint = static_cstr(ErrorKind::Panic.hint_nul());
    guard_value(panic_hint.as_ptr(), || {
        static_cstr(match code_from_u32(result) {
            Some(Code::Ok) => c_only_hint(0),
            Some(Code::Pending) => c_only_hint(1),
            Some(Code::Error(k)) => k.hint_nul(),
            None => c_only_hint(2),
        })
        .as_ptr()
    })
}

/// The hints of `DPS_OK`, `DPS_PENDING` and unknown values, NUL-terminated, as one constant
/// (as `error`'s hints, so that a firmware without `dps_result_hint` keeps none of them).
const C_ONLY_HINTS: &str = concat!(
    "nothing to do\0",
    "call dps_client_do_work again within the returned delay\0",
    "unknown code: check that the header matches the library's version\0",
);

fn c_only_hint(index: usize) -> &'static str {
    C_ONLY_HINTS
        .split_inclusive('\0')
        .nth(index)
        .unwrap_or("\0")
}

/// The code's C name as a static string, e.g. "DPS_ERR_TIMEOUT". Unknown values give
/// "DPS_ERR_UNKNOWN". Never NULL; never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn dps_result_name(result: u32) -> *const c_char {
    guard_value(c"DPS_ERR_PANIC".as_ptr(), || {
        match code_from_u32(result) {
            Some(Code::Ok) => c"DPS_OK",
            Some(Code::Pending) => c"DPS_PENDING",
            Some(Code::Error(k)) => kind_strings(k).0,
            None => c"DPS_ERR_UNKNOWN",
        }
        .as_ptr()
    })
}

/// The class of a result code (what the CLI's exit code follows). Unknown values are
/// `DPS_CLASS_INTERNAL`. Thread-safe.
#[no_mangle]
pub extern "C" fn dps_result_class(result: u32) -> dps_class {
    guard_value(dps_class::DPS_CLASS_INTERNAL, || {
        match code_from_u32(result) {
            Some(Code::Ok) => dps_class::DPS_CLASS_OK,
            Some(Code::Pending) => dps_class::DPS_CLASS_PENDING,
            Some(Code::Error(k)) => k.class().into(),
            None => dps_class::DPS_CLASS_INTERNAL,
        }
    })
}

/// Whether starting a new attempt on the same handle may succeed without changing the
/// configuration (transport and protocol errors, timeouts). Unknown values give false.
#[no_mangle]
pub extern "C" fn dps_result_is_retryable(result: u32) -> bool {
    guard_value(false, || {
        kind_from_u32(result).is_some_and(|k| k.is_retryable())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Action;

    fn c_str(p: *const c_char) -> &'static str {
        // SAFETY: the exports return static NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    #[test]
    fn every_kind_maps_to_its_c_name_value_block_and_strings() {
        for &k in ErrorKind::ALL {
            let c = dps_result::from(k);
            let v = c as u32;
            assert_eq!(format!("{c:?}"), k.name());
            assert_eq!(kind_from_u32(v), Some(k));
            assert_eq!(c_str(dps_result_name(v)), k.name());
            assert_eq!(c_str(dps_result_str(v)), k.message());
            assert_eq!(dps_result_is_retryable(v), k.is_retryable());
            // The block of 100 is the class: part of the ABI.
            let by_value = match v / 100 {
                1 => dps_class::DPS_CLASS_INVALID,
                2 => dps_class::DPS_CLASS_AUTH,
                3 => dps_class::DPS_CLASS_TLS,
                4 => dps_class::DPS_CLASS_TRANSPORT,
                5 => dps_class::DPS_CLASS_PROTOCOL,
                6 => dps_class::DPS_CLASS_TIMEOUT,
                7 => dps_class::DPS_CLASS_REGISTRATION,
                _ => dps_class::DPS_CLASS_INTERNAL,
            };
            assert_eq!(dps_result_class(v), by_value, "{c:?}");
            assert!(v >= 100, "{c:?}");
        }
    }

    #[test]
    fn success_pending_and_unknown_values() {
        assert_eq!(c_str(dps_result_name(0)), "DPS_OK");
        assert_eq!(c_str(dps_result_str(0)), "success");
        assert_eq!(dps_result_class(0), dps_class::DPS_CLASS_OK);
        assert_eq!(c_str(dps_result_name(1)), "DPS_PENDING");
        assert_eq!(c_str(dps_result_str(1)), "in progress; call again");
        assert_eq!(dps_result_class(1), dps_class::DPS_CLASS_PENDING);
        assert!(!dps_result_is_retryable(0) && !dps_result_is_retryable(1));
        for v in [2u32, 99, 119, 299, 1000, u32::MAX] {
            assert_eq!(kind_from_u32(v), None, "{v}");
            assert_eq!(c_str(dps_result_name(v)), "DPS_ERR_UNKNOWN");
            assert_eq!(c_str(dps_result_str(v)), "unknown result code");
            assert_eq!(dps_result_class(v), dps_class::DPS_CLASS_INTERNAL);
        }
    }

    #[test]
    fn every_kind_has_a_one_line_hint_and_the_ffi_returns_it() {
        for &k in ErrorKind::ALL {
            let hint = k.hint();
            let name = k.name();
            assert!(!hint.trim().is_empty(), "{name} has no hint");
            assert!(
                !hint.contains(['\n', '\r', '\0']),
                "{name}'s hint is not one line"
            );
            assert!(
                hint.len() <= 80,
                "{name}'s hint is {} bytes; keep it under 80 (flash)",
                hint.len()
            );
            assert!(
                !hint.ends_with('.'),
                "{name}: hints are phrases, no full stop"
            );
            assert_ne!(hint, k.message(), "{name}: the hint repeats the message");
            assert_eq!(c_str(dps_result_hint(dps_result::from(k) as u32)), hint);
        }
    }

    #[test]
    fn hints_of_success_pending_and_unknown_values() {
        assert_eq!(c_str(dps_result_hint(0)), "nothing to do");
        assert!(c_str(dps_result_hint(1)).contains("dps_client_do_work"));
        for v in [2u32, 99, 119, 299, 1000, u32::MAX] {
            assert_eq!(
                c_str(dps_result_hint(v)),
                "unknown code: check that the header matches the library's version",
                "{v}"
            );
        }
    }

    #[test]
    fn retry_rows_are_the_retryable_codes() {
        // The classes that were retryable before the table said so, kept as they were.
        for &k in ErrorKind::ALL {
            let by_class = matches!(
                k.class(),
                ErrorClass::Transport | ErrorClass::Protocol | ErrorClass::Timeout
            ) && k != ErrorKind::TransportProxyAuth
                || k == ErrorKind::TlsAlert;
            assert_eq!(k.is_retryable(), by_class, "{}", k.name());
        }
    }

    /// Rewrites the marked region of a file when `DPS_BLESS` is set, else fails naming the
    /// first code whose text differs and prints the region to paste.
    fn check_fresh(file: &str, begin: &str, end: &str, generated: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text
            .find(begin)
            .unwrap_or_else(|| panic!("{file} has no {begin:?}"));
        let start = start + text[start..].find('\n').unwrap() + 1;
        let stop = start
            + text[start..]
                .find(end)
                .unwrap_or_else(|| panic!("{file} has no {end:?}"));
        let stop = text[..stop].rfind('\n').map_or(stop, |n| n + 1);
        let committed = &text[start..stop];
        if committed == generated {
            return;
        }
        if std::env::var_os("DPS_BLESS").is_some() {
            let fresh = format!("{}{generated}{}", &text[..start], &text[stop..]);
            std::fs::write(&path, fresh).unwrap();
            return;
        }
        let first = generated
            .lines()
            .zip(committed.lines().chain(core::iter::repeat("")))
            .position(|(g, c)| g != c)
            .unwrap_or(generated.lines().count());
        // A row's name follows its doc lines in the enum and sits inside its line in README.
        let row = generated
            .lines()
            .skip(first)
            .flat_map(|l| l.split(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
            .find(|w| w.starts_with("DPS_ERR_"))
            .unwrap_or("the end");
        panic!(
            "{file} is stale from {row} on (line {} of its generated region); rerun with \
             DPS_BLESS=1 or paste this between the markers:\n{generated}",
            first + 1
        );
    }

    /// `text` as `///` lines of at most 100 columns at `indent`.
    fn doc_lines(out: &mut String, indent: &str, text: &str) {
        let mut line = String::new();
        for word in text.split_whitespace() {
            if !line.is_empty() && indent.len() + 4 + line.len() + 1 + word.len() > 100 {
                out.push_str(&format!("{indent}/// {line}\n"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(&format!("{indent}/// {line}\n"));
    }

    #[test]
    fn results_c_enum_is_the_table() {
        let mut generated = String::new();
        let mut class = None;
        for &k in ErrorKind::ALL {
            assert_eq!(
                dps_result::from(k) as u32,
                k.value(),
                "{}: the written-out dps_result value differs from the table's",
                k.name()
            );
            if class.is_some_and(|c| c != k.class()) {
                generated.push('\n');
            }
            class = Some(k.class());
            doc_lines(&mut generated, "    ", k.doc());
            generated.push_str("    ///\n");
            doc_lines(
                &mut generated,
                "    ",
                &format!("What to do: {}.", k.hint()),
            );
            generated.push_str(&format!("    {} = {},\n", k.name(), k.value()));
        }
        check_fresh(
            "src/ffi/result.rs",
            "// results:begin",
            "// results:end",
            &generated,
        );
    }

    /// README's wording of an action.
    fn action_text(action: Action) -> &'static str {
        match action {
            Action::Retry => "retry",
            Action::Reprovision => "re-provision",
            Action::FixConfig => "fix the configuration",
            Action::FixEnrollment => "fix the enrollment",
            Action::FixTransport => "fix the transport",
            Action::FixCode => "fix the calling code",
            Action::Report => "report a bug",
        }
    }

    #[test]
    fn results_readme_table_is_the_table() {
        let mut generated = String::from(
            "| code | name | meaning | likely cause | what to do | exit |\n\
             |---|---|---|---|---|---|\n\
             | 0 | `DPS_OK` | Success. | | | 0 |\n\
             | 1 | `DPS_PENDING` | Work is in progress (`dps_client_do_work`). | | call again within the returned delay | |\n",
        );
        for &k in ErrorKind::ALL {
            for text in [k.doc(), k.cause(), k.hint()] {
                assert!(!text.contains('|'), "{}: no `|` in a table cell", k.name());
            }
            // The CLIs' exit code is the class's value (2 invalid ... 9 internal).
            let exit = dps_class::from(k.class()) as u32;
            generated.push_str(&format!(
                "| {} | `{}` | {} | {} | **{}**: {} | {exit} |\n",
                k.value(),
                k.name(),
                k.doc(),
                k.cause(),
                action_text(k.action()),
                k.hint()
            ));
        }
        check_fresh(
            "README.md",
            "<!-- results:begin",
            "<!-- results:end",
            &generated,
        );
    }
}
