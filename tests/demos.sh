#!/bin/sh
# SPDX-License-Identifier: MIT
# Smoke test of demos/: runs every demo with its sleeps scaled down
# (WEFT_DEMO_SCALE) and compares its stdout with tests/demos/<name>.expected,
# printing a diff on mismatch. Each demo runs twice: with WEFT_WORKERS=1,
# where weft must print exactly asyncio's lines in asyncio's order (one
# worker runs ready tasks in the order they became ready), and with
# WEFT_WORKERS=4, where demos whose tasks start at the same instant may
# print those lines in any order and are compared sorted. Elapsed-time lines
# are checked against a range of tutorial seconds and then masked as N.NN.
#
# Environment: top_builddir (the demo binaries are in $top_builddir/demos)
# and top_srcdir, both set by `make check`. Every run is bounded by
# `timeout 30`. Exit status: 0 all passed, 1 a check failed, 99 hard error.
set -u

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(dirname "$0")/..}
bindir=$top_builddir/demos
expdir=$top_srcdir/tests/demos

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-demos.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 99' HUP INT TERM

if command -v timeout >/dev/null 2>&1; then
    run_limited() { timeout 30 "$@"; }
else
    run_limited() { "$@"; }
fi

n_pass=0
n_fail=0

# mask_times SCALE LO HI < output > masked
# Replaces each "<real seconds with 2 decimals> seconds" by "N.NN seconds"
# after checking that it is LO..HI tutorial seconds (real / SCALE). LO
# proves the sleeps really lasted; HI (below the sum of the sleeps) proves
# they overlapped. Fails (status 1) when a time is out of range.
mask_times() {
    awk -v scale="$1" -v lo="$2" -v hi="$3" '
        match($0, /[0-9]+\.[0-9][0-9] seconds/) {
            t = substr($0, RSTART, RLENGTH - 8) / scale
            if (t < lo || t > hi) {
                printf "elapsed %s: %.2f tutorial seconds, want %s..%s\n",
                       substr($0, RSTART, RLENGTH), t, lo, hi > "/dev/stderr"
                bad = 1
            }
            $0 = substr($0, 1, RSTART - 1) "N.NN seconds" \
                 substr($0, RSTART + RLENGTH)
        }
        { print }
        END { exit bad }'
}

# check ID EXPECTED WORKERS ORDER SCALE TIMES INPUT PROGRAM [ARGS...]
#   ID        label for the report and the temporary files
#   EXPECTED  base name of the expected file in tests/demos/
#   ORDER     exact | sorted (compare the lines sorted)
#   TIMES     "LO HI" tutorial-seconds range of elapsed-time lines, or "-"
#   INPUT     a file for stdin
check() {
    id=$1 name=$2 expected=$expdir/$2.expected workers=$3 order=$4 scale=$5 \
        times=$6 input=$7 prog=$bindir/$8
    shift 8
    out=$tmp/$id.out err=$tmp/$id.err
    why=

    if [ ! -x "$prog" ]; then
        why="$prog is missing (make builds it)"
    else
        WEFT_WORKERS=$workers WEFT_DEMO_SCALE=$scale \
            run_limited "$prog" "$@" <"$input" >"$out" 2>"$err"
        rc=$?
        if [ "$rc" -eq 124 ]; then
            why="timed out after 30 s"
        elif [ "$rc" -ne 0 ]; then
            why="exit status $rc"
        fi
    fi

    if [ -z "$why" ] && [ "$times" != - ]; then
        # shellcheck disable=SC2086 # $times is two words on purpose
        mask_times "$scale" $times <"$out" >"$out.masked" 2>>"$err" ||
            why="elapsed time out of range"
        mv "$out.masked" "$out"
    fi

    if [ -z "$why" ]; then
        if [ "$order" = sorted ]; then
            LC_ALL=C sort "$expected" >"$tmp/$id.want"
            LC_ALL=C sort "$out" >"$tmp/$id.got"
        else
            cp "$expected" "$tmp/$id.want"
            cp "$out" "$tmp/$id.got"
        fi
        if ! diff -u "$tmp/$id.want" "$tmp/$id.got" >"$tmp/$id.diff"; then
            why="stdout differs from $name.expected ($order)"
        fi
    fi

    if [ -z "$why" ]; then
        echo "PASS: $id"
        n_pass=$((n_pass + 1))
        return 0
    fi
    echo "FAIL: $id: $why"
    if [ -s "$tmp/$id.diff" ]; then
        sed 's/^/    /' "$tmp/$id.diff"
    elif [ -f "$out" ]; then
        echo "  stdout:"
        sed 's/^/    /' "$out"
    fi
    if [ -s "$err" ]; then
        echo "  stderr:"
        sed 's/^/    /' "$err"
    fi
    n_fail=$((n_fail + 1))
    return 1
}

# The worker of interactive.c must keep printing while the main task waits
# in weft_run_blocking(fgets) for input that arrives two seconds later: with
# one worker, a blocking read on it would leave a single "Working..." line.
# (Two seconds, not one: a sanitizer build on a loaded machine may take a
# good part of a second to start printing.)
check_interactive_slow() {
    id=interactive-slow-w$1
    prog=$bindir/interactive
    out=$tmp/$id.out
    if [ ! -x "$prog" ]; then
        echo "FAIL: $id: $prog is missing (make builds it)"
        n_fail=$((n_fail + 1))
        return 1
    fi
    { sleep 2; printf 'quit\n'; } |
        WEFT_WORKERS=$1 WEFT_DEMO_SCALE=0.05 run_limited "$prog" \
            >"$out" 2>"$tmp/$id.err"
    rc=$?
    n_working=$(grep -c '^Working\.\.\.$' "$out")
    uniq "$out" >"$tmp/$id.got"
    if [ "$rc" -ne 0 ]; then
        why="exit status $rc"
    elif [ "$n_working" -lt 3 ]; then
        why="only $n_working \"Working...\" lines in 2 s at 0.1 s intervals"
    elif ! diff -u "$expdir/interactive-slow.expected" "$tmp/$id.got" \
            >"$tmp/$id.diff"; then
        why="stdout (repeats collapsed) differs from interactive-slow.expected"
    else
        echo "PASS: $id ($n_working \"Working...\" lines)"
        n_pass=$((n_pass + 1))
        return 0
    fi
    echo "FAIL: $id: $why"
    sed 's/^/    /' "$tmp/$id.diff" "$out" "$tmp/$id.err" 2>/dev/null
    n_fail=$((n_fail + 1))
    return 1
}

printf 'status\nquit\n' >"$tmp/commands"

for w in 1 4; do
    # Lines of tasks started at the same instant are ordered only with one
    # worker, as on asyncio's single-threaded loop.
    if [ "$w" -eq 1 ]; then racy=exact; else racy=sorted; fi
    s=0.05
    check hello-w$w hello $w exact $s - /dev/null hello
    check await-w$w await $w exact $s - /dev/null await
    check tasks-w$w tasks $w $racy $s - /dev/null tasks
    check tasks-gather-w$w tasks $w $racy $s - /dev/null tasks --gather
    # Timed demos run at a larger scale so that "overlapped" (2 s) and
    # "sequential" (3 s) stay well apart in real time: a loaded machine
    # (make -j check, sanitizers) may wake a sleeper late by a good part of
    # a second, and only the upper bound of the overlapped run (below the
    # sum of its sleeps) can suffer from that.
    check create_task-w$w create_task $w exact 0.5 "1.95 2.9" /dev/null \
        create_task
    check create_task-sequential-w$w create_task-sequential $w exact 0.2 \
        "2.95 60" /dev/null create_task --sequential
    check gather-w$w gather $w $racy 0.2 "2.95 5.5" /dev/null gather
    check fetch-w$w fetch $w $racy $s - /dev/null fetch
    check gather_error-w$w gather_error $w exact $s - /dev/null gather_error
    check wait_for-w$w wait_for $w exact $s - /dev/null wait_for
    check cancel-w$w cancel $w exact $s - /dev/null cancel
    check event_loop-w$w event_loop $w exact $s - /dev/null event_loop
    check generator-w$w generator $w exact $s - /dev/null generator
    check semaphore-w$w semaphore $w $racy $s - /dev/null semaphore
    # The run ends at "quit", so the real 2 s interval costs nothing and
    # leaves room for exactly one "Working..." line. Sorted even with one
    # worker: weft_run_blocking() need not park when fgets() returns at
    # once, so main may print before the worker has run (asyncio always
    # suspends there); check_interactive_slow proves the worker runs.
    check interactive-w$w interactive $w sorted 1 - "$tmp/commands" \
        interactive
    check_interactive_slow $w
done

# The headline demo in its short mode, with --json: it exits 0, every line
# of its stdout is a JSON object with the promised keys (tests/demos/
# json_lines parses them strictly), every scenario has its rows, no row
# counts a failed connection and every server answered (rps > 0: no timing
# is asserted), the table names every server, and the chart is a complete
# SVG document. The measured numbers themselves are not checked.
check_throughput() {
    local json="$tmp/throughput.json" txt="$tmp/throughput.txt" svg="$tmp/throughput.svg"
    local why=
    if ! timeout 120 "$top_builddir/demos/throughput" --quick --json --svg "$svg" \
        >"$json" 2>"$txt"; then
        why="exit status $?"
    elif ! "$top_builddir/tests/demos/json_lines" <"$json" >"$tmp/json_lines.out"; then
        why="its JSON does not parse: $(cat "$tmp/json_lines.out")"
    else
        for sc in echo c10k cpu blocking; do
            grep -q "^{\"scenario\":\"$sc\"," "$json" || why="no \"$sc\" rows"
        done
        for srv in weft thread_per_conn epoll_loop; do
            [ "$(grep -c "\"server\":\"$srv\"" "$json")" -ge 2 ] ||
                why="no echo and c10k rows for $srv"
        done
        grep -v '"errors":0,' "$json" | grep -q . && why="a row counts errors"
        grep -E '"scenario":"(echo|c10k)"' "$json" | grep -q '"rps":0,' &&
            why="a server answered nothing"
        grep -q '^\[1/4\] TCP echo' "$txt" && grep -q '^\[2/4\] C10K' "$txt" &&
            grep -q '^\[3/4\] CPU work' "$txt" && grep -q '^\[4/4\] Other runtimes' "$txt" &&
            grep -q '^  weft, 1 worker ' "$txt" && grep -q '^  thread per connection ' "$txt" &&
            grep -q '^  single-threaded epoll loop ' "$txt" && grep -q '^Summary: ' "$txt" ||
            why="the table lacks a section, a server or the summary"
        grep -q '^<svg ' "$svg" && tail -1 "$svg" | grep -q '^</svg>$' ||
            why="the chart is not a complete SVG document"
    fi
    if [ -z "$why" ]; then
        echo "PASS: throughput --quick --json ($(cat "$tmp/json_lines.out"))"
        n_pass=$((n_pass + 1))
    else
        echo "FAIL: throughput --quick --json: $why"
        sed 's/^/    /' "$txt" "$json"
        n_fail=$((n_fail + 1))
    fi
}
check_throughput

# The pipeline checks its own sum and back-pressure bound (exit status).
# Its sink selects over the results, the progress notes and a timeout: the
# three notes come in order, the producer's pause (0.5 tutorial s, against
# an idle timeout of 0.1) shows as at least one idle spell (how many
# depends on timing), and the sink ends on the close of both inputs
# (-EPIPE cases). Scale 0.2: the pause stays 80 ms longer than the
# timeout, room for a loaded machine's late wake-up.
check_pipeline() {
    local w=$1 out="$tmp/pipeline-w$1.out" why=
    if ! WEFT_WORKERS=$w WEFT_DEMO_SCALE=0.2 timeout 60 "$top_builddir/demos/pipeline" 300 4 \
        >"$out" 2>&1; then
        why="exit status $?"
    elif ! grep -q '^sink received 300 results, sum of squares 9045050$' "$out"; then
        why="wrong sum"
    elif [ "$(grep '^sink: the producer has sent' "$out" | tr -cd '0-9\n' | tr '\n' ' ')" != \
        "100 200 300 " ]; then
        why="the progress notes are not 100, 200, 300"
    elif ! grep -q '^sink: idle, nothing for 0.1 s$' "$out" ||
        ! grep -q '^sink: both inputs closed; idle at least once$' "$out"; then
        why="no idle spell reported, or the sink did not end on both closes"
    fi
    if [ -z "$why" ]; then
        echo "PASS: pipeline-w$w"
        n_pass=$((n_pass + 1))
    else
        echo "FAIL: pipeline-w$w: $why"; sed 's/^/    /' "$out"
        n_fail=$((n_fail + 1))
    fi
}
# DEMOS_WORKERS: the worker counts of the second round's checks (pipeline,
# chat_server, the servers' SIGTERM), "1 4" by default.
demos_workers=${DEMOS_WORKERS:-1 4}
for w in $demos_workers; do
    check_pipeline "$w"
done

# ---------------------------------------------------------------------------
# Network demos (echo_server, http_server, http_client): each server starts
# on a free port of 127.0.0.1, serves a client, and must shut down cleanly
# on SIGINT (exit status 0, its summary printed). The servers print
# "... listening on port P (pid N)"; N is the process to signal (libtool's
# wrapper script may sit in between).

# start_server NAME: starts demos/NAME in the background; sets srv_port,
# srv_pid (the server process) and srv_job (to wait for). Fails if it does
# not say it listens within 10 s. Each run has output files of its own, and
# they are removed first: the background job creates them only when it gets
# to run, and until then the loop below would read an earlier run's port
# and pid (and signal a server long gone).
start_server() {
    srv_out=$tmp/$1-w${WEFT_WORKERS:-0}.out
    rm -f "$srv_out" "$tmp/$1-w${WEFT_WORKERS:-0}.err"
    timeout 60 "$bindir/$1" 0 127.0.0.1 >"$srv_out" 2>"$tmp/$1-w${WEFT_WORKERS:-0}.err" &
    srv_job=$!
    srv_port= srv_pid=
    i=0
    while [ $i -lt 100 ]; do
        line=$(grep 'listening on port' "$srv_out" 2>/dev/null)
        if [ -n "$line" ]; then
            srv_port=$(echo "$line" | sed 's/.*port \([0-9]*\) .*/\1/')
            srv_pid=$(echo "$line" | sed 's/.*(pid \([0-9]*\)).*/\1/')
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    kill "$srv_job" 2>/dev/null
    return 1
}

# stop_server NAME ID: SIGINT, then checks the exit status and the summary.
stop_server() {
    kill -INT "$srv_pid" 2>/dev/null
    wait "$srv_job"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        net_why="$1 exit status $rc after SIGINT"
    elif ! grep -q 'shutting down' "$srv_out" || ! grep -q '^served ' "$srv_out"; then
        net_why="$1 printed no shutdown summary"
    fi
}

net_result() { # net_result ID
    if [ -z "$net_why" ]; then
        echo "PASS: $1"
        n_pass=$((n_pass + 1))
    else
        echo "FAIL: $1: $net_why"
        for f in "$tmp"/*.out "$tmp"/*.err; do
            case $f in *echo_server*|*http_*) [ -s "$f" ] && sed "s|^|    $(basename "$f"): |" "$f" ;; esac
        done
        n_fail=$((n_fail + 1))
    fi
}

for w in 1 4; do
    export WEFT_WORKERS=$w
    net_why=
    if ! start_server http_server; then
        net_why="http_server did not start"
    else
        # Twelve fetches, at most three at a time (tutorial-3's Semaphore(3)).
        timeout 30 "$bindir/http_client" -c 3 -n 4 \
            "http://127.0.0.1:$srv_port/" "http://127.0.0.1:$srv_port/a" \
            "http://127.0.0.1:$srv_port/b/c" >"$tmp/http_client.out" \
            2>"$tmp/http_client.err" || net_why="http_client failed"
        [ -z "$net_why" ] && ! grep -q '^Fetched 12 pages$' "$tmp/http_client.out" &&
            net_why="http_client did not fetch 12 pages"
        if [ -z "$net_why" ] && command -v curl >/dev/null 2>&1; then
            body=$(curl -s --max-time 10 "http://127.0.0.1:$srv_port/")
            [ "$body" = "Hello, World!" ] || net_why="curl got \"$body\""
        fi
        # The shutdown must not wait for its clients, idle or busy: one
        # keep-alive connection stays open and quiet once it has had an
        # answer (so the server has surely accepted it), and where wrk is
        # installed eight more are busy with requests when SIGINT comes.
        # The server cancels their tasks, exits and says how many it closed.
        rm -f "$tmp/http_idle.ready"
        timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
            printf "GET / HTTP/1.1\r\nHost: weft\r\n\r\n" >&3
            IFS= read -r line <&3 || exit 1
            : >"$2"; cat <&3 >/dev/null' _ "$srv_port" "$tmp/http_idle.ready" &
        idle_job=$!
        load_job=
        if command -v wrk >/dev/null 2>&1; then
            timeout 20 wrk -t1 -c8 -d15s "http://127.0.0.1:$srv_port/" \
                >/dev/null 2>&1 &
            load_job=$!
        fi
        i=0
        while [ ! -f "$tmp/http_idle.ready" ] && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        [ -z "$net_why" ] && [ ! -f "$tmp/http_idle.ready" ] &&
            net_why="the keep-alive client got no answer within 10 s"
        [ -n "$load_job" ] && sleep 0.5 # wrk connects and loads
        stop_server http_server
        [ -z "$net_why" ] && ! grep -q 'closing [1-9][0-9]* still open' "$srv_out" &&
            net_why="http_server did not report the connections it closed"
        kill "$idle_job" $load_job 2>/dev/null
        wait "$idle_job" $load_job 2>/dev/null
    fi
    net_result net-http-w$w

    net_why=
    if ! command -v bash >/dev/null 2>&1; then
        echo "SKIP: net-echo-w$w (bash, for /dev/tcp, is missing)"
    elif ! start_server echo_server; then
        net_why="echo_server did not start"
        net_result net-echo-w$w
    else
        got=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
            printf "hello weft\n" >&3; IFS= read -r line <&3; echo "$line"' _ "$srv_port")
        [ "$got" = "hello weft" ] || net_why="echo_server answered \"$got\""
        # A client that stays connected and quiet: the shutdown must cancel
        # its connection task rather than wait for it (the client then sees
        # the end of the stream and exits). It first has one line echoed,
        # so that the server has surely accepted it (a connection still in
        # the backlog at the SIGINT would not be counted), then says so.
        rm -f "$tmp/idle.ready"
        timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
            printf "still here\n" >&3; IFS= read -r line <&3 || exit 1
            : >"$2"; read -r -t 15 x <&3' _ "$srv_port" "$tmp/idle.ready" &
        idle_job=$!
        i=0
        while [ ! -f "$tmp/idle.ready" ] && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        [ -z "$net_why" ] && [ ! -f "$tmp/idle.ready" ] &&
            net_why="the idle client was not echoed within 10 s"
        stop_server echo_server
        # 1: the idle connection; 2 if the first client's end of stream had
        # not been handled yet either (a loaded machine).
        [ -z "$net_why" ] && ! grep -Eq 'closing [12] still open' "$srv_out" &&
            net_why="echo_server did not report the idle connection it closed"
        kill "$idle_job" 2>/dev/null
        wait "$idle_job" 2>/dev/null
        net_result net-echo-w$w
    fi
done
unset WEFT_WORKERS

# ---------------------------------------------------------------------------
# stuck: a mutex held forever by 'client-7' among 300 clients. With
# WEFT_DUMP_SIGNAL=QUIT one `kill -QUIT` must write a summary to stderr
# naming the holder (the waiters' group says "held by task K", and task K
# is client-7's group) with both stacks, while the demo keeps running;
# closing its stdin then ends it cleanly (client-7 cancelled, every other
# client served).
for w in 1 4; do
    why=
    in=$tmp/stuck-w$w.in out=$tmp/stuck-w$w.out err=$tmp/stuck-w$w.err
    rm -f "$in" "$out" "$err"
    if [ ! -x "$bindir/stuck" ]; then
        why="$bindir/stuck is missing (make builds it)"
    elif ! mkfifo "$in"; then
        why="mkfifo failed"
    else
        WEFT_WORKERS=$w WEFT_DUMP_SIGNAL=QUIT timeout 30 "$bindir/stuck" 300 \
            <"$in" >"$out" 2>"$err" &
        job=$!
        exec 4>"$in" # stdin stays open until we close it
        pid=
        i=0
        while [ -z "$pid" ] && [ $i -lt 100 ]; do
            pid=$(sed -n 's/.*all waiting for the room (pid \([0-9]*\)).*/\1/p' "$out" 2>/dev/null)
            [ -n "$pid" ] || sleep 0.1
            i=$((i + 1))
        done
        if [ -z "$pid" ]; then
            why="stuck did not say that its clients wait"
        else
            kill -QUIT "$pid"
            i=0
            while ! grep -q 'at demo_main\|task 1 at' "$err" 2>/dev/null && [ $i -lt 100 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            holder=$(sed -n "s/.*\] task \([0-9]*\) 'client-7'.*/\1/p" "$err")
            if ! grep -q '^weft: dump on signal' "$err"; then
                why="no dump on stderr after SIGQUIT"
            elif [ -z "$holder" ]; then
                why="the dump has no group for client-7"
            elif ! grep -Eq "^  299 tasks \[parked, waits on mutex 0x[0-9a-f]+ held by task $holder[,]" "$err"; then
                why="the dump does not show 299 waiters on the mutex held by task $holder"
            fi
            # file:line only where libdw reads the line table (it reads
            # gcc's; clang 14's DWARF 5 tables come back without lines).
            fileline=
            grep -Eq ' \(?[a-z_]+\.c:[0-9]+' "$err" && fileline=' stuck\.c:[0-9]+'
            if [ -n "$why" ]; then
                :
            elif grep -q 'stacks: libdw' "$err" &&
                { ! grep -q " wait_for_room+0x" "$err" || ! grep -q " await_ack" "$err" ||
                  ! grep -Eq "held by task $holder, .*\] at wait_for_room$fileline" "$err"; }; then
                why="the dump lacks the waiters' or the holder's stack"
            fi
        fi
        exec 4>&-
        wait "$job"
        rc=$?
        [ -z "$why" ] && [ "$rc" -ne 0 ] && why="exit status $rc"
        [ -z "$why" ] && ! grep -q '^stuck: room unstuck, 300 posts, 0 clients failed$' "$out" &&
            why="stuck did not end cleanly"
    fi
    if [ -z "$why" ]; then
        echo "PASS: stuck-w$w"
        n_pass=$((n_pass + 1))
    else
        echo "FAIL: stuck-w$w: $why"
        for f in "$out" "$err"; do
            [ -s "$f" ] && head -40 "$f" | sed "s|^|    $(basename "$f"): |"
        done
        n_fail=$((n_fail + 1))
    fi
done

# ---------------------------------------------------------------------------
# Server building blocks (issue 17): udp_echo, unix_service, tcp_proxy on
# weft_copy, line_server on weft_reader, each driven by a scripted client
# and stopped with SIGINT (exit status 0, summary printed).

# bg_start ID PROG ARGS...: starts demos/PROG in the background; sets
# bg_port (when it printed one), bg_pid, bg_job, bg_out. Fails when it does
# not say it listens within 10 s.
bg_start() {
    bg_id=$1 bg_out=$tmp/$1.out
    shift
    rm -f "$bg_out" "$tmp/$bg_id.err"
    prog=$1
    shift
    timeout 60 "$bindir/$prog" "$@" >"$bg_out" 2>"$tmp/$bg_id.err" &
    bg_job=$!
    bg_port= bg_pid=
    i=0
    while [ $i -lt 100 ]; do
        line=$(grep 'listening on' "$bg_out" 2>/dev/null)
        if [ -n "$line" ]; then
            bg_port=$(echo "$line" | sed -n 's/.*port \([0-9]*\) .*/\1/p')
            bg_pid=$(echo "$line" | sed 's/.*(pid \([0-9]*\)).*/\1/')
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    kill "$bg_job" 2>/dev/null
    return 1
}

# bg_stop [SIG]: SIGINT (or SIG) to the last bg_start'ed server; sets
# srv_why on failure.
bg_stop() {
    sig=${1:-INT}
    kill -"$sig" "$bg_pid" 2>/dev/null
    wait "$bg_job"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        srv_why="$bg_id exit status $rc after SIG$sig"
    elif ! grep -q 'shutting down' "$bg_out" || ! grep -q '^served ' "$bg_out"; then
        srv_why="$bg_id printed no shutdown summary"
    fi
}

srv_result() { # srv_result ID
    if [ -z "$srv_why" ]; then
        echo "PASS: $1"
        n_pass=$((n_pass + 1))
    else
        echo "FAIL: $1: $srv_why"
        for f in "$tmp"/srv-*.out "$tmp"/srv-*.err; do
            [ -s "$f" ] && sed "s|^|    $(basename "$f"): |" "$f"
        done
        n_fail=$((n_fail + 1))
    fi
}

for w in 1 4; do
    export WEFT_WORKERS=$w

    # UDP: three datagrams echoed, in order, then the server's count.
    srv_why=
    if ! bg_start srv-udp-w$w udp_echo 0 127.0.0.1; then
        srv_why="udp_echo did not start"
    else
        got=$(timeout 20 "$bindir/udp_echo" --client 127.0.0.1 "$bg_port" one "two words" three 2>&1)
        want=$(printf 'one\ntwo words\nthree')
        [ "$got" = "$want" ] || srv_why="udp_echo client printed \"$got\""
        bg_stop
        [ -z "$srv_why" ] && ! grep -q '^served 3 datagrams, 17 bytes$' "$bg_out" &&
            srv_why="udp_echo server did not count 3 datagrams"
    fi
    srv_result demo-udp-echo-w$w

    # Unix socket: two clients; a second server on the same path refuses;
    # a server killed with SIGKILL leaves its file, which the next one
    # replaces; an abstract name has no file at all.
    srv_why=
    sock=$tmp/svc-w$w.sock
    if ! bg_start srv-unix-w$w unix_service "$sock"; then
        srv_why="unix_service did not start"
    else
        got=$(timeout 20 "$bindir/unix_service" --client "$sock" hello "weft here" 2>&1)
        [ "$got" = "$(printf 'client 1: HELLO\nclient 1: WEFT HERE')" ] ||
            srv_why="unix_service client printed \"$got\""
        if [ -z "$srv_why" ]; then
            got=$(timeout 20 "$bindir/unix_service" --client "$sock" again 2>&1)
            [ "$got" = "client 2: AGAIN" ] || srv_why="second client printed \"$got\""
        fi
        if [ -z "$srv_why" ] && timeout 20 "$bindir/unix_service" "$sock" \
                >"$tmp/srv-unix2.out" 2>&1; then
            srv_why="a second server started on a live socket"
        fi
        [ -z "$srv_why" ] && ! grep -q 'address already in use' "$tmp/srv-unix2.out" &&
            srv_why="the second server did not say the address is in use"
        bg_stop
        [ -z "$srv_why" ] && [ -e "$sock" ] && srv_why="unix_service left its socket file"
    fi
    if [ -z "$srv_why" ]; then
        if ! bg_start srv-unix-kill-w$w unix_service "$sock"; then
            srv_why="unix_service did not start the second time"
        else
            kill -KILL "$bg_pid" 2>/dev/null
            wait "$bg_job" 2>/dev/null
            if [ ! -S "$sock" ]; then
                srv_why="a killed server left no socket file (test cannot check stale files)"
            elif ! bg_start srv-unix-stale-w$w unix_service "$sock"; then
                srv_why="unix_service did not replace the stale socket file"
            else
                got=$(timeout 20 "$bindir/unix_service" --client "$sock" stale 2>&1)
                [ "$got" = "client 1: STALE" ] || srv_why="after the stale file: \"$got\""
                bg_stop
            fi
        fi
    fi
    if [ -z "$srv_why" ]; then
        name="@weft-demo-$$-w$w"
        if ! bg_start srv-unix-abs-w$w unix_service "$name"; then
            srv_why="unix_service did not start on $name"
        else
            got=$(timeout 20 "$bindir/unix_service" --client "$name" abstract 2>&1)
            [ "$got" = "client 1: ABSTRACT" ] || srv_why="abstract client printed \"$got\""
            bg_stop
        fi
    fi
    rm -f "$sock"
    srv_result demo-unix-service-w$w

    # Proxy: an echo through tcp_proxy to echo_server, then a quiet
    # connection that the proxy closes after its 0.5 s idle time.
    srv_why=
    if ! bg_start srv-proxy-echo-w$w echo_server 0 127.0.0.1; then
        srv_why="echo_server (the proxy's target) did not start"
        srv_result demo-tcp-proxy-w$w
        continue
    fi
    echo_pid=$bg_pid echo_job=$bg_job echo_port=$bg_port
    if ! bg_start srv-proxy-w$w tcp_proxy 0 127.0.0.1 127.0.0.1 "$echo_port" 0.5; then
        srv_why="tcp_proxy did not start"
    else
        got=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
            printf "through the proxy\n" >&3; IFS= read -r line <&3; echo "$line"' _ "$bg_port")
        [ "$got" = "through the proxy" ] || srv_why="through tcp_proxy: \"$got\""
        # A client that says nothing: the proxy ends it (end of stream)
        # well before the 10 s limit.
        if [ -z "$srv_why" ]; then
            timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1; cat <&3 >/dev/null' \
                _ "$bg_port" || srv_why="tcp_proxy did not close an idle connection"
        fi
        bg_stop
        [ -z "$srv_why" ] && ! grep -q '(1 closed idle)' "$bg_out" &&
            srv_why="tcp_proxy did not count the idle connection"
        [ -z "$srv_why" ] && ! grep -q '18 bytes up, 18 down' "$bg_out" &&
            srv_why="tcp_proxy did not count 18 bytes each way"
    fi
    kill -INT "$echo_pid" 2>/dev/null
    wait "$echo_job"
    srv_result demo-tcp-proxy-w$w

    # Line protocol: commands split at odd places (a line across writes),
    # CRLF, an over-long line, QUIT.
    srv_why=
    if ! bg_start srv-line-w$w line_server 0 127.0.0.1; then
        srv_why="line_server did not start"
    else
        got=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
            printf "PI" >&3; sleep 0.2; printf "NG\r\nECHO hi" >&3; sleep 0.2
            printf " there\nADD 2 40\n%0300d\nBOGUS\nQUIT\nPING\n" 0 >&3
            cat <&3' _ "$bg_port")
        want=$(printf 'PONG\nhi there\n42\nERR line too long\nERR unknown command\nBYE')
        [ "$got" = "$want" ] || srv_why="line_server answered \"$got\""
        bg_stop
        [ -z "$srv_why" ] && ! grep -q '^served 1 connections, 5 commands' "$bg_out" &&
            srv_why="line_server did not count 5 commands"
    fi
    srv_result demo-line-server-w$w
done
unset WEFT_WORKERS

# ---------------------------------------------------------------------------
# Issue 16: echo_server and http_server stop on SIGTERM as well (exit status
# 0, summary), through weft_signal_wait; chat_server's broadcast.

for w in $demos_workers; do
    export WEFT_WORKERS=$w
    for prog in echo_server http_server; do
        srv_why=
        if ! bg_start srv-term-$prog-w$w "$prog" 0 127.0.0.1; then
            srv_why="$prog did not start"
        else
            bg_stop TERM
            [ -z "$srv_why" ] && ! grep -q '^got Terminated, shutting down$' "$bg_out" &&
                srv_why="$prog did not say it got SIGTERM"
        fi
        srv_result demo-$prog-sigterm-w$w
    done
done
unset WEFT_WORKERS

# wait_line FILE PATTERN: up to 20 s for a line matching PATTERN in FILE.
wait_line() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        [ $i -ge 200 ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
}

# chat_server: guest 1 connects and never reads; guest 2 reads everything;
# guest 3 sends 5000 lines of 100 bytes (in bursts of 50, 10 ms apart: a
# chat, not a flood that would outrun a reader's queue of 256) and "done".
# Guest 1's socket buffers and queue fill up long before the end, so the
# broadcaster disconnects it: its connection then reaches end of stream
# once it reads. Guest 2 must have every line of guest 3, in order, and
# guest 2 and 3 the goodbye at SIGTERM; then exit status 0 and the summary.
check_chat() {
    w=$1 d=$tmp/chat-w$1
    export WEFT_WORKERS=$w
    srv_why=
    rm -f "$d".*
    if ! bg_start srv-chat-w$w chat_server 0 127.0.0.1; then
        srv_why="chat_server did not start"
        srv_result demo-chat-server-w$w
        return
    fi
    timeout 60 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
        while [ ! -f "$2" ]; do sleep 0.1; done; cat <&3 >/dev/null' \
        _ "$bg_port" "$d.drain" &
    slow_job=$!
    wait_line "$bg_out" '^guest 1 joined$' || srv_why="guest 1 was not seen joining"
    timeout 60 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1; cat <&3' \
        _ "$bg_port" >"$d.reader" &
    reader_job=$!
    wait_line "$bg_out" '^guest 2 joined$' || srv_why="guest 2 was not seen joining"
    timeout 60 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
        i=1
        while [ $i -le 5000 ]; do
            printf "line %d %090d\n" $i 0 >&3
            [ $((i % 50)) -eq 0 ] && sleep 0.01
            i=$((i + 1))
        done
        printf "done\n" >&3; cat <&3' _ "$bg_port" >"$d.talker" &
    talker_job=$!
    [ -z "$srv_why" ] && ! wait_line "$d.reader" '^guest 3: done$' &&
        srv_why="guest 2 did not get guest 3's last line"
    [ -z "$srv_why" ] && ! wait_line "$bg_out" '^guest 1 dropped: ' &&
        srv_why="the slow guest 1 was not dropped"
    # Guest 1 now reads: what the kernel had buffered, then end of stream.
    : >"$d.drain"
    wait "$slow_job" || { [ -z "$srv_why" ] && srv_why="the slow client was not disconnected"; }
    bg_stop TERM
    wait "$reader_job" "$talker_job"
    if [ -n "$srv_why" ]; then
        :
    elif ! awk '$1 == "guest" && $2 == "3:" { if ($3 == "done") done = 1
                    else if ($3 != "line" || $4 != ++n) bad = 1 }
                END { exit (bad || !done || n != 5000) }' "$d.reader"; then
        srv_why="guest 2 did not get guest 3's 5000 lines in order"
    elif [ "$(tail -n 1 "$d.reader")" != "* server shutting down" ] ||
        [ "$(tail -n 1 "$d.talker")" != "* server shutting down" ]; then
        srv_why="a client did not get the goodbye last"
    elif grep -q '^guest [23] dropped' "$bg_out"; then
        srv_why="a reading client was dropped"
    elif ! grep -q '^served 3 clients, 5001 messages, 1 slow clients dropped$' "$bg_out"; then
        srv_why="chat_server's summary is wrong"
    fi
    if [ -n "$srv_why" ]; then
        for f in "$d.reader" "$d.talker"; do
            [ -s "$f" ] && grep -v '^guest 3: line' "$f" | head -20 | sed "s|^|    $(basename "$f"): |"
        done
    fi
    srv_result demo-chat-server-w$w
    unset WEFT_WORKERS
}
for w in $demos_workers; do
    check_chat "$w"
done

echo "demos: $n_pass passed, $n_fail failed"
[ "$n_fail" -eq 0 ]
