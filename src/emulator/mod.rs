//! The built-in Atlas emulator: a dev/test double of the Atlas Admin API HTTP surface.
//!
//! It serves, on one loopback listener, what the gateway calls upstream (see
//! `shared/atlas-openapi/EXCERPT.md`):
//! - `POST /api/oauth/token` (OAuth 2.0 client credentials, HTTP Basic client auth) and
//!   `POST /api/oauth/revoke` (RFC 7009), with Atlas's service-account limits (`limits.rs`),
//! - `POST` / `DELETE /api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens`,
//! - `POST` / `GET /api/atlas/v2/orgs/{orgId}/apiKeys` (create; list, paginated),
//! - `GET` / `DELETE /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}`,
//! - `POST` / `GET /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}/accessList`,
//! - the eight organization service-account operations under
//!   `/api/atlas/v2/orgs/{orgId}/serviceAccounts` (media type `2024-08-05`, `service_accounts.rs`),
//!
//! authenticated by Bearer token or HTTP Digest (RFC 7616), with the versioned media type,
//! `ApiError` bodies and the headers the real service sends. A small control API under
//! `/__emulator/` (not part of Atlas) reads counters, injects faults and resets state.
//!
//! Choices where the spec is silent (documented here so tests can rely on them):
//! - A missing or wrong `Accept` answers `406` with errorCode `INVALID_VERSION_DATE`
//!   ("Invalid accept header or version date.", what the real service says); a POST whose
//!   `Content-Type` is not the versioned type answers `415` errorCode `UNSUPPORTED_MEDIA_TYPE`.
//! - Check order on Atlas routes: faults, request body size (413 above 1 MiB), auth (401),
//!   media type (406/415), orgId syntax (400), org existence (404), permission (403), body
//!   schema (400), then the operation.
//! - Read-only orgs answer 403 `USER_UNAUTHORIZED` (not 401), so a client never mistakes a
//!   permission problem for an expired token.
//! - Every `ApiError` response also carries `X-Error-Code: <errorCode>`, as the real 404 does.
//! - Requests to unknown paths answer 404 `RESOURCE_NOT_FOUND` and are counted under
//!   `"METHOD *"`; control API requests are not counted.
//!
//! This module must never be needed by the gateway's own code path: the gateway talks to it
//! only over HTTP, exactly as it talks to Atlas.

mod api_keys;
mod auth;
mod bodies;
mod cli;
mod control;
mod counters;
mod digest;
mod faults;
mod limits;
mod response;
mod routes;
mod service_accounts;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use cli::{run, EmulatorArgs};
pub use counters::{Counters, RecordedRequest};
pub use faults::{Fault, FaultAction, Route};
pub use limits::Limits;

/// Organization that exists in the default configuration; the demo credentials own it.
pub const DEMO_ORG_ID: &str = "5f1a0c2b3d4e5f6a7b8c9d0e";
/// Service-account client id accepted by the default token endpoint.
pub const DEMO_CLIENT_ID: &str = "mdb_sa_id_demo0000000000000000";
/// Service-account client secret accepted by the default token endpoint (a demo value).
pub const DEMO_CLIENT_SECRET: &str = "mdb_sa_sk_demo-not-a-real-secret";
/// Public API key accepted by the default Digest check.
pub const DEMO_PUBLIC_KEY: &str = "demopubk";
/// Private API key accepted by the default Digest check (a demo value).
pub const DEMO_PRIVATE_KEY: &str = "00000000-demo-0000-0000-000000000000";

/// Hash used in the Digest challenge and expected in the client's response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DigestAlgorithm {
    /// `algorithm=MD5` (what Atlas sends).
    #[default]
    #[value(name = "md5")]
    Md5,
    /// `algorithm=SHA-256`.
    #[value(name = "sha-256")]
    Sha256,
}

/// What the emulator accepts and which organizations exist.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Orgs that exist and where the credentials are Organization Owner.
    pub org_ids: Vec<String>,
    /// Orgs that exist but where the credentials lack Owner: 403 `USER_UNAUTHORIZED`.
    pub read_only_org_ids: Vec<String>,
    /// Service-account client id accepted by the token endpoint.
    pub client_id: String,
    /// Service-account client secret accepted by the token endpoint.
    pub client_secret: String,
    /// API public key (Digest username).
    pub public_key: String,
    /// API private key (Digest password).
    pub private_key: String,
    /// `expires_in` of issued tokens (and their real lifetime unless a fault says otherwise).
    pub token_lifetime: Duration,
    /// Digest hash algorithm.
    pub digest_algorithm: DigestAlgorithm,
    /// After this a nonce is stale (401 with `stale=true`).
    pub nonce_lifetime: Duration,
    /// Service-account limits (token requests per minute, active tokens); off by default.
    pub limits: Limits,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            org_ids: vec![DEMO_ORG_ID.to_string()],
            read_only_org_ids: Vec::new(),
            client_id: DEMO_CLIENT_ID.to_string(),
            client_secret: DEMO_CLIENT_SECRET.to_string(),
            public_key: DEMO_PUBLIC_KEY.to_string(),
            private_key: DEMO_PRIVATE_KEY.to_string(),
            token_lifetime: Duration::from_secs(3600),
            digest_algorithm: DigestAlgorithm::Md5,
            nonce_lifetime: Duration::from_secs(300),
            limits: Limits::default(),
        }
    }
}

/// Handle to a running emulator. Dropping it stops the server task.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<state::Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds `addr` (e.g. `127.0.0.1:0`) and serves in a background tokio task.
    pub async fn start(config: EmulatorConfig, addr: SocketAddr) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(state::Shared::new(config, format!("http://{addr}")));
        let app = routes::router(shared.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(err) = served {
                tracing::warn!(error = %err, "atlas emulator stopped with an error");
            }
        });
        Ok(Emulator {
            addr,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, to use as the Atlas base URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The OAuth token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}/api/oauth/token", self.shared.base_url)
    }

    /// A snapshot of what the emulator has received so far.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters.clone()
    }

    /// The most recent Atlas API requests received, oldest first (at most 100).
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.shared.lock().recorded.iter().cloned().collect()
    }

    /// What `GET /__emulator/state` shows: links, API keys (with their access lists),
    /// active tokens.
    pub fn state(&self) -> serde_json::Value {
        control::snapshot(&self.shared)
    }

    /// Adds a fault rule (checked after the ones already there).
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Replaces the service-account limits.
    pub fn set_limits(&self, limits: Limits) {
        self.shared.lock().limits = limits;
    }

    /// Tokens issued, unexpired and unrevoked.
    pub fn active_tokens(&self) -> usize {
        self.shared.lock().active_tokens()
    }

    /// Every access token issued so far and still known (tests look for them in places
    /// they must not be, such as a shared store).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().tokens.keys().cloned().collect()
    }

    /// The secret ids of service account `client_id`, oldest first.
    pub fn service_account_secret_ids(&self, client_id: &str) -> Vec<String> {
        service_accounts::secret_ids(&self.shared, client_id)
    }

    /// Makes a service-account secret expired now; false when there is no such secret.
    pub fn expire_service_account_secret(&self, client_id: &str, secret_id: &str) -> bool {
        service_accounts::expire_secret(&self.shared, client_id, secret_id)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Invalidates every issued access token: their next use answers 401.
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), then stops the task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
