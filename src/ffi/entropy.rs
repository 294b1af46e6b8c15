//! The firmware's entropy callback seen as an `EntropySource`.

use core::ffi::c_void;

use crate::error::Result;
use crate::platform::entropy::{self, EntropySource};

/// Fills `buf` with `len` unpredictable bytes: a hardware TRNG, or a DRBG seeded from one.
/// What each use needs: WebSocket masking keys must be unpredictable to the network (RFC
/// 6455); back-off jitter only needs to differ between devices; TLS inside the library takes
/// its randomness from its crypto provider, not from here. Called on the thread driving a
/// client, from inside `dps_client_do_work` / `dps_client_register`; must not call back into
/// that client. `buf` is valid only during the call.
///
/// @return 0 when all `len` bytes were written; any other value ends the attempt with
///         `DPS_ERR_ENTROPY_FAILED`.
pub type dps_entropy_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, buf: *mut u8, len: usize) -> i32>;

pub(crate) struct CallbackEntropy {
    fill: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> i32,
    user: *mut c_void,
}

// SAFETY: the library never dereferences `user`; it only hands it back to the firmware's
// callback on the thread driving a client, which the C contract allows (documented on
// `dps_config_set_entropy`: thread-safe when clients run on several threads).
unsafe impl Send for CallbackEntropy {}
// SAFETY: as above; `fill` takes `&self` and holds no Rust state that could race.
unsafe impl Sync for CallbackEntropy {}

impl CallbackEntropy {
    /// `None` for a NULL callback.
    pub(crate) fn new(fill: dps_entropy_fn, user: *mut c_void) -> Option<CallbackEntropy> {
        fill.map(|fill| CallbackEntropy { fill, user })
    }
}

impl EntropySource for CallbackEntropy {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        // SAFETY: the firmware's callback for this config; `buf` is valid for writes of
        // `buf.len()` bytes for the duration of the call.
        let rc = unsafe { (self.fill)(self.user, buf.as_mut_ptr(), buf.len()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(entropy::failed(alloc::format!(
                "the entropy callback returned {rc}"
            )))
        }
    }
}
