//! A valid visit to build rule scenarios from: a Shanghai case, an approval with a team of
//! two, the policy defaults, fixes next to the address, anchored time at 10:00 local.
#![allow(dead_code)] // Each test crate uses its own part of the world.

use chrono::TimeZone;
use chrono_tz::Asia::Shanghai;
use tandem_core::clock::{self, ManualClock, StoredAnchor};
use tandem_core::crypto::{Digest, SignatureAlgorithm, Signer, SoftwareSigner, sha256};
use tandem_core::model::{
    AddressId, AgentId, Approval, ApprovalId, ApprovedAddress, AuthorisationLetter, BankId, Case,
    CaseId, CashAuthorisation, DeviceId, Entrustment, Event, EventKind, EventTime, Fen, Payer,
    PaymentMethod, PersonMet, Policy, PromiseAuthorisation, ReceiptDraft, ReceiptSerial,
    SerialRange, TeamMember, TemplateId, TemplateKind, TemplateRef, TimeAnchor, VisitId,
    VisitTicket,
};
use tandem_core::place::{Coordinate, Datum, Fix, Provider};
use tandem_core::rules::{CheckInInput, Outcome, PartnerPresence, RuleId, Violation, VisitContext};

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// The approved address: People's Square, Shanghai (WGS-84).
pub const ADDRESS_LAT_E7: i32 = 312_304_000;
pub const ADDRESS_LON_E7: i32 = 1_214_737_000;

/// UTC ms of a local time in Shanghai on the visit day (2026-11-30).
pub fn shanghai(hour: u32, minute: u32) -> i64 {
    Shanghai
        .with_ymd_and_hms(2026, 11, 30, hour, minute, 0)
        .single()
        .expect("a valid Shanghai time")
        .timestamp_millis()
}

/// A WGS-84 fix `north_e7` (1e-7 degrees, ~1.1 cm each) north of the address.
pub fn fix_north(north_e7: i32, accuracy_m: u32) -> Fix {
    Fix {
        coordinate: Coordinate::new(ADDRESS_LAT_E7 + north_e7, ADDRESS_LON_E7, Datum::Wgs84)
            .expect("a valid coordinate"),
        accuracy_m,
        provider: Provider::Gnss,
        mock: false,
        taken_at_ms: shanghai(10, 0),
    }
}

/// What one check-in brings, owned so scenarios can change it.
#[derive(Debug, Clone)]
pub struct CheckIn {
    pub fix: Option<Fix>,
    pub partner: Option<PartnerPresence>,
    pub reason: Option<String>,
}

/// Everything around one visit; `ctx()` borrows it as the rules see it.
pub struct World {
    pub policy: Policy,
    pub case: Case,
    pub approval: Approval,
    pub ticket: VisitTicket,
    pub visit: VisitId,
    pub me: AgentId,
    pub my_device: DeviceId,
    pub partner: AgentId,
    pub partner_device: DeviceId,
    pub assigned: Vec<CaseId>,
    pub events: Vec<Event>,
    pub receipts: Vec<ReceiptDraft>,
    pub ranges: Vec<SerialRange>,
    pub unsent_sealed_at_ms: Vec<i64>,
    pub clock: ManualClock,
    pub anchor: Option<StoredAnchor>,
}

fn member(agent_id: AgentId, device_id: DeviceId) -> TeamMember {
    let (signer, _pkcs8) =
        SoftwareSigner::generate(SignatureAlgorithm::Ed25519).expect("a new key");
    TeamMember {
        agent_id,
        device_id,
        public_key: signer.public_key(),
    }
}

impl World {
    /// A valid visit: every check-in rule passes at 10:00 local time.
    pub fn new() -> Self {
        let bank = BankId::new();
        let policy = Policy::defaults(bank);
        let address = ApprovedAddress {
            id: AddressId::new(),
            text: "上海市黄浦区人民大道1号".into(),
            position: Coordinate::new(ADDRESS_LAT_E7, ADDRESS_LON_E7, Datum::Wgs84).expect("valid"),
        };
        // A second address of the case, 30 km away, that this approval does not name.
        let unapproved = ApprovedAddress {
            id: AddressId::new(),
            text: "上海市浦东新区".into(),
            position: Coordinate::new(ADDRESS_LAT_E7 + 2_700_000, ADDRESS_LON_E7, Datum::Wgs84)
                .expect("valid"),
        };
        let day = shanghai(0, 0);
        let case = tandem_core::testing::case_at(
            bank,
            vec![address.clone(), unapproved],
            Entrustment {
                start_ms: day - 60 * DAY,
                end_ms: day + 60 * DAY,
                extended_until_ms: None,
            },
        );
        let (me, my_device) = (AgentId::new(), DeviceId::new());
        let (partner, partner_device) = (AgentId::new(), DeviceId::new());
        let approval = Approval {
            id: ApprovalId::new(),
            bank_id: bank,
            case_id: case.id,
            address_ids: vec![address.id],
            team: vec![member(me, my_device), member(partner, partner_device)],
            valid_from_ms: day - DAY,
            valid_until_ms: day + 2 * DAY,
            letter: AuthorisationLetter {
                number: "WT-2026-118".into(),
                valid_until_ms: day + 30 * DAY,
            },
            cash: Some(CashAuthorisation {
                limit: Fen(500_000),
                currency: "CNY".into(),
                designated_account: "6222 **** **** 0001".into(),
                methods: vec![PaymentMethod::Cash],
            }),
            promise: PromiseAuthorisation::default(),
            appointment: None,
            templates: vec![
                TemplateRef {
                    id: TemplateId::new(),
                    kind: TemplateKind::Promise,
                    version: 2,
                    digest: sha256(b"promise template v2"),
                },
                TemplateRef {
                    id: TemplateId::new(),
                    kind: TemplateKind::Letter,
                    version: 1,
                    digest: sha256(b"letter template v1"),
                },
            ],
            health_review_done: false,
            policy_version: policy.version,
            approved_at_ms: day - DAY,
        };
        let visit = VisitId::new();
        let ticket = VisitTicket {
            visit_id: visit,
            approval_id: approval.id,
            nonce: "00ff".into(),
            issued_at_ms: shanghai(8, 0),
        };
        // Synced at 09:00 local with the phone's clock right; an hour has passed.
        let clock = ManualClock::new(shanghai(9, 0), 5 * HOUR);
        let anchor = StoredAnchor::receive(
            &TimeAnchor {
                device_id: my_device,
                server_time_ms: shanghai(9, 0),
                nonce: "a1".into(),
                shifted_by_ms: None,
            },
            &clock,
        );
        clock.advance_ms(HOUR);
        let ranges = vec![SerialRange {
            device_id: my_device,
            first: ReceiptSerial(1_000),
            last: ReceiptSerial(1_999),
            issued_at_ms: day - DAY,
        }];
        World {
            policy,
            assigned: vec![case.id],
            case,
            approval,
            ticket,
            visit,
            me,
            my_device,
            partner,
            partner_device,
            events: Vec::new(),
            receipts: Vec::new(),
            ranges,
            unsent_sealed_at_ms: Vec::new(),
            clock,
            anchor: Some(anchor),
        }
    }

    /// The time now, from the clock and the anchor (as the phone takes it).
    pub fn now(&self) -> EventTime {
        clock::now(&self.clock, self.anchor.as_ref())
    }

    /// Real time passes until the anchored time shows `hour:minute` local.
    pub fn advance_to_local(&mut self, hour: u32, minute: u32) {
        let anchored = self.now().anchored_ms().expect("anchored");
        self.clock.advance_ms(shanghai(hour, minute) - anchored);
    }

    /// A fresh sync: the server says it is `hour:minute` local now.
    pub fn sync_at_local(&mut self, hour: u32, minute: u32) {
        let anchor = TimeAnchor {
            device_id: self.my_device,
            server_time_ms: shanghai(hour, minute),
            nonce: format!("{hour:02}{minute:02}"),
            shifted_by_ms: None,
        };
        self.anchor = Some(StoredAnchor::receive(&anchor, &self.clock));
    }

    /// The rules' view of this world.
    pub fn ctx(&self) -> VisitContext<'_> {
        VisitContext {
            policy: &self.policy,
            case: &self.case,
            approval: &self.approval,
            ticket: &self.ticket,
            visit: self.visit,
            agent: self.me,
            device: self.my_device,
            assigned_cases: &self.assigned,
            events: &self.events,
            receipts: &self.receipts,
            serial_ranges: &self.ranges,
            now: self.now(),
        }
    }

    /// A valid joint check-in: this phone 22 m north of the address, the partner 11 m further.
    pub fn check_in_input(&self) -> CheckIn {
        CheckIn {
            fix: Some(fix_north(2_000, 10)),
            partner: Some(PartnerPresence {
                agent_id: self.partner,
                device_id: self.partner_device,
                fix: Some(fix_north(3_000, 12)),
            }),
            reason: None,
        }
    }

    /// Runs the check-in rules.
    pub fn check_in(&self, input: &CheckIn) -> Vec<Violation> {
        tandem_core::rules::check_check_in(
            &self.ctx(),
            &CheckInInput {
                fix: input.fix.clone(),
                partner: input.partner.clone(),
                outside_fence_reason: input.reason.clone(),
                unsent_sealed_at_ms: &self.unsent_sealed_at_ms,
            },
        )
    }

    /// Appends an event to the visit's chain, at the current time.
    pub fn record(&mut self, kind: EventKind) {
        let prev = self
            .events
            .last()
            .map_or(Digest::ZERO, |e| e.digest().expect("encodable"));
        let event = Event {
            visit_id: self.visit,
            seq: self.events.len() as u64,
            prev,
            at: self.now(),
            fix: Some(fix_north(2_000, 10)),
            by: self.me,
            kind,
        };
        self.events.push(event);
    }

    /// Records the joint check-in (the visit is then under way).
    pub fn record_check_in(&mut self) {
        self.record(EventKind::CheckedIn {
            address_id: self.approval.address_ids[0],
            partner: self.partner,
            partner_device: self.partner_device,
            partner_fix: Some(fix_north(3_000, 12)),
            distance_m: 22,
            partner_distance_m: Some(11),
            outside_fence_reason: None,
            cosignature: None,
        });
    }

    /// Records a closed audio segment from `start_ms` lasting `duration_ms`.
    pub fn record_audio(&mut self, index: u32, start_ms: i64, duration_ms: i64) {
        self.record(EventKind::AudioSegment {
            index,
            digest: sha256(format!("segment {index}").as_bytes()),
            size: 1_920_044,
            start_ms,
            duration_ms,
            recovered: false,
        });
    }

    /// A complete, authorised receipt for ¥1000 from the debtor.
    pub fn receipt(&self) -> ReceiptDraft {
        ReceiptDraft {
            serial: Some(ReceiptSerial(1_000 + self.receipts.len() as u64)),
            visit_id: self.visit,
            case_id: self.case.id,
            payer: Some(Payer {
                role: PersonMet::Debtor,
                name: "张三".into(),
            }),
            amount: Fen(100_000),
            currency: "CNY".into(),
            method: PaymentMethod::Cash,
            designated_account: "6222 **** **** 0001".into(),
            fee: Fen(0),
            time: Some(self.now()),
            place: Some(fix_north(2_000, 10)),
            payer_signature: Some(sha256(b"payer signature png")),
        }
    }
}

/// The outcomes reported for `rule`, in order.
pub fn outcomes(violations: &[Violation], rule: RuleId) -> Vec<Outcome> {
    violations
        .iter()
        .filter(|v| v.rule == rule)
        .map(|v| v.outcome)
        .collect()
}

/// Asserts that `rule` gave `expected` (and no other outcome), or nothing when `None`.
#[track_caller]
pub fn assert_rule(
    scenario: &str,
    violations: &[Violation],
    rule: RuleId,
    expected: Option<Outcome>,
) {
    let found = outcomes(violations, rule);
    match expected {
        None => assert!(
            found.is_empty(),
            "{scenario}: expected no {rule} violation, got {violations:#?}"
        ),
        Some(outcome) => assert!(
            !found.is_empty() && found.iter().all(|o| *o == outcome),
            "{scenario}: expected {rule} {outcome:?}, got {violations:#?}"
        ),
    }
}
