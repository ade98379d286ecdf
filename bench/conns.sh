#!/usr/bin/env bash
# The TCP echo server at many busy connections, weft beside Tokio and Go
# (issue 20), measured alike: each server pinned to one core with one
# worker (taskset), the peers' epoll load generator echo_load pinned to the
# other core with one thread, SECONDS per run, RUNS interleaved rounds
# (every runtime at every connection count once per round), medians.
#
#   bench/conns.sh [--bin PATH] [--base PATH] [--peers DIR] [--runs N]
#                  [--seconds S] [--conns 100,1000,10000]
#                  [--runtimes weft,tokio,go] [--perf] [--out FILE]
#
#   --bin       weft-bench to measure (default: ./bench/weft-bench, then
#               b/bench/weft-bench)
#   --base      a second weft-bench (another commit), shown as "weft-base"
#   --peers     a built copy of the peers (bin/tokio_peer, bin/go_peer,
#               bin/echo_load; default /tmp/speers-$USER, see BENCH.md)
#   --perf      also count user-space instructions, cache misses and dTLB
#               load misses of the server (perf stat -p) during the load
#
# Per run: requests per second (echo_load), server CPU per request
# (utime + stime from /proc/PID/stat over the load run, in microseconds),
# and the server's peak RSS (VmHWM). The CPU includes the connection
# set-up, the same for every runtime. Results go to --out (JSON lines);
# a table of medians (and the spread, min..max of req/s) is printed.
set -u
BIN=""
BASE=""
PEERS=${PEERS_DIR:-/tmp/speers-${USER:-$(id -un)}}
RUNS=3
SECONDS_PER_RUN=3
CONNS="100,1000,10000"
RUNTIMES="weft,tokio,go"
PERF=0
OUT=""
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT_BASE:-19700}
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN=$2; shift ;;
        --base) BASE=$2; shift ;;
        --peers) PEERS=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --seconds) SECONDS_PER_RUN=$2; shift ;;
        --conns) CONNS=$2; shift ;;
        --runtimes) RUNTIMES=$2; shift ;;
        --perf) PERF=1 ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "bench/conns.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$BIN" ]; then
    for c in ./bench/weft-bench ./b/bench/weft-bench; do
        [ -x "$c" ] && { BIN=$c; break; }
    done
fi
[ -n "$BASE" ] && RUNTIMES="$RUNTIMES,weft-base"
LOAD=$PEERS/bin/echo_load
[ -x "$LOAD" ] || { echo "bench/conns.sh: $LOAD not found (build the peers, BENCH.md)" >&2; exit 1; }
[ -n "$OUT" ] || OUT=$(mktemp /tmp/conns-XXXXXX.jsonl)
: > "$OUT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
HZ=$(getconf CLK_TCK)

server_cmd() { # server_cmd RUNTIME -> the command line, or nothing
    case "$1" in
        weft) [ -x "$BIN" ] && echo "env WEFT_WORKERS=1 $BIN echo_server" ;;
        weft-base) [ -x "$BASE" ] && echo "env WEFT_WORKERS=1 $BASE echo_server" ;;
        tokio) [ -x "$PEERS/bin/tokio_peer" ] && echo "env TOKIO_WORKERS=1 $PEERS/bin/tokio_peer echo_server" ;;
        go) [ -x "$PEERS/bin/go_peer" ] && echo "env GOMAXPROCS=1 $PEERS/bin/go_peer echo_server" ;;
    esac
}

port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
SPID=""
stop_server() {
    if [ -n "$SPID" ]; then
        kill "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
        SPID=""
    fi
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

run_one() { # run_one ROUND RUNTIME CONNS
    local r=$1 rt=$2 n=$3 cmd
    cmd=$(server_cmd "$rt")
    [ -n "$cmd" ] || return 0
    while ! port_free "$PORT"; do PORT=$((PORT + 1)); done
    taskset -c "$SERVER_CPU" $cmd "$PORT" >/dev/null 2>/tmp/conns-server.err &
    SPID=$!
    local i up=0
    for i in $(seq 1 100); do
        kill -0 "$SPID" 2>/dev/null || break
        if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then up=1; break; fi
        sleep 0.05
    done
    if [ $up = 0 ]; then
        echo "bench/conns.sh: $rt did not start" >&2
        stop_server
        return 0
    fi
    sleep 0.2
    local c0 c1 res perf_pid="" perf_out=/tmp/conns-perf.$$
    c0=$(awk '{print $14 + $15}' /proc/"$SPID"/stat)
    if [ $PERF = 1 ]; then
        perf stat -x, -e instructions:u,cache-misses:u,dTLB-load-misses:u -p "$SPID" \
            -o "$perf_out" 2>/dev/null &
        perf_pid=$!
    fi
    res=$(timeout $((SECONDS_PER_RUN + 60)) taskset -c "$LOAD_CPU" "$LOAD" 127.0.0.1 "$PORT" \
        "$n" "$SECONDS_PER_RUN" 1)
    c1=$(awk '{print $14 + $15}' /proc/"$SPID"/stat)
    local rss
    rss=$(awk '/^VmHWM:/{print $2}' /proc/"$SPID"/status)
    local extra=""
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null
        wait "$perf_pid" 2>/dev/null
        # Counters the machine lacks (a VM without a PMU) say
        # "<not supported>": left out.
        extra=$(awk -F, '$1 !~ /^[0-9]/ {next}
                        $3 ~ /instructions/ {printf ",\"instructions\":%s", $1}
                        $3 ~ /cache-misses/ {printf ",\"cache_misses\":%s", $1}
                        $3 ~ /dTLB/ {printf ",\"dtlb_misses\":%s", $1}' "$perf_out")
        rm -f "$perf_out"
    fi
    stop_server
    PORT=$((PORT + 1))
    if [ -z "$res" ]; then
        echo "bench/conns.sh: $rt at $n connections: echo_load failed" >&2
        return 0
    fi
    local line="{\"round\":$r,\"runtime\":\"$rt\",\"conns\":$n,\"rss_kib\":$rss,\"server_cpu_s\":$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')$extra,${res#\{}"
    echo "$line" >> "$OUT"
    echo "$line" >&2
}

for r in $(seq 1 "$RUNS"); do
    for n in ${CONNS//,/ }; do
        for rt in ${RUNTIMES//,/ }; do
            run_one "$r" "$rt" "$n"
        done
    done
done

echo "results: $OUT"
python3 - "$OUT" "$PERF" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
perf = sys.argv[2] == "1"
keys = []
for r in rows:
    k = (r["conns"], r["runtime"])
    if k not in keys:
        keys.append(k)
hdr = "| conns | runtime | req/s | range | CPU µs/req | peak RSS MiB |"
sep = "|---|---|---|---|---|---|"
if perf:
    hdr += " instr/req | cache-miss/req | dTLB-miss/req |"
    sep += "---|---|---|"
print(hdr); print(sep)
for k in sorted(keys):
    rs = [r for r in rows if (r["conns"], r["runtime"]) == k]
    rps = [r["rps"] for r in rs]
    cpu = [1e6 * r["server_cpu_s"] / max(r["requests"], 1) for r in rs]
    rss = [r["rss_kib"] / 1024 for r in rs]
    line = "| %d | %s | %.0fk | %.0f..%.0fk | %.2f | %.1f |" % (
        k[0], k[1], statistics.median(rps) / 1e3, min(rps) / 1e3, max(rps) / 1e3,
        statistics.median(cpu), statistics.median(rss))
    if perf:
        def per(f):
            v = [float(r[f]) / max(r["requests"], 1) for r in rs if r.get(f) not in (None, "<not counted>", "<not supported>")]
            return "%.1f" % statistics.median(v) if v else "-"
        line += " %s | %s | %s |" % (per("instructions"), per("cache_misses"), per("dtlb_misses"))
    print(line)
EOF
