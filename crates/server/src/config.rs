//! Settings, parsed once from flags and environment variables and validated at start-up.
//! A missing or malformed setting stops the process with a message naming it.

use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

use openclaws_model::secrets::SecretCipher;
use openclaws_store::PoolMode;

/// Database connection settings.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL URL: a direct connection, a session pooler, or a transaction pooler (such as
    /// Supabase's on port 6543) with OPENCLAWS_DB_POOL_MODE=transaction. The API and the workers
    /// run every statement through it.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: String,
    /// A session's URL (a direct connection, or a session pooler such as Supabase's on port
    /// 5432) for what a transaction pooler cannot do: LISTEN/NOTIFY wake-ups, the fleet watch's
    /// lock (a session advisory lock) and `migrate` (sqlx's migrator locks the same way).
    /// Defaults to DATABASE_URL; required with OPENCLAWS_DB_POOL_MODE=transaction.
    #[arg(
        long,
        env = "DATABASE_LISTEN_URL",
        value_name = "DATABASE_LISTEN_URL",
        hide_env_values = true
    )]
    pub database_listen_url: Option<String>,
    /// Maximum connections in this replica's pool (API and workers share it). The default, 10,
    /// leaves room on PostgreSQL's default `max_connections` of 100 for several replicas, each
    /// also holding one session for LISTEN (and the watching replica one for the fleet watch's
    /// lock), and for migrations and people: 3 replicas use 34. Raise it with the server's
    /// limit in mind: replicas × (pool + 1) + 1 must stay below it. Through a transaction
    /// pooler these are connections to the pooler, which shares its own (smaller) pool of
    /// server connections among them; only the sessions count against the server.
    #[arg(
        long,
        env = "OPENCLAWS_DB_MAX_CONNECTIONS",
        value_name = "OPENCLAWS_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub db_max_connections: u32,
    /// How DATABASE_URL lends server connections: `session` (a direct connection or a session
    /// pooler; the default) or `transaction` (a transaction pooler: Supabase's on port 6543,
    /// PgBouncer's `pool_mode = transaction`). With `transaction` every statement is sent
    /// unnamed inside a transaction, since a prepared statement or one left outside a
    /// transaction may reach another server connection than the one that prepared it.
    #[arg(
        long,
        env = "OPENCLAWS_DB_POOL_MODE",
        value_name = "OPENCLAWS_DB_POOL_MODE",
        default_value = "session",
        value_parser = parse_pool_mode
    )]
    pub db_pool_mode: PoolMode,
}

impl DatabaseSettings {
    /// The URL of a session, for LISTEN, the fleet watch's lock and migrations:
    /// `DATABASE_LISTEN_URL`, else `DATABASE_URL`.
    pub fn listen_url(&self) -> String {
        self.database_listen_url
            .clone()
            .unwrap_or_else(|| self.database_url.clone())
    }

    /// Whether the settings fit together: a transaction pooler needs a session URL beside it
    /// (an error names what is missing).
    pub fn check(&self) -> Result<(), String> {
        if self.db_pool_mode == PoolMode::Transaction && self.database_listen_url.is_none() {
            return Err(
                "OPENCLAWS_DB_POOL_MODE=transaction needs DATABASE_LISTEN_URL: a direct \
                        connection or a session pooler for LISTEN, the fleet watch's lock and \
                        migrations, which a transaction pooler cannot hold"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Address the API listens on.
    #[arg(
        long,
        env = "OPENCLAWS_LISTEN",
        value_name = "OPENCLAWS_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// Bearer token of the writer role (the dashboard).
    #[arg(long, env = "OPENCLAWS_API_WRITE_TOKEN", value_name = "OPENCLAWS_API_WRITE_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub api_write_token: String,
    /// Bearer token of the reader role (support).
    #[arg(long, env = "OPENCLAWS_API_READ_TOKEN", value_name = "OPENCLAWS_API_READ_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub api_read_token: String,
    /// 32-byte key, base64, encrypting secrets at rest (generate: `openssl rand -base64 32`).
    #[arg(long, env = "OPENCLAWS_SECRET_KEY", value_name = "OPENCLAWS_SECRET_KEY", hide_env_values = true, value_parser = parse_secret_key)]
    pub secret_key: SecretKey,
    #[command(flatten)]
    pub fly: FlySettings,
    #[command(flatten)]
    pub dns: DnsSettings,
    #[command(flatten)]
    pub gateway: GatewaySettings,
    #[command(flatten)]
    pub api: ApiSettings,
    #[command(flatten)]
    pub webhooks: WebhookSettings,
    /// Hostnames are `{name}.{base domain}`.
    #[arg(
        long,
        env = "OPENCLAWS_BASE_DOMAIN",
        value_name = "OPENCLAWS_BASE_DOMAIN",
        default_value = "openclaws.biz"
    )]
    pub base_domain: String,
    /// How a browser reaches an instance's hostname: `https://{hostname}` behind Fly's edge,
    /// or e.g. `http://{hostname}:4281` for a local proxy (the dev stack's `*.localhost`). Sets
    /// each gateway's `publicOrigin` and `controlUi.allowedOrigins` and the status endpoint.
    #[arg(
        long,
        env = "OPENCLAWS_PUBLIC_URL",
        value_name = "OPENCLAWS_PUBLIC_URL",
        default_value = "https://{hostname}"
    )]
    pub public_url: openclaws_engine::reconcile::desired::PublicUrl,
    /// Reconciles run at once by this process.
    #[arg(long, env = "OPENCLAWS_WORKERS", value_name = "OPENCLAWS_WORKERS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
    /// Composio's platform API key, set as the `COMPOSIO_API_KEY` secret of every instance with
    /// Composio enabled (unset: Composio gets no key and the controller never touches that secret).
    #[arg(
        long,
        env = "OPENCLAWS_COMPOSIO_API_KEY",
        value_name = "OPENCLAWS_COMPOSIO_API_KEY",
        hide_env_values = true
    )]
    pub composio_api_key: Option<openclaws_model::secrets::Sensitive>,
    /// Seconds between deep looks at a converged instance (jittered by ±10%): the safety net for
    /// drift the fleet watch cannot see (secrets, addresses, certificate, DNS).
    #[arg(long, env = "OPENCLAWS_RESYNC_SECONDS", value_name = "OPENCLAWS_RESYNC_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub resync_seconds: u64,
    /// Seconds between passes of the fleet watch over Fly's org-wide machine listing, which wakes
    /// instances whose machine changed (0 turns it off).
    #[arg(
        long,
        env = "OPENCLAWS_WATCH_SECONDS",
        value_name = "OPENCLAWS_WATCH_SECONDS",
        default_value_t = 15.0
    )]
    pub watch_seconds: f64,
    /// Seconds a claimed instance stays leased without renewal (renewed every third of it).
    #[arg(long, env = "OPENCLAWS_LEASE_SECONDS", value_name = "OPENCLAWS_LEASE_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_seconds: u64,
    /// Seconds between polls of the work queue when no notification arrives (the safety net).
    #[arg(
        long,
        env = "OPENCLAWS_POLL_SECONDS",
        value_name = "OPENCLAWS_POLL_SECONDS",
        default_value_t = 2.0
    )]
    pub poll_seconds: f64,
    /// Seconds a machine may stay starting/stopping/destroying before it is recovered (updates
    /// get twice as long); Fly documents 5 minutes as the point where a machine is wedged.
    #[arg(long, env = "OPENCLAWS_MACHINE_STUCK_SECONDS", value_name = "OPENCLAWS_MACHINE_STUCK_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub machine_stuck_seconds: u64,
    /// Seconds in-flight reconciles may take to finish after SIGTERM/SIGINT.
    #[arg(
        long,
        env = "OPENCLAWS_SHUTDOWN_GRACE_SECONDS",
        value_name = "OPENCLAWS_SHUTDOWN_GRACE_SECONDS",
        default_value_t = 20
    )]
    pub shutdown_grace_seconds: u64,
    /// How long events (each instance's history, with the audit trail of its writes) are kept:
    /// a number and a unit, `s`, `m`, `h` or `d` (`30d`, `12h`); at least a minute. Older ones
    /// are pruned every 5 minutes, in batches.
    #[arg(
        long,
        env = "OPENCLAWS_EVENT_RETENTION",
        value_name = "OPENCLAWS_EVENT_RETENTION",
        default_value = "30d",
        value_parser = parse_retention
    )]
    pub event_retention: Duration,
    /// How long an instance's current generation may stay not Ready before it counts as stuck:
    /// reported to Sentry once (resolved when it recovers) and counted in
    /// `openclaws_instances_stuck`. A number and a unit, `s`, `m`, `h` or `d`.
    #[arg(
        long,
        env = "OPENCLAWS_STUCK_AFTER",
        value_name = "OPENCLAWS_STUCK_AFTER",
        default_value = "15m",
        value_parser = parse_stuck_after
    )]
    pub stuck_after: Duration,
    /// Seconds between sweeps for stuck instances (one replica at a time does the work).
    #[arg(long, env = "OPENCLAWS_STUCK_SWEEP_SECONDS", value_name = "OPENCLAWS_STUCK_SWEEP_SECONDS", default_value_t = 30.0, value_parser = parse_positive_seconds)]
    pub stuck_sweep_seconds: f64,
}

/// Webhook deliveries (`docs/webhooks.md`): timeouts, retries, concurrency.
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// How long a failing delivery is retried (seconds from its change) before it is marked
    /// failed; a day by default.
    #[arg(long, env = "OPENCLAWS_WEBHOOK_RETRY_FOR_SECONDS", value_name = "OPENCLAWS_WEBHOOK_RETRY_FOR_SECONDS", default_value_t = 86_400.0, value_parser = parse_positive_seconds)]
    pub webhook_retry_for_seconds: f64,
    /// Delay before the first retry (seconds); each later delay is 6 times the previous, up to
    /// an hour, with ±20 % jitter (5 s, 30 s, 3 min, 18 min, 1 h, 1 h, ...).
    #[arg(long, env = "OPENCLAWS_WEBHOOK_RETRY_BASE_SECONDS", value_name = "OPENCLAWS_WEBHOOK_RETRY_BASE_SECONDS", default_value_t = 5.0, value_parser = parse_positive_seconds)]
    pub webhook_retry_base_seconds: f64,
    /// Longest one delivery POST may take (seconds).
    #[arg(long, env = "OPENCLAWS_WEBHOOK_TIMEOUT_SECONDS", value_name = "OPENCLAWS_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10.0, value_parser = parse_positive_seconds)]
    pub webhook_timeout_seconds: f64,
    /// Deliveries in flight at once in this replica.
    #[arg(long, env = "OPENCLAWS_WEBHOOK_CONCURRENCY", value_name = "OPENCLAWS_WEBHOOK_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub webhook_concurrency: u32,
    /// Pause between two looks at an empty outbox (seconds): the delay a new change waits at
    /// most before its first attempt.
    #[arg(long, env = "OPENCLAWS_WEBHOOK_POLL_SECONDS", value_name = "OPENCLAWS_WEBHOOK_POLL_SECONDS", default_value_t = 0.25, value_parser = parse_positive_seconds)]
    pub webhook_poll_seconds: f64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            webhook_retry_for_seconds: 86_400.0,
            webhook_retry_base_seconds: 5.0,
            webhook_timeout_seconds: 10.0,
            webhook_concurrency: 16,
            webhook_poll_seconds: 0.25,
        }
    }
}

impl WebhookSettings {
    /// The worker's configuration.
    pub fn config(&self) -> openclaws_engine::webhooks::WebhookConfig {
        let seconds = Duration::from_secs_f64;
        openclaws_engine::webhooks::WebhookConfig {
            retry_for: seconds(self.webhook_retry_for_seconds),
            retry_base: seconds(self.webhook_retry_base_seconds),
            timeout: seconds(self.webhook_timeout_seconds),
            concurrency: self.webhook_concurrency as usize,
            poll: seconds(self.webhook_poll_seconds),
            ..Default::default()
        }
    }
}

/// A number of seconds from 0.01 to 30 days.
fn parse_positive_seconds(s: &str) -> Result<f64, String> {
    let value: f64 = s
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds".to_owned())?;
    if !(0.01..=30.0 * 86_400.0).contains(&value) {
        return Err("must be from 0.01 to 2592000 seconds".to_owned());
    }
    Ok(value)
}

/// The API's edge: which proxies' client-address headers to believe, and how many failed
/// credentials (bearer tokens, support sign-ins) one client address may present.
#[derive(Debug, Clone, Args)]
pub struct ApiSettings {
    /// CIDRs of the reverse proxies in front of the API (e.g. `172.16.0.0/12,fdaa::/16` for
    /// fly-proxy): only a connection from one of them has its client address taken from
    /// `Fly-Client-IP` or `X-Forwarded-For`. Empty (the default): the connection's address.
    #[arg(
        long,
        env = "OPENCLAWS_API_TRUSTED_PROXIES",
        value_name = "OPENCLAWS_API_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub api_trusted_proxies: Vec<openclaws_api::edge::IpNet>,
    /// Failed credentials one client address may present per minute once its burst is spent;
    /// beyond it the API answers 429 with `Retry-After` without checking the credential.
    #[arg(long, env = "OPENCLAWS_API_AUTH_FAILURES_PER_MINUTE", value_name = "OPENCLAWS_API_AUTH_FAILURES_PER_MINUTE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub api_auth_failures_per_minute: u32,
    /// Failed credentials one client address may present in a row before the rate applies.
    #[arg(long, env = "OPENCLAWS_API_AUTH_FAILURE_BURST", value_name = "OPENCLAWS_API_AUTH_FAILURE_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub api_auth_failure_burst: u32,
    /// How long instance changes are kept for watches to resume from (seconds); a watch asked
    /// to resume from an older version gets 410 Gone and lists again.
    #[arg(long, env = "OPENCLAWS_WATCH_RETENTION_SECONDS", value_name = "OPENCLAWS_WATCH_RETENTION_SECONDS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(10..=604_800))]
    pub watch_retention_seconds: u64,
    /// Seconds between two bookmarks (or heartbeats) of an idle watch: below the idle timeout
    /// of every proxy in front of the API.
    #[arg(long, env = "OPENCLAWS_WATCH_BOOKMARK_SECONDS", value_name = "OPENCLAWS_WATCH_BOOKMARK_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub watch_bookmark_seconds: u64,
    /// Memory for instances as the API last rendered them (MiB), reused while their version is
    /// current; 0 renders every read anew.
    #[arg(long, env = "OPENCLAWS_API_RENDER_CACHE_MB", value_name = "OPENCLAWS_API_RENDER_CACHE_MB", default_value_t = openclaws_api::rendered::DEFAULT_CAPACITY_BYTES >> 20, value_parser = clap::value_parser!(u64).range(0..=65_536))]
    pub api_render_cache_mb: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        let edge = openclaws_api::edge::EdgeSettings::default();
        let watch = openclaws_api::watch::WatchSettings::default();
        Self {
            api_trusted_proxies: edge.trusted_proxies,
            api_auth_failures_per_minute: edge.auth_failures_per_minute,
            api_auth_failure_burst: edge.auth_failure_burst,
            watch_retention_seconds: watch.retention.as_secs(),
            watch_bookmark_seconds: watch.bookmark_interval.as_secs(),
            api_render_cache_mb: openclaws_api::rendered::DEFAULT_CAPACITY_BYTES >> 20,
        }
    }
}

impl ApiSettings {
    /// The API's edge settings.
    pub fn edge(&self) -> openclaws_api::edge::EdgeSettings {
        openclaws_api::edge::EdgeSettings {
            trusted_proxies: self.api_trusted_proxies.clone(),
            auth_failures_per_minute: self.api_auth_failures_per_minute,
            auth_failure_burst: self.api_auth_failure_burst,
        }
    }

    /// The watches' settings, listening on `listen_url` for wake-ups.
    pub fn watch(&self, listen_url: Option<String>) -> openclaws_api::watch::WatchSettings {
        openclaws_api::watch::WatchSettings {
            retention: Duration::from_secs(self.watch_retention_seconds),
            bookmark_interval: Duration::from_secs(self.watch_bookmark_seconds),
            listen_url,
            ..openclaws_api::watch::WatchSettings::default()
        }
    }
}

/// How the controller reaches and configures each instance's gateway.
#[derive(Debug, Clone, Args)]
pub struct GatewaySettings {
    /// Whether the controller looks at each gateway itself (health, pairing, owned config).
    /// Off only for simulated machines that run no gateway; then `Ready` means the Fly side is
    /// converged and no gateway condition is reported.
    #[arg(long, env = "OPENCLAWS_GATEWAY_CHECKS", value_name = "OPENCLAWS_GATEWAY_CHECKS", default_value_t = true, action = clap::ArgAction::Set)]
    pub gateway_checks: bool,
    /// Base URL every gateway is reached through, with `Host: {slug}.{base domain}` (e.g. the
    /// simulator's proxy). Unset: `https://{slug}.{base domain}` itself.
    #[arg(long, env = "OPENCLAWS_GATEWAY_URL", value_name = "OPENCLAWS_GATEWAY_URL", value_parser = parse_base_url)]
    pub gateway_url: Option<String>,
    /// Base URL every private gateway (`exposure: private`) is reached through, with
    /// `Host: {app}.flycast` (e.g. the simulator's private proxy). Unset: `http://{app}.flycast`
    /// itself, which resolves on Fly's private network (the controller must run on Fly, in the
    /// same organization).
    #[arg(long, env = "OPENCLAWS_GATEWAY_PRIVATE_URL", value_name = "OPENCLAWS_GATEWAY_PRIVATE_URL", value_parser = parse_base_url)]
    pub gateway_private_url: Option<String>,
    /// CIDRs of the proxy in front of every gateway (`gateway.trustedProxies`): fly-proxy's
    /// source addresses on Fly, `127.0.0.1/32` for the simulator's proxy.
    #[arg(
        long,
        env = "OPENCLAWS_GATEWAY_TRUSTED_PROXIES",
        value_name = "OPENCLAWS_GATEWAY_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = "172.16.0.0/12,fdaa::/16"
    )]
    pub gateway_trusted_proxies: Vec<String>,
    /// Most gateway pairing subscriptions (WebSockets following pairing events while a pairing
    /// window is open or requests are pending) this replica holds at once; more candidates
    /// take turns (`docs/pairing.md`).
    #[arg(long, env = "OPENCLAWS_PAIRING_SUBSCRIPTIONS", value_name = "OPENCLAWS_PAIRING_SUBSCRIPTIONS", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub pairing_subscriptions: u32,
    /// Seconds a pairing window stays open after the dashboard reads the gateway token.
    #[arg(long, env = "OPENCLAWS_PAIRING_WINDOW_SECONDS", value_name = "OPENCLAWS_PAIRING_WINDOW_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub pairing_window_seconds: u64,
    /// Anthropic base URL of the platform's LLM proxy. With it (and the key below), an instance
    /// without its own Anthropic credential gets a short-lived proxy token as `ANTHROPIC_API_KEY`
    /// and `models.providers.anthropic.baseUrl` pointing here.
    #[arg(long, env = "OPENCLAWS_LLM_PROXY_URL", value_name = "OPENCLAWS_LLM_PROXY_URL", value_parser = parse_base_url)]
    pub llm_proxy_url: Option<String>,
    /// The HS256 key shared with the LLM proxy (at least 32 bytes); required with the URL.
    #[arg(
        long,
        env = "OPENCLAWS_LLM_PROXY_KEY",
        value_name = "OPENCLAWS_LLM_PROXY_KEY",
        hide_env_values = true
    )]
    pub llm_proxy_key: Option<openclaws_model::secrets::Sensitive>,
    /// The audience the LLM proxy expects.
    #[arg(
        long,
        env = "OPENCLAWS_LLM_PROXY_AUDIENCE",
        value_name = "OPENCLAWS_LLM_PROXY_AUDIENCE",
        default_value = "openclaws-llm-proxy"
    )]
    pub llm_proxy_audience: String,
    /// Lifetime of a proxy token in seconds (replaced at two thirds of it).
    #[arg(long, env = "OPENCLAWS_LLM_PROXY_TOKEN_SECONDS", value_name = "OPENCLAWS_LLM_PROXY_TOKEN_SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(i64).range(60..=30 * 86_400))]
    pub llm_proxy_token_seconds: i64,
    /// Composio's API base for every gateway's `composio-exec` bridge, when not Composio's own
    /// (`https://backend.composio.dev/api/v3`): for development and tests, a fake's.
    #[arg(long, env = "OPENCLAWS_COMPOSIO_API_BASE", value_name = "OPENCLAWS_COMPOSIO_API_BASE", value_parser = parse_base_url)]
    pub composio_api_base: Option<String>,
    /// Composio toolkit versions the bridge runs, `toolkit=version,…` (e.g.
    /// `gmail=20250930_00,github=20250909_00`; `latest` is refused). Toolkits not listed run at
    /// Composio's pinned base version (`00000000_00`), which never moves under a running agent.
    #[arg(
        long,
        env = "OPENCLAWS_COMPOSIO_TOOLKIT_VERSIONS",
        value_name = "OPENCLAWS_COMPOSIO_TOOLKIT_VERSIONS",
        default_value = ""
    )]
    pub composio_toolkit_versions: openclaws_gateway::composio::ToolkitVersions,
    /// Development and tests only: the Telegram Bot API root every managed Telegram channel
    /// uses (`channels.telegram.apiRoot`), so a real gateway talks to a fake Bot API. Never set
    /// it in production: the bots' tokens would go to this address.
    #[arg(long, env = "OPENCLAWS_TELEGRAM_API_ROOT", value_name = "OPENCLAWS_TELEGRAM_API_ROOT", value_parser = parse_base_url)]
    pub telegram_api_root: Option<String>,
}

impl GatewaySettings {
    /// Settings for simulated machines that run no gateway (`make run`, most tests).
    pub fn without_checks() -> Self {
        Self {
            gateway_checks: false,
            gateway_url: None,
            gateway_private_url: None,
            gateway_trusted_proxies: vec!["127.0.0.1/32".to_owned()],
            pairing_subscriptions: 200,
            pairing_window_seconds: 600,
            llm_proxy_url: None,
            llm_proxy_key: None,
            llm_proxy_audience: "openclaws-llm-proxy".to_owned(),
            llm_proxy_token_seconds: 86_400,
            composio_api_base: None,
            composio_toolkit_versions: Default::default(),
            telegram_api_root: None,
        }
    }

    /// The proxy-token key, when the LLM proxy is configured; an error names what is wrong.
    pub fn llm_proxy(
        &self,
    ) -> Result<Option<(String, openclaws_gateway::proxy_token::ProxyTokenKey)>, String> {
        match (&self.llm_proxy_url, &self.llm_proxy_key) {
            (None, None) => Ok(None),
            (Some(_), None) => {
                Err("OPENCLAWS_LLM_PROXY_URL is set but OPENCLAWS_LLM_PROXY_KEY is not".into())
            }
            (None, Some(_)) => {
                Err("OPENCLAWS_LLM_PROXY_KEY is set but OPENCLAWS_LLM_PROXY_URL is not".into())
            }
            (Some(url), Some(key)) => openclaws_gateway::proxy_token::ProxyTokenKey::new(
                key.expose().as_bytes(),
                self.llm_proxy_audience.clone(),
                chrono::Duration::seconds(self.llm_proxy_token_seconds),
            )
            .map(|k| Some((url.clone(), k)))
            .map_err(|e| format!("OPENCLAWS_LLM_PROXY_KEY: {e}")),
        }
    }
}

/// How to manage hostnames' DNS records (Cloudflare API). Without a token, no DNS record or
/// certificate is managed.
#[derive(Debug, Clone, Args)]
pub struct DnsSettings {
    /// Cloudflare API base URL (point it at `sim` for local runs).
    #[arg(long, env = "OPENCLAWS_DNS_API_BASE", value_name = "OPENCLAWS_DNS_API_BASE", default_value = "https://api.cloudflare.com", value_parser = parse_base_url)]
    pub dns_api_base: String,
    /// Cloudflare API token with DNS edit rights on the zone; unset disables DNS and certificates.
    #[arg(long, env = "OPENCLAWS_DNS_API_TOKEN", value_name = "OPENCLAWS_DNS_API_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub dns_api_token: Option<String>,
    /// DNS zone holding the hostnames (default: the base domain).
    #[arg(long, env = "OPENCLAWS_DNS_ZONE", value_name = "OPENCLAWS_DNS_ZONE")]
    pub dns_zone: Option<String>,
}

/// How to reach Fly.
#[derive(Debug, Clone, Args)]
pub struct FlySettings {
    /// Fly Machines API base URL (point it at `sim` for local runs).
    #[arg(long, env = "FLY_API_BASE", value_name = "FLY_API_BASE", default_value = "https://api.machines.dev", value_parser = parse_base_url)]
    pub fly_api_base: String,
    /// Org-scoped Fly API token (`fly tokens create org`); `FlyV1 …` or a bare token.
    #[arg(long, env = "FLY_API_TOKEN", value_name = "FLY_API_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub fly_api_token: String,
    /// Fly organization slug the apps are created in.
    #[arg(long, env = "FLY_ORG", value_name = "FLY_ORG")]
    pub fly_org: String,
    /// Prefix of app names: `{prefix}{slug}`.
    #[arg(long, env = "FLY_APP_PREFIX", value_name = "FLY_APP_PREFIX", default_value = "oc-", value_parser = parse_app_prefix)]
    pub fly_app_prefix: String,
    /// Fly's rate limits times this in the client and the shared budget. Not a setting of the
    /// binary (always 1 there): only `make bench`'s scaled mode sets it, together with its
    /// simulator's limits, to provision a large fleet in minutes.
    #[arg(skip = 1.0)]
    pub fly_rate_scale: f64,
}

/// The parsed secret key (kept as the cipher; never printed).
#[derive(Clone)]
pub struct SecretKey(pub SecretCipher);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

fn parse_secret_key(s: &str) -> Result<SecretKey, String> {
    SecretCipher::from_base64(s)
        .map(SecretKey)
        .map_err(|e| e.to_string())
}

fn parse_pool_mode(s: &str) -> Result<PoolMode, String> {
    s.parse()
}

fn parse_token(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_owned())
}

fn parse_base_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http(s) URL".into());
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// A retention such as `30d`, `12h`, `90m` or `600s`: at least a minute, at most 100 years.
fn parse_retention(s: &str) -> Result<Duration, String> {
    let total = parse_span(s)?;
    if total < Duration::from_secs(60) {
        return Err("must be at least a minute and at most 100 years".into());
    }
    Ok(total)
}

fn parse_stuck_after(s: &str) -> Result<Duration, String> {
    let total = parse_span(s)?;
    if total.is_zero() {
        return Err("must be at least a second".into());
    }
    Ok(total)
}

/// A whole number with a unit, `s`, `m`, `h` or `d`, up to 100 years.
fn parse_span(s: &str) -> Result<Duration, String> {
    const UNITS: [(char, u64); 4] = [('s', 1), ('m', 60), ('h', 3600), ('d', 86_400)];
    let s = s.trim();
    let unit = s.chars().last().unwrap_or(' ');
    let seconds = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, seconds)| *seconds)
        .ok_or("must be a number with a unit: s, m, h or d (e.g. 30d)")?;
    let count: u64 = s[..s.len() - 1]
        .parse()
        .map_err(|_| "must be a whole number with a unit: s, m, h or d (e.g. 30d)")?;
    let total = count.saturating_mul(seconds);
    if total > 100 * 365 * 86_400 {
        return Err("must be at most 100 years".into());
    }
    Ok(Duration::from_secs(total))
}

fn parse_app_prefix(s: &str) -> Result<String, String> {
    if s.len() > 20 {
        return Err("at most 20 characters".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("only lowercase letters, digits and '-'".into());
    }
    Ok(s.to_owned())
}

impl ServeSettings {
    /// Lease duration.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }

    /// Interval of the fleet watch; `None` when it is off.
    pub fn watch_interval(&self) -> Option<Duration> {
        (self.watch_seconds.is_finite() && self.watch_seconds > 0.0)
            .then(|| Duration::from_secs_f64(self.watch_seconds.clamp(0.05, 3600.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators() {
        assert!(parse_app_prefix("oc-").is_ok());
        assert!(parse_app_prefix("OC_").is_err());
        assert!(parse_base_url("ftp://x").is_err());
        assert_eq!(
            parse_base_url("http://127.0.0.1:1/").unwrap(),
            "http://127.0.0.1:1"
        );
        assert!(parse_token("  ").is_err());
        assert!(parse_secret_key("AAAA").is_err());
        assert_eq!(parse_pool_mode("transaction"), Ok(PoolMode::Transaction));
        assert!(parse_pool_mode("pgbouncer").is_err());
    }

    #[test]
    fn retentions() {
        assert_eq!(parse_retention("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_retention("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_retention("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_retention("600s"), Ok(Duration::from_secs(600)));
        for bad in [
            "",
            "d",
            "30",
            "30w",
            "-1d",
            "1.5d",
            "59s",
            "99999999999d",
            "3 d",
        ] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stuck_limits() {
        assert_eq!(parse_stuck_after("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_stuck_after("2s"), Ok(Duration::from_secs(2)));
        for bad in ["0s", "", "15", "-1m", "1.5m"] {
            assert!(parse_stuck_after(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_transaction_pooler_needs_a_session_url() {
        let mut db = DatabaseSettings {
            database_url: "postgres://pooler:6543/postgres".into(),
            database_listen_url: None,
            db_max_connections: 10,
            db_pool_mode: PoolMode::Transaction,
        };
        assert!(db.check().unwrap_err().contains("DATABASE_LISTEN_URL"));
        db.database_listen_url = Some("postgres://db:5432/postgres".into());
        assert_eq!(db.check(), Ok(()));
        assert_eq!(db.listen_url(), "postgres://db:5432/postgres");
        db.db_pool_mode = PoolMode::Session;
        db.database_listen_url = None;
        assert_eq!(db.check(), Ok(()));
        assert_eq!(db.listen_url(), "postgres://pooler:6543/postgres");
    }
}
