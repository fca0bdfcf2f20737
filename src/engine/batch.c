/* Building one batch: scratch growth, the stored offsets it states, lead slots, outputs, and the
 * atomic commit (engine/engine_internal.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "leadpulse/hash.h"

/* The batch map holds at most batch.max_events ids, so a fixed seed bounds a crafted pile-up. */
static uint64_t id_hash(const char *s) {
    return lp_hash64(s, strlen(s), 0x62617463u /* "batc" */);
}

static int arena_reserve(arena_t *a, size_t more) {
    if (a->len + more <= a->cap) {
        return LP_OK;
    }
    size_t cap = a->cap ? a->cap : 65536;
    while (cap < a->len + more) {
        cap *= 2;
    }
    uint8_t *buf = realloc(a->buf, cap);
    if (buf == NULL) {
        return LP_ERR;
    }
    a->buf = buf;
    a->cap = cap;
    return LP_OK;
}

static int arena_put(arena_t *a, const void *data, size_t len, size_t *off) {
    if (arena_reserve(a, len + 1) != LP_OK) {
        return LP_ERR;
    }
    *off = a->len;
    if (len > 0) {
        memcpy(a->buf + a->len, data, len);
    }
    a->buf[a->len + len] = '\0'; /* every entry is NUL-terminated for string use */
    a->len += len + 1;
    return LP_OK;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) {
        return LP_OK;
    }
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        n *= 2;
    }
    void *q = realloc(*p, n * elem);
    if (q == NULL) {
        return LP_ERR;
    }
    *p = q;
    *cap = n;
    return LP_OK;
}

int lp_eng_ensure_capacity(batch_t *b, size_t n) {
    if (n > b->cap_events) {
        size_t cap = b->cap_events;
        size_t cap2 = b->cap_events;
        size_t cap3 = b->cap_events;
        if (grow((void **)&b->events, &cap, n, sizeof(lp_event_t)) != LP_OK ||
            grow((void **)&b->event_slot, &cap2, n, sizeof(int)) != LP_OK ||
            grow((void **)&b->slots, &cap3, n, sizeof(slot_t)) != LP_OK) {
            return LP_ERR;
        }
        /* all three grew to the same size */
        b->cap_events = cap;
        b->cap_slots = cap;
        free(b->writes);
        free(b->timers);
        free(b->miss_ids);
        free(b->miss_slots);
        free(b->map);
        b->writes = calloc(cap, sizeof(*b->writes));
        b->timers = calloc(cap, sizeof(*b->timers));
        b->miss_ids = calloc(cap, sizeof(*b->miss_ids));
        b->miss_slots = calloc(cap, sizeof(*b->miss_slots));
        b->map_size = 16;
        while (b->map_size < cap * 2) {
            b->map_size <<= 1;
        }
        b->map = malloc(b->map_size * sizeof(int));
        if (b->writes == NULL || b->timers == NULL || b->miss_ids == NULL ||
            b->miss_slots == NULL || b->map == NULL) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

void lp_eng_poffs_clear(part_offsets_t *po) {
    if (po == NULL) {
        return;
    }
    for (size_t i = 0; i < po->n; i++) {
        free(po->topic[i]);
    }
    po->n = 0;
}

int64_t lp_eng_poffs_get(const lp_engine_t *engine, int32_t partition, const char *topic) {
    const part_offsets_t *po = engine->poffs[partition];
    for (size_t i = 0; po != NULL && i < po->n; i++) {
        if (strcmp(po->topic[i], topic) == 0) {
            return po->stored[i];
        }
    }
    return -1;
}

int lp_eng_poffs_set(lp_engine_t *engine, int32_t partition, const char *topic, int64_t offset) {
    part_offsets_t *po = engine->poffs[partition];
    if (po == NULL) {
        po = engine->poffs[partition] = calloc(1, sizeof(*po));
        if (po == NULL) {
            return LP_ERR;
        }
    }
    for (size_t i = 0; i < po->n; i++) {
        if (strcmp(po->topic[i], topic) == 0) {
            po->stored[i] = offset;
            return LP_OK;
        }
    }
    if (po->n == ENGINE_TOPICS || (po->topic[po->n] = strdup(topic)) == NULL) {
        return LP_ERR;
    }
    po->stored[po->n++] = offset;
    return LP_OK;
}

/* ---- batch building ---- */

void lp_eng_batch_reset(batch_t *b) {
    b->nslots = 0;
    b->nouts = 0;
    b->nerase = 0;
    b->nsupp = 0;
    b->arena.len = 0;
    memset(b->map, -1, b->map_size * sizeof(int));
}

/* Finds or adds the batch slot of a lead id. Returns the slot index. */
int lp_eng_slot_for(batch_t *b, const char *lead_id) {
    size_t mask = b->map_size - 1;
    size_t i = id_hash(lead_id) & mask;
    while (b->map[i] >= 0) {
        if (strcmp(b->slots[b->map[i]].id, lead_id) == 0) {
            return b->map[i];
        }
        i = (i + 1) & mask;
    }
    int s = (int)b->nslots++;
    slot_t *slot = &b->slots[s];
    memcpy(slot->id, lead_id, strlen(lead_id) + 1);
    slot->changed = false;
    slot->loaded = false;
    slot->fresh = false;
    slot->erased = false;
    slot->hashed = false;
    b->map[i] = s;
    return s;
}

int lp_eng_add_out(batch_t *b, int kind, const char *key, size_t key_len, const uint8_t *value,
                   size_t value_len, const char *meta, size_t meta_len, const char *event_id) {
    pending_out_t *o;
    if (grow((void **)&b->outs, &b->cap_outs, b->nouts + 1, sizeof(*o)) != LP_OK) {
        return LP_ERR;
    }
    o = &b->outs[b->nouts];
    o->kind = kind;
    if (arena_put(&b->arena, key, key_len, &o->key_off) != LP_OK ||
        arena_put(&b->arena, value, value_len, &o->value_off) != LP_OK ||
        arena_put(&b->arena, meta, meta_len, &o->meta_off) != LP_OK ||
        arena_put(&b->arena, event_id, strlen(event_id), &o->id_off) != LP_OK) {
        return LP_ERR;
    }
    o->key_len = key_len;
    o->value_len = value_len;
    o->meta_len = meta_len;
    b->nouts++;
    return LP_OK;
}

/* Header value: no newlines (they separate header lines). */
static void meta_clean(char *s) {
    for (; *s != '\0'; s++) {
        if (*s == '\n' || *s == '\r') {
            *s = ' ';
        }
    }
}

int lp_eng_add_dead_letter(lp_engine_t *engine, batch_t *b, const lp_engine_msg_t *msg,
                           const char *reason) {
    (void)engine;
    char meta[1024];
    char why[600];
    snprintf(why, sizeof(why), "%s", reason);
    meta_clean(why);
    int n = snprintf(meta, sizeof(meta),
                     "reason=%s\nsource_topic=%s\nsource_partition=%" PRId32
                     "\nsource_offset=%" PRId64 "\n",
                     why, msg->topic != NULL ? msg->topic : "", msg->partition, msg->offset);
    if (n < 0 || (size_t)n >= sizeof(meta)) {
        n = (int)strlen(meta);
    }
    b->st.dead_letters++;
    return lp_eng_add_out(b, LP_OUT_DLQ, (const char *)msg->key,
                          msg->key != NULL ? msg->key_len : 0, msg->value,
                          msg->value != NULL ? msg->value_len : 0, meta, (size_t)n, "");
}

int lp_eng_add_facts(lp_engine_t *engine, batch_t *b) {
    uint8_t *buf = engine->fact_buf;
    unsigned keep = engine->opts.handoff_fields;
    for (int i = 0; i < engine->facts.n; i++) {
        const lp_fact_t *fact = &engine->facts.fact[i];
        lp_fact_t allowed;
        size_t len;
        char meta[256];
        const char *type = fact->kind == LP_FACT_QUALIFIED ? "LeadQualified"
                           : fact->kind == LP_FACT_STALE   ? "LeadStale"
                           : fact->kind == LP_FACT_ERASED  ? "LeadErased"
                                                           : NULL;
        if (type == NULL) {
            snprintf(engine->errstr, sizeof(engine->errstr), "unknown fact kind %d for lead %s",
                     (int)fact->kind, fact->lead_id);
            return LP_ERR;
        }
        /* Privacy allow-list (privacy.handoff_fields): the profile fields not listed go out as
         * null. On a copy: the fact is the scorer's. LeadErased carries no profile at all. */
        if (fact->kind != LP_FACT_ERASED && (keep & LP_HANDOFF_ALL) != LP_HANDOFF_ALL) {
            allowed = *fact;
            lp_profile_update_t *p = &allowed.profile;
            const struct {
                unsigned bit;
                char *value;
                size_t size;
            } fields[] = {
                {LP_HANDOFF_EMAIL, p->email, sizeof(p->email)},
                {LP_HANDOFF_COMPANY, p->company, sizeof(p->company)},
                {LP_HANDOFF_REGION, p->region, sizeof(p->region)},
                {LP_HANDOFF_COUNTRY, p->country, sizeof(p->country)},
                {LP_HANDOFF_SEGMENT, p->segment, sizeof(p->segment)},
                {LP_HANDOFF_PERSONA, p->persona, sizeof(p->persona)},
                {LP_HANDOFF_TITLE, p->title, sizeof(p->title)},
                {LP_HANDOFF_OWNER, p->owner, sizeof(p->owner)},
            };
            for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
                if ((keep & fields[f].bit) == 0) {
                    memset(fields[f].value, 0, fields[f].size);
                }
            }
            fact = &allowed;
        }
        if (engine->opts.out_format == LP_FORMAT_JSON) {
            len = lp_json_encode_fact(fact, (char *)buf, FACT_MAX_BYTES);
        } else {
            len = lp_avro_encode_fact(engine->codec, fact, engine->opts.out_framing, buf,
                                      FACT_MAX_BYTES);
        }
        if (len == 0) {
            snprintf(engine->errstr, sizeof(engine->errstr), "cannot encode %s event for lead %s",
                     type, fact->lead_id);
            return LP_ERR;
        }
        int n = snprintf(meta, sizeof(meta),
                         "event_type=%s\nmodel_id=%s\nmodel_version=%s\nevent_ts=%" PRId64 "\n",
                         type, fact->model_id, fact->model_version, fact->ts_ms);
        int out = fact->kind == LP_FACT_QUALIFIED ? LP_OUT_QUALIFIED
                  : fact->kind == LP_FACT_STALE   ? LP_OUT_STALE
                                                  : LP_OUT_ERASED;
        if (lp_eng_add_out(b, out, fact->lead_id, strlen(fact->lead_id), buf, len, meta, (size_t)n,
                           fact->event_id) != LP_OK) {
            return LP_ERR;
        }
        if (fact->kind == LP_FACT_QUALIFIED) {
            b->st.qualified++;
        } else if (fact->kind == LP_FACT_ERASED) {
            b->st.erased++;
        } else if ((unsigned)fact->stale_reason < 3) {
            b->st.stale[fact->stale_reason]++;
        }
    }
    engine->facts.n = 0;
    return LP_OK;
}

/* Brings every slot's lead into memory: cache first, then one pipelined store load for misses. */
int lp_eng_load_slots(lp_engine_t *engine, batch_t *b, int32_t partition) {
    size_t nmiss = 0;
    for (size_t s = 0; s < b->nslots; s++) {
        slot_t *slot = &b->slots[s];
        size_t len = 0;
        const uint8_t *data = lp_cache_get(engine->cache, partition, slot->id, &len);
        if (data != NULL &&
            lp_lead_decode_keyed(&slot->lead, engine->rules, slot->id, data, len) == LP_OK) {
            b->st.cache_hits++;
            slot->loaded = true;
            slot->due_stored = lp_lead_next_due(&slot->lead);
            continue;
        }
        b->st.cache_misses++;
        b->miss_ids[nmiss] = slot->id;
        b->miss_slots[nmiss] = s;
        nmiss++;
    }
    if (nmiss == 0) {
        return LP_OK;
    }
    lp_store_loaded_t loaded = {0};
    if (engine->store->ops->load(engine->store, partition, nmiss, b->miss_ids, &loaded) != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "load leads of partition %" PRId32 ": %s",
                 partition, engine->store->errstr);
        return LP_ERR;
    }
    for (size_t i = 0; i < nmiss; i++) {
        slot_t *slot = &b->slots[b->miss_slots[i]];
        if (i < loaded.n && loaded.data[i] != NULL) {
            if (lp_lead_decode_keyed(&slot->lead, engine->rules, slot->id, loaded.data[i],
                                     loaded.len[i]) == LP_OK) {
                slot->loaded = true;
                slot->due_stored = lp_lead_next_due(&slot->lead);
                continue;
            }
            /* Unreadable state: start the lead afresh rather than block the partition forever. */
            b->st.corrupt_state++;
            lp_log_lead(slot->id);
            LP_LOG(LP_LOG_ERROR, "engine",
                   "partition %" PRId32
                   ": stored state of lead %s is unreadable; starting it afresh",
                   partition, slot->id);
            lp_log_lead(NULL);
        }
        lp_lead_init(&slot->lead, engine->rules, slot->id);
        slot->loaded = true;
        slot->fresh = loaded.data == NULL || i >= loaded.n || loaded.data[i] == NULL;
        /* A lead the store does not know has no timer; one it could not read may have. */
        slot->due_stored = loaded.data != NULL && i < loaded.n && loaded.data[i] != NULL ? -1 : 0;
        b->st.leads_created++;
    }
    return LP_OK;
}

/* Encodes the changed leads and their timers, points the outbox at the arena and states the
 * offsets: b->sbatch is then ready to commit. */
int lp_eng_build_commit(lp_engine_t *engine, batch_t *b) {
    int32_t partition = b->partition;
    uint8_t *enc = engine->lead_buf;
    size_t nwrites = 0;
    size_t ntimers = 0;
    size_t *lead_off = b->miss_slots; /* reuse as arena offsets of encoded leads */

    for (size_t s = 0; s < b->nslots; s++) {
        slot_t *slot = &b->slots[s];
        if (!slot->changed) {
            continue;
        }
        size_t len = lp_lead_encode_keyed(&slot->lead, engine->rules, enc, LP_LEAD_ENCODED_MAX);
        if (len == 0 || arena_put(&b->arena, enc, len, &lead_off[nwrites]) != LP_OK) {
            snprintf(engine->errstr, sizeof(engine->errstr), "cannot encode lead %s", slot->id);
            return LP_ERR;
        }
        b->writes[nwrites].lead_id = slot->id;
        b->writes[nwrites].len = len;
        nwrites++;
        /* The timer entry follows the lead's next deadline: written when it moved (most leads
         * have none before and after). A batch of due timers rewrites every one it fired. */
        int64_t due = lp_lead_next_due(&slot->lead);
        if (b->of_timers || due != slot->due_stored) {
            b->timers[ntimers].lead_id = slot->id;
            b->timers[ntimers].due_ms = due;
            ntimers++;
        }
    }
    /* The arena no longer grows: turn offsets into pointers. */
    for (size_t i = 0; i < nwrites; i++) {
        b->writes[i].data = b->arena.buf + lead_off[i];
    }
    b->nwrites = nwrites;
    b->ntimers = ntimers;
    if (b->nouts > 0) {
        lp_store_outbox_t *outbox = realloc(b->outbox, b->nouts * sizeof(*outbox));
        if (outbox == NULL) {
            snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
            return LP_ERR;
        }
        b->outbox = outbox;
    }
    for (size_t i = 0; i < b->nouts; i++) {
        const pending_out_t *o = &b->outs[i];
        lp_store_outbox_t *e = &b->outbox[i];
        memset(e, 0, sizeof(*e));
        e->kind = o->kind;
        e->key = (const char *)b->arena.buf + o->key_off;
        e->key_len = o->key_len;
        e->value = b->arena.buf + o->value_off;
        e->value_len = o->value_len;
        e->meta = (const char *)b->arena.buf + o->meta_off;
        e->meta_len = o->meta_len;
        e->event_id = (const char *)b->arena.buf + o->id_off;
    }
    /* Every commit states where the offsets stand, also those it does not move, so a store that
     * lost writes is noticed on the next commit of any kind (LP_STORE_MOVED). */
    size_t nstore = 0;
    for (size_t i = 0; i < b->noffsets && nstore < ENGINE_TOPICS; i++) {
        b->store_offsets[nstore].topic = b->offsets[i].topic;
        b->store_offsets[nstore].next_offset = b->offsets[i].next_offset;
        b->store_offsets[nstore].expected =
            lp_eng_poffs_get(engine, partition, b->offsets[i].topic);
        nstore++;
    }
    const part_offsets_t *po = engine->poffs[partition];
    for (size_t k = 0; po != NULL && k < po->n && nstore < ENGINE_TOPICS; k++) {
        bool listed = false;
        for (size_t i = 0; i < b->noffsets; i++) {
            listed |= strcmp(b->offsets[i].topic, po->topic[k]) == 0;
        }
        if (!listed && po->stored[k] >= 0) {
            b->store_offsets[nstore].topic = po->topic[k];
            b->store_offsets[nstore].expected = po->stored[k];
            b->store_offsets[nstore].next_offset = po->stored[k];
            nstore++;
        }
    }
    b->nstore = nstore;
    b->sbatch = (lp_store_batch_t){
        .partition = partition,
        .epoch = engine->epochs[partition],
        .nleads = nwrites,
        .leads = b->writes,
        .ntimers = ntimers,
        .timers = b->timers,
        .noffsets = nstore,
        .offsets = b->store_offsets,
        .noutbox = b->nouts,
        .outbox = b->outbox,
        .nerase = b->nerase,
        .erase = b->erase_ids,
        .nsuppress = b->nsupp,
        .suppress = b->supp,
    };
    return LP_OK;
}

static void stats_add(lp_engine_stats_t *to, const lp_engine_stats_t *d) {
    uint64_t *t = (uint64_t *)to;
    const uint64_t *f = (const uint64_t *)d;
    for (size_t i = 0; i < sizeof(*to) / sizeof(uint64_t); i++) {
        t[i] += f[i];
    }
}

/* The batch is over, committed or not: its counters count only when it was committed (what
 * failed is done again), except what says something about the store itself. */
/* One WARN line per committed dead letter (a batch retried after a failed commit logs them
 * once): its source and reason from the headers it carries, never the record itself (it may
 * hold personal data). At most 10 lines a second. */
static void log_dead_letters(lp_engine_t *engine, const batch_t *b) {
    for (size_t i = 0; i < b->nouts; i++) {
        const pending_out_t *o = &b->outs[i];
        uint64_t held = 0;
        if (o->kind != LP_OUT_DLQ || !lp_log_limit(&engine->dlq_log, 10, &held)) {
            continue;
        }
        char meta[1024], topic[256] = "", reason[600] = "";
        long long offset = -1;
        int part = -1;
        size_t n = o->meta_len < sizeof(meta) - 1 ? o->meta_len : sizeof(meta) - 1;
        memcpy(meta, b->arena.buf + o->meta_off, n);
        meta[n] = '\0';
        char *save = NULL;
        for (char *line = strtok_r(meta, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            if (strncmp(line, "reason=", 7) == 0) {
                snprintf(reason, sizeof(reason), "%s", line + 7);
            } else if (strncmp(line, "source_topic=", 13) == 0) {
                snprintf(topic, sizeof(topic), "%s", line + 13);
            } else if (strncmp(line, "source_partition=", 17) == 0) {
                part = atoi(line + 17);
            } else if (strncmp(line, "source_offset=", 14) == 0) {
                offset = atoll(line + 14);
            }
        }
        char more[64] = "";
        if (held > 0) {
            snprintf(more, sizeof(more), " (%" PRIu64 " such lines held back before this one)",
                     held);
        }
        lp_log_context(part, topic, offset);
        LP_LOG(LP_LOG_WARN, "engine", "%s [%d] offset %lld: dead-lettered: %s%s", topic, part,
               offset, reason, more);
        lp_log_context(b->partition, NULL, -1);
    }
}

void lp_eng_batch_end(lp_engine_t *engine, batch_t *b, bool committed) {
    lp_eng_member_end(engine, b, committed);
    if (committed) {
        stats_add(&engine->stats, &b->st);
        if (engine->opts.log_dead_letters) {
            log_dead_letters(engine, b);
        }
    } else {
        engine->stats.corrupt_state += b->st.corrupt_state;
    }
    b->state = B_FREE;
}

/* The outcome of a batch's commit: the engine's view of the store follows it. */
int lp_eng_commit_outcome(lp_engine_t *engine, batch_t *b, int rc) {
    int32_t partition = b->partition;
    if (rc == LP_STORE_FENCED) {
        engine->stats.fenced++;
        snprintf(engine->errstr, sizeof(engine->errstr),
                 "partition %" PRId32 ": epoch %" PRId64 " is stale (another worker owns it)",
                 partition, b->sbatch.epoch);
        lp_engine_revoke(engine, partition);
        return LP_STORE_FENCED;
    }
    if (rc == LP_STORE_MOVED) {
        engine->stats.moved++;
        snprintf(engine->errstr, sizeof(engine->errstr),
                 "partition %" PRId32 ": the store's offsets moved back (it lost writes): %.300s",
                 partition, engine->store->errstr);
        lp_engine_revoke(engine, partition);
        return LP_STORE_MOVED;
    }
    if (rc == LP_STORE_DUPLICATE) {
        /* Applied before (the reply of an earlier try was lost): the store holds the truth, so
         * forget what we computed and re-read these leads next time. */
        for (size_t i = 0; i < b->nwrites; i++) {
            lp_cache_forget(engine->cache, partition, b->writes[i].lead_id);
        }
        for (size_t i = 0; i < b->nstore; i++) {
            lp_eng_poffs_set(engine, partition, b->store_offsets[i].topic,
                             b->store_offsets[i].next_offset);
        }
        return LP_OK;
    }
    if (rc != LP_OK) {
        engine->stats.commit_failures++;
        snprintf(engine->errstr, sizeof(engine->errstr), "commit partition %" PRId32 ": %s",
                 partition, engine->store->errstr);
        return LP_ERR;
    }
    for (size_t i = 0; i < b->nstore; i++) {
        lp_eng_poffs_set(engine, partition, b->store_offsets[i].topic,
                         b->store_offsets[i].next_offset);
    }
    /* Committed: the cache now holds exactly what the store holds. */
    for (size_t i = 0; i < b->nwrites; i++) {
        lp_cache_put(engine->cache, partition, b->writes[i].lead_id, b->writes[i].data,
                     b->writes[i].len);
    }
    return LP_OK;
}
