//! The request shapes Microsoft's C SDKs send (emulator/README.md, "What Microsoft's SDKs
//! send"), byte for byte where it matters: user name, keep-alive, clean session, subscription
//! QoS, register and poll topics (`$rid` constant or a counter), bodies and publish QoS.
//! Each test replays one SDK's flow with a raw MQTT client over TLS and expects the
//! assignment the service gives it.

mod common;

use common::*;
use mqttrs::QoS;
use serde_json::{json, Value};

const REGISTER: &str = "$dps/registrations/PUT/iotdps-register/?$rid=";
const POLL: &str = "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=";

/// A SAS token without `skn`, as azure-sdk-for-c and the FreeRTOS middleware send it
/// (`az_iot_provisioning_client_sas_get_password` with an empty key name).
fn token_without_skn(reg: &str) -> String {
    let token = sas_token(SCOPE, reg, KEY, now() + 3600, false);
    let (without, _) = token.rsplit_once("&skn=").expect("skn");
    without.to_owned()
}

/// How one SDK publishes its requests.
struct Shape {
    /// The register request's QoS (1) or 0.
    register_qos1: bool,
    register_body: Vec<u8>,
    /// The poll body, given the poll's number (0 for the first).
    poll_body: Vec<u8>,
    /// `$rid` of the n-th request (0 = register).
    rid: fn(u32) -> String,
}

/// Registers and polls as `shape` says until the answer is not 202; returns it and the QoS
/// the responses came at.
fn run(c: &mut Client, shape: &Shape) -> (u8, u16, Value) {
    let topic = format!("{REGISTER}{}", (shape.rid)(0));
    if shape.register_qos1 {
        c.publish(&topic, &shape.register_body);
    } else {
        c.publish_qos0(&topic, &shape.register_body);
    }
    let (_, status, params, resp) = c.response_any();
    assert_eq!(status, 202, "{resp}");
    assert_eq!(param(&params, "$rid"), Some((shape.rid)(0).as_str()));
    let op = resp["operationId"]
        .as_str()
        .expect("operationId")
        .to_owned();
    for n in 1..20 {
        // Every SDK here publishes its polls at QoS 0.
        let topic = format!("{POLL}{}&operationId={op}", (shape.rid)(n));
        c.publish_qos0(&topic, &shape.poll_body);
        let (qos, status, params, resp) = c.response_any();
        assert_eq!(param(&params, "$rid"), Some((shape.rid)(n).as_str()));
        if status != 202 {
            return (qos, status, resp);
        }
    }
    panic!("still assigning after 19 polls");
}

fn assert_assigned(status: u16, resp: &Value, reg: &str) {
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["status"], "assigned", "{resp}");
    assert_eq!(resp["registrationState"]["registrationId"], reg);
    assert_eq!(
        resp["registrationState"]["assignedHub"],
        "hub-1.azure-devices.net"
    );
}

/// azure-sdk-for-c, sdk/samples/iot/paho_iot_provisioning_sas_sample.c with
/// sdk/src/azure/iot/az_iot_provisioning_client.c: user name without ClientVersion
/// (default options), keep-alive 240, clean session false, SUBSCRIBE QoS 1, register at QoS 1
/// on `$rid=1` with an empty payload, polls at QoS 0 on `$rid=1` with an empty payload.
#[test]
fn embedded_c_sdk_sas_sample_empty_bodies_and_constant_rid() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let user = format!("{SCOPE}/registrations/dev-1/api-version=2019-03-31");
    c.connect_with(
        240,
        false,
        "dev-1",
        Some(&user),
        Some(&token_without_skn("dev-1")),
    );
    assert_eq!(c.connack(), 0);
    c.subscribe();
    let shape = Shape {
        register_qos1: true,
        register_body: Vec::new(),
        poll_body: Vec::new(),
        rid: |_| "1".into(),
    };
    let (qos, status, resp) = run(&mut c, &shape);
    assert_eq!(qos, 1);
    assert_assigned(status, &resp, "dev-1");
    c.send(&mqttrs::Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);
    let log = emu.log_lines();
    assert_eq!(log[0]["clientVersion"], Value::Null);
    assert_eq!(log[0]["outcome"], "assigned");
}

/// azure-sdk-for-c, paho_iot_pnp_with_provisioning_sample.c: the register body from
/// `az_iot_provisioning_client_get_request_payload` with the model id as custom payload,
/// `{"registrationId":"…","payload":{"modelId":"…"}}`, at QoS 1; polls as in the SAS sample.
#[test]
fn embedded_c_sdk_pnp_sample_registration_json_with_model_id_payload() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let user = format!("{SCOPE}/registrations/dev-1/api-version=2019-03-31");
    c.connect_with(
        240,
        false,
        "dev-1",
        Some(&user),
        Some(&token_without_skn("dev-1")),
    );
    assert_eq!(c.connack(), 0);
    c.subscribe();
    let shape = Shape {
        register_qos1: true,
        register_body:
            br#"{"registrationId":"dev-1","payload":{"modelId":"dtmi:com:example:Thermostat;1"}}"#
                .to_vec(),
        poll_body: Vec::new(),
        rid: |_| "1".into(),
    };
    let (_, status, resp) = run(&mut c, &shape);
    assert_assigned(status, &resp, "dev-1");
    assert_eq!(
        resp["registrationState"]["payload"],
        json!({ "modelId": "dtmi:com:example:Thermostat;1" })
    );
}

/// azure-sdk-for-c, paho_iot_provisioning_sample.c: X.509 (no password, a client
/// certificate), otherwise the SAS sample's requests.
#[test]
fn embedded_c_sdk_x509_sample_empty_register_body() {
    let emu = Emulator::start(&[]);
    let cert = emu.dir.join("dev-x509.pem");
    let key = emu.dir.join("dev-x509-key.pem");
    let status = std::process::Command::new(binary())
        .arg("issue-device-cert")
        .arg("--cert-dir")
        .arg(emu.certs())
        .args(["--registration-id", "dev-x509", "--cert-out"])
        .arg(&cert)
        .arg("--key-out")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("issue-device-cert");
    assert!(status.success());
    let opts = TlsOptions {
        client_cert: Some((&cert, &key)),
        ..TlsOptions::default()
    };
    let mut c = Client::tls_with(&emu, &opts).expect("TLS");
    let user = format!("{SCOPE}/registrations/dev-x509/api-version=2019-03-31");
    c.connect_with(240, false, "dev-x509", Some(&user), None);
    assert_eq!(c.connack(), 0);
    c.subscribe();
    let shape = Shape {
        register_qos1: true,
        register_body: Vec::new(),
        poll_body: Vec::new(),
        rid: |_| "1".into(),
    };
    let (_, status, resp) = run(&mut c, &shape);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        resp["registrationState"]["assignedHub"],
        "hub-x509.azure-devices.net"
    );
}

/// azure-iot-sdk-c, provisioning_client/src/prov_transport_mqtt_common.c and
/// prov_device_ll_client.c: user name with `api-version=2021-06-01&ClientVersion=1.15.0`,
/// keep-alive 0 (the options are zeroed and not set), clean session, SAS with
/// `skn=registration`, SUBSCRIBE QoS 1 with packet id 1, then every request at QoS 0 with
/// `$rid` = the packet-id counter (1 for the register, 2, 3, … for the polls) and the same
/// body each time: `{"registrationId":"…"}` (plus `payload` when the app set one).
#[test]
fn azure_iot_sdk_c_rid_counter_and_registration_json_on_every_poll() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let user = format!("{SCOPE}/registrations/dev-1/api-version=2021-06-01&ClientVersion=1.15.0");
    let token = sas_token(SCOPE, "dev-1", KEY, now() + 3600, false);
    c.connect_with(0, true, "dev-1", Some(&user), Some(&token));
    assert_eq!(c.connack(), 0);
    c.subscribe();
    let body = br#"{"registrationId":"dev-1","payload":{"app":1}}"#.to_vec();
    let shape = Shape {
        register_qos1: false,
        register_body: body.clone(),
        poll_body: body,
        rid: |n| (n + 1).to_string(),
    };
    let (qos, status, resp) = run(&mut c, &shape);
    assert_eq!(qos, 1);
    assert_assigned(status, &resp, "dev-1");
    assert_eq!(resp["registrationState"]["payload"], json!({ "app": 1 }));
    c.ping();
    c.send(&mqttrs::Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);
    let log = emu.log_lines();
    assert_eq!(log[0]["apiVersion"], "2021-06-01");
    assert_eq!(log[0]["clientVersion"], "1.15.0");
}

/// azure-iot-middleware-freertos, source/azure_iot_provisioning_client.c: keep-alive 60,
/// clean session, user name without ClientVersion (the default user agent is empty), SAS
/// without `skn`, SUBSCRIBE at QoS 0 (its SUBACK is not checked), register and polls at QoS 0
/// on `$rid=1`, each with the body of `az_iot_provisioning_client_register_get_request_payload`:
/// `{"registrationId":"…"}`. The responses come at the granted QoS 0.
#[test]
fn freertos_middleware_qos0_subscription_and_registration_json_polls() {
    let emu = Emulator::start(&[]);
    let mut c = Client::tls(&emu);
    let user = format!("{SCOPE}/registrations/dev-1/api-version=2019-03-31");
    c.connect_with(
        60,
        true,
        "dev-1",
        Some(&user),
        Some(&token_without_skn("dev-1")),
    );
    assert_eq!(c.connack(), 0);
    let codes = c.subscribe_with(&[("$dps/registrations/res/#", QoS::AtMostOnce)]);
    assert_eq!(codes, vec![Some(0)]);
    let body = br#"{"registrationId":"dev-1"}"#.to_vec();
    let shape = Shape {
        register_qos1: false,
        register_body: body.clone(),
        poll_body: body,
        rid: |_| "1".into(),
    };
    let (qos, status, resp) = run(&mut c, &shape);
    assert_eq!(qos, 0);
    assert_assigned(status, &resp, "dev-1");
}

/// Shapes the service accepts beyond those: `{}`, a body without `registrationId`, a blank
/// register body, and a poll body of one space (what Microsoft's Python SDK sends).
#[test]
fn empty_object_no_registration_id_and_blank_bodies_are_accepted() {
    let emu = Emulator::start(&[]);
    let bodies: [(&[u8], &[u8]); 4] = [
        (b"{}", b" "),
        (br#"{"payload":{"a":1}}"#, b""),
        (b" \r\n", b"{}"),
        (
            br#"{"registrationId":"DEV-1"}"#,
            br#"{"registrationId":"dev-1"}"#,
        ),
    ];
    for (register, poll) in bodies {
        let mut c = Client::tls(&emu);
        assert_eq!(c.connect_sas("dev-1", KEY), 0);
        c.subscribe();
        let shape = Shape {
            register_qos1: true,
            register_body: register.to_vec(),
            poll_body: poll.to_vec(),
            rid: |n| format!("r{n}"),
        };
        let (_, status, resp) = run(&mut c, &shape);
        assert_assigned(status, &resp, "dev-1");
        if register.starts_with(br#"{"payload""#) {
            assert_eq!(resp["registrationState"]["payload"], json!({ "a": 1 }));
        } else {
            assert!(resp["registrationState"].get("payload").is_none(), "{resp}");
        }
    }
}

/// Keep-alive values from 0 to 1,200 s connect and register.
#[test]
fn keep_alive_from_0_to_1200_seconds() {
    let emu = Emulator::start(&[]);
    for keep_alive in [0, 1, 30, 60, 240, 1177, 1200] {
        let mut c = Client::tls(&emu);
        let token = sas_token(SCOPE, "dev-1", KEY, now() + 3600, false);
        c.connect_with(
            keep_alive,
            true,
            "dev-1",
            Some(&username(SCOPE, "dev-1")),
            Some(&token),
        );
        assert_eq!(c.connack(), 0, "keep-alive {keep_alive}");
        let (status, resp) = c.provision("dev-1", None);
        assert_eq!(status, 200, "keep-alive {keep_alive}: {resp}");
    }
}
