/* A minimal HTTP endpoint served from the worker's own loop (no threads: the engine and the Redis
 * connection are single-threaded): GET /metrics (Prometheus text), /healthz, /readyz,
 * /leads/<lead id> (JSON state of a lead of an owned partition). */
#ifndef LP_CLI_HTTP_H
#define LP_CLI_HTTP_H

#include <stddef.h>

#include "leadpulse/engine.h"
#include "leadpulse/worker.h"

typedef struct lp_http lp_http_t;

/* listen: "host:port". Returns NULL with a reason. Free with lp_http_stop(). */
lp_http_t *lp_http_start(const char *listen, lp_worker_t *worker, lp_engine_t *engine,
                         char *errstr, size_t errstr_size);
/* Serves the connections that are ready, without blocking. */
void lp_http_poll(lp_http_t *http);
void lp_http_stop(lp_http_t *http);

/* Writes a lead as a JSON object into buf; returns its length (0 if it does not fit). */
size_t lp_http_lead_json(const lp_lead_t *lead, const lp_rules_t *rules, char *buf, size_t size);

#endif
