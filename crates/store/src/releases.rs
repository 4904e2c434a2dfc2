//! Releases (`docs/releases.md`): the release rows, their frozen members and their history, and
//! the one write a release makes to an instance (its `spec.image`, as the release field
//! manager, with the work and the audited event in the same transaction).

use chrono::{DateTime, Utc};
use openclaws_model::managed::Managed;
use openclaws_model::release::RELEASE_MANAGER;
use openclaws_model::selector::LabelSelector;
use serde_json::Value;
use sqlx::{FromRow, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use super::events::{self, Audit, EventType, NewEvent};
use super::instances::{self, push_label_requirement};
use super::records::{InstanceRecord, INSTANCE_COLUMNS};
use super::{work, Conn, StoreError};

/// One `releases` row.
#[derive(Debug, Clone, FromRow)]
pub struct ReleaseRow {
    pub uid: Uuid,
    pub name: String,
    pub spec: sqlx::types::Json<Value>,
    pub phase: String,
    pub wave: i32,
    pub message: String,
    pub paused: bool,
    pub abort: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "uid, name, spec, phase, wave, message, paused, abort, created_by, \
                       created_at, started_at, finished_at, updated_at";

/// Why a release could not be created.
#[derive(Debug)]
pub enum Created {
    Ok(ReleaseRow),
    /// A release of this name exists.
    NameTaken,
    /// Another release is running (its name).
    AnotherRunning(String),
}

/// Creates a release (phase `Pending`; the worker chooses its members).
pub async fn create(
    conn: &mut Conn<'_>,
    name: &str,
    spec: &Value,
    created_by: &str,
) -> Result<Created, StoreError> {
    let row = sqlx::query_as::<_, ReleaseRow>(&format!(
        "INSERT INTO releases (uid, name, spec, created_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(sqlx::types::Json(spec))
    .bind(created_by)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        event(
            &mut *conn,
            row.uid,
            EventType::Normal,
            "Created",
            &format!("created by {created_by}"),
            Some(created_by),
        )
        .await?;
        return Ok(Created::Ok(row));
    }
    if get(&mut *conn, name).await?.is_some() {
        return Ok(Created::NameTaken);
    }
    match running(&mut *conn).await? {
        Some(other) => Ok(Created::AnotherRunning(other.name)),
        // The other release finished in between: the caller may try again.
        None => Ok(Created::AnotherRunning(String::new())),
    }
}

/// One release by name.
pub async fn get(db: impl PgExecutor<'_>, name: &str) -> Result<Option<ReleaseRow>, StoreError> {
    let row =
        sqlx::query_as::<_, ReleaseRow>(&format!("SELECT {COLUMNS} FROM releases WHERE name = $1"))
            .bind(name)
            .fetch_optional(db)
            .await?;
    Ok(row)
}

/// Releases, newest first.
pub async fn list(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<ReleaseRow>, StoreError> {
    let rows = sqlx::query_as::<_, ReleaseRow>(&format!(
        "SELECT {COLUMNS} FROM releases ORDER BY created_at DESC, name LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// The image of the newest completed fleet-wide release (no selector, no named instances):
/// what a new instance that sets no image runs.
pub async fn fleet_image(db: impl PgExecutor<'_>) -> Result<Option<String>, StoreError> {
    let image = sqlx::query_scalar(
        "SELECT spec->>'image' FROM releases \
         WHERE phase = 'Completed' AND NOT spec ? 'selector' AND NOT spec ? 'instances' \
         ORDER BY finished_at DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
    Ok(image)
}

/// The running release, if any (at most one: a unique index says so).
pub async fn running(db: impl PgExecutor<'_>) -> Result<Option<ReleaseRow>, StoreError> {
    let row = sqlx::query_as::<_, ReleaseRow>(&format!(
        "SELECT {COLUMNS} FROM releases WHERE finished_at IS NULL"
    ))
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// The release row locked for one step; `None` when another replica is stepping it (or it
/// finished meanwhile).
pub async fn lock(tx: &mut Conn<'_>, uid: Uuid) -> Result<Option<ReleaseRow>, StoreError> {
    let row = sqlx::query_as::<_, ReleaseRow>(&format!(
        "SELECT {COLUMNS} FROM releases WHERE uid = $1 AND finished_at IS NULL \
         FOR UPDATE SKIP LOCKED"
    ))
    .bind(uid)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row)
}

/// An operator's request on a running release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Pause,
    Resume,
    /// Abort, with `Rollback` or `Stop`.
    Abort(&'static str),
}

/// Records `request` on the running release `name` and its event; `None` when there is no
/// such release or it has finished.
pub async fn request(
    conn: &mut Conn<'_>,
    name: &str,
    request: Request,
    actor: &str,
) -> Result<Option<ReleaseRow>, StoreError> {
    let (paused, abort, reason, message) = match request {
        Request::Pause => (
            Some(true),
            None,
            "PauseRequested",
            "pause requested".to_owned(),
        ),
        Request::Resume => (
            Some(false),
            None,
            "ResumeRequested",
            "resume requested".to_owned(),
        ),
        Request::Abort(action) => (
            None,
            Some(action),
            "AbortRequested",
            format!("abort requested ({action})"),
        ),
    };
    let row = sqlx::query_as::<_, ReleaseRow>(&format!(
        "UPDATE releases SET paused = COALESCE($2, paused), abort = COALESCE($3, abort), \
             updated_at = now() \
         WHERE name = $1 AND finished_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(name)
    .bind(paused)
    .bind(abort)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = &row {
        let message = format!("{message} by {actor}");
        event(
            &mut *conn,
            row.uid,
            EventType::Normal,
            reason,
            &message,
            Some(actor),
        )
        .await?;
    }
    Ok(row)
}

/// Stores a step's phase, wave and message; a finished phase sets `finished_at`.
pub async fn save_progress(
    tx: &mut Conn<'_>,
    uid: Uuid,
    phase: &str,
    wave: i32,
    message: &str,
    finished: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE releases SET phase = $2, wave = $3, message = $4, updated_at = now(), \
             started_at = COALESCE(started_at, now()), \
             finished_at = CASE WHEN $5 THEN now() ELSE NULL END \
         WHERE uid = $1",
    )
    .bind(uid)
    .bind(phase)
    .bind(wave)
    .bind(message)
    .bind(finished)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One `release_members` row.
#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub instance_uid: Uuid,
    pub instance_name: String,
    pub position: i32,
    pub wave: i32,
    pub previous_image: String,
    pub state: String,
    pub generation: Option<i64>,
    pub started_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub message: String,
}

const MEMBER_COLUMNS: &str = "instance_uid, instance_name, position, wave, previous_image, \
                              state, generation, started_at, deadline, finished_at, message";

/// A member to freeze into a release.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub instance_uid: Uuid,
    pub instance_name: String,
    pub wave: i32,
    pub previous_image: String,
    /// `Pending`, or `Skipped` with its message.
    pub state: &'static str,
    pub message: String,
}

/// Inserts the members in one statement (positions in the given order).
pub async fn insert_members(
    tx: &mut Conn<'_>,
    release: Uuid,
    members: &[NewMember],
) -> Result<(), StoreError> {
    let column = |f: fn(&NewMember) -> String| members.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO release_members \
             (release_uid, instance_uid, instance_name, position, wave, previous_image, state, \
              message, finished_at) \
         SELECT $1, u, n, p::int - 1, w, i, s, m, CASE WHEN s = 'Pending' THEN NULL ELSE now() END \
         FROM UNNEST($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[]) \
              WITH ORDINALITY AS t(u, n, w, i, s, m, p)",
    )
    .bind(release)
    .bind(members.iter().map(|m| m.instance_uid).collect::<Vec<_>>())
    .bind(column(|m| m.instance_name.clone()))
    .bind(members.iter().map(|m| m.wave).collect::<Vec<_>>())
    .bind(column(|m| m.previous_image.clone()))
    .bind(column(|m| m.state.to_owned()))
    .bind(column(|m| m.message.clone()))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A release's members in order.
pub async fn members(db: impl PgExecutor<'_>, release: Uuid) -> Result<Vec<MemberRow>, StoreError> {
    let rows = sqlx::query_as::<_, MemberRow>(&format!(
        "SELECT {MEMBER_COLUMNS} FROM release_members WHERE release_uid = $1 ORDER BY position"
    ))
    .bind(release)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// A page of a release's members in order, optionally only those in `state`.
pub async fn members_page(
    db: impl PgExecutor<'_>,
    release: Uuid,
    state: Option<&str>,
    after_position: i32,
    limit: i64,
) -> Result<Vec<MemberRow>, StoreError> {
    let rows = sqlx::query_as::<_, MemberRow>(&format!(
        "SELECT {MEMBER_COLUMNS} FROM release_members \
         WHERE release_uid = $1 AND ($2::text IS NULL OR state = $2) AND position > $3 \
         ORDER BY position LIMIT $4"
    ))
    .bind(release)
    .bind(state)
    .bind(after_position)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Members per wave and state: `(wave, state, count)`.
pub async fn counts(
    db: impl PgExecutor<'_>,
    release: Uuid,
) -> Result<Vec<(i32, String, i64)>, StoreError> {
    let rows = sqlx::query_as::<_, (i32, String, i64)>(
        "SELECT wave, state, count(*) FROM release_members WHERE release_uid = $1 \
         GROUP BY wave, state ORDER BY wave, state",
    )
    .bind(release)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// A member's new state after a step.
#[derive(Debug, Clone)]
pub struct MemberUpdate<'a> {
    pub instance_uid: Uuid,
    pub state: &'a str,
    pub message: &'a str,
    /// Set on a start or a rollback: the generation the image write made.
    pub generation: Option<i64>,
    pub deadline: Option<DateTime<Utc>>,
    /// Set on a start: the image the instance ran before.
    pub previous_image: Option<&'a str>,
    /// The member is done (no more judging).
    pub finished: bool,
}

/// Stores one member's change.
pub async fn update_member(
    tx: &mut Conn<'_>,
    release: Uuid,
    update: &MemberUpdate<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE release_members SET state = $3, message = $4, \
             generation = COALESCE($5, generation), deadline = COALESCE($6, deadline), \
             previous_image = COALESCE($7, previous_image), \
             started_at = CASE WHEN $5 IS NOT NULL THEN now() ELSE started_at END, \
             finished_at = CASE WHEN $8 THEN now() ELSE NULL END \
         WHERE release_uid = $1 AND instance_uid = $2",
    )
    .bind(release)
    .bind(update.instance_uid)
    .bind(update.state)
    .bind(update.message)
    .bind(update.generation)
    .bind(update.deadline)
    .bind(update.previous_image)
    .bind(update.finished)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One `release_events` row.
#[derive(Debug, Clone, FromRow)]
pub struct ReleaseEvent {
    pub id: i64,
    #[sqlx(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Appends one event to a release's history.
pub async fn event(
    db: impl PgExecutor<'_>,
    release: Uuid,
    type_: EventType,
    reason: &str,
    message: &str,
    actor: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO release_events (release_uid, type, reason, message, actor) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(release)
    .bind(type_.as_str())
    .bind(reason)
    .bind(message)
    .bind(actor)
    .execute(db)
    .await?;
    Ok(())
}

/// A release's newest events, newest first.
pub async fn events(
    db: impl PgExecutor<'_>,
    release: Uuid,
    limit: i64,
) -> Result<Vec<ReleaseEvent>, StoreError> {
    let rows = sqlx::query_as::<_, ReleaseEvent>(
        "SELECT id, type, reason, message, actor, created_at FROM release_events \
         WHERE release_uid = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(release)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// An instance a release could cover, as membership needs it.
#[derive(Debug, Clone, FromRow)]
pub struct Candidate {
    pub uid: Uuid,
    pub name: String,
    pub image: String,
    /// A manager other than the release controller owns `spec.image`.
    pub pinned: bool,
}

/// The instances (not being deleted) that match `selector` or are named in `names`, ordered
/// by name: membership is decided from these (pinned ones only when named).
pub async fn candidates(
    db: impl PgExecutor<'_>,
    selector: Option<&LabelSelector>,
    names: &[String],
) -> Result<Vec<Candidate>, StoreError> {
    let mut query = QueryBuilder::<Postgres>::new(
        "SELECT uid, name, spec->>'image' AS image, EXISTS ( \
             SELECT 1 FROM jsonb_each(managed_fields) AS m \
             WHERE m.key <> ",
    );
    query.push_bind(RELEASE_MANAGER).push(
        " AND m.value ? '/spec/image') AS pinned \
               FROM instances WHERE deletion_timestamp IS NULL AND (",
    );
    match selector {
        Some(selector) => {
            query.push("(true");
            for requirement in selector.requirements() {
                query.push(" AND ");
                push_label_requirement(&mut query, requirement);
            }
            query.push(")");
        }
        None => {
            query.push(if names.is_empty() { "true" } else { "false" });
        }
    }
    query
        .push(" OR name = ANY(")
        .push_bind(names.to_vec())
        .push(")) ORDER BY name COLLATE \"C\"");
    let rows = query.build_query_as::<Candidate>().fetch_all(db).await?;
    Ok(rows)
}

/// Which of `names` are instances not being deleted (a release's named instances must be).
pub async fn existing_names(
    db: impl PgExecutor<'_>,
    names: &[String],
) -> Result<Vec<String>, StoreError> {
    let found = sqlx::query_scalar(
        "SELECT name FROM instances WHERE name = ANY($1) AND deletion_timestamp IS NULL",
    )
    .bind(names)
    .fetch_all(db)
    .await?;
    Ok(found)
}

/// The instance rows of `uids` that exist (any order).
pub async fn instances_by_uid(
    db: impl PgExecutor<'_>,
    uids: &[Uuid],
) -> Result<Vec<InstanceRecord>, StoreError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query_as::<_, InstanceRecord>(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances WHERE uid = ANY($1)"
    ))
    .bind(uids)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// What a release's image write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageWrite {
    /// Written: the instance's new generation.
    Written(i64),
    /// The instance is gone, being deleted, or is another instance of the same name now.
    Gone,
}

/// Sets `spec.image` of instance `uid` to `image` as the release field manager (taking
/// ownership of the field), bumps its generation, enqueues its reconcile and records an
/// audited event, all in `tx`.
pub async fn write_image(
    tx: &mut Conn<'_>,
    uid: Uuid,
    name: &str,
    image: &str,
    release: &str,
    reason: &str,
) -> Result<ImageWrite, StoreError> {
    let Some(record) = instances::get_for_update(tx, name).await? else {
        return Ok(ImageWrite::Gone);
    };
    if record.uid != uid || record.deletion_timestamp.is_some() {
        return Ok(ImageWrite::Gone);
    }
    let mut spec = record.spec.0.clone();
    spec["image"] = Value::String(image.to_owned());
    let managed = owned_by_release(&record.managed_fields.0);
    let updated = instances::update_desired(
        &mut *tx,
        uid,
        record.resource_version,
        &record.labels.0,
        &spec,
        true,
        &managed,
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("instance {name} changed under its row lock")))?;
    work::enqueue_now(tx, uid, reason).await?;
    let message = format!(
        "release {release} set spec.image to {image}; generation is now {}",
        updated.generation
    );
    let audit = Audit {
        actor: format!("release/{release}"),
        field_manager: Some(RELEASE_MANAGER.to_owned()),
        changed_fields: Some(vec!["/spec/image".to_owned()]),
    };
    let event = NewEvent {
        instance_uid: uid,
        instance_name: name,
        type_: EventType::Normal,
        reason,
        message: &message,
        generation: Some(updated.generation),
    };
    events::append_audited(&mut *tx, &event, &audit).await?;
    Ok(ImageWrite::Written(updated.generation))
}

/// `managed` with `/spec/image` owned by the release manager alone.
fn owned_by_release(managed: &Managed) -> Managed {
    let mut out = managed.clone();
    for fields in out.values_mut() {
        fields.remove("/spec/image");
    }
    out.retain(|_, fields| !fields.is_empty());
    out.entry(RELEASE_MANAGER.to_owned())
        .or_default()
        .insert("/spec/image".to_owned());
    out
}
