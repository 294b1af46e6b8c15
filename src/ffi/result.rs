//! Result codes for C: names, messages and classes by integer value.

use core::ffi::c_char;

use super::guard_value;
use crate::error::{dps_class, dps_result};

/// A static, human-readable description of a result code, e.g. "the deadline passed".
/// Unknown values give "unknown result code". Never NULL; never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn dps_result_str(result: u32) -> *const c_char {
    guard_value(c"internal panic".as_ptr(), || {
        dps_result::from_u32(result)
            .map_or(c"unknown result code".as_ptr(), |r| r.message_c().as_ptr())
    })
}

/// The code's C name as a static string, e.g. "DPS_ERR_TIMEOUT". Unknown values give
/// "DPS_ERR_UNKNOWN". Never NULL; never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn dps_result_name(result: u32) -> *const c_char {
    guard_value(c"DPS_ERR_PANIC".as_ptr(), || {
        dps_result::from_u32(result).map_or(c"DPS_ERR_UNKNOWN".as_ptr(), |r| r.name_c().as_ptr())
    })
}

/// The class of a result code (what the CLI's exit code follows). Unknown values are
/// `DPS_CLASS_INTERNAL`. Thread-safe.
#[no_mangle]
pub extern "C" fn dps_result_class(result: u32) -> dps_class {
    guard_value(dps_class::DPS_CLASS_INTERNAL, || {
        dps_result::from_u32(result).map_or(dps_class::DPS_CLASS_INTERNAL, |r| r.class())
    })
}

/// Whether starting a new attempt on the same handle may succeed without changing the
/// configuration (transport and protocol errors, timeouts). Unknown values give false.
#[no_mangle]
pub extern "C" fn dps_result_is_retryable(result: u32) -> bool {
    guard_value(false, || {
        dps_result::from_u32(result).is_some_and(|r| r.is_retryable())
    })
}
