//! Field selectors: Kubernetes' `fields.ParseSelector` grammar (`field=value`, `field==value`,
//! `field!=value`, joined by `,`; `\` escapes `\`, `,` and `=` in values) over the two fields
//! the list endpoint can filter on in SQL.

use std::fmt;
use std::str::FromStr;

use super::{chars_within_limit, join_display, SelectorError};
use crate::text::check_name_text;
use crate::{OpenClawInstance, Phase};

/// The fields a [`FieldSelector`] can name, as written in selectors.
pub const SELECTABLE_FIELDS: [&str; 2] = [PHASE_FIELD, CUSTOMER_ID_FIELD];

const PHASE_FIELD: &str = "status.phase";
const CUSTOMER_ID_FIELD: &str = "spec.customerId";

/// Longest customer id the API stores, so a longer one in a selector is a mistake.
const MAX_CUSTOMER_ID_CHARS: usize = 128;

/// `=`/`==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOp {
    /// `=` or `==`: the field has this value.
    Equals,
    /// `!=`: the field has another value.
    NotEquals,
}

impl FieldOp {
    fn holds(self, equal: bool) -> bool {
        match self {
            FieldOp::Equals => equal,
            FieldOp::NotEquals => !equal,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            FieldOp::Equals => "=",
            FieldOp::NotEquals => "!=",
        }
    }
}

/// One requirement of a [`FieldSelector`], typed by its field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldRequirement {
    /// `status.phase=Ready`, `status.phase!=Failed`.
    Phase { op: FieldOp, phase: Phase },
    /// `spec.customerId=cust-42`.
    CustomerId { op: FieldOp, value: String },
}

impl FieldRequirement {
    /// Whether `fields` satisfy the requirement.
    pub fn matches(&self, fields: &FieldSet<'_>) -> bool {
        match self {
            FieldRequirement::Phase { op, phase } => op.holds(fields.phase == *phase),
            FieldRequirement::CustomerId { op, value } => op.holds(fields.customer_id == value),
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldRequirement::Phase { op, phase } => {
                write!(f, "{PHASE_FIELD}{}{}", op.as_str(), phase.as_str())
            }
            FieldRequirement::CustomerId { op, value } => {
                write!(f, "{CUSTOMER_ID_FIELD}{}{}", op.as_str(), escape(value))
            }
        }
    }
}

/// The values of an instance's selectable fields, for [`FieldSelector::matches`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSet<'a> {
    /// `status.phase`.
    pub phase: Phase,
    /// `spec.customerId`.
    pub customer_id: &'a str,
}

impl<'a> FieldSet<'a> {
    /// The selectable fields of `instance`.
    pub fn of(instance: &'a OpenClawInstance) -> Self {
        Self {
            phase: instance.status.phase,
            customer_id: &instance.spec.customer_id,
        }
    }
}

/// A parsed field selector: requirements in the order written, all of which must hold; empty
/// selects everything. `Display` writes it back (escaping values) in a form
/// [`FieldSelector::parse`] reads to the same selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `field=value,field!=value`; the error names the offset and what was expected.
    /// A blank string is the empty selector.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let chars = chars_within_limit(input)?;
        if chars.iter().all(|c| c.is_ascii_whitespace()) {
            return Ok(Self::default());
        }
        let requirements = terms(&chars)
            .into_iter()
            .map(|(start, term)| requirement(term, start))
            .collect::<Result<_, _>>()?;
        Ok(Self { requirements })
    }

    /// A selector of these requirements.
    pub fn from_requirements(requirements: Vec<FieldRequirement>) -> Self {
        Self { requirements }
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `fields` satisfy every requirement.
    pub fn matches(&self, fields: &FieldSet<'_>) -> bool {
        self.requirements.iter().all(|r| r.matches(fields))
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        join_display(f, &self.requirements)
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The terms between unescaped commas, each with the offset where it starts.
fn terms(chars: &[char]) -> Vec<(usize, &[char])> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in chars.iter().enumerate() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, ',') => {
                out.push((start, &chars[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, &chars[start..]));
    out
}

/// The first unescaped operator of a term: its offset in the term, the operator and its length.
fn find_operator(term: &[char]) -> Option<(usize, FieldOp, usize)> {
    let mut escaped = false;
    for (i, c) in term.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        let next = term.get(i + 1);
        match (c, next) {
            ('\\', _) => escaped = true,
            ('!', Some('=')) | ('=', Some('=')) => {
                let op = if *c == '!' {
                    FieldOp::NotEquals
                } else {
                    FieldOp::Equals
                };
                return Some((i, op, 2));
            }
            ('=', _) => return Some((i, FieldOp::Equals, 1)),
            _ => {}
        }
    }
    None
}

/// One `field op value` term that starts at offset `start`.
fn requirement(term: &[char], start: usize) -> Result<FieldRequirement, SelectorError> {
    let Some((op_at, op, op_len)) = find_operator(term) else {
        return Err(SelectorError::Unexpected {
            at: start + term.len(),
            expected: "an operator (=, ==, !=) after a field name",
            found: "',' or the end",
        });
    };
    let name: String = term[..op_at].iter().collect();
    let name_at = start
        + term[..op_at]
            .iter()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
    let field = match name.trim_matches(|c: char| c.is_ascii_whitespace()) {
        PHASE_FIELD => PHASE_FIELD,
        CUSTOMER_ID_FIELD => CUSTOMER_ID_FIELD,
        "" => {
            return Err(SelectorError::Unexpected {
                at: name_at,
                expected: "a field name",
                found: "an operator",
            })
        }
        _ => return Err(SelectorError::UnknownField { at: name_at }),
    };
    let value_at = start + op_at + op_len;
    let value = unescape(&term[op_at + op_len..], value_at)?;
    if field == PHASE_FIELD {
        let phase = phase(&value, value_at)?;
        Ok(FieldRequirement::Phase { op, phase })
    } else {
        let value = customer_id(value, value_at)?;
        Ok(FieldRequirement::CustomerId { op, value })
    }
}

fn phase(value: &str, at: usize) -> Result<Phase, SelectorError> {
    Phase::parse(value).ok_or_else(|| {
        let all: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        SelectorError::InvalidFieldValue {
            at,
            field: PHASE_FIELD,
            problem: format!("must be one of {}", all.join(", ")),
        }
    })
}

/// A customer id as the API could have stored it (an empty one simply matches nothing).
fn customer_id(value: String, at: usize) -> Result<String, SelectorError> {
    let problem = if value.chars().count() > MAX_CUSTOMER_ID_CHARS {
        Some(format!(
            "must be at most {MAX_CUSTOMER_ID_CHARS} characters"
        ))
    } else {
        check_name_text(&value).map(|p| p.message().to_owned())
    };
    match problem {
        None => Ok(value),
        Some(problem) => Err(SelectorError::InvalidFieldValue {
            at,
            field: CUSTOMER_ID_FIELD,
            problem,
        }),
    }
}

/// The value with escapes resolved; `value_at` is the offset of its first character.
fn unescape(value: &[char], value_at: usize) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.iter().enumerate();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped @ ('\\' | ',' | '='))) => out.push(*escaped),
                _ => return Err(SelectorError::InvalidEscape { at: value_at + i }),
            },
            '=' => return Err(SelectorError::UnescapedEquals { at: value_at + i }),
            c => out.push(*c),
        }
    }
    Ok(out)
}

/// `value` with `\`, `,` and `=` escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
