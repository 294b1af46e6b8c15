//! What the core needs from the platform that is not the transport or the clock, kept
//! portable: randomness (`entropy`) and the library's heap accounting (`memory`). The hooks
//! that fill them in from C are in `ffi::platform`; hosted defaults in `hosted`.

pub mod entropy;
pub mod memory;
