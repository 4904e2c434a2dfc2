//! The console's HTML, rendered with `maud`: every interpolated value is escaped, so text from
//! the database (customer ids, condition messages, device names, event messages) can never
//! become markup. Pages are plain HTML with inline CSS; actions are POST forms that carry the
//! session's CSRF token. The fleet and instance pages load one small same-origin script
//! ([`LIVE_JS`]) that follows a watch of what they show and re-renders their live part from the
//! server when it changes; without it they work the same, just without updating.
//!
//! Nothing secret is rendered: provider keys appear only as set / fingerprint / updated, and the
//! gateway token is never read here.

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use crate::auth::Role;
use openclaws_model::{
    ChannelState, Condition, ConditionStatus, InstanceSpec, InstanceStatus, OpenClawInstance,
    PairingOutcome, PairingPolicy, PairingStatus, PendingChannelPairing, Phase, SecretRef,
};
use openclaws_store::events::Event;
use openclaws_store::work::Schedule;

const CSS: &str = r#"
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header.top{display:flex;align-items:center;gap:1rem;padding:.6rem 1.5rem;background:#1d2330;color:#fff}
header.top a{color:#fff;text-decoration:none;font-weight:600}
header.top .who{margin-left:auto;font-size:.9rem;opacity:.85}
header.top form{margin:0}
main{max-width:1200px;margin:0 auto;padding:1.2rem 1.5rem 3rem}
h1{font-size:1.5rem;margin:.2rem 0 .8rem}
h2{font-size:1.1rem;margin:1.6rem 0 .5rem;padding-bottom:.2rem;border-bottom:1px solid #d6d9e0}
section{background:#fff;border:1px solid #d6d9e0;border-radius:6px;padding:.2rem 1rem 1rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e4e6eb;vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:#5a6275;background:#fafbfc}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1.2rem;margin:.6rem 0}
dl.facts dt{color:#5a6275}
dl.facts dd{margin:0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
.muted{color:#6b7385}
.when{white-space:nowrap}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.82rem;font-weight:600;background:#e4e6eb;color:#1d2330}
.ok{background:#d9f2e1;color:#175c31}
.bad{background:#fbdcdc;color:#8a1c1c}
.warn{background:#fdf0cf;color:#7a5200}
.off{background:#e4e6eb;color:#404859}
.notice{padding:.6rem .9rem;border-radius:6px;margin:.6rem 0;border:1px solid}
.notice.error{background:#fbdcdc;border-color:#e8a5a5;color:#6e1414}
.notice.info{background:#e3eefc;border-color:#a9c6ef;color:#183f73}
.notice.why{background:#fdf0cf;border-color:#ecd08a;color:#4d3500}
tr.warning td{background:#fff8e6}
form.inline{display:inline;margin:0}
form.filters{display:flex;gap:.6rem;align-items:end;flex-wrap:wrap;margin-bottom:1rem}
label{display:flex;flex-direction:column;font-size:.85rem;color:#5a6275;gap:.2rem}
input[type=text],input[type=password],select{font:inherit;padding:.35rem .5rem;border:1px solid #b9bfcc;border-radius:4px;min-width:14rem;background:#fff}
button{font:inherit;padding:.35rem .9rem;border-radius:4px;border:1px solid #2b5fb4;background:#2f6fd6;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#2b5fb4}
header.top button{background:transparent;border-color:#8d96aa;color:#fff;padding:.2rem .7rem}
.actions{display:flex;gap:.6rem;margin:.6rem 0}
.login{max-width:26rem;margin:4rem auto;background:#fff;border:1px solid #d6d9e0;border-radius:8px;padding:1.5rem}
.login input{width:100%}
a{color:#2b5fb4}
.hidden-char{font-family:ui-monospace,monospace;font-size:.8em;color:#8a1c1c;background:#fbdcdc;border-radius:3px;padding:0 .15em}
"#;

/// Text from the database as shown: HTML-escaped like every value, and with each control or
/// invisible character (zero-width spaces, bidi overrides, ...) spelled out as a marked
/// `⟨U+202E⟩`, so stored text that predates the Unicode policy, or that a gateway reported (a
/// device's name), cannot hide itself or reorder the page around it.
pub(super) struct Shown<'a>(pub(super) &'a str);

impl maud::Render for Shown<'_> {
    fn render(&self) -> Markup {
        html! {
            @for (run, hidden) in openclaws_model::text::runs(self.0) {
                @if hidden {
                    span.hidden-char title="an invisible or control character, shown by its code" { "⟨" (run) "⟩" }
                } @else {
                    (run)
                }
            }
        }
    }
}

/// Who is looking, for the page header and the forms: `None` on the sign-in page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The session's role: actions are shown to writers only.
    pub role: Role,
    /// The session's CSRF token, put into every form.
    pub csrf: String,
}

impl Viewer {
    fn can_act(&self) -> bool {
        self.role == Role::Writer
    }
}

/// The script of live pages: follows the watch named by `main[data-watch]` (Server-Sent
/// Events) and, shortly after a change to something the page shows, fetches the page again and
/// swaps in its `[data-live]` parts. It never inserts event data into the page: only the
/// server's own rendering, parsed as a separate document.
pub const LIVE_JS: &str = include_str!("live.js");

pub(super) fn layout(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    layout_with(title, viewer, None, body)
}

/// A page whose `[data-live]` parts follow the watch at `watch` (a `/support/watch` URL).
fn live_layout(title: &str, viewer: &Viewer, watch: &str, body: Markup) -> Markup {
    layout_with(title, Some(viewer), Some(watch), body)
}

fn layout_with(title: &str, viewer: Option<&Viewer>, watch: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · OpenClaws support" }
                style { (PreEscaped(CSS)) }
                @if watch.is_some() {
                    script src="/support/live.js" defer {}
                }
            }
            body {
                header.top {
                    a href="/support/instances" { "OpenClaws support" }
                    " "
                    a href="/support/webhooks" id="nav-webhooks" { "Webhooks" }
                    " "
                    a href="/support/releases" id="nav-releases" { "Releases" }
                    @if let Some(v) = viewer {
                        span.who {
                            "Signed in: "
                            strong { @if v.can_act() { "writer" } @else { "reader (read-only)" } }
                        }
                        form.inline method="post" action="/support/logout" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main data-watch=[watch] { (body) }
            }
        }
    }
}

/// The sign-in form, with an error when the last attempt failed.
pub fn login_page(error: Option<&str>, next: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            div.login {
                h1 { "Sign in to the support console" }
                p.muted {
                    "Use the API reader token to look, or the writer token to also act "
                    "(reconcile, approve pairing requests). The token is checked once; the "
                    "browser keeps only a signed session cookie."
                }
                @if let Some(e) = error {
                    div.notice.error id="login-error" role="alert" { (e) }
                }
                form method="post" action="/support/login" {
                    label {
                        "Token"
                        input type="password" name="token" id="token" autocomplete="off" autofocus;
                    }
                    @if let Some(n) = next {
                        input type="hidden" name="next" value=(n);
                    }
                    div.actions { button type="submit" id="sign-in" { "Sign in" } }
                }
            }
        },
    )
}

/// A full page for an error the user can do something about (the message says what).
pub fn error_page(viewer: Option<&Viewer>, title: &str, message: &str) -> Markup {
    layout(
        title,
        viewer,
        html! {
            h1 { (title) }
            div.notice.error id="error" role="alert" { (message) }
            p { a href="/support/instances" { "Back to the fleet" } }
        },
    )
}

fn phase_class(phase: &str) -> &'static str {
    match phase {
        "Ready" => "badge ok",
        "Degraded" | "Failed" => "badge bad",
        "Pending" | "Provisioning" => "badge warn",
        _ => "badge off",
    }
}

fn phase_badge(phase: &str) -> Markup {
    html! { span class=(phase_class(phase)) { (phase) } }
}

fn condition_badge(status: ConditionStatus) -> Markup {
    let (class, text) = match status {
        ConditionStatus::True => ("badge ok", "True"),
        ConditionStatus::False => ("badge bad", "False"),
        ConditionStatus::Unknown => ("badge off", "Unknown"),
    };
    html! { span class=(class) { (text) } }
}

/// `2026-11-22 07:14:44 UTC`.
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A short span: `45s`, `3m`, `2h 5m`, `4d 3h`.
fn span(seconds: i64) -> String {
    let s = seconds.abs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `3m ago` or `in 5m`.
fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - t).num_seconds();
    if seconds >= 0 {
        format!("{} ago", span(seconds))
    } else {
        format!("in {}", span(seconds))
    }
}

fn time_cell(t: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        span.when {
            time datetime=(t.to_rfc3339()) { (stamp(t)) }
            " " span.muted { "(" (relative(t, now)) ")" }
        }
    }
}

fn or_dash(value: Option<&str>) -> Markup {
    match value {
        Some(v) if !v.is_empty() => html! { (Shown(v)) },
        _ => html! { span.muted { "—" } },
    }
}

/// Percent-encodes a query-string value.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One row of the fleet list.
#[derive(Debug, Clone)]
pub struct FleetRow {
    /// The instance name (slug).
    pub name: String,
    /// The dashboard's customer id.
    pub customer_id: String,
    /// `status.phase` as stored.
    pub phase: String,
    /// The `Ready` condition's reason, when the controller has written one.
    pub ready_reason: Option<String>,
    /// `status.fly.machineState`.
    pub machine_state: Option<String>,
    /// When the instance was created.
    pub created_at: DateTime<Utc>,
    /// Deletion was requested.
    pub deleting: bool,
}

/// The fleet list: its filters, one page of rows and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct FleetView {
    /// The phase filter, if any.
    pub phase: Option<Phase>,
    /// The search text (customer id or name prefix), as typed.
    pub search: String,
    /// The rows of this page.
    pub rows: Vec<FleetRow>,
    /// The last name of this page when another page follows.
    pub next_after: Option<String>,
    /// Whether this is a later page (a link back to the first is shown).
    pub paged: bool,
    /// The time the page was rendered (ages are relative to it).
    pub now: DateTime<Utc>,
    /// The list's resource version: the page follows the changes after it.
    pub version: i64,
    /// Instances by the OpenClaw version they run, most first (`None`: unknown), over the whole
    /// fleet whatever the filters: what an upgrade has reached at a glance.
    pub openclaw_versions: Vec<(Option<String>, i64)>,
}

/// The whole fleet's OpenClaw versions: "2026.9.6 — 812 instances" per line.
fn versions_table(versions: &[(Option<String>, i64)]) -> Markup {
    html! {
        table id="openclaw-versions" {
            caption { "OpenClaw versions" }
            tbody {
                @for (version, n) in versions {
                    tr data-version=(version.as_deref().unwrap_or("unknown")) {
                        td.mono { (version.as_deref().unwrap_or("unknown")) }
                        td { (n) @if *n == 1 { " instance" } @else { " instances" } }
                    }
                }
            }
        }
    }
}

/// The fleet list page.
pub fn fleet_page(viewer: &Viewer, view: &FleetView) -> Markup {
    let filtered = view.phase.is_some() || !view.search.is_empty();
    let watch = format!("/support/watch?resourceVersion={}", view.version);
    live_layout(
        "Fleet",
        viewer,
        &watch,
        html! {
            h1 { "Fleet" }
            form.filters method="get" action="/support/instances" {
                label {
                    "Phase"
                    select name="phase" id="phase" {
                        option value="" selected[view.phase.is_none()] { "any" }
                        @for p in Phase::ALL {
                            option value=(p.as_str()) selected[view.phase == Some(p)] { (p.as_str()) }
                        }
                    }
                }
                label {
                    "Customer id or name"
                    input type="text" name="q" id="q" value=(view.search)
                        placeholder="c-1234 or ada";
                }
                button type="submit" id="filter" { "Show" }
                @if filtered {
                    a href="/support/instances" { "Clear" }
                }
            }
            div id="fleet-rows" data-live {
            @if !view.openclaw_versions.is_empty() {
                (versions_table(&view.openclaw_versions))
            }
            @if view.rows.is_empty() {
                p.muted id="no-instances" {
                    @if filtered { "No instance matches these filters." }
                    @else { "There are no instances yet." }
                }
            } @else {
                table id="instances" {
                    thead { tr {
                        th { "Name" } th { "Customer" } th { "Phase" } th { "Ready reason" }
                        th { "Machine" } th { "Age" }
                    } }
                    tbody {
                        @for row in &view.rows {
                            tr data-name=(row.name) {
                                td { a.mono href={ "/support/instances/" (row.name) } { (row.name) } }
                                td.mono { (Shown(&row.customer_id)) }
                                td {
                                    (phase_badge(&row.phase))
                                    @if row.deleting && row.phase != "Deleting" { " " span.badge.off { "deleting" } }
                                }
                                td { (or_dash(row.ready_reason.as_deref())) }
                                td { (or_dash(row.machine_state.as_deref())) }
                                td title=(stamp(row.created_at)) { (span((view.now - row.created_at).num_seconds())) }
                            }
                        }
                    }
                }
            }
            div.actions {
                @if view.paged {
                    a href={ "/support/instances?phase=" (view.phase.map(|p| p.as_str()).unwrap_or("")) "&q=" (query_value(&view.search)) } { "First page" }
                }
                @if let Some(after) = &view.next_after {
                    a id="next-page" href={ "/support/instances?phase=" (view.phase.map(|p| p.as_str()).unwrap_or("")) "&q=" (query_value(&view.search)) "&after=" (query_value(after)) } { "Next page" }
                }
            }
            }
        },
    )
}

/// What was just done, shown once after an action's redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flash {
    /// "Reconcile now" was recorded.
    ReconcileRequested,
    /// An approval was recorded; its outcome was not known in time.
    ApprovalRecorded,
    /// The gateway approved the device.
    Approved,
    /// A DM pairing decision was recorded; its outcome was not known in time.
    DecisionRecorded,
    /// The gateway approved a stranger's DM request.
    DmApproved,
    /// The gateway dismissed a stranger's DM request.
    DmDismissed,
}

impl Flash {
    /// The value of the `done` query parameter that carries it.
    pub fn parse(text: &str) -> Option<Flash> {
        match text {
            "reconcile" => Some(Flash::ReconcileRequested),
            "approval" => Some(Flash::ApprovalRecorded),
            "approved" => Some(Flash::Approved),
            "decision" => Some(Flash::DecisionRecorded),
            "dm-approved" => Some(Flash::DmApproved),
            "dm-dismissed" => Some(Flash::DmDismissed),
            _ => None,
        }
    }

    /// The inverse of [`Flash::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Flash::ReconcileRequested => "reconcile",
            Flash::ApprovalRecorded => "approval",
            Flash::Approved => "approved",
            Flash::DecisionRecorded => "decision",
            Flash::DmApproved => "dm-approved",
            Flash::DmDismissed => "dm-dismissed",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Flash::ReconcileRequested => {
                "Reconcile requested: the instance is due now; a worker picks it up within \
                 seconds. Its events appear below."
            }
            Flash::ApprovalRecorded => {
                "Approval recorded: the gateway is starting or did not answer within seconds; \
                 the controller approves the request as soon as it can, and the outcome \
                 appears under recent results."
            }
            Flash::Approved => "Approved: the gateway approved the device; it can connect now.",
            Flash::DecisionRecorded => {
                "Decision recorded: the gateway is starting or did not answer within seconds; \
                 the controller carries it out as soon as it can, and the outcome appears under \
                 recent results."
            }
            Flash::DmApproved => "Approved: the sender's messages reach the agent now.",
            Flash::DmDismissed => {
                "Dismissed: the request is gone (the sender may ask again later)."
            }
        }
    }
}

/// Everything the instance page shows.
#[derive(Debug, Clone)]
pub struct InstanceView {
    /// The instance as the API shows it (provider keys are references only).
    pub instance: OpenClawInstance,
    /// Its events, newest first.
    pub events: Vec<Event>,
    /// Its row in the work queue.
    pub schedule: Option<Schedule>,
    /// The plan preview (`GET /v1/instances/{name}/plan`), rendered by [`plan_section`] when
    /// given; `None` renders nothing.
    pub plan: Option<Value>,
    /// What the last action did, if the page follows one.
    pub flash: Option<Flash>,
    /// The time the page was rendered.
    pub now: DateTime<Utc>,
    /// The version the page shows the instance at: the page follows its changes after it.
    pub version: i64,
}

/// The instance page.
pub fn instance_page(viewer: &Viewer, view: &InstanceView) -> Markup {
    let instance = &view.instance;
    let name = &instance.metadata.name;
    let status = &instance.status;
    let spec = &instance.spec;
    let now = view.now;
    let watch = format!(
        "/support/watch?name={}&resourceVersion={}",
        query_value(name),
        view.version
    );
    live_layout(
        name,
        viewer,
        &watch,
        html! {
            div id="instance" data-live {
            p { a href="/support/instances" { "← Fleet" } }
            h1 {
                span.mono { (name) } " " span id="phase" { (phase_badge(status.phase.as_str())) }
                @if instance.metadata.deletion_timestamp.is_some() { " " span.badge.off { "deletion requested" } }
                @if spec.paused { " " span.badge.warn { "paused" } }
            }
            @if let Some(flash) = view.flash {
                div.notice.info id="flash" role="status" { (flash.message()) }
            }
            (why_not_ready(status))
            @if viewer.can_act() {
                div.actions {
                    form.inline method="post" action={ "/support/instances/" (name) "/reconcile" } {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button type="submit" id="reconcile" { "Reconcile now" }
                    }
                }
            }
            (overview_section(instance, now))
            (conditions_section(status, now))
            (last_error_section(status, now))
            (pairing_section(viewer, instance, now))
            (channels_section(instance, now))
            (fly_section(status))
            (plan_slot(view.plan.as_ref()))
            (schedule_section(status, view.schedule.as_ref(), now))
            (spec_section(spec))
            (events_section(&view.events, now))
            }
        },
    )
}

fn overview_section(instance: &OpenClawInstance, now: DateTime<Utc>) -> Markup {
    let spec = &instance.spec;
    let status = &instance.status;
    html! {
        section id="overview" {
            h2 { "Overview" }
            dl.facts {
                dt { "Customer" } dd.mono { (Shown(&spec.customer_id)) }
                dt { "UID" } dd.mono { (instance.metadata.uid) }
                dt { "Created" } dd { (time_cell(instance.metadata.creation_timestamp, now)) }
                dt { "Generation" } dd {
                    (instance.metadata.generation) " (observed " (status.observed_generation) ")"
                    @if status.observed_generation < instance.metadata.generation {
                        " " span.badge.warn { "spec change not yet reconciled" }
                    }
                }
                dt { "Endpoint" } dd { (or_dash(status.endpoint.as_deref())) }
                @if let Some(labels) = (!instance.metadata.labels.is_empty()).then_some(&instance.metadata.labels) {
                    dt { "Labels" } dd.mono {
                        @for (k, v) in labels { (Shown(k)) "=" (Shown(v)) " " }
                    }
                }
            }
        }
    }
}

fn conditions_section(status: &InstanceStatus, now: DateTime<Utc>) -> Markup {
    html! {
        section id="conditions" {
            h2 { "Conditions" }
            @if status.conditions.is_empty() {
                p.muted { "None yet: the controller has not reconciled this instance." }
            } @else {
                table {
                    thead { tr { th { "Type" } th { "Status" } th { "Reason" } th { "Message" } th { "Since" } } }
                    tbody {
                        @for c in &status.conditions {
                            tr data-type=(c.type_) {
                                td { strong { (c.type_) } }
                                td { (condition_badge(c.status)) }
                                td.mono { (c.reason) }
                                td { (Shown(&c.message)) }
                                td { (time_cell(c.last_transition_time, now)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn last_error_section(status: &InstanceStatus, now: DateTime<Utc>) -> Markup {
    html! {
        section id="last-error" {
            h2 { "Last error" }
            @match &status.last_error {
                None => p.muted { "None: the last reconcile succeeded." },
                Some(e) => dl.facts {
                    dt { "Step" } dd.mono { (Shown(&e.step)) }
                    dt { "Reason" } dd.mono { (e.reason) }
                    dt { "Message" } dd { (Shown(&e.message)) }
                    dt { "When" } dd { (time_cell(e.time, now)) }
                    dt { "Attempt" } dd { (e.attempt) }
                },
            }
        }
    }
}

fn fly_section(status: &InstanceStatus) -> Markup {
    html! {
        section id="fly" {
            h2 { "Fly" }
            @let fly = status.fly.clone().unwrap_or_default();
            dl.facts {
                dt { "App" } dd.mono { (or_dash(fly.app_name.as_deref())) }
                dt { "Volume" } dd.mono { (or_dash(fly.volume_id.as_deref())) }
                dt { "Machine" } dd.mono { (or_dash(fly.machine_id.as_deref())) }
                dt { "Machine state" } dd id="machine-state" { (or_dash(fly.machine_state.as_deref())) }
                dt { "Region" } dd { (or_dash(fly.region.as_deref())) }
                dt { "Image" } dd.mono { (or_dash(fly.image.as_deref())) }
            }
        }
    }
}

/// The answer to "why is this instance not Ready?", at the top of its page: the `Ready`
/// condition and every other condition that is not `True`, and the last error.
fn why_not_ready(status: &InstanceStatus) -> Markup {
    if status.phase == Phase::Ready {
        return html! {};
    }
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let failing: Vec<&Condition> = status
        .conditions
        .iter()
        .filter(|c| c.type_ != "Ready" && c.status != ConditionStatus::True)
        .collect();
    html! {
        div.notice.why id="why" {
            strong { "Not Ready" }
            @match ready {
                Some(c) => { ": " span.mono { (c.reason) } " — " (Shown(&c.message)) }
                None => { ": the controller has not reported a Ready condition yet." }
            }
            @if !failing.is_empty() {
                ul {
                    @for c in failing {
                        li { strong { (c.type_) } " is " (format!("{:?}", c.status)) ": " span.mono { (c.reason) } " — " (Shown(&c.message)) }
                    }
                }
            }
            @if let Some(e) = &status.last_error {
                div { "Last error in step " span.mono { (Shown(&e.step)) } " (" span.mono { (e.reason) } "): " (Shown(&e.message)) }
            }
        }
    }
}

fn secret_ref(value: Option<&SecretRef>) -> Markup {
    match value {
        None => html! { span.muted { "not set" } },
        Some(r) => html! {
            "set, " span.mono { (r.fingerprint) } " " span.muted { "(updated " (stamp(r.updated_at)) ")" }
        },
    }
}

fn spec_section(spec: &InstanceSpec) -> Markup {
    let keys = &spec.provider_keys;
    html! {
        section id="spec" {
            h2 { "Desired state" }
            dl.facts {
                dt { "Region" } dd { (Shown(&spec.region)) }
                dt { "Image" } dd.mono { (spec.image) }
                dt { "Machine size" } dd { (spec.guest.cpus) " × " (spec.guest.cpu_kind.as_fly()) " CPU, " (spec.guest.memory_mb) " MB" }
                dt { "Volume" } dd { (spec.volume_size_gb) " GB" }
                dt { "Run state" } dd { (format!("{:?}", spec.run_state).to_lowercase()) }
                dt { "Exposure" } dd { (format!("{:?}", spec.exposure).to_lowercase()) }
                dt { "Model" } dd.mono { (Shown(&spec.model.primary)) }
                dt { "Anthropic API key" } dd { (secret_ref(keys.anthropic_api_key.as_ref())) }
                dt { "Anthropic OAuth token" } dd { (secret_ref(keys.anthropic_oauth_token.as_ref())) }
                dt { "OpenAI API key" } dd { (secret_ref(keys.openai_api_key.as_ref())) }
                dt { "Composio" } dd { @if spec.composio.enabled { "enabled" } @else { "off" } }
                dt { "Paused" } dd { @if spec.paused { "yes: the controller does not reconcile it" } @else { "no" } }
            }
        }
    }
}

fn pairing_section(viewer: &Viewer, instance: &OpenClawInstance, now: DateTime<Utc>) -> Markup {
    let spec = &instance.spec.pairing;
    let pairing = instance.status.pairing.clone().unwrap_or_default();
    let manual = spec.policy == PairingPolicy::Manual;
    let done: Vec<&str> = pairing
        .recent
        .iter()
        .filter_map(|r| r.approval_id.as_deref())
        .collect();
    let outstanding: Vec<_> = spec
        .approvals
        .iter()
        .filter(|a| !done.contains(&a.key().as_str()))
        .collect();
    let approve = (manual && viewer.can_act()).then_some((viewer, instance.metadata.name.as_str()));
    html! {
        section id="pairing" {
            h2 { "Pairing" }
            (pairing_facts(&pairing, manual, now))
            (pending_requests(&pairing, approve, now))
            (pending_dm_requests(&pairing, viewer.can_act().then_some((viewer, instance.metadata.name.as_str())), now))
            @if !outstanding.is_empty() {
                h3 { "Approvals waiting for the controller" }
                ul id="outstanding" {
                    @for a in outstanding {
                        li {
                            @match &a.request_id { Some(r) => { "request " span.mono { (Shown(r)) } } None => { "the newest request" } }
                            @if let Some(t) = a.requested_at { " " span.muted { "(recorded " (relative(t, now)) ")" } }
                        }
                    }
                }
            }
            (recent_results(&pairing, now))
        }
    }
}

fn pairing_facts(pairing: &PairingStatus, manual: bool, now: DateTime<Utc>) -> Markup {
    html! {
    dl.facts {
        dt { "Policy" } dd id="pairing-policy" {
            @if manual { "manual: requests wait for an approval" }
            @else { "auto: requests are approved as they appear" }
        }
        dt { "Controller paired" } dd {
            @if pairing.controller_paired { span.badge.ok { "yes" } }
            @else { span.badge.bad { "no" } " " span.muted { "(it cannot list or approve requests until it is)" } }
        }
        dt { "Last looked" } dd {
            @match pairing.observed_at { Some(t) => (time_cell(t, now)), None => span.muted { "never" } }
        }
        @if let Some(device) = &pairing.last_approved_device {
            dt { "Last approved" } dd {
                (Shown(device))
                @if let Some(t) = pairing.last_approved_at { " " span.muted { "(" (relative(t, now)) ")" } }
            }
        }
    }
    }
}

/// The configured messaging channels and how the gateway last reported each; nothing when no
/// channel is configured. Credentials show only as set, with their fingerprint.
fn channels_section(instance: &OpenClawInstance, now: DateTime<Utc>) -> Markup {
    let configured = instance.spec.channels.configured();
    if configured.is_empty() {
        return html! {};
    }
    let status = &instance.status.channels;
    html! {
    section id="channels" {
        h2 { "Channels" }
        table id="channel-list" {
            thead { tr {
                th { "Channel" } th { "Enabled" } th { "DM policy" } th { "Allowed senders" }
                th { "State" } th { "Reason" } th { "Checked" } th { "Message" }
            } }
            tbody {
                @for c in &configured {
                    @let s = status.iter().find(|s| s.channel == c.kind);
                    tr data-channel=(c.kind.as_str()) {
                        td { (c.kind.as_str()) }
                        td { @if c.enabled { "yes" } @else { span.muted { "no" } } }
                        td { (c.dm_policy.as_str()) }
                        td { (c.allow_from.len()) }
                        td {
                            @match s.map(|s| s.state) {
                                Some(ChannelState::Connected) => span.badge.ok { "Connected" },
                                Some(ChannelState::Failing) => span.badge.bad { "Failing" },
                                Some(ChannelState::Disabled) => span.badge.off { "Disabled" },
                                _ => span.badge.warn { "Pending" },
                            }
                        }
                        td { (or_dash(s.map(|s| s.reason.as_str()))) }
                        td { @match s.and_then(|s| s.last_checked_at) { Some(t) => (time_cell(t, now)), None => span.muted { "never" } } }
                        td { (or_dash(s.map(|s| s.message.as_str()))) }
                    }
                }
            }
        }
    }
    }
}

/// The pending requests; with `approve` (a writer, policy manual) an Approve button each.
fn pending_requests(
    pairing: &PairingStatus,
    approve: Option<(&Viewer, &str)>,
    now: DateTime<Utc>,
) -> Markup {
    html! {
    h3 { "Pending requests" }
    @if pairing.pending.is_empty() {
        p.muted id="no-pending" { "No device is waiting." }
    } @else {
        table id="pending" {
            thead { tr {
                th { "Device" } th { "Platform" } th { "Client" } th { "Role" } th { "Age" }
                th { "Expires" } th { "Request" }
                @if approve.is_some() { th {} }
            } }
            tbody {
                @for p in &pairing.pending {
                    tr data-request=(p.request_id) {
                        td { (or_dash(p.device_name.as_deref())) }
                        td { (or_dash(p.platform.as_deref())) }
                        td.mono { (or_dash(p.client.as_deref())) }
                        td { (or_dash(p.role.as_deref())) }
                        td { (span(p.age_seconds)) }
                        td { (relative(p.expires_at, now)) }
                        td.mono { (Shown(&p.request_id)) }
                        @if let Some((viewer, name)) = approve {
                            td {
                                form.inline method="post" action={ "/support/instances/" (name) "/pairing/approvals" } {
                                    input type="hidden" name="csrf" value=(viewer.csrf);
                                    input type="hidden" name="request_id" value=(p.request_id);
                                    button type="submit" class="approve" { "Approve" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    }
}

/// Strangers' pending DM requests; for a writer, Approve and Dismiss buttons each. The code
/// the sender got is not shown: OpenClaw does not reveal it to operators.
fn pending_dm_requests(
    pairing: &PairingStatus,
    act: Option<(&Viewer, &str)>,
    now: DateTime<Utc>,
) -> Markup {
    let button = |viewer: &Viewer,
                  name: &str,
                  p: &PendingChannelPairing,
                  what: &str,
                  label: &str| {
        html! {
            form.inline method="post" action={ "/support/instances/" (name) "/channels/" (p.channel) "/pairing/" (what) } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="request_id" value=(p.request_id);
                button type="submit" class=(what) { (label) }
            }
        }
    };
    html! {
    h3 { "Pending DM requests" }
    @if pairing.channel_pending.is_empty() {
        p.muted id="no-dm-pending" {
            @if pairing.channel_accounts.is_empty() { "No channel uses DM pairing." }
            @else { "No stranger is waiting (" (pairing.channel_accounts.join(", ")) ")." }
        }
    } @else {
        table id="dm-pending" {
            thead { tr {
                th { "Channel" } th { "Sender" } th { "Sender id" } th { "Age" } th { "Expires" }
                @if act.is_some() { th {} }
            } }
            tbody {
                @for p in &pairing.channel_pending {
                    tr data-request=(p.request_id) {
                        td { (p.channel) " " span.muted { (p.account_id) } }
                        td { (or_dash(p.sender_name.as_deref())) }
                        td.mono { (Shown(&p.sender_id)) }
                        td { (span(p.age_seconds)) }
                        td { (relative(p.expires_at, now)) }
                        @if let Some((viewer, name)) = act {
                            td {
                                (button(viewer, name, p, "approvals", "Approve"))
                                " "
                                (button(viewer, name, p, "dismissals", "Dismiss"))
                            }
                        }
                    }
                }
            }
        }
    }
    }
}

fn recent_results(pairing: &PairingStatus, now: DateTime<Utc>) -> Markup {
    html! {
    h3 { "Recent results" }
    @if pairing.recent.is_empty() {
        p.muted { "None yet." }
    } @else {
        table id="recent" {
            thead { tr { th { "Result" } th { "Device" } th { "Request" } th { "Message" } th { "When" } } }
            tbody {
                @for r in &pairing.recent {
                    tr {
                        td {
                            @match r.result {
                                PairingOutcome::Approved => span.badge.ok { "Approved" },
                                PairingOutcome::Expired => span.badge.warn { "Expired" },
                                PairingOutcome::Failed => span.badge.bad { "Failed" },
                                PairingOutcome::Dismissed => span.badge.warn { "Dismissed" },
                            }
                        }
                        td {
                            @match (&r.channel, &r.sender_id) {
                                (Some(channel), Some(sender)) => { (channel) " sender " span.mono { (sender) } },
                                _ => (or_dash(r.device_name.as_deref())),
                            }
                        }
                        td.mono { (or_dash(r.request_id.as_deref())) }
                        td { (Shown(&r.message)) }
                        td { (time_cell(r.at, now)) }
                    }
                }
            }
        }
    }
    }
}

/// Where the plan preview goes on the instance page: nothing until a plan is passed in.
fn plan_slot(plan: Option<&Value>) -> Markup {
    match plan {
        Some(plan) => plan_section(plan),
        None => html! {},
    }
}

fn plan_detail(value: &Value) -> Markup {
    match value {
        Value::String(s) => html! { (Shown(s)) },
        Value::Bool(b) => html! { @if *b { "yes" } @else { "no" } },
        Value::Number(n) => html! { (n.to_string()) },
        Value::Object(o) => html! {
            @if let Some(reason) = o.get("reason").and_then(Value::as_str) {
                span.mono { (reason) } ": "
            }
            @if let Some(message) = o.get("message").and_then(Value::as_str) { (Shown(message)) }
            @for (k, v) in o.iter().filter(|(k, _)| *k != "reason" && *k != "message") {
                " " span.muted { (k) ": " (match v { Value::String(s) => s.clone(), other => other.to_string() }) }
            }
        },
        other => html! { span.mono { (other.to_string()) } },
    }
}

/// The plan preview section, from the JSON of `GET /v1/instances/{name}/plan`
/// (`{actions: [{step, description}], wait, blocked, converged}`): what the next reconcile would
/// do, what it waits for and what blocks it.
pub fn plan_section(plan: &Value) -> Markup {
    let actions = plan["actions"].as_array().cloned().unwrap_or_default();
    let converged = plan["converged"].as_bool().unwrap_or(false);
    html! {
        section id="plan" {
            h2 { "Plan: what the next reconcile would do" }
            @if converged {
                p { span.badge.ok { "converged" } " Nothing to do and nothing to wait for." }
            }
            @if !actions.is_empty() {
                ol {
                    @for a in &actions {
                        li {
                            span.mono { (a["step"].as_str().unwrap_or("?")) }
                            @if let Some(d) = a["description"].as_str() { " — " (Shown(d)) }
                        }
                    }
                }
            }
            @if !plan["wait"].is_null() {
                p { strong { "Waiting: " } (plan_detail(&plan["wait"])) }
            }
            @if !plan["blocked"].is_null() {
                div.notice.error { strong { "Blocked: " } (plan_detail(&plan["blocked"])) }
            }
            @if let Some(notes) = plan["notes"].as_array().filter(|n| !n.is_empty()) {
                ul {
                    @for n in notes {
                        li { (n.as_str().unwrap_or_default()) }
                    }
                }
            }
            @if let Some(at) = plan["observedAt"].as_str() {
                p.muted { "Planned from the world as last observed at " (at) "." }
            }
        }
    }
}

fn schedule_section(
    status: &InstanceStatus,
    schedule: Option<&Schedule>,
    now: DateTime<Utc>,
) -> Markup {
    html! {
        section id="schedule" {
            h2 { "Next reconcile" }
            dl.facts {
                @match schedule {
                    None => { dt { "Queue" } dd.muted { "not queued" } },
                    Some(s) => {
                        dt { "Due" } dd id="next-reconcile" {
                            (time_cell(s.due_at, now))
                            @if s.due_at <= now && s.lease_expires_at.is_none() { " " span.badge.warn { "due now" } }
                        }
                        dt { "Why" } dd.mono { (s.reason) }
                        @if s.attempts > 0 {
                            dt { "Failed attempts" } dd { (s.attempts) " in a row (backing off)" }
                        }
                        @if let Some(until) = s.lease_expires_at {
                            dt { "Running" } dd { span.badge.ok { "a worker is reconciling it now" } " " span.muted { "(lease until " (stamp(until)) ")" } }
                        }
                    },
                }
                @if let Some(t) = status.next_reconcile_at {
                    dt { "Asked for by the last reconcile" } dd { (time_cell(t, now)) }
                }
            }
        }
    }
}

fn events_section(events: &[Event], now: DateTime<Utc>) -> Markup {
    html! {
        section id="events" {
            h2 { "Events (newest first)" }
            @if events.is_empty() {
                p.muted { "No events." }
            } @else {
                table id="event-list" {
                    thead { tr { th { "Time" } th { "Type" } th { "Reason" } th { "Message" } th { "Gen" } th { "By" } th { "Changed" } } }
                    tbody {
                        @for e in events {
                            tr class=(if e.type_ == "Warning" { "warning" } else { "" }) data-reason=(e.reason) {
                                td { (time_cell(e.created_at, now)) }
                                td { @if e.type_ == "Warning" { span.badge.warn { (e.type_) } } @else { (e.type_) } }
                                td.mono { (e.reason) }
                                td { (Shown(&e.message)) }
                                td { @if let Some(g) = e.generation { (g) } }
                                (audit_cells(e))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The audit trail of an event: who wrote (and as which field manager), and the fields the
/// write changed; empty cells on the controller's events.
fn audit_cells(e: &Event) -> Markup {
    html! {
        td.mono.actor {
            @if let Some(actor) = &e.actor { (Shown(actor)) }
            @if let Some(manager) = &e.field_manager { br; span.muted { "as " (Shown(manager)) } }
        }
        td.mono.changed {
            @for (i, field) in e.changed_fields.iter().flatten().enumerate() {
                @if i > 0 { br; }
                (Shown(field))
            }
        }
    }
}

/// The page of an instance that no longer exists but has history (its tombstone).
pub fn history_page(viewer: &Viewer, name: &str, events: &[Event], now: DateTime<Utc>) -> Markup {
    layout(
        name,
        Some(viewer),
        html! {
            p { a href="/support/instances" { "← Fleet" } }
            h1 { span.mono { (name) } " " span.badge.off { "deleted" } }
            div.notice.info { "This instance no longer exists; its history is kept." }
            (events_section(events, now))
        },
    )
}

/// One webhook endpoint as the console lists it.
#[derive(Debug, Clone)]
pub struct WebhookLine {
    /// The endpoint's scheme and host only (a path may carry a token of the receiver's).
    pub origin: String,
    /// Free text from its registration.
    pub description: String,
    /// The event types it receives.
    pub event_types: Vec<String>,
    /// Its label selector (empty: every instance).
    pub label_selector: String,
    /// Deliveries not yet sent.
    pub pending: i64,
    /// Deliveries given up on.
    pub failed: i64,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// The registered webhooks with their pending and failed deliveries.
pub fn webhooks_page(viewer: &Viewer, lines: &[WebhookLine]) -> Markup {
    layout(
        "Webhooks",
        Some(viewer),
        html! {
            p { a href="/support/instances" { "← Fleet" } }
            h1 { "Webhooks" }
            p.muted {
                "Endpoints registered through " span.mono { "/v1/webhooks" } ". Pending deliveries "
                "are retried with backoff; failed ones were given up on after the retry window."
            }
            @if lines.is_empty() {
                p id="no-webhooks" { "No webhook is registered." }
            } @else {
                table id="webhooks" {
                    thead { tr { th { "Endpoint" } th { "Description" } th { "Events" }
                        th { "Selector" } th { "Pending" } th { "Failed" } th { "Registered" } } }
                    tbody {
                        @for w in lines {
                            tr {
                                td.mono { (Shown(&w.origin)) }
                                td { (Shown(&w.description)) }
                                td.mono { (w.event_types.join(", ")) }
                                td.mono { (Shown(&w.label_selector)) }
                                td.pending { (w.pending) }
                                td.failed {
                                    @if w.failed > 0 { span.badge.bad { (w.failed) } } @else { "0" }
                                }
                                td { (w.created_at.format("%Y-%m-%d %H:%M UTC")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spans_and_query_values() {
        assert_eq!(span(5), "5s");
        assert_eq!(span(125), "2m");
        assert_eq!(span(3 * 3600 + 120), "3h 2m");
        assert_eq!(span(2 * 86_400 + 3600), "2d 1h");
        assert_eq!(query_value("c 1&x=<y>"), "c%201%26x%3D%3Cy%3E");
    }

    #[test]
    fn database_text_is_escaped() {
        let page = error_page(None, "<b>title</b>", "<script>alert(1)</script>");
        let html = page.into_string();
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<b>title</b>"));
    }

    #[test]
    fn invisible_characters_are_spelled_out() {
        let html = html! { (Shown("cust\u{202E}-42\u{200B}<b>")) }.into_string();
        assert!(html.contains("⟨U+202E⟩"), "{html}");
        assert!(html.contains("⟨U+200B⟩"), "{html}");
        assert!(
            !html.contains('\u{202E}') && !html.contains('\u{200B}'),
            "{html}"
        );
        assert!(
            html.contains("&lt;b&gt;") && !html.contains("<b>"),
            "{html}"
        );
        assert_eq!(html! { (Shown("plain")) }.into_string(), "plain");
    }

    #[test]
    fn plan_section_renders_actions_waits_and_blocks() {
        let html = plan_section(&json!({
            "actions": [{"step": "CreateMachine", "description": "create the <machine>"}],
            "wait": {"reason": "MachineSettling", "message": "starting", "afterSeconds": 2},
            "blocked": null,
            "converged": false
        }))
        .into_string();
        assert!(html.contains("CreateMachine"));
        assert!(html.contains("create the &lt;machine&gt;"));
        assert!(html.contains("MachineSettling"));
        assert!(html.contains("afterSeconds"));
        assert!(!html.contains("Blocked"));
        let html = plan_section(&json!({"actions": [], "converged": true})).into_string();
        assert!(html.contains("converged"));
    }
}
