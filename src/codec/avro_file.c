/* Avro object container files as replay input, read with avro-c's file reader and generic values.
 * Fields are looked up by name, so files written with a compatible, extended writer schema (added
 * fields, reordered fields) still read; the same checks as the binary decoder apply. */
#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/avro_internal.h"

struct lp_avro_file {
    avro_file_reader_t reader;
    avro_schema_t schema; /* writer schema (a reference of ours: avro-c increfs it) */
    avro_value_iface_t *iface;
    avro_value_t value;
    bool have_value;
    bool broken; /* the container itself is unreadable: stop */
    long record; /* number of the record read last, from 1 */
    char path[256];
};

static int input_kind(avro_schema_t schema) {
    if (avro_typeof(schema) != AVRO_RECORD) {
        return -1;
    }
    for (int k = LP_SCHEMA_ENGAGEMENT; k <= LP_SCHEMA_FEEDBACK; k++) {
        if (strcmp(avro_schema_name(schema), lp_codec_schema_names[k]) == 0) {
            return k;
        }
    }
    return -1;
}

static bool has_container_magic(const char *path) {
    unsigned char magic[4] = {0};
    FILE *fp = fopen(path, "rb");
    size_t n;

    if (fp == NULL) {
        return false;
    }
    n = fread(magic, 1, sizeof(magic), fp);
    fclose(fp);
    return n == 4 && memcmp(magic, "Obj\x01", 4) == 0;
}

lp_avro_file_t *lp_avro_file_open(const char *path, char *errstr, size_t errstr_size) {
    lp_avro_file_t *file = calloc(1, sizeof(*file));

    if (file == NULL) {
        lp_codec_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    snprintf(file->path, sizeof(file->path), "%s", path);
    /* avro-c leaks when it rejects a file that is not a container: check the magic first. */
    if (!has_container_magic(path)) {
        lp_codec_err(errstr, errstr_size,
                     "%s: not a readable Avro container file (no Obj\\x01 magic)", path);
        goto err;
    }
    if (avro_file_reader(path, &file->reader) != 0) {
        file->reader = NULL;
        lp_codec_err(errstr, errstr_size, "%s: not a readable Avro container file: %s", path,
                     avro_strerror());
        goto err;
    }
    file->schema = avro_file_reader_get_writer_schema(file->reader);
    if (avro_typeof(file->schema) == AVRO_UNION) {
        for (size_t i = 0; i < avro_schema_union_size(file->schema); i++) {
            if (input_kind(avro_schema_union_branch(file->schema, (int)i)) < 0) {
                lp_codec_err(errstr, errstr_size,
                             "%s: writer schema is a union with a branch that is not "
                             "EngagementEvent, LeadProfileUpdated or SalesFeedback",
                             path);
                goto err;
            }
        }
    } else if (input_kind(file->schema) < 0) {
        lp_codec_err(errstr, errstr_size,
                     "%s: writer schema is not EngagementEvent, LeadProfileUpdated or "
                     "SalesFeedback (nor a union of them)",
                     path);
        goto err;
    }
    file->iface = avro_generic_class_from_schema(file->schema);
    if (file->iface == NULL || avro_generic_value_new(file->iface, &file->value) != 0) {
        lp_codec_err(errstr, errstr_size, "%s: %s", path, avro_strerror());
        goto err;
    }
    file->have_value = true;
    return file;
err:
    lp_avro_file_close(file);
    return NULL;
}

void lp_avro_file_close(lp_avro_file_t *file) {
    if (file == NULL) {
        return;
    }
    if (file->have_value) {
        avro_value_decref(&file->value);
    }
    if (file->iface != NULL) {
        avro_value_iface_decref(file->iface);
    }
    if (file->schema != NULL) {
        avro_schema_decref(file->schema);
    }
    if (file->reader != NULL) {
        avro_file_reader_close(file->reader);
    }
    free(file);
}

/* ---- generic value -> event ---- */

typedef struct {
    avro_value_t *rec;
    long record;
    char *errstr;
    size_t errstr_size;
} conv_t;

static int conv_fail(conv_t *cv, const char *field, const char *what) {
    return lp_codec_err(cv->errstr, cv->errstr_size, "record %ld: field %s: %s", cv->record, field,
                        what);
}

/* Finds a field and unwraps a union. Returns 1 (value), 0 (absent or null), LP_ERR. */
static int get_field(conv_t *cv, const char *name, avro_value_t *out) {
    avro_value_t child;

    if (avro_value_get_by_name(cv->rec, name, &child, NULL) != 0) {
        return 0;
    }
    if (avro_value_get_type(&child) == AVRO_UNION) {
        if (avro_value_get_current_branch(&child, out) != 0) {
            return conv_fail(cv, name, "union without a branch");
        }
    } else {
        *out = child;
    }
    return avro_value_get_type(out) == AVRO_NULL ? 0 : 1;
}

static int get_string(conv_t *cv, const char *name, char *dst, size_t dst_size, bool required) {
    avro_value_t v;
    const char *s = NULL;
    size_t size = 0;
    int rc = get_field(cv, name, &v);

    dst[0] = '\0';
    if (rc <= 0) {
        return rc < 0 ? LP_ERR : required ? conv_fail(cv, name, "missing") : LP_OK;
    }
    if (avro_value_get_type(&v) != AVRO_STRING || avro_value_get_string(&v, &s, &size) != 0) {
        return conv_fail(cv, name, "not a string");
    }
    size = size > 0 ? size - 1 : 0; /* avro-c counts the NUL terminator */
    if (size >= dst_size) {
        return lp_codec_err(cv->errstr, cv->errstr_size,
                            "record %ld: field %s: string of %zu bytes exceeds the limit of %zu",
                            cv->record, name, size, dst_size - 1);
    }
    if (lp_codec_utf8_check((const uint8_t *)s, size) != size) {
        return conv_fail(cv, name, "invalid UTF-8 or NUL in string");
    }
    memcpy(dst, s, size);
    dst[size] = '\0';
    return LP_OK;
}

static int get_long(conv_t *cv, const char *name, int64_t *out, bool required) {
    avro_value_t v;
    int32_t i32;
    int rc = get_field(cv, name, &v);

    if (rc <= 0) {
        return rc < 0 ? LP_ERR : required ? conv_fail(cv, name, "missing") : LP_OK;
    }
    if (avro_value_get_type(&v) == AVRO_INT32 && avro_value_get_int(&v, &i32) == 0) {
        *out = i32;
        return LP_OK;
    }
    if (avro_value_get_type(&v) != AVRO_INT64 || avro_value_get_long(&v, out) != 0) {
        return conv_fail(cv, name, "not a long");
    }
    return LP_OK;
}

/* Optional non-negative count: absent or null gives -1. */
static int get_count(conv_t *cv, const char *name, int64_t *out) {
    int64_t v = INT64_MIN;

    *out = -1;
    if (get_long(cv, name, &v, false) != LP_OK) {
        return LP_ERR;
    }
    if (v == INT64_MIN) {
        return LP_OK;
    }
    if (v < 0) {
        return conv_fail(cv, name, "negative");
    }
    *out = v;
    return LP_OK;
}

static int get_symbol(conv_t *cv, const char *name, int (*parse)(const char *), int *out,
                      bool required) {
    avro_value_t v;
    int index;
    const char *symbol;
    int rc = get_field(cv, name, &v);

    if (rc <= 0) {
        return rc < 0 ? LP_ERR : required ? conv_fail(cv, name, "missing") : LP_OK;
    }
    if (avro_value_get_type(&v) == AVRO_ENUM && avro_value_get_enum(&v, &index) == 0) {
        symbol = avro_schema_enum_get(avro_value_get_schema(&v), index);
    } else if (avro_value_get_type(&v) == AVRO_STRING &&
               avro_value_get_string(&v, &symbol, NULL) == 0) {
        /* a string-typed field holding the symbol name is accepted too */
    } else {
        return conv_fail(cv, name, "not an enum");
    }
    *out = symbol != NULL ? parse(symbol) : -1;
    if (*out < 0) {
        return lp_codec_err(cv->errstr, cv->errstr_size, "record %ld: field %s: unknown value %s",
                            cv->record, name, symbol != NULL ? symbol : "(none)");
    }
    return LP_OK;
}

#define STR(cv, name, dst, req) get_string((cv), (name), (dst), sizeof(dst), (req))

static int convert(conv_t *cv, int kind, lp_event_t *event) {
    avro_value_t v;
    int sym;
    int rc;

    lp_event_init(event, (lp_event_kind_t)kind);
    if (STR(cv, "event_id", event->event_id, true) != LP_OK ||
        STR(cv, "lead_id", event->lead_id, true) != LP_OK ||
        get_long(cv, "ts", &event->ts_ms, true) != LP_OK) {
        return LP_ERR;
    }
    if (kind == LP_SCHEMA_ENGAGEMENT) {
        lp_engagement_t *e = &event->u.engagement;
        int machine = 0;
        if (STR(cv, "type", e->type, true) != LP_OK || STR(cv, "url", e->url, false) != LP_OK ||
            STR(cv, "asset_id", e->asset_id, false) != LP_OK ||
            STR(cv, "campaign_id", e->campaign_id, false) != LP_OK ||
            get_count(cv, "seconds_since_send", &e->seconds_since_send) != LP_OK) {
            return LP_ERR;
        }
        rc = get_field(cv, "machine", &v);
        if (rc < 0 || (rc == 1 && (avro_value_get_type(&v) != AVRO_BOOLEAN ||
                                   avro_value_get_boolean(&v, &machine) != 0))) {
            return rc < 0 ? LP_ERR : conv_fail(cv, "machine", "not a boolean");
        }
        e->machine = machine != 0;
    } else if (kind == LP_SCHEMA_PROFILE) {
        lp_profile_update_t *p = &event->u.profile;
        if (STR(cv, "email", p->email, false) != LP_OK ||
            STR(cv, "title", p->title, false) != LP_OK ||
            STR(cv, "seniority", p->seniority, false) != LP_OK ||
            STR(cv, "industry", p->industry, false) != LP_OK ||
            STR(cv, "company", p->company, false) != LP_OK ||
            get_count(cv, "company_size", &p->company_size) != LP_OK ||
            STR(cv, "country", p->country, false) != LP_OK ||
            STR(cv, "region", p->region, false) != LP_OK ||
            STR(cv, "persona", p->persona, false) != LP_OK ||
            STR(cv, "segment", p->segment, false) != LP_OK ||
            STR(cv, "owner", p->owner, false) != LP_OK ||
            STR(cv, "account_id", p->account_id, false) != LP_OK) {
            return LP_ERR;
        }
    } else {
        lp_feedback_t *f = &event->u.feedback;
        if (get_symbol(cv, "outcome", lp_feedback_outcome_parse, &sym, true) != LP_OK) {
            return LP_ERR;
        }
        f->outcome = (lp_feedback_outcome_t)sym;
        sym = LP_REJ_NONE;
        if (get_symbol(cv, "reason", lp_reject_reason_parse, &sym, false) != LP_OK) {
            return LP_ERR;
        }
        f->reason = (lp_reject_reason_t)sym;
        if (STR(cv, "owner", f->owner, false) != LP_OK) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

int lp_avro_file_next(lp_avro_file_t *file, lp_event_t *event, char *errstr, size_t errstr_size) {
    avro_value_t rec;
    conv_t cv = {.errstr = errstr, .errstr_size = errstr_size};
    char why[LP_ERRSTR];
    int rc;
    int kind;

    if (file->broken) {
        /* Reported once, when it broke; nothing after it can be read: the end. (Reporting it
         * again on every call kept a caller that skips bad records reading forever.) */
        return 0;
    }
    avro_value_reset(&file->value);
    rc = avro_file_reader_read_value(file->reader, &file->value);
    if (rc == EOF) {
        return 0;
    }
    file->record++;
    if (rc != 0) {
        file->broken = true;
        return lp_codec_err(errstr, errstr_size, "%s: record %ld: %s", file->path, file->record,
                            avro_strerror());
    }
    rec = file->value;
    if (avro_value_get_type(&file->value) == AVRO_UNION &&
        avro_value_get_current_branch(&file->value, &rec) != 0) {
        return lp_codec_err(errstr, errstr_size, "record %ld: union without a branch",
                            file->record);
    }
    kind = input_kind(avro_value_get_schema(&rec));
    if (kind < 0) {
        return lp_codec_err(errstr, errstr_size, "record %ld: not an input event", file->record);
    }
    cv.rec = &rec;
    cv.record = file->record;
    if (convert(&cv, kind, event) != LP_OK) {
        return LP_ERR;
    }
    if (lp_codec_check_event(event, why, sizeof(why)) != LP_OK) {
        return lp_codec_err(errstr, errstr_size, "record %ld: %s", file->record, why);
    }
    return 1;
}
