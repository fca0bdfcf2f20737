/* Runs a resolution program over one record: reads the writer's binary with the codec's reader
 * primitives (the fast decoder's checks and messages, offsets from the first byte of the record)
 * and writes the reader's binary. Work per record is bounded: nesting by LP_RS_DEPTH_MAX, and
 * items plus records visited by a budget that grows with the record's length, since items of
 * zero bytes (null, empty records) would otherwise let a few bytes demand endless work. */
#include <stdlib.h>
#include <string.h>

#include "codec/avro_resolve.h"

#define WORK_BASE 65536 /* work allowed to any record, plus WORK_PER_BYTE per byte */
#define WORK_PER_BYTE 8

typedef struct {
    lp_rs_vm_t *vm;
    lp_avro_rd_t *rd;
    lp_avro_wr_t *wr;
} run_t;

static int truncated(lp_avro_rd_t *rd, size_t at) {
    return lp_codec_err(rd->errstr, rd->errstr_size, "truncated record at byte %zu (field %s)", at,
                        rd->field);
}

static int take(lp_avro_rd_t *rd, uint64_t n, const uint8_t **out) {
    if (n > rd->len - rd->pos) {
        return truncated(rd, rd->pos);
    }
    *out = rd->buf + rd->pos;
    rd->pos += (size_t)n;
    return LP_OK;
}

static int too_deep(lp_avro_rd_t *rd) {
    return lp_codec_err(rd->errstr, rd->errstr_size,
                        "data nested deeper than %d levels at byte %zu (field %s)", LP_RS_DEPTH_MAX,
                        rd->pos, rd->field);
}

static int spend(run_t *run, int64_t n) {
    if (n > run->vm->work) {
        return lp_codec_err(run->rd->errstr, run->rd->errstr_size,
                            "record too complex to resolve: more items and records than its "
                            "length allows at byte %zu (field %s)",
                            run->rd->pos, run->rd->field);
    }
    run->vm->work -= n;
    return LP_OK;
}

/* The length of a string or bytes value, and its bytes. */
static int rd_bytes(lp_avro_rd_t *rd, const uint8_t **data, uint64_t *n) {
    size_t start = rd->pos;
    int64_t v = 0;

    if (lp_avro_rd_long(rd, &v) != LP_OK) {
        return LP_ERR;
    }
    if (v < 0) {
        return lp_codec_err(rd->errstr, rd->errstr_size,
                            "string length %lld at byte %zu (field %s)", (long long)v, start,
                            rd->field);
    }
    *n = (uint64_t)v;
    return take(rd, *n, data);
}

/* A block header of an array or map: item count, and the block's size in bytes when the count
 * is written negative (-1 otherwise). */
static int rd_block(lp_avro_rd_t *rd, int64_t *count, int64_t *size) {
    size_t start = rd->pos;

    *size = -1;
    if (lp_avro_rd_long(rd, count) != LP_OK) {
        return LP_ERR;
    }
    if (*count >= 0) {
        return LP_OK;
    }
    if (*count != INT64_MIN && lp_avro_rd_long(rd, size) != LP_OK) {
        return LP_ERR;
    }
    if (*count == INT64_MIN || *size < 0) {
        return lp_codec_err(rd->errstr, rd->errstr_size, "bad block header at byte %zu (field %s)",
                            start, rd->field);
    }
    *count = -*count;
    return LP_OK;
}

static int rd_float(lp_avro_rd_t *rd, float *out) {
    const uint8_t *p = NULL;
    uint32_t bits = 0;

    if (take(rd, 4, &p) != LP_OK) {
        return LP_ERR;
    }
    for (int i = 3; i >= 0; i--) {
        bits = (bits << 8) | p[i];
    }
    memcpy(out, &bits, sizeof(*out));
    return LP_OK;
}

static void wr_float(lp_avro_wr_t *wr, float f) {
    uint8_t bytes[4];
    uint32_t bits;

    memcpy(&bits, &f, sizeof(bits));
    for (int i = 0; i < 4; i++) {
        bytes[i] = (uint8_t)(bits >> (8 * i));
    }
    lp_avro_wr_raw(wr, bytes, sizeof(bytes));
}

/* ---- skipping a writer value the reader does not want ---- */

static int skip(run_t *run, const lp_rs_type_t *t, int depth);

static int skip_blocks(run_t *run, const lp_rs_type_t *t, int depth) {
    const uint8_t *p = NULL;
    uint64_t n = 0;
    int64_t count;
    int64_t size;

    for (;;) {
        if (rd_block(run->rd, &count, &size) != LP_OK) {
            return LP_ERR;
        }
        if (count == 0) {
            return LP_OK;
        }
        if (size >= 0) { /* the writer said how long the block is: jump over it */
            if (take(run->rd, (uint64_t)size, &p) != LP_OK) {
                return LP_ERR;
            }
            continue;
        }
        if (spend(run, count) != LP_OK) {
            return LP_ERR;
        }
        for (int64_t i = 0; i < count; i++) {
            if ((t->kind == LP_RS_MAP && rd_bytes(run->rd, &p, &n) != LP_OK) ||
                skip(run, t->items, depth + 1) != LP_OK) {
                return LP_ERR;
            }
        }
    }
}

static int skip(run_t *run, const lp_rs_type_t *t, int depth) {
    lp_avro_rd_t *rd = run->rd;
    const uint8_t *p = NULL;
    uint64_t n = 0;
    int64_t v;
    int32_t i32;
    bool b;
    int k;

    if (depth > LP_RS_DEPTH_MAX) {
        return too_deep(rd);
    }
    switch (t->kind) {
    case LP_RS_NULL:
        return LP_OK;
    case LP_RS_BOOLEAN:
        return lp_avro_rd_bool(rd, &b);
    case LP_RS_INT:
        return lp_avro_rd_int(rd, &i32);
    case LP_RS_LONG:
        return lp_avro_rd_long(rd, &v);
    case LP_RS_FLOAT:
        return take(rd, 4, &p);
    case LP_RS_DOUBLE:
        return take(rd, 8, &p);
    case LP_RS_BYTES:
    case LP_RS_STRING:
        return rd_bytes(rd, &p, &n);
    case LP_RS_FIXED:
        return take(rd, (uint64_t)t->size, &p);
    case LP_RS_ENUM:
        return lp_avro_rd_enum(rd, t->nsymbols, &k);
    case LP_RS_ARRAY:
    case LP_RS_MAP:
        return skip_blocks(run, t, depth);
    case LP_RS_RECORD:
        if (spend(run, 1) != LP_OK) {
            return LP_ERR;
        }
        for (int i = 0; i < t->nfields; i++) {
            rd->field = t->fields[i].name;
            if (skip(run, t->fields[i].type, depth + 1) != LP_OK) {
                return LP_ERR;
            }
        }
        return LP_OK;
    case LP_RS_UNION:
        if (lp_avro_rd_union(rd, t->nbranches, &k) != LP_OK) {
            return LP_ERR;
        }
        return skip(run, t->branches[k], depth);
    }
    return LP_ERR;
}

/* ---- resolving ---- */

static int exec(run_t *run, const lp_rs_op_t *op, int depth);

static int exec_blocks(run_t *run, const lp_rs_op_t *op, int depth) {
    lp_avro_rd_t *rd = run->rd;
    const uint8_t *p = NULL;
    uint64_t n = 0;
    int64_t count;
    int64_t size;

    for (;;) {
        size_t start;
        if (rd_block(rd, &count, &size) != LP_OK) {
            return LP_ERR;
        }
        lp_avro_wr_long(run->wr, count);
        if (count == 0) {
            return LP_OK;
        }
        if (spend(run, count) != LP_OK) {
            return LP_ERR;
        }
        start = rd->pos;
        for (int64_t i = 0; i < count; i++) {
            if (op->code == LP_RS_OP_MAP) {
                if (rd_bytes(rd, &p, &n) != LP_OK) {
                    return LP_ERR;
                }
                lp_avro_wr_bytes(run->wr, p, (size_t)n);
            }
            if (exec(run, op->child, depth + 1) != LP_OK) {
                return LP_ERR;
            }
        }
        if (size >= 0 && rd->pos - start != (uint64_t)size) {
            return lp_codec_err(rd->errstr, rd->errstr_size,
                                "block said %lld bytes but holds %zu at byte %zu (field %s)",
                                (long long)size, rd->pos - start, start, rd->field);
        }
    }
}

static int exec_slot(run_t *run, const lp_rs_slot_t *slot, int depth) {
    if (slot->from < 0) {
        lp_avro_wr_raw(run->wr, slot->def, slot->def_len);
        return LP_OK;
    }
    run->rd->field = slot->name;
    return exec(run, slot->op, depth + 1);
}

/* Fields in another order than the reader's: first note where each writer field starts, then
 * read the matched ones in the reader's order. */
static int exec_two_pass(run_t *run, const lp_rs_op_t *op, int depth) {
    const lp_rs_type_t *w = op->wtype;
    lp_rs_vm_t *vm = run->vm;
    size_t base = vm->top;
    size_t n = (size_t)w->nfields;

    if (vm->cap - base < n + 1) {
        size_t cap = 2 * (base + n + 1);
        size_t *pos = realloc(vm->pos, sizeof(*pos) * cap);
        if (pos == NULL) {
            return lp_codec_err(run->rd->errstr, run->rd->errstr_size, "out of memory");
        }
        vm->pos = pos;
        vm->cap = cap;
    }
    vm->top = base + n + 1;
    for (size_t j = 0; j < n; j++) {
        vm->pos[base + j] = run->rd->pos;
        run->rd->field = w->fields[j].name;
        if (skip(run, w->fields[j].type, depth + 1) != LP_OK) {
            return LP_ERR;
        }
    }
    vm->pos[base + n] = run->rd->pos;
    for (int i = 0; i < op->nslots; i++) {
        if (op->slots[i].from >= 0) {
            run->rd->pos = vm->pos[base + (size_t)op->slots[i].from];
        }
        if (exec_slot(run, &op->slots[i], depth) != LP_OK) {
            return LP_ERR;
        }
    }
    run->rd->pos = vm->pos[base + n];
    vm->top = base;
    return LP_OK;
}

static int exec_record(run_t *run, const lp_rs_op_t *op, int depth) {
    if (spend(run, 1) != LP_OK) {
        return LP_ERR;
    }
    if (op->steps == NULL) {
        return exec_two_pass(run, op, depth);
    }
    for (int s = 0; s < op->nsteps; s++) {
        const lp_rs_step_t *step = &op->steps[s];
        int rc;
        if (step->skip >= 0) {
            run->rd->field = op->wtype->fields[step->skip].name;
            rc = skip(run, op->wtype->fields[step->skip].type, depth + 1);
        } else {
            rc = exec_slot(run, &op->slots[step->slot], depth);
        }
        if (rc != LP_OK) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

static int exec_enum(run_t *run, const lp_rs_op_t *op) {
    lp_avro_rd_t *rd = run->rd;
    size_t start = rd->pos;
    int k = 0;

    if (lp_avro_rd_enum(rd, op->wtype->nsymbols, &k) != LP_OK) {
        return LP_ERR;
    }
    if (op->symbols[k] < 0) {
        return lp_codec_err(rd->errstr, rd->errstr_size,
                            "symbol %s of enum %s at byte %zu (field %s) is not in the reader's "
                            "enum, which has no default",
                            op->wtype->symbols[k], op->wtype->name, start, rd->field);
    }
    lp_avro_wr_long(run->wr, op->symbols[k]);
    return LP_OK;
}

static int exec_union(run_t *run, const lp_rs_op_t *op, int depth) {
    lp_avro_rd_t *rd = run->rd;
    size_t start = rd->pos;
    char desc[160];
    int b = 0;

    if (op->code == LP_RS_OP_READER_UNION) {
        lp_avro_wr_long(run->wr, op->branch);
        return exec(run, op->child, depth);
    }
    if (lp_avro_rd_union(rd, op->nbranches, &b) != LP_OK) {
        return LP_ERR;
    }
    if (op->branches[b]->code != LP_RS_OP_FAIL) {
        return exec(run, op->branches[b], depth);
    }
    lp_rs_describe(op->branches[b]->wtype, desc, sizeof(desc));
    return lp_codec_err(rd->errstr, rd->errstr_size,
                        "writer union branch %d (%s) does not match field %s at byte %zu: %s", b,
                        desc, rd->field, start, op->branches[b]->why);
}

/* Numbers, read as the writer wrote them and written as the reader reads them. */
static int exec_number(run_t *run, const lp_rs_op_t *op) {
    lp_avro_rd_t *rd = run->rd;
    lp_avro_wr_t *wr = run->wr;
    int32_t i32 = 0;
    int64_t i64 = 0;
    float f = 0;
    bool b = false;
    const uint8_t *p = NULL;

    switch (op->code) {
    case LP_RS_OP_BOOLEAN:
        if (lp_avro_rd_bool(rd, &b) != LP_OK) {
            return LP_ERR;
        }
        lp_avro_wr_bool(wr, b);
        return LP_OK;
    case LP_RS_OP_INT:
    case LP_RS_OP_INT_FLOAT:
    case LP_RS_OP_INT_DOUBLE:
        if (lp_avro_rd_int(rd, &i32) != LP_OK) {
            return LP_ERR;
        }
        if (op->code == LP_RS_OP_INT) {
            lp_avro_wr_long(wr, i32);
        } else if (op->code == LP_RS_OP_INT_FLOAT) {
            wr_float(wr, (float)i32);
        } else {
            lp_avro_wr_double(wr, (double)i32);
        }
        return LP_OK;
    case LP_RS_OP_LONG:
    case LP_RS_OP_LONG_FLOAT:
    case LP_RS_OP_LONG_DOUBLE:
        if (lp_avro_rd_long(rd, &i64) != LP_OK) {
            return LP_ERR;
        }
        if (op->code == LP_RS_OP_LONG) {
            lp_avro_wr_long(wr, i64);
        } else if (op->code == LP_RS_OP_LONG_FLOAT) {
            wr_float(wr, (float)i64);
        } else {
            lp_avro_wr_double(wr, (double)i64);
        }
        return LP_OK;
    case LP_RS_OP_FLOAT_DOUBLE:
        if (rd_float(rd, &f) != LP_OK) {
            return LP_ERR;
        }
        lp_avro_wr_double(wr, (double)f);
        return LP_OK;
    default: /* FLOAT, DOUBLE: the same bytes */
        if (take(rd, op->code == LP_RS_OP_FLOAT ? 4 : 8, &p) != LP_OK) {
            return LP_ERR;
        }
        lp_avro_wr_raw(wr, p, op->code == LP_RS_OP_FLOAT ? 4 : 8);
        return LP_OK;
    }
}

static int exec(run_t *run, const lp_rs_op_t *op, int depth) {
    const uint8_t *p = NULL;
    uint64_t n = 0;

    if (depth > LP_RS_DEPTH_MAX) {
        return too_deep(run->rd);
    }
    switch (op->code) {
    case LP_RS_OP_NULL:
        return LP_OK;
    case LP_RS_OP_BYTES:
        if (rd_bytes(run->rd, &p, &n) != LP_OK) {
            return LP_ERR;
        }
        lp_avro_wr_bytes(run->wr, p, (size_t)n);
        return LP_OK;
    case LP_RS_OP_FIXED:
        if (take(run->rd, (uint64_t)op->size, &p) != LP_OK) {
            return LP_ERR;
        }
        lp_avro_wr_raw(run->wr, p, (size_t)op->size);
        return LP_OK;
    case LP_RS_OP_ENUM:
        return exec_enum(run, op);
    case LP_RS_OP_ARRAY:
    case LP_RS_OP_MAP:
        return exec_blocks(run, op, depth);
    case LP_RS_OP_RECORD:
        return exec_record(run, op, depth);
    case LP_RS_OP_WRITER_UNION:
    case LP_RS_OP_READER_UNION:
        return exec_union(run, op, depth);
    case LP_RS_OP_FAIL: /* only below a writer union, which reports it with the branch */
        return lp_codec_err(run->rd->errstr, run->rd->errstr_size, "%s", op->why);
    default:
        return exec_number(run, op);
    }
}

int lp_rs_run(const lp_rs_program_t *program, lp_rs_vm_t *vm, lp_avro_rd_t *rd, lp_avro_wr_t *wr) {
    run_t run = {.vm = vm, .rd = rd, .wr = wr};

    vm->top = 0;
    vm->work = WORK_BASE + WORK_PER_BYTE * (int64_t)(rd->len - rd->pos);
    return exec(&run, program->root, 0);
}

void lp_rs_vm_free(lp_rs_vm_t *vm) {
    free(vm->pos);
    vm->pos = NULL;
    vm->top = vm->cap = 0;
}
