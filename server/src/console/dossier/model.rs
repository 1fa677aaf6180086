//! A visit's evidence as legal staff read it (the page, and later the export's
//! `report.html`): header, timeline, photos, audio, positions, receipts, and the checks —
//! as stored at ingest, and the transparency log's proofs against its newest checkpoint.
//! Built by one function, [`load`], from what the server holds; every text in the page's
//! language, times in the bank's zone, money as `¥1,234.56`, numbers masked.

use std::collections::HashMap;

use tandem_core::bundle::{Manifest, ServerReceipt};
use tandem_core::crypto::{Digest, Signer as _};
use tandem_core::model::{AgentId, EventKind, Policy, Signed};
use tandem_core::place::{Coordinate, Datum, Fix};
use tandem_core::text::visible;
use tandem_core::tlog::manifest_leaf_hash;
use tandem_core::tlog::{Checkpoint, verify_checkpoint_consistency, verify_inclusion};
use uuid::Uuid;

use super::super::frame::{bank_zone, yuan};
use super::super::i18n::Lang;
use super::plot::{Mark, MarkKind, PositionsPlot};
use crate::AppState;
use crate::db::dossier::EvidenceHit;
use crate::db::ledger::{BundleStatus, StoredBundle};
use crate::db::receipts::ReceiptQuery;
use crate::error::AppError;
use crate::ingest::checks::StoredReport;

/// One event of the timeline.
pub(crate) struct TimelineRow {
    pub seq: u64,
    pub time: String,
    /// `anchored` or `wall` (the message id's suffix).
    pub time_source: String,
    pub agent: String,
    pub kind: String,
    pub detail: String,
    pub place: String,
    /// A rule the event names (`V07 warn`…), when it is a rule's flag.
    pub rule: String,
    /// `warn`, `bad` or empty: the row's badge style.
    pub badge: &'static str,
}

/// A photo: its thumbnail and original.
pub(crate) struct PhotoItem {
    pub thumb: Digest,
    pub original: Digest,
    pub thumb_href: String,
    pub original_href: String,
    pub time: String,
    pub size: String,
    pub alt: String,
}

/// An audio segment, or a gap between segments (V07).
pub(crate) struct AudioItem {
    /// The segment, `None` for a gap.
    pub digest: Option<Digest>,
    /// The segment's address; empty for a gap.
    pub href: String,
    pub label: String,
    pub time: String,
    pub note: String,
    pub badge: &'static str,
}

/// A receipt the visit issued.
pub(crate) struct ReceiptItem {
    pub serial: String,
    pub time: String,
    pub amount: String,
    pub payer: String,
    pub method: String,
    /// The payer's signature image.
    pub signature: Option<Digest>,
    pub signature_href: String,
}

/// One named check and its result.
pub(crate) struct CheckRow {
    pub name: String,
    pub id: String,
    pub result: String,
    pub badge: &'static str,
    pub detail: String,
}

/// A visit's evidence, ready to show: the page, and the export's `report.html`.
pub(crate) struct Dossier {
    pub visit_id: Uuid,
    pub bank: String,
    pub case_ref: String,
    pub debtor: String,
    pub card: String,
    pub id_number: String,
    pub team: String,
    pub state: String,
    pub state_badge: &'static str,
    pub bundle_id: String,
    pub manifest_digest: String,
    pub sealed: String,
    /// The zone every time of the page is in.
    pub zone: String,
    pub timeline: Vec<TimelineRow>,
    pub photos: Vec<PhotoItem>,
    pub audio: Vec<AudioItem>,
    pub receipts: Vec<ReceiptItem>,
    pub plot: PositionsPlot,
    pub stored_checks: Vec<CheckRow>,
    pub flags: Vec<String>,
    pub log_checks: Vec<CheckRow>,
    /// The stored bundle and its manifest (for verifying again and for blobs).
    pub bundle: StoredBundle,
    pub manifest: Manifest,
}

pub(crate) fn bad(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("stored evidence: {e}"))
}

/// The newest committed bundle of a visit.
pub(crate) async fn committed_bundle(
    state: &AppState,
    hit: &EvidenceHit,
) -> Result<(StoredBundle, Manifest), AppError> {
    let bundle = state
        .db
        .bundle(hit.bundle_id)
        .await?
        .filter(|b| b.status != BundleStatus::Pending && b.bank_id == hit.bank_id)
        .ok_or(AppError::NotFound)?;
    let manifest = Manifest::parse(&bundle.manifest).map_err(bad)?;
    Ok((bundle, manifest))
}

/// The blob route of a visit's blob.
/// A time of the evidence in the bank's zone, to the second (`2026-12-04 10:00:07`): what
/// happened in which order within a minute matters to a court.
pub(crate) fn local_time(at_ms: i64, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| {
            t.with_timezone(&zone)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// The zone the page's times are in, with its offset then: `Asia/Shanghai (UTC+08:00)`.
fn zone_text(at_ms: i64, zone: chrono_tz::Tz) -> String {
    let offset = chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.with_timezone(&zone).format("%:z").to_string())
        .unwrap_or_default();
    format!("{} (UTC{offset})", zone.name())
}

/// A word of the evidence (a person met, a consent's scope, a dispute's or a promise's
/// kind, a health flag) in `lang`: message `dossier-<group>-<its snake_case name, hyphened>`.
fn word(lang: Lang, group: &str, value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => {
            lang.t(&format!("dossier-{group}-{}", name.replace('_', "-")))
        }
        _ => String::new(),
    }
}

pub(crate) fn blob_href(visit: Uuid, digest: &Digest) -> String {
    format!("/evidence/visits/{visit}/blobs/{digest}")
}

/// `31.2304210°N 121.4737010°E ±8 m (gnss, WGS-84)`; a mock fix says so.
fn place_text(lang: Lang, fix: &Fix) -> String {
    let c = &fix.coordinate;
    let mut text = lang.t_args(
        "dossier-fix",
        &[
            ("lat", format!("{:.6}", c.lat_degrees()).into()),
            ("lon", format!("{:.6}", c.lon_degrees()).into()),
            ("accuracy", i64::from(fix.accuracy_m).into()),
            ("provider", word(lang, "provider", &fix.provider).into()),
            ("datum", datum_name(c.datum()).into()),
        ],
    );
    if fix.mock {
        text.push(' ');
        text.push_str(&lang.t("dossier-fix-mock"));
    }
    text
}

fn datum_name(d: Datum) -> &'static str {
    match d {
        Datum::Wgs84 => "WGS-84",
        Datum::Gcj02 => "GCJ-02",
        Datum::Bd09 => "BD-09",
    }
}

/// The kind's message id suffix and the event's detail.
fn event_text(lang: Lang, kind: &EventKind, zone: chrono_tz::Tz) -> (&'static str, String) {
    match kind {
        EventKind::CheckedIn {
            distance_m,
            partner_distance_m,
            outside_fence_reason,
            ..
        } => {
            let mut d = lang.t_args(
                "dossier-ev-checked-in-detail",
                &[
                    ("distance", i64::from(*distance_m).into()),
                    (
                        "partner",
                        partner_distance_m
                            .map_or(String::from("—"), |m| m.to_string())
                            .into(),
                    ),
                ],
            );
            if let Some(r) = outside_fence_reason {
                d.push_str(" · ");
                d.push_str(&visible(r));
            }
            ("checked-in", d)
        }
        EventKind::CheckedOut { .. } => ("checked-out", String::new()),
        EventKind::Photo {
            width,
            height,
            interior,
            ..
        } => {
            let mut d = format!("{width}×{height}");
            if *interior {
                d.push_str(" · ");
                d.push_str(&lang.t("dossier-photo-interior"));
            }
            ("photo", d)
        }
        EventKind::AudioSegment {
            index,
            duration_ms,
            recovered,
            ..
        } => {
            let mut d = lang.t_args(
                "dossier-audio-segment",
                &[
                    ("index", i64::from(*index + 1).into()),
                    ("seconds", (duration_ms / 1000).into()),
                ],
            );
            if *recovered {
                d.push_str(" · ");
                d.push_str(&lang.t("dossier-audio-recovered"));
            }
            ("audio-segment", d)
        }
        EventKind::AudioGap {
            from_ms,
            until_ms,
            reason,
        } => (
            "audio-gap",
            format!(
                "{} – {} · {}",
                local_time(*from_ms, zone),
                local_time(*until_ms, zone),
                visible(reason)
            ),
        ),
        EventKind::Note { text } => ("note", visible(text).into_owned()),
        EventKind::Consent { scope } => ("consent", word(lang, "consent", scope)),
        EventKind::IdentityConfirmed { person } => ("identity", word(lang, "person", person)),
        EventKind::Dispute { kind, .. } => ("dispute", word(lang, "dispute", kind)),
        EventKind::HealthFlagged { flag } => ("health", word(lang, "health", flag)),
        EventKind::TemplateUsed {
            template_id,
            version,
            ..
        } => ("template", format!("{template_id} v{version}")),
        EventKind::Promise {
            kind,
            amount,
            due_ms,
        } => (
            "promise",
            format!(
                "{} · {} · {}",
                word(lang, "promise", kind),
                yuan(amount.0),
                local_time(*due_ms, zone)
            ),
        ),
        EventKind::Complaint { note } => ("complaint", visible(note).into_owned()),
        EventKind::ReceiptIssued { serial, amount, .. } => {
            ("receipt-issued", format!("{serial} · {}", yuan(amount.0)))
        }
        EventKind::ReceiptVoided { serial, reason, .. } => {
            ("receipt-voided", format!("{serial} · {}", visible(reason)))
        }
        EventKind::ClockDiscrepancy {
            wall_ms,
            anchored_ms,
        } => (
            "clock",
            lang.t_args(
                "dossier-clock-detail",
                &[("seconds", ((wall_ms - anchored_ms) / 1000).into())],
            ),
        ),
        EventKind::RuleFlag { message, .. } => ("rule-flag", message.clone()),
    }
}

/// Loads a visit's evidence (the caller has checked the user may see `hit`'s bank).
pub(crate) async fn load(
    state: &AppState,
    hit: &EvidenceHit,
    lang: Lang,
) -> Result<Dossier, AppError> {
    let (bundle, manifest) = committed_bundle(state, hit).await?;
    let zone = bank_zone(state, hit.bank_id).await?;
    let visit = hit.visit_id;
    let names: HashMap<AgentId, String> = [
        (manifest.visit.lead, hit.lead_name.clone()),
        (manifest.visit.partner, hit.partner_name.clone()),
    ]
    .into_iter()
    .filter_map(|(id, name)| name.map(|n| (id, visible(&n).into_owned())))
    .collect();
    let agent = |id: &AgentId| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string().chars().take(8).collect())
    };

    let mut timeline = Vec::new();
    let mut photos = Vec::new();
    let mut audio = Vec::new();
    let mut marks = Vec::new();
    let mut signatures: HashMap<u64, Digest> = HashMap::new();
    for e in &manifest.events {
        let (kind_id, detail) = event_text(lang, &e.kind, zone);
        let (rule, badge) = match &e.kind {
            EventKind::RuleFlag { rule, outcome, .. } => {
                let outcome = format!("{outcome:?}").to_lowercase();
                let badge = if outcome == "flag" { "bad" } else { "warn" };
                (format!("{rule:?} {outcome}"), badge)
            }
            EventKind::AudioGap { .. } => ("V07".to_owned(), "warn"),
            EventKind::ClockDiscrepancy { .. } => ("V15".to_owned(), "warn"),
            _ => (String::new(), ""),
        };
        timeline.push(TimelineRow {
            seq: e.seq,
            time: local_time(e.at.best_ms(), zone),
            time_source: lang.t(if e.at.anchored_ms().is_some() {
                "dossier-time-anchored"
            } else {
                "dossier-time-wall"
            }),
            agent: agent(&e.by),
            kind: lang.t(&format!("dossier-ev-{kind_id}")),
            detail,
            place: e
                .fix
                .as_ref()
                .map(|f| place_text(lang, f))
                .unwrap_or_default(),
            rule,
            badge,
        });
        let phase = match &e.kind {
            EventKind::CheckedIn { partner_fix, .. } => {
                if let Some(f) = partner_fix {
                    marks.push(Mark::of(f, MarkKind::CheckIn, false));
                }
                Some(MarkKind::CheckIn)
            }
            EventKind::CheckedOut { partner_fix, .. } => {
                if let Some(f) = partner_fix {
                    marks.push(Mark::of(f, MarkKind::CheckOut, false));
                }
                Some(MarkKind::CheckOut)
            }
            _ => Some(MarkKind::During),
        };
        if let (Some(fix), Some(phase)) = (&e.fix, phase) {
            marks.push(Mark::of(fix, phase, true));
        }
        match &e.kind {
            EventKind::Photo {
                original,
                thumbnail,
                width,
                height,
                ..
            } => photos.push(PhotoItem {
                thumb: thumbnail.digest,
                original: *original,
                thumb_href: blob_href(visit, &thumbnail.digest),
                original_href: blob_href(visit, original),
                time: local_time(e.at.best_ms(), zone),
                size: format!("{width}×{height}"),
                alt: lang.t_args(
                    "dossier-photo-alt",
                    &[("time", local_time(e.at.best_ms(), zone).into())],
                ),
            }),
            EventKind::AudioSegment {
                index,
                digest,
                start_ms,
                duration_ms,
                recovered,
                ..
            } => audio.push(AudioItem {
                digest: Some(*digest),
                href: blob_href(visit, digest),
                label: lang.t_args(
                    "dossier-audio-segment",
                    &[
                        ("index", i64::from(*index + 1).into()),
                        ("seconds", (duration_ms / 1000).into()),
                    ],
                ),
                time: local_time(*start_ms, zone),
                note: if *recovered {
                    lang.t("dossier-audio-recovered")
                } else {
                    String::new()
                },
                badge: if *recovered { "warn" } else { "" },
            }),
            EventKind::AudioGap {
                from_ms,
                until_ms,
                reason,
            } => audio.push(AudioItem {
                digest: None,
                href: String::new(),
                label: lang.t_args(
                    "dossier-audio-gap",
                    &[("seconds", ((until_ms - from_ms) / 1000).into())],
                ),
                time: local_time(*from_ms, zone),
                note: visible(reason).into_owned(),
                badge: "warn",
            }),
            EventKind::ReceiptIssued {
                serial,
                payer_signature,
                ..
            } => {
                signatures.insert(serial.0, *payer_signature);
            }
            _ => {}
        }
    }

    let receipts = state
        .db
        .receipts(&ReceiptQuery {
            banks: vec![hit.bank_id],
            state: None,
            from_day: None,
            to_day: None,
            before: None,
            visit: Some(tandem_core::model::VisitId(visit)),
            limit: 200,
        })
        .await?
        .iter()
        .rev()
        .map(|r| {
            let signature = u64::try_from(r.serial)
                .ok()
                .and_then(|s| signatures.get(&s))
                .copied();
            ReceiptItem {
                serial: format!("{:010}", r.serial),
                time: local_time(r.issued_ms, zone),
                amount: yuan(r.amount_fen),
                payer: visible(&r.payer_name).into_owned(),
                method: lang.t(if r.method == "cheque" {
                    "method-cheque"
                } else {
                    "method-cash"
                }),
                signature_href: signature.map(|d| blob_href(visit, &d)).unwrap_or_default(),
                signature,
            }
        })
        .collect();

    // The address the check-in names, as the server holds it, and the policy's fence.
    let policy: Option<Policy> =
        tandem_core::canonical::from_canonical_slice(manifest.visit.policy.body.as_bytes()).ok();
    let address_id = manifest.events.iter().find_map(|e| match &e.kind {
        EventKind::CheckedIn { address_id, .. } => Some(*address_id),
        _ => None,
    });
    let address: Option<Coordinate> = match state.db.case_addresses(manifest.visit.case_id).await? {
        Some((_, addresses)) => addresses
            .iter()
            .find(|a| Some(a.id) == address_id)
            .or(addresses.first())
            .map(|a| a.position),
        None => None,
    };
    let plot = PositionsPlot {
        address,
        fence_m: policy.as_ref().map_or(200, |p| p.geofence_radius_m),
        marks,
    };

    let (stored_checks, flags) = match bundle.report.as_deref() {
        Some(text) => {
            let stored: StoredReport = serde_json::from_str(text).map_err(bad)?;
            (check_rows(lang, &stored.report), stored.flags)
        }
        None => (Vec::new(), Vec::new()),
    };
    let log_checks = log_checks(state, lang, &bundle).await?;
    let (state_id, state_badge) = match (bundle.status, hit.flags > 0) {
        (BundleStatus::Quarantined, _) => ("quarantined", "bad"),
        (_, true) => ("accepted-flagged", "warn"),
        _ => ("accepted", "ok"),
    };
    let team = [&hit.lead_name, &hit.partner_name]
        .into_iter()
        .flatten()
        .map(|n| visible(n).into_owned())
        .collect::<Vec<_>>()
        .join(lang.list_separator());
    let bank = state
        .db
        .bank_names(&[hit.bank_id])
        .await?
        .into_iter()
        .next()
        .map(|b| visible(&b.name).into_owned())
        .unwrap_or_default();
    Ok(Dossier {
        visit_id: visit,
        bank,
        case_ref: visible(hit.case_ref.as_deref().unwrap_or(&manifest.visit.case_ref)).into_owned(),
        debtor: hit
            .debtor_name
            .as_deref()
            .map(|n| visible(n).into_owned())
            .unwrap_or_default(),
        card: hit.card_masked.clone().unwrap_or_default(),
        id_number: hit.id_number_masked.clone().unwrap_or_default(),
        team,
        state: lang.t(&format!("visit-state-{state_id}")),
        state_badge,
        bundle_id: bundle.id.to_string(),
        manifest_digest: bundle.manifest_digest.to_hex(),
        sealed: local_time(manifest.sealed_at_ms, zone),
        zone: zone_text(manifest.sealed_at_ms, zone),
        timeline,
        photos,
        audio,
        receipts,
        plot,
        stored_checks,
        flags,
        log_checks,
        bundle,
        manifest,
    })
}

/// Each check of a report as ingest stores it (`IngestReport` as JSON: core's `checks`, then
/// the server's `case_address`), in the page's language.
pub(crate) fn check_rows(lang: Lang, report: &serde_json::Value) -> Vec<CheckRow> {
    let mut out = Vec::new();
    let core = report
        .get("checks")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    let server = report
        .get("case_address")
        .map(|c| {
            let mut c = c.clone();
            if let Some(o) = c.as_object_mut() {
                o.insert("name".into(), crate::ingest::checks::CASE_ADDRESS.into());
            }
            c
        })
        .into_iter();
    for c in core.into_iter().chain(server) {
        let id = c
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        let result = c.get("result").and_then(|v| v.as_str()).unwrap_or("?");
        let detail = match result {
            "fail" => c
                .get("reason")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
            "not_checked" => c
                .get("why")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
            "flagged" => c
                .get("flags")
                .and_then(|v| v.as_array())
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default(),
            _ => String::new(),
        };
        out.push(check_row(lang, &id, result, detail));
    }
    out
}

fn check_row(lang: Lang, id: &str, result: &str, detail: String) -> CheckRow {
    let name_id = format!("check-{id}");
    let badge = match result {
        "pass" => "ok",
        "flagged" => "warn",
        "fail" => "bad",
        _ => "info",
    };
    let result_id = format!("check-result-{result}");
    CheckRow {
        name: if lang.has(&name_id) {
            lang.t(&name_id)
        } else {
            id.to_owned()
        },
        id: id.to_owned(),
        result: if lang.has(&result_id) {
            lang.t(&result_id)
        } else {
            result.to_owned()
        },
        badge,
        detail,
    }
}

/// `3f2a…9c01`.
fn short(d: &Digest) -> String {
    let hex = d.to_hex();
    format!("{}…{}", &hex[..8], &hex[hex.len() - 4..])
}

/// The log's proofs for the bundle against the newest checkpoint: the checkpoint's
/// signature (the server's key), the entry's inclusion proof in that tree, and the
/// consistency of the receipt's checkpoint with it (nothing the receipt saw was rewritten).
pub(crate) async fn log_checks(
    state: &AppState,
    lang: Lang,
    bundle: &StoredBundle,
) -> Result<Vec<CheckRow>, AppError> {
    let key = state.signer.public_key();
    let mut rows = Vec::new();
    let receipt: Option<ServerReceipt> = bundle
        .answer
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(bad)?;
    let (Some(receipt), Some(index)) = (receipt, bundle.log_index) else {
        return Ok(rows);
    };
    let latest: Option<Signed<Checkpoint>> = state
        .db
        .checkpoint(None)
        .await?
        .map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(bad)?;
    let Some(latest_signed) = latest else {
        return Ok(rows);
    };
    let latest = match latest_signed.verify(&key) {
        Ok(c) => {
            rows.push(check_row(
                lang,
                "latest_checkpoint",
                "pass",
                lang.t_args(
                    "dossier-log-checkpoint",
                    &[
                        ("size", c.tree_size.into()),
                        ("root", short(&c.root).into()),
                    ],
                ),
            ));
            c
        }
        Err(e) => {
            rows.push(check_row(lang, "latest_checkpoint", "fail", e.to_string()));
            return Ok(rows);
        }
    };
    let size = latest.tree_size;
    let inclusion = read_log(state, |log| log.inclusion_proof(index, size)).await;
    let leaf = manifest_leaf_hash(&bundle.manifest_digest);
    rows.push(match inclusion {
        Ok(proof) => match verify_inclusion(&leaf, index, size, &proof, &latest.root) {
            Ok(()) => check_row(
                lang,
                "log_inclusion",
                "pass",
                lang.t_args(
                    "dossier-log-inclusion",
                    &[
                        ("index", index.into()),
                        ("size", size.into()),
                        ("steps", proof.len().into()),
                    ],
                ),
            ),
            Err(e) => check_row(lang, "log_inclusion", "fail", e.to_string()),
        },
        Err(e) => check_row(lang, "log_inclusion", "fail", e.to_string()),
    });
    let older = match receipt.checkpoint.verify(&key) {
        Ok(c) => c,
        Err(e) => {
            rows.push(check_row(lang, "log_consistency", "fail", e.to_string()));
            return Ok(rows);
        }
    };
    let from = older.tree_size;
    let consistency = read_log(state, |log| log.consistency_proof(from, size)).await;
    rows.push(match consistency {
        Ok(proof) => {
            match verify_checkpoint_consistency(&receipt.checkpoint, &latest_signed, &proof, &key) {
                Ok((o, n)) => check_row(
                    lang,
                    "log_consistency",
                    "pass",
                    lang.t_args(
                        "dossier-log-consistency",
                        &[
                            ("from", o.tree_size.into()),
                            ("old", short(&o.root).into()),
                            ("to", n.tree_size.into()),
                            ("new", short(&n.root).into()),
                        ],
                    ),
                ),
                Err(e) => check_row(lang, "log_consistency", "fail", e.to_string()),
            }
        }
        Err(e) => check_row(lang, "log_consistency", "fail", e.to_string()),
    });
    Ok(rows)
}

/// A read-only computation over the log's stored nodes.
async fn read_log<R>(
    state: &AppState,
    run: impl Fn(
        &mut tandem_core::tlog::MerkleLog<crate::tlog::Prefetched>,
    ) -> Result<R, tandem_core::tlog::LogError>,
) -> Result<R, AppError> {
    let size = state.db.log_size().await?;
    let keys = crate::tlog::needed_nodes(size, &run).map_err(bad)?;
    let nodes = state.db.log_nodes(&keys).await?;
    let (out, _) = crate::tlog::compute(size, nodes, &run).map_err(bad)?;
    Ok(out)
}
