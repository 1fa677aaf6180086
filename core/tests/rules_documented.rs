//! Every rule id the phone's code names is documented in `docs/rules.md`, so someone who
//! clones the repository can look up what `V04` means.

use std::path::Path;

/// Rule ids (`V01`, `C02`, `E03`, `D01`, `A01`, `P01`) found in `text`.
fn rule_ids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut ids = Vec::new();
    for i in 0..bytes.len().saturating_sub(2) {
        let is_id = matches!(bytes[i], b'V' | b'C' | b'E' | b'D' | b'A' | b'P')
            && bytes[i + 1].is_ascii_digit()
            && bytes[i + 2].is_ascii_digit()
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && bytes.get(i + 3).is_none_or(|b| !b.is_ascii_alphanumeric());
        if is_id {
            ids.push(text[i..i + 3].to_owned());
        }
    }
    ids
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rule_id_used_in_core_is_in_docs_rules_md() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../docs/rules.md")).unwrap();
    let documented: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    let mut missing = std::collections::BTreeSet::new();
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for id in rule_ids(&text) {
            seen += 1;
            if !documented.contains(&id) {
                missing.insert(format!("{id} ({})", file.display()));
            }
        }
    }
    assert!(seen > 50, "rule ids were found in core ({seen})");
    assert!(missing.is_empty(), "not in docs/rules.md: {missing:?}");
}

#[test]
fn the_id_finder_reads_ids_and_nothing_else() {
    assert_eq!(
        rule_ids("V03: two agents; (C01) V15."),
        ["V03", "C01", "V15"]
    );
    assert!(rule_ids("AV03 V031 X01 v03 E0").is_empty());
}
