//! Soak / load test: the release gateway binary against the in-process Atlas emulator,
//! driven by many concurrent callers with injected upstream faults.
//!
//! ```sh
//! cargo build --release --bin atlas-grpc-gateway
//! SOAK_SECONDS=60 cargo run --release --example soak      # or scripts/soak.sh
//! ```
//!
//! Environment: `SOAK_SECONDS` (default 60), `SOAK_CALLERS` (default 256),
//! `SOAK_GATEWAY_BIN` (default `target/release/atlas-grpc-gateway`).
//!
//! Everything stays on loopback; every loop is bounded by the deadline, and the gateway
//! child is killed at the end. Checks (exit 1 when one fails):
//! - no error other than the kinds that were provoked: 429 `RATE_LIMITED` injected on
//!   CreateLinkToken (with `Retry-After: 1`), 503 `SERVICE_UNAVAILABLE` injected on
//!   DeleteLinkToken, NOT_FOUND for a delete racing another caller's delete (the emulator
//!   keeps one link per org), INVALID_ARGUMENT for the deliberately invalid requests;
//! - gateway RSS flat after warm-up (first 10 s window): last <= 1.25 x warm + 16 MiB;
//! - gateway fd count flat after warm-up: last <= warm + 32;
//! - latency stable: p50 of the last window <= 3 x p50 of the first post-warm-up window
//!   + 20 ms (p99 is printed but not judged: injected `Retry-After: 1` sleeps dominate it).
use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use atlas_grpc_gateway::{
    emulator::{
        Emulator, EmulatorConfig, Fault, FaultAction, Route, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
    },
    pb::{
        atlas_gateway_client::AtlasGatewayClient, CreateApiKeyRequest, CreateLinkTokenRequest,
        DeleteLinkTokenRequest, OrgRole,
    },
};
use hdrhistogram::Histogram;
use tonic::{transport::Channel, Code};
use tonic_types::StatusExt;

const WINDOW: Duration = Duration::from_secs(10);
const ORGS: usize = 64;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn org(i: usize) -> String {
    format!("{:024x}", 0x5f1a_0000_0000_0000_0000_0000u128 + i as u128)
}

/// `VmRSS` in KiB and the number of open fds of a process.
fn proc_stats(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

/// Kills the gateway child whatever happens.
struct Gateway(Child);
impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Default)]
struct Window {
    latency_us: Option<Histogram<u64>>,
    outcomes: BTreeMap<String, u64>,
}

struct Stats {
    start: Instant,
    windows: Mutex<Vec<Window>>,
    unexpected: Mutex<Vec<String>>,
    calls: AtomicU64,
}

impl Stats {
    fn record(&self, rpc: &str, outcome: &str, expected: bool, took: Duration, detail: String) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let w = (self.start.elapsed().as_secs() / WINDOW.as_secs()) as usize;
        let mut windows = self.windows.lock().unwrap();
        while windows.len() <= w {
            windows.push(Window::default());
        }
        let win = &mut windows[w];
        win.latency_us
            .get_or_insert_with(|| Histogram::new_with_bounds(1, 120_000_000, 3).unwrap())
            .saturating_record(took.as_micros() as u64);
        *win.outcomes.entry(format!("{rpc} {outcome}")).or_default() += 1;
        if !expected {
            let mut u = self.unexpected.lock().unwrap();
            if u.len() < 20 {
                u.push(format!("{rpc}: {outcome}: {detail}"));
            } else {
                u.push(String::new());
            }
        }
    }
}

/// One caller: a fixed mix of RPCs until the deadline.
async fn caller(
    id: usize,
    mut client: AtlasGatewayClient<Channel>,
    stats: Arc<Stats>,
    until: Instant,
) {
    let mut n = 0usize;
    while Instant::now() < until {
        n += 1;
        let org_id = org(fastrand::usize(..ORGS));
        let pick = fastrand::u32(..100);
        let started = Instant::now();
        let (rpc, result) = match pick {
            0..=39 => {
                // 1 in 8 carries a request_id from a small per-caller pool, with the
                // same request each time: the idempotency cache answers the repeats.
                let request_id = if n.is_multiple_of(8) {
                    format!("soak-{id}-{}", n % 4)
                } else {
                    String::new()
                };
                let org_id = if request_id.is_empty() {
                    org_id
                } else {
                    org(id % ORGS)
                };
                let mut req = tonic::Request::new(CreateLinkTokenRequest {
                    org_id,
                    access_list_ips: vec!["203.0.113.7".into(), "10.0.0.0/8".into()],
                    request_id,
                });
                req.set_timeout(Duration::from_secs(20));
                (
                    "CreateLinkToken",
                    client.create_link_token(req).await.map(|_| ()),
                )
            }
            40..=69 => {
                let mut req = tonic::Request::new(DeleteLinkTokenRequest { org_id });
                req.set_timeout(Duration::from_secs(20));
                (
                    "DeleteLinkToken",
                    client.delete_link_token(req).await.map(|_| ()),
                )
            }
            70..=89 => {
                let mut req = tonic::Request::new(CreateApiKeyRequest {
                    org_id: org(0),
                    desc: format!("soak caller {id}"),
                    roles: vec![OrgRole::OrgMember as i32],
                    ..Default::default()
                });
                req.set_timeout(Duration::from_secs(20));
                ("CreateApiKey", client.create_api_key(req).await.map(|_| ()))
            }
            _ => {
                let mut req = tonic::Request::new(CreateLinkTokenRequest {
                    org_id: "not-an-org".into(),
                    access_list_ips: vec!["300.1.1.1".into()],
                    request_id: String::new(),
                });
                req.set_timeout(Duration::from_secs(20));
                ("Invalid", client.create_link_token(req).await.map(|_| ()))
            }
        };
        let took = started.elapsed();
        match result {
            Ok(()) => stats.record(rpc, "OK", rpc != "Invalid", took, String::new()),
            Err(s) => {
                let reason = s
                    .get_details_error_info()
                    .map(|i| i.reason)
                    .unwrap_or_default();
                let expected = matches!(
                    (rpc, s.code(), reason.as_str()),
                    ("Invalid", Code::InvalidArgument, "INVALID_REQUEST")
                        | ("CreateLinkToken", Code::ResourceExhausted, "RATE_LIMITED")
                        | ("DeleteLinkToken", Code::Unavailable, "SERVICE_UNAVAILABLE")
                        | ("DeleteLinkToken", Code::NotFound, _)
                );
                let outcome = format!("{:?}/{reason}", s.code());
                stats.record(rpc, &outcome, expected, took, s.message().to_string());
            }
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let seconds = env_u64("SOAK_SECONDS", 60).max(20);
    let callers = env_u64("SOAK_CALLERS", 256) as usize;
    let bin = std::env::var("SOAK_GATEWAY_BIN").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/release/atlas-grpc-gateway"
        )
        .to_string()
    });
    if !std::path::Path::new(&bin).exists() {
        eprintln!(
            "soak: {bin} not found; run `cargo build --release --bin atlas-grpc-gateway` first"
        );
        return std::process::ExitCode::from(2);
    }

    let config = EmulatorConfig {
        org_ids: (0..ORGS).map(org).collect(),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator starts");
    let port = free_port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(&bin)
        .arg("serve")
        .env("MONGODB_ATLAS_BASE_URL", emulator.base_url())
        .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .env("ATLAS_GATEWAY_LISTEN", listen.to_string())
        .env("ATLAS_GATEWAY_METRICS_LISTEN", "off")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("gateway starts");
    let pid = child.id();
    let _gateway = Gateway(child);

    // Wait for the gRPC port (bounded).
    let endpoint = format!("http://{listen}");
    let ready_by = Instant::now() + Duration::from_secs(20);
    let channel = loop {
        match Channel::from_shared(endpoint.clone())
            .unwrap()
            .connect()
            .await
        {
            Ok(c) => break c,
            Err(_) if Instant::now() < ready_by => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => {
                eprintln!("soak: gateway did not listen on {listen}: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    };
    // A few connections, shared by the callers (HTTP/2 multiplexes the rest).
    let mut channels = vec![channel];
    for _ in 0..3 {
        channels.push(
            Channel::from_shared(endpoint.clone())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }

    println!(
        "soak: gateway pid {pid} on {listen}, emulator {}, {callers} callers, {seconds} s",
        emulator.base_url()
    );
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let stats = Arc::new(Stats {
        start,
        windows: Mutex::new(Vec::new()),
        unexpected: Mutex::new(Vec::new()),
        calls: AtomicU64::new(0),
    });
    let emulator = Arc::new(emulator);

    // Faults, topped up every 500 ms: a budget of 429s (Retry-After: 1) on
    // CreateLinkToken and of 503s on DeleteLinkToken. Each request consumes one.
    let injector = {
        let emulator = emulator.clone();
        tokio::spawn(async move {
            while Instant::now() < until {
                emulator.clear_faults();
                emulator.inject(
                    Fault::new(
                        Route::CreateLinkToken,
                        FaultAction::error_with_retry_after(429, "RATE_LIMITED", "1"),
                    )
                    .limit(15),
                );
                emulator.inject(
                    Fault::new(
                        Route::DeleteLinkToken,
                        FaultAction::error(503, "SERVICE_UNAVAILABLE"),
                    )
                    .limit(15),
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            emulator.clear_faults();
        })
    };

    // Process samples once a second.
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        while Instant::now() < until {
            if let Some(s) = proc_stats(pid) {
                samples.push((start.elapsed(), s.0, s.1));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if let Some(s) = proc_stats(pid) {
            samples.push((start.elapsed(), s.0, s.1));
        }
        samples
    });

    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            tokio::spawn(caller(
                i,
                AtlasGatewayClient::new(channels[i % channels.len()].clone()),
                stats.clone(),
                until,
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let _ = injector.await;
    let samples = sampler.await.unwrap_or_default();
    let counters = emulator.counters();

    // ------------------------------------------------------------ report
    let mut failed = Vec::new();
    let total = stats.calls.load(Ordering::Relaxed);
    println!(
        "\ncalls: {total} in {:.1} s ({:.0}/s)",
        start.elapsed().as_secs_f64(),
        total as f64 / start.elapsed().as_secs_f64()
    );
    let windows = stats.windows.lock().unwrap();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    println!("window   calls     p50 ms    p99 ms    max ms");
    let mut p50s = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let Some(h) = &w.latency_us else { continue };
        for (k, v) in &w.outcomes {
            *totals.entry(k.clone()).or_default() += v;
        }
        p50s.push(h.value_at_quantile(0.5));
        println!(
            "{:>3}-{:<3} {:>6} {:>10.2} {:>9.2} {:>9.2}",
            i as u64 * WINDOW.as_secs(),
            (i as u64 + 1) * WINDOW.as_secs(),
            h.len(),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max())
        );
    }
    println!("outcomes:");
    for (k, v) in &totals {
        println!("  {k:<45} {v}");
    }
    println!(
        "emulator: {} token requests, {} link tokens created, {} deleted, {} API keys",
        counters.token_requests,
        counters.link_tokens_created,
        counters.link_tokens_deleted,
        counters.api_keys_created
    );
    // Upstream requests by route: beyond the successes are the injected faults (and,
    // for DELETE, the 404s of racing deletes).
    for (route, n) in &counters.requests {
        println!("  upstream {route:<60} {n}");
    }

    let unexpected = stats.unexpected.lock().unwrap();
    if !unexpected.is_empty() {
        failed.push(format!("{} unexpected errors", unexpected.len()));
        for u in unexpected.iter().filter(|u| !u.is_empty()) {
            println!("  unexpected: {u}");
        }
    }

    // Warm-up: the first window. Compare the first sample after it with the last one.
    let warm = samples.iter().find(|s| s.0 >= WINDOW).or(samples.first());
    if let (Some(first), Some(warm), Some(last)) = (samples.first(), warm, samples.last()) {
        let max_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
        let max_fd = samples.iter().map(|s| s.2).max().unwrap_or(0);
        println!(
            "gateway RSS KiB: first {} after-warm-up {} last {} max {}",
            first.1, warm.1, last.1, max_rss
        );
        println!(
            "gateway fds:     first {} after-warm-up {} last {} max {}",
            first.2, warm.2, last.2, max_fd
        );
        if last.1 as f64 > warm.1 as f64 * 1.25 + 16.0 * 1024.0 {
            failed.push(format!(
                "RSS grew from {} KiB to {} KiB after warm-up",
                warm.1, last.1
            ));
        }
        if last.2 > warm.2 + 32 {
            failed.push(format!(
                "fds grew from {} to {} after warm-up",
                warm.2, last.2
            ));
        }
    } else {
        failed.push("no /proc samples of the gateway".into());
    }
    if p50s.len() >= 3 {
        // Skip the warm-up window and a last window cut short by the deadline.
        let base = p50s[1];
        let last = p50s[p50s.len() - 2];
        if last > base * 3 + 20_000 {
            failed.push(format!(
                "p50 drifted from {:.2} ms to {:.2} ms",
                ms(base),
                ms(last)
            ));
        }
    }

    if failed.is_empty() {
        println!("\nSOAK PASSED");
        std::process::ExitCode::SUCCESS
    } else {
        println!("\nSOAK FAILED: {}", failed.join("; "));
        std::process::ExitCode::FAILURE
    }
}
