//! What an operator's tools read from the running binary: the per-call log line (text
//! and JSON) and, with `OTEL_EXPORTER_OTLP_ENDPOINT` set, OpenTelemetry spans exported
//! over OTLP/gRPC to a real receiver.
mod common;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use atlas_grpc_gateway::emulator::{Emulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use common::*;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

const BIN: &str = env!("CARGO_BIN_EXE_atlas-grpc-gateway");

/// The real binary (`serve`) in front of an in-process emulator; stderr in a file.
struct Process {
    child: Child,
    addr: std::net::SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    async fn start(emulator: &Emulator, args: &[&str], env: &[(&str, &str)]) -> Process {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gateway.log");
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .env_clear()
            .env("MONGODB_ATLAS_BASE_URL", emulator.base_url())
            .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
            .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            .env("ATLAS_GATEWAY_LISTEN", addr.to_string())
            .env("ATLAS_GATEWAY_METRICS_LISTEN", "off")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let p = Process {
            child,
            addr,
            log,
            _dir: dir,
        };
        p.wait_serving().await;
        p
    }

    async fn wait_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut health = HealthClient::new(channel(self.addr).await);
            if let Ok(r) = health.check(HealthCheckRequest::default()).await {
                if r.into_inner().status == 1 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "gateway did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, wait for a clean exit, return the logs.
    async fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            (status, self)
        })
        .await
        .unwrap();
        let (status, this) = status;
        let logs = std::fs::read_to_string(&this.log).unwrap();
        assert!(status.success(), "{status}: {logs}");
        logs
    }
}

/// The digits after the decimal point of a logged number.
fn decimals(number: &str) -> usize {
    number.split_once('.').map_or(0, |(_, d)| d.len())
}

#[tokio::test]
async fn call_durations_are_logged_with_three_decimals_at_most_in_text_and_json() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    for format in ["text", "json"] {
        let gw = Process::start(
            &emulator,
            &["--log-format", format],
            &[("RUST_LOG", "info")],
        )
        .await;
        let mut client = atlas_grpc_gateway::pb::atlas_gateway_client::AtlasGatewayClient::new(
            channel(gw.addr).await,
        );
        client
            .create_link_token(link_req(DEMO_ORG_ID))
            .await
            .unwrap();
        let logs = gw.stop().await;
        let line = logs
            .lines()
            .find(|l| l.contains("call finished"))
            .unwrap_or_else(|| panic!("no per-call line in {logs}"));
        let (latency, upstream) = if format == "json" {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let span = &v["span"];
            (v["latency_ms"].to_string(), span["upstream_ms"].to_string())
        } else {
            let field = |name: &str| {
                let at = line
                    .find(&format!("{name}="))
                    .unwrap_or_else(|| panic!("{name} in {line}"));
                let rest = &line[at + name.len() + 1..];
                rest[..rest.find([' ', '}']).unwrap_or(rest.len())].to_string()
            };
            (field("latency_ms"), field("upstream_ms"))
        };
        for (name, value) in [("latency_ms", &latency), ("upstream_ms", &upstream)] {
            let ms: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value} in {line}"));
            assert!(ms > 0.0, "{name}={value}");
            assert!(decimals(value) <= 3, "{format}: {name}={value} in {line}");
        }
    }
}
