"""Selection from corpora spread over many files, with ingestion on a Ray cluster.

The expensive part of ZipCal is reading and tokenizing the corpus; the greedy
selection itself touches only the candidates' type sets. This module runs the
reading, tokenization and counting on Ray Data, one task per *work unit* (a text,
JSONL or Arrow file, or a run of row groups of a Parquet file), each producing a
shard: its candidates' type sets, its type counts and, with a candidate cap, only
its ``max_candidates`` largest sets. The driver merges the shards in row order (type
names are re-interned in words mode; tokenizer type ids are global) and runs the
ordinary :func:`zipcal.select` on the merged pool.

The merged pool is the pool a single machine builds from the same files in the same
order: the same candidates, counts, kept set under a cap, and exactness certificate,
so the selection is identical for any strategy and seed.

Usage (on a cluster, after ``ray.init(address="auto")``, or with ``RAY_ADDRESS`` set;
without either, Ray starts a local cluster)::

    import zipcal.distributed as zd
    sel = zd.select("s3-mounted/c4/*.parquet", n=128, tokenizer="tokenizer.json",
                    max_candidates=200_000)

Every worker must see the input paths (a shared or mounted file system) and have
zipcal installed. Tokenizers are shipped to the workers by value.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import pyarrow as pa

from . import _core, errors
from .errors import InvalidArgumentError, MissingDependencyError, positive_int
from .pool import (
    DEFAULT_UNIT,
    Part,
    Pool,
    PoolOptions,
    add_batch,
    row_capacity,
    using_threads,
)
from .remote import is_url
from .selection import Selection
from .selection import select as select_from_pool
from .sources import (
    PARQUET_EXT,
    Batch,
    ReadCounters,
    ReadOptions,
    expand_paths,
    file_batches,
    is_file_source,
    parquet_batches,
    pick_column,
    random_access,
    rendered,
)
from .tokenizer import GPT2, WORDS, gpt2_tokenizer_json, resolve, tokenizer_file, tokenizer_json_of

log = logging.getLogger(__name__)

DEFAULT_UNIT_BYTES = 128 << 20

__all__ = ["WorkUnit", "plan_units", "load_pool", "select"]


@dataclass(frozen=True)
class WorkUnit:
    """What one task ingests: a whole file, or the row groups ``row_groups`` of a
    Parquet file, which start at row ``first_row`` of that file."""

    index: int
    path: str
    first_row: int = 0
    row_groups: Optional[Tuple[int, ...]] = None


def plan_units(
    paths: Sequence[str], text_column: Optional[str] = "text", unit_bytes: int = DEFAULT_UNIT_BYTES
) -> List[WorkUnit]:
    """Split files into work units of about ``unit_bytes`` of uncompressed data:
    Parquet files by runs of row groups (from their footers, without reading data),
    other files whole."""
    import pyarrow.parquet as pq

    units: List[WorkUnit] = []
    for path in paths:
        if Path(path).suffix.lower() not in PARQUET_EXT:
            units.append(WorkUnit(len(units), path))
            continue
        try:
            md = pq.ParquetFile(random_access(path)).metadata
        except (pa.ArrowInvalid, OSError) as e:
            if isinstance(e, errors.ZipcalError):
                raise
            raise errors.InputError(f"{path}: not a readable Parquet file ({e})") from None
        groups: List[int] = []
        size = row = start = 0
        for g in range(md.num_row_groups):
            if not groups:
                start = row
            groups.append(g)
            size += md.row_group(g).total_byte_size
            row += md.row_group(g).num_rows
            if size >= unit_bytes:
                units.append(WorkUnit(len(units), path, start, tuple(groups)))
                groups, size = [], 0
        if groups or md.num_row_groups == 0:
            units.append(WorkUnit(len(units), path, start, tuple(groups)))
    return units


def unit_batches(unit: WorkUnit, opts: ReadOptions, counters: Optional[ReadCounters] = None) -> Iterator[Batch]:
    """The text batches of one work unit (the same texts a whole-corpus read yields)."""
    if unit.row_groups is not None:
        batches = parquet_batches(unit.path, opts, list(unit.row_groups), unit.first_row)
    else:
        batches = file_batches(unit.path, opts, counters or ReadCounters())
    yield from rendered(batches, opts)


# ---------------------------------------------------------------- workers


def _tokenizer_spec(tokenizer: Any) -> Tuple[str, str]:
    """(kind, payload) a worker can rebuild the segmenter from: ("words", ""), or
    ("json", tokenizer.json text), for a tokenizer that :func:`resolve` accepted."""
    if tokenizer is None or tokenizer == WORDS:
        return "words", ""
    if isinstance(tokenizer, _core.Segmenter):
        raise InvalidArgumentError(
            "distributed selection needs the tokenizer itself (a path, 'gpt2', JSON text or a "
            "tokenizers/transformers object), not a zipcal Segmenter"
        )
    if tokenizer == GPT2:
        return "json", gpt2_tokenizer_json()
    if isinstance(tokenizer, str) and tokenizer.lstrip().startswith("{"):
        return "json", tokenizer
    if isinstance(tokenizer, (str, os.PathLike)):
        # a file, a folder or a hub name: workers get the JSON and need no cache
        return "json", tokenizer_file(tokenizer).read_text(encoding="utf-8")
    return "json", tokenizer_json_of(tokenizer)[0]


_SEGMENTERS: Dict[str, "_core.Segmenter"] = {}


def _worker_segmenter(spec: Tuple[str, str]) -> "_core.Segmenter":
    kind, payload = spec
    if kind == "words":
        return _core.Segmenter.words()
    key = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    if key not in _SEGMENTERS:
        _SEGMENTERS[key] = _core.Segmenter.from_json(payload, "tokenizer")
    return _SEGMENTERS[key]


def ingest_unit(unit: WorkUnit, settings: Dict[str, Any], spec: Tuple[str, str]) -> Dict[str, Any]:
    """Ingest one work unit into a fresh corpus and export it as a shard (rows
    relative to the unit). Runs on a worker; plain Python, usable without Ray."""
    opts = ReadOptions(
        text_column=settings["text_column"],
        text_split=settings["text_split"],
        encoding_errors=settings["encoding_errors"],
    )
    corpus = _core.Corpus(
        _worker_segmenter(spec),
        unit=settings["unit"],
        seq_len=settings["seq_len"],
        min_tokens=settings["min_tokens"],
        cache_capacity=settings["cache_capacity"],
        max_candidates=settings["max_candidates"],
    )
    counters = ReadCounters()
    rows = 0
    with using_threads(settings["threads"]):
        for batch in unit_batches(unit, opts, counters):
            add_batch(corpus, batch, rows, opts)
            rows += len(batch.array)
        corpus.finish()
    parts = corpus.shard_parts()
    parts["rows_read"] = rows
    parts["invalid_utf8_read"] = counters.invalid_utf8_rows
    return parts


def _ray_task(row: Dict[str, Any], settings: Dict[str, Any], spec_ref: Any) -> Dict[str, Any]:
    """Ray Data map function: one work unit in, one pickled shard (or error) out."""
    import ray

    unit = pickle.loads(row["unit"])
    t0 = time.perf_counter()
    try:
        spec = ray.get(spec_ref)
        parts = ingest_unit(unit, settings, spec)
    except errors.ZipcalError as e:  # re-raised on the driver with its own class
        return {"index": unit.index, "shard": b"", "error": pickle.dumps((type(e).__name__, str(e))), "seconds": 0.0}
    return {
        "index": unit.index,
        "shard": pickle.dumps(parts, protocol=5),
        "error": b"",
        "seconds": time.perf_counter() - t0,
    }


def _raise_remote(blob: bytes) -> None:
    cls_name, message = pickle.loads(blob)
    cls = getattr(errors, cls_name, errors.ZipcalError)
    if not (isinstance(cls, type) and issubclass(cls, errors.ZipcalError)):
        cls = errors.ZipcalError
    raise cls(message)


# ---------------------------------------------------------------- driver


def _require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "distributed selection needs Ray Data: pip install 'zipcal[distributed]' (ray[data])"
        ) from None
    return ray


def _fetcher(units: List[WorkUnit], starts: List[int], opts: ReadOptions):
    """Read the texts of some global rows again, touching only their work units."""

    def fetch(rows: List[int]) -> Dict[int, str]:
        by_unit: Dict[int, List[int]] = {}
        for r in rows:
            k = bisect.bisect_right(starts, r) - 1
            by_unit.setdefault(k, []).append(r)
        out: Dict[int, str] = {}
        for k, want in sorted(by_unit.items()):
            want_set = set(want)
            row = starts[k]
            for batch in unit_batches(units[k], opts):
                hit = [r for r in range(row, row + len(batch.array)) if r in want_set]
                if hit:
                    vals = [batch.array[r - row].as_py() for r in hit]
                    out.update({r: (v if v is not None else "") for r, v in zip(hit, vals)})
                row += len(batch.array)
                if row > max(want):
                    break
        return out

    return fetch


def load_pool(
    source: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    *,
    tokenizer: Any = None,
    unit: str = DEFAULT_UNIT,
    seq_len: int = 2048,
    min_tokens: Optional[int] = None,
    text_column: Optional[str] = "text",
    text_split: str = "auto",
    encoding_errors: str = "strict",
    max_candidates: Optional[int] = None,
    cache_capacity: int = 4_000_000,
    unit_bytes: int = DEFAULT_UNIT_BYTES,
    cpus_per_task: int = 1,
    progress: bool = False,
) -> Pool:
    """Build a :class:`~zipcal.Pool` from files, ingesting them on Ray Data.

    Arguments are those of :func:`zipcal.load_pool`, plus:
        max_candidates: keep only the candidates with the largest type sets, per task
            and after the merge (bounded memory on workers and driver; certified as in
            :func:`zipcal.select`).
        unit_bytes: approximate uncompressed bytes per task (Parquet files are split
            by row groups; other files are one task each).
        cpus_per_task: CPUs each task asks Ray for, and its tokenization threads.
    The pool keeps no texts: the selected rows are read again from their files."""
    options = PoolOptions(
        tokenizer, unit, seq_len, min_tokens, text_column, text_split, encoding_errors, cache_capacity
    )
    return build_pool(
        source,
        options,
        max_candidates=max_candidates,
        unit_bytes=unit_bytes,
        cpus_per_task=cpus_per_task,
        progress=progress,
    )


def build_pool(
    source: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    options: PoolOptions,
    *,
    max_candidates: Optional[int] = None,
    unit_bytes: int = DEFAULT_UNIT_BYTES,
    cpus_per_task: int = 1,
    progress: bool = False,
) -> Pool:
    """:func:`load_pool` with its pool options as one :class:`~zipcal.pool.PoolOptions`."""
    ray = _require_ray()
    if not is_file_source(source):
        raise InvalidArgumentError(
            "distributed selection reads files (a path, glob, folder or list of them) that every "
            f"worker can open; got {type(source).__name__}"
        )
    options = options.checked()
    tokenizer, unit, seq_len = options.tokenizer, options.unit, options.seq_len
    min_tokens = int(options.min_tokens or 0)  # resolved by checked()
    text_column, cache_capacity = options.text_column, options.cache_capacity
    cpus_per_task = positive_int("cpus_per_task", cpus_per_task)
    unit_bytes = positive_int("unit_bytes", unit_bytes)
    if max_candidates is not None:
        max_candidates = positive_int("max_candidates", max_candidates)
    opts = options.read_options()
    # Workers run in their own folders: they get absolute paths; names stay as given.
    given = expand_paths(source)
    paths = [p if is_url(p) else str(Path(p).resolve()) for p in given]
    shown = dict(zip(paths, given))
    for p in paths:
        if Path(p).suffix.lower() in PARQUET_EXT:
            import pyarrow.parquet as pq

            pick_column(pq.read_schema(random_access(p)), text_column, p)  # fail fast, on the driver
    units = plan_units(paths, text_column, unit_bytes)
    segmenter = resolve(tokenizer)  # validated here, on the driver
    spec = _tokenizer_spec(tokenizer)
    capacity = row_capacity(segmenter, seq_len)  # candidates' length: what a row feeds
    settings = dict(
        unit=unit,
        seq_len=capacity,
        min_tokens=int(min_tokens),
        cache_capacity=cache_capacity,
        max_candidates=max_candidates,
        text_column=text_column,
        text_split=options.text_split,
        encoding_errors=options.encoding_errors,
        threads=cpus_per_task,
    )
    corpus = _core.Corpus(
        segmenter,
        unit=unit,
        seq_len=capacity,
        min_tokens=int(min_tokens),
        cache_capacity=cache_capacity,
        max_candidates=max_candidates,
    )
    t0 = time.perf_counter()
    spec_ref = ray.put(spec)
    ds = ray.data.from_items([{"unit": pickle.dumps(u)} for u in units], override_num_blocks=max(1, len(units))).map(
        _ray_task, fn_kwargs={"settings": settings, "spec_ref": spec_ref}, num_cpus=cpus_per_task
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(units), unit="task", desc="ingesting on Ray", file=sys.stderr, disable=None)
    # Shards arrive in any order; they are merged in row order.
    waiting: Dict[int, Dict[str, Any]] = {}
    starts: List[int] = []
    parts_meta = []
    row = 0
    invalid = 0
    task_seconds = 0.0
    try:
        for out in ds.iter_rows():
            if out["error"]:
                _raise_remote(out["error"])
            waiting[int(out["index"])] = pickle.loads(out["shard"])
            task_seconds += float(out["seconds"])
            while len(starts) in waiting:
                k = len(starts)
                shard = waiting.pop(k)
                corpus.absorb(shard, row)
                starts.append(row)
                parts_meta.append((row, units[k], int(shard["rows_read"])))
                row += int(shard["rows_read"])
                invalid += int(shard["invalid_utf8_read"])
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(candidates=len(corpus), refresh=False)
    finally:
        if bar is not None:
            bar.close()
    if len(starts) != len(units):  # pragma: no cover - Ray returned fewer rows than tasks
        raise errors.ZipcalError(f"{len(units) - len(starts)} of {len(units)} Ray tasks returned nothing")
    corpus.finish()
    elapsed = time.perf_counter() - t0
    parts = [Part(first, shown[u.path], u.first_row, None, n) for first, u, n in parts_meta]
    pool = Pool(
        corpus,
        segmenter,
        parts,
        tokenizer=tokenizer,
        unit=unit,
        seq_len=seq_len,
        min_tokens=int(min_tokens),
        ingest_seconds=elapsed,
        invalid_utf8_rows=invalid + int(corpus.report()["invalid_utf8_rows"]),
    )
    pool.max_candidates = max_candidates
    pool._fetch = _fetcher(units, starts, opts)
    pool._reload = lambda cap: build_pool(
        source, options, max_candidates=cap, unit_bytes=unit_bytes, cpus_per_task=cpus_per_task, progress=progress
    )
    pool.distributed = {  # type: ignore[attr-defined]
        "tasks": len(units),
        "task_seconds": task_seconds,
        "wall_seconds": elapsed,
        "cluster_cpus": ray.cluster_resources().get("CPU"),
    }
    log.info("read %s on Ray: %d tasks in %.1fs", pool, len(units), elapsed)
    return pool


def select(
    source: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    n: int = 128,
    *,
    strategy: str = "zipcal",
    seed: int = 0,
    tokenizer: Any = None,
    unit: str = DEFAULT_UNIT,
    seq_len: int = 2048,
    min_tokens: Optional[int] = None,
    text_column: Optional[str] = "text",
    text_split: str = "auto",
    encoding_errors: str = "strict",
    max_candidates: Optional[int] = None,
    unit_bytes: int = DEFAULT_UNIT_BYTES,
    cpus_per_task: int = 1,
    progress: bool = False,
    **options: Any,
) -> Selection:
    """:func:`zipcal.select` with ingestion on Ray Data (see :func:`load_pool`). The
    result equals ``zipcal.select`` on the same files, strategy and seed."""
    pool = load_pool(
        source,
        tokenizer=tokenizer,
        unit=unit,
        seq_len=seq_len,
        min_tokens=min_tokens,
        text_column=text_column,
        text_split=text_split,
        encoding_errors=encoding_errors,
        max_candidates=max_candidates,
        unit_bytes=unit_bytes,
        cpus_per_task=cpus_per_task,
        progress=progress,
    )
    return select_from_pool(pool, n, strategy=strategy, seed=seed, **options)
