/* The engine's internals shared by engine.c (the public API: assignment, batches, timers) and
 * batch.c (building a batch: slots, outputs, the commit). Not a public contract. */
#ifndef LEADPULSE_ENGINE_INTERNAL_H
#define LEADPULSE_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/cache.h"
#include "leadpulse/account.h"
#include "leadpulse/engine.h"

#define FACT_MAX_BYTES 8192

/* A growable byte arena; entries are referenced by offset until the arena stops growing. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
} arena_t;

typedef struct {
    char id[LP_ID_MAX + 1];
    lp_lead_t lead;
    bool changed;
    bool loaded;
    bool fresh;         /* the store held no state of the lead (or it was erased in the batch) */
    bool erased;        /* erased in this batch: listed in the commit's erasures */
    bool hashed;        /* hash holds the lead id's keyed hash (suppression) */
    uint8_t hash[16];   /* lp_siphash128 of the id under privacy.suppression_key */
    int64_t due_stored; /* the lead's timer in the store when loaded (0 none, -1 unknown) */
} slot_t;

typedef struct {
    int kind;
    size_t key_off, key_len, value_off, value_len, meta_off, meta_len, id_off;
} pending_out_t;

typedef struct {
    const char *topic;
    int64_t next_offset;
} topic_offset_t;

#define ENGINE_TOPICS 8

/* The next offsets this engine knows are stored for a partition (read at assignment, updated by
 * each commit): every commit states them, so the store can refuse a batch when it lost writes. */
typedef struct {
    size_t n;
    char *topic[ENGINE_TOPICS];
    int64_t stored[ENGINE_TOPICS];
} part_offsets_t;

/* One batch's scratch. The engine has two, so that one batch's commit can be in flight while
 * the next batch is built (lp_engine_begin .. lp_engine_finish). */
typedef enum { B_FREE = 0, B_LOADED, B_APPLIED, B_SENT } batch_state_t;

struct lp_engine_batch {
    batch_state_t state;
    int32_t partition;
    size_t n;             /* records */
    bool of_timers;       /* a batch of due timers (lp_engine_fire_timers) */
    lp_engine_stats_t st; /* counted by this batch: added to the engine's once committed */
    topic_offset_t offsets[ENGINE_TOPICS];
    size_t noffsets;
    lp_store_offset_t store_offsets[ENGINE_TOPICS];
    size_t nstore;
    size_t nwrites, ntimers;
    lp_store_batch_t sbatch;

    /* grown on demand and reused */
    size_t cap_events, cap_slots;
    lp_event_t *events;
    int *event_slot; /* slot index, or -1 when dead-lettered */
    slot_t *slots;
    size_t nslots;
    int *map; /* open-addressing: lead id -> slot index */
    size_t map_size;
    pending_out_t *outs;
    size_t nouts, cap_outs;
    arena_t arena;
    lp_store_lead_t *writes;
    lp_store_timer_t *timers;
    lp_store_outbox_t *outbox;
    const char **miss_ids;
    size_t *miss_slots;
    /* privacy.c: leads erased and suppression entries changed by this batch, in apply order */
    const char **erase_ids;
    size_t nerase, cap_erase;
    lp_store_suppress_t *supp;
    size_t nsupp, cap_supp;
    /* members.c: the sources whose progress this batch moved, with the value before it */
    int32_t *prog_src;
    int64_t *prog_old;
    size_t nprog, cap_prog;
    bool restate; /* a mark of the batch's partition even if its progress did not move */
};

typedef struct lp_engine_batch batch_t;

/* A partition's suppression entries in memory (privacy.c): sorted by hash. */
typedef struct {
    uint8_t hash[16];
    int64_t until_ms; /* 0: until lifted */
} supp_entry_t;

typedef struct {
    supp_entry_t *e;
    size_t n, cap;
} supp_table_t;

struct lp_engine {
    lp_engine_opts_t opts;
    const lp_rules_t *rules;
    lp_store_t *store;
    lp_avro_codec_t *codec;
    lp_cache_t *cache;
    int64_t *epochs;        /* per partition; 0 = not owned */
    part_offsets_t **poffs; /* per partition, allocated on assignment */
    supp_table_t **supp;    /* per partition, loaded on assignment (privacy.c) */
    lp_engine_stats_t stats;
    char errstr[LP_ERRSTR * 2]; /* room for a store error plus context */

    lp_log_limit_t dlq_log; /* dead-letter WARN lines */

    /* Stage 1 (members.c), when opts.accounts and the rules have accounts: per source, the
     * progress P (every later member record of it is ordered at or after P) and the last P a
     * committed mark stated; INT64_MIN = none. */
    int64_t *progress;
    int64_t *marked;
    /* the batch's member records, bundled by members-topic partition (members.c) */
    int32_t ntargets;
    struct member_bundle *bundles;

    batch_t bx[2];
    lp_facts_t facts;
    uint8_t fact_buf[FACT_MAX_BYTES];
    uint8_t lead_buf[LP_LEAD_ENCODED_MAX];
};

/* A free batch scratch of the partition for n records (reset), or NULL (errstr says why). */
batch_t *lp_eng_batch_take(lp_engine_t *engine, int32_t partition, size_t n);
/* A batch from apply to its commit's outcome (lp_engine_apply, send, finish). */
int lp_eng_run_batch(lp_engine_t *engine, batch_t *b, const lp_engine_msg_t *msgs);

/* Grows b's scratch to hold n records. */
int lp_eng_ensure_capacity(batch_t *b, size_t n);

/* The next offsets known stored for a partition, by topic (-1: none yet). */
void lp_eng_poffs_clear(part_offsets_t *po);
int64_t lp_eng_poffs_get(const lp_engine_t *engine, int32_t partition, const char *topic);
int lp_eng_poffs_set(lp_engine_t *engine, int32_t partition, const char *topic, int64_t offset);

/* A batch's phases: reset, a slot per lead id, dead letters and facts as outputs, the slots'
 * leads loaded (cache, then one store read for the misses), the commit built and its outcome. */
void lp_eng_batch_reset(batch_t *b);
int lp_eng_slot_for(batch_t *b, const char *lead_id);
int lp_eng_add_dead_letter(lp_engine_t *engine, batch_t *b, const lp_engine_msg_t *msg,
                           const char *reason);
int lp_eng_add_facts(lp_engine_t *engine, batch_t *b);
/* An output record into the batch's outbox (copied). */
int lp_eng_add_out(batch_t *b, int kind, const char *key, size_t key_len, const uint8_t *value,
                   size_t value_len, const char *meta, size_t meta_len, const char *event_id);
int lp_eng_load_slots(lp_engine_t *engine, batch_t *b, int32_t partition);
int lp_eng_build_commit(lp_engine_t *engine, batch_t *b);
void lp_eng_batch_end(lp_engine_t *engine, batch_t *b, bool committed);
int lp_eng_commit_outcome(lp_engine_t *engine, batch_t *b, int rc);

/* Erasure and suppression (privacy.c, docs/privacy.md). */
int lp_eng_supp_load(lp_engine_t *engine, int32_t partition);
void lp_eng_supp_drop(lp_engine_t *engine, int32_t partition);
/* An erasure or unsuppress request (event->op) applied to slot. LP_OK or LP_ERR (errstr). */
int lp_eng_apply_op(lp_engine_t *engine, batch_t *b, slot_t *slot, const lp_event_t *event);
/* Whether the event is dropped because its lead is suppressed; an event dated at or past the
 * entry's end lifts it (and is applied). */
bool lp_eng_suppressed(lp_engine_t *engine, batch_t *b, slot_t *slot, const lp_event_t *event);
/* After a committed (or duplicate) batch: its suppression changes into the partition's table,
 * its erased leads out of the cache. */
void lp_eng_supp_committed(lp_engine_t *engine, batch_t *b);

/* Stage 1 of account qualification (members.c, docs/architecture.md "Accounts: the second
 * stage"). Whether the engine sends member records. */
bool lp_eng_members_on(const lp_engine_t *engine);
/* The account key of slot's lead as it is now, into key (LP_ACCOUNT_KEY_MAX + 1 bytes); NULL
 * when in no account (or members are off). */
const char *lp_eng_member_key(const lp_engine_t *engine, const slot_t *slot, char *key);
/* What the member record of an event needs of the lead before it. */
typedef struct {
    bool erased;  /* the event erased the lead */
    uint64_t seq; /* its member_seq before the event */
    int64_t ref_ms;
} lp_member_before_t;
/* After an event was applied to slot's lead, whose account key before the event was old_key
 * (NULL: none): the member record and/or leave. */
int lp_eng_member_after(lp_engine_t *engine, batch_t *b, slot_t *slot, const lp_event_t *event,
                        const char *old_key, const lp_member_before_t *before);
/* Frees the member bundles (members.c). */
void lp_eng_member_free(lp_engine_t *engine);
/* The stored progress of a partition (the worker): read at assignment. */
#define LP_ENG_PROGRESS_TOPIC "@progress"
#define LP_ENG_MARK_EVERY_MS 1000 /* clock marks: at most one per second per partition */
int lp_eng_member_assign(lp_engine_t *engine, int32_t partition);
/* Moves a source's progress up to `to`, remembering its value before the batch. */
int lp_eng_member_advance(lp_engine_t *engine, batch_t *b, int32_t src, int64_t to);
/* Once a batch's records are applied: a mark for each source whose progress moved. */
int lp_eng_member_marks(lp_engine_t *engine, batch_t *b);
/* The batch is over: committed, its marks are the sources' stated progress; not committed, the
 * progress it moved goes back. */
void lp_eng_member_end(lp_engine_t *engine, batch_t *b, bool committed);

#endif
