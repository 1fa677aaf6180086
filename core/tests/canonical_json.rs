//! Canonical JSON (RFC 8785, integers only): what gets signed, and what a verifier refuses.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tandem_core::canonical::{
    CanonicalError, CanonicalValue, MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_SAFE_INTEGER, ObjectKey,
    canonical_sha256, from_canonical_slice, parse_canonical, to_canonical_vec,
};
use unicode_normalization::UnicodeNormalization;

fn encode<T: Serialize + ?Sized>(value: &T) -> String {
    String::from_utf8(to_canonical_vec(value).expect("encodes")).expect("canonical bytes are UTF-8")
}

fn parse(text: &str) -> Result<CanonicalValue, CanonicalError> {
    parse_canonical(text.as_bytes())
}

fn path_of(error: &CanonicalError) -> String {
    use CanonicalError::*;
    match error {
        DuplicateKey { path }
        | Float { path }
        | NegativeZero { path }
        | IntegerOutOfRange { path }
        | NotNfcString { path }
        | NotNfcKey { path }
        | TooDeep { path, .. }
        | UnsupportedKey { path }
        | Serialize { path, .. } => path.to_string(),
        other => panic!("{other:?} has no path"),
    }
}

// ---- RFC 8785's own examples (the ones without floats) ----

/// RFC 8785 §3.2.3: the property sorting example, in its expected order.
const RFC_SORTED_KEYS: [&str; 7] = [
    "\r",
    "1",
    "\u{0080}",
    "\u{00f6}",
    "\u{20ac}",
    "\u{1f600}",
    "\u{fb33}",
];

#[test]
fn rfc8785_sorting_example_orders_keys_by_utf16_code_units() {
    let shuffled = [
        "\u{20ac}",
        "\r",
        "\u{fb33}",
        "1",
        "\u{1f600}",
        "\u{0080}",
        "\u{00f6}",
    ];
    let mut keys: Vec<ObjectKey> = shuffled.iter().map(|k| ObjectKey::from(*k)).collect();
    keys.sort();
    let sorted: Vec<&str> = keys.iter().map(ObjectKey::as_str).collect();
    assert_eq!(sorted, RFC_SORTED_KEYS);

    // Rust's own string order gets the last two the wrong way round.
    let mut by_utf8 = shuffled;
    by_utf8.sort();
    assert_eq!(&by_utf8[5..], ["\u{fb33}", "\u{1f600}"]);
}

#[test]
fn rfc8785_sorting_example_key_u_fb33_is_refused_because_it_is_not_nfc() {
    // U+FB33 is a composition exclusion: NFC turns it into U+05D3 U+05BC. Tandem signs
    // only NFC text, so the RFC's document as written cannot be signed here.
    let doc: BTreeMap<&str, &str> = RFC_SORTED_KEYS.iter().map(|k| (*k, "x")).collect();
    let err = to_canonical_vec(&doc).unwrap_err();
    assert!(matches!(err, CanonicalError::NotNfcKey { .. }), "{err:?}");
    assert_eq!(path_of(&err), "$[\"\u{fb33}\"]");
}

#[test]
fn rfc8785_sorting_example_with_an_nfc_key_in_its_place_encodes_in_utf16_order() {
    // U+FF21 (fullwidth A) sits in the same U+E000..U+FFFF range as U+FB33 and is NFC.
    let doc: HashMap<&str, &str> = [
        ("\u{20ac}", "Euro Sign"),
        ("\r", "Carriage Return"),
        ("\u{ff21}", "Fullwidth A"),
        ("1", "One"),
        ("\u{1f600}", "Emoji: Grinning Face"),
        ("\u{0080}", "Control"),
        ("\u{00f6}", "Latin Small Letter O With Diaeresis"),
    ]
    .into_iter()
    .collect();
    let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{0080}\":\"Control\",\
        \"\u{00f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
        \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{ff21}\":\"Fullwidth A\"}";
    assert_eq!(encode(&doc), expected);
    assert!(parse(expected).is_ok());
}

#[test]
fn rfc8785_string_example_escapes_as_ecmascript_does() {
    // RFC 8785 §3.2.2.2's "string" property, decoded.
    let s = "\u{20ac}$\u{000f}\nA'B\"\\\\\"/";
    assert_eq!(encode(s), "\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"");
}

#[test]
fn rfc8785_input_form_of_the_string_example_is_valid_json_but_not_canonical() {
    let input = r#"{"literals":[null,true,false],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"}"#;
    let escape_at = input.find("\\u20ac").expect("escape present");
    assert_eq!(
        parse(input),
        Err(CanonicalError::NotCanonical { offset: escape_at })
    );
    let canonical =
        "{\"literals\":[null,true,false],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    let value = parse(canonical).expect("canonical form parses");
    assert_eq!(encode(&value), canonical);
}

#[test]
fn every_control_character_is_escaped_and_nothing_else_is() {
    for c in 0u8..0x20 {
        let expected = match c {
            0x08 => "\"\\b\"".to_owned(),
            0x09 => "\"\\t\"".to_owned(),
            0x0a => "\"\\n\"".to_owned(),
            0x0c => "\"\\f\"".to_owned(),
            0x0d => "\"\\r\"".to_owned(),
            _ => format!("\"\\u{c:04x}\""),
        };
        let text = char::from(c).to_string();
        assert_eq!(encode(&text), expected, "control {c:#04x}");
        assert_eq!(parse(&expected), Ok(CanonicalValue::String(text)));
    }
    // DEL, C1 controls, U+2028 and astral characters stay literal, as in JSON.stringify.
    let literal = "\u{7f}\u{85}\u{2028}\u{1f600}/<>";
    assert_eq!(encode(literal), format!("\"{literal}\""));
}

// ---- What a verifier refuses, each with its own error ----

#[test]
fn byte_order_mark_is_refused() {
    assert_eq!(
        parse_canonical(b"\xEF\xBB\xBF{}"),
        Err(CanonicalError::ByteOrderMark)
    );
}

#[test]
fn invalid_utf8_is_refused_at_its_offset() {
    assert_eq!(
        parse_canonical(b"{\"a\":\"\xC3\x28\"}"),
        Err(CanonicalError::InvalidUtf8 { offset: 6 })
    );
}

#[test]
fn duplicate_keys_are_refused_with_their_path() {
    let err = parse(r#"{"visit":{"seq":1,"seq":2}}"#).unwrap_err();
    assert!(
        matches!(err, CanonicalError::DuplicateKey { .. }),
        "{err:?}"
    );
    assert_eq!(path_of(&err), "$.visit.seq");
}

#[test]
fn fractions_and_exponents_are_refused_as_floats() {
    for (doc, path) in [
        (r#"{"amount":1.0}"#, "$.amount"),
        (r#"{"amount":1e3}"#, "$.amount"),
        (r#"{"amount":1E3}"#, "$.amount"),
        (r#"{"amount":-2.5e-3}"#, "$.amount"),
        ("{\n  \"amount\": [1,\n 2.0]}", "$.amount[1]"),
    ] {
        let err = parse(doc).unwrap_err();
        assert!(
            matches!(err, CanonicalError::Float { .. }),
            "{doc}: {err:?}"
        );
        assert_eq!(path_of(&err), path, "{doc}");
    }
}

#[test]
fn negative_zero_is_refused() {
    let err = parse(r#"[0,-0]"#).unwrap_err();
    assert!(
        matches!(err, CanonicalError::NegativeZero { .. }),
        "{err:?}"
    );
    assert_eq!(path_of(&err), "$[1]");
}

#[test]
fn integers_beyond_two_to_the_53_are_refused_however_large() {
    assert!(parse(&format!("[{MAX_SAFE_INTEGER},-{MAX_SAFE_INTEGER}]")).is_ok());
    for doc in [
        "[9007199254740992]",
        "[-9007199254740992]",
        "[9223372036854775808]",
        "[-9223372036854775809]",
        "[18446744073709551616]",
        "[123456789012345678901234567890]",
    ] {
        let err = parse(doc).unwrap_err();
        assert!(
            matches!(err, CanonicalError::IntegerOutOfRange { .. }),
            "{doc}: {err:?}"
        );
        assert_eq!(path_of(&err), "$[0]", "{doc}");
    }
}

#[test]
fn lone_surrogate_escapes_are_refused() {
    for doc in [
        r#"["\ud800"]"#,
        r#"["\udc00"]"#,
        r#"["\ud800\u0041"]"#,
        r#"["\ud800x"]"#,
        r#"{"\udfff":1}"#,
    ] {
        let err = parse(doc).unwrap_err();
        assert!(
            matches!(err, CanonicalError::LoneSurrogate { .. }),
            "{doc}: {err:?}"
        );
    }
}

#[test]
fn strings_that_are_not_nfc_are_refused_not_normalised() {
    // "e" + combining acute: NFC would be U+00E9.
    let err = parse("{\"payer\":[\"Jose\u{301}\"]}").unwrap_err();
    assert!(
        matches!(err, CanonicalError::NotNfcString { .. }),
        "{err:?}"
    );
    assert_eq!(path_of(&err), "$.payer[0]");
}

#[test]
fn keys_that_are_not_nfc_are_refused() {
    let err = parse("{\"e\u{301}\":1}").unwrap_err();
    assert!(matches!(err, CanonicalError::NotNfcKey { .. }), "{err:?}");
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn nesting_up_to_the_limit_parses_and_one_deeper_is_refused() {
    assert!(parse(&nested_arrays(MAX_DEPTH)).is_ok());
    let err = parse(&nested_arrays(MAX_DEPTH + 1)).unwrap_err();
    assert!(
        matches!(
            err,
            CanonicalError::TooDeep {
                limit: MAX_DEPTH,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(path_of(&err), format!("${}", "[0]".repeat(MAX_DEPTH)));
    // Far beyond serde_json's own recursion limit, still our error and no stack overflow.
    let err = parse(&nested_arrays(100_000)).unwrap_err();
    assert!(matches!(err, CanonicalError::TooDeep { .. }), "{err:?}");
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let mut big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
    big[0] = b'[';
    assert_eq!(
        parse_canonical(&big),
        Err(CanonicalError::TooLarge {
            len: MAX_DOCUMENT_BYTES + 1,
            limit: MAX_DOCUMENT_BYTES
        })
    );
}

#[test]
fn whitespace_anywhere_is_not_canonical() {
    for (doc, offset) in [
        (" {}", 0),
        ("{} ", 2),
        ("{}\n", 2),
        ("{\"a\": 1}", 5),
        ("[1, 2]", 3),
        ("{ \"a\":1}", 1),
    ] {
        assert_eq!(
            parse(doc),
            Err(CanonicalError::NotCanonical { offset }),
            "{doc:?}"
        );
    }
}

#[test]
fn keys_out_of_order_are_not_canonical() {
    assert_eq!(
        parse(r#"{"b":1,"a":2}"#),
        Err(CanonicalError::NotCanonical { offset: 2 })
    );
    // UTF-8 byte order is not canonical either: U+1F600 sorts before U+FF21 in UTF-16.
    assert_eq!(
        parse("{\"\u{ff21}\":1,\"\u{1f600}\":2}"),
        Err(CanonicalError::NotCanonical { offset: 2 })
    );
}

#[test]
fn needless_escapes_are_not_canonical() {
    for (doc, offset) in [
        (r#"["\u0041"]"#, 2),
        (r#"["a\/b"]"#, 3),
        (r#"["\u001F"]"#, 7),
        (r#"["\u00e9"]"#, 2),
        (r#"["\ud83d\ude00"]"#, 2),
    ] {
        assert_eq!(
            parse(doc),
            Err(CanonicalError::NotCanonical { offset }),
            "{doc}"
        );
    }
}

#[test]
fn broken_json_is_a_syntax_error_with_an_offset() {
    for (doc, offset) in [
        ("[1,]", 3),
        ("{\"a\":1", 6),
        ("[1]x", 3),
        ("", 0),
        ("[1,\n]", 4),
        ("[\n\n1,\n  tru]", 11),
    ] {
        match parse(doc) {
            Err(CanonicalError::Syntax { offset: got, .. }) => {
                assert_eq!(got, offset, "{doc:?}")
            }
            other => panic!("{doc:?}: {other:?}"),
        }
    }
}

// ---- Encoding refuses what it could not sign ----

#[derive(Serialize)]
struct Payment {
    amount: f64,
}

#[test]
fn encoding_a_float_is_refused_with_its_path() {
    let err = to_canonical_vec(&vec![Payment { amount: 1.0 }]).unwrap_err();
    assert!(matches!(err, CanonicalError::Float { .. }), "{err:?}");
    assert_eq!(path_of(&err), "$[0].amount");
    let err = to_canonical_vec(&f64::NAN).unwrap_err();
    assert!(matches!(err, CanonicalError::Float { .. }), "{err:?}");
}

#[test]
fn encoding_an_unsafe_integer_is_refused() {
    assert_eq!(encode(&MAX_SAFE_INTEGER), "9007199254740991");
    assert_eq!(encode(&-MAX_SAFE_INTEGER), "-9007199254740991");
    for err in [
        to_canonical_vec(&(MAX_SAFE_INTEGER + 1)).unwrap_err(),
        to_canonical_vec(&u64::MAX).unwrap_err(),
        to_canonical_vec(&i128::MIN).unwrap_err(),
        to_canonical_vec(&CanonicalValue::Integer(i64::MIN)).unwrap_err(),
    ] {
        assert!(
            matches!(err, CanonicalError::IntegerOutOfRange { .. }),
            "{err:?}"
        );
    }
}

#[test]
fn encoding_text_that_is_not_nfc_is_refused() {
    let err = to_canonical_vec(&BTreeMap::from([("name", "Jose\u{301}")])).unwrap_err();
    assert!(
        matches!(err, CanonicalError::NotNfcString { .. }),
        "{err:?}"
    );
    assert_eq!(path_of(&err), "$.name");
    let err = to_canonical_vec(&BTreeMap::from([("e\u{301}", 1)])).unwrap_err();
    assert!(matches!(err, CanonicalError::NotNfcKey { .. }), "{err:?}");
}

#[derive(Serialize)]
struct Flattened {
    seq: i64,
    #[serde(flatten)]
    extra: BTreeMap<String, i64>,
}

#[test]
fn encoding_a_key_twice_is_refused() {
    let value = Flattened {
        seq: 1,
        extra: BTreeMap::from([("seq".to_owned(), 2)]),
    };
    let err = to_canonical_vec(&value).unwrap_err();
    assert!(
        matches!(err, CanonicalError::DuplicateKey { .. }),
        "{err:?}"
    );
    assert_eq!(path_of(&err), "$.seq");
}

#[test]
fn encoding_deeper_than_the_limit_is_refused() {
    let mut value = CanonicalValue::Null;
    for _ in 0..MAX_DEPTH {
        value = CanonicalValue::Array(vec![value]);
    }
    assert_eq!(
        encode(&value),
        nested_arrays(MAX_DEPTH).replace("[]", "[null]")
    );
    let err = to_canonical_vec(&CanonicalValue::Array(vec![value])).unwrap_err();
    assert!(matches!(err, CanonicalError::TooDeep { .. }), "{err:?}");
}

#[test]
fn encoding_a_map_with_keys_that_are_not_text_or_integers_is_refused() {
    let err = to_canonical_vec(&BTreeMap::from([(true, 1)])).unwrap_err();
    assert!(
        matches!(err, CanonicalError::UnsupportedKey { .. }),
        "{err:?}"
    );
    assert_eq!(
        encode(&BTreeMap::from([(10u32, 1), (9, 2)])),
        r#"{"10":1,"9":2}"#
    );
}

#[derive(Serialize)]
enum Event {
    CheckIn,
    Payment { fen: i64 },
    Photo(String),
    Fix(i32, i32),
}

#[test]
fn enums_encode_in_serde_json_external_form() {
    assert_eq!(encode(&Event::CheckIn), r#""CheckIn""#);
    assert_eq!(
        encode(&Event::Payment { fen: 12_500 }),
        r#"{"Payment":{"fen":12500}}"#
    );
    assert_eq!(encode(&Event::Photo("ab".into())), r#"{"Photo":"ab"}"#);
    assert_eq!(
        encode(&Event::Fix(311_234_567, 1_214_567_890)),
        r#"{"Fix":[311234567,1214567890]}"#
    );
}

// ---- Typed reading and hashing ----

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Receipt {
    serial: i64,
    fen: i64,
    payer: String,
    note: Option<String>,
}

#[test]
fn typed_reading_round_trips_a_receipt() {
    let receipt = Receipt {
        serial: 42,
        fen: 150_000,
        payer: "王芳".into(),
        note: None,
    };
    let bytes = to_canonical_vec(&receipt).expect("encodes");
    assert_eq!(
        bytes,
        "{\"fen\":150000,\"note\":null,\"payer\":\"王芳\",\"serial\":42}".as_bytes()
    );
    assert_eq!(from_canonical_slice::<Receipt>(&bytes), Ok(receipt));
}

#[test]
fn typed_reading_refuses_a_field_the_type_would_drop() {
    let bytes = br#"{"extra":1,"fen":1,"note":null,"payer":"a","serial":1}"#;
    assert_eq!(
        from_canonical_slice::<Receipt>(bytes),
        Err(CanonicalError::NotRoundTrip { offset: 2 })
    );
}

#[test]
fn typed_reading_reports_a_shape_mismatch() {
    let bytes = br#"{"fen":"1","note":null,"payer":"a","serial":1}"#;
    assert!(matches!(
        from_canonical_slice::<Receipt>(bytes),
        Err(CanonicalError::Deserialize { .. })
    ));
}

#[test]
fn canonical_sha256_is_the_sha256_of_the_canonical_bytes() {
    // Digests from `printf '<bytes>' | sha256sum`.
    let digest = canonical_sha256(&BTreeMap::from([("a", 1)])).expect("hashes");
    assert_eq!(
        hex(&digest),
        "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    );
    #[derive(Serialize)]
    struct Step {
        seq: i64,
        event: &'static str,
    }
    let digest = canonical_sha256(&Step {
        seq: 1,
        event: "check_in",
    })
    .expect("hashes");
    assert_eq!(
        hex(&digest),
        "effa4011f1b4e1aba530f19da2c5d01f5bc252519a1121cc19961e931238430b"
    );
}

fn hex(bytes: &[u8]) -> String {
    tandem_core::crypto::to_hex(bytes)
}

#[test]
fn canonical_value_deserializes_from_other_json_under_the_same_rules() {
    let value: CanonicalValue = serde_json::from_str(r#"{ "b": [1, "x"], "a": null }"#)
        .expect("lenient layout, strict content");
    assert_eq!(encode(&value), r#"{"a":null,"b":[1,"x"]}"#);
    assert!(serde_json::from_str::<CanonicalValue>(r#"{"a":1.5}"#).is_err());
    assert!(serde_json::from_str::<CanonicalValue>(r#"{"a":1,"a":2}"#).is_err());
}

// ---- Properties ----

fn nfc_text() -> impl Strategy<Value = String> {
    let chars = prop_oneof![
        4 => any::<char>(),
        2 => proptest::char::range('\u{0}', '\u{7f}'),
        1 => proptest::char::range('\u{e000}', '\u{ffff}'),
        1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
        1 => Just('\u{301}'),
    ];
    proptest::collection::vec(chars, 0..12)
        .prop_map(|cs| cs.into_iter().collect::<String>().nfc().collect())
}

fn canonical_value() -> impl Strategy<Value = CanonicalValue> {
    let leaf = prop_oneof![
        Just(CanonicalValue::Null),
        any::<bool>().prop_map(CanonicalValue::Bool),
        (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_map(CanonicalValue::Integer),
        (-1000i64..1000).prop_map(CanonicalValue::Integer),
        nfc_text().prop_map(CanonicalValue::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(CanonicalValue::Array),
            proptest::collection::btree_map(nfc_text().prop_map(ObjectKey::from), inner, 0..8)
                .prop_map(CanonicalValue::Object),
        ]
    })
}

/// Offsets between tokens, where JSON allows whitespace: outside strings, next to a
/// structural character or at either end.
fn token_boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut boundaries = vec![0, bytes.len()];
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    boundaries.push(i + 1);
                }
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
            boundaries.push(i);
        } else if b"{}[],:".contains(&b) {
            boundaries.extend([i, i + 1]);
        }
    }
    boundaries.sort_unstable();
    boundaries.dedup();
    boundaries
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn canonical_values_round_trip_byte_for_byte(value in canonical_value()) {
        let bytes = to_canonical_vec(&value).expect("generated values are encodable");
        let parsed = parse_canonical(&bytes).expect("own output parses");
        prop_assert_eq!(&parsed, &value);
        prop_assert_eq!(to_canonical_vec(&parsed).expect("re-encodes"), bytes.clone());
        let typed: CanonicalValue = from_canonical_slice(&bytes).expect("typed read");
        prop_assert_eq!(typed, value);
    }

    #[test]
    fn whitespace_between_tokens_is_refused_where_it_was_put(
        value in canonical_value(),
        pick in any::<prop::sample::Index>(),
        ws in prop::sample::select(vec![b' ', b'\n', b'\t', b'\r']),
    ) {
        let mut bytes = to_canonical_vec(&value).expect("encodes");
        let boundaries = token_boundaries(&bytes);
        let at = boundaries[pick.index(boundaries.len())];
        bytes.insert(at, ws);
        prop_assert_eq!(parse_canonical(&bytes), Err(CanonicalError::NotCanonical { offset: at }));
    }

    #[test]
    fn swapping_two_keys_is_refused(
        entries in proptest::collection::btree_map(nfc_text().prop_map(ObjectKey::from), canonical_value(), 2..8),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let canonical = to_canonical_vec(&CanonicalValue::Object(entries.clone())).expect("encodes");
        let mut members: Vec<Vec<u8>> = entries
            .iter()
            .map(|(k, v)| {
                let mut m = to_canonical_vec(k.as_str()).expect("key encodes");
                m.push(b':');
                m.extend(to_canonical_vec(v).expect("value encodes"));
                m
            })
            .collect();
        let (i, j) = (a.index(members.len()), b.index(members.len()));
        prop_assume!(i != j);
        members.swap(i, j);
        let mut swapped = b"{".to_vec();
        swapped.extend(members.join(&b","[..]));
        swapped.push(b'}');
        let offset = canonical.iter().zip(&swapped).position(|(x, y)| x != y).expect("bytes differ");
        prop_assert_eq!(parse_canonical(&swapped), Err(CanonicalError::NotCanonical { offset }));
    }
}
