//! Write shapes: what a client sends on PUT and PATCH. They differ from the read shape only in
//! `spec.providerKeys` and the channel credentials under `spec.channels`, whose values may be
//! plaintext secrets on the way in and are never shown on the way out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::{DmPolicy, InstanceSpec, OpenClawInstance};

/// One provider key on a write: a string sets or replaces the value, the read-shape object
/// `{"set": true, ...}` keeps the stored value, `null` (or omitting it) removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SecretWrite {
    /// The new plaintext value (1–4096 characters, no whitespace). Stored encrypted, never shown.
    Value(String),
    /// Keep the stored value.
    Keep(SecretKeep),
}

/// The read-shape object sent back to keep a stored secret unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeep {
    /// Must be `true`.
    pub set: bool,
    /// Ignored; accepted so a read object can be sent back unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Ignored; accepted so a read object can be sent back unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// `spec.providerKeys` on a write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderKeysWrite {
    /// `ANTHROPIC_API_KEY`.
    #[serde(default)]
    pub anthropic_api_key: Option<SecretWrite>,
    /// `ANTHROPIC_OAUTH_TOKEN`.
    #[serde(default)]
    pub anthropic_oauth_token: Option<SecretWrite>,
    /// `OPENAI_API_KEY`.
    #[serde(default)]
    pub openai_api_key: Option<SecretWrite>,
}

/// `spec.channels` on a write: each credential in the form of [`SecretWrite`]. Only a schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelsWrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramChannelWrite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<DiscordChannelWrite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackChannelWrite>,
}

fn enabled_by_default() -> bool {
    true
}

/// `spec.channels.telegram` on a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelegramChannelWrite {
    #[serde(default = "enabled_by_default")]
    #[schema(default = true)]
    pub enabled: bool,
    /// The bot token (required while the channel is configured).
    #[serde(default)]
    pub bot_token: Option<SecretWrite>,
    #[serde(default)]
    pub dm_policy: DmPolicy,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allow_from: Vec<String>,
}

/// `spec.channels.discord` on a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscordChannelWrite {
    #[serde(default = "enabled_by_default")]
    #[schema(default = true)]
    pub enabled: bool,
    /// The bot token (required while the channel is configured).
    #[serde(default)]
    pub token: Option<SecretWrite>,
    #[serde(default)]
    pub dm_policy: DmPolicy,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allow_from: Vec<String>,
}

/// `spec.channels.slack` on a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackChannelWrite {
    #[serde(default = "enabled_by_default")]
    #[schema(default = true)]
    pub enabled: bool,
    /// The bot token `xoxb-…` (required while the channel is configured).
    #[serde(default)]
    pub bot_token: Option<SecretWrite>,
    /// The app-level token `xapp-…` for Socket Mode (required while the channel is configured).
    #[serde(default)]
    pub app_token: Option<SecretWrite>,
    #[serde(default)]
    pub dm_policy: DmPolicy,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allow_from: Vec<String>,
}

/// `spec` on a write: [`InstanceSpec`] with `providerKeys` and `channels` in their write forms
/// ([`ProviderKeysWrite`], [`ChannelsWrite`]). Only a schema; the API reads the raw JSON.
pub struct InstanceSpecWrite;

impl PartialSchema for InstanceSpecWrite {
    fn schema() -> RefOr<Schema> {
        let mut schema = <InstanceSpec as PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.properties.insert(
                "providerKeys".to_owned(),
                RefOr::Ref(Ref::from_schema_name(ProviderKeysWrite::name())),
            );
            object.properties.insert(
                "channels".to_owned(),
                RefOr::Ref(Ref::from_schema_name(ChannelsWrite::name())),
            );
            object.description = Some(
                "Desired state as written: `spec` with write-only provider keys and channel credentials."
                    .to_owned(),
            );
        }
        schema
    }
}

impl ToSchema for InstanceSpecWrite {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("InstanceSpecWrite")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            ProviderKeysWrite::name().into_owned(),
            <ProviderKeysWrite as PartialSchema>::schema(),
        ));
        <ProviderKeysWrite as ToSchema>::schemas(schemas);
        schemas.push((
            ChannelsWrite::name().into_owned(),
            <ChannelsWrite as PartialSchema>::schema(),
        ));
        <ChannelsWrite as ToSchema>::schemas(schemas);
        <InstanceSpec as ToSchema>::schemas(schemas);
    }
}

/// The metadata a client may send: everything else is assigned by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteMeta {
    /// Must equal the name in the path when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Replaces the labels when given; omitted keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Precondition: the write fails with 409 unless this is the current resource version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// Body of `PUT /v1/instances/{name}`, and the object a merge patch must produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceWrite {
    /// Optional; must be `openclaws.biz/v1alpha1` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Optional; must be `OpenClawInstance` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: WriteMeta,
    /// The desired state; defaults are applied to omitted fields.
    #[schema(value_type = InstanceSpecWrite)]
    pub spec: serde_json::Value,
}

/// Body of `PATCH /v1/instances/{name}`: an RFC 7386 merge patch applied to
/// `{"metadata": {"labels": ...}, "spec": ...}`; the result must be a valid [`InstanceWrite`].
/// `null` removes a field (and so resets it to its default, or removes a provider key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstancePatch {
    /// Labels to merge and `resourceVersion` as a precondition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Fields of the spec to merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub spec: Option<serde_json::Value>,
}

/// A page of instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenClawInstanceList {
    /// Always `openclaws.biz/v1alpha1`.
    pub api_version: String,
    /// Always `OpenClawInstanceList`.
    pub kind: String,
    /// Instances ordered by name.
    pub items: Vec<OpenClawInstance>,
    pub metadata: ListMeta,
}

/// Paging state of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// Opaque cursor for the next page; absent on the last page.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_: Option<String>,
    /// Every change up to this version is reflected in the page: a watch from it
    /// (`?watch=true&resourceVersion=`) misses nothing. Of a paged list, watch from the first
    /// page's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}
