/* SPDX-License-Identifier: MIT */
/* weft: many coroutine tasks on a few threads, with asyncio's programming
 * model. The only header users include. Conventions: fallible calls return
 * 0 (or a count) or a negative errno; constructors return NULL and set
 * errno; durations and instants are int64_t nanoseconds on
 * CLOCK_MONOTONIC. */
#ifndef WEFT_H
#define WEFT_H

#include "weft/version.h"
#include "weft/common.h"
#include "weft/runtime.h"
#include "weft/task.h"
#include "weft/deadline.h"
#include "weft/group.h"
#include "weft/blocking.h"
#include "weft/io.h"
#include "weft/sync.h"
#include "weft/chan.h"
#include "weft/select.h"
#include "weft/gen.h"
#include "weft/diag.h"
#include "weft/signals.h"

#endif /* WEFT_H */
