/* SPDX-License-Identifier: MIT */
/* The call stacks of parked tasks, for dumps: unwinding from a task's
 * saved context and naming the addresses found.
 *
 * With elfutils' libdw (configure finds it): DWARF CFI unwinding through
 * .eh_frame / .debug_frame, function names from each module's symbol
 * tables (.symtab too, so static functions of a program built without
 * -rdynamic), and file:line from .debug_line. Without it: the frame
 * pointer chain, names of exported functions (dladdr), and module+offset
 * for the rest, which `addr2line -f -e module offset` takes. */
#ifndef WEFT_DIAG_STACK_H
#define WEFT_DIAG_STACK_H

#include <stddef.h>
#include <stdint.h>

#define WEFT__STACK_MAX 32 /* frames kept per task */

/* One dump's unwinder and symbol tables (the modules mapped when it was
 * made). Not thread-safe: one dump at a time uses it. */
struct weft__symbols;

/* NULL when out of memory (the dump then shows no stacks). */
struct weft__symbols *weft__symbols_new(void);
void weft__symbols_free(struct weft__symbols *s);

/* Fills pcs (at most max) with the return addresses of the context saved
 * at sp (weft__ctx_switch's frame) on the stack [lo, lo + size), which
 * must not change meanwhile (the task is held parked). pcs[0] is where
 * weft__ctx_switch returns to. Returns the number of frames. Reads only
 * inside the stack. */
unsigned weft__unwind(struct weft__symbols *s, const void *sp, const char *lo, size_t size,
                      uintptr_t *pcs, unsigned max);

/* What a return address names. The strings live as long as s. */
struct weft__sym {
    const char *func;   /* function, or NULL */
    uintptr_t func_off; /* pc - the function's start (when func) */
    const char *file;   /* source file, or NULL */
    int line;           /* with file */
    const char *module; /* path of the object mapped there, or NULL */
    uintptr_t mod_off;  /* pc as addr2line takes it for module */
    int in_weft;        /* 1: weft's own code, 0: not, -1: unknown (weft
                           linked into the program: names decide) */
};

/* Names pc, a return address (so the call before it is looked up). */
void weft__symbolize(struct weft__symbols *s, uintptr_t pc, struct weft__sym *out);

/* Which unwinder this build has: "libdw" or "frame pointers". */
const char *weft__unwinder_name(void);

#endif /* WEFT_DIAG_STACK_H */
