/* leadpulse Redis store: the operations. Keys, the scripts and the fencing argument are in
 * docs/redis-layout.md. Every command goes through argv arrays with lengths (binary-safe). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_internal.h"

void lp_redis_set_keys(redis_store_t *rs, int32_t partition) {
    static const char *const names[RK_COUNT] = {"leads", "timers",     "offsets", "outbox",
                                                "epoch", "suppressed", "buckets"};
    char tag[16];
    int k;

    lp_store_partition_tag(partition, tag, sizeof(tag));
    for (k = 0; k < RK_COUNT; k++) {
        snprintf(rs->keys[k], sizeof(rs->keys[k]), "%s:{%s}:%s", rs->prefix, tag, names[k]);
    }
    rs->slot = lp_redis_partition_slot(partition);
}

int lp_redis_parse_i64(const char *s, size_t len, int64_t *out) {
    char buf[24];
    char *end;

    if (len == 0 || len >= sizeof(buf)) {
        return LP_ERR;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    *out = strtoll(buf, &end, 10);
    return *end == '\0' && (buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')) ? LP_OK : LP_ERR;
}

int lp_redis_bad_reply(redis_store_t *rs, const char *what, int32_t partition,
                       const redisReply *reply) {
    return lp_store_fail(&rs->base, "store redis: partition %d: %s: %s", (int)partition, what,
                         reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply type");
}

static int redis_fence(lp_store_t *store, int32_t partition, int64_t *epoch) {
    redis_store_t *rs = (redis_store_t *)store;
    const char *argv[2];
    size_t argvlen[2];
    redisReply *reply;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    lp_redis_set_keys(rs, partition);
    argv[0] = "INCR";
    argvlen[0] = 4;
    argv[1] = rs->keys[RK_EPOCH];
    argvlen[1] = strlen(argv[1]);
    /* Resending INCR after a lost reply only bumps the epoch once more: the value returned is
     * still the current one, which is all fencing needs. */
    reply = lp_redis_command(rs, 2, argv, argvlen, RC_RETRY);
    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        return lp_redis_bad_reply(rs, "fence (INCR epoch)", partition, reply);
    }
    *epoch = reply->integer;
    /* The partition is ours from here: bring its leads to the configured bucket count. */
    int rc = lp_redis_rebucket(rs, partition, *epoch);
    return rc == LP_STORE_FENCED ? LP_ERR : rc;
}

static int redis_get_offset(lp_store_t *store, int32_t partition, const char *topic,
                            int64_t *offset) {
    redis_store_t *rs = (redis_store_t *)store;
    const char *argv[3];
    size_t argvlen[3];
    redisReply *reply;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    lp_redis_set_keys(rs, partition);
    argv[0] = "HGET";
    argv[1] = rs->keys[RK_OFFSETS];
    argv[2] = topic;
    argvlen[0] = 4;
    argvlen[1] = strlen(argv[1]);
    argvlen[2] = strlen(topic);
    reply = lp_redis_command(rs, 3, argv, argvlen, RC_RETRY);
    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        *offset = -1;
        return LP_OK;
    }
    if (reply->type != REDIS_REPLY_STRING ||
        lp_redis_parse_i64(reply->str, reply->len, offset) != LP_OK) {
        return lp_redis_bad_reply(rs, "get_offset (HGET offsets)", partition, reply);
    }
    return LP_OK;
}

/* Fills rs->argv with the commit script's arguments (argv[0..1], EVALSHA and the SHA, are left to
 * the caller). Returns the argument count, or 0 with errstr set. */
static size_t commit_argv(redis_store_t *rs, const lp_store_batch_t *batch) {
    lp_store_t *store = &rs->base;
    size_t argc = 2;
    size_t nnum = 0;
    size_t need;
    size_t i;
    int32_t buckets;

    if (lp_store_batch_check(store, batch) != LP_OK) {
        return 0;
    }
    if (lp_redis_layout(rs, batch->partition, &buckets) != LP_OK) {
        return 0;
    }
    if (buckets == 0) {
        /* No bucket count stored: a partition never written (the script records the count), or
         * one of an older version not fenced yet (the script refuses: LAYOUT). */
        buckets = rs->lead_buckets;
        rs->layout[batch->partition] = buckets; /* forgotten again on a LAYOUT refusal */
    }
    need = 2 + 1 + RK_COUNT + 9 + 4 * batch->nleads + 2 * batch->ntimers + 3 * batch->noffsets +
           5 * batch->noutbox + 2 * batch->nerase + 2 * batch->nsuppress;
    if (lp_redis_reserve_argv(rs, need) != LP_OK ||
        lp_redis_order_reserve(rs, batch->nleads) != LP_OK) {
        lp_store_fail(store, "store redis: partition %d: commit: out of memory",
                      (int)batch->partition);
        return 0;
    }
    lp_redis_set_keys(rs, batch->partition);
    for (i = 0; i < batch->nleads; i++) {
        const char *id = batch->leads[i].lead_id;
        rs->bucket_of[i] = lp_redis_lead_bucket(id, strlen(id), (uint32_t)buckets);
    }
    lp_redis_order_sort(rs, batch->nleads);
    lp_redis_push_num(rs, &argc, &nnum, RK_COUNT);
    for (i = 0; i < RK_COUNT; i++) {
        lp_redis_push(rs, &argc, rs->keys[i], strlen(rs->keys[i]));
    }
    lp_redis_push_num(rs, &argc, &nnum, batch->epoch);
    lp_redis_push_num(rs, &argc, &nnum, buckets);
    size_t runs_at = argc;
    lp_redis_push(rs, &argc, "", 0); /* the number of runs, filled below */
    lp_redis_push_num(rs, &argc, &nnum, (int64_t)batch->nleads);
    lp_redis_push_num(rs, &argc, &nnum, (int64_t)batch->ntimers);
    lp_redis_push_num(rs, &argc, &nnum, (int64_t)batch->noffsets);
    lp_redis_push_num(rs, &argc, &nnum, (int64_t)batch->noutbox);
    lp_redis_push_num(rs, &argc, &nnum, (int64_t)batch->nerase);
    lp_redis_push_num(rs, &argc, &nnum, (int64_t)batch->nsuppress);
    size_t runs = lp_redis_push_runs(rs, &argc, &nnum, batch->nleads, NULL, batch->leads);
    int w = snprintf(rs->nums[nnum], sizeof(rs->nums[0]), "%zu", runs);
    rs->argv[runs_at] = rs->nums[nnum++];
    rs->argvlen[runs_at] = (size_t)w;
    for (i = 0; i < batch->ntimers; i++) {
        lp_redis_push(rs, &argc, batch->timers[i].lead_id, strlen(batch->timers[i].lead_id));
        lp_redis_push_num(rs, &argc, &nnum, batch->timers[i].due_ms);
    }
    for (i = 0; i < batch->noffsets; i++) {
        lp_redis_push(rs, &argc, batch->offsets[i].topic, strlen(batch->offsets[i].topic));
        lp_redis_push_num(rs, &argc, &nnum, batch->offsets[i].expected);
        lp_redis_push_num(rs, &argc, &nnum, batch->offsets[i].next_offset);
    }
    for (i = 0; i < batch->noutbox; i++) {
        const lp_store_outbox_t *e = &batch->outbox[i];

        lp_redis_push_num(rs, &argc, &nnum, e->kind);
        lp_redis_push(rs, &argc, e->key, e->key_len);
        lp_redis_push(rs, &argc, e->value, e->value_len);
        lp_redis_push(rs, &argc, e->event_id, e->event_id == NULL ? 0 : strlen(e->event_id));
        lp_redis_push(rs, &argc, e->meta, e->meta_len);
    }
    for (i = 0; i < batch->nerase; i++) {
        const char *id = batch->erase[i];
        lp_redis_push_num(rs, &argc, &nnum,
                          lp_redis_lead_bucket(id, strlen(id), (uint32_t)buckets));
        lp_redis_push(rs, &argc, id, strlen(id));
    }
    for (i = 0; i < batch->nsuppress; i++) {
        lp_redis_push(rs, &argc, batch->suppress[i].hash, strlen(batch->suppress[i].hash));
        lp_redis_push_num(rs, &argc, &nnum, batch->suppress[i].until_ms);
    }
    return argc;
}

/* What the commit script's reply means. */
static int commit_outcome(redis_store_t *rs, int32_t partition, const redisReply *reply) {
    lp_store_t *store = &rs->base;

    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "FENCED", 6) == 0) {
        lp_store_fail(store,
                      "store redis: partition %d: commit fenced: %s (the partition moved "
                      "to another worker)",
                      (int)partition, reply->str);
        return LP_STORE_FENCED;
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "LAYOUT", 6) == 0) {
        lp_redis_layout_forget(rs, partition);
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "LOSTWRITES", 10) == 0) {
        lp_store_fail(store,
                      "store redis: partition %d: commit refused: %s (Redis lost acknowledged "
                      "writes?)",
                      (int)partition, reply->str);
        return LP_STORE_MOVED;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        return lp_redis_bad_reply(rs, "commit", partition, reply);
    }
    return reply->integer == -1 ? LP_STORE_DUPLICATE : LP_OK;
}

static int redis_commit(lp_store_t *store, const lp_store_batch_t *batch) {
    redis_store_t *rs = (redis_store_t *)store;
    size_t argc = commit_argv(rs, batch);

    if (argc == 0) {
        return LP_ERR;
    }
    return commit_outcome(rs, batch->partition,
                          lp_redis_evalsha(rs, lp_store_commit_lua, rs->commit_sha, (int)argc,
                                           rs->argv, rs->argvlen, RC_ONCE));
}

/* The pipelined commit: the arguments stay in rs->argv (and point into the caller's batch)
 * until commit_recv, which may have to send them again after NOSCRIPT. */
static int redis_commit_send(lp_store_t *store, const lp_store_batch_t *batch) {
    redis_store_t *rs = (redis_store_t *)store;
    size_t argc = commit_argv(rs, batch);

    rs->pipe_argc = 0;
    rs->pipe_partition = batch->partition;
    if (argc == 0) {
        return LP_ERR;
    }
    if (lp_redis_evalsha_argv(rs, lp_store_commit_lua, rs->commit_sha, rs->argv, rs->argvlen) !=
            LP_OK ||
        lp_redis_send(rs, (int)argc, rs->argv, rs->argvlen) != LP_OK) {
        return LP_ERR;
    }
    rs->pipe_argc = argc;
    return LP_OK;
}

static int redis_commit_recv(lp_store_t *store) {
    redis_store_t *rs = (redis_store_t *)store;
    size_t argc = rs->pipe_argc;

    if (argc == 0) {
        return LP_ERR; /* not sent: errstr says why */
    }
    rs->pipe_argc = 0;
    return commit_outcome(rs, rs->pipe_partition,
                          lp_redis_evalsha_noscript(rs, lp_redis_recv(rs, "EVALSHA (commit)"),
                                                    lp_store_commit_lua, rs->commit_sha, (int)argc,
                                                    rs->argv, rs->argvlen, RC_ONCE));
}

static int redis_due(lp_store_t *store, int32_t partition, int64_t now_ms, size_t max, size_t *n,
                     const char ***lead_ids) {
    redis_store_t *rs = (redis_store_t *)store;
    char now[24];
    char count[24];
    const char *argv[7];
    size_t argvlen[7];
    redisReply *reply;
    size_t i;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    *n = 0;
    *lead_ids = rs->due_ids;
    if (max == 0) {
        return LP_OK;
    }
    lp_redis_set_keys(rs, partition);
    snprintf(now, sizeof(now), "%" PRId64, now_ms);
    snprintf(count, sizeof(count), "%zu", max > INT64_MAX ? (size_t)INT64_MAX : max);
    argv[0] = "ZRANGEBYSCORE";
    argv[1] = rs->keys[RK_TIMERS];
    argv[2] = "-inf";
    argv[3] = now;
    argv[4] = "LIMIT";
    argv[5] = "0";
    argv[6] = count;
    for (i = 0; i < 7; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    reply = lp_redis_command(rs, 7, argv, argvlen, RC_RETRY);
    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        return lp_redis_bad_reply(rs, "due (ZRANGEBYSCORE timers)", partition, reply);
    }
    if (reply->elements > rs->due_cap) {
        const char **ids = realloc(rs->due_ids, reply->elements * sizeof(*ids));

        if (ids == NULL) {
            return lp_store_fail(store, "store redis: partition %d: due: out of memory",
                                 (int)partition);
        }
        rs->due_ids = ids;
        rs->due_cap = reply->elements;
    }
    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            return lp_redis_bad_reply(rs, "due (ZRANGEBYSCORE timers)", partition,
                                      reply->element[i]);
        }
        /* hiredis NUL-terminates every string reply. */
        rs->due_ids[i] = reply->element[i]->str;
    }
    *n = reply->elements;
    *lead_ids = rs->due_ids;
    return LP_OK;
}

static void redis_destroy(lp_store_t *store) {
    redis_store_t *rs = (redis_store_t *)store;

    lp_redis_disconnect(rs);
    free(rs->nodes);
    free(rs->slots);
    free(rs->argv);
    free(rs->argvlen);
    free(rs->nums);
    free(rs->loaded_data);
    free(rs->loaded_len);
    free(rs->due_ids);
    free(rs->read);
    free(rs->suppress);
    free(rs->layout);
    free(rs->order);
    free(rs->bucket_of);
    free(rs);
}

/* HGETALL of the partition's suppression hash: field = keyed hash, value = until_ms. */
static int redis_suppressed(lp_store_t *store, int32_t partition, size_t *n,
                            const lp_store_suppress_t **entries) {
    redis_store_t *rs = (redis_store_t *)store;
    const char *argv[2] = {"HGETALL", NULL};
    size_t argvlen[2] = {7, 0};
    redisReply *reply;

    *n = 0;
    *entries = NULL;
    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    lp_redis_set_keys(rs, partition);
    argv[1] = rs->keys[RK_SUPPRESSED];
    argvlen[1] = strlen(argv[1]);
    reply = lp_redis_command(rs, 2, argv, argvlen, RC_RETRY);
    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
        return lp_redis_bad_reply(rs, "HGETALL (suppressed)", partition, reply);
    }
    size_t count = reply->elements / 2;
    if (count > rs->suppress_cap) {
        lp_store_suppress_t *grown = realloc(rs->suppress, count * sizeof(*grown));
        if (grown == NULL) {
            return lp_store_fail(store, "store redis: partition %d: out of memory", (int)partition);
        }
        rs->suppress = grown;
        rs->suppress_cap = count;
    }
    for (size_t i = 0; i < count; i++) {
        const redisReply *f = reply->element[2 * i], *v = reply->element[2 * i + 1];
        int64_t until;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || f->len != 32 ||
            lp_redis_parse_i64(v->str, v->len, &until) != LP_OK) {
            return lp_store_fail(store,
                                 "store redis: partition %d: %s holds an entry that is not a "
                                 "suppression entry (32 hex digits -> ms)",
                                 (int)partition, rs->keys[RK_SUPPRESSED]);
        }
        memcpy(rs->suppress[i].hash, f->str, 32);
        rs->suppress[i].hash[32] = '\0';
        rs->suppress[i].until_ms = until;
    }
    *n = count;
    *entries = rs->suppress;
    return LP_OK;
}

static const lp_store_ops_t redis_ops = {
    .name = "redis",
    .fence = redis_fence,
    .get_offset = redis_get_offset,
    .load = lp_redis_load,
    .commit = redis_commit,
    .commit_send = redis_commit_send,
    .commit_recv = redis_commit_recv,
    .due = redis_due,
    .outbox_read = lp_redis_outbox_read,
    .outbox_ack = lp_redis_outbox_ack,
    .suppressed = redis_suppressed,
    .destroy = redis_destroy,
    .scan = lp_redis_scan,
};

/* What both constructors share: the prefix and timeout checked, the struct allocated. */
static redis_store_t *redis_alloc(const char *prefix, int timeout_ms, char *errstr,
                                  size_t errstr_size) {
    redis_store_t *rs;

    if (prefix == NULL || prefix[0] == '\0' || strlen(prefix) > LP_REDIS_PREFIX_MAX ||
        strpbrk(prefix, "{} \t\r\n") != NULL) {
        /* A brace in the prefix would become the hash tag and put every partition in one slot. */
        snprintf(errstr, errstr_size,
                 "store redis: key prefix must be 1..%d characters without "
                 "braces or spaces",
                 LP_REDIS_PREFIX_MAX);
        return NULL;
    }
    if (timeout_ms <= 0) {
        snprintf(errstr, errstr_size, "store redis: timeout_ms must be positive, got %d",
                 timeout_ms);
        return NULL;
    }
    rs = calloc(1, sizeof(*rs));
    if (rs == NULL) {
        snprintf(errstr, errstr_size, "store redis: out of memory");
        return NULL;
    }
    rs->base.ops = &redis_ops;
    rs->lead_buckets = LP_STORE_REDIS_LEAD_BUCKETS;
    memcpy(rs->prefix, prefix, strlen(prefix) + 1);
    rs->timeout.tv_sec = timeout_ms / 1000;
    rs->timeout.tv_usec = (timeout_ms % 1000) * 1000;
    return rs;
}

lp_store_t *lp_store_redis_new(const char *url, const char *prefix, int timeout_ms, char *errstr,
                               size_t errstr_size) {
    redis_store_t *rs = redis_alloc(prefix, timeout_ms, errstr, errstr_size);

    if (rs == NULL) {
        return NULL;
    }
    if (lp_store_redis_url_parse(url, &rs->url, errstr, errstr_size) != LP_OK) {
        goto err;
    }
    if (lp_redis_add_node(rs, rs->url.host, rs->url.port) != 0) {
        snprintf(errstr, errstr_size, "store redis: out of memory");
        goto err;
    }
    /* Connect (which loads both scripts) now: a wrong url, password or a Redis without Lua
     * shows up at start-up rather than at the first commit. */
    if (lp_redis_connect(rs) != LP_OK) {
        snprintf(errstr, errstr_size, "%s", rs->base.errstr);
        goto err;
    }
    return &rs->base;
err:
    redis_destroy(&rs->base);
    return NULL;
}

lp_store_t *lp_store_redis_cluster_new(const char *urls, const char *prefix, int timeout_ms,
                                       char *errstr, size_t errstr_size) {
    redis_store_t *rs = redis_alloc(prefix, timeout_ms, errstr, errstr_size);

    if (rs == NULL) {
        return NULL;
    }
    rs->cluster = 1;
    rs->slots = malloc(LP_REDIS_SLOTS * sizeof(*rs->slots));
    if (rs->slots == NULL) {
        snprintf(errstr, errstr_size, "store redis: out of memory");
        goto err;
    }
    for (int s = 0; s < LP_REDIS_SLOTS; s++) {
        rs->slots[s] = -1;
    }
    lp_store_redis_url_t seeds[LP_REDIS_SEEDS_MAX];
    int nseeds = lp_store_redis_seeds_parse(urls, seeds, LP_REDIS_SEEDS_MAX, errstr, errstr_size);
    if (nseeds < 0) {
        goto err;
    }
    rs->url = seeds[0]; /* its credentials serve every node */
    for (int i = 0; i < nseeds; i++) {
        if (lp_redis_add_node(rs, seeds[i].host, seeds[i].port) < 0) {
            snprintf(errstr, errstr_size, "store redis cluster: out of memory");
            goto err;
        }
    }
    /* The slot map now: an unreachable cluster, a wrong password or a node that is not in
     * cluster mode shows up at start-up. */
    if (lp_redis_refresh_slots(rs) != LP_OK) {
        snprintf(errstr, errstr_size, "%s", rs->base.errstr);
        goto err;
    }
    return &rs->base;
err:
    redis_destroy(&rs->base);
    return NULL;
}

lp_store_t *lp_store_redis_open(int cluster, const char *url, const char *prefix, int timeout_ms,
                                char *errstr, size_t errstr_size) {
    return cluster ? lp_store_redis_cluster_new(url, prefix, timeout_ms, errstr, errstr_size)
                   : lp_store_redis_new(url, prefix, timeout_ms, errstr, errstr_size);
}

int lp_store_redis_set_lead_buckets(lp_store_t *store, int32_t buckets) {
    if (store == NULL || store->ops != &redis_ops || buckets < 1 ||
        buckets > LP_STORE_REDIS_LEAD_BUCKETS_MAX) {
        return LP_ERR;
    }
    ((redis_store_t *)store)->lead_buckets = buckets;
    return LP_OK;
}
