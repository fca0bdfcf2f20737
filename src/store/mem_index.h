/* leadpulse in-memory store: the lead table and the timer heap of one partition (internal).
 *
 * One record per lead id holds both the lead's bytes and its timer, so a commit does one hash
 * lookup per lead, and the timer heap points at records instead of copying ids. */
#ifndef LP_STORE_MEM_INDEX_H
#define LP_STORE_MEM_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct mem_lead {
    uint64_t hash;
    uint8_t *data; /* encoded lead; NULL = no state stored (a timer only) */
    size_t len;
    int64_t due_ms;  /* 0 = no timer */
    size_t heap_idx; /* position in the timer heap while due_ms != 0 */
    size_t id_len;
    char id[]; /* NUL-terminated */
} mem_lead_t;

/* Open addressing with linear probing; capacity a power of two, at most 70% full. Records are
 * never removed (a lead's state is never deleted, only its timer). */
typedef struct {
    mem_lead_t **slots;
    size_t cap;
    size_t count;
} mem_table_t;

/* Binary min-heap of records ordered by (due_ms, id bytes), the order of a Redis sorted set. */
typedef struct {
    mem_lead_t **items;
    size_t n;
    size_t cap;
} mem_heap_t;

uint64_t lp_mem_hash(const char *id, size_t id_len);

/* Allocates a record for id (not inserted). NULL on allocation failure. Freed with free(). */
mem_lead_t *lp_mem_lead_new(const char *id, size_t id_len, uint64_t hash);

mem_lead_t *lp_mem_table_find(const mem_table_t *table, const char *id, size_t id_len,
                              uint64_t hash);
/* Makes room for `more` inserts without further allocation. LP_OK or LP_ERR (no change). */
int lp_mem_table_reserve(mem_table_t *table, size_t more);
/* Inserts a record whose id is not in the table; room must have been reserved. */
void lp_mem_table_insert(mem_table_t *table, mem_lead_t *lead);
/* Frees every record (and its data) and the table itself. */
void lp_mem_table_free(mem_table_t *table);

int lp_mem_heap_reserve(mem_heap_t *heap, size_t more);
/* Sets (due_ms > 0) or removes (due_ms == 0) the lead's timer; room must have been reserved. */
void lp_mem_heap_set(mem_heap_t *heap, mem_lead_t *lead, int64_t due_ms);
/* Writes up to max records due at or before now_ms, in heap order, into out (size max), using
 * scratch (size >= max + 2 indices) without changing the heap. Returns how many. */
size_t lp_mem_heap_due(const mem_heap_t *heap, int64_t now_ms, size_t max, mem_lead_t **out,
                       size_t *scratch);
void lp_mem_heap_free(mem_heap_t *heap);

#endif
