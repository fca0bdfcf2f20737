/* Stage 2 over the store (include/leadpulse/account_engine.h): per account partition, the
 * ordering buffer of account_stage.c, and steps that load the accounts they touch, apply records
 * and timers in the order of docs/rules.md "Order of member records", and commit atomically. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadpulse/account_engine.h"
#include "leadpulse/account_stage.h"
#include "leadpulse/engine.h"
#include "leadpulse/hash.h"
#include "leadpulse/member_wire.h"

#define APPLIED_TOPIC "@applied"
#define TOMBSTONE 0x00

typedef struct {
    int64_t epoch; /* 0: not owned */
    lp_acct_stage_t *buf;
    int64_t stored_offset; /* the members topic's offset stored (-1: none) */
    int64_t next_read;     /* the offset after the highest record read (-1: none) */
    int64_t applied;       /* records applied, as stored under "@applied" (-1: none) */
    int64_t swept;         /* timers due at or before this fired (INT64_MIN: none yet) */
    /* The accounts as last committed (decoded), so that a step need not load and decode them:
     * taken out while a step uses them, put back once its commit succeeded (a failed step
     * drops them: they are loaded from the store next time). Bounded: when it holds more than
     * ACCT_CACHE_MEMBERS members it is emptied. */
    struct cached *cache;
    size_t cache_cap, cache_used; /* slots, slots taken (entries and tombstones) */
    int64_t cache_members;
} apart_t;

#define ACCT_CACHE_MEMBERS 200000
#define TOMB ((char *)1)

struct cached {
    char *key; /* NULL: free; TOMB: removed */
    lp_account_state_t *a;
};

typedef struct {
    char *key;
    lp_account_state_t a;
    bool changed;
    bool from_due;      /* the store listed its timer as due */
    int64_t due_stored; /* its timer in the store when loaded (-1: unknown) */
} acct_t;

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
    out_t *outs;
    size_t nouts, cap_outs;
    lp_account_fact_t facts[LP_ACCOUNT_APPLY_FACTS];
};

static int fail(lp_acct_engine_t *e, const char *fmt, const char *a, int32_t q) {
    char msg[LP_ERRSTR * 2];
    int n = snprintf(msg, sizeof(msg), "%s", fmt);
    const char *at = strstr(msg, "%s");
    if (at != NULL && n > 0) {
        /* fmt holds one %s: splice a in (bounded) */
        char tail[LP_ERRSTR];
        snprintf(tail, sizeof(tail), "%s", at + 2);
        snprintf(msg + (at - msg), sizeof(msg) - (size_t)(at - msg), "%.400s%s", a, tail);
    }
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

static void cache_clear(apart_t *p) {
    for (size_t i = 0; i < p->cache_cap; i++) {
        if (p->cache[i].key != NULL && p->cache[i].key != TOMB) {
            free(p->cache[i].key);
            lp_account_free(p->cache[i].a);
            free(p->cache[i].a);
        }
    }
    free(p->cache);
    p->cache = NULL;
    p->cache_cap = p->cache_used = 0;
    p->cache_members = 0;
}

static size_t cache_hash(const char *key) {
    return (size_t)lp_hash64(key, strlen(key), 0x63616368u /* "cach" */);
}

/* Takes the cached account of key out of the cache (the caller owns it), or NULL. */
static lp_account_state_t *cache_take(apart_t *p, const char *key) {
    if (p->cache_cap == 0) {
        return NULL;
    }
    for (size_t j = cache_hash(key) & (p->cache_cap - 1);; j = (j + 1) & (p->cache_cap - 1)) {
        struct cached *c = &p->cache[j];
        if (c->key == NULL) {
            return NULL;
        }
        if (c->key != TOMB && strcmp(c->key, key) == 0) {
            lp_account_state_t *a = c->a;
            free(c->key);
            c->key = TOMB;
            c->a = NULL;
            p->cache_members -= a->nmembers;
            return a;
        }
    }
}

/* Puts an account into the cache (taking it over); on no memory it is freed. */
static void cache_put(apart_t *p, const char *key, lp_account_state_t *a) {
    if (p->cache_members + a->nmembers > ACCT_CACHE_MEMBERS) {
        cache_clear(p);
    }
    if ((p->cache_used + 1) * 2 > p->cache_cap) {
        size_t cap = p->cache_cap ? p->cache_cap * 2 : 256;
        struct cached *t = calloc(cap, sizeof(*t));
        if (t == NULL) {
            lp_account_free(a);
            free(a);
            return;
        }
        size_t used = 0;
        for (size_t i = 0; i < p->cache_cap; i++) {
            struct cached *c = &p->cache[i];
            if (c->key != NULL && c->key != TOMB) {
                size_t j = cache_hash(c->key) & (cap - 1);
                while (t[j].key != NULL) {
                    j = (j + 1) & (cap - 1);
                }
                t[j] = *c;
                used++;
            }
        }
        free(p->cache);
        p->cache = t;
        p->cache_cap = cap;
        p->cache_used = used;
    }
    char *k = strdup(key);
    if (k == NULL) {
        lp_account_free(a);
        free(a);
        return;
    }
    size_t j = cache_hash(key) & (p->cache_cap - 1);
    while (p->cache[j].key != NULL && p->cache[j].key != TOMB) {
        j = (j + 1) & (p->cache_cap - 1);
    }
    if (p->cache[j].key == NULL) {
        p->cache_used++;
    }
    p->cache[j].key = k;
    p->cache[j].a = a;
    p->cache_members += a->nmembers;
}

static void part_free(apart_t *p) {
    if (p != NULL) {
        lp_acct_stage_free(p->buf);
        cache_clear(p);
        free(p);
    }
}

static void step_clear(lp_acct_engine_t *e) {
    for (size_t i = 0; i < e->naccts; i++) {
        free(e->accts[i].key);
        lp_account_free(&e->accts[i].a);
    }
    e->naccts = 0;
    for (size_t i = 0; i < e->nouts; i++) {
        free(e->outs[i].key);
        free(e->outs[i].value);
    }
    e->nouts = 0;
}

void lp_acct_engine_destroy(lp_acct_engine_t *e) {
    if (e == NULL) {
        return;
    }
    for (int32_t q = 0; q < LP_PARTITIONS_MAX; q++) {
        part_free(e->parts[q]);
    }
    step_clear(e);
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

static int32_t spart(int32_t q) {
    return LP_ACCOUNT_PARTITION_BASE + q;
}

/* Decodes a stored account value: 1 an account, 0 none (absent or a tombstone), LP_ERR corrupt. */
static int decode_account(const uint8_t *data, size_t len, lp_account_state_t *a) {
    if (data == NULL || len == 0 || (len == 1 && data[0] == TOMBSTONE)) {
        return 0;
    }
    return lp_account_decode(a, data, len) == LP_OK ? 1 : LP_ERR;
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
        return fail(e, "%s", "out of memory", q);
    }
    if (lp_store_fence(e->store, spart(q), &epoch) != LP_OK ||
        lp_store_get_offset(e->store, spart(q), e->opts.members_topic, offset) != LP_OK ||
        lp_store_get_offset(e->store, spart(q), APPLIED_TOPIC, &applied) != LP_OK) {
        part_free(p);
        return fail(e, "fence and offsets: %s", e->store->errstr, q);
    }
    const char *key = LP_ACCOUNT_APPLIED_KEY;
    lp_store_loaded_t got = {0};
    if (lp_store_load(e->store, spart(q), 1, &key, &got) != LP_OK) {
        part_free(p);
        return fail(e, "load the last applied record: %s", e->store->errstr, q);
    }
    if (got.n == 1 && got.data[0] != NULL) {
        lp_member_msg_t last;
        char why[128];
        if (lp_member_msg_decode(&last, got.data[0], got.len[0], why, sizeof(why)) != LP_OK) {
            part_free(p);
            return fail(e, "the stored last applied record: %s", why, q);
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

/* ---- a step's accounts -------------------------------------------------------------------- */

static acct_t *acct_find(lp_acct_engine_t *e, const char *key) {
    for (size_t i = 0; i < e->naccts; i++) {
        if (strcmp(e->accts[i].key, key) == 0) {
            return &e->accts[i];
        }
    }
    return NULL;
}

static int acct_add(lp_acct_engine_t *e, const char *key, bool from_due) {
    acct_t *found = acct_find(e, key);
    if (found != NULL) {
        found->from_due |= from_due;
        return LP_OK;
    }
    if (e->naccts == e->cap_accts) {
        size_t cap = e->cap_accts ? e->cap_accts * 2 : 64;
        acct_t *a = realloc(e->accts, cap * sizeof(*a));
        if (a == NULL) {
            return LP_ERR;
        }
        e->accts = a;
        e->cap_accts = cap;
    }
    acct_t *a = &e->accts[e->naccts];
    memset(a, 0, sizeof(*a));
    lp_account_init(&a->a);
    if ((a->key = strdup(key)) == NULL) {
        return LP_ERR;
    }
    a->due_stored = -1;
    a->from_due = from_due;
    e->naccts++;
    return LP_OK;
}

static int load_accounts(lp_acct_engine_t *e, int32_t q) {
    apart_t *p = e->parts[q];
    if (e->naccts == 0) {
        return LP_OK;
    }
    const char **keys = malloc(e->naccts * sizeof(*keys));
    size_t *which = malloc(e->naccts * sizeof(*which));
    if (keys == NULL || which == NULL) {
        free(keys);
        free(which);
        return fail(e, "%s", "out of memory", q);
    }
    size_t nload = 0;
    for (size_t i = 0; i < e->naccts; i++) {
        acct_t *a = &e->accts[i];
        lp_account_state_t *c = cache_take(p, a->key);
        if (c != NULL) {
            lp_account_free(&a->a);
            a->a = *c; /* its arrays move over */
            free(c);
            a->due_stored = a->a.nmembers > 0 ? lp_account_next_deadline(&a->a) : 0;
            if (a->from_due) {
                a->due_stored = -1;
                a->changed = true;
            }
            continue;
        }
        which[nload] = i;
        keys[nload++] = a->key;
    }
    lp_store_loaded_t got = {0};
    int rc = nload > 0 ? lp_store_load(e->store, spart(q), nload, keys, &got) : LP_OK;
    free(keys);
    if (rc != LP_OK) {
        free(which);
        return fail(e, "load accounts: %s", e->store->errstr, q);
    }
    for (size_t w = 0; w < nload && w < got.n; w++) {
        size_t i = which[w];
        int d = decode_account(got.data[w], got.len[w], &e->accts[i].a);
        if (d == LP_ERR) {
            /* A value this version cannot read: the account starts afresh (counted). */
            e->st.corrupt++;
            lp_account_free(&e->accts[i].a);
            e->accts[i].changed = true;
        }
        e->accts[i].due_stored = d == 1 ? lp_account_next_deadline(&e->accts[i].a) : 0;
        if (e->accts[i].from_due) {
            /* Its timer entry is due: whatever fires, it is rewritten (or removed). */
            e->accts[i].due_stored = -1;
            e->accts[i].changed = true;
        }
    }
    lp_store_loaded_clear(&got);
    free(which);
    return LP_OK;
}

static int add_facts(lp_acct_engine_t *e, int32_t q, size_t n) {
    static uint8_t buf[LP_JSON_ACCOUNT_FACT_MAX > LP_AVRO_ACCOUNT_FACT_MAX
                           ? LP_JSON_ACCOUNT_FACT_MAX
                           : LP_AVRO_ACCOUNT_FACT_MAX];
    for (size_t i = 0; i < n; i++) {
        const lp_account_fact_t *f = &e->facts[i];
        size_t len =
            e->opts.out_format == LP_FORMAT_JSON
                ? lp_json_encode_account_fact(f, (char *)buf, sizeof(buf))
                : lp_avro_encode_account_fact(e->codec, f, e->opts.out_framing, buf, sizeof(buf));
        if (len == 0) {
            return fail(e, "cannot encode the hand-off of account %s", f->account, q);
        }
        if (e->nouts == e->cap_outs) {
            size_t cap = e->cap_outs ? e->cap_outs * 2 : 16;
            out_t *o = realloc(e->outs, cap * sizeof(*o));
            if (o == NULL) {
                return fail(e, "%s", "out of memory", q);
            }
            e->outs = o;
            e->cap_outs = cap;
        }
        out_t *o = &e->outs[e->nouts];
        memset(o, 0, sizeof(*o));
        o->kind =
            f->kind == LP_ACCOUNT_FACT_QUALIFIED ? LP_OUT_ACCOUNT_QUALIFIED : LP_OUT_ACCOUNT_STALE;
        o->key = strdup(f->account);
        o->value = malloc(len);
        if (o->key == NULL || o->value == NULL) {
            free(o->key);
            free(o->value);
            return fail(e, "%s", "out of memory", q);
        }
        memcpy(o->value, buf, len);
        o->value_len = len;
        int m = snprintf(o->meta, sizeof(o->meta),
                         "event_type=%s\nmodel_id=%s\nmodel_version=%s\nevent_ts=%" PRId64 "\n",
                         f->kind == LP_ACCOUNT_FACT_QUALIFIED ? "AccountQualified" : "AccountStale",
                         f->model_id, f->model_version, f->ts_ms);
        o->meta_len = m > 0 && (size_t)m < sizeof(o->meta) ? (size_t)m : strlen(o->meta);
        snprintf(o->event_id, sizeof(o->event_id), "%s", f->event_id);
        e->nouts++;
        if (f->kind == LP_ACCOUNT_FACT_QUALIFIED) {
            e->st.qualified++;
        } else {
            e->st.stale++;
        }
    }
    return LP_OK;
}

/* Fires a's timers due at or before now. */
static int fire(lp_acct_engine_t *e, int32_t q, acct_t *a, int64_t now) {
    int64_t due = lp_account_next_deadline(&a->a);
    size_t n = 0;
    if (a->a.nmembers == 0 || due == 0 || due > now) {
        return LP_OK;
    }
    if (lp_account_fire_timers(&a->a, e->rules, now, e->facts, LP_ACCOUNT_TIMER_FACTS, &n) ==
        LP_ERR) {
        return fail(e, "timers of %s failed", a->key, q);
    }
    a->changed = true;
    return add_facts(e, q, n);
}

/* ---- a step -------------------------------------------------------------------------------- */

static int commit(lp_acct_engine_t *e, int32_t q, size_t napplied, int64_t low) {
    apart_t *p = e->parts[q];
    size_t nleads = 0, ntimers = 0;
    int rc = LP_ERR;
    lp_store_lead_t *leads = calloc(e->naccts + 1, sizeof(*leads));
    lp_store_timer_t *timers = calloc(e->naccts + 1, sizeof(*timers));
    uint8_t **bufs = calloc(e->naccts + 1, sizeof(*bufs));
    lp_store_outbox_t *outbox = calloc(e->nouts + 1, sizeof(*outbox));
    static const uint8_t tombstone[1] = {TOMBSTONE};
    uint8_t last_buf[LP_MEMBER_WIRE_MAX];
    if (leads == NULL || timers == NULL || bufs == NULL || outbox == NULL) {
        fail(e, "%s", "out of memory", q);
        goto done;
    }
    for (size_t i = 0; i < e->naccts; i++) {
        acct_t *a = &e->accts[i];
        if (!a->changed) {
            continue;
        }
        leads[nleads].lead_id = a->key;
        if (a->a.nmembers == 0) {
            leads[nleads].data = tombstone;
            leads[nleads].len = 1;
        } else {
            size_t cap = lp_account_encode_bound(&a->a);
            bufs[i] = malloc(cap);
            size_t len = bufs[i] != NULL ? lp_account_encode(&a->a, bufs[i], cap) : 0;
            if (len == 0) {
                fail(e, "cannot encode account %s", a->key, q);
                goto done;
            }
            leads[nleads].data = bufs[i];
            leads[nleads].len = len;
        }
        nleads++;
        int64_t due = a->a.nmembers > 0 ? lp_account_next_deadline(&a->a) : 0;
        if (due != a->due_stored) {
            timers[ntimers].lead_id = a->key;
            timers[ntimers].due_ms = due;
            ntimers++;
        }
    }
    const lp_member_msg_t *last = lp_acct_stage_last(p->buf);
    if (napplied > 0 && last != NULL) {
        size_t len = lp_member_msg_encode(last, last_buf, sizeof(last_buf));
        if (len == 0) {
            fail(e, "%s", "cannot encode the last applied record", q);
            goto done;
        }
        leads[nleads].lead_id = LP_ACCOUNT_APPLIED_KEY;
        leads[nleads].data = last_buf;
        leads[nleads].len = len;
        nleads++;
    }
    for (size_t i = 0; i < e->nouts; i++) {
        const out_t *o = &e->outs[i];
        outbox[i].kind = o->kind;
        outbox[i].key = o->key;
        outbox[i].key_len = strlen(o->key);
        outbox[i].value = o->value;
        outbox[i].value_len = o->value_len;
        outbox[i].event_id = o->event_id;
        outbox[i].meta = o->meta;
        outbox[i].meta_len = o->meta_len;
    }
    int64_t applied_before = p->applied < 0 ? 0 : p->applied;
    lp_store_offset_t offs[2] = {
        {e->opts.members_topic, low >= 0 ? low : p->stored_offset, p->stored_offset},
        {APPLIED_TOPIC, applied_before + (int64_t)napplied, p->applied},
    };
    size_t noffs = low >= 0 || p->stored_offset >= 0 ? 2 : 1;
    lp_store_offset_t *use = noffs == 2 ? offs : &offs[1];
    lp_store_batch_t batch = {
        .partition = spart(q),
        .epoch = p->epoch,
        .nleads = nleads,
        .leads = leads,
        .ntimers = ntimers,
        .timers = timers,
        .noffsets = noffs,
        .offsets = use,
        .noutbox = e->nouts,
        .outbox = outbox,
    };
    rc = lp_store_commit(e->store, &batch);
    if (rc == LP_STORE_DUPLICATE) {
        /* An earlier try of a step was committed (its reply lost) and this one is not the same
         * step (the records were put back and taken again): what the store holds is the truth,
         * so the partition is read again from it, as when it lost writes. */
        e->st.moved++;
        fail(e, "%s", "a commit of an earlier try was applied; reading the partition again", q);
        rc = LP_STORE_MOVED;
    } else if (rc == LP_OK) {
        p->applied = applied_before + (int64_t)napplied;
        if (noffs == 2) {
            p->stored_offset = offs[0].next_offset;
        }
        e->st.steps++;
        rc = LP_OK;
    } else if (rc == LP_STORE_FENCED) {
        e->st.fenced++;
        fail(e, "fenced: %s", e->store->errstr, q);
    } else if (rc == LP_STORE_MOVED) {
        e->st.moved++;
        fail(e, "the store lost writes: %s", e->store->errstr, q);
    } else {
        e->st.commit_failures++;
        fail(e, "commit: %s", e->store->errstr, q);
    }
done:
    for (size_t i = 0; bufs != NULL && i < e->naccts; i++) {
        free(bufs[i]);
    }
    free(bufs);
    free(leads);
    free(timers);
    free(outbox);
    return rc;
}

int lp_acct_engine_step(lp_acct_engine_t *e, int32_t q, size_t *applied) {
    *applied = 0;
    if (!lp_acct_engine_owns(e, q)) {
        snprintf(e->errstr, sizeof(e->errstr), "account partition %" PRId32 " is not owned", q);
        return LP_STORE_FENCED;
    }
    apart_t *p = e->parts[q];
    int64_t w = lp_acct_stage_watermark(p->buf);
    if (w == INT64_MIN || !e->rules->accounts.enabled) {
        return LP_OK; /* (a reload that removed `accounts` stops stage 2 where it stands) */
    }
    const lp_member_msg_t *lastp = lp_acct_stage_last(p->buf);
    lp_member_msg_t prev;
    bool had_prev = lastp != NULL;
    if (had_prev) {
        prev = *lastp;
    }
    /* 1. the records the watermark releases */
    size_t n = 0;
    if (e->cap_popped < e->opts.step_records) {
        lp_member_msg_t *pp = realloc(e->popped, e->opts.step_records * sizeof(*pp));
        if (pp == NULL) {
            return fail(e, "%s", "out of memory", q);
        }
        e->popped = pp;
        e->cap_popped = e->opts.step_records;
    }
    while (n < e->opts.step_records && lp_acct_stage_pop(p->buf, w, &e->popped[n]) == 1) {
        n++;
    }
    /* 2. the timers: due at or before the watermark, but not after a record still buffered */
    int64_t next = lp_acct_stage_next_st(p->buf);
    int64_t bound = next < w ? next : w;
    size_t ndue = 0;
    const char **due = NULL;
    step_clear(e);
    int rc = LP_ERR;
    if (bound > p->swept &&
        lp_store_due(e->store, spart(q), bound, e->opts.step_timers, &ndue, &due) != LP_OK) {
        fail(e, "due timers: %s", e->store->errstr, q);
        goto undo;
    }
    if (n == 0 && ndue == 0) {
        p->swept = bound > p->swept ? bound : p->swept;
        return LP_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (acct_add(e, e->popped[i].rec.account, false) != LP_OK) {
            fail(e, "%s", "out of memory", q);
            goto undo;
        }
    }
    for (size_t i = 0; i < ndue; i++) {
        if (acct_add(e, due[i], true) != LP_OK) {
            fail(e, "%s", "out of memory", q);
            goto undo;
        }
    }
    /* (the store's ids are its own until its next call: acct_add copied them) */
    if (load_accounts(e, q) != LP_OK) {
        goto undo;
    }
    /* 3. apply in order */
    for (size_t i = 0; i < n; i++) {
        const lp_member_msg_t *m = &e->popped[i];
        acct_t *a = acct_find(e, m->rec.account);
        if (fire(e, q, a, m->st_ms) != LP_OK) {
            goto undo;
        }
        size_t nf = 0;
        int r = lp_account_apply(&a->a, e->rules, &m->rec, e->facts, LP_ACCOUNT_APPLY_FACTS, &nf);
        if (r == LP_ERR) {
            fail(e, "account %s refused a record", a->key, q);
            goto undo;
        }
        a->changed |= r == LP_OK;
        if (add_facts(e, q, nf) != LP_OK) {
            goto undo;
        }
    }
    for (size_t i = 0; i < e->naccts; i++) {
        if (fire(e, q, &e->accts[i], bound) != LP_OK) {
            goto undo;
        }
    }
    /* 4. commit */
    int64_t low = lp_acct_stage_low_offset(p->buf);
    if (low == INT64_MAX) {
        low = p->next_read;
    }
    rc = commit(e, q, n, low);
    if (rc == LP_OK) {
        e->st.applied += n;
        *applied = n;
        /* What the store holds now: into the cache. */
        for (size_t i = 0; i < e->naccts; i++) {
            lp_account_state_t *c = malloc(sizeof(*c));
            if (c == NULL) {
                break;
            }
            *c = e->accts[i].a;
            lp_account_init(&e->accts[i].a);
            cache_put(p, e->accts[i].key, c);
        }
        if (ndue < e->opts.step_timers && bound > p->swept) {
            p->swept = bound;
        }
        step_clear(e);
        return LP_OK;
    }
    if (rc == LP_STORE_FENCED || rc == LP_STORE_MOVED) {
        step_clear(e);
        lp_acct_engine_revoke(e, q);
        return rc;
    }
undo:
    step_clear(e);
    if (lp_acct_stage_unpop(p->buf, e->popped, n, had_prev ? &prev : NULL) != LP_OK) {
        /* cannot put them back: drop the partition, the next owner reads them again */
        lp_acct_engine_revoke(e, q);
        return LP_STORE_MOVED;
    }
    return LP_ERR;
}

int lp_acct_engine_get(lp_acct_engine_t *e, int32_t q, const char *key, lp_account_state_t *out) {
    lp_store_loaded_t got = {0};
    if (lp_store_load(e->store, spart(q), 1, &key, &got) != LP_OK) {
        return fail(e, "load: %s", e->store->errstr, q);
    }
    int d = got.n == 1 ? decode_account(got.data[0], got.len[0], out) : 0;
    lp_store_loaded_clear(&got);
    return d;
}
