#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs, with apt-get, only what is missing to build weft from git:
# autoconf, automake, libtool, pkg-config, Check and libdw-dev (always); g++ with
# --test (tests/abi compiles <weft.h> as C++); clang and its sanitizer
# runtimes with --clang; valgrind (with its headers) with --valgrind.
# Tools already present are never reinstalled, and apt-get is not run at
# all when nothing is missing. Debian/Ubuntu; elsewhere it names what to
# install and fails.
#
# Usage: scripts/deps.sh [--test] [--clang] [--valgrind]
set -eu

want_test=no
want_clang=no
want_valgrind=no
for arg in "$@"; do
    case $arg in
    --test) want_test=yes ;;
    --clang) want_clang=yes ;;
    --valgrind) want_valgrind=yes ;;
    *) echo "usage: $0 [--test] [--clang] [--valgrind]" >&2; exit 2 ;;
    esac
done

have() { command -v "$1" >/dev/null 2>&1; }

# dpkg's view, for what has no command to look for (libraries, headers).
installed() {
    have dpkg-query &&
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# Does $1 compile (and link) a C program with the flags that follow?
compiles() {
    cc_=$1
    shift
    have "$cc_" || return 1
    tmp_=$(mktemp -d "${TMPDIR:-/tmp}/weft-deps.XXXXXX")
    printf 'int main(void) { return 0; }\n' >"$tmp_/t.c"
    ok_=0
    "$cc_" "$@" "$tmp_/t.c" -o "$tmp_/t" >/dev/null 2>&1 || ok_=1
    rm -rf "$tmp_"
    return $ok_
}

missing=""
need() { missing="$missing $1"; }

have make || need make
have gcc || have cc || need gcc
have autoconf || need autoconf
have automake || need automake
have libtoolize || need libtool
have pkg-config || need pkg-config
if ! { have pkg-config && pkg-config --exists 'check >= 0.11'; } && ! installed check; then
    need check
fi
# Task dumps' stacks: elfutils' libdw unwinds through DWARF CFI and names
# static functions and file:line (without it, frame pointers and dladdr).
if ! { have pkg-config && pkg-config --exists libdw; } && ! installed libdw-dev; then
    need libdw-dev
fi
if [ $want_test = yes ]; then
    have g++ || have c++ || need g++
fi
if [ $want_clang = yes ]; then
    have clang || need clang
    # ASan/UBSan/TSan runtimes of clang 14 (Debian 12's clang).
    if ! compiles clang -fsanitize=thread && ! installed libclang-rt-14-dev; then
        need libclang-rt-14-dev
    fi
fi
if [ $want_valgrind = yes ]; then
    # Debian's valgrind package also ships <valgrind/valgrind.h>.
    if ! have valgrind || ! [ -f /usr/include/valgrind/valgrind.h ]; then
        need valgrind
    fi
fi

if [ -z "$missing" ]; then
    echo "deps: everything needed is installed"
    exit 0
fi

echo "deps: installing:$missing"
if ! have apt-get; then
    echo "deps: apt-get not found; install these with your package manager:$missing" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if have sudo; then
        sudo=sudo
    else
        echo "deps: not root and no sudo; as root run: apt-get install$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists at all.
$sudo apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is wanted
$sudo apt-get install -y -qq --no-install-recommends $missing
