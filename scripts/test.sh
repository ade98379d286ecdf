#!/bin/sh
# SPDX-License-Identifier: MIT
# Quick start, part 2: installs what is missing and builds weft out of tree
# in ./build (WEFT_BUILD_DIR overrides), both through scripts/build.sh, and
# runs `make check`; on failure the logs of the failed tests are printed.
# Extra arguments go to configure (e.g. --enable-werror); the build
# directory is configured again when they differ from the last run's.
#
# Usage: scripts/test.sh [CONFIGURE-ARGS...]
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${WEFT_BUILD_DIR:-$top/build}
jobs=$(nproc 2>/dev/null || echo 2)

sh "$top/scripts/build.sh" "$build" "$@"

echo "== make check"
cd "$build"
make -j"$jobs" check VERBOSE=yes
