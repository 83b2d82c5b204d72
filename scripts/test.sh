#!/usr/bin/env bash
# Sets up a fresh machine (idempotent), builds everything (CUDA code too where nvcc exists,
# compiled but not run without a GPU) and runs the CPU test suite. This is the README's test
# command and all that .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
cmake --preset ci
cmake --build --preset ci -j "$jobs"
ctest --preset cpu-tests -j "$jobs"
