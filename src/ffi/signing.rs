//! External signing: the SAS HMAC computed by the firmware (HSM, TPM, secure element), so the
//! device key never enters the library's memory.

use crate::prelude::*;
use core::ffi::c_void;

use zeroize::Zeroizing;

use crate::dps::sas::Signer;
use crate::error::{Error, ErrorKind, Result};

/// Length of the signature a `dps_sign_fn` writes: an HMAC-SHA256.
pub const DPS_SIGNATURE_LEN: usize = 32;

/// Computes HMAC-SHA256 with the device key over `data` (the SAS string-to-sign
/// `<idScope>%2fregistrations%2f<registrationId>\n<expiry>`, exactly as sent) and writes the
/// 32-byte result to `signature` (`signature_len` is `DPS_SIGNATURE_LEN`).
///
/// Called once per connection, on the thread driving the client, from inside
/// `dps_client_do_work` / `dps_client_register`. It must not call back into that client:
/// driving calls return `DPS_ERR_INVALID_STATE` and getters return NULL/0 while it runs.
/// `data` and `signature` are valid only during the call.
///
/// @return 0 on success; any other value fails the attempt with
///         `DPS_ERR_AUTH_SIGNING_FAILED` (not retried by the library).
pub type dps_sign_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        data: *const u8,
        data_len: usize,
        signature: *mut u8,
        signature_len: usize,
    ) -> i32,
>;

/// The firmware's signing callback seen as a `Signer`.
pub(crate) struct CallbackSigner {
    sign: unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut u8, usize) -> i32,
    user: *mut c_void,
}

// SAFETY: the library never dereferences `user`; it only hands it back to the firmware's
// callback on the thread that drives a client, which is what the C contract allows (a config,
// and so its callback, may serve clients driven from different threads: documented).
unsafe impl Send for CallbackSigner {}
// SAFETY: as above; `sign` takes `&self` and holds no Rust state that could race.
unsafe impl Sync for CallbackSigner {}

impl CallbackSigner {
    /// `None` for a NULL callback.
    pub(crate) fn new(sign: dps_sign_fn, user: *mut c_void) -> Option<CallbackSigner> {
        sign.map(|sign| CallbackSigner { sign, user })
    }
}

impl Signer for CallbackSigner {
    fn sign(&self, message: &[u8]) -> Result<[u8; 32]> {
        let mut signature = Zeroizing::new([0u8; DPS_SIGNATURE_LEN]);
        // SAFETY: the firmware's callback for this config; `message` and `signature` are valid
        // for reads of `message.len()` and writes of 32 bytes for the duration of the call.
        let rc = unsafe {
            (self.sign)(
                self.user,
                message.as_ptr(),
                message.len(),
                signature.as_mut_ptr(),
                signature.len(),
            )
        };
        if rc != 0 {
            return Err(Error::new(
                ErrorKind::AuthSigningFailed,
                format!("the signing callback returned {rc}"),
            ));
        }
        Ok(*signature)
    }
}
