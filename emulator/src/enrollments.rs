//! The enrollment file: id scope, individual enrollments, groups, and their scenario knobs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use zeroize::Zeroizing;

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum AuthFailure {
    /// CONNACK 0, then 401 and the error envelope on the first request, then close.
    #[default]
    #[serde(rename = "401")]
    Response401,
    /// CONNACK 5 (not authorized).
    #[serde(rename = "connack")]
    Connack,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Assigned,
    Failed,
    Disabled,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Attestation {
    #[serde(rename_all = "camelCase")]
    SymmetricKey {
        primary_key: String,
        #[serde(default)]
        secondary_key: Option<String>,
    },
    X509,
}

/// What the service does for a device: assignment and scenario knobs.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Behaviour {
    #[serde(default = "default_hub")]
    pub assigned_hub: String,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default = "default_substatus")]
    pub substatus: String,
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    #[serde(default = "default_retry_after")]
    pub retry_after: u64,
    #[serde(default)]
    pub assign_after_polls: u64,
    #[serde(default)]
    pub outcome: Outcome,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub throttle_first: u64,
    #[serde(default)]
    pub server_error_first: u64,
    #[serde(default)]
    pub drop_after_bytes: Option<u64>,
    #[serde(default = "default_drop_connections")]
    pub drop_connections: u64,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub fragment: bool,
    /// Enforce the service's 5 status polls per 10 s per device (429 beyond).
    #[serde(default)]
    pub limit_polls: bool,
    #[serde(default)]
    pub auth_failure: Option<AuthFailure>,
}

fn default_hub() -> String {
    "emulated-hub.azure-devices.net".to_owned()
}
fn default_substatus() -> String {
    "initialAssignment".to_owned()
}
fn default_retry_after() -> u64 {
    3
}
fn default_drop_connections() -> u64 {
    1
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub registration_id: String,
    pub attestation: Attestation,
    #[serde(flatten)]
    pub behaviour: Behaviour,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub group_id: String,
    pub attestation: Attestation,
    #[serde(flatten)]
    pub behaviour: Behaviour,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollmentFile {
    #[serde(default)]
    pub id_scope: String,
    #[serde(default)]
    pub auth_failure: Option<AuthFailure>,
    #[serde(default)]
    pub enrollments: Vec<Enrollment>,
    #[serde(default)]
    pub groups: Vec<Group>,
}

/// Knobs shared by enrollments and groups.
const BEHAVIOUR_KEYS: &[&str] = &[
    "assignedHub",
    "deviceId",
    "substatus",
    "payload",
    "retryAfter",
    "assignAfterPolls",
    "outcome",
    "errorCode",
    "errorMessage",
    "throttleFirst",
    "serverErrorFirst",
    "dropAfterBytes",
    "dropConnections",
    "delayMs",
    "fragment",
    "limitPolls",
    "authFailure",
];

/// A misspelt knob would silently change a test's meaning: refuse unknown keys (serde's
/// `deny_unknown_fields` does not work through `flatten`). Keys starting with `_` are comments.
fn check_keys(file: &serde_json::Value) -> Result<(), String> {
    let lists = [("enrollments", "registrationId"), ("groups", "groupId")];
    for (list, id_key) in lists {
        let items = file.get(list).and_then(|v| v.as_array());
        for item in items.into_iter().flatten() {
            let Some(obj) = item.as_object() else {
                continue;
            };
            let id = obj.get(id_key).and_then(|v| v.as_str()).unwrap_or("?");
            let allowed = |k: &str| {
                k.starts_with('_')
                    || k == id_key
                    || k == "attestation"
                    || BEHAVIOUR_KEYS.contains(&k)
            };
            if let Some(bad) = obj.keys().find(|k| !allowed(k)) {
                return Err(format!("{list} entry {id:?}: unknown key {bad:?}"));
            }
            let attestation = obj.get("attestation").and_then(|v| v.as_object());
            let attestation_keys = ["type", "primaryKey", "secondaryKey"];
            if let Some(bad) = attestation
                .into_iter()
                .flat_map(|a| a.keys())
                .find(|k| !k.starts_with('_') && !attestation_keys.contains(&k.as_str()))
            {
                return Err(format!(
                    "{list} entry {id:?}: unknown attestation key {bad:?}"
                ));
            }
        }
    }
    Ok(())
}

impl EnrollmentFile {
    pub fn load(path: &std::path::Path) -> Result<EnrollmentFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        // serde would read a struct from an array too: `[]` would be an empty file.
        if !value.is_object() {
            return Err(format!(
                "{}: the file must be a JSON object with \"idScope\", \"enrollments\" and \
                 \"groups\" (found {})",
                path.display(),
                json_kind(&value)
            ));
        }
        check_keys(&value).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: EnrollmentFile =
            serde_json::from_value(value).map_err(|e| format!("{}: {e}", path.display()))?;
        let entries = file
            .enrollments
            .iter()
            .map(|e| {
                (
                    format!("enrollments entry {:?}", e.registration_id),
                    &e.attestation,
                )
            })
            .chain(
                file.groups
                    .iter()
                    .map(|g| (format!("groups entry {:?}", g.group_id), &g.attestation)),
            );
        for (entry, attestation) in entries {
            if let Attestation::SymmetricKey {
                primary_key,
                secondary_key,
            } = attestation
            {
                let keys = std::iter::once(("primaryKey", primary_key))
                    .chain(secondary_key.iter().map(|k| ("secondaryKey", k)));
                for (field, k) in keys {
                    // An empty key would make every signature over it valid for anyone.
                    match STANDARD.decode(k) {
                        Ok(bytes) if !bytes.is_empty() => {}
                        Ok(_) => {
                            return Err(format!(
                                "{}: {entry}: attestation.{field} is empty",
                                path.display()
                            ))
                        }
                        Err(_) => {
                            return Err(format!(
                                "{}: {entry}: attestation.{field} is not base64",
                                path.display()
                            ))
                        }
                    }
                }
            }
        }
        if file
            .enrollments
            .iter()
            .any(|e| e.registration_id.is_empty())
        {
            return Err(format!(
                "{}: an enrollments entry has an empty registrationId",
                path.display()
            ));
        }
        if file.groups.iter().any(|g| g.group_id.is_empty()) {
            return Err(format!(
                "{}: a groups entry has an empty groupId",
                path.display()
            ));
        }
        Ok(file)
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A group's device key: `base64(HMAC-SHA256(base64decode(groupKey), registrationId))`.
fn derive_device_key(group_key_b64: &str, registration_id: &str) -> Option<Zeroizing<String>> {
    let key = Zeroizing::new(STANDARD.decode(group_key_b64).ok()?);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(registration_id.as_bytes());
    let derived = Zeroizing::new(mac.finalize().into_bytes().to_vec());
    Some(Zeroizing::new(STANDARD.encode(&*derived)))
}

/// Who a connection turned out to be.
#[derive(Clone, Debug)]
pub struct Identity {
    pub registration_id: String,
    /// `individual` or `group:<groupId>`, for the connection log.
    pub enrollment: String,
    pub behaviour: Behaviour,
}

/// How a device authenticated.
pub enum Credentials<'a> {
    /// The exact bytes after `sr=` and the signature, already URL-decoded.
    Sas { signed: &'a str, signature: &'a str },
    /// A client certificate chaining to the device CA, with this CN.
    Certificate { common_name: &'a str },
}

impl EnrollmentFile {
    /// The enrollment that accepts these credentials for this registration id.
    pub fn authenticate(&self, registration_id: &str, creds: &Credentials<'_>) -> Option<Identity> {
        let same = |a: &str| a.eq_ignore_ascii_case(registration_id);
        let verifies = |key: &str, signed: &str, signature: &str| {
            let (Ok(key), Ok(signature)) = (STANDARD.decode(key), STANDARD.decode(signature))
            else {
                return false;
            };
            let key = Zeroizing::new(key);
            Hmac::<Sha256>::new_from_slice(&key).is_ok_and(|mut mac| {
                mac.update(signed.as_bytes());
                mac.verify_slice(&signature).is_ok()
            })
        };
        let found = |enrollment: String, behaviour: &Behaviour| {
            Some(Identity {
                registration_id: registration_id.to_owned(),
                enrollment,
                behaviour: behaviour.clone(),
            })
        };
        let group = |g: &Group| format!("group:{}", g.group_id);
        match creds {
            Credentials::Sas { signed, signature } => {
                // An individual enrollment takes precedence over groups, as in DPS.
                if let Some(e) = self.enrollments.iter().find(|e| same(&e.registration_id)) {
                    let ok = match &e.attestation {
                        Attestation::SymmetricKey {
                            primary_key,
                            secondary_key,
                        } => std::iter::once(primary_key)
                            .chain(secondary_key)
                            .any(|k| verifies(k, signed, signature)),
                        Attestation::X509 => false,
                    };
                    return ok
                        .then(|| found("individual".into(), &e.behaviour))
                        .flatten();
                }
                for g in &self.groups {
                    if let Attestation::SymmetricKey {
                        primary_key,
                        secondary_key,
                    } = &g.attestation
                    {
                        let ok = std::iter::once(primary_key).chain(secondary_key).any(|k| {
                            derive_device_key(k, registration_id)
                                .is_some_and(|device_key| verifies(&device_key, signed, signature))
                        });
                        if ok {
                            return found(group(g), &g.behaviour);
                        }
                    }
                }
                None
            }
            Credentials::Certificate { common_name } => {
                if !same(common_name) {
                    return None;
                }
                if let Some(e) = self.enrollments.iter().find(|e| same(&e.registration_id)) {
                    return matches!(e.attestation, Attestation::X509)
                        .then(|| found("individual".into(), &e.behaviour))
                        .flatten();
                }
                self.groups
                    .iter()
                    .find(|g| matches!(g.attestation, Attestation::X509))
                    .and_then(|g| found(group(g), &g.behaviour))
            }
        }
    }

    /// The enrollment's own setting, else the command line's, else the file's, else 401.
    pub fn auth_failure_for(
        &self,
        registration_id: &str,
        command_line: Option<AuthFailure>,
    ) -> AuthFailure {
        self.enrollments
            .iter()
            .find(|e| e.registration_id.eq_ignore_ascii_case(registration_id))
            .and_then(|e| e.behaviour.auth_failure)
            .or(command_line)
            .or(self.auth_failure)
            .unwrap_or_default()
    }
}
