/* leadpulse: a client of Confluent's Schema Registry protocol (libcurl), for the Confluent
 * framing's schema ids. Any registry that serves the protocol works: Confluent's own, or
 * Apicurio's compatibility API (`.../apis/ccompat/v7`).
 *
 * Several base URLs may be given (comma-separated): a call goes to the one that answered last and
 * fails over to the next when one cannot be reached or answers 5xx; a 4xx is the registry's
 * answer (no failover). Answers are cached in memory: the schema of an id for good (ids never
 * change meaning), a subject's id for a schema for the client's lifetime, so that calls asked
 * again while every registry is unreachable are answered from the cache. */
#ifndef LEADPULSE_REGISTRY_H
#define LEADPULSE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leadpulse/codec.h"

#define LP_REGISTRY_URLS_MAX 8
/* Outcomes besides LP_OK and LP_ERR (no registry answered). */
#define LP_REGISTRY_REFUSED (-2)   /* 409 / 422: errstr has the registry's code and message */
#define LP_REGISTRY_NOT_FOUND (-3) /* 404: no such subject, version or id */

typedef struct {
    const char *urls;     /* comma-separated base URLs, e.g. http://127.0.0.1:8081 */
    const char *username; /* HTTP basic auth; NULL or "" = none */
    const char *password;
    const char *ca_file; /* TLS: a CA bundle instead of the system's; NULL or "" = system */
    int timeout_ms;      /* per request (connect and transfer); <= 0: 5000 */
} lp_registry_opts_t;

typedef struct lp_registry lp_registry_t;

/* NULL with a reason when the options are unusable (no URL, too many). Connects to nothing. */
lp_registry_t *lp_registry_new(const lp_registry_opts_t *opts, char *errstr, size_t errstr_size);
void lp_registry_destroy(lp_registry_t *reg);

/* Registers schema (Avro schema JSON) under subject, or finds it there if registered already
 * (POST /subjects/{subject}/versions): *id is its global id. LP_OK, LP_REGISTRY_REFUSED (e.g.
 * incompatible with the subject's latest version under its compatibility level), LP_ERR. */
int lp_registry_register(lp_registry_t *reg, const char *subject, const char *schema, int32_t *id,
                         char *errstr, size_t errstr_size);

/* The id of schema under subject without registering it (POST /subjects/{subject}):
 * LP_OK, LP_REGISTRY_NOT_FOUND (not registered there), LP_REGISTRY_REFUSED, LP_ERR. */
int lp_registry_lookup(lp_registry_t *reg, const char *subject, const char *schema, int32_t *id,
                       char *errstr, size_t errstr_size);

/* The writer schema of a global id (GET /schemas/ids/{id}); *schema belongs to the client and
 * stays valid until lp_registry_destroy. LP_OK, LP_REGISTRY_NOT_FOUND, LP_ERR. A 404 is
 * remembered for a minute (the same id is answered NOT_FOUND without a request meanwhile). */
int lp_registry_schema(lp_registry_t *reg, int32_t id, const char **schema, char *errstr,
                       size_t errstr_size);

/* Sets subject's compatibility level (PUT /config/{subject}), e.g. "BACKWARD". LP_OK,
 * LP_REGISTRY_REFUSED (an unknown level), LP_ERR. */
int lp_registry_set_compatibility(lp_registry_t *reg, const char *subject, const char *level,
                                  char *errstr, size_t errstr_size);

/* The latest version of subject (GET /subjects/{subject}/versions/latest): its version number and
 * schema id. LP_OK, LP_REGISTRY_NOT_FOUND (no such subject), LP_ERR. */
int lp_registry_latest(lp_registry_t *reg, const char *subject, int *version, int32_t *id,
                       char *errstr, size_t errstr_size);

/* Whether schema may be registered under subject (POST /compatibility/subjects/{subject}/
 * versions/latest?verbose=true): LP_OK (compatible), LP_REGISTRY_REFUSED (incompatible; why has
 * the registry's messages joined by "; ", "" when it gives none), LP_REGISTRY_NOT_FOUND (no such
 * subject), LP_ERR. */
int lp_registry_check(lp_registry_t *reg, const char *subject, const char *schema, char *why,
                      size_t why_size, char *errstr, size_t errstr_size);

/* The base URL that answered last (for logs). */
const char *lp_registry_current_url(const lp_registry_t *reg);

/* ---- leadpulse's schemas in a registry ---- */

#define LP_SUBJECT_TOPIC 0  /* "<topic>-value": Confluent's TopicNameStrategy */
#define LP_SUBJECT_RECORD 1 /* "io.leadpulse.<Record>": RecordNameStrategy */

/* The subject of schema kind under strategy (topic: the topic its records go to). */
void lp_registry_subject(int strategy, const char *topic, lp_schema_kind_t kind, char *out,
                         size_t size);

typedef struct {
    const char *schema_dir;               /* the .avsc files (schemas/) */
    const char *topics[LP_SCHEMA__COUNT]; /* the topic of each kind to do; NULL = skip it */
    int strategy;                         /* LP_SUBJECT_* */
    bool auto_register;                   /* register; false: look up only */
} lp_registry_schemas_t;

/* The id of each kind with a topic in s: its .avsc file registered (or looked up) under its
 * subject. LP_OK; LP_ERR when no registry answered (worth a retry); LP_REGISTRY_REFUSED or
 * LP_REGISTRY_NOT_FOUND with errstr naming the schema, the subject, its latest version and the
 * registry's reason (not worth a retry). */
int lp_registry_schema_ids(lp_registry_t *reg, const lp_registry_schemas_t *s,
                           int32_t ids[LP_SCHEMA__COUNT], char *errstr, size_t size);

/* A schema file's text (malloc'd, NUL-terminated; the caller frees it), or NULL with
 * "<path>: cannot read" in errstr. */
char *lp_registry_read_schema(const char *path, char *errstr, size_t size);

/* An lp_avro_fetch_fn (ctx: the lp_registry_t): the writer schema of an id, LP_AVRO_UNKNOWN_ID
 * when the registry has none, LP_ERR when no registry answered. */
int lp_registry_fetch(void *ctx, int32_t id, const char **schema_json, char *errstr, size_t size);

#endif
