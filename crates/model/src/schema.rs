//! Self-contained JSON Schemas of the resource types, generated from their utoipa derivations:
//! the request validator and the CRD both start here, so neither can drift from the Rust types.

use serde_json::{Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

const REF_PREFIX: &str = "#/components/schemas/";

/// The schema of `T` with every `$ref` to a component replaced by the component itself
/// (OpenAPI 3.1 / JSON Schema 2020-12 form, as utoipa emits it).
pub fn inlined_schema<T: ToSchema>() -> Value {
    let mut collected: Vec<(String, RefOr<Schema>)> = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut collected);
    let mut components = Map::new();
    for (name, schema) in collected {
        components
            .entry(name)
            .or_insert_with(|| serde_json::to_value(schema).unwrap_or(Value::Null));
    }
    let root = components
        .get(T::name().as_ref())
        .cloned()
        .unwrap_or(Value::Null);
    inline(root, &components, 0)
}

/// Replaces `{"$ref": "#/components/schemas/X"}` by X, recursively. The resource has no
/// recursive types; the depth bound only guards against a future mistake.
fn inline(value: Value, components: &Map<String, Value>, depth: usize) -> Value {
    match value {
        Value::Object(mut object) => {
            if depth < 32 {
                if let Some(Value::String(reference)) = object.get("$ref") {
                    if let Some(target) = reference
                        .strip_prefix(REF_PREFIX)
                        .and_then(|name| components.get(name))
                    {
                        let mut resolved = inline(target.clone(), components, depth + 1);
                        object.remove("$ref");
                        if let Value::Object(resolved_object) = &mut resolved {
                            for (key, v) in object {
                                resolved_object.entry(key).or_insert(v);
                            }
                        }
                        return resolved;
                    }
                }
            }
            Value::Object(
                object
                    .into_iter()
                    .map(|(k, v)| (k, inline(v, components, depth + 1)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| inline(v, components, depth + 1))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstanceWrite, OpenClawInstance};

    #[test]
    fn no_references_remain() {
        for schema in [
            inlined_schema::<OpenClawInstance>(),
            inlined_schema::<InstanceWrite>(),
        ] {
            let text = schema.to_string();
            assert!(!text.contains("$ref"), "unresolved reference in {text}");
        }
    }
}
