//! The one retry policy (AIP-194): which upstream failures are retried, and how long to
//! wait (jittered exponential backoff, honoring `Retry-After`), always within the
//! caller's deadline. Modeled on linkerd's exp-backoff: base = min * 2^n capped at max.
use std::time::{Duration, SystemTime};

/// Backoff parameters.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// Delay before the first retry.
    pub min: Duration,
    /// Largest delay between attempts.
    pub max: Duration,
    /// Fraction of the delay added as random jitter (0.0 to 1.0).
    pub jitter: f64,
    /// Total attempts, the first included.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(100),
            max: Duration::from_secs(5),
            jitter: 0.5,
            max_attempts: 4,
        }
    }
}

impl Backoff {
    /// Delay before retry number `retry` (1-based), never shorter than `retry_after`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .min
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max);
        let jittered = exp.mul_f64(1.0 + self.jitter.clamp(0.0, 1.0) * fastrand::f64());
        match retry_after {
            Some(ra) => ra.max(jittered.min(self.max)),
            None => jittered,
        }
    }
}

/// What kind of call this is, for retry decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// DELETE: safe to repeat.
    Idempotent,
    /// POST: repeating may create twice.
    NonIdempotent,
}

/// Whether an answered failure may be retried.
///
/// Idempotent calls retry 429/502/503/504. Non-idempotent calls retry only when Atlas
/// said the request was not processed: 429 or 503 with `Retry-After`, or a rate-limit
/// errorCode (Atlas sends some as 400).
pub fn retryable_status(
    kind: Idempotency,
    status: u16,
    error_code: Option<&str>,
    has_retry_after: bool,
) -> bool {
    let rate_limited = status == 429 || error_code.is_some_and(is_rate_limit_code);
    match kind {
        Idempotency::Idempotent => rate_limited || matches!(status, 502..=504),
        Idempotency::NonIdempotent => (rate_limited || status == 503) && has_retry_after,
    }
}

/// `RATE_LIMITED`, `RATE_LIMITED_TOKEN_BUCKET` and any code naming a rate limit.
pub fn is_rate_limit_code(code: &str) -> bool {
    code.contains("RATE_LIMIT")
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (RFC 9110 section 10.2.3).
/// Capped at one hour so a hostile value cannot park a call.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honors_retry_after() {
        let b = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        assert_eq!(b.delay(1, None), Duration::from_millis(100));
        assert_eq!(b.delay(3, None), Duration::from_millis(400));
        assert_eq!(b.delay(30, None), Duration::from_secs(5));
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        let j = Backoff::default();
        for _ in 0..100 {
            let d = j.delay(2, None);
            assert!(
                d >= Duration::from_millis(200) && d <= Duration::from_millis(300),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retry_rules() {
        use Idempotency::*;
        for s in [429, 502, 503, 504] {
            assert!(retryable_status(Idempotent, s, None, false), "{s}");
        }
        assert!(!retryable_status(Idempotent, 500, None, true));
        assert!(!retryable_status(Idempotent, 404, None, true));
        assert!(retryable_status(
            Idempotent,
            400,
            Some("RATE_LIMITED_TOKEN_BUCKET"),
            false
        ));
        assert!(!retryable_status(
            NonIdempotent,
            429,
            Some("RATE_LIMITED"),
            false
        ));
        assert!(retryable_status(
            NonIdempotent,
            429,
            Some("RATE_LIMITED"),
            true
        ));
        assert!(retryable_status(NonIdempotent, 503, None, true));
        assert!(!retryable_status(NonIdempotent, 502, None, true));
        assert!(!retryable_status(NonIdempotent, 500, None, true));
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(3600))
        );
        for bad in ["", "-1", "1.5", "soon", "\u{0}"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
