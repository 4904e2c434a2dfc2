//! `spec.channels`: the messaging channels (Telegram, Discord, Slack) a customer connects to their
//! agent, with write-only bot credentials, and `status.channels`: how each one is doing.
//!
//! Field names follow OpenClaw 2026.9.6's channel config (`docs/channels/{telegram,discord,slack}.md`
//! and its config schema): Telegram's `botToken`, Discord's `token`, Slack's `botToken` and
//! `appToken` (Socket Mode, OpenClaw's default), and `dmPolicy` / `allowFrom` at each channel's root.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::conditions::Reason;
use crate::secret_ref::SecretRef;

/// Longest accepted allow-list.
pub const MAX_ALLOW_FROM: usize = 100;

/// The channels a customer connects; a channel left out is not managed (and, if it was, is
/// removed from the gateway with its credentials).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<DiscordChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackChannel>,
}

/// A Telegram bot (long polling).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelegramChannel {
    /// `false` keeps the channel configured but stopped.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub enabled: bool,
    /// The bot token from BotFather: write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<SecretRef>,
    #[serde(default)]
    pub dm_policy: DmPolicy,
    /// Numeric Telegram user ids allowed to DM the bot (required by `allowlist`).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allow_from: Vec<String>,
}

/// A Discord bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscordChannel {
    /// `false` keeps the channel configured but stopped.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub enabled: bool,
    /// The bot token from the Discord developer portal: write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretRef>,
    #[serde(default)]
    pub dm_policy: DmPolicy,
    /// Discord user ids (or `discord:<id>`) allowed to DM the bot (required by `allowlist`).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allow_from: Vec<String>,
}

/// A Slack app in Socket Mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackChannel {
    /// `false` keeps the channel configured but stopped.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub enabled: bool,
    /// The bot token (`xoxb-…`): write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<SecretRef>,
    /// The app-level token for Socket Mode (`xapp-…`): write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token: Option<SecretRef>,
    #[serde(default)]
    pub dm_policy: DmPolicy,
    /// Slack member ids allowed to DM the bot (required by `allowlist`).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allow_from: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// Who may DM the bot: `pairing` (an unknown sender gets a code the owner approves),
/// `allowlist` (only `allowFrom`), `disabled` (no DMs). OpenClaw's `open` is not offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    #[default]
    Pairing,
    Allowlist,
    Disabled,
}

impl DmPolicy {
    /// OpenClaw's value for `dmPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            DmPolicy::Pairing => "pairing",
            DmPolicy::Allowlist => "allowlist",
            DmPolicy::Disabled => "disabled",
        }
    }
}

/// The channels the controller manages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Telegram,
    Discord,
    Slack,
}

impl ChannelKind {
    /// Every managed channel, in a fixed order.
    pub const ALL: [ChannelKind; 3] = [
        ChannelKind::Telegram,
        ChannelKind::Discord,
        ChannelKind::Slack,
    ];

    /// OpenClaw's channel id (also the key under `channels` and `spec.channels`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Telegram => "telegram",
            ChannelKind::Discord => "discord",
            ChannelKind::Slack => "slack",
        }
    }

    /// The channel with this id.
    pub fn parse(id: &str) -> Option<ChannelKind> {
        Self::ALL.into_iter().find(|c| c.as_str() == id)
    }

    /// Its credentials.
    pub fn secrets(self) -> &'static [ChannelSecret] {
        match self {
            ChannelKind::Telegram => &[ChannelSecret::TelegramBotToken],
            ChannelKind::Discord => &[ChannelSecret::DiscordToken],
            ChannelKind::Slack => &[ChannelSecret::SlackBotToken, ChannelSecret::SlackAppToken],
        }
    }
}

/// One write-only channel credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChannelSecret {
    TelegramBotToken,
    DiscordToken,
    SlackBotToken,
    SlackAppToken,
}

impl ChannelSecret {
    /// Every channel credential.
    pub const ALL: [ChannelSecret; 4] = [
        ChannelSecret::TelegramBotToken,
        ChannelSecret::DiscordToken,
        ChannelSecret::SlackBotToken,
        ChannelSecret::SlackAppToken,
    ];

    /// The channel it belongs to.
    pub const fn channel(self) -> ChannelKind {
        match self {
            ChannelSecret::TelegramBotToken => ChannelKind::Telegram,
            ChannelSecret::DiscordToken => ChannelKind::Discord,
            ChannelSecret::SlackBotToken | ChannelSecret::SlackAppToken => ChannelKind::Slack,
        }
    }

    /// Its field in `spec.channels.<channel>` and in OpenClaw's `channels.<channel>`.
    pub const fn field(self) -> &'static str {
        match self {
            ChannelSecret::TelegramBotToken | ChannelSecret::SlackBotToken => "botToken",
            ChannelSecret::DiscordToken => "token",
            ChannelSecret::SlackAppToken => "appToken",
        }
    }

    /// The name it is stored under (encrypted) in the controller's database.
    pub const fn stored_name(self) -> &'static str {
        match self {
            ChannelSecret::TelegramBotToken => "TELEGRAM_BOT_TOKEN",
            ChannelSecret::DiscordToken => "DISCORD_BOT_TOKEN",
            ChannelSecret::SlackBotToken => "SLACK_BOT_TOKEN",
            ChannelSecret::SlackAppToken => "SLACK_APP_TOKEN",
        }
    }

    /// The name of its entry in the gateway's secret store, which the channel's config refers
    /// to with a `store` SecretRef.
    pub const fn store_name(self) -> &'static str {
        match self {
            ChannelSecret::TelegramBotToken => "OPENCLAWS_TELEGRAM_BOT_TOKEN",
            ChannelSecret::DiscordToken => "OPENCLAWS_DISCORD_TOKEN",
            ChannelSecret::SlackBotToken => "OPENCLAWS_SLACK_BOT_TOKEN",
            ChannelSecret::SlackAppToken => "OPENCLAWS_SLACK_APP_TOKEN",
        }
    }

    /// The store entry (kind `env`, readable back) holding the keyed fingerprint of the value in
    /// [`Self::store_name`]; written after the value, so it says which value is in place.
    pub const fn marker_name(self) -> &'static str {
        match self {
            ChannelSecret::TelegramBotToken => "OPENCLAWS_TELEGRAM_BOT_TOKEN_FP",
            ChannelSecret::DiscordToken => "OPENCLAWS_DISCORD_TOKEN_FP",
            ChannelSecret::SlackBotToken => "OPENCLAWS_SLACK_BOT_TOKEN_FP",
            ChannelSecret::SlackAppToken => "OPENCLAWS_SLACK_APP_TOKEN_FP",
        }
    }

    /// Its JSON Pointer in the write object (`/spec/channels/telegram/botToken`).
    pub fn pointer(self) -> String {
        format!(
            "/spec/channels/{}/{}",
            self.channel().as_str(),
            self.field()
        )
    }

    /// Its dotted path in error messages (`spec.channels.telegram.botToken`).
    pub fn path(self) -> String {
        format!("spec.channels.{}.{}", self.channel().as_str(), self.field())
    }
}

/// What every channel has, whatever its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelView<'a> {
    pub kind: ChannelKind,
    pub enabled: bool,
    pub dm_policy: DmPolicy,
    pub allow_from: &'a [String],
}

impl ChannelsSpec {
    /// Whether no channel is configured.
    pub fn is_empty(&self) -> bool {
        self.telegram.is_none() && self.discord.is_none() && self.slack.is_none()
    }

    /// The configured channel of this kind.
    pub fn get(&self, kind: ChannelKind) -> Option<ChannelView<'_>> {
        let view = |enabled, dm_policy, allow_from| ChannelView {
            kind,
            enabled,
            dm_policy,
            allow_from,
        };
        match kind {
            ChannelKind::Telegram => self
                .telegram
                .as_ref()
                .map(|c| view(c.enabled, c.dm_policy, &c.allow_from)),
            ChannelKind::Discord => self
                .discord
                .as_ref()
                .map(|c| view(c.enabled, c.dm_policy, &c.allow_from)),
            ChannelKind::Slack => self
                .slack
                .as_ref()
                .map(|c| view(c.enabled, c.dm_policy, &c.allow_from)),
        }
    }

    /// Every configured channel, in [`ChannelKind::ALL`] order.
    pub fn configured(&self) -> Vec<ChannelView<'_>> {
        ChannelKind::ALL
            .into_iter()
            .filter_map(|k| self.get(k))
            .collect()
    }

    /// The stored reference of one credential, if its channel is configured and it is set.
    pub fn secret(&self, secret: ChannelSecret) -> Option<&SecretRef> {
        match secret {
            ChannelSecret::TelegramBotToken => self.telegram.as_ref()?.bot_token.as_ref(),
            ChannelSecret::DiscordToken => self.discord.as_ref()?.token.as_ref(),
            ChannelSecret::SlackBotToken => self.slack.as_ref()?.bot_token.as_ref(),
            ChannelSecret::SlackAppToken => self.slack.as_ref()?.app_token.as_ref(),
        }
    }

    /// The slot of one credential, if its channel is configured.
    pub fn secret_mut(&mut self, secret: ChannelSecret) -> Option<&mut Option<SecretRef>> {
        match secret {
            ChannelSecret::TelegramBotToken => Some(&mut self.telegram.as_mut()?.bot_token),
            ChannelSecret::DiscordToken => Some(&mut self.discord.as_mut()?.token),
            ChannelSecret::SlackBotToken => Some(&mut self.slack.as_mut()?.bot_token),
            ChannelSecret::SlackAppToken => Some(&mut self.slack.as_mut()?.app_token),
        }
    }
}

/// How one channel is doing, in summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum ChannelState {
    /// The gateway reports the channel running and connected.
    Connected,
    /// The channel is configured but not working (see its reason).
    Failing,
    /// `enabled: false` in the spec.
    Disabled,
    /// Not observed yet (gateway not looked at, channel starting).
    Pending,
}

impl ChannelState {
    /// Every state, for metrics.
    pub const ALL: [ChannelState; 4] = [
        ChannelState::Connected,
        ChannelState::Failing,
        ChannelState::Disabled,
        ChannelState::Pending,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Connected => "Connected",
            ChannelState::Failing => "Failing",
            ChannelState::Disabled => "Disabled",
            ChannelState::Pending => "Pending",
        }
    }
}

/// `status.channels[]`: one configured channel as the gateway last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    pub channel: ChannelKind,
    pub state: ChannelState,
    /// `Connected`, `InvalidToken`, `Unreachable`, `Pending`, `Disabled` or `NotChecked`.
    #[schema(value_type = String)]
    pub reason: Reason,
    /// What the gateway said, credentials redacted.
    pub message: String,
    /// When the gateway was last asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_belongs_to_its_channel_and_has_distinct_names() {
        for kind in ChannelKind::ALL {
            for s in kind.secrets() {
                assert_eq!(s.channel(), kind);
            }
        }
        let mut names: Vec<&str> = ChannelSecret::ALL
            .iter()
            .flat_map(|s| [s.stored_name(), s.store_name(), s.marker_name()])
            .collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        for s in ChannelSecret::ALL {
            let ok = |n: &str| {
                n.starts_with(|c: char| c.is_ascii_uppercase())
                    && n.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            };
            assert!(ok(s.store_name()) && ok(s.marker_name()), "{s:?}");
        }
        assert_eq!(
            ChannelSecret::SlackAppToken.pointer(),
            "/spec/channels/slack/appToken"
        );
    }

    #[test]
    fn defaults_enable_the_channel_with_pairing() {
        let spec: ChannelsSpec = serde_json::from_str(r#"{"telegram": {}}"#).unwrap();
        let t = spec.get(ChannelKind::Telegram).unwrap();
        assert!(t.enabled);
        assert_eq!(t.dm_policy, DmPolicy::Pairing);
        assert!(spec.get(ChannelKind::Slack).is_none());
        assert!(ChannelsSpec::default().is_empty());
    }
}
