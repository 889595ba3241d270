#!/bin/sh
# Runs one SQL test through the sqlite3 shell and compares everything it
# prints (results and error messages) with the file's .expected twin.
# The script runs in a fresh temporary directory; it loads the extension with
# `.load $CNN_SO` (written by this runner as the first line). With
# CNN_UPDATE_EXPECTED=1 the output becomes the new .expected.
set -u
src=$1
expected="${src%.sql}.expected"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
{ printf '.load %s\n' "$CNN_SO"; sed "s|@DATA@|$CNN_DATA|g; s|@ROOT@|$CNN_ROOT|g; s|@SO@|$CNN_SO|g" "$src"; } > test.sql
# Line-buffered so results and error messages interleave as they happen.
stdbuf -oL sqlite3 -batch test.db < test.sql > actual.txt 2>&1
if [ "${CNN_UPDATE_EXPECTED:-}" = 1 ]; then
  cp actual.txt "$expected"  # after reading the diff: the new output is right
fi
if ! diff -u "$expected" actual.txt; then
  echo "sql test $(basename "$src"): output differs from $(basename "$expected")"
  exit 1
fi
