//! The public endpoint: a Fly certificate and a CNAME (marked as ours) for a public hostname,
//! neither for a private one. Records for the name without our mark are never changed (status
//! reports them).

use std::time::Duration;

use chrono::{DateTime, Utc};
use openclaws_fly::types::CertificateDetail;
use openclaws_model::conditions::Reason;

use super::{Action, Plan};
use crate::reconcile::desired::Desired;
use crate::reconcile::world::Observed;

/// The CNAME target the hostname should have: what Fly's certificate asks for, else the app.
pub fn dns_target(desired: &Desired, observed: &Observed) -> String {
    observed
        .certificate
        .as_ref()
        .and_then(|c| c.dns_requirements.as_ref())
        .and_then(|r| r.cname.clone())
        .unwrap_or_else(|| format!("{}.fly.dev", desired.app_name))
}

/// Our DNS record for the hostname (carrying our comment), if any.
pub fn our_record<'a>(
    desired: &Desired,
    observed: &'a Observed,
) -> Option<&'a openclaws_dns::DnsRecord> {
    let mark = openclaws_dns::ownership_comment(&desired.uid.to_string());
    observed
        .dns_records
        .iter()
        .find(|r| r.comment.as_deref() == Some(mark.as_str()))
}

/// Whether our record's content is right: the target [`dns_target`] names, or for an adopted
/// app the web app's `{app}.fly.dev`, which is kept rather than replaced.
pub fn content_ok(
    desired: &Desired,
    observed: &Observed,
    record: &openclaws_dns::DnsRecord,
) -> bool {
    record.type_ == "CNAME"
        && (record.content == dns_target(desired, observed)
            || (desired.adoption.is_some() && record.content == web_app_target(desired)))
}

/// Where the web app pointed an app's hostname (`docs/adoption.md`).
fn web_app_target(desired: &Desired) -> String {
    format!("{}.fly.dev", desired.app_name)
}

/// The web app's record of an adopted app's hostname: an unmarked CNAME to `{app}.fly.dev`.
/// It is kept (same id, same content) and marked as ours, so status, drift repair and teardown
/// treat it like a record we made.
fn web_app_record<'a>(
    desired: &Desired,
    observed: &'a Observed,
) -> Option<&'a openclaws_dns::DnsRecord> {
    desired.adoption.as_ref()?;
    observed.dns_records.iter().find(|r| {
        r.comment.as_deref().is_none_or(str::is_empty)
            && r.type_ == "CNAME"
            && r.content == web_app_target(desired)
    })
}

/// The endpoint's steps: a certificate and our record when wanted, their removal when not.
pub(super) fn plan_endpoint(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let ours = our_record(desired, observed);
    if !desired.endpoint_wanted {
        let mut actions: Vec<Action> = ours
            .map(|r| Action::DeleteDnsRecord {
                id: r.id.clone(),
                name: r.name.clone(),
            })
            .into_iter()
            .collect();
        if observed.certificate.is_some() {
            actions.push(Action::DeleteCertificate {
                hostname: desired.hostname.clone(),
            });
        }
        return actions;
    }
    let mut actions = Vec::new();
    if observed.certificate.is_none() {
        actions.push(Action::AddCertificate {
            hostname: desired.hostname.clone(),
        });
    }
    let record = openclaws_dns::DnsRecord {
        id: String::new(),
        type_: "CNAME".to_owned(),
        name: desired.hostname.clone(),
        content: dns_target(desired, observed),
        comment: Some(openclaws_dns::ownership_comment(&desired.uid.to_string())),
    };
    let legacy = web_app_record(desired, observed).filter(|_| ours.is_none());
    match ours {
        None if observed.dns_records.is_empty() => actions.push(Action::CreateDnsRecord { record }),
        None if legacy.is_some() => actions.extend(legacy.map(|r| Action::UpdateDnsRecord {
            id: r.id.clone(),
            record: openclaws_dns::DnsRecord {
                content: r.content.clone(),
                ..record
            },
        })),
        Some(r) if !content_ok(desired, observed, r) => actions.push(Action::UpdateDnsRecord {
            id: r.id.clone(),
            record,
        }),
        _ => {}
    }
    actions
}

/// A wait for a wanted certificate that is not active yet, once everything else is done.
pub(super) fn certificate_wait(desired: &Desired, observed: &Observed) -> Option<Plan> {
    let cert = observed
        .certificate
        .as_ref()
        .filter(|c| desired.endpoint_wanted && c.status != "active")?;
    Some(Plan::wait(
        Reason::CertificatePending,
        format!("certificate for {} is {}", desired.hostname, cert.status),
        certificate_poll(cert, observed.observed_at),
    ))
}

/// How soon to look at a pending certificate again: often while issuance is expected (seconds
/// after the request), then less often, so a slow validation does not cost a deep look every
/// few seconds.
fn certificate_poll(cert: &CertificateDetail, now: Option<DateTime<Utc>>) -> Duration {
    let age = cert
        .created_at()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .zip(now)
        .and_then(|(created, now)| (now - created.with_timezone(&Utc)).to_std().ok());
    match age {
        Some(age) if age < Duration::from_secs(60) => Duration::from_secs(2),
        Some(age) if age < Duration::from_secs(600) => Duration::from_secs(10),
        Some(_) => Duration::from_secs(60),
        None => Duration::from_secs(10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_certificate_is_polled_often_at_first_then_less() {
        let now: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
        let cert = |created: &str| {
            let mut c = CertificateDetail::default();
            c.extra.insert("created_at".into(), created.into());
            c
        };
        let poll = |created: &str| certificate_poll(&cert(created), Some(now));
        let issued = |created: &str| {
            let mut c = CertificateDetail::default();
            c.certificates
                .push(serde_json::json!({"created_at": created, "source": "fly"}));
            certificate_poll(&c, Some(now))
        };
        assert_eq!(
            issued("2026-11-22T11:59:55Z"),
            Duration::from_secs(2),
            "as Fly's document has it: per certificate"
        );
        assert_eq!(poll("2026-11-22T11:59:55Z"), Duration::from_secs(2));
        assert_eq!(poll("2026-11-22T11:55:00Z"), Duration::from_secs(10));
        assert_eq!(poll("2026-11-22T10:00:00Z"), Duration::from_secs(60));
        assert_eq!(poll("not a time"), Duration::from_secs(10));
    }
}
