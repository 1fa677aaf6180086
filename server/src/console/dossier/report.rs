//! The export's `report.html` and the server's signed note that binds it (A03): what a
//! judge reads first — who exported the evidence, when and why; the visit's timeline,
//! photos, audio, positions and receipts; every check — in one self-contained file in the
//! requester's language (inline CSS and SVG, thumbnails and signatures as data URIs, no
//! script), that reads the same offline years later and prints on A4 with the export's
//! watermark on every page. Originals and audio are linked to their files in the export's
//! `blobs/`, so a reader who unpacked the ZIP opens them from the report.

use askama::Template;
use base64::Engine as _;
use tandem_core::bundle::{ExportAttachment, ExportNote, Manifest, media_extension};
use tandem_core::crypto::{Digest, Signer as _, sha256};
use tandem_core::model::{BundleId, Signed, VisitId};

use super::super::frame::bank_zone;
use super::super::i18n::Lang;
use super::model::{CheckRow, Dossier, bad, local_time};
use super::{positions_svg, purpose_shown};
use crate::AppState;
use crate::auth::UserAuth;
use crate::blobstore::BlobStore;
use crate::db::dossier::EvidenceHit;
use crate::error::AppError;

/// The report's stylesheet, inlined.
const CSS: &str = include_str!("../../../assets/report.css");
/// Largest image inlined as a data URI; a larger one is linked only.
const MAX_INLINE_IMAGE: u64 = 2 * 1024 * 1024;

/// A photo: its thumbnail inline, its original linked in the export.
pub struct ReportPhoto {
    thumb_uri: String,
    original_file: String,
    time: String,
    size: String,
    alt: String,
    digest: String,
}

/// An audio segment (its file in the export) or a gap.
pub struct ReportAudio {
    file: String,
    label: String,
    time: String,
    note: String,
    badge: &'static str,
}

/// A receipt with the payer's signature inline.
pub struct ReportReceipt {
    serial: String,
    time: String,
    amount: String,
    payer: String,
    method: String,
    signature_uri: String,
}

#[derive(Template)]
#[template(path = "console/report.html")]
struct ReportHtml<'a> {
    lang: Lang,
    css: &'static str,
    d: &'a Dossier,
    requester: String,
    role: String,
    purpose: String,
    exported_at: String,
    zip_name: String,
    server_kid: String,
    photos: Vec<ReportPhoto>,
    audio: Vec<ReportAudio>,
    receipts: Vec<ReportReceipt>,
    plot_svg: String,
    /// The watermark printed in every page's margin, as a CSS string's content.
    margin_note: String,
    /// No stored or log check failed.
    verified: bool,
}

/// `text` as the content of a CSS string in a `<style>` element: quotes, backslashes and
/// line breaks escaped, and `<` too, so that no `</style>` can close the element.
fn css_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\3C "),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The name the export's ZIP is downloaded under.
pub(crate) fn zip_name(bundle: BundleId) -> String {
    format!("tandem-bundle-{bundle}.zip")
}

/// The file of a blob in the export, relative to `export/report.html`.
fn export_file(manifest: &Manifest, digest: &Digest) -> String {
    let ext = manifest
        .blob(digest)
        .map_or("bin", |e| media_extension(&e.media_type));
    format!("../blobs/{digest}.{ext}")
}

/// A small stored image as a data URI, with its manifest's media type; empty when it is
/// not an image, too large, or not readable (the report then links the file only).
fn data_uri(blobs: &BlobStore, manifest: &Manifest, digest: &Digest) -> String {
    let Some(entry) = manifest.blob(digest) else {
        return String::new();
    };
    if !entry.media_type.starts_with("image/") || entry.size > MAX_INLINE_IMAGE {
        return String::new();
    }
    let read = blobs.open_read(digest).and_then(|blob| {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        blob.take(MAX_INLINE_IMAGE + 1)
            .read_to_end(&mut bytes)
            .map(|_| bytes)
            .map_err(|source| crate::blobstore::BlobStoreError::Io {
                path: blobs.location(digest),
                source,
            })
    });
    match read {
        // Only the bytes the manifest names: the report shows the evidence, nothing else.
        Ok(bytes) if sha256(&bytes) == *digest => format!(
            "data:{};base64,{}",
            entry.media_type,
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
        Ok(_) => String::new(),
        Err(e) => {
            tracing::error!(error = %e, "a committed bundle's image is not readable");
            String::new()
        }
    }
}

/// The export's attachment for `hit`'s bundle: the report rendered in `lang` from the
/// same model as the visit page, and the note the server signs for `user`, `purpose` (as
/// stored: `<kind>: <text>`) and now.
pub(crate) async fn attachment(
    state: &AppState,
    hit: &EvidenceHit,
    user: &UserAuth,
    purpose: &str,
    lang: Lang,
) -> Result<ExportAttachment, AppError> {
    let d = super::load(state, hit, lang).await?;
    let zone = bank_zone(state, hit.bank_id).await?;
    let now = state.now_ms();
    let blobs = state.blobs.clone();
    // The images the report inlines, read off the async threads.
    let wanted: Vec<Digest> = d
        .photos
        .iter()
        .map(|p| p.thumb)
        .chain(d.receipts.iter().filter_map(|r| r.signature))
        .collect();
    let manifest = d.manifest.clone();
    let inline: std::collections::HashMap<Digest, String> =
        tokio::task::spawn_blocking(move || {
            wanted
                .into_iter()
                .map(|digest| (digest, data_uri(&blobs, &manifest, &digest)))
                .collect()
        })
        .await
        .map_err(bad)?;
    let uri = |d: &Digest| inline.get(d).cloned().unwrap_or_default();
    // Flags are findings for the reader, not failures: the evidence holds unless a check
    // failed.
    let verified = !d.stored_checks.is_empty()
        && d.stored_checks
            .iter()
            .chain(&d.log_checks)
            .all(|c: &CheckRow| c.badge != "bad");
    let exported_at = format!("{} ({})", local_time(now, zone), zone.name());
    let purpose_text = purpose_shown(lang, purpose);
    let margin_note = css_string(&format!(
        "{} {} · {} · {} {} · {}",
        lang.t("report-watermark"),
        user.user.display_name,
        exported_at,
        lang.t("report-purpose"),
        purpose_text,
        d.case_ref,
    ));
    let html = ReportHtml {
        lang,
        margin_note,
        css: CSS,
        requester: user.user.display_name.clone(),
        role: lang.t(&format!("role-{}", user.user.role.as_str())),
        purpose: purpose_text,
        exported_at,
        zip_name: zip_name(d.bundle.id),
        server_kid: state.signer.public_key().kid().to_string(),
        photos: d
            .photos
            .iter()
            .map(|p| ReportPhoto {
                thumb_uri: uri(&p.thumb),
                original_file: export_file(&d.manifest, &p.original),
                time: p.time.clone(),
                size: p.size.clone(),
                alt: p.alt.clone(),
                digest: p.original.to_hex(),
            })
            .collect(),
        audio: d
            .audio
            .iter()
            .map(|a| ReportAudio {
                file: a
                    .digest
                    .map(|x| export_file(&d.manifest, &x))
                    .unwrap_or_default(),
                label: a.label.clone(),
                time: a.time.clone(),
                note: a.note.clone(),
                badge: a.badge,
            })
            .collect(),
        receipts: d
            .receipts
            .iter()
            .map(|r| ReportReceipt {
                serial: r.serial.clone(),
                time: r.time.clone(),
                amount: r.amount.clone(),
                payer: r.payer.clone(),
                method: r.method.clone(),
                signature_uri: r.signature.as_ref().map(uri).unwrap_or_default(),
            })
            .collect(),
        plot_svg: positions_svg(&d.plot, lang),
        verified,
        d: &d,
    }
    .render()
    .map_err(bad)?
    .into_bytes();
    let note = ExportNote {
        bundle_id: d.bundle.id,
        visit_id: VisitId(d.visit_id),
        manifest_sha256: d.bundle.manifest_digest,
        requester_id: user.user.user_id.to_string(),
        requester_name: user.user.display_name.clone(),
        requester_role: user.user.role.as_str().to_owned(),
        purpose: purpose.to_owned(),
        exported_at_ms: now,
        language: lang.tag().to_owned(),
        report_sha256: sha256(&html),
        report_size: html.len() as u64,
    };
    let note = Signed::sign(&note, state.signer.as_ref()).map_err(bad)?;
    Ok(ExportAttachment {
        note,
        report_html: html,
    })
}

#[cfg(test)]
mod tests {
    use super::css_string;

    #[test]
    fn a_css_string_cannot_end_the_string_or_the_style_element() {
        assert_eq!(
            css_string("a\"b\\c</style><script>\n"),
            "a\\\"b\\\\c\\3C /style>\\3C script> "
        );
        assert_eq!(css_string("诉讼：沪0101民初123号"), "诉讼：沪0101民初123号");
    }
}
