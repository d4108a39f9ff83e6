//! Readiness: `atlas.gateway.v1.AtlasGateway` is NOT_SERVING in health until every
//! profile's credentials have been accepted once by Atlas (one authenticated
//! `GET /api/atlas/v2`, `getSystemStatus`, answered 200), so a bad Secret fails the
//! readiness probe instead of the first call. The whole server (`""`) is liveness and
//! stays SERVING. A refusal logs one ERROR line naming the profile and what to check,
//! and is retried with back-off (a minute and more between token requests of one
//! profile once refused, well inside the token endpoint's limit). Must never mark the
//! service SERVING after shutdown began, nor log a secret.
use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tonic_health::{server::HealthReporter, ServingStatus};

use crate::atlas::{
    client::{AtlasClient, CallContext},
    error::AtlasError,
};
use crate::telemetry::metrics as m;

/// The first wait after a refusal; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// The longest wait between two checks of one profile.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Each check's own deadline.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks `profile`'s credentials once: `getSystemStatus` answered 200.
pub async fn check(atlas: &AtlasClient, profile: &str) -> Result<(), AtlasError> {
    let trace = crate::otel::CallTrace::default();
    let ctx = CallContext {
        profile,
        org_id: "",
        request_id: "readiness",
        deadline: Instant::now() + CHECK_TIMEOUT,
        trace: &trace,
    };
    atlas.system_status(&ctx).await
}

/// What an operator should check after `err`, in one sentence.
pub fn what_to_check(err: &AtlasError) -> &'static str {
    match err {
        AtlasError::CredentialsRejected { .. } => "check the client id and secret (or the API key pair) of this profile",
        AtlasError::Api(f) if f.status == 401 => "check the credentials of this profile",
        AtlasError::Api(f) if f.status == 403 => "check that the API access list of the service account (or API key) holds this host's egress address, and its role (Organization Owner)",
        AtlasError::TokenLimitReached { .. } => "the service account holds 100 active tokens: use a shared store or fewer gateways per service account",
        _ => "check that this host reaches the Atlas base URL and the token URL of this profile",
    }
}

/// Marks the gateway service SERVING once every profile passed [`check`], retrying each
/// refused profile with back-off. `stopping` set: no change any more.
pub fn spawn(
    atlas: Arc<AtlasClient>,
    profiles: Vec<String>,
    reporter: HealthReporter,
    stopping: Arc<AtomicBool>,
) {
    let left = Arc::new(AtomicUsize::new(profiles.len()));
    for profile in profiles {
        let (atlas, reporter, stopping, left) = (
            Arc::clone(&atlas),
            reporter.clone(),
            Arc::clone(&stopping),
            Arc::clone(&left),
        );
        tokio::spawn(async move {
            until_accepted(&atlas, &profile).await;
            m::profile_ready(&profile, true);
            tracing::info!(profile = %profile, "Atlas accepted the profile's credentials");
            if left.fetch_sub(1, Ordering::AcqRel) == 1 && !stopping.load(Ordering::Acquire) {
                reporter
                    .set_service_status(super::SERVICE_NAME, ServingStatus::Serving)
                    .await;
                tracing::info!("every profile's credentials accepted: ready (SERVING)");
            }
        });
    }
}

/// Checks until Atlas accepts `profile`: one ERROR line at the first refusal (and when
/// the reason changes), WARN lines for the retries after it.
async fn until_accepted(atlas: &AtlasClient, profile: &str) {
    let mut backoff = FIRST_BACKOFF;
    let mut last = None;
    loop {
        let Err(err) = check(atlas, profile).await else {
            return;
        };
        let hint = what_to_check(&err);
        if last == Some(hint) {
            tracing::warn!(profile = %profile, error = %err, retry_in_s = backoff.as_secs(), "still not ready");
        } else {
            tracing::error!(profile = %profile, error = %err, check = hint, retry_in_s = backoff.as_secs(),
                "Atlas did not accept the profile's credentials: not ready");
        }
        last = Some(hint);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
