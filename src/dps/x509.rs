//! The one thing the library reads from an X.509 certificate itself: the subject's common name
//! (CN), which DPS requires to equal the registration id.
//!
//! A minimal DER walk (Certificate → TBSCertificate → subject → the first CN attribute), not a
//! certificate parser: rustls and webpki validate the certificate itself. It needs no crate and
//! no TLS, so it also serves builds where the firmware's own TLS stack presents the
//! certificate. Every length is checked against the input; hostile bytes give an error.

use crate::error::{Error, ErrorKind, Result};
use crate::prelude::*;

const TAG_INTEGER: u8 = 0x02;
const TAG_OID: u8 = 0x06;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_PRINTABLE_STRING: u8 = 0x13;
const TAG_IA5_STRING: u8 = 0x16;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
/// `[0] EXPLICIT Version` at the start of a TBSCertificate.
const TAG_VERSION: u8 = 0xa0;
/// id-at-commonName, 2.5.4.3.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// Splits one DER element off `input`: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: 1 to 4 length bytes (a certificate is far below 4 GB); 0x80 is BER's
        // indefinite length, which DER forbids.
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = rest.get(..count)?;
        rest = rest.get(count..)?;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The contents of the next element, which must carry `tag`, and what follows it.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match element(input)? {
        (t, contents, rest) if t == tag => Some((contents, rest)),
        _ => None,
    }
}

fn malformed() -> Error {
    Error::new(
        ErrorKind::InvalidCertificate,
        "the client certificate is not a DER X.509 certificate",
    )
}

/// The contents of a DER certificate's subject Name (an RDNSequence).
fn subject(cert_der: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = expect(cert_der, TAG_SEQUENCE)?;
    let (tbs, _) = expect(certificate, TAG_SEQUENCE)?;
    let mut rest = tbs;
    if let Some((TAG_VERSION, _, after)) = element(rest) {
        rest = after;
    }
    let (_serial, rest) = expect(rest, TAG_INTEGER)?;
    let (_signature, rest) = expect(rest, TAG_SEQUENCE)?;
    let (_issuer, rest) = expect(rest, TAG_SEQUENCE)?;
    let (_validity, rest) = expect(rest, TAG_SEQUENCE)?;
    let (subject, _) = expect(rest, TAG_SEQUENCE)?;
    Some(subject)
}

/// The first common name in a DER certificate's subject.
///
/// `ErrorKind::InvalidCertificate` when the bytes are not a certificate;
/// `ErrorKind::InvalidCertificateCn` when the subject has no CN, or one that is not a UTF8String,
/// PrintableString or IA5String of valid text (a registration id is plain ASCII).
pub fn common_name(cert_der: &[u8]) -> Result<String> {
    let mut rdns = subject(cert_der).ok_or_else(malformed)?;
    while !rdns.is_empty() {
        let (set, after_set) = expect(rdns, TAG_SET).ok_or_else(malformed)?;
        rdns = after_set;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, after) = expect(attributes, TAG_SEQUENCE).ok_or_else(malformed)?;
            attributes = after;
            let (oid, value) = expect(attribute, TAG_OID).ok_or_else(malformed)?;
            if oid != OID_COMMON_NAME {
                continue;
            }
            let (tag, text, _) = element(value).ok_or_else(malformed)?;
            let readable = matches!(tag, TAG_UTF8_STRING | TAG_PRINTABLE_STRING | TAG_IA5_STRING);
            return readable
                .then(|| core::str::from_utf8(text).ok())
                .flatten()
                .map(str::to_owned)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidCertificateCn,
                        "the client certificate's CN is not a UTF8String, PrintableString or IA5String",
                    )
                });
        }
    }
    Err(Error::new(
        ErrorKind::InvalidCertificateCn,
        "the client certificate's subject has no CN",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, DnValue, KeyPair};

    fn cert(dn: &[(DnType, DnValue)]) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            params.distinguished_name.push(t.clone(), v.clone());
        }
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_the_cn_among_other_attributes_in_each_string_type() {
        let utf8 = cert(&[
            (
                DnType::CountryName,
                DnValue::PrintableString("DE".try_into().unwrap()),
            ),
            (DnType::OrganizationName, "Contoso".into()),
            (DnType::CommonName, "device-1".into()),
        ]);
        assert_eq!(common_name(&utf8).unwrap(), "device-1");
        let printable = cert(&[(
            DnType::CommonName,
            DnValue::PrintableString("dev-2".try_into().unwrap()),
        )]);
        assert_eq!(common_name(&printable).unwrap(), "dev-2");
        let ia5 = cert(&[(
            DnType::CommonName,
            DnValue::Ia5String("dev:3".try_into().unwrap()),
        )]);
        assert_eq!(common_name(&ia5).unwrap(), "dev:3");
    }

    #[test]
    fn a_subject_without_cn_or_with_an_unusual_string_type_is_refused() {
        let no_cn = cert(&[(DnType::OrganizationName, "Contoso".into())]);
        assert_eq!(
            common_name(&no_cn).unwrap_err().kind,
            ErrorKind::InvalidCertificateCn
        );
        let bmp = cert(&[(
            DnType::CommonName,
            DnValue::BmpString("dev".try_into().unwrap()),
        )]);
        assert_eq!(
            common_name(&bmp).unwrap_err().kind,
            ErrorKind::InvalidCertificateCn
        );
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_never_a_panic() {
        let der = cert(&[(DnType::CommonName, "device-1".into())]);
        for len in 0..der.len() {
            assert!(common_name(&der[..len]).is_err(), "prefix of {len} bytes");
        }
        for i in 0..der.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= flip;
                // Some flips still parse (inside a signature, say); none may panic.
                let _ = common_name(&bad);
            }
        }
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x80",
            b"\x30\x85\x01\x02\x03\x04\x05",
            b"\xff\xff",
        ] {
            assert_eq!(
                common_name(bad).unwrap_err().kind,
                ErrorKind::InvalidCertificate
            );
        }
    }
}
