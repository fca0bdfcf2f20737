/* Interoperability with a standard Avro library: avro-c's generic reader and writer, built from
 * the schema files, against our hand-written codec; and the container file reader. */
#include <avro.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec_fixture.h"

static lp_avro_codec_t *codec;
static const char *names[] = {"EngagementEvent", "LeadProfileUpdated", "SalesFeedback",
                              "LeadQualified",   "LeadStale",          "LeadErased"};

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

static char *schema_text(int kind) {
    char path[1024];
    FILE *fp;
    char *buf = calloc(1, 65536);

    snprintf(path, sizeof(path), "%s/%s.avsc", LP_SCHEMA_DIR, names[kind]);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_true(fread(buf, 1, 65535, fp) > 0);
    fclose(fp);
    return buf;
}

static avro_schema_t load_schema(int kind) {
    char *text = schema_text(kind);
    avro_schema_t schema = NULL;

    if (avro_schema_from_json_length(text, strlen(text), &schema) != 0) {
        fail_msg("avro-c rejects %s: %s", names[kind], avro_strerror());
    }
    free(text);
    return schema;
}

/* One schema field and the value our struct holds for it. Types: S string, O optional string
 * ("" = null), L long, N optional count (-1 = null), T optional time (0 = null), B boolean,
 * E enum index, X optional enum (0 = null), D double, I int, R reasons array. */
typedef struct {
    const char *name;
    char type;
    const char *s;
    int64_t i;
    double d;
    const lp_fact_t *fact;
} fv_t;

#define FV_S(n, t, v)                                                                              \
    (fv_t) {                                                                                       \
        .name = (n), .type = (t), .s = (v)                                                         \
    }
#define FV_I(n, t, v)                                                                              \
    (fv_t) {                                                                                       \
        .name = (n), .type = (t), .i = (v)                                                         \
    }
#define FV_D(n, v)                                                                                 \
    (fv_t) {                                                                                       \
        .name = (n), .type = 'D', .d = (v)                                                         \
    }

static int event_fields(const lp_event_t *ev, fv_t *fv) {
    int n = 0;

    fv[n++] = FV_S("event_id", 'S', ev->event_id);
    fv[n++] = FV_S("lead_id", 'S', ev->lead_id);
    fv[n++] = FV_I("ts", 'L', ev->ts_ms);
    if (ev->kind == LP_EV_ENGAGEMENT) {
        const lp_engagement_t *e = &ev->u.engagement;
        fv[n++] = FV_S("type", 'S', e->type);
        fv[n++] = FV_S("url", 'O', e->url);
        fv[n++] = FV_S("asset_id", 'O', e->asset_id);
        fv[n++] = FV_S("campaign_id", 'O', e->campaign_id);
        fv[n++] = FV_I("machine", 'B', e->machine);
        fv[n++] = FV_I("seconds_since_send", 'N', e->seconds_since_send);
    } else if (ev->kind == LP_EV_PROFILE) {
        const lp_profile_update_t *p = &ev->u.profile;
        fv[n++] = FV_S("email", 'O', p->email);
        fv[n++] = FV_S("title", 'O', p->title);
        fv[n++] = FV_S("seniority", 'O', p->seniority);
        fv[n++] = FV_S("industry", 'O', p->industry);
        fv[n++] = FV_S("company", 'O', p->company);
        fv[n++] = FV_I("company_size", 'N', p->company_size);
        fv[n++] = FV_S("country", 'O', p->country);
        fv[n++] = FV_S("region", 'O', p->region);
        fv[n++] = FV_S("persona", 'O', p->persona);
        fv[n++] = FV_S("segment", 'O', p->segment);
        fv[n++] = FV_S("owner", 'O', p->owner);
        fv[n++] = FV_S("account_id", 'O', p->account_id);
    } else {
        fv[n++] = FV_I("outcome", 'E', ev->u.feedback.outcome);
        fv[n++] = FV_I("reason", 'E', ev->u.feedback.reason);
        fv[n++] = FV_S("owner", 'O', ev->u.feedback.owner);
    }
    return n;
}

static int fact_fields(const lp_fact_t *f, fv_t *fv) {
    int n = 0;
    const lp_profile_update_t *p = &f->profile;

    fv[n++] = FV_S("event_id", 'S', f->event_id);
    fv[n++] = FV_S("lead_id", 'S', f->lead_id);
    fv[n++] = FV_I("ts", 'L', f->ts_ms);
    if (f->kind == LP_FACT_ERASED) {
        fv[n++] = FV_I("had_state", 'B', f->had_state);
        fv[n++] = FV_I("suppressed_until", 'T', f->suppressed_until_ms);
        return n;
    }
    if (f->kind == LP_FACT_STALE) {
        fv[n++] = FV_I("reason", 'E', f->stale_reason);
        fv[n++] = FV_I("reminder", 'I', f->reminder);
    }
    fv[n++] = FV_D("score", f->score);
    fv[n++] = FV_I("fit_grade", 'E', f->fit_grade - 'A');
    fv[n++] = FV_I("stage", 'E', f->stage);
    fv[n++] = (fv_t){.name = "reasons", .type = 'R', .fact = f};
    fv[n++] = FV_D("other_points", f->other);
    fv[n++] = FV_S("model_id", 'S', f->model_id);
    fv[n++] = FV_S("model_version", 'S', f->model_version);
    fv[n++] = FV_I("qualification", 'I', f->mql_seq);
    if (f->kind == LP_FACT_STALE) {
        fv[n++] = FV_I("qualified_at", 'T', f->mql_at_ms);
        fv[n++] = FV_I("sla_deadline", 'T', f->sla_deadline_ms);
    } else {
        fv[n++] = FV_I("sla_deadline", 'T', f->sla_deadline_ms);
        fv[n++] = FV_I("last_reject_reason", 'X', f->last_reject_reason);
    }
    fv[n++] = FV_S("email", 'O', p->email);
    fv[n++] = FV_S("company", 'O', p->company);
    fv[n++] = FV_S("region", 'O', p->region);
    fv[n++] = FV_S("country", 'O', p->country);
    fv[n++] = FV_S("segment", 'O', p->segment);
    fv[n++] = FV_S("persona", 'O', p->persona);
    fv[n++] = FV_S("title", 'O', p->title);
    fv[n++] = FV_S("owner", 'O', p->owner);
    return n;
}

static bool is_null(const fv_t *f) {
    return (f->type == 'O' && f->s[0] == '\0') || (f->type == 'N' && f->i < 0) ||
           ((f->type == 'T' || f->type == 'X') && f->i == 0);
}

/* Sets a record from the field list with avro-c's generic API. */
static void set_all(avro_value_t *rec, const fv_t *fv, int n) {
    size_t size;

    assert_int_equal(avro_value_get_size(rec, &size), 0);
    assert_int_equal(size, (size_t)n); /* every schema field is covered */
    for (int i = 0; i < n; i++) {
        avro_value_t child, v;
        if (avro_value_get_by_name(rec, fv[i].name, &child, NULL) != 0) {
            fail_msg("no field %s", fv[i].name);
        }
        v = child;
        if (avro_value_get_type(&child) == AVRO_UNION) {
            assert_int_equal(avro_value_set_branch(&child, is_null(&fv[i]) ? 0 : 1, &v), 0);
            if (is_null(&fv[i])) {
                assert_int_equal(avro_value_set_null(&v), 0);
                continue;
            }
        }
        switch (fv[i].type) {
        case 'S':
        case 'O':
            assert_int_equal(avro_value_set_string(&v, fv[i].s), 0);
            break;
        case 'L':
        case 'N':
        case 'T':
            assert_int_equal(avro_value_set_long(&v, fv[i].i), 0);
            break;
        case 'I':
            assert_int_equal(avro_value_set_int(&v, (int32_t)fv[i].i), 0);
            break;
        case 'B':
            assert_int_equal(avro_value_set_boolean(&v, (int)fv[i].i), 0);
            break;
        case 'E':
        case 'X':
            assert_int_equal(avro_value_set_enum(&v, (int)fv[i].i), 0);
            break;
        case 'D':
            assert_int_equal(avro_value_set_double(&v, fv[i].d), 0);
            break;
        case 'R':
            for (int k = 0; k < fv[i].fact->ntop; k++) {
                avro_value_t item, field;
                assert_int_equal(avro_value_append(&v, &item, NULL), 0);
                assert_int_equal(avro_value_get_by_name(&item, "activity", &field, NULL), 0);
                assert_int_equal(avro_value_set_string(&field, fv[i].fact->top[k].activity), 0);
                assert_int_equal(avro_value_get_by_name(&item, "points", &field, NULL), 0);
                assert_int_equal(avro_value_set_double(&field, fv[i].fact->top[k].points), 0);
            }
            break;
        }
    }
}

/* Checks a record read by avro-c against the field list. */
static void check_all(avro_value_t *rec, const fv_t *fv, int n) {
    size_t size;

    assert_int_equal(avro_value_get_size(rec, &size), 0);
    assert_int_equal(size, (size_t)n);
    for (int i = 0; i < n; i++) {
        avro_value_t child, v;
        const char *s;
        int64_t l;
        int32_t i32;
        int b, e;
        double d;
        assert_int_equal(avro_value_get_by_name(rec, fv[i].name, &child, NULL), 0);
        v = child;
        if (avro_value_get_type(&child) == AVRO_UNION) {
            int disc;
            assert_int_equal(avro_value_get_discriminant(&child, &disc), 0);
            assert_int_equal(disc, is_null(&fv[i]) ? 0 : 1);
            assert_int_equal(avro_value_get_current_branch(&child, &v), 0);
            if (is_null(&fv[i])) {
                continue;
            }
        }
        switch (fv[i].type) {
        case 'S':
        case 'O':
            assert_int_equal(avro_value_get_string(&v, &s, &size), 0);
            assert_string_equal(s, fv[i].s);
            break;
        case 'L':
        case 'N':
        case 'T':
            assert_int_equal(avro_value_get_long(&v, &l), 0);
            assert_true(l == fv[i].i);
            break;
        case 'I':
            assert_int_equal(avro_value_get_int(&v, &i32), 0);
            assert_true(i32 == fv[i].i);
            break;
        case 'B':
            assert_int_equal(avro_value_get_boolean(&v, &b), 0);
            assert_int_equal(b != 0, fv[i].i != 0);
            break;
        case 'E':
        case 'X':
            assert_int_equal(avro_value_get_enum(&v, &e), 0);
            assert_int_equal(e, fv[i].i);
            break;
        case 'D':
            assert_int_equal(avro_value_get_double(&v, &d), 0);
            assert_memory_equal(&d, &fv[i].d, sizeof(d));
            break;
        case 'R':
            assert_int_equal(avro_value_get_size(&v, &size), 0);
            assert_int_equal(size, (size_t)fv[i].fact->ntop);
            for (int k = 0; k < fv[i].fact->ntop; k++) {
                avro_value_t item, field;
                assert_int_equal(avro_value_get_by_index(&v, (size_t)k, &item, NULL), 0);
                assert_int_equal(avro_value_get_by_name(&item, "activity", &field, NULL), 0);
                assert_int_equal(avro_value_get_string(&field, &s, &size), 0);
                assert_string_equal(s, fv[i].fact->top[k].activity);
                assert_int_equal(avro_value_get_by_name(&item, "points", &field, NULL), 0);
                assert_int_equal(avro_value_get_double(&field, &d), 0);
                assert_memory_equal(&d, &fv[i].fact->top[k].points, sizeof(d));
            }
            break;
        }
    }
}

/* Both directions for one record: avro-c reads our bytes (all of them, every field as expected);
 * avro-c writes the same values, byte for byte what we write, and we decode its bytes. */
static void interop(int kind, const fv_t *fv, int n, const uint8_t *ours, size_t ours_len,
                    uint8_t *theirs, size_t theirs_size, size_t *theirs_len) {
    avro_schema_t schema = load_schema(kind);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t value;
    avro_reader_t reader;
    avro_writer_t writer;

    assert_non_null(iface);
    assert_int_equal(avro_generic_value_new(iface, &value), 0);
    reader = avro_reader_memory((const char *)ours, (int64_t)ours_len);
    if (avro_value_read(reader, &value) != 0) {
        fail_msg("avro-c cannot read our %s: %s", names[kind], avro_strerror());
    }
    check_all(&value, fv, n);
    /* Nothing is left over: a second read finds no record. */
    avro_value_reset(&value);
    assert_int_not_equal(avro_value_read(reader, &value), 0);
    avro_reader_free(reader);

    avro_value_reset(&value);
    set_all(&value, fv, n);
    writer = avro_writer_memory((const char *)theirs, (int64_t)theirs_size);
    assert_int_equal(avro_value_write(writer, &value), 0);
    *theirs_len = (size_t)avro_writer_tell(writer);
    avro_writer_free(writer);
    assert_int_equal(*theirs_len, ours_len);
    assert_memory_equal(theirs, ours, ours_len);

    avro_value_decref(&value);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

static void test_events_interop(void **state) {
    uint8_t ours[2048], theirs[2048];
    char err[LP_ERRSTR];
    fv_t fv[32];
    (void)state;

    for (int kind = 0; kind < 3; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            lp_event_t ev, out;
            size_t n, theirs_len;
            fix_event(&ev, (lp_event_kind_t)kind, variant);
            n = lp_avro_encode_event(codec, &ev, LP_FRAMING_RAW, ours, sizeof(ours));
            assert_true(n > 0);
            interop(kind, fv, event_fields(&ev, fv), ours, n, theirs, sizeof(theirs), &theirs_len);
            assert_int_equal(
                lp_avro_decode_event(codec, theirs, theirs_len, kind, &out, err, sizeof(err)),
                LP_OK);
            assert_true(fix_event_equal(&ev, &out));
        }
    }
}

static void test_facts_interop(void **state) {
    uint8_t ours[4096], theirs[4096];
    char err[LP_ERRSTR];
    fv_t fv[32];
    (void)state;

    for (int kind = LP_FACT_QUALIFIED; kind <= LP_FACT_ERASED; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            lp_fact_t fact, out;
            size_t n, theirs_len;
            int schema = LP_SCHEMA_QUALIFIED + kind;
            fix_fact(&fact, (lp_fact_kind_t)kind, variant);
            n = lp_avro_encode_fact(codec, &fact, LP_FRAMING_RAW, ours, sizeof(ours));
            assert_true(n > 0);
            interop(schema, fv, fact_fields(&fact, fv), ours, n, theirs, sizeof(theirs),
                    &theirs_len);
            assert_int_equal(
                lp_avro_decode_fact_as(codec, theirs, theirs_len, schema, &out, err, sizeof(err)),
                LP_OK);
            assert_true(fix_fact_equal(&fact, &out));
        }
    }
}

/* ---- container files ---- */

static void append_event(avro_file_writer_t writer, avro_value_t *top, const lp_event_t *ev,
                         bool is_union) {
    fv_t fv[32];
    avro_value_t rec = *top;

    avro_value_reset(top);
    if (is_union) {
        assert_int_equal(avro_value_set_branch(top, (int)ev->kind, &rec), 0);
    }
    set_all(&rec, fv, event_fields(ev, fv));
    assert_int_equal(avro_file_writer_append_value(writer, top), 0);
}

static void write_container(const char *path, avro_schema_t schema, const lp_event_t *evs, int n,
                            bool is_union) {
    avro_file_writer_t writer;
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t value;

    unlink(path);
    assert_int_equal(avro_file_writer_create(path, schema, &writer), 0);
    assert_int_equal(avro_generic_value_new(iface, &value), 0);
    for (int i = 0; i < n; i++) {
        append_event(writer, &value, &evs[i], is_union);
    }
    assert_int_equal(avro_file_writer_close(writer), 0);
    avro_value_decref(&value);
    avro_value_iface_decref(iface);
}

static void test_container_single_schema(void **state) {
    char path[] = "/tmp/lp_codec_file_XXXXXX";
    avro_schema_t schema = load_schema(LP_SCHEMA_ENGAGEMENT);
    lp_event_t evs[3], out;
    char err[LP_ERRSTR];
    lp_avro_file_t *file;
    int fd = mkstemp(path);
    (void)state;

    assert_true(fd >= 0);
    close(fd);
    fix_event(&evs[0], LP_EV_ENGAGEMENT, 0);
    fix_event(&evs[1], LP_EV_ENGAGEMENT, 1);
    evs[1].lead_id[0] = '\0'; /* a bad record in the middle */
    fix_event(&evs[2], LP_EV_ENGAGEMENT, 1);
    write_container(path, schema, evs, 3, false);

    file = lp_avro_file_open(path, err, sizeof(err));
    assert_non_null(file);
    assert_int_equal(lp_avro_file_next(file, &out, err, sizeof(err)), 1);
    assert_true(fix_event_equal(&evs[0], &out));
    assert_int_equal(lp_avro_file_next(file, &out, err, sizeof(err)), LP_ERR);
    assert_string_equal(err, "record 2: lead_id is empty");
    assert_int_equal(lp_avro_file_next(file, &out, err, sizeof(err)), 1);
    assert_true(fix_event_equal(&evs[2], &out));
    assert_int_equal(lp_avro_file_next(file, &out, err, sizeof(err)), 0);
    lp_avro_file_close(file);
    lp_avro_file_close(NULL);
    avro_schema_decref(schema);
    unlink(path);
}

static void test_container_union_and_errors(void **state) {
    char path[] = "/tmp/lp_codec_file_XXXXXX";
    char *texts[3];
    char *json = calloc(1, 200000);
    avro_schema_t schema = NULL;
    lp_event_t evs[4], out;
    char err[LP_ERRSTR];
    lp_avro_file_t *file;
    int fd = mkstemp(path);
    (void)state;

    assert_true(fd >= 0);
    close(fd);
    for (int k = 0; k < 3; k++) {
        texts[k] = schema_text(k);
    }
    snprintf(json, 200000, "[%s,%s,%s]", texts[0], texts[1], texts[2]);
    if (avro_schema_from_json_length(json, strlen(json), &schema) != 0) {
        fail_msg("union schema: %s", avro_strerror());
    }
    fix_event(&evs[0], LP_EV_PROFILE, 1);
    fix_event(&evs[1], LP_EV_ENGAGEMENT, 1);
    fix_event(&evs[2], LP_EV_FEEDBACK, 1);
    fix_event(&evs[3], LP_EV_PROFILE, 0);
    write_container(path, schema, evs, 4, true);
    avro_schema_decref(schema);

    file = lp_avro_file_open(path, err, sizeof(err));
    assert_non_null(file);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lp_avro_file_next(file, &out, err, sizeof(err)), 1);
        assert_true(fix_event_equal(&evs[i], &out));
    }
    assert_int_equal(lp_avro_file_next(file, &out, err, sizeof(err)), 0);
    lp_avro_file_close(file);

    /* Output records are not replay input. */
    schema = load_schema(LP_SCHEMA_QUALIFIED);
    {
        avro_file_writer_t writer;
        unlink(path);
        assert_int_equal(avro_file_writer_create(path, schema, &writer), 0);
        assert_int_equal(avro_file_writer_close(writer), 0);
    }
    avro_schema_decref(schema);
    assert_null(lp_avro_file_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "writer schema is not EngagementEvent"));

    /* Not a container file at all. */
    {
        FILE *fp = fopen(path, "w");
        fputs("{\"kind\":\"engagement\"}\n", fp);
        fclose(fp);
    }
    assert_null(lp_avro_file_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "not a readable Avro container file"));
    unlink(path);
    for (int k = 0; k < 3; k++) {
        free(texts[k]);
    }
    free(json);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_interop),
        cmocka_unit_test(test_facts_interop),
        cmocka_unit_test(test_container_single_schema),
        cmocka_unit_test(test_container_union_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
