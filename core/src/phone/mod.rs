//! One agent's phone: the visit lifecycle over the device store, the blob store, the rules
//! engine, the anchored clock and capture.
//!
//! Every action follows the same path: build the rule context from verified documents,
//! run the rules of DOMAIN.md, refuse on a blocking violation (nothing is written), else
//! record the action and every warning or flag as events of the visit's hash chain — the
//! check and the record in one store transaction, so no other action can slip between.

mod action;
mod cosign;
mod keys;
mod lifecycle;
mod loaded;
mod media;
mod overview;
mod push;
mod receipts;
mod seal;
mod setup;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::blobs::BlobStore;
use crate::capture::audio::AudioRecorder;
use crate::clock::{Clock, StoredAnchor};
use crate::crypto::{KeyStore, PublicKey, Signer};
use crate::model::{AgentId, DeviceId, EventTime, VisitId};
use crate::place::Fix;
use crate::store::DeviceStore;
use crate::{Error, Result};

pub use action::VisitAction;
pub use cosign::{CheckInReview, Completed, Review};
pub use lifecycle::Recorded;
pub use media::CapturedPhoto;
pub use overview::{AddressOverview, CaseOverview, VisitOverview};
pub use push::{PushMaterial, ServerReceipt};
pub use receipts::ReceiptRequest;
pub use setup::Enrollment;
pub use sync::{AssignmentDocs, PullSummary, SyncChange, SyncPage};

/// Where this phone is: the platform's location service (FusedLocationProvider, CoreLocation).
pub trait LocationSource: Send + Sync {
    /// The latest fix, or `None` when there is none (which blocks check-in under V05).
    fn current_fix(&self) -> Option<Fix>;
}

/// A location source whose fix is set by hand: for tests and the terminal simulator.
#[derive(Default)]
pub struct ManualLocation(Mutex<Option<Fix>>);

impl ManualLocation {
    /// A source reporting `fix`.
    pub fn new(fix: Option<Fix>) -> Self {
        Self(Mutex::new(fix))
    }

    /// Changes the reported fix.
    pub fn set(&self, fix: Option<Fix>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = fix;
    }
}

impl LocationSource for ManualLocation {
    fn current_fix(&self) -> Option<Fix> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a phone is opened with: its folder and the platform services.
pub struct PhoneConfig {
    /// The app-private folder holding the store, blobs and audio spool.
    pub dir: PathBuf,
    /// Seals the store keys (and the device key when no hardware signer is given).
    pub keystore: Arc<dyn KeyStore>,
    /// Wall and monotonic time.
    pub clock: Arc<dyn Clock>,
    /// Position.
    pub location: Arc<dyn LocationSource>,
    /// A hardware-held device key; `None` keeps an Ed25519 key sealed by `keystore`.
    pub signer: Option<Arc<dyn Signer>>,
}

struct Recording {
    visit: VisitId,
    recorder: AudioRecorder,
    /// Anchored start of the segment being recorded (V07 counts gaps from it).
    open_since_ms: i64,
}

/// One agent's phone.
pub struct Phone {
    dir: PathBuf,
    store: DeviceStore,
    blobs: BlobStore,
    clock: Arc<dyn Clock>,
    location: Arc<dyn LocationSource>,
    signer: Arc<dyn Signer>,
    recording: Mutex<Option<Recording>>,
    pending: Mutex<Vec<cosign::Pending>>,
}

impl Phone {
    /// Opens (or creates) the phone's data in `config.dir`, and recovers what a crash left:
    /// audio segments still in the spool are repaired, stored and chained, with the gap.
    pub fn open(config: PhoneConfig) -> Result<Phone> {
        let dir = config.dir;
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "create phone folder",
            path: dir.clone(),
            source,
        })?;
        let keys = keys::PhoneKeys::load_or_create(&dir, config.keystore.as_ref())?;
        let store = DeviceStore::open(&dir.join("device.db"), &keys.field_key)?;
        let blobs = BlobStore::open(&dir.join("blobs"), keys.blob_key)?;
        let signer = match config.signer {
            Some(signer) => signer,
            None => keys::software_device_signer(&store, config.keystore.as_ref())?,
        };
        let phone = Phone {
            dir,
            store,
            blobs,
            clock: config.clock,
            location: config.location,
            signer,
            recording: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
        };
        phone.recover_audio()?;
        Ok(phone)
    }

    /// The device's public key: sent at enrolment, listed in approvals.
    pub fn public_key(&self) -> PublicKey {
        self.signer.public_key()
    }

    /// The device store (for sync and diagnostics).
    pub fn store(&self) -> &DeviceStore {
        &self.store
    }

    /// The encrypted blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The device's signer.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// This phone's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device and agent this phone is enrolled as.
    pub fn identity(&self) -> Result<(DeviceId, AgentId)> {
        self.store
            .read(|tx| match (tx.device_id()?, tx.agent_id()?) {
                (Some(device), Some(agent)) => Ok((device, agent)),
                _ => Err(Error::NotEnrolled("this phone is not enrolled".into())),
            })
    }

    /// Now, by the server-anchored clock when the anchor holds.
    pub fn now(&self) -> Result<EventTime> {
        let anchor: Option<StoredAnchor> =
            self.store.read(|tx| Ok::<_, Error>(tx.stored_anchor()?))?;
        Ok(crate::clock::now(self.clock.as_ref(), anchor.as_ref()))
    }

    /// The phone's wall clock, UTC ms: for scheduling retries, never for evidence.
    pub fn wall_ms(&self) -> i64 {
        self.clock.wall_ms()
    }

    /// The current fix from the platform.
    pub fn current_fix(&self) -> Option<Fix> {
        self.location.current_fix()
    }

    fn spool_dir(&self) -> PathBuf {
        self.dir.join("audio-spool")
    }

    fn pending(&self) -> MutexGuard<'_, Vec<cosign::Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recording(&self) -> MutexGuard<'_, Option<Recording>> {
        self.recording.lock().unwrap_or_else(|p| p.into_inner())
    }
}
