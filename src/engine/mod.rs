//! The registration state machine, sans-IO, and the client façade that drives it.
//!
//! The engine never touches a socket or a clock. Its owner (the `Client`, or a test) feeds it:
//! - `start(now)` to begin an attempt (again after a failure: same handle, fresh attempt);
//! - `poll_action()` → `Action::Connect` / `Action::Close` for the transport;
//! - `on_connected(now)`, `on_connection_lost(now, error)` for what the transport reported;
//! - `handle_input(now, bytes)` for bytes received;
//! - `take_transmit()` for bytes to send;
//! - `next_timeout()` / `handle_timeout(now)` for timers;
//! - `poll_event()` for status changes and log lines.
//!
//! Times are milliseconds of the caller's monotonic clock; wall-clock seconds (for SAS expiry
//! and certificate validity) come in through `set_unix_time`.
//!
//! One file per part: `attempt` (the registration's requests and responses), `link` (the
//! connection and its reconnects), `retry` (the retry policy, pure), `outcome` (what the
//! service said), `client` (the façade that owns an engine, a transport and a clock) and `io`
//! (the transport and clock contracts).

mod attempt;
pub mod client;
mod io;
mod link;
mod outcome;
mod retry;

pub use client::{Client, Drive, Step};
pub use io::{Io, Time, Transport};
pub use outcome::Outcome;

/// The transport and clock contracts under the name the C ABI and hosted code import them by.
pub mod driver {
    pub use super::io::{Io, Time, Transport};
}

use crate::prelude::*;
use alloc::collections::VecDeque;

use crate::dps::sas::{HexCase, Signer};
use crate::error::{Error, ErrorKind, Result};
use crate::settings::{ApiVersion, ClientVersion, EndpointHost, IdScope, Payload, RegistrationId};
use attempt::Attempt;
use link::{Dials, Link};
use retry::Retry;
use zeroize::Zeroizing;

/// How the device proves who it is.
pub enum Credential {
    /// A SAS token signed per connection by this signer (device key, group-derived key, or an
    /// external signer).
    Sas(Box<dyn Signer + Send>),
    /// TLS client certificate: no password is sent.
    X509,
}

/// The deadline of one registration attempt unless `dps_config_set_timeout_ms` sets one, in
/// milliseconds: room for a few reconnects and the service's usual assignment times.
pub const DPS_TIMEOUT_DEFAULT_MS: u32 = 90_000;

/// Timers and limits; the defaults follow the service's published limits and the SDKs.
#[derive(Clone, Debug)]
pub struct Timing {
    /// One overall deadline per attempt, covering connects, reconnects, waits and polls.
    pub deadline_ms: u64,
    pub keep_alive_secs: u16,
    /// Lifetime of each SAS token.
    pub sas_ttl_secs: u64,
    /// Wait used when a 202/429/5xx response carries no usable retry-after.
    pub retry_after_floor_ms: u64,
    /// Upper clamp for a retry-after the server sends.
    pub retry_after_max_ms: u64,
    /// Exponential back-off for reconnects and for throttling without retry-after. Failed
    /// connections are retried until the deadline: it is the only cap.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Status polls: at most `poll_window_count` in any `poll_window_ms` (service: 5 per 10 s).
    pub poll_window_count: usize,
    pub poll_window_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            deadline_ms: u64::from(DPS_TIMEOUT_DEFAULT_MS),
            keep_alive_secs: 60,
            sas_ttl_secs: 3600,
            retry_after_floor_ms: 2_000,
            retry_after_max_ms: 120_000,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 30_000,
            poll_window_count: 5,
            poll_window_ms: 10_000,
        }
    }
}

/// Everything the engine needs to run registrations, each setting already validated (see
/// `crate::settings`; `Config::settings` builds it).
pub struct Settings {
    pub id_scope: IdScope,
    pub registration_id: RegistrationId,
    pub credential: Credential,
    pub host: EndpointHost,
    pub port: u16,
    pub api_version: ApiVersion,
    pub client_version: Option<ClientVersion>,
    /// Custom JSON sent as `payload` in the register body.
    pub payload: Option<Payload>,
    pub framing: crate::layers::FramingFactory,
    /// WebSocket framing and an HTTP proxy: how the server is reached.
    pub route: crate::layers::Route,
    pub timing: Timing,
    pub max_packet_size: usize,
    pub hex_case: HexCase,
    /// Base64 DER PKCS#10 CSR sent as `csr` (certificate issuance).
    pub csr_b64: Option<String>,
    /// WebSocket masking keys and the seed of the back-off jitter.
    pub entropy: crate::platform::entropy::Entropy,
}

/// What the engine asks its transport to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Connect { host: String, port: u16 },
    Close,
}

/// Progress of an attempt, reported to the status callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Idle,
    Connecting,
    Connected,
    Registering,
    Assigning,
    Throttled,
    Reconnecting,
    Assigned,
    Failed,
}

/// Log severity, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Status(Status),
    Log(Level, String),
}

pub struct Engine {
    attempt: Attempt,
    link: Link,
    /// This attempt's connections: how many, whether one reached the service, the last cause.
    dials: Dials,
    retry: Retry,
    unix_now: u64,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    /// Zeroizing: with TLS offload it holds the MQTT CONNECT (SAS token) in the clear.
    transmit: Zeroizing<Vec<u8>>,
    outcome: Outcome,
    /// Last, so that it drops after the link: the TLS configuration in it frees the shared
    /// trust store's entry only once no connection holds the store.
    settings: Settings,
}

impl Engine {
    /// Takes validated settings; nothing is sent until `start`.
    pub fn new(settings: Settings) -> Result<Engine> {
        let retry = Retry::for_device(&settings.registration_id);
        Ok(Engine {
            settings,
            attempt: Attempt::new(),
            link: Link::Down,
            dials: Dials::default(),
            retry,
            unix_now: 0,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            transmit: Zeroizing::new(Vec::new()),
            outcome: Outcome::default(),
        })
    }

    /// Begins a registration attempt. Allowed when idle or after a finished attempt; the
    /// previous outcome is cleared (kept when the start fails).
    pub fn start(&mut self, now: u64) -> Result<()> {
        if self.is_running() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "a registration is already running",
            ));
        }
        // Jitter must differ between devices that start together (after a power cut), so the
        // entropy source seeds it.
        let entropy = crate::platform::entropy::seed(self.settings.entropy.as_ref())?;
        self.outcome = Outcome::default();
        self.attempt.start(now);
        self.dials = Dials::started_at(now);
        self.retry.start(&self.settings.timing, now, entropy);
        self.transmit.clear();
        self.dial();
        Ok(())
    }

    /// Wall-clock seconds from the caller's clock: SAS expiry and certificate validity.
    pub fn set_unix_time(&mut self, unix_seconds: u64) {
        self.unix_now = unix_seconds;
        self.settings.framing.set_unix_time(unix_seconds);
    }

    pub fn is_running(&self) -> bool {
        self.attempt.is_running()
    }

    /// When the running attempt's deadline passes (caller's monotonic ms); `None` when idle.
    pub fn deadline(&self) -> Option<u64> {
        self.is_running().then_some(self.retry.deadline())
    }

    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        let running = self.is_running();
        pop_or_release(&mut self.actions, running)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        let running = self.is_running();
        pop_or_release(&mut self.events, running)
    }

    /// Ends the attempt with `error`, without reconnecting: for transport failures no retry
    /// cures (the transport's own TLS refused the server).
    pub fn abort(&mut self, error: Error) {
        if self.is_running() {
            self.fail(error);
        }
    }

    /// The earliest time at which `handle_timeout` has something to do.
    pub fn next_timeout(&self) -> Option<u64> {
        if !self.is_running() {
            return None;
        }
        let mut t = self.retry.deadline();
        match &self.link {
            Link::Backoff { at } => t = t.min(*at),
            Link::Up(conn) => {
                if conn.connack {
                    if let attempt::Op::Pending { not_before, .. } = self.attempt.op {
                        let window = self.retry.poll_not_before(&self.settings.timing);
                        t = t.min(not_before.max(window));
                    }
                }
                if let Some(k) = conn.mqtt.next_timeout() {
                    t = t.min(k);
                }
            }
            Link::Down | Link::Dialling => {}
        }
        Some(t)
    }

    pub fn handle_timeout(&mut self, now: u64) {
        if !self.is_running() {
            return;
        }
        let assigning = self.attempt.operation_id.is_some();
        if let Some(code) = self.retry.expired(now, assigning) {
            // A service that never answered is not slow: the connection's failure is the cause.
            if !self.dials.reached_service {
                let error = self.unreachable(now);
                return self.fail(error);
            }
            return self.fail(Error::new(
                code,
                format!("no result within {} ms", self.settings.timing.deadline_ms),
            ));
        }
        self.link_timeout(now);
    }

    fn fail(&mut self, error: Error) {
        self.finish(Some(error));
    }

    /// Ends the attempt: assigned (`None`) or failed.
    fn finish(&mut self, error: Option<Error>) {
        // Whatever is queued (a DISCONNECT, PUBACKs) leaves before the TLS close_notify.
        self.close_link(error.is_none());
        self.settings.framing.attempt_ended();
        self.attempt.op = attempt::Op::Idle;
        match &error {
            None => {
                self.status(Status::Assigned);
                let hub = self.outcome.assigned_hub.clone().unwrap_or_default();
                let dev = self.outcome.device_id.clone().unwrap_or_default();
                self.log(Level::Info, format!("assigned to {hub} as {dev}"));
            }
            Some(e) => {
                self.status(Status::Failed);
                self.log(Level::Error, format!("{}: {e}", e.kind.name()));
            }
        }
        self.outcome.result = Some(error.map_or(Ok(()), Err));
    }

    fn status(&mut self, s: Status) {
        self.events.push_back(Event::Status(s));
    }

    fn log(&mut self, level: Level, msg: String) {
        self.events.push_back(Event::Log(level, msg));
    }
}

/// The front of `queue`; once a finished attempt's queue is drained, its buffer is freed too,
/// so that a finished client keeps no room for the next attempt's actions and events.
fn pop_or_release<T>(queue: &mut VecDeque<T>, running: bool) -> Option<T> {
    let front = queue.pop_front();
    if front.is_none() && !running {
        *queue = VecDeque::new();
    }
    front
}

#[cfg(test)]
mod tests;
