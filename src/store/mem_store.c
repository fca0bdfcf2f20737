/* leadpulse in-memory store: the semantics of the Redis store without a server, for `replay` and
 * engine tests. A commit first reserves every allocation it may need, then applies: a failed
 * allocation leaves the partition untouched (all or nothing, like the Redis script). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/mem_internal.h"

static const lp_store_ops_t mem_ops;

/* Grows *arr (elements of size elem) to hold at least n; LP_OK or LP_ERR (unchanged). */
int lp_mem_grow(void *arr, size_t *cap, size_t n, size_t elem) {
    void **p = arr;
    size_t c = *cap == 0 ? 16 : *cap;
    void *q;

    if (n <= *cap) {
        return LP_OK;
    }
    while (c < n) {
        if (c > SIZE_MAX / 2 / elem) {
            return LP_ERR;
        }
        c *= 2;
    }
    q = realloc(*p, c * elem);
    if (q == NULL) {
        return LP_ERR;
    }
    *p = q;
    *cap = c;
    return LP_OK;
}

mem_part_t *lp_mem_part_get(mem_store_t *ms, int32_t partition, int create) {
    size_t p = (size_t)partition;

    if (p < ms->nparts && ms->parts[p] != NULL) {
        return ms->parts[p];
    }
    if (!create) {
        return NULL;
    }
    if (p >= ms->nparts) {
        size_t n = p + 1;
        mem_part_t **parts = realloc(ms->parts, n * sizeof(*parts));

        if (parts == NULL) {
            return NULL;
        }
        memset(parts + ms->nparts, 0, (n - ms->nparts) * sizeof(*parts));
        ms->parts = parts;
        ms->nparts = n;
    }
    ms->parts[p] = calloc(1, sizeof(mem_part_t));
    if (ms->parts[p] != NULL) {
        ms->parts[p]->next_seq = 1;
    }
    return ms->parts[p];
}

static void part_free(mem_part_t *part) {
    size_t i;

    if (part == NULL) {
        return;
    }
    lp_mem_table_free(&part->leads);
    lp_mem_heap_free(&part->timers);
    for (i = 0; i < part->noffsets; i++) {
        free(part->offsets[i].topic);
    }
    free(part->offsets);
    for (i = part->out_head; i < part->out_head + part->out_len; i++) {
        free(part->outbox[i].buf);
    }
    free(part->outbox);
    free(part->supp);
    free(part);
}

static int mem_fence(lp_store_t *store, int32_t partition, int64_t *epoch) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    part = lp_mem_part_get(ms, partition, 1);
    if (part == NULL) {
        return lp_store_fail(store, "store mem: partition %d: out of memory", (int)partition);
    }
    *epoch = ++part->epoch;
    return LP_OK;
}

static mem_offset_t *offset_find(mem_part_t *part, const char *topic) {
    size_t i;

    for (i = 0; i < part->noffsets; i++) {
        if (strcmp(part->offsets[i].topic, topic) == 0) {
            return &part->offsets[i];
        }
    }
    return NULL;
}

static int mem_get_offset(lp_store_t *store, int32_t partition, const char *topic,
                          int64_t *offset) {
    mem_part_t *part;
    mem_offset_t *found;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    part = lp_mem_part_get((mem_store_t *)store, partition, 0);
    found = part == NULL ? NULL : offset_find(part, topic);
    *offset = found == NULL ? -1 : found->next_offset;
    return LP_OK;
}

static int mem_load(lp_store_t *store, int32_t partition, size_t n, const char *const *lead_ids,
                    lp_store_loaded_t *out) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part;
    size_t cap = ms->loaded_cap;
    size_t i;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    if (lp_mem_grow(&ms->loaded_data, &cap, n, sizeof(*ms->loaded_data)) != LP_OK ||
        lp_mem_grow(&ms->loaded_len, &ms->loaded_cap, n, sizeof(*ms->loaded_len)) != LP_OK) {
        return lp_store_fail(store, "store mem: load of %zu leads: out of memory", n);
    }
    part = lp_mem_part_get(ms, partition, 0);
    for (i = 0; i < n; i++) {
        size_t id_len = strlen(lead_ids[i]);
        mem_lead_t *lead = NULL;

        if (part != NULL) {
            lead = lp_mem_table_find(&part->leads, lead_ids[i], id_len,
                                     lp_mem_hash(lead_ids[i], id_len));
        }
        ms->loaded_data[i] = lead == NULL ? NULL : lead->data;
        ms->loaded_len[i] = lead == NULL || lead->data == NULL ? 0 : lead->len;
    }
    out->n = n;
    out->data = ms->loaded_data;
    out->len = ms->loaded_len;
    return LP_OK;
}

static const char *batch_item_id(const lp_store_batch_t *batch, size_t i) {
    return i < batch->nleads ? batch->leads[i].lead_id : batch->timers[i - batch->nleads].lead_id;
}

/* Frees the first n pending allocations (records without data, buffers, topics). */
static void pending_free(mem_store_t *ms, size_t n) {
    size_t i;

    for (i = 0; i < n; i++) {
        free(ms->pending[i]);
        ms->pending[i] = NULL;
    }
}

/* pending layout: [records for leads and timers][data buffers for leads][topics][outbox]. */
static int commit_reserve(mem_store_t *ms, mem_part_t *part, const lp_store_batch_t *batch) {
    size_t nids = batch->nleads + batch->ntimers;
    size_t total = nids + batch->nleads + batch->noffsets + batch->noutbox;
    size_t done = 0;
    size_t i;

    if (lp_mem_grow(&ms->pending, &ms->pending_cap, total, sizeof(*ms->pending)) != LP_OK ||
        lp_mem_table_reserve(&part->leads, nids) != LP_OK ||
        lp_mem_heap_reserve(&part->timers, batch->ntimers) != LP_OK) {
        goto err;
    }
    if (part->out_head > 0 && part->out_head + part->out_len + batch->noutbox > part->out_cap) {
        memmove(part->outbox, part->outbox + part->out_head, part->out_len * sizeof(mem_entry_t));
        part->out_head = 0;
    }
    if (lp_mem_grow(&part->outbox, &part->out_cap, part->out_head + part->out_len + batch->noutbox,
                    sizeof(mem_entry_t)) != LP_OK) {
        goto err;
    }
    for (i = 0; i < nids; i++, done++) {
        const char *id = batch_item_id(batch, i);
        size_t id_len = strlen(id);
        uint64_t hash = lp_mem_hash(id, id_len);

        ms->pending[i] = NULL;
        if (lp_mem_table_find(&part->leads, id, id_len, hash) == NULL &&
            (ms->pending[i] = lp_mem_lead_new(id, id_len, hash)) == NULL) {
            goto err;
        }
    }
    for (i = 0; i < batch->nleads; i++, done++) {
        if ((ms->pending[nids + i] = malloc(batch->leads[i].len)) == NULL) {
            goto err;
        }
    }
    for (i = 0; i < batch->noffsets; i++, done++) {
        size_t at = nids + batch->nleads + i;

        ms->pending[at] = NULL;
        if (offset_find(part, batch->offsets[i].topic) == NULL &&
            (ms->pending[at] = strdup(batch->offsets[i].topic)) == NULL) {
            goto err;
        }
    }
    if (lp_mem_grow(&part->offsets, &part->offsets_cap, part->noffsets + batch->noffsets,
                    sizeof(mem_offset_t)) != LP_OK ||
        lp_mem_grow(&part->supp, &part->supp_cap, part->nsupp + batch->nsuppress,
                    sizeof(*part->supp)) != LP_OK) {
        goto err;
    }
    for (i = 0; i < batch->noutbox; i++, done++) {
        const lp_store_outbox_t *e = &batch->outbox[i];
        size_t event_id_len = e->event_id == NULL ? 0 : strlen(e->event_id);

        ms->pending[total - batch->noutbox + i] =
            malloc(e->key_len + e->value_len + event_id_len + e->meta_len + 2);
        if (ms->pending[total - batch->noutbox + i] == NULL) {
            goto err;
        }
    }
    return LP_OK;
err:
    pending_free(ms, done);
    return lp_store_fail(&ms->base, "store mem: partition %d: commit: out of memory",
                         (int)batch->partition);
}

/* Erasures, before the batch's writes: state and timer gone, undelivered entries keyed by the
 * lead dropped (marked acked: reads skip them, the head compaction frees them). */
static void commit_erase(mem_part_t *part, const lp_store_batch_t *batch) {
    for (size_t i = 0; i < batch->nerase; i++) {
        const char *id = batch->erase[i];
        size_t id_len = strlen(id);
        mem_lead_t *lead = lp_mem_table_find(&part->leads, id, id_len, lp_mem_hash(id, id_len));
        if (lead != NULL) {
            free(lead->data);
            lead->data = NULL;
            lead->len = 0;
            lp_mem_heap_set(&part->timers, lead, 0);
        }
        for (size_t k = part->out_head; k < part->out_head + part->out_len; k++) {
            mem_entry_t *e = &part->outbox[k];
            /* LeadErased records (kind 3) stay: one per erasure request; so do the members
             * topic's records (kinds 4, 5: keyed by an account, which a lead id may spell). */
            if (!e->acked && e->kind != 3 && e->kind != 4 && e->kind != 5 && e->key_len == id_len &&
                memcmp(e->buf, id, id_len) == 0) {
                e->acked = 1;
            }
        }
    }
}

/* Suppression entries set or removed (room reserved by commit_reserve). */
static void commit_suppress(mem_part_t *part, const lp_store_batch_t *batch) {
    for (size_t i = 0; i < batch->nsuppress; i++) {
        const lp_store_suppress_t *e = &batch->suppress[i];
        size_t k = 0;
        while (k < part->nsupp && strcmp(part->supp[k].hash, e->hash) != 0) {
            k++;
        }
        if (e->until_ms < 0) {
            if (k < part->nsupp) {
                part->supp[k] = part->supp[--part->nsupp];
            }
        } else {
            if (k == part->nsupp) {
                part->nsupp++;
            }
            part->supp[k] = *e;
        }
    }
}

static void commit_apply(mem_store_t *ms, mem_part_t *part, const lp_store_batch_t *batch) {
    size_t nids = batch->nleads + batch->ntimers;
    size_t total = nids + batch->nleads + batch->noffsets + batch->noutbox;
    size_t i;

    commit_erase(part, batch);
    for (i = 0; i < nids; i++) {
        const char *id = batch_item_id(batch, i);
        size_t id_len = strlen(id);
        mem_lead_t *lead = lp_mem_table_find(&part->leads, id, id_len, lp_mem_hash(id, id_len));

        if (lead == NULL) {
            lead = ms->pending[i];
            lp_mem_table_insert(&part->leads, lead);
        } else {
            free(ms->pending[i]); /* the same new id came twice in the batch */
        }
        ms->pending[i] = NULL;
        if (i < batch->nleads) {
            free(lead->data);
            lead->data = ms->pending[nids + i];
            lead->len = batch->leads[i].len;
            memcpy(lead->data, batch->leads[i].data, lead->len);
            ms->pending[nids + i] = NULL;
        } else {
            lp_mem_heap_set(&part->timers, lead, batch->timers[i - batch->nleads].due_ms);
        }
    }
    for (i = 0; i < batch->noffsets; i++) {
        mem_offset_t *offset = offset_find(part, batch->offsets[i].topic);

        if (offset == NULL) {
            offset = &part->offsets[part->noffsets++];
            offset->topic = ms->pending[nids + batch->nleads + i];
            ms->pending[nids + batch->nleads + i] = NULL;
        }
        offset->next_offset = batch->offsets[i].next_offset;
    }
    for (i = 0; i < batch->noutbox; i++) {
        const lp_store_outbox_t *e = &batch->outbox[i];
        mem_entry_t *entry = &part->outbox[part->out_head + part->out_len++];
        uint8_t *p = ms->pending[total - batch->noutbox + i];

        ms->pending[total - batch->noutbox + i] = NULL;
        entry->seq = part->next_seq++;
        entry->kind = e->kind;
        entry->acked = 0;
        entry->buf = p;
        entry->key_len = e->key_len;
        entry->value_len = e->value_len;
        entry->event_id_len = e->event_id == NULL ? 0 : strlen(e->event_id);
        entry->meta_len = e->meta_len;
        /* Lengths of zero may come with NULL pointers: memcpy(x, NULL, 0) is undefined. */
        if (e->key_len > 0) {
            memcpy(p, e->key, e->key_len);
        }
        p += e->key_len;
        if (e->value_len > 0) {
            memcpy(p, e->value, e->value_len);
        }
        p += e->value_len;
        if (entry->event_id_len > 0) {
            memcpy(p, e->event_id, entry->event_id_len);
        }
        p[entry->event_id_len] = '\0';
        p += entry->event_id_len + 1;
        if (e->meta_len > 0) {
            memcpy(p, e->meta, e->meta_len);
        }
        p[e->meta_len] = '\0';
    }
    commit_suppress(part, batch);
}

static int mem_commit(lp_store_t *store, const lp_store_batch_t *batch) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part;

    if (lp_store_batch_check(store, batch) != LP_OK) {
        return LP_ERR;
    }
    part = lp_mem_part_get(ms, batch->partition, 1);
    if (part == NULL) {
        return lp_store_fail(store, "store mem: partition %d: out of memory",
                             (int)batch->partition);
    }
    if (batch->epoch != part->epoch) {
        lp_store_fail(store,
                      "store mem: partition %d: commit fenced: epoch is %" PRId64
                      ", writer has %" PRId64 " (the partition moved to another worker)",
                      (int)batch->partition, part->epoch, batch->epoch);
        return LP_STORE_FENCED;
    }
    /* Offsets are compare-and-set, as in the Redis script. */
    if (batch->noffsets > 0) {
        bool moved = false, dup = true, progress = false;
        for (size_t i = 0; i < batch->noffsets; i++) {
            const mem_offset_t *found = offset_find(part, batch->offsets[i].topic);
            int64_t cur = found == NULL ? -1 : found->next_offset;
            moved |= cur != batch->offsets[i].expected;
            dup &= cur >= batch->offsets[i].next_offset;
            progress |= batch->offsets[i].next_offset > batch->offsets[i].expected;
        }
        if (moved) {
            if (dup && progress) {
                return LP_STORE_DUPLICATE;
            }
            lp_store_fail(store,
                          "store mem: partition %d: commit refused: stored offsets are not where "
                          "the writer believes",
                          (int)batch->partition);
            return LP_STORE_MOVED;
        }
    }
    if (commit_reserve(ms, part, batch) != LP_OK) {
        return LP_ERR;
    }
    commit_apply(ms, part, batch);
    return LP_OK;
}

static int mem_due(lp_store_t *store, int32_t partition, int64_t now_ms, size_t max, size_t *n,
                   const char ***lead_ids) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part;
    size_t cap;
    size_t i;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    part = lp_mem_part_get(ms, partition, 0);
    *n = 0;
    *lead_ids = ms->due_ids;
    if (part == NULL || max == 0) {
        return LP_OK;
    }
    if (max > part->timers.n) {
        max = part->timers.n;
    }
    cap = ms->due_cap;
    if (lp_mem_grow(&ms->due_ids, &cap, max + 2, sizeof(*ms->due_ids)) != LP_OK) {
        goto oom;
    }
    cap = ms->due_cap;
    if (lp_mem_grow(&ms->due_leads, &cap, max + 2, sizeof(*ms->due_leads)) != LP_OK) {
        goto oom;
    }
    if (lp_mem_grow(&ms->due_scratch, &ms->due_cap, max + 2, sizeof(*ms->due_scratch)) != LP_OK) {
        goto oom;
    }
    *n = lp_mem_heap_due(&part->timers, now_ms, max, ms->due_leads, ms->due_scratch);
    for (i = 0; i < *n; i++) {
        ms->due_ids[i] = ms->due_leads[i]->id;
    }
    *lead_ids = ms->due_ids;
    return LP_OK;
oom:
    return lp_store_fail(store, "store mem: partition %d: due: out of memory", (int)partition);
}

static void mem_destroy(lp_store_t *store) {
    mem_store_t *ms = (mem_store_t *)store;
    size_t i;

    for (i = 0; i < ms->nparts; i++) {
        part_free(ms->parts[i]);
    }
    free(ms->parts);
    free(ms->loaded_data);
    free(ms->loaded_len);
    free(ms->due_ids);
    free(ms->due_leads);
    free(ms->due_scratch);
    free(ms->read);
    free(ms->pending);
    free(ms);
}

static int mem_suppressed(lp_store_t *store, int32_t partition, size_t *n,
                          const lp_store_suppress_t **entries) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part;

    *n = 0;
    *entries = NULL;
    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    part = lp_mem_part_get(ms, partition, 0);
    if (part != NULL) {
        *n = part->nsupp;
        *entries = part->supp;
    }
    return LP_OK;
}

static const lp_store_ops_t mem_ops = {
    .name = "mem",
    .fence = mem_fence,
    .get_offset = mem_get_offset,
    .load = mem_load,
    .commit = mem_commit,
    .due = mem_due,
    .outbox_read = lp_mem_outbox_read,
    .outbox_ack = lp_mem_outbox_ack,
    .suppressed = mem_suppressed,
    .destroy = mem_destroy,
    .scan = lp_mem_scan,
};

lp_store_t *lp_store_mem_new(void) {
    mem_store_t *ms = calloc(1, sizeof(*ms));

    if (ms == NULL) {
        return NULL;
    }
    ms->base.ops = &mem_ops;
    return &ms->base;
}
