"""Model glue: find decoder layers and linear modules, capture layer inputs,
collect per-linear input statistics with forward hooks, replay layers.

No compression math lives here; see :mod:`zipcal.compress.kernels`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn

from ..errors import InvalidArgumentError
from .experts import token_rows

log = logging.getLogger(__name__)

# Known locations of the decoder-layer list, most specific first.
_LAYER_PATHS = (
    "model.layers",  # Llama, Mistral, Qwen2, Gemma, SmolLM2
    "model.decoder.layers",  # OPT
    "transformer.h",  # GPT-2, GPT-J, Bloom(-ish)
    "model.language_model.layers",
    "gpt_neox.layers",
    "layers",
    "decoder.layers",
    "h",
)

_CACHE_KWARGS = ("cache", "past_key_value", "past_key_values", "layer_past")


class _StopForward(Exception):
    """Raised by the capture hook to stop the model after the first layer's inputs."""


def _get_attr_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def find_decoder_layers(model: nn.Module) -> Tuple[str, nn.ModuleList]:
    """Return ``(dotted_name, ModuleList)`` of the model's decoder layers."""
    for path in _LAYER_PATHS:
        obj = _get_attr_path(model, path)
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return path, obj
    best: Optional[Tuple[str, nn.ModuleList]] = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) > 0:
            if best is None or len(mod) > len(best[1]):
                best = (name, mod)
    if best is None:
        raise InvalidArgumentError(f"cannot find the decoder layers of {type(model).__name__}")
    return best


def _conv1d_type() -> Optional[type]:
    try:
        from transformers.pytorch_utils import Conv1D  # noqa: WPS433

        return Conv1D
    except Exception:  # pragma: no cover - transformers missing
        return None


def is_linear(module: nn.Module) -> bool:
    conv = _conv1d_type()
    return isinstance(module, nn.Linear) or (conv is not None and isinstance(module, conv))


def is_transposed(module: nn.Module) -> bool:
    """GPT-2's ``Conv1D`` stores its weight as ``[in, out]``."""
    conv = _conv1d_type()
    return conv is not None and isinstance(module, conv)


def is_router(name: str) -> bool:
    """MoE routers and gates (``mlp.gate``, ``shared_expert_gate``, ``router``): a few
    weights that decide where tokens go, not projections (``gate_proj`` is one)."""
    last = name.rpartition(".")[2]
    return last in ("gate", "router") or last.endswith("_gate")


def find_linears(layer: nn.Module) -> Dict[str, nn.Module]:
    """The ``nn.Linear`` / ``Conv1D`` submodules of a decoder layer that compression
    applies to, by name: all but MoE routers and gates (:func:`is_router`), which
    stay as they are (llm-compressor's recipes leave them out as well)."""
    return {name: m for name, m in layer.named_modules() if name and is_linear(m) and not is_router(name)}


def weight_of(module: nn.Module) -> torch.Tensor:
    """The module's weight tensor (``nn.Linear`` and ``Conv1D`` alike)."""
    w = module.weight
    assert isinstance(w, torch.Tensor)
    return w


def get_weight(module: nn.Module) -> torch.Tensor:
    """Float32 copy of the weight in ``[out, in]`` layout."""
    w = weight_of(module).data
    if is_transposed(module):
        w = w.t()
    return w.float().clone()


def set_weight(module: nn.Module, w: torch.Tensor) -> None:
    """Write a ``[out, in]`` weight back in the module's own layout and dtype."""
    target = weight_of(module).data
    if is_transposed(module):
        w = w.t()
    target.copy_(w.to(dtype=target.dtype, device=target.device))


def in_features(module: nn.Module) -> int:
    shape = weight_of(module).shape
    return int(shape[0] if is_transposed(module) else shape[1])


# --------------------------------------------------------------------------
# device placement
# --------------------------------------------------------------------------
def resolve_device(device: Any = "auto") -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _move_module_tensors(module: nn.Module, device: torch.device) -> None:
    for p in module._parameters.values():
        if p is not None and p.device != device:
            p.data = p.data.to(device)
    for name, b in module._buffers.items():
        if b is not None and b.device != device:
            module._buffers[name] = b.to(device)


def move_outside_layers(model: nn.Module, layers_path: str, device: torch.device) -> Dict[str, torch.device]:
    """Move every parameter/buffer not inside the decoder layers to ``device``.

    Returns the previous device of each moved module so it can be restored.
    """
    prev: Dict[str, torch.device] = {}
    prefix = layers_path + "."
    for name, mod in model.named_modules():
        if name == layers_path or name.startswith(prefix):
            continue
        tensors = [t for t in list(mod._parameters.values()) + list(mod._buffers.values()) if t is not None]
        if not tensors:
            continue
        prev[name] = tensors[0].device
        _move_module_tensors(mod, device)
    return prev


def restore_outside_layers(model: nn.Module, prev: Dict[str, torch.device]) -> None:
    mods = dict(model.named_modules())
    for name, dev in prev.items():
        _move_module_tensors(mods[name], dev)


def module_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


# --------------------------------------------------------------------------
# layer inputs
# --------------------------------------------------------------------------
@dataclass
class LayerBatch:
    """One calibration batch as seen by a decoder layer."""

    hidden: torch.Tensor
    args: Tuple[Any, ...]  # positional arguments after the hidden states
    kwargs: Dict[str, Any]
    token_mask: torch.Tensor  # [batch, seq] bool, True for real (non-padding) tokens
    extra: Dict[str, Any] = field(default_factory=dict)


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, tuple):
        return tuple(_to_device(o, device) for o in obj)
    if isinstance(obj, list):
        return [_to_device(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def capture_layer_inputs(
    model: nn.Module,
    layers_path: str,
    layers: nn.ModuleList,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    device: torch.device,
    batch_size: int = 8,
) -> List[LayerBatch]:
    """Run the model up to its first decoder layer and record that layer's inputs.

    The hidden states and every keyword the model passes to the layer (attention
    mask, position ids, rotary ``position_embeddings``...) are kept per batch
    on ``device``. Only the modules outside the decoder layers are moved to
    ``device`` (temporarily); the layers stay where they are.
    """
    captured: List[LayerBatch] = []
    record: Dict[str, Any] = {}

    def pre_hook(module: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]):
        if args:
            hidden, rest = args[0], tuple(args[1:])
        else:
            kwargs = dict(kwargs)
            hidden, rest = kwargs.pop("hidden_states"), ()
        kw = {k: v for k, v in kwargs.items()}
        for k in _CACHE_KWARGS:
            if k in kw:
                kw[k] = None
        if "use_cache" in kw:
            kw["use_cache"] = False
        rest = tuple(None if _looks_like_cache(a) else a for a in rest)
        record["hidden"] = hidden
        record["args"] = rest
        record["kwargs"] = kw
        raise _StopForward

    prev = move_outside_layers(model, layers_path, device)
    handle = layers[0].register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        with torch.no_grad():
            for start in range(0, input_ids.shape[0], batch_size):
                ids = input_ids[start : start + batch_size].to(device)
                am = attention_mask[start : start + batch_size].to(device)
                record.clear()
                try:
                    model(input_ids=ids, attention_mask=am, use_cache=False)
                except _StopForward:
                    pass
                if "hidden" not in record:
                    raise RuntimeError("the model never called its first decoder layer")
                captured.append(
                    LayerBatch(
                        hidden=record["hidden"].detach().to(device),
                        args=_to_device(record["args"], device),
                        kwargs=_to_device(record["kwargs"], device),
                        token_mask=am.bool(),
                    )
                )
    finally:
        handle.remove()
        restore_outside_layers(model, prev)
    return captured


def _looks_like_cache(obj: Any) -> bool:
    return obj is not None and type(obj).__name__.endswith("Cache")


def run_layer(layer: nn.Module, batch: LayerBatch) -> torch.Tensor:
    """Forward one captured batch through ``layer``; returns the new hidden states."""
    out = layer(batch.hidden, *batch.args, **batch.kwargs)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out


# --------------------------------------------------------------------------
# statistics hooks
# --------------------------------------------------------------------------
class InputStats:
    """Forward hooks on linear modules that feed the (masked) inputs of each call
    to ``accumulate(state, count, x) -> (state, count)``.

    Use as a context manager; set :attr:`token_mask` to the current batch's
    ``[batch, seq]`` mask before each forward so padding is ignored.
    """

    def __init__(self, modules: Dict[str, nn.Module], accumulate: Callable[..., Tuple[Any, int]]):
        self.modules = modules
        self.accumulate = accumulate
        self.state: Dict[str, Any] = {name: None for name in modules}
        self.count: Dict[str, int] = {name: 0 for name in modules}
        self.token_mask: Optional[torch.Tensor] = None
        self._handles: List[Any] = []
        # Modules fed the very same tensor as the module hooked just before them
        # (q/k/v, gate/up) share that module's statistics instead of recomputing them.
        self.alias: Dict[str, str] = {}
        self._calls: Dict[str, int] = {name: 0 for name in modules}
        self._prev: Optional[Tuple[str, Any]] = None

    def _hook(self, name: str):
        def fn(module: nn.Module, inputs: Tuple[Any, ...], output: Any) -> None:
            raw = inputs[0]
            prev, self._prev = self._prev, (name, raw)
            first = self._calls[name] == 0
            self._calls[name] += 1
            if prev is not None and prev[1] is raw and prev[0] != name:
                leader = self.alias.get(prev[0], prev[0])
                if first:
                    self.alias[name] = leader
                if self.alias.get(name) == leader:
                    return
            if name in self.alias:
                raise RuntimeError(f"{name}: shared-input pattern changed between calibration batches")
            x = raw.detach()
            mask = self.token_mask
            rows = token_rows(module)
            if mask is not None and x.dim() == 3 and tuple(x.shape[:2]) == tuple(mask.shape):
                x = x[mask.to(x.device)]
            elif mask is not None and rows is not None and x.dim() == 2 and rows[1] == mask.numel():
                # a routed expert: its rows are some of the batch's flattened tokens
                x = x[mask.reshape(-1).to(x.device)[rows[0]]]
            else:
                x = x.reshape(-1, x.shape[-1])
            self.state[name], self.count[name] = self.accumulate(self.state[name], self.count[name], x)

        return fn

    def __enter__(self) -> "InputStats":
        for name, mod in self.modules.items():
            self._handles.append(mod.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def items(self) -> Iterator[Tuple[str, Any, int]]:
        for name in self.modules:
            src = self.alias.get(name, name)
            yield name, self.state[src], self.count[src]
