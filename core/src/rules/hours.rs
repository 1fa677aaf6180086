//! V04: visiting hours, in the policy's time zone, on server-anchored time.

use super::context::{LocalMinute, VisitContext};
use super::{Outcome, RuleId, Violation};

/// Where the anchored moment falls against the visiting hours.
enum Hours {
    /// Within hours, and not in the last minutes before the end.
    Open,
    /// Within hours, but the end is this many minutes away or less.
    ClosingIn(u16),
    /// Outside hours.
    Closed,
}

fn hours(ctx: &VisitContext<'_>, minute: u16) -> Hours {
    let p = ctx.policy;
    if minute < p.visit_start_minute || minute >= p.visit_end_minute {
        return Hours::Closed;
    }
    let left = p.visit_end_minute - minute;
    if left <= p.visit_end_warning_minutes {
        Hours::ClosingIn(left)
    } else {
        Hours::Open
    }
}

fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn appointment_covers(ctx: &VisitContext<'_>, at_ms: i64) -> bool {
    ctx.approval
        .appointment
        .is_some_and(|a| a.from_ms <= at_ms && at_ms < a.until_ms)
}

/// V04 at check-in: blocks outside visiting hours and without anchored time; warns close
/// to the end of hours.
pub(crate) fn at_check_in(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    let Some(at) = ctx.now.anchored_ms() else {
        out.push(Violation::block(
            RuleId::V04,
            "The phone has no server-anchored time (it restarted or never synced since): \
             sync with the server before checking in.",
        ));
        return;
    };
    if appointment_covers(ctx, at) {
        return;
    }
    match local(ctx, at, Outcome::Block, out) {
        Some(Hours::Closed) => out.push(Violation::block(
            RuleId::V04,
            format!(
                "Outside visiting hours ({}–{} local time) and no appointment is recorded: \
                 do not visit now.",
                hhmm(ctx.policy.visit_start_minute),
                hhmm(ctx.policy.visit_end_minute),
            ),
        )),
        Some(Hours::ClosingIn(left)) => out.push(closing_warning(ctx, left)),
        Some(Hours::Open) | None => {}
    }
}

/// V04 during the visit: warns close to the end of hours, flags past it (and when the
/// phone lost its anchored time, since hours can then not be shown to be kept).
pub(crate) fn during(ctx: &VisitContext<'_>, out: &mut Vec<Violation>) {
    let Some(at) = ctx.now.anchored_ms() else {
        out.push(Violation::flag(
            RuleId::V04,
            "The phone lost its server-anchored time (restart?): visiting hours cannot be \
             shown to be kept. Sync as soon as possible.",
        ));
        return;
    };
    if appointment_covers(ctx, at) {
        return;
    }
    match local(ctx, at, Outcome::Flag, out) {
        Some(Hours::Closed) => out.push(Violation::flag(
            RuleId::V04,
            format!(
                "Visiting hours ended at {} local time: finish the visit and check out now.",
                hhmm(ctx.policy.visit_end_minute),
            ),
        )),
        Some(Hours::ClosingIn(left)) => out.push(closing_warning(ctx, left)),
        Some(Hours::Open) | None => {}
    }
}

fn closing_warning(ctx: &VisitContext<'_>, left: u16) -> Violation {
    Violation::warn(
        RuleId::V04,
        format!(
            "Visiting hours end at {} local time, in {left} min: prepare to check out.",
            hhmm(ctx.policy.visit_end_minute),
        ),
    )
}

/// Places `at_ms` against the hours; an unknown policy zone is reported with `outcome`.
fn local(
    ctx: &VisitContext<'_>,
    at_ms: i64,
    outcome: Outcome,
    out: &mut Vec<Violation>,
) -> Option<Hours> {
    match ctx.local_minute(at_ms) {
        LocalMinute::At(minute) => Some(hours(ctx, minute)),
        LocalMinute::UnknownZone => {
            out.push(Violation {
                rule: RuleId::V04,
                outcome,
                message: "The policy's time zone is not known to this app: local time cannot \
                          be decided. Sync to get a valid policy."
                    .into(),
            });
            None
        }
    }
}
