//! The engine against a scripted server: every rule of the protocol and of the retry policy
//! as the wire shows it.

use super::*;
use crate::dps::protocol;
use crate::dps::sas::KeySigner;
use crate::layers::FramingFactory;
use mqttrs::{decode_slice, encode_slice, Packet, Pid, QosPid};

const KEY: &str = "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=";

fn engine(timing: Timing) -> Engine {
    Engine::new(Settings {
        id_scope: "0ne00000001".parse().unwrap(),
        registration_id: "dev-1".parse().unwrap(),
        credential: Credential::Sas(Box::new(KeySigner::from_base64(KEY).unwrap())),
        host: "dps.example".parse().unwrap(),
        port: 8883,
        api_version: protocol::DEFAULT_API_VERSION.parse().unwrap(),
        client_version: None,
        payload: Some(r#"{"a":1}"#.parse().unwrap()),
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

    fn result(&self) -> Option<core::result::Result<(), ErrorKind>> {
        self.engine
            .outcome()
            .result
            .as_ref()
            .map(|r| r.as_ref().map(|_| ()).map_err(|e| e.kind))
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
    assert_eq!(p.result(), Some(Ok(())));
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
    assert_eq!(p.result(), Some(Ok(())));
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
    assert_eq!(p.result(), Some(Ok(())));
}

#[test]
fn both_shapes_of_bad_credentials_are_auth_errors() {
    let mut p = Peer::start(Timing::default());
    p.connack(mqttrs::ConnectReturnCode::NotAuthorized);
    assert_eq!(p.result(), Some(Err(ErrorKind::AuthNotAuthorized)));
    let mut p = Peer::start(Timing::default());
    p.connack(mqttrs::ConnectReturnCode::Accepted);
    p.respond(
        401,
        "",
        r#"{"errorCode":401002,"trackingId":"t-9","message":"Unauthorized","timestampUtc":"x"}"#,
    );
    assert_eq!(p.result(), Some(Err(ErrorKind::AuthUnauthorized)));
    assert_eq!(p.engine.outcome().error_code, Some(401002));
    assert_eq!(p.engine.outcome().tracking_id.as_deref(), Some("t-9"));
}

#[test]
fn unexpected_statuses_and_bodies_end_with_clear_errors() {
    for (status, body, want) in [
        (302, "{}", ErrorKind::ProtocolUnexpectedStatus),
        (0, "{}", ErrorKind::ProtocolUnexpectedStatus),
        (999, "{}", ErrorKind::ProtocolUnexpectedStatus),
        (404, "{}", ErrorKind::RegistrationRejected),
        (200, "not json", ErrorKind::ProtocolBadResponse),
        (
            200,
            r#"{"status":"assigned"}"#,
            ErrorKind::ProtocolBadResponse,
        ),
        (
            202,
            r#"{"status":"assigning"}"#,
            ErrorKind::ProtocolBadResponse,
        ),
        (
            200,
            r#"{"status":"disabled","operationId":"x"}"#,
            ErrorKind::RegistrationDisabled,
        ),
        (
            200,
            r#"{"status":"failed","operationId":"x"}"#,
            ErrorKind::RegistrationFailed,
        ),
    ] {
        let mut p = Peer::start(Timing::default());
        p.connack(mqttrs::ConnectReturnCode::Accepted);
        p.respond(status, "", body);
        assert_eq!(p.result(), Some(Err(want)), "{status} {body}");
        assert!(!p.engine.is_running());
    }
}

#[test]
fn dropped_connection_reconnects_resubscribes_and_resends() {
    let mut p = Peer::start(Timing::default());
    p.connack(mqttrs::ConnectReturnCode::Accepted);
    p.respond(202, "&retry-after=0", ASSIGNING);
    p.engine
        .on_connection_lost(p.now, Error::new(ErrorKind::TransportClosed, "reset"));
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
    assert_eq!(p.result(), Some(Ok(())));
    // Once drained, a finished attempt's queues keep no buffer; the outcome keeps its answers.
    assert!(p.engine.actions.capacity() > 0 && p.engine.events.capacity() > 0);
    while p.engine.poll_action().is_some() {}
    while p.engine.poll_event().is_some() {}
    assert_eq!(p.engine.actions.capacity(), 0);
    assert_eq!(p.engine.events.capacity(), 0);
    assert_eq!(p.engine.outcome().operation_id.as_deref(), Some("op-1"));
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
    assert_eq!(p.result(), Some(Err(ErrorKind::TimeoutAssigning)));
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
    assert_eq!(p.result(), Some(Ok(())));
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
    assert_eq!(p.result(), Some(Err(ErrorKind::ProtocolBadResponse)));
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

/// The error that ended the attempt, as the getters show it.
fn final_error(p: &Peer) -> String {
    match &p.engine.outcome().result {
        Some(Err(e)) => e.to_string(),
        other => panic!("not failed: {other:?}"),
    }
}

#[test]
fn connection_failures_are_retried_until_the_deadline_which_reports_the_cause() {
    let timing = Timing {
        deadline_ms: 60_000,
        ..Timing::default()
    };
    let mut p = Peer::start(timing);
    let mut dials = 1;
    loop {
        p.engine.on_connection_lost(
            p.now,
            Error::new(ErrorKind::TransportConnect, format!("refused #{dials}")),
        );
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
        dials += 1;
    }
    assert!(dials > 5, "more connects than the old cap of 5: {dials}");
    assert_eq!(p.now, 61_000, "ended by the deadline");
    assert_eq!(p.result(), Some(Err(ErrorKind::TransportConnect)));
    assert_eq!(
        final_error(&p),
        format!(
            "could not connect to the server: dps.example:8883, {dials} attempts in 60000 ms: \
             refused #{dials}"
        )
    );
}

#[test]
fn a_connection_that_never_answers_ends_in_a_transport_error_at_the_deadline() {
    let mut p = Peer::start(Timing {
        deadline_ms: 5_000,
        ..Timing::default()
    });
    p.run_timers_until(u64::MAX);
    assert_eq!(p.result(), Some(Err(ErrorKind::TransportConnect)));
    assert_eq!(
        final_error(&p),
        "could not connect to the server: dps.example:8883, 1 attempt in 5000 ms: \
         no answer from the server"
    );
}

#[test]
fn a_service_that_answered_and_went_silent_ends_in_a_timeout() {
    let mut p = Peer::start(Timing {
        deadline_ms: 5_000,
        ..Timing::default()
    });
    p.connack(mqttrs::ConnectReturnCode::Accepted);
    p.engine
        .on_connection_lost(p.now, Error::new(ErrorKind::TransportClosed, "dropped"));
    p.run_timers_until(u64::MAX);
    assert_eq!(p.result(), Some(Err(ErrorKind::Timeout)));
    assert_eq!(
        final_error(&p),
        "the deadline passed: no result within 5000 ms"
    );
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
    s.client_version = Some("firmware/2.1 (board-x)".parse().unwrap());
    let (username, password) = first_connect(s);
    assert!(password.unwrap().contains("&se=1700000060&"));
    assert!(
        username.ends_with("&ClientVersion=firmware%2F2.1%20%28board-x%29"),
        "{username}"
    );
}
