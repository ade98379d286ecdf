/* SPDX-License-Identifier: MIT */
/* The context-switch contract. A context is a saved stack pointer; the
 * callee-saved registers (and, on x86-64, MXCSR and the x87 control word;
 * on AArch64, FPCR) live on the stack it points to. */
#ifndef WEFT_CTX_CONTEXT_H
#define WEFT_CTX_CONTEXT_H

#include <stddef.h>

struct ctx {
    void *sp;
};

/* Saves the caller's callee-saved state on its stack, stores the stack
 * pointer in from->sp and resumes to. Returns when something switches back
 * to from. Implemented in switch_<arch>.S. */
void weft__ctx_switch(struct ctx *from, const struct ctx *to);

/* Prepares c so that the first switch to it calls entry() on the stack
 * [lo, lo + size), 16-byte aligned as a normal call would be. entry must
 * never return. */
void weft__ctx_make(struct ctx *c, void *lo, size_t size, void (*entry)(void));

#endif /* WEFT_CTX_CONTEXT_H */
