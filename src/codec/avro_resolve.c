/* Schema ids learnt at run time: each id is read directly (its canonical form is one of our input
 * schemas'), through a resolution program, or not at all (the reason is kept, so that the id is
 * neither fetched nor compiled again). The configured ids stay in lp_avro_unframe's loop, the hot
 * path; learnt ids are found through a small open-addressing table after it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/avro_resolve.h"

#define SLOTS 2048         /* a power of two, twice LP_AVRO_ADDED_IDS_MAX */
#define SCRATCH_SIZE 65536 /* far above any record of our input schemas the decoder accepts */

typedef struct {
    int32_t id;
    lp_avro_id_state_t state;
    int kind;
    lp_rs_program_t *program; /* RESOLVED */
    char *why;                /* UNREADABLE */
} entry_t;

struct lp_avro_resolver {
    entry_t entries[LP_AVRO_ADDED_IDS_MAX];
    int n;
    int16_t slots[SLOTS]; /* entry index + 1; 0: free */
    /* Our input schemas, parsed with their defaults on first need. */
    lp_rs_schema_t *reader[LP_SCHEMA_FEEDBACK + 1];
    lp_rs_vm_t vm;
    uint8_t scratch[SCRATCH_SIZE]; /* a record rewritten in the reader's encoding */
};

_Static_assert(SLOTS >= 2 * LP_AVRO_ADDED_IDS_MAX, "the id table needs free slots");

static size_t slot_of(int32_t id) {
    return ((uint32_t)id * 2654435761u) >> 21; /* Fibonacci hashing to 11 bits */
}

static entry_t *find(const lp_avro_resolver_t *res, int32_t id) {
    for (size_t s = slot_of(id);; s = (s + 1) & (SLOTS - 1)) {
        int i = res->slots[s];
        if (i == 0) {
            return NULL;
        }
        if (res->entries[i - 1].id == id) {
            return (entry_t *)&res->entries[i - 1];
        }
    }
}

static void entry_clear(entry_t *e) {
    lp_rs_program_free(e->program);
    free(e->why);
    e->program = NULL;
    e->why = NULL;
}

/* Stores e (its program and reason are taken over), replacing what the id had. */
static int store(lp_avro_resolver_t *res, entry_t *e, char *errstr, size_t errstr_size) {
    entry_t *old = find(res, e->id);
    size_t s;

    if (old != NULL) {
        entry_clear(old);
        *old = *e;
        return LP_OK;
    }
    if (res->n >= LP_AVRO_ADDED_IDS_MAX) {
        entry_clear(e);
        return lp_codec_err(errstr, errstr_size,
                            "not learnt: the codec knows %d schema ids already, the most it keeps",
                            LP_AVRO_ADDED_IDS_MAX);
    }
    for (s = slot_of(e->id); res->slots[s] != 0; s = (s + 1) & (SLOTS - 1)) {
    }
    res->entries[res->n++] = *e;
    res->slots[s] = (int16_t)res->n;
    return LP_OK;
}

static lp_avro_resolver_t *resolver_of(lp_avro_codec_t *codec) {
    if (codec->resolver == NULL) {
        codec->resolver = calloc(1, sizeof(*codec->resolver));
    }
    return codec->resolver;
}

void lp_avro_resolver_free(lp_avro_resolver_t *res) {
    if (res == NULL) {
        return;
    }
    for (int i = 0; i < res->n; i++) {
        entry_clear(&res->entries[i]);
    }
    for (int k = 0; k <= LP_SCHEMA_FEEDBACK; k++) {
        lp_rs_schema_free(res->reader[k]);
    }
    lp_rs_vm_free(&res->vm);
    free(res);
}

/* ---- deciding how an id is read ---- */

static const lp_rs_schema_t *reader_schema(lp_avro_codec_t *codec, lp_avro_resolver_t *res,
                                           int kind, char *errstr, size_t errstr_size) {
    if (res->reader[kind] == NULL) {
        res->reader[kind] =
            lp_rs_schema_parse(codec->text[kind], codec->text_len[kind], true, errstr, errstr_size);
        if (res->reader[kind] == NULL) {
            lp_rs_prefix(errstr, errstr_size, "our schema %s: ", lp_codec_schema_names[kind]);
        }
    }
    return res->reader[kind];
}

/* The input kind whose record name (or an alias of it) is the writer's record name. */
static int kind_of(lp_avro_codec_t *codec, lp_avro_resolver_t *res, const lp_rs_type_t *writer,
                   char *errstr, size_t errstr_size) {
    for (int k = 0; k <= LP_SCHEMA_FEEDBACK; k++) {
        const lp_rs_schema_t *reader = reader_schema(codec, res, k, errstr, errstr_size);
        if (reader == NULL) {
            return -1;
        }
        if (lp_rs_names_match(writer, reader->root)) {
            return k;
        }
    }
    lp_codec_err(errstr, errstr_size, "record %s is not %s, %s or %s", writer->full,
                 lp_codec_schema_names[LP_SCHEMA_ENGAGEMENT],
                 lp_codec_schema_names[LP_SCHEMA_PROFILE],
                 lp_codec_schema_names[LP_SCHEMA_FEEDBACK]);
    return -1;
}

/* Sets e's state, kind and program from the writer schema; LP_ERR with errstr if unreadable. */
static int classify(lp_avro_codec_t *codec, lp_avro_resolver_t *res, const char *json, size_t len,
                    entry_t *e, char *errstr, size_t errstr_size) {
    char canonical[LP_AVRO_CANONICAL_MAX];
    char desc[160];
    lp_rs_schema_t *writer = lp_rs_schema_parse(json, len, false, errstr, errstr_size);
    int k;

    if (writer == NULL) {
        return LP_ERR;
    }
    if (writer->root->kind != LP_RS_RECORD) {
        lp_rs_describe(writer->root, desc, sizeof(desc));
        lp_rs_schema_free(writer);
        return lp_codec_err(errstr, errstr_size, "the schema is %s, not a record", desc);
    }
    /* Same canonical form: same binary layout, so the fast decoder reads it as it is. */
    if (lp_rs_canonical(writer, canonical, sizeof(canonical)) == LP_OK) {
        for (k = 0; k <= LP_SCHEMA_FEEDBACK; k++) {
            if (strcmp(canonical, codec->canonical[k]) == 0) {
                lp_rs_schema_free(writer);
                e->state = LP_AVRO_ID_DIRECT;
                e->kind = k;
                return LP_OK;
            }
        }
    }
    if ((k = kind_of(codec, res, writer->root, errstr, errstr_size)) < 0) {
        lp_rs_schema_free(writer);
        return LP_ERR;
    }
    e->program = lp_rs_compile(writer, res->reader[k]->root, errstr, errstr_size);
    if (e->program == NULL) {
        return LP_ERR;
    }
    e->state = LP_AVRO_ID_RESOLVED;
    e->kind = k;
    return LP_OK;
}

static int configured_kind(const lp_avro_codec_t *codec, int32_t id) {
    for (int k = 0; k < LP_SCHEMA__ALL; k++) {
        if (codec->ids[k] >= 0 && codec->ids[k] == id) {
            return k;
        }
    }
    return -1;
}

int lp_avro_codec_add_schema(lp_avro_codec_t *codec, int32_t id, const char *schema_json,
                             size_t len, char *errstr, size_t errstr_size) {
    lp_avro_resolver_t *res = resolver_of(codec);
    int configured = configured_kind(codec, id);
    entry_t e = {.id = id};
    int rc;

    if (res == NULL) {
        return lp_codec_err(errstr, errstr_size, "out of memory");
    }
    if (schema_json == NULL) {
        return lp_codec_err(errstr, errstr_size, "schema id %d: no schema text", (int)id);
    }
    rc = classify(codec, res, schema_json, len, &e, errstr, errstr_size);
    if (configured >= 0) {
        /* The configured id keeps its place on the fast path; it can only be confirmed. */
        entry_clear(&e);
        if (rc == LP_OK && e.state == LP_AVRO_ID_DIRECT && e.kind == configured) {
            return LP_OK;
        }
        return lp_codec_err(
            errstr, errstr_size, "schema id %d is configured for %s, and this schema is not %s's",
            (int)id, lp_codec_schema_names[configured], lp_codec_schema_names[configured]);
    }
    if (rc != LP_OK) {
        e.state = LP_AVRO_ID_UNREADABLE;
        if ((e.why = strdup(errstr)) == NULL) {
            return LP_ERR;
        }
    }
    if (store(res, &e, errstr, errstr_size) != LP_OK) {
        return LP_ERR;
    }
    return rc;
}

void lp_avro_codec_set_fetch(lp_avro_codec_t *codec, lp_avro_fetch_fn fn, void *ctx) {
    codec->fetch = fn;
    codec->fetch_ctx = ctx;
}

lp_avro_id_state_t lp_avro_codec_id_state(const lp_avro_codec_t *codec, int32_t id,
                                          lp_schema_kind_t *kind) {
    int k = configured_kind(codec, id);
    const entry_t *e;

    if (k >= 0) {
        if (kind != NULL) {
            *kind = (lp_schema_kind_t)k;
        }
        return LP_AVRO_ID_DIRECT;
    }
    if (codec->resolver == NULL || (e = find(codec->resolver, id)) == NULL) {
        return LP_AVRO_ID_UNKNOWN;
    }
    if (kind != NULL && e->state != LP_AVRO_ID_UNREADABLE) {
        *kind = (lp_schema_kind_t)e->kind;
    }
    return e->state;
}

/* ---- decoding ---- */

int lp_avro_resolver_find(const lp_avro_resolver_t *res, int32_t id, int *kind, char *errstr,
                          size_t errstr_size) {
    const entry_t *e = find(res, id);

    if (e == NULL) {
        return LP_AVRO_UNKNOWN_ID;
    }
    switch (e->state) {
    case LP_AVRO_ID_DIRECT:
        *kind = e->kind;
        return LP_OK;
    case LP_AVRO_ID_RESOLVED:
        *kind = e->kind;
        return LP_AVRO_UNFRAME_RESOLVE;
    default:
        return lp_codec_err(errstr, errstr_size, "schema id %d: %s", (int)e->id, e->why);
    }
}

static int32_t confluent_id(const uint8_t *buf) {
    return (int32_t)(((uint32_t)buf[1] << 24) | ((uint32_t)buf[2] << 16) | ((uint32_t)buf[3] << 8) |
                     buf[4]);
}

/* Rewrites the record in the reader's encoding, then decodes that as a raw record of kind. */
static int decode_resolved(lp_avro_codec_t *codec, int kind, const uint8_t *buf, size_t len,
                           lp_event_t *event, char *errstr, size_t errstr_size) {
    lp_avro_resolver_t *res = codec->resolver;
    int32_t id = confluent_id(buf);
    const entry_t *e = find(res, id);
    lp_avro_rd_t rd = {.buf = buf,
                       .len = len,
                       .pos = 5,
                       .field = "",
                       .errstr = errstr,
                       .errstr_size = errstr_size};
    lp_avro_wr_t wr = {.buf = res->scratch, .size = sizeof(res->scratch)};

    if (lp_rs_run(e->program, &res->vm, &rd, &wr) != LP_OK || lp_avro_rd_end(&rd) != LP_OK) {
        return lp_rs_prefix(errstr, errstr_size, "schema id %d: ", (int)id);
    }
    if (wr.overflow) {
        return lp_codec_err(errstr, errstr_size,
                            "schema id %d: the record is longer than %d bytes once resolved",
                            (int)id, SCRATCH_SIZE);
    }
    if (lp_avro_decode_body(codec, wr.buf, wr.pos, 0, kind, event, errstr, errstr_size) != LP_OK) {
        return lp_rs_prefix(errstr, errstr_size, "schema id %d, read as %s: ", (int)id,
                            lp_codec_schema_names[kind]);
    }
    return LP_OK;
}

/* An unknown id: asks the fetch function, learns the schema, decodes again (the id is known by
 * then, so this does not recurse further). */
static int decode_fetched(lp_avro_codec_t *codec, const uint8_t *buf, size_t len, int expected,
                          lp_event_t *event, char *errstr, size_t errstr_size) {
    int32_t id = confluent_id(buf);
    const char *json = NULL;
    char why[LP_ERRSTR] = "";
    int rc = codec->fetch(codec->fetch_ctx, id, &json, why, sizeof(why));

    if (rc == LP_AVRO_UNKNOWN_ID) {
        return LP_ERR; /* errstr already says "unknown schema id N" */
    }
    if (rc != LP_OK || json == NULL) {
        lp_codec_err(errstr, errstr_size, "schema id %d: cannot fetch its schema now: %s", (int)id,
                     why[0] != '\0' ? why : "no reason given");
        return LP_AVRO_RETRY;
    }
    if (lp_avro_codec_add_schema(codec, id, json, strlen(json), why, sizeof(why)) != LP_OK) {
        return lp_codec_err(errstr, errstr_size, "schema id %d: %s", (int)id, why);
    }
    return lp_avro_decode_event(codec, buf, len, expected, event, errstr, errstr_size);
}

int lp_avro_decode_slow(lp_avro_codec_t *codec, int rc, const uint8_t *buf, size_t len,
                        int expected, int kind, lp_event_t *event, char *errstr,
                        size_t errstr_size) {
    if (rc == LP_AVRO_UNFRAME_RESOLVE) {
        return decode_resolved(codec, kind, buf, len, event, errstr, errstr_size);
    }
    if (rc == LP_AVRO_UNKNOWN_ID && codec->fetch != NULL) {
        return decode_fetched(codec, buf, len, expected, event, errstr, errstr_size);
    }
    return LP_ERR;
}
