/* leadpulse Redis store: the connections (hiredis 0.14.1, blocking, with timeouts), reconnects,
 * EVALSHA with the NOSCRIPT fallback, and Redis Cluster routing: the slot map, one connection per
 * node, MOVED and ASK. Nothing here aborts: a failure is LP_ERR / NULL with a reason, and the
 * engine retries with backoff. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "store/redis_internal.h"

int lp_redis_reserve_argv(redis_store_t *rs, size_t n) {
    if (n > rs->argv_cap) {
        const char **argv = realloc(rs->argv, n * sizeof(*argv));

        if (argv == NULL) {
            return LP_ERR;
        }
        rs->argv = argv;
        size_t *argvlen = realloc(rs->argvlen, n * sizeof(*argvlen));
        if (argvlen == NULL) {
            return LP_ERR;
        }
        rs->argvlen = argvlen;
        rs->argv_cap = n;
    }
    if (n > rs->nums_cap) {
        char(*nums)[24] = realloc(rs->nums, n * sizeof(*nums));

        if (nums == NULL) {
            return LP_ERR;
        }
        rs->nums = nums;
        rs->nums_cap = n;
    }
    return LP_OK;
}

static void release_reply(redis_store_t *rs) {
    if (rs->reply != NULL) {
        freeReplyObject(rs->reply);
        rs->reply = NULL;
    }
}

static void node_drop(redis_store_t *rs, int idx) {
    redis_node_t *n = &rs->nodes[idx];

    if (n->ctx != NULL) {
        redisFree(n->ctx);
        n->ctx = NULL;
    }
}

void lp_redis_disconnect(redis_store_t *rs) {
    release_reply(rs);
    for (size_t i = 0; i < rs->nnodes; i++) {
        node_drop(rs, (int)i);
    }
}

/* Sends one command on ctx during connection setup; LP_OK if the reply is not an error. A
 * SCRIPT LOAD reply (40 hex) is copied into sha when sha is given. */
static int setup_command(redis_store_t *rs, const redis_node_t *n, redisContext *ctx, int argc,
                         const char **argv, const char *what, char *sha) {
    size_t argvlen[3];
    redisReply *reply;
    int i;

    for (i = 0; i < argc; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    rs->base.round_trips++;
    reply = redisCommandArgv(ctx, argc, argv, argvlen);
    if (reply == NULL) {
        return lp_store_fail(&rs->base, "store redis: %s:%d: %s: %s", n->host, n->port, what,
                             ctx->errstr);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        lp_store_fail(&rs->base,
                      "store redis: %s:%d: %s refused: %s (check the url's "
                      "credentials and database)",
                      n->host, n->port, what, reply->str);
        freeReplyObject(reply);
        return LP_ERR;
    }
    if (sha != NULL) {
        if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
            freeReplyObject(reply);
            return lp_store_fail(&rs->base, "store redis: %s:%d: %s: unexpected reply", n->host,
                                 n->port, what);
        }
        memcpy(sha, reply->str, 40);
        sha[40] = '\0';
    }
    freeReplyObject(reply);
    return LP_OK;
}

/* Connects node idx: connect, timeout, keep-alive, AUTH, SELECT (standalone), and the scripts
 * loaded, so a node new to this worker (after a failover or a slot migration) has them before
 * the first EVALSHA. */
static int node_connect(redis_store_t *rs, int idx) {
    redis_node_t *n = &rs->nodes[idx];
    redisContext *ctx;
    char db[16];

    node_drop(rs, idx);
    ctx = redisConnectWithTimeout(n->host, n->port, rs->timeout);
    if (ctx == NULL) {
        return lp_store_fail(&rs->base, "store redis: out of memory for a connection");
    }
    if (ctx->err) {
        lp_store_fail(&rs->base,
                      "store redis: cannot connect to %s:%d: %s (is redis-server "
                      "up? retrying later)",
                      n->host, n->port, ctx->errstr);
        goto err;
    }
    /* Without a socket timeout a blocking read waits forever on a stalled server. */
    if (redisSetTimeout(ctx, rs->timeout) != REDIS_OK) {
        lp_store_fail(&rs->base, "store redis: %s:%d: cannot set the timeout: %s", n->host, n->port,
                      ctx->errstr);
        goto err;
    }
    redisEnableKeepAlive(ctx);
    if (rs->url.user[0] != '\0') {
        const char *argv[] = {"AUTH", rs->url.user, rs->url.password};

        if (setup_command(rs, n, ctx, 3, argv, "AUTH", NULL) != LP_OK) {
            goto err;
        }
    } else if (rs->url.password[0] != '\0') {
        const char *argv[] = {"AUTH", rs->url.password};

        if (setup_command(rs, n, ctx, 2, argv, "AUTH", NULL) != LP_OK) {
            goto err;
        }
    }
    if (!rs->cluster && rs->url.db != 0) {
        const char *argv[] = {"SELECT", db};

        snprintf(db, sizeof(db), "%d", rs->url.db);
        if (setup_command(rs, n, ctx, 2, argv, "SELECT", NULL) != LP_OK) {
            goto err;
        }
    }
    {
        const char *commit[] = {"SCRIPT", "LOAD", lp_store_commit_lua};
        const char *ack[] = {"SCRIPT", "LOAD", lp_store_ack_lua};
        const char *load[] = {"SCRIPT", "LOAD", lp_store_load_lua};
        const char *rebucket[] = {"SCRIPT", "LOAD", lp_store_rebucket_lua};

        if (setup_command(rs, n, ctx, 3, commit, "SCRIPT LOAD (commit)", rs->commit_sha) != LP_OK ||
            setup_command(rs, n, ctx, 3, ack, "SCRIPT LOAD (outbox ack)", rs->ack_sha) != LP_OK ||
            setup_command(rs, n, ctx, 3, load, "SCRIPT LOAD (load)", rs->load_sha) != LP_OK ||
            setup_command(rs, n, ctx, 3, rebucket, "SCRIPT LOAD (rebucket)", rs->rebucket_sha) !=
                LP_OK) {
            goto err;
        }
    }
    n->ctx = ctx;
    return LP_OK;
err:
    redisFree(ctx);
    return LP_ERR;
}

int lp_redis_connect(redis_store_t *rs) {
    return node_connect(rs, rs->cur);
}

/* The index of host:port in rs->nodes, added if new; -1 when the table is full. */
static int node_index(redis_store_t *rs, const char *host, int port) {
    for (size_t i = 0; i < rs->nnodes; i++) {
        if (rs->nodes[i].port == port && strcmp(rs->nodes[i].host, host) == 0) {
            return (int)i;
        }
    }
    if (rs->nnodes == rs->nodes_cap) {
        size_t cap = rs->nodes_cap == 0 ? 8 : rs->nodes_cap * 2;
        redis_node_t *grown;

        if (cap > LP_REDIS_NODES_MAX) {
            return -1;
        }
        grown = realloc(rs->nodes, cap * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        rs->nodes = grown;
        rs->nodes_cap = cap;
    }
    redis_node_t *n = &rs->nodes[rs->nnodes];
    memset(n, 0, sizeof(*n));
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    return (int)rs->nnodes++;
}

int lp_redis_add_node(redis_store_t *rs, const char *host, int port) {
    return node_index(rs, host, port);
}

typedef struct {
    redis_store_t *rs;
    int16_t *slots;
} slot_fill_t;

static int fill_range(void *arg, int first, int last, const char *host, int port) {
    slot_fill_t *f = arg;
    int idx = node_index(f->rs, host, port);

    if (idx < 0) {
        return LP_ERR;
    }
    for (int s = first; s <= last; s++) {
        f->slots[s] = (int16_t)idx;
    }
    return LP_OK;
}

/* CLUSTER SLOTS of node idx into fresh (all -1 before). LP_OK; LP_ERR (try another node); or 1
 * when the node is not a cluster node (a configuration error: stop trying). */
static int slots_from(redis_store_t *rs, int idx, int16_t *fresh) {
    static const char *argv[] = {"CLUSTER", "SLOTS"};
    static const size_t argvlen[] = {7, 5};
    char host[LP_REDIS_HOST_MAX];
    char err[LP_ERRSTR];
    redisReply *reply;
    slot_fill_t fill = {rs, fresh};
    int rc;

    if (rs->nodes[idx].ctx != NULL && !lp_redis_usable(rs->nodes[idx].ctx)) {
        node_drop(rs, idx);
    }
    if (rs->nodes[idx].ctx == NULL && node_connect(rs, idx) != LP_OK) {
        return LP_ERR;
    }
    rs->base.round_trips++;
    reply = redisCommandArgv(rs->nodes[idx].ctx, 2, argv, argvlen);
    if (reply == NULL) {
        lp_store_fail(&rs->base, "store redis: %s:%d: CLUSTER SLOTS failed: %s",
                      rs->nodes[idx].host, rs->nodes[idx].port, rs->nodes[idx].ctx->errstr);
        node_drop(rs, idx);
        return LP_ERR;
    }
    /* fill_range may grow rs->nodes: copy the host first. */
    snprintf(host, sizeof(host), "%s", rs->nodes[idx].host);
    int port = rs->nodes[idx].port;
    rc = lp_redis_parse_slots(reply, host, fill_range, &fill, err, sizeof(err));
    if (rc != LP_OK) {
        lp_store_fail(&rs->base, "store redis: %s:%d: %s", host, port, err);
        rc = reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "cluster support") != NULL
                 ? 1
                 : LP_ERR;
    }
    freeReplyObject(reply);
    return rc;
}

int lp_redis_refresh_slots(redis_store_t *rs) {
    int16_t *fresh = malloc(LP_REDIS_SLOTS * sizeof(*fresh));
    size_t known = rs->nnodes;

    if (fresh == NULL) {
        return lp_store_fail(&rs->base, "store redis: out of memory for the slot map");
    }
    /* Nodes already connected first (no connect wait), then the others. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < known; i++) {
            if ((rs->nodes[i].ctx != NULL) != (pass == 0)) {
                continue;
            }
            for (int s = 0; s < LP_REDIS_SLOTS; s++) {
                fresh[s] = -1;
            }
            int rc = slots_from(rs, (int)i, fresh);
            if (rc == 1) {
                free(fresh);
                return LP_ERR;
            }
            if (rc == LP_OK) {
                memcpy(rs->slots, fresh, LP_REDIS_SLOTS * sizeof(*fresh));
                free(fresh);
                rs->map_stale = 0;
                rs->base.slot_refreshes++;
                return LP_OK;
            }
        }
    }
    free(fresh);
    char last[LP_ERRSTR];
    snprintf(last, sizeof(last), "%s", rs->base.errstr);
    return lp_store_fail(&rs->base,
                         "store redis cluster: no node answered CLUSTER SLOTS (%zu known; last: "
                         "%s)",
                         known, last);
}

/* Picks the node of the current command: the only one, or the master of rs->slot. */
static int route(redis_store_t *rs) {
    if (!rs->cluster) {
        rs->cur = 0;
        return LP_OK;
    }
    if (rs->map_stale || rs->slots[rs->slot] < 0) {
        /* On failure an older entry is still worth a try (it answers, or redirects). */
        if (lp_redis_refresh_slots(rs) != LP_OK && rs->slots[rs->slot] < 0) {
            return LP_ERR;
        }
    }
    if (rs->slots[rs->slot] < 0) {
        return lp_store_fail(&rs->base,
                             "store redis cluster: slot %d has no master (the cluster is down "
                             "or being set up)",
                             rs->slot);
    }
    rs->cur = rs->slots[rs->slot];
    return LP_OK;
}

/* Redis sends nothing unasked (no pub/sub here): a readable socket between requests means the
 * server closed it (restart, timeout, CLIENT KILL) or the stream is out of step. Finding that out
 * before sending lets even a commit reconnect first instead of failing with an unknown outcome. */
int lp_redis_usable(redisContext *ctx) {
    char c;
    ssize_t r;

    if (ctx->err) {
        return 0;
    }
    r = recv(ctx->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The connection of the current node, (re)connected if needed. LP_OK or LP_ERR. */
static int ensure_connected(redis_store_t *rs) {
    redis_node_t *n = &rs->nodes[rs->cur];

    if (n->ctx != NULL && !lp_redis_usable(n->ctx)) {
        node_drop(rs, rs->cur);
    }
    if (n->ctx == NULL && node_connect(rs, rs->cur) != LP_OK) {
        if (rs->cluster) {
            rs->map_stale = 1; /* a dead master: its replica may have taken over */
        }
        return LP_ERR;
    }
    return LP_OK;
}

static void lost(redis_store_t *rs, const char *what, redis_retry_t retry) {
    redis_node_t *n = &rs->nodes[rs->cur];

    lp_store_fail(&rs->base, "store redis: %s:%d: %s failed: %s (%s)", n->host, n->port, what,
                  n->ctx != NULL ? n->ctx->errstr : "not connected",
                  retry == RC_RETRY ? "connection lost; retry later"
                                    : "connection lost; the command may or may not have run");
    /* The context may hold half a reply: never reuse it. */
    node_drop(rs, rs->cur);
    if (rs->cluster) {
        rs->map_stale = 1;
    }
}

/* ASKING then the command, on node idx, in one round trip: the slot is being migrated there and
 * this key has moved already. The map is not changed (the migration is not over). */
static redisReply *ask_command(redis_store_t *rs, int idx, int argc, const char **argv,
                               const size_t *argvlen, redis_retry_t retry) {
    void *asking = NULL, *reply = NULL;

    rs->cur = idx;
    if (ensure_connected(rs) != LP_OK) {
        return NULL;
    }
    redisContext *ctx = rs->nodes[idx].ctx;
    rs->base.round_trips++;
    if (redisAppendCommand(ctx, "ASKING") != REDIS_OK ||
        redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK ||
        redisGetReply(ctx, &asking) != REDIS_OK || redisGetReply(ctx, &reply) != REDIS_OK ||
        reply == NULL) {
        if (asking != NULL) {
            freeReplyObject(asking);
        }
        lost(rs, argv[0], retry);
        return NULL;
    }
    freeReplyObject(asking);
    return reply;
}

/* Follows a MOVED or ASK reply (cluster mode): MOVED updates the slot's master and marks the map
 * for a refresh, and the command is sent again there (*again = 1, reply freed); ASK sends it to
 * the importing node once. Any other reply is returned as it is. NULL with errstr set on a
 * connection failure or too many redirections. Redirections are safe to follow for every
 * command, a commit included: the node refusing it did not run it. */
static redisReply *follow(redis_store_t *rs, redisReply *reply, int argc, const char **argv,
                          const size_t *argvlen, redis_retry_t retry, int *redirects, int *again) {
    lp_redis_redirect_t rd;

    *again = 0;
    if (!rs->cluster || reply->type != REDIS_REPLY_ERROR) {
        return reply;
    }
    if (!lp_redis_parse_redirect(reply->str, reply->len, &rd)) {
        if (strncmp(reply->str, "CLUSTERDOWN", 11) == 0) {
            rs->map_stale = 1;
        }
        return reply;
    }
    freeReplyObject(reply);
    rs->base.redirects++;
    if (++*redirects > LP_REDIS_REDIRECTS_MAX) {
        lp_store_fail(&rs->base,
                      "store redis cluster: %s: more than %d redirections for slot %d (the "
                      "cluster is reconfiguring; retry later)",
                      argv[0], LP_REDIS_REDIRECTS_MAX, rd.slot);
        rs->map_stale = 1;
        return NULL;
    }
    int idx = node_index(rs, rd.host, rd.port);
    if (idx < 0) {
        lp_store_fail(&rs->base, "store redis cluster: too many nodes (%d)", LP_REDIS_NODES_MAX);
        return NULL;
    }
    if (rd.ask) {
        return ask_command(rs, idx, argc, argv, argvlen, retry);
    }
    rs->slots[rd.slot] = (int16_t)idx;
    rs->map_stale = 1;
    rs->cur = idx;
    *again = 1;
    return NULL;
}

redisReply *lp_redis_command(redis_store_t *rs, int argc, const char **argv, const size_t *argvlen,
                             redis_retry_t retry) {
    int reconnected = 0;
    int redirects = 0;
    redisReply *reply;

    release_reply(rs);
    if (route(rs) != LP_OK) {
        return NULL;
    }
    for (;;) {
        int again;

        if (ensure_connected(rs) != LP_OK) {
            return NULL;
        }
        rs->base.round_trips++;
        reply = redisCommandArgv(rs->nodes[rs->cur].ctx, argc, argv, argvlen);
        if (reply == NULL) {
            lost(rs, argv[0], retry);
            if (retry != RC_RETRY || reconnected) {
                return NULL;
            }
            reconnected = 1;
            if (rs->cluster && route(rs) != LP_OK) {
                return NULL;
            }
            continue;
        }
        reply = follow(rs, reply, argc, argv, argvlen, retry, &redirects, &again);
        if (again) {
            continue; /* MOVED: rs->cur is the slot's new master */
        }
        rs->reply = reply;
        return reply;
    }
}

int lp_redis_send(redis_store_t *rs, int argc, const char **argv, const size_t *argvlen) {
    int done = 0;

    release_reply(rs);
    rs->sent_argc = 0;
    if (route(rs) != LP_OK || ensure_connected(rs) != LP_OK) {
        return LP_ERR;
    }
    redisContext *ctx = rs->nodes[rs->cur].ctx;
    rs->base.round_trips++;
    if (redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK) {
        goto lost;
    }
    /* Write it all now, so the server works on it while the caller does something else. */
    while (!done) {
        if (redisBufferWrite(ctx, &done) != REDIS_OK) {
            goto lost;
        }
    }
    rs->sent_argc = argc;
    rs->sent_argv = argv;
    rs->sent_argvlen = argvlen;
    return LP_OK;
lost:
    lost(rs, argv[0], RC_ONCE);
    return LP_ERR;
}

redisReply *lp_redis_recv(redis_store_t *rs, const char *what) {
    void *reply = NULL;
    redis_node_t *n = &rs->nodes[rs->cur];
    int redirects = 0, again;

    release_reply(rs);
    if (n->ctx == NULL || rs->sent_argc == 0) {
        lp_store_fail(&rs->base, "store redis: %s:%d: %s: not connected", n->host, n->port, what);
        return NULL;
    }
    if (redisGetReply(n->ctx, &reply) != REDIS_OK || reply == NULL) {
        lost(rs, what, RC_ONCE);
        return NULL;
    }
    reply = follow(rs, reply, rs->sent_argc, rs->sent_argv, rs->sent_argvlen, RC_ONCE, &redirects,
                   &again);
    if (again) {
        /* MOVED: the commit did not run; send it to the slot's new master and wait. */
        return lp_redis_command(rs, rs->sent_argc, rs->sent_argv, rs->sent_argvlen, RC_ONCE);
    }
    rs->reply = reply;
    return reply;
}

int lp_redis_script_load(redis_store_t *rs, const char *script, char *sha) {
    const char *argv[] = {"SCRIPT", "LOAD", script};
    size_t argvlen[] = {6, 4, strlen(script)};
    redisReply *reply = lp_redis_command(rs, 3, argv, argvlen, RC_RETRY);
    redis_node_t *n = &rs->nodes[rs->cur];

    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        return lp_store_fail(&rs->base, "store redis: %s:%d: SCRIPT LOAD failed: %s", n->host,
                             n->port,
                             reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
    memcpy(sha, reply->str, 40);
    sha[40] = '\0';
    return LP_OK;
}

int lp_redis_evalsha_argv(redis_store_t *rs, const char *script, char *sha, const char **argv,
                          size_t *argvlen) {
    if (sha[0] == '\0' && lp_redis_script_load(rs, script, sha) != LP_OK) {
        return LP_ERR;
    }
    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = sha;
    argvlen[1] = 40;
    return LP_OK;
}

redisReply *lp_redis_evalsha_noscript(redis_store_t *rs, redisReply *reply, const char *script,
                                      char *sha, int argc, const char **argv, const size_t *argvlen,
                                      redis_retry_t retry) {
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "NOSCRIPT", 8)) {
        return reply;
    }
    /* The script cache went away (restart, failover, SCRIPT FLUSH): load it and retry once.
     * NOSCRIPT means the script did not run, so the retry cannot apply anything twice. argv[1]
     * points at sha, which the load rewrites. */
    if (lp_redis_script_load(rs, script, sha) != LP_OK) {
        return NULL;
    }
    return lp_redis_command(rs, argc, argv, argvlen, retry);
}

redisReply *lp_redis_evalsha(redis_store_t *rs, const char *script, char *sha, int argc,
                             const char **argv, size_t *argvlen, redis_retry_t retry) {
    if (lp_redis_evalsha_argv(rs, script, sha, argv, argvlen) != LP_OK) {
        return NULL;
    }
    return lp_redis_evalsha_noscript(rs, lp_redis_command(rs, argc, argv, argvlen, retry), script,
                                     sha, argc, argv, argvlen, retry);
}
