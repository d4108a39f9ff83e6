//! Faster formatting of the log line, byte for byte what tracing-subscriber's defaults
//! print: [`FastEvent`] (its `Full` text format: time, level, spans, target, fields),
//! [`FastFields`] (its `DefaultFields`: `name=value`, strings quoted as `{:?}` quotes
//! them, durations as `f64`'s `{:?}`, the message with terminal controls escaped) and
//! [`FastTime`] (its `SystemTime` timer: RFC 3339 UTC with microseconds). The defaults
//! write every piece through `write!` and the ANSI styling machinery, even with ANSI off,
//! and the message a character at a time through their escape guard; these write straight
//! to the buffer, the message in runs between the characters to escape. Anything unusual
//! (ANSI on, events from the `log` crate, `r#` and `log.` names, a message with escaping
//! turned off, clocks outside years 1970–9999) goes to the defaults. The tests compare the
//! two byte for byte. It formats only.
use std::{
    cell::RefCell,
    fmt::{self, Write as _},
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::{
    field::{Field, Visit},
    Event, Level, Subscriber,
};
use tracing_subscriber::{
    field::{RecordFields, VisitOutput},
    fmt::{
        format::{self, DefaultVisitor, Format, FormatEvent, FormatFields, Full, Writer},
        time::{FormatTime, SystemTime as DefaultTime},
        FmtContext, FormattedFields,
    },
    registry::LookupSpan,
};

use super::reused;

/// The text line as the `Full` format prints it (target on, thread names and ids, file
/// and line off), with the time from `T` ([`FastTime`]).
#[derive(Debug)]
pub struct FastEvent<T = FastTime> {
    timer: T,
    default: Format<Full, T>,
}

impl Default for FastEvent {
    fn default() -> Self {
        FastEvent::with_timer(FastTime)
    }
}

impl<T: FormatTime + Clone> FastEvent<T> {
    /// The line with the time from `timer`.
    pub fn with_timer(timer: T) -> Self {
        FastEvent {
            default: format::format().with_timer(timer.clone()),
            timer,
        }
    }
}

impl<S, N, T: FormatTime> FormatEvent<S, N> for FastEvent<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if w.has_ansi_escapes() || meta.fields().field("log.target").is_some() {
            return self.default.format_event(ctx, w, event);
        }
        if self.timer.format_time(&mut w).is_err() {
            w.write_str("<unknown time>")?;
        }
        w.write_str(match *meta.level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        })?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                seen = true;
                w.write_str(span.metadata().name())?;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>().filter(|f| !f.is_empty()) {
                    w.write_char('{')?;
                    w.write_str(fields)?;
                    w.write_char('}')?;
                }
                w.write_char(':')?;
            }
            if seen {
                w.write_char(' ')?;
            }
        }
        w.write_str(meta.target())?;
        w.write_str(": ")?;
        ctx.format_fields(w.by_ref(), event)?;
        w.write_char('\n')
    }
}

/// Span and event fields as `DefaultFields` prints them.
#[derive(Debug, Default)]
pub struct FastFields;

thread_local! {
    /// Where a span's fields are formatted before they are copied into the span.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<'w> FormatFields<'w> for FastFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        // A span's fields are written into a new `String`, which would grow (and move) a
        // few times on the way. Formatted in a reused buffer first, they are one
        // allocation of the right size. Only for the writer `Writer::new` makes (no
        // ANSI, escapes sanitized), which is what spans get when ANSI is off; without
        // the buffer (see `reused`) the fields are written directly.
        let plain = !writer.has_ansi_escapes() && writer.sanitizes_ansi_escapes();
        if !plain {
            return FastVisitor::new(writer).visit(fields);
        }
        reused::with(&SCRATCH, |buf| match buf {
            Some(buf) => FastVisitor::new(Writer::new(&mut *buf))
                .visit(fields)
                .and_then(|()| writer.write_str(buf)),
            None => FastVisitor::new(writer).visit(fields),
        })
    }
}

/// The visitor of [`FastFields`].
pub struct FastVisitor<'a> {
    writer: Writer<'a>,
    /// Plain `name=value` (no ANSI styling to reproduce).
    plain: bool,
    is_empty: bool,
    result: fmt::Result,
}

impl<'a> FastVisitor<'a> {
    fn new(writer: Writer<'a>) -> Self {
        FastVisitor {
            plain: !writer.has_ansi_escapes(),
            writer,
            is_empty: true,
            result: Ok(()),
        }
    }

    /// Writes `fields`.
    fn visit(mut self, fields: impl RecordFields) -> fmt::Result {
        fields.record(&mut self);
        self.result
    }
    /// Writes the separator and `name=` (none for the message, styled or not) when the
    /// field takes the fast path.
    fn start(&mut self, field: &Field) -> bool {
        let name = field.name();
        let message = name == "message";
        let fast = match message {
            true => self.writer.sanitizes_ansi_escapes(),
            false => self.plain && !name.starts_with("r#"),
        };
        if !fast {
            return false;
        }
        if !self.is_empty {
            self.result = self.writer.write_char(' ');
        }
        self.is_empty = false;
        if !message {
            self.result = self
                .result
                .and_then(|()| self.writer.write_str(name))
                .and_then(|()| self.writer.write_char('='));
        }
        true
    }

    /// The default visitor, for a field the fast path does not take (it writes it).
    fn fallback(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut visitor);
        self.is_empty = false;
        self.result = visitor.finish();
    }

    /// Nothing to write: an earlier write failed, or a `log.` field (log metadata, which
    /// the default drops: it is already in the line).
    fn skips(&self, field: &Field) -> bool {
        self.result.is_err() || field.name().starts_with("log.")
    }
}

impl Visit for FastVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.skips(field) {
            return;
        }
        if !self.start(field) {
            return self.fallback(|v| v.record_str(field, value));
        }
        self.result = self.result.and_then(|()| match field.name() {
            "message" => Escaped(&mut self.writer).write_str(value),
            _ => write_quoted(&mut self.writer, value),
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.skips(field) {
            return;
        }
        if !self.start(field) {
            return self.fallback(|v| v.record_debug(field, value));
        }
        self.result = self.result.and_then(|()| match field.name() {
            "message" => write!(Escaped(&mut self.writer), "{value:?}"),
            _ => write!(self.writer, "{value:?}"),
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.skips(field) {
            return;
        }
        if !self.start(field) {
            return self.fallback(|v| v.record_f64(field, value));
        }
        self.result = self
            .result
            .and_then(|()| write_f64(&mut self.writer, value));
    }
}

/// `{:?}` of an `f64`. A whole number of thousandths below 10^12 (every duration the
/// gateway logs, see `telemetry::log_millis`) is written from its integer digits: its
/// shortest round-trip form is exactly that decimal, with at least one decimal place.
#[allow(clippy::float_cmp, clippy::cast_sign_loss)] // exactness is the point; n ≥ 0 is checked
fn write_f64(w: &mut Writer<'_>, value: f64) -> fmt::Result {
    let thousandths = (value * 1000.0).round();
    let exact = value.is_sign_positive() && thousandths / 1000.0 == value;
    if !exact || !(0.0..1e15).contains(&thousandths) {
        return write!(w, "{value:?}");
    }
    let n = thousandths as u64;
    let (whole, mut frac) = (n / 1000, n % 1000);
    let mut digits = 3;
    while digits > 1 && frac % 10 == 0 {
        frac /= 10;
        digits -= 1;
    }
    let mut buf = itoa_buf();
    w.write_str(itoa(&mut buf, whole, 0))?;
    w.write_char('.')?;
    w.write_str(itoa(&mut buf, frac, digits))
}

fn itoa_buf() -> [u8; 20] {
    [b'0'; 20]
}

/// `n` in decimal, left-padded with zeros to `width` digits.
fn itoa(buf: &mut [u8; 20], mut n: u64, width: usize) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 && buf.len() - at >= width {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

/// Writes to the line what it is given, with the characters tracing-subscriber's escape
/// guard escapes in a message (ESC, BEL, BS, FF, DEL and the C1 controls) escaped as it
/// escapes them.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Every character to escape is one of these bytes, or starts with 0xC2 in UTF-8.
        if !s
            .bytes()
            .any(|b| matches!(b, 0x07 | 0x08 | 0x0c | 0x1b | 0x7f | 0xc2))
        {
            return self.0.write_str(s);
        }
        let mut rest = s;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| escaped(c)) {
            self.0.write_str(&rest[..at])?;
            match u32::from(c) {
                n @ 0..=0x7f => write!(self.0, "\\x{n:02x}")?,
                n => write!(self.0, "\\u{{{n:x}}}")?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// A character the escape guard escapes.
fn escaped(c: char) -> bool {
    matches!(
        c,
        '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
    )
}

/// `{:?}` of a string: as is between quotes when nothing needs escaping.
fn write_quoted(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    if s.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        w.write_char('"')?;
        w.write_str(s)?;
        w.write_char('"')
    } else {
        write!(w, "{s:?}")
    }
}

/// The time as the `SystemTime` timer prints it (`2026-11-25T16:00:00.123456Z`).
#[derive(Debug, Default, Clone, Copy)]
pub struct FastTime;

/// 10000-01-01T00:00:00Z in Unix seconds: the default prints `+10000-...` from then.
const YEAR_10000: u64 = 253_402_300_800;

impl FormatTime for FastTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let now = SystemTime::now();
        match now.duration_since(UNIX_EPOCH) {
            Ok(d) if d.as_secs() < YEAR_10000 => {
                write!(w, "{}", humantime::format_rfc3339_micros(now))
            }
            _ => DefaultTime.format_time(w),
        }
    }
}

#[cfg(test)]
mod tests;
