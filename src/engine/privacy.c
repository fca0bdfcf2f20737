/* Erasure on request and suppression (docs/privacy.md). An erasure (a tombstone on the profiles
 * topic) deletes the lead's state, timer and undelivered outbox entries in the batch's atomic
 * commit, emits LeadErased, and records a suppression entry named by the keyed hash of the lead
 * id: later (or late) events of the lead are then dropped and counted, never dead-lettered (a
 * dead letter would keep the person's data). Each partition's entries are held in memory, loaded
 * on assignment; a batch's changes are an overlay applied to them once committed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "leadpulse/hash.h"

static int hash_cmp(const uint8_t a[16], const uint8_t b[16]) {
    return memcmp(a, b, 16);
}

static void hash_hex(const uint8_t h[16], char out[33]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[32] = '\0';
}

static int hex_hash(const char *hex, uint8_t out[16]) {
    for (int i = 0; i < 32; i++) {
        char c = hex[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) {
            return LP_ERR;
        }
        out[i / 2] = (uint8_t)(i % 2 == 0 ? d << 4 : out[i / 2] | d);
    }
    return hex[32] == '\0' ? LP_OK : LP_ERR;
}

/* Index of h in t, or of where it would go (*found false). */
static size_t table_find(const supp_table_t *t, const uint8_t h[16], bool *found) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = hash_cmp(t->e[mid].hash, h);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

static int table_set(supp_table_t *t, const uint8_t h[16], int64_t until_ms) {
    bool found;
    size_t at = table_find(t, h, &found);
    if (until_ms < 0) {
        if (found) {
            memmove(&t->e[at], &t->e[at + 1], (t->n - at - 1) * sizeof(*t->e));
            t->n--;
        }
        return LP_OK;
    }
    if (!found) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 16;
            supp_entry_t *e = realloc(t->e, cap * sizeof(*e));
            if (e == NULL) {
                return LP_ERR;
            }
            t->e = e;
            t->cap = cap;
        }
        memmove(&t->e[at + 1], &t->e[at], (t->n - at) * sizeof(*t->e));
        t->n++;
        memcpy(t->e[at].hash, h, 16);
    }
    t->e[at].until_ms = until_ms;
    return LP_OK;
}

void lp_eng_supp_drop(lp_engine_t *engine, int32_t partition) {
    if (engine->supp == NULL || partition < 0 || partition >= LP_PARTITIONS_MAX) {
        return;
    }
    supp_table_t *t = engine->supp[partition];
    if (t != NULL) {
        free(t->e);
        free(t);
        engine->supp[partition] = NULL;
    }
}

int lp_eng_supp_load(lp_engine_t *engine, int32_t partition) {
    size_t n = 0;
    const lp_store_suppress_t *entries = NULL;
    lp_eng_supp_drop(engine, partition);
    if (engine->store->ops->suppressed(engine->store, partition, &n, &entries) != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr),
                 "suppression entries of partition %" PRId32 ": %s", partition,
                 engine->store->errstr);
        return LP_ERR;
    }
    supp_table_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        goto oom;
    }
    engine->supp[partition] = t;
    for (size_t i = 0; i < n; i++) {
        uint8_t h[16];
        if (hex_hash(entries[i].hash, h) != LP_OK) {
            continue; /* the store checked the form; nothing else to do with a bad one */
        }
        if (table_set(t, h, entries[i].until_ms) != LP_OK) {
            goto oom;
        }
    }
    return LP_OK;
oom:
    snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
    return LP_ERR;
}

static void slot_hash(const lp_engine_t *engine, slot_t *slot) {
    if (!slot->hashed) {
        lp_siphash128(engine->opts.suppression_key, slot->id, strlen(slot->id), slot->hash);
        slot->hashed = true;
    }
}

/* The suppression in force for slot's lead: from the batch's changes (latest first), else the
 * partition's table. Returns true with *until_ms when there is one. */
static bool supp_lookup(lp_engine_t *engine, batch_t *b, slot_t *slot, int64_t *until_ms) {
    const supp_table_t *t = engine->supp[b->partition];
    if (b->nsupp == 0 && (t == NULL || t->n == 0)) {
        return false;
    }
    slot_hash(engine, slot);
    char hex[33];
    hash_hex(slot->hash, hex);
    for (size_t i = b->nsupp; i-- > 0;) {
        if (strcmp(b->supp[i].hash, hex) == 0) {
            *until_ms = b->supp[i].until_ms;
            return b->supp[i].until_ms >= 0;
        }
    }
    bool found = false;
    size_t at = t != NULL ? table_find(t, slot->hash, &found) : 0;
    if (found) {
        *until_ms = t->e[at].until_ms;
    }
    return found;
}

static int supp_add(lp_engine_t *engine, batch_t *b, slot_t *slot, int64_t until_ms) {
    if (b->nsupp == b->cap_supp) {
        size_t cap = b->cap_supp ? b->cap_supp * 2 : 16;
        lp_store_suppress_t *p = realloc(b->supp, cap * sizeof(*p));
        if (p == NULL) {
            snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
            return LP_ERR;
        }
        b->supp = p;
        b->cap_supp = cap;
    }
    slot_hash(engine, slot);
    hash_hex(slot->hash, b->supp[b->nsupp].hash);
    b->supp[b->nsupp].until_ms = until_ms;
    b->nsupp++;
    return LP_OK;
}

bool lp_eng_suppressed(lp_engine_t *engine, batch_t *b, slot_t *slot, const lp_event_t *event) {
    int64_t until = 0;
    if (!supp_lookup(engine, b, slot, &until)) {
        return false;
    }
    if (until == 0 || event->ts_ms < until) {
        return true;
    }
    /* The suppression ran out before this event: it ends, and the lead starts afresh. */
    return supp_add(engine, b, slot, -1) != LP_OK;
}

/* Drops the batch's outputs keyed by the erased lead (hand-offs and dead letters of it added
 * before the erasure): they must not reach Kafka. LeadErased records are kept. */
static void drop_outs_of(batch_t *b, const char *lead_id) {
    size_t len = strlen(lead_id);
    size_t kept = 0;
    for (size_t i = 0; i < b->nouts; i++) {
        const pending_out_t *o = &b->outs[i];
        /* LeadErased records stay: one per erasure request, however the batches fall. */
        bool of_lead = o->kind != LP_OUT_ERASED && o->key_len == len &&
                       memcmp(b->arena.buf + o->key_off, lead_id, len) == 0;
        if (!of_lead) {
            b->outs[kept++] = *o;
        }
    }
    b->nouts = kept;
}

static int erase(lp_engine_t *engine, batch_t *b, slot_t *slot, const lp_event_t *event) {
    bool had_state = !slot->fresh || slot->changed;
    int64_t ttl = engine->opts.suppression_ttl_ms;
    int64_t until = ttl > 0 ? event->ts_ms + ttl : 0;

    lp_lead_init(&slot->lead, engine->rules, slot->id);
    slot->changed = false;
    slot->fresh = true;
    slot->due_stored = 0; /* the commit's erasure removes the stored timer first */
    drop_outs_of(b, slot->id);
    if (!slot->erased) {
        if (b->nerase == b->cap_erase) {
            size_t cap = b->cap_erase ? b->cap_erase * 2 : 16;
            const char **p = realloc(b->erase_ids, cap * sizeof(*p));
            if (p == NULL) {
                snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
                return LP_ERR;
            }
            b->erase_ids = p;
            b->cap_erase = cap;
        }
        b->erase_ids[b->nerase++] = slot->id;
        slot->erased = true;
    }
    if (supp_add(engine, b, slot, until) != LP_OK) {
        return LP_ERR;
    }
    lp_fact_t *f = &engine->facts.fact[0];
    memset(f, 0, sizeof(*f));
    f->kind = LP_FACT_ERASED;
    lp_event_id_derive(f->event_id, slot->id, "erased", (uint32_t)((uint64_t)event->ts_ms >> 32),
                       (uint32_t)event->ts_ms);
    snprintf(f->lead_id, sizeof(f->lead_id), "%s", slot->id);
    f->ts_ms = event->ts_ms;
    f->had_state = had_state;
    f->suppressed_until_ms = until;
    snprintf(f->model_id, sizeof(f->model_id), "%s", engine->rules->model_id);
    snprintf(f->model_version, sizeof(f->model_version), "%s", engine->rules->model_version);
    engine->facts.n = 1;
    return lp_eng_add_facts(engine, b);
}

int lp_eng_apply_op(lp_engine_t *engine, batch_t *b, slot_t *slot, const lp_event_t *event) {
    if (event->op == LP_OP_ERASE) {
        return erase(engine, b, slot, event);
    }
    int64_t until;
    if (event->op == LP_OP_UNSUPPRESS && supp_lookup(engine, b, slot, &until)) {
        b->st.unsuppressed++;
        return supp_add(engine, b, slot, -1);
    }
    return LP_OK;
}

void lp_eng_supp_committed(lp_engine_t *engine, batch_t *b) {
    supp_table_t *t = engine->supp[b->partition];
    for (size_t i = 0; i < b->nerase; i++) {
        lp_cache_forget(engine->cache, b->partition, b->erase_ids[i]);
    }
    if (b->nsupp > 0 && t == NULL) {
        t = engine->supp[b->partition] = calloc(1, sizeof(*t));
    }
    for (size_t i = 0; t != NULL && i < b->nsupp; i++) {
        uint8_t h[16];
        if (hex_hash(b->supp[i].hash, h) != LP_OK ||
            table_set(t, h, b->supp[i].until_ms) != LP_OK) {
            /* Out of memory: forget the table; the next assignment reads it from the store. */
            lp_eng_supp_drop(engine, b->partition);
            lp_engine_revoke(engine, b->partition);
            return;
        }
    }
}
