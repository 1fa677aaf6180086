//! Encrypted, content-addressed blob store.
