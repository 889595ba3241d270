#!/bin/sh
# Every C source is formatted by the one .clang-format at the top (Debian
# 12's clang-format 14; tools/deps.sh installs it). Skipped (77) where
# clang-format is not installed.
root=$1
command -v clang-format >/dev/null || { echo "format: clang-format is not installed"; exit 77; }
cd "$root" || exit 1
files=$(find src ext tests tools -name '*.[ch]' -not -path '*/node_modules/*' | sort)
if ! clang-format --dry-run --Werror $files; then
  echo "format: the files above differ from .clang-format (clang-format -i <file> fixes them)"
  exit 1
fi
echo "format: ok ($(echo "$files" | wc -l) files)"
