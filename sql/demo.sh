#!/bin/sh
# The main job: install what is missing, build the extension, then run the
# notebook as SQL (sql/demo.sql) into a fresh mnist.db: import MNIST, train,
# evaluate, predict a photo, write grid.png, history.svg and
# 8-preprocessed.png. Usage: sh sql/demo.sh [epochs]   (default 1)
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
rm -f mnist.db mnist.db-wal mnist.db-shm
{ echo ".parameter init"; echo ".parameter set :epochs ${1:-1}"; cat sql/demo.sql; } | sqlite3 mnist.db
echo "wrote mnist.db, grid.png, history.svg, 8-preprocessed.png"
