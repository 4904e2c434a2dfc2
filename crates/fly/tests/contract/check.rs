//! Checks recorded exchanges and typed values against the vendored documents.

use super::allowances;
use super::harness::Exchange;
use fly_sim::contract::{problems, Allowances, Answer, Document, Mode, Operation, Validator};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Compiled validators, by document, schema and mode.
#[derive(Default)]
pub struct Checker {
    cache: HashMap<(String, String, &'static str), Validator>,
    /// Every problem found, one line each.
    pub problems: Vec<String>,
    /// Operations seen, as `METHOD template`.
    pub seen: Vec<String>,
}

fn allowances_of(doc: &Document) -> Allowances {
    if doc.name == "fly" {
        allowances::fly()
    } else {
        allowances::cloudflare()
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Request => "request",
        Mode::Response => "response",
        Mode::Typed => "typed",
    }
}

impl Checker {
    /// Problems of `instance` against `schema` of `doc` in `mode`.
    pub fn validate(
        &mut self,
        doc: &Document,
        schema: &Value,
        mode: Mode,
        instance: &Value,
    ) -> Vec<String> {
        let key = (doc.name.to_owned(), schema.to_string(), mode_name(mode));
        if !self.cache.contains_key(&key) {
            let v = doc
                .validator(schema, mode, &allowances_of(doc))
                .unwrap_or_else(|e| panic!("{e}"));
            self.cache.insert(key.clone(), v);
        }
        problems(&self.cache[&key], instance)
    }

    /// Checks a value a client returned, serialized again, against component `schema`: a field
    /// the client names differently from the document shows up as undeclared.
    pub fn typed<T: Serialize>(&mut self, doc: &Document, schema: &str, what: &str, value: &T) {
        let value = serde_json::to_value(value).expect("serializable");
        let schema = json!({"$ref": format!("#/components/schemas/{schema}")});
        for p in self.validate(doc, &schema, Mode::Typed, &value) {
            self.problems
                .push(format!("{what} (typed, as {schema}): {p}"));
        }
    }

    /// Checks one exchange: operation, query, headers, request body, answer.
    pub fn exchange(&mut self, e: &Exchange) {
        let Some(doc) = Document::for_path(&e.path) else {
            return;
        };
        let Some(op) = doc.operation(&e.method, &e.path) else {
            self.problems.push(format!(
                "{} {}: not an operation of the {} document",
                e.method, e.path, doc.name
            ));
            return;
        };
        let name = op.name();
        self.seen.push(name.clone());
        let extra = allowances::undeclared_query(&name);
        let query: Vec<(String, String)> = e
            .query
            .iter()
            .filter(|(k, _)| !extra.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut found = op.check_query(&query);
        found.extend(
            op.missing_headers(|h| e.request_headers.iter().any(|x| x.eq_ignore_ascii_case(h))),
        );
        found.extend(self.request(doc, &op, e));
        found.extend(self.answer(doc, &op, e));
        for p in found {
            self.problems.push(format!("{name} ({}): {p}", e.status));
        }
    }

    fn request(&mut self, doc: &Document, op: &Operation<'_>, e: &Exchange) -> Vec<String> {
        if e.request_body.is_empty() {
            return Vec::new();
        }
        let Some(schema) = op.request_schema() else {
            if op.has_request_body() {
                return Vec::new();
            }
            return vec!["sends a body where the operation declares none".into()];
        };
        match serde_json::from_slice::<Value>(&e.request_body) {
            Ok(body) => self
                .validate(doc, schema, Mode::Request, &body)
                .into_iter()
                .map(|p| format!("request body {p}"))
                .collect(),
            Err(err) => vec![format!("request body is not JSON: {err}")],
        }
    }

    fn answer(&mut self, doc: &Document, op: &Operation<'_>, e: &Exchange) -> Vec<String> {
        let body: Value = match serde_json::from_slice(&e.response_body) {
            Ok(v) => v,
            Err(_) if e.response_body.is_empty() => Value::Null,
            Err(err) => return vec![format!("answer is not JSON: {err}")],
        };
        match op.answer(e.status, &e.content_type) {
            Answer::NoContent => Vec::new(),
            Answer::UndeclaredContentType => {
                vec![format!("content type {:?} is not declared", e.content_type)]
            }
            Answer::UndeclaredStatus if e.status >= 400 => self.error(doc, op, &body),
            Answer::UndeclaredStatus => vec!["status is not declared".into()],
            Answer::Schema(_) if doc.name == "cloudflare" && e.status >= 400 => {
                self.error(doc, op, &body)
            }
            Answer::Schema(schema) => {
                if allowances::lease_envelope(&op.template) && body.get("data").is_some() {
                    return self.lease_envelope(doc, &body);
                }
                let fixed = allowances::cloudflare_delete_answer(&op.name());
                self.validate(doc, fixed.as_ref().unwrap_or(schema), Mode::Response, &body)
                    .into_iter()
                    .map(|p| format!("answer {p}"))
                    .collect()
            }
        }
    }

    /// An error the document does not declare (or, for Cloudflare, declares as an impossible
    /// `allOf` of a success and a failure): Fly's `ErrorResponse` (leases: their envelope),
    /// Cloudflare's common failure.
    fn error(&mut self, doc: &Document, op: &Operation<'_>, body: &Value) -> Vec<String> {
        let name = match doc.name {
            "fly" if allowances::lease_envelope(&op.template) && body.get("message").is_some() => {
                let keys = allowances::lease_error_keys();
                return body
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| !keys.contains(&k.as_str()))
                    .map(|(k, _)| format!("lease error carries {k:?}"))
                    .collect();
            }
            "fly" if !body.is_object() => return Vec::new(),
            "fly" => "ErrorResponse",
            _ => "dns-records_api-response-common-failure",
        };
        let schema = json!({"$ref": format!("#/components/schemas/{name}")});
        self.validate(doc, &schema, Mode::Response, body)
            .into_iter()
            .map(|p| format!("error answer {p}"))
            .collect()
    }

    fn lease_envelope(&mut self, doc: &Document, body: &Value) -> Vec<String> {
        let mut found: Vec<String> = body
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !matches!(k.as_str(), "status" | "data"))
            .map(|(k, _)| format!("lease envelope carries {k:?}"))
            .collect();
        let schema = json!({"$ref": "#/components/schemas/Lease"});
        found.extend(
            self.validate(doc, &schema, Mode::Response, &body["data"])
                .into_iter()
                .map(|p| format!("lease envelope data {p}")),
        );
        found
    }
}
