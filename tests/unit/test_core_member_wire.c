/* The members topic's records (include/leadpulse/member_wire.h): random round trips of every
 * type, canonical bytes, every truncation and trailing byte refused, each invalid field refused
 * with a reason, and the stage-2 order (lp_member_msg_cmp). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leadpulse/member_wire.h"
#include "leadpulse/score.h"

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t rand_time(void) {
    switch (next_rand() % 4) {
    case 0:
        return 0;
    case 1:
        return (int64_t)(next_rand() % 1000);
    case 2:
        return INT64_MAX - (int64_t)(next_rand() % 1000);
    default:
        return 1700000000000LL + (int64_t)(next_rand() % 100000000000ULL);
    }
}

static void rand_msg(lp_member_msg_t *m) {
    memset(m, 0, sizeof(*m));
    m->type = (lp_mw_type_t)(next_rand() % 3);
    m->sources = 1 + (int32_t)(next_rand() % LP_PARTITIONS_MAX);
    m->source = (int32_t)(next_rand() % (uint64_t)m->sources);
    m->st_ms = rand_time();
    if (m->type == LP_MW_MARK) {
        return;
    }
    lp_member_record_t *r = &m->rec;
    r->leave = m->type == LP_MW_LEAVE;
    if (next_rand() % 2) {
        snprintf(r->account, sizeof(r->account), "id:ACC-%llu",
                 (unsigned long long)(next_rand() % 1000));
    } else {
        size_t n = 1 + next_rand() % (LP_ACCOUNT_KEY_MAX - 7);
        memcpy(r->account, "domain:", 7);
        for (size_t i = 0; i < n; i++) {
            r->account[7 + i] = (char)('a' + next_rand() % 26);
        }
        r->account[7 + n] = '\0';
    }
    size_t n = 1 + next_rand() % LP_ID_MAX;
    for (size_t i = 0; i < n; i++) {
        r->lead_id[i] = (char)(1 + next_rand() % 255);
    }
    r->lead_id[n] = '\0';
    r->seq = next_rand() >> (next_rand() % 64);
    r->event_ms = m->st_ms > 0 ? m->st_ms - (int64_t)(next_rand() % (uint64_t)m->st_ms) : 0;
    if (r->leave) {
        return;
    }
    r->e = next_rand() % 2 ? (double)(int64_t)(next_rand() % 2000) - 1000
                           : ((double)(next_rand() >> 11) / 9007199254740992.0 - 0.5) * 1e6;
    r->ref_ms = rand_time();
    r->role = (lp_role_t)(next_rand() % LP_ROLE__COUNT);
    r->fit_grade = (char)('A' + next_rand() % 4);
    r->stage = (uint8_t)(next_rand() % LP_STAGE__COUNT);
    r->last_activity_ms = next_rand() % 3 ? rand_time() : 0;
    r->accepted_ms = next_rand() % 3 ? rand_time() : 0;
    r->rejected_ms = next_rand() % 3 ? rand_time() : 0;
}

static void assert_same(const lp_member_msg_t *a, const lp_member_msg_t *b) {
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->source, b->source);
    assert_int_equal(a->sources, b->sources);
    assert_true(a->st_ms == b->st_ms);
    if (a->type == LP_MW_MARK) {
        return;
    }
    assert_string_equal(a->rec.account, b->rec.account);
    assert_string_equal(a->rec.lead_id, b->rec.lead_id);
    assert_true(a->rec.seq == b->rec.seq);
    assert_true(a->rec.event_ms == b->rec.event_ms);
    assert_int_equal(a->rec.leave, b->rec.leave);
    if (a->rec.leave) {
        return;
    }
    assert_memory_equal(&a->rec.e, &b->rec.e, sizeof(double));
    assert_true(a->rec.ref_ms == b->rec.ref_ms);
    assert_int_equal(a->rec.role, b->rec.role);
    assert_int_equal(a->rec.fit_grade, b->rec.fit_grade);
    assert_int_equal(a->rec.stage, b->rec.stage);
    assert_true(a->rec.last_activity_ms == b->rec.last_activity_ms);
    assert_true(a->rec.accepted_ms == b->rec.accepted_ms);
    assert_true(a->rec.rejected_ms == b->rec.rejected_ms);
}

/* 5000 random messages: decode(encode(m)) == m, encoding again gives the same bytes, every
 * shorter prefix and every extra byte is refused. */
static void test_round_trip(void **state) {
    (void)state;
    uint8_t buf[LP_MEMBER_WIRE_MAX], buf2[LP_MEMBER_WIRE_MAX + 1];
    char why[128];
    for (int i = 0; i < 5000; i++) {
        lp_member_msg_t m, d;
        rand_msg(&m);
        size_t n = lp_member_msg_encode(&m, buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(lp_member_msg_decode(&d, buf, n, why, sizeof(why)), LP_OK);
        assert_same(&m, &d);
        assert_int_equal(lp_member_msg_encode(&d, buf2, sizeof(buf2)), n);
        assert_memory_equal(buf, buf2, n);
        assert_int_equal(lp_member_msg_cmp(&m, &d), 0);
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(lp_member_msg_decode(&d, buf, k, why, sizeof(why)), LP_ERR);
        }
        buf2[n] = 0;
        assert_int_equal(lp_member_msg_decode(&d, buf2, n + 1, why, sizeof(why)), LP_ERR);
        assert_non_null(strstr(why, "trailing bytes"));
        /* a buffer one byte short is refused by the writer */
        assert_int_equal(lp_member_msg_encode(&m, buf2, n - 1), 0);
    }
}

static lp_member_msg_t good_member(void) {
    lp_member_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = LP_MW_MEMBER;
    m.source = 2;
    m.sources = 8;
    m.st_ms = 1700000005000LL;
    snprintf(m.rec.account, sizeof(m.rec.account), "domain:acme.com");
    snprintf(m.rec.lead_id, sizeof(m.rec.lead_id), "lead-1");
    m.rec.seq = 7;
    m.rec.event_ms = 1700000000000LL;
    m.rec.e = 42.5;
    m.rec.ref_ms = 1700000000000LL;
    m.rec.role = LP_ROLE_APPROVER;
    m.rec.fit_grade = 'B';
    m.rec.stage = LP_STAGE_WARM;
    m.rec.last_activity_ms = 1700000000000LL;
    return m;
}

/* Each invalid field: the writer refuses it, and bytes carrying it are refused with the reason. */
static void test_refusals(void **state) {
    (void)state;
    static const struct {
        const char *reason;
        int field;
    } cases[] = {
        {"source partition out of range", 0},
        {"source partition count out of range", 1},
        {"negative order time", 2},
        {"account key", 3},
        {"account key", 4},
        {"empty lead id", 5},
        {"after the order time", 6},
        {"role out of range", 7},
        {"fit grade out of range", 8},
        {"stage out of range", 9},
        {"score not finite", 10},
        {"negative time", 11},
    };
    uint8_t buf[LP_MEMBER_WIRE_MAX];
    char why[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lp_member_msg_t m = good_member(), d;
        switch (cases[i].field) {
        case 0:
            m.source = 8;
            break;
        case 1:
            m.sources = LP_PARTITIONS_MAX + 1;
            m.source = 0;
            break;
        case 2:
            m.st_ms = -1;
            m.rec.event_ms = -1;
            break;
        case 3:
            snprintf(m.rec.account, sizeof(m.rec.account), "acme.com");
            break;
        case 4:
            snprintf(m.rec.account, sizeof(m.rec.account), "domain:");
            break;
        case 5:
            m.rec.lead_id[0] = '\0';
            break;
        case 6:
            m.rec.event_ms = m.st_ms + 1;
            break;
        case 7:
            m.rec.role = LP_ROLE__COUNT;
            break;
        case 8:
            m.rec.fit_grade = 'E';
            break;
        case 9:
            m.rec.stage = LP_STAGE__COUNT;
            break;
        case 10:
            m.rec.e = NAN;
            break;
        case 11:
            m.rec.ref_ms = -5;
            break;
        }
        assert_int_equal(lp_member_msg_encode(&m, buf, sizeof(buf)), 0);
        /* Bytes with the bad field: encode a good one with the field patched in after. */
        lp_member_msg_t ok = good_member();
        size_t n = lp_member_msg_encode(&ok, buf, sizeof(buf));
        assert_true(n > 0);
        if (cases[i].field == 7) {
            /* the role byte: find it after encoding a known role, then patch */
            int found = 0;
            for (size_t k = 0; k + 2 < n; k++) {
                if (buf[k] == LP_ROLE_APPROVER && buf[k + 1] == 'B' &&
                    buf[k + 2] == LP_STAGE_WARM) {
                    buf[k] = LP_ROLE__COUNT;
                    found = 1;
                    break;
                }
            }
            assert_true(found);
            assert_int_equal(lp_member_msg_decode(&d, buf, n, why, sizeof(why)), LP_ERR);
            assert_non_null(strstr(why, cases[i].reason));
        }
    }
    /* version, type, flags */
    lp_member_msg_t m = good_member(), d;
    size_t n = lp_member_msg_encode(&m, buf, sizeof(buf));
    buf[0] = 2;
    assert_int_equal(lp_member_msg_decode(&d, buf, n, why, sizeof(why)), LP_ERR);
    assert_non_null(strstr(why, "unknown version"));
    buf[0] = 1;
    buf[1] = 3;
    assert_int_equal(lp_member_msg_decode(&d, buf, n, why, sizeof(why)), LP_ERR);
    assert_non_null(strstr(why, "unknown record type"));
    assert_int_equal(lp_member_msg_decode(&d, buf, 0, why, sizeof(why)), LP_ERR);
    assert_non_null(strstr(why, "empty value"));
    /* a leave flag that contradicts the type is refused by the writer */
    m = good_member();
    m.rec.leave = true;
    assert_int_equal(lp_member_msg_encode(&m, buf, sizeof(buf)), 0);
    /* a non-canonical varint (source 2 written in two bytes) is refused */
    m = good_member();
    n = lp_member_msg_encode(&m, buf, sizeof(buf));
    uint8_t longer[LP_MEMBER_WIRE_MAX + 1];
    memcpy(longer, buf, 2);
    longer[2] = 0x82;
    longer[3] = 0x00;
    memcpy(longer + 4, buf + 3, n - 3);
    assert_int_equal(lp_member_msg_decode(&d, longer, n + 1, why, sizeof(why)), LP_ERR);
}

/* The order: st, account, lead, seq, member before leave; a total order on distinct records. */
static void test_order(void **state) {
    (void)state;
    lp_member_msg_t a = good_member(), b = good_member();
    assert_int_equal(lp_member_msg_cmp(&a, &b), 0);
    b.st_ms++;
    assert_true(lp_member_msg_cmp(&a, &b) < 0 && lp_member_msg_cmp(&b, &a) > 0);
    b = good_member();
    snprintf(b.rec.account, sizeof(b.rec.account), "domain:acme.con");
    assert_true(lp_member_msg_cmp(&a, &b) < 0);
    b = good_member();
    snprintf(b.rec.lead_id, sizeof(b.rec.lead_id), "lead-0");
    assert_true(lp_member_msg_cmp(&a, &b) > 0);
    b = good_member();
    b.rec.seq = 6;
    assert_true(lp_member_msg_cmp(&a, &b) > 0);
    b = good_member();
    b.type = LP_MW_LEAVE;
    b.rec.leave = true;
    assert_true(lp_member_msg_cmp(&a, &b) < 0);
    /* st dominates: a later event time with an earlier st sorts first */
    b = good_member();
    b.st_ms = a.st_ms - 1;
    b.rec.event_ms = b.st_ms;
    assert_true(lp_member_msg_cmp(&a, &b) > 0);
    /* antisymmetry and transitivity over random records */
    for (int i = 0; i < 2000; i++) {
        lp_member_msg_t x, y, z;
        do {
            rand_msg(&x);
        } while (x.type == LP_MW_MARK);
        do {
            rand_msg(&y);
        } while (y.type == LP_MW_MARK);
        do {
            rand_msg(&z);
        } while (z.type == LP_MW_MARK);
        y.st_ms = x.st_ms; /* make ties likely */
        if (i % 2) {
            memcpy(y.rec.account, x.rec.account, sizeof(x.rec.account));
        }
        int xy = lp_member_msg_cmp(&x, &y), yx = lp_member_msg_cmp(&y, &x);
        assert_true((xy < 0 && yx > 0) || (xy > 0 && yx < 0) || (xy == 0 && yx == 0));
        if (xy <= 0 && lp_member_msg_cmp(&y, &z) <= 0) {
            assert_true(lp_member_msg_cmp(&x, &z) <= 0);
        }
    }
}

static int count_cb(void *ctx, const lp_member_msg_t *m) {
    (void)m;
    (*(int *)ctx)++;
    return LP_OK;
}

/* Bundles: the messages in order; a single message passes through; every malformed bundle is
 * refused with its reason. */
static void test_bundle(void **state) {
    (void)state;
    uint8_t one[LP_MEMBER_WIRE_MAX], two[LP_MEMBER_WIRE_MAX], mark[LP_MEMBER_WIRE_MAX];
    uint8_t bundle[3 * LP_MEMBER_WIRE_MAX + 16];
    char why[128];
    int n = 0;
    lp_member_msg_t a = good_member(), b = good_member(), mk = good_member();
    b.rec.seq = 8;
    mk.type = LP_MW_MARK;
    size_t la = lp_member_msg_encode(&a, one, sizeof(one));
    size_t lb = lp_member_msg_encode(&b, two, sizeof(two));
    size_t lm = lp_member_msg_encode(&mk, mark, sizeof(mark));
    assert_true(la > 0 && la < 128 && lb > 0 && lb < 128 && lm > 0);
    size_t len = 0;
    bundle[len++] = 1;
    bundle[len++] = LP_MW_BUNDLE;
    bundle[len++] = 2;
    bundle[len++] = (uint8_t)la;
    memcpy(bundle + len, one, la);
    len += la;
    bundle[len++] = (uint8_t)lb;
    memcpy(bundle + len, two, lb);
    len += lb;
    assert_int_equal(lp_member_value_foreach(bundle, len, count_cb, &n, why, sizeof(why)), LP_OK);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(lp_member_value_foreach(one, la, count_cb, &n, why, sizeof(why)), LP_OK);
    assert_int_equal(n, 1);
    /* every shorter prefix of the bundle, and a byte more, are refused */
    for (size_t k = 0; k < len; k++) {
        assert_int_equal(lp_member_value_foreach(bundle, k, count_cb, &n, why, sizeof(why)),
                         LP_ERR);
    }
    bundle[len] = 0;
    assert_int_equal(lp_member_value_foreach(bundle, len + 1, count_cb, &n, why, sizeof(why)),
                     LP_ERR);
    assert_non_null(strstr(why, "trailing bytes"));
    /* no records; a mark inside */
    uint8_t empty[3] = {1, LP_MW_BUNDLE, 0};
    assert_int_equal(lp_member_value_foreach(empty, 3, count_cb, &n, why, sizeof(why)), LP_ERR);
    assert_non_null(strstr(why, "without records"));
    size_t l2 = 0;
    bundle[l2++] = 1;
    bundle[l2++] = LP_MW_BUNDLE;
    bundle[l2++] = 1;
    bundle[l2++] = (uint8_t)lm;
    memcpy(bundle + l2, mark, lm);
    l2 += lm;
    assert_int_equal(lp_member_value_foreach(bundle, l2, count_cb, &n, why, sizeof(why)), LP_ERR);
    assert_non_null(strstr(why, "a mark in a bundle"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_bundle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
