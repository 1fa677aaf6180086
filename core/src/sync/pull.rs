//! Pulling from the server: pages of `GET /v1/sync` applied one transaction each, cursor
//! included, until the server says there is no more.

use super::transport::{Request, Transport};
use super::{SyncError, problem_of};
use crate::Result;
use crate::phone::{Phone, PullSummary, SyncPage};

/// A pull never asks for more pages than this in one go (a server bug cannot keep a
/// phone looping); the next pull goes on from the stored cursor.
pub const MAX_PAGES_PER_PULL: u32 = 1_000;

/// Pulls everything new for this phone; returns what changed.
pub fn pull(phone: &Phone, transport: &dyn Transport, token: &str) -> Result<PullSummary> {
    let mut summary = PullSummary::default();
    for _ in 0..MAX_PAGES_PER_PULL {
        let path = match phone.sync_cursor()? {
            Some(cursor) => format!("/v1/sync?cursor={}", urlencode(&cursor)),
            None => "/v1/sync".to_owned(),
        };
        let answer = transport
            .send(&Request::new("GET", path).header("Authorization", format!("Bearer {token}")))?;
        if answer.status != 200 {
            return Err(problem_of(&answer, "pulling changes").into());
        }
        let page: SyncPage = serde_json::from_slice(&answer.body)
            .map_err(|e| SyncError::Protocol(format!("sync page: {e}")))?;
        let more = page.more;
        summary.add(phone.apply_sync_page(&page)?);
        if !more {
            break;
        }
    }
    Ok(summary)
}

/// Percent-encodes a query value (cursors are base64url, but a server may choose others).
fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
