//! `Manifest::parse` reads only the exact canonical bytes of a v1 manifest.
//! Actor: anyone sending bad input, and an insider re-encoding a manifest so that its
//! meaning survives but its bytes (what was signed) do not.

use tandem_core::bundle::testing::SampleBundle;
use tandem_core::bundle::{BundleError, FORMAT_V1, Manifest};
use tandem_core::canonical::CanonicalError;

fn sample_text() -> (Manifest, String) {
    let sample = SampleBundle::new().unwrap();
    let bytes = sample.manifest.to_canonical_bytes().unwrap();
    (sample.manifest, String::from_utf8(bytes).unwrap())
}

fn canonical_error(text: &str) -> CanonicalError {
    match Manifest::parse(text.as_bytes()) {
        Err(BundleError::Canonical { name, source }) => {
            assert_eq!(name, "manifest.json");
            source
        }
        other => panic!("expected a canonical error, got {other:?}"),
    }
}

#[test]
fn the_canonical_bytes_parse_back_to_the_same_manifest_and_bytes() {
    let (manifest, text) = sample_text();
    let parsed = Manifest::parse(text.as_bytes()).unwrap();
    assert_eq!(parsed, manifest);
    assert_eq!(parsed.to_canonical_bytes().unwrap(), text.as_bytes());
    assert!(text.starts_with("{\"blobs\":[{"));
}

#[test]
fn whitespace_is_not_canonical() {
    let (_, text) = sample_text();
    let spaced = text.replacen(',', ", ", 1);
    assert!(matches!(
        canonical_error(&spaced),
        CanonicalError::NotCanonical { .. }
    ));
}

#[test]
fn keys_out_of_order_are_not_canonical() {
    let (_, text) = sample_text();
    // Swap the first two keys of the first blob entry: {"captured_at_ms":…,"derived_from":…}
    let start = text.find("{\"captured_at_ms\":").unwrap() + 1;
    let comma = start + text[start..].find(",\"derived_from\"").unwrap();
    let end = comma + 1 + text[comma + 1..].find(',').unwrap();
    let swapped = format!(
        "{}{},{}{}",
        &text[..start],
        &text[comma + 1..end],
        &text[start..comma],
        &text[end..]
    );
    assert_eq!(swapped.len(), text.len());
    assert!(matches!(
        canonical_error(&swapped),
        CanonicalError::NotCanonical { .. }
    ));
}

#[test]
fn a_float_is_refused() {
    let (manifest, text) = sample_text();
    let sealed = format!("\"sealed_at_ms\":{}", manifest.sealed_at_ms);
    let float = text.replacen(&sealed, &format!("{sealed}.0"), 1);
    assert!(matches!(
        canonical_error(&float),
        CanonicalError::Float { .. }
    ));
}

#[test]
fn a_duplicate_key_is_refused() {
    let (_, text) = sample_text();
    let dup = text.replacen("{\"blobs\":", "{\"blobs\":[],\"blobs\":", 1);
    assert!(matches!(
        canonical_error(&dup),
        CanonicalError::DuplicateKey { .. }
    ));
}

#[test]
fn non_nfc_text_is_refused() {
    let (_, text) = sample_text();
    let nfd = text.replacen("ZH-2026-118877", "ZH-2026-118877e\u{301}", 1);
    assert!(matches!(
        canonical_error(&nfd),
        CanonicalError::NotNfcString { .. }
    ));
}

#[test]
fn an_unknown_key_is_refused_even_in_canonical_form() {
    let (_, text) = sample_text();
    // "zzz" sorts last: still canonical JSON, but not a v1 manifest.
    let extra = format!("{},\"zzz\":1}}", &text[..text.len() - 1]);
    assert!(matches!(
        canonical_error(&extra),
        CanonicalError::Deserialize { .. }
    ));
}

#[test]
fn another_format_id_is_refused() {
    let (mut manifest, _) = sample_text();
    manifest.format = "tandem.bundle/v2".into();
    let bytes = manifest.to_canonical_bytes().unwrap();
    assert!(matches!(
        Manifest::parse(&bytes),
        Err(BundleError::Invalid {
            field: "format",
            ..
        })
    ));
    assert_eq!(FORMAT_V1, "tandem.bundle/v1");
}

#[test]
fn uppercase_hex_in_a_digest_is_refused() {
    let (manifest, text) = sample_text();
    let hex = manifest.events_head.to_hex();
    let upper = text.replacen(&hex, &hex.to_uppercase(), 1);
    assert_ne!(upper, text);
    assert!(matches!(
        canonical_error(&upper),
        CanonicalError::Deserialize { .. }
    ));
}
