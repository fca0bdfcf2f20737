/* leadpulse store: the wrappers over the ops table and the checks both implementations share. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/store_internal.h"

/* Upper bound on each count of a batch: keeps the Redis argument count far inside an int. */
#define LP_STORE_BATCH_MAX 4000000

int lp_store_fail(lp_store_t *store, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(store->errstr, sizeof(store->errstr), fmt, ap);
    va_end(ap);
    return LP_ERR;
}

int lp_store_check_partition(lp_store_t *store, int32_t partition) {
    if (partition < 0 || partition > LP_STORE_PARTITIONS_MAX - 1) {
        return lp_store_fail(store, "store %s: partition %d out of range 0..%d", store->ops->name,
                             (int)partition, LP_STORE_PARTITIONS_MAX - 1);
    }
    return LP_OK;
}

int lp_store_partition_tag(int32_t partition, char *buf, size_t size) {
    if (partition >= LP_ACCOUNT_PARTITION_BASE) {
        return snprintf(buf, size, "a%d", (int)(partition - LP_ACCOUNT_PARTITION_BASE));
    }
    return snprintf(buf, size, "%d", (int)partition);
}

int lp_store_batch_check(lp_store_t *store, const lp_store_batch_t *batch) {
    const char *name = store->ops->name;
    size_t i;

    if (batch == NULL) {
        return lp_store_fail(store, "store %s: commit without a batch", name);
    }
    if (lp_store_check_partition(store, batch->partition) != LP_OK) {
        return LP_ERR;
    }
    if (batch->epoch < 0) {
        return lp_store_fail(store, "store %s: partition %d: negative epoch %lld", name,
                             (int)batch->partition, (long long)batch->epoch);
    }
    if (batch->nleads > LP_STORE_BATCH_MAX || batch->ntimers > LP_STORE_BATCH_MAX ||
        batch->noffsets > LP_STORE_BATCH_MAX || batch->noutbox > LP_STORE_BATCH_MAX) {
        return lp_store_fail(store, "store %s: partition %d: batch larger than %d items per kind",
                             name, (int)batch->partition, LP_STORE_BATCH_MAX);
    }
    if (batch->nerase > LP_STORE_BATCH_MAX || batch->nsuppress > LP_STORE_BATCH_MAX ||
        (batch->nerase > 0 && batch->erase == NULL) ||
        (batch->nsuppress > 0 && batch->suppress == NULL)) {
        return lp_store_fail(store, "store %s: partition %d: bad erasure or suppression list", name,
                             (int)batch->partition);
    }
    for (i = 0; i < batch->nerase; i++) {
        if (batch->erase[i] == NULL || batch->erase[i][0] == '\0') {
            return lp_store_fail(store, "store %s: partition %d: erasure %zu has no lead id", name,
                                 (int)batch->partition, i);
        }
    }
    for (i = 0; i < batch->nsuppress; i++) {
        const char *h = batch->suppress[i].hash;
        if (strlen(h) != 32 || strspn(h, "0123456789abcdef") != 32) {
            return lp_store_fail(store,
                                 "store %s: partition %d: suppression entry %zu is not 32 hex "
                                 "digits",
                                 name, (int)batch->partition, i);
        }
    }
    if ((batch->nleads > 0 && batch->leads == NULL) ||
        (batch->ntimers > 0 && batch->timers == NULL) ||
        (batch->noffsets > 0 && batch->offsets == NULL) ||
        (batch->noutbox > 0 && batch->outbox == NULL)) {
        return lp_store_fail(store, "store %s: partition %d: batch count without its array", name,
                             (int)batch->partition);
    }
    for (i = 0; i < batch->nleads; i++) {
        const lp_store_lead_t *lead = &batch->leads[i];

        /* An empty value would read back as "unknown lead": refuse it rather than lose it. */
        if (lead->lead_id == NULL || lead->lead_id[0] == '\0' || lead->data == NULL ||
            lead->len == 0) {
            return lp_store_fail(store, "store %s: partition %d: lead %zu has no id or no data",
                                 name, (int)batch->partition, i);
        }
    }
    for (i = 0; i < batch->ntimers; i++) {
        const lp_store_timer_t *timer = &batch->timers[i];

        if (timer->lead_id == NULL || timer->lead_id[0] == '\0' || timer->due_ms < 0) {
            return lp_store_fail(store,
                                 "store %s: partition %d: timer %zu has no lead id or a "
                                 "negative due time",
                                 name, (int)batch->partition, i);
        }
    }
    for (i = 0; i < batch->noffsets; i++) {
        const lp_store_offset_t *offset = &batch->offsets[i];

        if (offset->topic == NULL || offset->topic[0] == '\0' || offset->next_offset < 0 ||
            offset->expected < -1 || offset->expected > offset->next_offset) {
            return lp_store_fail(store,
                                 "store %s: partition %d: offset %zu has no topic or a "
                                 "negative offset",
                                 name, (int)batch->partition, i);
        }
    }
    for (i = 0; i < batch->noutbox; i++) {
        const lp_store_outbox_t *entry = &batch->outbox[i];

        if ((entry->key == NULL && entry->key_len > 0) ||
            (entry->value == NULL && entry->value_len > 0) ||
            (entry->meta == NULL && entry->meta_len > 0)) {
            return lp_store_fail(store,
                                 "store %s: partition %d: outbox entry %zu has a length "
                                 "without its bytes",
                                 name, (int)batch->partition, i);
        }
    }
    return LP_OK;
}

void lp_store_destroy(lp_store_t *store) {
    if (store == NULL) {
        return;
    }
    store->ops->destroy(store);
}

int lp_store_fence(lp_store_t *store, int32_t partition, int64_t *epoch) {
    if (epoch == NULL) {
        return lp_store_fail(store, "store %s: fence without an epoch pointer", store->ops->name);
    }
    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    return store->ops->fence(store, partition, epoch);
}

int lp_store_get_offset(lp_store_t *store, int32_t partition, const char *topic, int64_t *offset) {
    if (topic == NULL || topic[0] == '\0' || offset == NULL) {
        return lp_store_fail(store, "store %s: get_offset without a topic or an offset pointer",
                             store->ops->name);
    }
    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    return store->ops->get_offset(store, partition, topic, offset);
}

int lp_store_load(lp_store_t *store, int32_t partition, size_t n, const char *const *lead_ids,
                  lp_store_loaded_t *out) {
    size_t i;

    if (out == NULL || (n > 0 && lead_ids == NULL)) {
        return lp_store_fail(store, "store %s: load without ids or an output", store->ops->name);
    }
    for (i = 0; i < n; i++) {
        if (lead_ids[i] == NULL) {
            return lp_store_fail(store, "store %s: load: lead id %zu is NULL", store->ops->name, i);
        }
    }
    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    return store->ops->load(store, partition, n, lead_ids, out);
}

int lp_store_commit(lp_store_t *store, const lp_store_batch_t *batch) {
    return store->ops->commit(store, batch);
}

int lp_store_commit_send(lp_store_t *store, const lp_store_batch_t *batch) {
    if (store->inflight) {
        return lp_store_fail(store, "store %s: a commit is in flight already", store->ops->name);
    }
    store->inflight = 1;
    if (store->ops->commit_send == NULL) {
        store->inflight_rc = store->ops->commit(store, batch);
        return store->inflight_rc == LP_ERR ? LP_ERR : LP_OK;
    }
    return store->ops->commit_send(store, batch);
}

int lp_store_commit_recv(lp_store_t *store) {
    if (!store->inflight) {
        return lp_store_fail(store, "store %s: no commit in flight", store->ops->name);
    }
    store->inflight = 0;
    if (store->ops->commit_recv == NULL) {
        return store->inflight_rc;
    }
    return store->ops->commit_recv(store);
}

int lp_store_due(lp_store_t *store, int32_t partition, int64_t now_ms, size_t max, size_t *n,
                 const char ***lead_ids) {
    if (n == NULL || lead_ids == NULL) {
        return lp_store_fail(store, "store %s: due without outputs", store->ops->name);
    }
    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    return store->ops->due(store, partition, now_ms, max, n, lead_ids);
}

int lp_store_outbox_read(lp_store_t *store, int32_t partition, size_t max,
                         lp_store_outbox_list_t *out) {
    if (out == NULL) {
        return lp_store_fail(store, "store %s: outbox_read without an output", store->ops->name);
    }
    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    return store->ops->outbox_read(store, partition, max, out);
}

int lp_store_outbox_ack(lp_store_t *store, int32_t partition, int64_t epoch, size_t n,
                        const char *const *ids) {
    size_t i;

    if (n > 0 && ids == NULL) {
        return lp_store_fail(store, "store %s: outbox_ack without ids", store->ops->name);
    }
    for (i = 0; i < n; i++) {
        if (ids[i] == NULL) {
            return lp_store_fail(store, "store %s: outbox_ack: id %zu is NULL", store->ops->name,
                                 i);
        }
    }
    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    return store->ops->outbox_ack(store, partition, epoch, n, ids);
}

int lp_store_scan(lp_store_t *store, int32_t partition, uint64_t *cursor, size_t count,
                  lp_store_scan_t *out) {
    if (cursor == NULL || out == NULL) {
        return lp_store_fail(store, "store %s: scan without cursor or output", store->ops->name);
    }
    if (store->ops->scan == NULL) {
        return lp_store_fail(store, "store %s: scan is not supported", store->ops->name);
    }
    if (lp_store_check_partition(store, partition) != LP_OK) {
        return LP_ERR;
    }
    return store->ops->scan(store, partition, cursor, count, out);
}

void lp_store_loaded_clear(lp_store_loaded_t *loaded) {
    if (loaded == NULL) {
        return;
    }
    memset(loaded, 0, sizeof(*loaded));
}
