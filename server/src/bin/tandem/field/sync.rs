//! Talking to the server: enrolment, sync rounds, pushes with a progress bar, the outbox's
//! status and the visit list.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tandem_core::phone::VisitOverview;
use tandem_core::rules::Outcome;
use tandem_core::sync::{Backoff, PushSummary, SyncStatus};

use super::device::Device;
use super::error::{FieldError, FieldResult};
use super::output::{Out, bytes, time, violation_line, violations_json, yuan};

/// `enroll CODE`: enrols, then keeps the server URL for later commands.
pub fn enroll(device: &Device, out: Out, code: &str) -> FieldResult<()> {
    let transport = device.transport()?;
    let enrollment = tandem_core::sync::enroll(&device.phone, &transport, code)?;
    device.remember_server(transport.base())?;
    out.result(
        &format!(
            "enrolled: agent {} on device {}\nserver {}",
            enrollment.agent_id,
            enrollment.device_id,
            transport.base()
        ),
        &json!({
            "agent_id": enrollment.agent_id.to_string(),
            "device_id": enrollment.device_id.to_string(),
            "server": transport.base(),
        }),
    )
}

/// A progress bar on stderr, drawn only on a terminal and without `--quiet`.
fn progress_bar(out: Out) -> ProgressBar {
    let bar = if out.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    };
    if let Ok(style) = ProgressStyle::with_template(
        "uploading {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// `sync`: pull, push, purge.
pub fn sync(device: &Device, out: Out) -> FieldResult<()> {
    let transport = device.transport()?;
    let bar = progress_bar(out);
    let report = tandem_core::sync::sync_now(&device.phone, &transport, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = report?;
    let pulled = &report.pulled;
    let visits: Vec<String> = pulled.assignments.iter().map(ToString::to_string).collect();
    let mut text = format!(
        "pulled: {} assignment(s), {} policy version(s), {} receipt range(s), {} revocation(s)",
        visits.len(),
        pulled.policies,
        pulled.ranges,
        pulled.revocations
    );
    for visit in &visits {
        text.push_str(&format!("\n  visit {visit}"));
    }
    text.push('\n');
    text.push_str(&push_text(&report.pushed));
    text.push_str(&format!(
        "\npurged: media of {} visit(s)",
        report.purged_visits
    ));
    text.push('\n');
    text.push_str(&status_text(&report.status));
    out.result(
        &text,
        &json!({
            "pulled": {
                "assignments": visits,
                "policies": pulled.policies,
                "ranges": pulled.ranges,
                "revocations": pulled.revocations,
                "not_for_this_phone": pulled.not_for_this_phone,
            },
            "pushed": push_json(&report.pushed),
            "purged_visits": report.purged_visits,
            "status": status_json(&report.status),
        }),
    )?;
    quarantined(&report.pushed)
}

/// `push`: sealed visits only, with progress.
pub fn push(device: &Device, out: Out) -> FieldResult<()> {
    let transport = device.transport()?;
    let token = device.phone.device_token()?;
    let phone = &device.phone;
    let bar = progress_bar(out);
    let summary = tandem_core::sync::push(
        phone,
        &transport,
        &token,
        &Backoff::default(),
        &|| phone.wall_ms(),
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    let summary = summary?;
    let status = phone.sync_status()?;
    let text = format!("{}\n{}", push_text(&summary), status_text(&status));
    out.result(
        &text,
        &json!({"pushed": push_json(&summary), "status": status_json(&status)}),
    )?;
    if summary.deferred > 0
        && let Some(error) = &status.outbox.last_error
    {
        out.note(&format!("last error: {error}"));
    }
    quarantined(&summary)
}

/// A push the server quarantined is not a success, whatever else went through.
fn quarantined(summary: &PushSummary) -> FieldResult<()> {
    match summary.quarantined {
        0 => Ok(()),
        count => Err(FieldError::Quarantined { count }),
    }
}

fn push_text(p: &PushSummary) -> String {
    format!(
        "pushed: {} bundle(s) acknowledged, {} quarantined, {} deferred; {} sent, {} already on the server",
        p.acknowledged,
        p.quarantined,
        p.deferred,
        bytes(p.bytes_sent),
        bytes(p.bytes_skipped)
    )
}

fn push_json(p: &PushSummary) -> Value {
    json!({
        "acknowledged": p.acknowledged,
        "quarantined": p.quarantined,
        "deferred": p.deferred,
        "bytes_sent": p.bytes_sent,
        "bytes_skipped": p.bytes_skipped,
    })
}

/// `status`.
pub fn status(device: &Device, out: Out) -> FieldResult<()> {
    let status = device.phone.sync_status()?;
    out.result(&status_text(&status), &status_json(&status))
}

fn status_text(s: &SyncStatus) -> String {
    let o = &s.outbox;
    let mut text = format!(
        "outbox: {} pending ({} left), {} quarantined, {} acknowledged{}",
        o.pending,
        bytes(o.bytes_left),
        o.quarantined,
        o.done,
        if s.enrolled { "" } else { "; not enrolled" }
    );
    if let Some(error) = &o.last_error {
        text.push_str(&format!("\nlast error: {error}"));
    }
    if let Some(next) = o.next_attempt_ms {
        text.push_str(&format!("\nnext attempt: {}", time(next)));
    }
    for v in &s.deadlines {
        text.push('\n');
        text.push_str(&violation_line(v));
    }
    text
}

fn status_json(s: &SyncStatus) -> Value {
    let o = &s.outbox;
    json!({
        "enrolled": s.enrolled,
        "pending": o.pending,
        "quarantined": o.quarantined,
        "acknowledged": o.done,
        "bytes_left": o.bytes_left,
        "last_error": o.last_error,
        "next_attempt_ms": o.next_attempt_ms,
        "oldest_pending_sealed_ms": o.oldest_pending_sealed_ms,
        "deadlines": violations_json(&s.deadlines),
    })
}

/// `visits`.
pub fn visits(device: &Device, out: Out) -> FieldResult<()> {
    let list = device.phone.visit_overviews()?;
    let mut text = String::new();
    if list.is_empty() {
        text.push_str("no visits: sync after the manager approves one");
    }
    for v in &list {
        text.push_str(&visit_text(v));
    }
    let value = serde_json::to_value(&list).unwrap_or(Value::Null);
    out.result(&text, &value)
}

fn visit_text(v: &VisitOverview) -> String {
    let mut text = format!("visit {}  {}\n", v.visit_id, v.state.as_str());
    if let Some(case) = &v.case {
        text.push_str(&format!(
            "  case {}  card {}  ID {}  arrears {}\n",
            case.case_ref,
            case.card.as_str(),
            case.id_number.as_str(),
            yuan(case.outstanding)
        ));
        text.push_str(&format!(
            "  approved {} to {}; cash: {}\n",
            time(case.valid_from_ms),
            time(case.valid_until_ms),
            case.cash_limit
                .map_or("not authorised".to_owned(), |l| format!(
                    "up to {}",
                    yuan(l)
                ))
        ));
        for a in &case.addresses {
            text.push_str(&format!(
                "  address {}: {}  at {:.7},{:.7} ({:?})\n",
                a.id,
                a.text,
                a.position.lat_degrees(),
                a.position.lon_degrees(),
                a.position.datum()
            ));
        }
    }
    if v.state == tandem_core::model::VisitState::Assigned {
        let blocking = v.check_in_now.iter().any(|x| x.outcome == Outcome::Block);
        text.push_str(if blocking {
            "  check-in now: refused\n"
        } else {
            "  check-in now: possible once the partner answers\n"
        });
        for violation in &v.check_in_now {
            text.push_str(&format!("    {}\n", violation_line(violation)));
        }
    }
    if !v.recorded_flags.is_empty() {
        let rules: Vec<String> = v.recorded_flags.iter().map(ToString::to_string).collect();
        text.push_str(&format!(
            "  recorded warnings and flags: {}\n",
            rules.join(", ")
        ));
    }
    text
}
