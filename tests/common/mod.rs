//! Test harness: a real gateway (`server::serve`) on an ephemeral loopback port, in
//! front of the in-process Atlas emulator, and a real tonic client.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod process;
pub mod redis_server;
pub mod sidecar;

use std::{net::SocketAddr, time::Duration};

use atlas_grpc_gateway::{
    config::Config,
    dev::dev_config,
    emulator::{Emulator, EmulatorConfig},
    pb::{
        atlas_gateway_client::AtlasGatewayClient, CreateApiKeyRequest, CreateLinkTokenRequest,
        DeleteLinkTokenRequest, OrgRole,
    },
    server,
    store::StoreConfig,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{transport::Channel, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[allow(unused_imports)]
pub use atlas_grpc_gateway::emulator::{Fault, FaultAction, Route, DEMO_ORG_ID};

pub const API_KEYS: &str = "POST /api/atlas/v2/orgs/{orgId}/apiKeys";
pub const LINK_TOKENS_POST: &str = "POST /api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens";
pub const LINK_TOKENS_DELETE: &str = "DELETE /api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens";

/// A running gateway + emulator pair.
pub struct Gateway {
    pub emulator: Emulator,
    pub addr: SocketAddr,
    pub client: AtlasGatewayClient<Channel>,
    replica: Replica,
}

impl Gateway {
    pub async fn start() -> Gateway {
        Self::start_with(EmulatorConfig::default(), |_| {}).await
    }

    pub async fn start_with(emu: EmulatorConfig, tweak: impl FnOnce(&mut Config)) -> Gateway {
        let emulator = Emulator::start(emu, loopback()).await.expect("emulator");
        let replica = Replica::start(&emulator, tweak).await;
        Gateway {
            emulator,
            addr: replica.addr,
            client: replica.client(),
            replica,
        }
    }

    pub fn client(&self) -> AtlasGatewayClient<Channel> {
        self.client.clone()
    }

    pub async fn stop(self) {
        self.replica.stop().await;
    }
}

/// A gateway in front of an emulator it does not own: one replica of a fleet.
pub struct Replica {
    pub addr: SocketAddr,
    pub client: AtlasGatewayClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Replica {
    pub async fn start(emulator: &Emulator, tweak: impl FnOnce(&mut Config)) -> Replica {
        let listener = TcpListener::bind(loopback()).await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let mut config = dev_config(&emulator.base_url(), addr, "off");
        config.shutdown_grace = Duration::from_secs(1);
        // The tests count what Atlas receives; readiness is tested through the binary.
        config.check_credentials_at_start = false;
        tweak(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server::serve(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        let client = AtlasGatewayClient::new(channel(addr).await);
        Replica {
            addr,
            client,
            stop: Some(stop),
            task,
        }
    }

    /// A replica of the fleet that shares state through the store at `url`.
    pub async fn with_store(emulator: &Emulator, url: &str) -> Replica {
        let store = Self::store_config(url);
        Self::start(emulator, |c| c.shared_store = store).await
    }

    /// The store at `url` with the default prefix.
    pub fn store_config(url: &str) -> Option<StoreConfig> {
        Some(StoreConfig {
            url: atlas_grpc_gateway::secret::Secret::new(url),
            prefix: "atlas-gw".into(),
        })
    }

    pub fn client(&self) -> AtlasGatewayClient<Channel> {
        self.client.clone()
    }

    /// Graceful stop (drain, then revocation of minted tokens without a store).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task
            .await
            .expect("the gateway failed during its graceful stop");
    }

    /// Stops at once, like a killed process: nothing after this point runs.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Runs futures concurrently (each on its own task) and collects their outputs in order.
pub async fn join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A lazily connecting channel to the gateway.
pub async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

pub fn link_req(org: &str) -> CreateLinkTokenRequest {
    CreateLinkTokenRequest {
        org_id: org.into(),
        access_list_ips: vec!["203.0.113.7".into(), "10.0.0.0/8".into()],
        request_id: String::new(),
    }
}

pub fn key_req(org: &str) -> CreateApiKeyRequest {
    CreateApiKeyRequest {
        org_id: org.into(),
        desc: "ci key".into(),
        roles: vec![OrgRole::OrgMember as i32],
        ..Default::default()
    }
}

/// Creates an ORG_MEMBER key in `org`; returns it (with its private key).
pub async fn create_key(gw: &Gateway, org: &str) -> atlas_grpc_gateway::pb::ApiKey {
    gw.client()
        .create_api_key(key_req(org))
        .await
        .expect("CreateApiKey")
        .into_inner()
        .api_key
        .expect("an api_key")
}

pub fn delete_req(org: &str) -> DeleteLinkTokenRequest {
    DeleteLinkTokenRequest { org_id: org.into() }
}

/// A request with metadata (`key`, `value`) pairs and an optional deadline.
pub fn with_meta<T>(
    msg: T,
    meta: &[(&'static str, &str)],
    timeout: Option<Duration>,
) -> Request<T> {
    let mut r = Request::new(msg);
    for (k, v) in meta {
        r.metadata_mut().insert(*k, v.parse().unwrap());
    }
    if let Some(t) = timeout {
        r.set_timeout(t);
    }
    r
}

/// Decoded details, failing the test when they are malformed.
pub fn details(s: &Status) -> ErrorDetails {
    s.check_error_details()
        .expect("well-formed google.rpc details")
}

/// The fields of a status's BadRequest violations, in order.
pub fn violated_fields(s: &Status) -> Vec<String> {
    details(s)
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// ErrorInfo reason of a status.
pub fn reason(s: &Status) -> String {
    details(s)
        .error_info()
        .map(|e| e.reason.clone())
        .unwrap_or_default()
}

/// ErrorInfo metadata value.
pub fn meta(s: &Status, key: &str) -> Option<String> {
    details(s)
        .error_info()
        .and_then(|e| e.metadata.get(key).cloned())
}

/// Waits until `cond` holds: an event, polled every 10 ms. The bound only turns a hang
/// into a failure; nothing depends on how fast the event comes.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !cond().await {
        assert!(
            std::time::Instant::now() < give_up,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
