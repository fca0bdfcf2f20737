/* Stage 2 over the store (include/leadpulse/account_engine.h): its account partitions (taking,
 * giving up, reading records into each one's ordering buffer, account_stage.c) and the cache of
 * their accounts. A step (applying what the watermark allows and committing) is in
 * account_step.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/account_engine_internal.h"
#include "leadpulse/member_wire.h"

int lp_ae_fail(lp_acct_engine_t *e, int32_t q, const char *fmt, ...) {
    char msg[LP_ERRSTR * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(e->errstr, sizeof(e->errstr), "account partition %" PRId32 ": %.600s", q, msg);
    return LP_ERR;
}

lp_acct_engine_t *lp_acct_engine_new(const lp_acct_engine_opts_t *opts, const lp_rules_t *rules,
                                     lp_store_t *store, lp_avro_codec_t *codec, char *errstr,
                                     size_t errstr_size) {
    if (!rules->accounts.enabled) {
        snprintf(errstr, errstr_size, "the rules have no `accounts` section");
        return NULL;
    }
    if (opts->out_format == LP_FORMAT_AVRO && codec == NULL) {
        snprintf(errstr, errstr_size, "Avro output needs the schemas (no codec given)");
        return NULL;
    }
    lp_acct_engine_t *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    e->opts = *opts;
    if (e->opts.step_records == 0) {
        e->opts.step_records = 1000;
    }
    if (e->opts.step_timers == 0) {
        e->opts.step_timers = 1000;
    }
    e->rules = rules;
    e->store = store;
    e->codec = codec;
    return e;
}

static void free_account(void *value) {
    lp_account_free(value);
    free(value);
}

static void cache_clear(apart_t *p) {
    acct_table_clear(&p->cache, free_account);
    p->cache_members = 0;
}

lp_account_state_t *lp_ae_cache_take(apart_t *p, const char *key) {
    lp_account_state_t *a = acct_table_take(&p->cache, key);
    if (a != NULL) {
        p->cache_members -= a->nmembers;
    }
    return a;
}

void lp_ae_cache_put(apart_t *p, const char *key, lp_account_state_t *a) {
    if (p->cache_members + a->nmembers > ACCT_CACHE_MEMBERS) {
        cache_clear(p);
    }
    if (acct_table_put(&p->cache, key, a) != LP_OK) {
        free_account(a);
        return;
    }
    p->cache_members += a->nmembers;
}

static void part_free(apart_t *p) {
    if (p != NULL) {
        lp_acct_stage_free(p->buf);
        cache_clear(p);
        free(p);
    }
}

void lp_acct_engine_destroy(lp_acct_engine_t *e) {
    if (e == NULL) {
        return;
    }
    for (int32_t q = 0; q < LP_PARTITIONS_MAX; q++) {
        part_free(e->parts[q]);
    }
    lp_ae_step_clear(e);
    acct_table_clear(&e->index, NULL);
    free(e->accts);
    free(e->outs);
    free(e->popped);
    free(e);
}

void lp_acct_engine_set_rules(lp_acct_engine_t *e, const lp_rules_t *rules) {
    e->rules = rules;
}

const lp_acct_engine_stats_t *lp_acct_engine_stats(const lp_acct_engine_t *e) {
    return &e->st;
}

const char *lp_acct_engine_errstr(const lp_acct_engine_t *e) {
    return e->errstr;
}

bool lp_acct_engine_owns(const lp_acct_engine_t *e, int32_t q) {
    return q >= 0 && q < LP_PARTITIONS_MAX && e->parts[q] != NULL && e->parts[q]->epoch > 0;
}

int64_t lp_acct_engine_epoch(const lp_acct_engine_t *e, int32_t q) {
    return lp_acct_engine_owns(e, q) ? e->parts[q]->epoch : 0;
}

int lp_ae_decode_account(const uint8_t *data, size_t len, lp_account_state_t *a) {
    if (data == NULL || len == 0 || lp_account_is_tombstone(data, len)) {
        return 0;
    }
    return lp_account_decode(a, data, len) == LP_OK ? 1 : LP_ERR;
}

void lp_acct_engine_set_partitions(lp_acct_engine_t *e, int32_t partitions) {
    e->partitions = partitions;
}

static void count_mismatch(char *errstr, size_t size, int32_t q, int64_t stored, int32_t now) {
    if (now < stored) {
        snprintf(errstr, size,
                 "account partition %" PRId32 " holds accounts placed for %" PRId64
                 " partitions of the members topic, which has %" PRId32
                 " now (fewer: was it deleted and created again?); its records of those accounts "
                 "are gone: delete the account partitions' keys ({a<q>}) to start accounts afresh",
                 q, stored, now);
        return;
    }
    snprintf(errstr, size,
             "account partition %" PRId32 " holds accounts placed for %" PRId64
             " partitions of the members topic, which has %" PRId32
             " now: stop every worker, then run `leadpulse repartition --accounts --from %" PRId64
             " --to %" PRId32 "` (docs/architecture.md, \"Changing the partition count\")",
             q, stored, now, stored, now);
}

int lp_acct_engine_check_partitions(lp_acct_engine_t *e, int32_t partitions, char *errstr,
                                    size_t errstr_size) {
    for (int32_t q = 0; q < partitions; q++) {
        int64_t stored = -1;
        if (lp_store_get_offset(e->store, lp_ae_spart(q), LP_ACCOUNT_PARTITIONS_OFFSET, &stored) !=
            LP_OK) {
            snprintf(errstr, errstr_size, "account partition %" PRId32 ": read offsets: %s", q,
                     e->store->errstr);
            return LP_ACCT_UNCHECKED;
        }
        if (stored >= 0 && stored != partitions) {
            count_mismatch(errstr, errstr_size, q, stored, partitions);
            return LP_ERR;
        }
    }
    return LP_OK;
}

/* The partition count recorded in account partition q (epoch: just fenced): written when none
 * is, refused when another. */
static int record_partitions(lp_acct_engine_t *e, int32_t q, int64_t epoch) {
    int64_t stored = -1;
    if (e->partitions <= 0) {
        return LP_OK;
    }
    if (lp_store_get_offset(e->store, lp_ae_spart(q), LP_ACCOUNT_PARTITIONS_OFFSET, &stored) !=
        LP_OK) {
        return lp_ae_fail(e, q, "read offsets: %s", e->store->errstr);
    }
    if (stored == e->partitions) {
        return LP_OK;
    }
    if (stored >= 0) {
        count_mismatch(e->errstr, sizeof(e->errstr), q, stored, e->partitions);
        return LP_ERR;
    }
    lp_store_offset_t off = {LP_ACCOUNT_PARTITIONS_OFFSET, e->partitions, -1};
    lp_store_batch_t b = {
        .partition = lp_ae_spart(q), .epoch = epoch, .noffsets = 1, .offsets = &off};
    int rc = lp_store_commit(e->store, &b);
    if (rc != LP_OK && rc != LP_STORE_DUPLICATE) {
        return lp_ae_fail(e, q, "record the partition count: %s", e->store->errstr);
    }
    return LP_OK;
}

int lp_acct_engine_assign(lp_acct_engine_t *e, int32_t q, int64_t *offset) {
    int64_t epoch = 0, applied = -1;
    *offset = -1;
    if (q < 0 || q >= LP_PARTITIONS_MAX) {
        snprintf(e->errstr, sizeof(e->errstr), "account partition %" PRId32 " out of range", q);
        return LP_ERR;
    }
    part_free(e->parts[q]);
    e->parts[q] = NULL;
    apart_t *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->buf = lp_acct_stage_new(e->rules)) == NULL) {
        part_free(p);
        return lp_ae_fail(e, q, "out of memory");
    }
    if (lp_store_fence(e->store, lp_ae_spart(q), &epoch) != LP_OK ||
        lp_store_get_offset(e->store, lp_ae_spart(q), e->opts.members_topic, offset) != LP_OK ||
        lp_store_get_offset(e->store, lp_ae_spart(q), APPLIED_TOPIC, &applied) != LP_OK) {
        part_free(p);
        return lp_ae_fail(e, q, "fence and offsets: %s", e->store->errstr);
    }
    if (record_partitions(e, q, epoch) != LP_OK) {
        part_free(p);
        return LP_ERR;
    }
    const char *key = LP_ACCOUNT_APPLIED_KEY;
    lp_store_loaded_t got = {0};
    if (lp_store_load(e->store, lp_ae_spart(q), 1, &key, &got) != LP_OK) {
        part_free(p);
        return lp_ae_fail(e, q, "load the last applied record: %s", e->store->errstr);
    }
    if (got.n == 1 && got.data[0] != NULL) {
        lp_member_msg_t last;
        char why[128];
        if (lp_member_msg_decode(&last, got.data[0], got.len[0], why, sizeof(why)) != LP_OK) {
            part_free(p);
            return lp_ae_fail(e, q, "the stored last applied record: %s", why);
        }
        lp_acct_stage_set_last(p->buf, &last);
    }
    lp_store_loaded_clear(&got);
    p->epoch = epoch;
    p->stored_offset = *offset;
    p->next_read = -1;
    p->applied = applied;
    p->swept = INT64_MIN;
    e->parts[q] = p;
    return LP_OK;
}

void lp_acct_engine_revoke(lp_acct_engine_t *e, int32_t q) {
    if (q >= 0 && q < LP_PARTITIONS_MAX) {
        part_free(e->parts[q]);
        e->parts[q] = NULL;
    }
}

typedef struct {
    lp_acct_engine_t *e;
    apart_t *p;
    int64_t offset;
} add_ctx_t;

static int add_one(void *ctx, const lp_member_msg_t *msg) {
    add_ctx_t *c = ctx;
    lp_member_msg_t m = *msg;
    m.offset = c->offset;
    const lp_acct_stage_stats_t *bs = lp_acct_stage_stats(c->p->buf);
    uint64_t copies = bs->copies, late = bs->late;
    if (lp_acct_stage_add(c->p->buf, &m) != LP_OK) {
        return LP_ERR;
    }
    /* After a restart the records between the stored offset and the last applied one are read
     * again: ordered before it, they are copies too (a stage 1 keeping its marks sends nothing
     * ordered before what a watermark released). */
    c->e->st.copies += (bs->copies - copies) + (bs->late - late);
    if (m.type == LP_MW_MARK) {
        c->e->st.marks++;
    } else {
        c->e->st.records++;
    }
    return LP_OK;
}

int lp_acct_engine_add(lp_acct_engine_t *e, int32_t q, const uint8_t *value, size_t len,
                       int64_t offset, char *why, size_t why_size) {
    if (!lp_acct_engine_owns(e, q)) {
        snprintf(why, why_size, "account partition %" PRId32 " is not owned", q);
        return LP_ERR;
    }
    apart_t *p = e->parts[q];
    if (offset + 1 > p->next_read) {
        p->next_read = offset + 1;
    }
    add_ctx_t c = {e, p, offset};
    snprintf(why, why_size, "out of memory");
    if (lp_member_value_foreach(value, len, add_one, &c, why, why_size) != LP_OK) {
        e->st.malformed++;
        return LP_ERR;
    }
    return LP_OK;
}

int64_t lp_acct_engine_watermark(const lp_acct_engine_t *e, int32_t q) {
    return lp_acct_engine_owns(e, q) ? lp_acct_stage_watermark(e->parts[q]->buf) : INT64_MIN;
}

uint64_t lp_acct_engine_buffered(const lp_acct_engine_t *e, int32_t q) {
    return lp_acct_engine_owns(e, q) ? lp_acct_stage_stats(e->parts[q]->buf)->buffered : 0;
}

bool lp_acct_engine_ready(const lp_acct_engine_t *e, int32_t q) {
    if (!lp_acct_engine_owns(e, q)) {
        return false;
    }
    const apart_t *p = e->parts[q];
    int64_t w = lp_acct_stage_watermark(p->buf);
    return w != INT64_MIN && (lp_acct_stage_next_st(p->buf) < w || w > p->swept);
}

int lp_acct_engine_get(lp_acct_engine_t *e, int32_t q, const char *key, lp_account_state_t *out) {
    lp_store_loaded_t got = {0};
    if (lp_store_load(e->store, lp_ae_spart(q), 1, &key, &got) != LP_OK) {
        return lp_ae_fail(e, q, "load: %s", e->store->errstr);
    }
    int d = got.n == 1 ? lp_ae_decode_account(got.data[0], got.len[0], out) : 0;
    lp_store_loaded_clear(&got);
    return d;
}
