//! `spec`: what the dashboard writes. Every field but `customerId` and `region` has a default,
//! which is applied on write and shown on read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::channels::ChannelsSpec;
use crate::secret_ref::SecretRef;

/// Image the gateway machine runs unless the spec pins another (a digest pin is allowed).
pub const DEFAULT_IMAGE: &str = "ghcr.io/openclaw/openclaw:main";
/// Model the gateway's default agent uses unless the spec says otherwise.
pub const DEFAULT_MODEL: &str = "anthropic/claude-sonnet-4-6";

/// Desired state of one customer's gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceSpec {
    /// The customer this gateway belongs to (the dashboard's id): 1–128 printable characters,
    /// immutable after create.
    #[schema(min_length = 1, max_length = 128)]
    pub customer_id: String,
    /// Fly region for the volume and the machine, e.g. `iad`. Changing it is not supported in place.
    #[schema(pattern = "^[a-z]{3}$", example = "iad")]
    pub region: String,
    /// Gateway image reference (`registry/repo:tag` or `...@sha256:<digest>`), at most 255 characters.
    #[serde(default = "default_image")]
    #[schema(default = json!(DEFAULT_IMAGE), min_length = 1, max_length = 255, pattern = "^[^\\s]+$")]
    pub image: String,
    #[serde(default)]
    pub guest: GuestSpec,
    /// Size of the `/data` volume in GB (grow only).
    #[serde(default = "default_volume_size_gb")]
    #[schema(default = 1, minimum = 1, maximum = 500)]
    pub volume_size_gb: u32,
    #[serde(default)]
    pub run_state: RunState,
    #[serde(default)]
    pub exposure: Exposure,
    #[serde(default)]
    pub model: ModelSpec,
    #[serde(default)]
    pub provider_keys: ProviderKeys,
    #[serde(default)]
    pub composio: ComposioSpec,
    #[serde(default)]
    pub pairing: PairingSpec,
    #[serde(default)]
    pub identity: IdentitySpec,
    /// Messaging channels (Telegram, Discord, Slack); omitted when none is configured.
    #[serde(default, skip_serializing_if = "ChannelsSpec::is_empty")]
    pub channels: ChannelsSpec,
    /// Stop reconciling this instance (for support); status says so. Deletion overrides it: a
    /// paused instance that is deleted is torn down (see [`suspended`]).
    #[serde(default)]
    pub paused: bool,
    /// Change this number to rotate the gateway token (devices must then use the new one).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub gateway_token_rotation: u32,
}

impl InstanceSpec {
    /// Every stored credential reference (provider keys and channel credentials), to rewrite
    /// their fingerprints for display.
    pub fn secret_refs_mut(&mut self) -> Vec<&mut SecretRef> {
        let keys = &mut self.provider_keys;
        let mut refs: Vec<&mut SecretRef> = [
            &mut keys.anthropic_api_key,
            &mut keys.anthropic_oauth_token,
            &mut keys.openai_api_key,
        ]
        .into_iter()
        .filter_map(Option::as_mut)
        .collect();
        let channels = &mut self.channels;
        if let Some(t) = channels.telegram.as_mut() {
            refs.extend(t.bot_token.as_mut());
        }
        if let Some(d) = channels.discord.as_mut() {
            refs.extend(d.token.as_mut());
        }
        if let Some(s) = channels.slack.as_mut() {
            refs.extend(s.bot_token.as_mut());
            refs.extend(s.app_token.as_mut());
        }
        refs
    }
}

fn default_image() -> String {
    DEFAULT_IMAGE.to_owned()
}

fn default_volume_size_gb() -> u32 {
    1
}

/// Machine size. 512 MB is documented to OOM the gateway, hence the 2048 MB default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuestSpec {
    #[serde(default)]
    pub cpu_kind: CpuKind,
    /// One of 1, 2, 4, 8, 16.
    #[serde(default = "default_cpus")]
    #[schema(default = 2, minimum = 1, maximum = 16)]
    pub cpus: u32,
    /// A multiple of 256, at least 1024 (OpenClaw's gateway runs out of memory below that),
    /// within Fly's range for the CPU kind: shared 256–2048 MB per CPU, performance 2048–8192 MB
    /// per CPU.
    #[serde(default = "default_memory_mb")]
    #[schema(default = 2048, minimum = 1024, maximum = 131072, multiple_of = 256)]
    pub memory_mb: u32,
}

fn default_cpus() -> u32 {
    2
}

fn default_memory_mb() -> u32 {
    2048
}

/// Whether the controller leaves an instance alone: `spec.paused`, unless deletion was
/// requested. Deletion always wins, so no instance is ever stuck unable to run, pause or go away
/// (a paused instance cannot be un-paused once it is being deleted).
pub fn suspended(paused: bool, deleting: bool) -> bool {
    paused && !deleting
}

impl Default for GuestSpec {
    fn default() -> Self {
        Self {
            cpu_kind: CpuKind::default(),
            cpus: default_cpus(),
            memory_mb: default_memory_mb(),
        }
    }
}

/// Fly CPU class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CpuKind {
    #[default]
    Shared,
    Performance,
}

impl CpuKind {
    /// The value Fly's `guest.cpu_kind` takes.
    pub fn as_fly(self) -> &'static str {
        match self {
            CpuKind::Shared => "shared",
            CpuKind::Performance => "performance",
        }
    }
}

/// Whether the gateway should be running (e.g. `stopped` for unpaid accounts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    #[default]
    Running,
    Stopped,
}

/// Whether the gateway gets public IPs and a hostname.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    #[default]
    Public,
    Private,
}

/// Models of the gateway's default agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelSpec {
    /// Model id, e.g. `anthropic/claude-sonnet-4-6`.
    #[serde(default = "default_model")]
    #[schema(default = json!(DEFAULT_MODEL), min_length = 1, max_length = 200)]
    pub primary: String,
    /// Models tried in order when the primary fails; each non-empty.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub fallbacks: Vec<String>,
}

fn default_model() -> String {
    DEFAULT_MODEL.to_owned()
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            primary: default_model(),
            fallbacks: Vec::new(),
        }
    }
}

/// The customer's model credentials: write-only. Stored encrypted; the spec keeps only references.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderKeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_api_key: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_oauth_token: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai_api_key: Option<SecretRef>,
}

/// The model provider keys a customer can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProviderKey {
    /// Anthropic API key.
    AnthropicApiKey,
    /// Anthropic OAuth token (Claude subscriptions).
    AnthropicOauthToken,
    /// OpenAI API key.
    OpenaiApiKey,
}

impl ProviderKey {
    /// Every provider key, in the order of [`ProviderKeys`]'s fields.
    pub const ALL: [ProviderKey; 3] = [
        ProviderKey::AnthropicApiKey,
        ProviderKey::AnthropicOauthToken,
        ProviderKey::OpenaiApiKey,
    ];

    /// The environment variable the gateway reads it from, which is also the name it is stored
    /// and set on the Fly app under.
    pub const fn env_name(self) -> &'static str {
        match self {
            ProviderKey::AnthropicApiKey => "ANTHROPIC_API_KEY",
            ProviderKey::AnthropicOauthToken => "ANTHROPIC_OAUTH_TOKEN",
            ProviderKey::OpenaiApiKey => "OPENAI_API_KEY",
        }
    }

    /// Its field under `spec.providerKeys`.
    pub const fn field(self) -> &'static str {
        match self {
            ProviderKey::AnthropicApiKey => "anthropicApiKey",
            ProviderKey::AnthropicOauthToken => "anthropicOauthToken",
            ProviderKey::OpenaiApiKey => "openaiApiKey",
        }
    }
}

impl ProviderKeys {
    /// The reference held for `key`, if one is set.
    pub fn get(&self, key: ProviderKey) -> Option<&SecretRef> {
        match key {
            ProviderKey::AnthropicApiKey => self.anthropic_api_key.as_ref(),
            ProviderKey::AnthropicOauthToken => self.anthropic_oauth_token.as_ref(),
            ProviderKey::OpenaiApiKey => self.openai_api_key.as_ref(),
        }
    }
}

/// Composio tools for the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComposioSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Per-customer Composio entity; defaults to the customer id when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 128)]
    pub entity_id: Option<String>,
}

/// How device pairing requests are approved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PairingSpec {
    #[serde(default)]
    pub policy: PairingPolicy,
    /// Requests to approve under the `manual` policy.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub approvals: Vec<PairingApproval>,
    /// How DM pairing requests (a stranger's first DM to a channel's bot, OpenClaw's
    /// `dmPolicy: "pairing"`) are decided. `manual` by default: a DM comes from a stranger.
    #[serde(default)]
    pub channels: ChannelPairingPolicy,
    /// DM pairing requests to approve or dismiss (recorded by
    /// `POST /v1/instances/{name}/channels/{channel}/pairing/approvals` and `.../dismissals`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 100)]
    pub channel_decisions: Vec<ChannelPairingDecision>,
}

/// `manual` (default): DM pairing requests wait for an approval through the API; `auto`:
/// every DM pairing request is approved as it appears (only when set explicitly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelPairingPolicy {
    #[default]
    Manual,
    Auto,
}

/// One decision about a pending DM pairing request, recorded as desired state. The controller
/// carries it out once over the gateway protocol and reports the outcome in
/// `status.pairing.recent` under its `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelPairingDecision {
    /// Identifies the decision in `status.pairing.recent`.
    #[schema(min_length = 1, max_length = 64)]
    pub id: String,
    /// When it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// The channel (`telegram`, `discord`, `slack`, ...).
    #[schema(min_length = 1, max_length = 32)]
    pub channel: String,
    /// The request's id as listed in `status.pairing.channelPending`.
    #[schema(min_length = 1, max_length = 64)]
    pub request_id: String,
    pub decision: ChannelPairingVerdict,
    /// Tell the sender on the channel that they were approved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notify: bool,
}

/// What to do with a pending DM pairing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelPairingVerdict {
    /// Let the sender talk to the agent.
    Approve,
    /// Drop the request (not a block: the sender may ask again later).
    Dismiss,
}

/// `auto` approves pending requests as they appear; `manual` approves only those named in `approvals`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PairingPolicy {
    #[default]
    Auto,
    Manual,
}

/// One approval recorded as desired state. The controller carries it out once and reports the
/// outcome in `status.pairing.recent` under its `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PairingApproval {
    /// Identifies the approval in `status.pairing.recent` (assigned by
    /// `POST /v1/instances/{name}/pairing/approvals`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64)]
    pub id: Option<String>,
    /// When it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// A specific pending request id (exactly one of `requestId` and `latest: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 128)]
    pub request_id: Option<String>,
    /// Approve the newest pending request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<bool>,
}

impl PairingApproval {
    /// The key its outcome is recorded under: its id, else its request id, else `latest`.
    pub fn key(&self) -> String {
        self.id
            .clone()
            .or_else(|| self.request_id.clone())
            .unwrap_or_else(|| "latest".to_owned())
    }
}

/// How the agent introduces itself (rendered into `IDENTITY.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentitySpec {
    /// Name the agent uses for itself: 1–64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
}
