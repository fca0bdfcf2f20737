/* leadpulse in-memory store: the shared store suite plus what only the memory store promises
 * (speed for replay, outbox growth under interleaved commits and acks). */
#include <time.h>

#include "store/store_internal.h"
#include "test_store_suite.h"

static lp_store_t *new_mem_store(void) {
    return lp_store_mem_new();
}

static double now_s(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Many interleaved commits and partial acks: ids stay in commit order, nothing lost or doubled. */
static void test_outbox_interleaved(void **state) {
    enum { ROUNDS = 300, PER = 37 };
    lp_store_t *store = *state;
    lp_store_outbox_t entries[PER];
    char keys[PER][24];
    lp_store_batch_t batch = {.partition = 0, .noutbox = PER, .outbox = entries};
    lp_store_outbox_list_t list;
    const char *ack[64];
    char ackbuf[64][64];
    long next_expected = 0;
    long written = 0;
    int round;
    size_t i;

    assert_int_equal(lp_store_fence(store, 0, &batch.epoch), LP_OK);
    for (round = 0; round < ROUNDS; round++) {
        for (i = 0; i < PER; i++) {
            snprintf(keys[i], sizeof(keys[i]), "%ld", written + (long)i);
            entries[i] = out_entry(0, keys[i], "v", 1, "", "");
        }
        written += PER;
        assert_int_equal(lp_store_commit(store, &batch), LP_OK);
        /* Ack fewer than written each round, so the outbox grows and wraps. */
        assert_int_equal(lp_store_outbox_read(store, 0, 30, &list), LP_OK);
        assert_int_equal(list.n, 30);
        for (i = 0; i < list.n; i++) {
            char want[24];

            snprintf(want, sizeof(want), "%ld", next_expected + (long)i);
            assert_int_equal(list.entries[i].key_len, strlen(want));
            assert_memory_equal(list.entries[i].key, want, strlen(want));
            snprintf(ackbuf[i], sizeof(ackbuf[i]), "%s", list.entries[i].id);
            ack[i] = ackbuf[i];
        }
        assert_int_equal(lp_store_outbox_ack(store, 0, batch.epoch, list.n, ack), LP_OK);
        next_expected += 30;
    }
    /* Drain the rest and count it. */
    for (;;) {
        assert_int_equal(lp_store_outbox_read(store, 0, 64, &list), LP_OK);
        if (list.n == 0) {
            break;
        }
        for (i = 0; i < list.n; i++) {
            char want[24];

            snprintf(want, sizeof(want), "%ld", next_expected++);
            assert_memory_equal(list.entries[i].key, want, strlen(want));
            snprintf(ackbuf[i], sizeof(ackbuf[i]), "%s", list.entries[i].id);
            ack[i] = ackbuf[i];
        }
        assert_int_equal(lp_store_outbox_ack(store, 0, batch.epoch, list.n, ack), LP_OK);
    }
    assert_int_equal(next_expected, written);
}

/* Replay pushes millions of events through this store: lead load and commit must stay O(1).
 * Asserted loosely (a slow CI machine must not fail it); the figures are printed. */
static void test_mem_throughput(void **state) {
    enum { NLEADS = 1000000, BATCH = 1000 };
    lp_store_t *store = *state;
    static lp_store_lead_t leads[BATCH];
    static lp_store_timer_t timers[BATCH];
    static char ids[BATCH][24];
    static const char *idp[BATCH];
    uint8_t data[100];
    lp_store_batch_t batch = {
        .partition = 0, .leads = leads, .nleads = BATCH, .timers = timers, .ntimers = BATCH};
    lp_store_loaded_t loaded;
    double t0;
    double commit_s;
    double load_s;
    size_t b;
    size_t i;

    memset(data, 'd', sizeof(data));
    t0 = now_s();
    for (b = 0; b < NLEADS / BATCH; b++) {
        for (i = 0; i < BATCH; i++) {
            snprintf(ids[i], sizeof(ids[i]), "lead-%zu", b * BATCH + i);
            leads[i] = (lp_store_lead_t){ids[i], data, sizeof(data)};
            timers[i] = (lp_store_timer_t){ids[i], (int64_t)(1000 + (b * BATCH + i) % 7919)};
        }
        assert_int_equal(lp_store_commit(store, &batch), LP_OK);
    }
    commit_s = now_s() - t0;
    t0 = now_s();
    for (b = 0; b < NLEADS / BATCH; b++) {
        for (i = 0; i < BATCH; i++) {
            snprintf(ids[i], sizeof(ids[i]), "lead-%zu", (b * 7919 + i * 13) % NLEADS);
            idp[i] = ids[i];
        }
        assert_int_equal(lp_store_load(store, 0, BATCH, idp, &loaded), LP_OK);
        for (i = 0; i < BATCH; i++) {
            assert_int_equal(loaded.len[i], sizeof(data));
        }
    }
    load_s = now_s() - t0;
    printf("mem store: %d leads committed in %.2fs (%.0f leads/s), loaded in %.2fs (%.0f/s)\n",
           NLEADS, commit_s, NLEADS / commit_s, load_s, NLEADS / load_s);
    assert_true(commit_s < 20.0 && load_s < 20.0);
}

static void test_wrappers_reject_bad_args(void **state) {
    lp_store_t *store = *state;
    lp_store_loaded_t loaded = {.n = 3};
    int64_t v;
    size_t n;
    const char **ids;

    assert_int_equal(lp_store_fence(store, 0, NULL), LP_ERR);
    assert_int_equal(lp_store_fence(store, LP_STORE_PARTITIONS_MAX, &v), LP_ERR);
    assert_int_equal(lp_store_get_offset(store, 0, NULL, &v), LP_ERR);
    assert_int_equal(lp_store_get_offset(store, 0, "", &v), LP_ERR);
    assert_int_equal(lp_store_load(store, 0, 1, NULL, &loaded), LP_ERR);
    assert_int_equal(lp_store_due(store, -5, 0, 1, &n, &ids), LP_ERR);
    assert_int_equal(lp_store_outbox_read(store, 0, 1, NULL), LP_ERR);
    lp_store_loaded_clear(&loaded);
    assert_int_equal(loaded.n, 0);
    lp_store_loaded_clear(NULL);
    lp_store_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        STORE_SUITE_TESTS,
        cmocka_unit_test_setup_teardown(test_outbox_interleaved, suite_setup, suite_teardown),
        cmocka_unit_test_setup_teardown(test_mem_throughput, suite_setup, suite_teardown),
        cmocka_unit_test_setup_teardown(test_wrappers_reject_bad_args, suite_setup, suite_teardown),
    };

    suite_new_store = new_mem_store;
    return cmocka_run_group_tests_name("store_mem", tests, NULL, NULL);
}
