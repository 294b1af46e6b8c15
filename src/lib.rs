//! dps-mqtt: an Azure IoT Device Provisioning Service client over MQTT, with a C ABI.
//!
//! Layers, from the wire up:
//! `sas` and `protocol` (pure functions) → `mqtt` (MQTT 3.1.1 session, sans-IO) →
//! `framing`/`tls` (rustls client, or pass-through when the firmware offloads TLS) →
//! `engine` (registration state machine, sans-IO) → `driver` (pumps bytes through a
//! `Transport` and reads a `Time`) → `ffi` (the C ABI; the only unsafe code).
//! `config` builds the engine's settings; `hosted` has a TCP transport and clocks for
//! operating systems.

// Without the `std` feature the library is `no_std` + `alloc` (firmware). Unit tests always
// have std: the test harness needs it.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
// Unsafe code lives in `ffi` only (it allows it for itself); everywhere else it is an error.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

/// The `alloc` names std's prelude gives hosted code, for every module to import alike in
/// `no_std` builds.
pub(crate) mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    #[allow(unused_imports)] // std builds take `vec!` from the std prelude
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

pub mod assignment;
pub mod config;
pub mod driver;
pub mod engine;
pub mod entropy;
pub mod error;
pub mod ffi;
pub mod framing;
#[cfg(feature = "std")]
pub mod hosted;
pub mod memory;
pub mod mqtt;
pub mod protocol;
pub mod proxy;
pub mod sas;
#[cfg(feature = "tls")]
pub mod tls;
mod wipe;
pub mod ws;
pub mod x509;
