//! Error kinds shared by every layer, and the one table of result codes.
//!
//! Inside the library an error is an `ErrorKind` (grouped into an `ErrorClass`) plus a detail.
//! The C names and values (`dps_result`, `dps_class`) exist only at the ABI edge, in
//! `ffi::result`, which maps to them from the same table: `for_each_result!` hands the table
//! to a macro, so the kinds, their names, values, messages, hints and classes, and the C
//! mapping cannot drift apart, and every generated match is exhaustive.

use crate::prelude::*;
use core::fmt;

/// The one table of result codes: per class, each kind with its C name, C value, message
/// (`dps_result_str`) and, in braces, its documentation (the header's doc comment), its likely
/// cause (README), what firmware should do about it (`Action`) and a one-line hint
/// (`dps_result_hint`). Invoke as `for_each_result!(callback)`; `callback!` receives
/// `$( $class { $( $kind = $c_name = $value => $message
/// { doc: $doc, cause: $cause, action: $action, hint: $hint } )* } )*`.
///
/// cbindgen cannot expand macros, so `ffi::result::dps_result` is written out; a test there
/// checks it (values and doc comments) and README's result table against this table, and
/// rewrites both with `DPS_BLESS=1`. The C mapping matches every kind by its C name, so a kind
/// without a C value does not compile. `DPS_OK` and `DPS_PENDING` are no errors and exist only
/// in C. The message and the hint go into firmware flash: keep them to one short line.
macro_rules! for_each_result {
    ($callback:ident) => {
        $callback! {
            Invalid {
                InvalidArgument = DPS_ERR_INVALID_ARGUMENT = 100 => "invalid argument" {
                    doc: "An argument is out of range or malformed.",
                    cause: "A number out of its range (port 0, timeout 0, SAS lifetime) or a string with a NUL inside.",
                    action: FixConfig,
                    hint: "fix the argument the detail names; nothing was sent",
                }
                InvalidNullPointer = DPS_ERR_INVALID_NULL_POINTER = 101 => "a required pointer argument was NULL" {
                    doc: "A required pointer argument was NULL.",
                    cause: "A handle, string or out-parameter passed as NULL.",
                    action: FixCode,
                    hint: "pass a valid pointer; the function's doc says which may be NULL",
                }
                InvalidUtf8 = DPS_ERR_INVALID_UTF8 = 102 => "a string argument is not valid UTF-8" {
                    doc: "A string argument is not valid UTF-8.",
                    cause: "Text in another encoding (Latin-1, UTF-16) or a buffer that is not a string.",
                    action: FixCode,
                    hint: "pass NUL-terminated UTF-8 text",
                }
                InvalidRegistrationId = DPS_ERR_INVALID_REGISTRATION_ID = 103 => "invalid registration id (1-128 of a-z A-Z 0-9 - . _ :, ending alphanumeric or -)" {
                    doc: "The registration id breaks the service's rules (1–128 of `a-z A-Z 0-9 - . _ :`, last character alphanumeric or `-`).",
                    cause: "A typo, a space, or a character the service does not allow.",
                    action: FixConfig,
                    hint: "use the registration id exactly as enrolled in DPS",
                }
                InvalidKey = DPS_ERR_INVALID_KEY = 104 => "the key is empty or not valid base64" {
                    doc: "A key is not valid base64, or is empty.",
                    cause: "A key cut short, quoted, or copied with spaces or line breaks.",
                    action: FixConfig,
                    hint: "copy the enrollment's base64 key exactly, without quotes or spaces",
                }
                InvalidPayload = DPS_ERR_INVALID_PAYLOAD = 105 => "the custom payload was refused (not JSON, too large or too deep)" {
                    doc: "The custom payload is not one JSON value, is over 96 KiB, or nests over 64 levels.",
                    cause: "Unbalanced braces, single quotes or trailing text; a payload over 96 KiB or 64 levels deep.",
                    action: FixConfig,
                    hint: "pass one JSON value of at most 96 KiB and 64 levels",
                }
                InvalidConfig = DPS_ERR_INVALID_CONFIG = 106 => "the configuration is incomplete or contradictory" {
                    doc: "The configuration is incomplete or contradictory (no id scope, no credential, ...).",
                    cause: "No id scope or no credential set, or two settings that exclude each other.",
                    action: FixConfig,
                    hint: "set an id scope and exactly one credential; the detail names what is wrong",
                }
                InvalidState = DPS_ERR_INVALID_STATE = 107 => "call not allowed in the handle's current state" {
                    doc: "The call is not allowed in the handle's current state (wrong order, re-entrant call from a callback).",
                    cause: "Calls in the wrong order, or a call on the client from inside its own callback.",
                    action: FixCode,
                    hint: "call in the documented order, never from inside a callback",
                }
                InvalidCertificate = DPS_ERR_INVALID_CERTIFICATE = 108 => "a certificate or trust anchor could not be parsed" {
                    doc: "A certificate or trust-anchor PEM/DER could not be parsed.",
                    cause: "A file that is not PEM or DER, an empty PEM, or a key file given as a certificate.",
                    action: FixConfig,
                    hint: "pass a PEM (-----BEGIN CERTIFICATE-----) or DER certificate",
                }
                InvalidIdScope = DPS_ERR_INVALID_ID_SCOPE = 109 => "invalid id scope" {
                    doc: "The id scope is empty or contains characters the service never issues.",
                    cause: "A typo, or the DPS or hub host name given instead of the id scope.",
                    action: FixConfig,
                    hint: "copy the ID Scope (0ne...) from the DPS instance's overview",
                }
                InvalidCertificateCn = DPS_ERR_INVALID_CERTIFICATE_CN = 110 => "the registration id does not match the client certificate's subject CN" {
                    doc: "The registration id does not match the client certificate's subject CN (X.509 attestation requires them to be equal), or the certificate has no usable CN.",
                    cause: "A registration id other than the certificate's CN, or a certificate without a CN.",
                    action: FixConfig,
                    hint: "leave the registration id unset or make it the certificate's CN",
                }
                InvalidPrivateKey = DPS_ERR_INVALID_PRIVATE_KEY = 111 => "the private key is not an unencrypted PKCS#8, PKCS#1 or SEC1 key (PEM or DER)" {
                    doc: "The private key could not be read: not PEM or DER, or not an unencrypted PKCS#8, PKCS#1 (RSA) or SEC1 (EC) key of a supported algorithm.",
                    cause: "A password-protected key, or a certificate given as the key.",
                    action: FixConfig,
                    hint: "decrypt the key: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pem",
                }
                InvalidCertificateKeyMismatch = DPS_ERR_INVALID_CERTIFICATE_KEY_MISMATCH = 112 => "the private key does not belong to the client certificate" {
                    doc: "The private key does not belong to the client certificate (the leaf's public key).",
                    cause: "The key of another certificate, or the chain given leaf last.",
                    action: FixConfig,
                    hint: "pass the key made with this certificate, the leaf first in the chain",
                }
                InvalidUnsupported = DPS_ERR_INVALID_UNSUPPORTED = 130 => "not supported by this build of the library (built without TLS: the transport does TLS)" {
                    doc: "The call needs a feature this build of the library leaves out: TLS settings in a build without the `tls` feature (CMake `DPS_MQTT_TLS=OFF`), where TLS is always the transport's job.",
                    cause: "TLS settings (trust anchors, client certificate) in a build without TLS.",
                    action: FixConfig,
                    hint: "configure TLS in the transport, or build with TLS (DPS_MQTT_TLS=ON)",
                }
                InvalidBufferTooSmall = DPS_ERR_INVALID_BUFFER_TOO_SMALL = 115 => "the output buffer is missing or too small" {
                    doc: "The output buffer is NULL or too small; the size needed was reported.",
                    cause: "A buffer sized for a shorter value.",
                    action: FixCode,
                    hint: "call again with a buffer of the size reported",
                }
                InvalidAssignment = DPS_ERR_INVALID_ASSIGNMENT = 116 => "the stored assignment is truncated, corrupt or of an unknown version" {
                    doc: "A stored assignment blob is truncated, corrupt or of an unknown format version.",
                    cause: "Storage that was erased or torn by a power cut, or a blob from another library version.",
                    action: Reprovision,
                    hint: "discard the stored assignment and register again",
                }
                InvalidCsr = DPS_ERR_INVALID_CSR = 117 => "the certificate signing request is not DER or PEM PKCS#10" {
                    doc: "The certificate signing request is not one DER (or PEM) PKCS#10 structure.",
                    cause: "A certificate or key given as the CSR, or several CSRs in one file.",
                    action: FixConfig,
                    hint: "pass one PKCS#10 CSR (openssl req -new ... -outform DER)",
                }
                InvalidModelId = DPS_ERR_INVALID_MODEL_ID = 113 => "the model id is not a DTMI (dtmi:com:example:Model;1)" {
                    doc: "The model id is not a DTMI (e.g. `dtmi:com:example:Thermostat;1`).",
                    cause: "A model id without the `dtmi:` prefix or the `;version` suffix.",
                    action: FixConfig,
                    hint: "use a DTMI such as dtmi:com:example:Thermostat;1",
                }
            }
            Auth {
                AuthNotAuthorized = DPS_ERR_AUTH_NOT_AUTHORIZED = 200 => "the server refused the connection: not authorized" {
                    doc: "The server refused the MQTT CONNECT as not authorized (CONNACK 5).",
                    cause: "A key, token or certificate the server refused at connect; an expired SAS token.",
                    action: FixConfig,
                    hint: "check the key, the id scope and the device clock (SAS tokens expire)",
                }
                AuthBadCredentials = DPS_ERR_AUTH_BAD_CREDENTIALS = 201 => "the server refused the connection: malformed user name or password" {
                    doc: "The server refused the user name or password as malformed (CONNACK 4).",
                    cause: "A user name or token the server cannot read (id scope, registration id or api-version).",
                    action: FixConfig,
                    hint: "check the id scope, registration id and api-version",
                }
                AuthUnknownIdScope = DPS_ERR_AUTH_UNKNOWN_ID_SCOPE = 202 => "the server refused the connection: unknown id scope" {
                    doc: "The server does not know the id scope (CONNACK 3).",
                    cause: "An id scope of another DPS instance, a typo, or the wrong endpoint host.",
                    action: FixConfig,
                    hint: "copy the ID Scope from the DPS instance; check the endpoint host",
                }
                AuthUnauthorized = DPS_ERR_AUTH_UNAUTHORIZED = 203 => "the service answered 401 unauthorized (wrong key, expired token or unknown device)" {
                    doc: "The service answered a request with 401 (wrong key, expired token, unknown registration id, certificate not matching the enrollment).",
                    cause: "A wrong key, a device key given as group key (or the reverse), a clock not set, no enrollment.",
                    action: FixConfig,
                    hint: "check key vs group key, the registration id and the device clock",
                }
                AuthIdentifierRejected = DPS_ERR_AUTH_IDENTIFIER_REJECTED = 204 => "the server refused the connection: client identifier rejected" {
                    doc: "The server refused the client identifier (CONNACK 2).",
                    cause: "A registration id the server does not accept as MQTT client id.",
                    action: FixConfig,
                    hint: "check the registration id",
                }
                AuthSigningFailed = DPS_ERR_AUTH_SIGNING_FAILED = 205 => "the external signing callback failed" {
                    doc: "The external signing callback reported a failure (HSM, TPM or secure element).",
                    cause: "The HSM, TPM or secure element is absent, locked or has no such key.",
                    action: FixConfig,
                    hint: "check the signing callback and the key in the secure element",
                }
            }
            Tls {
                TlsHandshake = DPS_ERR_TLS_HANDSHAKE = 300 => "TLS handshake failed" {
                    doc: "The TLS handshake failed for a reason not covered below.",
                    cause: "A server that is not the DPS endpoint, or a middlebox inspecting TLS.",
                    action: FixTransport,
                    hint: "check that host and port reach DPS without a TLS-inspecting proxy",
                }
                TlsCertUntrusted = DPS_ERR_TLS_CERT_UNTRUSTED = 301 => "the server's certificate is not trusted" {
                    doc: "The server's certificate does not chain to a trusted anchor.",
                    cause: "The server's root CA is not among the trust anchors (`UnknownIssuer`).",
                    action: FixConfig,
                    hint: "add the server's root CA (--ca-file, dps_config_add_trust_anchors_pem)",
                }
                TlsCertExpired = DPS_ERR_TLS_CERT_EXPIRED = 302 => "the server's certificate is expired or not yet valid" {
                    doc: "The server's certificate is expired or not yet valid (by the clock hook).",
                    cause: "The device clock is not set (1970) or wrong; rarely, an expired server certificate.",
                    action: FixConfig,
                    hint: "set the device clock (SNTP, dps_config_set_clock) before registering",
                }
                TlsCertNameMismatch = DPS_ERR_TLS_CERT_NAME_MISMATCH = 303 => "the server's certificate does not match the host" {
                    doc: "The server's certificate is not valid for the host name.",
                    cause: "An IP address or another name than the one in the server's certificate.",
                    action: FixConfig,
                    hint: "connect by the host name the server's certificate names",
                }
                TlsProtocolVersion = DPS_ERR_TLS_PROTOCOL_VERSION = 304 => "no TLS version or cipher suite in common" {
                    doc: "No TLS protocol version or cipher suite in common with the server.",
                    cause: "A server or middlebox without TLS 1.2 or 1.3 and modern cipher suites.",
                    action: FixTransport,
                    hint: "connect to a TLS 1.2/1.3 endpoint; an old proxy may be in the way",
                }
                TlsAlert = DPS_ERR_TLS_ALERT = 305 => "the server sent a fatal TLS alert or non-TLS bytes" {
                    doc: "The server sent a fatal TLS alert, or sent bytes that are not TLS.",
                    cause: "A server ending the handshake, or a port that does not speak TLS.",
                    action: Retry,
                    hint: "retry; if it persists, check that the port speaks TLS (8883, 443)",
                }
            }
            Transport {
                TransportConnect = DPS_ERR_TRANSPORT_CONNECT = 400 => "could not connect to the server" {
                    doc: "The transport's connect hook failed (refused, unreachable, name not resolved).",
                    cause: "No network, DNS failing, nothing listening, or a firewall blocking port 8883.",
                    action: Retry,
                    hint: "check network and DNS; if port 8883 is blocked, use WebSocket on 443",
                }
                TransportClosed = DPS_ERR_TRANSPORT_CLOSED = 401 => "the connection was closed" {
                    doc: "The peer closed the connection and no retry was possible.",
                    cause: "The server or a middlebox closed the connection.",
                    action: Retry,
                    hint: "retry with back-off; if a firewall closes 8883, use WebSocket on 443",
                }
                TransportIo = DPS_ERR_TRANSPORT_IO = 402 => "the transport reported an I/O error" {
                    doc: "The transport's send or receive hook reported an error.",
                    cause: "The network dropped, or the transport hook failed.",
                    action: Retry,
                    hint: "retry with back-off; the detail has the transport's error",
                }
                TransportProxy = DPS_ERR_TRANSPORT_PROXY = 403 => "the HTTP proxy refused or failed the CONNECT tunnel" {
                    doc: "The HTTP proxy refused or failed the CONNECT tunnel (its status is in the detail), or did not answer like an HTTP proxy.",
                    cause: "A proxy that is down, forbids the DPS host or port, or is not an HTTP proxy.",
                    action: Retry,
                    hint: "check the proxy address and that it allows CONNECT to the DPS port",
                }
                TransportProxyAuth = DPS_ERR_TRANSPORT_PROXY_AUTH = 404 => "the HTTP proxy requires authentication or refused the credentials" {
                    doc: "The HTTP proxy wants credentials, or refused the ones given (407, or 401 as tinyproxy answers). Not retryable: fix the proxy user name or password.",
                    cause: "No proxy credentials given, or wrong ones.",
                    action: FixConfig,
                    hint: "set the proxy user and password (--proxy-user, dps_config_set_proxy)",
                }
            }
            Protocol {
                ProtocolMalformed = DPS_ERR_PROTOCOL_MALFORMED = 500 => "the server sent malformed MQTT" {
                    doc: "The server sent bytes that are not valid MQTT 3.1.1.",
                    cause: "A server that is not DPS, or bytes corrupted on the way.",
                    action: Retry,
                    hint: "retry; if it persists, check that the endpoint is DPS",
                }
                ProtocolPacketTooLarge = DPS_ERR_PROTOCOL_PACKET_TOO_LARGE = 501 => "the server sent a packet over the size limit" {
                    doc: "The server sent a packet larger than the configured maximum.",
                    cause: "A response (a large payload or certificate chain) over the maximum packet size.",
                    action: Retry,
                    hint: "retry; if it persists, raise the maximum packet size",
                }
                ProtocolUnexpectedPacket = DPS_ERR_PROTOCOL_UNEXPECTED_PACKET = 502 => "the server sent an unexpected MQTT packet" {
                    doc: "The server sent a packet that is not allowed at this point.",
                    cause: "A server that is not DPS, or a broken broker.",
                    action: Retry,
                    hint: "retry; if it persists, check that the endpoint is DPS",
                }
                ProtocolBadResponse = DPS_ERR_PROTOCOL_BAD_RESPONSE = 503 => "the service's response could not be understood" {
                    doc: "A response topic or body could not be understood.",
                    cause: "A response this client cannot read, or one without an expected field.",
                    action: Retry,
                    hint: "retry; if it persists, report it with the tracking id",
                }
                ProtocolUnexpectedStatus = DPS_ERR_PROTOCOL_UNEXPECTED_STATUS = 504 => "the service answered with an unexpected status" {
                    doc: "The service answered with a status this client does not handle (e.g. 302, 999).",
                    cause: "A status this client does not handle (a redirect, a new code).",
                    action: Retry,
                    hint: "retry; if it persists, report the status and the tracking id",
                }
                ProtocolConnack = DPS_ERR_PROTOCOL_CONNACK = 505 => "the server refused the connection with an unknown code" {
                    doc: "CONNACK with a return code that MQTT 3.1.1 does not define, or code 1 (protocol version refused).",
                    cause: "A broker that is not DPS or does not speak MQTT 3.1.1.",
                    action: Retry,
                    hint: "retry; if it persists, check that the endpoint is DPS",
                }
                ProtocolSubscribeRefused = DPS_ERR_PROTOCOL_SUBSCRIBE_REFUSED = 506 => "the server refused the subscription" {
                    doc: "The subscription to the response topic was refused.",
                    cause: "A server that is not DPS, or a transient service failure.",
                    action: Retry,
                    hint: "retry; if it persists, check that the endpoint is DPS",
                }
                ProtocolWebsocketHandshake = DPS_ERR_PROTOCOL_WEBSOCKET_HANDSHAKE = 507 => "the server refused the WebSocket upgrade" {
                    doc: "The server refused or botched the WebSocket upgrade (not 101, wrong Sec-WebSocket-Accept, no `mqtt` subprotocol).",
                    cause: "An endpoint or proxy that does not offer MQTT over WebSocket on that port.",
                    action: Retry,
                    hint: "retry; if it persists, check the endpoint serves MQTT over WebSocket",
                }
                ProtocolWebsocket = DPS_ERR_PROTOCOL_WEBSOCKET = 508 => "the server broke the WebSocket framing rules" {
                    doc: "The server broke the WebSocket framing rules (masked or text frames, bad opcode or fragmentation).",
                    cause: "A middlebox rewriting WebSocket frames, or a server that is not DPS.",
                    action: Retry,
                    hint: "retry; if it persists, try without the proxy or on port 8883",
                }
            }
            Timeout {
                Timeout = DPS_ERR_TIMEOUT = 600 => "the deadline passed" {
                    doc: "The overall deadline passed.",
                    cause: "A slow network, or a service that did not answer in time.",
                    action: Retry,
                    hint: "retry later, or with a longer timeout",
                }
                TimeoutThrottled = DPS_ERR_TIMEOUT_THROTTLED = 601 => "the deadline passed while the service was throttling" {
                    doc: "The overall deadline passed while the service kept throttling (429) or failing (5xx).",
                    cause: "Too many registrations at once (429), or the service failing (5xx).",
                    action: Retry,
                    hint: "retry later with back-off; spread the fleet's registrations out",
                }
                TimeoutAssigning = DPS_ERR_TIMEOUT_ASSIGNING = 602 => "the deadline passed while the service was assigning" {
                    doc: "The overall deadline passed while the service was still assigning.",
                    cause: "An assignment slower than the deadline (a custom allocation function).",
                    action: Retry,
                    hint: "retry with a longer timeout",
                }
            }
            Registration {
                RegistrationFailed = DPS_ERR_REGISTRATION_FAILED = 700 => "the service reported the registration as failed" {
                    doc: "The service finished the registration with status `failed`.",
                    cause: "No IoT hub the enrollment can be assigned to, or a custom allocation that failed.",
                    action: FixEnrollment,
                    hint: "check the enrollment's linked IoT hubs and allocation policy",
                }
                RegistrationDisabled = DPS_ERR_REGISTRATION_DISABLED = 701 => "the enrollment is disabled" {
                    doc: "The enrollment is disabled.",
                    cause: "The individual enrollment or its group is disabled in DPS.",
                    action: FixEnrollment,
                    hint: "enable the enrollment (or its group) in DPS",
                }
                RegistrationRejected = DPS_ERR_REGISTRATION_REJECTED = 702 => "the service rejected the request" {
                    doc: "The service rejected the request (a 4xx other than 401 and 429, e.g. 400 or 404).",
                    cause: "A request the service refuses (400), or no such enrollment (404).",
                    action: FixEnrollment,
                    hint: "see the errorCode in the detail; for 404 create the enrollment",
                }
            }
            Internal {
                Panic = DPS_ERR_PANIC = 900 => "internal panic caught at the API boundary" {
                    doc: "A Rust panic was caught at the C boundary. The handle should be freed.",
                    cause: "A bug in the library or one of its dependencies.",
                    action: Report,
                    hint: "free the handle; please report it with the log",
                }
                Internal = DPS_ERR_INTERNAL = 901 => "internal error" {
                    doc: "An internal invariant failed; please report it.",
                    cause: "A bug in the library.",
                    action: Report,
                    hint: "please report it with the log and the detail",
                }
                OutOfMemory = DPS_ERR_OUT_OF_MEMORY = 902 => "out of memory: the allocator (dps_set_allocator) returned NULL; the attempt was ended and its memory released" {
                    doc: "The allocator installed with `dps_set_allocator` returned NULL during the call. The attempt was ended and its memory released; the handle can be used again (a larger heap, or the same one after freeing other memory).",
                    cause: "A heap smaller than the registration's peak (`dps_heap_usage`).",
                    action: FixConfig,
                    hint: "give the allocator more heap (dps_heap_usage shows the peak)",
                }
                EntropyFailed = DPS_ERR_ENTROPY_FAILED = 903 => "the entropy source failed (dps_config_set_entropy callback or the OS)" {
                    doc: "The entropy source failed: the callback set with `dps_config_set_entropy` returned non-zero, or the operating system gave no random bytes.",
                    cause: "The entropy callback returned non-zero, or the hardware RNG is not ready.",
                    action: FixConfig,
                    hint: "check the entropy callback (dps_config_set_entropy) and the RNG",
                }
            }
        }
    };
}
pub(crate) use for_each_result;

/// What firmware should do about an error: README's result table and `is_retryable` follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Try again later, with back-off; the configuration may stay as it is.
    Retry,
    /// Discard the stored assignment and register from scratch.
    Reprovision,
    /// Change a setting of the device (credential, id scope, trust anchors, clock, heap).
    FixConfig,
    /// Change the enrollment in the service.
    FixEnrollment,
    /// Change the network path: port, proxy, firewall.
    FixTransport,
    /// Change the calling code: a misuse of the API.
    FixCode,
    /// A bug: report it.
    Report,
}

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
    ($($class:ident { $($kind:ident = $c_name:ident = $value:literal => $message:literal {
        doc: $doc:literal, cause: $cause:literal, action: $action:ident, hint: $hint:literal,
    })* })*) => {
        /// Every hint, NUL-terminated, in table order, as one string. Apart, each would be a C
        /// string, which LLVM pools with the names and messages in one section that the linker
        /// keeps whole; together they are one constant of their own, which a firmware that
        /// never asks for a hint leaves out of flash.
        const HINTS: &str = concat!($($($hint, "\0",)*)*);

        /// Why an operation failed.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(
                #[doc = $doc]
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

            /// One line saying what to do about it, e.g. "retry later, or with a longer timeout".
            pub fn hint(self) -> &'static str {
                without_nul(self.hint_nul())
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

            /// The hint with a NUL after it.
            pub fn hint_nul(self) -> &'static str {
                // The kinds are numbered in table order, as the hints are laid out.
                HINTS.split_inclusive('\0').nth(self as usize).unwrap_or("\0")
            }

            /// The class this kind belongs to.
            pub fn class(self) -> ErrorClass {
                match self {
                    $($(ErrorKind::$kind => ErrorClass::$class,)*)*
                }
            }

            /// What firmware should do about it.
            pub fn action(self) -> Action {
                match self {
                    $($(ErrorKind::$kind => Action::$action,)*)*
                }
            }

            /// The C value (`dps_result`), which the written-out C enum must repeat.
            #[cfg(test)]
            pub(crate) fn value(self) -> u32 {
                match self {
                    $($(ErrorKind::$kind => $value,)*)*
                }
            }

            /// The header's documentation of the code. Only tests (which write the header's
            /// source and README) read it, so it costs no flash.
            #[cfg(test)]
            pub(crate) fn doc(self) -> &'static str {
                match self {
                    $($(ErrorKind::$kind => $doc,)*)*
                }
            }

            /// README's likely cause; test-only like `doc`.
            #[cfg(test)]
            pub(crate) fn cause(self) -> &'static str {
                match self {
                    $($(ErrorKind::$kind => $cause,)*)*
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
    /// configuration: the table's `Retry` rows (transport, TLS alerts, protocol hiccups,
    /// timeouts; not proxy authentication).
    pub fn is_retryable(self) -> bool {
        self.action() == Action::Retry
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

    #[test]
    fn hints_are_found_by_the_kinds_number() {
        assert_eq!(HINTS.split_inclusive('\0').count(), ErrorKind::ALL.len());
        for (i, &k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k as usize, i, "{}", k.name());
            assert!(k.hint_nul().ends_with('\0'), "{}", k.name());
            assert!(
                !k.hint().is_empty() && !k.hint().contains('\0'),
                "{}",
                k.name()
            );
        }
        assert_eq!(
            ErrorKind::TlsCertUntrusted.hint(),
            "add the server's root CA (--ca-file, dps_config_add_trust_anchors_pem)"
        );
    }
}
