//! Test PKI: a root CA and a server certificate for localhost, and a device CA that signs
//! device certificates for X.509 enrollments. Generated on first run, loaded afterwards.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

pub struct Pki {
    pub ca_path: PathBuf,
    pub device_ca_path: PathBuf,
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: PrivateKeyDer<'static>,
    pub device_ca: CertificateDer<'static>,
}

/// A CA that can sign: its certificate as rcgen needs it, and its key.
struct Signer {
    cert: Certificate,
    key: KeyPair,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "dps-emulator (test only)");
    dn
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(days);
}

/// The server key's type: RSA-2048 as the service presents (the default), or ECDSA P-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ecdsa,
}

/// A fresh key. ring (rcgen's backend) cannot generate RSA keys, so aws-lc-rs generates the
/// RSA-2048 key as PKCS#8 and ring signs with it from then on.
fn generate(kind: KeyKind) -> Result<KeyPair, AnyError> {
    match kind {
        KeyKind::Ecdsa => Ok(KeyPair::generate()?),
        KeyKind::Rsa => {
            use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
            let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| format!("RSA key generation failed: {e}"))?;
            let der: Pkcs8V1Der<'_> = rsa
                .as_der()
                .map_err(|e| format!("RSA key encoding failed: {e}"))?;
            let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_ref());
            Ok(KeyPair::from_pkcs8_der_and_sign_algo(
                &pkcs8,
                &rcgen::PKCS_RSA_SHA256,
            )?)
        }
    }
}

fn kind_of(key: &KeyPair) -> KeyKind {
    if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
        KeyKind::Rsa
    } else {
        KeyKind::Ecdsa
    }
}

fn new_ca(cn: &str, kind: KeyKind) -> Result<Signer, AnyError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, 3650);
    let key = generate(kind)?;
    let cert = params.self_signed(&key)?;
    Ok(Signer { cert, key })
}

fn load_ca(cert_path: &Path, key_path: &Path) -> Result<Signer, AnyError> {
    let key = KeyPair::from_pem(&std::fs::read_to_string(key_path)?)?;
    let params = CertificateParams::from_ca_cert_pem(&std::fs::read_to_string(cert_path)?)?;
    // Re-signing yields an equivalent issuer (same name and key), which is all signing needs.
    let cert = params.self_signed(&key)?;
    Ok(Signer { cert, key })
}

fn write_private(path: &Path, text: &str) -> Result<(), AnyError> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The CA in `dir/{stem}.pem`, and whether it was created now.
fn load_or_create_ca(
    dir: &Path,
    stem: &str,
    cn: &str,
    kind: KeyKind,
) -> Result<(Signer, bool), AnyError> {
    let cert_path = dir.join(format!("{stem}.pem"));
    let key_path = dir.join(format!("{stem}-key.pem"));
    if cert_path.exists() && key_path.exists() {
        return Ok((load_ca(&cert_path, &key_path)?, false));
    }
    let ca = new_ca(cn, kind)?;
    std::fs::write(&cert_path, ca.cert.pem())?;
    write_private(&key_path, &ca.key.serialize_pem())?;
    Ok((ca, true))
}

fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, AnyError> {
    let data = std::fs::read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data).collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()).into());
    }
    Ok(certs)
}

/// Whether `path` holds a key of this kind (false when missing or unreadable).
fn key_is(path: &Path, kind: KeyKind) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|pem| KeyPair::from_pem(&pem).ok())
        .is_some_and(|key| kind_of(&key) == kind)
}

/// Loads the PKI from `dir`, creating what is missing. The root CA of a new directory is
/// RSA-2048, as the service's root is; one an older emulator made is kept whatever its type,
/// so devices that already trust it go on working. The RSA server certificate is
/// `server.pem`, the ECDSA one `server-ecdsa.pem`; both are signed by the same root.
pub fn load_or_create(dir: &Path, server_key: KeyKind) -> Result<Pki, AnyError> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    // Emulators started in parallel on a fresh directory must not mix two generated PKIs.
    let lock = std::fs::File::create(dir.join(".lock"))?;
    lock.lock()?;
    let (ca, new_root) = load_or_create_ca(&dir, "ca", "dps-emulator root CA", KeyKind::Rsa)?;
    load_or_create_ca(&dir, "device-ca", "dps-emulator device CA", KeyKind::Ecdsa)?;
    let stem = match server_key {
        KeyKind::Rsa => "server",
        KeyKind::Ecdsa => "server-ecdsa",
    };
    let server_path = dir.join(format!("{stem}.pem"));
    let server_key_path = dir.join(format!("{stem}-key.pem"));
    // An older emulator's `server.pem` holds an ECDSA key: replaced by an RSA one.
    let current = !new_root
        && server_path.exists()
        && server_key_path.exists()
        && key_is(&server_key_path, server_key);
    if !current {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params.distinguished_name = dn("localhost");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = match server_key {
            // TLS 1.2 RSA key exchange is not offered, but clients check the usage bits.
            KeyKind::Rsa => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            KeyKind::Ecdsa => vec![KeyUsagePurpose::DigitalSignature],
        };
        validity(&mut params, 825);
        let key = generate(server_key)?;
        let cert = params.signed_by(&key, &ca.cert, &ca.key)?;
        std::fs::write(&server_path, format!("{}{}", cert.pem(), ca.cert.pem()))?;
        write_private(&server_key_path, &key.serialize_pem())?;
    }
    let server_chain = pem_certs(&server_path)?;
    let server_key = PrivateKeyDer::from_pem_file(&server_key_path)?;
    let device_ca_path = dir.join("device-ca.pem");
    let device_ca = pem_certs(&device_ca_path)?.remove(0);
    Ok(Pki {
        ca_path: dir.join("ca.pem"),
        device_ca_path,
        server_chain,
        server_key,
        device_ca,
    })
}

/// Issues a device certificate (CN = registration id) signed by the device CA; writes the
/// chain (leaf, then device CA) and a PKCS#8 key.
pub fn issue_device_cert(
    dir: &Path,
    registration_id: &str,
    cert_out: &Path,
    key_out: &Path,
    days: i64,
    expired: bool,
) -> Result<(), AnyError> {
    load_or_create(dir, KeyKind::Rsa)?;
    let device_ca = load_ca(&dir.join("device-ca.pem"), &dir.join("device-ca-key.pem"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(registration_id);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if expired {
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(30);
        params.not_after = now - Duration::days(1);
    } else {
        validity(&mut params, days);
    }
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &device_ca.cert, &device_ca.key)?;
    let ca_pem = std::fs::read_to_string(dir.join("device-ca.pem"))?;
    std::fs::write(cert_out, format!("{}{}", cert.pem(), ca_pem))?;
    write_private(key_out, &key.serialize_pem())?;
    Ok(())
}

/// Issues a certificate for a device's CSR (certificate issuance, api-version
/// 2025-07-01-preview); returns the DER chain (leaf, device CA).
/// The CSR must name the registration id as its CN, as DPS requires.
pub fn sign_csr(dir: &Path, csr_der: &[u8], registration_id: &str) -> Result<Vec<Vec<u8>>, String> {
    let csr_pem = pem_encode("CERTIFICATE REQUEST", csr_der);
    let mut csr = rcgen::CertificateSigningRequestParams::from_pem(&csr_pem)
        .map_err(|e| format!("unreadable CSR: {e}"))?;
    let cn = csr
        .params
        .distinguished_name
        .get(&DnType::CommonName)
        .and_then(|v| match v {
            rcgen::DnValue::PrintableString(s) => Some(s.to_string()),
            rcgen::DnValue::Utf8String(s) => Some(s.clone()),
            _ => None,
        });
    if !cn.is_some_and(|cn| cn.eq_ignore_ascii_case(registration_id)) {
        return Err("the CSR's CN is not the registration id".into());
    }
    validity(&mut csr.params, 30);
    let signed = load_ca(&dir.join("device-ca.pem"), &dir.join("device-ca-key.pem"))
        .and_then(|ca| Ok(csr.signed_by(&ca.cert, &ca.key)?))
        .and_then(|cert| Ok((cert, pem_certs(&dir.join("device-ca.pem"))?)));
    match signed {
        Ok((cert, ca)) => Ok(std::iter::once(cert.der().to_vec())
            .chain(ca.iter().map(|c| c.to_vec()))
            .collect()),
        Err(e) => Err(format!("signing failed: {e}")),
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The subject CN of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}
