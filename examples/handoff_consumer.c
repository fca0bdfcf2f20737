/* handoff-consumer: what a CRM team writes to receive leadpulse hand-offs.
 *
 * Reads LeadQualified / LeadStale / LeadErased records from the output topics (and, with
 * --accounts, the account hand-offs AccountQualified / AccountStale from leads.mqa and
 * leads.account_stale: docs/schemas.md, "Account hand-offs"), checks the
 * Confluent framing (magic byte 0, 4-byte big-endian schema id), decodes the Avro body (avro-c
 * generic API) and prints each hand-off as one JSON line. It uses only librdkafka, avro-c, libcurl
 * and the schema files: nothing from leadpulse itself. Two ways to know the writer schema of a
 * record:
 *
 *   - fixed ids (default): the schemas are loaded from the .avsc files and the id in the framing
 *     picks one (--id-qualified, --id-stale, --id-erased: the worker's schema_id.*, default 4, 5
 *     and 6; with --accounts also AccountQualified.avsc and AccountStale.avsc:
 *     --id-account-qualified and --id-account-stale, default 7 and 8);
 *
 *       handoff-consumer --brokers HOST:PORT --schemas schemas/ --from-beginning \
 *           --exit-when-idle 2000
 *
 *   - through a Schema Registry (--registry URL[,URL...], Confluent's API): for an id it has not
 *     seen, the consumer asks GET <url>/schemas/ids/<id> (libcurl; the next URL on a connection
 *     failure or a 5xx answer), parses the answer's "schema" with avro-c and decodes the body with
 *     that writer schema, as Confluent's deserializers do; schemas are cached per id. A record
 *     whose writer schema is not one of the five hand-offs (LeadQualified, LeadStale,
 *     LeadErased, AccountQualified, AccountStale), or whose id the registry
 *     does not know (404: "schema id N unknown to the registry"), is an error line; while no URL
 *     answers, the record is retried with backoff and becomes an error line after
 *     REGISTRY_ATTEMPTS attempts (never silently skipped). Basic auth: --registry-user and
 *     the environment variable HANDOFF_REGISTRY_PASSWORD; --registry-ca FILE for an https://
 *     registry.
 *
 *       handoff-consumer --brokers HOST:PORT --registry http://registry:8081 --group crm-sync
 *
 * Duplicates (the same event_id after a worker crash) are printed as they arrive: de-duplicate by
 * event_id downstream (see examples/README-consumers.md). A LeadErased record ("type":
 * "LeadErased") asks the CRM to erase or anonymise the person: this example only prints it. An
 * account hand-off is keyed by the account ("domain:acme.com", "id:ACME-7"), not by a lead; its
 * "members" array names the leads (lead_id) sales should contact first. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <avro.h>
#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#define MAX_TOPICS 16
#define MAX_SCHEMAS 5 /* the three lead hand-offs, then the two account hand-offs */
#define FIRST_ACCOUNT_SCHEMA 3
#define MAX_URLS 16
/* Schema Registry requests: per URL (connect and answer), the most an answer may hold, and how
 * often a record is tried while no URL answers (waits of 0.5, 1, 2, 4 s in between). */
#define REGISTRY_TIMEOUT_MS 10000L
#define REGISTRY_MAX_ANSWER (4 << 20)
#define REGISTRY_ATTEMPTS 5
#define REGISTRY_FIRST_WAIT_MS 500

typedef struct {
    const char *file; /* LeadQualified.avsc, LeadStale.avsc, LeadErased.avsc, Account*.avsc */
    const char *type; /* printed as "type" */
    int32_t id;       /* Schema Registry id the worker writes (schema_id.* in its config) */
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    bool have_value;
} schema_t;

/* A writer schema fetched from the registry, by id. */
typedef struct {
    schema_t s;  /* s.type: the writer record's name (owned by s.schema) */
    char *error; /* not NULL: every record with this id is an error line with this reason */
} cached_t;

typedef struct {
    char *urls[MAX_URLS]; /* without a trailing / */
    int nurls;
    int current; /* the URL that answered last: asked first */
    const char *user;
    const char *password; /* HANDOFF_REGISTRY_PASSWORD */
    const char *ca_file;
    CURL *curl;
    cached_t *cache;
    size_t ncache, cap;
} registry_t;

typedef struct {
    const char *brokers;
    const char *schema_dir;
    const char *topics[MAX_TOPICS];
    int ntopics;
    const char *group; /* NULL: --from-beginning, no group, all partitions assigned */
    int idle_ms;       /* exit after this long without a record; 0 = never */
    long count;        /* exit after this many records; 0 = never */
    bool raw;          /* print records undecoded (value as hex): for the dead-letter topic */
    bool accounts;     /* --accounts: the account hand-offs too */
    schema_t schemas[MAX_SCHEMAS];
    bool fixed_ids_set; /* --id-qualified / --id-stale / --id-erased / --id-account-* given */
    registry_t reg;     /* reg.nurls > 0: --registry, the ids are the registry's */
} opts_t;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- JSON output ---- */

static void json_str(FILE *out, const char *s, size_t len) {
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

static void json_hex(FILE *out, const void *buf, size_t len) {
    const unsigned char *p = buf;
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        fprintf(out, "%02x", p[i]);
    }
    fputc('"', out);
}

/* Writes an Avro value as plain JSON: unions as their branch's value (null or the value), enums as
 * their symbol, doubles with 17 significant digits (they read back to the same bits). */
static int json_value(FILE *out, const avro_value_t *value) {
    switch (avro_value_get_type(value)) {
    case AVRO_NULL:
        fputs("null", out);
        return 0;
    case AVRO_BOOLEAN: {
        int b = 0;
        avro_value_get_boolean(value, &b);
        fputs(b ? "true" : "false", out);
        return 0;
    }
    case AVRO_INT32: {
        int32_t i = 0;
        avro_value_get_int(value, &i);
        fprintf(out, "%" PRId32, i);
        return 0;
    }
    case AVRO_INT64: {
        int64_t l = 0;
        avro_value_get_long(value, &l);
        fprintf(out, "%" PRId64, l);
        return 0;
    }
    case AVRO_FLOAT: {
        float f = 0;
        avro_value_get_float(value, &f);
        fprintf(out, "%.9g", (double)f);
        return 0;
    }
    case AVRO_DOUBLE: {
        double d = 0;
        avro_value_get_double(value, &d);
        fprintf(out, "%.17g", d);
        return 0;
    }
    case AVRO_STRING: {
        const char *s = NULL;
        size_t size = 0;
        avro_value_get_string(value, &s, &size);
        json_str(out, s, size > 0 ? size - 1 : 0); /* size counts the NUL */
        return 0;
    }
    case AVRO_BYTES:
    case AVRO_FIXED: {
        const void *b = NULL;
        size_t size = 0;
        if (avro_value_get_type(value) == AVRO_BYTES) {
            avro_value_get_bytes(value, &b, &size);
        } else {
            avro_value_get_fixed(value, &b, &size);
        }
        json_hex(out, b, size);
        return 0;
    }
    case AVRO_ENUM: {
        int sym = 0;
        avro_value_get_enum(value, &sym);
        const char *name = avro_schema_enum_get(avro_value_get_schema(value), sym);
        json_str(out, name ? name : "?", name ? strlen(name) : 1);
        return 0;
    }
    case AVRO_UNION: {
        avro_value_t branch;
        if (avro_value_get_current_branch(value, &branch) != 0) {
            return -1;
        }
        return json_value(out, &branch);
    }
    case AVRO_ARRAY: {
        size_t n = 0;
        avro_value_get_size(value, &n);
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            avro_value_t item;
            if (avro_value_get_by_index(value, i, &item, NULL) != 0) {
                return -1;
            }
            if (i > 0) {
                fputc(',', out);
            }
            if (json_value(out, &item) != 0) {
                return -1;
            }
        }
        fputc(']', out);
        return 0;
    }
    case AVRO_RECORD: {
        size_t n = 0;
        avro_value_get_size(value, &n);
        fputc('{', out);
        for (size_t i = 0; i < n; i++) {
            avro_value_t field;
            const char *name = NULL;
            if (avro_value_get_by_index(value, i, &field, &name) != 0) {
                return -1;
            }
            if (i > 0) {
                fputc(',', out);
            }
            json_str(out, name, strlen(name));
            fputc(':', out);
            if (json_value(out, &field) != 0) {
                return -1;
            }
        }
        fputc('}', out);
        return 0;
    }
    default:
        fputs("null", out); /* maps never occur in the hand-off schemas */
        return 0;
    }
}

static void json_headers(FILE *out, const rd_kafka_message_t *msg) {
    rd_kafka_headers_t *hdrs = NULL;
    fputs("\"headers\":{", out);
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            if (i > 0) {
                fputc(',', out);
            }
            json_str(out, name, strlen(name));
            fputc(':', out);
            if (val == NULL) {
                fputs("null", out);
            } else {
                json_str(out, val, size);
            }
        }
    }
    fputc('}', out);
}

static void json_source(FILE *out, const rd_kafka_message_t *msg) {
    fputs("\"topic\":", out);
    const char *topic = rd_kafka_topic_name(msg->rkt);
    json_str(out, topic, strlen(topic));
    fprintf(out, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"key\":", msg->partition,
            msg->offset);
    if (msg->key == NULL) {
        fputs("null", out);
    } else {
        json_str(out, msg->key, msg->key_len);
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(msg, &tstype);
    fprintf(out, ",\"kafka_ts\":%" PRId64 ",", ts);
    json_headers(out, msg);
}

/* ---- decoding ---- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;
    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        goto err;
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        goto err;
    }
    buf[size] = '\0';
    *len = (size_t)size;
    fclose(f);
    return buf;
err:
    free(buf);
    fclose(f);
    return NULL;
}

/* The generic value records of s->schema are read into. */
static int schema_prepare(schema_t *s) {
    s->iface = avro_generic_class_from_schema(s->schema);
    if (s->iface == NULL || avro_generic_value_new(s->iface, &s->value) != 0) {
        return -1;
    }
    s->have_value = true;
    return 0;
}

static void schema_free(schema_t *s) {
    if (s->have_value) {
        avro_value_decref(&s->value);
        s->have_value = false;
    }
    if (s->iface != NULL) {
        avro_value_iface_decref(s->iface);
        s->iface = NULL;
    }
    if (s->schema != NULL) {
        avro_schema_decref(s->schema);
        s->schema = NULL;
    }
}

static int load_schemas(opts_t *o) {
    /* The account schemas only with --accounts: a schema folder of a release before them works
     * for the lead hand-offs. */
    int n = o->accounts ? MAX_SCHEMAS : FIRST_ACCOUNT_SCHEMA;
    for (int i = 0; i < n; i++) {
        schema_t *s = &o->schemas[i];
        char path[4096];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", o->schema_dir, s->file);
        char *json = read_file(path, &len);
        if (json == NULL) {
            fprintf(stderr, "handoff-consumer: cannot read %s: %s\n", path, strerror(errno));
            return -1;
        }
        int rc = avro_schema_from_json_length(json, len, &s->schema);
        free(json);
        if (rc != 0) {
            fprintf(stderr, "handoff-consumer: %s: %s\n", path, avro_strerror());
            return -1;
        }
        if (schema_prepare(s) != 0) {
            fprintf(stderr, "handoff-consumer: %s: %s\n", path, avro_strerror());
            return -1;
        }
    }
    return 0;
}

static void free_schemas(opts_t *o) {
    for (int i = 0; i < MAX_SCHEMAS; i++) {
        schema_free(&o->schemas[i]);
    }
}

/* ---- the registry's answer: a small, strict JSON reader ---- */

typedef struct {
    const char *p, *end;
} jcur_t;

static void j_ws(jcur_t *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

static int j_hex4(jcur_t *c, unsigned *v) {
    if (c->end - c->p < 4) {
        return -1;
    }
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char h = *c->p++;
        *v <<= 4;
        if (h >= '0' && h <= '9') {
            *v |= (unsigned)(h - '0');
        } else if (h >= 'a' && h <= 'f') {
            *v |= (unsigned)(h - 'a' + 10);
        } else if (h >= 'A' && h <= 'F') {
            *v |= (unsigned)(h - 'A' + 10);
        } else {
            return -1;
        }
    }
    return 0;
}

/* Appends code point cp as UTF-8; returns the bytes written (at most 4). */
static size_t utf8_put(char *out, unsigned cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A JSON string at c->p, unescaped into a new NUL-terminated buffer (*out, *len). Every escape
 * of RFC 8259: \" \\ \/ \b \f \n \r \t and \uXXXX, a surrogate pair as one code point in UTF-8.
 * Refused: raw control characters, lone or reversed surrogates, \u0000 (no schema holds a NUL),
 * unknown escapes, a missing closing quote. Other bytes are copied as they are. */
static int j_string(jcur_t *c, char **out, size_t *len) {
    if (c->p >= c->end || *c->p != '"') {
        return -1;
    }
    c->p++;
    /* Unescaping never makes a string longer: \uXXXX (6 bytes) gives at most 3, a pair (12)
     * gives 4, the others 2 -> 1. */
    char *buf = malloc((size_t)(c->end - c->p) + 1);
    size_t n = 0;
    if (buf == NULL) {
        return -1;
    }
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') {
            buf[n] = '\0';
            *out = buf;
            *len = n;
            return 0;
        }
        if (ch < 0x20) {
            break;
        }
        if (ch != '\\') {
            buf[n++] = (char)ch;
            continue;
        }
        if (c->p >= c->end) {
            break;
        }
        ch = (unsigned char)*c->p++;
        const char *simple = strchr("\"\\/bfnrt", ch);
        if (ch != '\0' && ch != 'u' && simple != NULL) {
            buf[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        unsigned cp = 0, lo = 0;
        if (ch != 'u' || j_hex4(c, &cp) != 0 || cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff)) {
            break;
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u') {
                break;
            }
            c->p += 2;
            if (j_hex4(c, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
                break;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        n += utf8_put(buf + n, cp);
    }
    free(buf);
    return -1;
}

/* Skips one JSON value (nested at most 64 deep). */
static int j_skip(jcur_t *c, int depth) {
    j_ws(c);
    if (c->p >= c->end || depth > 64) {
        return -1;
    }
    char open = *c->p;
    if (open == '"') {
        char *s = NULL;
        size_t n = 0;
        if (j_string(c, &s, &n) != 0) {
            return -1;
        }
        free(s);
        return 0;
    }
    if (open == '{' || open == '[') {
        char close = open == '{' ? '}' : ']';
        c->p++;
        j_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        for (;;) {
            if (open == '{') {
                char *key = NULL;
                size_t n = 0;
                j_ws(c);
                if (j_string(c, &key, &n) != 0) {
                    return -1;
                }
                free(key);
                j_ws(c);
                if (c->p >= c->end || *c->p != ':') {
                    return -1;
                }
                c->p++;
            }
            if (j_skip(c, depth + 1) != 0) {
                return -1;
            }
            j_ws(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                continue;
            }
            if (c->p < c->end && *c->p == close) {
                c->p++;
                return 0;
            }
            return -1;
        }
    }
    /* A number or true / false / null: a run of the characters they are made of. */
    const char *start = c->p;
    while (c->p < c->end && strchr("+-.0123456789eEtruefalsn", *c->p) != NULL && *c->p != '\0') {
        c->p++;
    }
    if (c->p == start) {
        return -1;
    }
    size_t n = (size_t)(c->p - start);
    bool literal = (n == 4 && (memcmp(start, "true", 4) == 0 || memcmp(start, "null", 4) == 0)) ||
                   (n == 5 && memcmp(start, "false", 5) == 0);
    return literal || strchr("-0123456789", *start) != NULL ? 0 : -1;
}

/* Reads GET /schemas/ids/{id}'s answer: {"schema": "<the schema as a JSON string>",
 * "schemaType": "AVRO" (absent for Avro), "references": [...], ...}. Sets *schema (to free),
 * and *type (to free; NULL when absent). Returns 0, or -1 if the answer is not such an object. */
static int parse_answer(const char *body, size_t len, char **schema, size_t *schema_len,
                        char **type) {
    jcur_t c = {body, body + len};
    *schema = NULL;
    *type = NULL;
    j_ws(&c);
    if (c.p >= c.end || *c.p != '{') {
        return -1;
    }
    c.p++;
    j_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            char *key = NULL;
            size_t n = 0;
            j_ws(&c);
            if (j_string(&c, &key, &n) != 0) {
                goto bad;
            }
            j_ws(&c);
            if (c.p >= c.end || *c.p != ':') {
                free(key);
                goto bad;
            }
            c.p++;
            j_ws(&c);
            char **into = NULL;
            if (strlen(key) == n && strcmp(key, "schema") == 0) {
                into = schema;
            } else if (strlen(key) == n && strcmp(key, "schemaType") == 0) {
                into = type;
            }
            free(key);
            if (into != NULL) {
                size_t vlen = 0;
                free(*into); /* a repeated member: the last one counts */
                *into = NULL;
                if (j_string(&c, into, &vlen) != 0) {
                    goto bad;
                }
                if (into == schema) {
                    *schema_len = vlen;
                }
            } else if (j_skip(&c, 1) != 0) {
                goto bad;
            }
            j_ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (c.p < c.end && *c.p == '}') {
                c.p++;
                break;
            }
            goto bad;
        }
    }
    j_ws(&c);
    if (c.p == c.end && *schema != NULL) {
        return 0;
    }
bad:
    free(*schema);
    free(*type);
    *schema = NULL;
    *type = NULL;
    return -1;
}

/* ---- the Schema Registry (Confluent's API) ---- */

typedef struct {
    char *data;
    size_t len, cap;
    bool too_big;
} answer_t;

static size_t on_answer(char *ptr, size_t size, size_t nmemb, void *userdata) {
    answer_t *a = userdata;
    size_t add = size * nmemb;
    if (a->len + add > REGISTRY_MAX_ANSWER) {
        a->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (a->len + add + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->len + add + 1) {
            cap *= 2;
        }
        char *p = realloc(a->data, cap);
        if (p == NULL) {
            return 0;
        }
        a->data = p;
        a->cap = cap;
    }
    memcpy(a->data + a->len, ptr, add);
    a->len += add;
    a->data[a->len] = '\0';
    return add;
}

/* GET <url>/schemas/ids/<id>, trying the URLs in turn from the one that answered last. Returns
 * the HTTP status (< 500) with the answer in *out (to free), or 0 when no URL answered (connection
 * failure, timeout, 5xx): errstr then says what the last URL did. */
static long registry_get(registry_t *r, int32_t id, answer_t *out, char *errstr, size_t size) {
    snprintf(errstr, size, "no URL");
    for (int tried = 0; tried < r->nurls; tried++) {
        int u = (r->current + tried) % r->nurls;
        char url[4096];
        snprintf(url, sizeof(url), "%s/schemas/ids/%" PRId32, r->urls[u], id);
        answer_t a = {0};
        struct curl_slist *hdrs =
            curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json");
        CURL *c = r->curl;
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_answer);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REGISTRY_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, REGISTRY_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        if (r->user != NULL) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERNAME, r->user);
            curl_easy_setopt(c, CURLOPT_PASSWORD, r->password != NULL ? r->password : "");
        }
        if (r->ca_file != NULL) {
            curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
        }
        CURLcode rc = curl_easy_perform(c);
        curl_slist_free_all(hdrs);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK && status > 0 && status < 500) {
            r->current = u;
            *out = a;
            return status;
        }
        if (rc != CURLE_OK) {
            snprintf(errstr, size, "%s: %s", r->urls[u],
                     a.too_big ? "answer larger than 4 MiB" : curl_easy_strerror(rc));
        } else {
            snprintf(errstr, size, "%s: HTTP %ld", r->urls[u], status);
        }
        free(a.data);
    }
    return 0;
}

/* Whether a writer record name is one of the hand-offs this consumer prints. */
static bool is_handoff(const char *name) {
    static const char *const names[] = {"LeadQualified", "LeadStale", "LeadErased",
                                        "AccountQualified", "AccountStale"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* A new cache entry for id from the registry's 200 answer: the writer schema, or the reason its
 * records are error lines (the schema of an id never changes). NULL only when out of memory. */
static cached_t *registry_remember(registry_t *r, int32_t id, const answer_t *a) {
    if (r->ncache == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        cached_t *p = realloc(r->cache, cap * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        r->cache = p;
        r->cap = cap;
    }
    cached_t *e = &r->cache[r->ncache];
    memset(e, 0, sizeof(*e));
    e->s.id = id;
    char why[512] = "";
    char *schema = NULL, *type = NULL;
    size_t len = 0;
    if (a->data == NULL || parse_answer(a->data, a->len, &schema, &len, &type) != 0) {
        snprintf(why, sizeof(why),
                 "the registry's answer for schema id %" PRId32 " is not an object with a "
                 "\"schema\" string",
                 id);
    } else if (type != NULL && strcmp(type, "AVRO") != 0) {
        snprintf(why, sizeof(why), "schema id %" PRId32 " is a %.64s schema, not Avro", id, type);
    } else if (avro_schema_from_json_length(schema, len, &e->s.schema) != 0) {
        e->s.schema = NULL;
        snprintf(why, sizeof(why), "writer schema of id %" PRId32 " does not parse: %.300s", id,
                 avro_strerror());
    } else if (!is_avro_record(e->s.schema) || !is_handoff(avro_schema_name(e->s.schema))) {
        snprintf(why, sizeof(why),
                 "writer schema of id %" PRId32
                 " is %.100s, not LeadQualified, LeadStale, LeadErased, AccountQualified or "
                 "AccountStale",
                 id,
                 is_avro_record(e->s.schema) ? avro_schema_name(e->s.schema)
                                             : avro_schema_type_name(e->s.schema));
    } else if (schema_prepare(&e->s) != 0) {
        snprintf(why, sizeof(why), "writer schema of id %" PRId32 ": %.300s", id, avro_strerror());
    } else {
        e->s.type = avro_schema_name(e->s.schema);
    }
    free(schema);
    free(type);
    if (why[0] != '\0') {
        schema_free(&e->s);
        e->error = strdup(why);
        if (e->error == NULL) {
            return NULL;
        }
    }
    r->ncache++;
    return e;
}

static bool sleep_ms(long ms) {
    for (long waited = 0; waited < ms && !stop_flag; waited += 100) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return !stop_flag;
}

/* The writer schema of id for msg, from the cache or the registry. NULL: the record is an error
 * line with the reason in why. While no registry URL answers, the record is tried
 * REGISTRY_ATTEMPTS times with a doubling wait in between (each failure on stderr). */
static schema_t *registry_schema(registry_t *r, const rd_kafka_message_t *msg, int32_t id,
                                 char *why, size_t size) {
    for (size_t i = 0; i < r->ncache; i++) {
        if (r->cache[i].s.id == id) {
            if (r->cache[i].error != NULL) {
                snprintf(why, size, "%s", r->cache[i].error);
                return NULL;
            }
            return &r->cache[i].s;
        }
    }
    char last[1024] = "";
    long wait_ms = REGISTRY_FIRST_WAIT_MS;
    for (int attempt = 1; attempt <= REGISTRY_ATTEMPTS; attempt++) {
        answer_t a = {0};
        long status = registry_get(r, id, &a, last, sizeof(last));
        if (status == 404) {
            /* Not cached, as Confluent's clients do not: a registry may learn the id later
             * (a follower that lags behind its leader). */
            snprintf(why, size, "schema id %" PRId32 " unknown to the registry", id);
            free(a.data);
            return NULL;
        }
        if (status == 200) {
            cached_t *e = registry_remember(r, id, &a);
            free(a.data);
            if (e == NULL) {
                snprintf(why, size, "out of memory");
                return NULL;
            }
            if (e->error != NULL) {
                snprintf(why, size, "%s", e->error);
                return NULL;
            }
            return &e->s;
        }
        if (status > 0) {
            /* 401, 403, ...: not cached (credentials may be fixed), not retried. */
            snprintf(why, size, "the registry answered HTTP %ld for schema id %" PRId32 ": %.200s",
                     status, id, a.data != NULL ? a.data : "");
            free(a.data);
            return NULL;
        }
        fprintf(stderr,
                "handoff-consumer: %s [%" PRId32 "] offset %" PRId64
                ": schema registry unreachable for schema id %" PRId32 " (%s)%s\n",
                rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, id, last,
                attempt < REGISTRY_ATTEMPTS ? "; retrying" : "; giving up on this record");
        if (attempt < REGISTRY_ATTEMPTS && !sleep_ms(wait_ms)) {
            break;
        }
        wait_ms *= 2;
    }
    snprintf(why, size, "schema registry unreachable for schema id %" PRId32 " (%s)", id, last);
    return NULL;
}

static void registry_free(registry_t *r) {
    for (size_t i = 0; i < r->ncache; i++) {
        schema_free(&r->cache[i].s);
        free(r->cache[i].error);
    }
    free(r->cache);
    for (int i = 0; i < r->nurls; i++) {
        free(r->urls[i]);
    }
    if (r->curl != NULL) {
        curl_easy_cleanup(r->curl);
    }
}

/* Decodes and prints one record. Returns 0, or -1 with a reason printed to stderr (the record is
 * then printed as an "error" line so nothing is silently skipped). */
static int handle(opts_t *o, const rd_kafka_message_t *msg) {
    const uint8_t *p = msg->payload;
    const char *why = NULL;
    char why_buf[1536];
    schema_t *s = NULL;
    int32_t id = -1;

    if (o->raw) {
        fputc('{', stdout);
        json_source(stdout, msg);
        fputs(",\"value_hex\":", stdout);
        json_hex(stdout, msg->payload, msg->len);
        fputs("}\n", stdout);
        return 0;
    }
    if (p == NULL || msg->len < 5) {
        why = "shorter than the 5-byte Confluent header";
    } else if (p[0] != 0) {
        why = "magic byte is not 0 (not Confluent framing)";
    } else {
        id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) |
                       (uint32_t)p[4]);
        if (o->reg.nurls > 0) {
            s = registry_schema(&o->reg, msg, id, why_buf, sizeof(why_buf));
            if (s == NULL) {
                why = why_buf;
            }
        } else {
            for (int i = 0; i < MAX_SCHEMAS; i++) {
                if (o->schemas[i].have_value && o->schemas[i].id == id) {
                    s = &o->schemas[i];
                }
            }
            if (s == NULL) {
                why = "unknown schema id";
            }
        }
    }
    if (s != NULL) {
        avro_reader_t reader = avro_reader_memory((const char *)p + 5, (int64_t)msg->len - 5);
        avro_value_reset(&s->value);
        if (reader == NULL || avro_value_read(reader, &s->value) != 0) {
            why = "Avro body does not decode with the schema";
        } else if (avro_skip(reader, 1) == 0) {
            why = "trailing bytes after the Avro body";
        }
        if (reader != NULL) {
            avro_reader_free(reader);
        }
    }
    if (why != NULL) {
        fprintf(stderr, "handoff-consumer: %s [%" PRId32 "] offset %" PRId64 ": %s",
                rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, why);
        if (why != why_buf) { /* the registry's reasons name the id already */
            fprintf(stderr, " (schema id %" PRId32 ")", id);
        }
        fputc('\n', stderr);
        fputs("{\"type\":\"error\",\"error\":", stdout);
        json_str(stdout, why, strlen(why));
        fputc(',', stdout);
        json_source(stdout, msg);
        fputs("}\n", stdout);
        return -1;
    }
    /* {"type":..., "schema_id":..., <every field of the record>, "topic":..., "headers":{...}} */
    fputs("{\"type\":", stdout);
    json_str(stdout, s->type, strlen(s->type));
    fprintf(stdout, ",\"schema_id\":%" PRId32 ",", id);
    char *body = NULL;
    size_t body_len = 0;
    FILE *mem = open_memstream(&body, &body_len);
    int rc = mem != NULL ? json_value(mem, &s->value) : -1;
    if (mem != NULL) {
        fclose(mem);
    }
    if (rc == 0 && body_len >= 2) {
        fwrite(body + 1, 1, body_len - 2, stdout); /* the record's fields, without its braces */
        fputc(',', stdout);
    }
    free(body);
    json_source(stdout, msg);
    fputs("}\n", stdout);
    return rc;
}

/* ---- Kafka ---- */

/* --from-beginning: assign every partition of the topics at the beginning (no group, no
 * commits), so the consumer sees the whole topic each time it runs. */
static int assign_all(rd_kafka_t *rk, const opts_t *o) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    int rc = -1;
    for (int t = 0; t < o->ntopics; t++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topics[t], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        rd_kafka_topic_destroy(rkt);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err) {
            fprintf(stderr, "handoff-consumer: metadata of %s: %s\n", o->topics[t],
                    rd_kafka_err2str(err ? err : md->topics[0].err));
            if (md != NULL) {
                rd_kafka_metadata_destroy(md);
            }
            goto done;
        }
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
            rd_kafka_topic_partition_list_add(list, o->topics[t], md->topics[0].partitions[i].id)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_metadata_destroy(md);
    }
    if (rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "handoff-consumer: assign failed\n");
        goto done;
    }
    rc = 0;
done:
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

static rd_kafka_t *make_consumer(const opts_t *o) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* Without a group (--from-beginning) librdkafka still wants a group.id for its consumer
     * machinery; nothing is committed under it. */
    const char *group = o->group != NULL ? o->group : "handoff-consumer-nogroup";
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", o->group != NULL ? "true" : "false", errstr,
                          sizeof(errstr)) ||
        /* Only committed records of a transactional producer (the default would also be fine
         * for the idempotent producer the worker uses today). */
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof(errstr))) {
        fprintf(stderr, "handoff-consumer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "handoff-consumer: %s\n", errstr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: handoff-consumer --brokers HOST:PORT [--schemas DIR] [--topics T1,T2]\n"
        "                        [--accounts] [--account-topics T1,T2]\n"
        "                        [--group G | --from-beginning] [--exit-when-idle MS]\n"
        "                        [--count N] [--id-qualified N] [--id-stale N]\n"
        "                        [--id-erased N] [--id-account-qualified N]\n"
        "                        [--id-account-stale N] [--raw]\n"
        "                        [--registry URL[,URL...] [--registry-user U]\n"
        "                         [--registry-ca FILE]]\n\n"
        "Prints each LeadQualified / LeadStale / LeadErased record (with --accounts also\n"
        "AccountQualified / AccountStale) as one JSON line on stdout.\n"
        "  --schemas DIR        folder with LeadQualified.avsc, LeadStale.avsc and\n"
        "                       LeadErased.avsc (schemas), with --accounts also\n"
        "                       AccountQualified.avsc and AccountStale.avsc; not read with\n"
        "                       --registry\n"
        "  --topics LIST        comma-separated output topics\n"
        "                       (leads.mql,leads.stale,leads.erased)\n"
        "  --accounts           also read the account hand-offs, from the topics of\n"
        "                       --account-topics\n"
        "  --account-topics LIST  the account hand-offs' topics, added to --topics\n"
        "                       (leads.mqa,leads.account_stale); implies --accounts\n"
        "  --group G            consume as member of group G (commits its position)\n"
        "  --from-beginning     no group: read every partition from the start (default)\n"
        "  --exit-when-idle MS  exit when no record arrived for MS milliseconds\n"
        "  --count N            exit after N records\n"
        "  --id-qualified N     schema id of LeadQualified in the framing (default 4)\n"
        "  --id-stale N         schema id of LeadStale (default 5)\n"
        "  --id-erased N        schema id of LeadErased (default 6)\n"
        "  --id-account-qualified N  schema id of AccountQualified (default 7)\n"
        "  --id-account-stale N schema id of AccountStale (default 8)\n"
        "  --registry URLS      read the writer schema of each schema id from a Schema\n"
        "                       Registry (Confluent's API, e.g. http://registry:8081 or\n"
        "                       Apicurio's .../apis/ccompat/v7): GET URL/schemas/ids/ID, cached\n"
        "                       per id; comma-separated URLs are tried in turn (connection\n"
        "                       failure or 5xx: the next one; 10 s timeout each); while none\n"
        "                       answers a record is tried 5 times (0.5-4 s apart), then\n"
        "                       printed as an error line. Not with the --id-* options\n"
        "  --registry-user U    HTTP basic auth user (e.g. an API key); the password is read\n"
        "                       from the environment variable HANDOFF_REGISTRY_PASSWORD\n"
        "  --registry-ca FILE   PEM CA bundle that verifies an https:// registry (default: the\n"
        "                       system's)\n"
        "  --raw                print records undecoded: key, headers, value as hex (for the\n"
        "                       dead-letter topic)\n"
        "Exit status: 0, or 1 if a record did not decode (it is printed as an error line:\n"
        "{\"type\":\"error\",\"error\":REASON,...}, e.g. \"schema id 7 unknown to the "
        "registry\").\n");
}

/* --registry URL[,URL...]: each must be http:// or https://; a trailing / is dropped. */
static int parse_registry(opts_t *o, const char *list) {
    registry_t *r = &o->reg;
    char *copy = strdup(list);
    if (copy == NULL) {
        return -1;
    }
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok)) {
            tok++;
        }
        size_t len = strlen(tok);
        while (len > 0 && (tok[len - 1] == '/' || isspace((unsigned char)tok[len - 1]))) {
            tok[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        if (strncmp(tok, "http://", 7) != 0 && strncmp(tok, "https://", 8) != 0) {
            fprintf(stderr, "handoff-consumer: --registry: %s is not an http:// or https:// URL\n",
                    tok);
            free(copy);
            return -1;
        }
        if (r->nurls == MAX_URLS || (r->urls[r->nurls] = strdup(tok)) == NULL) {
            fprintf(stderr, "handoff-consumer: --registry: at most %d URLs\n", MAX_URLS);
            free(copy);
            return -1;
        }
        r->nurls++;
    }
    free(copy);
    if (r->nurls == 0) {
        fprintf(stderr, "handoff-consumer: --registry: no URL\n");
        return -1;
    }
    if (o->fixed_ids_set) {
        fprintf(stderr, "handoff-consumer: --id-qualified / --id-stale / --id-erased / "
                        "--id-account-qualified / --id-account-stale are the fixed ids of the "
                        "mode without --registry: with it, the ids are the registry's\n");
        return -1;
    }
    r->password = getenv("HANDOFF_REGISTRY_PASSWORD");
    if (r->password != NULL && r->user == NULL) {
        fprintf(stderr, "handoff-consumer: HANDOFF_REGISTRY_PASSWORD is set but --registry-user "
                        "is not: no authentication is sent\n");
    }
    return 0;
}

/* Long options without a short form. */
enum { OPT_ACCOUNTS = 256, OPT_ACCOUNT_TOPICS, OPT_ID_ACCOUNT_QUALIFIED, OPT_ID_ACCOUNT_STALE };

/* Appends the comma-separated topics of list (a copy kept in buf) to o->topics. */
static int add_topics(opts_t *o, const char *list, char *buf, size_t size) {
    if (strlen(list) >= size) {
        fprintf(stderr, "handoff-consumer: topic list longer than %zu bytes\n", size - 1);
        return -1;
    }
    strcpy(buf, list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->ntopics == MAX_TOPICS) {
            fprintf(stderr, "handoff-consumer: at most %d topics\n", MAX_TOPICS);
            return -1;
        }
        o->topics[o->ntopics++] = tok;
    }
    return 0;
}

static int parse_args(int argc, char **argv, opts_t *o) {
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"schemas", required_argument, NULL, 's'},
        {"topics", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},
        {"from-beginning", no_argument, NULL, 'f'},
        {"exit-when-idle", required_argument, NULL, 'i'},
        {"count", required_argument, NULL, 'c'},
        {"id-qualified", required_argument, NULL, 'Q'},
        {"id-stale", required_argument, NULL, 'S'},
        {"id-erased", required_argument, NULL, 'E'},
        {"accounts", no_argument, NULL, OPT_ACCOUNTS},
        {"account-topics", required_argument, NULL, OPT_ACCOUNT_TOPICS},
        {"id-account-qualified", required_argument, NULL, OPT_ID_ACCOUNT_QUALIFIED},
        {"id-account-stale", required_argument, NULL, OPT_ID_ACCOUNT_STALE},
        {"raw", no_argument, NULL, 'r'},
        {"registry", required_argument, NULL, 'R'},
        {"registry-user", required_argument, NULL, 'U'},
        {"registry-ca", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static char topics_buf[1024], account_topics_buf[1024];
    const char *topics = "leads.mql,leads.stale,leads.erased";
    const char *account_topics = "leads.mqa,leads.account_stale";
    const char *registry = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "b:s:t:g:fi:c:Q:S:E:rR:U:C:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->brokers = optarg;
            break;
        case 's':
            o->schema_dir = optarg;
            break;
        case 't':
            topics = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case 'f':
            o->group = NULL;
            break;
        case 'i':
            o->idle_ms = atoi(optarg);
            break;
        case 'c':
            o->count = atol(optarg);
            break;
        case 'Q':
            o->schemas[0].id = atoi(optarg);
            o->fixed_ids_set = true;
            break;
        case 'S':
            o->schemas[1].id = atoi(optarg);
            o->fixed_ids_set = true;
            break;
        case 'E':
            o->schemas[2].id = atoi(optarg);
            o->fixed_ids_set = true;
            break;
        case OPT_ACCOUNTS:
            o->accounts = true;
            break;
        case OPT_ACCOUNT_TOPICS:
            account_topics = optarg;
            o->accounts = true;
            break;
        case OPT_ID_ACCOUNT_QUALIFIED:
            o->schemas[3].id = atoi(optarg);
            o->fixed_ids_set = true;
            break;
        case OPT_ID_ACCOUNT_STALE:
            o->schemas[4].id = atoi(optarg);
            o->fixed_ids_set = true;
            break;
        case 'r':
            o->raw = true;
            break;
        case 'R':
            registry = optarg;
            break;
        case 'U':
            o->reg.user = optarg;
            break;
        case 'C':
            o->reg.ca_file = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (o->brokers == NULL) {
        usage(stderr);
        return -1;
    }
    if (add_topics(o, topics, topics_buf, sizeof(topics_buf)) != 0 ||
        (o->accounts &&
         add_topics(o, account_topics, account_topics_buf, sizeof(account_topics_buf)) != 0)) {
        return -1;
    }
    if (registry != NULL && parse_registry(o, registry) != 0) {
        return -1;
    }
    if (registry == NULL && (o->reg.user != NULL || o->reg.ca_file != NULL)) {
        fprintf(stderr, "handoff-consumer: --registry-user and --registry-ca need --registry\n");
        return -1;
    }
    return o->ntopics > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    opts_t o = {
        .schema_dir = "schemas",
        /* The lead hand-offs with the worker's schema_id.* defaults, then the account
         * hand-offs (7 and 8: the ids to give them in a registry-less deployment). */
        .schemas = {{.file = "LeadQualified.avsc", .type = "LeadQualified", .id = 4},
                    {.file = "LeadStale.avsc", .type = "LeadStale", .id = 5},
                    {.file = "LeadErased.avsc", .type = "LeadErased", .id = 6},
                    {.file = "AccountQualified.avsc", .type = "AccountQualified", .id = 7},
                    {.file = "AccountStale.avsc", .type = "AccountStale", .id = 8}},
    };
    rd_kafka_t *rk = NULL;
    int status = 2;
    long seen = 0, bad = 0;
    bool curl_ready = false;

    if (parse_args(argc, argv, &o) != 0) {
        return 2;
    }
    if (!o.raw && o.reg.nurls == 0 && load_schemas(&o) != 0) {
        goto done;
    }
    if (!o.raw && o.reg.nurls > 0) {
        /* Before librdkafka starts its threads: curl_global_init is not thread-safe. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
            (o.reg.curl = curl_easy_init()) == NULL) {
            fprintf(stderr, "handoff-consumer: libcurl initialisation failed\n");
            goto done;
        }
        curl_ready = true;
    }
    rk = make_consumer(&o);
    if (rk == NULL) {
        goto done;
    }
    if (o.group == NULL) {
        if (assign_all(rk, &o) != 0) {
            goto done;
        }
    } else {
        rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(o.ntopics);
        for (int t = 0; t < o.ntopics; t++) {
            rd_kafka_topic_partition_list_add(subs, o.topics[t], RD_KAFKA_PARTITION_UA);
        }
        rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "handoff-consumer: subscribe: %s\n", rd_kafka_err2str(err));
            goto done;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    int64_t last = mono_ms();
    /* One line per hand-off as it arrives, also into a pipe or a container's log. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (!stop_flag && (o.count == 0 || seen < o.count)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (msg == NULL) {
            if (o.idle_ms > 0 && mono_ms() - last >= o.idle_ms) {
                break;
            }
            continue;
        }
        last = mono_ms();
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "handoff-consumer: %s\n", rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
            continue;
        }
        seen++;
        if (handle(&o, msg) != 0) {
            bad++;
        }
        rd_kafka_message_destroy(msg);
    }
    fflush(stdout);
    fprintf(stderr, "handoff-consumer: %ld records, %ld did not decode\n", seen, bad);
    status = bad > 0 ? 1 : 0;
done:
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    free_schemas(&o);
    registry_free(&o.reg);
    if (curl_ready) {
        curl_global_cleanup();
    }
    return status;
}
