/* leadpulse in-memory store: the outbox (read, fenced delete) and the lead scan. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/mem_internal.h"

int lp_mem_outbox_read(lp_store_t *store, int32_t partition, size_t max,
                       lp_store_outbox_list_t *out) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part;
    size_t i;

    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    part = lp_mem_part_get(ms, partition, 0);
    out->n = 0;
    out->entries = ms->read;
    if (part == NULL) {
        return LP_OK;
    }
    if (max > part->out_len) {
        max = part->out_len;
    }
    if (lp_mem_grow(&ms->read, &ms->read_cap, max, sizeof(*ms->read)) != LP_OK) {
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

int lp_mem_outbox_ack(lp_store_t *store, int32_t partition, int64_t epoch, size_t n,
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
    part = lp_mem_part_get((mem_store_t *)store, partition, 0);
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

/* Walks the partition's lead table by slot index: the cursor is the next slot + 1 (0 = done). */
int lp_mem_scan(lp_store_t *store, int32_t partition, uint64_t *cursor, size_t count,
                lp_store_scan_t *out) {
    mem_store_t *ms = (mem_store_t *)store;
    mem_part_t *part = lp_mem_part_get(ms, partition, 0);
    size_t cap = ms->loaded_cap, idcap = ms->due_cap;
    size_t want = count > 0 ? count : 100;
    size_t i = *cursor > 0 ? (size_t)(*cursor - 1) : 0;

    out->n = 0;
    if (part == NULL || i >= part->leads.cap) {
        *cursor = 0;
        return LP_OK;
    }
    if (lp_mem_grow(&ms->loaded_data, &cap, want, sizeof(*ms->loaded_data)) != LP_OK ||
        lp_mem_grow(&ms->loaded_len, &ms->loaded_cap, want, sizeof(*ms->loaded_len)) != LP_OK ||
        lp_mem_grow(&ms->due_ids, &idcap, want, sizeof(*ms->due_ids)) != LP_OK) {
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
