#!/bin/sh
# SPDX-License-Identifier: MIT
# Many workers on a small machine: runs every bench/weft-bench workload and
# every stress program RUNS times at each worker count (oversubscribed on a
# 2-core machine, which is how bugs that need 3+ workers show) and prints a
# table of runs, crashes (killed by a signal) and hangs (killed by the
# timeout). Exit status 1 if any run crashed, hung or failed.
#
# Usage: scripts/many-workers.sh [BUILD-DIR]
# Environment: RUNS (20), BENCH_WORKERS ("4 16 64 128"), STRESS_WORKERS_LIST
# ("16 64"), STRESS_SECONDS (2), TIMEOUT (60 s per run), BENCHES
# ("timers skynet spawn_join pingpong blocking_executor"; NAME:N passes N),
# STRESSES
# ("io_stress steal_stress cancel_stress select_stress").
set -u

build=${1:-${WEFT_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}}
runs=${RUNS:-20}
timeout_s=${TIMEOUT:-60}
benches=${BENCHES:-"timers skynet spawn_join pingpong blocking_executor"}
stresses=${STRESSES:-"io_stress steal_stress cancel_stress select_stress"}
bench_workers=${BENCH_WORKERS:-"4 16 64 128"}
stress_workers=${STRESS_WORKERS_LIST:-"16 64"}
stress_seconds=${STRESS_SECONDS:-2}
bad=0

if [ ! -x "$build/bench/weft-bench" ]; then
    echo "many-workers: $build/bench/weft-bench not built (make -C $build)" >&2
    exit 2
fi
make -C "$build" -s tests/stress/io_stress tests/stress/steal_stress tests/stress/cancel_stress tests/stress/select_stress \
    >/dev/null 2>&1 || true

# one NAME WORKERS CMD...: RUNS runs, one table row.
one() {
    name=$1 workers=$2
    shift 2
    ok=0 crash=0 hang=0 fail=0 first=""
    i=0
    while [ $i -lt "$runs" ]; do
        i=$((i + 1))
        WEFT_WORKERS=$workers STRESS_WORKERS=$workers timeout -k 5 "$timeout_s" "$@" \
            >/dev/null 2>/tmp/many-workers.$$.err
        rc=$?
        if [ $rc -eq 0 ]; then
            ok=$((ok + 1))
        elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            hang=$((hang + 1))
        elif [ $rc -gt 128 ]; then
            crash=$((crash + 1))
        else
            fail=$((fail + 1))
        fi
        if [ $rc -ne 0 ] && [ -z "$first" ]; then
            first="exit $rc: $(tail -n 1 /tmp/many-workers.$$.err)"
        fi
    done
    printf '%-18s %7s %5d %5d %7d %5d %5d  %s\n' "$name" "$workers" "$runs" "$ok" "$crash" "$hang" \
        "$fail" "$first"
    if [ $ok -ne "$runs" ]; then
        bad=1
    fi
}

printf '%-18s %7s %5s %5s %7s %5s %5s\n' workload workers runs ok crashed hung failed
for b in $benches; do
    name=${b%%:*}
    arg=
    [ "$name" != "$b" ] && arg=${b#*:}
    for w in $bench_workers; do
        one "$name" "$w" "$build/bench/weft-bench" "$name" $arg
    done
done
for s in $stresses; do
    for w in $stress_workers; do
        WEFT_STRESS_SECONDS=$stress_seconds one "$s" "$w" "$build/tests/stress/$s"
    done
done
rm -f /tmp/many-workers.$$.err
exit $bad
