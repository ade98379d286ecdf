/* SPDX-License-Identifier: MIT */
/* Task dumps: weft_runtime_dump and weft_runtime_dump_ex (time in state,
 * what each task waits on, who spawned it, parked tasks' stacks, groups,
 * JSON), and the dump signal (WEFT_DUMP_SIGNAL).
 *
 * A dump walks the task memory (weft__task_for_each, a reference held on
 * each task) and never stops a worker. A parked task is held parked while
 * its wait and stack are read: one CAS on its park word, PARKED -> HELD.
 * A wake that comes meanwhile is recorded (HELD -> HELD_WOKEN, wake.c)
 * and never waits; the dump then resumes the task itself. So a task's
 * pause is one unwind, and the dump takes no lock that a running task
 * holds: primitives' own locks are only tried (weft__mutex_peek). A
 * running task is reported as running, without a stack. */
#include "internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag/stack.h"
#include "exec/pool.h"
#include "prim.h"
#include "reactor/reactor.h"
#include "sched/sched.h"
#include "select.h"
#include "util/clock.h"

/* ------------------------------------------------------------ waits */

/* What a wait is on: the parked task's reason word (sched/wait.h: kind,
 * and a descriptor wait's call, direction and descriptor) and its
 * wait_obj word (weft__park_obj, switch.c); describe_wait is the one
 * place that reads them. */
enum wait_kind {
    WK_NONE = WEFT__WK_NONE,
    WK_SLEEP = WEFT__WK_SLEEP,
    WK_SEM = WEFT__WK_SEM,
    WK_MUTEX = WEFT__WK_MUTEX,
    WK_EVENT = WEFT__WK_EVENT,
    WK_CHAN_SEND = WEFT__WK_CHAN_SEND,
    WK_CHAN_RECV = WEFT__WK_CHAN_RECV,
    WK_JOIN = WEFT__WK_JOIN,
    WK_ANY = WEFT__WK_ANY,
    WK_FD = WEFT__WK_FD,
    WK_BLOCKING = WEFT__WK_BLOCKING,
    WK_GEN_NEXT = WEFT__WK_GEN_NEXT,
    WK_GEN_YIELD = WEFT__WK_GEN_YIELD,
    WK_SELECT = WEFT__WK_SELECT,
    WK_SIGNAL = WEFT__WK_SIGNAL,
    WK_OTHER = WEFT__WK_OTHER,
};

#define kind_name(k) weft__wait_kind_name(k)

enum { DIR_READ = WEFT__WAIT_DIR_READ, DIR_WRITE = WEFT__WAIT_DIR_WRITE };

/* One case of a select, as read from the held selector's case array. */
struct sel_case_desc {
    int kind;      /* WEFT__SEL_* */
    unsigned dir;  /* WEFT__SEL_FD: DIR_* bits */
    int fd;        /* WEFT__SEL_FD */
    uintptr_t obj; /* channel or event */
    uint64_t task; /* WEFT__SEL_TASK: the id of the task waited for */
};

/* The cases a dump records per select (the rest are counted only). */
#define SEL_CASES_MAX 16

struct wait_desc {
    enum wait_kind kind;
    const char *what;   /* the kind's name, or an fd wait's call */
    uintptr_t obj;      /* the object's address, or 0 */
    int fd;             /* WK_FD */
    unsigned dir;       /* WK_FD: DIR_* (0: unknown) */
    uint64_t task;      /* mutex holder, task joined, first of wait_any */
    bool known;         /* holder / permits could be read */
    unsigned permits;   /* WK_SEM */
    int64_t until;      /* WK_SLEEP: end instant (weft__clock_ns) */
    uintptr_t fn;       /* WK_BLOCKING: the function */
    bool job_running;   /* WK_BLOCKING: fn started */
    size_t sel_n;       /* WK_SELECT: its number of cases */
    size_t sel_first;   /* WK_SELECT: its first recorded case in the dump's
                           table (struct dump.sel) */
    unsigned sel_kept;  /* WK_SELECT: cases recorded there (<= SEL_CASES_MAX) */
};

struct dump;
static void describe_select(struct dump *dd, const struct sel_rec *rec, struct wait_desc *d);

/* t is held parked (PARK_HELD): its wait fields are those of this park,
 * and whatever they point to stays put until the hold ends. */
static void describe_wait(struct dump *dd, struct weft_task *t, struct wait_desc *d)
{
    memset(d, 0, sizeof *d);
    uint64_t why = atomic_load_explicit(&t->wait_why, memory_order_relaxed);
    uint64_t obj = atomic_load_explicit(&t->wait_obj, memory_order_relaxed);
    d->kind = weft__why_kind(why);
    d->dir = weft__why_dir(why);
    d->what = d->kind == WK_FD ? weft__wait_call_name(weft__why_call(why)) : kind_name(d->kind);
    switch (d->kind) {
    case WK_SLEEP:
        d->until = (int64_t)obj;
        break;
    case WK_MUTEX: /* the object's first bytes are its lock (prim.h) */
        d->obj = (uintptr_t)obj;
        d->known = d->obj && weft__mutex_peek((void *)d->obj, &d->task);
        break;
    case WK_SEM:
        d->obj = (uintptr_t)obj;
        d->known = d->obj && weft__sem_peek((void *)d->obj, &d->permits);
        break;
    case WK_JOIN:
    case WK_ANY: {
        /* The waiter holds the handle: the struct is that task's. */
        struct weft_task *j = (struct weft_task *)(uintptr_t)obj;
        d->obj = (uintptr_t)obj;
        d->task = j ? j->id : 0;
        d->known = j != NULL;
        break;
    }
    case WK_FD:
        d->fd = weft__why_fd_of(why);
        break;
    case WK_BLOCKING: {
        /* The job lives on the held task's stack. */
        struct job *j = (struct job *)(uintptr_t)obj;
        d->obj = (uintptr_t)obj;
        if (j) {
            d->fn = (uintptr_t)j->fn;
            d->job_running = atomic_load_explicit(&j->state, memory_order_relaxed) != JOB_QUEUED;
        }
        break;
    }
    case WK_SELECT:
        /* The record and its case array are on (or owned by) the held
         * selector, which cannot leave the select meanwhile. */
        d->obj = (uintptr_t)obj;
        if (obj)
            describe_select(dd, (const struct sel_rec *)(uintptr_t)obj, d);
        break;
    default: /* event, channel, generator: the object's address */
        d->obj = (uintptr_t)obj;
        break;
    }
}

/* Kinds whose object many tasks share: grouped by it. */
static bool kind_groups_by_object(enum wait_kind k)
{
    return k == WK_SEM || k == WK_MUTEX || k == WK_EVENT || k == WK_CHAN_SEND ||
           k == WK_CHAN_RECV || k == WK_GEN_NEXT || k == WK_GEN_YIELD;
}

/* ------------------------------------------------------------ collecting */

enum task_state { ST_RUNNING, ST_READY, ST_NOT_STARTED, ST_PARKED, ST_SLEEPING, ST_HELD };

static const char *const state_names[] = {
    [ST_RUNNING] = "running",        [ST_READY] = "ready",
    [ST_NOT_STARTED] = "not started", [ST_PARKED] = "parked",
    [ST_SLEEPING] = "sleeping",      [ST_HELD] = "parked (held by another dump)",
};

struct task_rec {
    uint64_t id, spawner;
    char name[WEFT__TASK_NAME];
    enum task_state state;
    int64_t since;    /* state entered (coarse clock), 0: unknown */
    int worker;       /* running on it, or -1 */
    bool cancelled;   /* cancellation requested, not ended yet */
    struct wait_desc wait;
    int stack;        /* index in the stack table, or -1 */
};

/* Distinct stacks, each stored once: 100,000 tasks parked at one place
 * cost one entry. */
struct stack_rec {
    unsigned n;
    uint64_t hash;
    uintptr_t pc[WEFT__STACK_MAX];
    char *text, *json; /* formatted once, on first use (or NULL) */
    size_t text_len, json_len;
};

struct dump;
static struct weft__symbols *symbols(struct dump *d);

struct dump {
    struct weft_runtime *rt;
    unsigned flags;
    bool want_stacks;
    struct weft__symbols *syms; /* made on first use */
    bool syms_tried;
    struct task_rec *recs;
    size_t n, cap;
    struct stack_rec *stacks;
    size_t n_stacks, cap_stacks;
    int *stack_index; /* open addressing over stacks, -1 empty */
    size_t index_cap;
    bool out_of_memory;
    int64_t now;      /* coarse clock, for time in state */
    struct sel_case_desc *sel; /* the selects' cases (wait_desc.sel_first) */
    size_t n_sel, cap_sel;
};

/* Records the cases of the select rec (its selector held parked: the
 * cases' kind, object, events and task ids were written before the park
 * and stay put; wakers only write the waiter storage). */
static void describe_select(struct dump *dd, const struct sel_rec *rec, struct wait_desc *d)
{
    d->sel_n = rec->n;
    size_t keep = rec->n < SEL_CASES_MAX ? rec->n : SEL_CASES_MAX;
    if (dd->n_sel + keep > dd->cap_sel) {
        size_t cap = dd->cap_sel ? 2 * dd->cap_sel : 256;
        while (cap < dd->n_sel + keep)
            cap *= 2;
        struct sel_case_desc *s = realloc(dd->sel, cap * sizeof *s);
        if (!s) {
            dd->out_of_memory = true;
            return;
        }
        dd->sel = s;
        dd->cap_sel = cap;
    }
    d->sel_first = dd->n_sel;
    for (size_t i = 0; i < keep; i++) {
        const weft_sel *c = &rec->cases[i];
        struct sel_case_desc *o = &dd->sel[dd->n_sel++];
        memset(o, 0, sizeof *o);
        o->kind = c->weft__kind;
        switch (c->weft__kind) {
        case WEFT__SEL_RECV:
        case WEFT__SEL_SEND:
        case WEFT__SEL_EVENT:
            o->obj = (uintptr_t)c->weft__obj;
            break;
        case WEFT__SEL_TASK:
            /* select.c stored it there (union sel_store's .end). */
            memcpy(&o->task,
                   (const char *)&c->weft__priv + offsetof(struct sel_task_store, task_id),
                   sizeof o->task);
            break;
        case WEFT__SEL_FD:
            o->fd = (int)(intptr_t)c->weft__obj;
            o->dir = ((c->weft__events & WEFT_READABLE) ? DIR_READ : 0u) |
                     ((c->weft__events & WEFT_WRITABLE) ? DIR_WRITE : 0u);
            break;
        default:
            break;
        }
    }
    d->sel_kept = (unsigned)keep;
}

static uint64_t hash_pcs(const uintptr_t *pc, unsigned n)
{
    uint64_t h = 1469598103934665603ull ^ n;
    for (unsigned i = 0; i < n; i++) {
        h ^= (uint64_t)pc[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static bool index_grow(struct dump *d)
{
    size_t cap = d->index_cap ? 2 * d->index_cap : 256;
    int *idx = malloc(cap * sizeof *idx);
    if (!idx)
        return false;
    for (size_t i = 0; i < cap; i++)
        idx[i] = -1;
    for (size_t k = 0; k < d->n_stacks; k++) {
        size_t i = d->stacks[k].hash & (cap - 1);
        while (idx[i] >= 0)
            i = (i + 1) & (cap - 1);
        idx[i] = (int)k;
    }
    free(d->stack_index);
    d->stack_index = idx;
    d->index_cap = cap;
    return true;
}

/* The index of the stack pcs[0..n) in the table (added if new), or -1. */
static int intern_stack(struct dump *d, const uintptr_t *pcs, unsigned n)
{
    if (2 * (d->n_stacks + 1) > d->index_cap && !index_grow(d))
        return -1;
    uint64_t h = hash_pcs(pcs, n);
    size_t i = h & (d->index_cap - 1);
    for (; d->stack_index[i] >= 0; i = (i + 1) & (d->index_cap - 1)) {
        struct stack_rec *s = &d->stacks[d->stack_index[i]];
        if (s->hash == h && s->n == n && memcmp(s->pc, pcs, n * sizeof *pcs) == 0)
            return d->stack_index[i];
    }
    if (d->n_stacks == d->cap_stacks) {
        size_t cap = d->cap_stacks ? 2 * d->cap_stacks : 64;
        struct stack_rec *s = realloc(d->stacks, cap * sizeof *s);
        if (!s)
            return -1;
        d->stacks = s;
        d->cap_stacks = cap;
    }
    struct stack_rec *s = &d->stacks[d->n_stacks];
    s->n = n;
    s->hash = h;
    s->text = s->json = NULL;
    memcpy(s->pc, pcs, n * sizeof *pcs);
    d->stack_index[i] = (int)d->n_stacks;
    return (int)d->n_stacks++;
}

/* The worker running t, or -1. */
static int running_on(struct weft_runtime *rt, const struct weft_task *t)
{
    for (unsigned i = 0; i < rt->n_workers; i++)
        if (atomic_load_explicit(&rt->workers[i].current, memory_order_relaxed) == t)
            return (int)i;
    return -1;
}

/* Holds t parked if it is: true when the park word went PARKED -> HELD.
 * Acquire: pairs with post_switch's release CAS to PARKED, after which
 * t's saved context, stack and wait fields are those of this park. */
static bool hold(struct weft_task *t)
{
    uint32_t s = PARK_PARKED;
    /* Acquire: pairs with post_switch's release CAS to PARKED (above). */
    return atomic_compare_exchange_strong_explicit(&t->park, &s, PARK_HELD, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Ends the hold. Release (both ways): our reads of t's stack happen
 * before anything that resumes it. */
static void release(struct weft_task *t)
{
    uint32_t s = PARK_HELD;
    /* Release: pairs with weft__wake's acq_rel CAS from PARKED (wake.c);
     * our reads of t's stack happen before t resumes. */
    if (atomic_compare_exchange_strong_explicit(&t->park, &s, PARK_PARKED, memory_order_release,
                                                memory_order_relaxed))
        return;
    /* HELD_WOKEN: a wake came during the hold and left the resumption to
     * us (wake.c). acq_rel: acquires the waker's writes (its CAS to
     * HELD_WOKEN, release) and publishes them with the schedule. Only the
     * dump moves the word out of HELD_WOKEN, so an exchange is enough. */
    atomic_exchange_explicit(&t->park, PARK_RUNNING, memory_order_acq_rel);
    weft__schedule(t, false);
}

static void describe(struct dump *d, struct weft_task *t, struct task_rec *r)
{
    struct weft_runtime *rt = d->rt;
    r->id = t->id;
    r->spawner = t->spawner;
    weft__task_copy_name(t, r->name);
    r->worker = -1;
    r->stack = -1;
    r->since = 0;
    memset(&r->wait, 0, sizeof r->wait);
    /* Acquire: pairs with the release that sets STARTED (task.c), before
     * which wait_why's bytes are still fn's. */
    uint32_t flags = atomic_load_explicit(&t->flags, memory_order_acquire);
    r->cancelled = (flags & (TASK_CANCELLED | TASK_DONE)) == TASK_CANCELLED;
    if ((flags & TASK_STARTED) && hold(t)) {
        describe_wait(d, t, &r->wait);
        r->state = r->wait.kind == WK_SLEEP ? ST_SLEEPING : ST_PARKED;
        r->since = atomic_load_explicit(&t->state_since, memory_order_relaxed);
        if (d->want_stacks && t->stack) {
            uintptr_t pcs[WEFT__STACK_MAX];
            unsigned n = weft__unwind(d->syms, t->ctx.sp, t->stack->lo, t->stack->size, pcs,
                                      WEFT__STACK_MAX);
            /* pcs[0] is in the switch itself (the park, where switch_out
             * inlines with one return address per way out): left out,
             * so that tasks parked at one place share one stack. */
            r->stack = n > 1 ? intern_stack(d, pcs + 1, n - 1) : -1;
        }
        release(t);
        return;
    }
    uint32_t park = atomic_load_explicit(&t->park, memory_order_relaxed);
    r->worker = running_on(rt, t);
    if (r->worker >= 0) {
        r->state = ST_RUNNING;
    } else if (!(flags & TASK_STARTED)) {
        r->state = ST_NOT_STARTED;
        r->since = atomic_load_explicit(&t->state_since, memory_order_relaxed);
    } else if (park == PARK_HELD || park == PARK_HELD_WOKEN) {
        r->state = ST_HELD;
    } else {
        r->state = ST_READY;
    }
}

/* Collects a record for each task that has not ended. */
static void collect(struct weft_task *t, void *arg)
{
    struct dump *d = arg;
    if (atomic_load_explicit(&t->flags, memory_order_relaxed) & TASK_DONE)
        return;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 256;
        struct task_rec *r = realloc(d->recs, cap * sizeof *r);
        if (!r) {
            d->out_of_memory = true;
            return;
        }
        d->recs = r;
        d->cap = cap;
    }
    describe(d, t, &d->recs[d->n++]);
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const struct task_rec *)a)->id, y = ((const struct task_rec *)b)->id;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ symbols */

static struct weft__symbols *symbols(struct dump *d)
{
    if (!d->syms_tried) {
        d->syms_tried = true;
        d->syms = weft__symbols_new();
    }
    return d->syms;
}

/* Symbolized frames, one per distinct return address. */
struct sym_cache {
    uintptr_t *pc;
    struct weft__sym *sym;
    size_t cap; /* power of two; pc 0 = empty */
    size_t n;
};

static const struct weft__sym *symbol(struct dump *d, struct sym_cache *c, uintptr_t pc)
{
    static const struct weft__sym none;
    if (pc == 0)
        return &none;
    if (2 * (c->n + 1) > c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        uintptr_t *npc = calloc(cap, sizeof *npc);
        struct weft__sym *nsym = malloc(cap * sizeof *nsym);
        if (!npc || !nsym) {
            free(npc);
            free(nsym);
            static struct weft__sym tmp;
            weft__symbolize(symbols(d), pc, &tmp);
            return &tmp;
        }
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->pc[i])
                continue;
            size_t j = (c->pc[i] * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
            while (npc[j])
                j = (j + 1) & (cap - 1);
            npc[j] = c->pc[i];
            nsym[j] = c->sym[i];
        }
        free(c->pc);
        free(c->sym);
        c->pc = npc;
        c->sym = nsym;
        c->cap = cap;
    }
    size_t j = (pc * 0x9E3779B97F4A7C15ull >> 20) & (c->cap - 1);
    for (; c->pc[j]; j = (j + 1) & (c->cap - 1))
        if (c->pc[j] == pc)
            return &c->sym[j];
    c->pc[j] = pc;
    weft__symbolize(symbols(d), pc, &c->sym[j]);
    c->n++;
    return &c->sym[j];
}

static bool is_weft_name(const char *f) { return f && strncmp(f, "weft_", 5) == 0; }

/* The frame a group is "at": the first one from the top that is not
 * weft's own code (by module when weft is a shared object; by name when
 * it is linked into the program: the caller of the outermost public weft_
 * call among the top frames, else the first frame not named weft_). */
static unsigned at_frame(struct dump *d, struct sym_cache *c, const struct stack_rec *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        int w = symbol(d, c, s->pc[i])->in_weft;
        if (w < 0)
            break;
        if (w == 0)
            return i;
    }
    unsigned first_public = s->n;
    for (unsigned i = 0; i < s->n; i++) {
        const char *f = symbol(d, c, s->pc[i])->func;
        if (f && strncmp(f, "weft_", 5) == 0 && f[5] != '_')
            first_public = i;
        else if (first_public < s->n)
            return i;
    }
    for (unsigned i = 0; i < s->n; i++)
        if (!is_weft_name(symbol(d, c, s->pc[i])->func))
            return i;
    return 0;
}

/* ------------------------------------------------------------ text */

/* A duration the way a person reads it. */
static void fmt_duration(char *buf, size_t size, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    double s = (double)ns / 1e9;
    if (ns < 1000000)
        snprintf(buf, size, "<1 ms");
    else if (s < 1)
        snprintf(buf, size, "%lld ms", (long long)(ns / 1000000));
    else if (s < 120)
        snprintf(buf, size, "%.1f s", s);
    else if (s < 7200)
        snprintf(buf, size, "%.0f min", s / 60);
    else
        snprintf(buf, size, "%.1f h", s / 3600);
}

static void fmt_range(char *buf, size_t size, int64_t lo, int64_t hi)
{
    char a[32], b[32];
    fmt_duration(a, sizeof a, lo);
    fmt_duration(b, sizeof b, hi);
    if (strcmp(a, b) == 0) {
        snprintf(buf, size, "%s", a);
        return;
    }
    /* "2 min" and "9 min": "2-9 min" */
    const char *ua = strchr(a, ' '), *ub = strchr(b, ' ');
    if (ua && ub && strcmp(ua, ub) == 0 && a[0] != '<')
        snprintf(buf, size, "%.*s-%s", (int)(ua - a), a, b);
    else
        snprintf(buf, size, "%s-%s", a, b);
}

static const char *fd_dir_name(unsigned dir, const char *both, const char *unknown)
{
    switch (dir) {
    case DIR_READ:
        return "readable";
    case DIR_WRITE:
        return "writable";
    case DIR_READ | DIR_WRITE:
        return both;
    default:
        return unknown;
    }
}

/* One case of a select: "recv chan 0x...", "send chan 0x...", "task 7",
 * "event 0x...", "fd 5 readable". */
static void print_sel_case(FILE *out, const struct sel_case_desc *s)
{
    switch (s->kind) {
    case WEFT__SEL_RECV:
        fprintf(out, "recv chan 0x%" PRIxPTR, s->obj);
        break;
    case WEFT__SEL_SEND:
        fprintf(out, "send chan 0x%" PRIxPTR, s->obj);
        break;
    case WEFT__SEL_TASK:
        fprintf(out, "task %" PRIu64, s->task);
        break;
    case WEFT__SEL_EVENT:
        fprintf(out, "event 0x%" PRIxPTR, s->obj);
        break;
    case WEFT__SEL_FD:
        fprintf(out, "fd %d %s", s->fd, fd_dir_name(s->dir, "readable or writable", "ready"));
        break;
    default:
        fputs("?", out);
        break;
    }
}

static void print_wait(FILE *out, struct dump *d, struct sym_cache *c, const struct wait_desc *w)
{
    char dur[32];
    switch (w->kind) {
    case WK_NONE:
        return;
    case WK_SLEEP:
        fmt_duration(dur, sizeof dur, w->until - weft__clock_ns());
        fprintf(out, ", waits on sleep, %s left", dur);
        return;
    case WK_MUTEX:
        fprintf(out, ", waits on mutex 0x%" PRIxPTR, w->obj);
        if (!w->known)
            fputs(" (holder unknown: busy)", out);
        else if (w->task)
            fprintf(out, " held by task %" PRIu64, w->task);
        else
            fputs(" (being handed over)", out);
        return;
    case WK_SEM:
        fprintf(out, ", waits on semaphore 0x%" PRIxPTR, w->obj);
        if (w->known)
            fprintf(out, " (%u free permits)", w->permits);
        return;
    case WK_JOIN:
        fprintf(out, ", waits on join of task %" PRIu64, w->task);
        return;
    case WK_ANY:
        fprintf(out, ", waits on wait_any (first: task %" PRIu64 ")", w->task);
        return;
    case WK_FD:
        fprintf(out, ", waits on fd %d %s (%s)", w->fd,
                w->dir == DIR_READ ? "readable" : w->dir == DIR_WRITE ? "writable" : "ready",
                w->what);
        return;
    case WK_BLOCKING: {
        fputs(", waits on run_blocking ", out);
        const struct weft__sym *s = symbol(d, c, w->fn + 1);
        if (s->func)
            fputs(s->func, out);
        else
            fprintf(out, "0x%" PRIxPTR, w->fn);
        fputs(w->job_running ? " (running)" : " (queued)", out);
        return;
    }
    case WK_SELECT:
        fprintf(out, ", waits on select of %zu", w->sel_n);
        for (unsigned i = 0; i < w->sel_kept; i++) {
            fputs(i ? ", " : ": ", out);
            print_sel_case(out, &d->sel[w->sel_first + i]);
        }
        if (w->sel_kept < w->sel_n)
            fprintf(out, "%s%zu more", w->sel_kept ? ", and " : ": ", w->sel_n - w->sel_kept);
        return;
    case WK_SIGNAL:
    case WK_OTHER:
        fprintf(out, ", waits on %s", w->what);
        return;
    default:
        fprintf(out, ", waits on %s 0x%" PRIxPTR, kind_name(w->kind), w->obj);
        return;
    }
}

static void print_task(FILE *out, struct dump *d, struct sym_cache *c, const struct task_rec *r)
{
    char dur[32];
    fprintf(out, "  task %" PRIu64, r->id);
    if (r->name[0])
        fprintf(out, " '%s'", r->name);
    fprintf(out, ": %s", state_names[r->state]);
    if (r->since) {
        fmt_duration(dur, sizeof dur, d->now - r->since);
        fprintf(out, " %s", dur);
    }
    if (r->worker >= 0)
        fprintf(out, " on worker %d", r->worker);
    print_wait(out, d, c, &r->wait);
    if (r->spawner)
        fprintf(out, ", spawned by task %" PRIu64, r->spawner);
    if (r->cancelled)
        fputs(", cancelled", out);
    fputc('\n', out);
}

static void print_frame(FILE *out, struct dump *d, struct sym_cache *c, unsigned i, uintptr_t pc)
{
    const struct weft__sym *s = symbol(d, c, pc);
    fprintf(out, "      #%-2u 0x%016" PRIxPTR " ", i, pc);
    if (s->func)
        fprintf(out, "%s+0x%" PRIxPTR, s->func, s->func_off);
    else
        fputs("??", out);
    if (s->file)
        fprintf(out, " at %s:%d", s->file, s->line);
    if (s->module)
        fprintf(out, " (%s+0x%" PRIxPTR ")", s->module, s->mod_off);
    fputc('\n', out);
}

static void print_stack(FILE *out, struct dump *d, struct sym_cache *c, int stack)
{
    if (stack < 0) {
        fputs("      (no stack)\n", out);
        return;
    }
    /* Formatted once per distinct stack: 100,000 tasks parked at one
     * place print one string 100,000 times. */
    struct stack_rec *s = &d->stacks[stack];
    if (!s->text) {
        FILE *m = open_memstream(&s->text, &s->text_len);
        if (!m) {
            for (unsigned i = 0; i < s->n; i++)
                print_frame(out, d, c, i, s->pc[i]);
            return;
        }
        for (unsigned i = 0; i < s->n; i++)
            print_frame(m, d, c, i, s->pc[i]);
        fclose(m);
    }
    fwrite(s->text, 1, s->text_len, out);
}

/* ------------------------------------------------------------ groups */

struct group {
    size_t first, count; /* a run of recs sorted by group key */
    int64_t min_ns, max_ns;
    bool timed;
};

static uintptr_t group_obj(const struct task_rec *r)
{
    return kind_groups_by_object(r->wait.kind) ? r->wait.obj : 0;
}

static int by_group(const void *a, const void *b)
{
    const struct task_rec *x = a, *y = b;
    if (x->state != y->state)
        return x->state < y->state ? -1 : 1;
    if (x->wait.kind != y->wait.kind)
        return x->wait.kind < y->wait.kind ? -1 : 1;
    uintptr_t ox = group_obj(x), oy = group_obj(y);
    if (ox != oy)
        return ox < oy ? -1 : 1;
    if (x->stack != y->stack)
        return x->stack < y->stack ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static bool same_group(const struct task_rec *x, const struct task_rec *y)
{
    return x->state == y->state && x->wait.kind == y->wait.kind && group_obj(x) == group_obj(y) &&
           x->stack == y->stack;
}

static int by_count(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first < y->first ? -1 : 1;
}

/* Groups d->recs (which it sorts by group key), largest first. */
static struct group *make_groups(struct dump *d, size_t *n_out)
{
    *n_out = 0;
    if (d->n == 0)
        return NULL;
    qsort(d->recs, d->n, sizeof *d->recs, by_group);
    struct group *g = malloc(d->n * sizeof *g);
    if (!g)
        return NULL;
    size_t n = 0;
    for (size_t k = 0; k < d->n; k++) {
        const struct task_rec *r = &d->recs[k];
        if (k == 0 || !same_group(&d->recs[k - 1], r))
            g[n++] = (struct group){.first = k, .min_ns = INT64_MAX, .max_ns = INT64_MIN};
        struct group *cur = &g[n - 1];
        cur->count++;
        if (r->since) {
            int64_t t = d->now - r->since;
            cur->timed = true;
            if (t < cur->min_ns)
                cur->min_ns = t;
            if (t > cur->max_ns)
                cur->max_ns = t;
        }
    }
    qsort(g, n, sizeof *g, by_count);
    *n_out = n;
    return g;
}

static void print_group(FILE *out, struct dump *d, struct sym_cache *c, const struct group *g)
{
    const struct task_rec *r = &d->recs[g->first];
    fprintf(out, "  %zu task%s [%s", g->count, g->count == 1 ? "" : "s", state_names[r->state]);
    struct wait_desc w = r->wait;
    if (!kind_groups_by_object(w.kind) && g->count > 1) {
        /* The members wait on different objects: name the kind only. */
        if (w.kind != WK_NONE && w.kind != WK_OTHER)
            fprintf(out, ", waits on %s", kind_name(w.kind));
        else if (w.kind == WK_OTHER)
            fprintf(out, ", waits on %s", w.what);
    } else {
        print_wait(out, d, c, &w);
    }
    if (g->timed) {
        char range[64];
        fmt_range(range, sizeof range, g->min_ns, g->max_ns);
        fprintf(out, ", %s", range);
    }
    fputc(']', out);
    if (g->count == 1) {
        fprintf(out, " task %" PRIu64, r->id);
        if (r->name[0])
            fprintf(out, " '%s'", r->name);
    }
    if (r->stack >= 0) {
        const struct stack_rec *s = &d->stacks[r->stack];
        const struct weft__sym *at = symbol(d, c, s->pc[at_frame(d, c, s)]);
        fprintf(out, " at %s", at->func ? at->func : "??");
        if (at->file) {
            const char *base = strrchr(at->file, '/');
            fprintf(out, " %s:%d", base ? base + 1 : at->file, at->line);
        }
    }
    fputc('\n', out);
}

/* ------------------------------------------------------------ JSON */

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void json_wait(FILE *out, struct dump *d, struct sym_cache *c, const struct wait_desc *w)
{
    fputs("{\"kind\":", out);
    json_str(out, kind_name(w->kind));
    switch (w->kind) {
    case WK_SLEEP:
        fprintf(out, ",\"left_ns\":%" PRId64, w->until - weft__clock_ns());
        break;
    case WK_MUTEX:
        fprintf(out, ",\"object\":\"0x%" PRIxPTR "\"", w->obj);
        if (w->known)
            fprintf(out, ",\"holder\":%" PRIu64, w->task);
        break;
    case WK_SEM:
        fprintf(out, ",\"object\":\"0x%" PRIxPTR "\"", w->obj);
        if (w->known)
            fprintf(out, ",\"permits\":%u", w->permits);
        break;
    case WK_JOIN:
    case WK_ANY:
        fprintf(out, ",\"task\":%" PRIu64, w->task);
        break;
    case WK_FD:
        fprintf(out, ",\"fd\":%d,\"direction\":\"%s\",\"call\":", w->fd,
                w->dir == DIR_READ ? "readable" : w->dir == DIR_WRITE ? "writable" : "either");
        json_str(out, w->what);
        break;
    case WK_BLOCKING: {
        const struct weft__sym *s = symbol(d, c, w->fn + 1);
        fprintf(out, ",\"fn\":\"0x%" PRIxPTR "\"", w->fn);
        if (s->func) {
            fputs(",\"fn_name\":", out);
            json_str(out, s->func);
        }
        fprintf(out, ",\"running\":%s", w->job_running ? "true" : "false");
        break;
    }
    case WK_SELECT:
        fprintf(out, ",\"object\":\"0x%" PRIxPTR "\",\"n\":%zu,\"cases\":[", w->obj, w->sel_n);
        for (unsigned i = 0; i < w->sel_kept; i++) {
            const struct sel_case_desc *s = &d->sel[w->sel_first + i];
            fputs(i ? ",{\"kind\":" : "{\"kind\":", out);
            switch (s->kind) {
            case WEFT__SEL_RECV:
            case WEFT__SEL_SEND:
            case WEFT__SEL_EVENT:
                fprintf(out, "\"%s\",\"object\":\"0x%" PRIxPTR "\"",
                        s->kind == WEFT__SEL_RECV   ? "chan recv"
                        : s->kind == WEFT__SEL_SEND ? "chan send"
                                                    : "event",
                        s->obj);
                break;
            case WEFT__SEL_TASK:
                fprintf(out, "\"task\",\"task\":%" PRIu64, s->task);
                break;
            case WEFT__SEL_FD:
                fprintf(out, "\"fd\",\"fd\":%d,\"direction\":\"%s\"", s->fd,
                        fd_dir_name(s->dir, "both", "either"));
                break;
            default:
                fputs("\"?\"", out);
                break;
            }
            fputc('}', out);
        }
        fputc(']', out);
        break;
    case WK_NONE:
    case WK_SIGNAL:
    case WK_OTHER:
        break;
    default:
        fprintf(out, ",\"object\":\"0x%" PRIxPTR "\"", w->obj);
        break;
    }
    fputc('}', out);
}

static void json_stack_frames(FILE *out, struct dump *d, struct sym_cache *c, int stack);

static void json_stack(FILE *out, struct dump *d, struct sym_cache *c, int stack)
{
    if (stack < 0) {
        fputs(",\"stack\":[]", out);
        return;
    }
    struct stack_rec *s = &d->stacks[stack];
    if (!s->json) {
        FILE *m = open_memstream(&s->json, &s->json_len);
        if (!m) {
            json_stack_frames(out, d, c, stack);
            return;
        }
        json_stack_frames(m, d, c, stack);
        fclose(m);
    }
    fwrite(s->json, 1, s->json_len, out);
}

static void json_stack_frames(FILE *out, struct dump *d, struct sym_cache *c, int stack)
{
    fputs(",\"stack\":[", out);
    if (stack >= 0) {
        const struct stack_rec *s = &d->stacks[stack];
        for (unsigned i = 0; i < s->n; i++) {
            const struct weft__sym *y = symbol(d, c, s->pc[i]);
            fprintf(out, "%s{\"pc\":\"0x%" PRIxPTR "\"", i ? "," : "", s->pc[i]);
            if (y->func) {
                fputs(",\"func\":", out);
                json_str(out, y->func);
            }
            if (y->file) {
                fputs(",\"file\":", out);
                json_str(out, y->file);
                fprintf(out, ",\"line\":%d", y->line);
            }
            if (y->module) {
                fputs(",\"module\":", out);
                json_str(out, y->module);
                fprintf(out, ",\"offset\":\"0x%" PRIxPTR "\"", y->mod_off);
            }
            fputc('}', out);
        }
    }
    fputc(']', out);
}

static void json_task(FILE *out, struct dump *d, struct sym_cache *c, const struct task_rec *r)
{
    fprintf(out, "{\"type\":\"task\",\"id\":%" PRIu64 ",\"name\":", r->id);
    json_str(out, r->name);
    fputs(",\"state\":", out);
    json_str(out, state_names[r->state]);
    if (r->since)
        fprintf(out, ",\"in_state_ns\":%" PRId64, d->now - r->since);
    fprintf(out, ",\"spawner\":%" PRIu64 ",\"cancelled\":%s", r->spawner,
            r->cancelled ? "true" : "false");
    if (r->worker >= 0)
        fprintf(out, ",\"worker\":%d", r->worker);
    else
        fputs(",\"worker\":null", out);
    fputs(",\"wait\":", out);
    json_wait(out, d, c, &r->wait);
    if (d->want_stacks && (r->state == ST_PARKED || r->state == ST_SLEEPING))
        json_stack(out, d, c, r->stack);
    fputs("}\n", out);
}

static void json_group(FILE *out, struct dump *d, struct sym_cache *c, const struct group *g)
{
    const struct task_rec *r = &d->recs[g->first];
    fprintf(out, "{\"type\":\"group\",\"count\":%zu,\"state\":", g->count);
    json_str(out, state_names[r->state]);
    fputs(",\"wait\":", out);
    json_str(out, kind_name(r->wait.kind));
    if (group_obj(r))
        fprintf(out, ",\"object\":\"0x%" PRIxPTR "\"", group_obj(r));
    if (g->timed)
        fprintf(out, ",\"min_ns\":%" PRId64 ",\"max_ns\":%" PRId64, g->min_ns, g->max_ns);
    fprintf(out, ",\"first_task\":%" PRIu64, r->id);
    if (r->stack >= 0) {
        const struct stack_rec *s = &d->stacks[r->stack];
        const struct weft__sym *at = symbol(d, c, s->pc[at_frame(d, c, s)]);
        if (at->func) {
            fputs(",\"at\":", out);
            json_str(out, at->func);
        }
        if (at->file) {
            fputs(",\"file\":", out);
            json_str(out, at->file);
            fprintf(out, ",\"line\":%d", at->line);
        }
        if (d->want_stacks)
            json_stack(out, d, c, r->stack);
    }
    fputs("}\n", out);
}

/* ------------------------------------------------------------ dump */

static void dump_run(weft_runtime *rt, FILE *out, unsigned flags)
{
    struct dump d = {.rt = rt, .flags = flags};
    d.want_stacks = (flags & (WEFT_DUMP_STACKS | WEFT_DUMP_SUMMARY)) != 0;
    if (d.want_stacks)
        symbols(&d);
    /* Records are taken first and printed after, so that a slow stream
     * never holds a task's reference (or a task parked) for long. */
    weft__task_for_each(rt, collect, &d);
    d.now = weft__clock_coarse_ns();
    d.want_stacks = (flags & WEFT_DUMP_STACKS) != 0;
    unsigned threads, busy, idle;
    unsigned long queued;
    weft__pool_counts(rt->pool, &threads, &busy, &idle, &queued);
    struct sym_cache cache = {0};
    size_t n_groups = 0;
    struct group *groups = NULL;
    if (flags & WEFT_DUMP_SUMMARY)
        groups = make_groups(&d, &n_groups);
    if (flags & WEFT_DUMP_JSON) {
        fprintf(out,
                "{\"type\":\"runtime\",\"workers\":%u,\"live\":%zu,\"groups\":%zu,"
                "\"blocking_threads\":%u,\"blocking_busy\":%u,\"unwinder\":\"%s\"%s}\n",
                rt->n_workers, d.n, n_groups, threads, busy, weft__unwinder_name(),
                d.out_of_memory ? ",\"incomplete\":true" : "");
        for (size_t k = 0; k < n_groups; k++)
            json_group(out, &d, &cache, &groups[k]);
        if (!(flags & WEFT_DUMP_SUMMARY) && d.n > 1)
            qsort(d.recs, d.n, sizeof *d.recs, by_id);
        for (size_t k = 0; k < d.n; k++)
            json_task(out, &d, &cache, &d.recs[k]);
    } else {
        fprintf(out,
                "weft runtime: %u workers, %zu live tasks, blocking pool %u threads "
                "(%u busy, %u idle, %lu queued)\n",
                rt->n_workers, d.n, threads, busy, idle, queued);
        if (flags & WEFT_DUMP_SUMMARY) {
            fprintf(out, "summary: %zu group%s, largest first (stacks: %s)\n", n_groups,
                    n_groups == 1 ? "" : "s", weft__unwinder_name());
            for (size_t k = 0; k < n_groups; k++) {
                print_group(out, &d, &cache, &groups[k]);
                if (d.want_stacks && d.recs[groups[k].first].stack >= 0)
                    print_stack(out, &d, &cache, d.recs[groups[k].first].stack);
            }
        } else {
            if (d.n > 1)
                qsort(d.recs, d.n, sizeof *d.recs, by_id); /* about spawn order */
            for (size_t k = 0; k < d.n; k++) {
                print_task(out, &d, &cache, &d.recs[k]);
                if (d.want_stacks &&
                    (d.recs[k].state == ST_PARKED || d.recs[k].state == ST_SLEEPING))
                    print_stack(out, &d, &cache, d.recs[k].stack);
            }
        }
        if (d.out_of_memory)
            fputs("  (out of memory: some tasks are not listed)\n", out);
    }
    fflush(out);
    free(groups);
    free(cache.pc);
    free(cache.sym);
    free(d.recs);
    free(d.sel);
    for (size_t k = 0; k < d.n_stacks; k++) {
        free(d.stacks[k].text);
        free(d.stacks[k].json);
    }
    free(d.stacks);
    free(d.stack_index);
    weft__symbols_free(d.syms);
}

void weft_runtime_dump(weft_runtime *rt, FILE *out)
{
    if (!rt || !out)
        return;
    dump_run(rt, out, 0);
}

void weft_runtime_dump_ex(weft_runtime *rt, FILE *out, unsigned flags)
{
    if (!rt || !out || (flags & ~(unsigned)(WEFT_DUMP_STACKS | WEFT_DUMP_SUMMARY | WEFT_DUMP_JSON)))
        return;
    dump_run(rt, out, flags);
}

/* ------------------------------------------------------------ signal */

/* WEFT_DUMP_SIGNAL: the handler writes one byte to a pipe; a thread of
 * ours reads it and dumps every runtime registered (summary and stacks,
 * to stderr). The runtimes are registered while they live; runtime_free
 * unregisters (and waits for a dump in progress, which holds dump_lock).
 * The thread and the handler exist while some runtime is registered. */
static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER; /* start/stop */
static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER; /* the list */
static struct weft_runtime **sig_rts;
static size_t sig_n, sig_cap;
static int sig_pipe[2] = {-1, -1};
static int sig_no;
static struct sigaction sig_old;
static pthread_t sig_thread;

static void on_dump_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char c = 'd';
    ssize_t rc = write(sig_pipe[1], &c, 1); /* full pipe: a dump is due anyway */
    (void)rc;
    errno = saved;
}

static void *signal_main(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_setname_np(pthread_self(), "weft-dump");
    for (;;) {
        char c;
        ssize_t n = read(sig_pipe[0], &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c == 'q')
            return NULL;
        pthread_mutex_lock(&dump_lock);
        for (size_t i = 0; i < sig_n; i++) {
            fprintf(stderr, "weft: dump on signal %d (runtime %zu of %zu)\n", sig_no, i + 1,
                    sig_n);
            dump_run(sig_rts[i], stderr, WEFT_DUMP_SUMMARY | WEFT_DUMP_STACKS);
        }
        pthread_mutex_unlock(&dump_lock);
    }
}

static int parse_signal(const char *s)
{
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    if (strcmp(s, "QUIT") == 0)
        return SIGQUIT;
    if (strcmp(s, "USR1") == 0)
        return SIGUSR1;
    if (strcmp(s, "USR2") == 0)
        return SIGUSR2;
    return 0;
}

int weft__dump_signal_number(void)
{
    const char *env = getenv("WEFT_DUMP_SIGNAL");
    return env && *env ? parse_signal(env) : 0;
}

int weft__dump_signal_start(struct weft_runtime *rt)
{
    const char *env = getenv("WEFT_DUMP_SIGNAL");
    if (!env || !*env)
        return 0;
    int sig = parse_signal(env);
    if (!sig) {
        fprintf(stderr, "weft: WEFT_DUMP_SIGNAL=%s: not QUIT, USR1 or USR2; ignored\n", env);
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&life_lock);
    if (sig_n == 0) {
        if (pipe2(sig_pipe, O_CLOEXEC) != 0) {
            rc = -errno;
            goto out;
        }
        fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);
        int e = pthread_create(&sig_thread, NULL, signal_main, NULL);
        if (e) {
            close(sig_pipe[0]);
            close(sig_pipe[1]);
            sig_pipe[0] = sig_pipe[1] = -1;
            rc = -e;
            goto out;
        }
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_dump_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sig_no = sig;
        sigaction(sig, &sa, &sig_old);
    }
    pthread_mutex_lock(&dump_lock);
    if (sig_n == sig_cap) {
        size_t cap = sig_cap ? 2 * sig_cap : 4;
        struct weft_runtime **r = realloc(sig_rts, cap * sizeof *r);
        if (!r) {
            pthread_mutex_unlock(&dump_lock);
            rc = -ENOMEM;
            goto out;
        }
        sig_rts = r;
        sig_cap = cap;
    }
    sig_rts[sig_n++] = rt;
    pthread_mutex_unlock(&dump_lock);
out:
    pthread_mutex_unlock(&life_lock);
    return rc;
}

void weft__dump_signal_stop(struct weft_runtime *rt)
{
    pthread_mutex_lock(&life_lock);
    pthread_mutex_lock(&dump_lock);
    bool found = false;
    for (size_t i = 0; i < sig_n; i++)
        if (sig_rts[i] == rt) {
            sig_rts[i] = sig_rts[--sig_n];
            found = true;
            break;
        }
    bool last = found && sig_n == 0;
    pthread_mutex_unlock(&dump_lock);
    if (last) {
        sigaction(sig_no, &sig_old, NULL);
        char c = 'q';
        while (write(sig_pipe[1], &c, 1) < 0 && (errno == EINTR || errno == EAGAIN))
            usleep(1000); /* full of dump requests: the thread drains it */
        pthread_join(sig_thread, NULL);
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        sig_pipe[0] = sig_pipe[1] = -1;
        free(sig_rts);
        sig_rts = NULL;
        sig_cap = 0;
    }
    pthread_mutex_unlock(&life_lock);
}
