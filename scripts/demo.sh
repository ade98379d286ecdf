#!/bin/sh
# SPDX-License-Identifier: MIT
# Quick start, part 1: installs what is missing (scripts/deps.sh), builds
# weft out of tree in ./build (WEFT_BUILD_DIR overrides) and runs a demo.
#
# Usage: scripts/demo.sh [DEMO [ARGS...]]   (DEMO defaults to throughput, the headline demo; any
# program in demos/, e.g. scripts/demo.sh tasks --gather)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD_DIR:-$top/build}
jobs=$(nproc 2>/dev/null || echo 2)
demo=${1:-throughput}
[ $# -gt 0 ] && shift

sh "$top/scripts/deps.sh"

echo "== building weft in $build"
[ -x "$top/configure" ] || (cd "$top" && ./autogen.sh)
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || "$top/configure"
make -j"$jobs"

if [ ! -x "demos/$demo" ]; then
    echo "no such demo: demos/$demo" >&2
    exit 2
fi
echo "== running demos/$demo $*"
exec "demos/$demo" "$@"
