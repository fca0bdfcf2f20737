/* leadpulse Redis store: reading leads from their buckets (docs/redis-layout.md, "Lead
 * buckets"): load (the load script, one HMGET per bucket run) and scan (HSCAN over every bucket
 * in turn). Writing them is the commit script's (redis_store.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_internal.h"

int lp_redis_hscan_page(const redisReply *reply) {
    return reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
           reply->element[0]->type == REDIS_REPLY_STRING &&
           reply->element[1]->type == REDIS_REPLY_ARRAY && reply->element[1]->elements % 2 == 0;
}

int lp_redis_load(lp_store_t *store, int32_t partition, size_t n, const char *const *lead_ids,
                  lp_store_loaded_t *out) {
    redis_store_t *rs = (redis_store_t *)store;
    redisReply *reply;
    int32_t buckets;
    size_t i, argc = 2, nnum = 0;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    out->n = 0;
    out->data = rs->loaded_data;
    out->len = rs->loaded_len;
    if (n == 0) {
        return LP_OK;
    }
    if (n > rs->loaded_cap) {
        const uint8_t **data = realloc(rs->loaded_data, n * sizeof(*data));

        if (data == NULL) {
            goto oom;
        }
        rs->loaded_data = data;
        size_t *len = realloc(rs->loaded_len, n * sizeof(*len));
        if (len == NULL) {
            goto oom;
        }
        rs->loaded_len = len;
        rs->loaded_cap = n;
    }
    if (lp_redis_layout(rs, partition, &buckets) != LP_OK) {
        return LP_ERR;
    }
    if (lp_redis_reserve_argv(rs, 6 + 4 * n) != LP_OK || lp_redis_order_reserve(rs, n) != LP_OK) {
        goto oom;
    }
    lp_redis_set_keys(rs, partition);
    for (i = 0; i < n; i++) {
        rs->bucket_of[i] =
            lp_redis_lead_bucket(lead_ids[i], strlen(lead_ids[i]), (uint32_t)buckets);
    }
    lp_redis_order_sort(rs, n);
    lp_redis_push(rs, &argc, "2", 1);
    lp_redis_push(rs, &argc, rs->keys[RK_LEADS], strlen(rs->keys[RK_LEADS]));
    lp_redis_push(rs, &argc, rs->keys[RK_BUCKETS], strlen(rs->keys[RK_BUCKETS]));
    lp_redis_push_num(rs, &argc, &nnum, buckets);
    lp_redis_push_runs(rs, &argc, &nnum, n, lead_ids, NULL);
    /* One script for the whole batch (an HMGET per bucket): one round trip however many
     * leads. */
    reply = lp_redis_evalsha(rs, lp_store_load_lua, rs->load_sha, (int)argc, rs->argv, rs->argvlen,
                             RC_RETRY);
    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "LAYOUT", 6) == 0) {
        lp_redis_layout_forget(rs, partition);
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        return lp_redis_bad_reply(rs, "load (lead buckets)", partition, reply);
    }
    for (i = 0; i < n; i++) {
        const redisReply *el = reply->element[i];
        uint32_t k = (uint32_t)rs->order[i];

        if (el->type == REDIS_REPLY_STRING && el->len > 0) {
            rs->loaded_data[k] = (const uint8_t *)el->str;
            rs->loaded_len[k] = el->len;
        } else {
            rs->loaded_data[k] = NULL;
            rs->loaded_len[k] = 0;
        }
    }
    out->n = n;
    out->data = rs->loaded_data;
    out->len = rs->loaded_len;
    return LP_OK;
oom:
    return lp_store_fail(store, "store redis: partition %d: load of %zu leads: out of memory",
                         (int)partition, n);
}

/* HSCAN over the partition's lead buckets one after the other: the cursor is the bucket index
 * << 40 | HSCAN's cursor in that bucket (the legacy single hash is bucket 0 of 1). The ids and
 * bytes point into the kept reply; the id and data arrays reuse the due and load scratch (all
 * valid until the next call). A page may be empty while the cursor is not 0. */
int lp_redis_scan(lp_store_t *store, int32_t partition, uint64_t *cursor, size_t count,
                  lp_store_scan_t *out) {
    redis_store_t *rs = (redis_store_t *)store;
    char cur[24], cnt[24], key[LP_REDIS_KEY_MAX + 16];
    const char *argv[5];
    size_t argvlen[5];
    redisReply *reply;
    int32_t buckets;
    const uint64_t in_bucket = ((uint64_t)1 << 40) - 1;
    uint64_t bucket = *cursor >> 40;

    out->n = 0;
    if (lp_redis_layout(rs, partition, &buckets) != LP_OK) {
        return LP_ERR;
    }
    lp_redis_set_keys(rs, partition);
    if (bucket >= (uint64_t)(buckets > 0 ? buckets : 1)) {
        return lp_store_fail(store, "store redis: partition %d: scan cursor out of range",
                             (int)partition);
    }
    if (buckets == 0) {
        snprintf(key, sizeof(key), "%s", rs->keys[RK_LEADS]);
    } else {
        snprintf(key, sizeof(key), "%s:%" PRIu64, rs->keys[RK_LEADS], bucket);
    }
    snprintf(cur, sizeof(cur), "%" PRIu64, *cursor & in_bucket);
    snprintf(cnt, sizeof(cnt), "%zu", count > 0 ? count : 100);
    argv[0] = "HSCAN";
    argv[1] = key;
    argv[2] = cur;
    argv[3] = "COUNT";
    argv[4] = cnt;
    for (int i = 0; i < 5; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    reply = lp_redis_command(rs, 5, argv, argvlen, RC_RETRY);
    if (reply == NULL) {
        return LP_ERR;
    }
    if (!lp_redis_hscan_page(reply)) {
        return lp_redis_bad_reply(rs, "scan (HSCAN leads)", partition, reply);
    }
    redisReply *items = reply->element[1];
    size_t n = items->elements / 2;
    if (n > rs->due_cap) {
        const char **ids = realloc(rs->due_ids, n * sizeof(*ids));
        if (ids == NULL) {
            return lp_store_fail(store, "store redis: partition %d: scan: out of memory",
                                 (int)partition);
        }
        rs->due_ids = ids;
        rs->due_cap = n;
    }
    if (n > rs->loaded_cap) {
        const uint8_t **data = realloc(rs->loaded_data, n * sizeof(*data));
        if (data != NULL) {
            rs->loaded_data = data;
        }
        size_t *len = data != NULL ? realloc(rs->loaded_len, n * sizeof(*len)) : NULL;
        if (len == NULL) {
            return lp_store_fail(store, "store redis: partition %d: scan: out of memory",
                                 (int)partition);
        }
        rs->loaded_len = len;
        rs->loaded_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *id = items->element[2 * i], *data = items->element[2 * i + 1];
        if (id->type != REDIS_REPLY_STRING || data->type != REDIS_REPLY_STRING) {
            return lp_redis_bad_reply(rs, "scan (HSCAN leads)", partition, reply);
        }
        rs->due_ids[i] = id->str;
        rs->loaded_data[i] = (const uint8_t *)data->str;
        rs->loaded_len[i] = data->len;
    }
    uint64_t next = strtoull(reply->element[0]->str, NULL, 10);
    if (next > in_bucket) {
        return lp_store_fail(store, "store redis: partition %d: HSCAN cursor of %s too large",
                             (int)partition, key);
    }
    if (next == 0) { /* this bucket is done: the next one, or the end */
        next = bucket + 1 < (uint64_t)buckets ? (bucket + 1) << 40 : 0;
    } else {
        next |= bucket << 40;
    }
    *cursor = next;
    out->n = n;
    out->ids = rs->due_ids;
    out->data = rs->loaded_data;
    out->len = rs->loaded_len;
    return LP_OK;
}
