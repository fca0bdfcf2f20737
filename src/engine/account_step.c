/* A step of an account partition (include/leadpulse/account_engine.h, lp_acct_engine_step): the
 * records the watermark releases and the stale timers due, applied to the accounts they touch
 * (from the cache, else loaded in one round trip) in the order of docs/rules.md "Order of member
 * records", then one atomic commit of the accounts, their timers, the account hand-offs (outbox)
 * and where the partition stands. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/account_engine_internal.h"
#include "leadpulse/engine.h"
#include "leadpulse/member_wire.h"

void lp_ae_step_clear(lp_acct_engine_t *e) {
    for (size_t i = 0; i < e->naccts; i++) {
        free(e->accts[i].key);
        lp_account_free(&e->accts[i].a);
    }
    e->naccts = 0;
    acct_table_clear(&e->index, NULL);
    for (size_t i = 0; i < e->nouts; i++) {
        free(e->outs[i].key);
        free(e->outs[i].value);
    }
    e->nouts = 0;
}

/* ---- a step's accounts -------------------------------------------------------------------- */

static acct_t *acct_find(lp_acct_engine_t *e, const char *key) {
    uintptr_t i = (uintptr_t)acct_table_get(&e->index, key);
    return i > 0 ? &e->accts[i - 1] : NULL;
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
    return acct_table_put(&e->index, key, (void *)(uintptr_t)e->naccts);
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
        return lp_ae_fail(e, q, "out of memory");
    }
    size_t nload = 0;
    for (size_t i = 0; i < e->naccts; i++) {
        acct_t *a = &e->accts[i];
        lp_account_state_t *c = lp_ae_cache_take(p, a->key);
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
    int rc = nload > 0 ? lp_store_load(e->store, lp_ae_spart(q), nload, keys, &got) : LP_OK;
    free(keys);
    if (rc != LP_OK) {
        free(which);
        return lp_ae_fail(e, q, "load accounts: %s", e->store->errstr);
    }
    for (size_t w = 0; w < nload && w < got.n; w++) {
        size_t i = which[w];
        int d = lp_ae_decode_account(got.data[w], got.len[w], &e->accts[i].a);
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
            return lp_ae_fail(e, q, "cannot encode the hand-off of account %s", f->account);
        }
        if (e->nouts == e->cap_outs) {
            size_t cap = e->cap_outs ? e->cap_outs * 2 : 16;
            out_t *o = realloc(e->outs, cap * sizeof(*o));
            if (o == NULL) {
                return lp_ae_fail(e, q, "out of memory");
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
            return lp_ae_fail(e, q, "out of memory");
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
        return lp_ae_fail(e, q, "timers of %s failed", a->key);
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
    static const uint8_t tombstone[1] = {LP_ACCOUNT_TOMBSTONE};
    uint8_t last_buf[LP_MEMBER_WIRE_MAX];
    if (leads == NULL || timers == NULL || bufs == NULL || outbox == NULL) {
        lp_ae_fail(e, q, "out of memory");
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
                lp_ae_fail(e, q, "cannot encode account %s", a->key);
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
            lp_ae_fail(e, q, "cannot encode the last applied record");
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
        .partition = lp_ae_spart(q),
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
        lp_ae_fail(e, q, "a commit of an earlier try was applied; reading the partition again");
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
        lp_ae_fail(e, q, "fenced: %s", e->store->errstr);
    } else if (rc == LP_STORE_MOVED) {
        e->st.moved++;
        lp_ae_fail(e, q, "the store lost writes: %s", e->store->errstr);
    } else {
        e->st.commit_failures++;
        lp_ae_fail(e, q, "commit: %s", e->store->errstr);
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
            return lp_ae_fail(e, q, "out of memory");
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
    lp_ae_step_clear(e);
    int rc = LP_ERR;
    if (bound > p->swept &&
        lp_store_due(e->store, lp_ae_spart(q), bound, e->opts.step_timers, &ndue, &due) != LP_OK) {
        lp_ae_fail(e, q, "due timers: %s", e->store->errstr);
        goto undo;
    }
    if (n == 0 && ndue == 0) {
        p->swept = bound > p->swept ? bound : p->swept;
        return LP_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (acct_add(e, e->popped[i].rec.account, false) != LP_OK) {
            lp_ae_fail(e, q, "out of memory");
            goto undo;
        }
    }
    for (size_t i = 0; i < ndue; i++) {
        if (acct_add(e, due[i], true) != LP_OK) {
            lp_ae_fail(e, q, "out of memory");
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
            lp_ae_fail(e, q, "account %s refused a record", a->key);
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
            lp_ae_cache_put(p, e->accts[i].key, c);
        }
        if (ndue < e->opts.step_timers && bound > p->swept) {
            p->swept = bound;
        }
        lp_ae_step_clear(e);
        return LP_OK;
    }
    if (rc == LP_STORE_FENCED || rc == LP_STORE_MOVED) {
        lp_ae_step_clear(e);
        lp_acct_engine_revoke(e, q);
        return rc;
    }
undo:
    lp_ae_step_clear(e);
    if (lp_acct_stage_unpop(p->buf, e->popped, n, had_prev ? &prev : NULL) != LP_OK) {
        /* cannot put them back: drop the partition, the next owner reads them again */
        lp_acct_engine_revoke(e, q);
        return LP_STORE_MOVED;
    }
    return LP_ERR;
}
