//! `atlas-grpc-gateway dev`: the built-in Atlas emulator on an ephemeral loopback port
//! with demo credentials, and the real gateway (the same `serve` code path) pointed at
//! it, plus ready-to-paste grpcurl commands. No Atlas account, no internet.
use std::{collections::HashMap, net::SocketAddr, process::ExitCode};

use crate::{
    config::{Config, MapEnv, ServeArgs},
    emulator::{
        Emulator, EmulatorConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_ORG_ID,
        DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
    },
    server,
};

/// Arguments of `dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// gRPC listen address of the gateway.
    #[arg(long, default_value = crate::config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Prometheus /metrics address, or "off".
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_listen: String,
}

/// Profiles of the dev setup: the default service account, an API key (Digest), and a
/// restricted profile that shows policy errors.
const DEV_PROFILES: &str = r#"
[profiles.apikey]
public_key_env = "DEV_PUBLIC_KEY"
private_key_env = "DEV_PRIVATE_KEY"

[profiles.restricted]
client_id_env = "DEV_CLIENT_ID"
client_secret_env = "DEV_CLIENT_SECRET"
allowed_roles = ["ORG_MEMBER", "ORG_READ_ONLY"]
"#;

/// The gateway configuration `dev` uses for an emulator at `base_url`.
pub fn dev_config(base_url: &str, listen: SocketAddr, metrics: &str) -> Config {
    let env = MapEnv(HashMap::from(
        [
            ("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID),
            ("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET),
            ("DEV_CLIENT_ID", DEMO_CLIENT_ID),
            ("DEV_CLIENT_SECRET", DEMO_CLIENT_SECRET),
            ("DEV_PUBLIC_KEY", DEMO_PUBLIC_KEY),
            ("DEV_PRIVATE_KEY", DEMO_PRIVATE_KEY),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    ));
    let args = ServeArgs {
        listen: Some(listen),
        base_url: Some(base_url.to_string()),
        metrics_listen: Some(metrics.to_string()),
        ..ServeArgs::default()
    };
    Config::from_parts(&args, Some(DEV_PROFILES), "dev profiles", &env)
        .expect("the dev configuration is valid")
}

/// Runs `dev` until SIGTERM/SIGINT.
pub async fn run(args: DevArgs) -> ExitCode {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let emulator = match Emulator::start(EmulatorConfig::default(), loopback).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("atlas-grpc-gateway: cannot start the emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = dev_config(&emulator.base_url(), args.listen, &args.metrics_listen);
    println!("{}", banner(&emulator.base_url(), args.listen));
    let code = server::run_gateway(config).await;
    emulator.shutdown().await;
    code
}

fn banner(emulator: &str, listen: SocketAddr) -> String {
    let svc = "atlas.gateway.v1.AtlasGateway";
    let g = format!("grpcurl -plaintext {listen}");
    format!(
        "atlas-grpc-gateway dev: gateway on {listen}, Atlas emulator on {emulator} (demo org {DEMO_ORG_ID})
Profiles: default (service account), apikey (HTTP Digest), restricted (may only grant ORG_MEMBER/ORG_READ_ONLY)
Try:
  {g} list
  {g} describe {svc}
  {g} -d '{{\"org_id\":\"{DEMO_ORG_ID}\",\"access_list_ips\":[\"203.0.113.7\",\"10.0.0.0/8\"]}}' {svc}/CreateLinkToken
  {g} -d '{{\"org_id\":\"{DEMO_ORG_ID}\"}}' {svc}/DeleteLinkToken
  {g} -d '{{\"org_id\":\"{DEMO_ORG_ID}\",\"desc\":\"ci key\",\"roles\":[\"ORG_MEMBER\"]}}' {svc}/CreateApiKey
  {g} -H 'x-atlas-profile: apikey' -d '{{\"org_id\":\"{DEMO_ORG_ID}\",\"desc\":\"digest key\",\"roles\":[\"ORG_READ_ONLY\"]}}' {svc}/CreateApiKey
  {g} -d '{{\"org_id\":\"not-an-org\",\"access_list_ips\":[\"10.0.0.1\",\"bad\"]}}' {svc}/CreateLinkToken   # INVALID_ARGUMENT with BadRequest
  {g} -H 'x-atlas-profile: restricted' -d '{{\"org_id\":\"{DEMO_ORG_ID}\",\"desc\":\"x\",\"roles\":[\"ORG_OWNER\"]}}' {svc}/CreateApiKey   # PERMISSION_DENIED POLICY_DENIED
  {g} grpc.health.v1.Health/Check
Metrics: curl -s http://127.0.0.1:9464/metrics | grep atlas_gateway ; emulator counters: curl -s {emulator}/__emulator/counters
Ctrl-C to stop."
    )
}
