//! Stand-alone helpers: group-key derivation, SAS tokens, version.

use core::ffi::c_char;

use super::{guard, str_arg, try_ffi};
use crate::dps::sas::{self, HexCase, KeySigner};
use crate::ffi::result::dps_result;

/// Major version of the library, matching Cargo.toml.
pub const DPS_VERSION_MAJOR: u32 = 0;
/// Minor version of the library, matching Cargo.toml.
pub const DPS_VERSION_MINOR: u32 = 1;
/// Patch version of the library, matching Cargo.toml.
pub const DPS_VERSION_PATCH: u32 = 0;

/// Copies `text` and a NUL into `out` if it fits; `written` gets the length without the NUL.
///
/// # Safety
/// `out` must be NULL or have `out_len` writable bytes; `written` NULL or writable.
unsafe fn write_out(
    text: &str,
    out: *mut c_char,
    out_len: usize,
    written: *mut usize,
) -> dps_result {
    if out.is_null() {
        return dps_result::DPS_ERR_INVALID_NULL_POINTER;
    }
    if text.len() >= out_len {
        return dps_result::DPS_ERR_INVALID_ARGUMENT;
    }
    // SAFETY: `out` has `out_len` > `text.len()` writable bytes per the contract.
    unsafe {
        core::ptr::copy_nonoverlapping(text.as_ptr(), out.cast::<u8>(), text.len());
        out.add(text.len()).write(0);
    }
    if !written.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { written.write(text.len()) };
    }
    dps_result::DPS_OK
}

/// Derives a device's key from its enrollment group's key:
/// base64(HMAC-SHA256(base64decode(group_key), registration_id)).
///
/// @param out buffer receiving the NUL-terminated base64 key (45 bytes suffice).
/// @param written receives the key's length without the NUL; may be NULL.
/// @retval DPS_ERR_INVALID_ARGUMENT when `out_len` is too small (nothing written).
/// @retval DPS_ERR_INVALID_KEY when the group key is not base64.
#[no_mangle]
pub extern "C" fn dps_derive_group_key(
    group_key_base64: *const c_char,
    registration_id: *const c_char,
    out: *mut c_char,
    out_len: usize,
    written: *mut usize,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's strings, valid per the C contract.
        let group = try_ffi!(unsafe { str_arg(group_key_base64) });
        // SAFETY: as above.
        let reg = try_ffi!(unsafe { str_arg(registration_id) });
        let key = try_ffi!(sas::derive_device_key(group, reg).map_err(dps_result::from));
        // SAFETY: the caller's output buffer, valid per the C contract.
        unsafe { write_out(&key, out, out_len, written) }
    })
}

/// Builds the SAS token a device sends as its MQTT password:
/// `SharedAccessSignature sr=...&sig=...&se=<expiry>&skn=registration`, with the resource URI
/// percent-encoded in lower-case hex (`%2f`).
///
/// @param expiry_unix_seconds when the token stops being valid.
/// @param out buffer receiving the NUL-terminated token (512 bytes suffice).
/// @param written receives the token's length without the NUL; may be NULL.
/// @retval DPS_ERR_INVALID_ARGUMENT when `out_len` is too small (nothing written).
#[no_mangle]
pub extern "C" fn dps_sas_token(
    id_scope: *const c_char,
    registration_id: *const c_char,
    key_base64: *const c_char,
    expiry_unix_seconds: u64,
    out: *mut c_char,
    out_len: usize,
    written: *mut usize,
) -> dps_result {
    guard(|| {
        // SAFETY: the caller's strings, valid per the C contract.
        let scope = try_ffi!(unsafe { str_arg(id_scope) });
        // SAFETY: as above.
        let reg = try_ffi!(unsafe { str_arg(registration_id) });
        // SAFETY: as above.
        let key = try_ffi!(unsafe { str_arg(key_base64) });
        let signer = try_ffi!(KeySigner::from_base64(key).map_err(dps_result::from));
        // Zeroizing: the token is wiped when it goes out of scope.
        let token =
            try_ffi!(
                sas::sas_token(scope, reg, &signer, expiry_unix_seconds, HexCase::Lower)
                    .map_err(dps_result::from)
            );
        // SAFETY: the caller's output buffer, valid per the C contract.
        unsafe { write_out(&token, out, out_len, written) }
    })
}

/// The library's version, e.g. "0.1.0". Static; never free it.
#[no_mangle]
pub extern "C" fn dps_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_cargo() {
        assert_eq!(
            DPS_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            DPS_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            DPS_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
    }
}
