/* SPDX-License-Identifier: MIT */
/* Building the first frame of a new context for each architecture. */
#include "internal.h"

#include <stdint.h>
#include <string.h>

#include "ctx/context.h"

void weft__ctx_make(struct ctx *c, void *lo, size_t size, void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* From the saved sp upward: control slot, r15, r14, r13, r12, rbx, rbp,
     * return address (entry), then a zero fake return address so that
     * entry starts with rsp % 16 == 8, exactly as after a call. */
    uint64_t *sp = (uint64_t *)(top - 8 - 8 - 7 * 8);
    memset(sp, 0, 9 * 8);
    uint32_t mxcsr = 0x1F80;   /* all exceptions masked, round to nearest */
    uint16_t fpucw = 0x037F;   /* x87 default: extended precision, masked */
    memcpy(&sp[0], &mxcsr, 4);
    memcpy((char *)&sp[0] + 4, &fpucw, 2);
    sp[7] = (uint64_t)(uintptr_t)entry;
    sp[8] = 0;
    c->sp = sp;
#elif defined(__aarch64__)
    uint64_t *sp = (uint64_t *)(top - 176);
    memset(sp, 0, 176);
    sp[11] = (uint64_t)(uintptr_t)entry; /* x30: where ret goes */
    sp[10] = 0;                          /* x29: end of frame chain */
    sp[20] = 0;                          /* FPCR: round to nearest */
    c->sp = sp;
#else
#error "unsupported architecture"
#endif
}
