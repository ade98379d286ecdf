/* SPDX-License-Identifier: MIT */
/* Channels: bounded FIFO queues of fixed-size elements, or rendezvous
 * channels (capacity 0). Many producers and consumers on any workers;
 * send, receive and close also work from plain threads (a plain thread
 * that must wait blocks, without spinning, until it can go on). */
#ifndef WEFT_CHAN_H
#define WEFT_CHAN_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A channel of elem_size-byte elements holding up to capacity of them
 * (0 = rendezvous). NULL + errno EINVAL (elem_size 0) or ENOMEM. */
WEFT_API weft_chan *weft_chan_new(size_t elem_size, size_t capacity);
/* Copies elem in, waiting for room; on a rendezvous channel it returns
 * once a receiver has taken the element. Waiting senders are served in
 * FIFO order. 0, -EPIPE (closed, also while waiting: the element is then
 * not delivered), -ECANCELED, -ETIMEDOUT (a cancelled or timed-out send
 * delivered nothing; a task already cancelled or past its deadline gets
 * the error even when there is room), -EINVAL. Any thread: a task parks
 * (suspension point), a plain thread blocks (no cancellation there). */
WEFT_API int weft_chan_send(weft_chan *c, const void *elem);
/* Copies the oldest element out, waiting for one. 0, -EPIPE (closed and
 * drained), -ECANCELED, -ETIMEDOUT (nothing was taken), -EINVAL. Any
 * thread: a task parks (suspension point), and a plain thread blocks until
 * an element or the close arrives (it is not refused with -EPERM as the
 * task-only calls are). */
WEFT_API int weft_chan_recv(weft_chan *c, void *elem);
/* Sends without waiting: copies elem to a waiting receiver, else into
 * the ring if it has room. 0, -EAGAIN (no room; on a rendezvous channel:
 * no receiver waiting), -EPIPE (closed), -EINVAL (NULL). Any thread; not
 * a suspension point (cancellation is not looked at). */
WEFT_API int weft_chan_try_send(weft_chan *c, const void *elem);
/* Receives without waiting: the oldest buffered element, or a waiting
 * sender's on a rendezvous channel. 0, -EAGAIN (nothing to take), -EPIPE
 * (closed and drained), -EINVAL (NULL). Any thread; not a suspension
 * point. */
WEFT_API int weft_chan_try_recv(weft_chan *c, void *elem);
/* Elements buffered in c now (0 for NULL, and always for a rendezvous
 * channel). Any thread. */
WEFT_API size_t weft_chan_len(const weft_chan *c);
/* Closes c: buffered elements can still be received, then -EPIPE; waiting
 * senders get -EPIPE. Idempotent. Any thread. */
WEFT_API void weft_chan_close(weft_chan *c);
/* Frees c, which must have no waiters and no send or receive still in
 * progress (undefined otherwise; weft detects queued waiters, warns on
 * stderr and does not free c). NULL is ignored. */
WEFT_API void weft_chan_free(weft_chan *c);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_CHAN_H */
