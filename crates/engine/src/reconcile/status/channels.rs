//! `status.channels` and the `ChannelsReady` condition: each channel of the spec as the gateway
//! last reported it (`channels.status`, read on the reconcile's look), kept from the previous
//! status when this reconcile did not ask.

use openclaws_model::conditions::Reason;
use openclaws_model::{ChannelState, ChannelStatus, InstanceStatus};

use crate::reconcile::desired::Desired;
use crate::reconcile::world::Observed;

/// Each configured channel's status: `Disabled` when the spec disables it, else what this
/// reconcile's look reported, else what the previous status said, else not checked yet.
pub(super) fn statuses(
    desired: &Desired,
    observed: &Observed,
    previous: &InstanceStatus,
) -> Vec<ChannelStatus> {
    let reports = observed
        .gateway
        .as_ref()
        .map(|gw| gw.channels.reports.as_slice())
        .unwrap_or_default();
    desired
        .channels
        .channels
        .iter()
        .map(|c| {
            let id = c.kind.as_str();
            if !c.enabled {
                return ChannelStatus {
                    channel: c.kind,
                    state: ChannelState::Disabled,
                    reason: Reason::Disabled,
                    message: format!("{id} is disabled in the spec (enabled: false)"),
                    last_checked_at: None,
                };
            }
            let found = |list: &[ChannelStatus]| list.iter().find(|s| s.channel == c.kind).cloned();
            found(reports)
                .or_else(|| found(&previous.channels).filter(|s| s.state != ChannelState::Disabled))
                .unwrap_or_else(|| ChannelStatus {
                    channel: c.kind,
                    state: ChannelState::Pending,
                    reason: Reason::NotChecked,
                    message: format!("the gateway was not asked about {id} yet"),
                    last_checked_at: None,
                })
        })
        .collect()
}

/// `ChannelsReady`: true when every enabled channel is connected; otherwise the worst reason
/// (`InvalidToken`, then `Unreachable`, then `Pending`, then not checked) and every channel
/// that is not.
pub(super) fn ready(channels: &[ChannelStatus]) -> (bool, Reason, String) {
    let failing: Vec<&ChannelStatus> = channels
        .iter()
        .filter(|s| !matches!(s.state, ChannelState::Connected | ChannelState::Disabled))
        .collect();
    if failing.is_empty() {
        let connected: Vec<&str> = channels
            .iter()
            .filter(|s| s.state == ChannelState::Connected)
            .map(|s| s.channel.as_str())
            .collect();
        return match connected.is_empty() {
            true => (
                true,
                Reason::Disabled,
                "every channel is disabled".to_owned(),
            ),
            false => (
                true,
                Reason::Connected,
                format!("connected: {}", connected.join(", ")),
            ),
        };
    }
    let reason = [Reason::InvalidToken, Reason::Unreachable, Reason::Pending]
        .into_iter()
        .find(|r| failing.iter().any(|s| s.reason == *r))
        .unwrap_or(Reason::NotChecked);
    let message = failing
        .iter()
        .map(|s| s.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    (false, reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaws_model::ChannelKind;

    fn status(channel: ChannelKind, state: ChannelState, reason: Reason) -> ChannelStatus {
        ChannelStatus {
            channel,
            state,
            reason,
            message: format!("{} {}", channel.as_str(), reason.as_str()),
            last_checked_at: None,
        }
    }

    #[test]
    fn channels_ready_takes_the_worst_reason_and_ignores_disabled_channels() {
        use ChannelKind::*;
        use ChannelState::*;
        let ok = status(Telegram, Connected, Reason::Connected);
        let off = status(Slack, Disabled, Reason::Disabled);
        assert!(ready(&[ok.clone(), off.clone()]).0);
        assert_eq!(ready(std::slice::from_ref(&off)).1, Reason::Disabled);
        let down = status(Discord, Failing, Reason::Unreachable);
        let bad = status(Slack, Failing, Reason::InvalidToken);
        let (is, reason, message) = ready(&[ok.clone(), down.clone(), bad]);
        assert!(!is);
        assert_eq!(reason, Reason::InvalidToken);
        assert!(
            message.contains("discord") && message.contains("slack"),
            "{message}"
        );
        assert_eq!(ready(&[ok.clone(), down.clone()]).1, Reason::Unreachable);
        let starting = status(Telegram, Pending, Reason::Pending);
        let unseen = status(Slack, Pending, Reason::NotChecked);
        let (is, reason, _) = ready(&[ok, starting.clone(), unseen.clone()]);
        assert_eq!((is, reason), (false, Reason::Pending));
        assert_eq!(ready(&[starting, down]).1, Reason::Unreachable);
        assert_eq!(ready(&[unseen]).1, Reason::NotChecked);
        assert_eq!(
            ready(&[status(Telegram, Pending, Reason::NotChecked)]).1,
            Reason::NotChecked
        );
    }
}
