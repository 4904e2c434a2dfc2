//! Validation of a write: the raw JSON against the JSON Schema generated from the resource types
//! (unknown fields, types, enums, ranges), then semantic rules the schema cannot say (Fly's memory
//! ranges per CPU kind, pairing approvals, image references), and the text rules: no control
//! character in any string or key (PostgreSQL refuses NUL), and the Unicode policy
//! ([`openclaws_model::text`]) for identifiers and names. All errors are collected, each with
//! the path of the offending field; messages never contain the rejected value.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::Validator;
use serde_json::Value;
use std::sync::LazyLock;

use super::error::FieldError;
use openclaws_model::schema::inlined_schema;
use openclaws_model::selector::{label_key_problem, label_value_problem};
use openclaws_model::text::{check_name_text, has_control, TextProblem};
use openclaws_model::{ChannelKind, ChannelSecret, InstanceWrite, API_VERSION, KIND};

/// Longest accepted provider key value.
pub const MAX_SECRET_LEN: usize = 4096;

static WRITE_VALIDATOR: LazyLock<Option<Validator>> = LazyLock::new(|| {
    let schema = inlined_schema::<InstanceWrite>();
    match jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
    {
        Ok(validator) => Some(validator),
        Err(e) => {
            tracing::error!(error = %e, "the generated write schema does not compile");
            None
        }
    }
});

/// Whether the generated write schema compiled (checked by `/readyz` and the tests).
pub fn schema_ready() -> bool {
    WRITE_VALIDATOR.is_some()
}

/// Whether `name` is a valid instance name: a DNS label of 3–40 characters `[a-z0-9-]`.
pub fn valid_name(name: &str) -> bool {
    (3..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Checks the path name.
pub fn check_name(name: &str) -> Result<(), FieldError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(FieldError::new(
            "metadata.name",
            "must be a DNS label of 3-40 characters [a-z0-9-], not starting or ending with '-'",
        ))
    }
}

/// Every problem of a write body (the PUT body, or the result of applying a merge patch): one
/// error per offending path, schema errors first.
pub fn validate_write(name: &str, body: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !body.is_object() {
        errors.push(FieldError::new("", "the body must be a JSON object"));
        return errors;
    }
    controls("", body, &mut errors);
    match WRITE_VALIDATOR.as_ref() {
        Some(validator) => {
            for error in validator.iter_errors(body) {
                schema_error(&error, &mut errors);
            }
        }
        None => errors.push(FieldError::new("", "the server's schema is unavailable")),
    }
    semantic(name, body, &mut errors);
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.path.clone()));
    errors
}

/// Every string value and object key holding a control character, wherever it is.
fn controls(path: &str, value: &Value, out: &mut Vec<FieldError>) {
    match value {
        Value::String(s) if has_control(s) => {
            out.push(FieldError::new(path, TextProblem::Control.message()));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                controls(&format!("{path}[{i}]"), item, out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let here = join(path, key);
                if has_control(key) {
                    out.push(FieldError::new(
                        here.clone(),
                        "field names must not contain control characters",
                    ));
                }
                controls(&here, item, out);
            }
        }
        _ => {}
    }
}

/// Turns numbers with no fractional part written as floats (`2.0`, `1e3`) into integers, since
/// JSON Schema's `integer` (what the document promises) accepts them while the typed fields
/// would not.
pub fn normalize_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                let exact = f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0;
                if exact {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(fields) => fields.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// The Unicode policy for an identifier or a name at `path` (control characters are reported
/// by [`controls`] already).
fn name_text(path: &str, text: &str, out: &mut Vec<FieldError>) {
    if let Some(TextProblem::Invisible) = check_name_text(text) {
        out.push(FieldError::new(path, TextProblem::Invisible.message()));
    }
}

/// The `customerId` query filter: what a stored customer id can be.
pub fn check_customer_filter(value: &str) -> Option<FieldError> {
    if value.is_empty() || value.chars().count() > 128 {
        return Some(FieldError::new("customerId", "must be 1-128 characters"));
    }
    check_name_text(value).map(|problem| FieldError::new("customerId", problem.message()))
}

fn dotted(location: &jsonschema::paths::Location) -> String {
    let mut out = String::new();
    for segment in location.segments() {
        match segment {
            LocationSegment::Property(p) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&p);
            }
            LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn type_names(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn schema_error(error: &jsonschema::ValidationError<'_>, out: &mut Vec<FieldError>) {
    let path = dotted(error.instance_path());
    let is_provider_key = path.starts_with("spec.providerKeys.")
        || ChannelSecret::ALL.iter().any(|s| s.path() == path);
    let message = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for field in unexpected {
                out.push(FieldError::new(join(&path, field), "unknown field"));
            }
            return;
        }
        ValidationErrorKind::Required { property } => {
            let field = property.as_str().unwrap_or_default();
            out.push(FieldError::new(join(&path, field), "required field is missing"));
            return;
        }
        _ if is_provider_key => {
            "must be a string (set the value), the object {\"set\": true} (keep the stored value) or null (remove it)".to_owned()
        }
        ValidationErrorKind::Type { kind } => format!("must be of type {}", type_names(kind)),
        ValidationErrorKind::Enum { options } => format!("must be one of {options}"),
        ValidationErrorKind::Constant { expected_value } => format!("must be {expected_value}"),
        ValidationErrorKind::Minimum { .. } if path == MEMORY_PATH => memory_minimum_message(),
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be more than {limit}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} character(s) long")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("must be at most {limit} characters long")
        }
        ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} item(s)"),
        ValidationErrorKind::MaxItems { limit } => format!("must have at most {limit} items"),
        ValidationErrorKind::Pattern { pattern } => format!("must match {pattern}"),
        ValidationErrorKind::MultipleOf { multiple_of } => {
            format!("must be a multiple of {multiple_of}")
        }
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            "does not match any allowed form".to_owned()
        }
        _ => "is invalid".to_owned(),
    };
    out.push(FieldError::new(path, message));
}

fn is_printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// Rules beyond the schema. Reads the raw JSON and skips fields of the wrong type (the schema
/// already reported those), applying defaults for omitted ones.
fn semantic(name: &str, body: &Value, out: &mut Vec<FieldError>) {
    if let Some(v) = body.get("apiVersion").and_then(Value::as_str) {
        if v != API_VERSION {
            out.push(FieldError::new(
                "apiVersion",
                format!("must be {API_VERSION}"),
            ));
        }
    }
    if let Some(v) = body.get("kind").and_then(Value::as_str) {
        if v != KIND {
            out.push(FieldError::new("kind", format!("must be {KIND}")));
        }
    }
    if let Some(meta) = body.get("metadata") {
        check_metadata(name, meta, out);
    }
    let Some(spec) = body.get("spec").filter(|s| s.is_object()) else {
        return;
    };
    if let Some(c) = spec.get("customerId").and_then(Value::as_str) {
        if !is_printable(c) || c.trim().is_empty() {
            out.push(FieldError::new(
                "spec.customerId",
                "must be 1-128 printable characters",
            ));
        }
        name_text("spec.customerId", c, out);
    }
    if let Some(image) = spec.get("image").and_then(Value::as_str) {
        if let Err(why) = check_image(image) {
            out.push(FieldError::new("spec.image", why));
        }
    }
    check_guest(spec.get("guest"), out);
    if let Some(model) = spec.get("model") {
        check_model(model, out);
    }
    if let Some(keys) = spec.get("providerKeys").and_then(Value::as_object) {
        check_provider_keys(keys, out);
    }
    if let Some(channels) = spec.get("channels").and_then(Value::as_object) {
        check_channels(channels, out);
    }
    let text = |section: &str, field: &str| {
        spec.get(section)
            .and_then(|c| c.get(field))
            .and_then(Value::as_str)
    };
    if let Some(e) = text("composio", "entityId") {
        if e.trim().is_empty() || !is_printable(e) {
            out.push(FieldError::new(
                "spec.composio.entityId",
                "must be 1-128 printable characters",
            ));
        }
        name_text("spec.composio.entityId", e, out);
    }
    if let Some(d) = text("identity", "displayName") {
        if d.trim().is_empty() || !is_printable(d) {
            out.push(FieldError::new(
                "spec.identity.displayName",
                "must be 1-64 printable characters",
            ));
        }
        name_text("spec.identity.displayName", d, out);
    }
    check_approvals(spec, out);
    check_channel_decisions(spec, out);
}

/// A channel id as OpenClaw names its channel plugins: a lowercase letter, then up to 31
/// lowercase letters, digits and `-` (`telegram`, `nextcloud-talk`).
pub fn valid_channel(channel: &str) -> bool {
    let mut bytes = channel.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && channel.len() <= 32
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A DM pairing request id: OpenClaw's are 32 characters of base64url; anything of that
/// alphabet up to 64 characters is taken.
pub fn valid_channel_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `spec.pairing.channelDecisions`: a channel id and an OpenClaw request id each, as the
/// decision endpoints check them, and a printable id.
fn check_channel_decisions(spec: &Value, out: &mut Vec<FieldError>) {
    let Some(decisions) = spec
        .get("pairing")
        .and_then(|p| p.get("channelDecisions"))
        .and_then(Value::as_array)
    else {
        return;
    };
    let (channel_ok, request_ok) = (valid_channel, valid_channel_request_id);
    for (i, d) in decisions.iter().enumerate() {
        let text = |field: &str| d.get(field).and_then(Value::as_str);
        if text("channel").is_some_and(|c| !channel_ok(c)) {
            out.push(FieldError::new(
                format!("spec.pairing.channelDecisions[{i}].channel"),
                "must be a channel id (a lowercase letter, then up to 31 lowercase letters, digits and -)",
            ));
        }
        if text("requestId").is_some_and(|r| !request_ok(r)) {
            out.push(FieldError::new(
                format!("spec.pairing.channelDecisions[{i}].requestId"),
                "must be 1-64 characters of A-Z, a-z, 0-9, _ and -",
            ));
        }
        if text("id").is_some_and(|id| id.trim().is_empty() || !is_printable(id) || id.len() > 64) {
            out.push(FieldError::new(
                format!("spec.pairing.channelDecisions[{i}].id"),
                "must be 1-64 printable characters",
            ));
        }
    }
}

/// `metadata`: the name matches the path, a resource version the server issued, label keys and
/// values of Kubernetes' sizes.
fn check_metadata(name: &str, meta: &Value, out: &mut Vec<FieldError>) {
    if let Some(n) = meta.get("name").and_then(Value::as_str) {
        if n != name {
            out.push(FieldError::new(
                "metadata.name",
                "must equal the name in the path",
            ));
        }
    }
    if let Some(v) = meta.get("resourceVersion").and_then(Value::as_str) {
        if v.parse::<i64>().is_err() {
            out.push(FieldError::new(
                "metadata.resourceVersion",
                "must be a resource version returned by the server",
            ));
        }
    }
    let Some(labels) = meta.get("labels").and_then(Value::as_object) else {
        return;
    };
    // Kubernetes' label rules, the same the label selectors use, so every label can be selected.
    for (key, value) in labels {
        if let Some(problem) = label_key_problem(key) {
            out.push(FieldError::new(
                "metadata.labels",
                format!("a label key is invalid: {problem}"),
            ));
        }
        if let Some(v) = value.as_str() {
            let path = format!("metadata.labels.{key}");
            let before = out.len();
            name_text(&path, v, out);
            if out.len() == before {
                if let Some(problem) = label_value_problem(v) {
                    out.push(FieldError::new(path, problem));
                }
            }
        }
    }
}

/// `spec.model`: a primary model name and fallbacks of 1-200 printable characters.
fn check_model(model: &Value, out: &mut Vec<FieldError>) {
    if let Some(p) = model.get("primary").and_then(Value::as_str) {
        if p.trim().is_empty() || !is_printable(p) {
            out.push(FieldError::new(
                "spec.model.primary",
                "must be a model name",
            ));
        }
    }
    let Some(fallbacks) = model.get("fallbacks").and_then(Value::as_array) else {
        return;
    };
    for (i, f) in fallbacks.iter().enumerate() {
        if let Some(f) = f.as_str() {
            if f.trim().is_empty() || f.chars().count() > 200 || !is_printable(f) {
                out.push(FieldError::new(
                    format!("spec.model.fallbacks[{i}]"),
                    "must be a model name of 1-200 characters",
                ));
            }
        }
    }
}

/// `spec.providerKeys`: values without whitespace (never echoed), or a kept reference.
fn check_provider_keys(keys: &serde_json::Map<String, Value>, out: &mut Vec<FieldError>) {
    for (key, value) in keys {
        check_secret(format!("spec.providerKeys.{key}"), value, out);
    }
}

/// One write-only value: 1–4096 characters without whitespace or control characters (never
/// echoed), or the read shape `{"set": true}` that keeps the stored one.
fn check_secret(path: String, value: &Value, out: &mut Vec<FieldError>) {
    match value {
        Value::String(s)
            if s.is_empty()
                || s.chars().count() > MAX_SECRET_LEN
                || s.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            out.push(FieldError::new(
                path,
                format!(
                    "must be 1-{MAX_SECRET_LEN} characters without whitespace (value not shown)"
                ),
            ));
        }
        Value::Object(o) if o.get("set") == Some(&Value::Bool(false)) => {
            out.push(FieldError::new(
                path,
                "set must be true to keep the stored value; use null to remove it",
            ));
        }
        _ => {}
    }
}

/// `spec.channels`: every credential of a configured channel given (or kept), no `allowlist`
/// without senders, allow-list entries that are sender ids.
fn check_channels(channels: &serde_json::Map<String, Value>, out: &mut Vec<FieldError>) {
    for kind in ChannelKind::ALL {
        let Some(channel) = channels.get(kind.as_str()).and_then(Value::as_object) else {
            continue;
        };
        for secret in kind.secrets() {
            match channel.get(secret.field()) {
                None | Some(Value::Null) => out.push(FieldError::new(
                    secret.path(),
                    "is required while the channel is configured: send the value as a string, or {\"set\": true} to keep the stored one",
                )),
                Some(value) => check_secret(secret.path(), value, out),
            }
        }
        let base = format!("spec.channels.{}", kind.as_str());
        let allow = channel.get("allowFrom").and_then(Value::as_array);
        if channel.get("dmPolicy").and_then(Value::as_str) == Some("allowlist")
            && allow.is_none_or(|a| a.is_empty())
        {
            out.push(FieldError::new(
                format!("{base}.allowFrom"),
                "must name at least one sender when dmPolicy is allowlist (an empty allow-list blocks every DM)",
            ));
        }
        for (i, entry) in allow.into_iter().flatten().enumerate() {
            if let Some(problem) = entry.as_str().and_then(|e| sender_problem(kind, e)) {
                out.push(FieldError::new(format!("{base}.allowFrom[{i}]"), problem));
            }
        }
    }
}

/// Why `entry` is not a sender id of `kind`'s allow-list, if it is not.
fn sender_problem(kind: ChannelKind, entry: &str) -> Option<&'static str> {
    if entry == "*" {
        return Some("must be a sender id: \"*\" (anyone) is not offered; use dmPolicy pairing");
    }
    if entry.is_empty() || entry.chars().count() > 128 || entry.chars().any(char::is_whitespace) {
        return Some("must be a sender id of 1-128 characters without whitespace");
    }
    if kind == ChannelKind::Telegram {
        let id = entry
            .strip_prefix("telegram:")
            .or_else(|| entry.strip_prefix("tg:"))
            .unwrap_or(entry);
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Some(
                "must be a numeric Telegram user id (optionally prefixed telegram: or tg:)",
            );
        }
    }
    None
}

/// `spec.pairing.approvals`: each names exactly one of a request id or the latest request.
fn check_approvals(spec: &Value, out: &mut Vec<FieldError>) {
    let Some(approvals) = spec
        .get("pairing")
        .and_then(|p| p.get("approvals"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for (i, a) in approvals.iter().enumerate() {
        let Some(a) = a.as_object() else { continue };
        let by_id = a.get("requestId").is_some_and(|v| v.is_string());
        let latest = a.get("latest") == Some(&Value::Bool(true));
        if by_id == latest {
            out.push(FieldError::new(
                format!("spec.pairing.approvals[{i}]"),
                "must name exactly one of requestId or latest: true",
            ));
        }
    }
}

/// A sane image reference: no whitespace, at most 255 characters, `name[:tag][@sha256:<64 hex>]`.
pub fn check_image(image: &str) -> Result<(), String> {
    if image.is_empty() || image.len() > 255 {
        return Err("must be 1-255 characters".to_owned());
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let ok = d
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err("digest must be sha256:<64 hex digits>".to_owned());
        }
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._-/:".contains(&b);
    if name_tag.is_empty()
        || !name_tag.bytes().all(allowed)
        || name_tag.starts_with(['/', ':', '.', '-'])
        || name_tag.ends_with(['/', ':'])
        || name_tag.contains("//")
    {
        return Err("must be an image reference like registry/repository:tag".to_owned());
    }
    Ok(())
}

/// The least memory a gateway machine may have (also the schema's minimum of `memoryMb`).
/// OpenClaw's Fly guide: "512MB is too small. 1GB may work but can OOM under load or with
/// verbose logging. 2GB is recommended."
pub const MIN_MEMORY_MB: u64 = 1024;

const MEMORY_PATH: &str = "spec.guest.memoryMb";

/// Why too little memory is refused, in OpenClaw's words.
fn memory_minimum_message() -> String {
    format!("must be at least {MIN_MEMORY_MB} MB: OpenClaw's gateway runs out of memory below that (its Fly guide: 512 MB is too small, 2048 MB recommended)")
}

fn check_guest(guest: Option<&Value>, out: &mut Vec<FieldError>) {
    let guest = match guest {
        None => return,
        Some(g) if !g.is_object() => return,
        Some(g) => g,
    };
    let kind = match guest.get("cpuKind") {
        None => Some("shared"),
        Some(v) => v.as_str().filter(|k| ["shared", "performance"].contains(k)),
    };
    let cpus = match guest.get("cpus") {
        None => Some(2),
        Some(v) => v.as_u64(),
    };
    let memory = match guest.get("memoryMb") {
        None => Some(2048),
        Some(v) => v.as_u64(),
    };
    let mut cpus_ok = false;
    if let Some(c) = cpus {
        cpus_ok = [1, 2, 4, 8, 16].contains(&c);
        if !cpus_ok {
            out.push(FieldError::new(
                "spec.guest.cpus",
                "must be one of 1, 2, 4, 8, 16",
            ));
        }
    }
    if let Some(m) = memory {
        if m % 256 != 0 {
            out.push(FieldError::new(
                "spec.guest.memoryMb",
                "must be a multiple of 256",
            ));
        } else if m < MIN_MEMORY_MB {
            // The schema's minimum already said so (see `memory_minimum_message`).
            return;
        }
        if let (Some(kind), Some(c), true) = (kind, cpus, cpus_ok) {
            let (lo, hi) = match kind {
                "performance" => (2048 * c, 8192 * c),
                _ => (256 * c, 2048 * c),
            };
            if !(lo..=hi).contains(&m) {
                out.push(FieldError::new(
                    "spec.guest.memoryMb",
                    format!("must be between {lo} and {hi} MB for {c} {kind} CPU(s)"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(valid_name("abc"));
        assert!(valid_name("a-1-b"));
        assert!(!valid_name("ab"));
        assert!(!valid_name("-abc"));
        assert!(!valid_name("abc-"));
        assert!(!valid_name("ABC"));
        assert!(!valid_name(&"a".repeat(41)));
    }

    #[test]
    fn images() {
        assert!(check_image("ghcr.io/openclaw/openclaw:main").is_ok());
        assert!(check_image(&format!("ghcr.io/o/o@sha256:{}", "a".repeat(64))).is_ok());
        assert!(check_image("has space").is_err());
        assert!(check_image("x@sha256:zz").is_err());
    }

    #[test]
    fn schema_compiles_and_collects_errors() {
        assert!(schema_ready());
        let errors = validate_write(
            "abc",
            &json!({"spec": {"region": "IAD", "guest": {"cpus": 3}, "bogus": 1}, "extra": 1}),
        );
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "spec.customerId",
            "spec.region",
            "spec.guest.cpus",
            "spec.bogus",
            "extra",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
    }
}
