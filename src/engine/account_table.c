/* The key -> pointer table of stage 2 (engine/account_table.h). */
#include <stdlib.h>
#include <string.h>

#include "engine/account_table.h"
#include "leadpulse/common.h"
#include "leadpulse/hash.h"

static char tombstone;
#define TOMB (&tombstone)

static size_t hash_of(const char *key) {
    return (size_t)lp_hash64(key, strlen(key), 0x61636374u /* "acct" */);
}

static acct_slot_t *find(const acct_table_t *t, const char *key) {
    if (t->cap == 0) {
        return NULL;
    }
    for (size_t j = hash_of(key) & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        acct_slot_t *s = &t->slots[j];
        if (s->key == NULL) {
            return NULL;
        }
        if (s->key != TOMB && strcmp(s->key, key) == 0) {
            return s;
        }
    }
}

void *acct_table_get(const acct_table_t *t, const char *key) {
    acct_slot_t *s = find(t, key);
    return s != NULL ? s->value : NULL;
}

/* Rebuilds into cap slots (dropping the tombstones). */
static int rehash(acct_table_t *t, size_t cap) {
    acct_slot_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return LP_ERR;
    }
    for (size_t i = 0; i < t->cap; i++) {
        acct_slot_t *s = &t->slots[i];
        if (s->key != NULL && s->key != TOMB) {
            size_t j = hash_of(s->key) & (cap - 1);
            while (slots[j].key != NULL) {
                j = (j + 1) & (cap - 1);
            }
            slots[j] = *s;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    t->used = t->n;
    return LP_OK;
}

int acct_table_put(acct_table_t *t, const char *key, void *value) {
    if ((t->used + 1) * 2 > t->cap) {
        /* At most half full, tombstones counted: grow, or only drop the tombstones when they
         * are most of it. */
        size_t cap = t->cap == 0 ? 256 : (t->n + 1) * 4 <= t->cap ? t->cap : t->cap * 2;
        if (rehash(t, cap) != LP_OK) {
            return LP_ERR;
        }
    }
    char *k = strdup(key);
    if (k == NULL) {
        return LP_ERR;
    }
    size_t j = hash_of(key) & (t->cap - 1);
    while (t->slots[j].key != NULL && t->slots[j].key != TOMB) {
        j = (j + 1) & (t->cap - 1);
    }
    if (t->slots[j].key == NULL) {
        t->used++;
    }
    t->slots[j].key = k;
    t->slots[j].value = value;
    t->n++;
    return LP_OK;
}

void *acct_table_take(acct_table_t *t, const char *key) {
    acct_slot_t *s = find(t, key);
    if (s == NULL) {
        return NULL;
    }
    void *value = s->value;
    free(s->key);
    s->key = TOMB;
    s->value = NULL;
    t->n--;
    return value;
}

void acct_table_foreach(const acct_table_t *t, void (*fn)(void *ctx, const char *key, void *value),
                        void *ctx) {
    for (size_t i = 0; i < t->cap; i++) {
        const acct_slot_t *s = &t->slots[i];
        if (s->key != NULL && s->key != TOMB) {
            fn(ctx, s->key, s->value);
        }
    }
}

void acct_table_clear(acct_table_t *t, void (*free_value)(void *value)) {
    for (size_t i = 0; i < t->cap; i++) {
        acct_slot_t *s = &t->slots[i];
        if (s->key != NULL && s->key != TOMB) {
            free(s->key);
            if (free_value != NULL) {
                free_value(s->value);
            }
        }
    }
    free(t->slots);
    t->slots = NULL;
    t->cap = t->used = t->n = 0;
}
