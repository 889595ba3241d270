#!/bin/sh
# run.sh - builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan,
# coverage-instrumented engine) and runs each for a while on its seed corpus.
#
#   sh tests/fuzz/run.sh [SECONDS] [TARGET...]     (default 60 s, all targets)
#   e.g. sh tests/fuzz/run.sh 60; sh tests/fuzz/run.sh 1800 model
#   CNN_FUZZ_JOBS=2 sh tests/fuzz/run.sh 60     (two targets at a time; tests/run.sh)
#
# Targets run CNN_FUZZ_JOBS at a time (default 1), a process each. The
# committed seeds in corpus/<target>/ are only read; what the fuzzer finds new goes to
# $BUILD/corpus/<target>/ and crash inputs to $BUILD/artifacts/. A crash, leak,
# sanitizer report or timeout in any target makes the script exit 1 after the
# others have run; the logs are in $BUILD/logs/<target>.log.
# Environment: CNN_FUZZ_BUILD (build directory, default build-fuzz in the
# repository root; an existing configured directory is reused as it is).
# To reproduce a crash: $BUILD/tests/fuzz/fuzz_<target> <crash file>.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"idx image spec expr options model json"}
build=${CNN_FUZZ_BUILD:-$root/build-fuzz}

# clang and its runtimes (libFuzzer, ASan, UBSan), if missing.
sh "$root/tools/deps.sh" clang libclang-rt-dev

if [ ! -f "$build/CMakeCache.txt" ]; then
  # -O1 with assertions on: fast enough, and internal invariants are checked.
  CC=clang cmake -S "$root" -B "$build" -DCNN_FUZZ=ON -DCNN_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
fi
set --
for t in $targets; do set -- "$@" "fuzz_$t"; done
cmake --build "$build" -j2 --target "$@"

mkdir -p "$build/logs" "$build/artifacts"
jobs=${CNN_FUZZ_JOBS:-1}

# Runs one target; its verdict goes to logs/<target>.status (0 = clean).
fuzz_one() {
  t=$1
  case $t in
  image) max_len=16384 ;;
  idx | model) max_len=8192 ;;
  *) max_len=4096 ;;
  esac
  dict=""
  [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
  exe=$(find "$build" -type f -name "fuzz_$t" -perm -u+x | head -n 1)
  mkdir -p "$build/corpus/$t"
  # Leaks are checked (detect_leaks); -timeout flags inputs that hang.
  rc=0
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$exe" "$build/corpus/$t" "$here/corpus/$t" $dict \
      -max_total_time="$secs" -max_len="$max_len" -timeout=20 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
      >"$build/logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$build/logs/$t.status"
}

running=0
for t in $targets; do
  echo "fuzz_$t: $secs s"
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait
    running=0
  fi
done
wait

failed=""
for t in $targets; do
  if [ "$(cat "$build/logs/$t.status")" = 0 ]; then
    echo "fuzz_$t: clean"
    grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$build/logs/$t.log" |
      sed "s/^/  /"
  else
    echo "fuzz_$t: FAILED: see $build/logs/$t.log"
    grep -E 'ERROR|SUMMARY|Test unit written' "$build/logs/$t.log" | sed "s/^/  /" | head -n 5
    failed="$failed $t"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzzing failed:$failed"
  exit 1
fi
echo "fuzzing clean: $targets"
