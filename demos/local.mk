# SPDX-License-Identifier: MIT
# Demos are built by `make` so they never rot; tests/demos.sh runs them in a
# short mode during `make check`. Each is the C twin of an example program
# of the asyncio tutorials (see demos/README.md); they use only <weft.h>.

noinst_PROGRAMS += demos/hello demos/await demos/tasks demos/create_task \
	demos/gather demos/fetch demos/gather_error demos/wait_for demos/cancel \
	demos/event_loop demos/generator demos/semaphore demos/interactive

demos_hello_SOURCES = demos/hello.c demos/demo.h
demos_hello_LDADD = lib/libweft.la
demos_await_SOURCES = demos/await.c demos/demo.h
demos_await_LDADD = lib/libweft.la
demos_tasks_SOURCES = demos/tasks.c demos/demo.h
demos_tasks_LDADD = lib/libweft.la
demos_create_task_SOURCES = demos/create_task.c demos/demo.h
demos_create_task_LDADD = lib/libweft.la
demos_gather_SOURCES = demos/gather.c demos/demo.h
demos_gather_LDADD = lib/libweft.la
demos_fetch_SOURCES = demos/fetch.c demos/demo.h
demos_fetch_LDADD = lib/libweft.la
demos_gather_error_SOURCES = demos/gather_error.c demos/demo.h
demos_gather_error_LDADD = lib/libweft.la
demos_wait_for_SOURCES = demos/wait_for.c demos/demo.h
demos_wait_for_LDADD = lib/libweft.la
demos_cancel_SOURCES = demos/cancel.c demos/demo.h
demos_cancel_LDADD = lib/libweft.la
demos_event_loop_SOURCES = demos/event_loop.c demos/demo.h
demos_event_loop_LDADD = lib/libweft.la
demos_generator_SOURCES = demos/generator.c demos/demo.h
demos_generator_LDADD = lib/libweft.la
demos_semaphore_SOURCES = demos/semaphore.c demos/demo.h
demos_semaphore_LDADD = lib/libweft.la
demos_interactive_SOURCES = demos/interactive.c demos/demo.h
demos_interactive_LDADD = lib/libweft.la

# Network demos (descriptor I/O on the reactors): an echo server, an
# HTTP/1.1 keep-alive server, and a client fetching many URLs at once.
noinst_PROGRAMS += demos/echo_server demos/http_server demos/http_client
demos_echo_server_SOURCES = demos/echo_server.c demos/demo.h demos/serve.h
demos_echo_server_LDADD = lib/libweft.la
demos_http_server_SOURCES = demos/http_server.c demos/demo.h demos/serve.h
demos_http_server_LDADD = lib/libweft.la
demos_http_client_SOURCES = demos/http_client.c demos/demo.h
demos_http_client_LDADD = lib/libweft.la

# A stuck lock among many tasks, found with WEFT_DUMP_SIGNAL (issue 18).
noinst_PROGRAMS += demos/stuck
demos_stuck_SOURCES = demos/stuck.c demos/demo.h
demos_stuck_LDADD = lib/libweft.la

# The smoke test and the stdout each demo must print. The expected files are
# listed one by one rather than globbed: automake does not expand wildcards.
TESTS += tests/demos.sh
EXTRA_DIST += demos/README.md tests/demos.sh \
	tests/demos/hello.expected \
	tests/demos/await.expected \
	tests/demos/tasks.expected \
	tests/demos/create_task.expected \
	tests/demos/create_task-sequential.expected \
	tests/demos/gather.expected \
	tests/demos/fetch.expected \
	tests/demos/gather_error.expected \
	tests/demos/wait_for.expected \
	tests/demos/cancel.expected \
	tests/demos/event_loop.expected \
	tests/demos/generator.expected \
	tests/demos/semaphore.expected \
	tests/demos/interactive.expected \
	tests/demos/interactive-slow.expected

# The headline demo: throughput comparison table and SVG chart.
noinst_PROGRAMS += demos/throughput
demos_throughput_SOURCES = demos/throughput.c
demos_throughput_LDADD = lib/libweft.la
# Where to look for ../shared/peers (the Go, Tokio and asyncio echo servers).
demos_throughput_CPPFLAGS = $(AM_CPPFLAGS) -DWEFT_TOP_SRCDIR='"$(abs_top_srcdir)"'
# tests/demos.sh parses `throughput --json` with this strict JSON checker
# (built by make, like the demos: a check program would also be run as a test).
noinst_PROGRAMS += tests/demos/json_lines
tests_demos_json_lines_SOURCES = tests/demos/json_lines.c

# Producer -> channel -> workers -> sink with back-pressure (issue 5).
noinst_PROGRAMS += demos/pipeline
demos_pipeline_SOURCES = demos/pipeline.c demos/demo.h
demos_pipeline_LDADD = lib/libweft.la

# Server building blocks (issue 17): datagrams, a Unix-socket service, a
# proxy on weft_copy, a line protocol on weft_reader. tests/demos.sh
# drives each with a scripted client.
noinst_PROGRAMS += demos/udp_echo demos/unix_service demos/tcp_proxy demos/line_server
demos_udp_echo_SOURCES = demos/udp_echo.c demos/demo.h demos/serve.h
demos_udp_echo_LDADD = lib/libweft.la
demos_unix_service_SOURCES = demos/unix_service.c demos/demo.h demos/serve.h
demos_unix_service_LDADD = lib/libweft.la
demos_tcp_proxy_SOURCES = demos/tcp_proxy.c demos/demo.h demos/serve.h
demos_tcp_proxy_LDADD = lib/libweft.la
demos_line_server_SOURCES = demos/line_server.c demos/demo.h demos/serve.h
demos_line_server_LDADD = lib/libweft.la

# Issue 16: a chat server whose broadcast never waits on a client
# (weft_chan_try_send; slow clients are disconnected), stopped gracefully
# with weft_signal_wait.
noinst_PROGRAMS += demos/chat_server
demos_chat_server_SOURCES = demos/chat_server.c demos/demo.h demos/serve.h
demos_chat_server_LDADD = lib/libweft.la
