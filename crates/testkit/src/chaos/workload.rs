//! The API client of a chaos run: creates, updates, pauses, resumes and deletes instances as the
//! schedule says, through whichever replica is up, and keeps a ledger of what was acknowledged.
//!
//! Writes to one instance go one at a time. A write that gets no definite answer (its replica
//! died, the database was down) is retried on another replica until a deadline; updates carry
//! the resource version they were made from (`If-Match`), so a retry of a write that did land
//! is refused rather than applied twice. A write still without an answer is "in doubt": the
//! client reads the instance back before its next write, and the final state may be either.
//! A request to a replica that is frozen waits for it (the client's timeout is longer than any
//! freeze), so no write lands out of order.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

use super::replicas::Registry;
use super::schedule::{InstancePlan, Op};
use crate::stack::{READER, WRITER};

/// How long one request may take (longer than any freeze, so a frozen replica's answer comes).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a write that failed (its replica died, an error answer) is retried on other
/// replicas before it counts as in doubt, as a dashboard that gives up would.
const WRITE_DEADLINE: Duration = Duration::from_secs(4);
/// How many times a write is read and sent again after its version moved under it.
const STALE_RETRIES: u32 = 3;
/// How long reading an instance back is retried.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// The spec fields the client writes and the checks compare.
pub fn fields(spec: &Value) -> Value {
    json!({
        "image": spec["image"],
        "memoryMb": spec["guest"]["memoryMb"],
        "runState": spec["runState"],
        "volumeSizeGb": spec["volumeSizeGb"],
        "exposure": spec["exposure"],
        "paused": spec["paused"].as_bool().unwrap_or(false),
    })
}

/// What the client knows an instance to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    /// It does not exist (never created, or its deletion finished).
    Absent,
    /// It exists with these fields at this generation and resource version.
    Present {
        /// Its uid.
        uid: Uuid,
        /// [`fields`] of its spec.
        fields: Value,
        /// `metadata.generation`.
        generation: i64,
        /// `metadata.resourceVersion`.
        resource_version: String,
    },
    /// Its deletion was accepted.
    Deleting {
        /// Its uid.
        uid: Uuid,
    },
    /// A write is in doubt and reading it back failed: it is one of these.
    OneOf(Vec<Known>),
}

impl Known {
    fn from_body(body: &Value) -> Known {
        let meta = &body["metadata"];
        let uid = meta["uid"]
            .as_str()
            .and_then(|u| u.parse().ok())
            .unwrap_or_default();
        if !meta["deletionTimestamp"].is_null() {
            return Known::Deleting { uid };
        }
        Known::Present {
            uid,
            fields: fields(&body["spec"]),
            generation: meta["generation"].as_i64().unwrap_or_default(),
            resource_version: match &meta["resourceVersion"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        }
    }

    /// Its uid, when known.
    pub fn uid(&self) -> Option<Uuid> {
        match self {
            Known::Present { uid, .. } | Known::Deleting { uid } => Some(*uid),
            Known::OneOf(options) => options.iter().find_map(Known::uid),
            Known::Absent => None,
        }
    }
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Acked,
    /// No definite answer before the deadline.
    InDoubt,
    /// 404.
    NotFound,
    /// 409 (stale resource version, or deleting).
    Conflict,
    /// Another 4xx: the request was wrong.
    Rejected,
    /// Not sent: the instance did not exist or was being deleted.
    Skipped,
}

/// One write the client made.
#[derive(Debug, Clone)]
pub struct Write {
    /// What it was (`create`, `update {…}`, `pause`, `resume`, `delete`).
    pub op: String,
    /// When it was first sent.
    pub sent: DateTime<Utc>,
    /// When its answer came (or the client gave up).
    pub answered: DateTime<Utc>,
    /// How it ended.
    pub answer: Answer,
    /// Requests made for it.
    pub attempts: u32,
    /// The generation an acknowledged spec write produced.
    pub generation: Option<i64>,
    /// Whether it changes what the controller must converge to (not a pause).
    pub converges: bool,
    /// The last status or error seen.
    pub detail: String,
}

impl Write {
    /// A write the client did not send, and why.
    fn skipped(op: &Op, detail: String) -> Write {
        let now = Utc::now();
        Write {
            op: op.label(),
            sent: now,
            answered: now,
            answer: Answer::Skipped,
            attempts: 0,
            generation: None,
            converges: false,
            detail,
        }
    }
}

/// An instance's history as the client lived it, and what it must end as.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The plan it followed.
    pub plan: InstancePlan,
    /// Every write, in order.
    pub writes: Vec<Write>,
    /// What the client knows at the end.
    pub known: Known,
    /// Every uid the instance had.
    pub uids: Vec<Uuid>,
}

/// The client: picks a replica that is up for every request.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    registry: Arc<Mutex<Registry>>,
    turn: Arc<std::sync::atomic::AtomicUsize>,
}

/// The outcome of one request tried on several replicas.
struct Reply {
    answer: Answer,
    body: Value,
    attempts: u32,
    detail: String,
}

/// One write as sent: when, its answer, what the client knew before and will know if it
/// landed, and whether it changes what the controller converges to.
struct Sent {
    sent: DateTime<Utc>,
    reply: Reply,
    before: Known,
    after: Known,
    converges: bool,
}

impl ApiClient {
    /// A client over the replicas in `registry`.
    pub fn new(registry: Arc<Mutex<Registry>>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(ATTEMPT_TIMEOUT)
                .build()
                .expect("an HTTP client"),
            registry,
            turn: Arc::default(),
        }
    }

    fn next_api(&self) -> Option<String> {
        let live = self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live_apis();
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (!live.is_empty()).then(|| live[turn % live.len()].clone())
    }

    /// Sends a request to the replicas in turn until one answers definitely or `deadline`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
        deadline: Duration,
    ) -> Reply {
        let give_up = tokio::time::Instant::now() + deadline;
        let mut attempts = 0;
        let mut detail = String::from("no replica was up");
        loop {
            if let Some(api) = self.next_api() {
                attempts += 1;
                let token = if method == Method::GET {
                    READER
                } else {
                    WRITER
                };
                let mut req = self
                    .http
                    .request(method.clone(), format!("{api}{path}"))
                    .bearer_auth(token);
                if let Some(v) = if_match {
                    req = req.header("if-match", format!("\"{v}\""));
                }
                if let Some(b) = body {
                    let content_type = if method == Method::PATCH {
                        "application/merge-patch+json"
                    } else {
                        "application/json"
                    };
                    req = req.header("content-type", content_type).body(b.to_string());
                }
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body: Value = resp.json().await.unwrap_or(Value::Null);
                        let answer = match status.as_u16() {
                            200..=299 => Some(Answer::Acked),
                            404 => Some(Answer::NotFound),
                            409 => Some(Answer::Conflict),
                            400..=499 => Some(Answer::Rejected),
                            _ => None,
                        };
                        detail = format!("{status} {}", body["error"]["message"]);
                        if let Some(answer) = answer {
                            return Reply {
                                answer,
                                body,
                                attempts,
                                detail,
                            };
                        }
                    }
                    Err(e) => detail = format!("{api}: {e}"),
                }
            }
            if tokio::time::Instant::now() >= give_up {
                return Reply {
                    answer: Answer::InDoubt,
                    body: Value::Null,
                    attempts,
                    detail,
                };
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Reads an instance back: what it is, or `None` when no replica answered in time.
    pub async fn read(&self, name: &str) -> Option<Known> {
        let reply = self
            .send(
                Method::GET,
                &format!("/v1/instances/{name}"),
                None,
                None,
                READ_DEADLINE,
            )
            .await;
        match reply.answer {
            Answer::Acked => Some(Known::from_body(&reply.body)),
            Answer::NotFound => Some(Known::Absent),
            _ => None,
        }
    }

    /// Drives one instance through its plan, starting at `t0`, and returns its ledger.
    pub async fn drive(&self, plan: InstancePlan, t0: tokio::time::Instant) -> Ledger {
        let mut ledger = Ledger {
            plan: plan.clone(),
            writes: Vec::new(),
            known: Known::Absent,
            uids: Vec::new(),
        };
        tokio::time::sleep_until(t0 + plan.create_at).await;
        let body = json!({ "spec": plan.spec });
        let sent = Utc::now();
        let reply = self
            .send(
                Method::PUT,
                &format!("/v1/instances/{}", plan.name),
                Some(&body),
                None,
                WRITE_DEADLINE,
            )
            .await;
        let before = ledger.known.clone();
        let after = Known::Present {
            uid: Uuid::nil(),
            fields: fields(&with_defaults(&plan.spec)),
            generation: 1,
            resource_version: String::new(),
        };
        self.settle(
            &mut ledger,
            "create".into(),
            true,
            sent,
            reply,
            before,
            after,
        )
        .await;
        for op in &plan.ops {
            tokio::time::sleep_until(t0 + op.at).await;
            self.apply(&mut ledger, &op.what).await;
        }
        ledger
    }

    /// One later write, made as a dashboard makes it: read, then write with the version just
    /// read (`If-Match`). A 409 on the first attempt means the controller (or another write)
    /// moved the version in between, not that this write landed: read again and retry, a few
    /// times. A 409 on a retry is settled by reading back.
    async fn apply(&self, ledger: &mut Ledger, op: &Op) {
        let name = ledger.plan.name.clone();
        for _ in 0..STALE_RETRIES {
            if let Some(known) = self.read(&name).await {
                ledger.known = known;
            }
            let Some(Sent {
                sent,
                reply,
                before,
                after,
                converges,
            }) = self.attempt(ledger, op).await
            else {
                return;
            };
            let stale = reply.answer == Answer::Conflict && reply.attempts == 1;
            if !stale || *op == Op::Delete {
                self.settle(ledger, op.label(), converges, sent, reply, before, after)
                    .await;
                return;
            }
        }
        let detail = format!("not applied: the version moved {STALE_RETRIES} times in a row");
        ledger.writes.push(Write::skipped(op, detail));
    }

    /// Sends `op` once against what the ledger knows; `None` when it cannot be sent (the
    /// instance is absent or being deleted: recorded as skipped).
    async fn attempt(&self, ledger: &mut Ledger, op: &Op) -> Option<Sent> {
        let name = ledger.plan.name.clone();
        let Known::Present {
            uid,
            fields: current,
            generation,
            resource_version,
        } = ledger.known.clone()
        else {
            let detail = format!("not sent: the instance is {:?}", ledger.known);
            ledger.writes.push(Write::skipped(op, detail));
            return None;
        };
        let sent = Utc::now();
        let path = format!("/v1/instances/{name}");
        let before = ledger.known.clone();
        if *op == Op::Delete {
            let reply = self
                .send(Method::DELETE, &path, None, None, WRITE_DEADLINE)
                .await;
            let after = Known::Deleting { uid };
            return Some(Sent {
                sent,
                reply,
                before,
                after,
                converges: true,
            });
        }
        let patch = match op {
            Op::Update(patch) => patch.clone(),
            Op::Pause => json!({"spec": {"paused": true}}),
            _ => json!({"spec": {"paused": false}}),
        };
        let mut merged = json!({"spec": unfields(&current)});
        json_merge(&mut merged, &patch);
        let after_fields = fields(&with_defaults(&merged["spec"]));
        let after = Known::Present {
            uid,
            generation: generation + i64::from(after_fields != current),
            fields: after_fields,
            resource_version: String::new(),
        };
        let reply = self
            .send(
                Method::PATCH,
                &path,
                Some(&patch),
                Some(&resource_version),
                WRITE_DEADLINE,
            )
            .await;
        Some(Sent {
            sent,
            reply,
            before,
            after,
            converges: *op != Op::Pause,
        })
    }

    /// Records a write's answer and what the client now knows; a write without a definite
    /// answer, or refused as stale (a retry of one that landed), is resolved by reading back.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        ledger: &mut Ledger,
        op: String,
        converges: bool,
        sent: DateTime<Utc>,
        reply: Reply,
        before: Known,
        after: Known,
    ) {
        let mut write = Write {
            op,
            sent,
            answered: Utc::now(),
            answer: reply.answer,
            attempts: reply.attempts,
            generation: None,
            converges,
            detail: reply.detail.clone(),
        };
        match reply.answer {
            Answer::Acked => {
                ledger.known = Known::from_body(&reply.body);
                if let Known::Present { generation, .. } = ledger.known {
                    write.generation = Some(generation);
                }
            }
            Answer::Rejected | Answer::Skipped => {}
            Answer::NotFound if matches!(before, Known::Deleting { .. }) => {}
            Answer::NotFound => ledger.known = Known::Absent,
            Answer::InDoubt | Answer::Conflict => {
                ledger.known = match self.read(&ledger.plan.name).await {
                    Some(known) => known,
                    None => Known::OneOf(vec![before, after]),
                };
            }
        }
        if let Some(uid) = ledger.known.uid().filter(|u| !u.is_nil()) {
            if !ledger.uids.contains(&uid) {
                ledger.uids.push(uid);
            }
        }
        ledger.writes.push(write);
    }
}

/// The defaults the API applies to a created spec, for the fields the client compares.
fn with_defaults(spec: &Value) -> Value {
    let mut full = json!({
        "image": openclaws_model::DEFAULT_IMAGE,
        "guest": {"memoryMb": 2048},
        "runState": "running",
        "volumeSizeGb": 1,
        "exposure": "public",
        "paused": false,
    });
    json_merge(&mut full, spec);
    full
}

/// [`fields`] back into the shape of a spec.
fn unfields(f: &Value) -> Value {
    json!({
        "image": f["image"],
        "guest": {"memoryMb": f["memoryMb"]},
        "runState": f["runState"],
        "volumeSizeGb": f["volumeSizeGb"],
        "exposure": f["exposure"],
        "paused": f["paused"],
    })
}

/// RFC 7386 merge of `patch` into `target`.
fn json_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    json_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_is_predicted_on_the_compared_fields() {
        let created = fields(&with_defaults(&json!({"customerId": "c", "region": "iad"})));
        assert_eq!(created["runState"], "running");
        assert_eq!(created["memoryMb"], 2048);
        let mut merged = json!({"spec": unfields(&created)});
        json_merge(
            &mut merged,
            &json!({"spec": {"guest": {"memoryMb": 4096}, "paused": true}}),
        );
        let after = fields(&merged["spec"]);
        assert_eq!(after["memoryMb"], 4096);
        assert_eq!(after["paused"], true);
        assert_eq!(after["image"], created["image"]);
    }
}
