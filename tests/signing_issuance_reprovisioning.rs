//! Through the C ABI against the real emulator: external signing (the SAS HMAC computed by a
//! callback standing in for an HSM), certificate issuance from a CSR, and the stored
//! assignment blob with the re-provisioning decision.

mod common;

use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CStr};
use std::ptr;

use common::{c, ffi_client, ffi_config, sym_emulator, test_key, Emulator};
use dps_mqtt::dps::sas::{KeySigner, Signer};
use dps_mqtt::ffi::client::*;
use dps_mqtt::ffi::config::*;
use dps_mqtt::ffi::result::dps_result::{self, *};
use dps_mqtt::ffi::result::{dps_class, dps_result_class, dps_result_is_retryable};
use serde_json::json;

fn text(p: *const std::ffi::c_char) -> Option<String> {
    // SAFETY: getters return NULL or a NUL-terminated string valid until the next call.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned())
}

/// The "HSM": holds the key, records what it was asked, and checks that the client cannot be
/// driven or read from inside the callback.
struct Hsm {
    key: Option<String>,
    fail_with: i32,
    client: Cell<*mut dps_client>,
    requests: RefCell<Vec<(Vec<u8>, usize)>>,
    reentry: RefCell<Vec<(dps_result, dps_result)>>,
}

impl Hsm {
    fn new(key: Option<String>, fail_with: i32) -> Box<Hsm> {
        Box::new(Hsm {
            key,
            fail_with,
            client: Cell::new(ptr::null_mut()),
            requests: RefCell::new(Vec::new()),
            reentry: RefCell::new(Vec::new()),
        })
    }
}

unsafe extern "C" fn hsm_sign(
    user: *mut c_void,
    data: *const u8,
    data_len: usize,
    signature: *mut u8,
    signature_len: usize,
) -> i32 {
    // SAFETY: `user` is the test's `Hsm`, alive for the whole registration.
    let hsm = unsafe { &*(user as *const Hsm) };
    // SAFETY: the library passes `data_len` readable bytes.
    let data = unsafe { std::slice::from_raw_parts(data, data_len) };
    hsm.requests
        .borrow_mut()
        .push((data.to_vec(), signature_len));
    let cl = hsm.client.get();
    if !cl.is_null() {
        let driven = dps_client_do_work(cl, ptr::null_mut());
        // The client is mid-step: getters see no client rather than aliasing its state.
        let read = dps_client_last_result(cl);
        hsm.reentry.borrow_mut().push((driven, read));
    }
    let Some(key) = &hsm.key else {
        return hsm.fail_with;
    };
    let mac = KeySigner::from_base64(key).unwrap().sign(data).unwrap();
    // SAFETY: the library passes `signature_len` (32) writable bytes.
    unsafe { ptr::copy_nonoverlapping(mac.as_ptr(), signature, mac.len().min(signature_len)) };
    0
}

fn hsm_emulator(name: &str) -> Emulator {
    sym_emulator(name, json!({ "retryAfter": 0 }), &[])
}

#[test]
fn external_signer_registers_without_the_key_in_the_library() {
    let name = "hsm-dev";
    let emu = hsm_emulator(name);
    let hsm = Hsm::new(Some(test_key(name)), 0);
    let cfg = ffi_config(&emu, name);
    assert_eq!(
        dps_config_set_signing_callback(cfg, Some(hsm_sign), &*hsm as *const Hsm as *mut c_void),
        DPS_OK
    );
    let cl = ffi_client(cfg);
    dps_config_free(cfg);
    hsm.client.set(cl);

    assert_eq!(
        dps_client_register(cl),
        DPS_OK,
        "{:?}",
        text(dps_client_result_detail(cl))
    );
    assert_eq!(
        text(dps_client_assigned_hub(cl)).as_deref(),
        Some("test-hub.azure-devices.net")
    );
    let requests = hsm.requests.borrow();
    assert_eq!(requests.len(), 1, "one signature per connection");
    let (data, sig_len) = &requests[0];
    assert_eq!(*sig_len, 32);
    let data = std::str::from_utf8(data).unwrap();
    let (sr, expiry) = data.split_once('\n').expect("sr\\nexpiry");
    assert_eq!(sr, "0ne00000001%2fregistrations%2fhsm-dev");
    let expiry: u64 = expiry.parse().expect("expiry is a number");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expiry > now && expiry <= now + 3700, "{expiry} vs {now}");
    // From inside the callback the client could neither be driven nor read.
    assert_eq!(
        *hsm.reentry.borrow(),
        vec![(DPS_ERR_INVALID_STATE, DPS_ERR_INVALID_STATE)]
    );
    hsm.client.set(ptr::null_mut());
    dps_client_free(cl);
}

#[test]
fn a_failing_signer_ends_the_attempt_with_an_auth_error_and_no_retries() {
    let name = "hsm-broken";
    let emu = hsm_emulator(name);
    let hsm = Hsm::new(None, -7);
    let cfg = ffi_config(&emu, name);
    assert_eq!(
        dps_config_set_signing_callback(cfg, Some(hsm_sign), &*hsm as *const Hsm as *mut c_void),
        DPS_OK
    );
    let cl = ffi_client(cfg);
    dps_config_free(cfg);

    let code = dps_client_register(cl);
    assert_eq!(code, DPS_ERR_AUTH_SIGNING_FAILED);
    assert_eq!(dps_result_class(code as u32), dps_class::DPS_CLASS_AUTH);
    assert!(!dps_result_is_retryable(code as u32));
    let detail = text(dps_client_result_detail(cl)).unwrap();
    assert!(detail.contains("returned -7"), "{detail}");
    assert_eq!(hsm.requests.borrow().len(), 1, "no retry storm");
    // A second attempt asks the signer once more, and only once.
    assert_eq!(dps_client_register(cl), DPS_ERR_AUTH_SIGNING_FAILED);
    assert_eq!(hsm.requests.borrow().len(), 2);
    dps_client_free(cl);
}

#[test]
fn a_signer_with_the_wrong_key_is_refused_by_the_service() {
    let name = "hsm-wrong";
    let emu = hsm_emulator(name);
    let hsm = Hsm::new(Some(test_key("another device")), 0);
    let cfg = ffi_config(&emu, name);
    assert_eq!(
        dps_config_set_signing_callback(cfg, Some(hsm_sign), &*hsm as *const Hsm as *mut c_void),
        DPS_OK
    );
    let cl = ffi_client(cfg);
    dps_config_free(cfg);
    assert_eq!(dps_client_register(cl), DPS_ERR_AUTH_UNAUTHORIZED);
    dps_client_free(cl);
}

#[test]
fn signing_callback_setter_checks_its_arguments() {
    let cfg = dps_config_new();
    assert_eq!(
        dps_config_set_signing_callback(ptr::null_mut(), Some(hsm_sign), ptr::null_mut()),
        DPS_ERR_INVALID_NULL_POINTER
    );
    assert_eq!(
        dps_config_set_signing_callback(cfg, None, ptr::null_mut()),
        DPS_ERR_INVALID_NULL_POINTER
    );
    dps_config_free(cfg);
}

// ---- Certificate issuance ---------------------------------------------------------------------

fn csr_for(common_name: &str) -> (rcgen::KeyPair, Vec<u8>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let csr = params.serialize_request(&key).expect("csr");
    (key, csr.der().to_vec())
}

fn sym_config(emu: &Emulator, name: &str) -> *mut dps_config {
    let cfg = ffi_config(emu, name);
    assert_eq!(
        dps_config_set_symmetric_key(cfg, c(&test_key(name)).as_ptr()),
        DPS_OK
    );
    cfg
}

/// The DER certificates of a PEM text, in order.
fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|p| {
            let p = p.expect("PEM block");
            assert_eq!(p.label, "CERTIFICATE");
            p.contents
        })
        .collect()
}

#[test]
fn certificate_issuance_returns_a_chain_signed_by_the_emulator_ca() {
    let name = "csr-dev";
    let emu = hsm_emulator(name);
    let (key, csr) = csr_for(name);
    let cfg = sym_config(&emu, name);
    assert_eq!(dps_config_set_csr_der(cfg, csr.as_ptr(), csr.len()), DPS_OK);
    let cl = ffi_client(cfg);

    assert_eq!(
        dps_client_register(cl),
        DPS_OK,
        "{:?}",
        text(dps_client_result_detail(cl))
    );
    let pem = text(dps_client_issued_certificate_chain_pem(cl)).expect("an issued chain");
    let certs = pem_certificates(&pem);
    assert_eq!(certs.len(), 2, "leaf, then the device CA");
    let (_, leaf) = x509_parser::parse_x509_certificate(&certs[0]).expect("leaf");
    let (_, issuer) = x509_parser::parse_x509_certificate(&certs[1]).expect("issuer");
    let cn = leaf.subject().iter_common_name().next().expect("CN");
    assert_eq!(cn.as_str().unwrap(), name);
    assert_eq!(leaf.public_key().raw, key.public_key_der().as_slice());
    leaf.verify_signature(Some(issuer.public_key()))
        .expect("signed by the issuer");
    let device_ca = std::fs::read_to_string(emu.cert_dir().join("device-ca.pem")).unwrap();
    assert_eq!(
        pem_certificates(&device_ca)[0],
        certs[1],
        "the emulator's device CA"
    );

    // With an explicit older api-version the service knows no `csr`: nothing is issued.
    assert_eq!(
        dps_config_set_api_version(cfg, c("2021-06-01").as_ptr()),
        DPS_OK
    );
    let old = ffi_client(cfg);
    assert_eq!(dps_client_register(old), DPS_OK);
    assert!(dps_client_issued_certificate_chain_pem(old).is_null());
    dps_client_free(old);
    dps_config_free(cfg);
    // A new attempt clears the previous chain until it is issued again.
    assert_eq!(dps_client_register(cl), DPS_OK);
    assert!(!dps_client_issued_certificate_chain_pem(cl).is_null());
    dps_client_free(cl);
}

#[test]
fn a_csr_for_another_name_is_rejected_by_the_service() {
    let name = "csr-other";
    let emu = hsm_emulator(name);
    let (_, csr) = csr_for("somebody-else");
    let cfg = sym_config(&emu, name);
    assert_eq!(dps_config_set_csr_der(cfg, csr.as_ptr(), csr.len()), DPS_OK);
    let cl = ffi_client(cfg);
    dps_config_free(cfg);
    assert_eq!(dps_client_register(cl), DPS_ERR_REGISTRATION_REJECTED);
    assert_eq!(dps_client_http_status(cl), 400);
    assert!(dps_client_issued_certificate_chain_pem(cl).is_null());
    dps_client_free(cl);
}

#[test]
fn csr_setter_checks_its_arguments() {
    let cfg = dps_config_new();
    let (_, csr) = csr_for("dev");
    assert_eq!(
        dps_config_set_csr_der(ptr::null_mut(), csr.as_ptr(), csr.len()),
        DPS_ERR_INVALID_NULL_POINTER
    );
    assert_eq!(
        dps_config_set_csr_der(cfg, ptr::null(), 5),
        DPS_ERR_INVALID_NULL_POINTER
    );
    assert_eq!(dps_config_set_csr_der(cfg, ptr::null(), 0), DPS_OK);
    for bad in [
        &b"-----BEGIN CERTIFICATE REQUEST-----"[..],
        b"\x30\x05",
        &csr[1..],
    ] {
        assert_eq!(
            dps_config_set_csr_der(cfg, bad.as_ptr(), bad.len()),
            DPS_ERR_INVALID_CSR
        );
    }
    let pem = pem_rfc7468(&csr);
    assert_eq!(dps_config_set_csr_der(cfg, pem.as_ptr(), pem.len()), DPS_OK);
    dps_config_free(cfg);
}

fn pem_rfc7468(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE REQUEST-----\r\n{}\r\n-----END CERTIFICATE REQUEST-----\r\n",
        lines.join("\r\n")
    )
}

// ---- Stored assignment and re-provisioning ----------------------------------------------------

#[test]
fn assignment_blob_round_trip_and_provisioning_decision() {
    use dps_mqtt::dps::assignment::dps_hub_outcome::*;
    use dps_mqtt::ffi::assignment::*;

    let name = "blob-dev";
    let emu = hsm_emulator(name);
    let cfg = sym_config(&emu, name);
    let cl = ffi_client(cfg);
    let mut written = 0usize;
    assert_eq!(
        dps_client_assignment_save(cl, ptr::null_mut(), 0, &mut written),
        DPS_ERR_INVALID_STATE,
        "nothing assigned yet"
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(dps_client_register(cl), DPS_OK);

    // Ask for the size, refuse a short buffer without touching it, then save.
    assert_eq!(
        dps_client_assignment_save(cl, ptr::null_mut(), 0, &mut written),
        DPS_ERR_INVALID_BUFFER_TOO_SMALL
    );
    let needed = written;
    assert!((20..=DPS_ASSIGNMENT_MAX_LEN).contains(&needed), "{needed}");
    let mut blob = vec![0xaa_u8; needed];
    written = 0;
    assert_eq!(
        dps_client_assignment_save(cl, blob.as_mut_ptr(), needed - 1, &mut written),
        DPS_ERR_INVALID_BUFFER_TOO_SMALL
    );
    assert_eq!(written, needed);
    assert!(
        blob.iter().all(|b| *b == 0xaa),
        "a short buffer is left alone"
    );
    assert_eq!(
        dps_client_assignment_save(cl, blob.as_mut_ptr(), blob.len(), ptr::null_mut()),
        DPS_ERR_INVALID_NULL_POINTER
    );
    written = 0;
    assert_eq!(
        dps_client_assignment_save(cl, blob.as_mut_ptr(), blob.len(), &mut written),
        DPS_OK
    );
    assert_eq!(written, needed);

    // The next boot: parse what was stored.
    let mut parsed = ptr::null_mut();
    assert_eq!(
        dps_assignment_parse(blob.as_ptr(), blob.len(), &mut parsed),
        DPS_OK
    );
    assert_eq!(
        text(dps_assignment_assigned_hub(parsed)),
        text(dps_client_assigned_hub(cl))
    );
    assert_eq!(
        text(dps_assignment_device_id(parsed)).as_deref(),
        Some(name)
    );
    let etag = text(dps_assignment_etag(parsed));
    assert!(etag.is_some());
    assert_eq!(etag, text(dps_client_etag(cl)));
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = dps_assignment_assigned_at_unix(parsed);
    assert!(
        (before..=after).contains(&at),
        "{before} <= {at} <= {after}"
    );
    dps_assignment_free(parsed);

    // The decision: keep a valid assignment unless the hub rejected the device.
    let decide = |b: &[u8], hub: u32| dps_should_provision(b.as_ptr(), b.len(), hub);
    assert!(!decide(&blob, DPS_HUB_NOT_TRIED as u32));
    assert!(!decide(&blob, DPS_HUB_CONNECTED as u32));
    assert!(!decide(&blob, DPS_HUB_UNREACHABLE as u32));
    assert!(decide(&blob, DPS_HUB_REJECTED_DEVICE as u32));
    assert!(!decide(&blob, 77), "unknown outcomes keep the assignment");
    assert!(dps_should_provision(
        ptr::null(),
        0,
        DPS_HUB_NOT_TRIED as u32
    ));
    assert!(dps_should_provision(
        ptr::null(),
        9,
        DPS_HUB_NOT_TRIED as u32
    ));
    assert!(decide(&blob[..blob.len() - 1], DPS_HUB_UNREACHABLE as u32));
    let mut corrupt = blob.clone();
    corrupt[17] ^= 1;
    assert!(decide(&corrupt, DPS_HUB_CONNECTED as u32));

    let mut untouched = ptr::null_mut();
    assert_eq!(
        dps_assignment_parse(corrupt.as_ptr(), corrupt.len(), &mut untouched),
        DPS_ERR_INVALID_ASSIGNMENT
    );
    assert!(untouched.is_null(), "out is written only on success");
    assert_eq!(
        dps_assignment_parse(ptr::null(), 5, &mut untouched),
        DPS_ERR_INVALID_NULL_POINTER
    );
    assert_eq!(
        dps_assignment_parse(blob.as_ptr(), blob.len(), ptr::null_mut()),
        DPS_ERR_INVALID_NULL_POINTER
    );
    dps_assignment_free(ptr::null_mut());
    assert!(dps_assignment_assigned_hub(ptr::null()).is_null());
    assert!(dps_assignment_etag(ptr::null()).is_null());
    assert_eq!(dps_assignment_assigned_at_unix(ptr::null()), 0);
    dps_client_free(cl);

    // A failed attempt has nothing to save.
    assert_eq!(
        dps_config_set_symmetric_key(cfg, c(&test_key("wrong")).as_ptr()),
        DPS_OK
    );
    let refused = ffi_client(cfg);
    dps_config_free(cfg);
    assert_eq!(dps_client_register(refused), DPS_ERR_AUTH_UNAUTHORIZED);
    assert_eq!(
        dps_client_assignment_save(refused, blob.as_mut_ptr(), blob.len(), &mut written),
        DPS_ERR_INVALID_STATE
    );
    assert_eq!(
        dps_client_assignment_save(ptr::null(), blob.as_mut_ptr(), blob.len(), &mut written),
        DPS_ERR_INVALID_NULL_POINTER
    );
    dps_client_free(refused);
}
