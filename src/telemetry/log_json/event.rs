//! The JSON line: time, level, the event's fields (flattened), target, then the current
//! span and the span list, each span's object copied from the text [`super::FastJsonFields`]
//! keeps, with its name added, as the default's `SerializableSpan` prints it.
use std::{cell::RefCell, fmt};

use tracing::{
    field::{Field, Visit},
    Event, Level, Subscriber,
};
use tracing_subscriber::{
    fmt::{
        format::{self, Format, FormatEvent, FormatFields, Json, Writer},
        time::FormatTime,
        FmtContext, FormattedFields,
    },
    registry::{LookupSpan, SpanRef},
};

use super::json;
use crate::telemetry::log_format::FastTime;
use crate::telemetry::reused;

/// The line as `json().flatten_event(true).with_current_span(true)` prints it, with the
/// time from `T` ([`FastTime`]).
#[derive(Debug)]
pub struct FastJsonEvent<T = FastTime> {
    timer: T,
    default: Format<Json, T>,
}

impl Default for FastJsonEvent {
    fn default() -> Self {
        FastJsonEvent::with_timer(FastTime)
    }
}

impl<T: FormatTime + Clone> FastJsonEvent<T> {
    /// The line with the time from `timer`.
    pub fn with_timer(timer: T) -> Self {
        let default = format::format().json().flatten_event(true);
        FastJsonEvent {
            default: default.with_current_span(true).with_timer(timer.clone()),
            timer,
        }
    }
}

thread_local! {
    /// Where a line is put together before it is written.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl<S, N, T> FormatEvent<S, N> for FastJsonEvent<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().fields().field("log.target").is_some() {
            return self.default.format_event(ctx, w, event);
        }
        reused::with(&LINE, |out| {
            let Some(out) = out else {
                return self.default.format_event(ctx, w.by_ref(), event);
            };
            match self.line(out, ctx, event) {
                Some(()) => w.write_str(std::str::from_utf8(out).map_err(|_| fmt::Error)?),
                None => self.default.format_event(ctx, w.by_ref(), event),
            }
        })
    }
}

impl<T: FormatTime> FastJsonEvent<T> {
    /// Puts the line together in `out`; `None` when a span's fields are not this
    /// module's text (the default prints the line).
    fn line<S, N>(
        &self,
        out: &mut Vec<u8>,
        ctx: &FmtContext<'_, S, N>,
        event: &Event<'_>,
    ) -> Option<()>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let meta = event.metadata();
        out.extend_from_slice(b"{\"timestamp\":\"");
        let at = out.len();
        self.timer
            .format_time(&mut Writer::new(&mut Utf8(out)))
            .ok()?;
        if out[at..]
            .iter()
            .any(|&b| b == b'"' || b == b'\\' || b < 0x20)
        {
            // Not a time as the timers print it: quoted as serde_json quotes it.
            let time = String::from_utf8(out.split_off(at)).ok()?;
            out.pop();
            json(out, &time);
        } else {
            out.push(b'"');
        }
        out.extend_from_slice(match *meta.level() {
            Level::TRACE => b",\"level\":\"TRACE\"",
            Level::DEBUG => b",\"level\":\"DEBUG\"",
            Level::INFO => b",\"level\":\"INFO\"",
            Level::WARN => b",\"level\":\"WARN\"",
            Level::ERROR => b",\"level\":\"ERROR\"",
        });
        event.record(&mut EventEntries(out));
        out.extend_from_slice(b",\"target\":");
        json(out, meta.target());
        let current = (event.parent().and_then(|id| ctx.span(id))).or_else(|| ctx.lookup_current());
        if let Some(span) = current {
            out.extend_from_slice(b",\"span\":");
            span_object::<S, N>(out, &span)?;
            // The list is the contextual scope, even for an event with an explicit parent.
            out.extend_from_slice(b",\"spans\":[");
            if let Some(leaf) = ctx.lookup_current() {
                for (i, span) in leaf.scope().from_root().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    span_object::<S, N>(out, &span)?;
                }
            }
            out.push(b']');
        }
        out.extend_from_slice(b"}\n");
        Some(())
    }
}

/// Text into a byte buffer.
struct Utf8<'a>(&'a mut Vec<u8>);

impl fmt::Write for Utf8<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `{fields...,"name":"<span name>"}` from the span's kept text.
fn span_object<'a, S, N>(out: &mut Vec<u8>, span: &SpanRef<'a, S>) -> Option<()>
where
    S: LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    let ext = span.extensions();
    let fields = ext.get::<FormattedFields<N>>()?.fields.as_str();
    let inner = fields.strip_prefix('{')?.strip_suffix('}')?;
    out.push(b'{');
    out.extend_from_slice(inner.as_bytes());
    if !inner.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b"\"name\":");
    json(out, span.metadata().name());
    out.push(b'}');
    Some(())
}

/// An event's fields as `tracing_serde`'s map visitor writes them: in the order recorded,
/// `Debug` values as strings, names as they are.
struct EventEntries<'a>(&'a mut Vec<u8>);

impl EventEntries<'_> {
    fn push(&mut self, field: &Field, value: impl serde::Serialize) {
        self.0.push(b',');
        json(self.0, field.name());
        self.0.push(b':');
        json(self.0, value);
    }
}

impl Visit for EventEntries<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}
