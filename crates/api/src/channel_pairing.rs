//! DM pairing through the API (`docs/pairing.md`, "DM pairing"): approve or dismiss a
//! stranger's pending DM request on a channel. As with device approvals, the API never talks
//! to the gateway: it records a decision in `spec.pairing.channelDecisions`, the controller's
//! pairing subscription carries it out over the gateway protocol (`channels.pairing.approve` /
//! `channels.pairing.dismiss`) within about a second, and the API waits up to 5 s for the
//! outcome, answering as specifically as the recorded status allows.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Role;
use super::decisions::{self, refused, DecisionList};
use super::error::{ApiError, FieldError};
use super::instances::json_body;
use super::validate::{check_name, valid_channel, valid_channel_request_id};
use super::write;
use super::ApiState;
use openclaws_model::{
    ChannelKind, ChannelPairingDecision, ChannelPairingPolicy, ChannelPairingVerdict, DmPolicy,
    InstanceSpec, InstanceStatus, OpenClawInstance, PairingOutcome, PairingResult, Phase,
};
use openclaws_store::instances;

/// A decision about one pending DM pairing request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelDecisionRequest {
    /// The request's id as listed in `status.pairing.channelPending` (OpenClaw's opaque id:
    /// 1–64 characters of `A-Z a-z 0-9 _ -`). OpenClaw never reveals the sender's pairing code
    /// to operators, so requests are named by this id, not by the code.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub request_id: String,
    /// Approvals only: tell the sender on the channel that they were approved.
    #[serde(default)]
    pub notify: Option<bool>,
}

/// The recorded decision, its outcome when known, and the instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelDecisionRecorded {
    /// Its outcome appears in `status.pairing.recent` under this decision's `id`.
    pub decision: ChannelPairingDecision,
    /// The outcome, when the controller recorded it before the answer (200: `Approved` or
    /// `Dismissed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<PairingResult>,
    pub instance: OpenClawInstance,
}

/// Approve a stranger's pending DM pairing request on a channel.
///
/// Records the approval in `spec.pairing.channelDecisions`; the controller's pairing
/// subscription approves it over the gateway protocol (`channels.pairing.approve`) within about
/// a second, after which the sender's messages reach the agent. The API waits up to 5 s for
/// the outcome (it never talks to the gateway itself). See `docs/pairing.md`.
#[utoipa::path(post, path = "/v1/instances/{name}/channels/{channel}/pairing/approvals", tag = "instances",
    params(("name" = String, Path, description = "Instance name"),
           ("channel" = String, Path, description = "Channel id (`telegram`, `discord`, `slack`, ...)")),
    request_body(content = ChannelDecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Approved: the sender may talk to the agent now (`outcome.result` is `Approved`)", body = ChannelDecisionRecorded),
        (status = 202, description = "Recorded, outcome not known yet: the gateway is starting, or the outcome took longer than 5 s; follow `status.pairing.recent`", body = ChannelDecisionRecorded),
        (status = 400, description = "Malformed JSON", body = super::error::ErrorBody),
        (status = 401, description = "Missing or unknown token", body = super::error::ErrorBody),
        (status = 403, description = "Read-only token", body = super::error::ErrorBody),
        (status = 404, description = "No such instance; or `reason: RequestNotFound`: the request is not pending on that channel (expired after an hour, already decided, or never made); nothing is recorded", body = super::error::ErrorBody),
        (status = 409, description = "`reason: ChannelNotConfigured`: `spec.channels.{channel}` is not configured, disabled, or its `dmPolicy` is not `pairing` (a channel the spec cannot name, set up in the Control UI, is judged by the gateway's report); `reason: ChannelNotReady`: the spec asks for DM pairing on the channel but the gateway does not run it that way yet (just connected or restarting; retry when `ChannelsReady` is True); `reason: MachineStopped`: no gateway runs; `reason: PolicyAuto`: `spec.pairing.channels` is `auto`; `reason: ApprovalFailed`: the gateway refused; or the instance is being deleted, or too many decisions are outstanding", body = super::error::ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = super::error::ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = super::error::ErrorBody),
        (status = 422, description = "Bad channel name, request id or field", body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn post_channel_approval(
    State(state): State<ApiState>,
    Extension(role): Extension<Role>,
    Path((name, channel)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let verdict = ChannelPairingVerdict::Approve;
    handle(&state, role, &name, &channel, &headers, body, verdict).await
}

/// Dismiss a stranger's pending DM pairing request on a channel.
///
/// The request is dropped without approving it; it is not a block (the sender may ask again
/// later). Recorded and carried out like an approval. See `docs/pairing.md`.
#[utoipa::path(post, path = "/v1/instances/{name}/channels/{channel}/pairing/dismissals", tag = "instances",
    params(("name" = String, Path, description = "Instance name"),
           ("channel" = String, Path, description = "Channel id (`telegram`, `discord`, `slack`, ...)")),
    request_body(content = ChannelDecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Dismissed (`outcome.result` is `Dismissed`)", body = ChannelDecisionRecorded),
        (status = 202, description = "Recorded, outcome not known yet; follow `status.pairing.recent`", body = ChannelDecisionRecorded),
        (status = 400, description = "Malformed JSON", body = super::error::ErrorBody),
        (status = 401, description = "Missing or unknown token", body = super::error::ErrorBody),
        (status = 403, description = "Read-only token", body = super::error::ErrorBody),
        (status = 404, description = "No such instance; or `reason: RequestNotFound`: the request is not pending on that channel; nothing is recorded", body = super::error::ErrorBody),
        (status = 409, description = "`reason: ChannelNotConfigured`, `ChannelNotReady` (as for approvals), `MachineStopped` or `DismissalFailed`; or the instance is being deleted, or too many decisions are outstanding", body = super::error::ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = super::error::ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = super::error::ErrorBody),
        (status = 422, description = "Bad channel name, request id or field (`notify` is for approvals)", body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn post_channel_dismissal(
    State(state): State<ApiState>,
    Extension(role): Extension<Role>,
    Path((name, channel)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let verdict = ChannelPairingVerdict::Dismiss;
    handle(&state, role, &name, &channel, &headers, body, verdict).await
}

async fn handle(
    state: &ApiState,
    role: Role,
    name: &str,
    channel: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    verdict: ChannelPairingVerdict,
) -> Result<Response, ApiError> {
    if role != Role::Writer {
        return Err(ApiError::Forbidden);
    }
    check_name(name).map_err(|e| ApiError::invalid(vec![e]))?;
    check_channel(channel)?;
    let body = json_body(headers, body, &["application/json"])?;
    let request = decision_request(body, verdict)?;
    let asked = Asked {
        channel,
        request_id: &request.request_id,
        notify: request.notify.unwrap_or(false),
        verdict,
    };
    let answer = decide(state, name, &asked, role.actor()).await?;
    let status = match answer.outcome {
        Some(_) => StatusCode::OK,
        None => StatusCode::ACCEPTED,
    };
    Ok((status, Json(answer)).into_response())
}

/// What a caller asks for: one decision about one request.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub channel: &'a str,
    pub request_id: &'a str,
    pub notify: bool,
    pub verdict: ChannelPairingVerdict,
}

/// Reads a decision body field by field, so an error names the field and never quotes the
/// value.
fn decision_request(
    body: Value,
    verdict: ChannelPairingVerdict,
) -> Result<ChannelDecisionRequest, ApiError> {
    let Value::Object(fields) = body else {
        return Err(ApiError::invalid(vec![FieldError::new(
            "",
            "the body must be a JSON object",
        )]));
    };
    let mut errors = Vec::new();
    let (mut request_id, mut notify) = (None, None);
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("requestId", Value::String(id)) => request_id = Some(id),
            ("requestId", _) => errors.push(FieldError::new("requestId", "must be a string")),
            ("notify", Value::Null) => {}
            ("notify", Value::Bool(b)) if verdict == ChannelPairingVerdict::Approve => {
                notify = Some(b)
            }
            ("notify", Value::Bool(_)) => errors.push(FieldError::new(
                "notify",
                "only an approval can notify the sender",
            )),
            ("notify", _) => errors.push(FieldError::new("notify", "must be a boolean")),
            ("code", _) => errors.push(FieldError::new(
                "code",
                "OpenClaw does not reveal pairing codes to operators over its protocol; name the \
                 request by its requestId from status.pairing.channelPending",
            )),
            (other, _) => errors.push(FieldError::new(other, "unknown field")),
        }
    }
    match &request_id {
        Some(id) if valid_channel_request_id(id) => {}
        Some(_) => errors.push(FieldError::new(
            "requestId",
            "must be 1-64 characters of A-Z, a-z, 0-9, _ and - (as listed in status.pairing.channelPending)",
        )),
        None if errors.is_empty() => errors.push(FieldError::new("requestId", "is required")),
        None => {}
    }
    match (errors.is_empty(), request_id) {
        (true, Some(request_id)) => Ok(ChannelDecisionRequest { request_id, notify }),
        _ => Err(ApiError::invalid(errors)),
    }
}

/// A channel id ([`valid_channel`]), or a 422 naming the `channel` path parameter.
pub fn check_channel(channel: &str) -> Result<(), ApiError> {
    match valid_channel(channel) {
        true => Ok(()),
        false => Err(ApiError::invalid(vec![FieldError::new(
            "channel",
            "must be a channel id: a lowercase letter, then up to 31 lowercase letters, digits and - (telegram, discord, slack, ...)",
        )])),
    }
}

/// Records a decision about a pending DM request and waits for its outcome, answering as
/// specifically as the recorded observation allows: refused at once when it cannot work
/// (stopped machine, channel without DM pairing, request not pending), recorded and waited for
/// (up to 5 s) when the gateway is up, recorded only (no outcome) while it is starting. The one
/// path of the API and the support console; the caller has checked the writer role.
pub async fn decide(
    state: &ApiState,
    name: &str,
    asked: &Asked<'_>,
    actor: &str,
) -> Result<ChannelDecisionRecorded, ApiError> {
    check_name(name).map_err(|e| ApiError::invalid(vec![e]))?;
    check_channel(asked.channel)?;
    if !valid_channel_request_id(asked.request_id) {
        return Err(ApiError::invalid(vec![FieldError::new(
            "requestId",
            "must be 1-64 characters of A-Z, a-z, 0-9, _ and -",
        )]));
    }
    let record = instances::get(&mut state.db().await?, name)
        .await?
        .ok_or_else(|| write::not_found(name))?;
    let live = precheck(name, &record.spec()?, &record.status()?, asked)?;
    let (decision, instance) = record_decision(state, name, asked, actor).await?;
    let mut answer = ChannelDecisionRecorded {
        decision,
        outcome: None,
        instance,
    };
    if live {
        wait_for_outcome(state, name, &mut answer).await?;
    }
    Ok(answer)
}

/// Refuses a decision that cannot work by what was last recorded; `Ok(true)` when the gateway
/// runs with the controller's device paired, so the outcome is worth waiting for.
fn precheck(
    name: &str,
    spec: &InstanceSpec,
    status: &InstanceStatus,
    asked: &Asked<'_>,
) -> Result<bool, ApiError> {
    let channel = asked.channel;
    let in_spec = spec_pairing(name, spec, channel)?;
    if asked.verdict == ChannelPairingVerdict::Approve
        && spec.pairing.channels == ChannelPairingPolicy::Auto
    {
        return Err(refused(
            StatusCode::CONFLICT,
            "PolicyAuto",
            format!("{name} approves DM pairing requests by itself (spec.pairing.channels: auto); set it to manual to approve by hand"),
        ));
    }
    if decisions::machine_stopped(spec, status) {
        return Err(refused(
            StatusCode::CONFLICT,
            "MachineStopped",
            format!("the machine of {name} is stopped or suspended: no gateway runs to decide DM pairing requests; start it (spec.runState: running) and retry"),
        ));
    }
    let pairing = status.pairing.clone().unwrap_or_default();
    if status.phase != Phase::Ready || !pairing.controller_paired || pairing.observed_at.is_none() {
        return Ok(false);
    }
    let pending = |p: &&openclaws_model::PendingChannelPairing| {
        p.channel == channel && p.request_id == asked.request_id
    };
    if pairing.channel_pending.iter().any(|p| pending(&p)) {
        return Ok(true);
    }
    let uses_pairing = |a: &String| a.split(':').next() == Some(channel);
    match (pairing.channel_accounts.iter().any(uses_pairing), in_spec) {
        (true, _) => Err(refused(
            StatusCode::NOT_FOUND,
            "RequestNotFound",
            format!("that DM pairing request is not pending on {channel} of {name}: it expired (requests last an hour), was already decided, or was never made; see status.pairing.channelPending"),
        )),
        (false, true) => Err(refused(
            StatusCode::CONFLICT,
            "ChannelNotReady",
            format!("{channel} is configured with DM pairing in the spec of {name}, but the gateway does not run it with DM pairing yet; retry when the ChannelsReady condition is True"),
        )),
        (false, false) => Err(not_configured(name, channel)),
    }
}

/// Whether the spec asks for DM pairing on `channel`: `Ok(true)` when it configures the channel
/// enabled with `dmPolicy: pairing`, `ChannelNotConfigured` when it can name the channel
/// (Telegram, Discord, Slack) and does not ask for that, `Ok(false)` for a channel the spec
/// cannot name (one the customer configured in the Control UI), which only the gateway's
/// report can judge.
fn spec_pairing(name: &str, spec: &InstanceSpec, channel: &str) -> Result<bool, ApiError> {
    let Some(kind) = ChannelKind::parse(channel) else {
        return Ok(false);
    };
    match spec.channels.get(kind) {
        Some(c) if c.enabled && c.dm_policy == DmPolicy::Pairing => Ok(true),
        _ => Err(not_configured(name, channel)),
    }
}

fn not_configured(name: &str, channel: &str) -> ApiError {
    refused(
        StatusCode::CONFLICT,
        "ChannelNotConfigured",
        format!("{name} does not use DM pairing on {channel}: spec.channels.{channel} is not configured, is disabled, or its dmPolicy is not pairing"),
    )
}

/// The field manager of decisions recorded through `POST …/channels/{channel}/pairing/…`.
pub const DECISIONS_MANAGER: &str = "channel-pairing-decisions";

/// `spec.pairing.channelDecisions`: at most 100 not carried out yet.
const DECISIONS: DecisionList = DecisionList {
    field: "channelDecisions",
    manager: DECISIONS_MANAGER,
    noun: "DM pairing decisions",
    max: 100,
};

/// Appends the decision to `spec.pairing.channelDecisions` (dropping those already carried
/// out), with the version read, so a concurrent write makes it retry instead of losing either.
async fn record_decision(
    state: &ApiState,
    name: &str,
    asked: &Asked<'_>,
    actor: &str,
) -> Result<(ChannelPairingDecision, OpenClawInstance), ApiError> {
    let decision = ChannelPairingDecision {
        id: uuid::Uuid::new_v4().simple().to_string(),
        requested_at: Some(chrono::Utc::now()),
        channel: asked.channel.to_owned(),
        request_id: asked.request_id.to_owned(),
        decision: asked.verdict,
        notify: asked.notify,
    };
    let entry = serde_json::to_value(&decision).map_err(|e| ApiError::Internal(e.to_string()))?;
    let instance = decisions::append(state, name, actor, &DECISIONS, entry, |spec, done| {
        let outstanding = spec.pairing.channel_decisions.into_iter();
        let outstanding = outstanding.filter(|d| !done.contains(&d.id));
        Ok(outstanding
            .filter_map(|d| serde_json::to_value(d).ok())
            .collect())
    })
    .await?;
    Ok((decision, instance))
}

/// Waits (up to 5 s) for the decision's outcome: fills `answer.outcome` when
/// approved or dismissed, refuses when it expired or failed, leaves it empty when the outcome
/// did not come in time.
async fn wait_for_outcome(
    state: &ApiState,
    name: &str,
    answer: &mut ChannelDecisionRecorded,
) -> Result<(), ApiError> {
    let Some((record, outcome)) = decisions::outcome(state, name, &answer.decision.id).await?
    else {
        return Ok(());
    };
    let failed = match answer.decision.decision {
        ChannelPairingVerdict::Approve => "ApprovalFailed",
        ChannelPairingVerdict::Dismiss => "DismissalFailed",
    };
    match outcome.result {
        PairingOutcome::Approved | PairingOutcome::Dismissed => {
            answer.instance = record.to_resource(&state.cipher)?;
            answer.outcome = Some(outcome);
            Ok(())
        }
        PairingOutcome::Expired => Err(refused(
            StatusCode::NOT_FOUND,
            "RequestNotFound",
            outcome.message,
        )),
        PairingOutcome::Failed => Err(refused(
            StatusCode::CONFLICT,
            failed,
            format!(
                "the gateway did not carry the decision out: {}",
                outcome.message
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invalid_paths(result: Result<ChannelDecisionRequest, ApiError>) -> Vec<String> {
        match result {
            Err(ApiError::Invalid { fields, .. }) => fields.into_iter().map(|f| f.path).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn a_decision_body_is_read_field_by_field() {
        let approve = ChannelPairingVerdict::Approve;
        let dismiss = ChannelPairingVerdict::Dismiss;
        let ok = decision_request(json!({"requestId": "AbC_-9", "notify": true}), approve);
        assert_eq!(ok.unwrap().notify, Some(true));
        let cases = [
            (json!({}), approve, vec!["requestId"]),
            (json!([]), approve, vec![""]),
            (json!({"requestId": 7}), approve, vec!["requestId"]),
            (
                json!({"requestId": "has space"}),
                approve,
                vec!["requestId"],
            ),
            (
                json!({"requestId": "x".repeat(65)}),
                approve,
                vec!["requestId"],
            ),
            (
                json!({"requestId": "r", "notify": "yes"}),
                approve,
                vec!["notify"],
            ),
            (
                json!({"requestId": "r", "notify": true}),
                dismiss,
                vec!["notify"],
            ),
            (json!({"code": "ABCD2345"}), approve, vec!["code"]),
            (
                json!({"requestId": "r", "extra": 1}),
                approve,
                vec!["extra"],
            ),
        ];
        for (body, verdict, paths) in cases {
            assert_eq!(
                invalid_paths(decision_request(body.clone(), verdict)),
                paths,
                "{body}"
            );
        }
    }

    #[test]
    fn channel_ids_are_lowercase_plugin_names() {
        for good in ["telegram", "discord", "slack", "nextcloud-talk", "a1"] {
            assert!(check_channel(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Telegram",
            "1tg",
            "tele gram",
            "tg/x",
            &"a".repeat(33),
            "télé",
        ] {
            assert!(check_channel(bad).is_err(), "{bad}");
        }
    }
}
