//! The server key: RSA-2048 by default, as the service presents, or ECDSA P-256 with
//! `--server-key ecdsa`; both signed by the same CA, over TLS 1.3 and TLS 1.2.

mod common;

use common::*;

const RSA: &str = "1.2.840.113549.1.1.1";
const EC: &str = "1.2.840.10045.2.1";

fn registers_with(
    emu: &Emulator,
    versions: &'static [&'static rustls::SupportedProtocolVersion],
) -> String {
    let opts = TlsOptions {
        versions,
        ..TlsOptions::default()
    };
    let mut c = Client::tls_with(emu, &opts).expect("TLS");
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    let (status, resp) = c.provision("dev-1", None);
    assert_eq!(status, 200, "{resp}");
    c.server_key_oid()
}

#[test]
fn rsa_by_default_and_ecdsa_on_request_both_register_over_tls13_and_tls12() {
    static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    let (tls13, tls12) = (&TLS13[..], &TLS12[..]);
    for (args, oid) in [
        (&[][..], RSA),
        (&["--server-key", "rsa"][..], RSA),
        (&["--server-key", "ecdsa"][..], EC),
    ] {
        let emu = Emulator::start(args);
        assert_eq!(registers_with(&emu, tls13), oid, "{args:?}");
        assert_eq!(registers_with(&emu, tls12), oid, "{args:?}");
        let emu = Emulator::start(&[args, &["--tls12-only"][..]].concat());
        assert_eq!(registers_with(&emu, tls12), oid, "{args:?} --tls12-only");
    }
}

#[test]
fn one_cert_dir_serves_both_keys_under_one_ca_and_an_old_ecdsa_server_pem_is_replaced() {
    let dir = temp_dir("keys");
    let certs = dir.join("certs");
    let ecdsa = Emulator::start_with_cert_dir(&certs, &["--server-key", "ecdsa"]);
    assert_eq!(registers_with(&ecdsa, rustls::ALL_VERSIONS), EC);
    drop(ecdsa);
    let ca = std::fs::read(certs.join("ca.pem")).expect("ca.pem");
    // What an emulator before the RSA default left: an ECDSA `server.pem`.
    for (from, to) in [
        ("server-ecdsa.pem", "server.pem"),
        ("server-ecdsa-key.pem", "server-key.pem"),
    ] {
        std::fs::copy(certs.join(from), certs.join(to)).expect("copy");
    }
    let rsa = Emulator::start_with_cert_dir(&certs, &[]);
    assert_eq!(registers_with(&rsa, rustls::ALL_VERSIONS), RSA);
    drop(rsa);
    assert_eq!(std::fs::read(certs.join("ca.pem")).expect("ca.pem"), ca);
    let ecdsa = Emulator::start_with_cert_dir(&certs, &["--server-key", "ecdsa"]);
    assert_eq!(registers_with(&ecdsa, rustls::ALL_VERSIONS), EC);
    drop(ecdsa);
    let _ = std::fs::remove_dir_all(&dir);
}
