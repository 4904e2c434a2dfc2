//! Field ownership, as in Kubernetes server-side apply: each field of an instance's labels and
//! spec remembers which client (its *field manager*) set it, so that clients sharing an object
//! stop undoing each other. The dashboard owns the customer's fields, support owns `paused` and
//! pairing approvals; a dashboard `PUT` or apply then never removes support's pause, and an apply
//! that would change a field another manager owns is a conflict unless forced.
//!
//! Fields are named by JSON Pointer (RFC 6901) into the write shape
//! `{"metadata": {"labels": …}, "spec": …}`: `/spec/paused`, `/spec/guest/memoryMb`,
//! `/metadata/labels/team`. Arrays, each provider key and each channel credential are one field
//! (set as a whole). The functions here are pure: they take the stored object and ownership and
//! return new ones; the API validates the result like any write.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// Who owns which fields: manager name → the JSON Pointers it owns.
pub type Managed = BTreeMap<String, BTreeSet<String>>;

/// Longest accepted field manager name.
pub const MAX_MANAGER_LEN: usize = 128;

/// One manager's fields, as `metadata.managedFields` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManagedFieldsEntry {
    /// The field manager (`fieldManager` of the writes that set these fields).
    pub manager: String,
    /// JSON Pointers (RFC 6901) into `{"metadata": {"labels"}, "spec"}` of the fields it owns.
    pub fields: Vec<String>,
}

/// `metadata.managedFields` for stored ownership.
pub fn entries(managed: &Managed) -> Vec<ManagedFieldsEntry> {
    managed
        .iter()
        .filter(|(_, fields)| !fields.is_empty())
        .map(|(manager, fields)| ManagedFieldsEntry {
            manager: manager.clone(),
            fields: fields.iter().cloned().collect(),
        })
        .collect()
}

/// A field an apply would change although another manager owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The field (JSON Pointer).
    pub field: String,
    /// Its owner.
    pub manager: String,
}

/// An object with its new ownership.
#[derive(Debug, Clone, PartialEq)]
pub struct Owned {
    /// The whole write object (`{"metadata": {"labels"}, "spec"}`) to validate and store.
    pub object: Value,
    /// Who owns what afterwards.
    pub managed: Managed,
}

/// The fields a write object sets, each with its value. `null` sets nothing.
pub fn leaves(object: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Some(labels) = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
    {
        for (key, value) in labels.iter().filter(|(_, v)| !v.is_null()) {
            out.insert(format!("/metadata/labels/{}", escape(key)), value.clone());
        }
    }
    if let Some(spec) = object.get("spec") {
        walk("/spec", spec, &mut out);
    }
    out
}

/// The fields (JSON Pointers) a write changed between two write objects: set, changed or
/// removed. Names only: an audit trail records these, never values (a provider key shows as
/// its pointer when its stored reference changed).
///
/// The same as comparing [`leaves`] of both, without copying them: it descends only where the
/// two differ, so a write of one field costs a walk down to that field.
pub fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = Map::new();
    changed_between(parts(before, &empty), parts(after, &empty))
}

/// The labels (`empty` when there are none) and spec of a write object.
fn parts<'a>(
    object: &'a Value,
    empty: &'a Map<String, Value>,
) -> (&'a Map<String, Value>, &'a Value) {
    let labels = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    (
        labels.unwrap_or(empty),
        object.get("spec").unwrap_or(&Value::Null),
    )
}

/// [`changed_fields`] between two write objects given as their parts (labels, spec), for a
/// caller that holds them apart and need not assemble the objects.
pub fn changed_between(
    (old_labels, old_spec): (&Map<String, Value>, &Value),
    (new_labels, new_spec): (&Map<String, Value>, &Value),
) -> Vec<String> {
    let mut changed = BTreeSet::new();
    let added = new_labels.keys().filter(|k| !old_labels.contains_key(*k));
    for key in old_labels.keys().chain(added) {
        if present(old_labels.get(key)) != present(new_labels.get(key)) {
            changed.insert(format!("/metadata/labels/{}", escape(key)));
        }
    }
    diff("/spec", Some(old_spec), Some(new_spec), &mut changed);
    changed.into_iter().collect()
}

/// `value` unless it is absent or `null` (which sets nothing).
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// Adds to `changed` the leaves under `at` that differ between `before` and `after`.
fn diff<'a>(
    at: &str,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
    changed: &mut BTreeSet<String>,
) {
    let (before, after) = (present(before), present(after));
    if before == after {
        return;
    }
    let walked = !atomic(at);
    let object = |v: Option<&'a Value>| v.and_then(Value::as_object).filter(|_| walked);
    match (object(before), object(after)) {
        (Some(b), Some(a)) => {
            for key in b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))) {
                diff(
                    &format!("{at}/{}", escape(key)),
                    b.get(key),
                    a.get(key),
                    changed,
                );
            }
        }
        (Some(whole), None) | (None, Some(whole)) => {
            for (key, child) in whole {
                diff(&format!("{at}/{}", escape(key)), Some(child), None, changed);
            }
            // The other side is a value set as a whole at `at`, or nothing.
            if before.is_some() && after.is_some() {
                changed.insert(at.to_owned());
            }
        }
        (None, None) => {
            changed.insert(at.to_owned());
        }
    }
}

fn walk(at: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Null => {}
        Value::Object(fields) if !atomic(at) => {
            for (key, child) in fields {
                walk(&format!("{at}/{}", escape(key)), child, out);
            }
        }
        _ => {
            out.insert(at.to_owned(), value.clone());
        }
    }
}

/// Objects set as a whole: one provider key or channel credential (a value or the read shape
/// that keeps it).
fn atomic(pointer: &str) -> bool {
    pointer
        .strip_prefix("/spec/providerKeys/")
        .is_some_and(|key| !key.contains('/'))
        || crate::channels::ChannelSecret::ALL
            .iter()
            .any(|s| s.pointer() == pointer)
}

/// RFC 6901 escaping of one reference token.
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Sets `pointer` in `object`, creating the objects on the way.
fn set(object: &mut Value, pointer: &str, value: Value) {
    let mut at = object;
    let tokens: Vec<String> = pointer.split('/').skip(1).map(unescape).collect();
    for (i, token) in tokens.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(fields) = at else { return };
        if i + 1 == tokens.len() {
            fields.insert(token.clone(), value);
            return;
        }
        at = fields.entry(token.clone()).or_insert(Value::Null);
    }
}

/// Removes `pointer` from `object` (nothing when it is not there).
fn remove(object: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(Value::Object(fields)) = object.pointer_mut(parent) {
        fields.remove(&unescape(last));
    }
}

/// The value `current` holds for `field`, in the form a write uses: a stored provider key or
/// channel credential is kept by its read shape `{"set": true}`.
fn kept(current: &Value, field: &str) -> Option<Value> {
    let value = current.pointer(field)?;
    if value.is_null() {
        return None;
    }
    Some(if atomic(field) {
        serde_json::json!({"set": true})
    } else {
        value.clone()
    })
}

fn owners<'a>(managed: &'a Managed, field: &'a str) -> impl Iterator<Item = &'a String> + 'a {
    managed
        .iter()
        .filter(move |(_, fields)| fields.contains(field))
        .map(|(manager, _)| manager)
}

/// Server-side apply of `applied` (the manager's whole intent) by `manager` to `current`:
/// the fields it sets are set and owned by it (shared with managers that set the same value);
/// fields it owned before and no longer sets are removed unless another manager owns them. A
/// field another manager owns with a different value is a [`Conflict`], unless `force` takes it
/// over.
pub fn apply(
    current: &Value,
    managed: &Managed,
    manager: &str,
    applied: &Value,
    force: bool,
) -> Result<Owned, Vec<Conflict>> {
    let wanted = leaves(applied);
    let mut managed = managed.clone();
    let mut conflicts = Vec::new();
    for (field, value) in &wanted {
        if kept(current, field).as_ref() == Some(value) {
            continue;
        }
        for (other, fields) in managed.iter_mut().filter(|(m, _)| *m != manager) {
            if fields.contains(field) {
                if force {
                    fields.remove(field);
                } else {
                    conflicts.push(Conflict {
                        field: field.clone(),
                        manager: other.clone(),
                    });
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let mut object = current.clone();
    let before = managed.remove(manager).unwrap_or_default();
    for dropped in before.iter().filter(|f| !wanted.contains_key(*f)) {
        if owners(&managed, dropped).next().is_none() {
            remove(&mut object, dropped);
        }
    }
    for (field, value) in &wanted {
        set(&mut object, field, value.clone());
    }
    managed.insert(manager.to_owned(), wanted.into_keys().collect());
    Ok(Owned {
        object,
        managed: prune(managed),
    })
}

/// A `PUT` by `manager`: the written object replaces the stored one, except that fields another
/// manager owns and the write leaves out are kept. The manager owns what it wrote; managers whose
/// fields it changed or removed lose them.
pub fn put(current: &Value, managed: &Managed, manager: &str, written: &Value) -> Owned {
    let mut object = written.clone();
    let wanted = leaves(written);
    let others = managed
        .iter()
        .filter(|(m, _)| *m != manager)
        .flat_map(|(_, fields)| fields);
    for field in others.filter(|f| !wanted.contains_key(*f)) {
        if let Some(value) = kept(current, field) {
            set(&mut object, field, value);
        }
    }
    let managed = taken_over(current, &object, managed, manager, wanted.into_keys());
    Owned { object, managed }
}

/// Ownership after a merge patch by `manager` turned `before` into `after` (the patch's
/// `patch` names what it set): the manager owns the fields its patch set; managers lose fields
/// whose value changed or that were removed.
pub fn patched(
    before: &Value,
    after: &Value,
    managed: &Managed,
    manager: &str,
    patch: &Value,
) -> Managed {
    let set_by_patch = leaves(patch)
        .into_keys()
        .filter(|f| after.pointer(f).is_some());
    taken_over(before, after, managed, manager, set_by_patch)
}

/// `managed` after `manager` wrote `fields`, turning `before` into `after`.
fn taken_over(
    before: &Value,
    after: &Value,
    managed: &Managed,
    manager: &str,
    fields: impl Iterator<Item = String>,
) -> Managed {
    let mut managed = managed.clone();
    for (_, owned) in managed.iter_mut() {
        owned.retain(|f| {
            let now = after.pointer(f).filter(|v| !v.is_null());
            now.is_some() && now == before.pointer(f)
        });
    }
    managed
        .entry(manager.to_owned())
        .or_default()
        .extend(fields);
    prune(managed)
}

fn prune(mut managed: Managed) -> Managed {
    managed.retain(|_, fields| !fields.is_empty());
    managed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored() -> Value {
        json!({
            "metadata": {"labels": {"plan": "pro"}},
            "spec": {"customerId": "c", "region": "iad", "paused": true,
                     "guest": {"memoryMb": 2048, "cpus": 2},
                     "pairing": {"approvals": [{"id": "a"}]},
                     "providerKeys": {"anthropicApiKey": {"set": true, "fingerprint": "x"}}}
        })
    }

    fn owned(pairs: &[(&str, &[&str])]) -> Managed {
        pairs
            .iter()
            .map(|(m, f)| (m.to_string(), f.iter().map(|f| f.to_string()).collect()))
            .collect()
    }

    #[test]
    fn leaves_are_pointers_with_arrays_and_keys_whole() {
        let fields: Vec<String> = leaves(&stored()).into_keys().collect();
        assert_eq!(
            fields,
            [
                "/metadata/labels/plan",
                "/spec/customerId",
                "/spec/guest/cpus",
                "/spec/guest/memoryMb",
                "/spec/pairing/approvals",
                "/spec/paused",
                "/spec/providerKeys/anthropicApiKey",
                "/spec/region",
            ]
        );
        let odd = json!({"metadata": {"labels": {"example.com/a~b": "v"}}});
        assert!(leaves(&odd).contains_key("/metadata/labels/example.com~1a~0b"));
    }

    #[test]
    fn applying_another_managers_field_conflicts_unless_forced() {
        let managed = owned(&[("support", &["/spec/paused"])]);
        let intent = json!({"spec": {"customerId": "c", "region": "iad", "paused": false}});
        let conflicts = apply(&stored(), &managed, "dashboard", &intent, false).unwrap_err();
        assert_eq!(
            conflicts,
            [Conflict {
                field: "/spec/paused".into(),
                manager: "support".into()
            }]
        );
        let forced = apply(&stored(), &managed, "dashboard", &intent, true).unwrap();
        assert_eq!(forced.object["spec"]["paused"], false);
        assert!(!forced.managed.contains_key("support"));
        assert!(forced.managed["dashboard"].contains("/spec/paused"));
    }

    #[test]
    fn the_same_value_is_shared_not_a_conflict() {
        let managed = owned(&[("support", &["/spec/paused"])]);
        let intent = json!({"spec": {"paused": true}});
        let shared = apply(&stored(), &managed, "dashboard", &intent, false).unwrap();
        assert!(shared.managed["support"].contains("/spec/paused"));
        assert!(shared.managed["dashboard"].contains("/spec/paused"));
    }

    #[test]
    fn fields_a_manager_stops_applying_go_unless_another_owns_them() {
        let managed = owned(&[
            (
                "dashboard",
                &["/spec/guest/memoryMb", "/metadata/labels/plan"],
            ),
            ("support", &["/metadata/labels/plan"]),
        ]);
        let intent = json!({"spec": {"region": "iad"}});
        let after = apply(&stored(), &managed, "dashboard", &intent, false).unwrap();
        assert_eq!(after.object.pointer("/spec/guest/memoryMb"), None);
        assert_eq!(after.object["metadata"]["labels"]["plan"], "pro");
        assert_eq!(
            after.managed["dashboard"],
            BTreeSet::from(["/spec/region".to_owned()])
        );
    }

    #[test]
    fn a_put_keeps_what_others_own_and_takes_what_it_writes() {
        let managed = owned(&[
            ("support", &["/spec/paused", "/spec/pairing/approvals"]),
            ("dashboard", &["/spec/guest/memoryMb"]),
        ]);
        let written = json!({"metadata": {"labels": {}},
                             "spec": {"customerId": "c", "region": "iad", "guest": {"memoryMb": 4096}}});
        let after = put(&stored(), &managed, "dashboard", &written);
        assert_eq!(after.object["spec"]["paused"], true);
        assert_eq!(
            after.object["spec"]["pairing"]["approvals"],
            json!([{"id": "a"}])
        );
        assert_eq!(after.object["spec"]["guest"]["memoryMb"], 4096);
        assert_eq!(after.object["spec"]["providerKeys"], Value::Null);
        assert!(after.managed["support"].contains("/spec/paused"));
        assert!(after.managed["dashboard"].contains("/spec/guest/memoryMb"));
    }

    #[test]
    fn a_put_that_writes_anothers_field_takes_it_over() {
        let managed = owned(&[("support", &["/spec/paused"])]);
        let written = json!({"spec": {"customerId": "c", "region": "iad", "paused": false}});
        let after = put(&stored(), &managed, "dashboard", &written);
        assert_eq!(after.object["spec"]["paused"], false);
        assert!(!after.managed.contains_key("support"));
    }

    #[test]
    fn provider_keys_owned_by_others_are_kept_by_their_read_shape() {
        let managed = owned(&[("ops", &["/spec/providerKeys/anthropicApiKey"])]);
        let written = json!({"spec": {"customerId": "c", "region": "iad"}});
        let after = put(&stored(), &managed, "dashboard", &written);
        assert_eq!(
            after.object["spec"]["providerKeys"]["anthropicApiKey"],
            json!({"set": true})
        );
    }

    #[test]
    fn changed_fields_name_what_was_set_changed_or_removed() {
        let before = stored();
        let mut after = stored();
        after["spec"]["guest"]["memoryMb"] = json!(4096);
        after["spec"]["region"] = json!("ams");
        after["metadata"]["labels"]["tier"] = json!("gold");
        after["spec"]["providerKeys"]["anthropicApiKey"]["fingerprint"] = json!("y");
        after["spec"].as_object_mut().unwrap().remove("paused");
        assert_eq!(
            changed_fields(&before, &after),
            [
                "/metadata/labels/tier",
                "/spec/guest/memoryMb",
                "/spec/paused",
                "/spec/providerKeys/anthropicApiKey",
                "/spec/region",
            ]
        );
        assert!(changed_fields(&before, &before).is_empty());
    }

    #[test]
    fn a_merge_patch_owns_what_it_set() {
        let before = stored();
        let mut after = before.clone();
        after["spec"]["paused"] = json!(false);
        let patch = json!({"spec": {"paused": false}});
        let managed = owned(&[("support", &["/spec/paused", "/spec/region"])]);
        let now = patched(&before, &after, &managed, "dashboard", &patch);
        assert_eq!(now["support"], BTreeSet::from(["/spec/region".to_owned()]));
        assert_eq!(
            now["dashboard"],
            BTreeSet::from(["/spec/paused".to_owned()])
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const FIELDS: [&str; 4] = ["/spec/a", "/spec/b", "/spec/c/d", "/metadata/labels/x"];
        const MANAGERS: [&str; 3] = ["dashboard", "support", "ops"];

        fn object(values: &[Option<u8>]) -> Value {
            let mut object = json!({"metadata": {"labels": {}}, "spec": {}});
            for (field, value) in FIELDS.iter().zip(values) {
                if let Some(v) = value {
                    let v = if field.contains("labels") {
                        json!(v.to_string())
                    } else {
                        json!(v)
                    };
                    set(&mut object, field, v);
                }
            }
            object
        }

        /// Write objects with nested spec fields, `null`s, arrays, provider keys (set whole)
        /// and names that need escaping, few enough names that two documents share some.
        fn document() -> impl Strategy<Value = Value> {
            let names = prop::sample::select(vec![
                "a",
                "b",
                "x/y",
                "t~",
                "providerKeys",
                "anthropicApiKey",
            ]);
            let leaf = prop_oneof![
                Just(Value::Null),
                (0u8..3).prop_map(|v| json!(v)),
                (0u8..2).prop_map(|v| json!([v])),
            ];
            let spec = leaf.prop_recursive(3, 24, 4, move |inner| {
                prop::collection::btree_map(names.clone(), inner, 0..4).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                })
            });
            let labels = prop::collection::btree_map(
                prop::sample::select(vec!["team", "plan", "a/b"]),
                prop_oneof![
                    Just(Value::Null),
                    (0u8..2).prop_map(|v| json!(v.to_string()))
                ],
                0..3,
            );
            (labels, spec).prop_map(|(labels, spec)| {
                let labels: Map<String, Value> =
                    labels.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                json!({"metadata": {"labels": labels}, "spec": spec})
            })
        }

        fn world() -> impl Strategy<Value = (Value, Managed, Value, usize)> {
            let values = prop::collection::vec(prop::option::of(0u8..3), FIELDS.len());
            let owners =
                prop::collection::vec(prop::collection::vec(any::<bool>(), FIELDS.len()), 3);
            let intent = prop::collection::vec(prop::option::of(0u8..3), FIELDS.len());
            (values, owners, intent, 0..MANAGERS.len()).prop_map(|(values, owners, intent, m)| {
                let current = object(&values);
                let managed = MANAGERS
                    .iter()
                    .zip(owners)
                    .map(|(manager, owns)| {
                        let fields = FIELDS
                            .iter()
                            .zip(owns)
                            .filter(|(f, own)| *own && current.pointer(f).is_some());
                        (
                            manager.to_string(),
                            fields.map(|(f, _)| f.to_string()).collect(),
                        )
                    })
                    .collect();
                (current, prune(managed), object(&intent), m)
            })
        }

        proptest! {
            #[test]
            fn an_apply_never_changes_what_others_own_and_is_idempotent((current, managed, intent, m) in world()) {
                let manager = MANAGERS[m];
                let Ok(after) = apply(&current, &managed, manager, &intent, false) else {
                    return Ok(());
                };
                for (other, fields) in managed.iter().filter(|(o, _)| *o != manager) {
                    for field in fields {
                        prop_assert_eq!(after.object.pointer(field), current.pointer(field), "{} of {}", field, other);
                    }
                }
                for (field, value) in leaves(&intent) {
                    prop_assert_eq!(after.object.pointer(&field), Some(&value));
                }
                let again = apply(&after.object, &after.managed, manager, &intent, false);
                prop_assert_eq!(again, Ok(after.clone()));
            }

            #[test]
            fn changed_fields_are_the_leaves_that_differ(before in document(), after in document()) {
                let (old, new) = (leaves(&before), leaves(&after));
                let mut expected: BTreeSet<String> = new
                    .iter()
                    .filter(|(f, v)| old.get(*f) != Some(*v))
                    .map(|(f, _)| f.clone())
                    .collect();
                expected.extend(old.keys().filter(|f| !new.contains_key(*f)).cloned());
                prop_assert_eq!(changed_fields(&before, &after), expected.into_iter().collect::<Vec<_>>());
            }

            #[test]
            fn a_forced_apply_sets_every_field_it_names((current, managed, intent, m) in world()) {
                let after = apply(&current, &managed, MANAGERS[m], &intent, true);
                prop_assert!(after.is_ok());
                let after = after.unwrap();
                for (field, value) in leaves(&intent) {
                    prop_assert_eq!(after.object.pointer(&field), Some(&value));
                }
            }
        }
    }
}
