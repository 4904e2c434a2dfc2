//! A typed client for the Fly Machines REST API.
//!
//! It does one HTTP call per method and classifies failures ([`FlyError`]); it never retries,
//! because an ambiguous create must be resolved by observing again and a failed read is the
//! reconcile's to retry (the reconciler's job). Before a call goes out it passes the
//! organization's [`Circuit`], takes a token from its [`Budget`] and, for a mutation made by a
//! reconcile, passes the reconcile's [`Fence`].

use reqwest::{header, Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::circuit::Circuit;
use super::error::FlyError;
use super::limits::{Budget, FlyRateLimits, LimitClass};
use super::observer::FlyObserver;
use super::types::*;
use openclaws_model::fence::{within, Fence, Fenced};

/// Per-request timeout; Fly's own proxy cuts requests at 60 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Kept between the end of a fenced request's timeout and the end of the lease it was sent
/// under.
const FENCE_SAFETY: Duration = Duration::from_secs(1);

/// Header carrying the nonce of the machine lease a mutation is made under.
pub const LEASE_NONCE_HEADER: &str = "fly-machine-lease-nonce";

/// How long a machine lease we take lasts. Short, so a controller that dies while holding one
/// leaves the machine free again within half a minute instead of wedging the instance.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// A client bound to one base URL, token and org.
#[derive(Clone, Debug)]
pub struct FlyClient {
    http: reqwest::Client,
    base: String,
    authorization: String,
    user_agent: String,
    org: String,
    observer: Arc<dyn FlyObserver>,
    /// Rate-limit tokens and app slots: this process's by default, shared by every replica
    /// in production ([`FlyClient::with_budget`]).
    budget: Arc<dyn Budget>,
    /// Held calls while Fly is down; shared by every clone.
    circuit: Arc<Circuit>,
    /// The lease a reconcile's mutations must still hold ([`FlyClient::fenced`]).
    fence: Option<Arc<dyn Fence>>,
    /// Nonces of leases this process holds, by machine id, so a lease whose release failed is
    /// refreshed (same nonce) by our next attempt instead of blocking us until it expires.
    held_leases: Arc<LeaseBook>,
}

/// The leases this process took, by machine id; counted at scrape time for
/// `openclaws_fly_leases_held`.
#[derive(Debug, Default)]
pub struct LeaseBook(std::sync::Mutex<std::collections::HashMap<String, HeldLease>>);

impl LeaseBook {
    /// Leases held and not yet expired (one released late or never released stops counting
    /// when it expires).
    pub fn held(&self) -> usize {
        let now = Instant::now();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|l| l.until > now)
            .count()
    }
}

/// A lease this process took and may still hold.
#[derive(Debug, Clone)]
pub struct HeldLease {
    nonce: String,
    until: Instant,
}

fn default_user_agent() -> String {
    concat!("openclaws-controller/", env!("CARGO_PKG_VERSION")).to_owned()
}

/// The `Authorization` header value for a Fly token: verbatim when it carries a scheme,
/// `FlyV1` for bare macaroons, `Bearer` otherwise.
pub fn authorization_header(token: &str) -> String {
    let token = token.trim();
    if token.starts_with("FlyV1 ") || token.starts_with("Bearer ") {
        token.to_owned()
    } else if ["fm1r_", "fm1a_", "fm2_"]
        .iter()
        .any(|p| token.starts_with(p))
    {
        format!("FlyV1 {token}")
    } else {
        format!("Bearer {token}")
    }
}

impl FlyClient {
    /// Builds a client. `base` is e.g. `https://api.machines.dev` (no `/v1`); every call is
    /// reported to `observer`.
    pub fn new(base: &str, token: &str, org: &str, observer: Arc<dyn FlyObserver>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .expect("a TLS backend is compiled in");
        let held_leases = Arc::new(LeaseBook::default());
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            authorization: authorization_header(token),
            user_agent: default_user_agent(),
            org: org.to_owned(),
            observer,
            budget: Arc::new(FlyRateLimits::new()),
            circuit: Arc::new(Circuit::default()),
            fence: None,
            held_leases,
        }
    }

    /// The same client taking its rate-limit tokens from `budget` (one shared by replicas).
    pub fn with_budget(mut self, budget: Arc<dyn Budget>) -> Self {
        self.budget = budget;
        self
    }

    /// A clone whose every mutation first passes `fence` (a reconcile's work lease) and is
    /// bounded to end while the lease is still held.
    pub fn fenced(&self, fence: Arc<dyn Fence>) -> Self {
        Self {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// The organization's circuit, to follow outages and recoveries.
    pub fn circuit(&self) -> &Arc<Circuit> {
        &self.circuit
    }

    /// Holds calls because Fly is down as another replica saw it; `true` when this changed
    /// anything.
    pub fn hold_calls(&self) -> bool {
        let held = self.circuit.hold();
        if held {
            self.observer.circuit(true);
        }
        held
    }

    /// Lets calls go out again because another replica's probe saw Fly answer; `true` when
    /// they were held.
    pub fn resume_calls(&self) -> bool {
        let resumed = self.circuit.close();
        if resumed {
            self.observer.circuit(false);
        }
        resumed
    }

    /// The machine leases this client holds, for a gauge read at scrape time.
    pub fn lease_book(&self) -> std::sync::Weak<LeaseBook> {
        Arc::downgrade(&self.held_leases)
    }

    /// The org slug apps are created in.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// The same client saying which replica it is in its `User-Agent`, so Fly's logs (and the
    /// simulator's) tell replicas apart.
    pub fn identified_as(mut self, replica: &str) -> Self {
        self.user_agent = format!("{} (replica {replica})", default_user_agent());
        self
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .header(header::AUTHORIZATION, &self.authorization)
            .header(header::USER_AGENT, &self.user_agent)
    }

    /// Sends one call: held while the circuit is open, then a rate-limit token from the budget,
    /// then (for a mutation) the fence; records metrics and the circuit, and turns non-2xx
    /// answers into [`FlyError`].
    async fn send(
        &self,
        endpoint: &'static str,
        limit: (LimitClass, &str),
        req: RequestBuilder,
    ) -> Result<Response, FlyError> {
        if let Err(retry_after) = self.circuit.admit() {
            return Err(FlyError::Unavailable { retry_after });
        }
        self.take_budget(endpoint, limit).await?;
        let (Some(fence), true) = (&self.fence, limit.0.is_mutation()) else {
            return self.dispatch(endpoint, req).await;
        };
        let until = fence.admit(endpoint, limit.1).await?;
        // The request must go out and end before the lease could pass to someone else.
        let deadline = until.checked_sub(FENCE_SAFETY).unwrap_or(until);
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(FlyError::Fenced(Fenced(format!(
                "too little of the lease is left to send {endpoint}"
            ))));
        }
        let req = req.timeout(left.min(REQUEST_TIMEOUT));
        within(deadline, self.dispatch(endpoint, req))
            .await
            .unwrap_or_else(|| {
                Err(FlyError::Fenced(Fenced(format!(
                    "{endpoint} was cut off: this replica was held up until its lease could have \
                     passed on"
                ))))
            })
    }

    /// Takes a token from the budget; a wait longer than [`crate::limits::MAX_WAIT`] comes back
    /// as [`FlyError::Throttled`] with the caller's turn.
    async fn take_budget(
        &self,
        endpoint: &'static str,
        (class, scope): (LimitClass, &str),
    ) -> Result<(), FlyError> {
        match self.budget.acquire(class, endpoint, scope).await {
            Ok(waited) => {
                self.observer.throttled(endpoint, waited);
                Ok(())
            }
            Err(retry_after) => {
                self.observer.throttled(endpoint, retry_after);
                let message = match class {
                    LimitClass::AppCreate | LimitClass::AppDelete => format!(
                        "waiting in line for {endpoint}: Fly allows about one per second per \
                         organization; this app's turn is in {} s",
                        retry_after.as_secs_f64().ceil()
                    ),
                    _ => format!("waiting for our share of Fly's rate limit for {endpoint}"),
                };
                Err(FlyError::Throttled {
                    message,
                    retry_after,
                })
            }
        }
    }

    /// Sends a request as it is and classifies the answer; feeds the circuit.
    async fn dispatch(
        &self,
        endpoint: &'static str,
        req: RequestBuilder,
    ) -> Result<Response, FlyError> {
        let started = Instant::now();
        let result = req.send().await;
        let elapsed = started.elapsed();
        let outcome = match result {
            Ok(resp) => {
                self.observer
                    .request(endpoint, resp.status().as_u16(), elapsed);
                if resp.status().is_success() {
                    Ok(resp)
                } else {
                    Err(classify(resp).await)
                }
            }
            Err(e) => {
                self.observer.request(endpoint, 0, elapsed);
                Err(FlyError::Transient {
                    status: None,
                    message: transport_message(&e),
                })
            }
        };
        let outage = outcome.as_ref().err().is_some_and(FlyError::is_outage);
        if self.circuit.record(outage) {
            self.observer.circuit(true);
        }
        outcome
    }

    /// One cheap read that bypasses the open circuit, to see whether Fly answers again; closes
    /// the circuit when it does. Run by one task while the circuit is open.
    pub async fn probe(&self) -> Result<(), FlyError> {
        let req = self
            .request(Method::GET, &format!("/v1/orgs/{}/machines", self.org))
            .query(&[("limit", "1")]);
        match self.dispatch("orgs.machines.list", req).await {
            Err(e) if e.is_outage() => Err(e),
            _ => {
                self.resume_calls();
                Ok(())
            }
        }
    }

    /// Reads a JSON answer, whatever its content type (exec may answer
    /// `application/octet-stream` with the same JSON body).
    async fn json<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        limit: (LimitClass, &str),
        req: RequestBuilder,
    ) -> Result<T, FlyError> {
        let resp = self.send(endpoint, limit, req).await?;
        let bytes = resp.bytes().await.map_err(|e| FlyError::Transient {
            status: None,
            message: transport_message(&e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| FlyError::Decode {
            message: format!("{endpoint}: {e}"),
        })
    }

    /// A GET. Not retried inside the attempt: a failure is the reconcile's to retry, so an
    /// outage costs one call per attempt, not three.
    async fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        scope: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, FlyError> {
        let req = self.request(Method::GET, path).query(query);
        self.json(endpoint, (LimitClass::Read, scope), req).await
    }

    async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        scope: &str,
        path: &str,
        body: &B,
    ) -> Result<T, FlyError> {
        self.json(
            endpoint,
            (LimitClass::Mutation, scope),
            self.request(Method::POST, path).json(body),
        )
        .await
    }

    /// `GET /v1/apps/{app}`: `None` when the name is free; `Forbidden` when another org owns it.
    pub async fn get_app(&self, app: &str) -> Result<Option<App>, FlyError> {
        optional(
            self.get_json("apps.get", app, &format!("/v1/apps/{app}"), &[])
                .await,
        )
    }

    /// `GET /v1/apps?org_slug=`: the organization's apps (for the import of the web app's
    /// fleet; the reconcile never lists apps).
    pub async fn list_apps(&self) -> Result<Vec<App>, FlyError> {
        let query = [("org_slug", self.org.clone())];
        let resp: ListAppsResponse = self
            .get_json("apps.list", &self.org, "/v1/apps", &query)
            .await?;
        Ok(resp.apps)
    }

    /// `POST /v1/apps`. Fly answers `201 {"id","created_at"}` (`CreateAppResponse`), not the
    /// app: the returned [`App`] is that id with what was asked for (name, org, network).
    pub async fn create_app(&self, name: &str, network: &str) -> Result<App, FlyError> {
        let body = CreateAppRequest {
            name: Some(name.to_owned()),
            org_slug: Some(self.org.clone()),
            network: Some(network.to_owned()),
            ..Default::default()
        };
        let req = self.request(Method::POST, "/v1/apps").json(&body);
        let created: CreateAppResponse = self
            .json("apps.create", (LimitClass::AppCreate, name), req)
            .await?;
        Ok(App {
            id: created.id,
            name: name.to_owned(),
            network: Some(network.to_owned()),
            organization: Some(Organization {
                name: self.org.clone(),
                slug: self.org.clone(),
            }),
            ..Default::default()
        })
    }

    /// `DELETE /v1/apps/{app}`; deletion completes asynchronously.
    pub async fn delete_app(&self, app: &str, force: bool) -> Result<(), FlyError> {
        let mut req = self.request(Method::DELETE, &format!("/v1/apps/{app}"));
        if force {
            req = req.query(&[("force", "true")]);
        }
        self.send("apps.delete", (LimitClass::AppDelete, app), req)
            .await
            .map(drop)
    }

    /// `GET /v1/apps/{app}/secrets`: names and digests, never values.
    pub async fn list_secrets(&self, app: &str) -> Result<Vec<AppSecret>, FlyError> {
        let resp: SecretsResponse = self
            .get_json("secrets.list", app, &format!("/v1/apps/{app}/secrets"), &[])
            .await?;
        Ok(resp.secrets)
    }

    /// `POST /v1/apps/{app}/secrets`: sets (`Some`) and unsets (`None`) names in one write;
    /// returns the new secrets version for `min_secrets_version`. Idempotent.
    pub async fn set_secrets(
        &self,
        app: &str,
        values: &std::collections::BTreeMap<String, Option<String>>,
    ) -> Result<u64, FlyError> {
        let body = SetSecretsRequest {
            values: values.clone(),
        };
        let resp: SecretsResponse = self
            .post_json(
                "secrets.set",
                app,
                &format!("/v1/apps/{app}/secrets"),
                &body,
            )
            .await?;
        resp.version.ok_or_else(|| FlyError::Decode {
            message: "secrets.set: no version in the answer".to_owned(),
        })
    }

    /// `GET /v1/apps/{app}/certificates/{hostname}`; `None` when there is none.
    pub async fn get_certificate(
        &self,
        app: &str,
        hostname: &str,
    ) -> Result<Option<CertificateDetail>, FlyError> {
        optional(
            self.get_json(
                "certificates.get",
                app,
                &format!("/v1/apps/{app}/certificates/{hostname}"),
                &[],
            )
            .await,
        )
    }

    /// `POST /v1/apps/{app}/certificates/acme`.
    pub async fn add_certificate(&self, app: &str, hostname: &str) -> Result<(), FlyError> {
        let req = self
            .request(Method::POST, &format!("/v1/apps/{app}/certificates/acme"))
            .json(&CreateAcmeCertificateRequest {
                hostname: hostname.to_owned(),
            });
        self.send("certificates.create", (LimitClass::Mutation, app), req)
            .await
            .map(drop)
    }

    /// `DELETE /v1/apps/{app}/certificates/{hostname}`.
    pub async fn delete_certificate(&self, app: &str, hostname: &str) -> Result<(), FlyError> {
        let req = self.request(
            Method::DELETE,
            &format!("/v1/apps/{app}/certificates/{hostname}"),
        );
        self.send("certificates.delete", (LimitClass::Mutation, app), req)
            .await
            .map(drop)
    }

    /// `GET /v1/apps/{app}/ip_assignments`.
    pub async fn list_ips(&self, app: &str) -> Result<Vec<IpAssignment>, FlyError> {
        let resp: ListIpAssignmentsResponse = self
            .get_json(
                "ips.list",
                app,
                &format!("/v1/apps/{app}/ip_assignments"),
                &[],
            )
            .await?;
        Ok(resp.ips)
    }

    /// `POST /v1/apps/{app}/ip_assignments`. Not idempotent: observe before retrying.
    pub async fn assign_ip(&self, app: &str, kind: &str) -> Result<(), FlyError> {
        let body = AssignIpRequest {
            type_: kind.to_owned(),
            ..Default::default()
        };
        let req = self
            .request(Method::POST, &format!("/v1/apps/{app}/ip_assignments"))
            .json(&body);
        self.send("ips.assign", (LimitClass::Mutation, app), req)
            .await
            .map(drop)
    }

    /// `DELETE /v1/apps/{app}/ip_assignments/{ip}`.
    pub async fn release_ip(&self, app: &str, ip: &str) -> Result<(), FlyError> {
        let req = self.request(
            Method::DELETE,
            &format!("/v1/apps/{app}/ip_assignments/{ip}"),
        );
        self.send("ips.release", (LimitClass::Mutation, app), req)
            .await
            .map(drop)
    }

    /// `GET /v1/apps/{app}/volumes` (includes volumes being destroyed).
    pub async fn list_volumes(&self, app: &str) -> Result<Vec<Volume>, FlyError> {
        self.get_json("volumes.list", app, &format!("/v1/apps/{app}/volumes"), &[])
            .await
    }

    /// `GET /v1/apps/{app}/volumes/{id}`; `None` when there is no such volume.
    pub async fn get_volume(&self, app: &str, id: &str) -> Result<Option<Volume>, FlyError> {
        optional(
            self.get_json(
                "volumes.get",
                id,
                &format!("/v1/apps/{app}/volumes/{id}"),
                &[],
            )
            .await,
        )
    }

    /// `POST /v1/apps/{app}/volumes`. Not idempotent: observe before retrying.
    pub async fn create_volume(
        &self,
        app: &str,
        body: &CreateVolumeRequest,
    ) -> Result<Volume, FlyError> {
        self.post_json(
            "volumes.create",
            app,
            &format!("/v1/apps/{app}/volumes"),
            body,
        )
        .await
    }

    /// `PUT /v1/apps/{app}/volumes/{id}/extend` (grow only).
    pub async fn extend_volume(
        &self,
        app: &str,
        id: &str,
        size_gb: u32,
    ) -> Result<ExtendVolumeResponse, FlyError> {
        let req = self
            .request(Method::PUT, &format!("/v1/apps/{app}/volumes/{id}/extend"))
            .json(&ExtendVolumeRequest { size_gb });
        self.json("volumes.extend", (LimitClass::Mutation, id), req)
            .await
    }

    /// `DELETE /v1/apps/{app}/volumes/{id}`.
    pub async fn delete_volume(&self, app: &str, id: &str) -> Result<(), FlyError> {
        let req = self.request(Method::DELETE, &format!("/v1/apps/{app}/volumes/{id}"));
        self.send("volumes.delete", (LimitClass::Mutation, id), req)
            .await
            .map(drop)
    }

    /// `GET /v1/apps/{app}/machines` filtered by metadata (AND).
    pub async fn list_machines(
        &self,
        app: &str,
        metadata: &[(&str, &str)],
    ) -> Result<Vec<Machine>, FlyError> {
        let query: Vec<(String, String)> = metadata
            .iter()
            .map(|(k, v)| (format!("metadata.{k}"), (*v).to_owned()))
            .collect();
        let query: Vec<(&str, String)> =
            query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        self.get_json(
            "machines.list",
            app,
            &format!("/v1/apps/{app}/machines"),
            &query,
        )
        .await
    }

    /// `GET /v1/apps/{app}/machines/{id}`; `None` once destroyed.
    pub async fn get_machine(&self, app: &str, id: &str) -> Result<Option<Machine>, FlyError> {
        optional(
            self.get_json(
                "machines.get",
                id,
                &format!("/v1/apps/{app}/machines/{id}"),
                &[],
            )
            .await,
        )
    }

    /// `POST /v1/apps/{app}/machines`. Not idempotent: observe by metadata before retrying.
    pub async fn create_machine(
        &self,
        app: &str,
        body: &CreateMachineRequest,
    ) -> Result<Machine, FlyError> {
        self.post_json(
            "machines.create",
            app,
            &format!("/v1/apps/{app}/machines"),
            body,
        )
        .await
    }

    /// `POST /v1/apps/{app}/machines/{id}`: full config replace, under `lease` when given.
    pub async fn update_machine(
        &self,
        app: &str,
        id: &str,
        body: &UpdateMachineRequest,
        lease: Option<&str>,
    ) -> Result<Machine, FlyError> {
        let req = self
            .request(Method::POST, &format!("/v1/apps/{app}/machines/{id}"))
            .json(body);
        self.json(
            "machines.update",
            (LimitClass::Mutation, id),
            with_lease(req, lease),
        )
        .await
    }

    /// `POST /v1/apps/{app}/machines/{id}/start`, under `lease` when given.
    pub async fn start_machine(
        &self,
        app: &str,
        id: &str,
        lease: Option<&str>,
    ) -> Result<(), FlyError> {
        let req = self.request(Method::POST, &format!("/v1/apps/{app}/machines/{id}/start"));
        self.send(
            "machines.start",
            (LimitClass::Mutation, id),
            with_lease(req, lease),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/apps/{app}/machines/{id}/stop`, under `lease` when given.
    pub async fn stop_machine(
        &self,
        app: &str,
        id: &str,
        lease: Option<&str>,
    ) -> Result<(), FlyError> {
        let req = self
            .request(Method::POST, &format!("/v1/apps/{app}/machines/{id}/stop"))
            .json(&StopMachineRequest::default());
        self.send(
            "machines.stop",
            (LimitClass::Mutation, id),
            with_lease(req, lease),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/apps/{app}/machines/{id}/restart`, under `lease` when given: the machine's
    /// command runs again (the gateway's boot step re-applies the owned config).
    pub async fn restart_machine(
        &self,
        app: &str,
        id: &str,
        lease: Option<&str>,
    ) -> Result<(), FlyError> {
        let req = self.request(
            Method::POST,
            &format!("/v1/apps/{app}/machines/{id}/restart"),
        );
        self.send(
            "machines.restart",
            (LimitClass::Mutation, id),
            with_lease(req, lease),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/apps/{app}/machines/{id}/exec`: runs `command` in the started machine and
    /// returns its exit code and output (buffered; keep both small).
    pub async fn exec_machine(
        &self,
        app: &str,
        id: &str,
        command: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecResponse, FlyError> {
        let body = ExecRequest {
            command,
            timeout: timeout.as_secs().max(1),
        };
        self.json(
            "machines.exec",
            (LimitClass::Mutation, id),
            self.request(Method::POST, &format!("/v1/apps/{app}/machines/{id}/exec"))
                .timeout(timeout + Duration::from_secs(10))
                .json(&body),
        )
        .await
    }

    /// `DELETE /v1/apps/{app}/machines/{id}` (`force` kills a running machine), under `lease`
    /// when given.
    pub async fn delete_machine(
        &self,
        app: &str,
        id: &str,
        force: bool,
        lease: Option<&str>,
    ) -> Result<(), FlyError> {
        let mut req = self.request(Method::DELETE, &format!("/v1/apps/{app}/machines/{id}"));
        if force {
            req = req.query(&[("force", "true")]);
        }
        self.send(
            "machines.delete",
            (LimitClass::Mutation, id),
            with_lease(req, lease),
        )
        .await?;
        // A destroyed machine holds no lease any more (nothing is released after a destroy).
        self.leases().remove(id);
        Ok(())
    }

    /// `POST /v1/apps/{app}/machines/{id}/lease`: takes the machine's lease for [`LEASE_TTL`]
    /// (or refreshes one this process still holds). Someone else's lease is
    /// [`FlyError::LeaseHeld`] with its expiry.
    pub async fn acquire_lease(
        &self,
        app: &str,
        id: &str,
        description: &str,
    ) -> Result<Lease, FlyError> {
        let held = self.held_lease(id);
        let ttl = LEASE_TTL.as_secs();
        let req = self
            .request(Method::POST, &format!("/v1/apps/{app}/machines/{id}/lease"))
            .json(&CreateLeaseRequest {
                ttl,
                description: description.to_owned(),
            });
        let started = Instant::now();
        let resp: LeaseAnswer = self
            .json(
                "machines.lease.acquire",
                (LimitClass::Mutation, id),
                with_lease(req, held.as_deref()),
            )
            .await?;
        let lease = resp.into_lease();
        self.leases().insert(
            id.to_owned(),
            HeldLease {
                nonce: lease.nonce.clone(),
                until: started + LEASE_TTL,
            },
        );
        Ok(lease)
    }

    /// `DELETE /v1/apps/{app}/machines/{id}/lease` with our nonce. A lease that is already gone
    /// (expired, or the machine destroyed) counts as released.
    pub async fn release_lease(&self, app: &str, id: &str, nonce: &str) -> Result<(), FlyError> {
        let req = self.request(
            Method::DELETE,
            &format!("/v1/apps/{app}/machines/{id}/lease"),
        );
        let result = self
            .send(
                "machines.lease.release",
                (LimitClass::Mutation, id),
                with_lease(req, Some(nonce)),
            )
            .await
            .map(drop);
        if matches!(result, Ok(()) | Err(FlyError::NotFound { .. })) {
            self.leases().remove(id);
            return Ok(());
        }
        result
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, HeldLease>> {
        self.held_leases.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nonce of a lease this process took on the machine and that has not expired yet.
    fn held_lease(&self, id: &str) -> Option<String> {
        let mut leases = self.leases();
        let now = Instant::now();
        leases.retain(|_, l| l.until > now);
        leases.get(id).map(|l| l.nonce.clone())
    }

    /// `GET /v1/apps/{app}/machines/{id}/wait`: blocks at Fly (at most 60 s, in whole seconds)
    /// until the machine reaches `state`; a timeout is `Transient { status: Some(408) }`. Fly
    /// needs the version (instance id) a wait for `stopped` is about: without `version` it is
    /// read from the machine first. Used by tools and tests; reconciles do not wait, they come
    /// back when the state is expected.
    pub async fn wait_machine(
        &self,
        app: &str,
        id: &str,
        state: &str,
        timeout: Duration,
        version: Option<&str>,
    ) -> Result<WaitResponse, FlyError> {
        let secs = timeout.as_secs().clamp(1, 60);
        let mut query = vec![("state", state.to_owned()), ("timeout", secs.to_string())];
        let version = match version {
            Some(v) => Some(v.to_owned()),
            None if state == "stopped" => self
                .get_machine(app, id)
                .await?
                .map(|m| m.instance_id)
                .filter(|v| !v.is_empty()),
            None => None,
        };
        if let Some(v) = version {
            query.push(("version", v));
        }
        let req = self
            .request(Method::GET, &format!("/v1/apps/{app}/machines/{id}/wait"))
            .query(&query)
            .timeout(Duration::from_secs(secs + 5));
        self.json("machines.wait", (LimitClass::Read, id), req)
            .await
    }

    /// `GET /v1/orgs/{org}/machines`: the fleet-wide listing, one page. `include_deleted` also
    /// lists destroyed machines, so a machine destroyed out of band is noticed.
    pub async fn list_org_machines(
        &self,
        updated_after: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
        include_deleted: bool,
    ) -> Result<OrgMachinesResponse, FlyError> {
        let mut query = vec![("limit", limit.to_string())];
        if include_deleted {
            query.push(("include_deleted", "true".to_owned()));
        }
        if let Some(u) = updated_after {
            query.push(("updated_after", u.to_owned()));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        self.get_json(
            "orgs.machines.list",
            &self.org,
            &format!("/v1/orgs/{}/machines", self.org),
            &query,
        )
        .await
    }
}

fn with_lease(req: RequestBuilder, lease: Option<&str>) -> RequestBuilder {
    match lease {
        Some(nonce) => req.header(LEASE_NONCE_HEADER, nonce),
        None => req,
    }
}

fn optional<T>(r: Result<T, FlyError>) -> Result<Option<T>, FlyError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(FlyError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn transport_message(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    let mut message = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}

/// Reads an error response: JSON `error`/`message` when present, text otherwise.
async fn classify(resp: Response) -> FlyError {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let text = resp.text().await.unwrap_or_default();
    let body: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
    let mut message = body
        .message
        .clone()
        .or(body.error.clone())
        .unwrap_or_else(|| text.trim().chars().take(300).collect());
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    if matches!(
        body.status.as_deref(),
        Some("insufficient_capacity" | "volume_placement_capacity")
    ) || is_capacity_message(&message)
    {
        return FlyError::Capacity { message };
    }
    if is_secrets_replication_lag(&message) {
        return FlyError::Transient {
            status: Some(status.as_u16()),
            message,
        };
    }
    if status == StatusCode::CONFLICT && message.contains("lease currently held") {
        return FlyError::LeaseHeld {
            expires_at: lease_expiry(&message),
            message,
        };
    }
    match status {
        StatusCode::NOT_FOUND => FlyError::NotFound { message },
        StatusCode::UNAUTHORIZED => FlyError::Unauthorized { message },
        StatusCode::FORBIDDEN => FlyError::Forbidden { message },
        StatusCode::CONFLICT => FlyError::Conflict { message },
        StatusCode::PRECONDITION_FAILED => FlyError::Precondition { message },
        StatusCode::TOO_MANY_REQUESTS => FlyError::RateLimited {
            message,
            retry_after,
        },
        StatusCode::REQUEST_TIMEOUT => FlyError::Transient {
            status: Some(408),
            message,
        },
        s if s.is_server_error() => FlyError::Transient {
            status: Some(s.as_u16()),
            message,
        },
        s => FlyError::Rejected {
            status: s.as_u16(),
            message,
            code: body.status,
        },
    }
}

/// Whether an error text is one of Fly's capacity answers, which do not always carry a
/// `status` code (an update that needs more than the host has is a bare 409).
fn is_capacity_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "insufficient capacity",
        "insufficient resources",
        "could not reserve resource",
        "deploys to this host are temporarily disabled",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// Whether Fly refused a machine because the app's secrets have not reached the asked
/// `min_secrets_version` yet (`412 min_secrets_version N is not yet available on this app`):
/// the write that made that version is replicating, so a retry soon succeeds.
fn is_secrets_replication_lag(message: &str) -> bool {
    message.contains("min_secrets_version") && message.contains("not yet available")
}

/// The expiry in Fly's lease-conflict text (`… lease currently held by X, expires at <RFC 3339>`).
fn lease_expiry(message: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let (_, at) = message.rsplit_once("expires at ")?;
    let at = at.trim().trim_end_matches(['.', ')']);
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::{
        authorization_header, is_capacity_message, is_secrets_replication_lag, lease_expiry,
    };

    #[test]
    fn lease_conflicts_carry_their_expiry() {
        let at = lease_expiry(
            "machine ID 3d8d9 lease currently held by alice@example.com, expires at 2026-05-01T10:00:30Z",
        )
        .expect("an expiry");
        assert_eq!(at.to_rfc3339(), "2026-05-01T10:00:30+00:00");
        assert_eq!(lease_expiry("lease currently held by alice"), None);
    }

    #[test]
    fn capacity_is_recognised_by_its_text() {
        assert!(is_capacity_message(
            "aborted: could not reserve resource for machine: insufficient CPUs available"
        ));
        assert!(is_capacity_message("Insufficient capacity on host"));
        assert!(!is_capacity_message(
            "failed_precondition: machine still active"
        ));
    }

    #[test]
    fn secrets_not_yet_replicated_is_recognised_by_its_text() {
        assert!(is_secrets_replication_lag(
            "min_secrets_version 3 is not yet available on this app"
        ));
        assert!(!is_secrets_replication_lag(
            "failed_precondition: machine still active"
        ));
    }

    #[test]
    fn authorization_schemes() {
        assert_eq!(authorization_header("FlyV1 fm2_x"), "FlyV1 fm2_x");
        assert_eq!(
            authorization_header("fm2_abc,fm1r_d"),
            "FlyV1 fm2_abc,fm1r_d"
        );
        assert_eq!(authorization_header("plain"), "Bearer plain");
        assert_eq!(authorization_header("Bearer x"), "Bearer x");
    }
}
