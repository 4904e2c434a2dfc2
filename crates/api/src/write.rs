//! Desired-state writes: create, replace, merge-patch, delete and reconcile requests. Each runs in
//! one transaction that locks the row (`SELECT ... FOR UPDATE`), checks preconditions, writes the
//! row guarded by its resource version, stores secrets, enqueues work and appends an event, so a
//! write is either wholly visible to the controller or not at all. A replace or patch that would
//! change nothing is found by one plain read first and ends there. A merge patch that stores no
//! secret skips the transaction: it writes the row as read (guarded by its version), its work and
//! its event in one statement, and goes the locking way only when another write got there first.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::error::{ApiError, FieldError};
use super::plan::PlanPreview;
use super::validate::{check_name, normalize_numbers, validate_write};
use super::ApiState;
use openclaws_engine::reconcile::preview;
use openclaws_model::managed::{self, Managed};
use openclaws_model::secrets::SecretCipher;
use openclaws_model::{
    ChannelSecret, ChannelsSpec, InstanceSpec, InstanceWrite, OpenClawInstance, ProviderKey,
    ProviderKeys, ProviderKeysWrite, SecretRef, SecretWrite,
};
use openclaws_store::desired::{Moved, QueuedChange};
use openclaws_store::events::{self, Audit, EventType, NewEvent};
use openclaws_store::{instances, secrets, work, InstanceRecord};

/// Whether a write created the resource or changed an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
}

/// How a write is made: by whom and which field manager, whether an apply takes fields over
/// from other managers, and whether it is only tried (`?dryRun=All`: validated and carried out
/// in a transaction that is rolled back).
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions<'a> {
    /// Who writes, for the audit trail: `writer`, `reader` or `console:<session>`.
    pub actor: &'a str,
    /// The field manager (`fieldManager`).
    pub manager: &'a str,
    /// Apply only: take over fields other managers own.
    pub force: bool,
    /// Validate and roll back: nothing is stored, no event recorded.
    pub dry_run: bool,
}

impl WriteOptions<'_> {
    /// The audit of a write by these options that changed `changed`.
    fn audit(&self, changed: Vec<String>) -> Audit {
        Audit {
            actor: self.actor.to_owned(),
            field_manager: Some(self.manager.to_owned()),
            changed_fields: Some(changed),
        }
    }
}

/// The audit of an action by `actor` that writes no desired state (a deletion request, a
/// reconcile request, a read of the gateway token): no field manager, no changed fields.
pub fn action_audit(actor: &str) -> Audit {
    Audit {
        actor: actor.to_owned(),
        field_manager: None,
        changed_fields: None,
    }
}

/// What a write answers: the object as stored (or as it would be, for a dry run) and, for a
/// dry run, the plan preview of that object.
#[derive(Debug)]
pub struct Written {
    pub outcome: Outcome,
    pub object: OpenClawInstance,
    pub plan: Option<PlanPreview>,
}

impl Written {
    /// The answer for `record`, with its plan preview when `dry_run` (read through `db`, which
    /// sees the write's own uncommitted rows).
    async fn of(
        state: &ApiState,
        db: &mut openclaws_store::Conn<'_>,
        outcome: Outcome,
        record: &InstanceRecord,
        dry_run: bool,
    ) -> Result<Written, ApiError> {
        let plan = match dry_run {
            true => Some(plan_of(state, db, record).await?),
            false => None,
        };
        Ok(Written {
            outcome,
            object: to_resource(state, record)?,
            plan,
        })
    }
}

/// The plan preview of `record`, read through `db`.
async fn plan_of(
    state: &ApiState,
    db: &mut openclaws_store::Conn<'_>,
    record: &InstanceRecord,
) -> Result<PlanPreview, ApiError> {
    let preview = preview::preview(db, &state.cipher, &state.inputs, record, Utc::now());
    let preview = tokio::time::timeout(crate::PREVIEW_DEADLINE, preview)
        .await
        .map_err(|_| {
            ApiError::DatabaseUnavailable("the plan preview did not finish in time".to_owned())
        })??;
    Ok(PlanPreview::new(&record.name, record.generation, preview))
}

/// Ends a write's transaction: commits it, or for a dry run previews the plan inside it and
/// rolls it back, so nothing is stored, no event appended, no reconcile woken.
pub(crate) async fn finish(
    state: &ApiState,
    mut tx: openclaws_store::Conn<'_>,
    outcome: Outcome,
    record: &InstanceRecord,
    dry_run: bool,
) -> Result<Written, ApiError> {
    let written = Written::of(state, &mut tx, outcome, record, dry_run).await?;
    match dry_run {
        true => tx.rollback().await?,
        false => tx.commit().await?,
    }
    Ok(written)
}

/// A validated write, before it meets the stored state.
struct ParsedWrite {
    labels: Option<BTreeMap<String, String>>,
    resource_version: Option<i64>,
    spec: InstanceSpec,
    keys: ProviderKeysWrite,
    /// The channel credentials as written (`None`: absent, which removes a stored one).
    channel_keys: Vec<(ChannelSecret, Option<SecretWrite>)>,
}

/// What to do to the `secrets` table once the row exists. Holds plaintext: no `Debug`.
enum SecretOp {
    Put {
        name: &'static str,
        value: String,
        at: DateTime<Utc>,
    },
    Delete {
        name: &'static str,
    },
}

fn generic_invalid(path: &str) -> ApiError {
    ApiError::invalid(vec![FieldError::new(path, "does not match the schema")])
}

fn parse(body: Value) -> Result<ParsedWrite, ApiError> {
    let write: InstanceWrite = serde_json::from_value(body).map_err(|_| generic_invalid(""))?;
    let mut spec = write.spec;
    let keys_value = spec
        .as_object_mut()
        .and_then(|o| o.remove("providerKeys"))
        .unwrap_or(Value::Null);
    let keys: ProviderKeysWrite = if keys_value.is_null() {
        ProviderKeysWrite::default()
    } else {
        serde_json::from_value(keys_value).map_err(|_| generic_invalid("spec.providerKeys"))?
    };
    let channel_keys = take_channel_keys(&mut spec)?;
    let spec: InstanceSpec = serde_json::from_value(spec).map_err(|_| generic_invalid("spec"))?;
    let resource_version = match write.metadata.resource_version {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            ApiError::invalid(vec![FieldError::new(
                "metadata.resourceVersion",
                "must be a resource version returned by the server",
            )])
        })?),
    };
    Ok(ParsedWrite {
        labels: write.metadata.labels,
        resource_version,
        spec,
        keys,
        channel_keys,
    })
}

/// Takes each channel credential out of a written spec (so the rest parses as the read shape),
/// in its write form.
fn take_channel_keys(
    spec: &mut Value,
) -> Result<Vec<(ChannelSecret, Option<SecretWrite>)>, ApiError> {
    let mut out = Vec::new();
    for secret in ChannelSecret::ALL {
        let taken = spec
            .pointer_mut(&format!("/channels/{}", secret.channel().as_str()))
            .and_then(Value::as_object_mut)
            .and_then(|channel| channel.remove(secret.field()))
            .filter(|v| !v.is_null());
        let write = match taken {
            None => None,
            Some(v) => {
                Some(serde_json::from_value(v).map_err(|_| generic_invalid(&secret.path()))?)
            }
        };
        out.push((secret, write));
    }
    Ok(out)
}

/// Parses an `If-Match` value (`"5"`, `W/"5"`, `5` or `*`); `Ok(None)` for `*`.
pub fn parse_if_match(value: &str) -> Result<Option<i64>, ApiError> {
    let v = value.trim();
    if v == "*" {
        return Ok(None);
    }
    let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
    v.parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::BadRequest("If-Match must be a resource version".to_owned()))
}

fn check_preconditions(
    current: i64,
    wanted: impl IntoIterator<Item = Option<i64>>,
) -> Result<(), ApiError> {
    for expected in wanted.into_iter().flatten() {
        if expected != current {
            return Err(ApiError::StaleVersion(format!(
                "resourceVersion {expected} is stale (the object has been modified); read it again and retry"
            )));
        }
    }
    Ok(())
}

fn deleting(name: &str) -> ApiError {
    ApiError::Conflict(format!(
        "instance {name} is being deleted; it cannot be changed"
    ))
}

fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

fn resolve_key(
    cipher: &SecretCipher,
    path: &str,
    env: &'static str,
    stored: Option<&SecretRef>,
    write: Option<&SecretWrite>,
    now: DateTime<Utc>,
    ops: &mut Vec<SecretOp>,
) -> Result<Option<SecretRef>, FieldError> {
    match write {
        None => {
            if stored.is_some() {
                ops.push(SecretOp::Delete { name: env });
            }
            Ok(None)
        }
        Some(SecretWrite::Keep(_)) => stored.cloned().map(Some).ok_or_else(|| {
            FieldError::new(path, "no stored value to keep; send the value as a string")
        }),
        Some(SecretWrite::Value(value)) => {
            let fingerprint = cipher.fingerprint(value.as_bytes());
            if let Some(s) = stored.filter(|s| s.fingerprint == fingerprint) {
                return Ok(Some(s.clone()));
            }
            ops.push(SecretOp::Put {
                name: env,
                value: value.clone(),
                at: now,
            });
            Ok(Some(SecretRef {
                set: true,
                fingerprint,
                updated_at: now,
            }))
        }
    }
}

/// Turns the write form of the provider keys into references, listing the secret writes to do.
fn resolve_keys(
    cipher: &SecretCipher,
    stored: &ProviderKeys,
    write: &ProviderKeysWrite,
    errors: &mut Vec<FieldError>,
) -> (ProviderKeys, Vec<SecretOp>) {
    let now = now_micros();
    let mut ops = Vec::new();
    let mut one = |key: ProviderKey, write| {
        resolve_key(
            cipher,
            &format!("spec.providerKeys.{}", key.field()),
            key.env_name(),
            stored.get(key),
            write,
            now,
            &mut ops,
        )
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        })
    };
    let keys = ProviderKeys {
        anthropic_api_key: one(
            ProviderKey::AnthropicApiKey,
            write.anthropic_api_key.as_ref(),
        ),
        anthropic_oauth_token: one(
            ProviderKey::AnthropicOauthToken,
            write.anthropic_oauth_token.as_ref(),
        ),
        openai_api_key: one(ProviderKey::OpenaiApiKey, write.openai_api_key.as_ref()),
    };
    (keys, ops)
}

/// Turns the written channel credentials into references set in `channels`, listing the secret
/// writes to do; a credential of a channel no longer configured is deleted.
fn resolve_channel_keys(
    cipher: &SecretCipher,
    stored: &ChannelsSpec,
    written: &[(ChannelSecret, Option<SecretWrite>)],
    channels: &mut ChannelsSpec,
    errors: &mut Vec<FieldError>,
) -> Vec<SecretOp> {
    let now = now_micros();
    let mut ops = Vec::new();
    for (secret, write) in written {
        let resolved = resolve_key(
            cipher,
            &secret.path(),
            secret.stored_name(),
            stored.secret(*secret),
            write.as_ref(),
            now,
            &mut ops,
        )
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        if let Some(slot) = channels.secret_mut(*secret) {
            *slot = resolved;
        }
    }
    ops
}

async fn apply_secret_ops(
    tx: &mut openclaws_store::Conn<'_>,
    cipher: &SecretCipher,
    uid: Uuid,
    ops: Vec<SecretOp>,
) -> Result<(), ApiError> {
    for op in ops {
        match op {
            SecretOp::Put { name, value, at } => {
                secrets::put(&mut *tx, cipher, uid, name, &value, at).await?;
            }
            SecretOp::Delete { name } => {
                secrets::delete(&mut *tx, uid, name).await?;
            }
        }
    }
    Ok(())
}

/// The resource as the API shows it (fingerprints keyed with the instance's uid).
pub fn to_resource(
    state: &ApiState,
    record: &InstanceRecord,
) -> Result<OpenClawInstance, ApiError> {
    Ok(record.to_resource(&state.cipher)?)
}

/// 412 for `If-None-Match: *` on an instance that exists.
fn exists(name: &str) -> ApiError {
    ApiError::PreconditionFailed(format!(
        "instance {name} already exists (If-None-Match: * creates only)"
    ))
}

/// `PUT`: creates the instance or replaces its spec (and labels, when given). A write that
/// changes nothing (the same spec, labels and key values) costs one read and leaves everything
/// as it was: no new `resourceVersion`, no event, no reconcile. With `create_only`
/// (`If-None-Match: *`) an existing instance is refused with 412. Concurrent creates of one name
/// end with one 201 and the others treated as writes to the instance it made (200, or 412 when
/// create-only), never 409.
pub async fn put(
    state: &ApiState,
    name: &str,
    mut body: Value,
    if_match: Option<i64>,
    create_only: bool,
    options: WriteOptions<'_>,
) -> Result<Written, ApiError> {
    let manager = options.manager;
    check_name(name).map_err(|e| ApiError::invalid(vec![e]))?;
    normalize_numbers(&mut body);
    let errors = validate_write(name, &body);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let mut conn = state.db().await?;
    if let Some(record) = instances::get(&mut conn, name).await? {
        if create_only {
            return Err(exists(name));
        }
        let (parsed, managed) = plan_put(&record, &body, manager)?;
        let change = plan_update(state, &record, &parsed, if_match, managed)?;
        if change.ownership_with_desired(&record).is_noop() {
            let dry_run = options.dry_run;
            return Written::of(state, &mut conn, Outcome::Updated, &record, dry_run).await;
        }
    }
    let mut tx = conn.begin().await?;
    let (outcome, record) = match instances::get_for_update(&mut tx, name).await? {
        Some(_) if create_only => return Err(exists(name)),
        Some(record) => (
            Outcome::Updated,
            update(state, &mut tx, record, &body, if_match, options).await?,
        ),
        None => match create(state, &mut tx, name, &body, if_match, options).await? {
            Some(created) => (Outcome::Created, created),
            None => {
                // Another request created the name first: the insert waited for its commit, so
                // the row is visible now, and this write applies to it like any other.
                let record = instances::get_for_update(&mut tx, name)
                    .await?
                    .ok_or_else(|| {
                        ApiError::Conflict(format!(
                            "instance {name} was created and deleted concurrently; retry"
                        ))
                    })?;
                if create_only {
                    return Err(exists(name));
                }
                let updated = update(state, &mut tx, record, &body, if_match, options).await?;
                (Outcome::Updated, updated)
            }
        },
    };
    finish(state, tx, outcome, &record, options.dry_run).await
}

/// `PATCH`: applies an RFC 7386 merge patch to `{"metadata": {"labels"}, "spec"}` and validates
/// the result like a `PUT` body. A patch that changes nothing costs one read and changes
/// nothing.
pub async fn patch(
    state: &ApiState,
    name: &str,
    patch: Value,
    if_match: Option<i64>,
    options: WriteOptions<'_>,
) -> Result<Written, ApiError> {
    let (manager, dry_run) = (options.manager, options.dry_run);
    check_name(name).map_err(|e| ApiError::invalid(vec![e]))?;
    if !dry_run {
        if let Some(written) = patch_at_once(state, name, &patch, if_match, &options).await? {
            return Ok(written);
        }
    }
    let mut conn = state.db().await?;
    let mut tx = conn.begin().await?;
    let record = instances::get_for_update(&mut tx, name)
        .await?
        .ok_or_else(|| not_found(name))?;
    let change = plan_patch(state, &record, &patch, if_match, manager)?;
    let updated = if change.is_noop() {
        record
    } else {
        write_update(state, &mut tx, record, change, &options).await?
    };
    finish(state, tx, Outcome::Updated, &updated, dry_run).await
}

/// A merge patch without a transaction: one plain read, and for a change of the desired state
/// that stores no secret one shared write ([`openclaws_store::desired`]); a patch that changes
/// nothing ends after the read. `None` when it must take the locking path: it stores a secret,
/// or the row moved between the read and the write.
async fn patch_at_once(
    state: &ApiState,
    name: &str,
    patch: &Value,
    if_match: Option<i64>,
    options: &WriteOptions<'_>,
) -> Result<Option<Written>, ApiError> {
    let mut read = state.read().await?;
    let record = instances::get(&mut read, name).await?;
    read.done();
    let record = record.ok_or_else(|| not_found(name))?;
    let change = plan_patch(state, &record, patch, if_match, options.manager)?;
    let written = if change.is_noop() {
        record
    } else if change.at_once() {
        let queued = change.queued(&record, options);
        match state.desired.write(queued).await? {
            Some((moved, queued)) => applied(record, queued, moved),
            None => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    Ok(Some(Written {
        outcome: Outcome::Updated,
        object: to_resource(state, &written)?,
        plan: None,
    }))
}

/// What a merge patch of `record` by `manager` would change.
fn plan_patch(
    state: &ApiState,
    record: &InstanceRecord,
    patch: &Value,
    if_match: Option<i64>,
    manager: &str,
) -> Result<Change, ApiError> {
    if record.deletion_timestamp.is_some() {
        return Err(deleting(&record.name));
    }
    let before = serde_json::json!({
        "metadata": {"labels": record.labels.0},
        "spec": record.spec.0,
    });
    let mut target = before.clone();
    json_patch::merge(&mut target, patch);
    normalize_numbers(&mut target);
    let errors = validate_write(&record.name, &target);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let managed = managed::patched(&before, &target, &record.managed_fields.0, manager, patch);
    let parsed = parse(target)?;
    let change = plan_update(state, record, &parsed, if_match, managed)?;
    Ok(change.ownership_with_desired(record))
}

/// The stored instance as a write object: labels, and the spec with each stored provider key
/// and channel credential in the read shape that keeps it.
fn write_object(record: &InstanceRecord) -> Value {
    let mut spec = record.spec.0.clone();
    if let Some(Value::Object(keys)) = spec.get_mut("providerKeys") {
        for value in keys.values_mut().filter(|v| !v.is_null()) {
            *value = serde_json::json!({"set": true});
        }
    }
    for secret in ChannelSecret::ALL {
        let pointer = format!("/channels/{}/{}", secret.channel().as_str(), secret.field());
        if let Some(value) = spec.pointer_mut(&pointer).filter(|v| !v.is_null()) {
            *value = serde_json::json!({"set": true});
        }
    }
    serde_json::json!({"metadata": {"labels": record.labels.0}, "spec": spec})
}

/// A `PUT` body with what other managers own and it leaves out kept, and the ownership after it.
fn plan_put(
    record: &InstanceRecord,
    body: &Value,
    manager: &str,
) -> Result<(ParsedWrite, Managed), ApiError> {
    let current = write_object(record);
    let mut written = body.clone();
    if written.pointer("/metadata/labels").is_none() {
        // Omitted labels are kept, as before field ownership.
        if let Some(meta) = written.as_object_mut() {
            let meta = meta
                .entry("metadata")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert("labels".to_owned(), current["metadata"]["labels"].clone());
            }
        }
    }
    let owned = managed::put(&current, &record.managed_fields.0, manager, &written);
    let errors = validate_write(&record.name, &owned.object);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok((parse(owned.object)?, owned.managed))
}

/// `PATCH` with `application/apply-patch+json`: server-side apply of `body` (the manager's whole
/// intent for the fields it sets) by `manager`. Creates the instance when there is none. A field
/// another manager owns with a different value is a 409 conflict naming it and its owner, unless
/// `force` takes it over.
pub async fn apply(
    state: &ApiState,
    name: &str,
    mut body: Value,
    if_match: Option<i64>,
    options: WriteOptions<'_>,
) -> Result<Written, ApiError> {
    let WriteOptions {
        manager,
        force,
        dry_run,
        ..
    } = options;
    check_name(name).map_err(|e| ApiError::invalid(vec![e]))?;
    normalize_numbers(&mut body);
    if !body.is_object() {
        return Err(generic_invalid(""));
    }
    let mut conn = state.db().await?;
    if let Some(record) = instances::get(&mut conn, name).await? {
        if plan_apply(state, &record, &body, if_match, manager, force)?.is_noop() {
            return Written::of(state, &mut conn, Outcome::Updated, &record, dry_run).await;
        }
    }
    let mut tx = conn.begin().await?;
    let (outcome, record) = match instances::get_for_update(&mut tx, name).await? {
        Some(record) => (Outcome::Updated, record),
        None => {
            let empty = serde_json::json!({"metadata": {"labels": {}}, "spec": {}});
            let owned = managed::apply(&empty, &Managed::new(), manager, &body, force)
                .map_err(|conflicts| conflict(name, conflicts))?;
            match create_owned(state, &mut tx, name, owned, if_match, &options).await? {
                Some(created) => {
                    return finish(state, tx, Outcome::Created, &created, dry_run).await
                }
                // A concurrent create committed first (the insert waited for it): apply to the
                // instance it made, as a PUT does, rather than answering 409.
                None => match instances::get_for_update(&mut tx, name).await? {
                    Some(record) => (Outcome::Updated, record),
                    None => {
                        return Err(ApiError::Conflict(format!(
                            "instance {name} was created and deleted concurrently; retry"
                        )))
                    }
                },
            }
        }
    };
    let change = plan_apply(state, &record, &body, if_match, manager, force)?;
    let updated = match change.is_noop() {
        true => record,
        false => write_update(state, &mut tx, record, change, &options).await?,
    };
    finish(state, tx, outcome, &updated, dry_run).await
}

/// What an apply to `record` would change.
fn plan_apply(
    state: &ApiState,
    record: &InstanceRecord,
    body: &Value,
    if_match: Option<i64>,
    manager: &str,
    force: bool,
) -> Result<Change, ApiError> {
    if record.deletion_timestamp.is_some() {
        return Err(deleting(&record.name));
    }
    let current = write_object(record);
    let mut owned = managed::apply(&current, &record.managed_fields.0, manager, body, force)
        .map_err(|conflicts| conflict(&record.name, conflicts))?;
    if let Some(version) = body.pointer("/metadata/resourceVersion") {
        owned.object["metadata"]["resourceVersion"] = version.clone();
    }
    let errors = validate_write(&record.name, &owned.object);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let parsed = parse(owned.object)?;
    plan_update(state, record, &parsed, if_match, owned.managed)
}

/// 409 for an apply that would change fields other managers own.
fn conflict(name: &str, conflicts: Vec<managed::Conflict>) -> ApiError {
    let fields: Vec<FieldError> = conflicts
        .iter()
        .map(|c| FieldError::new(&c.field, format!("is managed by {}", c.manager)))
        .collect();
    let first = &conflicts[0];
    let message = format!(
        "apply to instance {name} failed with {} conflict(s): {} is managed by {}; \
         send force=true to take the fields over",
        conflicts.len(),
        first.field,
        first.manager
    );
    ApiError::ApplyConflict { message, fields }
}

/// 404 for an unknown instance.
pub fn not_found(name: &str) -> ApiError {
    ApiError::no_instance(name)
}

/// Inserts the instance written by `options.manager` (who then owns every field it set); `None`
/// when a concurrent create of the same name committed first.
pub(crate) async fn create(
    state: &ApiState,
    tx: &mut openclaws_store::Conn<'_>,
    name: &str,
    body: &Value,
    if_match: Option<i64>,
    options: WriteOptions<'_>,
) -> Result<Option<InstanceRecord>, ApiError> {
    let empty = serde_json::json!({"metadata": {"labels": {}}, "spec": {}});
    let owned = managed::put(&empty, &Managed::new(), options.manager, body);
    create_owned(state, tx, name, owned, if_match, &options).await
}

/// Inserts the instance `owned` describes; `None` when the name was taken concurrently. Its
/// event names the fields the write set (defaults it left out are not named).
async fn create_owned(
    state: &ApiState,
    tx: &mut openclaws_store::Conn<'_>,
    name: &str,
    owned: managed::Owned,
    if_match: Option<i64>,
    options: &WriteOptions<'_>,
) -> Result<Option<InstanceRecord>, ApiError> {
    let errors = validate_write(name, &owned.object);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let empty = serde_json::json!({"metadata": {"labels": {}}, "spec": {}});
    let audit = options.audit(managed::changed_fields(&empty, &owned.object));
    let parsed = &parse(owned.object)?;
    if parsed.resource_version.is_some() || if_match.is_some() {
        return Err(ApiError::Conflict(format!(
            "instance {name} does not exist, so a resourceVersion precondition cannot match"
        )));
    }
    let mut errors = Vec::new();
    let (keys, mut ops) = resolve_keys(
        &state.cipher,
        &ProviderKeys::default(),
        &parsed.keys,
        &mut errors,
    );
    let mut spec = parsed.spec.clone();
    ops.extend(resolve_channel_keys(
        &state.cipher,
        &ChannelsSpec::default(),
        &parsed.channel_keys,
        &mut spec.channels,
        &mut errors,
    ));
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    spec.provider_keys = keys;
    if !owned.managed.values().any(|f| f.contains("/spec/image")) {
        // No image asked for: the fleet's, once a fleet-wide release completed.
        if let Some(image) = openclaws_store::releases::fleet_image(&mut *tx).await? {
            spec.image = image;
        }
    }
    let spec_json = serde_json::to_value(&spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let labels = parsed.labels.clone().unwrap_or_default();
    let uid = Uuid::now_v7();
    let Some(record) = instances::insert(
        &mut *tx,
        &instances::NewInstance {
            uid,
            name,
            customer_id: &spec.customer_id,
            labels: &labels,
            spec: &spec_json,
            managed: &owned.managed,
        },
    )
    .await?
    else {
        return Ok(None);
    };
    apply_secret_ops(tx, &state.cipher, uid, ops).await?;
    work::enqueue_now(tx, uid, "created").await?;
    events::append_audited(
        &mut *tx,
        &NewEvent {
            instance_uid: uid,
            instance_name: name,
            type_: EventType::Normal,
            reason: "Created",
            message: "instance created through the API (generation 1)",
            generation: Some(record.generation),
        },
        &audit,
    )
    .await?;
    Ok(Some(record))
}

/// What a write does to a stored instance.
struct Change {
    spec_json: Value,
    labels: BTreeMap<String, String>,
    spec_changed: bool,
    labels_changed: bool,
    ops: Vec<SecretOp>,
    managed: Managed,
    managed_changed: bool,
}

impl Change {
    /// Nothing to write: the same spec, labels, key values and field ownership.
    fn is_noop(&self) -> bool {
        !self.desired_changed() && !self.managed_changed
    }

    /// Something the controller acts on changed (not only who owns which field).
    fn desired_changed(&self) -> bool {
        self.spec_changed || self.labels_changed || !self.ops.is_empty()
    }

    /// The change can be written by the shared writer ([`patch_at_once`]): it changes the
    /// desired state and stores no secret.
    fn at_once(&self) -> bool {
        self.desired_changed() && self.ops.is_empty()
    }

    /// The event reason and message of a desired change that moves the generation to
    /// `generation`.
    fn event(&self, generation: i64) -> (&'static str, String) {
        match self.spec_changed {
            true => (
                "SpecUpdated",
                format!("spec changed; generation is now {generation}"),
            ),
            false => (
                "LabelsUpdated",
                format!("labels changed; generation stays {generation}"),
            ),
        }
    }
}

/// Checks a write against the stored instance (deletion, preconditions, immutable fields, kept
/// keys) and works out what it changes, without writing anything.
fn plan_update(
    state: &ApiState,
    record: &InstanceRecord,
    parsed: &ParsedWrite,
    if_match: Option<i64>,
    managed: Managed,
) -> Result<Change, ApiError> {
    if record.deletion_timestamp.is_some() {
        return Err(deleting(&record.name));
    }
    check_preconditions(record.resource_version, [parsed.resource_version, if_match])?;
    let stored = record.spec()?;
    let mut errors = Vec::new();
    if parsed.spec.customer_id != stored.customer_id {
        errors.push(FieldError::new(
            "spec.customerId",
            "is immutable after create",
        ));
    }
    if parsed.spec.volume_size_gb < stored.volume_size_gb {
        errors.push(FieldError::new(
            "spec.volumeSizeGb",
            format!(
                "cannot shrink from {} GB: Fly volumes only grow",
                stored.volume_size_gb
            ),
        ));
    }
    let (keys, mut ops) = resolve_keys(
        &state.cipher,
        &stored.provider_keys,
        &parsed.keys,
        &mut errors,
    );
    let mut spec = parsed.spec.clone();
    ops.extend(resolve_channel_keys(
        &state.cipher,
        &stored.channels,
        &parsed.channel_keys,
        &mut spec.channels,
        &mut errors,
    ));
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    spec.provider_keys = keys;
    let spec_json = serde_json::to_value(&spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let labels = parsed
        .labels
        .clone()
        .unwrap_or_else(|| record.labels.0.clone());
    Ok(Change {
        spec_changed: spec_json != record.spec.0,
        labels_changed: labels != record.labels.0,
        spec_json,
        labels,
        ops,
        managed_changed: managed != record.managed_fields.0,
        managed,
    })
}

impl Change {
    /// This change as the shared writer takes it: against `record`'s version, with its event.
    fn queued(self, record: &InstanceRecord, options: &WriteOptions<'_>) -> QueuedChange {
        let generation = record.generation + i64::from(self.spec_changed);
        let (reason, message) = self.event(generation);
        QueuedChange {
            audit: options.audit(changed_by(record, &self)),
            uid: record.uid,
            name: record.name.clone(),
            expected_version: record.resource_version,
            labels: self.labels,
            spec: self.spec_json,
            spec_changed: self.spec_changed,
            managed: self.managed,
            reason,
            message,
            generation,
        }
    }

    /// For `PUT` and merge patch: who owns what is recorded only along with a change of the
    /// desired state, so a write identical to what is stored stays a no-op (no new
    /// `resourceVersion`). An apply records ownership on its own.
    fn ownership_with_desired(mut self, record: &InstanceRecord) -> Self {
        if !self.desired_changed() {
            self.managed = record.managed_fields.0.clone();
            self.managed_changed = false;
        }
        self
    }
}

/// Applies a `PUT` by `options.manager` to the locked row; a write that changes nothing leaves
/// it untouched.
async fn update(
    state: &ApiState,
    tx: &mut openclaws_store::Conn<'_>,
    record: InstanceRecord,
    body: &Value,
    if_match: Option<i64>,
    options: WriteOptions<'_>,
) -> Result<InstanceRecord, ApiError> {
    let (parsed, managed) = plan_put(&record, body, options.manager)?;
    let change =
        plan_update(state, &record, &parsed, if_match, managed)?.ownership_with_desired(&record);
    if change.is_noop() {
        return Ok(record);
    }
    write_update(state, tx, record, change, &options).await
}

/// The fields (JSON Pointers) `change` changes of `record`'s labels and spec; a provider key by
/// its name when its stored reference changes.
fn changed_by(record: &InstanceRecord, change: &Change) -> Vec<String> {
    let labels = |labels: &BTreeMap<String, String>| -> serde_json::Map<String, Value> {
        let entries = labels.iter();
        entries
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    };
    managed::changed_between(
        (&labels(&record.labels.0), &record.spec.0),
        (&labels(&change.labels), &change.spec_json),
    )
}

/// Writes a change: the row (guarded by its version), the secrets, the work and the event.
async fn write_update(
    state: &ApiState,
    tx: &mut openclaws_store::Conn<'_>,
    record: InstanceRecord,
    change: Change,
    options: &WriteOptions<'_>,
) -> Result<InstanceRecord, ApiError> {
    let name = record.name.clone();
    let audit = options.audit(changed_by(&record, &change));
    let updated = instances::update_desired(
        &mut *tx,
        record.uid,
        record.resource_version,
        &change.labels,
        &change.spec_json,
        change.spec_changed,
        &change.managed,
    )
    .await?
    .ok_or_else(|| ApiError::Conflict(format!("instance {name} was modified concurrently")))?;
    if !change.desired_changed() {
        // Only ownership moved: nothing for the controller to do.
        return Ok(updated);
    }
    let (reason, message) = change.event(updated.generation);
    apply_secret_ops(tx, &state.cipher, record.uid, change.ops).await?;
    work::enqueue_now(tx, record.uid, reason).await?;
    events::append_audited(
        &mut *tx,
        &NewEvent {
            instance_uid: record.uid,
            instance_name: &name,
            type_: EventType::Normal,
            reason,
            message: &message,
            generation: Some(updated.generation),
        },
        &audit,
    )
    .await?;
    Ok(updated)
}

/// `record` as a shared write of `written` left it: its labels, spec and ownership, and the
/// versions and time the write moved.
fn applied(mut record: InstanceRecord, written: QueuedChange, moved: Moved) -> InstanceRecord {
    record.labels.0 = written.labels;
    record.spec.0 = written.spec;
    record.managed_fields.0 = written.managed;
    record.resource_version = moved.resource_version;
    record.generation = moved.generation;
    record.updated_at = moved.updated_at;
    record
}

/// `DELETE` by `actor`: sets `deletionTimestamp` once; later calls return the object unchanged.
pub async fn delete(
    state: &ApiState,
    name: &str,
    if_match: Option<i64>,
    dry_run: bool,
    actor: &str,
) -> Result<Written, ApiError> {
    check_name(name).map_err(|e| ApiError::invalid(vec![e]))?;
    let mut conn = state.db().await?;
    let mut tx = conn.begin().await?;
    let record = instances::get_for_update(&mut tx, name)
        .await?
        .ok_or_else(|| not_found(name))?;
    if record.deletion_timestamp.is_some() {
        return finish(state, tx, Outcome::Updated, &record, dry_run).await;
    }
    check_preconditions(record.resource_version, [if_match])?;
    let updated = instances::mark_deleted(&mut tx, record.uid, record.resource_version)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("instance {name} was modified concurrently")))?;
    work::enqueue_now(&mut tx, record.uid, "deletion-requested").await?;
    events::append_audited(
        &mut tx,
        &NewEvent {
            instance_uid: record.uid,
            instance_name: name,
            type_: EventType::Normal,
            reason: "DeletionRequested",
            message: "deletion requested through the API; teardown follows",
            generation: Some(updated.generation),
        },
        &action_audit(actor),
    )
    .await?;
    finish(state, tx, Outcome::Updated, &updated, dry_run).await
}

/// `POST .../reconcile` by `actor`: makes the instance due now. Allowed while deleting (it
/// hurries teardown).
pub async fn request_reconcile(
    state: &ApiState,
    name: &str,
    actor: &str,
) -> Result<OpenClawInstance, ApiError> {
    check_name(name).map_err(|e| ApiError::invalid(vec![e]))?;
    let mut conn = state.db().await?;
    let mut tx = conn.begin().await?;
    let record = instances::get_for_update(&mut tx, name)
        .await?
        .ok_or_else(|| not_found(name))?;
    work::enqueue_now(&mut tx, record.uid, "reconcile-requested").await?;
    events::append_audited(
        &mut tx,
        &NewEvent {
            instance_uid: record.uid,
            instance_name: name,
            type_: EventType::Normal,
            reason: "ReconcileRequested",
            message: "reconcile requested through the API",
            generation: Some(record.generation),
        },
        &action_audit(actor),
    )
    .await?;
    tx.commit().await?;
    to_resource(state, &record)
}
