//! Redaction of credential-shaped text and sensitive keys, shared by logs, error reports and
//! anything else that may carry a value out of the process: values under sensitive keys
//! (authorization, tokens, API keys, secrets, passwords, cookies, …) and text that looks like a
//! credential (`sk-…` provider keys, `Bearer …`, JWTs, Fly tokens, long random strings).

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// What replaces a scrubbed value.
pub const FILTERED: &str = "[Filtered]";

/// Key names whose values are never sent (compared lowercase, without `-`, `_` and spaces).
const SENSITIVE_KEYS: &[&str] = &[
    "authorization",
    "auth",
    "token",
    "apikey",
    "secret",
    "password",
    "passwd",
    "cookie",
    "credential",
    "privatekey",
    "session",
    "signature",
    "dsn",
];

/// Whether a map key names something that must not be sent.
pub fn is_sensitive_key(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SENSITIVE_KEYS.iter().any(|k| normalized.contains(k))
}

/// Credential-shaped text: replaced whole.
static CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // Provider keys: Anthropic `sk-ant-…`, OpenAI `sk-…`/`sk-proj-…`, Composio `ak_…`.
        r"\b(?:sk-|ak_)[A-Za-z0-9_\-]{8,}",
        // Fly tokens (`fm1_`, `fm2_`, `fo1_`, …).
        r"|\bf[a-z][0-9]_[A-Za-z0-9_+/=\-]{8,}",
        // JWTs (the LLM proxy token among them).
        r"|\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*",
    ))
    .expect("credential pattern compiles")
});

/// An authorization scheme followed by its credential: the credential is replaced.
static SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer|basic|flyv1)(\s+)[A-Za-z0-9._~+/=,:\-]+")
        .expect("scheme pattern compiles")
});

/// `name=value` / `"name": "value"` with a sensitive name: the value is replaced.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)((?:api[_-]?key|access[_-]?key|token|secret|password|passwd|authorization|cookie)["']?\s*[:=]\s*["']?)((?:bearer\s+|basic\s+|flyv1\s+)?[^\s"'&,;}]+)"#,
    )
    .expect("assignment pattern compiles")
});

/// Long unbroken runs of token characters: replaced when they look random (upper and lower
/// case letters and digits), as a generated gateway token does.
static RANDOM_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9_\-]{40,}").expect("run pattern compiles"));

/// `text` with every credential-looking part replaced by [`FILTERED`].
pub fn scrub_text(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if CREDENTIALS.is_match(&out) {
        out = Cow::Owned(CREDENTIALS.replace_all(&out, FILTERED).into_owned());
    }
    if SCHEME.is_match(&out) {
        out = Cow::Owned(
            SCHEME
                .replace_all(&out, format!("${{1}}${{2}}{FILTERED}"))
                .into_owned(),
        );
    }
    if ASSIGNMENT.is_match(&out) {
        out = Cow::Owned(
            ASSIGNMENT
                .replace_all(&out, format!("${{1}}{FILTERED}"))
                .into_owned(),
        );
    }
    let looks_random = |s: &str| {
        s.bytes().any(|b| b.is_ascii_uppercase())
            && s.bytes().any(|b| b.is_ascii_lowercase())
            && s.bytes().any(|b| b.is_ascii_digit())
    };
    if RANDOM_RUN.find_iter(&out).any(|m| looks_random(m.as_str())) {
        out = Cow::Owned(
            RANDOM_RUN
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    if looks_random(&c[0]) {
                        FILTERED.to_owned()
                    } else {
                        c[0].to_owned()
                    }
                })
                .into_owned(),
        );
    }
    out
}
