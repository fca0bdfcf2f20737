/* leadpulse on Redis Cluster: placing the partitions' slots evenly over the masters
 * (`leadpulse cluster-place`, docs/scaling.md). Partition p's keys live in slot CRC16("p"), and
 * the slots of small decimal strings fall unevenly into the equal slot ranges a new cluster
 * gets: this moves the few slots that matter, by Redis's own migration protocol, while the
 * workers run (they follow ASK/MOVED; a partition pauses while its slot moves). The plan is pure
 * and unit-tested; the I/O uses plain hiredis connections to the nodes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_internal.h"

/* ---- the pure parts ---- */

int lp_redis_parse_nodes(char *text, lp_redis_master_t *masters, int max, int16_t *owner,
                         char *errstr, size_t errstr_size) {
    int n = 0;

    for (int s = 0; s < LP_REDIS_SLOTS; s++) {
        owner[s] = -1;
    }
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[16];
        int nf = 0;
        char *tok_save = NULL;

        for (char *t = strtok_r(line, " \r", &tok_save); t != NULL && nf < 16;
             t = strtok_r(NULL, " \r", &tok_save)) {
            f[nf++] = t;
        }
        if (nf < 8) {
            snprintf(errstr, errstr_size, "CLUSTER NODES: malformed line (%d fields)", nf);
            return -1;
        }
        /* id addr flags master ping pong epoch link slot... ; addr = ip:port@cport[,host] */
        if (strstr(f[2], "master") == NULL || strstr(f[2], "fail") != NULL ||
            strstr(f[2], "noaddr") != NULL || strcmp(f[7], "connected") != 0) {
            continue;
        }
        if (n == max) {
            snprintf(errstr, errstr_size, "CLUSTER NODES: more than %d masters", max);
            return -1;
        }
        lp_redis_master_t *m = &masters[n];
        char *at = strchr(f[1], '@');
        if (at != NULL) {
            *at = '\0';
        }
        char *colon = strrchr(f[1], ':');
        if (colon == NULL || strlen(f[0]) >= sizeof(m->id) ||
            (size_t)(colon - f[1]) >= sizeof(m->host)) {
            snprintf(errstr, errstr_size, "CLUSTER NODES: malformed address '%s'", f[1]);
            return -1;
        }
        memcpy(m->host, f[1], (size_t)(colon - f[1]));
        m->host[colon - f[1]] = '\0';
        m->port = atoi(colon + 1);
        snprintf(m->id, sizeof(m->id), "%s", f[0]);
        if (m->port <= 0 || m->port > 65535) {
            snprintf(errstr, errstr_size, "CLUSTER NODES: bad port in '%s'", colon + 1);
            return -1;
        }
        for (int k = 8; k < nf; k++) {
            char *dash;
            long a, b;
            if (f[k][0] == '[') {
                continue; /* a slot being imported or migrated: "[5->-id]" */
            }
            a = strtol(f[k], &dash, 10);
            b = *dash == '-' ? strtol(dash + 1, NULL, 10) : a;
            if (a < 0 || b >= LP_REDIS_SLOTS || a > b) {
                snprintf(errstr, errstr_size, "CLUSTER NODES: bad slot range '%s'", f[k]);
                return -1;
            }
            for (long s = a; s <= b; s++) {
                owner[s] = (int16_t)n;
            }
        }
        n++;
    }
    if (n == 0) {
        snprintf(errstr, errstr_size, "CLUSTER NODES: no connected master");
        return -1;
    }
    return n;
}

int lp_redis_place_plan(const int *cur, int32_t partitions, int nmasters, int *target) {
    int *count = calloc((size_t)nmasters, sizeof(*count));
    int *quota = calloc((size_t)nmasters, sizeof(*quota));
    int *order = calloc((size_t)nmasters, sizeof(*order));
    int moves = 0;

    if (count == NULL || quota == NULL || order == NULL) {
        free(count);
        free(quota);
        free(order);
        return -1;
    }
    for (int32_t p = 0; p < partitions; p++) {
        target[p] = cur[p];
        if (cur[p] >= 0) {
            count[cur[p]]++;
        }
    }
    /* The masters holding the most get the rounded-up quotas: fewest moves. Ties: lower index. */
    for (int i = 0; i < nmasters; i++) {
        order[i] = i;
    }
    for (int i = 1; i < nmasters; i++) {
        for (int j = i; j > 0 && count[order[j]] > count[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    for (int i = 0; i < nmasters; i++) {
        quota[order[i]] = (int)(partitions / nmasters) + (i < (int)(partitions % nmasters));
    }
    /* Partitions of over-full masters (and unowned ones), highest first, go to the master with
     * the most room left (ties: lower index). */
    for (int32_t p = partitions - 1; p >= 0; p--) {
        int m = cur[p];
        if (m >= 0 && count[m] <= quota[m]) {
            continue;
        }
        int best = -1;
        for (int i = 0; i < nmasters; i++) {
            if (count[i] < quota[i] &&
                (best < 0 || quota[i] - count[i] > quota[best] - count[best])) {
                best = i;
            }
        }
        if (best < 0) {
            break;
        }
        if (m >= 0) {
            count[m]--;
        }
        count[best]++;
        target[p] = best;
        moves++;
    }
    free(count);
    free(quota);
    free(order);
    return moves;
}

/* ---- the moves ---- */

typedef struct {
    lp_store_redis_url_t url; /* credentials */
    struct timeval tv;
    int timeout_ms;
    char *errstr;
    size_t errstr_size;
} place_t;

static redisContext *node_open(place_t *pl, const char *host, int port) {
    redisContext *c = redisConnectWithTimeout(host, port, pl->tv);

    if (c == NULL || c->err) {
        snprintf(pl->errstr, pl->errstr_size, "cannot connect to %s:%d: %s", host, port,
                 c != NULL ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, pl->tv);
    if (pl->url.password[0] != '\0') {
        redisReply *r = pl->url.user[0] != '\0'
                            ? redisCommand(c, "AUTH %s %s", pl->url.user, pl->url.password)
                            : redisCommand(c, "AUTH %s", pl->url.password);
        int bad = r == NULL || r->type == REDIS_REPLY_ERROR;
        if (bad) {
            snprintf(pl->errstr, pl->errstr_size, "%s:%d: AUTH refused: %s", host, port,
                     r != NULL ? r->str : c->errstr);
        }
        freeReplyObject(r);
        if (bad) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* One command; LP_OK unless it failed or Redis answered an error (errstr says which). */
static int node_cmd(place_t *pl, redisContext *c, const lp_redis_master_t *m, int argc,
                    const char **argv, const size_t *argvlen, redisReply **keep) {
    redisReply *r = redisCommandArgv(c, argc, argv, argvlen);

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        snprintf(pl->errstr, pl->errstr_size, "%s:%d: %s %s: %s", m->host, m->port, argv[0],
                 argc > 1 ? argv[1] : "", r != NULL ? r->str : c->errstr);
        freeReplyObject(r);
        return LP_ERR;
    }
    if (keep != NULL) {
        *keep = r;
    } else {
        freeReplyObject(r);
    }
    return LP_OK;
}

static int setslot(place_t *pl, redisContext *c, const lp_redis_master_t *m, int slot,
                   const char *how, const char *id) {
    char s[16];
    const char *argv[] = {"CLUSTER", "SETSLOT", s, how, id};
    size_t argvlen[5];

    snprintf(s, sizeof(s), "%d", slot);
    for (int i = 0; i < 5; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    return node_cmd(pl, c, m, 5, argv, argvlen, NULL);
}

/* Redis's slot migration: IMPORTING on dst, MIGRATING on src, MIGRATE the keys in chunks, then
 * NODE on dst, src and every other master. */
static int move_slot(place_t *pl, int slot, const lp_redis_master_t *masters, int nmasters, int src,
                     int dst) {
    redisContext *s = NULL, *d = NULL;
    int rc = LP_ERR;

    if ((d = node_open(pl, masters[dst].host, masters[dst].port)) == NULL ||
        (s = node_open(pl, masters[src].host, masters[src].port)) == NULL ||
        setslot(pl, d, &masters[dst], slot, "IMPORTING", masters[src].id) != LP_OK ||
        setslot(pl, s, &masters[src], slot, "MIGRATING", masters[dst].id) != LP_OK) {
        goto done;
    }
    for (;;) {
        char sl[16], port[16], tmo[16];
        const char *q[] = {"CLUSTER", "GETKEYSINSLOT", sl, "100"};
        size_t ql[] = {7, 13, 0, 3};
        redisReply *keys = NULL;

        snprintf(sl, sizeof(sl), "%d", slot);
        ql[2] = strlen(sl);
        if (node_cmd(pl, s, &masters[src], 4, q, ql, &keys) != LP_OK) {
            goto done;
        }
        if (keys->type != REDIS_REPLY_ARRAY || keys->elements == 0) {
            freeReplyObject(keys);
            break;
        }
        size_t n = keys->elements, argc = 0;
        const char **argv = calloc(n + 12, sizeof(*argv));
        size_t *argvlen = calloc(n + 12, sizeof(*argvlen));
        if (argv == NULL || argvlen == NULL) {
            free(argv);
            free(argvlen);
            freeReplyObject(keys);
            snprintf(pl->errstr, pl->errstr_size, "out of memory");
            goto done;
        }
        snprintf(port, sizeof(port), "%d", masters[dst].port);
        snprintf(tmo, sizeof(tmo), "%d", pl->timeout_ms);
        argv[argc++] = "MIGRATE";
        argv[argc++] = masters[dst].host;
        argv[argc++] = port;
        argv[argc++] = "";
        argv[argc++] = "0";
        argv[argc++] = tmo;
        if (pl->url.password[0] != '\0') {
            if (pl->url.user[0] != '\0') {
                argv[argc++] = "AUTH2";
                argv[argc++] = pl->url.user;
            } else {
                argv[argc++] = "AUTH";
            }
            argv[argc++] = pl->url.password;
        }
        argv[argc++] = "KEYS";
        for (size_t i = 0; i < argc; i++) {
            argvlen[i] = strlen(argv[i]);
        }
        for (size_t i = 0; i < n; i++) {
            argv[argc] = keys->element[i]->str;
            argvlen[argc++] = keys->element[i]->len;
        }
        int ok = node_cmd(pl, s, &masters[src], (int)argc, argv, argvlen, NULL);
        free(argv);
        free(argvlen);
        freeReplyObject(keys);
        if (ok != LP_OK) {
            goto done;
        }
    }
    if (setslot(pl, d, &masters[dst], slot, "NODE", masters[dst].id) != LP_OK ||
        setslot(pl, s, &masters[src], slot, "NODE", masters[dst].id) != LP_OK) {
        goto done;
    }
    for (int i = 0; i < nmasters; i++) {
        if (i == src || i == dst) {
            continue;
        }
        redisContext *o = node_open(pl, masters[i].host, masters[i].port);
        int ok = o != NULL && setslot(pl, o, &masters[i], slot, "NODE", masters[dst].id) == LP_OK;
        redisFree(o);
        if (!ok) {
            goto done;
        }
    }
    rc = LP_OK;
done:
    redisFree(s);
    redisFree(d);
    return rc;
}

int lp_store_redis_cluster_place(const char *urls, int timeout_ms, int32_t partitions, int dry_run,
                                 FILE *out, char *errstr, size_t errstr_size) {
    place_t pl = {.timeout_ms = timeout_ms, .errstr = errstr, .errstr_size = errstr_size};
    lp_redis_master_t masters[LP_REDIS_PLACE_MASTERS];
    int16_t *owner = malloc(LP_REDIS_SLOTS * sizeof(*owner));
    int *cur = calloc((size_t)(partitions > 0 ? partitions : 1), sizeof(*cur));
    int *target = calloc((size_t)(partitions > 0 ? partitions : 1), sizeof(*target));
    int nmasters = -1, moves = -1;
    redisContext *c = NULL;

    pl.tv.tv_sec = timeout_ms / 1000;
    pl.tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (owner == NULL || cur == NULL || target == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (partitions < 1 || partitions > LP_PARTITIONS_MAX) {
        snprintf(errstr, errstr_size, "partitions must be 1..%d", LP_PARTITIONS_MAX);
        goto done;
    }
    lp_store_redis_url_t seeds[LP_REDIS_SEEDS_MAX];
    int nseeds = lp_store_redis_seeds_parse(urls, seeds, LP_REDIS_SEEDS_MAX, errstr, errstr_size);
    if (nseeds < 0) {
        goto done;
    }
    pl.url = seeds[0]; /* its credentials serve every node, as in the store */
    /* The first seed that answers CLUSTER NODES. */
    for (int i = 0; i < nseeds && nmasters < 0; i++) {
        redisReply *r;

        if ((c = node_open(&pl, seeds[i].host, seeds[i].port)) == NULL) {
            continue;
        }
        r = redisCommand(c, "CLUSTER NODES");
        if (r != NULL && r->type == REDIS_REPLY_STRING) {
            nmasters = lp_redis_parse_nodes(r->str, masters, LP_REDIS_PLACE_MASTERS, owner, errstr,
                                            errstr_size);
        } else {
            snprintf(errstr, errstr_size, "%s:%d: CLUSTER NODES: %s", seeds[i].host, seeds[i].port,
                     r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        }
        freeReplyObject(r);
        redisFree(c);
        c = NULL;
    }
    if (nmasters < 0) {
        goto done;
    }
    for (int32_t p = 0; p < partitions; p++) {
        cur[p] = owner[lp_redis_partition_slot(p)];
    }
    moves = lp_redis_place_plan(cur, partitions, nmasters, target);
    if (moves < 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (int i = 0; i < nmasters; i++) {
        int before = 0, after = 0;
        for (int32_t p = 0; p < partitions; p++) {
            before += cur[p] == i;
            after += target[p] == i;
        }
        fprintf(out, "cluster-place: master %s:%d holds %d partitions, %d after\n", masters[i].host,
                masters[i].port, before, after);
    }
    for (int32_t p = 0; p < partitions; p++) {
        if (target[p] == cur[p]) {
            continue;
        }
        int slot = lp_redis_partition_slot(p);
        fprintf(out, "cluster-place: partition %d (slot %d): %s%s:%d -> %s:%d%s\n", (int)p, slot,
                cur[p] < 0 ? "unowned" : "", cur[p] < 0 ? "" : masters[cur[p]].host,
                cur[p] < 0 ? 0 : masters[cur[p]].port, masters[target[p]].host,
                masters[target[p]].port, dry_run ? " (dry run)" : "");
        if (dry_run) {
            continue;
        }
        if (cur[p] < 0) {
            snprintf(errstr, errstr_size,
                     "slot %d of partition %d has no master (fix the cluster first: "
                     "redis-cli --cluster fix)",
                     slot, (int)p);
            moves = -1;
            goto done;
        }
        if (move_slot(&pl, slot, masters, nmasters, cur[p], target[p]) != LP_OK) {
            char why[LP_ERRSTR];
            snprintf(why, sizeof(why), "%s", errstr);
            snprintf(errstr, errstr_size,
                     "moving slot %d (partition %d): %s; the slot may be left half migrated: "
                     "run `redis-cli --cluster fix` on a node, then cluster-place again",
                     slot, (int)p, why);
            moves = -1;
            goto done;
        }
    }
done:
    redisFree(c);
    free(owner);
    free(cur);
    free(target);
    return moves;
}
