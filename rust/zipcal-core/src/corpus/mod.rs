//! Streaming ingestion: text batches in, candidate type sets and type counts out.
//!
//! Each batch is split into tasks of about `task_bytes` of text (independent of the
//! thread count, so results never depend on it). Tasks run in parallel against a
//! read-only view of the word interner and the chunk cache; what they discover is
//! merged sequentially, in task order, after the batch.

mod candidates;
mod interner;
mod task;

pub use candidates::Candidates;
use interner::*;
use task::*;

use std::cmp::Reverse;
use std::sync::Arc;

use ahash::AHashMap;
use arrow_array::Array;
use rayon::prelude::*;

use crate::cache::{ChunkCache, NewChunk};
use crate::error::{Error, Result};
use crate::input::arrow::{arrow_strings, Origin};
use crate::input::parquet::TextBatch;
use crate::segment::{joinable, Segmenter};
use crate::text::{lowercase_into, words, Chunks};

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
    /// less of it to one core (faster than 1 MiB tasks in words mode, the same with
    /// GPT-2; the runs are in docs/performance.md).
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
    use super::{push_ids, Dedupe};
    use crate::segment::NO_TYPE;

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
