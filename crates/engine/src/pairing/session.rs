//! One subscription: a WebSocket to one gateway with the controller's own device, following
//! its pairing events. Each pass lists the pending requests, plans approvals with the
//! reconcile's own pure planner ([`plan_pairing`]), carries them out over the same connection
//! and records the pairing part of the status. No Fly call, no reconcile.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use openclaws_gateway::client::{ClientError, GatewayClient};
use openclaws_model::{PairingResult, PairingSpec};
use openclaws_store::events::EventType;
use openclaws_store::pairing::{self as store, PairingEvent};
use openclaws_store::Db;

use super::PairingTelemetry;
use crate::reconcile::gateway::{connect_controller, pairing_step, RECENT_RESULTS};
use crate::reconcile::plan::plan_pairing;
use crate::reconcile::status::apply_pairing;
use crate::reconcile::world::{
    ControllerAccess, GatewayHealth, GatewayObservation, LiveConfig, Observed, StoredProxyToken,
};
use crate::reconcile::GatewayAccess;

/// How often the pending list is read again without an event (events are dropped for slow
/// clients, and a request's expiry sends none).
const RELIST: Duration = Duration::from_secs(10);
/// How often it is read while a channel account uses DM pairing: the gateway sends no event
/// when a stranger's DM creates a request, so only a re-list sees it.
const DM_RELIST: Duration = Duration::from_secs(1);
/// Pause before connecting again after the connection failed or closed.
const RECONNECT: Duration = Duration::from_secs(2);
/// How long an outcome written here is remembered over a stale read of the database.
const REMEMBER: Duration = Duration::from_secs(60);

/// What the database says the subscription should act on (refreshed every pass of the pool).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Wanted {
    pub pairing: PairingSpec,
    /// The recorded outcomes, newest first.
    pub recent: Vec<PairingResult>,
    /// The channel accounts a look last saw using DM pairing: a change (a channel just
    /// configured) starts a pass, which turns on the re-list every second.
    pub dm_accounts: Vec<String>,
}

/// Why following a connection ended.
enum Ended {
    /// Asked to stop (window over, slot given up, shutdown).
    Stopped,
    /// Another replica holds the instance now, or its row is gone: stop acting.
    Lost,
    /// The connection broke: connect again.
    Broken,
}

/// One subscription's fixed parts.
pub(super) struct Session {
    pub uid: Uuid,
    pub owner: String,
    pub pool: Db,
    pub access: GatewayAccess,
    pub telemetry: Arc<dyn PairingTelemetry>,
}

/// What a connection remembers between passes.
#[derive(Default)]
struct Memory {
    /// Outcomes this session recorded lately, with when.
    mine: Vec<(std::time::Instant, PairingResult)>,
    /// The pending request ids (devices', then DM requests') last recorded, to skip writes
    /// that change nothing.
    written: Option<Vec<String>>,
    /// Whether the last list showed a channel account using DM pairing (re-list every second).
    dm_pairing: bool,
}

impl Session {
    /// Follows the gateway until `stop`, reconnecting after failures; returns early when the
    /// subscription passed to another replica.
    pub async fn run(self, mut wanted: watch::Receiver<Wanted>, stop: CancellationToken) {
        let a = &self.access;
        let Some(target) = a.desired.gateway.as_ref() else {
            return;
        };
        while !stop.is_cancelled() {
            match connect_controller(target, &a.identity, &a.token).await {
                Ok(client) => match self.follow(&client, &mut wanted, &stop).await {
                    Ended::Stopped => return client.close().await,
                    Ended::Lost => {
                        tracing::info!(instance = %a.desired.name, "pairing subscription passed to another replica");
                        return client.close().await;
                    }
                    Ended::Broken => {}
                },
                Err(e) => {
                    tracing::debug!(instance = %a.desired.name, error = %e, "pairing subscription cannot connect")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RECONNECT) => {}
            }
        }
    }

    async fn follow(
        &self,
        client: &GatewayClient,
        wanted: &mut watch::Receiver<Wanted>,
        stop: &CancellationToken,
    ) -> Ended {
        let mut events = client.subscribe();
        let mut relist = tokio::time::interval(RELIST);
        let mut dm_relist = tokio::time::interval(DM_RELIST);
        dm_relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut memory = Memory::default();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ended::Stopped,
                _ = relist.tick() => {}
                _ = dm_relist.tick(), if memory.dm_pairing => {}
                changed = wanted.changed() => if changed.is_err() { return Ended::Stopped },
                event = events.recv() => match event {
                    Ok(e) if e.event.starts_with("device.pair.") => {}
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Ended::Broken,
                },
            }
            let now_wanted = wanted.borrow_and_update().clone();
            match self.pass(client, &now_wanted, &mut memory).await {
                Ok(true) => {}
                Ok(false) => return Ended::Lost,
                Err(e) => {
                    tracing::debug!(instance = %self.access.desired.name, error = %e, "pairing pass failed; reconnecting");
                    return Ended::Broken;
                }
            }
        }
    }

    /// Lists, approves as the policy says, records. `Ok(false)`: the subscription is lost.
    async fn pass(
        &self,
        client: &GatewayClient,
        wanted: &Wanted,
        memory: &mut Memory,
    ) -> Result<bool, PassError> {
        let (list, channel_pairing) =
            tokio::join!(client.pair_list(), client.channel_pairing_list());
        let list = list?;
        let channel_pairing = channel_pairing.ok();
        memory.dm_pairing = channel_pairing
            .as_ref()
            .is_some_and(|l| !l.accounts.is_empty());
        let now = Utc::now();
        let mut desired = self.access.desired.clone();
        desired.pairing = wanted.pairing.clone();
        let gw = GatewayObservation {
            health: GatewayHealth::Healthy,
            access: ControllerAccess::Paired,
            pending: list.pending,
            channel_pairing,
            config: LiveConfig::Unknown,
            proxy_token: StoredProxyToken::Unknown,
            channels: Default::default(),
            at: now,
        };
        let mut observed = Observed {
            observed_at: Some(now),
            pairing_history: remembered(&wanted.recent, memory),
            gateway: Some(gw.clone()),
            ..Observed::empty()
        };
        let mut events = Vec::new();
        for action in plan_pairing(&desired, &observed, &gw) {
            let result = pairing_step(client, &mut observed, &action).await;
            if let Some((policy, outcome)) = action.pairing_outcome(result.is_ok()) {
                self.telemetry.pairing_outcome(policy, outcome);
            }
            if let Some(r) = observed.pairing_history.first() {
                memory.mine.push((std::time::Instant::now(), r.clone()));
            }
            events.push(match &result {
                Ok(()) => PairingEvent {
                    type_: EventType::Normal,
                    reason: action.step().to_owned(),
                    message: action.describe(),
                },
                Err(e) => PairingEvent {
                    type_: EventType::Warning,
                    reason: format!("{}Failed", action.step()),
                    message: e.to_string(),
                },
            });
        }
        let pending: Vec<String> = observed
            .gateway
            .iter()
            .flat_map(|g| {
                let dm = g.channel_pairing.iter().flat_map(|l| &l.requests);
                let accounts = g.channel_pairing.iter().flat_map(|l| &l.accounts);
                let accounts = accounts.map(|a| format!("{}:{}", a.channel, a.account_id));
                g.pending
                    .iter()
                    .map(|p| p.request_id.clone())
                    .chain(dm.map(|r| r.request_id.clone()))
                    .chain(accounts)
            })
            .collect();
        let unrecorded = memory.mine.iter().any(|(_, r)| !wanted.recent.contains(r));
        if events.is_empty() && !unrecorded && memory.written.as_ref() == Some(&pending) {
            return Ok(true);
        }
        let held = store::record_pairing(
            &self.pool,
            self.uid,
            &self.owner,
            |status| apply_pairing(status, &desired, &observed, now),
            &events,
        )
        .await?;
        memory.written = Some(pending);
        Ok(held)
    }
}

/// The recorded outcomes, with this session's recent ones the database read may not show yet
/// (newest first, as many as the status keeps).
fn remembered(recent: &[PairingResult], memory: &mut Memory) -> Vec<PairingResult> {
    memory.mine.retain(|(at, _)| at.elapsed() < REMEMBER);
    let mut history = recent.to_vec();
    for (_, r) in &memory.mine {
        if !history.iter().any(|h| h == r) {
            history.push(r.clone());
        }
    }
    history.sort_by_key(|r| std::cmp::Reverse(r.at));
    history.truncate(RECENT_RESULTS);
    history
}

/// A pass that could not finish: the connection or the database failed.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error(transparent)]
    Gateway(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] openclaws_store::StoreError),
}
