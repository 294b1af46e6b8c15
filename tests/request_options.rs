//! The registration's configurable details against the real emulator: the model id inside
//! `payload`, the SAS token lifetime, the ClientVersion agent and the api-version.

mod common;

use common::{device_key, emulator_config, register_with, sym_emulator, Emulator};
use dps_mqtt::config::Config;
use dps_mqtt::engine::driver::{Io, Time, Transport};
use dps_mqtt::engine::Outcome;
use dps_mqtt::error::ErrorKind;
use dps_mqtt::hosted::{SystemClock, TcpTransport};
use serde_json::json;

const DEVICE: &str = "options-dev";
const MODEL: &str = "dtmi:com:example:Thermostat;1";

fn emulator() -> Emulator {
    sym_emulator(DEVICE, json!({}), &[])
}

fn config(emu: &Emulator) -> Config {
    emulator_config(emu, Some(DEVICE), device_key(DEVICE))
}

/// The system clock with its wall-clock time this many seconds behind.
struct LaggingClock {
    inner: SystemClock,
    lag_secs: u64,
}

impl Time for LaggingClock {
    fn now_ms(&mut self) -> u64 {
        self.inner.now_ms()
    }
    fn unix_seconds(&mut self) -> u64 {
        self.inner.unix_seconds() - self.lag_secs
    }
}

/// TCP whose `close` first waits for the server to close its side. The emulator writes a
/// connection's log line before it closes the connection, so once a registration has returned
/// its line is in the log: no race between the test reading the log and the server writing it.
#[derive(Default)]
struct WaitForServerClose(TcpTransport);

impl Transport for WaitForServerClose {
    fn connect(&mut self, host: &str, port: u16) -> Result<(), String> {
        self.0.connect(host, port)
    }
    fn send(&mut self, data: &[u8]) -> Io {
        self.0.send(data)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Io {
        self.0.recv(buf)
    }
    fn close(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.0.recv(&mut buf) {
                Io::Done(_) => {}
                Io::WouldBlock => self.0.wait(10_000, false),
                Io::Closed | Io::Failed(_) | Io::Fatal(_) => break,
            }
        }
        self.0.close();
    }
    fn wait(&mut self, timeout_ms: u64, want_write: bool) {
        self.0.wait(timeout_ms, want_write)
    }
}

/// A registration whose connections the emulator has logged by the time it returns.
fn register_logged(cfg: &Config, clock: &mut dyn Time) -> (Result<(), ErrorKind>, Outcome) {
    register_with(cfg, &mut WaitForServerClose::default(), clock)
}

fn register(cfg: &Config) -> (Result<(), ErrorKind>, Outcome) {
    register_logged(cfg, &mut SystemClock::default())
}

/// The payload the emulator echoed back (it returns the device's own without an enrollment
/// payload), parsed.
fn echoed_payload(out: &Outcome) -> serde_json::Value {
    serde_json::from_str(out.payload.as_deref().expect("payload echoed")).unwrap()
}

#[test]
fn model_id_goes_inside_the_payload() {
    let emu = emulator();
    let mut cfg = config(&emu);
    cfg.model_id = Some(MODEL.parse().unwrap());
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
    assert_eq!(echoed_payload(&out), json!({ "modelId": MODEL }));

    cfg.payload = Some(r#"{"site":"berlin","n":[1,2]}"#.parse().unwrap());
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
    assert_eq!(
        echoed_payload(&out),
        json!({ "modelId": MODEL, "site": "berlin", "n": [1, 2] })
    );
}

#[test]
fn model_id_conflicts_are_refused_before_dialling() {
    let emu = emulator();
    let mut cfg = config(&emu);
    cfg.model_id = Some(MODEL.parse().unwrap());
    for payload in [r#"{"modelId":"dtmi:other;1"}"#, "[1,2]", "\"text\""] {
        cfg.payload = Some(payload.parse().unwrap());
        let e = cfg.settings().err().expect("refused");
        assert_eq!(e.kind, ErrorKind::InvalidPayload, "{payload}: {e}");
    }
    cfg.payload = None;
    assert_eq!(
        cfg.set_model_id(Some("com:example:Thermostat;1"))
            .err()
            .map(|e| e.kind),
        Some(ErrorKind::InvalidModelId)
    );
}

/// The emulator, like DPS, refuses a token whose expiry has passed. With a device clock two
/// hours behind, the default one-hour token arrives expired; a three-hour one does not.
#[test]
fn sas_token_lifetime_sets_the_expiry() {
    let emu = emulator();
    let mut cfg = config(&emu);
    let mut lagging = LaggingClock {
        inner: SystemClock::default(),
        lag_secs: 2 * 3600,
    };
    assert_eq!(register(&cfg).0, Ok(()));
    let (code, out) = register_logged(&cfg, &mut lagging);
    assert_eq!(code, Err(ErrorKind::AuthUnauthorized), "{out:?}");
    cfg.set_sas_token_lifetime_secs(3 * 3600).unwrap();
    assert_eq!(register_logged(&cfg, &mut lagging).0, Ok(()));
    for out_of_range in [0, 59, 30 * 24 * 3600 + 1, u32::MAX] {
        assert_eq!(
            cfg.set_sas_token_lifetime_secs(out_of_range)
                .unwrap_err()
                .kind,
            ErrorKind::InvalidArgument
        );
    }
    assert_eq!(
        cfg.timing.sas_ttl_secs,
        3 * 3600,
        "unchanged by refused values"
    );
}

/// What the emulator logged for each connection: (apiVersion, clientVersion).
fn logged_versions(emu: &Emulator) -> Vec<(serde_json::Value, serde_json::Value)> {
    std::fs::read_to_string(emu.log_path())
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["apiVersion"].clone(), v["clientVersion"].clone())
        })
        .collect()
}

#[test]
fn client_version_and_api_version_reach_the_service() {
    let emu = emulator();
    let mut cfg = config(&emu);
    assert_eq!(register(&cfg).0, Ok(()));
    cfg.client_version = Some("contoso-fw/2.4.1 (board-x; rev b)".parse().unwrap());
    cfg.api_version = "2021-06-01".parse().unwrap();
    assert_eq!(register(&cfg).0, Ok(()));
    cfg.client_version = None;
    assert_eq!(register(&cfg).0, Ok(()));
    assert_eq!(
        logged_versions(&emu),
        vec![
            (
                json!("2019-03-31"),
                json!(concat!("dps-mqtt/", env!("CARGO_PKG_VERSION")))
            ),
            (
                json!("2021-06-01"),
                json!("contoso-fw/2.4.1 (board-x; rev b)")
            ),
            (json!("2021-06-01"), serde_json::Value::Null),
        ]
    );
    assert_eq!(
        cfg.set_api_version("2021-6-1").err().map(|e| e.kind),
        Some(ErrorKind::InvalidArgument)
    );
}
