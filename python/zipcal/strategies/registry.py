"""The strategy registry: names to functions.

A strategy is a function ``fn(pool, n, *, seed, **options) -> Picked``. A strategy
that declares a ``budget`` parameter receives a :class:`~zipcal.packing.Budget` and
keeps picking until its picks fill ``n`` calibration rows (every built-in one does),
so that all strategies feed the compressor the same number of real tokens. The
built-in strategies (:mod:`.coverage`, :mod:`.mix`) and the model-based ones
(:mod:`.model_based`) register themselves here; callers only ever pass a name:
``zipcal.select(src, strategy="...")``. This module imports nothing of zipcal's but
its errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..errors import InvalidArgumentError


@dataclass
class Picked:
    """What a strategy returns: candidate indices in pick order (-1: a synthetic
    sample with no source document), optional per-pick
    gains, optional replacement texts (for synthetic data), and facts about the run."""

    candidates: np.ndarray
    gains: Optional[np.ndarray] = None
    texts: Optional[List[str]] = None
    info: Dict[str, Any] = field(default_factory=dict)


StrategyFn = Callable[..., Picked]


@dataclass
class StrategySpec:
    name: str
    fn: StrategyFn
    description: str
    needs_model: bool = False


_REGISTRY: Dict[str, StrategySpec] = {}


def register(name: str, fn: StrategyFn, *, description: str = "", needs_model: bool = False) -> None:
    """Make ``fn`` available as ``strategy=name``."""
    _REGISTRY[name] = StrategySpec(name, fn, description, needs_model)


def available() -> Dict[str, str]:
    """Registered strategy names and their one-line descriptions."""
    return {k: v.description for k, v in sorted(_REGISTRY.items())}


def get(name: str) -> StrategySpec:
    if name not in _REGISTRY:
        raise InvalidArgumentError(f"unknown strategy {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]
