//! The audit writer: one thread owns the sink and the chain (`seq`, `prev`). Records
//! arrive on a channel; whatever has arrived while the previous batch was being synced
//! goes out as the next batch: one write, one `fdatasync` (group commit), then every
//! record of the batch is answered. A failed batch advances nothing: the chain goes on
//! from the last line that was written (a regular file is cut back to it). Opening
//! continues an existing file's chain from its last line, or starts a new file with
//! its `open` line.
use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom, Write},
    path::Path,
    sync::mpsc,
};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::{AuditTarget, Body};
use crate::telemetry::metrics as m;

/// `prev` of a file's first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Records written with one write and one sync, at most.
const MAX_BATCH: usize = 1024;

/// The longest last line a restart reads back.
const MAX_LINE: u64 = 64 * 1024;

/// The audit log could not be opened, resumed, or its `open` line written.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the audit log {path}: {why}")]
pub struct OpenError {
    path: String,
    why: String,
}

type Reply = oneshot::Sender<(io::Result<()>, Body)>;

struct Job {
    event: &'static str,
    body: Body,
    reply: Option<Reply>,
}

/// The writer thread's mailbox.
#[derive(Debug)]
pub(super) struct Handle {
    tx: mpsc::Sender<Job>,
}

impl Handle {
    /// Opens the target, writes or resumes the chain, starts the writer thread.
    pub(super) fn open(target: &AuditTarget) -> Result<Self, OpenError> {
        let failed = |why: String| OpenError {
            path: String::from(target.clone()),
            why,
        };
        let (sink, resumed) = match target {
            AuditTarget::Stdout => (Sink::Stdout, None),
            AuditTarget::File(path) => open_file(path).map_err(failed)?,
        };
        let mut chain = Chain {
            sink,
            seq: 0,
            prev: GENESIS.to_string(),
        };
        match resumed {
            Some((seq, prev)) => (chain.seq, chain.prev) = (seq + 1, prev),
            None => {
                let open = Body::Open {
                    version: env!("CARGO_PKG_VERSION"),
                };
                chain
                    .write(&[("open", &open)])
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || chain.run(&rx))
            .map_err(|e| failed(e.to_string()))?;
        Ok(Self { tx })
    }

    /// Writes one record; resolves once it is written (and synced) or failed, giving
    /// the body back.
    pub(super) async fn write(&self, event: &'static str, body: Body) -> io::Result<Body> {
        let (reply, done) = oneshot::channel();
        let gone = || io::Error::other("the audit writer has stopped");
        self.tx
            .send(Job {
                event,
                body,
                reply: Some(reply),
            })
            .map_err(|_| gone())?;
        let (result, body) = done.await.map_err(|_| gone())?;
        result.map(|()| body)
    }

    /// Queues one record without waiting for it (a failure is counted and logged).
    pub(super) fn send(&self, event: &'static str, body: Body) {
        let job = Job {
            event,
            body,
            reply: None,
        };
        if self.tx.send(job).is_err() {
            m::audit_error(event);
        }
    }
}

enum Sink {
    Stdout,
    /// A file; `regular` files are synced and cut back after a failed write, at `len`.
    File {
        file: File,
        regular: bool,
        len: u64,
    },
}

/// The sink and where its chain stands: the next `seq`, and the hash of the last line.
struct Chain {
    sink: Sink,
    seq: u64,
    prev: String,
}

#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    seq: u64,
    event: &'static str,
    #[serde(flatten)]
    body: &'a Body,
    prev: &'a str,
}

impl Chain {
    fn run(mut self, rx: &mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter().take(MAX_BATCH - 1));
            let lines: Vec<_> = batch.iter().map(|j| (j.event, &j.body)).collect();
            let result = self.write(&lines);
            for job in batch {
                let result = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                match job.reply {
                    Some(reply) => {
                        let _ = reply.send((result, job.body));
                    }
                    None if result.is_err() => m::audit_error(job.event),
                    None => {}
                }
            }
        }
    }

    /// Writes the records as one batch; the chain advances only when it is written.
    fn write(&mut self, records: &[(&'static str, &Body)]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 512);
        let (mut seq, mut prev) = (self.seq, self.prev.clone());
        for (event, body) in records {
            let time = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
            let start = buf.len();
            let line = Line {
                time: &time,
                seq,
                event,
                body,
                prev: &prev,
            };
            serde_json::to_writer(&mut buf, &line).map_err(io::Error::other)?;
            prev = hex::encode(Sha256::digest(&buf[start..]));
            buf.push(b'\n');
            seq += 1;
        }
        self.sink.write_batch(&buf)?;
        m::audit_batch(records.len());
        (self.seq, self.prev) = (seq, prev);
        Ok(())
    }
}

impl Sink {
    fn write_batch(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(buf).and_then(|()| out.flush())
            }
            Sink::File { file, regular, len } => {
                let written = file.write_all(buf).and_then(|()| match regular {
                    true => file.sync_data(),
                    false => Ok(()),
                });
                match written {
                    Ok(()) => *len += buf.len() as u64,
                    // Cut a partly written batch back to the last whole line.
                    Err(_) if *regular => {
                        let _ = file.set_len(*len);
                    }
                    Err(_) => {}
                }
                written
            }
        }
    }
}

/// Opens (or creates) the file; for a non-empty regular file, the `seq` and hash of
/// its last line.
type Resumed = Option<(u64, String)>;

fn open_file(path: &Path) -> Result<(Sink, Resumed), String> {
    // Write-only: opened for reading too, a FIFO would be its own reader and never
    // refuse a write. The last line is read through a handle of its own.
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let (regular, len) = (meta.is_file(), meta.len());
    let resumed = match regular && len > 0 {
        true => Some(last_line(path, len)?),
        false => None,
    };
    Ok((Sink::File { file, regular, len }, resumed))
}

#[derive(serde::Deserialize)]
struct LastSeq {
    seq: u64,
}

fn last_line(path: &Path, len: u64) -> Result<(u64, String), String> {
    let from = len.saturating_sub(MAX_LINE);
    let mut tail = Vec::new();
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    (file.seek(SeekFrom::Start(from)))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(|e| e.to_string())?;
    let Some(body) = tail.strip_suffix(b"\n") else {
        return Err("its last line is incomplete (no newline): check it with audit-verify and repair it before restarting".into());
    };
    let start = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None if from == 0 => 0,
        None => return Err("its last line is longer than 64 KiB".into()),
    };
    let line = &body[start..];
    let last: LastSeq = serde_json::from_slice(line)
        .map_err(|_| "its last line is not an audit record with a seq".to_string())?;
    Ok((last.seq, hex::encode(Sha256::digest(line))))
}
