#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/http.h"

#define HTTP_BUF 65536

struct lp_http {
    int fd;
    lp_worker_t *worker;
    lp_engine_t *engine;
    char buf[HTTP_BUF];
};

lp_http_t *lp_http_start(const char *listen_on, lp_worker_t *worker, lp_engine_t *engine,
                         char *errstr, size_t errstr_size) {
    char host[256];
    const char *colon = strrchr(listen_on, ':');
    struct sockaddr_in addr;
    int one = 1;
    if (colon == NULL || (size_t)(colon - listen_on) >= sizeof(host)) {
        snprintf(errstr, errstr_size, "expected host:port");
        return NULL;
    }
    memcpy(host, listen_on, (size_t)(colon - listen_on));
    host[colon - listen_on] = '\0';
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
    http->worker = worker;
    http->engine = engine;
    http->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (http->fd < 0 || setsockopt(http->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(http->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(http->fd, 16) != 0) {
        snprintf(errstr, errstr_size, "%s", strerror(errno));
        if (http->fd >= 0) {
            close(http->fd);
        }
        free(http);
        return NULL;
    }
    return http;
}

void lp_http_stop(lp_http_t *http) {
    if (http == NULL) {
        return;
    }
    close(http->fd);
    free(http);
}

static void json_str(char *out, size_t size, const char *s) {
    size_t j = 0;
    for (; *s != '\0' && j + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[j++] = '\\';
            out[j++] = (char)c;
        } else if (c < 0x20) {
            j += (size_t)snprintf(out + j, size - j, "\\u%04x", c);
        } else {
            out[j++] = (char)c;
        }
    }
    out[j] = '\0';
}

size_t lp_http_lead_json(const lp_lead_t *lead, const lp_rules_t *rules, char *buf, size_t size) {
    char id[LP_ID_MAX * 6 + 1], email[LP_STR_MAX * 6 + 1], company[LP_STR_MAX * 6 + 1];
    json_str(id, sizeof(id), lead->lead_id);
    json_str(email, sizeof(email), lead->profile.email);
    json_str(company, sizeof(company), lead->profile.company);
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

static void reply(int fd, int code, const char *type, const char *body, size_t len) {
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, code == 200 ? "OK" : code == 404 ? "Not Found" : "Service Unavailable",
                     type, len);
    if (write(fd, head, (size_t)n) == n) {
        ssize_t w = write(fd, body, len);
        (void)w;
    }
}

static void serve(lp_http_t *http, int fd) {
    char req[2048];
    /* The request is small and arrives at once on loopback; wait briefly for it. */
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) {
        return;
    }
    ssize_t n = read(fd, req, sizeof(req) - 1);
    if (n <= 0) {
        return;
    }
    req[n] = '\0';
    char path[1024];
    if (sscanf(req, "GET %1023s", path) != 1) {
        reply(fd, 404, "text/plain", "GET only\n", 9);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        size_t len = lp_worker_metrics(http->worker, http->buf, sizeof(http->buf));
        reply(fd, 200, "text/plain; version=0.0.4", http->buf, len);
    } else if (strcmp(path, "/healthz") == 0) {
        reply(fd, 200, "text/plain", "ok\n", 3);
    } else if (strncmp(path, "/leads/", 7) == 0 && strlen(path + 7) <= LP_ID_MAX) {
        lp_lead_t *lead = malloc(sizeof(*lead));
        bool found = false;
        if (lead != NULL) {
            for (int32_t p = 0; p < 4096 && !found; p++) {
                if (lp_engine_owns(http->engine, p) &&
                    lp_engine_get_lead(http->engine, p, path + 7, lead) == 1) {
                    found = true;
                }
            }
        }
        size_t len = found ? lp_http_lead_json(lead, lp_engine_rules(http->engine), http->buf,
                                               sizeof(http->buf))
                           : 0;
        if (found && len > 0) {
            reply(fd, 200, "application/json", http->buf, len);
        } else {
            reply(fd, 404, "application/json", "{\"error\":\"lead not found here\"}", 31);
        }
        free(lead);
    } else {
        reply(fd, 404, "text/plain", "not found\n", 10);
    }
}

void lp_http_poll(lp_http_t *http) {
    if (http == NULL) {
        return;
    }
    for (int i = 0; i < 8; i++) {
        int fd = accept4(http->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        serve(http, fd);
        close(fd);
    }
}
