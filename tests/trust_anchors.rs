//! Trust anchors at run time against the real emulator: `add` appends, `set` replaces, and a
//! client left trusting only a replaced-away CA fails with `DPS_ERR_TLS_CERT_UNTRUSTED`.

mod common;

use common::{device_key, emulator_config, sym_emulator, Emulator};
use dps_mqtt::config::Config;
use dps_mqtt::error::ErrorKind;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::json;

const DEVICE: &str = "anchors-dev";

fn emulator() -> Emulator {
    sym_emulator(DEVICE, json!({}), &[])
}

/// A CA that signed nothing the emulator presents.
fn other_ca() -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Other CA");
    params
        .self_signed(&KeyPair::generate().unwrap())
        .unwrap()
        .pem()
        .into_bytes()
}

/// A config with no anchors added yet (the public roots only).
fn config(emu: &Emulator) -> Config {
    Config {
        use_default_roots: true,
        extra_anchors_pem: Vec::new(),
        ..emulator_config(emu, Some(DEVICE), device_key(DEVICE))
    }
}

fn register(cfg: &Config) -> Result<(), ErrorKind> {
    common::register(cfg).0
}

#[test]
fn a_ca_replaced_away_is_no_longer_trusted() {
    let emu = emulator();
    let mut cfg = config(&emu);
    cfg.add_trust_anchors_pem(&emu.ca_pem, false).unwrap();
    assert_eq!(register(&cfg), Ok(()));
    cfg.set_trust_anchors_pem(&other_ca(), false).unwrap();
    assert_eq!(register(&cfg), Err(ErrorKind::TlsCertUntrusted));
    // Back to the emulator's CA, then replaced by the public roots alone.
    cfg.set_trust_anchors_pem(&emu.ca_pem, false).unwrap();
    assert_eq!(register(&cfg), Ok(()));
    cfg.set_trust_anchors_pem(&[], true).unwrap();
    assert_eq!(register(&cfg), Err(ErrorKind::TlsCertUntrusted));
}

#[test]
fn add_appends_and_set_replaces() {
    let emu = emulator();
    let mut cfg = config(&emu);
    cfg.add_trust_anchors_pem(&other_ca(), false).unwrap();
    assert_eq!(register(&cfg), Err(ErrorKind::TlsCertUntrusted));
    cfg.add_trust_anchors_pem(&emu.ca_pem, false).unwrap();
    assert_eq!(
        register(&cfg),
        Ok(()),
        "the second add kept the first and added the CA"
    );
    // A bundle with several certificates is one replacement.
    let mut bundle = other_ca();
    bundle.extend_from_slice(&emu.ca_pem);
    cfg.set_trust_anchors_pem(&bundle, true).unwrap();
    assert_eq!(register(&cfg), Ok(()));
}

#[test]
fn a_refused_replacement_leaves_the_anchors_unchanged() {
    let emu = emulator();
    let mut cfg = config(&emu);
    cfg.add_trust_anchors_pem(&emu.ca_pem, false).unwrap();
    for (bad, public_roots) in [(&b""[..], false), (b"junk", true), (b"junk", false)] {
        let e = cfg.set_trust_anchors_pem(bad, public_roots).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidCertificate);
    }
    assert_eq!(register(&cfg), Ok(()));
    assert!(!cfg.use_default_roots);
}
