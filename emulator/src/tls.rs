//! The TLS server side: the server certificate, TLS 1.2/1.3, and client certificates that are
//! requested but judged after the handshake, as DPS does (an untrusted or expired device
//! certificate gets the MQTT 401, not a TLS alert, and SAS devices present none).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::certs::{AnyError, Pki};

/// Checks the proof of possession during the handshake and leaves the chain to the session.
#[derive(Debug)]
pub struct DeviceCertVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
}

impl DeviceCertVerifier {
    /// Whether a presented chain (leaf first) chains to the device CA and is valid now.
    pub fn trusted(&self, chain: &[CertificateDer<'_>]) -> bool {
        match chain.split_first() {
            Some((leaf, intermediates)) => self
                .webpki
                .verify_client_cert(leaf, intermediates, UnixTime::now())
                .is_ok(),
            None => false,
        }
    }
}

impl ClientCertVerifier for DeviceCertVerifier {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // DPS names no acceptable CAs: a device sends whatever certificate it has.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The server configuration and the verifier the sessions use to judge device certificates.
pub fn server_config(
    pki: &Pki,
    tls12_only: bool,
) -> Result<(ServerConfig, Arc<DeviceCertVerifier>), AnyError> {
    let mut provider = rustls::crypto::ring::default_provider();
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        // What DPS negotiates today: TLS 1.2, ECDHE with AES-GCM only.
        provider.cipher_suites.retain(|s| {
            matches!(
                s.suite(),
                rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                    | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            )
        });
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let provider: Arc<CryptoProvider> = Arc::new(provider);
    let mut device_roots = RootCertStore::empty();
    device_roots.add(pki.device_ca.clone())?;
    let webpki =
        WebPkiClientVerifier::builder_with_provider(Arc::new(device_roots), provider.clone())
            .build()?;
    let verifier = Arc::new(DeviceCertVerifier { webpki });
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())?;
    Ok((config, verifier))
}
