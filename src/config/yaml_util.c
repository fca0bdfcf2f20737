/* Checked access to a libyaml document: one place that knows how to say "file:line: key: ...". */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/yaml_util.h"
#include "leadpulse/common.h"
#include "leadpulse/config.h"

int lp_yaml_line(const yaml_node_t *node) {
    return node ? (int)node->start_mark.line + 1 : 1;
}

int lp_yaml_err(lp_yaml_t *y, int line, const char *path, const char *fmt, ...) {
    char msg[LP_ERRSTR];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (y->errstr && y->errstr_size > 0) {
        snprintf(y->errstr, y->errstr_size, "%s:%d: %s: %s", y->file, line,
                 path && *path ? path : "(top level)", msg);
    }
    return LP_ERR;
}

int lp_yaml_read_file(const char *path, char **buf, size_t *len, char *errstr, size_t errstr_size) {
    FILE *fp = NULL;
    char *data = NULL;
    size_t n = 0;

    *buf = NULL;
    *len = 0;
    fp = fopen(path, "rb");
    if (!fp) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s; check the path", path, strerror(errno));
        goto err;
    }
    data = malloc(LP_YAML_FILE_MAX + 1);
    if (!data) {
        snprintf(errstr, errstr_size, "%s: out of memory", path);
        goto err;
    }
    n = fread(data, 1, LP_YAML_FILE_MAX + 1, fp);
    if (ferror(fp)) {
        snprintf(errstr, errstr_size, "%s: cannot read: %s", path, strerror(errno));
        goto err;
    }
    if (n > LP_YAML_FILE_MAX) {
        snprintf(errstr, errstr_size, "%s: larger than %d bytes; is this the right file?", path,
                 LP_YAML_FILE_MAX);
        goto err;
    }
    data[n] = '\0';
    fclose(fp);
    *buf = data;
    *len = n;
    return LP_OK;
err:
    free(data);
    if (fp) {
        fclose(fp);
    }
    return LP_ERR;
}

static int syntax_err(lp_yaml_t *y, yaml_parser_t *parser) {
    const char *problem = parser->problem ? parser->problem : "malformed YAML";

    if (parser->context) {
        return lp_yaml_err(y, (int)parser->problem_mark.line + 1, "(yaml)",
                           "%s %s; fix the YAML syntax", problem, parser->context);
    }
    return lp_yaml_err(y, (int)parser->problem_mark.line + 1, "(yaml)", "%s; fix the YAML syntax",
                       problem);
}

/* Event pass before loading: refuses aliases and multiple documents, which the document API
 * would silently accept (an alias can even make the tree cyclic). */
static int prescan(lp_yaml_t *y, const char *buf, size_t len) {
    yaml_parser_t parser;
    yaml_event_t event;
    int docs = 0;
    int rc = LP_ERR;
    bool done = false;

    if (!yaml_parser_initialize(&parser)) {
        return lp_yaml_err(y, 1, "(yaml)", "out of memory");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &event)) {
            syntax_err(y, &parser);
            goto out;
        }
        if (event.type == YAML_ALIAS_EVENT) {
            lp_yaml_err(y, (int)event.start_mark.line + 1, "(yaml)",
                        "aliases (*name) are not supported; write the value out");
            yaml_event_delete(&event);
            goto out;
        }
        if (event.type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            lp_yaml_err(y, (int)event.start_mark.line + 1, "(yaml)",
                        "more than one YAML document; keep a single document per file");
            yaml_event_delete(&event);
            goto out;
        }
        done = event.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&event);
    }
    rc = LP_OK;
out:
    yaml_parser_delete(&parser);
    return rc;
}

int lp_yaml_open(lp_yaml_t *y, const char *file, const char *buf, size_t len, char *errstr,
                 size_t errstr_size) {
    yaml_parser_t parser;
    int rc = LP_ERR;

    memset(y, 0, sizeof(*y));
    y->file = file ? file : "(buffer)";
    y->errstr = errstr;
    y->errstr_size = errstr_size;
    if (errstr && errstr_size > 0) {
        errstr[0] = '\0';
    }
    if (len > LP_YAML_FILE_MAX) {
        return lp_yaml_err(y, 1, "(yaml)", "larger than %d bytes; is this the right file?",
                           LP_YAML_FILE_MAX);
    }
    if (prescan(y, buf, len) != LP_OK) {
        return LP_ERR;
    }
    if (!yaml_parser_initialize(&parser)) {
        return lp_yaml_err(y, 1, "(yaml)", "out of memory");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &y->doc)) {
        syntax_err(y, &parser);
        goto out;
    }
    y->have_doc = true;
    rc = LP_OK;
out:
    yaml_parser_delete(&parser);
    return rc;
}

void lp_yaml_close(lp_yaml_t *y) {
    if (y && y->have_doc) {
        yaml_document_delete(&y->doc);
        y->have_doc = false;
    }
}

yaml_node_t *lp_yaml_root(lp_yaml_t *y) {
    return y->have_doc ? yaml_document_get_root_node(&y->doc) : NULL;
}

yaml_node_t *lp_yaml_node(lp_yaml_t *y, int index) {
    return yaml_document_get_node(&y->doc, index);
}

const char *lp_yaml_kind_name(const yaml_node_t *node) {
    if (!node) {
        return "nothing";
    }
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        return lp_yaml_is_null(node) ? "an empty value" : "a scalar";
    default:
        return "nothing";
    }
}

const char *lp_yaml_scalar(const yaml_node_t *node) {
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

bool lp_yaml_is_null(const yaml_node_t *node) {
    const char *s = lp_yaml_scalar(node);

    if (!s || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0;
}

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    size_t prev[LP_YAML_PATH_MAX + 1], cur[LP_YAML_PATH_MAX + 1];

    if (la > LP_YAML_PATH_MAX || lb > LP_YAML_PATH_MAX) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] +
                         (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

const char *lp_suggest(const char *word, const char *const *candidates) {
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t limit = strlen(word) <= 4 ? 1 : (strlen(word) <= 8 ? 2 : 3);

    for (size_t i = 0; candidates && candidates[i]; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

void lp_yaml_path(char *out, size_t size, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

static void join_path(char *out, size_t size, const char *path, const char *key) {
    snprintf(out, size, "%s%s%s", path && *path ? path : "", path && *path ? "." : "", key);
}

int lp_yaml_check_map(lp_yaml_t *y, yaml_node_t *node, const char *path,
                      const char *const *allowed) {
    char sub[LP_YAML_PATH_MAX];

    if (!node || node->type != YAML_MAPPING_NODE) {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "must be a mapping of `key: value` lines, got %s",
                           lp_yaml_kind_name(node));
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *key = lp_yaml_node(y, p->key);
        const char *name = lp_yaml_scalar(key);
        bool known = allowed == NULL;

        if (!name || lp_yaml_is_null(key)) {
            return lp_yaml_err(y, lp_yaml_line(key), path, "keys must be plain names, got %s",
                               lp_yaml_kind_name(key));
        }
        join_path(sub, sizeof(sub), path, name);
        for (size_t i = 0; !known && allowed[i]; i++) {
            known = strcmp(name, allowed[i]) == 0;
        }
        if (!known) {
            const char *hint = lp_suggest(name, allowed);
            if (hint) {
                return lp_yaml_err(y, lp_yaml_line(key), sub, "unknown key; did you mean `%s`?",
                                   hint);
            }
            return lp_yaml_err(y, lp_yaml_line(key), sub,
                               "unknown key; see docs/rules.md for the keys allowed here");
        }
        for (yaml_node_pair_t *q = node->data.mapping.pairs.start; q < p; q++) {
            const char *other = lp_yaml_scalar(lp_yaml_node(y, q->key));
            if (other && strcmp(other, name) == 0) {
                return lp_yaml_err(y, lp_yaml_line(key), sub,
                                   "duplicate key (first at line %d); keep only one",
                                   lp_yaml_line(lp_yaml_node(y, q->key)));
            }
        }
    }
    return LP_OK;
}

yaml_node_t *lp_yaml_get(lp_yaml_t *y, yaml_node_t *map, const char *key, int *key_line) {
    if (!map || map->type != YAML_MAPPING_NODE) {
        return NULL;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = lp_yaml_node(y, p->key);
        const char *name = lp_yaml_scalar(k);
        if (name && strcmp(name, key) == 0) {
            if (key_line) {
                *key_line = lp_yaml_line(k);
            }
            return lp_yaml_node(y, p->value);
        }
    }
    return NULL;
}

static int need_scalar(lp_yaml_t *y, yaml_node_t *node, const char *path, const char *what) {
    if (!lp_yaml_scalar(node) || lp_yaml_is_null(node)) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "must be %s, got %s", what,
                           lp_yaml_kind_name(node));
    }
    return LP_OK;
}

int lp_yaml_str(lp_yaml_t *y, yaml_node_t *node, const char *path, char *dst, size_t dst_size) {
    const char *s;
    size_t len;

    if (need_scalar(y, node, path, "a string") != LP_OK) {
        return LP_ERR;
    }
    s = lp_yaml_scalar(node);
    len = node->data.scalar.length;
    if (strlen(s) != len) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "contains a NUL character; remove it");
    }
    if (lp_strlcpy_checked(dst, dst_size, s, len) != LP_OK) {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "is %zu characters long; at most %zu are allowed, shorten it", len,
                           dst_size - 1);
    }
    return LP_OK;
}

int lp_parse_int(const char *s, int64_t *out, const char **why) {
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || isspace((unsigned char)*s)) {
        *why = "must be a whole number";
        return LP_ERR;
    }
    if (errno == ERANGE) {
        *why = "is out of range";
        return LP_ERR;
    }
    *out = (int64_t)v;
    return LP_OK;
}

int lp_parse_double(const char *s, double *out, const char **why) {
    char *end = NULL;
    double v;

    /* strtod also takes "inf", "nan" and hex floats; a rules file has no use for them. */
    for (const char *p = s; *p; p++) {
        if (!strchr("0123456789+-.eE", *p)) {
            *why = "must be a number";
            return LP_ERR;
        }
    }
    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0') {
        *why = "must be a number";
        return LP_ERR;
    }
    if (errno == ERANGE || !isfinite(v)) {
        *why = "is out of range";
        return LP_ERR;
    }
    *out = v;
    return LP_OK;
}

int lp_parse_bool(const char *s, bool *out, const char **why) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return LP_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return LP_OK;
        }
    }
    *why = "must be true or false";
    return LP_ERR;
}

int lp_yaml_double(lp_yaml_t *y, yaml_node_t *node, const char *path, double *out) {
    const char *why = NULL;

    if (need_scalar(y, node, path, "a number") != LP_OK) {
        return LP_ERR;
    }
    if (lp_parse_double(lp_yaml_scalar(node), out, &why) != LP_OK) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "%s, got \"%s\"", why,
                           lp_yaml_scalar(node));
    }
    return LP_OK;
}

int lp_yaml_int(lp_yaml_t *y, yaml_node_t *node, const char *path, int64_t min, int64_t max,
                int64_t *out) {
    const char *why = NULL;
    int64_t v = 0;

    if (need_scalar(y, node, path, "a whole number") != LP_OK) {
        return LP_ERR;
    }
    if (lp_parse_int(lp_yaml_scalar(node), &v, &why) != LP_OK) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "%s, got \"%s\"", why,
                           lp_yaml_scalar(node));
    }
    if (v < min || v > max) {
        return lp_yaml_err(y, lp_yaml_line(node), path,
                           "must be between %" PRId64 " and %" PRId64 ", got %" PRId64, min, max,
                           v);
    }
    *out = v;
    return LP_OK;
}

int lp_yaml_bool(lp_yaml_t *y, yaml_node_t *node, const char *path, bool *out) {
    const char *why = NULL;

    if (need_scalar(y, node, path, "true or false") != LP_OK) {
        return LP_ERR;
    }
    if (lp_parse_bool(lp_yaml_scalar(node), out, &why) != LP_OK) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "%s, got \"%s\"", why,
                           lp_yaml_scalar(node));
    }
    return LP_OK;
}

int lp_yaml_duration(lp_yaml_t *y, yaml_node_t *node, const char *path, int64_t *out_ms) {
    const char *why = NULL;

    if (need_scalar(y, node, path, "a duration such as 30d, 12h, 90s or 500ms") != LP_OK) {
        return LP_ERR;
    }
    if (lp_config_parse_duration(lp_yaml_scalar(node), out_ms, &why) != LP_OK) {
        return lp_yaml_err(y, lp_yaml_line(node), path, "%s, got \"%s\"", why,
                           lp_yaml_scalar(node));
    }
    return LP_OK;
}

int lp_config_parse_duration(const char *s, int64_t *out_ms, const char **why) {
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 604800000}};
    const char *p = s;
    int64_t total = 0;
    const char *dummy = NULL;

    if (!why) {
        why = &dummy;
    }
    if (strcmp(s, "0") == 0 || strcasecmp(s, "off") == 0) {
        *out_ms = 0;
        return LP_OK;
    }
    if (*p == '-') {
        *why = "must not be negative";
        return LP_ERR;
    }
    if (!isdigit((unsigned char)*p)) {
        *why = "must be a duration such as 30d, 12h, 15m, 90s or 500ms";
        return LP_ERR;
    }
    while (*p) {
        int64_t n = 0, mult = 0;
        size_t ulen = 0;

        if (!isdigit((unsigned char)*p)) {
            *why = "must be a duration such as 30d, 12h, 15m, 90s or 500ms";
            return LP_ERR;
        }
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10) {
                *why = "is too long a duration";
                return LP_ERR;
            }
            n = n * 10 + (*p++ - '0');
        }
        /* longest unit first so that "ms" is not read as "m" followed by garbage */
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, l) == 0 && l > ulen) {
                ulen = l;
                mult = units[i].ms;
            }
        }
        if (ulen == 0) {
            *why = *p ? "has an unknown unit; use ms, s, m, h, d or w"
                      : "needs a unit (ms, s, m, h, d or w), e.g. 30d";
            return LP_ERR;
        }
        p += ulen;
        if (n > (INT64_MAX - total) / mult) {
            *why = "is too long a duration";
            return LP_ERR;
        }
        total += n * mult;
    }
    *out_ms = total;
    return LP_OK;
}
