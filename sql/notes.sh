#!/bin/sh
# The notebook's notes by experiment: runs sql/notes.sql on a database
# (default mnist.db; MNIST is imported into it when missing) with build/cnn.so
# from the quick start, writing the charts into docs/notes/ and the numbers
# into the table notes_results. About five minutes on two cores.
#
# Usage: sh sql/notes.sh [db]
# NOTES_SO: the extension (build/cnn.so); NOTES_DATA: MNIST's directory (data).
# Sizes (defaults in sql/notes.sql): NOTES_ROWS, NOTES_TEST_ROWS, NOTES_EPOCHS,
# NOTES_XOR_ROWS, NOTES_XOR_EPOCHS, NOTES_OVERFIT_ROWS, NOTES_OVERFIT_EPOCHS,
# NOTES_OUT (directory of the charts). NOTES_MEMORY=1 also measures the peak
# memory of one epoch with and without pooling (/usr/bin/time -v on a sqlite3
# process each).
set -eu
# Paths given by the caller are taken from where it stands; defaults from the
# repository root.
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
db=${1:+$(abs "$1")}
out=${NOTES_OUT:+$(abs "$NOTES_OUT")}
so=${NOTES_SO:+$(abs "$NOTES_SO")}
data=${NOTES_DATA:+$(abs "$NOTES_DATA")}
cd "$(dirname "$0")/.."
db=${db:-mnist.db}
out=${out:-docs/notes}
so=${so:-build/cnn.so}
data=${data:-data}
if [ ! -f "$so" ]; then
  echo "notes.sh: $so is missing; build it first (sh sql/demo.sh, or cmake)" >&2
  exit 1
fi
so=${so%.so}

# The configuration rows, from the environment (numbers only, the directory quoted).
config() {
  echo "CREATE TEMP TABLE notes_config(key TEXT PRIMARY KEY, value);"
  for key in rows test_rows epochs xor_rows xor_epochs overfit_rows overfit_epochs; do
    var=NOTES_$(echo "$key" | tr a-z A-Z)
    eval "val=\${$var:-}"
    [ -z "$val" ] && continue
    case $val in
      *[!0-9]* | 0 | 00*) echo "notes.sh: $var must be a positive integer; got '$val'" >&2; exit 1 ;;
    esac
    echo "INSERT INTO notes_config VALUES ('$key', $val);"
  done
  printf "INSERT INTO notes_config VALUES ('out', '%s');\n" "$(printf %s "$out" | sed "s/'/''/g")"
  printf "INSERT INTO notes_config VALUES ('data', '%s');\n" "$(printf %s "$data" | sed "s/'/''/g")"
}

settings=$(config)
mkdir -p "$out"

{
  echo "$settings"
  # The extension named by NOTES_SO instead of notes.sql's build/cnn.
  printf '.load %s\n' "$so"
  grep -v '^\.load build/cnn$' sql/notes.sql
} | sqlite3 "$db"

if [ "${NOTES_MEMORY:-0}" = 1 ] && [ -x /usr/bin/time ]; then
  # One epoch of each CNN in its own process; peak resident memory in kB.
  for model in note_relu note_nopool; do
    kb=$({ /usr/bin/time -v sqlite3 "$db" ".load $so" ".bail on" \
      "CREATE TEMP TABLE t AS SELECT image, label FROM mnist_train WHERE id < ${NOTES_ROWS:-10000}" \
      "SELECT cnn_create('note_memory', (SELECT spec FROM cnn_models WHERE name = '$model'), 1)" \
      "SELECT cnn_train('note_memory', 't', '{\"epochs\":1,\"seed\":1}') IS NOT NULL" \
      "SELECT cnn_drop('note_memory')" >/dev/null; } 2>&1 |
      sed -n 's/.*Maximum resident set size (kbytes): //p')
    sqlite3 "$db" "INSERT OR REPLACE INTO notes_results VALUES ('5.9', '$model', 'peak_rss_kb', $kb)"
    echo "peak memory of one epoch of $model: $kb kB"
  done
fi
echo "wrote the charts in $out/ and the table notes_results in $db"
