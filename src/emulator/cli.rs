//! `atlas-grpc-gateway emulator`: the emulator as a standalone process for polyglot tests.
//!
//! Parses [`EmulatorArgs`], starts the emulator, prints one line with its base URL, the demo
//! org id and the demo credentials (demo values only, never real secrets), and serves until
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use super::{
    DigestAlgorithm, Emulator, EmulatorConfig, Fault, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
    DEMO_ORG_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
};

/// Command-line arguments of the `emulator` subcommand.
#[derive(clap::Args, Debug)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, env = "ATLAS_EMULATOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Lifetime of issued access tokens, in seconds (their `expires_in`).
    #[arg(long, default_value_t = 3600)]
    pub token_lifetime: u64,
    /// Digest algorithm of the API-key challenge.
    #[arg(long, value_enum, default_value = "md5")]
    pub digest_algorithm: DigestAlgorithm,
    /// Token requests served per minute (Atlas: 10, later 50); more answer 429. Default: unlimited.
    #[arg(long)]
    pub token_rate_limit: Option<u32>,
    /// Active (unexpired, unrevoked) tokens at once (Atlas: 100); one more answers 403.
    #[arg(long)]
    pub max_active_tokens: Option<u32>,
    /// A fault rule, as JSON (same shape as `POST /__emulator/faults`); repeatable.
    #[arg(long = "fault", value_name = "JSON", value_parser = parse_fault)]
    pub faults: Vec<Fault>,
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    serde_json::from_str(text).map_err(|e| format!("invalid fault JSON: {e}"))
}

/// Runs the emulator until Ctrl-C or SIGTERM.
pub async fn run(args: EmulatorArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config = EmulatorConfig {
        token_lifetime: Duration::from_secs(args.token_lifetime),
        digest_algorithm: args.digest_algorithm,
        limits: super::Limits {
            token_requests_per_minute: args.token_rate_limit,
            max_active_tokens: args.max_active_tokens,
        },
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config, args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    for fault in args.faults {
        emulator.inject(fault);
    }
    crate::cli::print_line(&format!(
        "atlas emulator listening on {} (org {DEMO_ORG_ID}; service account {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}; API key {DEMO_PUBLIC_KEY} / {DEMO_PRIVATE_KEY}; control API {}/__emulator/counters)",
        emulator.base_url(),
        emulator.base_url(),
    ));
    wait_for_signal().await?;
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn args_parse_faults_and_algorithm() {
        let cli = Cli::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--digest-algorithm",
            "sha-256",
            "--fault",
            r#"{"route":"token","action":{"kind":"reset"}}"#,
            "--fault",
            r#"{"route":"any","times":1,"action":{"kind":"latency","millis":5}}"#,
        ])
        .unwrap();
        assert_eq!(cli.args.digest_algorithm, DigestAlgorithm::Sha256);
        assert_eq!(cli.args.faults.len(), 2);
        assert_eq!(cli.args.token_lifetime, 3600);
    }

    #[test]
    fn bad_fault_json_is_refused() {
        assert!(Cli::try_parse_from(["x", "--fault", "{"]).is_err());
    }
}
