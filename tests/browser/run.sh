#!/bin/sh
# Runs test_page.mjs: the digit page (tools/serve.sh) in a real browser,
# Debian's chromium driven by playwright-core. Installs what it needs on first
# use: chromium, node and npm (Debian's packages, when run as root) and
# playwright-core into tests/browser/node_modules (git-ignored, shared by
# every build directory; a lock serialises concurrent installs). Exits 77
# (skipped) when chromium is missing and cannot be installed without root.
# Environment: CNN_SO, CNN_ROOT and CNN_DATA, as for every test;
# CNN_CHROMIUM (default /usr/bin/chromium); CNN_PAGE_SCREENSHOT, where the
# screenshot goes (default ./page.png).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CNN_CHROMIUM:-/usr/bin/chromium}

missing=""
[ -x "$chromium" ] || missing="chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "browser test skipped:$missing missing; install (Debian: sudo apt-get install$missing) and rerun" >&2
    exit 77
  fi
  echo "browser test: installing Debian's$missing" >&2
  env -u LD_PRELOAD DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  env -u LD_PRELOAD DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi

# playwright-core 1.62 and later need Node 20; 1.61 still runs on Node 18
# (Debian 12's nodejs).
major=$(env -u LD_PRELOAD node -p 'process.versions.node.split(".")[0]')
if [ "$major" -ge 20 ]; then want=1; else want=1.61; fi

# npm, node and chromium run without the sanitizer build's LD_PRELOAD: they
# are not ours to check. The processes that load cnn.so (the server, the
# sqlite3 shell) get it back through CNN_HOST_PRELOAD.
usable() {
  (cd "$here" && env -u LD_PRELOAD node -e "require('playwright-core')") >/dev/null 2>&1
}
install_driver() {
  usable && return 0
  echo "browser test: installing playwright-core@$want into $here/node_modules" >&2
  (cd "$here" && env -u LD_PRELOAD npm install --no-audit --no-fund --no-save "playwright-core@$want") >&2 || true
  usable && return 0
  echo "browser test: playwright-core@$want could not be installed in $here (npm needs the registry)" >&2
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

export CNN_HOST_PRELOAD="${LD_PRELOAD:-}"
export CNN_CHROMIUM="$chromium"
exec env -u LD_PRELOAD node "$here/test_page.mjs" "$@"
