/* SPDX-License-Identifier: MIT */
/* Stack-overflow reports: a SIGSEGV handler on an alternate signal stack
 * recognises faults in a task stack's guard page and names the task before
 * the process aborts. */
#ifndef WEFT_CTX_GUARD_H
#define WEFT_CTX_GUARD_H

#include "compiler.h"

struct worker;

/* Installs the process-wide handler once (chaining to a previous one for
 * faults that are not ours). Returns 0 or a negative errno. */
WEFT__MUST_CHECK int weft__guard_install(void);
/* Gives the calling worker thread an alternate signal stack; *mem receives
 * what weft__guard_thread_fini frees. */
WEFT__MUST_CHECK int weft__guard_thread_init(void **mem);
void weft__guard_thread_fini(void *mem);

#endif /* WEFT_CTX_GUARD_H */
