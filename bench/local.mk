# SPDX-License-Identifier: MIT
# bench/weft-bench: the BENCH.md workloads. Built by `make`, run by
# `make bench`, never by `make check`.
noinst_PROGRAMS += bench/weft-bench
bench_weft_bench_SOURCES = bench/weft-bench.c
bench_weft_bench_LDADD = lib/libweft.la
# libtool's -static links the uninstalled libweft into the program, so
# bench/weft-bench is the real binary (not a libtool wrapper script) and
# WEFT_BENCH can point straight at it from ../shared/peers/run.sh.
bench_weft_bench_LDFLAGS = -static
EXTRA_DIST += bench/run.sh bench/conns.sh
# udp_echo and file_read against Tokio and Go (bench/peers/run.sh builds
# the twins offline from Debian packages and runs them side by side).
EXTRA_DIST += bench/peers/run.sh bench/peers/go/go.mod bench/peers/go/main.go \
	bench/peers/rust/Cargo.toml bench/peers/rust/Cargo.lock \
	bench/peers/rust/.cargo/config.toml bench/peers/rust/src/main.rs

# `make bench`: every micro workload once, as a table. BENCH_ARGS passes
# options to bench/run.sh, e.g. `make bench BENCH_ARGS="--runs 3 --peers"`.
BENCH_ARGS =
.PHONY: bench
bench: bench/weft-bench$(EXEEXT)
	$(SHELL) $(srcdir)/bench/run.sh --bin ./bench/weft-bench$(EXEEXT) $(BENCH_ARGS)
