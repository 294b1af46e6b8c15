//! The C ABI. The only module with `unsafe` code; it holds no protocol logic.
//!
//! Conventions (see STYLE.md): every export is a literal `#[no_mangle] pub extern "C" fn`
//! whose body runs inside `guard`, so a panic becomes `DPS_ERR_PANIC` and never unwinds into
//! C; every pointer is checked for NULL before use; outputs are written only on success.
//! Types carry their C names (`dps_client`, ...) so the header reads as C.

#![allow(non_camel_case_types)]
#![allow(unsafe_code)]
// Exports take raw pointers from C, where an `unsafe fn` marker means nothing; instead each one
// NULL-checks its pointers and documents what it requires of them (as rustls-ffi does).
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod assignment;
pub mod client;
pub mod config;
pub mod entropy;
pub mod helpers;
pub mod platform;
pub mod result;
pub mod signing;
pub mod transport;

use core::ffi::{c_char, CStr};
#[cfg(feature = "std")]
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::ffi::result::dps_result;
use crate::prelude::*;

/// Runs an export's body, turning a panic into `DPS_ERR_PANIC`, and an allocation the
/// firmware's allocator refused during it into `DPS_ERR_OUT_OF_MEMORY`.
pub(crate) fn guard(body: impl FnOnce() -> dps_result) -> dps_result {
    let before = crate::platform::memory::oom_events();
    let result = guard_value(dps_result::DPS_ERR_PANIC, body);
    if crate::platform::memory::oom_events() != before && result == dps_result::DPS_OK {
        return dps_result::DPS_ERR_OUT_OF_MEMORY;
    }
    result
}

/// Hands a new handle to C, unless the firmware's allocator refused a request since
/// `oom_before` (a reading of `memory::oom_events`): then the handle, built partly from the
/// reserve, is dropped so the reserve is whole again, and the call fails.
pub(crate) fn new_handle<T>(oom_before: u32, handle: Box<T>) -> Result<*mut T, dps_result> {
    if crate::platform::memory::oom_events() != oom_before {
        drop(handle);
        return Err(dps_result::DPS_ERR_OUT_OF_MEMORY);
    }
    Ok(Box::into_raw(handle))
}

/// Runs an export's body that returns a plain value, giving `fallback` on panic.
#[cfg(feature = "std")]
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Without std a panic cannot be caught: it aborts through the panic handler (see
/// `platform`), so the body simply runs.
#[cfg(not(feature = "std"))]
pub(crate) fn guard_value<T>(_fallback: T, body: impl FnOnce() -> T) -> T {
    body()
}

/// Borrows a NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that stays valid and unmodified for
/// `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char) -> Result<&'a str, dps_result> {
    if ptr.is_null() {
        return Err(dps_result::DPS_ERR_INVALID_NULL_POINTER);
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|_| dps_result::DPS_ERR_INVALID_UTF8)
}

/// Borrows a (pointer, length) byte buffer argument. A zero length accepts any pointer.
///
/// # Safety
/// When `len > 0`, `ptr` must be NULL or point to `len` readable bytes valid for `'a`.
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], dps_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(dps_result::DPS_ERR_INVALID_NULL_POINTER);
    }
    // SAFETY: non-NULL with `len` readable bytes per this function's contract.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Early-returns the error code of a `Result<_, dps_result>`.
macro_rules! try_ffi {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}
pub(crate) use try_ffi;
