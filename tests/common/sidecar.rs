//! The real gateway binary as a sidecar process in front of an emulator: started on a
//! loopback port 0 (its log names the port), killed with SIGKILL as a crashed pod, or
//! stopped with SIGTERM (drain, then revocation).
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use atlas_grpc_gateway::emulator::{Emulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};

use super::process;

const BIN: &str = env!("CARGO_BIN_EXE_atlas-grpc-gateway");

pub struct Sidecar {
    child: Child,
    log: PathBuf,
}

impl Sidecar {
    /// Starts a sidecar on a loopback port 0; `env` adds settings (name, value).
    pub fn spawn(
        emu: &Emulator,
        store: Option<&str>,
        logs: &Path,
        name: &str,
        env: &[(&str, &str)],
    ) -> Sidecar {
        let log = logs.join(name);
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_clear()
            .env("MONGODB_ATLAS_BASE_URL", emu.base_url())
            .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
            .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
            .env("ATLAS_GATEWAY_LISTEN", "127.0.0.1:0")
            .env("ATLAS_GATEWAY_SHUTDOWN_GRACE", "5s")
            // Warnings, plus the start-up line that names the bound address.
            .env("RUST_LOG", "warn,atlas_grpc_gateway::server=info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(url) = store {
            cmd.env("ATLAS_GATEWAY_SHARED_STORE", url);
        }
        Sidecar {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    /// Waits for health SERVING at the address the sidecar logged.
    pub async fn serving(&mut self) -> SocketAddr {
        process::wait_serving(&mut self.child, &self.log).await
    }

    /// Kills the sidecar at once, as a crashed pod.
    pub fn kill(mut self) {
        process::signal(&self.child, "-KILL");
        let _ = self.child.wait();
    }

    /// Stops it gracefully (drain, then revocation of its token); a failed stop fails
    /// the test.
    pub async fn drain(self) {
        let Sidecar { child, log } = self;
        process::signal(&child, "-TERM");
        let (status, logged) = process::wait_exit(child, &log).await;
        assert!(
            status.success(),
            "a sidecar failed to stop: {status}\n{logged}"
        );
    }
}
