//! The Unicode policy for identifiers and names people read (`customerId`, `displayName`, label
//! values, the Composio entity): no control characters, and nothing invisible that could make two
//! different values look alike or reorder what is shown around them (format characters such as
//! zero-width spaces and bidirectional controls, line and paragraph separators, and the other
//! default-ignorable code points except variation selectors, which emoji need). Every other
//! string that reaches the database only has to be free of control characters ([`has_control`]):
//! PostgreSQL refuses NUL in `text` and `jsonb`.
//!
//! [`visible`] renders stored text that predates the policy (or comes from a gateway) with every
//! such character spelled out, for the support console. `docs/unicode-policy.md` states the policy.

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// Control characters (general category Cc: U+0000–U+001F, U+007F–U+009F).
static CONTROL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\p{Cc}").expect("a valid Unicode class"));

/// Characters that show nothing or change how the text around them is shown: format characters
/// (Cf: zero-width spaces and joiners, bidi embeddings, overrides and isolates, the byte order
/// mark, invisible operators, tags), line and paragraph separators, and the other
/// default-ignorable code points (Hangul fillers, the combining grapheme joiner, ...), except
/// variation selectors.
static INVISIBLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[\p{Cf}\p{Zl}\p{Zp}[\p{Default_Ignorable_Code_Point}--\p{Variation_Selector}]]")
        .expect("a valid Unicode class")
});

/// What makes a string unacceptable under the policy. Never carries the string itself, so an
/// error built from it cannot echo the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// A control character (U+0000–U+001F, U+007F–U+009F), NUL included.
    Control,
    /// An invisible or bidirectional-control character.
    Invisible,
}

impl TextProblem {
    /// What the field must not contain, for a validation message naming the field.
    pub fn message(self) -> &'static str {
        match self {
            TextProblem::Control => "must not contain control characters",
            TextProblem::Invisible => {
                "must not contain invisible or bidirectional-control characters (Unicode format \
                 characters such as U+200B or U+202E, line separators, fillers)"
            }
        }
    }
}

/// Whether `text` holds a control character.
pub fn has_control(text: &str) -> bool {
    CONTROL.is_match(text)
}

/// The first thing wrong with an identifier or a name under the policy, if any.
pub fn check_name_text(text: &str) -> Option<TextProblem> {
    if has_control(text) {
        Some(TextProblem::Control)
    } else if INVISIBLE.is_match(text) {
        Some(TextProblem::Invisible)
    } else {
        None
    }
}

/// Whether `c` is a character the policy refuses in names (control or invisible).
pub fn is_hidden(c: char) -> bool {
    let mut buf = [0u8; 4];
    let s = c.encode_utf8(&mut buf);
    CONTROL.is_match(s) || INVISIBLE.is_match(s)
}

/// `text` with every control or invisible character replaced by `⟨U+XXXX⟩`, so stored values that
/// predate the policy (or text a gateway reported) cannot hide or reorder anything when shown.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hidden(c) {
            out.push_str(&format!("⟨U+{:04X}⟩", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Splits `text` into runs for rendering: `(run, hidden)`, where a hidden run is one control or
/// invisible character spelled `U+XXXX`.
pub fn runs(text: &str) -> Vec<(Cow<'_, str>, bool)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if is_hidden(c) {
            if start < i {
                out.push((Cow::Borrowed(&text[start..i]), false));
            }
            out.push((Cow::Owned(format!("U+{:04X}", c as u32)), true));
            start = i + c.len_utf8();
        }
    }
    if start < text.len() {
        out.push((Cow::Borrowed(&text[start..]), false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_invisibles_are_refused() {
        for bad in ["a\0b", "line\nbreak", "tab\t", "del\u{7f}", "c1\u{85}"] {
            assert_eq!(check_name_text(bad), Some(TextProblem::Control), "{bad:?}");
        }
        for bad in [
            "zero\u{200B}width",
            "zwnj\u{200C}",
            "zwj\u{200D}",
            "lrm\u{200E}",
            "rlm\u{200F}",
            "embed\u{202A}",
            "override\u{202E}",
            "isolate\u{2066}x\u{2069}",
            "\u{FEFF}bom",
            "soft\u{AD}hyphen",
            "line\u{2028}sep",
            "para\u{2029}sep",
            "hangul\u{3164}filler",
            "cgj\u{34F}",
            "tag\u{E0041}",
            "word\u{2060}joiner",
        ] {
            assert_eq!(
                check_name_text(bad),
                Some(TextProblem::Invisible),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for good in [
            "cust-42",
            "Ada Lovelace",
            "Zoë",
            "李小龍",
            "مرحبا",
            "❤\u{FE0F} heart",
            "émoji 🦀",
        ] {
            assert_eq!(check_name_text(good), None, "{good:?}");
        }
    }

    #[test]
    fn visible_spells_hidden_characters_out() {
        assert_eq!(visible("plain"), "plain");
        assert_eq!(visible("a\u{202E}b\0"), "a⟨U+202E⟩b⟨U+0000⟩");
        let runs = runs("x\u{200B}y");
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[1], (Cow::Owned::<str>("U+200B".to_owned()), true));
        assert_eq!(runs[2], (Cow::Borrowed("y"), false));
    }
}
