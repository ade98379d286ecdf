#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# udp_echo, file_read, select and timers_churn side by side: weft-bench against
# its twins here, Tokio (UdpSocket, tokio::fs, tokio::time::timeout) and Go
# (net.UDPConn, os.File), built offline
# from Debian's packages (golang-go, librust-tokio-dev: the crates under
# /usr/share/cargo/registry) the way ../shared/peers/run.sh builds its
# peers. Runs each benchmark RUNS times, the runtimes interleaved, and
# prints the medians and their ratios to weft.
#
#   bench/peers/run.sh [--bin PATH/weft-bench] [--runs N] [--install]
#                      [--benches udp_echo,file_read,select,timers_churn]
#
# UDP_ECHO_N (round trips, default 200000), FILE_READ_N (64 KiB reads,
# default 32768), SELECT_N and TIMERS_CHURN_N (round trips, default
# 1000000) set the sizes. Build outputs go to bench/peers/bin and
# .cache (not in git).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BINDIR=$HERE/bin
WEFT=""
RUNS=3
INSTALL=0
BENCHES="udp_echo file_read select timers_churn"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) WEFT=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --install) INSTALL=1 ;;
        --benches) BENCHES=$(echo "$2" | tr , ' '); shift ;;
        -h|--help) sed -n '3,17p' "$0"; exit 0 ;;
        *) echo "bench/peers/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -z "$WEFT" ] && for b in ./bench/weft-bench "$HERE/../weft-bench"; do
    [ -x "$b" ] && { WEFT=$b; break; }
done
[ -x "$WEFT" ] || { echo "bench/peers/run.sh: weft-bench not found (make; or --bin)" >&2; exit 2; }
log() { echo "[peers] $*" >&2; }

if [ "$INSTALL" = 1 ]; then
    apt-get update -q >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-go librust-tokio-dev >/dev/null ||
        { log "apt-get install failed"; exit 1; }
fi
mkdir -p "$BINDIR"
newer() { local t=$1; shift; [ -e "$t" ] || return 0; local s; for s in "$@"; do [ "$s" -nt "$t" ] && return 0; done; return 1; }
if command -v go >/dev/null; then
    if newer "$BINDIR/go_io_peer" "$HERE/go/main.go" "$HERE/go/go.mod"; then
        log "building go_io_peer ($(go version))"
        (cd "$HERE/go" && GOCACHE=$HERE/.cache/go-build GOPATH=$HERE/.cache/gopath GOPROXY=off \
            GOFLAGS=-mod=mod go build -o "$BINDIR/go_io_peer" .) || log "go build FAILED"
    fi
else
    log "go not found (apt-get install golang-go, or --install): no Go column"
fi
if command -v cargo >/dev/null && [ -d /usr/share/cargo/registry ]; then
    if newer "$BINDIR/tokio_io_peer" "$HERE/rust/src/main.rs" "$HERE/rust/Cargo.toml"; then
        log "building tokio_io_peer ($(cargo --version))"
        (cd "$HERE/rust" && cargo build --release --offline -q) &&
            cp "$HERE/rust/target/release/tokio_io_peer" "$BINDIR/" || log "cargo build FAILED"
    fi
else
    log "cargo or /usr/share/cargo/registry missing (librust-tokio-dev, or --install): no Tokio column"
fi

RUNTIMES="weft"
[ -x "$BINDIR/tokio_io_peer" ] && RUNTIMES="$RUNTIMES tokio"
[ -x "$BINDIR/go_io_peer" ] && RUNTIMES="$RUNTIMES go"
cmd_of() { case "$1" in weft) echo "$WEFT" ;; tokio) echo "$BINDIR/tokio_io_peer" ;; go) echo "$BINDIR/go_io_peer" ;; esac; }

OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
status=0
for bench in $BENCHES; do
    case $bench in
        udp_echo) n=${UDP_ECHO_N:-200000} ;;
        file_read) n=${FILE_READ_N:-32768} ;;
        select) n=${SELECT_N:-1000000} ;;
        timers_churn) n=${TIMERS_CHURN_N:-1000000} ;;
        *) log "unknown benchmark $bench"; exit 2 ;;
    esac
    for r in $(seq 1 "$RUNS"); do
        for rt in $RUNTIMES; do
            # select has no Tokio twin (tokio::select! is a different shape),
            # timers_churn no Go one (the issue compares it with Tokio's
            # tokio::time::timeout).
            [ "$bench" = select ] && [ "$rt" = tokio ] && continue
            [ "$bench" = timers_churn ] && [ "$rt" = go ] && continue
            line=$(timeout 120 $(cmd_of "$rt") "$bench" "$n")
            echo "$line" >>"$OUT"
            echo "$line" | grep -q '"ok":true' || { log "$rt $bench run $r: ${line:-failed}"; status=1; }
        done
    done
done
# Medians per runtime and benchmark, and each as a ratio to weft's.
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = {"udp_echo": "datagrams_per_s", "file_read": "mib_per_s", "select": "ns_per_op",
        "timers_churn": "ns_per_op"}
for bench, key in keys.items():
    by = {}
    for r in rows:
        if r.get("bench") == bench and r.get("ok"):
            by.setdefault(r["runtime"], []).append(float(r[key]))
    if "weft" not in by:
        continue
    w = statistics.median(by["weft"])
    print(f"{bench} ({key}, median of {len(by['weft'])})")
    for rt, v in by.items():
        m = statistics.median(v)
        print(f"  {rt:6} {m:12.1f}   weft/{rt} = {w / m:5.2f}x   runs: {' '.join(f'{x:.0f}' for x in v)}")
PY
exit $status
