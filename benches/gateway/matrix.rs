//! The direct/gateway matrix: each RPC at each concurrency and upstream latency, direct
//! and gateway cells back to back; the Digest scenario; gateway variants (log level,
//! tokio workers) on one cell.
use std::sync::Arc;

use serde_json::{json, Value};

use crate::{
    callers::{Caller, Direct, Gateway},
    child::{spawn_gateway, ChildProcess, GatewaySpec, LogTo},
    measure::{delta, Bench, Cell, CounterDelta},
    report::{lat, pair_json, print_header, print_pair, Targets},
    settings::Rpc,
    MIB,
};
use atlas_grpc_gateway::emulator::{Fault, FaultAction, Route};

/// What the matrix measured.
pub struct Matrix {
    pub pairs: Vec<Value>,
    pub cells: Vec<(Cell, Cell)>,
    pub digest: Value,
    pub variants: Vec<Value>,
    pub gateway_processes: u64,
}

pub async fn run(bench: &Bench<'_>, gateway: &ChildProcess, spec: &GatewaySpec) -> Matrix {
    let mut m = Matrix {
        pairs: Vec::new(),
        cells: Vec::new(),
        digest: Value::Null,
        variants: Vec::new(),
        gateway_processes: 1,
    };
    oauth(bench, gateway, &mut m).await;
    if bench.settings.digest {
        m.digest = digest(bench, gateway, &mut m).await;
    }
    if bench.settings.variants && bench.settings.rpcs.contains(&Rpc::CreateLinkToken) {
        m.variants = variants(bench, spec).await;
        m.gateway_processes += m.variants.len() as u64;
    }
    let errors: u64 = m.cells.iter().map(|(d, g)| d.errors + g.errors).sum();
    println!("\nerrors in the matrix: {errors}");
    m
}

/// Service account (OAuth): every RPC, concurrency and upstream latency.
async fn oauth(bench: &Bench<'_>, gateway: &ChildProcess, m: &mut Matrix) {
    let s = bench.settings;
    let direct_sa = Arc::new(Caller::Direct(
        Direct::service_account(&bench.base)
            .await
            .expect("direct caller"),
    ));
    let gw_sa = Arc::new(Caller::Gateway(
        Gateway::connect(gateway.addr, s.channels, None).await,
    ));

    for &latency in &s.latencies_ms {
        bench.emulator.clear_faults();
        if latency > 0 {
            bench.emulator.inject(Fault::new(
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
                    .cell(&scenario, gw_sa.clone(), "gateway", Some(gateway), rpc, c)
                    .await;
                print_pair(&d, &g);
                m.pairs.push(pair_json(&d, &g));
                m.cells.push((d, g));
            }
        }
    }
    bench.emulator.clear_faults();
}

/// API key (Digest, `x-atlas-profile: apikey`), no upstream latency, CreateApiKey.
async fn digest(bench: &Bench<'_>, gateway: &ChildProcess, m: &mut Matrix) -> Value {
    let s = bench.settings;
    let scenario = "upstream 0 ms, API key (Digest, x-atlas-profile: apikey)".to_string();
    print_header(&scenario);
    let direct_dg = Arc::new(Caller::Direct(
        Direct::digest(&bench.base)
            .await
            .expect("direct digest caller"),
    ));
    let gw_dg = Arc::new(Caller::Gateway(
        Gateway::connect(gateway.addr, s.channels, Some("apikey")).await,
    ));
    // The gateway's first Digest call takes the challenge; count it separately.
    let before_first = bench.emulator.counters();
    if let Caller::Gateway(g) = gw_dg.as_ref() {
        g.call(0, Rpc::CreateApiKey)
            .await
            .expect("first digest call");
    }
    let first = delta(&before_first, &bench.emulator.counters());
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
                Some(gateway),
                Rpc::CreateApiKey,
                c,
            )
            .await;
        print_pair(&d, &g);
        steady.digest_challenges += g.counters.digest_challenges;
        steady.unauthorized += g.counters.unauthorized;
        steady.requests += g.counters.requests;
        gw_calls += g.calls;
        m.pairs.push(pair_json(&d, &g));
        m.cells.push((d, g));
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
    json!({
        "first_call_upstream_requests": first.requests,
        "first_call_challenges": first.digest_challenges,
        "steady_challenges": steady.digest_challenges,
        "steady_unauthorized": steady.unauthorized,
        "steady_gateway_calls": gw_calls,
        "steady_challenges_per_call": steady.digest_challenges as f64 / gw_calls.max(1) as f64,
    })
}

/// Variants of the gateway process on one cell: logging level and tokio workers.
async fn variants(bench: &Bench<'_>, spec: &GatewaySpec) -> Vec<Value> {
    let s = bench.settings;
    let mut variants = Vec::new();
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
        let variant = GatewaySpec {
            rust_log: Some(log.into()),
            threads: threads.map(str::to_string),
            config: spec.config.clone(),
            metrics: false,
            json_logs: false,
            log: LogTo::Null,
            shared_store: None,
        };
        let gp = spawn_gateway(&bench.base, &variant).await;
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
            cell.server_cpu_us.unwrap_or(0.0),
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
    variants
}

impl Matrix {
    /// Added latency at 64 callers and throughput ratios at 64 and 256, upstream 0 ms.
    pub fn check(&self, targets: &mut Targets) {
        for (d, g) in &self.cells {
            let zero = d.scenario.starts_with("upstream 0 ms, service");
            if zero && d.concurrency == 64 {
                let added50 = g.q(0.5) as f64 - d.q(0.5) as f64;
                let added99 = g.q(0.99) as f64 - d.q(0.99) as f64;
                let name = d.rpc.name();
                targets.check(
                    &format!("{name} added p50 @64, 0 ms"),
                    added50,
                    200.0,
                    "µs",
                    false,
                );
                targets.check(
                    &format!("{name} added p99 @64, 0 ms"),
                    added99,
                    1000.0,
                    "µs",
                    false,
                );
            }
            if d.scenario.contains("service") && (d.concurrency == 64 || d.concurrency == 256) {
                let ratio = g.throughput() / d.throughput().max(1e-9);
                let latency = &d.scenario[..d.scenario.find(',').unwrap_or(0)];
                let name = format!(
                    "{} throughput ratio @{}, {latency}",
                    d.rpc.name(),
                    d.concurrency
                );
                targets.check(&name, ratio, 0.8, "×", true);
            }
        }
        if let Some(v) = self.digest["steady_challenges_per_call"].as_f64() {
            targets.check(
                "Digest challenges per call, steady state",
                v,
                0.001,
                "",
                false,
            );
        }
    }

    pub fn add_to(&self, summary: &mut Value) {
        let errors: u64 = self.cells.iter().map(|(d, g)| d.errors + g.errors).sum();
        summary["pairs"] = json!(self.pairs);
        summary["digest"] = self.digest.clone();
        summary["variants"] = json!(self.variants);
        summary["matrix_errors"] = json!(errors);
    }
}
