//! A hostile MQTT-over-TLS server for integration tests: one loopback listener and one thread
//! per test, a rustls server with certificates made by rcgen, and a script that decides what
//! the server sends. The library under test connects through its public API like firmware
//! would; the script sees the client's packets and answers with whatever bytes it likes.
//!
//! Every blocking call on the server side is bounded by a socket timeout, so a test whose
//! client misbehaves fails instead of hanging.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// The host name the client dials; the trusted leaf certificate is issued for it.
pub const HOST: &str = "localhost";
/// Upper bound for any single blocking socket call on the server side.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A certificate authority made for one server.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2090, 1, 1);
        let cert = params.self_signed(&key).expect("self-signed CA");
        Ca { cert, key }
    }

    pub fn pem(&self) -> Vec<u8> {
        self.cert.pem().into_bytes()
    }

    /// A server leaf for `name`, valid between the two years (January 1st of each).
    pub fn issue(
        &self,
        name: &str,
        from_year: i32,
        to_year: i32,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = date_time_ymd(from_year, 1, 1);
        params.not_after = date_time_ymd(to_year, 1, 1);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed leaf");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    }
}

/// Which certificate the server presents. The client always trusts one test CA (`ca_pem`).
#[derive(Clone, Copy, Debug)]
pub enum ServerCert {
    /// Issued by the trusted CA for [`HOST`], valid 2020-2090.
    Trusted,
    /// Issued by the trusted CA, for another host name.
    OtherHost,
    /// Issued for [`HOST`] by a CA the client does not know.
    UntrustedCa,
    /// Issued by the trusted CA for [`HOST`], valid only in 2000.
    Expired,
}

fn server_config(ca: &Ca, cert: ServerCert) -> Arc<ServerConfig> {
    let other_ca;
    let (leaf, key) = match cert {
        ServerCert::Trusted => ca.issue(HOST, 2020, 2090),
        ServerCert::OtherHost => ca.issue("other-host.example", 2020, 2090),
        ServerCert::UntrustedCa => {
            other_ca = Ca::new("someone else's CA");
            other_ca.issue(HOST, 2020, 2090)
        }
        ServerCert::Expired => ca.issue(HOST, 2000, 2001),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf], key)
        .expect("server certificate");
    Arc::new(config)
}

/// A running hostile server: its port, the CA the client should trust, and the thread that
/// runs the script for the first connection.
pub struct HostileServer<T> {
    pub port: u16,
    pub ca_pem: Vec<u8>,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> HostileServer<T> {
    /// A TLS server presenting `cert`; `script` runs on the first accepted connection.
    pub fn tls(cert: ServerCert, script: impl FnOnce(&mut Peer) -> T + Send + 'static) -> Self {
        let ca = Ca::new("dps-mqtt hostile test CA");
        let config = server_config(&ca, cert);
        Self::raw_with_ca(ca.pem(), move |tcp| {
            let conn = ServerConnection::new(config).expect("server connection");
            let mut peer = Peer {
                tls: StreamOwned::new(conn, tcp),
                inbound: Vec::new(),
                written: 0,
                next_pid: 1,
            };
            script(&mut peer)
        })
    }

    /// A server that gets the raw TCP stream (no TLS): for silence and hand-built records.
    pub fn raw(script: impl FnOnce(TcpStream) -> T + Send + 'static) -> Self {
        let ca = Ca::new("dps-mqtt hostile test CA");
        Self::raw_with_ca(ca.pem(), script)
    }

    fn raw_with_ca(ca_pem: Vec<u8>, script: impl FnOnce(TcpStream) -> T + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let thread = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().expect("accept");
            tcp.set_read_timeout(Some(IO_TIMEOUT))
                .expect("read timeout");
            tcp.set_write_timeout(Some(IO_TIMEOUT))
                .expect("write timeout");
            script(tcp)
        });
        HostileServer {
            port,
            ca_pem,
            thread: Some(thread),
        }
    }

    /// Waits for the script to end (the client closing the connection ends every script) and
    /// returns what it returned. Call it only after the client has connected.
    pub fn join(mut self) -> T {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("the hostile server's script panicked")
    }
}

/// One MQTT packet the client sent.
#[derive(Debug)]
pub struct ClientPacket {
    pub first: u8,
    pub body: Vec<u8>,
}

impl ClientPacket {
    pub fn kind(&self) -> u8 {
        self.first >> 4
    }

    /// The topic of a PUBLISH.
    pub fn topic(&self) -> Option<String> {
        if self.kind() != 3 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([
            *self.body.first()?,
            *self.body.get(1)?,
        ]));
        let topic = self.body.get(2..2 + len)?;
        String::from_utf8(topic.to_vec()).ok()
    }

    /// The packet id of a SUBSCRIBE.
    pub fn subscribe_pid(&self) -> Option<u16> {
        (self.kind() == 8).then(|| u16::from_be_bytes([self.body[0], self.body[1]]))
    }
}

/// The `$rid` of a request topic.
pub fn rid_of(topic: &str) -> Option<String> {
    let query = topic.split_once("/?")?.1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("$rid="))
        .map(str::to_owned)
}

/// An MQTT packet with this first byte and body (remaining length encoded as MQTT does).
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A PUBLISH of `body` to `topic` (raw bytes: may be invalid UTF-8), QoS 1 when `pid` is set.
pub fn publish(topic: &[u8], body: &[u8], pid: Option<u16>) -> Vec<u8> {
    let mut v = Vec::with_capacity(topic.len() + body.len() + 4);
    v.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    v.extend_from_slice(topic);
    let first = match pid {
        Some(p) => {
            v.extend_from_slice(&p.to_be_bytes());
            0x32
        }
        None => 0x30,
    };
    v.extend_from_slice(body);
    packet(first, &v)
}

pub const CONNACK_OK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// The server's side of one TLS connection.
pub struct Peer {
    tls: StreamOwned<ServerConnection, TcpStream>,
    inbound: Vec<u8>,
    /// Application bytes the script managed to write.
    pub written: u64,
    next_pid: u16,
}

impl Peer {
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match self.tls.read(&mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.inbound.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    /// The next complete packet from the client; `None` once it closed (or TLS failed).
    pub fn read_packet(&mut self) -> Option<ClientPacket> {
        loop {
            if let Some((header_len, body_len)) = decode_header(&self.inbound) {
                if self.inbound.len() >= header_len + body_len {
                    let first = self.inbound[0];
                    let body = self.inbound[header_len..header_len + body_len].to_vec();
                    self.inbound.drain(..header_len + body_len);
                    return Some(ClientPacket { first, body });
                }
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// The topic of the client's next PUBLISH, skipping PUBACK and PINGREQ; `None` at the end.
    pub fn next_request(&mut self) -> Option<String> {
        loop {
            let p = self.read_packet()?;
            match p.kind() {
                3 => return p.topic(),
                14 => return None,
                _ => {}
            }
        }
    }

    /// Reads the client's first flight (CONNECT, SUBSCRIBE, register PUBLISH) without
    /// answering. Returns the SUBSCRIBE's packet id and the register request's `$rid`.
    pub fn read_flight(&mut self) -> Option<(u16, String)> {
        let connect = self.read_packet()?;
        assert_eq!(connect.kind(), 1, "the client starts with CONNECT");
        let subscribe = self.read_packet()?;
        let pid = subscribe.subscribe_pid().expect("then SUBSCRIBE");
        let topic = self.next_request()?;
        assert!(topic.contains("iotdps-register"), "then register: {topic}");
        Some((pid, rid_of(&topic).expect("register $rid")))
    }

    /// Reads the first flight and accepts it (CONNACK 0, SUBACK QoS 1). Returns the register
    /// request's `$rid`.
    pub fn accept(&mut self) -> Option<String> {
        let (pid, rid) = self.read_flight()?;
        self.write(&CONNACK_OK);
        self.write(&suback(pid));
        Some(rid)
    }

    /// Writes bytes; false once the client is gone.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        let ok = self.tls.write_all(bytes).and_then(|()| self.tls.flush());
        if ok.is_ok() {
            self.written += bytes.len() as u64;
        }
        ok.is_ok()
    }

    /// Sends a response PUBLISH at QoS 1 on `$dps/registrations/res/{status}/?{query}`.
    pub fn respond(&mut self, status: &str, query: &str, body: &[u8]) -> bool {
        let topic = format!("$dps/registrations/res/{status}/?{query}");
        let pid = self.next_pid;
        self.next_pid = self.next_pid.wrapping_add(1).max(1);
        self.write(&publish(topic.as_bytes(), body, Some(pid)))
    }

    /// Reads until the client closes the connection; returns the number of packets it sent.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.read_packet().is_some() {
            n += 1;
        }
        n
    }
}

pub fn suback(pid: u16) -> Vec<u8> {
    let [hi, lo] = pid.to_be_bytes();
    packet(0x90, &[hi, lo, 0x01])
}

fn decode_header(buf: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0usize;
    for i in 0..4 {
        let byte = *buf.get(1 + i)?;
        len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((2 + i, len));
        }
    }
    None
}
