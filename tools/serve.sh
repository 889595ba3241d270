#!/bin/sh
# Starts the digit page: a local web server (tools/serve.py, run by
# /usr/bin/python3, whose sqlite3 can load extensions) on a database with
# trained models. Uses $CNN_SO if set, else build/cnn.so, building it first if
# it is missing.
# Usage: sh tools/serve.sh [database] [--port N] [--host H]
#   database  default mnist.db (sh sql/demo.sh creates it)
#   --port    default 8000; 0 picks a free port (the URL printed says which)
#   --host    default 127.0.0.1, this machine only
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
so=${CNN_SO:-}
if [ -z "$so" ]; then
  so="$root/build/cnn.so"
  if [ ! -f "$so" ]; then
    # stdout is the server's (it prints the URL): building talks on stderr.
    echo "serve: building $so" >&2
    sh "$root/tools/deps.sh" >&2
    cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$root/build" --target cnn -j "$(nproc 2>/dev/null || echo 2)" >&2
  fi
fi
exec /usr/bin/python3 "$root/tools/serve.py" --so "$so" "$@"
