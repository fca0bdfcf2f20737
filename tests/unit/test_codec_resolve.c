/* Avro schema resolution of input records written with other schemas: every rule with a passing
 * and a failing case, learnt ids and the fetch function, malformed schemas, resolution of any
 * types through the internal API, a property test over random schema evolutions (the seed is
 * printed; LP_SEED=<n> replays one) and the decode cost of the resolving path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/avro_resolve.h"
#include "codec_fixture.h"

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

/* ---- helpers ---- */

/* Schema JSON written with single quotes (no name or symbol holds one). */
static const char *J(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *J(const char *fmt, ...) {
    static char ring[64][16384]; /* the malformed-schema table holds many at once */
    static int next;
    char *out = ring[next++ % 64];
    va_list ap;

    va_start(ap, fmt);
    assert_true(vsnprintf(out, sizeof(ring[0]), fmt, ap) < (int)sizeof(ring[0]));
    va_end(ap);
    for (char *p = out; *p != '\0'; p++) {
        *p = *p == '\'' ? '"' : *p;
    }
    return out;
}

/* Avro binary, written by hand. */
typedef struct {
    uint8_t b[16384];
    size_t n;
} wb_t;

static void w_raw(wb_t *w, const void *p, size_t n) {
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_long(wb_t *w, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t c;

    while (z >= 0x80) {
        c = (uint8_t)(z | 0x80);
        w_raw(w, &c, 1);
        z >>= 7;
    }
    c = (uint8_t)z;
    w_raw(w, &c, 1);
}

static void w_bytes(wb_t *w, const void *p, size_t n) {
    w_long(w, (int64_t)n);
    w_raw(w, p, n);
}

static void w_str(wb_t *w, const char *s) {
    w_bytes(w, s, strlen(s));
}

static void w_bool(wb_t *w, bool v) {
    uint8_t c = v ? 1 : 0;
    w_raw(w, &c, 1);
}

static void w_float(wb_t *w, float f) {
    uint32_t bits;
    uint8_t b[4];

    memcpy(&bits, &f, 4);
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(bits >> (8 * i));
    }
    w_raw(w, b, 4);
}

static void w_double(wb_t *w, double d) {
    uint64_t bits;
    uint8_t b[8];

    memcpy(&bits, &d, 8);
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(bits >> (8 * i));
    }
    w_raw(w, b, 8);
}

static void w_opt_str(wb_t *w, const char *s) {
    w_long(w, s[0] != '\0');
    if (s[0] != '\0') {
        w_str(w, s);
    }
}

static void w_opt_long(wb_t *w, int64_t v) {
    w_long(w, v >= 0);
    if (v >= 0) {
        w_long(w, v);
    }
}

/* A Confluent header for id, the body to follow. */
static void w_frame(wb_t *w, int32_t id) {
    uint8_t h[5] = {0, (uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
    w->n = 0;
    w_raw(w, h, 5);
}

static void w_header(wb_t *w, const lp_event_t *ev) {
    w_str(w, ev->event_id);
    w_str(w, ev->lead_id);
    w_long(w, ev->ts_ms);
}

static int add_to(lp_avro_codec_t *c, int32_t id, const char *json, char *err) {
    err[0] = '\0';
    return lp_avro_codec_add_schema(c, id, json, strlen(json), err, LP_ERRSTR);
}

static int add(int32_t id, const char *json, char *err) {
    return add_to(codec, id, json, err);
}

static int dec_with(lp_avro_codec_t *c, const wb_t *w, lp_event_t *ev, char *err) {
    memset(ev, 0, sizeof(*ev));
    err[0] = '\0';
    return lp_avro_decode_event(c, w->b, w->n, -1, ev, err, LP_ERRSTR);
}

static int dec(const wb_t *w, lp_event_t *ev, char *err) {
    return dec_with(codec, w, ev, err);
}

#define ASSERT_HAS(haystack, needle)                                                               \
    do {                                                                                           \
        if (strstr((haystack), (needle)) == NULL) {                                                \
            fprintf(stderr, "expected \"%s\" in: %s\n", (needle), (haystack));                     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    char *buf = calloc(1, 65536);

    assert_non_null(fp);
    assert_true(fread(buf, 1, 65535, fp) > 0);
    fclose(fp);
    return buf;
}

static char *schema_file(const char *name) {
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s.avsc", LP_SCHEMA_DIR, name);
    return slurp(path);
}

/* Replaces the first `from` in s (a buffer of 65536 bytes) with `to`. */
static void replace(char *s, const char *from, const char *to) {
    char *at = strstr(s, from);
    size_t tail;

    assert_non_null(at);
    tail = strlen(at + strlen(from));
    assert_true(strlen(s) - strlen(from) + strlen(to) < 65536);
    memmove(at + strlen(to), at + strlen(from), tail + 1);
    memcpy(at, to, strlen(to));
}

/* The fields of our EngagementEvent, as a writer that changed nothing would declare them. */
#define F_EVENT_ID "{'name':'event_id','type':'string'}"
#define F_LEAD_ID "{'name':'lead_id','type':'string'}"
#define F_TS "{'name':'ts','type':{'type':'long','logicalType':'timestamp-millis'}}"
#define F_HEAD F_EVENT_ID "," F_LEAD_ID "," F_TS
#define F_TYPE "{'name':'type','type':'string'}"
#define F_URL "{'name':'url','type':['null','string'],'default':null}"
#define F_ASSET "{'name':'asset_id','type':['null','string'],'default':null}"
#define F_CAMPAIGN "{'name':'campaign_id','type':['null','string'],'default':null}"
#define F_MACHINE "{'name':'machine','type':'boolean','default':false}"
#define F_SSS "{'name':'seconds_since_send','type':['null','long'],'default':null}"

static const char *eng_schema(const char *fields) {
    return J("{'type':'record','name':'EngagementEvent','namespace':'io.leadpulse',"
             "'fields':[%s]}",
             fields);
}

/* Adds id with json, which must resolve. */
static void add_ok(int32_t id, const char *json) {
    char err[LP_ERRSTR];

    if (add(id, json, err) != LP_OK) {
        fprintf(stderr, "add_schema %d: %s\n", (int)id, err);
        fail();
    }
}

static void decode_equal(const wb_t *w, const lp_event_t *want) {
    lp_event_t got;
    char err[LP_ERRSTR];

    if (dec(w, &got, err) != LP_OK) {
        fprintf(stderr, "decode: %s\n", err);
        fail();
    }
    assert_true(fix_event_equal(&got, want));
}

static void decode_fails(const wb_t *w, const char *why) {
    lp_event_t got;
    char err[LP_ERRSTR];

    assert_int_equal(dec(w, &got, err), LP_ERR);
    ASSERT_HAS(err, why);
}

/* ---- same schema, doc-only changes: the fast path ---- */

static void test_identical_schema_is_direct(void **state) {
    static const char *names[] = {"EngagementEvent", "LeadProfileUpdated", "SalesFeedback"};
    (void)state;

    for (int k = 0; k <= LP_SCHEMA_FEEDBACK; k++) {
        char *text = schema_file(names[k]);
        lp_schema_kind_t kind = LP_SCHEMA_STALE;
        uint8_t buf[4096];
        lp_event_t ev;
        wb_t w;
        size_t n;

        add_ok(1000 + k, text);
        assert_int_equal(lp_avro_codec_id_state(codec, 1000 + k, &kind), LP_AVRO_ID_DIRECT);
        assert_int_equal(kind, k);
        for (int variant = 0; variant < 2; variant++) {
            fix_event(&ev, (lp_event_kind_t)k, variant);
            n = lp_avro_encode_event(codec, &ev, LP_FRAMING_RAW, buf, sizeof(buf));
            assert_true(n > 0);
            w_frame(&w, 1000 + k);
            w_raw(&w, buf, n);
            decode_equal(&w, &ev);
        }
        free(text);
    }
}

static void test_doc_only_change_is_direct(void **state) {
    char *text = schema_file("EngagementEvent");
    lp_event_t ev;
    uint8_t buf[4096];
    wb_t w;
    size_t n;
    (void)state;

    /* Docs, a custom attribute, other defaults and field order attributes: same binary. */
    replace(text, "\"doc\": \"One activity", "\"x-owner\": \"web\", \"doc\": \"Another text");
    replace(text, "\"default\": false", "\"default\": true, \"order\": \"descending\"");
    add_ok(1010, text);
    assert_int_equal(lp_avro_codec_id_state(codec, 1010, NULL), LP_AVRO_ID_DIRECT);
    fix_event(&ev, LP_EV_ENGAGEMENT, 1);
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_RAW, buf, sizeof(buf));
    w_frame(&w, 1010);
    w_raw(&w, buf, n);
    decode_equal(&w, &ev);
    /* Failing side: the fast path still checks everything (here: a trailing byte). */
    w_raw(&w, "x", 1);
    decode_fails(&w, "trailing bytes");
    free(text);
}

/* ---- writer fields the reader lacks are skipped ---- */

#define X_ITEM                                                                                     \
    "{'type':'record','name':'Item','fields':[{'name':'sku','type':'string'},"                     \
    "{'name':'qty','type':'int'},{'name':'tags','type':{'type':'array','items':'string'}}]}"
#define X_NESTED                                                                                   \
    "{'type':'record','name':'Nested','namespace':'com.other','fields':[{'name':'a','type':"       \
    "'double'},{'name':'b','type':{'type':'record','name':'Inner','fields':[{'name':'c','type':"   \
    "'float'},{'name':'d','type':'bytes'}]}},{'name':'e','type':'boolean'}]}"

static const char *every_type_schema(void) {
    return eng_schema(
        F_HEAD ",{'name':'x_int','type':'int'}," F_TYPE
               ",{'name':'x_fixed','type':{'type':'fixed','name':'Hash','size':4}}," F_URL
               ",{'name':'x_map','type':{'type':'map','values':'long'}}," F_ASSET "," F_CAMPAIGN
               ",{'name':'x_items','type':{'type':'array','items':" X_ITEM "}}," F_MACHINE
               ",{'name':'x_nested','type':" X_NESTED "},"
               "{'name':'x_union','type':['null','string','Hash','com.other.Nested']},"
               "{'name':'x_enum','type':{'type':'enum','name':'Color','symbols':['RED','GREEN']}},"
               "{'name':'x_null','type':'null'},{'name':'x_long','type':'long'}," F_SSS
               ",{'name':'x_string','type':'string'},"
               "{'name':'x_neg_array','type':{'type':'array','items':'long'}},"
               "{'name':'x_neg_map','type':{'type':'map','values':'Item'}},"
               "{'name':'x_float','type':'float'},{'name':'x_double','type':'double'},"
               "{'name':'x_bool','type':'boolean'}");
}

static void w_item(wb_t *w, const char *sku, int qty, int ntags) {
    w_str(w, sku);
    w_long(w, qty);
    if (ntags > 0) {
        w_long(w, ntags);
        for (int i = 0; i < ntags; i++) {
            w_str(w, "tag");
        }
    }
    w_long(w, 0);
}

static void w_nested(wb_t *w) {
    w_double(w, 2.5);
    w_float(w, 1.25f);
    w_bytes(w, "\x00\xff", 2);
    w_bool(w, true);
}

/* The record of every_type_schema for ev; union_branch picks x_union's value. */
static void w_every_type(wb_t *w, const lp_event_t *ev, int union_branch) {
    const lp_engagement_t *e = &ev->u.engagement;
    wb_t block = {.n = 0};

    w_header(w, ev);
    w_long(w, -123456);
    w_str(w, e->type);
    w_raw(w, "\x01\x02\x03\x04", 4);
    w_opt_str(w, e->url);
    w_long(w, 2); /* x_map: one block of two */
    w_str(w, "a");
    w_long(w, 1);
    w_str(w, "b");
    w_long(w, -1);
    w_long(w, 0);
    w_opt_str(w, e->asset_id);
    w_opt_str(w, e->campaign_id);
    w_long(w, 2); /* x_items: a block of two records, a block of one */
    w_item(w, "sku-1", 3, 2);
    w_item(w, "sku-2", -4, 0);
    w_long(w, 1);
    w_item(w, "sku-3", 5, 1);
    w_long(w, 0);
    w_bool(w, e->machine);
    w_nested(w);
    w_long(w, union_branch);
    if (union_branch == 1) {
        w_str(w, "u");
    } else if (union_branch == 2) {
        w_raw(w, "abcd", 4);
    } else if (union_branch == 3) {
        w_nested(w);
    }
    w_long(w, 1); /* x_enum GREEN */
    w_long(w, 1LL << 40);
    w_opt_long(w, e->seconds_since_send);
    w_str(w, "extra \xc3\xa9");
    /* x_neg_array: a block with its byte size (count -3), then a plain block of 2. */
    w_long(&block, 7);
    w_long(&block, -8);
    w_long(&block, 1LL << 50);
    w_long(w, -3);
    w_long(w, (int64_t)block.n);
    w_raw(w, block.b, block.n);
    w_long(w, 2);
    w_long(w, 1);
    w_long(w, 2);
    w_long(w, 0);
    /* x_neg_map: one entry in a sized block. */
    block.n = 0;
    w_str(&block, "key");
    w_item(&block, "sku-9", 9, 3);
    w_long(w, -1);
    w_long(w, (int64_t)block.n);
    w_raw(w, block.b, block.n);
    w_long(w, 0);
    w_float(w, -0.5f);
    w_double(w, 1e300);
    w_bool(w, false);
}

static void test_added_fields_skipped(void **state) {
    lp_event_t ev;
    wb_t w;
    (void)state;

    add_ok(1020, every_type_schema());
    assert_int_equal(lp_avro_codec_id_state(codec, 1020, NULL), LP_AVRO_ID_RESOLVED);
    for (int variant = 0; variant < 2; variant++) {
        for (int branch = 0; branch < 4; branch++) {
            fix_event(&ev, LP_EV_ENGAGEMENT, variant);
            w_frame(&w, 1020);
            w_every_type(&w, &ev, branch);
            decode_equal(&w, &ev);
        }
    }
    /* Failing side: bad data in a skipped field is still an error, named by field. */
    fix_event(&ev, LP_EV_ENGAGEMENT, 1);
    w_frame(&w, 1020);
    w_every_type(&w, &ev, 4);
    decode_fails(&w, "union index 4 out of range for x_union");
    w_frame(&w, 1020);
    w_every_type(&w, &ev, 0);
    w.n -= 20; /* cut inside x_neg_map's sized block */
    decode_fails(&w, "truncated record");
    w_frame(&w, 1020);
    w_every_type(&w, &ev, 0);
    w_raw(&w, "\x00", 1);
    decode_fails(&w, "trailing bytes");
}

/* ---- reader fields the writer lacks take their default ---- */

static void test_reader_defaults(void **state) {
    const char *fb = J("{'type':'record','name':'SalesFeedback','fields':[" F_HEAD ","
                       "{'name':'outcome','type':{'type':'enum','name':'FeedbackOutcome',"
                       "'symbols':['ACCEPTED','REJECTED','RECYCLED','WON','LOST']}}]}");
    char err[LP_ERRSTR];
    lp_event_t ev;
    wb_t w;
    (void)state;

    /* Engagement without url, asset_id, campaign_id, machine, seconds_since_send. */
    add_ok(1030, eng_schema(F_HEAD "," F_TYPE));
    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    w_frame(&w, 1030);
    w_header(&w, &ev);
    w_str(&w, ev.u.engagement.type);
    decode_equal(&w, &ev);
    /* Feedback without reason (default NONE) nor owner (default null). */
    add_ok(1031, fb);
    fix_event(&ev, LP_EV_FEEDBACK, 0);
    w_frame(&w, 1031);
    w_header(&w, &ev);
    w_long(&w, LP_FB_ACCEPTED);
    decode_equal(&w, &ev);

    /* Failing: a reader field without default that the writer lacks. */
    assert_int_equal(add(1032, eng_schema(F_HEAD "," F_URL), err), LP_ERR);
    assert_string_equal(err, "field 'type' of EngagementEvent has no default and the writer schema "
                             "lacks it");
    assert_int_equal(lp_avro_codec_id_state(codec, 1032, NULL), LP_AVRO_ID_UNREADABLE);
    w_frame(&w, 1032);
    w_header(&w, &ev);
    decode_fails(&w, "schema id 1032: field 'type' of EngagementEvent has no default");
    assert_int_equal(
        add(1033, J("{'type':'record','name':'SalesFeedback','fields':[" F_HEAD "]}"), err),
        LP_ERR);
    ASSERT_HAS(err, "field 'outcome' of SalesFeedback has no default");
}

/* ---- fields in another order ---- */

static void test_reordered_fields(void **state) {
    lp_event_t ev;
    wb_t w;
    (void)state;

    add_ok(1040,
           eng_schema(F_SSS "," F_MACHINE "," F_TYPE "," F_TS "," F_CAMPAIGN "," F_URL
                            ",{'name':'x','type':'string'}," F_LEAD_ID "," F_ASSET "," F_EVENT_ID));
    for (int variant = 0; variant < 2; variant++) {
        const lp_engagement_t *e = &ev.u.engagement;
        fix_event(&ev, LP_EV_ENGAGEMENT, variant);
        w_frame(&w, 1040);
        w_opt_long(&w, e->seconds_since_send);
        w_bool(&w, e->machine);
        w_str(&w, e->type);
        w_long(&w, ev.ts_ms);
        w_opt_str(&w, e->campaign_id);
        w_opt_str(&w, e->url);
        w_str(&w, "skipped");
        w_str(&w, ev.lead_id);
        w_opt_str(&w, e->asset_id);
        w_str(&w, ev.event_id);
        decode_equal(&w, &ev);
        /* Failing: the same record cut short, and with the last field left out. */
        w.n -= 1;
        decode_fails(&w, "truncated record");
        w.n -= strlen(ev.event_id);
        decode_fails(&w, "(field event_id)");
    }
}

/* ---- aliases, and an enum without default: a reader schema directory of our own ---- */

static char alias_dir[256];

static void write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s.avsc", dir, name);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    fclose(fp);
}

/* Our schemas with aliases added and FeedbackOutcome's default removed: neither is part of the
 * canonical form, so the codec accepts them. */
static lp_avro_codec_t *alias_codec(void) {
    static const char *names[] = {"EngagementEvent", "LeadProfileUpdated", "SalesFeedback",
                                  "LeadQualified",   "LeadStale",          "LeadErased"};
    const int32_t ids[LP_SCHEMA__COUNT] = FIX_SCHEMA_IDS;
    lp_avro_codec_t *c;
    char err[LP_ERRSTR];

    snprintf(alias_dir, sizeof(alias_dir), "/tmp/lp_resolve_XXXXXX");
    assert_non_null(mkdtemp(alias_dir));
    for (int k = 0; k < LP_SCHEMA__COUNT; k++) {
        char *text = schema_file(names[k]);
        if (k == LP_SCHEMA_ENGAGEMENT) {
            replace(text, "\"name\": \"EngagementEvent\",",
                    "\"name\": \"EngagementEvent\", \"aliases\": [\"io.old.Activity\"],");
            replace(text, "{\"name\": \"type\", \"type\": \"string\",",
                    "{\"name\": \"type\", \"aliases\": [\"kind\", \"activity\"], "
                    "\"type\": \"string\",");
        } else if (k == LP_SCHEMA_FEEDBACK) {
            replace(text, "\"default\": \"RECYCLED\"", "\"x-note\": \"no default\"");
        }
        write_file(alias_dir, names[k], text);
        free(text);
    }
    c = lp_avro_codec_new(alias_dir, ids, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        fail();
    }
    return c;
}

static void remove_alias_dir(void) {
    static const char *names[] = {"EngagementEvent", "LeadProfileUpdated", "SalesFeedback",
                                  "LeadQualified",   "LeadStale",          "LeadErased"};
    char path[512];

    for (int k = 0; k < LP_SCHEMA__COUNT; k++) {
        snprintf(path, sizeof(path), "%s/%s.avsc", alias_dir, names[k]);
        unlink(path);
    }
    rmdir(alias_dir);
}

static void test_aliases(void **state) {
    lp_avro_codec_t *c = alias_codec();
    char err[LP_ERRSTR];
    lp_event_t ev, got;
    wb_t w;
    (void)state;

    /* The writer's record is called Activity (a reader alias), its field `kind` (an alias). */
    assert_int_equal(
        add_to(c, 2000,
               J("{'type':'record','name':'Activity','namespace':'io.new','fields':[" F_HEAD
                 ",{'name':'kind','type':'string'}]}"),
               err),
        LP_OK);
    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    w_frame(&w, 2000);
    w_header(&w, &ev);
    w_str(&w, ev.u.engagement.type);
    assert_int_equal(dec_with(c, &w, &got, err), LP_OK);
    assert_true(fix_event_equal(&got, &ev));
    /* The field's own name wins over an alias naming another writer field. */
    assert_int_equal(
        add_to(c, 2001, eng_schema(F_HEAD ",{'name':'activity','type':'string'}," F_TYPE), err),
        LP_OK);
    w_frame(&w, 2001);
    w_header(&w, &ev);
    w_str(&w, "not_this");
    w_str(&w, ev.u.engagement.type);
    assert_int_equal(dec_with(c, &w, &got, err), LP_OK);
    assert_true(fix_event_equal(&got, &ev));

    /* Failing: a name that is no alias, and the same schemas without the aliases. */
    assert_int_equal(add_to(c, 2002, eng_schema(F_HEAD ",{'name':'kinds','type':'string'}"), err),
                     LP_ERR);
    ASSERT_HAS(err, "field 'type' of EngagementEvent has no default");
    assert_int_equal(add(2000, J("{'type':'record','name':'Activity','fields':[" F_HEAD "]}"), err),
                     LP_ERR);
    assert_string_equal(err, "record Activity is not EngagementEvent, LeadProfileUpdated or "
                             "SalesFeedback");
    lp_avro_codec_destroy(c);
    remove_alias_dir();
}

/* ---- promotions ---- */

static void test_promotions(void **state) {
    lp_event_t ev;
    char err[LP_ERRSTR];
    wb_t w;
    (void)state;

    /* seconds_since_send as a plain int, ts as int; company_size as a plain long. */
    add_ok(1050, eng_schema(F_EVENT_ID "," F_LEAD_ID ",{'name':'ts','type':'int'}," F_TYPE
                                       ",{'name':'seconds_since_send','type':'int'}"));
    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    ev.ts_ms = 2000000000;
    ev.u.engagement.seconds_since_send = 86400;
    w_frame(&w, 1050);
    w_header(&w, &ev);
    w_str(&w, ev.u.engagement.type);
    w_long(&w, 86400);
    decode_equal(&w, &ev);
    /* Failing: an int beyond 32 bits is not an int. */
    w_frame(&w, 1050);
    w_str(&w, ev.event_id);
    w_str(&w, ev.lead_id);
    w_long(&w, 1LL << 40);
    decode_fails(&w, "int 1099511627776 out of range at byte");

    add_ok(1051, J("{'type':'record','name':'LeadProfileUpdated','fields':[" F_HEAD
                   ",{'name':'company_size','type':'long'},{'name':'email','type':['null','int',"
                   "'string']}]}"));
    fix_event(&ev, LP_EV_PROFILE, 0);
    ev.u.profile.company_size = 5000000000LL;
    snprintf(ev.u.profile.email, sizeof(ev.u.profile.email), "a@b.c");
    w_frame(&w, 1051);
    w_header(&w, &ev);
    w_long(&w, 5000000000LL);
    w_long(&w, 2);
    w_str(&w, "a@b.c");
    decode_equal(&w, &ev);

    /* Failing: no promotion to long from float, nor to [null, long] from string. */
    assert_int_equal(
        add(1052, eng_schema(F_HEAD "," F_TYPE ",{'name':'seconds_since_send','type':'float'}"),
            err),
        LP_ERR);
    assert_string_equal(err, "field 'seconds_since_send' of EngagementEvent: writer type float "
                             "cannot be read as [null, long]");
    assert_int_equal(add(1053,
                         J("{'type':'record','name':'LeadProfileUpdated','fields':[" F_HEAD
                           ",{'name':'company_size','type':'string'}]}"),
                         err),
                     LP_ERR);
    ASSERT_HAS(err, "writer type string cannot be read as [null, long]");
}

static void test_string_as_bytes(void **state) {
    lp_event_t ev;
    wb_t w;
    (void)state;

    add_ok(1060, eng_schema(F_HEAD ",{'name':'type','type':'bytes'},"
                                   "{'name':'url','type':['null','bytes']}"));
    fix_event(&ev, LP_EV_ENGAGEMENT, 1);
    memset(ev.u.engagement.asset_id, 0, sizeof(ev.u.engagement.asset_id));
    memset(ev.u.engagement.campaign_id, 0, sizeof(ev.u.engagement.campaign_id));
    ev.u.engagement.machine = false;
    ev.u.engagement.seconds_since_send = -1;
    w_frame(&w, 1060);
    w_header(&w, &ev);
    w_str(&w, ev.u.engagement.type);
    w_opt_str(&w, ev.u.engagement.url);
    decode_equal(&w, &ev);
    /* Failing: bytes that are no UTF-8 still fail the decoder's string checks. */
    w_frame(&w, 1060);
    w_header(&w, &ev);
    w_bytes(&w, "web\xff", 4);
    w_long(&w, 0);
    decode_fails(&w, "schema id 1060, read as EngagementEvent: invalid UTF-8 in string");
}

/* ---- enums ---- */

#define FB_ENUMS(outcome_symbols, reason_symbols)                                                  \
    "{'type':'record','name':'SalesFeedback','fields':[" F_HEAD                                    \
    ",{'name':'outcome','type':{'type':'enum','name':'FeedbackOutcome','symbols':"                 \
    "[" outcome_symbols                                                                            \
    "]}},{'name':'reason','type':{'type':'enum','name':'RejectReason','symbols':[" reason_symbols  \
    "]}}]}"

static void test_enums(void **state) {
    lp_event_t ev;
    char err[LP_ERRSTR];
    wb_t w;
    lp_avro_codec_t *c;
    (void)state;

    /* Reordered symbols, and one the reader lacks (reader default RECYCLED, OTHER). */
    add_ok(1070, J(FB_ENUMS("'LOST','WON','ESCALATED','RECYCLED','REJECTED','ACCEPTED'",
                            "'OTHER','TIMING','PRICE','COMPETITOR','BAD_DATA',"
                            "'NOT_DECISION_MAKER','NO_BUDGET','NONE'")));
    fix_event(&ev, LP_EV_FEEDBACK, 1); /* REJECTED, NOT_DECISION_MAKER */
    memset(ev.u.feedback.owner, 0, sizeof(ev.u.feedback.owner));
    w_frame(&w, 1070);
    w_header(&w, &ev);
    w_long(&w, 4);
    w_long(&w, 5);
    decode_equal(&w, &ev);
    ev.u.feedback.outcome = LP_FB_RECYCLED;
    ev.u.feedback.reason = LP_REJ_OTHER;
    w_frame(&w, 1070);
    w_header(&w, &ev);
    w_long(&w, 2); /* ESCALATED: the reader's default */
    w_long(&w, 2); /* PRICE: the reader's default */
    decode_equal(&w, &ev);

    /* Failing: a symbol index beyond the writer's, an enum of another name. */
    w_frame(&w, 1070);
    w_header(&w, &ev);
    w_long(&w, 6);
    decode_fails(&w, "enum index 6 out of range for outcome");
    assert_int_equal(add(1071,
                         J("{'type':'record','name':'SalesFeedback','fields':[" F_HEAD
                           ",{'name':'outcome','type':{'type':'enum','name':'Verdict',"
                           "'symbols':['ACCEPTED']}}]}"),
                         err),
                     LP_ERR);
    ASSERT_HAS(err, "writer type enum Verdict cannot be read as enum FeedbackOutcome");

    /* A reader enum without default: the unknown symbol fails its records only. */
    c = alias_codec();
    assert_int_equal(
        add_to(c, 2010, J(FB_ENUMS("'ACCEPTED','ESCALATED','REJECTED'", "'NONE'")), err), LP_OK);
    fix_event(&ev, LP_EV_FEEDBACK, 0);
    w_frame(&w, 2010);
    w_header(&w, &ev);
    w_long(&w, 0);
    w_long(&w, 0);
    assert_int_equal(dec_with(c, &w, &ev, err), LP_OK);
    assert_int_equal(ev.u.feedback.outcome, LP_FB_ACCEPTED);
    w_frame(&w, 2010);
    w_header(&w, &ev);
    w_long(&w, 1);
    w_long(&w, 0);
    assert_int_equal(dec_with(c, &w, &ev, err), LP_ERR);
    ASSERT_HAS(err, "symbol ESCALATED of enum FeedbackOutcome at byte");
    ASSERT_HAS(err, "(field outcome) is not in the reader's enum");
    lp_avro_codec_destroy(c);
    remove_alias_dir();
}

/* ---- unions ---- */

static void test_writer_union_branches(void **state) {
    lp_event_t ev;
    char err[LP_ERRSTR];
    wb_t w;
    (void)state;

    /* url gains an int branch; type is written as a union; machine as [null, boolean]. */
    add_ok(1080, eng_schema(F_HEAD ",{'name':'type','type':['string','null']},"
                                   "{'name':'url','type':['null','string','int']},"
                                   "{'name':'machine','type':['null','boolean']}"));
    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    ev.u.engagement.machine = true;
    for (int branch = 0; branch < 2; branch++) {
        w_frame(&w, 1080);
        w_header(&w, &ev);
        w_long(&w, 0);
        w_str(&w, ev.u.engagement.type);
        w_long(&w, branch);
        snprintf(ev.u.engagement.url, sizeof(ev.u.engagement.url), "%s", branch ? "/x" : "");
        if (branch == 1) {
            w_str(&w, "/x");
        }
        w_long(&w, 1);
        w_bool(&w, true);
        decode_equal(&w, &ev);
    }
    /* Failing, per record: the writer branches the reader cannot take. */
    w_frame(&w, 1080);
    w_header(&w, &ev);
    w_long(&w, 0);
    w_str(&w, ev.u.engagement.type);
    w_long(&w, 2);
    w_long(&w, 7);
    w_long(&w, 1);
    w_bool(&w, true);
    decode_fails(&w, "writer union branch 2 (int) does not match field url at byte 43: writer type "
                     "int cannot be read as [null, string]");
    w_frame(&w, 1080);
    w_header(&w, &ev);
    w_long(&w, 1);
    decode_fails(&w, "writer union branch 1 (null) does not match field type at byte 32");
    w_frame(&w, 1080);
    w_header(&w, &ev);
    w_long(&w, 0);
    w_str(&w, ev.u.engagement.type);
    w_long(&w, 0);
    w_long(&w, 0);
    decode_fails(&w, "writer union branch 0 (null) does not match field machine");
    /* A type that no reader union branch takes is an error at once, outside a writer union. */
    assert_int_equal(
        add(1081, eng_schema(F_HEAD "," F_TYPE ",{'name':'url','type':'boolean'}"), err), LP_ERR);
    ASSERT_HAS(err, "writer type boolean cannot be read as [null, string]");
}

/* ---- schemas that do not resolve ---- */

static void test_incompatible(void **state) {
    char *text;
    char err[LP_ERRSTR];
    lp_event_t ev;
    wb_t w;
    (void)state;

    assert_int_equal(
        add(1090, eng_schema(F_HEAD "," F_TYPE ",{'name':'machine','type':'string'}"), err),
        LP_ERR);
    assert_string_equal(err, "field 'machine' of EngagementEvent: writer type string cannot be "
                             "read as boolean");
    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    w_frame(&w, 1090);
    w_header(&w, &ev);
    decode_fails(&w, "schema id 1090: field 'machine' of EngagementEvent: writer type string");
    assert_int_equal(add(1091, J("{'type':'record','name':'PageView','fields':[" F_HEAD "]}"), err),
                     LP_ERR);
    assert_string_equal(err, "record PageView is not EngagementEvent, LeadProfileUpdated or "
                             "SalesFeedback");
    text = schema_file("LeadQualified");
    assert_int_equal(add(1092, text, err), LP_ERR);
    free(text);
    ASSERT_HAS(err, "record io.leadpulse.LeadQualified is not EngagementEvent");
    assert_int_equal(add(1093, J("['null','string']"), err), LP_ERR);
    assert_string_equal(err, "the schema is [null, string], not a record");
    /* An unreadable id is remembered: its records fail with the reason, and it stays so. */
    assert_int_equal(lp_avro_codec_id_state(codec, 1091, NULL), LP_AVRO_ID_UNREADABLE);
    w_frame(&w, 1091);
    w_header(&w, &ev);
    decode_fails(&w, "schema id 1091: record PageView is not");
    /* Re-teaching the id replaces what the codec knew. */
    add_ok(1091, eng_schema(F_HEAD "," F_TYPE));
    assert_int_equal(lp_avro_codec_id_state(codec, 1091, NULL), LP_AVRO_ID_RESOLVED);
}

/* ---- malformed schemas ---- */

static void test_malformed_schemas(void **state) {
    static char deep[4096];
    static char json_deep[8192];
    static char long_name[600];
    const char *bad[] = {
        "",
        "{",
        "[",
        "nul",
        "{}",
        "42",
        "{\"type\":\"recrd\",\"name\":\"X\"}",
        "\"Foo\"",
        "\"string\" x",
        J("{'type':'record','name':'EngagementEvent','fields':[{'name':'event_id','type':'string'"
          "}"),
        J("{'type':'record','name':'EngagementEvent','fields':[{'name':'a','type':'Missing'}]}"),
        J("{'type':'record','name':'E','fields':[{'name':'a','type':['null',['int']]}]}"),
        J("{'type':'record','name':'E','fields':[{'name':'a','type':['int','int']}]}"),
        J("{'type':'record','name':'E','fields':[{'name':'a','type':'int'},{'name':'a','type':"
          "'int'}]}"),
        J("{'type':'record','name':'E','fields':[{'name':'a','type':{'type':'fixed','name':'E',"
          "'size':1}}]}"),
        J("{'type':'record','name':'1E','fields':[]}"),
        J("{'type':'record','name':'int','fields':[]}"),
        J("{'type':'record','name':'E','namespace':'a..b','fields':[]}"),
        J("{'type':'record','name':'E'}"),
        J("{'type':'record','name':'E','fields':[{'name':'a'}]}"),
        J("{'type':'record','fields':[]}"),
        J("{'type':'enum','name':'E','symbols':['A','A']}"),
        J("{'type':'enum','name':'E','symbols':[]}"),
        J("{'type':'enum','name':'E','symbols':['A'],'default':'B'}"),
        J("{'type':'fixed','name':'F','size':-1}"),
        J("{'type':'fixed','name':'F'}"),
        J("{'type':'array'}"),
        J("{'type':'map','values':'nope'}"),
        J("{'type':{'type':'string'}}"),
        J("{'type':'record','name':'E','fields':[],'fields':[]}"),
        J("{'type':'record','name':'E','fields':[{'name':'a','type':[]}]}"),
        "{\"type\":\"record\",\"name\":\"E\xff\",\"fields\":[]}",
        "{\"type\":\"record\",\"name\":\"E\",\"fields\":[],\"doc\":\"\\ud800\"}",
        deep,
        json_deep,
        long_name,
    };
    char err[LP_ERRSTR];
    lp_event_t ev;
    wb_t w;
    size_t n = 0;
    (void)state;

    /* 40 nested arrays (types too deep), and a custom attribute of 2000 nested JSON arrays. */
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"type\":\"array\",\"items\":");
    }
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "\"int\"");
    for (int i = 0; i < 40; i++) {
        deep[n++] = '}';
    }
    n = (size_t)snprintf(json_deep, sizeof(json_deep),
                         "{\"type\":\"record\",\"name\":\"E\",\"fields\":[],\"x\":");
    memset(json_deep + n, '[', 2000);
    memset(json_deep + n + 2000, ']', 2000);
    json_deep[n + 4000] = '}';
    snprintf(long_name, sizeof(long_name),
             "{\"type\":\"record\",\"name\":\"%0300d\",\"fields\":[]}", 0);
    long_name[26] = 'N';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int32_t id = 3000 + (int32_t)i;
        memset(err, 0, sizeof(err));
        if (add(id, bad[i], err) != LP_ERR || err[0] == '\0') {
            fprintf(stderr, "schema %zu accepted or no reason: %s\n", i, bad[i]);
            fail();
        }
        assert_int_equal(lp_avro_codec_id_state(codec, id, NULL), LP_AVRO_ID_UNREADABLE);
        w_frame(&w, id);
        w_raw(&w, "\x02x", 2);
        assert_int_equal(dec(&w, &ev, err), LP_ERR);
        assert_true(strncmp(err, "schema id ", 10) == 0);
    }
    assert_int_equal(add(3100, "{\"type\":\"recrd\",\"name\":\"X\"}", err), LP_ERR);
    ASSERT_HAS(err, "unknown type \"recrd\"");
    assert_int_equal(add(3101, deep, err), LP_ERR);
    ASSERT_HAS(err, "types nested deeper than 32 levels");
    assert_int_equal(add(3102, bad[9], err), LP_ERR);
    ASSERT_HAS(err, "unexpected end of input");
    /* A text longer than schemas get, and no text at all. */
    {
        size_t big = LP_RS_TEXT_MAX + 1;
        char *text = malloc(big);
        memset(text, ' ', big);
        assert_int_equal(lp_avro_codec_add_schema(codec, 3103, text, big, err, sizeof(err)),
                         LP_ERR);
        ASSERT_HAS(err, "longer than");
        free(text);
    }
    assert_int_equal(lp_avro_codec_add_schema(codec, 3104, NULL, 0, err, sizeof(err)), LP_ERR);
}

/* ---- learnt ids, configured ids, the table ---- */

static void test_configured_and_wrong_kind(void **state) {
    char *text = schema_file("EngagementEvent");
    char err[LP_ERRSTR];
    lp_fact_t fact;
    lp_event_t ev;
    wb_t w;
    (void)state;

    /* A configured id: confirmed by its own schema, refused with another. */
    assert_int_equal(add(101, text, err), LP_OK);
    assert_int_equal(add(102, text, err), LP_ERR);
    ASSERT_HAS(err, "schema id 102 is configured for LeadProfileUpdated");
    assert_int_equal(lp_avro_codec_id_state(codec, 102, NULL), LP_AVRO_ID_DIRECT);
    assert_int_equal(lp_avro_codec_id_state(codec, 424242, NULL), LP_AVRO_ID_UNKNOWN);
    /* An added input id is not a fact, whether direct or resolved. */
    add_ok(1100, text);
    add_ok(1101, eng_schema(F_HEAD "," F_TYPE));
    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    for (int32_t id = 1100; id <= 1101; id++) {
        w_frame(&w, id);
        w_header(&w, &ev);
        w_str(&w, ev.u.engagement.type);
        if (id == 1100) {
            w_raw(&w, "\x00\x00\x00\x00\x00", 5);
        }
        decode_equal(&w, &ev);
        assert_int_equal(lp_avro_decode_fact(codec, w.b, w.n, &fact, err, sizeof(err)), LP_ERR);
        ASSERT_HAS(err, "is EngagementEvent, not expected here");
    }
    /* Unknown ids fail as before. */
    w_frame(&w, 42);
    w_header(&w, &ev);
    decode_fails(&w, "unknown schema id 42");
    free(text);
}

static void test_id_table_limit(void **state) {
    lp_avro_codec_t *c = fix_codec();
    const char *json = eng_schema(F_HEAD "," F_TYPE);
    char err[LP_ERRSTR];
    (void)state;

    for (int32_t i = 0; i < LP_AVRO_ADDED_IDS_MAX; i++) {
        /* Spread and clustered ids alike (negative ones too: ids are opaque). */
        int32_t id = i % 2 == 0 ? i * 2048 : -i;
        assert_int_equal(add_to(c, id, i % 3 == 0 ? "{" : json, err), i % 3 == 0 ? LP_ERR : LP_OK);
    }
    assert_int_equal(add_to(c, 999999, json, err), LP_ERR);
    ASSERT_HAS(err, "not learnt");
    assert_int_equal(lp_avro_codec_id_state(c, 999999, NULL), LP_AVRO_ID_UNKNOWN);
    /* A known id can still be replaced. */
    assert_int_equal(add_to(c, 0, json, err), LP_OK);
    assert_int_equal(lp_avro_codec_id_state(c, 0, NULL), LP_AVRO_ID_RESOLVED);
    assert_int_equal(lp_avro_codec_id_state(c, -1021, NULL), LP_AVRO_ID_RESOLVED);
    lp_avro_codec_destroy(c);
}

/* ---- the fetch function ---- */

typedef struct {
    int calls;
    int answer; /* LP_OK, LP_AVRO_UNKNOWN_ID or LP_ERR */
    const char *json;
    int32_t last_id;
} fetch_t;

static int fetch_cb(void *ctx, int32_t id, const char **json, char *errstr, size_t size) {
    fetch_t *f = ctx;

    f->calls++;
    f->last_id = id;
    if (f->answer == LP_ERR) {
        snprintf(errstr, size, "registry unreachable");
    } else if (f->answer == LP_OK) {
        *json = f->json;
    }
    return f->answer;
}

static void test_fetch(void **state) {
    lp_avro_codec_t *c = fix_codec();
    fetch_t f = {.answer = LP_OK, .json = eng_schema(F_HEAD "," F_TYPE)};
    char err[LP_ERRSTR];
    lp_event_t ev, got;
    wb_t w;
    (void)state;

    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    /* No fetch function: unknown ids stay unknown. */
    w_frame(&w, 500);
    w_header(&w, &ev);
    w_str(&w, ev.u.engagement.type);
    assert_int_equal(dec_with(c, &w, &got, err), LP_ERR);
    assert_string_equal(err, "unknown schema id 500");
    lp_avro_codec_set_fetch(c, fetch_cb, &f);
    /* LP_OK: learnt on first sight, not fetched again. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(dec_with(c, &w, &got, err), LP_OK);
        assert_true(fix_event_equal(&got, &ev));
    }
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.last_id, 500);
    /* LP_AVRO_UNKNOWN_ID: dead-lettered as unknown; asked again next time. */
    f.answer = LP_AVRO_UNKNOWN_ID;
    w.b[4] = 1; /* id 257 */
    assert_int_equal(dec_with(c, &w, &got, err), LP_ERR);
    assert_string_equal(err, "unknown schema id 257");
    assert_int_equal(dec_with(c, &w, &got, err), LP_ERR);
    assert_int_equal(f.calls, 3);
    /* LP_ERR: retry later; once the registry answers, the record decodes. */
    f.answer = LP_ERR;
    w.b[4] = 2; /* id 258 */
    assert_int_equal(dec_with(c, &w, &got, err), LP_AVRO_RETRY);
    assert_string_equal(err, "schema id 258: cannot fetch its schema now: registry unreachable");
    assert_int_equal(lp_avro_codec_id_state(c, 258, NULL), LP_AVRO_ID_UNKNOWN);
    f.answer = LP_OK;
    assert_int_equal(dec_with(c, &w, &got, err), LP_OK);
    assert_true(fix_event_equal(&got, &ev));
    /* An unreadable schema is fetched once and remembered. */
    f.calls = 0;
    f.json = J("{'type':'record','name':'PageView','fields':[]}");
    w.b[4] = 3; /* id 259 */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(dec_with(c, &w, &got, err), LP_ERR);
        assert_string_equal(err, "schema id 259: record PageView is not EngagementEvent, "
                                 "LeadProfileUpdated or SalesFeedback");
    }
    assert_int_equal(f.calls, 1);
    /* The fast path of configured ids never asks. */
    w.b[4] = 101;
    w.b[3] = 0;
    assert_int_equal(dec_with(c, &w, &got, err), LP_ERR);
    assert_int_equal(f.calls, 1);
    lp_avro_codec_destroy(c);
}

/* ---- resolution of any types, through the internal API ---- */

/* Resolves `in` (writer binary) into out; LP_ERR with err when the schemas or the data fail. */
static int resolve_bytes(const char *writer, const char *reader, const wb_t *in, wb_t *out,
                         char *err) {
    lp_rs_schema_t *r = lp_rs_schema_parse(reader, strlen(reader), true, err, LP_ERRSTR);
    lp_rs_schema_t *w = lp_rs_schema_parse(writer, strlen(writer), false, err, LP_ERRSTR);
    lp_rs_program_t *program = NULL;
    lp_rs_vm_t vm = {0};
    lp_avro_rd_t rd = {
        .buf = in->b, .len = in->n, .field = "", .errstr = err, .errstr_size = LP_ERRSTR};
    lp_avro_wr_t wr = {.buf = out->b, .size = sizeof(out->b)};
    int rc = LP_ERR;

    assert_non_null(r);
    if (w != NULL) {
        program = lp_rs_compile(w, r->root, err, LP_ERRSTR);
    }
    if (program != NULL && lp_rs_run(program, &vm, &rd, &wr) == LP_OK &&
        lp_avro_rd_end(&rd) == LP_OK) {
        assert_false(wr.overflow);
        out->n = wr.pos;
        rc = LP_OK;
    }
    lp_rs_vm_free(&vm);
    lp_rs_program_free(program);
    lp_rs_schema_free(r);
    return rc;
}

static void assert_bytes(const wb_t *got, const wb_t *want) {
    if (got->n != want->n || memcmp(got->b, want->b, got->n) != 0) {
        fprintf(stderr, "got %zu bytes, want %zu:", got->n, want->n);
        for (size_t i = 0; i < got->n || i < want->n; i++) {
            fprintf(stderr, " %s%02x/%02x",
                    i < got->n && i < want->n && got->b[i] == want->b[i] ? "" : "*",
                    i < got->n ? got->b[i] : 0, i < want->n ? want->b[i] : 0);
        }
        fputc('\n', stderr);
        fail();
    }
}

static void test_defaults_of_every_type(void **state) {
    const char *reader =
        J("{'type':'record','name':'R','fields':["
          "{'name':'i','type':'int','default':-7},{'name':'l','type':'long','default':5000000000},"
          "{'name':'f','type':'float','default':1.5},{'name':'d','type':'double','default':-2.25},"
          "{'name':'b','type':'bytes','default':'\\u00ff\\u0001A'},"
          "{'name':'s','type':'string','default':'h\\u00e9'},"
          "{'name':'t','type':'boolean','default':true},{'name':'n','type':'null','default':null},"
          "{'name':'x','type':{'type':'fixed','name':'F2','size':2},'default':'ab'},"
          "{'name':'e','type':{'type':'enum','name':'AB','symbols':['A','B']},'default':'B'},"
          "{'name':'a','type':{'type':'array','items':'int'},'default':[1,-1]},"
          "{'name':'ea','type':{'type':'array','items':'int'},'default':[]},"
          "{'name':'m','type':{'type':'map','values':'string'},'default':{'k':'v'}},"
          "{'name':'em','type':{'type':'map','values':'string'},'default':{}},"
          "{'name':'r','type':{'type':'record','name':'Sub','fields':[{'name':'x','type':'int'},"
          "{'name':'y','type':'string','default':'z'}]},'default':{'x':3}},"
          "{'name':'u','type':['int','null'],'default':4},"
          "{'name':'kept','type':'int'}]}");
    const char *writer = J("{'type':'record','name':'R','fields':[{'name':'kept','type':'int'}]}");
    wb_t in = {.n = 0}, out, want = {.n = 0};
    char err[LP_ERRSTR];
    (void)state;

    w_long(&in, 9);
    w_long(&want, -7);
    w_long(&want, 5000000000LL);
    w_float(&want, 1.5f);
    w_double(&want, -2.25);
    w_bytes(&want,
            "\xff\x01"
            "A",
            3);
    w_str(&want, "h\xc3\xa9");
    w_bool(&want, true);
    w_raw(&want, "ab", 2);
    w_long(&want, 1);
    w_long(&want, 2);
    w_long(&want, 1);
    w_long(&want, -1);
    w_long(&want, 0);
    w_long(&want, 0);
    w_long(&want, 1);
    w_str(&want, "k");
    w_str(&want, "v");
    w_long(&want, 0);
    w_long(&want, 0);
    w_long(&want, 3);
    w_str(&want, "z");
    w_long(&want, 0);
    w_long(&want, 4);
    w_long(&want, 9);
    assert_int_equal(resolve_bytes(writer, reader, &in, &out, err), LP_OK);
    assert_bytes(&out, &want);

    /* Failing: defaults that do not fit their type are errors of the reader schema. */
    static const char *bad[] = {
        "'int','default':'x'",
        "'int','default':3000000000",
        "'float','default':1e39",
        "'bytes','default':'\\u0100'",
        "['null','int'],'default':1",
        "{'type':'fixed','name':'F','size':2},'default':'abc'",
        "{'type':'enum','name':'E','symbols':['A']},'default':'B'",
        "{'type':'record','name':'S','fields':[{'name':'q','type':'int'}]},'default':{}",
        "{'type':'map','values':'int'},'default':{'k':'v'}",
        "'null','default':0",
        "'boolean','default':1",
        "{'type':'map','values':'int'},'default':{'"
        "k234567890123456789012345678901234567890123456789"
        "0123456789012345':1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *r = J("{'type':'record','name':'R','fields':[{'name':'a','type':%s}]}", bad[i]);
        lp_rs_schema_t *s = lp_rs_schema_parse(r, strlen(r), true, err, sizeof(err));
        if (s != NULL) {
            fprintf(stderr, "default accepted: %s\n", r);
            fail();
        }
        ASSERT_HAS(err, "field 'a': key \"default\"");
    }
}

static void test_generic_resolution(void **state) {
    char err[LP_ERRSTR];
    wb_t in = {.n = 0}, out, want = {.n = 0};
    (void)state;

    /* Promotions to float and double, inside an array of records read in another order, a map
     * of enums, and unions to unions. */
    const char *writer =
        J("{'type':'record','name':'W','namespace':'a','fields':["
          "{'name':'pts','type':{'type':'array','items':{'type':'record','name':'P','fields':["
          "{'name':'y','type':'long'},{'name':'x','type':'int'},{'name':'z','type':'float'},"
          "{'name':'drop','type':'string'}]}}},"
          "{'name':'m','type':{'type':'map','values':{'type':'enum','name':'C','symbols':['G','R']}"
          "}},"
          "{'name':'u','type':['int','string','null']},{'name':'v','type':['int','string','null']},"
          "{'name':'h','type':{'type':'fixed','name':'H','size':3}}]}");
    const char *reader = J(
        "{'type':'record','name':'W','namespace':'b','fields':["
        "{'name':'pts','type':{'type':'array','items':{'type':'record','name':'P','fields':["
        "{'name':'x','type':'float'},{'name':'y','type':'double'},{'name':'z','type':'double'},"
        "{'name':'w','type':'int','default':1}]}}},"
        "{'name':'m','type':{'type':'map','values':{'type':'enum','name':'C','symbols':['R','G']}}}"
        ","
        "{'name':'u','type':['null','string','long']},{'name':'v','type':['null','string','long']},"
        "{'name':'h','type':{'type':'fixed','name':'H','size':3}}]}");

    w_long(&in, -2); /* a sized block of two points */
    {
        wb_t block = {.n = 0};
        w_long(&block, 1LL << 40);
        w_long(&block, -3);
        w_float(&block, 0.5f);
        w_str(&block, "x");
        w_long(&block, 7);
        w_long(&block, 8);
        w_float(&block, -1.0f);
        w_str(&block, "");
        w_long(&in, (int64_t)block.n);
        w_raw(&in, block.b, block.n);
    }
    w_long(&in, 0);
    w_long(&in, 1);
    w_str(&in, "k");
    w_long(&in, 1);
    w_long(&in, 0);
    w_long(&in, 0); /* u: int 5 -> long */
    w_long(&in, 5);
    w_long(&in, 1); /* v: string */
    w_str(&in, "s");
    w_raw(&in, "hhh", 3);

    w_long(&want, 2);
    w_float(&want, -3.0f);
    w_double(&want, (double)(1LL << 40));
    w_double(&want, 0.5);
    w_long(&want, 1);
    w_float(&want, 8.0f);
    w_double(&want, 7.0);
    w_double(&want, -1.0);
    w_long(&want, 1);
    w_long(&want, 0);
    w_long(&want, 1);
    w_str(&want, "k");
    w_long(&want, 0);
    w_long(&want, 0);
    w_long(&want, 2);
    w_long(&want, 5);
    w_long(&want, 1);
    w_str(&want, "s");
    w_raw(&want, "hhh", 3);
    assert_int_equal(resolve_bytes(writer, reader, &in, &out, err), LP_OK);
    assert_bytes(&out, &want);

    /* Failing: a sized block whose size lies, fixed of another size, a missing default. */
    in.b[1] = 2;
    assert_int_equal(resolve_bytes(writer, reader, &in, &out, err), LP_ERR);
    static const char *bad_readers[] = {
        "{'type':'record','name':'W','fields':[{'name':'h','type':{'type':'fixed','name':'H',"
        "'size':4}}]}",
        "{'type':'record','name':'W','fields':[{'name':'q','type':'int'}]}",
        "{'type':'record','name':'W','fields':[{'name':'m','type':{'type':'array','items':'int'}}]"
        "}",
        "{'type':'record','name':'W','fields':[{'name':'u','type':'string'}]}",
    };
    in.n = 0;
    w_long(&in, 0);
    w_long(&in, 0);
    w_long(&in, 0);
    w_long(&in, 0);
    w_long(&in, 1);
    w_long(&in, 0);
    w_long(&in, 1);
    w_long(&in, 2);
    w_str(&in, "s");
    w_raw(&in, "hhh", 3);
    for (size_t i = 0; i < sizeof(bad_readers) / sizeof(bad_readers[0]); i++) {
        int rc = resolve_bytes(writer, J("%s", bad_readers[i]), &in, &out, err);
        if (i < 3) {
            assert_int_equal(rc, LP_ERR);
        } else {
            /* u's int branch fails its record, the null one too; string resolves. */
            assert_int_equal(rc, LP_ERR);
            ASSERT_HAS(err, "writer union branch 0 (int)");
        }
    }
}

static void test_recursive_types(void **state) {
    const char *writer = J("{'type':'record','name':'Node','fields':[{'name':'v','type':'int'},"
                           "{'name':'next','type':['null','Node']}]}");
    const char *reader = J("{'type':'record','name':'Node','fields':["
                           "{'name':'next','type':['null','Node']},{'name':'v','type':'long'},"
                           "{'name':'w','type':'int','default':0}]}");
    const char *holder = J("{'type':'record','name':'H','fields':[{'name':'list','type':"
                           "['null',%s]},{'name':'tail','type':'int'}]}",
                           writer);
    const char *holder_reader = J("{'type':'record','name':'H','fields':["
                                  "{'name':'tail','type':'int'}]}");
    char err[LP_ERRSTR];
    wb_t in = {.n = 0}, out, want = {.n = 0};
    (void)state;

    /* A list of three, read in another field order (two passes at every level). */
    for (int i = 0; i < 3; i++) {
        w_long(&in, i);
        w_long(&in, i < 2);
    }
    for (int i = 0; i < 2; i++) {
        w_long(&want, 1);
    }
    w_long(&want, 0);
    w_long(&want, 2);
    w_long(&want, 0);
    w_long(&want, 1);
    w_long(&want, 0);
    w_long(&want, 0);
    w_long(&want, 0);
    assert_int_equal(resolve_bytes(writer, reader, &in, &out, err), LP_OK);
    assert_bytes(&out, &want);
    /* Skipped as an added field, fine when short. */
    in.n = 0;
    w_long(&in, 1);
    for (int i = 0; i < 3; i++) {
        w_long(&in, i);
        w_long(&in, i < 2);
    }
    w_long(&in, 77);
    want.n = 0;
    w_long(&want, 77);
    assert_int_equal(resolve_bytes(holder, holder_reader, &in, &out, err), LP_OK);
    assert_bytes(&out, &want);
    /* Failing: a list deeper than the nesting bound, read or skipped. */
    for (int pass = 0; pass < 2; pass++) {
        in.n = 0;
        if (pass == 1) {
            w_long(&in, 1);
        }
        for (int i = 0; i < 100; i++) {
            w_long(&in, i);
            w_long(&in, i < 99);
        }
        w_long(&in, 77);
        assert_int_equal(pass == 0 ? resolve_bytes(writer, reader, &in, &out, err)
                                   : resolve_bytes(holder, holder_reader, &in, &out, err),
                         LP_ERR);
        ASSERT_HAS(err, "nested deeper than 32 levels");
    }
    /* A record that holds only itself compiles; data for it cannot end. */
    assert_int_equal(
        resolve_bytes(J("{'type':'record','name':'S','fields':[{'name':'s','type':'S'}]}"),
                      J("{'type':'record','name':'S','fields':[{'name':'s','type':'S'}]}"), &in,
                      &out, err),
        LP_ERR);
    ASSERT_HAS(err, "nested deeper");
}

static void test_work_bounds(void **state) {
    const char *writer = J("{'type':'record','name':'R','fields':["
                           "{'name':'nulls','type':{'type':'array','items':'null'}},"
                           "{'name':'k','type':'int'}]}");
    const char *reader_keep = J("{'type':'record','name':'R','fields':["
                                "{'name':'nulls','type':{'type':'array','items':'null'}},"
                                "{'name':'k','type':'int'}]}");
    const char *reader_skip =
        J("{'type':'record','name':'R','fields':[{'name':'k','type':'int'}]}");
    char err[LP_ERRSTR];
    wb_t in = {.n = 0}, out;
    (void)state;

    /* 2^40 items of nothing in three bytes: refused, read or skipped, without looping. */
    w_long(&in, 1LL << 40);
    w_long(&in, 0);
    w_long(&in, 5);
    assert_int_equal(resolve_bytes(writer, reader_keep, &in, &out, err), LP_ERR);
    ASSERT_HAS(err, "record too complex to resolve");
    assert_int_equal(resolve_bytes(writer, reader_skip, &in, &out, err), LP_ERR);
    ASSERT_HAS(err, "record too complex to resolve");
    /* A reasonable count passes. */
    in.n = 0;
    w_long(&in, 1000);
    w_long(&in, 0);
    w_long(&in, 5);
    assert_int_equal(resolve_bytes(writer, reader_skip, &in, &out, err), LP_OK);
    /* Block headers: INT64_MIN and negative sizes. */
    in.n = 0;
    w_long(&in, INT64_MIN);
    assert_int_equal(resolve_bytes(writer, reader_skip, &in, &out, err), LP_ERR);
    ASSERT_HAS(err, "bad block header");
    in.n = 0;
    w_long(&in, -1);
    w_long(&in, -5);
    assert_int_equal(resolve_bytes(writer, reader_keep, &in, &out, err), LP_ERR);
    ASSERT_HAS(err, "bad block header");
}

/* ---- property: random evolutions of each input schema ---- */

static uint64_t prng;
static uint64_t seed;

static uint64_t rnd(void) {
    prng ^= prng << 13;
    prng ^= prng >> 7;
    prng ^= prng << 17;
    return prng;
}

static int rnd_n(int n) {
    return (int)(rnd() % (uint64_t)n);
}

typedef enum { V_STR, V_NAME, V_OPT_STR, V_LONG, V_OPT_LONG, V_BOOL, V_OUTCOME, V_REASON } vkind_t;

typedef struct {
    const char *name;
    vkind_t kind;
    size_t off;
    size_t max; /* strings: bytes */
} rfield_t;

#define EV(m) offsetof(lp_event_t, m)
static const rfield_t eng_fields[] = {
    {"event_id", V_STR, EV(event_id), LP_ID_MAX},
    {"lead_id", V_STR, EV(lead_id), LP_ID_MAX},
    {"ts", V_LONG, EV(ts_ms), 0},
    {"type", V_NAME, EV(u.engagement.type), LP_NAME_MAX},
    {"url", V_OPT_STR, EV(u.engagement.url), LP_URL_MAX},
    {"asset_id", V_OPT_STR, EV(u.engagement.asset_id), LP_ID_MAX},
    {"campaign_id", V_OPT_STR, EV(u.engagement.campaign_id), LP_ID_MAX},
    {"machine", V_BOOL, EV(u.engagement.machine), 0},
    {"seconds_since_send", V_OPT_LONG, EV(u.engagement.seconds_since_send), 0},
};
static const rfield_t profile_fields[] = {
    {"event_id", V_STR, EV(event_id), LP_ID_MAX},
    {"lead_id", V_STR, EV(lead_id), LP_ID_MAX},
    {"ts", V_LONG, EV(ts_ms), 0},
    {"email", V_OPT_STR, EV(u.profile.email), LP_STR_MAX},
    {"title", V_OPT_STR, EV(u.profile.title), LP_STR_MAX},
    {"seniority", V_OPT_STR, EV(u.profile.seniority), LP_NAME_MAX},
    {"industry", V_OPT_STR, EV(u.profile.industry), LP_NAME_MAX},
    {"company", V_OPT_STR, EV(u.profile.company), LP_STR_MAX},
    {"company_size", V_OPT_LONG, EV(u.profile.company_size), 0},
    {"country", V_OPT_STR, EV(u.profile.country), LP_NAME_MAX},
    {"region", V_OPT_STR, EV(u.profile.region), LP_NAME_MAX},
    {"persona", V_OPT_STR, EV(u.profile.persona), LP_NAME_MAX},
    {"segment", V_OPT_STR, EV(u.profile.segment), LP_NAME_MAX},
    {"owner", V_OPT_STR, EV(u.profile.owner), LP_STR_MAX},
};
static const rfield_t feedback_fields[] = {
    {"event_id", V_STR, EV(event_id), LP_ID_MAX},
    {"lead_id", V_STR, EV(lead_id), LP_ID_MAX},
    {"ts", V_LONG, EV(ts_ms), 0},
    {"outcome", V_OUTCOME, EV(u.feedback.outcome), 0},
    {"reason", V_REASON, EV(u.feedback.reason), 0},
    {"owner", V_OPT_STR, EV(u.feedback.owner), LP_STR_MAX},
};

/* How the writer declares one of our fields. */
typedef enum {
    R_OMIT, /* absent: the event holds the reader's default */
    R_STRING,
    R_BYTES,
    R_OPT_STRING,     /* [null, string] */
    R_OPT_STRING_REV, /* [string, null] */
    R_OPT_BYTES,      /* [null, bytes] */
    R_OPT3,           /* [null, int, string] */
    R_LONG,
    R_INT,
    R_OPT_LONG,     /* [null, long] */
    R_OPT_INT,      /* [null, int] */
    R_OPT_LONG_REV, /* [long, null] */
    R_BOOL,
    R_OPT_BOOL, /* [null, boolean] */
    R_ENUM,
} rep_t;

static const char *const rep_json[] = {
    [R_STRING] = "'string'",
    [R_BYTES] = "'bytes'",
    [R_OPT_STRING] = "['null','string']",
    [R_OPT_STRING_REV] = "['string','null']",
    [R_OPT_BYTES] = "['null','bytes']",
    [R_OPT3] = "['null','int','string']",
    [R_LONG] = "{'type':'long','logicalType':'timestamp-millis'}",
    [R_INT] = "'int'",
    [R_OPT_LONG] = "['null','long']",
    [R_OPT_INT] = "['null','int']",
    [R_OPT_LONG_REV] = "['long','null']",
    [R_BOOL] = "'boolean'",
    [R_OPT_BOOL] = "['null','boolean']",
};

static rep_t pick_rep(vkind_t kind) {
    static const rep_t str[] = {R_STRING, R_BYTES, R_OPT_STRING};
    static const rep_t opt_str[] = {R_OMIT,       R_STRING,         R_BYTES,     R_OPT_STRING,
                                    R_OPT_STRING, R_OPT_STRING_REV, R_OPT_BYTES, R_OPT3};
    static const rep_t lng[] = {R_LONG, R_INT, R_OPT_LONG_REV};
    static const rep_t opt_long[] = {R_OMIT, R_LONG, R_INT, R_OPT_LONG, R_OPT_INT, R_OPT_LONG_REV};
    static const rep_t boolean[] = {R_BOOL, R_OPT_BOOL, R_OMIT};

    switch (kind) {
    case V_STR:
    case V_NAME:
        return str[rnd_n(3)];
    case V_OPT_STR:
        return opt_str[rnd_n(8)];
    case V_LONG:
        return lng[rnd_n(3)];
    case V_OPT_LONG:
        return opt_long[rnd_n(6)];
    case V_BOOL:
        return boolean[rnd_n(3)];
    case V_OUTCOME:
        return R_ENUM;
    case V_REASON:
        return rnd_n(4) == 0 ? R_OMIT : R_ENUM;
    }
    return R_OMIT;
}

/* A random type of an added field, its JSON and random values of it. */
typedef struct rtype {
    lp_rs_kind_t kind;
    int id; /* named types: T<id> */
    int n;  /* fields, symbols, branches */
    int size;
    struct rtype *sub[4];
} rtype_t;

static rtype_t pool[512];
static int npool;
static int nnamed;

static rtype_t *gen_type(int depth, bool in_union) {
    rtype_t *t = &pool[npool++];
    int kinds = depth < 3 ? LP_RS_UNION + (in_union ? 0 : 1) : LP_RS_STRING + 1;

    assert_true(npool < 512);
    memset(t, 0, sizeof(*t));
    t->kind = (lp_rs_kind_t)rnd_n(kinds);
    switch (t->kind) {
    case LP_RS_RECORD:
    case LP_RS_ENUM:
    case LP_RS_FIXED:
        t->id = nnamed++;
        t->n = 1 + rnd_n(t->kind == LP_RS_RECORD ? 3 : 4);
        t->size = rnd_n(5);
        for (int i = 0; t->kind == LP_RS_RECORD && i < t->n; i++) {
            t->sub[i] = gen_type(depth + 1, false);
        }
        break;
    case LP_RS_ARRAY:
    case LP_RS_MAP:
        t->sub[0] = gen_type(depth + 1, false);
        break;
    case LP_RS_UNION:
        /* Distinct branches: null, then some of int, string, and a named record. */
        t->n = 0;
        t->sub[t->n++] = &pool[npool++];
        memset(t->sub[0], 0, sizeof(rtype_t));
        t->sub[0]->kind = LP_RS_NULL;
        if (rnd_n(2)) {
            t->sub[t->n] = &pool[npool++];
            memset(t->sub[t->n], 0, sizeof(rtype_t));
            t->sub[t->n++]->kind = LP_RS_STRING;
        }
        t->sub[t->n] = gen_type(depth + 1, true);
        if (t->sub[t->n]->kind > LP_RS_STRING) {
            t->n++;
        }
        break;
    default:
        break;
    }
    return t;
}

static const char *const kind_json[] = {"null",  "boolean", "int",   "long",
                                        "float", "double",  "bytes", "string"};

static void type_json(char *out, size_t size, const rtype_t *t) {
    size_t n = strlen(out);

    switch (t->kind) {
    case LP_RS_RECORD:
        snprintf(out + n, size - n, "{'type':'record','name':'T%d','fields':[", t->id);
        for (int i = 0; i < t->n; i++) {
            n = strlen(out);
            snprintf(out + n, size - n, "%s{'name':'f%d','doc':'x','type':", i ? "," : "", i);
            type_json(out, size, t->sub[i]);
            n = strlen(out);
            snprintf(out + n, size - n, "}");
        }
        n = strlen(out);
        snprintf(out + n, size - n, "]}");
        break;
    case LP_RS_ENUM:
        snprintf(out + n, size - n,
                 "{'type':'enum','name':'T%d','symbols':['S0','S1','S2','S3',"
                 "'S4']}",
                 t->id);
        break;
    case LP_RS_FIXED:
        snprintf(out + n, size - n, "{'type':'fixed','name':'T%d','size':%d}", t->id, t->size);
        break;
    case LP_RS_ARRAY:
    case LP_RS_MAP:
        snprintf(out + n, size - n, "{'type':'%s','%s':", t->kind == LP_RS_ARRAY ? "array" : "map",
                 t->kind == LP_RS_ARRAY ? "items" : "values");
        type_json(out, size, t->sub[0]);
        n = strlen(out);
        snprintf(out + n, size - n, "}");
        break;
    case LP_RS_UNION:
        snprintf(out + n, size - n, "[");
        for (int i = 0; i < t->n; i++) {
            n = strlen(out);
            snprintf(out + n, size - n, "%s", i ? "," : "");
            type_json(out, size, t->sub[i]);
        }
        n = strlen(out);
        snprintf(out + n, size - n, "]");
        break;
    default:
        snprintf(out + n, size - n, rnd_n(4) ? "'%s'" : "{'type':'%s','x-custom':[1,{}]}",
                 kind_json[t->kind]);
        break;
    }
}

static void write_value(wb_t *w, const rtype_t *t);

/* Arrays and maps in random blocks: plain, sized (negative count), or none. */
static void write_blocks(wb_t *w, const rtype_t *t) {
    int nblocks = rnd_n(3);

    for (int b = 0; b < nblocks; b++) {
        int count = 1 + rnd_n(3);
        wb_t block = {.n = 0};
        for (int i = 0; i < count; i++) {
            if (t->kind == LP_RS_MAP) {
                w_str(&block, "key");
            }
            write_value(&block, t->sub[0]);
        }
        if (rnd_n(2)) {
            w_long(w, -count);
            w_long(w, (int64_t)block.n);
        } else {
            w_long(w, count);
        }
        w_raw(w, block.b, block.n);
    }
    w_long(w, 0);
}

static void write_value(wb_t *w, const rtype_t *t) {
    uint8_t bytes[8];
    int k;

    for (int i = 0; i < 8; i++) {
        bytes[i] = (uint8_t)rnd();
    }
    switch (t->kind) {
    case LP_RS_NULL:
        break;
    case LP_RS_BOOLEAN:
        w_bool(w, rnd_n(2));
        break;
    case LP_RS_INT:
        w_long(w, (int32_t)rnd());
        break;
    case LP_RS_LONG:
        w_long(w, (int64_t)rnd());
        break;
    case LP_RS_FLOAT:
        w_raw(w, bytes, 4);
        break;
    case LP_RS_DOUBLE:
        w_raw(w, bytes, 8);
        break;
    case LP_RS_BYTES:
    case LP_RS_STRING:
        k = rnd_n(9);
        w_bytes(w, "abcdefgh", (size_t)k);
        break;
    case LP_RS_FIXED:
        w_raw(w, bytes, (size_t)t->size);
        break;
    case LP_RS_ENUM:
        w_long(w, rnd_n(5));
        break;
    case LP_RS_ARRAY:
    case LP_RS_MAP:
        write_blocks(w, t);
        break;
    case LP_RS_RECORD:
        for (int i = 0; i < t->n; i++) {
            write_value(w, t->sub[i]);
        }
        break;
    case LP_RS_UNION:
        k = rnd_n(t->n);
        w_long(w, k);
        write_value(w, t->sub[k]);
        break;
    }
}

/* One field of the writer schema: one of ours (reader >= 0) or an added one. */
typedef struct {
    int reader;
    rep_t rep;
    int perm[8];  /* enums: writer symbol i is reader symbol perm[i]; -1: an extra symbol */
    int nsymbols; /* enums */
    rtype_t *type;
} wfield_t;

typedef struct {
    lp_event_kind_t kind;
    const rfield_t *fields;
    int nfields;
    wfield_t w[32];
    int nw;
} evolution_t;

static const char *const outcome_symbols[] = {"ACCEPTED", "REJECTED", "RECYCLED", "WON", "LOST"};
static const char *const reason_symbols[] = {
    "NONE", "NO_BUDGET", "NOT_DECISION_MAKER", "BAD_DATA", "COMPETITOR", "TIMING", "OTHER"};

static void gen_enum(wfield_t *f, int nreader) {
    f->nsymbols = 0;
    for (int i = 0; i < nreader; i++) {
        f->perm[f->nsymbols++] = i;
    }
    if (rnd_n(2)) {
        f->perm[f->nsymbols++] = -1;
    }
    for (int i = f->nsymbols - 1; i > 0; i--) {
        int j = rnd_n(i + 1);
        int tmp = f->perm[i];
        f->perm[i] = f->perm[j];
        f->perm[j] = tmp;
    }
}

static void gen_evolution(evolution_t *ev, lp_event_kind_t kind) {
    static const rfield_t *const tables[] = {eng_fields, profile_fields, feedback_fields};
    static const int sizes[] = {9, 14, 6};
    int extras = rnd_n(5);

    memset(ev, 0, sizeof(*ev));
    npool = 0;
    nnamed = 0;
    ev->kind = kind;
    ev->fields = tables[kind];
    ev->nfields = sizes[kind];
    for (int i = 0; i < ev->nfields; i++) {
        wfield_t *f = &ev->w[ev->nw];
        f->reader = i;
        f->rep = pick_rep(ev->fields[i].kind);
        if (f->rep == R_ENUM) {
            gen_enum(f, ev->fields[i].kind == V_OUTCOME ? LP_FB__COUNT : LP_REJ__COUNT);
        }
        ev->nw += f->rep != R_OMIT;
    }
    for (int i = 0; i < extras; i++) {
        /* Inserted at a random place. */
        int at = rnd_n(ev->nw + 1);
        memmove(&ev->w[at + 1], &ev->w[at], sizeof(ev->w[0]) * (size_t)(ev->nw - at));
        memset(&ev->w[at], 0, sizeof(ev->w[0]));
        ev->w[at].reader = -1 - i;
        ev->w[at].type = gen_type(0, false);
        ev->nw++;
    }
    if (rnd_n(2)) {
        for (int i = ev->nw - 1; i > 0; i--) {
            int j = rnd_n(i + 1);
            wfield_t tmp = ev->w[i];
            ev->w[i] = ev->w[j];
            ev->w[j] = tmp;
        }
    }
}

static const wfield_t *wfield_of(const evolution_t *ev, int reader) {
    for (int i = 0; i < ev->nw; i++) {
        if (ev->w[i].reader == reader) {
            return &ev->w[i];
        }
    }
    return NULL;
}

static void evolution_json(const evolution_t *ev, char *out, size_t size) {
    static const char *const names[] = {"EngagementEvent", "LeadProfileUpdated", "SalesFeedback"};
    static const char *const spaces[] = {"io.leadpulse", "com.acme.v2", ""};
    size_t n;

    snprintf(out, size, "{'type':'record','name':'%s','namespace':'%s','fields':[", names[ev->kind],
             spaces[rnd_n(3)]);
    for (int i = 0; i < ev->nw; i++) {
        const wfield_t *f = &ev->w[i];
        n = strlen(out);
        if (f->reader < 0) {
            snprintf(out + n, size - n, "%s{'name':'x%d','type':", i ? "," : "", -f->reader);
            type_json(out, size, f->type);
        } else if (f->rep == R_ENUM) {
            bool outcome = ev->fields[f->reader].kind == V_OUTCOME;
            snprintf(out + n, size - n,
                     "%s{'name':'%s','type':{'type':'enum','name':'%s',"
                     "'symbols':[",
                     i ? "," : "", ev->fields[f->reader].name,
                     outcome ? "FeedbackOutcome" : "RejectReason");
            for (int s = 0; s < f->nsymbols; s++) {
                n = strlen(out);
                snprintf(out + n, size - n, "%s'%s'", s ? "," : "",
                         f->perm[s] < 0 ? "NEW_SYMBOL"
                         : outcome      ? outcome_symbols[f->perm[s]]
                                        : reason_symbols[f->perm[s]]);
            }
            n = strlen(out);
            snprintf(out + n, size - n, "]}");
        } else {
            snprintf(out + n, size - n, "%s{'name':'%s','type':%s", i ? "," : "",
                     ev->fields[f->reader].name, rep_json[f->rep]);
        }
        n = strlen(out);
        snprintf(out + n, size - n, "}");
    }
    n = strlen(out);
    snprintf(out + n, size - n, "]}");
    for (char *p = out; *p != '\0'; p++) {
        *p = *p == '\'' ? '"' : *p;
    }
}

/* Random text of 1..max bytes: ASCII with some multi-byte UTF-8, or an activity name. */
static void gen_text(char *dst, size_t max, bool name) {
    static const char *const pieces[] = {
        "a", "Z", "0", "-", "_", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    size_t want = 1 + (size_t)rnd_n(rnd_n(4) == 0 ? (int)max : (int)(max < 12 ? max : 12));
    size_t n = 0;

    while (n < want) {
        const char *p =
            name ? (const char *[]){"a", "q", "z", "0", "9", "_"}[rnd_n(6)] : pieces[rnd_n(8)];
        if (n + strlen(p) > max) {
            break;
        }
        memcpy(dst + n, p, strlen(p));
        n += strlen(p);
    }
    if (n == 0) {
        dst[n++] = 'x';
    }
    dst[n] = '\0';
}

/* A random event that the evolution's writer can write (absent fields hold the default, plain
 * types a value, int types an int). */
static void gen_event(const evolution_t *ev, lp_event_t *e) {
    lp_event_init(e, ev->kind);
    for (int i = 0; i < ev->nfields; i++) {
        const rfield_t *f = &ev->fields[i];
        const wfield_t *w = wfield_of(ev, i);
        rep_t rep = w != NULL ? w->rep : R_OMIT;
        char *s = (char *)e + f->off;
        int64_t *v = (int64_t *)(void *)((char *)e + f->off);
        switch (f->kind) {
        case V_STR:
        case V_NAME:
        case V_OPT_STR:
            s[0] = '\0';
            if (f->kind != V_OPT_STR || rep == R_STRING || rep == R_BYTES ||
                (rep != R_OMIT && rnd_n(2))) {
                gen_text(s, f->max, f->kind == V_NAME);
            }
            break;
        case V_LONG:
        case V_OPT_LONG:
            *v = -1;
            if (f->kind == V_LONG || rep == R_LONG || rep == R_INT || (rep != R_OMIT && rnd_n(2))) {
                bool small = rep == R_INT || rep == R_OPT_INT || rnd_n(2);
                *v = (int64_t)(rnd() % (uint64_t)(small ? INT32_MAX : LP_CODEC_TS_MAX));
            }
            break;
        case V_BOOL:
            *(bool *)s = rep != R_OMIT && rnd_n(2);
            break;
        case V_OUTCOME:
            e->u.feedback.outcome = (lp_feedback_outcome_t)rnd_n(LP_FB__COUNT);
            break;
        case V_REASON:
            e->u.feedback.reason =
                rep == R_OMIT ? LP_REJ_NONE : (lp_reject_reason_t)rnd_n(LP_REJ__COUNT);
            break;
        }
    }
}

static void write_enum(wb_t *w, const wfield_t *f, int value, int reader_default) {
    int extra = -1;

    for (int s = 0; s < f->nsymbols; s++) {
        if (f->perm[s] < 0) {
            extra = s;
        }
    }
    /* The reader's default may come from a symbol it does not know. */
    if (value == reader_default && extra >= 0 && rnd_n(2)) {
        w_long(w, extra);
        return;
    }
    for (int s = 0; s < f->nsymbols; s++) {
        if (f->perm[s] == value) {
            w_long(w, s);
        }
    }
}

static void write_ours(wb_t *w, const evolution_t *ev, const wfield_t *f, const lp_event_t *e) {
    const rfield_t *rf = &ev->fields[f->reader];
    const char *s = (const char *)e + rf->off;
    int64_t v = 0;
    bool set;

    if (rf->kind == V_LONG || rf->kind == V_OPT_LONG) {
        memcpy(&v, s, sizeof(v));
    }
    switch (f->rep) {
    case R_STRING:
    case R_BYTES:
        w_str(w, s);
        break;
    case R_OPT_STRING:
    case R_OPT_BYTES:
    case R_OPT3:
        set = s[0] != '\0' || rf->kind != V_OPT_STR;
        w_long(w, set ? (f->rep == R_OPT3 ? 2 : 1) : 0);
        if (set) {
            w_str(w, s);
        }
        break;
    case R_OPT_STRING_REV:
        w_long(w, s[0] == '\0');
        if (s[0] != '\0') {
            w_str(w, s);
        }
        break;
    case R_LONG:
    case R_INT:
        w_long(w, v);
        break;
    case R_OPT_LONG:
    case R_OPT_INT:
        w_opt_long(w, v);
        break;
    case R_OPT_LONG_REV:
        w_long(w, v < 0);
        if (v >= 0) {
            w_long(w, v);
        }
        break;
    case R_BOOL:
        w_bool(w, *(const bool *)s);
        break;
    case R_OPT_BOOL:
        w_long(w, 1);
        w_bool(w, *(const bool *)s);
        break;
    case R_ENUM:
        if (rf->kind == V_OUTCOME) {
            write_enum(w, f, (int)e->u.feedback.outcome, LP_FB_RECYCLED);
        } else {
            write_enum(w, f, (int)e->u.feedback.reason, LP_REJ_OTHER);
        }
        break;
    case R_OMIT:
        break;
    }
}

static void test_property_random_evolutions(void **state) {
    static char json[32768];
    const char *env = getenv("LP_SEED");
    int evolutions = 0, resolved = 0;
    (void)state;

    seed =
        env != NULL ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    prng = seed | 1;
    fprintf(stderr, "test_property_random_evolutions: LP_SEED=%llu\n", (unsigned long long)seed);
    for (int round = 0; round < 600; round++) {
        evolution_t ev;
        char err[LP_ERRSTR];
        gen_evolution(&ev, (lp_event_kind_t)(round % 3));
        evolution_json(&ev, json, sizeof(json));
        if (add(7000, json, err) != LP_OK) {
            fprintf(stderr, "LP_SEED=%llu round %d: %s\nschema: %s\n", (unsigned long long)seed,
                    round, err, json);
            fail();
        }
        evolutions++;
        resolved += lp_avro_codec_id_state(codec, 7000, NULL) == LP_AVRO_ID_RESOLVED;
        for (int i = 0; i < 10; i++) {
            lp_event_t want, got;
            wb_t w;
            gen_event(&ev, &want);
            w_frame(&w, 7000);
            for (int f = 0; f < ev.nw; f++) {
                if (ev.w[f].reader < 0) {
                    write_value(&w, ev.w[f].type);
                } else {
                    write_ours(&w, &ev, &ev.w[f], &want);
                }
            }
            if (dec(&w, &got, err) != LP_OK || memcmp(&got, &want, sizeof(got)) != 0) {
                fprintf(stderr, "LP_SEED=%llu round %d event %d: %s\nschema: %s\n",
                        (unsigned long long)seed, round, i, err, json);
                fix_event_equal(&got, &want);
                fail();
            }
        }
    }
    assert_true(resolved > evolutions / 2);
}

/* ---- cost ---- */

static double ns_per_decode(const wb_t *w, int n) {
    struct timespec t0, t1;
    lp_event_t ev;
    char err[LP_ERRSTR];

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(lp_avro_decode_event(codec, w->b, w->n, -1, &ev, err, sizeof(err)), LP_OK);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
}

/* Prints the cost of each path for a fully populated EngagementEvent (no assertion on time). */
static void test_decode_cost(void **state) {
    lp_event_t ev;
    uint8_t buf[4096];
    wb_t fast, added, reordered;
    size_t n;
    const int rounds = 100000;
    (void)state;

    fix_event(&ev, LP_EV_ENGAGEMENT, 1);
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
    fast.n = 0;
    w_raw(&fast, buf, n);
    /* Two added fields (a string, a map) and url as [null, string, int]. */
    add_ok(1200, eng_schema(F_HEAD "," F_TYPE ",{'name':'url','type':['null','string','int']},"
                                   "{'name':'x_src','type':'string'}," F_ASSET "," F_CAMPAIGN
                                   "," F_MACHINE ",{'name':'x_tags','type':{'type':'map','values':"
                                   "'long'}}," F_SSS));
    w_frame(&added, 1200);
    w_header(&added, &ev);
    w_str(&added, ev.u.engagement.type);
    w_opt_str(&added, ev.u.engagement.url);
    w_str(&added, "crm");
    w_opt_str(&added, ev.u.engagement.asset_id);
    w_opt_str(&added, ev.u.engagement.campaign_id);
    w_bool(&added, ev.u.engagement.machine);
    w_long(&added, 1);
    w_str(&added, "k");
    w_long(&added, 1);
    w_long(&added, 0);
    w_opt_long(&added, ev.u.engagement.seconds_since_send);
    /* Every field in reverse order: two passes. */
    add_ok(1201, eng_schema(F_SSS "," F_MACHINE "," F_CAMPAIGN "," F_ASSET "," F_URL "," F_TYPE
                                  "," F_TS "," F_LEAD_ID "," F_EVENT_ID));
    w_frame(&reordered, 1201);
    w_opt_long(&reordered, ev.u.engagement.seconds_since_send);
    w_bool(&reordered, ev.u.engagement.machine);
    w_opt_str(&reordered, ev.u.engagement.campaign_id);
    w_opt_str(&reordered, ev.u.engagement.asset_id);
    w_opt_str(&reordered, ev.u.engagement.url);
    w_str(&reordered, ev.u.engagement.type);
    w_long(&reordered, ev.ts_ms);
    w_str(&reordered, ev.lead_id);
    w_str(&reordered, ev.event_id);
    decode_equal(&added, &ev);
    decode_equal(&reordered, &ev);
    ns_per_decode(&fast, rounds / 10); /* warm up */
    fprintf(stderr,
            "decode ns/record: fast path %.0f, resolved (fields added) %.0f, resolved (reversed "
            "order) %.0f\n",
            ns_per_decode(&fast, rounds), ns_per_decode(&added, rounds),
            ns_per_decode(&reordered, rounds));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical_schema_is_direct),
        cmocka_unit_test(test_doc_only_change_is_direct),
        cmocka_unit_test(test_added_fields_skipped),
        cmocka_unit_test(test_reader_defaults),
        cmocka_unit_test(test_reordered_fields),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_promotions),
        cmocka_unit_test(test_string_as_bytes),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_writer_union_branches),
        cmocka_unit_test(test_incompatible),
        cmocka_unit_test(test_malformed_schemas),
        cmocka_unit_test(test_configured_and_wrong_kind),
        cmocka_unit_test(test_id_table_limit),
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_defaults_of_every_type),
        cmocka_unit_test(test_generic_resolution),
        cmocka_unit_test(test_recursive_types),
        cmocka_unit_test(test_work_bounds),
        cmocka_unit_test(test_property_random_evolutions),
        cmocka_unit_test(test_decode_cost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
