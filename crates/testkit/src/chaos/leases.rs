//! The lease log: every change of a work lease, written by a trigger the harness adds to the
//! controllers' database (the harness owns it; the controllers' schema is untouched). From it
//! the checks know, for any moment, which replica held an instance's lease until when, and
//! each tenure (a claim until its release, its takeover or its lapse).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// The table and trigger recording every change of `work.lease_owner`, `lease_expires_at` and
/// `claimed_at` (and a row's deletion) with the database's clock at the change.
const INSTALL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS chaos_lease_log ( \
         id bigserial PRIMARY KEY, \
         at timestamptz NOT NULL DEFAULT clock_timestamp(), \
         instance_uid uuid NOT NULL, \
         op text NOT NULL, \
         lease_owner text, \
         lease_expires_at timestamptz, \
         claimed_at timestamptz)",
    "CREATE OR REPLACE FUNCTION chaos_log_lease() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
         IF TG_OP = 'DELETE' THEN \
             INSERT INTO chaos_lease_log (instance_uid, op) VALUES (OLD.instance_uid, 'DELETE'); \
             RETURN OLD; \
         END IF; \
         IF TG_OP = 'INSERT' \
             OR NEW.lease_owner IS DISTINCT FROM OLD.lease_owner \
             OR NEW.lease_expires_at IS DISTINCT FROM OLD.lease_expires_at \
             OR NEW.claimed_at IS DISTINCT FROM OLD.claimed_at THEN \
             INSERT INTO chaos_lease_log (instance_uid, op, lease_owner, lease_expires_at, claimed_at) \
             VALUES (NEW.instance_uid, TG_OP, NEW.lease_owner, NEW.lease_expires_at, NEW.claimed_at); \
         END IF; \
         RETURN NEW; \
     END $$",
    "DROP TRIGGER IF EXISTS chaos_lease_log ON work",
    "CREATE TRIGGER chaos_lease_log AFTER INSERT OR UPDATE OR DELETE ON work \
     FOR EACH ROW EXECUTE FUNCTION chaos_log_lease()",
];

/// Adds the lease log to a migrated controllers' database.
pub async fn install(pool: &PgPool) -> Result<(), sqlx::Error> {
    for statement in INSTALL {
        sqlx::query(statement).execute(pool).await?;
    }
    Ok(())
}

/// One change of an instance's lease.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LeaseRow {
    /// When (the database's clock).
    pub at: DateTime<Utc>,
    /// Whose instance.
    pub instance_uid: Uuid,
    /// `INSERT`, `UPDATE` or `DELETE` (the row went with its instance).
    pub op: String,
    /// The holder after the change.
    pub lease_owner: Option<String>,
    /// Until when it holds it.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the holder claimed it (a new value is a new tenure).
    pub claimed_at: Option<DateTime<Utc>>,
}

/// How a tenure ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenureEnd {
    /// The holder gave the lease back (a finished reconcile) or deleted the row (teardown done).
    Released,
    /// The lease lapsed before anyone else claimed it, or another replica claimed it after it
    /// lapsed: the holder lost it.
    Lost,
    /// Still held when the log was read.
    Open,
}

/// One holder's claim on one instance, until it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenure {
    /// The instance.
    pub instance_uid: Uuid,
    /// The holder (a replica incarnation's lease owner).
    pub owner: String,
    /// When it was claimed.
    pub start: DateTime<Utc>,
    /// When the log shows it ended (released, taken over) or lapsed.
    pub end: DateTime<Utc>,
    /// The last expiry the holder reached.
    pub expires: DateTime<Utc>,
    /// How it ended.
    pub how: TenureEnd,
}

/// The whole log, by instance.
#[derive(Debug, Default)]
pub struct LeaseLog {
    rows: HashMap<Uuid, Vec<LeaseRow>>,
}

impl LeaseLog {
    /// Reads the log.
    pub async fn load(pool: &PgPool) -> Result<LeaseLog, sqlx::Error> {
        let rows: Vec<LeaseRow> = sqlx::query_as(
            "SELECT at, instance_uid, op, lease_owner, lease_expires_at, claimed_at \
             FROM chaos_lease_log ORDER BY id",
        )
        .fetch_all(pool)
        .await?;
        Ok(Self::from_rows(rows))
    }

    /// A log of these rows (in the order they were written).
    pub fn from_rows(rows: Vec<LeaseRow>) -> LeaseLog {
        let mut by_uid: HashMap<Uuid, Vec<LeaseRow>> = HashMap::new();
        for row in rows {
            by_uid.entry(row.instance_uid).or_default().push(row);
        }
        LeaseLog { rows: by_uid }
    }

    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Who held the instance's lease at `t` and until when, by the last change at or before
    /// `t`; `None` when nobody did.
    pub fn holder_at(&self, uid: Uuid, t: DateTime<Utc>) -> Option<(String, DateTime<Utc>)> {
        let rows = self.rows.get(&uid)?;
        let last = rows.iter().rev().find(|r| r.at <= t)?;
        match (&last.lease_owner, last.lease_expires_at) {
            (Some(owner), Some(expires)) if last.op != "DELETE" => Some((owner.clone(), expires)),
            _ => None,
        }
    }

    /// When the instance's queue row went with its row (teardown finished).
    pub fn deleted_at(&self, uid: Uuid) -> Option<DateTime<Utc>> {
        self.rows
            .get(&uid)?
            .iter()
            .find(|r| r.op == "DELETE")
            .map(|r| r.at)
    }

    /// Every tenure, in claim order per instance; `now` ends the open ones.
    pub fn tenures(&self, now: DateTime<Utc>) -> Vec<Tenure> {
        let mut out = Vec::new();
        for (uid, rows) in &self.rows {
            let mut current: Option<Tenure> = None;
            for row in rows {
                let same = current.as_ref().is_some_and(|t| {
                    row.op != "DELETE"
                        && row.lease_owner.as_deref() == Some(t.owner.as_str())
                        && row.claimed_at == Some(t.start)
                });
                if same {
                    if let (Some(t), Some(e)) = (current.as_mut(), row.lease_expires_at) {
                        t.expires = t.expires.max(e);
                    }
                    continue;
                }
                if let Some(mut t) = current.take() {
                    let released = row.op == "DELETE" || row.lease_owner.is_none();
                    t.how = if released && row.at <= t.expires {
                        TenureEnd::Released
                    } else {
                        TenureEnd::Lost
                    };
                    t.end = if t.how == TenureEnd::Lost {
                        t.expires.min(row.at)
                    } else {
                        row.at
                    };
                    out.push(t);
                }
                if let (Some(owner), Some(claimed), Some(expires), false) = (
                    &row.lease_owner,
                    row.claimed_at,
                    row.lease_expires_at,
                    row.op == "DELETE",
                ) {
                    current = Some(Tenure {
                        instance_uid: *uid,
                        owner: owner.clone(),
                        start: claimed,
                        end: expires,
                        expires,
                        how: TenureEnd::Open,
                    });
                }
            }
            if let Some(mut t) = current {
                if t.expires < now {
                    t.how = TenureEnd::Lost;
                    t.end = t.expires;
                }
                out.push(t);
            }
        }
        out.sort_by_key(|t| (t.instance_uid, t.start));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn row(
        t0: DateTime<Utc>,
        ms: i64,
        op: &str,
        owner: Option<&str>,
        claimed_ms: Option<i64>,
        expires_ms: Option<i64>,
    ) -> LeaseRow {
        LeaseRow {
            at: t0 + Duration::milliseconds(ms),
            instance_uid: Uuid::nil(),
            op: op.to_owned(),
            lease_owner: owner.map(str::to_owned),
            lease_expires_at: expires_ms.map(|e| t0 + Duration::milliseconds(e)),
            claimed_at: claimed_ms.map(|c| t0 + Duration::milliseconds(c)),
        }
    }

    #[test]
    fn tenures_and_holders_follow_the_log() {
        let t0 = Utc::now();
        let at = |ms| t0 + Duration::milliseconds(ms);
        let log = LeaseLog::from_rows(vec![
            row(t0, 0, "INSERT", None, None, None),
            // A claims, extends, releases.
            row(t0, 100, "UPDATE", Some("a"), Some(100), Some(4100)),
            row(t0, 1000, "UPDATE", Some("a"), Some(100), Some(5000)),
            row(t0, 2000, "UPDATE", None, Some(100), None),
            // B claims, is frozen past its expiry, C takes over, then the row goes.
            row(t0, 3000, "UPDATE", Some("b"), Some(3000), Some(7000)),
            row(t0, 9000, "UPDATE", Some("c"), Some(9000), Some(13000)),
            row(t0, 9500, "DELETE", None, None, None),
        ]);
        let tenures = log.tenures(at(20_000));
        let ends: Vec<_> = tenures.iter().map(|t| (t.owner.as_str(), t.how)).collect();
        assert_eq!(
            ends,
            vec![
                ("a", TenureEnd::Released),
                ("b", TenureEnd::Lost),
                ("c", TenureEnd::Released)
            ]
        );
        assert_eq!(tenures[1].end, at(7000));
        assert_eq!(
            log.holder_at(Uuid::nil(), at(1500)),
            Some(("a".into(), at(5000)))
        );
        assert_eq!(log.holder_at(Uuid::nil(), at(2500)), None);
        // B's row still names it after its lapse; the expiry says it no longer holds it.
        assert_eq!(
            log.holder_at(Uuid::nil(), at(8000)),
            Some(("b".into(), at(7000)))
        );
        assert_eq!(log.holder_at(Uuid::nil(), at(9600)), None);
    }
}
