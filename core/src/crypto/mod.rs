//! Cryptography, all from ring.
