//! Platform services as foreign traits (Kotlin interfaces, Swift protocols, Python classes),
//! and the adapters that hand them to core as core's own traits.
//!
//! Android: `Clock` from `System.currentTimeMillis` / `SystemClock.elapsedRealtime` and the
//! boot count; `LocationSource` from the fused provider (`Location.isMock`); `KeyStore` and
//! `Signer` from Android Keystore (AES-GCM to seal, an EC P-256 key to sign). iOS: the same
//! from CoreLocation and the Secure Enclave.

use std::path::Path;
use std::sync::Arc;

use tandem_core::crypto::{CryptoError, PublicKey, SignatureAlgorithm};
use tandem_core::place::{Coordinate, Datum, Fix, Provider};
use zeroize::Zeroizing;

use crate::TandemError;

/// Wall and monotonic time of the platform.
#[uniffi::export(rust, foreign)]
pub trait Clock: Send + Sync {
    /// Wall-clock time, UTC ms: whatever the phone is set to.
    fn wall_ms(&self) -> i64;
    /// Milliseconds since boot, counting sleep (Android `elapsedRealtime`).
    fn monotonic_ms(&self) -> i64;
    /// Changes on every restart of the device (Android: `Settings.Global.BOOT_COUNT`).
    fn boot_id(&self) -> String;
}

/// Where the phone is.
#[uniffi::export(foreign)]
pub trait LocationSource: Send + Sync {
    /// The latest fix, or none (which blocks check-in under V05).
    fn current_fix(&self) -> Option<LocationFix>;
}

/// Seals secrets under a key the platform protects (Android Keystore, Secure Enclave).
#[uniffi::export(rust, foreign)]
pub trait KeyStore: Send + Sync {
    /// Encrypts `secret`, bound to `label`.
    fn seal(&self, label: String, secret: Vec<u8>) -> Result<Vec<u8>, TandemError>;
    /// Decrypts what `seal` produced for the same label.
    fn unseal(&self, label: String, sealed: Vec<u8>) -> Result<Vec<u8>, TandemError>;
}

/// A device key held by the platform's hardware (Android Keystore, Secure Enclave): core
/// never sees the private half.
#[uniffi::export(foreign)]
pub trait Signer: Send + Sync {
    /// The public half (read once, when the phone opens).
    fn public_key(&self) -> DevicePublicKey;
    /// Signs `message`: 64 bytes, Ed25519, or ECDSA P-256 over SHA-256 as fixed-width r‖s
    /// (Java: `SHA256withECDSAinP1363Format`; Apple: `.ecdsaSignatureMessageX962SHA256`
    /// converted from DER).
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, TandemError>;
}

/// Progress of a long transfer, called on the calling (background) thread.
#[uniffi::export(foreign)]
pub trait SyncProgress: Send + Sync {
    /// Bytes of the bundle being uploaded: done so far, and in all.
    fn on_progress(&self, done: u64, total: u64);
}

/// A position report, as the platform gives it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LocationFix {
    /// Latitude, 1e-7 degrees.
    pub lat_e7: i32,
    /// Longitude, 1e-7 degrees.
    pub lon_e7: i32,
    /// The datum the platform reports in (GNSS: WGS-84).
    pub datum: Datum,
    /// Horizontal accuracy radius, metres.
    pub accuracy_m: u32,
    /// The source of the position.
    pub provider: Provider,
    /// The platform flagged the position as mocked (Android `Location.isMock`).
    pub mock: bool,
    /// When the position was taken, UTC ms.
    pub taken_at_ms: i64,
}

/// Geodetic datum of a coordinate.
#[uniffi::remote(Enum)]
pub enum Datum {
    Wgs84,
    Gcj02,
    Bd09,
}

/// Source of a position.
#[uniffi::remote(Enum)]
pub enum Provider {
    Gnss,
    Network,
    Fused,
    Manual,
    Other,
}

/// A public key with its algorithm.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DevicePublicKey {
    /// Which algorithm.
    pub alg: SignatureAlgorithm,
    /// Raw key: Ed25519 32 bytes; P-256 the 65-byte uncompressed point (`04 ‖ x ‖ y`).
    pub key: Vec<u8>,
}

/// The signature algorithms every Tandem verifier accepts.
#[uniffi::remote(Enum)]
pub enum SignatureAlgorithm {
    Ed25519,
    EcdsaP256Sha256,
}

impl From<PublicKey> for DevicePublicKey {
    fn from(k: PublicKey) -> Self {
        Self {
            alg: k.alg,
            key: k.key,
        }
    }
}

/// A key store in a file readable only by its owner, for desktop tools and tests: it
/// protects nothing against whoever can read the file. Phones pass their platform's.
#[uniffi::export]
pub fn software_key_store(path: String) -> Result<Arc<dyn KeyStore>, TandemError> {
    let inner =
        tandem_core::crypto::SoftwareKeyStore::open_or_create(Path::new(&path)).map_err(|e| {
            TandemError::Platform {
                reason: e.to_string(),
            }
        })?;
    Ok(Arc::new(SoftwareKeyStore(inner)))
}

/// The clock of the machine the library runs on (Linux boot id and `CLOCK_BOOTTIME`).
#[uniffi::export]
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock(tandem_core::clock::SystemClock::new()))
}

struct SoftwareKeyStore(tandem_core::crypto::SoftwareKeyStore);

impl KeyStore for SoftwareKeyStore {
    fn seal(&self, label: String, secret: Vec<u8>) -> Result<Vec<u8>, TandemError> {
        use tandem_core::crypto::KeyStore as _;
        let secret = Zeroizing::new(secret);
        self.0.seal(&label, &secret).map_err(platform)
    }

    fn unseal(&self, label: String, sealed: Vec<u8>) -> Result<Vec<u8>, TandemError> {
        use tandem_core::crypto::KeyStore as _;
        // Handed to the foreign side by value: the copy there is the platform's to wipe.
        Ok(self.0.unseal(&label, &sealed).map_err(platform)?.to_vec())
    }
}

struct SystemClock(tandem_core::clock::SystemClock);

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        tandem_core::clock::Clock::wall_ms(&self.0)
    }

    fn monotonic_ms(&self) -> i64 {
        tandem_core::clock::Clock::monotonic_ms(&self.0)
    }

    fn boot_id(&self) -> String {
        tandem_core::clock::Clock::boot_id(&self.0)
    }
}

fn platform(e: CryptoError) -> TandemError {
    TandemError::Platform {
        reason: e.to_string(),
    }
}

/// Core's clock, read from the platform's.
pub(crate) struct ClockAdapter(pub Arc<dyn Clock>);

impl tandem_core::clock::Clock for ClockAdapter {
    fn wall_ms(&self) -> i64 {
        self.0.wall_ms()
    }

    fn monotonic_ms(&self) -> i64 {
        self.0.monotonic_ms()
    }

    fn boot_id(&self) -> String {
        self.0.boot_id()
    }
}

/// Core's location source, read from the platform's.
pub(crate) struct LocationAdapter(pub Arc<dyn LocationSource>);

impl tandem_core::phone::LocationSource for LocationAdapter {
    fn current_fix(&self) -> Option<Fix> {
        let fix = self.0.current_fix()?;
        // A position outside ±90°/±180° is no position: reported as none, which core's
        // rules treat as a missing fix.
        match Coordinate::new(fix.lat_e7, fix.lon_e7, fix.datum) {
            Ok(coordinate) => Some(Fix {
                coordinate,
                accuracy_m: fix.accuracy_m,
                provider: fix.provider,
                mock: fix.mock,
                taken_at_ms: fix.taken_at_ms,
            }),
            Err(e) => {
                tracing::warn!("the platform reported an impossible position: {e}");
                None
            }
        }
    }
}

/// Core's key store, backed by the platform's.
pub(crate) struct KeyStoreAdapter(pub Arc<dyn KeyStore>);

impl tandem_core::crypto::KeyStore for KeyStoreAdapter {
    fn seal(&self, label: &str, secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0
            .seal(label.to_owned(), secret.to_vec())
            .map_err(|e| CryptoError::KeyStore(e.to_string()))
    }

    fn unseal(&self, label: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0
            .unseal(label.to_owned(), sealed.to_vec())
            .map(Zeroizing::new)
            .map_err(|e| CryptoError::KeyStore(e.to_string()))
    }
}

/// Core's signer, backed by a platform key. The public key is read and checked once.
pub(crate) struct SignerAdapter {
    foreign: Arc<dyn Signer>,
    public: PublicKey,
}

impl SignerAdapter {
    /// Reads the platform key's public half; refuses one malformed for its algorithm.
    pub(crate) fn new(foreign: Arc<dyn Signer>) -> Result<Self, TandemError> {
        let DevicePublicKey { alg, key } = foreign.public_key();
        let public = PublicKey::new(alg, key).map_err(|e| TandemError::Platform {
            reason: format!("the platform signer's public key: {e}"),
        })?;
        Ok(Self { foreign, public })
    }
}

impl tandem_core::crypto::Signer for SignerAdapter {
    fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.foreign
            .sign(message.to_vec())
            .map_err(|e| CryptoError::KeyStore(format!("the platform signer failed: {e}")))
    }
}
