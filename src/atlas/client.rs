//! `AtlasClient`: one pooled reqwest client that runs an [`AtlasRequest`] for a profile.
//! `AtlasClient::execute` is a loop over three named steps and the send between them:
//! `authenticate` (Bearer token or Digest answer), the send and `classify` (2xx, a 401
//! the authenticator can cure, or an [`AtlasError`] with a retry hint) under one timer,
//! the caller's deadline, and `retry` (the policy of [`super::retry`]). The typed
//! operations live in [`super::operations`].
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use reqwest::{header, RequestBuilder};
use tokio::{sync::Semaphore, time::timeout_at};

use super::{
    auth::{digest::Lease, oauth::AccessToken, Authenticator, ServiceAccounts},
    error::AtlasError,
    models::parse_api_error,
    response::{
        describe_transport_error, read_capped, status_label, unreadable_reason, Answer, BodyError,
        HeaderFacts,
    },
    retry::{is_rate_limit_code, retryable_status, Backoff, Idempotency},
    urls::Urls,
    Operation,
};
use crate::{
    config::Config,
    config::Profile,
    otel::AtlasAttempt,
    store::{
        cooldown::Cooldowns,
        rotation::RotationLocks,
        sweep::{LeaseOrgs, Orphans},
        ProfileStore, SharedStore,
    },
    telemetry::metrics as m,
};

/// Per-call facts the client needs.
pub struct CallContext<'a> {
    /// The configured profile the call uses.
    pub profile: &'a str,
    /// The org the call acts on (its Atlas 429 cool-down is per profile, org, operation).
    pub org_id: &'a str,
    /// The call's request id (for log lines).
    pub request_id: &'a str,
    /// The caller's deadline (or the gateway's upstream timeout), retries included.
    pub deadline: Instant,
    /// The call's trace: each HTTP attempt is a client span in it.
    pub trace: &'a crate::otel::CallTrace,
}

/// One Atlas HTTP request: the operation, the ids its path template names, any query
/// string and its JSON body.
pub struct AtlasRequest<'a> {
    /// Which Atlas operation (method, path template, retry rules, metric label).
    pub op: Operation,
    /// `{orgId}` in the template.
    pub org_id: &'a str,
    /// `{apiUserId}` or `{clientId}` in the template (empty when the template has none).
    pub api_key_id: &'a str,
    /// `{secretId}` in the template (empty when the template has none).
    pub secret_id: &'a str,
    /// Query string without the `?`.
    pub query: Option<String>,
    /// JSON body, for POSTs.
    pub body: Option<Bytes>,
}

struct Upstream {
    profile: Profile,
    /// `profile.base_url` parsed once, and the request URLs under it.
    urls: Urls,
    auth: Authenticator,
    in_flight: Semaphore,
    /// The profile's view of the shared store (fleet mode).
    shared: Option<Arc<ProfileStore>>,
}

/// The Atlas Admin API client shared by all calls.
pub struct AtlasClient {
    http: reqwest::Client,
    upstreams: HashMap<String, Upstream>,
    /// `application/vnd.atlas.{version}+json` of `--api-version`, built once for Accept
    /// and Content-Type of the operations without a fixed version.
    media_type: header::HeaderValue,
    /// The same for the operations only Atlas's `2024-08-05` has (service accounts).
    media_type_2024_08_05: header::HeaderValue,
    max_response_bytes: usize,
    backoff: Backoff,
    cooldowns: Arc<Cooldowns>,
    /// The orgs each profile created leased keys in (the lease sweeper visits them).
    lease_orgs: LeaseOrgs,
    /// The keys each profile left without their access list (the lease sweeper deletes them).
    orphans: Orphans,
    /// One rotation per service account at a time in this gateway.
    rotation_locks: RotationLocks,
}

/// One call's authentication state across its attempts.
struct AuthState<'a> {
    /// The Digest challenge leased for this call (Digest profiles only).
    digest: Option<Lease<'a>>,
    /// The Bearer token of the current attempt (OAuth profiles only).
    bearer: Option<Arc<AccessToken>>,
    token_refreshed: bool,
    handshakes: u32,
}

/// One HTTP attempt: its client span, and when it started (for the latency metric).
struct Attempt {
    span: AtlasAttempt,
    started: Instant,
}

/// Why and how long to wait before another attempt.
struct RetryHint {
    after: Option<Duration>,
    reason: &'static str,
}

/// What one attempt came to.
enum Step {
    Done(Answer),
    /// A 401 the authenticator answered (new challenge, refreshed token): try again now.
    Reauthenticate,
    /// A failure; with a hint when the retry policy allows another attempt.
    Failed(AtlasError, Option<RetryHint>),
}

impl AtlasClient {
    /// Builds the client and one authenticator per profile; with a shared store, tokens,
    /// idempotency records and cool-downs are shared with the fleet. No network I/O.
    pub fn new(
        config: &Config,
        store: Option<Arc<SharedStore>>,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("atlas-grpc-gateway/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let mut accounts = ServiceAccounts::default();
        let upstreams: HashMap<_, Upstream> = config
            .profiles
            .values()
            .map(|p| {
                let shared = store.as_ref().map(|s| s.for_profile(p));
                let auth = Authenticator::new(&http, p, shared.clone(), &mut accounts);
                let upstream = Upstream {
                    profile: p.clone(),
                    urls: Urls::new(
                        reqwest::Url::parse(&p.base_url).expect("config validated the base URL"),
                    ),
                    auth,
                    in_flight: Semaphore::new(p.max_in_flight),
                    shared,
                };
                (p.name.clone(), upstream)
            })
            .collect();
        let cooldowns = Cooldowns::new(
            store.as_ref(),
            upstreams.values().filter_map(|u| u.shared.clone()),
        );
        Ok(Arc::new(Self {
            http,
            upstreams,
            media_type: header::HeaderValue::from_str(&format!(
                "application/vnd.atlas.{}+json",
                config.api_version
            ))
            .expect("config validated the API version (YYYY-MM-DD)"),
            media_type_2024_08_05: header::HeaderValue::from_static(
                "application/vnd.atlas.2024-08-05+json",
            ),
            max_response_bytes: config.max_response_bytes,
            backoff: Backoff::default(),
            cooldowns,
            lease_orgs: LeaseOrgs::default(),
            orphans: Orphans::default(),
            rotation_locks: RotationLocks::default(),
        }))
    }

    /// The profile's view of the shared store, when the gateway has one.
    pub fn shared(&self, profile: &str) -> Option<&ProfileStore> {
        self.upstreams.get(profile)?.shared.as_deref()
    }

    /// The orgs each profile created leased keys in.
    pub fn lease_orgs(&self) -> &LeaseOrgs {
        &self.lease_orgs
    }

    /// The orphaned keys each profile left for the lease sweeper to delete.
    pub fn orphans(&self) -> &Orphans {
        &self.orphans
    }

    /// This gateway's per-account rotation locks (the fleet's are in the store).
    pub fn rotation_locks(&self) -> &RotationLocks {
        &self.rotation_locks
    }

    /// Revokes the tokens this process minted (graceful stop without a shared store).
    pub async fn revoke_minted_tokens(&self) {
        for upstream in self.upstreams.values() {
            if let Authenticator::OAuth(tokens) = &upstream.auth {
                tokens.revoke_minted().await;
            }
        }
    }

    /// The profile named `name`, if configured.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.upstreams.get(name).map(|u| &u.profile)
    }

    /// Runs `req` until it succeeds, fails for good, or the deadline runs out.
    pub(super) async fn execute(
        &self,
        ctx: &CallContext<'_>,
        req: &AtlasRequest<'_>,
    ) -> Result<Answer, AtlasError> {
        let upstream = self
            .upstreams
            .get(ctx.profile)
            .expect("the gRPC layer resolves profiles before calling Atlas");
        let shared = upstream.shared.as_deref();
        let cooldown = || Cooldowns::key(shared, ctx.profile, ctx.org_id, req.op.id());
        if let Some(left) = self.cooldowns.remaining(cooldown) {
            return Err(AtlasError::CoolingDown { retry_after: left });
        }
        let _permit = match upstream.in_flight.try_acquire() {
            Ok(permit) => permit,
            // Boxed, like every cold path here: the call's future stays small.
            Err(_) => Box::pin(timeout_at(
                ctx.deadline.into(),
                upstream.in_flight.acquire(),
            ))
            .await
            .map_err(|_| AtlasError::Timeout)?
            .expect("semaphore never closed"),
        };
        let url = upstream.urls.get(req);
        let mut auth = AuthState {
            digest: match &upstream.auth {
                Authenticator::Digest(session) => Some(session.lease()),
                Authenticator::OAuth(_) => None,
            },
            bearer: None,
            token_refreshed: false,
            handshakes: 0,
        };
        let mut retries = 0u32;
        loop {
            let http = self.prepare(req, &url);
            let http = self
                .authenticate(ctx, &upstream.auth, &mut auth, http, req.op, &url)
                .await?;
            let mut attempt = Attempt {
                span: ctx.trace.atlas_attempt(req.op, upstream.urls.base()),
                started: Instant::now(),
            };
            // One deadline (one timer) for the whole attempt: send, headers and body.
            let exchange = async {
                match http.send().await {
                    Ok(resp) => {
                        let auth = &mut auth;
                        self.classify(ctx, req.op, upstream, auth, &mut attempt, resp)
                            .await
                    }
                    Err(e) if e.is_timeout() => Err(AtlasError::Timeout),
                    Err(e) => Ok(transport_failure(req.op, &e, attempt.started)),
                }
            };
            let step = timeout_at(ctx.deadline.into(), exchange)
                .await
                .map_err(|_| AtlasError::Timeout)??;
            match step {
                Step::Done(answer) => return Ok(answer),
                Step::Reauthenticate => {}
                Step::Failed(error, hint) => {
                    if let Some(wait) = cools_down(&error) {
                        Box::pin(self.cooldowns.start(shared, cooldown(), wait)).await;
                    }
                    let retried = match hint {
                        Some(hint) => Box::pin(self.retry(ctx, req.op, &mut retries, hint)).await,
                        None => false,
                    };
                    if !retried {
                        return Err(error);
                    }
                }
            }
        }
    }

    /// The HTTP request without credentials: method, URL, versioned media type, body.
    fn prepare(&self, req: &AtlasRequest<'_>, url: &reqwest::Url) -> RequestBuilder {
        let media_type = match req.op.fixed_version() {
            Some(_) => &self.media_type_2024_08_05,
            None => &self.media_type,
        };
        let http = self
            .http
            .request(req.op.method(), url.clone())
            .header(header::ACCEPT, media_type.clone());
        match &req.body {
            Some(b) => http
                .header(header::CONTENT_TYPE, media_type.clone())
                .body(b.clone()),
            None => http,
        }
    }

    /// Step 1: adds a Bearer token (fetched or cached) or a Digest answer.
    async fn authenticate(
        &self,
        ctx: &CallContext<'_>,
        authenticator: &Authenticator,
        auth: &mut AuthState<'_>,
        http: RequestBuilder,
        op: Operation,
        url: &reqwest::Url,
    ) -> Result<RequestBuilder, AtlasError> {
        match authenticator {
            Authenticator::OAuth(tokens) => {
                let token = tokens.token(ctx.deadline).await?;
                let http = token.authorize(http);
                auth.bearer = Some(token);
                Ok(http)
            }
            Authenticator::Digest(_) => {
                let lease = auth.digest.as_mut().expect("leased for Digest profiles");
                // The digest `uri`: the request target as sent (path and query).
                let target = match url.query() {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_string(),
                };
                Ok(match lease.authorization(op.method().as_str(), &target) {
                    Some(h) => http.header(header::AUTHORIZATION, h),
                    None => http,
                })
            }
        }
    }

    /// Step 3: what an answer means. Reads the body (capped) unless the answer is a
    /// 401 the authenticator can cure.
    async fn classify(
        &self,
        ctx: &CallContext<'_>,
        op: Operation,
        upstream: &Upstream,
        auth: &mut AuthState<'_>,
        attempt: &mut Attempt,
        resp: reqwest::Response,
    ) -> Result<Step, AtlasError> {
        let status = resp.status().as_u16();
        let started = attempt.started;
        attempt.span.status(status);
        let info = HeaderFacts::read(resp.headers());
        if let Some(token) = auth.bearer.as_ref().filter(|_| status != 401) {
            token.mark_accepted();
        }
        if status == 401 && Box::pin(reauthenticate(ctx, &upstream.auth, auth, &info)).await {
            // A Digest challenge is the protocol's normal first round trip, counted in
            // digest_challenges_total; only a refused Bearer token is an upstream 401.
            if !matches!(upstream.auth, Authenticator::Digest(_)) {
                m::upstream_attempt(op.id(), "401", started.elapsed());
            }
            return Ok(Step::Reauthenticate);
        }
        let read = read_capped(resp, self.max_response_bytes).await;
        m::upstream_attempt(op.id(), status_label(status), started.elapsed());
        let success = (200..300).contains(&status);
        let body = match read {
            Ok(b) => b,
            Err(e) => return Ok(Step::Failed(body_failure(e, status, info), None)),
        };
        if success {
            return Ok(Step::Done(Answer {
                status,
                body,
                atlas_request_id: info.request_id,
            }));
        }
        let api_error = parse_api_error(&body);
        let unreadable = api_error.is_none().then(|| unreadable_reason(&body));
        let failure = info.failure(status, api_error, unreadable);
        attempt.span.error_code(failure.error_code());
        let retry_after = failure.retry_after;
        let hint = retryable_status(
            op.idempotency(),
            status,
            failure.error_code(),
            retry_after.is_some(),
        )
        .then(|| RetryHint {
            after: retry_after,
            reason: status_label(status),
        });
        Ok(Step::Failed(AtlasError::Api(Box::new(failure)), hint))
    }

    /// Step 4: sleeps before the next attempt when one is allowed and fits in the
    /// deadline; false when the call must give up.
    async fn retry(
        &self,
        ctx: &CallContext<'_>,
        op: Operation,
        retries: &mut u32,
        hint: RetryHint,
    ) -> bool {
        if *retries + 1 >= self.backoff.max_attempts {
            return false;
        }
        let delay = self.backoff.delay(*retries + 1, hint.after);
        if Instant::now() + delay >= ctx.deadline {
            return false;
        }
        *retries += 1;
        m::upstream_retry(op.id(), hint.reason);
        tracing::info!(
            operation = op.id(),
            retry = *retries,
            reason = hint.reason,
            delay_ms = delay.as_millis() as u64,
            request_id = ctx.request_id,
            "retrying Atlas call"
        );
        tokio::time::sleep(delay).await;
        true
    }
}

/// No HTTP answer. A request that was never sent (connect failed) may be retried for
/// any call; one that was sent only for an idempotent call.
fn transport_failure(op: Operation, e: &reqwest::Error, started: Instant) -> Step {
    m::upstream_attempt(op.id(), "error", started.elapsed());
    let sent = !e.is_connect();
    let safe = !sent || op.idempotency() == Idempotency::Idempotent;
    let error = AtlasError::Unreachable {
        detail: describe_transport_error(e),
        sent,
    };
    let hint = safe.then_some(RetryHint {
        after: None,
        reason: "unreachable",
    });
    Step::Failed(error, hint)
}

/// How long calls for the same (profile, org, operation) stay away from Atlas: Atlas
/// rate-limited this one and said for how long.
fn cools_down(error: &AtlasError) -> Option<Duration> {
    match error {
        AtlasError::Api(f) if f.status == 429 || f.error_code().is_some_and(is_rate_limit_code) => {
            f.retry_after
        }
        _ => None,
    }
}

/// A body that could not be read: cut short, or above the size cap.
fn body_failure(e: BodyError, status: u16, info: HeaderFacts) -> AtlasError {
    match e {
        BodyError::Interrupted => AtlasError::Unreachable {
            detail: e.to_string(),
            sent: true,
        },
        BodyError::TooLarge(_) if (200..300).contains(&status) => AtlasError::BadResponse {
            status,
            what: e.to_string(),
            atlas_request_id: info.request_id.text(),
        },
        BodyError::TooLarge(_) => {
            AtlasError::Api(Box::new(info.failure(status, None, Some(e.to_string()))))
        }
    }
}

/// A 401: answer a new Digest challenge (at most twice), or refresh the Bearer token
/// once. True when another attempt may succeed.
async fn reauthenticate(
    ctx: &CallContext<'_>,
    authenticator: &Authenticator,
    auth: &mut AuthState<'_>,
    info: &HeaderFacts,
) -> bool {
    match (authenticator, &info.digest_challenge, auth.digest.as_mut()) {
        (Authenticator::Digest(_), Some(challenge), Some(lease)) if auth.handshakes < 2 => {
            auth.handshakes += 1;
            m::digest_challenge(ctx.profile);
            lease.accept_challenge(challenge)
        }
        (Authenticator::OAuth(tokens), _, _) if !auth.token_refreshed => {
            auth.token_refreshed = true;
            let retry = match &auth.bearer {
                Some(t) => tokens.invalidate(t).await,
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
    }
}
