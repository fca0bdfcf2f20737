/* Schema loading, Parsing Canonical Form and CRC-64-AVRO fingerprints. avro-c parses the schema
 * files; the canonical form is written here because avro-c 1.11 has none. */
#include <avro.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/avro_internal.h"

#define FP_EMPTY 0xc15d213aa4d7a795ULL

/* Fingerprints of the canonical forms the hand-written encoder/decoder implements. A schema file
 * that differs in anything but docs, defaults and logical types is refused at start, because the
 * binary layout would no longer match the code. */
static const uint64_t expected_fp[LP_SCHEMA__ALL] = {
    0xb428e8998daad41fULL, /* EngagementEvent */
    0x59fe5488b68fc0d3ULL, /* LeadProfileUpdated (account_id last, since issue 18) */
    0x630154691ce90ad8ULL, /* SalesFeedback */
    0x4918448006615417ULL, /* LeadQualified */
    0x28a9d2b974079b83ULL, /* LeadStale */
    0x51952cd5a56aa05fULL, /* LeadErased */
    0xa64bf5583b327b6fULL, /* AccountQualified */
    0xb1d25448beda2a78ULL, /* AccountStale */
};

uint64_t lp_avro_fingerprint64(const char *canonical, size_t len) {
    uint64_t table[256];
    uint64_t fp = FP_EMPTY;

    for (int i = 0; i < 256; i++) {
        uint64_t v = (uint64_t)i;
        for (int j = 0; j < 8; j++) {
            v = (v >> 1) ^ (FP_EMPTY & (0 - (v & 1)));
        }
        table[i] = v;
    }
    for (size_t i = 0; i < len; i++) {
        fp = (fp >> 8) ^ table[(fp ^ (uint8_t)canonical[i]) & 0xff];
    }
    return fp;
}

/* ---- Parsing Canonical Form ---- */

typedef struct {
    char *out;
    size_t size;
    size_t len;
    bool overflow;
    const char *seen[64]; /* full names already defined: later uses print the name only */
    char seen_buf[64][256];
    int nseen;
} pcf_t;

static void pcf_put(pcf_t *p, const char *s) {
    size_t n = strlen(s);

    if (p->len + n >= p->size) {
        p->overflow = true;
        return;
    }
    memcpy(p->out + p->len, s, n);
    p->len += n;
    p->out[p->len] = '\0';
}

static void full_name(avro_schema_t schema, const char *enclosing, char *out, size_t size) {
    const char *name = avro_schema_name(schema);
    const char *space = avro_schema_namespace(schema);

    if (strchr(name, '.') != NULL) {
        snprintf(out, size, "%s", name);
        return;
    }
    if (space == NULL) {
        space = enclosing; /* the spec: unqualified names inherit the enclosing namespace */
    }
    if (space != NULL && space[0] != '\0') {
        snprintf(out, size, "%s.%s", space, name);
    } else {
        snprintf(out, size, "%s", name);
    }
}

static void name_space(const char *full, char *out, size_t size) {
    const char *dot = strrchr(full, '.');

    snprintf(out, size, "%.*s", dot != NULL ? (int)(dot - full) : 0, full);
}

static int pcf_write(pcf_t *p, avro_schema_t schema, const char *enclosing, int depth);

static bool pcf_named(pcf_t *p, avro_schema_t schema, const char *enclosing, char *full,
                      size_t size) {
    full_name(schema, enclosing, full, size);
    for (int i = 0; i < p->nseen; i++) {
        if (strcmp(p->seen[i], full) == 0) {
            pcf_put(p, "\"");
            pcf_put(p, full);
            pcf_put(p, "\"");
            return true;
        }
    }
    if (p->nseen < 64) {
        snprintf(p->seen_buf[p->nseen], sizeof(p->seen_buf[0]), "%s", full);
        p->seen[p->nseen] = p->seen_buf[p->nseen];
        p->nseen++;
    }
    return false;
}

static int pcf_write(pcf_t *p, avro_schema_t schema, const char *enclosing, int depth) {
    char full[256];
    char space[256];
    char num[32];

    if (depth > 64) {
        return LP_ERR;
    }
    switch (avro_typeof(schema)) {
    case AVRO_STRING:
        pcf_put(p, "\"string\"");
        return LP_OK;
    case AVRO_BYTES:
        pcf_put(p, "\"bytes\"");
        return LP_OK;
    case AVRO_INT32:
        pcf_put(p, "\"int\"");
        return LP_OK;
    case AVRO_INT64:
        pcf_put(p, "\"long\"");
        return LP_OK;
    case AVRO_FLOAT:
        pcf_put(p, "\"float\"");
        return LP_OK;
    case AVRO_DOUBLE:
        pcf_put(p, "\"double\"");
        return LP_OK;
    case AVRO_BOOLEAN:
        pcf_put(p, "\"boolean\"");
        return LP_OK;
    case AVRO_NULL:
        pcf_put(p, "\"null\"");
        return LP_OK;
    case AVRO_LINK:
        full_name(avro_schema_link_target(schema), enclosing, full, sizeof(full));
        pcf_put(p, "\"");
        pcf_put(p, full);
        pcf_put(p, "\"");
        return LP_OK;
    case AVRO_RECORD:
        if (pcf_named(p, schema, enclosing, full, sizeof(full))) {
            return LP_OK;
        }
        name_space(full, space, sizeof(space));
        pcf_put(p, "{\"name\":\"");
        pcf_put(p, full);
        pcf_put(p, "\",\"type\":\"record\",\"fields\":[");
        for (size_t i = 0; i < avro_schema_record_size(schema); i++) {
            pcf_put(p, i > 0 ? ",{\"name\":\"" : "{\"name\":\"");
            pcf_put(p, avro_schema_record_field_name(schema, (int)i));
            pcf_put(p, "\",\"type\":");
            if (pcf_write(p, avro_schema_record_field_get_by_index(schema, (int)i), space,
                          depth + 1) != LP_OK) {
                return LP_ERR;
            }
            pcf_put(p, "}");
        }
        pcf_put(p, "]}");
        return LP_OK;
    case AVRO_ENUM:
        if (pcf_named(p, schema, enclosing, full, sizeof(full))) {
            return LP_OK;
        }
        pcf_put(p, "{\"name\":\"");
        pcf_put(p, full);
        pcf_put(p, "\",\"type\":\"enum\",\"symbols\":[");
        for (int i = 0; i < avro_schema_enum_number_of_symbols(schema); i++) {
            pcf_put(p, i > 0 ? ",\"" : "\"");
            pcf_put(p, avro_schema_enum_get(schema, i));
            pcf_put(p, "\"");
        }
        pcf_put(p, "]}");
        return LP_OK;
    case AVRO_FIXED:
        if (pcf_named(p, schema, enclosing, full, sizeof(full))) {
            return LP_OK;
        }
        snprintf(num, sizeof(num), "%lld", (long long)avro_schema_fixed_size(schema));
        pcf_put(p, "{\"name\":\"");
        pcf_put(p, full);
        pcf_put(p, "\",\"type\":\"fixed\",\"size\":");
        pcf_put(p, num);
        pcf_put(p, "}");
        return LP_OK;
    case AVRO_ARRAY:
        pcf_put(p, "{\"type\":\"array\",\"items\":");
        if (pcf_write(p, avro_schema_array_items(schema), enclosing, depth + 1) != LP_OK) {
            return LP_ERR;
        }
        pcf_put(p, "}");
        return LP_OK;
    case AVRO_MAP:
        pcf_put(p, "{\"type\":\"map\",\"values\":");
        if (pcf_write(p, avro_schema_map_values(schema), enclosing, depth + 1) != LP_OK) {
            return LP_ERR;
        }
        pcf_put(p, "}");
        return LP_OK;
    case AVRO_UNION:
        pcf_put(p, "[");
        for (size_t i = 0; i < avro_schema_union_size(schema); i++) {
            if (i > 0) {
                pcf_put(p, ",");
            }
            if (pcf_write(p, avro_schema_union_branch(schema, (int)i), enclosing, depth + 1) !=
                LP_OK) {
                return LP_ERR;
            }
        }
        pcf_put(p, "]");
        return LP_OK;
    }
    return LP_ERR;
}

static int canonical_of(avro_schema_t schema, char *out, size_t out_size, char *errstr,
                        size_t errstr_size) {
    pcf_t *p = calloc(1, sizeof(*p));
    int rc = LP_ERR;

    if (p == NULL) {
        return lp_codec_err(errstr, errstr_size, "out of memory");
    }
    p->out = out;
    p->size = out_size;
    if (out_size > 0) {
        out[0] = '\0';
    }
    if (pcf_write(p, schema, NULL, 0) != LP_OK) {
        lp_codec_err(errstr, errstr_size, "schema nested too deeply or of an unknown type");
        goto err;
    }
    if (p->overflow) {
        lp_codec_err(errstr, errstr_size, "canonical form longer than %zu bytes", out_size);
        goto err;
    }
    rc = LP_OK;
err:
    free(p);
    return rc;
}

int lp_avro_canonical_form(const char *json, size_t len, char *out, size_t out_size, char *errstr,
                           size_t errstr_size) {
    avro_schema_t schema = NULL;
    int rc;

    if (avro_schema_from_json_length(json, len, &schema) != 0) {
        return lp_codec_err(errstr, errstr_size, "schema does not parse: %s", avro_strerror());
    }
    rc = canonical_of(schema, out, out_size, errstr, errstr_size);
    avro_schema_decref(schema);
    return rc;
}

/* ---- The codec ---- */

static char *read_file(const char *path, size_t *len, char *errstr, size_t errstr_size) {
    FILE *fp = fopen(path, "rb");
    char *text = NULL;
    long size;

    if (fp == NULL) {
        lp_codec_err(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        lp_codec_err(errstr, errstr_size, "%s: cannot determine size", path);
        goto err;
    }
    if (size > 1024 * 1024) {
        lp_codec_err(errstr, errstr_size, "%s: larger than 1 MiB, not a schema", path);
        goto err;
    }
    text = malloc((size_t)size + 1);
    if (text == NULL || fread(text, 1, (size_t)size, fp) != (size_t)size) {
        lp_codec_err(errstr, errstr_size, "%s: read failed", path);
        goto err;
    }
    text[size] = '\0';
    *len = (size_t)size;
    fclose(fp);
    return text;
err:
    free(text);
    fclose(fp);
    return NULL;
}

static int load_schema(lp_avro_codec_t *codec, const char *dir, int kind, char *errstr,
                       size_t errstr_size) {
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    avro_schema_t schema = NULL;
    char canonical[LP_AVRO_CANONICAL_MAX];
    int rc = LP_ERR;

    snprintf(path, sizeof(path), "%s/%s.avsc", dir, lp_codec_schema_names[kind]);
    if (kind >= LP_SCHEMA__COUNT && access(path, F_OK) != 0 && errno == ENOENT) {
        /* An account hand-off schema: optional until the worker writes account hand-offs (a
         * schema folder of an older release still loads); present, it is checked as the others. */
        return LP_OK;
    }
    text = read_file(path, &len, errstr, errstr_size);
    if (text == NULL) {
        goto err;
    }
    if (avro_schema_from_json_length(text, len, &schema) != 0) {
        lp_codec_err(errstr, errstr_size, "%s: not a valid Avro schema: %s", path, avro_strerror());
        goto err;
    }
    if (avro_typeof(schema) != AVRO_RECORD ||
        strcmp(avro_schema_name(schema), lp_codec_schema_names[kind]) != 0) {
        lp_codec_err(errstr, errstr_size, "%s: expected a record named %s", path,
                     lp_codec_schema_names[kind]);
        goto err;
    }
    if (canonical_of(schema, canonical, sizeof(canonical), errstr, errstr_size) != LP_OK) {
        goto err;
    }
    codec->canonical[kind] = strdup(canonical);
    if (codec->canonical[kind] == NULL) {
        lp_codec_err(errstr, errstr_size, "out of memory");
        goto err;
    }
    codec->fp[kind] = lp_avro_fingerprint64(canonical, strlen(canonical));
    if (codec->fp[kind] != expected_fp[kind]) {
        lp_codec_err(errstr, errstr_size,
                     "%s: fields, types or symbols differ from the ones this build's codec "
                     "implements (fingerprint %016llx, expected %016llx); a schema change needs "
                     "a matching change in src/codec/avro_*.c",
                     path, (unsigned long long)codec->fp[kind],
                     (unsigned long long)expected_fp[kind]);
        goto err;
    }
    codec->text[kind] = text;
    codec->text_len[kind] = len;
    text = NULL;
    rc = LP_OK;
err:
    if (schema != NULL) {
        avro_schema_decref(schema);
    }
    free(text);
    return rc;
}

lp_avro_codec_t *lp_avro_codec_new(const char *schema_dir,
                                   const int32_t schema_ids[LP_SCHEMA__COUNT], char *errstr,
                                   size_t errstr_size) {
    lp_avro_codec_t *codec = calloc(1, sizeof(*codec));

    if (codec == NULL) {
        lp_codec_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    for (int k = 0; k <= LP_SCHEMA_FEEDBACK; k++) {
        lp_event_init(&codec->blank[k], (lp_event_kind_t)k);
    }
    for (int k = 0; k < LP_SCHEMA__ALL; k++) {
        codec->ids[k] = schema_ids != NULL && k < LP_SCHEMA__COUNT ? schema_ids[k] : -1;
        for (int j = 0; j < k; j++) {
            if (codec->ids[k] >= 0 && codec->ids[k] == codec->ids[j]) {
                lp_codec_err(errstr, errstr_size, "schema id %d configured for both %s and %s",
                             (int)codec->ids[k], lp_codec_schema_names[j],
                             lp_codec_schema_names[k]);
                goto err;
            }
        }
        if (load_schema(codec, schema_dir, k, errstr, errstr_size) != LP_OK) {
            goto err;
        }
    }
    return codec;
err:
    lp_avro_codec_destroy(codec);
    return NULL;
}

void lp_avro_codec_destroy(lp_avro_codec_t *codec) {
    if (codec == NULL) {
        return;
    }
    for (int k = 0; k < LP_SCHEMA__ALL; k++) {
        free(codec->canonical[k]);
        free(codec->text[k]);
    }
    lp_avro_resolver_free(codec->resolver);
    free(codec);
}

const char *lp_avro_codec_errstr(const lp_avro_codec_t *codec) {
    return codec->errstr;
}

const char *lp_avro_codec_canonical(const lp_avro_codec_t *codec, lp_schema_kind_t kind) {
    return (unsigned)kind < LP_SCHEMA__ALL ? codec->canonical[kind] : NULL;
}

uint64_t lp_avro_codec_fingerprint(const lp_avro_codec_t *codec, lp_schema_kind_t kind) {
    return (unsigned)kind < LP_SCHEMA__ALL ? codec->fp[kind] : 0;
}

int lp_avro_codec_set_schema_id(lp_avro_codec_t *codec, lp_schema_kind_t kind, int32_t id,
                                char *errstr, size_t errstr_size) {
    lp_schema_kind_t other;

    if (kind != LP_SCHEMA_ACCOUNT_QUALIFIED && kind != LP_SCHEMA_ACCOUNT_STALE) {
        return lp_codec_err(errstr, errstr_size,
                            "schema kind %d: only the account hand-offs' ids are set this way "
                            "(the others are lp_avro_codec_new's)",
                            (int)kind);
    }
    if (id >= 0 && id != codec->ids[kind]) {
        lp_avro_id_state_t state = lp_avro_codec_id_state(codec, id, &other);
        if (state == LP_AVRO_ID_DIRECT) {
            return lp_codec_err(errstr, errstr_size, "schema id %d is configured for %s already",
                                (int)id, lp_codec_schema_names[other]);
        }
        if (state != LP_AVRO_ID_UNKNOWN) {
            return lp_codec_err(errstr, errstr_size,
                                "schema id %d was learnt for another writer schema", (int)id);
        }
    }
    codec->ids[kind] = id < 0 ? -1 : id;
    return LP_OK;
}
