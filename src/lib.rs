//! dps-mqtt: an Azure IoT Device Provisioning Service client over MQTT, with a C ABI.
//!
//! Layers, from the wire up (see the design notes in the README):
//! `sas` and `protocol` (pure functions) → `mqtt` (MQTT 3.1.1 session, sans-IO) →
//! `tls` (rustls client or pass-through) → `engine` (registration state machine, sans-IO) →
//! `driver` (pumps bytes through the C transport hooks) → `ffi` (the C ABI; the only unsafe code).

#![forbid(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod protocol;
pub mod sas;
