/* The engine: one partition batch at a time, decode -> load -> apply -> encode -> atomic commit. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cache.h"
#include "leadpulse/engine.h"
#include "leadpulse/hash.h"

#define FACT_MAX_BYTES 8192

/* A growable byte arena; entries are referenced by offset until the arena stops growing. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
} arena_t;

typedef struct {
    char id[LP_ID_MAX + 1];
    lp_lead_t lead;
    bool changed;
    bool loaded;
    int64_t due_stored; /* the lead's timer in the store when loaded (0 none, -1 unknown) */
} slot_t;

typedef struct {
    int kind;
    size_t key_off, key_len, value_off, value_len, meta_off, meta_len, id_off;
} pending_out_t;

typedef struct {
    const char *topic;
    int64_t next_offset;
} topic_offset_t;

#define ENGINE_TOPICS 8

/* The next offsets this engine knows are stored for a partition (read at assignment, updated by
 * each commit): every commit states them, so the store can refuse a batch when it lost writes. */
typedef struct {
    size_t n;
    char *topic[ENGINE_TOPICS];
    int64_t stored[ENGINE_TOPICS];
} part_offsets_t;

/* One batch's scratch. The engine has two, so that one batch's commit can be in flight while
 * the next batch is built (lp_engine_begin .. lp_engine_finish). */
typedef enum { B_FREE = 0, B_LOADED, B_APPLIED, B_SENT } batch_state_t;

struct lp_engine_batch {
    batch_state_t state;
    int32_t partition;
    size_t n;             /* records */
    bool of_timers;       /* a batch of due timers (lp_engine_fire_timers) */
    lp_engine_stats_t st; /* counted by this batch: added to the engine's once committed */
    topic_offset_t offsets[ENGINE_TOPICS];
    size_t noffsets;
    lp_store_offset_t store_offsets[ENGINE_TOPICS];
    size_t nstore;
    size_t nwrites, ntimers;
    lp_store_batch_t sbatch;

    /* grown on demand and reused */
    size_t cap_events, cap_slots;
    lp_event_t *events;
    int *event_slot; /* slot index, or -1 when dead-lettered */
    slot_t *slots;
    size_t nslots;
    int *map; /* open-addressing: lead id -> slot index */
    size_t map_size;
    pending_out_t *outs;
    size_t nouts, cap_outs;
    arena_t arena;
    lp_store_lead_t *writes;
    lp_store_timer_t *timers;
    lp_store_outbox_t *outbox;
    const char **miss_ids;
    size_t *miss_slots;
};

typedef struct lp_engine_batch batch_t;

struct lp_engine {
    lp_engine_opts_t opts;
    const lp_rules_t *rules;
    lp_store_t *store;
    lp_avro_codec_t *codec;
    lp_cache_t *cache;
    int64_t *epochs;        /* per partition; 0 = not owned */
    part_offsets_t **poffs; /* per partition, allocated on assignment */
    lp_engine_stats_t stats;
    char errstr[LP_ERRSTR * 2]; /* room for a store error plus context */

    batch_t bx[2];
    lp_facts_t facts;
    uint8_t fact_buf[FACT_MAX_BYTES];
    uint8_t lead_buf[LP_LEAD_ENCODED_MAX];
};

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

static int ensure_capacity(batch_t *b, size_t n) {
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

static void poffs_clear(part_offsets_t *po) {
    if (po == NULL) {
        return;
    }
    for (size_t i = 0; i < po->n; i++) {
        free(po->topic[i]);
    }
    po->n = 0;
}

static int64_t poffs_get(const lp_engine_t *engine, int32_t partition, const char *topic) {
    const part_offsets_t *po = engine->poffs[partition];
    for (size_t i = 0; po != NULL && i < po->n; i++) {
        if (strcmp(po->topic[i], topic) == 0) {
            return po->stored[i];
        }
    }
    return -1;
}

static int poffs_set(lp_engine_t *engine, int32_t partition, const char *topic, int64_t offset) {
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
    if (engine->cache == NULL || engine->epochs == NULL || engine->poffs == NULL ||
        ensure_capacity(&engine->bx[0], 1024) != LP_OK ||
        ensure_capacity(&engine->bx[1], 1024) != LP_OK) {
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
            poffs_clear(engine->poffs[p]);
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
    }
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
    poffs_clear(engine->poffs[partition]);
    for (size_t i = 0; i < ntopics; i++) {
        if (engine->store->ops->get_offset(engine->store, partition, topics[i], &offsets[i]) !=
            LP_OK) {
            snprintf(engine->errstr, sizeof(engine->errstr), "offset of %s [%" PRId32 "]: %s",
                     topics[i], partition, engine->store->errstr);
            return LP_ERR;
        }
        if (poffs_set(engine, partition, topics[i], offsets[i]) != LP_OK) {
            snprintf(engine->errstr, sizeof(engine->errstr), "too many topics");
            return LP_ERR;
        }
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
}

/* ---- batch building ---- */

static void batch_reset(batch_t *b) {
    b->nslots = 0;
    b->nouts = 0;
    b->arena.len = 0;
    memset(b->map, -1, b->map_size * sizeof(int));
}

/* Finds or adds the batch slot of a lead id. Returns the slot index. */
static int slot_for(batch_t *b, const char *lead_id) {
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
    b->map[i] = s;
    return s;
}

static int add_out(batch_t *b, int kind, const char *key, size_t key_len, const uint8_t *value,
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

static int add_dead_letter(batch_t *b, const lp_engine_msg_t *msg, const char *reason) {
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
    return add_out(b, LP_OUT_DLQ, (const char *)msg->key, msg->key != NULL ? msg->key_len : 0,
                   msg->value, msg->value != NULL ? msg->value_len : 0, meta, (size_t)n, "");
}

static int add_facts(lp_engine_t *engine, batch_t *b) {
    uint8_t *buf = engine->fact_buf;
    for (int i = 0; i < engine->facts.n; i++) {
        const lp_fact_t *fact = &engine->facts.fact[i];
        size_t len;
        char meta[256];
        if (engine->opts.out_format == LP_FORMAT_JSON) {
            len = lp_json_encode_fact(fact, (char *)buf, FACT_MAX_BYTES);
        } else {
            len = lp_avro_encode_fact(engine->codec, fact, engine->opts.out_framing, buf,
                                      FACT_MAX_BYTES);
        }
        if (len == 0) {
            snprintf(engine->errstr, sizeof(engine->errstr), "cannot encode %s event for lead %s",
                     fact->kind == LP_FACT_QUALIFIED ? "LeadQualified" : "LeadStale",
                     fact->lead_id);
            return LP_ERR;
        }
        int n = snprintf(meta, sizeof(meta),
                         "event_type=%s\nmodel_id=%s\nmodel_version=%s\nevent_ts=%" PRId64 "\n",
                         fact->kind == LP_FACT_QUALIFIED ? "LeadQualified" : "LeadStale",
                         fact->model_id, fact->model_version, fact->ts_ms);
        if (add_out(b, fact->kind == LP_FACT_QUALIFIED ? LP_OUT_QUALIFIED : LP_OUT_STALE,
                    fact->lead_id, strlen(fact->lead_id), buf, len, meta, (size_t)n,
                    fact->event_id) != LP_OK) {
            return LP_ERR;
        }
        if (fact->kind == LP_FACT_QUALIFIED) {
            b->st.qualified++;
        } else if ((unsigned)fact->stale_reason < 3) {
            b->st.stale[fact->stale_reason]++;
        }
    }
    engine->facts.n = 0;
    return LP_OK;
}

/* Brings every slot's lead into memory: cache first, then one pipelined store load for misses. */
static int load_slots(lp_engine_t *engine, batch_t *b, int32_t partition) {
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
            LP_LOG(LP_LOG_ERROR, "engine",
                   "partition %" PRId32
                   ": stored state of lead %s is unreadable; starting it afresh",
                   partition, slot->id);
        }
        lp_lead_init(&slot->lead, engine->rules, slot->id);
        slot->loaded = true;
        /* A lead the store does not know has no timer; one it could not read may have. */
        slot->due_stored = loaded.data != NULL && i < loaded.n && loaded.data[i] != NULL ? -1 : 0;
        b->st.leads_created++;
    }
    return LP_OK;
}

/* Encodes the changed leads and their timers, points the outbox at the arena and states the
 * offsets: b->sbatch is then ready to commit. */
static int build_commit(lp_engine_t *engine, batch_t *b) {
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
        b->store_offsets[nstore].expected = poffs_get(engine, partition, b->offsets[i].topic);
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
static void batch_end(lp_engine_t *engine, batch_t *b, bool committed) {
    if (committed) {
        stats_add(&engine->stats, &b->st);
    } else {
        engine->stats.corrupt_state += b->st.corrupt_state;
    }
    b->state = B_FREE;
}

/* The outcome of a batch's commit: the engine's view of the store follows it. */
static int commit_outcome(lp_engine_t *engine, batch_t *b, int rc) {
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
            poffs_set(engine, partition, b->store_offsets[i].topic,
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
        poffs_set(engine, partition, b->store_offsets[i].topic, b->store_offsets[i].next_offset);
    }
    /* Committed: the cache now holds exactly what the store holds. */
    for (size_t i = 0; i < b->nwrites; i++) {
        lp_cache_put(engine->cache, partition, b->writes[i].lead_id, b->writes[i].data,
                     b->writes[i].len);
    }
    return LP_OK;
}

static const char *event_check(const lp_engine_t *engine, const lp_event_t *event, int64_t now_ms,
                               char *why, size_t why_size, bool scorer);

static const char *decode_msg(lp_engine_t *engine, const lp_engine_msg_t *msg, lp_event_t *event,
                              int64_t now_ms, char *why, size_t why_size) {
    int rc;
    if (msg->decoded != NULL) {
        *event = *msg->decoded;
        rc = LP_OK;
    } else if (msg->value == NULL || msg->value_len == 0) {
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
    return scorer ? lp_score_check(event, engine->rules) : NULL;
}

const char *lp_engine_check_event(const lp_engine_t *engine, const lp_event_t *event,
                                  int64_t now_ms, char *why, size_t why_size) {
    return event_check(engine, event, now_ms, why, why_size, true);
}

static batch_t *batch_take(lp_engine_t *engine, int32_t partition, size_t n) {
    for (int i = 0; i < 2; i++) {
        batch_t *b = &engine->bx[i];
        if (b->state != B_FREE) {
            continue;
        }
        if (ensure_capacity(b, n) != LP_OK) {
            snprintf(engine->errstr, sizeof(engine->errstr), "out of memory");
            return NULL;
        }
        batch_reset(b);
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
    batch_t *b = batch_take(engine, partition, n);
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
        int64_t stored = poffs_get(engine, partition, msg->topic);
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
        const char *reason = decode_msg(engine, msg, &b->events[i], now_ms, why, sizeof(why));
        if (reason != NULL) {
            b->event_slot[i] = -1;
            if (add_dead_letter(b, msg, reason) != LP_OK) {
                goto oom;
            }
            continue;
        }
        b->event_slot[i] = slot_for(b, b->events[i].lead_id);
    }
    /* 2. load */
    if (load_slots(engine, b, partition) != LP_OK) {
        batch_end(engine, b, false);
        return LP_ERR;
    }
    b->state = B_LOADED;
    *out = b;
    return LP_OK;
oom:
    batch_end(engine, b, false);
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
        engine->facts.n = 0;
        uint32_t rejects = slot->lead.reject_count;
        lp_apply_result_t res = lp_score_apply(&slot->lead, event, engine->rules, &engine->facts);
        if (res.outcome == LP_DEAD_LETTER) {
            if (add_dead_letter(b, &msgs[i], res.reason != NULL ? res.reason : "rejected") !=
                LP_OK) {
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
        if (add_facts(engine, b) != LP_OK) {
            goto fail;
        }
    }
    b->st.events += b->n;
    /* 4. encode the commit */
    if (build_commit(engine, b) != LP_OK) {
        goto fail;
    }
    b->state = B_APPLIED;
    return LP_OK;
fail:
    batch_end(engine, b, false);
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
    int rc = commit_outcome(engine, b, lp_store_commit_recv(engine->store));
    if (rc == LP_OK && b->of_timers) {
        b->st.timers_fired += b->nslots;
    }
    batch_end(engine, b, rc == LP_OK);
    return rc;
}

/* A batch from begin to finish, waiting for its commit. */
static int run_batch(lp_engine_t *engine, batch_t *b, const lp_engine_msg_t *msgs) {
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
    return run_batch(engine, b, msgs);
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
    batch_t *b = batch_take(engine, partition, n);
    if (b == NULL) {
        return LP_ERR;
    }
    b->of_timers = true;
    for (size_t i = 0; i < n; i++) {
        if (strlen(ids[i]) <= LP_ID_MAX) {
            slot_for(b, ids[i]);
        }
    }
    if (load_slots(engine, b, partition) != LP_OK) {
        batch_end(engine, b, false);
        return LP_ERR;
    }
    for (size_t s = 0; s < b->nslots; s++) {
        slot_t *slot = &b->slots[s];
        engine->facts.n = 0;
        lp_score_advance(&slot->lead, engine->rules, now_ms, &engine->facts);
        /* Always rewrite: the timer entry must match the lead's next deadline afterwards. */
        slot->changed = true;
        if (add_facts(engine, b) != LP_OK) {
            batch_end(engine, b, false);
            return LP_ERR;
        }
    }
    b->n = 0; /* no records: apply only encodes */
    b->state = B_LOADED;
    size_t nslots = b->nslots;
    int rc = run_batch(engine, b, NULL);
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
