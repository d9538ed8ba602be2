/* list: the one intrusive doubly linked list of the tree (core and both backends), sentinel-headed like libuv's
 * queue.h, so linking and unlinking never branch on "first" or "last".
 *
 * Contract
 * --------
 * A list is an hk_list head (the sentinel) embedded in its owner; an element embeds an hk_list node and is found
 * back from it with HK_LIST_ENTRY. An empty list's head points at itself both ways. A node that is in no list is
 * "detached": it points at itself (hk_list_init on a node, or after hk_list_remove), so hk_list_linked tells
 * membership without a separate flag and removing a detached node is a harmless no-op.
 *
 * Nothing here allocates, fails or returns an error; every function is O(1) except the iteration macros. The head
 * must not move in memory while the list is not empty (it is pointed at by the first and last nodes), and neither
 * may a linked node: embed lists only in records that are allocated one by one, never in arrays that grow.
 * Order is exactly insertion order (insert_tail = FIFO, insert_head = LIFO), which the seeder's choker line and
 * every LRU rely on for determinism.
 */
#ifndef HEKATE_LIST_H
#define HEKATE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hk_list {
    struct hk_list *next;
    struct hk_list *prev;
} hk_list;

/* The element of type `type` whose member `field` is the node `node`. */
#define HK_LIST_ENTRY(node, type, field) ((type *)(void *)((char *)(node) - offsetof(type, field)))

/* Every node from first to last; the loop body must not remove `pos` (use HK_LIST_FOREACH_SAFE for that). */
#define HK_LIST_FOREACH(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* Every node from first to last; the body may remove `pos` (and only `pos`). */
#define HK_LIST_FOREACH_SAFE(pos, tmp, head)                                                                       \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

/* Makes `l` an empty list head, or a detached node. */
static inline void hk_list_init(hk_list *l)
{
    l->next = l->prev = l;
}

/* True when the head has no element. */
static inline bool hk_list_empty(const hk_list *head)
{
    return head->next == head;
}

/* True when the node is in some list (false for a detached node). */
static inline bool hk_list_linked(const hk_list *node)
{
    return node->next != node;
}

/* Links a detached `node` right after `at` (a head or a node). */
static inline void hk_list_insert_after(hk_list *at, hk_list *node)
{
    node->prev = at;
    node->next = at->next;
    at->next->prev = node;
    at->next = node;
}

/* Appends (FIFO order). */
static inline void hk_list_insert_tail(hk_list *head, hk_list *node)
{
    hk_list_insert_after(head->prev, node);
}

/* Prepends (LIFO order). */
static inline void hk_list_insert_head(hk_list *head, hk_list *node)
{
    hk_list_insert_after(head, node);
}

/* Unlinks the node and leaves it detached; a detached node is left as it is. */
static inline void hk_list_remove(hk_list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = node;
}

/* First and last node, or NULL when the list is empty. */
static inline hk_list *hk_list_first(const hk_list *head)
{
    return head->next == head ? NULL : head->next;
}

static inline hk_list *hk_list_last(const hk_list *head)
{
    return head->prev == head ? NULL : head->prev;
}

/* The node after `node` in the list headed by `head`, or NULL at the end. */
static inline hk_list *hk_list_next(const hk_list *head, const hk_list *node)
{
    return node->next == head ? NULL : node->next;
}

/* Moves a linked node to the tail of `head` (an LRU "touch"). */
static inline void hk_list_move_tail(hk_list *head, hk_list *node)
{
    hk_list_remove(node);
    hk_list_insert_tail(head, node);
}

#endif
