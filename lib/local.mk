# SPDX-License-Identifier: MIT
# libweft-core.la: everything, hidden visibility; unit tests link it directly.
# libweft.la: the installed library (only weft_* exported).
noinst_LTLIBRARIES += lib/libweft-core.la
lib_LTLIBRARIES += lib/libweft.la

lib_libweft_core_la_CFLAGS = $(AM_CFLAGS) $(WEFT_VISIBILITY) $(WEFT_STACK_CLASH) $(LIBDW_CFLAGS)
lib_libweft_core_la_LIBADD = $(LIBDW_LIBS)
lib_libweft_core_la_CCASFLAGS = $(AM_CCASFLAGS)
lib_libweft_core_la_SOURCES = \
	lib/internal.h \
	lib/compiler.h \
	lib/util/list.h \
	lib/util/clock.h \
	lib/util/spin.h \
	lib/util/rand.h \
	lib/ctx/context.h \
	lib/ctx/checker.h \
	lib/ctx/switch_x86_64.S \
	lib/ctx/switch_aarch64.S \
	lib/ctx/context.c \
	lib/ctx/stack.h \
	lib/ctx/stack.c \
	lib/ctx/guard.h \
	lib/ctx/guard.c \
	lib/sched/sched.h \
	lib/sched/deque.h \
	lib/sched/deque.c \
	lib/sched/inject.h \
	lib/sched/inject.c \
	lib/sched/timer.h \
	lib/sched/timer.c \
	lib/sched/wait.h \
	lib/sched/wait.c \
	lib/sched/idle.h \
	lib/sched/idle.c \
	lib/sched/run.h \
	lib/sched/run.c \
	lib/sched/steal.c \
	lib/sched/switch.h \
	lib/sched/switch.c \
	lib/sched/wake.c \
	lib/sched/sysmon.h \
	lib/sched/sysmon.c \
	lib/sched/taskmem.c \
	lib/sched/worker.c \
	lib/reactor/poller.h \
	lib/reactor/epoll.c \
	lib/reactor/reactor.h \
	lib/reactor/reactor.c \
	lib/fdcall.h \
	lib/io.c \
	lib/dgram.c \
	lib/file.c \
	lib/copy.c \
	lib/reader.c \
	lib/net.c \
	lib/exec/pool.h \
	lib/exec/pool.c \
	lib/blocking.c \
	lib/diag.c \
	lib/diag/stack.h \
	lib/diag/stack.c \
	lib/diag/dump.c \
	lib/deadline.c \
	lib/group.c \
	lib/runtime.c \
	lib/task.c \
	lib/prim.h \
	lib/sync.c \
	lib/chan.c \
	lib/select.h \
	lib/select.c \
	lib/gen.c \
	lib/error.c \
	lib/signal.c

# libtool's version rules: C:R:A. Change of code only: R++. Interfaces added:
# C++, R=0, A++. Interfaces removed or changed: C++, R=0, A=0.
lib_libweft_la_SOURCES =
lib_libweft_la_LIBADD = lib/libweft-core.la
lib_libweft_la_LDFLAGS = -version-info 0:0:0

include_HEADERS += include/weft.h
weftinclude_HEADERS += \
	include/weft/common.h \
	include/weft/version.h \
	include/weft/runtime.h \
	include/weft/task.h \
	include/weft/deadline.h \
	include/weft/group.h \
	include/weft/blocking.h \
	include/weft/io.h \
	include/weft/sync.h \
	include/weft/chan.h \
	include/weft/select.h \
	include/weft/gen.h \
	include/weft/diag.h \
	include/weft/signals.h
