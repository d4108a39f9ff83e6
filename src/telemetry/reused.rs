//! Per-thread buffers the formatters reuse from line to line, so formatting a line or a
//! span's fields does not allocate and grow a buffer each time. One rule for all of them:
//! a buffer is handed out empty, let go of once it grew past [`KEPT`], and never handed
//! out twice at once (tracing does not dispatch an event raised while it formats one, so
//! that does not happen through logging; the caller still gets `None` and a way around
//! rather than a panic).
use std::{cell::RefCell, thread::LocalKey};

/// A buffer that has grown past this is dropped after use rather than kept.
const KEPT: usize = 16 * 1024;

/// A reusable buffer: emptied before each use, its size checked after.
pub trait Buffer: Default {
    /// Empties it, keeping its capacity.
    fn clear(&mut self);
    /// Bytes it holds room for.
    fn capacity(&self) -> usize;
}

impl Buffer for String {
    fn clear(&mut self) {
        String::clear(self);
    }

    fn capacity(&self) -> usize {
        String::capacity(self)
    }
}

impl Buffer for Vec<u8> {
    fn clear(&mut self) {
        Vec::clear(self);
    }

    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
}

/// Runs `f` with this thread's buffer `key`, emptied, or with `None` when that buffer is
/// already in use further up the stack.
pub fn with<B: Buffer, T>(
    key: &'static LocalKey<RefCell<B>>,
    f: impl FnOnce(Option<&mut B>) -> T,
) -> T {
    key.with(|cell| {
        let Ok(mut buf) = cell.try_borrow_mut() else {
            return f(None);
        };
        buf.clear();
        let result = f(Some(&mut buf));
        if buf.capacity() > KEPT {
            *buf = B::default();
        }
        result
    })
}
