/* leadpulse Redis store: lead buckets. A partition's leads live in many small hashes
 * <prefix>:{p}:leads:<b> (b = FNV-1a of the lead id modulo the partition's bucket count, kept
 * in <prefix>:{p}:buckets) so that Redis keeps each in its compact listpack encoding; one large
 * hash per partition costs a dict entry and two sds strings per lead (docs/redis-layout.md,
 * "Lead buckets").
 *
 * Re-bucketing (a changed redis.lead_buckets, or a partition written by a worker before lead
 * buckets) happens when a worker fences the partition, before it reads anything: no other
 * writer exists (every step checks the epoch), every lead is at all times in exactly one of its
 * old and new buckets (each move is one script: HSET then HDEL), and the bucket key records
 * "A>B" while moving, so a worker that takes over after a crash finishes the same move before
 * starting another. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_internal.h"
#include <time.h>

uint32_t lp_redis_lead_bucket(const char *id, size_t len, uint32_t buckets) {
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)id[i];
        h *= 16777619u;
    }
    return buckets > 1 ? h % buckets : 0;
}

static int32_t *layout_slot(redis_store_t *rs, int32_t partition) {
    if ((size_t)partition >= rs->layout_cap) {
        size_t cap =
            (size_t)partition + 1 > 2 * rs->layout_cap ? (size_t)partition + 1 : 2 * rs->layout_cap;
        int32_t *grown = realloc(rs->layout, cap * sizeof(*grown));

        if (grown == NULL) {
            return NULL;
        }
        for (size_t i = rs->layout_cap; i < cap; i++) {
            grown[i] = -1;
        }
        rs->layout = grown;
        rs->layout_cap = cap;
    }
    return &rs->layout[partition];
}

void lp_redis_layout_forget(redis_store_t *rs, int32_t partition) {
    if (partition >= 0 && (size_t)partition < rs->layout_cap) {
        rs->layout[partition] = -1;
    }
}

/* The bucket key's value: "B" (from = to = B), "A>B" (moving), missing (legacy: 0). */
typedef struct {
    int32_t from, to;
} layout_t;

static int read_layout(redis_store_t *rs, int32_t partition, layout_t *out) {
    const char *argv[2] = {"GET", rs->keys[RK_BUCKETS]};
    size_t argvlen[2] = {3, strlen(rs->keys[RK_BUCKETS])};
    redisReply *reply = lp_redis_command(rs, 2, argv, argvlen, RC_RETRY);
    int64_t a, b;

    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        out->from = out->to = 0;
        return LP_OK;
    }
    if (reply->type == REDIS_REPLY_STRING) {
        const char *gt = memchr(reply->str, '>', reply->len);
        size_t alen = gt != NULL ? (size_t)(gt - reply->str) : reply->len;

        if (lp_redis_parse_i64(reply->str, alen, &a) == LP_OK && a >= 0 && a <= INT32_MAX) {
            b = a;
            if (gt == NULL || (lp_redis_parse_i64(gt + 1, reply->len - alen - 1, &b) == LP_OK &&
                               b >= 1 && b <= INT32_MAX)) {
                out->from = (int32_t)a;
                out->to = (int32_t)b;
                return LP_OK;
            }
        }
    }
    return lp_store_fail(
        &rs->base, "store redis: partition %d: %s holds %s, not a lead bucket count",
        (int)partition, rs->keys[RK_BUCKETS],
        reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                              : "another type");
}

int lp_redis_layout(redis_store_t *rs, int32_t partition, int32_t *buckets) {
    int32_t *slot = layout_slot(rs, partition);
    layout_t l;

    if (slot == NULL) {
        return lp_store_fail(&rs->base, "store redis: out of memory");
    }
    if (*slot >= 0) {
        *buckets = *slot;
        return LP_OK;
    }
    lp_redis_set_keys(rs, partition);
    if (read_layout(rs, partition, &l) != LP_OK) {
        return LP_ERR;
    }
    if (l.from != l.to) {
        return lp_store_fail(&rs->base,
                             "store redis: partition %d is being moved from %d to %d lead "
                             "buckets; the worker that takes the partition next finishes it",
                             (int)partition, (int)l.from, (int)l.to);
    }
    *slot = l.from;
    *buckets = l.from;
    return LP_OK;
}

/* The outcome of a rebucket script call. */
static int script_outcome(redis_store_t *rs, int32_t partition, const redisReply *reply,
                          int64_t *moved) {
    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "FENCED", 6) == 0) {
        lp_store_fail(&rs->base, "store redis: partition %d: re-bucketing fenced: %s",
                      (int)partition, reply->str);
        return LP_STORE_FENCED;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        return lp_redis_bad_reply(rs, "re-bucketing", partition, reply);
    }
    if (moved != NULL) {
        *moved += reply->integer;
    }
    return LP_OK;
}

static int set_layout(redis_store_t *rs, int32_t partition, int64_t epoch, const char *value,
                      int legacy_marker) {
    char ep[24];
    const char *argv[10] = {
        NULL, NULL,  "3",   rs->keys[RK_LEADS],       rs->keys[RK_EPOCH], rs->keys[RK_BUCKETS],
        ep,   "set", value, legacy_marker ? "1" : "0"};
    size_t argvlen[10];

    snprintf(ep, sizeof(ep), "%" PRId64, epoch);
    for (int i = 2; i < 10; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    return script_outcome(
        rs, partition,
        lp_redis_evalsha(rs, lp_store_rebucket_lua, rs->rebucket_sha, 10, argv, argvlen, RC_RETRY),
        NULL);
}

/* Moves every lead of one source (bucket src of from buckets; src < 0: the legacy hash) to its
 * bucket among to. HSCAN returns every element present for the whole scan at least once, and a
 * lead stays in the source until it is moved: one pass moves them all. */
static int move_source(redis_store_t *rs, int32_t partition, int64_t epoch, int32_t src, int32_t to,
                       int64_t *moved) {
    char key[LP_REDIS_KEY_MAX + 16], cur[24], ep[24], srcs[16];
    uint64_t cursor = 0;

    if (src < 0) {
        snprintf(key, sizeof(key), "%s", rs->keys[RK_LEADS]);
        srcs[0] = '\0';
    } else {
        snprintf(key, sizeof(key), "%s:%d", rs->keys[RK_LEADS], (int)src);
        snprintf(srcs, sizeof(srcs), "%d", (int)src);
    }
    snprintf(ep, sizeof(ep), "%" PRId64, epoch);
    do {
        const char *sargv[5] = {"HSCAN", key, cur, "COUNT", "500"};
        size_t sargvlen[5];

        snprintf(cur, sizeof(cur), "%" PRIu64, cursor);
        for (int i = 0; i < 5; i++) {
            sargvlen[i] = strlen(sargv[i]);
        }
        redisReply *reply = lp_redis_command(rs, 5, sargv, sargvlen, RC_RETRY);
        if (reply == NULL) {
            return LP_ERR;
        }
        if (!lp_redis_hscan_page(reply)) {
            return lp_redis_bad_reply(rs, "re-bucketing (HSCAN)", partition, reply);
        }
        /* Detach the reply: the script call below frees the kept one. */
        redisReply *page = reply;
        rs->reply = NULL;
        cursor = strtoull(page->element[0]->str, NULL, 10);
        redisReply *items = page->element[1];
        size_t n = items->elements / 2;
        size_t argc = 0, nnum = 0;
        int rc = LP_OK;

        if (lp_redis_reserve_argv(rs, 9 + 2 * n) != LP_OK) {
            freeReplyObject(page);
            return lp_store_fail(&rs->base, "store redis: out of memory");
        }
        argc = 2;
        lp_redis_push(rs, &argc, "3", 1);
        lp_redis_push(rs, &argc, rs->keys[RK_LEADS], strlen(rs->keys[RK_LEADS]));
        lp_redis_push(rs, &argc, rs->keys[RK_EPOCH], strlen(rs->keys[RK_EPOCH]));
        lp_redis_push(rs, &argc, rs->keys[RK_BUCKETS], strlen(rs->keys[RK_BUCKETS]));
        lp_redis_push(rs, &argc, ep, strlen(ep));
        lp_redis_push(rs, &argc, "move", 4);
        lp_redis_push(rs, &argc, srcs, strlen(srcs));
        size_t first = argc;
        for (size_t i = 0; i < n; i++) {
            const redisReply *id = items->element[2 * i];
            uint32_t b;

            if (id->type != REDIS_REPLY_STRING) {
                continue;
            }
            b = lp_redis_lead_bucket(id->str, id->len, (uint32_t)to);
            if (src >= 0 && (int32_t)b == src) {
                continue; /* already where it belongs */
            }
            lp_redis_push(rs, &argc, id->str, id->len);
            lp_redis_push_num(rs, &argc, &nnum, b);
        }
        if (argc > first) {
            rc = script_outcome(rs, partition,
                                lp_redis_evalsha(rs, lp_store_rebucket_lua, rs->rebucket_sha,
                                                 (int)argc, rs->argv, rs->argvlen, RC_RETRY),
                                moved);
        }
        freeReplyObject(page);
        if (rc != LP_OK) {
            return rc;
        }
    } while (cursor != 0);
    return LP_OK;
}

static int move_all(redis_store_t *rs, int32_t partition, int64_t epoch, int32_t from, int32_t to) {
    char value[48];
    int64_t moved = 0;
    struct timespec t0, t1;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(value, sizeof(value), "%d>%d", (int)from, (int)to);
    rc = set_layout(rs, partition, epoch, value, 0);
    for (int32_t src = from == 0 ? -1 : 0; rc == LP_OK && src < (from == 0 ? 0 : from); src++) {
        rc = move_source(rs, partition, epoch, src, to, &moved);
    }
    if (rc != LP_OK) {
        return rc;
    }
    snprintf(value, sizeof(value), "%d", (int)to);
    rc = set_layout(rs, partition, epoch, value, from == 0);
    if (rc == LP_OK && moved > 0) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        LP_LOG(LP_LOG_INFO, "store",
               "redis: partition %d: %" PRId64
               " leads moved from %d%s to %d lead buckets in %ld ms",
               (int)partition, moved, (int)from,
               from == 0 ? " buckets (the single hash of older versions)" : "", (int)to,
               (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
    }
    return rc;
}

int lp_redis_rebucket(redis_store_t *rs, int32_t partition, int64_t epoch) {
    int32_t *slot = layout_slot(rs, partition);
    layout_t l;
    int rc;

    if (slot == NULL) {
        return lp_store_fail(&rs->base, "store redis: out of memory");
    }
    *slot = -1;
    lp_redis_set_keys(rs, partition);
    if (read_layout(rs, partition, &l) != LP_OK) {
        return LP_ERR;
    }
    if (l.from != l.to) { /* interrupted: finish that move first */
        rc = move_all(rs, partition, epoch, l.from, l.to);
        if (rc != LP_OK) {
            return rc;
        }
    }
    if (l.to != rs->lead_buckets) {
        rc = move_all(rs, partition, epoch, l.to, rs->lead_buckets);
        if (rc != LP_OK) {
            return rc;
        }
    }
    *slot = rs->lead_buckets;
    return LP_OK;
}

static int by_key(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

int lp_redis_order_reserve(redis_store_t *rs, size_t n) {
    if (n > rs->order_cap) {
        uint64_t *order = realloc(rs->order, n * sizeof(*order));

        if (order == NULL) {
            return LP_ERR;
        }
        rs->order = order;
        uint32_t *bucket_of = realloc(rs->bucket_of, n * sizeof(*bucket_of));
        if (bucket_of == NULL) {
            return LP_ERR;
        }
        rs->bucket_of = bucket_of;
        rs->order_cap = n;
    }
    return LP_OK;
}

void lp_redis_order_sort(redis_store_t *rs, size_t n) {
    /* (bucket, index) in one integer: sorted by bucket, batch order within one. */
    for (size_t i = 0; i < n; i++) {
        rs->order[i] = (uint64_t)rs->bucket_of[i] << 32 | (uint32_t)i;
    }
    if (n > 1) {
        qsort(rs->order, n, sizeof(*rs->order), by_key);
    }
}

size_t lp_redis_push_runs(redis_store_t *rs, size_t *argc, size_t *nnum, size_t n,
                          const char *const *ids, const lp_store_lead_t *leads) {
    size_t runs = 0, i = 0;

    while (i < n) {
        uint32_t b = (uint32_t)(rs->order[i] >> 32);
        size_t len = 0;

        lp_redis_push_num(rs, argc, nnum, b);
        size_t count_at = *argc;
        lp_redis_push(rs, argc, "", 0); /* the run's length, filled below */
        while (i < n && (uint32_t)(rs->order[i] >> 32) == b && len < LP_REDIS_RUN_MAX) {
            uint32_t k = (uint32_t)rs->order[i];

            if (leads != NULL) {
                lp_redis_push(rs, argc, leads[k].lead_id, strlen(leads[k].lead_id));
                lp_redis_push(rs, argc, leads[k].data, leads[k].len);
            } else {
                lp_redis_push(rs, argc, ids[k], strlen(ids[k]));
            }
            len++;
            i++;
        }
        int w = snprintf(rs->nums[*nnum], sizeof(rs->nums[0]), "%zu", len);
        rs->argv[count_at] = rs->nums[*nnum];
        rs->argvlen[count_at] = (size_t)w;
        (*nnum)++;
        runs++;
    }
    return runs;
}

/* CONFIG GET name on the current node: its integer value, or -1 (refused, renamed, absent). */
static long long config_get(redis_store_t *rs, const char *name) {
    const char *argv[3] = {"CONFIG", "GET", name};
    size_t argvlen[3] = {6, 3, strlen(name)};
    redisReply *reply = lp_redis_command(rs, 3, argv, argvlen, RC_RETRY);
    int64_t v;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[1]->type != REDIS_REPLY_STRING ||
        lp_redis_parse_i64(reply->element[1]->str, reply->element[1]->len, &v) != LP_OK) {
        return -1;
    }
    return (long long)v;
}

int lp_store_redis_listpack_check(lp_store_t *store, int32_t partition, char *msg,
                                  size_t msg_size) {
    redis_store_t *rs = (redis_store_t *)store;
    long long entries, value;

    msg[0] = '\0';
    if (store == NULL || strcmp(store->ops->name, "redis") != 0) {
        return 1;
    }
    lp_redis_set_keys(rs, partition);
    /* The ziplist names are aliases of the listpack ones in Redis 7 and the only names in 6. */
    entries = config_get(rs, "hash-max-ziplist-entries");
    value = config_get(rs, "hash-max-ziplist-value");
    if (entries < 0 || value < 0) {
        snprintf(msg, msg_size,
                 "cannot read hash-max-listpack-entries/-value (CONFIG GET refused: %s); lead "
                 "buckets stay compact only if they are at least %d and %d",
                 rs->base.errstr[0] != '\0' ? rs->base.errstr : "no CONFIG command",
                 LP_STORE_REDIS_LISTPACK_ENTRIES, LP_STORE_REDIS_LISTPACK_VALUE);
        rs->base.errstr[0] = '\0';
        return -1;
    }
    if (entries < LP_STORE_REDIS_LISTPACK_ENTRIES || value < LP_STORE_REDIS_LISTPACK_VALUE) {
        snprintf(msg, msg_size,
                 "Redis has hash-max-listpack-entries %lld and hash-max-listpack-value %lld: "
                 "lead buckets with more leads or larger leads than that take about 40%% more "
                 "memory; set them to at least %d and %d (docs/redis-layout.md, Lead buckets)",
                 entries, value, LP_STORE_REDIS_LISTPACK_ENTRIES, LP_STORE_REDIS_LISTPACK_VALUE);
        return 0;
    }
    return 1;
}
