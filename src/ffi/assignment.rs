//! `dps_assignment`: the stored provisioning result (a blob the firmware keeps in flash) and
//! the boot-time decision whether to provision. The format and the reasoning live in
//! `crate::dps::assignment`.

use crate::prelude::*;
use alloc::ffi::CString;
use core::ffi::c_char;
use core::ptr;

use super::client::{client_outcome, dps_client};
use super::{bytes_arg, guard, guard_value, try_ffi};
use crate::dps::assignment::{self, dps_hub_outcome, Assignment};
use crate::ffi::result::dps_result;

/// Longest blob `dps_client_assignment_save` writes (format version 1): a buffer of this size
/// always suffices.
pub const DPS_ASSIGNMENT_MAX_LEN: usize = 785;

/// Opaque stored assignment, read with `dps_assignment_parse`; free with
/// `dps_assignment_free`.
pub struct dps_assignment {
    inner: Assignment,
    assigned_hub: CString,
    device_id: CString,
    etag: Option<CString>,
}

/// Writes the last registration's assignment (hub, device id, etag, time of assignment by the
/// client's clock) as a small versioned, checksummed blob for the firmware to store (flash,
/// NVS, a file) and give to `dps_should_provision` / `dps_assignment_parse` at the next boot.
///
/// @param buf receives the blob; NULL to ask for the size. `DPS_ASSIGNMENT_MAX_LEN` bytes
///        always suffice.
/// @param written receives the blob's length on success, and the length needed with
///        `DPS_ERR_INVALID_BUFFER_TOO_SMALL`. Required.
/// @retval DPS_ERR_INVALID_BUFFER_TOO_SMALL when `buf` is NULL or `buf_len` is too small
///         (`*written` = the size needed, nothing else written).
/// @retval DPS_ERR_INVALID_STATE when the client's last attempt did not end assigned (or is
///         still running), or when called from inside a transport hook or the signing callback.
/// @retval DPS_ERR_INVALID_ASSIGNMENT when the service's hub, device id or etag is too long
///         to store (over 255 bytes).
#[no_mangle]
pub extern "C" fn dps_client_assignment_save(
    client: *const dps_client,
    buf: *mut u8,
    buf_len: usize,
    written: *mut usize,
) -> dps_result {
    guard(|| {
        if written.is_null() {
            return dps_result::DPS_ERR_INVALID_NULL_POINTER;
        }
        // SAFETY: the caller's pointer, valid per the C contract.
        let outcome = match unsafe { client_outcome(client) } {
            Ok(outcome) => outcome,
            Err(code) => return code,
        };
        let assigned = outcome.result.as_ref().is_some_and(|r| r.is_ok());
        let (Some(hub), Some(device_id), true) =
            (&outcome.assigned_hub, &outcome.device_id, assigned)
        else {
            return dps_result::DPS_ERR_INVALID_STATE;
        };
        let blob = try_ffi!(Assignment {
            assigned_hub: hub.clone(),
            device_id: device_id.clone(),
            etag: outcome.etag.clone(),
            assigned_at_unix: outcome.assigned_at_unix.unwrap_or(0),
        }
        .encode()
        .map_err(dps_result::from));
        if buf.is_null() || buf_len < blob.len() {
            // SAFETY: non-NULL and writable per the C contract.
            unsafe { written.write(blob.len()) };
            return dps_result::DPS_ERR_INVALID_BUFFER_TOO_SMALL;
        }
        // SAFETY: `buf` has `buf_len` >= `blob.len()` writable bytes per the C contract, and
        // `written` is writable.
        unsafe {
            ptr::copy_nonoverlapping(blob.as_ptr(), buf, blob.len());
            written.write(blob.len());
        }
        dps_result::DPS_OK
    })
}

/// Reads a blob written by `dps_client_assignment_save`.
///
/// @param out receives the assignment (free with `dps_assignment_free`); written only on
///        success.
/// @retval DPS_ERR_INVALID_ASSIGNMENT when the blob is truncated, corrupt (checksum) or of a
///         format version this library does not know.
/// @retval DPS_ERR_INVALID_NULL_POINTER when `out` is NULL, or `blob` is NULL with a
///         non-zero `blob_len`.
#[no_mangle]
pub extern "C" fn dps_assignment_parse(
    blob: *const u8,
    blob_len: usize,
    out: *mut *mut dps_assignment,
) -> dps_result {
    guard(|| {
        let oom_before = crate::platform::memory::oom_events();
        if out.is_null() {
            return dps_result::DPS_ERR_INVALID_NULL_POINTER;
        }
        // SAFETY: `blob` has `blob_len` readable bytes per the C contract.
        let bytes = try_ffi!(unsafe { bytes_arg(blob, blob_len) });
        let inner = try_ffi!(Assignment::decode(bytes).map_err(dps_result::from));
        // Decoded strings hold no NUL.
        let c = |s: &str| CString::new(s).unwrap_or_default();
        let parsed = Box::new(dps_assignment {
            assigned_hub: c(&inner.assigned_hub),
            device_id: c(&inner.device_id),
            etag: inner.etag.as_deref().map(c),
            inner,
        });
        let parsed = try_ffi!(super::new_handle(oom_before, parsed));
        // SAFETY: `out` is non-NULL and writable per the C contract.
        unsafe { out.write(parsed) };
        dps_result::DPS_OK
    })
}

/// Frees an assignment from `dps_assignment_parse`. NULL is a no-op.
#[no_mangle]
pub extern "C" fn dps_assignment_free(assignment: *mut dps_assignment) {
    guard_value((), || {
        if !assignment.is_null() {
            // SAFETY: a non-NULL pointer came from `dps_assignment_parse` and is freed once.
            drop(unsafe { Box::from_raw(assignment) });
        }
    });
}

fn field(
    assignment: *const dps_assignment,
    get: fn(&dps_assignment) -> Option<&CString>,
) -> *const c_char {
    guard_value(ptr::null(), || {
        // SAFETY: a non-NULL pointer is a live assignment per the C contract.
        unsafe { assignment.as_ref() }
            .and_then(get)
            .map_or(ptr::null(), |s| s.as_ptr())
    })
}

/// The stored assigned hub. Valid until `dps_assignment_free`; NULL for NULL.
#[no_mangle]
pub extern "C" fn dps_assignment_assigned_hub(assignment: *const dps_assignment) -> *const c_char {
    field(assignment, |a| Some(&a.assigned_hub))
}

/// The stored device id. Valid until `dps_assignment_free`; NULL for NULL.
#[no_mangle]
pub extern "C" fn dps_assignment_device_id(assignment: *const dps_assignment) -> *const c_char {
    field(assignment, |a| Some(&a.device_id))
}

/// The stored etag of the registration state. Valid until `dps_assignment_free`; NULL when
/// the service sent none (or for NULL).
#[no_mangle]
pub extern "C" fn dps_assignment_etag(assignment: *const dps_assignment) -> *const c_char {
    field(assignment, |a| a.etag.as_ref())
}

/// When the assignment was received, in UNIX seconds of the client's clock (0 for NULL).
/// Firmware can use it to space out provisioning attempts when a hub keeps rejecting a freshly
/// provisioned device.
#[no_mangle]
pub extern "C" fn dps_assignment_assigned_at_unix(assignment: *const dps_assignment) -> u64 {
    guard_value(0, || {
        // SAFETY: a non-NULL pointer is a live assignment per the C contract.
        unsafe { assignment.as_ref() }.map_or(0, |a| a.inner.assigned_at_unix)
    })
}

/// Whether to provision now, from the stored blob and what the stored hub said; call it at
/// boot with `DPS_HUB_NOT_TRIED`, and again after a failed hub connection. True when nothing
/// valid is stored (NULL or empty, truncated, corrupt, unknown version) or the hub rejected
/// the device (moved, deleted, re-enrolled); false while the hub is untried, connected or
/// merely unreachable (an outage must not send the fleet back to DPS on every boot).
///
/// @param hub_outcome a `dps_hub_outcome` value; unknown values count as
///        `DPS_HUB_NOT_TRIED` (a valid assignment is kept).
#[no_mangle]
pub extern "C" fn dps_should_provision(blob: *const u8, blob_len: usize, hub_outcome: u32) -> bool {
    guard_value(true, || {
        // SAFETY: `blob` has `blob_len` readable bytes per the C contract.
        let stored = unsafe { bytes_arg(blob, blob_len) }.ok();
        assignment::should_provision(stored, dps_hub_outcome::from_u32(hub_outcome))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn max_len_matches_the_format() {
        assert_eq!(
            super::DPS_ASSIGNMENT_MAX_LEN,
            crate::dps::assignment::MAX_BLOB_LEN
        );
    }
}
