#!/bin/sh
# Streamed against in-memory reading of a source (the option "data" of
# cnn_train and cnn_evaluate):
# - training: the notebook's model for one epoch on MNIST's 60000 training
#   rows, in memory and streamed; then a 4-filter model for one epoch on 60000
#   rows and on tables of 1 and 4 million rows (MNIST repeated, built here);
# - reading a source without training, with the same 4-filter model on the
#   same tables: cnn_evaluate in memory and streamed, and
#   SELECT count(*) FROM cnn_predictions(...), which reads one batch at a time.
# Each run is its own sqlite3 process under /usr/bin/time -v: seconds (a
# training's epoch from cnn_epochs and its call's wall time, listing the
# rowids or reading the rows included; the process's wall time for the
# others), seconds per 100000 images and the process's peak resident memory.
# The tables are read once before each run, so the page cache is warm.
# The last line compares streamed training's peak memory on the largest table
# with the 60000-row figure: the growth, less 8 bytes a row for the rowids and
# the epoch's permutation, against the target (at most 10 % of the 60000-row
# figure, and at most 256 MB in all).
#
# Not a test: it prints figures. The 4-million-row table takes about 3.3 GB;
# it is skipped, with a message, when the directory has too little space.
# Usage: sh tests/bench/stream.sh [--small] [DIR]
#        DIR keeps the database between runs (default a new directory under
#        /tmp, removed at the end).
#        --small: tables of 120000 and 240000 rows instead of 1 and 4 million,
#        and no notebook runs: a check of the script in about a minute.
#        CNN_BENCH_SKIP="notebook 4m" leaves those parts out (4m: the largest
#        table).
set -eu
cd "$(dirname "$0")/../.."
root=$PWD
mid=1000000 top=4000000
skip=${CNN_BENCH_SKIP:-}
if [ "${1:-}" = --small ]; then
  mid=120000 top=240000 skip="$skip notebook"
  shift
fi
sh tools/deps.sh time
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
so=$root/build/cnn.so
if [ $# -ge 1 ]; then
  dir=$1
  mkdir -p "$dir"
else
  dir=$(mktemp -d /tmp/cnn-stream.XXXXXX)
  trap 'rm -rf "$dir"' EXIT
fi
db=$dir/stream.db
small='{"input":[28,28,1],"layers":[{"type":"conv2d","filters":4,"kernel":3,"activation":"relu"},{"type":"maxpool"},{"type":"flatten"},{"type":"dense","units":10}]}'

sql() { sqlite3 -batch "$db" ".load $so" "$@"; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; $(sqlite3 --version | cut -d' ' -f1) "
sql "PRAGMA journal_mode=WAL" >/dev/null
if [ "$(sql "SELECT count(*) FROM sqlite_master WHERE name = 'train60k'")" = 0 ]; then
  sql "SELECT cnn_import_mnist('$root/data')" >/dev/null
  sql "CREATE TABLE train60k AS SELECT image, label FROM mnist_train ORDER BY id"
fi
# A small WAL: its index is mapped by every connection, and counts in RSS.
sql "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null

# big NAME ROWS: MNIST's training rows repeated up to ROWS rows.
big() {
  if [ "$(sql "SELECT count(*) FROM sqlite_master WHERE name = '$1'")" = 0 ]; then
    echo "building $1 ($2 rows)..."
    sql "CREATE TABLE $1 (image BLOB, label INTEGER);
         WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $2 / 60000 + 1)
         INSERT INTO $1 SELECT image, label FROM k CROSS JOIN train60k LIMIT $2;
         PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
  fi
}

# timed SQL: runs SQL in a fresh process under /usr/bin/time -v; leaves its
# output in $out, the wall seconds in $wall and the peak RSS (kB) in $rss.
timed() {
  if ! /usr/bin/time -v sqlite3 -batch "$db" ".load $so" "$1" >"$dir/out.txt" 2>"$dir/time.txt"; then
    cat "$dir/time.txt" >&2
    exit 1
  fi
  out=$(cat "$dir/out.txt")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.txt")
  wall=$(sed -n 's/.*Elapsed (wall clock) time ([^)]*): //p' "$dir/time.txt" |
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
}

# Peak RSS (kB) of streamed training of the 4-filter model, by table.
results=$dir/results.txt
: >"$results"

printf '%-10s %-12s %8s %-7s %9s %9s %14s %11s\n' model table rows data epoch_s call_s "s/100k images" peak_RSS_MB
# run MODEL_SPEC TABLE MODE: one epoch in a fresh process.
run() {
  spec=$1 table=$2 mode=$3
  name="bench_${table}_$mode"
  sql "SELECT cnn_drop('$name')" >/dev/null 2>&1 || true
  if [ "$spec" = notebook ]; then
    create="SELECT cnn_create('$name', NULL, 1);"
  else
    create="SELECT cnn_create('$name', '$spec', 1);"
  fi
  sql "$create" >/dev/null
  sql "SELECT sum(length(image)) FROM $table" >/dev/null # warm the page cache
  timed "SELECT json_extract(r, '\$.samples') || ' ' || json_extract(r, '\$.data') || ' ' || json_extract(r, '\$.seconds')
       FROM (SELECT cnn_train('$name', '$table', '{\"epochs\":1,\"seed\":1,\"data\":\"$mode\"}') AS r)"
  rows=$(echo "$out" | cut -d' ' -f1) data=$(echo "$out" | cut -d' ' -f2) call=$(echo "$out" | cut -d' ' -f3)
  epoch=$(sql "SELECT seconds FROM cnn_epochs WHERE model = '$name'")
  label=$([ "$spec" = notebook ] && echo notebook || echo 4-filter)
  [ "$label" = 4-filter ] && [ "$data" = stream ] && echo "$rows $rss" >>"$results"
  awk -v m="$label" -v t="$table" -v n="$rows" -v d="$data" -v e="$epoch" -v c="$call" -v r="$rss" \
    'BEGIN { printf "%-10s %-12s %8d %-7s %9.2f %9.2f %14.2f %11.1f\n", m, t, n, d, e, c, e / n * 1e5, r / 1024 }'
}

case " $skip " in *" notebook "*) ;; *)
  run notebook train60k memory
  run notebook train60k stream
  run notebook train60k memory
  run notebook train60k stream
esac
tables="train60k"
run "$small" train60k memory
run "$small" train60k stream
big "big$mid" $mid
tables="$tables big$mid"
run "$small" "big$mid" memory
run "$small" "big$mid" stream
case " $skip " in *" 4m "*) ;; *)
  free_kb=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
  need_kb=$((top / 1000 * 830)) # about 830 bytes a row on disk
  if [ "$(sql "SELECT count(*) FROM sqlite_master WHERE name = 'big$top'")" = 0 ] && [ "$free_kb" -lt $((need_kb * 3 / 2)) ]; then
    echo "skipping the $top-row table: $((free_kb / 1024)) MB free in $dir, it needs about $((need_kb / 1024)) MB"
  else
    big "big$top" $top
    tables="$tables big$top"
    run "$small" "big$top" stream
  fi
esac

# Reading without training: the 4-filter model (untrained: the weights do not
# change what is read) evaluated and predicted over each table.
echo
sql "SELECT cnn_drop('bench_read')" >/dev/null 2>&1 || true
sql "SELECT cnn_create('bench_read', '$small', 1)" >/dev/null
printf '%-16s %-12s %8s %-7s %9s %14s %11s\n' function table rows data seconds "s/100k images" peak_RSS_MB
# read FUNCTION TABLE MODE SQL: SQL prints the rows it read.
read_run() {
  sql "SELECT sum(length(image)) FROM $2" >/dev/null # warm the page cache
  timed "$4"
  awk -v f="$1" -v t="$2" -v n="$out" -v d="$3" -v s="$wall" -v r="$rss" \
    'BEGIN { printf "%-16s %-12s %8d %-7s %9.2f %14.2f %11.1f\n", f, t, n, d, s, s / n * 1e5, r / 1024 }'
}
for t in $tables; do
  for mode in memory stream; do
    read_run cnn_evaluate "$t" $mode \
      "SELECT json_extract(cnn_evaluate('bench_read', '$t', '{\"data\":\"$mode\"}'), '\$.count')"
  done
  read_run cnn_predictions "$t" batches "SELECT count(*) FROM cnn_predictions('bench_read', '$t')"
done

# The target for streamed training: growth from 60000 rows to the largest
# table, less 8 bytes a row, at most 10 % of the 60000-row figure; at most
# 256 MB in all.
echo
sort -n "$results" | awk '
  NR == 1 { n0 = $1; r0 = $2 / 1024 }
  { n1 = $1; r1 = $2 / 1024 }
  END {
    if (NR < 2) { print "training target: needs streamed runs on two tables"; exit }
    allow = 8 * (n1 - n0) / 1048576; excess = r1 - r0 - allow; pct = excess / r0 * 100
    met = (pct <= 10 && r1 <= 256) ? "met" : "NOT met"
    printf "training, streamed, 4-filter: peak %.1f MB at %d rows, %.1f MB at %d rows; growth %.1f MB less %.1f MB (8 bytes a row) = %.1f MB, %.1f %% of the %d-row figure: target (<= 10 %%, <= 256 MB) %s\n",
      r0, n0, r1, n1, r1 - r0, allow, excess, pct, n0, met
  }'
