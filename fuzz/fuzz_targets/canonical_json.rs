//! Arbitrary bytes into the strict canonical JSON parser: it must never panic, and
//! whatever it accepts must re-encode to exactly the input bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_core::canonical::{parse_canonical, to_canonical_vec};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = parse_canonical(data) {
        let again = to_canonical_vec(&value).expect("an accepted document re-encodes");
        assert_eq!(again, data, "accepted bytes are not their own canonical form");
    }
});
