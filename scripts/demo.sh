#!/usr/bin/env bash
# Sets up a fresh machine (idempotent), builds the polyhead program and runs the demo: every
# backend checked against the fp64 reference, then the default benchmark grid.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target polyhead
./build/tools/polyhead/polyhead info
./build/tools/polyhead/polyhead check
./build/tools/polyhead/polyhead bench
