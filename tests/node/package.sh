#!/bin/sh
# The npm package (bindings/node) installed as a user installs it, each into a
# temporary project:
#   1. npm install of the checkout's bindings/node: its install script builds
#      cnn.so with the repository's CMake (bindings/node/build, kept);
#   2. npm pack, then the tarball with SQLITE_CNN_SO naming a built cnn.so;
#   3. the tarball with SQLITE_CNN_SO naming no file, and with neither
#      variable: the install fails and says what to set; with
#      --ignore-scripts, getLoadablePath() says what is missing.
# After 1 and 2, package.mjs loads the package into better-sqlite3 (run.sh
# install puts that in tests/node/node_modules; it is linked in) and predicts;
# after 1, README's example of the package runs too.
# Environment: CNN_SO and CNN_DATA, as for every test.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# npm, CMake and the compiler are not ours to check under a sanitizer's
# preload, and the package builds its own Release cnn.so.
unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS SQLITE_CNN_SO SQLITE_CNN_SOURCE
version=$(sed -n 's/^project(sqlite-cnn VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
sh "$here/run.sh" install

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
project() {
  mkdir -p "$1"
  printf '{"name": "p", "private": true, "type": "module", "allowScripts": {"sqlite-cnn": true}}\n' \
    >"$1/package.json"
  cp "$here/package.mjs" "$1/"
}
# npm_install DIR PACKAGE [VAR=value...]: the variables only for this install.
npm_install() {
  dir=$1 pkg=$2
  shift 2
  (cd "$dir" && env "$@" npm install --no-audit --no-fund --loglevel=error "$pkg")
}
check() {
  ln -s "$here/node_modules/better-sqlite3" "$1/node_modules/better-sqlite3"
  (cd "$1" && node package.mjs "$version" "$CNN_DATA" "$2")
}

# A cnn.so left by an earlier install must not stand in for this one's build.
rm -rf "$root/bindings/node/lib"
project "$tmp/a"
npm_install "$tmp/a" "$root/bindings/node" >"$tmp/a.log" 2>&1 || { cat "$tmp/a.log" >&2; exit 1; }
check "$tmp/a" "$root/bindings/node"
# README's example in the Installing section, in that project.
/usr/bin/python3 - "$root" "$tmp/a/readme.mjs" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/python")
from test_readme import blocks
with open(sys.argv[1] + "/README.md", encoding="utf-8") as f:
    js = [code for section, lang, code in blocks(f.read())
          if section.endswith("## Installing") and lang == "js" and "from 'sqlite-cnn'" in code]
assert len(js) == 1, js
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write(js[0])
EOF
(cd "$tmp/a" && node readme.mjs) >"$tmp/readme.out"
grep -q "^$version .*/lib/cnn.so\$" "$tmp/readme.out" || { echo "README's example printed:" >&2; cat "$tmp/readme.out" >&2; exit 1; }

(cd "$root/bindings/node" && npm pack --silent --pack-destination "$tmp") >"$tmp/pack.log"
tarball="$tmp/sqlite-cnn-$version.tgz"
test -f "$tarball" || { echo "npm pack made no $tarball:" >&2; cat "$tmp/pack.log" >&2; exit 1; }
if tar -tzf "$tarball" | grep -v -E '^package/(package\.json|index\.js|index\.d\.ts|README\.md|scripts/install\.js)$'; then
  echo "the tarball holds more than the package's files (above)" >&2
  exit 1
fi
project "$tmp/b"
npm_install "$tmp/b" "$tarball" SQLITE_CNN_SO="$root/bindings/node/lib/cnn.so"
check "$tmp/b" "$tmp/b/node_modules/sqlite-cnn"

# expect_failure CASE MESSAGE [VAR=value...]
expect_failure() {
  case=$1 message=$2
  shift 2
  project "$tmp/$case"
  if npm_install "$tmp/$case" "$tarball" "$@" >"$tmp/$case.log" 2>&1; then
    echo "npm install of the tarball worked in case $case; it should fail" >&2
    exit 1
  fi
  grep -F "$message" "$tmp/$case.log" >/dev/null ||
    { echo "case $case: no \"$message\" in:" >&2; cat "$tmp/$case.log" >&2; exit 1; }
}
expect_failure c "sqlite-cnn: SQLITE_CNN_SO names $tmp/none.so, which is not a file" SQLITE_CNN_SO="$tmp/none.so"
expect_failure d "sqlite-cnn: no cnn.so to install: set SQLITE_CNN_SO to a built cnn.so, or SQLITE_CNN_SOURCE"
# Installed without its install script, the package says what is missing.
project "$tmp/e"
(cd "$tmp/e" && npm install --no-audit --no-fund --loglevel=error --ignore-scripts "$tarball")
if (cd "$tmp/e" && node -e "require('sqlite-cnn').getLoadablePath()") 2>"$tmp/e.log"; then
  echo "getLoadablePath() worked without the install script" >&2
  exit 1
fi
grep -F "lib/cnn.so is missing: the package's install script did not run or failed" "$tmp/e.log" >/dev/null ||
  { cat "$tmp/e.log" >&2; exit 1; }
echo "ok: npm package sqlite-cnn $version installed from the checkout (CMake build) and from its tarball"
