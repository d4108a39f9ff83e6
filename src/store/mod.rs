//! The optional shared store (fleet mode): gateways that point at one Redis (or
//! Valkey) share tokens, the token endpoint's back-off, idempotency records, Atlas
//! 429 cool-downs and secret-rotation turns ([`rotation`]). Without it, all of that
//! stays in process (the embedded default).
//!
//! This file owns the connection and its health: every operation is bounded by a short
//! timeout; a failure counts in `atlas_gateway_shared_store_errors_total`, logs one
//! warning per outage, and makes callers fall back to in-process state; while the store
//! is down only one probe per `PROBE_INTERVAL` reaches it, so calls do not pay a
//! timeout each; `atlas_gateway_shared_store_up` says whether it answers (a `PING` at
//! start, then each operation). Key names and sealing live in [`seal`]; it never logs
//! the store URL's password, a key's plaintext parts or a value. [`StoreConfig`] refuses
//! URLs that would void the store's guarantees.
pub mod cooldown;
mod ping;
pub mod rotation;
pub mod seal;
pub mod sweep;
pub mod token;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use redis::{aio::ConnectionManager, AsyncCommands, Script};

use crate::{
    config::{Credentials, Profile},
    secret::Secret,
    telemetry::metrics as m,
};

/// Bound on one store round trip: past it the call goes on with in-process state.
const OP_TIMEOUT: Duration = Duration::from_millis(500);
/// While the store is down, at most one operation per interval tries it.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Deletes `KEYS[1]` only while it still holds `ARGV[1]` (lock release, compare-and-set).
const DELETE_IF_EQUAL: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
"#;

/// `--shared-store` / `ATLAS_GATEWAY_SHARED_STORE` and its namespace.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoreConfig {
    /// `redis://[user:password@]host:port[/db]` or `rediss://...`; never printed as is.
    #[serde(serialize_with = "redacted")]
    pub url: Secret,
    /// Namespace for every key (`--shared-store-prefix`).
    pub prefix: String,
}

/// Namespace of a fleet's keys when none is configured.
pub const DEFAULT_PREFIX: &str = "atlas-gw";

impl StoreConfig {
    /// `redis://` or `rediss://` with a host; the prefix is a plain word (it goes inside
    /// a Redis Cluster hash tag). Refused: `rediss://…#insecure` (no certificate
    /// check), and `redis://` to a host off this machine unless `allow_plaintext` (the
    /// password and every value would cross the network in clear). `Ok(None)`: no
    /// store. The URL is never echoed whole: it may hold a password.
    pub fn from_settings(
        url: Option<String>,
        prefix: Option<String>,
        allow_plaintext: bool,
    ) -> Result<Option<StoreConfig>, String> {
        let prefix = prefix.unwrap_or_else(|| DEFAULT_PREFIX.into());
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !prefix_ok {
            return Err(format!(
                "--shared-store-prefix must be 1-64 letters, digits, '-', '_' or '.' (got {prefix:?})"
            ));
        }
        let Some(url) = url.filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let shown = redact_url(&url);
        let parsed = reqwest::Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "redis" | "rediss") && u.host().is_some());
        let Some(parsed) = parsed else {
            return Err(format!(
                "ATLAS_GATEWAY_SHARED_STORE / --shared-store must be redis://[user:password@]host:port[/db] or rediss://... (got {shown})"
            ));
        };
        if parsed.scheme() == "rediss" && parsed.fragment() == Some("insecure") {
            return Err(format!(
                "ATLAS_GATEWAY_SHARED_STORE / --shared-store: #insecure turns off the store's certificate check; remove it and give the store a certificate this host trusts (got {shown})"
            ));
        }
        if parsed.scheme() == "redis" && !is_loopback(&parsed) && !allow_plaintext {
            return Err(format!(
                "ATLAS_GATEWAY_SHARED_STORE / --shared-store: redis:// to a host off this machine sends the password and every value in clear; use rediss://, or opt out with --allow-plaintext-shared-store / ATLAS_GATEWAY_ALLOW_PLAINTEXT_SHARED_STORE=true (got {shown})"
            ));
        }
        Ok(Some(StoreConfig {
            url: Secret::new(url),
            prefix,
        }))
    }
}

/// Whether the URL's host is this machine (`localhost` or a loopback address).
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn redacted<S: serde::Serializer>(url: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url.expose()))
}

/// The URL with any password replaced by `***` (what logs and `--check-config` show).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable URL>".into(),
    }
}

/// The store was unreachable, slow or answered an error: use in-process state.
#[derive(Debug)]
pub struct StoreDown;

/// A connection to the shared store, shared by every profile.
pub struct SharedStore {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    started: Instant,
    down: AtomicBool,
    /// Milliseconds since `started` before which no probe is sent while down.
    next_probe_ms: AtomicU64,
    delete_if_equal: Script,
}

impl SharedStore {
    /// Prepares the connection without touching the network (the first call connects),
    /// so a gateway starts and serves while Redis is down.
    pub fn new(config: &StoreConfig) -> Result<Arc<Self>, String> {
        let client = redis::Client::open(config.url.expose()).map_err(|e| {
            format!(
                "invalid shared store URL {}: {e}",
                redact_url(config.url.expose())
            )
        })?;
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| format!("cannot prepare the shared store connection: {e}"))?;
        Ok(Arc::new(Self {
            client,
            conn,
            prefix: config.prefix.clone(),
            started: Instant::now(),
            down: AtomicBool::new(false),
            next_probe_ms: AtomicU64::new(0),
            delete_if_equal: Script::new(DELETE_IF_EQUAL),
        }))
    }

    /// The namespace every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The client, for the cool-down subscription (its own connection).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The value at `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreDown> {
        let mut c = self.conn.clone();
        self.run("get", async move { c.get(key).await }).await
    }

    /// `SET key value PX ttl`.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreDown> {
        let mut c = self.conn.clone();
        let opts = redis::SetOptions::default().with_expiration(px(ttl));
        self.run("set", async move { c.set_options(key, value, opts).await })
            .await
    }

    /// `SET key value NX PX ttl`: true when this call created the key.
    pub async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreDown> {
        let mut c = self.conn.clone();
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(px(ttl));
        let set: Option<String> = self
            .run(
                "set_nx",
                async move { c.set_options(key, value, opts).await },
            )
            .await?;
        Ok(set.is_some())
    }

    /// Deletes `key` if it still holds `value`; true when it did.
    pub async fn delete_if_equal(&self, key: &str, value: &[u8]) -> Result<bool, StoreDown> {
        let mut c = self.conn.clone();
        let mut invocation = self.delete_if_equal.key(key);
        invocation.arg(value);
        let deleted: i64 = self
            .run("delete_if_equal", async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        Ok(deleted == 1)
    }

    /// Publishes `message` on `channel`.
    pub async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), StoreDown> {
        let mut c = self.conn.clone();
        self.run("publish", async move {
            c.publish::<_, _, i64>(channel, message).await.map(drop)
        })
        .await
    }

    /// Runs one round trip unless the store is known down and no probe is due.
    async fn run<T>(
        &self,
        op: &'static str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreDown> {
        if !self.may_try() {
            return Err(StoreDown);
        }
        match tokio::time::timeout(OP_TIMEOUT, fut).await {
            Ok(Ok(v)) => {
                self.answered();
                Ok(v)
            }
            Ok(Err(_)) => Err(self.failed(op, "error")),
            Err(_) => Err(self.failed(op, "timeout")),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn may_try(&self) -> bool {
        if !self.down.load(Ordering::Acquire) {
            return true;
        }
        let now = self.now_ms();
        let due = self.next_probe_ms.load(Ordering::Acquire);
        now >= due
            && self
                .next_probe_ms
                .compare_exchange(
                    due,
                    now + PROBE_INTERVAL.as_millis() as u64,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    fn answered(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            m::shared_store_up(true);
            tracing::warn!(prefix = %self.prefix, "shared store answers again; sharing state with the fleet");
        }
    }

    fn failed(&self, op: &'static str, why: &'static str) -> StoreDown {
        m::shared_store_error(op);
        self.next_probe_ms.store(
            self.now_ms() + PROBE_INTERVAL.as_millis() as u64,
            Ordering::Release,
        );
        if !self.down.swap(true, Ordering::AcqRel) {
            m::shared_store_up(false);
            tracing::warn!(prefix = %self.prefix, operation = op, error = why,
                "shared store unavailable; going on with in-process state until it answers");
        }
        StoreDown
    }
}

/// One profile's view of the store: the shared connection and the profile's sealer.
pub struct ProfileStore {
    /// The connection shared by every profile.
    pub store: Arc<SharedStore>,
    /// Key names and AEAD sealing for this profile.
    pub sealer: seal::Sealer,
}

impl SharedStore {
    /// The store as `profile` uses it: keys and seals derived from its own credentials,
    /// so replicas with the same account share entries and nobody else can read them.
    pub fn for_profile(self: &Arc<Self>, profile: &Profile) -> Arc<ProfileStore> {
        let (identity, secret) = match &profile.credentials {
            Credentials::ServiceAccount {
                client_id,
                client_secret,
            } => (
                format!("oauth\0{}\0{client_id}", profile.token_url),
                client_secret,
            ),
            Credentials::ApiKey {
                public_key,
                private_key,
            } => (
                format!("digest\0{}\0{public_key}", profile.base_url),
                private_key,
            ),
        };
        Arc::new(ProfileStore {
            store: Arc::clone(self),
            sealer: seal::Sealer::new(&self.prefix, &identity, secret.expose()),
        })
    }
}

fn px(ttl: Duration) -> redis::SetExpiry {
    redis::SetExpiry::PX(ttl.as_millis().max(1) as u64)
}

/// Milliseconds since the Unix epoch (absolute times shared between replicas).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random 50..150 ms pause, so waiters on many replicas do not poll in step.
pub fn jitter() -> Duration {
    Duration::from_millis(50 + fastrand::u64(0..100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_print_without_their_password() {
        let shown = redact_url("redis://gw:hunter2@redis:6379/0");
        assert_eq!(shown, "redis://gw:***@redis:6379/0");
        assert_eq!(redact_url("rediss://redis:6380"), "rediss://redis:6380");
        assert!(!redact_url("not a url hunter2").contains("hunter2"));
    }
}
