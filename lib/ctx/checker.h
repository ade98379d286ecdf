/* SPDX-License-Identifier: MIT */
/* Telling AddressSanitizer, ThreadSanitizer and valgrind about stack
 * switches. Every hook is a no-op in a plain build. */
#ifndef WEFT_CTX_CHECKER_H
#define WEFT_CTX_CHECKER_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif

#ifdef WEFT__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT__TSAN
#include <sanitizer/tsan_interface.h>
#endif
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

/* ASan: call before a switch; fake_save == NULL when the current context
 * will never be resumed (its fake stack is then released). */
static inline void weft__checker_start_switch(void **fake_save, const void *bottom,
                                              size_t size)
{
#ifdef WEFT__ASAN
    __sanitizer_start_switch_fiber(fake_save, bottom, size);
#else
    (void)fake_save, (void)bottom, (void)size;
#endif
}

/* ASan: call first thing after a switch lands. */
static inline void weft__checker_finish_switch(void *fake_save)
{
#ifdef WEFT__ASAN
    __sanitizer_finish_switch_fiber(fake_save, NULL, NULL);
#else
    (void)fake_save;
#endif
}

/* TSan fibers: one per task stack, one per worker thread. */
static inline void *weft__checker_fiber_current(void)
{
#ifdef WEFT__TSAN
    return __tsan_get_current_fiber();
#else
    return NULL;
#endif
}

static inline void *weft__checker_fiber_new(void)
{
#ifdef WEFT__TSAN
    return __tsan_create_fiber(0);
#else
    return NULL;
#endif
}

static inline void weft__checker_fiber_free(void *fiber)
{
#ifdef WEFT__TSAN
    if (fiber)
        __tsan_destroy_fiber(fiber);
#else
    (void)fiber;
#endif
}

/* Must be called right before weft__ctx_switch to the context that runs on
 * fiber. Flag 0 makes TSan order the switch (the scheduler's queues already
 * carry the happens-before edges between threads). */
static inline void weft__checker_fiber_switch(void *fiber)
{
#ifdef WEFT__TSAN
    __tsan_switch_to_fiber(fiber, 0);
#else
    (void)fiber;
#endif
}

/* ASan: a reused stack may carry the poisoning of its previous task's
 * frames; clear it before a new task starts on it. */
static inline void weft__checker_stack_reuse(void *lo, size_t size)
{
#ifdef WEFT__ASAN
    ASAN_UNPOISON_MEMORY_REGION(lo, size);
#else
    (void)lo, (void)size;
#endif
}

/* valgrind: stacks it must not mistake for wild stack-pointer changes. */
static inline unsigned weft__checker_stack_register(void *lo, void *hi)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
    return VALGRIND_STACK_REGISTER(lo, hi);
#else
    (void)lo, (void)hi;
    return 0;
#endif
}

static inline void weft__checker_stack_deregister(unsigned id)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(id);
#else
    (void)id;
#endif
}

#endif /* WEFT_CTX_CHECKER_H */
