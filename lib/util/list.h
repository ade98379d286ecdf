/* SPDX-License-Identifier: MIT */
/* Intrusive circular doubly linked list. */
#ifndef WEFT_UTIL_LIST_H
#define WEFT_UTIL_LIST_H

#include <stdbool.h>

struct list {
    struct list *next, *prev;
};

static inline void list_init(struct list *l) { l->next = l->prev = l; }
static inline bool list_empty(const struct list *l) { return l->next == l; }

static inline void list_insert_before(struct list *pos, struct list *item)
{
    item->prev = pos->prev;
    item->next = pos;
    pos->prev->next = item;
    pos->prev = item;
}

/* Appends item at the tail of l. */
static inline void list_push_back(struct list *l, struct list *item)
{
    list_insert_before(l, item);
}

static inline void list_remove(struct list *item)
{
    item->prev->next = item->next;
    item->next->prev = item->prev;
    item->next = item->prev = item;
}

/* Removes and returns the head of l, or NULL. */
static inline struct list *list_pop_front(struct list *l)
{
    if (list_empty(l))
        return NULL;
    struct list *f = l->next;
    list_remove(f);
    return f;
}

#endif /* WEFT_UTIL_LIST_H */
