/* Avro schemas read with the project's JSON reader, keeping what resolution needs and the
 * Parsing Canonical Form drops (aliases, defaults). Strict where the specification is (names,
 * unions, definitions), lenient about other attributes (doc, order, logicalType and custom ones
 * are skipped). Keys of a schema object may come in any order, so each object is read twice:
 * once to find where its keys' values are, then value by value in the order they are needed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/avro_resolve.h"

#define LIST_MAX 4096 /* fields of a record, symbols of an enum, branches of a union, aliases */

/* ---- JSON helpers ---- */

int lp_rs_json_skip(lp_json_rd_t *rd, int depth_left) {
    char c = lp_json_peek(rd);
    char key[LP_JSON_KEY_MAX + 1];
    int index = 0;
    bool done = false;

    if (c != '{' && c != '[') {
        return lp_json_skip(rd);
    }
    if (depth_left <= 0) {
        return lp_json_fail(rd, "JSON nested too deeply");
    }
    rd->depth = 0;
    if ((c == '{' ? lp_json_object_begin(rd) : lp_json_array_begin(rd)) != LP_OK) {
        return LP_ERR;
    }
    for (;;) {
        int rc = c == '{' ? lp_json_object_next(rd, &index, key, &done)
                          : lp_json_array_next(rd, &index, &done);
        if (rc != LP_OK) {
            return LP_ERR;
        }
        if (done) {
            return LP_OK;
        }
        if (lp_rs_json_skip(rd, depth_left - 1) != LP_OK) {
            return LP_ERR;
        }
    }
}

/* ---- names ---- */

static int primitive_kind(const char *name) {
    for (int k = LP_RS_NULL; k <= LP_RS_STRING; k++) {
        if (strcmp(name, lp_rs_kind_names[k]) == 0) {
            return k;
        }
    }
    return -1;
}

/* [A-Za-z_][A-Za-z0-9_]*, or dot-separated such names when dotted. */
static bool name_valid(const char *s, bool dotted) {
    bool start = true;

    for (; *s != '\0'; s++) {
        char c = *s;
        if (c == '.' && dotted && !start) {
            start = true;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
              (!start && c >= '0' && c <= '9'))) {
            return false;
        }
        start = false;
    }
    return !start;
}

static const char *unqualified(const char *name) {
    const char *dot = strrchr(name, '.');

    return dot != NULL ? dot + 1 : name;
}

/* ---- the parser ---- */

typedef struct {
    lp_json_rd_t rd;
    lp_rs_schema_t *schema;
    bool reader;
    int ntypes;
} parser_t;

/* Where the values of a schema or field object's keys are (0: the key is absent). */
typedef struct {
    size_t type, name, space, aliases, fields, symbols, items, values, size, def;
    size_t end;
} keys_t;

static void *fail_null(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void *fail_null(parser_t *p, const char *fmt, ...) {
    char msg[LP_ERRSTR];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lp_json_fail(&p->rd, "%s", msg);
    return NULL;
}

/* An object lacks a key: no key to name in the message. */
static void *missing(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void *missing(parser_t *p, const char *fmt, ...) {
    char msg[LP_ERRSTR];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->rd.key = "";
    return fail_null(p, "%s", msg);
}

static void *no_memory(parser_t *p) {
    return fail_null(p, "out of memory (schema too large)");
}

static size_t *key_slot(keys_t *keys, const char *key) {
    static const struct {
        const char *key;
        size_t offset;
    } table[] = {
        {"type", offsetof(keys_t, type)},       {"name", offsetof(keys_t, name)},
        {"namespace", offsetof(keys_t, space)}, {"aliases", offsetof(keys_t, aliases)},
        {"fields", offsetof(keys_t, fields)},   {"symbols", offsetof(keys_t, symbols)},
        {"items", offsetof(keys_t, items)},     {"values", offsetof(keys_t, values)},
        {"size", offsetof(keys_t, size)},       {"default", offsetof(keys_t, def)},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(key, table[i].key) == 0) {
            return (size_t *)((char *)keys + table[i].offset);
        }
    }
    return NULL;
}

/* First reading of an object: where each known key's value starts, and where the object ends. */
static int collect_keys(parser_t *p, keys_t *keys) {
    char key[LP_JSON_KEY_MAX + 1];
    int index = 0;
    bool done = false;

    memset(keys, 0, sizeof(*keys));
    p->rd.depth = 0;
    if (lp_json_object_begin(&p->rd) != LP_OK) {
        return LP_ERR;
    }
    for (;;) {
        size_t *slot;
        if (lp_json_object_next(&p->rd, &index, key, &done) != LP_OK) {
            return LP_ERR;
        }
        if (done) {
            break;
        }
        slot = key_slot(keys, key);
        lp_json_peek(&p->rd);
        if (slot != NULL) {
            if (*slot != 0) {
                return lp_json_fail(&p->rd, "duplicate key \"%s\"", key);
            }
            *slot = p->rd.pos;
        }
        if (lp_rs_json_skip(&p->rd, LP_RS_JSON_DEPTH_MAX) != LP_OK) {
            return LP_ERR;
        }
    }
    keys->end = p->rd.pos;
    return LP_OK;
}

static int read_string(parser_t *p, size_t pos, const char *key, char *out, size_t size) {
    p->rd.pos = pos;
    p->rd.key = key;
    return lp_json_string(&p->rd, out, size);
}

/* The number of elements of the array at pos (validated, up to LIST_MAX). */
static int count_elements(parser_t *p, size_t pos, int *n) {
    int index = 0;
    bool done = false;

    p->rd.pos = pos;
    p->rd.depth = 0;
    if (lp_json_array_begin(&p->rd) != LP_OK) {
        return LP_ERR;
    }
    for (*n = 0;; (*n)++) {
        if (lp_json_array_next(&p->rd, &index, &done) != LP_OK) {
            return LP_ERR;
        }
        if (done) {
            break;
        }
        if (*n >= LIST_MAX) {
            return lp_json_fail(&p->rd, "more than %d elements", LIST_MAX);
        }
        if (lp_rs_json_skip(&p->rd, LP_RS_JSON_DEPTH_MAX) != LP_OK) {
            return LP_ERR;
        }
    }
    p->rd.pos = pos;
    p->rd.depth = 0;
    return lp_json_array_begin(&p->rd);
}

/* An array of distinct names (aliases, symbols). */
static int parse_names(parser_t *p, size_t pos, const char *key, bool dotted, const char ***out,
                       int *n) {
    char name[LP_RS_NAME_MAX + 1];
    int index = 0;
    bool done = false;
    const char **names;

    p->rd.key = key;
    if (count_elements(p, pos, n) != LP_OK) {
        return LP_ERR;
    }
    if ((names = lp_rs_alloc(&p->schema->arena, sizeof(*names) * (size_t)*n)) == NULL) {
        no_memory(p);
        return LP_ERR;
    }
    for (int i = 0; i < *n; i++) {
        if (lp_json_array_next(&p->rd, &index, &done) != LP_OK ||
            lp_json_string(&p->rd, name, sizeof(name)) != LP_OK) {
            return LP_ERR;
        }
        if (!name_valid(name, dotted)) {
            return lp_json_fail(&p->rd, "invalid name \"%s\"", name);
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(names[j], name) == 0) {
                return lp_json_fail(&p->rd, "\"%s\" appears twice", name);
            }
        }
        if ((names[i] = lp_rs_strdup(&p->schema->arena, name)) == NULL) {
            no_memory(p);
            return LP_ERR;
        }
    }
    *out = names;
    return LP_OK;
}

static lp_rs_type_t *new_type(parser_t *p, lp_rs_kind_t kind) {
    lp_rs_type_t *t;

    if (++p->ntypes > LP_RS_TYPES_MAX) {
        return fail_null(p, "more than %d types", LP_RS_TYPES_MAX);
    }
    if ((t = lp_rs_alloc(&p->schema->arena, sizeof(*t))) == NULL) {
        return no_memory(p);
    }
    t->kind = kind;
    t->def_symbol = -1;
    return t;
}

static const lp_rs_type_t *find_named(const parser_t *p, const char *full) {
    for (const lp_rs_type_t *t = p->schema->named; t != NULL; t = t->next) {
        if (strcmp(t->full, full) == 0) {
            return t;
        }
    }
    return NULL;
}

/* A type name: a primitive, or a named type defined before, in the enclosing namespace or in
 * the null namespace. */
static const lp_rs_type_t *lookup(parser_t *p, const char *name, const char *space) {
    char full[LP_RS_NAME_MAX + 1];
    const lp_rs_type_t *t = NULL;
    int kind = primitive_kind(name);

    if (kind >= 0) {
        return new_type(p, (lp_rs_kind_t)kind);
    }
    if (strchr(name, '.') == NULL && space[0] != '\0' &&
        snprintf(full, sizeof(full), "%s.%s", space, name) < (int)sizeof(full)) {
        t = find_named(p, full);
    }
    if (t == NULL && (t = find_named(p, name)) == NULL) {
        return fail_null(p, "unknown type \"%s\"", name);
    }
    return t;
}

static const lp_rs_type_t *parse_type(parser_t *p, const char *space, int depth);

/* name, namespace and aliases of a record, enum or fixed; defines it. */
static lp_rs_type_t *parse_named(parser_t *p, const keys_t *keys, const char *space,
                                 lp_rs_kind_t kind) {
    char name[LP_RS_NAME_MAX + 1];
    char ns[LP_RS_NAME_MAX + 1];
    char full[LP_RS_NAME_MAX + 1];
    lp_rs_type_t *t;

    if (keys->name == 0) {
        return missing(p, "%s needs a \"name\"",
                       kind == LP_RS_RECORD ? "a record"
                       : kind == LP_RS_ENUM ? "an enum"
                                            : "a fixed");
    }
    if (read_string(p, keys->name, "name", name, sizeof(name)) != LP_OK) {
        return NULL;
    }
    if (!name_valid(name, true)) {
        return fail_null(p, "invalid name \"%s\"", name);
    }
    snprintf(ns, sizeof(ns), "%s", space);
    if (keys->space != 0 && strchr(name, '.') == NULL) {
        if (read_string(p, keys->space, "namespace", ns, sizeof(ns)) != LP_OK) {
            return NULL;
        }
        if (ns[0] != '\0' && !name_valid(ns, true)) {
            return fail_null(p, "invalid namespace \"%s\"", ns);
        }
    }
    if (strchr(name, '.') != NULL || ns[0] == '\0') {
        snprintf(full, sizeof(full), "%s", name);
    } else if (snprintf(full, sizeof(full), "%s.%s", ns, name) >= (int)sizeof(full)) {
        return fail_null(p, "full name %s.%s longer than %d bytes", ns, name, LP_RS_NAME_MAX);
    }
    if (primitive_kind(unqualified(full)) >= 0) {
        return fail_null(p, "a %s may not be named after a primitive type", lp_rs_kind_names[kind]);
    }
    if (find_named(p, full) != NULL) {
        return fail_null(p, "type %s defined twice", full);
    }
    if ((t = new_type(p, kind)) == NULL) {
        return NULL;
    }
    if ((t->full = lp_rs_strdup(&p->schema->arena, full)) == NULL) {
        return no_memory(p);
    }
    t->name = unqualified(t->full);
    t->index = p->schema->nnamed++;
    t->next = p->schema->named;
    p->schema->named = t;
    if (keys->aliases != 0 &&
        parse_names(p, keys->aliases, "aliases", true, &t->aliases, &t->naliases) != LP_OK) {
        return NULL;
    }
    return t;
}

static int field_default(parser_t *p, lp_rs_field_t *f, size_t pos) {
    uint8_t *buf = malloc(LP_RS_DEFAULT_MAX);
    lp_avro_wr_t wr = {.buf = buf, .size = LP_RS_DEFAULT_MAX};
    int rc = LP_ERR;
    uint8_t *def;

    p->rd.pos = pos;
    p->rd.key = "default";
    if (buf == NULL) {
        no_memory(p);
        return LP_ERR;
    }
    if (lp_rs_encode_default(&p->rd, f->type, &wr, 0) != LP_OK) {
        goto err;
    }
    if (wr.overflow) {
        lp_json_fail(&p->rd, "default longer than %d bytes once encoded", LP_RS_DEFAULT_MAX);
        goto err;
    }
    /* A non-NULL def says "has a default", even when it encodes to no bytes (null). */
    if ((def = lp_rs_alloc(&p->schema->arena, wr.pos)) == NULL) {
        no_memory(p);
        goto err;
    }
    memcpy(def, buf, wr.pos);
    f->def = def;
    f->def_len = wr.pos;
    rc = LP_OK;
err:
    free(buf);
    return rc;
}

static int parse_field(parser_t *p, lp_rs_type_t *rec, int i, const char *space, int depth) {
    lp_rs_field_t *f = &rec->fields[i];
    char name[LP_RS_NAME_MAX + 1];
    keys_t keys;

    if (collect_keys(p, &keys) != LP_OK) {
        return LP_ERR;
    }
    if (keys.name == 0 || keys.type == 0) {
        return lp_json_fail(&p->rd, "field %d needs a \"name\" and a \"type\"", i + 1);
    }
    if (read_string(p, keys.name, "name", name, sizeof(name)) != LP_OK) {
        return LP_ERR;
    }
    if (!name_valid(name, false)) {
        return lp_json_fail(&p->rd, "invalid field name \"%s\"", name);
    }
    for (int j = 0; j < i; j++) {
        if (strcmp(rec->fields[j].name, name) == 0) {
            return lp_json_fail(&p->rd, "field '%s' appears twice", name);
        }
    }
    if ((f->name = lp_rs_strdup(&p->schema->arena, name)) == NULL) {
        no_memory(p);
        return LP_ERR;
    }
    p->rd.pos = keys.type;
    p->rd.key = "type";
    if ((f->type = parse_type(p, space, depth + 1)) == NULL ||
        (keys.aliases != 0 &&
         parse_names(p, keys.aliases, "aliases", false, &f->aliases, &f->naliases) != LP_OK) ||
        (p->reader && keys.def != 0 && field_default(p, f, keys.def) != LP_OK)) {
        return lp_rs_prefix(p->rd.errstr, p->rd.errstr_size, "field '%s': ", name);
    }
    rec->nfields = i + 1;
    p->rd.pos = keys.end;
    return LP_OK;
}

static const lp_rs_type_t *parse_record(parser_t *p, const keys_t *keys, const char *space,
                                        int depth) {
    lp_rs_type_t *t = parse_named(p, keys, space, LP_RS_RECORD);
    char ns[LP_RS_NAME_MAX + 1];
    int index = 0;
    bool done = false;
    int n = 0;

    if (t == NULL) {
        return NULL;
    }
    /* The record's namespace encloses its fields' types. */
    snprintf(ns, sizeof(ns), "%.*s", t->name > t->full ? (int)(t->name - t->full - 1) : 0, t->full);
    if (keys->fields == 0) {
        return missing(p, "record %s needs \"fields\"", t->full);
    }
    p->rd.key = "fields";
    if (count_elements(p, keys->fields, &n) != LP_OK) {
        return NULL;
    }
    if ((t->fields = lp_rs_alloc(&p->schema->arena, sizeof(*t->fields) * (size_t)n)) == NULL) {
        return no_memory(p);
    }
    for (int i = 0; i < n; i++) {
        if (lp_json_array_next(&p->rd, &index, &done) != LP_OK ||
            parse_field(p, t, i, ns, depth) != LP_OK) {
            lp_rs_prefix(p->rd.errstr, p->rd.errstr_size, "record %s: ", t->name);
            return NULL;
        }
    }
    t->complete = true;
    return t;
}

static const lp_rs_type_t *parse_enum(parser_t *p, const keys_t *keys, const char *space) {
    lp_rs_type_t *t = parse_named(p, keys, space, LP_RS_ENUM);
    char def[LP_RS_NAME_MAX + 1];

    if (t == NULL) {
        return NULL;
    }
    if (keys->symbols == 0) {
        return missing(p, "enum %s needs \"symbols\"", t->full);
    }
    if (parse_names(p, keys->symbols, "symbols", false, &t->symbols, &t->nsymbols) != LP_OK) {
        return NULL;
    }
    if (t->nsymbols == 0) {
        return fail_null(p, "enum %s has no symbols", t->full);
    }
    if (keys->def != 0) {
        if (read_string(p, keys->def, "default", def, sizeof(def)) != LP_OK) {
            return NULL;
        }
        for (int i = 0; i < t->nsymbols; i++) {
            if (strcmp(t->symbols[i], def) == 0) {
                t->def_symbol = i;
            }
        }
        if (t->def_symbol < 0) {
            return fail_null(p, "default \"%s\" is not a symbol of %s", def, t->full);
        }
    }
    return t;
}

static const lp_rs_type_t *parse_fixed(parser_t *p, const keys_t *keys, const char *space) {
    lp_rs_type_t *t = parse_named(p, keys, space, LP_RS_FIXED);

    if (t == NULL) {
        return NULL;
    }
    if (keys->size == 0) {
        return missing(p, "fixed %s needs a \"size\"", t->full);
    }
    p->rd.pos = keys->size;
    p->rd.key = "size";
    return lp_json_int(&p->rd, 0, INT32_MAX, &t->size) == LP_OK ? t : NULL;
}

static const lp_rs_type_t *parse_container(parser_t *p, const keys_t *keys, lp_rs_kind_t kind,
                                           const char *space, int depth) {
    size_t pos = kind == LP_RS_ARRAY ? keys->items : keys->values;
    lp_rs_type_t *t;

    if (pos == 0) {
        return missing(p,
                       kind == LP_RS_ARRAY ? "an array needs \"items\"" : "a map needs \"values\"");
    }
    if ((t = new_type(p, kind)) == NULL) {
        return NULL;
    }
    p->rd.pos = pos;
    p->rd.key = kind == LP_RS_ARRAY ? "items" : "values";
    t->items = parse_type(p, space, depth + 1);
    return t->items != NULL ? t : NULL;
}

static const lp_rs_type_t *parse_object(parser_t *p, const char *space, int depth) {
    char type[LP_RS_NAME_MAX + 1];
    const lp_rs_type_t *t;
    keys_t keys;

    if (collect_keys(p, &keys) != LP_OK) {
        return NULL;
    }
    if (keys.type == 0) {
        return missing(p, "a schema object needs a \"type\"");
    }
    if (read_string(p, keys.type, "type", type, sizeof(type)) != LP_OK) {
        return NULL;
    }
    if (strcmp(type, "record") == 0) {
        t = parse_record(p, &keys, space, depth);
    } else if (strcmp(type, "enum") == 0) {
        t = parse_enum(p, &keys, space);
    } else if (strcmp(type, "fixed") == 0) {
        t = parse_fixed(p, &keys, space);
    } else if (strcmp(type, "array") == 0) {
        t = parse_container(p, &keys, LP_RS_ARRAY, space, depth);
    } else if (strcmp(type, "map") == 0) {
        t = parse_container(p, &keys, LP_RS_MAP, space, depth);
    } else {
        t = lookup(p, type, space); /* a primitive with attributes (logicalType), or a name */
    }
    p->rd.pos = keys.end;
    return t;
}

static bool same_branch(const lp_rs_type_t *a, const lp_rs_type_t *b) {
    if (a->full != NULL || b->full != NULL) {
        return a->full != NULL && b->full != NULL && strcmp(a->full, b->full) == 0;
    }
    return a->kind == b->kind;
}

static const lp_rs_type_t *parse_union(parser_t *p, const char *space, int depth) {
    lp_rs_type_t *t = new_type(p, LP_RS_UNION);
    const char *key = p->rd.key;
    int index = 0;
    bool done = false;
    int n = 0;

    if (t == NULL || count_elements(p, p->rd.pos, &n) != LP_OK) {
        return NULL;
    }
    if (n == 0) {
        return fail_null(p, "a union needs at least one type");
    }
    if ((t->branches = lp_rs_alloc(&p->schema->arena, sizeof(*t->branches) * (size_t)n)) == NULL) {
        return no_memory(p);
    }
    for (int i = 0; i < n; i++) {
        const lp_rs_type_t *b;
        if (lp_json_array_next(&p->rd, &index, &done) != LP_OK) {
            return NULL;
        }
        if (lp_json_peek(&p->rd) == '[') {
            return fail_null(p, "a union may not contain a union");
        }
        p->rd.key = key;
        if ((b = parse_type(p, space, depth + 1)) == NULL) {
            return NULL;
        }
        for (int j = 0; j < i; j++) {
            if (same_branch(t->branches[j], b)) {
                return fail_null(p, "a union may not hold two %s",
                                 b->full != NULL ? b->full : lp_rs_kind_names[b->kind]);
            }
        }
        t->branches[t->nbranches++] = b;
    }
    /* The closing bracket: counted above, so this is the end. */
    return lp_json_array_next(&p->rd, &index, &done) == LP_OK ? t : NULL;
}

static const lp_rs_type_t *parse_type(parser_t *p, const char *space, int depth) {
    char name[LP_RS_NAME_MAX + 1];

    if (depth > LP_RS_DEPTH_MAX) {
        return fail_null(p, "types nested deeper than %d levels", LP_RS_DEPTH_MAX);
    }
    switch (lp_json_peek(&p->rd)) {
    case '"':
        return lp_json_string(&p->rd, name, sizeof(name)) == LP_OK ? lookup(p, name, space) : NULL;
    case '[':
        return parse_union(p, space, depth);
    case '{':
        return parse_object(p, space, depth);
    case 0:
        return fail_null(p, "unexpected end of input, expected a type");
    default:
        return fail_null(p, "expected a type: a name, an object or an array (a union)");
    }
}

lp_rs_schema_t *lp_rs_schema_parse(const char *json, size_t len, bool reader, char *errstr,
                                   size_t errstr_size) {
    lp_rs_schema_t *schema;
    parser_t p = {
        .rd = {.buf = json, .len = len, .key = "", .errstr = errstr, .errstr_size = errstr_size},
        .reader = reader};

    if (len > LP_RS_TEXT_MAX) {
        lp_codec_err(errstr, errstr_size, "schema of %zu bytes: longer than %d", len,
                     LP_RS_TEXT_MAX);
        return NULL;
    }
    if ((schema = calloc(1, sizeof(*schema))) == NULL) {
        lp_codec_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p.schema = schema;
    schema->root = parse_type(&p, "", 0);
    if (schema->root == NULL || lp_json_end(&p.rd) != LP_OK) {
        lp_rs_schema_free(schema);
        return NULL;
    }
    return schema;
}

void lp_rs_schema_free(lp_rs_schema_t *schema) {
    if (schema != NULL) {
        lp_rs_arena_free(&schema->arena);
        free(schema);
    }
}
