"""Packing selected candidates into calibration rows (and tensors), and the token
budget behind it.

Every strategy is handed the same budget: ``n`` rows of ``seq_len`` tokens. A row
holds the special tokens the tokenizer adds to one sequence (for example a BOS
token) and ``capacity = seq_len - specials`` content tokens. A candidate feeds
its own tokens and nothing else (its window, or its document's first
``capacity`` tokens), so its type set is exactly the types it feeds.

The ``fill`` layout (the default): a candidate as long as a row's capacity
takes a row of its own; shorter ones are joined in pick order, each followed by
a separator (the tokenizer's EOS token, when it has one), and the joined stream
is cut into rows. A strategy keeps picking until the picks' *costs* (tokens,
plus the separator of a short candidate) reach ``n * capacity``, so every row
is full of real tokens whenever the pool holds enough of them; only the last
pick may be cut short. The same layout is applied to type sequences (for the
coverage statistics) and to token ids (for the tensors), so the statistics
describe the rows the compressor receives.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from .errors import InvalidArgumentError, MissingDependencyError, TokenizerError, positive_int
from .tokenizer import added_specials, resolve, special_ids

log = logging.getLogger(__name__)

# One piece of a row: (candidate position in pick order, start, end) into that
# candidate's fed tokens, or (-1, 0, 1) for a separator token.
Segment = Tuple[int, int, int]
SEPARATOR: Segment = (-1, 0, 1)


POLICIES = ("fill", "truncate", "random-window", "concat-chunk")


@dataclass(frozen=True)
class Budget:
    """The token budget of a selection: ``rows`` rows of ``capacity`` content tokens.

    ``costs[i]`` is what candidate ``i`` of the pool spends of it: its fed tokens,
    plus ``separator`` when it is shorter than a row (it then shares a row)."""

    rows: int
    capacity: int
    separator: int
    costs: np.ndarray

    @property
    def tokens(self) -> int:
        return self.rows * self.capacity

    def take(self, order: "Sequence[int] | np.ndarray") -> np.ndarray:
        """The shortest prefix of ``order`` whose costs reach the budget (all of
        ``order`` when they never do)."""
        picks = np.asarray(order, dtype=np.int64)
        if len(picks) == 0:
            return picks
        spent = np.cumsum(self.costs[picks])
        k = int(np.searchsorted(spent, self.tokens, side="left"))
        return picks[: k + 1]


def candidate_costs(tokens: np.ndarray, capacity: int, separator: int) -> np.ndarray:
    """Budget cost of candidates with ``tokens`` fed tokens each (at most ``capacity``)."""
    fed = np.minimum(np.asarray(tokens, dtype=np.int64), capacity)
    return (fed + np.where(fed < capacity, separator, 0)).astype(np.uint64)


def layout(lengths: Sequence[int], rows: Optional[int], capacity: int, separator: int) -> List[List[Segment]]:
    """The ``fill`` layout of pieces of ``lengths`` tokens into at most ``rows`` rows
    of ``capacity`` tokens (all rows needed when ``rows`` is None). Full pieces take a
    row each, in pick order; shorter ones are joined (each followed by ``separator``
    separator tokens) and cut into the rows after them. Tokens past the last row are
    dropped; the last row may be short."""
    if capacity <= 0:
        raise InvalidArgumentError(f"rows must hold at least one content token, got capacity {capacity}")
    full: List[List[Segment]] = []
    stream: List[Segment] = []  # the short pieces, each followed by its separators
    for i, n in enumerate(lengths):
        n = min(int(n), capacity)
        if n == capacity:
            full.append([(i, 0, n)])
        elif n > 0:
            stream.append((i, 0, n))
            stream.extend([SEPARATOR] * separator)
    packed: List[List[Segment]] = []
    current: List[Segment] = []
    room = capacity
    for i, a, b in stream:
        while a < b:
            take = min(room, b - a)
            current.append((i, a, a + take))
            a += take
            room -= take
            if room == 0:
                packed.append(current)
                current, room = [], capacity
    if current:
        packed.append(current)
    out = full + packed
    return out if rows is None else out[:rows]


def fill(
    pieces: Sequence[np.ndarray], segments: List[List[Segment]], separator_value: int, dtype=np.int64
) -> List[np.ndarray]:
    """The rows of a :func:`layout` built from ``pieces`` (token ids or type ids)."""
    sep = np.array([separator_value], dtype=dtype)
    rows = []
    for row in segments:
        parts = [sep if c < 0 else np.asarray(pieces[c][a:b], dtype=dtype) for c, a, b in row]
        rows.append(np.concatenate(parts) if parts else np.zeros(0, dtype=dtype))
    return rows


def fed_tokens(segments: List[List[Segment]]) -> int:
    """Content tokens of a layout, separators included."""
    return sum(b - a for row in segments for _, a, b in row)


def rows(
    sel: Any,
    seq_len: Optional[int] = None,
    *,
    tokenizer: Any = None,
    policy: str = "fill",
    add_special_tokens: bool = True,
    seed: Optional[int] = None,
) -> Tuple[List[np.ndarray], Dict[str, Any]]:
    """The calibration rows of a selection as unpadded token-id arrays (at most
    ``seq_len`` tokens each, all of them real), and the packing record:
    ``policy``, ``seq_len``, ``rows``, ``tokens``, ``dropped_tokens``,
    ``pad_token_id`` (what :func:`input_ids` pads with) and, with the pool's own
    tokenizer, ``types_fed``. See :meth:`zipcal.Selection.to_input_ids`."""
    seq_len = positive_int("seq_len", seq_len if seq_len is not None else sel.pool.seq_len)
    if policy not in POLICIES:
        raise InvalidArgumentError(f"policy must be one of {POLICIES}, got {policy!r}")
    seg = packing_segmenter(sel, tokenizer)
    pad_default, eos = special_ids(seg, tokenizer)
    if seq_len != sel.pool.seq_len and policy in ("fill", "truncate"):
        log.warning(
            "packing rows of %d tokens from candidates chosen for rows of %d: the coverage "
            "that was optimised is not what these rows feed",
            seq_len,
            sel.pool.seq_len,
        )
    before, after = added_specials(seg) if add_special_tokens else (np.zeros(0, np.int64),) * 2
    capacity = seq_len - len(before) - len(after)
    if capacity <= 0:
        raise InvalidArgumentError(f"seq_len {seq_len} leaves no room for text after special tokens")
    if policy in ("fill", "truncate"):
        pieces = fed_ids(sel, seg, capacity)
        total = int(sum(len(p) for p in pieces))
        if policy == "fill":
            sep = 1 if eos is not None else 0
            segs = layout([len(p) for p in pieces], sel.rows, capacity, sep)
            content = fill(pieces, segs, eos if eos is not None else 0)
            total += sep * sum(1 for p in pieces if 0 < len(p) < capacity)
        else:
            content = [p for p in pieces if len(p)]
        rows_list = [np.concatenate([before, r, after]).astype(np.int64) for r in content]
        dropped = total - int(sum(len(r) for r in content))
    else:
        encoded = seg.encode_batch(sel.texts, add_special_tokens)
        total = int(sum(len(e) for e in encoded))
        rng = np.random.default_rng(sel.seed if seed is None else seed)
        if policy == "concat-chunk":
            chunks: List[np.ndarray] = []
            for e in encoded:
                chunks.append(e)
                if eos is not None:
                    chunks.append(np.array([eos], dtype=np.int64))
            flat = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
            total = len(flat)
            n_rows = min(max(sel.rows, len(sel)), len(flat) // seq_len)
            rows_list = [flat[:seq_len]] if n_rows == 0 else list(flat[: n_rows * seq_len].reshape(n_rows, seq_len))
        else:
            rows_list = []
            for e in encoded:
                if len(e) > seq_len:
                    start = int(rng.integers(0, len(e) - seq_len + 1))
                    rows_list.append(e[start : start + seq_len])
                else:
                    rows_list.append(e)
        dropped = total - int(sum(len(r) for r in rows_list))
    rows_list = [np.asarray(r, dtype=np.int64) for r in rows_list]
    info: Dict[str, Any] = {
        "policy": policy,
        "seq_len": seq_len,
        "rows": len(rows_list),
        "tokens": int(sum(len(r) for r in rows_list)),
        "dropped_tokens": int(dropped),
        "pad_token_id": int(pad_default if pad_default is not None else 0),
    }
    if seg is sel.pool.segmenter:
        flat = np.concatenate(rows_list) if rows_list else np.zeros(0, dtype=np.int64)
        types = seg.token_types()[flat]
        info["types_fed"] = int(len(np.unique(types[types != _core.NO_TYPE])))
    return rows_list, info


def input_ids(
    sel: Any,
    seq_len: Optional[int] = None,
    *,
    tokenizer: Any = None,
    policy: str = "fill",
    add_special_tokens: bool = True,
    pad_token_id: Optional[int] = None,
    seed: Optional[int] = None,
    return_tensors: str = "auto",
) -> Dict[str, Any]:
    """:meth:`zipcal.Selection.to_input_ids` (see there)."""
    if return_tensors not in ("auto", "np", "pt"):
        raise InvalidArgumentError(f"return_tensors must be 'auto', 'np' or 'pt', got {return_tensors!r}")
    rows_list, info = rows(
        sel, seq_len, tokenizer=tokenizer, policy=policy, add_special_tokens=add_special_tokens, seed=seed
    )
    seq_len = info["seq_len"]
    pad = pad_token_id if pad_token_id is not None else info["pad_token_id"]
    ids = np.full((len(rows_list), seq_len), pad, dtype=np.int64)
    mask = np.zeros((len(rows_list), seq_len), dtype=np.int64)
    for i, r in enumerate(rows_list):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    real = int(mask.sum())
    info.update(
        pad_tokens=int(mask.size - real),
        pad_fraction=float(1 - real / mask.size) if mask.size else 0.0,
        pad_token_id=int(pad),
    )
    sel.stats["packing"] = info
    want_torch = return_tensors == "pt" or (return_tensors == "auto" and importlib.util.find_spec("torch") is not None)
    if want_torch:
        try:
            import torch
        except ImportError:
            raise MissingDependencyError("return_tensors='pt' needs torch: pip install 'zipcal[torch]'") from None
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    return {"input_ids": ids, "attention_mask": mask}


def packing_segmenter(sel: Any, tokenizer: Any) -> "_core.Segmenter":
    if tokenizer is not None:
        return resolve(tokenizer)
    if not sel.pool.segmenter.is_words:
        return sel.pool.segmenter
    raise TokenizerError(
        "this selection was made in tokenizer-free 'words' mode: pass tokenizer= (the target "
        "model's tokenizer.json, its folder, or a transformers tokenizer) to build input_ids"
    )


def fed_ids(sel: Any, seg: "_core.Segmenter", capacity: int) -> List[np.ndarray]:
    """Token ids (``seg``) that each sample feeds, at most ``capacity`` of them."""
    if sel.synthetic:
        return [e[:capacity] for e in seg.encode_batch(list(sel.texts), False)]
    return [e[:capacity] for e in sel.pool.candidate_ids(sel.candidates, seg)]
