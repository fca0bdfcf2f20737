/* A bounded LRU cache of encoded leads, keyed by (partition, lead id). It holds the bytes last
 * committed, so it is never dirty: a failed commit leaves it valid. */
#include <stdlib.h>
#include <string.h>

#include "engine/cache.h"

typedef struct lp_cache_entry {
    struct lp_cache_entry *hnext;              /* hash chain */
    struct lp_cache_entry *prev, *next;        /* LRU list, most recent first */
    uint64_t hash;
    int32_t partition;
    uint16_t id_len;
    uint32_t data_len;
    uint8_t *data;
    char id[];                                 /* lead id, NUL-terminated */
} lp_cache_entry_t;

struct lp_cache {
    size_t max, count, nbuckets;
    lp_cache_entry_t **buckets;
    lp_cache_entry_t *head, *tail;
};

static uint64_t cache_hash(int32_t partition, const char *id, size_t len) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uint32_t)partition;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)id[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

lp_cache_t *lp_cache_new(size_t max) {
    lp_cache_t *cache = calloc(1, sizeof(*cache));
    if (cache == NULL) {
        return NULL;
    }
    cache->max = max;
    cache->nbuckets = 1024;
    while (cache->nbuckets < max) {
        cache->nbuckets <<= 1;
    }
    cache->buckets = calloc(cache->nbuckets, sizeof(*cache->buckets));
    if (cache->buckets == NULL) {
        free(cache);
        return NULL;
    }
    return cache;
}

static void lru_unlink(lp_cache_t *cache, lp_cache_entry_t *e) {
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        cache->head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        cache->tail = e->prev;
    }
    e->prev = e->next = NULL;
}

static void lru_push_front(lp_cache_t *cache, lp_cache_entry_t *e) {
    e->prev = NULL;
    e->next = cache->head;
    if (cache->head != NULL) {
        cache->head->prev = e;
    }
    cache->head = e;
    if (cache->tail == NULL) {
        cache->tail = e;
    }
}

static lp_cache_entry_t **find_slot(lp_cache_t *cache, uint64_t hash, int32_t partition,
                                    const char *id, size_t len) {
    lp_cache_entry_t **slot = &cache->buckets[hash & (cache->nbuckets - 1)];
    while (*slot != NULL) {
        lp_cache_entry_t *e = *slot;
        if (e->hash == hash && e->partition == partition && e->id_len == len &&
            memcmp(e->id, id, len) == 0) {
            return slot;
        }
        slot = &e->hnext;
    }
    return slot;
}

static void remove_at(lp_cache_t *cache, lp_cache_entry_t **slot) {
    lp_cache_entry_t *e = *slot;
    *slot = e->hnext;
    lru_unlink(cache, e);
    free(e->data);
    free(e);
    cache->count--;
}

const uint8_t *lp_cache_get(lp_cache_t *cache, int32_t partition, const char *id, size_t *len) {
    if (cache == NULL || cache->max == 0) {
        return NULL;
    }
    size_t id_len = strlen(id);
    lp_cache_entry_t **slot = find_slot(cache, cache_hash(partition, id, id_len), partition, id, id_len);
    if (*slot == NULL) {
        return NULL;
    }
    lru_unlink(cache, *slot);
    lru_push_front(cache, *slot);
    *len = (*slot)->data_len;
    return (*slot)->data;
}

int lp_cache_put(lp_cache_t *cache, int32_t partition, const char *id, const uint8_t *data,
                 size_t len) {
    if (cache == NULL || cache->max == 0) {
        return 0;
    }
    size_t id_len = strlen(id);
    uint64_t hash = cache_hash(partition, id, id_len);
    lp_cache_entry_t **slot = find_slot(cache, hash, partition, id, id_len);
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, data, len);
    if (*slot != NULL) {
        lp_cache_entry_t *e = *slot;
        free(e->data);
        e->data = copy;
        e->data_len = (uint32_t)len;
        lru_unlink(cache, e);
        lru_push_front(cache, e);
        return 0;
    }
    lp_cache_entry_t *e = calloc(1, sizeof(*e) + id_len + 1);
    if (e == NULL) {
        free(copy);
        return -1;
    }
    e->hash = hash;
    e->partition = partition;
    e->id_len = (uint16_t)id_len;
    memcpy(e->id, id, id_len + 1);
    e->data = copy;
    e->data_len = (uint32_t)len;
    *slot = e;
    lru_push_front(cache, e);
    cache->count++;
    while (cache->count > cache->max && cache->tail != NULL) {
        lp_cache_entry_t *victim = cache->tail;
        remove_at(cache, find_slot(cache, victim->hash, victim->partition, victim->id,
                                   victim->id_len));
    }
    return 0;
}

void lp_cache_forget(lp_cache_t *cache, int32_t partition, const char *id) {
    if (cache == NULL || cache->max == 0) {
        return;
    }
    size_t id_len = strlen(id);
    lp_cache_entry_t **slot = find_slot(cache, cache_hash(partition, id, id_len), partition, id,
                                        id_len);
    if (*slot != NULL) {
        remove_at(cache, slot);
    }
}

void lp_cache_drop_partition(lp_cache_t *cache, int32_t partition) {
    if (cache == NULL) {
        return;
    }
    for (size_t b = 0; b < cache->nbuckets; b++) {
        lp_cache_entry_t **slot = &cache->buckets[b];
        while (*slot != NULL) {
            if ((*slot)->partition == partition) {
                remove_at(cache, slot);
            } else {
                slot = &(*slot)->hnext;
            }
        }
    }
}

size_t lp_cache_count(const lp_cache_t *cache) {
    return cache == NULL ? 0 : cache->count;
}

void lp_cache_destroy(lp_cache_t *cache) {
    if (cache == NULL) {
        return;
    }
    while (cache->head != NULL) {
        lp_cache_entry_t *e = cache->head;
        cache->head = e->next;
        free(e->data);
        free(e);
    }
    free(cache->buckets);
    free(cache);
}
