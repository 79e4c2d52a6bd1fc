"""Handing a selection to the compression toolkits users already run, unchanged.

Each toolkit has its own idea of what to do with calibration rows before it
computes statistics, and with default settings each of them changes a curated
selection (see ``docs/toolkits.md``):

- llm-compressor's ``oneshot`` draws ``num_calibration_samples`` rows with an
  unseeded sampler (or sorts them longest-first and keeps the longest), cuts
  each batch to its shortest row, and feeds padded rows to its hooks, which
  ignore the attention mask;
- auto-round skips every row shorter than ``seqlen`` and stops at ``nsamples``;
- GPTQModel drops rows of 10 tokens or fewer, may sort or shuffle them, and pads
  batches.

The adapters here give each toolkit the selection's rows in a form it consumes
as they are: same rows, same tokens, in the selection's order, with no padding
token anywhere. Each returns an object that also carries a :class:`Plan`: what
the toolkit will calibrate on (rows, real tokens, padding tokens that reach its
statistics) and why, so a user can check it before a long run.
:func:`inspect_llmcompressor` states the same for a ``datasets.Dataset`` and the
``oneshot`` settings a user intends to pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from . import packing
from .errors import InvalidArgumentError, MissingDependencyError

log = logging.getLogger(__name__)

__all__ = [
    "Plan",
    "calibration_rows",
    "to_llmcompressor",
    "to_autoround",
    "to_gptqmodel",
    "inspect_llmcompressor",
    "inspect_rows",
]

# Why an order a toolkit imposes does not change what it calibrates on.
ORDER_FREE = "the statistics are sums over tokens: order changes them only by rounding"

# GPTQModel's ``quantize(calibration_data_min_length=10)``: rows of at most this
# many tokens are removed before quantization.
GPTQMODEL_MIN_LENGTH = 10


@dataclass
class Plan:
    """What a toolkit will calibrate on, given the rows handed to it.

    ``tokens_kept`` is None when it depends on a random draw the toolkit does
    not seed (then ``warnings`` says so)."""

    toolkit: str
    rows_given: int
    tokens_given: int
    rows_kept: int
    tokens_kept: Optional[int]
    pad_tokens: Optional[int]
    order: str
    warnings: List[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """True when the toolkit calibrates on every given row and token, and on no padding."""
        return self.rows_kept == self.rows_given and self.tokens_kept == self.tokens_given and self.pad_tokens == 0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "toolkit": self.toolkit,
            "rows_given": self.rows_given,
            "tokens_given": self.tokens_given,
            "rows_kept": self.rows_kept,
            "tokens_kept": self.tokens_kept,
            "pad_tokens": self.pad_tokens,
            "order": self.order,
            "exact": self.exact,
            "warnings": list(self.warnings),
        }

    def __str__(self) -> str:
        def num(v: Optional[int]) -> str:
            return "?" if v is None else f"{v:,}"

        head = (
            f"{self.toolkit} will calibrate on {self.rows_kept:,} of {self.rows_given:,} rows, "
            f"{num(self.tokens_kept)} of {self.tokens_given:,} real tokens and {num(self.pad_tokens)} "
            f"padding tokens; order: {self.order}"
        )
        if self.tokens_kept is None or self.pad_tokens is None:
            head += " (?: decided by a draw the toolkit does not seed)"
        return "\n".join([head] + [f"  warning: {w}" for w in self.warnings])

    def _warn(self) -> None:
        for w in self.warnings:
            log.warning("%s: %s", self.toolkit, w)


def calibration_rows(sel: Any, seq_len: Optional[int] = None, **packing_options: Any) -> List[np.ndarray]:
    """The selection's calibration rows as unpadded token-id arrays, in the
    selection's order: the rows :meth:`zipcal.Selection.to_input_ids` builds
    (same ``seq_len``, ``tokenizer``, ``policy`` ... options), without padding."""
    for unused in ("pad_token_id", "return_tensors"):  # nothing is padded or stacked here
        packing_options.pop(unused, None)
    rows, info = packing.rows(sel, seq_len, **packing_options)
    sel.stats["packing"] = dict(info, pad_tokens=0, pad_fraction=0.0)
    return rows


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("handing rows to a toolkit needs torch: pip install 'zipcal[torch]'") from None
    return torch


def _examples(rows: Sequence[np.ndarray]) -> List[Dict[str, Any]]:
    """One ``{"input_ids", "attention_mask"}`` dict of ``[1, len]`` tensors per row."""
    torch = _torch()
    out = []
    for r in rows:
        ids = torch.as_tensor(np.asarray(r, dtype=np.int64)).unsqueeze(0)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    return out


def _tokens(rows: Sequence[np.ndarray]) -> int:
    return int(sum(len(r) for r in rows))


# ---------------------------------------------------------------- llm-compressor


def to_llmcompressor(sel: Any, seq_len: Optional[int] = None, **packing_options: Any) -> Any:
    """A ``torch.utils.data.DataLoader`` for llm-compressor's ``oneshot(dataset=...)``.

    It yields the selection's rows one at a time, in order, unpadded (each a
    ``[1, len]`` ``input_ids`` tensor with an all-ones mask). llm-compressor uses
    a DataLoader as it is given: ``num_calibration_samples``,
    ``shuffle_calibration_samples``, ``batch_size``, ``data_collator`` and
    ``max_seq_length`` do not apply to it, so nothing is drawn, sorted, cut or
    padded. The loader's ``plan`` attribute (a :class:`Plan`) says so.

    >>> from llmcompressor import oneshot
    >>> oneshot(model=model, recipe=recipe, dataset=zipcal.handoff.to_llmcompressor(sel))
    """
    _torch()
    from torch.utils.data import DataLoader

    rows = calibration_rows(sel, seq_len, **packing_options)
    # batch_size=None: each example is yielded as it is (already a batch of one)
    examples: Any = _examples(rows)
    loader: Any = DataLoader(examples, batch_size=None, shuffle=False)
    loader.plan = Plan(
        "llm-compressor",
        rows_kept=len(rows),
        tokens_kept=int(sum(len(r) for r in rows)),
        pad_tokens=0,
        order="as selected",
        rows_given=len(rows),
        tokens_given=_tokens(rows),
    )
    return loader


def inspect_llmcompressor(
    dataset: Any,
    *,
    num_calibration_samples: Optional[int] = 512,
    shuffle_calibration_samples: bool = True,
    batch_size: int = 1,
    data_collator: Any = "truncation",
    max_seq_length: Optional[int] = None,
    warn: bool = True,
) -> Plan:
    """What llm-compressor's ``oneshot`` (0.14) will calibrate on when given
    ``dataset`` and these settings (``oneshot``'s own defaults are the defaults).

    ``dataset`` is what would be passed as ``oneshot(dataset=...)``: a tokenized
    ``datasets.Dataset`` (``input_ids``, optionally ``attention_mask``), a
    loader from :func:`to_llmcompressor`, or a :class:`zipcal.Selection` (as
    :meth:`~zipcal.Selection.to_dataset` would hand it over). Every way the
    settings change the rows becomes a warning (logged when ``warn``).

    The prediction mirrors llm-compressor's sampler and collators: with
    shuffling, a ``RandomSampler`` it does not seed draws
    ``num_calibration_samples`` rows; without, rows are sorted longest-first and
    the longest kept; the ``truncation`` collator cuts each batch to its
    shortest row (and to ``max_seq_length``); the ``padding`` collator pads each
    batch to its longest row. Its hooks read the raw layer inputs, so padding
    tokens in the rows (``attention_mask`` 0) are calibrated on.
    """
    plan = _inspect_llmcompressor(
        dataset, num_calibration_samples, shuffle_calibration_samples, batch_size, data_collator, max_seq_length
    )
    if warn:
        plan._warn()
    return plan


def _inspect_llmcompressor(
    dataset: Any,
    num_calibration_samples: Optional[int],
    shuffle: bool,
    batch_size: int,
    collator: Any,
    max_seq_length: Optional[int],
) -> Plan:
    if getattr(dataset, "plan", None) is not None and type(dataset).__name__ == "DataLoader":
        return dataset.plan
    if hasattr(dataset, "to_dataset") and hasattr(dataset, "pool"):  # a Selection
        dataset = dataset.to_dataset()
    ids, masks = _columns(dataset)
    n = len(ids)
    lengths = np.array([len(r) for r in ids], dtype=np.int64)
    real = np.array([int(np.sum(m)) for m in masks], dtype=np.int64)
    warnings: List[str] = []
    pads_in_rows = int(lengths.sum() - real.sum())
    if pads_in_rows:
        warnings.append(
            f"the rows hold {pads_in_rows:,} padding tokens (attention_mask 0); llm-compressor's hooks read "
            "the raw layer inputs and calibrate on them: hand over unpadded rows "
            "(zipcal.handoff.to_llmcompressor or Selection.to_dataset())"
        )
    keep = n if num_calibration_samples is None else min(int(num_calibration_samples), n)
    if num_calibration_samples is not None and keep < n:
        how = "drawn by an unseeded sampler" if shuffle else "the longest ones (rows sorted by length)"
        warnings.append(
            f"num_calibration_samples={num_calibration_samples} keeps {keep} of {n} rows, {how}: "
            f"pass num_calibration_samples={n} or None"
        )
    seq: Optional[np.ndarray]
    if shuffle:
        order = f"shuffled by an unseeded sampler ({ORDER_FREE})"
        seq = np.arange(n) if keep == n else None
    else:
        order = f"longest first ({ORDER_FREE})"
        seq = np.argsort(-lengths, kind="stable")[:keep]
    if collator == "padding":
        max_seq_length = None  # llm-compressor ignores it with this collator (and says so)

    def plan(tokens_kept: Optional[int], pad_tokens: Optional[int]) -> Plan:
        return Plan(
            "llm-compressor",
            rows_given=n,
            tokens_given=int(real.sum()),
            rows_kept=keep,
            tokens_kept=tokens_kept,
            pad_tokens=pad_tokens,
            order=order,
            warnings=warnings,
        )

    if callable(collator):
        warnings.append("a custom data_collator: zipcal cannot say what it keeps")
        return plan(None, None)
    if collator not in ("truncation", "padding"):
        raise InvalidArgumentError(f"data_collator must be 'truncation', 'padding' or a callable, got {collator!r}")
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be at least 1, got {batch_size}")
    tokens_kept: Optional[int] = None
    pad_tokens: Optional[int] = None
    effect = "cut to its shortest row" if collator == "truncation" else "padded to its longest row"
    if seq is None or (shuffle and batch_size > 1):
        # which rows are kept, or share a batch, is decided by the unseeded draw
        if batch_size > 1:
            warnings.append(
                f"batch_size={batch_size}: each batch of randomly ordered rows is {effect}; pass batch_size=1"
            )
    else:
        batches = [seq[i : i + batch_size] for i in range(0, len(seq), batch_size)]
        tokens_kept, pad_tokens = _collate(batches, lengths, masks, collator, max_seq_length)
        added = pad_tokens - int((lengths[seq] - real[seq]).sum())
        lost = int(real[seq].sum()) - tokens_kept
        if batch_size > 1 and (lost > 0 or added > 0):
            what = f"drops {lost:,} real tokens" if lost else f"adds {added:,} padding tokens"
            warnings.append(f"batch_size={batch_size}: each batch is {effect}, which {what}; pass batch_size=1")
    if max_seq_length is not None and collator == "truncation" and int(lengths.max(initial=0)) > max_seq_length:
        warnings.append(f"max_seq_length={max_seq_length} cuts rows longer than it")
    return plan(tokens_kept, pad_tokens)


def _collate(
    batches: Iterable[np.ndarray],
    lengths: np.ndarray,
    masks: List[np.ndarray],
    collator: str,
    max_seq_length: Optional[int],
) -> "tuple[int, int]":
    """(real tokens, padding tokens) the hooks see for these batches of row indices."""
    real = pad = 0
    for b in batches:
        if len(b) == 0:
            continue
        if collator == "truncation":
            cut = int(lengths[b].min())
            if max_seq_length is not None:
                cut = min(cut, int(max_seq_length))
            for i in b:
                kept = int(np.sum(masks[i][:cut]))
                real += kept
                pad += cut - kept
        else:
            width = int(lengths[b].max())
            for i in b:
                kept = int(np.sum(masks[i]))
                real += kept
                pad += width - kept
    return real, pad


def _columns(dataset: Any) -> "tuple[List[np.ndarray], List[np.ndarray]]":
    names = getattr(dataset, "column_names", None)
    if names is None or "input_ids" not in names:
        raise InvalidArgumentError(
            "inspect_llmcompressor needs a tokenized datasets.Dataset (an 'input_ids' column), "
            "a loader from zipcal.handoff.to_llmcompressor, or a Selection"
        )
    ids = [np.asarray(r, dtype=np.int64) for r in dataset["input_ids"]]
    if "attention_mask" in names:
        masks = [np.asarray(m, dtype=np.int64) for m in dataset["attention_mask"]]
    else:
        masks = [np.ones(len(r), dtype=np.int64) for r in ids]
    return ids, masks


# ---------------------------------------------------------------- auto-round


class CalibrationRows(list):
    """A list of ``{"input_ids", "attention_mask"}`` examples handed to a toolkit,
    with the :class:`Plan` of what it will keep and the settings that keep it all
    (``seqlen``, ``nsamples``)."""

    plan: Plan
    seqlen: int
    nsamples: int


def inspect_rows(
    rows: Sequence[np.ndarray],
    toolkit: str,
    *,
    seqlen: Optional[int] = None,
    nsamples: Optional[int] = None,
    batch_size: int = 1,
    calibration_sort: Optional[str] = None,
    calibration_data_min_length: int = GPTQMODEL_MIN_LENGTH,
) -> Plan:
    """The :class:`Plan` for unpadded ``rows`` handed to ``toolkit``: 'auto-round'
    with its ``seqlen``/``nsamples``, or 'gptqmodel' with the ``quantize()`` settings
    ``batch_size``, ``calibration_sort`` (None, 'asc', 'desc' (its default) or
    'shuffle') and ``calibration_data_min_length``."""
    lengths = [len(r) for r in rows]
    warnings: List[str] = []
    if toolkit == "auto-round":
        if seqlen is None:
            raise InvalidArgumentError("auto-round: pass the seqlen it will run with")
        kept = [n for n in lengths if n >= seqlen]
        short = len(rows) - len(kept)
        if short:
            warnings.append(
                f"{short} row(s) shorter than seqlen={seqlen} are skipped by auto-round "
                f"({sum(n for n in lengths if n < seqlen):,} tokens); the pool did not hold enough text "
                "to fill every row"
            )
        if nsamples is not None and nsamples < len(kept):
            warnings.append(f"nsamples={nsamples} stops after {nsamples} of {len(kept)} usable rows")
            kept = kept[:nsamples]
        return Plan(
            "auto-round",
            rows_kept=len(kept),
            tokens_kept=int(sum(kept)),
            pad_tokens=0,
            order="as selected",
            warnings=warnings,
            rows_given=len(rows),
            tokens_given=_tokens(rows),
        )
    if toolkit == "gptqmodel":
        if calibration_sort not in (None, "asc", "desc", "shuffle"):
            raise InvalidArgumentError(
                f"calibration_sort must be None, 'asc', 'desc' or 'shuffle', got {calibration_sort!r}"
            )
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be at least 1, got {batch_size}")
        kept = [n for n in lengths if n > calibration_data_min_length]
        short = len(rows) - len(kept)
        if short:
            warnings.append(
                f"{short} row(s) of {calibration_data_min_length} tokens or fewer are removed "
                "(quantize(calibration_data_min_length=0) keeps them)"
            )
        order = {
            None: "as selected",
            "desc": f"longest first ({ORDER_FREE})",
            "asc": f"shortest first ({ORDER_FREE})",
            "shuffle": f"shuffled by an unseeded random.shuffle ({ORDER_FREE})",
        }[calibration_sort]
        pad: Optional[int] = 0
        if batch_size > 1:
            if calibration_sort == "shuffle":
                pad = None
            else:
                seq = sorted(kept, reverse=calibration_sort == "desc") if calibration_sort else kept
                pad = sum(
                    max(b) * len(b) - sum(b) for b in (seq[i : i + batch_size] for i in range(0, len(seq), batch_size))
                )
            if pad != 0:
                what = "an unknown number of" if pad is None else f"{pad:,}"
                warnings.append(
                    f"batch_size={batch_size} pads rows that share a batch ({what} padding tokens); pass batch_size=1"
                )
        return Plan(
            "gptqmodel",
            rows_kept=len(kept),
            tokens_kept=int(sum(kept)),
            pad_tokens=pad,
            order=order,
            warnings=warnings,
            rows_given=len(rows),
            tokens_given=_tokens(rows),
        )
    raise InvalidArgumentError(f"unknown toolkit {toolkit!r} (use 'auto-round' or 'gptqmodel')")


def to_autoround(
    sel: Any, seq_len: Optional[int] = None, *, nsamples: Optional[int] = None, **packing_options: Any
) -> CalibrationRows:
    """Examples for ``AutoRound(model, tokenizer, dataset=rows, seqlen=rows.seqlen, nsamples=rows.nsamples)``.

    auto-round iterates a non-string ``dataset`` as it is, one example per
    step, and skips every example shorter than ``seqlen``: with the default
    ``fill`` packing every row is exactly ``seq_len`` tokens whenever the pool
    held enough text, so all are kept. ``rows.plan`` says what is kept (and warns
    about a short last row)."""
    rows = calibration_rows(sel, seq_len, **packing_options)
    out = CalibrationRows(_examples(rows))
    out.seqlen = int(sel.stats["packing"]["seq_len"])
    out.nsamples = len(rows) if nsamples is None else int(nsamples)
    out.plan = inspect_rows(rows, "auto-round", seqlen=out.seqlen, nsamples=out.nsamples)
    out.plan._warn()
    return out


# ---------------------------------------------------------------- GPTQModel


def to_gptqmodel(
    sel: Any,
    seq_len: Optional[int] = None,
    *,
    batch_size: int = 1,
    calibration_sort: Optional[str] = None,
    **packing_options: Any,
) -> CalibrationRows:
    """Examples for GPTQModel's ``model.quantize(rows, batch_size=1, calibration_sort=None)``:
    one ``{"input_ids": [ids], "attention_mask": [ones]}`` per row, unpadded.

    ``quantize`` sorts rows longest-first unless ``calibration_sort=None`` (the
    statistics are sums over tokens, so the order changes them only by
    rounding), pads rows that share a batch (``batch_size=1`` avoids it), trims
    rows longer than the model's ``max_position_embeddings``, and removes rows of
    ``calibration_data_min_length`` (10) tokens or fewer: ``rows.plan`` says
    which would go, for the ``batch_size`` and ``calibration_sort`` that will be
    passed to ``quantize``."""
    rows = calibration_rows(sel, seq_len, **packing_options)
    out = CalibrationRows({"input_ids": [r.tolist()], "attention_mask": [[1] * len(r)]} for r in rows)
    out.seqlen = int(sel.stats["packing"]["seq_len"])
    out.nsamples = len(rows)
    out.plan = inspect_rows(rows, "gptqmodel", batch_size=batch_size, calibration_sort=calibration_sort)
    out.plan._warn()
    return out
