#!/usr/bin/env bash
# The GPU check (issue 14): lessons 07–11 at profile full and benchmarks G1–G3, one JSON file in
# bench/results/ and one summary line. Options go to `python -m bench gpu` (see bench/README.md):
#   bench/gpu_check.sh                     # on a CUDA machine: the whole check, ≤ 8 minutes on an H100
#   bench/gpu_check.sh --tiny --lessons 07 # anywhere: tiny sizes, labelled cpu off CUDA
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec "$PYTHON" -m bench gpu "$@"
