/* leadpulse Redis store: the outbox (read, fenced delete). Keys and scripts:
 * docs/redis-layout.md. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_internal.h"

/* Fills e from one XRANGE entry: [id, [field, value, ...]]. LP_OK or LP_ERR. */
static int entry_from_reply(const redisReply *r, lp_store_outbox_t *e) {
    const redisReply *fields;
    int have = 0;
    size_t i;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(e->id) ||
        r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2 != 0) {
        return LP_ERR;
    }
    memset(e, 0, sizeof(*e));
    memcpy(e->id, r->element[0]->str, r->element[0]->len);
    fields = r->element[1];
    for (i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        const redisReply *v = fields->element[i + 1];
        int64_t kind;

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            return LP_ERR;
        }
        if (strcmp(f->str, "kind") == 0) {
            if (lp_redis_parse_i64(v->str, v->len, &kind) != LP_OK || kind < INT32_MIN ||
                kind > INT32_MAX) {
                return LP_ERR;
            }
            e->kind = (int)kind;
            have |= 1;
        } else if (strcmp(f->str, "key") == 0) {
            e->key = v->str;
            e->key_len = v->len;
            have |= 2;
        } else if (strcmp(f->str, "value") == 0) {
            e->value = (const uint8_t *)v->str;
            e->value_len = v->len;
            have |= 4;
        } else if (strcmp(f->str, "event_id") == 0) {
            e->event_id = v->str;
            have |= 8;
        } else if (strcmp(f->str, "meta") == 0) {
            e->meta = v->str;
            e->meta_len = v->len;
            have |= 16;
        }
    }
    return have == 31 ? LP_OK : LP_ERR;
}

int lp_redis_outbox_read(lp_store_t *store, int32_t partition, size_t max,
                         lp_store_outbox_list_t *out) {
    redis_store_t *rs = (redis_store_t *)store;
    char count[24];
    const char *argv[6];
    size_t argvlen[6];
    redisReply *reply;
    size_t i;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    out->n = 0;
    out->entries = rs->read;
    if (max == 0) {
        return LP_OK;
    }
    lp_redis_set_keys(rs, partition);
    snprintf(count, sizeof(count), "%zu", max > INT64_MAX ? (size_t)INT64_MAX : max);
    argv[0] = "XRANGE";
    argv[1] = rs->keys[RK_OUTBOX];
    argv[2] = "-";
    argv[3] = "+";
    argv[4] = "COUNT";
    argv[5] = count;
    for (i = 0; i < 6; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    reply = lp_redis_command(rs, 6, argv, argvlen, RC_RETRY);
    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        return lp_redis_bad_reply(rs, "outbox_read (XRANGE outbox)", partition, reply);
    }
    if (reply->elements > rs->read_cap) {
        lp_store_outbox_t *read = realloc(rs->read, reply->elements * sizeof(*read));

        if (read == NULL) {
            return lp_store_fail(store, "store redis: partition %d: outbox_read: out of memory",
                                 (int)partition);
        }
        rs->read = read;
        rs->read_cap = reply->elements;
    }
    for (i = 0; i < reply->elements; i++) {
        if (entry_from_reply(reply->element[i], &rs->read[i]) != LP_OK) {
            /* Refuse rather than produce a record we cannot read back faithfully. */
            return lp_store_fail(store,
                                 "store redis: partition %d: outbox entry %zu of %s is not "
                                 "a leadpulse entry (fields kind, key, value, event_id, meta); "
                                 "inspect it with XRANGE and remove it with XDEL",
                                 (int)partition, i, rs->keys[RK_OUTBOX]);
        }
    }
    out->n = reply->elements;
    out->entries = rs->read;
    return LP_OK;
}

/* A stream id: <ms>-<seq>, both decimal. */
static int valid_stream_id(const char *id) {
    const char *p = id;
    const char *dash = strchr(id, '-');

    if (dash == NULL || dash == id || dash[1] == '\0') {
        return 0;
    }
    for (; *p != '\0'; p++) {
        if (p != dash && (*p < '0' || *p > '9')) {
            return 0;
        }
    }
    return p - id < 48;
}

int lp_redis_outbox_ack(lp_store_t *store, int32_t partition, int64_t epoch, size_t n,
                        const char *const *ids) {
    redis_store_t *rs = (redis_store_t *)store;
    size_t argc = 2;
    size_t nnum = 0;
    redisReply *reply;
    size_t i;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    if (n == 0) {
        return LP_OK;
    }
    for (i = 0; i < n; i++) {
        if (!valid_stream_id(ids[i])) {
            return lp_store_fail(store,
                                 "store redis: partition %d: outbox ack: bad entry id "
                                 "'%.48s'",
                                 (int)partition, ids[i]);
        }
    }
    if (lp_redis_reserve_argv(rs, n + 6) != LP_OK) {
        return lp_store_fail(store, "store redis: partition %d: outbox ack: out of memory",
                             (int)partition);
    }
    lp_redis_set_keys(rs, partition);
    lp_redis_push_num(rs, &argc, &nnum, 2);
    lp_redis_push(rs, &argc, rs->keys[RK_EPOCH], strlen(rs->keys[RK_EPOCH]));
    lp_redis_push(rs, &argc, rs->keys[RK_OUTBOX], strlen(rs->keys[RK_OUTBOX]));
    lp_redis_push_num(rs, &argc, &nnum, epoch);
    for (i = 0; i < n; i++) {
        lp_redis_push(rs, &argc, ids[i], strlen(ids[i]));
    }
    /* XDEL is idempotent, so a resend after a lost reply is harmless. */
    reply = lp_redis_evalsha(rs, lp_store_ack_lua, rs->ack_sha, (int)argc, rs->argv, rs->argvlen,
                             RC_RETRY);
    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "FENCED", 6) == 0) {
        lp_store_fail(store, "store redis: partition %d: outbox ack fenced: %s", (int)partition,
                      reply->str);
        return LP_STORE_FENCED;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        return lp_redis_bad_reply(rs, "outbox_ack", partition, reply);
    }
    return LP_OK;
}
