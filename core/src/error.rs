//! The one internal error type of core.

/// Everything that can go wrong inside core, with enough context to act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed on a named path.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result with core's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
