//! The gateway side: looks, the controller's pairing, owned config and device approvals.

use super::*;

/// A converged instance whose gateway the controller looks at, with `look` as what it saw.
fn gateway_world(
    policy: openclaws_model::PairingPolicy,
    look: Option<crate::reconcile::world::GatewayObservation>,
) -> (Desired, Observed) {
    let mut d = desired(RunState::Running, false, 2048);
    d.gateway = Some(crate::reconcile::desired::GatewayTarget {
        base: "https://acme.openclaws.biz".into(),
        host: None,
    });
    d.pairing.policy = policy;
    let mut world = ours(&d);
    world
        .volumes
        .push(volume("vol_a", "iad", Some("m1"), "2026"));
    world
        .machines
        .push(machine(&d, "m1", "vol_a", "started", false));
    world.observed_at = Some(chrono::Utc::now());
    world.gateway = look;
    (d, world)
}

pub(super) fn look(
    health: crate::reconcile::world::GatewayHealth,
    access: crate::reconcile::world::ControllerAccess,
    pending: &[(&str, i64)],
) -> Option<crate::reconcile::world::GatewayObservation> {
    Some(crate::reconcile::world::GatewayObservation {
        health,
        access,
        pending: pending
            .iter()
            .map(|(id, ts)| openclaws_gateway::protocol::PendingRequest {
                request_id: (*id).into(),
                device_id: format!("dev-{id}"),
                display_name: Some(format!("phone {id}")),
                platform: None,
                client_id: None,
                client_mode: None,
                role: Some("operator".into()),
                roles: vec![],
                scopes: vec![],
                remote_ip: None,
                is_repair: false,
                ts: *ts,
            })
            .collect(),
        channel_pairing: None,
        config: crate::reconcile::world::LiveConfig::Matches,
        proxy_token: Default::default(),
        channels: Default::default(),
        at: chrono::Utc::now(),
    })
}

#[test]
fn the_gateway_is_looked_at_once_the_fly_side_is_converged() {
    use crate::reconcile::world::{ControllerAccess as A, GatewayHealth as H};
    use openclaws_model::PairingPolicy::Auto;
    let (d, world) = gateway_world(Auto, None);
    let p = plan(&d, &world);
    assert!(p.look_at_gateway && p.actions.is_empty() && !p.is_converged());
    // Without gateway checks there is nothing to look at.
    let mut off = d.clone();
    off.gateway = None;
    assert!(plan(&off, &world).is_converged());
    // What the look found decides.
    let cases = [
        (
            H::Starting("starting".into()),
            A::NotTried,
            Some("GatewayStarting"),
        ),
        (
            H::NotReady("x".into()),
            A::NotTried,
            Some("GatewayNotReady"),
        ),
        (
            H::ProxyAttributionRequired,
            A::NotTried,
            Some("TrustedProxyMisconfigured"),
        ),
        (
            H::Unreachable("refused".into()),
            A::NotTried,
            Some("GatewayStarting"),
        ),
        (
            H::Healthy,
            A::Failed("401".into()),
            Some("GatewayAccessFailed"),
        ),
        (H::Healthy, A::Paired, None),
    ];
    for (health, access, wait) in cases {
        let (d, world) = gateway_world(Auto, look(health.clone(), access, &[]));
        let p = plan(&d, &world);
        assert_eq!(
            p.wait.as_ref().map(|w| w.reason.as_str()),
            wait,
            "{health:?}"
        );
        assert!(p.actions.is_empty());
        assert_eq!(p.is_converged(), wait.is_none());
    }
    // A gateway silent long after its machine started is unreachable, not starting.
    let (d, mut world) = gateway_world(
        Auto,
        look(H::Unreachable("refused".into()), A::NotTried, &[]),
    );
    world.machines[0].updated_at = "2020-01-01T00:00:00Z".into();
    assert_eq!(
        plan(&d, &world).wait.map(|w| w.reason.as_str()),
        Some("GatewayUnreachable")
    );
}

#[test]
fn the_controller_pairs_itself_then_repairs_owned_config_hot_or_by_restart() {
    use crate::reconcile::world::{ControllerAccess as A, GatewayHealth as H, LiveConfig};
    use openclaws_model::PairingPolicy::Auto;
    let (d, world) = gateway_world(
        Auto,
        look(
            H::Healthy,
            A::NotPaired {
                request_id: "r0".into(),
            },
            &[],
        ),
    );
    assert_eq!(
        plan(&d, &world).actions,
        vec![Action::PairController {
            machine_id: "m1".into(),
            request_id: "r0".into()
        }]
    );
    let (d, mut world) = gateway_world(Auto, look(H::Healthy, A::Paired, &[("r1", 1)]));
    // Fields the gateway hot-applies go back over the protocol, without a restart.
    let hot = vec![
        "agents.entries.main.name".to_owned(),
        "gateway.trustedProxies".to_owned(),
    ];
    world.gateway.as_mut().unwrap().config = LiveConfig::Drifted(hot.clone());
    assert_eq!(
        plan(&d, &world).actions,
        vec![Action::PatchGatewayConfig { paths: hot.clone() }]
    );
    // One field that needs a restart makes it a restart (the boot step restores them all).
    let mixed = [hot, vec!["gateway.bind".to_owned()]].concat();
    world.gateway.as_mut().unwrap().config = LiveConfig::Drifted(mixed.clone());
    assert_eq!(
        plan(&d, &world).actions,
        vec![Action::RestartMachine {
            id: "m1".into(),
            paths: mixed
        }]
    );
    // An invalid file is the customer's to fix: no restart loop.
    world.gateway.as_mut().unwrap().config = LiveConfig::Invalid("bad".into());
    assert!(!plan(&d, &world)
        .actions
        .iter()
        .any(|a| matches!(a, Action::RestartMachine { .. })));
}

#[test]
fn auto_approves_every_pending_request() {
    use crate::reconcile::world::{ControllerAccess as A, GatewayHealth as H};
    let (d, world) = gateway_world(
        openclaws_model::PairingPolicy::Auto,
        look(H::Healthy, A::Paired, &[("r1", 1), ("r2", 2)]),
    );
    let approved: Vec<String> = plan(&d, &world)
        .actions
        .iter()
        .map(|a| match a {
            Action::ApprovePairing {
                request_id,
                approval_id: None,
                ..
            } => request_id.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(approved, ["r1", "r2"]);
}

#[test]
fn manual_approves_only_what_was_recorded_and_each_once() {
    use crate::reconcile::world::{ControllerAccess as A, GatewayHealth as H};
    use openclaws_model::{PairingApproval, PairingOutcome, PairingResult};
    let now = chrono::Utc::now();
    let approval = |id: &str, request: Option<&str>, asked_secs_ago: i64| PairingApproval {
        id: Some(id.into()),
        requested_at: Some(now - chrono::Duration::seconds(asked_secs_ago)),
        request_id: request.map(String::from),
        latest: request.is_none().then_some(true),
    };
    let (mut d, mut world) = gateway_world(
        openclaws_model::PairingPolicy::Manual,
        look(H::Healthy, A::Paired, &[("r1", 1), ("r2", 2), ("r3", 3)]),
    );
    // Nothing recorded: nothing approved.
    assert!(plan(&d, &world).is_converged());
    d.pairing.approvals = vec![
        approval("a1", Some("r1"), 10),
        approval("a2", None, 10),
        approval("a3", Some("gone"), 10),
        approval("a4", None, 10),
        approval("done", Some("r2"), 10),
    ];
    world.pairing_history = vec![PairingResult {
        approval_id: Some("done".into()),
        request_id: Some("r2".into()),
        device_name: None,
        channel: None,
        sender_id: None,
        result: PairingOutcome::Approved,
        message: String::new(),
        at: now,
    }];
    let actions = plan(&d, &world).actions;
    let summary: Vec<(String, String)> = actions
        .iter()
        .map(|a| match a {
            Action::ApprovePairing {
                request_id,
                approval_id: Some(key),
                ..
            } => (key.clone(), request_id.clone()),
            Action::ExpireApproval { approval_id, .. } => (approval_id.clone(), "expired".into()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // a1 names r1; a2 takes the newest (r3); a3's request is not pending; a4 takes the next
    // newest (r2, pending again); "done" was carried out before.
    assert_eq!(
        summary,
        [
            ("a1".to_string(), "r1".to_string()),
            ("a2".into(), "r3".into()),
            ("a3".into(), "expired".into()),
            ("a4".into(), "r2".into()),
        ]
    );
    // `latest` with nothing pending waits for a request up to 5 minutes, then gives up.
    let (mut d, world) = gateway_world(
        openclaws_model::PairingPolicy::Manual,
        look(H::Healthy, A::Paired, &[]),
    );
    d.pairing.approvals = vec![approval("fresh", None, 10)];
    assert!(plan(&d, &world).actions.is_empty());
    d.pairing.approvals = vec![approval("stale", None, 400)];
    assert!(matches!(
        plan(&d, &world).actions.as_slice(),
        [Action::ExpireApproval { approval_id, .. }] if approval_id == "stale"
    ));
}

#[test]
fn the_proxy_token_is_delivered_when_the_store_holds_another() {
    use crate::reconcile::world::{
        ControllerAccess as A, GatewayHealth as H, StoredProxyToken as S,
    };
    use openclaws_model::PairingPolicy::Manual;
    let (mut d, mut world) = gateway_world(Manual, look(H::Healthy, A::Paired, &[]));
    let set =
        |world: &mut Observed, stored: S| world.gateway.as_mut().unwrap().proxy_token = stored;
    // No proxy token in use: nothing to deliver, whatever the store holds.
    set(&mut world, S::Missing);
    assert!(plan(&d, &world).actions.is_empty());
    let cipher = openclaws_model::secrets::SecretCipher::from_key([3; 32]);
    d.secrets = d.secrets.clone().with_proxy_token("tok".into(), &cipher);
    let fp = d.secrets.proxy_token_fingerprint().unwrap().to_owned();
    let deliver = vec![Action::DeliverProxyToken {
        fingerprint: fp.clone(),
    }];
    assert_eq!(plan(&d, &world).actions, deliver, "none in the store");
    set(&mut world, S::Fingerprint("hmac-sha256:old".into()));
    assert_eq!(
        plan(&d, &world).actions,
        deliver,
        "the old one in the store"
    );
    set(&mut world, S::Fingerprint(fp));
    assert!(plan(&d, &world).actions.is_empty(), "in place");
    set(&mut world, S::Unknown);
    assert!(
        plan(&d, &world).actions.is_empty(),
        "not read: no blind write"
    );
}

#[test]
fn channels_get_their_credentials_first_then_config_and_lose_both_when_removed() {
    use crate::reconcile::world::{ControllerAccess as A, GatewayHealth as H};
    use openclaws_gateway::channels::{ChannelConfig, ChannelsConfig};
    use openclaws_model::{ChannelKind, ChannelSecret, DmPolicy};
    let (mut d, mut world) = gateway_world(
        openclaws_model::PairingPolicy::Manual,
        look(H::Healthy, A::Paired, &[]),
    );
    let cipher = openclaws_model::secrets::SecretCipher::from_key([3; 32]);
    d.channels = ChannelsConfig {
        channels: vec![ChannelConfig {
            kind: ChannelKind::Telegram,
            enabled: true,
            dm_policy: DmPolicy::Pairing,
            allow_from: vec![],
        }],
        telegram_api_root: None,
    };
    let secret = ChannelSecret::TelegramBotToken;
    d.secrets = d
        .secrets
        .clone()
        .with_channel_secret(secret, "1:tok".into(), &cipher);
    let fp = d
        .secrets
        .channel_secret_fingerprint(secret)
        .unwrap()
        .to_owned();
    // The store could not be listed: nothing is written blind.
    world.gateway.as_mut().unwrap().channels.drift = vec!["channels.telegram.enabled".into()];
    assert!(plan(&d, &world).actions.is_empty());
    // An empty store: the credential first, then the config.
    world.gateway.as_mut().unwrap().channels.markers = Some(Default::default());
    assert_eq!(
        plan(&d, &world).actions,
        vec![
            Action::DeliverChannelSecret {
                secret,
                fingerprint: fp.clone()
            },
            Action::ConfigureChannels {
                paths: vec!["channels.telegram.enabled".into()]
            },
        ]
    );
    // In place and configured: nothing; a rotated value: delivered again, no config write.
    let gw = world.gateway.as_mut().unwrap();
    gw.channels.drift.clear();
    gw.channels
        .markers
        .as_mut()
        .unwrap()
        .insert(secret.marker_name().into(), fp.clone());
    assert!(plan(&d, &world).actions.is_empty());
    let rotated = d
        .secrets
        .clone()
        .with_channel_secret(secret, "1:new".into(), &cipher);
    d.secrets = rotated;
    assert!(matches!(
        plan(&d, &world).actions.as_slice(),
        [Action::DeliverChannelSecret { fingerprint, .. }] if *fingerprint != fp
    ));
    // Gone from the spec: removed, because its marker says the controller managed it.
    d.channels = ChannelsConfig::default();
    assert_eq!(
        plan(&d, &world).actions,
        vec![Action::RemoveChannel {
            channel: ChannelKind::Telegram
        }]
    );
    // A channel the controller never managed (no marker) is left alone.
    world.gateway.as_mut().unwrap().channels.markers = Some(Default::default());
    assert!(plan(&d, &world).actions.is_empty());
}
