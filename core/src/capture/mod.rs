//! Evidence capture: photos, audio, notes.

pub mod photo;
