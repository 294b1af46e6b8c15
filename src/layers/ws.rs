//! MQTT over WebSocket (RFC 6455), client side, sans-IO: bytes in, bytes out.
//!
//! DPS serves MQTT on port 443 at `/$iothub/websocket` with the subprotocol `mqtt`. This layer
//! sits between TLS and MQTT: it writes the HTTP/1.1 upgrade request, checks the server's 101
//! answer (status, `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, subprotocol), then wraps
//! every MQTT write in one masked binary frame and unwraps the server's frames back into the
//! MQTT byte stream. MQTT is a byte stream, so message boundaries carry no meaning here: the
//! payload of each binary or continuation frame is passed on as it arrives, without waiting
//! for the frame or the message to end, and only a frame header (at most 14 bytes) or a control
//! frame (at most 125 bytes of payload) is ever buffered.
//!
//! Written here rather than taken from a crate: the client side of RFC 6455 that MQTT needs is a
//! few hundred lines, and the crates that do it either want a `Read + Write` stream (tungstenite,
//! which also brings `http`, `rand`, `bytes`, `thiserror`, `utf-8` and `data-encoding`) or leave
//! validation, control frames and the handshake to the caller (websocket-sans-io). The handshake
//! response is parsed with `httparse` (also used for the proxy's answer), the accept key hashed
//! with `sha1`, and masking keys come from the configured entropy source (`crate::platform::entropy`), none of
//! which depends on the `tls` feature.

use crate::platform::entropy::Entropy;
use crate::prelude::*;
use base64::Engine as _;
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::settings::EndpointHost;

/// The path DPS and IoT Hub serve MQTT over WebSocket on.
pub const PATH: &str = "/$iothub/websocket";
/// The port DPS serves WebSocket (over TLS) on.
pub(crate) const DEFAULT_PORT: u16 = 443;
/// Largest server handshake response accepted (status line and headers).
pub(crate) const MAX_RESPONSE_HEAD: usize = 8 * 1024;
/// RFC 6455 section 1.3: appended to the key before hashing.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEADERS: usize = 32;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;

fn handshake_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::ProtocolWebsocketHandshake, detail)
}

fn frame_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::ProtocolWebsocket, detail)
}

/// The `Sec-WebSocket-Accept` value a server must answer to `key`.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

enum State {
    /// Upgrade request written; collecting the response head.
    Handshake {
        key: String,
        head: Vec<u8>,
    },
    Open,
    /// A close frame was sent or received, or an error happened: nothing more is accepted.
    Closed,
}

/// The frame being received.
enum Inbound {
    /// Collecting a frame header.
    Header,
    /// Passing on this many more payload bytes of a data frame.
    Data { remaining: u64 },
    /// Collecting a control frame's payload (at most 125 bytes).
    Control { opcode: u8, len: usize },
}

/// One WebSocket connection's client framing.
pub struct WsClient {
    state: State,
    inbound: Inbound,
    /// Received bytes not yet parsed: a partial header or control frame.
    partial: Vec<u8>,
    /// Whether a fragmented data message is in progress (continuations are allowed).
    in_message: bool,
    /// MQTT bytes decoded so far.
    plaintext: Vec<u8>,
    /// MQTT bytes written before the handshake finished (RFC 6455 4.1: the client waits for
    /// the server's answer before sending frames). Zeroizing: CONNECT carries the SAS token.
    held: Zeroizing<Vec<u8>>,
    /// Bytes for the layer below (handshake request, frames).
    output: Zeroizing<Vec<u8>>,
    max_frame: u64,
    random: Entropy,
    error: Option<Error>,
}

impl WsClient {
    /// Starts a connection: the upgrade request for `host` (and `port`, named in the `Host`
    /// header unless it is 443) is queued at once. Server data frames over `max_frame` payload
    /// bytes are refused with `ErrorKind::ProtocolPacketTooLarge`; pass the MQTT packet limit.
    pub fn new(
        host: &EndpointHost,
        port: u16,
        max_frame: usize,
        random: Entropy,
    ) -> Result<WsClient> {
        let mut nonce = [0u8; 16];
        random.fill(&mut nonce)?;
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        let authority = if port == DEFAULT_PORT {
            crate::layers::proxy::http_host(host)
        } else {
            crate::layers::proxy::authority(host, port)
        };
        let request = format!(
            "GET {PATH} HTTP/1.1\r\n\
             Host: {authority}\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: mqtt\r\n\
             \r\n"
        );
        Ok(WsClient {
            state: State::Handshake {
                key,
                head: Vec::new(),
            },
            inbound: Inbound::Header,
            partial: Vec::new(),
            in_message: false,
            plaintext: Vec::new(),
            held: Zeroizing::new(Vec::new()),
            output: Zeroizing::new(request.into_bytes()),
            max_frame: max_frame as u64,
            random,
            error: None,
        })
    }

    /// Whether the server accepted the upgrade.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// Queues MQTT bytes: one binary frame, or held until the handshake completes.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.state {
            State::Handshake { .. } => {
                crate::layers::wipe::extend(&mut self.held, data);
                Ok(())
            }
            State::Open => self.frame(OP_BINARY, data),
            State::Closed => Err(Error::new(
                ErrorKind::TransportClosed,
                "write after the WebSocket was closed",
            )),
        }
    }

    /// Feeds bytes from the layer below. After an error the connection is dead and the same
    /// error comes back.
    pub fn read(&mut self, data: &[u8]) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.read_inner(data);
        if let Err(e) = &result {
            self.error = Some(e.clone());
            self.state = State::Closed;
        }
        result
    }

    /// MQTT bytes decoded so far; empties the buffer.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.plaintext)
    }

    /// Bytes for the layer below; empties the buffer.
    pub fn take_output(&mut self) -> Zeroizing<Vec<u8>> {
        core::mem::take(&mut self.output)
    }

    /// Starts the closing handshake (status 1000, normal closure) if the connection is open.
    pub fn close(&mut self) {
        if self.is_open() && self.frame(OP_CLOSE, &1000u16.to_be_bytes()).is_ok() {
            self.state = State::Closed;
        }
    }

    fn read_inner(&mut self, mut data: &[u8]) -> Result<()> {
        if let State::Handshake { .. } = self.state {
            let used = self.handshake(data)?;
            data = data.get(used..).unwrap_or_default();
        }
        while !data.is_empty() && self.is_open() {
            let used = self.frames(data)?;
            data = data.get(used..).unwrap_or_default();
        }
        Ok(())
    }

    /// Consumes response-head bytes; returns how many of `data` belonged to the head.
    fn handshake(&mut self, data: &[u8]) -> Result<usize> {
        let State::Handshake { key, head } = &mut self.state else {
            return Ok(0);
        };
        let before = head.len();
        // The head never grows past its limit (only `room` bytes are taken): no saturation.
        let room = MAX_RESPONSE_HEAD.saturating_sub(before);
        head.extend_from_slice(data.get(..data.len().min(room)).unwrap_or_default());
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(head) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if head.len() >= MAX_RESPONSE_HEAD => {
                return Err(handshake_error(format!(
                    "upgrade response head longer than {MAX_RESPONSE_HEAD} bytes"
                )))
            }
            Ok(httparse::Status::Partial) => return Ok(data.len()),
            Err(e) => {
                return Err(handshake_error(format!(
                    "upgrade response is not HTTP: {e}"
                )))
            }
        };
        check_upgrade(&response, key)?;
        // The head was incomplete in its first `before` bytes (the last call said so), so it
        // ends inside `data`: no saturation.
        let used = head_len.saturating_sub(before);
        self.state = State::Open;
        let held = core::mem::take(&mut self.held);
        if !held.is_empty() {
            self.frame(OP_BINARY, &held)?;
        }
        Ok(used)
    }

    /// Consumes frame bytes; returns how many of `data` were used (at least one).
    fn frames(&mut self, data: &[u8]) -> Result<usize> {
        match self.inbound {
            Inbound::Header => {
                let before = self.partial.len();
                // A header is at most 14 bytes; take what may belong to it, then give back the
                // bytes past its end.
                // `partial` holds less than a whole header here: no saturation.
                let take = data.len().min(14usize.saturating_sub(before));
                self.partial
                    .extend_from_slice(data.get(..take).unwrap_or_default());
                match self.parse_header()? {
                    None => Ok(take),
                    Some(header_len) => {
                        self.partial.clear();
                        // The header was incomplete in its first `before` bytes (the last
                        // call said so), so it ends inside `data`: no saturation.
                        Ok(header_len.saturating_sub(before))
                    }
                }
            }
            Inbound::Data { remaining } => {
                let n = data
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                self.plaintext
                    .extend_from_slice(data.get(..n).unwrap_or_default());
                // `n` is at most `remaining`: no saturation.
                let remaining = remaining.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
                self.inbound = if remaining == 0 {
                    Inbound::Header
                } else {
                    Inbound::Data { remaining }
                };
                Ok(n)
            }
            Inbound::Control { opcode, len } => {
                // `partial` holds less than the control payload here: no saturation.
                let n = data.len().min(len.saturating_sub(self.partial.len()));
                self.partial
                    .extend_from_slice(data.get(..n).unwrap_or_default());
                if self.partial.len() == len {
                    let payload = core::mem::take(&mut self.partial);
                    self.inbound = Inbound::Header;
                    self.control(opcode, &payload)?;
                }
                Ok(n)
            }
        }
    }

    /// Parses the header in `partial`: `None` when incomplete, else its length (and the
    /// next state is set).
    fn parse_header(&mut self) -> Result<Option<usize>> {
        let p = &self.partial;
        let (Some(&b0), Some(&b1)) = (p.first(), p.get(1)) else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        if b0 & 0x70 != 0 {
            return Err(frame_error(
                "reserved bits set in a frame (no extension was negotiated)",
            ));
        }
        if b1 & 0x80 != 0 {
            return Err(frame_error("the server masked a frame"));
        }
        let (len, header_len) = match b1 & 0x7f {
            126 => match (p.get(2), p.get(3)) {
                (Some(&a), Some(&b)) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(None),
            },
            127 => match p
                .get(2..10)
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            {
                Some(be) => {
                    let len = u64::from_be_bytes(be);
                    if len >> 63 != 0 {
                        return Err(frame_error("frame length with the top bit set"));
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        match opcode {
            OP_CONTINUATION | OP_BINARY => {
                if opcode == OP_CONTINUATION && !self.in_message {
                    return Err(frame_error("continuation frame outside a message"));
                }
                if opcode == OP_BINARY && self.in_message {
                    return Err(frame_error("new message inside a fragmented one"));
                }
                if len > self.max_frame {
                    return Err(Error::new(
                        ErrorKind::ProtocolPacketTooLarge,
                        format!(
                            "WebSocket frame of {len} bytes over the {}-byte limit",
                            self.max_frame
                        ),
                    ));
                }
                self.in_message = !fin;
                self.inbound = if len == 0 {
                    Inbound::Header
                } else {
                    Inbound::Data { remaining: len }
                };
            }
            OP_TEXT => return Err(frame_error("text frame on an MQTT WebSocket")),
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(frame_error("fragmented control frame"));
                }
                if len > 125 {
                    return Err(frame_error("control frame longer than 125 bytes"));
                }
                let len = len as usize;
                self.inbound = Inbound::Control { opcode, len };
                if len == 0 {
                    self.inbound = Inbound::Header;
                    self.control(opcode, &[])?;
                }
            }
            other => return Err(frame_error(format!("unknown opcode {other:#x}"))),
        }
        Ok(Some(header_len))
    }

    fn control(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        match opcode {
            OP_PING => self.frame(OP_PONG, payload),
            OP_CLOSE => {
                let detail = match payload {
                    [] => "the server closed the WebSocket (no status code)".to_owned(),
                    [_] => return Err(frame_error("close frame with a 1-byte payload")),
                    [a, b, reason @ ..] => format!(
                        "the server closed the WebSocket (status {}{})",
                        u16::from_be_bytes([*a, *b]),
                        match core::str::from_utf8(reason) {
                            Ok("") | Err(_) => String::new(),
                            Ok(r) => format!(": {}", crate::dps::protocol::clip(r)),
                        }
                    ),
                };
                // Answer with a close frame echoing the status (RFC 6455 5.5.1); the error then
                // ends the connection.
                let echo = payload.get(..2).unwrap_or_default().to_vec();
                let _ = self.frame(OP_CLOSE, &echo);
                self.state = State::Closed;
                Err(Error::new(ErrorKind::TransportClosed, detail))
            }
            _ => Ok(()),
        }
    }

    /// Appends one final, masked frame to the output.
    fn frame(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        let mut mask = [0u8; 4];
        self.random.fill(&mut mask)?;
        // Grown here, before the pushes, so a reallocation never frees an unwiped copy.
        // A frame header is at most 14 bytes; the payload is in memory, so the sum fits.
        crate::layers::wipe::reserve(&mut self.output, payload.len().saturating_add(14));
        let out = &mut self.output;
        out.push(0x80 | opcode);
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(
            payload
                .iter()
                .zip(mask.iter().cycle())
                .map(|(byte, key)| byte ^ key),
        );
        Ok(())
    }
}

/// Checks a complete upgrade response against RFC 6455 4.1 and the subprotocol we asked for.
fn check_upgrade(response: &httparse::Response<'_, '_>, key: &str) -> Result<()> {
    let code = response.code.unwrap_or(0);
    if code != 101 {
        return Err(handshake_error(format!(
            "the server answered the upgrade with {code} {}",
            crate::dps::protocol::clip(response.reason.unwrap_or(""))
        )));
    }
    let header = |name: &str| -> Option<&str> {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| core::str::from_utf8(h.value).unwrap_or("").trim())
    };
    if !header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(handshake_error("101 without Upgrade: websocket"));
    }
    let connection_upgrade = header("Connection").is_some_and(|v| {
        v.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !connection_upgrade {
        return Err(handshake_error("101 without Connection: Upgrade"));
    }
    if header("Sec-WebSocket-Accept") != Some(accept_key(key).as_str()) {
        return Err(handshake_error(
            "Sec-WebSocket-Accept does not match the key sent",
        ));
    }
    if header("Sec-WebSocket-Protocol") != Some("mqtt") {
        return Err(handshake_error(
            "the server did not select the subprotocol mqtt",
        ));
    }
    if header("Sec-WebSocket-Extensions").is_some() {
        return Err(handshake_error(
            "the server selected an extension that was not offered",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests_support {
    use super::*;
    pub use alloc::sync::Arc;

    pub const MAX: usize = 1024;

    /// Distinct bytes on every call: a deterministic stand-in for the firmware's source.
    pub fn counter_random(buf: &mut [u8]) -> Result<()> {
        use core::sync::atomic::{AtomicU8, Ordering};
        static NEXT: AtomicU8 = AtomicU8::new(1);
        for b in buf {
            *b = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A client whose upgrade request was written; returns it with the request text.
    pub fn client() -> (WsClient, String) {
        let mut c = WsClient::new(
            &"dps.example".parse().unwrap(),
            443,
            MAX,
            Arc::new(counter_random),
        )
        .unwrap();
        let request = String::from_utf8(c.take_output().to_vec()).unwrap();
        (c, request)
    }

    pub fn request_key(request: &str) -> String {
        request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .to_owned()
    }

    pub fn response_for(request: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
            accept_key(&request_key(request))
        )
    }

    pub fn open_client() -> WsClient {
        let (mut c, request) = client();
        c.read(response_for(&request).as_bytes()).unwrap();
        assert!(c.is_open());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    /// An unmasked server frame.
    fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n @ 126..=0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// Decodes the client's frames: (first byte, unmasked payload) each; checks every frame is
    /// masked.
    fn client_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let first = bytes[0];
            assert_eq!(bytes[1] & 0x80, 0x80, "client frame not masked");
            let (len, mut at) = match bytes[1] & 0x7f {
                126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            let mask: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            at += 4;
            let payload = bytes[at..at + len]
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, k)| b ^ k)
                .collect();
            frames.push((first, payload));
            bytes = &bytes[at + len..];
        }
        frames
    }

    #[test]
    fn upgrade_request_names_path_host_version_and_subprotocol() {
        let (_, request) = client();
        assert!(request.starts_with("GET /$iothub/websocket HTTP/1.1\r\n"));
        assert!(request.contains("\r\nHost: dps.example\r\n"));
        assert!(request.contains("\r\nUpgrade: websocket\r\n"));
        assert!(request.contains("\r\nConnection: Upgrade\r\n"));
        assert!(request.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(request.contains("\r\nSec-WebSocket-Protocol: mqtt\r\n"));
        assert!(request.ends_with("\r\n\r\n"));
        let key = base64::engine::general_purpose::STANDARD
            .decode(request_key(&request))
            .unwrap();
        assert_eq!(key.len(), 16);
        let other =
            WsClient::new(&"h".parse().unwrap(), 8443, MAX, Arc::new(counter_random)).unwrap();
        let text = String::from_utf8(other.output.to_vec()).unwrap();
        assert!(text.contains("\r\nHost: h:8443\r\n"));
        assert_ne!(request_key(&text), request_key(&request));
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn writes_wait_for_the_upgrade_then_leave_as_masked_binary_frames() {
        let (mut c, request) = client();
        c.write(b"CONNECT").unwrap();
        c.write(b"SUBSCRIBE").unwrap();
        assert!(c.take_output().is_empty(), "nothing before the 101");
        // The response arrives one byte at a time, with a server frame right behind it.
        let mut input = response_for(&request).into_bytes();
        input.extend(server_frame(0x82, b"CONNACK"));
        for b in &input {
            c.read(core::slice::from_ref(b)).unwrap();
        }
        assert_eq!(c.take_plaintext(), b"CONNACK");
        let frames = client_frames(&c.take_output());
        assert_eq!(frames, vec![(0x82, b"CONNECTSUBSCRIBE".to_vec())]);
        let big = vec![7u8; 70_000];
        c.write(&big).unwrap();
        c.write(&[1; 200]).unwrap();
        let out = c.take_output();
        assert_eq!(out[1], 0x80 | 127);
        let frames = client_frames(&out);
        assert_eq!(frames, vec![(0x82, big), (0x82, vec![1; 200])]);
    }

    #[test]
    fn masks_differ_between_frames() {
        let mut c = open_client();
        c.write(b"abcd").unwrap();
        c.write(b"abcd").unwrap();
        let out = c.take_output();
        assert_ne!(out[2..6], out[12..16]);
        let mut d =
            WsClient::new(&"h".parse().unwrap(), 443, MAX, Arc::new(counter_random)).unwrap();
        d.state = State::Open;
        d.output.clear();
        d.write(b"x").unwrap();
        assert_eq!(client_frames(&d.take_output()), vec![(0x82, b"x".to_vec())]);
    }

    #[test]
    fn fragmented_server_frames_with_a_ping_between_them() {
        let mut c = open_client();
        let mut input = server_frame(0x02, b"MQ");
        input.extend(server_frame(0x00, b""));
        input.extend(server_frame(0x89, b"are you there"));
        input.extend(server_frame(0x00, &[b'T'; 300]));
        input.extend(server_frame(0x80, b"end"));
        input.extend(server_frame(0x8a, b"unsolicited pong"));
        input.extend(server_frame(0x82, b"next"));
        for chunk in input.chunks(3) {
            c.read(chunk).unwrap();
        }
        let mut expected = b"MQ".to_vec();
        expected.extend([b'T'; 300]);
        expected.extend(b"endnext");
        assert_eq!(c.take_plaintext(), expected);
        assert_eq!(
            client_frames(&c.take_output()),
            vec![(0x8a, b"are you there".to_vec())]
        );
    }

    #[test]
    fn ping_is_answered_with_the_same_payload() {
        let mut c = open_client();
        c.read(&server_frame(0x89, b"")).unwrap();
        c.read(&server_frame(0x89, &[9; 125])).unwrap();
        assert_eq!(
            client_frames(&c.take_output()),
            vec![(0x8a, vec![]), (0x8a, vec![9; 125])]
        );
    }

    #[test]
    fn close_frame_is_a_clear_error_and_is_answered() {
        let mut c = open_client();
        let mut payload = 1011u16.to_be_bytes().to_vec();
        payload.extend(b"going away");
        let e = c.read(&server_frame(0x88, &payload)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TransportClosed);
        assert!(
            e.detail.contains("1011") && e.detail.contains("going away"),
            "{e}"
        );
        assert_eq!(
            client_frames(&c.take_output()),
            vec![(0x88, 1011u16.to_be_bytes().to_vec())]
        );
        assert_eq!(c.read(b"x").unwrap_err(), e, "dead after the close");
        assert!(c.write(b"x").is_err());
    }

    #[test]
    fn our_close_sends_a_normal_closure() {
        let mut c = open_client();
        c.close();
        assert_eq!(
            client_frames(&c.take_output()),
            vec![(0x88, 1000u16.to_be_bytes().to_vec())]
        );
        c.close();
        assert!(c.take_output().is_empty());
    }

    fn handshake_failure(response: &str) -> Error {
        let (mut c, _) = client();
        let e = c.read(response.as_bytes()).unwrap_err();
        assert!(!c.is_open());
        e
    }

    #[test]
    fn bad_upgrade_responses_are_handshake_errors() {
        let (_, request) = client();
        let good = response_for(&request);
        let wrong_accept = good.replace(&accept_key(&request_key(&request)), &accept_key("x"));
        let code = ErrorKind::ProtocolWebsocketHandshake;
        // Each response goes to its own client, so the accept keys never match.
        let e = handshake_failure(&wrong_accept);
        assert_eq!(e.kind, code);
        assert!(e.detail.contains("Sec-WebSocket-Accept"), "{e}");
        let e = handshake_failure("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(e.kind, code);
        assert!(e.detail.contains("404 Not Found"), "{e}");
        let e = handshake_failure("SSH-2.0-OpenSSH\r\n\r\n");
        assert_eq!(e.kind, code);
        // With a matching key but other headers wrong.
        for (from, to, what) in [
            ("Sec-WebSocket-Protocol: mqtt\r\n", "", "subprotocol"),
            (
                "Sec-WebSocket-Protocol: mqtt",
                "Sec-WebSocket-Protocol: mqttv5",
                "subprotocol",
            ),
            ("Upgrade: websocket", "Upgrade: h2c", "Upgrade"),
            ("Connection: Upgrade", "Connection: close", "Connection"),
            (
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: x\r\n\r\n",
                "extension",
            ),
        ] {
            let (mut c, request) = client();
            let response = response_for(&request).replacen(from, to, 1);
            let e = c.read(response.as_bytes()).unwrap_err();
            assert_eq!(e.kind, code, "{what}");
            assert!(e.detail.contains(what), "{what}: {e}");
        }
        let (mut c, request) = client();
        let response = response_for(&request)
            .replace("Connection: Upgrade", "connection: keep-alive, UPGRADE")
            .replace("Upgrade: websocket", "upgrade: WebSocket");
        c.read(response.as_bytes()).unwrap();
        assert!(c.is_open(), "header names and tokens are case-insensitive");
    }

    #[test]
    fn endless_upgrade_response_head_is_refused() {
        let (mut c, _) = client();
        c.read(b"HTTP/1.1 101 Switching Protocols\r\nX-Filler: ")
            .unwrap();
        let filler = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let mut result = Ok(());
        for _ in 0..200 {
            result = c.read(filler.as_bytes());
            if result.is_err() {
                break;
            }
        }
        let e = result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::ProtocolWebsocketHandshake);
        assert!(e.detail.contains("8192"), "{e}");
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header() {
        let mut c = open_client();
        c.read(&server_frame(0x82, &[0; MAX])).unwrap();
        // Only the header of the next frame: refused before any payload is buffered.
        let header = &server_frame(0x82, &[0; MAX + 1])[..4];
        let e = c.read(header).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ProtocolPacketTooLarge);
        let mut c = open_client();
        let mut huge = vec![0x82, 127];
        huge.extend(u64::MAX.to_be_bytes());
        assert_eq!(
            c.read(&huge).unwrap_err().kind,
            ErrorKind::ProtocolWebsocket
        );
        let mut c = open_client();
        huge[2] = 0;
        assert_eq!(
            c.read(&huge).unwrap_err().kind,
            ErrorKind::ProtocolPacketTooLarge
        );
    }

    #[test]
    fn framing_violations_are_protocol_errors() {
        let masked = vec![0x82, 0x81, 1, 2, 3, 4, 5];
        let mut long_ping = server_frame(0x89, &[0; 126]);
        long_ping.truncate(4);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (masked, "masked"),
            (server_frame(0x81, b"{}"), "text"),
            (server_frame(0xc2, b"x"), "reserved"),
            (server_frame(0x80, b"x"), "continuation"),
            (
                [server_frame(0x02, b"a"), server_frame(0x82, b"b")].concat(),
                "inside",
            ),
            (server_frame(0x09, b""), "fragmented control"),
            (long_ping, "125"),
            (server_frame(0x83, b""), "opcode"),
            (server_frame(0x8b, b""), "opcode"),
            (server_frame(0x88, &[3]), "1-byte"),
        ];
        for (input, what) in cases {
            let mut c = open_client();
            let e = c.read(&input).unwrap_err();
            assert_eq!(e.kind, ErrorKind::ProtocolWebsocket, "{what}");
            assert!(e.detail.contains(what), "{what}: {e}");
            assert!(c.take_plaintext().len() <= 1);
        }
    }
}

#[cfg(test)]
mod hostile {
    use super::tests_support::*;

    /// Pseudo-random server bytes after the upgrade: errors are fine, panics and unbounded
    /// buffers are not.
    #[test]
    fn arbitrary_server_bytes_never_panic_or_grow_buffers() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..2000 {
            let mut c = open_client();
            let mut input = Vec::new();
            for _ in 0..(round % 64 + 1) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                input.extend_from_slice(&state.to_le_bytes());
            }
            for chunk in input.chunks((round % 7) + 1) {
                if c.read(chunk).is_err() {
                    break;
                }
                assert!(c.partial.len() <= 125);
                assert!(c.take_plaintext().len() <= chunk.len());
            }
        }
    }
}
