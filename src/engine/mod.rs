//! The registration state machine, sans-IO.
//!
//! The engine never touches a socket or a clock. Its owner (the driver, or a test) feeds it:
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
#![allow(clippy::restriction)] // lint-sweep: engine files are made clean separately

pub mod driver;

use crate::prelude::*;
use alloc::collections::VecDeque;

use crate::dps::protocol::{self, RegistrationStatus, RetryAfter};
use crate::dps::sas::{self, HexCase, Signer};
use crate::error::{dps_result, Error, Result};
use crate::layers::mqtt::{ConnectOptions, MqttEvent, MqttSession, QoS};
use crate::layers::wipe;
use crate::layers::Layers;
use dps_result::*;
use zeroize::Zeroizing;

/// How the device proves who it is.
pub enum Credential {
    /// A SAS token signed per connection by this signer (device key, group-derived key, or an
    /// external signer).
    Sas(Box<dyn Signer + Send>),
    /// TLS client certificate: no password is sent.
    X509,
}

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
    /// Exponential back-off for reconnects and for throttling without retry-after.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Consecutive failed connections (connect refused, dropped before any answer) before the
    /// attempt gives up with the transport error.
    pub max_connection_failures: u32,
    /// Status polls: at most `poll_window_count` in any `poll_window_ms` (service: 5 per 10 s).
    pub poll_window_count: usize,
    pub poll_window_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            deadline_ms: 90_000,
            keep_alive_secs: 60,
            sas_ttl_secs: 3600,
            retry_after_floor_ms: 2_000,
            retry_after_max_ms: 120_000,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 30_000,
            max_connection_failures: 4,
            poll_window_count: 5,
            poll_window_ms: 10_000,
        }
    }
}

/// Everything the engine needs to run registrations; validated by `Engine::new`.
pub struct Settings {
    pub id_scope: String,
    pub registration_id: String,
    pub credential: Credential,
    pub host: String,
    pub port: u16,
    pub api_version: String,
    pub client_version: Option<String>,
    /// Custom JSON sent as `payload` in the register body.
    pub payload: Option<String>,
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

/// Progress reported to the status callback.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
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
#[allow(non_camel_case_types)]
pub enum dps_log_level {
    DPS_LOG_ERROR = 1,
    DPS_LOG_WARN = 2,
    DPS_LOG_INFO = 3,
    DPS_LOG_DEBUG = 4,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Status(dps_status),
    Log(dps_log_level, String),
}

/// What the service told us, kept for the getters. Reset at the start of each attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub status: Option<String>,
    pub operation_id: Option<String>,
    pub assigned_hub: Option<String>,
    pub device_id: Option<String>,
    pub substatus: Option<String>,
    pub etag: Option<String>,
    pub created_date_time_utc: Option<String>,
    pub last_updated_date_time_utc: Option<String>,
    pub payload: Option<String>,
    pub issued_certificate_chain: Vec<String>,
    /// `issued_certificate_chain` as PEM, leaf first; set on assignment when the service
    /// issued a certificate.
    pub issued_certificate_chain_pem: Option<String>,
    /// UNIX seconds (the caller's clock) when the assignment arrived; for the stored blob.
    pub assigned_at_unix: Option<u64>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub tracking_id: Option<String>,
    pub http_status: Option<u16>,
    pub retry_after_ms: Option<u64>,
    /// Final result of the attempt, `None` while running.
    pub result: Option<Error>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestKind {
    Register,
    Poll,
}

/// The registration's progress, independent of any connection.
#[derive(Debug)]
enum Op {
    /// Not started, or finished.
    Idle,
    /// Send (or re-send) a request when `not_before` is reached and a connection is up.
    Pending { kind: RequestKind, not_before: u64 },
    /// Request sent with this `$rid`; waiting for its response.
    Awaiting { kind: RequestKind, rid: String },
}

struct Connection {
    framing: Layers,
    mqtt: MqttSession,
    connack: bool,
    /// Whether this connection produced an answer to one of our requests (resets the
    /// consecutive-failure count).
    answered: bool,
}

enum Link {
    Down,
    /// Waiting until `at` before dialling again.
    Backoff {
        at: u64,
    },
    /// `Action::Connect` issued, waiting for `on_connected`.
    Dialling,
    Up(Box<Connection>),
}

pub struct Engine {
    settings: Settings,
    op: Op,
    link: Link,
    operation_id: Option<String>,
    deadline: u64,
    next_rid: u64,
    failures: u32,
    throttled: bool,
    throttle_attempts: u32,
    polls: VecDeque<u64>,
    rng: u64,
    unix_now: u64,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    /// Zeroizing: with TLS offload it holds the MQTT CONNECT (SAS token) in the clear.
    transmit: Zeroizing<Vec<u8>>,
    outcome: Outcome,
}

impl Engine {
    /// Validates the settings; nothing is sent until `start`.
    pub fn new(settings: Settings) -> Result<Engine> {
        protocol::validate_id_scope(&settings.id_scope)?;
        protocol::validate_registration_id(&settings.registration_id)?;
        if settings.host.is_empty() {
            return Err(Error::new(DPS_ERR_INVALID_CONFIG, "empty host name"));
        }
        if settings.api_version.is_empty() {
            return Err(Error::new(DPS_ERR_INVALID_CONFIG, "empty api-version"));
        }
        // Validate the payload once so a bad one fails before dialling.
        protocol::register_body(
            &settings.registration_id,
            settings.payload.as_deref(),
            settings.csr_b64.as_deref(),
        )?;
        let seed = settings
            .registration_id
            .bytes()
            .fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        Ok(Engine {
            settings,
            op: Op::Idle,
            link: Link::Down,
            operation_id: None,
            deadline: 0,
            next_rid: 1,
            failures: 0,
            throttled: false,
            throttle_attempts: 0,
            polls: VecDeque::new(),
            rng: seed | 1,
            unix_now: 0,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            transmit: Zeroizing::new(Vec::new()),
            outcome: Outcome::default(),
        })
    }

    /// Begins a registration attempt. Allowed when idle or after a finished attempt; the
    /// previous outcome is cleared.
    pub fn start(&mut self, now: u64) -> Result<()> {
        if self.is_running() {
            return Err(Error::new(
                DPS_ERR_INVALID_STATE,
                "a registration is already running",
            ));
        }
        self.outcome = Outcome::default();
        self.operation_id = None;
        self.failures = 0;
        self.throttled = false;
        self.throttle_attempts = 0;
        self.polls.clear();
        self.transmit.clear();
        self.deadline = now.saturating_add(self.settings.timing.deadline_ms);
        // Jitter must differ between devices that start together (after a power cut), so the
        // seed comes from the entropy source, mixed with what was there.
        self.rng ^= crate::platform::entropy::seed(self.settings.entropy.as_ref())?;
        self.rng |= 1;
        self.op = Op::Pending {
            kind: RequestKind::Register,
            not_before: now,
        };
        self.dial();
        Ok(())
    }

    /// Wall-clock seconds from the caller's clock: SAS expiry and certificate validity.
    pub fn set_unix_time(&mut self, unix_seconds: u64) {
        self.unix_now = unix_seconds;
        self.settings.framing.set_unix_time(unix_seconds);
    }

    pub fn is_running(&self) -> bool {
        !matches!(self.op, Op::Idle)
    }

    /// When the running attempt's deadline passes (caller's monotonic ms); `None` when idle.
    pub fn deadline(&self) -> Option<u64> {
        self.is_running().then_some(self.deadline)
    }

    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes to write to the transport, in order. The caller owns them afterwards; they are
    /// wiped when dropped, as in the clear (TLS offload, a proxy CONNECT) they carry secrets.
    pub fn take_transmit(&mut self) -> Zeroizing<Vec<u8>> {
        if let Link::Up(conn) = &mut self.link {
            if let Err(e) = Self::flush_connection(conn, &mut self.transmit) {
                self.fail(e);
            }
        }
        core::mem::take(&mut self.transmit)
    }

    /// The transport is connected: start TLS and pipeline CONNECT, SUBSCRIBE and the pending
    /// request in one flight.
    pub fn on_connected(&mut self, now: u64) {
        if !matches!(self.link, Link::Dialling) {
            return;
        }
        let framing = match Layers::new(
            &self.settings.framing,
            &self.settings.route,
            &self.settings.host,
            self.settings.port,
            self.settings.max_packet_size,
            &self.settings.entropy,
        ) {
            Ok(f) => f,
            Err(e) => return self.fail(e),
        };
        let password = match &self.settings.credential {
            Credential::Sas(signer) => {
                let expiry = self
                    .unix_now
                    .saturating_add(self.settings.timing.sas_ttl_secs);
                match sas::sas_token(
                    &self.settings.id_scope,
                    &self.settings.registration_id,
                    signer.as_ref(),
                    expiry,
                    self.settings.hex_case,
                ) {
                    Ok(token) => Some(zeroize::Zeroizing::new(token.as_bytes().to_vec())),
                    Err(e) => return self.fail(e),
                }
            }
            Credential::X509 => None,
        };
        let mut mqtt = MqttSession::new(self.settings.max_packet_size);
        mqtt.set_now(now);
        let queued = mqtt.connect(&ConnectOptions {
            client_id: self.settings.registration_id.clone(),
            username: protocol::username(
                &self.settings.id_scope,
                &self.settings.registration_id,
                &self.settings.api_version,
                self.settings.client_version.as_deref(),
            ),
            password,
            keep_alive_secs: self.settings.timing.keep_alive_secs,
        });
        if let Err(e) =
            queued.and_then(|()| mqtt.subscribe(protocol::SUBSCRIBE_FILTER, QoS::AtLeastOnce))
        {
            return self.fail(e);
        }
        self.link = Link::Up(Box::new(Connection {
            framing,
            mqtt,
            connack: false,
            answered: false,
        }));
        self.log(
            dps_log_level::DPS_LOG_INFO,
            format!(
                "connected to {}:{}; sending CONNECT and SUBSCRIBE",
                self.settings.host, self.settings.port
            ),
        );
        self.send_due_request(now);
    }

    /// The transport failed to connect, was closed by the peer, or reported an I/O error.
    pub fn on_connection_lost(&mut self, now: u64, error: Error) {
        if !self.is_running() {
            return;
        }
        let answered = matches!(&self.link, Link::Up(c) if c.answered);
        if matches!(self.link, Link::Down | Link::Backoff { .. }) {
            return;
        }
        self.link = Link::Down;
        self.transmit.clear();
        self.actions.push_back(Action::Close);
        if answered {
            self.failures = 0;
        }
        self.failures += 1;
        // A request in flight is lost with the connection: send it again on the next one.
        if let Op::Awaiting { kind, .. } = self.op {
            self.op = Op::Pending {
                kind,
                not_before: now,
            };
        }
        if self.failures > self.settings.timing.max_connection_failures {
            return self.fail(error);
        }
        let delay = self.backoff(self.failures);
        self.log(
            dps_log_level::DPS_LOG_WARN,
            format!("connection lost ({error}); reconnecting in {delay} ms"),
        );
        self.status(dps_status::DPS_STATUS_RECONNECTING);
        self.link = Link::Backoff {
            at: now.saturating_add(delay),
        };
    }

    /// Ends the attempt with `error`, without reconnecting: for transport failures no retry
    /// cures (the transport's own TLS refused the server).
    pub fn abort(&mut self, error: Error) {
        if self.is_running() {
            self.fail(error);
        }
    }

    /// Bytes received from the transport.
    pub fn handle_input(&mut self, now: u64, data: &[u8]) {
        let Link::Up(conn) = &mut self.link else {
            return;
        };
        conn.mqtt.set_now(now);
        // The server may end the connection in its framing (a WebSocket close frame) right
        // behind its last packets: those packets count, then the connection is lost like a
        // closed socket, worth a new connection.
        let mut closed = None;
        let step = match conn.framing.read_transport(data) {
            Err(e) if e.code == DPS_ERR_TRANSPORT_CLOSED => {
                closed = Some(e);
                Ok(())
            }
            other => other,
        }
        .and_then(|()| {
            let plain = conn.framing.take_plaintext();
            conn.mqtt.handle_input(&plain)
        });
        if let Err(e) = step {
            return self.fail(e);
        }
        while let Some(event) = self.mqtt_event() {
            self.on_mqtt_event(now, event);
            if !matches!(self.link, Link::Up(_)) {
                return;
            }
        }
        if let Some(e) = closed {
            self.on_connection_lost(now, e);
        }
    }

    /// The earliest time at which `handle_timeout` has something to do.
    pub fn next_timeout(&self) -> Option<u64> {
        if !self.is_running() {
            return None;
        }
        let mut t = self.deadline;
        match &self.link {
            Link::Backoff { at } => t = t.min(*at),
            Link::Up(conn) => {
                if conn.connack {
                    if let Op::Pending { not_before, .. } = self.op {
                        t = t.min(not_before.max(self.poll_gate()));
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
        if now >= self.deadline {
            let code = if self.throttled {
                DPS_ERR_TIMEOUT_THROTTLED
            } else if self.operation_id.is_some() {
                DPS_ERR_TIMEOUT_ASSIGNING
            } else {
                DPS_ERR_TIMEOUT
            };
            return self.fail(Error::new(
                code,
                format!("no result within {} ms", self.settings.timing.deadline_ms),
            ));
        }
        match &mut self.link {
            Link::Backoff { at } if now >= *at => self.dial(),
            Link::Up(conn) => {
                if let Err(e) = conn.mqtt.handle_timeout(now) {
                    return self.on_connection_lost(now, e);
                }
                self.send_due_request(now);
            }
            _ => {}
        }
    }

    fn dial(&mut self) {
        self.link = Link::Dialling;
        self.status(dps_status::DPS_STATUS_CONNECTING);
        let (host, port) = self
            .settings
            .route
            .dial_target(&self.settings.host, self.settings.port);
        self.actions.push_back(Action::Connect {
            host: host.to_owned(),
            port,
        });
    }

    fn mqtt_event(&mut self) -> Option<MqttEvent> {
        match &mut self.link {
            Link::Up(conn) => conn.mqtt.poll_event(),
            _ => None,
        }
    }

    fn on_mqtt_event(&mut self, now: u64, event: MqttEvent) {
        match event {
            MqttEvent::ConnAck { code, .. } => self.on_connack(now, code),
            MqttEvent::SubAck { granted, .. } => {
                if granted.iter().any(Option::is_none) {
                    self.fail(Error::new(
                        DPS_ERR_PROTOCOL_SUBSCRIBE_REFUSED,
                        format!("subscription to {} refused", protocol::SUBSCRIBE_FILTER),
                    ));
                }
            }
            MqttEvent::Publish { topic, payload, .. } => self.on_response(now, &topic, &payload),
            MqttEvent::PubAck { .. } | MqttEvent::PingResp => {}
        }
    }

    fn on_connack(&mut self, now: u64, code: u8) {
        let (err, what) = match code {
            0 => {
                if let Link::Up(conn) = &mut self.link {
                    conn.connack = true;
                }
                self.status(dps_status::DPS_STATUS_CONNECTED);
                return self.send_due_request(now);
            }
            1 => (DPS_ERR_PROTOCOL_CONNACK, "unacceptable protocol version"),
            2 => (DPS_ERR_AUTH_IDENTIFIER_REJECTED, "identifier rejected"),
            3 => (DPS_ERR_AUTH_UNKNOWN_ID_SCOPE, "unknown id scope"),
            4 => (DPS_ERR_AUTH_BAD_CREDENTIALS, "bad user name or password"),
            5 => (DPS_ERR_AUTH_NOT_AUTHORIZED, "not authorized"),
            _ => (DPS_ERR_PROTOCOL_CONNACK, "undefined return code"),
        };
        self.fail(Error::new(
            err,
            format!("CONNACK refused with code {code} ({what})"),
        ));
    }

    /// Sends the pending request if it is due and the session is ready; requests are queued
    /// behind CONNECT/SUBSCRIBE, so the first one goes out in the same flight.
    fn send_due_request(&mut self, now: u64) {
        let Op::Pending { kind, not_before } = self.op else {
            return;
        };
        let gate = if kind == RequestKind::Poll {
            not_before.max(self.poll_gate())
        } else {
            not_before
        };
        if now < gate {
            return;
        }
        let Link::Up(conn) = &mut self.link else {
            return;
        };
        let rid = self.next_rid.to_string();
        self.next_rid += 1;
        let (topic, body) = match kind {
            RequestKind::Register => {
                let body = match protocol::register_body(
                    &self.settings.registration_id,
                    self.settings.payload.as_deref(),
                    self.settings.csr_b64.as_deref(),
                ) {
                    Ok(b) => b,
                    Err(e) => return self.fail(e),
                };
                (protocol::register_topic(&rid), body)
            }
            RequestKind::Poll => {
                let Some(op_id) = self.operation_id.as_deref() else {
                    return self.fail(Error::new(DPS_ERR_INTERNAL, "poll without operation id"));
                };
                (protocol::poll_topic(&rid, op_id), Vec::new())
            }
        };
        if let Err(e) = conn.mqtt.publish(&topic, &body, QoS::AtMostOnce) {
            return self.fail(e);
        }
        if kind == RequestKind::Poll {
            self.polls.push_back(now);
            while self.polls.len() > self.settings.timing.poll_window_count {
                self.polls.pop_front();
            }
        }
        self.log(
            dps_log_level::DPS_LOG_DEBUG,
            format!("publish {} ({} bytes)", protocol::clip(&topic), body.len()),
        );
        if kind == RequestKind::Register {
            self.status(dps_status::DPS_STATUS_REGISTERING);
        }
        self.op = Op::Awaiting { kind, rid };
    }

    /// Earliest time the next poll may go out under the service's per-device poll limit.
    fn poll_gate(&self) -> u64 {
        let t = &self.settings.timing;
        if self.polls.len() < t.poll_window_count {
            return 0;
        }
        self.polls
            .front()
            .map_or(0, |first| first.saturating_add(t.poll_window_ms))
    }

    fn on_response(&mut self, now: u64, topic: &str, body: &[u8]) {
        let response = match protocol::parse_response_topic(topic) {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        let Op::Awaiting { kind, rid } = &self.op else {
            return self.log(
                dps_log_level::DPS_LOG_DEBUG,
                format!("ignoring unsolicited response on {}", protocol::clip(topic)),
            );
        };
        let kind = *kind;
        if response.rid.as_deref() != Some(rid.as_str()) {
            return self.log(
                dps_log_level::DPS_LOG_DEBUG,
                format!(
                    "ignoring response for another request: {}",
                    protocol::clip(topic)
                ),
            );
        }
        if let Link::Up(conn) = &mut self.link {
            conn.answered = true;
        }
        self.failures = 0;
        let status = response.status;
        self.outcome.http_status = Some(status);
        let retry_after = self.retry_after_ms(&response.retry_after);
        self.outcome.retry_after_ms = retry_after;
        self.log(
            dps_log_level::DPS_LOG_INFO,
            format!("response {status} ({} bytes)", body.len()),
        );
        match status {
            200 | 202 => self.on_operation_status(now, status, body, retry_after),
            429 | 500..=599 => {
                self.throttled = true;
                self.throttle_attempts += 1;
                let delay = retry_after.unwrap_or_else(|| self.backoff(self.throttle_attempts));
                self.record_envelope(body);
                self.status(dps_status::DPS_STATUS_THROTTLED);
                self.log(
                    dps_log_level::DPS_LOG_WARN,
                    format!("service answered {status}; retrying in {delay} ms"),
                );
                self.op = Op::Pending {
                    kind,
                    not_before: now.saturating_add(delay),
                };
            }
            401 => {
                self.record_envelope(body);
                self.fail(Error::new(
                    DPS_ERR_AUTH_UNAUTHORIZED,
                    self.envelope_detail("service answered 401"),
                ));
            }
            400..=499 => {
                self.record_envelope(body);
                self.fail(Error::new(
                    DPS_ERR_REGISTRATION_REJECTED,
                    self.envelope_detail(&format!("service answered {status}")),
                ));
            }
            _ => self.fail(Error::new(
                DPS_ERR_PROTOCOL_UNEXPECTED_STATUS,
                format!("unexpected status {status}"),
            )),
        }
    }

    fn on_operation_status(&mut self, now: u64, status: u16, body: &[u8], retry: Option<u64>) {
        let parsed = match protocol::parse_operation_status(body) {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        self.throttled = false;
        self.throttle_attempts = 0;
        if !parsed.operation_id.is_empty() {
            self.operation_id = Some(parsed.operation_id.clone());
            self.outcome.operation_id = Some(parsed.operation_id.clone());
        }
        self.outcome.status = Some(parsed.status.as_str().to_owned());
        if let Some(state) = parsed.registration_state {
            let o = &mut self.outcome;
            o.assigned_hub = state.assigned_hub;
            o.device_id = state.device_id;
            o.substatus = state.substatus;
            o.etag = state.etag;
            o.created_date_time_utc = state.created_date_time_utc;
            o.last_updated_date_time_utc = state.last_updated_date_time_utc;
            o.payload = state.payload;
            o.issued_certificate_chain = state.issued_certificate_chain;
            o.error_code = state.error_code;
            o.error_message = state.error_message;
        }
        match parsed.status {
            RegistrationStatus::Assigned => {
                if self.outcome.assigned_hub.is_none() || self.outcome.device_id.is_none() {
                    return self.fail(Error::new(
                        DPS_ERR_PROTOCOL_BAD_RESPONSE,
                        "assigned without assignedHub or deviceId",
                    ));
                }
                if !self.outcome.issued_certificate_chain.is_empty() {
                    match protocol::certificate_chain_pem(&self.outcome.issued_certificate_chain) {
                        Ok(pem) => self.outcome.issued_certificate_chain_pem = Some(pem),
                        Err(e) => return self.fail(e),
                    }
                }
                self.outcome.assigned_at_unix = Some(self.unix_now);
                self.finish(None);
            }
            RegistrationStatus::Assigning => {
                if self.operation_id.is_none() {
                    return self.fail(Error::new(
                        DPS_ERR_PROTOCOL_BAD_RESPONSE,
                        format!("{status} assigning without operationId"),
                    ));
                }
                let delay = retry.unwrap_or(self.settings.timing.retry_after_floor_ms);
                self.status(dps_status::DPS_STATUS_ASSIGNING);
                self.op = Op::Pending {
                    kind: RequestKind::Poll,
                    not_before: now.saturating_add(delay),
                };
                self.send_due_request(now);
            }
            RegistrationStatus::Disabled => self.fail(Error::new(
                DPS_ERR_REGISTRATION_DISABLED,
                self.envelope_detail("enrollment disabled"),
            )),
            RegistrationStatus::Failed | RegistrationStatus::Unassigned => self.fail(Error::new(
                DPS_ERR_REGISTRATION_FAILED,
                self.envelope_detail(&format!("registration {}", parsed.status.as_str())),
            )),
            RegistrationStatus::Other(s) => self.fail(Error::new(
                DPS_ERR_PROTOCOL_BAD_RESPONSE,
                format!("unknown registration status {s:?}"),
            )),
        }
    }

    /// A usable retry-after in ms, clamped; `None` when absent or not a number of seconds.
    fn retry_after_ms(&mut self, raw: &RetryAfter) -> Option<u64> {
        match raw {
            RetryAfter::Absent => None,
            RetryAfter::Seconds(s) => {
                let max = self.settings.timing.retry_after_max_ms;
                Some(s.saturating_mul(1000).min(max))
            }
            RetryAfter::Invalid(text) => {
                let text = text.clone();
                self.log(
                    dps_log_level::DPS_LOG_WARN,
                    format!("ignoring invalid retry-after {text:?}"),
                );
                None
            }
        }
    }

    fn record_envelope(&mut self, body: &[u8]) {
        if let Ok(env) = protocol::parse_error_envelope(body) {
            self.outcome.error_code = env.error_code;
            self.outcome.tracking_id = env.tracking_id;
            self.outcome.error_message = env.message;
        }
    }

    /// `what`, followed by the service's errorCode and message when it sent them (in the error
    /// envelope or in registrationState).
    fn envelope_detail(&self, what: &str) -> String {
        match (&self.outcome.error_code, &self.outcome.error_message) {
            (Some(code), Some(msg)) => format!("{what}: {code} {msg}"),
            (Some(code), None) => format!("{what}: {code}"),
            (None, Some(msg)) => format!("{what}: {msg}"),
            (None, None) => what.to_owned(),
        }
    }

    /// Exponential back-off with full jitter: uniform in [base/2, base], base doubling per try.
    fn backoff(&mut self, attempt: u32) -> u64 {
        let t = &self.settings.timing;
        let base = t
            .backoff_initial_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
            .min(t.backoff_max_ms);
        // xorshift64: jitter needs spread, not secrecy.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = base / 2;
        half + self.rng % (base - half + 1)
    }

    fn flush_connection(conn: &mut Connection, out: &mut Zeroizing<Vec<u8>>) -> Result<()> {
        let plain = conn.mqtt.take_output();
        if !plain.is_empty() {
            conn.framing.write_plaintext(&plain)?;
        }
        wipe::append(out, conn.framing.take_transport_output());
        Ok(())
    }

    fn fail(&mut self, error: Error) {
        self.finish(Some(error));
    }

    fn finish(&mut self, error: Option<Error>) {
        if let Link::Up(conn) = &mut self.link {
            if error.is_none() {
                conn.mqtt.disconnect();
            }
            // Whatever is queued (a DISCONNECT, PUBACKs) leaves before the TLS close_notify.
            let _ = Self::flush_connection(conn, &mut self.transmit);
            conn.framing.close();
            wipe::append(&mut self.transmit, conn.framing.take_transport_output());
        }
        if !matches!(self.link, Link::Down) {
            self.actions.push_back(Action::Close);
        }
        self.link = Link::Down;
        self.op = Op::Idle;
        match &error {
            None => {
                self.status(dps_status::DPS_STATUS_ASSIGNED);
                let hub = self.outcome.assigned_hub.clone().unwrap_or_default();
                let dev = self.outcome.device_id.clone().unwrap_or_default();
                self.log(
                    dps_log_level::DPS_LOG_INFO,
                    format!("assigned to {hub} as {dev}"),
                );
            }
            Some(e) => {
                self.status(dps_status::DPS_STATUS_FAILED);
                self.log(
                    dps_log_level::DPS_LOG_ERROR,
                    format!("{}: {e}", e.code.name()),
                );
            }
        }
        self.outcome.result = Some(error.unwrap_or_else(|| Error::new(DPS_OK, "")));
    }

    fn status(&mut self, s: dps_status) {
        self.events.push_back(Event::Status(s));
    }

    fn log(&mut self, level: dps_log_level, msg: String) {
        self.events.push_back(Event::Log(level, msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dps::sas::KeySigner;
    use crate::layers::FramingFactory;
    use mqttrs::{decode_slice, encode_slice, Packet, Pid, QosPid};

    const KEY: &str = "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=";

    fn engine(timing: Timing) -> Engine {
        Engine::new(Settings {
            id_scope: "0ne00000001".into(),
            registration_id: "dev-1".into(),
            credential: Credential::Sas(Box::new(KeySigner::from_base64(KEY).unwrap())),
            host: "dps.example".into(),
            port: 8883,
            api_version: protocol::DEFAULT_API_VERSION.into(),
            client_version: None,
            payload: Some(r#"{"a":1}"#.into()),
            framing: FramingFactory::Plain,
            route: Default::default(),
            timing,
            max_packet_size: crate::config::DEFAULT_MAX_PACKET_SIZE,
            hex_case: HexCase::Lower,
            csr_b64: None,
            entropy: crate::platform::entropy::test_source(),
        })
        .unwrap()
    }

    /// A scripted server: decodes what the engine sends, answers what the test says.
    struct Peer {
        engine: Engine,
        now: u64,
        /// Topics of the client's PUBLISH packets, in order, with the time they were sent.
        published: Vec<(u64, String)>,
        kinds: Vec<mqttrs::PacketType>,
    }

    impl Peer {
        fn start(timing: Timing) -> Peer {
            let mut p = Peer {
                engine: engine(timing),
                now: 1_000,
                published: Vec::new(),
                kinds: Vec::new(),
            };
            p.engine.set_unix_time(1_700_000_000);
            p.engine.start(p.now).unwrap();
            assert_eq!(
                p.engine.poll_action(),
                Some(Action::Connect {
                    host: "dps.example".into(),
                    port: 8883
                })
            );
            p.engine.on_connected(p.now);
            p.pump();
            p
        }

        /// Collects the client's packets.
        fn pump(&mut self) {
            let out = self.engine.take_transmit();
            let mut rest = &out[..];
            let mut pinged = false;
            while !rest.is_empty() {
                let packet = decode_slice(rest).unwrap().unwrap();
                let mut buf = vec![0u8; rest.len()];
                let n = encode_slice(&packet, &mut buf).unwrap();
                if let Packet::Publish(p) = &packet {
                    self.published.push((self.now, p.topic_name.to_owned()));
                }
                pinged |= matches!(packet, Packet::Pingreq);
                self.kinds.push(packet.get_type());
                rest = &rest[n..];
            }
            if pinged {
                self.send(Packet::Pingresp);
            }
        }

        fn send(&mut self, packet: Packet<'_>) {
            let mut buf = vec![0u8; 8192];
            let n = encode_slice(&packet, &mut buf).unwrap();
            self.engine.handle_input(self.now, &buf[..n]);
            self.pump();
        }

        fn connack(&mut self, code: mqttrs::ConnectReturnCode) {
            self.send(Packet::Connack(mqttrs::Connack {
                session_present: false,
                code,
            }));
        }

        fn last_rid(&self) -> String {
            let topic = &self.published.last().unwrap().1;
            protocol::parse_response_topic(&format!(
                "$dps/registrations/res/200/?{}",
                topic.split_once('?').unwrap().1
            ))
            .unwrap()
            .rid
            .unwrap()
        }

        fn respond(&mut self, status: u16, extra: &str, body: &str) {
            let topic = format!(
                "$dps/registrations/res/{status}/?$rid={}{extra}",
                self.last_rid()
            );
            self.send(Packet::Publish(mqttrs::Publish {
                dup: false,
                qospid: QosPid::AtLeastOnce(Pid::try_from(7).unwrap()),
                retain: false,
                topic_name: &topic,
                payload: body.as_bytes(),
            }));
        }

        fn advance_to(&mut self, t: u64) {
            self.now = t;
            self.engine.handle_timeout(t);
            self.pump();
        }

        fn run_timers_until(&mut self, limit: u64) {
            while let Some(t) = self.engine.next_timeout() {
                if t > limit {
                    break;
                }
                self.advance_to(t.max(self.now));
            }
        }

        /// Fires timers until the client publishes, asks for a transport action, or ends.
        fn run_until_next_send(&mut self) {
            let before = self.published.len();
            while self.published.len() == before
                && self.engine.actions.is_empty()
                && self.engine.is_running()
            {
                let t = self.engine.next_timeout().unwrap();
                self.advance_to(t.max(self.now));
            }
        }

        fn result(&self) -> Option<dps_result> {
            self.engine.outcome().result.as_ref().map(|e| e.code)
        }
    }

    const ASSIGNING: &str = r#"{"operationId":"op-1","status":"assigning"}"#;
    const ASSIGNED: &str = r#"{"operationId":"op-1","status":"assigned","registrationState":{"assignedHub":"hub","deviceId":"dev-1","substatus":"initialAssignment"}}"#;

    #[test]
    fn connect_subscribe_and_register_leave_in_one_flight() {
        let p = Peer::start(Timing::default());
        use mqttrs::PacketType::*;
        assert_eq!(p.kinds, vec![Connect, Subscribe, Publish]);
        assert!(p.published[0]
            .1
            .starts_with("$dps/registrations/PUT/iotdps-register/?$rid="));
    }

    #[test]
    fn retry_after_zero_polls_at_once_and_exact_values_are_honoured() {
        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(202, "&retry-after=0", ASSIGNING);
        assert_eq!(p.published.len(), 2, "polled in the same step");
        assert_eq!(p.published[1].0, 1_000);
        assert!(p.published[1].1.contains("iotdps-get-operationstatus"));
        assert!(p.published[1].1.ends_with("&operationId=op-1"));
        p.respond(202, "&retry-after=3", ASSIGNING);
        p.run_timers_until(1_000 + 2_999);
        assert_eq!(p.published.len(), 2);
        p.run_timers_until(4_000);
        assert_eq!(p.published.len(), 3);
        assert_eq!(p.published[2].0, 4_000);
        p.respond(200, "", ASSIGNED);
        assert_eq!(p.result(), Some(DPS_OK));
        assert_eq!(p.engine.outcome().assigned_hub.as_deref(), Some("hub"));
    }

    #[test]
    fn polls_never_exceed_five_per_ten_seconds() {
        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(202, "&retry-after=0", ASSIGNING);
        for _ in 0..11 {
            let before = p.published.len();
            p.respond(202, "&retry-after=0", ASSIGNING);
            if p.published.len() == before {
                p.run_until_next_send();
            }
        }
        let polls: Vec<u64> = p.published[1..].iter().map(|(t, _)| *t).collect();
        assert!(polls.len() >= 11, "{polls:?}");
        for w in polls.windows(6) {
            assert!(w[5] - w[0] >= 10_000, "six polls within 10 s: {w:?}");
        }
        assert_eq!(polls[..5], [1_000; 5]);
        assert_eq!(polls[5], 11_000);
    }

    #[test]
    fn missing_retry_after_uses_the_floor_and_absurd_values_are_clamped() {
        let timing = Timing {
            deadline_ms: 1_000_000,
            ..Timing::default()
        };
        let mut p = Peer::start(timing.clone());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(202, "", ASSIGNING);
        assert_eq!(
            p.engine.next_timeout(),
            Some(1_000 + timing.retry_after_floor_ms)
        );
        p.run_until_next_send();
        p.respond(202, "&retry-after=1000000000000", ASSIGNING);
        assert_eq!(
            p.engine.outcome().retry_after_ms,
            Some(timing.retry_after_max_ms)
        );
        p.run_until_next_send();
        p.respond(202, "&retry-after=-5", ASSIGNING);
        assert_eq!(p.engine.outcome().retry_after_ms, None);
        p.run_until_next_send();
        p.respond(202, "&retry-after=abc", ASSIGNING);
        assert_eq!(p.engine.outcome().retry_after_ms, None);
    }

    #[test]
    fn throttling_on_register_and_poll_is_retried_with_backoff() {
        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(429, "", r#"{"errorCode":429001,"message":"throttled"}"#);
        let t = p.engine.next_timeout().unwrap();
        assert!(
            (1_500..=2_000).contains(&t),
            "first back-off in [0.5, 1] s: {t}"
        );
        p.run_until_next_send();
        assert!(
            p.published[1].1.contains("iotdps-register"),
            "register retried"
        );
        p.respond(202, "&retry-after=0", ASSIGNING);
        p.respond(503, "&retry-after=2", "{}");
        p.run_until_next_send();
        let last = p.published.last().unwrap();
        assert!(
            last.1.contains("iotdps-get-operationstatus"),
            "poll retried"
        );
        p.respond(200, "", ASSIGNED);
        assert_eq!(p.result(), Some(DPS_OK));
    }

    #[test]
    fn stale_and_foreign_responses_are_ignored() {
        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        let topic = "$dps/registrations/res/200/?$rid=999";
        p.send(Packet::Publish(mqttrs::Publish {
            dup: false,
            qospid: QosPid::AtMostOnce,
            retain: false,
            topic_name: topic,
            payload: ASSIGNED.as_bytes(),
        }));
        assert_eq!(p.result(), None);
        p.respond(200, "", ASSIGNED);
        assert_eq!(p.result(), Some(DPS_OK));
    }

    #[test]
    fn both_shapes_of_bad_credentials_are_auth_errors() {
        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::NotAuthorized);
        assert_eq!(p.result(), Some(DPS_ERR_AUTH_NOT_AUTHORIZED));
        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(
            401,
            "",
            r#"{"errorCode":401002,"trackingId":"t-9","message":"Unauthorized","timestampUtc":"x"}"#,
        );
        assert_eq!(p.result(), Some(DPS_ERR_AUTH_UNAUTHORIZED));
        assert_eq!(p.engine.outcome().error_code, Some(401002));
        assert_eq!(p.engine.outcome().tracking_id.as_deref(), Some("t-9"));
    }

    #[test]
    fn unexpected_statuses_and_bodies_end_with_clear_errors() {
        for (status, body, want) in [
            (302, "{}", DPS_ERR_PROTOCOL_UNEXPECTED_STATUS),
            (0, "{}", DPS_ERR_PROTOCOL_UNEXPECTED_STATUS),
            (999, "{}", DPS_ERR_PROTOCOL_UNEXPECTED_STATUS),
            (404, "{}", DPS_ERR_REGISTRATION_REJECTED),
            (200, "not json", DPS_ERR_PROTOCOL_BAD_RESPONSE),
            (
                200,
                r#"{"status":"assigned"}"#,
                DPS_ERR_PROTOCOL_BAD_RESPONSE,
            ),
            (
                202,
                r#"{"status":"assigning"}"#,
                DPS_ERR_PROTOCOL_BAD_RESPONSE,
            ),
            (
                200,
                r#"{"status":"disabled","operationId":"x"}"#,
                DPS_ERR_REGISTRATION_DISABLED,
            ),
            (
                200,
                r#"{"status":"failed","operationId":"x"}"#,
                DPS_ERR_REGISTRATION_FAILED,
            ),
        ] {
            let mut p = Peer::start(Timing::default());
            p.connack(mqttrs::ConnectReturnCode::Accepted);
            p.respond(status, "", body);
            assert_eq!(p.result(), Some(want), "{status} {body}");
            assert!(!p.engine.is_running());
        }
    }

    #[test]
    fn dropped_connection_reconnects_resubscribes_and_resends() {
        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(202, "&retry-after=0", ASSIGNING);
        p.engine
            .on_connection_lost(p.now, Error::new(DPS_ERR_TRANSPORT_CLOSED, "reset"));
        assert_eq!(p.engine.poll_action(), Some(Action::Close));
        p.run_until_next_send();
        assert!(matches!(
            p.engine.poll_action(),
            Some(Action::Connect { .. })
        ));
        p.kinds.clear();
        p.engine.on_connected(p.now);
        p.pump();
        use mqttrs::PacketType::*;
        assert_eq!(p.kinds, vec![Connect, Subscribe, Publish], "poll pipelined");
        assert!(p.published.last().unwrap().1.contains("operationId=op-1"));
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(200, "", ASSIGNED);
        assert_eq!(p.result(), Some(DPS_OK));
    }

    #[test]
    fn deadline_ends_the_attempt_and_a_new_one_can_start() {
        let timing = Timing {
            deadline_ms: 5_000,
            ..Timing::default()
        };
        let mut p = Peer::start(timing);
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(202, "&retry-after=1", ASSIGNING);
        while p.engine.is_running() {
            p.run_until_next_send();
            if p.engine.is_running() {
                p.respond(202, "&retry-after=1", ASSIGNING);
            }
        }
        assert_eq!(p.result(), Some(DPS_ERR_TIMEOUT_ASSIGNING));
        assert!(p.engine.start(p.now).is_ok());
        assert!(
            p.engine.start(p.now).is_err(),
            "no second start while running"
        );
    }

    #[test]
    fn issued_chain_becomes_pem_and_a_bad_one_fails_the_attempt() {
        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(200, "", r#"{"operationId":"op-1","status":"assigned","registrationState":{"assignedHub":"hub","deviceId":"dev-1","issuedCertificateChain":["MAMCAQA=","MAMCAQE="]}}"#);
        assert_eq!(p.result(), Some(DPS_OK));
        let pem = p
            .engine
            .outcome()
            .issued_certificate_chain_pem
            .clone()
            .unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----\n").count(), 2);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\nMAMCAQA=\n"));
        assert_eq!(p.engine.outcome().assigned_at_unix, Some(1_700_000_000));

        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(200, "", r#"{"operationId":"op-1","status":"assigned","registrationState":{"assignedHub":"hub","deviceId":"dev-1","issuedCertificateChain":["MAMCAQA=","%%%"]}}"#);
        assert_eq!(p.result(), Some(DPS_ERR_PROTOCOL_BAD_RESPONSE));
        assert_eq!(p.engine.outcome().issued_certificate_chain_pem, None);
        assert_eq!(p.engine.outcome().assigned_at_unix, None);
    }

    #[test]
    fn the_csr_goes_into_the_register_body() {
        let mut e = engine(Timing::default());
        e.settings.csr_b64 = Some("MAMCAQA=".into());
        e.set_unix_time(1_700_000_000);
        e.start(0).unwrap();
        assert!(matches!(e.poll_action(), Some(Action::Connect { .. })));
        e.on_connected(0);
        let out = e.take_transmit();
        let mut rest = &out[..];
        let mut body = None;
        while !rest.is_empty() {
            let packet = decode_slice(rest).unwrap().unwrap();
            let mut buf = vec![0u8; rest.len()];
            let n = encode_slice(&packet, &mut buf).unwrap();
            if let Packet::Publish(p) = &packet {
                body = Some(p.payload.to_vec());
            }
            rest = &rest[n..];
        }
        assert_eq!(
            body.as_deref(),
            Some(&br#"{"registrationId":"dev-1","payload":{"a":1},"csr":"MAMCAQA="}"#[..])
        );
    }

    #[test]
    fn connection_failures_give_up_after_the_limit() {
        let mut p = Peer::start(Timing::default());
        for _ in 0..=Timing::default().max_connection_failures {
            p.engine
                .on_connection_lost(p.now, Error::new(DPS_ERR_TRANSPORT_CONNECT, "refused"));
            while let Some(a) = p.engine.poll_action() {
                assert_eq!(a, Action::Close);
            }
            p.run_until_next_send();
            if p.result().is_some() {
                break;
            }
            assert!(matches!(
                p.engine.poll_action(),
                Some(Action::Connect { .. })
            ));
        }
        assert_eq!(p.result(), Some(DPS_ERR_TRANSPORT_CONNECT));
    }

    /// The user name and password of the CONNECT an engine with these settings sends first.
    fn first_connect(settings: Settings) -> (String, Option<String>) {
        let mut engine = Engine::new(settings).unwrap();
        engine.set_unix_time(1_700_000_000);
        engine.start(0).unwrap();
        assert!(matches!(engine.poll_action(), Some(Action::Connect { .. })));
        engine.on_connected(0);
        let out = engine.take_transmit();
        match decode_slice(&out).unwrap().unwrap() {
            Packet::Connect(c) => (
                c.username.unwrap().to_owned(),
                c.password.map(|p| String::from_utf8(p.to_vec()).unwrap()),
            ),
            other => panic!("first packet is {other:?}"),
        }
    }

    fn settings(credential: Credential) -> Settings {
        let mut s = engine(Timing::default()).settings;
        s.credential = credential;
        s
    }

    #[test]
    fn x509_sends_no_password() {
        let (username, password) = first_connect(settings(Credential::X509));
        assert_eq!(password, None);
        assert_eq!(
            username,
            "0ne00000001/registrations/dev-1/api-version=2019-03-31"
        );
    }

    #[test]
    fn sas_token_lifetime_and_client_version_reach_the_connect() {
        let signer = || Credential::Sas(Box::new(KeySigner::from_base64(KEY).unwrap()));
        let (_, password) = first_connect(settings(signer()));
        assert!(
            password.unwrap().contains("&se=1700003600&"),
            "default 1 hour"
        );
        let mut s = settings(signer());
        s.timing.sas_ttl_secs = 60;
        s.client_version = Some("firmware/2.1 (board-x)".into());
        let (username, password) = first_connect(s);
        assert!(password.unwrap().contains("&se=1700000060&"));
        assert!(
            username.ends_with("&ClientVersion=firmware%2F2.1%20%28board-x%29"),
            "{username}"
        );
    }
}
