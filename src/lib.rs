//! dps-mqtt: an Azure IoT Device Provisioning Service client over MQTT, with a C ABI.
//!
//! Layers, from the wire up:
//! `sas` and `protocol` (pure functions) → `mqtt` (MQTT 3.1.1 session, sans-IO) →
//! `framing`/`tls` (rustls client, or pass-through when the firmware offloads TLS) →
//! `engine` (registration state machine, sans-IO) → `driver` (pumps bytes through a
//! `Transport` and reads a `Time`) → `ffi` (the C ABI; the only unsafe code).
//! `config` builds the engine's settings; `hosted` has a TCP transport and clocks for
//! operating systems.

// Unsafe code lives in `ffi` only (it allows it for itself); everywhere else it is an error.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod assignment;
pub mod config;
pub mod driver;
pub mod engine;
pub mod error;
pub mod ffi;
pub mod framing;
pub mod hosted;
pub mod mqtt;
pub mod protocol;
pub mod proxy;
pub mod sas;
#[cfg(feature = "tls")]
pub mod tls;
mod wipe;
pub mod ws;
pub mod x509;
