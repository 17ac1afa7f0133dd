//! A command's output as the agent gets it: redacted first, then capped,
//! keeping the start and the end (where errors usually are) and saying
//! how much of the middle was left out.

/// One stream's kept output.
pub struct Capture {
    limit: usize,
    head: Vec<u8>,
    /// The latest bytes after the head; trimmed to `limit - head` now and
    /// then (it may briefly hold up to twice that).
    tail: Vec<u8>,
    total: u64,
}

impl Capture {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            head: Vec::new(),
            tail: Vec::new(),
            total: 0,
        }
    }

    fn head_limit(&self) -> usize {
        self.limit / 2
    }

    fn tail_limit(&self) -> usize {
        self.limit - self.head_limit()
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.head_limit().saturating_sub(self.head.len());
        if room > 0 {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return;
        }
        let keep = self.tail_limit();
        if bytes.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
        } else {
            self.tail.extend_from_slice(bytes);
            if self.tail.len() > 2 * keep {
                self.tail.drain(..self.tail.len() - keep);
            }
        }
    }

    /// The kept output as text (invalid UTF-8 shown as U+FFFD).
    pub fn text(&self) -> String {
        let keep = self.tail_limit();
        let tail = &self.tail[self.tail.len().saturating_sub(keep)..];
        let kept = (self.head.len() + tail.len()) as u64;
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.total > kept {
            out.push_str(&format!(
                "\n[… {} bytes of output left out (run.maxOutputBytes is {}) …]\n",
                self.total - kept,
                self.limit
            ));
        }
        out.push_str(&String::from_utf8_lossy(tail));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut c = Capture::new(16);
        c.push(b"hello ");
        c.push(b"world");
        assert_eq!(c.text(), "hello world");
        assert!(Capture::new(16).is_empty());
    }

    #[test]
    fn long_output_keeps_its_start_and_end() {
        let mut c = Capture::new(10);
        for chunk in [
            &b"0123"[..],
            b"456789abc",
            b"defghij",
            b"k",
            b"lmnopqrstuvwxyz",
        ] {
            c.push(chunk);
        }
        assert_eq!(
            c.text(),
            "01234\n[… 26 bytes of output left out (run.maxOutputBytes is 10) …]\nvwxyz"
        );
        // Exactly at the limit: nothing is left out.
        let mut c = Capture::new(10);
        c.push(b"0123456789");
        assert_eq!(c.text(), "0123456789");
    }
}
