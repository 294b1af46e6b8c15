//! MQTT 3.1.1 client session on the mqttrs codec, sans-IO.
//!
//! The caller owns the socket and the clock:
//! - queue packets with [`MqttSession::connect`], [`MqttSession::subscribe`],
//!   [`MqttSession::publish`], [`MqttSession::disconnect`]; they accumulate in one buffer, so
//!   CONNECT, SUBSCRIBE and PUBLISH leave in one flight (MQTT 3.1.1 lets a client send before
//!   CONNACK);
//! - send what [`MqttSession::take_output`] returns;
//! - feed received bytes, in any chunking, to [`MqttSession::handle_input`], then drain
//!   [`MqttSession::poll_event`];
//! - call [`MqttSession::set_now`] before queueing or feeding input, and
//!   [`MqttSession::handle_timeout`] once [`MqttSession::next_timeout`] has passed: keep-alive
//!   needs to know when bytes moved. Times are milliseconds on the caller's monotonic clock.
//!
//! PUBACK for a QoS 1 PUBLISH and PINGREQ for keep-alive are queued automatically.
//!
//! Every byte from the server is hostile. What the server may send is one table, `ACCEPTED`:
//! per packet kind its flags, its body length and when it may arrive. The fixed header is
//! parsed here, before mqttrs sees anything, and the table is applied as early as each rule can
//! be: kind, flags and connection phase at the first byte; a length over the limit and the
//! kind's body length before the body is buffered; a PUBLISH's topic once its body is in; and an
//! acknowledgement's packet id once decoded. Only then does mqttrs decode exactly one complete
//! packet. That order
//! matters: mqttrs 0.4.1 indexes its input without bounds checks and panics on short packets
//! (`[0x40, 0x00]`, a PUBACK without its packet id) and, handed more than one packet, reads
//! fields out of the next one (see the tests). The checks here rule out every such path; a
//! `catch_unwind` around the decoder remains as a last guard.
//!
//! QoS 2 is not supported: DPS publishes at QoS 1, and this client subscribes at QoS 1 at
//! most, so a server's QoS 2 PUBLISH breaks the protocol and ends the session with
//! `ErrorKind::ProtocolUnexpectedPacket` (as do PUBREC, PUBREL and PUBCOMP).

use crate::prelude::*;
use alloc::collections::VecDeque;
#[cfg(feature = "std")]
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use mqttrs::QoS;
use mqttrs::{
    decode_slice, encode_slice, Connect, ConnectReturnCode, Packet, Pid, Protocol, Publish, QosPid,
    Subscribe, SubscribeReturnCodes, SubscribeTopic,
};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// Just above the service's 96 KB message limit, so that every legal response fits.
pub const DEFAULT_MAX_PACKET_SIZE: usize = crate::settings::DPS_MAX_PACKET_SIZE_DEFAULT as usize;

/// The largest remaining length MQTT can express (four length bytes).
const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Fixed header (1 byte) plus the longest remaining-length field (4 bytes).
const MAX_FIXED_HEADER: usize = 5;

// Packet types (the high nibble of the first byte).
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const SUBACK: u8 = 9;
const PINGRESP: u8 = 13;

/// What CONNECT carries.
pub struct ConnectOptions {
    /// The registration id.
    pub client_id: String,
    pub username: String,
    /// The SAS token; `None` with X.509 client certificates.
    pub password: Option<Zeroizing<Vec<u8>>>,
    /// 0 disables keep-alive.
    pub keep_alive_secs: u16,
}

/// Something the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MqttEvent {
    /// `code` is the raw return code: 0 accepted, 1–5 the refusals MQTT 3.1.1 defines; any
    /// other value is passed through for the caller to report.
    ConnAck {
        session_present: bool,
        code: u8,
    },
    /// One entry per filter of the SUBSCRIBE with packet id `pid`; `None` = refused (0x80).
    SubAck {
        pid: u16,
        granted: Vec<Option<QoS>>,
    },
    /// An application message. A QoS 1 message has already been acknowledged (PUBACK queued).
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        /// The packet id for QoS 1; a redelivery repeats it.
        pid: Option<u16>,
    },
    /// The server acknowledged our QoS 1 PUBLISH `pid`.
    PubAck {
        pid: u16,
    },
    PingResp,
}

fn malformed(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::ProtocolMalformed, detail)
}

fn unexpected(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::ProtocolUnexpectedPacket, detail)
}

fn invalid_argument(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, detail)
}

fn invalid_state(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidState, detail)
}

/// mqttrs truncates longer strings' length prefixes silently, so every field is checked first.
fn check_field(what: &str, len: usize) -> Result<()> {
    if len > usize::from(u16::MAX) {
        return Err(invalid_argument(format!(
            "{what} is {len} bytes; MQTT allows at most 65535"
        )));
    }
    Ok(())
}

/// What the flags (the low nibble of the first byte) of a packet kind may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flags {
    /// Reserved: all zero.
    Zero,
    /// PUBLISH's DUP, QoS and RETAIN, with QoS 0 or 1: QoS 3 does not exist (malformed), and
    /// QoS 2 is more than this client's subscriptions ask for (unexpected).
    UpToQos1,
}

/// The body length of a packet kind, known from the fixed header before the body is buffered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    Exactly(usize),
    AtLeast(usize),
    /// A topic (its 2-byte length, then the name) and, above QoS 0, a 2-byte packet id: the
    /// header must leave room for the length and the id, and once the body is in, the topic
    /// must fit in it (mqttrs would read past it).
    Topic,
}

/// When the server may send a packet kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    /// Once, before anything else: the answer to CONNECT.
    FirstOnly,
    /// Any time after CONNACK.
    AfterConnack,
    /// After CONNACK, and only as the answer to a packet of ours that awaits this kind with the
    /// same packet id (a SUBSCRIBE its SUBACK, a QoS 1 PUBLISH its PUBACK), checked once the
    /// id is decoded; each packet is answered once.
    Answering,
}

/// A packet kind the server may send, and what it must look like.
struct Acceptance {
    kind: u8,
    name: &'static str,
    flags: Flags,
    body: Body,
    when: When,
}

/// Every packet this client accepts. Any other kind is refused at its first byte: types 0 and
/// 15 are reserved (malformed), the others are client-to-server or QoS 2 flow (unexpected).
const ACCEPTED: [Acceptance; 5] = [
    Acceptance {
        kind: CONNACK,
        name: "CONNACK",
        flags: Flags::Zero,
        body: Body::Exactly(2),
        when: When::FirstOnly,
    },
    Acceptance {
        kind: PUBLISH,
        name: "PUBLISH",
        flags: Flags::UpToQos1,
        body: Body::Topic,
        when: When::AfterConnack,
    },
    Acceptance {
        kind: PUBACK,
        name: "PUBACK",
        flags: Flags::Zero,
        body: Body::Exactly(2),
        when: When::Answering,
    },
    Acceptance {
        kind: SUBACK,
        name: "SUBACK",
        flags: Flags::Zero,
        // The packet id and at least one return code.
        body: Body::AtLeast(3),
        when: When::Answering,
    },
    Acceptance {
        kind: PINGRESP,
        name: "PINGRESP",
        flags: Flags::Zero,
        body: Body::Exactly(0),
        when: When::AfterConnack,
    },
];

impl Acceptance {
    /// The row for the first byte `first`, if its kind, flags and the connection's phase
    /// (`connack_seen`) admit it.
    fn for_first_byte(first: u8, connack_seen: bool) -> Result<&'static Acceptance> {
        let kind = first >> 4;
        let flags = first & 0x0f;
        let Some(rule) = ACCEPTED.iter().find(|rule| rule.kind == kind) else {
            return Err(if kind == 0 || kind == 15 {
                malformed(format!("reserved packet type {kind}"))
            } else {
                unexpected(format!("packet type {kind} is never sent to this client"))
            });
        };
        let name = rule.name;
        match rule.flags {
            Flags::Zero if flags != 0 => {
                return Err(malformed(format!("{name} with reserved flags {flags:#x}")))
            }
            Flags::Zero => {}
            Flags::UpToQos1 => match publish_qos(first) {
                3 => return Err(malformed("PUBLISH with QoS 3")),
                2 => return Err(unexpected("QoS 2 PUBLISH (the subscription is QoS 1)")),
                _ => {}
            },
        }
        match rule.when {
            When::FirstOnly if connack_seen => Err(unexpected(format!("second {name}"))),
            When::AfterConnack | When::Answering if !connack_seen => {
                Err(unexpected(format!("{name} before CONNACK")))
            }
            _ => Ok(rule),
        }
    }

    /// Whether a body of `len` bytes suits this kind with first byte `first`.
    fn check_body_length(&self, first: u8, len: usize) -> Result<()> {
        let ok = match self.body {
            Body::Exactly(n) => len == n,
            Body::AtLeast(n) => len >= n,
            Body::Topic => len >= topic_and_pid_len(first),
        };
        if ok {
            Ok(())
        } else {
            Err(malformed(format!(
                "packet type {} with a {len}-byte body",
                self.kind
            )))
        }
    }

    /// Whether the complete `body` holds what this kind's length rule promises.
    fn check_body(&self, first: u8, body: &[u8]) -> Result<()> {
        if self.body != Body::Topic {
            return Ok(());
        }
        // A PUBLISH's topic (and packet id) must fit in its body; mqttrs would read past it.
        let topic_len = match body {
            [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => return Err(malformed("PUBLISH without a topic length")),
        };
        // At most 65535 + 4: no overflow, and saturation could only refuse.
        if topic_len.saturating_add(topic_and_pid_len(first)) > body.len() {
            return Err(malformed(format!(
                "PUBLISH topic of {topic_len} bytes overruns its {}-byte body",
                body.len()
            )));
        }
        Ok(())
    }
}

/// The QoS bits of a PUBLISH's first byte.
fn publish_qos(first: u8) -> u8 {
    (first >> 1) & 3
}

/// The topic length field of a PUBLISH, plus its packet id above QoS 0.
fn topic_and_pid_len(first: u8) -> usize {
    if publish_qos(first) == 0 {
        2
    } else {
        4
    }
}

/// A packet of ours that awaits the server's answer.
struct Awaited {
    /// The kind that answers it: SUBACK or PUBACK.
    answer: u8,
    pid: u16,
    /// The SUBSCRIBE's filter count, each answered by one return code; 0 for a PUBLISH.
    filters: usize,
}

/// A fixed header whose length bytes are complete, and the table's row for its kind.
#[derive(Clone, Copy)]
struct FixedHeader {
    first: u8,
    header_len: usize,
    body_len: usize,
    rule: &'static Acceptance,
}

impl FixedHeader {
    /// The whole packet's length. Saturating: the header is at most 5 bytes and the body at
    /// most `MAX_REMAINING_LENGTH`, so this never saturates where usize has 32 bits or more,
    /// and a saturated total would still be refused by the size limit.
    fn total(self) -> usize {
        self.header_len.saturating_add(self.body_len)
    }
}

/// One MQTT connection's client state. Make a new one (or [`MqttSession::reset`]) for every
/// connection.
pub struct MqttSession {
    max_packet_size: usize,
    /// The packet being received, never more than `max_packet_size` bytes.
    inbound: Vec<u8>,
    /// Zeroizing because CONNECT carries the SAS token.
    outbound: Zeroizing<Vec<u8>>,
    events: VecDeque<MqttEvent>,
    /// Set by the first error; the session then refuses further input.
    failed: Option<Error>,
    connect_queued: bool,
    connack_seen: bool,
    next_pid: u16,
    /// SUBSCRIBEs still waiting for SUBACK and QoS 1 PUBLISHes still waiting for PUBACK.
    awaiting: Vec<Awaited>,
    keep_alive_ms: u64,
    last_sent: u64,
    last_received: u64,
    ping_sent_at: Option<u64>,
    now: u64,
}

impl MqttSession {
    /// A session that refuses incoming packets larger than `max_packet_size` bytes (fixed
    /// header included); [`DEFAULT_MAX_PACKET_SIZE`] suits DPS.
    pub fn new(max_packet_size: usize) -> MqttSession {
        MqttSession {
            max_packet_size,
            inbound: Vec::new(),
            outbound: Zeroizing::new(Vec::new()),
            events: VecDeque::new(),
            failed: None,
            connect_queued: false,
            connack_seen: false,
            next_pid: 1,
            awaiting: Vec::new(),
            keep_alive_ms: 0,
            last_sent: 0,
            last_received: 0,
            ping_sent_at: None,
            now: 0,
        }
    }

    /// Forgets everything about the previous connection (queued output, partial input, packet
    /// ids, keep-alive, a past error) and keeps the size limit and the clock.
    pub fn reset(&mut self) {
        let now = self.now;
        *self = MqttSession::new(self.max_packet_size);
        self.now = now;
    }

    /// The caller's current time in milliseconds; packets queued or received from now on are
    /// stamped with it for keep-alive.
    pub fn set_now(&mut self, now_ms: u64) {
        self.now = now_ms;
    }

    /// Queues CONNECT with clean session = 1 (DPS keeps no session state whatever the flag
    /// says, so subscriptions must be made again on every connection). Only once per session.
    pub fn connect(&mut self, opts: &ConnectOptions) -> Result<()> {
        if self.connect_queued {
            return Err(invalid_state("CONNECT was already sent on this connection"));
        }
        check_field("the client id", opts.client_id.len())?;
        check_field("the user name", opts.username.len())?;
        let password_len = opts.password.as_ref().map_or(0, |p| p.len());
        check_field("the password", password_len)?;
        let packet = Packet::Connect(Connect {
            protocol: Protocol::MQTT311,
            keep_alive: opts.keep_alive_secs,
            client_id: &opts.client_id,
            clean_session: true,
            last_will: None,
            username: Some(&opts.username),
            password: opts.password.as_ref().map(|p| p.as_slice()),
        });
        // Protocol name and level, flags and keep-alive take 10 bytes; each field 2 + its length.
        // Each field was checked to 65535 bytes at most, so the sum cannot saturate.
        let body = [opts.client_id.len(), opts.username.len(), password_len]
            .into_iter()
            .fold(10usize, |sum, len| {
                sum.saturating_add(2).saturating_add(len)
            });
        self.queue(&packet, body)?;
        self.connect_queued = true;
        // At most 65535 * 1000: far below u64::MAX.
        self.keep_alive_ms = u64::from(opts.keep_alive_secs).saturating_mul(1000);
        self.last_received = self.now;
        Ok(())
    }

    /// Queues SUBSCRIBE for one filter at QoS 0 or 1; returns its packet id.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<u16> {
        self.check_connected()?;
        if filter.is_empty() {
            return Err(invalid_argument("empty topic filter"));
        }
        check_field("the topic filter", filter.len())?;
        if qos == QoS::ExactlyOnce {
            return Err(invalid_argument("QoS 2 is not supported"));
        }
        let pid = self.allocate_pid()?;
        self.queue(
            &Packet::Subscribe(Subscribe {
                pid,
                // mqttrs keeps topics in a `Vec` with its `std` feature and in fixed-capacity
                // heapless types without it: `parse` and `collect` build either, and a filter
                // too long for the fixed capacity is an error, not a panic.
                topics: core::iter::once(SubscribeTopic {
                    topic_path: filter
                        .parse()
                        .map_err(|_| invalid_argument("topic filter too long for this build"))?,
                    qos,
                })
                .collect(),
            }),
            // Packet id, filter length, filter, requested QoS; the filter is at most 65535 bytes.
            filter.len().saturating_add(5),
        )?;
        self.awaiting.push(Awaited {
            answer: SUBACK,
            pid: pid.get(),
            filters: 1,
        });
        Ok(pid.get())
    }

    /// Queues PUBLISH at QoS 0 or 1; returns the packet id for QoS 1, whose PUBACK arrives as
    /// [`MqttEvent::PubAck`].
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS) -> Result<Option<u16>> {
        self.check_connected()?;
        if topic.is_empty() || topic.contains(['+', '#', '\0']) {
            return Err(invalid_argument(format!(
                "{topic:?} is not a valid topic name"
            )));
        }
        check_field("the topic name", topic.len())?;
        // The topic's length field, and the packet id above QoS 0.
        let (qospid, fields_len) = match qos {
            QoS::AtMostOnce => (QosPid::AtMostOnce, 2),
            QoS::AtLeastOnce => (QosPid::AtLeastOnce(self.allocate_pid()?), 4),
            QoS::ExactlyOnce => return Err(invalid_argument("QoS 2 is not supported")),
        };
        self.queue(
            &Packet::Publish(Publish {
                dup: false,
                qospid,
                retain: false,
                topic_name: topic,
                payload,
            }),
            // A huge payload saturates, and `queue` refuses a bound over MQTT's limit.
            payload
                .len()
                .saturating_add(topic.len())
                .saturating_add(fields_len),
        )?;
        let pid = qospid.pid().map(Pid::get);
        if let Some(pid) = pid {
            self.awaiting.push(Awaited {
                answer: PUBACK,
                pid,
                filters: 0,
            });
        }
        Ok(pid)
    }

    /// Queues DISCONNECT, the polite end of a connection.
    pub fn disconnect(&mut self) {
        if self.connect_queued {
            let _ = self.queue(&Packet::Disconnect, 0);
        }
    }

    /// The bytes to send, in order; empties the queue. Zeroizing because a CONNECT in it
    /// carries the password.
    pub fn take_output(&mut self) -> Zeroizing<Vec<u8>> {
        core::mem::take(&mut self.outbound)
    }

    /// The next thing the server sent, oldest first.
    pub fn poll_event(&mut self) -> Option<MqttEvent> {
        self.events.pop_front()
    }

    /// Feeds bytes received from the server, split anywhere; complete packets become events.
    /// An error ends the session: the same error is returned for any further input, and the
    /// caller should drop the connection.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.consume(bytes);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.inbound = Vec::new();
        }
        result
    }

    /// When [`MqttSession::handle_timeout`] has keep-alive work to do, in the caller's
    /// milliseconds; `None` without keep-alive.
    pub fn next_timeout(&self) -> Option<u64> {
        if self.keep_alive_ms == 0 || self.failed.is_some() {
            return None;
        }
        let since = match self.ping_sent_at {
            Some(at) => at,
            None => self.last_sent.min(self.last_received),
        };
        Some(since.saturating_add(self.keep_alive_ms))
    }

    /// Keep-alive. Queues PINGREQ once a keep-alive period passed without sending anything or
    /// without receiving anything (the latter catches a half-open connection while we keep
    /// publishing); then, if no packet at all arrives within a further period, reports the
    /// connection dead with `ErrorKind::TransportClosed`.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<()> {
        self.now = now_ms;
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.keep_alive_ms == 0 {
            return Ok(());
        }
        match self.ping_sent_at {
            Some(at) if now_ms >= at.saturating_add(self.keep_alive_ms) => {
                let e = Error::new(
                    ErrorKind::TransportClosed,
                    format!(
                        "no packet from the server within {} ms of PINGREQ",
                        self.keep_alive_ms
                    ),
                );
                self.failed = Some(e.clone());
                Err(e)
            }
            Some(_) => Ok(()),
            None => {
                let idle_since = self.last_sent.min(self.last_received);
                if now_ms >= idle_since.saturating_add(self.keep_alive_ms) {
                    self.queue(&Packet::Pingreq, 0)?;
                    self.ping_sent_at = Some(now_ms);
                }
                Ok(())
            }
        }
    }

    fn check_connected(&self) -> Result<()> {
        if self.connect_queued {
            Ok(())
        } else {
            Err(invalid_state("CONNECT must be the first packet"))
        }
    }

    fn allocate_pid(&mut self) -> Result<Pid> {
        for _ in 0..u16::MAX {
            let candidate = self.next_pid;
            self.next_pid = candidate.checked_add(1).unwrap_or(1);
            let in_use = self.awaiting.iter().any(|a| a.pid == candidate);
            if !in_use {
                if let Ok(pid) = Pid::try_from(candidate) {
                    return Ok(pid);
                }
            }
        }
        Err(invalid_state(
            "every packet id is waiting for an acknowledgement",
        ))
    }

    /// Encodes `packet`, whose remaining length is at most `body_bound`, at the end of the
    /// output queue.
    fn queue(&mut self, packet: &Packet<'_>, body_bound: usize) -> Result<()> {
        if body_bound > MAX_REMAINING_LENGTH {
            return Err(invalid_argument(format!(
                "a packet of {body_bound} bytes is over MQTT's limit"
            )));
        }
        let start = self.outbound.len();
        // `body_bound` is within MQTT's limit (checked above): no saturation.
        let bound = body_bound.saturating_add(MAX_FIXED_HEADER);
        // Grow by hand: a reallocating Vec would free the old copy of the password without
        // wiping it.
        crate::layers::wipe::reserve(&mut self.outbound, bound);
        // The queue already holds `start` bytes in memory, and the reserve above made room for
        // `bound` more, so the sum fits.
        self.outbound.resize(start.saturating_add(bound), 0);
        let encoded = match self.outbound.get_mut(start..) {
            Some(tail) => encode_slice(packet, tail),
            None => Err(mqttrs::Error::WriteZero),
        };
        match encoded {
            Ok(n) => {
                // `n` is at most the `bound` bytes handed to the encoder.
                self.outbound.truncate(start.saturating_add(n));
                self.last_sent = self.now;
                Ok(())
            }
            Err(e) => {
                self.outbound.truncate(start);
                Err(Error::new(
                    ErrorKind::Internal,
                    format!("could not encode {:?}: {e:?}", packet.get_type()),
                ))
            }
        }
    }

    fn consume(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            // Take header bytes one at a time, then exactly the rest of the packet, so that
            // nothing beyond the current packet is ever buffered.
            // `inbound` never holds more than the packet's total (this loop takes no more), so
            // the subtractions below never saturate.
            let want = match self.fixed_header()? {
                Some(h) => h.total().saturating_sub(self.inbound.len()),
                None => 1,
            };
            let (head, tail) = data.split_at_checked(want).unwrap_or((data, &[]));
            self.inbound.extend_from_slice(head);
            data = tail;
            if let Some(h) = self.fixed_header()? {
                if self.inbound.len() >= h.total() {
                    let frame = core::mem::take(&mut self.inbound);
                    self.on_packet(h, &frame)?;
                } else {
                    let missing = h.total().saturating_sub(self.inbound.len());
                    self.inbound.reserve_exact(missing);
                }
            }
        }
        Ok(())
    }

    /// Parses and vets the fixed header at the start of `inbound`; `None` while incomplete.
    fn fixed_header(&self) -> Result<Option<FixedHeader>> {
        let Some(&first) = self.inbound.first() else {
            return Ok(None);
        };
        let rule = Acceptance::for_first_byte(first, self.connack_seen)?;
        // The remaining length: up to four bytes of 7 bits each, least significant first.
        let mut body_len = 0u32;
        let length_bytes = self.inbound.get(1..).unwrap_or_default();
        for (header_len, (&byte, shift)) in (2..).zip(length_bytes.iter().zip([0u32, 7, 14, 21])) {
            // 7 bits shifted by at most 21 stay below 2^28: nothing is shifted out.
            body_len |= u32::from(byte & 0x7f).wrapping_shl(shift);
            if byte & 0x80 == 0 {
                let h = FixedHeader {
                    first,
                    header_len,
                    // A usize narrower than 28 bits would saturate, and be refused as too large.
                    body_len: usize::try_from(body_len).unwrap_or(usize::MAX),
                    rule,
                };
                if h.total() > self.max_packet_size {
                    return Err(Error::new(
                        ErrorKind::ProtocolPacketTooLarge,
                        format!(
                            "packet of {} bytes over the {}-byte limit",
                            h.total(),
                            self.max_packet_size
                        ),
                    ));
                }
                rule.check_body_length(first, h.body_len)?;
                return Ok(Some(h));
            }
        }
        if length_bytes.len() < 4 {
            return Ok(None);
        }
        Err(malformed("remaining length longer than 4 bytes"))
    }

    fn on_packet(&mut self, h: FixedHeader, frame: &[u8]) -> Result<()> {
        h.rule
            .check_body(h.first, frame.get(h.header_len..).unwrap_or_default())?;
        // Last guard: the checks above leave mqttrs no short read, but it is third-party code
        // fed hostile bytes, and a panic must not unwind through the engine.
        #[cfg(feature = "std")]
        let decoded = catch_unwind(AssertUnwindSafe(|| decode_slice(frame)))
            .map_err(|_| malformed("the packet decoder panicked"))?;
        // Without std there is no unwinding to catch: the checks above are the whole guard.
        #[cfg(not(feature = "std"))]
        let decoded = decode_slice(frame);
        let packet = match decoded {
            Ok(Some(p)) => p,
            Ok(None) => return Err(malformed("incomplete packet")),
            // Codes 6–255 are not MQTT 3.1.1's, but the engine reports them as refusals.
            Err(mqttrs::Error::InvalidConnectReturnCode(code)) if h.rule.kind == CONNACK => {
                self.on_connack(frame, code)?;
                return Ok(());
            }
            Err(e) => return Err(malformed(format!("undecodable packet: {e:?}"))),
        };
        self.last_received = self.now;
        self.ping_sent_at = None;
        let answered = match h.rule.when {
            When::Answering => Some(self.take_awaited(h.rule, answer_pid(&packet))?),
            When::FirstOnly | When::AfterConnack => None,
        };
        // The table admitted only its kinds and flags, so each arm below sees a packet it may
        // accept; what remains is the content of each.
        match packet {
            Packet::Connack(c) => {
                let code = match c.code {
                    ConnectReturnCode::Accepted => 0,
                    ConnectReturnCode::RefusedProtocolVersion => 1,
                    ConnectReturnCode::RefusedIdentifierRejected => 2,
                    ConnectReturnCode::ServerUnavailable => 3,
                    ConnectReturnCode::BadUsernamePassword => 4,
                    ConnectReturnCode::NotAuthorized => 5,
                };
                self.on_connack(frame, code)?;
            }
            Packet::Suback(s) => {
                let pid = s.pid.get();
                let filters = answered.map_or(0, |a| a.filters);
                if s.return_codes.len() != filters {
                    return Err(malformed(format!(
                        "SUBACK with {} return codes for {filters} filters",
                        s.return_codes.len()
                    )));
                }
                let granted = s
                    .return_codes
                    .iter()
                    .map(|c| match c {
                        SubscribeReturnCodes::Success(q) => Some(*q),
                        SubscribeReturnCodes::Failure => None,
                    })
                    .collect();
                self.events.push_back(MqttEvent::SubAck { pid, granted });
            }
            Packet::Publish(p) => {
                if p.topic_name.is_empty() || p.topic_name.contains(['+', '#', '\0']) {
                    return Err(malformed(format!(
                        "PUBLISH to the invalid topic name {:?}",
                        p.topic_name
                    )));
                }
                let pid = match p.qospid {
                    QosPid::AtMostOnce => None,
                    QosPid::AtLeastOnce(pid) => {
                        self.queue(&Packet::Puback(pid), 2)?;
                        Some(pid.get())
                    }
                    // Refused by the table at the first byte already.
                    QosPid::ExactlyOnce(_) => return Err(unexpected("QoS 2 PUBLISH")),
                };
                self.events.push_back(MqttEvent::Publish {
                    topic: p.topic_name.to_owned(),
                    payload: p.payload.to_vec(),
                    qos: p.qospid.qos(),
                    pid,
                });
            }
            Packet::Puback(pid) => self.events.push_back(MqttEvent::PubAck { pid: pid.get() }),
            Packet::Pingresp => self.events.push_back(MqttEvent::PingResp),
            // Kinds outside the table were refused at their first byte.
            other => {
                return Err(unexpected(format!(
                    "{:?} from the server",
                    other.get_type()
                )))
            }
        }
        Ok(())
    }

    fn on_connack(&mut self, frame: &[u8], code: u8) -> Result<()> {
        let flags = frame.get(2).copied().unwrap_or_default();
        if flags & 0xfe != 0 {
            return Err(malformed(format!("CONNACK with reserved flags {flags:#x}")));
        }
        self.connack_seen = true;
        self.last_received = self.now;
        self.ping_sent_at = None;
        self.events.push_back(MqttEvent::ConnAck {
            session_present: flags & 1 == 1,
            code,
        });
        Ok(())
    }

    /// The table's `When::Answering`, which needs the decoded packet id: takes the packet of
    /// ours that awaits `rule`'s kind with `pid`.
    fn take_awaited(&mut self, rule: &Acceptance, pid: u16) -> Result<Awaited> {
        let found = self
            .awaiting
            .iter()
            .position(|a| a.answer == rule.kind && a.pid == pid);
        match found {
            Some(i) => Ok(self.awaiting.swap_remove(i)),
            None => Err(unexpected(format!(
                "{} for unknown packet id {pid}",
                rule.name
            ))),
        }
    }
}

/// The packet id an acknowledgement answers; 0 (never in use) for other packets.
fn answer_pid(packet: &Packet<'_>) -> u16 {
    match packet {
        Packet::Suback(s) => s.pid.get(),
        Packet::Puback(pid) => pid.get(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(p: &Packet<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let n = encode_slice(p, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn pid(n: u16) -> Pid {
        Pid::try_from(n).unwrap()
    }

    fn connack(code: ConnectReturnCode) -> Vec<u8> {
        encode(&Packet::Connack(mqttrs::Connack {
            session_present: false,
            code,
        }))
    }

    fn suback(id: u16, codes: Vec<SubscribeReturnCodes>) -> Vec<u8> {
        encode(&Packet::Suback(mqttrs::Suback {
            pid: pid(id),
            return_codes: codes.into_iter().collect(),
        }))
    }

    const RESPONSE_TOPIC: &str = "$dps/registrations/res/202/?$rid=1&retry-after=3";
    const RESPONSE_BODY: &[u8] = br#"{"operationId":"op","status":"assigning"}"#;

    fn server_stream() -> Vec<u8> {
        let mut s = connack(ConnectReturnCode::Accepted);
        s.extend(suback(
            1,
            vec![SubscribeReturnCodes::Success(QoS::AtLeastOnce)],
        ));
        s.extend(encode(&Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(pid(9)),
            retain: false,
            topic_name: RESPONSE_TOPIC,
            payload: RESPONSE_BODY,
        })));
        s
    }

    fn connect_options() -> ConnectOptions {
        ConnectOptions {
            client_id: "dev".into(),
            username: "scope/registrations/dev/api-version=2019-03-31".into(),
            password: Some(Zeroizing::new(b"token".to_vec())),
            keep_alive_secs: 60,
        }
    }

    /// A session whose CONNECT and SUBSCRIBE (packet id 1) are queued.
    fn session() -> MqttSession {
        let mut s = MqttSession::new(DEFAULT_MAX_PACKET_SIZE);
        s.connect(&connect_options()).unwrap();
        assert_eq!(
            s.subscribe("$dps/registrations/res/#", QoS::AtLeastOnce)
                .unwrap(),
            1
        );
        s
    }

    /// A session past CONNACK and SUBACK, output drained.
    fn established() -> MqttSession {
        let mut s = session();
        let mut stream = connack(ConnectReturnCode::Accepted);
        stream.extend(suback(
            1,
            vec![SubscribeReturnCodes::Success(QoS::AtLeastOnce)],
        ));
        s.handle_input(&stream).unwrap();
        events(&mut s);
        s.take_output();
        s
    }

    fn events(s: &mut MqttSession) -> Vec<MqttEvent> {
        core::iter::from_fn(|| s.poll_event()).collect()
    }

    fn code_of(s: &mut MqttSession, input: &[u8]) -> ErrorKind {
        s.handle_input(input).unwrap_err().kind
    }

    /// Splits a client's output into packets decoded by mqttrs.
    fn client_packets(out: &[u8]) -> Vec<Packet<'_>> {
        let mut rest = out;
        let mut packets = Vec::new();
        while !rest.is_empty() {
            let mut len = 0usize;
            let mut i = 1;
            loop {
                len |= usize::from(rest[i] & 0x7f) << (7 * (i - 1));
                if rest[i] & 0x80 == 0 {
                    break;
                }
                i += 1;
            }
            let (frame, tail) = rest.split_at(1 + i + len);
            packets.push(decode_slice(frame).unwrap().unwrap());
            rest = tail;
        }
        packets
    }

    #[test]
    fn pipelined_flight_is_connect_subscribe_publish() {
        let mut s = session();
        let rid_topic = "$dps/registrations/PUT/iotdps-register/?$rid=1";
        assert_eq!(
            s.publish(rid_topic, b"{}", QoS::AtLeastOnce).unwrap(),
            Some(2)
        );
        assert_eq!(s.publish(rid_topic, b"{}", QoS::AtMostOnce).unwrap(), None);
        let out = s.take_output();
        let packets = client_packets(&out);
        let [Packet::Connect(c), Packet::Subscribe(sub), Packet::Publish(p1), Packet::Publish(p0)] =
            &packets[..]
        else {
            panic!("{packets:?}");
        };
        assert_eq!(c.protocol, Protocol::MQTT311);
        assert!(c.clean_session);
        assert_eq!(c.keep_alive, 60);
        assert_eq!(c.client_id, "dev");
        assert_eq!(
            c.username,
            Some("scope/registrations/dev/api-version=2019-03-31")
        );
        assert_eq!(c.password, Some(&b"token"[..]));
        assert_eq!(sub.pid, pid(1));
        assert_eq!(sub.topics[0].topic_path, "$dps/registrations/res/#");
        assert_eq!(sub.topics[0].qos, QoS::AtLeastOnce);
        assert_eq!(p1.qospid, QosPid::AtLeastOnce(pid(2)));
        assert_eq!(p1.topic_name, rid_topic);
        assert_eq!(p0.qospid, QosPid::AtMostOnce);
        assert!(s.take_output().is_empty());
    }

    #[test]
    fn packets_before_connect_and_bad_arguments_are_refused() {
        let mut s = MqttSession::new(DEFAULT_MAX_PACKET_SIZE);
        assert_eq!(
            s.subscribe("a", QoS::AtMostOnce).unwrap_err().kind,
            ErrorKind::InvalidState
        );
        assert_eq!(
            s.publish("a", b"", QoS::AtMostOnce).unwrap_err().kind,
            ErrorKind::InvalidState
        );
        let mut long = connect_options();
        long.username = "u".repeat(65_536);
        assert_eq!(
            s.connect(&long).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        s.connect(&connect_options()).unwrap();
        assert_eq!(
            s.connect(&connect_options()).unwrap_err().kind,
            ErrorKind::InvalidState
        );
        for (topic, qos) in [
            ("", QoS::AtMostOnce),
            ("a/#", QoS::AtMostOnce),
            ("a/+/b", QoS::AtMostOnce),
            ("a", QoS::ExactlyOnce),
        ] {
            assert_eq!(
                s.publish(topic, b"", qos).unwrap_err().kind,
                ErrorKind::InvalidArgument,
                "{topic:?}"
            );
        }
        let long_topic = "t".repeat(65_536);
        assert_eq!(
            s.publish(&long_topic, b"", QoS::AtMostOnce)
                .unwrap_err()
                .kind,
            ErrorKind::InvalidArgument
        );
        // Only CONNECT made it into the output.
        let out = s.take_output();
        assert!(matches!(client_packets(&out)[..], [Packet::Connect(_)]));
    }

    #[test]
    fn round_trip_of_server_packets() {
        let mut s = session();
        s.take_output();
        s.handle_input(&server_stream()).unwrap();
        assert_eq!(
            events(&mut s),
            vec![
                MqttEvent::ConnAck {
                    session_present: false,
                    code: 0
                },
                MqttEvent::SubAck {
                    pid: 1,
                    granted: vec![Some(QoS::AtLeastOnce)]
                },
                MqttEvent::Publish {
                    topic: RESPONSE_TOPIC.into(),
                    payload: RESPONSE_BODY.to_vec(),
                    qos: QoS::AtLeastOnce,
                    pid: Some(9)
                },
            ]
        );
        // The QoS 1 PUBLISH was acknowledged with exactly these bytes.
        assert_eq!(&s.take_output()[..], [0x40, 0x02, 0x00, 0x09]);

        let published = s.publish("t", b"x", QoS::AtLeastOnce).unwrap().unwrap();
        s.handle_input(&encode(&Packet::Puback(pid(published))))
            .unwrap();
        s.handle_input(&encode(&Packet::Pingresp)).unwrap();
        s.handle_input(&encode(&Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtMostOnce,
            retain: false,
            topic_name: "a/b",
            payload: b"",
        })))
        .unwrap();
        assert_eq!(
            events(&mut s),
            vec![
                MqttEvent::PubAck { pid: published },
                MqttEvent::PingResp,
                MqttEvent::Publish {
                    topic: "a/b".into(),
                    payload: Vec::new(),
                    qos: QoS::AtMostOnce,
                    pid: None
                },
            ]
        );
        // QoS 0 needs no acknowledgement.
        assert_eq!(client_packets(&s.take_output()).len(), 1);
    }

    #[test]
    fn every_chunking_gives_the_same_events_and_output() {
        let stream = server_stream();
        let mut whole = session();
        whole.handle_input(&stream).unwrap();
        let expected = events(&mut whole);
        let expected_out = whole.take_output();
        assert_eq!(expected.len(), 3);
        for first in 0..=stream.len() {
            for second in first..=stream.len() {
                let mut s = session();
                for part in [&stream[..first], &stream[first..second], &stream[second..]] {
                    s.handle_input(part).unwrap();
                }
                assert_eq!(events(&mut s), expected, "split at {first}, {second}");
                assert_eq!(s.take_output(), expected_out);
            }
        }
        let mut s = session();
        for b in &stream {
            s.handle_input(core::slice::from_ref(b)).unwrap();
        }
        assert_eq!(events(&mut s), expected);
        assert_eq!(s.take_output(), expected_out);
    }

    #[test]
    fn oversized_packets_are_refused_before_buffering() {
        let mut s = established();
        // PUBLISH with a remaining length of 256 MB - 1, the most four bytes can say.
        assert_eq!(
            code_of(&mut s, &[0x30, 0xff, 0xff, 0xff, 0x7f]),
            ErrorKind::ProtocolPacketTooLarge
        );
        assert!(s.inbound.capacity() <= MAX_FIXED_HEADER * 2);
        // The session stays failed.
        assert_eq!(
            code_of(&mut s, &encode(&Packet::Pingresp)),
            ErrorKind::ProtocolPacketTooLarge
        );
        assert_eq!(
            code_of(&mut established(), &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
            ErrorKind::ProtocolMalformed
        );

        // One byte over the limit fails; exactly the limit fits, buffered in one allocation.
        let limit = 1000;
        let publish_of = |total: usize| {
            let payload = vec![b'x'; total - 3 - 2 - 1];
            let bytes = encode(&Packet::Publish(Publish {
                dup: false,
                qospid: QosPid::AtMostOnce,
                retain: false,
                topic_name: "t",
                payload: &payload,
            }));
            assert_eq!(bytes.len(), total);
            bytes
        };
        let mut s = MqttSession::new(limit);
        s.connect(&connect_options()).unwrap();
        s.handle_input(&connack(ConnectReturnCode::Accepted))
            .unwrap();
        let over = publish_of(limit + 1);
        assert_eq!(
            code_of(&mut s, &over[..3]),
            ErrorKind::ProtocolPacketTooLarge
        );
        s.reset();
        s.connect(&connect_options()).unwrap();
        s.handle_input(&connack(ConnectReturnCode::Accepted))
            .unwrap();
        let fits = publish_of(limit);
        s.handle_input(&fits[..limit - 1]).unwrap();
        assert!(s.inbound.capacity() <= limit);
        s.handle_input(&fits[limit - 1..]).unwrap();
        assert_eq!(events(&mut s).len(), 2);
    }

    #[test]
    fn hostile_publishes_are_malformed() {
        let cases: &[(&str, &[u8])] = &[
            // Topic length 0x7fff in a 5-byte body.
            ("topic overrun", &[0x30, 0x05, 0x7f, 0xff, b'a', b'b', b'c']),
            // QoS 1: the topic fills the body and leaves no room for the packet id.
            ("no packet id", &[0x32, 0x05, 0x00, 0x03, b'a', b'b', b'c']),
            ("no topic length", &[0x30, 0x01, 0x00]),
            ("invalid UTF-8", &[0x30, 0x04, 0x00, 0x02, 0xff, 0xfe]),
            ("empty topic", &[0x30, 0x02, 0x00, 0x00]),
            ("wildcard topic", &[0x30, 0x03, 0x00, 0x01, b'#']),
            ("NUL in topic", &[0x30, 0x03, 0x00, 0x01, 0x00]),
            ("packet id 0", &[0x32, 0x05, 0x00, 0x01, b'a', 0x00, 0x00]),
            ("QoS 3", &[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01]),
        ];
        for (what, bytes) in cases {
            assert_eq!(
                code_of(&mut established(), bytes),
                ErrorKind::ProtocolMalformed,
                "{what}"
            );
        }
    }

    #[test]
    fn short_and_long_control_packets_are_malformed() {
        let cases: &[(&str, &[u8])] = &[
            ("PUBACK without packet id", &[0x40, 0x00]),
            ("PUBACK with a 1-byte id", &[0x40, 0x01, 0x00]),
            (
                "PUBACK with a trailing byte",
                &[0x40, 0x03, 0x00, 0x01, 0x00],
            ),
            ("SUBACK without return codes", &[0x90, 0x02, 0x00, 0x01]),
            ("SUBACK with a 1-byte id", &[0x90, 0x01, 0x00]),
            ("SUBACK with QoS 3 granted", &[0x90, 0x03, 0x00, 0x01, 0x03]),
            ("PINGRESP with a body", &[0xd0, 0x01, 0x00]),
            ("PINGRESP with flags", &[0xd1, 0x00]),
            ("reserved type 0", &[0x00, 0x00]),
            ("reserved type 15", &[0xf0, 0x00]),
        ];
        for (what, bytes) in cases {
            assert_eq!(
                code_of(&mut established(), bytes),
                ErrorKind::ProtocolMalformed,
                "{what}"
            );
        }
        for (what, bytes) in [
            ("CONNACK without body", &[0x20, 0x00][..]),
            ("CONNACK with 1 byte", &[0x20, 0x01, 0x00]),
            ("CONNACK with 3 bytes", &[0x20, 0x03, 0x00, 0x00, 0x00]),
            ("CONNACK with reserved flags", &[0x20, 0x02, 0x02, 0x00]),
        ] {
            assert_eq!(
                code_of(&mut session(), bytes),
                ErrorKind::ProtocolMalformed,
                "{what}"
            );
        }
    }

    #[test]
    fn unexpected_packets_are_refused() {
        let accepted = connack(ConnectReturnCode::Accepted);
        let mut twice = accepted.clone();
        twice.extend(&accepted);
        assert_eq!(
            code_of(&mut session(), &twice),
            ErrorKind::ProtocolUnexpectedPacket
        );
        // Nothing may come before CONNACK.
        for before in [
            suback(1, vec![SubscribeReturnCodes::Failure]),
            encode(&Packet::Pingresp),
        ] {
            assert_eq!(
                code_of(&mut session(), &before),
                ErrorKind::ProtocolUnexpectedPacket
            );
        }
        let client_only = [
            encode(&Packet::Connect(Connect {
                protocol: Protocol::MQTT311,
                keep_alive: 1,
                client_id: "x",
                clean_session: true,
                last_will: None,
                username: None,
                password: None,
            })),
            encode(&Packet::Subscribe(Subscribe {
                pid: pid(3),
                topics: core::iter::once(SubscribeTopic {
                    topic_path: "#".parse().unwrap(),
                    qos: QoS::AtMostOnce,
                })
                .collect(),
            })),
            encode(&Packet::Unsubscribe(mqttrs::Unsubscribe {
                pid: pid(3),
                topics: core::iter::once("#".parse().unwrap()).collect(),
            })),
            encode(&Packet::Pingreq),
            encode(&Packet::Disconnect),
            encode(&Packet::Pubrec(pid(1))),
            encode(&Packet::Pubrel(pid(1))),
            encode(&Packet::Pubcomp(pid(1))),
            encode(&Packet::Unsuback(pid(1))),
            encode(&Packet::Publish(Publish {
                dup: false,
                qospid: QosPid::ExactlyOnce(pid(4)),
                retain: false,
                topic_name: "t",
                payload: b"",
            })),
            // A SUBSCRIBE too short for its packet id: refused by type, never decoded.
            vec![0x82, 0x00],
            // Acknowledgements of packets never sent.
            encode(&Packet::Puback(pid(7))),
            suback(7, vec![SubscribeReturnCodes::Failure]),
        ];
        for packet in client_only {
            let mut s = established();
            assert_eq!(
                code_of(&mut s, &packet),
                ErrorKind::ProtocolUnexpectedPacket,
                "{packet:02x?}"
            );
        }
        // A type is refused from its first byte, before any length is read.
        assert_eq!(
            code_of(&mut established(), &[0x10]),
            ErrorKind::ProtocolUnexpectedPacket
        );
    }

    #[test]
    fn an_acknowledgement_answers_only_the_kind_it_acknowledges() {
        // Packet id 1 awaits a SUBACK: a PUBACK for it is no answer.
        let mut s = session();
        s.handle_input(&connack(ConnectReturnCode::Accepted))
            .unwrap();
        assert_eq!(
            code_of(&mut s, &encode(&Packet::Puback(pid(1)))),
            ErrorKind::ProtocolUnexpectedPacket
        );
        // Packet id 2 awaits a PUBACK: a SUBACK for it is no answer, the PUBACK is, once.
        let published = || {
            let mut s = established();
            assert_eq!(s.publish("t", b"", QoS::AtLeastOnce).unwrap(), Some(2));
            s
        };
        assert_eq!(
            code_of(
                &mut published(),
                &suback(2, vec![SubscribeReturnCodes::Failure])
            ),
            ErrorKind::ProtocolUnexpectedPacket
        );
        let mut s = published();
        let puback = encode(&Packet::Puback(pid(2)));
        s.handle_input(&puback).unwrap();
        assert_eq!(events(&mut s), vec![MqttEvent::PubAck { pid: 2 }]);
        assert_eq!(
            code_of(&mut s, &puback),
            ErrorKind::ProtocolUnexpectedPacket
        );
    }

    #[test]
    fn suback_must_answer_the_subscription() {
        let mut s = session();
        s.handle_input(&connack(ConnectReturnCode::Accepted))
            .unwrap();
        let two_codes = suback(
            1,
            vec![
                SubscribeReturnCodes::Success(QoS::AtLeastOnce),
                SubscribeReturnCodes::Failure,
            ],
        );
        assert_eq!(code_of(&mut s, &two_codes), ErrorKind::ProtocolMalformed);
        let mut s = session();
        s.handle_input(&connack(ConnectReturnCode::Accepted))
            .unwrap();
        s.handle_input(&suback(1, vec![SubscribeReturnCodes::Failure]))
            .unwrap();
        assert_eq!(
            events(&mut s)[1],
            MqttEvent::SubAck {
                pid: 1,
                granted: vec![None]
            }
        );
        // Answered once only.
        assert_eq!(
            code_of(&mut s, &suback(1, vec![SubscribeReturnCodes::Failure])),
            ErrorKind::ProtocolUnexpectedPacket
        );
    }

    #[test]
    fn connack_codes_are_reported_raw() {
        for code in [0u8, 1, 2, 3, 4, 5, 6, 0x80, 0xff] {
            let mut s = session();
            s.handle_input(&[0x20, 0x02, 0x00, code]).unwrap();
            assert_eq!(
                events(&mut s),
                vec![MqttEvent::ConnAck {
                    session_present: false,
                    code
                }]
            );
        }
        let mut s = session();
        s.handle_input(&[0x20, 0x02, 0x01, 0x00]).unwrap();
        assert_eq!(
            events(&mut s),
            vec![MqttEvent::ConnAck {
                session_present: true,
                code: 0
            }]
        );
    }

    /// What mqttrs 0.4.1 does with the inputs the checks above keep from it: these are why
    /// it only ever sees one complete, length-checked packet.
    #[test]
    fn mqttrs_alone_panics_and_over_reads() {
        for short in [
            &[0x40, 0x00][..],
            &[0x20, 0x00],
            &[0x90, 0x01, 0x00],
            &[0x32, 0x03, 0x00, 0x01, b'a'],
            &[0x82, 0x00],
        ] {
            let outcome = std::panic::catch_unwind(|| decode_slice(short).map(|p| p.is_some()));
            assert!(outcome.is_err(), "mqttrs no longer panics on {short:02x?}");
        }
        // A CONNACK with an empty body takes its flags and code from the next packet.
        let two = [0x20, 0x00, 0x20, 0x02, 0x00, 0x00];
        assert_eq!(
            decode_slice(&two),
            Ok(Some(Packet::Connack(mqttrs::Connack {
                session_present: false,
                code: ConnectReturnCode::RefusedIdentifierRejected
            })))
        );
        // The session refuses each of them cleanly.
        assert_eq!(code_of(&mut session(), &two), ErrorKind::ProtocolMalformed);
        assert_eq!(
            code_of(&mut established(), &[0x40, 0x00]),
            ErrorKind::ProtocolMalformed
        );
    }

    #[test]
    fn keep_alive_pings_when_idle_and_declares_a_silent_server_dead() {
        let mut s = MqttSession::new(DEFAULT_MAX_PACKET_SIZE);
        assert_eq!(s.next_timeout(), None);
        s.set_now(1_000);
        s.connect(&connect_options()).unwrap();
        s.take_output();
        assert_eq!(s.next_timeout(), Some(61_000));
        s.handle_timeout(30_000).unwrap();
        assert!(s.take_output().is_empty());
        s.set_now(40_000);
        s.handle_input(&connack(ConnectReturnCode::Accepted))
            .unwrap();
        // Received at 40 s but last sent at 1 s: the client must still speak by 61 s.
        assert_eq!(s.next_timeout(), Some(61_000));
        s.handle_timeout(61_000).unwrap();
        assert_eq!(&s.take_output()[..], encode(&Packet::Pingreq));
        assert_eq!(s.next_timeout(), Some(121_000));
        s.set_now(62_000);
        s.handle_input(&encode(&Packet::Pingresp)).unwrap();
        assert_eq!(events(&mut s).last(), Some(&MqttEvent::PingResp));
        assert_eq!(s.next_timeout(), Some(121_000));
        s.handle_timeout(121_000).unwrap();
        assert_eq!(&s.take_output()[..], encode(&Packet::Pingreq));
        // No answer within a further period: dead, and it stays dead.
        s.handle_timeout(180_999).unwrap();
        assert_eq!(
            s.handle_timeout(181_000).unwrap_err().kind,
            ErrorKind::TransportClosed
        );
        assert_eq!(s.next_timeout(), None);
        assert_eq!(
            code_of(&mut s, &encode(&Packet::Pingresp)),
            ErrorKind::TransportClosed
        );
    }

    #[test]
    fn keep_alive_pings_a_silent_server_while_the_client_keeps_sending() {
        let mut s = established();
        s.set_now(0);
        for t in (10_000..60_000).step_by(10_000) {
            s.set_now(t);
            s.publish("t", b"", QoS::AtMostOnce).unwrap();
            s.handle_timeout(t).unwrap();
            assert_eq!(client_packets(&s.take_output()).len(), 1);
        }
        // Nothing received since 0: a PINGREQ at 60 s despite the publishes.
        s.handle_timeout(60_000).unwrap();
        assert_eq!(&s.take_output()[..], encode(&Packet::Pingreq));
        // Any packet proves the link alive.
        s.set_now(70_000);
        s.handle_input(&encode(&Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtMostOnce,
            retain: false,
            topic_name: "a",
            payload: b"",
        })))
        .unwrap();
        assert_eq!(s.next_timeout(), Some(120_000));
        s.handle_timeout(120_000).unwrap();
        assert_eq!(&s.take_output()[..], encode(&Packet::Pingreq));
    }

    #[test]
    fn reset_starts_a_fresh_connection() {
        let mut s = established();
        s.publish("t", b"", QoS::AtLeastOnce).unwrap();
        s.handle_input(&[0x30]).unwrap();
        s.reset();
        assert!(s.take_output().is_empty());
        assert_eq!(s.next_timeout(), None);
        assert_eq!(
            s.publish("t", b"", QoS::AtMostOnce).unwrap_err().kind,
            ErrorKind::InvalidState
        );
        s.connect(&connect_options()).unwrap();
        assert_eq!(s.subscribe("a/#", QoS::AtLeastOnce).unwrap(), 1);
        s.handle_input(&server_stream()).unwrap();
        assert_eq!(events(&mut s).len(), 3);
        // A failed session is usable again after a reset.
        let mut s = established();
        code_of(&mut s, &[0x00]);
        s.reset();
        s.connect(&connect_options()).unwrap();
        s.handle_input(&connack(ConnectReturnCode::Accepted))
            .unwrap();
    }

    #[test]
    fn packet_ids_skip_zero_and_those_in_flight() {
        let mut s = established();
        s.next_pid = u16::MAX;
        assert_eq!(
            s.publish("t", b"", QoS::AtLeastOnce).unwrap(),
            Some(u16::MAX)
        );
        assert_eq!(s.publish("t", b"", QoS::AtLeastOnce).unwrap(), Some(1));
        s.next_pid = u16::MAX;
        assert_eq!(s.publish("t", b"", QoS::AtLeastOnce).unwrap(), Some(2));
    }
}
