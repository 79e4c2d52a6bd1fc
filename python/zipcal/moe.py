"""Mixture-of-experts coverage: how many calibration tokens reach each expert.

Post-training compression of a MoE model calibrates every expert on the tokens the
router sends to it, and only those. An expert that no calibration token reaches
gets an empty Hessian / activation statistic: GPTQ- and AWQ-style toolkits then
produce NaN scales or leave it uncompressed. :func:`expert_coverage` runs the
calibration rows through the model, hooks every router, and counts (per MoE layer,
per expert) the real calibration tokens (``attention_mask == 1``) the model's own
top-k routing sends to it. :func:`cover_experts` picks extra pool candidates that
reach the experts left short. ``zipcal experts MODEL --calib FILE`` prints the report.

Routers are found generically: the modules a transformers model records as
``router_logits`` (``_can_record_outputs``: ``MixtralTopKRouter``,
``Qwen2MoeTopKRouter``, ``Qwen3MoeTopKRouter``, ``OlmoeTopKRouter``, DeepSeek's
``TopkRouter``...) and every ``gate`` / ``router`` child of a module that also has an
``experts`` child (the transformers 4 layout, where the gate is an ``nn.Linear``).
When a router returns the indices it chose (transformers 5 routers return
``(logits, weights, indices)``), those are counted, so grouped or bias-corrected
routing (DeepSeek-V3) is counted as the model routes. A router that returns only
logits ``[tokens, num_experts]`` is completed here with softmax then top-k, ``k``
from the router's ``top_k`` or the config's ``num_experts_per_tok``
(renormalising the top-k weights, Qwen's ``norm_topk_prob``, does not change which
experts are chosen).

This module imports neither torch nor transformers at import time.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import InvalidArgumentError, TokenizerError, positive_int

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

log = logging.getLogger(__name__)

# Exit status of ``zipcal experts``.
EXIT_OK = 0
EXIT_UNREACHED = 1
EXIT_BAD_INPUT = 2

# Used only when the model declares no hidden size.
FALLBACK_MIN_TOKENS = 128

_ROUTER_CHILDREN = ("gate", "router")
_EXPERTS_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_TOPK_KEYS = ("num_experts_per_tok", "moe_top_k", "top_k", "num_selected_experts")


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------
@dataclass
class ExpertCoverage:
    """Tokens routed to each expert of each MoE layer.

    Attributes:
        layers: the router module of each MoE layer (``model.layers.0.mlp.gate``...).
        counts: ``int64 [len(layers), num_experts]``: real calibration tokens routed
            to each expert (a token counts once for each of its ``top_k`` experts, so
            every row sums to ``tokens * top_k``).
        top_k: experts per token.
        tokens: real (non-padding) calibration tokens; each MoE layer routes all of them.
        rows: calibration rows.
        min_tokens: the threshold :meth:`below` and the report flag by default.
    """

    layers: List[str]
    counts: np.ndarray
    top_k: int
    tokens: int
    rows: int
    min_tokens: int

    @property
    def num_experts(self) -> int:
        return int(self.counts.shape[1]) if self.counts.ndim == 2 else 0

    def unreached(self) -> List[Tuple[str, int]]:
        """``(layer, expert)`` of every expert that no calibration token reaches."""
        return self.below(1)

    def below(self, min_tokens: Optional[int] = None) -> List[Tuple[str, int]]:
        """``(layer, expert)`` of every expert reached by fewer than ``min_tokens``
        tokens (default :attr:`min_tokens`); unreached experts included."""
        m = self.min_tokens if min_tokens is None else int(min_tokens)
        li, ei = np.nonzero(self.counts < m)
        return [(self.layers[int(i)], int(e)) for i, e in zip(li, ei)]

    def layer_summary(self) -> List[Dict[str, Any]]:
        """Per layer: min / median / max tokens per expert and the flagged experts."""
        out = []
        for name, row in zip(self.layers, self.counts):
            out.append(
                {
                    "layer": name,
                    "min": int(row.min()),
                    "median": float(np.median(row)),
                    "max": int(row.max()),
                    "unreached": [int(e) for e in np.flatnonzero(row == 0)],
                    "below_min_tokens": [int(e) for e in np.flatnonzero(row < self.min_tokens)],
                }
            )
        return out

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dict: the settings, counts, per-layer summary and flags."""
        return {
            "layers": list(self.layers),
            "num_experts": self.num_experts,
            "top_k": int(self.top_k),
            "tokens": int(self.tokens),
            "rows": int(self.rows),
            "min_tokens": int(self.min_tokens),
            "counts": self.counts.astype(np.int64).tolist(),
            "per_layer": self.layer_summary(),
            "unreached": [{"layer": n, "expert": e} for n, e in self.unreached()],
            "below_min_tokens": [
                {"layer": n, "expert": e, "tokens": int(self.counts[self.layers.index(n), e])} for n, e in self.below()
            ],
        }

    def format(self, max_listed: int = 12) -> str:
        """A table: per layer min / median / max tokens per expert, unreached and
        under-``min_tokens`` experts, then the flagged experts by name (at most
        ``max_listed`` per layer)."""
        m = self.min_tokens
        head = (
            f"MoE expert coverage: {len(self.layers)} MoE layers x {self.num_experts} experts, top-{self.top_k}, "
            f"{self.tokens:,} tokens in {self.rows} rows (flag: < {m} tokens)"
        )
        width = max([len("layer")] + [len(n) for n in self.layers])
        cols = ("min", "median", "max", "unreached", f"< {m}")
        lines = [head, f"{'layer':<{width}}  " + "  ".join(f"{c:>9}" for c in cols)]
        summary = self.layer_summary()
        for s in summary:
            vals = (s["min"], f"{s['median']:.0f}", s["max"], len(s["unreached"]), len(s["below_min_tokens"]))
            lines.append(f"{s['layer']:<{width}}  " + "  ".join(f"{v:>9}" for v in vals))
        n_unreached = sum(len(s["unreached"]) for s in summary)
        n_below = sum(len(s["below_min_tokens"]) for s in summary)
        total = len(self.layers) * self.num_experts
        lines.append(
            f"{n_unreached} of {total} experts unreached, {n_below} reached by fewer than {m} tokens"
            if total
            else "no experts"
        )
        for s, row in zip(summary, self.counts):
            flagged = s["below_min_tokens"]
            if not flagged:
                continue
            shown = ", ".join(f"{e} ({int(row[e])})" for e in flagged[:max_listed])
            more = f", ... {len(flagged) - max_listed} more" if len(flagged) > max_listed else ""
            lines.append(f"  {s['layer']}: expert (tokens) {shown}{more}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


# --------------------------------------------------------------------------
# model inspection
# --------------------------------------------------------------------------
def _text_config(model: Any) -> Any:
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "get_text_config"):
        try:
            return cfg.get_text_config()
        except Exception:  # pragma: no cover - unusual configs
            return cfg
    return cfg


def _config_int(cfg: Any, keys: Sequence[str]) -> Optional[int]:
    if cfg is None:
        return None
    subs = [cfg]
    ffn = getattr(cfg, "ffn_config", None)  # DBRX
    if ffn is not None:
        subs.append(ffn)
    for sub in subs:
        for key in keys:
            v = sub.get(key) if isinstance(sub, dict) else getattr(sub, key, None)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    return None


def _recorded_router_classes(model: Any) -> Tuple[Tuple[type, ...], Tuple[str, ...]]:
    """Router classes (and class-name suffixes) a transformers model records as ``router_logits``."""
    classes: List[type] = []
    names: List[str] = []
    for obj in (model, getattr(model, "base_model", None)):
        spec = getattr(type(obj), "_can_record_outputs", None) if obj is not None else None
        if not isinstance(spec, dict) or "router_logits" not in spec:
            continue
        entries = spec["router_logits"]
        for entry in entries if isinstance(entries, (list, tuple)) else [entries]:
            target = entry if isinstance(entry, type) else getattr(entry, "target_class", None)
            if isinstance(target, type):
                classes.append(target)
            elif getattr(entry, "class_name", None):
                names.append(str(entry.class_name))
    return tuple(classes), tuple(names)


def find_routers(model: "nn.Module") -> List[Tuple[str, "nn.Module"]]:
    """``(name, module)`` of every MoE router of ``model``, in module order (see the
    module docstring for how they are recognised)."""
    classes, suffixes = _recorded_router_classes(model)
    chosen: Dict[int, str] = {}
    for name, mod in model.named_modules():
        if (classes and isinstance(mod, classes)) or (suffixes and type(mod).__name__.endswith(suffixes)):
            chosen.setdefault(id(mod), name)
        children = dict(mod.named_children())
        if "experts" in children:
            for key in _ROUTER_CHILDREN:
                if key in children:
                    chosen.setdefault(id(children[key]), f"{name}.{key}" if name else key)
    return [(name, mod) for name, mod in model.named_modules() if chosen.get(id(mod)) == name]


def default_min_tokens(model: Any) -> int:
    """The default flag threshold: the model's hidden size.

    An expert's up/gate projections read hidden-size inputs. GPTQ / SparseGPT build
    the ``d x d`` Hessian ``X^T X`` of those inputs from the tokens routed to the
    expert, and its rank is at most the number of tokens: with fewer than ``d`` tokens
    it is singular, only the dampening term keeps it invertible, and the error
    compensation is blind in the missing directions (AWQ's per-channel activation
    scales are as noisy). ``d`` tokens is the least for a full-rank estimate, so
    experts under it are flagged; it is a floor, not a target.
    """
    d = _config_int(_text_config(model), ("hidden_size", "d_model", "n_embd"))
    return d if d is not None else FALLBACK_MIN_TOKENS


def _router_top_k(model: Any, router: Any, parent: Any) -> Optional[int]:
    for obj in (router, parent):
        k = getattr(obj, "top_k", None) if obj is not None else None
        if isinstance(k, int) and not isinstance(k, bool) and k > 0:
            return k
    return _config_int(_text_config(model), _TOPK_KEYS)


# --------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------
class _RouterCounter:
    """Forward hooks on the routers that count routed tokens per expert (and per row)."""

    def __init__(self, routers: List[Tuple[str, Any]], top_k: Dict[str, Optional[int]], per_row: bool) -> None:
        self.routers = routers
        self.top_k = top_k
        self.per_row = per_row
        self.mask: Optional["torch.Tensor"] = None  # [batch, seq] bool of the running batch
        self.counts: Dict[str, Any] = {}  # name -> int64 [E] (or list of [rows_in_batch, E] arrays)
        self.k_seen: Dict[str, int] = {}
        self._handles: List[Any] = []

    def __enter__(self) -> "_RouterCounter":
        for name, mod in self.routers:
            self._handles.append(mod.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str):
        import torch

        def fn(module: Any, inputs: Any, output: Any) -> None:
            logits, idx = _parse_router_output(output, self.top_k[name])
            if idx is None:
                if logits is None:
                    raise InvalidArgumentError(f"{name}: router output holds no logits tensor")
                k = self.top_k[name]
                if k is None:
                    raise InvalidArgumentError(
                        f"{name}: cannot tell how many experts each token is routed to "
                        "(no top_k on the router, no num_experts_per_tok in the config): pass top_k="
                    )
                flat = logits.detach().reshape(-1, logits.shape[-1]).float()
                idx = torch.topk(torch.softmax(flat, dim=-1), k, dim=-1).indices
            idx = idx.detach().reshape(-1, idx.shape[-1]).long()
            n_exp = int(logits.shape[-1]) if logits is not None else int(getattr(module, "num_experts", 0) or 0)
            if n_exp <= 0:
                raise InvalidArgumentError(f"{name}: cannot tell the number of experts")
            mask = self.mask
            assert mask is not None
            if idx.shape[0] != mask.numel():
                raise InvalidArgumentError(
                    f"{name}: the router saw {idx.shape[0]} tokens for a batch of {mask.numel()}; "
                    "this MoE layout is not supported"
                )
            self.k_seen[name] = int(idx.shape[1])
            keep = mask.reshape(-1).to(idx.device)
            rows_in_batch = mask.shape[0]
            if self.per_row:
                row = torch.arange(rows_in_batch, device=idx.device).repeat_interleave(mask.shape[1])
                key = (row[keep].unsqueeze(1) * n_exp + idx[keep]).reshape(-1)
                per = torch.bincount(key, minlength=rows_in_batch * n_exp).reshape(rows_in_batch, n_exp)
                self.counts.setdefault(name, []).append(per.cpu().numpy().astype(np.int32))
            else:
                tot = torch.bincount(idx[keep].reshape(-1), minlength=n_exp).cpu().numpy().astype(np.int64)
                prev = self.counts.get(name)
                if prev is not None and prev.shape != tot.shape:
                    raise InvalidArgumentError(f"{name}: the number of experts changed between batches")
                self.counts[name] = tot if prev is None else prev + tot

        return fn


def _parse_router_output(
    output: Any, top_k: Optional[int]
) -> Tuple[Optional["torch.Tensor"], Optional["torch.Tensor"]]:
    """``(logits, chosen indices)`` of a router's output; either may be None."""
    import torch

    items = output if isinstance(output, (tuple, list)) else (output,)
    logits = idx = None
    for t in items:
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            continue
        if t.is_floating_point():
            if logits is None:
                logits = t
        elif idx is None and t.dtype != torch.bool and (top_k is None or t.shape[-1] == top_k):
            idx = t
    return logits, idx


def _as_batch(calibration: Any, tokenizer: Any, seq_len: Optional[int], n: Optional[int]) -> Dict[str, Any]:
    """``{"input_ids", "attention_mask"}`` of any calibration input (ragged token lists padded)."""
    import torch

    from .compress.calib import load_calibration

    if (
        isinstance(calibration, (list, tuple))
        and calibration
        and not any(isinstance(r, str) for r in calibration)
        and any(_is_sequence(r) for r in calibration)
    ):
        rows = [
            torch.as_tensor(np.asarray(r.cpu() if isinstance(r, torch.Tensor) else r)).reshape(-1) for r in calibration
        ]
        for i, r in enumerate(rows):
            if r.is_floating_point() or r.is_complex():
                raise InvalidArgumentError(f"calibration row {i} must hold integer token ids, got {r.dtype}")
        rows = [r for r in rows if r.numel() > 0]
        if not rows:
            raise InvalidArgumentError("calibration data is empty")
        width = max(int(r.numel()) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : r.numel()] = r.long()
            mask[i, : r.numel()] = 1
        calibration = {"input_ids": ids, "attention_mask": mask}
    return load_calibration(calibration, tokenizer=tokenizer, seq_len=seq_len, n=n)


def _is_sequence(x: Any) -> bool:
    return hasattr(x, "__len__") and not isinstance(x, (str, bytes, dict))


def _progress(iterable: Any, desc: str, enabled: bool, total: Optional[int] = None) -> Any:
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False)


def _require_routers(model: Any) -> List[Tuple[str, Any]]:
    routers = find_routers(model)
    if not routers:
        declared = _config_int(_text_config(model), _EXPERTS_KEYS)
        what = f"its config declares {declared} experts but " if declared else ""
        raise InvalidArgumentError(
            f"{type(model).__name__} has no MoE layers: {what}no router module was found "
            "(expected a 'gate' or 'router' next to an 'experts' module)"
        )
    return routers


def _route(
    model: Any,
    data: Dict[str, Any],
    *,
    batch_size: int,
    device: Any,
    per_row: bool,
    top_k: Optional[int],
    progress: bool,
) -> Tuple[List[str], Dict[str, Any], int]:
    """Run ``data`` through the model one decoder layer at a time (as
    :mod:`zipcal.compress` does: only one layer on ``device`` at a time), counting
    routed tokens. Returns ``(router names, counts by name, top_k)``; counts are
    ``int64 [E]`` or, with ``per_row``, ``int32 [rows, E]``."""
    import torch

    from .compress.hooks import capture_layer_inputs, find_decoder_layers, module_device, resolve_device, run_layer

    routers = _require_routers(model)
    mods = dict(model.named_modules())
    ks: Dict[str, Optional[int]] = {}
    for name, mod in routers:
        parent = mods.get(name.rsplit(".", 1)[0]) if "." in name else None
        ks[name] = top_k if top_k is not None else _router_top_k(model, mod, parent)
    layers_path, layers = find_decoder_layers(model)
    owner: Dict[str, int] = {}
    for name, _ in routers:
        for i in range(len(layers)):
            if name.startswith(f"{layers_path}.{i}."):
                owner[name] = i
    if len(owner) != len(routers):
        lost = [n for n, _ in routers if n not in owner][0]
        raise InvalidArgumentError(f"router {lost} is outside the decoder layers ({layers_path})")
    last = max(owner.values())
    dev = resolve_device(device)
    ids, mask = data["input_ids"], data["attention_mask"]
    was_training = model.training
    model.eval()
    counter = _RouterCounter(routers, ks, per_row)
    try:
        with torch.no_grad():
            batches = capture_layer_inputs(model, layers_path, layers, ids, mask, dev, batch_size)
            with counter:
                for i in _progress(range(last + 1), "experts", progress):
                    layer = layers[i]
                    home = module_device(layer)
                    layer.to(dev)
                    for b in batches:
                        counter.mask = b.token_mask
                        hidden = run_layer(layer, b)
                        if i < last:
                            b.hidden = hidden
                    layer.to(home)
    finally:
        model.train(was_training)
    names = [n for n, _ in routers]
    missing = [n for n in names if n not in counter.counts]
    if missing:
        raise InvalidArgumentError(f"router {missing[0]} was never called")
    out: Dict[str, Any] = {}
    for n in names:
        c = counter.counts[n]
        out[n] = np.concatenate(c, axis=0) if per_row else c
    widths = {int(c.shape[-1]) for c in out.values()}
    if len(widths) != 1:
        raise InvalidArgumentError(f"MoE layers have different numbers of experts ({sorted(widths)})")
    k_vals = set(counter.k_seen.values())
    if len(k_vals) != 1:
        raise InvalidArgumentError(f"MoE layers route tokens to different numbers of experts ({sorted(k_vals)})")
    return names, out, k_vals.pop()


def expert_coverage(
    model: Any,
    calibration: Any,
    *,
    tokenizer: Any = None,
    seq_len: Optional[int] = None,
    n: Optional[int] = None,
    batch_size: int = 8,
    min_tokens: Optional[int] = None,
    top_k: Optional[int] = None,
    device: Any = "auto",
    progress: bool = False,
) -> ExpertCoverage:
    """Count the calibration tokens the model routes to each expert of each MoE layer.

    Args:
        model: a Hugging Face MoE causal LM (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE,
            DeepSeek-V2/V3, ...).
        calibration: a :class:`zipcal.Selection` (packed with ``to_input_ids``; a
            selection made in words mode needs ``tokenizer``), a dict with
            ``input_ids`` (and ``attention_mask``), an ``[n, L]`` tensor or array, a
            list of 1-D token tensors / lists (ragged rows are right-padded and the
            padding masked), a list of strings or a ``.parquet`` / ``.jsonl`` path
            (tokenized with ``tokenizer``, as ``zipcal compress --calib`` reads it).
        tokenizer / seq_len / n: as :func:`zipcal.compress.calib.load_calibration`.
        batch_size: rows per forward batch.
        min_tokens: the flag threshold of the report (default
            :func:`default_min_tokens`: the model's hidden size, the fewest tokens
            that give an expert's up/gate projections a full-rank GPTQ Hessian).
        top_k: experts per token when neither the router nor the config says.
        device: where each decoder layer runs ("auto": CUDA when available). Layers
            move there one at a time and back, as in :mod:`zipcal.compress`.
        progress: a progress bar over the layers.

    Padding (``attention_mask == 0``) is never counted. Raises
    :class:`~zipcal.errors.InvalidArgumentError` for a model without MoE layers.
    """
    batch_size = positive_int("batch_size", batch_size)
    if min_tokens is not None:
        min_tokens = positive_int("min_tokens", min_tokens)
    _require_routers(model)  # before tokenizing anything
    data = _as_batch(calibration, tokenizer, seq_len, n)
    from .compress.calib import check_vocab

    check_vocab(data["input_ids"], model)
    names, counts, k = _route(
        model, data, batch_size=batch_size, device=device, per_row=False, top_k=top_k, progress=progress
    )
    return ExpertCoverage(
        layers=names,
        counts=np.stack([counts[n] for n in names]).astype(np.int64),
        top_k=k,
        tokens=int(data["attention_mask"].sum()),
        rows=int(data["input_ids"].shape[0]),
        min_tokens=min_tokens if min_tokens is not None else default_min_tokens(model),
    )


# --------------------------------------------------------------------------
# covering under-reached experts
# --------------------------------------------------------------------------
@dataclass
class ExpertCover:
    """What :func:`cover_experts` added.

    Attributes:
        candidates: pool candidate indices added, in pick order.
        rows: their token ids, one row each (the tokenizer's special tokens around
            the candidate's tokens, as ``to_input_ids`` adds them).
        before: coverage of the selection alone (zeros for a bare pool).
        after: coverage of the selection plus the added rows.
        scored: pool candidates that were run through the model.
    """

    candidates: np.ndarray
    rows: List[np.ndarray]
    before: ExpertCoverage
    after: ExpertCoverage
    scored: int


def cover_experts(
    selection_or_pool: Any,
    model: Any,
    *,
    tokenizer: Any = None,
    seq_len: Optional[int] = None,
    min_tokens: Optional[int] = None,
    max_candidates: Optional[int] = 1024,
    max_rows: Optional[int] = None,
    batch_size: int = 8,
    top_k: Optional[int] = None,
    seed: int = 0,
    device: Any = "auto",
    progress: bool = False,
) -> ExpertCover:
    """Add pool candidates until every expert gets ``min_tokens`` tokens (or none helps).

    ``selection_or_pool`` is a :class:`zipcal.Selection` (its coverage is the
    starting point, its candidates are not picked again) or a :class:`zipcal.Pool`
    (start from nothing). Up to ``max_candidates`` candidates not yet picked (a
    seeded random sample when the pool holds more; None: all of them) are each run
    through the model once as their own row, and their per-expert token counts
    recorded. Then, greedily, the candidate that adds the most tokens to experts still
    short of ``min_tokens`` (each expert counted up to its shortfall) is added, until
    no expert is short, no candidate helps, or ``max_rows`` rows were added.

    Cost: one forward pass over every scored candidate (``max_candidates`` rows of up
    to ``seq_len`` tokens, in batches of ``batch_size``) plus one over the selection;
    memory ``max_candidates x MoE layers x experts`` int32 counts. The added rows'
    counts are exact (routing is per token and rows do not interact), so ``after`` is
    what :func:`expert_coverage` reports on the selection's rows plus ``rows``.

    ``tokenizer`` is the model's tokenizer (needed when the pool was built in words
    mode); ``seq_len`` defaults to the pool's.
    """
    from .pool import Pool
    from .tokenizer import added_specials, resolve

    if isinstance(selection_or_pool, Pool):
        pool, sel = selection_or_pool, None
    elif isinstance(getattr(selection_or_pool, "pool", None), Pool):
        pool, sel = selection_or_pool.pool, selection_or_pool
    else:
        raise InvalidArgumentError(
            f"cover_experts needs a zipcal Selection or Pool, got {type(selection_or_pool).__name__}"
        )
    batch_size = positive_int("batch_size", batch_size)
    if max_rows is not None:
        max_rows = positive_int("max_rows", max_rows)
    if max_candidates is not None:
        max_candidates = positive_int("max_candidates", max_candidates)
    length = positive_int("seq_len", seq_len if seq_len is not None else pool.seq_len)
    if tokenizer is not None:
        seg = resolve(tokenizer)
    elif not pool.segmenter.is_words:
        seg = pool.segmenter
    else:
        raise TokenizerError("this pool was built in tokenizer-free 'words' mode: pass tokenizer= (the model's)")
    floor = positive_int("min_tokens", min_tokens) if min_tokens is not None else default_min_tokens(model)
    _require_routers(model)

    before: Optional[ExpertCoverage] = None
    picked = np.zeros(0, dtype=np.int64)
    if sel is not None:
        before = expert_coverage(
            model,
            sel.to_input_ids(length, tokenizer=tokenizer, return_tensors="pt"),
            batch_size=batch_size,
            min_tokens=floor,
            top_k=top_k,
            device=device,
            progress=progress,
        )
        picked = np.asarray(sel.candidates, dtype=np.int64)
        picked = picked[picked >= 0]
        if not before.below(floor):
            empty = ExpertCover(np.zeros(0, dtype=np.int64), [], before, before, 0)
            return empty

    pool_ids = np.setdiff1d(np.arange(len(pool), dtype=np.int64), picked)
    if max_candidates is not None and len(pool_ids) > max_candidates:
        rng = np.random.default_rng(seed)
        pool_ids = np.sort(rng.choice(pool_ids, size=max_candidates, replace=False))
    lead, tail = added_specials(seg)
    room = length - len(lead) - len(tail)
    if room <= 0:
        raise InvalidArgumentError(f"seq_len {length} leaves no room for text after special tokens")
    cand_rows: List[np.ndarray] = []
    kept: List[int] = []
    for c, tok in zip(pool_ids, pool.candidate_ids(pool_ids, seg)):
        if len(tok):
            cand_rows.append(np.concatenate([lead, np.asarray(tok[:room], dtype=np.int64), tail]))
            kept.append(int(c))
    if not cand_rows:
        if before is None:
            raise InvalidArgumentError("the pool holds no candidates to score")
        return ExpertCover(np.zeros(0, dtype=np.int64), [], before, before, 0)
    data = _as_batch(cand_rows, None, None, None)
    from .compress.calib import check_vocab

    check_vocab(data["input_ids"], model)
    names, per_row, k = _route(
        model, data, batch_size=batch_size, device=device, per_row=True, top_k=top_k, progress=progress
    )
    scores = np.stack([per_row[n] for n in names], axis=1)  # [candidates, layers, experts]
    if before is None:
        before = ExpertCoverage(names, np.zeros(scores.shape[1:], dtype=np.int64), k, 0, 0, floor)
    elif before.layers != names or before.counts.shape != scores.shape[1:]:
        raise InvalidArgumentError("the MoE layers changed between the selection's pass and the pool's")
    current = before.counts.copy()
    tokens, rows = before.tokens, before.rows
    chosen: List[int] = []
    available = np.ones(len(kept), dtype=bool)
    while max_rows is None or len(chosen) < max_rows:
        short = np.maximum(floor - current, 0)
        if not short.any():
            break
        gain = np.minimum(scores, short[None]).reshape(len(kept), -1).sum(axis=1)
        gain[~available] = -1
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        chosen.append(best)
        available[best] = False
        current += scores[best]
        tokens += int(len(cand_rows[best]))
        rows += 1
    after = ExpertCoverage(list(names), current, k, tokens, rows, floor)
    return ExpertCover(
        candidates=np.asarray([kept[i] for i in chosen], dtype=np.int64),
        rows=[cand_rows[i] for i in chosen],
        before=before,
        after=after,
        scored=len(kept),
    )


# --------------------------------------------------------------------------
# CLI: zipcal experts
# --------------------------------------------------------------------------
def _experts_command(args: argparse.Namespace) -> int:
    from .compress.calib import check_tokenizer_fits
    from .compress.commands import _setup_torch
    from .models import load_model

    _setup_torch(args)
    model, tokenizer = load_model(args.model, dtype=args.dtype)
    check_tokenizer_fits(tokenizer, model)
    cov = expert_coverage(
        model,
        args.calib,
        tokenizer=tokenizer,
        seq_len=args.seq_len,
        n=args.nsamples,
        batch_size=args.batch_size,
        min_tokens=args.min_tokens,
        device=args.device,
        progress=not args.quiet,
    )
    if args.json:
        report = cov.to_dict()
        report["model"] = str(args.model)
        print(json.dumps(report, indent=2))
    else:
        print(cov.format())
    return EXIT_UNREACHED if cov.unreached() else EXIT_OK


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``experts`` subcommand to an argparse subparsers object."""
    from .compress.commands import _guard

    p = subparsers.add_parser(
        "experts",
        help="MoE expert coverage: calibration tokens routed to each expert",
        description="Run calibration data through a local Hugging Face MoE model and count, per MoE "
        "layer and expert, the real tokens its top-k routing sends there. Exit status: 0 when every "
        "expert is reached, 1 when some expert gets no token, 2 on bad input.",
    )
    p.add_argument("model", help="local MoE model folder")
    p.add_argument(
        "--calib", required=True, help=".parquet / .jsonl with a 'text' column (e.g. from `zipcal select -o`)"
    )
    p.add_argument(
        "--seq-len",
        type=int,
        default=None,
        help="tokens per row (default: the selection file's, else 2048)",
    )
    p.add_argument(
        "--min-tokens",
        type=int,
        default=None,
        help="flag experts reached by fewer tokens (default: the model's hidden size)",
    )
    p.add_argument("--nsamples", type=int, default=None, help="use the first N calibration rows")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1...")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_guard("experts", _experts_command))


def main(argv: Any = None) -> int:
    """Stand-alone entry point (``python -m zipcal.moe MODEL --calib FILE``)."""
    parser = argparse.ArgumentParser(prog="zipcal")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["experts", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = [
    "ExpertCoverage",
    "ExpertCover",
    "expert_coverage",
    "cover_experts",
    "find_routers",
    "default_min_tokens",
    "register",
]
