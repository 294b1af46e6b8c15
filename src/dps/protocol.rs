//! DPS topics, user name, request bodies and response parsing. Pure functions: everything that
//! comes from the network is treated as hostile (bounded, never panics, clear errors).

use crate::prelude::*;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::dps::sas::{percent_encode, HexCase};
use crate::error::{Error, ErrorKind, Result};
use crate::settings::{ModelId, Payload};

pub const DEFAULT_API_VERSION: &str = "2019-03-31";
/// The one subscription the service allows.
pub const SUBSCRIBE_FILTER: &str = "$dps/registrations/res/#";
const RESPONSE_PREFIX: &str = "$dps/registrations/res/";
/// The service's message limit is 96 KB; a body larger than this is not a DPS response.
pub const MAX_BODY: usize = 96 * 1024 + 1024;
/// The largest register body we send: the service refuses messages over 96 KB, and failing
/// before dialling is clearer than a dropped connection.
pub const MAX_REQUEST_BODY: usize = 96 * 1024;
/// JSON nesting accepted in a response or a custom payload; DPS responses nest 4 deep,
/// payloads a little more. serde_json's own limit (128) does not apply to `RawValue`.
const MAX_DEPTH: usize = 64;

fn bad(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::ProtocolBadResponse, detail)
}

/// serde_json quotes offending values in its messages; a hostile body must not turn into a
/// 90 KB error detail.
fn bad_json(what: &str, e: &serde_json::Error) -> Error {
    bad(format!("response is not {what}: {}", clip(&e.to_string())))
}

fn invalid_payload(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidPayload, detail)
}

/// `{idScope}/registrations/{registrationId}/api-version={v}[&ClientVersion={agent}]`.
pub fn username(
    id_scope: &str,
    registration_id: &str,
    api_version: &str,
    client_version: Option<&str>,
) -> String {
    let mut u = format!("{id_scope}/registrations/{registration_id}/api-version={api_version}");
    if let Some(agent) = client_version {
        u.push_str("&ClientVersion=");
        u.push_str(&percent_encode(agent, HexCase::Upper));
    }
    u
}

pub fn register_topic(rid: &str) -> String {
    format!("$dps/registrations/PUT/iotdps-register/?$rid={rid}")
}

pub fn poll_topic(rid: &str, operation_id: &str) -> String {
    format!(
        "$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={}",
        percent_encode(operation_id, HexCase::Upper)
    )
}

/// `{"registrationId":"...","payload":<raw JSON>,"csr":"..."}`; the payload is embedded as the
/// caller wrote it. `Config::settings` refuses a body over [`MAX_REQUEST_BODY`] before
/// dialling.
pub fn register_body(
    registration_id: &str,
    payload: Option<&Payload>,
    csr_b64: Option<&str>,
) -> Vec<u8> {
    let mut body = String::from("{\"registrationId\":");
    body.push_str(&serde_json::Value::from(registration_id).to_string());
    if let Some(payload) = payload {
        body.push_str(",\"payload\":");
        body.push_str(payload);
    }
    if let Some(csr) = csr_b64 {
        body.push_str(",\"csr\":");
        body.push_str(&serde_json::Value::from(csr).to_string());
    }
    body.push('}');
    body.into_bytes()
}

/// The `retry-after` parameter as the server sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    Absent,
    Seconds(u64),
    /// Negative, fractional, non-numeric or overflowing: the caller falls back to its floor.
    Invalid(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseTopic {
    pub status: u16,
    pub rid: Option<String>,
    pub retry_after: RetryAfter,
}

/// Parses `$dps/registrations/res/{status}/?$rid={rid}&retry-after={s}` (parameters in any
/// order, unknown ones ignored).
pub fn parse_response_topic(topic: &str) -> Result<ResponseTopic> {
    let rest = topic
        .strip_prefix(RESPONSE_PREFIX)
        .ok_or_else(|| bad(format!("not a response topic: {}", clip(topic))))?;
    let (status, query) = rest
        .split_once("/?")
        .unwrap_or((rest.trim_end_matches('/'), ""));
    if status.is_empty() || status.len() > 3 || !status.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("bad status in topic: {}", clip(topic))));
    }
    let status: u16 = status.parse().map_err(|_| bad("bad status"))?;
    let mut rid = None;
    let mut retry_after = RetryAfter::Absent;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "$rid" => rid = Some(v.to_owned()),
            "retry-after" => {
                retry_after = match v.parse::<u64>() {
                    Ok(s) if !v.starts_with('+') => RetryAfter::Seconds(s),
                    _ => RetryAfter::Invalid(clip(v).to_owned()),
                }
            }
            _ => {}
        }
    }
    Ok(ResponseTopic {
        status,
        rid,
        retry_after,
    })
}

pub(crate) fn clip(s: &str) -> &str {
    // 0 is always a char boundary, so the search ends there at the latest.
    let end = (0..=s.len().min(120))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    s.get(..end).unwrap_or_default()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationStatus {
    Assigning,
    Assigned,
    Failed,
    Disabled,
    Unassigned,
    Other(String),
}

impl RegistrationStatus {
    fn parse(s: &str) -> RegistrationStatus {
        match s {
            "assigning" => RegistrationStatus::Assigning,
            "assigned" => RegistrationStatus::Assigned,
            "failed" => RegistrationStatus::Failed,
            "disabled" => RegistrationStatus::Disabled,
            "unassigned" => RegistrationStatus::Unassigned,
            other => RegistrationStatus::Other(clip(other).to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RegistrationStatus::Assigning => "assigning",
            RegistrationStatus::Assigned => "assigned",
            RegistrationStatus::Failed => "failed",
            RegistrationStatus::Disabled => "disabled",
            RegistrationStatus::Unassigned => "unassigned",
            RegistrationStatus::Other(s) => s,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistrationState {
    pub registration_id: Option<String>,
    pub assigned_hub: Option<String>,
    pub device_id: Option<String>,
    pub status: Option<String>,
    pub substatus: Option<String>,
    pub etag: Option<String>,
    pub created_date_time_utc: Option<String>,
    pub last_updated_date_time_utc: Option<String>,
    /// The returned payload as JSON text.
    pub payload: Option<String>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub issued_certificate_chain: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationStatus {
    pub operation_id: String,
    pub status: RegistrationStatus,
    pub registration_state: Option<RegistrationState>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorEnvelope {
    pub error_code: Option<i64>,
    pub tracking_id: Option<String>,
    pub message: Option<String>,
    pub timestamp_utc: Option<String>,
}

/// Strings the service may send as numbers or strings (errorCode has been seen as both).
#[derive(Deserialize)]
#[serde(untagged)]
enum Loose<'a> {
    Int(i64),
    #[serde(borrow)]
    Str(alloc::borrow::Cow<'a, str>),
    Other(serde::de::IgnoredAny),
}

impl Loose<'_> {
    fn code(&self) -> Option<i64> {
        match self {
            Loose::Int(i) => Some(*i),
            Loose::Str(s) => s.trim().parse().ok(),
            Loose::Other(_) => None,
        }
    }
    fn text(&self) -> Option<String> {
        match self {
            Loose::Int(i) => Some(i.to_string()),
            Loose::Str(s) => Some(s.to_string()),
            Loose::Other(_) => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireState<'a> {
    #[serde(borrow)]
    registration_id: Option<Loose<'a>>,
    assigned_hub: Option<Loose<'a>>,
    device_id: Option<Loose<'a>>,
    status: Option<Loose<'a>>,
    substatus: Option<Loose<'a>>,
    etag: Option<Loose<'a>>,
    created_date_time_utc: Option<Loose<'a>>,
    last_updated_date_time_utc: Option<Loose<'a>>,
    payload: Option<&'a RawValue>,
    error_code: Option<Loose<'a>>,
    error_message: Option<Loose<'a>>,
    issued_certificate_chain: Option<Vec<Loose<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus<'a> {
    #[serde(borrow)]
    operation_id: Option<Loose<'a>>,
    status: Option<Loose<'a>>,
    registration_state: Option<WireState<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEnvelope<'a> {
    #[serde(borrow)]
    error_code: Option<Loose<'a>>,
    tracking_id: Option<Loose<'a>>,
    message: Option<Loose<'a>>,
    timestamp_utc: Option<Loose<'a>>,
}

/// How many arrays/objects JSON text opens at once at its deepest. Brackets inside strings do
/// not count; malformed text is left for serde to reject.
pub(crate) fn nesting_depth(text: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                // At most one per byte of `text`: it never gets near usize::MAX.
                depth = depth.saturating_add(1);
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Rejects oversized, over-deep and non-object documents before serde sees them (serde's
/// derived structs would also accept a JSON array, field by field).
fn check_json(body: &[u8]) -> Result<&str> {
    if body.len() > MAX_BODY {
        return Err(bad(format!("response body of {} bytes", body.len())));
    }
    let text = core::str::from_utf8(body).map_err(|_| bad("response body is not UTF-8"))?;
    if !text.trim_start().starts_with('{') {
        return Err(bad("response body is not a JSON object"));
    }
    if nesting_depth(text) > MAX_DEPTH {
        return Err(bad("response JSON nested too deeply"));
    }
    Ok(text)
}

fn text(v: &Option<Loose<'_>>) -> Option<String> {
    v.as_ref().and_then(Loose::text)
}

/// Parses a RegistrationOperationStatus (the body of 200 and 202 responses).
pub fn parse_operation_status(body: &[u8]) -> Result<OperationStatus> {
    let text_body = check_json(body)?;
    let wire: WireStatus<'_> =
        serde_json::from_str(text_body).map_err(|e| bad_json("a registration status", &e))?;
    // The one field the outcome hangs on: only a JSON string counts.
    let status = match &wire.status {
        Some(Loose::Str(s)) => s,
        _ => return Err(bad("response has no status string")),
    };
    let registration_state = wire.registration_state.map(|s| RegistrationState {
        registration_id: text(&s.registration_id),
        assigned_hub: text(&s.assigned_hub),
        device_id: text(&s.device_id),
        status: text(&s.status),
        substatus: text(&s.substatus),
        etag: text(&s.etag),
        created_date_time_utc: text(&s.created_date_time_utc),
        last_updated_date_time_utc: text(&s.last_updated_date_time_utc),
        payload: s.payload.map(|p| p.get().to_owned()),
        error_code: s.error_code.as_ref().and_then(Loose::code),
        error_message: text(&s.error_message),
        issued_certificate_chain: s
            .issued_certificate_chain
            .unwrap_or_default()
            .iter()
            .filter_map(Loose::text)
            .collect(),
    });
    Ok(OperationStatus {
        operation_id: text(&wire.operation_id).unwrap_or_default(),
        status: RegistrationStatus::parse(status),
        registration_state,
    })
}

/// Parses the error envelope sent with 4xx/5xx statuses.
pub fn parse_error_envelope(body: &[u8]) -> Result<ErrorEnvelope> {
    let text_body = check_json(body)?;
    let wire: WireEnvelope<'_> =
        serde_json::from_str(text_body).map_err(|e| bad_json("an error envelope", &e))?;
    Ok(ErrorEnvelope {
        error_code: wire.error_code.as_ref().and_then(Loose::code),
        tracking_id: text(&wire.tracking_id),
        message: text(&wire.message),
        timestamp_utc: text(&wire.timestamp_utc),
    })
}

// ---- certificate issuance -------------------------------------------------------------------

/// The api-version that carries `csr` and `issuedCertificateChain` (certificate issuance); used
/// when a CSR is configured and no api-version was set explicitly.
pub const CERTIFICATE_ISSUANCE_API_VERSION: &str = "2025-07-01-preview";
/// Largest CSR accepted: an RSA-4096 request is under 2 KiB; base64 of this still leaves the
/// register body far below the service's 96 KB.
const MAX_CSR_LEN: usize = 16 * 1024;

fn invalid_csr(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidCsr, detail)
}

/// The total length of the DER element starting at `der[0]`, or `None` when its header is
/// malformed or not in DER's shortest form.
fn der_element_len(der: &[u8]) -> Option<usize> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return usize::from(first).checked_add(2);
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len_bytes = der.get(2..)?.get(..n)?;
    if len_bytes.first() == Some(&0) {
        return None;
    }
    // At most 4 bytes: they fit in a 32-bit usize.
    let len = len_bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    // An element longer than the address space is no element of ours.
    let total = len.checked_add(n)?.checked_add(2)?;
    (len >= 0x80).then_some(total)
}

/// A PKCS#10 certificate signing request as DER: `input` is DER, or PEM with one
/// `CERTIFICATE REQUEST` (or `NEW CERTIFICATE REQUEST`) block. Only the outer structure is
/// checked (one SEQUENCE spanning the input): the service parses the rest.
pub fn csr_der(input: &[u8]) -> Result<Vec<u8>> {
    if input.len() > MAX_CSR_LEN * 2 {
        return Err(invalid_csr(format!(
            "{} bytes is too large for a CSR",
            input.len()
        )));
    }
    let trimmed = input.trim_ascii_start();
    let der = if trimmed.starts_with(b"-----BEGIN") {
        let text = core::str::from_utf8(trimmed).map_err(|_| invalid_csr("PEM is not UTF-8"))?;
        let label = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]
            .into_iter()
            .find(|l| text.starts_with(&format!("-----BEGIN {l}-----")))
            .ok_or_else(|| invalid_csr("PEM block is not a CERTIFICATE REQUEST"))?;
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let body = text
            .strip_prefix(begin.as_str())
            .and_then(|rest| rest.split_once(end.as_str()))
            .map(|(body, _)| body)
            .ok_or_else(|| invalid_csr("PEM block has no END line"))?;
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
            .map_err(|_| invalid_csr("PEM body is not base64"))?
    } else {
        input.to_vec()
    };
    if der.len() > MAX_CSR_LEN {
        return Err(invalid_csr(format!(
            "{} bytes is too large for a CSR",
            der.len()
        )));
    }
    if der.first() != Some(&0x30) || der_element_len(&der) != Some(der.len()) {
        return Err(invalid_csr("not one DER SEQUENCE (PKCS#10)"));
    }
    Ok(der)
}

/// The service's `issuedCertificateChain` (base64 DER certificates, leaf first) as PEM text,
/// one `CERTIFICATE` block per entry in the same order.
pub fn certificate_chain_pem(chain: &[String]) -> Result<String> {
    let mut pem = String::new();
    for (i, cert) in chain.iter().enumerate() {
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, cert.trim())
            .map_err(|_| bad(format!("issuedCertificateChain[{i}] is not base64")))?;
        if der.first() != Some(&0x30) || der_element_len(&der) != Some(der.len()) {
            return Err(bad(format!(
                "issuedCertificateChain[{i}] is not a DER certificate"
            )));
        }
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            // base64 output is ASCII.
            pem.push_str(core::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    Ok(pem)
}

/// The custom payload with `"modelId"` added as its first member (DPS reads the model id
/// inside `payload`; at the top level of the body it answers 400012). Without a payload the
/// result is `{"modelId":"..."}`; the payload's own bytes are kept as they are.
/// `ErrorKind::InvalidPayload` when the payload is not a JSON object, already has a `modelId`,
/// or grows over the service's limit.
pub fn payload_with_model_id(payload: Option<&Payload>, model_id: &ModelId) -> Result<Payload> {
    let member = format!("\"modelId\":{}", serde_json::Value::from(model_id.as_str()));
    let Some(payload) = payload else {
        return format!("{{{member}}}").parse();
    };
    let members: alloc::collections::BTreeMap<String, serde::de::IgnoredAny> =
        serde_json::from_str(payload).map_err(|_| {
            invalid_payload("with a model id, the payload must be a JSON object to carry it")
        })?;
    if members.contains_key("modelId") {
        return Err(invalid_payload(
            "the payload has its own modelId and a model id is set: set it in one place",
        ));
    }
    // A JSON object: `{`, its members, `}` (a `Payload` has no white space around it).
    let inner = payload
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .map(str::trim)
        .ok_or_else(|| invalid_payload("payload is not a JSON object"))?;
    if inner.is_empty() {
        format!("{{{member}}}")
    } else {
        format!("{{{member},{inner}}}")
    }
    .parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_and_topics() {
        assert_eq!(
            username("0ne1", "dev", DEFAULT_API_VERSION, None),
            "0ne1/registrations/dev/api-version=2019-03-31"
        );
        assert_eq!(
            username("0ne1", "dev", "2021-06-01", Some("dps-mqtt/0.1 (linux)")),
            "0ne1/registrations/dev/api-version=2021-06-01&ClientVersion=dps-mqtt%2F0.1%20%28linux%29"
        );
        assert_eq!(
            register_topic("7"),
            "$dps/registrations/PUT/iotdps-register/?$rid=7"
        );
        assert_eq!(
            poll_topic("8", "4.abc-def"),
            "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=8&operationId=4.abc-def"
        );
    }

    #[test]
    fn register_bodies() {
        let payload = |json: &str| json.parse::<Payload>().unwrap();
        assert_eq!(
            register_body("dev", None, None),
            br#"{"registrationId":"dev"}"#
        );
        assert_eq!(
            register_body("dev", Some(&payload(r#" {"modelId":"dtmi:x;1"} "#)), None),
            br#"{"registrationId":"dev","payload":{"modelId":"dtmi:x;1"}}"#
        );
        assert_eq!(
            register_body("dev", Some(&payload("42")), Some("MIIB")),
            br#"{"registrationId":"dev","payload":42,"csr":"MIIB"}"#
        );
    }

    #[test]
    fn response_topics_in_any_order() {
        let t = parse_response_topic("$dps/registrations/res/202/?$rid=5&retry-after=3").unwrap();
        assert_eq!(
            (t.status, t.rid.as_deref(), t.retry_after),
            (202, Some("5"), RetryAfter::Seconds(3))
        );
        let t =
            parse_response_topic("$dps/registrations/res/202/?retry-after=0&x=y&$rid=abc").unwrap();
        assert_eq!(
            (t.rid.as_deref(), t.retry_after),
            (Some("abc"), RetryAfter::Seconds(0))
        );
        let t = parse_response_topic("$dps/registrations/res/200/?$rid=1").unwrap();
        assert_eq!(t.retry_after, RetryAfter::Absent);
        let t = parse_response_topic("$dps/registrations/res/401/").unwrap();
        assert_eq!((t.status, t.rid), (401, None));
        for (v, want) in [
            ("-1", true),
            ("abc", true),
            ("1000000000000", false),
            ("99999999999999999999999", true),
            ("+3", true),
            ("", true),
        ] {
            let t = parse_response_topic(&format!(
                "$dps/registrations/res/429/?$rid=1&retry-after={v}"
            ))
            .unwrap();
            assert_eq!(matches!(t.retry_after, RetryAfter::Invalid(_)), want, "{v}");
        }
        for s in ["0", "999", "302"] {
            let t = parse_response_topic(&format!("$dps/registrations/res/{s}/?$rid=1")).unwrap();
            assert_eq!(t.status.to_string(), s);
        }
        let t = parse_response_topic(
            "$dps/registrations/res/429/?&&flag&$rid=&retry-after=2&retry-after=x&",
        )
        .unwrap();
        assert_eq!(
            (t.rid.as_deref(), t.retry_after),
            (Some(""), RetryAfter::Invalid("x".into()))
        );
        let long = format!("$dps/registrations/res/2000{}/?$rid=1", "0".repeat(100_000));
        let e = parse_response_topic(&long).unwrap_err();
        assert!(e.detail.len() < 300);
        for bad_topic in [
            "",
            "$dps/registrations/res/200?$rid=1",
            "$dps/registrations/res/200/x/?$rid=1",
            "$dps/registrations/res/ 200/?$rid=1",
            "$DPS/registrations/res/200/?$rid=1",
            "$dps/registrations/res/",
            "$dps/registrations/res/abc/?$rid=1",
            "$dps/registrations/res/1234/?$rid=1",
            "other/topic",
            "$dps/registrations/res/-1/",
        ] {
            assert_eq!(
                parse_response_topic(bad_topic).unwrap_err().kind,
                ErrorKind::ProtocolBadResponse,
                "{bad_topic}"
            );
        }
    }

    #[test]
    fn assigning_and_assigned_bodies() {
        let s =
            parse_operation_status(br#"{"operationId":"4.0a1b","status":"assigning"}"#).unwrap();
        assert_eq!(
            (s.operation_id.as_str(), &s.status, &s.registration_state),
            ("4.0a1b", &RegistrationStatus::Assigning, &None)
        );
        let s = parse_operation_status(br#"{"operationId":"4.0a1b","status":"assigned","registrationState":{
            "registrationId":"dev","createdDateTimeUtc":"2026-01-01T00:00:00Z","assignedHub":"hub.azure-devices.net",
            "deviceId":"dev","status":"assigned","substatus":"initialAssignment","lastUpdatedDateTimeUtc":"2026-01-01T00:00:01Z",
            "etag":"IjAwMDAi","payload":{"a":[1,2]}}}"#).unwrap();
        let st = s.registration_state.unwrap();
        assert_eq!(s.status, RegistrationStatus::Assigned);
        assert_eq!(st.assigned_hub.as_deref(), Some("hub.azure-devices.net"));
        assert_eq!(st.device_id.as_deref(), Some("dev"));
        assert_eq!(st.substatus.as_deref(), Some("initialAssignment"));
        assert_eq!(st.etag.as_deref(), Some("IjAwMDAi"));
        assert_eq!(st.payload.as_deref(), Some(r#"{"a":[1,2]}"#));
        let s = parse_operation_status(br#"{"operationId":"x","status":"failed","registrationState":{"registrationId":"dev","status":"failed","errorCode":400209,"errorMessage":"Custom allocation failed"}}"#).unwrap();
        let st = s.registration_state.unwrap();
        assert_eq!(
            (s.status, st.error_code, st.error_message.as_deref()),
            (
                RegistrationStatus::Failed,
                Some(400209),
                Some("Custom allocation failed")
            )
        );
        let s = parse_operation_status(br#"{"operationId":"x","status":"assigned","registrationState":{"issuedCertificateChain":["MIIA","MIIB"]}}"#).unwrap();
        assert_eq!(
            s.registration_state.unwrap().issued_certificate_chain,
            vec!["MIIA", "MIIB"]
        );
        assert_eq!(
            parse_operation_status(br#"{"status":"weird"}"#)
                .unwrap()
                .status,
            RegistrationStatus::Other("weird".into())
        );
    }

    #[test]
    fn error_envelopes() {
        let e = parse_error_envelope(br#"{"errorCode":401002,"trackingId":"t-1","message":"Unauthorized","timestampUtc":"2026-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(e.error_code, Some(401002));
        assert_eq!(e.tracking_id.as_deref(), Some("t-1"));
        assert_eq!(e.message.as_deref(), Some("Unauthorized"));
        let e = parse_error_envelope(br#"{"errorCode":"429001","message":null}"#).unwrap();
        assert_eq!((e.error_code, e.message), (Some(429001), None));
        assert_eq!(
            parse_error_envelope(b"{}").unwrap(),
            ErrorEnvelope::default()
        );
    }

    #[test]
    fn lenient_scalars() {
        let e = parse_error_envelope(
            br#"{"message":"a\"b\u00e9","errorCode":" 404001 ","trackingId":7,"timestampUtc":[1]}"#,
        )
        .unwrap();
        assert_eq!(e.message.as_deref(), Some("a\"b\u{e9}"));
        assert_eq!(e.error_code, Some(404001));
        assert_eq!(e.tracking_id.as_deref(), Some("7"));
        assert_eq!(e.timestamp_utc, None);
        for code in ["401002.5", "\"abc\"", "null", "99999999999999999999"] {
            let body = format!(r#"{{"errorCode":{code}}}"#);
            assert_eq!(
                parse_error_envelope(body.as_bytes()).unwrap().error_code,
                None,
                "{code}"
            );
        }
        let s = parse_operation_status(
            br#"{"status":"assigned","operationId":{"x":1},"registrationState":{"deviceId":[1],"payload":null}}"#,
        )
        .unwrap();
        assert_eq!(s.operation_id, "");
        let st = s.registration_state.unwrap();
        assert_eq!((st.device_id, st.payload), (None, None));
    }

    #[test]
    fn hostile_bodies_are_errors_not_panics() {
        let deep = "[".repeat(100_000);
        let deep_object = format!("{{\"a\":{}", "{\"a\":".repeat(100));
        let huge = format!("{{\"status\":\"{}\"}}", "a".repeat(MAX_BODY));
        let neither: Vec<&[u8]> = vec![
            b"",
            b"   ",
            b"not json",
            b"\xff\xfe",
            b"{\"status\":\"\xff\"}",
            b"[]",
            br#"[401002,"t","m","ts"]"#,
            b"\"assigned\"",
            b"null",
            b"{\"status\":\"assigned\"}x",
            b"{\"status\":\"assigned\"",
            deep.as_bytes(),
            deep_object.as_bytes(),
            huge.as_bytes(),
        ];
        for body in neither {
            let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
            for err in [
                parse_operation_status(body).unwrap_err(),
                parse_error_envelope(body).unwrap_err(),
            ] {
                assert_eq!(err.kind, ErrorKind::ProtocolBadResponse, "{shown}");
                assert!(err.detail.len() < 300, "{shown}");
            }
        }
        let not_status: Vec<&[u8]> = vec![
            b"{}",
            b"{\"status\":5}",
            b"{\"status\":null}",
            b"{\"status\":{\"a\":1}}",
            b"{\"registrationState\":7,\"status\":\"assigned\"}",
            b"{\"status\":\"assigned\",\"status\":\"failed\"}",
            br#"{"status":"assigned","registrationState":{"issuedCertificateChain":"MIIA"}}"#,
        ];
        for body in not_status {
            let err = parse_operation_status(body).unwrap_err();
            assert_eq!(err.kind, ErrorKind::ProtocolBadResponse);
        }
        let long_wrong_type = format!(
            r#"{{"status":"assigned","registrationState":"{}"}}"#,
            "z".repeat(90_000)
        );
        let err = parse_operation_status(long_wrong_type.as_bytes()).unwrap_err();
        assert!(
            err.detail.len() < 300,
            "detail of {} bytes",
            err.detail.len()
        );
    }

    #[test]
    fn csr_input_forms() {
        // SEQUENCE { INTEGER 0 }: the outer structure is all that is checked.
        let der = [0x30, 0x03, 0x02, 0x01, 0x00];
        assert_eq!(csr_der(&der).unwrap(), der);
        let pem =
            "\n-----BEGIN CERTIFICATE REQUEST-----\nMAMCAQA=\n-----END CERTIFICATE REQUEST-----\n";
        assert_eq!(csr_der(pem.as_bytes()).unwrap(), der);
        let new_pem = pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
        assert_eq!(csr_der(new_pem.as_bytes()).unwrap(), der);
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend(core::iter::repeat(0u8).take(256));
        assert_eq!(csr_der(&long).unwrap().len(), 260);
        for bad_csr in [
            &b""[..],
            b"\x30",
            b"\x30\x04\x02\x01\x00",
            b"\x30\x02\x02\x01\x00",
            b"\x31\x03\x02\x01\x00",
            b"\x30\x81\x03\x02\x01\x00",
            b"\x30\x85\x01\x00\x00\x00\x00",
            b"\x30\xff",
            b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE REQUEST-----\nMAMCAQA=\n",
            b"-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n",
        ] {
            assert_eq!(
                csr_der(bad_csr).unwrap_err().kind,
                ErrorKind::InvalidCsr,
                "{bad_csr:?}"
            );
        }
        let huge = vec![0x30; MAX_CSR_LEN * 3];
        assert_eq!(csr_der(&huge).unwrap_err().kind, ErrorKind::InvalidCsr);
    }

    #[test]
    fn issued_chain_becomes_pem_in_order() {
        let long = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [&[0x30u8, 0x81, 0x80][..], &[7u8; 0x80]].concat(),
        );
        let pem = certificate_chain_pem(&["MAMCAQA=".into(), long.clone()]).unwrap();
        let blocks: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0],
            "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n"
        );
        assert!(blocks[1].lines().all(|l| l.len() <= 64));
        assert_eq!(
            blocks[1]
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
            long
        );
        assert_eq!(certificate_chain_pem(&[]).unwrap(), "");
        for bad_cert in ["not base64!", "", "AAAA", "MAQCAQA="] {
            assert_eq!(
                certificate_chain_pem(&[bad_cert.into()]).unwrap_err().kind,
                ErrorKind::ProtocolBadResponse,
                "{bad_cert}"
            );
        }
    }

    #[test]
    fn model_id_joins_the_payload() {
        let m: ModelId = "dtmi:com:example:Thermostat;1".parse().unwrap();
        let joined = |json: Option<&str>| {
            let payload = json.map(|j| j.parse::<Payload>().unwrap());
            payload_with_model_id(payload.as_ref(), &m).map(|p| p.as_str().to_owned())
        };
        assert_eq!(
            joined(None).unwrap(),
            r#"{"modelId":"dtmi:com:example:Thermostat;1"}"#
        );
        assert_eq!(
            joined(Some(" { } ")).unwrap(),
            r#"{"modelId":"dtmi:com:example:Thermostat;1"}"#
        );
        assert_eq!(
            joined(Some(r#" {"site": [1, {"x":"}"}], "n":2.50} "#)).unwrap(),
            r#"{"modelId":"dtmi:com:example:Thermostat;1","site": [1, {"x":"}"}], "n":2.50}"#
        );
        for bad in [
            "[1]",
            "\"text\"",
            "3",
            "null",
            r#"{"modelId":"dtmi:other;1"}"#,
        ] {
            assert_eq!(
                joined(Some(bad)).unwrap_err().kind,
                ErrorKind::InvalidPayload,
                "{bad}"
            );
        }
        // The model id must still fit the service's limit.
        let full = format!(
            "{{\"a\":\"{}\"}}",
            "x".repeat(crate::settings::MAX_PAYLOAD - 8)
        );
        let e = joined(Some(&full)).unwrap_err();
        assert!(
            e.detail.contains("the service accepts at most 98304"),
            "{e}"
        );
    }

    #[test]
    fn clip_keeps_120_bytes_and_ends_on_a_char_boundary() {
        assert_eq!(clip(""), "");
        assert_eq!(clip(&"a".repeat(200)), "a".repeat(120));
        // 119 ASCII bytes, then a 2-byte character across the 120-byte mark: it is dropped.
        let across = format!("{}é", "a".repeat(119));
        assert_eq!(clip(&across), "a".repeat(119));
        assert_eq!(clip(&"é".repeat(100)), "é".repeat(60));
    }

    #[test]
    fn der_element_lengths_take_the_shortest_form_only() {
        assert_eq!(der_element_len(&[0x30]), None);
        assert_eq!(der_element_len(&[0x30, 0x05]), Some(7));
        assert_eq!(der_element_len(&[0x30, 0x81, 0x80]), Some(131));
        assert_eq!(der_element_len(&[0x30, 0x82, 0x01, 0x00]), Some(260));
        // Long form for a length below 128, a leading zero, no length bytes, more than 4.
        assert_eq!(der_element_len(&[0x30, 0x81, 0x7f]), None);
        assert_eq!(der_element_len(&[0x30, 0x82, 0x00, 0x80]), None);
        assert_eq!(der_element_len(&[0x30, 0x80]), None);
        assert_eq!(der_element_len(&[0x30, 0x85, 1, 0, 0, 0, 0]), None);
        // Length bytes missing.
        assert_eq!(der_element_len(&[0x30, 0x82, 0x01]), None);
        assert_eq!(
            der_element_len(&[0x30, 0x84, 0x01, 0x00, 0x00, 0x00]),
            Some(0x0100_0006)
        );
    }
}
