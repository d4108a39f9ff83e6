//! Configuration: one validated `Config` built from flags, environment and an optional
//! TOML file before any socket is bound.
//!
//! Precedence: flag > environment variable > TOML file > built-in default. Credentials
//! use the environment names of the Atlas CLI and the Terraform provider, so existing
//! secrets work. Secrets are never read from flags (they would show in `ps`) and are
//! never printed: they are [`Secret`]s. A bad configuration is one `ConfigError` line.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::{
    audit::AuditTarget,
    callers::{self, Caller},
    secret::Secret,
    store::StoreConfig,
    validate,
};

mod lease;
mod profile;
mod sources;
mod transport;
pub use lease::LeasePolicy;
use profile::{build_profile, ProfileDefaults};
pub use sources::{Env, MapEnv, ProcessEnv, ServeArgs};
use sources::{FileConfig, FileProfile};
pub use transport::{TransportArgs, TransportLimits};

/// Atlas's public base URL.
pub const DEFAULT_BASE_URL: &str = "https://cloud.mongodb.com";
/// The Atlas API version the operations use.
pub const DEFAULT_API_VERSION: &str = "2023-01-01";
/// Where the gateway listens by default (loopback: a sidecar).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// The profile used when a call names none.
pub const DEFAULT_PROFILE: &str = "default";

/// A configuration problem, phrased as what to fix.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// How the gateway authenticates to Atlas for one profile.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credentials {
    /// OAuth2 client credentials (service account). Recommended by Atlas.
    ServiceAccount {
        /// The service account's client id.
        client_id: String,
        /// The service account's client secret.
        client_secret: Secret,
    },
    /// HTTP Digest with a programmatic API key pair (legacy).
    ApiKey {
        /// The API key's public key.
        public_key: String,
        /// The API key's private key.
        private_key: Secret,
    },
}

/// One named set of credentials and policy, chosen per call with `x-atlas-profile`.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// The profile's name (`x-atlas-profile`).
    pub name: String,
    /// Atlas base URL.
    pub base_url: String,
    /// OAuth token endpoint.
    pub token_url: String,
    /// RFC 7009 revocation endpoint: tokens minted without a shared store are revoked
    /// there at graceful shutdown.
    pub revoke_url: String,
    /// How the profile authenticates.
    pub credentials: Credentials,
    /// Orgs this profile may act on; `None` means any.
    pub allowed_org_ids: Option<BTreeSet<String>>,
    /// Roles `CreateApiKey` may grant with this profile; `None` means any.
    pub allowed_roles: Option<BTreeSet<String>>,
    /// RPCs (`CreateApiKey`, ...) callers may use with this profile; `None` means all.
    pub allowed_rpcs: Option<BTreeSet<String>>,
    /// Bound on concurrent upstream calls made with this profile.
    pub max_in_flight: usize,
    /// Leases of the keys this profile creates, and the orgs its sweeper visits.
    pub lease: LeasePolicy,
}

/// TLS for the gRPC listener. With `client_ca`, callers must present a certificate (mTLS).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TlsConfig {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    #[serde(default)]
    /// CA that signs caller certificates (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// Everything the gateway needs, validated.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Prometheus listen address; `None` when off.
    pub metrics_listen: Option<SocketAddr>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Atlas API version (`YYYY-MM-DD`).
    pub api_version: String,
    /// Upper bound for one upstream call when the caller sets no deadline.
    #[serde(with = "secs")]
    pub request_timeout: Duration,
    /// Ceiling on any call's time budget: min(this, the caller's deadline).
    #[serde(with = "secs")]
    pub max_call_duration: Duration,
    /// Serve a non-loopback address without caller authentication (explicit opt-out).
    pub allow_unauthenticated_network: bool,
    #[serde(with = "secs")]
    /// How long in-flight calls may finish after SIGTERM.
    pub shutdown_grace: Duration,
    #[serde(with = "secs")]
    /// How long a `request_id` is remembered (AIP-155).
    pub idempotency_window: Duration,
    /// Concurrent gRPC calls served before new ones are shed with RESOURCE_EXHAUSTED.
    pub max_concurrency: usize,
    /// Largest upstream response body read, in bytes.
    pub max_response_bytes: usize,
    /// TLS (and mTLS) for the listener; `None`: plaintext.
    pub tls: Option<TlsConfig>,
    /// The callers (`crate::callers`): who may call, how each proves it, which
    /// profiles each may use; empty: caller authentication off (`anonymous`).
    pub callers: Vec<Caller>,
    /// Serve bearer-token callers on a non-loopback address without TLS (opt-out).
    pub allow_plaintext_caller_tokens: bool,
    /// The audit trail of calls that change Atlas; `None`: off.
    pub audit_log: Option<AuditTarget>,
    /// The profile used when a call names none.
    pub default_profile: String,
    /// Profiles by name.
    pub profiles: BTreeMap<String, Profile>,
    /// Fleet mode: state shared through Redis; `None` keeps it in process.
    pub shared_store: Option<StoreConfig>,
    /// Readiness waits for Atlas to accept every profile's credentials (always, for a
    /// loaded configuration); off, the gateway service is SERVING at once. Tests that
    /// count each request Atlas receives turn it off.
    pub check_credentials_at_start: bool,
    /// Limits on every gRPC connection and request.
    pub transport: TransportLimits,
    #[serde(with = "secs")]
    /// How often the lease sweeper deletes expired keys.
    pub lease_sweep_interval: Duration,
}

mod secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }
}

mod secs_opt {
    use std::time::Duration;
    #[allow(clippy::ref_option)] // serde's `with` hands over `&Option<T>`
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::secs::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

impl Config {
    /// Builds and validates the configuration from flags/env and the optional file.
    pub fn load(args: &ServeArgs, env: &dyn Env) -> Result<Config, ConfigError> {
        let text = match &args.config {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!("cannot read config file {}: {e}", path.display()))
            })?),
            None => None,
        };
        let origin = args.config.as_ref().map(|p| p.display().to_string());
        Self::from_parts(
            args,
            text.as_deref(),
            origin.as_deref().unwrap_or("<inline>"),
            env,
        )
    }

    /// Builds and validates the configuration from flags/env and TOML text.
    pub fn from_parts(
        args: &ServeArgs,
        toml_text: Option<&str>,
        origin: &str,
        env: &dyn Env,
    ) -> Result<Config, ConfigError> {
        let file = match toml_text {
            Some(text) => toml::from_str::<FileConfig>(text).map_err(|e| {
                let msg = e.message().to_string();
                ConfigError(format!("invalid config file {origin}: {msg}"))
            })?,
            None => FileConfig::default(),
        };
        build(args, file, env)
    }
}

fn build(args: &ServeArgs, file: FileConfig, env: &dyn Env) -> Result<Config, ConfigError> {
    let transport = TransportLimits::from_settings(&args.transport, &file)?;
    let base_url = args
        .base_url
        .clone()
        .or(file.base_url)
        .unwrap_or_else(|| DEFAULT_BASE_URL.into());
    let base_url = check_url("MONGODB_ATLAS_BASE_URL / --atlas-base-url", &base_url)?;
    let token_url = (args.token_url.clone().or(file.token_url))
        .map(|u| check_url("MONGODB_ATLAS_TOKEN_URL / --token-url", &u))
        .transpose()?;
    let revoke_url = (args.revoke_url.clone().or(file.revoke_url))
        .map(|u| check_url("MONGODB_ATLAS_REVOKE_URL / --revoke-url", &u))
        .transpose()?;
    let shared_store = StoreConfig::from_settings(
        args.shared_store.clone().or(file.shared_store),
        args.shared_store_prefix
            .clone()
            .or(file.shared_store_prefix),
        args.allow_plaintext_shared_store
            .or(file.allow_plaintext_shared_store)
            .unwrap_or(false),
    )
    .map_err(ConfigError)?;
    let api_version = args
        .api_version
        .clone()
        .or(file.api_version)
        .unwrap_or_else(|| DEFAULT_API_VERSION.into());
    if !is_api_version(&api_version) {
        return err(format!(
            "--api-version must look like YYYY-MM-DD (got {api_version:?})"
        ));
    }
    let metrics_listen = match args.metrics_listen.clone().or(file.metrics_listen) {
        None => None,
        Some(v) if v == "off" || v.is_empty() => None,
        Some(v) => Some(v.parse().map_err(|_| {
            ConfigError(format!(
                "--metrics-listen must be host:port or \"off\" (got {v:?})"
            ))
        })?),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        (None, None) if args.tls_client_ca.is_none() => file.tls,
        _ => return err("TLS needs both --tls-cert and --tls-key"),
    };
    let defaults = ProfileDefaults {
        base_url: &base_url,
        token_url: token_url.as_deref(),
        revoke_url: revoke_url.as_deref(),
        client_id_flag: args.client_id.as_deref(),
    };
    let mut profiles = BTreeMap::new();
    for (name, fp) in file.profiles {
        if name.is_empty() || name.chars().count() > validate::MAX_ECHO_CHARS {
            return err(format!(
                "profile names must be 1 to {} characters (got {:?})",
                validate::MAX_ECHO_CHARS,
                validate::echo(&name)
            ));
        }
        let profile = build_profile(&name, fp, &defaults, env)?;
        profiles.insert(name, profile);
    }
    let default_profile = file
        .default_profile
        .unwrap_or_else(|| DEFAULT_PROFILE.into());
    if !profiles.contains_key(&default_profile) {
        if default_profile != DEFAULT_PROFILE {
            return err(format!(
                "default_profile {default_profile:?} is not defined under [profiles]"
            ));
        }
        let p = build_profile(DEFAULT_PROFILE, FileProfile::default(), &defaults, env)?;
        profiles.insert(p.name.clone(), p);
    }

    let mtls = tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    let names = profiles.keys().map(String::as_str).collect();
    let callers = callers::build(file.callers, &file.caller_token_envs, &names, mtls, env)
        .map_err(ConfigError)?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
    let allow_unauthenticated_network = args
        .allow_unauthenticated_network
        .or(file.allow_unauthenticated_network)
        .unwrap_or(false);
    if !listen.ip().is_loopback() && callers.is_empty() && !mtls && !allow_unauthenticated_network {
        return err(format!("refusing to serve {listen} without caller authentication: anyone who can reach it could mint Atlas API keys. Listen on loopback (e.g. 127.0.0.1:{}), declare callers ([callers.NAME]) or require mTLS (--tls-client-ca), or opt out with --allow-unauthenticated-network / ATLAS_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK=true", listen.port()));
    }
    let allow_plaintext_caller_tokens = (args.allow_plaintext_caller_tokens)
        .or(file.allow_plaintext_caller_tokens)
        .unwrap_or(false);
    let tls_on = tls.is_some();
    callers::refuse_plaintext_tokens(listen, tls_on, &callers, allow_plaintext_caller_tokens)
        .map_err(ConfigError)?;
    let config = Config {
        check_credentials_at_start: true,
        listen,
        allow_unauthenticated_network,
        metrics_listen,
        log_format: args.log_format.or(file.log_format).unwrap_or_default(),
        api_version,
        request_timeout: duration(
            "request_timeout",
            args.request_timeout.clone().or(file.request_timeout),
            "30s",
        )?,
        max_call_duration: duration(
            "max_call_duration",
            args.max_call_duration.clone().or(file.max_call_duration),
            "5m",
        )?,
        shutdown_grace: duration(
            "shutdown_grace",
            args.shutdown_grace.clone().or(file.shutdown_grace),
            "20s",
        )?,
        idempotency_window: duration(
            "idempotency_window",
            args.idempotency_window.clone().or(file.idempotency_window),
            "10m",
        )?,
        max_concurrency: positive(
            "max_concurrency",
            args.max_concurrency
                .or(file.max_concurrency)
                .unwrap_or(1024),
        )?,
        max_response_bytes: positive(
            "max_response_bytes",
            file.max_response_bytes.unwrap_or(1024 * 1024),
        )?,
        allow_plaintext_caller_tokens,
        audit_log: args
            .audit_log
            .clone()
            .or(file.audit_log)
            .map(AuditTarget::from),
        tls,
        callers,
        default_profile,
        profiles,
        shared_store,
        transport,
        lease_sweep_interval: lease_sweep_interval(
            args.lease_sweep_interval
                .clone()
                .or(file.lease_sweep_interval),
        )?,
    };
    check_idempotency_window(&config)?;
    Ok(config)
}

/// Margin an idempotency claim outlives the longest call by.
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// Refuses an `idempotency_window` that a call could outlive: its claim would expire
/// mid-call and a retry would create a second time.
fn check_idempotency_window(config: &Config) -> Result<(), ConfigError> {
    let least = config.max_call_duration + CLAIM_MARGIN;
    if config.idempotency_window < least {
        return err(format!(
            "idempotency_window ({}) must be at least max_call_duration + 5s ({}): a request_id claim must outlive the call it guards",
            humantime::format_duration(config.idempotency_window),
            humantime::format_duration(least)
        ));
    }
    Ok(())
}

fn check_url(what: &str, url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    // Never echo a value that may carry credentials (user:password@host).
    let shown = if url.contains('@') { "<redacted>" } else { url };
    match reqwest::Url::parse(trimmed) {
        Ok(u) if !u.username().is_empty() || u.password().is_some() => err(format!(
            "{what} must not contain credentials; use the MONGODB_ATLAS_* credential variables"
        )),
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => {
            Ok(trimmed.to_string())
        }
        _ => err(format!(
            "{what} must be an http(s) URL such as {DEFAULT_BASE_URL} (got {shown:?})"
        )),
    }
}

fn is_api_version(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn lease_sweep_interval(value: Option<String>) -> Result<Duration, ConfigError> {
    let interval = duration("lease_sweep_interval", value, "60s")?;
    if interval.is_zero() {
        return err("lease_sweep_interval must be greater than 0");
    }
    Ok(interval)
}

fn positive(what: &str, v: usize) -> Result<usize, ConfigError> {
    if v == 0 {
        return err(format!("{what} must be greater than 0"));
    }
    Ok(v)
}

fn duration(what: &str, value: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let v = value.unwrap_or_else(|| default.into());
    parse_duration(&v).ok_or_else(|| {
        ConfigError(format!(
            "{what} must be a duration such as 500ms, 20s, 10m or 1h 30m (got {v:?})"
        ))
    })
}

/// Parses a duration: `500ms`, `20s`, `10m`, `1h 30m` (humantime) or a bare number of
/// seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok().map(Duration::from_secs);
    }
    humantime::parse_duration(s).ok()
}

#[cfg(test)]
mod tests;
