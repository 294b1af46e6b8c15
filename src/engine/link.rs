//! The link: the connection to the server and its life (dial, connect, lose, back off,
//! reconnect), and the bytes that cross it.

use super::{Action, Credential, Engine, Level, Status};
use crate::dps::{protocol, sas};
use crate::error::{Error, ErrorClass, ErrorKind, Result};
use crate::layers::mqtt::{ConnectOptions, MqttEvent, MqttSession, QoS};
use crate::layers::wipe;
use crate::layers::Layers;
use crate::prelude::*;
use zeroize::Zeroizing;

/// One connection: its byte layers and its MQTT session.
pub(crate) struct Connection {
    pub(crate) framing: Layers,
    pub(crate) mqtt: MqttSession,
    pub(crate) connack: bool,
    /// Whether this connection produced an answer to one of our requests (resets the
    /// consecutive-failure count).
    pub(crate) answered: bool,
    /// Whether any byte arrived on this connection.
    pub(crate) received: bool,
}

/// The connections of one attempt, for the error that ends an attempt whose deadline passed
/// before any connection reached the service.
#[derive(Default)]
pub(crate) struct Dials {
    /// When the attempt started.
    started: u64,
    /// Connections asked of the transport.
    count: u32,
    /// Whether a CONNACK ever arrived: then the service answered, and a deadline that passes
    /// is a timeout of the service, not a failure to connect.
    pub(crate) reached_service: bool,
    /// Why the last connection failed.
    last_error: Option<Error>,
}

impl Dials {
    pub(crate) fn started_at(now: u64) -> Dials {
        Dials {
            started: now,
            ..Dials::default()
        }
    }
}

impl Connection {
    /// Moves the session's output through the byte layers into `out`.
    pub(crate) fn flush(&mut self, out: &mut Zeroizing<Vec<u8>>) -> Result<()> {
        let plain = self.mqtt.take_output();
        if !plain.is_empty() {
            self.framing.write_plaintext(&plain)?;
        }
        wipe::append(out, self.framing.take_transport_output());
        Ok(())
    }

    /// Ends the connection in order: `DISCONNECT` when `graceful`, whatever is queued (PUBACKs),
    /// then the framing's close (TLS close_notify), all into `out`.
    fn close(&mut self, graceful: bool, out: &mut Zeroizing<Vec<u8>>) {
        if graceful {
            self.mqtt.disconnect();
        }
        let _ = self.flush(out);
        self.framing.close();
        wipe::append(out, self.framing.take_transport_output());
    }
}

pub(crate) enum Link {
    Down,
    /// Waiting until `at` before dialling again.
    Backoff {
        at: u64,
    },
    /// `Action::Connect` issued, waiting for `on_connected`.
    Dialling,
    Up(Box<Connection>),
}

impl Link {
    /// The connection, when one is up.
    pub(crate) fn connection(&mut self) -> Option<&mut Connection> {
        match self {
            Link::Up(conn) => Some(conn),
            _ => None,
        }
    }
}

impl Engine {
    /// Bytes to write to the transport, in order. The caller owns them afterwards; they are
    /// wiped when dropped, as in the clear (TLS offload, a proxy CONNECT) they carry secrets.
    pub fn take_transmit(&mut self) -> Zeroizing<Vec<u8>> {
        if let Link::Up(conn) = &mut self.link {
            if let Err(e) = conn.flush(&mut self.transmit) {
                self.fail(e);
            }
        }
        core::mem::take(&mut self.transmit)
    }

    /// The transport is connected: start TLS and pipeline CONNECT, SUBSCRIBE and the pending
    /// request in one flight.
    pub fn on_connected(&mut self, now: u64) {
        if !matches!(self.link, Link::Dialling) {
            return;
        }
        let framing = match Layers::new(
            &self.settings.framing,
            &self.settings.route,
            &self.settings.host,
            self.settings.port,
            self.settings.max_packet_size,
            &self.settings.entropy,
        ) {
            Ok(f) => f,
            Err(e) => return self.fail(e),
        };
        let password = match &self.settings.credential {
            Credential::Sas(signer) => {
                let expiry = self
                    .unix_now
                    .saturating_add(self.settings.timing.sas_ttl_secs);
                match sas::sas_token(
                    &self.settings.id_scope,
                    &self.settings.registration_id,
                    signer.as_ref(),
                    expiry,
                    self.settings.hex_case,
                ) {
                    Ok(token) => Some(Zeroizing::new(token.as_bytes().to_vec())),
                    Err(e) => return self.fail(e),
                }
            }
            Credential::X509 => None,
        };
        let mut mqtt = MqttSession::new(self.settings.max_packet_size);
        mqtt.set_now(now);
        let queued = mqtt.connect(&ConnectOptions {
            client_id: self.settings.registration_id.to_string(),
            username: protocol::username(
                &self.settings.id_scope,
                &self.settings.registration_id,
                &self.settings.api_version,
                self.settings.client_version.as_deref(),
            ),
            password,
            keep_alive_secs: self.settings.timing.keep_alive_secs,
        });
        if let Err(e) =
            queued.and_then(|()| mqtt.subscribe(protocol::SUBSCRIBE_FILTER, QoS::AtLeastOnce))
        {
            return self.fail(e);
        }
        self.link = Link::Up(Box::new(Connection {
            framing,
            mqtt,
            connack: false,
            answered: false,
            received: false,
        }));
        self.log(
            Level::Info,
            format!(
                "connected to {}:{}; sending CONNECT and SUBSCRIBE",
                self.settings.host, self.settings.port
            ),
        );
        self.send_due_request(now);
    }

    /// The transport failed to connect, was closed by the peer, or reported an I/O error.
    pub fn on_connection_lost(&mut self, now: u64, error: Error) {
        if !self.is_running() {
            return;
        }
        let answered = matches!(&self.link, Link::Up(c) if c.answered);
        if matches!(self.link, Link::Down | Link::Backoff { .. }) {
            return;
        }
        self.link = Link::Down;
        self.transmit.clear();
        self.actions.push_back(Action::Close);
        // A request in flight is lost with the connection: send it again on the next one.
        self.attempt.resend(now);
        // Retried until the deadline, whatever the cause: it is the one cap on reconnects.
        let delay = self.retry.connection_lost(&self.settings.timing, answered);
        let (host, port) = self.dial_target();
        self.log(
            Level::Warn,
            format!(
                "connection {} to {host}:{port} lost ({}: {error}); reconnecting in {delay} ms",
                self.dials.count,
                error.kind.name()
            ),
        );
        self.dials.last_error = Some(error);
        self.status(Status::Reconnecting);
        self.link = Link::Backoff {
            at: now.saturating_add(delay),
        };
    }

    /// Bytes received from the transport.
    pub fn handle_input(&mut self, now: u64, data: &[u8]) {
        let Link::Up(conn) = &mut self.link else {
            return;
        };
        conn.received |= !data.is_empty();
        conn.mqtt.set_now(now);
        // The server may end the connection in its framing (a WebSocket close frame) right
        // behind its last packets: those packets count, then the connection is lost like a
        // closed socket, worth a new connection.
        let mut closed = None;
        let step = match conn.framing.read_transport(data) {
            Err(e) if e.kind == ErrorKind::TransportClosed => {
                closed = Some(e);
                Ok(())
            }
            other => other,
        }
        .and_then(|()| {
            let plain = conn.framing.take_plaintext();
            conn.mqtt.handle_input(&plain)
        });
        if let Err(e) = step {
            return self.fail(e);
        }
        while let Some(event) = self.link.connection().and_then(|c| c.mqtt.poll_event()) {
            self.on_mqtt_event(now, event);
            if !matches!(self.link, Link::Up(_)) {
                return;
            }
        }
        if let Some(e) = closed {
            self.on_connection_lost(now, e);
        }
    }

    /// The link's timers: the reconnect back-off and the MQTT keep-alive.
    pub(crate) fn link_timeout(&mut self, now: u64) {
        match &mut self.link {
            Link::Backoff { at } if now >= *at => self.dial(),
            Link::Up(conn) => {
                if let Err(e) = conn.mqtt.handle_timeout(now) {
                    return self.on_connection_lost(now, e);
                }
                self.send_due_request(now);
            }
            _ => {}
        }
    }

    /// Asks the transport for a connection to the server, or to the proxy in front of it.
    pub(crate) fn dial(&mut self) {
        self.link = Link::Dialling;
        self.status(Status::Connecting);
        self.dials.count = self.dials.count.saturating_add(1);
        let (host, port) = self.dial_target();
        self.actions.push_back(Action::Connect {
            host: host.to_owned(),
            port,
        });
    }

    /// The address the transport is asked to connect to: the server, or the proxy in front.
    fn dial_target(&self) -> (&str, u16) {
        self.settings
            .route
            .dial_target(&self.settings.host, self.settings.port)
    }

    /// The error of an attempt whose deadline passed before any connection reached the
    /// service: the last connection's failure (or the state of the one still open), with the
    /// address and the number of connections tried.
    pub(crate) fn unreachable(&self, now: u64) -> Error {
        let (kind, cause) = match (&self.link, &self.dials.last_error) {
            (Link::Up(conn), _) if conn.received => (
                ErrorKind::TransportConnect,
                "the server answered but sent no CONNACK",
            ),
            (Link::Up(_), _) => (ErrorKind::TransportConnect, "no answer from the server"),
            (_, Some(e)) if e.kind.class() == ErrorClass::Transport => (e.kind, e.detail.as_str()),
            (_, _) => (ErrorKind::TransportConnect, "no connection was made"),
        };
        let (host, port) = self.dial_target();
        let count = self.dials.count;
        Error::new(
            kind,
            format!(
                "{host}:{port}, {count} attempt{} in {} ms: {cause}",
                if count == 1 { "" } else { "s" },
                now.saturating_sub(self.dials.started)
            ),
        )
    }

    /// Takes the link down at the end of the attempt: a graceful close after success.
    pub(crate) fn close_link(&mut self, graceful: bool) {
        if let Link::Up(conn) = &mut self.link {
            conn.close(graceful, &mut self.transmit);
        }
        if !matches!(self.link, Link::Down) {
            self.actions.push_back(Action::Close);
        }
        self.link = Link::Down;
    }

    fn on_mqtt_event(&mut self, now: u64, event: MqttEvent) {
        match event {
            MqttEvent::ConnAck { code, .. } => self.on_connack(now, code),
            MqttEvent::SubAck { granted, .. } => {
                if granted.iter().any(Option::is_none) {
                    self.fail(Error::new(
                        ErrorKind::ProtocolSubscribeRefused,
                        format!("subscription to {} refused", protocol::SUBSCRIBE_FILTER),
                    ));
                }
            }
            MqttEvent::Publish { topic, payload, .. } => self.on_response(now, &topic, &payload),
            MqttEvent::PubAck { .. } | MqttEvent::PingResp => {}
        }
    }

    fn on_connack(&mut self, now: u64, code: u8) {
        let (err, what) = match code {
            0 => {
                if let Some(conn) = self.link.connection() {
                    conn.connack = true;
                }
                self.dials.reached_service = true;
                self.status(Status::Connected);
                return self.send_due_request(now);
            }
            1 => (ErrorKind::ProtocolConnack, "unacceptable protocol version"),
            2 => (ErrorKind::AuthIdentifierRejected, "identifier rejected"),
            3 => (ErrorKind::AuthUnknownIdScope, "unknown id scope"),
            4 => (ErrorKind::AuthBadCredentials, "bad user name or password"),
            5 => (ErrorKind::AuthNotAuthorized, "not authorized"),
            _ => (ErrorKind::ProtocolConnack, "undefined return code"),
        };
        self.fail(Error::new(
            err,
            format!("CONNACK refused with code {code} ({what})"),
        ));
    }
}
