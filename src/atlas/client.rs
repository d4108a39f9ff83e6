//! `AtlasClient`: one pooled reqwest client that runs an [`Operation`] for a profile:
//! versioned media type, authentication, the caller's deadline, the response size cap,
//! and the retry policy of [`super::retry`]. It returns the 2xx body or an
//! [`AtlasError`] carrying everything the error mapper needs.
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use reqwest::header;
use tokio::{sync::Semaphore, time::timeout_at};

use super::{
    auth::{oauth::AccessToken, Authenticator},
    error::AtlasError,
    models::{self, parse_api_error},
    response::{
        describe_transport_error, parse_success, read_capped, status_label, unreadable_reason,
        Answer, BodyError, HeaderFacts,
    },
    retry::{retryable_status, Backoff, Idempotency},
    Operation,
};
use crate::{config::Config, config::Profile, secret::Secret, telemetry::metrics as m};

/// Per-call facts the client needs.
pub struct CallContext<'a> {
    /// The configured profile the call uses.
    pub profile: &'a str,
    /// The call's request id (for log lines).
    pub request_id: &'a str,
    /// The caller's deadline (or the gateway's upstream timeout), retries included.
    pub deadline: Instant,
    /// The call's trace: each HTTP attempt is a client span in it.
    pub trace: &'a crate::otel::CallTrace,
}

struct Upstream {
    profile: Profile,
    /// `profile.base_url` parsed once: a call sets only the path (no host parse, no IDNA).
    base: reqwest::Url,
    auth: Authenticator,
    in_flight: Semaphore,
}

/// The Atlas Admin API client shared by all calls.
pub struct AtlasClient {
    http: reqwest::Client,
    upstreams: HashMap<String, Upstream>,
    /// `application/vnd.atlas.{version}+json`, built once for Accept and Content-Type.
    media_type: header::HeaderValue,
    max_response_bytes: usize,
    backoff: Backoff,
}

impl AtlasClient {
    /// Builds the client and one authenticator per profile. No network I/O.
    pub fn new(config: &Config) -> Result<Arc<Self>, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("atlas-grpc-gateway/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let upstreams = config
            .profiles
            .values()
            .map(|p| {
                let auth = Authenticator::new(&http, &p.name, &p.token_url, &p.credentials);
                let upstream = Upstream {
                    profile: p.clone(),
                    base: reqwest::Url::parse(&p.base_url).expect("config validated the base URL"),
                    auth,
                    in_flight: Semaphore::new(p.max_in_flight),
                };
                (p.name.clone(), upstream)
            })
            .collect();
        Ok(Arc::new(Self {
            http,
            upstreams,
            media_type: header::HeaderValue::from_str(&format!(
                "application/vnd.atlas.{}+json",
                config.api_version
            ))
            .expect("config validated the API version (YYYY-MM-DD)"),
            max_response_bytes: config.max_response_bytes,
            backoff: Backoff::default(),
        }))
    }

    /// The profile named `name`, if configured.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.upstreams.get(name).map(|u| &u.profile)
    }

    /// POST .../liveMigrations/linkTokens; returns the link token.
    pub async fn create_link_token(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        access_list_ips: &[String],
    ) -> Result<Secret, AtlasError> {
        let body = serde_json::to_vec(&models::TargetOrgRequest { access_list_ips })
            .expect("serializable");
        let answer = self
            .boxed_execute(ctx, Operation::CreateLinkToken, org_id, Some(body.into()))
            .await?;
        let parsed: models::TargetOrg = parse_success(&answer, "a TargetOrg with linkToken")?;
        Ok(parsed.link_token)
    }

    /// DELETE .../liveMigrations/linkTokens.
    pub async fn delete_link_token(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
    ) -> Result<(), AtlasError> {
        self.boxed_execute(ctx, Operation::DeleteLinkToken, org_id, None)
            .await
            .map(drop)
    }

    /// POST .../apiKeys; returns the created key (with its one-time private key).
    pub async fn create_api_key(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        desc: &str,
        roles: Vec<&str>,
    ) -> Result<models::ApiKeyUserDetails, AtlasError> {
        let body = serde_json::to_vec(&models::CreateAtlasOrganizationApiKey { desc, roles })
            .expect("serializable");
        let answer = self
            .boxed_execute(ctx, Operation::CreateApiKey, org_id, Some(body.into()))
            .await?;
        parse_success(&answer, "an ApiKeyUserDetails")
    }

    /// [`Self::execute`] on the heap: its future (the HTTP exchange, retries, auth) is
    /// large, and each async layer above would otherwise hold and move a copy of it; boxed
    /// once here, those layers stay small and tonic's per-call box copies little.
    async fn boxed_execute(
        &self,
        ctx: &CallContext<'_>,
        op: Operation,
        org_id: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, AtlasError> {
        Box::pin(self.execute(ctx, op, org_id, body)).await
    }

    async fn execute(
        &self,
        ctx: &CallContext<'_>,
        op: Operation,
        org_id: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, AtlasError> {
        let upstream = self
            .upstreams
            .get(ctx.profile)
            .expect("the gRPC layer resolves profiles before calling Atlas");
        let _permit = timeout_at(ctx.deadline.into(), upstream.in_flight.acquire())
            .await
            .map_err(|_| AtlasError::Timeout)?
            .expect("semaphore never closed");
        let path = op.path(org_id);
        let mut url = upstream.base.clone();
        url.set_path(&format!(
            "{}{path}",
            upstream.base.path().trim_end_matches('/')
        ));
        let mut retries = 0u32;
        let mut token_refreshed = false;
        let mut handshakes = 0u32;
        let mut digest = match &upstream.auth {
            Authenticator::Digest(session) => Some(session.lease()),
            Authenticator::OAuth(_) => None,
        };
        loop {
            let mut req = self
                .http
                .request(op.method(), url.clone())
                .header(header::ACCEPT, self.media_type.clone());
            if let Some(b) = &body {
                req = req
                    .header(header::CONTENT_TYPE, self.media_type.clone())
                    .body(b.clone());
            }
            let mut bearer: Option<Arc<AccessToken>> = None;
            match &upstream.auth {
                Authenticator::OAuth(tokens) => {
                    let token = timeout_at(ctx.deadline.into(), tokens.token())
                        .await
                        .map_err(|_| AtlasError::Timeout)??;
                    req = req.bearer_auth(token.value.expose());
                    bearer = Some(token);
                }
                Authenticator::Digest(_) => {
                    let lease = digest.as_mut().expect("leased for Digest profiles");
                    if let Some(h) = lease.authorization(op.method().as_str(), &path) {
                        req = req.header(header::AUTHORIZATION, h);
                    }
                }
            }
            let mut attempt = ctx.trace.atlas_attempt(op, &upstream.profile.base_url);
            let started = Instant::now();
            let resp = match timeout_at(ctx.deadline.into(), req.send()).await {
                Err(_) => return Err(AtlasError::Timeout),
                Ok(Err(e)) if e.is_timeout() => return Err(AtlasError::Timeout),
                Ok(Err(e)) => {
                    m::upstream_attempt(op.id(), "error", started.elapsed());
                    // Not sent at all (connect failed): safe to retry any call.
                    // Sent: only an idempotent call may be repeated.
                    let sent = !e.is_connect();
                    let safe = !sent || op.idempotency() == Idempotency::Idempotent;
                    if safe
                        && self
                            .wait_for_retry(ctx, op, &mut retries, None, "unreachable")
                            .await
                    {
                        continue;
                    }
                    return Err(AtlasError::Unreachable {
                        detail: describe_transport_error(&e),
                        sent,
                    });
                }
                Ok(Ok(r)) => r,
            };
            let status = resp.status().as_u16();
            attempt.status(status);
            let info = HeaderFacts::read(resp.headers());
            if let Some(token) = bearer.as_ref().filter(|_| status != 401) {
                token.mark_accepted();
            }
            if status == 401 {
                let again = match (&upstream.auth, &info.digest_challenge, digest.as_mut()) {
                    (Authenticator::Digest(_), Some(challenge), Some(lease)) if handshakes < 2 => {
                        handshakes += 1;
                        m::digest_challenge(ctx.profile);
                        lease.accept_challenge(challenge)
                    }
                    (Authenticator::OAuth(tokens), _, _) if !token_refreshed => {
                        token_refreshed = true;
                        // Boxed: a cold path, kept out of every call's future.
                        let retry = match &bearer {
                            Some(t) => Box::pin(tokens.invalidate(t)).await,
                            None => false,
                        };
                        if retry {
                            tracing::info!(
                                profile = ctx.profile,
                                "Atlas refused the cached token; refreshing once"
                            );
                        }
                        retry
                    }
                    _ => false,
                };
                if again {
                    m::upstream_attempt(op.id(), "401", started.elapsed());
                    continue;
                }
            }
            let read = timeout_at(
                ctx.deadline.into(),
                read_capped(resp, self.max_response_bytes),
            )
            .await
            .map_err(|_| AtlasError::Timeout)?;
            m::upstream_attempt(op.id(), status_label(status), started.elapsed());
            let body_bytes = match read {
                Ok(b) => b,
                Err(BodyError::Interrupted) => {
                    return Err(AtlasError::Unreachable {
                        detail: BodyError::Interrupted.to_string(),
                        sent: true,
                    })
                }
                Err(e @ BodyError::TooLarge(_)) if (200..300).contains(&status) => {
                    return Err(AtlasError::BadResponse {
                        status,
                        what: e.to_string(),
                        atlas_request_id: info.request_id,
                    })
                }
                Err(e @ BodyError::TooLarge(_)) => {
                    return Err(AtlasError::Api(Box::new(info.failure(
                        status,
                        None,
                        Some(e.to_string()),
                    ))))
                }
            };
            if (200..300).contains(&status) {
                return Ok(Answer {
                    status,
                    body: body_bytes,
                    atlas_request_id: info.request_id,
                });
            }
            let api_error = parse_api_error(&body_bytes);
            let unreadable = api_error.is_none().then(|| unreadable_reason(&body_bytes));
            let failure = info.failure(status, api_error, unreadable);
            attempt.error_code(failure.error_code());
            if retryable_status(
                op.idempotency(),
                status,
                failure.error_code(),
                failure.retry_after.is_some(),
            ) && self
                .wait_for_retry(
                    ctx,
                    op,
                    &mut retries,
                    failure.retry_after,
                    status_label(status),
                )
                .await
            {
                continue;
            }
            return Err(AtlasError::Api(Box::new(failure)));
        }
    }

    /// Sleeps before the next attempt when one is allowed and fits in the deadline.
    async fn wait_for_retry(
        &self,
        ctx: &CallContext<'_>,
        op: Operation,
        retries: &mut u32,
        retry_after: Option<Duration>,
        reason: &'static str,
    ) -> bool {
        if *retries + 1 >= self.backoff.max_attempts {
            return false;
        }
        let delay = self.backoff.delay(*retries + 1, retry_after);
        if Instant::now() + delay >= ctx.deadline {
            return false;
        }
        *retries += 1;
        m::upstream_retry(op.id(), reason);
        tracing::info!(
            operation = op.id(),
            retry = *retries,
            reason,
            delay_ms = delay.as_millis() as u64,
            request_id = ctx.request_id,
            "retrying Atlas call"
        );
        tokio::time::sleep(delay).await;
        true
    }
}
