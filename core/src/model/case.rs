//! Cases, debtors and approved addresses. Card and ID numbers exist here only masked.

use serde::{Deserialize, Serialize};

use super::{AddressId, BankId, CaseId, Fen, ModelError};
use crate::place::Coordinate;

/// A card number with all but its last four digits hidden: `**** **** **** 1234`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MaskedCardNumber(String);

impl MaskedCardNumber {
    /// Masks a full card number (12–19 digits, spaces and dashes ignored).
    pub fn mask(full: &str) -> Result<Self, ModelError> {
        let digits: String = full.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ModelError::Invalid {
                field: "card_number",
                reason: "a card number has 12 to 19 digits".into(),
            });
        }
        Ok(Self(format!(
            "**** **** **** {}",
            &digits[digits.len() - 4..]
        )))
    }

    /// The last four digits.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// The masked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MaskedCardNumber {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        let ok = s.len() == 19
            && s.starts_with("**** **** **** ")
            && s.bytes().skip(15).all(|b| b.is_ascii_digit());
        if ok {
            Ok(Self(s))
        } else {
            Err(ModelError::Invalid {
                field: "card_number",
                reason: "must be masked as **** **** **** 1234".into(),
            })
        }
    }
}

impl From<MaskedCardNumber> for String {
    fn from(m: MaskedCardNumber) -> String {
        m.0
    }
}

/// An identity-card number with all but its last four characters hidden.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MaskedIdNumber(String);

impl MaskedIdNumber {
    /// Masks a full ID number (15 or 18 characters; the last may be X).
    pub fn mask(full: &str) -> Result<Self, ModelError> {
        let full = full.trim();
        let valid = matches!(full.len(), 15 | 18)
            && full.char_indices().all(|(i, c)| {
                c.is_ascii_digit() || (i == full.len() - 1 && matches!(c, 'x' | 'X'))
            });
        if !valid {
            return Err(ModelError::Invalid {
                field: "id_number",
                reason: "an ID number has 15 or 18 characters".into(),
            });
        }
        let tail = &full[full.len() - 4..];
        Ok(Self(format!(
            "{}{}",
            "*".repeat(full.len() - 4),
            tail.to_ascii_uppercase()
        )))
    }

    /// The masked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MaskedIdNumber {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        let stars = s.len().saturating_sub(4);
        let ok = matches!(s.len(), 15 | 18)
            && s.bytes().take(stars).all(|b| b == b'*')
            && s.bytes()
                .skip(stars)
                .all(|b| b.is_ascii_digit() || b == b'X');
        if ok {
            Ok(Self(s))
        } else {
            Err(ModelError::Invalid {
                field: "id_number",
                reason: "must be masked, showing only the last four characters".into(),
            })
        }
    }
}

impl From<MaskedIdNumber> for String {
    fn from(m: MaskedIdNumber) -> String {
        m.0
    }
}

/// The card holder. Every field is personal data: encrypted at rest, never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debtor {
    /// Full name.
    pub name: String,
    /// Masked ID number.
    pub id_number: MaskedIdNumber,
    /// Contact phone, if the bank gave one.
    pub phone: Option<String>,
}

impl std::fmt::Debug for Debtor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Debug output ends up in logs and panics: never show personal data there.
        f.write_str("Debtor { .. }")
    }
}

/// An address the bank gave for the case, geocoded (in whatever datum its geocoder used).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedAddress {
    /// Address id.
    pub id: AddressId,
    /// The address text (personal data).
    pub text: String,
    /// Where it is.
    pub position: Coordinate,
}

impl std::fmt::Debug for ApprovedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovedAddress")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a case is on hold (V01): no visit and no collection while it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// The debtor disputes the card or the amount (V10).
    Dispute,
    /// A complaint was made (P01).
    Complaint,
    /// The debtor's vulnerability is under review.
    VulnerabilityReview,
}

/// Where a case stands with the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CaseStatus {
    /// Workable.
    Active,
    /// Paid off or closed by the bank.
    Settled,
    /// Paused.
    OnHold {
        /// Why.
        reason: HoldReason,
    },
}

/// The bank's entrustment period, with an approved extension (留案) if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entrustment {
    /// Start, UTC ms.
    pub start_ms: i64,
    /// End, UTC ms (exclusive).
    pub end_ms: i64,
    /// End of an approved extension, UTC ms (exclusive).
    pub extended_until_ms: Option<i64>,
}

impl Entrustment {
    /// Whether the case is entrusted at `at_ms`.
    pub fn covers(&self, at_ms: i64) -> bool {
        let end = self
            .extended_until_ms
            .map_or(self.end_ms, |e| e.max(self.end_ms));
        self.start_ms <= at_ms && at_ms < end
    }
}

/// A household circumstance that makes the next visit need a manager's review (V11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthFlag {
    /// Serious illness in the household.
    SeriousIllness,
    /// Pregnancy in the household.
    Pregnancy,
}

/// A case as the phone holds it for an assigned visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Case id.
    pub id: CaseId,
    /// The bank that entrusted it.
    pub bank_id: BankId,
    /// The bank's own case reference.
    pub case_ref: String,
    /// The card, masked.
    pub card: MaskedCardNumber,
    /// The card holder (personal data).
    pub debtor: Debtor,
    /// Approved addresses.
    pub addresses: Vec<ApprovedAddress>,
    /// Entrustment period.
    pub entrustment: Entrustment,
    /// Status.
    pub status: CaseStatus,
    /// Amount in arrears.
    pub outstanding: Fen,
    /// Set when an earlier visit recorded illness or pregnancy (V11).
    pub health_flag: Option<HealthFlag>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_and_id_numbers_keep_only_their_last_four() {
        let card = MaskedCardNumber::mask("6222 0212 3456 7890").unwrap();
        assert_eq!(card.as_str(), "**** **** **** 7890");
        assert_eq!(card.last4(), "7890");
        let id = MaskedIdNumber::mask("11010519491231002x").unwrap();
        assert_eq!(id.as_str(), "**************002X");
        assert!(MaskedCardNumber::mask("1234").is_err());
        assert!(MaskedIdNumber::mask("11010519491231002Y").is_err());
    }

    #[test]
    fn an_unmasked_number_cannot_be_deserialized_as_masked() {
        assert!(serde_json::from_str::<MaskedCardNumber>("\"6222021234567890\"").is_err());
        assert!(serde_json::from_str::<MaskedIdNumber>("\"110105194912310021\"").is_err());
        assert!(serde_json::from_str::<MaskedCardNumber>("\"**** **** **** 7890\"").is_ok());
    }

    #[test]
    fn debug_output_shows_no_personal_data() {
        let d = Debtor {
            name: "张三".into(),
            id_number: MaskedIdNumber::mask("110105194912310021").unwrap(),
            phone: Some("13800000000".into()),
        };
        let shown = format!("{d:?}");
        assert!(!shown.contains("张三") && !shown.contains("138"));
    }

    #[test]
    fn an_extension_lengthens_the_entrustment() {
        let e = Entrustment {
            start_ms: 0,
            end_ms: 100,
            extended_until_ms: Some(200),
        };
        assert!(e.covers(150));
        assert!(!e.covers(200));
        assert!(
            !Entrustment {
                extended_until_ms: None,
                ..e
            }
            .covers(150)
        );
    }
}
