//! Error kinds shared by every layer, and the one table of result codes.
//!
//! Inside the library an error is an `ErrorKind` (grouped into an `ErrorClass`) plus a detail.
//! The C names and values (`dps_result`, `dps_class`) exist only at the ABI edge, in
//! `ffi::result`, which maps to them from the same table: `for_each_result!` hands the table
//! to a macro, so the kinds, their names, messages and classes, and the C mapping cannot drift
//! apart, and every generated match is exhaustive.

use crate::prelude::*;
use core::fmt;

/// The one table of result codes: per class, each kind with its C name and message. Invoke as
/// `for_each_result!(callback)`; `callback!` receives
/// `$( $class { $( $kind = $c_name => $message, )* } )*`.
///
/// The C values live in `ffi::result::dps_result`, written out for cbindgen, and the C mapping
/// there matches every kind by this C name, so a kind without a C value does not compile.
/// `DPS_OK` and `DPS_PENDING` are no errors and exist only in C.
macro_rules! for_each_result {
    ($callback:ident) => {
        $callback! {
            Invalid {
                InvalidArgument = DPS_ERR_INVALID_ARGUMENT => "invalid argument",
                InvalidNullPointer = DPS_ERR_INVALID_NULL_POINTER => "a required pointer argument was NULL",
                InvalidUtf8 = DPS_ERR_INVALID_UTF8 => "a string argument is not valid UTF-8",
                InvalidRegistrationId = DPS_ERR_INVALID_REGISTRATION_ID => "invalid registration id (1-128 of a-z A-Z 0-9 - . _ :, ending alphanumeric or -)",
                InvalidKey = DPS_ERR_INVALID_KEY => "the key is empty or not valid base64",
                InvalidPayload = DPS_ERR_INVALID_PAYLOAD => "the custom payload is not valid JSON",
                InvalidConfig = DPS_ERR_INVALID_CONFIG => "the configuration is incomplete or contradictory",
                InvalidState = DPS_ERR_INVALID_STATE => "call not allowed in the handle's current state",
                InvalidCertificate = DPS_ERR_INVALID_CERTIFICATE => "a certificate or trust anchor could not be parsed",
                InvalidIdScope = DPS_ERR_INVALID_ID_SCOPE => "invalid id scope",
                InvalidCertificateCn = DPS_ERR_INVALID_CERTIFICATE_CN => "the registration id does not match the client certificate's subject CN",
                InvalidPrivateKey = DPS_ERR_INVALID_PRIVATE_KEY => "the private key is not an unencrypted PKCS#8, PKCS#1 or SEC1 key (PEM or DER)",
                InvalidCertificateKeyMismatch = DPS_ERR_INVALID_CERTIFICATE_KEY_MISMATCH => "the private key does not belong to the client certificate",
                InvalidUnsupported = DPS_ERR_INVALID_UNSUPPORTED => "not supported by this build of the library (built without TLS: the transport does TLS)",
                InvalidBufferTooSmall = DPS_ERR_INVALID_BUFFER_TOO_SMALL => "the output buffer is missing or too small",
                InvalidAssignment = DPS_ERR_INVALID_ASSIGNMENT => "the stored assignment is truncated, corrupt or of an unknown version",
                InvalidCsr = DPS_ERR_INVALID_CSR => "the certificate signing request is not DER or PEM PKCS#10",
                InvalidModelId = DPS_ERR_INVALID_MODEL_ID => "the model id is not a DTMI (dtmi:com:example:Model;1)",
            }
            Auth {
                AuthNotAuthorized = DPS_ERR_AUTH_NOT_AUTHORIZED => "the server refused the connection: not authorized",
                AuthBadCredentials = DPS_ERR_AUTH_BAD_CREDENTIALS => "the server refused the connection: malformed user name or password",
                AuthUnknownIdScope = DPS_ERR_AUTH_UNKNOWN_ID_SCOPE => "the server refused the connection: unknown id scope",
                AuthUnauthorized = DPS_ERR_AUTH_UNAUTHORIZED => "the service answered 401 unauthorized (wrong key, expired token or unknown device)",
                AuthIdentifierRejected = DPS_ERR_AUTH_IDENTIFIER_REJECTED => "the server refused the connection: client identifier rejected",
                AuthSigningFailed = DPS_ERR_AUTH_SIGNING_FAILED => "the external signing callback failed",
            }
            Tls {
                TlsHandshake = DPS_ERR_TLS_HANDSHAKE => "TLS handshake failed",
                TlsCertUntrusted = DPS_ERR_TLS_CERT_UNTRUSTED => "the server's certificate is not trusted",
                TlsCertExpired = DPS_ERR_TLS_CERT_EXPIRED => "the server's certificate is expired or not yet valid",
                TlsCertNameMismatch = DPS_ERR_TLS_CERT_NAME_MISMATCH => "the server's certificate does not match the host",
                TlsProtocolVersion = DPS_ERR_TLS_PROTOCOL_VERSION => "no TLS version or cipher suite in common",
                TlsAlert = DPS_ERR_TLS_ALERT => "the server sent a fatal TLS alert or non-TLS bytes",
            }
            Transport {
                TransportConnect = DPS_ERR_TRANSPORT_CONNECT => "could not connect to the server",
                TransportClosed = DPS_ERR_TRANSPORT_CLOSED => "the connection was closed",
                TransportIo = DPS_ERR_TRANSPORT_IO => "the transport reported an I/O error",
                TransportProxy = DPS_ERR_TRANSPORT_PROXY => "the HTTP proxy refused or failed the CONNECT tunnel",
                TransportProxyAuth = DPS_ERR_TRANSPORT_PROXY_AUTH => "the HTTP proxy requires authentication or refused the credentials",
            }
            Protocol {
                ProtocolMalformed = DPS_ERR_PROTOCOL_MALFORMED => "the server sent malformed MQTT",
                ProtocolPacketTooLarge = DPS_ERR_PROTOCOL_PACKET_TOO_LARGE => "the server sent a packet over the size limit",
                ProtocolUnexpectedPacket = DPS_ERR_PROTOCOL_UNEXPECTED_PACKET => "the server sent an unexpected MQTT packet",
                ProtocolBadResponse = DPS_ERR_PROTOCOL_BAD_RESPONSE => "the service's response could not be understood",
                ProtocolUnexpectedStatus = DPS_ERR_PROTOCOL_UNEXPECTED_STATUS => "the service answered with an unexpected status",
                ProtocolConnack = DPS_ERR_PROTOCOL_CONNACK => "the server refused the connection with an unknown code",
                ProtocolSubscribeRefused = DPS_ERR_PROTOCOL_SUBSCRIBE_REFUSED => "the server refused the subscription",
                ProtocolWebsocketHandshake = DPS_ERR_PROTOCOL_WEBSOCKET_HANDSHAKE => "the server refused the WebSocket upgrade",
                ProtocolWebsocket = DPS_ERR_PROTOCOL_WEBSOCKET => "the server broke the WebSocket framing rules",
            }
            Timeout {
                Timeout = DPS_ERR_TIMEOUT => "the deadline passed",
                TimeoutThrottled = DPS_ERR_TIMEOUT_THROTTLED => "the deadline passed while the service was throttling",
                TimeoutAssigning = DPS_ERR_TIMEOUT_ASSIGNING => "the deadline passed while the service was assigning",
            }
            Registration {
                RegistrationFailed = DPS_ERR_REGISTRATION_FAILED => "the service reported the registration as failed",
                RegistrationDisabled = DPS_ERR_REGISTRATION_DISABLED => "the enrollment is disabled",
                RegistrationRejected = DPS_ERR_REGISTRATION_REJECTED => "the service rejected the request",
            }
            Internal {
                Panic = DPS_ERR_PANIC => "internal panic caught at the API boundary",
                Internal = DPS_ERR_INTERNAL => "internal error",
                EntropyFailed = DPS_ERR_ENTROPY_FAILED => "the entropy source failed (dps_config_set_entropy callback or the OS)",
                OutOfMemory = DPS_ERR_OUT_OF_MEMORY => "out of memory: the allocator (dps_set_allocator) returned NULL; the attempt was ended and its memory released",
            }
        }
    };
}
pub(crate) use for_each_result;

/// What a caller (or the CLI's exit code) acts on: the class of an `ErrorKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// An argument, setting or stored value is invalid.
    Invalid,
    /// The server or service refused the device's credentials.
    Auth,
    /// TLS failed.
    Tls,
    /// The connection failed.
    Transport,
    /// The server broke MQTT, WebSocket or the service's protocol.
    Protocol,
    /// The overall deadline passed.
    Timeout,
    /// The service refused or failed the registration.
    Registration,
    /// A panic, an internal error, memory or entropy ran out.
    Internal,
}

macro_rules! error_kinds {
    ($($class:ident { $($kind:ident = $c_name:ident => $message:literal,)* })*) => {
        /// Why an operation failed.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(
                #[doc = $message]
                $kind,
            )*)*
        }

        impl ErrorKind {
            /// Every kind, for lookups and exhaustive tests.
            pub const ALL: &'static [ErrorKind] = &[$($(ErrorKind::$kind,)*)*];

            /// The kind's C name, e.g. `"DPS_ERR_AUTH_UNAUTHORIZED"`: logs, the CLI's JSON and
            /// `dps_result_name` read the same.
            pub fn name(self) -> &'static str {
                without_nul(self.name_nul())
            }

            /// A short human-readable description.
            pub fn message(self) -> &'static str {
                without_nul(self.message_nul())
            }

            /// The name with a NUL after it. The strings are kept once, NUL-terminated, so
            /// the C ABI's static C strings and the Rust ones share their bytes (flash).
            pub fn name_nul(self) -> &'static str {
                match self {
                    $($(ErrorKind::$kind => concat!(stringify!($c_name), "\0"),)*)*
                }
            }

            /// The message with a NUL after it.
            pub fn message_nul(self) -> &'static str {
                match self {
                    $($(ErrorKind::$kind => concat!($message, "\0"),)*)*
                }
            }

            /// The class this kind belongs to.
            pub fn class(self) -> ErrorClass {
                match self {
                    $($(ErrorKind::$kind => ErrorClass::$class,)*)*
                }
            }
        }
    };
}

for_each_result!(error_kinds);

fn without_nul(s: &'static str) -> &'static str {
    s.strip_suffix('\0').unwrap_or(s)
}

impl ErrorKind {
    /// Whether a new attempt on the same handle may succeed without changing the
    /// configuration (transport, TLS alerts, protocol hiccups, timeouts).
    pub fn is_retryable(self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Transport | ErrorClass::Protocol | ErrorClass::Timeout
        ) && self != ErrorKind::TransportProxyAuth
            || self == ErrorKind::TlsAlert
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.message())
    }
}

/// An error inside the library: a kind plus a detail message for logs and getters.
/// The detail never contains a key or a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub detail: String,
}

impl Error {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Error {
            kind,
            detail: detail.into(),
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind, "")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.kind.message())
        } else {
            write!(f, "{}: {}", self.kind.message(), self.detail)
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
    fn names_follow_kinds_and_classes_match_prefixes() {
        for &k in ErrorKind::ALL {
            let name = k.name();
            let words: String = name
                .trim_start_matches("DPS_ERR_")
                .split('_')
                .map(|w| w[..1].to_string() + &w[1..].to_lowercase())
                .collect();
            assert_eq!(format!("{k:?}"), words, "{name}");
            let prefix = match k.class() {
                ErrorClass::Invalid => "DPS_ERR_INVALID",
                ErrorClass::Auth => "DPS_ERR_AUTH",
                ErrorClass::Tls => "DPS_ERR_TLS",
                ErrorClass::Transport => "DPS_ERR_TRANSPORT",
                ErrorClass::Protocol => "DPS_ERR_PROTOCOL",
                ErrorClass::Timeout => "DPS_ERR_TIMEOUT",
                ErrorClass::Registration => "DPS_ERR_REGISTRATION",
                ErrorClass::Internal => "DPS_ERR_",
            };
            assert!(name.starts_with(prefix), "{name} not in class {prefix}");
            assert!(!k.message().is_empty() && !k.message().contains('\0'));
        }
    }
}
