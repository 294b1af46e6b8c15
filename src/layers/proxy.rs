//! HTTP CONNECT tunnel through a proxy (RFC 9110 section 9.3.6), sans-IO.
//!
//! The transport connects to the proxy; this layer writes `CONNECT host:port HTTP/1.1` (with
//! `Proxy-Authorization: Basic` when credentials are set), reads the proxy's response head
//! (at most 8 KiB), and on a 2xx answer gets out of the way: everything after the head is the
//! tunnel, where TLS (and WebSocket, and MQTT) run as they would on a direct connection.

use crate::prelude::*;
use core::fmt;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::settings::{EndpointHost, Port};

/// Largest proxy response head accepted (status line and headers).
pub(crate) const MAX_RESPONSE_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// An HTTP proxy and its optional basic-auth credentials. The password is zeroized when
/// dropped and never shown by `Debug`.
#[derive(Clone)]
pub struct Proxy {
    pub host: EndpointHost,
    pub port: Port,
    pub username: Option<String>,
    pub password: Option<Zeroizing<String>>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Proxy {
    /// Parses a proxy setting: a host (the same rule as the server's, see [`EndpointHost`]), a
    /// port, and a user name without `:` (basic auth cannot carry it) whenever a password is
    /// given. `ErrorKind::InvalidArgument` otherwise.
    pub fn new(
        host: &str,
        port: u16,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Proxy> {
        let invalid = |what: &str| Error::new(ErrorKind::InvalidArgument, what);
        let host = EndpointHost::parse_named(host, "proxy host")?;
        let port = Port::new_named(port, "proxy port")?;
        if username.is_some_and(|u| u.contains(':')) {
            return Err(invalid("proxy user name contains ':'"));
        }
        if username.is_none() && password.is_some() {
            return Err(invalid("proxy password without a user name"));
        }
        Ok(Proxy {
            host,
            port,
            username: username.map(str::to_owned),
            password: password.map(|p| Zeroizing::new(p.to_owned())),
        })
    }
}

/// A host as written in HTTP: IPv6 literals in brackets.
pub fn http_host(host: &EndpointHost) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `host:port` as a request target and `Host` header.
pub fn authority(host: &EndpointHost, port: u16) -> String {
    format!("{}:{port}", http_host(host))
}

/// One connection's CONNECT exchange.
pub struct Tunnel {
    /// The CONNECT request until it is taken. Zeroizing: it may carry the credentials.
    request: Option<Zeroizing<Vec<u8>>>,
    head: Vec<u8>,
    open: bool,
    sent_credentials: bool,
    proxy_name: String,
}

impl Tunnel {
    /// Prepares the CONNECT request for `target_host:target_port` (the server, not the proxy).
    pub fn new(proxy: &Proxy, target_host: &EndpointHost, target_port: u16) -> Result<Tunnel> {
        let target = authority(target_host, target_port);
        let mut request = Zeroizing::new(Vec::with_capacity(256));
        request.extend_from_slice(
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").as_bytes(),
        );
        if let Some(user) = &proxy.username {
            let mut plain = Zeroizing::new(String::with_capacity(64));
            plain.push_str(user);
            plain.push(':');
            plain.push_str(proxy.password.as_deref().map_or("", String::as_str));
            let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*plain));
            request.extend_from_slice(b"Proxy-Authorization: Basic ");
            request.extend_from_slice(encoded.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        Ok(Tunnel {
            request: Some(request),
            head: Vec::new(),
            open: false,
            sent_credentials: proxy.username.is_some(),
            proxy_name: authority(&proxy.host, proxy.port.get()),
        })
    }

    /// Whether the proxy accepted the tunnel.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The CONNECT request, once.
    pub fn take_request(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        self.request.take()
    }

    /// Feeds bytes from the proxy. Returns `None` while the response head is incomplete, then
    /// the bytes of `data` after the head: the first bytes through the tunnel.
    pub fn read<'a>(&mut self, data: &'a [u8]) -> Result<Option<&'a [u8]>> {
        if self.open {
            return Ok(Some(data));
        }
        let before = self.head.len();
        // The head never grows past its limit (only `room` bytes are taken): no saturation.
        let room = MAX_RESPONSE_HEAD.saturating_sub(before);
        self.head
            .extend_from_slice(data.get(..data.len().min(room)).unwrap_or_default());
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let failed = |detail: String| Error::new(ErrorKind::TransportProxy, detail);
        let head_len = match response.parse(&self.head) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if self.head.len() >= MAX_RESPONSE_HEAD => {
                return Err(failed(format!(
                    "proxy {} answered CONNECT with a head longer than {MAX_RESPONSE_HEAD} bytes",
                    self.proxy_name
                )))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                return Err(failed(format!(
                    "proxy {} did not answer CONNECT in HTTP: {e}",
                    self.proxy_name
                )))
            }
        };
        let code = response.code.unwrap_or(0);
        let status = format!(
            "{code} {}",
            crate::dps::protocol::clip(response.reason.unwrap_or(""))
        );
        match code {
            200..=299 => {
                self.open = true;
                self.head = Vec::new();
                // The head was incomplete in its first `before` bytes (the last call said so),
                // so it ends inside `data`: no saturation.
                let used = head_len.saturating_sub(before);
                Ok(Some(data.get(used..).unwrap_or_default()))
            }
            // 407 is the standard answer; tinyproxy (and some others) answer CONNECT with 401.
            401 | 407 => Err(Error::new(
                ErrorKind::TransportProxyAuth,
                format!(
                    "proxy {} answered CONNECT with {status} ({})",
                    self.proxy_name,
                    if self.sent_credentials {
                        "credentials refused"
                    } else {
                        "no credentials set"
                    }
                ),
            )),
            _ => Err(failed(format!(
                "proxy {} answered CONNECT with {status}",
                self.proxy_name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(user: Option<&str>, password: Option<&str>) -> Proxy {
        Proxy::new("proxy.local", 3128, user, password).unwrap()
    }

    fn host(name: &str) -> EndpointHost {
        name.parse().unwrap()
    }

    fn request_text(t: &mut Tunnel) -> String {
        String::from_utf8(t.take_request().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn connect_request_without_and_with_credentials() {
        let mut t = Tunnel::new(&proxy(None, None), &host("dps.example"), 8883).unwrap();
        assert_eq!(
            request_text(&mut t),
            "CONNECT dps.example:8883 HTTP/1.1\r\nHost: dps.example:8883\r\n\r\n"
        );
        assert!(t.take_request().is_none(), "sent once");
        let mut t = Tunnel::new(
            &proxy(Some("Aladdin"), Some("open sesame")),
            &host("h"),
            443,
        )
        .unwrap();
        assert_eq!(
            request_text(&mut t),
            "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
        let mut t = Tunnel::new(&proxy(None, None), &host("::1"), 443).unwrap();
        assert!(request_text(&mut t).starts_with("CONNECT [::1]:443 HTTP/1.1\r\n"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = proxy(Some("user"), Some("hunter2"));
        let text = format!("{p:?}");
        assert!(
            !text.contains("hunter2") && text.contains("redacted"),
            "{text}"
        );
    }

    #[test]
    fn settings_are_checked() {
        let code = |r: Result<Proxy>| r.unwrap_err().kind;
        assert_eq!(
            code(Proxy::new("", 1, None, None)),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            code(Proxy::new("p", 0, None, None)),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            code(Proxy::new("p q", 1, None, None)),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            code(Proxy::new("p", 1, Some("a:b"), Some("c"))),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            code(Proxy::new("p", 1, None, Some("c"))),
            ErrorKind::InvalidArgument
        );
        // Nothing that could break out of the request line becomes a host.
        for bad in ["evil\r\nX-Injected: 1", "a/b", "u@h"] {
            assert!(bad.parse::<EndpointHost>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn accepted_tunnel_passes_on_what_follows_the_head_at_any_split() {
        let response = b"HTTP/1.1 200 Connection established\r\nProxy-agent: test\r\n\r\n";
        let mut input = response.to_vec();
        input.extend_from_slice(b"\x16\x03\x03TLS");
        for split in 0..input.len() {
            let mut t = Tunnel::new(&proxy(None, None), &host("h"), 8883).unwrap();
            let (a, b) = input.split_at(split);
            let mut through = Vec::new();
            if let Some(rest) = t.read(a).unwrap() {
                through.extend_from_slice(rest);
            }
            if let Some(rest) = t.read(b).unwrap() {
                through.extend_from_slice(rest);
            }
            assert!(t.is_open());
            assert_eq!(through, b"\x16\x03\x03TLS", "split at {split}");
        }
    }

    #[test]
    fn refusals_are_clear_errors() {
        let mut t = Tunnel::new(&proxy(Some("u"), Some("wrong")), &host("h"), 8883).unwrap();
        let e = t
            .read(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::TransportProxyAuth);
        assert!(e.detail.contains("credentials refused"), "{e}");
        assert!(!e.detail.contains("wrong"));
        let mut t = Tunnel::new(&proxy(None, None), &host("h"), 8883).unwrap();
        let e = t
            .read(b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n")
            .unwrap_err();
        assert!(e.detail.contains("no credentials set"), "{e}");
        let mut t = Tunnel::new(&proxy(Some("u"), Some("p")), &host("h"), 8883).unwrap();
        let e = t.read(b"HTTP/1.0 401 Unauthorized\r\n\r\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::TransportProxyAuth);
        for (response, status) in [
            (
                &b"HTTP/1.1 403 Access violation\r\n\r\nbody"[..],
                "403 Access violation",
            ),
            (
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
                "502 Bad Gateway",
            ),
        ] {
            let mut t = Tunnel::new(&proxy(None, None), &host("h"), 8883).unwrap();
            let e = t.read(response).unwrap_err();
            assert_eq!(e.kind, ErrorKind::TransportProxy);
            assert!(e.detail.contains(status), "{e}");
            assert!(e.detail.contains("proxy.local:3128"), "{e}");
        }
        let mut t = Tunnel::new(&proxy(None, None), &host("h"), 8883).unwrap();
        let e = t.read(b"\x16\x03\x01 not http\r\n\r\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::TransportProxy);
    }

    #[test]
    fn endless_response_head_is_refused() {
        let mut t = Tunnel::new(&proxy(None, None), &host("h"), 8883).unwrap();
        assert!(t.read(b"HTTP/1.1 200 OK\r\nX: ").unwrap().is_none());
        let chunk = [b'a'; 1000];
        let mut result = Ok(None);
        for _ in 0..10 {
            result = t.read(&chunk);
            if result.is_err() {
                break;
            }
        }
        let e = result.unwrap_err();
        assert_eq!(e.kind, ErrorKind::TransportProxy);
        assert!(e.detail.contains("8192"), "{e}");
    }
}
