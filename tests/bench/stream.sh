#!/bin/sh
# Streamed training against in-memory training (cnn_train's option "data"):
# the notebook's model for one epoch on MNIST's 60000 training rows, in memory
# and streamed; then a 4-filter model for one epoch on 60000 rows and on
# tables of 1 and 4 million rows (MNIST repeated, built here). Each run is its
# own sqlite3 process under /usr/bin/time -v: the epoch's seconds (from
# cnn_epochs), the call's wall time (listing the rowids or reading the rows
# included), seconds per 100000 images and the process's peak resident memory.
# The tables are read once before each run, so the page cache is warm.
#
# Not a test: it prints figures. The 4-million-row table takes about 3.3 GB;
# it is skipped, with a message, when the directory has less than 5 GB free.
# Usage: sh tests/bench/stream.sh [DIR]   (DIR keeps the database between runs;
#        default a new directory under /tmp, removed at the end)
#        CNN_BENCH_SKIP="notebook 4m" leaves those parts out.
set -eu
cd "$(dirname "$0")/../.."
root=$PWD
sh tools/deps.sh time
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
so=$root/build/cnn.so
skip=${CNN_BENCH_SKIP:-}
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

printf '%-10s %-9s %8s %-7s %9s %9s %14s %11s\n' model table rows data epoch_s call_s "s/100k images" peak_RSS_MB
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
  out=$(/usr/bin/time -v sqlite3 -batch "$db" ".load $so" \
    "SELECT json_extract(r, '\$.samples') || ' ' || json_extract(r, '\$.data') || ' ' || json_extract(r, '\$.seconds')
       FROM (SELECT cnn_train('$name', '$table', '{\"epochs\":1,\"seed\":1,\"data\":\"$mode\"}') AS r)" 2>"$dir/time.txt")
  rows=$(echo "$out" | cut -d' ' -f1) data=$(echo "$out" | cut -d' ' -f2) call=$(echo "$out" | cut -d' ' -f3)
  epoch=$(sql "SELECT seconds FROM cnn_epochs WHERE model = '$name'")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.txt")
  label=$([ "$spec" = notebook ] && echo notebook || echo 4-filter)
  awk -v m="$label" -v t="$table" -v n="$rows" -v d="$data" -v e="$epoch" -v c="$call" -v r="$rss" \
    'BEGIN { printf "%-10s %-9s %8d %-7s %9.2f %9.2f %14.2f %11.1f\n", m, t, n, d, e, c, e / n * 1e5, r / 1024 }'
}

case " $skip " in *" notebook "*) ;; *)
  run notebook train60k memory
  run notebook train60k stream
  run notebook train60k memory
  run notebook train60k stream
esac
run "$small" train60k memory
run "$small" train60k stream
big big1m 1000000
run "$small" big1m memory
run "$small" big1m stream
case " $skip " in *" 4m "*) ;; *)
  free_kb=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
  if [ "$(sql "SELECT count(*) FROM sqlite_master WHERE name = 'big4m'")" = 0 ] && [ "$free_kb" -lt 5000000 ]; then
    echo "skipping the 4-million-row table: $((free_kb / 1024)) MB free in $dir, it needs about 3300 MB"
  else
    big big4m 4000000
    run "$small" big4m stream
  fi
esac
