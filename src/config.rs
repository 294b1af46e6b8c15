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
    /// MQTT over WebSocket (port 443 unless the port was set explicitly).
    pub websocket: bool,
    /// Whether the port was chosen by the user (`set_endpoint`) rather than defaulted.
    pub port_explicit: bool,
    /// An HTTP CONNECT proxy to tunnel through.
    pub proxy: Option<crate::proxy::Proxy>,
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
            websocket: false,
            port_explicit: false,
            proxy: None,
        }
    }
}

impl Config {
    /// Sets the server's host and port; the port then stays whatever transport is chosen.
    pub fn set_endpoint(&mut self, host: &str, port: u16) {
        self.host = host.to_owned();
        self.port = port;
        self.port_explicit = true;
    }

    /// Turns MQTT over WebSocket on or off. Unless the port was set explicitly, it follows:
    /// 443 with WebSocket, 8883 without.
    pub fn set_websocket(&mut self, enabled: bool) {
        self.websocket = enabled;
        if !self.port_explicit {
            self.port = if enabled {
                crate::ws::DEFAULT_PORT
            } else {
                DEFAULT_PORT
            };
        }
    }

    /// Checks the configuration and builds the engine's settings.
    pub fn settings(&self) -> Result<Settings> {
        let id_scope = self
            .id_scope
            .clone()
            .ok_or_else(|| Error::new(dps_result::DPS_ERR_INVALID_CONFIG, "no id scope set"))?;
        let registration_id = self.registration_id.clone().ok_or_else(|| {
            Error::new(dps_result::DPS_ERR_INVALID_CONFIG, "no registration id set")
        })?;
        protocol::validate_id_scope(&id_scope)?;
        protocol::validate_registration_id(&registration_id)?;
        let signer = match &self.key {
            Some(KeyKind::Device(key)) => KeySigner::from_base64(key)?,
            Some(KeyKind::Group(group)) => {
                let device_key = sas::derive_device_key(group, &registration_id)?;
                KeySigner::from_base64(&device_key)?
            }
            None => {
                return Err(Error::new(
                    dps_result::DPS_ERR_INVALID_CONFIG,
                    "no credential set (symmetric key or group key)",
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
        let framing = FramingFactory::tls(&anchors)?;
        Ok(Settings {
            id_scope,
            registration_id,
            credential: Credential::Sas(Box::new(signer)),
            host: self.host.clone(),
            port: self.port,
            api_version: self.api_version.clone(),
            client_version: self.client_version.clone(),
            payload: self.payload.clone(),
            framing,
            timing: self.timing.clone(),
            max_packet_size: self.max_packet_size,
            hex_case: self.hex_case,
            route: crate::framing::Route {
                websocket: self.websocket,
                proxy: self.proxy.clone(),
            },
        })
    }
}
