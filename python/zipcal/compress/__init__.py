"""Post-training pruning and quantization kernels for Hugging Face causal LMs.

Importing this package does not import torch; the functions below load
their modules on first use::

    from zipcal.compress import prune, quantize, load_calibration
    report = prune(model, calib, method="wanda", sparsity=0.5, tokenizer=tok)
    meta = quantize(model, calib, method="gptq", bits=4, group_size=128, tokenizer=tok)
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "prune": "pipeline",
    "quantize": "pipeline",
    "owl_sparsities": "pipeline",
    "format_sparsity_report": "pipeline",
    "PRUNE_METHODS": "pipeline",
    "QUANT_METHODS": "pipeline",
    "load_calibration": "calib",
    "CalibrationError": "calib",
    "save_compressed": "checkpoints",
    "atomic_output_dir": "checkpoints",
    "OutputExistsError": "checkpoints",
}

__all__ = sorted(_LAZY) + ["kernels", "hooks"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    if name in ("kernels", "hooks", "pipeline", "calib", "checkpoints", "commands"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return __all__
