//! `GET /v1/instances/{name}/plan`: what the next reconcile would do, for support and operators.
//! Computed from the world the last reconcile recorded and the current spec with the pure planner
//! ([`openclaws_engine::reconcile::preview`]); it calls no one and writes nothing.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::validate::check_name;
use super::ApiState;
use openclaws_engine::reconcile::preview::{self, Preview, PreviewError};
use openclaws_store::instances;

/// The next reconcile of an instance, as far as it can be told without calling Fly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanPreview {
    /// The instance.
    pub name: String,
    /// The spec generation planned for.
    pub generation: i64,
    /// `spec.paused`: nothing happens until it is false.
    pub paused: bool,
    /// Deletion was requested: the plan is the teardown.
    pub deleting: bool,
    /// Nothing to do, nothing to wait for, nothing blocked.
    pub converged: bool,
    /// The steps the next reconcile would take first, in order (later steps depend on their
    /// results). Names and ids only, never secret values.
    pub actions: Vec<PlannedAction>,
    /// Something in flight the next visit looks at again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<PlannedWait>,
    /// A problem retrying cannot fix for this generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<PlannedBlock>,
    /// The next reconcile looks at the gateway itself before deciding gateway-side steps (those
    /// listed come from its last recorded look).
    pub look_at_gateway: bool,
    /// When the world planned from was read by a reconcile; absent when none was recorded yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    /// What to know to read this plan right (no snapshot yet, paused, values to be created).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One planned step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    /// The step name used in events and `lastError.step` (`CreateApp`, `UpdateMachine`, ...).
    pub step: String,
    /// One line about it.
    pub description: String,
}

/// What the controller waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedWait {
    /// Machine-readable cause (`MachineStarting`, `CertificatePending`, ...).
    pub reason: String,
    /// What is in flight.
    pub message: String,
    /// When the controller would look again, in seconds after the reconcile.
    pub after_seconds: f64,
}

/// Why the controller cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedBlock {
    /// Machine-readable cause (`AppNameTaken`, `FlyRejected`, ...).
    pub reason: String,
    /// What is wrong and what would help.
    pub message: String,
}

impl PlanPreview {
    /// The response for one instance's preview.
    pub fn new(name: &str, generation: i64, preview: Preview) -> Self {
        let converged = preview.converged();
        Self {
            name: name.to_owned(),
            generation,
            paused: preview.paused,
            deleting: preview.deleting,
            converged,
            actions: preview
                .plan
                .actions
                .iter()
                .map(|a| PlannedAction {
                    step: a.step().to_owned(),
                    description: a.describe(),
                })
                .collect(),
            wait: preview.plan.wait.map(|w| PlannedWait {
                reason: w.reason.as_str().to_owned(),
                message: w.message,
                after_seconds: w.after.as_secs_f64(),
            }),
            blocked: preview.plan.blocked.map(|b| PlannedBlock {
                reason: b.reason.as_str().to_owned(),
                message: b.message,
            }),
            look_at_gateway: preview.look_at_gateway,
            observed_at: preview.observed_at,
            notes: preview.notes,
        }
    }
}

impl From<PreviewError> for ApiError {
    fn from(e: PreviewError) -> Self {
        match e {
            PreviewError::Store(store) => store.into(),
            PreviewError::Secrets(secrets) => secrets.into(),
        }
    }
}

/// Preview the next reconcile (no side effect).
///
/// Plans from the world the last reconcile recorded (see `observedAt`) and the current spec,
/// with the controller's own planner and settings. Neither Fly nor the gateway is called and
/// nothing is written; a gateway or LLM proxy token the reconcile would create shows as the app
/// secrets write it causes. Without a recorded observation the plan starts from an empty world
/// (a note says so).
#[utoipa::path(get, path = "/v1/instances/{name}/plan", tag = "instances",
    params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "What the next reconcile would do", body = PlanPreview),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_plan(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<PlanPreview>, ApiError> {
    check_name(&name).map_err(|e| ApiError::invalid(vec![e]))?;
    let mut conn = state.db().await?;
    let record = instances::get(&mut conn, &name)
        .await?
        .ok_or_else(|| ApiError::no_instance(&name))?;
    let preview = preview::preview(&mut conn, &state.cipher, &state.inputs, &record, Utc::now());
    let preview = tokio::time::timeout(crate::PREVIEW_DEADLINE, preview)
        .await
        .map_err(|_| {
            ApiError::DatabaseUnavailable("the plan preview did not finish in time".to_owned())
        })??;
    Ok(Json(PlanPreview::new(
        &record.name,
        record.generation,
        preview,
    )))
}
