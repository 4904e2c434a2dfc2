//! What the harness watches while the run goes on: the simulator's duplicates (more than one
//! live machine or volume in one of our apps, from `/_sim/orphans` every second), the DNS
//! records' ids (so a delete by id can be traced to its instance), and every instance's
//! generation, observed generation and phase (from the database twice a second).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A duplicate seen at the simulator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duplicate {
    /// The app.
    pub app: String,
    /// `machine` or `volume`.
    pub kind: String,
    /// The resource beyond the first.
    pub id: String,
}

/// An instance's row at one moment.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RowSample {
    /// Its uid.
    pub uid: Uuid,
    /// Its name.
    pub name: String,
    /// `generation`.
    pub generation: i64,
    /// `observed_generation`.
    pub observed_generation: i64,
    /// `phase`.
    pub phase: String,
    /// Whether deletion was requested.
    pub deleting: bool,
}

/// An instance's row each time it changed (`None`: it was gone).
pub type RowHistory = Vec<(DateTime<Utc>, Option<RowSample>)>;

/// Everything sampled, shared with the checks.
#[derive(Debug, Default)]
pub struct Samples {
    /// Every distinct duplicate, with when it was first seen.
    pub duplicates: Vec<(DateTime<Utc>, Duplicate)>,
    /// Samples of `/_sim/orphans` taken.
    pub orphan_samples: u64,
    /// DNS record id → (name, comment), from every record ever seen.
    pub dns_ids: HashMap<String, (String, String)>,
    /// Per instance, its row each time it changed (and when it disappeared: `None`).
    pub rows: HashMap<Uuid, RowHistory>,
    /// Database samples taken (and failed: the database was down).
    pub row_samples: (u64, u64),
}

/// Runs the samplers until `stop`.
pub async fn run(
    http: reqwest::Client,
    sim_url: String,
    pool: PgPool,
    samples: Arc<Mutex<Samples>>,
    stop: CancellationToken,
) {
    let sim = sample_sim(http, sim_url, samples.clone(), stop.clone());
    let db = sample_db(pool, samples, stop);
    tokio::join!(sim, db);
}

fn lock(samples: &Mutex<Samples>) -> std::sync::MutexGuard<'_, Samples> {
    samples.lock().unwrap_or_else(|e| e.into_inner())
}

async fn sample_sim(
    http: reqwest::Client,
    sim_url: String,
    samples: Arc<Mutex<Samples>>,
    stop: CancellationToken,
) {
    let mut seen = BTreeSet::new();
    loop {
        let now = Utc::now();
        if let Some(report) = get(&http, &format!("{sim_url}/_sim/orphans")).await {
            let found = duplicates(&report);
            let mut s = lock(&samples);
            s.orphan_samples += 1;
            for d in found {
                if seen.insert(d.clone()) {
                    s.duplicates.push((now, d));
                }
            }
        }
        if let Some(dns) = get(&http, &format!("{sim_url}/_sim/dns")).await {
            let mut s = lock(&samples);
            for r in dns["records"].as_array().into_iter().flatten() {
                if let (Some(id), Some(name)) = (r["id"].as_str(), r["name"].as_str()) {
                    let comment = r["comment"].as_str().unwrap_or_default().to_owned();
                    s.dns_ids.insert(id.to_owned(), (name.to_owned(), comment));
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn get(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// The duplicates in an orphan report: a second live machine or volume in one of our apps.
pub fn duplicates(report: &Value) -> Vec<Duplicate> {
    report["orphans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| {
            o["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("more than one"))
        })
        .map(|o| Duplicate {
            app: o["app"].as_str().unwrap_or_default().to_owned(),
            kind: o["kind"].as_str().unwrap_or_default().to_owned(),
            id: o["id"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

async fn sample_db(pool: PgPool, samples: Arc<Mutex<Samples>>, stop: CancellationToken) {
    let mut last: HashMap<Uuid, RowSample> = HashMap::new();
    loop {
        let now = Utc::now();
        let rows = sqlx::query_as::<_, RowSample>(
            "SELECT uid, name, generation, observed_generation, phase, \
                 deletion_timestamp IS NOT NULL AS deleting FROM instances",
        )
        .fetch_all(&pool)
        .await;
        {
            let mut s = lock(&samples);
            match rows {
                Ok(rows) => {
                    s.row_samples.0 += 1;
                    let mut present = HashMap::new();
                    for row in rows {
                        if last.get(&row.uid) != Some(&row) {
                            s.rows
                                .entry(row.uid)
                                .or_default()
                                .push((now, Some(row.clone())));
                        }
                        present.insert(row.uid, row);
                    }
                    for uid in last.keys().filter(|u| !present.contains_key(u)) {
                        s.rows.entry(*uid).or_default().push((now, None));
                    }
                    last = present;
                }
                Err(_) => s.row_samples.1 += 1,
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
