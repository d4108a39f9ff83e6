//! End-to-end benchmark: "is the gateway invisible?"
//!
//! One run compares, against the same in-process Atlas emulator:
//! - **direct**: a reqwest client calling the emulator's REST API the way a caller without
//!   the gateway would (one OAuth token fetched up front, then `Authorization: Bearer`, the
//!   versioned media type, the same JSON body, the JSON answer parsed);
//! - **gateway**: a tonic client calling the release gateway binary
//!   (`atlas-grpc-gateway serve`, spawned as a child process so its RSS and CPU time can be
//!   read from `/proc/<pid>`), which calls the same emulator;
//! - **floor**: the same tonic client calling a bare tonic → reqwest passthrough of
//!   CreateLinkToken (`floor.rs`, this binary re-executed as a child process), against the
//!   gateway on the shipped defaults of `serve` (`vs_floor.rs`).
//!
//! The client and the emulator share one tokio runtime in this process; the gateway and
//! the floor are separate processes with their own runtimes. All share the machine's cores.
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
//! - `BENCH_MATRIX`, `BENCH_FLOOR`, `BENCH_MEMORY` (default 1 each): run the direct/gateway
//!   matrix (with the Digest scenario and the variants), the floor comparison, the memory
//!   bursts. `BENCH_FLOOR_ROUNDS` (default 3, smoke 1): interleaved floor/gateway rounds.
//!   `BENCH_FLOOR_DOCKER` (default 1): add the Dockerfile row (JSON logs, metrics on).
//!   `BENCH_SHARED_STORE` (default 1): the `shared store` row (`shared_store.rs`; a
//!   real Redis-protocol server from the test harness).
//! - `BENCH_CHILD_WRAPPER`: a command to run the gateway and floor children under (e.g.
//!   `valgrind --tool=callgrind`), and `BENCH_CALLS_PER_CALLER`: exactly that many calls
//!   per caller and cell, no warm-up; see `scripts/callgrind.sh`. `BENCH_GATEWAY_BIN`: another
//!   gateway binary than the one cargo built (to compare builds in one run).
//!
//! Output: human tables on stdout, then one line `BENCH_JSON {...}`.
mod callers;
mod child;
mod floor;
mod matrix;
mod measure;
mod procfs;
#[allow(dead_code)] // the fleet tests' helper; the bench uses start, url and connection
#[path = "../../tests/common/redis_server.rs"]
mod redis_server;
mod report;
mod settings;
mod shared_store;
mod vs_floor;

use std::time::{Duration, Instant};

use atlas_grpc_gateway::emulator::{Emulator, EmulatorConfig};
use serde_json::{json, Value};

use crate::{
    child::{gateway_bin, spawn_gateway, GatewaySpec, LogTo},
    measure::{delta, round, Bench},
    procfs::{cpu_model, loadavg},
    report::Targets,
    settings::{env_str, Settings},
};

/// Bytes in a mebibyte.
pub const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    // Re-executed as the floor's child process (see `child::spawn_floor`).
    if let Some(listen) = env_str(floor::LISTEN_ENV) {
        floor::main(&listen);
        return;
    }
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

fn print_banner(s: &Settings, machine: &Value) {
    let (bin, bin_size) = gateway_bin();
    println!(
        "# atlas-grpc-gateway benchmark{}\nmachine: {} CPUs, {}; load average at start {}",
        if s.smoke { " (smoke)" } else { "" },
        machine["nproc"],
        machine["cpu"].as_str().unwrap_or(""),
        machine["loadavg_start"].as_str().unwrap_or("")
    );
    println!(
        "gateway: child process {bin} ({:.2} MiB), matrix RUST_LOG={}, TOKIO_WORKER_THREADS={}, extra env {:?}; client+emulator: this process, {} tokio workers; {} gRPC connection(s)",
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
}

/// Gateway configs: the shipped defaults plus the Digest profile; and the same with
/// max_in_flight raised so that BENCH_INFLIGHT calls can all be in flight upstream.
fn write_configs(s: &Settings, dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let apikey = "[profiles.apikey]\npublic_key_env = \"BENCH_PUBLIC_KEY\"\nprivate_key_env = \"BENCH_PRIVATE_KEY\"\n";
    let config = dir.join("gateway.toml");
    std::fs::write(&config, format!("# written by benches/gateway\n{apikey}"))
        .expect("write the gateway config");
    let raised = dir.join("gateway-raised.toml");
    std::fs::write(
        &raised,
        format!(
            "# written by benches/gateway\n[profiles.default]\nmax_in_flight = {}\n\n{apikey}",
            s.inflight.max(1) + 24
        ),
    )
    .expect("write the gateway config");
    (config, raised)
}

/// The matrix's gateway: the Digest profile added, `BENCH_GATEWAY_LOG`, logs to /dev/null.
fn matrix_spec(s: &Settings, config: &std::path::Path) -> GatewaySpec {
    GatewaySpec {
        config: Some(config.to_path_buf()),
        rust_log: Some(s.gateway_log.clone()),
        threads: s.gateway_threads.clone(),
        metrics: false,
        json_logs: false,
        log: LogTo::Null,
        shared_store: None,
    }
}

async fn run(s: Settings) {
    let run_started = Instant::now();
    let machine = json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu_model(),
        "loadavg_start": loadavg(),
    });
    print_banner(&s, &machine);
    let emulator = Emulator::start(EmulatorConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("start the emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, config_raised) = write_configs(&s, dir.path());
    let bench = Bench {
        settings: &s,
        emulator: &emulator,
        self_pid: std::process::id().to_string(),
        base: emulator.base_url(),
        dir: dir.path().to_path_buf(),
    };
    let mut targets = Targets::default();
    let mut summary = json!({ "version": 2, "smoke": s.smoke, "machine": machine });

    // Start-up: spawn → SERVING, several times; keep the last process for the matrix.
    let spec = matrix_spec(&s, &config);
    let mut startups = Vec::new();
    let mut gateway = None;
    for _ in 0..s.startup_runs {
        drop(gateway.take());
        let g = spawn_gateway(&bench.base, &spec).await;
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
    summary["startup_ms"] = json!(startups.iter().map(|v| round(*v, 2)).collect::<Vec<_>>());
    summary["startup_ms_median"] = json!(round(startup_median, 2));
    summary["rss_idle_bytes"] = json!(rss_idle);

    let counters_start = emulator.counters();
    // Gateway processes that served calls, each expected to fetch one token.
    let mut gateway_processes = 0u64;
    let matrix = match s.matrix {
        true => Some(matrix::run(&bench, &gateway, &spec).await),
        false => None,
    };
    drop(gateway);
    let vs_floor = match s.floor {
        true => Some(vs_floor::run(&bench).await),
        false => None,
    };
    let shared_store = match s.shared_store {
        true => Some(shared_store::run(&bench).await),
        false => None,
    };
    let inflight = match s.memory {
        true => memory(&bench, &config, &config_raised).await,
        false => Vec::new(),
    };
    println!("\n## targets");
    if let Some(m) = &matrix {
        gateway_processes += m.gateway_processes;
        m.check(&mut targets);
        m.add_to(&mut summary);
    }
    if let Some(f) = &vs_floor {
        gateway_processes += f.gateway_processes;
        f.check(&mut targets);
        summary["floor"] = f.json.clone();
    }
    if let Some(r) = &shared_store {
        gateway_processes += 2;
        r.check(&mut targets);
        summary["shared_store"] = r.json.clone();
    }
    targets.check("idle RSS", rss_idle as f64 / MIB, 15.0, "MiB", false);
    gateway_processes += inflight.len() as u64;
    for r in &inflight {
        let label = r["label"].as_str().unwrap_or("");
        let peak = r["rss_peak_bytes"].as_u64().unwrap_or(0) as f64 / MIB;
        let name = format!("RSS at {} in flight, peak, {label}", s.inflight);
        targets.check(&name, peak, 40.0, "MiB", false);
    }
    summary["inflight"] = json!(inflight);
    targets.check(
        "start-up to SERVING (median)",
        startup_median,
        50.0,
        "ms",
        false,
    );

    // Token economy: the gateway must fetch one token per token lifetime (per process).
    let tokens = delta(&counters_start, &emulator.counters()).tokens_issued;
    let direct_and_floor = u64::from(s.matrix) + u64::from(s.floor);
    let gw_tokens = tokens.saturating_sub(direct_and_floor);
    println!(
        "tokens issued during the run: {tokens} ({direct_and_floor} for the direct caller and the floor, gateway {gw_tokens} for {gateway_processes} gateway process(es) that served calls; expected 1 each)"
    );
    if gateway_processes > 0 {
        targets.check(
            "token fetches per gateway process",
            gw_tokens as f64 / gateway_processes as f64,
            1.0,
            "",
            false,
        );
    }
    println!(
        "\nload average at end {}; run took {:.0} s",
        loadavg(),
        run_started.elapsed().as_secs_f64()
    );
    summary["loadavg_end"] = json!(loadavg());
    summary["settings"] = json!({
        "seconds": s.seconds, "warmup": s.warmup, "concurrency": s.concurrency,
        "latency_ms": s.latencies_ms, "channels": s.channels,
        "client_threads": s.client_threads, "gateway_threads": s.gateway_threads,
        "gateway_log": s.gateway_log, "floor_rounds": s.floor_rounds,
        "gateway_env": env_str("BENCH_GATEWAY_ENV"),
    });
    summary["binary_bytes"] = json!(gateway_bin().1);
    summary["tokens_issued"] = json!(tokens);
    summary["gateway_token_fetches"] = json!(gw_tokens);
    summary["gateway_processes_serving_calls"] = json!(gateway_processes);
    summary["targets"] = json!(targets.list);
    summary["run_secs"] = json!(round(run_started.elapsed().as_secs_f64(), 1));
    println!("BENCH_JSON {summary}");
    emulator.shutdown().await;
}

/// RSS with `inflight` calls in flight, on fresh gateway processes on the shipped logging
/// defaults: once with the shipped per-profile limit (max_in_flight = 256: the rest wait in
/// the gateway), once with the limit raised so that every call is in flight upstream.
async fn memory(
    bench: &Bench<'_>,
    config: &std::path::Path,
    raised: &std::path::Path,
) -> Vec<Value> {
    println!("\n## memory (gateway RSS, shipped logging defaults, log to a file)");
    let mut inflight = Vec::new();
    for (label, cfg) in [
        ("max_in_flight=256 (default)", config),
        ("max_in_flight raised", raised),
    ] {
        let spec = GatewaySpec {
            config: Some(cfg.to_path_buf()),
            threads: bench.settings.gateway_threads.clone(),
            ..GatewaySpec::shipped(bench.dir.join("memory.log"))
        };
        let gp = spawn_gateway(&bench.base, &spec).await;
        inflight.push(bench.inflight(label, &gp).await);
    }
    bench.emulator.clear_faults();
    inflight
}
