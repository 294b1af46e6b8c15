//! Hostile and heavy input, byte-level server behaviour, the connection log and shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use mqttrs::{Packet, Pid, Publish, QosPid};
use serde_json::json;

/// After each abuse the same emulator must still register a device.
fn still_serves(emu: &Emulator) {
    let mut c = Client::tls(emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    let (status, _) = c.provision("dev-1", None);
    assert_eq!(status, 200);
}

/// Sends `bytes` as the first thing after the TLS handshake and expects the server to close.
fn closes_after(emu: &Emulator, bytes: &[u8]) {
    let mut c = Client::tls(emu);
    // The server may close while we are still writing: that is fine too.
    let _ = c.write_raw(bytes);
    loop {
        match c.recv() {
            Rx::Closed => break,
            Rx::Connack(_) | Rx::Suback(_) | Rx::Puback(_) => continue,
            other => panic!("unexpected {other:?} after hostile bytes"),
        }
    }
}

#[test]
fn malformed_mqtt_closes_only_that_connection() {
    let emu = Emulator::start(&[]);
    let mut hostile: Vec<Vec<u8>> = vec![
        // Reserved packet types 0 and 15.
        vec![0x00, 0x00],
        vec![0xf0, 0x00],
        // Remaining length with five continuation bytes.
        vec![0x10, 0xff, 0xff, 0xff, 0xff, 0x7f],
        // A CONNECT claiming 200 MB.
        vec![0x10, 0x80, 0x80, 0x80, 0x60],
        // CONNECT whose strings run past the end of the packet.
        vec![0x10, 0x05, 0x00, 0x04, b'M', b'Q', b'T'],
        vec![
            0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xc2, 0x00, 0x3c, 0xff, 0xff,
        ],
        // Unknown protocol name.
        vec![
            0x10, 0x0a, 0x00, 0x04, b'X', b'X', b'X', b'X', 0x04, 0x02, 0x00, 0x3c,
        ],
        // A SUBSCRIBE before any CONNECT.
        vec![0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01],
        // Plain garbage.
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ];
    // Random-looking bytes from a fixed seed: deterministic.
    let mut x: u32 = 0x2545_f491;
    for len in [1usize, 2, 7, 64, 500] {
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push(x as u8);
        }
        hostile.push(v);
    }
    // In parallel: incomplete packets are closed by the 10 s first-packet timeout.
    std::thread::scope(|s| {
        for bytes in &hostile {
            let emu = &emu;
            s.spawn(move || closes_after(emu, bytes));
        }
    });
    still_serves(&emu);
    assert!(emu.log_lines().iter().any(|l| l["outcome"]
        .as_str()
        .is_some_and(|o| o.starts_with("protocol-error"))));
}

#[test]
fn protocol_violations_after_connect_close_the_connection() {
    let emu = Emulator::start(&[]);
    let publish = |topic: &'static str, qospid: QosPid| {
        Packet::Publish(Publish {
            dup: false,
            qospid,
            retain: false,
            topic_name: topic,
            payload: b"{}",
        })
    };
    let pid = Pid::try_from(5).expect("pid");
    let violations = [
        publish("devices/dev-1/messages/events/", QosPid::AtLeastOnce(pid)),
        publish(
            "$dps/registrations/PUT/iotdps-register/?nope=1",
            QosPid::AtLeastOnce(pid),
        ),
        publish(
            "$dps/registrations/PUT/iotdps-register/?$rid=1",
            QosPid::ExactlyOnce(pid),
        ),
    ];
    for packet in &violations {
        let mut c = Client::tls(&emu);
        assert_eq!(c.connect_sas("dev-1", KEY), 0);
        c.subscribe();
        c.send(packet);
        loop {
            match c.recv() {
                Rx::Closed => break,
                Rx::Puback(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // A second CONNECT.
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    c.connect_raw("dev-1", Some("x"), None);
    assert_eq!(c.recv(), Rx::Closed);
    still_serves(&emu);
}

#[test]
fn messages_over_96_kb_close_the_connection() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    c.subscribe();
    let big = json!({ "registrationId": "dev-1", "payload": { "blob": "x".repeat(97 * 1024) } });
    let body = big.to_string();
    let mut bytes = vec![0u8; body.len() + 256];
    let n = mqttrs::encode_slice(
        &Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(Pid::try_from(9).expect("pid")),
            retain: false,
            topic_name: "$dps/registrations/PUT/iotdps-register/?$rid=1",
            payload: body.as_bytes(),
        }),
        &mut bytes,
    )
    .expect("encode");
    // The server closes on the length prefix, possibly while we are still writing.
    let _ = c.write_raw(&bytes[..n]);
    assert_eq!(c.recv(), Rx::Closed);
    // Just under the limit is fine.
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    let ok = json!({ "blob": "x".repeat(90 * 1024) });
    let (status, resp) = c.provision("dev-1", Some(ok.clone()));
    assert_eq!(status, 200);
    assert_eq!(resp["registrationState"]["payload"], ok);
}

#[test]
fn non_tls_bytes_and_silent_clients_do_not_disturb_the_server() {
    let emu = Emulator::start(&["--ws-port", "0"]);
    let ws_port = emu.ws_port.expect("ws port");
    for port in [emu.port, ws_port] {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        tcp.write_all(&[
            0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0, 60,
        ])
        .expect("write");
        let mut buf = [0u8; 64];
        // A TLS alert at most, then the close.
        let mut total = 0;
        loop {
            match tcp.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
            assert!(total < 64, "server keeps talking to a non-TLS client");
        }
    }
    // A client that connects and says nothing holds no one up.
    let _silent = TcpStream::connect(("127.0.0.1", emu.port)).expect("connect");
    still_serves(&emu);
    let mut c = Client::websocket(&emu, "/$iothub/websocket").expect("websocket");
    c.write_raw(&[0xf0, 0x00]).expect("write");
    assert_eq!(c.recv(), Rx::Closed);
}

/// Counts TLS application-data records on the way in, without decrypting them.
struct RecordCounter {
    inner: TcpStream,
    header: Vec<u8>,
    body_left: usize,
    records: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Read for RecordCounter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut i = 0;
        while i < n {
            if self.body_left > 0 {
                let take = self.body_left.min(n - i);
                self.body_left -= take;
                i += take;
            } else {
                self.header.push(buf[i]);
                i += 1;
                if self.header.len() == 5 {
                    if self.header[0] == 23 {
                        self.records
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    self.body_left =
                        usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                    self.header.clear();
                }
            }
        }
        Ok(n)
    }
}

impl Write for RecordCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn fragment_writes_every_byte_in_its_own_record() {
    // TLS 1.2, so every application-data record carries MQTT bytes (no tickets or key updates).
    let emu = Emulator::start(&["--tls12-only"]);
    let records = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let config = tls_config(&emu.ca, &TlsOptions::default());
    let tcp = TcpStream::connect(("127.0.0.1", emu.port)).expect("connect");
    tcp.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
    let counter = RecordCounter {
        inner: tcp,
        header: Vec::new(),
        body_left: 0,
        records: records.clone(),
    };
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("conn");
    let mut tls = rustls::StreamOwned::new(conn, counter);

    let token = sas_token(SCOPE, "dev-fragment", KEY, now() + 60, false);
    let user = username(SCOPE, "dev-fragment");
    let mut out = vec![0u8; 1024];
    let n = mqttrs::encode_slice(
        &Packet::Connect(mqttrs::Connect {
            protocol: mqttrs::Protocol::MQTT311,
            keep_alive: 60,
            client_id: "dev-fragment",
            clean_session: true,
            last_will: None,
            username: Some(&user),
            password: Some(token.as_bytes()),
        }),
        &mut out,
    )
    .expect("encode");
    tls.write_all(&out[..n]).expect("write");
    tls.flush().expect("flush");
    let mut got = Vec::new();
    while got.len() < 4 {
        let mut b = [0u8; 16];
        let n = tls.read(&mut b).expect("read");
        assert!(n > 0, "closed");
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, [0x20, 0x02, 0x00, 0x00]);
    assert_eq!(records.load(std::sync::atomic::Ordering::Relaxed), 4);

    // And a whole registration still works byte by byte.
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-fragment", KEY), 0);
    let (status, _) = c.provision("dev-fragment", None);
    assert_eq!(status, 200);
}

#[test]
fn log_records_the_api_version_and_the_decoded_client_version() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-1", KEY, now() + 60, false);
    let user = format!(
        "{SCOPE}/registrations/dev-1/api-version=2021-06-01\
         &ClientVersion=contoso-fw%2F2.4.1%20%28board-x%29"
    );
    c.connect_raw("dev-1", Some(&user), Some(&token));
    assert_eq!(c.connack(), 0);
    c.send(&Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);
    let lines = emu.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["apiVersion"], "2021-06-01");
    assert_eq!(lines[0]["clientVersion"], "contoso-fw/2.4.1 (board-x)");

    let mut c = Client::tls(&emu);
    let user = format!("{SCOPE}/registrations/dev-1/api-version=2019-03-31");
    c.connect_raw("dev-1", Some(&user), Some(&token));
    assert_eq!(c.connack(), 0);
    c.send(&Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);
    assert_eq!(emu.log_lines()[1]["clientVersion"], serde_json::Value::Null);
}

#[test]
fn log_records_the_sas_expiry_as_sent() {
    let emu = Emulator::start(&[]);
    let expiry = now() + 86_400;
    let mut c = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-1", KEY, expiry, false);
    c.connect_raw("dev-1", Some(&username(SCOPE, "dev-1")), Some(&token));
    assert_eq!(c.connack(), 0);
    c.send(&Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);

    // An expired token is logged with its expiry too, which says why it was refused.
    let expired = now() - 1;
    let mut c = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-1", KEY, expired, false);
    c.connect_raw("dev-1", Some(&username(SCOPE, "dev-1")), Some(&token));
    assert_eq!(c.connack(), 0);
    c.subscribe();
    let _ = c.register("1", &json!({ "registrationId": "dev-1" }));
    assert_eq!(c.recv(), Rx::Closed);

    let lines = emu.log_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["sasExpiry"], expiry);
    assert_eq!(lines[0]["outcome"], "disconnected");
    assert_eq!(lines[1]["sasExpiry"], expired);
    assert_eq!(lines[1]["outcome"], "unauthorized (401)");
}

#[test]
fn log_file_has_one_json_line_per_connection_without_secrets() {
    let emu = Emulator::start(&["--ws-port", "0"]);
    let mut c = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-1", KEY, now() + 60, false);
    c.connect_raw("dev-1", Some(&username(SCOPE, "dev-1")), Some(&token));
    assert_eq!(c.connack(), 0);
    let (status, _) = c.provision("dev-1", None);
    assert_eq!(status, 200);
    c.ping();
    c.send(&Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);
    let mut w = Client::websocket(&emu, "/$iothub/websocket").expect("ws");
    assert_eq!(w.connect_sas("dev-1", OTHER_KEY), 0);
    w.subscribe();
    let _ = w.register("1", &json!({ "registrationId": "dev-1" }));
    assert_eq!(w.recv(), Rx::Closed);

    let lines = emu.log_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let ok = &lines[0];
    assert_eq!(ok["registrationId"], "dev-1");
    assert_eq!(ok["apiVersion"], "2019-03-31");
    assert_eq!(ok["clientVersion"], "raw-test/1.0");
    assert_eq!(ok["transport"], "mqtts");
    assert_eq!(ok["outcome"], "assigned");
    assert_eq!(
        ok["packetsIn"],
        json!({ "CONNECT": 1, "SUBSCRIBE": 1, "PUBLISH": 2, "PUBACK": 2, "PINGREQ": 1, "DISCONNECT": 1 })
    );
    assert_eq!(
        ok["packetsOut"],
        json!({ "CONNACK": 1, "SUBACK": 1, "PUBACK": 2, "PUBLISH": 2, "PINGRESP": 1 })
    );
    assert!(ok["bytesIn"].as_u64().is_some_and(|b| b > 100));
    assert!(ok["bytesOut"].as_u64().is_some_and(|b| b > 100));
    assert!(ok["durationMs"].is_u64());
    let bad = &lines[1];
    assert_eq!(bad["transport"], "wss");
    assert!(
        bad["outcome"].as_str().is_some_and(|o| o.contains("401")),
        "{bad}"
    );

    let text = std::fs::read_to_string(emu.dir.join("log.jsonl")).expect("log");
    let sig = token
        .split("sig=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("sig");
    assert!(!text.contains(sig) && !text.contains(KEY) && !text.contains("SharedAccess"));
}

#[test]
fn a_thousand_concurrent_connections() {
    // The client side needs the descriptors too.
    let _ = rlimit::increase_nofile_limit(4096);
    let emu = Emulator::start(&[]);
    let config = tls_config(&emu.ca, &TlsOptions::default());
    let mut clients = Vec::new();
    for _ in 0..1000 {
        let mut c = Client::tls_with_config(&emu, config.clone()).expect("connect");
        assert_eq!(c.connect_sas("dev-1", KEY), 0);
        clients.push(c);
    }
    // All of them are still served at once.
    for c in &mut clients {
        c.send(&Packet::Pingreq);
    }
    for c in &mut clients {
        assert_eq!(c.recv(), Rx::Pingresp);
    }
    let (status, _) = clients[999].provision("dev-1", None);
    assert_eq!(status, 200);
}

#[test]
fn sigterm_exits_zero_with_the_log_flushed() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    c.send(&Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);
    let (status, log) = emu.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["outcome"], "disconnected");
    // Right after `ready` too.
    let (status, _) = Emulator::start(&[]).terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn pipelined_and_byte_by_byte_requests_are_reassembled() {
    let emu = Emulator::start(&[]);
    let token = sas_token(SCOPE, "dev-1", KEY, now() + 60, false);
    let user = username(SCOPE, "dev-1");
    let body = json!({ "registrationId": "dev-1" }).to_string();
    let pid = Pid::try_from(1).expect("pid");
    let packets = [
        Packet::Connect(mqttrs::Connect {
            protocol: mqttrs::Protocol::MQTT311,
            keep_alive: 60,
            client_id: "dev-1",
            clean_session: true,
            last_will: None,
            username: Some(&user),
            password: Some(token.as_bytes()),
        }),
        Packet::Subscribe(mqttrs::Subscribe {
            pid,
            topics: vec![mqttrs::SubscribeTopic {
                topic_path: "$dps/registrations/res/#".into(),
                qos: mqttrs::QoS::AtLeastOnce,
            }],
        }),
        Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(Pid::try_from(2).expect("pid")),
            retain: false,
            topic_name: "$dps/registrations/PUT/iotdps-register/?$rid=x",
            payload: body.as_bytes(),
        }),
    ];
    let mut bytes = Vec::new();
    for p in &packets {
        let mut buf = vec![0u8; 2048];
        let n = mqttrs::encode_slice(p, &mut buf).expect("encode");
        bytes.extend_from_slice(&buf[..n]);
    }
    for one_byte_writes in [false, true] {
        let mut c = Client::tls(&emu);
        if one_byte_writes {
            for b in &bytes {
                c.write_raw(std::slice::from_ref(b)).expect("write");
            }
        } else {
            // Everything before the CONNACK, in one write, as a one-round-trip client sends it.
            c.write_raw(&bytes).expect("write");
        }
        assert_eq!(c.recv(), Rx::Connack(0));
        assert_eq!(c.recv(), Rx::Suback(vec![Some(1)]));
        assert_eq!(c.recv(), Rx::Puback(2));
        let (status, params, _) = c.response();
        assert_eq!((status, param(&params, "$rid")), (202, Some("x")));
    }
}
