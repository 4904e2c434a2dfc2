//! `POST /v1/instances/{name}/adopt`: creates an instance that takes over an app the old web app
//! built (`docs/adoption.md`), keeping its volume, its DNS record and certificate and its
//! gateway token. The API never calls Fly: it checks what it can know (the app's name, that no
//! other instance holds it, the spec) and claims the app; the reconcile checks the app's layout
//! before changing anything and reports a mismatch as `AdoptionRefused`.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, FieldError};
use super::validate::{check_name, normalize_numbers, validate_write};
use super::write::{self, Outcome, WriteOptions, Written};
use super::ApiState;
use openclaws_model::secret_names::GATEWAY_TOKEN;
use openclaws_model::{InstanceSpec, WriteMeta};
use openclaws_store::events::{self, EventType, NewEvent};
use openclaws_store::{adoptions, instances, secrets};

/// Longest gateway token accepted.
const MAX_TOKEN_CHARS: usize = 512;

/// Body of `POST /v1/instances/{name}/adopt`: the app to take over, its gateway token, and the
/// instance to create (as in a `PUT`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdoptionWrite {
    /// The app to take over: `{FLY_APP_PREFIX}{name}` (the prefix is the controller's setting,
    /// `oc-` by default).
    #[schema(min_length = 1, max_length = 63, example = "oc-acme")]
    pub app: String,
    /// The app's `OPENCLAW_GATEWAY_TOKEN` as the web app stored it (Fly secrets cannot be read
    /// back). Write-only: stored encrypted as the instance's gateway token and set again on
    /// the app, so paired devices keep working; never returned.
    #[schema(min_length = 1, max_length = 512, pattern = "^[!-~]+$")]
    pub gateway_token: String,
    #[serde(default)]
    pub metadata: WriteMeta,
    /// The desired state; defaults are applied to omitted fields. `region` must be the region
    /// of the app's volume.
    #[schema(value_type = openclaws_model::InstanceSpecWrite)]
    pub spec: Value,
}

/// The app and token of an adoption request, checked; `Debug` hides the token.
struct Claim {
    app: String,
    token: String,
}

/// Takes `app` and `gatewayToken` out of the body (leaving an instance write), checking them.
fn take_claim(body: &mut Value, name: &str, prefix: &str) -> Result<Claim, ApiError> {
    let object = body.as_object_mut().ok_or_else(|| {
        ApiError::invalid(vec![FieldError::new("", "the body must be a JSON object")])
    })?;
    let app = object.remove("app");
    let token = object.remove("gatewayToken");
    let mut errors: Vec<FieldError> = ["apiVersion", "kind"]
        .into_iter()
        .filter(|key| object.contains_key(*key))
        .map(|key| FieldError::new(key, "is not part of an adoption request"))
        .collect();
    let expected = format!("{prefix}{name}");
    let app = match app {
        Some(Value::String(app)) if app == expected => Some(app),
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                "app",
                format!("must be {expected}: only apps named with the prefix {prefix:?} and the instance name are adopted"),
            ));
            None
        }
        _ => {
            errors.push(FieldError::new("app", "is required (a string)"));
            None
        }
    };
    let token = match token {
        Some(Value::String(t)) if valid_token(&t) => Some(t),
        _ => {
            errors.push(FieldError::new(
                "gatewayToken",
                format!("is required: 1-{MAX_TOKEN_CHARS} visible ASCII characters"),
            ));
            None
        }
    };
    match (app, token) {
        (Some(app), Some(token)) if errors.is_empty() => Ok(Claim { app, token }),
        _ => Err(ApiError::invalid(errors)),
    }
}

fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.chars().count() <= MAX_TOKEN_CHARS
        && token.chars().all(|c| c.is_ascii_graphic())
}

/// Creates instance `name` adopting the app the body names, in one transaction: the instance
/// (as a `PUT` would create it), the claim on the app (unique: concurrent adoptions of one app
/// adopt it once) and the gateway token, encrypted. 409 when the instance exists or another
/// instance holds the app.
pub async fn adopt(
    state: &ApiState,
    name: &str,
    mut body: Value,
    options: WriteOptions<'_>,
) -> Result<Written, ApiError> {
    check_name(name).map_err(|e| ApiError::invalid(vec![e]))?;
    let claim = take_claim(&mut body, name, &state.inputs.settings.app_prefix)?;
    normalize_numbers(&mut body);
    let errors = validate_write(name, &body);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let mut conn = state.db().await?;
    let mut tx = conn.begin().await?;
    if let Some(held) = adoptions::of_app(&mut tx, &claim.app).await? {
        return Err(held_elsewhere(&claim.app, &held));
    }
    if instances::get_for_update(&mut tx, name).await?.is_some() {
        return Err(exists(name));
    }
    let record = write::create(state, &mut tx, name, &body, None, options)
        .await?
        .ok_or_else(|| exists(name))?;
    if !adoptions::claim(&mut tx, record.uid, &claim.app).await? {
        return Err(ApiError::Conflict(format!(
            "app {} was claimed by another instance concurrently",
            claim.app
        )));
    }
    store_token(state, &mut tx, &record, &claim).await?;
    write::finish(state, tx, Outcome::Created, &record, options.dry_run).await
}

/// Stores the adopted token as the instance's gateway token (for the spec's rotation, so it is
/// kept) and records the claim as an event, which names the app and never the token.
async fn store_token(
    state: &ApiState,
    tx: &mut openclaws_store::Conn<'_>,
    record: &openclaws_store::InstanceRecord,
    claim: &Claim,
) -> Result<(), ApiError> {
    let spec: InstanceSpec = record.spec()?;
    let now = Utc::now();
    let at = chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    secrets::put(
        &mut *tx,
        &state.cipher,
        record.uid,
        GATEWAY_TOKEN,
        &claim.token,
        at,
    )
    .await?;
    adoptions::set_token_rotation(&mut *tx, record.uid, i64::from(spec.gateway_token_rotation))
        .await?;
    let message = format!(
        "app {} claimed for adoption; its gateway token is kept (docs/adoption.md)",
        claim.app
    );
    events::append(
        &mut *tx,
        &NewEvent {
            instance_uid: record.uid,
            instance_name: &record.name,
            type_: EventType::Normal,
            reason: "AdoptionClaimed",
            message: &message,
            generation: Some(record.generation),
        },
    )
    .await?;
    Ok(())
}

fn exists(name: &str) -> ApiError {
    ApiError::Conflict(format!(
        "instance {name} already exists; adoption creates the instance that takes the app over"
    ))
}

fn held_elsewhere(app: &str, held: &adoptions::Adoption) -> ApiError {
    ApiError::Conflict(format!(
        "app {app} is already adopted by instance {}",
        held.instance_uid
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(app: &str, token: &str) -> Value {
        serde_json::json!({"app": app, "gatewayToken": token, "spec": {"customerId": "c", "region": "iad"}})
    }

    #[test]
    fn the_claim_is_taken_out_of_an_instance_write() {
        let mut b = body("oc-acme", "tok-123");
        let claim = take_claim(&mut b, "acme", "oc-").unwrap();
        assert_eq!(
            (claim.app.as_str(), claim.token.as_str()),
            ("oc-acme", "tok-123")
        );
        assert_eq!(
            b,
            serde_json::json!({"spec": {"customerId": "c", "region": "iad"}})
        );
    }

    #[test]
    fn only_the_adoption_fields_are_accepted_besides_metadata_and_spec() {
        let mut b = body("oc-acme", "t");
        b["kind"] = serde_json::json!("OpenClawInstance");
        let Err(ApiError::Invalid { fields, .. }) = take_claim(&mut b, "acme", "oc-") else {
            panic!("kind was accepted");
        };
        assert_eq!(fields[0].path, "kind");
    }

    #[test]
    fn an_app_outside_the_prefix_or_not_named_for_the_instance_is_refused() {
        for app in ["acme", "xx-acme", "oc-other", ""] {
            let Err(ApiError::Invalid { fields, .. }) =
                take_claim(&mut body(app, "t"), "acme", "oc-")
            else {
                panic!("{app} was accepted");
            };
            assert_eq!(fields[0].path, "app", "{app}");
        }
    }

    #[test]
    fn a_missing_or_malformed_token_is_refused_without_echoing_it() {
        for token in ["", "has space", "tab\tbed", &"x".repeat(513)] {
            let Err(e) = take_claim(&mut body("oc-acme", token), "acme", "oc-") else {
                panic!("{token:?} was accepted");
            };
            let shown = serde_json::to_string(&e.to_string()).unwrap();
            assert!(token.is_empty() || !shown.contains(token), "{shown}");
        }
    }
}
