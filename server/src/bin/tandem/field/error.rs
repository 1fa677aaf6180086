//! What can stop a `tandem field` command, and the exit code each case gives.

use std::path::PathBuf;
use std::process::ExitCode;

use tandem_core::rules::{Outcome, RuleId};

/// Exit code: done.
pub const OK: u8 = 0;
/// Exit code: a business rule refused the action (the rule id is on stderr).
pub const REFUSED: u8 = 1;
/// Exit code: bad usage or input (flags, files, payloads).
pub const USAGE: u8 = 2;
/// Exit code: the phone cannot do it (not enrolled, no such visit, wrong state, a
/// handshake payload refused, local data).
pub const PHONE: u8 = 3;
/// Exit code: the server could not be reached or refused.
pub const SERVER: u8 = 4;
/// Exit code: no reply arrived in time.
pub const TIMEOUT: u8 = 5;

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES: &str = "Exit codes:
  0  done
  1  refused by a business rule (stderr names it: refused (V03): …)
  2  bad usage or input (flags, files, payloads)
  3  the phone cannot do it (not enrolled, no such visit, wrong state, handshake refused)
  4  the server could not be reached, refused, or quarantined a pushed visit
  5  no reply arrived before --timeout";

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    /// Core refused or failed.
    #[error(transparent)]
    Core(#[from] tandem_core::Error),
    /// Bad flags or input.
    #[error("{0}")]
    Usage(String),
    /// A file given on the command line could not be read or written.
    #[error("{action} {path}: {source}")]
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The phone folder is held by another command.
    #[error("{0}")]
    Busy(String),
    /// The server received sealed visits but quarantined them (E02): kept on the phone.
    #[error("the server quarantined {count} bundle(s) (E02): they stay on this phone for review")]
    Quarantined {
        /// How many in this push.
        count: u32,
    },
    /// The partner's reply did not arrive in time.
    #[error("no reply within {seconds} s: the challenge is abandoned (show it again)")]
    Timeout {
        /// The wait.
        seconds: u64,
    },
}

impl FieldError {
    /// A usage error with a message.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// The exit code of this error.
    pub fn exit_code(&self) -> u8 {
        use tandem_core::handshake::HandshakeError;
        match self {
            Self::Core(e) if e.blocking_rule().is_some() => REFUSED,
            Self::Core(tandem_core::Error::Sync(_)) | Self::Quarantined { .. } => SERVER,
            // What the user handed the phone is at fault: a file that is no usable photo or
            // recording, a challenge or reply that is not well-formed frames.
            Self::Core(
                tandem_core::Error::Photo(_)
                | tandem_core::Error::Audio(_)
                | tandem_core::Error::Handshake(
                    HandshakeError::Frame(_) | HandshakeError::Payload(_),
                ),
            ) => USAGE,
            Self::Core(_) | Self::Busy(_) => PHONE,
            Self::Usage(_) | Self::File { .. } => USAGE,
            Self::Timeout { .. } => TIMEOUT,
        }
    }

    /// The rule that refused the action, if one did.
    pub fn rule(&self) -> Option<RuleId> {
        match self {
            Self::Core(e) => e.blocking_rule(),
            _ => None,
        }
    }

    /// One readable line: `refused (V03): …` for a rule (core's bare reason, so the id
    /// is said once), else the error itself.
    pub fn line(&self) -> String {
        let Self::Core(core) = self else {
            return self.to_string().replace('\n', " ");
        };
        let text = match core.refusal() {
            Some((rule, reason)) => {
                let more = match core {
                    tandem_core::Error::Blocked { violations } => violations
                        .iter()
                        .filter(|v| v.outcome == Outcome::Block)
                        .count()
                        .saturating_sub(1),
                    _ => 0,
                };
                if more == 0 {
                    format!("refused ({rule}): {reason}")
                } else {
                    format!("refused ({rule}): {reason} (and {more} more)")
                }
            }
            None => self.to_string(),
        };
        text.replace('\n', " ")
    }

    /// Prints the line on stderr and gives the exit code.
    pub fn report(&self, hint: Option<&str>) -> ExitCode {
        match hint {
            Some(hint) => eprintln!("tandem field: {} ({hint})", self.line()),
            None => eprintln!("tandem field: {}", self.line()),
        }
        ExitCode::from(self.exit_code())
    }
}

/// Result of a field command.
pub type FieldResult<T> = Result<T, FieldError>;

#[cfg(test)]
mod tests {
    use tandem_core::handshake::{FrameError, HandshakeError};

    use super::*;

    #[test]
    fn a_refusal_names_its_rule_once() {
        let e = FieldError::Core(HandshakeError::SameAgent.into());
        let line = e.line();
        assert!(line.starts_with("refused (V03): "), "{line}");
        assert_eq!(line.matches("V03").count(), 1, "{line}");
        assert_eq!(e.exit_code(), REFUSED);
    }

    #[test]
    fn malformed_frames_and_unusable_photos_are_bad_input() {
        let frames = FieldError::Core(HandshakeError::Frame(FrameError::NotAFrame).into());
        assert_eq!(frames.exit_code(), USAGE);
        let heif = FieldError::Core(
            tandem_core::capture::photo::PhotoError::UnsupportedFormat {
                detected: tandem_core::capture::photo::DetectedFormat::Heif,
            }
            .into(),
        );
        assert_eq!(heif.exit_code(), USAGE);
        let state = FieldError::Core(tandem_core::Error::NotReady("x".into()));
        assert_eq!(state.exit_code(), PHONE);
    }
}
