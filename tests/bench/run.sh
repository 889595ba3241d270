#!/bin/sh
# The benchmark: builds Release, installs Debian's python3-torch with OpenBLAS
# (without it Debian's PyTorch multiplies with netlib's reference BLAS; the
# OpenMP build is the one the benchmark gives PyTorch, see bench.py), and
# prints the matrix products on every instruction set the CPU runs (GFLOP/s
# and share of the measured FMA peak, bench_gemm), the 3x3 convolutions by
# Winograd against im2col (bench_winograd), then sqlite-cnn and PyTorch side
# by side with ratios.
# Usage: sh tests/bench/run.sh [--rows 6000] [--batches 32,128] [--repeat 3] [--no-torch]
set -eu
cd "$(dirname "$0")/../.."
sh tools/deps.sh python3-torch libopenblas0-pthread libopenblas0-openmp
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
build/tests/bench/bench_gemm 0.1
build/tests/bench/bench_winograd 0.2
exec /usr/bin/python3 tests/bench/bench.py --so build/cnn.so --data data "$@"
