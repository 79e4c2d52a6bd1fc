//! One ingestion task: a slice of a batch tokenized against read-only views of
//! the interner and the chunk cache, and what it discovered.

use super::candidates::*;
use super::*;
use crate::cache::{ChunkCache, Hashed, HashedMap, KeyWords};
use crate::error::{Error, Result};
use crate::segment::{Segmenter, NO_TYPE};
use crate::text::{AsciiWords, Chunks};
use ahash::AHashMap;
use rayon::prelude::*;

/// What one task produced.
pub(super) struct TaskOut<'t> {
    pub(super) candidates: Candidates,
    /// Occurrences of each entry of `candidates`' type lists (aligned with them).
    pub(super) set_counts: Vec<u32>,
    pub(super) report: IngestReport,
    /// Documents (index in the batch) that met a chunk missing from the cache.
    pub(super) deferred: Vec<usize>,
    /// Their type sequences so far, concatenated: resolved ids, and for each missing
    /// chunk the pair `[MISSING, index into misses]`. `partial_ends[i]` ends document i.
    pub(super) partial: Vec<u32>,
    pub(super) partial_ends: Vec<usize>,
    /// Distinct chunks missing from the cache (with their hashes), in order of
    /// first appearance.
    pub(super) misses: Vec<Hashed<'t>>,
}

/// Chunks encoded together in one tokenizer call.
pub(super) const JOIN_CHUNKS: usize = 64;

/// Chunks per parallel job when new chunks are resolved in words mode.
pub(super) const WORD_BLOCK: usize = 1024;

/// The words of a block of chunks, resolved as far as the known words allow.
#[derive(Default)]
pub(super) struct WordBlock {
    /// Word ids of the block's chunks, [`NEW_WORD`] for words not yet interned.
    pub(super) words: Resolved,
    /// The new words' text, concatenated, and where each ends (with its hash).
    pub(super) new: String,
    pub(super) new_ends: Vec<(usize, u64)>,
}

/// Type ids of a batch's new chunks, flat: chunk `i`'s ids are
/// `ids[spans[i].0..spans[i].0 + spans[i].1]`.
#[derive(Default)]
pub(super) struct Resolved {
    pub(super) ids: Vec<u32>,
    pub(super) spans: Vec<(usize, usize)>,
}

impl Resolved {
    pub(super) fn with_capacity(ids: usize, chunks: usize) -> Self {
        Resolved {
            ids: Vec::with_capacity(ids),
            spans: Vec::with_capacity(chunks),
        }
    }

    pub(super) fn get(&self, i: usize) -> &[u32] {
        let (start, len) = self.spans[i];
        &self.ids[start..start + len]
    }

    /// Append the chunks of another (their spans moved past the ids already here).
    pub(super) fn append(&mut self, other: Resolved) {
        let base = self.ids.len();
        self.ids.extend_from_slice(&other.ids);
        self.spans.extend(
            other
                .spans
                .into_iter()
                .map(|(start, len)| (base + start, len)),
        );
    }

    /// Give chunk `i` the ids `v` (stored at the end).
    pub(super) fn set(&mut self, i: usize, v: &[u32]) {
        self.spans[i] = (self.ids.len(), v.len());
        self.ids.extend_from_slice(v);
    }
}

/// Marks a word not yet interned while a chunk is resolved.
pub(super) const NEW_WORD: u32 = u32::MAX;

/// Chunks whose cache slots are prefetched before they are looked up.
pub(super) const LOOKAHEAD: usize = 16;

/// Marks a missing chunk in a partial sequence (type ids stay below 2^31).
pub(super) const MISSING: u32 = u32::MAX - 1;

/// Read-only view shared by the tasks of a batch.
pub(super) struct View<'a, 't> {
    pub(super) segmenter: &'a Segmenter,
    pub(super) cache: &'a ChunkCache,
    /// Chunks resolved for this batch only (cache full, or too long to cache).
    pub(super) extra: &'a AHashMap<&'t str, Box<[u32]>>,
    pub(super) config: &'a CorpusConfig,
    pub(super) chunked: bool,
}

/// Per-task state.
pub(super) struct Task<'v, 'a, 't> {
    pub(super) view: &'v View<'a, 't>,
    pub(super) out: TaskOut<'t>,
    pub(super) seen_misses: HashedMap<'t, u32>,
    pub(super) seq: Vec<u32>,
    pub(super) scratch: Vec<u32>,
}

impl<'v, 'a, 't> Task<'v, 'a, 't> {
    pub(super) fn new(view: &'v View<'a, 't>) -> Self {
        Task {
            view,
            out: TaskOut {
                candidates: Candidates::new(),
                set_counts: Vec::new(),
                report: IngestReport::default(),
                deferred: Vec::new(),
                partial: Vec::new(),
                partial_ends: Vec::new(),
                misses: Vec::new(),
            },
            seen_misses: HashedMap::default(),
            seq: Vec::new(),
            scratch: Vec::new(),
        }
    }

    #[inline]
    pub(super) fn lookup(&self, chunk: &str, hash: u64, words: KeyWords) -> Option<&'v [u32]> {
        self.view
            .cache
            .get_words(chunk, hash, words)
            .or_else(|| self.view.extra.get(chunk).map(|v| &**v))
    }

    /// Append the ids of every chunk of `chunks` to `seq`, from the cache; a chunk
    /// missing from it gets the pair `[MISSING, index into misses]`, and each distinct
    /// missing chunk is recorded once. Returns whether any was missing.
    /// `chunks` come with their [`KeyWords`].
    #[inline]
    pub(super) fn lookup_all(
        &mut self,
        mut chunks: impl Iterator<Item = (&'t str, KeyWords)>,
        seq: &mut Vec<u32>,
    ) -> bool {
        let cache = self.view.cache;
        let mut missing = false;
        // Chunks are hashed and their cache slots prefetched a block ahead of
        // their lookups, so that the memory reads of a block overlap.
        let mut block: [(&'t str, u64, KeyWords); LOOKAHEAD] =
            [("", 0, KeyWords::default()); LOOKAHEAD];
        loop {
            let mut n = 0;
            for (chunk, words) in chunks.by_ref().take(LOOKAHEAD) {
                let h = cache.hash_words(chunk, words);
                cache.prefetch(h);
                block[n] = (chunk, h, words);
                n += 1;
            }
            for &(chunk, h, words) in &block[..n] {
                match self.lookup(chunk, h, words) {
                    Some(v) => push_ids(seq, v),
                    None => {
                        missing = true;
                        let next = self.out.misses.len() as u32;
                        let key = Hashed {
                            text: chunk,
                            hash: h,
                        };
                        let idx = *self.seen_misses.entry(key).or_insert_with(|| {
                            self.out.misses.push(key);
                            next
                        });
                        seq.extend_from_slice(&[MISSING, idx]);
                    }
                }
            }
            if n < LOOKAHEAD {
                return missing;
            }
        }
    }

    /// Process document `k` of the batch (text `text`, row `row`), resolving every
    /// chunk from the cache. A document with chunks missing from the cache is deferred:
    /// its sequence so far is kept with a marker per missing chunk, and each distinct
    /// missing chunk is recorded once (its text and hash).
    pub(super) fn doc(&mut self, k: usize, text: &'t str, row: u64) -> Result<()> {
        // The sequence is built at the end of `partial`: kept there if the document
        // is deferred, emitted and cut off otherwise (no copy either way).
        let mut seq = std::mem::take(&mut self.out.partial);
        let start = seq.len();
        let mut missing = false;
        if self.view.chunked {
            // Keys finer than chunks where the whole text allows: its words in words
            // mode when it is ASCII, its byte-level pieces where a tokenizer's fast
            // path takes it (`piece_keys`). A word or piece recurs more often than the
            // chunks around it (" China," and " China." are two chunks), so fewer
            // keys are new and the table is smaller; a key's ids are those of its
            // text whatever the key. (Splitting only the ASCII chunks of other texts
            // was slower in alternating runs; see docs/performance.md.)
            let segmenter = self.view.segmenter;
            let alone = |c: &'t str| (c, KeyWords::of(c.as_bytes()));
            missing = match segmenter {
                Segmenter::Words if text.is_ascii() => {
                    self.lookup_all(keyed_ascii_words(text), &mut seq)
                }
                Segmenter::Tokenizer(t) => match t.piece_keys(text) {
                    Some(pieces) => self.lookup_all(pieces.map(alone), &mut seq),
                    None => self.lookup_all(Chunks::new(text).map(alone), &mut seq),
                },
                Segmenter::Words => self.lookup_all(Chunks::new(text).map(alone), &mut seq),
            };
        } else if let Segmenter::Tokenizer(t) = self.view.segmenter {
            t.push_types_plain(text, &mut seq)?;
        }
        if missing {
            self.out.deferred.push(k);
            self.out.partial_ends.push(seq.len());
        } else {
            self.emit_doc(&seq[start..], row);
            seq.truncate(start);
        }
        self.out.partial = seq;
        Ok(())
    }

    /// The types of a task's missing chunks, now resolved (their cache slots are
    /// read a block ahead, as in [`Task::doc`]).
    pub(super) fn resolve_misses(&self, misses: &[Hashed<'t>]) -> Result<Vec<&'v [u32]>> {
        let mut out = Vec::with_capacity(misses.len());
        for (k, m) in misses.iter().enumerate() {
            if k % LOOKAHEAD == 0 {
                for ahead in &misses[k..misses.len().min(k + LOOKAHEAD)] {
                    self.view.cache.prefetch(ahead.hash);
                }
            }
            let words = KeyWords::of(m.text.as_bytes());
            out.push(self.lookup(m.text, m.hash, words).ok_or_else(|| {
                Error::InvalidInput(format!("internal: chunk {:?} was not resolved", m.text))
            })?);
        }
        Ok(out)
    }

    /// Finish a deferred document: replace its missing-chunk markers by their types
    /// (`resolved`, indexed like the task's misses).
    pub(super) fn finish_doc(
        &mut self,
        partial: &[u32],
        resolved: &[&[u32]],
        row: u64,
    ) -> Result<()> {
        let mut seq = std::mem::take(&mut self.seq);
        seq.clear();
        let mut i = 0;
        while i < partial.len() {
            if partial[i] == MISSING {
                push_ids(&mut seq, resolved[partial[i + 1] as usize]);
                i += 2;
            } else {
                seq.push(partial[i]);
                i += 1;
            }
        }
        self.emit_doc(&seq, row);
        self.seq = seq;
        Ok(())
    }

    pub(super) fn emit_doc(&mut self, seq: &[u32], row: u64) {
        match self.view.config.unit {
            Unit::Doc => self.emit(seq, row, 0),
            Unit::Prefix(len) => self.emit(&seq[..seq.len().min(len)], row, 0),
            Unit::Window(len) => {
                for (w, part) in seq.chunks(len.max(1)).enumerate() {
                    self.emit(part, row, w as u32);
                }
            }
        }
    }

    pub(super) fn emit(&mut self, toks: &[u32], row: u64, window: u32) {
        if toks.len() < self.view.config.min_tokens.max(1) {
            self.out.report.short_candidates += 1;
            return;
        }
        let c = &mut self.out.candidates;
        let set = c.tail();
        let start = set.len();
        let counts = &mut self.out.set_counts;
        let max = toks.iter().copied().filter(|&t| t != NO_TYPE).max();
        match max {
            None => {}
            Some(max) if (max as usize) < DEDUPE_TYPES => {
                DEDUPE.with(|d| d.borrow_mut().distinct(toks, max, set, counts))
            }
            Some(_) => {
                self.scratch.clear();
                self.scratch
                    .extend(toks.iter().copied().filter(|&t| t != NO_TYPE));
                self.scratch.sort_unstable();
                let mut i = 0;
                while i < self.scratch.len() {
                    let t = self.scratch[i];
                    let mut j = i + 1;
                    while j < self.scratch.len() && self.scratch[j] == t {
                        j += 1;
                    }
                    counts.push((j - i) as u32);
                    set.push(t);
                    i = j;
                }
            }
        }
        c.close(start, row, window, toks.len() as u64);
        self.out.report.candidates += 1;
        self.out.report.tokens += toks.len() as u64;
    }
}

/// Shards of a batch's missing chunks, deduplicated in parallel.
pub(super) const MISS_SHARDS: usize = 64;

/// The distinct missing chunks of a batch's tasks, in order of first appearance (task
/// after task). Each task's misses are split by hash, each shard is deduplicated
/// by one job (taking tasks in order), and a last pass keeps the first occurrences
/// in their order. Depends only on the tasks' misses, not on the thread count.
pub(super) fn distinct_misses<'t>(outs: &[TaskOut<'t>]) -> Vec<Hashed<'t>> {
    // Middle bits of the hash: a hash map uses its low bits for the slot and its top
    // bits as tags, which must stay varied inside a shard.
    let shard = |h: u64| (h >> 32) as usize & (MISS_SHARDS - 1);
    let parts: Vec<Vec<Vec<u32>>> = crate::threads::install(|| {
        outs.par_iter()
            .map(|o| {
                let mut p = vec![Vec::new(); MISS_SHARDS];
                for (k, m) in o.misses.iter().enumerate() {
                    p[shard(m.hash)].push(k as u32);
                }
                p
            })
            .collect()
    });
    let firsts: Vec<Vec<(u32, u32)>> = crate::threads::install(|| {
        (0..MISS_SHARDS)
            .into_par_iter()
            .map(|s| {
                let n: usize = parts.iter().map(|p| p[s].len()).sum();
                let mut seen: HashedMap<()> =
                    HashedMap::with_capacity_and_hasher(n, Default::default());
                let mut first = Vec::new();
                for (t, p) in parts.iter().enumerate() {
                    for &k in &p[s] {
                        if seen.insert(outs[t].misses[k as usize], ()).is_none() {
                            first.push((t as u32, k));
                        }
                    }
                }
                first
            })
            .collect()
    });
    let mut keep: Vec<Vec<bool>> = outs.iter().map(|o| vec![false; o.misses.len()]).collect();
    for &(t, k) in firsts.iter().flatten() {
        keep[t as usize][k as usize] = true;
    }
    let mut unique = Vec::with_capacity(firsts.iter().map(Vec::len).sum());
    for (o, keep) in outs.iter().zip(&keep) {
        unique.extend(
            o.misses
                .iter()
                .zip(keep)
                .filter(|(_, &k)| k)
                .map(|(m, _)| *m),
        );
    }
    unique
}

/// Append a key's ids. Most keys are one word or token: a push. Two to four ids are
/// copied as two overlapping 8-byte moves rather than by a call to `memcpy`, which
/// `extend_from_slice` makes for a length unknown at compile time.
#[inline]
pub(super) fn push_ids(seq: &mut Vec<u32>, ids: &[u32]) {
    let n = ids.len();
    if n == 1 {
        seq.push(ids[0]);
    } else if (2..=4).contains(&n) {
        seq.reserve(4);
        // SAFETY: ids[0..2] and ids[n-2..n] are in bounds (n >= 2); the writes land in
        // seq's spare capacity (at least 4 >= n elements past its length), and
        // together they cover all n new elements, which are then initialised.
        unsafe {
            let src = ids.as_ptr();
            let dst = seq.as_mut_ptr().add(seq.len());
            let head = (src as *const u64).read_unaligned();
            let tail = (src.add(n - 2) as *const u64).read_unaligned();
            (dst as *mut u64).write_unaligned(head);
            (dst.add(n - 2) as *mut u64).write_unaligned(tail);
            seq.set_len(seq.len() + n);
        }
    } else {
        seq.extend_from_slice(ids);
    }
}

/// Candidates whose type ids are all below this are deduplicated with a per-thread
/// table indexed by type id (4 bytes per type, so at most 16 MiB per thread), the
/// others by sorting.
pub(super) const DEDUPE_TYPES: usize = 1 << 22;

/// Tokens between the prefetch of a type's dedupe entry and its use.
pub(super) const DEDUPE_AHEAD: usize = 16;

/// Per-thread table for deduplicating a candidate's types in one pass: a sparse set.
/// `at[t]` is where type `t` stands in the current candidate's set if it is there;
/// an entry left by an earlier candidate points past the set, or at another type,
/// so the table is never cleared.
#[derive(Default)]
pub(super) struct Dedupe {
    pub(super) at: Vec<u32>,
}

thread_local! {
    static DEDUPE: std::cell::RefCell<Dedupe> = std::cell::RefCell::new(Dedupe::default());
}

impl Dedupe {
    /// Append the distinct types of `toks` (all below `max + 1`, [`NO_TYPE`] skipped)
    /// to `set` in order of first appearance, and their occurrences to `counts`.
    ///
    /// Without a branch on whether a type was seen (that branch goes either way
    /// about as often as a text brings new types): both vectors get room for every
    /// token up front, each token writes its slot (its own if seen, the next free one
    /// if not), and the vectors are cut back at the end.
    pub(super) fn distinct(
        &mut self,
        toks: &[u32],
        max: u32,
        set: &mut Vec<u32>,
        counts: &mut Vec<u32>,
    ) {
        if self.at.len() <= max as usize {
            self.at.resize(max as usize + 1, 0);
        }
        let (base, cbase) = (set.len(), counts.len());
        set.resize(base + toks.len(), 0);
        counts.resize(cbase + toks.len(), 0);
        let (s, c) = (&mut set[base..], &mut counts[cbase..]);
        let at = &mut self.at[..];
        let mut n = 0usize;
        for (i, &t) in toks.iter().enumerate() {
            // Entries of rarer types are outside the CPU caches: ask for them a few
            // tokens ahead.
            if let Some(&ahead) = toks.get(i + DEDUPE_AHEAD) {
                crate::cache::prefetch_at(at, ahead as usize);
            }
            if t == NO_TYPE {
                continue;
            }
            let k = at[t as usize] as usize;
            // `k` may be stale (left by another candidate): it counts only if it
            // points inside this set at this type.
            let seen = (k < n) & (s[k.min(n)] == t);
            let slot = if seen { k } else { n };
            at[t as usize] = slot as u32;
            s[slot] = t;
            c[slot] += 1;
            n += usize::from(!seen);
        }
        set.truncate(base + n);
        counts.truncate(cbase + n);
    }
}

/// The words of an ASCII text with their [`KeyWords`], read from the text around each
/// word (the cache keys of words mode).
pub(super) fn keyed_ascii_words(text: &str) -> impl Iterator<Item = (&str, KeyWords)> {
    let mut words = AsciiWords::new(text);
    std::iter::from_fn(move || {
        let (s, e) = words.next_span()?;
        Some((&text[s..e], KeyWords::within(text.as_bytes(), s, e)))
    })
}

/// Whether a text is skipped as empty (only whitespace).
pub(super) fn is_blank(t: &str) -> bool {
    t.trim_matches(crate::text::is_space).is_empty()
}
