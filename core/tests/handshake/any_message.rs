//! Any message survives encode → frames (shuffled, repeated) → scan → decode.

use super::*;

fn e7(max: i32) -> impl Strategy<Value = i32> {
    -max..=max
}

fn any_fix() -> impl Strategy<Value = Fix> {
    (
        e7(900_000_000),
        e7(1_800_000_000),
        prop::sample::select(vec![Datum::Wgs84, Datum::Gcj02, Datum::Bd09]),
        any::<u32>(),
        prop::sample::select(vec![
            Provider::Gnss,
            Provider::Network,
            Provider::Fused,
            Provider::Manual,
            Provider::Other,
        ]),
        any::<bool>(),
        any::<i64>(),
    )
        .prop_map(
            |(lat, lon, datum, accuracy_m, provider, mock, taken_at_ms)| Fix {
                coordinate: Coordinate::new(lat, lon, datum).unwrap(),
                accuracy_m,
                provider,
                mock,
                taken_at_ms,
            },
        )
}

fn any_time() -> impl Strategy<Value = EventTime> {
    (any::<i64>(), any::<Option<i64>>(), any::<Option<i64>>()).prop_map(
        |(wall_ms, anchor_ms, since_anchor_ms)| EventTime {
            wall_ms,
            anchor_ms,
            since_anchor_ms,
        },
    )
}

fn any_party() -> impl Strategy<Value = Party> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
        any::<bool>(),
    )
        .prop_map(|(a, d, k, p256)| Party {
            agent_id: AgentId(uuid::Uuid::from_bytes(a)),
            device_id: DeviceId(uuid::Uuid::from_bytes(d)),
            kid: tandem_core::crypto::Kid(Digest(k)),
            alg: if p256 {
                SignatureAlgorithm::EcdsaP256Sha256
            } else {
                SignatureAlgorithm::Ed25519
            },
        })
}

fn sig() -> impl Strategy<Value = [u8; 64]> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        s
    })
}

fn any_message() -> impl Strategy<Value = Message> {
    let purpose = prop::sample::select(Purpose::ALL.to_vec());
    let challenge = (
        (
            purpose.clone(),
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            any_party(),
        ),
        (
            any_fix(),
            any_time(),
            any::<[u8; 16]>(),
            any::<i64>(),
            any::<[u8; 32]>(),
        ),
        (prop::collection::vec(any::<u8>(), 0..8_192), sig(), sig()),
    )
        .prop_map(|((p, v, a, lead), (f, t, n, e, d), (s, ss, cs))| {
            Message::Challenge(Challenge {
                purpose: p,
                visit_id: VisitId(uuid::Uuid::from_bytes(v)),
                approval_digest: Digest(a),
                lead,
                lead_fix: f,
                lead_time: t,
                nonce: Nonce(n),
                expires_at_ms: e,
                statement_digest: Digest(d),
                statement: s,
                lead_statement_sig: ss,
                signature: cs,
            })
        });
    let reply = (
        (
            purpose,
            any::<[u8; 16]>(),
            any_party(),
            any_fix(),
            any_time(),
        ),
        (
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            sig(),
            sig(),
        ),
    )
        .prop_map(|((p, v, partner, f, t), (n, d, cd, ss, rs))| {
            Message::Reply(Reply {
                purpose: p,
                visit_id: VisitId(uuid::Uuid::from_bytes(v)),
                partner,
                partner_fix: f,
                partner_time: t,
                nonce: Nonce(n),
                statement_digest: Digest(d),
                challenge_digest: Digest(cd),
                partner_statement_sig: ss,
                signature: rs,
            })
        });
    prop_oneof![3 => challenge, 1 => reply]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_message_survives_frames_scanned_in_any_order_with_repeats(
        message in any_message(),
        order in prop::collection::vec(any::<u16>(), 0..40),
    ) {
        let payload = message.encode().unwrap();
        let frames = to_frames(&payload).unwrap();
        // Every frame once in a shuffled order, with repeats of random frames mixed in.
        let mut scans: Vec<(u16, &String)> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| (order.get(i).copied().unwrap_or(i as u16), f))
            .collect();
        for (i, key) in order.iter().enumerate() {
            scans.push((key.rotate_left(3), &frames[i % frames.len()]));
        }
        scans.sort_by_key(|(key, _)| *key);
        let texts: Vec<&String> = scans.into_iter().map(|(_, f)| f).collect();
        let assembled = from_frames(&texts).unwrap();
        prop_assert_eq!(&assembled, &payload);
        prop_assert_eq!(Message::decode(&assembled).unwrap(), message);
    }
}
