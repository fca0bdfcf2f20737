/* leadpulse Redis store internals: the store struct and the connection layer (redis_conn.c). */
#ifndef LP_STORE_REDIS_INTERNAL_H
#define LP_STORE_REDIS_INTERNAL_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "store/store_internal.h"

#define LP_REDIS_PREFIX_MAX 64
#define LP_REDIS_KEY_MAX (LP_REDIS_PREFIX_MAX + 32)
#define LP_REDIS_SLOTS 16384
#define LP_REDIS_HOST_MAX 256
#define LP_REDIS_NODES_MAX 1024  /* nodes known in cluster mode (seeds and discovered) */
#define LP_REDIS_REDIRECTS_MAX 5 /* MOVED/ASK followed per call before giving up */

/* The partition's keys. RK_LEADS names the legacy single hash of a partition's leads and is the
 * prefix of its lead buckets (<leads>:<b>, docs/redis-layout.md); RK_BUCKETS holds the bucket
 * count (missing: the legacy hash). */
enum {
    RK_LEADS = 0,
    RK_TIMERS,
    RK_OFFSETS,
    RK_OUTBOX,
    RK_EPOCH,
    RK_SUPPRESSED,
    RK_BUCKETS,
    RK_COUNT
};

#define LP_REDIS_RUN_MAX 500 /* ids per bucket run in the load and commit scripts */

/* One Redis server: the only one in standalone mode, a seed or a discovered node in cluster
 * mode (one connection each). */
typedef struct {
    char host[LP_REDIS_HOST_MAX];
    int port;
    redisContext *ctx; /* NULL while disconnected */
} redis_node_t;

typedef struct {
    lp_store_t base;
    lp_store_redis_url_t url; /* the first URL: credentials (all nodes) and db (standalone) */
    char prefix[LP_REDIS_PREFIX_MAX + 1];
    struct timeval timeout;
    int cluster;         /* redis.mode: cluster */
    redis_node_t *nodes; /* standalone: nodes[0]; cluster: seeds first, then discovered */
    size_t nnodes;
    size_t nodes_cap;
    int16_t *slots; /* cluster: slot -> index in nodes of its master, -1 unknown */
    int map_stale;  /* cluster: refresh the slot map before the next command */
    int slot;       /* cluster: slot of the current partition's keys (lp_redis_set_keys) */
    int cur;        /* index in nodes of the node the current command goes to */
    char commit_sha[41];
    char ack_sha[41];
    char load_sha[41];
    char rebucket_sha[41];
    int32_t lead_buckets; /* bucket count partitions get when fenced (redis.lead_buckets) */
    int32_t *layout;      /* partition -> its bucket count as last seen; -1 unknown, 0 legacy */
    size_t layout_cap;
    uint64_t *order; /* scratch of load and commit: bucket << 32 | lead index, sorted */
    uint32_t *bucket_of;
    size_t order_cap;
    redisReply *reply; /* last reply: backs what load/due/outbox_read hand out */
    size_t pipe_argc;  /* commit sent by commit_send, its arguments in argv; 0 = none */
    int32_t pipe_partition;
    int sent_argc; /* the command sent by lp_redis_send (resent after a redirection) */
    const char **sent_argv;
    const size_t *sent_argvlen;
    char keys[RK_COUNT][LP_REDIS_KEY_MAX]; /* keys of the partition of the current call */
    /* Scratch, grown on demand. */
    const char **argv;
    size_t *argvlen;
    size_t argv_cap;
    char (*nums)[24]; /* decimal renderings of numbers in argv */
    size_t nums_cap;
    const uint8_t **loaded_data;
    size_t *loaded_len;
    size_t loaded_cap;
    const char **due_ids;
    size_t due_cap;
    lp_store_outbox_t *read;
    size_t read_cap;
    lp_store_suppress_t *suppress;
    size_t suppress_cap;
} redis_store_t;

/* How a command may be retried after the connection dropped under it. */
typedef enum {
    RC_ONCE = 0, /* never resent: a lost reply leaves the outcome unknown (commit) */
    RC_RETRY = 1 /* safe to resend once on a fresh connection (reads, INCR for fencing, XDEL) */
} redis_retry_t;

/* Opens the connection of the current node (connect, AUTH, SELECT, SCRIPT LOAD of both
 * scripts). LP_OK or LP_ERR with rs->base.errstr set. */
int lp_redis_connect(redis_store_t *rs);

/* 0 if the connection is broken or has unread bytes (the server closed it): reconnect. */
int lp_redis_usable(redisContext *ctx);

/* Cluster mode: the index of host:port among the known nodes, added if new; -1 if full. */
int lp_redis_add_node(redis_store_t *rs, const char *host, int port);

/* Cluster mode: asks the known nodes for CLUSTER SLOTS until one answers and installs its slot
 * map. LP_OK or LP_ERR with errstr set. */
int lp_redis_refresh_slots(redis_store_t *rs);

/* ---- Lead buckets (redis_buckets.c) ---- */

/* The bucket of a lead: FNV-1a (32 bits) of its id's bytes, modulo the partition's bucket count
 * (docs/redis-layout.md). */
uint32_t lp_redis_lead_bucket(const char *id, size_t len, uint32_t buckets);

/* The partition's bucket count (0: the legacy single hash), read from Redis unless cached.
 * LP_ERR with errstr set, also while the partition is being re-bucketed. */
int lp_redis_layout(redis_store_t *rs, int32_t partition, int32_t *buckets);

/* Forgets the cached bucket count of a partition (after a LAYOUT refusal). */
void lp_redis_layout_forget(redis_store_t *rs, int32_t partition);

/* After fencing at epoch: moves the partition's leads into rs->lead_buckets buckets if it holds
 * another count (or the legacy hash), finishing an interrupted move first; caches the count.
 * LP_OK, LP_STORE_FENCED, or LP_ERR with errstr set. */
int lp_redis_rebucket(redis_store_t *rs, int32_t partition, int64_t epoch);

/* Sorting a batch's leads by bucket: reserve room for n, fill rs->bucket_of[0..n), then sort:
 * rs->order[0..n) becomes bucket << 32 | index, by bucket and then batch order. */
int lp_redis_order_reserve(redis_store_t *rs, size_t n);
void lp_redis_order_sort(redis_store_t *rs, size_t n);

/* Pushes the sorted ids (or, leads given, the (id, data) pairs) as runs (bucket, count, items)
 * of at most LP_REDIS_RUN_MAX items each; returns the number of runs. Room: 2 arguments and 2
 * numbers per item. */
size_t lp_redis_push_runs(redis_store_t *rs, size_t *argc, size_t *nnum, size_t n,
                          const char *const *ids, const lp_store_lead_t *leads);

/* ---- Redis Cluster, the pure parts (redis_cluster.c) ---- */

/* CRC16-CCITT (XModem), the hash of Redis Cluster key slots. */
uint16_t lp_redis_crc16(const void *buf, size_t len);

/* The slot of a key: CRC16 of its hash tag (the text between the first '{' and the next '}',
 * if not empty), else of the whole key, mod 16384. */
int lp_redis_key_slot(const char *key, size_t len);

/* The slot of every key of a partition (hash tag "{<partition>}"). */
int lp_redis_partition_slot(int32_t partition);

/* A MOVED or ASK error reply: "MOVED <slot> <host>:<port>" / "ASK <slot> <host>:<port>". */
typedef struct {
    int ask; /* 0 MOVED (the slot's owner changed), 1 ASK (this command only) */
    int slot;
    char host[LP_REDIS_HOST_MAX];
    int port;
} lp_redis_redirect_t;

/* 1 and *out filled if str[0..len) is a well-formed redirection, else 0 (any other error, such
 * as the commit script's own refusals). */
int lp_redis_parse_redirect(const char *str, size_t len, lp_redis_redirect_t *out);

/* Walks a CLUSTER SLOTS reply: fn(arg, first, last, host, port) for each range and its master
 * (an empty host means asked_host). LP_OK, or LP_ERR with a reason (a malformed reply, a node
 * that is not in cluster mode, fn failing). */
typedef int (*lp_redis_slot_range_fn)(void *arg, int first, int last, const char *host, int port);
int lp_redis_parse_slots(const redisReply *reply, const char *asked_host, lp_redis_slot_range_fn fn,
                         void *arg, char *errstr, size_t errstr_size);

/* Frees the previous reply, makes sure a connection is up (reconnecting at most once per call),
 * sends argv and waits for the reply (a round trip). Returns the reply (owned by rs, freed on the
 * next call) or NULL with rs->base.errstr set; an error reply is returned as a reply. */
redisReply *lp_redis_command(redis_store_t *rs, int argc, const char **argv, const size_t *argvlen,
                             redis_retry_t retry);

/* The two halves of a pipelined command. lp_redis_send makes sure a connection is up, writes
 * argv out and returns without waiting (LP_OK, or LP_ERR with errstr set: the connection is
 * dropped). lp_redis_recv waits for the reply of the command sent last (owned by rs, like
 * lp_redis_command's) or returns NULL with errstr set. Nothing else may be sent in between. */
int lp_redis_send(redis_store_t *rs, int argc, const char **argv, const size_t *argvlen);
redisReply *lp_redis_recv(redis_store_t *rs, const char *what);

/* SCRIPT LOAD: writes the script's SHA1 (40 hex + NUL) into sha. LP_OK or LP_ERR. */
int lp_redis_script_load(redis_store_t *rs, const char *script, char *sha);

/* The halves of lp_redis_evalsha, for a pipelined EVALSHA: fill argv[0..1] (loading the script
 * first if sha is still empty; LP_OK or LP_ERR), and, given the reply, load the script again and
 * rerun argv (waiting) if the reply is NOSCRIPT; any other reply is returned as it is. */
int lp_redis_evalsha_argv(redis_store_t *rs, const char *script, char *sha, const char **argv,
                          size_t *argvlen);
redisReply *lp_redis_evalsha_noscript(redis_store_t *rs, redisReply *reply, const char *script,
                                      char *sha, int argc, const char **argv, const size_t *argvlen,
                                      redis_retry_t retry);

/* Runs a script by EVALSHA, loading it again (SCRIPT LOAD) and retrying once on NOSCRIPT.
 * argv[0..1] are filled here ("EVALSHA", sha); the rest is the caller's. */
redisReply *lp_redis_evalsha(redis_store_t *rs, const char *script, char *sha, int argc,
                             const char **argv, size_t *argvlen, redis_retry_t retry);

/* Makes room for n arguments and n numbers in the scratch arrays. LP_OK or LP_ERR. */
int lp_redis_reserve_argv(redis_store_t *rs, size_t n);

/* Frees the connection and the kept reply. */
void lp_redis_disconnect(redis_store_t *rs);

/* Appends an argument (bytes, or a decimal number in rs->nums) to rs->argv; room is reserved by
 * lp_redis_reserve_argv. */
static inline void lp_redis_push(redis_store_t *rs, size_t *argc, const void *p, size_t len) {
    rs->argv[*argc] = len == 0 || p == NULL ? "" : p;
    rs->argvlen[*argc] = len;
    (*argc)++;
}

static inline void lp_redis_push_num(redis_store_t *rs, size_t *argc, size_t *nnum, int64_t v) {
    int len = snprintf(rs->nums[*nnum], sizeof(rs->nums[0]), "%" PRId64, v);
    lp_redis_push(rs, argc, rs->nums[*nnum], (size_t)len);
    (*nnum)++;
}

/* rs->keys set to partition's keys (all under the hash tag {partition}). */
void lp_redis_set_keys(redis_store_t *rs, int32_t partition);

/* Strict decimal int64 (what INCR, HSET of our numbers and stream fields hold). LP_OK/LP_ERR. */
int lp_redis_parse_i64(const char *s, size_t len, int64_t *out);

/* A reply that is an error or not of the expected type: LP_ERR with Redis's words. */
int lp_redis_bad_reply(redis_store_t *rs, const char *what, int32_t partition,
                       const redisReply *reply);

/* The store operations of redis_outbox.c (lp_store_ops_t's outbox_read, outbox_ack). */
int lp_redis_outbox_read(lp_store_t *store, int32_t partition, size_t max,
                         lp_store_outbox_list_t *out);
int lp_redis_outbox_ack(lp_store_t *store, int32_t partition, int64_t epoch, size_t n,
                        const char *const *ids);
/* The lead reads of redis_leads.c (lp_store_ops_t's load and scan), and the shape of an HSCAN
 * reply both it and the re-bucketing walk: [cursor, [field, value, ...]]. */
int lp_redis_load(lp_store_t *store, int32_t partition, size_t n, const char *const *lead_ids,
                  lp_store_loaded_t *out);
int lp_redis_scan(lp_store_t *store, int32_t partition, uint64_t *cursor, size_t count,
                  lp_store_scan_t *out);
int lp_redis_hscan_page(const redisReply *reply);

/* ---- Redis Cluster: placing the partitions' slots (redis_place.c) ---- */

#define LP_REDIS_PLACE_MASTERS 256

typedef struct {
    char id[48];
    char host[LP_REDIS_HOST_MAX];
    int port;
} lp_redis_master_t;

/* The connected masters of a CLUSTER NODES reply (text is modified) and owner[slot] = index of
 * its master (-1: none; slots being migrated count for their current owner). Returns the number
 * of masters, or -1 with a reason. */
int lp_redis_parse_nodes(char *text, lp_redis_master_t *masters, int max, int16_t *owner,
                         char *errstr, size_t errstr_size);

/* Given cur[p] (the master of partition p's slot, -1 none), sets target[p] so that every master
 * holds floor or ceil(partitions / nmasters) partitions with the fewest moves (the masters
 * holding most keep the rounded-up quotas). Returns the number of moves, -1 out of memory. */
int lp_redis_place_plan(const int *cur, int32_t partitions, int nmasters, int *target);

#endif
