//! Error reporting to Sentry: reconcile failures and panics, scrubbed before they leave.
//!
//! Nothing is sent unless `SENTRY_DSN` is set. Every event passes [`scrub_event`] last, after
//! the SDK's own processing: values under sensitive keys (authorization, tokens, API keys,
//! secrets, passwords, cookies, …) and values that look like credentials (`sk-…` provider keys,
//! `Bearer …`, JWTs, Fly tokens, long random strings) become `[Filtered]` wherever they occur.
//!
//! Grouping: a failed step is one Sentry issue per instance and step (fingerprint
//! `["reconcile", "{uid}", "{step}"]`), so an instance stuck on a step is one issue however
//! often it retries; the engine reports it only when the failure first appears or changes.

use sentry::protocol::{Breadcrumb, Event, Exception, Level};
use sentry::{Hub, SentryFutureExt};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

use openclaws_model::conditions::{ConditionType, Reason};
pub use openclaws_model::redact::{is_sensitive_key, scrub_text, FILTERED};
use openclaws_model::{InstanceStatus, Phase};

/// A Sentry DSN from the settings; `Debug` never prints it (an old-style DSN holds a secret key).
#[derive(Clone)]
pub struct SentryDsn(sentry::types::Dsn);

impl std::fmt::Debug for SentryDsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentryDsn(..)")
    }
}

impl std::str::FromStr for SentryDsn {
    type Err = sentry::types::ParseDsnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Error reporting settings (every subcommand; only `serve` and `dev` have reconciles to report).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SentrySettings {
    /// Sentry DSN: reconcile failures and panics are reported there (unset: nothing is sent).
    #[arg(
        long,
        env = "SENTRY_DSN",
        value_name = "SENTRY_DSN",
        hide_env_values = true,
        global = true
    )]
    pub sentry_dsn: Option<SentryDsn>,
    /// Environment name on every reported event (e.g. `production`, `staging`).
    #[arg(
        long,
        env = "SENTRY_ENVIRONMENT",
        value_name = "SENTRY_ENVIRONMENT",
        global = true
    )]
    pub sentry_environment: Option<String>,
    /// Sentry's web API, where stuck instances' issues are resolved when they recover (with
    /// `SENTRY_ORG` and `SENTRY_AUTH_TOKEN`; default `https://sentry.io`, self-hosted: its own
    /// address).
    #[arg(
        long,
        env = "SENTRY_API_URL",
        value_name = "SENTRY_API_URL",
        global = true
    )]
    pub sentry_api_url: Option<url::Url>,
    /// Organization slug for `SENTRY_API_URL` (unset: recovered instances are not resolved).
    #[arg(long, env = "SENTRY_ORG", value_name = "SENTRY_ORG", global = true)]
    pub sentry_org: Option<String>,
    /// Auth token with the `event:write` scope, for resolving issues (unset: not resolved).
    #[arg(
        long,
        env = "SENTRY_AUTH_TOKEN",
        value_name = "SENTRY_AUTH_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub sentry_auth_token: Option<openclaws_model::secrets::Sensitive>,
}

/// The web API client [`init_sentry`] made, beside the global Sentry client it starts.
static SENTRY_ISSUES: std::sync::OnceLock<SentryIssues> = std::sync::OnceLock::new();

/// Sentry's web API, when a DSN, an organization and an auth token are configured.
pub fn sentry_issues() -> Option<SentryIssues> {
    SENTRY_ISSUES.get().cloned()
}

/// Sentry's web API for resolving issues (Bulk Mutate an Organization's Issues). `Debug` never
/// prints the token.
#[derive(Clone)]
pub struct SentryIssues {
    http: reqwest::Client,
    endpoint: url::Url,
    token: openclaws_model::secrets::Sensitive,
}

impl std::fmt::Debug for SentryIssues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentryIssues")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl SentryIssues {
    /// The API client when an organization and a token are configured.
    pub fn from_settings(settings: &SentrySettings) -> Option<Self> {
        let org = settings.sentry_org.as_deref()?;
        let token = settings.sentry_auth_token.clone()?;
        let base = match &settings.sentry_api_url {
            Some(url) => url.clone(),
            None => url::Url::parse("https://sentry.io").ok()?,
        };
        let endpoint = base
            .join(&format!("api/0/organizations/{org}/issues/"))
            .ok()?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .ok()?;
        Some(Self {
            http,
            endpoint,
            token,
        })
    }

    /// Resolves the unresolved issues (in every project) whose events carry `tag: value`. A
    /// failure is logged, not retried: the issue stays open for a person to close.
    pub async fn resolve_tagged(&self, tag: &str, value: &str) {
        let query = format!("is:unresolved {tag}:\"{value}\"");
        let answer = self
            .http
            .put(self.endpoint.clone())
            .query(&[("query", query.as_str()), ("project", "-1")])
            .bearer_auth(self.token.expose())
            .json(&serde_json::json!({"status": "resolved"}))
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => {
                tracing::info!(
                    tag,
                    value,
                    status = r.status().as_u16(),
                    "Sentry issue resolved"
                )
            }
            Ok(r) => tracing::warn!(
                tag,
                value,
                status = r.status().as_u16(),
                "Sentry refused to resolve the issue"
            ),
            Err(e) => {
                tracing::warn!(tag, value, error = %e.without_url(), "resolving the Sentry issue failed")
            }
        }
    }
}

/// Starts the Sentry client when a DSN is set; keep the guard alive for the process's lifetime
/// (dropping it flushes what is queued).
pub fn init_sentry(settings: &SentrySettings) -> Option<sentry::ClientInitGuard> {
    let dsn = settings.sentry_dsn.as_ref()?;
    let options = sentry::ClientOptions {
        dsn: Some(dsn.0.clone()),
        environment: settings.sentry_environment.clone().map(Cow::Owned),
        release: sentry::release_name!(),
        send_default_pii: false,
        before_send: Some(Arc::new(|event| Some(scrub_event(event)))),
        before_breadcrumb: Some(Arc::new(|crumb| Some(scrub_breadcrumb(crumb)))),
        ..Default::default()
    };
    let guard = sentry::init(options);
    if let Some(issues) = SentryIssues::from_settings(settings) {
        let _ = SENTRY_ISSUES.set(issues);
    }
    // Reconciles run under hubs made from the main hub, so the client must be there whatever
    // thread this ran on.
    Hub::main().bind_client(Hub::current().client());
    tracing::info!(
        environment = settings.sentry_environment.as_deref().unwrap_or(""),
        "reporting reconcile failures and panics to Sentry"
    );
    Some(guard)
}

/// Runs one reconcile under its own Sentry hub tagged with the instance uid, so a panic inside
/// it is reported with the instance it hit (the panic integration reports to the active hub).
pub fn sentry_bind_reconcile<F: Future>(uid: Uuid, reconcile: F) -> sentry::SentryFuture<F> {
    let hub = Arc::new(Hub::new_from_top(Hub::main()));
    hub.configure_scope(|scope| scope.set_tag("instance_uid", uid));
    reconcile.bind_hub(hub)
}

/// The step named in reports when the planner refuses to act (the instance is `Failed` without
/// a failed step, e.g. an app name owned by someone else).
pub const BLOCKED_STEP: &str = "Plan";

/// A failure worth reporting: where the reconcile stopped and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The failed step ([`BLOCKED_STEP`] when the planner refused to act).
    pub step: &'a str,
    /// Machine-readable class, as in `lastError.reason` or the `Ready` condition.
    pub reason: Reason,
    /// What went wrong, as shown in the status.
    pub message: &'a str,
    /// Consecutive failed attempts, this one included (1 when blocked).
    pub attempt: i32,
}

/// What of a reconcile's outcome is worth a report: a failed step that is new or differs in
/// step, reason or message from the previous status's, or else the instance newly `Failed` (or
/// failed for a new reason) without a failed step. `None` for a retry that failed the same way.
pub fn failure_to_report<'a>(
    previous: &InstanceStatus,
    status: &'a InstanceStatus,
) -> Option<Failure<'a>> {
    if let Some(e) = &status.last_error {
        let repeated = previous
            .last_error
            .as_ref()
            .is_some_and(|p| (&p.step, &p.reason, &p.message) == (&e.step, &e.reason, &e.message));
        return (!repeated).then_some(Failure {
            step: &e.step,
            reason: e.reason,
            message: &e.message,
            attempt: e.attempt,
        });
    }
    if status.phase != Phase::Failed {
        return None;
    }
    let now = ready_condition(status)?;
    let same_reason = previous.phase == Phase::Failed
        && ready_condition(previous).is_some_and(|before| before.reason == now.reason);
    (!same_reason).then_some(Failure {
        step: BLOCKED_STEP,
        reason: now.reason,
        message: &now.message,
        attempt: 1,
    })
}

fn ready_condition(status: &InstanceStatus) -> Option<&openclaws_model::Condition> {
    status.condition(ConditionType::Ready)
}

/// Reports what [`failure_to_report`] finds in a reconcile's outcome (the engine calls it with
/// every status it records), so a failure is reported when it appears or changes, not on every
/// retry.
pub fn report_reconcile_outcome(
    uid: Uuid,
    instance: &str,
    previous: &InstanceStatus,
    status: &InstanceStatus,
) {
    if let Some(failure) = failure_to_report(previous, status) {
        report_failure(uid, instance, &failure);
    }
}

/// Reports one failure: a warning in the log, and to Sentry one issue per instance and step,
/// tagged with the uid, the step and the reason.
pub fn report_failure(uid: Uuid, instance: &str, failure: &Failure<'_>) {
    tracing::warn!(
        step = failure.step,
        reason = failure.reason.as_str(),
        error = failure.message,
        attempt = failure.attempt,
        "reconcile failed"
    );
    let uid = uid.to_string();
    let event = Event {
        level: Level::Error,
        logger: Some("reconcile".to_owned()),
        transaction: Some(format!("reconcile {}", failure.step)),
        exception: vec![Exception {
            ty: failure.reason.as_str().to_owned(),
            value: Some(format!("{} failed: {}", failure.step, failure.message)),
            ..Default::default()
        }]
        .into(),
        fingerprint: Cow::Owned(vec![
            "reconcile".into(),
            uid.clone().into(),
            failure.step.to_owned().into(),
        ]),
        tags: BTreeMap::from([
            ("instance_uid".to_owned(), uid),
            ("step".to_owned(), failure.step.to_owned()),
            ("reason".to_owned(), failure.reason.as_str().to_owned()),
        ]),
        extra: BTreeMap::from([
            ("instance".to_owned(), Value::from(instance)),
            ("attempt".to_owned(), Value::from(failure.attempt)),
        ]),
        ..Default::default()
    };
    sentry::capture_event(event);
}

/// Reports a reconcile that stopped before it could record anything (the database, stored
/// secrets): grouped by `kind` rather than by instance, since such failures are rarely one
/// instance's own (a database outage would otherwise open an issue per instance).
pub fn sentry_report_reconcile_error(uid: Uuid, kind: &str, error: &dyn std::error::Error) {
    let mut event = sentry::event_from_error(error);
    event.level = Level::Error;
    event.logger = Some("reconcile".to_owned());
    event.fingerprint = Cow::Owned(vec!["reconcile-error".into(), kind.to_owned().into()]);
    event
        .tags
        .insert("instance_uid".to_owned(), uid.to_string());
    event.tags.insert("reason".to_owned(), kind.to_owned());
    sentry::capture_event(event);
}

/// Scrubs a JSON tree in place: values under sensitive keys, and credential-looking text.
fn scrub_value(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = scrub_text(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_sensitive_key(key) && !v.is_null() {
                    *v = Value::String(FILTERED.to_owned());
                } else {
                    scrub_value(v);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The event as it may leave the process: the whole event (request data and headers, tags,
/// extra, contexts, breadcrumbs, exceptions, frames) walked as JSON. An event that cannot be
/// rebuilt after scrubbing is replaced by a bare one keeping only its grouping and tags' names.
pub fn scrub_event(event: Event<'static>) -> Event<'static> {
    let fallback = Event {
        event_id: event.event_id,
        level: event.level,
        fingerprint: event.fingerprint.clone(),
        message: Some("event withheld: it could not be scrubbed".to_owned()),
        ..Default::default()
    };
    let Ok(mut tree) = serde_json::to_value(&event) else {
        return fallback;
    };
    if let Some(request) = tree.get_mut("request").and_then(Value::as_object_mut) {
        request.remove("cookies");
        request.remove("env");
    }
    scrub_value(&mut tree);
    serde_json::from_value(tree).unwrap_or(fallback)
}

/// A breadcrumb as it may be kept: its message and data scrubbed like an event's.
pub fn scrub_breadcrumb(mut crumb: Breadcrumb) -> Breadcrumb {
    if let Some(message) = crumb.message.as_mut() {
        if let Cow::Owned(clean) = scrub_text(message) {
            *message = clean;
        }
    }
    let mut data = Value::Object(std::mem::take(&mut crumb.data).into_iter().collect());
    scrub_value(&mut data);
    if let Value::Object(map) = data {
        crumb.data = map.into_iter().collect();
    }
    crumb
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry::protocol::{Context, Request};

    const ANTHROPIC: &str = "sk-ant-CANARY-0123456789abcdef0123456789abcdef";
    const OPENAI: &str = "sk-proj-Abc123Def456Ghi789";
    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX2hlcmU";
    const GATEWAY_TOKEN: &str = "q3V9x_Lr2KfA8mZ0Tb-Yw7NcE4hJ6uPsD1gQoRiXk5M";

    #[test]
    fn credential_shaped_text_is_replaced() {
        for secret in [
            ANTHROPIC,
            OPENAI,
            JWT,
            GATEWAY_TOKEN,
            "ak_COMPOSIO-CANARY-abc123",
            "fm2_lJPECAAAAAAAAMx9Yw==",
        ] {
            let text = format!("setting secrets failed: value {secret} rejected");
            let clean = scrub_text(&text);
            assert!(!clean.contains(secret), "{clean}");
            assert!(clean.contains(FILTERED), "{clean}");
        }
        assert_eq!(
            scrub_text("Authorization: Bearer abc.def-ghi"),
            "Authorization: [Filtered]"
        );
        assert_eq!(
            scrub_text("got Bearer abc.def-ghi back"),
            "got Bearer [Filtered] back"
        );
        assert_eq!(scrub_text("FlyV1 fm2_abc,fm2_def"), "FlyV1 [Filtered]");
        assert_eq!(
            scrub_text("GET /x?token=abc123&limit=5"),
            "GET /x?token=[Filtered]&limit=5"
        );
        assert_eq!(
            scrub_text(r#"{"api_key": "plain"}"#),
            r#"{"api_key": "[Filtered]"}"#
        );
    }

    #[test]
    fn ordinary_text_is_kept() {
        for text in [
            "CreateApp was rejected by Fly: app name oc-elsewhere is taken",
            "instance 0194f4a2-7c1e-7b3a-9d2e-5f6a7b8c9d0e machine 3d8d9e1f2a7b48",
            "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "the desk-top task-runner and openclaws_controller::reconcile::Reconciler",
            "basic",
        ] {
            assert_eq!(scrub_text(text), text);
        }
    }

    #[test]
    fn sensitive_keys_are_recognised_in_any_spelling() {
        for key in [
            "Authorization",
            "x-api-key",
            "ANTHROPIC_API_KEY",
            "OPENCLAW_GATEWAY_TOKEN",
            "Cookie",
            "set-cookie",
            "client_secret",
            "Proxy-Authorization",
        ] {
            assert!(is_sensitive_key(key), "{key}");
        }
        for key in [
            "instance_uid",
            "step",
            "reason",
            "attempt",
            "content-type",
            "x-request-id",
        ] {
            assert!(!is_sensitive_key(key), "{key}");
        }
    }

    fn everything_event() -> Event<'static> {
        let mut event = sentry::event_from_error(&std::io::Error::other(format!(
            "SetSecrets failed: ANTHROPIC_API_KEY={ANTHROPIC}"
        )));
        event.fingerprint = Cow::Owned(vec!["reconcile".into(), "u".into(), "SetSecrets".into()]);
        event.exception.values[0].stacktrace =
            sentry::integrations::backtrace::current_stacktrace();
        event.message = Some(format!("Bearer {GATEWAY_TOKEN}"));
        event.tags.insert("step".into(), "SetSecrets".into());
        event.tags.insert("token".into(), "plain-tag".into());
        event.extra.insert(
            "nested".into(),
            serde_json::json!({"headers": {"Authorization": "Basic dXNlcjpwYXNz"},
                               "list": [JWT, "fine"], "count": 3}),
        );
        event.request = Some(Request {
            url: format!("https://x.test/v1?api_key={OPENAI}").parse().ok(),
            method: Some("GET".into()),
            data: Some(format!(r#"{{"anthropicApiKey":"{ANTHROPIC}"}}"#)),
            query_string: Some("token=abc".into()),
            cookies: Some("session=abc".into()),
            headers: BTreeMap::from([
                ("Authorization".into(), format!("Bearer {GATEWAY_TOKEN}")),
                ("x-request-id".into(), "req-1".into()),
            ]),
            env: BTreeMap::from([("REMOTE_ADDR".into(), "10.0.0.1".into())]),
        });
        event.contexts.insert(
            "gateway".into(),
            Context::Other(BTreeMap::from([(
                "password".into(),
                Value::from("hunter2"),
            )])),
        );
        event.breadcrumbs = vec![Breadcrumb {
            message: Some(format!("sent {ANTHROPIC}")),
            data: BTreeMap::from([("cookie".into(), Value::from("c=1"))]),
            ..Default::default()
        }]
        .into();
        event
    }

    #[test]
    fn a_whole_event_leaves_without_credentials_and_keeps_its_grouping() {
        let event = scrub_event(everything_event());
        let text = serde_json::to_string(&event).unwrap();
        for secret in [
            ANTHROPIC,
            OPENAI,
            JWT,
            GATEWAY_TOKEN,
            "dXNlcjpwYXNz",
            "hunter2",
            "plain-tag",
            "session=abc",
            "c=1",
            "10.0.0.1",
        ] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        assert_eq!(
            event.fingerprint.as_ref(),
            &[
                "reconcile".to_owned(),
                "u".to_owned(),
                "SetSecrets".to_owned()
            ][..]
        );
        assert_eq!(event.tags["step"], "SetSecrets");
        assert_eq!(event.tags["token"], FILTERED);
        let request = event.request.as_ref().unwrap();
        assert_eq!(request.headers["Authorization"], FILTERED);
        assert_eq!(request.headers["x-request-id"], "req-1");
        assert_eq!(event.extra["nested"]["count"], 3);
        assert_eq!(event.extra["nested"]["list"][1], "fine");
        assert_eq!(event.exception.values.len(), 1, "{text}");
        let frames = &event.exception.values[0]
            .stacktrace
            .as_ref()
            .unwrap()
            .frames;
        assert!(!frames.is_empty(), "the stack trace survives");
        assert!(event.contexts.contains_key("gateway"), "{text}");
        assert!(event.breadcrumbs.values[0].data.contains_key("cookie"));
    }

    fn failed_step(step: &str, reason: &str, message: &str, attempt: i32) -> InstanceStatus {
        InstanceStatus {
            phase: Phase::Provisioning,
            last_error: Some(openclaws_model::LastError {
                step: step.into(),
                reason: Reason::parse(reason),
                message: message.into(),
                time: chrono::Utc::now(),
                attempt,
            }),
            ..Default::default()
        }
    }

    fn blocked(reason: &str, message: &str) -> InstanceStatus {
        InstanceStatus {
            phase: Phase::Failed,
            conditions: vec![openclaws_model::Condition {
                type_: ConditionType::Ready,
                status: openclaws_model::ConditionStatus::False,
                reason: Reason::parse(reason),
                message: message.into(),
                last_transition_time: chrono::Utc::now(),
                observed_generation: 1,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_failure_is_reported_when_it_appears_or_changes_not_on_every_retry() {
        let fresh = InstanceStatus::default();
        let first = failed_step("SetSecrets", "FlyTransient", "503", 1);
        let found = failure_to_report(&fresh, &first).unwrap();
        assert_eq!(
            found,
            Failure {
                step: "SetSecrets",
                reason: Reason::FlyTransient,
                message: "503",
                attempt: 1
            }
        );
        let retry = failed_step("SetSecrets", "FlyTransient", "503", 2);
        assert_eq!(failure_to_report(&first, &retry), None);
        for changed in [
            failed_step("SetSecrets", "FlyTransient", "502", 3),
            failed_step("SetSecrets", "FlyRateLimited", "503", 3),
            failed_step("CreateVolume", "FlyTransient", "503", 3),
        ] {
            assert!(failure_to_report(&retry, &changed).is_some(), "{changed:?}");
        }
        assert_eq!(failure_to_report(&first, &fresh), None, "a success");
    }

    #[test]
    fn a_blocked_instance_is_reported_on_entering_failed_and_on_a_new_reason() {
        let fresh = InstanceStatus::default();
        let taken = blocked("AppNameTaken", "app oc-x cannot be used");
        let found = failure_to_report(&fresh, &taken).unwrap();
        assert_eq!(
            (found.step, found.reason.as_str()),
            (BLOCKED_STEP, "AppNameTaken")
        );
        assert_eq!(found.message, "app oc-x cannot be used");
        assert_eq!(
            failure_to_report(&taken, &blocked("AppNameTaken", "worded differently")),
            None
        );
        assert!(failure_to_report(&taken, &blocked("RegionChangeUnsupported", "m")).is_some());
        // A terminal step failure is reported as that step.
        let mut rejected = failed_step("CreateApp", "AppNameTaken", "rejected", 1);
        rejected.phase = Phase::Failed;
        assert_eq!(
            failure_to_report(&fresh, &rejected).unwrap().step,
            "CreateApp"
        );
    }

    #[test]
    fn breadcrumbs_are_scrubbed_on_their_way_in() {
        let crumb = scrub_breadcrumb(Breadcrumb {
            message: Some(format!("key {ANTHROPIC}")),
            data: BTreeMap::from([
                ("authorization".into(), Value::from("Bearer x")),
                ("status".into(), Value::from(503)),
            ]),
            ..Default::default()
        });
        assert_eq!(crumb.message.as_deref(), Some("key [Filtered]"));
        assert_eq!(crumb.data["authorization"], FILTERED);
        assert_eq!(crumb.data["status"], 503);
    }
}
