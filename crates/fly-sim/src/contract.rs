//! The vendored API documents (`crates/fly-sim/openapi/`) as a contract a test can check traffic
//! against: which operation a request is, whether its query and headers are declared, and
//! whether a body validates against the operation's schema with every object schema closed (a
//! property the document does not declare fails, so a misnamed field cannot pass).
//!
//! OpenAPI 3.0 schemas are turned into JSON Schema 2020-12 for the `jsonschema` crate: `$ref`s
//! point into the converted components, `nullable` becomes a `null` alternative, and an object
//! schema gets `unevaluatedProperties: false` (which sees through `allOf`, so composed schemas
//! close as a whole). Three modes: a request (`readOnly` properties may not be sent and are not
//! required, as OpenAPI says), an answer (as written), and a typed value a client parsed and
//! serialized again (nothing required, `null` for a declared property means "absent").
//!
//! Where a document is wrong or silent, a test passes [`Allowances`], each one place and a
//! reason. The simulator never checks its traffic at run time; this is for tests.

pub use jsonschema::Validator;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::sync::LazyLock;

/// Why a contract could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The converted schema did not compile.
    #[error("schema does not compile: {0}")]
    Schema(String),
}

/// What is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A request body a client sent.
    Request,
    /// An answer body a server sent.
    Response,
    /// A value a client parsed from an answer, serialized again.
    Typed,
}

/// An extra alternative accepted at one place of one component schema (e.g. `null` where the
/// service sends it and the document does not say so).
#[derive(Debug, Clone)]
pub struct Widen {
    /// Component schema name, e.g. `listIPAssignmentsResponse`.
    pub schema: &'static str,
    /// JSON pointer inside it, e.g. `/properties/ips`.
    pub pointer: &'static str,
    /// The schema also accepted there (OpenAPI 3.0 / JSON Schema), e.g. `{"type": "null"}`.
    pub also: Value,
    /// The modes it applies to.
    pub modes: &'static [Mode],
    /// Why the document is wrong or silent here.
    pub why: &'static str,
}

/// A property treated as `readOnly` although the document does not mark it so.
#[derive(Debug, Clone)]
pub struct ReadOnly {
    /// Component schema declaring the property.
    pub schema: &'static str,
    /// The property.
    pub property: &'static str,
    /// Why.
    pub why: &'static str,
}

/// The narrow exceptions a test makes to a document.
#[derive(Debug, Clone, Default)]
pub struct Allowances {
    /// Extra alternatives at given places.
    pub widen: Vec<Widen>,
    /// Properties never sent in requests.
    pub read_only: Vec<ReadOnly>,
}

/// One vendored OpenAPI document.
#[derive(Debug)]
pub struct Document {
    /// Short name (`fly`, `cloudflare`).
    pub name: &'static str,
    /// Path prefix of its operations on the simulator (`""`, `/client/v4`).
    pub prefix: &'static str,
    doc: Value,
}

static FLY: LazyLock<Document> = LazyLock::new(|| {
    Document::parse(
        "fly",
        "",
        include_str!("../openapi/fly-machines.openapi.json"),
    )
});
static CLOUDFLARE: LazyLock<Document> = LazyLock::new(|| {
    Document::parse(
        "cloudflare",
        "/client/v4",
        include_str!("../openapi/cloudflare-dns-records.openapi.json"),
    )
});

/// Where a response's schema comes from.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'d> {
    /// The document gives a schema for this status and content type.
    Schema(&'d Value),
    /// The status is declared without content.
    NoContent,
    /// The status is declared, the content type is not.
    UndeclaredContentType,
    /// The status is not declared.
    UndeclaredStatus,
}

impl Document {
    fn parse(name: &'static str, prefix: &'static str, text: &str) -> Self {
        let doc = serde_json::from_str(text).expect("the vendored document is JSON");
        Self { name, prefix, doc }
    }

    /// Fly's Machines API document.
    pub fn fly() -> &'static Document {
        &FLY
    }

    /// Cloudflare's DNS records document.
    pub fn cloudflare() -> &'static Document {
        &CLOUDFLARE
    }

    /// The document a simulator path belongs to.
    pub fn for_path(path: &str) -> Option<&'static Document> {
        if path.starts_with("/client/v4/") {
            Some(Self::cloudflare())
        } else if path.starts_with("/v1/") {
            Some(Self::fly())
        } else {
            None
        }
    }

    /// A component schema by name.
    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.doc
            .pointer(&format!("/components/schemas/{}", escape(name)))
    }

    /// The operation `method path` is (the most specific template wins), if declared.
    pub fn operation(&self, method: &str, path: &str) -> Option<Operation<'_>> {
        let path = path.strip_prefix(self.prefix)?;
        let segments: Vec<&str> = path.split('/').collect();
        let method = method.to_ascii_lowercase();
        let mut best: Option<(usize, &str, &Value)> = None;
        for (template, item) in self.doc["paths"].as_object()? {
            let Some(op) = item.get(&method) else {
                continue;
            };
            let Some(literals) = matches_template(template, &segments) else {
                continue;
            };
            if best.is_none_or(|(n, _, _)| literals > n) {
                best = Some((literals, template, op));
            }
        }
        best.map(|(_, template, op)| Operation {
            doc: self,
            method,
            template: template.to_owned(),
            op,
        })
    }

    /// A validator for `schema` (a schema object of this document, e.g. `{"$ref": …}`).
    pub fn validator(
        &self,
        schema: &Value,
        mode: Mode,
        allow: &Allowances,
    ) -> Result<jsonschema::Validator, ContractError> {
        let converted = Converter::new(self, mode, allow).root(schema);
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&converted)
            .map_err(|e| ContractError::Schema(e.to_string()))
    }
}

/// How many literal segments `template` shares with `segments`, if it matches them.
fn matches_template(template: &str, segments: &[&str]) -> Option<usize> {
    let parts: Vec<&str> = template.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut literals = 0;
    for (part, seg) in parts.iter().zip(segments) {
        if part.starts_with('{') && part.ends_with('}') && !seg.is_empty() {
            continue;
        }
        if part != seg {
            return None;
        }
        literals += 1;
    }
    Some(literals)
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// One operation of a document.
#[derive(Debug, Clone)]
pub struct Operation<'d> {
    /// The document.
    pub doc: &'d Document,
    /// Lowercase method.
    pub method: String,
    /// Its path template, e.g. `/v1/apps/{app_name}/machines`.
    pub template: String,
    op: &'d Value,
}

impl<'d> Operation<'d> {
    /// `METHOD template`, for messages.
    pub fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.template)
    }

    /// Its JSON request body schema, if it declares one.
    pub fn request_schema(&self) -> Option<&'d Value> {
        self.op
            .pointer("/requestBody/content/application~1json/schema")
    }

    /// Whether it declares a request body at all (with or without a schema).
    pub fn has_request_body(&self) -> bool {
        self.op.get("requestBody").is_some()
    }

    /// Where the schema of an answer with `status` and `content_type` comes from.
    pub fn answer(&self, status: u16, content_type: &str) -> Answer<'d> {
        let responses = &self.op["responses"];
        let class = format!("{}XX", status / 100);
        let Some(response) = [status.to_string(), class, "default".into()]
            .iter()
            .find_map(|key| responses.get(key))
        else {
            return Answer::UndeclaredStatus;
        };
        let content = response.get("content").and_then(Value::as_object);
        let Some(content) = content.filter(|c| !c.is_empty()) else {
            return Answer::NoContent;
        };
        let media = content_type.split(';').next().unwrap_or("").trim();
        match content.get(media) {
            Some(m) => m.get("schema").map_or(Answer::NoContent, Answer::Schema),
            None => Answer::UndeclaredContentType,
        }
    }

    fn parameters(&self, location: &str) -> impl Iterator<Item = &'d Value> + '_ {
        let location = location.to_owned();
        self.op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(move |p| p["in"] == location.as_str())
    }

    /// Problems with a query string: parameters the operation does not declare (templates like
    /// `metadata.{key}` match by prefix), values of the wrong type, required ones missing.
    pub fn check_query(&self, pairs: &[(String, String)]) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in pairs {
            let param = self.parameters("query").find(|p| {
                let name = p["name"].as_str().unwrap_or_default();
                match name.split_once('{') {
                    Some((prefix, _)) => key.starts_with(prefix) && key.len() > prefix.len(),
                    None => name == key,
                }
            });
            match param {
                None => problems.push(format!("query parameter {key:?} is not declared")),
                Some(p) => problems.extend(check_value(key, value, &p["schema"])),
            }
        }
        for p in self.parameters("query").filter(|p| p["required"] == true) {
            let name = p["name"].as_str().unwrap_or_default();
            if !pairs.iter().any(|(k, _)| k == name) {
                problems.push(format!("required query parameter {name:?} is missing"));
            }
        }
        problems
    }

    /// Required header parameters that `present` says are missing.
    pub fn missing_headers(&self, present: impl Fn(&str) -> bool) -> Vec<String> {
        self.parameters("header")
            .filter(|p| p["required"] == true)
            .filter_map(|p| p["name"].as_str())
            .filter(|name| !present(name))
            .map(|name| format!("required header {name:?} is missing"))
            .collect()
    }
}

/// Whether a query value fits its declared schema (type and enum).
fn check_value(key: &str, value: &str, schema: &Value) -> Option<String> {
    let fits = match schema["type"].as_str() {
        Some("integer") => value.parse::<i64>().is_ok(),
        Some("number") => value.parse::<f64>().is_ok(),
        Some("boolean") => matches!(value, "true" | "false"),
        _ => true,
    };
    let allowed = schema["enum"]
        .as_array()
        .is_none_or(|e| e.iter().any(|v| v == value));
    (!fits || !allowed).then(|| format!("query parameter {key}={value:?} does not fit {schema}"))
}

/// Validation problems of `instance`, one line each (empty when it is valid).
pub fn problems(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect()
}

/// OpenAPI 3.0 → JSON Schema 2020-12, closing object schemas.
struct Converter<'a> {
    doc: &'a Document,
    mode: Mode,
    allow: &'a Allowances,
    /// Property names that are read-only anywhere (dropped from `required` in requests).
    read_only_names: HashSet<String>,
}

/// OpenAPI keywords with no JSON Schema meaning (or handled separately).
const DROPPED: [&str; 8] = [
    "nullable",
    "readOnly",
    "writeOnly",
    "example",
    "discriminator",
    "xml",
    "externalDocs",
    "deprecated",
];

impl<'a> Converter<'a> {
    fn new(doc: &'a Document, mode: Mode, allow: &'a Allowances) -> Self {
        let mut read_only_names: HashSet<String> = allow
            .read_only
            .iter()
            .map(|r| r.property.to_owned())
            .collect();
        collect_read_only(&doc.doc, &mut read_only_names);
        Self {
            doc,
            mode,
            allow,
            read_only_names,
        }
    }

    /// The whole validator schema: `schema` at the root, every component in `$defs`, closed
    /// and open.
    fn root(&self, schema: &Value) -> Value {
        let mut closed = Map::new();
        let mut open = Map::new();
        if let Some(components) = self.doc.doc["components"]["schemas"].as_object() {
            for (name, s) in components {
                closed.insert(name.clone(), self.convert(s, true, name, ""));
                open.insert(name.clone(), self.convert(s, false, name, ""));
            }
        }
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": {"closed": closed, "open": open},
            "allOf": [self.convert(schema, true, "", "")],
        })
    }

    fn convert(&self, node: &Value, closed: bool, comp: &str, ptr: &str) -> Value {
        let Value::Object(map) = node else {
            return node.clone();
        };
        let mut out = match map.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                let variant = if closed { "closed" } else { "open" };
                json!({"$ref": format!("#/$defs/{variant}/{}", escape(name))})
            }
            None => self.keywords(map, closed, comp, ptr),
        };
        for w in &self.allow.widen {
            if w.schema == comp && w.pointer == ptr && w.modes.contains(&self.mode) {
                out = json!({"anyOf": [out, self.convert(&w.also, true, "", "")]});
            }
        }
        out
    }

    fn keywords(&self, map: &Map<String, Value>, closed: bool, comp: &str, ptr: &str) -> Value {
        let mut out = Map::new();
        for (key, value) in map {
            let at = |k: &str| format!("{ptr}/{key}{k}");
            let converted = match key.as_str() {
                "properties" => self.properties(value, comp, ptr),
                "items" => self.convert(value, true, comp, &at("")),
                "additionalProperties" if value.is_object() => {
                    self.convert(value, true, comp, &at(""))
                }
                "allOf" | "oneOf" | "anyOf" => {
                    let member_closed = closed && key != "allOf";
                    let members = value.as_array().into_iter().flatten().enumerate();
                    let members = members
                        .map(|(i, m)| self.convert(m, member_closed, comp, &at(&format!("/{i}"))));
                    Value::Array(members.collect())
                }
                "required" => match self.required(value) {
                    Some(r) => r,
                    None => continue,
                },
                k if DROPPED.contains(&k) || k.starts_with("x-") => continue,
                _ => value.clone(),
            };
            out.insert(key.clone(), converted);
        }
        let object_like = map.contains_key("properties") || map.contains_key("allOf");
        if closed && object_like && !map.contains_key("additionalProperties") {
            out.insert("unevaluatedProperties".into(), Value::Bool(false));
        }
        let out = Value::Object(out);
        if map.get("nullable") == Some(&Value::Bool(true)) {
            return json!({"anyOf": [out, {"type": "null"}]});
        }
        out
    }

    fn properties(&self, value: &Value, comp: &str, ptr: &str) -> Value {
        let mut props = Map::new();
        for (name, schema) in value.as_object().into_iter().flatten() {
            if self.mode == Mode::Request && self.is_read_only(comp, name, schema) {
                continue;
            }
            let mut converted =
                self.convert(schema, true, comp, &format!("{ptr}/properties/{name}"));
            if self.mode == Mode::Typed {
                converted = json!({"anyOf": [converted, {"type": "null"}]});
            }
            props.insert(name.clone(), converted);
        }
        Value::Object(props)
    }

    fn is_read_only(&self, comp: &str, name: &str, schema: &Value) -> bool {
        schema["readOnly"] == true
            || self
                .allow
                .read_only
                .iter()
                .any(|r| r.schema == comp && r.property == name)
    }

    /// `required` for this mode: none for a typed value, no read-only names in a request.
    fn required(&self, value: &Value) -> Option<Value> {
        match self.mode {
            Mode::Typed => None,
            Mode::Response => Some(value.clone()),
            Mode::Request => {
                let names = value.as_array().into_iter().flatten();
                let kept =
                    names.filter(|n| n.as_str().is_none_or(|n| !self.read_only_names.contains(n)));
                Some(Value::Array(kept.cloned().collect()))
            }
        }
    }
}

/// Every property name marked `readOnly` in the document.
fn collect_read_only(node: &Value, out: &mut HashSet<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, schema) in props {
                    if schema["readOnly"] == true {
                        out.insert(name.clone());
                    }
                }
            }
            map.values().for_each(|v| collect_read_only(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_read_only(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(doc: &Document, schema: &str, mode: Mode, instance: Value) -> Vec<String> {
        let schema = json!({"$ref": format!("#/components/schemas/{schema}")});
        let v = doc
            .validator(&schema, mode, &Allowances::default())
            .expect("compiles");
        problems(&v, &instance)
    }

    #[test]
    fn operations_are_found_by_method_and_template() {
        let fly = Document::fly();
        let op = fly
            .operation("POST", "/v1/apps/a/certificates/acme")
            .unwrap();
        assert_eq!(op.template, "/v1/apps/{app_name}/certificates/acme");
        let op = fly.operation("GET", "/v1/apps/a/machines/m1/wait").unwrap();
        assert!(op
            .check_query(&[("state".into(), "stopped".into())])
            .is_empty());
        assert_eq!(op.check_query(&[("timeout".into(), "10s".into())]).len(), 1);
        assert_eq!(op.check_query(&[("kill".into(), "true".into())]).len(), 1);
        let list = fly.operation("GET", "/v1/apps/a/machines").unwrap();
        assert!(list
            .check_query(&[("metadata.k".into(), "v".into())])
            .is_empty());
        assert!(fly.operation("PUT", "/v1/apps").is_none());
        let cf = Document::cloudflare();
        assert!(cf
            .operation("GET", "/client/v4/zones/z/dns_records")
            .is_some());
    }

    #[test]
    fn objects_are_closed_through_refs_and_all_of() {
        let fly = Document::fly();
        let ok = json!({"config": {"image": "i", "guest": {"cpus": 1}}, "region": "iad"});
        assert!(validate(fly, "CreateMachineRequest", Mode::Request, ok).is_empty());
        let renamed = json!({"config": {"image": "i", "guest": {"cpu": 1}}});
        let errs = validate(fly, "CreateMachineRequest", Mode::Request, renamed);
        assert!(
            errs.iter().any(|e| e.contains("'cpu' was unexpected")),
            "{errs:?}"
        );
        let typed_null = json!({"id": "m", "private_ip": null});
        assert!(validate(fly, "Machine", Mode::Typed, typed_null.clone()).is_empty());
        assert!(!validate(fly, "Machine", Mode::Response, typed_null).is_empty());
    }

    #[test]
    fn read_only_properties_may_not_be_sent() {
        let cf = Document::cloudflare();
        let record = json!({"type": "A", "name": "a.example.com", "content": "192.0.2.1"});
        let allow = Allowances {
            read_only: vec![ReadOnly {
                schema: "dns-records_base",
                property: "id",
                why: "test",
            }],
            ..Allowances::default()
        };
        let schema = json!({"$ref": "#/components/schemas/dns-records_dns-record"});
        let v = cf.validator(&schema, Mode::Request, &allow).unwrap();
        assert!(
            problems(&v, &record).is_empty(),
            "{:?}",
            problems(&v, &record)
        );
        let mut with_id = record.clone();
        with_id["id"] = json!("");
        assert!(!problems(&v, &with_id).is_empty());
        let mut created = record;
        created["created_on"] = json!("2026-01-01T00:00:00Z");
        assert!(!problems(&v, &created).is_empty());
    }
}
