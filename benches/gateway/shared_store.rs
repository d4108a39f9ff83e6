//! The `shared store` row (issue 11, item 10): CreateLinkToken, upstream 0 ms, on the
//! shipped defaults of `serve`, without and with the fleet store
//! (`ATLAS_GATEWAY_SHARED_STORE` pointing at a real `redis-server` this bench starts on a
//! free loopback port), the cells interleaved like the floor's. Reports the CPU per call
//! ratio (target ≤ 1.1×) and the p50 difference (target ≤ 50 µs), and reads Redis's
//! `INFO commandstats` before and after the cells: a call whose token is held locally
//! sends Redis no command, so the count must stay 0. The server comes from the test
//! harness (`tests/common/redis_server.rs`: the `PATH`, else a fetched `valkey-server`).
use std::{collections::BTreeMap, sync::Arc};

use serde_json::{json, Value};

use crate::{
    callers::{Caller, Gateway},
    child::{spawn_gateway, GatewaySpec},
    measure::{round, Bench},
    redis_server::RedisServer,
    report::Targets,
    settings::Rpc,
    vs_floor::{interleave, Figures, Server},
};

const SCENARIO: &str = "shared store: CreateLinkToken, upstream 0 ms";
const LOCAL: &str = "no store";
const SHARED: &str = "shared store (Redis)";

/// What the shared-store comparison measured.
pub struct SharedStoreRow {
    /// (concurrency, without the store, with it).
    rows: Vec<(usize, Figures, Figures)>,
    /// Redis commands sent while the cells ran, by command (our own `INFO` left out).
    commands: BTreeMap<String, u64>,
    /// Redis commands before the cells (start-up, the first call's token): the store
    /// was in use.
    setup: BTreeMap<String, u64>,
    pub json: Value,
}

/// Commands processed so far, by name (`INFO commandstats`: `cmdstat_get:calls=3,...`).
async fn command_stats(c: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(c)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// The concurrencies of the row: 1 and 64 callers where the run measures them.
fn concurrencies(all: &[usize]) -> Vec<usize> {
    let wanted: Vec<usize> = all
        .iter()
        .copied()
        .filter(|c| [1, 64].contains(c))
        .collect();
    match wanted.is_empty() {
        true => all.iter().copied().take(1).collect(),
        false => wanted,
    }
}

/// Runs the row (the test harness provides the Redis-protocol server).
pub async fn run(bench: &Bench<'_>) -> SharedStoreRow {
    let s = bench.settings;
    bench.emulator.clear_faults();
    let redis = RedisServer::start().await;
    let shipped = |name: &str| GatewaySpec::shipped(bench.dir.join(name));
    let local = spawn_gateway(&bench.base, &shipped("gateway-no-store.log")).await;
    let spec = GatewaySpec {
        shared_store: Some(redis.url()),
        ..shipped("gateway-shared-store.log")
    };
    let shared = spawn_gateway(&bench.base, &spec).await;
    let mut servers = Vec::new();
    for (name, process) in [(LOCAL, &local), (SHARED, &shared)] {
        let gateway = Gateway::connect(process.addr, s.channels, None).await;
        // The first call takes the token (through Redis for the shared one): not measured.
        gateway
            .call(0, Rpc::CreateLinkToken)
            .await
            .expect("first call");
        let caller = Arc::new(Caller::Gateway(gateway));
        servers.push(Server::new(name, process, caller));
    }
    let mut stats = redis.connection().await.expect("connect to redis-server");
    let before = command_stats(&mut stats).await;
    let plan = concurrencies(&s.concurrency);
    println!(
        "\n## {SCENARIO}: {} interleaved round(s), medians",
        s.floor_rounds
    );
    let cells = interleave(bench, SCENARIO, &servers, &plan, s.floor_rounds).await;
    let after = command_stats(&mut stats).await;
    let commands: BTreeMap<String, u64> = after
        .into_iter()
        .filter(|(name, _)| name != "info")
        .filter_map(|(name, n)| {
            let sent = n - before.get(&name).copied().unwrap_or(0);
            (sent > 0).then_some((name, sent))
        })
        .collect();
    drop(servers);
    drop((local, shared));
    let rows: Vec<(usize, Figures, Figures)> = plan
        .iter()
        .map(|&c| {
            let of = |name| Figures::of(&cells[&(name, c)]);
            (c, of(LOCAL), of(SHARED))
        })
        .collect();
    let setup = before
        .into_iter()
        .filter(|(name, _)| name != "info")
        .collect();
    let row = SharedStoreRow::new(rows, commands, setup);
    row.print();
    row
}

impl SharedStoreRow {
    fn new(
        rows: Vec<(usize, Figures, Figures)>,
        commands: BTreeMap<String, u64>,
        setup: BTreeMap<String, u64>,
    ) -> Self {
        let json = json!({
            "rows": rows.iter().map(|(c, local, shared)| json!({
                "concurrency": c,
                "no_store": local.json(),
                "shared_store": shared.json(),
                "cpu_ratio": round(shared.cpu_us / local.cpu_us.max(1e-9), 3),
                "p50_diff_us": shared.p50_us - local.p50_us,
            })).collect::<Vec<_>>(),
            "redis_commands_during_cells": commands,
            "redis_commands_before_cells": setup,
        });
        SharedStoreRow {
            rows,
            commands,
            setup,
            json,
        }
    }

    fn print(&self) {
        println!(
            "{:>4} | {:>8} {:>8} | {:>6} {:>6} {:>5} | {:>7} {:>7} {:>6} | {:>7} {:>7} | errors",
            "conc",
            "local/s",
            "store/s",
            "lCPU",
            "sCPU",
            "ratio",
            "lp50",
            "sp50",
            "+µs",
            "lp99",
            "sp99"
        );
        for (c, l, s) in &self.rows {
            println!(
                "{c:>4} | {:>8.0} {:>8.0} | {:>6.0} {:>6.0} {:>5.2} | {:>7.0} {:>7.0} {:>+6.0} | {:>7.0} {:>7.0} | {}/{}",
                l.rps, s.rps, l.cpu_us, s.cpu_us, s.cpu_us / l.cpu_us.max(1e-9),
                l.p50_us, s.p50_us, s.p50_us - l.p50_us, l.p99_us, s.p99_us, l.errors, s.errors,
            );
        }
        println!(
            "(CPU = gateway process user+sys µs per call; latencies in µs) Redis commands while the cells ran (INFO commandstats, this bench's INFO left out): {}",
            match self.commands.is_empty() {
                true => "none".to_string(),
                false => format!("{:?}", self.commands),
            }
        );
        println!(
            "Redis commands before the cells (start-up and the first call, which took the fleet's token): {:?}",
            self.setup
        );
    }

    /// CPU per call within 1.1× at the highest concurrency, p50 within 50 µs at the
    /// lowest (where it is the gateway's own time, not queueing), no Redis command.
    pub fn check(&self, targets: &mut Targets) {
        if let Some((c, l, s)) = self.rows.last() {
            let name = format!("shared store/no store CPU per call @{c}");
            targets.check(&name, s.cpu_us / l.cpu_us.max(1e-9), 1.1, "×", false);
        }
        if let Some((c, l, s)) = self.rows.first() {
            let name = format!("shared store − no store p50 @{c}");
            targets.check(&name, s.p50_us - l.p50_us, 50.0, "µs", false);
        }
        let sent: u64 = self.commands.values().sum();
        targets.check(
            "Redis commands during the shared-store cells",
            sent as f64,
            0.0,
            "",
            false,
        );
    }
}
