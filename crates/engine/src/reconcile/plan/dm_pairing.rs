//! DM pairing: what to do with strangers' pending DM requests (`docs/pairing.md`). Each
//! decision recorded in `spec.pairing.channelDecisions` is carried out once (approve or
//! dismiss its request) or given up on when its request is no longer pending; under the
//! `auto` DM policy every other pending request is approved too.

use openclaws_gateway::protocol::{ChannelPairingList, ChannelPairingRequest};
use openclaws_model::{
    ChannelPairingDecision, ChannelPairingPolicy, ChannelPairingVerdict, PairingOutcome,
    PairingResult, PairingSpec,
};

use super::action::{Action, ChannelPairingStep};
use crate::reconcile::desired::Desired;
use crate::reconcile::world::{GatewayObservation, Observed};

/// The DM pairing steps for one list of pending DM requests; none when the list was not read.
pub(super) fn plan_dm_pairing(
    desired: &Desired,
    observed: &Observed,
    gw: &GatewayObservation,
) -> Vec<Action> {
    let Some(list) = &gw.channel_pairing else {
        return Vec::new();
    };
    let mut actions = Vec::new();
    let mut decided: Vec<&str> = Vec::new();
    for decision in &desired.pairing.channel_decisions {
        if done(&observed.pairing_history, &decision.id) {
            continue;
        }
        decided.push(&decision.request_id);
        actions.push(match find(list, decision) {
            Some(request) => step(request, Some(decision)),
            None => Action::ExpireApproval {
                approval_id: decision.id.clone(),
                request_id: Some(decision.request_id.clone()),
                message: format!(
                    "the DM pairing request {} on {} is not pending: it expired (DM requests last an hour), was already decided, or was never made",
                    decision.request_id, decision.channel
                ),
            },
        });
    }
    if desired.pairing.channels == ChannelPairingPolicy::Auto {
        let undecided = list
            .requests
            .iter()
            .filter(|r| !decided.contains(&r.request_id.as_str()));
        actions.extend(undecided.map(|r| step(r, None)));
    }
    actions
}

/// Decisions recorded and not carried out yet (no outcome, or a failed one, which the planner
/// tries again): work that keeps a pairing subscription open.
pub fn outstanding_decisions(pairing: &PairingSpec, recent: &[PairingResult]) -> usize {
    pairing
        .channel_decisions
        .iter()
        .filter(|d| !done(recent, &d.id))
        .count()
}

fn done(history: &[PairingResult], id: &str) -> bool {
    history
        .iter()
        .any(|r| r.approval_id.as_deref() == Some(id) && r.result != PairingOutcome::Failed)
}

fn find<'a>(
    list: &'a ChannelPairingList,
    decision: &ChannelPairingDecision,
) -> Option<&'a ChannelPairingRequest> {
    list.requests
        .iter()
        .find(|r| r.request_id == decision.request_id && r.channel == decision.channel)
}

/// Approves (no decision: the `auto` policy) or carries out `decision` for `request`.
fn step(request: &ChannelPairingRequest, decision: Option<&ChannelPairingDecision>) -> Action {
    Action::DecideChannelPairing(ChannelPairingStep {
        channel: request.channel.clone(),
        account_id: request.account_id.clone(),
        request_id: request.request_id.clone(),
        sender_id: request.sender_id.clone(),
        sender_name: request.sender_name(),
        decision_id: decision.map(|d| d.id.clone()),
        approve: decision.is_none_or(|d| d.decision == ChannelPairingVerdict::Approve),
        notify: decision.is_some_and(|d| d.notify)
            || (decision.is_none() && request.notify_supported),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::world::{ControllerAccess, GatewayHealth, LiveConfig};
    use chrono::Utc;
    use openclaws_gateway::protocol::ChannelPairingAccount;

    fn request(id: &str, channel: &str) -> ChannelPairingRequest {
        ChannelPairingRequest {
            request_id: id.into(),
            channel: channel.into(),
            account_id: "default".into(),
            sender_id: format!("sender-{id}"),
            sender_label: Some("Telegram user id".into()),
            metadata: [("firstName".to_owned(), "Ada".to_owned())].into(),
            created_at: "2026-12-01T07:00:00.000Z".into(),
            last_seen_at: None,
            expires_at: "2026-12-01T08:00:00.000Z".into(),
            notify_supported: true,
        }
    }

    fn look(requests: Vec<ChannelPairingRequest>) -> GatewayObservation {
        GatewayObservation {
            health: GatewayHealth::Healthy,
            access: ControllerAccess::Paired,
            pending: Vec::new(),
            channel_pairing: Some(ChannelPairingList {
                accounts: vec![ChannelPairingAccount {
                    channel: "telegram".into(),
                    account_id: "default".into(),
                    notify_supported: true,
                }],
                requests,
            }),
            config: LiveConfig::Matches,
            proxy_token: Default::default(),
            channels: Default::default(),
            at: Utc::now(),
        }
    }

    fn decision(id: &str, request: &str, verdict: ChannelPairingVerdict) -> ChannelPairingDecision {
        ChannelPairingDecision {
            id: id.into(),
            requested_at: Some(Utc::now()),
            channel: "telegram".into(),
            request_id: request.into(),
            decision: verdict,
            notify: true,
        }
    }

    fn desired(policy: ChannelPairingPolicy, decisions: Vec<ChannelPairingDecision>) -> Desired {
        let mut d = crate::reconcile::plan::tests::desired_for_tests();
        d.pairing.channels = policy;
        d.pairing.channel_decisions = decisions;
        d
    }

    fn steps(actions: &[Action]) -> Vec<(String, Option<String>, bool)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::DecideChannelPairing(s) => {
                    Some((s.request_id.clone(), s.decision_id.clone(), s.approve))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn manual_leaves_pending_requests_alone_until_a_decision_names_one() {
        let gw = look(vec![request("r1", "telegram"), request("r2", "telegram")]);
        let none = desired(ChannelPairingPolicy::Manual, vec![]);
        assert!(plan_dm_pairing(&none, &Observed::empty(), &gw).is_empty());
        let decided = desired(
            ChannelPairingPolicy::Manual,
            vec![decision("d1", "r2", ChannelPairingVerdict::Dismiss)],
        );
        let actions = plan_dm_pairing(&decided, &Observed::empty(), &gw);
        assert_eq!(steps(&actions), [("r2".into(), Some("d1".into()), false)]);
        assert_eq!(actions[0].step(), "DismissChannelPairing");
    }

    #[test]
    fn auto_approves_every_request_but_carries_out_recorded_decisions_first() {
        let gw = look(vec![request("r1", "telegram"), request("r2", "telegram")]);
        let d = desired(
            ChannelPairingPolicy::Auto,
            vec![decision("d1", "r1", ChannelPairingVerdict::Dismiss)],
        );
        let actions = plan_dm_pairing(&d, &Observed::empty(), &gw);
        assert_eq!(
            steps(&actions),
            [
                ("r1".into(), Some("d1".into()), false),
                ("r2".into(), None, true)
            ]
        );
    }

    #[test]
    fn a_decision_whose_request_is_gone_expires_and_a_done_one_is_skipped() {
        let gw = look(vec![request("r1", "telegram")]);
        let d = desired(
            ChannelPairingPolicy::Manual,
            vec![
                decision("d1", "r1", ChannelPairingVerdict::Approve),
                decision("d2", "gone", ChannelPairingVerdict::Approve),
                decision("d3", "r1", ChannelPairingVerdict::Approve),
            ],
        );
        let mut observed = Observed::empty();
        observed.pairing_history = vec![PairingResult {
            approval_id: Some("d3".into()),
            request_id: Some("r1".into()),
            device_name: None,
            channel: Some("telegram".into()),
            sender_id: Some("sender-r1".into()),
            result: PairingOutcome::Approved,
            message: "approved".into(),
            at: Utc::now(),
        }];
        let actions = plan_dm_pairing(&d, &observed, &gw);
        assert_eq!(actions.len(), 2);
        assert!(
            matches!(&actions[0], Action::DecideChannelPairing(s) if s.notify && s.sender_name.as_deref() == Some("Ada"))
        );
        assert!(
            matches!(&actions[1], Action::ExpireApproval { approval_id, .. } if approval_id == "d2")
        );
        assert_eq!(
            outstanding_decisions(&d.pairing, &observed.pairing_history),
            2
        );
    }

    #[test]
    fn a_decision_for_another_channel_does_not_match() {
        let gw = look(vec![request("r1", "discord")]);
        let d = desired(
            ChannelPairingPolicy::Manual,
            vec![decision("d1", "r1", ChannelPairingVerdict::Approve)],
        );
        let actions = plan_dm_pairing(&d, &Observed::empty(), &gw);
        assert!(matches!(&actions[0], Action::ExpireApproval { .. }));
    }

    #[test]
    fn nothing_is_planned_when_the_list_was_not_read() {
        let mut gw = look(vec![request("r1", "telegram")]);
        gw.channel_pairing = None;
        let d = desired(ChannelPairingPolicy::Auto, vec![]);
        assert!(plan_dm_pairing(&d, &Observed::empty(), &gw).is_empty());
    }
}
