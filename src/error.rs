//! Result codes shared by every layer and by the C ABI.
//!
//! The Rust type carries the exact C names so that a code reads the same in Rust, in C, in the
//! CLI's JSON and in Python. Values are grouped by class in blocks of 100: the block is part of
//! the ABI and never changes meaning; new codes are appended inside their block.

#![allow(non_camel_case_types)]

use crate::prelude::*;
use core::ffi::CStr;
use core::fmt;

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

    /// An argument is out of range or malformed.
    DPS_ERR_INVALID_ARGUMENT = 100,
    /// A required pointer argument was NULL.
    DPS_ERR_INVALID_NULL_POINTER = 101,
    /// A string argument is not valid UTF-8.
    DPS_ERR_INVALID_UTF8 = 102,
    /// The registration id breaks the service's rules (1–128 of `a-z A-Z 0-9 - . _ :`, last
    /// character alphanumeric or `-`).
    DPS_ERR_INVALID_REGISTRATION_ID = 103,
    /// A key is not valid base64, or is empty.
    DPS_ERR_INVALID_KEY = 104,
    /// The custom payload is not a JSON value.
    DPS_ERR_INVALID_PAYLOAD = 105,
    /// The configuration is incomplete or contradictory (no id scope, no credential, ...).
    DPS_ERR_INVALID_CONFIG = 106,
    /// The call is not allowed in the handle's current state (wrong order, re-entrant call
    /// from a callback).
    DPS_ERR_INVALID_STATE = 107,
    /// A certificate or trust-anchor PEM/DER could not be parsed.
    DPS_ERR_INVALID_CERTIFICATE = 108,
    /// The id scope is empty or contains characters the service never issues.
    DPS_ERR_INVALID_ID_SCOPE = 109,
    /// The registration id does not match the client certificate's subject CN (X.509
    /// attestation requires them to be equal), or the certificate has no usable CN.
    DPS_ERR_INVALID_CERTIFICATE_CN = 110,
    /// The private key could not be read: not PEM or DER, or not an unencrypted PKCS#8,
    /// PKCS#1 (RSA) or SEC1 (EC) key of a supported algorithm.
    DPS_ERR_INVALID_PRIVATE_KEY = 111,
    /// The private key does not belong to the client certificate (the leaf's public key).
    DPS_ERR_INVALID_CERTIFICATE_KEY_MISMATCH = 112,
    /// The call needs a feature this build of the library leaves out: TLS settings in a build
    /// without the `tls` feature (CMake `DPS_MQTT_TLS=OFF`), where TLS is always the
    /// transport's job.
    DPS_ERR_INVALID_UNSUPPORTED = 130,
    // External signing, certificate issuance, stored assignments (115-119).
    /// The output buffer is NULL or too small; the size needed was reported.
    DPS_ERR_INVALID_BUFFER_TOO_SMALL = 115,
    /// A stored assignment blob is truncated, corrupt or of an unknown format version.
    DPS_ERR_INVALID_ASSIGNMENT = 116,
    /// The certificate signing request is not one DER (or PEM) PKCS#10 structure.
    DPS_ERR_INVALID_CSR = 117,
    /// The model id is not a DTMI (e.g. `dtmi:com:example:Thermostat;1`).
    DPS_ERR_INVALID_MODEL_ID = 113,

    /// The server refused the MQTT CONNECT as not authorized (CONNACK 5).
    DPS_ERR_AUTH_NOT_AUTHORIZED = 200,
    /// The server refused the user name or password as malformed (CONNACK 4).
    DPS_ERR_AUTH_BAD_CREDENTIALS = 201,
    /// The server does not know the id scope (CONNACK 3).
    DPS_ERR_AUTH_UNKNOWN_ID_SCOPE = 202,
    /// The service answered a request with 401 (wrong key, expired token, unknown
    /// registration id, certificate not matching the enrollment).
    DPS_ERR_AUTH_UNAUTHORIZED = 203,
    /// The server refused the client identifier (CONNACK 2).
    DPS_ERR_AUTH_IDENTIFIER_REJECTED = 204,
    /// The external signing callback reported a failure (HSM, TPM or secure element).
    DPS_ERR_AUTH_SIGNING_FAILED = 205,

    /// The TLS handshake failed for a reason not covered below.
    DPS_ERR_TLS_HANDSHAKE = 300,
    /// The server's certificate does not chain to a trusted anchor.
    DPS_ERR_TLS_CERT_UNTRUSTED = 301,
    /// The server's certificate is expired or not yet valid (by the clock hook).
    DPS_ERR_TLS_CERT_EXPIRED = 302,
    /// The server's certificate is not valid for the host name.
    DPS_ERR_TLS_CERT_NAME_MISMATCH = 303,
    /// No TLS protocol version or cipher suite in common with the server.
    DPS_ERR_TLS_PROTOCOL_VERSION = 304,
    /// The server sent a fatal TLS alert, or sent bytes that are not TLS.
    DPS_ERR_TLS_ALERT = 305,

    /// The transport's connect hook failed (refused, unreachable, name not resolved).
    DPS_ERR_TRANSPORT_CONNECT = 400,
    /// The peer closed the connection and no retry was possible.
    DPS_ERR_TRANSPORT_CLOSED = 401,
    /// The transport's send or receive hook reported an error.
    DPS_ERR_TRANSPORT_IO = 402,
    /// The HTTP proxy refused or failed the CONNECT tunnel (its status is in the detail), or
    /// did not answer like an HTTP proxy.
    DPS_ERR_TRANSPORT_PROXY = 403,
    /// The HTTP proxy wants credentials, or refused the ones given (407, or 401 as tinyproxy
    /// answers). Not retryable: fix the proxy user name or password.
    DPS_ERR_TRANSPORT_PROXY_AUTH = 404,

    /// The server sent bytes that are not valid MQTT 3.1.1.
    DPS_ERR_PROTOCOL_MALFORMED = 500,
    /// The server sent a packet larger than the configured maximum.
    DPS_ERR_PROTOCOL_PACKET_TOO_LARGE = 501,
    /// The server sent a packet that is not allowed at this point.
    DPS_ERR_PROTOCOL_UNEXPECTED_PACKET = 502,
    /// A response topic or body could not be understood.
    DPS_ERR_PROTOCOL_BAD_RESPONSE = 503,
    /// The service answered with a status this client does not handle (e.g. 302, 999).
    DPS_ERR_PROTOCOL_UNEXPECTED_STATUS = 504,
    /// CONNACK with a return code that MQTT 3.1.1 does not define, or code 1 (protocol
    /// version refused).
    DPS_ERR_PROTOCOL_CONNACK = 505,
    /// The subscription to the response topic was refused.
    DPS_ERR_PROTOCOL_SUBSCRIBE_REFUSED = 506,
    /// The server refused or botched the WebSocket upgrade (not 101, wrong
    /// Sec-WebSocket-Accept, no `mqtt` subprotocol).
    DPS_ERR_PROTOCOL_WEBSOCKET_HANDSHAKE = 507,
    /// The server broke the WebSocket framing rules (masked or text frames, bad opcode or
    /// fragmentation).
    DPS_ERR_PROTOCOL_WEBSOCKET = 508,

    /// The overall deadline passed.
    DPS_ERR_TIMEOUT = 600,
    /// The overall deadline passed while the service kept throttling (429) or failing (5xx).
    DPS_ERR_TIMEOUT_THROTTLED = 601,
    /// The overall deadline passed while the service was still assigning.
    DPS_ERR_TIMEOUT_ASSIGNING = 602,

    /// The service finished the registration with status `failed`.
    DPS_ERR_REGISTRATION_FAILED = 700,
    /// The enrollment is disabled.
    DPS_ERR_REGISTRATION_DISABLED = 701,
    /// The service rejected the request (a 4xx other than 401 and 429, e.g. 400 or 404).
    DPS_ERR_REGISTRATION_REJECTED = 702,

    /// A Rust panic was caught at the C boundary. The handle should be freed.
    DPS_ERR_PANIC = 900,
    /// An internal invariant failed; please report it.
    DPS_ERR_INTERNAL = 901,
    /// The allocator installed with `dps_set_allocator` returned NULL during the call. The
    /// attempt was ended and its memory released; the handle can be used again (a larger
    /// heap, or the same one after freeing other memory).
    DPS_ERR_OUT_OF_MEMORY = 902,
    /// The entropy source failed: the callback set with `dps_config_set_entropy` returned
    /// non-zero, or the operating system gave no random bytes.
    DPS_ERR_ENTROPY_FAILED = 903,
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

use dps_result::*;

// The one table of codes and their messages: `ALL_RESULTS`, `name`, `message` and the C
// strings of `dps_result_name`/`dps_result_str` all come from it, and the generated matches
// are exhaustive, so a new variant without an entry does not compile. (The enum itself stays
// written out above, because cbindgen reads the source and cannot see into macros.)
macro_rules! result_table {
    ($($code:ident => $message:literal,)*) => {
        /// Every code, for lookups by value and for exhaustive tests.
        pub const ALL_RESULTS: &[dps_result] = &[$($code),*];

        impl dps_result {
            /// The code's C name, NUL-terminated.
            fn name_nul(self) -> &'static str {
                match self {
                    $($code => concat!(stringify!($code), "\0"),)*
                }
            }

            /// The code's message, NUL-terminated.
            fn message_nul(self) -> &'static str {
                match self {
                    $($code => concat!($message, "\0"),)*
                }
            }
        }
    };
}

result_table! {
    DPS_OK => "success",
    DPS_PENDING => "in progress; call again",
    DPS_ERR_INVALID_ARGUMENT => "invalid argument",
    DPS_ERR_INVALID_NULL_POINTER => "a required pointer argument was NULL",
    DPS_ERR_INVALID_UTF8 => "a string argument is not valid UTF-8",
    DPS_ERR_INVALID_REGISTRATION_ID => "invalid registration id (1-128 of a-z A-Z 0-9 - . _ :, ending alphanumeric or -)",
    DPS_ERR_INVALID_KEY => "the key is empty or not valid base64",
    DPS_ERR_INVALID_PAYLOAD => "the custom payload is not valid JSON",
    DPS_ERR_INVALID_CONFIG => "the configuration is incomplete or contradictory",
    DPS_ERR_INVALID_STATE => "call not allowed in the handle's current state",
    DPS_ERR_INVALID_CERTIFICATE => "a certificate or trust anchor could not be parsed",
    DPS_ERR_INVALID_ID_SCOPE => "invalid id scope",
    DPS_ERR_INVALID_CERTIFICATE_CN => "the registration id does not match the client certificate's subject CN",
    DPS_ERR_INVALID_PRIVATE_KEY => "the private key is not an unencrypted PKCS#8, PKCS#1 or SEC1 key (PEM or DER)",
    DPS_ERR_INVALID_CERTIFICATE_KEY_MISMATCH => "the private key does not belong to the client certificate",
    DPS_ERR_INVALID_UNSUPPORTED => "not supported by this build of the library (built without TLS: the transport does TLS)",
    DPS_ERR_INVALID_BUFFER_TOO_SMALL => "the output buffer is missing or too small",
    DPS_ERR_INVALID_ASSIGNMENT => "the stored assignment is truncated, corrupt or of an unknown version",
    DPS_ERR_INVALID_CSR => "the certificate signing request is not DER or PEM PKCS#10",
    DPS_ERR_INVALID_MODEL_ID => "the model id is not a DTMI (dtmi:com:example:Model;1)",
    DPS_ERR_AUTH_NOT_AUTHORIZED => "the server refused the connection: not authorized",
    DPS_ERR_AUTH_BAD_CREDENTIALS => "the server refused the connection: malformed user name or password",
    DPS_ERR_AUTH_UNKNOWN_ID_SCOPE => "the server refused the connection: unknown id scope",
    DPS_ERR_AUTH_UNAUTHORIZED => "the service answered 401 unauthorized (wrong key, expired token or unknown device)",
    DPS_ERR_AUTH_IDENTIFIER_REJECTED => "the server refused the connection: client identifier rejected",
    DPS_ERR_AUTH_SIGNING_FAILED => "the external signing callback failed",
    DPS_ERR_TLS_HANDSHAKE => "TLS handshake failed",
    DPS_ERR_TLS_CERT_UNTRUSTED => "the server's certificate is not trusted",
    DPS_ERR_TLS_CERT_EXPIRED => "the server's certificate is expired or not yet valid",
    DPS_ERR_TLS_CERT_NAME_MISMATCH => "the server's certificate does not match the host",
    DPS_ERR_TLS_PROTOCOL_VERSION => "no TLS version or cipher suite in common",
    DPS_ERR_TLS_ALERT => "the server sent a fatal TLS alert or non-TLS bytes",
    DPS_ERR_TRANSPORT_CONNECT => "could not connect to the server",
    DPS_ERR_TRANSPORT_CLOSED => "the connection was closed",
    DPS_ERR_TRANSPORT_IO => "the transport reported an I/O error",
    DPS_ERR_TRANSPORT_PROXY => "the HTTP proxy refused or failed the CONNECT tunnel",
    DPS_ERR_TRANSPORT_PROXY_AUTH => "the HTTP proxy requires authentication or refused the credentials",
    DPS_ERR_PROTOCOL_MALFORMED => "the server sent malformed MQTT",
    DPS_ERR_PROTOCOL_PACKET_TOO_LARGE => "the server sent a packet over the size limit",
    DPS_ERR_PROTOCOL_UNEXPECTED_PACKET => "the server sent an unexpected MQTT packet",
    DPS_ERR_PROTOCOL_BAD_RESPONSE => "the service's response could not be understood",
    DPS_ERR_PROTOCOL_UNEXPECTED_STATUS => "the service answered with an unexpected status",
    DPS_ERR_PROTOCOL_CONNACK => "the server refused the connection with an unknown code",
    DPS_ERR_PROTOCOL_SUBSCRIBE_REFUSED => "the server refused the subscription",
    DPS_ERR_PROTOCOL_WEBSOCKET_HANDSHAKE => "the server refused the WebSocket upgrade",
    DPS_ERR_PROTOCOL_WEBSOCKET => "the server broke the WebSocket framing rules",
    DPS_ERR_TIMEOUT => "the deadline passed",
    DPS_ERR_TIMEOUT_THROTTLED => "the deadline passed while the service was throttling",
    DPS_ERR_TIMEOUT_ASSIGNING => "the deadline passed while the service was assigning",
    DPS_ERR_REGISTRATION_FAILED => "the service reported the registration as failed",
    DPS_ERR_REGISTRATION_DISABLED => "the enrollment is disabled",
    DPS_ERR_REGISTRATION_REJECTED => "the service rejected the request",
    DPS_ERR_PANIC => "internal panic caught at the API boundary",
    DPS_ERR_INTERNAL => "internal error",
    DPS_ERR_ENTROPY_FAILED => "the entropy source failed (dps_config_set_entropy callback or the OS)",
    DPS_ERR_OUT_OF_MEMORY => "out of memory: the allocator (dps_set_allocator) returned NULL; the attempt was ended and its memory released",
}

impl dps_result {
    /// Maps an integer that came from C to a code; unknown values give `None` (never UB).
    pub fn from_u32(value: u32) -> Option<dps_result> {
        ALL_RESULTS.iter().copied().find(|r| *r as u32 == value)
    }

    /// The code's C name, e.g. `"DPS_ERR_AUTH_UNAUTHORIZED"`.
    pub fn name(self) -> &'static str {
        without_nul(self.name_nul())
    }

    /// A short human-readable description.
    pub fn message(self) -> &'static str {
        without_nul(self.message_nul())
    }

    /// The name as a C string with a static lifetime.
    pub fn name_c(self) -> &'static CStr {
        static_cstr(self.name_nul())
    }

    /// The message as a C string with a static lifetime.
    pub fn message_c(self) -> &'static CStr {
        static_cstr(self.message_nul())
    }

    /// The class this code belongs to.
    pub fn class(self) -> dps_class {
        use dps_class::*;
        match self as u32 {
            0 => DPS_CLASS_OK,
            1 => DPS_CLASS_PENDING,
            100..=199 => DPS_CLASS_INVALID,
            200..=299 => DPS_CLASS_AUTH,
            300..=399 => DPS_CLASS_TLS,
            400..=499 => DPS_CLASS_TRANSPORT,
            500..=599 => DPS_CLASS_PROTOCOL,
            600..=699 => DPS_CLASS_TIMEOUT,
            700..=799 => DPS_CLASS_REGISTRATION,
            _ => DPS_CLASS_INTERNAL,
        }
    }

    /// Whether a new attempt on the same handle may succeed without changing the
    /// configuration (transport, TLS alerts, protocol hiccups, timeouts).
    pub fn is_retryable(self) -> bool {
        use dps_class::*;
        matches!(
            self.class(),
            DPS_CLASS_TRANSPORT | DPS_CLASS_PROTOCOL | DPS_CLASS_TIMEOUT
        ) && self != DPS_ERR_TRANSPORT_PROXY_AUTH
            || self == DPS_ERR_TLS_ALERT
    }
}

fn without_nul(s: &'static str) -> &'static str {
    s.strip_suffix('\0').unwrap_or(s)
}

/// The table's strings end in their only NUL (the names and messages are plain text).
fn static_cstr(s: &'static str) -> &'static CStr {
    CStr::from_bytes_with_nul(s.as_bytes()).unwrap_or(c"")
}

impl fmt::Display for dps_result {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.message())
    }
}

/// An error inside the library: a code plus a detail message for logs and getters.
/// The detail never contains a key or a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: dps_result,
    pub detail: String,
}

impl Error {
    pub fn new(code: dps_result, detail: impl Into<String>) -> Self {
        Error {
            code,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.code.message())
        } else {
            write!(f, "{}: {}", self.code.message(), self.detail)
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_variants_and_classes_match_prefixes() {
        for r in ALL_RESULTS {
            let name = r.name();
            assert_eq!(format!("{r:?}"), name);
            let prefix = match r.class() {
                dps_class::DPS_CLASS_OK => "DPS_OK",
                dps_class::DPS_CLASS_PENDING => "DPS_PENDING",
                dps_class::DPS_CLASS_INVALID => "DPS_ERR_INVALID",
                dps_class::DPS_CLASS_AUTH => "DPS_ERR_AUTH",
                dps_class::DPS_CLASS_TLS => "DPS_ERR_TLS",
                dps_class::DPS_CLASS_TRANSPORT => "DPS_ERR_TRANSPORT",
                dps_class::DPS_CLASS_PROTOCOL => "DPS_ERR_PROTOCOL",
                dps_class::DPS_CLASS_TIMEOUT => "DPS_ERR_TIMEOUT",
                dps_class::DPS_CLASS_REGISTRATION => "DPS_ERR_REGISTRATION",
                dps_class::DPS_CLASS_INTERNAL => "DPS_ERR_",
            };
            assert!(name.starts_with(prefix), "{name} not in class {prefix}");
            assert_eq!(dps_result::from_u32(*r as u32), Some(*r));
        }
    }

    #[test]
    fn unknown_values_map_to_none() {
        for v in [2u32, 99, 119, 299, 1000, u32::MAX] {
            assert_eq!(dps_result::from_u32(v), None, "{v}");
        }
    }
}
