//! SAS tokens and group-key derivation.
//!
//! Token: `SharedAccessSignature sr={sr}&sig={urlenc(sig)}&se={expiry}&skn=registration`, where
//! `sr` is the percent-encoded `{idScope}/registrations/{registrationId}` and
//! `sig = base64(HMAC-SHA256(key, sr + "\n" + expiry))` over the exact `sr` bytes sent. `skn` is
//! not signed: Microsoft's C SDK (`az_iot_provisioning_client_sas_get_signature`) signs only
//! `sr\nse` and appends `skn` only when given a key name; we always send `skn=registration`, as
//! the service's documentation and the other SDKs do. The service verifies the `sr` bytes it
//! received, so the hex case of the percent-encoding is free; the library sends lower case
//! (`%2f`) by default, as the published vector and the C SDK's `/` separators do.

use crate::prelude::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// Signs with HMAC-SHA256. Implemented over a key in RAM here; an HSM or secure element can
/// implement it without exposing the key.
pub trait Signer {
    fn sign(&self, message: &[u8]) -> Result<[u8; 32]>;
}

/// A signer shared by several clients (an external signer set once on a config).
impl<S: Signer + ?Sized> Signer for alloc::sync::Arc<S> {
    fn sign(&self, message: &[u8]) -> Result<[u8; 32]> {
        (**self).sign(message)
    }
}

/// A symmetric key held in RAM, zeroized on drop.
pub struct KeySigner {
    key: Zeroizing<Vec<u8>>,
}

impl KeySigner {
    /// Decodes a base64 key; an empty or malformed one is `ErrorKind::InvalidKey`.
    pub fn from_base64(key_b64: &str) -> Result<KeySigner> {
        let key = Zeroizing::new(
            STANDARD
                .decode(key_b64.trim().as_bytes())
                .map_err(|_| Error::new(ErrorKind::InvalidKey, "key is not base64"))?,
        );
        if key.is_empty() {
            return Err(Error::new(ErrorKind::InvalidKey, "key is empty"));
        }
        Ok(KeySigner { key })
    }
}

impl Signer for KeySigner {
    fn sign(&self, message: &[u8]) -> Result<[u8; 32]> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .map_err(|_| Error::new(ErrorKind::InvalidKey, "unusable key"))?;
        mac.update(message);
        Ok(mac.finalize().into_bytes().into())
    }
}

/// base64(HMAC-SHA256(base64decode(key), message)).
pub fn sign_base64(key_b64: &str, message: &[u8]) -> Result<Zeroizing<String>> {
    let sig = Zeroizing::new(KeySigner::from_base64(key_b64)?.sign(message)?);
    Ok(Zeroizing::new(STANDARD.encode(*sig)))
}

/// A device's key in an enrollment group: base64(HMAC-SHA256(groupKey, registrationId)).
pub fn derive_device_key(group_key_b64: &str, registration_id: &str) -> Result<Zeroizing<String>> {
    sign_base64(group_key_b64, registration_id.as_bytes())
}

/// Hex digit case used when percent-encoding the resource URI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HexCase {
    /// `%2f`: the published vector and the C SDK's literal `%2fregistrations%2f` (the C SDK
    /// encodes other bytes, such as a `:` in a registration id, in upper case).
    #[default]
    Lower,
    /// `%2F`: Python's urllib and RFC 3986's recommendation.
    Upper,
}

/// The digit for the low four bits of `nibble`.
// why: masked to four bits, the index cannot pass the table's 16 entries.
#[allow(clippy::indexing_slicing)]
fn hex_digit(digits: &[u8; 16], nibble: u8) -> char {
    char::from(digits[usize::from(nibble & 0x0f)])
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str, case: HexCase) -> String {
    let digits: &[u8; 16] = match case {
        HexCase::Lower => b"0123456789abcdef",
        HexCase::Upper => b"0123456789ABCDEF",
    };
    // A capacity: three times a string in memory does not saturate in practice, and would
    // only make the first allocation smaller.
    let mut out = String::with_capacity(s.len().saturating_mul(3));
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(digits, b >> 4));
            out.push(hex_digit(digits, b & 0x0f));
        }
    }
    out
}

/// The encoded resource URI `{idScope}/registrations/{registrationId}` signed by the token.
pub fn resource_uri(id_scope: &str, registration_id: &str, case: HexCase) -> String {
    percent_encode(&format!("{id_scope}/registrations/{registration_id}"), case)
}

const KEY_NAME_PARAM: &str = "&skn=registration";

/// Builds the token in one allocation: a `Zeroizing<String>` that grew would leave the
/// token's earlier bytes behind in freed memory. `key_name` is off only for the test of the
/// published vector, which omits it. The signature is not itself signed, so it is always
/// encoded in upper case (`%3D`), as in the vector and the C SDK.
fn build_token(
    id_scope: &str,
    registration_id: &str,
    signer: &dyn Signer,
    expiry_unix: u64,
    case: HexCase,
    key_name: bool,
) -> Result<Zeroizing<String>> {
    let sr = resource_uri(id_scope, registration_id, case);
    let expiry = expiry_unix.to_string();
    let to_sign = format!("{sr}\n{expiry}");
    let sig = Zeroizing::new(signer.sign(to_sign.as_bytes())?);
    let sig_b64 = Zeroizing::new(STANDARD.encode(*sig));
    let sig_enc = Zeroizing::new(percent_encode(&sig_b64, HexCase::Upper));
    let parts = [
        "SharedAccessSignature sr=",
        &sr,
        "&sig=",
        &sig_enc,
        "&se=",
        &expiry,
        if key_name { KEY_NAME_PARAM } else { "" },
    ];
    let mut token = Zeroizing::new(String::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for part in parts {
        token.push_str(part);
    }
    Ok(token)
}

/// The SAS token a device sends as its MQTT password, with `&skn=registration`.
pub fn sas_token(
    id_scope: &str,
    registration_id: &str,
    signer: &dyn Signer,
    expiry_unix: u64,
    case: HexCase,
) -> Result<Zeroizing<String>> {
    build_token(id_scope, registration_id, signer, expiry_unix, case, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_token_vector() {
        let signer =
            KeySigner::from_base64("O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=").unwrap();
        let expected = "SharedAccessSignature sr=0ne000EEBBD%2fregistrations%2fFirstDevice&sig=hwgBlMB6G2Zg5ZcYtwmtLVKRbifiSCPfUMyscbVWa8o%3D&se=1591921306";
        let part = build_token(
            "0ne000EEBBD",
            "FirstDevice",
            &signer,
            1591921306,
            HexCase::Lower,
            false,
        )
        .unwrap();
        assert_eq!(part.as_str(), expected);
        let token = sas_token(
            "0ne000EEBBD",
            "FirstDevice",
            &signer,
            1591921306,
            HexCase::Lower,
        )
        .unwrap();
        assert_eq!(token.as_str(), format!("{expected}&skn=registration"));
    }

    #[test]
    fn upper_case_encoding_signs_what_it_sends() {
        let signer =
            KeySigner::from_base64("O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=").unwrap();
        let token = sas_token(
            "0ne000EEBBD",
            "FirstDevice",
            &signer,
            1591921306,
            HexCase::Upper,
        )
        .unwrap();
        assert!(token.starts_with(
            "SharedAccessSignature sr=0ne000EEBBD%2Fregistrations%2FFirstDevice&sig="
        ));
        let sig = sign_base64(
            "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=",
            b"0ne000EEBBD%2Fregistrations%2FFirstDevice\n1591921306",
        )
        .unwrap();
        assert!(token.contains(&format!("sig={}&", percent_encode(&sig, HexCase::Upper))));
        assert!(!token.contains("hwgBlMB6G2Zg5ZcYtwmtLVKRbifiSCPfUMyscbVWa8o"));
    }

    /// Stands in for an HSM callback: records what it was asked to sign.
    struct RecordingSigner(core::cell::RefCell<Vec<u8>>);

    impl Signer for RecordingSigner {
        fn sign(&self, message: &[u8]) -> Result<[u8; 32]> {
            *self.0.borrow_mut() = message.to_vec();
            Ok([0xfb; 32])
        }
    }

    #[test]
    fn signs_exactly_the_sent_resource_and_expiry_not_the_key_name() {
        for (case, sr) in [
            (HexCase::Lower, "0ne1%2fregistrations%2fdev%3a1"),
            (HexCase::Upper, "0ne1%2Fregistrations%2Fdev%3A1"),
        ] {
            let signer = RecordingSigner(Default::default());
            let token = sas_token("0ne1", "dev:1", &signer, 42, case).unwrap();
            assert_eq!(signer.0.borrow().as_slice(), format!("{sr}\n42").as_bytes());
            // base64 of 0xfb bytes is "+/v7..." and ends with "=": both need encoding.
            assert_eq!(
                token.as_str(),
                format!(
                    "SharedAccessSignature sr={sr}&sig=%2B%2Fv7{}%2B%2Fs%3D&se=42&skn=registration",
                    "%2B%2Fv7".repeat(9)
                )
            );
            assert_eq!(token.capacity(), token.len(), "token was reallocated");
        }
    }

    #[test]
    fn signer_errors_propagate() {
        struct Refusing;
        impl Signer for Refusing {
            fn sign(&self, _: &[u8]) -> Result<[u8; 32]> {
                Err(Error::new(ErrorKind::Internal, "hsm busy"))
            }
        }
        let err = sas_token("0ne1", "dev", &Refusing, 1, HexCase::Lower).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
    }

    #[test]
    fn hmac_primitive_vector() {
        let sig = sign_base64(
            "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=",
            b"sign this message",
        )
        .unwrap();
        assert_eq!(sig.as_str(), "8NJRMT83CcplGrAGaUVIUM/md5914KpWVNngSVoF9/M=");
    }

    #[test]
    fn group_key_derivation_vector() {
        let key = derive_device_key(
            "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
            "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
        )
        .unwrap();
        assert_eq!(key.as_str(), "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
    }

    #[test]
    fn bad_keys_are_rejected() {
        for key in ["", "   ", "not base64!", "QUJD=="] {
            let err = KeySigner::from_base64(key).err().expect(key);
            assert_eq!(err.kind, ErrorKind::InvalidKey, "{key:?}");
        }
        assert!(derive_device_key("", "dev").is_err());
        // Keys pasted from the portal often carry a trailing newline.
        assert_eq!(
            sign_base64(
                " NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=\n",
                b"sign this message"
            )
            .unwrap()
            .as_str(),
            "8NJRMT83CcplGrAGaUVIUM/md5914KpWVNngSVoF9/M="
        );
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved() {
        assert_eq!(
            percent_encode("a-Z_0.9~/ :+", HexCase::Lower),
            "a-Z_0.9~%2f%20%3a%2b"
        );
        assert_eq!(percent_encode("é", HexCase::Upper), "%C3%A9");
    }
}
