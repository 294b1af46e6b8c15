//! The library against the real emulator over loopback TLS: the whole registration flow and
//! every scenario knob the engine must handle.

mod common;

use common::{device_key, emulator_config, register, sym_emulator, test_key, Emulator};
use dps_mqtt::config::{Config, KeyKind};
use dps_mqtt::engine::Client;
use dps_mqtt::error::ErrorKind;
use dps_mqtt::hosted::{SystemClock, TcpTransport};
use serde_json::json;
use zeroize::Zeroizing;

/// One emulator with one symmetric-key enrollment using these knobs.
fn scenario(name: &str, knobs: serde_json::Value) -> (Emulator, Config) {
    let emu = sym_emulator(name, knobs, &[]);
    let cfg = emulator_config(&emu, Some(name), device_key(name));
    (emu, cfg)
}

#[test]
fn assigned_after_polling_with_retry_after() {
    let (_emu, cfg) = scenario(
        "poll-dev",
        json!({ "assignAfterPolls": 2, "retryAfter": 0 }),
    );
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
    assert_eq!(out.status.as_deref(), Some("assigned"));
    assert_eq!(
        out.assigned_hub.as_deref(),
        Some("test-hub.azure-devices.net")
    );
    assert_eq!(out.device_id.as_deref(), Some("poll-dev"));
    assert_eq!(out.substatus.as_deref(), Some("initialAssignment"));
    assert!(out.operation_id.is_some());
    assert_eq!(out.http_status, Some(200));
}

#[test]
fn retry_after_one_second_is_followed() {
    let (_emu, cfg) = scenario("ra1-dev", json!({ "assignAfterPolls": 1, "retryAfter": 1 }));
    let started = std::time::Instant::now();
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
    // Two waits of one second each (after the 202 to the register and to the first poll).
    assert!(started.elapsed() >= std::time::Duration::from_millis(2000));
    assert_eq!(
        out.retry_after_ms, None,
        "the final 200 carries no retry-after"
    );
}

#[test]
fn throttled_then_assigned() {
    let (_emu, cfg) = scenario(
        "throttle-dev",
        json!({ "throttleFirst": 2, "retryAfter": 0 }),
    );
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
}

#[test]
fn server_errors_then_assigned() {
    let (_emu, cfg) = scenario(
        "err500-dev",
        json!({ "serverErrorFirst": 2, "retryAfter": 0 }),
    );
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
}

#[test]
fn failed_outcome_is_reported_with_the_service_error() {
    let (_emu, cfg) = scenario(
        "failed-dev",
        json!({ "outcome": "failed", "errorCode": 400209, "errorMessage": "custom allocation failed" }),
    );
    let (code, out) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::RegistrationFailed));
    assert_eq!(out.status.as_deref(), Some("failed"));
    assert_eq!(out.error_code, Some(400209));
    assert_eq!(
        out.error_message.as_deref(),
        Some("custom allocation failed")
    );
}

#[test]
fn disabled_outcome_is_reported() {
    let (_emu, cfg) = scenario("disabled-dev", json!({ "outcome": "disabled" }));
    let (code, out) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::RegistrationDisabled));
    assert_eq!(out.status.as_deref(), Some("disabled"));
}

#[test]
fn one_byte_fragmented_server_writes() {
    let (_emu, cfg) = scenario(
        "frag-dev",
        json!({ "fragment": true, "assignAfterPolls": 1, "payload": {"big": "x".repeat(2000)} }),
    );
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
    assert!(out.payload.unwrap_or_default().contains(&"x".repeat(2000)));
}

#[test]
fn dropped_connection_is_reconnected_and_resubscribed() {
    let (emu, cfg) = scenario(
        "drop-dev",
        json!({ "dropAfterBytes": 40, "assignAfterPolls": 1 }),
    );
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
    drop(emu);
}

#[test]
fn deadline_expiry_while_assigning() {
    let (_emu, mut cfg) = scenario(
        "slow-dev",
        json!({ "assignAfterPolls": 1000000, "retryAfter": 1 }),
    );
    cfg.timing.deadline_ms = 2_500;
    let (code, out) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::TimeoutAssigning), "{out:?}");
    assert_eq!(out.status.as_deref(), Some("assigning"));
}

#[test]
fn custom_payload_round_trip_and_group_key() {
    let group_key = test_key("group-1");
    let emu = Emulator::start(
        json!({ "groups": [{
            "groupId": "group-1",
            "attestation": { "type": "symmetricKey", "primaryKey": group_key },
            "assignedHub": "group-hub.azure-devices.net",
            "retryAfter": 0,
        }] }),
        &[],
    );
    let mut cfg = emulator_config(
        &emu,
        Some("group-member-7"),
        KeyKind::Group(Zeroizing::new(group_key)),
    );
    cfg.payload = Some(
        r#"{"modelId":"dtmi:com:example:Thermostat;1","site":[1,2]}"#
            .parse()
            .unwrap(),
    );
    let (code, out) = register(&cfg);
    assert_eq!(code, Ok(()), "{out:?}");
    assert_eq!(
        out.assigned_hub.as_deref(),
        Some("group-hub.azure-devices.net")
    );
    let payload: serde_json::Value = serde_json::from_str(&out.payload.unwrap()).unwrap();
    assert_eq!(payload["site"], json!([1, 2]));
}

#[test]
fn wrong_key_is_an_auth_error_from_the_401_response() {
    let (emu, _) = scenario("auth-dev", json!({}));
    let cfg = emulator_config(&emu, Some("auth-dev"), device_key("not-the-key"));
    let (code, out) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::AuthUnauthorized), "{out:?}");
    assert_eq!(out.error_code, Some(401002));
    assert!(out.tracking_id.is_some());
}

#[test]
fn wrong_key_is_an_auth_error_from_connack_refusal() {
    let name = "connack-dev";
    let emu = sym_emulator(name, json!({}), &["--auth-failure", "connack"]);
    let cfg = emulator_config(&emu, Some(name), device_key("wrong"));
    let (code, _) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::AuthNotAuthorized));
}

#[test]
fn unknown_id_scope_is_refused() {
    let (emu, mut cfg) = scenario("scope-dev", json!({}));
    cfg.id_scope = Some("0ne99999999".parse().unwrap());
    let (code, _) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::AuthUnknownIdScope));
    drop(emu);
}

#[test]
fn untrusted_server_certificate_is_a_tls_error() {
    let (_emu, mut cfg) = scenario("tls-dev", json!({}));
    cfg.extra_anchors_pem.clear();
    cfg.use_default_roots = true;
    let (code, _) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::TlsCertUntrusted));
}

#[test]
fn nothing_listening_is_a_transport_error() {
    let (emu, mut cfg) = scenario("closed-dev", json!({}));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cfg.port = dps_mqtt::config::Port::new(listener.local_addr().unwrap().port()).unwrap();
    drop(listener);
    cfg.timing.backoff_initial_ms = 10;
    // Refused connects are retried until the deadline (tests/deadline.rs checks the message).
    cfg.timing.deadline_ms = 2_000;
    let (code, _) = register(&cfg);
    assert_eq!(code, Err(ErrorKind::TransportConnect));
    drop(emu);
}

#[test]
fn a_failed_attempt_can_be_retried_on_the_same_handle() {
    let (_emu, cfg) = scenario(
        "retry-dev",
        json!({ "assignAfterPolls": 1000000, "retryAfter": 1 }),
    );
    let mut cfg = cfg;
    cfg.timing.deadline_ms = 1_200;
    let mut client = Client::new(
        cfg.settings().unwrap(),
        TcpTransport::default(),
        SystemClock::default(),
    )
    .unwrap();
    for _ in 0..2 {
        client
            .start()
            .expect("a new attempt starts after the last one ended");
        let code = client.register_blocking(&mut |_| {});
        assert_eq!(code, Err(ErrorKind::TimeoutAssigning));
    }
}
