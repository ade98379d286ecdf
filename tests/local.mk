# SPDX-License-Identifier: MIT
# One Check program per module. Unit tests link libweft-core.la (internals);
# API tests link libweft.la and include only <weft.h>.
TEST_EXTENSIONS = .sh
AM_TESTS_ENVIRONMENT = CK_DEFAULT_TIMEOUT=60; export CK_DEFAULT_TIMEOUT; \
	top_builddir=$(top_builddir); top_srcdir=$(top_srcdir); export top_builddir top_srcdir;
SH_LOG_COMPILER = $(SHELL)

if HAVE_CHECK
tests_unit_cflags = $(AM_CFLAGS) $(CHECK_CFLAGS) -I$(top_srcdir)/tests
tests_api_cflags = $(AM_CFLAGS) $(CHECK_CFLAGS) -I$(top_srcdir)/tests
tests_unit_ldadd = tests/libharness.la lib/libweft-core.la $(CHECK_LIBS)
tests_api_ldadd = tests/libharness.la lib/libweft.la $(CHECK_LIBS)

noinst_LTLIBRARIES += tests/libharness.la
tests_libharness_la_SOURCES = tests/harness.c tests/harness.h
tests_libharness_la_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

# --- unit tests (internals) ---
check_PROGRAMS += tests/unit/deque_test tests/unit/context_test
tests_unit_deque_test_SOURCES = tests/unit/deque_test.c
tests_unit_deque_test_CFLAGS = $(tests_unit_cflags)
tests_unit_deque_test_LDADD = $(tests_unit_ldadd)
tests_unit_context_test_SOURCES = tests/unit/context_test.c
tests_unit_context_test_CFLAGS = $(tests_unit_cflags)
tests_unit_context_test_LDADD = $(tests_unit_ldadd)
check_PROGRAMS += tests/unit/timer_test
tests_unit_timer_test_SOURCES = tests/unit/timer_test.c
tests_unit_timer_test_CFLAGS = $(tests_unit_cflags)
tests_unit_timer_test_LDADD = $(tests_unit_ldadd)
check_PROGRAMS += tests/unit/poller_test
tests_unit_poller_test_SOURCES = tests/unit/poller_test.c
tests_unit_poller_test_CFLAGS = $(tests_unit_cflags)
tests_unit_poller_test_LDADD = $(tests_unit_ldadd)
# sched: the idle protocol (plain threads as workers), the inject queue,
# wait queues (plain-thread and task waiters).
check_PROGRAMS += tests/unit/idle_test tests/unit/inject_test tests/unit/wait_test
tests_unit_idle_test_SOURCES = tests/unit/idle_test.c
tests_unit_idle_test_CFLAGS = $(tests_unit_cflags)
tests_unit_idle_test_LDADD = $(tests_unit_ldadd) -lpthread
tests_unit_inject_test_SOURCES = tests/unit/inject_test.c
tests_unit_inject_test_CFLAGS = $(tests_unit_cflags)
tests_unit_inject_test_LDADD = $(tests_unit_ldadd) -lpthread
tests_unit_wait_test_SOURCES = tests/unit/wait_test.c
tests_unit_wait_test_CFLAGS = $(tests_unit_cflags)
tests_unit_wait_test_LDADD = $(tests_unit_ldadd) -lpthread

# --- API tests (the public contract) ---
check_PROGRAMS += tests/api/runtime_test tests/api/task_test tests/api/reliability_test
tests_api_reliability_test_SOURCES = tests/api/reliability_test.c
tests_api_reliability_test_CFLAGS = $(tests_api_cflags)
tests_api_reliability_test_LDADD = $(tests_api_ldadd)
tests_api_runtime_test_SOURCES = tests/api/runtime_test.c
tests_api_runtime_test_CFLAGS = $(tests_api_cflags)
tests_api_runtime_test_LDADD = $(tests_api_ldadd)
tests_api_task_test_SOURCES = tests/api/task_test.c
tests_api_task_test_CFLAGS = $(tests_api_cflags)
tests_api_task_test_LDADD = $(tests_api_ldadd) -lm
# deadline, group: time, timeouts, shield, scopes; gather, wait_any, groups.
check_PROGRAMS += tests/api/deadline_test tests/api/group_test
tests_api_deadline_test_SOURCES = tests/api/deadline_test.c
tests_api_deadline_test_CFLAGS = $(tests_api_cflags)
tests_api_deadline_test_LDADD = $(tests_api_ldadd)
tests_api_group_test_SOURCES = tests/api/group_test.c
tests_api_group_test_CFLAGS = $(tests_api_cflags)
tests_api_group_test_LDADD = $(tests_api_ldadd)
# sync, chan, gen: semaphore/mutex/event, channels, async generators.
check_PROGRAMS += tests/api/sync_test tests/api/chan_test tests/api/gen_test
tests_api_sync_test_SOURCES = tests/api/sync_test.c
tests_api_sync_test_CFLAGS = $(tests_api_cflags)
tests_api_sync_test_LDADD = $(tests_api_ldadd)
tests_api_chan_test_SOURCES = tests/api/chan_test.c
tests_api_chan_test_CFLAGS = $(tests_api_cflags)
tests_api_chan_test_LDADD = $(tests_api_ldadd)
tests_api_gen_test_SOURCES = tests/api/gen_test.c
check_PROGRAMS += tests/api/select_test
tests_api_select_test_SOURCES = tests/api/select_test.c
tests_api_select_test_CFLAGS = $(tests_api_cflags)
tests_api_select_test_LDADD = $(tests_api_ldadd) -lpthread
tests_api_gen_test_CFLAGS = $(tests_api_cflags)
tests_api_gen_test_LDADD = $(tests_api_ldadd)

# sched: many workers (2, 16, 64): idle cost, stranded tasks, sleepers.
check_PROGRAMS += tests/api/sched_test
tests_api_sched_test_SOURCES = tests/api/sched_test.c
tests_api_sched_test_CFLAGS = $(tests_api_cflags)
tests_api_sched_test_LDADD = $(tests_api_ldadd) -lpthread

check_PROGRAMS += tests/api/guard_test
tests_api_guard_test_SOURCES = tests/api/guard_test.c
tests_api_guard_test_CFLAGS = $(tests_api_cflags) $(WEFT_NO_STACK_CLASH)
tests_api_guard_test_LDADD = $(tests_api_ldadd)
if HAVE_STACK_CLASH
# The same source with stack-clash probes: frames larger than the gap.
check_PROGRAMS += tests/api/guard_clash_test
tests_api_guard_clash_test_SOURCES = tests/api/guard_test.c
tests_api_guard_clash_test_CFLAGS = $(tests_api_cflags) $(WEFT_STACK_CLASH) \
	-DWEFT_TEST_STACK_CLASH
tests_api_guard_clash_test_LDADD = $(tests_api_ldadd)
endif

# io: descriptor I/O on the per-worker reactors, TCP helpers.
check_PROGRAMS += tests/api/io_test
tests_api_io_test_SOURCES = tests/api/io_test.c
tests_api_io_test_CFLAGS = $(tests_api_cflags)
tests_api_io_test_LDADD = $(tests_api_ldadd) -lpthread

# server: datagrams, Unix sockets, files on the pool, copy, line reader.
check_PROGRAMS += tests/api/server_test
tests_api_server_test_SOURCES = tests/api/server_test.c
tests_api_server_test_CFLAGS = $(tests_api_cflags)
tests_api_server_test_LDADD = $(tests_api_ldadd) -lpthread

# blocking, diag: the run_blocking pool, stats, dumps, slow-task warnings.
check_PROGRAMS += tests/api/blocking_test tests/api/diag_test
tests_api_blocking_test_SOURCES = tests/api/blocking_test.c
tests_api_blocking_test_CFLAGS = $(tests_api_cflags)
tests_api_blocking_test_LDADD = $(tests_api_ldadd) -lpthread
tests_api_diag_test_SOURCES = tests/api/diag_test.c
tests_api_diag_test_CFLAGS = $(tests_api_cflags)
tests_api_diag_test_LDADD = $(tests_api_ldadd) -lpthread
# asan_plain: an ASan program on a plain library (configure: ASAN_TEST).
# Not in check_PROGRAMS: valgrind (make valgrind) cannot run ASan programs.
if ASAN_TEST
EXTRA_PROGRAMS += tests/api/asan_plain_test
TESTS += tests/api/asan_plain_test
CLEANFILES += tests/api/asan_plain_test$(EXEEXT)
endif
tests_api_asan_plain_test_SOURCES = tests/api/asan_plain_test.c
tests_api_asan_plain_test_CFLAGS = $(tests_api_cflags) $(ASAN_TEST_FLAGS)
tests_api_asan_plain_test_LDFLAGS = $(ASAN_TEST_FLAGS)
tests_api_asan_plain_test_LDADD = $(tests_api_ldadd) -lpthread
# dump: task dumps (waits, stacks, groups, JSON, the dump signal).
check_PROGRAMS += tests/api/dump_test
tests_api_dump_test_SOURCES = tests/api/dump_test.c
tests_api_dump_test_CFLAGS = $(tests_api_cflags)
tests_api_dump_test_LDADD = $(tests_api_ldadd) -lpthread

# --- ABI: <weft.h> alone as strict C11 and as C++11, version macros ---
# Own flags only (not AM_CFLAGS): the point is the strict dialect.
check_PROGRAMS += tests/abi/headers_c11 tests/abi/headers_cxx tests/abi/version_test
tests_abi_headers_c11_SOURCES = tests/abi/headers_c11.c
tests_abi_headers_c11_CFLAGS = -std=c11 -pedantic -Werror -Wall -Wextra
tests_abi_headers_c11_LDADD = lib/libweft.la
tests_abi_headers_cxx_SOURCES = tests/abi/headers_cxx.cc
tests_abi_headers_cxx_CXXFLAGS = -std=c++11 -pedantic -Werror -Wall -Wextra
tests_abi_headers_cxx_LDADD = lib/libweft.la
tests_abi_version_test_SOURCES = tests/abi/version_test.c
tests_abi_version_test_LDADD = lib/libweft.la

# signal: weft_signal_wait (masks, pending, waking, dispositions, runtimes).
check_PROGRAMS += tests/api/signal_test
tests_api_signal_test_SOURCES = tests/api/signal_test.c
tests_api_signal_test_CFLAGS = $(tests_api_cflags)
tests_api_signal_test_LDADD = $(tests_api_ldadd) -lpthread

# misuse: the bad-input sweep over every public function.
check_PROGRAMS += tests/api/misuse_test
tests_api_misuse_test_SOURCES = tests/api/misuse_test.c
tests_api_misuse_test_CFLAGS = $(tests_api_cflags)
tests_api_misuse_test_LDADD = $(tests_api_ldadd)

# --- fault injection: the static core with its heap, mmap, thread, epoll,
# eventfd and guard-page calls wrapped at link time
# (tests/fault/fault_inject.h) ---
check_PROGRAMS += tests/fault/fault_test
tests_fault_fault_test_SOURCES = tests/fault/fault_test.c tests/fault/fault_inject.c \
	tests/fault/fault_inject.h
tests_fault_fault_test_CFLAGS = $(AM_CFLAGS)
tests_fault_fault_test_LDADD = lib/libweft-core.la -lpthread -ldl
tests_fault_fault_test_LDFLAGS = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
	-Wl,--wrap=aligned_alloc,--wrap=free,--wrap=mmap,--wrap=munmap \
	-Wl,--wrap=pthread_create,--wrap=epoll_create1,--wrap=epoll_ctl,--wrap=eventfd \
	-Wl,--wrap=madvise,--wrap=mprotect

TESTS += $(check_PROGRAMS)
# Only weft_* exported (runs after the library is built: check_PROGRAMS
# link it). Needs no Check, but lives here so that a run without Check
# still fails through check-local below.
TESTS += tests/abi/exports.sh
# The stress programs are built (not run) by `make check`.
check-local: $(stress_progs)
else
check-local:
	@echo "ERROR: the Check unit-test framework was not found when configure ran." >&2
	@echo "ERROR: install it (apt-get install check) and re-run configure; no tests ran." >&2
	@exit 1
endif
EXTRA_DIST += tests/abi/exports.sh
# Every non-relaxed atomic in lib/ has a comment naming what it pairs
# with (issue 16); a text check, needs no build.
TESTS += scripts/atomics-check.sh
EXTRA_DIST += scripts/atomics-check.sh

# --- stress: long randomized runs (tests/stress/stress.h), built by
# `make check`, run by `make stress`. Each runs WEFT_STRESS_SECONDS
# (default 10), prints its seed and takes it back from WEFT_SEED;
# STRESS_WORKERS sets the workers (default 4). ---
stress_progs = tests/stress/cancel_stress tests/stress/io_stress tests/stress/steal_stress \
	tests/stress/select_stress
EXTRA_PROGRAMS += $(stress_progs)
CLEANFILES += $(stress_progs)
tests_stress_cancel_stress_SOURCES = tests/stress/cancel_stress.c tests/stress/stress.h
tests_stress_cancel_stress_LDADD = lib/libweft.la -lpthread
tests_stress_io_stress_SOURCES = tests/stress/io_stress.c tests/stress/stress.h
tests_stress_io_stress_LDADD = lib/libweft.la -lpthread
tests_stress_steal_stress_SOURCES = tests/stress/steal_stress.c tests/stress/stress.h
tests_stress_steal_stress_LDADD = lib/libweft.la -lpthread
tests_stress_select_stress_SOURCES = tests/stress/select_stress.c tests/stress/stress.h
tests_stress_select_stress_LDADD = lib/libweft.la -lpthread
.PHONY: stress
stress: $(stress_progs)
	@fail=0; for p in $(stress_progs); do \
	  echo "== $$p"; ./$$p || fail=1; \
	done; \
	if test $$fail -ne 0; then echo "make stress: FAILED (rerun one with the WEFT_SEED it printed)"; fi; \
	exit $$fail
EXTRA_DIST += scripts/soak.sh

# `make valgrind`: the check programs again, each under valgrind memcheck
# (no errors, no definite or possible leaks), in Check's no-fork mode so
# that leaks in the test processes themselves are seen. Task stacks are
# registered with VALGRIND_STACK_REGISTER (lib/ctx/checker.h) when
# configure found <valgrind/valgrind.h>. Not for sanitizer builds.
# Test cases tagged "slow" (a million tasks) or "timing" (wall-clock
# bounds that valgrind's serialised threads cannot meet) are skipped;
# WEFT_TEST_UNDER_VALGRIND=1 lets a test skip what valgrind itself cannot
# run (io_test's EMFILE case) when <valgrind/valgrind.h> was not found.
# VALGRIND_TESTS picks a subset, e.g. make valgrind VALGRIND_TESTS=tests/api/task_test
VALGRIND_FLAGS = --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,possible \
	--errors-for-leak-kinds=definite,possible --num-callers=30 --track-origins=no
VALGRIND_TIMEOUT_MULTIPLIER = 20
# Check enforces no timeouts with CK_FORK=no: a program that hangs under
# valgrind is killed after this many seconds (and fails).
VALGRIND_PROGRAM_TIMEOUT = 1800
VALGRIND_TESTS = $(check_PROGRAMS)
.PHONY: valgrind
valgrind:
	@if test -z "$(VALGRIND)"; then \
	  echo "ERROR: valgrind was not found when configure ran (apt-get install valgrind; re-run configure)." >&2; \
	  exit 1; \
	fi
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$(VALGRIND_TESTS)" TEST_SUITE_LOG=valgrind-suite.log \
	  LOG_COMPILER="timeout -k 30 $(VALGRIND_PROGRAM_TIMEOUT) $(LIBTOOL) --mode=execute $(VALGRIND) $(VALGRIND_FLAGS)" \
	  TESTS_ENVIRONMENT="CK_FORK=no; CK_EXCLUDE_TAGS=\"slow timing\"; CK_TIMEOUT_MULTIPLIER=$(VALGRIND_TIMEOUT_MULTIPLIER); WEFT_TEST_UNDER_VALGRIND=1; export CK_FORK CK_EXCLUDE_TAGS CK_TIMEOUT_MULTIPLIER WEFT_TEST_UNDER_VALGRIND;"
CLEANFILES += valgrind-suite.log
