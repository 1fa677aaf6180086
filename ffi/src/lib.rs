//! Tandem for the phone shells: a UniFFI facade over `tandem-core`.
//!
//! Kotlin (package `tandem`), Swift and Python (module `tandem`) bindings are generated from
//! the built library by the `uniffi-bindgen` binary of this crate (see the README,
//! "Bindings"). Every exported object wraps a core object and delegates one call at a
//! time: the rules, the store and the evidence live in core, never here. Platform
//! services (clock, location, key store, hardware signer) come in as foreign traits.

uniffi::setup_scaffolding!("tandem");

mod error;
mod frames;
mod phone;
mod platform;
mod records;
mod sync;

pub use error::TandemError;
pub use frames::{FrameAssembler, FrameProgress};
pub use phone::{ChallengeReview, PhoneConfig, TandemPhone};
pub use platform::{
    Clock, DevicePublicKey, KeyStore, LocationFix, LocationSource, Signer, SyncProgress,
    software_key_store, system_clock,
};
pub use records::*;
pub use sync::{CancelToken, PullReport, PushReport, Server, SyncRound, SyncState};
