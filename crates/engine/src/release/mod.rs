//! The release worker (`docs/releases.md`): every replica runs one; the replica that gets the
//! running release's row lock steps it, in one transaction: read its members and the few
//! instances the step needs, [`plan`] the step, write the members' images (which enqueues their
//! reconciles), store the step. A crash anywhere rolls the whole step back, and the next step,
//! by any replica, plans from the same rows: a restart resumes exactly where it was.
//!
//! A release changes only `spec.image`; the reconciles it causes go through the same queue and
//! shared Fly budget as every other, so waves are paced under Fly's rate limits by the same
//! budget, and `maxUnavailable` bounds how many are in flight.

pub mod plan;

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use openclaws_model::conditions::{ConditionType, Reason};
use openclaws_model::release::{assign_waves, MemberState, OnHalt, ReleasePhase, ReleaseSpec};
use openclaws_model::selector::LabelSelector;
use openclaws_model::{ConditionStatus, InstanceStatus, Phase};
use openclaws_store::events::EventType;
use openclaws_store::releases::{self as store, ImageWrite, MemberRow, MemberUpdate, NewMember};
use openclaws_store::{Db, InstanceRecord, StoreError};

use crate::controller::listener::Wakeup;
use plan::{Change, InstanceView, Member, Rollout, Seen, Step};

/// What the worker reports; the telemetry crate turns it into metrics. Never fails.
pub trait ReleaseTelemetry: Send + Sync + std::fmt::Debug + 'static {
    /// The running release after a step, or `None` when none runs.
    fn release_progress(&self, progress: Option<ReleaseProgress<'_>>);
    /// A member moved to `to`.
    fn release_member_changed(&self, to: MemberState);
}

/// The running release as one step left it.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseProgress<'a> {
    pub phase: ReleasePhase,
    /// The wave being rolled (0: the canary).
    pub wave: u32,
    /// Members by state (every state, zeros included).
    pub members: &'a [(MemberState, i64)],
}

/// How often the worker looks.
#[derive(Debug, Clone)]
pub struct ReleaseConfig {
    /// Between two steps of a running release.
    pub poll: Duration,
    /// Between two looks for a new release while none runs and no notification can arrive (no
    /// listener); with one, [`IDLE_POLL`].
    pub idle_poll: Duration,
}

/// Between two looks for a new release while none runs and `NOTIFY openclaws_releases`
/// announces every release written: a look only in case a notification was lost.
pub const IDLE_POLL: Duration = Duration::from_secs(60);

impl Default for ReleaseConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            idle_poll: Duration::from_secs(5),
        }
    }
}

/// Errors of one step.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("release {0} has a malformed stored spec: {1}")]
    Corrupt(String, String),
}

/// Runs the worker until `shutdown`. `wakeup` is fed by `NOTIFY openclaws_releases` (a
/// release written) when a listener runs.
pub async fn run(
    pool: Db,
    telemetry: Arc<dyn ReleaseTelemetry>,
    config: ReleaseConfig,
    wakeup: Wakeup,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let running = step_running(&pool, telemetry.as_ref()).await;
        let pause = match running {
            Ok(true) => config.poll,
            Ok(false) => wakeup.pause(config.idle_poll, IDLE_POLL),
            Err(ref e) => {
                tracing::warn!(error = %e, "release step failed; retrying");
                config.poll
            }
        };
        // Only an idle worker waits for notifications: a running release's own steps write
        // the release and would wake it at once, faster than its pace.
        let idle = matches!(running, Ok(false));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wakeup.notified(), if idle => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Steps the running release once, if there is one and no other replica is stepping it;
/// whether one runs.
pub async fn step_running(
    pool: &Db,
    telemetry: &dyn ReleaseTelemetry,
) -> Result<bool, ReleaseError> {
    let Some(running) = store::running(pool).await? else {
        telemetry.release_progress(None);
        return Ok(false);
    };
    let mut tx = pool.begin().await?;
    if let Some(row) = store::lock(&mut tx, running.uid).await? {
        let spec: ReleaseSpec = serde_json::from_value(row.spec.0.clone())
            .map_err(|e| ReleaseError::Corrupt(row.name.clone(), e.to_string()))?;
        if row.phase == ReleasePhase::Pending.as_str() {
            start(&mut tx, &row, &spec).await?;
        } else {
            step(&mut tx, &row, &spec, telemetry).await?;
        }
    }
    tx.commit().await?;
    // Every replica reports the running release, whoever stepped it.
    let counts = store::counts(pool, running.uid).await?;
    report(pool, telemetry, &running.name, &counts).await;
    Ok(true)
}

async fn report(
    pool: &Db,
    telemetry: &dyn ReleaseTelemetry,
    name: &str,
    counts: &[(i32, String, i64)],
) {
    let Ok(Some(row)) = store::get(pool, name).await else {
        return;
    };
    let phase = ReleasePhase::parse(&row.phase).unwrap_or(ReleasePhase::Pending);
    let by_state: Vec<(MemberState, i64)> = MemberState::ALL
        .into_iter()
        .map(|s| {
            let n = counts
                .iter()
                .filter(|c| c.1 == s.as_str())
                .map(|c| c.2)
                .sum();
            (s, n)
        })
        .collect();
    telemetry.release_progress(Some(ReleaseProgress {
        phase,
        wave: row.wave as u32,
        members: &by_state,
    }));
}

/// Freezes the members: the candidates in name order, pinned ones only when named, each
/// given its wave; those already on the image are skipped at once.
async fn start(
    tx: &mut openclaws_store::Conn<'_>,
    row: &store::ReleaseRow,
    spec: &ReleaseSpec,
) -> Result<(), ReleaseError> {
    let selector = match &spec.selector {
        Some(text) => Some(
            LabelSelector::parse(text)
                .map_err(|e| ReleaseError::Corrupt(row.name.clone(), e.to_string()))?,
        ),
        None => None,
    };
    let candidates = store::candidates(&mut *tx, selector.as_ref(), &spec.instances).await?;
    let chosen: Vec<_> = candidates
        .into_iter()
        .filter(|c| !c.pinned || spec.instances.contains(&c.name))
        .collect();
    let waves = assign_waves(chosen.len(), &spec.strategy);
    let members: Vec<NewMember> = chosen
        .into_iter()
        .zip(waves)
        .map(|(c, wave)| {
            let already = c.image == spec.image;
            NewMember {
                instance_uid: c.uid,
                instance_name: c.name,
                wave: wave as i32,
                previous_image: c.image,
                state: if already { "Skipped" } else { "Pending" },
                message: if already {
                    "it already had the release's image".to_owned()
                } else {
                    String::new()
                },
            }
        })
        .collect();
    store::insert_members(tx, row.uid, &members).await?;
    let message = format!("{} instance(s) chosen", members.len());
    store::save_progress(
        tx,
        row.uid,
        ReleasePhase::Progressing.as_str(),
        0,
        &message,
        false,
    )
    .await?;
    store::event(
        &mut *tx,
        row.uid,
        EventType::Normal,
        "Started",
        &message,
        None,
    )
    .await?;
    Ok(())
}

/// One planned step, stored.
async fn step(
    tx: &mut openclaws_store::Conn<'_>,
    row: &store::ReleaseRow,
    spec: &ReleaseSpec,
    telemetry: &dyn ReleaseTelemetry,
) -> Result<(), ReleaseError> {
    let rows = store::members(&mut *tx, row.uid).await?;
    let members: Vec<Member> = rows.iter().map(member).collect();
    let now: DateTime<Utc> = openclaws_store::instances::db_now(&mut *tx).await?;
    let rollout = Rollout {
        phase: ReleasePhase::parse(&row.phase).unwrap_or(ReleasePhase::Progressing),
        wave: row.wave as u32,
        paused: row.paused,
        abort: row.abort.as_deref().and_then(OnHalt::parse),
        strategy: &spec.strategy,
        image: &spec.image,
        now,
    };
    let seen = look(tx, &rollout, &members, &rows).await?;
    let planned = plan::plan(&rollout, &members, &seen);
    for change in &planned.changes {
        apply(tx, row, &rows[change.index], change).await?;
        telemetry.release_member_changed(change.to);
    }
    save(tx, row, &rollout, &planned).await
}

fn member(row: &MemberRow) -> Member {
    Member {
        name: row.instance_name.clone(),
        wave: row.wave as u32,
        state: MemberState::parse(&row.state).unwrap_or(MemberState::Pending),
        previous_image: row.previous_image.clone(),
        generation: row.generation,
        deadline: row.deadline,
    }
}

/// Reads the instances the step needs.
async fn look(
    tx: &mut openclaws_store::Conn<'_>,
    rollout: &Rollout<'_>,
    members: &[Member],
    rows: &[MemberRow],
) -> Result<Vec<Seen>, ReleaseError> {
    let wanted = plan::wanted(rollout, members);
    let uids: Vec<Uuid> = wanted.iter().map(|i| rows[*i].instance_uid).collect();
    let records = store::instances_by_uid(&mut *tx, &uids).await?;
    let mut seen = vec![Seen::NotLoaded; members.len()];
    for i in wanted {
        let record = records.iter().find(|r| r.uid == rows[i].instance_uid);
        seen[i] = match record {
            Some(r) if r.deletion_timestamp.is_none() => Seen::Found(view(r)),
            _ => Seen::Gone,
        };
    }
    Ok(seen)
}

/// What a health gate needs of an instance row.
pub fn view(record: &InstanceRecord) -> InstanceView {
    let status: InstanceStatus =
        serde_json::from_value(record.status.0.clone()).unwrap_or_default();
    let ready = status
        .condition(ConditionType::Ready)
        .is_some_and(|c| c.status == ConditionStatus::True)
        || status.phase == Phase::Stopped;
    InstanceView {
        paused: record.spec.0["paused"].as_bool().unwrap_or(false),
        spec_image: record.spec.0["image"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        generation: record.generation,
        observed_generation: record.observed_generation,
        ready,
        running_image: status.fly.as_ref().and_then(|f| f.image.clone()),
        failing: failing(&status),
    }
}

/// Why an instance is failing, in words: a crash loop, or the `Failed` phase.
fn failing(status: &InstanceStatus) -> Option<String> {
    let machine = status.condition(ConditionType::MachineReady);
    if machine.is_some_and(|c| c.reason == Reason::CrashLooping) {
        return Some("the machine is crash looping".to_owned());
    }
    if machine.is_some_and(|c| c.reason == Reason::OutOfMemory) {
        return Some("the machine runs out of memory".to_owned());
    }
    if status.phase == Phase::Failed {
        let why = status.last_error.as_ref().map(|e| e.message.as_str());
        return Some(format!(
            "the instance failed: {}",
            why.unwrap_or("no detail")
        ));
    }
    None
}

/// Stores one member's change, writing its instance's image first when the change says so.
async fn apply(
    tx: &mut openclaws_store::Conn<'_>,
    row: &store::ReleaseRow,
    member: &MemberRow,
    change: &Change,
) -> Result<(), ReleaseError> {
    let mut to = change.to;
    let mut message = change.message.clone();
    let mut generation = None;
    if let Some(image) = &change.write_image {
        let reason = match to {
            MemberState::RollingBack => "ReleaseRollingBack",
            _ => "ReleaseUpdating",
        };
        let (uid, name) = (member.instance_uid, &member.instance_name);
        match store::write_image(tx, uid, name, image, &row.name, reason).await? {
            ImageWrite::Written(g) => generation = Some(g),
            ImageWrite::Gone => {
                to = MemberState::Skipped;
                message = "the instance was deleted".to_owned();
            }
        }
    }
    let update = MemberUpdate {
        instance_uid: member.instance_uid,
        state: to.as_str(),
        message: &message,
        generation,
        deadline: change.deadline.filter(|_| generation.is_some()),
        previous_image: change.previous_image.as_deref(),
        finished: !matches!(to, MemberState::Updating | MemberState::RollingBack),
    };
    store::update_member(tx, row.uid, &update).await?;
    if matches!(to, MemberState::Failed | MemberState::RollbackFailed) {
        let text = format!("{}: {message}", member.instance_name);
        store::event(
            &mut *tx,
            row.uid,
            EventType::Warning,
            to.as_str(),
            &text,
            None,
        )
        .await?;
    }
    Ok(())
}

/// Stores the step's phase, wave and message, with an event when the phase or wave moved.
async fn save(
    tx: &mut openclaws_store::Conn<'_>,
    row: &store::ReleaseRow,
    rollout: &Rollout<'_>,
    planned: &Step,
) -> Result<(), ReleaseError> {
    let moved = planned.phase != rollout.phase || planned.wave != rollout.wave;
    let message = match (planned.message.is_empty(), planned.phase) {
        (true, _) => row.message.clone(),
        (false, ReleasePhase::RolledBack) => format!("{} ({})", planned.message, row.message),
        (false, _) => planned.message.clone(),
    };
    let finished = planned.phase.is_finished();
    store::save_progress(
        tx,
        row.uid,
        planned.phase.as_str(),
        planned.wave as i32,
        &message,
        finished,
    )
    .await?;
    if moved {
        let type_ = match planned.phase {
            ReleasePhase::Halted | ReleasePhase::RollingBack | ReleasePhase::RolledBack => {
                EventType::Warning
            }
            _ => EventType::Normal,
        };
        let text = format!(
            "{} (wave {}): {message}",
            planned.phase.as_str(),
            planned.wave
        );
        store::event(
            &mut *tx,
            row.uid,
            type_,
            planned.phase.as_str(),
            &text,
            None,
        )
        .await?;
    }
    Ok(())
}
