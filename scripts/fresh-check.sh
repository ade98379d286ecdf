#!/bin/sh
# SPDX-License-Identifier: MIT
# Repeats the README's promise on a fresh Debian 12: in a new minimal root
# file system (debootstrap --variant=minbase bookworm) with only gcc and
# make installed, a fresh clone runs the quick start's two commands in
# both orders, each order in a root of its own:
#   A: ./scripts/demo.sh, then ./scripts/test.sh
#   B: ./scripts/test.sh, then ./scripts/demo.sh
# and then, in root A, `make install`, `ldconfig`, and the README's example
# (the first ```c block of README.md) compiled with the README's command
# line (its line starting "cc -std=c11 example.c") and run; its output must
# be the four lines the example prints.
#
# Needs root, debootstrap (apt-get install debootstrap) and a Debian
# mirror. Leaves the roots in WORK (rerun with KEEP_ROOTS=0 to remove them
# at the end); their logs are WORK/A.log and WORK/B.log.
#
# Usage: scripts/fresh-check.sh [WORK-DIR]      (default: /var/tmp/weft-fresh)
# Environment: WEFT_REPO (what to clone; default: this repository),
#   WEFT_BRANCH (default: the current branch), MIRROR (default
#   http://deb.debian.org/debian), DEMO_ARGS (arguments of demo.sh, e.g.
#   "throughput --quick" for a shorter run; default: none, as in the README),
#   ORDERS (default "A B"), PRISTINE (an existing minbase root to copy
#   instead of WORK/pristine; it is never modified).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/weft-fresh}
repo=${WEFT_REPO:-$top}
branch=${WEFT_BRANCH:-$(git -C "$top" rev-parse --abbrev-ref HEAD)}
mirror=${MIRROR:-http://deb.debian.org/debian}
orders=${ORDERS:-A B}
demo_args=${DEMO_ARGS:-}

[ "$(id -u)" -eq 0 ] || { echo "fresh-check: must run as root (chroot, mount)" >&2; exit 2; }
command -v debootstrap >/dev/null 2>&1 ||
    { echo "fresh-check: apt-get install debootstrap first" >&2; exit 2; }
mkdir -p "$work"

# One pristine root, copied for each order.
pristine=${PRISTINE:-$work/pristine}
if [ ! -x "$pristine/bin/sh" ]; then
    echo "== debootstrap --variant=minbase bookworm $pristine"
    debootstrap --variant=minbase bookworm "$pristine" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log"; exit 1; }
fi

mounted=""
cleanup() {
    for m in $mounted; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# in_root ROOT COMMAND: runs COMMAND with sh -c as root inside ROOT, with
# only the kernel file systems a machine has (and the host's resolver, for
# apt). PATH is Debian's default for root.
in_root() {
    env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        chroot "$1" /bin/sh -c "$2"
}

prepare() { # prepare NAME: a fresh copy of the pristine root, gcc and make, a clone
    root=$work/$1
    rm -rf "$root"
    cp -a "$pristine" "$root"
    for fs in proc sys dev dev/pts; do
        mkdir -p "$root/$fs"
        case $fs in
        proc) mount -t proc proc "$root/proc" ;;
        sys) mount -t sysfs sys "$root/sys" ;;
        dev) mount --bind /dev "$root/dev" ;;
        dev/pts) mount --bind /dev/pts "$root/dev/pts" ;;
        esac
        mounted="$root/$fs $mounted"
    done
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    in_root "$root" 'export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc make >/dev/null'
    git clone -q --branch "$branch" "$repo" "$root/root/weft"
    echo "== $1: $(in_root "$root" 'gcc --version | head -1; make --version | head -1' | tr '\n' ' ')"
}

fail=0
for order in $orders; do
    log=$work/$order.log
    prepare "$order" >"$log" 2>&1 || { echo "FAIL: $order: setting up the root (see $log)"; fail=1; continue; }
    case $order in
    A) cmds="./scripts/demo.sh $demo_args && ./scripts/test.sh" ;;
    B) cmds="./scripts/test.sh && ./scripts/demo.sh $demo_args" ;;
    *) echo "fresh-check: unknown order $order" >&2; exit 2 ;;
    esac
    echo "== $order: $cmds (log: $log)"
    if in_root "$work/$order" "cd /root/weft && $cmds" >>"$log" 2>&1; then
        echo "PASS: $order: $cmds"
    else
        echo "FAIL: $order: $cmds"; tail -30 "$log"; fail=1
        continue
    fi
    if [ "$order" = A ]; then
        # The README's install sequence and example, as a user types them.
        awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on' \
            "$work/A/root/weft/README.md" >"$work/A/root/example.c"
        grep '^cc -std=c11 example.c' "$work/A/root/weft/README.md" | head -n 1 \
            >"$work/A/root/build-example.sh"
        echo "== A: make install; ldconfig; $(cat "$work/A/root/build-example.sh"); ./example"
        if in_root "$work/A" 'cd /root/weft/build && make install >/dev/null && ldconfig &&
            cd /root && sh -ex build-example.sh && ./example' >"$work/A.example" 2>>"$log" &&
            printf 'fetched 1\nfetched 2\nfetched 3\nsum 6 after ~0.3 s, not 0.6 s\n' |
                cmp -s - "$work/A.example"; then
            echo "PASS: A: the installed example prints what the README says"
        else
            echo "FAIL: A: the README example:"; cat "$work/A.example"; tail -20 "$log"; fail=1
        fi
    fi
done
cleanup
mounted=""
if [ "${KEEP_ROOTS:-1}" = 0 ]; then
    for order in $orders; do rm -rf "${work:?}/$order"; done
fi
[ $fail -eq 0 ] && echo "fresh-check: all passed" || echo "fresh-check: FAILED"
exit $fail
