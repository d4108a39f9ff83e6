//! Measurement: a cell (`concurrency` callers back to back: warm-up, then a measured
//! window with a latency histogram, CPU per call of the server child and of this process,
//! and the emulator's counters) and the RSS of a burst of calls in flight.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use atlas_grpc_gateway::emulator::{Counters, Emulator, Fault, FaultAction, Route};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::{
    callers::{Caller, Gateway},
    child::ChildProcess,
    procfs::cpu_us,
    settings::{Rpc, Settings},
    MIB,
};

pub struct Cell {
    pub scenario: String,
    pub rpc: Rpc,
    pub mode: &'static str,
    pub concurrency: usize,
    pub calls: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub hist: Histogram<u64>,
    /// Server child (gateway or floor) CPU (user+sys) per measured call, µs.
    pub server_cpu_us: Option<f64>,
    /// This process (client + emulator) CPU per measured call, µs.
    pub bench_cpu_us: f64,
    /// Upstream (emulator) requests per measured call.
    pub upstream_per_call: f64,
    pub counters: CounterDelta,
}

#[derive(Default, Clone, Copy)]
pub struct CounterDelta {
    pub requests: u64,
    pub tokens_issued: u64,
    pub digest_challenges: u64,
    pub unauthorized: u64,
}

pub fn delta(before: &Counters, after: &Counters) -> CounterDelta {
    let total = |c: &Counters| c.requests.values().sum::<u64>();
    CounterDelta {
        requests: total(after) - total(before),
        tokens_issued: after.tokens_issued - before.tokens_issued,
        digest_challenges: after.digest_challenges - before.digest_challenges,
        unauthorized: after.unauthorized - before.unauthorized,
    }
}

impl Cell {
    pub fn throughput(&self) -> f64 {
        self.calls as f64 / self.secs.max(1e-9)
    }

    pub fn q(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    pub fn mean(&self) -> f64 {
        self.hist.mean()
    }

    pub fn json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "rpc": self.rpc.name(),
            "mode": self.mode,
            "concurrency": self.concurrency,
            "calls": self.calls,
            "errors": self.errors,
            "secs": round(self.secs, 3),
            "rps": round(self.throughput(), 1),
            "mean_us": round(self.mean(), 1),
            "p50_us": self.q(0.5),
            "p90_us": self.q(0.9),
            "p99_us": self.q(0.99),
            "max_us": self.hist.max(),
            "server_cpu_us_per_call": self.server_cpu_us.map(|v| round(v, 1)),
            "bench_cpu_us_per_call": round(self.bench_cpu_us, 1),
            "upstream_requests_per_call": round(self.upstream_per_call, 3),
            "tokens_issued": self.counters.tokens_issued,
            "digest_challenges": self.counters.digest_challenges,
            "unauthorized": self.counters.unauthorized,
        })
    }
}

pub fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

pub struct Bench<'a> {
    pub settings: &'a Settings,
    pub emulator: &'a Emulator,
    pub self_pid: String,
    /// The emulator's base URL.
    pub base: String,
    /// A scratch directory (configs, gateway logs).
    pub dir: std::path::PathBuf,
}

impl Bench<'_> {
    /// `concurrency` workers call `rpc` back to back: warm-up, then `seconds` measured; or,
    /// with `BENCH_CALLS_PER_CALLER`, exactly that many calls each and no warm-up (for
    /// instruction counts: two runs with different counts, see `scripts/callgrind.sh`).
    #[allow(clippy::too_many_arguments)]
    pub async fn cell(
        &self,
        scenario: &str,
        caller: Arc<Caller>,
        mode: &'static str,
        gateway: Option<&ChildProcess>,
        rpc: Rpc,
        concurrency: usize,
    ) -> Cell {
        let s = self.settings;
        let begin = Instant::now();
        let budget = s.calls_per_caller;
        let warmup = if budget.is_some() { 0.0 } else { s.warmup };
        let warm_end = begin + Duration::from_secs_f64(warmup);
        let end = warm_end + Duration::from_secs_f64(s.seconds);
        let mut workers = Vec::with_capacity(concurrency);
        for w in 0..concurrency {
            let caller = caller.clone();
            workers.push(tokio::spawn(async move {
                let mut hist = new_hist();
                let (mut errors, mut first_error, mut made) = (0u64, None, 0u64);
                loop {
                    let t0 = Instant::now();
                    if budget.map_or(t0 >= end, |n| made >= n) {
                        break;
                    }
                    made += 1;
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
        let gw_cpu0 = gateway.map(ChildProcess::cpu_us);
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
        let gw_cpu1 = gateway.map(ChildProcess::cpu_us);
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
            server_cpu_us: gw_cpu0.zip(gw_cpu1).map(|(a, b)| per_call(b - a)),
            bench_cpu_us: per_call(self_cpu1 - self_cpu0),
            upstream_per_call: per_call(counters.requests),
            counters,
        }
    }
}

impl Bench<'_> {
    /// Fires `inflight` CreateLinkToken calls at once against a slow upstream and samples
    /// the gateway's RSS every 25 ms until they are all answered.
    pub async fn inflight(&self, label: &str, gateway: &ChildProcess) -> Value {
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
