//! Where settings come from: command-line flags and their environment variables
//! ([`ServeArgs`], filled by clap), the optional TOML file ([`FileConfig`]), and the
//! environment for credentials ([`Env`]). Nothing here validates: `config` does.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
};

use serde::Deserialize;

use super::{LogFormat, TlsConfig, TransportArgs};

/// Values from flags and environment (clap fills these; `None` = not given).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// gRPC listen address (loopback by default: a sidecar is reached over localhost).
    #[arg(long, env = "ATLAS_GATEWAY_LISTEN", hide_env_values = true)]
    pub listen: Option<SocketAddr>,
    /// Prometheus /metrics listen address, or "off".
    #[arg(long, env = "ATLAS_GATEWAY_METRICS_LISTEN", hide_env_values = true)]
    pub metrics_listen: Option<String>,
    /// Optional TOML file with settings and named profiles.
    #[arg(long, env = "ATLAS_GATEWAY_CONFIG", hide_env_values = true)]
    pub config: Option<PathBuf>,
    /// Log format (filter with RUST_LOG).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_LOG_FORMAT",
        value_enum,
        hide_env_values = true
    )]
    pub log_format: Option<LogFormat>,
    /// Atlas base URL.
    #[arg(
        long = "atlas-base-url",
        env = "MONGODB_ATLAS_BASE_URL",
        hide_env_values = true
    )]
    pub base_url: Option<String>,
    /// OAuth token URL (default {base}/api/oauth/token).
    #[arg(long, env = "MONGODB_ATLAS_TOKEN_URL", hide_env_values = true)]
    pub token_url: Option<String>,
    /// Atlas API version, sent as application/vnd.atlas.{version}+json.
    #[arg(long, env = "ATLAS_GATEWAY_API_VERSION", hide_env_values = true)]
    pub api_version: Option<String>,
    /// Service account client id (the secret comes only from MONGODB_ATLAS_CLIENT_SECRET).
    #[arg(long, env = "MONGODB_ATLAS_CLIENT_ID", hide_env_values = true)]
    pub client_id: Option<String>,
    /// Grace period for in-flight calls at shutdown (e.g. 20s).
    #[arg(long, env = "ATLAS_GATEWAY_SHUTDOWN_GRACE", hide_env_values = true)]
    pub shutdown_grace: Option<String>,
    /// How long a request_id is remembered for idempotent retries (e.g. 10m).
    #[arg(long, env = "ATLAS_GATEWAY_IDEMPOTENCY_WINDOW", hide_env_values = true)]
    pub idempotency_window: Option<String>,
    /// Upstream timeout when the caller sets no deadline (e.g. 30s).
    #[arg(long, env = "ATLAS_GATEWAY_REQUEST_TIMEOUT", hide_env_values = true)]
    pub request_timeout: Option<String>,
    /// Ceiling on one call's time, retries included, whatever deadline the caller sets
    /// (e.g. 5m).
    #[arg(long, env = "ATLAS_GATEWAY_MAX_CALL_DURATION", hide_env_values = true)]
    pub max_call_duration: Option<String>,
    /// Serve on a non-loopback address without caller tokens or mTLS (anyone who can
    /// reach it can mint Atlas API keys).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK",
        hide_env_values = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_unauthenticated_network: Option<bool>,
    /// Serve callers' bearer tokens on a non-loopback address without TLS (for a mesh
    /// that encrypts pod traffic).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_ALLOW_PLAINTEXT_CALLER_TOKENS",
        hide_env_values = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_plaintext_caller_tokens: Option<bool>,
    /// Audit trail of calls that change Atlas: a JSON Lines file, or "-" for stdout.
    #[arg(long, env = "ATLAS_GATEWAY_AUDIT_LOG", hide_env_values = true)]
    pub audit_log: Option<String>,
    /// Maximum concurrent gRPC calls before shedding load.
    #[arg(long, env = "ATLAS_GATEWAY_MAX_CONCURRENCY", hide_env_values = true)]
    pub max_concurrency: Option<usize>,
    /// TLS certificate (PEM) for the gRPC listener.
    #[arg(long, env = "ATLAS_GATEWAY_TLS_CERT", hide_env_values = true)]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the gRPC listener.
    #[arg(long, env = "ATLAS_GATEWAY_TLS_KEY", hide_env_values = true)]
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) that caller certificates must chain to (enables mTLS).
    #[arg(long, env = "ATLAS_GATEWAY_TLS_CLIENT_CA", hide_env_values = true)]
    pub tls_client_ca: Option<PathBuf>,
    /// Shared store for fleet mode: redis://host:port (or redis://user:password@host:port/db), or rediss://... for TLS
    /// Prefer the environment variable or the file: a flag value shows in `ps`.
    #[arg(long, env = "ATLAS_GATEWAY_SHARED_STORE", hide_env_values = true)]
    pub shared_store: Option<String>,
    /// Allow a plaintext `redis://` shared store on a non-loopback host (its password
    /// and every value would cross the network in clear).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_ALLOW_PLAINTEXT_SHARED_STORE",
        hide_env_values = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_plaintext_shared_store: Option<bool>,
    /// Namespace of this fleet's keys in the shared store (default atlas-gw).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_SHARED_STORE_PREFIX",
        hide_env_values = true
    )]
    pub shared_store_prefix: Option<String>,
    /// OAuth revocation URL (RFC 7009; default {base}/api/oauth/revoke).
    #[arg(long, env = "MONGODB_ATLAS_REVOKE_URL", hide_env_values = true)]
    pub revoke_url: Option<String>,
    /// How often expired leased API keys are deleted (e.g. 60s).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_LEASE_SWEEP_INTERVAL",
        hide_env_values = true
    )]
    pub lease_sweep_interval: Option<String>,
    /// Validate the configuration, print it with secrets redacted, and exit.
    #[arg(long)]
    pub check_config: bool,
    /// With --check-config: also check each profile's credentials against Atlas once
    /// (getSystemStatus), exit 1 naming each profile Atlas did not accept.
    #[arg(long, requires = "check_config")]
    pub check_credentials: bool,
    /// Limits on every gRPC connection and request.
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// The TOML file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen: Option<SocketAddr>,
    pub(super) metrics_listen: Option<String>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) base_url: Option<String>,
    pub(super) token_url: Option<String>,
    pub(super) revoke_url: Option<String>,
    pub(super) shared_store: Option<String>,
    pub(super) shared_store_prefix: Option<String>,
    pub(super) allow_plaintext_shared_store: Option<bool>,
    pub(super) api_version: Option<String>,
    pub(super) shutdown_grace: Option<String>,
    pub(super) idempotency_window: Option<String>,
    pub(super) request_timeout: Option<String>,
    pub(super) max_call_duration: Option<String>,
    pub(super) allow_unauthenticated_network: Option<bool>,
    pub(super) allow_plaintext_caller_tokens: Option<bool>,
    pub(super) audit_log: Option<String>,
    pub(super) max_concurrency: Option<usize>,
    pub(super) max_response_bytes: Option<usize>,
    // Transport limits (`transport`).
    pub(super) max_connections: Option<usize>,
    pub(super) max_concurrent_streams: Option<u32>,
    pub(super) max_local_error_reset_streams: Option<usize>,
    pub(super) max_header_list_bytes: Option<u32>,
    pub(super) max_request_bytes: Option<usize>,
    pub(super) preface_timeout: Option<String>,
    pub(super) tcp_keepalive: Option<String>,
    pub(super) http2_keepalive_interval: Option<String>,
    pub(super) http2_keepalive_timeout: Option<String>,
    pub(super) lease_sweep_interval: Option<String>,
    pub(super) tls: Option<TlsConfig>,
    /// Names of environment variables holding caller bearer tokens (callers allowed
    /// every profile; `callers` says more).
    #[serde(default)]
    pub(super) caller_token_envs: Vec<String>,
    /// `[callers.NAME]` sections.
    #[serde(default)]
    pub(super) callers: BTreeMap<String, crate::callers::CallerSection>,
    pub(super) default_profile: Option<String>,
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, FileProfile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileProfile {
    pub(super) base_url: Option<String>,
    pub(super) token_url: Option<String>,
    pub(super) revoke_url: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_id_env: Option<String>,
    pub(super) client_secret_env: Option<String>,
    pub(super) public_key: Option<String>,
    pub(super) public_key_env: Option<String>,
    pub(super) private_key_env: Option<String>,
    pub(super) allowed_org_ids: Option<BTreeSet<String>>,
    pub(super) allowed_roles: Option<BTreeSet<String>>,
    pub(super) allowed_rpcs: Option<BTreeSet<String>>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) default_key_ttl: Option<String>,
    pub(super) max_key_ttl: Option<String>,
    pub(super) lease_sweep_org_ids: Option<BTreeSet<String>>,
}

/// Reads environment variables; injectable so tests need not touch the process env.
pub trait Env {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// A fixed set of variables (for `dev` and tests).
pub struct MapEnv(pub std::collections::HashMap<String, String>);

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }
}
