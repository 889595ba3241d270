#!/bin/sh
# The benchmark: builds Release, installs Debian's python3-torch, and prints
# sqlite-cnn and PyTorch side by side with ratios (see bench.py).
# Usage: sh tests/bench/run.sh [--rows 6000] [--batches 32,128] [--repeat 3] [--no-torch]
set -eu
cd "$(dirname "$0")/../.."
sh tools/deps.sh python3-torch
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
cat /proc/cpuinfo | grep -m1 'model name' || true
exec /usr/bin/python3 tests/bench/bench.py --so build/cnn.so --data data "$@"
