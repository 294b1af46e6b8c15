//! TLS client on rustls (ring provider, TLS 1.2 and 1.3), sans-IO.
//!
//! [`TlsClientConfig`] is built once (trust anchors, optional client certificate, the clock) and
//! makes one [`TlsSession`] per connection; the connections of one attempt share a rustls
//! configuration, which [`TlsClientConfig::end_attempt`] drops. The caller drives a session
//! with bytes:
//! - [`TlsSession::write_plaintext`] queues MQTT bytes (before the handshake completes they
//!   are held and sent right after it, so CONNECT goes out in the first application flight);
//! - [`TlsSession::take_tls_output`] gives the records to send — call it after every other
//!   call, the handshake produces output on its own;
//! - [`TlsSession::read_tls`] takes bytes received from the network, in any chunking;
//! - [`TlsSession::take_plaintext`] gives the MQTT bytes decrypted so far.
//!
//! Certificate validity is judged by the caller's clock (the firmware's clock hook), never by
//! the system clock: [`UnixClock`] holds the wall-clock seconds the engine stores from its hook.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use base64::Engine as _;
use rustls::client::{
    ClientConnection, ClientSessionStore, ResolvesClientCert, Resumption, Tls12ClientSessionValue,
    Tls13ClientSessionValue,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::time_provider::TimeProvider;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, InconsistentKeys, NamedGroup, RootCertStore,
};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

fn invalid_certificate(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidCertificate, detail)
}

/// Reads every `CERTIFICATE` block of a PEM buffer (other blocks are skipped); none at all,
/// or a block that is not valid base64, is `ErrorKind::InvalidCertificate`.
pub fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| invalid_certificate(format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid_certificate("no CERTIFICATE block in the PEM data"));
    }
    Ok(certs)
}

/// The caller's wall-clock time in UNIX seconds, shared between the engine (which stores it
/// from the clock hook) and every TLS connection (which checks certificate validity with it).
/// Cloning shares the same clock. Until it is set (0), certificate checks fail with
/// `ErrorKind::TlsHandshake` rather than judging validity against 1970.
#[derive(Clone, Debug, Default)]
pub struct UnixClock(Arc<AtomicU64>);

impl UnixClock {
    pub fn new() -> UnixClock {
        UnixClock::default()
    }

    pub fn set(&self, unix_seconds: u64) {
        self.0.store(unix_seconds, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl TimeProvider for UnixClock {
    fn current_time(&self) -> Option<UnixTime> {
        match self.get() {
            0 => None,
            secs => Some(UnixTime::since_unix_epoch(Duration::from_secs(secs))),
        }
    }
}

/// A client certificate chain (leaf first) and its private key, for X.509 authentication.
/// The key is held as rustls' signing key: the DER bytes it was loaded from are wiped.
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<dyn SigningKey>,
}

/// Whether `data` is PEM text rather than DER (which starts with a SEQUENCE tag, 0x30).
fn is_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The PEM labels of the private keys accepted, with their formats.
const KEY_LABELS: [(&str, KeyFormat); 3] = [
    ("PRIVATE KEY", KeyFormat::Pkcs8),
    ("RSA PRIVATE KEY", KeyFormat::Pkcs1),
    ("EC PRIVATE KEY", KeyFormat::Sec1),
];

fn invalid_key(detail: &str) -> Error {
    Error::new(ErrorKind::InvalidPrivateKey, detail)
}

/// The private key's DER in a buffer that is wiped on drop, and its format.
fn private_key_der(key: &[u8]) -> Result<(Zeroizing<Vec<u8>>, KeyFormat)> {
    if key.is_empty() {
        return Err(invalid_key("the private key is empty"));
    }
    if is_pem(key) {
        return pem_private_key(key);
    }
    let der = Zeroizing::new(key.to_vec());
    let format = KeyFormat::of(&PrivateKeyDer::try_from(der.as_slice()).map_err(|_| {
        invalid_key("the private key is neither PEM nor DER PKCS#8, PKCS#1 or SEC1")
    })?);
    Ok((der, format))
}

/// Decodes the first private-key block of PEM text. Done here rather than with
/// rustls-pki-types' PEM reader, whose working buffers (the key's base64 text) are freed
/// without being wiped: both the base64 text and the DER live in wiped buffers, allocated once
/// at their final size. Errors never quote the input, which is key material.
fn pem_private_key(pem: &[u8]) -> Result<(Zeroizing<Vec<u8>>, KeyFormat)> {
    let text =
        std::str::from_utf8(pem).map_err(|_| invalid_key("the private key PEM is not text"))?;
    for (begin, _) in text.match_indices("-----BEGIN ") {
        let after_begin = text
            .get(begin..)
            .and_then(|t| t.strip_prefix("-----BEGIN "))
            .unwrap_or_default();
        let Some((label, rest)) = after_begin.split_once("-----") else {
            continue;
        };
        let Some(&(_, format)) = KEY_LABELS.iter().find(|(l, _)| *l == label) else {
            continue;
        };
        let (body, _) = rest
            .split_once(&format!("-----END {label}-----"))
            .ok_or_else(|| invalid_key("the private key PEM block has no END line"))?;
        let mut base64_text = Zeroizing::new(String::with_capacity(body.len()));
        base64_text.extend(body.chars().filter(|c| !c.is_ascii_whitespace()));
        // A capacity: the text is in memory, so three quarters of it cannot saturate.
        let decoded_len = base64_text.len().div_ceil(4).saturating_mul(3);
        let mut der = Zeroizing::new(Vec::with_capacity(decoded_len));
        base64::engine::general_purpose::STANDARD
            .decode_vec(base64_text.as_bytes(), &mut der)
            .map_err(|_| invalid_key("the private key PEM block is not valid base64"))?;
        return Ok((der, format));
    }
    Err(invalid_key(
        "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block in the PEM data \
         (encrypted keys are not supported)",
    ))
}

#[derive(Clone, Copy)]
enum KeyFormat {
    Pkcs8,
    Pkcs1,
    Sec1,
}

impl KeyFormat {
    fn of(key: &PrivateKeyDer<'_>) -> KeyFormat {
        match key {
            PrivateKeyDer::Pkcs1(_) => KeyFormat::Pkcs1,
            PrivateKeyDer::Sec1(_) => KeyFormat::Sec1,
            _ => KeyFormat::Pkcs8,
        }
    }

    fn wrap<'a>(self, der: &'a [u8]) -> PrivateKeyDer<'a> {
        match self {
            KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(der.into()),
            KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(der.into()),
            KeyFormat::Sec1 => PrivateKeyDer::Sec1(der.into()),
        }
    }
}

impl ClientIdentity {
    /// From PEM: `chain_pem` holds the leaf certificate first, then any intermediates.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<ClientIdentity> {
        ClientIdentity::parse(chain_pem, key_pem)
    }

    /// From a certificate chain in PEM (leaf first, then intermediates) or one DER
    /// certificate, and a private key in PEM or DER: PKCS#8, PKCS#1 (RSA) or SEC1 (EC),
    /// unencrypted. Checks that the key is usable and belongs to the leaf certificate.
    ///
    /// `ErrorKind::InvalidCertificate` for an unreadable chain, `ErrorKind::InvalidPrivateKey`
    /// for an unreadable or unsupported key, `ErrorKind::InvalidCertificateKeyMismatch` when
    /// the key is not the leaf's.
    pub fn parse(chain: &[u8], key: &[u8]) -> Result<ClientIdentity> {
        let chain = if is_pem(chain) {
            parse_pem_certificates(chain)?
        } else if chain.is_empty() {
            return Err(invalid_certificate("the client certificate is empty"));
        } else {
            vec![CertificateDer::from(chain.to_vec())]
        };
        let (der, format) = private_key_der(key)?;
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&format.wrap(&der))
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidPrivateKey,
                    "the private key is not a usable RSA, ECDSA P-256/P-384 or Ed25519 key",
                )
            })?;
        let identity = ClientIdentity {
            chain,
            key: signing_key,
        };
        identity.certified_key()?;
        Ok(identity)
    }

    /// The chain and key as rustls holds them, after checking that they belong together.
    fn certified_key(&self) -> Result<CertifiedKey> {
        let certified = CertifiedKey::new(self.chain.clone(), self.key.clone());
        match certified.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {
                Ok(certified)
            }
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(Error::new(
                ErrorKind::InvalidCertificateKeyMismatch,
                "the private key does not belong to the client certificate",
            )),
            Err(e) => Err(invalid_certificate(format!(
                "unusable client certificate: {e}"
            ))),
        }
    }
}

/// rustls' ring provider cut to what a device needs, cheapest first (rustls' server, like
/// many, takes the client's order):
/// - AES-128-GCM with SHA-256 before AES-256-GCM with SHA-384: SHA-256 has hardware help on
///   most CPUs, SHA-384 seldom.
/// - No ChaCha20-Poly1305 (52 KB of ring's code): a server that offers it offers AES-GCM too,
///   and RFC 8446 9.1 makes TLS_AES_128_GCM_SHA256 the suite every TLS 1.3 server must have.
/// - Key exchange, signature algorithms and private keys (RSA, ECDSA P-256 and P-384, Ed25519)
///   as rustls' ring defaults.
///
/// It is built from its parts: `ring::default_provider()` links every suite it lists, whatever
/// the caller keeps of it.
fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as suite, kx_group};
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        signature_verification_algorithms: SIGNATURE_ALGORITHMS,
        secure_random: &OsRandom,
        key_provider: &RingKeys,
    }
}

/// What verifies the server: its certificates' signatures (`all`), and its handshake
/// signature, by the scheme it names (`mapping`; in TLS 1.2 an ECDSA scheme does not fix the
/// curve, so both curves are listed for each).
const SIGNATURE_ALGORITHMS: rustls::crypto::WebPkiSupportedAlgorithms = {
    use rustls::SignatureScheme as S;
    use webpki::ring as alg;
    rustls::crypto::WebPkiSupportedAlgorithms {
        all: &[
            alg::RSA_PKCS1_2048_8192_SHA256,
            alg::RSA_PKCS1_2048_8192_SHA384,
            alg::RSA_PKCS1_2048_8192_SHA512,
            alg::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
            alg::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
            alg::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
            alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            alg::ECDSA_P256_SHA256,
            alg::ECDSA_P256_SHA384,
            alg::ECDSA_P384_SHA256,
            alg::ECDSA_P384_SHA384,
            alg::ED25519,
        ],
        mapping: &[
            (
                S::RSA_PSS_SHA256,
                &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
            ),
            (
                S::RSA_PSS_SHA384,
                &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
            ),
            (
                S::RSA_PSS_SHA512,
                &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
            ),
            (S::RSA_PKCS1_SHA256, &[alg::RSA_PKCS1_2048_8192_SHA256]),
            (S::RSA_PKCS1_SHA384, &[alg::RSA_PKCS1_2048_8192_SHA384]),
            (S::RSA_PKCS1_SHA512, &[alg::RSA_PKCS1_2048_8192_SHA512]),
            (
                S::ECDSA_NISTP256_SHA256,
                &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
            ),
            (
                S::ECDSA_NISTP384_SHA384,
                &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384],
            ),
            (S::ED25519, &[alg::ED25519]),
        ],
    }
};

/// TLS randomness from the operating system, as ring's own provider takes it.
#[derive(Debug)]
struct OsRandom;

impl rustls::crypto::SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> std::result::Result<(), rustls::crypto::GetRandomFailed> {
        getrandom::getrandom(buf).map_err(|_| rustls::crypto::GetRandomFailed)
    }
}

/// Client certificate keys: whatever ring signs with (RSA, ECDSA P-256 and P-384, Ed25519).
#[derive(Debug)]
struct RingKeys;

impl rustls::crypto::KeyProvider for RingKeys {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> std::result::Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        rustls::crypto::ring::sign::any_supported_type(&key_der)
    }
}

/// Builds a [`TlsClientConfig`]: the public roots (webpki-roots) unless turned off, plus any
/// anchors added, an optional client identity, and the clock.
pub struct TlsConfigBuilder {
    default_roots: bool,
    anchors: Vec<CertificateDer<'static>>,
    identity: Option<ClientIdentity>,
    clock: UnixClock,
}

impl TlsConfigBuilder {
    /// Whether to trust the public roots of webpki-roots (on by default). Turn it off to
    /// trust only the anchors added (a private CA, the local emulator).
    pub fn default_roots(mut self, enabled: bool) -> TlsConfigBuilder {
        self.default_roots = enabled;
        self
    }

    /// Adds every certificate in `pem` as a trust anchor.
    pub fn add_anchors_pem(mut self, pem: &[u8]) -> Result<TlsConfigBuilder> {
        self.anchors.extend(parse_pem_certificates(pem)?);
        Ok(self)
    }

    /// Adds one DER certificate as a trust anchor (checked by `build`).
    pub fn add_anchor_der(mut self, der: CertificateDer<'static>) -> TlsConfigBuilder {
        self.anchors.push(der);
        self
    }

    /// Presents this certificate chain and key when the server asks for one.
    pub fn client_identity(mut self, identity: ClientIdentity) -> TlsConfigBuilder {
        self.identity = Some(identity);
        self
    }

    /// Uses `clock` (shared with the engine) instead of a fresh, unset one.
    pub fn clock(mut self, clock: UnixClock) -> TlsConfigBuilder {
        self.clock = clock;
        self
    }

    /// `ErrorKind::InvalidCertificate` for an anchor or identity rustls cannot use;
    /// `ErrorKind::InvalidConfig` when no anchor is left to trust.
    pub fn build(self) -> Result<TlsClientConfig> {
        let roots = shared_roots(self.default_roots, self.anchors)?;
        let client_cert = match self.identity {
            None => None,
            Some(id) => Some(Arc::new(SingleCertAndKey::from(id.certified_key()?))
                as Arc<dyn ResolvesClientCert>),
        };
        // Everything a client gives that rustls can refuse is checked above; the rustls
        // configuration itself is built by the attempt's first connection.
        Ok(TlsClientConfig {
            roots,
            client_cert,
            clock: self.clock,
            attempt: Mutex::new(None),
            _prune: PruneTrustStores,
        })
    }
}

/// The session a reconnection resumes: the latest TLS 1.2 session and TLS 1.3 ticket from one
/// server. A TLS 1.3 ticket is used once (RFC 8446 C.4), so a resumption takes it out.
#[derive(Default)]
struct OneSession(Mutex<Slot>);

#[derive(Default)]
struct Slot {
    server: Option<ServerName<'static>>,
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: Option<Tls13ClientSessionValue>,
}

/// Locks `mutex` even when a panic poisoned it: each value guarded in this file (the saved
/// session, the trust-store list, the attempt's configuration) is whole between statements, so
/// a panic elsewhere cannot have left one half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl OneSession {
    /// The slot, emptied first when it holds another server's session.
    fn slot_for(&self, server: &ServerName<'static>) -> MutexGuard<'_, Slot> {
        let mut slot = lock(&self.0);
        if slot.server.as_ref() != Some(server) {
            *slot = Slot {
                server: Some(server.clone()),
                ..Slot::default()
            };
        }
        slot
    }

    /// The slot, when it holds `server`'s session.
    fn slot_of(&self, server: &ServerName<'_>) -> Option<MutexGuard<'_, Slot>> {
        Some(lock(&self.0)).filter(|slot| slot.server.as_ref() == Some(server))
    }
}

impl std::fmt::Debug for OneSession {
    // Never the tickets or secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneSession")
    }
}

impl ClientSessionStore for OneSession {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.slot_for(&server_name).kx_hint = Some(group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.slot_of(server_name).and_then(|slot| slot.kx_hint)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.slot_for(&server_name).tls12 = Some(value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.slot_of(server_name)
            .and_then(|slot| slot.tls12.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        if let Some(mut slot) = self.slot_of(server_name) {
            slot.tls12 = None;
        }
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.slot_for(&server_name).tls13 = Some(value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.slot_of(server_name)
            .and_then(|mut slot| slot.tls13.take())
    }
}

/// Trust stores, shared by every client of the process that trusts the same anchors while one
/// of them lives: parsed once, not per handle. The rest of a configuration is per client, since
/// each has its own clock and saved session.
type TrustStores = Vec<(bool, [u8; 32], Weak<RootCertStore>)>;

static TRUST_STORES: Mutex<TrustStores> = Mutex::new(Vec::new());

fn shared_roots(
    default_roots: bool,
    anchors: Vec<CertificateDer<'static>>,
) -> Result<Arc<RootCertStore>> {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    for anchor in &anchors {
        hash.update((anchor.len() as u64).to_be_bytes());
        hash.update(anchor);
    }
    let digest: [u8; 32] = hash.finalize().into();
    let mut stores = lock(&TRUST_STORES);
    prune(&mut stores);
    let found = stores
        .iter()
        .filter(|(roots, d, _)| *roots == default_roots && *d == digest)
        .find_map(|(_, _, store)| store.upgrade());
    if let Some(store) = found {
        return Ok(store);
    }
    let mut roots = RootCertStore::empty();
    #[cfg(feature = "public-roots")]
    if default_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for anchor in anchors {
        roots
            .add(anchor)
            .map_err(|e| invalid_certificate(format!("unusable trust anchor: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            if cfg!(feature = "public-roots") {
                "no trust anchors: enable the public roots or add a CA"
            } else {
                "no trust anchors: this build has no public roots (feature public-roots off), \
                 add the CA that signs the server"
            },
        ));
    }
    // Held for as long as a client lives, so without the spare room growth leaves (room for
    // four anchors and four stores, where one of each is the usual case).
    roots.roots.shrink_to_fit();
    let roots = Arc::new(roots);
    stores.push((default_roots, digest, Arc::downgrade(&roots)));
    stores.shrink_to_fit();
    Ok(roots)
}

/// A client's TLS settings: the shared trust store, the client certificate, the clock. The
/// rustls configuration, with the saved session a reconnection resumes to save a round trip,
/// lives only while an attempt runs: its first connection builds it and `end_attempt` drops
/// it, so that an idle or finished client keeps the least.
pub struct TlsClientConfig {
    roots: Arc<RootCertStore>,
    client_cert: Option<Arc<dyn ResolvesClientCert>>,
    clock: UnixClock,
    attempt: Mutex<Option<Arc<ClientConfig>>>,
    /// Last, so that it drops after `roots` and `attempt` have let go of the trust store.
    _prune: PruneTrustStores,
}

/// Removes the shared list's entries that no client uses any more and shrinks the list to the
/// rest, which frees it when it is empty: a `Weak` keeps its allocation, and after the last
/// client is freed the library must hold nothing (the firmware may then replace its allocator,
/// or check for leaks).
struct PruneTrustStores;

impl Drop for PruneTrustStores {
    fn drop(&mut self) {
        prune(&mut lock(&TRUST_STORES));
    }
}

/// Drops the entries whose store no client holds any more, and the room they took.
fn prune(stores: &mut TrustStores) {
    stores.retain(|(_, _, store)| store.strong_count() > 0);
    stores.shrink_to_fit();
}

impl TlsClientConfig {
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder {
            default_roots: true,
            anchors: Vec::new(),
            identity: None,
            clock: UnixClock::new(),
        }
    }

    /// The public roots when `use_default_roots`, plus every certificate in `extra_pem`
    /// (which may be empty); no client certificate.
    pub fn new(use_default_roots: bool, extra_pem: &[u8]) -> Result<TlsClientConfig> {
        let mut builder = TlsClientConfig::builder().default_roots(use_default_roots);
        if !extra_pem.is_empty() {
            builder = builder.add_anchors_pem(extra_pem)?;
        }
        builder.build()
    }

    /// Drops the attempt's rustls configuration and its saved session (a secret and the
    /// server's certificate chain): a finished client holds no TLS state, and the next
    /// attempt starts with a full handshake.
    pub fn end_attempt(&self) {
        *self.attempt_config() = None;
    }

    fn attempt_config(&self) -> MutexGuard<'_, Option<Arc<ClientConfig>>> {
        lock(&self.attempt)
    }

    /// rustls' configuration for one attempt: its connections share it, and with it the one
    /// saved session (rustls' default store preallocates 256 entries, about 16 KB, for a
    /// client that talks to one host). Its only refusal, of the protocol versions, depends on
    /// the fixed provider alone, never on the client's settings.
    fn rustls_config(&self) -> Result<ClientConfig> {
        let provider = Arc::new(provider());
        let builder = ClientConfig::builder_with_details(provider, Arc::new(self.clock.clone()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?
            .with_root_certificates(self.roots.clone());
        let mut config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some(resolver) => builder.with_client_cert_resolver(resolver.clone()),
        };
        config.resumption = Resumption::store(Arc::new(OneSession::default()));
        Ok(config)
    }

    /// Sets the wall-clock time used for certificate validity.
    pub fn set_unix_time(&self, unix_seconds: u64) {
        self.clock.set(unix_seconds);
    }

    /// The clock this configuration reads.
    pub fn clock(&self) -> &UnixClock {
        &self.clock
    }

    /// A new connection to `server_name`, which is sent as SNI (unless it is an IP address)
    /// and which the server's certificate must match.
    pub fn new_session(&self, server_name: &str) -> Result<TlsSession> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("{server_name:?} is not a valid TLS server name"),
            )
        })?;
        let config = {
            let mut attempt = self.attempt_config();
            match &*attempt {
                Some(config) => config.clone(),
                None => attempt.insert(Arc::new(self.rustls_config()?)).clone(),
            }
        };
        let mut conn = ClientConnection::new(config, name).map_err(|e| map_error(&e))?;
        // The MQTT layer bounds what it queues; rustls' own 64 KB cap would otherwise refuse a
        // large first flight written before the handshake completes.
        conn.set_buffer_limit(None);
        Ok(TlsSession {
            conn,
            plaintext: Vec::new(),
            partial: Vec::new(),
            failed: false,
        })
    }
}

/// One TLS connection, fed and drained by the caller. After an error the session is dead: the
/// same error comes back from further input.
pub struct TlsSession {
    conn: ClientConnection,
    /// Decrypted bytes not yet taken. Drained from rustls after every record so that its
    /// 16 KB received-plaintext limit never refuses input; bounded by what the caller feeds.
    plaintext: Vec<u8>,
    /// The start of a record that has not all arrived, kept here (at its exact size) so that
    /// rustls is only ever given whole records. rustls sizes its receive buffer at what it
    /// holds plus 4 KiB, grown by doubling: holding a partial record while the next read
    /// comes in doubled it to 8 KiB.
    partial: Vec<u8>,
    /// rustls refused input: from then on every input goes straight to it, which repeats the
    /// error, so the session stays failed.
    failed: bool,
}

/// The largest record rustls accepts: 2^14 bytes of plaintext plus 2,048 of expansion (RFC
/// 8446 5.2, RFC 5246 6.2.3), after the 5-byte header.
const MAX_RECORD: usize = 5 + 16_384 + 2_048;

/// What the start of `bytes` holds: `Some(len)` when it begins a valid-looking record of `len`
/// bytes, header included; `Some(0)` while its header has not all arrived and what has is
/// valid; `None` when it cannot be a TLS record, which rustls must then see to refuse it at
/// once (e.g. a plain MQTT or HTTP answer, or a length no record may have).
fn record_len(bytes: &[u8]) -> Option<usize> {
    let content_type_ok = |t: u8| (20..=24).contains(&t);
    match *bytes {
        [t, ..] if !content_type_ok(t) => None,
        [_, major, ..] if major != 3 => None,
        [_, _, _, hi, lo, ..] => {
            let len = 5 + usize::from(u16::from_be_bytes([hi, lo]));
            (len <= MAX_RECORD).then_some(len)
        }
        _ => Some(0),
    }
}

impl TlsSession {
    /// Queues application bytes for encryption.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<()> {
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| Error::new(ErrorKind::InvalidState, format!("TLS write: {e}")))
    }

    /// Feeds bytes received from the network and processes every complete record, one record
    /// at a time: rustls then holds one record, and the plaintext of one, at a time.
    pub fn read_tls(&mut self, data: &[u8]) -> Result<()> {
        let mut rest = data;
        if self.failed {
            return self.feed(rest).map(|_| ());
        }
        while !rest.is_empty() {
            if !self.partial.is_empty() {
                // Complete the kept record: its header first, then its body.
                let have = self.partial.len();
                let want = match record_len(&self.partial) {
                    Some(0) => 5,
                    Some(len) => len,
                    None => have, // never kept: an invalid start goes to rustls at once
                };
                let (more, after) = rest.split_at(want.saturating_sub(have).min(rest.len()));
                self.partial.extend_from_slice(more);
                rest = after;
                match record_len(&self.partial) {
                    Some(len) if len != 0 && self.partial.len() == len => {
                        let record = std::mem::take(&mut self.partial);
                        if !self.feed(&record)? {
                            return Ok(());
                        }
                    }
                    Some(len) => self
                        .partial
                        .reserve_exact(len.saturating_sub(self.partial.len())),
                    None => {
                        let bad = std::mem::take(&mut self.partial);
                        self.feed(&bad)?;
                        return self.feed(rest).map(|_| ());
                    }
                }
                continue;
            }
            match record_len(rest) {
                Some(len) if len != 0 && len <= rest.len() => {
                    let (record, after) = rest.split_at(len);
                    rest = after;
                    if !self.feed(record)? {
                        return Ok(());
                    }
                }
                Some(len) => {
                    self.partial = Vec::with_capacity(len.max(5));
                    self.partial.extend_from_slice(rest);
                    rest = &[];
                }
                None => return self.feed(rest).map(|_| ()),
            }
        }
        Ok(())
    }

    /// Gives rustls `bytes` and processes them. `Ok(false)` once close_notify arrived: rustls
    /// reads nothing more, and nothing more is valid.
    fn feed(&mut self, mut bytes: &[u8]) -> Result<bool> {
        let result = self.feed_all(&mut bytes);
        self.failed |= result.is_err();
        result
    }

    fn feed_all(&mut self, rest: &mut &[u8]) -> Result<bool> {
        while !rest.is_empty() {
            let n = self
                .conn
                .read_tls(rest)
                .map_err(|e| Error::new(ErrorKind::TlsAlert, format!("TLS read: {e}")))?;
            self.conn.process_new_packets().map_err(|e| map_error(&e))?;
            self.drain_plaintext();
            if n == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Application bytes decrypted so far; empties the buffer.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.plaintext)
    }

    /// TLS records to send; empties rustls' output queue.
    pub fn take_tls_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues a close_notify alert, so the server sees an orderly end rather than a cut.
    pub fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    fn drain_plaintext(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self
                    .plaintext
                    .extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
    }
}

/// Maps a rustls error to the most precise result code.
fn map_error(e: &rustls::Error) -> Error {
    let code = match e {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            return Error::new(
                ErrorKind::TlsCertUntrusted,
                format!(
                    "{e}: no trust anchor vouches for the server's chain; add its root CA with \
                     dps_config_add_trust_anchors_pem (the CLI's --ca-file), or keep the public \
                     roots"
                ),
            )
        }
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => ErrorKind::TlsCertExpired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                ErrorKind::TlsCertNameMismatch
            }
            CertificateError::BadSignature
            | CertificateError::Revoked
            | CertificateError::InvalidPurpose
            | CertificateError::InvalidPurposeContext { .. } => ErrorKind::TlsCertUntrusted,
            _ => ErrorKind::TlsHandshake,
        },
        // A server that shares no version or cipher suite with us answers handshake_failure
        // (TLS 1.2 servers) or protocol_version; insufficient_security is the same story.
        rustls::Error::AlertReceived(
            AlertDescription::ProtocolVersion
            | AlertDescription::HandshakeFailure
            | AlertDescription::InsufficientSecurity,
        )
        | rustls::Error::PeerIncompatible(_) => ErrorKind::TlsProtocolVersion,
        rustls::Error::AlertReceived(_)
        | rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. }
        | rustls::Error::PeerMisbehaved(_)
        | rustls::Error::PeerSentOversizedRecord
        | rustls::Error::DecryptError => ErrorKind::TlsAlert,
        rustls::Error::FailedToGetCurrentTime => {
            return Error::new(
                ErrorKind::TlsHandshake,
                "no wall-clock time from the clock hook to check the certificate with",
            )
        }
        _ => ErrorKind::TlsHandshake,
    };
    Error::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        date_time_ymd, BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair,
    };
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ServerConfig, ServerConnection};

    const HOST: &str = "dps.test";
    /// 2023-11-14, inside every test certificate's validity (2020 to 2090).
    const NOW: u64 = 1_700_000_000;

    struct Ca {
        cert: Certificate,
        key: KeyPair,
    }

    impl Ca {
        fn new(name: &str) -> Ca {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2090, 1, 1);
            let cert = params.self_signed(&key).unwrap();
            Ca { cert, key }
        }

        fn pem(&self) -> Vec<u8> {
            self.cert.pem().into_bytes()
        }

        /// A leaf for `names` (empty = a client certificate), and its key.
        fn issue(&self, names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
            let key = KeyPair::generate().unwrap();
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, "leaf");
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2090, 1, 1);
            let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            (cert.der().clone(), key)
        }
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn server_config(
        ca: &Ca,
        names: &[&str],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ServerConfig {
        let (cert, key) = ca.issue(names);
        ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap()
    }

    /// A server connection that keeps what it decrypted, so rustls' receive limit never
    /// blocks the test's own side.
    struct TestServer {
        conn: ServerConnection,
        received: Vec<u8>,
    }

    impl TestServer {
        fn new(config: Arc<ServerConfig>) -> TestServer {
            let mut conn = ServerConnection::new(config).unwrap();
            conn.set_buffer_limit(None);
            TestServer {
                conn,
                received: Vec::new(),
            }
        }
    }

    impl std::ops::Deref for TestServer {
        type Target = ServerConnection;
        fn deref(&self) -> &ServerConnection {
            &self.conn
        }
    }

    impl std::ops::DerefMut for TestServer {
        fn deref_mut(&mut self) -> &mut ServerConnection {
            &mut self.conn
        }
    }

    fn server(ca: &Ca) -> TestServer {
        let config = server_config(
            ca,
            &[HOST],
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        );
        TestServer::new(Arc::new(config))
    }

    fn client_config(ca: &Ca) -> TlsClientConfig {
        let config = TlsClientConfig::new(false, &ca.pem()).unwrap();
        config.set_unix_time(NOW);
        config
    }

    /// Moves bytes both ways, `chunk` bytes per call, until neither side has anything to
    /// say. Client errors end the exchange; a server error only stops the server talking.
    fn pump(client: &mut TlsSession, server: &mut TestServer, chunk: usize) -> Result<()> {
        let mut server_failed = false;
        loop {
            let to_server = client.take_tls_output();
            if !server_failed {
                for piece in to_server.chunks(chunk) {
                    let mut rest = piece;
                    while !rest.is_empty() {
                        server.read_tls(&mut rest).unwrap();
                        if server.process_new_packets().is_err() {
                            server_failed = true;
                            break;
                        }
                        let _ = server.conn.reader().read_to_end(&mut server.received);
                    }
                }
            }
            let mut to_client = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut to_client).unwrap();
            }
            for piece in to_client.chunks(chunk) {
                client.read_tls(piece)?;
            }
            if to_server.is_empty() && to_client.is_empty() {
                return Ok(());
            }
        }
    }

    fn server_plaintext(server: &mut TestServer) -> Vec<u8> {
        std::mem::take(&mut server.received)
    }

    fn handshake_error(config: &TlsClientConfig, mut server: TestServer) -> Error {
        let mut client = config.new_session(HOST).unwrap();
        pump(&mut client, &mut server, usize::MAX).unwrap_err()
    }

    #[test]
    fn handshake_carries_data_written_before_it_both_ways() {
        let ca = Ca::new("Test CA");
        let config = client_config(&ca);
        for (versions, expected) in [
            (
                &[&rustls::version::TLS13][..],
                rustls::ProtocolVersion::TLSv1_3,
            ),
            (
                &[&rustls::version::TLS12][..],
                rustls::ProtocolVersion::TLSv1_2,
            ),
        ] {
            let mut server = TestServer::new(Arc::new(server_config(&ca, &[HOST], versions)));
            let mut client = config.new_session(HOST).unwrap();
            assert!(client.is_handshaking());
            client.write_plaintext(b"CONNECT").unwrap();
            pump(&mut client, &mut server, usize::MAX).unwrap();
            assert!(!client.is_handshaking());
            assert_eq!(client.conn.protocol_version(), Some(expected));
            assert_eq!(server.server_name(), Some(HOST), "SNI");
            assert_eq!(server_plaintext(&mut server), b"CONNECT");
            server.writer().write_all(b"CONNACK").unwrap();
            pump(&mut client, &mut server, usize::MAX).unwrap();
            assert_eq!(client.take_plaintext(), b"CONNACK");
            assert!(client.take_plaintext().is_empty());
        }
    }

    #[test]
    fn a_reconnection_resumes_until_the_attempt_ends() {
        use rustls::HandshakeKind;
        let ca = Ca::new("Test CA");
        let config = client_config(&ca);
        assert!(config.attempt_config().is_none());
        for versions in [
            &[&rustls::version::TLS13][..],
            &[&rustls::version::TLS12][..],
        ] {
            // One server config, as one server process: it keeps the sessions it issued.
            let server_config = Arc::new(server_config(&ca, &[HOST], versions));
            let connect = |config: &TlsClientConfig| {
                let mut server = TestServer::new(server_config.clone());
                let mut client = config.new_session(HOST).unwrap();
                client.write_plaintext(b"CONNECT").unwrap();
                pump(&mut client, &mut server, usize::MAX).unwrap();
                // TLS 1.3 tickets arrive after the handshake, with the server's first data.
                server.writer().write_all(b"CONNACK").unwrap();
                pump(&mut client, &mut server, usize::MAX).unwrap();
                assert_eq!(client.take_plaintext(), b"CONNACK");
                client.conn.handshake_kind()
            };
            assert_eq!(connect(&config), Some(HandshakeKind::Full), "{versions:?}");
            assert_eq!(
                connect(&config),
                Some(HandshakeKind::Resumed),
                "{versions:?}"
            );
            config.end_attempt();
            // An idle or finished client keeps no rustls configuration.
            assert!(config.attempt_config().is_none());
            assert_eq!(connect(&config), Some(HandshakeKind::Full), "{versions:?}");
            // Another client with the same anchors shares the trust store, not the session.
            let other = client_config(&ca);
            assert_eq!(connect(&other), Some(HandshakeKind::Full), "{versions:?}");
        }
    }

    #[test]
    fn clients_trusting_the_same_anchors_share_one_trust_store() {
        let ca = Ca::new("Test CA");
        let other_ca = Ca::new("Other CA");
        let a = client_config(&ca);
        let b = client_config(&ca);
        let c = client_config(&other_ca);
        let shared = |x: &TlsClientConfig, y: &TlsClientConfig| Arc::ptr_eq(&x.roots, &y.roots);
        assert!(shared(&a, &b));
        assert!(!shared(&a, &c));
    }

    #[test]
    fn every_aes_gcm_suite_is_offered_and_chacha20_is_not() {
        let ca = Ca::new("Test CA");
        let client = client_config(&ca);
        // The test certificates have ECDSA keys (rcgen over ring makes no RSA key), so the
        // TLS 1.2 ECDHE_RSA suites are left to the drop-in suite (tests/sdk_dropin), which
        // runs this library against the emulator's RSA key with TLS 1.2 only.
        let suites = rustls::crypto::ring::ALL_CIPHER_SUITES
            .iter()
            .filter(|s| !format!("{:?}", s.suite()).contains("ECDHE_RSA"));
        for suite in suites {
            let (cert, key) = ca.issue(&[HOST]);
            let provider = rustls::crypto::CryptoProvider {
                cipher_suites: vec![*suite],
                ..rustls::crypto::ring::default_provider()
            };
            let config = ServerConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[suite.version()])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap();
            let mut session = client.new_session(HOST).unwrap();
            let result = pump(
                &mut session,
                &mut TestServer::new(Arc::new(config)),
                usize::MAX,
            );
            let name = format!("{:?}", suite.suite());
            if name.contains("CHACHA20") {
                assert!(session.is_handshaking(), "{name} was negotiated");
            } else {
                assert!(result.is_ok(), "{name}: {result:?}");
                assert!(!session.is_handshaking(), "{name}");
            }
        }
    }

    #[test]
    fn handshake_one_byte_at_a_time() {
        let ca = Ca::new("Test CA");
        let mut server = server(&ca);
        let mut client = client_config(&ca).new_session(HOST).unwrap();
        client.write_plaintext(b"CONNECT").unwrap();
        pump(&mut client, &mut server, 1).unwrap();
        assert!(!client.is_handshaking());
        assert_eq!(server_plaintext(&mut server), b"CONNECT");
        server.writer().write_all(b"CONNACK").unwrap();
        pump(&mut client, &mut server, 1).unwrap();
        assert_eq!(client.take_plaintext(), b"CONNACK");
    }

    #[test]
    fn large_flights_in_one_call_pass_rustls_buffer_limits() {
        let ca = Ca::new("Test CA");
        let mut server = server(&ca);
        let mut client = client_config(&ca).new_session(HOST).unwrap();
        // Over rustls' 64 KB default cap on plaintext held before the handshake.
        let request: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        client.write_plaintext(&request).unwrap();
        pump(&mut client, &mut server, usize::MAX).unwrap();
        assert_eq!(server_plaintext(&mut server), request);
        // Over rustls' 16 KB cap on received plaintext, delivered in one read_tls call.
        let response: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        server.writer().write_all(&response).unwrap();
        pump(&mut client, &mut server, usize::MAX).unwrap();
        assert_eq!(client.take_plaintext(), response);
    }

    #[test]
    fn a_server_from_another_ca_is_untrusted() {
        let config = client_config(&Ca::new("Test CA"));
        let err = handshake_error(&config, server(&Ca::new("Other CA")));
        assert_eq!(err.kind, ErrorKind::TlsCertUntrusted, "{err}");
        assert_eq!(
            err.detail,
            "invalid peer certificate: UnknownIssuer: no trust anchor vouches for the server's \
             chain; add its root CA with dps_config_add_trust_anchors_pem (the CLI's --ca-file), \
             or keep the public roots"
        );
        // The public roots do not vouch for a private CA either.
        let public = TlsClientConfig::new(true, &[]).unwrap();
        public.set_unix_time(NOW);
        let err = handshake_error(&public, server(&Ca::new("Test CA")));
        assert_eq!(err.kind, ErrorKind::TlsCertUntrusted, "{err}");
    }

    #[test]
    fn a_certificate_for_another_host_is_a_name_mismatch() {
        let ca = Ca::new("Test CA");
        let config = server_config(
            &ca,
            &["other.test"],
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        );
        let err = handshake_error(&client_config(&ca), TestServer::new(Arc::new(config)));
        assert_eq!(err.kind, ErrorKind::TlsCertNameMismatch, "{err}");
    }

    #[test]
    fn validity_is_judged_by_the_callers_clock() {
        let ca = Ca::new("Test CA");
        let config = client_config(&ca);
        // 2096, after notAfter; then 2017, before notBefore.
        for unix in [4_000_000_000, 1_500_000_000] {
            config.set_unix_time(unix);
            let err = handshake_error(&config, server(&ca));
            assert_eq!(err.kind, ErrorKind::TlsCertExpired, "{unix}: {err}");
        }
        config.set_unix_time(0);
        let err = handshake_error(&config, server(&ca));
        assert_eq!(err.kind, ErrorKind::TlsHandshake, "{err}");
        // A clock shared with the engine is the one read.
        let clock = UnixClock::new();
        let shared = TlsClientConfig::builder()
            .default_roots(false)
            .add_anchors_pem(&ca.pem())
            .unwrap()
            .clock(clock.clone())
            .build()
            .unwrap();
        clock.set(4_000_000_000);
        let err = handshake_error(&shared, server(&ca));
        assert_eq!(err.kind, ErrorKind::TlsCertExpired, "{err}");
        clock.set(NOW);
        let mut client = shared.new_session(HOST).unwrap();
        pump(&mut client, &mut server(&ca), usize::MAX).unwrap();
        assert!(!client.is_handshaking());
    }

    #[test]
    fn alerts_and_foreign_bytes_map_to_precise_codes() {
        let config = client_config(&Ca::new("Test CA"));
        let fatal_alert = |description: u8| [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description];
        for (input, code) in [
            // protocol_version, handshake_failure
            (fatal_alert(70).to_vec(), ErrorKind::TlsProtocolVersion),
            (fatal_alert(40).to_vec(), ErrorKind::TlsProtocolVersion),
            // internal_error
            (fatal_alert(80).to_vec(), ErrorKind::TlsAlert),
            // A plain MQTT CONNACK: the server is not speaking TLS.
            (vec![0x20, 0x02, 0x00, 0x00], ErrorKind::TlsAlert),
            // An HTTP answer.
            (
                b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
                ErrorKind::TlsAlert,
            ),
        ] {
            let mut client = config.new_session(HOST).unwrap();
            client.take_tls_output();
            let err = client.read_tls(&input).unwrap_err();
            assert_eq!(err.kind, code, "{input:02x?}: {err}");
            // The session stays failed.
            assert_eq!(client.read_tls(&input).unwrap_err().kind, code);
        }
    }

    #[test]
    fn a_record_header_over_the_limit_is_refused_at_once_not_awaited() {
        let config = client_config(&Ca::new("Test CA"));
        // 65,535 bytes announced: more than any valid record, so nothing is kept waiting for
        // them, whether the header comes whole or a byte at a time.
        let header = [0x16, 0x03, 0x03, 0xff, 0xff];
        let mut client = config.new_session(HOST).unwrap();
        client.take_tls_output();
        assert!(client.read_tls(&header).is_err());
        let mut client = config.new_session(HOST).unwrap();
        client.take_tls_output();
        for byte in &header[..4] {
            client.read_tls(std::slice::from_ref(byte)).unwrap();
        }
        assert!(client.read_tls(&header[4..]).is_err());
        assert!(client.partial.is_empty());
    }

    #[test]
    fn records_split_anywhere_reach_rustls_whole() {
        let ca = Ca::new("Test CA");
        for chunk in [1, 2, 3, 4, 5, 6, 7, 100, 4096] {
            let mut server = server(&ca);
            let mut client = client_config(&ca).new_session(HOST).unwrap();
            client.write_plaintext(b"CONNECT").unwrap();
            pump(&mut client, &mut server, chunk).unwrap();
            // Many small records, each split across reads at every offset.
            for i in 0..40u8 {
                server.writer().write_all(&[i; 3]).unwrap();
                server.writer().flush().unwrap();
            }
            pump(&mut client, &mut server, chunk).unwrap();
            let expected: Vec<u8> = (0..40u8).flat_map(|i| [i; 3]).collect();
            assert_eq!(client.take_plaintext(), expected, "chunk {chunk}");
            assert!(client.partial.is_empty(), "chunk {chunk}");
        }
    }

    #[test]
    fn a_client_certificate_is_presented_when_configured() {
        let ca = Ca::new("Test CA");
        let client_ca = Ca::new("Device CA");
        let mut client_roots = RootCertStore::empty();
        client_roots.add(client_ca.cert.der().clone()).unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider())
                .build()
                .unwrap();
        let (cert, key) = ca.issue(&[HOST]);
        let server_config = Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(vec![cert], key)
                .unwrap(),
        );

        let (device_cert, device_key) = client_ca.issue(&[]);
        let with_identity = TlsClientConfig::builder()
            .default_roots(false)
            .add_anchor_der(ca.cert.der().clone())
            .client_identity(ClientIdentity {
                chain: vec![device_cert.clone()],
                key: rustls::crypto::ring::sign::any_supported_type(&device_key).unwrap(),
            })
            .build()
            .unwrap();
        with_identity.set_unix_time(NOW);
        let mut server = TestServer::new(server_config.clone());
        let mut client = with_identity.new_session(HOST).unwrap();
        client.write_plaintext(b"hello").unwrap();
        pump(&mut client, &mut server, usize::MAX).unwrap();
        assert_eq!(server.peer_certificates(), Some(&[device_cert][..]));
        assert_eq!(server_plaintext(&mut server), b"hello");

        // Without one, the server refuses the handshake.
        let mut server = TestServer::new(server_config);
        let mut client = client_config(&ca).new_session(HOST).unwrap();
        let err = pump(&mut client, &mut server, usize::MAX).unwrap_err();
        assert_eq!(err.kind, ErrorKind::TlsAlert, "{err}");
        assert!(server_plaintext(&mut server).is_empty());
    }

    #[test]
    fn pem_input_is_checked() {
        let ca = Ca::new("Test CA");
        let (leaf, _) = ca.issue(&[HOST]);
        let mut two = ca.pem();
        two.extend(Ca::new("Second CA").pem());
        assert_eq!(parse_pem_certificates(&two).unwrap().len(), 2);
        let garbage = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        for bad in [&b"not a certificate"[..], garbage] {
            assert_eq!(
                parse_pem_certificates(bad).unwrap_err().kind,
                ErrorKind::InvalidCertificate
            );
            assert_eq!(
                TlsClientConfig::new(true, bad).err().map(|e| e.kind),
                Some(ErrorKind::InvalidCertificate)
            );
        }
        assert!(parse_pem_certificates(b"").is_err());
        // Base64 that is not a certificate is refused when it becomes an anchor.
        let not_der = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            TlsClientConfig::new(false, not_der).err().map(|e| e.kind),
            Some(ErrorKind::InvalidCertificate)
        );
        assert_eq!(
            TlsClientConfig::new(false, &[]).err().map(|e| e.kind),
            Some(ErrorKind::InvalidConfig)
        );
        // A key PEM parses; a certificate where the key should be does not.
        let key = KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        assert!(private_key_der(key_pem.as_bytes()).is_ok());
        assert_eq!(
            ClientIdentity::from_pem(&ca.pem(), &ca.pem())
                .err()
                .map(|e| e.kind),
            Some(ErrorKind::InvalidPrivateKey)
        );
        // A key that does not match its certificate is refused, whether parsed or built.
        let mismatched = TlsClientConfig::builder()
            .client_identity(ClientIdentity {
                chain: vec![leaf.clone()],
                key: rustls::crypto::ring::sign::any_supported_type(
                    &PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
                )
                .unwrap(),
            })
            .build();
        assert_eq!(
            mismatched.err().map(|e| e.kind),
            Some(ErrorKind::InvalidCertificateKeyMismatch)
        );
        assert_eq!(
            ClientIdentity::parse(&leaf, key_pem.as_bytes())
                .err()
                .map(|e| e.kind),
            Some(ErrorKind::InvalidCertificateKeyMismatch)
        );
        assert_eq!(
            client_config(&ca)
                .new_session("bad name!")
                .err()
                .map(|e| e.kind),
            Some(ErrorKind::InvalidArgument)
        );
    }

    #[test]
    fn private_key_pem_is_decoded_like_rustls_pki_types_does() {
        let keys: [&[u8]; 6] = [
            include_bytes!("../../tests/data/p256.pkcs8.pem"),
            include_bytes!("../../tests/data/p256.sec1.pem"),
            include_bytes!("../../tests/data/p384.pkcs8.pem"),
            include_bytes!("../../tests/data/p384.sec1.pem"),
            include_bytes!("../../tests/data/rsa2048.pkcs1.pem"),
            include_bytes!("../../tests/data/rsa2048.pkcs8.pem"),
        ];
        for pem in keys {
            let reference = PrivateKeyDer::from_pem_slice(pem).unwrap();
            let (der, format) = private_key_der(pem).unwrap();
            assert_eq!(format.wrap(&der), reference);
            // CRLF line ends and text around the block (as openssl pkcs12 writes) are fine.
            let text = std::str::from_utf8(pem).unwrap().replace('\n', "\r\n");
            let wrapped = format!("Bag Attributes\r\n    localKeyID: 01\r\n{text}trailer\r\n");
            let (der, _) = private_key_der(wrapped.as_bytes()).unwrap();
            assert_eq!(format.wrap(&der), reference);
            // DER in, same key out.
            let (der_again, _) = private_key_der(reference.secret_der()).unwrap();
            assert_eq!(der_again.as_slice(), reference.secret_der());
        }
        let p256 = std::str::from_utf8(keys[0]).unwrap();
        for bad in [
            p256.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"),
            p256.replace("-----END PRIVATE KEY-----", ""),
            p256.replacen('M', "*", 1),
            p256.replace(
                "-----BEGIN PRIVATE KEY-----\n",
                "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n",
            ),
            "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n".to_owned(),
        ] {
            let code = private_key_der(bad.as_bytes())
                .and_then(|(der, format)| {
                    rustls::crypto::ring::sign::any_supported_type(&format.wrap(&der))
                        .map_err(|_| invalid_key("unusable"))
                })
                .err()
                .map(|e| e.kind);
            assert_eq!(code, Some(ErrorKind::InvalidPrivateKey), "{bad}");
        }
    }
}
