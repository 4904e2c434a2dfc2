//! Label selectors: Kubernetes' grammar (`labels.Parse`), read by a small lexer and a
//! recursive-descent parser that report the offset of the first problem.
//!
//! Differences from Kubernetes, all accepting more: `in` and `notin` are words like any other
//! where a key or a value is expected (so `in=x` and `a=notin` parse), and `>`/`<` (numeric
//! comparisons, meant for node affinity) are refused with their own message.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use super::{chars_within_limit, join_display, SelectorError};

/// One requirement of a [`LabelSelector`]; every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelRequirement {
    /// `key=value` or `key==value`: the label is present with this value.
    Equals { key: String, value: String },
    /// `key!=value`: the label is absent or has another value.
    NotEquals { key: String, value: String },
    /// `key in (v1,v2)`: the label is present with one of these values.
    In {
        key: String,
        values: BTreeSet<String>,
    },
    /// `key notin (v1,v2)`: the label is absent or has none of these values.
    NotIn {
        key: String,
        values: BTreeSet<String>,
    },
    /// `key`: the label is present, whatever its value.
    Exists { key: String },
    /// `!key`: the label is absent.
    DoesNotExist { key: String },
}

impl LabelRequirement {
    /// The label key the requirement is about.
    pub fn key(&self) -> &str {
        match self {
            LabelRequirement::Equals { key, .. }
            | LabelRequirement::NotEquals { key, .. }
            | LabelRequirement::In { key, .. }
            | LabelRequirement::NotIn { key, .. }
            | LabelRequirement::Exists { key }
            | LabelRequirement::DoesNotExist { key } => key,
        }
    }

    /// Whether `labels` satisfy the requirement (Kubernetes' semantics: `!=` and `notin` hold
    /// for an absent label).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let found = labels.get(self.key()).map(String::as_str);
        match self {
            LabelRequirement::Equals { value, .. } => found == Some(value.as_str()),
            LabelRequirement::NotEquals { value, .. } => found != Some(value.as_str()),
            LabelRequirement::In { values, .. } => found.is_some_and(|v| values.contains(v)),
            LabelRequirement::NotIn { values, .. } => !found.is_some_and(|v| values.contains(v)),
            LabelRequirement::Exists { .. } => found.is_some(),
            LabelRequirement::DoesNotExist { .. } => found.is_none(),
        }
    }
}

impl fmt::Display for LabelRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelRequirement::Equals { key, value } => write!(f, "{key}={value}"),
            LabelRequirement::NotEquals { key, value } => write!(f, "{key}!={value}"),
            LabelRequirement::In { key, values } => write_set(f, key, "in", values),
            LabelRequirement::NotIn { key, values } => write_set(f, key, "notin", values),
            LabelRequirement::Exists { key } => write!(f, "{key}"),
            LabelRequirement::DoesNotExist { key } => write!(f, "!{key}"),
        }
    }
}

fn write_set(
    f: &mut fmt::Formatter<'_>,
    key: &str,
    operator: &str,
    values: &BTreeSet<String>,
) -> fmt::Result {
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    write!(f, "{key} {operator} ({})", values.join(","))
}

/// A parsed label selector: requirements in the order written, all of which must hold. The
/// empty selector (from an empty or blank string) selects everything. `Display` writes it back
/// in a form [`LabelSelector::parse`] reads to the same selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses Kubernetes label selector syntax; the error names the offset and what was expected.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let chars = chars_within_limit(input)?;
        Parser::new(lex(&chars)).selector()
    }

    /// A selector of these requirements.
    pub fn from_requirements(requirements: Vec<LabelRequirement>) -> Self {
        Self { requirements }
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[LabelRequirement] {
        &self.requirements
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        join_display(f, &self.requirements)
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What the lexer finds: Kubernetes' tokens, with `in`/`notin` left as words.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    Open,
    Close,
    Comma,
    Greater,
    Less,
    End,
}

impl Tok {
    /// How an error names the token: its kind, never its text.
    fn kind(&self) -> &'static str {
        match self {
            Tok::Word(_) => "a word",
            Tok::Not => "'!'",
            Tok::Equals => "'='",
            Tok::DoubleEquals => "'=='",
            Tok::NotEquals => "'!='",
            Tok::Open => "'('",
            Tok::Close => "')'",
            Tok::Comma => "','",
            Tok::Greater => "'>'",
            Tok::Less => "'<'",
            Tok::End => "the end",
        }
    }
}

/// A token and the character offset where it starts.
#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: usize,
}

/// Kubernetes' separators between tokens.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_symbol(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

/// Splits the input into tokens; a word is a run of anything but spaces and symbols, checked
/// later as a key or a value. Always ends with [`Tok::End`].
fn lex(chars: &[char]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        let at = i;
        let tok = if is_symbol(c) {
            let next = chars.get(i + 1).copied();
            let (tok, len) = symbol(c, next);
            i += len;
            tok
        } else {
            let start = i;
            while i < chars.len() && !is_space(chars[i]) && !is_symbol(chars[i]) {
                i += 1;
            }
            Tok::Word(chars[start..i].iter().collect())
        };
        tokens.push(Token { tok, at });
    }
    tokens.push(Token {
        tok: Tok::End,
        at: chars.len(),
    });
    tokens
}

/// The symbol starting with `c` (two characters for `==` and `!=`) and its length.
fn symbol(c: char, next: Option<char>) -> (Tok, usize) {
    match (c, next) {
        ('=', Some('=')) => (Tok::DoubleEquals, 2),
        ('!', Some('=')) => (Tok::NotEquals, 2),
        ('=', _) => (Tok::Equals, 1),
        ('!', _) => (Tok::Not, 1),
        ('(', _) => (Tok::Open, 1),
        (')', _) => (Tok::Close, 1),
        (',', _) => (Tok::Comma, 1),
        ('>', _) => (Tok::Greater, 1),
        _ => (Tok::Less, 1),
    }
}

const EXPECT_KEY: &str = "a label key or '!'";
const EXPECT_OPERATOR: &str = "an operator (=, ==, !=, in, notin), ',' or the end";
const EXPECT_NEXT: &str = "',' or the end";
const EXPECT_VALUE: &str = "a label value, ',' or the end";
const EXPECT_OPEN: &str = "'(' and a list of values";
const EXPECT_SET_VALUE: &str = "a label value, ',' or ')'";
const EXPECT_SET_NEXT: &str = "',' or ')'";
const NO_COMPARISON: &str = "an operator (=, ==, !=, in, notin; '>' and '<' are not supported)";

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn new(tokens: Vec<Token>) -> Self {
        Self { tokens, pos: 0 }
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        token
    }

    /// requirement (',' requirement)* | nothing
    fn selector(mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if self.peek().tok == Tok::End {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            let token = self.next();
            match token.tok {
                Tok::Comma => continue,
                Tok::End => return Ok(LabelSelector { requirements }),
                _ => return Err(unexpected(&token, EXPECT_NEXT)),
            }
        }
    }

    /// '!' key | key | key op value | key ('in'|'notin') '(' values ')'
    fn requirement(&mut self) -> Result<LabelRequirement, SelectorError> {
        let token = self.next();
        let key = match token.tok {
            Tok::Not => return Ok(LabelRequirement::DoesNotExist { key: self.key()? }),
            Tok::Word(word) => checked_key(word, token.at)?,
            _ => return Err(unexpected(&token, EXPECT_KEY)),
        };
        let operator = self.peek().clone();
        let requirement = match &operator.tok {
            Tok::Comma | Tok::End => return Ok(LabelRequirement::Exists { key }),
            Tok::Equals | Tok::DoubleEquals => LabelRequirement::Equals {
                key,
                value: self.after_operator()?,
            },
            Tok::NotEquals => LabelRequirement::NotEquals {
                key,
                value: self.after_operator()?,
            },
            Tok::Word(w) if w == "in" => LabelRequirement::In {
                key,
                values: self.after_set_operator()?,
            },
            Tok::Word(w) if w == "notin" => LabelRequirement::NotIn {
                key,
                values: self.after_set_operator()?,
            },
            Tok::Greater | Tok::Less => return Err(unexpected(&operator, NO_COMPARISON)),
            _ => return Err(unexpected(&operator, EXPECT_OPERATOR)),
        };
        Ok(requirement)
    }

    /// The key after `!`.
    fn key(&mut self) -> Result<String, SelectorError> {
        let token = self.next();
        match token.tok {
            Tok::Word(word) => checked_key(word, token.at),
            _ => Err(unexpected(&token, "a label key")),
        }
    }

    /// The value after `=`, `==` or `!=`: a word, or nothing (the empty value) before `,` or the
    /// end.
    fn after_operator(&mut self) -> Result<String, SelectorError> {
        self.next();
        let token = self.peek().clone();
        match token.tok {
            Tok::Comma | Tok::End => Ok(String::new()),
            Tok::Word(word) => {
                self.next();
                checked_value(word, token.at)
            }
            _ => Err(unexpected(&token, EXPECT_VALUE)),
        }
    }

    /// `( v1, v2 )` after `in` or `notin`. As in Kubernetes, a missing value between commas or
    /// parentheses is the empty value: `()` is `("")`.
    fn after_set_operator(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        self.next();
        let open = self.next();
        if open.tok != Tok::Open {
            return Err(unexpected(&open, EXPECT_OPEN));
        }
        let mut values = BTreeSet::new();
        loop {
            let token = self.next();
            match token.tok {
                Tok::Comma => {
                    values.insert(String::new());
                }
                Tok::Close => {
                    values.insert(String::new());
                    return Ok(values);
                }
                Tok::Word(word) => {
                    values.insert(checked_value(word, token.at)?);
                    let after = self.next();
                    match after.tok {
                        Tok::Comma => {}
                        Tok::Close => return Ok(values),
                        _ => return Err(unexpected(&after, EXPECT_SET_NEXT)),
                    }
                }
                _ => return Err(unexpected(&token, EXPECT_SET_VALUE)),
            }
        }
    }
}

fn unexpected(token: &Token, expected: &'static str) -> SelectorError {
    SelectorError::Unexpected {
        at: token.at,
        expected,
        found: token.tok.kind(),
    }
}

/// Longest name part of a key, and longest value.
const MAX_NAME_CHARS: usize = 63;
/// Longest prefix of a key (a DNS subdomain).
const MAX_PREFIX_CHARS: usize = 253;

fn checked_key(word: String, at: usize) -> Result<String, SelectorError> {
    key_problem(&word).map_or(Ok(word), |problem| {
        Err(SelectorError::InvalidKey { at, problem })
    })
}

fn checked_value(word: String, at: usize) -> Result<String, SelectorError> {
    value_problem(&word).map_or(Ok(word), |problem| {
        Err(SelectorError::InvalidValue { at, problem })
    })
}

/// What is wrong with a label key under Kubernetes' rules: `[prefix/]name`, the name a
/// qualified name of at most 63 characters, the prefix a DNS subdomain of at most 253.
pub fn key_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if name.contains('/') {
        return Some("a key has at most one '/'");
    }
    if let Some(prefix) = prefix {
        if !is_dns_subdomain(prefix) {
            return Some(
                "the prefix before '/' must be a DNS subdomain of at most 253 characters \
                 (lowercase letters, digits, '-' and '.', each part starting and ending with a \
                 letter or digit)",
            );
        }
    }
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Some("the name must be 1-63 characters");
    }
    (!is_qualified_name(name)).then_some(
        "the name must start and end with a letter or digit and hold only letters, digits, \
         '-', '_' and '.'",
    )
}

/// What is wrong with a label value under Kubernetes' rules: empty, or at most 63 characters
/// starting and ending with a letter or digit, with `-`, `_` and `.` between.
pub fn value_problem(value: &str) -> Option<&'static str> {
    if value.chars().count() > MAX_NAME_CHARS {
        return Some("a value is at most 63 characters");
    }
    (!value.is_empty() && !is_qualified_name(value)).then_some(
        "a value must start and end with a letter or digit and hold only letters, digits, \
         '-', '_' and '.'",
    )
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
fn is_qualified_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// A DNS-1123 subdomain: dot-separated labels of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 253
/// characters in all.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_PREFIX_CHARS
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    is_lower_alnum(*first)
                        && is_lower_alnum(*last)
                        && bytes.iter().all(|b| is_lower_alnum(*b) || *b == b'-')
                }
                _ => false,
            }
        })
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}
