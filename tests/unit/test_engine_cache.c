/* The engine's lead cache: bytes in = bytes out (also when an entry's length changes), LRU
 * eviction order and the max bound, forget, drop_partition, and a long random run against a
 * plain reference model (which catches index and renumbering mistakes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/cache.h"

static void put_str(lp_cache_t *cache, int32_t partition, const char *id, const char *value) {
    assert_int_equal(lp_cache_put(cache, partition, id, (const uint8_t *)value, strlen(value)), 0);
}

/* Asserts the cached value of (partition, id): NULL = absent. */
static void expect(lp_cache_t *cache, int32_t partition, const char *id, const char *value) {
    size_t len = 12345;
    const uint8_t *got = lp_cache_get(cache, partition, id, &len);
    if (value == NULL) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_int_equal(len, strlen(value));
    assert_memory_equal(got, value, len);
}

static void test_put_get(void **state) {
    (void)state;
    lp_cache_t *cache = lp_cache_new(100);
    char buf[16] = "first";
    assert_non_null(cache);
    expect(cache, 0, "lead-1", NULL);
    assert_int_equal(lp_cache_put(cache, 0, "lead-1", (const uint8_t *)buf, 5), 0);
    memcpy(buf, "XXXXX", 5); /* the cache holds a copy */
    expect(cache, 0, "lead-1", "first");
    /* The key is (partition, id): same id in another partition, prefixes, longer ids. */
    put_str(cache, 1, "lead-1", "other partition");
    put_str(cache, 0, "lead-", "prefix");
    put_str(cache, 0, "lead-10", "longer");
    put_str(cache, 0, "", "empty id");
    expect(cache, 0, "lead-1", "first");
    expect(cache, 1, "lead-1", "other partition");
    expect(cache, 0, "lead-", "prefix");
    expect(cache, 0, "lead-10", "longer");
    expect(cache, 0, "", "empty id");
    expect(cache, 2, "lead-1", NULL);
    assert_int_equal(lp_cache_count(cache), 5);
    /* The _n forms: the id need not end with a NUL. */
    size_t len = 0;
    const uint8_t *got = lp_cache_get_n(cache, 0, "lead-10xyz", 7, &len);
    assert_non_null(got);
    assert_int_equal(len, 6);
    assert_int_equal(lp_cache_put_n(cache, 3, "lead-77!!", 7, (const uint8_t *)"n", 1), 0);
    expect(cache, 3, "lead-77", "n");
    /* An empty value is a value. */
    put_str(cache, 0, "lead-1", "");
    expect(cache, 0, "lead-1", "");
    lp_cache_destroy(cache);
}

/* A changed lead is put again with another length: shorter, longer, much longer, back. */
static void test_put_changes_length(void **state) {
    (void)state;
    lp_cache_t *cache = lp_cache_new(10);
    static const size_t lens[] = {131, 7, 132, 150, 600, 5000, 0, 64, 65, 3, 4096};
    uint8_t data[5000];
    assert_non_null(cache);
    put_str(cache, 0, "neighbour", "unchanged");
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        for (size_t i = 0; i < lens[k]; i++) {
            data[i] = (uint8_t)(i * 7 + k);
        }
        assert_int_equal(lp_cache_put(cache, 4, "lead-42", data, lens[k]), 0);
        size_t len = 0;
        const uint8_t *got = lp_cache_get(cache, 4, "lead-42", &len);
        assert_non_null(got);
        assert_int_equal(len, lens[k]);
        assert_memory_equal(got, data, len);
        expect(cache, 0, "neighbour", "unchanged");
        assert_int_equal(lp_cache_count(cache), 2);
    }
    lp_cache_destroy(cache);
}

static void test_lru_order(void **state) {
    (void)state;
    lp_cache_t *cache = lp_cache_new(3);
    assert_non_null(cache);
    put_str(cache, 0, "a", "1");
    put_str(cache, 0, "b", "2");
    put_str(cache, 0, "c", "3");
    expect(cache, 0, "a", "1"); /* a is now the most recently used: b is the oldest */
    put_str(cache, 0, "d", "4");
    assert_int_equal(lp_cache_count(cache), 3);
    expect(cache, 0, "b", NULL);
    /* Recency now, newest first: d, a... the gets above touched a only (b missed). Then: */
    put_str(cache, 0, "c", "33"); /* an update counts as a use: c, d, a */
    put_str(cache, 0, "e", "5");  /* evicts a */
    expect(cache, 0, "a", NULL);
    expect(cache, 0, "c", "33");
    expect(cache, 0, "d", "4");
    expect(cache, 0, "e", "5");  /* e, d, c */
    put_str(cache, 0, "f", "6"); /* evicts c */
    expect(cache, 0, "c", NULL);
    expect(cache, 0, "d", "4");
    expect(cache, 0, "e", "5");
    expect(cache, 0, "f", "6");
    assert_int_equal(lp_cache_count(cache), 3);
    lp_cache_destroy(cache);
}

static void test_bound(void **state) {
    (void)state;
    lp_cache_t *cache = lp_cache_new(100);
    char id[32], value[32];
    assert_non_null(cache);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "lead-%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        put_str(cache, i % 4, id, value);
        assert_true(lp_cache_count(cache) <= 100);
    }
    assert_int_equal(lp_cache_count(cache), 100);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "lead-%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        expect(cache, i % 4, id, i >= 4900 ? value : NULL);
    }
    lp_cache_destroy(cache);

    /* max = 0: nothing is cached. */
    cache = lp_cache_new(0);
    assert_non_null(cache);
    put_str(cache, 0, "a", "1");
    expect(cache, 0, "a", NULL);
    assert_int_equal(lp_cache_count(cache), 0);
    lp_cache_destroy(cache);
}

static void test_forget_and_drop(void **state) {
    (void)state;
    lp_cache_t *cache = lp_cache_new(1000);
    char id[32], value[32];
    assert_non_null(cache);
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof(id), "lead-%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        put_str(cache, i % 3, id, value);
    }
    lp_cache_forget(cache, 0, "lead-0");
    lp_cache_forget(cache, 1, "lead-0"); /* not there: lead-0 is in partition 0 */
    lp_cache_forget(cache, 0, "nobody");
    expect(cache, 0, "lead-0", NULL);
    assert_int_equal(lp_cache_count(cache), 299);
    lp_cache_drop_partition(cache, 1);
    assert_int_equal(lp_cache_count(cache), 199);
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof(id), "lead-%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        expect(cache, i % 3, id, i % 3 == 1 || i == 0 ? NULL : value);
    }
    lp_cache_drop_partition(cache, 7); /* none */
    assert_int_equal(lp_cache_count(cache), 199);
    /* The cache works on after removals: forgotten ids come back, evictions still follow LRU. */
    put_str(cache, 0, "lead-0", "back");
    expect(cache, 0, "lead-0", "back");
    lp_cache_drop_partition(cache, 0);
    lp_cache_drop_partition(cache, 2);
    assert_int_equal(lp_cache_count(cache), 0);
    expect(cache, 2, "lead-2", NULL);
    put_str(cache, 2, "lead-2", "again");
    expect(cache, 2, "lead-2", "again");
    assert_int_equal(lp_cache_count(cache), 1);
    lp_cache_destroy(cache);

    lp_cache_destroy(NULL);
    assert_int_equal(lp_cache_count(NULL), 0);
    lp_cache_forget(NULL, 0, "a");
    lp_cache_drop_partition(NULL, 0);
}

/* ---- random operations against a reference model ---- */

#define REF_IDS 400
#define REF_PARTS 3

typedef struct {
    bool present;
    uint64_t used; /* last use, for LRU */
    size_t len;
    uint8_t data[300];
} ref_entry_t;

typedef struct {
    ref_entry_t e[REF_PARTS][REF_IDS];
    size_t count, max;
    uint64_t clock;
} ref_t;

static void ref_evict(ref_t *ref) {
    ref_entry_t *oldest = NULL;
    for (int p = 0; p < REF_PARTS; p++) {
        for (int i = 0; i < REF_IDS; i++) {
            if (ref->e[p][i].present && (oldest == NULL || ref->e[p][i].used < oldest->used)) {
                oldest = &ref->e[p][i];
            }
        }
    }
    oldest->present = false;
    ref->count--;
}

static void run_against_reference(size_t max, int nops, unsigned seed) {
    ref_t *ref = calloc(1, sizeof(*ref));
    lp_cache_t *cache = lp_cache_new(max);
    char id[32];
    uint8_t data[300];
    assert_non_null(ref);
    assert_non_null(cache);
    ref->max = max;
    srand(seed);
    for (int op = 0; op < nops; op++) {
        int p = rand() % REF_PARTS;
        int i = rand() % 8 == 0 ? rand() % REF_IDS : rand() % (REF_IDS / 8); /* some hot ids */
        ref_entry_t *r = &ref->e[p][i];
        int what = rand() % 100;
        snprintf(id, sizeof(id), "%s%d", i % 2 ? "lead-" : "L", i);
        if (what < 45) {
            size_t len = 0;
            const uint8_t *got = lp_cache_get(cache, p, id, &len);
            if (!r->present) {
                assert_null(got);
                continue;
            }
            assert_non_null(got);
            assert_int_equal(len, r->len);
            assert_memory_equal(got, r->data, len);
            r->used = ++ref->clock;
        } else if (what < 93) {
            size_t len = (size_t)(rand() % 300);
            for (size_t k = 0; k < len; k++) {
                data[k] = (uint8_t)rand();
            }
            assert_int_equal(lp_cache_put(cache, p, id, data, len), 0);
            if (max == 0) {
                continue;
            }
            if (!r->present) {
                if (ref->count == ref->max) {
                    ref_evict(ref);
                }
                r->present = true;
                ref->count++;
            }
            memcpy(r->data, data, len);
            r->len = len;
            r->used = ++ref->clock;
        } else if (what < 99) {
            lp_cache_forget(cache, p, id);
            if (r->present) {
                r->present = false;
                ref->count--;
            }
        } else {
            lp_cache_drop_partition(cache, p);
            for (int k = 0; k < REF_IDS; k++) {
                if (ref->e[p][k].present) {
                    ref->e[p][k].present = false;
                    ref->count--;
                }
            }
        }
        assert_int_equal(lp_cache_count(cache), ref->count);
    }
    lp_cache_destroy(cache);
    free(ref);
}

static void test_random_small(void **state) {
    (void)state;
    run_against_reference(1, 20000, 1);
    run_against_reference(7, 100000, 2);
    run_against_reference(60, 200000, 3);
}

/* More entries than the index starts with (it grows while full of live entries). */
static void test_random_large(void **state) {
    (void)state;
    run_against_reference(1100, 150000, 4);
    run_against_reference(0, 1000, 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),         cmocka_unit_test(test_put_changes_length),
        cmocka_unit_test(test_lru_order),       cmocka_unit_test(test_bound),
        cmocka_unit_test(test_forget_and_drop), cmocka_unit_test(test_random_small),
        cmocka_unit_test(test_random_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
