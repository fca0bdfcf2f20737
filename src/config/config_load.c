/* Loading the worker configuration: defaults from the table, then the YAML file, then the
 * LEADPULSE_* environment; the kafka pass-through list; cross-key checks. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_table.h"
#include "config/yaml_util.h"

extern char **environ;

#define ENV_PREFIX "LEADPULSE_"
#define ENV_KAFKA "LEADPULSE_KAFKA_"
#define ENV_TEST_CLOCK "LEADPULSE_ALLOW_TEST_CLOCK"

typedef struct {
    lp_config_t *config;
    lp_yaml_t *y;                 /* NULL when there is no file */
    int line[LP_CONFIG_KEYS_MAX]; /* file line of each key set by the file */
    char *errstr;
    size_t errstr_size;
} loader_t;

static int find_entry(const char *name) {
    for (size_t i = 0; i < lp_config_table_len; i++) {
        if (strcmp(lp_config_table[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static bool is_section(const char *prefix) {
    size_t n = strlen(prefix);

    for (size_t i = 0; i < lp_config_table_len; i++) {
        if (strncmp(lp_config_table[i].name, prefix, n) == 0 && lp_config_table[i].name[n] == '.') {
            return true;
        }
    }
    return false;
}

static const char *suggest_key(const char *name, bool env) {
    const char *names[LP_CONFIG_KEYS_MAX + 1];

    for (size_t i = 0; i < lp_config_table_len; i++) {
        names[i] = env ? lp_config_table[i].env : lp_config_table[i].name;
    }
    names[lp_config_table_len] = NULL;
    return lp_suggest(name, names);
}

/* Converts and stores one value; on error writes why into msg. */
static int set_value(lp_config_t *config, const lp_config_entry_t *e, const char *text, char *msg,
                     size_t msg_size) {
    char *field = (char *)config + e->offset;
    const char *why = NULL;
    int64_t v = 0;
    double d = 0;
    size_t len = strlen(text);

    switch (e->type) {
    case LP_CT_STR:
        if (len >= e->size) {
            snprintf(msg, msg_size, "is %zu characters long; at most %zu are allowed", len,
                     e->size - 1);
            return LP_ERR;
        }
        if (len == 0 && !(e->flags & LP_CF_EMPTY_OK)) {
            snprintf(msg, msg_size, "must not be empty; remove the key to use the default (%s)",
                     e->def);
            return LP_ERR;
        }
        if (e->check && e->check(config, text, msg, msg_size) != LP_OK) {
            return LP_ERR;
        }
        memcpy(field, text, len + 1);
        return LP_OK;
    case LP_CT_INT:
    case LP_CT_MS:
        if (lp_parse_int(text, &v, &why) != LP_OK &&
            (e->type != LP_CT_MS || lp_config_parse_duration(text, &v, &why) != LP_OK)) {
            snprintf(msg, msg_size, "%s, got \"%s\"", why, text);
            return LP_ERR;
        }
        if (v < e->min || v > e->max) {
            snprintf(msg, msg_size, "must be between %lld and %lld%s, got %lld", (long long)e->min,
                     (long long)e->max, e->type == LP_CT_MS ? " ms" : "", (long long)v);
            return LP_ERR;
        }
        if (e->size == sizeof(int64_t)) {
            memcpy(field, &v, sizeof(v));
        } else {
            int32_t i32 = (int32_t)v;
            memcpy(field, &i32, sizeof(i32));
        }
        return LP_OK;
    case LP_CT_DOUBLE:
        if (lp_parse_double(text, &d, &why) != LP_OK) {
            snprintf(msg, msg_size, "%s, got \"%s\"", why, text);
            return LP_ERR;
        }
        if (d < e->dmin || d > e->dmax) {
            snprintf(msg, msg_size, "must be between %g and %g, got %g", e->dmin, e->dmax, d);
            return LP_ERR;
        }
        memcpy(field, &d, sizeof(d));
        return LP_OK;
    case LP_CT_ENUM:
        for (int i = 0; e->names[i]; i++) {
            if (strcmp(text, e->names[i]) == 0) {
                memcpy(field, &i, sizeof(i));
                return LP_OK;
            }
        }
        {
            char list[128] = "";
            const char *hint = lp_suggest(text, e->names);
            for (int i = 0; e->names[i]; i++) {
                size_t off = strlen(list);
                snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", e->names[i]);
            }
            snprintf(msg, msg_size, "must be one of %s, got \"%s\"%s%s%s", list, text,
                     hint ? "; did you mean " : "", hint ? hint : "", hint ? "?" : "");
        }
        return LP_ERR;
    }
    return LP_ERR;
}

static int reserved_check(const char *name, char *msg, size_t msg_size) {
    for (size_t i = 0; lp_config_kafka_reserved[i][0]; i++) {
        if (strcmp(name, lp_config_kafka_reserved[i][0]) == 0) {
            snprintf(msg, msg_size, "is set by the worker itself (%s); remove it",
                     lp_config_kafka_reserved[i][1]);
            return LP_ERR;
        }
    }
    for (const char *p = name; *p; p++) {
        if (!isgraph((unsigned char)*p)) {
            snprintf(msg, msg_size, "is not a librdkafka property name");
            return LP_ERR;
        }
    }
    return name[0] ? LP_OK : LP_ERR;
}

/* Adds or replaces a pass-through property (a replaced one keeps its place). */
static int kafka_set(lp_config_t *config, const char *name, const char *value) {
    lp_config_kv_t *grown;
    char *n = NULL, *v = strdup(value);

    if (!v) {
        return LP_ERR;
    }
    for (size_t i = 0; i < config->nkafka; i++) {
        if (strcmp(config->kafka[i].name, name) == 0) {
            free(config->kafka[i].value);
            config->kafka[i].value = v;
            return LP_OK;
        }
    }
    n = strdup(name);
    grown = realloc(config->kafka, (config->nkafka + 1) * sizeof(*grown));
    if (!n || !grown) {
        free(n);
        free(v);
        return LP_ERR;
    }
    config->kafka = grown;
    config->kafka[config->nkafka].name = n;
    config->kafka[config->nkafka].value = v;
    config->nkafka++;
    return LP_OK;
}

static int walk(loader_t *l, yaml_node_t *map, const char *path) {
    lp_yaml_t *y = l->y;
    char full[LP_YAML_PATH_MAX], msg[LP_ERRSTR];

    if (lp_yaml_check_map(y, map, path, NULL) != LP_OK) {
        return LP_ERR;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *key = lp_yaml_node(y, p->key), *v = lp_yaml_node(y, p->value);
        const char *text = lp_yaml_is_null(v) ? "" : lp_yaml_scalar(v);
        int idx;

        lp_yaml_path(full, sizeof(full), "%s%s%s", path, *path ? "." : "", lp_yaml_scalar(key));
        if (strlen(full) >= sizeof(full) - 1) {
            return lp_yaml_err(y, lp_yaml_line(key), path, "key path too long");
        }
        idx = find_entry(full);
        if (idx >= 0) {
            if (!text) {
                return lp_yaml_err(y, lp_yaml_line(v), full, "must be a single value, got %s",
                                   lp_yaml_kind_name(v));
            }
            if (set_value(l->config, &lp_config_table[idx], text, msg, sizeof(msg)) != LP_OK) {
                return lp_yaml_err(y, lp_yaml_line(v), full, "%s", msg);
            }
            l->config->origin[idx] = LP_SRC_FILE;
            l->line[idx] = lp_yaml_line(v);
        } else if (strncmp(full, "kafka.", 6) == 0 && v->type == YAML_MAPPING_NODE) {
            if (walk(l, v, full) != LP_OK) {
                return LP_ERR;
            }
        } else if (strncmp(full, "kafka.", 6) == 0) {
            if (!text || !text[0]) {
                return lp_yaml_err(y, lp_yaml_line(v), full,
                                   "librdkafka properties take a single value, got %s",
                                   lp_yaml_kind_name(v));
            }
            if (reserved_check(full + 6, msg, sizeof(msg)) != LP_OK) {
                return lp_yaml_err(y, lp_yaml_line(key), full, "%s", msg);
            }
            if (kafka_set(l->config, full + 6, text) != LP_OK) {
                return lp_yaml_err(y, lp_yaml_line(key), full, "out of memory");
            }
        } else if (is_section(full)) {
            if (v->type != YAML_MAPPING_NODE) {
                return lp_yaml_err(y, lp_yaml_line(v), full,
                                   "is a section: must be a mapping of keys, got %s",
                                   lp_yaml_kind_name(v));
            }
            if (walk(l, v, full) != LP_OK) {
                return LP_ERR;
            }
        } else {
            const char *hint = suggest_key(full, false);
            if (hint) {
                return lp_yaml_err(y, lp_yaml_line(key), full, "unknown key; did you mean `%s`?",
                                   hint);
            }
            return lp_yaml_err(y, lp_yaml_line(key), full,
                               "unknown key; see docs/configuration.md for the keys");
        }
    }
    return LP_OK;
}

static void kafka_env_name(const char *var, char *out, size_t size) {
    size_t i = 0;

    for (const char *p = var + strlen(ENV_KAFKA); *p && *p != '=' && i + 1 < size; p++) {
        out[i++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
    }
    out[i] = '\0';
}

/* An env var that looks like one of ours (a known section) but is not in the table. */
static bool looks_like_ours(const char *var, size_t len) {
    char prefix[64];

    for (size_t i = 0; i < lp_config_table_len; i++) {
        const char *dot = strchr(lp_config_table[i].name, '.');
        size_t n = strlen(ENV_PREFIX);
        if (!dot || strncmp(lp_config_table[i].name, "kafka.", 6) == 0) {
            continue;
        }
        memcpy(prefix, ENV_PREFIX, n);
        for (const char *p = lp_config_table[i].name; p < dot && n < sizeof(prefix) - 2; p++) {
            prefix[n++] = (char)toupper((unsigned char)*p);
        }
        prefix[n++] = '_';
        if (len > n && strncmp(var, prefix, n) == 0) {
            return true;
        }
    }
    return false;
}

static int apply_env(loader_t *l) {
    char msg[LP_ERRSTR], name[256], var[256];

    for (size_t i = 0; i < lp_config_table_len; i++) {
        const lp_config_entry_t *e = &lp_config_table[i];
        const char *v = getenv(e->env);
        if (!v) {
            continue;
        }
        if (set_value(l->config, e, v, msg, sizeof(msg)) != LP_OK) {
            snprintf(l->errstr, l->errstr_size, "env %s: %s: %s", e->env, e->name, msg);
            return LP_ERR;
        }
        l->config->origin[i] = LP_SRC_ENV;
    }
    for (char **ep = environ; ep && *ep; ep++) {
        const char *eq = strchr(*ep, '=');
        size_t len = eq ? (size_t)(eq - *ep) : strlen(*ep);

        if (strncmp(*ep, ENV_PREFIX, strlen(ENV_PREFIX)) != 0 || len >= sizeof(var)) {
            continue;
        }
        memcpy(var, *ep, len);
        var[len] = '\0';
        bool known = strcmp(var, ENV_TEST_CLOCK) == 0;
        for (size_t i = 0; !known && i < lp_config_table_len; i++) {
            known = strcmp(var, lp_config_table[i].env) == 0;
        }
        if (known) {
            continue;
        }
        if (strncmp(var, ENV_KAFKA, strlen(ENV_KAFKA)) == 0 && len > strlen(ENV_KAFKA)) {
            kafka_env_name(var, name, sizeof(name));
            if (reserved_check(name, msg, sizeof(msg)) != LP_OK) {
                snprintf(l->errstr, l->errstr_size, "env %s: kafka.%s: %s", var, name, msg);
                return LP_ERR;
            }
            if (kafka_set(l->config, name, eq ? eq + 1 : "") != LP_OK) {
                snprintf(l->errstr, l->errstr_size, "env %s: out of memory", var);
                return LP_ERR;
            }
        } else if (looks_like_ours(var, len)) {
            const char *hint = suggest_key(var, true);
            snprintf(l->errstr, l->errstr_size,
                     "env %s: unknown configuration variable%s%s%s; see docs/configuration.md", var,
                     hint ? "; did you mean " : "", hint ? hint : "", hint ? "?" : "");
            return LP_ERR;
        }
    }
    return LP_OK;
}

/* "file:line: key: msg", "env VAR: key: msg" or "(defaults): key: msg", by where the key was set.
 */
static int err_at(loader_t *l, size_t idx, const char *msg) {
    const lp_config_entry_t *e = &lp_config_table[idx];

    switch (l->config->origin[idx]) {
    case LP_SRC_FILE:
        return lp_yaml_err(l->y, l->line[idx], e->name, "%s", msg);
    case LP_SRC_ENV:
        snprintf(l->errstr, l->errstr_size, "env %s: %s: %s", e->env, e->name, msg);
        return LP_ERR;
    default:
        snprintf(l->errstr, l->errstr_size, "(defaults): %s: %s", e->name, msg);
        return LP_ERR;
    }
}

static int check_all(loader_t *l) {
    const lp_config_t *c = l->config;
    const char *allow = getenv(ENV_TEST_CLOCK);
    char msg[LP_ERRSTR];
    int first = find_entry("topics.engagement");

    /* Test clock: shifting or speeding up the wall clock fires SLA and inactivity timers early,
     * so production would send false LeadStale events to sales. Only tests may use it. */
    for (size_t i = 0; i < lp_config_table_len; i++) {
        if (!(lp_config_table[i].flags & LP_CF_TEST_ONLY) || (allow && strcmp(allow, "1") == 0)) {
            continue;
        }
        lp_config_format(c, &lp_config_table[i], msg, sizeof(msg));
        if (strcmp(msg, lp_config_table[i].def) != 0) {
            return err_at(l, i,
                          "is for tests only (it makes timers fire early) and is refused unless "
                          "LEADPULSE_ALLOW_TEST_CLOCK=1; remove it");
        }
    }
    /* Several Redis URLs are a cluster's seeds; a cluster has database 0 only. */
    if (!c->redis_cluster && c->redis_nurls > 1) {
        return err_at(l, (size_t)find_entry("redis.url"),
                      "several URLs are Redis Cluster seed nodes: set redis.mode: cluster, or "
                      "give one URL");
    }
    if (c->redis_cluster && c->redis_db != 0) {
        return err_at(l, (size_t)find_entry("redis.url"),
                      "names a database (/N); a Redis Cluster has database 0 only");
    }
    /* Ten distinct topics: an output topic that is also an input would feed the worker
     * itself. (The topics.* entries are consecutive in the table.) */
    for (int i = first; i < first + 10; i++) {
        const char *a = (const char *)c + lp_config_table[i].offset;
        for (int j = first; j < i; j++) {
            if (strcmp(a, (const char *)c + lp_config_table[j].offset) == 0) {
                snprintf(msg, sizeof(msg),
                         "\"%s\" is also %s; every input and output topic must be distinct", a,
                         lp_config_table[j].name);
                return err_at(l, (size_t)i, msg);
            }
        }
    }
    return LP_OK;
}

static lp_config_t *load(const char *name, const char *buf, size_t len, char *errstr,
                         size_t errstr_size) {
    lp_yaml_t y;
    loader_t l = {0};
    char msg[LP_ERRSTR];
    yaml_node_t *root;

    memset(&y, 0, sizeof(y));
    l.errstr = errstr;
    l.errstr_size = errstr_size;
    l.y = &y;
    l.config = calloc(1, sizeof(*l.config));
    if (!l.config) {
        snprintf(errstr, errstr_size, "out of memory");
        goto err;
    }
    for (size_t i = 0; i < lp_config_table_len; i++) {
        if (set_value(l.config, &lp_config_table[i], lp_config_table[i].def, msg, sizeof(msg)) !=
            LP_OK) {
            snprintf(errstr, errstr_size, "(defaults): %s: %s", lp_config_table[i].name, msg);
            goto err;
        }
    }
    if (buf) {
        snprintf(l.config->source, sizeof(l.config->source), "%s", name);
        if (lp_yaml_open(&y, name, buf, len, errstr, errstr_size) != LP_OK) {
            goto err;
        }
        root = lp_yaml_root(&y);
        /* an empty file (or only comments) means "all defaults" */
        if (root && !lp_yaml_is_null(root) && walk(&l, root, "") != LP_OK) {
            goto err;
        }
    } else {
        y.file = "(defaults)";
    }
    if (apply_env(&l) != LP_OK || check_all(&l) != LP_OK) {
        goto err;
    }
    lp_yaml_close(&y);
    return l.config;
err:
    lp_yaml_close(&y);
    lp_config_destroy(l.config);
    return NULL;
}

lp_config_t *lp_config_load_buffer(const char *name, const char *buf, size_t len, char *errstr,
                                   size_t errstr_size) {
    return load(name ? name : "(config)", buf ? buf : "", buf ? len : 0, errstr, errstr_size);
}

lp_config_t *lp_config_load(const char *path, char *errstr, size_t errstr_size) {
    char *buf = NULL;
    size_t len = 0;
    lp_config_t *config;

    if (!path) {
        return load(NULL, NULL, 0, errstr, errstr_size);
    }
    if (lp_yaml_read_file(path, &buf, &len, errstr, errstr_size) != LP_OK) {
        return NULL;
    }
    config = load(path, buf, len, errstr, errstr_size);
    free(buf);
    return config;
}

void lp_config_destroy(lp_config_t *config) {
    if (!config) {
        return;
    }
    for (size_t i = 0; i < config->nkafka; i++) {
        free(config->kafka[i].name);
        free(config->kafka[i].value);
    }
    free(config->kafka);
    free(config);
}

const char *lp_config_kafka_get(const lp_config_t *config, const char *name) {
    for (size_t i = 0; config && i < config->nkafka; i++) {
        if (strcmp(config->kafka[i].name, name) == 0) {
            return config->kafka[i].value;
        }
    }
    return NULL;
}
