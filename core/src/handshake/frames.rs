//! Text-safe QR frames: `TH1/<msg-id>/<i>/<n>/<chunk>`, base45 so a QR code can use its
//! compact alphanumeric mode.
//!
//! Every payload is framed, even one that fits a single code, so a scanner always knows
//! a Tandem code and its framing version from the first characters. The payload is cut
//! into [`FRAME_CHUNK_BYTES`]-byte chunks (the last may be shorter), each base45-encoded
//! on its own: a frame of about 1 KB of text. The message id is the first 8 bytes of
//! SHA-256 of the whole payload in uppercase hex, so the assembler can tell codes of
//! different messages apart and check the reassembled payload.

use crate::crypto::sha256;

use super::error::FrameError;

/// Payload bytes per frame: 660 bytes are exactly 990 base45 characters.
pub const FRAME_CHUNK_BYTES: usize = 660;
/// Most frames one message may have (enough for the largest statement allowed).
pub const MAX_FRAMES: usize = 512;
/// Longest frame text accepted: prefix, id, two 3-digit numbers, separators, one chunk.
pub const MAX_FRAME_CHARS: usize = PREFIX.len() + 16 + 1 + 3 + 1 + 3 + 1 + CHUNK_CHARS;

const PREFIX: &str = "TH1/";
const CHUNK_CHARS: usize = FRAME_CHUNK_BYTES / 2 * 3;
const MSG_ID_BYTES: usize = 8;

/// The message id of a payload: first 8 bytes of its SHA-256.
fn message_id(payload: &[u8]) -> [u8; MSG_ID_BYTES] {
    let mut id = [0u8; MSG_ID_BYTES];
    id.copy_from_slice(&sha256(payload).as_bytes()[..MSG_ID_BYTES]);
    id
}

/// Upper-case hex: QR's alphanumeric mode has no lower-case letters.
fn hex_upper(bytes: &[u8]) -> String {
    crate::crypto::to_hex(bytes).to_ascii_uppercase()
}

/// Cuts a payload into QR frame texts, in order.
pub fn to_frames(payload: &[u8]) -> Result<Vec<String>, FrameError> {
    let total = payload.len().div_ceil(FRAME_CHUNK_BYTES).max(1);
    if total > MAX_FRAMES {
        return Err(FrameError::TooManyFrames {
            len: payload.len(),
            limit: MAX_FRAMES,
        });
    }
    let id = hex_upper(&message_id(payload));
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![payload]
    } else {
        payload.chunks(FRAME_CHUNK_BYTES).collect()
    };
    Ok(chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| format!("{PREFIX}{id}/{}/{total}/{}", i + 1, base45::encode(chunk)))
        .collect())
}

/// One parsed frame.
struct Frame {
    msg_id: [u8; MSG_ID_BYTES],
    index: usize,
    total: usize,
    chunk: Vec<u8>,
}

/// A frame number: decimal, 1..=MAX_FRAMES, no sign and no leading zero.
fn frame_number(text: &str) -> Result<usize, FrameError> {
    let bad = FrameError::BadHeader {
        reason: "frame numbers are decimal 1..=512 without leading zeros",
    };
    if text.is_empty() || text.len() > 3 || text.starts_with('0') {
        return Err(bad);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_FRAMES).contains(&n) => Ok(n),
        _ => Err(bad),
    }
}

fn parse_frame(text: &str) -> Result<Frame, FrameError> {
    if text.len() > MAX_FRAME_CHARS {
        return Err(FrameError::FrameTooLong {
            len: text.len(),
            limit: MAX_FRAME_CHARS,
        });
    }
    let Some(rest) = text.strip_prefix(PREFIX) else {
        let head = text.split('/').next().unwrap_or("");
        let versioned = head.len() > 2
            && head.starts_with("TH")
            && head.bytes().skip(2).all(|b| b.is_ascii_digit());
        return Err(if versioned {
            FrameError::UnknownFrameVersion {
                found: head.to_owned(),
            }
        } else {
            FrameError::NotAFrame
        });
    };
    // The chunk may itself contain '/', a base45 character: split off the header only.
    let mut parts = rest.splitn(4, '/');
    let (Some(id), Some(index), Some(total), Some(chunk)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(FrameError::BadHeader {
            reason: "expected TH1/<msg-id>/<i>/<n>/<chunk>",
        });
    };
    let msg_id = parse_msg_id(id)?;
    let index = frame_number(index)?;
    let total = frame_number(total)?;
    if index > total {
        return Err(FrameError::BadHeader {
            reason: "frame index is greater than the frame count",
        });
    }
    let chunk = base45::decode(chunk).map_err(|_| FrameError::BadChunk { index })?;
    // The decoder accepts some out-of-range final pairs: only the canonical text counts.
    if base45::encode(&chunk) != chunk_text(text) {
        return Err(FrameError::BadChunk { index });
    }
    let size_ok = if index < total {
        chunk.len() == FRAME_CHUNK_BYTES
    } else {
        // Only a one-frame message may be empty (the empty payload).
        chunk.len() <= FRAME_CHUNK_BYTES && (total == 1 || !chunk.is_empty())
    };
    if !size_ok {
        return Err(FrameError::ChunkSize {
            index,
            total,
            len: chunk.len(),
        });
    }
    Ok(Frame {
        msg_id,
        index,
        total,
        chunk,
    })
}

/// The chunk part of a frame already known to have four header separators.
fn chunk_text(text: &str) -> &str {
    text.splitn(5, '/').nth(4).unwrap_or("")
}

fn parse_msg_id(text: &str) -> Result<[u8; MSG_ID_BYTES], FrameError> {
    let bad = FrameError::BadHeader {
        reason: "message id must be 16 uppercase hex digits",
    };
    let bytes = text.as_bytes();
    if bytes.len() != 2 * MSG_ID_BYTES {
        return Err(bad);
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(bad.clone()),
    };
    let mut id = [0u8; MSG_ID_BYTES];
    for (slot, pair) in id.iter_mut().zip(bytes.chunks_exact(2)) {
        let (Some(&hi), Some(&lo)) = (pair.first(), pair.get(1)) else {
            return Err(bad);
        };
        *slot = (nibble(hi)? << 4) | nibble(lo)?;
    }
    Ok(id)
}

/// How far an assembly has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameProgress {
    /// More frames are needed.
    Incomplete {
        /// Distinct frames held.
        received: usize,
        /// Frames in the message.
        total: usize,
    },
    /// Every frame is in: the payload.
    Complete(Vec<u8>),
}

/// Collects scanned frames of one message in any order, ignoring repeats.
#[derive(Debug, Default)]
pub struct FrameAssembler {
    msg_id: Option<[u8; MSG_ID_BYTES]>,
    chunks: Vec<Option<Vec<u8>>>,
    received: usize,
}

impl FrameAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one scanned frame text. Frames of another message, a different frame count,
    /// or a different chunk under an index already held are refused and change nothing.
    /// A complete set that fails its message id cannot be repaired by more scans: start a
    /// new assembler.
    pub fn accept(&mut self, text: &str) -> Result<FrameProgress, FrameError> {
        let frame = parse_frame(text)?;
        match self.msg_id {
            None => {
                self.msg_id = Some(frame.msg_id);
                self.chunks = vec![None; frame.total];
            }
            Some(id) if id != frame.msg_id => {
                return Err(FrameError::OtherMessage {
                    expected: hex_upper(&id),
                    found: hex_upper(&frame.msg_id),
                });
            }
            Some(_) if self.chunks.len() != frame.total => {
                return Err(FrameError::InconsistentCount {
                    expected: self.chunks.len(),
                    found: frame.total,
                });
            }
            Some(_) => {}
        }
        let total = self.chunks.len();
        let slot = self
            .chunks
            .get_mut(frame.index - 1)
            .ok_or(FrameError::BadHeader {
                reason: "frame index is greater than the frame count",
            })?;
        match slot {
            Some(held) if *held != frame.chunk => {
                return Err(FrameError::ConflictingDuplicate { index: frame.index });
            }
            Some(_) => {}
            None => {
                *slot = Some(frame.chunk);
                self.received += 1;
            }
        }
        if self.received < total {
            return Ok(FrameProgress::Incomplete {
                received: self.received,
                total,
            });
        }
        let payload: Vec<u8> = self.chunks.iter().flatten().flatten().copied().collect();
        if Some(message_id(&payload)) != self.msg_id {
            return Err(FrameError::MessageIdMismatch {
                msg_id: hex_upper(&self.msg_id.unwrap_or_default()),
            });
        }
        Ok(FrameProgress::Complete(payload))
    }

    /// Takes one text a camera read while a screen scans the other phone's code: as
    /// [`accept`](Self::accept), except that a frame of another message (or another frame
    /// count) starts over with that message, since the newest code on the other screen is
    /// the one that counts.
    pub fn scan(&mut self, text: &str) -> Result<FrameProgress, FrameError> {
        match self.accept(text) {
            Err(FrameError::OtherMessage { .. } | FrameError::InconsistentCount { .. }) => {
                *self = Self::new();
                self.accept(text)
            }
            accepted => accepted,
        }
    }

    /// Distinct frames held and frames expected (0 before the first frame).
    pub fn progress(&self) -> (usize, usize) {
        (self.received, self.chunks.len())
    }
}

/// Reassembles a complete set of frames (any order, repeats allowed) into the payload.
pub fn from_frames<S: AsRef<str>>(frames: &[S]) -> Result<Vec<u8>, FrameError> {
    let mut assembler = FrameAssembler::new();
    let mut last = FrameProgress::Incomplete {
        received: 0,
        total: 0,
    };
    for frame in frames {
        last = assembler.accept(frame.as_ref())?;
    }
    match last {
        FrameProgress::Complete(payload) => Ok(payload),
        FrameProgress::Incomplete { .. } => {
            let (received, total) = assembler.progress();
            Err(FrameError::Incomplete { received, total })
        }
    }
}
