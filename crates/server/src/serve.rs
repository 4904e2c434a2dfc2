//! Start-up of the `serve` job: connect, check migrations, start the API and the workers, and
//! stop both cleanly on a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::ServeSettings;
use crate::retention::{self, EventPruning};
use openclaws_api::rendered::RenderCache;
use openclaws_api::watch::WatchHub;
use openclaws_api::{ApiState, ApiTokens};
use openclaws_engine::budget::SharedBudget;
use openclaws_engine::controller::listener::Wakeup;
use openclaws_engine::controller::{self, ControllerConfig};
use openclaws_engine::reconcile::desired::FleetSettings;
use openclaws_engine::reconcile::{DesiredInputs, Reconciler, Timing};
use openclaws_fly::FlyClient;
use openclaws_store as store;
use openclaws_store::desired::DesiredWriter;
use openclaws_store::{Db, CIRCUIT_CHANNEL, RELEASE_CHANNEL, WEBHOOK_CHANNEL};
use openclaws_telemetry::Metrics;

/// Errors that stop start-up.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("the database schema is not up to date: run `openclaws-controller migrate` first")]
    NotMigrated,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the API server failed: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    Controller(#[from] controller::ControllerError),
    #[error("invalid setting: {0}")]
    Setting(String),
}

/// A running controller process (API + workers), for `serve`, `dev` and tests.
pub struct Running {
    /// The address the API actually listens on.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    api: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    workers: tokio::task::JoinHandle<Result<(), controller::ControllerError>>,
    watch: Option<tokio::task::JoinHandle<()>>,
    recovery: tokio::task::JoinHandle<()>,
    pruner: tokio::task::JoinHandle<()>,
    webhooks: tokio::task::JoinHandle<()>,
    releases: tokio::task::JoinHandle<()>,
    pairing: Option<tokio::task::JoinHandle<()>>,
    stuck: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Asks both halves to stop and waits for them (workers drain within the grace period).
    pub async fn stop(self) -> Result<(), ServeError> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until both halves have stopped (after the token given to [`start`] is cancelled).
    pub async fn wait(self) -> Result<(), ServeError> {
        let api = self.api.await.expect("API task does not panic");
        let workers = self.workers.await.expect("worker task does not panic");
        if let Some(watch) = self.watch {
            watch.await.expect("watch task does not panic");
        }
        self.recovery
            .await
            .expect("outage recovery task does not panic");
        self.pruner.await.expect("event pruner does not panic");
        self.webhooks
            .await
            .expect("webhook delivery task does not panic");
        self.releases.await.expect("release worker does not panic");
        if let Some(pairing) = self.pairing {
            pairing.await.expect("pairing subscriptions do not panic");
        }
        self.stuck.await.expect("stuck sweep does not panic");
        api.map_err(ServeError::Http)?;
        workers?;
        Ok(())
    }
}

/// Starts the API and the workers; they run until `shutdown` is cancelled.
pub async fn start(
    settings: &ServeSettings,
    shutdown: CancellationToken,
) -> Result<Running, ServeError> {
    let inputs = desired_inputs(settings)?;
    let database = &settings.database;
    database.check().map_err(ServeError::Setting)?;
    let pool = Db::connect(
        &database.database_url,
        database.db_max_connections,
        database.db_pool_mode,
    )
    .await?;
    if !store::migrations_applied(&pool).await? {
        return Err(ServeError::NotMigrated);
    }
    let metrics = Arc::new(Metrics::new());
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Http)?;
    let state = api_state(
        settings,
        pool.clone(),
        metrics.clone(),
        inputs.clone(),
        shutdown.clone(),
    );
    let router = openclaws_api::router_with(state, settings.api.edge());
    let api_shutdown = shutdown.clone();
    let api = tokio::spawn(async move {
        openclaws_api::serve(
            listener,
            router,
            async move { api_shutdown.cancelled().await },
        )
        .await
    });
    let config = controller_config(settings);
    let reconciler = reconciler(
        settings,
        pool.clone(),
        inputs,
        metrics.clone(),
        &config.owner,
    );
    let wakeup = |channel| Wakeup::listen(Some(database.listen_url()), channel, shutdown.clone());
    let recovery = tokio::spawn(controller::outage::recover(
        reconciler.fly.clone(),
        pool.clone(),
        config.owner.clone(),
        wakeup(CIRCUIT_CHANNEL),
        shutdown.clone(),
    ));
    let watch = settings.watch_interval().map(|interval| {
        tokio::spawn(controller::watch::run(
            reconciler.fly.clone(),
            pool.clone(),
            database.listen_url(),
            metrics.clone(),
            controller::watch::WatchConfig::every(interval),
            shutdown.clone(),
        ))
    });
    let pruner = tokio::spawn(retention::run(
        pool.clone(),
        EventPruning::keeping(settings.event_retention),
        metrics.clone(),
        shutdown.clone(),
    ));
    let webhooks = tokio::spawn(openclaws_engine::webhooks::run(
        pool.clone(),
        Arc::new(settings.secret_key.0.clone()),
        metrics.clone(),
        settings.webhooks.config(),
        wakeup(WEBHOOK_CHANNEL),
        shutdown.clone(),
    ));
    let releases = tokio::spawn(openclaws_engine::release::run(
        pool.clone(),
        metrics.clone(),
        openclaws_engine::release::ReleaseConfig::default(),
        wakeup(RELEASE_CHANNEL),
        shutdown.clone(),
    ));
    let pairing = settings.gateway.gateway_checks.then(|| {
        let mut pairing = openclaws_engine::pairing::PairingConfig::new(
            &config.owner,
            settings.gateway.pairing_subscriptions as usize,
        );
        pairing.listen_url = Some(database.listen_url());
        tokio::spawn(openclaws_engine::pairing::run(
            reconciler.clone(),
            metrics.clone(),
            pairing,
            shutdown.clone(),
        ))
    });
    let stuck = tokio::spawn(openclaws_engine::stuck::run(
        pool.clone(),
        Arc::new(openclaws_telemetry::stuck::StuckReporter {
            metrics: metrics.clone(),
            issues: openclaws_telemetry::reporting::sentry_issues(),
        }),
        openclaws_engine::stuck::StuckConfig {
            after: settings.stuck_after,
            interval: Duration::from_secs_f64(settings.stuck_sweep_seconds),
        },
        shutdown.clone(),
    ));
    tracing::info!(
        %addr,
        owner = %config.owner,
        workers = config.workers,
        db_pool_mode = %database.db_pool_mode,
        "controller started"
    );
    let workers = tokio::spawn(controller::run(
        reconciler,
        pool,
        metrics,
        config,
        shutdown.clone(),
    ));
    Ok(Running {
        addr,
        shutdown,
        api,
        workers,
        watch,
        recovery,
        pruner,
        webhooks,
        releases,
        pairing,
        stuck,
    })
}

/// The engine with its clients (Fly, drawing on the budget shared by every replica; DNS) and
/// its reporting wired to `metrics`; its calls name the replica `owner`. Public for tests that
/// drive reconciles one at a time.
pub fn reconciler(
    settings: &ServeSettings,
    pool: Db,
    inputs: DesiredInputs,
    metrics: Arc<Metrics>,
    owner: &str,
) -> Reconciler {
    let budget =
        SharedBudget::new(pool.clone(), &settings.fly.fly_org).scaled(settings.fly.fly_rate_scale);
    let fly = FlyClient::new(
        &settings.fly.fly_api_base,
        &settings.fly.fly_api_token,
        &settings.fly.fly_org,
        metrics.clone(),
    )
    .with_budget(Arc::new(budget))
    .identified_as(owner);
    let leases: std::sync::Weak<dyn openclaws_telemetry::LeaseHolder> = fly.lease_book();
    metrics.track_leases(leases);
    let dns = settings.dns.dns_api_token.as_ref().map(|token| {
        let zone = settings.dns.dns_zone.as_deref();
        openclaws_dns::CloudflareDns::new(
            &settings.dns.dns_api_base,
            token,
            zone.unwrap_or(&settings.base_domain),
        )
        .identified_as(owner)
    });
    Reconciler {
        pool,
        fly,
        dns,
        inputs,
        cipher: Arc::new(settings.secret_key.0.clone()),
        timing: Timing {
            resync: Duration::from_secs(settings.resync_seconds),
            pairing_window: Duration::from_secs(settings.gateway.pairing_window_seconds),
        },
        telemetry: metrics,
    }
}

/// The dispatcher's settings: this replica's lease owner name, workers, lease, polling.
fn controller_config(settings: &ServeSettings) -> ControllerConfig {
    let start = uuid::Uuid::new_v4().simple().to_string();
    let database = &settings.database;
    ControllerConfig {
        owner: format!("{}-{}", hostname(), start.get(..8).unwrap_or("0")),
        workers: settings.workers as usize,
        lease: settings.lease(),
        poll: Duration::from_secs_f64(settings.poll_seconds.clamp(0.05, 60.0)),
        grace: Duration::from_secs(settings.shutdown_grace_seconds),
        listen_url: Some(database.listen_url()),
    }
}

/// The fleet settings and platform keys every instance's desired state is built from, shared by
/// the workers and the API's plan preview.
pub fn desired_inputs(settings: &ServeSettings) -> Result<DesiredInputs, ServeError> {
    let llm_proxy = settings.gateway.llm_proxy().map_err(ServeError::Setting)?;
    Ok(DesiredInputs {
        settings: FleetSettings {
            app_prefix: settings.fly.fly_app_prefix.clone(),
            base_domain: settings.base_domain.clone(),
            machine_stuck_after: Duration::from_secs(settings.machine_stuck_seconds),
            manage_dns: settings.dns.dns_api_token.is_some(),
            gateway: openclaws_engine::reconcile::desired::GatewayPlacement {
                checks: settings.gateway.gateway_checks,
                url: settings.gateway.gateway_url.clone(),
                private_url: settings.gateway.gateway_private_url.clone(),
                trusted_proxies: settings.gateway.gateway_trusted_proxies.clone(),
                llm_proxy_url: llm_proxy.as_ref().map(|(url, _)| url.clone()),
                composio: openclaws_gateway::composio::ComposioBridge {
                    api_base: settings.gateway.composio_api_base.clone(),
                    toolkit_versions: settings.gateway.composio_toolkit_versions.clone(),
                },
                telegram_api_root: settings.gateway.telegram_api_root.clone(),
            },
            public_url: settings.public_url,
        },
        composio_api_key: settings.composio_api_key.clone(),
        llm_proxy_key: llm_proxy.map(|(_, key)| key),
    })
}

/// The API's state for these settings (also used by tests that serve the API without workers);
/// its watches follow the database until `shutdown`, which also ends them.
pub fn api_state(
    settings: &ServeSettings,
    pool: Db,
    metrics: Arc<Metrics>,
    inputs: DesiredInputs,
    shutdown: CancellationToken,
) -> ApiState {
    let listen_url = settings.database.listen_url();
    let watch = WatchHub::start(pool.clone(), settings.api.watch(Some(listen_url)), shutdown);
    ApiState {
        watch,
        desired: DesiredWriter::start(pool.clone(), openclaws_api::DB_WAIT),
        pool,
        cipher: Arc::new(settings.secret_key.0.clone()),
        tokens: ApiTokens {
            writer: settings.api_write_token.clone(),
            reader: settings.api_read_token.clone(),
        }
        .into(),
        base_domain: settings.base_domain.as_str().into(),
        metrics,
        pairing_window: Duration::from_secs(settings.gateway.pairing_window_seconds),
        inputs: inputs.into(),
        rendered: RenderCache::with_capacity(settings.api.api_render_cache_mb << 20),
    }
}

/// This replica's name in lease owners: the Fly machine id, else the host name.
fn hostname() -> String {
    std::env::var("FLY_MACHINE_ID")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "controller".to_owned())
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
