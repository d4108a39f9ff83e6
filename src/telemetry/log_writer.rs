//! Where log lines go: stderr, in batches.
//!
//! On a terminal every line is written at once (a human is watching). Otherwise (a file,
//! or a pipe to a container runtime or a log shipper, as in production) a line is appended
//! to an in-memory buffer and one background thread writes the buffer out: at most
//! [`FLUSH_INTERVAL`] after the first line of a batch, at once for a WARN or ERROR line or
//! when [`FLUSH_BYTES`] are waiting. A busy gateway thus does one `write(2)` per batch
//! instead of one per call, and no call waits for the log's I/O or wakes a thread.
//!
//! Nothing is ever dropped and lines keep their order: if the output stalls and
//! [`MAX_BYTES`] are waiting, callers wait for it, as they would on a plain blocking
//! write. [`LogGuard`] writes out what is left when the process ends.
use std::{
    io::{self, IsTerminal, Write},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::Duration,
};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Longest time an INFO line waits in the buffer.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// A batch this large is written out at once.
pub const FLUSH_BYTES: usize = 32 * 1024;
/// Callers wait (backpressure) while this much is waiting to be written.
pub const MAX_BYTES: usize = 1024 * 1024;

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// A WARN or ERROR line is waiting.
    urgent: bool,
    /// Callers waiting for room.
    waiting: usize,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer thread.
    wake: Condvar,
    /// Wakes callers waiting for room.
    room: Condvar,
    /// Held while a batch is taken and written, so batches leave in order.
    out: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes everything waiting and writes it out.
    fn write_out(&self, spare: &mut Vec<u8>) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut p = self.pending();
            std::mem::swap(&mut p.buf, spare);
            p.urgent = false;
            if p.waiting > 0 {
                self.room.notify_all();
            }
        }
        if !spare.is_empty() {
            // A log that cannot be written has nowhere to report it: drop the batch.
            let _ = out.write_all(spare).and_then(|()| out.flush());
            spare.clear();
        }
    }

    fn append(&self, line: &[u8], urgent: bool) {
        let mut p = self.pending();
        while p.buf.len() >= MAX_BYTES && !p.closed {
            p.waiting += 1;
            p = self.room.wait(p).unwrap_or_else(|e| e.into_inner());
            p.waiting -= 1;
        }
        if p.closed {
            // Shutting down: the writer thread is gone, write the line out directly.
            drop(p);
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = out.write_all(line).and_then(|()| out.flush());
            return;
        }
        let (before, was_urgent) = (p.buf.len(), p.urgent);
        p.buf.extend_from_slice(line);
        p.urgent |= urgent;
        // Wake the writer once per batch: on its first line, on the first urgent line,
        // and when the batch grows past FLUSH_BYTES.
        let wake = before == 0
            || (urgent && !was_urgent)
            || (before < FLUSH_BYTES && p.buf.len() >= FLUSH_BYTES);
        drop(p);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The writer thread: waits for a first line, lets the batch gather, writes it.
    fn run(&self) {
        let mut spare = Vec::with_capacity(FLUSH_BYTES);
        loop {
            {
                let mut p = self.pending();
                while p.buf.is_empty() && !p.closed {
                    p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                if p.closed {
                    return;
                }
                let gather = |p: &mut Pending| !p.urgent && !p.closed && p.buf.len() < FLUSH_BYTES;
                drop(self.wake.wait_timeout_while(p, FLUSH_INTERVAL, gather));
            }
            self.write_out(&mut spare);
        }
    }
}

/// The `MakeWriter` of the tracing subscriber.
#[derive(Clone)]
pub struct LogWriter {
    /// `None`: straight to stderr.
    batched: Option<Arc<Shared>>,
}

/// Writes out what is still buffered when dropped (at the end of `run_gateway`).
pub struct LogGuard(Option<Arc<Shared>>);

impl LogWriter {
    /// Batched unless stderr is a terminal; the guard flushes at exit.
    pub fn stderr() -> (Self, LogGuard) {
        if io::stderr().is_terminal() {
            return (LogWriter { batched: None }, LogGuard(None));
        }
        Self::batched(Box::new(io::stderr()))
    }

    /// Batches lines into `out` (tests use a shared buffer).
    pub fn batched(out: Box<dyn Write + Send>) -> (Self, LogGuard) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            room: Condvar::new(),
            out: Mutex::new(out),
        });
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .stack_size(64 * 1024)
            .spawn(move || worker.run());
        if spawned.is_err() {
            return (LogWriter { batched: None }, LogGuard(None));
        }
        let guard = LogGuard(Some(Arc::clone(&shared)));
        (
            LogWriter {
                batched: Some(shared),
            },
            guard,
        )
    }
}

impl LogGuard {
    /// Writes out everything buffered so far (e.g. before `std::process::exit`).
    pub fn flush(&self) {
        if let Some(shared) = &self.0 {
            shared.write_out(&mut Vec::new());
        }
    }
}

impl Drop for LogGuard {
    /// Stops the writer thread (later lines are written directly) and writes out the rest.
    fn drop(&mut self) {
        if let Some(shared) = &self.0 {
            shared.pending().closed = true;
            shared.wake.notify_one();
            shared.room.notify_all();
        }
        self.flush();
    }
}

/// One event's writer.
pub struct Line<'a> {
    writer: &'a LogWriter,
    urgent: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.writer.batched {
            Some(shared) => {
                shared.append(buf, self.urgent);
                Ok(buf.len())
            }
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            writer: self,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            writer: self,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` into a shared buffer, to read what the writer thread wrote.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(sink: &Sink) -> String {
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_are_written_in_order_and_all_flushed_by_the_guard() {
        let sink = Sink::default();
        let (writer, guard) = LogWriter::batched(Box::new(sink.clone()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        let line = format!("t{t} {i:05} {}\n", "x".repeat(100));
                        w.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(guard);
        let all = text(&sink);
        assert_eq!(all.lines().count(), 8000);
        for t in 0..4 {
            let mine: Vec<&str> = all
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .map(|l| &l[3..8])
                .collect();
            let expected: Vec<String> = (0..2000).map(|i| format!("{i:05}")).collect();
            assert_eq!(mine, expected, "thread {t}'s lines in order, none lost");
        }
    }

    #[test]
    fn the_writer_thread_writes_a_batch_without_a_flush() {
        let sink = Sink::default();
        let (writer, _guard) = LogWriter::batched(Box::new(sink.clone()));
        writer.make_writer().write_all(b"one line\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while text(&sink).is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(text(&sink), "one line\n");
    }
}
