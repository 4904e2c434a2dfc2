//! The support console: server-rendered pages under `/support` for the people who answer "why
//! is my agent not working?". It reads what the API reads (instances, conditions, events, the
//! work queue) and offers the writer's two support actions, "Reconcile now" and approving a
//! pending pairing request, through the same code paths as the API.
//!
//! It sits outside the bearer-token middleware with its own sign-in: the reader or writer token
//! is entered once and exchanged for a signed session cookie ([`session`]); actions are POST
//! forms with a CSRF token bound to that session. A client mistake (a wrong token, a stale
//! form, an unknown instance, a malformed request) gets an HTML page with a 4xx status that says
//! what to do, never a 500.

pub mod releases;
pub mod session;
pub mod views;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::Utc;
use maud::Markup;
use openclaws_model::conditions::ConditionType;
use serde::Deserialize;
use std::sync::Arc;

use super::auth::role_of;
use super::edge::{ClientAddr, Credential, Edge};
use super::error::ApiError;
use super::validate::valid_name;
use super::watch::filter::Filter;
use super::watch::options::{self, RawWatch};
use super::watch::stream::EVENT_STREAM;
use super::ApiState;
use openclaws_model::{ChannelPairingVerdict, Phase};
use openclaws_store::events::{self, EventFilter};
use openclaws_store::{changes, instances, work};
use session::Session;
use views::{Flash, FleetRow, FleetView, InstanceView, Viewer};

/// Instances per page of the fleet list.
pub const PAGE_SIZE: i64 = 100;
/// Events shown on an instance page (the newest).
pub const EVENTS_SHOWN: i64 = 200;

/// The console's routes, to be nested under `/support`.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/instances", get(fleet))
        .route("/instances/{name}", get(instance))
        .route("/instances/{name}/reconcile", post(reconcile))
        .route("/instances/{name}/pairing/approvals", post(approve))
        .route(
            "/instances/{name}/channels/{channel}/pairing/approvals",
            post(approve_dm),
        )
        .route(
            "/instances/{name}/channels/{channel}/pairing/dismissals",
            post(dismiss_dm),
        )
        .route("/webhooks", get(webhooks))
        .route("/releases", get(releases::list))
        .route("/releases/{name}", get(releases::detail))
        .route("/watch", get(watch))
        .route("/live.js", get(live_js))
        .fallback(unknown_page)
        .method_not_allowed_fallback(method_not_allowed)
}

/// `/support/` (the nested routes match `/support` and `/support/…` only): to `/support`.
pub async fn trailing_slash() -> Response {
    see_other("/support")
}

/// What a console request can fail with; each renders as a page with a 4xx status, except a
/// genuine server failure inside [`SupportError::Api`].
#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    /// An action without a valid session (401: the sign-in page).
    #[error("Your session has ended or is not valid: sign in again.")]
    SignedOut,
    /// An action in a reader's session (403).
    #[error("This session is read-only: sign in with the writer token to act.")]
    ReadOnly,
    /// A form without this session's CSRF token (403).
    #[error("This form is stale or was not made by this console: reload the page and try again.")]
    Csrf,
    /// A request the console cannot read (400); the message says what to do.
    #[error("{0}")]
    BadRequest(String),
    /// No such instance or page (404).
    #[error("{0}")]
    NotFound(String),
    /// What the shared API code path answered (its status; 500 only for server failures).
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<openclaws_store::StoreError> for SupportError {
    fn from(e: openclaws_store::StoreError) -> Self {
        SupportError::Api(e.into())
    }
}

impl SupportError {
    fn status(&self) -> StatusCode {
        match self {
            SupportError::SignedOut => StatusCode::UNAUTHORIZED,
            SupportError::ReadOnly | SupportError::Csrf => StatusCode::FORBIDDEN,
            SupportError::BadRequest(_) => StatusCode::BAD_REQUEST,
            SupportError::NotFound(_) => StatusCode::NOT_FOUND,
            SupportError::Api(e) => e.status(),
        }
    }
}

impl IntoResponse for SupportError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let SupportError::SignedOut = self {
            return page(status, views::login_page(Some(&self.to_string()), None));
        }
        let message = match &self {
            SupportError::Api(ApiError::Internal(detail)) => {
                tracing::error!(error = %detail, "support console request failed");
                "Something went wrong on the server; the server log has the details.".to_owned()
            }
            other => other.to_string(),
        };
        let title = match status.as_u16() {
            403 => "Not allowed",
            404 => "Not found",
            409 => "Cannot do that now",
            422 => "Not accepted",
            s if s >= 500 => "Server error",
            _ => "Bad request",
        };
        page(status, views::error_page(None, title, &message))
    }
}

/// An HTML page with the headers every console page gets: never cached, no framing, scripts
/// and connections only from this origin (the live pages' script), forms only to this origin.
fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
             script-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// 303 to a path of this console.
fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let value = HeaderValue::from_str(location)
        .unwrap_or_else(|_| HeaderValue::from_static("/support/instances"));
    response.headers_mut().insert(header::LOCATION, value);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A sign-in's `next`, if it is a console path: never another site, never a path outside
/// `/support/`.
fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with("/support/")
        && !next.contains("//")
        && !next.contains("..")
        && next.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'-' | b'_' | b'.' | b'?' | b'=' | b'&' | b'%' | b'+'
                )
        });
    ok.then_some(next)
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn session(state: &ApiState, headers: &HeaderMap) -> Result<Session, session::SessionError> {
    Session::from_headers(&state.cipher, &state.tokens, headers, Utc::now())
}

fn viewer(state: &ApiState, session: &Session) -> Viewer {
    Viewer {
        role: session.role,
        csrf: session.csrf_token(&state.cipher),
    }
}

/// The viewer of a page, or the sign-in page to redirect to (which comes back here).
fn page_viewer(state: &ApiState, headers: &HeaderMap, uri: &OriginalUri) -> Result<Viewer, String> {
    match session(state, headers) {
        Ok(s) => Ok(viewer(state, &s)),
        Err(_) => {
            let back = uri
                .0
                .path_and_query()
                .map(|p| p.as_str())
                .and_then(safe_next)
                .map(|p| format!("/support/login?next={}", percent_encode(p)))
                .unwrap_or_else(|| "/support/login".to_owned());
            Err(back)
        }
    }
}

/// The session of an action: signed in, as the writer, with this session's CSRF token.
fn acting_session(
    state: &ApiState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Session, SupportError> {
    let session = session(state, headers).map_err(|_| SupportError::SignedOut)?;
    if !session.can_act() {
        return Err(SupportError::ReadOnly);
    }
    if !session.csrf_matches(&state.cipher, csrf) {
        return Err(SupportError::Csrf);
    }
    Ok(session)
}

fn form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, SupportError> {
    form.map(|Form(f)| f).map_err(|_| {
        SupportError::BadRequest(
            "The form could not be read; reload the page and try again.".to_owned(),
        )
    })
}

async fn home(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    match session(&state, &headers) {
        Ok(_) => see_other("/support/instances"),
        Err(_) => see_other("/support/login"),
    }
}

/// Query of the sign-in page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// The console page to return to after signing in.
    #[serde(default)]
    pub next: Option<String>,
}

async fn login_form(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let next = query.ok().and_then(|Query(q)| q.next);
    let next = next.as_deref().and_then(safe_next);
    if session(&state, &headers).is_ok() {
        return see_other(next.unwrap_or("/support/instances"));
    }
    page(StatusCode::OK, views::login_page(None, next))
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    /// The API reader or writer token.
    #[serde(default)]
    pub token: String,
    /// Where to go afterwards.
    #[serde(default)]
    pub next: Option<String>,
}

async fn login(
    State(state): State<ApiState>,
    Extension(edge): Extension<Arc<Edge>>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if let Err(seconds) = edge.admit_credential(client, Credential::SignIn) {
        return too_many_sign_ins(seconds);
    }
    let Ok(Form(body)) = body else {
        return page(
            StatusCode::BAD_REQUEST,
            views::login_page(Some("The sign-in form could not be read; try again."), None),
        );
    };
    let next = body.next.as_deref().and_then(safe_next);
    let token = body.token.trim();
    if token.is_empty() {
        return page(
            StatusCode::UNAUTHORIZED,
            views::login_page(Some("Enter the API reader or writer token."), next),
        );
    }
    let Some(role) = role_of(&state.tokens, token) else {
        tracing::warn!("support console: sign-in with an unknown token refused");
        if let Err(seconds) = edge.credential_failed(client, Credential::SignIn) {
            return too_many_sign_ins(seconds);
        }
        return page(
            StatusCode::UNAUTHORIZED,
            views::login_page(
                Some(
                    "That token is not valid here. Use the API reader token (read-only) or the \
                     writer token of this controller.",
                ),
                next,
            ),
        );
    };
    let (_, value) = Session::issue(&state.cipher, &state.tokens, role, Utc::now());
    tracing::info!(?role, "support console: signed in");
    let secure = !session::plain_http_on_loopback(&headers);
    let mut response = see_other(next.unwrap_or("/support/instances"));
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(Some(&value), secure),
    );
    response
}

/// 429 with `Retry-After`: too many failed sign-ins from this address; the token was not checked.
fn too_many_sign_ins(seconds: u64) -> Response {
    let message = format!(
        "Too many failed sign-ins from your address. Wait {seconds} s, then sign in with the API \
         reader or writer token."
    );
    let mut response = page(
        StatusCode::TOO_MANY_REQUESTS,
        views::login_page(Some(&message), None),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, super::edge::retry_after(seconds));
    response
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

async fn logout(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, SupportError> {
    let body = form(body)?;
    if let Ok(s) = session(&state, &headers) {
        if !s.csrf_matches(&state.cipher, &body.csrf) {
            return Err(SupportError::Csrf);
        }
    }
    let secure = !session::plain_http_on_loopback(&headers);
    let mut response = see_other("/support/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(None, secure));
    Ok(response)
}

/// Filters of the fleet list.
#[derive(Debug, Default, Deserialize)]
pub struct FleetQuery {
    /// A phase name; empty for any.
    #[serde(default)]
    pub phase: Option<String>,
    /// A customer id (exact) or the start of an instance name.
    #[serde(default)]
    pub q: Option<String>,
    /// Show names after this one (the next page).
    #[serde(default)]
    pub after: Option<String>,
}

/// The registered webhooks with their pending and failed counts.
async fn webhooks(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Result<Response, SupportError> {
    let viewer = match page_viewer(&state, &headers, &uri) {
        Ok(v) => v,
        Err(login) => return Ok(see_other(&login)),
    };
    let mut conn = state.db().await?;
    let rows = openclaws_store::webhooks::list(&mut conn).await?;
    let lines: Vec<views::WebhookLine> = rows
        .into_iter()
        .map(|w| views::WebhookLine {
            origin: origin(&w.url),
            description: w.description,
            event_types: w.event_types,
            label_selector: w.label_selector,
            pending: w.pending,
            failed: w.failed,
            created_at: w.created_at,
        })
        .collect();
    Ok(page(StatusCode::OK, views::webhooks_page(&viewer, &lines)))
}

/// `scheme://host[:port]` of a URL (what the console shows of an endpoint).
fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "(unreadable URL)".to_owned())
}

async fn fleet(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: OriginalUri,
    query: Result<Query<FleetQuery>, QueryRejection>,
) -> Result<Response, SupportError> {
    let viewer = match page_viewer(&state, &headers, &uri) {
        Ok(v) => v,
        Err(login) => return Ok(see_other(&login)),
    };
    let Query(query) =
        query.map_err(|_| SupportError::BadRequest("The filters could not be read.".to_owned()))?;
    let phase = match query.phase.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => Some(Phase::parse(p).ok_or_else(|| {
            let all: Vec<_> = Phase::ALL.iter().map(|p| p.as_str()).collect();
            SupportError::BadRequest(format!("Unknown phase; choose one of {}.", all.join(", ")))
        })?),
    };
    let search = query.q.as_deref().unwrap_or_default().trim().to_owned();
    if search.chars().count() > 128 || search.chars().any(char::is_control) {
        return Err(SupportError::BadRequest(
            "Search for a customer id or the start of a name (at most 128 printable characters)."
                .to_owned(),
        ));
    }
    let after = query.after.filter(|a| valid_name(a));
    let mut conn = state.db().await?;
    let version = changes::list_version(&mut conn).await?;
    let mut records = instances::list(
        &mut conn,
        &instances::ListFilter {
            customer_id: None,
            phase: phase.map(|p| p.as_str().to_owned()),
            search: (!search.is_empty()).then(|| search.clone()),
            after_name: after.clone(),
            limit: PAGE_SIZE + 1,
            ..Default::default()
        },
    )
    .await?;
    let openclaw_versions = openclaws_store::stats::openclaw_versions(&mut conn).await?;
    let more = records.len() as i64 > PAGE_SIZE;
    records.truncate(PAGE_SIZE as usize);
    let rows = records
        .iter()
        .map(|r| {
            let status = r.status();
            let ready_reason = match &status {
                Ok(s) => s
                    .condition(ConditionType::Ready)
                    .map(|c| c.reason.as_str().to_owned()),
                Err(_) => Some("(status unreadable)".to_owned()),
            };
            FleetRow {
                name: r.name.clone(),
                customer_id: r.customer_id.clone(),
                phase: r.phase.clone(),
                ready_reason,
                machine_state: status
                    .ok()
                    .and_then(|s| s.fly)
                    .and_then(|f| f.machine_state),
                created_at: r.created_at,
                deleting: r.deletion_timestamp.is_some(),
            }
        })
        .collect::<Vec<_>>();
    let view = FleetView {
        phase,
        search,
        next_after: if more {
            rows.last().map(|r| r.name.clone())
        } else {
            None
        },
        rows,
        paged: after.is_some(),
        now: Utc::now(),
        version,
        openclaw_versions,
    };
    Ok(page(StatusCode::OK, views::fleet_page(&viewer, &view)))
}

/// Query of the instance page.
#[derive(Debug, Default, Deserialize)]
pub struct InstanceQuery {
    /// What the action that led here did ([`Flash`]).
    #[serde(default)]
    pub done: Option<String>,
}

async fn instance(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: OriginalUri,
    Path(name): Path<String>,
    query: Result<Query<InstanceQuery>, QueryRejection>,
) -> Result<Response, SupportError> {
    let viewer = match page_viewer(&state, &headers, &uri) {
        Ok(v) => v,
        Err(login) => return Ok(see_other(&login)),
    };
    let flash = query
        .ok()
        .and_then(|Query(q)| q.done)
        .and_then(|d| Flash::parse(&d));
    if !valid_name(&name) {
        return Err(SupportError::NotFound(
            "No instance has that name (names are 3-40 characters: a-z, 0-9 and -).".to_owned(),
        ));
    }
    let mut conn = state.db().await?;
    let version = changes::list_version(&mut conn).await?;
    let mut events = events::list_by_name(
        &mut conn,
        &name,
        &EventFilter {
            type_: None,
            since: None,
            limit: EVENTS_SHOWN,
            through_id: None,
        },
    )
    .await?;
    events.reverse();
    let now = Utc::now();
    let Some(record) = instances::get(&mut conn, &name).await? else {
        if events.is_empty() {
            return Err(SupportError::NotFound(format!(
                "There is no instance named {name}, and none ever had that name."
            )));
        }
        return Ok(page(
            StatusCode::OK,
            views::history_page(&viewer, &name, &events, now),
        ));
    };
    let schedule = work::schedule(&mut conn, record.uid).await?;
    // The same preview as `GET /v1/instances/{name}/plan`: pure, from the last recorded world.
    let preview = openclaws_engine::reconcile::preview::preview(
        &mut conn,
        &state.cipher,
        &state.inputs,
        &record,
        now,
    );
    let plan = match tokio::time::timeout(super::PREVIEW_DEADLINE, preview).await {
        Ok(Ok(preview)) => serde_json::to_value(super::plan::PlanPreview::new(
            &record.name,
            record.generation,
            preview,
        ))
        .ok(),
        Ok(Err(e)) => {
            tracing::warn!(instance = %record.name, error = %e, "plan preview failed");
            None
        }
        Err(_) => {
            tracing::warn!(instance = %record.name, "plan preview timed out");
            None
        }
    };
    let view = InstanceView {
        instance: super::write::to_resource(&state, &record)?,
        events,
        schedule,
        plan,
        flash,
        now,
        version,
    };
    Ok(page(StatusCode::OK, views::instance_page(&viewer, &view)))
}

fn back_to(name: &str, flash: Flash) -> Response {
    see_other(&format!(
        "/support/instances/{name}?done={}",
        flash.as_str()
    ))
}

async fn reconcile(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, SupportError> {
    let csrf = body.as_ref().map(|f| f.csrf.clone()).unwrap_or_default();
    let session = acting_session(&state, &headers, &csrf)?;
    form(body)?;
    if !valid_name(&name) {
        return Err(SupportError::NotFound(format!(
            "There is no instance named {name}."
        )));
    }
    super::write::request_reconcile(&state, &name, &session.actor()).await?;
    Ok(back_to(&name, Flash::ReconcileRequested))
}

/// The "Approve" form of one pending request.
#[derive(Deserialize)]
pub struct ApproveForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// The pending request to approve.
    #[serde(default)]
    pub request_id: String,
}

async fn approve(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Form<ApproveForm>, FormRejection>,
) -> Result<Response, SupportError> {
    let csrf = body.as_ref().map(|f| f.csrf.clone()).unwrap_or_default();
    let session = acting_session(&state, &headers, &csrf)?;
    let body = form(body)?;
    if !valid_name(&name) {
        return Err(SupportError::NotFound(format!(
            "There is no instance named {name}."
        )));
    }
    let actor = session.actor();
    let answer = super::gateway::approve(&state, &name, Some(body.request_id), &actor).await?;
    let flash = if answer.outcome.is_some() {
        Flash::Approved
    } else {
        Flash::ApprovalRecorded
    };
    Ok(back_to(&name, flash))
}

async fn approve_dm(
    state: State<ApiState>,
    headers: HeaderMap,
    path: Path<(String, String)>,
    body: Result<Form<ApproveForm>, FormRejection>,
) -> Result<Response, SupportError> {
    decide_dm(state, headers, path, body, ChannelPairingVerdict::Approve).await
}

async fn dismiss_dm(
    state: State<ApiState>,
    headers: HeaderMap,
    path: Path<(String, String)>,
    body: Result<Form<ApproveForm>, FormRejection>,
) -> Result<Response, SupportError> {
    decide_dm(state, headers, path, body, ChannelPairingVerdict::Dismiss).await
}

/// The console's Approve and Dismiss buttons for a stranger's DM request: the API's own path
/// (`channel_pairing::decide`), so the answers are the same.
async fn decide_dm(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((name, channel)): Path<(String, String)>,
    body: Result<Form<ApproveForm>, FormRejection>,
    verdict: ChannelPairingVerdict,
) -> Result<Response, SupportError> {
    let csrf = body.as_ref().map(|f| f.csrf.clone()).unwrap_or_default();
    let session = acting_session(&state, &headers, &csrf)?;
    let body = form(body)?;
    if !valid_name(&name) {
        return Err(SupportError::NotFound(format!(
            "There is no instance named {name}."
        )));
    }
    let asked = super::channel_pairing::Asked {
        channel: &channel,
        request_id: &body.request_id,
        notify: verdict == ChannelPairingVerdict::Approve,
        verdict,
    };
    let answer = super::channel_pairing::decide(&state, &name, &asked, &session.actor()).await?;
    let flash = match (answer.outcome.is_some(), verdict) {
        (false, _) => Flash::DecisionRecorded,
        (true, ChannelPairingVerdict::Approve) => Flash::DmApproved,
        (true, ChannelPairingVerdict::Dismiss) => Flash::DmDismissed,
    };
    Ok(back_to(&name, flash))
}

async fn unknown_page() -> SupportError {
    SupportError::NotFound("There is no such page in the support console.".to_owned())
}

async fn method_not_allowed() -> Response {
    let mut response = SupportError::BadRequest(
        "This page does not take that kind of request; go back and use the page's links and buttons."
            .to_owned(),
    )
    .into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(
            safe_next("/support/instances/ada"),
            Some("/support/instances/ada")
        );
        assert_eq!(
            safe_next("/support/instances?phase=Ready&q=c-1"),
            Some("/support/instances?phase=Ready&q=c-1")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/support/",
            "/support//evil",
            "/v1/instances",
            "/support/../v1",
            "/support/x\r\nSet-Cookie: a=b",
            "/support/<script>",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }
}

/// Query of the console's watch.
#[derive(Debug, Default, Deserialize)]
pub struct WatchQuery {
    /// Only this instance (the instance page); the whole fleet otherwise.
    #[serde(default)]
    pub name: Option<String>,
    /// The version the page was rendered at.
    #[serde(default, rename = "resourceVersion")]
    pub resource_version: Option<String>,
}

/// The live pages' watch: Server-Sent Events of the instances (or one instance) for a signed-in
/// session, the same stream as `GET /v1/instances?watch=true` (a browser's `EventSource` cannot
/// send a bearer token). A signed-out request gets 401, which stops the `EventSource`.
async fn watch(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<WatchQuery>, QueryRejection>,
) -> Response {
    if session(&state, &headers).is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(Query(query)) = query else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let filter = match query.name {
        Some(name) if valid_name(&name) => Filter::named(name),
        Some(_) => return StatusCode::BAD_REQUEST.into_response(),
        None => Filter::default(),
    };
    let mut errors = Vec::new();
    let raw = RawWatch {
        resource_version: query.resource_version.as_deref(),
        ..RawWatch::default()
    };
    let mut sse = headers.clone();
    sse.insert(header::ACCEPT, HeaderValue::from_static(EVENT_STREAM));
    let options = options::parse(raw, &sse, state.watch.settings(), &mut errors);
    if !errors.is_empty() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match super::watch::instances::respond(&state, filter, options).await {
        Ok(response) => response,
        Err(e) => e.status().into_response(),
    }
}

/// The live pages' script.
async fn live_js() -> Response {
    let mut response = views::LIVE_JS.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
