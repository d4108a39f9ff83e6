//! Printing: the direct/gateway tables, their JSON, and the targets (met or MISSED).
use serde_json::{json, Value};

use crate::measure::{round, Cell};

pub fn print_header(title: &str) {
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

pub fn lat(c: &Cell) -> String {
    format!("{}/{}/{}/{}", c.q(0.5), c.q(0.9), c.q(0.99), c.hist.max())
}

pub fn print_pair(d: &Cell, g: &Cell) {
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
        g.server_cpu_us.map_or("-".into(), |v| format!("{v:.0}µs")),
        format!("{}/{}", d.errors, g.errors),
    );
    for c in [d, g] {
        if let Some(e) = &c.first_error {
            println!("    {} first error: {e}", c.mode);
        }
    }
}

pub fn pair_json(d: &Cell, g: &Cell) -> Value {
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

/// The targets checked at the end of a run.
#[derive(Default)]
pub struct Targets {
    pub list: Vec<Value>,
}

impl Targets {
    /// Prints `[met]` or `[MISSED]` and records the target for the JSON line.
    pub fn check(
        &mut self,
        name: &str,
        value: f64,
        limit: f64,
        unit: &str,
        higher_is_better: bool,
    ) {
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
        self.list.push(
            json!({"target": name, "value": round(value, 3), "limit": limit, "unit": unit, "met": met}),
        );
    }
}
