/* Stage 1 of account qualification (docs/architecture.md "Accounts: the second stage",
 * docs/rules.md "Order of member records"): for every event applied to a lead that is in an
 * account, or was until the event, a member record (the lead's member view after the event) or
 * a leave goes to the outbox, in the lead's own atomic commit, keyed by the account key.
 *
 * Order. Each record carries an order time st = max(event time, P), where P is its source's
 * progress before the event, and the event then raises P to at least event time - lateness. So
 * every record a source sends after P reached a value is ordered at or after it, and a mark
 * stating P lets stage 2 apply everything ordered before the minimum of all sources' marks. A
 * member event at most `accounts.lateness` behind the latest event of its source keeps its own
 * time; an older one is ordered at P (its arrival). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "leadpulse/account.h"
#include "leadpulse/member_wire.h"

bool lp_eng_members_on(const lp_engine_t *engine) {
    return engine->progress != NULL && engine->rules->accounts.enabled;
}

const char *lp_eng_member_key(const lp_engine_t *engine, const slot_t *slot, char *key) {
    if (!lp_eng_members_on(engine)) {
        return NULL;
    }
    const lp_profile_update_t *p = &slot->lead.profile;
    return lp_account_of(engine->rules, p->account_id, p->email, key, LP_ACCOUNT_KEY_MAX + 1);
}

static int32_t source_of(const lp_engine_t *engine, const batch_t *b, const char *lead_id) {
    int32_t n = engine->opts.member_sources;
    if (n <= 0) {
        return b->partition;
    }
    return lp_partition_of(engine->opts.member_partitioner, lead_id, strlen(lead_id), n);
}

static int32_t source_count(const lp_engine_t *engine) {
    if (engine->opts.member_source_count > 0) {
        return engine->opts.member_source_count;
    }
    return engine->opts.member_sources > 0 ? engine->opts.member_sources : 1;
}

int lp_eng_member_advance(lp_engine_t *engine, batch_t *b, int32_t src, int64_t to) {
    if (to <= engine->progress[src]) {
        return LP_OK;
    }
    size_t i = 0;
    while (i < b->nprog && b->prog_src[i] != src) {
        i++;
    }
    if (i == b->nprog) {
        if (b->nprog == b->cap_prog) {
            size_t cap = b->cap_prog ? b->cap_prog * 2 : 8;
            int32_t *ps = realloc(b->prog_src, cap * sizeof(*ps));
            if (ps == NULL) {
                return LP_ERR;
            }
            b->prog_src = ps;
            int64_t *po = realloc(b->prog_old, cap * sizeof(*po));
            if (po == NULL) {
                return LP_ERR;
            }
            b->prog_old = po;
            b->cap_prog = cap;
        }
        b->prog_src[b->nprog] = src;
        b->prog_old[b->nprog] = engine->progress[src];
        b->nprog++;
    }
    engine->progress[src] = to;
    return LP_OK;
}

struct member_bundle {
    lp_member_bundle_t records;
    char key[LP_ACCOUNT_KEY_MAX + 1]; /* the first record's account (the entry's key) */
};

int lp_engine_set_member_targets(lp_engine_t *engine, int32_t count) {
    if (count < 1) {
        count = 1;
    }
    struct member_bundle *b = calloc((size_t)count, sizeof(*b));
    if (b == NULL) {
        return LP_ERR;
    }
    lp_eng_member_free(engine);
    engine->bundles = b;
    engine->ntargets = count;
    return LP_OK;
}

void lp_eng_member_free(lp_engine_t *engine) {
    for (int32_t t = 0; t < engine->ntargets; t++) {
        lp_member_bundle_free(&engine->bundles[t].records);
    }
    free(engine->bundles);
    engine->bundles = NULL;
    engine->ntargets = 0;
}

/* The bundle of target t into the outbox (nothing when empty). */
static int flush(lp_engine_t *engine, batch_t *b, int32_t t) {
    struct member_bundle *mb = &engine->bundles[t];
    if (mb->records.n == 0) {
        return LP_OK;
    }
    size_t cap = lp_member_bundle_bound(&mb->records);
    uint8_t *value = malloc(cap);
    size_t len = value != NULL ? lp_member_bundle_finish(&mb->records, value, cap) : 0;
    char meta[48];
    int m = snprintf(meta, sizeof(meta), "members_partition=%" PRId32 "\n", t);
    int rc = len > 0 ? lp_eng_add_out(b, LP_OUT_MEMBER, mb->key, strlen(mb->key), value, len, meta,
                                      (size_t)m, "")
                     : LP_ERR;
    free(value);
    lp_member_bundle_reset(&mb->records);
    if (rc != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
    }
    return rc;
}

static int put(lp_engine_t *engine, batch_t *b, const lp_member_msg_t *m) {
    if (m->type == LP_MW_MARK) {
        uint8_t buf[LP_MEMBER_WIRE_MAX];
        size_t n = lp_member_msg_encode(m, buf, sizeof(buf));
        if (n == 0 || lp_eng_add_out(b, LP_OUT_MARK, "", 0, buf, n, "", 0, "") != LP_OK) {
            snprintf(engine->errstr, sizeof(engine->errstr), "cannot add a mark");
            return LP_ERR;
        }
        b->st.member_marks++;
        return LP_OK;
    }
    if (engine->ntargets == 0 && lp_engine_set_member_targets(engine, 1) != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
        return LP_ERR;
    }
    const char *key = m->rec.account;
    int32_t t = engine->ntargets > 1
                    ? lp_partition_of(LP_PARTITIONER_CRC32, key, strlen(key), engine->ntargets)
                    : 0;
    struct member_bundle *mb = &engine->bundles[t];
    if (lp_member_bundle_bound(&mb->records) + LP_MEMBER_WIRE_MAX > LP_MEMBER_BUNDLE_BYTES &&
        flush(engine, b, t) != LP_OK) {
        return LP_ERR;
    }
    if (mb->records.n == 0) {
        snprintf(mb->key, sizeof(mb->key), "%s", key);
    }
    if (lp_member_bundle_add(&mb->records, m) != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "cannot add the member record of %s",
                 m->rec.lead_id);
        return LP_ERR;
    }
    b->st.member_records++;
    b->st.member_leaves += m->type == LP_MW_LEAVE;
    return LP_OK;
}

int lp_eng_member_after(lp_engine_t *engine, batch_t *b, slot_t *slot, const lp_event_t *event,
                        const char *old_key, const lp_member_before_t *before) {
    bool erased = before->erased;
    char key[LP_ACCOUNT_KEY_MAX + 1];
    const char *new_key = erased ? NULL : lp_eng_member_key(engine, slot, key);
    if (!lp_eng_members_on(engine) || (old_key == NULL && new_key == NULL)) {
        return LP_OK;
    }
    const lp_lead_t *lead = &slot->lead;
    int32_t src = source_of(engine, b, slot->id);
    int64_t p = engine->progress[src];
    lp_member_msg_t m;
    memset(&m, 0, sizeof(m));
    m.source = src;
    m.sources = source_count(engine);
    /* Ordered at the lead's latest event time (so a lead's records are in sequence order), or
     * at the source's progress when that is later. An erasure's leave: at the latest of the
     * erased lead's time and the request's. */
    int64_t t =
        erased ? (before->ref_ms > event->ts_ms ? before->ref_ms : event->ts_ms) : lead->ref_ms;
    m.st_ms = t > p ? t : p;
    if (t < p) {
        b->st.member_late++;
    }
    snprintf(m.rec.lead_id, sizeof(m.rec.lead_id), "%s", slot->id);
    /* An erased lead's state is gone (its sequence with it): its leave takes the number after
     * the last one sent, and stage 2 forgets the lead at a leave, so its next record (numbered
     * from 1 again) joins whatever its number. */
    m.rec.seq = erased ? before->seq + 1 : ++slot->lead.member_seq;
    m.rec.event_ms = event->ts_ms;
    if (old_key != NULL && (new_key == NULL || strcmp(old_key, new_key) != 0)) {
        m.type = LP_MW_LEAVE;
        m.rec.leave = true;
        snprintf(m.rec.account, sizeof(m.rec.account), "%s", old_key);
        if (put(engine, b, &m) != LP_OK) {
            return LP_ERR;
        }
    }
    if (new_key != NULL) {
        m.type = LP_MW_MEMBER;
        m.rec.leave = false;
        snprintf(m.rec.account, sizeof(m.rec.account), "%s", new_key);
        m.rec.e = lead->score;
        m.rec.ref_ms = lead->ref_ms;
        m.rec.role = lp_account_role(engine->rules, &lead->profile);
        m.rec.fit_grade = lead->fit_grade;
        m.rec.stage = lead->stage;
        m.rec.last_activity_ms = lead->last_activity_ms;
        m.rec.accepted_ms = lead->accepted_ms;
        m.rec.rejected_ms = lead->recycled_at_ms;
        if (put(engine, b, &m) != LP_OK) {
            return LP_ERR;
        }
    }
    slot->changed = true; /* its member sequence moved */
    int64_t lateness = engine->rules->accounts.lateness_ms;
    int64_t floor = event->ts_ms > INT64_MIN + lateness ? event->ts_ms - lateness : INT64_MIN;
    return lp_eng_member_advance(engine, b, src, floor < 0 ? 0 : floor);
}

int lp_eng_member_assign(lp_engine_t *engine, int32_t partition) {
    if (!lp_eng_members_on(engine) || engine->opts.member_sources > 0) {
        return LP_OK;
    }
    int64_t p = -1;
    if (lp_store_get_offset(engine->store, partition, LP_ENG_PROGRESS_TOPIC, &p) != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "progress of partition %" PRId32 ": %s",
                 partition, engine->store->errstr);
        return LP_ERR;
    }
    engine->progress[partition] = p >= 0 ? p : INT64_MIN;
    engine->marked[partition] = INT64_MIN; /* a new owner states its progress again */
    if (p >= 0 && lp_eng_poffs_set(engine, partition, LP_ENG_PROGRESS_TOPIC, p) != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "too many topics");
        return LP_ERR;
    }
    return LP_OK;
}

int lp_eng_member_marks(lp_engine_t *engine, batch_t *b) {
    if (!lp_eng_members_on(engine)) {
        return LP_OK;
    }
    /* The batch's bundles first: a mark must follow the records before it. */
    for (int32_t t = 0; t < engine->ntargets; t++) {
        if (flush(engine, b, t) != LP_OK) {
            return LP_ERR;
        }
    }
    /* The worker stores its partition's progress with the commit (a pseudo-topic offset: it only
     * grows, so a retried commit is recognised like the input offsets). */
    if (engine->opts.member_sources <= 0 && engine->progress[b->partition] >= 0 &&
        engine->progress[b->partition] !=
            lp_eng_poffs_get(engine, b->partition, LP_ENG_PROGRESS_TOPIC) &&
        b->noffsets < ENGINE_TOPICS) {
        b->offsets[b->noffsets].topic = LP_ENG_PROGRESS_TOPIC;
        b->offsets[b->noffsets].next_offset = engine->progress[b->partition];
        b->noffsets++;
    }
    if (b->restate && b->nprog == 0 && engine->opts.member_sources <= 0 &&
        engine->progress[b->partition] >= 0) {
        /* the progress did not move: state it as it is */
        lp_member_msg_t m;
        memset(&m, 0, sizeof(m));
        m.type = LP_MW_MARK;
        m.source = b->partition;
        m.sources = source_count(engine);
        m.st_ms = engine->progress[b->partition];
        return put(engine, b, &m);
    }
    for (size_t i = 0; i < b->nprog; i++) {
        int32_t src = b->prog_src[i];
        if ((!b->restate && engine->progress[src] <= engine->marked[src]) ||
            engine->progress[src] < 0) {
            continue;
        }
        lp_member_msg_t m;
        memset(&m, 0, sizeof(m));
        m.type = LP_MW_MARK;
        m.source = src;
        m.sources = source_count(engine);
        m.st_ms = engine->progress[src];
        if (put(engine, b, &m) != LP_OK) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

void lp_engine_set_member_source_count(lp_engine_t *engine, int32_t count) {
    engine->opts.member_source_count = count;
}

void lp_eng_member_end(lp_engine_t *engine, batch_t *b, bool committed) {
    /* (a batch that failed while applying may leave records in the bundles) */
    for (int32_t t = 0; t < engine->ntargets; t++) {
        lp_member_bundle_reset(&engine->bundles[t].records);
    }
    for (size_t i = b->nprog; i-- > 0;) {
        int32_t src = b->prog_src[i];
        if (committed) {
            if (engine->progress[src] >= 0) {
                engine->marked[src] = engine->progress[src];
            }
        } else {
            engine->progress[src] = b->prog_old[i];
        }
    }
    b->nprog = 0;
    b->restate = false;
}

int lp_engine_member_tick(lp_engine_t *engine, int32_t partition, int64_t now_ms, bool restate,
                          bool *marked) {
    *marked = false;
    if (!lp_engine_owns(engine, partition)) {
        return LP_STORE_FENCED;
    }
    if (!lp_eng_members_on(engine) || engine->opts.member_sources > 0) {
        return LP_OK;
    }
    int64_t lateness = engine->rules->accounts.lateness_ms;
    int64_t to = now_ms - lateness;
    int64_t last = engine->marked[partition];
    bool move = to >= 0 && to > engine->progress[partition] &&
                (last == INT64_MIN || to - last >= LP_ENG_MARK_EVERY_MS);
    if (!move && !(restate && engine->progress[partition] >= 0)) {
        return LP_OK;
    }
    batch_t *b = lp_eng_batch_take(engine, partition, 0);
    if (b == NULL) {
        return LP_ERR;
    }
    b->restate = true;
    if (move && lp_eng_member_advance(engine, b, partition, to) != LP_OK) {
        lp_eng_batch_end(engine, b, false);
        snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
        return LP_ERR;
    }
    b->n = 0;
    b->state = B_LOADED;
    int rc = lp_eng_run_batch(engine, b, NULL);
    *marked = rc == LP_OK;
    return rc;
}
