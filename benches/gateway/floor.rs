//! The floor: the least a tonic → reqwest sidecar can do for `CreateLinkToken`, built
//! from the same crates and versions as the gateway. It decodes the request, POSTs the
//! JSON body with a bearer token (fetched once at start-up) over one pooled client,
//! parses `linkToken` and answers. No validation, logging, metrics, retries, policy,
//! idempotency, deadlines or error mapping: what any gateway pays before doing its job.
//!
//! It runs as a child process (this bench binary re-executed with [`LISTEN_ENV`] set), on
//! the same runtime as `serve` (tokio's multi-thread default), so that its CPU time and
//! RSS are read the same way as the gateway's.
use std::net::SocketAddr;

use atlas_grpc_gateway::pb::{
    self as pb,
    atlas_gateway_server::{AtlasGateway, AtlasGatewayServer},
    CreateApiKeyRequest, CreateApiKeyResponse, CreateLinkTokenRequest, CreateLinkTokenResponse,
    DeleteApiKeyRequest, DeleteApiKeyResponse, DeleteLinkTokenRequest, DeleteLinkTokenResponse,
    ListApiKeysRequest, ListApiKeysResponse,
};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use tonic::{
    transport::{server::TcpIncoming, Server},
    Request, Response, Status,
};

use crate::callers::{fetch_token, VERSIONED};

/// Set to the address to listen on: this process is the floor.
pub const LISTEN_ENV: &str = "BENCH_FLOOR_LISTEN";
/// The Atlas (emulator) base URL.
pub const UPSTREAM_ENV: &str = "BENCH_FLOOR_UPSTREAM";

struct Floor {
    http: reqwest::Client,
    base: String,
    bearer: HeaderValue,
    media_type: HeaderValue,
}

#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(rename = "accessListIps")]
    access_list_ips: &'a [String],
}

#[derive(serde::Deserialize)]
struct TargetOrg {
    #[serde(rename = "linkToken")]
    link_token: String,
}

fn only_create_link_token<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented(
        "the floor serves CreateLinkToken only",
    ))
}

#[tonic::async_trait]
impl AtlasGateway for Floor {
    async fn create_link_token(
        &self,
        request: Request<CreateLinkTokenRequest>,
    ) -> Result<Response<CreateLinkTokenResponse>, Status> {
        let req = request.into_inner();
        let body = serde_json::to_vec(&Body {
            access_list_ips: &req.access_list_ips,
        })
        .map_err(|e| Status::internal(e.to_string()))?;
        let url = format!(
            "{}/api/atlas/v2/orgs/{}/liveMigrations/linkTokens",
            self.base, req.org_id
        );
        let resp = self
            .http
            .post(url)
            .header(AUTHORIZATION, self.bearer.clone())
            .header(ACCEPT, self.media_type.clone())
            .header(CONTENT_TYPE, self.media_type.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let parsed: TargetOrg =
            serde_json::from_slice(&bytes).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(CreateLinkTokenResponse {
            link_token: parsed.link_token,
        }))
    }

    async fn delete_link_token(
        &self,
        _: Request<DeleteLinkTokenRequest>,
    ) -> Result<Response<DeleteLinkTokenResponse>, Status> {
        only_create_link_token()
    }

    async fn create_api_key(
        &self,
        _: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        only_create_link_token()
    }

    async fn delete_api_key(
        &self,
        _: Request<DeleteApiKeyRequest>,
    ) -> Result<Response<DeleteApiKeyResponse>, Status> {
        only_create_link_token()
    }

    async fn list_api_keys(
        &self,
        _: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        only_create_link_token()
    }

    async fn create_service_account(
        &self,
        _: Request<pb::CreateServiceAccountRequest>,
    ) -> Result<Response<pb::CreateServiceAccountResponse>, Status> {
        only_create_link_token()
    }

    async fn delete_service_account(
        &self,
        _: Request<pb::DeleteServiceAccountRequest>,
    ) -> Result<Response<pb::DeleteServiceAccountResponse>, Status> {
        only_create_link_token()
    }

    async fn list_service_accounts(
        &self,
        _: Request<pb::ListServiceAccountsRequest>,
    ) -> Result<Response<pb::ListServiceAccountsResponse>, Status> {
        only_create_link_token()
    }

    async fn rotate_service_account_secret(
        &self,
        _: Request<pb::RotateServiceAccountSecretRequest>,
    ) -> Result<Response<pb::RotateServiceAccountSecretResponse>, Status> {
        only_create_link_token()
    }
}

/// Serves the floor until SIGTERM/SIGINT (the process's whole life in floor mode).
pub fn main(listen: &str) {
    let addr: SocketAddr = listen.parse().expect("BENCH_FLOOR_LISTEN is an address");
    let base = std::env::var(UPSTREAM_ENV).expect("BENCH_FLOOR_UPSTREAM is set");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .expect("reqwest client");
        let token = fetch_token(&http, &base).await.expect("a token");
        let floor = Floor {
            http,
            base,
            bearer: HeaderValue::from_str(&format!("Bearer {token}")).expect("ascii token"),
            media_type: HeaderValue::from_static(VERSIONED),
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the floor's address");
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut signals = atlas_grpc_gateway::server::Signals::new().expect("signal handlers");
        // One service, so no router: the gateway's path router (src/server/routes.rs) is
        // part of what the comparison measures.
        Server::builder()
            .serve_with_incoming_shutdown(AtlasGatewayServer::new(floor), incoming, async move {
                signals.next().await
            })
            .await
            .expect("the floor serves");
    });
}
