"""zipcal: fast, model-agnostic calibration data selection for pruning and quantizing LLMs.

>>> import zipcal
>>> sel = zipcal.select("corpus.parquet", n=128, seq_len=2048, tokenizer="tokenizer.json", seed=0)
>>> sel.indices, sel.texts, sel.stats
>>> batch = sel.to_input_ids()

The selection engine needs only numpy and pyarrow; ``zipcal.compress`` and the
model-based strategies need ``pip install zipcal[torch]``.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    CapacityError,
    InputError,
    InvalidArgumentError,
    MissingDependencyError,
    NotEnoughCandidatesError,
    SourceNotFoundError,
    TokenizerError,
    ZipcalError,
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zipcal")  # the one version: pyproject.toml
    except PackageNotFoundError:  # pragma: no cover - a source tree not installed
        return "0+unknown"


__version__ = _version()

_LAZY = {
    "select": ("zipcal.selection", "select"),
    "Selection": ("zipcal.selection", "Selection"),
    "Pool": ("zipcal.pool", "Pool"),
    "load_pool": ("zipcal.pool", "load_pool"),
    "available_strategies": ("zipcal.strategies", "available"),
    "register_strategy": ("zipcal.strategies", "register"),
    "corpus_stats": ("zipcal.pool", "corpus_stats"),
    "default_corpus": ("zipcal.default_corpus", "default_corpus"),
    "set_num_threads": ("zipcal._core", "set_num_threads"),
    "get_num_threads": ("zipcal._core", "get_num_threads"),
}


def __getattr__(name: str) -> Any:
    # Lazy so that `import zipcal.compress` does not load the selection engine.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zipcal' has no attribute {name!r}")


__all__ = [
    "select",
    "Selection",
    "Pool",
    "load_pool",
    "available_strategies",
    "register_strategy",
    "corpus_stats",
    "default_corpus",
    "set_num_threads",
    "get_num_threads",
    "ZipcalError",
    "InvalidArgumentError",
    "InputError",
    "SourceNotFoundError",
    "TokenizerError",
    "NotEnoughCandidatesError",
    "CapacityError",
    "MissingDependencyError",
]
