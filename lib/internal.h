/* SPDX-License-Identifier: MIT */
/* First include of every library source file. */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

#include "compiler.h"

/* An invariant of the library itself (never of user input): stays on in
 * release builds and aborts with a message, as libdill's dill_assert. */
#define WEFT__ASSERT(x)                                                        \
    do {                                                                       \
        if (WEFT__UNLIKELY(!(x)))                                              \
            weft__panic(__FILE__, __LINE__, #x);                               \
    } while (0)

__attribute__((noreturn, cold)) void weft__panic(const char *file, int line,
                                                 const char *what);

#endif /* WEFT_INTERNAL_H */
