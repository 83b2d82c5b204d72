#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build and test polyhead.
# Idempotent: packages already present are left alone; safe to run repeatedly.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in build-essential cmake ninja-build pkg-config libhwy-dev libopenblas-openmp-dev \
  libgtest-dev python3 python3-pip; do
  have_pkg "$pkg" || need+=("$pkg")
done

if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"
else
  echo "setup: Debian packages already present"
fi

# Python packages for the end-to-end CLI tests (float64 NumPy oracle) and the Python module.
py=$(command -v python3)
if ! "$py" -c "import numpy" 2>/dev/null; then
  echo "setup: installing numpy"
  "$py" -m pip install -q numpy || "$py" -m pip install -q --break-system-packages numpy
fi
# nanobind (pinned, as in pyproject.toml) for POLYHEAD_PYTHON=ON; pytest for ctest -L python.
pip_install() { "$py" -m pip install -q "$@" || "$py" -m pip install -q --break-system-packages "$@"; }
if ! "$py" -c "import nanobind, sys; sys.exit(nanobind.__version__ != '3.1.0')" 2>/dev/null; then
  echo "setup: installing nanobind 3.1.0"
  pip_install "nanobind==3.1.0"
fi
if ! "$py" -c "import pytest" 2>/dev/null; then
  echo "setup: installing pytest"
  pip_install pytest
fi
echo "setup: done"
