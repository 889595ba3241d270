#!/bin/sh
# Runs test_node.mjs: sqlite-cnn from Node through better-sqlite3.
# Installs what it needs on first use: node and npm (Debian's packages, when
# run as root) and better-sqlite3 into tests/node/node_modules (git-ignored,
# shared by every build directory; a lock serialises concurrent installs).
# Arguments go to test_node.mjs (its "predict" and "train" modes serve
# tests/python/test_bindings.py); "install" only installs better-sqlite3 (for
# package.sh). Environment: CNN_SO and CNN_DATA, as for
# every test. npm's messages go to stderr: stdout belongs to test_node.mjs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

missing=""
command -v node >/dev/null 2>&1 || missing="nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "node test: node and npm are needed; install them (Debian: sudo apt-get install nodejs npm) and rerun" >&2
    exit 1
  fi
  # g++ and make: npm compiles better-sqlite3 when no prebuilt binary fits.
  echo "node test: installing Debian's$missing g++ make" >&2
  env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing g++ make >&2
fi

# better-sqlite3 12 supports Node 20 and later; 11 still supports Node 18
# (Debian 12's nodejs).
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -ge 20 ]; then want=12; else want=11; fi

# Installing runs without the sanitizer build's LD_PRELOAD: npm and the C++
# compiler it may start are not ours to check.
usable() {
  (cd "$here" && env -u LD_PRELOAD node -e "new (require('better-sqlite3'))(':memory:').close()") \
    >/dev/null 2>&1
}
install_driver() {
  usable && return 0
  echo "node test: installing better-sqlite3@$want into $here/node_modules" >&2
  (cd "$here" && env -u LD_PRELOAD npm install --no-audit --no-fund --no-save "better-sqlite3@$want") >&2 || true
  # A module built for another Node (after an upgrade) only needs a rebuild.
  usable || (cd "$here" && env -u LD_PRELOAD npm rebuild better-sqlite3) >&2 || true
  usable && return 0
  echo "node test: better-sqlite3@$want could not be installed or loaded in $here" \
       "(npm needs the registry, and a C++ toolchain when no prebuilt binary fits Node $major)" >&2
  return 1
}
mkdir -p "$here/node_modules"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/node_modules/.sqlite-cnn.lock"
  flock 9
  install_driver
  flock -u 9
  exec 9>&-
else
  install_driver
fi

[ "${1:-}" = install ] && exit 0
exec node "$here/test_node.mjs" "$@"
