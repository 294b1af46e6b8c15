//! One device connection: MQTT 3.1.1 as DPS speaks it, with the enrollment's scenario knobs.
//! Any malformed input ends this connection only.

use std::collections::{BTreeMap, HashMap};
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
const MAX_PACKET: usize = 96 * 1024 + 1024;
const FIRST_PACKET_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
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
    polls: u64,
    payload: Option<Value>,
    csr: Option<String>,
    created: String,
}

#[derive(Default)]
struct DeviceCounters {
    requests: u64,
    connections: u64,
}

pub struct State {
    pub enrollments: EnrollmentFile,
    pub auth_failure: AuthFailure,
    pub cert_dir: PathBuf,
    devices: Mutex<HashMap<String, DeviceCounters>>,
    operations: Mutex<HashMap<String, Operation>>,
    log: Mutex<Option<std::fs::File>>,
    next_id: AtomicU64,
}

impl State {
    pub fn new(
        enrollments: EnrollmentFile,
        auth_failure: AuthFailure,
        cert_dir: PathBuf,
        log: Option<std::fs::File>,
    ) -> State {
        State {
            enrollments,
            auth_failure,
            cert_dir,
            devices: Mutex::new(HashMap::new()),
            operations: Mutex::new(HashMap::new()),
            log: Mutex::new(log),
            next_id: AtomicU64::new(1),
        }
    }

    fn unique(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{:016x}{:08x}", t as u64, n)
    }

    fn write_log(&self, line: &Value) {
        use std::io::Write;
        if let Ok(mut guard) = self.log.lock() {
            if let Some(f) = guard.as_mut() {
                let _ = writeln!(f, "{line}");
                let _ = f.flush();
            }
        }
    }
}

fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
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

/// Parsed `{idScope}/registrations/{registrationId}/api-version=...[&ClientVersion=...]`.
fn parse_username(u: &str) -> Option<(String, String, String)> {
    let (scope, rest) = u.split_once("/registrations/")?;
    let (reg, params) = rest.split_once('/')?;
    let params = query(params);
    let api = params.get("api-version")?;
    if scope.is_empty() || reg.is_empty() || api.is_empty() {
        return None;
    }
    Some((scope.to_owned(), reg.to_owned(), (*api).to_owned()))
}

struct Sas {
    sr_raw: String,
    sig: String,
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
        se: fields.get("se")?.parse().ok()?,
        skn: fields.get("skn").map(|s| (*s).to_owned()),
    })
}

pub struct ConnectionLog {
    pub transport: &'static str,
    registration_id: Option<String>,
    enrollment: Option<String>,
    bytes_in: u64,
    bytes_out: u64,
    packets_in: BTreeMap<&'static str, u64>,
    packets_out: BTreeMap<&'static str, u64>,
    outcome: String,
    started: Instant,
}

impl ConnectionLog {
    pub fn new(transport: &'static str) -> ConnectionLog {
        ConnectionLog {
            transport,
            registration_id: None,
            enrollment: None,
            bytes_in: 0,
            bytes_out: 0,
            packets_in: BTreeMap::new(),
            packets_out: BTreeMap::new(),
            outcome: "closed".into(),
            started: Instant::now(),
        }
    }

    pub fn set_outcome(&mut self, outcome: impl Into<String>) {
        self.outcome = outcome.into();
    }

    pub fn finish(self, state: &State) {
        state.write_log(&json!({
            "registrationId": self.registration_id,
            "enrollment": self.enrollment,
            "transport": self.transport,
            "bytesIn": self.bytes_in,
            "bytesOut": self.bytes_out,
            "packetsIn": self.packets_in,
            "packetsOut": self.packets_out,
            "outcome": self.outcome,
            "durationMs": self.started.elapsed().as_millis() as u64,
        }));
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
    peer_cn: Option<String>,
}

pub async fn serve<W: Wire>(
    wire: W,
    state: &State,
    mut log: ConnectionLog,
    peer_cn: Option<String>,
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
        peer_cn,
    };
    let outcome = match s.run().await {
        Ok(()) => None,
        Err(Close(why)) => Some(why),
    };
    if let Some(why) = outcome {
        s.log.set_outcome(why);
    }
    s.wire.shutdown().await;
    s.log.finish(state);
}

impl<W: Wire> Session<'_, W> {
    async fn run(&mut self) -> Result<(), Close> {
        let mut buf = Vec::new();
        let mut first = true;
        loop {
            // Decode every complete packet in the buffer.
            loop {
                let total = match frame_length(&buf) {
                    Ok(Some(t)) if buf.len() >= t => t,
                    Ok(_) => break,
                    Err(e) => return Err(Close(format!("protocol-error: {e}"))),
                };
                let frame: Vec<u8> = buf.drain(..total).collect();
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
            let timeout = if first {
                FIRST_PACKET_TIMEOUT
            } else {
                IDLE_TIMEOUT
            };
            let n = match tokio::time::timeout(timeout, self.wire.read(&mut buf)).await {
                Err(_) => return Err(Close("timeout".into())),
                Ok(Err(e)) => return Err(Close(format!("io-error: {e}"))),
                Ok(Ok(0)) => return Err(Close(self.close_outcome("closed-by-client"))),
                Ok(Ok(n)) => n,
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
        let mut buf = vec![0u8; MAX_PACKET + 16];
        let n = encode_slice(packet, &mut buf).map_err(|e| Close(format!("encode: {e:?}")))?;
        buf.truncate(n);
        let (delay, fragment) = self
            .identity
            .as_ref()
            .map_or((0, false), |i| (i.behaviour.delay_ms, i.behaviour.fragment));
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let io = |e: std::io::Error| Close(format!("io-error: {e}"));
        if fragment {
            for b in &buf {
                self.wire.write(std::slice::from_ref(b)).await.map_err(io)?;
            }
        } else {
            self.wire.write(&buf).await.map_err(io)?;
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
                let Some((scope, reg, _api)) = c.username.and_then(parse_username) else {
                    return self
                        .refuse(ConnectReturnCode::BadUsernamePassword, "malformed-username")
                        .await;
                };
                self.log.registration_id = Some(reg.clone());
                if scope != self.state.enrollments.id_scope {
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
                        self.check_sas(&scope, &reg, &sas)
                    }
                    _ => match self.peer_cn.clone() {
                        Some(cn) => self
                            .state
                            .enrollments
                            .authenticate(&reg, &Credentials::Certificate { common_name: &cn }),
                        None => None,
                    },
                };
                match identity {
                    Some(id) => {
                        let connections = {
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
                let codes = sub
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
                self.send(&Packet::Suback(Suback {
                    pid: sub.pid,
                    return_codes: codes,
                }))
                .await?;
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
        if !resource.eq_ignore_ascii_case(&expected) || sas.se <= now || sas.skn.as_deref().is_some_and(|k| k != "registration") {
            return None;
        }
        let signed = format!("{}\n{}", sas.sr_raw, sas.se);
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
        let mut topic = format!("$dps/registrations/res/{status}/?$rid={rid}");
        if let Some(s) = retry_after {
            topic.push_str(&format!("&retry-after={s}"));
        }
        let body = body.to_string();
        let pid = Pid::try_from(self.next_pid).unwrap_or_default();
        self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
        self.send(&Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(pid),
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
        if self.unauthorized {
            let env = self.envelope(401002, "Unauthorized: the credentials were not accepted.");
            self.respond(401, &rid, None, &env).await?;
            return Err(Close("unauthorized (401)".into()));
        }
        let Some(identity) = self.identity.clone() else {
            return Err(Close("protocol-error: publish before CONNECT".into()));
        };
        let b = &identity.behaviour;
        let request_no = {
            let mut devices = self
                .state
                .devices
                .lock()
                .map_err(|_| Close("lock".into()))?;
            let d = devices
                .entry(identity.registration_id.to_ascii_lowercase())
                .or_default();
            d.requests += 1;
            d.requests
        };
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
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
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
        let matches = obj
            .get("registrationId")
            .and_then(Value::as_str)
            .is_some_and(|r| r.eq_ignore_ascii_case(&id.registration_id));
        if !matches {
            let env = self.envelope(400004, "registrationId does not match the connection.");
            self.respond(400, rid, None, &env).await?;
            self.log.set_outcome("bad-request");
            return Ok(false);
        }
        let op_id = format!("4.{}.{}", self.state.unique(), self.state.unique());
        let op = Operation {
            registration_id: id.registration_id.clone(),
            polls: 0,
            payload: obj.get("payload").cloned(),
            csr: obj.get("csr").and_then(Value::as_str).map(str::to_owned),
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
            let op = ops.get_mut(op_id)?;
            if !op.registration_id.eq_ignore_ascii_case(&id.registration_id) {
                return None;
            }
            op.polls += 1;
            Some((
                op.polls,
                op.payload.clone(),
                op.csr.clone(),
                op.created.clone(),
            ))
        });
        let Some((polls, device_payload, csr, created)) = found else {
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
                if let Some(p) = b.payload.clone().or(device_payload) {
                    state["payload"] = p;
                }
                if let Some(csr) = csr {
                    let der = STANDARD
                        .decode(csr)
                        .map_err(|_| Close("bad csr".into()))
                        .and_then(|der| {
                            crate::certs::sign_csr(&self.state.cert_dir, &der)
                                .map_err(|e| Close(format!("csr: {e}")))
                        });
                    match der {
                        Ok(chain) => {
                            state["issuedCertificateChain"] =
                                json!(chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>());
                        }
                        Err(Close(why)) => {
                            let env = self.envelope(400004, &format!("Invalid CSR: {why}"));
                            self.respond(400, rid, None, &env).await?;
                            return Ok(false);
                        }
                    }
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
