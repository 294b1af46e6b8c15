//! One device connection: MQTT 3.1.1 as DPS speaks it, with the enrollment's scenario knobs.
//! Any malformed input ends this connection only.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use mqttrs::{
    decode_slice, encode_slice, Connack, ConnectReturnCode, Packet, Pid, Protocol, Publish, QoS,
    QosPid, Suback, SubscribeReturnCodes,
};
use serde_json::{json, Value};

use crate::enrollments::{AuthFailure, Credentials, EnrollmentFile, Identity, Outcome};

/// The service's message limit (96 KB) plus the MQTT header.
pub const MAX_PACKET: usize = 96 * 1024 + 1024;
/// Without a keep-alive from the client (0 = none).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest keep-alive honoured (seconds); a longer one is treated as this.
pub const MAX_KEEP_ALIVE: u16 = 1200;
/// A client that stops reading must not pin a task forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// MQTT strings carry a 16-bit length: a response topic must fit.
const MAX_TOPIC: usize = u16::MAX as usize;
/// The longest response topic apart from the `$rid`:
/// `$dps/registrations/res/NNN/?$rid=` and `&retry-after=` with a 20-digit number.
const RESPONSE_TOPIC_OVERHEAD: usize = 33 + 13 + 20;
const SUBSCRIBE_FILTER: &str = "$dps/registrations/res/#";
const REGISTER_PREFIX: &str = "$dps/registrations/PUT/iotdps-register/?";
const POLL_PREFIX: &str = "$dps/registrations/GET/iotdps-get-operationstatus/?";

/// A byte stream as the MQTT layer sees it: TLS directly, or WebSocket binary frames.
pub trait Wire {
    /// Appends what arrives to `buf`; 0 = closed.
    fn read(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send;
    fn write(
        &mut self,
        data: &[u8],
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
    fn shutdown(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

struct Operation {
    registration_id: String,
    /// Its place in `Operations::order`.
    seq: u64,
    /// What it holds, for `Operations::retained`.
    bytes: usize,
    polls: u64,
    /// As JSON text: a parsed value can take many times the bytes of its text.
    payload: Option<String>,
    /// Base64 DER chain issued for the device's CSR (certificate issuance).
    issued: Option<Vec<String>>,
    created: String,
}

/// Operations kept for polling. Like the service, one live operation per registration id (a
/// new register request replaces the previous one); beyond the total count or the retained
/// bytes the oldest are forgotten (a poll for them gets 404).
struct Operations {
    by_id: HashMap<String, Operation>,
    /// Oldest first.
    order: BTreeMap<u64, String>,
    /// Lower-cased registration id to its live operation.
    by_device: HashMap<String, String>,
    next_seq: u64,
    retained: usize,
    max_operations: usize,
    max_retained_bytes: usize,
}

impl Operations {
    fn new(max_operations: usize, max_retained_bytes: usize) -> Operations {
        Operations {
            by_id: HashMap::new(),
            order: BTreeMap::new(),
            by_device: HashMap::new(),
            next_seq: 0,
            retained: 0,
            max_operations: max_operations.max(1),
            max_retained_bytes,
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(op) = self.by_id.remove(id) {
            self.order.remove(&op.seq);
            self.retained -= op.bytes;
            let device = op.registration_id.to_ascii_lowercase();
            if self.by_device.get(&device).is_some_and(|live| live == id) {
                self.by_device.remove(&device);
            }
        }
    }

    fn insert(&mut self, id: String, mut op: Operation) {
        let device = op.registration_id.to_ascii_lowercase();
        if let Some(previous) = self.by_device.get(&device).cloned() {
            self.remove(&previous);
        }
        while !self.by_id.is_empty()
            && (self.by_id.len() >= self.max_operations
                || self.retained + op.bytes > self.max_retained_bytes)
        {
            let Some(oldest) = self.order.values().next().cloned() else {
                break;
            };
            self.remove(&oldest);
        }
        op.seq = self.next_seq;
        self.next_seq += 1;
        self.retained += op.bytes;
        self.order.insert(op.seq, id.clone());
        self.by_device.insert(device, id.clone());
        self.by_id.insert(id, op);
    }
}

/// The client certificate a device presented, judged against the device CA.
pub struct PeerCert {
    pub common_name: Option<String>,
    pub trusted: bool,
}

#[derive(Default)]
struct DeviceCounters {
    requests: u64,
    connections: u64,
    /// Recent status polls, for `limitPolls`.
    polls: VecDeque<Instant>,
}

/// The service's status-poll limit per device.
const POLL_LIMIT: usize = 5;
const POLL_WINDOW: Duration = Duration::from_secs(10);

/// Limits from the command line.
pub struct Limits {
    /// For the TLS (and WebSocket) handshake and the CONNECT together, and between packets
    /// until the credentials are accepted.
    pub connect_timeout: Duration,
    pub max_operations: usize,
    pub max_retained_bytes: usize,
}

pub struct State {
    pub enrollments: EnrollmentFile,
    /// From the command line, when given.
    pub auth_failure: Option<AuthFailure>,
    pub cert_dir: PathBuf,
    pub limits: Limits,
    devices: Mutex<HashMap<String, DeviceCounters>>,
    operations: Mutex<Operations>,
    pub log: Option<crate::log::Log>,
    next_id: AtomicU64,
    /// Set at SIGTERM/SIGINT: open connections end and log their line.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub connections: AtomicU64,
}

impl State {
    pub fn new(
        enrollments: EnrollmentFile,
        auth_failure: Option<AuthFailure>,
        cert_dir: PathBuf,
        log: Option<crate::log::Log>,
        limits: Limits,
    ) -> State {
        let operations = Operations::new(limits.max_operations, limits.max_retained_bytes);
        State {
            enrollments,
            auth_failure,
            cert_dir,
            limits,
            devices: Mutex::new(HashMap::new()),
            operations: Mutex::new(operations),
            log,
            next_id: AtomicU64::new(1),
            shutdown: tokio::sync::watch::Sender::new(false),
            connections: AtomicU64::new(0),
        }
    }

    fn unique(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{:016x}{:08x}", t as u64, n)
    }

    async fn write_log(&self, line: &Value) {
        if let Some(log) = &self.log {
            log.write(line.to_string()).await;
        }
    }
}

/// The service's timestamp shape: UTC with seven fractional digits.
fn now_utc() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

fn kind(p: &Packet<'_>) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::Connack(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::Puback(_) => "PUBACK",
        Packet::Pubrec(_) => "PUBREC",
        Packet::Pubrel(_) => "PUBREL",
        Packet::Pubcomp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::Suback(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::Unsuback(_) => "UNSUBACK",
        Packet::Pingreq => "PINGREQ",
        Packet::Pingresp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

/// Length of the packet at the start of `buf` once its fixed header is complete.
fn frame_length(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let total = 2 + i + remaining;
            if total > MAX_PACKET {
                return Err(format!("packet of {total} bytes over the message limit"));
            }
            return Ok(Some(total));
        }
    }
    Err("malformed remaining length".into())
}

/// Parses `?a=b&c=d` parameters.
fn query(q: &str) -> BTreeMap<&str, &str> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Up to 128 of `a-z A-Z 0-9 - . _ :`, the last alphanumeric or `-`.
pub fn valid_registration_id(r: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:".contains(c);
    !r.is_empty()
        && r.len() <= 128
        && r.chars().all(allowed)
        && r.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
}

/// `YYYY-MM-DD`, optionally followed by `-preview`.
fn valid_api_version(v: &str) -> bool {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let b = date.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// A parsed `{idScope}/registrations/{registrationId}/api-version=...[&ClientVersion=...]`.
struct Username {
    scope: String,
    registration_id: String,
    api_version: String,
    /// Percent-decoded; `None` when absent (or not decodable, which is not refused: the
    /// service treats the agent as informational).
    client_version: Option<String>,
}

fn parse_username(u: &str) -> Option<Username> {
    let (scope, rest) = u.split_once("/registrations/")?;
    let (reg, params) = rest.split_once('/')?;
    let params = query(params);
    let api = params.get("api-version")?;
    if scope.is_empty() || !valid_registration_id(reg) || !valid_api_version(api) {
        return None;
    }
    Some(Username {
        scope: scope.to_owned(),
        registration_id: reg.to_owned(),
        api_version: (*api).to_owned(),
        client_version: params.get("ClientVersion").and_then(|v| percent_decode(v)),
    })
}

struct Sas {
    sr_raw: String,
    sig: String,
    /// As sent: the signature covers these exact bytes.
    se_raw: String,
    se: u64,
    /// Optional: Microsoft's Python SDK sends none, its C SDK sends `registration`.
    skn: Option<String>,
}

fn parse_sas(token: &str) -> Option<Sas> {
    let rest = token.strip_prefix("SharedAccessSignature ")?;
    let fields = query(rest);
    Some(Sas {
        sr_raw: (*fields.get("sr")?).to_owned(),
        sig: percent_decode(fields.get("sig")?)?,
        se_raw: (*fields.get("se")?).to_owned(),
        se: fields.get("se")?.parse().ok()?,
        skn: fields.get("skn").map(|s| (*s).to_owned()),
    })
}

pub struct ConnectionLog {
    pub transport: &'static str,
    registration_id: Option<String>,
    api_version: Option<String>,
    client_version: Option<String>,
    /// The SAS token's `se` (expiry, Unix seconds) as the device sent it; not a secret.
    sas_expiry: Option<u64>,
    enrollment: Option<String>,
    bytes_in: u64,
    bytes_out: u64,
    packets_in: BTreeMap<&'static str, u64>,
    packets_out: BTreeMap<&'static str, u64>,
    /// Responses not delivered because the client had not subscribed.
    unsubscribed_responses: u64,
    /// The TLS version and whether the handshake resumed an earlier session.
    pub tls_version: Option<&'static str>,
    pub tls_resumed: Option<bool>,
    outcome: String,
    started: Instant,
}

impl ConnectionLog {
    pub fn new(transport: &'static str) -> ConnectionLog {
        ConnectionLog {
            transport,
            registration_id: None,
            api_version: None,
            client_version: None,
            sas_expiry: None,
            enrollment: None,
            bytes_in: 0,
            bytes_out: 0,
            packets_in: BTreeMap::new(),
            packets_out: BTreeMap::new(),
            unsubscribed_responses: 0,
            tls_version: None,
            tls_resumed: None,
            outcome: "closed".into(),
            started: Instant::now(),
        }
    }

    pub fn set_outcome(&mut self, outcome: impl Into<String>) {
        self.outcome = outcome.into();
    }

    pub async fn finish(self, state: &State) {
        state.connections.fetch_add(1, Ordering::Relaxed);
        state
            .write_log(&json!({
            "registrationId": self.registration_id,
            "enrollment": self.enrollment,
            "apiVersion": self.api_version,
            "clientVersion": self.client_version,
            "sasExpiry": self.sas_expiry,
            "transport": self.transport,
            "tlsVersion": self.tls_version,
            "tlsResumed": self.tls_resumed,
            "bytesIn": self.bytes_in,
            "bytesOut": self.bytes_out,
            "packetsIn": self.packets_in,
            "packetsOut": self.packets_out,
            "unsubscribedResponses": self.unsubscribed_responses,
            "outcome": self.outcome,
            "durationMs": self.started.elapsed().as_millis() as u64,
            }))
            .await;
    }
}

/// Ends the connection with this outcome.
struct Close(String);

struct Session<'a, W: Wire> {
    wire: W,
    state: &'a State,
    log: ConnectionLog,
    identity: Option<Identity>,
    /// Credentials were wrong: answer the first request with 401, then close.
    unauthorized: bool,
    next_pid: u16,
    drop_after: Option<u64>,
    peer_cert: Option<PeerCert>,
    /// The QoS granted for `$dps/registrations/res/#`: responses are only delivered while it
    /// exists, as by DPS, at that QoS.
    subscribed: Option<QoS>,
    /// From the keep-alive; applies once the credentials are accepted.
    idle_timeout: Duration,
    /// The end of the time for the handshake and the CONNECT.
    connect_deadline: tokio::time::Instant,
    /// The api-version of the CONNECT user name: `csr` is part of the register request from
    /// 2025-07-01-preview on; older versions do not know the field and ignore it.
    api_version: String,
}

pub async fn serve<W: Wire>(
    wire: W,
    state: &State,
    mut log: ConnectionLog,
    peer_cert: Option<PeerCert>,
    connect_deadline: tokio::time::Instant,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    log.set_outcome("closed");
    let mut s = Session {
        wire,
        state,
        log,
        identity: None,
        unauthorized: false,
        next_pid: 1,
        drop_after: None,
        peer_cert,
        subscribed: None,
        idle_timeout: IDLE_TIMEOUT,
        connect_deadline,
        api_version: String::new(),
    };
    let outcome = match s.run().await {
        Ok(()) => None,
        Err(Close(why)) => Some(why),
    };
    if let Some(why) = outcome {
        s.log.set_outcome(why);
    }
    // Logged before the close, so a client that has seen the close finds its line.
    s.log.finish(state).await;
    // Free before the close, so a client that has seen the close can connect again.
    drop(slot);
    s.wire.shutdown().await;
}

impl<W: Wire> Session<'_, W> {
    async fn run(&mut self) -> Result<(), Close> {
        let mut buf = Vec::new();
        let mut first = true;
        let mut shutdown = self.state.shutdown.subscribe();
        if *shutdown.borrow_and_update() {
            return Err(Close("server-shutdown".into()));
        }
        loop {
            // Decode every complete packet in the buffer.
            loop {
                let total = match frame_length(&buf) {
                    Ok(Some(t)) if buf.len() >= t => t,
                    Ok(_) => break,
                    Err(e) => return Err(Close(format!("protocol-error: {e}"))),
                };
                // CONNECT frames carry the SAS token.
                let frame = zeroize::Zeroizing::new(buf.drain(..total).collect::<Vec<u8>>());
                // mqttrs is not trusted with hostile bytes: a panic ends this connection only.
                let packet = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    decode_slice(&frame)
                })) {
                    Ok(Ok(Some(p))) => p,
                    _ => return Err(Close("protocol-error: undecodable packet".into())),
                };
                *self.log.packets_in.entry(kind(&packet)).or_default() += 1;
                if first && !matches!(packet, Packet::Connect(_)) {
                    return Err(Close("protocol-error: first packet is not CONNECT".into()));
                }
                first = false;
                if self.handle(packet).await? {
                    return Ok(());
                }
            }
            // The CONNECT must be complete by the deadline, however slowly it trickles in;
            // until the credentials are accepted no keep-alive buys more than that.
            let now = tokio::time::Instant::now();
            let deadline = if first {
                self.connect_deadline
            } else if self.identity.is_none() {
                now + self.idle_timeout.min(self.state.limits.connect_timeout)
            } else {
                now + self.idle_timeout
            };
            let read = tokio::time::timeout_at(deadline, self.wire.read(&mut buf));
            let n = tokio::select! {
                r = read => match r {
                    Err(_) => return Err(Close("timeout".into())),
                    Ok(Err(e)) => return Err(Close(format!("io-error: {e}"))),
                    Ok(Ok(0)) => return Err(Close(self.close_outcome("closed-by-client"))),
                    Ok(Ok(n)) => n,
                },
                _ = shutdown.changed() => return Err(Close("server-shutdown".into())),
            };
            self.log.bytes_in += n as u64;
            if let Some(limit) = self.drop_after {
                if self.log.bytes_in >= limit {
                    return Err(Close("dropped (dropAfterBytes)".into()));
                }
            }
        }
    }

    fn close_outcome(&self, default: &str) -> String {
        if self.log.outcome != "closed" {
            self.log.outcome.clone()
        } else {
            default.to_owned()
        }
    }

    async fn send(&mut self, packet: &Packet<'_>) -> Result<(), Close> {
        // mqttrs would truncate the 16-bit length and send a malformed packet.
        if let Packet::Publish(p) = packet {
            if p.topic_name.len() > MAX_TOPIC {
                return Err(Close(format!(
                    "protocol-error: response topic of {} bytes (over 65,535)",
                    p.topic_name.len()
                )));
            }
        }
        let size = match packet {
            Packet::Publish(p) => p.topic_name.len() + p.payload.len() + 16,
            Packet::Suback(s) => s.return_codes.len() + 16,
            _ => 16,
        };
        let mut buf = vec![0u8; size];
        let n = encode_slice(packet, &mut buf).map_err(|e| Close(format!("encode: {e:?}")))?;
        buf.truncate(n);
        let (delay, fragment) = self
            .identity
            .as_ref()
            .map_or((0, false), |i| (i.behaviour.delay_ms, i.behaviour.fragment));
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let wire = &mut self.wire;
        let write = async move {
            if fragment {
                for b in &buf {
                    wire.write(std::slice::from_ref(b)).await?;
                }
                Ok(())
            } else {
                wire.write(&buf).await
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Close(format!("io-error: {e}"))),
            Err(_) => return Err(Close("write-timeout".into())),
        }
        self.log.bytes_out += n as u64;
        *self.log.packets_out.entry(kind(packet)).or_default() += 1;
        Ok(())
    }

    async fn connack(&mut self, code: ConnectReturnCode) -> Result<(), Close> {
        self.send(&Packet::Connack(Connack {
            session_present: false,
            code,
        }))
        .await
    }

    async fn refuse(&mut self, code: ConnectReturnCode, why: &str) -> Result<bool, Close> {
        self.connack(code).await?;
        Err(Close(format!("{why} (CONNACK {})", code as u8)))
    }

    /// Returns true when the connection should end normally.
    async fn handle(&mut self, packet: Packet<'_>) -> Result<bool, Close> {
        match packet {
            Packet::Connect(c) => {
                if self.identity.is_some() || self.unauthorized {
                    return Err(Close("protocol-error: second CONNECT".into()));
                }
                if c.protocol != Protocol::MQTT311 {
                    return self
                        .refuse(
                            ConnectReturnCode::RefusedProtocolVersion,
                            "protocol-version",
                        )
                        .await;
                }
                let Some(Username {
                    scope,
                    registration_id: reg,
                    api_version,
                    client_version,
                }) = c.username.and_then(parse_username)
                else {
                    return self
                        .refuse(ConnectReturnCode::BadUsernamePassword, "malformed-username")
                        .await;
                };
                self.log.registration_id = Some(reg.clone());
                self.api_version = api_version.clone();
                self.log.api_version = Some(api_version);
                self.log.client_version = client_version;
                if c.keep_alive > 0 {
                    // MQTT 3.1.1 §3.1.2.10: one and a half keep-alive periods of silence.
                    let keep_alive = c.keep_alive.min(MAX_KEEP_ALIVE);
                    self.idle_timeout = Duration::from_millis(u64::from(keep_alive) * 1500);
                }
                let known_scope = &self.state.enrollments.id_scope;
                // Without an enrollment file every scope is known and every device refused.
                if !known_scope.is_empty() && !scope.eq_ignore_ascii_case(known_scope) {
                    return self
                        .refuse(ConnectReturnCode::ServerUnavailable, "unknown-id-scope")
                        .await;
                }
                if c.client_id != reg {
                    return self
                        .refuse(
                            ConnectReturnCode::RefusedIdentifierRejected,
                            "client-id-mismatch",
                        )
                        .await;
                }
                let identity = match c.password {
                    Some(pw) if !pw.is_empty() => {
                        let Some(sas) = std::str::from_utf8(pw).ok().and_then(parse_sas) else {
                            return self
                                .refuse(
                                    ConnectReturnCode::BadUsernamePassword,
                                    "malformed-password",
                                )
                                .await;
                        };
                        self.log.sas_expiry = Some(sas.se);
                        self.check_sas(&scope, &reg, &sas)
                    }
                    _ => match &self.peer_cert {
                        Some(PeerCert {
                            common_name: Some(cn),
                            trusted: true,
                        }) => self
                            .state
                            .enrollments
                            .authenticate(&reg, &Credentials::Certificate { common_name: cn }),
                        _ => None,
                    },
                };
                match identity {
                    Some(id) => {
                        let connections = if id.behaviour.drop_after_bytes.is_none() {
                            0
                        } else {
                            let mut devices = self
                                .state
                                .devices
                                .lock()
                                .map_err(|_| Close("lock".into()))?;
                            let d = devices.entry(reg.to_ascii_lowercase()).or_default();
                            d.connections += 1;
                            d.connections
                        };
                        if let Some(limit) = id.behaviour.drop_after_bytes {
                            if connections <= id.behaviour.drop_connections {
                                self.drop_after = Some(limit);
                            }
                        }
                        self.log.enrollment = Some(id.enrollment.clone());
                        self.identity = Some(id);
                        self.connack(ConnectReturnCode::Accepted).await?;
                        if let Some(limit) = self.drop_after {
                            if self.log.bytes_in >= limit {
                                return Err(Close("dropped (dropAfterBytes)".into()));
                            }
                        }
                    }
                    None => {
                        let mode = self
                            .state
                            .enrollments
                            .auth_failure_for(&reg, self.state.auth_failure);
                        if mode == AuthFailure::Connack {
                            return self
                                .refuse(ConnectReturnCode::NotAuthorized, "unauthorized")
                                .await;
                        }
                        self.unauthorized = true;
                        self.connack(ConnectReturnCode::Accepted).await?;
                    }
                }
                Ok(false)
            }
            Packet::Subscribe(sub) => {
                // QoS 0 is granted as asked (the FreeRTOS middleware subscribes so and ignores
                // the SUBACK), QoS 2 as QoS 1, the service's maximum.
                let codes: Vec<_> = sub
                    .topics
                    .iter()
                    .map(|t| {
                        if t.topic_path == SUBSCRIBE_FILTER {
                            SubscribeReturnCodes::Success(match t.qos {
                                QoS::AtMostOnce => QoS::AtMostOnce,
                                _ => QoS::AtLeastOnce,
                            })
                        } else {
                            SubscribeReturnCodes::Failure
                        }
                    })
                    .collect();
                if let Some(SubscribeReturnCodes::Success(qos)) =
                    codes.iter().rfind(|c| **c != SubscribeReturnCodes::Failure)
                {
                    self.subscribed = Some(*qos);
                }
                self.send(&Packet::Suback(Suback {
                    pid: sub.pid,
                    return_codes: codes,
                }))
                .await?;
                Ok(false)
            }
            Packet::Unsubscribe(unsub) => {
                if unsub.topics.iter().any(|t| t == SUBSCRIBE_FILTER) {
                    self.subscribed = None;
                }
                self.send(&Packet::Unsuback(unsub.pid)).await?;
                Ok(false)
            }
            Packet::Publish(p) => self.on_publish(p).await,
            Packet::Puback(_) => Ok(false),
            Packet::Pingreq => {
                self.send(&Packet::Pingresp).await?;
                Ok(false)
            }
            Packet::Disconnect => {
                let outcome = self.close_outcome("disconnected");
                self.log.set_outcome(outcome);
                Ok(true)
            }
            other => Err(Close(format!(
                "protocol-error: unexpected {}",
                kind(&other)
            ))),
        }
    }

    fn check_sas(&self, scope: &str, reg: &str, sas: &Sas) -> Option<Identity> {
        let resource = percent_decode(&sas.sr_raw)?;
        let expected = format!("{scope}/registrations/{reg}");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        let skn_ok = sas.skn.as_deref().is_none_or(|k| k == "registration");
        if !resource.eq_ignore_ascii_case(&expected) || sas.se <= now || !skn_ok {
            return None;
        }
        let signed = format!("{}\n{}", sas.sr_raw, sas.se_raw);
        self.state.enrollments.authenticate(
            reg,
            &Credentials::Sas {
                signed: &signed,
                signature: &sas.sig,
            },
        )
    }

    async fn respond(
        &mut self,
        status: u16,
        rid: &str,
        retry_after: Option<u64>,
        body: &Value,
    ) -> Result<(), Close> {
        let Some(qos) = self.subscribed else {
            self.log.unsubscribed_responses += 1;
            return Ok(());
        };
        let mut topic = format!("$dps/registrations/res/{status}/?$rid={rid}");
        if let Some(s) = retry_after {
            topic.push_str(&format!("&retry-after={s}"));
        }
        let body = body.to_string();
        let qospid = if qos == QoS::AtMostOnce {
            QosPid::AtMostOnce
        } else {
            let pid = Pid::try_from(self.next_pid).unwrap_or_default();
            self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
            QosPid::AtLeastOnce(pid)
        };
        self.send(&Packet::Publish(Publish {
            dup: false,
            qospid,
            retain: false,
            topic_name: &topic,
            payload: body.as_bytes(),
        }))
        .await
    }

    fn envelope(&self, error_code: i64, message: &str) -> Value {
        json!({
            "errorCode": error_code,
            "trackingId": self.state.unique(),
            "message": message,
            "timestampUtc": now_utc(),
        })
    }

    async fn on_publish(&mut self, p: Publish<'_>) -> Result<bool, Close> {
        if let QosPid::AtLeastOnce(pid) = p.qospid {
            self.send(&Packet::Puback(pid)).await?;
        }
        if matches!(p.qospid, QosPid::ExactlyOnce(_)) {
            return Err(Close("protocol-error: QoS 2 PUBLISH".into()));
        }
        let (is_register, params) = if let Some(q) = p.topic_name.strip_prefix(REGISTER_PREFIX) {
            (true, query(q))
        } else if let Some(q) = p.topic_name.strip_prefix(POLL_PREFIX) {
            (false, query(q))
        } else {
            return Err(Close(format!(
                "protocol-error: publish to {:?}",
                p.topic_name
            )));
        };
        let Some(rid) = params.get("$rid").map(|r| (*r).to_owned()) else {
            return Err(Close("protocol-error: request without $rid".into()));
        };
        // Its response topic could not be sent: refused before anything is kept for it.
        if rid.len() + RESPONSE_TOPIC_OVERHEAD > MAX_TOPIC {
            return Err(Close(format!(
                "protocol-error: $rid of {} bytes (the response topic would exceed 65,535)",
                rid.len()
            )));
        }
        if self.unauthorized {
            let env = self.envelope(401002, "Unauthorized: the credentials were not accepted.");
            self.respond(401, &rid, None, &env).await?;
            return Err(Close("unauthorized (401)".into()));
        }
        let Some(identity) = self.identity.clone() else {
            return Err(Close("protocol-error: publish before CONNECT".into()));
        };
        let b = &identity.behaviour;
        // Only the scenario knobs need per-device counters: registration ids without them (a
        // flood of a group's devices, say) leave nothing behind.
        let counted = b.throttle_first > 0 || b.server_error_first > 0 || b.limit_polls;
        let (request_no, poll_wait) = if !counted {
            (u64::MAX, None)
        } else {
            let mut devices = self
                .state
                .devices
                .lock()
                .map_err(|_| Close("lock".into()))?;
            let d = devices
                .entry(identity.registration_id.to_ascii_lowercase())
                .or_default();
            d.requests += 1;
            let mut poll_wait = None;
            if !is_register && b.limit_polls {
                let now = Instant::now();
                while d.polls.front().is_some_and(|t| now - *t >= POLL_WINDOW) {
                    d.polls.pop_front();
                }
                if d.polls.len() >= POLL_LIMIT {
                    let oldest = d.polls.front().copied().unwrap_or(now);
                    let left = POLL_WINDOW.saturating_sub(now - oldest);
                    poll_wait = Some(left.as_secs() + u64::from(left.subsec_nanos() > 0));
                } else {
                    // Refused polls do not count: a client that waits retry-after gets through.
                    d.polls.push_back(now);
                }
            }
            (d.requests, poll_wait)
        };
        if let Some(wait) = poll_wait {
            let env = self.envelope(429001, "Too many status polls for this device.");
            self.respond(429, &rid, Some(wait), &env).await?;
            self.log.set_outcome("poll-limited");
            return Ok(false);
        }
        if request_no <= b.throttle_first {
            let env = self.envelope(429001, "Operations are being throttled for this tenant.");
            self.respond(429, &rid, Some(b.retry_after), &env).await?;
            self.log.set_outcome("throttled");
            return Ok(false);
        }
        if request_no <= b.throttle_first + b.server_error_first {
            let env = self.envelope(500000, "Internal server error.");
            self.respond(500, &rid, Some(b.retry_after), &env).await?;
            self.log.set_outcome("server-error");
            return Ok(false);
        }
        if is_register {
            self.on_register(&identity, &rid, p.payload).await
        } else {
            let op_id = params.get("operationId").and_then(|o| percent_decode(o));
            self.on_poll(&identity, &rid, op_id).await
        }
    }

    async fn on_register(&mut self, id: &Identity, rid: &str, body: &[u8]) -> Result<bool, Close> {
        // Microsoft's Embedded C SDK samples send an empty body, which the service assigns:
        // an empty (or blank) body is an empty request.
        let parsed: Option<Value> = if body.trim_ascii().is_empty() {
            Some(Value::Object(serde_json::Map::new()))
        } else {
            serde_json::from_slice(body).ok()
        };
        let Some(Value::Object(obj)) = parsed else {
            let env = self.envelope(
                400004,
                "The request body is not a valid registration request.",
            );
            self.respond(400, rid, None, &env).await?;
            self.log.set_outcome("bad-request");
            return Ok(false);
        };
        if obj.contains_key("modelId") {
            let env = self.envelope(400012, "modelId must be sent inside payload.");
            self.respond(400, rid, None, &env).await?;
            self.log.set_outcome("bad-request");
            return Ok(false);
        }
        // Optional: the connection names the device; when sent it must agree.
        let matches = obj.get("registrationId").is_none_or(|r| {
            r.as_str()
                .is_some_and(|r| r.eq_ignore_ascii_case(&id.registration_id))
        });
        if !matches {
            let env = self.envelope(400004, "registrationId does not match the connection.");
            self.respond(400, rid, None, &env).await?;
            self.log.set_outcome("bad-request");
            return Ok(false);
        }
        // `YYYY-MM-DD[-preview]` compares as a date.
        let issuance = self.api_version.as_str() >= "2025-07-01";
        let issued = match obj.get("csr").filter(|_| issuance) {
            None => None,
            Some(csr) => {
                let chain = csr
                    .as_str()
                    .ok_or_else(|| "csr is not a string".to_owned())
                    .and_then(|b64| {
                        STANDARD
                            .decode(b64)
                            .map_err(|_| "csr is not base64".to_owned())
                    })
                    .and_then(|der| {
                        crate::certs::sign_csr(&self.state.cert_dir, &der, &id.registration_id)
                    });
                match chain {
                    Ok(chain) => Some(chain.iter().map(|c| STANDARD.encode(c)).collect()),
                    Err(why) => {
                        let env = self.envelope(400004, &format!("Invalid CSR: {why}"));
                        self.respond(400, rid, None, &env).await?;
                        self.log.set_outcome("bad-request");
                        return Ok(false);
                    }
                }
            }
        };
        let op_id = format!("4.{}.{}", self.state.unique(), self.state.unique());
        // The Python SDK sends `"payload": null` when the app set none; DPS returns no key.
        let payload = obj
            .get("payload")
            .filter(|p| !p.is_null())
            .map(Value::to_string);
        let issued_bytes: usize = issued
            .as_ref()
            .map_or(0, |c: &Vec<String>| c.iter().map(String::len).sum());
        let op = Operation {
            registration_id: id.registration_id.clone(),
            seq: 0,
            // What the operation keeps: the request's payload and the issued chain, with room
            // for the ids and timestamps.
            bytes: payload.as_ref().map_or(0, String::len) + issued_bytes + 256,
            polls: 0,
            payload,
            issued,
            created: now_utc(),
        };
        self.state
            .operations
            .lock()
            .map_err(|_| Close("lock".into()))?
            .insert(op_id.clone(), op);
        let body = json!({ "operationId": op_id, "status": "assigning" });
        self.respond(202, rid, Some(id.behaviour.retry_after), &body)
            .await?;
        self.log.set_outcome("assigning");
        Ok(false)
    }

    async fn on_poll(
        &mut self,
        id: &Identity,
        rid: &str,
        op_id: Option<String>,
    ) -> Result<bool, Close> {
        let b = &id.behaviour;
        let found = op_id.as_ref().and_then(|op_id| {
            let mut ops = self.state.operations.lock().ok()?;
            let op = ops.by_id.get_mut(op_id)?;
            if !op.registration_id.eq_ignore_ascii_case(&id.registration_id) {
                return None;
            }
            op.polls += 1;
            Some((
                op.polls,
                op.payload.clone(),
                op.issued.clone(),
                op.created.clone(),
            ))
        });
        let Some((polls, device_payload, issued, created)) = found else {
            let env = self.envelope(404104, "Operation not found.");
            self.respond(404, rid, None, &env).await?;
            self.log.set_outcome("not-found");
            return Ok(false);
        };
        let op_id = op_id.unwrap_or_default();
        if polls <= b.assign_after_polls {
            let body = json!({ "operationId": op_id, "status": "assigning" });
            self.respond(202, rid, Some(b.retry_after), &body).await?;
            return Ok(false);
        }
        let status = match b.outcome {
            Outcome::Assigned => "assigned",
            Outcome::Failed => "failed",
            Outcome::Disabled => "disabled",
        };
        let mut state = json!({
            "registrationId": id.registration_id,
            "createdDateTimeUtc": created,
            "status": status,
            "lastUpdatedDateTimeUtc": now_utc(),
            "etag": STANDARD.encode(format!("\"{}\"", self.state.unique())),
        });
        match b.outcome {
            Outcome::Assigned => {
                state["assignedHub"] = json!(b.assigned_hub);
                state["deviceId"] = json!(b
                    .device_id
                    .clone()
                    .unwrap_or_else(|| id.registration_id.clone()));
                state["substatus"] = json!(b.substatus);
                let device_payload = device_payload.and_then(|p| serde_json::from_str(&p).ok());
                if let Some(p) = b.payload.clone().or(device_payload) {
                    state["payload"] = p;
                }
                if let Some(chain) = issued {
                    state["issuedCertificateChain"] = json!(chain);
                }
            }
            Outcome::Failed | Outcome::Disabled => {
                state["errorCode"] =
                    json!(b.error_code.unwrap_or(if b.outcome == Outcome::Failed {
                        400209
                    } else {
                        401005
                    }));
                state["errorMessage"] = json!(b.error_message.clone().unwrap_or_else(|| {
                    if b.outcome == Outcome::Failed {
                        "Custom allocation failed.".into()
                    } else {
                        "The enrollment is disabled.".into()
                    }
                }));
            }
        }
        let body = json!({ "operationId": op_id, "status": status, "registrationState": state });
        self.respond(200, rid, None, &body).await?;
        self.log.set_outcome(status);
        Ok(false)
    }
}
