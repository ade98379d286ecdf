/* SPDX-License-Identifier: MIT */
/* Unwinding a parked task's stack from its saved context, and naming the
 * return addresses found (see stack.h). The task's registers are where
 * weft__ctx_switch pushed them (ctx/switch_*.S), so the unwind starts in
 * the frame that called it, as if that call had just returned. */
#include "internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag/stack.h"

#ifdef WEFT__ASAN
#define WEFT__NO_ASAN __attribute__((no_sanitize_address))
#else
#define WEFT__NO_ASAN
#endif

/* The registers weft__ctx_switch saved, as the caller sees them after the
 * switch returns. */
struct saved_regs {
    uintptr_t pc, sp, fp;
#if defined(__x86_64__)
    uintptr_t rbx, r12, r13, r14, r15;
#elif defined(__aarch64__)
    uintptr_t x[10]; /* x19..x28 */
#endif
};

/* One word of the stack [lo, lo + size), or false outside it. Not
 * instrumented: the words read (saved registers, return addresses, frame
 * records) are never in an ASan redzone, but the unwinder asks for what
 * CFI says, which the checker cannot know is the frame's own. */
static WEFT__NO_ASAN bool stack_word(const char *lo, size_t size, uintptr_t addr, uintptr_t *out)
{
    if (addr % sizeof(uintptr_t) != 0 || addr < (uintptr_t)lo ||
        addr > (uintptr_t)lo + size - sizeof(uintptr_t))
        return false;
    *out = *(const volatile uintptr_t *)addr;
    return true;
}

static bool read_saved(const void *sp, const char *lo, size_t size, struct saved_regs *r)
{
    uintptr_t base = (uintptr_t)sp;
    uintptr_t w[12];
#if defined(__x86_64__)
    /* mxcsr/fpucw slot, r15, r14, r13, r12, rbx, rbp, return address */
    for (unsigned i = 0; i < 8; i++)
        if (!stack_word(lo, size, base + 8 * i, &w[i]))
            return false;
    r->r15 = w[1];
    r->r14 = w[2];
    r->r13 = w[3];
    r->r12 = w[4];
    r->rbx = w[5];
    r->fp = w[6];
    r->pc = w[7];
    r->sp = base + 64;
#elif defined(__aarch64__)
    /* x19..x28, x29, x30 at the bottom of the 176-byte frame */
    for (unsigned i = 0; i < 12; i++)
        if (!stack_word(lo, size, base + 8 * i, &w[i]))
            return false;
    for (unsigned i = 0; i < 10; i++)
        r->x[i] = w[i];
    r->fp = w[10];
    r->pc = w[11];
    r->sp = base + 176;
#else
#error "unsupported architecture"
#endif
    return true;
}

/* The frame-pointer chain from r: each frame record is {caller's frame
 * pointer, return address} on both architectures. Frames of functions
 * built without frame pointers are skipped (their callers' records
 * still chain) or end the walk. */
static unsigned unwind_fp(const struct saved_regs *r, const char *lo, size_t size, uintptr_t *pcs,
                          unsigned max)
{
    unsigned n = 0;
    if (max == 0 || r->pc == 0)
        return 0;
    pcs[n++] = r->pc;
    uintptr_t fp = r->fp;
    uintptr_t floor = r->sp - sizeof(uintptr_t);
    while (n < max) {
        uintptr_t next, ret;
        if (fp <= floor || !stack_word(lo, size, fp, &next) ||
            !stack_word(lo, size, fp + sizeof(uintptr_t), &ret) || ret == 0)
            break;
        pcs[n++] = ret;
        floor = fp;
        fp = next;
    }
    return n;
}

/* An ELF object's type at its load base (ET_DYN: offsets from the base
 * are what addr2line takes; ET_EXEC: absolute addresses). */
static bool is_pic_object(const void *base)
{
    const ElfW(Ehdr) *eh = base;
    return base && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_type == ET_DYN;
}

/* The executable segments of the shared object weft is in, when it is
 * not the program itself (a static link): return addresses there are
 * weft's own frames. Found once. */
struct weft_text {
    uintptr_t lo[4], hi[4];
    unsigned n;
    bool is_program;
};

static int find_weft_text(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct weft_text *wt = arg;
    (void)size;
    uintptr_t me = (uintptr_t)(void *)weft_runtime_dump_ex;
    bool first = wt->n == UINT32_MAX;
    if (first)
        wt->n = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (ph->p_type == PT_LOAD && me >= lo && me < hi) {
            wt->is_program = first;
            for (int k = 0; k < info->dlpi_phnum && wt->n < 4; k++) {
                const ElfW(Phdr) *q = &info->dlpi_phdr[k];
                if (q->p_type == PT_LOAD && (q->p_flags & PF_X)) {
                    wt->lo[wt->n] = info->dlpi_addr + q->p_vaddr;
                    wt->hi[wt->n] = wt->lo[wt->n] + q->p_memsz;
                    wt->n++;
                }
            }
            return 1;
        }
    }
    return 0;
}

static pthread_once_t weft_text_once = PTHREAD_ONCE_INIT;
static struct weft_text weft_text;

static void weft_text_init(void)
{
    weft_text.n = UINT32_MAX;
    dl_iterate_phdr(find_weft_text, &weft_text);
    if (weft_text.n == UINT32_MAX)
        weft_text.n = 0;
}

static int in_weft(uintptr_t pc)
{
    pthread_once(&weft_text_once, weft_text_init);
    if (weft_text.is_program || weft_text.n == 0)
        return -1;
    for (unsigned i = 0; i < weft_text.n; i++)
        if (pc - 1 >= weft_text.lo[i] && pc - 1 < weft_text.hi[i])
            return 1;
    return 0;
}

/* Without debug information: the exported name of the function holding
 * pc when it has one (dladdr), and module+offset always. */
static void symbolize_dl(uintptr_t pc, struct weft__sym *out)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    memset(out, 0, sizeof *out);
    out->in_weft = in_weft(pc);
    if (!dladdr1((void *)(pc - 1), &info, (void **)&sym, RTLD_DL_SYMENT))
        return;
    out->module = info.dli_fname;
    out->mod_off = is_pic_object(info.dli_fbase) ? pc - (uintptr_t)info.dli_fbase : pc;
    if (info.dli_sname && info.dli_saddr && sym &&
        pc - 1 < (uintptr_t)info.dli_saddr + sym->st_size) {
        out->func = info.dli_sname;
        out->func_off = pc - (uintptr_t)info.dli_saddr;
    }
}

#ifdef HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdwfl.h>

#if defined(__x86_64__)
/* The unwind step of one return address, from its CFI, when it is the
 * common form (CFA = rsp or rbp + offset; the return address and rbp
 * saved at CFA + offset, or rbp unchanged): cached per address, so that
 * 100,000 tasks parked at one place cost one CFI look-up per frame, not
 * one libdw unwind each. Anything else (DRAP frames, expressions) sends
 * the task to libdw's own unwinder. */
struct cfi_rule {
    uintptr_t pc;      /* 0: empty slot */
    bool ok;
    uint8_t cfa_reg;   /* 6 rbp, 7 rsp */
    bool rbp_saved;    /* else unchanged */
    int32_t cfa_off, ra_off, rbp_off;
};
#endif

struct weft__symbols {
    Dwfl *dwfl;       /* NULL: libdw failed, fall back */
#if defined(__x86_64__)
    struct cfi_rule *rules; /* open addressing, power-of-two size */
    size_t n_rules, cap_rules;
#endif
    bool attached;    /* unwinding state attached (dwfl_attach_state) */
    /* The unwind in progress. */
    struct saved_regs regs;
    const char *lo;
    size_t size;
    uintptr_t *pcs;
    unsigned n, max;
};

static char *debuginfo_path;

static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* The "threads" libdw unwinds are tasks: there is never a next one to
 * list, and any id names the task of the unwind in progress. */
static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_arg)
{
    (void)dwfl, (void)arg, (void)thread_arg;
    return 0;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_arg)
{
    (void)dwfl, (void)tid;
    *thread_arg = arg;
    return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    struct weft__symbols *s = arg;
    uintptr_t w;
    (void)dwfl;
    if (!stack_word(s->lo, s->size, (uintptr_t)addr, &w))
        return false;
    *result = w;
    return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
    struct weft__symbols *s = arg;
    const struct saved_regs *r = &s->regs;
#if defined(__x86_64__)
    /* DWARF numbers: 3 rbx, 6 rbp, 7 rsp, 12..15 r12..r15 */
    Dwarf_Word rbx = r->rbx, bp_sp[2] = {r->fp, r->sp}, hi[4] = {r->r12, r->r13, r->r14, r->r15};
    if (!dwfl_thread_state_registers(thread, 3, 1, &rbx) ||
        !dwfl_thread_state_registers(thread, 6, 2, bp_sp) ||
        !dwfl_thread_state_registers(thread, 12, 4, hi))
        return false;
#elif defined(__aarch64__)
    /* DWARF numbers: 19..28 x19..x28, 29 fp, 30 lr, 31 sp */
    Dwarf_Word x[13];
    for (unsigned i = 0; i < 10; i++)
        x[i] = r->x[i];
    x[10] = r->fp;
    x[11] = r->pc;
    x[12] = r->sp;
    if (!dwfl_thread_state_registers(thread, 19, 13, x))
        return false;
#endif
    dwfl_thread_state_register_pc(thread, r->pc);
    return true;
}

static const Dwfl_Thread_Callbacks task_callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

struct weft__symbols *weft__symbols_new(void)
{
    struct weft__symbols *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->dwfl = dwfl_begin(&proc_callbacks);
    if (s->dwfl) {
        dwfl_report_begin(s->dwfl);
        if (dwfl_linux_proc_report(s->dwfl, getpid()) != 0 ||
            dwfl_report_end(s->dwfl, NULL, NULL) != 0) {
            dwfl_end(s->dwfl);
            s->dwfl = NULL;
        } else {
            s->attached = dwfl_attach_state(s->dwfl, NULL, getpid(), &task_callbacks, s);
        }
    }
    return s;
}

void weft__symbols_free(struct weft__symbols *s)
{
    if (!s)
        return;
#if defined(__x86_64__)
    free(s->rules);
#endif
    if (s->dwfl)
        dwfl_end(s->dwfl);
    free(s);
}

static int frame_cb(Dwfl_Frame *frame, void *arg)
{
    struct weft__symbols *s = arg;
    Dwarf_Addr pc;
    if (!dwfl_frame_pc(frame, &pc, NULL) || pc == 0)
        return DWARF_CB_ABORT;
    s->pcs[s->n++] = (uintptr_t)pc;
    return s->n < s->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

#if defined(__x86_64__)
/* An offset from the CFA in a register rule's location expression
 * (DW_OP_call_frame_cfa, then nothing, plus_uconst k, or consts k plus). */
static bool cfa_offset(const Dwarf_Op *ops, size_t n, int32_t *off)
{
    if (n == 0 || ops[0].atom != DW_OP_call_frame_cfa)
        return false;
    if (n == 1) {
        *off = 0;
        return true;
    }
    if (n == 2 && ops[1].atom == DW_OP_plus_uconst) {
        *off = (int32_t)(int64_t)ops[1].number; /* libdw stores negative ones too */
        return true;
    }
    if (n == 3 && (ops[1].atom == DW_OP_consts || ops[1].atom == DW_OP_constu) &&
        ops[2].atom == DW_OP_plus) {
        *off = (int32_t)(int64_t)ops[1].number;
        return true;
    }
    return false;
}

static void derive_rule(struct weft__symbols *s, uintptr_t pc, struct cfi_rule *r)
{
    r->ok = false;
    Dwarf_Addr a = pc - 1;
    Dwfl_Module *m = dwfl_addrmodule(s->dwfl, a);
    if (!m)
        return;
    for (int which = 0; which < 2; which++) {
        Dwarf_Addr bias;
        Dwarf_CFI *cfi = which == 0 ? dwfl_module_eh_cfi(m, &bias) : dwfl_module_dwarf_cfi(m, &bias);
        Dwarf_Frame *f;
        if (!cfi || dwarf_cfi_addrframe(cfi, a - bias, &f) != 0)
            continue;
        Dwarf_Op *ops, mem[3];
        size_t n;
        /* CFA: DW_OP_bregN off, or DW_OP_bregx N off (libdw's form). */
        bool good = dwarf_frame_cfa(f, &ops, &n) == 0 && n == 1;
        int reg = -1;
        int64_t off = 0;
        if (good && (ops[0].atom == DW_OP_breg7 || ops[0].atom == DW_OP_breg6)) {
            reg = ops[0].atom - DW_OP_breg0;
            off = (int64_t)ops[0].number;
        } else if (good && ops[0].atom == DW_OP_bregx) {
            reg = (int)ops[0].number;
            off = (int64_t)ops[0].number2;
        }
        good = good && (reg == 6 || reg == 7);
        if (good) {
            r->cfa_reg = (uint8_t)reg;
            r->cfa_off = (int32_t)off;
            good = dwarf_frame_register(f, 16, mem, &ops, &n) == 0 &&
                   cfa_offset(ops, n, &r->ra_off);
        }
        if (good && dwarf_frame_register(f, 6, mem, &ops, &n) == 0) {
            if (n == 0 && ops == NULL)
                r->rbp_saved = false;
            else if (cfa_offset(ops, n, &r->rbp_off))
                r->rbp_saved = true;
            else
                good = false;
        } else {
            good = false;
        }
        free(f);
        if (good) {
            r->ok = true;
            return;
        }
    }
}

static const struct cfi_rule *rule_for(struct weft__symbols *s, uintptr_t pc)
{
    if (2 * (s->n_rules + 1) > s->cap_rules) {
        size_t cap = s->cap_rules ? 2 * s->cap_rules : 256;
        struct cfi_rule *nr = calloc(cap, sizeof *nr);
        if (!nr)
            return NULL;
        for (size_t i = 0; i < s->cap_rules; i++) {
            if (!s->rules[i].pc)
                continue;
            size_t j = (s->rules[i].pc * 0x9E3779B97F4A7C15ull >> 17) & (cap - 1);
            while (nr[j].pc)
                j = (j + 1) & (cap - 1);
            nr[j] = s->rules[i];
        }
        free(s->rules);
        s->rules = nr;
        s->cap_rules = cap;
    }
    size_t j = (pc * 0x9E3779B97F4A7C15ull >> 17) & (s->cap_rules - 1);
    for (; s->rules[j].pc; j = (j + 1) & (s->cap_rules - 1))
        if (s->rules[j].pc == pc)
            return &s->rules[j];
    s->rules[j].pc = pc;
    derive_rule(s, pc, &s->rules[j]);
    s->n_rules++;
    return &s->rules[j];
}

/* The cached-rule unwind; false when some frame needs libdw's own. */
static bool unwind_rules(struct weft__symbols *s, const struct saved_regs *r, const char *lo,
                         size_t size, uintptr_t *pcs, unsigned max, unsigned *n_out)
{
    uintptr_t pc = r->pc, rsp = r->sp, rbp = r->fp;
    unsigned n = 0;
    *n_out = 0;
    while (n < max && pc != 0) {
        pcs[n++] = pc;
        const struct cfi_rule *rule = rule_for(s, pc);
        if (!rule || !rule->ok)
            return false;
        uintptr_t cfa = (rule->cfa_reg == 7 ? rsp : rbp) + (intptr_t)rule->cfa_off;
        uintptr_t ra, nbp = rbp;
        if (!stack_word(lo, size, cfa + (intptr_t)rule->ra_off, &ra) ||
            (rule->rbp_saved && !stack_word(lo, size, cfa + (intptr_t)rule->rbp_off, &nbp)))
            return false;
        if (cfa <= rsp)
            return false; /* no progress: bad rule */
        rsp = cfa;
        rbp = nbp;
        pc = ra;
    }
    *n_out = n;
    return true;
}
#endif

unsigned weft__unwind(struct weft__symbols *s, const void *sp, const char *lo, size_t size,
                      uintptr_t *pcs, unsigned max)
{
    struct saved_regs r;
    if (max == 0 || !read_saved(sp, lo, size, &r))
        return 0;
    if (!s || !s->attached)
        return unwind_fp(&r, lo, size, pcs, max);
#if defined(__x86_64__)
    unsigned fast;
    if (unwind_rules(s, &r, lo, size, pcs, max, &fast))
        return fast;
#endif
    s->regs = r;
    s->lo = lo;
    s->size = size;
    s->pcs = pcs;
    s->n = 0;
    s->max = max;
    dwfl_getthread_frames(s->dwfl, 1, frame_cb, s); /* an error ends the stack */
    unsigned n = s->n;
    s->pcs = NULL;
    /* CFI that gave up in the first frames (code without it): the frame
     * pointers may know more. */
    if (n < 2) {
        unsigned m = unwind_fp(&r, lo, size, pcs, max);
        if (m > n)
            n = m;
    }
    return n;
}

void weft__symbolize(struct weft__symbols *s, uintptr_t pc, struct weft__sym *out)
{
    symbolize_dl(pc, out);
    if (!s || !s->dwfl || pc == 0)
        return;
    Dwarf_Addr a = pc - 1; /* inside the call, not after it */
    Dwfl_Module *m = dwfl_addrmodule(s->dwfl, a);
    if (!m)
        return;
    Dwarf_Addr start;
    const char *name = dwfl_module_info(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
    if (name)
        out->module = name;
    Dwarf_Addr bias = 0;
    if (dwfl_module_getelf(m, &bias))
        out->mod_off = pc - bias;
    GElf_Off off;
    GElf_Sym sym;
    const char *fn = dwfl_module_addrinfo(m, a, &off, &sym, NULL, NULL, NULL);
    if (fn) {
        out->func = fn;
        out->func_off = off + 1;
    }
    Dwfl_Line *line = dwfl_module_getsrc(m, a);
    int lineno = 0;
    const char *file = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (file && lineno > 0) {
        out->file = file;
        out->line = lineno;
    }
}

const char *weft__unwinder_name(void) { return "libdw"; }

#else /* !HAVE_LIBDW */

struct weft__symbols {
    int unused;
};

struct weft__symbols *weft__symbols_new(void) { return calloc(1, sizeof(struct weft__symbols)); }

void weft__symbols_free(struct weft__symbols *s) { free(s); }

unsigned weft__unwind(struct weft__symbols *s, const void *sp, const char *lo, size_t size,
                      uintptr_t *pcs, unsigned max)
{
    struct saved_regs r;
    (void)s;
    if (max == 0 || !read_saved(sp, lo, size, &r))
        return 0;
    return unwind_fp(&r, lo, size, pcs, max);
}

void weft__symbolize(struct weft__symbols *s, uintptr_t pc, struct weft__sym *out)
{
    (void)s;
    symbolize_dl(pc, out);
}

const char *weft__unwinder_name(void) { return "frame pointers"; }

#endif /* HAVE_LIBDW */
