//! Properties of the channel planner ([`plan_channels`]) over arbitrary specs, stores and live
//! configs: applying its plan the way the act stage does (a credential into the store and its
//! marker, a `config.patch` merged as RFC 7386, a removal) converges in one pass, never puts a
//! credential into the config, removes every channel the controller managed that the spec no
//! longer names, and never touches a channel the controller did not manage.

use super::gateway_side::look;
use super::{Action, Desired};
use crate::reconcile::plan::gateway::plan_channels;
use crate::reconcile::world::{ControllerAccess, GatewayHealth, GatewayObservation};
use openclaws_gateway::channels::{self, ChannelConfig, ChannelsConfig};
use openclaws_gateway::proxy_token::REDACTED;
use openclaws_model::secrets::SecretCipher;
use openclaws_model::{ChannelKind, DmPolicy};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What the spec says of one channel: not named, or enabled, its policy and allow-list.
type SpecChannel = Option<(bool, DmPolicy, Vec<String>)>;

/// A marker in the store: none, the current value's fingerprint, or an older one.
#[derive(Debug, Clone, Copy)]
enum Marker {
    None,
    Current,
    Stale,
}

fn arb_spec_channel() -> impl Strategy<Value = SpecChannel> {
    let policy = prop::sample::select(vec![
        DmPolicy::Pairing,
        DmPolicy::Allowlist,
        DmPolicy::Disabled,
    ]);
    let allow = prop::collection::vec("[1-9][0-9]{0,9}", 0..3);
    prop::option::of((prop::bool::ANY, policy, allow))
}

/// A live `channels.<id>` object: absent, or some owned keys (right, wrong or a plaintext
/// token) beside the customer's own.
fn arb_live_channel() -> impl Strategy<Value = Option<Value>> {
    let owned = (
        prop::option::of(prop::bool::ANY),
        prop::sample::select(vec!["none", "plaintext", "ref"]),
        prop::option::of(prop::sample::select(vec!["pairing", "open", "allowlist"])),
        prop::bool::ANY,
    );
    prop::option::of(owned.prop_map(|(enabled, credential, policy, groups)| {
        let mut c = json!({});
        if let Some(e) = enabled {
            c["enabled"] = json!(e);
        }
        match credential {
            "plaintext" => c["botToken"] = json!("111:plaintext-in-config"),
            "ref" => {
                c["botToken"] = json!({"source": "store", "provider": "default", "id": REDACTED})
            }
            _ => {}
        }
        if let Some(p) = policy {
            c["dmPolicy"] = json!(p);
        }
        if groups {
            c["groups"] = json!({"*": {"requireMention": true}});
        }
        c
    }))
}

fn arb_marker() -> impl Strategy<Value = Marker> {
    prop::sample::select(vec![Marker::None, Marker::Current, Marker::Stale])
}

/// The world of one channel kind: spec, live config, a marker per credential slot, a value.
fn arb_kind() -> impl Strategy<Value = (SpecChannel, Option<Value>, [Marker; 2], String)> {
    (
        arb_spec_channel(),
        arb_live_channel(),
        [arb_marker(), arb_marker()],
        "[a-z]{8,16}",
    )
}

/// The gateway as the model keeps it: its parsed config and its store's markers.
struct Gateway {
    config: Value,
    markers: BTreeMap<String, String>,
}

impl Gateway {
    fn observe(&self, desired: &ChannelsConfig) -> GatewayObservation {
        let mut gw = look(GatewayHealth::Healthy, ControllerAccess::Paired, &[]).unwrap();
        gw.channels.drift = channels::drift(&self.config, desired);
        gw.channels.markers = Some(self.markers.clone());
        gw
    }

    /// Carries out one action as the act stage does; returns the `config.patch` raw text.
    fn apply(&mut self, d: &Desired, action: &Action) -> Option<String> {
        let raw = match action {
            Action::DeliverChannelSecret {
                secret,
                fingerprint,
            } => {
                self.markers
                    .insert(secret.marker_name().to_owned(), fingerprint.clone());
                return None;
            }
            Action::ConfigureChannels { paths } => channels::patch(&d.channels, paths, "h"),
            Action::RemoveChannel { channel } => {
                for s in channel.secrets() {
                    self.markers.remove(s.marker_name());
                }
                channels::removal_patch(&[*channel], "h")
            }
            other => panic!("plan_channels planned {other:?}"),
        };
        let raw = raw["raw"].as_str().unwrap().to_owned();
        // RFC 7386, as the gateway's `config.patch` applies it.
        json_patch::merge(&mut self.config, &serde_json::from_str(&raw).unwrap());
        Some(raw)
    }
}

/// The desired state and the gateway of a generated world.
fn world(kinds: &[(SpecChannel, Option<Value>, [Marker; 2], String)]) -> (Desired, Gateway) {
    let cipher = SecretCipher::from_key([5; 32]);
    let mut d = super::desired_for_tests();
    d.channels = ChannelsConfig {
        channels: Vec::new(),
        telegram_api_root: Some("http://127.0.0.1:9/".to_owned()),
    };
    let mut config = json!({"channels": {"matrix": {"enabled": true, "homeserver": "https://m"}}});
    let mut markers = BTreeMap::new();
    for (kind, (spec, live, marks, value)) in ChannelKind::ALL.into_iter().zip(kinds) {
        if let Some((enabled, dm_policy, allow_from)) = spec {
            d.channels.channels.push(ChannelConfig {
                kind,
                enabled: *enabled,
                dm_policy: *dm_policy,
                allow_from: allow_from.clone(),
            });
        }
        if let Some(live) = live {
            config["channels"][kind.as_str()] = live.clone();
        }
        for (secret, mark) in kind.secrets().iter().zip(marks) {
            let value = format!(
                "{}:{value}-{}",
                100 + secret.marker_name().len(),
                secret.field()
            );
            if spec.is_some() {
                d.secrets = d
                    .secrets
                    .clone()
                    .with_channel_secret(*secret, value, &cipher);
            }
            let current = d.secrets.channel_secret_fingerprint(*secret);
            let fp = match (mark, current) {
                (Marker::None, _) => continue,
                (Marker::Current, Some(fp)) => fp.to_owned(),
                _ => "hmac-sha256:older".to_owned(),
            };
            markers.insert(secret.marker_name().to_owned(), fp);
        }
    }
    (d, Gateway { config, markers })
}

fn managed(markers: &BTreeMap<String, String>, kind: ChannelKind) -> bool {
    kind.secrets()
        .iter()
        .any(|s| markers.contains_key(s.marker_name()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn one_pass_converges_leaks_no_credential_and_touches_only_what_is_ours(
        telegram in arb_kind(), discord in arb_kind(), slack in arb_kind(),
    ) {
        let (d, mut gateway) = world(&[telegram, discord, slack]);
        let before = gateway.config.clone();
        let was_managed: Vec<ChannelKind> = ChannelKind::ALL
            .into_iter()
            .filter(|k| managed(&gateway.markers, *k))
            .collect();
        let values = d.secrets.channel_secret_values();
        let actions = plan_channels(&d, &gateway.observe(&d.channels));

        // Every credential is in the store before any config refers to it.
        let first_config = actions.iter().position(|a| !matches!(a, Action::DeliverChannelSecret { .. }));
        let last_delivery = actions.iter().rposition(|a| matches!(a, Action::DeliverChannelSecret { .. }));
        if let (Some(config), Some(delivery)) = (first_config, last_delivery) {
            prop_assert!(delivery < config, "{actions:?}");
        }
        for action in &actions {
            if let Some(raw) = gateway.apply(&d, action) {
                for v in &values {
                    prop_assert!(!raw.contains(v), "a credential in a config.patch");
                }
            }
        }

        // Idempotent: planning again after applying the plan yields nothing.
        let again = plan_channels(&d, &gateway.observe(&d.channels));
        prop_assert!(again.is_empty(), "{again:?} after {actions:?}");

        let config = gateway.config.to_string();
        for v in &values {
            prop_assert!(!config.contains(v), "a credential in the config");
        }
        prop_assert_eq!(&gateway.config["channels"]["matrix"], &before["channels"]["matrix"]);
        for kind in ChannelKind::ALL {
            let id = kind.as_str();
            let live = &gateway.config["channels"][id];
            match d.channels.get(kind) {
                Some(c) => {
                    prop_assert_eq!(&live["enabled"], &json!(c.enabled));
                    prop_assert_eq!(&live["dmPolicy"], &json!(c.dm_policy.as_str()));
                    for s in kind.secrets() {
                        // The ref, or the ref as `config.get` shows it (id redacted).
                        let mut shown = channels::store_ref(*s);
                        shown["id"] = json!(REDACTED);
                        let field = &live[s.field()];
                        prop_assert!(*field == channels::store_ref(*s) || *field == shown, "{field}");
                        let fp = d.secrets.channel_secret_fingerprint(*s).unwrap();
                        prop_assert_eq!(gateway.markers.get(s.marker_name()).map(String::as_str), Some(fp));
                    }
                    // The customer's own keys stay.
                    prop_assert_eq!(&live["groups"], &before["channels"][id]["groups"]);
                }
                // Ours, no longer named: its config and its store entries are gone.
                None if was_managed.contains(&kind) => {
                    prop_assert!(live.is_null(), "{id} left: {live}");
                    prop_assert!(!managed(&gateway.markers, kind));
                }
                // Never ours: exactly as it was.
                None => prop_assert_eq!(live, &before["channels"][id]),
            }
        }
    }

    #[test]
    fn nothing_is_written_blind_while_the_store_is_not_listed(
        telegram in arb_kind(), discord in arb_kind(), slack in arb_kind(),
    ) {
        let (d, gateway) = world(&[telegram, discord, slack]);
        let mut gw = gateway.observe(&d.channels);
        gw.channels.markers = None;
        prop_assert!(plan_channels(&d, &gw).is_empty());
    }
}
