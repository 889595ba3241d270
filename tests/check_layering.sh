#!/bin/sh
# The engine (src/) never sees SQLite; the extension exports one symbol and
# does not link libsqlite3 (the host provides SQLite).
root=$1 so=$2
fail=0
if grep -rln 'sqlite3' "$root/src" --include='*.[ch]'; then
  echo "layering: src/ must not mention sqlite3 (files above)"; fail=1
fi
exports=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}')
if [ "$exports" != "sqlite3_cnn_init" ]; then
  echo "layering: cnn.so must export only sqlite3_cnn_init; exports:"; echo "$exports"; fail=1
fi
if readelf -d "$so" | grep -q 'libsqlite3'; then
  echo "layering: cnn.so must not link libsqlite3"; fail=1
fi
[ $fail -eq 0 ] && echo "layering: ok"
exit $fail
