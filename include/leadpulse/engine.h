/* leadpulse: the engine. Ties core, codec and store together for one partition batch at a time:
 * decode, group by lead, load (pipelined), apply, encode, commit atomically (leads, timers,
 * offsets, outbox). Used by `leadpulse run` (Redis store, Kafka IO) and `leadpulse replay` (memory
 * store). */
#ifndef LEADPULSE_ENGINE_H
#define LEADPULSE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "leadpulse/codec.h"
#include "leadpulse/hash.h"
#include "leadpulse/rules.h"
#include "leadpulse/score.h"
#include "leadpulse/store.h"

/* Output kinds: the IO layer maps them to topics. */
typedef enum {
    LP_OUT_QUALIFIED = 0,
    LP_OUT_STALE = 1,
    LP_OUT_DLQ = 2,
    LP_OUT_ERASED = 3, /* LeadErased */
    /* Stage 1 of account qualification (opts.accounts): records of the members topic
     * (leadpulse/member_wire.h). A member record or leave is keyed by its account key; a mark has
     * an empty key and goes to every partition of the topic. */
    LP_OUT_MEMBER = 4,
    LP_OUT_MARK = 5,
    /* Stage 2 (leadpulse/account_engine.h): AccountQualified, AccountStale, keyed by account. */
    LP_OUT_ACCOUNT_QUALIFIED = 6,
    LP_OUT_ACCOUNT_STALE = 7,
    LP_OUT__COUNT
} lp_out_kind_t;

/* One input record. */
typedef struct {
    const char *topic;
    lp_event_kind_t kind; /* what the topic carries */
    lp_format_t format;   /* how the topic is encoded */
    int32_t partition;
    int64_t offset;
    const uint8_t *key; /* may be NULL */
    size_t key_len;
    const uint8_t *value; /* may be NULL (tombstone: dead-lettered) */
    size_t value_len;
    int64_t timestamp_ms; /* the record's timestamp (a tombstone's: the erasure's time) */
    lp_event_op_t op;     /* a tombstone's request (header leadpulse.op); LP_OP_APPLY otherwise */
    bool any_kind;        /* the source mixes event kinds (replay files) */
    const lp_event_t *decoded; /* already decoded (replay): value is then only for dead letters */
} lp_engine_msg_t;

typedef struct {
    lp_format_t out_format; /* Avro (with out_framing) or JSON lines */
    lp_framing_t out_framing;
    int64_t max_future_skew_ms; /* events further ahead of `now` are dead-lettered; 0 = off */
    size_t cache_max_leads;     /* bounded cache of encoded leads; 0 = no cache */
    size_t timer_batch;         /* due timers fired per call */
    bool log_dead_letters; /* a WARN line per dead letter (topic, offset, reason; rate-limited) */
    /* Privacy (docs/privacy.md). The profile fields copied into LeadQualified / LeadStale: a
     * bit mask of LP_HANDOFF_* (the others are written as null). */
    unsigned handoff_fields;
    int64_t suppression_ttl_ms;  /* an erased lead's events dated before erasure + this are
                                    dropped; 0 = until `leadpulse unsuppress` */
    uint8_t suppression_key[16]; /* SipHash key of the suppression entries (keyed lead id hash) */
    /* Stage 1 of account qualification (docs/rules.md "accounts"): when set and the rules have
     * `accounts`, every applied event of a lead in an account (or leaving one) adds a member
     * record (or leave) to the outbox, and each batch that moved its source's progress a mark. */
    bool accounts;
    /* The stage-1 partition (source) a lead's records come from: 0 = the batch's partition (the
     * worker); N > 0 = lp_partition_of(member_partitioner, lead id, N) (`replay`, whose one
     * engine partition stands for the N partitions of the input topics). */
    int32_t member_sources;
    lp_partitioner_t member_partitioner;
    /* The stage-1 partition count written in marks (the worker: the input topics' count);
     * member_sources when 0. */
    int32_t member_source_count;
} lp_engine_opts_t;

/* Profile fields a hand-off can carry (privacy.handoff_fields). */
enum {
    LP_HANDOFF_EMAIL = 1u << 0,
    LP_HANDOFF_COMPANY = 1u << 1,
    LP_HANDOFF_REGION = 1u << 2,
    LP_HANDOFF_COUNTRY = 1u << 3,
    LP_HANDOFF_SEGMENT = 1u << 4,
    LP_HANDOFF_PERSONA = 1u << 5,
    LP_HANDOFF_TITLE = 1u << 6,
    LP_HANDOFF_OWNER = 1u << 7,
    LP_HANDOFF_DEFAULT = LP_HANDOFF_REGION | LP_HANDOFF_COUNTRY | LP_HANDOFF_SEGMENT |
                         LP_HANDOFF_PERSONA | LP_HANDOFF_OWNER,
    LP_HANDOFF_ALL = 0xffu,
};

typedef struct {
    uint64_t events; /* records processed (applied, duplicate or dead-lettered) */
    uint64_t applied;
    uint64_t duplicates;
    uint64_t dead_letters;
    uint64_t qualified;
    uint64_t stale[3]; /* by lp_stale_reason_t */
    uint64_t rejected_by_reason[LP_REJ__COUNT];
    uint64_t batches;
    uint64_t commit_failures;
    uint64_t fenced;
    uint64_t moved; /* commits refused because the store lost writes */
    uint64_t cache_hits;
    uint64_t cache_misses;
    uint64_t timers_fired;
    uint64_t corrupt_state;
    uint64_t leads_created;  /* leads seen for the first time */
    uint64_t suppressed;     /* events dropped: their lead was erased and is suppressed */
    uint64_t unsuppressed;   /* suppressions lifted by request */
    uint64_t erased;         /* LeadErased hand-offs (leads erased on request) */
    uint64_t member_records; /* stage 1: member records sent (leaves included) */
    uint64_t member_leaves;  /* of which leaves */
    uint64_t member_marks;   /* marks sent */
    uint64_t member_late;    /* member records ordered at their source's progress, not their time
                                (the event was more than accounts.lateness behind it) */
} lp_engine_stats_t;

typedef struct lp_engine lp_engine_t;

/* rules, store and codec are borrowed and must outlive the engine; codec may be NULL when every
 * input and output is JSON. Returns NULL with a reason. Free with lp_engine_destroy(). */
lp_engine_t *lp_engine_new(const lp_engine_opts_t *opts, const lp_rules_t *rules, lp_store_t *store,
                           lp_avro_codec_t *codec, char *errstr, size_t errstr_size);
void lp_engine_destroy(lp_engine_t *engine);

/* Swaps the rules (SIGHUP). The old rules must stay alive until this returns; the caller frees
 * them. */
void lp_engine_set_rules(lp_engine_t *engine, const lp_rules_t *rules);

/* Takes ownership of a partition: fences it in the store (new epoch) and reads the stored next
 * offsets of the given topics into offsets[] (-1 when none). */
int lp_engine_assign(lp_engine_t *engine, int32_t partition, size_t ntopics,
                     const char *const *topics, int64_t *offsets);
/* Gives a partition up: forgets its epoch and drops its cached leads. */
void lp_engine_revoke(lp_engine_t *engine, int32_t partition);
bool lp_engine_owns(const lp_engine_t *engine, int32_t partition);
/* The epoch this engine holds for the partition (0 when not owned). */
int64_t lp_engine_epoch(const lp_engine_t *engine, int32_t partition);

/* Processes a batch of records of ONE partition, in offset order, and commits it atomically.
 * now_ms is the wall clock (for the future-skew check). Returns LP_OK, LP_ERR (nothing applied:
 * retry the same records later), LP_STORE_FENCED (partition lost: revoke it) or LP_STORE_MOVED
 * (the store lost writes: the engine dropped the partition; assign it again and restart
 * consumption at the offsets it returns). */
int lp_engine_process(lp_engine_t *engine, int32_t partition, const lp_engine_msg_t *msgs, size_t n,
                      int64_t now_ms);

/* The same in four steps, so the caller can build one batch while the store applies another:
 *
 *     begin(q)  decode q's records, load the leads the cache lacks (a store round trip)
 *     send(p)   send the commit of p, applied before; returns at once
 *     apply(q)  apply q's events and encode its commit (no I/O): meanwhile the store works on p
 *     finish(p) wait for p's outcome
 *
 * At most two batches are in progress (begun and not finished), of different partitions; at
 * most one is sent and not finished, and no other engine call that uses the store (begin, a
 * send, fire_timers, assign, get_lead) comes between a send and its finish. msgs must stay
 * valid until finish. lp_engine_begin returns LP_OK with *batch set, LP_ERR (nothing changed:
 * retry later), LP_ENGINE_SCHEMA_WAIT (nothing changed: a record's schema id is new and no
 * Schema Registry answered; retry later) or LP_STORE_FENCED (not owned); apply returns LP_OK or
 * LP_ERR (the batch is dropped); finish returns what lp_engine_process returns. A batch that fails
 * at any step is over (its counters are not kept). */
#define LP_ENGINE_SCHEMA_WAIT (-4)
typedef struct lp_engine_batch lp_engine_batch_t;
int lp_engine_begin(lp_engine_t *engine, int32_t partition, const lp_engine_msg_t *msgs, size_t n,
                    int64_t now_ms, lp_engine_batch_t **batch);
int lp_engine_apply(lp_engine_t *engine, lp_engine_batch_t *batch, const lp_engine_msg_t *msgs);
int lp_engine_send(lp_engine_t *engine, lp_engine_batch_t *batch);
int lp_engine_finish(lp_engine_t *engine, lp_engine_batch_t *batch);

/* Stage 1 (opts.accounts, the worker): the partition count written in marks (the input
 * topics'), known once the worker has the topics' metadata. */
void lp_engine_set_member_source_count(lp_engine_t *engine, int32_t count);

/* Stage 1: the members topic's partition count (default 1). A batch's member records are sent
 * as one bundle (leadpulse/member_wire.h) per partition of the members topic, the partition of
 * each record's account key under crc32 (lp_partition_of), named in the outbox entry's header
 * `members_partition`. LP_ERR on no memory. */
int lp_engine_set_member_targets(lp_engine_t *engine, int32_t count);

/* Stage 1, the worker's clock: the partition's progress becomes at least now_ms - lateness
 * (docs/rules.md "Order of member records": an idle partition does not hold accounts back); when
 * that moved it a second or more past its last mark, a mark is committed (a batch of its own).
 * restate: send a mark of the progress even if it did not move (so that an account partition
 * that restarted, and lost the marks it had, hears from every source again). For a partition
 * that has caught up with its input only. *marked: whether a mark was sent. Same return values
 * as lp_engine_process. */
int lp_engine_member_tick(lp_engine_t *engine, int32_t partition, int64_t now_ms, bool restate,
                          bool *marked);

/* Fires timers of the partition due at or before now_ms (up to opts.timer_batch leads).
 * *fired receives the number of leads advanced. Same return values as lp_engine_process. */
int lp_engine_fire_timers(lp_engine_t *engine, int32_t partition, int64_t now_ms, size_t *fired);

/* Loads one lead (for `inspect` and tests). Returns 1 found, 0 unknown, LP_ERR on store error. */
/* Why the engine would dead-letter this decoded event (its time, or what the scorer refuses), or
 * NULL. The reason is `why` or a static string. For a caller that must know before it submits a
 * record, as `replay --strict` does. */
const char *lp_engine_check_event(const lp_engine_t *engine, const lp_event_t *event,
                                  int64_t now_ms, char *why, size_t why_size);

int lp_engine_get_lead(lp_engine_t *engine, int32_t partition, const char *lead_id,
                       lp_lead_t *lead);

const lp_engine_stats_t *lp_engine_stats(const lp_engine_t *engine);
const lp_rules_t *lp_engine_rules(const lp_engine_t *engine);
const char *lp_engine_errstr(const lp_engine_t *engine);

/* Parses the "name=value\n" header lines of an outbox entry; calls fn for each. */
void lp_engine_meta_foreach(const char *meta, size_t len,
                            void (*fn)(void *ctx, const char *name, size_t name_len,
                                       const char *value, size_t value_len),
                            void *ctx);

#endif
