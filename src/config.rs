//! The configuration builder behind `dps_config`: plain safe Rust. Each setter parses its
//! setting (see `settings`); building a client checks the rules that join several, so that
//! every mistake is reported before anything is dialled.

use crate::platform::entropy::{self, Entropy};
use crate::prelude::*;
use alloc::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use zeroize::Zeroizing;

use crate::dps::protocol;
use crate::dps::sas::{self, HexCase, KeySigner, Signer};
use crate::engine::{Credential, Settings, Timing};
use crate::error::{Error, ErrorKind, Result};
use crate::layers::{ClientIdentity, FramingFactory, TrustAnchors};
pub use crate::settings::{
    ApiVersion, ClientVersion, Csr, EndpointHost, IdScope, KeepAlive, MaxPacketSize, ModelId,
    Payload, Port, RegistrationId, SasLifetime, DPS_SAS_TOKEN_LIFETIME_MAX_S,
    DPS_SAS_TOKEN_LIFETIME_MIN_S,
};

/// The global DPS endpoint.
pub const DEFAULT_HOST: &str = "global.azure-devices-provisioning.net";
/// MQTT over TLS.
pub const DEFAULT_PORT: u16 = 8883;
pub use crate::layers::mqtt::DEFAULT_MAX_PACKET_SIZE;

#[derive(Clone)]
pub enum KeyKind {
    /// The device's own symmetric key (individual enrollment).
    Device(Zeroizing<String>),
    /// The enrollment group's key; the device key is derived from it and the registration id.
    Group(Zeroizing<String>),
    /// An X.509 client certificate and its key (individual or group X.509 enrollment).
    X509(ClientCertificate),
    /// X.509 where the transport's own TLS presents the client certificate (TLS offload): the
    /// library holds no certificate or key and sends no password.
    X509ByTransport,
    /// An external signer (HSM, TPM, secure element) that computes the SAS HMAC itself: the
    /// key never enters the library's memory.
    External(Arc<dyn Signer + Send + Sync>),
}

/// An X.509 client certificate as given: the chain (PEM, leaf first; or one DER certificate)
/// and the private key (PEM or DER; PKCS#8, PKCS#1 or SEC1), wiped on drop. Parsed and
/// checked against the registration id by [`Config::settings`].
#[derive(Clone)]
pub struct ClientCertificate {
    pub chain: Vec<u8>,
    pub key: Zeroizing<Vec<u8>>,
}

#[cfg(not(feature = "tls"))]
impl ClientCertificate {
    /// Always an error: presenting a certificate needs the library's TLS.
    pub fn parse(&self) -> Result<(ClientIdentity, String)> {
        Err(Error::new(
            ErrorKind::InvalidUnsupported,
            "built without the tls feature: a client certificate can only be presented by the \
             transport's TLS (dps_config_set_x509_offloaded)",
        ))
    }
}

#[cfg(feature = "tls")]
impl ClientCertificate {
    /// The TLS identity and the leaf certificate's subject CN.
    pub fn parse(&self) -> Result<(ClientIdentity, String)> {
        let identity = crate::layers::tls::ClientIdentity::parse(&self.chain, &self.key)?;
        let leaf = identity
            .chain
            .first()
            .ok_or_else(|| Error::new(ErrorKind::InvalidCertificate, "no client certificate"))?;
        let cn = crate::dps::x509::common_name(leaf)?;
        Ok((identity, cn))
    }
}

/// The registration id to use with an X.509 certificate whose subject CN is `cn`: the one
/// configured, which must equal the CN (ids are case-insensitive), or else the CN itself.
fn x509_registration_id(configured: Option<&RegistrationId>, cn: &str) -> Result<RegistrationId> {
    match configured {
        Some(id) if !id.eq_ignore_ascii_case(cn) => Err(Error::new(
            ErrorKind::InvalidCertificateCn,
            format!(
                "registration id {id:?} does not match the client certificate's subject CN \
                 {cn:?}; with X.509 they must be equal (or set no registration id to use the CN)"
            ),
        )),
        Some(id) => Ok(id.clone()),
        None => cn.parse().map_err(|e: Error| {
            Error::new(
                e.kind,
                format!("the client certificate's CN {cn:?} is not a valid registration id: {e}"),
            )
        }),
    }
}

/// Every field holds a validated setting (see [`crate::settings`]); the setters below parse
/// their input into it and refuse bad input with the precise reason.
#[derive(Clone)]
pub struct Config {
    pub id_scope: Option<IdScope>,
    pub registration_id: Option<RegistrationId>,
    pub key: Option<KeyKind>,
    pub host: EndpointHost,
    pub port: Port,
    pub api_version: ApiVersion,
    pub client_version: Option<ClientVersion>,
    pub payload: Option<Payload>,
    /// IoT Plug and Play model id, sent inside `payload` as `modelId`.
    pub model_id: Option<ModelId>,
    pub use_default_roots: bool,
    pub extra_anchors_pem: Vec<u8>,
    pub timing: Timing,
    pub max_packet_size: MaxPacketSize,
    pub hex_case: HexCase,
    /// The transport hooks carry MQTT in the clear because the firmware's transport does TLS.
    /// Always true in a build without the `tls` feature.
    pub tls_offload: bool,
    /// A PKCS#10 CSR sent as `csr` for certificate issuance.
    pub csr: Option<Csr>,
    /// Whether `api_version` was chosen by the user (a CSR then does not change it).
    pub api_version_explicit: bool,
    /// MQTT over WebSocket (port 443 unless the port was set explicitly).
    pub websocket: bool,
    /// Whether the port was chosen by the user (`set_endpoint`) rather than defaulted.
    pub port_explicit: bool,
    /// An HTTP CONNECT proxy to tunnel through.
    pub proxy: Option<crate::layers::proxy::Proxy>,
    /// The firmware's entropy source; `None` uses the operating system's (hosted builds only).
    pub entropy: Option<Entropy>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id_scope: None,
            registration_id: None,
            key: None,
            host: EndpointHost::global(),
            port: Port::mqtt(),
            api_version: ApiVersion::default_version(),
            client_version: Some(ClientVersion::library()),
            payload: None,
            model_id: None,
            use_default_roots: true,
            extra_anchors_pem: Vec::new(),
            timing: Timing::default(),
            max_packet_size: MaxPacketSize::default(),
            hex_case: HexCase::Lower,
            tls_offload: !cfg!(feature = "tls"),
            csr: None,
            api_version_explicit: false,
            websocket: false,
            port_explicit: false,
            proxy: None,
            entropy: None,
        }
    }
}

/// `ErrorKind::InvalidConfig` when the public roots are asked for in a TLS build without them,
/// rather than a handshake that later fails on an unknown issuer.
fn check_public_roots(use_public_roots: bool) -> Result<()> {
    if use_public_roots && cfg!(all(feature = "tls", not(feature = "public-roots"))) {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "this build has no public roots (feature public-roots off, CMake \
             -DDPS_MQTT_PUBLIC_ROOTS=OFF): pass use_public_roots = false with the CA that signs \
             the server",
        ));
    }
    Ok(())
}

// Trust anchors: added to (`add`) or replacing (`set`) those given before.
impl Config {
    /// Appends the certificates in `pem` to the trust anchors; `use_public_roots` says whether
    /// the built-in public roots stay trusted too. `ErrorKind::InvalidCertificate` (and no
    /// change) when `pem` holds no readable certificate.
    pub fn add_trust_anchors_pem(&mut self, pem: &[u8], use_public_roots: bool) -> Result<()> {
        check_public_roots(use_public_roots)?;
        crate::layers::check_anchors_pem(pem)?;
        self.extra_anchors_pem.extend_from_slice(pem);
        self.extra_anchors_pem.push(b'\n');
        self.use_default_roots = use_public_roots;
        Ok(())
    }

    /// Replaces every anchor added before with the certificates in `pem`. An empty `pem` with
    /// `use_public_roots` goes back to the public roots alone; an empty `pem` without them
    /// would trust nothing and is `ErrorKind::InvalidCertificate`, as is a `pem` holding no
    /// readable certificate (the anchors are then left unchanged).
    pub fn set_trust_anchors_pem(&mut self, pem: &[u8], use_public_roots: bool) -> Result<()> {
        check_public_roots(use_public_roots)?;
        if pem.is_empty() && use_public_roots {
            self.extra_anchors_pem.clear();
            self.use_default_roots = true;
            return Ok(());
        }
        crate::layers::check_anchors_pem(pem)?;
        self.extra_anchors_pem.clear();
        self.add_trust_anchors_pem(pem, use_public_roots)
    }
}

// Setters: each parses its input into the setting's type, and leaves the config unchanged
// when it refuses it.
impl Config {
    pub fn set_id_scope(&mut self, id_scope: &str) -> Result<()> {
        self.id_scope = Some(id_scope.parse()?);
        Ok(())
    }

    pub fn set_registration_id(&mut self, registration_id: &str) -> Result<()> {
        self.registration_id = Some(registration_id.parse()?);
        Ok(())
    }

    /// Sets the server's host and port; the port then stays whatever transport is chosen.
    pub fn set_endpoint(&mut self, host: &str, port: u16) -> Result<()> {
        let port = Port::new(port)?;
        self.set_host(host)?;
        self.port = port;
        self.port_explicit = true;
        Ok(())
    }

    /// Sets the server's host alone: the port stays as it was (following the transport unless
    /// [`Config::set_endpoint`] chose one).
    pub fn set_host(&mut self, host: &str) -> Result<()> {
        self.host = host.parse()?;
        Ok(())
    }

    /// Turns MQTT over WebSocket on or off. Unless the port was set explicitly, it follows:
    /// 443 with WebSocket, 8883 without.
    pub fn set_websocket(&mut self, enabled: bool) {
        self.websocket = enabled;
        if !self.port_explicit {
            self.port = if enabled {
                Port::websocket()
            } else {
                Port::mqtt()
            };
        }
    }

    /// `None` clears the payload.
    pub fn set_payload(&mut self, json: Option<&str>) -> Result<()> {
        self.payload = json.map(str::parse).transpose()?;
        Ok(())
    }

    /// `None` clears the model id.
    pub fn set_model_id(&mut self, model_id: Option<&str>) -> Result<()> {
        self.model_id = model_id.map(str::parse).transpose()?;
        Ok(())
    }

    pub fn set_api_version(&mut self, api_version: &str) -> Result<()> {
        self.api_version = api_version.parse()?;
        self.api_version_explicit = true;
        Ok(())
    }

    /// `None` omits the ClientVersion parameter.
    pub fn set_client_version(&mut self, agent: Option<&str>) -> Result<()> {
        self.client_version = agent.map(str::parse).transpose()?;
        Ok(())
    }

    /// A CSR as DER or PEM; `None` removes it.
    pub fn set_csr(&mut self, csr: Option<&[u8]>) -> Result<()> {
        self.csr = csr.map(Csr::parse).transpose()?;
        Ok(())
    }

    /// Sets the lifetime of each SAS token, from [`DPS_SAS_TOKEN_LIFETIME_MIN_S`] to
    /// [`DPS_SAS_TOKEN_LIFETIME_MAX_S`].
    pub fn set_sas_token_lifetime_secs(&mut self, seconds: u32) -> Result<()> {
        self.timing.sas_ttl_secs = SasLifetime::new(seconds)?.secs();
        Ok(())
    }

    /// Sets the MQTT keep-alive (see [`KeepAlive`]).
    pub fn set_keep_alive_secs(&mut self, seconds: u16) -> Result<()> {
        self.timing.keep_alive_secs = KeepAlive::new(seconds)?.secs();
        Ok(())
    }

    /// Sets the largest MQTT packet accepted (see [`MaxPacketSize`]).
    pub fn set_max_packet_size(&mut self, bytes: u32) -> Result<()> {
        self.max_packet_size = MaxPacketSize::new(bytes)?;
        Ok(())
    }

    /// The payload sent: the custom payload, with the model id added inside it when one is set.
    fn payload_to_send(&self) -> Result<Option<Payload>> {
        match &self.model_id {
            Some(model_id) => {
                protocol::payload_with_model_id(self.payload.as_ref(), model_id).map(Some)
            }
            None => Ok(self.payload.clone()),
        }
    }
}

impl Config {
    /// Checks the rules that join several settings (a credential present, the X.509 CN,
    /// offload contradictions, an entropy source, the register body's size) and builds the
    /// engine's settings. Each setting on its own was checked when it was set.
    pub fn settings(&self) -> Result<Settings> {
        let id_scope = self
            .id_scope
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "no id scope set"))?;
        let mut identity = None;
        let registration_id = match &self.key {
            Some(KeyKind::X509(certificate)) => {
                let (tls_identity, cn) = certificate.parse()?;
                identity = Some(tls_identity);
                x509_registration_id(self.registration_id.as_ref(), &cn)?
            }
            _ => self
                .registration_id
                .clone()
                .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "no registration id set"))?,
        };
        let credential = match &self.key {
            Some(KeyKind::Device(key)) => Credential::Sas(Box::new(KeySigner::from_base64(key)?)),
            Some(KeyKind::Group(group)) => {
                let device_key = sas::derive_device_key(group, &registration_id)?;
                Credential::Sas(Box::new(KeySigner::from_base64(&device_key)?))
            }
            Some(KeyKind::X509(_)) => Credential::X509,
            Some(KeyKind::X509ByTransport) if !self.tls_offload => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "X.509 by the transport needs TLS offload (dps_config_set_tls_offload)",
                ))
            }
            Some(KeyKind::X509ByTransport) => Credential::X509,
            Some(KeyKind::External(signer)) => Credential::Sas(Box::new(Arc::clone(signer))),
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "no credential set (symmetric key, group key, signing callback or client certificate)",
                ))
            }
        };
        let payload = self.payload_to_send()?;
        let csr_b64 = self.csr.as_ref().map(|csr| STANDARD.encode(csr.der()));
        let body = protocol::register_body(&registration_id, payload.as_ref(), csr_b64.as_deref());
        if body.len() > protocol::MAX_REQUEST_BODY {
            return Err(Error::new(
                ErrorKind::InvalidPayload,
                format!(
                    "the registration request (payload{}) is {} bytes; the service accepts at \
                     most {}",
                    if csr_b64.is_some() { " and CSR" } else { "" },
                    body.len(),
                    protocol::MAX_REQUEST_BODY
                ),
            ));
        }
        let framing = self.framing(identity)?;
        let entropy = self
            .entropy
            .clone()
            .or_else(entropy::default_source)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    "no entropy source: this build has no operating system to ask, so set one \
                     with dps_config_set_entropy (back-off jitter and WebSocket masks need it)",
                )
            })?;
        Ok(Settings {
            id_scope,
            registration_id,
            credential,
            host: self.host.clone(),
            port: self.port.get(),
            api_version: if self.csr.is_some() && !self.api_version_explicit {
                ApiVersion::certificate_issuance()
            } else {
                self.api_version.clone()
            },
            client_version: self.client_version.clone(),
            payload,
            framing,
            timing: self.timing.clone(),
            max_packet_size: self.max_packet_size.bytes(),
            hex_case: self.hex_case,
            csr_b64,
            entropy,
            route: crate::layers::Route {
                websocket: self.websocket,
                proxy: self.proxy.clone(),
            },
        })
    }

    /// TLS in the library, or bytes in the clear for a transport that does TLS itself. Trust
    /// anchors set together with offload are an error rather than ignored: the firmware
    /// would believe it pinned a CA that nothing checks.
    fn framing(&self, identity: Option<ClientIdentity>) -> Result<FramingFactory> {
        let anchors = TrustAnchors {
            use_default_roots: self.use_default_roots,
            extra_pem: self.extra_anchors_pem.clone(),
        };
        if self.tls_offload {
            if !anchors.extra_pem.is_empty() || !anchors.use_default_roots {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "trust anchors set, but TLS is offloaded: the transport verifies the server",
                ));
            }
            if identity.is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "a client certificate was given, but TLS is offloaded: the transport's TLS \
                     presents it (dps_config_set_x509_offloaded)",
                ));
            }
            // The tunnel request goes out before TLS, but an offloading transport wraps every
            // byte in TLS from the first one: it would talk TLS to the proxy.
            if self.proxy.is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "an HTTP proxy was given, but TLS is offloaded: the transport must tunnel \
                     through the proxy itself, before its TLS",
                ));
            }
            return Ok(FramingFactory::Plain);
        }
        FramingFactory::tls(&anchors, identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Action, Engine};
    use mqttrs::{decode_slice, Packet};

    /// Runs in the TLS build without public roots (tools/test.sh builds it for this test).
    #[cfg(all(feature = "tls", not(feature = "public-roots")))]
    #[test]
    fn without_public_roots_asking_for_them_is_refused_and_a_ca_is_needed() {
        let mut cfg = Config::default();
        // Refused for asking, before the PEM is read.
        let e = cfg
            .add_trust_anchors_pem(b"not a certificate", true)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfig, "{e}");
        assert!(e.to_string().contains("no public roots"), "{e}");
        let e = cfg.set_trust_anchors_pem(b"", true).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfig, "{e}");
        // A configuration left at its default trust has nothing to trust.
        let e = crate::layers::FramingFactory::tls(
            &crate::layers::TrustAnchors {
                use_default_roots: true,
                extra_pem: Vec::new(),
            },
            None,
        )
        .err()
        .unwrap();
        assert!(
            e.to_string().contains("add the CA that signs the server"),
            "{e}"
        );
    }

    const KEY: &str = "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=";

    fn config(key: KeyKind) -> Config {
        Config {
            id_scope: Some("0ne00000001".parse().unwrap()),
            registration_id: Some("dev-1".parse().unwrap()),
            key: Some(key),
            entropy: Some(crate::platform::entropy::test_source()),
            ..Config::default()
        }
    }

    fn code(cfg: &Config) -> ErrorKind {
        cfg.settings().err().expect("settings must be refused").kind
    }

    /// The first bytes the engine writes to the transport: with offload, a plain MQTT CONNECT.
    fn first_connect(cfg: &Config) -> (Option<Vec<u8>>, Vec<u8>) {
        let mut engine = Engine::new(cfg.settings().unwrap()).unwrap();
        engine.set_unix_time(1_700_000_000);
        engine.start(0).unwrap();
        assert!(matches!(engine.poll_action(), Some(Action::Connect { .. })));
        engine.on_connected(0);
        let out = engine.take_transmit();
        let password = match decode_slice(&out).unwrap().unwrap() {
            Packet::Connect(c) => c.password.map(<[u8]>::to_vec),
            other => panic!("first packet is {:?}, not CONNECT", other.get_type()),
        };
        (password, out.to_vec())
    }

    #[test]
    fn offload_sends_mqtt_in_the_clear_with_a_sas_password() {
        let mut cfg = config(KeyKind::Device(Zeroizing::new(KEY.into())));
        cfg.tls_offload = true;
        let (password, out) = first_connect(&cfg);
        assert_eq!(out[0], 0x10, "an MQTT CONNECT, not a TLS record");
        assert!(password.unwrap().starts_with(b"SharedAccessSignature sr="));
    }

    #[test]
    fn x509_by_the_transport_sends_no_password() {
        let mut cfg = config(KeyKind::X509ByTransport);
        cfg.tls_offload = true;
        let (password, _) = first_connect(&cfg);
        assert_eq!(password, None);
    }

    #[test]
    fn x509_by_the_transport_needs_offload() {
        let mut cfg = config(KeyKind::X509ByTransport);
        cfg.tls_offload = false;
        assert_eq!(code(&cfg), ErrorKind::InvalidConfig);
    }

    #[test]
    fn trust_anchors_with_offload_are_a_contradiction_not_ignored() {
        let mut cfg = config(KeyKind::Device(Zeroizing::new(KEY.into())));
        cfg.tls_offload = true;
        cfg.extra_anchors_pem = b"-----BEGIN CERTIFICATE-----".to_vec();
        assert_eq!(code(&cfg), ErrorKind::InvalidConfig);
        cfg.extra_anchors_pem.clear();
        cfg.use_default_roots = false;
        assert_eq!(code(&cfg), ErrorKind::InvalidConfig);
    }

    #[test]
    fn a_proxy_with_offload_is_a_contradiction() {
        let mut cfg = config(KeyKind::Device(Zeroizing::new(KEY.into())));
        cfg.tls_offload = true;
        cfg.proxy =
            Some(crate::layers::proxy::Proxy::new("proxy.example", 3128, None, None).unwrap());
        assert_eq!(code(&cfg), ErrorKind::InvalidConfig);
    }

    #[test]
    fn keep_alive_and_packet_limit_reach_the_connection() {
        let mut cfg = config(KeyKind::Device(Zeroizing::new(KEY.into())));
        cfg.tls_offload = true;
        cfg.set_keep_alive_secs(240).unwrap();
        cfg.set_max_packet_size(4096).unwrap();
        assert_eq!(cfg.settings().unwrap().max_packet_size, 4096);
        let (_, out) = first_connect(&cfg);
        match decode_slice(&out).unwrap().unwrap() {
            Packet::Connect(c) => assert_eq!(c.keep_alive, 240),
            other => panic!("first packet is {:?}, not CONNECT", other.get_type()),
        }
    }

    #[test]
    fn a_payload_that_fits_alone_may_not_fit_with_the_csr() {
        let mut cfg = config(KeyKind::Device(Zeroizing::new(KEY.into())));
        cfg.set_payload(Some(&format!("\"{}\"", "x".repeat(90_000))))
            .unwrap();
        assert!(cfg.settings().is_ok());
        let mut csr = vec![0x30, 0x82, 0x27, 0x10];
        csr.resize(4 + 0x2710, 0);
        cfg.set_csr(Some(&csr)).unwrap();
        let e = cfg.settings().err().expect("too large with the CSR");
        assert_eq!(e.kind, ErrorKind::InvalidPayload);
        assert!(
            e.detail
                .starts_with("the registration request (payload and CSR) is ")
                && e.detail
                    .ends_with("bytes; the service accepts at most 98304"),
            "{}",
            e.detail
        );
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_is_inside_the_library_by_default() {
        let cfg = config(KeyKind::Device(Zeroizing::new(KEY.into())));
        assert!(!cfg.tls_offload);
        let settings = cfg.settings().unwrap();
        assert!(matches!(settings.framing, FramingFactory::Tls(_)));
    }

    #[cfg(not(feature = "std"))]
    #[test]
    fn without_std_a_config_without_entropy_is_refused_before_dialling() {
        let mut cfg = config(KeyKind::Device(Zeroizing::new(KEY.into())));
        cfg.entropy = None;
        let e = cfg
            .settings()
            .err()
            .expect("no entropy source must be refused");
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
        assert!(e.detail.contains("dps_config_set_entropy"), "{}", e.detail);
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn without_the_tls_feature_offload_is_the_only_mode() {
        let mut cfg = config(KeyKind::Device(Zeroizing::new(KEY.into())));
        assert!(cfg.tls_offload);
        assert!(matches!(
            cfg.settings().unwrap().framing,
            FramingFactory::Plain
        ));
        cfg.tls_offload = false;
        assert_eq!(code(&cfg), ErrorKind::InvalidUnsupported);
    }
}
