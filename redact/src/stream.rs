//! One output stream's redaction: input arrives in reads of any size, and
//! what can no longer be part of a match is released at once.

use crate::Redactor;

/// The redaction state of one output stream.
pub struct Stream<'r> {
    redactor: &'r Redactor,
    /// Input not yet released: it may be the start of a match.
    held: Vec<u8>,
}

impl<'r> Stream<'r> {
    pub(crate) fn new(redactor: &'r Redactor) -> Self {
        Self {
            redactor,
            held: Vec::new(),
        }
    }

    /// Feeds one read; appends to `out` what is now final.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.held.is_empty() {
            let used = self.redactor.process(chunk, false, out);
            self.held.extend_from_slice(&chunk[used..]);
        } else {
            self.held.extend_from_slice(chunk);
            let used = self.redactor.process(&self.held, false, out);
            self.held.drain(..used);
        }
    }

    /// Ends the stream: releases what was held, redacted.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        self.redactor.process(&held, true, out);
        zeroize::Zeroize::zeroize(&mut { held });
    }

    /// Bytes held back, waiting for the next read.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        // What is held may be the first bytes of a value.
        zeroize::Zeroize::zeroize(&mut self.held);
    }
}
