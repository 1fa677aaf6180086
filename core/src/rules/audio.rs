//! V07: audio runs from check-in to check-out; every stretch without it is a gap.

use serde::{Deserialize, Serialize};

use super::context::VisitContext;
use super::{RuleId, Violation};
use crate::model::{Event, EventKind};

/// A stretch of the visit without audio, longer than the policy tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioGapSpan {
    /// Start, UTC ms.
    pub from_ms: i64,
    /// End, UTC ms (exclusive).
    pub until_ms: i64,
    /// Whether an `AudioGap` event with a reason overlaps it.
    pub logged: bool,
}

impl AudioGapSpan {
    /// Length of the gap, ms.
    pub fn duration_ms(&self) -> i64 {
        self.until_ms.saturating_sub(self.from_ms)
    }
}

/// The gaps in audio between `from_ms` and `until_ms`: stretches covered neither by a
/// closed segment nor by the segment being recorded (`open_since_ms`, if the recorder is
/// running), longer than `tolerance_ms`.
pub fn audio_gaps(
    events: &[Event],
    from_ms: i64,
    until_ms: i64,
    open_since_ms: Option<i64>,
    tolerance_ms: i64,
) -> Vec<AudioGapSpan> {
    let mut covered: Vec<(i64, i64)> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::AudioSegment {
                start_ms,
                duration_ms,
                ..
            } => Some((start_ms, start_ms.saturating_add(duration_ms.max(0)))),
            _ => None,
        })
        .collect();
    if let Some(open) = open_since_ms {
        covered.push((open, until_ms.max(open)));
    }
    covered.sort_unstable();

    let mut gaps = Vec::new();
    let mut cursor = from_ms;
    let mut note_gap = |from: i64, until: i64| {
        if until.saturating_sub(from) > tolerance_ms {
            gaps.push(AudioGapSpan {
                from_ms: from,
                until_ms: until,
                logged: logged(events, from, until),
            });
        }
    };
    for (start, end) in covered {
        if start >= until_ms {
            break;
        }
        if start > cursor {
            note_gap(cursor, start);
        }
        cursor = cursor.max(end);
    }
    if until_ms > cursor {
        note_gap(cursor, until_ms);
    }
    gaps
}

fn logged(events: &[Event], from: i64, until: i64) -> bool {
    events.iter().any(|e| match &e.kind {
        EventKind::AudioGap {
            from_ms, until_ms, ..
        } => *from_ms < until && from < *until_ms,
        _ => false,
    })
}

/// Gaps since check-in up to now (nothing before check-in is the visit).
fn gaps_until(
    ctx: &VisitContext<'_>,
    until_ms: i64,
    open_since_ms: Option<i64>,
) -> Vec<AudioGapSpan> {
    let Some((check_in, _)) = ctx.check_in() else {
        return Vec::new();
    };
    audio_gaps(
        ctx.events,
        check_in.at.best_ms(),
        until_ms,
        open_since_ms,
        ctx.policy.audio_gap_tolerance_ms,
    )
}

fn seconds(ms: i64) -> i64 {
    ms / 1000
}

/// During the visit: warns of every gap no reason was recorded for, the running one first
/// in mind (recording stopped).
pub(crate) fn during(ctx: &VisitContext<'_>, open_since_ms: Option<i64>, out: &mut Vec<Violation>) {
    let gaps = gaps_until(ctx, ctx.now_ms(), open_since_ms);
    for gap in gaps.iter().filter(|g| !g.logged) {
        let running = gap.until_ms >= ctx.now_ms() && open_since_ms.is_none();
        out.push(Violation::warn(
            RuleId::V07,
            if running {
                format!(
                    "Audio is not recording (for {} s): start recording again and record \
                     the reason for the gap.",
                    seconds(gap.duration_ms())
                )
            } else {
                format!(
                    "Audio has a gap of {} s without a reason: record why it stopped.",
                    seconds(gap.duration_ms())
                )
            },
        ));
    }
}

/// At check-out: recording must have run since check-in; reports the gaps.
pub(crate) fn at_check_out(
    ctx: &VisitContext<'_>,
    open_since_ms: Option<i64>,
    out: &mut Vec<Violation>,
) {
    let gaps = gaps_until(ctx, ctx.now_ms(), open_since_ms);
    if gaps.is_empty() {
        return;
    }
    let total = gaps
        .iter()
        .fold(0i64, |sum, g| sum.saturating_add(g.duration_ms()));
    let unlogged = gaps.iter().filter(|g| !g.logged).count();
    out.push(Violation::warn(
        RuleId::V07,
        format!(
            "Audio has {} gap(s) since check-in, {} s in all, {unlogged} without a reason: \
             record the reasons before sealing; gaps are flagged for review.",
            gaps.len(),
            seconds(total)
        ),
    ));
}

/// At seal: flags every gap between check-in and check-out for review.
pub(crate) fn at_seal(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    let until = ctx
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::CheckedOut { .. }))
        .map_or(ctx.now_ms(), |e| e.at.best_ms());
    for gap in gaps_until(ctx, until, None) {
        out.push(Violation::flag(
            RuleId::V07,
            format!(
                "Audio gap of {} s ({}): flagged for review.",
                seconds(gap.duration_ms()),
                if gap.logged {
                    "reason recorded"
                } else {
                    "no reason recorded"
                }
            ),
        ));
    }
}
