//! Tandem's phone core: works with no network at all.
//!
//! Visits and their rules, the encrypted device store, evidence capture (photos, audio,
//! notes) and the hash-chained event log. Nothing here is async, and nothing depends on
//! HTTP, UI or platform APIs: platform services come in through small traits.

pub mod blobs;
pub mod bundle;
pub mod canonical;
pub mod capture;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod handshake;
pub mod model;
pub mod phone;
pub mod place;
pub mod receipts;
pub mod rules;
pub mod store;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod tlog;

pub use error::{Error, Result};
