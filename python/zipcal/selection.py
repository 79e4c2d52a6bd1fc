"""Selections: :func:`select` runs a strategy on a pool; :class:`Selection` holds
the picks, their statistics, and packs them into calibration tensors."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import numpy as np
import pyarrow as pa

from . import _core, packing, strategies
from .errors import InvalidArgumentError, MissingDependencyError, NotEnoughCandidatesError, positive_int
from .frequencies import frequency_summary
from .pool import DEFAULT_UNIT, Pool, load_pool, using_threads

log = logging.getLogger(__name__)


def select(
    source: Any = None,
    n: int = 128,
    *,
    seq_len: int = 2048,
    tokenizer: Any = None,
    strategy: str = "zipcal",
    seed: int = 0,
    unit: str = DEFAULT_UNIT,
    min_tokens: Optional[int] = None,
    text_column: Optional[str] = "text",
    text_split: str = "auto",
    encoding_errors: str = "strict",
    threads: Optional[int] = None,
    progress: bool = False,
    max_candidates: Optional[int] = None,
    max_memory: Union[int, str, None] = None,
    keep_texts: Union[bool, str] = "auto",
    chat_template: Any = None,
    **options: Any,
) -> "Selection":
    """Choose ``n`` calibration samples from ``source``.

    Args:
        source: a path (Parquet, Arrow IPC/Feather, JSONL, text), glob, folder or list of
            paths; a pyarrow Table/RecordBatchReader/Dataset; a polars or pandas DataFrame;
            a Hugging Face ``datasets.Dataset``; any Arrow PyCapsule stream; an iterable of
            strings; or a :class:`Pool`. None = the embedded default corpus.
        n: number of calibration rows. Every strategy picks candidates until they fill
            ``n`` rows of ``seq_len`` tokens (see :mod:`zipcal.packing`): the same
            number of real tokens whatever the strategy, where the pool holds them.
        seq_len: tokens per calibration row. Candidates are at most that long (less
            the special tokens the tokenizer adds), so what is counted is what is fed.
        tokenizer: 'words' (default, tokenizer-free), 'gpt2', a ``tokenizer.json`` path or
            folder, a ``tokenizers.Tokenizer`` or a transformers fast tokenizer.
        strategy: a name from :func:`zipcal.strategies` (``zipcal``, ``zipcal-zipf``,
            ``zipcal-words-dataset``, ``random``, and model-based ones when registered).
        seed: seed of every random choice (random strategy, shuffles, random windows).
        unit: 'window' (default: every ``seq_len``-token window of every document, the
            first starting at its start) or 'doc' (each document's first ``seq_len``
            tokens: one candidate per document).
        min_tokens: candidates with fewer tokens are skipped (default 16).
        text_column: the text column of tabular inputs.
        text_split: plain text files: 'line', 'blank' (paragraphs) or 'auto'.
        encoding_errors: 'strict' (invalid UTF-8 is an error) or 'replace' (counted).
        threads: worker threads for this call (default: ``ZIPCAL_NUM_THREADS`` or all CPUs).
        progress: show progress bars on stderr.
        max_candidates / max_memory: bounded memory (see :func:`load_pool`). Only the
            candidates with the largest type sets are kept; the result is certified equal to
            greedy on the whole corpus when every pick's gain beats the largest evicted set
            (``stats['certificate']``); when it is not and the source can be read again, the
            cap grows 4x and the corpus is re-read.
        chat_template: renders a column of chat messages (``messages``: role/content
            lists) before tokenization: a model or tokenizer folder, hub name, transformers
            tokenizer or :class:`zipcal.chat.ChatTemplate`. Default: the tokenizer's own
            template, where the tokenizer is one that carries it. See :mod:`zipcal.chat`.
        **options: strategy options (``weighting=``, ``draw=``, ...).
    """
    n = positive_int("n", n)
    spec = strategies.get(strategy)
    if isinstance(source, Pool):
        pool = source
    else:
        pool = load_pool(
            source,
            tokenizer=tokenizer,
            unit=unit,
            seq_len=seq_len,
            min_tokens=min_tokens,
            text_column=text_column,
            text_split=text_split,
            encoding_errors=encoding_errors,
            threads=threads,
            progress=progress,
            max_candidates=max_candidates,
            max_memory=max_memory,
            keep_texts=keep_texts,
            chat_template=chat_template,
        )
    if len(pool) < n:
        r = pool.report
        raise NotEnoughCandidatesError(
            f"only {len(pool)} usable candidates for n = {n} ({r['rows']} rows read: {r['null_rows']} null, "
            f"{r['empty_rows']} empty, {r['short_candidates']} shorter than min_tokens={pool.min_tokens}); "
            + ("lower n or min_tokens" if pool.unit == "window" else "lower n or min_tokens, or use unit='window'")
        )
    budget = pool.budget(n)
    kwargs = dict(options)
    if _takes_budget(spec.fn):
        kwargs["budget"] = budget
    t0 = time.perf_counter()
    with using_threads(threads):
        try:
            picked = spec.fn(pool, n, seed=seed, **kwargs)
        except TypeError as e:
            if "unexpected keyword" in str(e):
                raise InvalidArgumentError(f"strategy {strategy!r}: {e}") from None
            raise
    seconds = time.perf_counter() - t0
    if pool.max_candidates is not None and picked.gains is not None:
        sizes = pool.corpus.set_sizes()[picked.candidates]
        certified = bool(
            picked.info.get("weighting", "uniform") == "uniform"
            and pool.corpus.certifies([int(g) for g in picked.gains], [int(z) for z in sizes])
        )
        if (
            not certified
            and pool._reload is not None
            and pool.report["evicted_candidates"] > 0
            and picked.info.get("weighting") == "uniform"
        ):
            grown = pool.max_candidates * 4
            log.warning(
                "the exactness certificate did not hold with %d candidates kept; re-reading with %d",
                pool.max_candidates,
                grown,
            )
            bigger = pool._reload(grown)
            return select(bigger, n, strategy=strategy, seed=seed, threads=threads, **options)
        picked.info["certificate"] = certified
        picked.info["max_candidates"] = pool.max_candidates
        picked.info["evicted_candidates"] = int(pool.report["evicted_candidates"])
    sel = Selection(pool, picked, strategy=strategy, seed=seed, seconds=seconds, options=options, rows=n)
    if sel.stats["pad_tokens"] > 0:
        log.warning(
            "the pool holds too few tokens for %d rows of %d: %d of %d row tokens are padding",
            n,
            pool.seq_len,
            sel.stats["pad_tokens"],
            n * pool.capacity,
        )
    log.info("selected %d candidates for %d rows with %s in %.3fs", len(sel), n, strategy, seconds)
    return sel


def _takes_budget(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        return "budget" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class Selection:
    """The chosen calibration samples.

    One entry per picked candidate, in pick order; ``rows`` calibration rows are
    packed from them (:meth:`to_input_ids`). Short candidates share rows, so a
    selection may hold more candidates than rows.

    Attributes:
        rows: calibration rows asked for (``n``).
        indices: source row of each sample (global row number across all inputs).
        candidates: candidate index of each sample in the pool.
        windows: window index inside its row (``unit="window"``), else 0.
        texts: the sample texts (what each candidate feeds).
        gains: marginal coverage gain of each pick (coverage strategies).
        stats: coverage of the fed rows, tokens fed and padding, type-token ratio and
            Zipf exponents, timings.
    """

    def __init__(
        self,
        pool: Pool,
        picked: "strategies.Picked",
        *,
        strategy: str,
        seed: int,
        seconds: float,
        options: Dict[str, Any],
        rows: Optional[int] = None,
    ) -> None:
        self.pool = pool
        self.rows = int(rows) if rows is not None else len(picked.candidates)
        self.strategy = strategy
        self.seed = seed
        self.options = dict(options)
        self.candidates = np.asarray(picked.candidates, dtype=np.int64)
        # Synthetic samples may have no source document (candidate -1).
        real = self.candidates >= 0
        safe = np.where(real, self.candidates, 0)
        self.indices = np.where(real, pool.rows[safe], -1)
        self.windows = np.where(real, pool.windows[safe], 0)
        self.token_counts = np.where(real, pool.tokens[safe], 0)
        self.gains = picked.gains
        self.synthetic = picked.texts is not None
        pool.prefetch(self.indices[real])
        self.texts: List[str] = (
            list(picked.texts) if picked.texts is not None else pool.candidate_texts(self.candidates)
        )
        origins = [pool.row_origin(int(r)) if r >= 0 else ("<generated>", -1) for r in self.indices]
        self.sources = [o[0] for o in origins]
        self.source_rows = np.array([o[1] for o in origins], dtype=np.int64)
        self.info = dict(picked.info)
        self.seconds = seconds
        self._type_counts: Optional[np.ndarray] = None
        self._fed_rows: Optional[List[np.ndarray]] = None
        self.stats: Dict[str, Any] = self._stats()

    def __len__(self) -> int:
        return len(self.candidates)

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"Selection(rows={self.rows} x {s['seq_len']}, candidates={len(self)}, strategy={self.strategy!r}, "
            f"types fed {s['types_covered']}/{s['types_available']}, tokens fed {s['tokens_fed']})"
        )

    def fed_type_rows(self) -> List[np.ndarray]:
        """The calibration rows in type ids (``NO_TYPE`` for untyped tokens and
        separators), laid out as :meth:`to_input_ids` lays out token ids by default:
        the pool's segmenter, ``seq_len`` and ``fill`` packing, without the special
        tokens each row starts or ends with."""
        if self._fed_rows is None:
            pool = self.pool
            if self.synthetic:
                seqs = [q[: pool.capacity] for q in pool.corpus.type_sequences(list(self.texts))]
            else:
                seqs = pool.candidate_type_sequences(self.candidates)
            segs = packing.layout([len(q) for q in seqs], self.rows, pool.capacity, pool.separator)
            self._fed_rows = packing.fill(seqs, segs, _core.NO_TYPE, dtype=np.uint32)
        return self._fed_rows

    def type_counts(self) -> np.ndarray:
        """Token count per type id over the fed rows (:meth:`fed_type_rows`)."""
        if self._type_counts is None:
            rows = self.fed_type_rows()
            flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.uint32)
            flat = flat[flat != _core.NO_TYPE].astype(np.int64)
            size = max(self.pool.corpus.num_types, int(flat.max()) + 1 if len(flat) else 0)
            self._type_counts = np.bincount(flat, minlength=size).astype(np.uint64)
        return self._type_counts

    def _stats(self) -> Dict[str, Any]:
        pool = self.pool
        excluded = pool.excluded_types  # a chat template's own types count for nothing

        def counted(present: np.ndarray) -> int:
            if excluded is not None:
                present[excluded[excluded < len(present)]] = False
            return int(present.sum())

        types_available = counted(pool.counts > 0)
        fed = self.fed_type_rows()
        tokens_fed = int(sum(len(r) for r in fed))
        room = self.rows * pool.capacity
        covered = counted(self.type_counts() > 0)
        sel = frequency_summary(self.type_counts())
        poolf = frequency_summary(pool.counts)
        out: Dict[str, Any] = {
            "strategy": self.strategy,
            "seed": self.seed,
            "n": self.rows,
            "candidates": len(self),
            "unit": pool.unit,
            "seq_len": pool.seq_len,
            "row_capacity": pool.capacity,
            "segmenter": pool.tokenizer_name,
            "types_covered": covered,
            "types_available": types_available,
            "coverage": (covered / types_available) if types_available else None,
            "tokens_fed": tokens_fed,
            "pad_tokens": max(room - tokens_fed, 0),
            "pad_fraction": (max(room - tokens_fed, 0) / room) if room else 0.0,
            "tokens_selected": int(self.token_counts.sum()) if not self.synthetic else int(sel["tokens"]),
            "type_token_ratio": sel["type_token_ratio"],
            "zipf_exponent": sel["zipf_exponent"],
            "pool_candidates": len(pool),
            "pool_tokens": poolf["tokens"],
            "pool_type_token_ratio": poolf["type_token_ratio"],
            "pool_zipf_exponent": poolf["zipf_exponent"],
            "ingest_seconds": pool.ingest_seconds,
            "select_seconds": self.seconds,
        }
        out.update({k: v for k, v in self.info.items() if k not in out})
        return out

    # ------------------------------------------------------------ packing

    def to_input_ids(
        self,
        seq_len: Optional[int] = None,
        *,
        tokenizer: Any = None,
        policy: str = "fill",
        add_special_tokens: bool = True,
        pad_token_id: Optional[int] = None,
        seed: Optional[int] = None,
        return_tensors: str = "auto",
    ) -> Dict[str, Any]:
        """Calibration tensors ``{"input_ids", "attention_mask"}`` of shape ``[rows, seq_len]``.

        policy:
          'fill' (default): the ``n`` rows the selection was made for. Each candidate
          feeds exactly the tokens its type set was counted on; candidates as long as
          a row take one each, shorter ones are joined (EOS between them) and cut into
          rows (:mod:`zipcal.packing`). Rows are full of real tokens where the pool
          held enough.
          'truncate': one row per candidate, right-padded.
          'random-window': one row per sample text: a seeded random ``seq_len`` window
          of longer texts (texts are candidates, so only synthetic texts are longer).
          'concat-chunk': all sample texts joined with EOS and cut into full rows.
        return_tensors: 'np', 'pt', or 'auto' (torch tensors when torch is installed).
        Real, padding and dropped tokens are recorded in ``self.stats['packing']``,
        and with the pool's own tokenizer the types the rows cover (``types_fed``).
        """
        return packing.input_ids(
            self,
            seq_len,
            tokenizer=tokenizer,
            policy=policy,
            add_special_tokens=add_special_tokens,
            pad_token_id=pad_token_id,
            seed=seed,
            return_tensors=return_tensors,
        )

    def to_dataset(self, seq_len: Optional[int] = None, *, padded: bool = False, **packing: Any) -> Any:
        """A Hugging Face ``datasets.Dataset`` of the calibration rows, with
        ``input_ids`` and ``attention_mask`` columns.

        Rows are unpadded (variable length, masks all ones) unless ``padded``:
        toolkits such as llm-compressor feed rows to their hooks as they are and
        ignore the mask, so padding would be calibrated on. For llm-compressor,
        :func:`zipcal.handoff.to_llmcompressor` also keeps the selection's order
        and is immune to ``oneshot``'s sampling settings."""
        try:
            import datasets
        except ImportError:
            raise MissingDependencyError("to_dataset needs the datasets package: pip install datasets") from None
        if padded:
            packing["return_tensors"] = "np"
            batch = self.to_input_ids(seq_len, **packing)
            ids, mask = batch["input_ids"].tolist(), batch["attention_mask"].tolist()
        else:
            from .handoff import calibration_rows

            rows = calibration_rows(self, seq_len, **packing)
            ids, mask = [r.tolist() for r in rows], [[1] * len(r) for r in rows]
        return datasets.Dataset.from_dict({"input_ids": ids, "attention_mask": mask})

    # ------------------------------------------------------------ output

    def to_arrow(self) -> pa.Table:
        """One row per sample: row, source, source_row, window, tokens, gain, text."""
        gains = self.gains if self.gains is not None else np.zeros(len(self), dtype=np.uint64)
        return pa.table(
            {
                "row": pa.array(self.indices, type=pa.int64()),
                "source": pa.array(self.sources, type=pa.string()),
                "source_row": pa.array(self.source_rows, type=pa.int64()),
                "window": pa.array(self.windows, type=pa.int64()),
                "tokens": pa.array(self.token_counts, type=pa.int64()),
                "gain": pa.array(np.asarray(gains, dtype=np.uint64), type=pa.uint64()),
                "text": pa.array(self.texts, type=pa.string()),
            }
        )

    def save(
        self,
        path: Union[str, os.PathLike],
        format: Optional[str] = None,
        *,
        manifest: Union[bool, Dict[str, Any]] = True,
    ) -> None:
        """Write the selection to Parquet or JSONL (chosen by ``format`` or the extension),
        atomically: a temporary file in the same folder, renamed on success.

        ``manifest``: also write ``<path>.manifest.json`` (:meth:`manifest`, with the
        file's name and the SHA-256 of its bytes); a dict gives fields that replace the
        built ones. ``manifest=False`` writes none and removes a manifest left beside
        ``path`` by an earlier save, which would describe another file."""
        from . import manifest as mf
        from .files import atomic_path

        fmt = format or os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
        table = self.to_arrow()
        if fmt in ("parquet", "pq"):
            kind = "parquet"
        elif fmt in ("jsonl", "json", "ndjson"):
            kind = "jsonl"
        else:
            raise InvalidArgumentError(f"{path}: unknown output format {fmt!r} (use .parquet or .jsonl)")
        with atomic_path(path) as tmp:
            if kind == "parquet":
                import pyarrow.parquet as pq

                # Timings stay out of the file so that the same selection gives the same bytes.
                stable = {k: v for k, v in self.stats.items() if not k.endswith("_seconds")}
                meta = {b"zipcal": json.dumps(_jsonable(stable), sort_keys=True).encode()}
                pq.write_table(table.replace_schema_metadata(meta), tmp)
            else:
                with open(tmp, "w", encoding="utf-8") as f:
                    for rec in table.to_pylist():
                        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            # The manifest is written just before the selection file is renamed into
            # place: a failure until then leaves neither new file.
            if manifest is not False:
                overrides = manifest if isinstance(manifest, dict) else None
                built = mf.build(
                    self, output=path, output_format=kind, file_sha256=mf.sha256_file(tmp), overrides=overrides
                )
                mf.write(built, mf.manifest_path(path))
        if manifest is False:
            try:
                os.unlink(mf.manifest_path(path))
            except FileNotFoundError:
                pass

    def manifest(self, path: Union[str, os.PathLike, None] = None) -> Dict[str, Any]:
        """The calibration manifest of this selection (``docs/manifest.md``): inputs with
        sizes and SHA-256 hashes, pool options, tokenizer and its hash, strategy, options,
        seed, statistics without timings, the selection's canonical hash and the command
        that makes it again. With ``path``, a file this selection was saved to, the
        output section names it and records the SHA-256 of its bytes."""
        from . import manifest as mf

        if path is None:
            return mf.build(self)
        ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
        kind = "parquet" if ext in ("parquet", "pq") else "jsonl" if ext in ("jsonl", "json", "ndjson") else None
        return mf.build(self, output=path, output_format=kind, file_sha256=mf.sha256_file(path))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
