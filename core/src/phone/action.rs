//! What the agent records by hand during the visit: the action, what it must carry to be
//! recorded, and the event and rule input it becomes (one conversion each, here).

use serde::{Deserialize, Serialize};

use super::Phone;
use crate::crypto::Digest;
use crate::model::{
    ConsentScope, DisputeKind, EventKind, Fen, HealthFlag, PersonMet, PromiseKind, TemplateId,
};
use crate::rules::ActionInput;
use crate::{Error, Result};

/// Longest note accepted, in characters: a note is a note, not a document.
const MAX_NOTE_CHARS: usize = 4_000;

/// Something recorded during the visit: each variant is named as the event it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum VisitAction {
    /// A typed note.
    Note {
        /// The text.
        text: String,
    },
    /// The occupant's consent (V08).
    Consent {
        /// To what.
        scope: ConsentScope,
    },
    /// Whose identity was confirmed (V09).
    IdentityConfirmed {
        /// Who.
        person: PersonMet,
    },
    /// A dispute: collection stops (V10).
    Dispute {
        /// What is disputed.
        kind: DisputeKind,
        /// Photo of the signed statement, captured first.
        statement: Option<Digest>,
        /// Photo of the ID card's front, captured first.
        id_front: Option<Digest>,
        /// Photo of the ID card's back, captured first.
        id_back: Option<Digest>,
    },
    /// Illness or pregnancy in the household (V11).
    #[serde(rename = "health_flag")]
    HealthFlagged {
        /// Which.
        flag: HealthFlag,
    },
    /// A bank template filled in (V12); the document was captured first.
    TemplateUsed {
        /// Template.
        template_id: TemplateId,
        /// Version.
        version: u32,
        /// The filled-in document's digest.
        document: Digest,
    },
    /// A promise to pay (V13).
    Promise {
        /// What kind.
        kind: PromiseKind,
        /// How much.
        amount: Fen,
        /// By when, UTC ms.
        due_ms: i64,
    },
    /// A complaint or complaint risk (P01).
    Complaint {
        /// What was said.
        note: String,
    },
}

/// The event an action records: the same variant, with the same fields.
impl From<VisitAction> for EventKind {
    fn from(action: VisitAction) -> Self {
        match action {
            VisitAction::Note { text } => EventKind::Note { text },
            VisitAction::Consent { scope } => EventKind::Consent { scope },
            VisitAction::IdentityConfirmed { person } => EventKind::IdentityConfirmed { person },
            VisitAction::Dispute {
                kind,
                statement,
                id_front,
                id_back,
            } => EventKind::Dispute {
                kind,
                statement,
                id_front,
                id_back,
            },
            VisitAction::HealthFlagged { flag } => EventKind::HealthFlagged { flag },
            VisitAction::TemplateUsed {
                template_id,
                version,
                document,
            } => EventKind::TemplateUsed {
                template_id,
                version,
                document,
            },
            VisitAction::Promise {
                kind,
                amount,
                due_ms,
            } => EventKind::Promise {
                kind,
                amount,
                due_ms,
            },
            VisitAction::Complaint { note } => EventKind::Complaint { note },
        }
    }
}

/// What the rules judge of an action: the same variant, with what the rules read of it.
impl From<&VisitAction> for ActionInput {
    fn from(action: &VisitAction) -> Self {
        match *action {
            VisitAction::Note { .. } => ActionInput::Note,
            VisitAction::Consent { scope } => ActionInput::Consent { scope },
            VisitAction::IdentityConfirmed { person } => ActionInput::IdentityConfirmed { person },
            VisitAction::Dispute { kind, .. } => ActionInput::Dispute { kind },
            VisitAction::HealthFlagged { flag } => ActionInput::HealthFlagged { flag },
            VisitAction::TemplateUsed {
                template_id,
                version,
                ..
            } => ActionInput::TemplateUsed {
                template_id,
                version,
            },
            VisitAction::Promise { kind, .. } => ActionInput::Promise { kind },
            VisitAction::Complaint { .. } => ActionInput::Complaint,
        }
    }
}

impl Phone {
    /// Refuses an action that cannot be recorded as given, before any rule is asked: an
    /// empty or overlong text, a document not captured first, a promise of nothing.
    pub(super) fn check_recordable(&self, action: &VisitAction) -> Result<()> {
        let require_blob = |d: &Option<Digest>| -> Result<()> {
            match d {
                Some(d) if !self.blobs.contains(d)? => Err(Error::NotFound {
                    what: format!("captured document {d}"),
                }),
                _ => Ok(()),
            }
        };
        match action {
            VisitAction::Note { text } => check_text("note", text),
            VisitAction::Dispute {
                statement,
                id_front,
                id_back,
                ..
            } => [statement, id_front, id_back]
                .into_iter()
                .try_for_each(require_blob),
            VisitAction::TemplateUsed { document, .. } => require_blob(&Some(*document)),
            VisitAction::Promise { amount, .. } if amount.0 <= 0 => {
                Err(Error::NotReady("a promise needs a positive amount".into()))
            }
            VisitAction::Complaint { note } => check_text("complaint", note),
            VisitAction::Consent { .. }
            | VisitAction::IdentityConfirmed { .. }
            | VisitAction::HealthFlagged { .. }
            | VisitAction::Promise { .. } => Ok(()),
        }
    }
}

fn check_text(what: &str, text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::NotReady(format!("an empty {what} is not recorded")));
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(Error::NotReady(format!(
            "a {what} is at most {MAX_NOTE_CHARS} characters"
        )));
    }
    Ok(())
}
