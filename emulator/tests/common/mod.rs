//! Starts the real emulator binary and talks raw MQTT 3.1.1 to it over TLS or WebSocket.
//! Every read has a timeout, so a server that goes silent fails the test instead of hanging it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use mqttrs::{
    decode_slice, encode_slice, Connect, Packet, Pid, Protocol, Publish, QoS, QosPid, Subscribe,
    SubscribeReturnCodes, SubscribeTopic,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use sha2::Sha256;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

pub const SCOPE: &str = "0ne0000TEST";
pub const KEY: &str = "Bwgd+oNqFi6U18PMBW/HDJkqq+yRUex+6DozTf8czYQ=";
pub const OTHER_KEY: &str = "C9Si3mnJMaTI/zd53VBlD4HYajyaf67pvhgpLA/6HVk=";
pub const GROUP_KEY: &str =
    "VBkEf0OyE7+t0/EqXNcAdKLwP+EV7ugsh44a+UhCVM6MvtOU+0vNfbaSE6pH/HsdrwkrZ3TkdWSTfVxM6oY7hw==";
/// Longer than any server timeout (10 s for the first packet), so those win the race.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The enrollments every test runs against.
pub fn enrollments() -> String {
    let sym = |id: &str, extra: &str| {
        format!(
            r#"{{ "registrationId": "{id}", "attestation": {{ "type": "symmetricKey",
                 "primaryKey": "{KEY}" }}, "assignedHub": "hub-1.azure-devices.net",
                 "retryAfter": 1 {extra} }}"#
        )
    };
    let list = [
        sym("dev-1", ""),
        sym("dev-payload", r#", "payload": {"fromEnrollment": true}"#),
        sym("dev-throttle", r#", "throttleFirst": 1, "retryAfter": 2"#),
        sym("dev-500", r#", "serverErrorFirst": 1"#),
        sym(
            "dev-failed",
            r#", "outcome": "failed", "errorCode": 400209, "errorMessage": "allocation failed""#,
        ),
        sym("dev-disabled", r#", "outcome": "disabled""#),
        sym("dev-polls", r#", "assignAfterPolls": 2, "retryAfter": 0"#),
        sym("dev-fragment", r#", "fragment": true"#),
        sym("dev-drop", r#", "dropAfterBytes": 1"#),
        sym("dev-delay", r#", "delayMs": 400"#),
        sym("dev-connack", r#", "authFailure": "connack""#),
        sym(
            "dev-limit",
            r#", "limitPolls": true, "assignAfterPolls": 10"#,
        ),
        sym(
            "dev-custom",
            r#", "deviceId": "custom-id", "substatus": "deviceDataMigrated""#,
        ),
        r#"{ "registrationId": "dev-x509", "attestation": { "type": "x509" },
             "assignedHub": "hub-x509.azure-devices.net" }"#
            .to_owned(),
    ];
    format!(
        r#"{{ "idScope": "{SCOPE}", "enrollments": [{}],
             "groups": [
               {{ "groupId": "grp", "attestation": {{ "type": "symmetricKey", "primaryKey": "{GROUP_KEY}" }},
                  "assignedHub": "hub-group.azure-devices.net", "retryAfter": 1 }},
               {{ "groupId": "grp-x509", "attestation": {{ "type": "x509" }},
                  "assignedHub": "hub-group-x509.azure-devices.net" }}
             ] }}"#,
        list.join(",")
    )
}

/// A running emulator in its own temporary directory; killed and cleaned up on drop.
pub struct Emulator {
    child: Child,
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub device_ca: PathBuf,
    pub port: u16,
    pub ws_port: Option<u16>,
}

pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dps-emulator-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The binary under test: this package's, or `$DPS_EMULATOR_UNDER_TEST` (to check that a
/// test fails against another build, such as one without a fix).
pub fn binary() -> &'static str {
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        std::env::var("DPS_EMULATOR_UNDER_TEST")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_dps-emulator").to_owned())
    })
}

impl Emulator {
    pub fn start(extra: &[&str]) -> Emulator {
        Emulator::start_with(&enrollments(), extra)
    }

    pub fn start_without_enrollments(extra: &[&str]) -> Emulator {
        Emulator::launch(None, extra)
    }

    pub fn start_with(enrollments: &str, extra: &[&str]) -> Emulator {
        Emulator::launch(Some(enrollments), extra)
    }

    /// With `--log log` instead of the log file in its directory.
    pub fn start_logging_to(log: &Path, extra: &[&str]) -> Emulator {
        Emulator::launch_with(Some(&enrollments()), Some(log), None, extra)
    }

    /// With this certificate directory (kept when the emulator is dropped).
    pub fn start_with_cert_dir(certs: &Path, extra: &[&str]) -> Emulator {
        Emulator::launch_with(Some(&enrollments()), None, Some(certs), extra)
    }

    fn launch(enrollments: Option<&str>, extra: &[&str]) -> Emulator {
        Emulator::launch_with(enrollments, None, None, extra)
    }

    fn launch_with(
        enrollments: Option<&str>,
        log: Option<&Path>,
        certs: Option<&Path>,
        extra: &[&str],
    ) -> Emulator {
        let dir = temp_dir("emu");
        let mut cmd = Command::new(binary());
        if let Some(enrollments) = enrollments {
            let file = dir.join("enrollments.json");
            std::fs::write(&file, enrollments).expect("write enrollments");
            cmd.arg("--enrollments").arg(file);
        }
        let stderr = std::fs::File::create(dir.join("stderr.txt")).expect("stderr file");
        let mut child = cmd
            .args(["--port", "0", "--cert-dir"])
            .arg(certs.map_or_else(|| dir.join("certs"), Path::to_owned))
            .arg("--log")
            .arg(log.map_or_else(|| dir.join("log.jsonl"), Path::to_owned))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start dps-emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut ca, mut device_ca, mut port, mut ws_port) = (None, None, None, None);
        let port_of = |addr: &str| addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        loop {
            let line = lines
                .next()
                .expect("emulator exited before ready")
                .expect("read stdout");
            if let Some(p) = line.strip_prefix("dps-emulator: CA certificate: ") {
                ca = Some(PathBuf::from(p));
            } else if let Some(p) = line.strip_prefix("dps-emulator: device CA certificate: ") {
                device_ca = Some(PathBuf::from(p));
            } else if let Some(a) = line.strip_prefix("dps-emulator: listening mqtts ") {
                port = port_of(a);
            } else if let Some(a) = line.strip_prefix("dps-emulator: listening wss ") {
                ws_port = port_of(a);
            } else if line == "dps-emulator: ready" {
                break;
            } else {
                panic!("unexpected start-up line {line:?}");
            }
        }
        Emulator {
            child,
            dir,
            ca: ca.expect("CA line"),
            device_ca: device_ca.expect("device CA line"),
            port: port.expect("mqtts line"),
            ws_port,
        }
    }

    pub fn log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line is JSON"))
            .collect()
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.join("certs")
    }

    /// What the emulator wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit.
    fn sigterm(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        self.child.wait().expect("wait")
    }

    /// Sends SIGTERM; returns the exit status and stderr.
    pub fn terminate_for_stderr(mut self) -> (std::process::ExitStatus, String) {
        let exit = self.sigterm();
        (exit, self.stderr())
    }

    /// Sends SIGTERM; returns the exit status and the log as it was left.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        let exit = self.sigterm();
        (exit, self.log_lines())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// `sig = base64(HMAC-SHA256(base64decode(key), sr + "\n" + se))` over the encoded `sr`.
pub fn sas_token(scope: &str, reg: &str, key: &str, expiry: u64, upper_hex: bool) -> String {
    let slash = if upper_hex { "%2F" } else { "%2f" };
    let sr = format!("{scope}{slash}registrations{slash}{reg}");
    let mut mac = Hmac::<Sha256>::new_from_slice(&STANDARD.decode(key).expect("key")).expect("mac");
    mac.update(format!("{sr}\n{expiry}").as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let sig = sig
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("SharedAccessSignature sr={sr}&sig={sig}&se={expiry}&skn=registration")
}

pub fn derive_key(group_key: &str, reg: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&STANDARD.decode(group_key).expect("key")).expect("mac");
    mac.update(reg.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

pub fn username(scope: &str, reg: &str) -> String {
    format!("{scope}/registrations/{reg}/api-version=2019-03-31&ClientVersion=raw-test%2F1.0")
}

/// What the server sent, owned.
#[derive(Debug, PartialEq)]
pub enum Rx {
    Connack(u8),
    Suback(Vec<Option<u8>>),
    Unsuback,
    Publish {
        topic: String,
        payload: Vec<u8>,
        pid: Option<u16>,
    },
    Puback(u16),
    Pingresp,
    Closed,
}

impl Rx {
    /// A DPS response: status, the topic's query parameters, the JSON body.
    pub fn response(&self) -> (u16, Vec<(String, String)>, Value) {
        let Rx::Publish { topic, payload, .. } = self else {
            panic!("expected a PUBLISH, got {self:?}");
        };
        let rest = topic
            .strip_prefix("$dps/registrations/res/")
            .expect("response topic");
        let (status, query) = rest.split_once("/?").expect("status/?query");
        let params = query
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').expect("k=v");
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let body = serde_json::from_slice(payload).expect("JSON body");
        (status.parse().expect("status"), params, body)
    }
}

pub fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

enum Stream {
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Ws(Box<WebSocket<StreamOwned<ClientConnection, TcpStream>>>),
}

pub struct Client {
    stream: Stream,
    buf: Vec<u8>,
    next_pid: u16,
}

pub struct TlsOptions<'a> {
    pub client_cert: Option<(&'a Path, &'a Path)>,
    pub versions: &'a [&'static rustls::SupportedProtocolVersion],
}

impl Default for TlsOptions<'_> {
    fn default() -> Self {
        TlsOptions {
            client_cert: None,
            versions: rustls::ALL_VERSIONS,
        }
    }
}

pub fn tls_config(ca: &Path, opts: &TlsOptions<'_>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(c.expect("CA cert")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(opts.versions)
        .expect("versions")
        .with_root_certificates(roots);
    let config = match opts.client_cert {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("cert file")
                .collect::<Result<Vec<_>, _>>()
                .expect("certs");
            let key = PrivateKeyDer::from_pem_file(key).expect("key file");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client cert")
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

fn tls_stream(
    port: u16,
    config: Arc<ClientConfig>,
) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(READ_TIMEOUT))?;
    tcp.set_write_timeout(Some(READ_TIMEOUT))?;
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    // Complete the handshake now so TLS failures show up here.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

impl Client {
    pub fn tls(emu: &Emulator) -> Client {
        Client::tls_with(emu, &TlsOptions::default()).expect("TLS connect")
    }

    pub fn tls_with(emu: &Emulator, opts: &TlsOptions<'_>) -> std::io::Result<Client> {
        Client::tls_with_config(emu, tls_config(&emu.ca, opts))
    }

    pub fn tls_with_config(emu: &Emulator, config: Arc<ClientConfig>) -> std::io::Result<Client> {
        let stream = tls_stream(emu.port, config)?;
        Ok(Client {
            stream: Stream::Tls(Box::new(stream)),
            buf: Vec::new(),
            next_pid: 1,
        })
    }

    /// Errors as text: tungstenite's error type is large.
    pub fn websocket(emu: &Emulator, path: &str) -> Result<Client, String> {
        let port = emu.ws_port.expect("started with --ws-port");
        let stream = tls_stream(port, tls_config(&emu.ca, &TlsOptions::default()))
            .map_err(|e| e.to_string())?;
        let mut request = format!("wss://localhost:{port}{path}")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
        let (ws, response) = tungstenite::client(request, stream).map_err(|e| e.to_string())?;
        assert_eq!(
            response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .map(|v| v.as_bytes()),
            Some(&b"mqtt"[..])
        );
        Ok(Client {
            stream: Stream::Ws(Box::new(ws)),
            buf: Vec::new(),
            next_pid: 1,
        })
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()
            }
            Stream::Ws(ws) => ws
                .send(Message::Binary(bytes.to_vec().into()))
                .map_err(std::io::Error::other),
        }
    }

    pub fn send(&mut self, packet: &Packet<'_>) {
        let mut buf = vec![0u8; 200_000];
        let n = encode_slice(packet, &mut buf).expect("encode");
        self.write_raw(&buf[..n]).expect("write");
    }

    fn pid(&mut self) -> Pid {
        let pid = Pid::try_from(self.next_pid).expect("pid");
        self.next_pid += 1;
        pid
    }

    /// Reads more bytes; false when the server closed the connection (or reset it).
    fn fill(&mut self) -> bool {
        match &mut self.stream {
            Stream::Tls(s) => {
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk) {
                    Ok(0) => false,
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        true
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        panic!("no answer from the emulator within {READ_TIMEOUT:?}")
                    }
                    Err(_) => false,
                }
            }
            Stream::Ws(ws) => loop {
                match ws.read() {
                    Ok(Message::Binary(data)) => {
                        self.buf.extend_from_slice(&data);
                        return true;
                    }
                    Ok(Message::Close(_)) => return false,
                    Ok(_) => continue,
                    Err(tungstenite::Error::Io(e))
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        panic!("no answer from the emulator within {READ_TIMEOUT:?}")
                    }
                    Err(_) => return false,
                }
            },
        }
    }

    pub fn recv(&mut self) -> Rx {
        loop {
            if let Some(rx) = self.take_packet() {
                return rx;
            }
            if !self.fill() {
                assert!(self.buf.is_empty(), "partial packet before close");
                return Rx::Closed;
            }
        }
    }

    fn take_packet(&mut self) -> Option<Rx> {
        let packet = decode_slice(&self.buf).expect("server sent a valid packet")?;
        let rx = match packet {
            Packet::Connack(c) => Rx::Connack(c.code as u8),
            Packet::Suback(s) => Rx::Suback(
                s.return_codes
                    .iter()
                    .map(|c| match c {
                        SubscribeReturnCodes::Success(q) => Some(match q {
                            QoS::AtMostOnce => 0,
                            QoS::AtLeastOnce => 1,
                            QoS::ExactlyOnce => 2,
                        }),
                        SubscribeReturnCodes::Failure => None,
                    })
                    .collect(),
            ),
            Packet::Unsuback(_) => Rx::Unsuback,
            Packet::Publish(p) => Rx::Publish {
                topic: p.topic_name.to_owned(),
                payload: p.payload.to_vec(),
                pid: match p.qospid {
                    QosPid::AtMostOnce => None,
                    QosPid::AtLeastOnce(pid) | QosPid::ExactlyOnce(pid) => Some(pid.get()),
                },
            },
            Packet::Puback(pid) => Rx::Puback(pid.get()),
            Packet::Pingresp => Rx::Pingresp,
            other => panic!("server sent {other:?}"),
        };
        let len = frame_len(&self.buf).expect("complete frame");
        self.buf.drain(..len);
        Some(rx)
    }

    pub fn connect_raw(&mut self, client_id: &str, username: Option<&str>, password: Option<&str>) {
        self.connect_with(60, true, client_id, username, password);
    }

    pub fn connect_with(
        &mut self,
        keep_alive: u16,
        clean_session: bool,
        client_id: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) {
        self.send(&Packet::Connect(Connect {
            protocol: Protocol::MQTT311,
            keep_alive,
            client_id,
            clean_session,
            last_will: None,
            username,
            password: password.map(str::as_bytes),
        }));
    }

    /// The key algorithm OID of the server's certificate (leaf).
    pub fn server_key_oid(&self) -> String {
        let Stream::Tls(s) = &self.stream else {
            panic!("TLS clients only");
        };
        let leaf = s
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("server certificate");
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).expect("parse");
        cert.public_key().algorithm.algorithm.to_id_string()
    }

    /// Sets the read timeout of a TLS client (the default is `READ_TIMEOUT`).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        let Stream::Tls(s) = &mut self.stream else {
            panic!("TLS clients only");
        };
        s.sock.set_read_timeout(Some(timeout)).expect("timeout");
    }

    /// Reads once: `Some(false)` when the server closed, `None` on a timeout, `Some(true)` when
    /// bytes arrived.
    pub fn read_once(&mut self) -> Option<bool> {
        let Stream::Tls(s) = &mut self.stream else {
            panic!("TLS clients only");
        };
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => Some(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(true)
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                None
            }
            Err(_) => Some(false),
        }
    }

    /// Publishes at QoS 0 (no PUBACK).
    pub fn publish_qos0(&mut self, topic: &str, body: &[u8]) {
        self.send(&Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtMostOnce,
            retain: false,
            topic_name: topic,
            payload: body,
        }));
    }

    /// Reads a response at whatever QoS it comes (acknowledging QoS 1); returns its QoS too.
    pub fn response_any(&mut self) -> (u8, u16, Vec<(String, String)>, Value) {
        let rx = self.recv();
        let Rx::Publish { pid, .. } = &rx else {
            panic!("expected a response, got {rx:?}");
        };
        let qos = match pid {
            Some(pid) => {
                self.send(&Packet::Puback(Pid::try_from(*pid).expect("pid")));
                1
            }
            None => 0,
        };
        let (status, params, body) = rx.response();
        (qos, status, params, body)
    }

    /// CONNECT with a SAS token for `reg` signed with `key`; returns the CONNACK code.
    pub fn connect_sas(&mut self, reg: &str, key: &str) -> u8 {
        let token = sas_token(SCOPE, reg, key, now() + 3600, false);
        self.connect_raw(reg, Some(&username(SCOPE, reg)), Some(&token));
        self.connack()
    }

    pub fn connack(&mut self) -> u8 {
        match self.recv() {
            Rx::Connack(code) => code,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub fn subscribe_with(&mut self, topics: &[(&str, QoS)]) -> Vec<Option<u8>> {
        let pid = self.pid();
        let topics = topics
            .iter()
            .map(|(t, q)| SubscribeTopic {
                topic_path: (*t).to_owned(),
                qos: *q,
            })
            .collect();
        self.send(&Packet::Subscribe(Subscribe { pid, topics }));
        match self.recv() {
            Rx::Suback(codes) => codes,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub fn subscribe(&mut self) {
        let codes = self.subscribe_with(&[("$dps/registrations/res/#", QoS::AtLeastOnce)]);
        assert_eq!(codes, vec![Some(1)]);
    }

    /// Publishes at QoS 1 and reads the PUBACK.
    pub fn publish(&mut self, topic: &str, body: &[u8]) {
        let pid = self.pid();
        self.send(&Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(pid),
            retain: false,
            topic_name: topic,
            payload: body,
        }));
        assert_eq!(self.recv(), Rx::Puback(pid.get()));
    }

    /// Reads a response PUBLISH (QoS 1) and acknowledges it.
    pub fn response(&mut self) -> (u16, Vec<(String, String)>, Value) {
        let rx = self.recv();
        let Rx::Publish { pid, .. } = &rx else {
            panic!("expected a response, got {rx:?}");
        };
        let pid = pid.expect("responses are QoS 1");
        self.send(&Packet::Puback(Pid::try_from(pid).expect("pid")));
        rx.response()
    }

    pub fn register(&mut self, rid: &str, body: &Value) -> (u16, Vec<(String, String)>, Value) {
        let topic = format!("$dps/registrations/PUT/iotdps-register/?$rid={rid}");
        self.publish(&topic, body.to_string().as_bytes());
        self.response()
    }

    pub fn poll(&mut self, rid: &str, operation_id: &str) -> (u16, Vec<(String, String)>, Value) {
        let topic = format!(
            "$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={operation_id}"
        );
        self.publish(&topic, b"");
        self.response()
    }

    pub fn ping(&mut self) {
        self.send(&Packet::Pingreq);
        assert_eq!(self.recv(), Rx::Pingresp);
    }

    /// The full flow after CONNACK: subscribe, register, poll until not 202. Returns the final
    /// response.
    pub fn provision(&mut self, reg: &str, payload: Option<Value>) -> (u16, Value) {
        self.subscribe();
        let mut body = serde_json::json!({ "registrationId": reg });
        if let Some(p) = payload {
            body["payload"] = p;
        }
        let (status, _, resp) = self.register("1", &body);
        assert_eq!(status, 202, "{resp}");
        let op = resp["operationId"]
            .as_str()
            .expect("operationId")
            .to_owned();
        for i in 2..20 {
            let (status, _, resp) = self.poll(&i.to_string(), &op);
            if status != 202 {
                return (status, resp);
            }
        }
        panic!("still assigning after 18 polls");
    }
}

/// Total length of the MQTT packet at the start of `buf`.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let b = *buf.get(1 + i)?;
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(2 + i + remaining);
        }
    }
    None
}
