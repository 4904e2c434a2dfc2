//! What the two pairing-decision paths share: device approvals ([`crate::gateway`]) and DM
//! decisions ([`crate::channel_pairing`]) are both an entry appended to a list in
//! `spec.pairing`, carried out by the controller's pairing subscription, whose outcome the API
//! waits for in `status.pairing.recent`. One place for the refusal shape, the stopped-machine
//! check, the append with the version read, and the wait.

use axum::http::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

use super::error::ApiError;
use super::write;
use super::ApiState;
use openclaws_model::{InstanceSpec, InstanceStatus, OpenClawInstance, PairingResult, RunState};
use openclaws_store::{instances, InstanceRecord};

/// How long the API waits for the controller to record a decision's outcome.
const OUTCOME_WAIT: Duration = Duration::from_secs(5);
/// How often it reads the status meanwhile.
const OUTCOME_POLL: Duration = Duration::from_millis(100);
/// How often an append is retried when another write moved the version meanwhile.
const APPEND_TRIES: usize = 5;

/// A refusal with a machine-readable `error.reason`.
pub(crate) fn refused(status: StatusCode, reason: &'static str, message: String) -> ApiError {
    ApiError::Refused {
        status,
        reason,
        message,
    }
}

/// Whether no gateway runs to decide anything: the spec stops the machine, or Fly last reported
/// it stopped or suspended.
pub(crate) fn machine_stopped(spec: &InstanceSpec, status: &InstanceStatus) -> bool {
    let machine = status.fly.as_ref().and_then(|f| f.machine_state.as_deref());
    spec.run_state == RunState::Stopped || matches!(machine, Some("stopped" | "suspended"))
}

/// One list of decisions in `spec.pairing`, written under its own field manager.
pub(crate) struct DecisionList {
    /// The key in `spec.pairing` (`approvals`, `channelDecisions`).
    pub field: &'static str,
    /// The field manager of the writes.
    pub manager: &'static str,
    /// What the list holds, for messages ("approvals", "DM pairing decisions").
    pub noun: &'static str,
    /// Most entries not carried out yet that it holds.
    pub max: usize,
}

/// Appends `entry` to `list`, keeping the entries `outstanding` returns for the spec read and
/// the ids already carried out (`status.pairing.recent`), written with the version read so a
/// concurrent write makes it retry instead of losing either. `outstanding` may refuse.
pub(crate) async fn append(
    state: &ApiState,
    name: &str,
    actor: &str,
    list: &DecisionList,
    entry: Value,
    outstanding: impl Fn(InstanceSpec, &[String]) -> Result<Vec<Value>, ApiError>,
) -> Result<OpenClawInstance, ApiError> {
    for _ in 0..APPEND_TRIES {
        let record = instances::get(&mut state.db().await?, name)
            .await?
            .ok_or_else(|| write::not_found(name))?;
        let mut entries = outstanding(record.spec()?, &carried_out(&record)?)?;
        if entries.len() >= list.max {
            return Err(ApiError::Conflict(format!(
                "{name} has {} {} not carried out yet; wait for them (see status.pairing)",
                list.max, list.noun
            )));
        }
        entries.push(entry.clone());
        let patch = json!({"spec": {"pairing": {list.field: entries}}});
        let options = write::WriteOptions {
            actor,
            manager: list.manager,
            force: false,
            dry_run: false,
        };
        match write::patch(state, name, patch, Some(record.resource_version), options).await {
            Ok(written) => return Ok(written.object),
            Err(ApiError::StaleVersion(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::Conflict(format!(
        "{name} kept changing while the {} were written; retry",
        list.noun
    )))
}

/// The ids of the decisions whose outcome the status records.
fn carried_out(record: &InstanceRecord) -> Result<Vec<String>, ApiError> {
    let recent = record
        .status()?
        .pairing
        .map(|p| p.recent)
        .unwrap_or_default();
    Ok(recent.into_iter().filter_map(|r| r.approval_id).collect())
}

/// Waits (up to 5 s) for the controller to record the outcome of the decision `id`: the
/// instance's row and the outcome, or `None` when it did not come in time.
pub(crate) async fn outcome(
    state: &ApiState,
    name: &str,
    id: &str,
) -> Result<Option<(InstanceRecord, PairingResult)>, ApiError> {
    let deadline = tokio::time::Instant::now() + OUTCOME_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(OUTCOME_POLL).await;
        let Some(record) = instances::get(&mut state.db().await?, name).await? else {
            return Err(write::not_found(name));
        };
        let status = record.status()?;
        let recent = status.pairing.iter().flat_map(|p| p.recent.iter());
        if let Some(found) = recent
            .into_iter()
            .find(|r| r.approval_id.as_deref() == Some(id))
        {
            let found = found.clone();
            return Ok(Some((record, found)));
        }
    }
    Ok(None)
}
