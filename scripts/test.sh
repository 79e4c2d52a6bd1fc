#!/usr/bin/env bash
# Install everything the tests need (once) and run all of them: the lint and type
# gate, then Rust and Python tests.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh test
echo "== lint and types" >&2
cargo fmt --all --check
cargo clippy --all-targets --release -- -D warnings
ruff check python tests benches
ruff format --check python tests benches
python -m mypy python/zipcal
echo "== cargo test (core)" >&2
ZIPCAL_FUZZ_SECONDS="${ZIPCAL_FUZZ_SECONDS:-60}" cargo test -p zipcal-core --release -- --nocapture
cargo test -p zipcal-py --release --lib
echo "== build the extension" >&2
maturin develop --release -q
echo "== stub check" >&2
python -m mypy.stubtest zipcal._core --allowlist scripts/stubtest-allowlist.txt
echo "== pytest" >&2
python -m pytest tests --durations=15 "$@"
echo "== toolkit hand-off (llm-compressor, auto-round, GPTQModel)" >&2
ZIPCAL_TOOLKITS=1 PYTHONPATH="$(scripts/toolkits.sh)" python -m pytest tests/compress/test_toolkits.py -p no:cacheprovider
