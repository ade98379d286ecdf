#!/bin/sh
# SPDX-License-Identifier: MIT
# What scripts/demo.sh and scripts/test.sh share: installs what is missing
# (scripts/deps.sh --test: both install the same set, g++ included, so the
# build directory they share is configured for the same tools whichever
# runs first), runs ./autogen.sh when there is no configure script, then
# configures the out-of-tree build directory when it has never been
# configured, when the tools configure found have changed since (a compiler
# installed or removed: libtool's C++ support, for one, is decided at
# configure time), or when configure arguments are given that differ from
# those of the last run; then builds.
#
# Usage: scripts/build.sh BUILD-DIR [CONFIGURE-ARGS...]
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=$1
shift
jobs=$(nproc 2>/dev/null || echo 2)

sh "$top/scripts/deps.sh" --test

# What configure looks for and records: the compilers and tools on PATH
# (with the version each reports) and Check's version. A change means the
# recorded configuration no longer describes this machine.
tools_seen() {
    for t in cc gcc c++ g++ clang clang++ pkg-config libtoolize ld; do
        p=$(command -v "$t" 2>/dev/null || true)
        if [ -n "$p" ]; then
            printf '%s %s %s\n' "$t" "$p" "$("$t" --version 2>/dev/null | head -n 1)"
        else
            printf '%s -\n' "$t"
        fi
    done
    printf 'check %s\n' "$(pkg-config --modversion check 2>/dev/null || echo -)"
    printf 'CC=%s CXX=%s CFLAGS=%s\n' "${CC-}" "${CXX-}" "${CFLAGS-}"
}

echo "== building weft in $build"
[ -x "$top/configure" ] || (cd "$top" && ./autogen.sh)
mkdir -p "$build"
cd "$build"

stamp=.weft-configured # first line: the arguments; then tools_seen
want=$(mktemp "${TMPDIR:-/tmp}/weft-build.XXXXXX")
trap 'rm -f "$want"' EXIT
if [ $# -gt 0 ]; then
    printf 'args %s\n' "$*" >"$want"
elif [ -f "$stamp" ]; then
    head -n 1 "$stamp" >"$want" # no arguments: keep those of the last run
else
    printf 'args \n' >"$want"
fi
tools_seen >>"$want"

reconfigure=no
if [ ! -f Makefile ] || [ ! -f config.status ]; then
    reconfigure=yes
elif [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$want"; then
    echo "== the tools or the configure arguments changed since $build was configured:"
    diff "$stamp" "$want" 2>/dev/null | sed -n 's/^[<>] /   /p' || true
    reconfigure=yes
fi
if [ $reconfigure = yes ]; then
    if [ $# -gt 0 ]; then
        "$top/configure" "$@"
    elif [ -f "$stamp" ] && [ -f config.status ]; then
        # The arguments of the last run, as config.status recorded them.
        ./config.status --recheck
        ./config.status
    else
        "$top/configure"
    fi
    cp "$want" "$stamp"
fi
make -j"$jobs"
