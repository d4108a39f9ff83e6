//! The measured servers, each a child process so that its RSS and CPU time can be read
//! from `/proc/<pid>`: the release gateway binary (`atlas-grpc-gateway serve`) and the
//! floor (this bench binary re-executed in floor mode, see `floor.rs`).
//!
//! `BENCH_CHILD_WRAPPER` (e.g. `valgrind --tool=callgrind`) runs every child under a
//! wrapper; such children are stopped with SIGTERM so the wrapper can write its output.
use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use atlas_grpc_gateway::emulator::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
};
use tonic::transport::Endpoint;

use crate::{
    callers::Gateway,
    floor,
    procfs::{cpu_us, rss_bytes},
    settings::{env_str, Rpc},
};

/// The gateway binary (`BENCH_GATEWAY_BIN` overrides it, e.g. to compare two builds) and
/// its size in bytes.
pub fn gateway_bin() -> (String, u64) {
    let bin = env_str("BENCH_GATEWAY_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_atlas-grpc-gateway").to_string());
    let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
    (bin, size)
}

/// A running server child.
pub struct ChildProcess {
    child: Child,
    pub addr: SocketAddr,
    pub startup: Duration,
    wrapped: bool,
}

impl ChildProcess {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn rss(&self) -> u64 {
        rss_bytes(&self.pid()).unwrap_or(0)
    }

    pub fn cpu_us(&self) -> u64 {
        cpu_us(&self.pid()).unwrap_or(0)
    }
}

impl Drop for ChildProcess {
    /// SIGTERM (a gateway drains and flushes its log; a wrapper writes its output), then
    /// SIGKILL if it is still there after a while.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let give_up = Instant::now() + Duration::from_secs(if self.wrapped { 120 } else { 10 });
        while Instant::now() < give_up {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr")
}

/// Where a gateway child's stderr (its log) goes.
pub enum LogTo {
    /// `/dev/null`: formatting and `write(2)` are paid, shipping is not.
    Null,
    /// A file, as a container runtime or a log shipper would read it.
    File(PathBuf),
}

/// How to start a gateway child. Anything not set is the shipped default of `serve`.
pub struct GatewaySpec {
    pub config: Option<PathBuf>,
    /// `RUST_LOG`; `None` = unset (INFO).
    pub rust_log: Option<String>,
    pub threads: Option<String>,
    /// Metrics listener on (as the Dockerfile ships it); off otherwise.
    pub metrics: bool,
    /// `ATLAS_GATEWAY_LOG_FORMAT=json` (as the Dockerfile ships it).
    pub json_logs: bool,
    pub log: LogTo,
    /// `ATLAS_GATEWAY_SHARED_STORE` (fleet mode); unset by default.
    pub shared_store: Option<String>,
}

impl GatewaySpec {
    /// The shipped defaults of `serve`, logging to `log`.
    pub fn shipped(log: PathBuf) -> Self {
        GatewaySpec {
            config: None,
            rust_log: None,
            threads: None,
            metrics: false,
            json_logs: false,
            log: LogTo::File(log),
            shared_store: None,
        }
    }
}

fn command(program: &str) -> (Command, bool) {
    let wrapper = env_str("BENCH_CHILD_WRAPPER");
    let mut words = wrapper.as_deref().unwrap_or("").split_whitespace();
    match words.next() {
        Some(first) => {
            let mut cmd = Command::new(first);
            cmd.args(words).arg(program);
            (cmd, true)
        }
        None => (Command::new(program), false),
    }
}

/// Spawns `atlas-grpc-gateway serve` and waits for `grpc.health.v1.Health/Check` to say
/// SERVING; the start-up time is spawn → first SERVING answer.
pub async fn spawn_gateway(base_url: &str, spec: &GatewaySpec) -> ChildProcess {
    let addr = free_port();
    let (mut cmd, wrapped) = command(&gateway_bin().0);
    cmd.arg("serve")
        .env("MONGODB_ATLAS_BASE_URL", base_url)
        .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .env("BENCH_PUBLIC_KEY", DEMO_PUBLIC_KEY)
        .env("BENCH_PRIVATE_KEY", DEMO_PRIVATE_KEY)
        .env("ATLAS_GATEWAY_LISTEN", addr.to_string())
        .env_remove("ATLAS_GATEWAY_CONFIG")
        .env_remove("ATLAS_GATEWAY_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .env_remove("ATLAS_GATEWAY_SHARED_STORE")
        .env_remove("TOKIO_WORKER_THREADS");
    if let Some(c) = &spec.config {
        cmd.env("ATLAS_GATEWAY_CONFIG", c);
    }
    if let Some(l) = &spec.rust_log {
        cmd.env("RUST_LOG", l);
    }
    if let Some(t) = &spec.threads {
        cmd.env("TOKIO_WORKER_THREADS", t);
    }
    let metrics = if spec.metrics {
        free_port().to_string()
    } else {
        "off".into()
    };
    cmd.env("ATLAS_GATEWAY_METRICS_LISTEN", metrics);
    if spec.json_logs {
        cmd.env("ATLAS_GATEWAY_LOG_FORMAT", "json");
    }
    if let Some(url) = &spec.shared_store {
        cmd.env("ATLAS_GATEWAY_SHARED_STORE", url);
    }
    cmd.stderr(match &spec.log {
        LogTo::Null => Stdio::null(),
        LogTo::File(p) => std::fs::File::create(p)
            .expect("create the gateway log")
            .into(),
    });
    for pair in env_str("BENCH_GATEWAY_ENV").unwrap_or_default().split(';') {
        if let Some((k, v)) = pair.split_once('=') {
            cmd.env(k.trim(), v.trim());
        }
    }
    start(cmd, addr, wrapped, Ready::Health).await
}

/// Spawns the floor (this bench binary in floor mode) and waits until it answers a
/// CreateLinkToken call.
pub async fn spawn_floor(base_url: &str) -> ChildProcess {
    let addr = free_port();
    let exe = std::env::current_exe().expect("the bench binary's path");
    let (mut cmd, wrapped) = command(exe.to_str().expect("a UTF-8 path"));
    cmd.env(floor::LISTEN_ENV, addr.to_string())
        .env(floor::UPSTREAM_ENV, base_url)
        .env_remove("TOKIO_WORKER_THREADS")
        .stderr(Stdio::inherit());
    start(cmd, addr, wrapped, Ready::Call).await
}

/// How to tell that a child is ready.
enum Ready {
    Health,
    Call,
}

async fn start(mut cmd: Command, addr: SocketAddr, wrapped: bool, ready: Ready) -> ChildProcess {
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn the child");
    let mut process = ChildProcess {
        child,
        addr,
        startup: Duration::ZERO,
        wrapped,
    };
    let give_up = started + Duration::from_secs(if wrapped { 120 } else { 10 });
    loop {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("the child exited during start-up: {status}");
        }
        let up = match ready {
            Ready::Health => health_serving(addr).await,
            Ready::Call => answers_call(addr).await,
        };
        if up {
            process.startup = started.elapsed();
            if wrapped {
                println!("(wrapped child pid {} ready on {addr})", process.pid());
            }
            return process;
        }
        assert!(Instant::now() < give_up, "the child never became ready");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

async fn health_serving(addr: SocketAddr) -> bool {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let Ok(channel) = Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
    else {
        return false;
    };
    matches!(
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await,
        Ok(r) if r.get_ref().status == 1
    )
}

async fn answers_call(addr: SocketAddr) -> bool {
    match Gateway::try_connect(addr, 1, None).await {
        Some(g) => g.call(0, Rpc::CreateLinkToken).await.is_ok(),
        None => false,
    }
}
