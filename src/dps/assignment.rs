//! The provisioning result as a small blob the firmware stores (flash, NVS, a file), and the
//! decision whether to provision at boot, made so that devices do not provision on every boot
//! and never loop through DPS.
//!
//! Format version 1, 20 bytes plus the three strings (at most 785 bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `DPSa` |
//! | 4 | 1 | format version (1) |
//! | 5 | 1 | hub length (1-255) |
//! | 6 | 1 | device id length (1-255) |
//! | 7 | 1 | etag length (0-255; 0 = none) |
//! | 8 | 8 | time of assignment, UNIX seconds of the client's clock, little-endian |
//! | 16 | n | assigned hub, device id, etag (UTF-8, no NUL) |
//! | 16 + n | 4 | CRC-32 (IEEE) of everything before it, little-endian |
//!
//! The decision ([`should_provision`]):
//! - no blob, or one that is truncated, corrupt (CRC) or of another format version: provision.
//!   A successful registration stores a fresh blob, so this happens once, not every boot.
//! - a valid blob, and the hub not tried yet or connected: use the stored hub.
//! - a valid blob and the hub unreachable (DNS, TCP, TLS, timeouts): do not provision. DPS would
//!   assign the same hub, and a hub or network outage would send the whole fleet to DPS at
//!   once (DPS throttles per instance); retry the hub with back-off instead.
//! - a valid blob and the hub rejected the device (not authorized, device not found or
//!   disabled): provision. The device was moved to another hub, deleted or re-enrolled.
//!
//! What this cannot see: a hub that keeps rejecting a freshly provisioned device (for example
//! an enrollment pointing at a hub where the device is disabled). The firmware should then
//! back off between provisioning attempts across reboots, e.g. by comparing
//! [`Assignment::assigned_at_unix`] with its clock before provisioning again.

use crate::error::{Error, ErrorKind, Result};
use crate::prelude::*;

const MAGIC: [u8; 4] = *b"DPSa";
/// The format written by this library.
pub(crate) const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 16;
const CRC_LEN: usize = 4;
/// Longest blob of format version 1.
pub(crate) const MAX_BLOB_LEN: usize = HEADER_LEN + 3 * 255 + CRC_LEN;

/// Where a device stands with the hub it was assigned to, as reported by the firmware.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum dps_hub_outcome {
    /// No connection to the stored hub was attempted yet (e.g. at boot).
    DPS_HUB_NOT_TRIED = 0,
    /// The hub accepted the device.
    DPS_HUB_CONNECTED = 1,
    /// The hub refused the device itself: not authorized (CONNACK 4/5, 401), device not
    /// found or disabled.
    DPS_HUB_REJECTED_DEVICE = 2,
    /// The hub could not be reached (name resolution, TCP, TLS, timeout, server busy).
    DPS_HUB_UNREACHABLE = 3,
}

impl dps_hub_outcome {
    /// Maps an integer from C; unknown values are `DPS_HUB_NOT_TRIED`, the value that lets
    /// a valid stored assignment stand (never a reason to provision, so never a loop).
    pub fn from_u32(value: u32) -> dps_hub_outcome {
        match value {
            1 => dps_hub_outcome::DPS_HUB_CONNECTED,
            2 => dps_hub_outcome::DPS_HUB_REJECTED_DEVICE,
            3 => dps_hub_outcome::DPS_HUB_UNREACHABLE,
            _ => dps_hub_outcome::DPS_HUB_NOT_TRIED,
        }
    }
}

/// A stored assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub assigned_hub: String,
    pub device_id: String,
    /// The registration state's etag, when the service sent one.
    pub etag: Option<String>,
    /// When the assignment was received, in UNIX seconds of the client's clock.
    pub assigned_at_unix: u64,
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidAssignment, detail)
}

/// CRC-32 (IEEE 802.3, reflected, as zlib): catches every 1-3 bit error and every burst up
/// to 32 bits, which is what a torn flash write or a worn cell looks like.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn field_len(what: &str, s: &str, min: usize) -> Result<u8> {
    if s.as_bytes().contains(&0) {
        return Err(invalid(format!("{what} contains NUL")));
    }
    match u8::try_from(s.len()) {
        Ok(n) if usize::from(n) >= min => Ok(n),
        _ => Err(invalid(format!(
            "{what} of {} bytes cannot be stored",
            s.len()
        ))),
    }
}

impl Assignment {
    /// Serializes in format version 1.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let etag = self.etag.as_deref().unwrap_or("");
        let lens = [
            field_len("assigned hub", &self.assigned_hub, 1)?,
            field_len("device id", &self.device_id, 1)?,
            field_len("etag", etag, 0)?,
        ];
        let mut out = Vec::with_capacity(MAX_BLOB_LEN);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&lens);
        out.extend_from_slice(&self.assigned_at_unix.to_le_bytes());
        for s in [self.assigned_hub.as_str(), self.device_id.as_str(), etag] {
            out.extend_from_slice(s.as_bytes());
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Reads a stored blob; `ErrorKind::InvalidAssignment` when it is truncated, corrupt or of
    /// another format version. Never panics, whatever the bytes.
    pub fn decode(blob: &[u8]) -> Result<Assignment> {
        let too_short = || invalid(format!("{} bytes is too short", blob.len()));
        let (body, crc) = blob.split_last_chunk::<CRC_LEN>().ok_or_else(too_short)?;
        let Some((header, fields)) = body.split_first_chunk::<HEADER_LEN>() else {
            return Err(too_short());
        };
        let [m0, m1, m2, m3, version, hub_len, id_len, etag_len, at @ ..] = *header;
        if [m0, m1, m2, m3] != MAGIC {
            return Err(invalid("not a stored assignment (magic)"));
        }
        if version != FORMAT_VERSION {
            return Err(invalid(format!("format version {version} is unknown")));
        }
        let lens = [hub_len, id_len, etag_len].map(usize::from);
        // Three lengths of at most 255 each: no saturation.
        let fields_len = lens.iter().fold(0usize, |sum, &n| sum.saturating_add(n));
        if fields.len() != fields_len {
            let total = fields_len.saturating_add(HEADER_LEN + CRC_LEN);
            return Err(invalid(format!(
                "{} bytes where the header says {total}",
                blob.len()
            )));
        }
        if crc32(body) != u32::from_le_bytes(*crc) {
            return Err(invalid("checksum mismatch"));
        }
        let mut rest = fields;
        let mut take = |n: usize, what: &str| -> Result<String> {
            // The lengths add up to `fields`' length (checked above), so this always splits.
            let (s, tail) = rest
                .split_at_checked(n)
                .ok_or_else(|| invalid(format!("{what} overruns the blob")))?;
            rest = tail;
            match core::str::from_utf8(s) {
                Ok(s) if !s.contains('\0') => Ok(s.to_owned()),
                _ => Err(invalid(format!("{what} is not UTF-8 text"))),
            }
        };
        let [hub_len, id_len, etag_len] = lens;
        let assigned_hub = take(hub_len, "assigned hub")?;
        let device_id = take(id_len, "device id")?;
        let etag = take(etag_len, "etag")?;
        if assigned_hub.is_empty() || device_id.is_empty() {
            return Err(invalid("empty hub or device id"));
        }
        Ok(Assignment {
            assigned_hub,
            device_id,
            etag: (!etag.is_empty()).then_some(etag),
            assigned_at_unix: u64::from_le_bytes(at),
        })
    }
}

/// Whether the device should provision now, given its stored blob (`None`: nothing stored)
/// and what the stored hub said. See the module documentation for the reasoning.
pub fn should_provision(blob: Option<&[u8]>, hub: dps_hub_outcome) -> bool {
    match blob.map(Assignment::decode) {
        None | Some(Err(_)) => true,
        Some(Ok(_)) => hub == dps_hub_outcome::DPS_HUB_REJECTED_DEVICE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dps_hub_outcome::*;

    fn sample() -> Assignment {
        Assignment {
            assigned_hub: "hub-1.azure-devices.net".into(),
            device_id: "dev-1".into(),
            etag: Some("IjAwMDAi".into()),
            assigned_at_unix: 1_764_547_200,
        }
    }

    fn code(blob: &[u8]) -> Option<ErrorKind> {
        Assignment::decode(blob).err().map(|e| e.kind)
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_and_layout() {
        let a = sample();
        let blob = a.encode().unwrap();
        assert_eq!(blob.len(), 20 + 23 + 5 + 8);
        assert_eq!(&blob[..8], b"DPSa\x01\x17\x05\x08");
        assert_eq!(Assignment::decode(&blob).unwrap(), a);
        let no_etag = Assignment {
            etag: None,
            ..sample()
        };
        assert_eq!(
            Assignment::decode(&no_etag.encode().unwrap()).unwrap(),
            no_etag
        );
        let longest = Assignment {
            assigned_hub: "h".repeat(255),
            device_id: "d".repeat(255),
            etag: Some("e".repeat(255)),
            assigned_at_unix: u64::MAX,
        };
        let blob = longest.encode().unwrap();
        assert_eq!(blob.len(), MAX_BLOB_LEN);
        assert_eq!(Assignment::decode(&blob).unwrap(), longest);
    }

    #[test]
    fn unstorable_values_are_refused() {
        for a in [
            Assignment {
                assigned_hub: "h".repeat(256),
                ..sample()
            },
            Assignment {
                device_id: String::new(),
                ..sample()
            },
            Assignment {
                etag: Some("a\0b".into()),
                ..sample()
            },
        ] {
            assert_eq!(a.encode().unwrap_err().kind, ErrorKind::InvalidAssignment);
        }
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_detected() {
        let blob = sample().encode().unwrap();
        for n in 0..blob.len() {
            assert_eq!(code(&blob[..n]), Some(ErrorKind::InvalidAssignment), "{n}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(code(&longer).is_some());
        for i in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(code(&bad).is_some(), "bit {i} flipped unnoticed");
        }
        assert!(code(&vec![0xff; blob.len()]).is_some());
        assert!(code(&vec![0; blob.len()]).is_some());
    }

    /// Re-computes the checksum after an edit, so that the check behind the CRC is reached.
    fn resealed(mut blob: Vec<u8>) -> Vec<u8> {
        let n = blob.len() - CRC_LEN;
        let crc = crc32(&blob[..n]);
        blob[n..].copy_from_slice(&crc.to_le_bytes());
        blob
    }

    #[test]
    fn future_versions_and_hostile_fields_are_errors() {
        let blob = sample().encode().unwrap();
        for version in [0u8, 2, 255] {
            let mut v = blob.clone();
            v[4] = version;
            let err = Assignment::decode(&resealed(v)).unwrap_err();
            assert!(err.detail.contains("version"), "{}", err.detail);
        }
        // Lengths that point past the end or leave bytes over.
        for (i, len) in [(5, 255u8), (6, 255), (7, 255), (5, 0), (6, 0), (7, 0)] {
            let mut v = blob.clone();
            v[i] = len;
            assert!(code(&resealed(v)).is_some(), "length {i}={len}");
        }
        // Not UTF-8, and NUL inside a string.
        for (at, byte) in [(16, 0xffu8), (16 + 23, 0), (16 + 28, 0xc3)] {
            let mut v = blob.clone();
            v[at] = byte;
            assert!(code(&resealed(v)).is_some(), "byte {at}={byte}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let good = sample().encode().unwrap();
        for round in 0..20_000 {
            let len = (next() % (MAX_BLOB_LEN as u64 + 40)) as usize;
            let mut blob: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && len >= HEADER_LEN {
                // A valid header with random lengths and contents: reaches the deeper checks.
                blob[..5].copy_from_slice(&good[..5]);
                if len >= HEADER_LEN + CRC_LEN {
                    blob = resealed(blob);
                }
            }
            let _ = Assignment::decode(&blob);
            let _ = should_provision(Some(&blob), DPS_HUB_NOT_TRIED);
        }
    }

    #[test]
    fn provisioning_decision_avoids_reboot_loops() {
        let blob = sample().encode().unwrap();
        let mut corrupt = blob.clone();
        corrupt[20] ^= 0x40;
        for hub in [
            DPS_HUB_NOT_TRIED,
            DPS_HUB_CONNECTED,
            DPS_HUB_REJECTED_DEVICE,
            DPS_HUB_UNREACHABLE,
        ] {
            assert!(should_provision(None, hub), "nothing stored, {hub:?}");
            assert!(should_provision(Some(&[]), hub), "empty, {hub:?}");
            assert!(should_provision(Some(&corrupt), hub), "corrupt, {hub:?}");
            assert!(
                should_provision(Some(&blob[..30]), hub),
                "truncated, {hub:?}"
            );
            assert_eq!(
                should_provision(Some(&blob), hub),
                hub == DPS_HUB_REJECTED_DEVICE,
                "valid blob, {hub:?}"
            );
        }
    }

    #[test]
    fn unknown_hub_outcomes_keep_a_valid_assignment() {
        let blob = sample().encode().unwrap();
        for v in [4u32, 99, u32::MAX] {
            assert_eq!(dps_hub_outcome::from_u32(v), DPS_HUB_NOT_TRIED);
            assert!(!should_provision(Some(&blob), dps_hub_outcome::from_u32(v)));
        }
        for v in 0..4 {
            assert_eq!(dps_hub_outcome::from_u32(v) as u32, v);
        }
    }
}
