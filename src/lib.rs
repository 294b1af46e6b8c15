//! dps-mqtt: an Azure IoT Device Provisioning Service client over MQTT, with a C ABI.
//!
//! A folder per layer, from the C edge down:
//! - `ffi`: the C ABI, the only unsafe code (handles, hooks, result mapping, the global
//!   allocator and the panic handler of firmware builds);
//! - `engine`: the `Client` façade (owns engine, transport and clock; pumps bytes through a
//!   `Transport` and reads a `Time`) over the sans-IO registration: attempt, link, retry
//!   policy, outcome;
//! - `layers`: the byte layers, each bytes in, bytes out (proxy tunnel, TLS or offload,
//!   WebSocket, MQTT);
//! - `dps`: topics, bodies, responses, SAS, the X.509 CN, the assignment blob;
//! - `platform`: entropy and heap accounting, portable; `hosted` (feature `std`): the TCP
//!   transport and system clock for operating systems.
//!
//! `settings` holds each setting as a validated type, parsed once where it is set; `config`
//! gathers them and checks the rules that join several; `error` holds the error kinds and the one table of result codes
//! (their C names and values are `ffi::result`'s). Everything but `hosted` and
//! `layers::tls` builds without `std`.

// Without the `std` feature the library is `no_std` + `alloc` (firmware). Unit tests always
// have std: the test harness needs it.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
// Unsafe code lives in `ffi` only (it allows it for itself); everywhere else it is an error.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
// No panic paths in the library's own code: firmware builds abort on a panic. Exceptions are
// `#[allow]`s on the smallest item, each with a `// why:`. Tests may panic: that is how they fail.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

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

pub mod config;
pub mod dps;
pub mod engine;
pub mod error;
pub mod ffi;
#[cfg(feature = "std")]
pub mod hosted;
pub mod layers;
pub mod platform;
pub mod settings;
