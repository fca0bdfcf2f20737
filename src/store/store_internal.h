/* leadpulse store internals shared by the implementations (not a public header). */
#ifndef LP_STORE_INTERNAL_H
#define LP_STORE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "leadpulse/store.h"

/* Partitions above this are refused: the in-memory store indexes partitions directly. */

/* Sets store->errstr (printf-style). Always returns LP_ERR so callers can `return lp_store_fail()`.
 */
int lp_store_fail(lp_store_t *store, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* LP_OK if 0 <= partition <= LP_PARTITIONS_MAX - 1, else LP_ERR with store->errstr set. */
int lp_store_check_partition(lp_store_t *store, int32_t partition);

/* Checks a batch before anything is written: pointers, counts, negative values. LP_OK or LP_ERR
 * with store->errstr set. Both implementations call it, so they refuse the same batches. */
int lp_store_batch_check(lp_store_t *store, const lp_store_batch_t *batch);

/* A parsed redis:// URL. Strings are NUL-terminated; user and password are %XX-decoded. */
typedef struct {
    char host[256];
    int port;
    int db;
    char user[128];     /* "" = no ACL user (AUTH password only) */
    char password[256]; /* "" = no AUTH */
} lp_store_redis_url_t;

/* Parses redis://[[user]:password@]host[:port][/db]. LP_OK or LP_ERR with a reason in errstr. */
int lp_store_redis_url_parse(const char *url, lp_store_redis_url_t *out, char *errstr,
                             size_t errstr_size);

/* Redis Cluster seed nodes: comma-separated redis:// URLs (spaces around them ignored; no /db).
 * Returns how many were parsed into out (at most max), or -1 with a reason in errstr. */
#define LP_REDIS_SEEDS_MAX 64
int lp_store_redis_seeds_parse(const char *urls, lp_store_redis_url_t *out, int max, char *errstr,
                               size_t errstr_size);

/* The Lua scripts, embedded at build time (src/store/redis_scripts.c). */
extern const char lp_store_commit_lua[];
extern const char lp_store_ack_lua[];
extern const char lp_store_load_lua[];
extern const char lp_store_rebucket_lua[];

#endif
