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

# --- API tests (the public contract) ---
check_PROGRAMS += tests/api/runtime_test tests/api/task_test
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
tests_api_gen_test_CFLAGS = $(tests_api_cflags)
tests_api_gen_test_LDADD = $(tests_api_ldadd)

check_PROGRAMS += tests/api/guard_test
tests_api_guard_test_SOURCES = tests/api/guard_test.c
tests_api_guard_test_CFLAGS = $(tests_api_cflags)
tests_api_guard_test_LDADD = $(tests_api_ldadd)

# io: descriptor I/O on the per-worker reactors, TCP helpers.
check_PROGRAMS += tests/api/io_test
tests_api_io_test_SOURCES = tests/api/io_test.c
tests_api_io_test_CFLAGS = $(tests_api_cflags)
tests_api_io_test_LDADD = $(tests_api_ldadd) -lpthread

# blocking, diag: the run_blocking pool, stats, dumps, slow-task warnings.
check_PROGRAMS += tests/api/blocking_test tests/api/diag_test
tests_api_blocking_test_SOURCES = tests/api/blocking_test.c
tests_api_blocking_test_CFLAGS = $(tests_api_cflags)
tests_api_blocking_test_LDADD = $(tests_api_ldadd) -lpthread
tests_api_diag_test_SOURCES = tests/api/diag_test.c
tests_api_diag_test_CFLAGS = $(tests_api_cflags)
tests_api_diag_test_LDADD = $(tests_api_ldadd) -lpthread

TESTS += $(check_PROGRAMS)
else
check-local:
	@echo "ERROR: the Check unit-test framework was not found when configure ran." >&2
	@echo "ERROR: install it (apt-get install check) and re-run configure; no tests ran." >&2
	@exit 1
endif
