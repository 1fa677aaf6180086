//! What a rule check returns: typed violations naming the rule of DOMAIN.md.

use serde::{Deserialize, Serialize};

/// The id of a business rule in DOMAIN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(missing_docs)] // Each variant is the rule of the same id in DOMAIN.md.
pub enum RuleId {
    V01,
    V02,
    V03,
    V04,
    V05,
    V06,
    V07,
    V08,
    V09,
    V10,
    V11,
    V12,
    V13,
    V14,
    V15,
    C01,
    C02,
    C03,
    E01,
    E02,
    E03,
    E04,
    D01,
    D02,
    D03,
    A01,
    A02,
    A03,
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
