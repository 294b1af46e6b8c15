//! MQTT 3.1.1 client session on the mqttrs codec, sans-IO.
//!
//! Outgoing packets are queued into one byte buffer (so CONNECT, SUBSCRIBE and PUBLISH leave in
//! one flight); incoming bytes may arrive in any chunking. The fixed header is parsed here,
//! before mqttrs sees anything, so that a hostile length is refused before it is buffered and
//! mqttrs only ever decodes one complete, size-checked packet.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use mqttrs::QoS;
use mqttrs::{
    decode_slice, encode_slice, Connect, ConnectReturnCode, Packet, Pid, Protocol, Publish, QosPid,
    Subscribe, SubscribeReturnCodes, SubscribeTopic,
};
use zeroize::Zeroizing;

use crate::error::{dps_result, Error, Result};

/// Just above the service's 96 KB message limit.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 96 * 1024 + 1024;

pub struct ConnectOptions {
    pub client_id: String,
    pub username: String,
    /// The SAS token; `None` with X.509 client certificates.
    pub password: Option<Zeroizing<Vec<u8>>>,
    pub keep_alive_secs: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MqttEvent {
    ConnAck {
        session_present: bool,
        code: u8,
    },
    /// One entry per requested filter; `None` = refused (0x80).
    SubAck {
        pid: u16,
        granted: Vec<Option<QoS>>,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    PubAck {
        pid: u16,
    },
    PingResp,
}

fn malformed(detail: impl Into<String>) -> Error {
    Error::new(dps_result::DPS_ERR_PROTOCOL_MALFORMED, detail)
}

fn unexpected(detail: impl Into<String>) -> Error {
    Error::new(dps_result::DPS_ERR_PROTOCOL_UNEXPECTED_PACKET, detail)
}

pub struct MqttSession {
    max_packet_size: usize,
    inbound: Vec<u8>,
    outbound: Vec<u8>,
    events: VecDeque<MqttEvent>,
    next_pid: u16,
    connack_seen: bool,
    keep_alive_ms: u64,
    last_sent: u64,
    ping_sent_at: Option<u64>,
    now: u64,
}

impl MqttSession {
    pub fn new(max_packet_size: usize) -> MqttSession {
        MqttSession {
            max_packet_size,
            inbound: Vec::new(),
            outbound: Vec::new(),
            events: VecDeque::new(),
            next_pid: 1,
            connack_seen: false,
            keep_alive_ms: 0,
            last_sent: 0,
            ping_sent_at: None,
            now: 0,
        }
    }

    fn queue(&mut self, packet: &Packet<'_>) {
        // A packet's size is bounded by what we put in it; size the buffer from the fields.
        let estimate = match packet {
            Packet::Publish(p) => p.topic_name.len() + p.payload.len() + 16,
            Packet::Connect(c) => {
                c.client_id.len()
                    + c.username.map_or(0, str::len)
                    + c.password.map_or(0, <[u8]>::len)
                    + 32
            }
            _ => 64,
        };
        let mut buf = vec![0u8; estimate + 8];
        if let Ok(n) = encode_slice(packet, &mut buf) {
            self.outbound
                .extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        self.last_sent = self.now;
    }

    /// Queues CONNECT with clean session = 1 (DPS keeps no session state anyway).
    pub fn connect(&mut self, opts: &ConnectOptions) {
        self.keep_alive_ms = u64::from(opts.keep_alive_secs) * 1000;
        let packet = Packet::Connect(Connect {
            protocol: Protocol::MQTT311,
            keep_alive: opts.keep_alive_secs,
            client_id: &opts.client_id,
            clean_session: true,
            last_will: None,
            username: Some(&opts.username),
            password: opts.password.as_ref().map(|p| p.as_slice()),
        });
        let mut buf = Zeroizing::new(vec![
            0u8;
            opts.client_id.len()
                + opts.username.len()
                + opts.password.as_ref().map_or(0, |p| p.len())
                + 64
        ]);
        if let Ok(n) = encode_slice(&packet, &mut buf) {
            self.outbound
                .extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        self.last_sent = self.now;
    }

    fn pid(&mut self) -> Pid {
        let pid = Pid::try_from(self.next_pid).unwrap_or_default();
        self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
        pid
    }

    /// Queues SUBSCRIBE for one filter; returns its packet id.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> u16 {
        let pid = self.pid();
        self.queue(&Packet::Subscribe(Subscribe {
            pid,
            topics: vec![SubscribeTopic {
                topic_path: filter.to_owned(),
                qos,
            }],
        }));
        pid.get()
    }

    /// Queues PUBLISH; returns the packet id for QoS 1.
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS) -> Option<u16> {
        let qospid = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(self.pid()),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(self.pid()),
        };
        self.queue(&Packet::Publish(Publish {
            dup: false,
            qospid,
            retain: false,
            topic_name: topic,
            payload,
        }));
        match qospid {
            QosPid::AtMostOnce => None,
            QosPid::AtLeastOnce(p) | QosPid::ExactlyOnce(p) => Some(p.get()),
        }
    }

    pub fn disconnect(&mut self) {
        self.queue(&Packet::Disconnect);
    }

    /// Bytes to send, in order.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outbound)
    }

    pub fn poll_event(&mut self) -> Option<MqttEvent> {
        self.events.pop_front()
    }

    /// Feeds received bytes; complete packets become events.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            // Buffer no more than the current packet can need, so a hostile length never
            // makes us hold more than `max_packet_size` plus its header.
            let need = match frame_length(&self.inbound, self.max_packet_size)? {
                Some(total) => total - self.inbound.len(),
                None => 1,
            };
            let take = need.min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.inbound.extend_from_slice(head);
            rest = tail;
            if let Some(total) = frame_length(&self.inbound, self.max_packet_size)? {
                if self.inbound.len() == total {
                    let frame = std::mem::take(&mut self.inbound);
                    self.decode_frame(&frame)?;
                }
            }
        }
        Ok(())
    }

    fn decode_frame(&mut self, frame: &[u8]) -> Result<()> {
        // mqttrs is third-party code fed hostile bytes: a panic inside it must become an
        // error, not an unwind through the engine.
        let decoded = catch_unwind(AssertUnwindSafe(|| decode_slice(frame)))
            .map_err(|_| malformed("packet decoder panicked"))?;
        let packet = match decoded {
            Ok(Some(p)) => p,
            Ok(None) => return Err(malformed("incomplete packet")),
            Err(e) => return Err(malformed(format!("undecodable packet: {e:?}"))),
        };
        self.ping_sent_at = None;
        match packet {
            Packet::Connack(c) => {
                if self.connack_seen {
                    return Err(unexpected("second CONNACK"));
                }
                self.connack_seen = true;
                let code = match c.code {
                    ConnectReturnCode::Accepted => 0,
                    ConnectReturnCode::RefusedProtocolVersion => 1,
                    ConnectReturnCode::RefusedIdentifierRejected => 2,
                    ConnectReturnCode::ServerUnavailable => 3,
                    ConnectReturnCode::BadUsernamePassword => 4,
                    ConnectReturnCode::NotAuthorized => 5,
                };
                self.events.push_back(MqttEvent::ConnAck {
                    session_present: c.session_present,
                    code,
                });
            }
            _ if !self.connack_seen => {
                return Err(unexpected(format!(
                    "{:?} before CONNACK",
                    packet.get_type()
                )))
            }
            Packet::Suback(s) => {
                let granted = s
                    .return_codes
                    .iter()
                    .map(|c| match c {
                        SubscribeReturnCodes::Success(q) => Some(*q),
                        SubscribeReturnCodes::Failure => None,
                    })
                    .collect();
                self.events.push_back(MqttEvent::SubAck {
                    pid: s.pid.get(),
                    granted,
                });
            }
            Packet::Publish(p) => {
                match p.qospid {
                    QosPid::AtMostOnce => {}
                    QosPid::AtLeastOnce(pid) => self.queue(&Packet::Puback(pid)),
                    // DPS publishes at QoS 1 only; QoS 2 would need a PUBREC/PUBREL dance no
                    // DPS server performs.
                    QosPid::ExactlyOnce(_) => return Err(unexpected("QoS 2 PUBLISH")),
                }
                self.events.push_back(MqttEvent::Publish {
                    topic: p.topic_name.to_owned(),
                    payload: p.payload.to_vec(),
                });
            }
            Packet::Puback(pid) => self.events.push_back(MqttEvent::PubAck { pid: pid.get() }),
            Packet::Pingresp => self.events.push_back(MqttEvent::PingResp),
            other => {
                return Err(unexpected(format!(
                    "{:?} from the server",
                    other.get_type()
                )))
            }
        }
        Ok(())
    }

    /// When `handle_timeout` must run next for keep-alive.
    pub fn next_timeout(&self) -> Option<u64> {
        if self.keep_alive_ms == 0 {
            return None;
        }
        Some(match self.ping_sent_at {
            Some(at) => at.saturating_add(self.keep_alive_ms),
            None => self.last_sent.saturating_add(self.keep_alive_ms),
        })
    }

    /// Sends PINGREQ after a keep-alive period without sending; reports a dead connection
    /// when the server stays silent for a further period.
    pub fn handle_timeout(&mut self, now: u64) -> Result<()> {
        self.now = now;
        if self.keep_alive_ms == 0 {
            return Ok(());
        }
        if let Some(at) = self.ping_sent_at {
            if now >= at.saturating_add(self.keep_alive_ms) {
                return Err(Error::new(
                    dps_result::DPS_ERR_TRANSPORT_CLOSED,
                    "no answer to PINGREQ within the keep-alive period",
                ));
            }
            return Ok(());
        }
        if now >= self.last_sent.saturating_add(self.keep_alive_ms) {
            self.queue(&Packet::Pingreq);
            self.ping_sent_at = Some(now);
        }
        Ok(())
    }

    /// Records the caller's time for keep-alive bookkeeping of packets queued next.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }
}

/// The total length (header + body) of the packet starting at `buf[0]`, once its fixed header
/// is complete; `None` while more header bytes are needed.
fn frame_length(buf: &[u8], max_packet_size: usize) -> Result<Option<usize>> {
    let mut remaining: usize = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 2 + i + remaining;
            if total > max_packet_size {
                return Err(Error::new(
                    dps_result::DPS_ERR_PROTOCOL_PACKET_TOO_LARGE,
                    format!("packet of {total} bytes over the {max_packet_size}-byte limit"),
                ));
            }
            return Ok(Some(total));
        }
    }
    Err(malformed("remaining length longer than 4 bytes"))
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

    fn connack(code: ConnectReturnCode) -> Vec<u8> {
        encode(&Packet::Connack(mqttrs::Connack {
            session_present: false,
            code,
        }))
    }

    fn server_stream() -> Vec<u8> {
        let mut s = connack(ConnectReturnCode::Accepted);
        s.extend(encode(&Packet::Suback(mqttrs::Suback {
            pid: Pid::try_from(1).unwrap(),
            return_codes: vec![SubscribeReturnCodes::Success(QoS::AtLeastOnce)],
        })));
        s.extend(encode(&Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(Pid::try_from(9).unwrap()),
            retain: false,
            topic_name: "$dps/registrations/res/202/?$rid=1&retry-after=3",
            payload: br#"{"operationId":"op","status":"assigning"}"#,
        })));
        s
    }

    fn session() -> MqttSession {
        let mut s = MqttSession::new(DEFAULT_MAX_PACKET_SIZE);
        s.connect(&ConnectOptions {
            client_id: "dev".into(),
            username: "scope/registrations/dev/api-version=2019-03-31".into(),
            password: Some(Zeroizing::new(b"token".to_vec())),
            keep_alive_secs: 60,
        });
        s
    }

    fn events(s: &mut MqttSession) -> Vec<MqttEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn pipelined_flight_decodes_as_three_packets() {
        let mut s = session();
        s.subscribe("$dps/registrations/res/#", QoS::AtLeastOnce);
        s.publish(
            "$dps/registrations/PUT/iotdps-register/?$rid=1",
            b"{}",
            QoS::AtMostOnce,
        );
        let out = s.take_output();
        let mut rest = &out[..];
        let mut kinds = Vec::new();
        while !rest.is_empty() {
            let n = frame_length(rest, usize::MAX).unwrap().unwrap();
            kinds.push(decode_slice(&rest[..n]).unwrap().unwrap().get_type());
            rest = &rest[n..];
        }
        assert_eq!(
            kinds,
            vec![
                mqttrs::PacketType::Connect,
                mqttrs::PacketType::Subscribe,
                mqttrs::PacketType::Publish
            ]
        );
    }

    #[test]
    fn every_chunking_gives_the_same_events_and_a_puback() {
        let stream = server_stream();
        let mut whole = session();
        whole.take_output();
        whole.handle_input(&stream).unwrap();
        let expected = events(&mut whole);
        assert_eq!(expected.len(), 3);
        assert_eq!(
            whole.take_output(),
            encode(&Packet::Puback(Pid::try_from(9).unwrap()))
        );
        for split in 0..=stream.len() {
            let mut s = session();
            s.handle_input(&stream[..split]).unwrap();
            s.handle_input(&stream[split..]).unwrap();
            assert_eq!(events(&mut s), expected, "split at {split}");
        }
        let mut s = session();
        for b in &stream {
            s.handle_input(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(events(&mut s), expected);
    }

    #[test]
    fn huge_remaining_length_is_refused_before_buffering() {
        let mut s = session();
        // PUBLISH with a remaining length of 256 MB - 1 (the 4-byte maximum).
        let err = s.handle_input(&[0x30, 0xff, 0xff, 0xff, 0x7f]).unwrap_err();
        assert_eq!(err.code, dps_result::DPS_ERR_PROTOCOL_PACKET_TOO_LARGE);
        assert!(s.inbound.capacity() < 64);
        let err = session()
            .handle_input(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01])
            .unwrap_err();
        assert_eq!(err.code, dps_result::DPS_ERR_PROTOCOL_MALFORMED);
    }

    #[test]
    fn hostile_publishes_are_errors() {
        let mut ok = connack(ConnectReturnCode::Accepted);
        // Topic length 0x7fff overrunning a 5-byte body.
        ok.extend([0x30, 0x05, 0x7f, 0xff, b'a', b'b', b'c']);
        let err = session().handle_input(&ok).unwrap_err();
        assert_eq!(err.code, dps_result::DPS_ERR_PROTOCOL_MALFORMED);
        // Invalid UTF-8 topic.
        let mut bad = connack(ConnectReturnCode::Accepted);
        bad.extend([0x30, 0x04, 0x00, 0x02, 0xff, 0xfe]);
        let err = session().handle_input(&bad).unwrap_err();
        assert_eq!(err.code, dps_result::DPS_ERR_PROTOCOL_MALFORMED);
    }

    #[test]
    fn unexpected_packets_are_refused() {
        let mut twice = connack(ConnectReturnCode::Accepted);
        twice.extend(connack(ConnectReturnCode::Accepted));
        assert_eq!(
            session().handle_input(&twice).unwrap_err().code,
            dps_result::DPS_ERR_PROTOCOL_UNEXPECTED_PACKET
        );
        let suback_first = encode(&Packet::Suback(mqttrs::Suback {
            pid: Pid::try_from(1).unwrap(),
            return_codes: vec![SubscribeReturnCodes::Failure],
        }));
        assert_eq!(
            session().handle_input(&suback_first).unwrap_err().code,
            dps_result::DPS_ERR_PROTOCOL_UNEXPECTED_PACKET
        );
        for packet in [
            Packet::Pingreq,
            Packet::Subscribe(Subscribe {
                pid: Pid::try_from(3).unwrap(),
                topics: vec![SubscribeTopic {
                    topic_path: "#".into(),
                    qos: QoS::AtMostOnce,
                }],
            }),
            Packet::Publish(Publish {
                dup: false,
                qospid: QosPid::ExactlyOnce(Pid::try_from(4).unwrap()),
                retain: false,
                topic_name: "t",
                payload: b"",
            }),
        ] {
            let mut s = connack(ConnectReturnCode::Accepted);
            s.extend(encode(&packet));
            assert_eq!(
                session().handle_input(&s).unwrap_err().code,
                dps_result::DPS_ERR_PROTOCOL_UNEXPECTED_PACKET,
                "{:?}",
                packet.get_type()
            );
        }
    }

    #[test]
    fn connack_codes_are_reported() {
        let mut s = session();
        s.handle_input(&connack(ConnectReturnCode::NotAuthorized))
            .unwrap();
        assert_eq!(
            events(&mut s),
            vec![MqttEvent::ConnAck {
                session_present: false,
                code: 5
            }]
        );
    }

    #[test]
    fn keep_alive_pings_then_declares_the_link_dead() {
        let mut s = session();
        s.set_now(1_000);
        s.take_output();
        assert_eq!(s.next_timeout(), Some(60_000));
        s.handle_timeout(30_000).unwrap();
        assert!(s.take_output().is_empty());
        s.handle_timeout(60_000).unwrap();
        assert_eq!(s.take_output(), encode(&Packet::Pingreq));
        assert_eq!(s.next_timeout(), Some(120_000));
        s.handle_input(&connack(ConnectReturnCode::Accepted))
            .unwrap();
        assert_eq!(
            s.next_timeout(),
            Some(120_000),
            "the PINGREQ was the last send"
        );
        s.handle_timeout(120_000).unwrap();
        assert_eq!(s.take_output(), encode(&Packet::Pingreq));
        let err = s.handle_timeout(180_000).unwrap_err();
        assert_eq!(err.code, dps_result::DPS_ERR_TRANSPORT_CLOSED);
    }
}
