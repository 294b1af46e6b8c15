//! Starts the real `dps-emulator` binary for integration tests: a fresh certificate directory
//! and enrollment file per emulator, an OS-chosen port, and start-up synchronised on its
//! `ready` line (no sleeps).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine as _;

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
