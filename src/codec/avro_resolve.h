/* Avro schema resolution (specification 1.11): schemas parsed from JSON with their defaults and
 * aliases (avro-c drops both), and a writer schema compiled against a reader schema into a
 * program that rewrites a record written with the writer schema as the reader schema's binary
 * encoding, which the hand-written decoder then reads as usual. */
#ifndef LP_AVRO_RESOLVE_H
#define LP_AVRO_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/avro_internal.h"
#include "codec/json_internal.h"

#define LP_RS_DEPTH_MAX 32                         /* nesting of types, of defaults, of data */
#define LP_RS_JSON_DEPTH_MAX (4 * LP_RS_DEPTH_MAX) /* JSON nesting inside one schema object */
#define LP_RS_TEXT_MAX (1024 * 1024)               /* schema JSON text */
#define LP_RS_NAME_MAX 255                         /* a full name */
#define LP_RS_TYPES_MAX 65536                      /* type nodes of one schema */
#define LP_RS_DEFAULT_MAX 65536                    /* one field's default, encoded */

/* ---- Memory of one schema or program, freed at once (avro_resolve_type.c) ---- */
typedef struct lp_rs_chunk lp_rs_chunk_t;
typedef struct {
    lp_rs_chunk_t *head;
    size_t total;
} lp_rs_arena_t;

/* Zeroed memory; NULL when out of memory or past the arena's limit. */
void *lp_rs_alloc(lp_rs_arena_t *arena, size_t size);
char *lp_rs_strdup(lp_rs_arena_t *arena, const char *s);
void lp_rs_arena_free(lp_rs_arena_t *arena);

/* ---- Schemas ---- */
typedef enum {
    LP_RS_NULL,
    LP_RS_BOOLEAN,
    LP_RS_INT,
    LP_RS_LONG,
    LP_RS_FLOAT,
    LP_RS_DOUBLE,
    LP_RS_BYTES,
    LP_RS_STRING,
    LP_RS_RECORD,
    LP_RS_ENUM,
    LP_RS_ARRAY,
    LP_RS_MAP,
    LP_RS_FIXED,
    LP_RS_UNION,
} lp_rs_kind_t;

/* "null", "boolean", ... "union", by lp_rs_kind_t. */
extern const char *const lp_rs_kind_names[];

typedef struct lp_rs_type lp_rs_type_t;

typedef struct {
    const char *name;
    const char **aliases;
    int naliases;
    const lp_rs_type_t *type;
    const uint8_t *def; /* reader schemas: the default as Avro binary; NULL: none */
    size_t def_len;
} lp_rs_field_t;

struct lp_rs_type {
    lp_rs_kind_t kind;
    const char *full;     /* named types (record, enum, fixed): the full name */
    const char *name;     /* ... its last part */
    const char **aliases; /* ... as written (qualified or not) */
    int naliases;
    int index;             /* ... definition order */
    lp_rs_type_t *next;    /* ... the schema's named types, newest first */
    bool complete;         /* record: every field parsed */
    lp_rs_field_t *fields; /* record */
    int nfields;
    const char **symbols; /* enum */
    int nsymbols;
    int def_symbol;                /* enum: index of the default symbol, -1 none */
    const lp_rs_type_t *items;     /* array items, map values */
    const lp_rs_type_t **branches; /* union */
    int nbranches;
    int64_t size; /* fixed */
};

typedef struct {
    lp_rs_arena_t arena;
    const lp_rs_type_t *root;
    lp_rs_type_t *named;
    int nnamed;
} lp_rs_schema_t;

/* ---- Parsing (avro_resolve_schema.c, defaults in avro_resolve_default.c) ---- */

/* Parses schema JSON. reader: also encodes the fields' defaults (resolution takes defaults from
 * the reader only). NULL and errstr on error; free with lp_rs_schema_free. */
lp_rs_schema_t *lp_rs_schema_parse(const char *json, size_t len, bool reader, char *errstr,
                                   size_t errstr_size);
void lp_rs_schema_free(lp_rs_schema_t *schema);

/* Skips any JSON value, nested up to depth_left levels. The JSON reader's own bound (8) suits
 * events; schemas nest deeper, so this code bounds its own recursion and opens every container
 * with the reader's depth count at 0. */
int lp_rs_json_skip(lp_json_rd_t *rd, int depth_left);

/* Encodes the JSON default at rd as the Avro binary of type into wr. */
int lp_rs_encode_default(lp_json_rd_t *rd, const lp_rs_type_t *type, lp_avro_wr_t *wr, int depth);

/* ---- Parsed schemas (avro_resolve_type.c) ---- */

/* Parsing Canonical Form of the schema into out (NUL-terminated); LP_ERR if it does not fit. */
int lp_rs_canonical(const lp_rs_schema_t *schema, char *out, size_t size);

/* A short description for messages: "string", "[null, string]", "record Foo", "array of long". */
void lp_rs_describe(const lp_rs_type_t *type, char *out, size_t size);

/* Named types resolve when the writer's unqualified name is the reader's or one of its aliases'. */
bool lp_rs_names_match(const lp_rs_type_t *writer, const lp_rs_type_t *reader);

/* Puts "<prefix>" before the message already in errstr; returns LP_ERR. */
int lp_rs_prefix(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Programs (avro_resolve_compile.c, run by avro_resolve_run.c) ---- */
typedef enum {
    LP_RS_OP_NULL, /* nothing to read or write */
    LP_RS_OP_BOOLEAN,
    LP_RS_OP_INT, /* int, also read as long (same encoding) */
    LP_RS_OP_LONG,
    LP_RS_OP_INT_FLOAT,
    LP_RS_OP_INT_DOUBLE,
    LP_RS_OP_LONG_FLOAT,
    LP_RS_OP_LONG_DOUBLE,
    LP_RS_OP_FLOAT,
    LP_RS_OP_FLOAT_DOUBLE,
    LP_RS_OP_DOUBLE,
    LP_RS_OP_BYTES, /* bytes or string, either read as the other (same encoding) */
    LP_RS_OP_FIXED,
    LP_RS_OP_ENUM,
    LP_RS_OP_ARRAY,
    LP_RS_OP_MAP,
    LP_RS_OP_RECORD,
    LP_RS_OP_WRITER_UNION, /* reads the writer's branch, runs that branch's op */
    LP_RS_OP_READER_UNION, /* writes the reader's branch, runs the op of the value */
    LP_RS_OP_FAIL,         /* a writer union branch that does not resolve: fails when used */
} lp_rs_opcode_t;

typedef struct lp_rs_op lp_rs_op_t;

/* A reader field: read from writer field `from` by op, or the default when from is -1. */
typedef struct {
    const char *name;
    int from;
    const lp_rs_op_t *op;
    const uint8_t *def;
    size_t def_len;
} lp_rs_slot_t;

/* One step of a record whose matched fields come in the reader's order: skip writer field
 * `skip`, or write reader field `slot`. */
typedef struct {
    int skip;
    int slot;
} lp_rs_step_t;

struct lp_rs_op {
    lp_rs_opcode_t code;
    int64_t size;                /* FIXED: bytes */
    int branch;                  /* READER_UNION: the reader's branch; FAIL: the writer's */
    const lp_rs_op_t *child;     /* ARRAY items, MAP values, READER_UNION value */
    const lp_rs_op_t **branches; /* WRITER_UNION: one op per writer branch */
    int nbranches;
    const int *symbols;        /* ENUM: reader index of each writer symbol, -1 none */
    const lp_rs_type_t *wtype; /* ENUM, RECORD, FAIL: the writer's type */
    const char *why;           /* FAIL: why the branch does not resolve */
    const lp_rs_slot_t *slots; /* RECORD: the reader's fields */
    int nslots;
    const lp_rs_step_t *steps; /* RECORD in order; NULL: two passes (see avro_resolve_run.c) */
    int nsteps;
};

typedef struct {
    lp_rs_arena_t arena;
    lp_rs_schema_t *writer; /* owned: skipping reads its types */
    const lp_rs_op_t *root;
} lp_rs_program_t;

/* Compiles writer (taken over: freed with the program, or here on error) against reader, a type
 * of a schema that outlives the program. NULL and errstr when they do not resolve. */
lp_rs_program_t *lp_rs_compile(lp_rs_schema_t *writer, const lp_rs_type_t *reader, char *errstr,
                               size_t errstr_size);
void lp_rs_program_free(lp_rs_program_t *program);

/* What a run keeps between records: the positions of writer fields of records read in two
 * passes. */
typedef struct {
    size_t *pos;
    size_t top;
    size_t cap;
    int64_t work; /* items and records left to this record (zero-sized items cost no input) */
} lp_rs_vm_t;

/* Reads one value of the program's writer type at rd (rd->pos onwards), writes it in the reader's
 * encoding to wr. LP_ERR with rd's errstr set. */
int lp_rs_run(const lp_rs_program_t *program, lp_rs_vm_t *vm, lp_avro_rd_t *rd, lp_avro_wr_t *wr);
void lp_rs_vm_free(lp_rs_vm_t *vm);

#endif
