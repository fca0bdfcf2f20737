/* Field defaults: the JSON value of a reader field's "default", encoded once, when the reader
 * schema is parsed, as the Avro binary of the field's type. Resolution copies those bytes for a
 * field the writer lacks. As the specification says, a union's default is of its first branch,
 * and bytes and fixed defaults are strings whose characters (U+0000..U+00FF) are the bytes. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "codec/avro_resolve.h"

/* The JSON string at rd, decoded into a buffer the caller frees; *len without the NUL (the JSON
 * reader refuses \u0000, so the text holds no NUL). */
static char *read_text(lp_json_rd_t *rd, size_t *len) {
    size_t start;
    size_t raw;
    char *s;

    lp_json_peek(rd);
    start = rd->pos;
    if (lp_json_string(rd, NULL, 0) != LP_OK) {
        return NULL;
    }
    raw = rd->pos - start;
    rd->pos = start;
    if ((s = malloc(raw + 1)) == NULL) {
        lp_json_fail(rd, "out of memory");
        return NULL;
    }
    if (lp_json_string(rd, s, raw + 1) != LP_OK) {
        free(s);
        return NULL;
    }
    *len = strlen(s);
    return s;
}

/* UTF-8 characters U+0000..U+00FF to the bytes of those values, in place. Returns the byte
 * count, or SIZE_MAX if a character is above U+00FF. */
static size_t latin1(char *s, size_t len) {
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x80) {
            if ((c != 0xC2 && c != 0xC3) || i + 1 >= len) {
                return SIZE_MAX;
            }
            c = (uint8_t)(((c & 0x1F) << 6) | ((uint8_t)s[++i] & 0x3F));
        }
        s[n++] = (char)c;
    }
    return n;
}

static int text_default(lp_json_rd_t *rd, const lp_rs_type_t *t, lp_avro_wr_t *wr) {
    size_t len = 0;
    char *s = read_text(rd, &len);
    int rc = LP_ERR;

    if (s == NULL) {
        return LP_ERR;
    }
    if (t->kind != LP_RS_STRING && (len = latin1(s, len)) == SIZE_MAX) {
        lp_json_fail(rd, "a character above U+00FF in a bytes or fixed default");
        goto err;
    }
    if (t->kind == LP_RS_FIXED) {
        if ((int64_t)len != t->size) {
            lp_json_fail(rd, "default of fixed %s has %zu bytes, not %lld", t->name, len,
                         (long long)t->size);
            goto err;
        }
        lp_avro_wr_raw(wr, s, len);
    } else {
        lp_avro_wr_bytes(wr, s, len);
    }
    rc = LP_OK;
err:
    free(s);
    return rc;
}

static int float_default(lp_json_rd_t *rd, lp_avro_wr_t *wr) {
    uint8_t bytes[4];
    uint32_t bits;
    double d;
    float f;

    if (lp_json_double(rd, &d) != LP_OK) {
        return LP_ERR;
    }
    if (d > FLT_MAX || d < -FLT_MAX) {
        return lp_json_fail(rd, "%g is out of range for a float", d);
    }
    f = (float)d;
    memcpy(&bits, &f, sizeof(bits));
    for (int i = 0; i < 4; i++) {
        bytes[i] = (uint8_t)(bits >> (8 * i));
    }
    lp_avro_wr_raw(wr, bytes, sizeof(bytes));
    return LP_OK;
}

static int enum_default(lp_json_rd_t *rd, const lp_rs_type_t *t, lp_avro_wr_t *wr) {
    char symbol[LP_RS_NAME_MAX + 1];

    if (lp_json_string(rd, symbol, sizeof(symbol)) != LP_OK) {
        return LP_ERR;
    }
    for (int i = 0; i < t->nsymbols; i++) {
        if (strcmp(t->symbols[i], symbol) == 0) {
            lp_avro_wr_long(wr, i);
            return LP_OK;
        }
    }
    return lp_json_fail(rd, "\"%s\" is not a symbol of %s", symbol, t->name);
}

/* lp_json_object_next gives "" for keys longer than LP_JSON_KEY_MAX: tell those from a real "". */
static int check_key(lp_json_rd_t *rd, size_t at, const char *key) {
    const char *quote = memchr(rd->buf + at, '"', rd->pos - at);

    if (key[0] == '\0' && quote != NULL && quote[1] != '"') {
        return lp_json_fail(rd, "a key of a default longer than %d bytes", LP_JSON_KEY_MAX);
    }
    return LP_OK;
}

/* Elements of the array, or members of the object, at rd (left where it was). */
static int count_members(lp_json_rd_t *rd, bool object, int64_t *n) {
    char key[LP_JSON_KEY_MAX + 1];
    int index = 0;
    bool done = false;
    size_t start;

    lp_json_peek(rd);
    start = rd->pos;
    rd->depth = 0;
    if ((object ? lp_json_object_begin(rd) : lp_json_array_begin(rd)) != LP_OK) {
        return LP_ERR;
    }
    for (*n = 0;; (*n)++) {
        int rc = object ? lp_json_object_next(rd, &index, key, &done)
                        : lp_json_array_next(rd, &index, &done);
        if (rc != LP_OK) {
            return LP_ERR;
        }
        if (done) {
            break;
        }
        if (lp_rs_json_skip(rd, LP_RS_JSON_DEPTH_MAX) != LP_OK) {
            return LP_ERR;
        }
    }
    rd->pos = start;
    return LP_OK;
}

/* Arrays and maps: one block of all the elements, then the empty block. */
static int block_default(lp_json_rd_t *rd, const lp_rs_type_t *t, lp_avro_wr_t *wr, int depth) {
    bool object = t->kind == LP_RS_MAP;
    char key[LP_JSON_KEY_MAX + 1];
    int index = 0;
    bool done = false;
    int64_t n = 0;

    if (count_members(rd, object, &n) != LP_OK) {
        return LP_ERR;
    }
    if (n > 0) {
        lp_avro_wr_long(wr, n);
    }
    rd->depth = 0;
    if ((object ? lp_json_object_begin(rd) : lp_json_array_begin(rd)) != LP_OK) {
        return LP_ERR;
    }
    for (;;) {
        size_t at = rd->pos;
        int rc = object ? lp_json_object_next(rd, &index, key, &done)
                        : lp_json_array_next(rd, &index, &done);
        if (rc != LP_OK) {
            return LP_ERR;
        }
        if (done) {
            break;
        }
        if (object && check_key(rd, at, key) != LP_OK) {
            return LP_ERR;
        }
        if (object) {
            lp_avro_wr_bytes(wr, key, strlen(key));
        }
        if (lp_rs_encode_default(rd, t->items, wr, depth + 1) != LP_OK) {
            return LP_ERR;
        }
    }
    lp_avro_wr_long(wr, 0);
    return LP_OK;
}

/* Finds where the value of each field is in the object at rd; rd is left after the object. */
static int record_members(lp_json_rd_t *rd, const lp_rs_type_t *t, size_t *pos) {
    char key[LP_JSON_KEY_MAX + 1];
    int index = 0;
    bool done = false;

    rd->depth = 0;
    if (lp_json_object_begin(rd) != LP_OK) {
        return LP_ERR;
    }
    for (;;) {
        size_t at = rd->pos;
        if (lp_json_object_next(rd, &index, key, &done) != LP_OK) {
            return LP_ERR;
        }
        if (done) {
            return LP_OK;
        }
        if (check_key(rd, at, key) != LP_OK) {
            return LP_ERR;
        }
        lp_json_peek(rd);
        for (int i = 0; i < t->nfields; i++) {
            if (strcmp(t->fields[i].name, key) == 0) {
                pos[i] = rd->pos;
            }
        }
        if (lp_rs_json_skip(rd, LP_RS_JSON_DEPTH_MAX) != LP_OK) {
            return LP_ERR;
        }
    }
}

/* A record: each field from the object, or its own default when the object lacks it. */
static int record_default(lp_json_rd_t *rd, const lp_rs_type_t *t, lp_avro_wr_t *wr, int depth) {
    size_t *pos;
    size_t end;
    int rc = LP_ERR;

    if (!t->complete) {
        return lp_json_fail(rd, "a default of record %s inside its own definition", t->name);
    }
    if ((pos = calloc((size_t)t->nfields + 1, sizeof(*pos))) == NULL) {
        return lp_json_fail(rd, "out of memory");
    }
    if (record_members(rd, t, pos) != LP_OK) {
        goto err;
    }
    end = rd->pos;
    for (int i = 0; i < t->nfields; i++) {
        const lp_rs_field_t *f = &t->fields[i];
        if (pos[i] != 0) {
            rd->pos = pos[i];
            if (lp_rs_encode_default(rd, f->type, wr, depth + 1) != LP_OK) {
                goto err;
            }
        } else if (f->def != NULL) {
            lp_avro_wr_raw(wr, f->def, f->def_len);
        } else {
            lp_json_fail(rd, "default of record %s lacks field '%s'", t->name, f->name);
            goto err;
        }
    }
    rd->pos = end;
    rc = LP_OK;
err:
    free(pos);
    return rc;
}

int lp_rs_encode_default(lp_json_rd_t *rd, const lp_rs_type_t *t, lp_avro_wr_t *wr, int depth) {
    int64_t v = 0;
    double d = 0;
    bool b = false;

    if (depth > LP_RS_DEPTH_MAX) {
        return lp_json_fail(rd, "default nested deeper than %d levels", LP_RS_DEPTH_MAX);
    }
    switch (t->kind) {
    case LP_RS_NULL:
        return lp_json_null(rd) == 1 ? LP_OK : lp_json_fail(rd, "expected null");
    case LP_RS_BOOLEAN:
        if (lp_json_bool(rd, &b) != LP_OK) {
            return LP_ERR;
        }
        lp_avro_wr_bool(wr, b);
        return LP_OK;
    case LP_RS_INT:
    case LP_RS_LONG:
        if (lp_json_int(rd, t->kind == LP_RS_INT ? INT32_MIN : INT64_MIN,
                        t->kind == LP_RS_INT ? INT32_MAX : INT64_MAX, &v) != LP_OK) {
            return LP_ERR;
        }
        lp_avro_wr_long(wr, v);
        return LP_OK;
    case LP_RS_FLOAT:
        return float_default(rd, wr);
    case LP_RS_DOUBLE:
        if (lp_json_double(rd, &d) != LP_OK) {
            return LP_ERR;
        }
        lp_avro_wr_double(wr, d);
        return LP_OK;
    case LP_RS_BYTES:
    case LP_RS_STRING:
    case LP_RS_FIXED:
        return text_default(rd, t, wr);
    case LP_RS_ENUM:
        return enum_default(rd, t, wr);
    case LP_RS_ARRAY:
    case LP_RS_MAP:
        return block_default(rd, t, wr, depth);
    case LP_RS_RECORD:
        return record_default(rd, t, wr, depth);
    case LP_RS_UNION:
        lp_avro_wr_long(wr, 0);
        return lp_rs_encode_default(rd, t->branches[0], wr, depth + 1);
    }
    return lp_json_fail(rd, "unknown type");
}
