//! The console's release pages (`docs/releases.md`): every release with its phase and
//! progress, and one release's waves, failed members and history. Read-only: pause, resume
//! and abort go through the API or `openclaws-controller release`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use openclaws_model::release::WaveProgress;
use openclaws_store::releases::{self as store, MemberRow, ReleaseEvent, ReleaseRow};

use super::views::{layout, Shown, Viewer};
use super::{page, page_viewer, see_other, ApiState, SupportError};

/// Failed members listed on a release's page (the first).
const FAILED_SHOWN: i64 = 50;

/// `/support/releases`: the newest releases.
pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: OriginalUri,
) -> Result<Response, SupportError> {
    let viewer = match page_viewer(&state, &headers, &uri) {
        Ok(v) => v,
        Err(login) => return Ok(see_other(&login)),
    };
    let mut conn = state.db().await?;
    let rows = store::list(&mut conn, 100).await?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        let counts = store::counts(&mut conn, row.uid).await?;
        lines.push((row, crate::releases::waves(&counts)));
    }
    Ok(page(StatusCode::OK, list_page(&viewer, &lines)))
}

/// `/support/releases/{name}`: one release in detail.
pub async fn detail(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: OriginalUri,
    Path(name): Path<String>,
) -> Result<Response, SupportError> {
    let viewer = match page_viewer(&state, &headers, &uri) {
        Ok(v) => v,
        Err(login) => return Ok(see_other(&login)),
    };
    let mut conn = state.db().await?;
    let Some(row) = store::get(&mut conn, &name).await? else {
        return Err(SupportError::NotFound(format!("no release named {name}")));
    };
    let waves = crate::releases::waves(&store::counts(&mut conn, row.uid).await?);
    let failed = store::members_page(&mut conn, row.uid, Some("Failed"), -1, FAILED_SHOWN).await?;
    let events = store::events(&mut conn, row.uid, 100).await?;
    let markup = detail_page(&viewer, &row, &waves, &failed, &events);
    Ok(page(StatusCode::OK, markup))
}

fn image_of(row: &ReleaseRow) -> String {
    row.spec.0["image"].as_str().unwrap_or("-").to_owned()
}

fn totals(waves: &[WaveProgress]) -> (u32, u32, u32) {
    waves.iter().fold((0, 0, 0), |(size, healthy, failed), w| {
        (size + w.size, healthy + w.healthy, failed + w.failed)
    })
}

/// The release list.
pub fn list_page(viewer: &Viewer, lines: &[(ReleaseRow, Vec<WaveProgress>)]) -> Markup {
    layout(
        "Releases",
        Some(viewer),
        html! {
            p { a href="/support/instances" { "← Fleet" } }
            h1 { "Releases" }
            p.muted { "OpenClaw images rolled out in waves with health gates. Pause, resume and abort with "
                span.mono { "openclaws-controller release" } " or " span.mono { "/v1/releases" } "." }
            @if lines.is_empty() {
                p id="no-releases" { "No release yet." }
            } @else {
                table id="releases" {
                    thead { tr { th { "Name" } th { "Phase" } th { "Image" } th { "Healthy" } th { "Failed" } th { "Created" } } }
                    tbody {
                        @for (row, waves) in lines {
                            @let (size, healthy, failed) = totals(waves);
                            tr {
                                td { a href={ "/support/releases/" (row.name) } { (Shown(&row.name)) } }
                                td.phase { (row.phase) }
                                td.mono { (Shown(&image_of(row))) }
                                td { (healthy) " / " (size) }
                                td { @if failed > 0 { span.badge.bad { (failed) } } @else { "0" } }
                                td { (row.created_at.format("%Y-%m-%d %H:%M UTC")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One release: header, waves, failed members, history.
pub fn detail_page(
    viewer: &Viewer,
    row: &ReleaseRow,
    waves: &[WaveProgress],
    failed: &[MemberRow],
    events: &[ReleaseEvent],
) -> Markup {
    layout(
        &format!("Release {}", row.name),
        Some(viewer),
        html! {
            p { a href="/support/releases" { "← Releases" } }
            h1 { "Release " (Shown(&row.name)) }
            table.kv {
                tr { th { "Phase" } td id="release-phase" { (row.phase) @if row.paused { " (pause requested)" } } }
                tr { th { "Message" } td { (Shown(&row.message)) } }
                tr { th { "Image" } td.mono { (Shown(&image_of(row))) } }
                tr { th { "Wave" } td { (row.wave) } }
                tr { th { "Created" } td { (row.created_at.format("%Y-%m-%d %H:%M:%S UTC")) " by " (Shown(&row.created_by)) } }
            }
            h2 { "Waves" }
            table id="waves" {
                thead { tr { th { "Wave" } th { "Size" } th { "Pending" } th { "Updating" } th { "Healthy" } th { "Failed" } th { "Skipped" } th { "Rolled back" } } }
                tbody {
                    @for w in waves {
                        tr { td { (w.name) } td { (w.size) } td { (w.pending) } td { (w.updating) }
                             td { (w.healthy) } td { (w.failed) } td { (w.skipped) } td { (w.rolled_back) } }
                    }
                }
            }
            @if !failed.is_empty() {
                h2 { "Failed instances" }
                ul id="failed" {
                    @for m in failed {
                        li { a href={ "/support/instances/" (m.instance_name) } { (Shown(&m.instance_name)) } ": " (Shown(&m.message)) }
                    }
                }
            }
            h2 { "History" }
            table id="release-events" {
                thead { tr { th { "Time" } th { "Type" } th { "Reason" } th { "Message" } } }
                tbody {
                    @for e in events {
                        tr { td { (e.created_at.format("%H:%M:%S")) } td { (e.type_) } td { (e.reason) } td { (Shown(&e.message)) } }
                    }
                }
            }
        },
    )
}
