#!/bin/sh
# Runs every test: installs what is missing, builds Release and runs ctest,
# then builds with AddressSanitizer + UBSan and runs ctest again, then runs
# every libFuzzer target for CNN_FUZZ_SECONDS (default 60, or 0 = none when
# ctest arguments select tests).
# Usage: sh tests/run.sh [ctest arguments, e.g. -R sql]
set -eu
cd "$(dirname "$0")/.."
# The machine, so that a log says where it came from.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
vec=$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1 | tr ' ' '\n' |
  grep -E '^(sse4_2|avx|avx2|fma|avx512.*|amx.*)$' | tr '\n' ' ')
echo "machine: ${cpu:-unknown CPU} ($(uname -m), $(nproc 2>/dev/null || echo ?) CPUs)"
echo "vector features: ${vec:-none found}"
sh tools/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs" "$@"
cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DCNN_SANITIZE=ON >/dev/null
cmake --build build-san -j "$jobs"
ctest --test-dir build-san --output-on-failure -j "$jobs" "$@"
if [ $# -eq 0 ]; then fuzz=${CNN_FUZZ_SECONDS:-60}; else fuzz=${CNN_FUZZ_SECONDS:-0}; fi
if [ "$fuzz" -gt 0 ]; then
  CNN_FUZZ_JOBS=$jobs sh tests/fuzz/run.sh "$fuzz"
  echo "all tests passed (Release, ASan/UBSan, $fuzz s of fuzzing per parser)"
else
  echo "all tests passed (Release and ASan/UBSan)"
fi
