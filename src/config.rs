//! The configuration builder behind `dps_config`: plain safe Rust, validated when a client is
//! built from it so that every mistake is reported before anything is dialled.

use zeroize::Zeroizing;

use crate::engine::{Credential, Settings, Timing};
use crate::error::{dps_result, Error, Result};
use crate::framing::{FramingFactory, TrustAnchors};
use crate::protocol;
use crate::sas::{self, HexCase, KeySigner};

/// The global DPS endpoint.
pub const DEFAULT_HOST: &str = "global.azure-devices-provisioning.net";
/// MQTT over TLS.
pub const DEFAULT_PORT: u16 = 8883;
pub use crate::mqtt::DEFAULT_MAX_PACKET_SIZE;

#[derive(Clone)]
pub enum KeyKind {
    /// The device's own symmetric key (individual enrollment).
    Device(Zeroizing<String>),
    /// The enrollment group's key; the device key is derived from it and the registration id.
    Group(Zeroizing<String>),
    /// An X.509 client certificate and its key (individual or group X.509 enrollment).
    X509(ClientCertificate),
}

/// An X.509 client certificate as given: the chain (PEM, leaf first; or one DER certificate)
/// and the private key (PEM or DER; PKCS#8, PKCS#1 or SEC1), wiped on drop. Parsed and
/// checked against the registration id by [`Config::settings`].
#[derive(Clone)]
pub struct ClientCertificate {
    pub chain: Vec<u8>,
    pub key: Zeroizing<Vec<u8>>,
}

#[cfg(feature = "tls")]
impl ClientCertificate {
    /// The TLS identity and the leaf certificate's subject CN.
    pub fn parse(&self) -> Result<(crate::tls::ClientIdentity, String)> {
        let identity = crate::tls::ClientIdentity::parse(&self.chain, &self.key)?;
        let leaf = identity.chain.first().ok_or_else(|| {
            Error::new(
                dps_result::DPS_ERR_INVALID_CERTIFICATE,
                "no client certificate",
            )
        })?;
        let cn = crate::x509::common_name(leaf)?;
        Ok((identity, cn))
    }
}

/// The registration id to use with an X.509 certificate whose subject CN is `cn`: the one
/// configured, which must equal the CN (ids are case-insensitive), or else the CN itself.
fn x509_registration_id(configured: Option<&str>, cn: &str) -> Result<String> {
    let id = match configured {
        Some(id) if !id.eq_ignore_ascii_case(cn) => {
            return Err(Error::new(
                dps_result::DPS_ERR_INVALID_CERTIFICATE_CN,
                format!(
                    "registration id {id:?} does not match the client certificate's subject CN \
                     {cn:?}; with X.509 they must be equal (or set no registration id to use the CN)"
                ),
            ))
        }
        Some(id) => id,
        None => cn,
    };
    protocol::validate_registration_id(id).map_err(|e| {
        Error::new(
            e.code,
            format!("the client certificate's CN {cn:?} is not a valid registration id"),
        )
    })?;
    Ok(id.to_owned())
}

#[derive(Clone)]
pub struct Config {
    pub id_scope: Option<String>,
    pub registration_id: Option<String>,
    pub key: Option<KeyKind>,
    pub host: String,
    pub port: u16,
    pub api_version: String,
    pub client_version: Option<String>,
    pub payload: Option<String>,
    pub use_default_roots: bool,
    pub extra_anchors_pem: Vec<u8>,
    pub timing: Timing,
    pub max_packet_size: usize,
    pub hex_case: HexCase,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id_scope: None,
            registration_id: None,
            key: None,
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            api_version: protocol::DEFAULT_API_VERSION.to_owned(),
            client_version: Some(concat!("dps-mqtt/", env!("CARGO_PKG_VERSION")).to_owned()),
            payload: None,
            use_default_roots: true,
            extra_anchors_pem: Vec::new(),
            timing: Timing::default(),
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            hex_case: HexCase::Lower,
        }
    }
}

// Trust anchors: added to (`add`) or replacing (`set`) those given before.
impl Config {
    /// Appends the certificates in `pem` to the trust anchors; `use_public_roots` says whether
    /// the built-in public roots stay trusted too. `DPS_ERR_INVALID_CERTIFICATE` (and no
    /// change) when `pem` holds no readable certificate.
    pub fn add_trust_anchors_pem(&mut self, pem: &[u8], use_public_roots: bool) -> Result<()> {
        crate::framing::check_anchors_pem(pem)?;
        self.extra_anchors_pem.extend_from_slice(pem);
        self.extra_anchors_pem.push(b'\n');
        self.use_default_roots = use_public_roots;
        Ok(())
    }

    /// Replaces every anchor added before with the certificates in `pem`. An empty `pem` with
    /// `use_public_roots` goes back to the public roots alone; an empty `pem` without them
    /// would trust nothing and is `DPS_ERR_INVALID_CERTIFICATE`, as is a `pem` holding no
    /// readable certificate (the anchors are then left unchanged).
    pub fn set_trust_anchors_pem(&mut self, pem: &[u8], use_public_roots: bool) -> Result<()> {
        if pem.is_empty() && use_public_roots {
            self.extra_anchors_pem.clear();
            self.use_default_roots = true;
            return Ok(());
        }
        crate::framing::check_anchors_pem(pem)?;
        self.extra_anchors_pem.clear();
        self.add_trust_anchors_pem(pem, use_public_roots)
    }
}

impl Config {
    /// Checks the configuration and builds the engine's settings.
    pub fn settings(&self) -> Result<Settings> {
        let id_scope = self
            .id_scope
            .clone()
            .ok_or_else(|| Error::new(dps_result::DPS_ERR_INVALID_CONFIG, "no id scope set"))?;
        protocol::validate_id_scope(&id_scope)?;
        let mut identity = None;
        let registration_id = match &self.key {
            Some(KeyKind::X509(certificate)) => {
                let (tls_identity, cn) = certificate.parse()?;
                identity = Some(tls_identity);
                x509_registration_id(self.registration_id.as_deref(), &cn)?
            }
            _ => self.registration_id.clone().ok_or_else(|| {
                Error::new(dps_result::DPS_ERR_INVALID_CONFIG, "no registration id set")
            })?,
        };
        protocol::validate_registration_id(&registration_id)?;
        let credential = match &self.key {
            Some(KeyKind::Device(key)) => Credential::Sas(Box::new(KeySigner::from_base64(key)?)),
            Some(KeyKind::Group(group)) => {
                let device_key = sas::derive_device_key(group, &registration_id)?;
                Credential::Sas(Box::new(KeySigner::from_base64(&device_key)?))
            }
            Some(KeyKind::X509(_)) => Credential::X509,
            None => {
                return Err(Error::new(
                    dps_result::DPS_ERR_INVALID_CONFIG,
                    "no credential set (symmetric key, group key or client certificate)",
                ))
            }
        };
        if self.max_packet_size < 1024 {
            return Err(Error::new(
                dps_result::DPS_ERR_INVALID_CONFIG,
                "maximum packet size below 1024 bytes",
            ));
        }
        let anchors = TrustAnchors {
            use_default_roots: self.use_default_roots,
            extra_pem: self.extra_anchors_pem.clone(),
        };
        let framing = FramingFactory::tls(&anchors, identity)?;
        Ok(Settings {
            id_scope,
            registration_id,
            credential,
            host: self.host.clone(),
            port: self.port,
            api_version: self.api_version.clone(),
            client_version: self.client_version.clone(),
            payload: self.payload.clone(),
            framing,
            timing: self.timing.clone(),
            max_packet_size: self.max_packet_size,
            hex_case: self.hex_case,
        })
    }
}
