//! TLS client on rustls (ring provider, TLS 1.2 and 1.3), sans-IO.
//!
//! Certificate validity is judged by the caller's clock (the firmware's clock hook), never by
//! the system clock: the engine stores its wall-clock time in the config's `HookTime`.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::ClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};

use crate::error::{dps_result, Error, Result};

/// Reads every `CERTIFICATE` block of a PEM buffer; none at all is an error.
pub fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            Error::new(
                dps_result::DPS_ERR_INVALID_CERTIFICATE,
                format!("unreadable PEM: {e:?}"),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::new(
            dps_result::DPS_ERR_INVALID_CERTIFICATE,
            "no CERTIFICATE block in the PEM data",
        ));
    }
    Ok(certs)
}

/// Wall-clock seconds set by the engine from the clock hook.
#[derive(Debug, Default)]
struct HookTime(AtomicU64);

impl TimeProvider for HookTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(
            self.0.load(Ordering::Relaxed),
        )))
    }
}

/// Shared TLS settings: trust anchors, versions, the clock.
pub struct TlsClientConfig {
    config: Arc<ClientConfig>,
    time: Arc<HookTime>,
}

impl TlsClientConfig {
    /// Trusts the public roots (webpki-roots) when `use_default_roots`, plus every certificate
    /// in `extra_pem`.
    pub fn new(use_default_roots: bool, extra_pem: &[u8]) -> Result<TlsClientConfig> {
        let mut roots = RootCertStore::empty();
        if use_default_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if !extra_pem.is_empty() {
            for cert in parse_pem_certificates(extra_pem)? {
                roots.add(cert).map_err(|e| {
                    Error::new(
                        dps_result::DPS_ERR_INVALID_CERTIFICATE,
                        format!("unusable trust anchor: {e}"),
                    )
                })?;
            }
        }
        if roots.is_empty() {
            return Err(Error::new(
                dps_result::DPS_ERR_INVALID_CONFIG,
                "no trust anchors: enable the public roots or add a CA",
            ));
        }
        let time = Arc::new(HookTime::default());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_details(provider, time.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::new(dps_result::DPS_ERR_INTERNAL, e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClientConfig {
            config: Arc::new(config),
            time,
        })
    }

    pub fn set_unix_time(&self, unix_seconds: u64) {
        self.time.0.store(unix_seconds, Ordering::Relaxed);
    }

    /// A new connection to `server_name` (also sent as SNI).
    pub fn new_session(&self, server_name: &str) -> Result<TlsSession> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            Error::new(
                dps_result::DPS_ERR_INVALID_ARGUMENT,
                format!("{server_name:?} is not a valid TLS server name"),
            )
        })?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(|e| map_error(&e))?;
        Ok(TlsSession { conn })
    }
}

/// One TLS connection, fed and drained by the caller.
pub struct TlsSession {
    conn: ClientConnection,
}

impl TlsSession {
    /// Queues application bytes; before the handshake completes rustls holds them and sends
    /// them right after it.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<()> {
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| Error::new(dps_result::DPS_ERR_INTERNAL, e.to_string()))
    }

    /// Feeds bytes received from the network.
    pub fn read_tls(&mut self, data: &[u8]) -> Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            let n = self
                .conn
                .read_tls(&mut rest)
                .map_err(|e| Error::new(dps_result::DPS_ERR_TLS_ALERT, format!("TLS read: {e}")))?;
            self.conn.process_new_packets().map_err(|e| map_error(&e))?;
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Application bytes decrypted so far.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
        out
    }

    /// TLS records to send.
    pub fn take_tls_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }
}

/// Maps a rustls error to the most precise result code.
fn map_error(e: &rustls::Error) -> Error {
    use dps_result::*;
    let code = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => DPS_ERR_TLS_CERT_EXPIRED,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                DPS_ERR_TLS_CERT_NAME_MISMATCH
            }
            _ => DPS_ERR_TLS_CERT_UNTRUSTED,
        },
        rustls::Error::AlertReceived(
            AlertDescription::ProtocolVersion | AlertDescription::InsufficientSecurity,
        )
        | rustls::Error::PeerIncompatible(_) => DPS_ERR_TLS_PROTOCOL_VERSION,
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure) => {
            DPS_ERR_TLS_PROTOCOL_VERSION
        }
        rustls::Error::AlertReceived(_)
        | rustls::Error::InvalidMessage(_)
        | rustls::Error::PeerMisbehaved(_)
        | rustls::Error::DecryptError => DPS_ERR_TLS_ALERT,
        _ => DPS_ERR_TLS_HANDSHAKE,
    };
    Error::new(code, e.to_string())
}
