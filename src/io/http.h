/* The worker's HTTP endpoint on its own thread (libmicrohttpd): GET /metrics, /healthz,
 * /readyz and, when enabled, /leads/<lead id>. It reads only what the worker loop publishes
 * (io/status.h) and never uses the loop's Redis connection or Kafka clients, so it answers while
 * the loop waits on an outage. /leads reads the store through its own read-only connection. */
#ifndef LEADPULSE_IO_HTTP_H
#define LEADPULSE_IO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/status.h"
#include "leadpulse/rules.h"
#include "leadpulse/score.h"

typedef struct {
    const char *listen;        /* "host:port" (IPv4) */
    int64_t health_max_age_ms; /* /healthz fails when the loop's last beat is older */
    bool leads;                /* serve /leads/<id> */
    const char *token;         /* bearer token /leads requires; "" = none */
    const char *redis_url;     /* /leads: the store to read */
    int redis_cluster;         /* redis.mode: cluster */
    const char *redis_prefix;
    int redis_timeout_ms;
    const char *rules_path; /* /leads: the rules, reloaded when the worker reloads its own */
} lp_http_opts_t;

typedef struct lp_http lp_http_t;

/* Starts the server thread. status is borrowed and must outlive it. Returns NULL with a reason.
 * Free with lp_http_stop(). */
lp_http_t *lp_http_start(const lp_http_opts_t *opts, lp_status_t *status, char *errstr,
                         size_t errstr_size);
/* Stops the thread and frees everything. Accepts NULL. */
void lp_http_stop(lp_http_t *http);

/* Writes a lead as a JSON object into buf; returns its length (0 if it does not fit). */
size_t lp_http_lead_json(const lp_lead_t *lead, const lp_rules_t *rules, char *buf, size_t size);

#endif
