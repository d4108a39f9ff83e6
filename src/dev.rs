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

/// Profiles of the dev setup: the default service account, an API key (Digest), and two
/// profiles that show policy errors (roles; RPCs).
const DEV_PROFILES: &str = r#"
[profiles.apikey]
public_key_env = "DEV_PUBLIC_KEY"
private_key_env = "DEV_PRIVATE_KEY"

[profiles.restricted]
client_id_env = "DEV_CLIENT_ID"
client_secret_env = "DEV_CLIENT_SECRET"
allowed_roles = ["ORG_MEMBER", "ORG_READ_ONLY"]

[profiles.readonly]
client_id_env = "DEV_CLIENT_ID"
client_secret_env = "DEV_CLIENT_SECRET"
allowed_rpcs = ["ListApiKeys"]
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
        // Only the emulator's demo credentials are behind it.
        allow_unauthenticated_network: Some(true),
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
    let base_url = emulator.base_url();
    let code = server::run_gateway_announced(config, |bound| {
        crate::cli::print_line(&banner(&base_url, bound.grpc, bound.metrics));
    })
    .await;
    emulator.shutdown().await;
    code
}

/// A well-formed client id no account has: the banner's rotate/delete lines show the shape.
const SAMPLE_CLIENT_ID: &str = "mdb_sa_id_000000000000000000000000";

/// The `grpcurl` examples of the banner: (flags, method or verb, what the line shows).
/// `tests/interop/commands.py` runs each printed line verbatim; a trailing `# CODE` is the
/// gRPC code that line must end with.
fn examples() -> Vec<(String, String, &'static str)> {
    let svc = "atlas.gateway.v1.AtlasGateway";
    let org = DEMO_ORG_ID;
    let d = |json: &str| format!("-d '{json}'");
    let restricted = "-H 'x-atlas-profile: restricted'";
    vec![
        (String::new(), "list".into(), ""),
        (String::new(), format!("describe {svc}"), ""),
        (
            d(&format!(
                r#"{{"org_id":"{org}","access_list_ips":["203.0.113.7","10.0.0.0/8"]}}"#
            )),
            format!("{svc}/CreateLinkToken"),
            "",
        ),
        (
            d(&format!(r#"{{"org_id":"{org}"}}"#)),
            format!("{svc}/DeleteLinkToken"),
            "",
        ),
        (
            d(&format!(
                r#"{{"org_id":"{org}","desc":"ci key","roles":["ORG_MEMBER"]}}"#
            )),
            format!("{svc}/CreateApiKey"),
            "",
        ),
        (
            format!(
                "-H 'x-atlas-profile: apikey' {}",
                d(&format!(
                    r#"{{"org_id":"{org}","desc":"digest key","roles":["ORG_READ_ONLY"]}}"#
                ))
            ),
            format!("{svc}/CreateApiKey"),
            "",
        ),
        (
            d(&format!(
                r#"{{"org_id":"{org}","desc":"fenced key","roles":["ORG_MEMBER"],"access_list_ips":["203.0.113.7","10.0.0.0/8"]}}"#
            )),
            format!("{svc}/CreateApiKey"),
            "",
        ),
        (
            d(&format!(
                r#"{{"org_id":"{org}","desc":"short-lived key","roles":["ORG_MEMBER"],"ttl":"60s"}}"#
            )),
            format!("{svc}/CreateApiKey"),
            "expire_time a minute ahead; the lease sweeper deletes the key within a minute of it",
        ),
        (
            d(&format!(r#"{{"org_id":"{org}","page_size":2}}"#)),
            format!("{svc}/ListApiKeys"),
            "",
        ),
        (
            d(&format!(
                r#"{{"org_id":"{org}","api_key_id":"000000000000000000000000"}}"#
            )),
            format!("{svc}/DeleteApiKey"),
            "NOT_FOUND until api_key_id is the id of a key you created",
        ),
        (
            d(&format!(
                r#"{{"org_id":"{org}","name":"ci bot","description":"mints tokens","roles":["ORG_MEMBER"],"secret_expires_after_hours":24,"access_list_ips":["203.0.113.7"]}}"#
            )),
            format!("{svc}/CreateServiceAccount"),
            "",
        ),
        (
            d(&format!(r#"{{"org_id":"{org}","page_size":2}}"#)),
            format!("{svc}/ListServiceAccounts"),
            "",
        ),
        (
            d(&format!(
                r#"{{"org_id":"{org}","client_id":"{SAMPLE_CLIENT_ID}","secret_expires_after_hours":24}}"#
            )),
            format!("{svc}/RotateServiceAccountSecret"),
            "NOT_FOUND until client_id is the client_id of an account you created",
        ),
        (
            d(&format!(
                r#"{{"org_id":"{org}","client_id":"{SAMPLE_CLIENT_ID}"}}"#
            )),
            format!("{svc}/DeleteServiceAccount"),
            "NOT_FOUND until client_id is the client_id of an account you created",
        ),
        (
            d(r#"{"org_id":"not-an-org","access_list_ips":["10.0.0.1","bad"]}"#),
            format!("{svc}/CreateLinkToken"),
            "INVALID_ARGUMENT with BadRequest",
        ),
        (
            format!(
                "{restricted} {}",
                d(&format!(
                    r#"{{"org_id":"{org}","desc":"x","roles":["ORG_OWNER"]}}"#
                ))
            ),
            format!("{svc}/CreateApiKey"),
            "PERMISSION_DENIED POLICY_DENIED",
        ),
        (
            format!(
                "-H 'x-atlas-profile: readonly' {}",
                d(&format!(
                    r#"{{"org_id":"{org}","api_key_id":"000000000000000000000000"}}"#
                ))
            ),
            format!("{svc}/DeleteApiKey"),
            "PERMISSION_DENIED POLICY_DENIED (field rpc)",
        ),
        (String::new(), "grpc.health.v1.Health/Check".into(), ""),
    ]
}

/// One ready-to-paste grpcurl line. Flags (`-H`, `-d`) come before the address: grpcurl,
/// like every Go flag parser, stops reading flags at the first positional argument.
fn grpcurl_line(listen: SocketAddr, flags: &str, what: &str, shows: &str) -> String {
    let mut line = String::from("grpcurl -plaintext ");
    for part in [flags, &listen.to_string(), what] {
        if !part.is_empty() {
            line.push_str(part);
            line.push(' ');
        }
    }
    if !shows.is_empty() {
        line.push_str("  # ");
        line.push_str(shows);
    }
    line.trim_end().to_string()
}

/// The banner, for the addresses the gateway bound.
fn banner(emulator: &str, listen: SocketAddr, metrics: Option<SocketAddr>) -> String {
    let tries: String = examples()
        .iter()
        .map(|(flags, what, shows)| format!("  {}\n", grpcurl_line(listen, flags, what, shows)))
        .collect();
    let metrics = metrics
        .map(|addr| format!("Metrics: curl -s http://{addr}/metrics | grep atlas_gateway\n"))
        .unwrap_or_default();
    format!(
        "atlas-grpc-gateway dev: gateway on {listen}, Atlas emulator on {emulator} (demo org {DEMO_ORG_ID})
Profiles: default (service account), apikey (HTTP Digest), restricted (may only grant ORG_MEMBER/ORG_READ_ONLY), readonly (may only call ListApiKeys)
Try:
{tries}{metrics}Emulator counters: curl -s {emulator}/__emulator/counters
Ctrl-C to stop."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a shell line into words, honouring single quotes (all the banner uses).
    fn words(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
        for c in line.chars() {
            match c {
                '\'' => quoted = !quoted,
                ' ' if !quoted => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                c => cur.push(c),
            }
        }
        out.extend((!cur.is_empty()).then_some(cur));
        out
    }

    #[test]
    fn every_banner_flag_comes_before_the_address() {
        let listen: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let text = banner("http://127.0.0.1:1", listen, "127.0.0.1:9464".parse().ok());
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("grpcurl "))
            .collect();
        assert_eq!(lines.len(), examples().len());
        for line in lines {
            let words = words(line.split(" #").next().unwrap());
            let at = words.iter().position(|w| w == "127.0.0.1:50051");
            let at = at.unwrap_or_else(|| panic!("no address in {line}"));
            assert!(
                words[at..].iter().all(|w| !w.starts_with('-')),
                "a flag after the address: {line}"
            );
        }
        assert!(text.contains("curl -s http://127.0.0.1:9464/metrics"));
        let off = banner("http://127.0.0.1:1", listen, None);
        assert!(!off.contains("/metrics"), "{off}");
    }
}
