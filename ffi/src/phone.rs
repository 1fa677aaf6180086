//! One agent's phone: each method hands one call to `tandem_core::phone::Phone` (or to core's
//! sync client) and copies the answer into records. No rule is decided here.
//!
//! **Threads.** Every method blocks the calling thread; none may run on the UI thread.
//! Long calls — network, disk-heavy or CPU-heavy — are marked *Long* below: `enroll`,
//! `sync_now`, `push`, `capture_photo`, `begin_seal`/`complete` of a seal, `receipt_png`.
//! `sync_now` and `push` take a [`CancelToken`]. A phone object may be shared between
//! threads: core serialises what must not interleave.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use tandem_core::crypto::Digest;
use tandem_core::model::{Fen, Payer, ReceiptSerial, TemplateId, VisitId};
use tandem_core::phone::VisitAction as CoreAction;
use tandem_core::phone::{Completed, Phone, ReceiptRequest, Review};

use crate::TandemError;
use crate::error::invalid;
use crate::platform::{
    Clock, ClockAdapter, DevicePublicKey, KeyStore, KeyStoreAdapter, LocationAdapter,
    LocationSource, Signer, SignerAdapter, SyncProgress,
};
use crate::records::{
    CaseView, ChallengeView, Completion, EventSummary, Identity, PhoneTime, PhotoCaptured,
    ReceiptEntry, ReceiptInput, RecordedEvent, SealSummary, VisitAction, VisitRules, VisitSummary,
};
use crate::sync::{CancelToken, PushReport, Server, SyncRound, SyncState};

type Result<T, E = TandemError> = std::result::Result<T, E>;

/// What a phone is opened with: its folder and the platform services.
#[derive(uniffi::Record)]
pub struct PhoneConfig {
    /// The app-private folder for the store, blobs and audio spool (Android `filesDir`).
    pub dir: String,
    /// Seals the store keys (and the device key when no hardware `signer` is given).
    pub keystore: Arc<dyn KeyStore>,
    /// Wall and monotonic time.
    pub clock: Arc<dyn Clock>,
    /// Position.
    pub location: Arc<dyn LocationSource>,
    /// A hardware-held device key; none keeps an Ed25519 key sealed by `keystore`.
    pub signer: Option<Arc<dyn Signer>>,
}

/// One agent's phone.
#[derive(uniffi::Object)]
pub struct TandemPhone {
    phone: Phone,
}

/// A challenge checked on the partner's phone, waiting for its agent to agree.
#[derive(uniffi::Object)]
pub struct ChallengeReview {
    review: Review,
}

#[uniffi::export]
impl ChallengeReview {
    /// What the partner's screen shows before signing: the statement and, for a check-in,
    /// the lead's distance to the address, the fence, the reason and any warning.
    pub fn summary(&self) -> ChallengeView {
        ChallengeView::from(&self.review)
    }
}

fn visit_id(text: &str) -> Result<VisitId> {
    VisitId::from_str(text).map_err(|e| invalid("visit id", text, e))
}

fn digest(text: &str) -> Result<Digest> {
    Digest::from_str(text).map_err(|e| invalid("digest", text, e))
}

fn digest_opt(text: Option<String>) -> Result<Option<Digest>> {
    text.as_deref().map(digest).transpose()
}

/// 16-bit little-endian PCM, as Android's `AudioRecord` and AVAudioEngine give it.
fn pcm_samples(bytes: &[u8]) -> Result<Vec<i16>> {
    if !bytes.len().is_multiple_of(2) {
        return Err(TandemError::Invalid {
            reason: format!(
                "PCM chunk of {} bytes: 16-bit samples come in pairs of bytes",
                bytes.len()
            ),
        });
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

impl TryFrom<VisitAction> for CoreAction {
    type Error = TandemError;

    fn try_from(a: VisitAction) -> Result<Self> {
        Ok(match a {
            VisitAction::Note { text } => CoreAction::Note { text },
            VisitAction::Consent { scope } => CoreAction::Consent { scope },
            VisitAction::IdentityConfirmed { person } => CoreAction::IdentityConfirmed { person },
            VisitAction::Dispute {
                kind,
                statement,
                id_front,
                id_back,
            } => CoreAction::Dispute {
                kind,
                statement: digest_opt(statement)?,
                id_front: digest_opt(id_front)?,
                id_back: digest_opt(id_back)?,
            },
            VisitAction::HealthFlagged { flag } => CoreAction::HealthFlagged { flag },
            VisitAction::TemplateUsed {
                template_id,
                version,
                document,
            } => CoreAction::TemplateUsed {
                template_id: TemplateId::from_str(&template_id)
                    .map_err(|e| invalid("template id", &template_id, e))?,
                version,
                document: digest(&document)?,
            },
            VisitAction::Promise {
                kind,
                amount_fen,
                due_ms,
            } => CoreAction::Promise {
                kind,
                amount: Fen(amount_fen),
                due_ms,
            },
            VisitAction::Complaint { note } => CoreAction::Complaint { note },
        })
    }
}

fn completion(completed: Completed) -> Completion {
    match completed {
        Completed::CheckedIn(r) => Completion::CheckedIn {
            recorded: RecordedEvent::from(&r),
        },
        Completed::CheckedOut(r) => Completion::CheckedOut {
            recorded: RecordedEvent::from(&r),
        },
        Completed::Sealed(seal) => Completion::Sealed {
            seal: SealSummary::from(&seal),
        },
        Completed::ReceiptIssued(r) => Completion::ReceiptIssued {
            recorded: RecordedEvent::from(&r),
        },
        Completed::ReceiptVoided(r) => Completion::ReceiptVoided {
            recorded: RecordedEvent::from(&r),
        },
    }
}

/// Calls `progress` with core's byte counts.
fn reporter(progress: Option<Arc<dyn SyncProgress>>) -> impl FnMut(u64, u64) {
    move |done, total| {
        if let Some(p) = &progress {
            p.on_progress(done, total);
        }
    }
}

#[uniffi::export]
impl TandemPhone {
    /// Opens (or creates) the phone's data in `config.dir`, recovering audio a crash left.
    /// *Long* on first start (key generation) and after a crash (audio repair).
    #[uniffi::constructor]
    pub fn open(config: PhoneConfig) -> Result<Arc<Self>> {
        let signer: Option<Arc<dyn tandem_core::crypto::Signer>> = match config.signer {
            Some(s) => Some(Arc::new(SignerAdapter::new(s)?)),
            None => None,
        };
        let phone = Phone::open(tandem_core::phone::PhoneConfig {
            dir: PathBuf::from(config.dir),
            keystore: Arc::new(KeyStoreAdapter(config.keystore)),
            clock: Arc::new(ClockAdapter(config.clock)),
            location: Arc::new(LocationAdapter(config.location)),
            signer,
        })?;
        Ok(Arc::new(Self { phone }))
    }

    /// The device's public key (sent at enrolment).
    pub fn public_key(&self) -> DevicePublicKey {
        self.phone.public_key().into()
    }

    /// The device and agent this phone is enrolled as.
    pub fn identity(&self) -> Result<Identity> {
        let (device, agent) = self.phone.identity()?;
        Ok(Identity {
            device_id: device.to_string(),
            agent_id: agent.to_string(),
        })
    }

    /// Now, by the phone's wall clock and, when anchored, the server's time.
    pub fn now(&self) -> Result<PhoneTime> {
        let now = self.phone.now()?;
        Ok(PhoneTime {
            wall_ms: now.wall_ms,
            anchored_ms: now.anchored_ms(),
        })
    }

    /// *Long (network).* Enrols this phone with a one-time code from the admin.
    pub fn enroll(&self, server: Arc<Server>, code: String) -> Result<Identity> {
        let enrolled = tandem_core::sync::enroll(&self.phone, &server.transport(None), &code)?;
        Ok(Identity {
            device_id: enrolled.device_id.to_string(),
            agent_id: enrolled.agent_id.to_string(),
        })
    }

    /// *Long (network).* One sync round: pull the server's documents and time anchor, push
    /// every due sealed visit (`progress` sees the bytes), purge acknowledged media.
    /// Cancelling stops before the next request with `Cancelled`.
    pub fn sync_now(
        &self,
        server: Arc<Server>,
        progress: Option<Arc<dyn SyncProgress>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<SyncRound> {
        let transport = server.transport(cancel.as_deref());
        let mut report = reporter(progress);
        Ok(tandem_core::sync::sync_now(&self.phone, &transport, &mut report)?.into())
    }

    /// *Long (network).* Pushes every due sealed visit only (no pull); cancellable between
    /// requests (each upload chunk is one).
    pub fn push(
        &self,
        server: Arc<Server>,
        progress: Option<Arc<dyn SyncProgress>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<PushReport> {
        let token = self.phone.device_token()?;
        let transport = server.transport(cancel.as_deref());
        let mut report = reporter(progress);
        let wall = || self.phone.wall_ms();
        Ok(tandem_core::sync::push(
            &self.phone,
            &transport,
            &token,
            &tandem_core::sync::Backoff::default(),
            &wall,
            &mut report,
        )?
        .into())
    }

    /// Deletes the media of visits whose server receipt verified (D01); returns how many.
    pub fn purge(&self) -> Result<u32> {
        Ok(tandem_core::sync::purge_acknowledged(&self.phone)?)
    }

    /// The sync screen: outbox, errors, E03 deadlines.
    pub fn sync_status(&self) -> Result<SyncState> {
        Ok(self.phone.sync_status()?.into())
    }

    /// Every visit held on this phone.
    pub fn visits(&self) -> Result<Vec<VisitSummary>> {
        let records = self
            .phone
            .store()
            .read(|tx| Ok::<_, tandem_core::Error>(tx.visits(&[])?))?;
        Ok(records.iter().map(VisitSummary::from).collect())
    }

    /// One visit.
    pub fn visit(&self, visit: String) -> Result<VisitSummary> {
        Ok(VisitSummary::from(&self.phone.visit(visit_id(&visit)?)?))
    }

    /// What the rules say about a visit now: the check-in rules with this phone's current
    /// fix (for an assigned visit) and the rules flagged on it so far.
    pub fn rules(&self, visit: String) -> Result<VisitRules> {
        let id = visit_id(&visit)?;
        self.phone
            .visit_overviews()?
            .iter()
            .find(|o| o.visit_id == id)
            .map(VisitRules::from)
            .ok_or_else(|| TandemError::NotFound {
                reason: format!("visit {visit}"),
            })
    }

    /// The case of a visit (card and ID numbers masked).
    pub fn case_of(&self, visit: String) -> Result<CaseView> {
        Ok(self.phone.case_of(visit_id(&visit)?)?.into())
    }

    /// The visit's log, checked against its chain, for the timeline; warnings and flags
    /// recorded on it carry their rule.
    pub fn events(&self, visit: String) -> Result<Vec<EventSummary>> {
        let events = self.phone.events(visit_id(&visit)?)?;
        Ok(events.iter().map(EventSummary::from).collect())
    }

    /// Starts a check-in (lead phone): the challenge to show as QR frames.
    /// `outside_fence_reason` is required when the team stands outside the geofence (V05).
    pub fn begin_check_in(
        &self,
        visit: String,
        outside_fence_reason: Option<String>,
    ) -> Result<Vec<String>> {
        Ok(self
            .phone
            .begin_check_in(visit_id(&visit)?, outside_fence_reason)?)
    }

    /// Starts a check-out (lead phone).
    pub fn begin_check_out(&self, visit: String) -> Result<Vec<String>> {
        Ok(self.phone.begin_check_out(visit_id(&visit)?)?)
    }

    /// *Long (hashes every item).* Starts the seal (lead phone): the manifest's challenge.
    pub fn begin_seal(&self, visit: String) -> Result<Vec<String>> {
        Ok(self.phone.begin_seal(visit_id(&visit)?)?)
    }

    /// Starts a co-signed receipt (lead phone); C01/C02 refuse here.
    pub fn begin_receipt(&self, visit: String, receipt: ReceiptInput) -> Result<Vec<String>> {
        let request = ReceiptRequest {
            payer: Payer {
                role: receipt.payer_role,
                name: receipt.payer_name,
            },
            amount: Fen(receipt.amount_fen),
            method: receipt.method,
            payer_signature_png: receipt.payer_signature_png,
        };
        Ok(self.phone.begin_receipt(visit_id(&visit)?, &request)?)
    }

    /// Starts voiding a receipt (lead phone), with the reason both agents sign.
    pub fn begin_void(&self, visit: String, serial: u64, reason: String) -> Result<Vec<String>> {
        Ok(self
            .phone
            .begin_void(visit_id(&visit)?, ReceiptSerial(serial), &reason)?)
    }

    /// Checks a challenge scanned from the lead's screen (partner phone), frames in any
    /// order. Refuses (V03, V05…) when this phone must not co-sign.
    pub fn review_challenge(&self, frames: Vec<String>) -> Result<Arc<ChallengeReview>> {
        let review = self.phone.review_challenge(&frames)?;
        Ok(Arc::new(ChallengeReview { review }))
    }

    /// Checks a challenge a [`crate::FrameAssembler`] reassembled from the lead's screen
    /// (partner phone), as [`Self::review_challenge`] does.
    pub fn review_challenge_payload(&self, challenge: Vec<u8>) -> Result<Arc<ChallengeReview>> {
        let review = self.phone.review_challenge_payload(&challenge)?;
        Ok(Arc::new(ChallengeReview { review }))
    }

    /// Signs a reviewed challenge (partner phone): the reply to show as QR frames.
    pub fn answer_challenge(&self, review: Arc<ChallengeReview>) -> Result<Vec<String>> {
        Ok(self.phone.answer_challenge(&review.review)?)
    }

    /// Completes a co-signing with the partner's reply (lead phone) and records it.
    /// *Long* for a seal (the bundle is written and queued).
    pub fn complete(&self, reply_frames: Vec<String>) -> Result<Completion> {
        Ok(completion(self.phone.complete(&reply_frames)?))
    }

    /// Completes a co-signing with the reply a [`crate::FrameAssembler`] reassembled from
    /// the partner's screen (lead phone), as [`Self::complete`] does.
    pub fn complete_payload(&self, reply: Vec<u8>) -> Result<Completion> {
        Ok(completion(self.phone.complete_payload(&reply)?))
    }

    /// Records an action during the visit.
    pub fn record(&self, visit: String, action: VisitAction) -> Result<RecordedEvent> {
        let action = CoreAction::try_from(action)?;
        Ok(RecordedEvent::from(
            &self.phone.record(visit_id(&visit)?, &action)?,
        ))
    }

    /// Records a typed note.
    pub fn add_note(&self, visit: String, text: String) -> Result<RecordedEvent> {
        self.record(visit, VisitAction::Note { text })
    }

    /// *Long (decodes, hashes, encrypts, makes a thumbnail).* Keeps a photo exactly as the
    /// camera gave it (JPEG or PNG); `interior` for photos inside the home (V08).
    pub fn capture_photo(
        &self,
        visit: String,
        image: Vec<u8>,
        interior: bool,
    ) -> Result<PhotoCaptured> {
        let captured = self
            .phone
            .capture_photo(visit_id(&visit)?, &image, interior)?;
        Ok(PhotoCaptured {
            original: captured.original.to_hex(),
            thumbnail: captured.thumbnail.to_hex(),
            recorded: RecordedEvent::from(&captured.recorded),
        })
    }

    /// Starts recording audio for the visit (V07), mono 16-bit at `sample_rate` Hz.
    pub fn start_audio(&self, visit: String, sample_rate: u32) -> Result<()> {
        Ok(self.phone.start_audio(visit_id(&visit)?, sample_rate)?)
    }

    /// Hands a chunk from the platform recorder (16-bit little-endian PCM, mono); returns
    /// the digests (hex) of the segments that closed with it.
    pub fn push_audio(&self, visit: String, pcm16le: Vec<u8>) -> Result<Vec<String>> {
        let samples = pcm_samples(&pcm16le)?;
        let closed = self.phone.push_audio(visit_id(&visit)?, &samples)?;
        Ok(closed.iter().map(Digest::to_hex).collect())
    }

    /// Stops recording; returns the digest (hex) of the last segment, if any audio was open.
    pub fn stop_audio(&self, visit: String) -> Result<Option<String>> {
        Ok(self
            .phone
            .stop_audio(visit_id(&visit)?)?
            .map(|d| d.to_hex()))
    }

    /// Every receipt number this phone took.
    pub fn receipts(&self) -> Result<Vec<ReceiptEntry>> {
        Ok(self
            .phone
            .receipt_serials()?
            .iter()
            .map(ReceiptEntry::from)
            .collect())
    }

    /// *Long (renders an image).* The receipt as a PNG for the payer, with its QR code.
    pub fn receipt_png(&self, visit: String, serial: u64) -> Result<Vec<u8>> {
        Ok(self
            .phone
            .receipt_png(visit_id(&visit)?, ReceiptSerial(serial))?)
    }
}
