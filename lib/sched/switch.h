/* SPDX-License-Identifier: MIT */
/* Switching between tasks and the worker loop (switch.c): the one place
 * that saves and restores a task's registers, and runs the action of the
 * context that switched away (requeue, commit a park, finish) on the one
 * that landed. */
#ifndef WEFT_SCHED_SWITCH_H
#define WEFT_SCHED_SWITCH_H

#include "sched/sched.h"

/* Runs t from the worker loop until it switches back to the loop. */
void weft__run_from_loop(struct worker *w, struct weft_task *t);

#endif /* WEFT_SCHED_SWITCH_H */
