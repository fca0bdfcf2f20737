/* A table from account key to a pointer, open addressing with linear probing and tombstones (the
 * accounts of stage 2: the in-memory stage's accounts, the account engine's cache, a step's
 * index of the accounts it touches). Owns its copies of the keys, not the values. Not a public
 * contract. */
#ifndef LEADPULSE_ENGINE_ACCOUNT_TABLE_H
#define LEADPULSE_ENGINE_ACCOUNT_TABLE_H

#include <stddef.h>

typedef struct {
    char *key; /* NULL: free; a tombstone: see account_table.c */
    void *value;
} acct_slot_t;

typedef struct {
    acct_slot_t *slots;
    size_t cap;  /* a power of two, or 0 */
    size_t used; /* slots taken: entries and tombstones */
    size_t n;    /* entries */
} acct_table_t;

/* The value of key, or NULL. */
void *acct_table_get(const acct_table_t *t, const char *key);

/* Adds key -> value (key must not be there). LP_OK or LP_ERR (no memory: nothing changed). */
int acct_table_put(acct_table_t *t, const char *key, void *value);

/* Removes key and returns its value, or NULL when absent. */
void *acct_table_take(acct_table_t *t, const char *key);

/* Calls fn for every entry (any order); fn must not change the table. */
void acct_table_foreach(const acct_table_t *t, void (*fn)(void *ctx, const char *key, void *value),
                        void *ctx);

/* Removes every entry, calling free_value (may be NULL) on each value; the table stays usable. */
void acct_table_clear(acct_table_t *t, void (*free_value)(void *value));

#endif
