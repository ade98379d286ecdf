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

#include <stdint.h>
#include <sys/mman.h>
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

#if !defined(WEFT__ASAN) && !defined(WEFT__TSAN)
/* A plain library in a program built with -fsanitize=address: ASan must
 * still be told of every stack switch, or a longjmp or a C++ throw in a
 * task (whose __asan_handle_no_return then sees a stack it does not know)
 * leaves the skipped frames' poison behind, and the next frames there
 * report a false stack-buffer-underflow. Weak references: both null when
 * the process has no ASan runtime (one predictable branch a switch). */
extern void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                           size_t size) __attribute__((weak));
extern void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                            size_t *size_old) __attribute__((weak));
#define WEFT__ASAN_AT_RUNTIME 1
#endif

/* ASan: call before a switch; fake_save == NULL when the current context
 * will never be resumed (its fake stack is then released). */
static inline void weft__checker_start_switch(void **fake_save, const void *bottom,
                                              size_t size)
{
#if defined(WEFT__ASAN)
    __sanitizer_start_switch_fiber(fake_save, bottom, size);
#elif defined(WEFT__ASAN_AT_RUNTIME)
    if (__builtin_expect(__sanitizer_start_switch_fiber != NULL, 0))
        __sanitizer_start_switch_fiber(fake_save, bottom, size);
#else
    (void)fake_save, (void)bottom, (void)size;
#endif
}

/* ASan: call first thing after a switch lands. */
static inline void weft__checker_finish_switch(void *fake_save)
{
#if defined(WEFT__ASAN)
    __sanitizer_finish_switch_fiber(fake_save, NULL, NULL);
#elif defined(WEFT__ASAN_AT_RUNTIME)
    if (__builtin_expect(__sanitizer_finish_switch_fiber != NULL, 0))
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

/* Runs commit(arg) on behalf of the task whose stack's fiber is `parked`,
 * which has just switched away (sched.h: commit after switch). Under TSan
 * the landing context is another fiber, and TSan keeps mutex owners per
 * fiber: the unlock of the lock the task parked with would be reported as
 * "unlock of an unlocked mutex (or by a wrong thread)". So TSan is told
 * that `parked` runs the commit, without sync (the switch that just
 * happened already ordered the two fibers). */
static inline void weft__checker_commit_as(void *parked, void (*commit)(void *), void *arg)
{
#ifdef WEFT__TSAN
    void *landed = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(parked, __tsan_switch_to_fiber_no_sync);
    commit(arg);
    __tsan_switch_to_fiber(landed, __tsan_switch_to_fiber_no_sync);
#else
    (void)parked;
    commit(arg);
#endif
}

#ifndef WEFT__ASAN
/* A plain library can be loaded by a program built with -fsanitize=address:
 * then the program's frames on task stacks poison shadow that this library
 * knows nothing about. Weak references find the ASan runtime if the
 * process has one (both null otherwise). */
extern void __asan_get_shadow_mapping(size_t *shadow_scale, size_t *shadow_offset)
    __attribute__((weak));
extern void __asan_unpoison_memory_region(void const volatile *addr, size_t size)
    __attribute__((weak));
#endif

/* Clears ASan's shadow of [lo, lo + size) (the ASan runtime must be there).
 * Unpoisoning writes the whole shadow (size / 8 bytes), which would commit
 * 32 KiB per 256 KiB stack and make a million parked tasks cost 32 GB, so
 * the page-aligned middle of the shadow is dropped with MADV_DONTNEED
 * instead (reads back as zero = addressable), as ASan does itself for
 * large regions; only the edges are written. */
static inline void weft__checker_shadow_clear(void *lo, size_t size)
{
    size_t scale, offset;
    __asan_get_shadow_mapping(&scale, &offset);
    uintptr_t page = 4096;
    uintptr_t beg = ((uintptr_t)lo >> scale) + offset;
    uintptr_t end = (((uintptr_t)lo + size) >> scale) + offset;
    uintptr_t mid_beg = (beg + page - 1) & ~(page - 1);
    uintptr_t mid_end = end & ~(page - 1);
    if (mid_beg < mid_end &&
        madvise((void *)mid_beg, mid_end - mid_beg, MADV_DONTNEED) == 0) {
        /* The edges, in application addresses. */
        uintptr_t app_mid_beg = (mid_beg - offset) << scale;
        uintptr_t app_mid_end = (mid_end - offset) << scale;
        __asan_unpoison_memory_region(lo, app_mid_beg - (uintptr_t)lo);
        __asan_unpoison_memory_region((void *)app_mid_end,
                                      (uintptr_t)lo + size - app_mid_end);
    } else {
        __asan_unpoison_memory_region(lo, size);
    }
}

/* ASan: a reused stack may carry the poisoning of its previous task's
 * frames, and a fresh one that of an unmapped stack at the same address
 * (ASan keeps shadow across munmap); clear it before a new task starts on
 * it. A no-op in a plain build (hot path: every task's first run), where
 * every task's frames have returned, and so unpoisoned themselves, by the
 * time its stack is reused; see weft__checker_stack_unmap for the frames
 * that never return. */
static inline void weft__checker_stack_reuse(void *lo, size_t size)
{
#ifdef WEFT__ASAN
    weft__checker_shadow_clear(lo, size);
#else
    (void)lo, (void)size;
#endif
}

/* ASan: call before stack memory is unmapped. Frames that never returned
 * (every task's last switch away, in an ASan build; a task abandoned by
 * weft_runtime_free, whose run_blocking fn outlived the runtime, in any
 * build) leave their redzones poisoned, and ASan keeps shadow across
 * munmap: whatever is mapped there next (the next runtime's stacks) would
 * report a stack-buffer-underflow on its first frame. In a plain build the
 * shadow is cleared only if the process has an ASan runtime (an
 * instrumented program's task functions poison it). */
static inline void weft__checker_stack_unmap(void *lo, size_t size)
{
#ifdef WEFT__ASAN
    weft__checker_shadow_clear(lo, size);
#else
    if (__asan_get_shadow_mapping && __asan_unpoison_memory_region)
        weft__checker_shadow_clear(lo, size);
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
