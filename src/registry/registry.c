/* The Schema Registry client (leadpulse/registry.h): libcurl for HTTP, registry_json.c for the
 * registry's JSON answers. */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leadpulse/common.h"
#include "leadpulse/hash.h"
#include "leadpulse/registry.h"
#include "registry/registry_json.h"

#define BODY_MAX (4u << 20) /* an answer larger than this is refused */
#define NOT_FOUND_TTL_MS 60000

typedef struct {
    int32_t id;
    char *schema;
} by_id_t;

typedef struct {
    uint64_t key; /* hash of subject NUL schema */
    char *subject;
    char *schema;
    int32_t id;
} by_subject_t;

struct lp_registry {
    char *urls[LP_REGISTRY_URLS_MAX];
    int nurls;
    int current;
    char *userpwd;
    char *ca_file;
    long timeout_ms;
    CURL *curl;
    by_id_t *ids;
    size_t nids, cap_ids;
    /* Ids the registry answered 404 for, and when (monotonic ms): asked again only after
     * NOT_FOUND_TTL_MS, so a stream of records with a bad id costs one request a minute, not
     * one per record. A ring: the oldest entry gives way. */
    struct {
        int32_t id;
        int64_t at_ms;
    } not_found[64];
    size_t nnot_found;
    by_subject_t *subjects;
    size_t nsubjects, cap_subjects;
};

typedef struct {
    char *data;
    size_t len, cap;
    bool too_big;
} body_t;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *ptr, size_t size, size_t n, void *ctx) {
    body_t *b = ctx;
    size_t add = size * n;
    if (b->len + add + 1 > BODY_MAX) {
        b->too_big = true;
        return 0;
    }
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + add + 1) {
            cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            return 0;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* errstr from an error answer: "HTTP 409, error_code 409: <message>". */
static void answer_error(long status, const char *body, const char *what, char *errstr,
                         size_t size) {
    long long code = 0;
    const char *m = body != NULL ? lp_rj_member(body, "message") : NULL;
    const char *end;
    char *message = m != NULL ? lp_rj_string(m, &end) : NULL;
    if (body == NULL || lp_rj_int(body, "error_code", &code) != LP_OK) {
        code = status;
    }
    snprintf(errstr, size, "%s: HTTP %ld, error_code %lld: %s", what, status, code,
             message != NULL ? message : (body != NULL && body[0] ? body : "(no message)"));
    free(message);
}

/* ---- requests ---- */

/* One request to the registry, failing over across the URLs. *status is the HTTP status of the
 * answer (the body in *body, NUL-terminated, to free). LP_ERR when no URL answered. */
static int request(lp_registry_t *reg, const char *method, const char *path, const char *payload,
                   long *status, char **body, char *errstr, size_t size) {
    char last[LP_ERRSTR] = "no URL";
    for (int tried = 0; tried < reg->nurls; tried++) {
        int u = (reg->current + tried) % reg->nurls;
        char url[2048];
        snprintf(url, sizeof(url), "%s%s", reg->urls[u], path);
        body_t b = {0};
        struct curl_slist *hdrs = NULL;
        hdrs = curl_slist_append(hdrs, "Accept: application/vnd.schemaregistry.v1+json, "
                                       "application/json");
        if (payload != NULL) {
            hdrs = curl_slist_append(hdrs, "Content-Type: application/vnd.schemaregistry.v1+json");
        }
        CURL *c = reg->curl;
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, reg->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, reg->timeout_ms);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        if (reg->userpwd != NULL) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERPWD, reg->userpwd);
        }
        if (reg->ca_file != NULL) {
            curl_easy_setopt(c, CURLOPT_CAINFO, reg->ca_file);
        }
        if (payload != NULL) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        CURLcode rc = curl_easy_perform(c);
        curl_slist_free_all(hdrs);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (rc == CURLE_OK && code > 0 && code < 500) {
            reg->current = u;
            *status = code;
            *body = b.data != NULL ? b.data : calloc(1, 1);
            return *body != NULL ? LP_OK : LP_ERR;
        }
        if (rc != CURLE_OK) {
            snprintf(last, sizeof(last), "%s: %s", reg->urls[u],
                     b.too_big ? "answer too large" : curl_easy_strerror(rc));
        } else {
            snprintf(last, sizeof(last), "%s: HTTP %ld", reg->urls[u], code);
        }
        free(b.data);
    }
    snprintf(errstr, size, "schema registry unreachable (%d URL%s tried; last: %s)", reg->nurls,
             reg->nurls == 1 ? "" : "s", last);
    return LP_ERR;
}

/* {"schema": "<schema as a JSON string>"} */
static char *schema_payload(const char *schema) {
    size_t cap = strlen(schema) * 6 + 16;
    char *out = malloc(cap);
    if (out == NULL) {
        return NULL;
    }
    size_t n = (size_t)snprintf(out, cap, "{\"schema\":\"");
    n += lp_json_escape(out + n, cap - n, schema);
    snprintf(out + n, cap - n, "\"}");
    return out;
}

static uint64_t subject_key(const char *subject, const char *schema) {
    return lp_hash64(subject, strlen(subject), lp_hash64(schema, strlen(schema), 0x7265676eu));
}

static by_subject_t *subject_cached(lp_registry_t *reg, const char *subject, const char *schema) {
    uint64_t key = subject_key(subject, schema);
    for (size_t i = 0; i < reg->nsubjects; i++) {
        by_subject_t *s = &reg->subjects[i];
        if (s->key == key && strcmp(s->subject, subject) == 0 && strcmp(s->schema, schema) == 0) {
            return s;
        }
    }
    return NULL;
}

static void subject_remember(lp_registry_t *reg, const char *subject, const char *schema,
                             int32_t id) {
    if (reg->nsubjects == reg->cap_subjects) {
        size_t cap = reg->cap_subjects ? reg->cap_subjects * 2 : 8;
        by_subject_t *p = realloc(reg->subjects, cap * sizeof(*p));
        if (p == NULL) {
            return;
        }
        reg->subjects = p;
        reg->cap_subjects = cap;
    }
    by_subject_t *s = &reg->subjects[reg->nsubjects];
    s->subject = strdup(subject);
    s->schema = strdup(schema);
    if (s->subject == NULL || s->schema == NULL) {
        free(s->subject);
        free(s->schema);
        return;
    }
    s->key = subject_key(subject, schema);
    s->id = id;
    reg->nsubjects++;
}

/* POST path with the schema; the id of the answer. */
static int post_schema(lp_registry_t *reg, const char *what, const char *path_fmt,
                       const char *subject, const char *schema, int32_t *id, char *errstr,
                       size_t size) {
    by_subject_t *hit = subject_cached(reg, subject, schema);
    if (hit != NULL) {
        *id = hit->id;
        return LP_OK;
    }
    char *esc = curl_easy_escape(reg->curl, subject, 0);
    char *payload = schema_payload(schema);
    char path[1024];
    int rc = LP_ERR;
    long status = 0;
    char *body = NULL;
    if (esc == NULL || payload == NULL) {
        snprintf(errstr, size, "%s %s: out of memory", what, subject);
        goto done;
    }
    snprintf(path, sizeof(path), path_fmt, esc);
    if (request(reg, "POST", path, payload, &status, &body, errstr, size) != LP_OK) {
        goto done;
    }
    long long v;
    char label[512];
    snprintf(label, sizeof(label), "%s of subject %s", what, subject);
    if (status == 200 && lp_rj_int(body, "id", &v) == LP_OK && v >= 0 && v <= INT32_MAX) {
        *id = (int32_t)v;
        subject_remember(reg, subject, schema, *id);
        rc = LP_OK;
    } else if (status == 404) {
        answer_error(status, body, label, errstr, size);
        rc = LP_REGISTRY_NOT_FOUND;
    } else if (status == 409 || status == 422) {
        answer_error(status, body, label, errstr, size);
        rc = LP_REGISTRY_REFUSED;
    } else {
        answer_error(status, body, label, errstr, size);
        rc = LP_ERR;
    }
done:
    curl_free(esc);
    free(payload);
    free(body);
    return rc;
}

int lp_registry_register(lp_registry_t *reg, const char *subject, const char *schema, int32_t *id,
                         char *errstr, size_t errstr_size) {
    return post_schema(reg, "register", "/subjects/%s/versions", subject, schema, id, errstr,
                       errstr_size);
}

int lp_registry_lookup(lp_registry_t *reg, const char *subject, const char *schema, int32_t *id,
                       char *errstr, size_t errstr_size) {
    return post_schema(reg, "look up", "/subjects/%s", subject, schema, id, errstr, errstr_size);
}

int lp_registry_schema(lp_registry_t *reg, int32_t id, const char **schema, char *errstr,
                       size_t errstr_size) {
    for (size_t i = 0; i < reg->nids; i++) {
        if (reg->ids[i].id == id) {
            *schema = reg->ids[i].schema;
            return LP_OK;
        }
    }
    int64_t now = mono_ms();
    size_t slots = sizeof(reg->not_found) / sizeof(reg->not_found[0]);
    for (size_t i = 0; i < reg->nnot_found && i < slots; i++) {
        if (reg->not_found[i].id == id && now - reg->not_found[i].at_ms < NOT_FOUND_TTL_MS) {
            snprintf(errstr, errstr_size,
                     "schema id %" PRId32 ": not found in the registry (asked %" PRId64 " ms ago)",
                     id, now - reg->not_found[i].at_ms);
            return LP_REGISTRY_NOT_FOUND;
        }
    }
    char path[64];
    long status = 0;
    char *body = NULL;
    snprintf(path, sizeof(path), "/schemas/ids/%" PRId32, id);
    if (request(reg, "GET", path, NULL, &status, &body, errstr, errstr_size) != LP_OK) {
        return LP_ERR;
    }
    char label[64];
    snprintf(label, sizeof(label), "schema id %" PRId32, id);
    const char *p = status == 200 ? lp_rj_member(body, "schema") : NULL;
    const char *end;
    char *text = p != NULL ? lp_rj_string(p, &end) : NULL;
    if (text == NULL) {
        answer_error(status, body, label, errstr, errstr_size);
        free(body);
        if (status == 404) {
            size_t at = reg->nnot_found++ % slots;
            reg->not_found[at].id = id;
            reg->not_found[at].at_ms = now;
            return LP_REGISTRY_NOT_FOUND;
        }
        return LP_ERR;
    }
    free(body);
    if (reg->nids == reg->cap_ids) {
        size_t cap = reg->cap_ids ? reg->cap_ids * 2 : 8;
        by_id_t *ids = realloc(reg->ids, cap * sizeof(*ids));
        if (ids == NULL) {
            free(text);
            snprintf(errstr, errstr_size, "%s: out of memory", label);
            return LP_ERR;
        }
        reg->ids = ids;
        reg->cap_ids = cap;
    }
    reg->ids[reg->nids++] = (by_id_t){id, text};
    *schema = text;
    return LP_OK;
}

int lp_registry_set_compatibility(lp_registry_t *reg, const char *subject, const char *level,
                                  char *errstr, size_t errstr_size) {
    char *esc = curl_easy_escape(reg->curl, subject, 0);
    char path[1024], payload[128];
    long status = 0;
    char *body = NULL;
    if (esc == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return LP_ERR;
    }
    snprintf(path, sizeof(path), "/config/%s", esc);
    curl_free(esc);
    snprintf(payload, sizeof(payload), "{\"compatibility\":\"%s\"}", level);
    if (request(reg, "PUT", path, payload, &status, &body, errstr, errstr_size) != LP_OK) {
        return LP_ERR;
    }
    int rc = status == 200 ? LP_OK : status == 422 || status == 400 ? LP_REGISTRY_REFUSED : LP_ERR;
    if (rc != LP_OK) {
        answer_error(status, body, "set compatibility", errstr, errstr_size);
    }
    free(body);
    return rc;
}

int lp_registry_latest(lp_registry_t *reg, const char *subject, int *version, int32_t *id,
                       char *errstr, size_t errstr_size) {
    char *esc = curl_easy_escape(reg->curl, subject, 0);
    char path[1024];
    long status = 0;
    char *body = NULL;
    long long v, i;
    if (esc == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return LP_ERR;
    }
    snprintf(path, sizeof(path), "/subjects/%s/versions/latest", esc);
    curl_free(esc);
    if (request(reg, "GET", path, NULL, &status, &body, errstr, errstr_size) != LP_OK) {
        return LP_ERR;
    }
    int rc = LP_OK;
    if (status == 200 && lp_rj_int(body, "version", &v) == LP_OK &&
        lp_rj_int(body, "id", &i) == LP_OK && v >= 0 && v <= INT32_MAX && i >= 0 &&
        i <= INT32_MAX) {
        *version = (int)v;
        *id = (int32_t)i;
    } else {
        char label[512];
        snprintf(label, sizeof(label), "latest version of subject %s", subject);
        answer_error(status, body, label, errstr, errstr_size);
        rc = status == 404 ? LP_REGISTRY_NOT_FOUND : LP_ERR;
    }
    free(body);
    return rc;
}

int lp_registry_check(lp_registry_t *reg, const char *subject, const char *schema, char *why,
                      size_t why_size, char *errstr, size_t errstr_size) {
    char *esc = curl_easy_escape(reg->curl, subject, 0);
    char *payload = schema_payload(schema);
    char path[1024];
    long status = 0;
    char *body = NULL;
    int rc = LP_ERR;
    why[0] = '\0';
    if (esc == NULL || payload == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    snprintf(path, sizeof(path), "/compatibility/subjects/%s/versions/latest?verbose=true", esc);
    if (request(reg, "POST", path, payload, &status, &body, errstr, errstr_size) != LP_OK) {
        goto done;
    }
    const char *p = status == 200 ? lp_rj_member(body, "is_compatible") : NULL;
    if (p != NULL && strncmp(p, "true", 4) == 0) {
        rc = LP_OK;
    } else if (p != NULL && strncmp(p, "false", 5) == 0) {
        lp_rj_strings_join(lp_rj_member(body, "messages"), why, why_size);
        rc = LP_REGISTRY_REFUSED;
    } else {
        char label[512];
        snprintf(label, sizeof(label), "compatibility check of subject %s", subject);
        answer_error(status, body, label, errstr, errstr_size);
        rc = status == 404 ? LP_REGISTRY_NOT_FOUND : LP_ERR;
    }
done:
    curl_free(esc);
    free(payload);
    free(body);
    return rc;
}

const char *lp_registry_current_url(const lp_registry_t *reg) {
    return reg->urls[reg->current];
}

lp_registry_t *lp_registry_new(const lp_registry_opts_t *opts, char *errstr, size_t errstr_size) {
    pthread_once(&curl_once, curl_init_once);
    lp_registry_t *reg = calloc(1, sizeof(*reg));
    if (reg == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    const char *p = opts->urls != NULL ? opts->urls : "";
    while (*p != '\0') {
        while (*p == ',' || *p == ' ') {
            p++;
        }
        size_t n = strcspn(p, ", ");
        if (n == 0) {
            break;
        }
        while (n > 0 && p[n - 1] == '/') {
            n--; /* paths are appended with their own slash */
        }
        if (reg->nurls == LP_REGISTRY_URLS_MAX) {
            snprintf(errstr, errstr_size, "schema registry: more than %d URLs",
                     LP_REGISTRY_URLS_MAX);
            lp_registry_destroy(reg);
            return NULL;
        }
        if ((n < 7 || strncmp(p, "http://", 7) != 0) && (n < 8 || strncmp(p, "https://", 8) != 0)) {
            snprintf(errstr, errstr_size,
                     "schema registry: '%.*s' is not an http:// or https:// URL", (int)n, p);
            lp_registry_destroy(reg);
            return NULL;
        }
        if ((reg->urls[reg->nurls] = strndup(p, n)) == NULL) {
            snprintf(errstr, errstr_size, "out of memory");
            lp_registry_destroy(reg);
            return NULL;
        }
        reg->nurls++;
        p += strcspn(p, ",");
    }
    if (reg->nurls == 0) {
        snprintf(errstr, errstr_size, "schema registry: no URL given");
        lp_registry_destroy(reg);
        return NULL;
    }
    if (opts->username != NULL && opts->username[0] != '\0') {
        size_t len = strlen(opts->username) + 2 + (opts->password ? strlen(opts->password) : 0);
        reg->userpwd = malloc(len);
        if (reg->userpwd != NULL) {
            snprintf(reg->userpwd, len, "%s:%s", opts->username,
                     opts->password ? opts->password : "");
        }
    }
    if (opts->ca_file != NULL && opts->ca_file[0] != '\0') {
        reg->ca_file = strdup(opts->ca_file);
    }
    reg->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
    reg->curl = curl_easy_init();
    if (reg->curl == NULL || (opts->username != NULL && opts->username[0] && !reg->userpwd)) {
        snprintf(errstr, errstr_size, "schema registry: cannot set up libcurl");
        lp_registry_destroy(reg);
        return NULL;
    }
    return reg;
}

void lp_registry_destroy(lp_registry_t *reg) {
    if (reg == NULL) {
        return;
    }
    for (int i = 0; i < reg->nurls; i++) {
        free(reg->urls[i]);
    }
    for (size_t i = 0; i < reg->nids; i++) {
        free(reg->ids[i].schema);
    }
    for (size_t i = 0; i < reg->nsubjects; i++) {
        free(reg->subjects[i].subject);
        free(reg->subjects[i].schema);
    }
    free(reg->ids);
    free(reg->subjects);
    free(reg->userpwd);
    free(reg->ca_file);
    if (reg->curl != NULL) {
        curl_easy_cleanup(reg->curl);
    }
    free(reg);
}
