//! App secrets (api doc §6): a versioned key/value store per app. Every write bumps the
//! version; machines record the version they booted with, and a create/update asking for a
//! `min_secrets_version` the app has not reached is refused as Fly answers it (`412
//! min_secrets_version N is not yet available on this app`; status configurable). Values are
//! only returned with `show_secrets=true`. An app without secrets lists `"secrets": null`, as
//! Fly's Go encodes an empty list.

use super::auth::Caller;
use super::errors::{SimError, SimResult};
use super::extract::{JsonBody, QueryPairs};
use super::records::secret::SecretRec;
use super::state::{AppRef, World};
use super::wire::{
    AppSecret, AppSecrets, AppSecretsUpdateRequest, AppSecretsUpdateResp, DeleteAppSecretResponse,
    SetAppSecretRequest, SetAppSecretResponse,
};
use super::{Ctx, Simulator};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use sha2::Digest;

fn digest(value: &str) -> String {
    let hash = sha2::Sha256::digest(value.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Fly's secret-name rule: a letter or underscore, then letters, digits, underscores.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 256
}

impl World {
    /// The app's current secrets version.
    pub fn secrets_version(&self, app: &AppRef) -> u64 {
        self.apps.get(&app.name).map_or(0, |a| a.secrets_version)
    }

    /// Refuses a create/update whose `min_secrets_version` the app has not reached.
    pub fn check_min_secrets_version(
        &self,
        app: &AppRef,
        min: Option<i64>,
        ctx: &Ctx,
    ) -> SimResult<()> {
        let (Some(min), Some(code)) = (min, ctx.config.min_secrets_version_status) else {
            return Ok(());
        };
        if u64::try_from(min).unwrap_or(0) > self.secrets_version(app) {
            return Err(SimError::Other {
                code,
                message: format!("min_secrets_version {min} is not yet available on this app"),
                status: None,
            });
        }
        Ok(())
    }

    fn set_secrets(
        &mut self,
        app: &AppRef,
        values: Vec<(String, Option<String>)>,
        ctx: &Ctx,
    ) -> SimResult<u64> {
        if let Some((bad, _)) = values.iter().find(|(k, _)| !valid_name(k)) {
            return Err(SimError::invalid(format!("invalid secret name {bad:?}")));
        }
        let a = self
            .apps
            .get_mut(&app.name)
            .ok_or_else(SimError::app_not_found)?;
        for (name, value) in values {
            match value {
                Some(value) => {
                    let created_at = a.secrets.get(&name).map_or(ctx.now, |s| s.created_at);
                    a.secrets.insert(
                        name,
                        SecretRec {
                            digest: digest(&value),
                            value,
                            created_at,
                            updated_at: ctx.now,
                        },
                    );
                }
                None => {
                    a.secrets.remove(&name);
                }
            }
        }
        a.secrets_version += 1;
        Ok(a.secrets_version)
    }

    /// The app's secrets as Fly lists them: `None` (sent as `null`) when there are none.
    fn secrets_json(&self, app: &AppRef, show: bool) -> Option<Vec<AppSecret>> {
        let secrets: Vec<AppSecret> = self
            .apps
            .get(&app.name)
            .map(|a| a.secrets.iter().map(|(k, s)| s.to_wire(k, show)).collect())
            .unwrap_or_default();
        (!secrets.is_empty()).then_some(secrets)
    }
}

/// `GET /v1/apps/{app}/secrets[?show_secrets=true]`.
pub async fn list(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    query: QueryPairs,
) -> SimResult<Json<AppSecrets>> {
    let show = query.flag("show_secrets");
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        Ok(Json(AppSecrets {
            secrets: w.secrets_json(&app_ref, show),
        }))
    })
}

/// A secrets version as answered.
fn wire_version(version: u64) -> Option<i64> {
    i64::try_from(version).ok()
}

/// `POST /v1/apps/{app}/secrets {"values":{k:v|null}}`: one write, one new version.
pub async fn set_many(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    JsonBody(body): JsonBody<AppSecretsUpdateRequest>,
) -> SimResult<Json<AppSecretsUpdateResp>> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let version = w.set_secrets(&app_ref, body.values.into_iter().collect(), ctx)?;
        Ok(Json(AppSecretsUpdateResp {
            secrets: w.secrets_json(&app_ref, false),
            version: wire_version(version),
            version_deprecated: wire_version(version),
        }))
    })
}

/// `GET /v1/apps/{app}/secrets/{name}[?show_secrets=true]`.
pub async fn get(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, name)): Path<(String, String)>,
    query: QueryPairs,
) -> SimResult<Json<AppSecret>> {
    let show = query.flag("show_secrets");
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.apps
            .get(&app_ref.name)
            .and_then(|a| a.secrets.get(&name))
            .map(|s| Json(s.to_wire(&name, show)))
            .ok_or_else(|| SimError::NotFound("secret not found".into()))
    })
}

/// `POST /v1/apps/{app}/secrets/{name} {"value"}`: `201` with the new version.
pub async fn set_one(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetAppSecretRequest>,
) -> SimResult<(StatusCode, Json<SetAppSecretResponse>)> {
    let value = body
        .value
        .ok_or_else(|| SimError::invalid("value is required"))?;
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let version = w.set_secrets(&app_ref, vec![(name.clone(), Some(value))], ctx)?;
        let secret = w
            .apps
            .get(&app_ref.name)
            .and_then(|a| a.secrets.get(&name))
            .map(|s| s.to_wire(&name, false))
            .ok_or_else(|| SimError::NotFound("secret not found".into()))?;
        Ok((
            StatusCode::CREATED,
            Json(SetAppSecretResponse {
                name: secret.name,
                digest: secret.digest,
                created_at: secret.created_at,
                updated_at: secret.updated_at,
                value: None,
                version: wire_version(version),
                version_deprecated: wire_version(version),
            }),
        ))
    })
}

/// `DELETE /v1/apps/{app}/secrets/{name}`: `{"version":N}`; 404 when unset.
pub async fn delete(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, name)): Path<(String, String)>,
) -> SimResult<Json<DeleteAppSecretResponse>> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        if !w
            .apps
            .get(&app_ref.name)
            .is_some_and(|a| a.secrets.contains_key(&name))
        {
            return Err(SimError::NotFound("secret not found".into()));
        }
        let version = w.set_secrets(&app_ref, vec![(name, None)], ctx)?;
        Ok(Json(DeleteAppSecretResponse {
            version: wire_version(version),
            version_deprecated: wire_version(version),
        }))
    })
}
