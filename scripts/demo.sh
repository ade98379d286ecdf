#!/bin/sh
# SPDX-License-Identifier: MIT
# Quick start, part 1: installs what is missing and builds weft out of tree
# in ./build (WEFT_BUILD_DIR overrides), both through scripts/build.sh, then
# runs a demo from the directory this script was called from (so the
# throughput demo's chart, throughput.svg, lands there).
#
# Usage: scripts/demo.sh [DEMO [ARGS...]]   (DEMO defaults to throughput, the
# headline demo; any program in demos/, e.g. scripts/demo.sh tasks --gather)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD_DIR:-$top/build}
demo=${1:-throughput}
[ $# -gt 0 ] && shift

sh "$top/scripts/build.sh" "$build"

case $build in /*) ;; *) build=$PWD/$build ;; esac
if [ ! -x "$build/demos/$demo" ]; then
    echo "no such demo: demos/$demo" >&2
    exit 2
fi
echo "== running demos/$demo $*"
exec "$build/demos/$demo" "$@"
