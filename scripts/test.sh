#!/usr/bin/env bash
# Runs the test suites after scripts/setup.sh (idempotent). Labels: unit (no model file,
# seconds), model (the real default model and the shared corpora, minutes), slow (opt-in).
#   scripts/test.sh              unit + model: what CI runs
#   scripts/test.sh -L unit      any extra arguments go to ctest
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${SENTINEL_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh"
cd "$BUILD_DIR"
if [ $# -eq 0 ]; then
  set -- -L 'unit|model'
fi
exec ctest --output-on-failure --timeout 1800 "$@"
