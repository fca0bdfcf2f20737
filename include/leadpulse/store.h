/* leadpulse: the state store. A small table of functions with two implementations:
 * Redis (hiredis, src/store/redis_store.c) and in-memory (src/store/mem_store.c).
 * All state of partition p lives under keys with the hash tag {p}; a batch commit is atomic. */
#ifndef LEADPULSE_STORE_H
#define LEADPULSE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "leadpulse/common.h"

#define LP_STORE_FENCED (-2) /* commit refused: the partition's epoch moved on (zombie writer) */
#define LP_STORE_MOVED                                                                             \
    (-3) /* commit refused: the stored offsets are not where the writer                            \
            believes (Redis lost acknowledged writes, e.g. a crash with AOF                        \
            everysec): re-read the partition from the store */
#define LP_STORE_DUPLICATE                                                                         \
    1 /* commit skipped: its offsets were stored already (a retry after a                          \
         lost reply); nothing was written */

typedef struct {
    const char *lead_id;
    const uint8_t *data; /* encoded lead (lp_lead_encode) */
    size_t len;
} lp_store_lead_t;

typedef struct {
    const char *lead_id;
    int64_t due_ms; /* 0 = remove the lead's timer */
} lp_store_timer_t;

typedef struct {
    const char *topic;   /* input topic name */
    int64_t next_offset; /* the next offset to consume */
    int64_t expected;    /* the next offset the writer believes is stored now (-1: none). A batch
                            whose stored offsets differ is refused (LP_STORE_MOVED), unless all
                            of them are at or past next_offset (LP_STORE_DUPLICATE). */
} lp_store_offset_t;

/* An outbox entry: one output record waiting to be produced. */
typedef struct {
    char id[64];     /* store-assigned entry id (stream id in Redis); set by read */
    int kind;        /* output kind (the engine's lp_schema_kind_t) */
    const char *key; /* record key (lead id) */
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    const char *event_id; /* deterministic event id ("" for dead letters) */
    const char *meta;     /* extra headers as "name=value\n" lines (dead-letter reason, source
                             topic/partition/offset); "" if none */
    size_t meta_len;
} lp_store_outbox_t;

/* A suppression entry (docs/privacy.md): an erased lead, named by the keyed hash of its id (32
 * lowercase hex digits, never the id), and the event time before which its events are dropped
 * (0: until lifted). In a batch, until_ms < 0 removes the entry. */
typedef struct {
    char hash[33];
    int64_t until_ms;
} lp_store_suppress_t;

typedef struct {
    int32_t partition;
    int64_t epoch; /* the writer's epoch; refused if stale */
    size_t nleads;
    const lp_store_lead_t *leads;
    size_t ntimers;
    const lp_store_timer_t *timers;
    size_t noffsets;
    const lp_store_offset_t *offsets;
    size_t noutbox;
    const lp_store_outbox_t *outbox;
    /* Erasure: these leads' state, timers and undelivered outbox entries (key = the lead id,
     * except LeadErased records: kind 3) are deleted first, before the batch's own writes and
     * outbox entries are added. */
    size_t nerase;
    const char *const *erase;
    size_t nsuppress;
    const lp_store_suppress_t *suppress; /* suppression entries set or removed */
} lp_store_batch_t;

/* Loaded leads: data[i] is NULL (len 0) when lead i is unknown. Memory owned by the store until
 * the next call on the same store or lp_store_loaded_clear(). */
typedef struct {
    size_t n;
    const uint8_t **data;
    size_t *len;
} lp_store_loaded_t;

/* Outbox entries read: owned by the store until the next call on it. */
typedef struct {
    size_t n;
    lp_store_outbox_t *entries;
} lp_store_outbox_list_t;

/* Leads returned by scan: ids[i] (NUL-terminated) with its encoded state data[i] / len[i]. Owned
 * by the store until the next call on it. */
typedef struct {
    size_t n;
    const char **ids;
    const uint8_t **data;
    size_t *len;
} lp_store_scan_t;

typedef struct lp_store lp_store_t;

typedef struct {
    const char *name;
    /* Fences the partition: increments and returns its epoch in *epoch. */
    int (*fence)(lp_store_t *store, int32_t partition, int64_t *epoch);
    /* Reads the stored next offset of topic in partition; -1 if none. */
    int (*get_offset)(lp_store_t *store, int32_t partition, const char *topic, int64_t *offset);
    /* Loads many leads of one partition in one round trip (pipelined). */
    int (*load)(lp_store_t *store, int32_t partition, size_t n, const char *const *lead_ids,
                lp_store_loaded_t *out);
    /* Atomically: erasures, leads, timers, offsets, outbox, suppression entries. LP_OK, LP_ERR
     * (retry), LP_STORE_FENCED, LP_STORE_MOVED, or LP_STORE_DUPLICATE (Redis: every offset of the
     * batch was stored already). */
    int (*commit)(lp_store_t *store, const lp_store_batch_t *batch);
    /* Up to max lead ids with a timer due at or before now_ms (ids owned by the store). */
    int (*due)(lp_store_t *store, int32_t partition, int64_t now_ms, size_t max, size_t *n,
               const char ***lead_ids);
    /* Up to max outbox entries of the partition, oldest first. */
    int (*outbox_read)(lp_store_t *store, int32_t partition, size_t max,
                       lp_store_outbox_list_t *out);
    /* The partition's suppression entries (owned by the store until the next call on it). */
    int (*suppressed)(lp_store_t *store, int32_t partition, size_t *n,
                      const lp_store_suppress_t **entries);
    /* Deletes delivered outbox entries (by id), only if the epoch still holds. */
    int (*outbox_ack)(lp_store_t *store, int32_t partition, int64_t epoch, size_t n,
                      const char *const *ids);
    void (*destroy)(lp_store_t *store);
    /* Optional (NULL when unsupported): iterates every stored lead of a partition, for
     * `inspect --all` and tests. Start with *cursor = 0; each call returns some leads (about
     * `count`, possibly none) and the next cursor, which is 0 after the last page. A lead may be
     * returned twice (Redis HSCAN semantics); leads written meanwhile may or may not appear. */
    int (*scan)(lp_store_t *store, int32_t partition, uint64_t *cursor, size_t count,
                lp_store_scan_t *out);
    /* Optional (NULL: lp_store_commit_send runs commit at once and keeps its outcome): a commit
     * in two halves, so the caller can work while the backend applies the batch. commit_send
     * sends the batch and returns without waiting (LP_OK, or LP_ERR when it could not be sent:
     * commit_recv then reports it); commit_recv waits for the outcome (the codes of commit).
     * One commit in flight at a time; between the halves the caller makes no other call on the
     * store, and the batch's memory stays valid until commit_recv returns. */
    int (*commit_send)(lp_store_t *store, const lp_store_batch_t *batch);
    int (*commit_recv)(lp_store_t *store);
} lp_store_ops_t;

struct lp_store {
    const lp_store_ops_t *ops;
    char errstr[LP_ERRSTR];  /* last error */
    uint64_t round_trips;    /* requests sent to the backend (for the bench) */
    uint64_t redirects;      /* Redis Cluster MOVED and ASK replies followed */
    uint64_t slot_refreshes; /* Redis Cluster slot maps fetched (CLUSTER SLOTS) */
    int inflight;            /* commits sent and not yet received (0 or 1) */
    int inflight_rc;         /* outcome kept by lp_store_commit_send without commit_send */
};

/* In-memory store. Caller frees with lp_store_destroy(). */
lp_store_t *lp_store_mem_new(void);

/* Redis store. url: redis://[[user]:password@]host[:port][/db] (user = Redis 6 ACL user; %XX
 * escapes in user and password; host may be [ipv6]); prefix: key prefix (e.g. "lp", no braces);
 * timeout_ms: connect and per-command timeout. Keys and the commit script: docs/redis-layout.md.
 * Returns NULL with a reason in errstr. Caller frees with lp_store_destroy(). */
lp_store_t *lp_store_redis_new(const char *url, const char *prefix, int timeout_ms, char *errstr,
                               size_t errstr_size);

/* Redis Cluster store (redis.mode: cluster). urls: comma-separated seed nodes, each
 * redis://[[user]:password@]host[:port] (no /db: a cluster has database 0 only); the first URL's
 * credentials are used for every node. The slot map comes from CLUSTER SLOTS of the first seed
 * that answers; each partition's commands go to the master of its slot (one connection per
 * node), following MOVED (map refreshed) and ASK. Same operations and guarantees as the
 * standalone store. NULL with a reason in errstr (e.g. no seed answers, or one is not a cluster
 * node). */
lp_store_t *lp_store_redis_cluster_new(const char *urls, const char *prefix, int timeout_ms,
                                       char *errstr, size_t errstr_size);

/* Lead buckets (docs/redis-layout.md): a partition's leads are spread over this many small
 * hashes, which Redis keeps in its compact listpack encoding when hash-max-listpack-entries and
 * hash-max-listpack-value allow. A partition fenced by a store with another count (or written
 * by a version before lead buckets) has its leads moved when it is fenced. Sets the count of a
 * Redis store (default LP_STORE_REDIS_LEAD_BUCKETS); LP_ERR if buckets is out of range or the
 * store is not a Redis store. Readers (load, scan) use the count each partition holds. */
#define LP_STORE_REDIS_LEAD_BUCKETS 256
#define LP_STORE_REDIS_LEAD_BUCKETS_MAX 1048576
int lp_store_redis_set_lead_buckets(lp_store_t *store, int32_t buckets);

/* Whether the Redis node holding the partition keeps lead buckets compact: 1 if its
 * hash-max-listpack-entries and -value are at least these, 0 if not and -1 if it cannot tell
 * (CONFIG refused), with what to do in msg. 1 for a store that is not a Redis store. */
#define LP_STORE_REDIS_LISTPACK_ENTRIES 512
#define LP_STORE_REDIS_LISTPACK_VALUE 1024
int lp_store_redis_listpack_check(lp_store_t *store, int32_t partition, char *msg, size_t msg_size);

/* lp_store_redis_cluster_new if cluster, else lp_store_redis_new. */
lp_store_t *lp_store_redis_open(int cluster, const char *url, const char *prefix, int timeout_ms,
                                char *errstr, size_t errstr_size);

/* Redis Cluster: moves the slots of partitions 0..partitions-1 so that every master holds an even
 * share (floor or ceil of partitions / masters) with the fewest slot moves, by Redis's slot
 * migration protocol (safe while workers run: a partition pauses while its slot moves). urls:
 * seed URLs as for lp_store_redis_cluster_new. Prints the plan and each move to out; dry_run
 * only prints. Returns the number of partitions moved (or to move), -1 with a reason. */
int lp_store_redis_cluster_place(const char *urls, int timeout_ms, int32_t partitions, int dry_run,
                                 FILE *out, char *errstr, size_t errstr_size);

/* The hash tag of a store partition, without braces, into buf: "<p>" for a lead partition,
 * "a<q>" for account partition q (LP_ACCOUNT_PARTITION_BASE + q). Returns its length. */
int lp_store_partition_tag(int32_t partition, char *buf, size_t size);

/* Frees the store and everything it owns (loaded leads, read outbox entries). Accepts NULL. */
void lp_store_destroy(lp_store_t *store);

/* Convenience wrappers over store->ops (same contracts as the ops above). Each one returns LP_ERR
 * with a reason in store->errstr on a bad argument (NULL pointers, negative partition). */
int lp_store_fence(lp_store_t *store, int32_t partition, int64_t *epoch);
int lp_store_get_offset(lp_store_t *store, int32_t partition, const char *topic, int64_t *offset);
int lp_store_load(lp_store_t *store, int32_t partition, size_t n, const char *const *lead_ids,
                  lp_store_loaded_t *out);
int lp_store_commit(lp_store_t *store, const lp_store_batch_t *batch);
/* The commit in two halves (see commit_send in lp_store_ops_t); every store supports them.
 * lp_store_commit_recv without a commit sent is LP_ERR. */
int lp_store_commit_send(lp_store_t *store, const lp_store_batch_t *batch);
int lp_store_commit_recv(lp_store_t *store);
int lp_store_due(lp_store_t *store, int32_t partition, int64_t now_ms, size_t max, size_t *n,
                 const char ***lead_ids);
int lp_store_outbox_read(lp_store_t *store, int32_t partition, size_t max,
                         lp_store_outbox_list_t *out);
int lp_store_outbox_ack(lp_store_t *store, int32_t partition, int64_t epoch, size_t n,
                        const char *const *ids);

/* Calls store->ops->scan; LP_ERR with a reason if the store has none. */
int lp_store_scan(lp_store_t *store, int32_t partition, uint64_t *cursor, size_t count,
                  lp_store_scan_t *out);

/* Forgets the caller's view of loaded leads (zeroes *loaded). The bytes stay owned by the store
 * and are released by its next call or lp_store_destroy(). Accepts NULL. */
void lp_store_loaded_clear(lp_store_loaded_t *loaded);

#endif
