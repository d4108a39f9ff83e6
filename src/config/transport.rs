//! The transport limits' settings (contract: "Transport limits"): their flags and
//! environment variables ([`TransportArgs`]), their top-level TOML keys (in the file's
//! shape, `sources`), their defaults and checks, and the validated [`TransportLimits`]
//! the listener and the HTTP/2 server apply. It never applies a limit itself.
use std::time::Duration;

use serde::Serialize;

use super::{err, parse_duration, sources::FileConfig, ConfigError};

/// Transport limits from flags and environment (`None` = not given).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TransportArgs {
    /// Open gRPC connections at most; past it new ones are closed at once (default 1024).
    #[arg(long, env = "ATLAS_GATEWAY_MAX_CONNECTIONS", hide_env_values = true)]
    pub max_connections: Option<usize>,
    /// Concurrent HTTP/2 streams per connection (default 256).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_MAX_CONCURRENT_STREAMS",
        hide_env_values = true
    )]
    pub max_concurrent_streams: Option<u32>,
    /// Streams a connection may make the gateway reset before it is closed (default 1024).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_MAX_LOCAL_ERROR_RESET_STREAMS",
        hide_env_values = true
    )]
    pub max_local_error_reset_streams: Option<usize>,
    /// Largest request header list, in bytes (default 16384).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_MAX_HEADER_LIST_BYTES",
        hide_env_values = true
    )]
    pub max_header_list_bytes: Option<u32>,
    /// Largest request message, in bytes (default 1048576).
    #[arg(long, env = "ATLAS_GATEWAY_MAX_REQUEST_BYTES", hide_env_values = true)]
    pub max_request_bytes: Option<usize>,
    /// Time for a new connection's TLS handshake and HTTP/2 preface (default 10s).
    #[arg(long, env = "ATLAS_GATEWAY_PREFACE_TIMEOUT", hide_env_values = true)]
    pub preface_timeout: Option<String>,
    /// Idle time before TCP keepalive probes on accepted connections (default 60s).
    #[arg(long, env = "ATLAS_GATEWAY_TCP_KEEPALIVE", hide_env_values = true)]
    pub tcp_keepalive: Option<String>,
    /// Interval of HTTP/2 keepalive pings (default 30s).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_HTTP2_KEEPALIVE_INTERVAL",
        hide_env_values = true
    )]
    pub http2_keepalive_interval: Option<String>,
    /// How long an HTTP/2 keepalive ping may go unanswered before the connection is
    /// closed (default 10s).
    #[arg(
        long,
        env = "ATLAS_GATEWAY_HTTP2_KEEPALIVE_TIMEOUT",
        hide_env_values = true
    )]
    pub http2_keepalive_timeout: Option<String>,
}

/// The limits every gRPC connection and request is held to (health and reflection too).
#[derive(Clone, Debug, Serialize)]
pub struct TransportLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// hyper's local-reset flood guard: resets a connection may cause before GOAWAY.
    pub max_local_error_reset_streams: usize,
    /// Largest header list, in bytes.
    pub max_header_list_bytes: u32,
    /// Largest decoded request message, in bytes.
    pub max_request_bytes: usize,
    /// Deadline for the TLS handshake and the HTTP/2 preface of a new connection.
    #[serde(with = "super::secs")]
    pub preface_timeout: Duration,
    /// Idle time before TCP keepalive probes.
    #[serde(with = "super::secs")]
    pub tcp_keepalive: Duration,
    /// HTTP/2 keepalive ping interval.
    #[serde(with = "super::secs")]
    pub http2_keepalive_interval: Duration,
    /// HTTP/2 keepalive ping timeout.
    #[serde(with = "super::secs")]
    pub http2_keepalive_timeout: Duration,
}

impl Default for TransportLimits {
    /// The contract's defaults.
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_concurrent_streams: 256,
            max_local_error_reset_streams: 1024,
            max_header_list_bytes: 16 * 1024,
            max_request_bytes: 1024 * 1024,
            preface_timeout: Duration::from_secs(10),
            tcp_keepalive: Duration::from_secs(60),
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
        }
    }
}

impl TransportLimits {
    /// Flag or environment, else the file, else the default; each must be above zero.
    pub(super) fn from_settings(
        args: &TransportArgs,
        file: &FileConfig,
    ) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            max_connections: count(
                "max_connections",
                args.max_connections.or(file.max_connections),
                d.max_connections,
            )?,
            max_concurrent_streams: count(
                "max_concurrent_streams",
                args.max_concurrent_streams.or(file.max_concurrent_streams),
                d.max_concurrent_streams,
            )?,
            max_local_error_reset_streams: count(
                "max_local_error_reset_streams",
                (args.max_local_error_reset_streams).or(file.max_local_error_reset_streams),
                d.max_local_error_reset_streams,
            )?,
            max_header_list_bytes: count(
                "max_header_list_bytes",
                args.max_header_list_bytes.or(file.max_header_list_bytes),
                d.max_header_list_bytes,
            )?,
            max_request_bytes: count(
                "max_request_bytes",
                args.max_request_bytes.or(file.max_request_bytes),
                d.max_request_bytes,
            )?,
            preface_timeout: time(
                "preface_timeout",
                args.preface_timeout
                    .as_ref()
                    .or(file.preface_timeout.as_ref()),
                d.preface_timeout,
            )?,
            tcp_keepalive: time(
                "tcp_keepalive",
                args.tcp_keepalive.as_ref().or(file.tcp_keepalive.as_ref()),
                d.tcp_keepalive,
            )?,
            http2_keepalive_interval: time(
                "http2_keepalive_interval",
                (args.http2_keepalive_interval.as_ref()).or(file.http2_keepalive_interval.as_ref()),
                d.http2_keepalive_interval,
            )?,
            http2_keepalive_timeout: time(
                "http2_keepalive_timeout",
                (args.http2_keepalive_timeout.as_ref()).or(file.http2_keepalive_timeout.as_ref()),
                d.http2_keepalive_timeout,
            )?,
        })
    }
}

fn count<T: Default + PartialEq>(
    what: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        Some(v) if v == T::default() => err(format!("{what} must be greater than 0")),
        v => Ok(v.unwrap_or(default)),
    }
}

fn time(what: &str, value: Option<&String>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(text) = value else {
        return Ok(default);
    };
    match parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => err(format!(
            "{what} must be a duration above zero such as 500ms, 10s or 1m (got {text:?})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{Config, MapEnv, ServeArgs};

    fn load(transport: TransportArgs, toml: &str) -> Result<TransportLimits, ConfigError> {
        let args = ServeArgs {
            transport,
            ..ServeArgs::default()
        };
        let env = MapEnv(HashMap::from([
            ("MONGODB_ATLAS_CLIENT_ID".into(), "mdb_sa_id_x".into()),
            ("MONGODB_ATLAS_CLIENT_SECRET".into(), "s3cret".into()),
        ]));
        Config::from_parts(&args, Some(toml), "test.toml", &env).map(|c| c.transport)
    }

    #[test]
    fn the_contract_defaults_then_file_then_flag() {
        let d = load(TransportArgs::default(), "").unwrap();
        assert_eq!(
            (
                d.max_connections,
                d.max_concurrent_streams,
                d.max_request_bytes
            ),
            (1024, 256, 1 << 20)
        );
        assert_eq!(d.max_header_list_bytes, 16 * 1024);
        assert_eq!(d.preface_timeout, Duration::from_secs(10));
        let file = "max_connections = 8\npreface_timeout = \"1s\"";
        let l = load(TransportArgs::default(), file).unwrap();
        assert_eq!(
            (l.max_connections, l.preface_timeout),
            (8, Duration::from_secs(1))
        );
        let flags = TransportArgs {
            max_connections: Some(9),
            ..TransportArgs::default()
        };
        assert_eq!(load(flags, file).unwrap().max_connections, 9);
    }

    #[test]
    fn zero_is_refused_naming_the_setting() {
        for toml in ["max_concurrent_streams = 0", "preface_timeout = \"0s\""] {
            let e = load(TransportArgs::default(), toml)
                .unwrap_err()
                .to_string();
            let name = toml.split(' ').next().unwrap();
            assert!(e.contains(name), "{e}");
        }
    }
}
