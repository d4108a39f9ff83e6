//! The floor comparison: CreateLinkToken, upstream 0 ms, against the floor (a bare
//! tonic → reqwest passthrough, `floor.rs`) and the gateway on the **shipped defaults** of
//! `serve` (`RUST_LOG` unset = INFO, one text line per call, stderr to a file), plus the
//! gateway as the Dockerfile ships it (JSON logs, metrics listener on) at 64 callers.
//!
//! The cells are interleaved (floor and gateway back to back, the order alternating) for
//! `BENCH_FLOOR_ROUNDS` rounds, and each figure is the median over the rounds, so that the
//! ratios compare the two under the same machine load.
use std::{collections::BTreeMap, sync::Arc};

use serde_json::{json, Value};

use crate::{
    callers::{Caller, Gateway},
    child::{spawn_floor, spawn_gateway, ChildProcess, GatewaySpec},
    measure::{round, Bench, Cell},
    report::Targets,
    settings::Rpc,
};

const SCENARIO: &str = "floor comparison: CreateLinkToken, upstream 0 ms";
const FLOOR: &str = "floor";
const GATEWAY: &str = "gateway";
const DOCKER: &str = "gateway (Dockerfile: JSON logs, metrics on)";
/// The concurrency of the CPU and throughput targets (and of the Dockerfile row).
const TARGET_CONCURRENCY: usize = 64;

/// Medians over the rounds of one server at one concurrency.
#[derive(Clone, Copy, Default)]
pub struct Figures {
    pub rps: f64,
    pub cpu_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: u64,
}

impl Figures {
    pub fn of(cells: &[Cell]) -> Self {
        let median = |f: &dyn Fn(&Cell) -> f64| {
            let mut v: Vec<f64> = cells.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Figures {
            rps: median(&|c| c.throughput()),
            cpu_us: median(&|c| c.server_cpu_us.unwrap_or(0.0)),
            mean_us: median(&|c| c.mean()),
            p50_us: median(&|c| c.q(0.5) as f64),
            p99_us: median(&|c| c.q(0.99) as f64),
            errors: cells.iter().map(|c| c.errors).sum(),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "rps": round(self.rps, 1), "cpu_us_per_call": round(self.cpu_us, 1),
            "mean_us": round(self.mean_us, 1), "p50_us": self.p50_us, "p99_us": self.p99_us,
            "errors": self.errors,
        })
    }
}

/// One printed row: a server against the floor at one concurrency.
struct Row {
    label: &'static str,
    concurrency: usize,
    floor: Figures,
    server: Figures,
}

impl Row {
    fn print(&self) {
        let (f, g) = (&self.floor, &self.server);
        println!(
            "{:<44} {:>4} | {:>7.0} {:>7.0} {:>5.2} | {:>5.0} {:>5.0} {:>5.2} | {:>6.0} {:>6.0} {:>+6.0} | {:>6.0} {:>6.0} {:>5.2} | {:>6.0} {:>6.0} {:>5.2} | {}/{}",
            self.label, self.concurrency,
            f.rps, g.rps, g.rps / f.rps.max(1e-9),
            f.cpu_us, g.cpu_us, g.cpu_us / f.cpu_us.max(1e-9),
            f.mean_us, g.mean_us, g.mean_us - f.mean_us,
            f.p50_us, g.p50_us, g.p50_us / f.p50_us.max(1.0),
            f.p99_us, g.p99_us, g.p99_us / f.p99_us.max(1.0),
            f.errors, g.errors,
        );
    }

    fn json(&self) -> Value {
        json!({
            "label": self.label, "concurrency": self.concurrency,
            "floor": self.floor.json(), "server": self.server.json(),
            "throughput_ratio": round(self.server.rps / self.floor.rps.max(1e-9), 3),
            "cpu_ratio": round(self.server.cpu_us / self.floor.cpu_us.max(1e-9), 3),
            "added_mean_us": round(self.server.mean_us - self.floor.mean_us, 1),
            "p50_ratio": round(self.server.p50_us / self.floor.p50_us.max(1.0), 3),
            "p99_ratio": round(self.server.p99_us / self.floor.p99_us.max(1.0), 3),
        })
    }
}

/// What the floor comparison measured.
pub struct VsFloor {
    rows: Vec<Row>,
    pub json: Value,
    pub gateway_processes: u64,
}

pub async fn run(bench: &Bench<'_>) -> VsFloor {
    let s = bench.settings;
    bench.emulator.clear_faults();
    let log = bench.dir.join("gateway-shipped.log");
    let docker_log = bench.dir.join("gateway-docker.log");
    let floor = spawn_floor(&bench.base).await;
    let gateway = spawn_gateway(&bench.base, &GatewaySpec::shipped(log.clone())).await;
    let docker = match s.floor_docker && s.concurrency.contains(&TARGET_CONCURRENCY) {
        true => {
            let spec = GatewaySpec {
                metrics: true,
                json_logs: true,
                ..GatewaySpec::shipped(docker_log)
            };
            Some(spawn_gateway(&bench.base, &spec).await)
        }
        false => None,
    };
    let mut servers = Vec::new();
    for (name, process) in [
        (FLOOR, Some(&floor)),
        (GATEWAY, Some(&gateway)),
        (DOCKER, docker.as_ref()),
    ] {
        let Some(process) = process else { continue };
        let g = Gateway::connect(process.addr, s.channels, None).await;
        let mut server = Server::new(name, process, Arc::new(Caller::Gateway(g)));
        if name == DOCKER {
            server.only_at = Some(TARGET_CONCURRENCY);
        }
        servers.push(server);
    }
    println!(
        "\n## {SCENARIO}: {} interleaved round(s), medians",
        s.floor_rounds
    );
    let cells = interleave(bench, SCENARIO, &servers, &s.concurrency, s.floor_rounds).await;
    let has_docker = docker.is_some();
    drop(servers);
    drop((floor, gateway, docker)); // SIGTERM: the gateways flush their logs.
    let rows = rows(&cells);
    print_rows(&rows);
    let lines = log_lines(&log);
    let measured: u64 = cells
        .iter()
        .filter(|((name, _), _)| *name == GATEWAY)
        .flat_map(|(_, v)| v.iter().map(|c| c.calls))
        .sum();
    println!(
        "gateway log ({}): {lines} `call finished` lines for {measured} measured calls (plus warm-up)",
        log.display()
    );
    let json = json!({
        "rounds": s.floor_rounds,
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "gateway_log_call_lines": lines,
        "gateway_measured_calls": measured,
    });
    VsFloor {
        rows,
        json,
        gateway_processes: 1 + u64::from(has_docker),
    }
}

/// One measured server in an interleaved comparison.
pub struct Server<'a> {
    pub name: &'static str,
    pub process: &'a ChildProcess,
    pub caller: Arc<Caller>,
    /// Measured only at this concurrency (None: at every one).
    pub only_at: Option<usize>,
}

impl<'a> Server<'a> {
    pub fn new(name: &'static str, process: &'a ChildProcess, caller: Arc<Caller>) -> Self {
        Server {
            name,
            process,
            caller,
            only_at: None,
        }
    }
}

/// The cells of every server, CreateLinkToken at each concurrency, back to back (the
/// order alternating per cell and round) for `rounds` rounds, by (server, concurrency).
pub async fn interleave(
    bench: &Bench<'_>,
    scenario: &str,
    servers: &[Server<'_>],
    concurrency: &[usize],
    rounds: usize,
) -> BTreeMap<(&'static str, usize), Vec<Cell>> {
    let mut cells: BTreeMap<(&'static str, usize), Vec<Cell>> = BTreeMap::new();
    for round in 0..rounds {
        for (i, &c) in concurrency.iter().enumerate() {
            let mut order: Vec<&Server> = servers
                .iter()
                .filter(|s| s.only_at.is_none_or(|only| only == c))
                .collect();
            if (round + i) % 2 == 1 {
                order.reverse();
            }
            for server in order {
                let (name, caller) = (server.name, server.caller.clone());
                let process = Some(server.process);
                let cell = bench
                    .cell(scenario, caller, name, process, Rpc::CreateLinkToken, c)
                    .await;
                if let Some(e) = &cell.first_error {
                    println!("    {name} @{c} first error: {e}");
                }
                cells.entry((name, c)).or_default().push(cell);
            }
        }
    }
    cells
}

fn rows(cells: &BTreeMap<(&'static str, usize), Vec<Cell>>) -> Vec<Row> {
    let mut rows = Vec::new();
    for (&(name, c), v) in cells {
        if name == FLOOR {
            continue;
        }
        let Some(floor) = cells.get(&(FLOOR, c)) else {
            continue;
        };
        rows.push(Row {
            label: name,
            concurrency: c,
            floor: Figures::of(floor),
            server: Figures::of(v),
        });
    }
    rows.sort_by_key(|r| (r.label != GATEWAY, r.concurrency));
    rows
}

fn print_rows(rows: &[Row]) {
    println!(
        "{:<44} {:>4} | {:>7} {:>7} {:>5} | {:>5} {:>5} {:>5} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>5} | {:>6} {:>6} {:>5} | errors",
        "server (vs the floor)", "conc", "floor/s", "gw/s", "ratio", "fCPU", "gwCPU", "ratio",
        "fmean", "gwmean", "+µs", "fp50", "gwp50", "ratio", "fp99", "gwp99", "ratio",
    );
    for r in rows {
        r.print();
    }
    println!("(CPU = server process user+sys µs per call; latencies in µs)");
}

/// Lines of the per-call log event in a gateway log file.
fn log_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().filter(|l| l.contains("call finished")).count())
        .unwrap_or(0)
}

impl VsFloor {
    /// CPU per call and throughput at 64 callers, mean latency at 1 caller.
    pub fn check(&self, targets: &mut Targets) {
        let row = |c: usize| {
            self.rows
                .iter()
                .find(|r| r.label == GATEWAY && r.concurrency == c)
        };
        if let Some(r) = row(TARGET_CONCURRENCY) {
            let cpu = r.server.cpu_us / r.floor.cpu_us.max(1e-9);
            let rps = r.server.rps / r.floor.rps.max(1e-9);
            targets.check("gateway/floor CPU per call @64", cpu, 1.2, "×", false);
            targets.check("gateway/floor throughput @64", rps, 0.85, "×", true);
        }
        if let Some(r) = row(1) {
            let added = r.server.mean_us - r.floor.mean_us;
            targets.check("gateway − floor mean latency @1", added, 25.0, "µs", false);
        }
    }
}
