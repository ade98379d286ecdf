#!/bin/sh
# SPDX-License-Identifier: MIT
# Lists the non-relaxed atomic operations in lib/ that have no comment on
# their line or within the 3 lines above (for a call split over lines:
# above the line it starts on) (issue 16: every non-relaxed
# atomic names what it publishes or acquires and what it pairs with).
# Looks for memory_order_{acquire,release,acq_rel,seq_cst,consume},
# __ATOMIC_{ACQUIRE,RELEASE,ACQ_REL,SEQ_CST,CONSUME}, and the implicit
# seq_cst calls (atomic_load(), atomic_store(), atomic_exchange(),
# atomic_fetch_*(), atomic_compare_exchange_*() without _explicit).
# It cannot see plain '=' or '++' on an _Atomic object.
# Usage: atomics-check.sh [dir]   (default: lib/ next to this script)
# Exit status 1 if any is found.  Run by make check (tests/local.mk).
dir=${1:-$(dirname "$0")/../lib}
find "$dir" -name '*.[ch]' | LC_ALL=C sort | xargs awk '
FNR == 1 { start = -10; delete line }
{
    line[FNR] = $0
    # A call split over lines is judged from the line it starts on.
    if ($0 ~ /atomic_[a-z_]*[ \t]*\(/) start = FNR
    if ($0 ~ /memory_order_(acquire|release|acq_rel|seq_cst|consume)/ ||
        $0 ~ /__ATOMIC_(ACQUIRE|RELEASE|ACQ_REL|SEQ_CST|CONSUME)/ ||
        $0 ~ /(^|[^_a-z])atomic_(load|store|exchange|fetch_[a-z]+|compare_exchange_(weak|strong))[ \t]*\(/) {
        from = (start >= FNR - 3) ? start : FNR
        ok = 0
        for (i = from - 3; i <= FNR; i++)
            if (i >= 1 && line[i] ~ /\/\*|\*\/|\/\/|^[ \t]*\*/) ok = 1
        if (!ok) { print FILENAME ":" FNR ": " $0; bad++ }
    }
}
END {
    if (bad) {
        print bad " non-relaxed atomic(s) without a comment saying what they pair with" > "/dev/stderr"
        exit 1
    }
}' || exit 1
