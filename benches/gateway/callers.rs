//! The callers a cell drives: **direct** (reqwest to the emulator's REST API, as a
//! caller without the gateway would) and a tonic client of `AtlasGateway` (the gateway, or
//! the floor, which serves the same service).
use std::{net::SocketAddr, sync::Mutex};

use atlas_grpc_gateway::{
    emulator::{
        DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_ORG_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
    },
    pb::{
        atlas_gateway_client::AtlasGatewayClient, CreateApiKeyRequest, CreateLinkTokenRequest,
        DeleteLinkTokenRequest, OrgRole,
    },
};
use serde_json::{json, Value};
use tonic::transport::{Channel, Endpoint};

use crate::settings::Rpc;

pub const VERSIONED: &str = "application/vnd.atlas.2023-01-01+json";
const IPS: [&str; 2] = ["203.0.113.7", "10.0.0.0/8"];

/// How the direct caller authenticates.
pub enum DirectAuth {
    Bearer(String),
    Digest(Mutex<digest_auth::WwwAuthenticateHeader>),
}

pub struct Direct {
    http: reqwest::Client,
    base: String,
    auth: DirectAuth,
}

impl Direct {
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .expect("reqwest client")
    }

    /// Service account: one token fetch (Basic auth + client_credentials), then Bearer.
    pub async fn service_account(base: &str) -> Result<Direct, String> {
        let http = Direct::http();
        let token = fetch_token(&http, base).await?;
        Ok(Direct {
            http,
            base: base.to_string(),
            auth: DirectAuth::Bearer(format!("Bearer {token}")),
        })
    }

    /// API key: one unauthenticated request to get the Digest challenge, then every
    /// request answers it with the same nonce and an increasing nonce count.
    pub async fn digest(base: &str) -> Result<Direct, String> {
        let http = Direct::http();
        let resp = http
            .post(format!("{base}{}", path(Rpc::CreateApiKey)))
            .header("accept", VERSIONED)
            .header("content-type", VERSIONED)
            .body(body(Rpc::CreateApiKey).unwrap_or_default())
            .send()
            .await
            .map_err(|e| format!("digest challenge: {e}"))?;
        let www = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .ok_or("no WWW-Authenticate challenge")?;
        let challenge = digest_auth::parse(www).map_err(|e| format!("challenge: {e}"))?;
        Ok(Direct {
            http,
            base: base.to_string(),
            auth: DirectAuth::Digest(Mutex::new(challenge)),
        })
    }

    async fn call(&self, rpc: Rpc) -> Result<(), String> {
        match self.attempt(rpc).await {
            // A Digest client answers a fresh challenge (here: the emulator refused an nc
            // that arrived more than 64 behind the highest one seen) and redoes the call.
            Err(Retry::Challenge(www)) => {
                if let DirectAuth::Digest(c) = &self.auth {
                    let parsed = digest_auth::parse(&www).map_err(|e| e.to_string())?;
                    *c.lock().expect("not poisoned") = parsed;
                }
                self.attempt(rpc).await.map_err(Retry::into_message)
            }
            other => other.map_err(Retry::into_message),
        }
    }

    async fn attempt(&self, rpc: Rpc) -> Result<(), Retry> {
        let path = path(rpc);
        let method = match rpc {
            Rpc::DeleteLinkToken => reqwest::Method::DELETE,
            _ => reqwest::Method::POST,
        };
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("accept", VERSIONED);
        if let Some(b) = body(rpc) {
            req = req.header("content-type", VERSIONED).body(b);
        }
        let authorization = match &self.auth {
            DirectAuth::Bearer(h) => h.clone(),
            DirectAuth::Digest(challenge) => {
                let context = digest_auth::AuthContext::new_with_method(
                    DEMO_PUBLIC_KEY,
                    DEMO_PRIVATE_KEY,
                    path,
                    None::<&[u8]>,
                    digest_auth::HttpMethod(method.as_str().to_string().into()),
                );
                let mut c = challenge.lock().expect("not poisoned");
                c.respond(&context)
                    .map_err(|e| format!("digest: {e}"))?
                    .to_header_string()
            }
        };
        let resp = req
            .header("authorization", authorization)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        if status == 401 && matches!(self.auth, DirectAuth::Digest(_)) {
            if let Some(www) = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
            {
                return Err(Retry::Challenge(www.to_string()));
            }
        }
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        // Parse the answer like a real caller would.
        let parsed: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let expected = match rpc {
            Rpc::CreateLinkToken => 201,
            Rpc::CreateApiKey => 200,
            Rpc::DeleteLinkToken => 404,
        };
        if status == expected {
            Ok(())
        } else {
            Err(format!("HTTP {status}: {parsed}").into())
        }
    }
}

/// One OAuth token from the emulator (Basic auth + `grant_type=client_credentials`).
pub async fn fetch_token(http: &reqwest::Client, base: &str) -> Result<String, String> {
    let resp = http
        .post(format!("{base}/api/oauth/token"))
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body("grant_type=client_credentials")
        .send()
        .await
        .map_err(|e| format!("token fetch: {e}"))?;
    let bytes = resp.bytes().await.map_err(|e| format!("token body: {e}"))?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| format!("token body: {e}"))?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no access_token in {body}"))
}

/// Why a direct attempt failed: a Digest challenge worth one more try, or an error.
enum Retry {
    Challenge(String),
    Failed(String),
}

impl From<String> for Retry {
    fn from(e: String) -> Self {
        Retry::Failed(e)
    }
}

impl Retry {
    fn into_message(self) -> String {
        match self {
            Retry::Challenge(_) => "HTTP 401 with a new Digest challenge, twice".into(),
            Retry::Failed(e) => e,
        }
    }
}

pub fn path(rpc: Rpc) -> &'static str {
    match rpc {
        Rpc::CreateLinkToken | Rpc::DeleteLinkToken => {
            "/api/atlas/v2/orgs/5f1a0c2b3d4e5f6a7b8c9d0e/liveMigrations/linkTokens"
        }
        Rpc::CreateApiKey => "/api/atlas/v2/orgs/5f1a0c2b3d4e5f6a7b8c9d0e/apiKeys",
    }
}

/// The JSON body a direct caller sends (serialized per call, as a caller would).
pub fn body(rpc: Rpc) -> Option<Vec<u8>> {
    let v = match rpc {
        Rpc::CreateLinkToken => json!({ "accessListIps": IPS }),
        Rpc::CreateApiKey => json!({ "desc": "bench key", "roles": ["ORG_MEMBER"] }),
        Rpc::DeleteLinkToken => return None,
    };
    Some(serde_json::to_vec(&v).expect("serializable"))
}

pub struct Gateway {
    clients: Vec<AtlasGatewayClient<Channel>>,
    profile: Option<&'static str>,
}

impl Gateway {
    pub async fn connect(addr: SocketAddr, channels: usize, profile: Option<&'static str>) -> Self {
        Gateway::try_connect(addr, channels, profile)
            .await
            .expect("connect to the gateway")
    }

    /// `channels` HTTP/2 connections to `addr` (a gateway or the floor).
    pub async fn try_connect(
        addr: SocketAddr,
        channels: usize,
        profile: Option<&'static str>,
    ) -> Option<Self> {
        let mut clients = Vec::new();
        for _ in 0..channels {
            let channel = Endpoint::from_shared(format!("http://{addr}"))
                .expect("valid uri")
                .tcp_nodelay(true)
                .connect()
                .await
                .ok()?;
            clients.push(AtlasGatewayClient::new(channel));
        }
        Some(Gateway { clients, profile })
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(p) = self.profile {
            req.metadata_mut()
                .insert("x-atlas-profile", p.parse().expect("ascii"));
        }
        req
    }

    pub async fn call(&self, worker: usize, rpc: Rpc) -> Result<(), String> {
        let mut c = self.clients[worker % self.clients.len()].clone();
        let org_id = DEMO_ORG_ID.to_string();
        let result = match rpc {
            Rpc::CreateLinkToken => c
                .create_link_token(self.request(CreateLinkTokenRequest {
                    org_id,
                    access_list_ips: IPS.iter().map(|s| s.to_string()).collect(),
                    request_id: String::new(),
                }))
                .await
                .map(drop),
            Rpc::CreateApiKey => c
                .create_api_key(self.request(CreateApiKeyRequest {
                    org_id,
                    desc: "bench key".into(),
                    roles: vec![OrgRole::OrgMember as i32],
                    ..Default::default()
                }))
                .await
                .map(drop),
            Rpc::DeleteLinkToken => {
                return match c
                    .delete_link_token(self.request(DeleteLinkTokenRequest { org_id }))
                    .await
                {
                    Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
                    Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
                    Ok(_) => Err("expected NOT_FOUND, got OK".into()),
                };
            }
        };
        result.map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }
}

pub enum Caller {
    Direct(Direct),
    Gateway(Gateway),
}

impl Caller {
    pub async fn call(&self, worker: usize, rpc: Rpc) -> Result<(), String> {
        match self {
            Caller::Direct(d) => d.call(rpc).await,
            Caller::Gateway(g) => g.call(worker, rpc).await,
        }
    }
}
