/* leadpulse in-memory store: the types and helpers shared by mem_store.c (partitions, load,
 * commit, timers) and mem_outbox.c (outbox, scan). Not a public contract. */
#ifndef LEADPULSE_STORE_MEM_INTERNAL_H
#define LEADPULSE_STORE_MEM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store/mem_index.h"
#include "store/store_internal.h"

typedef struct {
    char *topic;
    int64_t next_offset;
} mem_offset_t;

typedef struct {
    uint64_t seq; /* entry id "<seq>-0" */
    int kind;
    int acked;
    uint8_t *buf; /* key, value, event_id NUL, meta NUL in one allocation */
    size_t key_len;
    size_t value_len;
    size_t event_id_len;
    size_t meta_len;
} mem_entry_t;

typedef struct {
    int64_t epoch;
    mem_table_t leads;
    mem_heap_t timers;
    mem_offset_t *offsets;
    size_t noffsets;
    size_t offsets_cap;
    mem_entry_t *outbox; /* live entries are outbox[head .. head + len) */
    size_t out_head;
    size_t out_len;
    size_t out_cap;
    uint64_t next_seq;
    lp_store_suppress_t *supp; /* suppression entries, unordered */
    size_t nsupp, supp_cap;
} mem_part_t;

typedef struct {
    lp_store_t base;
    mem_part_t **parts; /* indexed by partition */
    size_t nparts;
    /* Scratch handed to callers (valid until the next call) and used by commit. */
    const uint8_t **loaded_data;
    size_t *loaded_len;
    size_t loaded_cap;
    const char **due_ids;
    mem_lead_t **due_leads;
    size_t *due_scratch;
    size_t due_cap;
    lp_store_outbox_t *read;
    size_t read_cap;
    void **pending; /* commit: per batch item, a new record / buffer / topic, or NULL */
    size_t pending_cap;
} mem_store_t;

/* Grows *arr (elements of size elem) to hold at least n; LP_OK or LP_ERR (unchanged). */
int lp_mem_grow(void *arr, size_t *cap, size_t n, size_t elem);

/* The partition's state; created when create is set, else NULL when it has none. */
mem_part_t *lp_mem_part_get(mem_store_t *ms, int32_t partition, int create);

/* The store operations of mem_outbox.c (lp_store_ops_t's outbox_read, outbox_ack, scan). */
int lp_mem_outbox_read(lp_store_t *store, int32_t partition, size_t max,
                       lp_store_outbox_list_t *out);
int lp_mem_outbox_ack(lp_store_t *store, int32_t partition, int64_t epoch, size_t n,
                      const char *const *ids);
int lp_mem_scan(lp_store_t *store, int32_t partition, uint64_t *cursor, size_t count,
                lp_store_scan_t *out);

#endif
