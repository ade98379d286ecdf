/* SPDX-License-Identifier: MIT */
/* A test-and-test-and-set spinlock for critical sections of a few dozen
 * instructions (registry links, inject-queue ends), where a pthread mutex
 * costs more than the work. Spins politely, then yields the CPU so that a
 * preempted holder can finish. Never held across a switch or a syscall. */
#ifndef WEFT_UTIL_SPIN_H
#define WEFT_UTIL_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

/* One spin-wait hint to the CPU (x86 pause, arm yield). */
static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

struct spin {
    _Atomic bool held;
};

static inline void spin_init(struct spin *s) { atomic_init(&s->held, false); }

static inline void spin_lock(struct spin *s)
{
    for (;;) {
        /* Acquire: pairs with the release in spin_unlock; everything the
         * previous holder wrote is visible inside. */
        if (!atomic_exchange_explicit(&s->held, true, memory_order_acquire))
            return;
        for (int i = 0; atomic_load_explicit(&s->held, memory_order_relaxed); i++) {
            if (i < 100) {
                weft__cpu_relax();
            } else {
                sched_yield();
            }
        }
    }
}

/* One try: true if the lock was taken. */
static inline bool spin_trylock(struct spin *s)
{
    /* Acquire: as in spin_lock. */
    return !atomic_load_explicit(&s->held, memory_order_relaxed) &&
           !atomic_exchange_explicit(&s->held, true, memory_order_acquire);
}

static inline void spin_unlock(struct spin *s)
{
    /* Release: pairs with spin_lock's acquire exchange. */
    atomic_store_explicit(&s->held, false, memory_order_release);
}

#endif /* WEFT_UTIL_SPIN_H */
