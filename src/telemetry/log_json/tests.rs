//! The fast JSON formatters print exactly what tracing-subscriber's `json()` prints.
use tracing::field::Empty;
use tracing_subscriber::fmt::{format::Writer, time::FormatTime};

use super::{FastJsonEvent, FastJsonFields};
use crate::telemetry::render::{Buf, Fixed};

/// A value that logs while it is formatted.
struct Noisy;

impl std::fmt::Debug for Noisy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tracing::info!(inner = "x", "logged while formatting");
        f.write_str("noisy")
    }
}

/// The gateway's call span and line, and every awkward kind of field and scope.
fn emit() {
    let span = tracing::info_span!("rpc", method = "CreateLinkToken", org_id = %"5f1a0c2b3d4e", quoted = "say \"hi\"\n\\\t\u{1}",
        unicode = "é ✓ \u{7f} \u{1b}[31m \u{2028}", n = 42u64, neg = -3i64, ok = true, x = 0.5f64, whole = 1.0f64,
        r#type = "t", r#loop = ?"dbg", bytes = tracing::field::debug(b"ab"), trace_id = Empty, upstream_ms = Empty,
        code = Empty, never = Empty, big = u64::MAX, nan = f64::NAN, inf = f64::INFINITY, tiny = 1e-7, neg_zero = -0.0f64,
        wide = 1u128 << 100, name = "shadows the span name");
    span.record("upstream_ms", 1.25);
    span.record("code", "Ok");
    span.record("code", "NotFound"); // recorded again: the last value wins
    span.record(
        "trace_id",
        tracing::field::display("4bf92f3577b34da6a3ce929d0e0e4736"),
    );
    span.record("n", 7u64); // a value set at creation, replaced
    let message: Option<&str> = Some("a \u{1b}[31m red \"x\"");
    tracing::info!(parent: &span, latency_ms = 0.037, message, "call finished");
    let message: Option<&str> = None;
    tracing::warn!(parent: &span, debug = ?vec!["a"], message, empty = "", "second {}", 2);
    let inner = tracing::info_span!(parent: &span, "inner");
    tracing::error!(parent: &inner, "only a message");
    let empty = tracing::info_span!("empty", later = Empty);
    tracing::info!(parent: &empty, "a span without fields");
    empty.record("later", 3i64);
    tracing::info!(parent: &empty, "a field recorded into an empty span");
    let unsorted = tracing::info_span!("unsorted", b = 1, a = "x", dup = 1, dup = 2, c = Empty);
    tracing::info!(parent: &unsorted, "fields as created: sorted, the last of a name kept");
    tracing::info!(alone = 1, "no span");
    // A value whose `Debug` logs while the span and the line are formatted: tracing drops
    // an event raised inside its own dispatch (the default's output shows the same), and
    // the outer line is unharmed.
    let noisy = tracing::info_span!("noisy", value = ?Noisy);
    tracing::info!(parent: &noisy, value = ?Noisy, "outer");
    tracing::trace!(target: "elsewhere", x = 1e-5, y = -0.0, z = f64::NAN, w = f64::NEG_INFINITY, "levels");
    tracing::debug!(
        i = i128::MIN,
        u = u128::MAX,
        dup = 1,
        dup = 2,
        "wide and duplicated"
    );
    // Entered spans: the current span and the list come from the context.
    span.in_scope(|| {
        tracing::info!("inside the call");
        inner.in_scope(|| tracing::info!(nested = true, "inside both"));
        // An explicit parent elsewhere: `span` is that parent, `spans` the context.
        tracing::info!(parent: &empty, "explicit parent, other context");
        tracing::info!(parent: None, "no parent, in a context");
    });
}

/// A clock whose reading needs quoting in JSON.
#[derive(Clone)]
struct Odd;

impl FormatTime for Odd {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        w.write_str("now \"quoted\"\n\\ é")
    }
}

fn render(fast: bool) -> String {
    render_with(fast, Fixed, emit)
}

fn render_with<T>(fast: bool, timer: T, emit: fn()) -> String
where
    T: FormatTime + Clone + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    let buf = Buf::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(buf.clone())
        .with_timer(timer.clone());
    let registry = tracing_subscriber::registry();
    let dispatch: tracing::Dispatch = match fast {
        true => registry
            .with(
                layer
                    .with_ansi(false)
                    .fmt_fields(FastJsonFields)
                    .event_format(FastJsonEvent::with_timer(timer)),
            )
            .into(),
        false => registry
            .with(layer.json().flatten_event(true).with_current_span(true))
            .into(),
    };
    tracing::dispatcher::with_default(&dispatch, emit);
    buf.text()
}

#[test]
fn json_lines_are_printed_byte_for_byte_as_the_default_prints_them() {
    let (fast, default) = (render(true), render(false));
    for (i, (f, d)) in fast.lines().zip(default.lines()).enumerate() {
        assert_eq!(f, d, "line {i}");
    }
    assert_eq!(fast, default);
    assert_eq!(fast.lines().count(), 14, "{fast}");
    assert!(!fast.contains("logged while formatting"), "{fast}");
    assert!(
        fast.contains(r#""message":"outer","value":"noisy""#),
        "{fast}"
    );
    let first = fast.lines().next().unwrap();
    assert!(
        first.starts_with(r#"{"timestamp":"2026-11-25T16:00:00.123456Z","level":"INFO","message":"call finished","latency_ms":0.037,"#),
        "{first}"
    );
    assert!(first.contains(r#""code":"NotFound""#), "{first}");
    for line in fast.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

#[test]
fn the_span_list_is_the_context_and_the_span_the_parent() {
    let text = render(true);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let find = |message: &str| lines.iter().find(|l| l["message"] == message).unwrap();
    assert_eq!(names(find("inside both")), ["rpc", "inner"]);
    let explicit = find("explicit parent, other context");
    assert_eq!(explicit["span"]["name"], "empty");
    assert_eq!(names(explicit), ["rpc"]);
    assert_eq!(find("no parent, in a context")["span"]["name"], "rpc");
    assert!(find("no span").get("span").is_none());
}

#[test]
fn a_time_that_needs_quoting_is_quoted_as_the_default_quotes_it() {
    let emit = || tracing::info!(n = 1, "tick");
    let fast = render_with(true, Odd, emit);
    assert_eq!(fast, render_with(false, Odd, emit));
    assert!(
        fast.starts_with(r#"{"timestamp":"now \"quoted\"\n\\ é","#),
        "{fast}"
    );
}
