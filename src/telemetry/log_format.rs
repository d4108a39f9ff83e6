//! Faster formatting of the log line, byte for byte what tracing-subscriber's defaults
//! print: [`FastFields`] (its `DefaultFields`: `name=value`, strings quoted as `{:?}`
//! quotes them) and [`FastTime`] (its `SystemTime` timer: RFC 3339 UTC with
//! microseconds). The defaults write every field through three `write!` calls (name,
//! `=`, value, each through the ANSI styling machinery even with ANSI off) and the time
//! through seven padded `write!`s; these write straight to the buffer. Anything unusual
//! (ANSI on, the message, `r#` and `log.` names, clocks outside years 1970–9999) goes to
//! the defaults. The tests below compare the two byte for byte. It formats only.
use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    field::{MakeVisitor, VisitFmt, VisitOutput},
    fmt::{
        format::{DefaultVisitor, Writer},
        time::{FormatTime, SystemTime as DefaultTime},
    },
};

/// Span and event fields as `DefaultFields` prints them.
#[derive(Debug, Default)]
pub struct FastFields;

/// The visitor of [`FastFields`].
pub struct FastVisitor<'a> {
    writer: Writer<'a>,
    /// Plain `name=value` (no ANSI styling to reproduce).
    plain: bool,
    is_empty: bool,
    result: fmt::Result,
}

impl<'a> MakeVisitor<Writer<'a>> for FastFields {
    type Visitor = FastVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> FastVisitor<'a> {
        FastVisitor {
            plain: !writer.has_ansi_escapes(),
            writer,
            is_empty: true,
            result: Ok(()),
        }
    }
}

impl FastVisitor<'_> {
    /// Writes the separator and `name=` when the field takes the fast path.
    fn start(&mut self, field: &Field) -> bool {
        let name = field.name();
        if !self.plain || name == "message" || name.starts_with("r#") {
            return false;
        }
        if !self.is_empty {
            self.result = self.writer.write_char(' ');
        }
        self.is_empty = false;
        self.result = self
            .result
            .and_then(|()| self.writer.write_str(name))
            .and_then(|()| self.writer.write_char('='));
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
        self.result = self
            .result
            .and_then(|()| write_quoted(&mut self.writer, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.skips(field) {
            return;
        }
        if !self.start(field) {
            return self.fallback(|v| v.record_debug(field, value));
        }
        self.result = self.result.and_then(|()| write!(self.writer, "{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for FastVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for FastVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
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
