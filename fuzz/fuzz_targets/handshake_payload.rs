//! Arbitrary bytes into the handshake's frame assembler and payload parser: nothing may
//! panic; a payload that parses re-encodes to exactly its bytes; frames that assemble
//! came from the payload they yield.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_core::handshake::{FrameAssembler, FrameProgress, Message, from_frames, to_frames};

/// A payload that parses must be the one encoding of what it says.
fn check_payload(bytes: &[u8]) {
    if let Ok(message) = Message::decode(bytes) {
        let again = message.encode().expect("a parsed message re-encodes");
        assert_eq!(again, bytes, "accepted payload is not its own encoding");
    }
}

fuzz_target!(|data: &[u8]| {
    // The bytes as a scanned payload.
    check_payload(data);

    // The bytes as scanned frame texts, one per line.
    if let Ok(text) = std::str::from_utf8(data) {
        let mut assembler = FrameAssembler::new();
        for line in text.split('\n') {
            if let Ok(FrameProgress::Complete(payload)) = assembler.accept(line) {
                let frames = to_frames(&payload).expect("an assembled payload can be framed");
                assert!(frames.iter().any(|f| f == line), "frame not from its payload");
                check_payload(&payload);
            }
        }
    }

    // The bytes as a payload to show: framed, scanned backwards with repeats, it comes back.
    if let Ok(frames) = to_frames(data) {
        let scans: Vec<&String> = frames.iter().rev().chain(frames.iter().step_by(2)).collect();
        assert_eq!(from_frames(&scans).expect("own frames assemble"), data);
    }
});
