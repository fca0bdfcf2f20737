/* Bounded LRU cache of encoded leads (internal to the engine). */
#ifndef LP_ENGINE_CACHE_H
#define LP_ENGINE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lp_cache lp_cache_t;

/* max = 0 disables caching. Free with lp_cache_destroy(). */
lp_cache_t *lp_cache_new(size_t max);
void lp_cache_destroy(lp_cache_t *cache);
/* Returns the cached bytes (owned by the cache, valid until the next put/forget/drop) or NULL.
 * Marks the entry most recently used. */
const uint8_t *lp_cache_get(lp_cache_t *cache, int32_t partition, const char *id, size_t *len);
/* Copies data in, evicting the least recently used entries beyond max. 0, or -1 (no memory: the
 * id is then not cached at all, never with older bytes). */
int lp_cache_put(lp_cache_t *cache, int32_t partition, const char *id, const uint8_t *data,
                 size_t len);
/* The same with the id's length given (id need not be NUL-terminated): no strlen per call. */
const uint8_t *lp_cache_get_n(lp_cache_t *cache, int32_t partition, const char *id, size_t id_len,
                              size_t *len);
int lp_cache_put_n(lp_cache_t *cache, int32_t partition, const char *id, size_t id_len,
                   const uint8_t *data, size_t len);
/* Removes one entry, if present. */
void lp_cache_forget(lp_cache_t *cache, int32_t partition, const char *id);
void lp_cache_drop_partition(lp_cache_t *cache, int32_t partition);
size_t lp_cache_count(const lp_cache_t *cache);

#endif
