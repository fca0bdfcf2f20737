/* The worker's HTTP endpoint on its own thread (libmicrohttpd's internal polling thread). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/http.h"
#include "leadpulse/codec.h"
#include "leadpulse/common.h"
#include "leadpulse/store.h"

struct lp_http {
    lp_http_opts_t opts;
    char listen[256], token[256], redis_url[1024], redis_prefix[64], rules_path[1024];
    lp_status_t *status;
    struct MHD_Daemon *daemon;
    /* /leads, on the server thread only (MHD's internal thread serves one request at a time) */
    pthread_mutex_t leads_lock;
    lp_store_t *store;
    lp_rules_t *rules;
    uint64_t rules_gen;
};

size_t lp_http_lead_json(const lp_lead_t *lead, const lp_rules_t *rules, char *buf, size_t size) {
    char id[LP_ID_MAX * 6 + 1], email[LP_STR_MAX * 6 + 1], company[LP_STR_MAX * 6 + 1];
    lp_json_escape(id, sizeof(id), lead->lead_id);
    lp_json_escape(email, sizeof(email), lead->profile.email);
    lp_json_escape(company, sizeof(company), lead->profile.company);
    char score[LP_JSON_DOUBLE_MAX], points[LP_JSON_DOUBLE_MAX];
    lp_json_format_double(score, lp_lead_score_at(lead, rules, lead->ref_ms));
    int n = snprintf(buf, size,
                     "{\"lead_id\":\"%s\",\"score\":%s,\"ref_ms\":%" PRId64 ",\"stage\":\"%s\","
                     "\"fit_grade\":\"%c\",\"qualifications\":%" PRIu32 ",\"sla_deadline\":%" PRId64
                     ",\"next_timer\":%" PRId64 ",\"email\":\"%s\",\"company\":\"%s\","
                     "\"activities\":{",
                     id, score, lead->ref_ms, lp_stage_name((lp_stage_t)lead->stage),
                     lead->fit_grade ? lead->fit_grade : 'D', lead->mql_seq, lead->sla_deadline_ms,
                     lp_lead_next_due(lead), email, company);
    if (n < 0 || (size_t)n >= size) {
        return 0;
    }
    size_t len = (size_t)n;
    bool first = true;
    for (int a = 0; a < rules->nactivities; a++) {
        if (lead->act[a].points == 0) {
            continue;
        }
        lp_json_format_double(points, lead->act[a].points);
        n = snprintf(buf + len, size - len, "%s\"%s\":%s", first ? "" : ",",
                     rules->activities[a].name, points);
        if (n < 0 || (size_t)n >= size - len) {
            return 0;
        }
        len += (size_t)n;
        first = false;
    }
    if (len + 3 > size) {
        return 0;
    }
    memcpy(buf + len, "}}", 3);
    return len + 2;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned code, const char *type,
                               const char *body, size_t len) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (code == MHD_HTTP_UNAUTHORIZED) {
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    }
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned code, const char *body) {
    return respond(conn, code, "text/plain", body, strlen(body));
}

static enum MHD_Result healthz(lp_http_t *http, struct MHD_Connection *conn) {
    char body[160];
    int64_t age = lp_status_beat_age_ms(http->status);
    if (age <= http->opts.health_max_age_ms) {
        snprintf(body, sizeof(body), "ok: loop beat %" PRId64 " ms ago\n", age);
        return text(conn, MHD_HTTP_OK, body);
    }
    if (age == INT64_MAX) {
        snprintf(body, sizeof(body), "starting: the loop has not run yet\n");
    } else {
        snprintf(body, sizeof(body), "stalled: loop beat %" PRId64 " ms ago (limit %" PRId64 ")\n",
                 age, http->opts.health_max_age_ms);
    }
    return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result readyz(lp_http_t *http, struct MHD_Connection *conn) {
    static const char *const what[LP_READY__COUNT] = {
        "no partition assignment yet", "redis unreachable", "output delivery failing",
        "schema registry unreachable"};
    char body[256] = "";
    size_t len = 0;
    for (int i = 0; i < LP_READY__COUNT; i++) {
        if (!lp_status_get(http->status, (lp_ready_t)i)) {
            len += (size_t)snprintf(body + len, sizeof(body) - len, "not ready: %s\n", what[i]);
        }
    }
    if (len == 0) {
        return text(conn, MHD_HTTP_OK, "ready\n");
    }
    return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result metrics(lp_http_t *http, struct MHD_Connection *conn) {
    size_t len;
    char *body = lp_status_metrics(http->status, &len);
    if (body == NULL) {
        return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* Constant-time compare, so the token cannot be guessed byte by byte from response times. */
static bool token_ok(const char *want, const char *got) {
    size_t a = strlen(want), b = got != NULL ? strlen(got) : 0;
    unsigned diff = a != b;
    for (size_t i = 0; i < a; i++) {
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < b ? got[i] : 0);
    }
    return diff == 0;
}

/* The lead's state from the store through /leads' own connection; 1 found, 0 not, -1 error. */
static int find_lead(lp_http_t *http, const char *id, char *buf, size_t size, size_t *len,
                     char *why, size_t why_size) {
    if (http->store == NULL) {
        http->store =
            lp_store_redis_open(http->opts.redis_cluster, http->redis_url, http->redis_prefix,
                                http->opts.redis_timeout_ms, why, why_size);
        if (http->store == NULL) {
            return -1;
        }
    }
    uint64_t gen = lp_status_rules_generation(http->status);
    if (http->rules == NULL || gen != http->rules_gen) {
        lp_rules_t *rules = lp_rules_load(http->rules_path, why, why_size);
        if (rules == NULL && http->rules == NULL) {
            return -1;
        }
        if (rules != NULL) {
            lp_rules_destroy(http->rules);
            http->rules = rules;
        }
        http->rules_gen = gen;
    }
    int32_t n = lp_status_partitions(http->status);
    const char *ids[1] = {id};
    for (int32_t p = 0; p < n; p++) {
        lp_store_loaded_t loaded = {0};
        if (lp_store_load(http->store, p, 1, ids, &loaded) != LP_OK) {
            snprintf(why, why_size, "%s", http->store->errstr);
            lp_store_destroy(http->store); /* reconnect on the next request */
            http->store = NULL;
            return -1;
        }
        if (loaded.n == 1 && loaded.data[0] != NULL) {
            lp_lead_t *lead = malloc(sizeof(*lead));
            int rc = -1;
            if (lead != NULL && lp_lead_decode_keyed(lead, http->rules, id, loaded.data[0],
                                                     loaded.len[0]) == LP_OK) {
                *len = lp_http_lead_json(lead, http->rules, buf, size);
                rc = *len > 0 ? 1 : -1;
            }
            snprintf(why, why_size, "stored state unreadable");
            free(lead);
            lp_store_loaded_clear(&loaded);
            return rc;
        }
        lp_store_loaded_clear(&loaded);
    }
    return 0;
}

static enum MHD_Result leads(lp_http_t *http, struct MHD_Connection *conn, const char *id) {
    if (!http->opts.leads) {
        return text(conn, MHD_HTTP_NOT_FOUND, "not found: /leads is off (http.leads)\n");
    }
    if (http->token[0] != '\0') {
        const char *auth =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 || !token_ok(http->token, auth + 7)) {
            return text(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized: a bearer token is required\n");
        }
    }
    if (id[0] == '\0' || strlen(id) > LP_ID_MAX) {
        return text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    }
    char *buf = malloc(65536), why[LP_ERRSTR] = "";
    size_t len = 0;
    if (buf == NULL) {
        return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    pthread_mutex_lock(&http->leads_lock);
    int found = find_lead(http, id, buf, 65536, &len, why, sizeof(why));
    pthread_mutex_unlock(&http->leads_lock);
    enum MHD_Result ret;
    if (found == 1) {
        ret = respond(conn, MHD_HTTP_OK, "application/json", buf, len);
    } else if (found == 0) {
        ret = respond(conn, MHD_HTTP_NOT_FOUND, "application/json",
                      "{\"error\":\"lead not found\"}", 26);
    } else {
        LP_LOG(LP_LOG_WARN, "http", "/leads: %s", why);
        ret = text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "store unavailable\n");
    }
    free(buf);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req) {
    lp_http_t *http = cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)req;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
    }
    if (strcmp(url, "/metrics") == 0) {
        return metrics(http, conn);
    }
    if (strcmp(url, "/healthz") == 0) {
        return healthz(http, conn);
    }
    if (strcmp(url, "/readyz") == 0) {
        return readyz(http, conn);
    }
    if (strncmp(url, "/leads/", 7) == 0) {
        return leads(http, conn, url + 7);
    }
    return text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void copy(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

lp_http_t *lp_http_start(const lp_http_opts_t *opts, lp_status_t *status, char *errstr,
                         size_t errstr_size) {
    char host[256];
    const char *colon = strrchr(opts->listen, ':');
    struct sockaddr_in addr;
    if (colon == NULL || (size_t)(colon - opts->listen) >= sizeof(host)) {
        snprintf(errstr, errstr_size, "expected host:port");
        return NULL;
    }
    memcpy(host, opts->listen, (size_t)(colon - opts->listen));
    host[colon - opts->listen] = '\0';
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &addr.sin_addr) != 1) {
        snprintf(errstr, errstr_size, "'%s' is not an IPv4 address", host);
        return NULL;
    }
    lp_http_t *http = calloc(1, sizeof(*http));
    if (http == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    http->opts = *opts;
    copy(http->listen, sizeof(http->listen), opts->listen);
    copy(http->token, sizeof(http->token), opts->token);
    copy(http->redis_url, sizeof(http->redis_url), opts->redis_url);
    copy(http->redis_prefix, sizeof(http->redis_prefix), opts->redis_prefix);
    copy(http->rules_path, sizeof(http->rules_path), opts->rules_path);
    http->opts.listen = http->listen;
    http->opts.token = http->token;
    http->status = status;
    pthread_mutex_init(&http->leads_lock, NULL);
    http->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle,
                         http, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (http->daemon == NULL) {
        snprintf(errstr, errstr_size, "cannot listen on %s", opts->listen);
        pthread_mutex_destroy(&http->leads_lock);
        free(http);
        return NULL;
    }
    return http;
}

void lp_http_stop(lp_http_t *http) {
    if (http == NULL) {
        return;
    }
    MHD_stop_daemon(http->daemon);
    lp_store_destroy(http->store);
    lp_rules_destroy(http->rules);
    pthread_mutex_destroy(&http->leads_lock);
    free(http);
}
