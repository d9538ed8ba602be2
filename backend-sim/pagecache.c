/* pagecache: owns the page table (open addressing, linear probing, backward-shift deletion) and the LRU list of the
 * simulated page cache (see pagecache.h). The nodes live in one array that grows (realloc), so the LRU and free
 * lists link node indices, not pointers: core/list.h's intrusive list needs nodes that never move. */
#include "pagecache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define NIL UINT32_MAX

typedef struct pc_node {
    pc_key key;
    uint8_t state;
    uint32_t prev, next; /* LRU links (RESIDENT) or free-list link (next) */
} pc_node;

struct pagecache {
    uint32_t page;
    uint64_t capacity;   /* pages */
    pc_node *nodes;
    uint32_t nnodes, capnodes, freelist;
    uint32_t *table;     /* node index or NIL */
    uint32_t tmask;      /* table size - 1 */
    uint32_t used;       /* live nodes */
    uint32_t head, tail; /* LRU: head = most recent */
    uint64_t resident, reading, evictions;
};

/* Where a key's probe starts (only lookup speed depends on it: the LRU order and every result do not). */
static uint64_t hash_key(pc_key k)
{
    return hk_mix64(k.storage * HK_GOLDEN64 ^ ((uint64_t)k.file * 0xc2b2ae3d27d4eb4full) ^ k.page);
}

static bool key_eq(pc_key a, pc_key b)
{
    return a.storage == b.storage && a.file == b.file && a.page == b.page;
}

pagecache *pc_new(uint64_t capacity_bytes, uint32_t page)
{
    pagecache *pc = calloc(1, sizeof *pc);
    if (!pc)
        return NULL;
    pc->page = page;
    pc->capacity = capacity_bytes / page;
    pc->freelist = NIL;
    pc->head = pc->tail = NIL;
    pc->tmask = 1023;
    pc->table = malloc((size_t)(pc->tmask + 1) * sizeof *pc->table);
    if (!pc->table) {
        free(pc);
        return NULL;
    }
    memset(pc->table, 0xff, (size_t)(pc->tmask + 1) * sizeof *pc->table);
    return pc;
}

void pc_free(pagecache *pc)
{
    if (!pc)
        return;
    free(pc->nodes);
    free(pc->table);
    free(pc);
}

uint32_t pc_page_size(const pagecache *pc)
{
    return pc->page;
}

static uint32_t find_slot(const pagecache *pc, pc_key k)
{
    uint32_t i = (uint32_t)hash_key(k) & pc->tmask;
    while (pc->table[i] != NIL) {
        if (key_eq(pc->nodes[pc->table[i]].key, k))
            return i;
        i = (i + 1) & pc->tmask;
    }
    return i; /* empty slot */
}

static void rehash(pagecache *pc)
{
    uint32_t newsize = (pc->tmask + 1) * 2;
    uint32_t *t = malloc((size_t)newsize * sizeof *t);
    if (!t)
        abort();
    memset(t, 0xff, (size_t)newsize * sizeof *t);
    uint32_t *old = pc->table;
    uint32_t oldsize = pc->tmask + 1;
    pc->table = t;
    pc->tmask = newsize - 1;
    for (uint32_t i = 0; i < oldsize; i++)
        if (old[i] != NIL) {
            uint32_t j = (uint32_t)hash_key(pc->nodes[old[i]].key) & pc->tmask;
            while (t[j] != NIL)
                j = (j + 1) & pc->tmask;
            t[j] = old[i];
        }
    free(old);
}

static uint32_t node_alloc(pagecache *pc)
{
    if (pc->freelist != NIL) {
        uint32_t n = pc->freelist;
        pc->freelist = pc->nodes[n].next;
        return n;
    }
    if (pc->nnodes == pc->capnodes) {
        uint32_t cap = pc->capnodes ? pc->capnodes * 2 : 1024;
        pc_node *q = realloc(pc->nodes, (size_t)cap * sizeof *q);
        if (!q)
            abort();
        pc->nodes = q;
        pc->capnodes = cap;
    }
    return pc->nnodes++;
}

/* Removes the table entry at slot i, shifting later entries of the cluster back. */
static void table_delete(pagecache *pc, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & pc->tmask;
        if (pc->table[j] == NIL)
            break;
        uint32_t home = (uint32_t)hash_key(pc->nodes[pc->table[j]].key) & pc->tmask;
        /* can the entry at j move to i? yes unless home lies cyclically in (i, j] */
        bool in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            pc->table[i] = pc->table[j];
            i = j;
        }
    }
    pc->table[i] = NIL;
}

static void lru_unlink(pagecache *pc, uint32_t n)
{
    pc_node *x = &pc->nodes[n];
    assert(x->state == PC_RESIDENT && (x->prev != NIL || pc->head == n) && (x->next != NIL || pc->tail == n));
    if (x->prev != NIL)
        pc->nodes[x->prev].next = x->next;
    else
        pc->head = x->next;
    if (x->next != NIL)
        pc->nodes[x->next].prev = x->prev;
    else
        pc->tail = x->prev;
    x->prev = x->next = NIL;
}

static void lru_push_front(pagecache *pc, uint32_t n)
{
    pc_node *x = &pc->nodes[n];
    x->prev = NIL;
    x->next = pc->head;
    if (pc->head != NIL)
        pc->nodes[pc->head].prev = n;
    pc->head = n;
    if (pc->tail == NIL)
        pc->tail = n;
}

pc_state pc_get(const pagecache *pc, pc_key k)
{
    uint32_t i = find_slot(pc, k);
    return pc->table[i] == NIL ? PC_ABSENT : (pc_state)pc->nodes[pc->table[i]].state;
}

bool pc_begin_read(pagecache *pc, pc_key k)
{
    uint32_t i = find_slot(pc, k);
    if (pc->table[i] != NIL)
        return false;
    if ((uint64_t)(pc->used + 1) * 2 > (uint64_t)pc->tmask + 1) {
        rehash(pc);
        i = find_slot(pc, k);
    }
    uint32_t n = node_alloc(pc);
    pc->nodes[n] = (pc_node){.key = k, .state = PC_READING, .prev = NIL, .next = NIL};
    pc->table[i] = n;
    pc->used++;
    pc->reading++;
    return true;
}

static void evict_tail(pagecache *pc)
{
    uint32_t n = pc->tail;
    assert(n != NIL && pc->resident > 0);
    lru_unlink(pc, n);
    table_delete(pc, find_slot(pc, pc->nodes[n].key));
    pc->nodes[n].state = PC_ABSENT;
    pc->nodes[n].next = pc->freelist;
    pc->freelist = n;
    pc->used--;
    pc->resident--;
    pc->evictions++;
}

void pc_finish_read(pagecache *pc, pc_key k)
{
    uint32_t i = find_slot(pc, k);
    if (pc->table[i] == NIL || pc->nodes[pc->table[i]].state != PC_READING)
        return;
    uint32_t n = pc->table[i];
    pc->nodes[n].state = PC_RESIDENT;
    pc->reading--;
    pc->resident++;
    lru_push_front(pc, n);
    while (pc->resident > pc->capacity && pc->tail != NIL)
        evict_tail(pc);
}

void pc_touch(pagecache *pc, pc_key k)
{
    uint32_t i = find_slot(pc, k);
    if (pc->table[i] == NIL || pc->nodes[pc->table[i]].state != PC_RESIDENT)
        return;
    uint32_t n = pc->table[i];
    if (pc->head == n)
        return;
    lru_unlink(pc, n);
    lru_push_front(pc, n);
}

void pc_get_stats(const pagecache *pc, pc_stats *out)
{
    out->resident = pc->resident;
    out->reading = pc->reading;
    out->evictions = pc->evictions;
    out->capacity = pc->capacity;
}
