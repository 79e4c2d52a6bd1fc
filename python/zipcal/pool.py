"""Pools: an ingested corpus of candidates (:class:`Pool`, :func:`load_pool`)."""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from . import _core, packing
from . import chat as chat_module
from .errors import InputError, InvalidArgumentError, positive_int
from .frequencies import frequency_summary
from .sources import (
    FIRST_BATCH_ROWS,
    ReadCounters,
    ReadOptions,
    explain_jsonl_error,
    is_file_source,
    iter_batches,
    read_ahead,
    take,
    total_bytes,
)
from .tokenizer import added_specials, describe, resolve, special_ids

log = logging.getLogger(__name__)

DEFAULT_MIN_TOKENS = 16
KEEP_TEXTS_BYTES = 256 << 20
UNITS = ("window", "doc")
DEFAULT_UNIT = "window"


def row_capacity(segmenter: "_core.Segmenter", seq_len: int) -> int:
    """Content tokens of a calibration row of ``seq_len`` tokens: ``seq_len`` less the
    special tokens the tokenizer adds to each sequence (a BOS token, for example).
    Candidates are at most this long, so each one's type set is what its row feeds."""
    before, after = added_specials(segmenter)
    capacity = seq_len - len(before) - len(after)
    if capacity <= 0:
        raise InvalidArgumentError(
            f"seq_len {seq_len} leaves no room for text: the tokenizer adds {len(before) + len(after)} "
            "special tokens to each sequence"
        )
    return capacity


def separator_tokens(segmenter: "_core.Segmenter") -> int:
    """Tokens between two short candidates packed into one row: the EOS token when
    the tokenizer has one (none in words mode)."""
    if segmenter.is_words:
        return 0
    return 0 if special_ids(segmenter)[1] is None else 1


@dataclass(frozen=True)
class PoolOptions:
    """What defines a pool: how the corpus is read, tokenized and cut into candidates.
    One object for :func:`load_pool`, :func:`zipcal.select`, :mod:`zipcal.distributed`
    and the CLI (which keep explicit keyword arguments for users and build this).
    Per-call settings (threads, progress bars, memory bounds, keeping texts) are not
    part of it."""

    tokenizer: Any = None
    unit: str = DEFAULT_UNIT
    seq_len: int = 2048
    min_tokens: Optional[int] = None
    text_column: Optional[str] = "text"
    text_split: str = "auto"
    encoding_errors: str = "strict"
    cache_capacity: int = 4_000_000
    # Renders a chat ``messages`` column (:mod:`zipcal.chat`): a template source, or
    # None for the tokenizer's own template where it has one.
    chat_template: Any = None

    def checked(self) -> "PoolOptions":
        """These options validated, with ``min_tokens`` resolved (default 16, at most
        ``seq_len``)."""
        if self.unit not in UNITS:
            raise InvalidArgumentError(f"unit must be 'window' or 'doc', got {self.unit!r}")
        seq_len = positive_int("seq_len", self.seq_len)
        min_tokens = min(DEFAULT_MIN_TOKENS, seq_len) if self.min_tokens is None else self.min_tokens
        if isinstance(min_tokens, bool) or not isinstance(min_tokens, (int, np.integer)) or min_tokens < 0:
            raise InvalidArgumentError(f"min_tokens must be an integer >= 0, got {min_tokens!r}")
        ReadOptions(text_split=self.text_split, encoding_errors=self.encoding_errors)  # validates both
        chat = chat_module.resolve(self.chat_template, self.tokenizer)  # loaded when a messages column is met
        return dataclasses.replace(self, seq_len=seq_len, min_tokens=int(min_tokens), chat_template=chat)

    def read_options(self, first_batch_rows: int = 0) -> ReadOptions:
        return ReadOptions(
            text_column=self.text_column,
            text_split=self.text_split,
            encoding_errors=self.encoding_errors,
            first_batch_rows=first_batch_rows,
            chat=self.chat_template if isinstance(self.chat_template, chat_module.ChatTemplate) else None,
        )


@dataclass
class Part:
    """Texts of one input batch. ``kept`` (sorted global rows) is set once the part
    was filtered down to the rows of kept candidates (bounded-memory pools)."""

    first_row: int
    source: str
    source_first_row: int
    array: Optional[pa.Array]  # None: texts not kept (re-read on demand)
    length: int
    kept: Optional[np.ndarray] = None

    def filter(self, kept_rows: np.ndarray) -> Optional["Part"]:
        assert self.array is not None, "only parts that keep their texts are filtered"
        lo = np.searchsorted(kept_rows, self.first_row)
        hi = np.searchsorted(kept_rows, self.first_row + self.length)
        rows = kept_rows[lo:hi]
        if len(rows) == 0:
            return None
        if self.kept is not None:
            if len(rows) == len(self.kept):
                return self
            local = np.searchsorted(self.kept, rows)
        else:
            local = rows - self.first_row
        return Part(self.first_row, self.source, self.source_first_row, take(self.array, local), self.length, rows)

    def text(self, row: int) -> Optional[str]:
        assert self.array is not None, "texts of this part were not kept"
        if self.kept is None:
            return self.array[row - self.first_row].as_py()
        k = int(np.searchsorted(self.kept, row))
        if k >= len(self.kept) or self.kept[k] != row:
            raise InvalidArgumentError(f"row {row} was evicted from this bounded pool")
        return self.array[k].as_py()


@contextlib.contextmanager
def using_threads(n: Optional[int]) -> Iterator[None]:
    if n is None:
        yield
        return
    if n <= 0:
        raise InvalidArgumentError(f"threads must be > 0, got {n}")
    before = _core.set_num_threads(n)
    try:
        yield
    finally:
        _core.set_num_threads(before)


class Pool:
    """An ingested corpus: every candidate's type set, the pool's type counts, and
    the texts (kept as the original Arrow arrays, zero-copy). Build one with
    :func:`load_pool` and pass it to :func:`select` to run several strategies or
    seeds without reading the corpus again."""

    def __init__(
        self,
        corpus: "_core.Corpus",
        segmenter: "_core.Segmenter",
        parts: List[Part],
        *,
        tokenizer: Any,
        unit: str,
        seq_len: int,
        min_tokens: int,
        ingest_seconds: float,
        invalid_utf8_rows: int,
    ) -> None:
        self.corpus = corpus
        self.segmenter = segmenter
        self.tokenizer = tokenizer
        self.tokenizer_name = describe(tokenizer)
        self.unit = unit
        self.seq_len = seq_len
        # Content tokens per row: the longest a candidate is (window length, or the
        # length of a document's prefix).
        self.capacity = row_capacity(segmenter, seq_len)
        self.separator = separator_tokens(segmenter)
        self.min_tokens = min_tokens
        self.ingest_seconds = ingest_seconds
        self.invalid_utf8_rows = invalid_utf8_rows
        self._parts = parts
        self._starts = [p.first_row for p in parts]
        self.texts_kept = all(p.array is not None for p in parts)
        self._fetched: Dict[int, str] = {}
        self._source: Any = None
        self._read_options: Optional[ReadOptions] = None
        self.rows = corpus.rows().astype(np.int64)
        self.windows = corpus.windows().astype(np.int64)
        self.tokens = corpus.tokens().astype(np.int64)
        self.counts = corpus.counts()
        self.report: Dict[str, int] = dict(corpus.report())
        self.max_candidates: Optional[int] = None
        # Rebuild this pool with a larger candidate cap (None: the source cannot be re-read).
        self._reload: Optional[Callable[[int], "Pool"]] = None
        # Read the texts of some rows again (None: scan the source in order).
        self._fetch: Optional[Callable[[List[int]], Dict[int, str]]] = None
        # What the pool was read from, for manifests (:mod:`zipcal.manifest`): its
        # options, and the paths/globs/folders/URLs as given ("default": the embedded
        # corpus; None: an in-memory source).
        self.options: Optional[PoolOptions] = None
        self.input_spec: Union[List[str], str, None] = None
        # Types that count for nothing in coverage: a chat template's own tokens.
        self.excluded_types: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.corpus)

    def __repr__(self) -> str:
        return (
            f"Pool({len(self)} candidates from {self.report['rows']} rows, "
            f"{int((self.counts > 0).sum())} types, segmenter={self.tokenizer_name!r}, unit={self.unit!r})"
        )

    @property
    def stats(self) -> Dict[str, Any]:
        """Rows read and skipped, candidates, bytes, and the frequency summary of the
        pool's types (tokens, types, type-token ratio, Zipf exponent)."""
        r = self.report
        out: Dict[str, Any] = {
            "segmenter": self.tokenizer_name,
            "unit": self.unit,
            "rows": r["rows"],
            "null_rows": r["null_rows"],
            "empty_rows": r["empty_rows"],
            "invalid_utf8_rows": self.invalid_utf8_rows,
            "short_candidates_skipped": r["short_candidates"],
            "candidates": r["candidates"],
            "bytes": r["bytes"],
            "ingest_seconds": self.ingest_seconds,
        }
        out.update(frequency_summary(self.counts))
        return out

    def budget(self, rows: int) -> packing.Budget:
        """The token budget of ``rows`` calibration rows over this pool's candidates."""
        costs = packing.candidate_costs(self.tokens, self.capacity, self.separator)
        return packing.Budget(rows=int(rows), capacity=self.capacity, separator=self.separator, costs=costs)

    def _part(self, row: int) -> Part:
        k = bisect.bisect_right(self._starts, row) - 1
        if k < 0 or row >= self._parts[k].first_row + self._parts[k].length:
            raise InvalidArgumentError(f"row {row} is not in the pool")
        return self._parts[k]

    def row_text(self, row: int) -> str:
        """The full text of source row ``row`` (global row number)."""
        part = self._part(row)
        if part.array is None:
            if row not in self._fetched:
                self.prefetch([row])
            return self._fetched[row]
        value = part.text(row)
        return "" if value is None else value

    def prefetch(self, rows: "Sequence[int] | np.ndarray") -> None:
        """Read the texts of ``rows`` again from the source in one pass (pools built
        with ``keep_texts=False`` keep no texts in memory)."""
        if self.texts_kept:
            return
        missing = sorted({int(r) for r in rows} - set(self._fetched))
        if not missing:
            return
        if self._fetch is not None:
            self._fetched.update(self._fetch(missing))
        else:
            self._scan_source(missing)
        lost = [r for r in missing if r not in self._fetched]
        if lost:
            raise InputError(f"the source changed since it was read: rows {lost[:5]} are gone")

    def _scan_source(self, missing: List[int]) -> None:
        if self._source is None or self._read_options is None:
            raise InvalidArgumentError("this pool kept no texts and cannot re-read its source")
        want = np.asarray(missing, dtype=np.int64)
        row = 0
        for batch in iter_batches(self._source, self._read_options):
            lo = np.searchsorted(want, row)
            hi = np.searchsorted(want, row + len(batch.array))
            if hi > lo:
                local = want[lo:hi] - row
                for r, v in zip(want[lo:hi], (batch.array[int(i)].as_py() for i in local)):
                    self._fetched[int(r)] = v if v is not None else ""
            row += len(batch.array)
            if hi >= len(want) and lo >= len(want):
                break

    def row_origin(self, row: int) -> tuple:
        """(source name, row inside that source) of global row ``row``."""
        p = self._part(row)
        return p.source, p.source_first_row + (row - p.first_row)

    def candidate_start(self, i: int) -> int:
        """Token position of candidate ``i`` in its document."""
        return int(self.windows[i]) * self.capacity if self.unit == "window" else 0

    def _whole(self, i: int) -> bool:
        """Whether candidate ``i`` is its whole document: a first candidate shorter than a
        row is also its document's last (windows end only at a row's length or the
        document's end)."""
        return self.candidate_start(i) == 0 and int(self.tokens[i]) < self.capacity

    def candidate_text(self, i: int) -> str:
        """Text of candidate ``i``: the slice of its document that it feeds (its
        window, or its document's first ``capacity`` tokens)."""
        return self.candidate_texts([i])[0]

    def candidate_texts(self, indices: "Sequence[int] | np.ndarray") -> List[str]:
        """:meth:`candidate_text` of each candidate (each document tokenized once)."""
        indices = [int(i) for i in indices]
        out: Dict[int, str] = {}
        by_row: Dict[int, List[int]] = {}
        for i in indices:
            by_row.setdefault(int(self.rows[i]), []).append(i)
        for row, members in by_row.items():
            text = self.row_text(row)
            if len(members) == 1 and self._whole(members[0]):
                out[members[0]] = text  # no need to find where its tokens end
                continue
            spans = _core.word_spans(text) if self.segmenter.is_words else self.segmenter.token_spans(text)
            raw = None
            for i in members:
                lo = self.candidate_start(i)
                hi = min(lo + self.capacity, len(spans))
                if lo >= hi:
                    out[i] = ""
                elif lo == 0 and hi == len(spans):
                    out[i] = text
                else:
                    raw = text.encode("utf-8") if raw is None else raw
                    out[i] = raw[spans[lo][0] : spans[hi - 1][1]].decode("utf-8", errors="ignore")
        return [out[i] for i in indices]

    def candidate_type_sequence(self, i: int) -> np.ndarray:
        """Type ids of candidate ``i``'s tokens (NO_TYPE for untyped tokens)."""
        return self.candidate_type_sequences([i])[0]

    def candidate_type_sequences(self, indices: "Sequence[int] | np.ndarray") -> List[np.ndarray]:
        """:meth:`candidate_type_sequence` of each candidate, tokenized in parallel."""
        indices = [int(i) for i in indices]
        seqs = self.corpus.type_sequences([self.row_text(int(self.rows[i])) for i in indices])
        starts = [self.candidate_start(i) for i in indices]
        return [seq[k : k + self.capacity] for k, seq in zip(starts, seqs)]

    def candidate_ids(self, indices: "Sequence[int] | np.ndarray", segmenter: "_core.Segmenter") -> List[np.ndarray]:
        """Token ids that candidates ``indices`` feed, encoded with ``segmenter``: the
        same slice of their documents' tokens as their type sets (exact when
        ``segmenter`` is this pool's tokenizer). In words mode, where candidates are
        word windows, the text of each window is encoded."""
        indices = [int(i) for i in indices]
        if self.segmenter.is_words:
            texts = self.candidate_texts(indices)
            return [e[: self.capacity] for e in segmenter.encode_batch(texts, False)]
        docs = segmenter.encode_batch([self.row_text(int(self.rows[i])) for i in indices], False)
        starts = [self.candidate_start(i) for i in indices]
        return [e[k : k + self.capacity] for k, e in zip(starts, docs)]


def load_pool(
    source: Any = None,
    *,
    tokenizer: Any = None,
    unit: str = DEFAULT_UNIT,
    seq_len: int = 2048,
    min_tokens: Optional[int] = None,
    text_column: Optional[str] = "text",
    text_split: str = "auto",
    encoding_errors: str = "strict",
    threads: Optional[int] = None,
    progress: bool = False,
    cache_capacity: int = 4_000_000,
    max_candidates: Optional[int] = None,
    max_memory: Union[int, str, None] = None,
    keep_texts: Union[bool, str] = "auto",
    chat_template: Any = None,
) -> Pool:
    """Read and tokenize a corpus into a :class:`Pool` (see :func:`select` for arguments).
    ``source=None`` uses the embedded default corpus.

    Bounded memory: ``max_candidates`` keeps only the candidates with the largest type
    sets (and their texts); ``max_memory`` (bytes, or a string like ``"2G"``) derives that
    cap from the footprint of the first batch. Greedy on the kept candidates is checked
    against an exactness certificate (see :func:`select`).

    ``keep_texts``: keep the texts in memory (True), or re-read the selected rows from
    the input files afterwards (False). "auto" keeps them unless the input is files
    larger than 256 MiB in total."""
    options = PoolOptions(
        tokenizer, unit, seq_len, min_tokens, text_column, text_split, encoding_errors, cache_capacity, chat_template
    )
    return build_pool(
        source,
        options,
        threads=threads,
        progress=progress,
        max_candidates=max_candidates,
        max_memory=max_memory,
        keep_texts=keep_texts,
    )


def build_pool(
    source: Any,
    options: PoolOptions,
    *,
    threads: Optional[int] = None,
    progress: bool = False,
    max_candidates: Optional[int] = None,
    max_memory: Union[int, str, None] = None,
    keep_texts: Union[bool, str] = "auto",
) -> Pool:
    """:func:`load_pool` with its options as one :class:`PoolOptions`."""
    options = options.checked()
    spec = _input_spec(source)
    if source is None:
        from .default_corpus import default_corpus

        source = default_corpus()
    opts = options.read_options(FIRST_BATCH_ROWS)
    if keep_texts not in (True, False, "auto"):
        raise InvalidArgumentError(f"keep_texts must be True, False or 'auto', got {keep_texts!r}")
    files = is_file_source(source)
    if keep_texts == "auto":
        keep_texts = not files or (total_bytes(source) or 0) <= KEEP_TEXTS_BYTES
    elif not keep_texts and not files:
        raise InvalidArgumentError("keep_texts=False needs input files that can be read again")
    counters = ReadCounters()
    # Reading starts now: the first batches are decoded while the tokenizer loads.
    with read_ahead(iter_batches(source, opts, counters)) as reader:
        segmenter = resolve(options.tokenizer)
        if max_candidates is not None:
            max_candidates = positive_int("max_candidates", max_candidates)
        budget = parse_size(max_memory) if max_memory is not None else None
        corpus = _core.Corpus(
            segmenter,
            unit=options.unit,
            seq_len=row_capacity(segmenter, options.seq_len),
            min_tokens=int(options.min_tokens or 0),  # resolved by checked()
            cache_capacity=options.cache_capacity,
            max_candidates=max_candidates,
        )
        parts: List[Part] = []
        row = 0
        bar = None
        if progress:
            from tqdm.auto import tqdm

            size = total_bytes(source)
            bar = tqdm(total=size, unit="B", unit_scale=True, desc="reading", file=sys.stderr, disable=None)
        t0 = time.perf_counter()
        with using_threads(threads):
            try:
                evicted = 0
                for batch in reader:
                    rep = add_batch(corpus, batch, row, opts)
                    parts.append(
                        Part(row, batch.source, batch.first_row, batch.array if keep_texts else None, len(batch.array))
                    )
                    row += len(batch.array)
                    if budget is not None and max_candidates is None and len(corpus):
                        max_candidates = _cap_from_budget(corpus, parts, budget)
                        corpus.set_max_candidates(max_candidates)
                        log.info("max_memory %d bytes -> keeping at most %d candidates", budget, max_candidates)
                    if max_candidates is not None and keep_texts:
                        # Keep only the texts of kept candidates: the new batch always, the
                        # older ones again after a compaction evicted some.
                        now = int(corpus.report()["evicted_candidates"])
                        parts = _filter_parts(parts, corpus, only_last=(now == evicted))
                        evicted = now
                    if bar is not None:
                        bar.update(rep["bytes"])
                        bar.set_postfix(candidates=len(corpus), refresh=False)
            finally:
                if bar is not None:
                    bar.close()
    if max_candidates is not None:
        corpus.finish()
        if keep_texts:
            parts = _filter_parts(parts, corpus, only_last=False)
    elapsed = time.perf_counter() - t0
    pool = Pool(
        corpus,
        segmenter,
        parts,
        tokenizer=options.tokenizer,
        unit=options.unit,
        seq_len=options.seq_len,
        min_tokens=int(options.min_tokens or 0),
        ingest_seconds=elapsed,
        invalid_utf8_rows=counters.invalid_utf8_rows + int(corpus.report()["invalid_utf8_rows"]),
    )
    pool.max_candidates = max_candidates
    pool.options, pool.input_spec = options, spec
    if opts.chat is not None and opts.chat.used:
        pool.excluded_types = opts.chat.template_types(segmenter)
        log.info(
            "rendered chat messages with %r; %d template types left out of coverage",
            opts.chat,
            len(pool.excluded_types),
        )
    if not keep_texts:
        pool._source, pool._read_options = source, opts
    if _rereadable(source):
        pool._reload = lambda cap: build_pool(
            source, options, threads=threads, progress=progress, max_candidates=cap, keep_texts=keep_texts
        )
    log.info("read %s", pool)
    return pool


def add_batch(corpus: "_core.Corpus", batch: Any, row: int, opts: ReadOptions) -> Dict[str, int]:
    """Ingest one :class:`~zipcal.sources.Batch` whose first text is global row ``row``;
    returns the batch's counters. Errors name the source, row and column."""
    try:
        return corpus.add_arrow(
            batch.array if batch.checked is None else batch.checked,
            row,
            source=batch.source,
            source_first_row=batch.first_row,
            column=opts.text_column or "text",
            replace=opts.encoding_errors == "replace",
        )
    except InputError:
        # Rows of a JSONL file are records, not lines: name the line instead.
        explain_jsonl_error(batch.source, opts)
        raise


def _input_spec(source: Any) -> Union[List[str], str, None]:
    """The input as a manifest records it: the paths (globs, folders, URLs) as given,
    "default" for the embedded corpus, None for an in-memory source."""
    if source is None:
        return "default"
    if isinstance(source, (str, os.PathLike)):
        return [os.fspath(source)]
    if isinstance(source, (list, tuple)) and is_file_source(source):
        return [os.fspath(s) for s in source]
    return None


def _rereadable(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike, pa.Table)) or (
        isinstance(source, (list, tuple)) and all(isinstance(s, (str, os.PathLike)) for s in source)
    )


def parse_size(value: Union[int, str]) -> int:
    """Bytes from an int or a string such as ``"512M"``, ``"2G"``, ``"1.5GB"``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        size = int(value)
    elif isinstance(value, str):
        v = value.strip().upper().rstrip("B").rstrip("I")
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(v[-1:], 1)
        try:
            size = int(float(v[:-1] if v[-1:] in "KMGT" else v) * mult)
        except ValueError:
            raise InvalidArgumentError(f"max_memory: cannot read {value!r} as a size (e.g. 512M, 2G)") from None
    else:
        raise InvalidArgumentError(f"max_memory must be bytes or a size string, got {value!r}")
    if size <= 0:
        raise InvalidArgumentError(f"max_memory must be > 0, got {value!r}")
    return size


def _cap_from_budget(corpus: "_core.Corpus", parts: List[Part], budget: int) -> int:
    """Candidate cap for a memory budget, from the footprint of what was read so far:
    each kept candidate costs its text plus 4 bytes per type; the corpus holds up to
    twice the cap between compactions."""
    text_bytes = sum(p.array.nbytes for p in parts if p.array is not None)
    per = (text_bytes + 4 * int(corpus.set_sizes().sum())) / max(len(corpus), 1) + 48
    return max(1, int(budget / (3 * per)))


def _filter_parts(parts: List[Part], corpus: "_core.Corpus", only_last: bool) -> List[Part]:
    # Candidate rows are non-decreasing (ingestion order, kept by compaction).
    rows = corpus.rows().astype(np.int64)
    if only_last:
        lo = np.searchsorted(rows, parts[-1].first_row)
        done, todo, rows = parts[:-1], parts[-1:], rows[lo:]
    else:
        done, todo = [], parts
    kept = np.unique(rows)
    out = list(done)
    for p in todo:
        q = p.filter(kept)
        if q is not None:
            out.append(q)
    return out


def corpus_stats(source: Any, **pool_kwargs: Any) -> Dict[str, Any]:
    """Statistics of a corpus (any source :func:`zipcal.select` accepts)."""
    return load_pool(source, **pool_kwargs).stats
