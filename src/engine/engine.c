/* The engine: one partition batch at a time, decode -> load -> apply -> encode -> atomic commit. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

lp_engine_t *lp_engine_new(const lp_engine_opts_t *opts, const lp_rules_t *rules, lp_store_t *store,
                           lp_avro_codec_t *codec, char *errstr, size_t errstr_size) {
    lp_engine_t *engine = calloc(1, sizeof(*engine));
    if (engine == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    engine->opts = *opts;
    if (engine->opts.timer_batch == 0) {
        engine->opts.timer_batch = 1000;
    }
    engine->rules = rules;
    engine->store = store;
    engine->codec = codec;
    if (opts->out_format == LP_FORMAT_AVRO && codec == NULL) {
        snprintf(errstr, errstr_size, "Avro output needs the schemas (no codec given)");
        goto err;
    }
    engine->cache = lp_cache_new(opts->cache_max_leads);
    engine->epochs = calloc(LP_PARTITIONS_MAX, sizeof(int64_t));
    engine->poffs = calloc(LP_PARTITIONS_MAX, sizeof(part_offsets_t *));
    engine->supp = calloc(LP_PARTITIONS_MAX, sizeof(supp_table_t *));
    if (opts->accounts && rules->accounts.enabled) {
        engine->progress = malloc(LP_PARTITIONS_MAX * sizeof(int64_t));
        engine->marked = malloc(LP_PARTITIONS_MAX * sizeof(int64_t));
        if (engine->progress == NULL || engine->marked == NULL) {
            snprintf(errstr, errstr_size, "out of memory");
            goto err;
        }
        for (int32_t p = 0; p < LP_PARTITIONS_MAX; p++) {
            engine->progress[p] = engine->marked[p] = INT64_MIN;
        }
    }
    if (engine->cache == NULL || engine->epochs == NULL || engine->poffs == NULL ||
        engine->supp == NULL || lp_eng_ensure_capacity(&engine->bx[0], 1024) != LP_OK ||
        lp_eng_ensure_capacity(&engine->bx[1], 1024) != LP_OK) {
        snprintf(errstr, errstr_size, "out of memory");
        goto err;
    }
    return engine;
err:
    lp_engine_destroy(engine);
    return NULL;
}

void lp_engine_destroy(lp_engine_t *engine) {
    if (engine == NULL) {
        return;
    }
    lp_cache_destroy(engine->cache);
    if (engine->poffs != NULL) {
        for (size_t p = 0; p < LP_PARTITIONS_MAX; p++) {
            lp_eng_poffs_clear(engine->poffs[p]);
            free(engine->poffs[p]);
        }
    }
    free(engine->poffs);
    free(engine->epochs);
    for (int i = 0; i < 2; i++) {
        batch_t *b = &engine->bx[i];
        free(b->events);
        free(b->event_slot);
        free(b->slots);
        free(b->map);
        free(b->outs);
        free(b->arena.buf);
        free(b->writes);
        free(b->timers);
        free(b->outbox);
        free(b->miss_ids);
        free(b->miss_slots);
        free(b->erase_ids);
        free(b->supp);
        free(b->prog_src);
        free(b->prog_old);
    }
    free(engine->progress);
    free(engine->marked);
    lp_eng_member_free(engine);
    for (int32_t p = 0; engine->supp != NULL && p < LP_PARTITIONS_MAX; p++) {
        lp_eng_supp_drop(engine, p);
    }
    free(engine->supp);
    free(engine);
}

void lp_engine_set_rules(lp_engine_t *engine, const lp_rules_t *rules) {
    engine->rules = rules;
}

const lp_engine_stats_t *lp_engine_stats(const lp_engine_t *engine) {
    return &engine->stats;
}

const lp_rules_t *lp_engine_rules(const lp_engine_t *engine) {
    return engine->rules;
}

const char *lp_engine_errstr(const lp_engine_t *engine) {
    return engine->errstr;
}

bool lp_engine_owns(const lp_engine_t *engine, int32_t partition) {
    return partition >= 0 && partition < LP_PARTITIONS_MAX && engine->epochs[partition] > 0;
}

int64_t lp_engine_epoch(const lp_engine_t *engine, int32_t partition) {
    return lp_engine_owns(engine, partition) ? engine->epochs[partition] : 0;
}

int lp_engine_assign(lp_engine_t *engine, int32_t partition, size_t ntopics,
                     const char *const *topics, int64_t *offsets) {
    int64_t epoch = 0;
    if (partition < 0 || partition >= LP_PARTITIONS_MAX) {
        snprintf(engine->errstr, sizeof(engine->errstr), "partition %" PRId32 " out of range",
                 partition);
        return LP_ERR;
    }
    /* Cached leads may be older than what another owner wrote meanwhile. */
    lp_cache_drop_partition(engine->cache, partition);
    if (engine->store->ops->fence(engine->store, partition, &epoch) != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "fence partition %" PRId32 ": %s",
                 partition, engine->store->errstr);
        return LP_ERR;
    }
    lp_eng_poffs_clear(engine->poffs[partition]);
    for (size_t i = 0; i < ntopics; i++) {
        if (engine->store->ops->get_offset(engine->store, partition, topics[i], &offsets[i]) !=
            LP_OK) {
            snprintf(engine->errstr, sizeof(engine->errstr), "offset of %s [%" PRId32 "]: %s",
                     topics[i], partition, engine->store->errstr);
            return LP_ERR;
        }
        if (lp_eng_poffs_set(engine, partition, topics[i], offsets[i]) != LP_OK) {
            snprintf(engine->errstr, sizeof(engine->errstr), "too many topics");
            return LP_ERR;
        }
    }
    if (lp_eng_supp_load(engine, partition) != LP_OK ||
        lp_eng_member_assign(engine, partition) != LP_OK) {
        return LP_ERR;
    }
    engine->epochs[partition] = epoch;
    return LP_OK;
}

void lp_engine_revoke(lp_engine_t *engine, int32_t partition) {
    if (partition < 0 || partition >= LP_PARTITIONS_MAX) {
        return;
    }
    engine->epochs[partition] = 0;
    lp_cache_drop_partition(engine->cache, partition);
    lp_eng_supp_drop(engine, partition);
}

static const char *event_check(const lp_engine_t *engine, const lp_event_t *event, int64_t now_ms,
                               char *why, size_t why_size, bool scorer);

/* A tombstone on the profiles topic: an erasure (or unsuppress) request for the lead its key
 * names, at the record's timestamp (docs/privacy.md). The reason it is not one, or NULL. */
static const char *tombstone(const lp_engine_msg_t *msg, lp_event_t *event, char *why,
                             size_t why_size) {
    if (msg->key == NULL || msg->key_len == 0) {
        return "tombstone without a key: an erasure request names the lead id in its key";
    }
    if (msg->key_len > LP_ID_MAX || memchr(msg->key, '\0', msg->key_len) != NULL) {
        snprintf(why, why_size, "tombstone key of %zu bytes is not a lead id (1..%d bytes, no NUL)",
                 msg->key_len, LP_ID_MAX);
        return why;
    }
    if (msg->op == LP_OP_INVALID) {
        return "tombstone with an unknown leadpulse.op header (erase or unsuppress)";
    }
    if (msg->timestamp_ms <= 0) {
        return "tombstone without a timestamp: the erasure's time is the record's timestamp";
    }
    lp_event_init(event, LP_EV_PROFILE);
    event->op = msg->op == LP_OP_UNSUPPRESS ? LP_OP_UNSUPPRESS : LP_OP_ERASE;
    memcpy(event->lead_id, msg->key, msg->key_len);
    event->lead_id[msg->key_len] = '\0';
    snprintf(event->event_id, sizeof(event->event_id), "%s-%" PRId64,
             event->op == LP_OP_ERASE ? "erasure" : "unsuppress", msg->timestamp_ms);
    event->ts_ms = msg->timestamp_ms;
    return NULL;
}

/* The reason to dead-letter msg, or NULL. *wait is set (and why says why) when the record's
 * schema cannot be learned now (no registry answered): neither applied nor dead-lettered. */
static const char *decode_msg(lp_engine_t *engine, const lp_engine_msg_t *msg, lp_event_t *event,
                              int64_t now_ms, char *why, size_t why_size, bool *wait) {
    int rc;
    if (msg->decoded != NULL) {
        *event = *msg->decoded;
        rc = LP_OK;
    } else if (msg->value == NULL && msg->kind == LP_EV_PROFILE && !msg->any_kind) {
        const char *reason = tombstone(msg, event, why, why_size);
        if (reason != NULL) {
            return reason;
        }
        return event_check(engine, event, now_ms, why, why_size, false);
    } else if (msg->value == NULL) {
        snprintf(why, why_size,
                 "tombstone (null value) on %s: an erasure request goes to the profiles topic",
                 msg->topic != NULL ? msg->topic : "?");
        return why;
    } else if (msg->value_len == 0) {
        return "empty record value";
    } else if (msg->format == LP_FORMAT_JSON) {
        rc = lp_json_decode_event((const char *)msg->value, msg->value_len, event, why, why_size);
    } else if (engine->codec == NULL) {
        snprintf(why, why_size, "Avro input but no schemas loaded");
        rc = LP_ERR;
    } else {
        rc = lp_avro_decode_event(engine->codec, msg->value, msg->value_len, -1, event, why,
                                  why_size);
    }
    if (rc == LP_AVRO_RETRY) {
        *wait = true;
        return why;
    }
    if (rc != LP_OK) {
        return why;
    }
    if (!msg->any_kind && event->kind != msg->kind) {
        snprintf(why, why_size, "record is a %s event but topic %s carries %s events",
                 event->kind == LP_EV_ENGAGEMENT ? "engagement"
                 : event->kind == LP_EV_PROFILE  ? "profile"
                                                 : "feedback",
                 msg->topic != NULL ? msg->topic : "?",
                 msg->kind == LP_EV_ENGAGEMENT ? "engagement"
                 : msg->kind == LP_EV_PROFILE  ? "profile"
                                               : "feedback");
        return why;
    }
    if (msg->key != NULL && msg->key_len > 0 &&
        (msg->key_len != strlen(event->lead_id) ||
         memcmp(msg->key, event->lead_id, msg->key_len) != 0)) {
        snprintf(why, why_size,
                 "record key does not match lead_id %s (input topics must be keyed by lead id)",
                 event->lead_id);
        return why;
    }
    return event_check(engine, event, now_ms, why, why_size, false);
}

/* The checks of a decoded event: its time, and with `scorer` what the core refuses. */
static const char *event_check(const lp_engine_t *engine, const lp_event_t *event, int64_t now_ms,
                               char *why, size_t why_size, bool scorer) {
    if (event->ts_ms <= 0) {
        snprintf(why, why_size, "timestamp %" PRId64 " is not after the Unix epoch", event->ts_ms);
        return why;
    }
    if (engine->opts.max_future_skew_ms > 0 && now_ms > 0 &&
        event->ts_ms > now_ms + engine->opts.max_future_skew_ms) {
        snprintf(why, why_size,
                 "timestamp %" PRId64 " is %" PRId64
                 " ms in the future (limit max_future_skew_ms=%" PRId64 ")",
                 event->ts_ms, event->ts_ms - now_ms, engine->opts.max_future_skew_ms);
        return why;
    }
    return scorer && event->op == LP_OP_APPLY ? lp_score_check(event, engine->rules) : NULL;
}

const char *lp_engine_check_event(const lp_engine_t *engine, const lp_event_t *event,
                                  int64_t now_ms, char *why, size_t why_size) {
    return event_check(engine, event, now_ms, why, why_size, true);
}

batch_t *lp_eng_batch_take(lp_engine_t *engine, int32_t partition, size_t n) {
    for (int i = 0; i < 2; i++) {
        batch_t *b = &engine->bx[i];
        if (b->state != B_FREE) {
            continue;
        }
        if (lp_eng_ensure_capacity(b, n) != LP_OK) {
            snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
            return NULL;
        }
        lp_eng_batch_reset(b);
        memset(&b->st, 0, sizeof(b->st));
        b->partition = partition;
        b->n = n;
        b->of_timers = false;
        b->noffsets = 0;
        b->nstore = 0;
        b->nwrites = 0;
        b->ntimers = 0;
        return b;
    }
    snprintf(engine->errstr, sizeof(engine->errstr), "two batches in progress already");
    return NULL;
}

int lp_engine_begin(lp_engine_t *engine, int32_t partition, const lp_engine_msg_t *msgs, size_t n,
                    int64_t now_ms, lp_engine_batch_t **out) {
    char why[512];
    *out = NULL;
    if (!lp_engine_owns(engine, partition)) {
        snprintf(engine->errstr, sizeof(engine->errstr), "partition %" PRId32 " is not owned",
                 partition);
        return LP_STORE_FENCED;
    }
    batch_t *b = lp_eng_batch_take(engine, partition, n);
    if (b == NULL) {
        return LP_ERR;
    }
    /* 1. decode; remember the next offset per topic */
    for (size_t i = 0; i < n; i++) {
        const lp_engine_msg_t *msg = &msgs[i];
        size_t t = 0;
        while (t < b->noffsets && strcmp(b->offsets[t].topic, msg->topic) != 0) {
            t++;
        }
        int64_t stored = lp_eng_poffs_get(engine, partition, msg->topic);
        if (t == b->noffsets && b->noffsets < ENGINE_TOPICS) {
            b->offsets[b->noffsets].topic = msg->topic;
            b->offsets[b->noffsets].next_offset = stored;
            b->noffsets++;
        }
        if (t < ENGINE_TOPICS && msg->offset + 1 > b->offsets[t].next_offset) {
            b->offsets[t].next_offset = msg->offset + 1;
        }
        if (stored >= 0 && msg->offset < stored) {
            /* The store says this record was applied already (a redelivery). */
            b->event_slot[i] = -1;
            b->st.duplicates++;
            continue;
        }
        bool wait = false;
        const char *reason =
            decode_msg(engine, msg, &b->events[i], now_ms, why, sizeof(why), &wait);
        if (wait) {
            lp_eng_batch_end(engine, b, false);
            snprintf(engine->errstr, sizeof(engine->errstr),
                     "%s [%" PRId32 "] offset %" PRId64 ": %s",
                     msg->topic != NULL ? msg->topic : "?", partition, msg->offset, why);
            return LP_ENGINE_SCHEMA_WAIT;
        }
        if (reason != NULL) {
            b->event_slot[i] = -1;
            if (lp_eng_add_dead_letter(engine, b, msg, reason) != LP_OK) {
                goto oom;
            }
            continue;
        }
        b->event_slot[i] = lp_eng_slot_for(b, b->events[i].lead_id);
    }
    /* 2. load */
    if (lp_eng_load_slots(engine, b, partition) != LP_OK) {
        lp_eng_batch_end(engine, b, false);
        return LP_ERR;
    }
    b->state = B_LOADED;
    *out = b;
    return LP_OK;
oom:
    lp_eng_batch_end(engine, b, false);
    snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
    return LP_ERR;
}

int lp_engine_apply(lp_engine_t *engine, lp_engine_batch_t *b, const lp_engine_msg_t *msgs) {
    if (b == NULL || b->state != B_LOADED) {
        snprintf(engine->errstr, sizeof(engine->errstr), "apply: no batch loaded");
        return LP_ERR;
    }
    /* 3. apply in offset order */
    for (size_t i = 0; i < b->n; i++) {
        if (b->event_slot[i] < 0) {
            continue;
        }
        slot_t *slot = &b->slots[b->event_slot[i]];
        const lp_event_t *event = &b->events[i];
        char key_buf[LP_ACCOUNT_KEY_MAX + 1];
        const char *old_key = lp_eng_member_key(engine, slot, key_buf);
        lp_member_before_t before = {false, slot->lead.member_seq, slot->lead.ref_ms};
        engine->facts.n = 0;
        if (event->op != LP_OP_APPLY) {
            if (lp_eng_apply_op(engine, b, slot, event) != LP_OK) {
                goto fail;
            }
            before.erased = event->op == LP_OP_ERASE;
            if (before.erased && old_key != NULL &&
                lp_eng_member_after(engine, b, slot, event, old_key, &before) != LP_OK) {
                goto fail;
            }
            b->st.applied++;
            continue;
        }
        if (lp_eng_suppressed(engine, b, slot, event)) {
            b->st.suppressed++;
            continue;
        }
        uint32_t rejects = slot->lead.reject_count;
        lp_apply_result_t res = lp_score_apply(&slot->lead, event, engine->rules, &engine->facts);
        if (res.outcome == LP_DEAD_LETTER) {
            if (lp_eng_add_dead_letter(engine, b, &msgs[i],
                                       res.reason != NULL ? res.reason : "rejected") != LP_OK) {
                snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
                goto fail;
            }
        } else if (res.duplicate) {
            b->st.duplicates++;
        } else {
            b->st.applied++;
            /* Counted when the lead took the rejection (a closed lead ignores it). */
            if (slot->lead.reject_count != rejects && event->kind == LP_EV_FEEDBACK &&
                (unsigned)event->u.feedback.reason < LP_REJ__COUNT) {
                b->st.rejected_by_reason[event->u.feedback.reason]++;
            }
        }
        slot->changed |= res.changed || engine->facts.n > 0;
        if (lp_eng_add_facts(engine, b) != LP_OK) {
            goto fail;
        }
        if (res.outcome != LP_DEAD_LETTER && !res.duplicate &&
            lp_eng_member_after(engine, b, slot, event, old_key, &before) != LP_OK) {
            goto fail;
        }
    }
    if (lp_eng_member_marks(engine, b) != LP_OK) {
        goto fail;
    }
    b->st.events += b->n;
    /* 4. encode the commit */
    if (lp_eng_build_commit(engine, b) != LP_OK) {
        goto fail;
    }
    b->state = B_APPLIED;
    return LP_OK;
fail:
    lp_eng_batch_end(engine, b, false);
    return LP_ERR;
}

int lp_engine_send(lp_engine_t *engine, lp_engine_batch_t *b) {
    if (b == NULL || b->state != B_APPLIED) {
        snprintf(engine->errstr, sizeof(engine->errstr), "send: no batch applied");
        return LP_ERR;
    }
    engine->stats.batches++;
    b->state = B_SENT;
    /* A failure to send comes back from lp_store_commit_recv (in lp_engine_finish). */
    (void)lp_store_commit_send(engine->store, &b->sbatch);
    return LP_OK;
}

int lp_engine_finish(lp_engine_t *engine, lp_engine_batch_t *b) {
    if (b == NULL || b->state != B_SENT) {
        snprintf(engine->errstr, sizeof(engine->errstr), "finish: no batch sent");
        return LP_ERR;
    }
    int rc = lp_eng_commit_outcome(engine, b, lp_store_commit_recv(engine->store));
    if (rc == LP_OK) {
        lp_eng_supp_committed(engine, b);
    }
    if (rc == LP_OK && b->of_timers) {
        b->st.timers_fired += b->nslots;
    }
    lp_eng_batch_end(engine, b, rc == LP_OK);
    return rc;
}

/* A batch from begin to finish, waiting for its commit. */
int lp_eng_run_batch(lp_engine_t *engine, batch_t *b, const lp_engine_msg_t *msgs) {
    int rc = lp_engine_apply(engine, b, msgs);
    if (rc != LP_OK) {
        return rc;
    }
    lp_engine_send(engine, b);
    return lp_engine_finish(engine, b);
}

int lp_engine_process(lp_engine_t *engine, int32_t partition, const lp_engine_msg_t *msgs, size_t n,
                      int64_t now_ms) {
    lp_engine_batch_t *b = NULL;
    int rc = lp_engine_begin(engine, partition, msgs, n, now_ms, &b);
    if (rc != LP_OK) {
        return rc;
    }
    return lp_eng_run_batch(engine, b, msgs);
}

int lp_engine_fire_timers(lp_engine_t *engine, int32_t partition, int64_t now_ms, size_t *fired) {
    size_t n = 0;
    const char **ids = NULL;
    *fired = 0;
    if (!lp_engine_owns(engine, partition)) {
        return LP_STORE_FENCED;
    }
    if (engine->store->ops->due(engine->store, partition, now_ms, engine->opts.timer_batch, &n,
                                &ids) != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "due timers of partition %" PRId32 ": %s",
                 partition, engine->store->errstr);
        return LP_ERR;
    }
    if (n == 0) {
        return LP_OK;
    }
    batch_t *b = lp_eng_batch_take(engine, partition, n);
    if (b == NULL) {
        return LP_ERR;
    }
    b->of_timers = true;
    for (size_t i = 0; i < n; i++) {
        if (strlen(ids[i]) <= LP_ID_MAX) {
            lp_eng_slot_for(b, ids[i]);
        }
    }
    if (lp_eng_load_slots(engine, b, partition) != LP_OK) {
        lp_eng_batch_end(engine, b, false);
        return LP_ERR;
    }
    for (size_t s = 0; s < b->nslots; s++) {
        slot_t *slot = &b->slots[s];
        engine->facts.n = 0;
        lp_score_advance(&slot->lead, engine->rules, now_ms, &engine->facts);
        /* Always rewrite: the timer entry must match the lead's next deadline afterwards. */
        slot->changed = true;
        if (lp_eng_add_facts(engine, b) != LP_OK) {
            lp_eng_batch_end(engine, b, false);
            return LP_ERR;
        }
    }
    b->n = 0; /* no records: apply only encodes */
    b->state = B_LOADED;
    size_t nslots = b->nslots;
    int rc = lp_eng_run_batch(engine, b, NULL);
    if (rc == LP_OK) {
        *fired = nslots;
    }
    return rc;
}

int lp_engine_get_lead(lp_engine_t *engine, int32_t partition, const char *lead_id,
                       lp_lead_t *lead) {
    lp_store_loaded_t loaded = {0};
    const char *ids[1] = {lead_id};
    if (engine->store->ops->load(engine->store, partition, 1, ids, &loaded) != LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "%s", engine->store->errstr);
        return LP_ERR;
    }
    if (loaded.n < 1 || loaded.data[0] == NULL) {
        return 0;
    }
    if (lp_lead_decode_keyed(lead, engine->rules, lead_id, loaded.data[0], loaded.len[0]) !=
        LP_OK) {
        snprintf(engine->errstr, sizeof(engine->errstr), "stored state of %s is unreadable",
                 lead_id);
        return LP_ERR;
    }
    return 1;
}

void lp_engine_meta_foreach(const char *meta, size_t len,
                            void (*fn)(void *ctx, const char *name, size_t name_len,
                                       const char *value, size_t value_len),
                            void *ctx) {
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && meta[end] != '\n') {
            end++;
        }
        const char *eq = memchr(meta + i, '=', end - i);
        if (eq != NULL) {
            fn(ctx, meta + i, (size_t)(eq - (meta + i)), eq + 1, (size_t)(meta + end - eq - 1));
        }
        i = end + 1;
    }
}
