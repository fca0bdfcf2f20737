/* What the worker loop tells the other threads (HTTP): a heartbeat, readiness and the metrics
 * text, published by the loop and read by anyone without locking the loop. The loop never
 * waits on a reader: readers copy under a mutex held only for a memcpy. */
#ifndef LEADPULSE_IO_STATUS_H
#define LEADPULSE_IO_STATUS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lp_status lp_status_t;

/* What /readyz needs, each set by the worker loop. */
typedef enum {
    LP_READY_ASSIGNED = 0, /* the group gave this worker an assignment (possibly empty) */
    LP_READY_STORE = 1,    /* the last store (Redis) call succeeded */
    LP_READY_OUTBOX = 2,   /* output delivery is not failing */
    LP_READY_REGISTRY = 3, /* the Schema Registry answered when last needed (or none is used) */
    LP_READY__COUNT
} lp_ready_t;

/* Free with lp_status_destroy(). NULL when out of memory. */
lp_status_t *lp_status_new(void);
void lp_status_destroy(lp_status_t *status);

/* The loop is alive: called on every pass and while it waits in a retry. Monotonic ms. */
void lp_status_beat(lp_status_t *status);
/* Waits ms milliseconds in 100 ms slices, beating on each (a wait for a store or server
 * outage is the loop being alive: /healthz must not restart it); returns early once *stop is
 * set (stop may be NULL). */
void lp_status_wait(lp_status_t *status, int ms, volatile sig_atomic_t *stop);
/* Milliseconds since the last beat (INT64_MAX before the first). */
int64_t lp_status_beat_age_ms(const lp_status_t *status);

void lp_status_set(lp_status_t *status, lp_ready_t what, bool ok);
bool lp_status_get(const lp_status_t *status, lp_ready_t what);

/* Input partitions of the worker's topics (for readers that look a lead up in the store). */
void lp_status_set_partitions(lp_status_t *status, int32_t n);
int32_t lp_status_partitions(const lp_status_t *status);

/* Bumped when the rules are reloaded, so a reader holding its own copy reloads it too. */
void lp_status_rules_changed(lp_status_t *status);
uint64_t lp_status_rules_generation(const lp_status_t *status);

/* Replaces the published metrics text (copied). */
void lp_status_publish(lp_status_t *status, const char *text, size_t len);
/* Copies the published metrics text into a malloc'ed buffer (free() it); *len its length. */
char *lp_status_metrics(lp_status_t *status, size_t *len);

int64_t lp_status_mono_ms(void);

#endif
