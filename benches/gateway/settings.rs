//! Bench settings from the environment (see the list in `main.rs`) and the RPCs measured.
use std::str::FromStr;

pub fn env_str(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn env_num<T: FromStr>(name: &str, default: T) -> T {
    match env_str(name) {
        Some(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid number")),
        None => default,
    }
}

pub fn env_list<T: FromStr>(name: &str, default: &str) -> Vec<T> {
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
pub enum Rpc {
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
    pub fn name(self) -> &'static str {
        match self {
            Rpc::CreateLinkToken => "CreateLinkToken",
            Rpc::CreateApiKey => "CreateApiKey",
            // No link exists: Atlas (and the emulator) answer 404, the gateway NOT_FOUND
            // with google.rpc details. This benchmarks the error path on purpose.
            Rpc::DeleteLinkToken => "DeleteLinkToken(404)",
        }
    }
}

pub struct Settings {
    pub smoke: bool,
    pub seconds: f64,
    pub warmup: f64,
    pub concurrency: Vec<usize>,
    pub latencies_ms: Vec<u64>,
    pub rpcs: Vec<Rpc>,
    pub digest: bool,
    pub variants: bool,
    pub channels: usize,
    pub client_threads: usize,
    pub gateway_threads: Option<String>,
    pub gateway_log: String,
    pub inflight: usize,
    pub inflight_latency_ms: u64,
    pub startup_runs: usize,
    /// Sections to run: the direct/gateway matrix, the floor comparison, memory.
    pub matrix: bool,
    pub floor: bool,
    pub memory: bool,
    /// The `shared store` row (fleet mode against a real redis-server).
    pub shared_store: bool,
    /// Interleaved floor/gateway rounds; the report takes the median of each figure.
    pub floor_rounds: usize,
    /// Count mode: calls per caller per cell instead of a measured time.
    pub calls_per_caller: Option<u64>,
    /// The floor comparison also runs the gateway as the Dockerfile ships it.
    pub floor_docker: bool,
}

impl Settings {
    pub fn from_env() -> Self {
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
            matrix: env_num("BENCH_MATRIX", 1u8) != 0,
            floor: env_num("BENCH_FLOOR", 1u8) != 0,
            memory: env_num("BENCH_MEMORY", 1u8) != 0,
            shared_store: env_num("BENCH_SHARED_STORE", 1u8) != 0,
            floor_rounds: env_num("BENCH_FLOOR_ROUNDS", if smoke { 1usize } else { 3 }).max(1),
            calls_per_caller: env_str("BENCH_CALLS_PER_CALLER")
                .map(|_| env_num("BENCH_CALLS_PER_CALLER", 0)),
            floor_docker: env_num("BENCH_FLOOR_DOCKER", 1u8) != 0,
        }
    }
}
