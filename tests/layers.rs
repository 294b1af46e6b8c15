//! The whole connection path in the clear (the framing a firmware with TLS offload gets), driven
//! byte by byte by a scripted proxy + WebSocket server: CONNECT tunnel, upgrade, MQTT in masked
//! frames, a server close frame after CONNACK (the connection is replaced, the packets before
//! the close still count), then a registration to the end on the second connection.

use dps_mqtt::dps::sas::{HexCase, KeySigner};
use dps_mqtt::engine::{Action, Credential, Engine, Settings, Timing};
use dps_mqtt::layers::proxy::Proxy;
use dps_mqtt::layers::ws::accept_key;
use dps_mqtt::layers::{FramingFactory, Route};
use mqttrs::{decode_slice, encode_slice, Packet, Pid, QosPid};

const KEY: &str = "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=";

fn engine() -> Engine {
    Engine::new(Settings {
        id_scope: "0ne00000001".parse().unwrap(),
        registration_id: "dev-1".parse().unwrap(),
        credential: Credential::Sas(Box::new(KeySigner::from_base64(KEY).unwrap())),
        host: "dps.example".parse().unwrap(),
        port: 443,
        api_version: "2019-03-31".parse().unwrap(),
        client_version: None,
        payload: None,
        framing: FramingFactory::Plain,
        route: Route {
            websocket: true,
            proxy: Some(Proxy::new("proxy.local", 3128, Some("u"), Some("p")).unwrap()),
        },
        timing: Timing::default(),
        max_packet_size: 4096,
        hex_case: HexCase::Lower,
        csr_b64: None,
        entropy: std::sync::Arc::new(dps_mqtt::platform::entropy::os_random),
    })
    .unwrap()
}

/// Feeds `data` one byte per call, as the slowest transport would.
fn feed(engine: &mut Engine, now: u64, data: &[u8]) {
    for b in data {
        engine.handle_input(now, std::slice::from_ref(b));
    }
}

fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![first, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

fn mqtt(packet: &Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = encode_slice(packet, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// Unmasks the client's frames and decodes the MQTT packets in them (their types).
fn client_packets(mut bytes: &[u8]) -> Vec<mqttrs::PacketType> {
    let mut stream = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(bytes[0], 0x82, "final binary frames");
        assert_eq!(bytes[1] & 0x80, 0x80, "masked");
        let (len, mut at) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            n => (n as usize, 2),
        };
        let mask = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        at += 4;
        stream.extend(
            bytes[at..at + len]
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, k)| b ^ k),
        );
        bytes = &bytes[at + len..];
    }
    let mut kinds = Vec::new();
    let mut rest = &stream[..];
    while !rest.is_empty() {
        let packet = decode_slice(rest).unwrap().unwrap();
        kinds.push(packet.get_type());
        rest = &rest[mqtt(&packet).len()..];
    }
    kinds
}

/// Tunnel and upgrade on a fresh connection; returns the MQTT packets sent after the 101.
fn open_connection(engine: &mut Engine, now: u64) -> Vec<mqttrs::PacketType> {
    assert_eq!(
        engine.poll_action(),
        Some(Action::Connect {
            host: "proxy.local".into(),
            port: 3128
        })
    );
    engine.on_connected(now);
    let connect = String::from_utf8(engine.take_transmit().to_vec()).unwrap();
    assert_eq!(
        connect,
        "CONNECT dps.example:443 HTTP/1.1\r\nHost: dps.example:443\r\n\
         Proxy-Authorization: Basic dTpw\r\n\r\n"
    );
    assert!(
        engine.take_transmit().is_empty(),
        "nothing before the tunnel"
    );
    feed(engine, now, b"HTTP/1.1 200 Connection established\r\n\r\n");
    let upgrade = String::from_utf8(engine.take_transmit().to_vec()).unwrap();
    assert!(upgrade.starts_with("GET /$iothub/websocket HTTP/1.1\r\nHost: dps.example\r\n"));
    let key = upgrade
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    feed(
        engine,
        now,
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
            accept_key(key)
        )
        .as_bytes(),
    );
    client_packets(&engine.take_transmit())
}

#[test]
fn proxy_websocket_mqtt_in_the_clear_with_a_close_frame_in_between() {
    use mqttrs::PacketType::*;
    let mut engine = engine();
    let mut now = 1_000;
    engine.set_unix_time(1_700_000_000);
    engine.start(now).unwrap();
    assert_eq!(
        open_connection(&mut engine, now),
        vec![Connect, Subscribe, Publish]
    );
    // CONNACK, then a close frame in the same read: CONNACK counts, then the link is lost.
    let mut input = server_frame(
        0x82,
        &mqtt(&Packet::Connack(mqttrs::Connack {
            session_present: false,
            code: mqttrs::ConnectReturnCode::Accepted,
        })),
    );
    let mut close = 1001u16.to_be_bytes().to_vec();
    close.extend(b"restarting");
    input.extend(server_frame(0x88, &close));
    engine.handle_input(now, &input);
    assert!(
        engine.is_running(),
        "a close frame is not the end of the attempt"
    );
    assert_eq!(engine.poll_action(), Some(Action::Close));
    let logs: Vec<String> = std::iter::from_fn(|| engine.poll_event())
        .filter_map(|e| match e {
            dps_mqtt::engine::Event::Log(_, text) => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("1001") && l.contains("restarting")),
        "{logs:?}"
    );
    // Back-off, then a new connection through the proxy and a registration to the end.
    now = engine.next_timeout().unwrap();
    engine.handle_timeout(now);
    assert_eq!(
        open_connection(&mut engine, now),
        vec![Connect, Subscribe, Publish]
    );
    let mut input = server_frame(
        0x82,
        &mqtt(&Packet::Connack(mqttrs::Connack {
            session_present: false,
            code: mqttrs::ConnectReturnCode::Accepted,
        })),
    );
    input.extend(server_frame(
        0x82,
        &mqtt(&Packet::Suback(mqttrs::Suback {
            pid: Pid::try_from(1).unwrap(),
            return_codes: vec![mqttrs::SubscribeReturnCodes::Success(
                mqttrs::QoS::AtLeastOnce,
            )],
        })),
    ));
    feed(&mut engine, now, &input);
    let body = r#"{"operationId":"op","status":"assigned","registrationState":{"assignedHub":"hub.example","deviceId":"dev-1","status":"assigned"}}"#;
    let topic = "$dps/registrations/res/200/?$rid=2";
    let publish = mqtt(&Packet::Publish(mqttrs::Publish {
        dup: false,
        qospid: QosPid::AtLeastOnce(Pid::try_from(9).unwrap()),
        retain: false,
        topic_name: topic,
        payload: body.as_bytes(),
    }));
    // Split into a fragmented message: a binary frame and two continuations, a ping between.
    let (a, rest) = publish.split_at(10);
    let (b, c) = rest.split_at(60);
    let mut input = server_frame(0x02, a);
    input.extend(server_frame(0x00, b));
    input.extend(server_frame(0x89, b"hi"));
    input.extend(server_frame(0x80, c));
    feed(&mut engine, now, &input);
    assert!(!engine.is_running());
    let outcome = engine.outcome();
    assert_eq!(outcome.result, Some(Ok(())));
    assert_eq!(outcome.assigned_hub.as_deref(), Some("hub.example"));
}
