//! A visit on the phone and the states it moves through (DESIGN.md §4).

use serde::{Deserialize, Serialize};

use super::{AgentId, ApprovalId, CaseId, VisitId};

/// The lifecycle of a visit on the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitState {
    /// Signed approval and ticket held; nothing done yet.
    Assigned,
    /// Both agents checked in together.
    CheckedIn,
    /// Capturing evidence.
    Active,
    /// Both agents checked out together.
    CheckedOut,
    /// Sealed into a co-signed manifest: immutable.
    Sealed,
    /// Being uploaded.
    Uploading,
    /// The server's receipt was verified.
    Acknowledged,
    /// Local media deleted after the verified receipt (D01).
    Purged,
}

impl VisitState {
    /// Whether a visit may move from `self` to `next`.
    pub fn can_become(self, next: VisitState) -> bool {
        use VisitState::*;
        matches!(
            (self, next),
            (Assigned, CheckedIn)
                | (CheckedIn, Active)
                | (CheckedIn | Active, CheckedOut)
                | (CheckedOut, Sealed)
                | (Sealed, Uploading)
                | (Uploading, Uploading | Acknowledged)
                | (Acknowledged, Purged)
        )
    }

    /// Whether evidence may still be captured.
    pub fn is_capturing(self) -> bool {
        matches!(self, VisitState::CheckedIn | VisitState::Active)
    }

    /// Whether the visit is sealed (nothing in it can change any more).
    pub fn is_sealed(self) -> bool {
        matches!(
            self,
            VisitState::Sealed
                | VisitState::Uploading
                | VisitState::Acknowledged
                | VisitState::Purged
        )
    }

    /// The state's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            VisitState::Assigned => "assigned",
            VisitState::CheckedIn => "checked_in",
            VisitState::Active => "active",
            VisitState::CheckedOut => "checked_out",
            VisitState::Sealed => "sealed",
            VisitState::Uploading => "uploading",
            VisitState::Acknowledged => "acknowledged",
            VisitState::Purged => "purged",
        }
    }
}

impl std::str::FromStr for VisitState {
    type Err = super::ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use VisitState::*;
        [
            Assigned,
            CheckedIn,
            Active,
            CheckedOut,
            Sealed,
            Uploading,
            Acknowledged,
            Purged,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| super::ModelError::Invalid {
            field: "visit_state",
            reason: format!("unknown state {s:?}"),
        })
    }
}

/// A visit as the phone tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// Visit id (from the server's ticket).
    pub id: VisitId,
    /// The approval it runs under.
    pub approval_id: ApprovalId,
    /// The case.
    pub case_id: CaseId,
    /// The agent using this phone.
    pub agent_id: AgentId,
    /// Where it stands.
    pub state: VisitState,
    /// Anchored time of check-in.
    pub checked_in_at_ms: Option<i64>,
    /// Anchored time of check-out.
    pub checked_out_at_ms: Option<i64>,
    /// Anchored time of sealing (E03 counts from here).
    pub sealed_at_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::VisitState::*;

    #[test]
    fn a_visit_moves_only_forward_along_its_lifecycle() {
        assert!(Assigned.can_become(CheckedIn));
        assert!(CheckedIn.can_become(CheckedOut));
        assert!(!Assigned.can_become(Sealed));
        assert!(!Sealed.can_become(Active));
        assert!(!Purged.can_become(Assigned));
        for s in [
            Assigned,
            CheckedIn,
            Active,
            CheckedOut,
            Sealed,
            Uploading,
            Acknowledged,
            Purged,
        ] {
            assert_eq!(s.as_str().parse::<super::VisitState>().unwrap(), s);
        }
    }
}
