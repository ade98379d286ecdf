#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the weft-bench micro workloads and prints a table; with --peers, then
# runs ../shared/peers/run.sh with WEFT_BENCH set so weft is measured side by
# side with Go, Tokio, asyncio and Boost.Fiber in the same run.
#
#   bench/run.sh [--bin PATH] [--runs N] [--benches a,b,...] [--peers] [--conns]
#
# --conns: then the echo server at 100, 1,000 and 10,000 busy connections
# beside Tokio and Go, one core each (bench/conns.sh; CONNS_ARGS passes it
# options, e.g. "--peers DIR --perf"): req/s, server CPU per request and
# peak RSS.
#
# N per workload comes from the environment (the peers' defaults otherwise):
# SKYNET_N (leaves), SPAWN_JOIN_N, YIELD_N, PINGPONG_N, TIMERS_N,
# TIMERS_CHURN_N, IDLE_MEMORY_N, BLOCKING_EXECUTOR_N, UDP_ECHO_N, FILE_READ_N (their Tokio
# and Go twins: bench/peers/run.sh). BENCH_TIMEOUT (s, default 90) bounds
# each run. PEERS_DIR (default: ../shared/peers beside the source tree) and
# PEERS_ARGS (extra options for its run.sh, e.g. "--runtimes weft,go,tokio")
# steer --peers. Exit status 1 when a run failed or printed "ok":false.
set -u

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BIN=""
RUNS=1
BENCHES="skynet,spawn_join,yield,pingpong,select,timers,timers_churn,idle_memory,blocking_executor,udp_echo,file_read"
PEERS=0
CONNS=0
PEERS_DIR=${PEERS_DIR:-$SRCDIR/../shared/peers}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-90}

while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --benches) BENCHES=$2; shift ;;
        --peers) PEERS=1 ;;
        --conns) CONNS=1 ;;
        -h|--help) sed -n '3,19p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# Without --bin: the build tree we are run from, else the source tree.
if [ -z "$BIN" ]; then
    for b in ./bench/weft-bench "$SRCDIR/bench/weft-bench"; do
        [ -x "$b" ] && { BIN=$b; break; }
    done
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    echo "bench/run.sh: weft-bench not found; build it with 'make' or pass --bin" >&2
    exit 2
fi
# Absolute, because peers/run.sh runs from its own directory.
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

n_for() { # the N of a workload, from the environment or empty (default)
    case "$1" in
        skynet) echo "${SKYNET_N:-}" ;;
        spawn_join) echo "${SPAWN_JOIN_N:-}" ;;
        yield) echo "${YIELD_N:-}" ;;
        pingpong) echo "${PINGPONG_N:-}" ;;
        select) echo "${SELECT_N:-}" ;;
        timers) echo "${TIMERS_N:-}" ;;
        timers_churn) echo "${TIMERS_CHURN_N:-}" ;;
        idle_memory) echo "${IDLE_MEMORY_N:-}" ;;
        blocking_executor) echo "${BLOCKING_EXECUTOR_N:-}" ;;
        udp_echo) echo "${UDP_ECHO_N:-}" ;;
        file_read) echo "${FILE_READ_N:-}" ;;
    esac
}

metric_for() { # the headline key of a workload
    case "$1" in
        skynet|timers) echo seconds ;;
        spawn_join) echo ns_per_task ;;
        yield|pingpong|select|timers_churn) echo ns_per_op ;;
        idle_memory) echo per_task_kib ;;
        blocking_executor) echo ops_per_s ;;
        udp_echo) echo datagrams_per_s ;;
        file_read) echo mib_per_s ;;
    esac
}

field() { # field JSON KEY -> the value (numbers and booleans only)
    printf '%s\n' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p"
}

if command -v timeout >/dev/null 2>&1; then TIMEOUT="timeout $BENCH_TIMEOUT"; else TIMEOUT=""; fi

status=0
ROWS=$(mktemp)
trap 'rm -f "$ROWS"' EXIT
echo "weft-bench: $BIN, $RUNS run(s), workers ${WEFT_WORKERS:-default}"
fmt="%-18s %4s %10s %9s %-13s %12s %8s %-5s\n"
printf "$fmt" bench run n seconds metric value "rss MiB" ok
old_ifs=$IFS
IFS=,
set -- $BENCHES
IFS=$old_ifs
for b in "$@"; do
    key=$(metric_for "$b")
    if [ -z "$key" ]; then
        echo "bench/run.sh: unknown benchmark $b" >&2
        status=1
        continue
    fi
    r=1
    while [ "$r" -le "$RUNS" ]; do
        line=$($TIMEOUT "$BIN" "$b" $(n_for "$b") | grep '^{' | tail -n 1)
        if [ -z "$line" ]; then
            printf "$fmt" "$b" "$r" - - "$key" "error" - "false"
            status=1
        else
            ok=$(field "$line" ok)
            [ "$ok" = true ] || status=1
            rss=$(field "$line" rss_kib)
            printf "$fmt" "$b" "$r" "$(field "$line" n)" "$(field "$line" seconds)" "$key" \
                "$(field "$line" "$key")" "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" "${ok:-?}"
            echo "$b $(field "$line" "$key")" >> "$ROWS"
        fi
        r=$((r + 1))
    done
done
if [ "$RUNS" -gt 1 ]; then
    echo
    echo "medians:"
    for b in "$@"; do
        grep "^$b " "$ROWS" | awk '{ print $2 }' | sort -g | awk -v b="$b" -v k="$(metric_for "$b")" '
            { v[NR] = $1 }
            END { if (NR) printf "  %-18s %-13s %s\n", b, k, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
    done
fi

if [ "$PEERS" = 1 ]; then
    echo
    if [ -x "$PEERS_DIR/run.sh" ]; then
        echo "peers: WEFT_BENCH=$BIN $PEERS_DIR/run.sh --runs $RUNS ${PEERS_ARGS:-}"
        # PEERS_ARGS is split into words on purpose: it holds options.
        WEFT_BENCH=$BIN "$PEERS_DIR/run.sh" --runs "$RUNS" ${PEERS_ARGS:-} || status=1
    else
        echo "peers: $PEERS_DIR/run.sh not found; skipped (set PEERS_DIR)"
    fi
fi
if [ "$CONNS" = 1 ]; then
    echo
    echo "conns: $SRCDIR/bench/conns.sh --bin $BIN --runs $RUNS ${CONNS_ARGS:-}"
    # CONNS_ARGS is split into words on purpose: it holds options.
    bash "$SRCDIR/bench/conns.sh" --bin "$BIN" --runs "$RUNS" ${CONNS_ARGS:-} || status=1
fi
exit $status
