#!/bin/sh
# SPDX-License-Identifier: MIT
# Soak run: the echo server under steady load for a long time (default
# 10 minutes; not part of CI), sampling its resident memory (VmRSS), open
# descriptors and threads every INTERVAL seconds into a CSV. The load runs
# in rounds of ROUND seconds (every round opens CONNS new connections and
# closes them at its end), so accept/close churn is soaked too, not only
# steady echoing. At the end it prints the start, after-warm-up and end
# figures and a verdict: descriptors must come back to what the server
# held before any load, and RSS must stay flat (within 10 % + 256 KiB)
# after the warm-up.
#
# Usage: scripts/soak.sh [options]
#   --duration S   total load time in seconds (600)
#   --interval S   sampling period (10)
#   --round S      length of one load round (30)
#   --conns N      connections per round (50)
#   --threads N    load-generator threads (1)
#   --warmup S     warm-up time before the RSS reference sample (120)
#   --build DIR    build directory holding bench/weft-bench or
#                  demos/echo_server (default: ./ if it has one, else
#                  WEFT_BUILD_DIR, else ../build)
#   --server CMD   server command line, started with PORT appended
#                  (default: DIR/bench/weft-bench echo_server)
#   --out FILE     CSV file (soak-YYYYmmdd-HHMMSS.csv)
#   --port P       port (a free one between 20000 and 29999)
# Load: /work/shared/peers/bin/echo_load (ECHO_LOAD overrides); without
# it, a built-in load of shell clients (bash /dev/tcp, slower).
# Exit status: 0 flat, 1 descriptors leaked or RSS grew, 2 usage/setup.
set -eu

duration=600
interval=10
round=30
conns=50
threads=1
warmup=120
build=
server=
out=
port=
while [ $# -gt 0 ]; do
    case $1 in
    --duration) duration=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --round) round=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --server) server=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    -h|--help) sed -n '3,28p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ -z "$build" ]; then
    if [ -x ./bench/weft-bench ] || [ -x ./demos/echo_server ]; then
        build=.
    elif [ -n "${WEFT_BUILD_DIR:-}" ]; then
        build=$WEFT_BUILD_DIR
    else
        build=$(cd "$(dirname "$0")/.." && pwd)/build
    fi
fi
if [ -z "$server" ]; then
    if [ -x "$build/bench/weft-bench" ]; then
        server="$build/bench/weft-bench echo_server"
    elif [ -x "$build/demos/echo_server" ]; then
        server="$build/demos/echo_server"
    else
        echo "soak.sh: no bench/weft-bench or demos/echo_server in $build (build first, or --build DIR)" >&2
        exit 2
    fi
fi
[ -n "$out" ] || out=soak-$(date +%Y%m%d-%H%M%S).csv
[ -n "$port" ] || port=$((20000 + $$ % 10000))
load=${ECHO_LOAD:-/work/shared/peers/bin/echo_load}

# --- the server -------------------------------------------------------
# shellcheck disable=SC2086
$server "$port" >soak-server.log 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    [ -n "${loadpid:-}" ] && kill "$loadpid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
i=0
until bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "soak.sh: server did not start listening on port $port:" >&2
        cat soak-server.log >&2
        exit 2
    fi
    sleep 0.1
done

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" 2>/dev/null | wc -l; }
nthreads() { awk '/^Threads:/ {print $2}' "/proc/$pid/status"; }

sleep 1
fd0=$(fds)
rss0=$(rss)

# --- the load ---------------------------------------------------------
builtin_client() {
    # One client: connect, echo a line 50 times, close; again until told.
    while [ ! -e "$stopfile" ]; do
        bash -c "exec 3<>/dev/tcp/127.0.0.1/$port || exit 0
                 for k in \$(seq 50); do echo soak-\$k >&3; read -r l <&3 || exit 0; done
                 exec 3>&-" 2>/dev/null || true
    done
}
stopfile=$(mktemp -u "${TMPDIR:-/tmp}/soak-stop.XXXXXX")
(
    end=$(( $(date +%s) + duration ))
    while [ "$(date +%s)" -lt "$end" ]; do
        left=$(( end - $(date +%s) ))
        r=$round
        [ "$left" -lt "$r" ] && r=$left
        [ "$r" -gt 0 ] || break
        if [ -x "$load" ]; then
            "$load" 127.0.0.1 "$port" "$conns" "$r" "$threads" >>soak-load.jsonl 2>>soak-load.err || true
        else
            rm -f "$stopfile"
            k=0
            while [ $k -lt "$conns" ]; do builtin_client & k=$((k + 1)); done
            sleep "$r"
            : >"$stopfile"
            wait
        fi
    done
) &
loadpid=$!
[ -x "$load" ] && echo "load: $load ($conns connections per ${round} s round, $threads threads)" \
               || echo "load: built-in shell clients ($conns, rounds of ${round} s)"
echo "server: $server $port (pid $pid); sampling every ${interval} s for ${duration} s into $out"

echo "t_s,rss_kib,fds,threads" >"$out"
echo "0,$rss0,$fd0,$(nthreads)" >>"$out"
start=$(date +%s)
warm_rss=
warm_fds=
max_rss=$rss0
while kill -0 "$loadpid" 2>/dev/null; do
    sleep "$interval"
    kill -0 "$pid" 2>/dev/null || { echo "soak.sh: the server died" >&2; cat soak-server.log >&2; exit 1; }
    t=$(( $(date +%s) - start ))
    r=$(rss); f=$(fds); th=$(nthreads)
    echo "$t,$r,$f,$th" >>"$out"
    [ "$r" -gt "$max_rss" ] && max_rss=$r
    # Warm-up: stacks, task memory, malloc arenas and socket buffers
    # reach their working size.
    if [ -z "$warm_rss" ] && [ "$t" -ge "$warmup" ]; then
        warm_rss=$r
        warm_fds=$f
    fi
done
wait "$loadpid" 2>/dev/null || true
sleep 2 # connections closing
t=$(( $(date +%s) - start ))
rss_end=$(rss); fd_end=$(fds); th_end=$(nthreads)
echo "$t,$rss_end,$fd_end,$th_end" >>"$out"
[ -n "$warm_rss" ] || { warm_rss=$rss0; warm_fds=$fd0; }
last_loaded_rss=$(tail -n 2 "$out" | head -n 1 | cut -d, -f2)

requests=0
if [ -s soak-load.jsonl ]; then
    requests=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' soak-load.jsonl | awk '{s += $1} END {print s + 0}')
    errors=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' soak-load.jsonl | awk '{s += $1} END {print s + 0}')
    echo "load: $(wc -l <soak-load.jsonl) rounds, $requests requests, $errors errors"
fi
echo "RSS KiB: start $rss0, after warm-up (${warmup} s) $warm_rss, last under load $last_loaded_rss, end $rss_end (max $max_rss)"
echo "fds:     start $fd0 (idle), after warm-up $warm_fds (under load), end $fd_end (idle)"
echo "threads: end $th_end"

status=0
if [ "$fd_end" -gt "$fd0" ]; then
    echo "VERDICT: descriptors leaked ($fd0 before the load, $fd_end after it)"
    status=1
fi
# Flat: the last loaded sample within 10 % (+ 256 KiB) of the warm-up one.
lim=$(( warm_rss + warm_rss / 10 + 256 ))
if [ "$last_loaded_rss" -gt "$lim" ]; then
    echo "VERDICT: RSS grew after warm-up ($warm_rss -> $last_loaded_rss KiB)"
    status=1
fi
[ $status -eq 0 ] && echo "VERDICT: flat (RSS within 10 % + 256 KiB of the warm-up figure, descriptors back to $fd0)"
exit $status
