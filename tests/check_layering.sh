#!/bin/sh
# The engine (src/) never sees SQLite; the extension exports one symbol and
# does not link libsqlite3 (the host provides SQLite).
root=$1 so=$2
fail=0
if grep -rln 'sqlite3' "$root/src" --include='*.[ch]'; then
  echo "layering: src/ must not mention sqlite3 (files above)"; fail=1
fi
# The core (src/*) includes only its own headers and the C library's: no
# loader (src/io), zlib, stb, protobuf-c or SQLite header. The build enforces it too
# (the core's include path has none of them); this names the line.
io_headers=$(cd "$root/src/io" && ls *.h | sed 's/\./\\./g' | paste -sd'|')
bad=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"](.*/)?(${io_headers}|zlib\.h|zconf\.h|stb_[a-z_]*\.h|protobuf-c\.h|[a-z_]*\.pb-c\.h|sqlite3[a-z]*\.h)[>\"]|^[[:space:]]*#[[:space:]]*include[[:space:]]*\"io/" \
  "$root"/src/*.[ch])
if [ -n "$bad" ]; then
  echo "$bad"
  echo "layering: the engine core (src/) must not include io, zlib, stb, protobuf-c or SQLite headers (lines above)"
  fail=1
fi
# The shipped extension carries no fault-injection hook.
if nm "$so" | grep -q 'cnn_alloc_fail_at'; then
  echo "layering: cnn.so must not contain the test-only cnn_alloc_fail_at"; fail=1
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
