//! Callers: who may call the gateway, how each proves it, and which profiles each may
//! use. Owns the `[callers.NAME]` settings (validated into [`Caller`]s, with the flat
//! `caller_token_envs` as callers allowed every profile), and [`CallerAuth`], the
//! interceptor that names the caller of every gateway call ([`CallerIdentity`]) from its
//! bearer token or its mTLS client certificate (exact URI or DNS SAN). It refuses a call
//! it cannot name; it never decides what a named caller may do (that is
//! `grpc::policy`) and never prints a token.
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, OnceLock},
};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use crate::{config::Env, grpc::status::CallerRefused, secret::Secret};

/// The caller's name when no caller authentication is configured.
pub const ANONYMOUS: &str = "anonymous";

/// One `[callers.NAME]` section of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerSection {
    token_env: Option<String>,
    mtls_identity: Option<String>,
    #[serde(default)]
    profiles: Vec<String>,
    default_profile: Option<String>,
}

/// One configured caller, validated.
#[derive(Clone, Debug, Serialize)]
pub struct Caller {
    /// The caller's name: logs, spans, metrics, audit records, idempotency scope.
    pub name: String,
    /// The bearer token it presents (`authorization: Bearer ...`), if any.
    pub token: Option<Secret>,
    /// The URI or DNS SAN its client certificate carries, if any.
    pub mtls_identity: Option<String>,
    /// The profiles it may use; `None`: every profile (`"*"`).
    pub profiles: Option<BTreeSet<String>>,
    /// The profile a call without `x-atlas-profile` uses; `None`: the gateway's default.
    pub default_profile: Option<String>,
    /// Declared in the flat `caller_token_envs` list (the gateway warns at start).
    pub flat: bool,
}

impl Caller {
    /// A caller from the flat `caller_token_envs` list: named after its variable,
    /// allowed every profile.
    pub fn flat(variable: &str, token: Secret) -> Self {
        Self {
            name: variable.to_string(),
            token: Some(token),
            mtls_identity: None,
            profiles: None,
            default_profile: None,
            flat: true,
        }
    }
}

/// Builds the callers from the TOML sections and the flat token list. `profiles` are
/// the configured profile names; `mtls` whether the listener asks for client
/// certificates.
pub fn build(
    sections: BTreeMap<String, CallerSection>,
    flat_token_envs: &[String],
    profiles: &BTreeSet<&str>,
    mtls: bool,
    env: &dyn Env,
) -> Result<Vec<Caller>, String> {
    let mut callers = Vec::new();
    for name in flat_token_envs {
        let token = env
            .var(name)
            .ok_or_else(|| format!("caller_token_envs names {name}, which is not set"))?;
        callers.push(Caller::flat(name, Secret::new(token)));
    }
    for (name, section) in sections {
        callers.push(build_one(name, section, profiles, mtls, env)?);
    }
    Ok(callers)
}

fn build_one(
    name: String,
    s: CallerSection,
    profiles: &BTreeSet<&str>,
    mtls: bool,
    env: &dyn Env,
) -> Result<Caller, String> {
    let at = format!("callers.{name}");
    let valid_name = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(valid_name) || name == ANONYMOUS {
        return Err(format!("{at}: a caller name is 1 to 64 letters, digits, '-', '_' or '.', and not {ANONYMOUS:?}"));
    }
    if s.token_env.is_none() && s.mtls_identity.is_none() {
        return Err(format!("{at} needs token_env or mtls_identity (or both)"));
    }
    if s.mtls_identity.is_some() && !mtls {
        return Err(format!(
            "{at}.mtls_identity needs an mTLS listener (--tls-client-ca)"
        ));
    }
    let token = match &s.token_env {
        Some(var) => {
            Some(Secret::new(env.var(var).ok_or_else(|| {
                format!("{at}.token_env names {var}, which is not set")
            })?))
        }
        None => None,
    };
    if s.profiles.is_empty() {
        return Err(format!(
            "{at}.profiles is required: the profiles it may use, or [\"*\"]"
        ));
    }
    let every = s.profiles.iter().any(|p| p == "*");
    if let Some(unknown) = (s.profiles.iter()).find(|p| *p != "*" && !profiles.contains(p.as_str()))
    {
        return Err(format!(
            "{at}.profiles names {unknown:?}, which is not under [profiles]"
        ));
    }
    let default_profile = s
        .default_profile
        .or_else(|| (!every).then(|| s.profiles[0].clone()));
    if let Some(d) = &default_profile {
        if !profiles.contains(d.as_str()) || !(every || s.profiles.contains(d)) {
            return Err(format!(
                "{at}.default_profile {d:?} is not one of its profiles"
            ));
        }
    }
    Ok(Caller {
        name,
        token,
        mtls_identity: s.mtls_identity,
        profiles: (!every).then(|| s.profiles.into_iter().collect()),
        default_profile,
        flat: false,
    })
}

/// Bearer tokens in clear on a network: a non-loopback listener without TLS whose
/// callers send tokens is refused, unless `allowed` (a mesh that encrypts pod traffic).
pub fn refuse_plaintext_tokens(
    listen: std::net::SocketAddr,
    tls: bool,
    callers: &[Caller],
    allowed: bool,
) -> Result<(), String> {
    let tokens = callers.iter().any(|c| c.token.is_some());
    if tokens && !tls && !listen.ip().is_loopback() && !allowed {
        return Err(format!("refusing to serve {listen} without TLS: callers send bearer tokens, which would cross the network in clear. Serve TLS (--tls-cert, --tls-key) or, where the network encrypts pod traffic (a service mesh), opt out with --allow-plaintext-caller-tokens / ATLAS_GATEWAY_ALLOW_PLAINTEXT_CALLER_TOKENS=true"));
    }
    Ok(())
}

/// Who a call comes from, as [`CallerAuth`] established it (a request extension).
#[derive(Clone, Debug)]
pub struct CallerIdentity {
    caller: Arc<Caller>,
    /// What scopes the caller's idempotency records: its name, or for an anonymous
    /// mTLS caller its certificate's digest.
    scope: Arc<str>,
}

impl CallerIdentity {
    /// The caller of a gateway without caller authentication.
    pub fn anonymous() -> Self {
        static ANON: OnceLock<CallerIdentity> = OnceLock::new();
        ANON.get_or_init(|| CallerIdentity {
            caller: Arc::new(Caller {
                name: ANONYMOUS.into(),
                token: None,
                mtls_identity: None,
                profiles: None,
                default_profile: None,
                flat: false,
            }),
            scope: Arc::from(""),
        })
        .clone()
    }

    fn named(caller: &Arc<Caller>) -> Self {
        Self {
            caller: Arc::clone(caller),
            scope: Arc::from(caller.name.as_str()),
        }
    }

    /// The caller's name (`anonymous` without caller authentication).
    pub fn name(&self) -> &str {
        &self.caller.name
    }

    /// The caller's idempotency scope.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The configured caller.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }
}

/// The interceptor in front of the gateway service: names the caller of every call
/// (an extension the service reads), or refuses the call. Health and reflection stay
/// open for probes and tooling.
#[derive(Clone)]
pub struct CallerAuth {
    callers: Arc<[Arc<Caller>]>,
    by_certificate: bool,
}

impl CallerAuth {
    /// Names callers among these.
    pub fn new(callers: &[Caller]) -> Self {
        Self {
            callers: callers.iter().cloned().map(Arc::new).collect(),
            by_certificate: callers.iter().any(|c| c.mtls_identity.is_some()),
        }
    }

    fn identify(&self, req: &Request<()>) -> Result<CallerIdentity, CallerRefused> {
        if self.callers.is_empty() {
            return Ok(anonymous_certificate(req).unwrap_or_else(CallerIdentity::anonymous));
        }
        if self.by_certificate {
            if let Some(c) = self.by_san(req) {
                return Ok(CallerIdentity::named(c));
            }
        }
        let presented = (req.metadata().get("authorization"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(t) => (self.callers.iter())
                .find(|c| {
                    c.token
                        .as_ref()
                        .is_some_and(|s| s.expose().as_bytes().ct_eq(t.as_bytes()).into())
                })
                .map(CallerIdentity::named)
                .ok_or(CallerRefused::TokenNotAllowed),
            None if self.by_certificate && req.peer_certs().is_some() => {
                Err(CallerRefused::CertificateNotAllowed)
            }
            None => Err(CallerRefused::Unauthenticated),
        }
    }

    /// The caller whose `mtls_identity` is a URI or DNS SAN of the client certificate.
    fn by_san(&self, req: &Request<()>) -> Option<&Arc<Caller>> {
        use x509_parser::{extensions::GeneralName, prelude::FromDer};
        let certs = req.peer_certs()?;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(certs.first()?).ok()?;
        let san = cert.subject_alternative_name().ok()??;
        san.value.general_names.iter().find_map(|name| {
            let name = match name {
                GeneralName::URI(u) => *u,
                GeneralName::DNSName(d) => *d,
                _ => return None,
            };
            self.callers
                .iter()
                .find(|c| c.mtls_identity.as_deref() == Some(name))
        })
    }
}

impl tonic::service::Interceptor for CallerAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let identity = self.identify(&req)?;
        req.extensions_mut().insert(identity);
        Ok(req)
    }
}

/// An anonymous caller scoped by its mTLS client certificate (a SHA-256 prefix of its
/// DER bytes), so two certificates never share idempotency records.
fn anonymous_certificate(req: &Request<()>) -> Option<CallerIdentity> {
    use sha2::Digest;
    let certs = req.peer_certs()?;
    let digest = sha2::Sha256::digest(certs.first()?.as_ref());
    Some(CallerIdentity {
        caller: CallerIdentity::anonymous().caller,
        scope: Arc::from(format!("cert:{}", hex::encode(&digest[..12]))),
    })
}

/// Logs the one WARN line for callers from the flat `caller_token_envs` list.
pub fn warn_flat(callers: &[Caller]) {
    let flat: Vec<&str> = (callers.iter().filter(|c| c.flat))
        .map(|c| c.name.as_str())
        .collect();
    if !flat.is_empty() {
        tracing::warn!(callers = ?flat, "caller_token_envs is deprecated: each listed token is a caller allowed every profile; declare [callers.NAME] with its profiles instead");
    }
}

#[cfg(test)]
mod tests;
