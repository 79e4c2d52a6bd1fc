"""Selection strategies, by name: the registry and the strategies that register
into it (importing this package registers every built-in one)."""

from __future__ import annotations

from . import coverage, mix, model_based  # noqa: F401  (they register themselves)
from .registry import Picked, StrategyFn, StrategySpec, available, get, register

__all__ = ["Picked", "StrategyFn", "StrategySpec", "available", "get", "register"]
