/* leadpulse Redis store: the pure parts of Redis Cluster routing (no I/O), unit-tested on their
 * own: key slots (CRC16 with hash tags), MOVED/ASK redirections, and CLUSTER SLOTS replies.
 * Routing itself (the slot map, one connection per node) is in redis_conn.c; the protocol is
 * Redis's cluster specification (https://redis.io/docs/reference/cluster-spec/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_internal.h"

/* CRC16-CCITT (XModem): polynomial 0x1021, initial value 0, no reflection. */
uint16_t lp_redis_crc16(const void *buf, size_t len) {
    const unsigned char *p = buf;
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

int lp_redis_key_slot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);

    if (open != NULL) {
        size_t start = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - start);

        /* "{}" is no tag: the whole key is hashed. */
        if (close != NULL && close > open + 1) {
            return lp_redis_crc16(open + 1, (size_t)(close - open - 1)) & (LP_REDIS_SLOTS - 1);
        }
    }
    return lp_redis_crc16(key, len) & (LP_REDIS_SLOTS - 1);
}

int lp_redis_partition_slot(int32_t partition) {
    char tag[16];
    int n = lp_store_partition_tag(partition, tag, sizeof(tag));

    return lp_redis_crc16(tag, (size_t)n) & (LP_REDIS_SLOTS - 1);
}

/* "host:port" where host may hold colons (IPv6): the last colon separates the port. */
static int parse_endpoint(const char *s, size_t len, char *host, size_t host_size, int *port) {
    const char *colon = NULL;
    long v = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == ':') {
            colon = s + i;
        }
    }
    if (colon == NULL || colon == s || (size_t)(colon - s) >= host_size) {
        return LP_ERR;
    }
    const char *d = colon + 1, *end = s + len;
    if (d == end || end - d > 5) {
        return LP_ERR;
    }
    for (; d < end; d++) {
        if (*d < '0' || *d > '9') {
            return LP_ERR;
        }
        v = v * 10 + (*d - '0');
    }
    if (v < 1 || v > 65535) {
        return LP_ERR;
    }
    /* "[::1]:7000" as some proxies write it: keep the address without brackets. */
    if (s[0] == '[' && colon[-1] == ']') {
        s++;
        len = (size_t)(colon - s) - 1;
    } else {
        len = (size_t)(colon - s);
    }
    if (len == 0) {
        return LP_ERR;
    }
    memcpy(host, s, len);
    host[len] = '\0';
    *port = (int)v;
    return LP_OK;
}

int lp_redis_parse_redirect(const char *str, size_t len, lp_redis_redirect_t *out) {
    size_t skip;
    long slot = 0;
    size_t i;

    if (len > 6 && memcmp(str, "MOVED ", 6) == 0) {
        out->ask = 0;
        skip = 6;
    } else if (len > 4 && memcmp(str, "ASK ", 4) == 0) {
        out->ask = 1;
        skip = 4;
    } else {
        return 0;
    }
    for (i = skip; i < len && str[i] >= '0' && str[i] <= '9' && i - skip < 5; i++) {
        slot = slot * 10 + (str[i] - '0');
    }
    if (i == skip || i >= len || str[i] != ' ' || slot >= LP_REDIS_SLOTS) {
        return 0;
    }
    out->slot = (int)slot;
    i++;
    /* The endpoint runs to the end of the message (or a space, should Redis ever add one). */
    size_t end = i;
    while (end < len && str[end] != ' ') {
        end++;
    }
    if (parse_endpoint(str + i, end - i, out->host, sizeof(out->host), &out->port) != LP_OK) {
        return 0;
    }
    return 1;
}

static int integer_of(const redisReply *r, long long lo, long long hi, long long *v) {
    if (r->type != REDIS_REPLY_INTEGER || r->integer < lo || r->integer > hi) {
        return LP_ERR;
    }
    *v = r->integer;
    return LP_OK;
}

int lp_redis_parse_slots(const redisReply *reply, const char *asked_host, lp_redis_slot_range_fn fn,
                         void *arg, char *errstr, size_t errstr_size) {
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "CLUSTER SLOTS refused: %s%s", reply->str,
                 strstr(reply->str, "cluster support disabled") != NULL
                     ? " (this Redis is not a cluster node: use redis.mode: standalone)"
                     : "");
        return LP_ERR;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errstr_size, "CLUSTER SLOTS: unexpected reply type %d", reply->type);
        return LP_ERR;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *range = reply->element[i];
        long long start, end, port;
        char host[LP_REDIS_HOST_MAX];

        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
            integer_of(range->element[0], 0, LP_REDIS_SLOTS - 1, &start) != LP_OK ||
            integer_of(range->element[1], start, LP_REDIS_SLOTS - 1, &end) != LP_OK) {
            snprintf(errstr, errstr_size, "CLUSTER SLOTS: malformed slot range %zu", i);
            return LP_ERR;
        }
        const redisReply *master = range->element[2];
        if (master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
            (master->element[0]->type != REDIS_REPLY_STRING &&
             master->element[0]->type != REDIS_REPLY_NIL) ||
            integer_of(master->element[1], 1, 65535, &port) != LP_OK) {
            snprintf(errstr, errstr_size, "CLUSTER SLOTS: malformed master of slots %lld-%lld",
                     start, end);
            return LP_ERR;
        }
        /* An empty or NULL host (or "?") means "the node you asked" (Redis 7's
         * cluster-preferred-endpoint-type unknown-endpoint). */
        const redisReply *h = master->element[0];
        const char *name = h->type == REDIS_REPLY_STRING && h->len > 0 && strcmp(h->str, "?") != 0
                               ? h->str
                               : asked_host;
        if (strlen(name) >= sizeof(host)) {
            snprintf(errstr, errstr_size, "CLUSTER SLOTS: host name of slots %lld-%lld too long",
                     start, end);
            return LP_ERR;
        }
        snprintf(host, sizeof(host), "%s", name);
        if (fn(arg, (int)start, (int)end, host, (int)port) != LP_OK) {
            snprintf(errstr, errstr_size, "CLUSTER SLOTS: too many nodes");
            return LP_ERR;
        }
    }
    return LP_OK;
}
