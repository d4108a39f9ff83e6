//! End-to-end benchmark: "is the gateway invisible?"
//!
//! One run compares, against the same in-process Atlas emulator:
//! - **direct**: a reqwest client calling the emulator's REST API the way a caller without
//!   the gateway would (one OAuth token fetched up front, then `Authorization: Bearer`, the
//!   versioned media type, the same JSON body, the JSON answer parsed);
//! - **gateway**: a tonic client calling the release gateway binary
//!   (`atlas-grpc-gateway serve`, spawned as a child process so its RSS and CPU time can be
//!   read from `/proc/<pid>`), which calls the same emulator.
//!
//! The client and the emulator share one tokio runtime in this process; the gateway is a
//! separate process with its own runtime. All of them share the machine's cores.
//!
//! Environment (all optional):
//! - `BENCH_SMOKE=1`: tiny run for CI (< 20 s).
//! - `BENCH_SECONDS` (default 1, smoke 0.4): measured seconds per cell.
//! - `BENCH_WARMUP_SECONDS` (default 0.3, smoke 0.1): unmeasured warm-up per cell.
//! - `BENCH_CONCURRENCY` (default `1,16,64,256`, smoke `1,16`): concurrent callers.
//! - `BENCH_LATENCY_MS` (default `0,20`, smoke `0`): fixed upstream latency scenarios.
//! - `BENCH_RPCS` (default all): `CreateLinkToken,CreateApiKey,DeleteLinkToken`.
//! - `BENCH_DIGEST` (default 1): also run CreateApiKey with the Digest (`apikey`) profile.
//! - `BENCH_VARIANTS` (default 1, smoke 0): gateway variants (RUST_LOG=info, 1 tokio worker).
//! - `BENCH_CHANNELS` (default 1): gRPC connections the callers share (round robin).
//! - `BENCH_CLIENT_THREADS` (default: number of CPUs): tokio workers for client + emulator.
//! - `BENCH_GATEWAY_THREADS`: `TOKIO_WORKER_THREADS` for the gateway (default: tokio's).
//! - `BENCH_GATEWAY_LOG` (default `warn`): `RUST_LOG` of the gateway in the main matrix.
//! - `BENCH_GATEWAY_ENV`: extra `NAME=value` pairs (`;`-separated) for every gateway child
//!   only, e.g. `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2` or
//!   `MALLOC_ARENA_MAX=1`, to try allocator settings without rebuilding.
//! - `BENCH_INFLIGHT` (default 1000) and `BENCH_INFLIGHT_LATENCY_MS` (default 2000, smoke
//!   1000): the RSS-under-load measurement.
//! - `BENCH_STARTUP_RUNS` (default 5, smoke 3): spawn → SERVING measurements.
//!
//! Output: human tables on stdout, then one line `BENCH_JSON {...}`.
use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    str::FromStr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use atlas_grpc_gateway::{
    emulator::{
        Counters, Emulator, EmulatorConfig, Fault, FaultAction, Route, DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET, DEMO_ORG_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
    },
    pb::{
        atlas_gateway_client::AtlasGatewayClient, CreateApiKeyRequest, CreateLinkTokenRequest,
        DeleteLinkTokenRequest, OrgRole,
    },
};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tonic::transport::{Channel, Endpoint};

const GATEWAY_BIN: &str = env!("CARGO_BIN_EXE_atlas-grpc-gateway");
const VERSIONED: &str = "application/vnd.atlas.2023-01-01+json";
const IPS: [&str; 2] = ["203.0.113.7", "10.0.0.0/8"];
const MIB: f64 = 1024.0 * 1024.0;

// ---------------------------------------------------------------------------------------
// Settings

fn env_str(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_num<T: FromStr>(name: &str, default: T) -> T {
    match env_str(name) {
        Some(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid number")),
        None => default,
    }
}

fn env_list<T: FromStr>(name: &str, default: &str) -> Vec<T> {
    let text = env_str(name).unwrap_or_else(|| default.to_string());
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{name}: cannot parse {s:?}"))
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rpc {
    CreateLinkToken,
    CreateApiKey,
    DeleteLinkToken,
}

impl FromStr for Rpc {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "CreateLinkToken" => Ok(Rpc::CreateLinkToken),
            "CreateApiKey" => Ok(Rpc::CreateApiKey),
            "DeleteLinkToken" => Ok(Rpc::DeleteLinkToken),
            _ => Err(()),
        }
    }
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::CreateLinkToken => "CreateLinkToken",
            Rpc::CreateApiKey => "CreateApiKey",
            // No link exists: Atlas (and the emulator) answer 404, the gateway NOT_FOUND
            // with google.rpc details. This benchmarks the error path on purpose.
            Rpc::DeleteLinkToken => "DeleteLinkToken(404)",
        }
    }
}

struct Settings {
    smoke: bool,
    seconds: f64,
    warmup: f64,
    concurrency: Vec<usize>,
    latencies_ms: Vec<u64>,
    rpcs: Vec<Rpc>,
    digest: bool,
    variants: bool,
    channels: usize,
    client_threads: usize,
    gateway_threads: Option<String>,
    gateway_log: String,
    inflight: usize,
    inflight_latency_ms: u64,
    startup_runs: usize,
}

impl Settings {
    fn from_env() -> Self {
        let smoke = env_str("BENCH_SMOKE").is_some_and(|v| v != "0");
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Settings {
            smoke,
            seconds: env_num("BENCH_SECONDS", if smoke { 0.4 } else { 1.0 }),
            warmup: env_num("BENCH_WARMUP_SECONDS", if smoke { 0.1 } else { 0.3 }),
            concurrency: env_list(
                "BENCH_CONCURRENCY",
                if smoke { "1,16" } else { "1,16,64,256" },
            ),
            latencies_ms: env_list("BENCH_LATENCY_MS", if smoke { "0" } else { "0,20" }),
            rpcs: env_list("BENCH_RPCS", "CreateLinkToken,CreateApiKey,DeleteLinkToken"),
            digest: env_num("BENCH_DIGEST", 1u8) != 0,
            variants: env_num("BENCH_VARIANTS", if smoke { 0u8 } else { 1 }) != 0,
            channels: env_num("BENCH_CHANNELS", 1usize).max(1),
            client_threads: env_num("BENCH_CLIENT_THREADS", cpus).max(1),
            gateway_threads: env_str("BENCH_GATEWAY_THREADS"),
            gateway_log: env_str("BENCH_GATEWAY_LOG").unwrap_or_else(|| "warn".into()),
            inflight: env_num("BENCH_INFLIGHT", 1000usize),
            inflight_latency_ms: env_num(
                "BENCH_INFLIGHT_LATENCY_MS",
                if smoke { 1000 } else { 2000 },
            ),
            startup_runs: env_num("BENCH_STARTUP_RUNS", if smoke { 3usize } else { 5 }).max(1),
        }
    }
}

// ---------------------------------------------------------------------------------------
// /proc readers

/// Resident set size of `pid` in bytes (`VmRSS`).
fn rss_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// user + system CPU time of `pid` (all threads), in µs. Clock ticks assumed 100 Hz
/// (USER_HZ on every mainstream Linux), so the resolution is 10 ms.
fn cpu_us(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after ')' index 0 is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10_000)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

// ---------------------------------------------------------------------------------------
// Callers

/// How the direct caller authenticates.
enum DirectAuth {
    Bearer(String),
    Digest(Mutex<digest_auth::WwwAuthenticateHeader>),
}

struct Direct {
    http: reqwest::Client,
    base: String,
    auth: DirectAuth,
}

impl Direct {
    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .expect("reqwest client")
    }

    /// Service account: one token fetch (Basic auth + client_credentials), then Bearer.
    async fn service_account(base: &str) -> Result<Direct, String> {
        let http = Direct::http();
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
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| format!("no access_token in {body}"))?;
        Ok(Direct {
            http,
            base: base.to_string(),
            auth: DirectAuth::Bearer(format!("Bearer {token}")),
        })
    }

    /// API key: one unauthenticated request to get the Digest challenge, then every
    /// request answers it with the same nonce and an increasing nonce count.
    async fn digest(base: &str) -> Result<Direct, String> {
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

fn path(rpc: Rpc) -> &'static str {
    match rpc {
        Rpc::CreateLinkToken | Rpc::DeleteLinkToken => {
            "/api/atlas/v2/orgs/5f1a0c2b3d4e5f6a7b8c9d0e/liveMigrations/linkTokens"
        }
        Rpc::CreateApiKey => "/api/atlas/v2/orgs/5f1a0c2b3d4e5f6a7b8c9d0e/apiKeys",
    }
}

/// The JSON body a direct caller sends (serialized per call, as a caller would).
fn body(rpc: Rpc) -> Option<Vec<u8>> {
    let v = match rpc {
        Rpc::CreateLinkToken => json!({ "accessListIps": IPS }),
        Rpc::CreateApiKey => json!({ "desc": "bench key", "roles": ["ORG_MEMBER"] }),
        Rpc::DeleteLinkToken => return None,
    };
    Some(serde_json::to_vec(&v).expect("serializable"))
}

struct Gateway {
    clients: Vec<AtlasGatewayClient<Channel>>,
    profile: Option<&'static str>,
}

impl Gateway {
    async fn connect(addr: SocketAddr, channels: usize, profile: Option<&'static str>) -> Self {
        let mut clients = Vec::new();
        for _ in 0..channels {
            let channel = Endpoint::from_shared(format!("http://{addr}"))
                .expect("valid uri")
                .tcp_nodelay(true)
                .connect()
                .await
                .expect("connect to the gateway");
            clients.push(AtlasGatewayClient::new(channel));
        }
        Gateway { clients, profile }
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(p) = self.profile {
            req.metadata_mut()
                .insert("x-atlas-profile", p.parse().expect("ascii"));
        }
        req
    }

    async fn call(&self, worker: usize, rpc: Rpc) -> Result<(), String> {
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

enum Caller {
    Direct(Direct),
    Gateway(Gateway),
}

impl Caller {
    async fn call(&self, worker: usize, rpc: Rpc) -> Result<(), String> {
        match self {
            Caller::Direct(d) => d.call(rpc).await,
            Caller::Gateway(g) => g.call(worker, rpc).await,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The gateway child process

struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
    startup: Duration,
}

impl GatewayProcess {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn rss(&self) -> u64 {
        rss_bytes(&self.pid()).unwrap_or(0)
    }

    fn cpu_us(&self) -> u64 {
        cpu_us(&self.pid()).unwrap_or(0)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr")
}

/// Spawns `atlas-grpc-gateway serve` and waits for `grpc.health.v1.Health/Check` to say
/// SERVING; the start-up time is spawn → first SERVING answer.
async fn spawn_gateway(
    base_url: &str,
    config: &std::path::Path,
    rust_log: &str,
    threads: Option<&str>,
) -> GatewayProcess {
    let addr = free_port();
    let mut cmd = Command::new(GATEWAY_BIN);
    cmd.arg("serve")
        .env("MONGODB_ATLAS_BASE_URL", base_url)
        .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .env("BENCH_PUBLIC_KEY", DEMO_PUBLIC_KEY)
        .env("BENCH_PRIVATE_KEY", DEMO_PRIVATE_KEY)
        .env("ATLAS_GATEWAY_CONFIG", config)
        .env("ATLAS_GATEWAY_LISTEN", addr.to_string())
        .env("ATLAS_GATEWAY_METRICS_LISTEN", "off")
        .env("RUST_LOG", rust_log)
        .env_remove("TOKIO_WORKER_THREADS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // Logs go to /dev/null: formatting and write(2) are paid, shipping is not.
        .stderr(Stdio::null());
    if let Some(t) = threads {
        cmd.env("TOKIO_WORKER_THREADS", t);
    }
    for pair in env_str("BENCH_GATEWAY_ENV").unwrap_or_default().split(';') {
        if let Some((k, v)) = pair.split_once('=') {
            cmd.env(k.trim(), v.trim());
        }
    }
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn the gateway binary");
    let mut process = GatewayProcess {
        child,
        addr,
        startup: Duration::ZERO,
    };
    let give_up = started + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("the gateway exited during start-up: {status}");
        }
        if health_serving(addr).await {
            process.startup = started.elapsed();
            return process;
        }
        assert!(Instant::now() < give_up, "the gateway never became SERVING");
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

// ---------------------------------------------------------------------------------------
// Measurement

struct Cell {
    scenario: String,
    rpc: Rpc,
    mode: &'static str,
    concurrency: usize,
    calls: u64,
    errors: u64,
    first_error: Option<String>,
    secs: f64,
    hist: Histogram<u64>,
    /// Gateway process CPU (user+sys) per measured call, µs.
    gateway_cpu_us: Option<f64>,
    /// This process (client + emulator) CPU per measured call, µs.
    bench_cpu_us: f64,
    /// Upstream (emulator) requests per measured call.
    upstream_per_call: f64,
    counters: CounterDelta,
}

#[derive(Default, Clone, Copy)]
struct CounterDelta {
    requests: u64,
    tokens_issued: u64,
    digest_challenges: u64,
    unauthorized: u64,
}

fn delta(before: &Counters, after: &Counters) -> CounterDelta {
    let total = |c: &Counters| c.requests.values().sum::<u64>();
    CounterDelta {
        requests: total(after) - total(before),
        tokens_issued: after.tokens_issued - before.tokens_issued,
        digest_challenges: after.digest_challenges - before.digest_challenges,
        unauthorized: after.unauthorized - before.unauthorized,
    }
}

impl Cell {
    fn throughput(&self) -> f64 {
        self.calls as f64 / self.secs.max(1e-9)
    }

    fn q(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    fn json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "rpc": self.rpc.name(),
            "mode": self.mode,
            "concurrency": self.concurrency,
            "calls": self.calls,
            "errors": self.errors,
            "secs": round(self.secs, 3),
            "rps": round(self.throughput(), 1),
            "p50_us": self.q(0.5),
            "p90_us": self.q(0.9),
            "p99_us": self.q(0.99),
            "max_us": self.hist.max(),
            "gateway_cpu_us_per_call": self.gateway_cpu_us.map(|v| round(v, 1)),
            "bench_cpu_us_per_call": round(self.bench_cpu_us, 1),
            "upstream_requests_per_call": round(self.upstream_per_call, 3),
            "tokens_issued": self.counters.tokens_issued,
            "digest_challenges": self.counters.digest_challenges,
            "unauthorized": self.counters.unauthorized,
        })
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

struct Bench<'a> {
    settings: &'a Settings,
    emulator: &'a Emulator,
    self_pid: String,
}

impl Bench<'_> {
    /// `concurrency` workers call `rpc` back to back: warm-up, then `seconds` measured.
    #[allow(clippy::too_many_arguments)]
    async fn cell(
        &self,
        scenario: &str,
        caller: Arc<Caller>,
        mode: &'static str,
        gateway: Option<&GatewayProcess>,
        rpc: Rpc,
        concurrency: usize,
    ) -> Cell {
        let s = self.settings;
        let begin = Instant::now();
        let warm_end = begin + Duration::from_secs_f64(s.warmup);
        let end = warm_end + Duration::from_secs_f64(s.seconds);
        let mut workers = Vec::with_capacity(concurrency);
        for w in 0..concurrency {
            let caller = caller.clone();
            workers.push(tokio::spawn(async move {
                let mut hist = new_hist();
                let (mut errors, mut first_error) = (0u64, None);
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let result = caller.call(w, rpc).await;
                    if t0 < warm_end {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            let us = t0.elapsed().as_micros() as u64;
                            hist.record(us.max(1)).expect("in bounds");
                        }
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                (hist, errors, first_error, Instant::now())
            }));
        }
        tokio::time::sleep_until(warm_end.into()).await;
        let counters0 = self.emulator.counters();
        let gw_cpu0 = gateway.map(GatewayProcess::cpu_us);
        let self_cpu0 = cpu_us(&self.self_pid).unwrap_or(0);
        let mut hist = new_hist();
        let (mut errors, mut first_error, mut last) = (0, None, warm_end);
        for w in workers {
            let (h, e, fe, done) = w.await.expect("worker");
            hist.add(h).expect("same bounds");
            errors += e;
            if first_error.is_none() {
                first_error = fe;
            }
            last = last.max(done);
        }
        let counters1 = self.emulator.counters();
        let gw_cpu1 = gateway.map(GatewayProcess::cpu_us);
        let self_cpu1 = cpu_us(&self.self_pid).unwrap_or(0);
        let calls = hist.len();
        let per_call = |d: u64| d as f64 / (calls.max(1)) as f64;
        let counters = delta(&counters0, &counters1);
        Cell {
            scenario: scenario.to_string(),
            rpc,
            mode,
            concurrency,
            calls,
            errors,
            first_error,
            secs: (last - warm_end).as_secs_f64(),
            hist,
            gateway_cpu_us: gw_cpu0.zip(gw_cpu1).map(|(a, b)| per_call(b - a)),
            bench_cpu_us: per_call(self_cpu1 - self_cpu0),
            upstream_per_call: per_call(counters.requests),
            counters,
        }
    }
}

impl Bench<'_> {
    /// Fires `inflight` CreateLinkToken calls at once against a slow upstream and samples
    /// the gateway's RSS every 25 ms until they are all answered.
    async fn inflight(&self, label: &str, gateway: &GatewayProcess) -> Value {
        let s = self.settings;
        let clients = Arc::new(Gateway::connect(gateway.addr, s.channels, None).await);
        // One call first, so the token is cached and the burst measures calls only.
        self.emulator.clear_faults();
        clients
            .call(0, Rpc::CreateLinkToken)
            .await
            .expect("warm-up call");
        let rss_before = gateway.rss();
        self.emulator.inject(Fault::new(
            Route::Any,
            FaultAction::Latency {
                millis: s.inflight_latency_ms,
            },
        ));
        let counters_before = self.emulator.counters();
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(s.inflight);
        for i in 0..s.inflight {
            let clients = clients.clone();
            tasks.push(tokio::spawn(async move {
                clients.call(i, Rpc::CreateLinkToken).await
            }));
        }
        let (mut rss_peak, mut rss_mid, mut upstream_mid) = (0, 0, 0);
        let half = Duration::from_millis(s.inflight_latency_ms / 2);
        while !tasks.iter().all(|t| t.is_finished()) {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let rss = gateway.rss();
            rss_peak = rss_peak.max(rss);
            if rss_mid == 0 && started.elapsed() >= half {
                rss_mid = rss;
                upstream_mid = delta(&counters_before, &self.emulator.counters()).requests;
            }
        }
        let (mut errors, mut first_error) = (0, None);
        for t in tasks {
            if let Err(e) = t.await.expect("task") {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
        let elapsed = started.elapsed();
        self.emulator.clear_faults();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_after = gateway.rss();
        println!(
            "{label}: {} calls at once, upstream {} ms; {} upstream requests in flight at mid-point; RSS before {:.2} MiB, mid-flight {:.2} MiB, peak {:.2} MiB, after {:.2} MiB; burst took {:.2} s, {} errors{}",
            s.inflight,
            s.inflight_latency_ms,
            upstream_mid,
            rss_before as f64 / MIB,
            rss_mid as f64 / MIB,
            rss_peak as f64 / MIB,
            rss_after as f64 / MIB,
            elapsed.as_secs_f64(),
            errors,
            first_error.map(|e| format!(" (first: {e})")).unwrap_or_default()
        );
        json!({
            "label": label,
            "calls": s.inflight, "upstream_latency_ms": s.inflight_latency_ms,
            "upstream_in_flight_mid": upstream_mid, "rss_before_bytes": rss_before,
            "rss_mid_bytes": rss_mid, "rss_peak_bytes": rss_peak, "rss_after_bytes": rss_after,
            "errors": errors, "secs": round(elapsed.as_secs_f64(), 3),
        })
    }
}

fn print_header(title: &str) {
    println!("\n## {title}");
    println!(
        "{:<22} {:>4} | {:>9} {:>9} {:>6} | {:>27} | {:>27} | {:>8} {:>8} | {:>7} {:>6}",
        "rpc",
        "conc",
        "direct/s",
        "gw/s",
        "ratio",
        "direct p50/p90/p99/max µs",
        "gateway p50/p90/p99/max µs",
        "+p50 µs",
        "+p99 µs",
        "gwCPU/c",
        "errors"
    );
}

fn lat(c: &Cell) -> String {
    format!("{}/{}/{}/{}", c.q(0.5), c.q(0.9), c.q(0.99), c.hist.max())
}

fn print_pair(d: &Cell, g: &Cell) {
    println!(
        "{:<22} {:>4} | {:>9.0} {:>9.0} {:>6.2} | {:>27} | {:>27} | {:>8} {:>8} | {:>7} {:>6}",
        d.rpc.name(),
        d.concurrency,
        d.throughput(),
        g.throughput(),
        g.throughput() / d.throughput().max(1e-9),
        lat(d),
        lat(g),
        g.q(0.5) as i64 - d.q(0.5) as i64,
        g.q(0.99) as i64 - d.q(0.99) as i64,
        g.gateway_cpu_us.map_or("-".into(), |v| format!("{v:.0}µs")),
        format!("{}/{}", d.errors, g.errors),
    );
    for c in [d, g] {
        if let Some(e) = &c.first_error {
            println!("    {} first error: {e}", c.mode);
        }
    }
}

fn pair_json(d: &Cell, g: &Cell) -> Value {
    json!({
        "scenario": d.scenario,
        "rpc": d.rpc.name(),
        "concurrency": d.concurrency,
        "direct": d.json(),
        "gateway": g.json(),
        "throughput_ratio": round(g.throughput() / d.throughput().max(1e-9), 3),
        "added_p50_us": g.q(0.5) as i64 - d.q(0.5) as i64,
        "added_p99_us": g.q(0.99) as i64 - d.q(0.99) as i64,
    })
}

// ---------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not: skip there (the
    // CI smoke run is `BENCH_SMOKE=1 cargo test --bench gateway -- --bench`).
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark skipped (run `cargo bench --bench gateway`)");
        return;
    }
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(settings));
}

async fn run(s: Settings) {
    let run_started = Instant::now();
    let bin_size = std::fs::metadata(GATEWAY_BIN).map_or(0, |m| m.len());
    let machine = json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu_model(),
        "loadavg_start": loadavg(),
    });
    println!(
        "# atlas-grpc-gateway benchmark{}\nmachine: {} CPUs, {}; load average at start {}",
        if s.smoke { " (smoke)" } else { "" },
        machine["nproc"],
        machine["cpu"].as_str().unwrap_or(""),
        machine["loadavg_start"].as_str().unwrap_or("")
    );
    println!(
        "gateway: child process {GATEWAY_BIN} ({:.2} MiB), RUST_LOG={}, TOKIO_WORKER_THREADS={}, extra env {:?}; client+emulator: this process, {} tokio workers; {} gRPC connection(s)",
        bin_size as f64 / MIB,
        s.gateway_log,
        s.gateway_threads.as_deref().unwrap_or("(tokio default = CPUs)"),
        env_str("BENCH_GATEWAY_ENV").unwrap_or_default(),
        s.client_threads,
        s.channels,
    );
    println!(
        "per cell: {:.1} s warm-up + {:.1} s measured; concurrency {:?}; upstream latency {:?} ms",
        s.warmup, s.seconds, s.concurrency, s.latencies_ms
    );

    let emulator = Emulator::start(EmulatorConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("start the emulator");
    let base = emulator.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    // The shipped defaults plus the Digest profile; and the same with max_in_flight
    // raised so that BENCH_INFLIGHT calls can all be in flight upstream.
    let apikey = "[profiles.apikey]\npublic_key_env = \"BENCH_PUBLIC_KEY\"\nprivate_key_env = \"BENCH_PRIVATE_KEY\"\n";
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!("# written by benches/gateway.rs\n{apikey}"),
    )
    .expect("write the gateway config");
    let config_raised = dir.path().join("gateway-raised.toml");
    std::fs::write(
        &config_raised,
        format!(
            "# written by benches/gateway.rs\n[profiles.default]\nmax_in_flight = {}\n\n{apikey}",
            s.inflight.max(1) + 24
        ),
    )
    .expect("write the gateway config");

    let bench = Bench {
        settings: &s,
        emulator: &emulator,
        self_pid: std::process::id().to_string(),
    };

    // Start-up: spawn → SERVING, several times; keep the last process for the matrix.
    let mut startups = Vec::new();
    let mut gateway = None;
    for _ in 0..s.startup_runs {
        drop(gateway.take());
        let g = spawn_gateway(&base, &config, &s.gateway_log, s.gateway_threads.as_deref()).await;
        startups.push(g.startup.as_secs_f64() * 1000.0);
        gateway = Some(g);
    }
    let gateway = gateway.expect("at least one start-up");
    let mut sorted = startups.clone();
    sorted.sort_by(f64::total_cmp);
    let startup_median = sorted[sorted.len() / 2];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_idle = gateway.rss();
    println!(
        "\nstart-up to SERVING: median {startup_median:.1} ms (runs: {}); gateway RSS idle: {:.2} MiB",
        startups
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        rss_idle as f64 / MIB
    );

    let counters_start = emulator.counters();
    let direct_sa = Arc::new(Caller::Direct(
        Direct::service_account(&base).await.expect("direct caller"),
    ));
    let gw_sa = Arc::new(Caller::Gateway(
        Gateway::connect(gateway.addr, s.channels, None).await,
    ));
    let mut pairs = Vec::new();
    let mut all_cells: Vec<(Cell, Cell)> = Vec::new();

    for &latency in &s.latencies_ms {
        emulator.clear_faults();
        if latency > 0 {
            emulator.inject(Fault::new(
                Route::Any,
                FaultAction::Latency { millis: latency },
            ));
        }
        let scenario = format!("upstream {latency} ms, service account (OAuth)");
        print_header(&scenario);
        for &rpc in &s.rpcs {
            for &c in &s.concurrency {
                let d = bench
                    .cell(&scenario, direct_sa.clone(), "direct", None, rpc, c)
                    .await;
                let g = bench
                    .cell(&scenario, gw_sa.clone(), "gateway", Some(&gateway), rpc, c)
                    .await;
                print_pair(&d, &g);
                pairs.push(pair_json(&d, &g));
                all_cells.push((d, g));
            }
        }
    }
    emulator.clear_faults();

    // Digest (API key profile), no upstream latency, CreateApiKey.
    let mut digest = json!(null);
    if s.digest {
        let scenario = "upstream 0 ms, API key (Digest, x-atlas-profile: apikey)".to_string();
        print_header(&scenario);
        let direct_dg = Arc::new(Caller::Direct(
            Direct::digest(&base).await.expect("direct digest caller"),
        ));
        let gw_dg = Arc::new(Caller::Gateway(
            Gateway::connect(gateway.addr, s.channels, Some("apikey")).await,
        ));
        // The gateway's first Digest call takes the challenge; count it separately.
        let before_first = emulator.counters();
        if let Caller::Gateway(g) = gw_dg.as_ref() {
            g.call(0, Rpc::CreateApiKey)
                .await
                .expect("first digest call");
        }
        let first = delta(&before_first, &emulator.counters());
        let mut steady = CounterDelta::default();
        let mut gw_calls = 0;
        for &c in &s.concurrency {
            let d = bench
                .cell(
                    &scenario,
                    direct_dg.clone(),
                    "direct",
                    None,
                    Rpc::CreateApiKey,
                    c,
                )
                .await;
            let g = bench
                .cell(
                    &scenario,
                    gw_dg.clone(),
                    "gateway",
                    Some(&gateway),
                    Rpc::CreateApiKey,
                    c,
                )
                .await;
            print_pair(&d, &g);
            steady.digest_challenges += g.counters.digest_challenges;
            steady.unauthorized += g.counters.unauthorized;
            steady.requests += g.counters.requests;
            gw_calls += g.calls;
            pairs.push(pair_json(&d, &g));
            all_cells.push((d, g));
        }
        println!(
            "digest: first gateway call {} upstream requests / {} challenge(s); steady state {} challenges and {} 401s over {} measured gateway calls ({} upstream requests; per call {:.4})",
            first.requests,
            first.digest_challenges,
            steady.digest_challenges,
            steady.unauthorized,
            gw_calls,
            steady.requests,
            steady.digest_challenges as f64 / gw_calls.max(1) as f64
        );
        digest = json!({
            "first_call_upstream_requests": first.requests,
            "first_call_challenges": first.digest_challenges,
            "steady_challenges": steady.digest_challenges,
            "steady_unauthorized": steady.unauthorized,
            "steady_gateway_calls": gw_calls,
            "steady_challenges_per_call": steady.digest_challenges as f64 / gw_calls.max(1) as f64,
        });
    }

    // Variants of the gateway process on one cell: logging level and tokio workers.
    let mut variants = Vec::new();
    if s.variants && s.rpcs.contains(&Rpc::CreateLinkToken) {
        let c = 64;
        let scenario = "variants: upstream 0 ms, CreateLinkToken, 64 callers";
        println!("\n## {scenario}");
        println!(
            "{:<34} | {:>9} | {:>27} | {:>8} | {:>9}",
            "gateway process", "gw/s", "p50/p90/p99/max µs", "CPU/call", "RSS after"
        );
        let cases: [(&str, &str, Option<&str>); 4] = [
            ("RUST_LOG=warn, tokio default", "warn", None),
            ("RUST_LOG=info, tokio default", "info", None),
            ("RUST_LOG=warn, 1 tokio worker", "warn", Some("1")),
            ("RUST_LOG=info, 1 tokio worker", "info", Some("1")),
        ];
        for (label, log, threads) in cases {
            let gp = spawn_gateway(&base, &config, log, threads).await;
            let caller = Arc::new(Caller::Gateway(
                Gateway::connect(gp.addr, s.channels, None).await,
            ));
            let cell = bench
                .cell(
                    scenario,
                    caller,
                    "gateway",
                    Some(&gp),
                    Rpc::CreateLinkToken,
                    c,
                )
                .await;
            println!(
                "{:<34} | {:>9.0} | {:>27} | {:>6.0}µs | {:>6.2}MiB{}",
                label,
                cell.throughput(),
                lat(&cell),
                cell.gateway_cpu_us.unwrap_or(0.0),
                gp.rss() as f64 / MIB,
                cell.first_error
                    .as_deref()
                    .map(|e| format!("  first error: {e}"))
                    .unwrap_or_default()
            );
            let mut j = cell.json();
            j["label"] = json!(label);
            j["rss_after_bytes"] = json!(gp.rss());
            variants.push(j);
        }
    }

    // RSS with `inflight` calls in flight, on fresh gateway processes: once with the
    // shipped per-profile limit (max_in_flight = 256: the rest wait in the gateway), once
    // with the limit raised so that every call is in flight upstream at the same time.
    println!(
        "\n## memory (gateway RSS; idle = fresh process, no call yet: {:.2} MiB)",
        rss_idle as f64 / MIB
    );
    let mut inflight = Vec::new();
    for (label, cfg) in [
        ("max_in_flight=256 (default)", &config),
        ("max_in_flight raised", &config_raised),
    ] {
        let gp = spawn_gateway(&base, cfg, &s.gateway_log, s.gateway_threads.as_deref()).await;
        inflight.push(bench.inflight(label, &gp).await);
    }
    emulator.clear_faults();

    // Token economy: the gateway must fetch one token per token lifetime (per process).
    let counters_end = emulator.counters();
    let tokens = delta(&counters_start, &counters_end).tokens_issued;
    // 1 for the direct caller, 1 per gateway process that served calls.
    let gateway_processes = 1 + variants.len() as u64 + inflight.len() as u64;
    let gw_tokens = tokens.saturating_sub(1);
    println!(
        "tokens issued during the run: {tokens} (direct caller 1, gateway {gw_tokens} for {gateway_processes} gateway process(es) that served calls; expected 1 each)"
    );

    // Targets.
    let mut targets = Vec::new();
    let mut target = |name: &str, value: f64, limit: f64, unit: &str, higher_is_better: bool| {
        let met = if higher_is_better {
            value >= limit
        } else {
            value <= limit
        };
        println!(
            "  [{}] {name}: {value:.2} {unit} (target {} {limit} {unit})",
            if met { "met" } else { "MISSED" },
            if higher_is_better { "≥" } else { "≤" }
        );
        targets.push(json!({"target": name, "value": round(value, 3), "limit": limit, "unit": unit, "met": met}));
    };
    println!("\n## targets");
    for (d, g) in &all_cells {
        let zero = d.scenario.starts_with("upstream 0 ms, service");
        if zero && d.concurrency == 64 {
            let added50 = g.q(0.5) as f64 - d.q(0.5) as f64;
            let added99 = g.q(0.99) as f64 - d.q(0.99) as f64;
            target(
                &format!("{} added p50 @64, 0 ms", d.rpc.name()),
                added50,
                200.0,
                "µs",
                false,
            );
            target(
                &format!("{} added p99 @64, 0 ms", d.rpc.name()),
                added99,
                1000.0,
                "µs",
                false,
            );
        }
        if d.scenario.contains("service") && (d.concurrency == 64 || d.concurrency == 256) {
            target(
                &format!(
                    "{} throughput ratio @{}, {}",
                    d.rpc.name(),
                    d.concurrency,
                    &d.scenario[..d.scenario.find(',').unwrap_or(0)]
                ),
                g.throughput() / d.throughput().max(1e-9),
                0.8,
                "×",
                true,
            );
        }
    }
    target("idle RSS", rss_idle as f64 / MIB, 15.0, "MiB", false);
    for r in &inflight {
        target(
            &format!(
                "RSS at {} in flight, peak, {}",
                s.inflight,
                r["label"].as_str().unwrap_or("")
            ),
            r["rss_peak_bytes"].as_u64().unwrap_or(0) as f64 / MIB,
            40.0,
            "MiB",
            false,
        );
    }
    target(
        "start-up to SERVING (median)",
        startup_median,
        50.0,
        "ms",
        false,
    );
    target(
        "token fetches per gateway process",
        gw_tokens as f64 / gateway_processes as f64,
        1.0,
        "",
        false,
    );
    if let Some(v) = digest["steady_challenges_per_call"].as_f64() {
        target(
            "Digest challenges per call, steady state",
            v,
            0.001,
            "",
            false,
        );
    }
    let errors: u64 = all_cells.iter().map(|(d, g)| d.errors + g.errors).sum();
    println!(
        "\nerrors in the matrix: {errors}; load average at end {}; run took {:.0} s",
        loadavg(),
        run_started.elapsed().as_secs_f64()
    );

    let summary = json!({
        "version": 1,
        "smoke": s.smoke,
        "machine": machine,
        "loadavg_end": loadavg(),
        "settings": {
            "seconds": s.seconds, "warmup": s.warmup, "concurrency": s.concurrency,
            "latency_ms": s.latencies_ms, "channels": s.channels,
            "client_threads": s.client_threads, "gateway_threads": s.gateway_threads,
            "gateway_log": s.gateway_log,
            "gateway_env": env_str("BENCH_GATEWAY_ENV"),
        },
        "binary_bytes": bin_size,
        "startup_ms": startups.iter().map(|v| round(*v, 2)).collect::<Vec<_>>(),
        "startup_ms_median": round(startup_median, 2),
        "rss_idle_bytes": rss_idle,
        "inflight": inflight,
        "tokens_issued": tokens,
        "gateway_token_fetches": gw_tokens,
        "gateway_processes_serving_calls": gateway_processes,
        "digest": digest,
        "pairs": pairs,
        "variants": variants,
        "targets": targets,
        "matrix_errors": errors,
        "run_secs": round(run_started.elapsed().as_secs_f64(), 1),
    });
    println!("BENCH_JSON {summary}");
    drop(gateway);
    emulator.shutdown().await;
}
