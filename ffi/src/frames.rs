//! QR frames as the camera reads them: core's assembler behind one lock, so a shell hands
//! it every scanned text and reads the progress, and never parses a frame itself.

use std::sync::{Arc, Mutex};

use tandem_core::handshake::{self, HandshakeError};

use crate::error::TandemError;

type Result<T, E = TandemError> = std::result::Result<T, E>;

/// Collects the frames of the code on the other phone's screen, in any order, until the
/// whole message is there.
#[derive(uniffi::Object)]
pub struct FrameAssembler {
    assembler: Mutex<handshake::FrameAssembler>,
}

/// How far a scan has come.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FrameProgress {
    /// Distinct frames held of the message being scanned.
    pub received: u32,
    /// Frames the message has.
    pub total: u32,
    /// The whole message once every frame is in: for `review_challenge_payload` or
    /// `complete_payload`.
    pub payload: Option<Vec<u8>>,
}

#[uniffi::export]
impl FrameAssembler {
    /// Nothing scanned yet.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            assembler: Mutex::new(handshake::FrameAssembler::new()),
        })
    }

    /// Takes one text the camera read. A frame of a newer message starts over with it; what
    /// is not a well-formed frame (another QR code in view) is `Invalid` and changes nothing.
    pub fn push(&self, frame: String) -> Result<FrameProgress> {
        let mut assembler = self.assembler.lock().unwrap_or_else(|p| p.into_inner());
        let progress = assembler
            .scan(&frame)
            .map_err(|e| tandem_core::Error::from(HandshakeError::from(e)))?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let (received, total) = assembler.progress();
        Ok(FrameProgress {
            received: count(received),
            total: count(total),
            payload: match progress {
                handshake::FrameProgress::Complete(payload) => Some(payload),
                handshake::FrameProgress::Incomplete { .. } => None,
            },
        })
    }
}
