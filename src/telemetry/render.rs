//! Test support for the formatters' byte-for-byte tests: a fixed clock and an in-memory
//! log, so two subscribers' output can be compared.
use std::{
    io,
    sync::{Arc, Mutex},
};

use tracing_subscriber::fmt::{format::Writer, time::FormatTime, MakeWriter};

/// A clock that always reads the same, so two formatters' lines can be compared.
#[derive(Clone)]
pub struct Fixed;

impl FormatTime for Fixed {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        w.write_str("2026-11-25T16:00:00.123456Z")
    }
}

/// The lines written, in memory.
#[derive(Clone, Default)]
pub struct Buf(Arc<Mutex<Vec<u8>>>);

impl Buf {
    /// What was written, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for Buf {
    type Writer = Buf;

    fn make_writer(&self) -> Buf {
        self.clone()
    }
}
