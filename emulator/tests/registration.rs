//! Registration flows against the real emulator binary over MQTT over TLS (and WebSocket).

mod common;

use std::time::Instant;

use common::*;
use mqttrs::QoS;
use serde_json::json;

#[test]
fn symmetric_key_202_then_200_with_the_service_shapes() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    c.subscribe();
    let (status, params, body) = c.register("a-rid-7", &json!({ "registrationId": "dev-1" }));
    assert_eq!(status, 202);
    assert_eq!(param(&params, "$rid"), Some("a-rid-7"));
    assert_eq!(param(&params, "retry-after"), Some("1"));
    assert_eq!(body["status"], "assigning");
    let op = body["operationId"]
        .as_str()
        .expect("operationId")
        .to_owned();
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");

    let (status, params, body) = c.poll("8", &op);
    assert_eq!(status, 200);
    assert_eq!(param(&params, "$rid"), Some("8"));
    assert_eq!(body["operationId"], op.as_str());
    assert_eq!(body["status"], "assigned");
    let state = &body["registrationState"];
    assert_eq!(state["registrationId"], "dev-1");
    assert_eq!(state["assignedHub"], "hub-1.azure-devices.net");
    assert_eq!(state["deviceId"], "dev-1");
    assert_eq!(state["status"], "assigned");
    assert_eq!(state["substatus"], "initialAssignment");
    for key in ["createdDateTimeUtc", "lastUpdatedDateTimeUtc", "etag"] {
        assert!(state[key].is_string(), "{key} missing in {state}");
    }
    assert!(state.get("payload").is_none(), "{state}");
    c.ping();
}

#[test]
fn both_hex_cases_of_the_encoded_resource_verify() {
    let emu = Emulator::start(&[]);
    for upper in [false, true] {
        let mut c = Client::tls(&emu);
        let token = sas_token(SCOPE, "dev-1", KEY, now() + 60, upper);
        c.connect_raw("dev-1", Some(&username(SCOPE, "dev-1")), Some(&token));
        assert_eq!(c.connack(), 0);
        let (status, resp) = c.provision("dev-1", None);
        assert_eq!(
            (status, &resp["status"]),
            (200, &json!("assigned")),
            "{resp}"
        );
    }
}

#[test]
fn enrollment_fields_device_id_and_substatus() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-custom", KEY), 0);
    let (_, resp) = c.provision("dev-custom", None);
    assert_eq!(resp["registrationState"]["deviceId"], "custom-id");
    assert_eq!(resp["registrationState"]["substatus"], "deviceDataMigrated");
}

#[test]
fn group_enrollment_accepts_the_derived_key_only() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(
        c.connect_sas("group-member-42", &derive_key(GROUP_KEY, "group-member-42")),
        0
    );
    let (status, resp) = c.provision("group-member-42", None);
    assert_eq!(status, 200);
    assert_eq!(
        resp["registrationState"]["assignedHub"],
        "hub-group.azure-devices.net"
    );
    assert_eq!(resp["registrationState"]["deviceId"], "group-member-42");

    // The group key itself is not a device key.
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("group-member-42", GROUP_KEY), 0);
    c.subscribe();
    let (status, _, _) = c.register("1", &json!({ "registrationId": "group-member-42" }));
    assert_eq!(status, 401);
}

#[test]
fn device_payload_is_echoed_unless_the_enrollment_sets_one() {
    let emu = Emulator::start(&[]);
    let sent = json!({ "modelId": "dtmi:example:thermostat;1", "nested": { "n": [1, 2] } });
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    let (_, resp) = c.provision("dev-1", Some(sent.clone()));
    assert_eq!(resp["registrationState"]["payload"], sent);

    // `"payload": null` (what Microsoft's Python SDK sends without one) is not echoed.
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    let (_, resp) = c.provision("dev-1", Some(serde_json::Value::Null));
    assert!(resp["registrationState"].get("payload").is_none(), "{resp}");

    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-payload", KEY), 0);
    let (_, resp) = c.provision("dev-payload", Some(sent));
    assert_eq!(
        resp["registrationState"]["payload"],
        json!({ "fromEnrollment": true })
    );
}

#[test]
fn throttle_first_answers_429_with_retry_after_then_serves() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-throttle", KEY), 0);
    c.subscribe();
    let body = json!({ "registrationId": "dev-throttle" });
    let (status, params, env) = c.register("1", &body);
    assert_eq!(status, 429);
    assert_eq!(param(&params, "retry-after"), Some("2"));
    assert_eq!(env["errorCode"], 429001);
    for key in ["trackingId", "message", "timestampUtc"] {
        assert!(env[key].is_string(), "{key} missing in {env}");
    }
    let (status, _, _) = c.register("2", &body);
    assert_eq!(status, 202);
}

#[test]
fn server_error_first_answers_500_then_serves() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-500", KEY), 0);
    c.subscribe();
    let body = json!({ "registrationId": "dev-500" });
    let (status, _, env) = c.register("1", &body);
    assert_eq!(status, 500);
    assert_eq!(env["errorCode"].as_i64().map(|c| c / 1000), Some(500));
    let (status, _, _) = c.register("2", &body);
    assert_eq!(status, 202);
}

#[test]
fn assign_after_polls_answers_202_that_many_times() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-polls", KEY), 0);
    c.subscribe();
    let (status, params, resp) = c.register("1", &json!({ "registrationId": "dev-polls" }));
    assert_eq!((status, param(&params, "retry-after")), (202, Some("0")));
    let op = resp["operationId"].as_str().expect("op").to_owned();
    for rid in ["2", "3"] {
        let (status, _, resp) = c.poll(rid, &op);
        assert_eq!((status, &resp["status"]), (202, &json!("assigning")));
    }
    let (status, _, resp) = c.poll("4", &op);
    assert_eq!((status, &resp["status"]), (200, &json!("assigned")));
}

#[test]
fn failed_and_disabled_outcomes_carry_error_code_and_message() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-failed", KEY), 0);
    let (status, resp) = c.provision("dev-failed", None);
    assert_eq!(status, 200);
    assert_eq!(resp["status"], "failed");
    let state = &resp["registrationState"];
    assert_eq!(state["status"], "failed");
    assert_eq!(state["registrationId"], "dev-failed");
    assert_eq!(state["errorCode"], 400209);
    assert_eq!(state["errorMessage"], "allocation failed");
    assert!(state.get("assignedHub").is_none(), "{state}");

    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-disabled", KEY), 0);
    let (status, resp) = c.provision("dev-disabled", None);
    assert_eq!(status, 200);
    assert_eq!(resp["status"], "disabled");
    assert_eq!(resp["registrationState"]["status"], "disabled");
    assert!(resp["registrationState"]["errorCode"].is_i64());
}

#[test]
fn bad_signature_gets_401_envelope_then_close() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(
        c.connect_sas("dev-1", OTHER_KEY),
        0,
        "DPS accepts the CONNECT"
    );
    c.subscribe();
    let (status, params, env) = c.register("r1", &json!({ "registrationId": "dev-1" }));
    assert_eq!(status, 401);
    assert_eq!(param(&params, "$rid"), Some("r1"));
    assert_eq!(env["errorCode"], 401002);
    for key in ["trackingId", "message", "timestampUtc"] {
        assert!(env[key].is_string(), "{key} missing in {env}");
    }
    assert_eq!(c.recv(), Rx::Closed);
}

#[test]
fn expired_token_and_unknown_registration_get_401() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-1", KEY, now() - 10, false);
    c.connect_raw("dev-1", Some(&username(SCOPE, "dev-1")), Some(&token));
    assert_eq!(c.connack(), 0);
    c.subscribe();
    let (status, _, _) = c.register("1", &json!({ "registrationId": "dev-1" }));
    assert_eq!(status, 401);

    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("nobody-here", KEY), 0);
    c.subscribe();
    let (status, _, _) = c.register("1", &json!({ "registrationId": "nobody-here" }));
    assert_eq!(status, 401);
    assert_eq!(c.recv(), Rx::Closed);
}

#[test]
fn token_for_another_resource_gets_401() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    // Signed correctly with dev-1's key, but for dev-payload's resource.
    let token = sas_token(SCOPE, "dev-payload", KEY, now() + 60, false);
    c.connect_raw("dev-1", Some(&username(SCOPE, "dev-1")), Some(&token));
    assert_eq!(c.connack(), 0);
    c.subscribe();
    let (status, _, _) = c.register("1", &json!({ "registrationId": "dev-1" }));
    assert_eq!(status, 401);
}

#[test]
fn auth_failure_connack_flag_and_per_enrollment_knob_refuse_with_5() {
    let emu = Emulator::start(&["--auth-failure", "connack"]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", OTHER_KEY), 5);
    assert_eq!(c.recv(), Rx::Closed);

    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-connack", OTHER_KEY), 5);

    // The file's setting applies unless the command line says otherwise.
    let file = enrollments().replacen(
        &format!(r#""idScope": "{SCOPE}""#),
        &format!(r#""idScope": "{SCOPE}", "authFailure": "connack""#),
        1,
    );
    let emu = Emulator::start_with(&file, &[]);
    assert_eq!(Client::tls(&emu).connect_sas("dev-1", OTHER_KEY), 5);
    let emu = Emulator::start_with(&file, &["--auth-failure", "401"]);
    assert_eq!(Client::tls(&emu).connect_sas("dev-1", OTHER_KEY), 0);
}

#[test]
fn unknown_scope_is_refused_with_3() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let token = sas_token("0ne99999999", "dev-1", KEY, now() + 60, false);
    c.connect_raw(
        "dev-1",
        Some(&username("0ne99999999", "dev-1")),
        Some(&token),
    );
    assert_eq!(c.connack(), 3);
    assert_eq!(c.recv(), Rx::Closed);
}

#[test]
fn malformed_user_name_or_password_is_refused_with_4() {
    let emu = Emulator::start(&[]);
    let token = sas_token(SCOPE, "dev-1", KEY, now() + 60, false);
    let cases = [
        (Some("not-a-dps-user-name".to_owned()), Some(token.clone())),
        (None, Some(token.clone())),
        (
            Some(format!("{SCOPE}/registrations/dev-1/api-version=yesterday")),
            Some(token.clone()),
        ),
        (
            Some(username(SCOPE, "dev-1")),
            Some("SharedAccessSignature nonsense".to_owned()),
        ),
        (
            Some(username(SCOPE, "dev-1")),
            Some("Bearer xyz".to_owned()),
        ),
    ];
    for (user, password) in cases {
        let mut c = Client::tls(&emu);
        c.connect_raw("dev-1", user.as_deref(), password.as_deref());
        assert_eq!(c.connack(), 4, "user {user:?}");
    }
}

#[test]
fn client_id_must_be_the_registration_id() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-1", KEY, now() + 60, false);
    c.connect_raw(
        "someone-else",
        Some(&username(SCOPE, "dev-1")),
        Some(&token),
    );
    assert_eq!(c.connack(), 2);
}

#[test]
fn only_the_response_filter_is_granted_at_qos_0_or_1() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    let codes = c.subscribe_with(&[
        ("#", QoS::AtLeastOnce),
        ("$dps/registrations/res/#", QoS::AtMostOnce),
        ("$dps/registrations/res/+", QoS::AtLeastOnce),
    ]);
    assert_eq!(codes, vec![None, Some(0), None]);
    let codes = c.subscribe_with(&[("$dps/registrations/res/#", QoS::ExactlyOnce)]);
    assert_eq!(codes, vec![Some(1)]);
}

#[test]
fn without_a_subscription_no_response_is_delivered() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    let topic = "$dps/registrations/PUT/iotdps-register/?$rid=1";
    c.publish(
        topic,
        json!({ "registrationId": "dev-1" }).to_string().as_bytes(),
    );
    // Packets are answered in order: a response would arrive before the PINGRESP.
    c.ping();
}

#[test]
fn bad_register_bodies_get_400_envelopes() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    c.subscribe();
    let (status, _, env) = c.register(
        "1",
        &json!({ "registrationId": "dev-1", "modelId": "dtmi:x;1" }),
    );
    assert_eq!((status, &env["errorCode"]), (400, &json!(400012)));
    let (status, _, env) = c.register("2", &json!({ "registrationId": "dev-2" }));
    assert_eq!(status, 400);
    assert_eq!(env["errorCode"].as_i64().map(|c| c / 1000), Some(400));
    c.publish(
        "$dps/registrations/PUT/iotdps-register/?$rid=3",
        b"not json",
    );
    let (status, _, _) = c.response();
    assert_eq!(status, 400);
    // The connection stays usable.
    let (status, resp) = c.provision("dev-1", None);
    assert_eq!(status, 200, "{resp}");
}

#[test]
fn unknown_operation_id_gets_404() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    c.subscribe();
    let (status, _, env) = c.poll("1", "4.nonexistent.op");
    assert_eq!(status, 404);
    assert_eq!(env["errorCode"].as_i64().map(|c| c / 1000), Some(404));
}

#[test]
fn operations_of_another_device_are_not_visible() {
    let emu = Emulator::start(&[]);
    let mut a = Client::tls(&emu);
    assert_eq!(a.connect_sas("dev-1", KEY), 0);
    a.subscribe();
    let (_, _, resp) = a.register("1", &json!({ "registrationId": "dev-1" }));
    let op = resp["operationId"].as_str().expect("op").to_owned();
    let mut b = Client::tls(&emu);
    assert_eq!(b.connect_sas("dev-custom", KEY), 0);
    b.subscribe();
    let (status, _, _) = b.poll("1", &op);
    assert_eq!(status, 404);
}

#[test]
fn a_client_resumes_its_tls_session_and_the_log_says_so() {
    let emu = Emulator::start(&[]);
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let config = tls_config(
            &emu.ca,
            &TlsOptions {
                versions,
                ..TlsOptions::default()
            },
        );
        for _ in 0..2 {
            let mut c = Client::tls_with_config(&emu, config.clone()).expect("TLS connect");
            // The CONNACK carries the TLS 1.3 tickets in with it.
            assert_eq!(c.connect_sas("dev-1", KEY), 0);
            c.send(&mqttrs::Packet::Disconnect);
            assert_eq!(c.recv(), Rx::Closed);
        }
    }
    let log = emu.log_lines();
    let seen: Vec<_> = log
        .iter()
        .map(|l| (l["tlsVersion"].as_str(), l["tlsResumed"].as_bool()))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("1.3"), Some(false)),
            (Some("1.3"), Some(true)),
            (Some("1.2"), Some(false)),
            (Some("1.2"), Some(true)),
        ]
    );
}

#[test]
fn websocket_transport_registers_and_checks_the_path() {
    let emu = Emulator::start(&["--ws-port", "0"]);
    let mut c = Client::websocket(&emu, "/$iothub/websocket").expect("websocket");
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    let (status, resp) = c.provision("dev-1", Some(json!({ "over": "ws" })));
    assert_eq!(status, 200);
    assert_eq!(
        resp["registrationState"]["payload"],
        json!({ "over": "ws" })
    );
    c.send(&mqttrs::Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);
    let log = emu.log_lines();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["transport"], "wss");
    assert_eq!(log[0]["outcome"], "assigned");
    assert!(
        Client::websocket(&emu, "/mqtt").is_err(),
        "wrong path must be refused"
    );
}

#[test]
fn x509_device_certificate_from_issue_device_cert() {
    let emu = Emulator::start(&[]);
    let issue = |reg: &str, expired: bool| {
        let cert = emu.dir.join(format!("{reg}-{expired}.pem"));
        let key = emu.dir.join(format!("{reg}-{expired}-key.pem"));
        let mut cmd = std::process::Command::new(binary());
        cmd.arg("issue-device-cert")
            .arg("--cert-dir")
            .arg(emu.certs())
            .args(["--registration-id", reg])
            .arg("--cert-out")
            .arg(&cert)
            .arg("--key-out")
            .arg(&key);
        if expired {
            cmd.arg("--expired");
        }
        let out = cmd.output().expect("issue-device-cert");
        assert!(out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&*cert.to_string_lossy()), "{stdout}");
        (cert, key)
    };
    let connect = |reg: &str, cert: &std::path::Path, key: &std::path::Path| {
        let opts = TlsOptions {
            client_cert: Some((cert, key)),
            ..TlsOptions::default()
        };
        let mut c = Client::tls_with(&emu, &opts).expect("TLS with a client certificate");
        c.connect_raw(reg, Some(&username(SCOPE, reg)), None);
        assert_eq!(c.connack(), 0);
        c
    };

    let (cert, key) = issue("dev-x509", false);
    let (status, resp) = connect("dev-x509", &cert, &key).provision("dev-x509", None);
    assert_eq!(status, 200);
    assert_eq!(
        resp["registrationState"]["assignedHub"],
        "hub-x509.azure-devices.net"
    );

    let (cert, key) = issue("x509-group-member", false);
    let (status, resp) =
        connect("x509-group-member", &cert, &key).provision("x509-group-member", None);
    assert_eq!(status, 200);
    assert_eq!(
        resp["registrationState"]["assignedHub"],
        "hub-group-x509.azure-devices.net"
    );

    // Another device's certificate (CN mismatch) and an expired one: 401 like the service.
    let (expired_cert, expired_key) = issue("dev-x509", true);
    for (cert, key) in [(&cert, &key), (&expired_cert, &expired_key)] {
        let mut c = connect("dev-x509", cert, key);
        c.subscribe();
        let (status, _, env) = c.register("1", &json!({ "registrationId": "dev-x509" }));
        assert_eq!((status, &env["errorCode"]), (401, &json!(401002)));
    }

    // No certificate and no password.
    let mut c = Client::tls(&emu);
    c.connect_raw("dev-x509", Some(&username(SCOPE, "dev-x509")), None);
    assert_eq!(c.connack(), 0);
    c.subscribe();
    let (status, _, _) = c.register("1", &json!({ "registrationId": "dev-x509" }));
    assert_eq!(status, 401);
}

#[test]
fn certificate_issuance_signs_a_csr_for_the_registration_id() {
    let emu = Emulator::start(&[]);
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dev-1");
    let csr = params.serialize_request(&key).expect("csr");
    use base64::Engine as _;
    let csr_b64 = base64::engine::general_purpose::STANDARD.encode(csr.der());

    // Before 2025-07-01-preview the register request has no `csr`: it is ignored.
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    c.subscribe();
    let (status, _, resp) = c.register("1", &json!({ "registrationId": "dev-1", "csr": csr_b64 }));
    assert_eq!(status, 202, "{resp}");
    let op = resp["operationId"].as_str().expect("op").to_owned();
    let (status, _, resp) = c.poll("2", &op);
    assert_eq!(status, 200);
    assert!(resp["registrationState"]
        .get("issuedCertificateChain")
        .is_none());

    let mut c = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-1", KEY, now() + 3600, false);
    let user = format!("{SCOPE}/registrations/dev-1/api-version=2025-07-01-preview");
    c.connect_raw("dev-1", Some(&user), Some(&token));
    assert_eq!(c.connack(), 0);
    c.subscribe();
    let (status, _, resp) = c.register("1", &json!({ "registrationId": "dev-1", "csr": csr_b64 }));
    assert_eq!(status, 202, "{resp}");
    let op = resp["operationId"].as_str().expect("op").to_owned();
    let (status, _, resp) = c.poll("2", &op);
    assert_eq!(status, 200);
    let chain = resp["registrationState"]["issuedCertificateChain"]
        .as_array()
        .expect("issuedCertificateChain");
    assert_eq!(chain.len(), 2);
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(chain[0].as_str().expect("b64"))
        .expect("base64");
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf).expect("DER certificate");
    let cn = leaf.subject().iter_common_name().next().expect("CN");
    assert_eq!(cn.as_str().expect("utf8"), "dev-1");

    // A CSR for another name is refused.
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "not-dev-1");
    let csr = params.serialize_request(&key).expect("csr");
    let csr_b64 = base64::engine::general_purpose::STANDARD.encode(csr.der());
    let (status, _, _) = c.register("3", &json!({ "registrationId": "dev-1", "csr": csr_b64 }));
    assert_eq!(status, 400);
}

#[test]
fn delay_ms_delays_responses() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let started = Instant::now();
    assert_eq!(c.connect_sas("dev-delay", KEY), 0);
    assert!(started.elapsed().as_millis() >= 400);
    c.subscribe();
    let started = Instant::now();
    let _ = c.register("1", &json!({ "registrationId": "dev-delay" }));
    // PUBACK and the response are each delayed.
    assert!(started.elapsed().as_millis() >= 800);
}

#[test]
fn drop_after_bytes_closes_the_first_connection_only() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-drop", KEY, now() + 60, false);
    c.connect_raw("dev-drop", Some(&username(SCOPE, "dev-drop")), Some(&token));
    // The knob applies once the CONNECT names the device: it is answered, then the close.
    assert_eq!(c.connack(), 0);
    assert_eq!(c.recv(), Rx::Closed);

    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-drop", KEY), 0);
    let (status, _) = c.provision("dev-drop", None);
    assert_eq!(status, 200);
}

#[test]
fn tls12_only_refuses_tls13_clients() {
    let emu = Emulator::start(&["--tls12-only"]);
    let tls13 = TlsOptions {
        versions: &[&rustls::version::TLS13],
        ..TlsOptions::default()
    };
    assert!(Client::tls_with(&emu, &tls13).is_err());
    let tls12 = TlsOptions {
        versions: &[&rustls::version::TLS12],
        ..TlsOptions::default()
    };
    let mut c = Client::tls_with(&emu, &tls12).expect("TLS 1.2");
    assert_eq!(c.connect_sas("dev-1", KEY), 0);

    let emu = Emulator::start(&[]);
    assert!(Client::tls_with(&emu, &tls13).is_ok(), "TLS 1.3 by default");
}

#[test]
fn without_an_enrollment_file_every_device_gets_401() {
    let emu = Emulator::start_without_enrollments(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    c.subscribe();
    let (status, _, env) = c.register("1", &json!({ "registrationId": "dev-1" }));
    assert_eq!((status, &env["errorCode"]), (401, &json!(401002)));
}

#[test]
fn committed_example_file_serves_the_demo_devices() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/enrollments.example.json");
    let text = std::fs::read_to_string(path).expect("example file");
    let file: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let scope = file["idScope"].as_str().expect("idScope");
    let demo = &file["enrollments"][0];
    assert_eq!(demo["registrationId"], "demo-device-1");
    let key = demo["attestation"]["primaryKey"].as_str().expect("key");
    let group_key = file["groups"][0]["attestation"]["primaryKey"]
        .as_str()
        .expect("group key");
    let emu = Emulator::start_with(&text, &[]);
    for (reg, key) in [
        ("demo-device-1", key.to_owned()),
        (
            "any-group-device",
            derive_key(group_key, "any-group-device"),
        ),
    ] {
        let mut c = Client::tls(&emu);
        let token = sas_token(scope, reg, &key, now() + 60, false);
        c.connect_raw(reg, Some(&username(scope, reg)), Some(&token));
        assert_eq!(c.connack(), 0);
        let (status, resp) = c.provision(reg, None);
        assert_eq!(
            (status, &resp["status"]),
            (200, &json!("assigned")),
            "{resp}"
        );
    }
}

#[test]
fn misspelt_enrollment_keys_stop_the_start() {
    let dir = temp_dir("typo");
    let file = dir.join("e.json");
    std::fs::write(
        &file,
        r#"{ "idScope": "0ne1", "enrollments": [ { "registrationId": "a",
             "attestation": { "type": "x509" }, "throttlefirst": 1 } ] }"#,
    )
    .expect("write");
    let out = std::process::Command::new(binary())
        .args(["--port", "0", "--cert-dir"])
        .arg(dir.join("certs"))
        .arg("--enrollments")
        .arg(&file)
        .output()
        .expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("throttlefirst"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}

#[test]
fn limit_polls_answers_the_sixth_poll_in_ten_seconds_with_429() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-limit", KEY), 0);
    c.subscribe();
    let (_, _, resp) = c.register("r", &json!({ "registrationId": "dev-limit" }));
    let op = resp["operationId"].as_str().expect("op").to_owned();
    for rid in 1..=5 {
        let (status, _, _) = c.poll(&rid.to_string(), &op);
        assert_eq!(status, 202);
    }
    let (status, params, env) = c.poll("6", &op);
    assert_eq!((status, &env["errorCode"]), (429, &json!(429001)));
    let wait: u64 = param(&params, "retry-after")
        .and_then(|s| s.parse().ok())
        .expect("retry-after");
    assert!((1..=10).contains(&wait), "retry-after={wait}");
}
