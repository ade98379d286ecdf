#!/bin/sh
# SPDX-License-Identifier: MIT
# Quick start, part 2: installs what is missing (scripts/deps.sh --test),
# builds weft out of tree in ./build (WEFT_BUILD_DIR overrides) and runs
# `make check`; on failure the logs of the failed tests are printed. Extra
# arguments go to configure (e.g. --enable-werror) on the first run.
#
# Usage: scripts/test.sh [CONFIGURE-ARGS...]
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD_DIR:-$top/build}
jobs=$(nproc 2>/dev/null || echo 2)

sh "$top/scripts/deps.sh" --test

echo "== building weft in $build"
[ -x "$top/configure" ] || (cd "$top" && ./autogen.sh)
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || "$top/configure" "$@"
make -j"$jobs"

echo "== make check"
make -j"$jobs" check VERBOSE=yes
