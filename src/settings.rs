//! Settings as validated types. Each is parsed once, where it is set (a `dps_config_set_*`
//! call or a [`Config`](crate::config::Config) setter), and a refusal says exactly what is
//! wrong; the config, the engine and the byte layers take these types and check nothing again.
//! Rules that join several settings (a credential present, the X.509 CN, offload
//! contradictions) are `Config::settings`'s.

use crate::prelude::*;
use core::fmt;
use core::ops::Deref;
use core::str::FromStr;

use serde_json::value::RawValue;

use crate::dps::protocol::{self, clip};
use crate::error::{Error, ErrorKind, Result};

/// A setting held as text: read it as a `&str`, shown as itself.
macro_rules! text_setting {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_setting! {
    /// A registration id: 1 to 128 characters of `a-z A-Z 0-9 - . _ :`, the last one a letter,
    /// a digit or `-` (the service's rule; it compares ids case-insensitively).
    RegistrationId
}

impl FromStr for RegistrationId {
    type Err = Error;
    fn from_str(id: &str) -> Result<Self> {
        let wrong = |why: String| Error::new(ErrorKind::InvalidRegistrationId, why);
        if id.is_empty() {
            return Err(wrong("registration id is empty".into()));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
        if let Some(c) = id.chars().find(|c| !allowed(*c)) {
            return Err(wrong(format!(
                "registration id {:?} contains {c:?}; only letters, digits and - . _ : are allowed",
                clip(id)
            )));
        }
        // ASCII only from here: bytes are characters.
        if id.len() > 128 {
            return Err(wrong(format!(
                "registration id has {} characters; at most 128",
                id.len()
            )));
        }
        match id.chars().last() {
            Some(c) if c.is_ascii_alphanumeric() || c == '-' => Ok(RegistrationId(id.to_owned())),
            last => Err(wrong(format!(
                "registration id {id:?} ends with {:?}; the last character must be a letter, a \
                 digit or -",
                last.unwrap_or_default()
            ))),
        }
    }
}

text_setting! {
    /// An id scope: 1 to 64 letters or digits, such as `0ne00000001`.
    IdScope
}

impl FromStr for IdScope {
    type Err = Error;
    fn from_str(scope: &str) -> Result<Self> {
        let wrong = |why: String| Error::new(ErrorKind::InvalidIdScope, why);
        if scope.is_empty() {
            return Err(wrong("id scope is empty".into()));
        }
        if let Some(c) = scope.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(wrong(format!(
                "id scope {:?} contains {c:?}; an id scope is letters and digits, such as \
                 0ne00000001",
                clip(scope)
            )));
        }
        if scope.len() > 64 {
            return Err(wrong(format!(
                "id scope has {} characters; at most 64",
                scope.len()
            )));
        }
        Ok(IdScope(scope.to_owned()))
    }
}

text_setting! {
    /// A server's host: a DNS name (RFC 1123: at most 253 characters, dot-separated labels of
    /// 1 to 63 letters, digits or `-`, no label starting or ending with `-`, the last one not
    /// all digits, no trailing dot), or an IPv4 or IPv6 address. An IPv6 address may be given
    /// in brackets (`[::1]`); it is held without them, as the connect hook and the TLS server
    /// name want it.
    EndpointHost
}

/// Longest DNS name, without a trailing dot (RFC 1035 section 2.3.4).
const MAX_HOST_NAME: usize = 253;
const MAX_LABEL: usize = 63;

impl EndpointHost {
    /// Parses `host`, naming it `what` ("host", "proxy host") in a refusal, which is
    /// `ErrorKind::InvalidArgument`.
    pub fn parse_named(host: &str, what: &str) -> Result<EndpointHost> {
        let wrong = |why: String| Error::new(ErrorKind::InvalidArgument, why);
        let shown = clip(host);
        if host.is_empty() {
            return Err(wrong(format!("{what} is empty")));
        }
        if let Some(inner) = host.strip_prefix('[') {
            return match inner.strip_suffix(']') {
                Some(address) if is_ipv6(address) => Ok(EndpointHost(address.to_owned())),
                _ => Err(wrong(format!(
                    "{what} {shown:?} is not an IPv6 address in brackets, such as [::1]"
                ))),
            };
        }
        if host.contains(':') {
            return if is_ipv6(host) {
                Ok(EndpointHost(host.to_owned()))
            } else {
                Err(wrong(format!(
                    "{what} {shown:?} contains ':' but is not an IPv6 address; give the port \
                     separately"
                )))
            };
        }
        if host.len() > MAX_HOST_NAME {
            return Err(wrong(format!(
                "{what} is {} characters long; a host name has at most {MAX_HOST_NAME}",
                host.len()
            )));
        }
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return if is_ipv4(host) {
                Ok(EndpointHost(host.to_owned()))
            } else {
                Err(wrong(format!(
                    "{what} {shown:?} is neither an IPv4 address nor a host name"
                )))
            };
        }
        if host.ends_with('.') {
            return Err(wrong(format!(
                "{what} {shown:?} ends with '.'; write it without the trailing dot"
            )));
        }
        for label in host.split('.') {
            if label.is_empty() {
                return Err(wrong(format!(
                    "{what} {shown:?} has an empty label (a leading dot or two dots in a row)"
                )));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
            {
                return Err(wrong(format!(
                    "{what} {shown:?} contains {c:?}; a host name has only letters, digits, \
                     '-' and '.'"
                )));
            }
            if label.len() > MAX_LABEL {
                return Err(wrong(format!(
                    "{what} {shown:?} has a label of {} characters; at most {MAX_LABEL}",
                    label.len()
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(wrong(format!(
                    "{what} {shown:?} has a label {label:?} starting or ending with '-'"
                )));
            }
        }
        // RFC 3696 section 2: a top-level domain is never all digits (TLS refuses such names).
        if host
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(wrong(format!(
                "{what} {shown:?} ends in an all-numeric label; a top-level domain has a letter"
            )));
        }
        Ok(EndpointHost(host.to_owned()))
    }
}

/// A dotted-quad IPv4 address: four decimal numbers from 0 to 255, without leading zeros (as
/// `core::net` reads them; a byte check here costs less flash than its parser).
fn is_ipv4(text: &str) -> bool {
    let mut parts = 0u8;
    text.split('.').all(|part| {
        parts = parts.saturating_add(1);
        (1..=3).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_digit())
            && !(part.len() > 1 && part.starts_with('0'))
            && part.parse::<u8>().is_ok()
    }) && parts == 4
}

/// An IPv6 address in text (RFC 4291 section 2.2): eight groups of 1 to 4 hex digits
/// separated by `:`, one `::` standing for one or more groups of zeros, the last two groups
/// possibly written as an IPv4 address. No zone (`%eth0`).
fn is_ipv6(text: &str) -> bool {
    /// The number of groups in `part` (`a:b:c`), or `None` when one is not 1 to 4 hex digits.
    fn groups(part: &str) -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let mut n = 0usize;
        for group in part.split(':') {
            if !(1..=4).contains(&group.len()) || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            n = n.saturating_add(1);
        }
        Some(n)
    }
    let (hex, v4_groups) = match text.rsplit_once(':') {
        Some((_, last)) if last.contains('.') => {
            let Some(head) = text.strip_suffix(last).filter(|_| is_ipv4(last)) else {
                return false;
            };
            // `head` ends with the `:` before the IPv4 part; keep it only as part of `::`.
            let head = if head.ends_with("::") {
                head
            } else {
                head.strip_suffix(':').unwrap_or(head)
            };
            (head, 2)
        }
        _ => (text, 0),
    };
    match hex.split_once("::") {
        Some((before, after)) if !after.contains("::") => match (groups(before), groups(after)) {
            (Some(a), Some(b)) => a.saturating_add(b).saturating_add(v4_groups) <= 7,
            _ => false,
        },
        Some(_) => false,
        None => groups(hex).is_some_and(|n| n.saturating_add(v4_groups) == 8),
    }
}

impl EndpointHost {
    /// The global DPS endpoint.
    pub fn global() -> EndpointHost {
        EndpointHost(crate::config::DEFAULT_HOST.to_owned())
    }
}

impl FromStr for EndpointHost {
    type Err = Error;
    fn from_str(host: &str) -> Result<Self> {
        EndpointHost::parse_named(host, "host")
    }
}

/// A TCP port: 1 to 65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(u16);

impl Port {
    /// MQTT over TLS: 8883.
    pub fn mqtt() -> Port {
        Port(crate::config::DEFAULT_PORT)
    }

    /// MQTT over WebSocket over TLS: 443.
    pub fn websocket() -> Port {
        Port(crate::layers::ws::DEFAULT_PORT)
    }

    /// `ErrorKind::InvalidArgument` for 0, naming it `what` ("port", "proxy port").
    pub fn new_named(port: u16, what: &str) -> Result<Port> {
        if port == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("{what} 0 is not a port; give 1 to 65535"),
            ));
        }
        Ok(Port(port))
    }

    pub fn new(port: u16) -> Result<Port> {
        Port::new_named(port, "port")
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// Largest custom payload: the service refuses messages over 96 KiB.
pub(crate) const MAX_PAYLOAD: usize = protocol::MAX_REQUEST_BODY;
/// Deepest nesting accepted in a payload (.NET JSON parsers' default limit).
pub(crate) const MAX_PAYLOAD_DEPTH: usize = 64;

text_setting! {
    /// A custom payload: one JSON value of at most 96 KiB nested at most 64 levels deep, held
    /// as the caller wrote it without the white space around it.
    Payload
}

impl FromStr for Payload {
    type Err = Error;
    fn from_str(json: &str) -> Result<Self> {
        let wrong = |why: String| Error::new(ErrorKind::InvalidPayload, why);
        if json.len() > MAX_PAYLOAD {
            return Err(wrong(format!(
                "payload is {} bytes; the service accepts at most {MAX_PAYLOAD}",
                json.len()
            )));
        }
        let depth = protocol::nesting_depth(json);
        if depth > MAX_PAYLOAD_DEPTH {
            return Err(wrong(format!(
                "payload nests {depth} levels deep; at most {MAX_PAYLOAD_DEPTH}"
            )));
        }
        let raw: Box<RawValue> = serde_json::from_str(json).map_err(|e| {
            wrong(format!(
                "payload is not valid JSON: {}",
                clip(&e.to_string())
            ))
        })?;
        Ok(Payload(raw.get().to_owned()))
    }
}

/// Longest model id accepted: DTDL's limit for a DTMI.
const MAX_MODEL_ID: usize = 2048;

text_setting! {
    /// An IoT Plug and Play model id (DTMI): `dtmi:` then `:`-separated segments (a letter,
    /// then letters, digits or `_`, not ending in `_`), then an optional `;version` (1 to 9
    /// digits, no leading zero, optionally `.minor` of 1 to 6 digits), e.g.
    /// `dtmi:com:example:Thermostat;1`.
    ModelId
}

impl FromStr for ModelId {
    type Err = Error;
    fn from_str(model_id: &str) -> Result<Self> {
        fn segment_ok(s: &str) -> bool {
            let b = s.as_bytes();
            b.first().is_some_and(u8::is_ascii_alphabetic)
                && b.last() != Some(&b'_')
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        }
        fn number_ok(s: &str, max_digits: usize) -> bool {
            (1..=max_digits).contains(&s.len())
                && !s.starts_with('0')
                && s.bytes().all(|c| c.is_ascii_digit())
        }
        let (path, version) = match model_id.split_once(';') {
            Some((path, version)) => (path, Some(version)),
            None => (model_id, None),
        };
        let path_ok = path
            .strip_prefix("dtmi:")
            .is_some_and(|p| p.split(':').all(segment_ok));
        let version_ok = version.map_or(true, |v| match v.split_once('.') {
            Some((major, minor)) => number_ok(major, 9) && number_ok(minor, 6),
            None => number_ok(v, 9),
        });
        if model_id.len() > MAX_MODEL_ID {
            return Err(Error::new(
                ErrorKind::InvalidModelId,
                format!(
                    "model id is {} bytes; at most {MAX_MODEL_ID}",
                    model_id.len()
                ),
            ));
        }
        if path_ok && version_ok {
            Ok(ModelId(model_id.to_owned()))
        } else {
            Err(Error::new(
                ErrorKind::InvalidModelId,
                format!(
                    "model id {:?} is not a DTMI such as dtmi:com:example:Thermostat;1",
                    clip(model_id)
                ),
            ))
        }
    }
}

text_setting! {
    /// A service api-version: `YYYY-MM-DD`, optionally followed by `-preview` or another
    /// lower-case suffix (e.g. `2019-03-31`, `2025-07-01-preview`). A typo would make the
    /// service refuse the connection (CONNACK 4), so it is refused here.
    ApiVersion
}

impl ApiVersion {
    /// The api-version used unless one is set.
    pub fn default_version() -> ApiVersion {
        ApiVersion(protocol::DEFAULT_API_VERSION.to_owned())
    }

    /// The api-version that carries certificate issuance.
    pub fn certificate_issuance() -> ApiVersion {
        ApiVersion(protocol::CERTIFICATE_ISSUANCE_API_VERSION.to_owned())
    }
}

impl FromStr for ApiVersion {
    type Err = Error;
    fn from_str(api_version: &str) -> Result<Self> {
        let b = api_version.as_bytes();
        let digits =
            |r: core::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        let date_ok = b.len() >= 10
            && digits(0..4)
            && b.get(4) == Some(&b'-')
            && digits(5..7)
            && b.get(7) == Some(&b'-')
            && digits(8..10);
        let suffix_ok = match b.get(10..) {
            None | Some([]) => true,
            Some([b'-', rest @ ..]) => {
                (1..=22).contains(&rest.len()) && rest.iter().all(u8::is_ascii_lowercase)
            }
            Some(_) => false,
        };
        if date_ok && suffix_ok {
            Ok(ApiVersion(api_version.to_owned()))
        } else {
            Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "api-version {:?} is not YYYY-MM-DD[-suffix], such as 2019-03-31",
                    clip(api_version)
                ),
            ))
        }
    }
}

/// Longest ClientVersion agent string accepted (before percent-encoding).
pub(crate) const MAX_CLIENT_VERSION: usize = 256;

text_setting! {
    /// The ClientVersion agent sent in the MQTT user name: 1 to 256 bytes without control
    /// characters (it is percent-encoded there).
    ClientVersion
}

impl ClientVersion {
    /// The library's own agent, `dps-mqtt/<version>`.
    pub fn library() -> ClientVersion {
        ClientVersion(concat!("dps-mqtt/", env!("CARGO_PKG_VERSION")).to_owned())
    }
}

impl FromStr for ClientVersion {
    type Err = Error;
    fn from_str(agent: &str) -> Result<Self> {
        let wrong = |why: String| Error::new(ErrorKind::InvalidArgument, why);
        if agent.is_empty() {
            return Err(wrong("client version is empty".into()));
        }
        if agent.len() > MAX_CLIENT_VERSION {
            return Err(wrong(format!(
                "client version is {} bytes; at most {MAX_CLIENT_VERSION}",
                agent.len()
            )));
        }
        if agent.chars().any(char::is_control) {
            return Err(wrong("client version contains control characters".into()));
        }
        Ok(ClientVersion(agent.to_owned()))
    }
}

/// A PKCS#10 certificate signing request, as DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Csr(Vec<u8>);

impl Csr {
    /// Reads DER, or PEM with one `CERTIFICATE REQUEST` block; `ErrorKind::InvalidCsr`
    /// otherwise (see [`protocol::csr_der`]).
    pub fn parse(input: &[u8]) -> Result<Csr> {
        protocol::csr_der(input).map(Csr)
    }

    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

/// Shortest SAS token lifetime `dps_config_set_sas_token_lifetime_s` accepts, in seconds: the
/// token must survive the TLS handshake on a slow link and a device clock a little behind.
pub const DPS_SAS_TOKEN_LIFETIME_MIN_S: u32 = 60;
/// Longest SAS token lifetime accepted, in seconds (30 days). A token is made for each
/// connection, so a long one only widens the window in which a leaked token can be replayed; a
/// device whose clock lags far behind needs a correct clock, not a month-long token.
pub const DPS_SAS_TOKEN_LIFETIME_MAX_S: u32 = 2_592_000;

/// Out of `min..=max`: `ErrorKind::InvalidArgument` naming the setting and the range.
fn in_range<T: PartialOrd + fmt::Display>(value: T, min: T, max: T, what: &str) -> Result<T> {
    if value < min || value > max {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{what} {value} is outside {min}..={max}"),
        ));
    }
    Ok(value)
}

/// The lifetime of each SAS token, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SasLifetime(u32);

impl SasLifetime {
    /// From [`DPS_SAS_TOKEN_LIFETIME_MIN_S`] to [`DPS_SAS_TOKEN_LIFETIME_MAX_S`].
    pub fn new(seconds: u32) -> Result<SasLifetime> {
        in_range(
            seconds,
            DPS_SAS_TOKEN_LIFETIME_MIN_S,
            DPS_SAS_TOKEN_LIFETIME_MAX_S,
            "SAS token lifetime (s)",
        )
        .map(SasLifetime)
    }

    pub fn secs(self) -> u64 {
        u64::from(self.0)
    }
}

impl Default for SasLifetime {
    /// One hour, as Microsoft's SDKs.
    fn default() -> Self {
        SasLifetime(3600)
    }
}

/// Shortest MQTT keep-alive `dps_config_set_keep_alive_s` accepts, in seconds: pings more
/// often than this cost a metered link for nothing during a registration of a few seconds.
pub const DPS_KEEP_ALIVE_MIN_S: u16 = 5;
/// Longest MQTT keep-alive accepted, in seconds: the longest Azure IoT's MQTT front end
/// honours (29.45 minutes).
pub const DPS_KEEP_ALIVE_MAX_S: u16 = 1767;
/// The keep-alive used unless one is set, in seconds (the SDKs use 60 to 240).
pub const DPS_KEEP_ALIVE_DEFAULT_S: u16 = 60;

/// The MQTT keep-alive, in seconds. Never 0: the pings are how a server that went silent is
/// noticed before the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive(u16);

impl KeepAlive {
    /// From [`DPS_KEEP_ALIVE_MIN_S`] to [`DPS_KEEP_ALIVE_MAX_S`].
    pub fn new(seconds: u16) -> Result<KeepAlive> {
        in_range(
            seconds,
            DPS_KEEP_ALIVE_MIN_S,
            DPS_KEEP_ALIVE_MAX_S,
            "keep-alive (s)",
        )
        .map(KeepAlive)
    }

    pub fn secs(self) -> u16 {
        self.0
    }
}

impl Default for KeepAlive {
    fn default() -> Self {
        KeepAlive(DPS_KEEP_ALIVE_DEFAULT_S)
    }
}

/// Smallest MQTT packet limit `dps_config_set_max_packet_size` accepts, in bytes: below this
/// not even an assignment without payload fits.
pub const DPS_MAX_PACKET_SIZE_MIN: u32 = 1024;
/// Largest packet limit accepted, in bytes: the largest packet MQTT 3.1.1 can express (a
/// 5-byte fixed header and 268,435,455 bytes).
pub const DPS_MAX_PACKET_SIZE_MAX: u32 = 268_435_460;
/// The limit used unless one is set, in bytes (97 KiB): just above the service's 96 KiB
/// message limit, so that every response the service may send fits.
pub const DPS_MAX_PACKET_SIZE_DEFAULT: u32 = 99_328;

/// The largest MQTT packet accepted from the server, in bytes (it also bounds WebSocket
/// frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPacketSize(u32);

impl MaxPacketSize {
    /// From [`DPS_MAX_PACKET_SIZE_MIN`] to [`DPS_MAX_PACKET_SIZE_MAX`].
    pub fn new(bytes: u32) -> Result<MaxPacketSize> {
        in_range(
            bytes,
            DPS_MAX_PACKET_SIZE_MIN,
            DPS_MAX_PACKET_SIZE_MAX,
            "maximum packet size (bytes)",
        )
        .map(MaxPacketSize)
    }

    pub fn bytes(self) -> usize {
        // A 16-bit target could not hold the default either; the library needs 32 bits.
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl Default for MaxPacketSize {
    fn default() -> Self {
        MaxPacketSize(DPS_MAX_PACKET_SIZE_DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail<T: fmt::Debug>(r: Result<T>) -> (ErrorKind, String) {
        let e = r.expect_err("must be refused");
        (e.kind, e.detail)
    }

    #[test]
    fn registration_ids() {
        for ok in [
            "a",
            "FirstDevice",
            "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
            "a.b_c:d-",
            &"x".repeat(128),
        ] {
            assert_eq!(ok.parse::<RegistrationId>().unwrap().as_str(), ok);
        }
        for (bad, why) in [
            ("", "empty"),
            ("a b", "contains ' '"),
            ("dev/1", "contains '/'"),
            ("dev.", "ends with '.'"),
            ("dev_", "ends with '_'"),
            ("dev:", "ends with ':'"),
            ("é", "contains 'é'"),
            (&"x".repeat(129), "129 characters; at most 128"),
        ] {
            let (kind, text) = detail(bad.parse::<RegistrationId>());
            assert_eq!(kind, ErrorKind::InvalidRegistrationId, "{bad}");
            assert!(text.contains(why), "{bad}: {text}");
        }
    }

    #[test]
    fn id_scopes() {
        assert!("0ne00000001".parse::<IdScope>().is_ok());
        for (bad, why) in [
            ("", "empty"),
            ("0ne/1", "contains '/'"),
            ("a b", "contains ' '"),
            (&"1".repeat(65), "65 characters; at most 64"),
        ] {
            let (kind, text) = detail(bad.parse::<IdScope>());
            assert_eq!(kind, ErrorKind::InvalidIdScope);
            assert!(text.contains(why), "{bad}: {text}");
        }
    }

    #[test]
    fn hosts_are_dns_names_or_ip_addresses() {
        for (given, held) in [
            ("global.azure-devices-provisioning.net", None),
            ("localhost", None),
            ("a-1.b2", None),
            ("127.0.0.1", None),
            ("::1", None),
            ("[::1]", Some("::1")),
            (
                "[2001:db8::8:800:200c:417a]",
                Some("2001:db8::8:800:200c:417a"),
            ),
            (&format!("{}.{}", "a".repeat(63), "b".repeat(63)), None),
        ] {
            let host: EndpointHost = given.parse().unwrap();
            assert_eq!(host.as_str(), held.unwrap_or(given));
        }
        let long = ["a".repeat(63).as_str(); 4].join(".");
        for (bad, why) in [
            ("exa mple.com", "contains ' '"),
            ("x..y", "empty label"),
            (".x", "empty label"),
            ("a:b", "contains ':' but is not an IPv6 address"),
            ("", "empty"),
            (
                long.as_str(),
                "255 characters long; a host name has at most 253",
            ),
            (&"a".repeat(64), "label of 64 characters; at most 63"),
            ("-a.b", "starting or ending with '-'"),
            ("a-.b", "starting or ending with '-'"),
            ("dps.example.", "trailing dot"),
            ("a_b", "contains '_'"),
            ("a/b", "contains '/'"),
            ("evil\r\nX-Injected", "contains '\\r'"),
            ("1.2.3", "neither an IPv4 address nor a host name"),
            ("a.1", "ends in an all-numeric label"),
            ("256.0.0.1", "neither an IPv4 address nor a host name"),
            ("[::1", "not an IPv6 address in brackets"),
            ("[dps.example]", "not an IPv6 address in brackets"),
            ("fe80::1%eth0", "not an IPv6 address"),
        ] {
            let (kind, text) = detail(bad.parse::<EndpointHost>());
            assert_eq!(kind, ErrorKind::InvalidArgument, "{bad:?}");
            assert!(text.contains(why), "{bad:?}: {text}");
        }
        let (_, text) = detail(EndpointHost::parse_named("p q", "proxy host"));
        assert!(text.starts_with("proxy host \"p q\""), "{text}");
    }

    /// The TLS layer turns the host into rustls' server name; every host accepted here must
    /// convert, or a setting accepted at the setter would fail after dialling.
    #[cfg(feature = "tls")]
    #[test]
    fn every_accepted_host_is_a_tls_server_name() {
        for host in [
            "global.azure-devices-provisioning.net",
            "localhost",
            "a-1.b2",
            "1a.b-2",
            "0ne.x",
            "x",
            "127.0.0.1",
            "::1",
            "[2001:db8::1]",
            &["a".repeat(63).as_str(), "b", "c"].join("."),
            &["a".repeat(63).as_str(); 4].join(".")[..253],
        ] {
            let parsed: EndpointHost = host.parse().unwrap();
            assert!(
                rustls::pki_types::ServerName::try_from(parsed.as_str()).is_ok(),
                "{host}"
            );
        }
    }

    /// The byte checks read IP addresses exactly as `std::net` does.
    #[test]
    fn ip_address_checks_agree_with_std() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let tokens = [
            "1", "ab", "ffff", "12345", "0", ":", "::", ".", "1.2.3.4", "256", "g",
        ];
        let mut inputs: Vec<String> = vec![String::new()];
        let mut frontier = inputs.clone();
        for _ in 0..5 {
            frontier = frontier
                .iter()
                .flat_map(|s| tokens.iter().map(move |t| format!("{s}{t}")))
                .collect();
            inputs.extend(frontier.iter().cloned());
        }
        inputs.extend(
            [
                "1:2:3:4:5:6:7:8",
                "1:2:3:4:5:6:7:8:9",
                "1:2:3:4:5:6:7::",
                "1:2:3:4:5:6:7:8::",
                "::1:2:3:4:5:6:7",
                "::ffff:192.0.2.1",
                "1:2:3:4:5:6:1.2.3.4",
                "1:2:3:4:5:6:7:1.2.3.4",
                "1:2:3:4:5::1.2.3.4",
                "2001:db8::8:800:200c:417a",
                "fe80::1%eth0",
                "01.2.3.4",
                "1.2.3.04",
                "255.255.255.255",
                "1.2.3.4.5",
            ]
            .map(String::from),
        );
        for input in &inputs {
            assert_eq!(
                is_ipv4(input),
                input.parse::<Ipv4Addr>().is_ok(),
                "{input:?}"
            );
            assert_eq!(
                is_ipv6(input),
                input.parse::<Ipv6Addr>().is_ok(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn ports_are_not_zero() {
        assert_eq!(Port::new(8883).unwrap().get(), 8883);
        let (kind, text) = detail(Port::new(0));
        assert_eq!(kind, ErrorKind::InvalidArgument);
        assert!(text.contains("port 0"), "{text}");
    }

    #[test]
    fn payload_size_depth_and_syntax_each_have_their_own_message() {
        assert_eq!(
            " {\"a\": [1]} ".parse::<Payload>().unwrap().as_str(),
            "{\"a\": [1]}"
        );
        assert!("[1]".parse::<Payload>().is_ok());
        let at_limit = format!("\"{}\"", "x".repeat(MAX_PAYLOAD - 2));
        assert!(at_limit.parse::<Payload>().is_ok());

        let too_big = format!("\"{}\"", "x".repeat(100_000 - 2));
        let (kind, text) = detail(too_big.parse::<Payload>());
        assert_eq!(kind, ErrorKind::InvalidPayload);
        assert_eq!(
            text,
            "payload is 100000 bytes; the service accepts at most 98304"
        );

        let deepest = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(deepest.parse::<Payload>().is_ok());
        let too_deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        let (kind, text) = detail(too_deep.parse::<Payload>());
        assert_eq!(kind, ErrorKind::InvalidPayload);
        assert_eq!(text, "payload nests 65 levels deep; at most 64");

        let (kind, text) = detail("{not json".parse::<Payload>());
        assert_eq!(kind, ErrorKind::InvalidPayload);
        assert!(text.starts_with("payload is not valid JSON: "), "{text}");
        // Brackets inside strings are not nesting.
        assert!(format!("\"{}\"", "[".repeat(100))
            .parse::<Payload>()
            .is_ok());
    }

    #[test]
    fn model_ids_are_dtmis() {
        for ok in [
            "dtmi:com:example:Thermostat;1",
            "dtmi:contoso:a_b:C9;123456789",
            "dtmi:x;2.15",
            "dtmi:com:example:NoVersion",
        ] {
            assert!(ok.parse::<ModelId>().is_ok(), "{ok}");
        }
        let long = format!("dtmi:{};1", "a".repeat(MAX_MODEL_ID));
        for bad in [
            "",
            "dtmi:",
            "com:example:Thermostat;1",
            "DTMI:com:x;1",
            "dtmi:com::x;1",
            "dtmi:1com:x;1",
            "dtmi:com_:x;1",
            "dtmi:com:x;0",
            "dtmi:com:x;01",
            "dtmi:com:x;1234567890",
            "dtmi:com:x;1.",
            "dtmi:com:x;1.0",
            "dtmi:com:x;",
            "dtmi:com:x\";1",
            "dtmi:com:ex ample;1",
            long.as_str(),
        ] {
            assert_eq!(
                bad.parse::<ModelId>().unwrap_err().kind,
                ErrorKind::InvalidModelId,
                "{bad}"
            );
        }
    }

    #[test]
    fn api_versions_and_client_versions() {
        for ok in ["2019-03-31", "2021-06-01", "2025-07-01-preview"] {
            assert!(ok.parse::<ApiVersion>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2019-3-31",
            "2019-03-31&x=1",
            "2019-03-31-",
            "2019-03-31-Preview",
            "20190331",
            "latest",
            "2019-03-31 ",
        ] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad}");
        }
        assert!("firmware/1.2 (board; rev b)"
            .parse::<ClientVersion>()
            .is_ok());
        assert!("x"
            .repeat(MAX_CLIENT_VERSION)
            .parse::<ClientVersion>()
            .is_ok());
        for bad in ["", "line\nbreak", "tab\t"] {
            assert!(bad.parse::<ClientVersion>().is_err(), "{bad:?}");
        }
        assert!("x"
            .repeat(MAX_CLIENT_VERSION + 1)
            .parse::<ClientVersion>()
            .is_err());
    }

    #[test]
    fn setting_refusals_are_precise() {
        let (_, text) = detail(format!("dtmi:{}", "a".repeat(2048)).parse::<ModelId>());
        assert!(text.contains("at most 2048"), "{text}");
        for (bad, why) in [
            (String::new(), "empty"),
            ("a\nb".into(), "control characters"),
            ("x".repeat(MAX_CLIENT_VERSION + 1), "257 bytes; at most 256"),
        ] {
            let (kind, text) = detail(bad.parse::<ClientVersion>());
            assert_eq!(kind, ErrorKind::InvalidArgument);
            assert!(text.contains(why), "{bad:?}: {text}");
        }
    }

    #[test]
    fn numeric_settings_state_their_range() {
        assert!(SasLifetime::new(60).is_ok() && SasLifetime::new(2_592_000).is_ok());
        let (_, text) = detail(SasLifetime::new(59));
        assert_eq!(text, "SAS token lifetime (s) 59 is outside 60..=2592000");

        assert_eq!(KeepAlive::default().secs(), 60);
        assert!(KeepAlive::new(5).is_ok() && KeepAlive::new(1767).is_ok());
        for bad in [0, 4, 1768, u16::MAX] {
            let (kind, text) = detail(KeepAlive::new(bad));
            assert_eq!(kind, ErrorKind::InvalidArgument);
            assert_eq!(text, format!("keep-alive (s) {bad} is outside 5..=1767"));
        }

        assert_eq!(MaxPacketSize::default().bytes(), 99_328);
        assert!(MaxPacketSize::new(1024).is_ok() && MaxPacketSize::new(268_435_460).is_ok());
        for bad in [0, 1023, 268_435_461, u32::MAX] {
            let (kind, text) = detail(MaxPacketSize::new(bad));
            assert_eq!(kind, ErrorKind::InvalidArgument);
            assert_eq!(
                text,
                format!("maximum packet size (bytes) {bad} is outside 1024..=268435460")
            );
        }
    }
}
