//! Randomness: where the library's unpredictable bytes come from.
//!
//! Three uses, with different needs:
//! - WebSocket masking keys and the handshake nonce (RFC 6455 asks for unpredictable keys, so
//!   that a client cannot be made to send chosen bytes through a cache);
//! - the jitter of back-off and retries (spread only: devices that lost power together must
//!   not reconnect in lock-step);
//! - with the `tls` feature, TLS itself, which takes its randomness from the crypto provider
//!   (the operating system's), never from here.
//!
//! Hosted builds read the operating system's source. Without `std` there is none: the
//! firmware passes one (`dps_config_set_entropy`), and a client without it is refused at
//! creation rather than falling back to a constant.

use crate::prelude::*;
use alloc::sync::Arc;

use crate::error::{Error, ErrorKind, Result};

/// A source of unpredictable bytes.
pub trait EntropySource {
    /// Fills `buf` entirely, or fails.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
}

impl<F: Fn(&mut [u8]) -> Result<()>> EntropySource for F {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        self(buf)
    }
}

/// A shared entropy source: a configuration's, copied into each client made from it.
pub type Entropy = Arc<dyn EntropySource + Send + Sync>;

/// The error for a source that failed.
pub fn failed(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::EntropyFailed, detail)
}

/// The operating system's random source.
#[cfg(feature = "std")]
pub fn os_random(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf)
        .map_err(|e| failed(format!("the operating system gave no random bytes: {e}")))
}

/// The source used when the configuration names none: the operating system's, or none at all
/// without `std`.
pub fn default_source() -> Option<Entropy> {
    #[cfg(feature = "std")]
    return Some(Arc::new(os_random));
    #[cfg(not(feature = "std"))]
    return None;
}

/// Eight bytes from `source` as a seed.
pub fn seed(source: &dyn EntropySource) -> Result<u64> {
    let mut bytes = [0u8; 8];
    source.fill(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// A fixed source for unit tests, which must run without an operating system's source too.
#[cfg(test)]
pub(crate) fn test_source() -> Entropy {
    Arc::new(|buf: &mut [u8]| {
        buf.fill(0x5a);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_source_is_an_entropy_error() {
        let source = |_: &mut [u8]| Err(failed("no"));
        assert_eq!(seed(&source).unwrap_err().kind, ErrorKind::EntropyFailed);
    }

    #[cfg(not(feature = "std"))]
    #[test]
    fn without_std_there_is_no_default_source() {
        assert!(default_source().is_none());
    }
}
