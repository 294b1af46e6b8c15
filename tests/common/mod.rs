//! Starts the real `dps-emulator` binary for integration tests: a fresh certificate directory
//! and enrollment file per emulator, an OS-chosen port, and start-up synchronised on its
//! `ready` line (no sleeps).

#![allow(dead_code)]

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine as _;
use dps_mqtt::config::{Config, KeyKind, Port};
use dps_mqtt::engine::driver::{Time, Transport};
use dps_mqtt::engine::{Client, Outcome};
use dps_mqtt::error::ErrorKind;
use dps_mqtt::ffi::client::{dps_client, dps_client_new};
use dps_mqtt::ffi::config::*;
use dps_mqtt::ffi::result::dps_result::DPS_OK;
use dps_mqtt::hosted::{SystemClock, TcpTransport};
use zeroize::Zeroizing;

pub const ID_SCOPE: &str = "0ne00000001";

pub struct Emulator {
    child: Child,
    pub port: u16,
    /// The WebSocket port, when started with `--ws-port`.
    pub ws_port: Option<u16>,
    pub ca_pem: Vec<u8>,
    pub dir: PathBuf,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The emulator binary: `$DPS_EMULATOR`, else the workspace's release or debug build, built
/// on demand.
pub fn emulator_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DPS_EMULATOR") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("dps-emulator");
        if p.exists() {
            return p;
        }
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "dps-emulator"])
        .current_dir(workspace_root())
        .status()
        .expect("run cargo build for the emulator");
    assert!(status.success(), "building dps-emulator failed");
    target.join("release").join("dps-emulator")
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dps-mqtt-test-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A deterministic 32-byte base64 key per name: tests stay reproducible.
pub fn test_key(name: &str) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(name.as_bytes()))
}

impl Emulator {
    /// Starts an emulator with this enrollment document (`idScope` is filled in when absent)
    /// and extra command-line arguments.
    pub fn start(enrollments: serde_json::Value, extra_args: &[&str]) -> Emulator {
        let dir = temp_dir("emu");
        let mut doc = enrollments;
        if doc.get("idScope").is_none() {
            doc["idScope"] = serde_json::Value::from(ID_SCOPE);
        }
        let file = dir.join("enrollments.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        let mut child = Command::new(emulator_binary())
            .arg("--port")
            .arg("0")
            .arg("--cert-dir")
            .arg(dir.join("certs"))
            .arg("--enrollments")
            .arg(&file)
            .arg("--log")
            .arg(dir.join("connections.jsonl"))
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dps-emulator");
        let stdout = child.stdout.take().expect("emulator stdout");
        let mut port = None;
        let mut ws_port = None;
        let mut ca = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read emulator stdout");
            if let Some(rest) = line.strip_prefix("dps-emulator: listening mqtts ") {
                port = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
            } else if let Some(rest) = line.strip_prefix("dps-emulator: listening wss ") {
                ws_port = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
            } else if let Some(rest) = line.strip_prefix("dps-emulator: CA certificate: ") {
                ca = Some(PathBuf::from(rest.trim()));
            } else if line.trim() == "dps-emulator: ready" {
                break;
            }
        }
        let port = port.expect("emulator printed its port");
        let ca_pem = std::fs::read(ca.expect("emulator printed its CA path")).unwrap();
        Emulator {
            child,
            port,
            ws_port,
            ca_pem,
            dir,
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("connections.jsonl")
    }

    pub fn cert_dir(&self) -> PathBuf {
        self.dir.join("certs")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An individual symmetric-key enrollment with scenario knobs merged in.
pub fn sym_enrollment(reg_id: &str, key: &str, knobs: serde_json::Value) -> serde_json::Value {
    let mut e = serde_json::json!({
        "registrationId": reg_id,
        "attestation": { "type": "symmetricKey", "primaryKey": key },
        "assignedHub": "test-hub.azure-devices.net",
        "retryAfter": 0,
    });
    if let (Some(obj), Some(extra)) = (e.as_object_mut(), knobs.as_object()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    e
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// One emulator with one symmetric-key enrollment for `name` (its key: `test_key(name)`) with
/// these scenario knobs, and extra command-line arguments.
pub fn sym_emulator(name: &str, knobs: serde_json::Value, extra_args: &[&str]) -> Emulator {
    Emulator::start(
        serde_json::json!({ "enrollments": [sym_enrollment(name, &test_key(name), knobs)] }),
        extra_args,
    )
}

/// The individual-enrollment key of `name` (see `test_key`).
pub fn device_key(name: &str) -> KeyKind {
    KeyKind::Device(Zeroizing::new(test_key(name)))
}

/// A config for this emulator (its host and port, trusting its CA alone) with a 20 s
/// deadline: `registration_id` (None: the certificate's CN) and `key`.
pub fn emulator_config(emu: &Emulator, registration_id: Option<&str>, key: KeyKind) -> Config {
    let mut cfg = Config {
        id_scope: Some(ID_SCOPE.parse().unwrap()),
        registration_id: registration_id.map(|id| id.parse().unwrap()),
        key: Some(key),
        host: "localhost".parse().unwrap(),
        port: Port::new(emu.port).unwrap(),
        use_default_roots: false,
        extra_anchors_pem: emu.ca_pem.clone(),
        ..Config::default()
    };
    cfg.timing.deadline_ms = 20_000;
    cfg
}

/// Runs one registration to its end over `transport` with `clock`, draining the events.
pub fn register_with(
    cfg: &Config,
    transport: &mut dyn Transport,
    clock: &mut dyn Time,
) -> (Result<(), ErrorKind>, Outcome) {
    let mut client =
        Client::new(cfg.settings().expect("valid settings"), transport, clock).expect("client");
    client.start().expect("start");
    let code = client.register_blocking(&mut |_| {});
    (code, client.outcome().clone())
}

/// Runs one registration with the hosted TCP transport and the system clock.
pub fn register(cfg: &Config) -> (Result<(), ErrorKind>, Outcome) {
    register_with(
        cfg,
        &mut TcpTransport::default(),
        &mut SystemClock::default(),
    )
}

/// A C string for the C API.
pub fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// A C-API config for `name` on this emulator without a credential, every setter checked.
pub fn ffi_config(emu: &Emulator, name: &str) -> *mut dps_config {
    let cfg = dps_config_new();
    assert!(!cfg.is_null());
    assert_eq!(dps_config_set_id_scope(cfg, c(ID_SCOPE).as_ptr()), DPS_OK);
    assert_eq!(
        dps_config_set_registration_id(cfg, c(name).as_ptr()),
        DPS_OK
    );
    assert_eq!(
        dps_config_set_endpoint(cfg, c("localhost").as_ptr(), emu.port),
        DPS_OK
    );
    assert_eq!(
        dps_config_add_trust_anchors_pem(cfg, emu.ca_pem.as_ptr(), emu.ca_pem.len(), false),
        DPS_OK
    );
    assert_eq!(dps_config_set_timeout_ms(cfg, 20_000), DPS_OK);
    cfg
}

/// A client from `cfg` with the built-in transport; the caller frees it.
pub fn ffi_client(cfg: *const dps_config) -> *mut dps_client {
    let mut out = ptr::null_mut();
    assert_eq!(dps_client_new(cfg, ptr::null(), &mut out), DPS_OK);
    assert!(!out.is_null());
    out
}
