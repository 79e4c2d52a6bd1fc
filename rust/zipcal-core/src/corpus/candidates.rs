//! Candidate storage: type sets in per-task segments, with their rows, windows
//! and token counts.

use crate::error::{Error, Result};

/// Where a candidate's type set lives: `len` ids from `start` in segment `seg`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) seg: u32,
    pub(super) len: u32,
}

/// Candidate type sets. The sets are stored in segments (each the output of one
/// ingestion task), so adding a batch moves its buffers instead of copying them
/// into one growing array.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    pub(super) segs: Vec<Vec<u32>>,
    pub(super) spans: Vec<Span>,
    pub(super) rows: Vec<u64>,
    pub(super) windows: Vec<u32>,
    pub(super) tokens: Vec<u64>,
}

impl Candidates {
    pub fn new() -> Self {
        Candidates::default()
    }

    /// Build from explicit sets (row = index, window 0, tokens = set size).
    pub fn from_sets(sets: &[Vec<u32>]) -> Self {
        let mut c = Candidates::new();
        for (i, s) in sets.iter().enumerate() {
            c.push_set(s, i as u64, 0, s.len() as u64);
        }
        c
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Distinct type ids of candidate `i`.
    #[inline]
    pub fn set(&self, i: usize) -> &[u32] {
        let s = self.spans[i];
        &self.segs[s.seg as usize][s.start..s.start + s.len as usize]
    }

    /// Every stored type id (the sets of all candidates, in no particular order).
    pub(super) fn all_types_mut(&mut self) -> impl Iterator<Item = &mut u32> {
        self.segs.iter_mut().flatten()
    }

    pub fn rows(&self) -> &[u64] {
        &self.rows
    }

    pub fn windows(&self) -> &[u32] {
        &self.windows
    }

    pub fn tokens(&self) -> &[u64] {
        &self.tokens
    }

    /// The segment new sets are written to (created if there is none).
    pub(super) fn tail(&mut self) -> &mut Vec<u32> {
        if self.segs.is_empty() {
            self.segs.push(Vec::new());
        }
        self.segs.last_mut().expect("a segment")
    }

    /// Record a candidate whose set was written to [`Candidates::tail`] from `start` on.
    pub(super) fn close(&mut self, start: usize, row: u64, window: u32, tokens: u64) {
        let seg = self.segs.len() - 1;
        let len = self.segs[seg].len() - start;
        self.spans.push(Span {
            start,
            seg: u32::try_from(seg).expect("fewer than 2^32 segments"),
            len: u32::try_from(len).expect("a set has fewer than 2^32 types"),
        });
        self.rows.push(row);
        self.windows.push(window);
        self.tokens.push(tokens);
    }

    /// Append a candidate with type set `set`.
    pub(super) fn push_set(&mut self, set: &[u32], row: u64, window: u32, tokens: u64) {
        let start = self.tail().len();
        self.tail().extend_from_slice(set);
        self.close(start, row, window, tokens);
    }

    /// Rebuild candidates from their flat parts (as exported by [`Candidates::offsets`],
    /// [`Candidates::flat_types`], ...), checking that they are consistent: offsets start
    /// at 0 and never decrease, every array has one entry per candidate, rows never
    /// decrease, and every type id is below `num_types`.
    pub fn from_parts(
        offsets: Vec<usize>,
        types: Vec<u32>,
        rows: Vec<u64>,
        windows: Vec<u32>,
        tokens: Vec<u64>,
        num_types: usize,
    ) -> Result<Candidates> {
        let bad = |what: &str| {
            Err(Error::InvalidInput(format!(
                "inconsistent candidate parts: {what}"
            )))
        };
        let n = rows.len();
        if offsets.len() != n + 1 || windows.len() != n || tokens.len() != n {
            return bad("array lengths differ");
        }
        if offsets[0] != 0 || offsets[n] != types.len() || offsets.windows(2).any(|w| w[0] > w[1]) {
            return bad("offsets are not a non-decreasing sequence from 0 to the number of types");
        }
        if offsets.windows(2).any(|w| w[1] - w[0] > u32::MAX as usize) {
            return bad("a set has more than 2^32 - 1 types");
        }
        if rows.windows(2).any(|w| w[0] > w[1]) {
            return bad("rows are not in order");
        }
        if types.iter().any(|&t| t as usize >= num_types) {
            return bad("a type id is out of range");
        }
        let spans = offsets
            .windows(2)
            .map(|w| Span {
                start: w[0],
                seg: 0,
                len: (w[1] - w[0]) as u32,
            })
            .collect();
        Ok(Candidates {
            segs: vec![types],
            spans,
            rows,
            windows,
            tokens,
        })
    }

    /// Start of each candidate's set in [`Candidates::flat_types`] (one more entry
    /// than candidates).
    pub fn offsets(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.len() + 1);
        let mut at = 0;
        out.push(at);
        for s in &self.spans {
            at += s.len as usize;
            out.push(at);
        }
        out
    }

    /// All type sets, concatenated in candidate order.
    pub fn flat_types(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.spans.iter().map(|s| s.len as usize).sum());
        for i in 0..self.len() {
            out.extend_from_slice(self.set(i));
        }
        out
    }

    /// Keep only the candidates whose `keep` flag is set, in their original order
    /// (their sets are copied into one new segment; the old ones are freed).
    pub(super) fn retain(&mut self, keep: &[bool]) {
        let mut out = Candidates::new();
        for (i, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
            out.push_set(self.set(i), self.rows[i], self.windows[i], self.tokens[i]);
        }
        *self = out;
    }

    /// Move `other`'s candidates after these (their segments are moved, not copied).
    pub(super) fn append(&mut self, other: Candidates) {
        let base = u32::try_from(self.segs.len()).expect("fewer than 2^32 segments");
        self.segs.extend(other.segs);
        self.spans.extend(other.spans.into_iter().map(|s| Span {
            seg: s.seg + base,
            ..s
        }));
        self.rows.extend(other.rows);
        self.windows.extend(other.windows);
        self.tokens.extend(other.tokens);
    }

    /// Interleave two row-ordered candidate lists into one, by row (`a` first on ties).
    pub(super) fn merge_by_row(a: Candidates, b: Candidates) -> Candidates {
        let n = a.len() + b.len();
        let base = u32::try_from(a.segs.len()).expect("fewer than 2^32 segments");
        let mut out = Candidates {
            segs: Vec::with_capacity(a.segs.len() + b.segs.len()),
            spans: Vec::with_capacity(n),
            rows: Vec::with_capacity(n),
            windows: Vec::with_capacity(n),
            tokens: Vec::with_capacity(n),
        };
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let take_a = j >= b.len() || (i < a.len() && a.rows[i] <= b.rows[j]);
            let (src, k, span) = if take_a {
                i += 1;
                (&a, i - 1, a.spans[i - 1])
            } else {
                j += 1;
                let s = b.spans[j - 1];
                (
                    &b,
                    j - 1,
                    Span {
                        seg: s.seg + base,
                        ..s
                    },
                )
            };
            out.spans.push(span);
            out.rows.push(src.rows[k]);
            out.windows.push(src.windows[k]);
            out.tokens.push(src.tokens[k]);
        }
        out.segs.extend(a.segs);
        out.segs.extend(b.segs);
        out
    }

    /// Shrink segment buffers to their length (done by the tasks that filled them,
    /// in parallel, so that kept candidates do not hold spare capacity).
    pub(super) fn shrink(&mut self) {
        for s in &mut self.segs {
            s.shrink_to_fit();
        }
    }
}
