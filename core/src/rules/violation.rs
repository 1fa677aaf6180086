//! What a rule check returns: typed violations naming the rule of DOMAIN.md.

use serde::{Deserialize, Serialize};

/// The id of a business rule; `docs/rules.md` says what each one requires, where it is
/// checked and what a violation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RuleId {
    /// The case is active: in its entrustment period, not settled, not on hold.
    V01,
    /// A visit happens only under a manager's server-signed approval.
    V02,
    /// Two different approved agents, each with their own phone, check in, out and seal together.
    V03,
    /// Visiting hours by the server-anchored clock in the policy's time zone.
    V04,
    /// Inside the geofence of an approved address, phones together, no mock location.
    V05,
    /// The bank's authorisation letter is valid.
    V06,
    /// Audio throughout, in chained segments; every gap logged with a reason.
    V07,
    /// No entering or interior photos without the occupant's recorded consent.
    V08,
    /// Identity confirmed before the debt is discussed; collection only from the debtor.
    V09,
    /// A denied card or disputed amount stops collection.
    V10,
    /// Illness or pregnancy flagged; the next visit needs a manager's review.
    V11,
    /// Only bank-approved templates, their version recorded.
    V12,
    /// No waiver, reinstatement or instalment promise without the bank's authorisation.
    V13,
    /// At most one visit per debtor per day.
    V14,
    /// The phone's wall clock agrees with the anchored time within the policy's tolerance.
    V15,
    /// Cash only under the approval's cash-collection authorisation.
    C01,
    /// Every payment gets a complete, co-signed receipt with a server-issued serial.
    C02,
    /// Cash deposited into the designated account by the deadline.
    C03,
    /// A visit is sealed into an immutable, co-signed bundle.
    E01,
    /// The server verifies before accepting; failures are quarantined, never dropped.
    E02,
    /// Sealed visits reach the server within the upload deadline.
    E03,
    /// Evidence kept for the retention period; legal hold; destruction certified.
    E04,
    /// A phone holds only its assigned cases, encrypted; media purged after the receipt.
    D01,
    /// No screenshots, sharing or export from the phone app.
    D02,
    /// Each user sees only the banks assigned to them.
    D03,
    /// Personal accounts, one session, password rotation, lockout, masked numbers.
    A01,
    /// Only the bank's registered agents and phones on an approved team.
    A02,
    /// Legal retrieval needs the legal role, a purpose, and an audit entry.
    A03,
    /// A complaint opens a 24-hour ticket and puts the case on hold.
    P01,
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What a violation does to the action (DOMAIN.md outcome letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// F: let it happen and flag it for review.
    Flag,
    /// W: warn the agent.
    Warn,
    /// B: refuse the action.
    Block,
}

/// One rule violated, with what it means for the action and a message for the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The rule.
    pub rule: RuleId,
    /// Block, warn or flag.
    pub outcome: Outcome,
    /// What is wrong and what to do, without personal data.
    pub message: String,
}

impl Violation {
    /// A blocking violation.
    pub fn block(rule: RuleId, message: impl Into<String>) -> Self {
        Self {
            rule,
            outcome: Outcome::Block,
            message: message.into(),
        }
    }

    /// A warning.
    pub fn warn(rule: RuleId, message: impl Into<String>) -> Self {
        Self {
            rule,
            outcome: Outcome::Warn,
            message: message.into(),
        }
    }

    /// A flag for review.
    pub fn flag(rule: RuleId, message: impl Into<String>) -> Self {
        Self {
            rule,
            outcome: Outcome::Flag,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.outcome {
            Outcome::Block => "blocked",
            Outcome::Warn => "warning",
            Outcome::Flag => "flagged",
        };
        write!(f, "{} {what}: {}", self.rule, self.message)
    }
}
