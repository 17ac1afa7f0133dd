//! Redaction: every occurrence of a secret value in a command's output,
//! and of its common encodings ([`forms`]), is replaced by
//! `[REDACTED:NAME]`, whatever the read boundaries.
//!
//! A [`Redactor`] is built once from the values; each output stream gets
//! its own [`Stream`], which holds back between reads only the end of what
//! it read that could be the start of a form (at most the longest form's
//! length less one byte), so a value split across reads is still found
//! and other output (a prompt, a progress line) is never delayed. Matching is leftmost-longest: where one value contains another,
//! the longer one is replaced whole.

mod forms;
#[doc(hidden)]
pub mod property;
mod search;
mod stream;

pub use forms::{MIN_ENCODED_LEN, forms};
pub use stream::Stream;

use search::Finder;

/// The matcher for a set of secrets. Its `Debug` output names the secrets,
/// never their values.
pub struct Redactor {
    finder: Finder,
    /// For each pattern, the index of its secret's marker.
    owner: Vec<usize>,
    /// `[REDACTED:NAME]`, by secret.
    markers: Vec<Vec<u8>>,
    /// The longest pattern's length.
    longest: usize,
    /// The patterns, sorted, to tell whether some text begins one.
    sorted: Vec<zeroize::Zeroizing<Vec<u8>>>,
    /// Bytes that begin a pattern, and pairs of bytes that do (a bitmap of
    /// 65,536 bits): most text is ruled out without a search.
    first: [bool; 256],
    pairs: Vec<u64>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .markers
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        f.debug_struct("Redactor")
            .field("secrets", &names)
            .field("patterns", &self.owner.len())
            .finish()
    }
}

/// The matcher could not be built (only for pathological pattern sets).
#[derive(Debug)]
pub struct BuildError(String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the redaction matcher could not be built: {}", self.0)
    }
}

impl std::error::Error for BuildError {}

/// The text that replaces a value of `name`.
pub fn marker(name: &str) -> String {
    format!("[REDACTED:{name}]")
}

impl Redactor {
    /// A redactor for `(name, value)` pairs. Empty values are ignored.
    pub fn new<'a>(
        secrets: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, BuildError> {
        let mut patterns: Vec<zeroize::Zeroizing<Vec<u8>>> = Vec::new();
        let mut owner = Vec::new();
        let mut markers = Vec::new();
        for (name, value) in secrets {
            if value.is_empty() {
                continue;
            }
            let index = markers.len();
            markers.push(marker(name).into_bytes());
            for form in forms(value) {
                if !patterns.iter().any(|p| **p == *form) {
                    patterns.push(form);
                    owner.push(index);
                }
            }
        }
        let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut first = [false; 256];
        let mut pairs = vec![0u64; 65536 / 64];
        for p in &patterns {
            first[usize::from(p[0])] = true;
            if let [a, b, ..] = p[..] {
                let i = usize::from(a) << 8 | usize::from(b);
                pairs[i / 64] |= 1 << (i % 64);
            }
        }
        let slices: Vec<&[u8]> = patterns.iter().map(|p| p.as_slice()).collect();
        let finder = Finder::new(&slices).map_err(|e| BuildError(e.to_string()))?;
        let mut sorted = patterns;
        sorted.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
        Ok(Self {
            finder,
            owner,
            markers,
            longest,
            sorted,
            first,
            pairs,
        })
    }

    /// A new stream (one per output: stdout and stderr each get one).
    pub fn stream(&self) -> Stream<'_> {
        Stream::new(self)
    }

    /// Redacts a whole buffer at once.
    pub fn redact(&self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut s = self.stream();
        s.push(text, &mut out);
        s.finish(&mut out);
        out
    }

    /// Whether some pattern begins with `text` (or is it).
    fn begins_a_pattern(&self, text: &[u8]) -> bool {
        match *text {
            [] => false,
            [a] => self.first[usize::from(a)],
            [a, b, ..] => {
                let i = usize::from(a) << 8 | usize::from(b);
                self.pairs[i / 64] & (1 << (i % 64)) != 0 && {
                    let at = self.sorted.partition_point(|p| p.as_slice() < text);
                    self.sorted.get(at).is_some_and(|p| p.starts_with(text))
                }
            }
        }
    }

    /// Copies `buf` to `out` with every match replaced, stopping before any
    /// match that could still grow with more input (unless `last`).
    /// Returns how many bytes of `buf` were consumed.
    fn process(&self, buf: &[u8], last: bool, out: &mut Vec<u8>) -> usize {
        // `safe`: the first position from which the rest of `buf` begins
        // some pattern. No match that starts before it can grow with more
        // input (it would have to begin at or after it), so text before it
        // that no match covers can be released.
        let safe = if last {
            buf.len()
        } else {
            let from = buf.len().saturating_sub(self.longest.saturating_sub(1));
            (from..buf.len())
                .find(|&p| self.begins_a_pattern(&buf[p..]))
                .unwrap_or(buf.len())
        };
        let mut at = 0;
        self.finder.each_match(buf, |m| {
            if m.start() >= safe {
                return false;
            }
            out.extend_from_slice(&buf[at..m.start()]);
            out.extend_from_slice(&self.markers[self.owner[m.pattern().as_usize()]]);
            at = m.end();
            true
        });
        if at < safe {
            out.extend_from_slice(&buf[at..safe]);
            at = safe;
        }
        at
    }
}

#[cfg(test)]
mod tests;
