#!/usr/bin/env bash
# Install the compression toolkits that the hand-off tests drive (llm-compressor,
# auto-round, GPTQModel's data preparation) into a folder of their own, next to
# the project's torch and transformers, and print that folder (for PYTHONPATH).
# Their pins on torch/transformers are older than ours; they are installed without
# dependencies, with the few extra pure-Python packages they import listed here.
# Usage (after `source scripts/env.sh test`): PYTHONPATH=$(scripts/toolkits.sh) pytest ...
set -euo pipefail
DEST="${ZIPCAL_TOOLKITS_DIR:-$HOME/.cache/zipcal/toolkits}"
PINS=(
  llmcompressor==0.14.0.1 compressed-tensors==0.19.0 auto-round==0.15.1 gptqmodel==7.7.0
  loguru nvidia-ml-py py-cpuinfo threadpoolctl pypcre tokenicer logbar device-smi defuser
)
stamp="$DEST/.zipcal-pins"
if [ "$(cat "$stamp" 2>/dev/null)" != "${PINS[*]}" ]; then
  echo "installing toolkits into $DEST" >&2
  rm -rf "$DEST"
  mkdir -p "$DEST"
  # GPTQModel's source build uses the environment's setuptools (its pin: >=84.2.1,<85).
  python -c "import setuptools" 2>/dev/null \
    || python -m pip install -q --disable-pip-version-check "setuptools>=84.2.1,<85" >&2
  # GPTQModel ships as a source distribution; its CPU build needs no compiler flags.
  python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    --target "$DEST" "${PINS[@]}" >&2
  echo "${PINS[*]}" > "$stamp"
fi
echo "$DEST"
