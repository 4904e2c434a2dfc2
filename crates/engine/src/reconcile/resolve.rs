//! Stage 2, resolve secrets: the app secrets the instance should hold, built from what is
//! stored; what is missing is created here (a gateway token on first use or rotation, an LLM
//! proxy token when none is current, the controller's device identity for this gateway) and
//! stored by the record stage together with the status. No I/O.
//!
//! A value created here that a crash keeps from being recorded is created again by the next
//! reconcile and set on the app again: the app's secrets always end up matching what is stored.

use base64::Engine;

use openclaws_gateway::identity::DeviceIdentity;
use openclaws_model::secret_names::{CONTROLLER_DEVICE_KEY, GATEWAY_TOKEN, LLM_PROXY_TOKEN};
use openclaws_model::secrets::SecretCipher;

use super::report::Report;
use super::secrets::{DraftInput, SecretsDraft};
use super::{DesiredInputs, ReconcileError};

/// Fills in the desired secrets and the controller's identity; records what it created.
pub(super) fn resolve_secrets(
    report: &mut Report,
    inputs: &DesiredInputs,
    cipher: &SecretCipher,
) -> Result<(), ReconcileError> {
    let loaded = &report.loaded;
    let mut draft = SecretsDraft::build(
        &loaded.stored,
        DraftInput {
            uid: loaded.record.uid,
            spec: &loaded.spec,
            stored_token_rotation: loaded.record.gateway_token_rotation,
            proxy_token: report.desired.proxy_token,
            inputs,
            now: loaded.now,
        },
    );
    let resolved = &mut report.resolved;
    if draft.gateway_token_missing {
        let token = generate_token();
        resolved.new_secrets.push((GATEWAY_TOKEN, token.clone()));
        resolved.gateway_token_rotation = Some(i64::from(loaded.spec.gateway_token_rotation));
        draft.set_gateway_token(token);
    }
    if let (true, Some(key)) = (draft.proxy_token_missing, &inputs.llm_proxy_key) {
        let minted = key
            .mint(loaded.record.uid, loaded.now)
            .map_err(|e| ReconcileError::ProxyToken(e.to_string()))?;
        resolved
            .new_secrets
            .push((LLM_PROXY_TOKEN, minted.expose().to_owned()));
        draft.set_proxy_token(minted.expose().to_owned(), minted.claims.rotate_at());
    }
    resolved.proxy_token_rotate_at = draft.proxy_token_rotate_at;
    if report.desired.gateway.is_some() {
        resolved.identity = Some(controller_identity(loaded, &mut resolved.new_secrets));
    }
    report.desired.set_secrets(draft.finish(cipher));
    Ok(())
}

/// The controller's device identity for this gateway: the stored one, or a new one to store.
fn controller_identity(
    loaded: &super::report::Loaded,
    new_secrets: &mut Vec<(&'static str, String)>,
) -> DeviceIdentity {
    let engine = base64::engine::general_purpose::STANDARD;
    stored_identity(loaded).unwrap_or_else(|| {
        let identity = DeviceIdentity::generate();
        new_secrets.push((
            CONTROLLER_DEVICE_KEY,
            engine.encode(identity.to_secret_bytes()),
        ));
        identity
    })
}

/// The controller's stored device identity for this gateway, if one was recorded.
pub(super) fn stored_identity(loaded: &super::report::Loaded) -> Option<DeviceIdentity> {
    let engine = base64::engine::general_purpose::STANDARD;
    loaded
        .stored
        .get(CONTROLLER_DEVICE_KEY)
        .and_then(|text| engine.decode(text.trim()).ok())
        .and_then(|bytes| DeviceIdentity::from_secret_bytes(&bytes).ok())
}

/// A fresh gateway token: 32 random bytes, base64url.
fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
