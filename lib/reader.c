/* SPDX-License-Identifier: MIT */
/* weft_reader: buffered lines over weft_read, for line protocols. One
 * buffer of cap bytes; a line is handed out as a pointer into it, so a
 * line must fit (else -ENOBUFS, and the reader skips to the next line).
 * Data before `start` has been handed out; [start, end) is buffered;
 * `scan` is how far from start no '\n' has been seen, so a line that
 * arrives in many pieces is searched once. The buffer has one byte more
 * than cap: a full buffer without '\n' reads one byte further to tell a
 * last line of exactly cap bytes (end of file next) from a longer one.
 * Task only, one task at a time. */
#define _GNU_SOURCE 1
#include "internal.h"

#include <string.h>

#include "sched/sched.h"

struct weft_reader {
    int fd;
    bool eof;      /* weft_read returned 0 */
    bool skipping; /* inside a line that was too long: drop to its end */
    size_t cap, start, end, scan;
    char buf[];
};

weft_reader *weft_reader_new(int fd, size_t cap)
{
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    if (cap == 0 || cap > SIZE_MAX / 2) {
        errno = EINVAL;
        return NULL;
    }
    weft_reader *r = malloc(sizeof *r + cap + 1);
    if (!r)
        return NULL; /* errno = ENOMEM */
    r->fd = fd;
    r->eof = r->skipping = false;
    r->cap = cap;
    r->start = r->end = r->scan = 0;
    return r;
}

void weft_reader_free(weft_reader *r)
{
    free(r);
}

ssize_t weft_reader_line(weft_reader *r, const char **line)
{
    if (!weft__task_self())
        return -EPERM;
    if (!r || !line)
        return -EINVAL;
    for (;;) {
        size_t have = r->end - r->start;
        char *nl = have > r->scan ? memchr(r->buf + r->start + r->scan, '\n', have - r->scan) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - (r->buf + r->start)) + 1;
            const char *p = r->buf + r->start;
            r->start += n;
            r->scan = 0;
            if (r->skipping) {
                r->skipping = false; /* the tail of the long line: dropped */
                continue;
            }
            *line = p;
            return (ssize_t)n;
        }
        r->scan = have;
        if (r->skipping) {
            r->start = r->end = r->scan = 0; /* still the long line */
            have = 0;
        }
        if (r->eof) {
            /* The last line, without its '\n'. */
            if (have == 0 || r->skipping) {
                r->skipping = false;
                r->start = r->end = r->scan = 0;
                return 0;
            }
            *line = r->buf + r->start;
            r->start = r->end = r->scan = 0;
            return (ssize_t)have;
        }
        if (have == r->cap) {
            /* A full buffer and no '\n' (start is 0 here: have is all of
             * it): the line fits only if the file ends right here. The
             * spare byte tells; an error or a deadline keeps the buffer,
             * and a later call asks again. */
            ssize_t n = weft_read(r->fd, r->buf + r->end, 1);
            if (n < 0)
                return n;
            if (n == 0) {
                r->eof = true;
                continue; /* the last line, exactly cap bytes */
            }
            /* Longer than cap; if the byte was its '\n', it is over. */
            r->skipping = r->buf[r->end] != '\n';
            r->start = r->end = r->scan = 0;
            return -ENOBUFS;
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, have);
            r->start = 0;
            r->end = have;
        }
        ssize_t n = weft_read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0)
            return n;
        if (n == 0)
            r->eof = true;
        r->end += (size_t)n;
    }
}
