/* SPDX-License-Identifier: MIT */
/* Compiler helpers used across the library. */
#ifndef WEFT_COMPILER_H
#define WEFT_COMPILER_H

#include <stddef.h>

#define WEFT__LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define WEFT__MUST_CHECK __attribute__((warn_unused_result))
#define WEFT__NOINLINE __attribute__((noinline))
#define WEFT__CACHELINE 64
#define WEFT__ALIGNED_CL __attribute__((aligned(WEFT__CACHELINE)))

#define weft__container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif /* WEFT_COMPILER_H */
