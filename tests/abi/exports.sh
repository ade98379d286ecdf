#!/bin/sh
# SPDX-License-Identifier: MIT
# Symbol-leak check. libweft.so must export only the public API: every
# defined dynamic symbol is weft_<name> (never weft__<name>, the internal
# prefix). libweft.a cannot hide anything, so every global symbol of its
# objects must at least carry the weft_ prefix (weft_ or weft__) to stay
# out of the user's namespace. Sanitizer builds add instrumentation
# symbols (__odr_asan*, __asan_*, __tsan_*, __ubsan_*), which are allowed.
#
# Environment: top_builddir (set by `make check`); NM (default nm).
# Exit status: 0 pass, 1 a leaked symbol, 99 hard error (nothing to check).
set -u

top_builddir=${top_builddir:-.}
nm_cmd=${NM:-nm}
libs=$top_builddir/lib/.libs
so=$libs/libweft.so
ar=$libs/libweft.a
sanitizer_re='^__(odr_asan|asan_|tsan_|ubsan_|sanitizer_)'

if ! command -v "${nm_cmd%% *}" >/dev/null 2>&1; then
    echo "exports.sh: $nm_cmd not found" >&2
    exit 99
fi

status=0
n_libs=0

if [ -f "$so" ]; then
    n_libs=$((n_libs + 1))
    syms=$($nm_cmd -D --defined-only "$so" | awk 'NF >= 3 { print $3 }') || exit 99
    n=$(printf '%s\n' "$syms" | grep -c '^weft_[^_]')
    leaked=$(printf '%s\n' "$syms" | grep -v '^$' | grep -v '^weft_[^_]' |
             grep -Ev "$sanitizer_re" |
             grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$')
    if [ -n "$leaked" ]; then
        echo "FAIL: $so exports symbols outside the public weft_ API:"
        printf '%s\n' "$leaked" | sed 's/^/  /'
        status=1
    fi
    # A visibility mistake that hides everything would pass the test above.
    if [ "$n" -lt 10 ]; then
        echo "FAIL: $so exports only $n weft_ symbols (WEFT_API lost?)"
        status=1
    fi
    echo "libweft.so: $n public symbols checked"

    # Every function the headers declare must be exported (a user would
    # get an undefined reference).
    hdrs=${top_srcdir:-$top_builddir}/include
    if [ -d "$hdrs" ]; then
        declared=$(sed -n 's/^WEFT_API[^(]*[ *]\(weft_[a-z0-9_]*\)(.*/\1/p' \
                   "$hdrs"/weft.h "$hdrs"/weft/*.h | sort -u)
        n_declared=0
        for f in $declared; do
            n_declared=$((n_declared + 1))
            if ! printf '%s\n' "$syms" | grep -qx "$f"; then
                echo "FAIL: $f is declared in include/ but not exported by $so"
                status=1
            fi
        done
        echo "libweft.so: $n_declared functions declared with WEFT_API checked"
    fi
fi

if [ -f "$ar" ]; then
    n_libs=$((n_libs + 1))
    syms=$($nm_cmd -g --defined-only "$ar" 2>/dev/null | awk 'NF >= 3 { print $3 }') || exit 99
    leaked=$(printf '%s\n' "$syms" | grep -v '^$' | grep -v '^weft_' | grep -Ev "$sanitizer_re")
    if [ -n "$leaked" ]; then
        echo "FAIL: $ar defines global symbols without the weft_/weft__ prefix:"
        printf '%s\n' "$leaked" | sed 's/^/  /'
        status=1
    fi
    echo "libweft.a: $(printf '%s\n' "$syms" | grep -c .) global symbols checked"
fi

if [ "$n_libs" -eq 0 ]; then
    echo "exports.sh: neither $so nor $ar exists (build the library first)" >&2
    exit 99
fi
exit $status
