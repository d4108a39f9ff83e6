//! Faster JSON log lines, byte for byte what tracing-subscriber's `json()` format prints as
//! `telemetry::init_tracing` sets it up (event fields flattened, the current span and the
//! span list). Its `JsonFields` keeps a span's fields as JSON text; every record parses
//! that text into a map and serializes it again, and every line parses each span's text
//! into a `serde_json::Value` twice (for `span` and for `spans`) to serialize it again:
//! ~57,000 instructions per gateway call. [`FastJsonFields`] keeps the same text (an
//! object, keys sorted and unique, which is how the parsed map prints it, so printing it
//! again changes nothing) and [`FastJsonEvent`] copies it into the line as it is; a record
//! merges the new fields in by name. Events from the `log` crate go to the default. The
//! tests compare the two byte for byte. It formats only.
use std::{cell::RefCell, collections::BTreeMap, fmt};

use serde_json::value::RawValue;
use tracing::{
    field::{Field, Visit},
    span::Record,
};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{
        format::{FormatFields, Writer},
        FormattedFields,
    },
};

use super::reused;

/// Span fields as `JsonFields` keeps them: `{"name":value,...}`, sorted by name.
#[derive(Debug, Default)]
pub struct FastJsonFields;

impl<'w> FormatFields<'w> for FastJsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        with_scratch(|Scratch { entries, out }| {
            fields.record(entries);
            entries.sort();
            write_object(out, entries.values());
            writer.write_str(std::str::from_utf8(out).map_err(|_| fmt::Error)?)
        })
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        let merged = merge(&current.fields, fields)?;
        current.fields = merged;
        Ok(())
    }
}

/// `current` (this formatter's text) with `fields` recorded into it, as a new text.
fn merge(current: &str, fields: &Record<'_>) -> Result<String, fmt::Error> {
    // The text is this formatter's own: an object with sorted, unique names, whose values
    // are kept as they are written (as `JsonFields` parses it, names without escapes;
    // anything else fails as it fails there).
    let old: BTreeMap<&str, &RawValue> = serde_json::from_str(current).map_err(|_| fmt::Error)?;
    with_scratch(|Scratch { entries, out }| {
        fields.record(entries);
        entries.sort();
        let (mut old, mut new) = (old.into_iter().peekable(), entries.values().peekable());
        let merged = std::iter::from_fn(|| match (old.peek(), new.peek()) {
            (Some(o), Some(n)) if o.0 < n.0 => old.next().map(|(k, v)| (k, v.get())),
            (Some(o), Some(n)) if o.0 == n.0 => {
                old.next();
                new.next()
            }
            (Some(_), None) => old.next().map(|(k, v)| (k, v.get())),
            (_, Some(_)) => new.next(),
            (None, None) => None,
        });
        write_object(out, merged);
        std::str::from_utf8(out)
            .map(str::to_string)
            .map_err(|_| fmt::Error)
    })
}

/// Reused buffers: a span's fields as recorded, and the object being written.
#[derive(Default)]
struct Scratch {
    entries: SpanEntries,
    out: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl reused::Buffer for Scratch {
    fn clear(&mut self) {
        self.entries.at.clear();
        self.entries.json.clear();
        self.out.clear();
    }

    fn capacity(&self) -> usize {
        self.entries.json.capacity() + self.out.capacity()
    }
}

/// Runs `f` with this thread's scratch buffers, emptied (new ones when they are in use).
fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    reused::with(&SCRATCH, |scratch| match scratch {
        Some(scratch) => f(scratch),
        None => f(&mut Scratch::default()),
    })
}

/// `{"name":value,...}` from names and JSON values.
fn write_object<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push(b'{');
    for (i, (name, value)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json(out, name);
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'}');
}

/// Appends `value` as JSON (serde_json's text: strings escaped, numbers shortest).
fn json(out: &mut Vec<u8>, value: impl serde::Serialize) {
    // Writing strings, numbers and booleans to a Vec cannot fail.
    let _ = serde_json::to_writer(out, &value);
}

/// A span's fields as `JsonVisitor` records them: `log.` fields skipped and `r#` taken off
/// names of `Debug` values only, `f64`s that are not finite as `null`, bytes as an array.
#[derive(Default)]
struct SpanEntries {
    /// Each field's name and where its value is in `json`, in the order recorded.
    at: Vec<(&'static str, usize, usize)>,
    json: Vec<u8>,
}

impl SpanEntries {
    fn push(&mut self, name: &'static str, value: impl serde::Serialize) {
        let start = self.json.len();
        json(&mut self.json, value);
        self.at.push((name, start, self.json.len()));
    }

    /// Sorts by name, the last value of a name winning, as a map keeps them.
    fn sort(&mut self) {
        self.at.sort_by_key(|e| e.0); // stable: a name's values stay in recorded order
        self.at.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                (kept.1, kept.2) = (later.1, later.2);
            }
            same
        });
    }

    /// The names and their values as JSON.
    fn values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.at.iter().map(|&(name, start, end)| {
            // Only serde_json's output is in `json`, cut at value boundaries: UTF-8.
            let value = std::str::from_utf8(&self.json[start..end]).unwrap_or("null");
            (name, value)
        })
    }
}

impl Visit for SpanEntries {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field.name(), serde_json::Number::from_f64(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field.name(), value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field.name(), value);
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.push(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.push(name, format_args!("{value:?}"));
    }
}

mod event;
pub use event::FastJsonEvent;

#[cfg(test)]
mod tests;
