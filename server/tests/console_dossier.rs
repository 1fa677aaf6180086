//! Legal staff's evidence pages over real HTTP, on every backend: a real sealed visit (two
//! core phones co-signing, a photo, audio, a receipt, pushed and committed by ingest) is
//! found by its case reference, opened only after a purpose is stated, read blob by blob
//! (bytes equal to their digests, byte ranges exact), every read audited with the purpose;
//! verified again, and a blob altered on disk is caught. Negative tests name the actor they
//! stop (THREATS.md).

mod common;

use std::sync::Arc;

use common::TestServer;
use common::browser::Browser;
use common::handset::Handset;
use reqwest::header::{self};
use tandem_core::model::{Fen, Payer, PaymentMethod, PersonMet, VisitId};
use tandem_core::phone::ReceiptRequest;
use tandem_core::testing::{co_sign, signature_png};
use tandem_server::audit::{AuditAction, AuditFilter};
use tandem_server::clock::{ServerClock as _, ShiftedClock};
use tandem_server::db::Role;
use tandem_server::testing::console::Console;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// A debtor's name as a hostile case file might carry it.
const MARKUP_NAME: &str = "<img src=x onerror=alert(1)>";

/// The shift that puts a clock at 10:00 in Shanghai (02:00 UTC) tomorrow.
fn ten_tomorrow_offset_ms() -> i64 {
    let now = tandem_server::clock::system_now_ms();
    let today = now - now.rem_euclid(DAY_MS);
    today + DAY_MS + 2 * HOUR_MS - now
}

/// The demo bank (its first debtor's name carrying markup) on a server at 10:00 in
/// Shanghai, its users, and two phones of its agents.
struct Dossier {
    server: TestServer,
    clock: Arc<ShiftedClock>,
    users: Vec<(String, Role, String)>,
    lead: Handset,
    partner: Handset,
    _phones: tempfile::TempDir,
    _backend: common::TestBackend,
}

impl Dossier {
    async fn start(backend: common::TestBackend) -> Self {
        Self::start_on(backend, None).await
    }

    /// As [`Self::start`], with the blobs in `bucket` when one is given.
    async fn start_on(
        backend: common::TestBackend,
        bucket: Option<tandem_server::blobstore::S3Config>,
    ) -> Self {
        let clock = Arc::new(ShiftedClock::new(ten_tomorrow_offset_ms()));
        let mut state = backend.state().await.with_clock(clock.clone());
        if let Some(config) = bucket {
            let root = backend.dir.path().join("s3-uploads");
            let blobs = tandem_server::blobstore::BlobStore::open_s3(
                root,
                &config,
                state.blobs.keys().clone(),
            )
            .unwrap();
            blobs.bucket().unwrap().probe().await.unwrap();
            let probe = blobs.clone();
            tokio::task::spawn_blocking(move || common::garage::wait_writable(&probe))
                .await
                .unwrap();
            state = state.with_blobs(blobs);
        }
        let now = clock.now_ms();
        let (mut seed, creds) =
            tokio::task::spawn_blocking(move || tandem_server::demo::build(now).unwrap())
                .await
                .unwrap();
        let first = seed
            .cases
            .iter_mut()
            .find(|c| c.case_ref == "PJ-2026-0001")
            .unwrap();
        first.debtor_name = MARKUP_NAME.to_owned();
        assert!(state.db.seed_org(&seed).await.unwrap());
        let server = TestServer::start(state).await;
        let phones = tempfile::tempdir().unwrap();
        let (base, dir) = (server.base.clone(), phones.path().to_owned());
        let codes = (creds.agents[0].2.clone(), creds.agents[1].2.clone());
        let (lead, partner) = tokio::task::spawn_blocking(move || {
            (
                Handset::enrolled(&dir.join("lead"), &base, now, &codes.0),
                Handset::enrolled(&dir.join("partner"), &base, now, &codes.1),
            )
        })
        .await
        .unwrap();
        Self {
            server,
            clock,
            users: creds.users.clone(),
            lead,
            partner,
            _phones: phones,
            _backend: backend,
        }
    }

    fn user(&self, role: Role) -> (String, String) {
        self.users
            .iter()
            .find(|(_, r, _)| *r == role)
            .map(|(l, _, p)| (l.clone(), p.clone()))
            .unwrap()
    }

    async fn browser(&self, role: Role) -> Browser {
        let (login, password) = self.user(role);
        let mut browser = Browser::new(&self.server);
        browser.sign_in_ok(&login, &password).await;
        browser
    }

    /// A whole visit to the first case: approved with cash, checked in, audio, a photo, a
    /// receipt, checked out, sealed and pushed.
    async fn visit(&self) -> VisitId {
        let (base, now) = (self.server.base.clone(), self.clock.now_ms());
        let (login, password) = self.user(Role::Manager);
        let (lead, partner) = (&self.lead, &self.partner);
        tokio::task::block_in_place(|| {
            let manager = Console::sign_in(&base, &login, &password);
            let (visit, _) = common::handset::checked_in_visit(
                &manager,
                (lead, partner),
                "PJ-2026-0001",
                now,
                Some(1_000_000),
                50,
            );
            lead.phone
                .capture_photo(visit, &photo_png(), false)
                .unwrap();
            let payment = ReceiptRequest {
                payer: Payer {
                    role: PersonMet::Debtor,
                    name: "林晓虹".into(),
                },
                amount: Fen(123_456),
                method: PaymentMethod::Cash,
                payer_signature_png: signature_png(),
            };
            let shown = lead.phone.begin_receipt(visit, &payment).unwrap();
            co_sign(&lead.phone, &partner.phone, shown).unwrap();
            lead.phone.stop_audio(visit).unwrap();
            co_sign(
                &lead.phone,
                &partner.phone,
                lead.phone.begin_check_out(visit).unwrap(),
            )
            .unwrap();
            co_sign(
                &lead.phone,
                &partner.phone,
                lead.phone.begin_seal(visit).unwrap(),
            )
            .unwrap();
            let pushed = lead.sync();
            assert_eq!(pushed.pushed.acknowledged, 1, "{pushed:?}");
            visit
        })
    }
}

/// A small photo of its own (not the signature's bytes).
fn photo_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 120])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Every blob link of a page (`/evidence/visits/…/blobs/<digest>`), once each.
fn blob_links(body: &str) -> Vec<String> {
    let mut out: Vec<String> = body
        .match_indices("/evidence/visits/")
        .filter_map(|(at, _)| {
            let rest = &body[at..];
            let end = rest.find('"')?;
            let link = &rest[..end];
            link.contains("/blobs/").then(|| link.to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    tandem_core::crypto::sha256(bytes).to_hex()
}

async fn entries(
    server: &TestServer,
    action: AuditAction,
) -> Vec<tandem_server::audit::AuditRecord> {
    server
        .state
        .db
        .audit_entries(
            &AuditFilter {
                action: Some(action),
                ..AuditFilter::default()
            },
            500,
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_staff_find_a_visit_state_a_purpose_and_read_its_evidence() {
    for b in common::backends().await {
        let label = b.label;
        let d = Dossier::start(b).await;
        let visit = d.visit().await;
        let page_path = format!("/evidence/visits/{visit}");
        let mut legal = d.browser(Role::Legal).await;

        // The search by the start of the case reference finds it; the search is audited
        // without the text typed.
        // Legal staff start at the evidence search, and their navigation offers no
        // manager's page (they would only meet "not your page" there).
        let home = legal.get("/").await;
        assert_eq!(home.status, 303, "{label}");
        assert_eq!(home.headers[header::LOCATION], "/evidence", "{label}");
        let found = legal.get("/evidence?case_ref=pj-2026-00").await;
        assert_eq!(found.status, 200, "{label}: {}", found.body);
        assert!(found.body.contains("href=\"/evidence\""), "{label}");
        for manager_page in ["/requests", "/cases", "/receipts", "/flags"] {
            assert!(
                !found.body.contains(&format!("href=\"{manager_page}\"")),
                "{label}: {manager_page} offered to legal staff"
            );
        }
        assert!(found.body.contains(&page_path), "{label}: {}", found.body);
        assert!(found.body.contains("<html lang=\"zh-CN\">"), "{label}");
        // Actor: a debtor name crafted as markup in a bank's case file: shown as text.
        assert!(!found.body.contains("<img src=x"), "{label}");
        assert!(found.body.contains("&#60;img src=x"), "{label}");
        let searched = entries(&d.server, AuditAction::EvidenceSearched).await;
        assert!(!searched.is_empty(), "{label}");
        assert!(
            !searched[0].entry.detail.to_string().contains("pj-2026"),
            "{label}: the typed text is never logged"
        );
        let none = legal.get("/evidence?case_ref=ZZ-NOPE").await;
        assert!(!none.body.contains(&page_path), "{label}");

        // Actor: an insider reading evidence unseen (A03): a purpose comes first.
        let form = legal.get(&page_path).await;
        assert_eq!(form.status, 200, "{label}");
        assert!(
            form.body.contains(&format!("{page_path}/purpose")),
            "{label}"
        );
        let csrf = form.csrf();
        let refused = legal
            .post(
                &format!("{page_path}/purpose"),
                &[("csrf", &csrf), ("kind", "litigation"), ("text", "  ")],
            )
            .await;
        assert_eq!(refused.status, 422, "{label}: an empty purpose is refused");
        let opened = legal
            .post(
                &format!("{page_path}/purpose"),
                &[
                    ("csrf", &csrf),
                    ("kind", "litigation"),
                    ("text", "(2026)沪0101民初123号"),
                ],
            )
            .await;
        assert_eq!(opened.status, 303, "{label}: {}", opened.body);

        let page = legal.get(&page_path).await;
        assert_eq!(page.status, 200, "{label}: {}", page.body);
        for needle in [
            "PJ-2026-0001",
            "¥1,234.56",
            "<svg",
            "<audio controls preload=\"metadata\"",
            "WGS-84",
            "林晓虹",
        ] {
            assert!(page.body.contains(needle), "{label}: {needle}");
        }
        assert!(!page.body.contains("<img src=x"), "{label}");
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("media-src 'self'"), "{label}: {csp}");

        // Every blob the page links is served with exactly the bytes of its digest.
        let links = blob_links(&page.body);
        assert!(links.len() >= 4, "{label}: {links:?}");
        let mut audio = None;
        for link in &links {
            let (resp, bytes) = legal.download(link).await;
            assert_eq!(resp.status, 200, "{label}: {link}");
            let digest = link.rsplit('/').next().unwrap();
            assert_eq!(sha256_hex(&bytes), digest, "{label}: {link}");
            assert_eq!(
                resp.headers["cache-control"], "private, no-store",
                "{label}"
            );
            assert_eq!(resp.headers["x-content-type-options"], "nosniff", "{label}");
            assert_eq!(resp.headers["accept-ranges"], "bytes", "{label}");
            if resp.headers["content-type"] == "audio/wav" {
                audio = Some((link.clone(), bytes));
            }
        }
        let (audio_link, audio_bytes) = audio.expect("an audio segment");
        let (part, bytes) = legal.get_range(&audio_link, "bytes=10-99").await;
        assert_eq!(part.status, 206, "{label}");
        assert_eq!(bytes, audio_bytes[10..100], "{label}");
        assert_eq!(
            part.headers["content-range"],
            format!("bytes 10-99/{}", audio_bytes.len()).as_str(),
            "{label}"
        );
        let (tail, bytes) = legal.get_range(&audio_link, "bytes=-16").await;
        assert_eq!(tail.status, 206, "{label}");
        assert_eq!(bytes, audio_bytes[audio_bytes.len() - 16..], "{label}");
        let (beyond, _) = legal.get_range(&audio_link, "bytes=99999999-").await;
        assert_eq!(beyond.status, 416, "{label}");

        // Every read is in the audit log with the purpose stated.
        for action in [
            AuditAction::EvidenceAccessOpened,
            AuditAction::EvidenceViewed,
            AuditAction::ThumbnailViewed,
            AuditAction::OriginalViewed,
            AuditAction::AudioPlayed,
        ] {
            let found = entries(&d.server, action).await;
            assert!(!found.is_empty(), "{label}: {action}");
            for e in found {
                assert_eq!(
                    e.entry.purpose.as_deref(),
                    Some("litigation: (2026)沪0101民初123号"),
                    "{label}: {action}"
                );
            }
        }

        // Verified again: every check passes, and the log's proofs hold.
        let csrf = page.csrf();
        let again = legal
            .post(&format!("{page_path}/verify"), &[("csrf", &csrf)])
            .await;
        assert_eq!(again.status, 200, "{label}");
        assert!(
            again.body.contains("没有校验失败"),
            "{label}: {}",
            again.body
        );
        assert!(!again.body.contains("badge bad"), "{label}");
        assert!(again.body.contains("一致性证明"), "{label}");

        // Actor: an insider altering stored evidence: the photo's bytes changed on disk.
        let original = links
            .iter()
            .map(|l| l.rsplit('/').next().unwrap().to_owned())
            .next()
            .unwrap();
        let digest: tandem_core::crypto::Digest = original.parse().unwrap();
        let path = d.server.state.blobs.path(&digest);
        std::fs::write(&path, b"garbage, not what the phones signed").unwrap();
        let caught = legal
            .post(&format!("{page_path}/verify"), &[("csrf", &csrf)])
            .await;
        assert_eq!(caught.status, 200, "{label}");
        assert!(caught.body.contains("有校验失败"), "{label}");
        assert!(caught.body.contains("blob_digests"), "{label}");
        let verified = entries(&d.server, AuditAction::EvidenceVerified).await;
        assert_eq!(verified.len(), 2, "{label}");
        assert_eq!(verified[0].entry.detail["valid"], false, "{label}");

        // The page in English, without raw message ids.
        legal.lang = Some("en");
        let en = legal.get(&page_path).await;
        assert!(en.body.contains("<html lang=\"en\">"), "{label}");
        assert!(en.body.contains("Verify again now"), "{label}");
        for raw in ["dossier-", "check-result-", "nav-evidence"] {
            assert!(!en.body.contains(raw), "{label}: {raw}");
        }
        let zh_search = {
            legal.lang = None;
            legal.get("/evidence").await
        };
        assert!(zh_search.body.contains("证据检索"), "{label}");
        assert!(!zh_search.body.contains("dossier-"), "{label}");

        // Actor: a role without need (a manager): no blob, no page.
        let mut manager = d.browser(Role::Manager).await;
        let blob = manager.get(&links[0]).await;
        let random = manager
            .get(&format!(
                "/evidence/visits/{}/blobs/{original}",
                uuid::Uuid::now_v7()
            ))
            .await;
        assert_eq!(blob.status, 404, "{label}");
        assert_eq!(blob.status, random.status, "{label}");
        assert_eq!(manager.get(&page_path).await.status, 403, "{label}");
        assert_eq!(manager.get("/evidence").await.status, 403, "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_banks_legal_staff_find_nothing_and_pages_follow_by_keyset() {
    for b in common::backends().await {
        let label = b.label;
        let d = Dossier::start(b).await;
        let visit = d.visit().await;
        let page_path = format!("/evidence/visits/{visit}");

        // Actor: a user of another bank (D03): the same "not found" as a random id.
        let other = common::seed_demo(d.server.state.db.as_ref(), "OTHER").await;
        let mut theirs = Browser::new(&d.server);
        theirs
            .sign_in_ok("OTHER-legal", other.password("OTHER-legal"))
            .await;
        let mine = theirs.get(&page_path).await;
        let random_id = uuid::Uuid::now_v7();
        let random = theirs.get(&format!("/evidence/visits/{random_id}")).await;
        assert_eq!(mine.status, 404, "{label}");
        assert_eq!(mine.status, random.status, "{label}");
        // The same page but for the language switch's way back to the address asked.
        assert_eq!(
            mine.body,
            random
                .body
                .replace(&random_id.to_string(), &visit.to_string()),
            "{label}"
        );
        let blob = theirs
            .get(&format!("{page_path}/blobs/{}", "0".repeat(64)))
            .await;
        assert_eq!(blob.status, 404, "{label}");
        let search = theirs.get("/evidence?case_ref=PJ").await;
        assert_eq!(search.status, 200, "{label}");
        assert!(!search.body.contains(&page_path), "{label}");

        // Sixty more visits of the bank: fifty a page, the next by keyset.
        let hit = d
            .server
            .state
            .db
            .evidence_visit(visit.0)
            .await
            .unwrap()
            .unwrap();
        let stored = d
            .server
            .state
            .db
            .bundle(hit.bundle_id)
            .await
            .unwrap()
            .unwrap();
        let manifest = tandem_core::bundle::Manifest::parse(&stored.manifest).unwrap();
        for i in 0..60 {
            let mut row = tandem_server::db::dossier::EvidenceVisit::of(
                &manifest,
                stored.id,
                stored.status,
                stored.log_index.unwrap(),
            );
            row.visit_id = uuid::Uuid::now_v7();
            row.visit_ms -= (i + 1) * 60_000;
            d.server.state.db.index_evidence(&row).await.unwrap();
        }
        let mut legal = d.browser(Role::Legal).await;
        let first = legal.get("/evidence?case_ref=PJ-2026-0001").await;
        assert_eq!(first.status, 200, "{label}");
        assert_eq!(
            first.body.matches("href=\"/evidence/visits/").count(),
            50,
            "{label}"
        );
        assert!(first.body.contains(&page_path), "{label}: the newest first");
        let at = first.body.find("rel=\"next\"").expect("a next link");
        let href_at = first.body[..at].rfind("href=\"").unwrap() + 6;
        let next = first.body[href_at..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&")
            .replace("&#38;", "&");
        assert!(next.contains("before_ms="), "{label}: {next}");
        assert!(!next.contains("offset"), "{label}");
        let second = legal.get(&next).await;
        assert_eq!(
            second.body.matches("href=\"/evidence/visits/").count(),
            11,
            "{label}"
        );
        assert!(!second.body.contains(&page_path), "{label}");
        assert!(!second.body.contains("rel=\"next\""), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_opens_the_visits_evidence_to_its_banks_managers_for_24_hours() {
    for b in common::backends().await {
        let label = b.label;
        let d = Dossier::start(b).await;
        let visit = d.visit().await;
        let page_path = format!("/evidence/visits/{visit}");
        let mut manager = d.browser(Role::Manager).await;
        // Actor: a role without need (a manager, no complaint): the evidence stays closed.
        assert_eq!(manager.get(&page_path).await.status, 403, "{label}");

        // P01: a complaint about the visit's case, recorded in the console.
        let case_id: String = {
            use sqlx::Connection as _;
            let url = &d._backend.url;
            let sql = "SELECT case_id FROM evidence_visits WHERE visit_id = $1";
            if label == "postgres" {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql)
                    .bind(visit.to_string())
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            } else {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql)
                    .bind(visit.to_string())
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
        };
        let case = manager.get(&format!("/cases/{case_id}")).await;
        let recorded = manager
            .post(
                &format!("/cases/{case_id}/complaint"),
                &[("csrf", &case.csrf()), ("note", "债务人投诉外访人员态度")],
            )
            .await;
        assert_eq!(recorded.status, 303, "{label}: {}", recorded.body);

        // For quality review the manager now states a purpose and reads, audited.
        let form = manager.get(&page_path).await;
        assert_eq!(form.status, 200, "{label}: {}", form.body);
        assert!(
            form.body.contains("name=\"kind\""),
            "{label}: the purpose form first"
        );
        let opened = manager
            .post(
                &format!("{page_path}/purpose"),
                &[
                    ("csrf", &form.csrf()),
                    ("kind", "complaint"),
                    ("text", "投诉复核：核对外访录音"),
                ],
            )
            .await;
        assert_eq!(opened.status, 303, "{label}: {}", opened.body);
        let page = manager.get(&page_path).await;
        assert_eq!(page.status, 200, "{label}");
        let link = blob_links(&page.body)
            .into_iter()
            .next()
            .expect("a blob link");
        assert_eq!(manager.get(&link).await.status, 200, "{label}");
        // Review is not export: the form is not offered, and asking anyway finds nothing.
        assert!(
            !page.body.contains(&format!("{page_path}/export")),
            "{label}"
        );
        let export = manager
            .post(
                &format!("{page_path}/export"),
                &[
                    ("csrf", &page.csrf()),
                    ("kind", "complaint"),
                    ("text", "投诉复核：导出全部证据"),
                ],
            )
            .await;
        assert_eq!(export.status, 404, "{label}");
        let viewed = entries(&d.server, AuditAction::EvidenceViewed).await;
        assert!(
            viewed
                .iter()
                .any(|e| e.entry.purpose.as_deref() == Some("complaint: 投诉复核：核对外访录音")),
            "{label}: the manager's read is audited with its purpose"
        );

        // 24 hours later (a new session: the first one has expired by then) the evidence
        // is closed to managers again.
        d.clock.advance_ms(DAY_MS + 60_000);
        let mut later = d.browser(Role::Manager).await;
        assert_eq!(later.get(&page_path).await.status, 403, "{label}");
        assert_eq!(later.get(&link).await.status, 404, "{label}");
    }
}

/// The entries of a ZIP by name.
fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read as _;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut out = Vec::new();
            entry.read_to_end(&mut out).unwrap();
            (entry.name().unwrap().into_owned(), out)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_staff_export_a_visit_with_its_report_and_a_note_that_verify_offline() {
    for b in common::backends().await {
        let label = b.label;
        let d = Dossier::start(b).await;
        let visit = d.visit().await;
        let page_path = format!("/evidence/visits/{visit}");
        let mut legal = d.browser(Role::Legal).await;
        let form = legal.get(&page_path).await;
        let opened = legal
            .post(
                &format!("{page_path}/purpose"),
                &[
                    ("csrf", &form.csrf()),
                    ("kind", "litigation"),
                    ("text", "(2026)沪0101民初123号"),
                ],
            )
            .await;
        assert_eq!(opened.status, 303, "{label}");
        let page = legal.get(&page_path).await;
        assert!(
            page.body.contains(&format!("{page_path}/export")),
            "{label}"
        );
        let csrf = page.csrf();

        // Actor: an insider taking evidence out unseen (A03): no export without a purpose.
        let refused = legal
            .post(
                &format!("{page_path}/export"),
                &[("csrf", &csrf), ("kind", "litigation"), ("text", "x")],
            )
            .await;
        assert_eq!(refused.status, 422, "{label}");
        assert!(refused.body.contains("role=\"alert\""), "{label}");
        let purpose_text = "向法院提交 (2026)沪0101民初123号";
        let export = legal
            .post(
                &format!("{page_path}/export"),
                &[
                    ("csrf", &csrf),
                    ("kind", "litigation"),
                    ("text", purpose_text),
                ],
            )
            .await;
        assert_eq!(export.status, 200, "{label}: {}", export.body);
        assert_eq!(export.headers["content-type"], "application/zip", "{label}");
        assert!(
            export.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment; filename=\"tandem-bundle-"),
            "{label}"
        );
        let purpose = format!("litigation: {purpose_text}");

        // The ZIP verifies offline, the note and report included, with only the server
        // key's fingerprint given.
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("export.zip");
        std::fs::write(&zip, &export.bytes).unwrap();
        let kid = {
            use tandem_core::crypto::Signer as _;
            d.server.state.signer.public_key().kid().to_string()
        };
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["verify", "--json", "--server-key", &kid])
            .arg(&zip)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{label}: {report:#}");
        let note_check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "export_note")
            .unwrap();
        assert_eq!(note_check["result"], "pass", "{label}: {report:#}");

        // The note names who, why and when, and binds the report.
        let files = unzip(&export.bytes);
        let note: serde_json::Value = serde_json::from_slice(&files["export/note.json"]).unwrap();
        let body: serde_json::Value = serde_json::from_str(note["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["purpose"], purpose.as_str(), "{label}");
        assert_eq!(body["requester_role"], "legal", "{label}");
        assert_eq!(body["language"], "zh-CN", "{label}");
        let html = String::from_utf8(files["export/report.html"].clone()).unwrap();
        assert_eq!(
            body["report_sha256"],
            sha256_hex(html.as_bytes()),
            "{label}"
        );

        // The report is self-contained and reads as the page does: the photo's thumbnail
        // and the payer's signature inline, the plot, the checks, nothing fetched.
        assert!(html.contains("<html lang=\"zh-CN\">"), "{label}");
        for needle in [
            "PJ-2026-0001",
            "¥1,234.56",
            "林晓虹",
            "<svg",
            purpose_text,
            "tandem verify --server-key",
        ] {
            assert!(html.contains(needle), "{label}: {needle}");
        }
        assert!(html.matches("src=\"data:image/").count() >= 2, "{label}");
        for external in [
            "src=\"/",
            "src=\"http",
            "href=\"/",
            "href=\"http",
            "<script",
            "<link",
        ] {
            assert!(!html.contains(external), "{label}: {external}");
        }
        assert!(!html.contains("<img src=x"), "{label}: markup escaped");
        assert!(html.contains("../blobs/"), "{label}: originals linked");
        for link in html.split("href=\"../").skip(1) {
            let name = link.split('"').next().unwrap();
            assert!(
                files.contains_key(name),
                "{label}: {name} not in the export"
            );
        }

        // Audited with the purpose and the report's digest.
        let exported = entries(&d.server, AuditAction::EvidenceExported).await;
        assert_eq!(exported.len(), 1, "{label}");
        assert_eq!(
            exported[0].entry.purpose.as_deref(),
            Some(purpose.as_str()),
            "{label}"
        );
        assert_eq!(
            exported[0].entry.detail["report_sha256"],
            sha256_hex(html.as_bytes()),
            "{label}"
        );

        // In English when the user reads English.
        legal.lang = Some("en");
        let en = legal
            .post(
                &format!("{page_path}/export"),
                &[
                    ("csrf", &csrf),
                    ("kind", "audit"),
                    ("text", "Annual audit sample"),
                ],
            )
            .await;
        assert_eq!(en.status, 200, "{label}");
        let html = String::from_utf8(unzip(&en.bytes)["export/report.html"].clone()).unwrap();
        assert!(html.contains("<html lang=\"en\">"), "{label}");
        assert!(html.contains("Visit evidence report"), "{label}");
        for raw in ["report-", "dossier-", "check-result-"] {
            assert!(!html.contains(raw), "{label}: {raw}");
        }

        // Actor: an insider altering stored evidence: a photo's bytes changed on disk,
        // same length. The export starts (every blob is there) but stops at that blob:
        // the download fails instead of ending as a complete-looking ZIP.
        let photo: tandem_core::crypto::Digest = html
            .split("href=\"../blobs/")
            .nth(1)
            .and_then(|rest| rest.split('.').next())
            .unwrap()
            .parse()
            .unwrap();
        let path = d.server.state.blobs.path(&photo);
        let length = std::fs::metadata(&path).unwrap().len() as usize;
        std::fs::write(&path, vec![b'x'; length]).unwrap();
        let (login, password) = d.user(Role::Legal);
        let token: serde_json::Value = d
            .server
            .http
            .post(format!("{}/v1/login", d.server.base))
            .json(&serde_json::json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bundle = body["bundle_id"].as_str().unwrap();
        let sent = d
            .server
            .http
            .get(format!(
                "{}/v1/bundles/{bundle}/export?purpose=litigation%3A%20a%20second%20copy",
                d.server.base
            ))
            .bearer_auth(token["token"].as_str().unwrap())
            .send()
            .await;
        // The connection is reset where the export stops: before the answer's head reached
        // the client when the corrupt blob comes first, or in the middle of its body.
        let cut_short = match sent {
            Err(_) => true,
            Ok(answer) => {
                assert_eq!(answer.status(), 200, "{label}");
                answer.bytes().await.is_err()
            }
        };
        assert!(
            cut_short,
            "{label}: an export over a corrupt blob must not end as a whole ZIP"
        );

        // Actor: a role without need: a manager finds no export, as for any unknown visit.
        let mut manager = d.browser(Role::Manager).await;
        let own = manager.get("/flags").await;
        let denied = manager
            .post(
                &format!("{page_path}/export"),
                &[
                    ("csrf", &own.csrf()),
                    ("kind", "audit"),
                    ("text", "看看证据内容"),
                ],
            )
            .await;
        let random = uuid::Uuid::now_v7().to_string();
        let unknown = manager
            .post(
                &format!("/evidence/visits/{random}/export"),
                &[
                    ("csrf", &own.csrf()),
                    ("kind", "audit"),
                    ("text", "看看证据内容"),
                ],
            )
            .await;
        assert_eq!(denied.status, 404, "{label}");
        assert_eq!(
            denied.body.replace(&page_path, "PAGE"),
            unknown
                .body
                .replace(&format!("/evidence/visits/{random}"), "PAGE"),
            "{label}: the same page as not found"
        );
    }
}

/// Actor: the operator whose evidence outgrew one disk: on a Garage bucket, legal staff read
/// every blob whole and by range, verify again over the bucket's bytes, and export a ZIP
/// whose report inlines the thumbnails read from the bucket and that verifies offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_garage_bucket_legal_staff_read_verify_and_export_a_visit() {
    let Some(garage) = common::garage::start_or_skip("console_dossier") else {
        return;
    };
    let d = Dossier::start_on(common::sqlite(), Some(garage.config())).await;
    let visit = d.visit().await;
    let page_path = format!("/evidence/visits/{visit}");
    let mut legal = d.browser(Role::Legal).await;
    let form = legal.get(&page_path).await;
    let csrf = form.csrf();
    let opened = legal
        .post(
            &format!("{page_path}/purpose"),
            &[
                ("csrf", &csrf),
                ("kind", "litigation"),
                ("text", "S3 case 1"),
            ],
        )
        .await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    let page = legal.get(&page_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        std::fs::read_dir(d.server.state.blobs.root())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "tmp")
            .count(),
        0,
        "no blob in the local folder"
    );

    let links = blob_links(&page.body);
    assert!(links.len() >= 4, "{links:?}");
    let mut audio = None;
    for link in &links {
        let (resp, bytes) = legal.download(link).await;
        assert_eq!(resp.status, 200, "{link}");
        assert_eq!(
            sha256_hex(&bytes),
            link.rsplit('/').next().unwrap(),
            "{link}"
        );
        if resp.headers["content-type"] == "audio/wav" {
            audio = Some((link.clone(), bytes));
        }
    }
    let (audio_link, audio_bytes) = audio.expect("an audio segment");
    let (part, bytes) = legal.get_range(&audio_link, "bytes=10-99").await;
    assert_eq!(part.status, 206);
    assert_eq!(bytes, audio_bytes[10..100]);
    let (tail, bytes) = legal.get_range(&audio_link, "bytes=-16").await;
    assert_eq!(tail.status, 206);
    assert_eq!(bytes, audio_bytes[audio_bytes.len() - 16..]);

    let csrf = page.csrf();
    let again = legal
        .post(&format!("{page_path}/verify"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 200);
    assert!(!again.body.contains("badge bad"), "{}", again.body);

    let export = legal
        .post(
            &format!("{page_path}/export"),
            &[
                ("csrf", &csrf),
                ("kind", "litigation"),
                ("text", "S3 case 1"),
            ],
        )
        .await;
    assert_eq!(export.status, 200, "{}", export.body);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(export.bytes.clone())).unwrap();
    let mut report = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("export/report.html").unwrap(), &mut report)
        .unwrap();
    assert!(
        report.contains("data:image/"),
        "the report inlines thumbnails"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.zip");
    std::fs::write(&path, &export.bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
