/* The account hand-offs (AccountQualified, AccountStale): our encoders against avro-c reading and
 * writing with the schema files, the framing, the refusals, the JSON form, the roles_missing
 * sentences, the member order, the event ids; and the docs of every schema file. */
#include <avro.h>
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec_fixture.h"

#include "core/core_internal.h"

static lp_avro_codec_t *codec;

static int setup(void **state) {
    (void)state;
    codec = fix_codec();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    lp_avro_codec_destroy(codec);
    return 0;
}

static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    char *buf = calloc(1, 65536);
    assert_non_null(fp);
    *len = fread(buf, 1, 65535, fp);
    fclose(fp);
    return buf;
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static const char *schema_name(lp_account_fact_kind_t kind) {
    return kind == LP_ACCOUNT_FACT_STALE ? "AccountStale" : "AccountQualified";
}

static avro_schema_t load_schema(lp_account_fact_kind_t kind) {
    char path[1024];
    size_t len;
    char *text;
    avro_schema_t schema = NULL;

    snprintf(path, sizeof(path), "%s/%s.avsc", LP_SCHEMA_DIR, schema_name(kind));
    text = slurp(path, &len);
    if (avro_schema_from_json_length(text, len, &schema) != 0) {
        fail_msg("avro-c rejects %s: %s", path, avro_strerror());
    }
    free(text);
    return schema;
}

/* The sentences of the fixtures' unmet groups, written out (not through our function). */
static const char *expected_missing(const lp_account_fact_t *f, int i) {
    if (f->nroles_missing == 1) {
        return "no approver or decision_maker engaged yet";
    }
    static const char *const v1[] = {
        "no approver or decision_maker engaged yet",
        "no influencer engaged yet",
        "no approver, decision_maker, influencer or recommender engaged yet",
    };
    return v1[i];
}

static void get_field(avro_value_t *rec, const char *name, avro_value_t *out) {
    if (avro_value_get_by_name(rec, name, out, NULL) != 0) {
        fail_msg("no field %s", name);
    }
}

static void set_str(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t v;
    get_field(rec, name, &v);
    assert_int_equal(avro_value_set_string(&v, s), 0);
}

static void set_long(avro_value_t *rec, const char *name, int64_t l) {
    avro_value_t v;
    get_field(rec, name, &v);
    assert_int_equal(avro_value_set_long(&v, l), 0);
}

static void set_int(avro_value_t *rec, const char *name, int32_t i) {
    avro_value_t v;
    get_field(rec, name, &v);
    assert_int_equal(avro_value_set_int(&v, i), 0);
}

static void set_double(avro_value_t *rec, const char *name, double d) {
    avro_value_t v;
    get_field(rec, name, &v);
    assert_int_equal(avro_value_set_double(&v, d), 0);
}

static const char *const stage_symbols[] = {"SUSPECT",      "RESPONDER",  "WARM",
                                            "MQL",          "SQL",        "RECYCLED",
                                            "DISQUALIFIED", "CLOSED_WON", "CLOSED_LOST"};

/* Sets every field of an AccountQualified / AccountStale with avro-c's generic API, from the
 * fact's values (the sentences written out). */
static void set_account(avro_value_t *rec, const lp_account_fact_t *f) {
    avro_value_t arr, item, v, branch;
    size_t size;

    assert_int_equal(avro_value_get_size(rec, &size), 0);
    assert_int_equal(size, f->kind == LP_ACCOUNT_FACT_STALE ? 15 : 13);
    set_str(rec, "event_id", f->event_id);
    set_str(rec, "account", f->account);
    set_long(rec, "ts", f->ts_ms);
    if (f->kind == LP_ACCOUNT_FACT_STALE) {
        get_field(rec, "reason", &v);
        assert_int_equal(avro_value_set_enum(&v, (int)f->stale_reason), 0);
    }
    set_double(rec, "score", f->score);
    set_int(rec, "engaged_members", f->engaged_members);
    set_int(rec, "members_total", f->members_total);
    set_int(rec, "members_untracked", f->members_untracked);
    get_field(rec, "roles_covered", &arr);
    for (int r = 0; r < LP_ROLE__COUNT; r++) {
        if (f->roles_covered & (1u << r)) {
            assert_int_equal(avro_value_append(&arr, &item, NULL), 0);
            assert_int_equal(avro_value_set_enum(&item, r), 0);
        }
    }
    get_field(rec, "roles_missing", &arr);
    for (int i = 0; i < f->nroles_missing; i++) {
        assert_int_equal(avro_value_append(&arr, &item, NULL), 0);
        assert_int_equal(avro_value_set_string(&item, expected_missing(f, i)), 0);
    }
    get_field(rec, "members", &arr);
    for (int i = 0; i < f->nmembers; i++) {
        const lp_account_member_t *m = &f->members[i];
        const char grade[2] = {m->fit_grade, '\0'};
        assert_int_equal(avro_value_append(&arr, &item, NULL), 0);
        assert_int_equal(avro_value_get_size(&item, &size), 0);
        assert_int_equal(size, 8);
        set_str(&item, "lead_id", m->lead_id);
        get_field(&item, "role", &v);
        assert_int_equal(avro_value_set_enum(&v, (int)m->role), 0);
        set_double(&item, "score", m->score);
        set_double(&item, "counted", m->counted);
        get_field(&item, "engaged", &v);
        assert_int_equal(avro_value_set_boolean(&v, m->engaged), 0);
        set_str(&item, "fit_grade", grade);
        set_str(&item, "stage", stage_symbols[m->stage]);
        get_field(&item, "last_activity", &v);
        if (m->last_activity_ms == 0) {
            assert_int_equal(avro_value_set_branch(&v, 0, &branch), 0);
            assert_int_equal(avro_value_set_null(&branch), 0);
        } else {
            assert_int_equal(avro_value_set_branch(&v, 1, &branch), 0);
            assert_int_equal(avro_value_set_long(&branch, m->last_activity_ms), 0);
        }
    }
    set_str(rec, "model_id", f->model_id);
    set_str(rec, "model_version", f->model_version);
    set_int(rec, "qualification", (int32_t)f->qualification);
    if (f->kind == LP_ACCOUNT_FACT_STALE) {
        set_long(rec, "qualified_at", f->qualified_at_ms);
    }
}

static void check_str(avro_value_t *rec, const char *name, const char *want) {
    avro_value_t v;
    const char *s;
    size_t size;
    get_field(rec, name, &v);
    assert_int_equal(avro_value_get_string(&v, &s, &size), 0);
    assert_string_equal(s, want);
    assert_int_equal(size, strlen(want) + 1);
}

static void check_long(avro_value_t *rec, const char *name, int64_t want) {
    avro_value_t v;
    int64_t l;
    get_field(rec, name, &v);
    assert_int_equal(avro_value_get_long(&v, &l), 0);
    assert_true(l == want);
}

static void check_int(avro_value_t *rec, const char *name, int64_t want) {
    avro_value_t v;
    int32_t i;
    get_field(rec, name, &v);
    assert_int_equal(avro_value_get_int(&v, &i), 0);
    assert_true(i == want);
}

static void check_double(avro_value_t *rec, const char *name, double want) {
    avro_value_t v;
    double d;
    get_field(rec, name, &v);
    assert_int_equal(avro_value_get_double(&v, &d), 0);
    assert_memory_equal(&d, &want, sizeof(d));
}

static void check_enum(avro_value_t *v, const char *want) {
    int e;
    assert_int_equal(avro_value_get_enum(v, &e), 0);
    assert_string_equal(avro_schema_enum_get(avro_value_get_schema(v), e), want);
}

/* Every field of a record avro-c read, against the fact (enums by symbol). */
static void check_account(avro_value_t *rec, const lp_account_fact_t *f) {
    avro_value_t arr, item, v, branch;
    size_t size;
    int k = 0;

    assert_int_equal(avro_value_get_size(rec, &size), 0);
    assert_int_equal(size, f->kind == LP_ACCOUNT_FACT_STALE ? 15 : 13);
    check_str(rec, "event_id", f->event_id);
    check_str(rec, "account", f->account);
    check_long(rec, "ts", f->ts_ms);
    if (f->kind == LP_ACCOUNT_FACT_STALE) {
        get_field(rec, "reason", &v);
        check_enum(&v, f->stale_reason == LP_ACCOUNT_STALE_SLA_BREACHED ? "account_sla_breached"
                                                                        : "committee_quiet");
    }
    check_double(rec, "score", f->score);
    check_int(rec, "engaged_members", f->engaged_members);
    check_int(rec, "members_total", f->members_total);
    check_int(rec, "members_untracked", f->members_untracked);
    get_field(rec, "roles_covered", &arr);
    assert_int_equal(avro_value_get_size(&arr, &size), 0);
    for (int r = 0; r < LP_ROLE__COUNT; r++) {
        if (f->roles_covered & (1u << r)) {
            assert_true((size_t)k < size);
            assert_int_equal(avro_value_get_by_index(&arr, (size_t)k++, &item, NULL), 0);
            check_enum(&item, lp_role_name((lp_role_t)r));
        }
    }
    assert_int_equal(size, (size_t)k);
    get_field(rec, "roles_missing", &arr);
    assert_int_equal(avro_value_get_size(&arr, &size), 0);
    assert_int_equal(size, (size_t)f->nroles_missing);
    for (int i = 0; i < f->nroles_missing; i++) {
        const char *s;
        assert_int_equal(avro_value_get_by_index(&arr, (size_t)i, &item, NULL), 0);
        assert_int_equal(avro_value_get_string(&item, &s, &size), 0);
        assert_string_equal(s, expected_missing(f, i));
    }
    get_field(rec, "members", &arr);
    assert_int_equal(avro_value_get_size(&arr, &size), 0);
    assert_int_equal(size, (size_t)f->nmembers);
    for (int i = 0; i < f->nmembers; i++) {
        const lp_account_member_t *m = &f->members[i];
        const char grade[2] = {m->fit_grade, '\0'};
        int b, disc;
        assert_int_equal(avro_value_get_by_index(&arr, (size_t)i, &item, NULL), 0);
        check_str(&item, "lead_id", m->lead_id);
        get_field(&item, "role", &v);
        check_enum(&v, lp_role_name(m->role));
        check_double(&item, "score", m->score);
        check_double(&item, "counted", m->counted);
        get_field(&item, "engaged", &v);
        assert_int_equal(avro_value_get_boolean(&v, &b), 0);
        assert_int_equal(b != 0, m->engaged);
        check_str(&item, "fit_grade", grade);
        check_str(&item, "stage", stage_symbols[m->stage]);
        get_field(&item, "last_activity", &v);
        assert_int_equal(avro_value_get_discriminant(&v, &disc), 0);
        assert_int_equal(disc, m->last_activity_ms == 0 ? 0 : 1);
        if (disc == 1) {
            int64_t l;
            assert_int_equal(avro_value_get_current_branch(&v, &branch), 0);
            assert_int_equal(avro_value_get_long(&branch, &l), 0);
            assert_true(l == m->last_activity_ms);
        }
    }
    check_str(rec, "model_id", f->model_id);
    check_str(rec, "model_version", f->model_version);
    check_int(rec, "qualification", f->qualification);
    if (f->kind == LP_ACCOUNT_FACT_STALE) {
        check_long(rec, "qualified_at", f->qualified_at_ms);
    }
}

/* avro-c reads our bytes with the schema file (every field, nothing left over) and writes the
 * same values byte for byte as we do. */
static void interop(const lp_account_fact_t *f, const uint8_t *ours, size_t n) {
    avro_schema_t schema = load_schema(f->kind);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t value;
    avro_reader_t reader;
    avro_writer_t writer;
    static char theirs[LP_AVRO_ACCOUNT_FACT_MAX];
    size_t theirs_len;

    assert_non_null(iface);
    assert_int_equal(avro_generic_value_new(iface, &value), 0);
    reader = avro_reader_memory((const char *)ours, (int64_t)n);
    if (avro_value_read(reader, &value) != 0) {
        fail_msg("avro-c cannot read our %s: %s", schema_name(f->kind), avro_strerror());
    }
    check_account(&value, f);
    avro_value_reset(&value);
    assert_int_not_equal(avro_value_read(reader, &value), 0);
    avro_reader_free(reader);

    avro_value_reset(&value);
    set_account(&value, f);
    writer = avro_writer_memory(theirs, (int64_t)sizeof(theirs));
    assert_int_equal(avro_value_write(writer, &value), 0);
    theirs_len = (size_t)avro_writer_tell(writer);
    avro_writer_free(writer);
    assert_int_equal(theirs_len, n);
    assert_memory_equal(theirs, ours, n);

    avro_value_decref(&value);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

static void test_avro_interop(void **state) {
    static uint8_t buf[LP_AVRO_ACCOUNT_FACT_MAX];
    (void)state;

    for (int kind = LP_ACCOUNT_FACT_QUALIFIED; kind <= LP_ACCOUNT_FACT_STALE; kind++) {
        for (int variant = 0; variant < 3; variant++) {
            lp_account_fact_t f;
            size_t n;
            fix_account_fact(&f, (lp_account_fact_kind_t)kind, variant);
            n = lp_avro_encode_account_fact(codec, &f, LP_FRAMING_RAW, buf, sizeof(buf));
            if (n == 0) {
                fail_msg("kind %d variant %d: %s", kind, variant, lp_avro_codec_errstr(codec));
            }
            interop(&f, buf, n);
            for (size_t size = 0; size < n; size++) {
                assert_int_equal(lp_avro_encode_account_fact(codec, &f, LP_FRAMING_RAW, buf, size),
                                 0);
            }
            assert_non_null(strstr(lp_avro_codec_errstr(codec), "buffer too small"));
        }
    }
}

/* The framings, and the schema ids of the account kinds. */
static void test_framing_and_ids(void **state) {
    lp_avro_codec_t *c = fix_codec();
    uint8_t buf[LP_AVRO_ACCOUNT_FACT_MAX], raw[LP_AVRO_ACCOUNT_FACT_MAX];
    char err[LP_ERRSTR];
    lp_account_fact_t f;
    lp_fact_t fact;
    lp_event_t ev;
    lp_schema_kind_t kind;
    size_t n, rn;
    (void)state;

    fix_account_fact(&f, LP_ACCOUNT_FACT_STALE, 2);
    rn = lp_avro_encode_account_fact(c, &f, LP_FRAMING_RAW, raw, sizeof(raw));
    assert_true(rn > 0);
    /* No id by default: Confluent framing refused, single-object and raw fine. */
    assert_int_equal(lp_avro_encode_account_fact(c, &f, LP_FRAMING_CONFLUENT, buf, sizeof(buf)), 0);
    assert_string_equal(lp_avro_codec_errstr(c),
                        "no schema id configured for AccountStale (Confluent framing)");
    n = lp_avro_encode_account_fact(c, &f, LP_FRAMING_SINGLE_OBJECT, buf, sizeof(buf));
    assert_int_equal(n, rn + 10);
    assert_int_equal(buf[0], 0xC3);
    assert_int_equal(buf[1], 0x01);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(buf[2 + i], (uint8_t)(0xb1d25448beda2a78ULL >> (8 * i)));
    }
    assert_memory_equal(buf + 10, raw, rn);

    /* Only the account kinds, and no id of another schema. */
    assert_int_equal(lp_avro_codec_set_schema_id(c, LP_SCHEMA_QUALIFIED, 7, err, sizeof(err)),
                     LP_ERR);
    assert_non_null(strstr(err, "only the account hand-offs' ids"));
    assert_int_equal(lp_avro_codec_set_schema_id(c, LP_SCHEMA_ACCOUNT_STALE, 201, err, sizeof(err)),
                     LP_ERR);
    assert_string_equal(err, "schema id 201 is configured for LeadQualified already");
    assert_int_equal(
        lp_avro_codec_set_schema_id(c, LP_SCHEMA_ACCOUNT_QUALIFIED, 204, err, sizeof(err)), LP_OK);
    assert_int_equal(lp_avro_codec_set_schema_id(c, LP_SCHEMA_ACCOUNT_STALE, 204, err, sizeof(err)),
                     LP_ERR);
    assert_string_equal(err, "schema id 204 is configured for AccountQualified already");
    assert_int_equal(
        lp_avro_codec_set_schema_id(c, LP_SCHEMA_ACCOUNT_QUALIFIED, 204, err, sizeof(err)), LP_OK);
    assert_int_equal(lp_avro_codec_set_schema_id(c, LP_SCHEMA_ACCOUNT_STALE, 205, err, sizeof(err)),
                     LP_OK);
    assert_int_equal(lp_avro_codec_id_state(c, 205, &kind), LP_AVRO_ID_DIRECT);
    assert_int_equal(kind, LP_SCHEMA_ACCOUNT_STALE);

    n = lp_avro_encode_account_fact(c, &f, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
    assert_int_equal(n, rn + 5);
    assert_memory_equal(buf, "\x00\x00\x00\x00\xcd", 5);
    assert_memory_equal(buf + 5, raw, rn);
    /* Our decoders know the id and refuse the record by name, not as an unknown id. */
    assert_int_equal(lp_avro_decode_fact(c, buf, n, &fact, err, sizeof(err)), LP_ERR);
    assert_string_equal(err, "schema id 205 is AccountStale, not expected here");
    assert_int_equal(lp_avro_decode_event(c, buf, n, -1, &ev, err, sizeof(err)), LP_ERR);
    assert_string_equal(err, "schema id 205 is AccountStale, not expected here");

    fix_account_fact(&f, LP_ACCOUNT_FACT_QUALIFIED, 2);
    n = lp_avro_encode_account_fact(c, &f, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
    assert_true(n > 5);
    assert_memory_equal(buf, "\x00\x00\x00\x00\xcc", 5);

    /* Unset again. */
    assert_int_equal(
        lp_avro_codec_set_schema_id(c, LP_SCHEMA_ACCOUNT_QUALIFIED, -1, err, sizeof(err)), LP_OK);
    assert_int_equal(lp_avro_encode_account_fact(c, &f, LP_FRAMING_CONFLUENT, buf, sizeof(buf)), 0);
    lp_avro_codec_destroy(c);
}

/* Values outside the schema or the format's rules: refused by both encoders, with the reason. */
static void test_refusals(void **state) {
    uint8_t buf[LP_AVRO_ACCOUNT_FACT_MAX];
    char json[LP_JSON_ACCOUNT_FACT_MAX];
    lp_account_fact_t f;
    (void)state;

#define REFUSED(kind, variant, spoil, why)                                                         \
    do {                                                                                           \
        fix_account_fact(&f, (kind), (variant));                                                   \
        spoil;                                                                                     \
        assert_int_equal(lp_avro_encode_account_fact(codec, &f, LP_FRAMING_RAW, buf, sizeof(buf)), \
                         0);                                                                       \
        if (strstr(lp_avro_codec_errstr(codec), (why)) == NULL) {                                  \
            fail_msg("%s: got \"%s\", want \"%s\"", #spoil, lp_avro_codec_errstr(codec), (why));   \
        }                                                                                          \
        assert_int_equal(lp_json_encode_account_fact(&f, json, sizeof(json)), 0);                  \
    } while (0)

    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.kind = (lp_account_fact_kind_t)2,
            "unknown account fact kind");
    REFUSED(LP_ACCOUNT_FACT_STALE, 2, f.stale_reason = LP_ACCOUNT_STALE__COUNT,
            "stale reason out of range");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.event_id[0] = '\0', "event_id is empty");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, snprintf(f.account, sizeof(f.account), "acme.com"),
            "account is not an account key");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.account[0] = '\0', "account is not an account key");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.members_untracked = -1, "a member count is negative");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.engaged_members = 4,
            "engaged_members exceeds members_total");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.nmembers = 2, "nmembers is not min(members_total, 50)");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 1, f.nmembers = 49,
            "nmembers is not min(members_total, 50)");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 0, f.members_total = 1,
            "nmembers is not min(members_total, 50)");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.qualification = 0, "qualification is not 1..");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.qualification = 2147483648u,
            "qualification is not 1..");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.roles_covered = 1u << LP_ROLE__COUNT,
            "roles_covered holds an unknown role");
    REFUSED(LP_ACCOUNT_FACT_STALE, 2, f.nroles_missing = LP_MAX_ROLE_GROUPS + 1,
            "nroles_missing out of range");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, (f.nroles_missing = 1, f.roles_missing[0] = 1),
            "roles_missing in an AccountQualified");
    REFUSED(LP_ACCOUNT_FACT_STALE, 2, f.roles_missing[0] = 0, "a roles_missing group is empty");
    REFUSED(LP_ACCOUNT_FACT_STALE, 2, f.roles_missing[0] = 1u << 9,
            "a roles_missing group is empty or holds an unknown role");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.members[2].lead_id[0] = '\0',
            "a member's lead_id is empty");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.members[0].role = LP_ROLE__COUNT,
            "a member's role is out of range");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.members[1].fit_grade = 'E',
            "a member's fit_grade is not A-D");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.members[1].fit_grade = 0,
            "a member's fit_grade is not A-D");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.members[1].stage = LP_STAGE__COUNT,
            "a member's stage is out of range");
    REFUSED(LP_ACCOUNT_FACT_QUALIFIED, 2, f.members[1].last_activity_ms = -1,
            "a member's last_activity is negative");
#undef REFUSED
}

/* The largest hand-offs fit the documented maximum sizes. */
static void test_max_sizes(void **state) {
    static uint8_t buf[LP_AVRO_ACCOUNT_FACT_MAX + 1];
    static char json[LP_JSON_ACCOUNT_FACT_MAX + 1];
    lp_account_fact_t f;
    size_t n;
    (void)state;

    fix_account_fact(&f, LP_ACCOUNT_FACT_STALE, 1);
    /* Every string at its limit, in the form that takes the most bytes (control characters are
     * escaped as \u00XX in JSON), every group of six roles, the longest stage and the largest
     * numbers. */
    fix_fill(f.account, LP_ACCOUNT_KEY_MAX, '\x01');
    memcpy(f.account, "id:", 3);
    fix_fill(f.model_id, LP_NAME_MAX, '\x01');
    fix_fill(f.model_version, LP_NAME_MAX, '\x01');
    f.nroles_missing = LP_MAX_ROLE_GROUPS;
    for (int i = 0; i < LP_MAX_ROLE_GROUPS; i++) {
        f.roles_missing[i] = (1u << LP_ROLE__COUNT) - 1;
    }
    f.ts_ms = INT64_MIN;
    f.qualified_at_ms = INT64_MIN;
    f.score = -1.2345678901234567e-300;
    f.members_total = INT32_MAX;
    f.engaged_members = INT32_MAX;
    f.members_untracked = INT32_MAX;
    for (int i = 0; i < LP_ACCOUNT_FACT_MEMBERS; i++) {
        lp_account_member_t *m = &f.members[i];
        fix_fill(m->lead_id, LP_ID_MAX, '\x01');
        m->role = LP_ROLE_DECISION_MAKER;
        m->score = -1.2345678901234567e-300;
        m->counted = -1.2345678901234567e-300;
        m->engaged = false;
        m->stage = LP_STAGE_DISQUALIFIED;
        m->last_activity_ms = INT64_MAX;
    }
    n = lp_avro_encode_account_fact(codec, &f, LP_FRAMING_SINGLE_OBJECT, buf, sizeof(buf));
    assert_true(n > 0);
    assert_true(n <= LP_AVRO_ACCOUNT_FACT_MAX);
    n = lp_json_encode_account_fact(&f, json, sizeof(json));
    assert_true(n > 0);
    assert_true(n + 1 <= LP_JSON_ACCOUNT_FACT_MAX);
    print_message(
        "largest account hand-off: Avro %zu bytes, JSON %zu bytes\n",
        lp_avro_encode_account_fact(codec, &f, LP_FRAMING_SINGLE_OBJECT, buf, sizeof(buf)), n);
}

/* The JSON form: golden lines, stable bytes, and a buffer too small. */
static void test_json(void **state) {
    char a[LP_JSON_ACCOUNT_FACT_MAX], b[LP_JSON_ACCOUNT_FACT_MAX];
    lp_account_fact_t f, copy;
    size_t n;
    (void)state;

    fix_account_fact(&f, LP_ACCOUNT_FACT_QUALIFIED, 2);
    assert_true(lp_json_encode_account_fact(&f, a, sizeof(a)) > 0);
    assert_string_equal(
        a, "{\"kind\":\"account_qualified\",\"event_id\":\"fedcba9876543210fedcba9876543212\","
           "\"account\":\"domain:acme-2.example\",\"ts\":1795600800002,\"score\":161.5,"
           "\"engaged_members\":2,\"members_total\":3,\"members_untracked\":0,"
           "\"roles_covered\":[\"decision_maker\",\"influencer\"],\"roles_missing\":[],"
           "\"members\":[{\"lead_id\":\"L-7\",\"role\":\"decision_maker\",\"score\":104.73125,"
           "\"counted\":60,\"engaged\":true,\"fit_grade\":\"A\",\"stage\":\"mql\","
           "\"last_activity\":1795600800000},{\"lead_id\":\"L-9\",\"role\":\"influencer\","
           "\"score\":41.5,\"counted\":41.5,\"engaged\":true,\"fit_grade\":\"B\","
           "\"stage\":\"warm\",\"last_activity\":1795590000000},{\"lead_id\":\"L-12\","
           "\"role\":\"user\",\"score\":0,\"counted\":0,\"engaged\":false,\"fit_grade\":\"D\","
           "\"stage\":\"suspect\",\"last_activity\":null}],\"model_id\":\"default\","
           "\"model_version\":\"2026-11-01.3\",\"qualification\":2}");

    fix_account_fact(&f, LP_ACCOUNT_FACT_STALE, 2);
    assert_true(lp_json_encode_account_fact(&f, a, sizeof(a)) > 0);
    assert_string_equal(
        a, "{\"kind\":\"account_stale\",\"event_id\":\"fedcba9876543210fedcba9876543212\","
           "\"account\":\"domain:acme-2.example\",\"ts\":1795600800002,"
           "\"reason\":\"account_sla_breached\",\"score\":161.5,\"engaged_members\":2,"
           "\"members_total\":3,\"members_untracked\":0,\"roles_covered\":[\"influencer\"],"
           "\"roles_missing\":[\"no approver or decision_maker engaged yet\"],"
           "\"members\":[{\"lead_id\":\"L-7\",\"role\":\"decision_maker\",\"score\":104.73125,"
           "\"counted\":60,\"engaged\":true,\"fit_grade\":\"A\",\"stage\":\"mql\","
           "\"last_activity\":1795600800000},{\"lead_id\":\"L-9\",\"role\":\"influencer\","
           "\"score\":41.5,\"counted\":41.5,\"engaged\":true,\"fit_grade\":\"B\","
           "\"stage\":\"warm\",\"last_activity\":1795590000000},{\"lead_id\":\"L-12\","
           "\"role\":\"user\",\"score\":0,\"counted\":0,\"engaged\":false,\"fit_grade\":\"D\","
           "\"stage\":\"suspect\",\"last_activity\":null}],\"model_id\":\"default\","
           "\"model_version\":\"2026-11-01.3\",\"qualification\":2,"
           "\"qualified_at\":1794996000002}");

    /* No member: empty arrays. */
    fix_account_fact(&f, LP_ACCOUNT_FACT_QUALIFIED, 0);
    assert_true(lp_json_encode_account_fact(&f, a, sizeof(a)) > 0);
    assert_non_null(strstr(a, "\"engaged_members\":0,\"members_total\":0,\"members_untracked\":0,"
                              "\"roles_covered\":[],\"roles_missing\":[],\"members\":[],"));

    /* The limits: escapes, every role, 50 members of 10000, null and present activity. */
    fix_account_fact(&f, LP_ACCOUNT_FACT_STALE, 1);
    copy = f;
    n = lp_json_encode_account_fact(&f, a, sizeof(a));
    assert_true(n > 0);
    assert_int_equal(lp_json_encode_account_fact(&copy, b, sizeof(b)), n);
    assert_memory_equal(a, b, n);
    assert_int_equal(strlen(a), n);
    assert_non_null(strstr(a, "\"reason\":\"committee_quiet\",\"score\":1234.5678901234567,"
                              "\"engaged_members\":37,\"members_total\":10000,"
                              "\"members_untracked\":123,\"roles_covered\":[\"user\",\"blocker\"],"
                              "\"roles_missing\":[\"no approver or decision_maker engaged yet\","
                              "\"no influencer engaged yet\",\"no approver, decision_maker, "
                              "influencer or recommender engaged yet\"],"));
    assert_non_null(strstr(a, "{\"lead_id\":\"\\\"q\\\"\\\\\\n\\u0001\xf0\x9f\x98\x80xxx"));
    assert_non_null(strstr(a, "\"stage\":\"closed_lost\",\"last_activity\":null}"));
    assert_non_null(strstr(a, "\"qualification\":2147483647,\"qualified_at\":"));
    {
        int members = 0;
        for (const char *p = a; (p = strstr(p, "{\"lead_id\":")) != NULL; p++) {
            members++;
        }
        assert_int_equal(members, 50);
    }
    for (size_t size = 0; size <= n; size++) {
        assert_int_equal(lp_json_encode_account_fact(&f, b, size), 0);
    }
    /* Non-finite doubles cannot be JSON: null, as for lead hand-offs. */
    f.score = NAN;
    assert_true(lp_json_encode_account_fact(&f, a, sizeof(a)) > 0);
    assert_non_null(strstr(a, "\"score\":null,"));
}

static void test_missing_sentences(void **state) {
    char buf[LP_ACCOUNT_MISSING_MAX];
    const unsigned all = (1u << LP_ROLE__COUNT) - 1;
    (void)state;

    assert_int_equal(lp_account_missing_sentence(1u << LP_ROLE_INFLUENCER, buf, sizeof(buf)), 25);
    assert_string_equal(buf, "no influencer engaged yet");
    lp_account_missing_sentence((1u << LP_ROLE_DECISION_MAKER) | (1u << LP_ROLE_APPROVER), buf,
                                sizeof(buf));
    assert_string_equal(buf, "no approver or decision_maker engaged yet");
    lp_account_missing_sentence((1u << LP_ROLE_DECISION_MAKER) | (1u << LP_ROLE_APPROVER) |
                                    (1u << LP_ROLE_INFLUENCER),
                                buf, sizeof(buf));
    assert_string_equal(buf, "no approver, decision_maker or influencer engaged yet");
    lp_account_missing_sentence((1u << LP_ROLE_USER) | (1u << LP_ROLE_BLOCKER), buf, sizeof(buf));
    assert_string_equal(buf, "no blocker or user engaged yet");
    assert_int_equal(lp_account_missing_sentence(all, buf, sizeof(buf)),
                     strlen("no approver, blocker, decision_maker, influencer, recommender or "
                            "user engaged yet"));
    assert_string_equal(
        buf, "no approver, blocker, decision_maker, influencer, recommender or user engaged yet");
    /* Bits beyond the roles are ignored; no role at all, or no room: 0 and "". */
    lp_account_missing_sentence((1u << LP_ROLE_USER) | (1u << 12), buf, sizeof(buf));
    assert_string_equal(buf, "no user engaged yet");
    assert_int_equal(lp_account_missing_sentence(0, buf, sizeof(buf)), 0);
    assert_int_equal(lp_account_missing_sentence(1u << 12, buf, sizeof(buf)), 0);
    assert_int_equal(lp_account_missing_sentence(1u << LP_ROLE_USER, buf, 19), 0);
    assert_string_equal(buf, "");
    assert_int_equal(lp_account_missing_sentence(1u << LP_ROLE_USER, buf, 20), 19);
    assert_int_equal(lp_account_missing_sentence(1u << LP_ROLE_USER, buf, 0), 0);

    assert_string_equal(lp_account_stale_reason_name(LP_ACCOUNT_STALE_SLA_BREACHED),
                        "account_sla_breached");
    assert_string_equal(lp_account_stale_reason_name(LP_ACCOUNT_STALE_COMMITTEE_QUIET),
                        "committee_quiet");
    assert_null(lp_account_stale_reason_name(LP_ACCOUNT_STALE__COUNT));
}

static void test_member_order(void **state) {
    lp_account_member_t m[6];
    static const char *const want[] = {"b", "a", "c", "e", "f", "d"};
    (void)state;

    memset(m, 0, sizeof(m));
    /* Engaged first, score descending, equal scores by lead_id; a negative score last. */
    snprintf(m[0].lead_id, sizeof(m[0].lead_id), "d");
    m[0].score = -1;
    snprintf(m[1].lead_id, sizeof(m[1].lead_id), "c");
    m[1].score = 12;
    m[1].engaged = true;
    snprintf(m[2].lead_id, sizeof(m[2].lead_id), "e");
    m[2].score = 9.5;
    snprintf(m[3].lead_id, sizeof(m[3].lead_id), "a");
    m[3].score = 30;
    m[3].engaged = true;
    snprintf(m[4].lead_id, sizeof(m[4].lead_id), "f");
    m[4].score = 9.5;
    snprintf(m[5].lead_id, sizeof(m[5].lead_id), "b");
    m[5].score = 30.5;
    m[5].engaged = true;
    lp_account_members_sort(m, 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(m[i].lead_id, want[i]);
        if (i > 0) {
            assert_true(lp_account_member_cmp(&m[i - 1], &m[i]) < 0);
            assert_true(lp_account_member_cmp(&m[i], &m[i - 1]) > 0);
        }
        assert_int_equal(lp_account_member_cmp(&m[i], &m[i]), 0);
    }
    lp_account_members_sort(m, 0);
    lp_account_members_sort(m, 1);
}

static void test_event_ids(void **state) {
    char a[LP_EVENT_ID_HEX + 1], b[LP_EVENT_ID_HEX + 1], lead[LP_EVENT_ID_HEX + 1];
    char key[LP_ACCOUNT_KEY_MAX + 1];
    const int64_t t = 1795600800000LL;
    (void)state;

    /* Pinned: the id of a hand-off must not change between releases (a re-send after an upgrade
     * carries the same id). */
    lp_account_event_id(a, "domain:acme.com", LP_ACCOUNT_FACT_QUALIFIED, LP_ACCOUNT_STALE__COUNT, 1,
                        t);
    assert_int_equal(strlen(a), LP_EVENT_ID_HEX);
    for (int i = 0; i < LP_EVENT_ID_HEX; i++) {
        assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    lp_account_event_id(b, "domain:acme.com", LP_ACCOUNT_FACT_QUALIFIED,
                        LP_ACCOUNT_STALE_COMMITTEE_QUIET, 1, t);
    assert_string_equal(a, b); /* the reason does not matter for a qualification */
    assert_string_equal(a, "7c2d89d8dc5fb1b0cae3fc10d2a058bb");
    /* Exactly the documented text, hashed as lead hand-off ids are. */
    {
        static const char text[] = "domain:acme.com\x1f"
                                   "account-qualified\x1f"
                                   "1\x1f"
                                   "1795600800000";
        lp_core_event_id_of(text, sizeof(text) - 1, b);
        assert_string_equal(a, b);
    }
    {
        static const char text[] = "id:ACME-7\x1f"
                                   "account-stale:committee_quiet\x1f"
                                   "3\x1f"
                                   "-5";
        lp_account_event_id(a, "id:ACME-7", LP_ACCOUNT_FACT_STALE, LP_ACCOUNT_STALE_COMMITTEE_QUIET,
                            3, -5);
        lp_core_event_id_of(text, sizeof(text) - 1, b);
        assert_string_equal(a, b);
    }
    lp_account_event_id(a, "domain:acme.com", LP_ACCOUNT_FACT_QUALIFIED, 0, 1, t);

    /* Every part matters. */
    static const struct {
        const char *account;
        lp_account_fact_kind_t kind;
        lp_account_stale_reason_t reason;
        uint32_t q;
        int64_t at;
    } other[] = {
        {"domain:acme.co", LP_ACCOUNT_FACT_QUALIFIED, 0, 1, t},
        {"id:acme.com", LP_ACCOUNT_FACT_QUALIFIED, 0, 1, t},
        {"domain:acme.com", LP_ACCOUNT_FACT_QUALIFIED, 0, 2, t},
        {"domain:acme.com", LP_ACCOUNT_FACT_QUALIFIED, 0, 1, t + 1},
        {"domain:acme.com", LP_ACCOUNT_FACT_STALE, LP_ACCOUNT_STALE_SLA_BREACHED, 1, t},
        {"domain:acme.com", LP_ACCOUNT_FACT_STALE, LP_ACCOUNT_STALE_COMMITTEE_QUIET, 1, t},
    };
    char seen[8][LP_EVENT_ID_HEX + 1];
    memcpy(seen[0], a, sizeof(a));
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        lp_account_event_id(seen[i + 1], other[i].account, other[i].kind, other[i].reason,
                            other[i].q, other[i].at);
        for (size_t j = 0; j <= i; j++) {
            assert_string_not_equal(seen[i + 1], seen[j]);
        }
    }
    /* Not the id of a lead hand-off whose lead id is the account key. */
    lp_event_id_derive(lead, "domain:acme.com", "account-qualified", 1, 0);
    assert_string_not_equal(lead, a);

    /* The longest keys are hashed whole, the numbers at their largest too. */
    fix_fill(key, LP_ACCOUNT_KEY_MAX, 'k');
    memcpy(key, "domain:", 7);
    lp_account_event_id(a, key, LP_ACCOUNT_FACT_STALE, LP_ACCOUNT_STALE_SLA_BREACHED, 2147483647u,
                        INT64_MIN);
    lp_account_event_id(b, key, LP_ACCOUNT_FACT_STALE, LP_ACCOUNT_STALE_SLA_BREACHED, 2147483647u,
                        INT64_MIN + 1);
    assert_string_not_equal(a, b);
    lp_account_event_id(b, key, LP_ACCOUNT_FACT_STALE, LP_ACCOUNT_STALE_SLA_BREACHED, 2147483646u,
                        INT64_MIN);
    assert_string_not_equal(a, b);
}

/* ---- every schema file parses with avro-c and documents every named type and field ---- */

typedef struct {
    const char *p, *end;
    const char *file;
    char problems[4096];
    int nproblems;
} jp_t;

static void jp_ws(jp_t *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')) {
        j->p++;
    }
}

static bool jp_eat(jp_t *j, char c) {
    jp_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

/* A string into out (escapes kept as written; the test only needs names and lengths). */
static void jp_string(jp_t *j, char *out, size_t size) {
    size_t n = 0;
    jp_ws(j);
    assert_true(j->p < j->end && *j->p == '"');
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        if (*j->p == '\\') {
            if (n + 1 < size) {
                out[n++] = *j->p;
            }
            j->p++;
        }
        if (n + 1 < size) {
            out[n++] = *j->p;
        }
        j->p++;
    }
    assert_true(j->p < j->end);
    j->p++;
    out[n] = '\0';
}

static void jp_problem(jp_t *j, const char *what, const char *name) {
    size_t len = strlen(j->problems);
    snprintf(j->problems + len, sizeof(j->problems) - len, "\n  %s: %s %s has no doc", j->file,
             what, name);
    j->nproblems++;
}

static void jp_skip(jp_t *j);

static void jp_skip(jp_t *j) {
    char tmp[8];
    jp_ws(j);
    if (j->p >= j->end) {
        fail_msg("%s: unexpected end", j->file);
    }
    if (*j->p == '"') {
        jp_string(j, tmp, sizeof(tmp));
    } else if (jp_eat(j, '{')) {
        if (!jp_eat(j, '}')) {
            do {
                jp_string(j, tmp, sizeof(tmp));
                assert_true(jp_eat(j, ':'));
                jp_skip(j);
            } while (jp_eat(j, ','));
            assert_true(jp_eat(j, '}'));
        }
    } else if (jp_eat(j, '[')) {
        if (!jp_eat(j, ']')) {
            do {
                jp_skip(j);
            } while (jp_eat(j, ','));
            assert_true(jp_eat(j, ']'));
        }
    } else {
        while (j->p < j->end && strchr(",}] \n\t\r", *j->p) == NULL) {
            j->p++;
        }
    }
}

static void jp_type(jp_t *j, const char *where);

/* A schema object (a type, or with is_field a record's field): its doc is required when it is
 * a field or a named type (record, enum, fixed). */
static void jp_object(jp_t *j, bool is_field, const char *where) {
    char key[64], name[128] = "", type[64] = "", doc[4096] = "";
    bool has_doc = false;

    if (jp_eat(j, '}')) {
        return;
    }
    do {
        jp_string(j, key, sizeof(key));
        assert_true(jp_eat(j, ':'));
        jp_ws(j);
        if (strcmp(key, "name") == 0) {
            jp_string(j, name, sizeof(name));
        } else if (strcmp(key, "doc") == 0) {
            jp_string(j, doc, sizeof(doc));
            has_doc = doc[0] != '\0';
        } else if (strcmp(key, "type") == 0) {
            if (*j->p == '"') {
                jp_string(j, type, sizeof(type));
            } else {
                jp_type(j, name[0] ? name : where);
            }
        } else if (strcmp(key, "fields") == 0) {
            assert_true(jp_eat(j, '['));
            if (!jp_eat(j, ']')) {
                do {
                    assert_true(jp_eat(j, '{'));
                    jp_object(j, true, name);
                } while (jp_eat(j, ','));
                assert_true(jp_eat(j, ']'));
            }
        } else if (strcmp(key, "items") == 0 || strcmp(key, "values") == 0) {
            jp_type(j, where);
        } else {
            jp_skip(j);
        }
    } while (jp_eat(j, ','));
    assert_true(jp_eat(j, '}'));
    if (is_field && !has_doc) {
        char field[300];
        snprintf(field, sizeof(field), "%s.%s", where, name);
        jp_problem(j, "field", field);
    } else if (!is_field && !has_doc &&
               (strcmp(type, "record") == 0 || strcmp(type, "enum") == 0 ||
                strcmp(type, "fixed") == 0)) {
        jp_problem(j, type, name);
    }
}

static void jp_type(jp_t *j, const char *where) {
    char tmp[128];
    jp_ws(j);
    if (j->p < j->end && *j->p == '"') {
        jp_string(j, tmp, sizeof(tmp));
    } else if (jp_eat(j, '[')) {
        if (!jp_eat(j, ']')) {
            do {
                jp_type(j, where);
            } while (jp_eat(j, ','));
            assert_true(jp_eat(j, ']'));
        }
    } else {
        assert_true(jp_eat(j, '{'));
        jp_object(j, false, where);
    }
}

/* `leadpulse inspect --account`'s JSON: the account's score at T (the plain sum: capped members
 * plus role points), engaged members, roles covered, every member with its score at T, times as
 * integer ms or null; 0 when it does not fit. */
static void test_account_state_json(void **state) {
    (void)state;
    lp_rules_t rules;
    memset(&rules, 0, sizeof(rules));
    rules.half_life_ms = 86400000.0;
    rules.accounts.enabled = true;
    rules.accounts.member_cap = 60;
    rules.accounts.engaged_score = 10;
    rules.accounts.role_points[LP_ROLE_APPROVER] = 15;
    rules.accounts.mqa_score = 1000;
    rules.accounts.mqa_engaged_members = 1;
    rules.accounts.mqa_rearm = 500;
    rules.accounts.max_members = 10;
    lp_account_state_t a;
    lp_account_init(&a);
    static const struct {
        const char *id;
        double e;
        lp_role_t role;
    } ms[] = {{"b\"q", 80, LP_ROLE_APPROVER}, {"a-1", 5, LP_ROLE_USER}};
    for (int i = 0; i < 2; i++) {
        lp_member_record_t r;
        memset(&r, 0, sizeof(r));
        snprintf(r.account, sizeof(r.account), "domain:acme.com");
        snprintf(r.lead_id, sizeof(r.lead_id), "%s", ms[i].id);
        r.seq = 1;
        r.e = ms[i].e;
        r.ref_ms = r.event_ms = r.last_activity_ms = 1700000000000LL;
        r.role = ms[i].role;
        r.fit_grade = 'B';
        r.stage = LP_STAGE_WARM;
        lp_account_fact_t facts[LP_ACCOUNT_APPLY_FACTS];
        size_t n;
        assert_int_equal(lp_account_apply(&a, &rules, &r, facts, LP_ACCOUNT_APPLY_FACTS, &n),
                         LP_OK);
    }
    char buf[4096];
    size_t n = lp_json_encode_account_state(&a, &rules, buf, sizeof(buf));
    assert_true(n > 0 && n == strlen(buf));
    static const char want[] =
        "{\"account\":\"domain:acme.com\",\"t\":1700000000000,\"score\":80,"
        "\"engaged_members\":1,\"roles_covered\":[\"approver\"],\"armed\":true,"
        "\"qualification\":0,\"qualified_at\":null,\"accepted\":false,\"rejected\":false,"
        "\"sla_deadline\":null,\"quiet_deadline\":null,\"members_total\":2,"
        "\"members_untracked\":0,\"members\":[{\"lead_id\":\"a-1\",\"seq\":1,\"role\":\"user\","
        "\"score\":5,\"engaged\":false,\"fit_grade\":\"B\",\"stage\":\"warm\","
        "\"ref\":1700000000000,\"last_activity\":1700000000000,\"accepted\":null,"
        "\"rejected\":null},{\"lead_id\":\"b\\\"q\",\"seq\":1,\"role\":\"approver\","
        "\"score\":80,\"engaged\":true,\"fit_grade\":\"B\",\"stage\":\"warm\","
        "\"ref\":1700000000000,\"last_activity\":1700000000000,\"accepted\":null,"
        "\"rejected\":null}]}";
    assert_string_equal(buf, want);
    for (size_t size = 0; size <= n; size++) {
        assert_int_equal(lp_json_encode_account_state(&a, &rules, buf, size), 0);
    }
    lp_account_free(&a);
}

static void test_schema_docs(void **state) {
    DIR *dir = opendir(LP_SCHEMA_DIR);
    struct dirent *de;
    int nfiles = 0;
    bool account_qualified = false, account_stale = false;
    char all_problems[8192] = "";
    (void)state;

    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[1024];
        size_t text_len;
        char *text;
        avro_schema_t schema = NULL;
        jp_t j = {0};

        if (len < 6 || strcmp(de->d_name + len - 5, ".avsc") != 0) {
            continue;
        }
        nfiles++;
        account_qualified |= strcmp(de->d_name, "AccountQualified.avsc") == 0;
        account_stale |= strcmp(de->d_name, "AccountStale.avsc") == 0;
        snprintf(path, sizeof(path), "%s/%s", LP_SCHEMA_DIR, de->d_name);
        text = slurp(path, &text_len);
        if (avro_schema_from_json_length(text, text_len, &schema) != 0) {
            fail_msg("avro-c rejects %s: %s", path, avro_strerror());
        }
        assert_int_equal(avro_typeof(schema), AVRO_RECORD);
        assert_string_equal(avro_schema_namespace(schema), "io.leadpulse");
        avro_schema_decref(schema);
        j.p = text;
        j.end = text + text_len;
        j.file = de->d_name;
        jp_type(&j, "");
        jp_ws(&j);
        assert_true(j.p == j.end);
        if (j.nproblems > 0) {
            size_t l = strlen(all_problems);
            snprintf(all_problems + l, sizeof(all_problems) - l, "%s", j.problems);
        }
        free(text);
    }
    closedir(dir);
    assert_true(nfiles >= 8);
    assert_true(account_qualified && account_stale);
    if (all_problems[0] != '\0') {
        fail_msg("schema docs missing:%s", all_problems);
    }
}

/* The checker finds what it is for: a field and a named type without doc. */
static void test_schema_docs_checker(void **state) {
    const char *text = "{\"type\":\"record\",\"name\":\"R\",\"doc\":\"r\",\"fields\":["
                       "{\"name\":\"a\",\"type\":\"string\",\"doc\":\"\"},"
                       "{\"name\":\"b\",\"doc\":\"b\",\"type\":{\"type\":\"array\",\"items\":"
                       "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}}},"
                       "{\"name\":\"c\",\"doc\":\"c\",\"type\":[\"null\",{\"type\":\"record\","
                       "\"name\":\"S\",\"doc\":\"s\",\"fields\":[{\"name\":\"d\",\"type\":"
                       "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}}]}]}]}";
    jp_t j = {.p = text, .end = text + strlen(text), .file = "t.avsc"};
    (void)state;

    jp_type(&j, "");
    assert_int_equal(j.nproblems, 3);
    assert_string_equal(j.problems, "\n  t.avsc: field R.a has no doc\n  t.avsc: enum E has no "
                                    "doc\n  t.avsc: field S.d has no doc");
}

/* ---- schema folders with and without the account schemas ---- */

static void copy_schemas(const char *dir, int kinds) {
    for (int k = 0; k < kinds; k++) {
        char src[1024], dst[1024];
        size_t len;
        char *text;
        static const char *const names[LP_SCHEMA__ALL] = {
            "EngagementEvent", "LeadProfileUpdated", "SalesFeedback",    "LeadQualified",
            "LeadStale",       "LeadErased",         "AccountQualified", "AccountStale"};
        snprintf(src, sizeof(src), "%s/%s.avsc", LP_SCHEMA_DIR, names[k]);
        text = slurp(src, &len);
        snprintf(dst, sizeof(dst), "%s/%s", dir, strrchr(src, '/') + 1);
        write_text(dst, text);
        free(text);
    }
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[1024];
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            unlink(path);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(dir);
}

static void test_schema_folder(void **state) {
    char dir[] = "/tmp/lp_account_schemas_XXXXXX";
    char path[1024], err[LP_ERRSTR];
    uint8_t buf[LP_AVRO_ACCOUNT_FACT_MAX];
    lp_account_fact_t f;
    lp_avro_codec_t *c;
    size_t len;
    char *text;
    (void)state;

    assert_non_null(mkdtemp(dir));
    /* A folder of an older release (the six lead schemas): loads, without account hand-offs. */
    copy_schemas(dir, LP_SCHEMA__COUNT);
    c = lp_avro_codec_new(dir, NULL, err, sizeof(err));
    assert_non_null(c);
    assert_null(lp_avro_codec_canonical(c, LP_SCHEMA_ACCOUNT_QUALIFIED));
    assert_int_equal(lp_avro_codec_fingerprint(c, LP_SCHEMA_ACCOUNT_STALE), 0);
    fix_account_fact(&f, LP_ACCOUNT_FACT_QUALIFIED, 2);
    assert_int_equal(lp_avro_encode_account_fact(c, &f, LP_FRAMING_RAW, buf, sizeof(buf)), 0);
    assert_string_equal(lp_avro_codec_errstr(c), "AccountQualified.avsc was not in the schema "
                                                 "folder: account hand-offs cannot be encoded");
    lp_avro_codec_destroy(c);

    /* All eight: the account schemas as the codec implements them. */
    copy_schemas(dir, LP_SCHEMA__ALL);
    c = lp_avro_codec_new(dir, NULL, err, sizeof(err));
    assert_non_null(c);
    assert_non_null(lp_avro_codec_canonical(c, LP_SCHEMA_ACCOUNT_QUALIFIED));
    assert_true(lp_avro_codec_fingerprint(c, LP_SCHEMA_ACCOUNT_STALE) == 0xb1d25448beda2a78ULL);
    assert_true(lp_avro_encode_account_fact(c, &f, LP_FRAMING_RAW, buf, sizeof(buf)) > 0);
    lp_avro_codec_destroy(c);

    /* Present but changed (a new role): refused like any schema, the file named. */
    snprintf(path, sizeof(path), "%s/AccountStale.avsc", dir);
    text = slurp(path, &len);
    {
        char *at = strstr(text, "\"blocker\"");
        char *changed = calloc(1, len + 64);
        assert_non_null(at);
        memcpy(changed, text, (size_t)(at - text));
        strcat(changed, "\"blocker\", \"champion\"");
        strcat(changed, at + strlen("\"blocker\""));
        write_text(path, changed);
        free(changed);
    }
    free(text);
    assert_null(lp_avro_codec_new(dir, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "AccountStale.avsc: fields, types or symbols differ"));
    write_text(path, "{not json");
    assert_null(lp_avro_codec_new(dir, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "AccountStale.avsc: not a valid Avro schema"));
    write_text(path, "{\"type\":\"record\",\"name\":\"LeadStale\",\"fields\":[]}");
    assert_null(lp_avro_codec_new(dir, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "expected a record named AccountStale"));
    remove_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avro_interop),  cmocka_unit_test(test_framing_and_ids),
        cmocka_unit_test(test_refusals),      cmocka_unit_test(test_max_sizes),
        cmocka_unit_test(test_json),          cmocka_unit_test(test_missing_sentences),
        cmocka_unit_test(test_member_order),  cmocka_unit_test(test_event_ids),
        cmocka_unit_test(test_schema_docs),   cmocka_unit_test(test_schema_docs_checker),
        cmocka_unit_test(test_schema_folder), cmocka_unit_test(test_account_state_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
