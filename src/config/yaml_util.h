/* leadpulse config layer, internal: a thin checked layer over the libyaml document API shared by
 * the rules loader and the worker configuration. Every error it writes has the form
 * "<file>:<line>: <key.path>: <what is wrong and what to do>". */
#ifndef LP_CONFIG_YAML_UTIL_H
#define LP_CONFIG_YAML_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#define LP_YAML_FILE_MAX (1024 * 1024) /* configuration files are small; refuse anything bigger */
#define LP_YAML_PATH_MAX 192           /* longest key path we print */

typedef struct {
    const char *file; /* name used in messages */
    char *errstr;
    size_t errstr_size;
    yaml_document_t doc;
    bool have_doc;
} lp_yaml_t;

/* Parses buf as exactly one YAML document. Aliases are refused (they would let a small file
 * expand into a huge or cyclic tree). On error writes errstr and returns LP_ERR; the context
 * must be closed with lp_yaml_close() in every case. */
int lp_yaml_open(lp_yaml_t *y, const char *file, const char *buf, size_t len, char *errstr,
                 size_t errstr_size);
void lp_yaml_close(lp_yaml_t *y);
/* Root node, or NULL for an empty document. */
yaml_node_t *lp_yaml_root(lp_yaml_t *y);
yaml_node_t *lp_yaml_node(lp_yaml_t *y, int index);

/* Reads a whole file (at most LP_YAML_FILE_MAX bytes) into a NUL-terminated heap buffer that the
 * caller frees with free(). */
int lp_yaml_read_file(const char *path, char **buf, size_t *len, char *errstr, size_t errstr_size);

int lp_yaml_line(const yaml_node_t *node);

/* Writes "<file>:<line>: <path>: <message>" and returns LP_ERR. */
int lp_yaml_err(lp_yaml_t *y, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks that node is a mapping whose keys are scalars, unique and among allowed (NULL-terminated).
 * Unknown keys get a did-you-mean suggestion. allowed == NULL accepts any key. */
int lp_yaml_check_map(lp_yaml_t *y, yaml_node_t *node, const char *path,
                      const char *const *allowed);
/* Value of `key` in a mapping, or NULL if absent; *key_line (may be NULL) gets the key's line. */
yaml_node_t *lp_yaml_get(lp_yaml_t *y, yaml_node_t *map, const char *key, int *key_line);
const char *lp_yaml_kind_name(const yaml_node_t *node);
bool lp_yaml_is_null(const yaml_node_t *node);
const char *lp_yaml_scalar(const yaml_node_t *node); /* NULL if not a scalar */

/* Typed readers: check type and bounds, report errors at the node's line under `path`. */
int lp_yaml_str(lp_yaml_t *y, yaml_node_t *node, const char *path, char *dst, size_t dst_size);
int lp_yaml_double(lp_yaml_t *y, yaml_node_t *node, const char *path, double *out);
int lp_yaml_int(lp_yaml_t *y, yaml_node_t *node, const char *path, int64_t min, int64_t max,
                int64_t *out);
int lp_yaml_bool(lp_yaml_t *y, yaml_node_t *node, const char *path, bool *out);
/* Duration such as "30d", "12h", "90s", "500ms", "1h30m"; "0" and "off" mean 0. */
int lp_yaml_duration(lp_yaml_t *y, yaml_node_t *node, const char *path, int64_t *out_ms);

/* Plain parsers shared with the environment overrides. Return LP_OK, or LP_ERR with *why set to a
 * static explanation. */
int lp_parse_int(const char *s, int64_t *out, const char **why);
int lp_parse_double(const char *s, double *out, const char **why);
int lp_parse_bool(const char *s, bool *out, const char **why);

/* snprintf for key paths ("fit.rules[2].points"); a path too long is cut, never overflowed. */
void lp_yaml_path(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The closest of candidates (NULL-terminated) to word, or NULL if none is close. */
const char *lp_suggest(const char *word, const char *const *candidates);

#endif
