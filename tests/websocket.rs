//! MQTT over WebSocket over TLS against the real emulator's `wss` listener: registration with
//! a key (that port speaks only WebSocket), every byte delivered by a separate transport call,
//! a wrong key.

mod common;

use common::{emulator_config, register_with, sym_emulator, test_key, Emulator};
use dps_mqtt::config::{Config, KeyKind};
use dps_mqtt::engine::driver::{Io, Transport};
use dps_mqtt::engine::Outcome;
use dps_mqtt::error::ErrorKind;
use dps_mqtt::hosted::{SystemClock, TcpTransport};
use serde_json::json;
use zeroize::Zeroizing;

fn emulator(name: &str, knobs: serde_json::Value) -> Emulator {
    sym_emulator(name, knobs, &["--ws-port", "0"])
}

fn ws_config(emu: &Emulator, name: &str, key: &str) -> Config {
    let key = KeyKind::Device(Zeroizing::new(key.to_owned()));
    let mut cfg = emulator_config(emu, Some(name), key);
    cfg.set_websocket(true);
    assert_eq!(cfg.port.get(), 443, "WebSocket defaults to port 443");
    cfg.set_endpoint("localhost", emu.ws_port.expect("emulator serves wss"))
        .unwrap();
    cfg
}

/// Passes at most one byte per `send` and `recv` call to the real TCP transport.
#[derive(Default)]
struct OneByte(TcpTransport);

impl Transport for OneByte {
    fn connect(&mut self, host: &str, port: u16) -> Result<(), String> {
        self.0.connect(host, port)
    }
    fn send(&mut self, data: &[u8]) -> Io {
        self.0.send(&data[..data.len().min(1)])
    }
    fn recv(&mut self, buf: &mut [u8]) -> Io {
        let n = buf.len().min(1);
        self.0.recv(&mut buf[..n])
    }
    fn close(&mut self) {
        self.0.close();
    }
    fn wait(&mut self, timeout_ms: u64, want_write: bool) {
        self.0.wait(timeout_ms, want_write);
    }
}

fn register_over(cfg: &Config, transport: &mut dyn Transport) -> (Result<(), ErrorKind>, Outcome) {
    register_with(cfg, transport, &mut SystemClock::default())
}

#[test]
fn registration_with_a_key_over_websocket() {
    let emu = emulator("ws-dev", json!({ "assignAfterPolls": 1 }));
    let cfg = ws_config(&emu, "ws-dev", &test_key("ws-dev"));
    let (code, outcome) = register_over(&cfg, &mut TcpTransport::default());
    assert_eq!(code, Ok(()), "{:?}", outcome.result);
    assert_eq!(outcome.status.as_deref(), Some("assigned"));
    assert_eq!(outcome.device_id.as_deref(), Some("ws-dev"));
    assert_eq!(
        outcome.assigned_hub.as_deref(),
        Some("test-hub.azure-devices.net")
    );
}

#[test]
fn every_byte_in_its_own_transport_call_over_websocket() {
    let emu = emulator(
        "ws-slow",
        json!({ "assignAfterPolls": 1, "fragment": true }),
    );
    let cfg = ws_config(&emu, "ws-slow", &test_key("ws-slow"));
    let (code, outcome) = register_over(&cfg, &mut OneByte::default());
    assert_eq!(code, Ok(()), "{:?}", outcome.result);
    assert_eq!(outcome.device_id.as_deref(), Some("ws-slow"));
}

#[test]
fn wrong_key_over_websocket_is_an_auth_error() {
    let emu = emulator("ws-bad", json!({}));
    let cfg = ws_config(&emu, "ws-bad", &test_key("another key"));
    let (code, _) = register_over(&cfg, &mut TcpTransport::default());
    assert_eq!(code, Err(ErrorKind::AuthUnauthorized));
}

#[test]
fn websocket_port_follows_unless_set_explicitly() {
    let mut cfg = Config::default();
    assert_eq!(cfg.port.get(), 8883);
    cfg.set_websocket(true);
    assert_eq!(cfg.port.get(), 443);
    cfg.set_websocket(false);
    assert_eq!(cfg.port.get(), 8883);
    cfg.set_endpoint("h", 8443).unwrap();
    cfg.set_websocket(true);
    assert_eq!(cfg.port.get(), 8443, "an explicit port is kept");
    assert!(cfg.settings().is_err(), "still needs credentials");
}
