"""Sequential, layer-by-layer pruning and quantization of Hugging Face causal LMs.

The first decoder layer's inputs are captured once; then, for each decoder
layer in turn, the layer is moved to the compute device, hooks collect the
input statistics of its linear modules over the calibration batches, the
weights are compressed with the kernels of :mod:`zipcal.compress.kernels`,
and the compressed layer is re-run to produce the next layer's inputs.
Only one decoder layer is on the compute device at a time.

Routed experts stored as 3-D tensors (transformers 5 MoE models) are compressed
as one pair of linear layers per expert, each with the statistics of the tokens
routed to it (:mod:`zipcal.compress.experts`). A linear layer that no real
calibration token reaches (an expert the router never picks) has no statistics:
it is compressed without them (magnitude pruning, round-to-nearest) and listed
in the report under ``"uncalibrated"``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from torch import nn

from ..errors import InvalidArgumentError
from . import kernels as K
from .calib import CalibrationError, check_vocab, load_calibration
from .experts import uncovered_expert_params, unfused_experts
from .hooks import (
    InputStats,
    LayerBatch,
    capture_layer_inputs,
    find_decoder_layers,
    find_linears,
    get_weight,
    module_device,
    resolve_device,
    run_layer,
    set_weight,
)

log = logging.getLogger(__name__)

PRUNE_METHODS = ("magnitude", "wanda", "sparsegpt")
QUANT_METHODS = ("rtn", "gptq")


def _progress(iterable, desc: str, enabled: bool, total: Optional[int] = None):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False)


def _prepare_calibration(model, calib, tokenizer, seq_len, n) -> Dict[str, torch.Tensor]:
    if calib is None:
        raise CalibrationError("this method needs calibration data (calib=...)")
    data = load_calibration(calib, tokenizer=tokenizer, seq_len=seq_len, n=n)
    check_vocab(data["input_ids"], model)
    return data


def _sequential(
    model: nn.Module,
    data: Dict[str, torch.Tensor],
    device: torch.device,
    batch_size: int,
    stats: Optional[str],
    on_layer: Callable[[int, str, nn.Module, Dict[str, nn.Module], Dict[str, torch.Tensor]], None],
    progress: bool,
    desc: str,
    propagate: bool = True,
    experts: str = "routed",
) -> None:
    """Drive ``on_layer(index, prefix, layer, linears, stats)`` over the decoder layers.

    ``experts``: ``"routed"`` (each routed expert's statistics are those of the tokens
    routed to it) or ``"all"`` (every expert's statistics cover every token)."""
    layers_path, layers = find_decoder_layers(model)
    batches: List[LayerBatch] = capture_layer_inputs(
        model, layers_path, layers, data["input_ids"], data["attention_mask"], device, batch_size
    )
    acc: Callable[..., Any]
    fin: Callable[..., Any]
    if stats == "hessian":
        acc, fin = K.accumulate_hessian, K.finalize_hessian
    elif stats == "norms":
        acc, fin = K.accumulate_sq_norms, K.finalize_sq_norms
    else:
        raise InvalidArgumentError(f"unknown statistics kind {stats!r}")

    for idx in _progress(range(len(layers)), desc, progress):
        layer = layers[idx]
        home = module_device(layer)
        layer.to(device)
        with unfused_experts(layer, all_tokens=experts == "all"):
            linears = find_linears(layer)
            with InputStats(linears, acc) as st:
                for b in batches:
                    st.token_mask = b.token_mask
                    run_layer(layer, b)
            layer_stats = {
                name: fin(state, count) for name, state, count in st.items() if state is not None and count > 0
            }
            del st
            on_layer(idx, f"{layers_path}.{idx}", layer, linears, layer_stats)
            if propagate and idx + 1 < len(layers):
                for b in batches:
                    b.hidden = run_layer(layer, b)
        layer.to(home)
        del layer_stats
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _each_layer(model: nn.Module, device: torch.device, on_layer, progress: bool, desc: str) -> None:
    """Calibration-free variant: visit layers one at a time without running the model."""
    layers_path, layers = find_decoder_layers(model)
    for idx in _progress(range(len(layers)), desc, progress):
        layer = layers[idx]
        home = module_device(layer)
        layer.to(device)
        with unfused_experts(layer):
            on_layer(idx, f"{layers_path}.{idx}", layer, find_linears(layer), {})
        layer.to(home)


def _uncovered(model: nn.Module) -> Dict[str, int]:
    """3-D weights of the decoder layers that no kernel can reach (custom MoE code),
    by dotted name; warned about, and listed in the report."""
    layers_path, layers = find_decoder_layers(model)
    out = {
        f"{layers_path}.{i}.{name}": n
        for i, layer in enumerate(layers)
        for name, n in uncovered_expert_params(layer).items()
    }
    if out:
        log.warning(
            "%d parameters in %d tensors of 3 or more dimensions (custom expert code?) are left as they are: %s",
            sum(out.values()),
            len(out),
            _some(out, 3),
        )
    return out


def _some(names: Any, k: int = 4) -> str:
    """The first ``k`` of ``names``, comma-separated, with ", ..." when there are more."""
    names = list(names)
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


EXPERT_MODES = ("routed", "all")


def _check_experts(experts: str) -> None:
    if experts not in EXPERT_MODES:
        raise InvalidArgumentError(f"experts must be one of {', '.join(EXPERT_MODES)}, got {experts!r}")


def _warn_uncalibrated(names: List[str], fallback: str) -> None:
    if names:
        log.warning(
            "%d linear layers (e.g. %s) got no real calibration token (experts the router never picked): "
            "compressed with %s instead; `zipcal experts` shows which experts the calibration reaches",
            len(names),
            names[0],
            fallback,
        )


def _zero_fraction(module: nn.Module) -> float:
    w = get_weight(module)
    return float((w == 0).sum()) / w.numel()


# --------------------------------------------------------------------------
# pruning
# --------------------------------------------------------------------------
def owl_sparsities(
    model: nn.Module,
    data: Dict[str, torch.Tensor],
    sparsity: float,
    m: float = 5.0,
    lam: float = 0.08,
    device: Any = "auto",
    batch_size: int = 8,
    progress: bool = True,
    experts: str = "routed",
) -> Dict[str, List[float]]:
    """OWL: dense pass computing each layer's outlier ratio of Wanda scores, then
    the per-layer sparsities (mean equal to ``sparsity``)."""
    dev = resolve_device(device)
    ratios: List[float] = []

    def on_layer(idx, prefix, layer, linears, stats):
        scores = [K.wanda_scores(get_weight(mod), stats[name]) for name, mod in linears.items() if name in stats]
        ratios.append(K.outlier_ratio(scores, m) if scores else 0.0)

    _sequential(model, data, dev, batch_size, "norms", on_layer, progress, "owl: outlier ratios", experts=experts)
    return {"ratios": ratios, "sparsities": K.owl_layer_sparsities(ratios, sparsity, lam)}


@torch.no_grad()
def prune(
    model: nn.Module,
    calib: Any = None,
    method: str = "wanda",
    sparsity: float = 0.5,
    structure: Optional[str] = None,
    *,
    tokenizer: Any = None,
    seq_len: Optional[int] = None,
    n: Optional[int] = None,
    owl: bool = False,
    owl_m: float = 5.0,
    owl_lambda: float = 0.08,
    device: Any = "auto",
    batch_size: int = 8,
    blocksize: int = 128,
    percdamp: float = 0.01,
    progress: bool = True,
    experts: str = "routed",
) -> Dict[str, Any]:
    """Prune the linear layers of every decoder layer of ``model`` in place.

    Parameters
    ----------
    method: ``"magnitude"`` (no calibration), ``"wanda"`` or ``"sparsegpt"``.
    sparsity: fraction of weights removed (unstructured); ignored for N:M.
    structure: ``None`` for unstructured or ``"N:M"`` (``"2:4"``, ``"4:8"``).
    calib: anything :func:`load_calibration` accepts (``tokenizer`` needed for text).
    owl: use OWL non-uniform per-layer sparsity (outlier threshold ``owl_m``,
        spread ``owl_lambda``) on top of Wanda / SparseGPT.
    device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
    experts: MoE models: ``"routed"`` (default) computes each routed expert's
        statistics from the tokens routed to it; ``"all"`` from every token
        (llm-compressor's ``moe_calibrate_all_experts``), at the cost of running
        every expert on every token. See ``docs/moe.md``.

    Returns a report: per-module and per-layer achieved sparsity and overall totals.
    """
    method = method.lower()
    if method not in PRUNE_METHODS:
        raise InvalidArgumentError(f"unknown pruning method {method!r} (choose from {', '.join(PRUNE_METHODS)})")
    nm = K.parse_structure(structure)
    if nm is None and not 0.0 <= sparsity < 1.0:
        raise InvalidArgumentError(f"sparsity must be in [0, 1), got {sparsity}")
    if owl and nm is not None:
        raise InvalidArgumentError("OWL layer-wise sparsity applies to unstructured pruning only (drop --structure)")
    if owl and method == "magnitude":
        raise InvalidArgumentError("OWL needs activation statistics: use it with wanda or sparsegpt")
    _check_experts(experts)
    dev = resolve_device(device)
    model.eval()
    _, layers = find_decoder_layers(model)
    targets = [float(sparsity)] * len(layers)
    owl_info = None

    data = None
    if method != "magnitude":
        data = _prepare_calibration(model, calib, tokenizer, seq_len, n)
    if owl:
        assert data is not None  # OWL needs statistics: magnitude was refused above
        owl_info = owl_sparsities(model, data, sparsity, owl_m, owl_lambda, dev, batch_size, progress, experts)
        targets = owl_info["sparsities"]

    report_layers: List[Dict[str, Any]] = []
    uncalibrated: List[str] = []
    uncovered = _uncovered(model)

    def on_layer(idx, prefix, layer, linears, stats):
        target = targets[idx]
        mods: Dict[str, float] = {}
        zeros = total = 0
        for name, mod in linears.items():
            w = get_weight(mod)
            if method == "magnitude" or name not in stats:
                if method != "magnitude":
                    uncalibrated.append(f"{prefix}.{name}")
                new, _ = K.prune_magnitude(w, target, structure)
            elif method == "wanda":
                new, _ = K.prune_wanda(w, stats[name], target, structure)
            else:
                new, _ = K.prune_sparsegpt(w, stats[name], target, structure, blocksize, percdamp)
            set_weight(mod, new)
            frac = _zero_fraction(mod)
            mods[f"{prefix}.{name}"] = frac
            zeros += int(round(frac * mod.weight.numel()))
            total += mod.weight.numel()
        report_layers.append(
            {
                "index": idx,
                "target": target,
                "sparsity": zeros / max(total, 1),
                "zeros": zeros,
                "params": total,
                "modules": mods,
            }
        )
        log.info("layer %d: sparsity %.4f (target %.4f)", idx, zeros / max(total, 1), target)

    desc = f"{method}" + (f" {structure}" if nm else f" {sparsity:.0%}")
    if method == "magnitude":
        _each_layer(model, dev, on_layer, progress, desc)
    else:
        stats = "norms" if method == "wanda" else "hessian"
        assert data is not None
        _sequential(model, data, dev, batch_size, stats, on_layer, progress, desc, experts=experts)

    zeros = sum(r["zeros"] for r in report_layers)
    total = sum(r["params"] for r in report_layers)
    report: Dict[str, Any] = {
        "method": method,
        "structure": f"{nm[0]}:{nm[1]}" if nm else None,
        "target_sparsity": None if nm else float(sparsity),
        "owl": bool(owl),
        "overall_sparsity": zeros / max(total, 1),
        "pruned_params": zeros,
        "total_params": total,
        "layers": report_layers,
        "uncalibrated": uncalibrated,
        "uncompressed": uncovered,
        "experts": experts,
    }
    _warn_uncalibrated(uncalibrated, "magnitude pruning")
    if data is not None:
        report["calibration"] = {
            "sequences": int(data["input_ids"].shape[0]),
            "seq_len": int(data["input_ids"].shape[1]),
            "tokens": int(data["attention_mask"].sum()),
        }
    if owl_info is not None:
        report["owl_params"] = {"m": owl_m, "lambda": owl_lambda, "outlier_ratios": owl_info["ratios"]}
    return report


def format_sparsity_report(report: Dict[str, Any]) -> str:
    """Human-readable table of a :func:`prune` report."""
    lines = [f"{'layer':>5}  {'target':>7}  {'sparsity':>8}  params"]
    for r in report["layers"]:
        lines.append(f"{r['index']:>5}  {r['target']:>7.4f}  {r['sparsity']:>8.4f}  {r['params']}")
    lines.append(
        f"total  sparsity {report['overall_sparsity']:.4f}  "
        f"({report['pruned_params']}/{report['total_params']} weights zero)"
    )
    return "\n".join(lines + format_gaps(report))


def format_gaps(report: Dict[str, Any]) -> List[str]:
    """Lines naming the layers compressed without statistics and the weights left as
    they are (empty when there are none)."""
    out = []
    unc = report.get("uncalibrated") or []
    if unc:
        out.append(
            f"{len(unc)} linear layers got no real calibration token, compressed without statistics: {_some(unc)}"
        )
    left = report.get("uncompressed") or {}
    if left:
        out.append(f"{sum(left.values())} weights in {len(left)} tensors left uncompressed: {_some(left)}")
    return out


# --------------------------------------------------------------------------
# quantization
# --------------------------------------------------------------------------
@torch.no_grad()
def quantize(
    model: nn.Module,
    calib: Any = None,
    method: str = "gptq",
    bits: int = 4,
    group_size: Optional[int] = 128,
    act_order: Union[bool, str, None] = False,
    symmetric: bool = False,
    *,
    static_groups: Optional[bool] = None,
    tokenizer: Any = None,
    seq_len: Optional[int] = None,
    n: Optional[int] = None,
    device: Any = "auto",
    batch_size: int = 8,
    blocksize: int = 128,
    percdamp: float = 0.01,
    progress: bool = True,
    experts: str = "routed",
) -> Dict[str, Any]:
    """Fake-quantize the linear layers of every decoder layer in place (weights
    stay floating point but lie on the quantization grid).

    ``method`` is ``"rtn"`` (no calibration) or ``"gptq"``; ``bits`` 2..8;
    ``group_size`` columns per scale/zero (``None``/``-1``: one per row);
    ``act_order`` (GPTQ only) is ``False``/``"none"`` (original column order),
    ``True``/``"group"`` (decreasing Hessian diagonal, groups formed in that
    order) or ``"static"`` (decreasing Hessian diagonal, group scales computed
    up front from the original weights: llm-compressor's default);
    ``static_groups=True`` with ``act_order="none"`` computes scales up front
    without reordering (llm-compressor ``actorder=None``). See ``docs/gptq.md``.
    ``experts`` (MoE models): ``"routed"`` or ``"all"``, as for :func:`prune`.

    Returns the metadata written to ``zipcal_quantization.json`` by
    :func:`zipcal.compress.save_compressed`.
    """
    method = method.lower()
    if method not in QUANT_METHODS:
        raise InvalidArgumentError(f"unknown quantization method {method!r} (choose from {', '.join(QUANT_METHODS)})")
    K._check_bits(bits)
    if group_size is not None and group_size <= 0:
        group_size = None
    actorder, static = K.resolve_actorder(act_order, static_groups)
    if method == "rtn" and actorder != "none":
        raise InvalidArgumentError("act_order applies to GPTQ only")
    _check_experts(experts)
    dev = resolve_device(device)
    model.eval()
    per_layer: Dict[str, Dict[str, Any]] = {}
    uncalibrated: List[str] = []
    uncovered = _uncovered(model)

    def on_layer(idx, prefix, layer, linears, stats):
        for name, mod in linears.items():
            w = get_weight(mod)
            info: Dict[str, Any] = {"shape": list(w.shape)}
            if method == "rtn" or name not in stats:
                if method != "rtn":
                    uncalibrated.append(f"{prefix}.{name}")
                    info["uncalibrated"] = True
                q, scales, _, _ = K.quantize_rtn(w, bits, group_size, symmetric)
            else:
                q, scales, _, _, loss = K.quantize_gptq(
                    w, stats[name], bits, group_size, actorder, symmetric, blocksize, percdamp, static
                )
                info["gptq_loss"] = loss
            info["groups"] = int(scales.shape[1])
            info["weight_mse"] = float((q - w).pow(2).mean())
            set_weight(mod, q)
            per_layer[f"{prefix}.{name}"] = info

    desc = f"{method} w{bits}" + (f" g{group_size}" if group_size else "")
    data = None
    if method == "rtn":
        _each_layer(model, dev, on_layer, progress, desc)
    else:
        data = _prepare_calibration(model, calib, tokenizer, seq_len, n)
        _sequential(model, data, dev, batch_size, "hessian", on_layer, progress, desc, experts=experts)

    meta: Dict[str, Any] = {
        "format": "zipcal-fake-quant",
        "version": 1,
        "method": method,
        "bits": int(bits),
        "group_size": int(group_size) if group_size else -1,
        "act_order": actorder != "none",
        "symmetric": bool(symmetric),
        "grid": "w = scale * (q - zero), q integer in [0, 2**bits - 1]",
        "layers": per_layer,
        "uncalibrated": uncalibrated,
        "uncompressed": uncovered,
        "experts": experts,
    }
    _warn_uncalibrated(uncalibrated, "round-to-nearest")
    if method == "gptq":
        meta["blocksize"] = blocksize
        meta["percdamp"] = percdamp
        meta["actorder"] = actorder
        meta["static_groups"] = static
    if data is not None:
        meta["calibration"] = {
            "sequences": int(data["input_ids"].shape[0]),
            "seq_len": int(data["input_ids"].shape[1]),
            "tokens": int(data["attention_mask"].sum()),
        }
    return meta
