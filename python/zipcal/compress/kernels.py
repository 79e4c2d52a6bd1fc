"""Stateless tensor kernels for post-training pruning and quantization.

Every function here takes plain tensors and returns new tensors; nothing
touches a model, a module or a hook. Weights use the ``nn.Linear`` layout
``W[out_features, in_features]`` and inputs are flattened to
``X[tokens, in_features]``. All arithmetic runs in float32 (float64 where the
numerics need it) regardless of the input dtype; callers cast back.

Conventions
-----------
* A pruning *mask* is a boolean tensor shaped like ``W`` that is ``True`` where
  a weight is removed (set to zero).
* ``structure="N:M"`` means at most ``N`` non-zero weights in every group of
  ``M`` consecutive input columns of a row (so ``M - N`` are pruned); ``2:4``
  and ``4:8`` are the hardware-friendly patterns.
* Quantization grids are affine: ``w_hat = scale * (q - zero)`` with integer
  ``q`` in ``[0, 2**bits - 1]`` and integer ``zero``; the symmetric variant
  fixes ``zero = 2**(bits-1)``.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import torch

from ..errors import InvalidArgumentError

__all__ = [
    "accumulate_hessian",
    "finalize_hessian",
    "accumulate_sq_norms",
    "finalize_sq_norms",
    "parse_structure",
    "wanda_scores",
    "mask_from_scores",
    "prune_magnitude",
    "prune_wanda",
    "prune_sparsegpt",
    "quant_params",
    "fake_quantize",
    "quantize_rtn",
    "ACTORDER_MODES",
    "resolve_actorder",
    "quantize_gptq",
    "outlier_ratio",
    "owl_layer_sparsities",
]


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------
def _flatten_inputs(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1]).float()


def accumulate_hessian(h_sum: Optional[torch.Tensor], count: int, x: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """Add ``XᵀX`` of a batch of inputs to a running sum.

    ``x`` is ``[..., in_features]``; every leading position counts as one token.
    Returns the new ``(sum, token_count)``; finish with :func:`finalize_hessian`.
    """
    x = _flatten_inputs(x)
    if h_sum is None:
        h_sum = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float32, device=x.device)
    return torch.addmm(h_sum, x.t(), x), count + x.shape[0]


def finalize_hessian(h_sum: torch.Tensor, count: int) -> torch.Tensor:
    """``H = 2/N · XᵀX`` (the Hessian of the layer-wise squared error)."""
    if count <= 0:
        raise InvalidArgumentError("no calibration tokens reached this layer")
    return h_sum * (2.0 / count)


def accumulate_sq_norms(sq_sum: Optional[torch.Tensor], count: int, x: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """Add the per-input-feature sum of squares ``sum_t x_tj²`` of a batch."""
    x = _flatten_inputs(x)
    if sq_sum is None:
        sq_sum = torch.zeros(x.shape[1], dtype=torch.float32, device=x.device)
    return sq_sum + x.pow(2).sum(0), count + x.shape[0]


def finalize_sq_norms(sq_sum: torch.Tensor, count: int) -> torch.Tensor:
    """Mean squared activation per input feature, ``mean_t x_tj²``."""
    if count <= 0:
        raise InvalidArgumentError("no calibration tokens reached this layer")
    return sq_sum / count


# --------------------------------------------------------------------------
# pruning
# --------------------------------------------------------------------------
def parse_structure(structure: Optional[str]) -> Optional[Tuple[int, int]]:
    """``"2:4"`` -> ``(2, 4)``; ``None``/``"unstructured"`` -> ``None``."""
    if structure is None or structure in ("", "unstructured"):
        return None
    if isinstance(structure, (tuple, list)) and len(structure) == 2:
        n, m = int(structure[0]), int(structure[1])
    else:
        try:
            a, b = str(structure).split(":")
            n, m = int(a), int(b)
        except ValueError:
            raise InvalidArgumentError(f"structure must look like 'N:M' (e.g. '2:4'), got {structure!r}") from None
    if not (0 < n < m):
        raise InvalidArgumentError(f"structure N:M needs 0 < N < M, got {n}:{m}")
    return n, m


def _check_nm(cols: int, nm: Tuple[int, int]) -> None:
    if cols % nm[1] != 0:
        raise InvalidArgumentError(f"N:M sparsity {nm[0]}:{nm[1]} needs in_features divisible by {nm[1]}, got {cols}")


def wanda_scores(weight: torch.Tensor, act_sq_mean: torch.Tensor) -> torch.Tensor:
    """Wanda importance ``|W_ij| · sqrt(mean_t x_tj²)``."""
    return weight.float().abs() * act_sq_mean.float().clamp_min(0).sqrt().reshape(1, -1)


def mask_from_scores(
    scores: torch.Tensor,
    sparsity: float = 0.5,
    structure: Optional[str] = None,
    per_row: bool = True,
) -> torch.Tensor:
    """Boolean prune mask (``True`` = remove) keeping the highest scores.

    Unstructured: removes ``floor(sparsity · in_features)`` lowest scores in every
    row (``per_row=True``) or ``floor(sparsity · numel)`` over the whole matrix.
    N:M: removes the ``M - N`` lowest scores of each group of ``M`` columns
    (``sparsity`` is then ignored).
    """
    rows, cols = scores.shape
    mask = torch.zeros(rows, cols, dtype=torch.bool, device=scores.device)
    nm = parse_structure(structure)
    if nm is not None:
        n, m = nm
        _check_nm(cols, nm)
        grouped = scores.reshape(rows, cols // m, m)
        idx = torch.topk(grouped, m - n, dim=2, largest=False).indices
        return mask.reshape(rows, cols // m, m).scatter_(2, idx, True).reshape(rows, cols)
    if not 0.0 <= sparsity <= 1.0:
        raise InvalidArgumentError(f"sparsity must be in [0, 1], got {sparsity}")
    if per_row:
        k = int(cols * sparsity)
        if k > 0:
            idx = torch.topk(scores, k, dim=1, largest=False).indices
            mask.scatter_(1, idx, True)
    else:
        k = int(scores.numel() * sparsity)
        if k > 0:
            idx = torch.topk(scores.reshape(-1), k, largest=False).indices
            mask.view(-1)[idx] = True
    return mask


def prune_magnitude(
    weight: torch.Tensor, sparsity: float = 0.5, structure: Optional[str] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Magnitude pruning: the smallest ``|W|`` over the whole matrix (N:M per group).

    Returns ``(pruned_weight_float32, mask)``.
    """
    w = weight.float().clone()
    mask = mask_from_scores(w.abs(), sparsity, structure, per_row=False)
    w[mask] = 0
    return w, mask


def prune_wanda(
    weight: torch.Tensor,
    act_sq_mean: torch.Tensor,
    sparsity: float = 0.5,
    structure: Optional[str] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Wanda: prune by ``|W|·||X_j||`` compared within each output row.

    ``act_sq_mean`` is :func:`finalize_sq_norms` of the layer inputs.
    Returns ``(pruned_weight_float32, mask)``.
    """
    w = weight.float().clone()
    mask = mask_from_scores(wanda_scores(w, act_sq_mean), sparsity, structure, per_row=True)
    w[mask] = 0
    return w, mask


def _prepare_hessian(w: torch.Tensor, h: torch.Tensor, percdamp: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Zero dead inputs, dampen, and return ``(W, upper Cholesky factor of H⁻¹)``."""
    h = h.float().clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    damp = percdamp * torch.mean(torch.diag(h))
    idx = torch.arange(h.shape[0], device=h.device)
    h[idx, idx] += damp
    # Factorise in float64: cheap at these sizes and avoids spurious failures.
    hd = h.double()
    try:
        chol = torch.linalg.cholesky(hd)
    except RuntimeError:  # pragma: no cover - extreme ill-conditioning
        h[idx, idx] += damp * 10
        chol = torch.linalg.cholesky(h.double())
    hinv = torch.cholesky_inverse(chol)
    hinv = torch.linalg.cholesky(hinv, upper=True)
    return w, hinv.float()


def prune_sparsegpt(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    sparsity: float = 0.5,
    structure: Optional[str] = None,
    blocksize: int = 128,
    percdamp: float = 0.01,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT: OBS-style pruning with error feedback (Frantar & Alistarh 2023).

    ``hessian`` is ``2/N·XᵀX`` (:func:`finalize_hessian`). Columns are processed
    left to right in blocks of ``blocksize``; in each block the mask is chosen
    adaptively by ``w²/[H⁻¹]_jj²`` (unstructured: exactly
    ``floor(sparsity·rows·block)`` per block; N:M: per group of M columns), the
    pruning error of each column is propagated to the remaining columns of the
    block, and the block's accumulated error is applied lazily to the rest of
    the matrix. Returns ``(pruned_weight_float32, mask)``.
    """
    nm = parse_structure(structure)
    w = weight.float().clone()
    rows, cols = w.shape
    if nm is not None:
        _check_nm(cols, nm)
        if blocksize % nm[1] != 0:
            raise InvalidArgumentError(f"blocksize {blocksize} must be a multiple of M={nm[1]}")
    if not 0.0 <= sparsity <= 1.0:
        raise InvalidArgumentError(f"sparsity must be in [0, 1], got {sparsity}")
    w, hinv = _prepare_hessian(w, hessian, percdamp)
    mask = torch.zeros(rows, cols, dtype=torch.bool, device=w.device)

    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        w1 = w[:, i1:i2].clone(memory_format=torch.contiguous_format)
        q1 = torch.zeros_like(w1)
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        dinv = torch.diag(hinv1)
        mask1 = torch.zeros(rows, count, dtype=torch.bool, device=w.device)
        if nm is None:
            score = w1.pow(2) / dinv.reshape(1, -1).pow(2)
            k = int(score.numel() * sparsity)
            if k > 0:
                idx = torch.topk(score.reshape(-1), k, largest=False).indices
                mask1.view(-1)[idx] = True
        for i in range(count):
            col = w1[:, i]
            d = hinv1[i, i]
            if nm is not None and i % nm[1] == 0:
                n, m = nm
                score = w1[:, i : i + m].pow(2) / dinv[i : i + m].reshape(1, -1).pow(2)
                idx = torch.topk(score, m - n, dim=1, largest=False).indices
                mask1.scatter_(1, i + idx, True)
            q = col.clone()
            q[mask1[:, i]] = 0
            q1[:, i] = q
            err = (col - q) / d
            w1[:, i:] -= err.unsqueeze(1) * hinv1[i, i:].unsqueeze(0)
            err1[:, i] = err
        w[:, i1:i2] = q1
        mask[:, i1:i2] = mask1
        if i2 < cols:
            w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    w[mask] = 0
    return w, mask


# --------------------------------------------------------------------------
# quantization
# --------------------------------------------------------------------------
def _check_bits(bits: int) -> int:
    bits = int(bits)
    if not 2 <= bits <= 8:
        raise InvalidArgumentError(f"bits must be between 2 and 8, got {bits}")
    return bits


def _norm_group(group_size: Optional[int], cols: int) -> int:
    if group_size is None or group_size <= 0 or group_size >= cols:
        return cols
    return int(group_size)


def quant_params(x: torch.Tensor, bits: int, symmetric: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-row ``(scale, zero)`` of an affine grid covering ``x[rows, g]`` and 0."""
    maxq = 2**bits - 1
    x = x.float()
    xmin = torch.clamp(x.min(dim=1).values, max=0)
    xmax = torch.clamp(x.max(dim=1).values, min=0)
    if symmetric:
        xmax = torch.maximum(xmin.abs(), xmax)
        xmin = -xmax
    both0 = (xmin == 0) & (xmax == 0)
    xmin = torch.where(both0, torch.full_like(xmin, -1.0), xmin)
    xmax = torch.where(both0, torch.full_like(xmax, 1.0), xmax)
    scale = (xmax - xmin) / maxq
    if symmetric:
        zero = torch.full_like(scale, float((maxq + 1) // 2))
    else:
        zero = torch.round(-xmin / scale)
    return scale, zero


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """Round ``x`` onto the grid ``scale·(q - zero)``; scale/zero broadcast per row."""
    maxq = 2**bits - 1
    if scale.dim() == 1 and x.dim() == 2:
        scale = scale.unsqueeze(1)
        zero = zero.unsqueeze(1)
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def quantize_rtn(
    weight: torch.Tensor,
    bits: int = 4,
    group_size: Optional[int] = 128,
    symmetric: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Round-to-nearest quantization per group of ``group_size`` input columns.

    Returns ``(w_hat_float32, scales[rows, groups], zeros[rows, groups], g_idx[cols])``
    where ``g_idx[j]`` is the group of input column ``j``.
    """
    bits = _check_bits(bits)
    w = weight.float()
    rows, cols = w.shape
    gs = _norm_group(group_size, cols)
    out = torch.empty_like(w)
    scales, zeros = [], []
    for g0 in range(0, cols, gs):
        blk = w[:, g0 : g0 + gs]
        s, z = quant_params(blk, bits, symmetric)
        out[:, g0 : g0 + gs] = fake_quantize(blk, s, z, bits)
        scales.append(s)
        zeros.append(z)
    g_idx = torch.arange(cols, device=w.device) // gs
    return out, torch.stack(scales, 1), torch.stack(zeros, 1), g_idx


#: Canonical GPTQ column orders (see :func:`resolve_actorder` and ``docs/gptq.md``).
ACTORDER_MODES = ("none", "group", "static")

_ACTORDER_ALIASES = {
    "none": "none",
    "": "none",
    "false": "none",
    "group": "group",
    "dynamic": "group",
    "true": "group",
    "static": "static",
    "weight": "static",
}


def resolve_actorder(act_order: Union[bool, str, None], static_groups: Optional[bool] = None) -> Tuple[str, bool]:
    """Normalise GPTQ ordering options to ``(mode, static_groups)``.

    ``act_order`` accepts ``False``/``None``/``"none"`` (original column
    order), ``True``/``"group"``/``"dynamic"`` (decreasing ``H_jj``, groups
    formed in that order, parameters computed when a group is reached) and
    ``"static"``/``"weight"`` (decreasing ``H_jj``, parameters computed up
    front from the original weights in original contiguous groups; the
    llm-compressor default). ``static_groups`` defaults to ``True`` for
    ``"static"`` and ``False`` otherwise; ``act_order="none"`` with
    ``static_groups=True`` is llm-compressor's ``actorder=None``. Contradictory
    pairs (``"static"`` with ``False``, ``"group"`` with ``True``) raise
    :class:`InvalidArgumentError`.
    """
    if act_order is None or isinstance(act_order, bool):
        mode = "group" if act_order else "none"
    elif isinstance(act_order, str):
        key = act_order.strip().lower()
        if key not in _ACTORDER_ALIASES:
            raise InvalidArgumentError(
                f"unknown act_order {act_order!r} (choose from {', '.join(ACTORDER_MODES)}, or a bool)"
            )
        mode = _ACTORDER_ALIASES[key]
    else:
        raise InvalidArgumentError(f"act_order must be a bool, None or a string, got {type(act_order).__name__}")
    if static_groups is None:
        return mode, mode == "static"
    static = bool(static_groups)
    if mode == "static" and not static:
        raise InvalidArgumentError(
            "act_order='static' computes group parameters up front; static_groups=False contradicts it"
        )
    if mode == "group" and static:
        raise InvalidArgumentError(
            "act_order='group' computes group parameters lazily in permuted order; "
            "use act_order='static' for static groups with activation ordering"
        )
    return mode, static


def quantize_gptq(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    bits: int = 4,
    group_size: Optional[int] = 128,
    act_order: Union[bool, str, None] = False,
    symmetric: bool = False,
    blocksize: int = 128,
    percdamp: float = 0.01,
    static_groups: Optional[bool] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """GPTQ (Frantar et al. 2022): column-by-column quantization with OBS error feedback.

    ``hessian`` is ``2/N·XᵀX``. ``act_order`` (see :func:`resolve_actorder`):

    * ``False``/``"none"``: columns left to right; with ``static_groups=False``
      (default) each group's scale/zero is computed when its first column is
      reached, from the weights as updated so far (original GPTQ); with
      ``static_groups=True`` they are computed up front from the original
      weights (llm-compressor ``actorder=None``).
    * ``True``/``"group"``: columns in order of decreasing ``H_jj``; groups are
      consecutive runs of that order, parameters computed lazily as above
      (``g_idx`` maps each original column to its group).
    * ``"static"``/``"weight"``: columns in order of decreasing ``H_jj``, each
      quantized with the scale/zero of its original contiguous group, computed
      up front from the original weights (llm-compressor's default;
      ``g_idx = column // group_size``).

    Returns ``(w_hat_float32, scales[rows, groups], zeros[rows, groups], g_idx[cols], loss)``
    with ``loss`` the GPTQ proxy ``sum (w - q)² / [H⁻¹]_jj² / 2``.
    """
    bits = _check_bits(bits)
    mode, static = resolve_actorder(act_order, static_groups)
    w = weight.float().clone()
    rows, cols = w.shape
    gs = _norm_group(group_size, cols)
    h = hessian.float()
    g_orig = torch.arange(cols, device=w.device) // gs
    scales: List[torch.Tensor] = []
    zeros: List[torch.Tensor] = []
    if static:
        # From the original weights (dead inputs included), original column groups.
        for g0 in range(0, cols, gs):
            s, z = quant_params(w[:, g0 : g0 + gs], bits, symmetric)
            scales.append(s)
            zeros.append(z)
    perm = None
    if mode != "none":
        # dead columns are handled inside _prepare_hessian; sort on the raw diagonal
        perm = torch.argsort(torch.diag(h), descending=True)
        w = w[:, perm]
        h = h[perm][:, perm]
    w, hinv = _prepare_hessian(w, h, percdamp)
    # static: group (in original numbering) of the column visited at each position
    col_group = (g_orig if perm is None else g_orig[perm]).tolist()
    static_scales = torch.stack(scales, 1) if static else None
    static_zeros = torch.stack(zeros, 1) if static else None

    q_all = torch.zeros_like(w)
    loss = torch.zeros((), dtype=torch.float64, device=w.device)
    scale = zero = None
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        w1 = w[:, i1:i2].clone(memory_format=torch.contiguous_format)
        q1 = torch.zeros_like(w1)
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        for i in range(count):
            c = i1 + i
            if static_scales is not None and static_zeros is not None:
                g = col_group[c]
                scale, zero = static_scales[:, g], static_zeros[:, g]
            elif c % gs == 0:
                end = c + gs
                grp = w1[:, i : i + gs]
                if end > i2:
                    grp = torch.cat([grp, w[:, i2:end]], dim=1)
                scale, zero = quant_params(grp, bits, symmetric)
                scales.append(scale)
                zeros.append(zero)
            col = w1[:, i]
            d = hinv1[i, i]
            assert scale is not None and zero is not None  # column 0 starts a group
            q = fake_quantize(col.unsqueeze(1), scale, zero, bits).squeeze(1)
            q1[:, i] = q
            err = (col - q) / d
            w1[:, i:] -= err.unsqueeze(1) * hinv1[i, i:].unsqueeze(0)
            err1[:, i] = err
        q_all[:, i1:i2] = q1
        loss += err1.double().pow(2).sum() / 2
        if i2 < cols:
            w[:, i2:] -= err1 @ hinv[i1:i2, i2:]

    if perm is not None:
        q_all = q_all[:, torch.argsort(perm)]
    if static or perm is None:
        g_idx = g_orig
    else:
        # "group": groups are consecutive runs of the permuted order
        g_idx = torch.empty_like(g_orig)
        g_idx[perm] = g_orig
    return q_all, torch.stack(scales, 1), torch.stack(zeros, 1), g_idx, float(loss)


# --------------------------------------------------------------------------
# OWL (outlier-weighted layer-wise sparsity)
# --------------------------------------------------------------------------
def outlier_ratio(scores: Sequence[torch.Tensor], m: float = 5.0) -> float:
    """Share of scores above ``m`` times the mean score, pooled over the tensors.

    Applied by OWL to the Wanda scores of all linear layers of one decoder layer.
    """
    flat = torch.cat([s.float().reshape(-1) for s in scores])
    return float((flat > flat.mean() * m).float().mean())


def owl_layer_sparsities(ratios: Sequence[float], target: float, lam: float = 0.08) -> List[float]:
    """OWL per-layer sparsity from per-layer outlier ratios.

    Ratios are min-max scaled to ``[0, 2λ]``, shifted so their mean is the
    target density ``1 - target``, and a layer's sparsity is one minus its
    density: layers with more outliers are pruned less; the mean stays at
    ``target``. Values are clipped to ``[0, 1]``.
    """
    r = torch.tensor([float(x) for x in ratios], dtype=torch.float64)
    if r.numel() == 0:
        return []
    span = float(r.max() - r.min())
    if span <= 0 or not math.isfinite(span):
        scaled = torch.zeros_like(r)
    else:
        scaled = (r - r.min()) / span * (2 * lam)
    density = scaled - scaled.mean() + (1.0 - target)
    return [float(min(1.0, max(0.0, 1.0 - d))) for d in density]
