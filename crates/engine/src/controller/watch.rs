//! The fleet watch: cheap steady-state observation for the whole fleet.
//!
//! A deep look at one instance costs several Fly GETs (app, volumes, machines, secrets, IPs,
//! certificate, DNS). Doing that for every instance on every resync would not scale to a fleet,
//! so converged instances get a deep look only at the slow full-resync cadence, and this task
//! notices machine changes in between: one paged `GET /v1/orgs/{org}/machines?updated_after=…`
//! per interval (pages of up to 1,000) tells which of our machines changed. An instance whose
//! machine no longer matches what its last reconcile recorded (state, id, image, a destroyed or an
//! extra machine) is made due at once; echoes of the controller's own work match the record and
//! wake nothing once recorded.
//!
//! # Guarantees and caveats
//! - In steady state the whole fleet costs one Fly call per interval.
//! - Fly's listing is eventually consistent, so each pass re-reads a window (`overlap`) before the
//!   newest change it has seen; re-reading is harmless because decisions compare against the
//!   record, not against the previous pass.
//! - Only one replica watches at a time (a PostgreSQL advisory lock); the others stand by. The
//!   lock is a session's, so it is held on a connection of its own to the session URL
//!   (`DATABASE_LISTEN_URL`), never on the pool, which may be a transaction pooler's.
//! - Drift that does not touch a machine (secrets, IPs, certificate, DNS) is found by the full
//!   resync, not here.
//! - Nothing is concluded from a machine's absence. A page Fly marks partial (`error_regions`:
//!   regions it could not list) also does not move the window forward, so changes in those
//!   regions are read by a later pass.
//! - A failing instance keeps its backoff: the watch never wakes a key with a failure streak.

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::reconcile::desired::META_INSTANCE_UID;
use crate::{Telemetry, WatchPass};
use openclaws_fly::types::OrgMachine;
use openclaws_fly::{FlyClient, FlyError};
use openclaws_store::status::{recorded_machines, RecordedMachine};
use openclaws_store::{work, Db, StoreError};

/// Advisory lock key held by the replica that runs the watch ("oc-watch").
const WATCH_LOCK_KEY: i64 = 0x6f63_2d77_6174_6368;

/// Settings of the fleet watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Time between passes.
    pub interval: Duration,
    /// How far before the newest change seen each pass starts reading (eventual consistency).
    pub overlap: Duration,
    /// Machines per page (Fly caps it at 1,000).
    pub page_limit: u32,
}

impl WatchConfig {
    /// Production defaults for a pass every `interval`.
    pub fn every(interval: Duration) -> Self {
        Self {
            interval,
            overlap: Duration::from_secs(60),
            page_limit: 1000,
        }
    }
}

/// Errors of one pass; the next pass starts over from the last complete one.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("listing the organization's machines failed: {0}")]
    Fly(#[from] FlyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One of our machines as the org listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenMachine {
    pub instance_uid: Uuid,
    pub machine_id: String,
    pub state: String,
    pub image: String,
    pub updated_at: Option<DateTime<Utc>>,
}

impl SeenMachine {
    /// Our machine, or `None` for a machine without a valid ownership mark.
    pub fn from_listing(m: &OrgMachine) -> Option<Self> {
        let config = m.config.as_ref()?;
        let instance_uid = config.metadata.get(META_INSTANCE_UID)?.parse().ok()?;
        Some(Self {
            instance_uid,
            machine_id: m.id.clone(),
            state: m.state.clone(),
            image: config.image.clone(),
            updated_at: DateTime::parse_from_rfc3339(&m.updated_at)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        })
    }

    fn is_gone(&self) -> bool {
        matches!(self.state.as_str(), "destroyed" | "destroying")
    }
}

/// Why an instance needs a visit, given its record and the listing's view of its machines (all
/// carrying its mark); `None` when the listing only echoes what the record already says.
pub fn needs_visit(recorded: &RecordedMachine, seen: &[SeenMachine]) -> Option<String> {
    let live: Vec<&SeenMachine> = seen.iter().filter(|m| !m.is_gone()).collect();
    let Some(recorded_id) = recorded.machine_id.as_deref() else {
        return live
            .first()
            .map(|m| format!("machine {} appeared ({})", m.machine_id, m.state));
    };
    if let Some(extra) = live.iter().find(|m| m.machine_id != recorded_id) {
        return Some(format!(
            "an extra machine {} is {}",
            extra.machine_id, extra.state
        ));
    }
    let ours = seen.iter().find(|m| m.machine_id == recorded_id)?;
    if recorded.machine_state.as_deref() != Some(ours.state.as_str()) {
        return Some(format!(
            "machine {recorded_id} is {} (recorded {})",
            ours.state,
            recorded.machine_state.as_deref().unwrap_or("nothing")
        ));
    }
    if !ours.is_gone() && recorded.image.as_deref() != Some(ours.image.as_str()) {
        return Some(format!("machine {recorded_id} runs another image"));
    }
    None
}

/// The background task: passes every `interval` while this replica holds the watch lock, a
/// session advisory lock taken on a connection of its own to `lock_url` (a session: a direct
/// connection or a session pooler), checked before every pass. A replica whose lock connection
/// broke stops watching until it has the lock again, as PostgreSQL released it.
pub async fn run(
    fly: FlyClient,
    db: Db,
    lock_url: String,
    telemetry: Arc<dyn Telemetry>,
    config: WatchConfig,
    shutdown: CancellationToken,
) {
    let mut since: Option<DateTime<Utc>> = None;
    let mut lock: Option<PgConnection> = None;
    loop {
        lock = match lock.take() {
            Some(conn) => held(conn).await,
            None => None,
        };
        if lock.is_none() {
            lock = try_lock(&lock_url).await;
        }
        if lock.is_some() {
            let mut counts = WatchPass::default();
            let result = pass(&fly, &db, &config, since, &mut counts).await;
            counts.ok = result.is_ok();
            telemetry.watch_pass(counts);
            match result {
                Ok(newest) => since = newest.or(since),
                Err(e) => tracing::warn!(error = %e, "fleet watch pass failed"),
            }
        }
        let pause = crate::reconcile::jitter(config.interval, 0.1);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    if let Some(mut conn) = lock {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(WATCH_LOCK_KEY)
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

/// The lock's connection if it still answers (else PostgreSQL has released the lock).
async fn held(mut conn: PgConnection) -> Option<PgConnection> {
    conn.ping().await.ok().map(|()| conn)
}

/// A connection to `lock_url` holding the watch lock, or `None` when another replica holds it
/// (or the database cannot be reached; the next pass tries again).
async fn try_lock(lock_url: &str) -> Option<PgConnection> {
    let mut conn = PgConnection::connect(lock_url).await.ok()?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(WATCH_LOCK_KEY)
        .fetch_one(&mut conn)
        .await
        .ok()?;
    if locked {
        return Some(conn);
    }
    let _ = conn.close().await;
    None
}

/// One pass over every page changed since `since - overlap` (everything on the first pass).
/// Most pages one pass follows (a million machines at 1,000 a page); a listing that goes on
/// longer is a cursor gone wrong, and the pass ends as incomplete.
const MAX_PAGES: u32 = 1_000;

/// Returns the newest change time seen; `counts` gets the machines listed and instances woken.
pub async fn pass(
    fly: &FlyClient,
    db: &Db,
    config: &WatchConfig,
    since: Option<DateTime<Utc>>,
    counts: &mut WatchPass,
) -> Result<Option<DateTime<Utc>>, WatchError> {
    let updated_after = since.map(|t| {
        (t - chrono::Duration::from_std(config.overlap).unwrap_or_default())
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    });
    let mut seen: BTreeMap<Uuid, Vec<SeenMachine>> = BTreeMap::new();
    let mut newest = since;
    let mut complete = true;
    let mut cursor: Option<String> = None;
    let mut pages = 1;
    loop {
        let page = list_page(fly, updated_after.as_deref(), cursor.as_deref(), config).await?;
        if page.is_partial() {
            tracing::warn!(regions = ?page.error_regions, "fleet watch: Fly listed only part of the fleet");
            complete = false;
        }
        counts.machines_listed += page.machines.len() as u64;
        for m in page.machines.iter().filter_map(SeenMachine::from_listing) {
            newest = newest.max(m.updated_at);
            seen.entry(m.instance_uid).or_default().push(m);
        }
        // Fly's document allows an empty page before the end, so a new cursor is followed even
        // then; a cursor that does not move, or a listing longer than any fleet, ends the pass.
        match page.next_cursor.filter(|c| !c.is_empty()) {
            Some(next) if Some(&next) != cursor.as_ref() && pages < MAX_PAGES => {
                cursor = Some(next);
                pages += 1;
            }
            Some(_) => {
                tracing::warn!(pages, "fleet watch: the listing's cursor stopped moving");
                complete = false;
                break;
            }
            None => break,
        }
    }
    let next = next_since(since, newest, complete);
    if seen.is_empty() {
        return Ok(next);
    }
    let uids: Vec<Uuid> = seen.keys().copied().collect();
    let recorded: HashMap<Uuid, RecordedMachine> =
        recorded_machines(db, &uids).await?.into_iter().collect();
    let mut stale = Vec::new();
    for (uid, machines) in &seen {
        // A machine of an instance that no longer has a row is nobody's business here.
        let Some(record) = recorded.get(uid) else {
            continue;
        };
        if let Some(why) = needs_visit(record, machines) {
            tracing::info!(instance_uid = %uid, %why, "fleet watch: machine changed at Fly");
            stale.push(*uid);
        }
    }
    if !stale.is_empty() {
        let mut tx = db.begin().await.map_err(StoreError::from)?;
        let woken = work::wake(&mut tx, &stale, "fly machine changed").await?;
        tx.commit().await.map_err(StoreError::from)?;
        counts.woken += woken;
    }
    Ok(next)
}

/// Where the next pass reads from: the newest change seen, unless a page was partial; then
/// the same window again, since machines of the missing regions may have changed unseen.
fn next_since(
    since: Option<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
    complete: bool,
) -> Option<DateTime<Utc>> {
    if complete {
        newest
    } else {
        since
    }
}

/// One page; a client-side rate-limit refusal is waited out here (this task holds no worker).
async fn list_page(
    fly: &FlyClient,
    updated_after: Option<&str>,
    cursor: Option<&str>,
    config: &WatchConfig,
) -> Result<openclaws_fly::types::OrgMachinesResponse, FlyError> {
    let mut attempts = 0;
    loop {
        match fly
            .list_org_machines(updated_after, cursor, config.page_limit, true)
            .await
        {
            Err(e) if e.is_retryable() && attempts < 3 => {
                attempts += 1;
                let after = e.retry_after().unwrap_or(Duration::from_secs(1));
                tokio::time::sleep(after.min(Duration::from_secs(10))).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, state: &str, image: &str) -> SeenMachine {
        SeenMachine {
            instance_uid: Uuid::nil(),
            machine_id: id.into(),
            state: state.into(),
            image: image.into(),
            updated_at: None,
        }
    }

    fn recorded(id: Option<&str>, state: Option<&str>, image: Option<&str>) -> RecordedMachine {
        RecordedMachine {
            machine_id: id.map(Into::into),
            machine_state: state.map(Into::into),
            image: image.map(Into::into),
        }
    }

    #[test]
    fn an_echo_of_the_record_wakes_nothing() {
        let r = recorded(Some("m1"), Some("started"), Some("img:1"));
        assert_eq!(needs_visit(&r, &[seen("m1", "started", "img:1")]), None);
        // An old machine of ours that was replaced and destroyed is history, not news.
        let old = seen("m0", "destroyed", "img:0");
        assert_eq!(
            needs_visit(&r, &[old, seen("m1", "started", "img:1")]),
            None
        );
    }

    #[test]
    fn a_state_change_wakes() {
        let r = recorded(Some("m1"), Some("started"), Some("img:1"));
        let why = needs_visit(&r, &[seen("m1", "stopped", "img:1")]).unwrap();
        assert!(why.contains("stopped"), "{why}");
        let why = needs_visit(&r, &[seen("m1", "destroyed", "img:1")]).unwrap();
        assert!(why.contains("destroyed"), "{why}");
        // A transition the record saw starting and the listing saw finish.
        let r = recorded(Some("m1"), Some("starting"), Some("img:1"));
        assert!(needs_visit(&r, &[seen("m1", "started", "img:1")]).is_some());
    }

    #[test]
    fn an_image_change_wakes() {
        let r = recorded(Some("m1"), Some("started"), Some("img:1"));
        assert!(needs_visit(&r, &[seen("m1", "started", "img:2")]).is_some());
    }

    #[test]
    fn an_extra_or_unrecorded_machine_wakes() {
        let r = recorded(Some("m1"), Some("started"), Some("img:1"));
        let why = needs_visit(
            &r,
            &[
                seen("m1", "started", "img:1"),
                seen("m2", "created", "img:1"),
            ],
        )
        .unwrap();
        assert!(why.contains("m2"), "{why}");
        let none = recorded(None, None, None);
        assert!(needs_visit(&none, &[seen("m9", "started", "img:1")]).is_some());
        assert_eq!(
            needs_visit(&none, &[seen("m9", "destroyed", "img:1")]),
            None
        );
    }

    #[test]
    fn a_partial_listing_does_not_move_the_window() {
        let since: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
        let newest: DateTime<Utc> = "2026-11-22T10:05:00Z".parse().unwrap();
        assert_eq!(next_since(Some(since), Some(newest), true), Some(newest));
        assert_eq!(next_since(Some(since), Some(newest), false), Some(since));
        assert_eq!(next_since(None, Some(newest), false), None);
        let page: openclaws_fly::types::OrgMachinesResponse =
            serde_json::from_str(r#"{"machines":null,"error_regions":["iad"]}"#).unwrap();
        assert!(page.is_partial() && page.machines.is_empty());
    }

    #[test]
    fn machines_without_a_valid_mark_are_ignored() {
        let mut m = OrgMachine {
            id: "m1".into(),
            state: "started".into(),
            ..Default::default()
        };
        assert_eq!(SeenMachine::from_listing(&m), None);
        let mut config = openclaws_fly::types::OrgMachineConfig::default();
        config
            .metadata
            .insert(META_INSTANCE_UID.into(), "not-a-uuid".into());
        m.config = Some(config.clone());
        assert_eq!(SeenMachine::from_listing(&m), None);
        let uid = Uuid::new_v4();
        config
            .metadata
            .insert(META_INSTANCE_UID.into(), uid.to_string());
        m.config = Some(config);
        m.updated_at = "2026-11-22T10:00:00.123456Z".into();
        let s = SeenMachine::from_listing(&m).unwrap();
        assert_eq!(s.instance_uid, uid);
        assert!(s.updated_at.is_some());
    }
}
