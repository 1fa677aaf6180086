//! What a command prints: one result on stdout (text for people, JSON for scripts), warnings
//! and flags on stderr, nothing of the debtor beyond what the phone's screen would show.

use std::io::Write as _;

use serde_json::{Value, json};
use tandem_core::model::{EventKind, Fen};
use tandem_core::phone::Recorded;
use tandem_core::rules::{Outcome, Violation};

use super::error::{FieldError, FieldResult};

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// JSON instead of text.
    pub json: bool,
    /// No warnings or progress on stderr.
    pub quiet: bool,
}

impl Out {
    /// Prints the result: `text` for people, `value` with `--json`.
    pub fn result(&self, text: &str, value: &Value) -> FieldResult<()> {
        let line = if self.json {
            serde_json::to_string(value)
                .map_err(|e| FieldError::usage(format!("cannot encode the result: {e}")))?
        } else {
            text.trim_end().to_owned()
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").map_err(|source| FieldError::File {
            action: "write",
            path: "<stdout>".into(),
            source,
        })
    }

    /// Shows warnings and flags on stderr (the JSON result carries them too).
    pub fn violations(&self, violations: &[Violation]) {
        if self.quiet {
            return;
        }
        for v in violations {
            eprintln!("{}", violation_line(v));
        }
    }

    /// A note for the person at the terminal, on stderr.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }
}

/// `warning (V07): …`, `flagged (V08): …`, `blocked (V04): …`.
pub fn violation_line(v: &Violation) -> String {
    let what = match v.outcome {
        Outcome::Block => "blocked",
        Outcome::Warn => "warning",
        Outcome::Flag => "flagged",
    };
    format!("{what} ({}): {}", v.rule, v.message)
}

/// Violations as JSON objects.
pub fn violations_json(violations: &[Violation]) -> Value {
    serde_json::to_value(violations).unwrap_or(Value::Null)
}

/// The event type's name as stored (`checked_in`, `photo`, …).
pub fn event_type(kind: &EventKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "event".to_owned())
}

/// What an accepted action recorded, as JSON.
pub fn recorded_json(recorded: &Recorded) -> Value {
    json!({
        "visit_id": recorded.event.visit_id.to_string(),
        "seq": recorded.event.seq,
        "type": event_type(&recorded.event.kind),
        "violations": violations_json(&recorded.violations),
    })
}

/// An amount in yuan for people: `1,200.00 yuan`.
pub fn yuan(amount: Fen) -> String {
    let sign = if amount.0 < 0 { "-" } else { "" };
    format!("{sign}{} yuan", amount.grouped_abs())
}

/// A UTC ms time for people, in UTC (the policy's zone is core's business).
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Bytes for people.
pub fn bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    match n {
        n if n >= KIB * KIB => format!("{:.1} MiB", n as f64 / (KIB * KIB) as f64),
        n if n >= KIB => format!("{:.1} KiB", n as f64 / KIB as f64),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_yuan_with_thousands_separators() {
        assert_eq!(yuan(Fen(120_000)), "1,200.00 yuan");
        assert_eq!(yuan(Fen(5)), "0.05 yuan");
        assert_eq!(yuan(Fen(123_456_789)), "1,234,567.89 yuan");
        assert_eq!(yuan(Fen(-250)), "-2.50 yuan");
    }
}
