"""Atomic output folders and saving compressed models."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

from ..errors import ZipcalError

log = logging.getLogger(__name__)

QUANT_METADATA = "zipcal_quantization.json"
PRUNE_METADATA = "zipcal_pruning.json"


class OutputExistsError(ZipcalError, FileExistsError):
    """The output folder exists and is not empty (and overwriting was not asked for)."""


def check_output_dir(out: "str | os.PathLike[str]", overwrite: bool = False) -> Path:
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise OutputExistsError(f"output path {out} exists and is not a folder")
        if any(out.iterdir()) and not overwrite:
            raise OutputExistsError(f"output folder {out} is not empty (pass --overwrite / overwrite=True)")
    return out


@contextlib.contextmanager
def atomic_output_dir(out: "str | os.PathLike[str]", overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``out``; on success it replaces ``out``.

    The temporary folder lives in the same parent so the final step is a rename.
    On error it is removed and ``out`` is left untouched.
    """
    out = check_output_dir(out, overwrite).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rmdir(old)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_compressed(
    model: Any,
    out: "str | os.PathLike[str]",
    tokenizer: Any = None,
    metadata: Optional[Dict[str, Any]] = None,
    metadata_name: Optional[str] = None,
    overwrite: bool = False,
) -> Path:
    """``save_pretrained`` the model (and tokenizer) plus a JSON metadata file, atomically.

    ``metadata_name`` defaults to ``zipcal_quantization.json`` when the metadata
    describes a quantization (has ``bits``) and ``zipcal_pruning.json`` otherwise.
    """
    with atomic_output_dir(out, overwrite) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if metadata is not None:
            name = metadata_name or (QUANT_METADATA if "bits" in metadata else PRUNE_METADATA)
            with open(tmp / name, "w", encoding="utf-8") as fh:
                json.dump(metadata, fh, indent=2, sort_keys=False)
                fh.write("\n")
    log.info("saved compressed model to %s", out)
    return Path(out)
