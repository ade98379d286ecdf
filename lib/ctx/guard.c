/* SPDX-License-Identifier: MIT */
/* Stack-overflow reports. The SIGSEGV handler runs on the worker's
 * alternate stack (the task stack just overflowed), finds the faulting
 * worker through its TLS, and takes the fault for an overflow of the
 * running task when the address lies in a guard gap of the runtime's
 * stacks or the task's stack pointer is below its stack (a stack without
 * a guard, or a frame larger than the gap, that ran into memory that
 * faults); it writes one line with write(2) (async-signal-safe) and
 * re-raises the signal with the default action so the process dies as it
 * would have anyway. The canary check at a switch (stack.h) reports
 * through the same line and aborts. */
#define _GNU_SOURCE 1
#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <stdint.h>
#include <ucontext.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctx/guard.h"
#include "sched/sched.h"

#define WEFT__ALTSTACK_SIZE (64 * 1024)

static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_rc;

/* Appends s to buf at *n (bounded). */
static void put(char *buf, size_t *n, size_t cap, const char *s)
{
    while (*s && *n + 1 < cap)
        buf[(*n)++] = *s++;
}

static void put_u64(char *buf, size_t *n, size_t cap, unsigned long long v)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i > 0 && *n + 1 < cap)
        buf[(*n)++] = tmp[--i];
}

/* The one report line: "weft: stack overflow in task 'NAME' (id N, stack
 * size K KiB[, HOW]); raise weft_options.stack_size". Async-signal-safe. */
static void report(uint64_t id, const char *name, size_t stack_size, const char *how)
{
    char line[320];
    size_t n = 0;
    put(line, &n, sizeof line, "weft: stack overflow in task ");
    if (name && name[0]) {
        put(line, &n, sizeof line, "'");
        put(line, &n, sizeof line, name);
        put(line, &n, sizeof line, "' ");
    }
    put(line, &n, sizeof line, "(id ");
    put_u64(line, &n, sizeof line, id);
    put(line, &n, sizeof line, ", stack size ");
    put_u64(line, &n, sizeof line, stack_size / 1024);
    put(line, &n, sizeof line, " KiB");
    if (how) {
        put(line, &n, sizeof line, ", ");
        put(line, &n, sizeof line, how);
    }
    put(line, &n, sizeof line, "); raise weft_options.stack_size\n");
    ssize_t r = write(STDERR_FILENO, line, n);
    (void)r;
}

void weft__stack_overflow_abort(uint64_t id, const char *name, const struct stack *s,
                                const char *how)
{
    report(id, name, s->size, how);
    abort();
}

/* The interrupted stack pointer, or 0. */
static uintptr_t fault_sp(void *uctx)
{
    const ucontext_t *uc = uctx;
    if (!uc)
        return 0;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#else
    return 0;
#endif
}

/* A stack pointer below the running task's stack (by less than 4 GiB, so
 * that a fault while the worker is briefly on its own thread stack is not
 * taken for one) means the task overflowed, guard or no guard. */
static bool sp_overflowed(const struct stack *s, uintptr_t sp)
{
    uintptr_t lo = (uintptr_t)s->lo;
    return sp && sp < lo && lo - sp <= ((uintptr_t)1 << 32);
}

static void on_segv(int sig, siginfo_t *info, void *uctx)
{
    struct worker *w = weft__worker_self();
    struct weft_task *t = w ? w->current : NULL;
    size_t stack_size = 0;
    if (t && info &&
        (weft__stack_guard_hit(&w->rt->stacks, info->si_addr, &stack_size) ||
         (t->stack && sp_overflowed(t->stack, fault_sp(uctx))))) {
        if (!stack_size)
            stack_size = t->stack->size;
        report(t->id, t->name, stack_size, NULL);
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
        return;
    }
    /* Not ours: hand it to whoever was installed before. */
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) {
            previous.sa_sigaction(sig, info, uctx);
            return;
        }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN &&
               previous.sa_handler) {
        previous.sa_handler(sig);
        return;
    }
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    install_rc = sigaction(SIGSEGV, &sa, &previous) < 0 ? -errno : 0;
}

int weft__guard_install(void)
{
    pthread_once(&install_once, install);
    return install_rc;
}

int weft__guard_thread_init(void **mem)
{
    void *p = mmap(NULL, WEFT__ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        *mem = NULL;
        return -errno;
    }
    stack_t ss = {.ss_sp = p, .ss_size = WEFT__ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) < 0) {
        int rc = -errno;
        munmap(p, WEFT__ALTSTACK_SIZE);
        *mem = NULL;
        return rc;
    }
    *mem = p;
    return 0;
}

void weft__guard_thread_fini(void *mem)
{
    if (!mem)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(mem, WEFT__ALTSTACK_SIZE);
}
