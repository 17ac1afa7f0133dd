//! Finding every leftmost-longest occurrence of many patterns, fast.
//!
//! aho-corasick's automaton finds the matches; what makes it fast is a
//! prefilter that skips text where no pattern can start. Its SIMD one
//! (Teddy, `aho_corasick::packed`) serves at most 64 patterns, and ten
//! secrets with their encodings are about a hundred, so the automaton
//! alone would step through every byte (about 400 MB/s here). Instead the
//! patterns are split into groups of 64, each with its own Teddy searcher,
//! and the automaton is only asked, anchored, for the longest match at the
//! first position where some group found one (docs/BENCHMARKS.md, "Use
//! without reveal"). Where Teddy cannot run (a CPU without SSSE3), the
//! automaton searches alone.

use aho_corasick::{
    AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Anchored, Input, Match, MatchKind, Span,
    StartKind, packed,
};

/// The most patterns one Teddy searcher takes.
const GROUP: usize = 64;

pub(crate) struct Finder {
    /// Every pattern, leftmost-longest, searchable anchored or not.
    automaton: AhoCorasick,
    /// Teddy searchers over the patterns, 64 at a time; empty when Teddy
    /// is unavailable.
    groups: Vec<packed::Searcher>,
}

impl Finder {
    pub(crate) fn new(patterns: &[&[u8]]) -> Result<Self, aho_corasick::BuildError> {
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .start_kind(StartKind::Both)
            .build(patterns)?;
        let groups: Option<Vec<packed::Searcher>> = patterns
            .chunks(GROUP)
            .map(|group| {
                packed::Config::new()
                    .builder()
                    .extend(group.iter().copied())
                    .build()
            })
            .collect();
        Ok(Self {
            automaton,
            groups: groups.unwrap_or_default(),
        })
    }

    /// Calls `each` with the leftmost-longest, non-overlapping matches in
    /// `buf`, in order, until it returns false.
    pub(crate) fn each_match(&self, buf: &[u8], mut each: impl FnMut(Match) -> bool) {
        if self.groups.is_empty() {
            for m in self.automaton.find_iter(buf) {
                if !each(m) {
                    return;
                }
            }
            return;
        }
        let first_from = |group: &packed::Searcher, from: usize| {
            group
                .find_in(buf, Span::from(from..buf.len()))
                .map(|m| m.start())
        };
        // Where each group's next match starts (none: no more in it).
        let mut next: Vec<Option<usize>> = self.groups.iter().map(|g| first_from(g, 0)).collect();
        while let Some(start) = next.iter().flatten().min().copied() {
            // A pattern starts here, so the anchored search finds the
            // longest one that does.
            let input = Input::new(buf)
                .span(start..buf.len())
                .anchored(Anchored::Yes);
            let resume = match self.automaton.find(input) {
                Some(m) => {
                    if !each(m) {
                        return;
                    }
                    m.end().max(start + 1)
                }
                None => start + 1,
            };
            for (group, at) in self.groups.iter().zip(next.iter_mut()) {
                if at.is_some_and(|s| s < resume) {
                    *at = first_from(group, resume);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed-seed generator (xorshift64*), for reproducible cases.
    fn generator(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// With several Teddy groups, the matches are exactly the automaton's
    /// own leftmost-longest ones: same starts, ends and patterns, also
    /// where patterns of different groups overlap or contain each other.
    #[test]
    fn grouped_search_finds_what_the_automaton_alone_finds() {
        for seed in 1..=20u64 {
            let mut next = generator(seed);
            let alphabet = b"abcAB12=/+-%\n ";
            let mut patterns: Vec<Vec<u8>> = (0..150)
                .map(|_| {
                    let len = 1 + (next() >> 40) as usize % 12;
                    (0..len)
                        .map(|_| alphabet[(next() >> 40) as usize % alphabet.len()])
                        .collect()
                })
                .collect();
            patterns.sort();
            patterns.dedup();
            let slices: Vec<&[u8]> = patterns.iter().map(Vec::as_slice).collect();
            let finder = Finder::new(&slices).unwrap_or_else(|e| panic!("{e}"));
            assert!(finder.groups.len() > 1 || finder.groups.is_empty());
            let mut hay = Vec::new();
            for _ in 0..400 {
                if next().is_multiple_of(3) {
                    hay.extend_from_slice(&patterns[(next() >> 40) as usize % patterns.len()]);
                } else {
                    hay.push(alphabet[(next() >> 40) as usize % alphabet.len()]);
                }
            }
            let mut grouped = Vec::new();
            finder.each_match(&hay, |m| {
                grouped.push(m);
                true
            });
            let alone: Vec<Match> = finder.automaton.find_iter(&hay[..]).collect();
            assert_eq!(grouped, alone, "seed {seed}");
        }
    }
}
