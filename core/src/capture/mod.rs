//! Evidence capture: photos, audio, notes.
