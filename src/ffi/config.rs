//! `dps_config`: the opaque configuration builder.
//!
//! A config is plain data: each setter parses its argument into a validated setting and
//! refuses bad input there (the reason is kept for `dps_config_result_detail` and logged);
//! `dps_client_new` checks only the rules that join several settings. A config may be freed
//! right after `dps_client_new` (the client copies it) and reused for several clients. Not
//! thread-safe: use one config from one thread at a time.

use super::entropy::{dps_entropy_fn, CallbackEntropy};
use crate::prelude::*;
use alloc::ffi::CString;
use core::ffi::{c_char, c_void};

use zeroize::Zeroizing;

use super::signing::{dps_sign_fn, CallbackSigner};
use super::transport::{
    dps_clock, dps_log_callback, dps_log_level, dps_status_callback, LogSink, StatusSink,
};
use super::{bytes_arg, guard, str_arg, try_ffi};
use crate::config::{ClientCertificate, Config, KeyKind};
use crate::engine::Level;
use crate::error::Error;
use crate::ffi::result::dps_result;

/// Opaque configuration builder. Create with `dps_config_new`, free with `dps_config_free`.
pub struct dps_config {
    pub(crate) inner: Config,
    pub(crate) clock: Option<dps_clock>,
    pub(crate) log: Option<LogSink>,
    pub(crate) status: Option<StatusSink>,
    /// Why the last refused setter call refused its argument.
    pub(crate) detail: CString,
}

impl dps_config {
    /// Keeps a setter's refusal for `dps_config_result_detail`, logs it, and gives its code.
    fn refused(&mut self, error: Error) -> dps_result {
        if let Some(log) = &self.log {
            log.emit(Level::Error, &error.detail);
        }
        self.detail = CString::new(error.detail.replace('\0', " ")).unwrap_or_default();
        dps_result::from(error)
    }
}

/// Borrows a config argument mutably.
///
/// # Safety
/// `ptr` must be NULL or a pointer from `dps_config_new` not yet freed, not used elsewhere
/// during the call.
unsafe fn config_mut<'a>(ptr: *mut dps_config) -> Result<&'a mut dps_config, dps_result> {
    // SAFETY: per this function's contract, a non-NULL `ptr` is a live, exclusive config.
    unsafe { ptr.as_mut() }.ok_or(dps_result::DPS_ERR_INVALID_NULL_POINTER)
}

/// Runs a setter body on a config and one string argument.
fn with_str(
    config: *mut dps_config,
    value: *const c_char,
    set: impl FnOnce(&mut Config, &str) -> crate::error::Result<()>,
) -> dps_result {
    guard(|| {
        // SAFETY: exports pass their caller's pointers, which the C contract says are valid.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: as above; the string is only borrowed during this call.
        let value = try_ffi!(unsafe { str_arg(value) });
        match set(&mut cfg.inner, value) {
            Ok(()) => dps_result::DPS_OK,
            Err(e) => cfg.refused(e),
        }
    })
}

/// Runs a setter body on a config alone (its other arguments are plain values).
fn with_config(
    config: *mut dps_config,
    set: impl FnOnce(&mut Config) -> crate::error::Result<()>,
) -> dps_result {
    guard(|| {
        // SAFETY: exports pass their caller's pointers, which the C contract says are valid.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        match set(&mut cfg.inner) {
            Ok(()) => dps_result::DPS_OK,
            Err(e) => cfg.refused(e),
        }
    })
}

/// Runs a setter body on a config and one (pointer, length) byte buffer argument.
fn with_bytes(
    config: *mut dps_config,
    ptr: *const u8,
    len: usize,
    set: impl FnOnce(&mut Config, &[u8]) -> crate::error::Result<()>,
) -> dps_result {
    guard(|| {
        // SAFETY: exports pass their caller's pointers, which the C contract says are valid.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: as above: `ptr` has `len` readable bytes, borrowed during this call only.
        let bytes = try_ffi!(unsafe { bytes_arg(ptr, len) });
        match set(&mut cfg.inner, bytes) {
            Ok(()) => dps_result::DPS_OK,
            Err(e) => cfg.refused(e),
        }
    })
}

/// Borrows an optional string argument: NULL is `None`.
///
/// # Safety
/// As `str_arg`.
unsafe fn optional_str_arg<'a>(ptr: *const c_char) -> Result<Option<&'a str>, dps_result> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, and valid per this function's contract.
    unsafe { str_arg(ptr) }.map(Some)
}

/// Runs the setter of an optional string setting: NULL is `None`, which clears it.
fn with_optional_str(
    config: *mut dps_config,
    value: *const c_char,
    set: impl FnOnce(&mut Config, Option<&str>) -> crate::error::Result<()>,
) -> dps_result {
    guard(|| {
        // SAFETY: exports pass their caller's pointers, which the C contract says are valid.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: as above; the string is only borrowed during this call.
        let value = try_ffi!(unsafe { optional_str_arg(value) });
        match set(&mut cfg.inner, value) {
            Ok(()) => dps_result::DPS_OK,
            Err(e) => cfg.refused(e),
        }
    })
}

/// Creates an empty configuration with defaults: host global.azure-devices-provisioning.net,
/// port 8883, the public root certificates, api-version 2019-03-31, 90 s deadline.
///
/// @return a new config owned by the caller (free with `dps_config_free`), or NULL if memory
/// could not be allocated.
#[no_mangle]
pub extern "C" fn dps_config_new() -> *mut dps_config {
    super::guard_value(core::ptr::null_mut(), || {
        let oom_before = crate::platform::memory::oom_events();
        let config = Box::new(dps_config {
            inner: Config::default(),
            clock: None,
            log: None,
            status: None,
            detail: CString::default(),
        });
        super::new_handle(oom_before, config).unwrap_or(core::ptr::null_mut())
    })
}

/// Why the last setter call on `config` that returned an error refused its argument, e.g.
/// "host \"x..y\" has an empty label (a leading dot or two dots in a row)": the precise
/// reason behind the code. The same text goes to the log callback, if one is set, at
/// DPS_LOG_ERROR. Empty until a setter refuses something; NULL, NUL-pointer and UTF-8
/// refusals (DPS_ERR_INVALID_NULL_POINTER, DPS_ERR_INVALID_UTF8) leave it unchanged.
///
/// Valid until the next setter call on this config or `dps_config_free`; NULL when `config`
/// is NULL.
#[no_mangle]
pub extern "C" fn dps_config_result_detail(config: *const dps_config) -> *const c_char {
    super::guard_value(core::ptr::null(), || {
        // SAFETY: the caller's pointer, NULL or a live config per the C contract.
        unsafe { config.as_ref() }.map_or(core::ptr::null(), |cfg| cfg.detail.as_ptr())
    })
}

/// Frees a configuration. NULL is a no-op. Keys held by it are zeroized.
#[no_mangle]
pub extern "C" fn dps_config_free(config: *mut dps_config) {
    super::guard_value((), || {
        if !config.is_null() {
            // SAFETY: a non-NULL pointer here came from `dps_config_new` and is freed once.
            drop(unsafe { Box::from_raw(config) });
        }
    });
}

/// Sets the id scope (e.g. "0ne00000001"). Required.
///
/// @retval DPS_ERR_INVALID_ID_SCOPE when empty, longer than 64 characters or not letters and
///         digits.
#[no_mangle]
pub extern "C" fn dps_config_set_id_scope(
    config: *mut dps_config,
    id_scope: *const c_char,
) -> dps_result {
    with_str(config, id_scope, Config::set_id_scope)
}

/// Sets the registration id (the MQTT client id). Required.
///
/// @retval DPS_ERR_INVALID_REGISTRATION_ID when it breaks the service's rules: 1 to 128
///         characters of `a-z A-Z 0-9 - . _ :`, the last a letter, a digit or `-`.
#[no_mangle]
pub extern "C" fn dps_config_set_registration_id(
    config: *mut dps_config,
    registration_id: *const c_char,
) -> dps_result {
    with_str(config, registration_id, Config::set_registration_id)
}

/// Sets the device's symmetric key (base64), for an individual enrollment. Replaces a group
/// key. The library keeps a copy, zeroized when freed; the caller may wipe its own at once.
///
/// @retval DPS_ERR_INVALID_KEY when not valid base64 or empty.
#[no_mangle]
pub extern "C" fn dps_config_set_symmetric_key(
    config: *mut dps_config,
    key_base64: *const c_char,
) -> dps_result {
    with_str(config, key_base64, |cfg, s| {
        crate::dps::sas::KeySigner::from_base64(s)?;
        cfg.key = Some(KeyKind::Device(Zeroizing::new(s.to_owned())));
        Ok(())
    })
}

/// Sets an enrollment group's key (base64); the device key is derived from it and the
/// registration id. Replaces a symmetric key. Zeroized when freed.
///
/// @retval DPS_ERR_INVALID_KEY when not valid base64 or empty.
#[no_mangle]
pub extern "C" fn dps_config_set_group_key(
    config: *mut dps_config,
    group_key_base64: *const c_char,
) -> dps_result {
    with_str(config, group_key_base64, |cfg, s| {
        crate::dps::sas::KeySigner::from_base64(s)?;
        cfg.key = Some(KeyKind::Group(Zeroizing::new(s.to_owned())));
        Ok(())
    })
}

/// Sets the DPS host (also the TLS server name) and port. A port set here is kept when
/// WebSocket is turned on or off; to keep the default port, which follows the transport (8883,
/// or 443 with `dps_config_set_websocket`), set the host alone with `dps_config_set_host`.
///
/// @param host as for `dps_config_set_host`.
/// @param port 1 to 65535.
/// @retval DPS_ERR_INVALID_ARGUMENT when the host is neither a DNS name nor an IP address, or
///         the port is 0 (nothing is dialled; `dps_config_result_detail` says why); the config
///         is unchanged.
#[no_mangle]
pub extern "C" fn dps_config_set_endpoint(
    config: *mut dps_config,
    host: *const c_char,
    port: u16,
) -> dps_result {
    with_str(config, host, |cfg, s| cfg.set_endpoint(s, port))
}

/// Sets the DPS host (also the TLS server name) and leaves the port as it is: the default,
/// which follows the transport (8883, or 443 with `dps_config_set_websocket`), unless
/// `dps_config_set_endpoint` chose one.
///
/// @param host a DNS name (at most 253 characters; dot-separated labels of 1 to 63 letters,
///        digits or '-', none starting or ending with '-', the last not all digits; no
///        trailing dot) or an IPv4 or IPv6 address (IPv6 with or without brackets). Default
///        global.azure-devices-provisioning.net. Copied.
/// @retval DPS_ERR_INVALID_ARGUMENT when the host is neither (nothing is dialled;
///         `dps_config_result_detail` says why); the config is unchanged.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` or `host` is NULL.
#[no_mangle]
pub extern "C" fn dps_config_set_host(config: *mut dps_config, host: *const c_char) -> dps_result {
    with_str(config, host, Config::set_host)
}

/// Adds trust anchors (one or more PEM "CERTIFICATE" blocks) for the server's certificate,
/// e.g. a private CA or the local emulator's CA, to those added before (see
/// `dps_config_set_trust_anchors_pem` to replace them). `pem` is copied.
///
/// @param use_public_roots also trust the built-in public roots (webpki-roots) when true;
///        trust only the given anchors when false.
/// @retval DPS_ERR_INVALID_CERTIFICATE when no certificate can be read from `pem`.
/// @retval DPS_ERR_INVALID_UNSUPPORTED in a build without TLS (the transport verifies the
///         server); with TLS offload on, `dps_client_new` refuses anchors (DPS_ERR_INVALID_CONFIG).
#[no_mangle]
pub extern "C" fn dps_config_add_trust_anchors_pem(
    config: *mut dps_config,
    pem: *const u8,
    pem_len: usize,
    use_public_roots: bool,
) -> dps_result {
    with_bytes(config, pem, pem_len, |cfg, pem| {
        cfg.add_trust_anchors_pem(pem, use_public_roots)
    })
}

/// Sets the custom JSON sent to the service as `payload` (available to custom allocation
/// policies and echoed back as the assignment's payload). NULL clears it.
///
/// @retval DPS_ERR_INVALID_PAYLOAD when over 96 KiB (98304 bytes, the service's limit),
///         nested more than 64 levels deep, or not one JSON value; `dps_config_result_detail`
///         says which.
#[no_mangle]
pub extern "C" fn dps_config_set_payload_json(
    config: *mut dps_config,
    json: *const c_char,
) -> dps_result {
    with_optional_str(config, json, Config::set_payload)
}

/// Sets the service api-version (default "2019-03-31", or "2025-07-01-preview" when a CSR is
/// set with `dps_config_set_csr_der`; "2021-06-01" adds nothing a device must send;
/// "2025-07-01-preview" adds certificate issuance).
///
/// @retval DPS_ERR_INVALID_ARGUMENT when not `YYYY-MM-DD`, optionally with a lower-case
///         suffix such as `-preview`.
#[no_mangle]
pub extern "C" fn dps_config_set_api_version(
    config: *mut dps_config,
    api_version: *const c_char,
) -> dps_result {
    with_str(config, api_version, Config::set_api_version)
}

/// Sets the overall deadline of one registration attempt in milliseconds (default 90000),
/// covering connects, reconnects, waits and polls.
///
/// @retval DPS_ERR_INVALID_ARGUMENT when 0.
#[no_mangle]
pub extern "C" fn dps_config_set_timeout_ms(
    config: *mut dps_config,
    timeout_ms: u32,
) -> dps_result {
    with_config(config, |cfg| {
        if timeout_ms == 0 {
            return Err(Error::new(
                crate::error::ErrorKind::InvalidArgument,
                "timeout 0 ms: the deadline must be at least 1 ms",
            ));
        }
        cfg.timing.deadline_ms = u64::from(timeout_ms);
        Ok(())
    })
}

/// Sets the clock hooks (copied). Without them the host's clocks are used.
///
/// @retval DPS_ERR_INVALID_NULL_POINTER when `clock` or one of its hooks is NULL.
#[no_mangle]
pub extern "C" fn dps_config_set_clock(
    config: *mut dps_config,
    clock: *const dps_clock,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: a non-NULL `clock` points to a readable table per the C contract.
        let Some(clock) = (unsafe { clock.as_ref() }) else {
            return dps_result::DPS_ERR_INVALID_NULL_POINTER;
        };
        if clock.now_ms.is_none() || clock.unix_seconds.is_none() {
            return dps_result::DPS_ERR_INVALID_NULL_POINTER;
        }
        cfg.clock = Some(*clock);
        dps_result::DPS_OK
    })
}

/// Sets the per-client log callback. `max_level` is the most verbose `dps_log_level` wanted
/// (1 = errors only ... 4 = debug). A NULL callback turns logging off. Messages never contain
/// keys or tokens.
///
/// @retval DPS_ERR_INVALID_ARGUMENT when `max_level` is not 1..4.
#[no_mangle]
pub extern "C" fn dps_config_set_log_callback(
    config: *mut dps_config,
    callback: dps_log_callback,
    user: *mut c_void,
    max_level: u32,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        let max_level = match max_level {
            1 => dps_log_level::DPS_LOG_ERROR,
            2 => dps_log_level::DPS_LOG_WARN,
            3 => dps_log_level::DPS_LOG_INFO,
            4 => dps_log_level::DPS_LOG_DEBUG,
            _ => return dps_result::DPS_ERR_INVALID_ARGUMENT,
        };
        cfg.log = callback.map(|_| LogSink {
            callback,
            user,
            max_level,
        });
        dps_result::DPS_OK
    })
}

/// Sets the per-client status callback, called on every progress change. NULL turns it off.
#[no_mangle]
pub extern "C" fn dps_config_set_status_callback(
    config: *mut dps_config,
    callback: dps_status_callback,
    user: *mut c_void,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        cfg.status = callback.map(|_| StatusSink { callback, user });
        dps_result::DPS_OK
    })
}

// X.509 client certificates, trust anchors replaced at run time, and the registration
// request's and connection's details (model id, SAS token lifetime, client version): the
// setters of issue 5's credentials and configuration part, kept together.

/// Sets an X.509 client certificate and its private key (X.509 attestation: an individual
/// X.509 enrollment, or an enrollment group whose CA issued the certificate). Replaces a
/// symmetric or group key: no SAS token (MQTT password) is sent, the certificate is presented
/// in the TLS handshake. Both buffers are copied; the key copy is wiped when freed, so the
/// caller may wipe its own at once.
///
/// The registration id must equal the leaf certificate's subject CN (compared
/// case-insensitively, as the service does); `dps_client_new` checks it and, when no
/// registration id was set, uses the CN.
///
/// @param cert_chain the certificate chain as PEM ("CERTIFICATE" blocks, the leaf first, then
///        any intermediates up to but excluding the root), or one DER certificate (the leaf).
/// @param cert_chain_len its length in bytes.
/// @param private_key the leaf's private key, unencrypted, as PEM ("PRIVATE KEY",
///        "RSA PRIVATE KEY" or "EC PRIVATE KEY") or DER (PKCS#8, PKCS#1 or SEC1): RSA, ECDSA
///        P-256/P-384 or Ed25519.
/// @param private_key_len its length in bytes.
/// @retval DPS_ERR_INVALID_CERTIFICATE when no certificate can be read from `cert_chain`.
/// @retval DPS_ERR_INVALID_PRIVATE_KEY when the key cannot be read or is not supported.
/// @retval DPS_ERR_INVALID_CERTIFICATE_KEY_MISMATCH when the key is not the leaf's.
/// @retval DPS_ERR_INVALID_CERTIFICATE_CN when the leaf's subject has no usable CN.
/// @retval DPS_ERR_INVALID_UNSUPPORTED in a build without TLS, whatever the buffers hold: the
///         transport's TLS presents the certificate there (`dps_config_set_x509_offloaded`).
#[no_mangle]
pub extern "C" fn dps_config_set_client_certificate(
    config: *mut dps_config,
    cert_chain: *const u8,
    cert_chain_len: usize,
    private_key: *const u8,
    private_key_len: usize,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointers, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: `cert_chain` has `cert_chain_len` readable bytes per the C contract.
        let chain = try_ffi!(unsafe { bytes_arg(cert_chain, cert_chain_len) });
        // SAFETY: `private_key` has `private_key_len` readable bytes per the C contract.
        let key = try_ffi!(unsafe { bytes_arg(private_key, private_key_len) });
        let certificate = ClientCertificate {
            chain: chain.to_vec(),
            key: Zeroizing::new(key.to_vec()),
        };
        if let Some(e) = certificate.parse().err() {
            return cfg.refused(e);
        }
        cfg.inner.key = Some(KeyKind::X509(certificate));
        dps_result::DPS_OK
    })
}

/// Replaces the trust anchors added before (by this function or
/// `dps_config_add_trust_anchors_pem`) with the certificates in `pem`: a root list the
/// firmware stores and updates at run time (e.g. a PEM bundle in flash, fetched with a firmware
/// data update) takes effect without rebuilding the library. `pem` is copied.
///
/// @param pem one or more PEM "CERTIFICATE" blocks; may be empty (any pointer, even NULL, with
///        `pem_len` 0) together with `use_public_roots` = true to go back to the built-in public
///        roots alone.
/// @param pem_len its length in bytes.
/// @param use_public_roots also trust the public roots compiled into the library
///        (webpki-roots) when true; trust only `pem` when false.
/// @retval DPS_ERR_INVALID_CERTIFICATE when no certificate can be read from `pem` (or it is
///         empty and `use_public_roots` is false): the anchors are left unchanged.
#[no_mangle]
pub extern "C" fn dps_config_set_trust_anchors_pem(
    config: *mut dps_config,
    pem: *const u8,
    pem_len: usize,
    use_public_roots: bool,
) -> dps_result {
    with_bytes(config, pem, pem_len, |cfg, pem| {
        cfg.set_trust_anchors_pem(pem, use_public_roots)
    })
}

/// Sets the IoT Plug and Play model id the device announces (IoT Central uses it to pick the
/// device template). It is sent inside the registration's `payload` as `"modelId"`, merged with
/// the JSON object of `dps_config_set_payload_json` if one is set (that object must then not
/// carry its own `modelId`, which `dps_client_new` refuses with `DPS_ERR_INVALID_PAYLOAD`).
/// NULL clears it (the default: no model id). The string is copied.
///
/// @param model_id a DTMI such as "dtmi:com:example:Thermostat;1", or NULL.
/// @retval DPS_ERR_INVALID_MODEL_ID when not a DTMI.
#[no_mangle]
pub extern "C" fn dps_config_set_model_id(
    config: *mut dps_config,
    model_id: *const c_char,
) -> dps_result {
    with_optional_str(config, model_id, Config::set_model_id)
}

/// Sets the lifetime of the SAS token made for each connection (default 3600 s, as
/// Microsoft's SDKs). The token's expiry is the clock hook's UNIX time plus this; a longer one
/// tolerates a device clock that lags the service's, a shorter one narrows the window in which
/// a leaked token could be replayed. Not used with X.509 certificates.
///
/// @param seconds from DPS_SAS_TOKEN_LIFETIME_MIN_S (60) to DPS_SAS_TOKEN_LIFETIME_MAX_S
///        (2592000, 30 days).
/// @retval DPS_ERR_INVALID_ARGUMENT when out of that range (the setting is unchanged).
#[no_mangle]
pub extern "C" fn dps_config_set_sas_token_lifetime_s(
    config: *mut dps_config,
    seconds: u32,
) -> dps_result {
    with_config(config, |cfg| cfg.set_sas_token_lifetime_secs(seconds))
}

/// Sets the MQTT keep-alive: when nothing was sent or received for this long, the client
/// sends a PINGREQ, and a server that sends nothing within a further keep-alive is taken as
/// gone (the connection is retried within the deadline). Default 60 s
/// (DPS_KEEP_ALIVE_DEFAULT_S), within the 60 to 240 s Microsoft's SDKs use. There is no
/// "off" (0): without pings a server that went silent is only noticed when the deadline passes.
///
/// @param[in,out] config the configuration.
/// @param seconds from DPS_KEEP_ALIVE_MIN_S (5: more often only spends a metered link) to
///        DPS_KEEP_ALIVE_MAX_S (1767, the longest Azure IoT's MQTT front end honours).
/// @retval DPS_OK on success.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` is NULL.
/// @retval DPS_ERR_INVALID_ARGUMENT when out of that range (the setting is unchanged;
///         `dps_config_result_detail` names the range).
#[no_mangle]
pub extern "C" fn dps_config_set_keep_alive_s(config: *mut dps_config, seconds: u16) -> dps_result {
    with_config(config, |cfg| cfg.set_keep_alive_secs(seconds))
}

/// Sets the largest MQTT packet accepted from the server, fixed header included; it bounds
/// WebSocket frames too. A larger packet ends the connection with
/// DPS_ERR_PROTOCOL_PACKET_TOO_LARGE. The buffer grows only as large as what arrives, so a
/// device short of RAM can lower this to what its registrations need (the assignment and any
/// payload the service returns). Default 99328 bytes (DPS_MAX_PACKET_SIZE_DEFAULT): just above
/// the service's 96 KiB message limit, so that every response it may send fits.
///
/// @param[in,out] config the configuration.
/// @param bytes from DPS_MAX_PACKET_SIZE_MIN (1024) to DPS_MAX_PACKET_SIZE_MAX (268435460,
///        the largest packet MQTT 3.1.1 can express).
/// @retval DPS_OK on success.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` is NULL.
/// @retval DPS_ERR_INVALID_ARGUMENT when out of that range (the setting is unchanged;
///         `dps_config_result_detail` names the range).
#[no_mangle]
pub extern "C" fn dps_config_set_max_packet_size(
    config: *mut dps_config,
    bytes: u32,
) -> dps_result {
    with_config(config, |cfg| cfg.set_max_packet_size(bytes))
}

/// Sets the user agent sent as `&ClientVersion=` in the MQTT user name (percent-encoded),
/// which shows up in the service's diagnostics. Default "dps-mqtt/<version>"; NULL omits the
/// parameter. The string is copied.
///
/// @param user_agent e.g. "contoso-fw/2.4.1 (board-x)": 1 to 256 bytes of UTF-8 without
///        control characters, or NULL.
/// @retval DPS_ERR_INVALID_ARGUMENT when empty, too long or holding control characters.
#[no_mangle]
pub extern "C" fn dps_config_set_client_version(
    config: *mut dps_config,
    user_agent: *const c_char,
) -> dps_result {
    with_optional_str(config, user_agent, Config::set_client_version)
}

// ---- external signing, certificate issuance ------------------------------------------------

/// Uses an external signer instead of a key: the SAS token's HMAC-SHA256 is computed by
/// `sign` (an HSM, TPM or secure element), so the device key never enters the library's
/// memory. Replaces a symmetric or group key set before; setting a key afterwards replaces
/// the callback. `user` is passed back to `sign` and never dereferenced by the library; it
/// must stay valid as long as a client built from this config (which copies the pointer)
/// lives. The callback runs on the thread driving a client: when clients built from this
/// config are driven from several threads, it must be thread-safe.
///
/// @param sign the signing callback (see `dps_sign_fn`).
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` or `sign` is NULL.
#[no_mangle]
pub extern "C" fn dps_config_set_signing_callback(
    config: *mut dps_config,
    sign: dps_sign_fn,
    user: *mut c_void,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        let Some(signer) = CallbackSigner::new(sign, user) else {
            return dps_result::DPS_ERR_INVALID_NULL_POINTER;
        };
        cfg.inner.key = Some(KeyKind::External(alloc::sync::Arc::new(signer)));
        dps_result::DPS_OK
    })
}

/// Sets where the client's unpredictable bytes come from (see `dps_entropy_fn` for what
/// each use needs). Required in a build without `std`, where there is no operating system to
/// ask: `dps_client_new` refuses a config without it (`DPS_ERR_INVALID_CONFIG`); the library
/// never falls back to a constant. Hosted builds use the operating system's source unless
/// this is set. `user` is passed back to `fill` and never dereferenced; it must stay valid as
/// long as a client built from this config lives. With clients driven from several threads,
/// `fill` must be thread-safe.
///
/// @param fill the entropy callback; NULL goes back to the default source.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` is NULL.
#[no_mangle]
pub extern "C" fn dps_config_set_entropy(
    config: *mut dps_config,
    fill: dps_entropy_fn,
    user: *mut c_void,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        cfg.inner.entropy = CallbackEntropy::new(fill, user)
            .map(|source| alloc::sync::Arc::new(source) as crate::platform::entropy::Entropy);
        dps_result::DPS_OK
    })
}

/// Requests an operational certificate (certificate issuance, api-version
/// `2025-07-01-preview`): the PKCS#10 certificate signing request is sent base64-encoded as
/// `"csr"` in the register request, and the issued chain is read with
/// `dps_client_issued_certificate_chain_pem` after the assignment. Its subject CN must be the
/// registration id. Unless an api-version was set explicitly, `2025-07-01-preview` is used
/// while a CSR is set. The CSR is copied; the private key stays with the caller.
///
/// @param der the CSR as DER (a PEM `CERTIFICATE REQUEST` block is accepted too); NULL with
///        `der_len` 0 removes a CSR set before.
/// @retval DPS_ERR_INVALID_CSR when it is not one DER structure (or such a PEM block) of at
///         most 16 KiB.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` is NULL, or `der` is NULL with a
///         non-zero `der_len`.
#[no_mangle]
pub extern "C" fn dps_config_set_csr_der(
    config: *mut dps_config,
    der: *const u8,
    der_len: usize,
) -> dps_result {
    with_bytes(config, der, der_len, |cfg, input| {
        cfg.set_csr((!der.is_null() || !input.is_empty()).then_some(input))
    })
}

// ---- TLS offload (the transport does TLS; the library sends MQTT in the clear) ----

/// Turns TLS offload on or off. With offload on, the transport hooks carry MQTT in the clear
/// because the firmware's transport (a cellular modem's TLS socket, a secure element, the
/// platform's TLS stack) does TLS itself: it must verify the server's certificate against
/// the DPS host name passed to the connect hook, and, for X.509 enrollments, present the
/// client certificate (see `dps_config_set_x509_offloaded`). The default is off in a normal
/// build and on, unchangeable, in a build without the `tls` feature (CMake
/// `DPS_MQTT_TLS=OFF`), which contains no TLS code.
///
/// Trust anchors are the transport's business under offload: a config with offload on and
/// anchors added (`dps_config_add_trust_anchors_pem`) is contradictory, and `dps_client_new`
/// refuses it with DPS_ERR_INVALID_CONFIG rather than silently ignoring the anchors. It
/// refuses a client certificate (`dps_config_set_client_certificate`), an HTTP proxy
/// (`dps_config_set_proxy`: the tunnel must be opened by the transport, before its TLS) and
/// the built-in TCP transport (NULL hooks) the same way. WebSocket (`dps_config_set_websocket`)
/// works under offload: its framing travels inside the transport's TLS.
///
/// @param[in,out] config the configuration.
/// @param[in] enabled true: MQTT in the clear over the hooks; false: TLS inside the library.
/// @retval DPS_OK on success.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` is NULL.
/// @retval DPS_ERR_INVALID_UNSUPPORTED when `enabled` is false in a build without TLS.
#[no_mangle]
pub extern "C" fn dps_config_set_tls_offload(config: *mut dps_config, enabled: bool) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        if !enabled && !cfg!(feature = "tls") {
            return dps_result::DPS_ERR_INVALID_UNSUPPORTED;
        }
        cfg.inner.tls_offload = enabled;
        dps_result::DPS_OK
    })
}

/// Chooses X.509 authentication done by the transport: under TLS offload, the firmware's TLS
/// presents the device's client certificate, and the library sends no password (no SAS
/// token). Replaces a symmetric or group key set before; setting one of those afterwards
/// replaces this choice. The registration id must equal the certificate's subject CN: the
/// library cannot check it (it never sees the certificate), the service refuses a mismatch
/// (DPS_ERR_AUTH_*).
///
/// Requires `dps_config_set_tls_offload(config, true)` (always on in a build without TLS):
/// otherwise `dps_client_new` returns DPS_ERR_INVALID_CONFIG.
///
/// @param[in,out] config the configuration.
/// @retval DPS_OK on success.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` is NULL.
#[no_mangle]
pub extern "C" fn dps_config_set_x509_offloaded(config: *mut dps_config) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        cfg.inner.key = Some(KeyKind::X509ByTransport);
        dps_result::DPS_OK
    })
}

// ---- Connection path: WebSocket and HTTP proxy ----

/// Turns MQTT over WebSocket over TLS on or off (default off): the library upgrades the
/// connection with `GET /$iothub/websocket` (subprotocol `mqtt`) and carries MQTT in binary
/// frames, for networks that only let port 443 out. Unless a port was set with
/// `dps_config_set_endpoint`, the port follows: 443 with WebSocket, 8883 without.
///
/// @param[in,out] config the configuration.
/// @param enabled true for WebSocket, false for MQTT straight over TLS.
/// @retval DPS_OK on success.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` is NULL.
#[no_mangle]
pub extern "C" fn dps_config_set_websocket(config: *mut dps_config, enabled: bool) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        cfg.inner.set_websocket(enabled);
        dps_result::DPS_OK
    })
}

/// Tunnels every connection through an HTTP proxy with `CONNECT host:port` (for MQTT over TLS
/// and over WebSocket alike): the transport's connect hook is called with the proxy's host and
/// port, the TLS server name stays the DPS host. With `username`, the request carries
/// `Proxy-Authorization: Basic`. The strings are copied; the password is zeroized when the
/// config or client is freed and never logged.
///
/// @param[in,out] config the configuration.
/// @param[in] host the proxy's host name or address; NULL removes the proxy (the other
///        arguments are then ignored).
/// @param port the proxy's port.
/// @param[in] username NULL for no authentication; must not contain ':'.
/// @param[in] password NULL for an empty password; needs a `username`.
/// @retval DPS_OK on success.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` is NULL.
/// @retval DPS_ERR_INVALID_ARGUMENT when `host` is neither a DNS name nor an IP address (the
///         rule of `dps_config_set_endpoint`), `port` is 0, `username` contains ':', or a
///         password is given without a user name.
/// @retval DPS_ERR_INVALID_UTF8 when a string is not UTF-8.
/// @retval DPS_ERR_INVALID_UNSUPPORTED when `host` is not NULL in a build without TLS: TLS is
///         offloaded there, and the transport's TLS would wrap the tunnel request meant for the
///         proxy (the transport must tunnel itself, before its TLS).
///
/// A refused tunnel ends the registration with `DPS_ERR_TRANSPORT_PROXY_AUTH` (the proxy wants
/// other credentials: 407, or 401) or `DPS_ERR_TRANSPORT_PROXY` (any other status, which is in
/// `dps_client_result_detail`).
#[no_mangle]
pub extern "C" fn dps_config_set_proxy(
    config: *mut dps_config,
    host: *const c_char,
    port: u16,
    username: *const c_char,
    password: *const c_char,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let cfg = try_ffi!(unsafe { config_mut(config) });
        if host.is_null() {
            cfg.inner.proxy = None;
            return dps_result::DPS_OK;
        }
        if !cfg!(feature = "tls") {
            return dps_result::DPS_ERR_INVALID_UNSUPPORTED;
        }
        // SAFETY: the caller's NUL-terminated strings, borrowed during this call only.
        let host = try_ffi!(unsafe { str_arg(host) });
        // SAFETY: as above.
        let username = try_ffi!(unsafe { optional_str_arg(username) });
        // SAFETY: as above.
        let password = try_ffi!(unsafe { optional_str_arg(password) });
        match crate::layers::proxy::Proxy::new(host, port, username, password) {
            Ok(proxy) => {
                cfg.inner.proxy = Some(proxy);
                dps_result::DPS_OK
            }
            Err(e) => cfg.refused(e),
        }
    })
}

#[cfg(test)]
mod settings_tests;

#[cfg(test)]
mod tls_offload_tests {
    use super::*;

    fn with_config(f: impl FnOnce(*mut dps_config)) {
        let cfg = dps_config_new();
        assert!(!cfg.is_null());
        f(cfg);
        dps_config_free(cfg);
    }

    #[test]
    fn null_configs_are_refused() {
        assert_eq!(
            dps_config_set_tls_offload(core::ptr::null_mut(), true),
            dps_result::DPS_ERR_INVALID_NULL_POINTER
        );
        assert_eq!(
            dps_config_set_x509_offloaded(core::ptr::null_mut()),
            dps_result::DPS_ERR_INVALID_NULL_POINTER
        );
    }

    #[test]
    fn setters_record_the_choice() {
        with_config(|cfg| {
            assert_eq!(dps_config_set_tls_offload(cfg, true), dps_result::DPS_OK);
            assert_eq!(dps_config_set_x509_offloaded(cfg), dps_result::DPS_OK);
            // SAFETY: `cfg` is a live config from dps_config_new, used by this thread only.
            let inner = unsafe { &(*cfg).inner };
            assert!(inner.tls_offload);
            assert!(matches!(inner.key, Some(KeyKind::X509ByTransport)));
        });
    }

    #[test]
    fn offload_is_refused_with_the_built_in_tcp_transport() {
        use crate::ffi::client::{dps_client, dps_client_new};
        let text = |s: &str| alloc::ffi::CString::new(s).unwrap();
        with_config(|cfg| {
            let (scope, id) = (text("0ne00000001"), text("dev-1"));
            let key = text("O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=");
            assert_eq!(
                dps_config_set_id_scope(cfg, scope.as_ptr()),
                dps_result::DPS_OK
            );
            assert_eq!(
                dps_config_set_registration_id(cfg, id.as_ptr()),
                dps_result::DPS_OK
            );
            assert_eq!(
                dps_config_set_symmetric_key(cfg, key.as_ptr()),
                dps_result::DPS_OK
            );
            assert_eq!(dps_config_set_tls_offload(cfg, true), dps_result::DPS_OK);
            let mut client: *mut dps_client = core::ptr::null_mut();
            assert_eq!(
                dps_client_new(cfg, core::ptr::null(), &mut client),
                dps_result::DPS_ERR_INVALID_CONFIG
            );
            assert!(client.is_null());
        });
    }

    #[test]
    fn optional_strings_are_checked_copied_and_cleared_by_null() {
        let text = |s: &str| alloc::ffi::CString::new(s).unwrap();
        with_config(|cfg| {
            let (model, agent, json) = (text("dtmi:com:example:A;1"), text("fw/1"), text("{}"));
            assert_eq!(
                dps_config_set_model_id(cfg, model.as_ptr()),
                dps_result::DPS_OK
            );
            assert_eq!(
                dps_config_set_client_version(cfg, agent.as_ptr()),
                dps_result::DPS_OK
            );
            assert_eq!(
                dps_config_set_payload_json(cfg, json.as_ptr()),
                dps_result::DPS_OK
            );
            let bad = text("not a dtmi");
            assert_eq!(
                dps_config_set_model_id(cfg, bad.as_ptr()),
                dps_result::DPS_ERR_INVALID_MODEL_ID
            );
            // SAFETY: `cfg` is a live config from dps_config_new, used by this thread only.
            let inner = unsafe { &(*cfg).inner };
            assert_eq!(inner.model_id.as_deref(), Some("dtmi:com:example:A;1"));
            assert_eq!(inner.client_version.as_deref(), Some("fw/1"));
            assert_eq!(inner.payload.as_deref(), Some("{}"));
            let null = core::ptr::null();
            assert_eq!(dps_config_set_model_id(cfg, null), dps_result::DPS_OK);
            assert_eq!(dps_config_set_client_version(cfg, null), dps_result::DPS_OK);
            assert_eq!(dps_config_set_payload_json(cfg, null), dps_result::DPS_OK);
            // SAFETY: as above.
            let inner = unsafe { &(*cfg).inner };
            assert!(inner.model_id.is_none() && inner.client_version.is_none());
            assert!(inner.payload.is_none());
        });
        assert_eq!(
            dps_config_set_model_id(core::ptr::null_mut(), core::ptr::null()),
            dps_result::DPS_ERR_INVALID_NULL_POINTER
        );
    }

    #[cfg(feature = "tls")]
    #[test]
    fn offload_can_be_turned_off_again_with_tls_built_in() {
        with_config(|cfg| {
            assert_eq!(dps_config_set_tls_offload(cfg, true), dps_result::DPS_OK);
            assert_eq!(dps_config_set_tls_offload(cfg, false), dps_result::DPS_OK);
            // SAFETY: as above.
            assert!(!unsafe { &(*cfg).inner }.tls_offload);
        });
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_settings_are_unsupported_without_tls() {
        with_config(|cfg| {
            assert_eq!(
                dps_config_set_tls_offload(cfg, false),
                dps_result::DPS_ERR_INVALID_UNSUPPORTED
            );
            let pem = b"-----BEGIN CERTIFICATE-----\n";
            assert_eq!(
                dps_config_add_trust_anchors_pem(cfg, pem.as_ptr(), pem.len(), false),
                dps_result::DPS_ERR_INVALID_UNSUPPORTED
            );
            let key = b"-----BEGIN PRIVATE KEY-----\n";
            assert_eq!(
                dps_config_set_client_certificate(
                    cfg,
                    pem.as_ptr(),
                    pem.len(),
                    key.as_ptr(),
                    key.len()
                ),
                dps_result::DPS_ERR_INVALID_UNSUPPORTED
            );
            let host = alloc::ffi::CString::new("proxy.example").unwrap();
            assert_eq!(
                dps_config_set_proxy(
                    cfg,
                    host.as_ptr(),
                    3128,
                    core::ptr::null(),
                    core::ptr::null()
                ),
                dps_result::DPS_ERR_INVALID_UNSUPPORTED
            );
            assert_eq!(
                dps_config_set_proxy(
                    cfg,
                    core::ptr::null(),
                    0,
                    core::ptr::null(),
                    core::ptr::null()
                ),
                dps_result::DPS_OK
            );
            // SAFETY: as above.
            let inner = unsafe { &(*cfg).inner };
            assert!(inner.tls_offload);
            assert!(inner.key.is_none() && inner.proxy.is_none());
        });
    }
}
