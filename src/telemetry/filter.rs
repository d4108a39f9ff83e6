//! The `RUST_LOG` filter. `EnvFilter` takes a lock and a map look-up when any span is
//! created, entered, exited, recorded or closed, even when no directive names a span: a
//! handful of contended atomic operations per call. So when `RUST_LOG` holds only static
//! directives (`level`, `target` or `target=level`, comma separated, in plain ASCII with
//! no spaces), [`LogFilter::Static`] makes the same decisions with a `Targets` filter,
//! which has no per-span hooks; anything else (span or field directives, spaces, other
//! characters) keeps `EnvFilter`. Unset or invalid `RUST_LOG` means `info`, as before. It
//! decides which spans and events are on, never how they print.
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};

/// The filter for a `RUST_LOG` value.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one, made at start-up and moved into the subscriber
pub enum LogFilter {
    /// Static directives only: the `EnvFilter` decisions, without per-span work.
    Static(Targets),
    /// Directives that look at spans or fields, or text `Static` does not read.
    Dynamic(EnvFilter),
}

impl LogFilter {
    /// The filter `RUST_LOG` asks for.
    pub fn from_env() -> Self {
        Self::parse(std::env::var(EnvFilter::DEFAULT_ENV).ok().as_deref())
    }

    /// `spec` is `RUST_LOG` (`None`: unset or not Unicode). `EnvFilter` parses it first,
    /// so what it rejects falls back to `info` as it always has.
    pub fn parse(spec: Option<&str>) -> Self {
        match spec.map(|s| (s, EnvFilter::try_new(s))) {
            Some((s, Ok(env))) => static_targets(s).map_or(Self::Dynamic(env), Self::Static),
            _ => Self::Static(Targets::new().with_default(LevelFilter::INFO)),
        }
    }
}

/// The `Targets` with `EnvFilter`'s static directives for `spec`, in the same order (a
/// later directive for the same target replaces an earlier one, in both), or `None` if a
/// directive is not plainly static.
fn static_targets(spec: &str) -> Option<Targets> {
    let mut targets = Targets::new();
    for directive in spec.split(',').filter(|d| !d.is_empty()) {
        targets = match static_directive(directive)? {
            (Some(target), level) => targets.with_target(target, level),
            (None, level) => targets.with_default(level),
        };
    }
    Some(targets)
}

/// `(target, level)` as `EnvFilter` reads a directive: `target=` is every level, a bare
/// word that is not a level is a target at every level.
fn static_directive(directive: &str) -> Option<(Option<&str>, LevelFilter)> {
    let plain = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
    };
    let (target, level) = match directive.split_once('=') {
        Some((target, level)) => (target, Some(level)),
        None => (directive, None),
    };
    // EnvFilter's first character: alphanumeric, `-`, `:` or `_`.
    if target.is_empty() || target.starts_with('.') || !plain(target) {
        return None;
    }
    Some(match level {
        Some("") => (Some(target), LevelFilter::TRACE),
        Some(level) if plain(level) => (Some(target), level.parse().ok()?),
        Some(_) => return None,
        None => match target.parse() {
            Ok(level) => (None, level),
            Err(_) => (Some(target), LevelFilter::TRACE),
        },
    })
}

#[cfg(test)]
mod tests;
