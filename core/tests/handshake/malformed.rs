//! Malformed payloads and frames: each refused with its own reason, none panics.

use super::*;

#[test]
fn malformed_payloads_are_refused_with_the_reason() {
    let scene = Scene::new();
    let (out, reply) = scene.replied();
    let good = out.payload().to_vec();
    let mut v2 = good.clone();
    v2[0] = 2;
    assert_eq!(
        Challenge::decode(&v2),
        Err(PayloadError::UnknownVersion { found: 2 })
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        Challenge::decode(&trailing),
        Err(PayloadError::TrailingBytes { count: 1 })
    );
    assert_eq!(
        Challenge::decode(&good[..good.len() - 1]),
        Err(PayloadError::Truncated {
            field: "challenge signature"
        })
    );
    assert_eq!(
        Challenge::decode(&[]),
        Err(PayloadError::Truncated { field: "version" })
    );
    let mut kind = good.clone();
    kind[1] = 9;
    assert_eq!(
        Challenge::decode(&kind),
        Err(PayloadError::UnknownMessageType { found: 9 })
    );
    assert_eq!(
        Challenge::decode(&reply),
        Err(PayloadError::WrongMessageType {
            expected: "challenge",
            found: "reply"
        })
    );
    let mut purpose = good.clone();
    purpose[2] = 0;
    assert!(matches!(
        Challenge::decode(&purpose),
        Err(PayloadError::InvalidField {
            field: "purpose",
            ..
        })
    ));
    // A declared statement length over the limit is refused before anything is allocated.
    let huge = Challenge::decode(&good).unwrap();
    let len_at = good.len() - 64 - 64 - huge.statement.len() - 4;
    let mut big = good.clone();
    big[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Challenge::decode(&big),
        Err(PayloadError::StatementTooLarge { .. })
    ));
    // Through the partner's check the same refusal is a typed handshake error.
    let err = scene.partner_checks(&trailing).unwrap_err();
    assert!(matches!(
        err,
        HandshakeError::Payload(PayloadError::TrailingBytes { count: 1 })
    ));
    assert_eq!(err.rule(), None);
}

#[test]
fn frames_of_another_message_inconsistent_counts_and_conflicts_are_refused() {
    let a = to_frames(&[7u8; 2_000]).unwrap();
    let b = to_frames(&[8u8; 2_000]).unwrap();
    assert_eq!(a.len(), 4);
    let mut asm = FrameAssembler::new();
    assert_eq!(
        asm.accept(&a[2]),
        Ok(FrameProgress::Incomplete {
            received: 1,
            total: 4
        })
    );
    assert_eq!(
        asm.accept(&a[2]),
        Ok(FrameProgress::Incomplete {
            received: 1,
            total: 4
        })
    );
    assert!(matches!(
        asm.accept(&b[0]),
        Err(FrameError::OtherMessage { .. })
    ));
    // Same message id with a different count.
    let recount = a[0].replacen("/1/4/", "/1/5/", 1);
    assert_eq!(
        asm.accept(&recount),
        Err(FrameError::InconsistentCount {
            expected: 4,
            found: 5
        })
    );
    // Same index, different chunk (first payload byte changed from 7 to 9).
    let chunk = a[0].splitn(5, '/').nth(4).unwrap();
    let mut other = vec![7u8; 660];
    other[0] = 9;
    let conflicting = a[0].replace(chunk, &base45::encode(&other));
    asm.accept(&a[0]).unwrap();
    assert_eq!(
        asm.accept(&conflicting),
        Err(FrameError::ConflictingDuplicate { index: 1 })
    );
    asm.accept(&a[1]).unwrap();
    assert_eq!(asm.progress(), (3, 4));
    assert_eq!(
        asm.accept(&a[3]),
        Ok(FrameProgress::Complete(vec![7u8; 2_000]))
    );
    // A full set whose chunks were swapped for other bytes does not match its message id.
    let mut forged = a.clone();
    forged[0] = conflicting;
    assert!(matches!(
        from_frames(&forged),
        Err(FrameError::MessageIdMismatch { .. })
    ));
    assert_eq!(
        from_frames(&a[..3]),
        Err(FrameError::Incomplete {
            received: 3,
            total: 4
        })
    );
}

#[test]
fn a_scanning_screen_starts_over_with_the_newest_message() {
    let old = to_frames(&[7u8; 2_000]).unwrap();
    let new = to_frames(&[8u8; 1_000]).unwrap();
    let mut asm = FrameAssembler::new();
    asm.scan(&old[0]).unwrap();
    asm.scan(&old[1]).unwrap();
    assert!(matches!(
        asm.scan("https://example.com"),
        Err(FrameError::NotAFrame)
    ));
    assert_eq!(asm.progress(), (2, 4), "a foreign code changes nothing");
    asm.scan(&new[1]).unwrap();
    assert_eq!(asm.progress(), (1, 2), "a newer message starts over");
    assert_eq!(
        asm.scan(&new[0]),
        Ok(FrameProgress::Complete(vec![8u8; 1_000]))
    );
}

#[test]
fn malformed_frames_are_refused_with_the_reason() {
    let frames = to_frames(b"hello tandem").unwrap();
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(
        FrameAssembler::new().accept("https://example.com"),
        Err(FrameError::NotAFrame)
    );
    assert_eq!(
        FrameAssembler::new().accept(&f.replacen("TH1/", "TH2/", 1)),
        Err(FrameError::UnknownFrameVersion {
            found: "TH2".into()
        })
    );
    let long = format!("{f}{}", "0".repeat(2_000));
    assert!(matches!(
        FrameAssembler::new().accept(&long),
        Err(FrameError::FrameTooLong { .. })
    ));
    for bad in [
        f.replacen("/1/1/", "/01/1/", 1),
        f.replacen("/1/1/", "/2/1/", 1),
        f.replacen("/1/1/", "/1/513/", 1),
        f.replacen(&f[4..20], &f[4..20].to_lowercase(), 1),
        "TH1/0123456789ABCDEF/1".to_owned(),
    ] {
        assert!(
            matches!(
                FrameAssembler::new().accept(&bad),
                Err(FrameError::BadHeader { .. })
            ),
            "{bad}"
        );
    }
    // `GGW` is 65,535+ in base45, and `ZZ` a final pair beyond one byte: not canonical.
    let prefix = &f[..f.rfind('/').unwrap() + 1];
    for chunk in ["GGW", "ZZ", "a"] {
        assert_eq!(
            FrameAssembler::new().accept(&format!("{prefix}{chunk}")),
            Err(FrameError::BadChunk { index: 1 })
        );
    }
    // A middle frame must carry a full chunk.
    let short = to_frames(&[1u8; 700]).unwrap()[1].replacen("/2/2/", "/1/2/", 1);
    assert!(matches!(
        FrameAssembler::new().accept(&short),
        Err(FrameError::ChunkSize {
            index: 1,
            total: 2,
            len: 40
        })
    ));
    assert!(matches!(
        to_frames(&vec![0u8; 660 * 512 + 1]),
        Err(FrameError::TooManyFrames { .. })
    ));
    let err = HandshakeError::from(FrameError::NotAFrame);
    assert_eq!(err.rule(), None);
}

#[test]
fn frames_stay_within_one_kilobyte_of_qr_alphanumeric_characters() {
    assert_eq!(tandem_core::handshake::MAX_FRAME_CHARS, 1_019);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5_000).collect();
    let frames = to_frames(&bytes).unwrap();
    assert_eq!(frames.len(), 8);
    for frame in &frames {
        assert!(frame.len() <= 1_019, "{}", frame.len());
        assert!(
            frame
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || " $%*+-./:".contains(c)),
            "{frame}"
        );
    }
    assert_eq!(from_frames(&frames).unwrap(), bytes);
}
