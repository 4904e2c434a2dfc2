//! Text rendering of the support commands: pure functions from the API's JSON (and the current
//! time) to what is printed, so they can be tested with fixed documents. They read the JSON
//! loosely: a field an older or newer server lacks shows as `-` or `<none>`. Nothing here prints
//! a secret: the API never returns values, and provider keys are shown by name only.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Width of the labels in `describe`, so values line up.
const LABEL_WIDTH: usize = 20;

/// The `get` table: one row per instance.
pub fn instance_table(items: &[Value], now: DateTime<Utc>) -> String {
    if items.is_empty() {
        return "No instances found.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = items.iter().map(|item| instance_row(item, now)).collect();
    table(
        &[
            "NAME", "PHASE", "READY", "REASON", "MACHINE", "REGION", "CUSTOMER", "AGE",
        ],
        &rows,
        "",
    )
}

/// One line of `get -w`: the event's type, then the instance's row as in the table.
pub fn watch_line(type_: &str, item: &Value, now: DateTime<Utc>) -> String {
    format!("{type_:<9} {}\n", instance_row(item, now).join("   "))
}

/// The cells of one instance in the `get` table.
fn instance_row(item: &Value, now: DateTime<Utc>) -> Vec<String> {
    let ready = condition(item, "Ready");
    let mut phase = text(item, "/status/phase").unwrap_or("Pending").to_owned();
    if item.pointer("/spec/paused") == Some(&Value::Bool(true)) {
        phase.push_str(",Paused");
    }
    vec![
        text(item, "/metadata/name").unwrap_or("-").to_owned(),
        phase,
        ready
            .and_then(|c| c["status"].as_str())
            .unwrap_or("-")
            .to_owned(),
        ready
            .and_then(|c| c["reason"].as_str())
            .unwrap_or("-")
            .to_owned(),
        text(item, "/status/fly/machineState")
            .unwrap_or("-")
            .to_owned(),
        text(item, "/spec/region").unwrap_or("-").to_owned(),
        text(item, "/spec/customerId").unwrap_or("-").to_owned(),
        time(item, "/metadata/creationTimestamp")
            .map(|t| age(t, now))
            .unwrap_or_else(|| "-".to_owned()),
    ]
}

/// The `describe` page of one instance: identity, spec summary, status, conditions, Fly ids,
/// pairing, channels (when any is configured), last error, the plan preview and the newest
/// events. `plan` and `events` are the
/// API's answers, or why they could not be had.
pub fn describe(
    instance: &Value,
    plan: Result<&Value, &str>,
    events: Result<&[Value], &str>,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    overview(&mut out, instance, now);
    out.push_str("Spec:\n");
    spec_summary(&mut out, instance);
    fly_section(&mut out, instance);
    conditions_section(&mut out, instance, now);
    out.push_str("Pairing:\n");
    pairing(&mut out, instance, now);
    channels(&mut out, instance, now);
    last_error(&mut out, instance, now);
    plan_section(&mut out, plan, now);
    events_section(&mut out, events, now);
    out
}

/// `-` for a missing value.
fn dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_owned()
}

/// Identity, generation, phase, whether it is paused, and the endpoint.
fn overview(out: &mut String, instance: &Value, now: DateTime<Utc>) {
    kv(out, 0, "Name", dash(text(instance, "/metadata/name")));
    kv(out, 0, "Customer", dash(text(instance, "/spec/customerId")));
    kv(out, 0, "UID", dash(text(instance, "/metadata/uid")));
    let labels = instance
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "<none>".to_owned());
    kv(out, 0, "Labels", labels);
    kv(
        out,
        0,
        "Created",
        when(time(instance, "/metadata/creationTimestamp"), now),
    );
    if let Some(t) = time(instance, "/metadata/deletionTimestamp") {
        kv(
            out,
            0,
            "Deletion Requested",
            format!("{} (teardown in progress)", when(Some(t), now)),
        );
    }
    kv(out, 0, "Generation", generation(instance));
    let phase = text(instance, "/status/phase").unwrap_or("Pending");
    kv(out, 0, "Phase", phase.to_owned());
    let paused = if is_paused(instance) {
        "yes: spec.paused is true, the controller makes no changes"
    } else {
        "no"
    };
    kv(out, 0, "Paused", paused.to_owned());
    kv(out, 0, "Endpoint", dash(text(instance, "/status/endpoint")));
}

fn is_paused(instance: &Value) -> bool {
    instance.pointer("/spec/paused") == Some(&Value::Bool(true))
}

/// The generation, and whether the controller has caught up with it.
fn generation(instance: &Value) -> String {
    let generation = instance
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let observed = instance
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    match (generation, observed) {
        (Some(g), Some(o)) if g == o => format!("{g} (observed)"),
        (Some(g), Some(o)) => format!("{g} (observed: {o}; the controller has not caught up)"),
        (Some(g), None) => format!("{g} (not observed yet)"),
        _ => "-".to_owned(),
    }
}

fn fly_section(out: &mut String, instance: &Value) {
    out.push_str("Fly:\n");
    let fly = |key: &str| dash(text(instance, &format!("/status/fly/{key}")));
    kv(out, 2, "App", fly("appName"));
    kv(out, 2, "Volume", fly("volumeId"));
    let machine = match (
        text(instance, "/status/fly/machineId"),
        text(instance, "/status/fly/machineState"),
    ) {
        (Some(id), Some(state)) => format!("{id} ({state})"),
        (Some(id), None) => id.to_owned(),
        _ => "-".to_owned(),
    };
    kv(out, 2, "Machine", machine);
    kv(out, 2, "Image", fly("image"));
    kv(out, 2, "Region", fly("region"));
}

fn conditions_section(out: &mut String, instance: &Value, now: DateTime<Utc>) {
    out.push_str("Conditions:\n");
    let conditions = array(instance, "/status/conditions");
    if conditions.is_empty() {
        out.push_str("  <none>\n");
        return;
    }
    let rows: Vec<Vec<String>> = conditions
        .iter()
        .map(|c| {
            vec![
                dash(c["type"].as_str()),
                dash(c["status"].as_str()),
                dash(c["reason"].as_str()),
                time(c, "/lastTransitionTime")
                    .map(|t| age(t, now))
                    .unwrap_or_else(|| "-".to_owned()),
                dash(c["message"].as_str()),
            ]
        })
        .collect();
    out.push_str(&table(
        &["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"],
        &rows,
        "  ",
    ));
}

/// The last error, and when the next reconcile is due.
fn last_error(out: &mut String, instance: &Value, now: DateTime<Utc>) {
    match instance
        .pointer("/status/lastError")
        .filter(|e| e.is_object())
    {
        None => kv(out, 0, "Last Error", "<none>".to_owned()),
        Some(e) => {
            out.push_str("Last Error:\n");
            kv(out, 2, "Step", dash(e["step"].as_str()));
            kv(out, 2, "Reason", dash(e["reason"].as_str()));
            let attempt = e["attempt"].as_i64();
            kv(
                out,
                2,
                "Attempt",
                attempt.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            );
            kv(out, 2, "Time", when(time(e, "/time"), now));
            kv(out, 2, "Message", dash(e["message"].as_str()));
        }
    }
    let next = match time(instance, "/status/nextReconcileAt") {
        Some(t) if is_paused(instance) => {
            format!("{} (paused: no change is made)", when(Some(t), now))
        }
        t => when(t, now),
    };
    kv(out, 0, "Next Reconcile", next);
}

fn events_section(out: &mut String, events: Result<&[Value], &str>, now: DateTime<Utc>) {
    let events = match events {
        Err(why) => return kv(out, 0, "Events", format!("unavailable: {why}")),
        Ok([]) => return kv(out, 0, "Events", "<none>".to_owned()),
        Ok(events) => events,
    };
    out.push_str("Events:\n");
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                dash(e["type"].as_str()),
                dash(e["reason"].as_str()),
                time(e, "/createdAt")
                    .map(|t| age(t, now))
                    .unwrap_or_else(|| "-".to_owned()),
                e["generation"]
                    .as_i64()
                    .map_or_else(|| "-".to_owned(), |g| g.to_string()),
                dash(e["message"].as_str()),
                by(e),
                changed(e),
            ]
        })
        .collect();
    out.push_str(&table(
        &["TYPE", "REASON", "AGE", "GEN", "MESSAGE", "BY", "CHANGED"],
        &rows,
        "  ",
    ));
}

/// Who made the write an event records, with its field manager (`writer/dashboard`); `-` on
/// the controller's events.
fn by(event: &Value) -> String {
    match (event["actor"].as_str(), event["fieldManager"].as_str()) {
        (Some(actor), Some(manager)) => format!("{actor}/{manager}"),
        (Some(actor), None) => actor.to_owned(),
        (None, _) => "-".to_owned(),
    }
}

/// The fields the write changed, comma-separated; `-` when none are recorded.
fn changed(event: &Value) -> String {
    let fields: Vec<&str> = event["changedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match fields.is_empty() {
        true => "-".to_owned(),
        false => fields.join(","),
    }
}

/// The spec fields support asks about; provider keys by name only.
fn spec_summary(out: &mut String, instance: &Value) {
    let spec = |p: &str| instance.pointer(&format!("/spec{p}"));
    let s = |p: &str| spec(p).and_then(Value::as_str).unwrap_or("-").to_owned();
    kv(out, 2, "Region", s("/region"));
    kv(out, 2, "Image", s("/image"));
    let guest = match (
        spec("/guest/cpuKind").and_then(Value::as_str),
        spec("/guest/cpus").and_then(Value::as_u64),
        spec("/guest/memoryMb").and_then(Value::as_u64),
    ) {
        (Some(kind), Some(cpus), Some(mb)) => format!("{kind}, {cpus} CPUs, {mb} MB"),
        _ => "-".to_owned(),
    };
    kv(out, 2, "Guest", guest);
    kv(
        out,
        2,
        "Volume Size",
        spec("/volumeSizeGb")
            .and_then(Value::as_u64)
            .map_or_else(|| "-".to_owned(), |gb| format!("{gb} GB")),
    );
    kv(out, 2, "Run State", s("/runState"));
    kv(out, 2, "Exposure", s("/exposure"));
    let fallbacks: Vec<&str> = spec("/model/fallbacks")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let model = if fallbacks.is_empty() {
        s("/model/primary")
    } else {
        format!(
            "{} (fallbacks: {})",
            s("/model/primary"),
            fallbacks.join(", ")
        )
    };
    kv(out, 2, "Model", model);
    let keys: Vec<&str> = spec("/providerKeys")
        .and_then(Value::as_object)
        .map(|k| {
            k.iter()
                .filter(|(_, v)| v["set"] == Value::Bool(true))
                .map(|(name, _)| name.as_str())
                .collect()
        })
        .unwrap_or_default();
    kv(
        out,
        2,
        "Provider Keys",
        if keys.is_empty() {
            "<none>".to_owned()
        } else {
            format!("{} (set; values are never shown)", keys.join(", "))
        },
    );
    let composio = if spec("/composio/enabled") == Some(&Value::Bool(true)) {
        match spec("/composio/entityId").and_then(Value::as_str) {
            Some(entity) => format!("enabled (entity {entity})"),
            None => "enabled".to_owned(),
        }
    } else {
        "disabled".to_owned()
    };
    kv(out, 2, "Composio", composio);
    kv(out, 2, "Pairing Policy", s("/pairing/policy"));
}

/// The configured messaging channels with their state as the gateway last reported it; nothing
/// when no channel is configured. Credentials show only as set.
fn channels(out: &mut String, instance: &Value, now: DateTime<Utc>) {
    let Some(spec) = instance
        .pointer("/spec/channels")
        .and_then(Value::as_object)
        .filter(|c| !c.is_empty())
    else {
        return;
    };
    out.push_str("Channels:\n");
    let statuses = array(instance, "/status/channels");
    let rows: Vec<Vec<String>> = spec
        .iter()
        .map(|(id, c)| {
            let s = statuses
                .iter()
                .find(|s| s["channel"].as_str() == Some(id.as_str()));
            let field = |k: &str| s.and_then(|s| s[k].as_str()).unwrap_or("-").to_owned();
            vec![
                id.clone(),
                if c["enabled"] == Value::Bool(false) {
                    "no"
                } else {
                    "yes"
                }
                .to_owned(),
                c["dmPolicy"].as_str().unwrap_or("pairing").to_owned(),
                c["allowFrom"].as_array().map_or(0, Vec::len).to_string(),
                field("state"),
                field("reason"),
                s.and_then(|s| time(s, "/lastCheckedAt"))
                    .map(|t| age(t, now))
                    .unwrap_or_else(|| "-".to_owned()),
                field("message"),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "CHANNEL",
            "ENABLED",
            "DM POLICY",
            "ALLOWED",
            "STATE",
            "REASON",
            "CHECKED",
            "MESSAGE",
        ],
        &rows,
        "  ",
    ));
}

/// Pending requests and recent outcomes, as the controller last saw them on the gateway.
fn pairing(out: &mut String, instance: &Value, now: DateTime<Utc>) {
    let Some(p) = instance
        .pointer("/status/pairing")
        .filter(|p| p.is_object())
    else {
        out.push_str("  <not observed yet>\n");
        return;
    };
    kv(
        out,
        2,
        "Controller Paired",
        if p["controllerPaired"] == Value::Bool(true) {
            "yes"
        } else {
            "no"
        }
        .to_owned(),
    );
    kv(out, 2, "Observed", when(time(p, "/observedAt"), now));
    let dash = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let pending = array(p, "/pending");
    if pending.is_empty() {
        kv(out, 2, "Pending Requests", "<none>".to_owned());
    } else {
        out.push_str("  Pending Requests:\n");
        let rows: Vec<Vec<String>> = pending
            .iter()
            .map(|r| {
                vec![
                    dash(r["requestId"].as_str()),
                    dash(r["deviceName"].as_str()),
                    dash(r["platform"].as_str()),
                    dash(r["client"].as_str()),
                    time(r, "/requestedAt")
                        .map(|t| age(t, now))
                        .unwrap_or_else(|| "-".to_owned()),
                    match time(r, "/expiresAt") {
                        Some(t) if t > now => format!("in {}", age(now, t)),
                        Some(_) => "expired".to_owned(),
                        None => "-".to_owned(),
                    },
                ]
            })
            .collect();
        out.push_str(&table(
            &["REQUEST", "DEVICE", "PLATFORM", "CLIENT", "AGE", "EXPIRES"],
            &rows,
            "    ",
        ));
    }
    let recent = array(p, "/recent");
    if recent.is_empty() {
        kv(out, 2, "Recent Results", "<none>".to_owned());
    } else {
        out.push_str("  Recent Results:\n");
        let rows: Vec<Vec<String>> = recent
            .iter()
            .map(|r| {
                vec![
                    dash(r["result"].as_str()),
                    dash(r["deviceName"].as_str()),
                    dash(r["requestId"].as_str()),
                    time(r, "/at")
                        .map(|t| age(t, now))
                        .unwrap_or_else(|| "-".to_owned()),
                    dash(r["message"].as_str()),
                ]
            })
            .collect();
        out.push_str(&table(
            &["RESULT", "DEVICE", "REQUEST", "AGE", "MESSAGE"],
            &rows,
            "    ",
        ));
    }
}

/// The plan preview: what the next reconcile would do, and what it is based on.
fn plan_section(out: &mut String, plan: Result<&Value, &str>, now: DateTime<Utc>) {
    let plan = match plan {
        Ok(plan) => plan,
        Err(why) => {
            kv(out, 0, "Plan", format!("unavailable: {why}"));
            return;
        }
    };
    let basis = match time(plan, "/observedAt") {
        Some(t) => format!("from the world observed {} ago", age(t, now)),
        None => "from an empty world: nothing observed yet".to_owned(),
    };
    out.push_str(&format!("Plan ({basis}):\n"));
    if plan["converged"] == Value::Bool(true) {
        out.push_str("  Converged: nothing to do.\n");
    }
    for (i, action) in array(plan, "/actions").iter().enumerate() {
        out.push_str(&format!(
            "  {}. {}: {}\n",
            i + 1,
            action["step"].as_str().unwrap_or("-"),
            action["description"].as_str().unwrap_or("-"),
        ));
    }
    if let Some(w) = plan.get("wait").filter(|w| w.is_object()) {
        let after = w["afterSeconds"]
            .as_f64()
            .map(|s| format!(" (looks again after {})", seconds(s)))
            .unwrap_or_default();
        kv(
            out,
            2,
            "Waiting",
            format!(
                "{}: {}{after}",
                w["reason"].as_str().unwrap_or("-"),
                w["message"].as_str().unwrap_or("-")
            ),
        );
    }
    if let Some(b) = plan.get("blocked").filter(|b| b.is_object()) {
        kv(
            out,
            2,
            "Blocked",
            format!(
                "{}: {}",
                b["reason"].as_str().unwrap_or("-"),
                b["message"].as_str().unwrap_or("-")
            ),
        );
    }
    if plan["lookAtGateway"] == Value::Bool(true) {
        kv(
            out,
            2,
            "Gateway",
            "the next reconcile looks at the gateway first (health, pairing, config)".to_owned(),
        );
    }
    for note in array(plan, "/notes") {
        if let Some(note) = note.as_str() {
            kv(out, 2, "Note", note.to_owned());
        }
    }
}

/// `label:` padded to the common width, then the value.
fn kv(out: &mut String, indent: usize, label: &str, value: String) {
    let label = format!("{label}:");
    let width = LABEL_WIDTH.saturating_sub(indent).max(label.len() + 1);
    out.push_str(&format!("{:indent$}{label:<width$}{value}\n", ""));
}

/// Columns padded to their widest cell, three spaces apart, each line prefixed.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>], prefix: &str) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = prefix.to_owned();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let pad = w - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 3));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A time and how long ago (or how soon) it is.
fn when(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "-".to_owned(),
        Some(t) if t > now => format!("{} (in {})", rfc3339(t), age(now, t)),
        Some(t) => format!("{} ({} ago)", rfc3339(t), age(t, now)),
    }
}

/// A time to the second, in UTC (`2026-11-22T12:00:05Z`).
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Time from `from` to `to` the way `kubectl` shows ages: `42s`, `5m`, `3h`, `12d`.
pub fn age(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let secs = (to - from).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 120 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1}s")
    } else {
        age(
            DateTime::UNIX_EPOCH,
            DateTime::UNIX_EPOCH + chrono::Duration::seconds(s as i64),
        )
    }
}

pub(crate) fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn time(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    text(v, pointer)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn array<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn condition<'a>(item: &'a Value, type_: &str) -> Option<&'a Value> {
    array(item, "/status/conditions")
        .iter()
        .find(|c| c["type"] == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    fn instance() -> Value {
        json!({
            "apiVersion": "openclaws.biz/v1alpha1",
            "kind": "OpenClawInstance",
            "metadata": {
                "name": "acme", "uid": "0b6c2f9e-0000-4000-8000-000000000001",
                "generation": 3, "resourceVersion": "7", "labels": {"tier": "pro"},
                "creationTimestamp": "2026-11-22T11:00:00Z"
            },
            "spec": {
                "customerId": "cust-42", "region": "iad", "image": "ghcr.io/openclaw/openclaw:main",
                "guest": {"cpuKind": "shared", "cpus": 2, "memoryMb": 4096},
                "volumeSizeGb": 1, "runState": "running", "exposure": "public",
                "model": {"primary": "anthropic/claude-sonnet-4-6", "fallbacks": []},
                "providerKeys": {"anthropicApiKey": {"set": true, "fingerprint": "hmac-sha256:abc",
                                 "updatedAt": "2026-11-22T11:00:00Z"}},
                "composio": {"enabled": false}, "pairing": {"policy": "manual", "approvals": []},
                "paused": false, "gatewayTokenRotation": 0
            },
            "status": {
                "observedGeneration": 2, "phase": "Degraded",
                "conditions": [
                    {"type": "MachineReady", "status": "True", "reason": "Started", "message": "machine m1 is started",
                     "lastTransitionTime": "2026-11-22T11:50:00Z", "observedGeneration": 2},
                    {"type": "Ready", "status": "False", "reason": "GatewayUnreachable",
                     "message": "the gateway does not answer", "lastTransitionTime": "2026-11-22T11:58:00Z",
                     "observedGeneration": 2}
                ],
                "fly": {"appName": "oc-acme", "volumeId": "vol_1", "machineId": "m1",
                        "machineState": "started", "region": "iad"},
                "endpoint": "https://acme.openclaws.biz",
                "pairing": {
                    "pendingCount": 1, "controllerPaired": true, "observedAt": "2026-11-22T11:59:30Z",
                    "pending": [{"requestId": "req-1", "deviceId": "d1", "deviceName": "Pixel",
                                 "platform": "android", "client": "openclaw-control-ui", "scopes": [],
                                 "requestedAt": "2026-11-22T11:58:00Z", "ageSeconds": 90,
                                 "expiresAt": "2026-11-22T12:03:00Z"}],
                    "recent": [{"result": "Approved", "deviceName": "Mac", "requestId": "req-0",
                                "message": "approved device \"Mac\"", "at": "2026-11-22T11:30:00Z"}]
                },
                "lastError": {"step": "UpdateMachine", "reason": "LeaseHeld", "message": "lease held by someone",
                              "time": "2026-11-22T11:59:00Z", "attempt": 3},
                "nextReconcileAt": "2026-11-22T12:00:05Z"
            }
        })
    }

    #[test]
    fn get_lists_one_row_per_instance() {
        let mut paused = instance();
        paused["metadata"]["name"] = json!("beta-long-name");
        paused["spec"]["paused"] = json!(true);
        paused["status"] = json!({});
        let out = instance_table(&[instance(), paused], now());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        let cells: Vec<Vec<&str>> = lines
            .iter()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            cells[0],
            ["NAME", "PHASE", "READY", "REASON", "MACHINE", "REGION", "CUSTOMER", "AGE"]
        );
        assert_eq!(
            cells[1],
            [
                "acme",
                "Degraded",
                "False",
                "GatewayUnreachable",
                "started",
                "iad",
                "cust-42",
                "60m"
            ]
        );
        assert_eq!(
            cells[2],
            [
                "beta-long-name",
                "Pending,Paused",
                "-",
                "-",
                "-",
                "iad",
                "cust-42",
                "60m"
            ]
        );
        // Columns line up.
        let col = |l: &str| {
            l.find("PHASE")
                .or_else(|| l.find("Degraded"))
                .or_else(|| l.find("Pending"))
        };
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[2]));
        assert_eq!(instance_table(&[], now()), "No instances found.\n");
    }

    #[test]
    fn describe_shows_everything_support_needs() {
        let plan = json!({
            "name": "acme", "generation": 3, "paused": false, "deleting": false, "converged": false,
            "actions": [{"step": "UpdateMachine", "description": "update machine m1 to the desired config"}],
            "lookAtGateway": true, "observedAt": "2026-11-22T11:59:00Z",
            "notes": ["something to know"]
        });
        let events = vec![
            json!({"type": "Warning", "reason": "UpdateMachineFailed", "message": "lease held",
                                 "generation": 3, "createdAt": "2026-11-22T11:59:00Z"}),
            json!({"type": "Normal", "reason": "SpecUpdated", "message": "spec changed",
                   "generation": 3, "createdAt": "2026-11-22T11:59:00Z", "actor": "writer",
                   "fieldManager": "dashboard", "changedFields": ["/spec/paused", "/spec/region"]}),
        ];
        let out = describe(&instance(), Ok(&plan), Ok(&events), now());
        for expected in [
            "Name:               acme",
            "Customer:           cust-42",
            "Labels:             tier=pro",
            "Generation:         3 (observed: 2; the controller has not caught up)",
            "Phase:              Degraded",
            "Paused:             no",
            "Endpoint:           https://acme.openclaws.biz",
            "  Guest:            shared, 2 CPUs, 4096 MB",
            "  Provider Keys:    anthropicApiKey (set; values are never shown)",
            "  Pairing Policy:   manual",
            "  Machine:          m1 (started)",
            "  Ready          False    GatewayUnreachable   2m    the gateway does not answer",
            "  Controller Paired: yes",
            "    req-1     Pixel    android    openclaw-control-ui   2m    in 3m",
            "    Approved   Mac      req-0     30m   approved device \"Mac\"",
            "  Step:             UpdateMachine",
            "  Reason:           LeaseHeld",
            "Next Reconcile:     2026-11-22T12:00:05Z (in 5s)",
            "Plan (from the world observed 60s ago):",
            "  1. UpdateMachine: update machine m1 to the desired config",
            "  Gateway:",
            "  Note:             something to know",
            "  Warning   UpdateMachineFailed   60s   3     lease held",
            "BY                 CHANGED",
            "spec changed   writer/dashboard   /spec/paused,/spec/region",
        ] {
            assert!(out.contains(expected), "missing {expected:?} in\n{out}");
        }
        assert!(!out.contains("hmac-sha256"), "{out}");
    }

    #[test]
    fn describe_says_when_parts_are_missing_or_paused() {
        let mut fresh = instance();
        fresh["spec"]["paused"] = json!(true);
        fresh["status"] = json!({});
        let plan = json!({"paused": true, "converged": true, "actions": [],
                          "notes": ["spec.paused is true: reconciling is suspended"]});
        let out = describe(
            &fresh,
            Ok(&plan),
            Err("the API answered 500: internal error"),
            now(),
        );
        for expected in [
            "Paused:             yes: spec.paused is true",
            "Phase:              Pending",
            "Conditions:\n  <none>",
            "Pairing:\n  <not observed yet>",
            "Last Error:         <none>",
            "Plan (from an empty world: nothing observed yet):",
            "  Note:             spec.paused is true: reconciling is suspended",
            "  Converged: nothing to do.",
            "Events:             unavailable: the API answered 500",
        ] {
            assert!(out.contains(expected), "missing {expected:?} in\n{out}");
        }
        let out = describe(&fresh, Err("no such route"), Ok(&[]), now());
        assert!(
            out.contains("Plan:               unavailable: no such route"),
            "{out}"
        );
        assert!(out.contains("Events:             <none>"), "{out}");
    }

    #[test]
    fn waits_and_blocks_are_explained() {
        let plan = json!({"converged": false, "actions": [],
            "wait": {"reason": "MachineStarting", "message": "machine m1 is starting", "afterSeconds": 1.5},
            "blocked": {"reason": "AppNameTaken", "message": "the name is taken"},
            "observedAt": "2026-11-22T11:00:00Z"});
        let mut out = String::new();
        plan_section(&mut out, Ok(&plan), now());
        assert!(
            out.contains("Plan (from the world observed 60m ago):"),
            "{out}"
        );
        assert!(
            out.contains("  Waiting:          MachineStarting: machine m1 is starting (looks again after 1.5s)"),
            "{out}"
        );
        assert!(
            out.contains("  Blocked:          AppNameTaken: the name is taken"),
            "{out}"
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        let t = now();
        let ago = |s: i64| age(t - chrono::Duration::seconds(s), t);
        assert_eq!(
            [
                ago(0),
                ago(119),
                ago(120),
                ago(7199),
                ago(7200),
                ago(172_799),
                ago(172_800)
            ],
            ["0s", "119s", "2m", "119m", "2h", "47h", "2d"]
        );
        assert_eq!(age(t, t - chrono::Duration::seconds(5)), "0s");
    }
}
