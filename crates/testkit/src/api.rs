//! Helpers for the API tests: a router on 127.0.0.1:0 over a fresh database, and a client that
//! reads like the dashboard's actions.

use crate::pgbouncer::ThrowawayPgBouncer;
use crate::pgwire::{CountingProxy, WireCounts};
use openclaws_api::edge::EdgeSettings;
use openclaws_api::watch::{WatchHub, WatchSettings};
use openclaws_api::{router_with, ApiState, ApiTokens};
use openclaws_engine::reconcile::desired::{FleetSettings, GatewayPlacement};
use openclaws_engine::reconcile::DesiredInputs;
use openclaws_model::secrets::SecretCipher;
use openclaws_store::desired::DesiredWriter;
use openclaws_store::{Db, PoolMode};
use openclaws_telemetry::Metrics;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Writer token used by every test server.
pub const WRITER: &str = "writer-token-for-tests";
/// Reader token used by every test server.
pub const READER: &str = "reader-token-for-tests";

/// A running API over its own database.
pub struct TestApi {
    /// Base URL of the API.
    pub base: String,
    /// The API's database, for looking behind it.
    pub pool: PgPool,
    /// What the API itself uses: [`TestApi::pool`]'s database, through a transaction pooler
    /// when the test asked for one ([`spawn_api_via`]).
    pub db: Db,
    /// The pooler in front of the database, kept running as long as the API.
    pub pooler: Option<ThrowawayPgBouncer>,
    /// The cipher the API seals provider keys with.
    pub cipher: Arc<SecretCipher>,
    /// A client for the API.
    pub http: reqwest::Client,
    /// Cancelling it shuts the server down (its watches end, then it stops).
    pub stop: CancellationToken,
}

/// A response: status, headers and the body parsed as JSON (or `Value::String` of the text).
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as text.
    pub text: String,
    /// The body as JSON (or `Value::String` of the text).
    pub json: Value,
}

impl Reply {
    /// Paths named in a 422 body.
    pub fn field_paths(&self) -> Vec<String> {
        self.json["error"]["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["path"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The fleet settings of every test server: prefix `oc-`, domain `openclaws.test`, no DNS, no
/// gateway checks, no platform keys.
pub fn test_inputs() -> DesiredInputs {
    DesiredInputs::new(FleetSettings {
        app_prefix: "oc-".to_owned(),
        base_domain: "openclaws.test".to_owned(),
        machine_stuck_after: std::time::Duration::from_secs(300),
        manage_dns: false,
        gateway: GatewayPlacement::without_checks(),
        public_url: Default::default(),
    })
}

/// Starts the router on 127.0.0.1:0 over a fresh migrated database.
pub async fn spawn_api() -> TestApi {
    spawn_api_with(EdgeSettings::default()).await
}

/// [`spawn_api`] straight on the database, or (`pooler`) with the API's pool through a
/// throwaway PgBouncer in transaction pool mode, as on Supabase; wake-ups still listen on the
/// database itself (`DATABASE_LISTEN_URL`).
pub async fn spawn_api_via(pooler: bool) -> TestApi {
    spawn(EdgeSettings::default(), WatchSettings::default(), pooler).await
}

/// [`spawn_api`] with its edge settings (trusted proxies, the limit on failed credentials).
pub async fn spawn_api_with(edge: EdgeSettings) -> TestApi {
    spawn(edge, WatchSettings::default(), false).await
}

/// [`spawn_api`] with its watch settings (bookmark interval, buffer, ...); it listens for
/// wake-ups on its database unless `watch.listen_url` says otherwise.
pub async fn spawn_api_watching(watch: WatchSettings) -> TestApi {
    spawn(EdgeSettings::default(), watch, false).await
}

/// [`spawn_api`] whose requests reach the database through a [`CountingProxy`], so a test can
/// count what a request costs on the wire; its watches read the database directly, so only
/// requests are counted.
pub async fn spawn_api_counted() -> (TestApi, Arc<WireCounts>) {
    let db = crate::db::fresh_database_via(false).await;
    let stop = CancellationToken::new();
    let mut url = reqwest::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = CountingProxy::start(upstream, stop.clone()).await.unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    url.set_query(Some("sslmode=disable"));
    let counted = Db::connect(url.as_str(), 10, PoolMode::Session)
        .await
        .unwrap();
    let api = start(
        db,
        counted,
        EdgeSettings::default(),
        WatchSettings::default(),
        stop,
    )
    .await;
    (api, proxy.counts)
}

async fn spawn(edge: EdgeSettings, watch: WatchSettings, pooler: bool) -> TestApi {
    let db = crate::db::fresh_database_via(pooler).await;
    let api_db = db.controller.clone();
    start(db, api_db, edge, watch, CancellationToken::new()).await
}

/// Serves the API on `api_db`, its watches on `db`.
async fn start(
    db: crate::db::TestDb,
    api_db: Db,
    edge: EdgeSettings,
    mut watch: WatchSettings,
    stop: CancellationToken,
) -> TestApi {
    if watch.listen_url.is_none() {
        watch.listen_url = Some(db.url.clone());
    }
    let cipher = Arc::new(SecretCipher::from_key([7; 32]));
    let state = ApiState {
        pool: api_db.clone(),
        cipher: cipher.clone(),
        tokens: ApiTokens {
            writer: WRITER.to_owned(),
            reader: READER.to_owned(),
        }
        .into(),
        base_domain: "openclaws.test".into(),
        metrics: Arc::new(Metrics::default()),
        pairing_window: std::time::Duration::from_secs(600),
        inputs: test_inputs().into(),
        watch: WatchHub::start(db.controller.clone(), watch, stop.clone()),
        rendered: Default::default(),
        desired: DesiredWriter::start(api_db.clone(), openclaws_api::DB_WAIT),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        openclaws_api::serve(listener, router_with(state, edge), shutdown)
            .await
            .unwrap();
    });
    TestApi {
        base: format!("http://{addr}"),
        pool: db.pool,
        db: db.controller,
        pooler: db.pooler,
        cipher,
        http: reqwest::Client::new(),
        stop,
    }
}

impl TestApi {
    /// Sends a request with an optional token, body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// Writer request with a JSON body.
    pub async fn write(&self, method: Method, path: &str, body: &Value) -> Reply {
        self.send(
            method,
            path,
            Some(WRITER),
            Some(("application/json", serde_json::to_vec(body).unwrap())),
            &[],
        )
        .await
    }

    /// `PUT /v1/instances/{name}` as the writer.
    pub async fn put(&self, name: &str, body: &Value) -> Reply {
        self.write(Method::PUT, &format!("/v1/instances/{name}"), body)
            .await
    }

    /// `PATCH /v1/instances/{name}` (merge patch) as the writer.
    pub async fn patch(&self, name: &str, body: &Value) -> Reply {
        self.send(
            Method::PATCH,
            &format!("/v1/instances/{name}"),
            Some(WRITER),
            Some((
                "application/merge-patch+json",
                serde_json::to_vec(body).unwrap(),
            )),
            &[],
        )
        .await
    }

    /// GET as the writer.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Some(WRITER), None, &[]).await
    }

    /// DELETE as the writer.
    pub async fn delete(&self, name: &str) -> Reply {
        self.send(
            Method::DELETE,
            &format!("/v1/instances/{name}"),
            Some(WRITER),
            None,
            &[],
        )
        .await
    }
}

/// A minimal valid spec body.
pub fn minimal(customer: &str) -> Value {
    serde_json::json!({"spec": {"customerId": customer, "region": "iad"}})
}
