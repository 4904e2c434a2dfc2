//! The `OpenClawInstance` CustomResourceDefinition, derived from the same utoipa schemas as the
//! API, so the resource can be documented and applied with Kubernetes tooling. Kubernetes wants
//! OpenAPI 3.0 *structural* schemas: no `$ref`, `nullable: true` instead of type arrays, a `type`
//! on every node, and no `additionalProperties` beside `properties`.

use serde_json::{json, Map, Value};

use crate::schema::inlined_schema;
use crate::{OpenClawInstance, GROUP, KIND, PLURAL, VERSION};

/// The CRD as a JSON value.
pub fn crd() -> Value {
    let mut schema = structural(inlined_schema::<OpenClawInstance>());
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert("metadata".to_owned(), json!({"type": "object"}));
    }
    if let Some(object) = schema.as_object_mut() {
        object.insert("required".to_owned(), json!(["spec"]));
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{PLURAL}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": format!("{KIND}List"),
                "plural": PLURAL,
                "singular": KIND.to_ascii_lowercase(),
                "shortNames": ["oci"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Ready", "type": "string",
                     "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    })
}

/// The CRD as YAML, as checked in under `crds/`.
pub fn crd_yaml() -> String {
    serde_norway::to_string(&crd()).unwrap_or_default()
}

/// Converts an inlined OpenAPI 3.1 schema to the Kubernetes structural OpenAPI 3.0 form.
fn structural(value: Value) -> Value {
    let Value::Object(mut object) = value else {
        return value;
    };
    for key in ["$schema", "examples", "example", "title"] {
        object.remove(key);
    }
    if let Some(Value::Array(types)) = object.get("type").cloned() {
        let non_null: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
        if non_null.len() == 1 {
            object.insert("type".to_owned(), non_null[0].clone());
            object.insert("nullable".to_owned(), Value::Bool(true));
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(variants)) = object.get(key).cloned() {
            let has_null = variants
                .iter()
                .any(|v| v.get("type") == Some(&json!("null")));
            let rest: Vec<Value> = variants
                .into_iter()
                .filter(|v| v.get("type") != Some(&json!("null")))
                .collect();
            if has_null && rest.len() == 1 {
                object.remove(key);
                if let Value::Object(inner) = structural(rest[0].clone()) {
                    for (k, v) in inner {
                        object.entry(k).or_insert(v);
                    }
                }
                object.insert("nullable".to_owned(), Value::Bool(true));
            }
        }
    }
    if object.contains_key("properties") {
        object.remove("additionalProperties");
    }
    if object.get("enum").is_some() && !object.contains_key("type") {
        object.insert("type".to_owned(), json!("string"));
    }
    let converted: Map<String, Value> = object
        .into_iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "properties" => match v {
                    Value::Object(props) => {
                        Value::Object(props.into_iter().map(|(p, s)| (p, structural(s))).collect())
                    }
                    other => other,
                },
                "items" | "additionalProperties" | "not" => structural(v),
                "allOf" | "oneOf" | "anyOf" => match v {
                    Value::Array(items) => {
                        Value::Array(items.into_iter().map(structural).collect())
                    }
                    other => other,
                },
                _ => v,
            };
            (k, v)
        })
        .collect();
    Value::Object(converted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(value: &Value, path: &str, problems: &mut Vec<String>) {
        match value {
            Value::Object(o) => {
                if o.contains_key("$ref") {
                    problems.push(format!("{path}: $ref"));
                }
                if o.get("type").is_some_and(Value::is_array) {
                    problems.push(format!("{path}: type array"));
                }
                if o.contains_key("properties") && o.contains_key("additionalProperties") {
                    problems.push(format!("{path}: additionalProperties beside properties"));
                }
                for (k, v) in o {
                    walk(v, &format!("{path}/{k}"), problems);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v, &format!("{path}/{i}"), problems);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn schema_is_structural() {
        let crd = crd();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut problems = Vec::new();
        walk(schema, "", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            schema["properties"]["spec"]["properties"]["region"]["type"],
            "string"
        );
    }
}
