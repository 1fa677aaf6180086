//! Text that came from a bank's file or a person, made safe to show or to hand to a
//! spreadsheet. Stored records keep the text exactly as given (it may be evidence); these
//! functions are applied where it is shown or exported.
//!
//! Threat: anyone sending bad input (a debtor name crafted in a bank's spreadsheet). A
//! right-to-left override (U+202E) makes `gnp.exe` read as `exe.png` and can reorder the
//! digits of an amount on a screen; a cell starting with `=`, `+`, `-` or `@` is run as a
//! formula by Excel and LibreOffice when a report is opened.

use std::borrow::Cow;

/// Characters that change the direction of the text around them: the embedding, override
/// and isolate controls and the invisible direction marks (Unicode UAX #9).
const BIDI_CONTROLS: &[char] = &[
    '\u{061C}', // ARABIC LETTER MARK
    '\u{200E}', // LEFT-TO-RIGHT MARK
    '\u{200F}', // RIGHT-TO-LEFT MARK
    '\u{202A}', // LEFT-TO-RIGHT EMBEDDING
    '\u{202B}', // RIGHT-TO-LEFT EMBEDDING
    '\u{202C}', // POP DIRECTIONAL FORMATTING
    '\u{202D}', // LEFT-TO-RIGHT OVERRIDE
    '\u{202E}', // RIGHT-TO-LEFT OVERRIDE
    '\u{2066}', // LEFT-TO-RIGHT ISOLATE
    '\u{2067}', // RIGHT-TO-LEFT ISOLATE
    '\u{2068}', // FIRST STRONG ISOLATE
    '\u{2069}', // POP DIRECTIONAL ISOLATE
];

/// The first characters that make a spreadsheet cell a formula (or, for tab and carriage
/// return, let one through in some programs).
const FORMULA_PREFIXES: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// Whether `c` is a bidirectional control character.
pub fn is_bidi_control(c: char) -> bool {
    BIDI_CONTROLS.contains(&c)
}

/// Whether `s` holds any bidirectional control character.
pub fn has_bidi_controls(s: &str) -> bool {
    s.chars().any(is_bidi_control)
}

/// Whether a spreadsheet would take `s` as a formula.
pub fn looks_like_formula(s: &str) -> bool {
    s.starts_with(FORMULA_PREFIXES)
}

/// `s` as a screen should show it: each bidirectional control replaced by its visible
/// code (`<U+202E>`), so the text reads in the order it was stored and the tampering shows.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !has_bidi_controls(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_bidi_control(c) {
            out.push_str(&format!("<U+{:04X}>", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` as a spreadsheet cell (CSV or XLSX) should hold it: shown as [`visible`], and a
/// leading formula character escaped with an apostrophe (OWASP's advice for CSV
/// injection), so the program shows the text and runs nothing.
pub fn spreadsheet_cell(s: &str) -> Cow<'_, str> {
    let shown = visible(s);
    if looks_like_formula(&shown) {
        Cow::Owned(format!("'{shown}"))
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_shown_as_stored_without_copying() {
        assert!(matches!(visible("张三"), Cow::Borrowed("张三")));
        assert!(matches!(spreadsheet_cell("张三"), Cow::Borrowed("张三")));
    }

    #[test]
    fn a_right_to_left_override_is_shown_as_its_code() {
        assert_eq!(visible("张三\u{202E}gnp.exe"), "张三<U+202E>gnp.exe");
        assert_eq!(
            visible("\u{2066}a\u{2069}\u{200F}"),
            "<U+2066>a<U+2069><U+200F>"
        );
    }

    #[test]
    fn every_formula_prefix_is_escaped_for_spreadsheets() {
        for cell in [
            "=cmd|' /C calc'!A0",
            "+SUM(1+1)",
            "-2+3",
            "@SUM(1+1)",
            "=HYPERLINK(\"http://x\",\"y\")",
            "\t=1",
            "\r=1",
        ] {
            let out = spreadsheet_cell(cell);
            assert!(out.starts_with('\''), "{cell:?} became {out:?}");
            assert_eq!(&out[1..], cell);
        }
    }

    #[test]
    fn an_override_cannot_hide_a_formula_from_the_spreadsheet_escape() {
        // The control is made visible first, so what the spreadsheet sees starts with `<`.
        assert_eq!(spreadsheet_cell("\u{202E}=1+1"), "<U+202E>=1+1");
        assert_eq!(spreadsheet_cell("=1\u{202E}"), "'=1<U+202E>");
    }

    #[test]
    fn text_that_only_contains_formula_characters_later_is_left_alone() {
        assert_eq!(spreadsheet_cell("a=b"), "a=b");
        assert_eq!(spreadsheet_cell("王-五"), "王-五");
    }
}
