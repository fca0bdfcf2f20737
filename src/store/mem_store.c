/* leadpulse in-memory store: the semantics of the Redis store without a server, for `replay` and
 * engine tests. A commit first reserves every allocation it may need, then applies: a failed
 * allocation leaves the partition untouched (all or nothing, like the Redis script). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/mem_index.h"
#include "store/store_internal.h"

typedef struct {
    char *topic;
    int64_t next_offset;
} mem_offset_t;

typedef struct {
    uint64_t seq; /* entry id "<seq>-0" */
    int kind;
    int acked;
    uint8_t *buf; /* key, value, event_id NUL, meta NUL in one allocation */
    size_t key_len;
    size_t value_len;
    size_t event_id_len;
    size_t meta_len;
} mem_entry_t;

typedef struct {
    int64_t epoch;
    mem_table_t leads;
    mem_heap_t timers;
    mem_offset_t *offsets;
    size_t noffsets;
    size_t offsets_cap;
    mem_entry_t *outbox; /* live entries are outbox[head .. head + len) */
    size_t out_head;
    size_t out_len;
    size_t out_cap;
    uint64_t next_seq;
} mem_part_t;

typedef struct {
    lp_store_t base;
    mem_part_t **parts; /* indexed by partition */
    size_t nparts;
    /* Scratch handed to callers (valid until the next call) and used by commit. */
    const uint8_t **loaded_data;
    size_t *loaded_len;
    size_t loaded_cap;
    const char **due_ids;
    mem_lead_t **due_leads;
    size_t *due_scratch;
    size_t due_cap;
    lp_store_outbox_t *read;
    size_t read_cap;
    void **pending; /* commit: per batch item, a new record / buffer / topic, or NULL */
    size_t pending_cap;
} mem_store_t;

static const lp_store_ops_t mem_ops;

/* Grows *arr (elements of size elem) to hold at least n; LP_OK or LP_ERR (unchanged). */
static int grow(void *arr, size_t *cap, size_t n, size_t elem) {
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

static mem_part_t *part_get(mem_store_t *ms, int32_t partition, int create) {
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
    free(part);
}

static int mem_fence(lp_store_t *store, int32_t partition, int64_t *epoch) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    part = part_get(ms, partition, 1);
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
    part = part_get((mem_store_t *)store, partition, 0);
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
    if (grow(&ms->loaded_data, &cap, n, sizeof(*ms->loaded_data)) != LP_OK ||
        grow(&ms->loaded_len, &ms->loaded_cap, n, sizeof(*ms->loaded_len)) != LP_OK) {
        return lp_store_fail(store, "store mem: load of %zu leads: out of memory", n);
    }
    part = part_get(ms, partition, 0);
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

    if (grow(&ms->pending, &ms->pending_cap, total, sizeof(*ms->pending)) != LP_OK ||
        lp_mem_table_reserve(&part->leads, nids) != LP_OK ||
        lp_mem_heap_reserve(&part->timers, batch->ntimers) != LP_OK) {
        goto err;
    }
    if (part->out_head > 0 && part->out_head + part->out_len + batch->noutbox > part->out_cap) {
        memmove(part->outbox, part->outbox + part->out_head, part->out_len * sizeof(mem_entry_t));
        part->out_head = 0;
    }
    if (grow(&part->outbox, &part->out_cap, part->out_head + part->out_len + batch->noutbox,
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
    if (grow(&part->offsets, &part->offsets_cap, part->noffsets + batch->noffsets,
             sizeof(mem_offset_t)) != LP_OK) {
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

static void commit_apply(mem_store_t *ms, mem_part_t *part, const lp_store_batch_t *batch) {
    size_t nids = batch->nleads + batch->ntimers;
    size_t total = nids + batch->nleads + batch->noffsets + batch->noutbox;
    size_t i;

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
}

static int mem_commit(lp_store_t *store, const lp_store_batch_t *batch) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part;

    if (lp_store_batch_check(store, batch) != LP_OK) {
        return LP_ERR;
    }
    part = part_get(ms, batch->partition, 1);
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
    part = part_get(ms, partition, 0);
    *n = 0;
    *lead_ids = ms->due_ids;
    if (part == NULL || max == 0) {
        return LP_OK;
    }
    if (max > part->timers.n) {
        max = part->timers.n;
    }
    cap = ms->due_cap;
    if (grow(&ms->due_ids, &cap, max + 2, sizeof(*ms->due_ids)) != LP_OK) {
        goto oom;
    }
    cap = ms->due_cap;
    if (grow(&ms->due_leads, &cap, max + 2, sizeof(*ms->due_leads)) != LP_OK) {
        goto oom;
    }
    if (grow(&ms->due_scratch, &ms->due_cap, max + 2, sizeof(*ms->due_scratch)) != LP_OK) {
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

static int mem_outbox_read(lp_store_t *store, int32_t partition, size_t max,
                           lp_store_outbox_list_t *out) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part;
    size_t i;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    part = part_get(ms, partition, 0);
    out->n = 0;
    out->entries = ms->read;
    if (part == NULL) {
        return LP_OK;
    }
    if (max > part->out_len) {
        max = part->out_len;
    }
    if (grow(&ms->read, &ms->read_cap, max, sizeof(*ms->read)) != LP_OK) {
        return lp_store_fail(store, "store mem: partition %d: outbox_read: out of memory",
                             (int)partition);
    }
    for (i = part->out_head; i < part->out_head + part->out_len && out->n < max; i++) {
        const mem_entry_t *entry = &part->outbox[i];
        lp_store_outbox_t *e = &ms->read[out->n];
        const uint8_t *p = entry->buf;

        if (entry->acked) {
            continue;
        }
        snprintf(e->id, sizeof(e->id), "%" PRIu64 "-0", entry->seq);
        e->kind = entry->kind;
        e->key = (const char *)p;
        e->key_len = entry->key_len;
        p += entry->key_len;
        e->value = p;
        e->value_len = entry->value_len;
        p += entry->value_len;
        e->event_id = (const char *)p;
        p += entry->event_id_len + 1;
        e->meta = (const char *)p;
        e->meta_len = entry->meta_len;
        out->n++;
    }
    out->entries = ms->read;
    return LP_OK;
}

/* Parses "<n>-0" (what read hands out). LP_OK or LP_ERR. */
static int parse_seq(const char *id, uint64_t *seq) {
    char *end;

    if (id[0] < '0' || id[0] > '9') {
        return LP_ERR;
    }
    *seq = strtoull(id, &end, 10);
    return strcmp(end, "-0") == 0 ? LP_OK : LP_ERR;
}

static int mem_outbox_ack(lp_store_t *store, int32_t partition, int64_t epoch, size_t n,
                          const char *const *ids) {
    mem_part_t *part;
    uint64_t seq;
    size_t i;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    if (n == 0) {
        return LP_OK;
    }
    for (i = 0; i < n; i++) {
        if (parse_seq(ids[i], &seq) != LP_OK) {
            return lp_store_fail(store,
                                 "store mem: partition %d: outbox ack: bad entry id "
                                 "'%.48s'",
                                 (int)partition, ids[i]);
        }
    }
    part = part_get((mem_store_t *)store, partition, 0);
    if (epoch != (part == NULL ? 0 : part->epoch)) {
        lp_store_fail(store,
                      "store mem: partition %d: outbox ack fenced: epoch is %" PRId64
                      ", writer has %" PRId64,
                      (int)partition, part == NULL ? 0 : part->epoch, epoch);
        return LP_STORE_FENCED;
    }
    if (part == NULL) {
        return LP_OK;
    }
    for (i = 0; i < n; i++) {
        size_t lo = part->out_head;
        size_t hi = part->out_head + part->out_len;

        parse_seq(ids[i], &seq);
        /* Sequence numbers increase along the array: binary search; unknown ids are ignored. */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (part->outbox[mid].seq < seq) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo < part->out_head + part->out_len && part->outbox[lo].seq == seq &&
            !part->outbox[lo].acked) {
            part->outbox[lo].acked = 1;
            free(part->outbox[lo].buf);
            part->outbox[lo].buf = NULL;
        }
    }
    while (part->out_len > 0 && part->outbox[part->out_head].acked) {
        part->out_head++;
        part->out_len--;
    }
    if (part->out_len == 0) {
        part->out_head = 0;
    }
    return LP_OK;
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

/* Walks the partition's lead table by slot index: the cursor is the next slot + 1 (0 = done). */
static int mem_scan(lp_store_t *store, int32_t partition, uint64_t *cursor, size_t count,
                    lp_store_scan_t *out) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part = part_get(ms, partition, 0);
    size_t cap = ms->loaded_cap, idcap = ms->due_cap;
    size_t want = count > 0 ? count : 100;
    size_t i = *cursor > 0 ? (size_t)(*cursor - 1) : 0;

    out->n = 0;
    if (part == NULL || i >= part->leads.cap) {
        *cursor = 0;
        return LP_OK;
    }
    if (grow(&ms->loaded_data, &cap, want, sizeof(*ms->loaded_data)) != LP_OK ||
        grow(&ms->loaded_len, &ms->loaded_cap, want, sizeof(*ms->loaded_len)) != LP_OK ||
        grow(&ms->due_ids, &idcap, want, sizeof(*ms->due_ids)) != LP_OK) {
        return lp_store_fail(store, "store mem: scan of partition %d: out of memory",
                             (int)partition);
    }
    size_t n = 0;
    for (; i < part->leads.cap && n < want; i++) {
        const mem_lead_t *lead = part->leads.slots[i];
        if (lead == NULL || lead->data == NULL) {
            continue;
        }
        ms->due_ids[n] = lead->id;
        ms->loaded_data[n] = lead->data;
        ms->loaded_len[n] = lead->len;
        n++;
    }
    *cursor = i < part->leads.cap ? (uint64_t)i + 1 : 0;
    out->n = n;
    out->ids = ms->due_ids;
    out->data = ms->loaded_data;
    out->len = ms->loaded_len;
    return LP_OK;
}

static const lp_store_ops_t mem_ops = {
    .name = "mem",
    .fence = mem_fence,
    .get_offset = mem_get_offset,
    .load = mem_load,
    .commit = mem_commit,
    .due = mem_due,
    .outbox_read = mem_outbox_read,
    .outbox_ack = mem_outbox_ack,
    .destroy = mem_destroy,
    .scan = mem_scan,
};

lp_store_t *lp_store_mem_new(void) {
    mem_store_t *ms = calloc(1, sizeof(*ms));

    if (ms == NULL) {
        return NULL;
    }
    ms->base.ops = &mem_ops;
    return &ms->base;
}
