//! Certificates for custom hostnames (api doc §8, spec §5). A certificate's status follows the
//! simulated DNS table ([`super::dns`]): `pending_validation` until the hostname CNAMEs to
//! `<app>.fly.dev` (with a public IP on the app), has an AAAA to the app's v6, or its
//! `_acme-challenge` CNAME points at the certificate's flydns target; then `issuing` for 2–10 s
//! (scaled); then `active` with ECDSA and RSA certificates valid 90 days. Explicit checks that
//! fail are recorded in `validation_errors`; five within an hour set `rate_limited_until` (+1 h),
//! during which nothing validates.

use super::auth::Caller;
use super::clock::{delta, rfc3339};
use super::errors::{SimError, SimResult};
use super::extract::{JsonBody, QueryPairs};
use super::records::certificate::CertRec;
use super::records::dns::normalize;
use super::state::{AppRef, World};
use super::wire::{
    AcmeChallenge, CertificateCheckResponse, CertificateDetail, CertificateEntry,
    CertificateSummary, CertificateValidation, CertificateValidationError,
    CreateAcmeCertificateRequest, CreateCustomCertificateRequest, DNSRecords, DNSRequirements,
    DestroyCustomCertificateResponse, IssuedCertificate, ListCertificatesResponse,
    OwnershipVerification,
};
use super::{Ctx, Simulator};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

type Time = DateTime<Utc>;

/// Failed checks within an hour that trigger Let's Encrypt's rate limit.
pub const FAILED_CHECKS_PER_HOUR: usize = 5;

/// What DNS says about a hostname, for `validation` and `dns_records`.
struct DnsView {
    cname: Vec<String>,
    a: Vec<String>,
    aaaa: Vec<String>,
    acme_cname: Vec<String>,
    ownership_txt: Vec<String>,
}

fn app_ips(w: &World, app: &AppRef) -> (Vec<String>, Vec<String>) {
    let ips = w
        .apps
        .get(&app.name)
        .map(|a| a.ips.clone())
        .unwrap_or_default();
    let v4 = ips
        .iter()
        .filter(|i| matches!(i.type_.as_str(), "v4" | "shared_v4"))
        .map(|i| i.ip.clone())
        .collect();
    let v6 = ips
        .iter()
        .filter(|i| i.type_ == "v6")
        .map(|i| i.ip.clone())
        .collect();
    (v4, v6)
}

impl World {
    fn dns_view(&self, host: &str) -> DnsView {
        DnsView {
            cname: self.resolve(host, "CNAME"),
            a: self.resolve(host, "A"),
            aaaa: self.resolve(host, "AAAA"),
            acme_cname: self.resolve(&format!("_acme-challenge.{host}"), "CNAME"),
            ownership_txt: self.resolve(&format!("_fly-ownership.{host}"), "TXT"),
        }
    }

    /// `(dns_configured, ownership_configured)` for a certificate of `app`.
    fn validates(&self, app: &AppRef, cert: &CertRec) -> (bool, bool) {
        let view = self.dns_view(&cert.hostname);
        let (v4, v6) = app_ips(self, app);
        let public = !v4.is_empty() || !v6.is_empty();
        let fly_dev = format!("{}.fly.dev", app.name);
        let cname_ok = public && view.cname.contains(&fly_dev);
        let aaaa_ok = view.aaaa.iter().any(|a| v6.contains(a));
        let acme_ok = view.acme_cname.contains(&cert.acme_target);
        let ownership = view.ownership_txt.iter().any(|t| {
            t.trim_matches('"') == format!("app-{}", app.id)
                || t.trim_matches('"') == format!("org-{}", app.org)
        });
        (cname_ok || aaaa_ok || acme_ok, ownership || aaaa_ok)
    }

    /// Moves a certificate along: finishes issuance, starts it when DNS validates; an explicit
    /// check records failures and may rate-limit.
    fn progress_cert(&mut self, app: &AppRef, host: &str, explicit: bool, ctx: &Ctx) {
        let Some(mut cert) = self
            .apps
            .get(&app.name)
            .and_then(|a| a.certificates.get(host))
            .cloned()
        else {
            return;
        };
        if cert.status == "issuing" && cert.issuing_until.is_some_and(|t| t <= ctx.now) {
            cert.status = "active".into();
            cert.issued_at = cert.issuing_until.take();
        }
        let (dns_ok, ownership_ok) = self.validates(app, &cert);
        if cert.status == "pending_ownership" && ownership_ok {
            cert.status = "active".into();
        }
        if cert.status == "pending_validation" {
            let limited = cert.rate_limited_until.is_some_and(|t| t > ctx.now);
            if dns_ok && !limited {
                start_issuance(&mut cert, ctx);
            } else if explicit {
                record_failed_check(&mut cert, app, limited, ctx);
            }
        }
        if let Some(a) = self.apps.get_mut(&app.name) {
            a.certificates.insert(host.to_string(), cert);
        }
    }

    /// The certificates of a hostname (Fly-managed and custom), as `CertificateEntry`s.
    fn cert_entries(cert: &CertRec) -> Vec<CertificateEntry> {
        let expires = |t: Time| rfc3339(t + TimeDelta::days(90));
        let issued = |kind: &str, at: Time, authority: &str| IssuedCertificate {
            r#type: Some(kind.into()),
            expires_at: Some(expires(at)),
            certificate_authority: Some(authority.into()),
        };
        let mut entries = Vec::new();
        if cert.acme_requested {
            entries.push(CertificateEntry {
                source: Some("fly".into()),
                status: Some(
                    if cert.issued_at.is_some() {
                        "active"
                    } else {
                        "pending_validation"
                    }
                    .into(),
                ),
                created_at: Some(rfc3339(cert.created_at)),
                expires_at: cert.issued_at.map(expires),
                issuer: cert.issued_at.map(|_| "Let's Encrypt".into()),
                issued: cert.issued_at.map_or_else(Vec::new, |at| {
                    vec![
                        issued("ecdsa", at, "lets_encrypt"),
                        issued("rsa", at, "lets_encrypt"),
                    ]
                }),
            });
        }
        if let Some(at) = cert.custom_at {
            let pending = cert.status == "pending_ownership";
            entries.push(CertificateEntry {
                source: Some("custom".into()),
                status: Some(
                    if pending {
                        "pending_ownership"
                    } else {
                        "active"
                    }
                    .into(),
                ),
                created_at: Some(rfc3339(at)),
                expires_at: Some(expires(at)),
                issuer: Some("custom".into()),
                issued: vec![issued("rsa", at, "custom")],
            });
        }
        entries
    }

    /// A hostname's `CertificateDetail`. `dns_requirements.a`/`aaaa` are `null` when the app has
    /// no such address, as Fly's Go encodes an empty list.
    fn cert_json(&self, app: &AppRef, host: &str) -> SimResult<CertificateDetail> {
        let cert = self
            .apps
            .get(&app.name)
            .and_then(|a| a.certificates.get(host))
            .ok_or_else(cert_not_found)?;
        let (v4, v6) = app_ips(self, app);
        let (dns_ok, ownership_ok) = self.validates(app, cert);
        let provider = if self.zone_for(host).is_some() {
            "cloudflare"
        } else {
            "unknown"
        };
        Ok(CertificateDetail {
            hostname: Some(cert.hostname.clone()),
            configured: Some(dns_ok),
            acme_requested: Some(cert.acme_requested),
            status: Some(cert.status.clone()),
            dns_provider: Some(provider.into()),
            rate_limited_until: cert.rate_limited_until.map(rfc3339),
            certificates: Self::cert_entries(cert),
            validation: Some(CertificateValidation {
                dns_configured: Some(dns_ok),
                alpn_configured: Some(false),
                http_configured: Some(false),
                ownership_txt_configured: Some(ownership_ok),
            }),
            dns_requirements: Some(DNSRequirements {
                a: (!v4.is_empty()).then_some(v4),
                aaaa: (!v6.is_empty()).then_some(v6),
                cname: Some(format!("{}.fly.dev", app.name)),
                acme_challenge: Some(AcmeChallenge {
                    name: Some(format!("_acme-challenge.{host}")),
                    target: Some(cert.acme_target.clone()),
                }),
                ownership: Some(OwnershipVerification {
                    name: Some(format!("_fly-ownership.{host}")),
                    app_value: Some(format!("app-{}", app.id)),
                    org_value: Some(format!("org-{}", app.org)),
                }),
            }),
            validation_errors: cert.validation_errors.clone(),
        })
    }

    /// What DNS answers for a hostname, as a check reports it.
    fn dns_records(&self, host: &str) -> DNSRecords {
        let view = self.dns_view(host);
        let resolved: Vec<String> = view.a.iter().chain(view.aaaa.iter()).cloned().collect();
        DNSRecords {
            a: view.a,
            aaaa: view.aaaa,
            cname: view.cname,
            resolved_addresses: resolved,
            soa: self
                .zone_for(host)
                .map(|z| format!("ada.ns.cloudflare.com. dns.cloudflare.com. ({})", z.name)),
            acme_challenge_cname: view.acme_cname.first().cloned(),
            ownership_txt: view.ownership_txt.first().cloned(),
        }
    }

    /// A hostname's `listCertificatesResponse` entry.
    fn cert_summary(&self, app: &AppRef, host: &str) -> SimResult<CertificateSummary> {
        let d = self.cert_json(app, host)?;
        let created = self
            .apps
            .get(&app.name)
            .and_then(|a| a.certificates.get(host))
            .map(|c| rfc3339(c.created_at));
        let validation = d.validation.unwrap_or_default();
        Ok(CertificateSummary {
            has_fly_certificate: d.acme_requested,
            has_custom_certificate: Some(
                d.certificates
                    .iter()
                    .any(|c| c.source.as_deref() == Some("custom")),
            ),
            hostname: d.hostname,
            status: d.status,
            configured: d.configured,
            acme_requested: d.acme_requested,
            dns_provider: d.dns_provider,
            acme_dns_configured: validation.dns_configured,
            acme_alpn_configured: validation.alpn_configured,
            acme_http_configured: validation.http_configured,
            ownership_txt_configured: validation.ownership_txt_configured,
            created_at: created.clone(),
            updated_at: created,
        })
    }

    fn add_cert(&mut self, app: &AppRef, host: &str, custom: bool, ctx: &Ctx) -> SimResult<()> {
        let taken_elsewhere = self.apps.values().any(|a| {
            a.name != app.name && a.deleting_at.is_none() && a.certificates.contains_key(host)
        });
        if taken_elsewhere {
            return Err(unprocessable(
                "Hostname has already been taken by another app",
            ));
        }
        let a = self
            .apps
            .get_mut(&app.name)
            .ok_or_else(SimError::app_not_found)?;
        match a.certificates.get_mut(host) {
            Some(c) if custom && c.custom_at.is_none() => {
                c.custom_at = Some(ctx.now);
                Ok(())
            }
            Some(c) if !custom && !c.acme_requested => {
                c.acme_requested = true;
                c.status = "pending_validation".into();
                Ok(())
            }
            Some(_) => Err(unprocessable("Hostname already exists on app")),
            None => {
                let suffix: String = (0..6)
                    .map(|_| char::from(b'a' + rand::thread_rng().gen_range(0..26u8)))
                    .collect();
                a.certificates.insert(
                    host.to_string(),
                    CertRec {
                        hostname: host.to_string(),
                        created_at: ctx.now,
                        acme_requested: !custom,
                        custom_at: custom.then_some(ctx.now),
                        status: if custom {
                            "pending_ownership"
                        } else {
                            "pending_validation"
                        }
                        .into(),
                        issuing_until: None,
                        issued_at: None,
                        acme_target: format!("{host}.{suffix}.flydns.net"),
                        validation_errors: Vec::new(),
                        failed_checks: Vec::new(),
                        rate_limited_until: None,
                    },
                );
                Ok(())
            }
        }
    }
}

/// DNS validated: issuance takes 1/3 to 5/3 of the mean issuance time (done at once when that
/// is zero).
fn start_issuance(cert: &mut CertRec, ctx: &Ctx) {
    let mean = ctx.config.latency.cert_issue.as_secs_f64();
    let took = rand::thread_rng().gen_range(mean / 3.0..=mean * 5.0 / 3.0);
    let until = ctx.now + delta(super::clock::secs_f64(took));
    if until <= ctx.now {
        cert.status = "active".into();
        cert.issued_at = Some(ctx.now);
    } else {
        cert.status = "issuing".into();
        cert.issuing_until = Some(until);
    }
}

/// An explicit check that did not validate: a validation error, and (unless already
/// rate-limited) a failed check that may start Let's Encrypt's one-hour rate limit.
fn record_failed_check(cert: &mut CertRec, app: &AppRef, limited: bool, ctx: &Ctx) {
    let (code, message) = if limited {
        (
            "rate_limited",
            "too many failed validation attempts for this hostname",
        )
    } else {
        (
            "dns_not_configured",
            "no CNAME, AAAA or _acme-challenge record points at this app",
        )
    };
    cert.validation_errors.push(CertificateValidationError {
        code: Some(code.into()),
        message: Some(message.into()),
        remediation: Some(format!(
            "CNAME {} to {}.fly.dev, or CNAME _acme-challenge.{} to {}",
            cert.hostname, app.name, cert.hostname, cert.acme_target
        )),
        timestamp: Some(rfc3339(ctx.now)),
    });
    if limited {
        return;
    }
    cert.failed_checks
        .retain(|t| *t > ctx.now - TimeDelta::hours(1));
    cert.failed_checks.push(ctx.now);
    if cert.failed_checks.len() >= FAILED_CHECKS_PER_HOUR {
        cert.rate_limited_until = Some(ctx.now + TimeDelta::hours(1));
        cert.failed_checks.clear();
    }
}

fn cert_not_found() -> SimError {
    SimError::NotFound("certificate not found".into())
}

fn unprocessable(message: &str) -> SimError {
    SimError::Unprocessable {
        message: message.into(),
        status: None,
    }
}

/// A hostname Fly accepts: dotted labels of letters, digits and dashes (a leading `*.` allowed).
fn valid_hostname(host: &str) -> bool {
    let bare = host.strip_prefix("*.").unwrap_or(host);
    bare.contains('.')
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `GET /v1/apps/{app}/certificates?filter=&cursor=&limit=` (default 25, max 500).
pub async fn list(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    query: QueryPairs,
) -> SimResult<Json<ListCertificatesResponse>> {
    let limit = query.u64("limit")?.unwrap_or(25).clamp(1, 500) as usize;
    let offset = match query.get("cursor").filter(|c| !c.is_empty()) {
        Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| SimError::invalid("invalid cursor"))?,
        None => 0,
    };
    let filter = query.get("filter").map(str::to_ascii_lowercase);
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let hosts: Vec<String> = w
            .apps
            .get(&app_ref.name)
            .map(|a| a.certificates.keys().cloned().collect())
            .unwrap_or_default();
        for h in &hosts {
            w.progress_cert(&app_ref, h, false, ctx);
        }
        let matching: Vec<&String> = hosts
            .iter()
            .filter(|h| filter.as_ref().is_none_or(|f| h.contains(f.as_str())))
            .collect();
        let mut page = Vec::new();
        for h in matching.iter().skip(offset).take(limit) {
            page.push(w.cert_summary(&app_ref, h)?);
        }
        let next = offset + page.len();
        Ok(Json(ListCertificatesResponse {
            certificates: page,
            total_count: i64::try_from(matching.len()).ok(),
            next_cursor: (next < matching.len()).then(|| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{next}"))
            }),
        }))
    })
}

/// `POST /v1/apps/{app}/certificates/acme {"hostname"}` → `201`; duplicate → `422`.
pub async fn create_acme(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    JsonBody(body): JsonBody<CreateAcmeCertificateRequest>,
) -> SimResult<(StatusCode, Json<CertificateDetail>)> {
    let host = normalize(body.hostname.as_deref().unwrap_or_default());
    if !valid_hostname(&host) {
        return Err(unprocessable("Hostname is invalid"));
    }
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.add_cert(&app_ref, &host, false, ctx)?;
        w.progress_cert(&app_ref, &host, false, ctx);
        Ok((StatusCode::CREATED, Json(w.cert_json(&app_ref, &host)?)))
    })
}

/// `POST /v1/apps/{app}/certificates/custom {"hostname","fullchain","private_key"}` → `201`,
/// `pending_ownership` until the `_fly-ownership` TXT (or an AAAA to the app) is in DNS.
pub async fn create_custom(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    JsonBody(body): JsonBody<CreateCustomCertificateRequest>,
) -> SimResult<(StatusCode, Json<CertificateDetail>)> {
    let host = normalize(body.hostname.as_deref().unwrap_or_default());
    if !valid_hostname(&host) {
        return Err(unprocessable("Hostname is invalid"));
    }
    let pem = |v: &Option<String>, marker: &str| v.as_deref().is_some_and(|v| v.contains(marker));
    if !pem(&body.fullchain, "BEGIN CERTIFICATE") || !pem(&body.private_key, "PRIVATE KEY") {
        return Err(unprocessable("fullchain and private_key must be PEM"));
    }
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.add_cert(&app_ref, &host, true, ctx)?;
        w.progress_cert(&app_ref, &host, false, ctx);
        Ok((StatusCode::CREATED, Json(w.cert_json(&app_ref, &host)?)))
    })
}

/// `GET /v1/apps/{app}/certificates/{hostname}` (a background validation tick happens here).
pub async fn get(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, host)): Path<(String, String)>,
) -> SimResult<Json<CertificateDetail>> {
    let host = normalize(&host);
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.progress_cert(&app_ref, &host, false, ctx);
        w.cert_json(&app_ref, &host).map(Json)
    })
}

/// `POST /v1/apps/{app}/certificates/{hostname}/check`: validates now, answers with `dns_records`.
pub async fn check(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, host)): Path<(String, String)>,
) -> SimResult<Json<CertificateCheckResponse>> {
    let host = normalize(&host);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.cert_json(&app_ref, &host)?;
        w.progress_cert(&app_ref, &host, true, ctx);
        let d = w.cert_json(&app_ref, &host)?;
        Ok(Json(CertificateCheckResponse {
            dns_records: Some(w.dns_records(&host)),
            acme_requested: d.acme_requested,
            certificates: d.certificates,
            configured: d.configured,
            dns_provider: d.dns_provider,
            dns_requirements: d.dns_requirements,
            hostname: d.hostname,
            rate_limited_until: d.rate_limited_until,
            status: d.status,
            validation: d.validation,
            validation_errors: d.validation_errors,
        }))
    })
}

/// `DELETE /v1/apps/{app}/certificates/{hostname}` → `204` (hostname and all its certificates).
pub async fn delete(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, host)): Path<(String, String)>,
) -> SimResult<StatusCode> {
    let host = normalize(&host);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.apps
            .get_mut(&app_ref.name)
            .and_then(|a| a.certificates.remove(&host))
            .map(|_| StatusCode::NO_CONTENT)
            .ok_or_else(cert_not_found)
    })
}

/// Removes one kind of certificate, keeping the other; `200` with what remains.
fn delete_kind(
    sim: &Simulator,
    caller: &Caller,
    app: &str,
    host: &str,
    acme: bool,
) -> SimResult<CertificateDetail> {
    let host = normalize(host);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(app, caller, ctx)?;
        let out_before = w.cert_json(&app_ref, &host)?;
        let a = w
            .apps
            .get_mut(&app_ref.name)
            .ok_or_else(SimError::app_not_found)?;
        let c = a.certificates.get_mut(&host).ok_or_else(cert_not_found)?;
        if acme {
            if !c.acme_requested {
                return Err(cert_not_found());
            }
            c.acme_requested = false;
            c.issued_at = None;
            c.issuing_until = None;
        } else {
            if c.custom_at.is_none() {
                return Err(cert_not_found());
            }
            c.custom_at = None;
        }
        if !c.acme_requested && c.custom_at.is_none() {
            a.certificates.remove(&host);
            return Ok(CertificateDetail {
                certificates: Vec::new(),
                ..out_before
            });
        }
        c.status = if c.acme_requested {
            if c.issued_at.is_some() {
                "active"
            } else {
                "pending_validation"
            }
        } else {
            "active"
        }
        .into();
        w.cert_json(&app_ref, &host)
    })
}

/// `DELETE /v1/apps/{app}/certificates/{hostname}/acme` → `200`.
pub async fn delete_acme(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, host)): Path<(String, String)>,
) -> SimResult<Json<CertificateDetail>> {
    delete_kind(&sim, &caller, &app, &host, true).map(Json)
}

/// `DELETE /v1/apps/{app}/certificates/{hostname}/custom` → `200`.
pub async fn delete_custom(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, host)): Path<(String, String)>,
) -> SimResult<Json<DestroyCustomCertificateResponse>> {
    let d = delete_kind(&sim, &caller, &app, &host, false)?;
    Ok(Json(DestroyCustomCertificateResponse {
        acme_requested: d.acme_requested,
        certificates: d.certificates,
        configured: d.configured,
        dns_provider: d.dns_provider,
        dns_requirements: d.dns_requirements,
        hostname: d.hostname,
        rate_limited_until: d.rate_limited_until,
        status: d.status,
        validation: d.validation,
        validation_errors: d.validation_errors,
        warning: None,
    }))
}
