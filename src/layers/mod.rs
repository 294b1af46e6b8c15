//! The byte layers between the transport and the engine, each bytes in, bytes out: an HTTP
//! proxy tunnel (`proxy`), TLS inside the library (`tls`) or the bytes as they are when the
//! firmware's transport speaks TLS (offload), WebSocket framing (`ws`), and the MQTT 3.1.1
//! session (`mqtt`). This module stacks the first three into `Layers`, one per connection.

pub mod mqtt;
pub mod proxy;
#[cfg(feature = "tls")]
pub mod tls;
pub(crate) mod wipe;
pub mod ws;

use crate::platform::entropy::Entropy;
use crate::prelude::*;
use alloc::sync::Arc;

use zeroize::Zeroizing;

use crate::error::Result;
use crate::settings::EndpointHost;

/// Which trust anchors verify the server: the public roots, extra PEM anchors, or both.
#[derive(Clone, Debug, Default)]
pub struct TrustAnchors {
    pub use_default_roots: bool,
    pub extra_pem: Vec<u8>,
}

/// Checks that `pem` holds at least one certificate, so a bad file is reported when it is set.
#[cfg(feature = "tls")]
pub fn check_anchors_pem(pem: &[u8]) -> Result<()> {
    tls::parse_pem_certificates(pem).map(|_| ())
}

/// Without the `tls` feature there is no TLS in the library to give anchors to.
#[cfg(not(feature = "tls"))]
pub fn check_anchors_pem(_pem: &[u8]) -> Result<()> {
    Err(no_tls_in_this_build())
}

/// The error of every TLS setting in a build without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub fn no_tls_in_this_build() -> crate::error::Error {
    crate::error::Error::new(
        crate::error::ErrorKind::InvalidUnsupported,
        "built without the tls feature: the transport must do TLS (TLS offload)",
    )
}

/// The client certificate and key TLS presents (X.509 attestation); a type with no values in
/// a build without TLS, where only the transport can present one.
#[cfg(feature = "tls")]
pub type ClientIdentity = tls::ClientIdentity;
#[cfg(not(feature = "tls"))]
pub enum ClientIdentity {}

/// Makes one framing per connection.
#[derive(Clone)]
pub enum FramingFactory {
    /// The transport carries MQTT in the clear (the firmware or its modem does TLS).
    Plain,
    #[cfg(feature = "tls")]
    Tls(Arc<tls::TlsClientConfig>),
}

impl FramingFactory {
    /// TLS with these anchors, presenting `identity` (X.509 attestation) when given.
    #[cfg(feature = "tls")]
    pub fn tls(
        anchors: &TrustAnchors,
        identity: Option<tls::ClientIdentity>,
    ) -> Result<FramingFactory> {
        let mut builder = tls::TlsClientConfig::builder().default_roots(anchors.use_default_roots);
        if !anchors.extra_pem.is_empty() {
            builder = builder.add_anchors_pem(&anchors.extra_pem)?;
        }
        if let Some(identity) = identity {
            builder = builder.client_identity(identity);
        }
        Ok(FramingFactory::Tls(Arc::new(builder.build()?)))
    }

    /// The attempt ended: its TLS configuration and saved session (a secret and the server's
    /// certificate chain) go, so that a finished client holds no TLS state.
    pub fn attempt_ended(&self) {
        #[cfg(feature = "tls")]
        if let FramingFactory::Tls(config) = self {
            config.end_attempt();
        }
    }

    #[cfg(not(feature = "tls"))]
    pub fn tls(
        _anchors: &TrustAnchors,
        _identity: Option<ClientIdentity>,
    ) -> Result<FramingFactory> {
        Err(no_tls_in_this_build())
    }

    /// Tells the TLS layer the wall-clock time, for certificate validity checks.
    pub fn set_unix_time(&self, unix_seconds: u64) {
        #[cfg(not(feature = "tls"))]
        let _ = unix_seconds;
        match self {
            FramingFactory::Plain => {}
            #[cfg(feature = "tls")]
            FramingFactory::Tls(config) => config.set_unix_time(unix_seconds),
        }
    }

    pub fn new_session(&self, server_name: &str) -> Result<Framing> {
        #[cfg(not(feature = "tls"))]
        let _ = server_name;
        match self {
            FramingFactory::Plain => Ok(Framing::Plain {
                inbound: Vec::new(),
                outbound: Zeroizing::new(Vec::new()),
            }),
            #[cfg(feature = "tls")]
            FramingFactory::Tls(config) => {
                Ok(Framing::Tls(Box::new(config.new_session(server_name)?)))
            }
        }
    }
}

/// One connection's framing.
pub enum Framing {
    Plain {
        inbound: Vec<u8>,
        /// Zeroizing: MQTT CONNECT carries the SAS token in the clear here.
        outbound: Zeroizing<Vec<u8>>,
    },
    #[cfg(feature = "tls")]
    Tls(Box<tls::TlsSession>),
}

impl Framing {
    /// Queues MQTT bytes to send.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Framing::Plain { outbound, .. } => {
                wipe::extend(outbound, data);
                Ok(())
            }
            #[cfg(feature = "tls")]
            Framing::Tls(s) => s.write_plaintext(data),
        }
    }

    /// Feeds bytes received from the transport.
    pub fn read_transport(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Framing::Plain { inbound, .. } => {
                inbound.extend_from_slice(data);
                Ok(())
            }
            #[cfg(feature = "tls")]
            Framing::Tls(s) => s.read_tls(data),
        }
    }

    /// MQTT bytes decoded so far.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        match self {
            Framing::Plain { inbound, .. } => core::mem::take(inbound),
            #[cfg(feature = "tls")]
            Framing::Tls(s) => s.take_plaintext(),
        }
    }

    /// Ends the session politely (TLS close_notify); nothing to do in the clear.
    pub fn close(&mut self) {
        match self {
            Framing::Plain { .. } => {}
            #[cfg(feature = "tls")]
            Framing::Tls(s) => s.close_notify(),
        }
    }

    /// Bytes to write to the transport; zeroizing, as in the clear they may carry secrets.
    pub fn take_transport_output(&mut self) -> Zeroizing<Vec<u8>> {
        match self {
            Framing::Plain { outbound, .. } => core::mem::take(outbound),
            #[cfg(feature = "tls")]
            Framing::Tls(s) => Zeroizing::new(s.take_tls_output()),
        }
    }
}

/// How each connection reaches the server besides TLS: WebSocket framing (port 443) and an
/// HTTP CONNECT proxy.
#[derive(Clone, Debug, Default)]
pub struct Route {
    /// MQTT over WebSocket at `/$iothub/websocket`, subprotocol `mqtt`.
    pub websocket: bool,
    /// Dial this proxy and tunnel to the server through it.
    pub proxy: Option<proxy::Proxy>,
}

impl Route {
    /// Where the transport connects: the proxy when there is one, else the server.
    pub fn dial_target<'a>(&'a self, host: &'a str, port: u16) -> (&'a str, u16) {
        match &self.proxy {
            Some(p) => (&p.host, p.port.get()),
            None => (host, port),
        }
    }
}

/// One connection's whole byte path under MQTT, from the wire up: an HTTP CONNECT tunnel when
/// there is a proxy, TLS (or the clear), then WebSocket framing when the route asks for it.
/// Bytes in, bytes out, like each layer.
pub struct Layers {
    tunnel: Option<proxy::Tunnel>,
    framing: Framing,
    ws: Option<ws::WsClient>,
}

impl Layers {
    /// Starts the layers of one connection to `host:port` (the server, not a proxy).
    pub fn new(
        factory: &FramingFactory,
        route: &Route,
        host: &EndpointHost,
        port: u16,
        max_packet_size: usize,
        entropy: &Entropy,
    ) -> Result<Layers> {
        let tunnel = match &route.proxy {
            Some(p) => Some(proxy::Tunnel::new(p, host, port)?),
            None => None,
        };
        let mut framing = factory.new_session(host)?;
        let ws = if route.websocket {
            let mut client = ws::WsClient::new(host, port, max_packet_size, Arc::clone(entropy))?;
            framing.write_plaintext(&client.take_output())?;
            Some(client)
        } else {
            None
        };
        Ok(Layers {
            tunnel,
            framing,
            ws,
        })
    }

    /// Queues MQTT bytes to send.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.ws {
            Some(ws) => {
                ws.write(data)?;
                self.framing.write_plaintext(&ws.take_output())
            }
            None => self.framing.write_plaintext(data),
        }
    }

    /// Feeds bytes received from the transport.
    pub fn read_transport(&mut self, mut data: &[u8]) -> Result<()> {
        if let Some(tunnel) = &mut self.tunnel {
            match tunnel.read(data)? {
                Some(through) => data = through,
                None => return Ok(()),
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        self.framing.read_transport(data)?;
        if let Some(ws) = &mut self.ws {
            let result = ws.read(&self.framing.take_plaintext());
            // Pongs, the held MQTT bytes after the upgrade, a close reply: out even on error.
            self.framing.write_plaintext(&ws.take_output())?;
            result?;
        }
        Ok(())
    }

    /// MQTT bytes decoded so far.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        match &mut self.ws {
            Some(ws) => ws.take_plaintext(),
            None => self.framing.take_plaintext(),
        }
    }

    /// Ends the connection politely: a WebSocket close frame, then TLS close_notify.
    pub fn close(&mut self) {
        if let Some(ws) = &mut self.ws {
            ws.close();
            let _ = self.framing.write_plaintext(&ws.take_output());
        }
        self.framing.close();
    }

    /// Bytes to write to the transport: the CONNECT request first, and nothing else until the
    /// proxy accepted the tunnel. Zeroizing: the request may carry the proxy credentials.
    pub fn take_transport_output(&mut self) -> Zeroizing<Vec<u8>> {
        if let Some(tunnel) = &mut self.tunnel {
            if !tunnel.is_open() {
                return tunnel.take_request().unwrap_or_default();
            }
        }
        self.framing.take_transport_output()
    }
}
