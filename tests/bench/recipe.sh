#!/bin/sh
# The training-recipe benchmark (tests/bench/recipe.py): the notebook's model
# with and without augmentation against the best recipe (sql/best.sql), on
# the MNIST test set and its harder copy (sql/hard.sql), over several seeds.
# Builds Release if needed, imports MNIST into its own database
# (build/recipe-bench.db) and runs at low priority. In full (3 seeds) it
# takes about an hour on two cores.
# Usage: sh tests/bench/recipe.sh [--seeds 3] [--rows N] [--epochs-scale F]
#                                 [--first-seed S] [--only best,augment,decay,notebook]
set -eu
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
exec nice /usr/bin/python3 tests/bench/recipe.py --root . --so build/cnn.so "$@"
