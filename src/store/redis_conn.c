/* leadpulse Redis store: the connection (hiredis 0.14.1, blocking, with timeouts), reconnects and
 * EVALSHA with the NOSCRIPT fallback. Nothing here aborts: a failure is LP_ERR / NULL with a
 * reason, and the engine retries with backoff. */
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

void lp_redis_disconnect(redis_store_t *rs) {
    release_reply(rs);
    if (rs->ctx != NULL) {
        redisFree(rs->ctx);
        rs->ctx = NULL;
    }
}

/* Sends one command on ctx during connection setup; LP_OK if the reply is not an error. */
static int setup_command(redis_store_t *rs, redisContext *ctx, int argc, const char **argv,
                         const char *what) {
    size_t argvlen[3];
    redisReply *reply;
    int i;

    for (i = 0; i < argc; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    rs->base.round_trips++;
    reply = redisCommandArgv(ctx, argc, argv, argvlen);
    if (reply == NULL) {
        return lp_store_fail(&rs->base, "store redis: %s:%d: %s: %s", rs->url.host, rs->url.port,
                             what, ctx->errstr);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        lp_store_fail(&rs->base,
                      "store redis: %s:%d: %s refused: %s (check the url's "
                      "credentials and database)",
                      rs->url.host, rs->url.port, what, reply->str);
        freeReplyObject(reply);
        return LP_ERR;
    }
    freeReplyObject(reply);
    return LP_OK;
}

int lp_redis_connect(redis_store_t *rs) {
    redisContext *ctx;
    char db[16];

    lp_redis_disconnect(rs);
    ctx = redisConnectWithTimeout(rs->url.host, rs->url.port, rs->timeout);
    if (ctx == NULL) {
        return lp_store_fail(&rs->base, "store redis: out of memory for a connection");
    }
    if (ctx->err) {
        lp_store_fail(&rs->base,
                      "store redis: cannot connect to %s:%d: %s (is redis-server "
                      "up? retrying later)",
                      rs->url.host, rs->url.port, ctx->errstr);
        goto err;
    }
    /* Without a socket timeout a blocking read waits forever on a stalled server. */
    if (redisSetTimeout(ctx, rs->timeout) != REDIS_OK) {
        lp_store_fail(&rs->base, "store redis: %s:%d: cannot set the timeout: %s", rs->url.host,
                      rs->url.port, ctx->errstr);
        goto err;
    }
    redisEnableKeepAlive(ctx);
    if (rs->url.user[0] != '\0') {
        const char *argv[] = {"AUTH", rs->url.user, rs->url.password};

        if (setup_command(rs, ctx, 3, argv, "AUTH") != LP_OK) {
            goto err;
        }
    } else if (rs->url.password[0] != '\0') {
        const char *argv[] = {"AUTH", rs->url.password};

        if (setup_command(rs, ctx, 2, argv, "AUTH") != LP_OK) {
            goto err;
        }
    }
    if (rs->url.db != 0) {
        const char *argv[] = {"SELECT", db};

        snprintf(db, sizeof(db), "%d", rs->url.db);
        if (setup_command(rs, ctx, 2, argv, "SELECT") != LP_OK) {
            goto err;
        }
    }
    rs->ctx = ctx;
    return LP_OK;
err:
    redisFree(ctx);
    return LP_ERR;
}

/* Redis sends nothing unasked (no pub/sub here): a readable socket between requests means the
 * server closed it (restart, timeout, CLIENT KILL) or the stream is out of step. Finding that out
 * before sending lets even a commit reconnect first instead of failing with an unknown outcome. */
static int connection_usable(redisContext *ctx) {
    char c;
    ssize_t r;

    if (ctx->err) {
        return 0;
    }
    r = recv(ctx->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

redisReply *lp_redis_command(redis_store_t *rs, int argc, const char **argv, const size_t *argvlen,
                             redis_retry_t retry) {
    int reconnected = 0;
    redisReply *reply;

    release_reply(rs);
    for (;;) {
        if (rs->ctx != NULL && !connection_usable(rs->ctx)) {
            lp_redis_disconnect(rs);
        }
        if (rs->ctx == NULL) {
            if (reconnected) {
                return NULL;
            }
            reconnected = 1;
            if (lp_redis_connect(rs) != LP_OK) {
                return NULL;
            }
        }
        rs->base.round_trips++;
        reply = redisCommandArgv(rs->ctx, argc, argv, argvlen);
        if (reply != NULL) {
            rs->reply = reply;
            return reply;
        }
        lp_store_fail(&rs->base, "store redis: %s:%d: %s failed: %s (%s)", rs->url.host,
                      rs->url.port, argv[0], rs->ctx->errstr,
                      retry == RC_RETRY ? "connection lost; retry later"
                                        : "connection lost; the command may or may not have run");
        /* The context may hold half a reply: never reuse it. */
        lp_redis_disconnect(rs);
        if (retry != RC_RETRY || reconnected) {
            return NULL;
        }
    }
}

int lp_redis_send(redis_store_t *rs, int argc, const char **argv, const size_t *argvlen) {
    int done = 0;

    release_reply(rs);
    if (rs->ctx != NULL && !connection_usable(rs->ctx)) {
        lp_redis_disconnect(rs);
    }
    if (rs->ctx == NULL && lp_redis_connect(rs) != LP_OK) {
        return LP_ERR;
    }
    rs->base.round_trips++;
    if (redisAppendCommandArgv(rs->ctx, argc, argv, argvlen) != REDIS_OK) {
        goto lost;
    }
    /* Write it all now, so the server works on it while the caller does something else. */
    while (!done) {
        if (redisBufferWrite(rs->ctx, &done) != REDIS_OK) {
            goto lost;
        }
    }
    return LP_OK;
lost:
    lp_store_fail(&rs->base,
                  "store redis: %s:%d: %s failed: %s (connection lost; the command "
                  "may or may not have run)",
                  rs->url.host, rs->url.port, argv[0], rs->ctx->errstr);
    lp_redis_disconnect(rs);
    return LP_ERR;
}

redisReply *lp_redis_recv(redis_store_t *rs, const char *what) {
    void *reply = NULL;

    release_reply(rs);
    if (rs->ctx == NULL) {
        lp_store_fail(&rs->base, "store redis: %s:%d: %s: not connected", rs->url.host,
                      rs->url.port, what);
        return NULL;
    }
    if (redisGetReply(rs->ctx, &reply) != REDIS_OK || reply == NULL) {
        lp_store_fail(&rs->base,
                      "store redis: %s:%d: %s failed: %s (connection lost; the command "
                      "may or may not have run)",
                      rs->url.host, rs->url.port, what, rs->ctx->errstr);
        lp_redis_disconnect(rs);
        return NULL;
    }
    rs->reply = reply;
    return reply;
}

int lp_redis_script_load(redis_store_t *rs, const char *script, char *sha) {
    const char *argv[] = {"SCRIPT", "LOAD", script};
    size_t argvlen[] = {6, 4, strlen(script)};
    redisReply *reply = lp_redis_command(rs, 3, argv, argvlen, RC_RETRY);

    if (reply == NULL) {
        return LP_ERR;
    }
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        return lp_store_fail(&rs->base, "store redis: %s:%d: SCRIPT LOAD failed: %s", rs->url.host,
                             rs->url.port,
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
