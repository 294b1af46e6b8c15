//! The library through a real HTTP proxy on loopback (Debian's tinyproxy, started by each test
//! with its own configuration on a free port) to the real emulator: MQTT over TLS (8883-style)
//! and over WebSocket (443-style), basic auth right and wrong, and a proxy refusing CONNECT.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::{device_key, emulator_config, register_with, sym_emulator, Emulator};
use dps_mqtt::config::Config;
use dps_mqtt::engine::driver::{Io, Transport};
use dps_mqtt::engine::Outcome;
use dps_mqtt::error::ErrorKind;
use dps_mqtt::hosted::{SystemClock, TcpTransport};
use dps_mqtt::layers::proxy::Proxy;
use serde_json::json;

/// `$TINYPROXY`, else the Debian package's binary.
fn tinyproxy_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TINYPROXY") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("tinyproxy not found: apt-get install tinyproxy (tools/ensure-deps.sh does), or set TINYPROXY");
}

struct Tinyproxy {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Tinyproxy {
    /// Starts tinyproxy in the foreground allowing CONNECT only to `connect_ports`, with basic
    /// auth when `auth` is set; returns once it logs that it accepts connections.
    fn start(connect_ports: &[u16], auth: Option<(&str, &str)>) -> Tinyproxy {
        // The free port is found by binding port 0 and releasing it; another process could take
        // it in between, so a failed start is tried again.
        for _ in 0..3 {
            if let Some(proxy) = Self::try_start(connect_ports, auth) {
                return proxy;
            }
        }
        panic!("tinyproxy did not start");
    }

    fn try_start(connect_ports: &[u16], auth: Option<(&str, &str)>) -> Option<Tinyproxy> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("dps-mqtt-proxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 20\n\
             Allow 127.0.0.1\nDisableViaHeader Yes\n"
        );
        for p in connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        if let Some((user, password)) = auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let conf_path = dir.join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut child = Command::new(tinyproxy_binary())
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tinyproxy");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines
            .by_ref()
            .map_while(std::result::Result::ok)
            .any(|l| l.contains("Accepting connections"));
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Some(Tinyproxy { child, port, dir })
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The real TCP transport, remembering where it was asked to connect.
#[derive(Default)]
struct Recording {
    inner: TcpTransport,
    dialled: Vec<(String, u16)>,
}

impl Transport for Recording {
    fn connect(&mut self, host: &str, port: u16) -> Result<(), String> {
        self.dialled.push((host.to_owned(), port));
        self.inner.connect(host, port)
    }
    fn send(&mut self, data: &[u8]) -> Io {
        self.inner.send(data)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Io {
        self.inner.recv(buf)
    }
    fn close(&mut self) {
        self.inner.close();
    }
    fn wait(&mut self, timeout_ms: u64, want_write: bool) {
        self.inner.wait(timeout_ms, want_write);
    }
}

fn emulator(name: &str) -> Emulator {
    sym_emulator(name, json!({}), &["--ws-port", "0"])
}

fn config(emu: &Emulator, name: &str, websocket: bool, proxy: Proxy) -> Config {
    let mut cfg = emulator_config(emu, Some(name), device_key(name));
    cfg.proxy = Some(proxy);
    cfg.set_websocket(websocket);
    let port = if websocket {
        emu.ws_port.expect("emulator serves wss")
    } else {
        emu.port
    };
    cfg.set_endpoint("localhost", port).unwrap();
    cfg
}

/// One registration, and the (host, port) pairs the transport was asked to dial.
fn register(cfg: &Config) -> (Result<(), ErrorKind>, Outcome, Vec<(String, u16)>) {
    let mut transport = Recording::default();
    let (code, outcome) = register_with(cfg, &mut transport, &mut SystemClock::default());
    (code, outcome, transport.dialled)
}

fn proxy(tp: &Tinyproxy, auth: Option<(&str, &str)>) -> Proxy {
    Proxy::new("127.0.0.1", tp.port, auth.map(|a| a.0), auth.map(|a| a.1)).unwrap()
}

#[test]
fn mqtt_over_tls_through_a_proxy_with_basic_auth() {
    let emu = emulator("proxied-tls");
    let tp = Tinyproxy::start(&[emu.port], Some(("dev", "s3cret")));
    let cfg = config(
        &emu,
        "proxied-tls",
        false,
        proxy(&tp, Some(("dev", "s3cret"))),
    );
    let (code, outcome, dialled) = register(&cfg);
    assert_eq!(code, Ok(()), "{:?}", outcome.result);
    assert_eq!(outcome.device_id.as_deref(), Some("proxied-tls"));
    assert!(!dialled.is_empty());
    assert!(
        dialled
            .iter()
            .all(|d| *d == ("127.0.0.1".to_owned(), tp.port)),
        "only the proxy is dialled: {dialled:?}"
    );
}

#[test]
fn websocket_through_a_proxy() {
    let emu = emulator("proxied-ws");
    let ws_port = emu.ws_port.unwrap();
    let tp = Tinyproxy::start(&[ws_port], None);
    let cfg = config(&emu, "proxied-ws", true, proxy(&tp, None));
    let (code, outcome, dialled) = register(&cfg);
    assert_eq!(code, Ok(()), "{:?}", outcome.result);
    assert_eq!(outcome.device_id.as_deref(), Some("proxied-ws"));
    assert!(dialled.iter().all(|d| d.1 == tp.port), "{dialled:?}");
}

#[test]
fn wrong_or_missing_proxy_credentials_are_proxy_auth_errors() {
    let emu = emulator("proxied-auth");
    let tp = Tinyproxy::start(&[emu.port], Some(("dev", "right")));
    for auth in [Some(("dev", "wrong")), None] {
        let cfg = config(&emu, "proxied-auth", false, proxy(&tp, auth));
        let (code, outcome, dialled) = register(&cfg);
        assert_eq!(
            code,
            Err(ErrorKind::TransportProxyAuth),
            "{auth:?} {:?}",
            outcome.result
        );
        assert!(!code.unwrap_err().is_retryable());
        let detail = outcome.result.unwrap().unwrap_err().detail;
        // tinyproxy answers 401 where the standard says 407: both mean proxy credentials.
        assert!(detail.contains("401") || detail.contains("407"), "{detail}");
        assert!(
            !detail.contains("wrong"),
            "the password is never shown: {detail}"
        );
        assert_eq!(dialled.len(), 1, "a 407 is final, not retried");
    }
}

#[test]
fn proxy_refusing_connect_is_a_proxy_error_with_its_status() {
    let emu = emulator("proxied-refused");
    // CONNECT is allowed to another port only.
    let tp = Tinyproxy::start(&[emu.port.wrapping_add(1).max(1)], None);
    let cfg = config(&emu, "proxied-refused", false, proxy(&tp, None));
    let (code, outcome, _) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::TransportProxy));
    let detail = outcome.result.unwrap().unwrap_err().detail;
    assert!(detail.contains("403"), "{detail}");
}
