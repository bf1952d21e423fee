/* list.h -- lib/'s one list type: an intrusive, doubly linked queue that
 * knows its length; the node lives inside the structure it links.
 *
 * As NNG's nni_list and the Linux kernel's list_head: a structure that
 * sits on a list embeds an skci_lnode, and SKCI_LIST_ENTRY gets the
 * structure back from it.  A node is on at most one list at a time (each
 * list that may hold a structure has its own field).  No locking: the
 * owner of the list says which lock guards it. */
#ifndef SKC_LIB_LIST_H
#define SKC_LIB_LIST_H

#include <stddef.h>

typedef struct skci_lnode {
    struct skci_lnode *next, *prev;
} skci_lnode;

typedef struct skci_list {
    skci_lnode *head, *tail;
    size_t len;
} skci_list;

/* The structure of type `type` whose field `field` is the node p. */
#define SKCI_LIST_ENTRY(p, type, field)                                       \
    ((type *)(void *)((char *)(p)-offsetof(type, field)))

static inline int
skci_list_empty(const skci_list *l)
{
    return l->head == NULL;
}

static inline void
skci_list_append(skci_list *l, skci_lnode *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail != NULL) {
        l->tail->next = n;
    } else {
        l->head = n;
    }
    l->tail = n;
    l->len++;
}

static inline void
skci_list_prepend(skci_list *l, skci_lnode *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head != NULL) {
        l->head->prev = n;
    } else {
        l->tail = n;
    }
    l->head = n;
    l->len++;
}

/* n must be on l. */
static inline void
skci_list_remove(skci_list *l, skci_lnode *n)
{
    if (n->prev != NULL) {
        n->prev->next = n->next;
    } else {
        l->head = n->next;
    }
    if (n->next != NULL) {
        n->next->prev = n->prev;
    } else {
        l->tail = n->prev;
    }
    n->next = n->prev = NULL;
    l->len--;
}

/* Takes the first node off l; NULL when l is empty. */
static inline skci_lnode *
skci_list_pop(skci_list *l)
{
    skci_lnode *n = l->head;
    if (n != NULL) {
        skci_list_remove(l, n);
    }
    return n;
}

/* Moves every node of src to the end of dst, in order; src is empty. */
static inline void
skci_list_move(skci_list *dst, skci_list *src)
{
    if (src->head == NULL) {
        return;
    }
    if (dst->tail != NULL) {
        dst->tail->next = src->head;
        src->head->prev = dst->tail;
    } else {
        dst->head = src->head;
    }
    dst->tail = src->tail;
    dst->len += src->len;
    src->head = src->tail = NULL;
    src->len = 0;
}

#endif /* SKC_LIB_LIST_H */
