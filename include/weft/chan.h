/* SPDX-License-Identifier: MIT */
/* Channels: bounded FIFO queues of fixed-size elements, or rendezvous
 * channels (capacity 0). Many producers and consumers on any workers;
 * send and close also work from plain threads (a plain-thread send blocks
 * that thread until there is room). */
#ifndef WEFT_CHAN_H
#define WEFT_CHAN_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A channel of elem_size-byte elements holding up to capacity of them
 * (0 = rendezvous). NULL + errno EINVAL (elem_size 0) or ENOMEM. */
WEFT_API weft_chan *weft_chan_new(size_t elem_size, size_t capacity);
/* Copies elem in, waiting for room. 0, -EPIPE (closed), -ECANCELED,
 * -ETIMEDOUT, -EINVAL. */
WEFT_API int weft_chan_send(weft_chan *c, const void *elem);
/* Copies the oldest element out, waiting for one. 0, -EPIPE (closed and
 * drained), -ECANCELED, -ETIMEDOUT, -EINVAL, -EPERM outside a task. */
WEFT_API int weft_chan_recv(weft_chan *c, void *elem);
/* Closes c: buffered elements can still be received, then -EPIPE; waiting
 * senders get -EPIPE. Idempotent. Any thread. */
WEFT_API void weft_chan_close(weft_chan *c);
/* Frees c, which must have no waiters. NULL is ignored. */
WEFT_API void weft_chan_free(weft_chan *c);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_CHAN_H */
