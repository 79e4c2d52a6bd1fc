//! Streaming ingestion: text batches in, candidate type sets and type counts out.
//!
//! Each batch is split into tasks of about `task_bytes` of text (independent of the
//! thread count, so results never depend on it). Tasks run in parallel against a
//! read-only view of the word interner and the chunk cache; what they discover is
//! merged sequentially, in task order, after the batch.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::sync::Arc;

use ahash::AHashMap;
use arrow_array::{
    Array, GenericStringArray, LargeStringArray, OffsetSizeTrait, StringArray, StringViewArray,
};
use arrow_schema::DataType;
use rayon::prelude::*;

use crate::cache::{ChunkCache, Hashed, HashedMap, KeyWords, NewChunk};
use crate::error::{Error, Result};
use crate::parquet::TextBatch;
use crate::segment::{joinable, Segmenter, NO_TYPE};
use crate::text::{lowercase_into, words, AsciiWords, Chunks};

/// What a candidate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A whole document (row).
    Doc,
    /// A document's first tokens, at most this many: what a calibration row of that
    /// length holds when documents are truncated.
    Prefix(usize),
    /// A window of this many tokens inside a document (the first one starts at the
    /// document's start, the last one may be shorter).
    Window(usize),
}

/// Ingestion settings.
#[derive(Clone, Debug)]
pub struct CorpusConfig {
    pub unit: Unit,
    /// Candidates with fewer tokens than this are skipped.
    pub min_tokens: usize,
    /// Most distinct chunks kept in the tokenization cache.
    pub cache_capacity: usize,
    /// Approximate bytes of text per parallel task. Results do not depend on it.
    /// 256 KiB: a task's text and type sequences stay within a core's L2 cache
    /// beside the hot part of the chunk cache, and the last tasks of a batch leave
    /// less of it to one core; words mode ran 2-9% faster than with 1 MiB tasks on
    /// 200 MB (median of each of four sets of alternating runs), GPT-2 about the same.
    pub task_bytes: usize,
    /// Keep at most this many candidates (the largest type sets); `None` keeps all.
    /// Memory then stays bounded whatever the corpus size, and [`Corpus::evicted_bound`]
    /// tells whether greedy on the kept candidates provably equals greedy on all.
    pub max_candidates: Option<usize>,
}

/// Default [`CorpusConfig::task_bytes`].
pub const DEFAULT_TASK_BYTES: usize = 256 << 10;

impl Default for CorpusConfig {
    fn default() -> Self {
        CorpusConfig {
            unit: Unit::Doc,
            min_tokens: 1,
            cache_capacity: 4_000_000,
            task_bytes: DEFAULT_TASK_BYTES,
            max_candidates: None,
        }
    }
}

/// Counters over everything ingested so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub rows: u64,
    pub null_rows: u64,
    pub empty_rows: u64,
    pub short_candidates: u64,
    pub candidates: u64,
    pub evicted_candidates: u64,
    pub invalid_utf8_rows: u64,
    pub tokens: u64,
    pub bytes: u64,
}

/// Where a candidate's type set lives: `len` ids from `start` in segment `seg`.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: usize,
    seg: u32,
    len: u32,
}

/// Candidate type sets. The sets are stored in segments (each the output of one
/// ingestion task), so adding a batch moves its buffers instead of copying them
/// into one growing array.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    segs: Vec<Vec<u32>>,
    spans: Vec<Span>,
    rows: Vec<u64>,
    windows: Vec<u32>,
    tokens: Vec<u64>,
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
    fn all_types_mut(&mut self) -> impl Iterator<Item = &mut u32> {
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
    fn tail(&mut self) -> &mut Vec<u32> {
        if self.segs.is_empty() {
            self.segs.push(Vec::new());
        }
        self.segs.last_mut().expect("a segment")
    }

    /// Record a candidate whose set was written to [`Candidates::tail`] from `start` on.
    fn close(&mut self, start: usize, row: u64, window: u32, tokens: u64) {
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
    fn push_set(&mut self, set: &[u32], row: u64, window: u32, tokens: u64) {
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
    fn retain(&mut self, keep: &[bool]) {
        let mut out = Candidates::new();
        for (i, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
            out.push_set(self.set(i), self.rows[i], self.windows[i], self.tokens[i]);
        }
        *self = out;
    }

    /// Move `other`'s candidates after these (their segments are moved, not copied).
    fn append(&mut self, other: Candidates) {
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
    fn merge_by_row(a: Candidates, b: Candidates) -> Candidates {
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
    fn shrink(&mut self) {
        for s in &mut self.segs {
            s.shrink_to_fit();
        }
    }
}

/// Interned word types (words mode): names stored back to back in one string,
/// found through a table of ids. New words are hashed where they are found, in
/// parallel, so that interning them in order costs one probe each.
struct Interner {
    table: hashbrown::HashTable<u32>,
    text: String,
    /// `ends[id]` ends the name of `id` in `text` (it starts where `id - 1` ends).
    ends: Vec<usize>,
    hasher: ahash::RandomState,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            table: hashbrown::HashTable::new(),
            text: String::new(),
            ends: Vec::new(),
            // Fixed seeds: deterministic, like every other table of the core.
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
        }
    }
}

/// The name of `id` in an interner's `text` / `ends`.
#[inline]
fn name_of<'a>(text: &'a str, ends: &[usize], id: u32) -> &'a str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &text[start..ends[i]]
}

impl Interner {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn name(&self, id: u32) -> Option<&str> {
        ((id as usize) < self.ends.len()).then(|| name_of(&self.text, &self.ends, id))
    }

    #[inline]
    fn hash(&self, word: &str) -> u64 {
        self.hasher.hash_one(word)
    }

    /// The id of `word` (whose [`Interner::hash`] is `hash`), if it is interned.
    #[inline]
    fn get_hashed(&self, word: &str, hash: u64) -> Option<u32> {
        self.table
            .find(hash, |&id| name_of(&self.text, &self.ends, id) == word)
            .copied()
    }

    fn get(&self, word: &str) -> Option<u32> {
        self.get_hashed(word, self.hash(word))
    }

    /// The id of `word` (whose hash is `hash`), interned if new.
    fn intern_hashed(&mut self, word: &str, hash: u64) -> Result<u32> {
        let Interner {
            table,
            text,
            ends,
            hasher,
        } = self;
        let entry = table.entry(
            hash,
            |&id| name_of(text, ends, id) == word,
            |&id| hasher.hash_one(name_of(text, ends, id)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => Ok(*e.get()),
            hashbrown::hash_table::Entry::Vacant(e) => {
                let id = ends.len() as u32;
                if id >= MAX_TYPES {
                    return Err(Error::Capacity(u64::from(MAX_TYPES)));
                }
                text.push_str(word);
                ends.push(text.len());
                e.insert(id);
                Ok(id)
            }
        }
    }

    fn intern(&mut self, word: &str) -> Result<u32> {
        self.intern_hashed(word, self.hash(word))
    }
}

/// Most distinct word types (ids stay clear of [`NO_TYPE`]).
const MAX_TYPES: u32 = 1 << 31;
/// Chunks longer than this are tokenized every time rather than cached.
const MAX_CACHED_CHUNK: usize = 256;

/// The corpus being ingested: candidates, type counts, caches.
pub struct Corpus {
    segmenter: Arc<Segmenter>,
    config: CorpusConfig,
    words: Interner,
    cache: ChunkCache,
    counts: Vec<u64>,
    candidates: Candidates,
    report: IngestReport,
    evicted_bound: Option<u64>,
}

/// What one task produced.
struct TaskOut<'t> {
    candidates: Candidates,
    /// Occurrences of each entry of `candidates`' type lists (aligned with them).
    set_counts: Vec<u32>,
    report: IngestReport,
    /// Documents (index in the batch) that met a chunk missing from the cache.
    deferred: Vec<usize>,
    /// Their type sequences so far, concatenated: resolved ids, and for each missing
    /// chunk the pair `[MISSING, index into misses]`. `partial_ends[i]` ends document i.
    partial: Vec<u32>,
    partial_ends: Vec<usize>,
    /// Distinct chunks missing from the cache (with their hashes), in order of
    /// first appearance.
    misses: Vec<Hashed<'t>>,
}

/// Chunks encoded together in one tokenizer call.
const JOIN_CHUNKS: usize = 64;

/// Chunks per parallel job when new chunks are resolved in words mode.
const WORD_BLOCK: usize = 1024;

/// The words of a block of chunks, resolved as far as the known words allow.
#[derive(Default)]
struct WordBlock {
    /// Word ids of the block's chunks, [`NEW_WORD`] for words not yet interned.
    words: Resolved,
    /// The new words' text, concatenated, and where each ends (with its hash).
    new: String,
    new_ends: Vec<(usize, u64)>,
}

/// Type ids of a batch's new chunks, flat: chunk `i`'s ids are
/// `ids[spans[i].0..spans[i].0 + spans[i].1]`.
#[derive(Default)]
struct Resolved {
    ids: Vec<u32>,
    spans: Vec<(usize, usize)>,
}

impl Resolved {
    fn with_capacity(ids: usize, chunks: usize) -> Self {
        Resolved {
            ids: Vec::with_capacity(ids),
            spans: Vec::with_capacity(chunks),
        }
    }

    fn get(&self, i: usize) -> &[u32] {
        let (start, len) = self.spans[i];
        &self.ids[start..start + len]
    }

    /// Append the chunks of another (their spans moved past the ids already here).
    fn append(&mut self, other: Resolved) {
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
    fn set(&mut self, i: usize, v: &[u32]) {
        self.spans[i] = (self.ids.len(), v.len());
        self.ids.extend_from_slice(v);
    }
}

/// Marks a word not yet interned while a chunk is resolved.
const NEW_WORD: u32 = u32::MAX;

/// Chunks whose cache slots are prefetched before they are looked up.
const LOOKAHEAD: usize = 16;

/// Marks a missing chunk in a partial sequence (type ids stay below 2^31).
const MISSING: u32 = u32::MAX - 1;

/// Read-only view shared by the tasks of a batch.
struct View<'a, 't> {
    segmenter: &'a Segmenter,
    cache: &'a ChunkCache,
    /// Chunks resolved for this batch only (cache full, or too long to cache).
    extra: &'a AHashMap<&'t str, Box<[u32]>>,
    config: &'a CorpusConfig,
    chunked: bool,
}

/// Per-task state.
struct Task<'v, 'a, 't> {
    view: &'v View<'a, 't>,
    out: TaskOut<'t>,
    seen_misses: HashedMap<'t, u32>,
    seq: Vec<u32>,
    scratch: Vec<u32>,
}

impl<'v, 'a, 't> Task<'v, 'a, 't> {
    fn new(view: &'v View<'a, 't>) -> Self {
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
    fn lookup(&self, chunk: &str, hash: u64, words: KeyWords) -> Option<&'v [u32]> {
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
    fn lookup_all(
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
    fn doc(&mut self, k: usize, text: &'t str, row: u64) -> Result<()> {
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
            // was measured slower: 1 GB words mode, 6.7-7.1 s against 6.6-6.7 s.)
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
    fn resolve_misses(&self, misses: &[Hashed<'t>]) -> Result<Vec<&'v [u32]>> {
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
    fn finish_doc(&mut self, partial: &[u32], resolved: &[&[u32]], row: u64) -> Result<()> {
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

    fn emit_doc(&mut self, seq: &[u32], row: u64) {
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

    fn emit(&mut self, toks: &[u32], row: u64, window: u32) {
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
const MISS_SHARDS: usize = 64;

/// The distinct missing chunks of a batch's tasks, in order of first appearance (task
/// after task). Each task's misses are split by hash, each shard is deduplicated
/// by one job (taking tasks in order), and a last pass keeps the first occurrences
/// in their order. Depends only on the tasks' misses, not on the thread count.
fn distinct_misses<'t>(outs: &[TaskOut<'t>]) -> Vec<Hashed<'t>> {
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
fn push_ids(seq: &mut Vec<u32>, ids: &[u32]) {
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
const DEDUPE_TYPES: usize = 1 << 22;

/// Tokens between the prefetch of a type's dedupe entry and its use.
const DEDUPE_AHEAD: usize = 16;

/// Per-thread table for deduplicating a candidate's types in one pass: a sparse set.
/// `at[t]` is where type `t` stands in the current candidate's set if it is there;
/// an entry left by an earlier candidate points past the set, or at another type,
/// so the table is never cleared.
#[derive(Default)]
struct Dedupe {
    at: Vec<u32>,
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
    fn distinct(&mut self, toks: &[u32], max: u32, set: &mut Vec<u32>, counts: &mut Vec<u32>) {
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
fn keyed_ascii_words(text: &str) -> impl Iterator<Item = (&str, KeyWords)> {
    let mut words = AsciiWords::new(text);
    std::iter::from_fn(move || {
        let (s, e) = words.next_span()?;
        Some((&text[s..e], KeyWords::within(text.as_bytes(), s, e)))
    })
}

/// Whether a text is skipped as empty (only whitespace).
fn is_blank(t: &str) -> bool {
    t.trim_matches(crate::text::is_space).is_empty()
}

/// Where a batch comes from, for error messages.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    /// File or object name.
    pub source: String,
    /// Row number (inside `source`) of the batch's first element.
    pub first_row: u64,
    /// Name of the text column.
    pub column: String,
}

/// Strings of an Arrow array, validated as UTF-8 (Arrow data imported through the C
/// interface is not validated). Valid strings are borrowed, zero-copy; invalid ones
/// are an error naming source, row and column, or, with `replace`, replaced lossily
/// and counted (second value).
pub fn arrow_strings<'a>(
    array: &'a dyn Array,
    origin: &Origin,
    replace: bool,
) -> Result<(Vec<Option<Cow<'a, str>>>, u64)> {
    fn check<'a>(
        s: Option<(&'a [u8], &'a str)>,
        i: usize,
        origin: &Origin,
        replace: bool,
    ) -> Result<Option<Cow<'a, str>>> {
        let Some((bytes, unchecked)) = s else {
            return Ok(None);
        };
        // SIMD validation (runtime CPU detection); the standard library's, slower,
        // only to locate the error of an invalid string.
        match simdutf8::basic::from_utf8(bytes) {
            // The bytes are valid UTF-8, so the &str view of the same bytes is sound.
            Ok(_) => Ok(Some(Cow::Borrowed(unchecked))),
            Err(_) if replace => Ok(Some(Cow::Owned(String::from_utf8_lossy(bytes).into_owned()))),
            Err(_) => Err(Error::InvalidInput(format!(
                "{}: row {}, column {:?}: invalid UTF-8 at byte {} (use encoding_errors='replace' to replace and count such rows)",
                origin.source,
                origin.first_row + i as u64,
                origin.column,
                std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to())
            ))),
        }
    }
    fn run<'a>(
        len: usize,
        get: impl Fn(usize) -> Option<(&'a [u8], &'a str)> + Sync,
        origin: &Origin,
        replace: bool,
    ) -> Result<(Vec<Option<Cow<'a, str>>>, u64)> {
        let parallel: Result<Vec<Option<Cow<'a, str>>>> = crate::threads::install(|| {
            (0..len)
                .into_par_iter()
                .map(|i| check(get(i), i, origin, replace))
                .collect::<Result<_>>()
        });
        // A parallel collect stops at whichever invalid row a thread met first: the
        // error names the first invalid row of the batch, found again in order.
        let out = match parallel {
            Ok(out) => out,
            Err(_) => (0..len)
                .map(|i| check(get(i), i, origin, replace))
                .collect::<Result<_>>()?,
        };
        let invalid = out
            .iter()
            .filter(|s| matches!(s, Some(Cow::Owned(_))))
            .count() as u64;
        Ok((out, invalid))
    }
    fn offset_strings<'a, O: OffsetSizeTrait>(
        a: &'a GenericStringArray<O>,
        origin: &Origin,
        replace: bool,
    ) -> Result<(Vec<Option<Cow<'a, str>>>, u64)> {
        let (offsets, data) = (a.value_offsets(), a.value_data());
        run(
            a.len(),
            |i| {
                (!a.is_null(i)).then(|| {
                    let (lo, hi) = (offsets[i].as_usize(), offsets[i + 1].as_usize());
                    (&data[lo..hi], a.value(i))
                })
            },
            origin,
            replace,
        )
    }
    let any = array.as_any();
    match array.data_type() {
        DataType::Utf8 => offset_strings(
            any.downcast_ref::<StringArray>().expect("Utf8"),
            origin,
            replace,
        ),
        DataType::LargeUtf8 => offset_strings(
            any.downcast_ref::<LargeStringArray>().expect("LargeUtf8"),
            origin,
            replace,
        ),
        DataType::Utf8View => {
            let a = any.downcast_ref::<StringViewArray>().expect("Utf8View");
            let views = a.views();
            let buffers = a.data_buffers();
            run(
                a.len(),
                |i| {
                    (!a.is_null(i)).then(|| {
                        let view = &views[i];
                        let len = *view as u32 as usize;
                        let bytes: &[u8] = if len <= 12 {
                            // Short strings live inline in the view, after the length.
                            // SAFETY: `view` is a u128 inside the views buffer; bytes 4..4+len of it are the
                            // inline string (Arrow view layout), and the reference lives as long as `a`.
                            unsafe {
                                std::slice::from_raw_parts(
                                    (view as *const u128 as *const u8).add(4),
                                    len,
                                )
                            }
                        } else {
                            let buffer = (*view >> 64) as u32 as usize;
                            let offset = (*view >> 96) as u32 as usize;
                            &buffers[buffer][offset..offset + len]
                        };
                        (bytes, a.value(i))
                    })
                },
                origin,
                replace,
            )
        }
        other => Err(Error::InvalidInput(format!(
            "{}: column {:?} has Arrow type {other}, expected strings",
            origin.source, origin.column
        ))),
    }
}

impl Corpus {
    pub fn new(segmenter: Arc<Segmenter>, config: CorpusConfig) -> Result<Corpus> {
        if let Unit::Window(0) | Unit::Prefix(0) = config.unit {
            return Err(Error::InvalidArgument(
                "seq_len must be > 0 for window and prefix units".into(),
            ));
        }
        let counts = match segmenter.tokenizer() {
            Some(t) => vec![0; t.num_types()],
            None => Vec::new(),
        };
        Ok(Corpus {
            segmenter,
            cache: ChunkCache::new(config.cache_capacity),
            config,
            words: Interner::default(),
            counts,
            candidates: Candidates::new(),
            report: IngestReport::default(),
            evicted_bound: None,
        })
    }

    /// Largest type-set size among evicted candidates (`None`: nothing evicted).
    /// A greedy selection on the kept candidates equals greedy on the whole corpus
    /// (uniform weights) when every pick beats this bound: see [`Corpus::certifies`].
    pub fn evicted_bound(&self) -> Option<u64> {
        self.evicted_bound
    }

    /// Whether picks with these (gain, set size) pairs provably equal greedy on the
    /// whole corpus: an evicted candidate's gain is at most its set size, so it loses
    /// to a pick with a larger gain, or an equal gain and a larger set.
    pub fn certifies(&self, picks: &[(u64, u64)]) -> bool {
        match self.evicted_bound {
            None => true,
            Some(b) => picks.iter().all(|&(g, s)| g > b || (g == b && s > b)),
        }
    }

    /// Change the candidate cap (compacts at once if needed).
    pub fn set_max_candidates(&mut self, max: Option<usize>) {
        self.config.max_candidates = max;
        if let Some(m) = max {
            if self.candidates.len() > m {
                self.compact(m);
            }
        }
    }

    /// Compact when twice over the cap (amortised linear cost); the exact cap is
    /// applied by [`Corpus::finish`].
    fn compact_when_over_cap(&mut self) {
        if let Some(m) = self.config.max_candidates {
            if self.candidates.len() > m.saturating_mul(2).max(m + 1024) {
                self.compact(m);
            }
        }
    }

    /// Keep the `m` candidates with the largest type sets (ties: earlier first).
    fn compact(&mut self, m: usize) {
        let c = &self.candidates;
        let n = c.len();
        if n <= m {
            return;
        }
        let mut order: Vec<(Reverse<usize>, usize)> =
            (0..n).map(|i| (Reverse(c.set(i).len()), i)).collect();
        if m > 0 {
            order.select_nth_unstable(m - 1);
        }
        let mut keep = vec![false; n];
        for &(_, i) in &order[..m] {
            keep[i] = true;
        }
        let bound = order[m..].iter().map(|(Reverse(s), _)| *s as u64).max();
        self.evicted_bound = self.evicted_bound.max(bound);
        self.report.evicted_candidates += (n - m) as u64;
        self.candidates.retain(&keep);
    }

    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }

    pub fn config(&self) -> &CorpusConfig {
        &self.config
    }

    pub fn candidates(&self) -> &Candidates {
        &self.candidates
    }

    pub fn report(&self) -> &IngestReport {
        &self.report
    }

    /// Token occurrences per type id, over all candidates.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub fn num_types(&self) -> usize {
        match self.segmenter.tokenizer() {
            Some(t) => t.num_types(),
            None => self.words.len(),
        }
    }

    /// The text of type `id`.
    pub fn type_name(&self, id: u32) -> Option<&str> {
        match self.segmenter.tokenizer() {
            Some(t) => t.type_names().get(id as usize).map(String::as_str),
            None => self.words.name(id),
        }
    }

    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Ingest an Arrow string array whose first element is row `first_row`.
    /// Ingest an Arrow string array whose first element is row `first_row`; invalid
    /// UTF-8 is an error naming `origin`, or with `replace` replaced and counted.
    pub fn add_arrow(
        &mut self,
        array: &dyn Array,
        first_row: u64,
        origin: &Origin,
        replace: bool,
    ) -> Result<IngestReport> {
        let (texts, invalid) = arrow_strings(array, origin, replace)?;
        let refs: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        let mut report = self.add_texts(&refs, first_row)?;
        report.invalid_utf8_rows = invalid;
        self.report.invalid_utf8_rows += invalid;
        Ok(report)
    }

    /// [`Corpus::add_arrow`] for a batch of the core's Parquet reader, whose text the
    /// Parquet decoder already checked as UTF-8: borrowed as it is, not checked again.
    pub fn add_text_batch(&mut self, batch: &TextBatch, first_row: u64) -> Result<IngestReport> {
        self.add_texts(&batch.texts(), first_row)
    }

    /// Ingest a batch of texts (None = null row) whose first element is row `first_row`.
    /// Returns the counters of this batch alone.
    ///
    /// Three steps: (1) tasks in parallel resolve every chunk from the cache, emitting
    /// the documents that are complete and collecting the distinct missing chunks;
    /// (2) the misses of all tasks, deduplicated, are tokenized once, in parallel, and
    /// cached; (3) the deferred documents are processed. Candidates keep row order.
    pub fn add_texts(&mut self, texts: &[Option<&str>], first_row: u64) -> Result<IngestReport> {
        // Task boundaries depend only on the batch content.
        let mut bounds = vec![0usize];
        let mut acc = 0usize;
        for (i, t) in texts.iter().enumerate() {
            acc += t.map_or(0, str::len) + 16;
            if acc >= self.config.task_bytes {
                bounds.push(i + 1);
                acc = 0;
            }
        }
        if *bounds.last().unwrap_or(&0) != texts.len() {
            bounds.push(texts.len());
        }
        let chunked = match &*self.segmenter {
            Segmenter::Words => true,
            Segmenter::Tokenizer(t) => t.chunkable(),
        };
        let no_extra = AHashMap::new();

        // (1) resolve from the cache
        let first: Vec<Result<TaskOut>> = {
            let view = View {
                segmenter: &self.segmenter,
                cache: &self.cache,
                extra: &no_extra,
                config: &self.config,
                chunked,
            };
            crate::threads::install(|| {
                bounds
                    .par_windows(2)
                    .map(|w| {
                        let mut task = Task::new(&view);
                        for (k, text) in (w[0]..w[1]).zip(&texts[w[0]..w[1]]) {
                            let r = &mut task.out.report;
                            r.rows += 1;
                            match *text {
                                None => r.null_rows += 1,
                                Some(t) => {
                                    r.bytes += t.len() as u64;
                                    if is_blank(t) {
                                        r.empty_rows += 1;
                                    } else {
                                        task.doc(k, t, first_row + k as u64)?;
                                    }
                                }
                            }
                        }
                        task.out.candidates.shrink();
                        Ok(task.out)
                    })
                    .collect()
            })
        };
        let first: Vec<TaskOut> = first.into_iter().collect::<Result<_>>()?;

        // (2) tokenize each distinct missing chunk once
        let unique = distinct_misses(&first);
        let mut extra: AHashMap<&str, Box<[u32]>> = AHashMap::new();
        if !unique.is_empty() {
            let chunks: Vec<&str> = unique.iter().map(|u| u.text).collect();
            let resolved = self.resolve_chunks(&chunks)?;
            // Short chunks go to the cache while it has room; the others are kept
            // for this batch only.
            let (short, long): (Vec<usize>, Vec<usize>) =
                (0..unique.len()).partition(|&i| chunks[i].len() <= MAX_CACHED_CHUNK);
            let new: Vec<NewChunk> = short
                .iter()
                .map(|&i| (chunks[i], unique[i].hash, resolved.get(i)))
                .collect();
            let rejected = self.cache.insert_all(&new);
            drop(new);
            for i in rejected.into_iter().map(|r| short[r]).chain(long) {
                extra.insert(chunks[i], resolved.get(i).into());
            }
        }

        // (3) the deferred documents
        let second: Vec<Result<Option<TaskOut>>> = {
            let view = View {
                segmenter: &self.segmenter,
                cache: &self.cache,
                extra: &extra,
                config: &self.config,
                chunked,
            };
            crate::threads::install(|| {
                first
                    .par_iter()
                    .map(|out| {
                        if out.deferred.is_empty() {
                            return Ok(None);
                        }
                        let mut task = Task::new(&view);
                        let resolved = task.resolve_misses(&out.misses)?;
                        let mut start = 0;
                        for (&k, &end) in out.deferred.iter().zip(&out.partial_ends) {
                            task.finish_doc(
                                &out.partial[start..end],
                                &resolved,
                                first_row + k as u64,
                            )?;
                            start = end;
                        }
                        task.out.candidates.shrink();
                        Ok(Some(task.out))
                    })
                    .collect()
            })
        };
        let second: Vec<Option<TaskOut>> = second.into_iter().collect::<Result<_>>()?;
        self.add_counts(first.iter().chain(second.iter().flatten()));
        let mut batch = IngestReport::default();
        for (a, b) in first.into_iter().zip(second) {
            self.merge(a, b, &mut batch);
        }
        add_report(&mut self.report, &batch);
        self.compact_when_over_cap();
        Ok(batch)
    }

    /// Type sequences of chunks missing from the cache: tokenized in parallel, a block
    /// of chunks per job, into flat arrays (no allocation per chunk); in words mode
    /// new words are interned in order of appearance.
    fn resolve_chunks(&mut self, chunks: &[&str]) -> Result<Resolved> {
        match &*self.segmenter {
            Segmenter::Tokenizer(t) => {
                // ASCII chunks of byte-level BPE tokenizers take the fast path. Of the
                // others, " word"-like ones are encoded in groups, joined into one
                // text, and the rest one by one.
                let blocks: Vec<(Resolved, Vec<usize>)> = crate::threads::install(|| {
                    chunks
                        .par_chunks(WORD_BLOCK)
                        .enumerate()
                        .map(|(b, block)| {
                            let mut r = Resolved::default();
                            let mut pending = Vec::new();
                            for (k, c) in block.iter().enumerate() {
                                let start = r.ids.len();
                                if !t.push_fast_types(c, &mut r.ids) {
                                    pending.push(b * WORD_BLOCK + k);
                                }
                                r.spans.push((start, r.ids.len() - start));
                            }
                            (r, pending)
                        })
                        .collect()
                });
                let mut out = Resolved::with_capacity(
                    blocks.iter().map(|(r, _)| r.ids.len()).sum(),
                    chunks.len(),
                );
                let mut pending = Vec::new();
                for (r, p) in blocks {
                    out.append(r);
                    pending.extend(p);
                }
                let one = |c: &str| -> Result<Box<[u32]>> {
                    let mut v = Vec::new();
                    t.push_types_plain(c, &mut v)?;
                    Ok(v.into_boxed_slice())
                };
                let (joined, single): (Vec<usize>, Vec<usize>) =
                    pending.into_iter().partition(|&i| joinable(chunks[i]));
                let groups: Vec<Vec<Box<[u32]>>> = crate::threads::install(|| {
                    joined
                        .par_chunks(JOIN_CHUNKS)
                        .map(|group| {
                            let texts: Vec<&str> = group.iter().map(|&i| chunks[i]).collect();
                            match t.types_of_joined(&texts)? {
                                Some(v) => Ok(v),
                                None => texts.iter().map(|c| one(c)).collect(),
                            }
                        })
                        .collect::<Result<_>>()
                })?;
                let singles: Vec<Box<[u32]>> = crate::threads::install(|| {
                    single
                        .par_iter()
                        .map(|&i| one(chunks[i]))
                        .collect::<Result<_>>()
                })?;
                for (i, v) in joined.into_iter().zip(groups.into_iter().flatten()) {
                    out.set(i, &v);
                }
                for (i, v) in single.into_iter().zip(singles) {
                    out.set(i, &v);
                }
                Ok(out)
            }
            Segmenter::Words => {
                // In parallel, a block of chunks per job: segment, lowercase and look
                // up the words already known; a word not yet known is kept as text,
                // with a marker in its place. Then, in order: intern the new words
                // (ids by first appearance).
                let known = &self.words;
                let blocks: Vec<WordBlock> = crate::threads::install(|| {
                    chunks
                        .par_chunks(WORD_BLOCK)
                        .map(|block| {
                            let mut b = WordBlock::default();
                            let mut buf = String::new();
                            for c in block {
                                let ids = &mut b.words.ids;
                                let start = ids.len();
                                for w in words(c) {
                                    lowercase_into(w, &mut buf);
                                    let h = known.hash(&buf);
                                    match known.get_hashed(&buf, h) {
                                        Some(id) => ids.push(id),
                                        None => {
                                            ids.push(NEW_WORD);
                                            b.new.push_str(&buf);
                                            b.new_ends.push((b.new.len(), h));
                                        }
                                    }
                                }
                                b.words.spans.push((start, ids.len() - start));
                            }
                            b
                        })
                        .collect()
                });
                let mut out = Resolved::with_capacity(
                    blocks.iter().map(|b| b.words.ids.len()).sum(),
                    chunks.len(),
                );
                for mut b in blocks {
                    let mut new = b.new_ends.iter();
                    let mut from = 0;
                    for id in b.words.ids.iter_mut().filter(|id| **id == NEW_WORD) {
                        let (to, h) = *new.next().expect("one new word per marker");
                        *id = self.words.intern_hashed(&b.new[from..to], h)?;
                        from = to;
                    }
                    out.append(b.words);
                }
                Ok(out)
            }
        }
    }

    /// Add the type counts of a batch's tasks to the pool's, in parallel: each job owns
    /// a range of type ids and takes the entries that fall in it (a task's candidates
    /// are one segment, aligned with its `set_counts`).
    fn add_counts<'o, 't: 'o>(&mut self, outs: impl Iterator<Item = &'o TaskOut<'t>>) {
        let n_types = self.num_types();
        if self.counts.len() < n_types {
            self.counts.resize(n_types, 0);
        }
        let outs: Vec<&TaskOut> = outs.collect();
        let jobs = crate::threads::num_threads().max(1);
        let range = self.counts.len().div_ceil(jobs).max(1);
        crate::threads::install(|| {
            self.counts
                .par_chunks_mut(range)
                .enumerate()
                .for_each(|(k, counts)| {
                    let lo = (k * range) as u32;
                    for out in &outs {
                        for (&t, &c) in out.candidates.segs.iter().flatten().zip(&out.set_counts) {
                            if let Some(n) = counts.get_mut(t.wrapping_sub(lo) as usize) {
                                *n += u64::from(c);
                            }
                        }
                    }
                })
        });
    }

    fn merge(&mut self, a: TaskOut<'_>, b: Option<TaskOut<'_>>, batch: &mut IngestReport) {
        for out in std::iter::once(&a).chain(b.as_ref()) {
            add_report(batch, &out.report);
        }
        match b {
            None => self.candidates.append(a.candidates),
            Some(b) => self
                .candidates
                .append(Candidates::merge_by_row(a.candidates, b.candidates)),
        }
    }

    /// Type ids of one text (one per token, [`NO_TYPE`] for untyped tokens), through
    /// the same path as ingestion. Words not seen during ingestion get ids past
    /// `num_types()`, numbered in order of appearance.
    pub fn type_sequence(&self, text: &str) -> Result<Vec<u32>> {
        let mut seq = Vec::new();
        match &*self.segmenter {
            Segmenter::Tokenizer(t) => {
                if !t.chunkable() {
                    t.push_types_plain(text, &mut seq)?;
                    return Ok(seq);
                }
                for chunk in Chunks::new(text) {
                    match self.cache.get(chunk) {
                        Some(v) => seq.extend_from_slice(v),
                        None => t.push_types_chunk(chunk, &mut seq)?,
                    }
                }
            }
            Segmenter::Words => {
                let mut unseen: AHashMap<String, u32> = AHashMap::new();
                let base = self.words.len() as u32;
                let mut buf = String::new();
                let mut by_name = |w: &str, seq: &mut Vec<u32>| {
                    lowercase_into(w, &mut buf);
                    let id = match self.words.get(&buf) {
                        Some(id) => id,
                        None => {
                            let next = base + unseen.len() as u32;
                            *unseen.entry(buf.clone()).or_insert(next)
                        }
                    };
                    seq.push(id);
                };
                if text.is_ascii() {
                    // Words as ingestion keys them: a cached word's ids are its type.
                    for (w, kw) in keyed_ascii_words(text) {
                        match self.cache.get_words(w, self.cache.hash_words(w, kw), kw) {
                            Some(ids) => seq.extend_from_slice(ids),
                            None => by_name(w, &mut seq),
                        }
                    }
                } else {
                    // Chunks as ingestion keys them; a chunk not cached by its words.
                    for chunk in Chunks::new(text) {
                        match self.cache.get(chunk) {
                            Some(ids) => seq.extend_from_slice(ids),
                            None => words(chunk).for_each(|w| by_name(w, &mut seq)),
                        }
                    }
                }
            }
        }
        Ok(seq)
    }

    /// [`Corpus::type_sequence`] of each text, in parallel.
    pub fn type_sequences(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        crate::threads::install(|| texts.par_iter().map(|t| self.type_sequence(t)).collect())
    }

    /// Merge a shard ingested elsewhere (another process or machine) with the same
    /// segmenter and settings: its candidates (rows relative to the shard, moved by
    /// `row_offset`), its per-type token counts, and in words mode the names of its
    /// types (its type ids index `names`; they are re-interned here). Shards must be
    /// absorbed in row order; the result equals ingesting their rows here, including
    /// which candidates a cap keeps (top sets, earlier rows first) and the evicted bound.
    pub fn absorb(
        &mut self,
        mut shard: Candidates,
        counts: &[u64],
        names: Option<&[&str]>,
        row_offset: u64,
        report: &IngestReport,
        evicted_bound: Option<u64>,
    ) -> Result<()> {
        if let Some(&first) = shard.rows.first() {
            if let Some(&last) = self.candidates.rows.last() {
                if first + row_offset < last {
                    return Err(Error::InvalidArgument(format!(
                        "shards must be merged in row order: row {} comes after row {}",
                        first + row_offset,
                        last
                    )));
                }
            }
        }
        match (self.segmenter.tokenizer(), names) {
            (Some(t), None) => {
                if counts.len() != t.num_types() {
                    return Err(Error::InvalidArgument(format!(
                        "shard counts cover {} types, the tokenizer has {}",
                        counts.len(),
                        t.num_types()
                    )));
                }
                if shard
                    .segs
                    .iter()
                    .flatten()
                    .any(|&x| x as usize >= t.num_types())
                {
                    return Err(Error::InvalidArgument("shard type id out of range".into()));
                }
                for (c, &k) in self.counts.iter_mut().zip(counts) {
                    *c += k;
                }
            }
            (None, Some(names)) => {
                if counts.len() != names.len() {
                    return Err(Error::InvalidArgument(format!(
                        "shard counts cover {} types but it names {}",
                        counts.len(),
                        names.len()
                    )));
                }
                let map = names
                    .iter()
                    .map(|w| self.words.intern(w))
                    .collect::<Result<Vec<u32>>>()?;
                if shard
                    .segs
                    .iter()
                    .flatten()
                    .any(|&x| x as usize >= map.len())
                {
                    return Err(Error::InvalidArgument("shard type id out of range".into()));
                }
                for t in shard.all_types_mut() {
                    *t = map[*t as usize];
                }
                if self.counts.len() < self.words.len() {
                    self.counts.resize(self.words.len(), 0);
                }
                for (&id, &k) in map.iter().zip(counts) {
                    self.counts[id as usize] += k;
                }
            }
            (Some(_), Some(_)) => {
                return Err(Error::InvalidArgument(
                    "tokenizer shards carry no type names (their ids are the tokenizer's)".into(),
                ))
            }
            (None, None) => {
                return Err(Error::InvalidArgument(
                    "words-mode shards must carry their type names".into(),
                ))
            }
        }
        for r in shard.rows.iter_mut() {
            *r += row_offset;
        }
        self.candidates.append(shard);
        add_report(&mut self.report, report);
        self.report.invalid_utf8_rows += report.invalid_utf8_rows;
        self.evicted_bound = self.evicted_bound.max(evicted_bound);
        self.compact_when_over_cap();
        Ok(())
    }

    /// Finish ingestion: apply the candidate cap exactly.
    pub fn finish(&mut self) {
        if let Some(m) = self.config.max_candidates {
            self.compact(m);
        }
    }
}

fn add_report(a: &mut IngestReport, b: &IngestReport) {
    a.rows += b.rows;
    a.null_rows += b.null_rows;
    a.empty_rows += b.empty_rows;
    a.short_candidates += b.short_candidates;
    a.candidates += b.candidates;
    a.evicted_candidates += b.evicted_candidates;
    a.tokens += b.tokens;
    a.bytes += b.bytes;
}

#[cfg(test)]
mod tests {
    use super::{arrow_strings, push_ids, Dedupe, Origin, NO_TYPE};
    use arrow_array::{Array, LargeStringArray, StringArray, StringViewArray};
    use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};

    #[test]
    fn arrow_strings_are_validated_with_the_row_and_byte_of_an_error() {
        let origin = Origin {
            source: "in.parquet".into(),
            first_row: 5,
            column: "text".into(),
        };
        // Row 2 holds invalid UTF-8 from its fourth byte (a lone continuation byte);
        // row 1 is null; row 3 is long enough to live outside a string view.
        let rows: [Option<&[u8]>; 4] = [
            Some("naïve".as_bytes()),
            None,
            Some(b"abc\x80def"),
            Some("a longer text, past twelve bytes: ü".as_bytes()),
        ];
        let mut data = Vec::new();
        let mut offsets = vec![0i32];
        for r in rows {
            data.extend_from_slice(r.unwrap_or(b""));
            offsets.push(data.len() as i32);
        }
        let nulls = Some(vec![true, false, true, true].into());
        let offsets64 = OffsetBuffer::new(ScalarBuffer::from(
            offsets.iter().map(|&o| o as i64).collect::<Vec<_>>(),
        ));
        let offsets32 = OffsetBuffer::new(ScalarBuffer::from(offsets));
        // SAFETY: the buffers are well-formed arrays apart from row 2's UTF-8, which
        // is exactly what `arrow_strings` must catch.
        let (utf8, large) = unsafe {
            (
                StringArray::new_unchecked(offsets32, Buffer::from(data.clone()), nulls.clone()),
                LargeStringArray::new_unchecked(offsets64, Buffer::from(data), nulls),
            )
        };
        let view = StringViewArray::from(&utf8);
        let arrays: [&dyn Array; 3] = [&utf8, &large, &view];
        for a in arrays {
            let e = arrow_strings(a, &origin, false).unwrap_err().to_string();
            assert!(
                e.contains("in.parquet: row 7, column \"text\": invalid UTF-8 at byte 3"),
                "{:?}: {e}",
                a.data_type()
            );
            let (texts, invalid) = arrow_strings(a, &origin, true).unwrap();
            assert_eq!(invalid, 1);
            let got: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
            assert_eq!(
                got,
                [
                    Some("naïve"),
                    None,
                    Some("abc\u{fffd}def"),
                    Some("a longer text, past twelve bytes: ü")
                ]
            );
        }
    }

    #[test]
    fn an_invalid_batch_names_its_first_invalid_row_whatever_the_threads() {
        // Invalid rows far apart, so that parallel validation meets them in any order.
        let (n, bad) = (60_000usize, [17usize, 31_000, 59_999]);
        let mut data = Vec::new();
        let mut offsets = vec![0i32];
        for i in 0..n {
            if bad.contains(&i) {
                data.extend_from_slice(b"ab\xffc");
            } else {
                data.extend_from_slice(format!("row {i}").as_bytes());
            }
            offsets.push(data.len() as i32);
        }
        // SAFETY: well-formed offsets and data; only the UTF-8 of `bad` rows is invalid,
        // which is what `arrow_strings` must catch.
        let a = unsafe {
            StringArray::new_unchecked(
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                Buffer::from(data),
                None,
            )
        };
        let origin = Origin {
            source: "big.parquet".into(),
            first_row: 100,
            column: "text".into(),
        };
        for _ in 0..20 {
            let e = arrow_strings(&a, &origin, false).unwrap_err().to_string();
            assert!(e.contains("big.parquet: row 117, column"), "{e}");
        }
    }

    #[test]
    fn dedupe_gives_first_appearances_and_counts_across_candidates() {
        let mut d = Dedupe::default();
        let (mut set, mut counts) = (vec![7u32], vec![1u32]);
        let mut x = 12345u64;
        for round in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (x >> 33) as usize % 40;
            let range = 1 + (x >> 45) as u32 % 50;
            let toks: Vec<u32> = (0..len)
                .map(|i| {
                    let v = (x >> (i % 30)) as u32 % (range + 1);
                    if v == range {
                        NO_TYPE
                    } else {
                        v
                    }
                })
                .collect();
            let max = toks
                .iter()
                .copied()
                .filter(|&t| t != NO_TYPE)
                .max()
                .unwrap_or(0);
            let (s0, c0) = (set.len(), counts.len());
            d.distinct(&toks, max, &mut set, &mut counts);
            let mut want: Vec<(u32, u32)> = Vec::new();
            for &t in toks.iter().filter(|&&t| t != NO_TYPE) {
                match want.iter_mut().find(|(w, _)| *w == t) {
                    Some((_, c)) => *c += 1,
                    None => want.push((t, 1)),
                }
            }
            let got: Vec<(u32, u32)> = set[s0..]
                .iter()
                .copied()
                .zip(counts[c0..].iter().copied())
                .collect();
            assert_eq!(got, want, "round {round}: {toks:?}");
        }
    }

    #[test]
    fn push_ids_appends_every_length() {
        for n in 0..9u32 {
            for before in 0..6u32 {
                let ids: Vec<u32> = (100..100 + n).collect();
                // Exact capacity, so that each push must grow the vector.
                let mut seq: Vec<u32> = Vec::with_capacity(before as usize);
                seq.extend(0..before);
                push_ids(&mut seq, &ids);
                push_ids(&mut seq, &ids);
                let want: Vec<u32> = (0..before)
                    .chain(ids.iter().copied())
                    .chain(ids.iter().copied())
                    .collect();
                assert_eq!(seq, want, "n={n} before={before}");
            }
        }
    }
}
