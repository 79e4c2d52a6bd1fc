#!/usr/bin/env bash
# Fresh machine to first selection: build and install zipcal, then run
# `zipcal select` on the embedded default corpus. Extra arguments go to `zipcal select`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh base
python -m pip install -q --disable-pip-version-check .
zipcal select "$@"
