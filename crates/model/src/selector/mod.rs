//! Label and field selectors in Kubernetes' syntax, so a client can ask for "the instances with
//! these labels, in this phase" (`GET /v1/instances?labelSelector=…&fieldSelector=…`) and code
//! that sees instances one at a time (watches, webhooks) can apply the same filter in memory.
//!
//! Pure and I/O-free: this module parses, prints and matches. The store turns a parsed selector
//! into SQL with bound parameters (`openclaws_store::instances::list`).
//!
//! - [`LabelSelector`]: `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`,
//!   `key notin (v1)`, `key`, `!key`, joined by `,` (all must hold). Keys and values follow
//!   Kubernetes' rules (a qualified name with an optional DNS-subdomain prefix; values of at most
//!   63 characters).
//! - [`FieldSelector`]: `status.phase` and `spec.customerId` with `=`, `==` or `!=`, joined by
//!   `,`; `\` escapes `\`, `,` and `=` in a value.
//!
//! A [`SelectorError`] says where the input went wrong (a character offset) and what was
//! expected there, and never contains any of the input, so the API can return it as it is.

mod field;
mod label;
#[cfg(test)]
mod tests;

pub use field::{FieldOp, FieldRequirement, FieldSelector, FieldSet, SELECTABLE_FIELDS};
pub use label::{key_problem as label_key_problem, value_problem as label_value_problem};
pub use label::{LabelRequirement, LabelSelector};

use std::collections::BTreeMap;
use std::fmt;

use crate::OpenClawInstance;

/// Longest selector accepted, in characters. Longer input is refused before it is parsed, so the
/// work done on a request stays small; the API's 8 KiB limit on URLs is the outer bound anyway.
pub const MAX_SELECTOR_CHARS: usize = 4096;

/// Why a selector could not be parsed. Every variant but [`SelectorError::TooLong`] carries the
/// character offset (counted from 0, in Unicode scalar values) where the problem starts; none
/// carries any of the input, so the message can be shown to whoever sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The whole selector is longer than [`MAX_SELECTOR_CHARS`].
    #[error("is longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A token that does not fit the grammar here.
    #[error("at offset {at}: expected {expected}, found {found}")]
    Unexpected {
        /// Where the token starts.
        at: usize,
        /// What would have fitted, e.g. `an operator (=, ==, !=, in, notin), ',' or the end`.
        expected: &'static str,
        /// What kind of token was there (`'('`, `a word`, `the end`), never its text.
        found: &'static str,
    },
    /// A label key that is not a Kubernetes qualified name.
    #[error("at offset {at}: invalid label key: {problem}")]
    InvalidKey {
        /// Where the key starts.
        at: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A label value that Kubernetes would refuse.
    #[error("at offset {at}: invalid label value: {problem}")]
    InvalidValue {
        /// Where the value starts.
        at: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A field selector names a field that cannot be selected on.
    #[error("at offset {at}: unknown field; the supported fields are {}", SELECTABLE_FIELDS.join(", "))]
    UnknownField {
        /// Where the field name starts.
        at: usize,
    },
    /// A field selector value that the field can never have (a phase that does not exist, a
    /// customer id the API would refuse).
    #[error("at offset {at}: invalid value for {field}: {problem}")]
    InvalidFieldValue {
        /// Where the value starts.
        at: usize,
        /// The field, as written in selectors (`status.phase`).
        field: &'static str,
        /// What is wrong with the value.
        problem: String,
    },
    /// A `\` in a field selector value not followed by `\`, `,` or `=`.
    #[error("at offset {at}: '\\' must be followed by '\\', ',' or '='")]
    InvalidEscape {
        /// Where the backslash is.
        at: usize,
    },
    /// An `=` in a field selector value that is not escaped as `\=`.
    #[error("at offset {at}: an '=' in a value must be escaped as '\\='")]
    UnescapedEquals {
        /// Where the `=` is.
        at: usize,
    },
}

impl SelectorError {
    /// The character offset of the problem (`None` for [`SelectorError::TooLong`]).
    pub fn offset(&self) -> Option<usize> {
        match self {
            SelectorError::TooLong { .. } => None,
            SelectorError::Unexpected { at, .. }
            | SelectorError::InvalidKey { at, .. }
            | SelectorError::InvalidValue { at, .. }
            | SelectorError::UnknownField { at }
            | SelectorError::InvalidFieldValue { at, .. }
            | SelectorError::InvalidEscape { at }
            | SelectorError::UnescapedEquals { at } => Some(*at),
        }
    }
}

/// The input as characters, once it is known not to be too long.
fn chars_within_limit(input: &str) -> Result<Vec<char>, SelectorError> {
    let chars: Vec<char> = input.chars().take(MAX_SELECTOR_CHARS + 1).collect();
    if chars.len() > MAX_SELECTOR_CHARS {
        return Err(SelectorError::TooLong {
            max: MAX_SELECTOR_CHARS,
        });
    }
    Ok(chars)
}

/// Both selectors of a list request, for code that filters instances in memory the way the list
/// endpoint filters them in SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Must hold for `metadata.labels`.
    pub labels: LabelSelector,
    /// Must hold for the selectable fields.
    pub fields: FieldSelector,
}

impl Selection {
    /// Whether nothing is filtered out.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether `instance` is selected.
    pub fn matches(&self, instance: &OpenClawInstance) -> bool {
        self.matches_parts(&instance.metadata.labels, &FieldSet::of(instance))
    }

    /// Whether an instance with these labels and fields is selected (for callers that hold a
    /// stored row rather than an [`OpenClawInstance`]).
    pub fn matches_parts(&self, labels: &BTreeMap<String, String>, fields: &FieldSet<'_>) -> bool {
        self.labels.matches(labels) && self.fields.matches(fields)
    }
}

/// Writes `items` separated by commas.
fn join_display<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}
