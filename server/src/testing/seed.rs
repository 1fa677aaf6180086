//! What a test or benchmark puts straight into a server's database, as the server's own
//! routes would have: a phone's enrolment and a manager's approval of a sealed visit.

use tandem_core::bundle::Manifest;
use tandem_core::crypto::PublicKey;
use tandem_core::model::{Approval, DeviceId};
use uuid::Uuid;

use crate::db::Db;
use crate::db::auth::{EnrollOutcome, NewDevice};
use crate::db::visits::{ApprovalWrite, NewVisitRequest};
use crate::secrets;

/// A new bearer token for a phone.
pub fn device_token() -> String {
    secrets::new_token(crate::auth::DEVICE_TOKEN_PREFIX).unwrap()
}

/// Enrols `device` (its key `key`, its bearer token `token`) with the enrolment code
/// `code` at `at_ms`.
pub async fn enrol_device(
    db: &dyn Db,
    code: &str,
    device: DeviceId,
    key: PublicKey,
    token: &str,
    at_ms: i64,
) {
    let outcome = db
        .enroll_device(
            &secrets::enrollment_code_hash(code),
            &NewDevice {
                id: device,
                public_key: key,
                token_hash: secrets::token_hash(token),
            },
            at_ms,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, EnrollOutcome::Enrolled { .. }),
        "{outcome:?}"
    );
}

/// Records the visit of `manifest` as the server approved it — the request (made at
/// `requested_ms` by `by`), the approval its server-signed document states, the team — as
/// a manager's approval would: ingest accepts a bundle only from a phone the server's own
/// approval puts on the team.
pub async fn record_approval(db: &dyn Db, manifest: &Manifest, by: Uuid, requested_ms: i64) {
    let visit = &manifest.visit;
    let approval: Approval =
        tandem_core::canonical::from_canonical_slice(visit.approval.body.as_bytes()).unwrap();
    let request = Uuid::now_v7();
    db.create_visit_request(&NewVisitRequest {
        id: request,
        bank_id: visit.bank_id,
        case_id: visit.case_id,
        address_ids: approval.address_ids.clone(),
        wanted_from_ms: approval.valid_from_ms,
        wanted_until_ms: approval.valid_until_ms,
        purpose: "visit recorded by a test".into(),
        requested_device: None,
        requested_user: Some(by),
        created_ms: requested_ms,
    })
    .await
    .unwrap();
    let approved = db
        .approve_visit(&ApprovalWrite {
            id: approval.id,
            request_id: request,
            bank_id: visit.bank_id,
            case_id: visit.case_id,
            visit_id: visit.visit_id,
            approved_by: by,
            approved_ms: approval.approved_at_ms,
            team: approval
                .team
                .iter()
                .map(|m| (m.agent_id, m.device_id))
                .collect(),
            payload: "{}".into(),
        })
        .await
        .unwrap();
    assert!(approved, "visit {} approved", visit.visit_id);
}
