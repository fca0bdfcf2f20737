/* The rules of Avro schema resolution (specification 1.11, "Schema Resolution") applied once per
 * writer schema: each pair of writer and reader types becomes an op of the program that
 * avro_resolve_run.c executes per record. A pair that cannot resolve is an error here, except
 * below a writer union, where it becomes an op that fails only the records that use that branch.
 *
 * Record pairs are memoised: a recursive type compiles to a cyclic program, not an endless one.
 * A pair is entered in the memo before its fields are compiled (a recursive use finds it), and
 * when it fails, every entry made since is dropped, since those may lean on it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/avro_resolve.h"

#define COMPILE_BUDGET (1 << 18) /* type pairs visited: bounds the union trials */

typedef struct {
    const lp_rs_type_t *w;
    const lp_rs_type_t *r;
    const lp_rs_op_t *op; /* NULL: the pair does not resolve, for the reason in why */
    const char *why;
} memo_t;

typedef struct {
    lp_rs_arena_t *arena;
    memo_t *memo;
    int nmemo;
    int cap;
    int budget;
    bool fatal; /* out of memory, too deep, too large: no union may swallow that */
    char *errstr;
    size_t errstr_size;
} compiler_t;

static void *fail(compiler_t *c, bool fatal, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *fail(compiler_t *c, bool fatal, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->errstr, c->errstr_size, fmt, ap);
    va_end(ap);
    c->fatal = c->fatal || fatal;
    return NULL;
}

static void *alloc(compiler_t *c, size_t size) {
    void *p = lp_rs_alloc(c->arena, size);

    return p != NULL ? p : fail(c, true, "out of memory (schema too large)");
}

static lp_rs_op_t *new_op(compiler_t *c, lp_rs_opcode_t code) {
    lp_rs_op_t *op = alloc(c, sizeof(*op));

    if (op != NULL) {
        op->code = code;
    }
    return op;
}

static void *mismatch(compiler_t *c, const lp_rs_type_t *w, const lp_rs_type_t *r) {
    char wd[160];
    char rd[160];

    lp_rs_describe(w, wd, sizeof(wd));
    lp_rs_describe(r, rd, sizeof(rd));
    return fail(c, false, "writer type %s cannot be read as %s", wd, rd);
}

static int memo_push(compiler_t *c, const lp_rs_type_t *w, const lp_rs_type_t *r,
                     const lp_rs_op_t *op, const char *why) {
    if (c->nmemo == c->cap) {
        int cap = c->cap > 0 ? 2 * c->cap : 64;
        memo_t *memo = realloc(c->memo, sizeof(*memo) * (size_t)cap);
        if (memo == NULL) {
            fail(c, true, "out of memory");
            return LP_ERR;
        }
        c->memo = memo;
        c->cap = cap;
    }
    c->memo[c->nmemo++] = (memo_t){.w = w, .r = r, .op = op, .why = why};
    return LP_OK;
}

static const lp_rs_op_t *compile(compiler_t *c, const lp_rs_type_t *w, const lp_rs_type_t *r,
                                 int depth);

/* ---- primitives ---- */

/* Same type, or a promotion: int to long, float or double; long to float or double; float to
 * double; string to bytes and back. -1: neither. */
static int primitive_op(lp_rs_kind_t w, lp_rs_kind_t r) {
    static const lp_rs_opcode_t same[] = {
        [LP_RS_NULL] = LP_RS_OP_NULL,   [LP_RS_BOOLEAN] = LP_RS_OP_BOOLEAN,
        [LP_RS_INT] = LP_RS_OP_INT,     [LP_RS_LONG] = LP_RS_OP_LONG,
        [LP_RS_FLOAT] = LP_RS_OP_FLOAT, [LP_RS_DOUBLE] = LP_RS_OP_DOUBLE,
        [LP_RS_BYTES] = LP_RS_OP_BYTES, [LP_RS_STRING] = LP_RS_OP_BYTES,
    };

    if (w > LP_RS_STRING || r > LP_RS_STRING) {
        return -1;
    }
    if (w == r) {
        return (int)same[w];
    }
    switch (w) {
    case LP_RS_INT:
        return r == LP_RS_LONG     ? LP_RS_OP_INT
               : r == LP_RS_FLOAT  ? LP_RS_OP_INT_FLOAT
               : r == LP_RS_DOUBLE ? LP_RS_OP_INT_DOUBLE
                                   : -1;
    case LP_RS_LONG:
        return r == LP_RS_FLOAT    ? LP_RS_OP_LONG_FLOAT
               : r == LP_RS_DOUBLE ? LP_RS_OP_LONG_DOUBLE
                                   : -1;
    case LP_RS_FLOAT:
        return r == LP_RS_DOUBLE ? LP_RS_OP_FLOAT_DOUBLE : -1;
    case LP_RS_BYTES:
        return r == LP_RS_STRING ? LP_RS_OP_BYTES : -1;
    case LP_RS_STRING:
        return r == LP_RS_BYTES ? LP_RS_OP_BYTES : -1;
    default:
        return -1;
    }
}

/* ---- records ---- */

/* Each reader field's writer field: the same name first, then one of the reader's aliases. */
static int match_fields(compiler_t *c, const lp_rs_type_t *w, const lp_rs_type_t *r,
                        lp_rs_slot_t *slots) {
    bool *taken = alloc(c, sizeof(bool) * (size_t)w->nfields);

    if (taken == NULL) {
        return LP_ERR;
    }
    for (int i = 0; i < r->nfields; i++) {
        slots[i].name = r->fields[i].name;
        slots[i].from = -1;
        for (int j = 0; j < w->nfields && slots[i].from < 0; j++) {
            if (strcmp(w->fields[j].name, r->fields[i].name) == 0) {
                slots[i].from = j;
                taken[j] = true;
            }
        }
    }
    for (int i = 0; i < r->nfields; i++) {
        for (int a = 0; a < r->fields[i].naliases && slots[i].from < 0; a++) {
            for (int j = 0; j < w->nfields && slots[i].from < 0; j++) {
                if (!taken[j] && strcmp(w->fields[j].name, r->fields[i].aliases[a]) == 0) {
                    slots[i].from = j;
                    taken[j] = true;
                }
            }
        }
    }
    return LP_OK;
}

static int compile_fields(compiler_t *c, const lp_rs_type_t *w, const lp_rs_type_t *r,
                          lp_rs_slot_t *slots, int depth) {
    for (int i = 0; i < r->nfields; i++) {
        const lp_rs_field_t *rf = &r->fields[i];
        if (slots[i].from >= 0) {
            const lp_rs_field_t *wf = &w->fields[slots[i].from];
            if ((slots[i].op = compile(c, wf->type, rf->type, depth + 1)) == NULL) {
                return lp_rs_prefix(c->errstr, c->errstr_size, "field '%s' of %s: ", wf->name,
                                    w->name);
            }
        } else if (rf->def != NULL) {
            slots[i].def = rf->def;
            slots[i].def_len = rf->def_len;
        } else {
            fail(c, false, "field '%s' of %s has no default and the writer schema lacks it",
                 rf->name, r->name);
            return LP_ERR;
        }
    }
    return LP_OK;
}

/* When the matched writer fields come in the reader's order (fields added, removed, defaulted),
 * the record is read in one pass: the steps interleave the writer fields to skip with the
 * reader fields to write. Otherwise steps stay NULL and the record is read in two passes. */
static int plan(compiler_t *c, lp_rs_op_t *op, const lp_rs_type_t *w) {
    lp_rs_step_t *steps;
    int last = -1;
    int next = 0;
    int n = 0;

    for (int i = 0; i < op->nslots; i++) {
        if (op->slots[i].from >= 0) {
            if (op->slots[i].from < last) {
                return LP_OK;
            }
            last = op->slots[i].from;
        }
    }
    if ((steps = alloc(c, sizeof(*steps) * (size_t)(w->nfields + op->nslots))) == NULL) {
        return LP_ERR;
    }
    for (int i = 0; i < op->nslots; i++) {
        for (; next < op->slots[i].from; next++) {
            steps[n++] = (lp_rs_step_t){.skip = next, .slot = -1};
        }
        if (op->slots[i].from >= 0) {
            next = op->slots[i].from + 1;
        }
        steps[n++] = (lp_rs_step_t){.skip = -1, .slot = i};
    }
    for (; next < w->nfields; next++) {
        steps[n++] = (lp_rs_step_t){.skip = next, .slot = -1};
    }
    op->steps = steps;
    op->nsteps = n;
    return LP_OK;
}

static const lp_rs_op_t *compile_record(compiler_t *c, const lp_rs_type_t *w, const lp_rs_type_t *r,
                                        int depth) {
    int mark = c->nmemo;
    lp_rs_slot_t *slots;
    lp_rs_op_t *op;
    const char *why;

    for (int i = 0; i < c->nmemo; i++) {
        if (c->memo[i].w == w && c->memo[i].r == r) {
            return c->memo[i].op != NULL ? c->memo[i].op : fail(c, false, "%s", c->memo[i].why);
        }
    }
    if ((op = new_op(c, LP_RS_OP_RECORD)) == NULL ||
        (slots = alloc(c, sizeof(*slots) * (size_t)r->nfields)) == NULL ||
        memo_push(c, w, r, op, NULL) != LP_OK) {
        return NULL;
    }
    op->wtype = w;
    op->slots = slots;
    op->nslots = r->nfields;
    if (match_fields(c, w, r, slots) == LP_OK && compile_fields(c, w, r, slots, depth) == LP_OK &&
        plan(c, op, w) == LP_OK) {
        return op;
    }
    c->nmemo = mark;
    if (!c->fatal && (why = lp_rs_strdup(c->arena, c->errstr)) != NULL) {
        memo_push(c, w, r, NULL, why);
    }
    return NULL;
}

/* ---- other named types, containers, unions ---- */

static const lp_rs_op_t *compile_enum(compiler_t *c, const lp_rs_type_t *w, const lp_rs_type_t *r) {
    lp_rs_op_t *op = new_op(c, LP_RS_OP_ENUM);
    int *map = alloc(c, sizeof(int) * (size_t)w->nsymbols);

    if (op == NULL || map == NULL) {
        return NULL;
    }
    /* A writer symbol the reader lacks reads as the reader's default, or fails the record. */
    for (int s = 0; s < w->nsymbols; s++) {
        map[s] = r->def_symbol;
        for (int i = 0; i < r->nsymbols; i++) {
            if (strcmp(w->symbols[s], r->symbols[i]) == 0) {
                map[s] = i;
                break;
            }
        }
    }
    op->symbols = map;
    op->wtype = w;
    return op;
}

static const lp_rs_op_t *compile_container(compiler_t *c, const lp_rs_type_t *w,
                                           const lp_rs_type_t *r, int depth) {
    lp_rs_op_t *op = new_op(c, r->kind == LP_RS_ARRAY ? LP_RS_OP_ARRAY : LP_RS_OP_MAP);

    if (op == NULL || (op->child = compile(c, w->items, r->items, depth + 1)) == NULL) {
        return NULL;
    }
    return op;
}

/* Each writer branch on its own; one that does not resolve fails the records that use it. */
static const lp_rs_op_t *compile_writer_union(compiler_t *c, const lp_rs_type_t *w,
                                              const lp_rs_type_t *r, int depth) {
    lp_rs_op_t *op = new_op(c, LP_RS_OP_WRITER_UNION);
    const lp_rs_op_t **branches = alloc(c, sizeof(*branches) * (size_t)w->nbranches);

    if (op == NULL || branches == NULL) {
        return NULL;
    }
    for (int b = 0; b < w->nbranches; b++) {
        lp_rs_op_t *bad;
        if ((branches[b] = compile(c, w->branches[b], r, depth + 1)) != NULL) {
            continue;
        }
        if (c->fatal || (bad = new_op(c, LP_RS_OP_FAIL)) == NULL ||
            (bad->why = lp_rs_strdup(c->arena, c->errstr)) == NULL) {
            return c->fatal ? NULL : fail(c, true, "out of memory");
        }
        bad->branch = b;
        bad->wtype = w->branches[b];
        branches[b] = bad;
    }
    op->branches = branches;
    op->nbranches = w->nbranches;
    return op;
}

/* The first reader branch the writer's type resolves to. */
static const lp_rs_op_t *compile_reader_union(compiler_t *c, const lp_rs_type_t *w,
                                              const lp_rs_type_t *r, int depth) {
    char why[LP_ERRSTR] = "";

    for (int k = 0; k < r->nbranches; k++) {
        const lp_rs_op_t *child = compile(c, w, r->branches[k], depth + 1);
        lp_rs_op_t *op;
        if (child != NULL) {
            if ((op = new_op(c, LP_RS_OP_READER_UNION)) != NULL) {
                op->branch = k;
                op->child = child;
            }
            return op;
        }
        if (c->fatal) {
            return NULL;
        }
        /* The branch of the writer's kind failed for a reason worth telling. */
        if (why[0] == '\0' && r->branches[k]->kind == w->kind) {
            snprintf(why, sizeof(why), ": %s", c->errstr);
        }
    }
    mismatch(c, w, r);
    if (why[0] != '\0') {
        size_t len = strlen(c->errstr);
        snprintf(c->errstr + len, c->errstr_size - len, "%s", why);
    }
    return NULL;
}

static const lp_rs_op_t *compile(compiler_t *c, const lp_rs_type_t *w, const lp_rs_type_t *r,
                                 int depth) {
    lp_rs_op_t *op;
    int code;

    if (depth > LP_RS_DEPTH_MAX) {
        return fail(c, true, "types nested deeper than %d levels", LP_RS_DEPTH_MAX);
    }
    if (--c->budget < 0) {
        return fail(c, true, "schemas too large to resolve (more than %d type pairs)",
                    COMPILE_BUDGET);
    }
    if (w->kind == LP_RS_UNION) {
        return compile_writer_union(c, w, r, depth);
    }
    if (r->kind == LP_RS_UNION) {
        return compile_reader_union(c, w, r, depth);
    }
    if (w->kind != r->kind) {
        code = primitive_op(w->kind, r->kind);
        if (code < 0) {
            return mismatch(c, w, r);
        }
        op = new_op(c, (lp_rs_opcode_t)code);
        return op;
    }
    switch (r->kind) {
    case LP_RS_RECORD:
        return lp_rs_names_match(w, r) ? compile_record(c, w, r, depth) : mismatch(c, w, r);
    case LP_RS_ENUM:
        return lp_rs_names_match(w, r) ? compile_enum(c, w, r) : mismatch(c, w, r);
    case LP_RS_FIXED:
        if (!lp_rs_names_match(w, r) || w->size != r->size) {
            return mismatch(c, w, r);
        }
        if ((op = new_op(c, LP_RS_OP_FIXED)) != NULL) {
            op->size = r->size;
        }
        return op;
    case LP_RS_ARRAY:
    case LP_RS_MAP:
        return compile_container(c, w, r, depth);
    default:
        return new_op(c, (lp_rs_opcode_t)primitive_op(w->kind, r->kind));
    }
}

lp_rs_program_t *lp_rs_compile(lp_rs_schema_t *writer, const lp_rs_type_t *reader, char *errstr,
                               size_t errstr_size) {
    lp_rs_program_t *program = calloc(1, sizeof(*program));
    compiler_t c = {.budget = COMPILE_BUDGET, .errstr = errstr, .errstr_size = errstr_size};

    if (program == NULL) {
        lp_rs_schema_free(writer);
        lp_codec_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    program->writer = writer;
    c.arena = &program->arena;
    program->root = compile(&c, writer->root, reader, 0);
    free(c.memo);
    if (program->root == NULL) {
        lp_rs_program_free(program);
        return NULL;
    }
    return program;
}

void lp_rs_program_free(lp_rs_program_t *program) {
    if (program != NULL) {
        lp_rs_schema_free(program->writer);
        lp_rs_arena_free(&program->arena);
        free(program);
    }
}
