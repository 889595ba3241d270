#!/bin/sh
# Installs the Debian 12 packages sqlite-cnn builds and tests with, if any
# is missing (as root, or through sudo). Extra package names may be given.
set -eu
# The second line: the Python package (bindings/python) is installed with pip
# into a venv by its test, and is a plugin of sqlite-utils (pluggy marks it);
# the third: ONNX export (protobuf-c) and its test (python3-onnx, NumPy).
pkgs="cmake make gcc libc6-dev pkg-config libsqlite3-dev sqlite3 zlib1g-dev libstb-dev python3 valgrind clang-format
  python3-pip python3-venv python3-setuptools python3-wheel python3-pluggy sqlite-utils
  python3-numpy python3-onnx protobuf-c-compiler libprotobuf-c-dev $*"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
echo "installing:$missing"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
