/* Schemas once parsed: the memory that holds them, how named types match, their Parsing Canonical
 * Form (to tell a writer schema that is ours from one that needs resolution) and the short
 * descriptions that messages use. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/avro_resolve.h"

#define ARENA_CHUNK 16384
#define ARENA_MAX (64u * 1024 * 1024)

/* ---- arena ---- */

struct lp_rs_chunk {
    lp_rs_chunk_t *next;
    size_t used;
    size_t size;
    max_align_t data[];
};

void *lp_rs_alloc(lp_rs_arena_t *arena, size_t size) {
    lp_rs_chunk_t *chunk = arena->head;
    const size_t align = _Alignof(max_align_t);
    void *p;

    if (size > ARENA_MAX) {
        return NULL;
    }
    size = size == 0 ? align : (size + align - 1) / align * align;
    if (chunk == NULL || chunk->size - chunk->used < size) {
        size_t want = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        if (arena->total + want > ARENA_MAX || (chunk = malloc(sizeof(*chunk) + want)) == NULL) {
            return NULL;
        }
        chunk->next = arena->head;
        chunk->used = 0;
        chunk->size = want;
        arena->head = chunk;
        arena->total += want;
    }
    p = (char *)chunk->data + chunk->used;
    chunk->used += size;
    memset(p, 0, size);
    return p;
}

char *lp_rs_strdup(lp_rs_arena_t *arena, const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = lp_rs_alloc(arena, n);

    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

void lp_rs_arena_free(lp_rs_arena_t *arena) {
    while (arena->head != NULL) {
        lp_rs_chunk_t *next = arena->head->next;
        free(arena->head);
        arena->head = next;
    }
    arena->total = 0;
}

int lp_rs_prefix(char *errstr, size_t errstr_size, const char *fmt, ...) {
    char prefix[LP_ERRSTR];
    char tmp[LP_ERRSTR];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (snprintf(tmp, sizeof(tmp), "%s%s", prefix, errstr) < 0) {
        return LP_ERR;
    }
    return lp_codec_err(errstr, errstr_size, "%s", tmp);
}

/* ---- names ---- */

const char *const lp_rs_kind_names[] = {"null",   "boolean", "int",    "long",   "float",
                                        "double", "bytes",   "string", "record", "enum",
                                        "array",  "map",     "fixed",  "union"};

static const char *unqualified(const char *name) {
    const char *dot = strrchr(name, '.');

    return dot != NULL ? dot + 1 : name;
}

bool lp_rs_names_match(const lp_rs_type_t *writer, const lp_rs_type_t *reader) {
    if (strcmp(writer->name, reader->name) == 0) {
        return true;
    }
    for (int i = 0; i < reader->naliases; i++) {
        if (strcmp(writer->name, unqualified(reader->aliases[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- Parsing Canonical Form ---- */

typedef struct {
    char *out;
    size_t size;
    size_t len;
    bool overflow;
    bool *seen; /* by named type index: later uses print the name only */
} pcf_t;

static void pcf_put(pcf_t *c, const char *s) {
    size_t n = strlen(s);

    if (c->overflow || c->len + n >= c->size) {
        c->overflow = true;
        return;
    }
    memcpy(c->out + c->len, s, n + 1);
    c->len += n;
}

static void pcf_quoted(pcf_t *c, const char *s) {
    pcf_put(c, "\"");
    pcf_put(c, s);
    pcf_put(c, "\"");
}

/* Every name is defined before it is used, and the walk follows the text, so a named type is
 * seen before any reference to it: the recursion ends with the schema's nesting. */
static void pcf_type(pcf_t *c, const lp_rs_type_t *t) {
    char num[32];

    if (t->full != NULL && c->seen[t->index]) {
        pcf_quoted(c, t->full);
        return;
    }
    switch (t->kind) {
    case LP_RS_RECORD:
    case LP_RS_ENUM:
    case LP_RS_FIXED:
        c->seen[t->index] = true;
        pcf_put(c, "{\"name\":");
        pcf_quoted(c, t->full);
        pcf_put(c, ",\"type\":");
        pcf_quoted(c, lp_rs_kind_names[t->kind]);
        if (t->kind == LP_RS_RECORD) {
            pcf_put(c, ",\"fields\":[");
            for (int i = 0; i < t->nfields; i++) {
                pcf_put(c, i > 0 ? ",{\"name\":" : "{\"name\":");
                pcf_quoted(c, t->fields[i].name);
                pcf_put(c, ",\"type\":");
                pcf_type(c, t->fields[i].type);
                pcf_put(c, "}");
            }
            pcf_put(c, "]}");
        } else if (t->kind == LP_RS_ENUM) {
            pcf_put(c, ",\"symbols\":[");
            for (int i = 0; i < t->nsymbols; i++) {
                pcf_put(c, i > 0 ? "," : "");
                pcf_quoted(c, t->symbols[i]);
            }
            pcf_put(c, "]}");
        } else {
            snprintf(num, sizeof(num), ",\"size\":%lld}", (long long)t->size);
            pcf_put(c, num);
        }
        return;
    case LP_RS_ARRAY:
    case LP_RS_MAP:
        pcf_put(c, t->kind == LP_RS_ARRAY ? "{\"type\":\"array\",\"items\":"
                                          : "{\"type\":\"map\",\"values\":");
        pcf_type(c, t->items);
        pcf_put(c, "}");
        return;
    case LP_RS_UNION:
        pcf_put(c, "[");
        for (int i = 0; i < t->nbranches; i++) {
            pcf_put(c, i > 0 ? "," : "");
            pcf_type(c, t->branches[i]);
        }
        pcf_put(c, "]");
        return;
    default:
        pcf_quoted(c, lp_rs_kind_names[t->kind]);
        return;
    }
}

int lp_rs_canonical(const lp_rs_schema_t *schema, char *out, size_t size) {
    pcf_t c = {.out = out, .size = size};

    if (size == 0 || (c.seen = calloc((size_t)schema->nnamed + 1, sizeof(bool))) == NULL) {
        return LP_ERR;
    }
    out[0] = '\0';
    pcf_type(&c, schema->root);
    free(c.seen);
    return c.overflow ? LP_ERR : LP_OK;
}

/* ---- descriptions for messages ---- */

void lp_rs_describe(const lp_rs_type_t *t, char *out, size_t size) {
    char inner[128];
    size_t len;

    switch (t->kind) {
    case LP_RS_RECORD:
    case LP_RS_ENUM:
    case LP_RS_FIXED:
        snprintf(out, size, "%s %s", lp_rs_kind_names[t->kind], t->name);
        return;
    case LP_RS_ARRAY:
    case LP_RS_MAP:
        lp_rs_describe(t->items, inner, sizeof(inner));
        snprintf(out, size, "%s of %s", lp_rs_kind_names[t->kind], inner);
        return;
    case LP_RS_UNION:
        snprintf(out, size, "[");
        for (int i = 0; i < t->nbranches; i++) {
            const lp_rs_type_t *b = t->branches[i];
            len = strlen(out);
            snprintf(out + len, size - len, "%s%s", i > 0 ? ", " : "",
                     b->full != NULL ? b->name : lp_rs_kind_names[b->kind]);
        }
        len = strlen(out);
        snprintf(out + len, size - len, "]");
        return;
    default:
        snprintf(out, size, "%s", lp_rs_kind_names[t->kind]);
        return;
    }
}
