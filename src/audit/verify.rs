//! `audit-verify`: reads an audit file line by line and checks what the writer
//! promises: the first line is the `open` line (`seq` 0, `prev` 64 zeros), each later
//! line's `seq` is one more than the line before and its `prev` the SHA-256 of that
//! line's bytes. The first line that breaks this is named; an edited line shows at the
//! line after it, a deleted, reordered or inserted one where it happened. Only the
//! chain is checked: an edit of the very last line needs a copy of its hash kept
//! elsewhere (see docs/callers-and-audit.md).
use std::io::BufRead;

use sha2::{Digest, Sha256};

use super::writer::GENESIS;

/// The first line that breaks the chain.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct BadLine {
    /// 1-based line number.
    pub line: u64,
    /// What does not match.
    pub why: String,
}

#[derive(serde::Deserialize)]
struct Head {
    seq: u64,
    event: String,
    prev: String,
}

/// Checks every line; the number of lines when the chain holds.
pub fn verify(mut input: impl BufRead) -> Result<u64, BadLine> {
    let (mut n, mut prev, mut seq) = (0u64, GENESIS.to_string(), 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input.read_until(b'\n', &mut line);
        let bad = |why: String| BadLine { line: n + 1, why };
        match read {
            Ok(0) => return Ok(n),
            Ok(_) => {}
            Err(e) => return Err(bad(format!("cannot read: {e}"))),
        }
        let Some(text) = line.strip_suffix(b"\n") else {
            return Err(bad("incomplete line (no newline)".into()));
        };
        let head: Head = serde_json::from_slice(text)
            .map_err(|_| bad("not an audit record (seq, event, prev)".into()))?;
        if n == 0 && head.event != "open" {
            return Err(bad(format!("the first line is {:?}, not open", head.event)));
        }
        if head.seq != seq {
            return Err(bad(format!("seq {} where {seq} was due", head.seq)));
        }
        if head.prev != prev {
            return Err(bad("prev is not the SHA-256 of the line before".into()));
        }
        prev = hex::encode(Sha256::digest(text));
        seq += 1;
        n += 1;
    }
}
