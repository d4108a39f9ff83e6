//! Command line: `serve`, `dev`, `emulator`, `healthcheck`, `audit-verify`. Parses arguments, builds the
//! validated `Config` before binding any socket, and runs the chosen subcommand. Bad
//! configuration prints one line and exits with status 64 (EX_USAGE); stdout closed by its
//! reader ends the process quietly ([`print_line`]). `dev` and `emulator` exist only with
//! the `emulator` feature (on by default, off in production images); without it clap
//! answers them as unknown subcommands.
use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    config::{Config, ProcessEnv, ServeArgs},
    server::{self, EX_USAGE},
};

/// gRPC sidecar for the MongoDB Atlas Admin API.
#[derive(Debug, Parser)]
#[command(name = "atlas-grpc-gateway", version, about)]
pub struct Cli {
    #[command(subcommand)]
    /// The subcommand to run.
    pub command: Command,
}

#[derive(Debug, Subcommand)]
/// The subcommands.
pub enum Command {
    /// Run the gateway against Atlas.
    Serve(Box<ServeArgs>),
    /// The gateway plus the built-in Atlas emulator on loopback, with demo credentials.
    #[cfg(feature = "emulator")]
    Dev(crate::dev::DevArgs),
    /// The Atlas emulator alone (a dev/test double), for polyglot tests.
    #[cfg(feature = "emulator")]
    Emulator(crate::emulator::EmulatorArgs),
    /// Exit 0 when the local gateway answers grpc.health.v1 SERVING, 1 otherwise.
    Healthcheck(HealthcheckArgs),
    /// Check an audit file's chain: `ok: N records` and exit 0, or the first bad line
    /// and exit 1.
    AuditVerify {
        /// The audit file (JSON Lines, as --audit-log writes it).
        path: std::path::PathBuf,
    },
}

#[derive(Debug, clap::Args)]
/// Arguments of `healthcheck`.
pub struct HealthcheckArgs {
    /// Gateway address; 0.0.0.0 and :: mean the local loopback.
    #[arg(long, env = "ATLAS_GATEWAY_LISTEN", default_value = crate::config::DEFAULT_LISTEN)]
    pub addr: SocketAddr,
    /// Service to check ("" = the whole server).
    #[arg(long, default_value = "")]
    pub service: String,
    /// CA bundle (PEM) to verify a TLS listener with; set it when the gateway serves TLS.
    #[arg(long, env = "ATLAS_GATEWAY_HEALTHCHECK_CA", hide_env_values = true)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Server name to expect in the gateway's certificate.
    #[arg(
        long,
        env = "ATLAS_GATEWAY_HEALTHCHECK_DOMAIN",
        default_value = "localhost"
    )]
    pub tls_domain: String,
    /// Client certificate and key (PEM) for an mTLS listener.
    #[arg(
        long,
        env = "ATLAS_GATEWAY_HEALTHCHECK_CERT",
        hide_env_values = true,
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,
    #[arg(
        long,
        env = "ATLAS_GATEWAY_HEALTHCHECK_KEY",
        hide_env_values = true,
        requires = "tls_cert"
    )]
    /// Client key for mTLS (with --tls-cert).
    pub tls_key: Option<std::path::PathBuf>,
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            #[cfg(feature = "emulator")]
            Command::Dev(args) => crate::dev::run(args).await,
            #[cfg(feature = "emulator")]
            Command::Emulator(args) => match crate::emulator::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("atlas-grpc-gateway emulator: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Healthcheck(args) => healthcheck(args).await,
            Command::AuditVerify { path } => audit_verify(&path),
        }
    })
}

async fn serve(args: ServeArgs) -> ExitCode {
    let config = match Config::load(&args, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("atlas-grpc-gateway: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    if args.check_config {
        print_line(&serde_json::to_string_pretty(&config).expect("serializable"));
        if args.check_credentials {
            return check_credentials(&config).await;
        }
        return ExitCode::SUCCESS;
    }
    server::run_gateway(config).await
}

/// `audit-verify PATH`: exit 0 when the chain holds, 1 at the first bad line, 74
/// (EX_IOERR) when the file cannot be opened.
fn audit_verify(path: &std::path::Path) -> ExitCode {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("atlas-grpc-gateway: cannot read {}: {e}", path.display());
            return ExitCode::from(EX_IOERR as u8);
        }
    };
    match crate::audit::verify::verify(std::io::BufReader::new(file)) {
        Ok(n) => {
            print_line(&format!("ok: {n} records"));
            ExitCode::SUCCESS
        }
        Err(bad) => {
            print_line(&format!("bad: {bad}"));
            ExitCode::FAILURE
        }
    }
}

/// `--check-credentials`: each profile checked once as readiness checks it; one line per
/// profile on stderr; exit 1 when Atlas accepted not all of them.
async fn check_credentials(config: &crate::config::Config) -> ExitCode {
    let atlas = match crate::atlas::client::AtlasClient::new(config, None) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("atlas-grpc-gateway: cannot build the Atlas HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for profile in config.profiles.keys() {
        match server::readiness::check(&atlas, profile).await {
            Ok(()) => eprintln!("profile {profile}: credentials accepted by Atlas"),
            Err(e) => {
                failed = true;
                let hint = server::readiness::what_to_check(&e);
                eprintln!("profile {profile}: Atlas did not accept the credentials: {e}; {hint}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Exit status when stdout cannot be written for another reason than a gone reader
/// (EX_IOERR).
const EX_IOERR: i32 = 74;

/// Writes `text` and a newline to stdout, for every line the CLI prints (`println!` would
/// panic with exit 101 on a closed pipe: Rust ignores SIGPIPE). When the reader has gone
/// away (`serve --check-config | head -1`) the process ends at once, quietly, with status
/// 0, as a tool stopped by SIGPIPE would stop; any other write error is one line on stderr
/// and status 74 (EX_IOERR).
pub fn print_line(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) else {
        return;
    };
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("atlas-grpc-gateway: cannot write to stdout: {e}");
    std::process::exit(EX_IOERR);
}

async fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let mut addr = args.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let check = async {
        let scheme = if args.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))?;
        if let Some(ca) = &args.tls_ca {
            use tonic::transport::{Certificate, ClientTlsConfig, Identity};
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(std::fs::read(ca)?))
                .domain_name(args.tls_domain.clone());
            if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
                tls = tls.identity(Identity::from_pem(
                    std::fs::read(cert)?,
                    std::fs::read(key)?,
                ));
            }
            endpoint = endpoint.tls_config(tls)?;
        }
        let channel = endpoint.connect().await?;
        let resp = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service,
            })
            .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(resp.into_inner().status)
    };
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(1)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("{addr}: health status {status} (not SERVING)");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("{addr}: health check failed: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("{addr}: health check timed out");
            ExitCode::FAILURE
        }
    }
}
