//! Evidence capture: photos, audio, notes.

pub mod audio;
pub mod photo;
