//! X.509 client certificates against the real emulator: individual and group (device CA)
//! enrollments, the chain as PEM or one DER certificate, RSA and EC keys as PKCS#8, PKCS#1 and
//! SEC1 in PEM and DER, and every way the certificate, the key or the registration id can be
//! wrong.

mod common;

use common::{emulator_config, register, Emulator};
use dps_mqtt::config::{ClientCertificate, Config, KeyKind};
use dps_mqtt::error::ErrorKind;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::json;
use zeroize::Zeroizing;

const INDIVIDUAL: &str = "x509-individual";
const GROUP_HUB: &str = "x509-group-hub.azure-devices.net";
const INDIVIDUAL_HUB: &str = "x509-hub.azure-devices.net";

fn emulator() -> Emulator {
    Emulator::start(
        json!({
            "enrollments": [{
                "registrationId": INDIVIDUAL,
                "attestation": { "type": "x509" },
                "assignedHub": INDIVIDUAL_HUB,
                "retryAfter": 0,
            }],
            "groups": [{
                "groupId": "x509-group",
                "attestation": { "type": "x509" },
                "assignedHub": GROUP_HUB,
                "retryAfter": 0,
            }],
        }),
        &[],
    )
}

/// A test key: its PKCS#8 PEM (what rcgen reads) and the file the library is given.
fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// PEM to DER (the first block).
fn der_of(pem: &[u8]) -> Vec<u8> {
    let (_, der) = <(rustls_pki_types::pem::SectionKind, Vec<u8>)>::from_pem_slice(pem).unwrap();
    der
}

/// A client certificate with this CN for `key_pkcs8_pem`, issued by the emulator's device CA
/// (or self-signed when `by_device_ca` is false). Returns (leaf PEM, leaf DER, device CA PEM).
fn issue(
    emu: &Emulator,
    cn: &str,
    key_pkcs8_pem: &str,
    by_device_ca: bool,
) -> (String, Vec<u8>, String) {
    let ca_pem = std::fs::read_to_string(emu.cert_dir().join("device-ca.pem")).unwrap();
    let ca_key_pem = std::fs::read_to_string(emu.cert_dir().join("device-ca-key.pem")).unwrap();
    let ca_key = KeyPair::from_pem(&ca_key_pem).unwrap();
    let ca = CertificateParams::from_ca_cert_pem(&ca_pem)
        .unwrap()
        .self_signed(&ca_key)
        .unwrap();
    let key = KeyPair::from_pem(key_pkcs8_pem).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2090, 1, 1);
    let cert = if by_device_ca {
        params.signed_by(&key, &ca, &ca_key).unwrap()
    } else {
        params.self_signed(&key).unwrap()
    };
    (cert.pem(), cert.der().to_vec(), ca_pem)
}

fn config(emu: &Emulator, registration_id: Option<&str>, chain: Vec<u8>, key: Vec<u8>) -> Config {
    let key = KeyKind::X509(ClientCertificate {
        chain,
        key: Zeroizing::new(key),
    });
    emulator_config(emu, registration_id, key)
}

fn settings_error(cfg: &Config) -> dps_mqtt::error::Error {
    cfg.settings().err().expect("settings refused")
}

/// Each key (RSA 2048, ECDSA P-256 and P-384) in each form (PKCS#8, PKCS#1 or SEC1; PEM and
/// DER), with the chain as PEM (leaf + device CA) and as the DER leaf alone.
#[test]
fn individual_enrollment_with_every_key_format_and_chain_encoding() {
    let emu = emulator();
    let mut registered = 0;
    for (pkcs8, other) in [
        ("rsa2048.pkcs8.pem", "rsa2048.pkcs1.pem"),
        ("p256.pkcs8.pem", "p256.sec1.pem"),
        ("p384.pkcs8.pem", "p384.sec1.pem"),
    ] {
        let pkcs8_pem = data(pkcs8);
        let (leaf_pem, leaf_der, ca_pem) = issue(
            &emu,
            INDIVIDUAL,
            std::str::from_utf8(&pkcs8_pem).unwrap(),
            true,
        );
        let chain_pem = format!("{leaf_pem}{ca_pem}").into_bytes();
        let keys = [
            pkcs8_pem.clone(),
            der_of(&pkcs8_pem),
            data(other),
            der_of(&data(other)),
        ];
        for key in keys {
            for chain in [chain_pem.clone(), leaf_der.clone()] {
                let cfg = config(&emu, Some(INDIVIDUAL), chain, key.clone());
                let (code, out) = register(&cfg);
                assert_eq!(code, Ok(()), "{pkcs8}/{other}: {out:?}");
                assert_eq!(out.assigned_hub.as_deref(), Some(INDIVIDUAL_HUB));
                assert_eq!(out.device_id.as_deref(), Some(INDIVIDUAL));
                registered += 1;
            }
        }
    }
    assert_eq!(registered, 3 * 4 * 2);
}

#[test]
fn ed25519_key_generated_on_the_device() {
    let emu = emulator();
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let (leaf_pem, _, _) = issue(&emu, INDIVIDUAL, &key.serialize_pem(), true);
    for key_bytes in [key.serialize_pem().into_bytes(), key.serialize_der()] {
        let cfg = config(&emu, None, leaf_pem.clone().into_bytes(), key_bytes);
        let (code, out) = register(&cfg);
        assert_eq!(code, Ok(()), "{out:?}");
        assert_eq!(out.device_id.as_deref(), Some(INDIVIDUAL));
    }
}

#[test]
fn group_enrollment_takes_the_registration_id_from_the_cn() {
    let emu = emulator();
    let key = data("p256.pkcs8.pem");
    let (leaf_pem, _, ca_pem) = issue(
        &emu,
        "x509-member-7",
        std::str::from_utf8(&key).unwrap(),
        true,
    );
    let cfg = config(
        &emu,
        None,
        format!("{leaf_pem}{ca_pem}").into_bytes(),
        key.clone(),
    );
    assert_eq!(
        cfg.settings().unwrap().registration_id.as_str(),
        "x509-member-7"
    );
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
    assert_eq!(out.assigned_hub.as_deref(), Some(GROUP_HUB));
    assert_eq!(out.device_id.as_deref(), Some("x509-member-7"));
    // Registration ids are case-insensitive: the CN in another case is the same device.
    let cfg = config(
        &emu,
        Some("X509-Member-7"),
        format!("{leaf_pem}{ca_pem}").into_bytes(),
        key,
    );
    assert_eq!(register(&cfg).0, Ok(()));
}

#[test]
fn registration_id_other_than_the_cn_is_refused_locally_naming_both() {
    let emu = emulator();
    let key = data("p256.pkcs8.pem");
    let (leaf_pem, _, _) = issue(&emu, "device-a", std::str::from_utf8(&key).unwrap(), true);
    let cfg = config(&emu, Some("device-b"), leaf_pem.into_bytes(), key);
    let e = settings_error(&cfg);
    assert_eq!(e.kind, ErrorKind::InvalidCertificateCn);
    assert!(
        e.detail.contains("\"device-a\"") && e.detail.contains("\"device-b\""),
        "{e}"
    );
}

#[test]
fn a_cn_that_is_no_registration_id_is_refused_locally() {
    let emu = emulator();
    let key = data("p256.pkcs8.pem");
    let (leaf_pem, _, _) = issue(
        &emu,
        "not a valid id!",
        std::str::from_utf8(&key).unwrap(),
        true,
    );
    let cfg = config(&emu, None, leaf_pem.into_bytes(), key);
    let e = settings_error(&cfg);
    assert_eq!(e.kind, ErrorKind::InvalidRegistrationId);
    assert!(e.detail.contains("not a valid id!"), "{e}");
}

#[test]
fn a_key_of_another_certificate_is_refused_locally() {
    let emu = emulator();
    let (leaf_pem, leaf_der, _) = issue(
        &emu,
        INDIVIDUAL,
        std::str::from_utf8(&data("p256.pkcs8.pem")).unwrap(),
        true,
    );
    for wrong in [
        data("p384.sec1.pem"),
        data("rsa2048.pkcs1.pem"),
        der_of(&data("rsa2048.pkcs8.pem")),
    ] {
        for chain in [leaf_pem.clone().into_bytes(), leaf_der.clone()] {
            let cfg = config(&emu, Some(INDIVIDUAL), chain, wrong.clone());
            assert_eq!(
                settings_error(&cfg).kind,
                ErrorKind::InvalidCertificateKeyMismatch
            );
        }
    }
}

#[test]
fn empty_and_garbage_inputs_are_refused_with_the_right_code() {
    let emu = emulator();
    let key = data("p256.pkcs8.pem");
    let (leaf_pem, leaf_der, _) = issue(&emu, INDIVIDUAL, std::str::from_utf8(&key).unwrap(), true);
    let leaf_pem = leaf_pem.into_bytes();
    let cert_cases: [(&[u8], ErrorKind); 5] = [
        (b"", ErrorKind::InvalidCertificate),
        (b"garbage, not a certificate", ErrorKind::InvalidCertificate),
        (
            &leaf_der[..leaf_der.len() / 2],
            ErrorKind::InvalidCertificate,
        ),
        (
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            ErrorKind::InvalidCertificate,
        ),
        // A key where the certificate belongs: no CERTIFICATE block.
        (&key, ErrorKind::InvalidCertificate),
    ];
    for (chain, want) in cert_cases {
        let cfg = config(&emu, Some(INDIVIDUAL), chain.to_vec(), key.clone());
        assert_eq!(
            settings_error(&cfg).kind,
            want,
            "{:?}",
            String::from_utf8_lossy(chain)
        );
    }
    let encrypted =
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let key_der = der_of(&key);
    let key_cases: [&[u8]; 6] = [
        b"",
        b"garbage, not a key",
        &key_der[..key_der.len() - 5],
        encrypted,
        &leaf_pem,
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ];
    for bad in key_cases {
        let cfg = config(&emu, Some(INDIVIDUAL), leaf_pem.clone(), bad.to_vec());
        assert_eq!(
            settings_error(&cfg).kind,
            ErrorKind::InvalidPrivateKey,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_certificate_the_service_does_not_trust_is_an_auth_error() {
    let emu = emulator();
    let key = data("p256.pkcs8.pem");
    let (leaf_pem, _, _) = issue(&emu, INDIVIDUAL, std::str::from_utf8(&key).unwrap(), false);
    let cfg = config(&emu, Some(INDIVIDUAL), leaf_pem.into_bytes(), key);
    let (code, out) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::AuthUnauthorized), "{out:?}");
    assert_eq!(out.error_code, Some(401002));
}

#[test]
fn a_der_chain_is_the_leaf_alone() {
    let emu = emulator();
    let key = data("p256.pkcs8.pem");
    let (_, leaf_der, _) = issue(&emu, INDIVIDUAL, std::str::from_utf8(&key).unwrap(), true);
    let cfg = config(&emu, Some(INDIVIDUAL), leaf_der.clone(), key);
    let (identity, cn) = match cfg.key.as_ref().unwrap() {
        KeyKind::X509(c) => c.parse().unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(identity.chain, vec![CertificateDer::from(leaf_der)]);
    assert_eq!(cn, INDIVIDUAL);
}

/// A group member whose certificate comes from an intermediate CA under the device CA: the
/// chain must carry the intermediate, as DPS requires for group enrollments.
#[test]
fn group_member_certificate_from_an_intermediate_ca() {
    let emu = emulator();
    let device_ca_pem = std::fs::read_to_string(emu.cert_dir().join("device-ca.pem")).unwrap();
    let device_ca_key = KeyPair::from_pem(
        &std::fs::read_to_string(emu.cert_dir().join("device-ca-key.pem")).unwrap(),
    )
    .unwrap();
    let device_ca = CertificateParams::from_ca_cert_pem(&device_ca_pem)
        .unwrap()
        .self_signed(&device_ca_key)
        .unwrap();
    let intermediate_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::CommonName, "Production line 7");
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2090, 1, 1);
    let intermediate = params
        .signed_by(&intermediate_key, &device_ca, &device_ca_key)
        .unwrap();

    let key_pem = data("rsa2048.pkcs8.pem");
    let key = KeyPair::from_pem(std::str::from_utf8(&key_pem).unwrap()).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "line7-device-42");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2090, 1, 1);
    let leaf = params
        .signed_by(&key, &intermediate, &intermediate_key)
        .unwrap();

    let chain = format!("{}{}", leaf.pem(), intermediate.pem()).into_bytes();
    let cfg = config(&emu, None, chain, data("rsa2048.pkcs1.pem"));
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
    assert_eq!(out.assigned_hub.as_deref(), Some(GROUP_HUB));
    assert_eq!(out.device_id.as_deref(), Some("line7-device-42"));

    // Without the intermediate the service cannot chain the certificate to the group's CA.
    let cfg = config(&emu, None, leaf.pem().into_bytes(), key_pem);
    assert_eq!(register(&cfg).0, Err(ErrorKind::AuthUnauthorized));
}
