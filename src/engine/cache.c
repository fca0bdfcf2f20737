/* A bounded LRU cache of encoded leads, keyed by (partition, lead id). It holds the bytes last
 * committed, so it is never dirty: a failed commit leaves it valid.
 *
 * The worker does a get and a put per event, mostly of leads whose bytes are no longer in the CPU
 * caches, so the layout counts memory accesses: an open-addressing index (linear probing, at most
 * half full, backward-shift deletion: no tombstones) holds for each key its hash tag and a pointer
 * to the entry's one buffer (header, lead id, encoded lead), so a hit reads two cache lines that
 * are not shared. The LRU list links entry numbers in a small array of its own (8 bytes an entry:
 * the neighbours a move touches are likely in the CPU caches, where links inside the entries
 * were two more misses). A put of a changed lead rewrites the buffer in place when the new
 * encoding fits, and a new lead takes over the buffer of the entry it evicts: a full cache serves
 * puts without malloc or free. Entries are numbered 0..count-1 (a removal moves the last one into
 * the hole). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "engine/cache.h"
#include "leadpulse/hash.h"

#define INDEX_MIN 1024
#define NIL UINT32_MAX

/* At the start of each entry's buffer; the lead id and then the encoded lead follow. */
typedef struct {
    uint64_t hash;
    int32_t partition;
    uint32_t data_len;
    uint32_t cap; /* bytes allocated after the header */
    uint16_t id_len;
} head_t;

typedef struct {
    uint32_t prev, next; /* entry numbers, most recently used first; NIL ends */
} link_t;

typedef struct {
    uint32_t tag; /* low 32 bits of the hash: the home slot, and a filter before the header */
    uint32_t ent; /* entry number */
    head_t *head; /* NULL: empty slot */
} slot_t;

struct lp_cache {
    size_t max, count;
    uint64_t seed;
    slot_t *index;
    size_t index_mask;
    head_t **heads; /* per entry number: its buffer */
    link_t *links;  /* per entry number: its place in the LRU list */
    size_t cap;     /* entry numbers allocated in heads and links */
    uint32_t head, tail;
};

static inline uint8_t *id_of(head_t *h) {
    return (uint8_t *)(h + 1);
}

/* Seeded per cache: lead ids come from producers, and a fixed hash would let crafted ids pile up
 * in one probe run. The partition enters the seed (the same id in two partitions is two keys). */
static uint64_t cache_hash(const lp_cache_t *cache, int32_t partition, const char *id, size_t len) {
    return lp_hash64(id, len, cache->seed ^ (uint64_t)(uint32_t)partition * 0x9e3779b97f4a7c15ULL);
}

static int index_alloc(lp_cache_t *cache, size_t nslots) {
    slot_t *index = calloc(nslots, sizeof(*index));
    if (index == NULL) {
        return -1;
    }
    for (size_t i = 0; i < cache->count; i++) {
        head_t *h = cache->heads[i];
        size_t s = (uint32_t)h->hash & (nslots - 1);
        while (index[s].head != NULL) {
            s = (s + 1) & (nslots - 1);
        }
        index[s] = (slot_t){(uint32_t)h->hash, (uint32_t)i, h};
    }
    free(cache->index);
    cache->index = index;
    cache->index_mask = nslots - 1;
    return 0;
}

lp_cache_t *lp_cache_new(size_t max) {
    lp_cache_t *cache = calloc(1, sizeof(*cache));
    if (cache == NULL) {
        return NULL;
    }
    /* Entry numbers are 32-bit (NIL excluded); the configuration bounds max far below. */
    cache->max = max < NIL ? max : NIL;
    cache->head = cache->tail = NIL;
    if (getrandom(&cache->seed, sizeof(cache->seed), GRND_NONBLOCK) != sizeof(cache->seed)) {
        cache->seed = (uint64_t)(uintptr_t)cache * 0x9e3779b97f4a7c15ULL;
    }
    if (index_alloc(cache, INDEX_MIN) != 0) {
        free(cache);
        return NULL;
    }
    return cache;
}

/* The index slot of the key, or the empty slot ending its probe run. */
static size_t find_slot(const lp_cache_t *cache, uint64_t hash, int32_t partition, const char *id,
                        size_t len) {
    size_t s = (uint32_t)hash & cache->index_mask;
    for (;;) {
        const slot_t *slot = &cache->index[s];
        if (slot->head == NULL) {
            return s;
        }
        if (slot->tag == (uint32_t)hash) {
            head_t *h = slot->head;
            if (h->hash == hash && h->partition == partition && h->id_len == len &&
                memcmp(id_of(h), id, len) == 0) {
                return s;
            }
        }
        s = (s + 1) & cache->index_mask;
    }
}

/* The index slot of entry number ent. */
static size_t slot_of_entry(const lp_cache_t *cache, size_t ent) {
    size_t s = (uint32_t)cache->heads[ent]->hash & cache->index_mask;
    while (cache->index[s].ent != ent || cache->index[s].head == NULL) {
        s = (s + 1) & cache->index_mask;
    }
    return s;
}

/* Empties index slot s and shifts back the slots after it whose probe run crossed it. */
static void index_remove(lp_cache_t *cache, size_t s) {
    size_t mask = cache->index_mask;
    size_t j = s;
    for (;;) {
        j = (j + 1) & mask;
        if (cache->index[j].head == NULL) {
            break;
        }
        size_t home = cache->index[j].tag & mask;
        /* The slot at j may move to s unless its home lies cyclically in (s, j]. */
        bool stays = s <= j ? (s < home && home <= j) : (s < home || home <= j);
        if (!stays) {
            cache->index[s] = cache->index[j];
            s = j;
        }
    }
    cache->index[s] = (slot_t){0, 0, NULL};
}

static void lru_unlink(lp_cache_t *cache, size_t ent) {
    link_t *l = &cache->links[ent];
    if (l->prev != NIL) {
        cache->links[l->prev].next = l->next;
    } else {
        cache->head = l->next;
    }
    if (l->next != NIL) {
        cache->links[l->next].prev = l->prev;
    } else {
        cache->tail = l->prev;
    }
}

static void lru_push_front(lp_cache_t *cache, size_t ent) {
    cache->links[ent] = (link_t){NIL, cache->head};
    if (cache->head != NIL) {
        cache->links[cache->head].prev = (uint32_t)ent;
    }
    cache->head = (uint32_t)ent;
    if (cache->tail == NIL) {
        cache->tail = (uint32_t)ent;
    }
}

static void lru_touch(lp_cache_t *cache, size_t ent) {
    if (cache->head != ent) {
        lru_unlink(cache, ent);
        lru_push_front(cache, ent);
    }
}

/* Frees entry number ent, already out of the index and the list; the last entry takes its
 * number (its index slot and its list neighbours follow). */
static void drop_number(lp_cache_t *cache, size_t ent) {
    size_t last = cache->count - 1;
    free(cache->heads[ent]);
    if (ent != last) {
        link_t l = cache->links[last];
        cache->index[slot_of_entry(cache, last)].ent = (uint32_t)ent;
        cache->heads[ent] = cache->heads[last];
        cache->links[ent] = l;
        if (l.prev != NIL) {
            cache->links[l.prev].next = (uint32_t)ent;
        } else {
            cache->head = (uint32_t)ent;
        }
        if (l.next != NIL) {
            cache->links[l.next].prev = (uint32_t)ent;
        } else {
            cache->tail = (uint32_t)ent;
        }
    }
    cache->heads[last] = NULL;
    cache->count--;
}

/* Removes entry ent, at index slot s. */
static void remove_entry(lp_cache_t *cache, size_t s, size_t ent) {
    index_remove(cache, s);
    lru_unlink(cache, ent);
    drop_number(cache, ent);
}

/* Makes *hp hold need bytes after its header (allocates it if NULL). Grown with 16 to 31 bytes
 * of room: encoded leads grow by a few bytes with most events that change them. */
static int reserve(head_t **hp, size_t need) {
    if (*hp != NULL && need <= (*hp)->cap) {
        return 0;
    }
    size_t cap = (need + 31) & ~(size_t)15;
    if (cap > UINT32_MAX) {
        cap = need;
    }
    head_t *h = realloc(*hp, sizeof(head_t) + cap);
    if (h == NULL) {
        return -1;
    }
    h->cap = (uint32_t)cap;
    *hp = h;
    return 0;
}

const uint8_t *lp_cache_get_n(lp_cache_t *cache, int32_t partition, const char *id, size_t id_len,
                              size_t *len) {
    if (cache == NULL || cache->count == 0) {
        return NULL;
    }
    size_t s = find_slot(cache, cache_hash(cache, partition, id, id_len), partition, id, id_len);
    head_t *h = cache->index[s].head;
    if (h == NULL) {
        return NULL;
    }
    lru_touch(cache, cache->index[s].ent);
    *len = h->data_len;
    return id_of(h) + h->id_len;
}

const uint8_t *lp_cache_get(lp_cache_t *cache, int32_t partition, const char *id, size_t *len) {
    return lp_cache_get_n(cache, partition, id, strlen(id), len);
}

/* Room for one more entry number (while below max). */
static int grow_entries(lp_cache_t *cache) {
    if (cache->count < cache->cap) {
        return 0;
    }
    size_t cap = cache->cap < 64 ? 64 : cache->cap * 2;
    if (cap > cache->max) {
        cap = cache->max;
    }
    head_t **heads = realloc(cache->heads, cap * sizeof(*heads));
    if (heads == NULL) {
        return -1;
    }
    cache->heads = heads;
    link_t *links = realloc(cache->links, cap * sizeof(*links));
    if (links == NULL) {
        return -1;
    }
    cache->links = links;
    cache->cap = cap;
    return 0;
}

int lp_cache_put_n(lp_cache_t *cache, int32_t partition, const char *id, size_t id_len,
                   const uint8_t *data, size_t len) {
    if (cache == NULL || cache->max == 0) {
        return 0;
    }
    uint64_t hash = cache_hash(cache, partition, id, id_len);
    size_t s = find_slot(cache, hash, partition, id, id_len);
    if (cache->index[s].head != NULL) {
        size_t ent = cache->index[s].ent;
        head_t *h = cache->index[s].head;
        if (len > UINT32_MAX - id_len || reserve(&h, id_len + len) != 0) {
            /* Never keep the bytes this put replaces: they are no longer what the store holds. */
            remove_entry(cache, s, ent);
            return -1;
        }
        memcpy(id_of(h) + id_len, data, len);
        h->data_len = (uint32_t)len;
        cache->index[s].head = h;
        cache->heads[ent] = h;
        lru_touch(cache, ent);
        return 0;
    }
    if (id_len > UINT16_MAX || len > UINT32_MAX - id_len) {
        return -1;
    }
    /* Keep the index at most half full (with the entry about to be added). */
    if ((cache->count + 1) * 2 > cache->index_mask + 1 &&
        index_alloc(cache, (cache->index_mask + 1) * 2) != 0) {
        return -1;
    }
    size_t ent;
    head_t *h = NULL;
    if (cache->count >= cache->max) {
        /* Evict, keeping the victim's number and buffer for the new entry. */
        ent = cache->tail;
        index_remove(cache, slot_of_entry(cache, ent));
        lru_unlink(cache, ent);
        h = cache->heads[ent];
        if (reserve(&h, id_len + len) != 0) {
            drop_number(cache, ent);
            return -1;
        }
    } else {
        if (grow_entries(cache) != 0 || reserve(&h, id_len + len) != 0) {
            return -1;
        }
        ent = cache->count++;
    }
    h->hash = hash;
    h->partition = partition;
    h->id_len = (uint16_t)id_len;
    h->data_len = (uint32_t)len;
    memcpy(id_of(h), id, id_len);
    memcpy(id_of(h) + id_len, data, len);
    cache->heads[ent] = h;
    lru_push_front(cache, ent);
    /* An eviction may have shifted the index: look for the free slot again. */
    s = find_slot(cache, hash, partition, id, id_len);
    cache->index[s] = (slot_t){(uint32_t)hash, (uint32_t)ent, h};
    return 0;
}

int lp_cache_put(lp_cache_t *cache, int32_t partition, const char *id, const uint8_t *data,
                 size_t len) {
    return lp_cache_put_n(cache, partition, id, strlen(id), data, len);
}

void lp_cache_forget(lp_cache_t *cache, int32_t partition, const char *id) {
    if (cache == NULL || cache->count == 0) {
        return;
    }
    size_t id_len = strlen(id);
    size_t s = find_slot(cache, cache_hash(cache, partition, id, id_len), partition, id, id_len);
    if (cache->index[s].head != NULL) {
        remove_entry(cache, s, cache->index[s].ent);
    }
}

void lp_cache_drop_partition(lp_cache_t *cache, int32_t partition) {
    if (cache == NULL) {
        return;
    }
    /* A removal moves the last entry into the hole: look at the same number again. */
    size_t ent = 0;
    while (ent < cache->count) {
        if (cache->heads[ent]->partition == partition) {
            remove_entry(cache, slot_of_entry(cache, ent), ent);
        } else {
            ent++;
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
    for (size_t i = 0; i < cache->count; i++) {
        free(cache->heads[i]);
    }
    free(cache->heads);
    free(cache->links);
    free(cache->index);
    free(cache);
}
