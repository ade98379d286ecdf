/* SPDX-License-Identifier: MIT */
/* A chat room whose lock gets stuck, and the dump that finds who holds it.
 *
 * Many client tasks post to one room, each taking the room's mutex for a
 * moment. One of them, 'client-7', forgets to let go: while holding the
 * lock it waits for an acknowledgement on a channel nobody ever sends
 * on. Every other client piles up behind the mutex, and the program just
 * looks hung. Run it with
 *
 *     WEFT_DUMP_SIGNAL=QUIT ./stuck &
 *     kill -QUIT <pid>
 *
 * and the dump on stderr says, in a few lines whatever the number of
 * clients: N tasks waiting on mutex 0x... held by task K, at
 * wait_for_room; one task (K, 'client-7') waiting on a channel, at
 * await_ack, with both stacks. Closing stdin (or 20 s) ends the demo: the
 * stuck client is cancelled, lets go, and every other client gets its
 * turn.
 *
 * Usage: stuck [clients]   (default 200) */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "demo.h"

struct room {
    weft_mutex *lock;
    weft_chan *acks; /* nobody ever sends: client-7's wait never ends */
    long posts;
    atomic_int arrived; /* clients that have asked for the lock once */
};

static struct room room;

/* Not inlined, so that each is a frame of its own in the stacks. */
static __attribute__((noinline)) int await_ack(void)
{
    int ack;
    int rc = weft_chan_recv(room.acks, &ack); /* the bug: waits holding the lock */
    __asm__ volatile("" ::: "memory");
    return rc;
}

static __attribute__((noinline)) int wait_for_room(void)
{
    int rc = weft_mutex_lock(room.lock);
    __asm__ volatile("" ::: "memory");
    return rc;
}

static __attribute__((noinline)) int post_message(int id)
{
    atomic_fetch_add(&room.arrived, 1);
    if (wait_for_room() != 0)
        return -1;
    room.posts++;
    if (id == 7)
        await_ack(); /* ends only when cancelled */
    weft_mutex_unlock(room.lock);
    return 0;
}

static int client(void *arg)
{
    int id = (int)(intptr_t)arg;
    /* client-7 comes first, so that it holds the lock when the others do. */
    if (id != 7)
        weft_sleep(demo_ns(0.1));
    return post_message(id);
}

struct main_arg {
    int n;
};

static int demo_main(void *arg)
{
    struct main_arg *m = arg;
    room.lock = weft_mutex_new();
    room.acks = weft_chan_new(sizeof(int), 0);
    weft_task **t = calloc((size_t)m->n, sizeof *t);
    if (!room.lock || !room.acks || !t)
        return -ENOMEM;
    for (int i = 0; i < m->n; i++) {
        t[i] = weft_spawn(client, (void *)(intptr_t)i);
        if (!t[i])
            return -ENOMEM;
        char name[32];
        snprintf(name, sizeof name, "client-%d", i);
        weft_task_set_name(t[i], name);
    }
    while (atomic_load(&room.arrived) < m->n)
        weft_sleep(WEFT_MSEC(1));
    weft_sleep(WEFT_MSEC(20)); /* every waiter parked */
    printf("stuck: %d clients, all waiting for the room (pid %d)\n", m->n, (int)getpid());
    fflush(stdout);
    /* Until stdin ends (or 20 s): that is when the dump is taken. */
    weft_deadline dl;
    weft_deadline_enter(&dl, WEFT_SEC(20));
    char buf[64];
    while (weft_read(STDIN_FILENO, buf, sizeof buf) > 0)
        ;
    weft_deadline_leave(&dl);
    weft_cancel(t[7]); /* the stuck client gives up, and lets go */
    int failed = 0;
    for (int i = 0; i < m->n; i++)
        if (weft_join(t[i]) != 0)
            failed++;
    printf("stuck: room unstuck, %ld posts, %d clients failed\n", room.posts, failed);
    free(t);
    weft_chan_free(room.acks);
    weft_mutex_free(room.lock);
    return failed ? -EIO : 0;
}

int main(int argc, char **argv)
{
    if (demo_init() != 0)
        return 2;
    struct main_arg m = {.n = argc > 1 ? atoi(argv[1]) : 200};
    if (m.n < 8) {
        fprintf(stderr, "usage: %s [clients >= 8]\n", argv[0]);
        return 2;
    }
    return demo_exit(argv[0], weft_run(demo_main, &m));
}
