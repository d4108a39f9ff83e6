//! The real binary as a child process: it listens on a loopback port 0 and logs the
//! address it bound, which the tests read back (no port picked, dropped and re-bound).
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
};

use atlas_grpc_gateway::emulator::{Emulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};

use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

use super::eventually;

pub const BIN: &str = env!("CARGO_BIN_EXE_atlas-grpc-gateway");

/// The gateway command: loopback port 0 (the OS picks a free port, which the gateway
/// logs), JSON logs to a file (a pipe nobody reads would block the child), and the
/// service-account credentials.
pub fn gateway_cmd(emulator: &Emulator, log: &Path) -> Command {
    let mut cmd = bare_gateway_cmd(emulator, log);
    cmd.env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET);
    cmd
}

/// The gateway command without Atlas credentials.
pub fn bare_gateway_cmd(emulator: &Emulator, log: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_clear()
        .env("MONGODB_ATLAS_BASE_URL", emulator.base_url())
        .env("ATLAS_GATEWAY_LISTEN", "127.0.0.1:0")
        .env("ATLAS_GATEWAY_LOG_FORMAT", "json")
        .env("ATLAS_GATEWAY_SHUTDOWN_GRACE", "5s")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

pub fn log_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.log");
    (dir, path)
}

/// The address in `field` of the first log line that has one: JSON (`"field":"..."`)
/// or text (`field=...`).
pub fn logged_addr(log: &Path, field: &str) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(log).ok()?;
    let json = format!("\"{field}\":\"");
    let plain = format!(" {field}=");
    text.lines().find_map(|line| {
        let (at, len) = match line.find(&json) {
            Some(at) => (at, json.len()),
            None => (line.find(&plain)?, plain.len()),
        };
        let rest = &line[at + len..];
        rest[..rest.find(['"', ' ']).unwrap_or(rest.len())]
            .parse()
            .ok()
    })
}

/// Waits for the gateway's logged gRPC address, then for health SERVING there.
pub async fn wait_serving(child: &mut Child, log: &Path) -> SocketAddr {
    let mut addr = None;
    eventually("the gateway logs its address", || {
        if let Some(status) = child.try_wait().unwrap() {
            let logs = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the gateway exited ({status}): {logs}");
        }
        addr = logged_addr(log, "listen");
        std::future::ready(addr.is_some())
    })
    .await;
    let addr = addr.unwrap();
    eventually("health reports SERVING", || async move {
        let Ok(ch) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        else {
            return false;
        };
        let health = HealthClient::new(ch)
            .check(HealthCheckRequest::default())
            .await;
        health.is_ok_and(|r| r.into_inner().status == 1)
    })
    .await;
    addr
}

/// Sends `sig` (e.g. "-TERM") to the child.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits for the child to exit; returns its status and its log file.
pub async fn wait_exit(mut child: Child, log: &Path) -> (ExitStatus, String) {
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    (status, std::fs::read_to_string(log).unwrap_or_default())
}
