"""Routed experts stored as 3-D tensors, seen as one pair of linear layers per expert.

transformers 5 stores the routed experts of its MoE models (Mixtral, Qwen2/3-MoE,
DeepSeek, OLMoE, GPT-OSS, ...) fused: one ``gate_up_proj`` (or ``up_proj``) and one
``down_proj`` parameter of shape ``[experts, out, in]`` (``[experts, in, out]`` when
transposed), in a module decorated with ``use_experts_implementation``. They are
not ``nn.Linear`` modules, so a pipeline that compresses linear layers would leave
most of an MoE model's weights untouched.

:func:`unfused_experts` swaps, for the time one decoder layer is compressed, each
such module for :class:`ExpertLinears`: per expert an ``nn.Linear`` for the up (or
gate+up) projection and one for the down projection, whose weights are views of the
fused tensors (writing a compressed weight writes the fused parameter; nothing is
copied) and whose forward runs only the tokens the router sends to that expert. The
statistics of an expert are therefore those of its own routed tokens, padding
excluded (:func:`token_rows` tells the statistics hooks which flattened token each
row is). The model is saved in its own format afterwards.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn

FLAGS = ("has_gate", "has_bias", "is_transposed")
# attribute of an expert's linear layer while it runs: see token_rows
_ROWS = "_zipcal_token_rows"


def is_fused_experts(module: nn.Module) -> bool:
    """A transformers experts module with 3-D expert weights and the
    ``use_experts_implementation`` attributes that describe their layout."""
    down = getattr(module, "down_proj", None)
    if not (isinstance(down, torch.Tensor) and down.dim() == 3):
        return False
    if not all(hasattr(module, f) for f in FLAGS):
        return False
    up = getattr(module, "gate_up_proj" if module.has_gate else "up_proj", None)
    return isinstance(up, torch.Tensor) and up.dim() == 3 and up.shape[0] == down.shape[0]


def _linear_view(weight: torch.Tensor, bias: Optional[torch.Tensor], transposed: bool) -> nn.Linear:
    """An ``nn.Linear`` whose weight (``[out, in]``) and bias are views of the given tensors."""
    w = weight.detach()
    if transposed:
        w = w.t()
    lin = nn.Linear.__new__(nn.Linear)
    nn.Module.__init__(lin)
    lin.out_features, lin.in_features = int(w.shape[0]), int(w.shape[1])
    lin.weight = nn.Parameter(w, requires_grad=False)
    lin.register_parameter("bias", None if bias is None else nn.Parameter(bias.detach(), requires_grad=False))
    return lin


class Expert(nn.Module):
    """One routed expert: ``gate_up_proj`` (or ``up_proj``) and ``down_proj``."""

    def __init__(self, fused: Any, index: int) -> None:
        super().__init__()
        up_name = "gate_up_proj" if fused.has_gate else "up_proj"
        self.up_name = up_name

        def bias(name: str) -> Optional[torch.Tensor]:
            return getattr(fused, f"{name}_bias")[index] if fused.has_bias else None

        t = bool(fused.is_transposed)
        setattr(self, up_name, _linear_view(getattr(fused, up_name)[index], bias(up_name), t))
        self.down_proj = _linear_view(fused.down_proj[index], bias("down_proj"), t)

    def up(self) -> nn.Linear:
        mod = getattr(self, self.up_name)
        assert isinstance(mod, nn.Linear)
        return mod


class ExpertLinears(nn.ModuleList):
    """Stands in for a fused experts module: child ``i`` is expert ``i``'s linear
    layers; the forward is the fused module's, one expert at a time.

    With ``all_tokens``, every expert also runs every token, so that its statistics
    cover all of them (llm-compressor's ``moe_calibrate_all_experts``); the output
    still sums only the routed experts' contributions."""

    def __init__(self, fused: Any, all_tokens: bool = False) -> None:
        super().__init__([Expert(fused, e) for e in range(int(fused.down_proj.shape[0]))])
        # not a child: its parameters are the ones the experts' views point into
        object.__setattr__(self, "fused", fused)
        self.all_tokens = bool(all_tokens)

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        top_k_index, top_k_weights = _routing(args, kwargs)
        fused: Any = self.fused
        n = hidden_states.shape[0]
        out = torch.zeros_like(hidden_states)
        expert: Any
        everyone = torch.arange(n, device=hidden_states.device) if self.all_tokens else None
        for e, expert in enumerate(self):
            tok, pos = torch.where(top_k_index == e)
            if tok.numel() == 0 and everyone is None:
                continue
            up, down = expert.up(), expert.down_proj
            rows = (tok if everyone is None else everyone, n)
            # for the statistics hooks, during this call only
            object.__setattr__(up, _ROWS, rows)
            object.__setattr__(down, _ROWS, rows)
            try:
                h = up(hidden_states[tok] if everyone is None else hidden_states)
                h = fused._apply_gate(h) if fused.has_gate else fused.act_fn(h)
                h = down(h)
            finally:
                object.__setattr__(up, _ROWS, None)
                object.__setattr__(down, _ROWS, None)
            if everyone is not None:
                h = h[tok]
            if getattr(fused, "has_post_expert_norm", False):
                h = fused.post_expert_norm(h)
            h = h * top_k_weights[tok, pos, None]
            out.index_add_(0, tok, h.to(out.dtype))
        return out


def _routing(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[torch.Tensor, torch.Tensor]:
    """The (top-k expert index, top-k weight) pair, however the MoE block passes it."""
    vals: List[Any] = list(args)
    for names in (("top_k_index", "router_indices"), ("top_k_weights", "routing_weights")):
        for name in names:
            if name in kwargs:
                vals.append(kwargs[name])
                break
    if len(vals) < 2:
        raise TypeError("experts forward: expected the top-k expert indices and their weights")
    return vals[0], vals[1]


def token_rows(module: nn.Module) -> Optional[Tuple[torch.Tensor, int]]:
    """For an expert's linear layer during its forward: (flattened token index of
    each input row, number of tokens of the call); ``None`` for any other module."""
    return getattr(module, _ROWS, None)


@contextlib.contextmanager
def unfused_experts(layer: nn.Module, all_tokens: bool = False) -> Iterator[List[str]]:
    """Within the block, every fused experts module of ``layer`` is replaced by an
    :class:`ExpertLinears` (yields their dotted names); restored on exit."""
    swapped: List[Tuple[nn.Module, str, nn.Module]] = []
    names: List[str] = []
    try:
        for name, mod in list(layer.named_modules()):
            if name and is_fused_experts(mod):
                parent_name, _, child = name.rpartition(".")
                parent = layer.get_submodule(parent_name) if parent_name else layer
                setattr(parent, child, ExpertLinears(mod, all_tokens))
                swapped.append((parent, child, mod))
                names.append(name)
        yield names
    finally:
        for parent, child, mod in reversed(swapped):
            setattr(parent, child, mod)


def uncovered_expert_params(layer: nn.Module) -> Dict[str, int]:
    """Floating-point parameters of ``layer`` with three or more dimensions outside
    any fused experts module this file understands (custom MoE code): by name, their
    element count. The pipeline leaves them as they are and says so."""
    covered = [n for n, m in layer.named_modules() if n and is_fused_experts(m)]
    out: Dict[str, int] = {}
    for name, p in layer.named_parameters():
        if p.dim() >= 3 and p.is_floating_point() and not any(name.startswith(c + ".") for c in covered):
            out[name] = int(p.numel())
    return out
