/* leadpulse store: the behaviour both implementations share, as cmocka tests. Included by
 * tests/unit/test_store_mem.c and tests/integration/itest_store_redis.c, which set
 * suite_new_store to a constructor of a fresh, empty store (a new key prefix for Redis). */
#ifndef LP_TEST_STORE_SUITE_H
#define LP_TEST_STORE_SUITE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leadpulse/store.h"

static lp_store_t *(*suite_new_store)(void);

static int suite_setup(void **state) {
    *state = suite_new_store();
    return *state == NULL ? -1 : 0;
}

static int suite_teardown(void **state) {
    lp_store_destroy(*state);
    return 0;
}

/* Commits one lead (and optionally its timer) at epoch. */
static int put_lead(lp_store_t *store, int32_t p, int64_t epoch, const char *id, const void *data,
                    size_t len) {
    lp_store_lead_t lead = {id, data, len};
    lp_store_batch_t batch = {.partition = p, .epoch = epoch, .nleads = 1, .leads = &lead};

    return lp_store_commit(store, &batch);
}

static int put_timers(lp_store_t *store, int32_t p, int64_t epoch, size_t n,
                      const lp_store_timer_t *timers) {
    lp_store_batch_t batch = {.partition = p, .epoch = epoch, .ntimers = n, .timers = timers};

    return lp_store_commit(store, &batch);
}

static void assert_due(lp_store_t *store, int32_t p, int64_t now, size_t max, size_t nwant,
                       const char *const *want) {
    const char **ids = NULL;
    size_t n = 99;
    size_t i;

    assert_int_equal(lp_store_due(store, p, now, max, &n, &ids), LP_OK);
    assert_int_equal(n, nwant);
    for (i = 0; i < n; i++) {
        assert_string_equal(ids[i], want[i]);
    }
}

static void test_load_unknown(void **state) {
    lp_store_t *store = *state;
    const char *ids[] = {"nobody", "nobody-else"};
    lp_store_loaded_t loaded;

    memset(&loaded, 0xab, sizeof(loaded));
    assert_int_equal(lp_store_load(store, 3, 2, ids, &loaded), LP_OK);
    assert_int_equal(loaded.n, 2);
    assert_null(loaded.data[0]);
    assert_null(loaded.data[1]);
    assert_int_equal(loaded.len[0], 0);
    assert_int_equal(loaded.len[1], 0);
}

/* Account partitions (LP_ACCOUNT_PARTITION_BASE + q, tag {a<q>}) are partitions of their own:
 * their epoch, state and offsets are apart from lead partition q's. */
static void test_account_partitions(void **state) {
    lp_store_t *store = *state;
    const int32_t a3 = LP_ACCOUNT_PARTITION_BASE + 3;
    int64_t e_lead = 0, e_acct = 0, off = 0;
    char tag[16];
    assert_int_equal(lp_store_partition_tag(3, tag, sizeof(tag)), 1);
    assert_string_equal(tag, "3");
    assert_int_equal(lp_store_partition_tag(a3, tag, sizeof(tag)), 2);
    assert_string_equal(tag, "a3");
    assert_int_equal(lp_store_fence(store, 3, &e_lead), LP_OK);
    assert_int_equal(lp_store_fence(store, a3, &e_acct), LP_OK);
    assert_int_equal(lp_store_fence(store, a3, &e_acct), LP_OK);
    assert_true(e_acct == e_lead + 1);
    assert_int_equal(put_lead(store, 3, e_lead, "id:x", "lead", 4), LP_OK);
    assert_int_equal(put_lead(store, a3, e_acct, "id:x", "account", 7), LP_OK);
    const char *ids[] = {"id:x"};
    lp_store_loaded_t loaded;
    assert_int_equal(lp_store_load(store, 3, 1, ids, &loaded), LP_OK);
    assert_int_equal(loaded.len[0], 4);
    assert_int_equal(lp_store_load(store, a3, 1, ids, &loaded), LP_OK);
    assert_int_equal(loaded.len[0], 7);
    assert_memory_equal(loaded.data[0], "account", 7);
    assert_int_equal(lp_store_get_offset(store, a3, "leads.members", &off), LP_OK);
    assert_true(off == -1);
    /* the last account partition is valid, the next is not */
    assert_int_equal(lp_store_fence(store, LP_STORE_PARTITIONS_MAX - 1, &e_acct), LP_OK);
    assert_int_equal(lp_store_fence(store, LP_STORE_PARTITIONS_MAX, &e_acct), LP_ERR);
}

static void test_commit_load_roundtrip(void **state) {
    lp_store_t *store = *state;
    /* Binary: NUL bytes, high bytes, and ids with separators Redis must not interpret. */
    static const uint8_t a[] = {0, 1, 2, 0xff, 0, 'x', '\n', '\r'};
    static const uint8_t b[] = "lead b state";
    static const uint8_t a2[] = {9, 8, 7};
    const char *ids[] = {"lead:a {1} *", "unknown", "lead-b"};
    lp_store_lead_t leads[] = {{"lead:a {1} *", a, sizeof(a)}, {"lead-b", b, sizeof(b)}};
    lp_store_batch_t batch = {.partition = 1, .nleads = 2, .leads = leads};
    lp_store_loaded_t loaded;
    int64_t epoch = 0;

    assert_int_equal(lp_store_fence(store, 1, &epoch), LP_OK);
    assert_int_equal(epoch, 1);
    batch.epoch = epoch;
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(lp_store_load(store, 1, 3, ids, &loaded), LP_OK);
    assert_int_equal(loaded.n, 3);
    assert_int_equal(loaded.len[0], sizeof(a));
    assert_memory_equal(loaded.data[0], a, sizeof(a));
    assert_null(loaded.data[1]);
    assert_int_equal(loaded.len[2], sizeof(b));
    assert_memory_equal(loaded.data[2], b, sizeof(b));

    /* Overwrite with a shorter value; the other lead stays. */
    assert_int_equal(put_lead(store, 1, epoch, "lead:a {1} *", a2, sizeof(a2)), LP_OK);
    assert_int_equal(lp_store_load(store, 1, 3, ids, &loaded), LP_OK);
    assert_int_equal(loaded.len[0], sizeof(a2));
    assert_memory_equal(loaded.data[0], a2, sizeof(a2));
    assert_memory_equal(loaded.data[2], b, sizeof(b));

    /* Another partition does not see them. */
    assert_int_equal(lp_store_load(store, 2, 3, ids, &loaded), LP_OK);
    assert_null(loaded.data[0]);
    assert_null(loaded.data[2]);
}

static void test_duplicate_lead_last_wins(void **state) {
    lp_store_t *store = *state;
    lp_store_lead_t leads[] = {{"dup", (const uint8_t *)"first", 5},
                               {"dup", (const uint8_t *)"second!", 7}};
    lp_store_batch_t batch = {.partition = 0, .epoch = 0, .nleads = 2, .leads = leads};
    const char *ids[] = {"dup"};
    lp_store_loaded_t loaded;

    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(lp_store_load(store, 0, 1, ids, &loaded), LP_OK);
    assert_int_equal(loaded.len[0], 7);
    assert_memory_equal(loaded.data[0], "second!", 7);
}

static void test_timers_order_and_removal(void **state) {
    lp_store_t *store = *state;
    lp_store_timer_t set[] = {{"c", 300}, {"b", 100}, {"a", 100}, {"d", 500}, {"ab", 100}};
    lp_store_timer_t change[] = {{"b", 0}, {"d", 50}, {"never-set", 0}};
    const char *want1[] = {"a", "ab", "b", "c"};
    const char *want2[] = {"d", "a", "ab", "c"};
    int64_t epoch;

    assert_int_equal(lp_store_fence(store, 4, &epoch), LP_OK);
    assert_int_equal(put_timers(store, 4, epoch, 5, set), LP_OK);
    assert_due(store, 4, 99, 10, 0, NULL);
    assert_due(store, 4, 300, 10, 4, want1);
    assert_due(store, 4, 300, 2, 2, want1);
    assert_due(store, 4, 300, 0, 0, NULL);
    /* due is a read: asking again gives the same answer. */
    assert_due(store, 4, 300, 10, 4, want1);
    assert_int_equal(put_timers(store, 4, epoch, 3, change), LP_OK);
    assert_due(store, 4, 1000, 10, 4, want2);
    assert_due(store, 4, 49, 10, 0, NULL);
    assert_due(store, 5, 1000, 10, 0, NULL);
}

/* Random timer updates checked against a sorted reference. */
typedef struct {
    char id[16];
    int64_t due;
} ref_timer_t;

static int ref_cmp(const void *x, const void *y) {
    const ref_timer_t *a = x;
    const ref_timer_t *b = y;

    if (a->due != b->due) {
        return a->due < b->due ? -1 : 1;
    }
    return strcmp(a->id, b->id);
}

static void test_timers_random(void **state) {
    enum { NIDS = 300, ROUNDS = 8, PER_ROUND = 200 };
    lp_store_t *store = *state;
    static ref_timer_t ref[NIDS];
    static ref_timer_t sorted[NIDS];
    static lp_store_timer_t ops[PER_ROUND];
    unsigned seed = 12345;
    int64_t epoch;
    int round;
    size_t i;

    assert_int_equal(lp_store_fence(store, 6, &epoch), LP_OK);
    for (i = 0; i < NIDS; i++) {
        snprintf(ref[i].id, sizeof(ref[i].id), "L%03zu", i);
        ref[i].due = 0;
    }
    for (round = 0; round < ROUNDS; round++) {
        size_t nsorted = 0;
        const char **ids = NULL;
        size_t n;
        int64_t now;

        for (i = 0; i < PER_ROUND; i++) {
            size_t k = (size_t)rand_r(&seed) % NIDS;
            int64_t due = rand_r(&seed) % 4 == 0 ? 0 : 1 + rand_r(&seed) % 1000;

            ops[i].lead_id = ref[k].id;
            ops[i].due_ms = due;
            ref[k].due = due; /* later updates of the same lead win, as in the store */
        }
        assert_int_equal(put_timers(store, 6, epoch, PER_ROUND, ops), LP_OK);
        for (i = 0; i < NIDS; i++) {
            if (ref[i].due != 0) {
                sorted[nsorted++] = ref[i];
            }
        }
        qsort(sorted, nsorted, sizeof(sorted[0]), ref_cmp);
        now = 1 + rand_r(&seed) % 1000;
        assert_int_equal(lp_store_due(store, 6, now, NIDS, &n, &ids), LP_OK);
        for (i = 0; i < n; i++) {
            assert_string_equal(ids[i], sorted[i].id);
        }
        assert_true(n == nsorted || sorted[n].due > now);
        assert_true(n == 0 || sorted[n - 1].due <= now);
    }
}

static void test_offsets(void **state) {
    lp_store_t *store = *state;
    lp_store_offset_t offs[] = {{"engagement.events", 42, -1}, {"lead.profiles", 0, -1}};
    lp_store_offset_t upd[] = {{"engagement.events", 1000000000000LL, 42}};
    lp_store_batch_t batch = {.partition = 2, .noffsets = 2, .offsets = offs};
    int64_t off = 0;

    assert_int_equal(lp_store_get_offset(store, 2, "engagement.events", &off), LP_OK);
    assert_int_equal(off, -1);
    assert_int_equal(lp_store_fence(store, 2, &batch.epoch), LP_OK);
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(lp_store_get_offset(store, 2, "engagement.events", &off), LP_OK);
    assert_int_equal(off, 42);
    assert_int_equal(lp_store_get_offset(store, 2, "lead.profiles", &off), LP_OK);
    assert_int_equal(off, 0);
    assert_int_equal(lp_store_get_offset(store, 2, "sales.feedback", &off), LP_OK);
    assert_int_equal(off, -1);
    assert_int_equal(lp_store_get_offset(store, 3, "engagement.events", &off), LP_OK);
    assert_int_equal(off, -1);
    batch.noffsets = 1;
    batch.offsets = upd;
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(lp_store_get_offset(store, 2, "engagement.events", &off), LP_OK);
    assert_int_equal(off, 1000000000000LL);
    assert_int_equal(lp_store_get_offset(store, 2, "lead.profiles", &off), LP_OK);
    assert_int_equal(off, 0);
}

/* Offsets are compare-and-set: a writer whose view of the stored offsets is wrong (the store lost
 * writes) is refused and nothing is written; a batch already applied is skipped. */
static void test_offsets_compare_and_set(void **state) {
    lp_store_t *store = *state;
    lp_store_lead_t lead = {"m", (const uint8_t *)"v1", 2};
    lp_store_offset_t off = {"engagement.events", 10, -1};
    lp_store_batch_t batch = {
        .partition = 4, .nleads = 1, .leads = &lead, .noffsets = 1, .offsets = &off};
    const char *ids[] = {"m"};
    lp_store_loaded_t loaded;
    int64_t o = 0;

    assert_int_equal(lp_store_fence(store, 4, &batch.epoch), LP_OK);
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    /* The same batch again (its reply was lost): skipped. */
    lead.data = (const uint8_t *)"v2";
    assert_int_equal(lp_store_commit(store, &batch), LP_STORE_DUPLICATE);
    /* A writer that believes 20 is stored (the store lost writes 10..20): refused. */
    off.expected = 20;
    off.next_offset = 30;
    assert_int_equal(lp_store_commit(store, &batch), LP_STORE_MOVED);
    /* A writer that believes nothing is stored and brings records below 10: applied already. */
    off.expected = -1;
    off.next_offset = 5;
    assert_int_equal(lp_store_commit(store, &batch), LP_STORE_DUPLICATE);
    /* A writer that believes 5 is stored and moves to 15 while 10 is: refused. */
    off.expected = 5;
    off.next_offset = 15;
    assert_int_equal(lp_store_commit(store, &batch), LP_STORE_MOVED);
    assert_int_equal(lp_store_get_offset(store, 4, "engagement.events", &o), LP_OK);
    assert_int_equal(o, 10);
    assert_int_equal(lp_store_load(store, 4, 1, ids, &loaded), LP_OK);
    assert_memory_equal(loaded.data[0], "v1", 2);
    /* The right view moves on. */
    off.expected = 10;
    off.next_offset = 12;
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(lp_store_get_offset(store, 4, "engagement.events", &o), LP_OK);
    assert_int_equal(o, 12);
}

static lp_store_outbox_t out_entry(int kind, const char *key, const void *value, size_t value_len,
                                   const char *event_id, const char *meta) {
    lp_store_outbox_t e;

    memset(&e, 0, sizeof(e));
    e.kind = kind;
    e.key = key;
    e.key_len = strlen(key);
    e.value = value;
    e.value_len = value_len;
    e.event_id = event_id;
    e.meta = meta;
    e.meta_len = strlen(meta);
    return e;
}

static void assert_entry(const lp_store_outbox_t *got, const lp_store_outbox_t *want) {
    assert_int_equal(got->kind, want->kind);
    assert_int_equal(got->key_len, want->key_len);
    assert_memory_equal(got->key, want->key, want->key_len);
    assert_int_equal(got->value_len, want->value_len);
    if (want->value_len > 0) {
        assert_memory_equal(got->value, want->value, want->value_len);
    }
    assert_string_equal(got->event_id, want->event_id);
    assert_int_equal(got->meta_len, want->meta_len);
    assert_memory_equal(got->meta, want->meta, want->meta_len);
    assert_true(got->id[0] != '\0');
}

static void test_outbox_read_ack(void **state) {
    lp_store_t *store = *state;
    static const uint8_t v0[] = {0, 0x80, 'q', 0};
    lp_store_outbox_t first[] = {
        out_entry(0, "lead-1", v0, sizeof(v0), "0123456789abcdef0123456789abcdef", ""),
        out_entry(1, "lead-2", "stale", 5, "fedcba9876543210fedcba9876543210", ""),
    };
    lp_store_outbox_t second[] = {
        out_entry(2, "lead-3", "", 0, "", "reason=bad avro\nsource_offset=17\n"),
    };
    lp_store_batch_t batch = {.partition = 7, .noutbox = 2, .outbox = first};
    lp_store_outbox_list_t list;
    char ids[3][64];
    const char *ack[3];
    size_t i;

    assert_int_equal(lp_store_fence(store, 7, &batch.epoch), LP_OK);
    assert_int_equal(lp_store_outbox_read(store, 7, 10, &list), LP_OK);
    assert_int_equal(list.n, 0);
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    batch.noutbox = 1;
    batch.outbox = second;
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);

    assert_int_equal(lp_store_outbox_read(store, 7, 10, &list), LP_OK);
    assert_int_equal(list.n, 3);
    assert_entry(&list.entries[0], &first[0]);
    assert_entry(&list.entries[1], &first[1]);
    assert_entry(&list.entries[2], &second[0]);
    for (i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s", list.entries[i].id);
        ack[i] = ids[i];
    }
    assert_string_not_equal(ids[0], ids[1]);
    assert_string_not_equal(ids[1], ids[2]);

    assert_int_equal(lp_store_outbox_read(store, 7, 2, &list), LP_OK);
    assert_int_equal(list.n, 2);
    assert_string_equal(list.entries[0].id, ids[0]);
    assert_string_equal(list.entries[1].id, ids[1]);
    assert_int_equal(lp_store_outbox_read(store, 8, 10, &list), LP_OK);
    assert_int_equal(list.n, 0);

    /* Ack out of order: the middle one first, then the first and an id that never existed. */
    assert_int_equal(lp_store_outbox_ack(store, 7, batch.epoch, 1, &ack[1]), LP_OK);
    assert_int_equal(lp_store_outbox_read(store, 7, 10, &list), LP_OK);
    assert_int_equal(list.n, 2);
    assert_string_equal(list.entries[0].id, ids[0]);
    assert_string_equal(list.entries[1].id, ids[2]);
    {
        const char *more[] = {ids[0], "999999999999-0"};

        assert_int_equal(lp_store_outbox_ack(store, 7, batch.epoch, 2, more), LP_OK);
    }
    assert_int_equal(lp_store_outbox_read(store, 7, 10, &list), LP_OK);
    assert_int_equal(list.n, 1);
    assert_entry(&list.entries[0], &second[0]);
    assert_int_equal(lp_store_outbox_ack(store, 7, batch.epoch, 1, &ack[2]), LP_OK);
    assert_int_equal(lp_store_outbox_read(store, 7, 10, &list), LP_OK);
    assert_int_equal(list.n, 0);

    /* New entries after a full drain get new, later ids. */
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(lp_store_outbox_read(store, 7, 10, &list), LP_OK);
    assert_int_equal(list.n, 1);
    assert_string_not_equal(list.entries[0].id, ids[2]);
    assert_int_equal(lp_store_outbox_ack(store, 7, batch.epoch, 1, &ack[0]), LP_OK);
    assert_int_equal(lp_store_outbox_read(store, 7, 10, &list), LP_OK);
    assert_int_equal(list.n, 1);
}

/* Erasure: the erased leads' state, timer and outbox entries (but LeadErased, kind 3) go first,
 * then the batch's own writes and entries land (a lead erased and written again in one batch
 * keeps the new state); suppression entries are set, replaced and removed. */
static void test_erase_and_suppress(void **state) {
    lp_store_t *store = *state;
    int64_t epoch;
    lp_store_lead_t leads[] = {{"gone", (const uint8_t *)"g1", 2},
                               {"kept", (const uint8_t *)"k1", 2},
                               {"again", (const uint8_t *)"a1", 2}};
    lp_store_timer_t timers[] = {{"gone", 500}, {"kept", 600}, {"again", 700}};
    lp_store_outbox_t outs[] = {
        out_entry(0, "gone", "q", 1, "11111111111111111111111111111111", ""),
        out_entry(1, "kept", "s", 1, "22222222222222222222222222222222", ""),
        out_entry(2, "gone", "bad", 3, "", "reason=x\n"),
        out_entry(3, "gone", "e", 1, "33333333333333333333333333333333", ""),
        out_entry(0, "again", "q", 1, "44444444444444444444444444444444", ""),
    };
    lp_store_batch_t batch = {.partition = 5,
                              .nleads = 3,
                              .leads = leads,
                              .ntimers = 3,
                              .timers = timers,
                              .noutbox = 5,
                              .outbox = outs};
    assert_int_equal(lp_store_fence(store, 5, &epoch), LP_OK);
    batch.epoch = epoch;
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);

    const char *erase[] = {"gone", "again"};
    lp_store_lead_t again[] = {{"again", (const uint8_t *)"a2", 2}};
    lp_store_timer_t again_timer[] = {{"again", 800}};
    lp_store_outbox_t erased[] = {
        out_entry(3, "gone", "E", 1, "55555555555555555555555555555555", ""),
        out_entry(0, "again", "q2", 2, "66666666666666666666666666666666", "")};
    lp_store_suppress_t supp[] = {{"0123456789abcdef0123456789abcdef", 0},
                                  {"fedcba9876543210fedcba9876543210", 1234}};
    lp_store_batch_t b2 = {.partition = 5,
                           .epoch = epoch,
                           .nleads = 1,
                           .leads = again,
                           .ntimers = 1,
                           .timers = again_timer,
                           .noutbox = 2,
                           .outbox = erased,
                           .nerase = 2,
                           .erase = erase,
                           .nsuppress = 2,
                           .suppress = supp};
    assert_int_equal(lp_store_commit(store, &b2), LP_OK);

    const char *ids[] = {"gone", "kept", "again"};
    lp_store_loaded_t loaded;
    assert_int_equal(lp_store_load(store, 5, 3, ids, &loaded), LP_OK);
    assert_null(loaded.data[0]);
    assert_memory_equal(loaded.data[1], "k1", 2);
    assert_memory_equal(loaded.data[2], "a2", 2);
    const char *due[] = {"kept", "again"};
    assert_due(store, 5, 10000, 10, 2, due);

    lp_store_outbox_list_t list;
    assert_int_equal(lp_store_outbox_read(store, 5, 10, &list), LP_OK);
    assert_int_equal(list.n, 4); /* kept's, the old LeadErased, then the batch's two */
    assert_entry(&list.entries[0], &outs[1]);
    assert_entry(&list.entries[1], &outs[3]);
    assert_entry(&list.entries[2], &erased[0]);
    assert_entry(&list.entries[3], &erased[1]);

    size_t n = 0;
    const lp_store_suppress_t *got = NULL;
    assert_int_equal(store->ops->suppressed(store, 5, &n, &got), LP_OK);
    assert_int_equal(n, 2);
    int64_t until[2] = {-1, -1};
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            if (strcmp(got[i].hash, supp[k].hash) == 0) {
                until[k] = got[i].until_ms;
            }
        }
    }
    assert_int_equal(until[0], 0);
    assert_int_equal(until[1], 1234);
    /* replace one, remove the other */
    lp_store_suppress_t change[] = {{"0123456789abcdef0123456789abcdef", 99},
                                    {"fedcba9876543210fedcba9876543210", -1}};
    lp_store_batch_t b3 = {.partition = 5, .epoch = epoch, .nsuppress = 2, .suppress = change};
    assert_int_equal(lp_store_commit(store, &b3), LP_OK);
    assert_int_equal(store->ops->suppressed(store, 5, &n, &got), LP_OK);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].hash, change[0].hash);
    assert_int_equal(got[0].until_ms, 99);
    assert_int_equal(store->ops->suppressed(store, 6, &n, &got), LP_OK);
    assert_int_equal(n, 0);
    /* a malformed entry is refused, nothing written */
    lp_store_suppress_t bad[] = {{"not-hex", 1}};
    lp_store_batch_t b4 = {.partition = 5, .epoch = epoch, .nsuppress = 1, .suppress = bad};
    assert_int_equal(lp_store_commit(store, &b4), LP_ERR);
}

/* A zombie (old epoch) writes nothing at all: no lead, timer, offset or outbox entry. */
static void test_stale_epoch_commit_refused(void **state) {
    lp_store_t *store = *state;
    lp_store_lead_t lead = {"z", (const uint8_t *)"zombie", 6};
    lp_store_timer_t timer = {"z", 10};
    lp_store_offset_t off = {"engagement.events", 99, -1};
    lp_store_outbox_t e = out_entry(0, "z", "v", 1, "e", "");
    lp_store_batch_t batch = {.partition = 9,
                              .nleads = 1,
                              .leads = &lead,
                              .ntimers = 1,
                              .timers = &timer,
                              .noffsets = 1,
                              .offsets = &off,
                              .noutbox = 1,
                              .outbox = &e};
    const char *ids[] = {"z"};
    lp_store_loaded_t loaded;
    lp_store_outbox_list_t list;
    int64_t old_epoch;
    int64_t new_epoch;
    int64_t o;

    assert_int_equal(lp_store_fence(store, 9, &old_epoch), LP_OK);
    assert_int_equal(lp_store_fence(store, 9, &new_epoch), LP_OK);
    assert_int_equal(new_epoch, old_epoch + 1);
    batch.epoch = old_epoch;
    assert_int_equal(lp_store_commit(store, &batch), LP_STORE_FENCED);
    assert_non_null(strstr(store->errstr, "fenced"));
    batch.epoch = new_epoch + 1; /* a future epoch is no better */
    assert_int_equal(lp_store_commit(store, &batch), LP_STORE_FENCED);

    assert_int_equal(lp_store_load(store, 9, 1, ids, &loaded), LP_OK);
    assert_null(loaded.data[0]);
    assert_due(store, 9, 1000, 10, 0, NULL);
    assert_int_equal(lp_store_get_offset(store, 9, "engagement.events", &o), LP_OK);
    assert_int_equal(o, -1);
    assert_int_equal(lp_store_outbox_read(store, 9, 10, &list), LP_OK);
    assert_int_equal(list.n, 0);

    batch.epoch = new_epoch;
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(lp_store_load(store, 9, 1, ids, &loaded), LP_OK);
    assert_int_equal(loaded.len[0], 6);
    assert_int_equal(lp_store_get_offset(store, 9, "engagement.events", &o), LP_OK);
    assert_int_equal(o, 99);
}

/* The commit in two halves: the same outcomes as lp_store_commit, one in flight at a time. */
static void test_split_commit(void **state) {
    lp_store_t *store = *state;
    lp_store_lead_t lead = {"s", (const uint8_t *)"split", 5};
    lp_store_offset_t off = {"engagement.events", 10, -1};
    lp_store_batch_t batch = {
        .partition = 4, .nleads = 1, .leads = &lead, .noffsets = 1, .offsets = &off};
    const char *ids[] = {"s"};
    lp_store_loaded_t loaded;
    int64_t epoch = 0;
    int64_t o = 0;

    assert_int_equal(lp_store_commit_recv(store), LP_ERR); /* nothing sent */
    assert_int_equal(lp_store_fence(store, 4, &epoch), LP_OK);
    batch.epoch = epoch;
    assert_int_equal(lp_store_commit_send(store, &batch), LP_OK);
    assert_int_equal(lp_store_commit_send(store, &batch), LP_ERR); /* one in flight */
    assert_int_equal(lp_store_commit_recv(store), LP_OK);
    assert_int_equal(lp_store_load(store, 4, 1, ids, &loaded), LP_OK);
    assert_int_equal(loaded.len[0], 5);
    assert_memory_equal(loaded.data[0], "split", 5);
    assert_int_equal(lp_store_get_offset(store, 4, "engagement.events", &o), LP_OK);
    assert_int_equal(o, 10);

    /* The same batch again: its offsets are stored already (Redis says so, the in-memory store
     * writes the same again). */
    off.expected = 10;
    assert_int_equal(lp_store_commit_send(store, &batch), LP_OK);
    int rc = lp_store_commit_recv(store);
    assert_true(rc == LP_STORE_DUPLICATE || rc == LP_OK);

    /* A stale epoch is refused through the halves too, and writes nothing. */
    int64_t newer = 0;
    assert_int_equal(lp_store_fence(store, 4, &newer), LP_OK);
    lead.data = (const uint8_t *)"zombie";
    lead.len = 6;
    off.next_offset = 20;
    assert_int_equal(lp_store_commit_send(store, &batch), LP_OK);
    assert_int_equal(lp_store_commit_recv(store), LP_STORE_FENCED);
    assert_int_equal(lp_store_load(store, 4, 1, ids, &loaded), LP_OK);
    assert_memory_equal(loaded.data[0], "split", 5);

    /* A batch the store refuses before sending: the failure comes back from recv as well. */
    lp_store_batch_t bad = {.partition = -1};
    (void)lp_store_commit_send(store, &bad);
    assert_int_equal(lp_store_commit_recv(store), LP_ERR);
    batch.epoch = newer;
    assert_int_equal(lp_store_commit_send(store, &batch), LP_OK);
    assert_int_equal(lp_store_commit_recv(store), LP_OK);
    assert_int_equal(lp_store_get_offset(store, 4, "engagement.events", &o), LP_OK);
    assert_int_equal(o, 20);
}

static void test_stale_epoch_ack_refused(void **state) {
    lp_store_t *store = *state;
    lp_store_outbox_t e = out_entry(0, "k", "v", 1, "id1", "");
    lp_store_batch_t batch = {.partition = 10, .noutbox = 1, .outbox = &e};
    lp_store_outbox_list_t list;
    char id[64];
    const char *ids[] = {id};
    int64_t new_epoch;

    assert_int_equal(lp_store_fence(store, 10, &batch.epoch), LP_OK);
    assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    assert_int_equal(lp_store_outbox_read(store, 10, 10, &list), LP_OK);
    assert_int_equal(list.n, 1);
    snprintf(id, sizeof(id), "%s", list.entries[0].id);
    assert_int_equal(lp_store_fence(store, 10, &new_epoch), LP_OK);
    assert_int_equal(lp_store_outbox_ack(store, 10, batch.epoch, 1, ids), LP_STORE_FENCED);
    assert_int_equal(lp_store_outbox_ack(store, 10, 0, 1, ids), LP_STORE_FENCED);
    assert_int_equal(lp_store_outbox_read(store, 10, 10, &list), LP_OK);
    assert_int_equal(list.n, 1);
    assert_string_equal(list.entries[0].id, id);
    assert_int_equal(lp_store_outbox_ack(store, 10, new_epoch, 1, ids), LP_OK);
    assert_int_equal(lp_store_outbox_read(store, 10, 10, &list), LP_OK);
    assert_int_equal(list.n, 0);
}

/* An invalid batch is refused whole, before anything is written. */
static void test_bad_batch_writes_nothing(void **state) {
    lp_store_t *store = *state;
    lp_store_lead_t lead = {"ok-lead", (const uint8_t *)"data", 4};
    lp_store_timer_t timers[] = {{"ok-lead", 5}, {"bad", -1}};
    lp_store_batch_t batch = {
        .partition = 11, .nleads = 1, .leads = &lead, .ntimers = 2, .timers = timers};
    lp_store_lead_t empty = {"empty", (const uint8_t *)"", 0};
    const char *ids[] = {"ok-lead"};
    lp_store_loaded_t loaded;
    const char *bad_ack[] = {"not-an-id"};

    assert_int_equal(lp_store_commit(store, &batch), LP_ERR);
    assert_true(store->errstr[0] != '\0');
    assert_int_equal(lp_store_load(store, 11, 1, ids, &loaded), LP_OK);
    assert_null(loaded.data[0]);
    assert_due(store, 11, 100, 10, 0, NULL);
    batch.ntimers = 0;
    batch.leads = &empty;
    assert_int_equal(lp_store_commit(store, &batch), LP_ERR);
    batch.partition = -1;
    batch.leads = &lead;
    assert_int_equal(lp_store_commit(store, &batch), LP_ERR);
    assert_int_equal(lp_store_outbox_ack(store, 11, 0, 1, bad_ack), LP_ERR);
    assert_int_equal(lp_store_commit(store, NULL), LP_ERR);
}

/* An unfenced partition has epoch 0: a writer that never fenced can still use it (tools). */
static void test_unfenced_epoch_zero(void **state) {
    lp_store_t *store = *state;
    int64_t epoch;

    assert_int_equal(put_lead(store, 12, 0, "x", "1", 1), LP_OK);
    assert_int_equal(put_lead(store, 12, 1, "x", "1", 1), LP_STORE_FENCED);
    assert_int_equal(lp_store_fence(store, 12, &epoch), LP_OK);
    assert_int_equal(epoch, 1);
    assert_int_equal(put_lead(store, 12, 0, "x", "1", 1), LP_STORE_FENCED);
    assert_int_equal(put_lead(store, 12, 1, "x", "1", 1), LP_OK);
}

#define STORE_SUITE_TESTS                                                                          \
    cmocka_unit_test_setup_teardown(test_load_unknown, suite_setup, suite_teardown),               \
        cmocka_unit_test_setup_teardown(test_account_partitions, suite_setup, suite_teardown),     \
        cmocka_unit_test_setup_teardown(test_commit_load_roundtrip, suite_setup, suite_teardown),  \
        cmocka_unit_test_setup_teardown(test_duplicate_lead_last_wins, suite_setup,                \
                                        suite_teardown),                                           \
        cmocka_unit_test_setup_teardown(test_timers_order_and_removal, suite_setup,                \
                                        suite_teardown),                                           \
        cmocka_unit_test_setup_teardown(test_timers_random, suite_setup, suite_teardown),          \
        cmocka_unit_test_setup_teardown(test_offsets, suite_setup, suite_teardown),                \
        cmocka_unit_test_setup_teardown(test_offsets_compare_and_set, suite_setup,                 \
                                        suite_teardown),                                           \
        cmocka_unit_test_setup_teardown(test_outbox_read_ack, suite_setup, suite_teardown),        \
        cmocka_unit_test_setup_teardown(test_stale_epoch_commit_refused, suite_setup,              \
                                        suite_teardown),                                           \
        cmocka_unit_test_setup_teardown(test_stale_epoch_ack_refused, suite_setup,                 \
                                        suite_teardown),                                           \
        cmocka_unit_test_setup_teardown(test_bad_batch_writes_nothing, suite_setup,                \
                                        suite_teardown),                                           \
        cmocka_unit_test_setup_teardown(test_unfenced_epoch_zero, suite_setup, suite_teardown),    \
        cmocka_unit_test_setup_teardown(test_split_commit, suite_setup, suite_teardown),           \
        cmocka_unit_test_setup_teardown(test_erase_and_suppress, suite_setup, suite_teardown)

#endif
