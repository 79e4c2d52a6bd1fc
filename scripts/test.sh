#!/usr/bin/env bash
# Install everything the tests need (once) and run all of them: Rust and Python.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh test
echo "== cargo test (core)" >&2
ZIPCAL_FUZZ_SECONDS="${ZIPCAL_FUZZ_SECONDS:-60}" cargo test -p zipcal-core --release -- --nocapture
cargo test -p zipcal-py --release --lib
echo "== build the extension" >&2
maturin develop --release -q
echo "== stub check" >&2
python -m mypy.stubtest zipcal._core --allowlist scripts/stubtest-allowlist.txt
echo "== pytest" >&2
python -m pytest tests --durations=15 "$@"
