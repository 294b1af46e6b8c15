//! `dps_client`: one device's registration, driven by `dps_client_do_work` (non-blocking) or
//! `dps_client_register` (blocking).
//!
//! A client is not thread-safe: call it from one thread at a time. Callbacks and hooks run on
//! the calling thread inside `dps_client_do_work`/`dps_client_register`; from a log or status
//! callback, the getters may be called, but a call that drives the client returns
//! `DPS_ERR_INVALID_STATE`; from a transport hook or the signing callback, getters return
//! NULL/0 as well (the client is mid-step).

use crate::prelude::*;
use core::cell::{Cell, UnsafeCell};
use core::ffi::{c_char, c_int};
use core::ptr;

use super::config::dps_config;
use super::transport::{dps_transport, HookClock, HookTransport, LogSink, StatusSink};
use super::{guard, guard_value, try_ffi};
use crate::engine::client::{run_blocking, Client, Drive, Step};
use crate::engine::driver::{Time, Transport};
use crate::engine::{Event, Level, Outcome};
use crate::ffi::result::{dps_result, result_to_c, OK_MESSAGE};
#[cfg(feature = "std")]
use crate::hosted::{SystemClock, TcpTransport};

/// Opaque registration client. Create with `dps_client_new`, free with `dps_client_free`.
pub struct dps_client {
    /// Set while a driving call runs, so a re-entrant call from a callback is refused.
    busy: Cell<bool>,
    /// Set while the library works on `inner` and may call the transport hooks or the signing
    /// callback: getters called from there see no client (NULL/0), as a `&` to `inner` would
    /// alias the live `&mut`.
    working: Cell<bool>,
    inner: UnsafeCell<ClientInner>,
}

struct ClientInner {
    client: Client<Box<dyn Transport>, Box<dyn Time>>,
    log: Option<LogSink>,
    status: Option<StatusSink>,
    last_result: dps_result,
    strings: Strings,
}

/// The outcome's strings the getters return.
#[derive(Clone, Copy)]
enum Field {
    AssignedHub,
    DeviceId,
    Substatus,
    Payload,
    OperationId,
    Status,
    Etag,
    CreatedDateTimeUtc,
    LastUpdatedDateTimeUtc,
    ErrorMessage,
    TrackingId,
    Detail,
    IssuedCertificateChainPem,
}

const FIELDS: usize = Field::IssuedCertificateChainPem as usize + 1;

/// Marks a field the outcome does not have (the getter returns NULL).
const ABSENT: u32 = u32::MAX;

/// NUL-terminated copies of the outcome for the getters, valid until the next driving call:
/// one buffer and where each string starts in it, a third of the room that thirteen
/// `Option<CString>`s take in every handle.
struct Strings {
    text: Box<[u8]>,
    starts: [u32; FIELDS],
}

impl Default for Strings {
    fn default() -> Strings {
        Strings {
            text: Box::default(),
            starts: [ABSENT; FIELDS],
        }
    }
}

impl Strings {
    fn from_outcome(o: &Outcome) -> Strings {
        let detail = o.result.as_ref().map(|r| match r {
            Ok(()) => OK_MESSAGE.to_str().unwrap_or_default().to_string(),
            Err(e) => e.to_string(),
        });
        let fields: [(Field, Option<&str>); FIELDS] = [
            (Field::AssignedHub, o.assigned_hub.as_deref()),
            (Field::DeviceId, o.device_id.as_deref()),
            (Field::Substatus, o.substatus.as_deref()),
            (Field::Payload, o.payload.as_deref()),
            (Field::OperationId, o.operation_id.as_deref()),
            (Field::Status, o.status.as_deref()),
            (Field::Etag, o.etag.as_deref()),
            (
                Field::CreatedDateTimeUtc,
                o.created_date_time_utc.as_deref(),
            ),
            (
                Field::LastUpdatedDateTimeUtc,
                o.last_updated_date_time_utc.as_deref(),
            ),
            (Field::ErrorMessage, o.error_message.as_deref()),
            (Field::TrackingId, o.tracking_id.as_deref()),
            (Field::Detail, detail.as_deref()),
            (
                Field::IssuedCertificateChainPem,
                o.issued_certificate_chain_pem.as_deref(),
            ),
        ];
        let len = fields
            .iter()
            .filter_map(|(_, s)| s.map(|s| s.len().saturating_add(1)))
            .fold(0usize, usize::saturating_add);
        let mut text = Vec::with_capacity(len);
        let mut starts = [ABSENT; FIELDS];
        for (field, value) in fields {
            let Some(value) = value else { continue };
            let Ok(start) = u32::try_from(text.len()) else {
                break;
            };
            if let Some(slot) = starts.get_mut(field as usize) {
                *slot = start;
            }
            // C reads up to the first NUL, so one inside the text would cut it short.
            text.extend(value.bytes().filter(|&b| b != 0));
            text.push(0);
        }
        Strings {
            text: text.into_boxed_slice(),
            starts,
        }
    }

    /// The field's NUL-terminated text, or NULL when the outcome does not have it.
    fn as_ptr(&self, field: Field) -> *const c_char {
        let start = self.starts.get(field as usize).copied().unwrap_or(ABSENT);
        usize::try_from(start)
            .ok()
            .filter(|_| start != ABSENT)
            .and_then(|start| self.text.get(start..))
            .map_or(ptr::null(), |text| text.as_ptr().cast())
    }
}

/// Creates a client from a configuration (copied: the config may be freed afterwards).
/// When the configuration is refused, the reason (e.g. naming the registration id and the
/// certificate's CN) is passed to the config's log callback at `DPS_LOG_ERROR`.
///
/// @param transport the firmware's transport hooks (copied), or NULL for the built-in TCP
///        transport over the host's sockets (hosted builds only: without the `std` feature
///        NULL is `DPS_ERR_INVALID_NULL_POINTER`).
/// @param out receives the new client, owned by the caller (free with `dps_client_free`);
///        written only on success.
/// @retval DPS_ERR_INVALID_CONFIG when a required setting is missing (without the `std`
///         feature that includes the clock hooks and the entropy callback), or TLS offload is on
///         (always, in a build without TLS) with the built-in TCP transport (NULL
///         `transport`), which would send MQTT and the SAS token in the clear.
/// @retval DPS_ERR_INVALID_CERTIFICATE_CN when the registration id is not the client
///         certificate's CN.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `config` or `out` is NULL, or a required hook in
///         `transport` is NULL.
#[no_mangle]
pub extern "C" fn dps_client_new(
    config: *const dps_config,
    transport: *const dps_transport,
    out: *mut *mut dps_client,
) -> dps_result {
    guard(|| {
        let oom_before = crate::platform::memory::oom_events();
        if out.is_null() {
            return dps_result::DPS_ERR_INVALID_NULL_POINTER;
        }
        // SAFETY: a non-NULL `config` is a live config per the C contract.
        let Some(cfg) = (unsafe { config.as_ref() }) else {
            return dps_result::DPS_ERR_INVALID_NULL_POINTER;
        };
        // SAFETY: a non-NULL `transport` points to a readable hook table per the C contract.
        let transport: Box<dyn Transport> = match unsafe { transport.as_ref() } {
            // Offload with plain TCP would put MQTT, and the SAS token, on the wire in the clear.
            None if cfg.inner.tls_offload => return dps_result::DPS_ERR_INVALID_CONFIG,
            #[cfg(feature = "std")]
            None => Box::new(TcpTransport::default()),
            // Without an operating system there are no sockets to fall back on.
            #[cfg(not(feature = "std"))]
            None => return dps_result::DPS_ERR_INVALID_NULL_POINTER,
            Some(hooks) => match HookTransport::new(*hooks) {
                Some(t) => Box::new(t),
                None => return dps_result::DPS_ERR_INVALID_NULL_POINTER,
            },
        };
        let time: Box<dyn Time> = match cfg.clock {
            #[cfg(feature = "std")]
            None => Box::new(SystemClock::default()),
            #[cfg(not(feature = "std"))]
            None => {
                if let Some(log) = &cfg.log {
                    log.emit(
                        Level::Error,
                        "dps_client_new: no clock: this build has no operating system to read \
                         one from, so set the clock hooks with dps_config_set_clock",
                    );
                }
                return dps_result::DPS_ERR_INVALID_CONFIG;
            }
            Some(hooks) => match HookClock::new(hooks) {
                Some(c) => Box::new(c),
                None => return dps_result::DPS_ERR_INVALID_NULL_POINTER,
            },
        };
        let settings = match cfg.inner.settings() {
            Ok(settings) => settings,
            Err(e) => {
                // No client exists to hold the detail: the config's log callback gets it.
                if let Some(log) = &cfg.log {
                    log.emit(Level::Error, &format!("dps_client_new: {e}"));
                }
                return e.into();
            }
        };
        let client = try_ffi!(Client::new(settings, transport, time).map_err(dps_result::from));
        let client = Box::new(dps_client {
            busy: Cell::new(false),
            working: Cell::new(false),
            inner: UnsafeCell::new(ClientInner {
                client,
                log: cfg.log,
                status: cfg.status,
                last_result: dps_result::DPS_ERR_INVALID_STATE,
                strings: Strings::default(),
            }),
        });
        let client = try_ffi!(super::new_handle(oom_before, client));
        // SAFETY: `out` is non-NULL and writable per the C contract.
        unsafe { out.write(client) };
        dps_result::DPS_OK
    })
}

/// Frees a client: closes its connection if one is open and zeroizes its keys. NULL is a
/// no-op. Must not be called from inside one of the client's callbacks.
#[no_mangle]
pub extern "C" fn dps_client_free(client: *mut dps_client) {
    guard_value((), || {
        if client.is_null() {
            return;
        }
        // SAFETY: a non-NULL pointer came from `dps_client_new`; only a shared read here, so
        // no unique ownership is claimed while a driving call may still hold a reference.
        if unsafe { &*client }.busy.get() {
            // Freed from inside its own callback: leak rather than free memory in use.
            return;
        }
        // SAFETY: not busy, so no other reference to the client exists; freed once.
        let mut boxed = unsafe { Box::from_raw(client) };
        let inner = boxed.inner.get_mut();
        inner.client.shutdown();
    });
}

/// Borrows a client for a driving call, refusing re-entrant use.
///
/// # Safety
/// `client` must be NULL or a live pointer from `dps_client_new`.
unsafe fn enter<'a>(client: *mut dps_client) -> Result<&'a dps_client, dps_result> {
    // SAFETY: per this function's contract.
    let c = unsafe { client.as_ref() }.ok_or(dps_result::DPS_ERR_INVALID_NULL_POINTER)?;
    if c.busy.replace(true) {
        return Err(dps_result::DPS_ERR_INVALID_STATE);
    }
    Ok(c)
}

/// Borrows a client for a getter.
///
/// # Safety
/// `client` must be NULL or a live pointer from `dps_client_new`.
unsafe fn inner_ref<'a>(client: *const dps_client) -> Result<&'a ClientInner, dps_result> {
    // SAFETY: per this function's contract.
    let c = unsafe { client.as_ref() }.ok_or(dps_result::DPS_ERR_INVALID_NULL_POINTER)?;
    if c.working.get() {
        // Called from a transport hook or the signing callback: a `&mut` is alive.
        return Err(dps_result::DPS_ERR_INVALID_STATE);
    }
    // SAFETY: no `&mut` is alive: log and status callbacks run after `step` released it.
    Ok(unsafe { &*c.inner.get() })
}

impl dps_client {
    /// One step: start an attempt if none runs, do the work possible now, then deliver events
    /// to the callbacks with no mutable borrow alive.
    fn step(&self) -> Step {
        let (step, events, log, status) = {
            // SAFETY: `busy` is set by `enter`, so this is the only live borrow of `inner`.
            let inner = unsafe { &mut *self.inner.get() };
            self.working.set(true);
            let step = inner.step();
            self.working.set(false);
            let mut events = Vec::new();
            while let Some(e) = inner.client.poll_event() {
                events.push(e);
            }
            (step, events, inner.log, inner.status)
        };
        for event in events {
            match event {
                Event::Log(level, msg) => {
                    if let Some(sink) = &log {
                        sink.emit(level, &msg);
                    }
                }
                Event::Status(s) => {
                    if let Some(sink) = &status {
                        sink.emit(s);
                    }
                }
            }
        }
        step
    }
}

/// `dps_client_register`'s view of a client for the blocking loop: each step and each wait
/// borrows the client on its own, so the callbacks between them run with no borrow alive.
struct Blocking<'a>(&'a dps_client);

impl Drive for Blocking<'_> {
    fn step(&mut self) -> Step {
        self.0.step()
    }

    fn wait(&mut self, timeout_ms: u64) {
        // SAFETY: `busy` is set by `enter`, so this is the only live borrow of `inner`.
        let inner = unsafe { &mut *self.0.inner.get() };
        self.0.working.set(true);
        inner.client.wait(timeout_ms);
        self.0.working.set(false);
    }
}

impl ClientInner {
    /// One step of the client (starting an attempt when none runs), then the getters' copies.
    fn step(&mut self) -> Step {
        let step = self.client.step();
        self.last_result = match step {
            Step::Finished(result) => result_to_c(result),
            Step::Pending { .. } => dps_result::DPS_PENDING,
        };
        self.strings = Strings::from_outcome(self.client.outcome());
        step
    }
}

/// Does all the work possible now without blocking (except inside the built-in transport's
/// connect). The first call, and the first call after an attempt finished, starts a new
/// attempt: that is how a failed or timed-out registration is retried on the same handle.
///
/// @param next_call_ms receives, while `DPS_PENDING` is returned, the longest time to wait
///        before calling again (call sooner when the connection becomes readable). May be NULL.
/// @return `DPS_PENDING` while in progress, `DPS_OK` once assigned, or the error that ended
///         the attempt.
/// @retval DPS_ERR_INVALID_STATE when called from inside this client's callback.
#[no_mangle]
pub extern "C" fn dps_client_do_work(
    client: *mut dps_client,
    next_call_ms: *mut u32,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let c = try_ffi!(unsafe { enter(client) });
        let step = c.step();
        c.busy.set(false);
        match step {
            Step::Pending { next_call_ms: ms } => {
                if !next_call_ms.is_null() {
                    // SAFETY: non-NULL and writable per the C contract.
                    unsafe { next_call_ms.write(u32::try_from(ms).unwrap_or(u32::MAX)) };
                }
                dps_result::DPS_PENDING
            }
            Step::Finished(result) => result_to_c(result),
        }
    })
}

/// Runs a whole registration attempt, blocking until it is assigned, fails, or its deadline
/// passes. Waits through the transport's `wait` hook (or short sleeps without one). Calling it
/// again after a failure starts a new attempt.
///
/// @return `DPS_OK` once assigned, or the error that ended the attempt.
#[no_mangle]
pub extern "C" fn dps_client_register(client: *mut dps_client) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        let c = try_ffi!(unsafe { enter(client) });
        let result = result_to_c(run_blocking(&mut Blocking(c)));
        c.busy.set(false);
        result
    })
}

/// Whether bytes are waiting for the transport to accept them (its `send` hook returned
/// `DPS_IO_WOULD_BLOCK`): an event loop should then wake on writability as well as
/// readability before the next `dps_client_do_work`. False for NULL.
#[no_mangle]
pub extern "C" fn dps_client_wants_write(client: *const dps_client) -> bool {
    guard_value(false, || {
        // SAFETY: the caller's pointer, valid per the C contract.
        unsafe { inner_ref(client) }.is_ok_and(|i| i.client.wants_write())
    })
}

/// The socket (a file descriptor) of the built-in TCP transport's connection, from the start of
/// its non-blocking connect (writable once connected), or -1: before connecting, while the
/// server's name resolves (call again within the time `dps_client_do_work` returned), after the
/// connection closed, with the firmware's transport hooks, on builds without the built-in
/// transport, on non-unix systems, and for NULL. An event loop
/// waits on it for readability (and writability while `dps_client_wants_write`), or for the
/// time `dps_client_do_work` returned, whichever comes first, then calls `dps_client_do_work`
/// again. The descriptor may change at each `dps_client_do_work` (a reconnect): read it again
/// after each call. The client owns it: never read, write or close it.
#[no_mangle]
pub extern "C" fn dps_client_socket(client: *const dps_client) -> c_int {
    guard_value(-1, || {
        // SAFETY: the caller's pointer, valid per the C contract.
        unsafe { inner_ref(client) }
            .ok()
            .and_then(|i| i.client.socket())
            .unwrap_or(-1)
    })
}

/// The result of the last driving call: `DPS_PENDING` while an attempt runs, `DPS_OK` when the
/// last attempt was assigned, its error otherwise, `DPS_ERR_INVALID_STATE` before any attempt
/// and when called from inside a transport hook or the signing callback (the client is
/// mid-step there). NULL gives `DPS_ERR_INVALID_NULL_POINTER`.
#[no_mangle]
pub extern "C" fn dps_client_last_result(client: *const dps_client) -> dps_result {
    guard(|| {
        // SAFETY: the caller's pointer, valid per the C contract.
        match unsafe { inner_ref(client) } {
            Ok(inner) => inner.last_result,
            Err(code) => code,
        }
    })
}

/// Reads one cached string of the outcome; see the getters' documentation.
fn string_field(client: *const dps_client, field: Field) -> *const c_char {
    guard_value(ptr::null(), || {
        // SAFETY: the caller's pointer, valid per the C contract.
        unsafe { inner_ref(client) }.map_or(ptr::null(), |i| i.strings.as_ptr(field))
    })
}

/// The IoT hub the device was assigned to (`registrationState.assignedHub`).
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_assigned_hub(client: *const dps_client) -> *const c_char {
    string_field(client, Field::AssignedHub)
}

/// The device id on the assigned hub (`registrationState.deviceId`).
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_device_id(client: *const dps_client) -> *const c_char {
    string_field(client, Field::DeviceId)
}

/// The assignment's substatus (initialAssignment, deviceDataMigrated, deviceDataReset,
/// reprovisionedToInitialAssignment).
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_substatus(client: *const dps_client) -> *const c_char {
    string_field(client, Field::Substatus)
}

/// The payload returned with the assignment, as JSON text.
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_payload_json(client: *const dps_client) -> *const c_char {
    string_field(client, Field::Payload)
}

/// The operation id of the registration.
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_operation_id(client: *const dps_client) -> *const c_char {
    string_field(client, Field::OperationId)
}

/// The last registration status the service reported (assigning, assigned, failed,
/// disabled, unassigned).
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_registration_status(client: *const dps_client) -> *const c_char {
    string_field(client, Field::Status)
}

/// The registration state's etag.
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_etag(client: *const dps_client) -> *const c_char {
    string_field(client, Field::Etag)
}

/// When the registration record was created: the registration state's `createdDateTimeUtc`,
/// as the service sent it (ISO 8601, e.g. `2026-12-02T03:04:05.6789012Z`).
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_created_date_time_utc(client: *const dps_client) -> *const c_char {
    string_field(client, Field::CreatedDateTimeUtc)
}

/// When the registration record last changed: the registration state's
/// `lastUpdatedDateTimeUtc`, as the service sent it (ISO 8601).
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_last_updated_date_time_utc(
    client: *const dps_client,
) -> *const c_char {
    string_field(client, Field::LastUpdatedDateTimeUtc)
}

/// The service's error message (from registrationState or the error envelope).
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_error_message(client: *const dps_client) -> *const c_char {
    string_field(client, Field::ErrorMessage)
}

/// The tracking id of the service's error envelope, for support requests.
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_tracking_id(client: *const dps_client) -> *const c_char {
    string_field(client, Field::TrackingId)
}

/// A human-readable description of the last attempt's result, e.g. why it failed.
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when the service did not send it (or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_result_detail(client: *const dps_client) -> *const c_char {
    string_field(client, Field::Detail)
}

/// The service's errorCode (e.g. 401002), or 0 when it sent none.
#[no_mangle]
pub extern "C" fn dps_client_error_code(client: *const dps_client) -> i64 {
    guard_value(0, || {
        // SAFETY: the caller's pointer, valid per the C contract.
        unsafe { inner_ref(client) }
            .ok()
            .and_then(|i| i.client.outcome().error_code)
            .unwrap_or(0)
    })
}

/// The HTTP-like status of the last response (200, 202, 401, 429, ...), or 0 before any.
#[no_mangle]
pub extern "C" fn dps_client_http_status(client: *const dps_client) -> u32 {
    guard_value(0, || {
        // SAFETY: the caller's pointer, valid per the C contract.
        unsafe { inner_ref(client) }
            .ok()
            .and_then(|i| i.client.outcome().http_status)
            .map_or(0, u32::from)
    })
}

/// The retry-after of the last response in milliseconds (after clamping), or -1 when it
/// carried none.
#[no_mangle]
pub extern "C" fn dps_client_retry_after_ms(client: *const dps_client) -> i64 {
    guard_value(-1, || {
        // SAFETY: the caller's pointer, valid per the C contract.
        unsafe { inner_ref(client) }
            .ok()
            .and_then(|i| i.client.outcome().retry_after_ms)
            .map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX))
    })
}

// ---- certificate issuance --------------------------------------------------------------------

/// The certificate chain the service issued for the CSR set with `dps_config_set_csr_der`, as
/// PEM text: one `CERTIFICATE` block per certificate, the device's own (leaf) first, then the
/// issuing CAs, as the service listed them (`registrationState.issuedCertificateChain`).
///
/// Valid until the next `dps_client_do_work`/`dps_client_register` on this client or
/// `dps_client_free`; NULL when none was issued (no CSR, not assigned, or `client` is NULL).
#[no_mangle]
pub extern "C" fn dps_client_issued_certificate_chain_pem(
    client: *const dps_client,
) -> *const c_char {
    string_field(client, Field::IssuedCertificateChainPem)
}

// ---- stored assignment -----------------------------------------------------------------------

/// The outcome of a client's last attempt, for `dps_client_assignment_save`.
///
/// # Safety
/// `client` must be NULL or a live pointer from `dps_client_new`.
/// `DPS_ERR_INVALID_NULL_POINTER` for NULL, `DPS_ERR_INVALID_STATE` while the client is mid-step
/// (from inside a transport hook or the signing callback).
pub(crate) unsafe fn client_outcome<'a>(
    client: *const dps_client,
) -> Result<&'a Outcome, dps_result> {
    // SAFETY: per this function's contract.
    unsafe { inner_ref(client) }.map(|i| i.client.outcome())
}
