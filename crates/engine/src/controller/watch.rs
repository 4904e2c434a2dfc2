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
//! - Fly's listing is eventually consistent: a change may appear after newer ones were listed.
//!   Each pass reads only what changed after the newest change it has seen, and once per
//!   `overlap` a sweep re-reads the changes that have been settled for an `overlap` (see
//!   [`Position`]), so each change is read at most twice, a late one within two `overlap`s.
//!   Re-reading is harmless because decisions compare against the record, not against the
//!   previous pass. The sweep's window is a minute behind this replica's clock, which is
//!   assumed to be within that minute of Fly's.
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
    let mut position = Position::default();
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
            let result = pass(&fly, &db, &config, &mut position, Utc::now(), &mut counts).await;
            counts.ok = result.is_ok();
            telemetry.watch_pass(counts);
            if let Err(e) = result {
                tracing::warn!(error = %e, "fleet watch pass failed");
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

/// Where the watch stands in Fly's change listing. The listing is eventually consistent: a
/// change can show up after changes newer than it were listed. Re-reading a window behind the
/// newest change on every pass would catch it, but reads each change `overlap / interval`
/// times (ten pages a pass after a busy minute at 10,000 instances). Instead a pass reads what
/// is new once (`fresh`), and a sweep every `overlap` reads once more only the changes that
/// have since settled (`settled` up to `overlap` before now), where late arrivals land.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// Newest change time read: the fresh listing reads what changed after it.
    pub fresh: Option<DateTime<Utc>>,
    /// Changes up to here were listed at least `overlap` after they happened.
    pub settled: Option<DateTime<Utc>>,
    /// When the last sweep (or the first full listing) ran.
    pub swept_at: Option<DateTime<Utc>>,
}

/// One listing of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Everything: the first pass, or while there are no machines at all.
    All,
    /// What changed after `after`.
    Fresh { after: DateTime<Utc> },
    /// What changed after `after` up to `until`: the pages stop past `until`.
    Sweep {
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

impl Position {
    /// The listings a pass at `now` makes.
    pub fn listings(&self, now: DateTime<Utc>, overlap: chrono::Duration) -> Vec<Listing> {
        let Some(fresh) = self.fresh else {
            return vec![Listing::All];
        };
        let mut listings = vec![Listing::Fresh { after: fresh }];
        let until = now - overlap;
        let due = self.swept_at.is_none_or(|at| now - at >= overlap);
        match self.settled {
            Some(after) if due && until > after => listings.push(Listing::Sweep { after, until }),
            _ => {}
        }
        listings
    }

    /// Moves on after `listing` at `now` read up to `newest`; a `complete` listing (every page
    /// answered for every region) moves its window, an incomplete one is read again.
    pub fn advance(
        &mut self,
        listing: Listing,
        newest: Option<DateTime<Utc>>,
        complete: bool,
        now: DateTime<Utc>,
        overlap: chrono::Duration,
    ) {
        match listing {
            Listing::All if complete => {
                self.fresh = newest;
                self.settled = Some(now - overlap);
                self.swept_at = Some(now);
            }
            Listing::Fresh { .. } if complete => self.fresh = self.fresh.max(newest),
            Listing::Sweep { until, .. } => {
                self.swept_at = Some(now);
                if complete {
                    self.settled = Some(until);
                }
            }
            _ => {}
        }
    }
}

/// Most pages one listing follows (a million machines at 1,000 a page); a listing that goes on
/// longer is a cursor gone wrong, and it ends as incomplete.
const MAX_PAGES: u32 = 1_000;

/// One pass at `now`: the listings `position` asks for, then a wake-up for every instance whose
/// machine no longer matches its record. `counts` gets the machines listed and instances woken.
pub async fn pass(
    fly: &FlyClient,
    db: &Db,
    config: &WatchConfig,
    position: &mut Position,
    now: DateTime<Utc>,
    counts: &mut WatchPass,
) -> Result<(), WatchError> {
    let overlap = chrono::Duration::from_std(config.overlap).unwrap_or_default();
    let mut seen: BTreeMap<Uuid, Vec<SeenMachine>> = BTreeMap::new();
    let mut read_to = Vec::new();
    for listing in position.listings(now, overlap) {
        let (newest, complete) = read(fly, config, listing, &mut seen, counts).await?;
        read_to.push((listing, newest, complete));
    }
    if !seen.is_empty() {
        counts.woken += wake_changed(db, &seen).await?;
    }
    // Only now: a pass that failed before its wake-ups reads the same changes again.
    for (listing, newest, complete) in read_to {
        position.advance(listing, newest, complete, now, overlap);
    }
    Ok(())
}

/// Reads one listing's pages into `seen`: (the newest change time seen, whether every page
/// answered in full). A sweep's pages (ordered by change time, then id, as Fly's keyset cursor
/// with `last_updated_at` and `last_machine_id` is) stop at the first one reaching past `until`.
async fn read(
    fly: &FlyClient,
    config: &WatchConfig,
    listing: Listing,
    seen: &mut BTreeMap<Uuid, Vec<SeenMachine>>,
    counts: &mut WatchPass,
) -> Result<(Option<DateTime<Utc>>, bool), WatchError> {
    let (after, until) = match listing {
        Listing::All => (None, None),
        Listing::Fresh { after } => (Some(after), None),
        Listing::Sweep { after, until } => (Some(after), Some(until)),
    };
    let updated_after = after.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let mut newest = None;
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
        let mut past_until = false;
        for m in page.machines.iter().filter_map(SeenMachine::from_listing) {
            if until.is_some_and(|u| m.updated_at.is_some_and(|t| t > u)) {
                past_until = true;
                continue;
            }
            newest = newest.max(m.updated_at);
            let machines = seen.entry(m.instance_uid).or_default();
            if !machines.contains(&m) {
                machines.push(m);
            }
        }
        if past_until {
            break;
        }
        // Fly's document allows an empty page before the end, so a new cursor is followed even
        // then; a cursor that does not move, or a listing longer than any fleet, ends it.
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
    Ok((newest, complete))
}

/// Wakes every instance whose machines as listed differ from its record; how many.
async fn wake_changed(db: &Db, seen: &BTreeMap<Uuid, Vec<SeenMachine>>) -> Result<u64, WatchError> {
    let uids: Vec<Uuid> = seen.keys().copied().collect();
    let recorded: HashMap<Uuid, RecordedMachine> =
        recorded_machines(db, &uids).await?.into_iter().collect();
    let mut stale = Vec::new();
    for (uid, machines) in seen {
        // A machine of an instance that no longer has a row is nobody's business here.
        let Some(record) = recorded.get(uid) else {
            continue;
        };
        if let Some(why) = needs_visit(record, machines) {
            tracing::info!(instance_uid = %uid, %why, "fleet watch: machine changed at Fly");
            stale.push(*uid);
        }
    }
    if stale.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    let woken = work::wake(&mut tx, &stale, "fly machine changed").await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(woken)
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

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const MINUTE: chrono::Duration = chrono::Duration::minutes(1);

    #[test]
    fn the_first_pass_lists_everything_then_only_what_is_new() {
        let mut p = Position::default();
        let now = at("2026-11-22T10:00:00Z");
        assert_eq!(p.listings(now, MINUTE), vec![Listing::All]);
        let newest = at("2026-11-22T09:59:58Z");
        p.advance(Listing::All, Some(newest), true, now, MINUTE);
        let later = at("2026-11-22T10:00:15Z");
        assert_eq!(
            p.listings(later, MINUTE),
            vec![Listing::Fresh { after: newest }]
        );
        // No machines at all yet: the next pass lists everything again.
        let mut empty = Position::default();
        empty.advance(Listing::All, None, true, now, MINUTE);
        assert_eq!(empty.listings(later, MINUTE), vec![Listing::All]);
    }

    #[test]
    fn a_sweep_rereads_only_what_settled_once_an_overlap() {
        let mut p = Position::default();
        let t0 = at("2026-11-22T10:00:00Z");
        p.advance(Listing::All, Some(t0), true, t0, MINUTE);
        let mut swept = Vec::new();
        let mut now = t0;
        for _ in 0..16 {
            now += chrono::Duration::seconds(15);
            for l in p.listings(now, MINUTE) {
                if let Listing::Sweep { after, until } = l {
                    swept.push((after, until));
                }
                p.advance(l, Some(now), true, now, MINUTE);
            }
        }
        // One sweep a minute, windows that join up without overlapping, each a minute behind.
        assert_eq!(swept.len(), 4, "{swept:?}");
        for pair in swept.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "{swept:?}");
        }
        assert_eq!(swept[0].0, t0 - MINUTE);
        assert_eq!(p.settled, Some(swept[3].1));
    }

    #[test]
    fn an_incomplete_listing_does_not_move_its_window() {
        let t0 = at("2026-11-22T10:00:00Z");
        let mut p = Position::default();
        p.advance(Listing::All, Some(t0), false, t0, MINUTE);
        assert_eq!(p, Position::default());
        p.advance(Listing::All, Some(t0), true, t0, MINUTE);
        let fresh = Listing::Fresh { after: t0 };
        let t1 = t0 + MINUTE;
        p.advance(fresh, Some(t1), false, t1, MINUTE);
        assert_eq!(p.fresh, Some(t0));
        let sweep = Listing::Sweep {
            after: t0 - MINUTE,
            until: t0,
        };
        p.advance(sweep, Some(t0), false, t1, MINUTE);
        assert_eq!(p.settled, Some(t0 - MINUTE), "read again at the next sweep");
        assert_eq!(p.swept_at, Some(t1));
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
