//! The fast formatters print exactly what tracing-subscriber's defaults print.
use std::time::{Duration, UNIX_EPOCH};

use tracing::field::Empty;
use tracing_subscriber::fmt::{
    format::Writer,
    time::{FormatTime, SystemTime as DefaultTime},
};

use super::{write_f64, FastEvent, FastFields, FastTime};
use crate::telemetry::render::{Buf, Fixed};

/// Every kind of field the gateway logs, and the awkward ones.
fn emit() {
    let span = tracing::info_span!("rpc", method = "CreateLinkToken", org_id = %"5f1a0c2b3d4e", quoted = "say \"hi\"\n\\",
        unicode = "é ✓ \u{7f} \u{1b}[31m", n = 42u64, neg = -3i64, ok = true, x = 0.5f64, whole = 1.0f64,
        r#type = "t", trace_id = Empty, upstream_ms = Empty, code = Empty, never = Empty);
    span.record("upstream_ms", 1.25);
    span.record("code", "Ok");
    span.record(
        "trace_id",
        tracing::field::display("4bf92f3577b34da6a3ce929d0e0e4736"),
    );
    let message: Option<&str> = Some("a \u{1b}[31m red \"x\"");
    tracing::info!(parent: &span, latency_ms = 0.037, message, "call finished");
    let message: Option<&str> = None;
    tracing::warn!(parent: &span, debug = ?vec!["a"], message, empty = "", "second {}", 2);
    let inner = tracing::info_span!(parent: &span, "inner");
    tracing::error!(parent: &inner, "only a message");
    tracing::info!(alone = 1, "no span");
    tracing::trace!(target: "elsewhere", x = 1e-5, y = -0.0, z = f64::NAN, "levels");
}

/// Messages: literal (clean or with every character the escape guard escapes),
/// formatted, and given as a field of each kind.
fn emit_messages() {
    tracing::info!("call finished");
    tracing::info!("esc \u{1b}[31m bel \u{7} bs \u{8} ff \u{c} del \u{7f} c1 \u{80}\u{85}\u{9f}");
    tracing::info!("kept: tab \t nl \n cr \r nul \u{0} vt \u{b} \u{a0} é ✓ \u{1F600} \"q\" \\");
    tracing::info!("formatted {} {:?} {}", "\u{1b}[0m", "q\u{7}", 42);
    tracing::info!(n = 1, "{}", "after a field \u{9b}");
    tracing::info!(message = "a str \u{1b}]0;title\u{7}");
    tracing::info!(message = %"display \u{85}", other = "x");
    tracing::info!(message = ?"debug \u{1b}");
    tracing::info!(message = 1.5f64);
    tracing::info!(message = 7u64);
    tracing::info!(message = true);
    tracing::info!(message = "");
    tracing::info!("");
}

fn render(fast: bool, ansi: bool, sanitize: bool, emit: fn()) -> String {
    use tracing_subscriber::layer::SubscriberExt;
    let buf = Buf::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(buf.clone())
        .with_ansi(ansi)
        .with_ansi_sanitization(sanitize)
        .with_timer(Fixed);
    let registry = tracing_subscriber::registry();
    let dispatch: tracing::Dispatch = match fast {
        true => registry
            .with(
                layer
                    .fmt_fields(FastFields)
                    .event_format(FastEvent::with_timer(Fixed)),
            )
            .into(),
        false => registry.with(layer).into(),
    };
    tracing::dispatcher::with_default(&dispatch, emit);
    buf.text()
}

#[test]
fn fields_are_printed_byte_for_byte_as_the_default_prints_them() {
    for ansi in [false, true] {
        let (fast, default) = (
            render(true, ansi, true, emit),
            render(false, ansi, true, emit),
        );
        assert_eq!(fast, default, "ansi {ansi}");
        assert_eq!(fast.lines().count(), 5, "{fast}");
    }
    let line = render(true, false, true, emit);
    assert!(
        line.contains(
            r#"rpc{method="CreateLinkToken" org_id=5f1a0c2b3d4e quoted="say \"hi\"\n\\""#
        ),
        "{line}"
    );
    assert!(
        line.contains(r#"upstream_ms=1.25 code="Ok" trace_id=4bf9"#),
        "{line}"
    );
}

#[test]
fn messages_are_printed_byte_for_byte_as_the_default_prints_them() {
    for (ansi, sanitize) in [(false, true), (true, true), (false, false), (true, false)] {
        let fast = render(true, ansi, sanitize, emit_messages);
        let default = render(false, ansi, sanitize, emit_messages);
        assert_eq!(fast, default, "ansi {ansi}, sanitize {sanitize}");
    }
    let text = render(true, false, true, emit_messages);
    assert_eq!(text.matches("Z  INFO ").count(), 13, "{text}");
    assert!(text.contains("::tests: call finished\n"), "{text}");
    let escaped = r"esc \x1b[31m bel \x07 bs \x08 ff \x0c del \x7f c1 \u{80}\u{85}\u{9f}";
    assert!(text.contains(escaped), "{text}");
}

#[test]
fn durations_are_printed_as_debug_prints_f64() {
    let check = |v: f64| {
        let mut s = String::new();
        write_f64(&mut Writer::new(&mut s), v).unwrap();
        assert_eq!(s, format!("{v:?}"));
    };
    for n in 0..2_000_000u64 {
        check(n as f64 / 1000.0);
    }
    for n in (0..1_000_000_000_000_000u64).step_by(999_999_937_777) {
        check(n as f64 / 1000.0);
    }
    for v in [
        -0.0,
        -1.5,
        1e-5,
        0.1 + 0.2,
        1e15,
        1e16,
        1e20,
        f64::NAN,
        f64::INFINITY,
    ] {
        check(v);
    }
}

fn time(timer: impl FormatTime) -> String {
    let mut s = String::new();
    timer.format_time(&mut Writer::new(&mut s)).unwrap();
    s
}

#[test]
fn the_time_is_printed_as_the_default_prints_it() {
    // Both read the clock: compare up to the minute, retrying across a minute's turn.
    let same_minute = (0..3).any(|_| {
        let (fast, default) = (time(FastTime), time(DefaultTime));
        assert_eq!(fast.len(), default.len(), "{fast} {default}");
        assert_eq!((&fast[19..20], &fast[26..]), (".", "Z"), "{fast}");
        fast[..16] == default[..16]
    });
    assert!(same_minute);
    // Fixed instants, as the default's `{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z` reads.
    let at = |secs, micros| {
        let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
        humantime::format_rfc3339_micros(t).to_string()
    };
    assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(at(1_709_164_800, 7), "2024-02-29T00:00:00.000007Z");
    assert_eq!(at(1_795_647_599, 999_999), "2026-11-25T22:59:59.999999Z");
    assert_eq!(
        at(super::YEAR_10000 - 1, 123_456),
        "9999-12-31T23:59:59.123456Z"
    );
}
