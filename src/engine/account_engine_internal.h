/* The account engine's insides (src/engine/account_engine.c: partitions and the cache,
 * src/engine/account_step.c: a step), shared by its two files. Not a public contract. */
#ifndef LEADPULSE_ENGINE_ACCOUNT_ENGINE_INTERNAL_H
#define LEADPULSE_ENGINE_ACCOUNT_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/account_table.h"
#include "leadpulse/account_engine.h"
#include "leadpulse/account_stage.h"

#define APPLIED_TOPIC "@applied"
#define ACCT_CACHE_MEMBERS 200000

typedef struct {
    int64_t epoch; /* 0: not owned */
    lp_acct_stage_t *buf;
    int64_t stored_offset; /* the members topic's offset stored (-1: none) */
    int64_t next_read;     /* the offset after the highest record read (-1: none) */
    int64_t applied;       /* records applied, as stored under "@applied" (-1: none) */
    int64_t swept;         /* timers due at or before this fired (INT64_MIN: none yet) */
    /* The accounts as last committed (key -> lp_account_state_t *, decoded), so that a step need
     * not load and decode them: taken out while a step uses them, put back once its commit
     * succeeded (a failed step drops them: they are loaded from the store next time). Bounded:
     * when it would hold more than ACCT_CACHE_MEMBERS members it is emptied. */
    acct_table_t cache;
    int64_t cache_members;
} apart_t;

/* An account a step touches. */
typedef struct {
    char *key;
    lp_account_state_t a;
    bool changed;
    bool from_due;      /* the store listed its timer as due */
    int64_t due_stored; /* its timer in the store when loaded (-1: unknown) */
} acct_t;

/* An account hand-off of a step, for the outbox. */
typedef struct {
    int kind;
    char *key;
    uint8_t *value;
    size_t value_len;
    char meta[256];
    size_t meta_len;
    char event_id[LP_EVENT_ID_HEX + 1];
} out_t;

struct lp_acct_engine {
    lp_acct_engine_opts_t opts;
    const lp_rules_t *rules;
    lp_store_t *store;
    lp_avro_codec_t *codec;
    apart_t *parts[LP_PARTITIONS_MAX];
    lp_acct_engine_stats_t st;
    char errstr[LP_ERRSTR * 2];
    /* one step's scratch */
    lp_member_msg_t *popped;
    size_t cap_popped;
    acct_t *accts;
    size_t naccts, cap_accts;
    acct_table_t index; /* key -> 1 + its index in accts */
    out_t *outs;
    size_t nouts, cap_outs;
    lp_account_fact_t facts[LP_ACCOUNT_APPLY_FACTS];
    int32_t partitions; /* the members topic's partition count (0: not checked) */
};

/* The store partition of account partition q. */
static inline int32_t lp_ae_spart(int32_t q) {
    return LP_ACCOUNT_PARTITION_BASE + q;
}

/* "account partition <q>: " and the message into e->errstr; returns LP_ERR. */
int lp_ae_fail(lp_acct_engine_t *e, int32_t q, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Decodes a stored account value: 1 an account, 0 none (absent or a tombstone), LP_ERR corrupt. */
int lp_ae_decode_account(const uint8_t *data, size_t len, lp_account_state_t *a);

/* The cache of a partition (account_engine.c): takes an account out (the caller owns it; NULL
 * when not cached), puts one in (taking it over; freed when there is no room or memory). */
lp_account_state_t *lp_ae_cache_take(apart_t *p, const char *key);
void lp_ae_cache_put(apart_t *p, const char *key, lp_account_state_t *a);

/* Frees a step's accounts and hand-offs (account_step.c). */
void lp_ae_step_clear(lp_acct_engine_t *e);

#endif
