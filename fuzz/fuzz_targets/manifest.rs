//! Arbitrary bytes into `Manifest::parse`: it must never panic, and whatever it accepts
//! must re-encode to exactly the input bytes (the bytes the agents signed).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_core::bundle::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::parse(data) {
        let again = manifest
            .to_canonical_bytes()
            .expect("an accepted manifest re-encodes");
        assert_eq!(again, data, "accepted bytes are not their own canonical form");
    }
});
