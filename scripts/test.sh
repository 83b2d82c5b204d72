#!/usr/bin/env bash
# Sets up a fresh machine (idempotent), builds everything (CUDA code too where nvcc exists,
# compiled but not run without a GPU) and runs the CPU test suite. This is the README's test
# command and all that .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOLYHEAD_PYTHON=ON \
  -DPOLYHEAD_WERROR=ON
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs" -LE cuda
