//! The two-phone handshake from two terminals (DESIGN.md §5). The lead shows a challenge and
//! stays alive until the reply comes back — the challenge it can complete lives in its
//! memory only, as on a phone showing a QR code; the partner reviews, prints what it
//! co-signs, and answers once.

use std::io::IsTerminal as _;
use std::time::Duration;

use serde_json::json;
use tandem_core::handshake::{ChallengeSummary, StatementView};
use tandem_core::model::{Fen, Payer, VisitId};
use tandem_core::phone::{Completed, ReceiptRequest};

use super::args::{Exchange, ReceiptArgs};
use super::device::Device;
use super::error::{FieldError, FieldResult};
use super::frames;
use super::output::{Out, recorded_json, time, yuan};

/// Which co-signed action the lead starts.
pub enum LeadAction<'a> {
    /// Check-in, with the reason for checking in outside the fence, if any.
    CheckIn(Option<String>),
    /// Check-out.
    CheckOut,
    /// A receipt.
    Receipt(&'a ReceiptArgs),
    /// The seal.
    Seal,
}

/// Lead: begins the action, shows the challenge, waits for the reply, completes.
pub fn lead(
    device: &Device,
    out: Out,
    visit: VisitId,
    action: LeadAction<'_>,
    exchange: &Exchange,
) -> FieldResult<()> {
    let phone = &device.phone;
    // Before the challenge is shown: the partner's reply to it must not be removed.
    frames::clear_old_reply(&exchange.reply_in)?;
    let challenge = match action {
        LeadAction::CheckIn(reason) => phone.begin_check_in(visit, reason)?,
        LeadAction::CheckOut => phone.begin_check_out(visit)?,
        LeadAction::Receipt(args) => phone.begin_receipt(visit, &receipt_request(args)?)?,
        LeadAction::Seal => phone.begin_seal(visit)?,
    };
    frames::show(&exchange.challenge_out, &challenge)?;
    if exchange.challenge_out != "-" {
        out.note(&format!(
            "challenge ({} frame(s)) written to {}; waiting up to {} s for the partner's reply in {}",
            challenge.len(),
            exchange.challenge_out,
            exchange.timeout,
            exchange.reply_in
        ));
    }
    let reply = frames::wait_for(&exchange.reply_in, Duration::from_secs(exchange.timeout))?;
    let completed = phone.complete(&reply)?;
    print_completed(out, &completed)
}

fn receipt_request(args: &ReceiptArgs) -> FieldResult<ReceiptRequest> {
    let payer_signature_png = match &args.payer_signature {
        Some(path) => std::fs::read(path).map_err(|source| FieldError::File {
            action: "read",
            path: path.clone(),
            source,
        })?,
        None => Vec::new(),
    };
    Ok(ReceiptRequest {
        payer: Payer {
            role: args.payer_role.into(),
            name: args.payer_name.clone(),
        },
        amount: Fen(args.amount_fen),
        method: args.method.into(),
        payer_signature_png,
    })
}

fn print_completed(out: Out, completed: &Completed) -> FieldResult<()> {
    match completed {
        Completed::CheckedIn(recorded) => {
            out.violations(&recorded.violations);
            let distance = match &recorded.event.kind {
                tandem_core::model::EventKind::CheckedIn { distance_m, .. } => *distance_m,
                _ => 0,
            };
            out.result(
                &format!(
                    "checked in: visit {} ({distance} m from the approved address), co-signed",
                    recorded.event.visit_id
                ),
                &recorded_json(recorded),
            )
        }
        Completed::CheckedOut(recorded) => {
            out.violations(&recorded.violations);
            out.result(
                &format!("checked out: visit {}, co-signed", recorded.event.visit_id),
                &recorded_json(recorded),
            )
        }
        Completed::ReceiptIssued(recorded) | Completed::ReceiptVoided(recorded) => {
            out.violations(&recorded.violations);
            let mut value = recorded_json(recorded);
            let text = match &recorded.event.kind {
                tandem_core::model::EventKind::ReceiptIssued { serial, amount, .. } => {
                    value["serial"] = json!(serial.0);
                    value["amount_fen"] = json!(amount.0);
                    format!("receipt {} issued: {}, co-signed", serial.0, yuan(*amount))
                }
                tandem_core::model::EventKind::ReceiptVoided { serial, .. } => {
                    value["serial"] = json!(serial.0);
                    format!("receipt {} voided, co-signed", serial.0)
                }
                _ => "receipt recorded".to_owned(),
            };
            out.result(&text, &value)
        }
        Completed::Sealed(seal) => out.result(
            &format!(
                "sealed: visit {}\nbundle {}\nmanifest sha256 {}\ndevice seq {}\nqueued for upload: run `tandem field push`",
                seal.visit_id,
                seal.bundle_id,
                seal.manifest.to_hex(),
                seal.device_seq
            ),
            &json!({
                "visit_id": seal.visit_id.to_string(),
                "bundle_id": seal.bundle_id.to_string(),
                "manifest_sha256": seal.manifest.to_hex(),
                "device_seq": seal.device_seq,
                "sealed_at_ms": seal.sealed_at_ms,
            }),
        ),
    }
}

/// Partner: reads the challenge, checks it, shows what is co-signed, answers.
pub fn answer(device: &Device, out: Out, input: &str, output: &str, yes: bool) -> FieldResult<()> {
    let challenge = frames::scan(input)?;
    let review = device.phone.review_challenge(&challenge)?;
    let summary = review.summary();
    let mut text = summary_text(summary);
    if let Some(c) = review.check_in() {
        text.push_str(&format!(
            "\n  lead is {} m from the approved address (fence {} m)",
            c.lead_distance_m, c.fence_m
        ));
        if let Some(reason) = &c.outside_fence_reason {
            text.push_str(&format!(
                "\n  lead's reason for checking in outside the fence: {reason}"
            ));
        }
    }
    for v in review.warnings() {
        text.push_str(&format!("\n  {} {:?}: {}", v.rule, v.outcome, v.message));
    }
    // The reply may go to stdout: the summary then goes to stderr, always shown.
    if output == "-" || out.json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
    if !yes && input != "-" && std::io::stdin().is_terminal() && !confirm()? {
        return Err(FieldError::usage("not co-signed: the agent declined"));
    }
    let reply = device.phone.answer_challenge(&review)?;
    frames::show(output, &reply)?;
    if out.json {
        out.result(
            "",
            &json!({
                "visit_id": summary.visit_id.to_string(),
                "purpose": summary.purpose.as_str(),
                "statement_sha256": summary.statement_digest.to_hex(),
                "partner_distance_m": summary.partner_distance_m,
                "lead_address_distance_m": review.check_in().map(|c| c.lead_distance_m),
                "fence_m": review.check_in().map(|c| c.fence_m),
                "outside_fence_reason": review.check_in().and_then(|c| c.outside_fence_reason.clone()),
                "warnings": review.warnings().iter().map(|v| v.rule.to_string()).collect::<Vec<_>>(),
                "reply": output,
            }),
        )?;
    } else if output != "-" {
        out.note(&format!(
            "co-signed; reply ({} frame(s)) written to {output}",
            reply.len()
        ));
    }
    Ok(())
}

fn confirm() -> FieldResult<bool> {
    eprint!("Co-sign this? [y/N] ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|source| FieldError::File {
            action: "read",
            path: "<stdin>".into(),
            source,
        })?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// What the partner's screen shows before signing.
fn summary_text(s: &ChallengeSummary) -> String {
    let head = format!(
        "co-signing {} for visit {}\n  lead agent {} on phone {}\n  phones {} m apart; challenge expires {}",
        s.purpose.as_str(),
        s.visit_id,
        s.lead_agent,
        s.lead_device,
        s.partner_distance_m,
        time(s.expires_at_ms)
    );
    let body = match &s.statement {
        StatementView::CheckIn(c) => format!(
            "  check in at approved address {} at {}",
            c.address_id,
            time(c.at_ms)
        ),
        StatementView::CheckOut(c) => format!(
            "  check out from address {} (checked in {}) at {}",
            c.address_id,
            time(c.checked_in_at_ms),
            time(c.at_ms)
        ),
        StatementView::Receipt(r) => format!(
            "  receipt {}: {} ({}) in {:?} from the {:?}, {}",
            r.serial,
            yuan(r.amount),
            r.currency,
            r.method,
            r.payer_role,
            r.payer_name
        ),
        StatementView::Void(v) => format!("  void of receipt {}: {}", v.serial, v.reason),
        StatementView::Seal {
            events,
            photos,
            audio_segments,
            blobs,
            manifest_digest,
        } => format!(
            "  seal: {events} events, {photos} photo(s), {audio_segments} audio segment(s), {blobs} blob(s)\n  manifest sha256 {}",
            manifest_digest.to_hex()
        ),
    };
    format!(
        "{head}\n{body}\n  statement sha256 {}",
        s.statement_digest.to_hex()
    )
}
