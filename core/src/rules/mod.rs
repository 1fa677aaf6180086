//! The rules engine: every rule of DOMAIN.md a phone can decide, at the visit's transitions.

mod violation;

pub use violation::{Outcome, RuleId, Violation};
