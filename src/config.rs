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

use crate::{secret::Secret, store::StoreConfig, validate};

mod sources;
pub use sources::{Env, MapEnv, ProcessEnv, ServeArgs};
use sources::{FileConfig, FileProfile};

pub const DEFAULT_BASE_URL: &str = "https://cloud.mongodb.com";
pub const DEFAULT_API_VERSION: &str = "2023-01-01";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
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
        client_id: String,
        client_secret: Secret,
    },
    /// HTTP Digest with a programmatic API key pair (legacy).
    ApiKey {
        public_key: String,
        private_key: Secret,
    },
}

/// One named set of credentials and policy, chosen per call with `x-atlas-profile`.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    pub name: String,
    pub base_url: String,
    pub token_url: String,
    /// RFC 7009 revocation endpoint: tokens minted without a shared store are revoked
    /// there at graceful shutdown.
    pub revoke_url: String,
    pub credentials: Credentials,
    /// Orgs this profile may act on; `None` means any.
    pub allowed_org_ids: Option<BTreeSet<String>>,
    /// Roles `CreateApiKey` may grant with this profile; `None` means any.
    pub allowed_roles: Option<BTreeSet<String>>,
    /// RPCs (`CreateApiKey`, ...) callers may use with this profile; `None` means all.
    pub allowed_rpcs: Option<BTreeSet<String>>,
    /// Bound on concurrent upstream calls made with this profile.
    pub max_in_flight: usize,
}

/// One caller bearer token; its name (the environment variable it came from) is the
/// caller's identity in logs and idempotency records.
#[derive(Clone, Debug, Serialize)]
pub struct CallerToken {
    pub name: String,
    pub token: Secret,
}

/// TLS for the gRPC listener. With `client_ca`, callers must present a certificate (mTLS).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// Everything the gateway needs, validated.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
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
    pub shutdown_grace: Duration,
    #[serde(with = "secs")]
    pub idempotency_window: Duration,
    /// Concurrent gRPC calls served before new ones are shed with RESOURCE_EXHAUSTED.
    pub max_concurrency: usize,
    /// Largest upstream response body read, in bytes.
    pub max_response_bytes: usize,
    pub tls: Option<TlsConfig>,
    /// Static bearer tokens callers must present (`authorization: Bearer ...`); empty = off.
    pub caller_tokens: Vec<CallerToken>,
    pub default_profile: String,
    pub profiles: BTreeMap<String, Profile>,
    /// Fleet mode: state shared through Redis; `None` keeps it in process.
    pub shared_store: Option<StoreConfig>,
}

mod secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
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
    let base_url = args
        .base_url
        .clone()
        .or(file.base_url)
        .unwrap_or_else(|| DEFAULT_BASE_URL.into());
    let base_url = check_url("MONGODB_ATLAS_BASE_URL / --atlas-base-url", &base_url)?;
    let token_url = match args.token_url.clone().or(file.token_url) {
        Some(u) => Some(check_url("MONGODB_ATLAS_TOKEN_URL / --token-url", &u)?),
        None => None,
    };
    let revoke_url = match args.revoke_url.clone().or(file.revoke_url) {
        Some(u) => Some(check_url("MONGODB_ATLAS_REVOKE_URL / --revoke-url", &u)?),
        None => None,
    };
    let shared_store = StoreConfig::from_settings(
        args.shared_store.clone().or(file.shared_store),
        args.shared_store_prefix
            .clone()
            .or(file.shared_store_prefix),
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
    let mut caller_tokens = Vec::new();
    for name in &file.caller_token_envs {
        match env.var(name) {
            Some(v) => caller_tokens.push(CallerToken {
                name: name.clone(),
                token: Secret::new(v),
            }),
            None => return err(format!("caller_token_envs names {name}, which is not set")),
        }
    }

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

    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
    let allow_unauthenticated_network = args
        .allow_unauthenticated_network
        .or(file.allow_unauthenticated_network)
        .unwrap_or(false);
    let mtls = tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    if !listen.ip().is_loopback()
        && caller_tokens.is_empty()
        && !mtls
        && !allow_unauthenticated_network
    {
        return err(format!("refusing to serve {listen} without caller authentication: anyone who can reach it could mint Atlas API keys. Listen on loopback (e.g. 127.0.0.1:{}), require caller tokens (caller_token_envs) or mTLS (--tls-client-ca), or opt out with --allow-unauthenticated-network / ATLAS_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK=true", listen.port()));
    }
    Ok(Config {
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
        tls,
        caller_tokens,
        default_profile,
        profiles,
        shared_store,
    })
}

struct ProfileDefaults<'a> {
    base_url: &'a str,
    token_url: Option<&'a str>,
    revoke_url: Option<&'a str>,
    client_id_flag: Option<&'a str>,
}

fn build_profile(
    name: &str,
    fp: FileProfile,
    d: &ProfileDefaults<'_>,
    env: &dyn Env,
) -> Result<Profile, ConfigError> {
    let is_default = name == DEFAULT_PROFILE;
    let base_url = match fp.base_url {
        Some(u) => check_url(&format!("profiles.{name}.base_url"), &u)?,
        None => d.base_url.to_string(),
    };
    let token_url = match (fp.token_url, d.token_url) {
        (Some(u), _) => check_url(&format!("profiles.{name}.token_url"), &u)?,
        (None, Some(u)) => u.to_string(),
        (None, None) => format!("{base_url}/api/oauth/token"),
    };
    let revoke_url = match (fp.revoke_url, d.revoke_url) {
        (Some(u), _) => check_url(&format!("profiles.{name}.revoke_url"), &u)?,
        (None, Some(u)) => u.to_string(),
        (None, None) => format!("{base_url}/api/oauth/revoke"),
    };
    // flag > environment > file. The default profile reads --client-id and the Atlas CLI
    // / Terraform variable names first (clap folds MONGODB_ATLAS_CLIENT_ID into the
    // flag), then its file settings; other profiles have only their file settings.
    let standard = |names: &[&str]| -> Option<String> {
        is_default
            .then(|| names.iter().find_map(|v| env.var(v)))
            .flatten()
    };
    let file_env = |var: &Option<String>| var.as_deref().and_then(|v| env.var(v));
    let client_id = is_default
        .then(|| d.client_id_flag.map(String::from))
        .flatten()
        .or_else(|| standard(&["MONGODB_ATLAS_CLIENT_ID"]))
        .or(fp.client_id)
        .or_else(|| file_env(&fp.client_id_env));
    let client_secret =
        standard(&["MONGODB_ATLAS_CLIENT_SECRET"]).or_else(|| file_env(&fp.client_secret_env));
    let public_key = standard(&["MONGODB_ATLAS_PUBLIC_API_KEY", "MONGODB_ATLAS_PUBLIC_KEY"])
        .or(fp.public_key)
        .or_else(|| file_env(&fp.public_key_env));
    let private_key = standard(&["MONGODB_ATLAS_PRIVATE_API_KEY", "MONGODB_ATLAS_PRIVATE_KEY"])
        .or_else(|| file_env(&fp.private_key_env));
    let hint = if is_default {
        "set MONGODB_ATLAS_CLIENT_ID and MONGODB_ATLAS_CLIENT_SECRET (service account) or MONGODB_ATLAS_PUBLIC_API_KEY and MONGODB_ATLAS_PRIVATE_API_KEY (API key)".to_string()
    } else {
        format!("set client_id(_env) and client_secret_env, or public_key(_env) and private_key_env, under [profiles.{name}]")
    };
    // A service account wins when both kinds are complete (it is Atlas's recommended method).
    let credentials = match (client_id, client_secret, public_key, private_key) {
        (Some(id), Some(secret), _, _) => Credentials::ServiceAccount {
            client_id: id,
            client_secret: Secret::new(secret),
        },
        (_, _, Some(public), Some(private)) => Credentials::ApiKey {
            public_key: public,
            private_key: Secret::new(private),
        },
        (Some(_), None, _, _) => {
            return err(format!(
                "profile {name:?}: a client id is set but no client secret; {hint}"
            ))
        }
        (None, Some(_), _, _) => {
            return err(format!(
                "profile {name:?}: a client secret is set but no client id; {hint}"
            ))
        }
        (_, _, Some(_), None) | (_, _, None, Some(_)) => {
            return err(format!(
                "profile {name:?}: API keys need both a public and a private key; {hint}"
            ))
        }
        _ => return err(format!("profile {name:?} has no Atlas credentials; {hint}")),
    };
    if let Some(orgs) = &fp.allowed_org_ids {
        if let Some(bad) = orgs.iter().find(|o| !validate::is_org_id(o)) {
            return err(format!(
                "profiles.{name}.allowed_org_ids: {bad:?} is not a 24-hex org id"
            ));
        }
    }
    if let Some(roles) = &fp.allowed_roles {
        if let Some(bad) = roles
            .iter()
            .find(|r| crate::pb::OrgRole::from_str_name(r).is_none_or(|v| v as i32 == 0))
        {
            return err(format!(
                "profiles.{name}.allowed_roles: {bad:?} is not an Atlas org role (e.g. ORG_MEMBER)"
            ));
        }
    }
    if let Some(rpcs) = &fp.allowed_rpcs {
        if let Some(bad) = rpcs
            .iter()
            .find(|r| !crate::pb::RPC_NAMES.contains(&r.as_str()))
        {
            return err(format!(
                "profiles.{name}.allowed_rpcs: {bad:?} is not an RPC of this gateway (one of {})",
                crate::pb::RPC_NAMES.join(", ")
            ));
        }
    }
    Ok(Profile {
        name: name.to_string(),
        base_url,
        token_url,
        revoke_url,
        credentials,
        allowed_org_ids: fp.allowed_org_ids,
        allowed_roles: fp.allowed_roles,
        allowed_rpcs: fp.allowed_rpcs,
        max_in_flight: positive(
            &format!("profiles.{name}.max_in_flight"),
            fp.max_in_flight.unwrap_or(256),
        )?,
    })
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
