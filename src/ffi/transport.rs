//! The firmware's hooks: transport, clock, log and status callbacks.

use crate::prelude::*;
use alloc::ffi::CString;
use core::ffi::{c_char, c_int, c_void};

use super::result::kind_from_u32;
use crate::engine::driver::{Io, Time, Transport};
use crate::engine::{Level, Status};
use crate::error::{Error, ErrorClass, ErrorKind};

/// Returned by the `send` and `recv` hooks when nothing can be transferred right now.
pub const DPS_IO_WOULD_BLOCK: isize = -2;
/// Returned by the `send` and `recv` hooks on a transport error (any other negative value
/// is treated the same way, except the negated `DPS_ERR_TLS_*` codes: see `dps_transport`).
pub const DPS_IO_ERROR: isize = -1;

/// Transport hooks supplied by the firmware. The library copies this table; `user` is passed
/// back as the first argument of every hook and is never dereferenced by the library.
///
/// Hooks are called only from inside `dps_client_do_work` / `dps_client_register`, on the
/// calling thread, and must not call back into the same client.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct dps_transport {
    /// Passed to every hook.
    pub user: *mut c_void,
    /// Opens a connection to `host:port`. May return before the connection is up (non-blocking
    /// connect): then `send`/`recv` return `DPS_IO_WOULD_BLOCK` until it is. Returns 0 on
    /// success or in progress, negative on failure. Required.
    pub connect:
        Option<unsafe extern "C" fn(user: *mut c_void, host: *const c_char, port: u16) -> c_int>,
    /// Sends up to `len` bytes. Returns the count sent (> 0), `DPS_IO_WOULD_BLOCK`, or a
    /// negative error. Required.
    ///
    /// With TLS offload, `send` and `recv` may return a negated `DPS_ERR_TLS_*` code (e.g.
    /// `-(ptrdiff_t)DPS_ERR_TLS_CERT_UNTRUSTED`) when the transport's own TLS failed: the
    /// attempt then ends with that code, without reconnecting, as when the library's TLS fails.
    pub send: Option<unsafe extern "C" fn(user: *mut c_void, buf: *const u8, len: usize) -> isize>,
    /// Receives up to `len` bytes into `buf`. Returns the count (> 0), 0 when the peer closed
    /// the connection, `DPS_IO_WOULD_BLOCK`, or a negative error. Required.
    pub recv: Option<unsafe extern "C" fn(user: *mut c_void, buf: *mut u8, len: usize) -> isize>,
    /// Closes the connection opened by `connect`. Called once per successful `connect`.
    /// Required.
    pub close: Option<unsafe extern "C" fn(user: *mut c_void)>,
    /// Optional: blocks until the connection is readable (or writable when `want_write`) or
    /// `timeout_ms` passed. Used only by `dps_client_register`; when NULL it sleeps in short
    /// steps instead.
    pub wait: Option<unsafe extern "C" fn(user: *mut c_void, timeout_ms: u32, want_write: bool)>,
    /// Optional: says what went wrong. Called right after `connect` returned a negative value
    /// or `send`/`recv` a negative value other than `DPS_IO_WOULD_BLOCK`, it writes up to
    /// `len` bytes of text (UTF-8, no NUL needed, e.g. `strerror(errno)` saved at the failure)
    /// to `buf` and returns how many it wrote; 0 when it has nothing to say. The library keeps
    /// the first `DPS_ERROR_DETAIL_MAX` bytes (cut at a character boundary, control characters
    /// dropped) and puts them in the log, in `dps_client_result_detail` and in the CLI's JSON.
    /// NULL (as in a zero-initialised table) means no detail.
    pub error_detail:
        Option<unsafe extern "C" fn(user: *mut c_void, buf: *mut c_char, len: usize) -> usize>,
}

/// The most bytes of a transport hook's error detail the library keeps (`error_detail`).
pub const DPS_ERROR_DETAIL_MAX: usize = 128;

/// Clock hooks. When not set, the library uses the host's monotonic and system clocks.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct dps_clock {
    /// Passed to every hook.
    pub user: *mut c_void,
    /// Milliseconds from any fixed point; must not go backwards. Required.
    pub now_ms: Option<unsafe extern "C" fn(user: *mut c_void) -> u64>,
    /// Seconds since 1970-01-01 UTC, for SAS token expiry and certificate validity. Required.
    pub unix_seconds: Option<unsafe extern "C" fn(user: *mut c_void) -> u64>,
}

/// Progress reported to the status callback.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum dps_status {
    DPS_STATUS_IDLE = 0,
    DPS_STATUS_CONNECTING = 1,
    DPS_STATUS_CONNECTED = 2,
    DPS_STATUS_REGISTERING = 3,
    DPS_STATUS_ASSIGNING = 4,
    DPS_STATUS_THROTTLED = 5,
    DPS_STATUS_RECONNECTING = 6,
    DPS_STATUS_ASSIGNED = 7,
    DPS_STATUS_FAILED = 8,
}

/// Log severity, most severe first.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum dps_log_level {
    DPS_LOG_ERROR = 1,
    DPS_LOG_WARN = 2,
    DPS_LOG_INFO = 3,
    DPS_LOG_DEBUG = 4,
}

impl From<Status> for dps_status {
    fn from(status: Status) -> dps_status {
        match status {
            Status::Idle => dps_status::DPS_STATUS_IDLE,
            Status::Connecting => dps_status::DPS_STATUS_CONNECTING,
            Status::Connected => dps_status::DPS_STATUS_CONNECTED,
            Status::Registering => dps_status::DPS_STATUS_REGISTERING,
            Status::Assigning => dps_status::DPS_STATUS_ASSIGNING,
            Status::Throttled => dps_status::DPS_STATUS_THROTTLED,
            Status::Reconnecting => dps_status::DPS_STATUS_RECONNECTING,
            Status::Assigned => dps_status::DPS_STATUS_ASSIGNED,
            Status::Failed => dps_status::DPS_STATUS_FAILED,
        }
    }
}

impl From<Level> for dps_log_level {
    fn from(level: Level) -> dps_log_level {
        match level {
            Level::Error => dps_log_level::DPS_LOG_ERROR,
            Level::Warn => dps_log_level::DPS_LOG_WARN,
            Level::Info => dps_log_level::DPS_LOG_INFO,
            Level::Debug => dps_log_level::DPS_LOG_DEBUG,
        }
    }
}

/// Receives log lines. `message` is valid only during the call. Never receives a key or a
/// token.
pub type dps_log_callback =
    Option<unsafe extern "C" fn(user: *mut c_void, level: dps_log_level, message: *const c_char)>;

/// Receives progress changes.
pub type dps_status_callback = Option<unsafe extern "C" fn(user: *mut c_void, status: dps_status)>;

/// Longest a `recv`/`send` count may be trusted: a buggy hook returning more than it was given
/// is clamped rather than believed. `detail` asks the hooks what went wrong, for a failure.
fn clamp_count(n: isize, len: usize, detail: impl FnOnce() -> Option<String>) -> Io {
    match n {
        DPS_IO_WOULD_BLOCK => Io::WouldBlock,
        0 => Io::Closed,
        n if n > 0 => Io::Done(n.unsigned_abs().min(len)),
        n => match (tls_failure(n), detail()) {
            (Some(code), None) => Io::Fatal(Error::new(code, "the transport's TLS failed")),
            (Some(code), Some(why)) => Io::Fatal(Error::new(
                code,
                format!("the transport's TLS failed: {why}"),
            )),
            (None, None) => Io::Failed(format!("transport hook returned {n}")),
            (None, Some(why)) => Io::Failed(format!("transport hook returned {n}: {why}")),
        },
    }
}

/// What a hook's `error_detail` wrote, made safe to show: cut to what was written (at most
/// `DPS_ERROR_DETAIL_MAX` bytes) and at a character boundary, control characters dropped.
/// `None` when nothing printable is left.
fn clean_detail(buf: &[u8], written: usize) -> Option<String> {
    let bytes = buf.get(..written.min(buf.len())).unwrap_or_default();
    let text = match core::str::from_utf8(bytes) {
        Ok(text) => text,
        // Cut where the valid prefix ends: a character split by the limit, or bad bytes.
        Err(e) => core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or_default())
            .unwrap_or_default(),
    };
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

/// The `DPS_ERR_TLS_*` code whose negation a hook returned, if it did.
fn tls_failure(n: isize) -> Option<ErrorKind> {
    let kind = kind_from_u32(u32::try_from(n.checked_neg()?).ok()?)?;
    (kind.class() == ErrorClass::Tls).then_some(kind)
}

/// The C hook table seen as a `Transport`. Built only from a table whose required hooks were
/// checked to be non-NULL.
pub(crate) struct HookTransport {
    hooks: dps_transport,
}

impl HookTransport {
    /// `None` when a required hook is NULL.
    pub(crate) fn new(hooks: dps_transport) -> Option<HookTransport> {
        if hooks.connect.is_none()
            || hooks.send.is_none()
            || hooks.recv.is_none()
            || hooks.close.is_none()
        {
            return None;
        }
        Some(HookTransport { hooks })
    }

    /// The `error_detail` hook's text, if it has one, for the failure a hook just returned.
    fn detail(&self) -> Option<String> {
        let hook = self.hooks.error_detail?;
        let mut buf = [0u8; DPS_ERROR_DETAIL_MAX];
        // SAFETY: the hook is the firmware's function for this table; `buf` is writable for
        // `buf.len()` bytes for the duration of the call.
        let written = unsafe { hook(self.hooks.user, buf.as_mut_ptr().cast(), buf.len()) };
        clean_detail(&buf, written)
    }
}

impl Transport for HookTransport {
    fn connect(&mut self, host: &str, port: u16) -> Result<(), String> {
        let Some(connect) = self.hooks.connect else {
            return Err("no connect hook".into());
        };
        let host = CString::new(host).map_err(|_| "host name contains NUL".to_owned())?;
        // SAFETY: the hook is the firmware's function for this table; `host` is a valid
        // NUL-terminated string that outlives the call.
        let rc = unsafe { connect(self.hooks.user, host.as_ptr(), port) };
        if rc >= 0 {
            return Ok(());
        }
        Err(match self.detail() {
            Some(why) => format!("connect hook returned {rc}: {why}"),
            None => format!("connect hook returned {rc}"),
        })
    }

    fn send(&mut self, data: &[u8]) -> Io {
        let Some(send) = self.hooks.send else {
            return Io::Failed("no send hook".into());
        };
        // SAFETY: `data` is a valid slice for the duration of the call.
        let n = unsafe { send(self.hooks.user, data.as_ptr(), data.len()) };
        match clamp_count(n, data.len(), || self.detail()) {
            // A send of 0 bytes is "nothing now", not a close.
            Io::Closed => Io::WouldBlock,
            other => other,
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Io {
        let Some(recv) = self.hooks.recv else {
            return Io::Failed("no recv hook".into());
        };
        // SAFETY: `buf` is a valid, writable slice for the duration of the call.
        let n = unsafe { recv(self.hooks.user, buf.as_mut_ptr(), buf.len()) };
        clamp_count(n, buf.len(), || self.detail())
    }

    fn close(&mut self) {
        if let Some(close) = self.hooks.close {
            // SAFETY: calling the firmware's close hook with its own user pointer.
            unsafe { close(self.hooks.user) };
        }
    }

    fn wait(&mut self, timeout_ms: u64, want_write: bool) {
        let timeout = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        match self.hooks.wait {
            // SAFETY: calling the firmware's optional wait hook with its own user pointer.
            Some(wait) => unsafe { wait(self.hooks.user, timeout, want_write) },
            #[cfg(feature = "std")]
            None => std::thread::sleep(std::time::Duration::from_millis(timeout_ms.min(10))),
            // No OS to sleep on: return at once, and the blocking loop polls again.
            #[cfg(not(feature = "std"))]
            None => {}
        }
    }
}

/// The C clock hooks seen as `Time`; keeps the monotonic value from going backwards.
pub(crate) struct HookClock {
    hooks: dps_clock,
    last_ms: u64,
}

impl HookClock {
    pub(crate) fn new(hooks: dps_clock) -> Option<HookClock> {
        if hooks.now_ms.is_none() || hooks.unix_seconds.is_none() {
            return None;
        }
        Some(HookClock { hooks, last_ms: 0 })
    }
}

impl Time for HookClock {
    fn now_ms(&mut self) -> u64 {
        if let Some(now) = self.hooks.now_ms {
            // SAFETY: calling the firmware's clock hook with its own user pointer.
            let t = unsafe { now(self.hooks.user) };
            self.last_ms = self.last_ms.max(t);
        }
        self.last_ms
    }

    fn unix_seconds(&mut self) -> u64 {
        match self.hooks.unix_seconds {
            // SAFETY: calling the firmware's clock hook with its own user pointer.
            Some(unix) => unsafe { unix(self.hooks.user) },
            None => 0,
        }
    }
}

/// A log callback with its userdata and the most verbose level wanted.
#[derive(Clone, Copy)]
pub(crate) struct LogSink {
    pub(crate) callback: dps_log_callback,
    pub(crate) user: *mut c_void,
    pub(crate) max_level: dps_log_level,
}

impl LogSink {
    pub(crate) fn emit(&self, level: Level, message: &str) {
        let Some(cb) = self.callback else { return };
        let level = dps_log_level::from(level);
        if level > self.max_level {
            return;
        }
        let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: calling the firmware's log callback with its own user pointer and a string
        // valid for the duration of the call.
        unsafe { cb(self.user, level, text.as_ptr()) };
    }
}

#[derive(Clone, Copy)]
pub(crate) struct StatusSink {
    pub(crate) callback: dps_status_callback,
    pub(crate) user: *mut c_void,
}

impl StatusSink {
    pub(crate) fn emit(&self, status: Status) {
        if let Some(cb) = self.callback {
            // SAFETY: calling the firmware's status callback with its own user pointer.
            unsafe { cb(self.user, status.into()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::result::dps_result;
    use super::*;

    fn fatal_code(io: Io) -> Option<dps_result> {
        match io {
            Io::Fatal(e) => Some(e.kind.into()),
            _ => None,
        }
    }

    #[test]
    fn negated_tls_codes_end_the_attempt_with_that_code() {
        for code in [
            dps_result::DPS_ERR_TLS_HANDSHAKE,
            dps_result::DPS_ERR_TLS_CERT_UNTRUSTED,
            dps_result::DPS_ERR_TLS_CERT_NAME_MISMATCH,
        ] {
            let io = clamp_count(-(code as isize), 10, || None);
            assert_eq!(fatal_code(io), Some(code));
        }
    }

    #[test]
    fn other_negative_values_are_transport_errors() {
        let not_tls = [
            DPS_IO_ERROR,
            -4,
            -(dps_result::DPS_ERR_AUTH_UNAUTHORIZED as isize),
            -399,
            isize::MIN,
        ];
        for n in not_tls {
            assert!(matches!(clamp_count(n, 10, || None), Io::Failed(_)), "{n}");
        }
        assert_eq!(clamp_count(DPS_IO_WOULD_BLOCK, 10, || None), Io::WouldBlock);
    }

    #[test]
    fn a_failure_carries_the_hooks_detail() {
        let detail = || Some("Connection refused".to_owned());
        assert_eq!(
            clamp_count(DPS_IO_ERROR, 10, detail),
            Io::Failed("transport hook returned -1: Connection refused".into())
        );
        let io = clamp_count(
            -(dps_result::DPS_ERR_TLS_CERT_UNTRUSTED as isize),
            10,
            detail,
        );
        assert!(
            matches!(&io, Io::Fatal(e) if e.detail == "the transport's TLS failed: Connection refused"),
            "{io:?}"
        );
        let asked = core::cell::Cell::new(false);
        let _ = clamp_count(5, 10, || {
            asked.set(true);
            None
        });
        assert_eq!(clamp_count(DPS_IO_WOULD_BLOCK, 10, detail), Io::WouldBlock);
        assert!(!asked.get(), "the detail is asked for failures only");
    }

    #[test]
    fn details_are_cut_at_a_character_and_lose_control_characters() {
        assert_eq!(clean_detail(b"refused\r\n", 9).as_deref(), Some("refused"));
        assert_eq!(
            clean_detail(b"a\x1b[31mb\tc", 11).as_deref(),
            Some("a[31mbc")
        );
        // "é" is two bytes: a cut inside it drops it.
        assert_eq!(
            clean_detail("caf\u{e9}".as_bytes(), 4).as_deref(),
            Some("caf")
        );
        assert_eq!(clean_detail(b"ok\xff\xfe", 4).as_deref(), Some("ok"));
        assert_eq!(clean_detail(b"abc", usize::MAX).as_deref(), Some("abc"));
        assert_eq!(clean_detail(b"\n\n", 2), None);
        assert_eq!(clean_detail(b"x", 0), None);
    }
}
