/* The worker's published status: atomics for the heartbeat and readiness, a mutex for the text. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/status.h"

struct lp_status {
    _Atomic int64_t beat_ms;
    _Atomic bool ready[LP_READY__COUNT];
    _Atomic int32_t partitions;
    _Atomic uint64_t rules_gen;
    pthread_mutex_t lock; /* guards text, len */
    char *text;
    size_t len;
};

int64_t lp_status_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

lp_status_t *lp_status_new(void) {
    lp_status_t *status = calloc(1, sizeof(*status));
    if (status == NULL) {
        return NULL;
    }
    atomic_init(&status->beat_ms, 0);
    for (int i = 0; i < LP_READY__COUNT; i++) {
        atomic_init(&status->ready[i], false);
    }
    atomic_init(&status->partitions, 0);
    atomic_init(&status->rules_gen, 0);
    pthread_mutex_init(&status->lock, NULL);
    return status;
}

void lp_status_destroy(lp_status_t *status) {
    if (status == NULL) {
        return;
    }
    pthread_mutex_destroy(&status->lock);
    free(status->text);
    free(status);
}

void lp_status_beat(lp_status_t *status) {
    if (status != NULL) {
        atomic_store(&status->beat_ms, lp_status_mono_ms());
    }
}

void lp_status_wait(lp_status_t *status, int ms, volatile sig_atomic_t *stop) {
    for (int slept = 0; slept < ms && (stop == NULL || !*stop); slept += 100) {
        lp_status_beat(status);
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 100 * 1000000L}, NULL);
    }
}

int64_t lp_status_beat_age_ms(const lp_status_t *status) {
    int64_t beat = atomic_load(&((lp_status_t *)status)->beat_ms);
    return beat == 0 ? INT64_MAX : lp_status_mono_ms() - beat;
}

void lp_status_set(lp_status_t *status, lp_ready_t what, bool ok) {
    if (status != NULL && (unsigned)what < LP_READY__COUNT) {
        atomic_store(&status->ready[what], ok);
    }
}

bool lp_status_get(const lp_status_t *status, lp_ready_t what) {
    return (unsigned)what < LP_READY__COUNT && atomic_load(&((lp_status_t *)status)->ready[what]);
}

void lp_status_set_partitions(lp_status_t *status, int32_t n) {
    if (status != NULL) {
        atomic_store(&status->partitions, n);
    }
}

int32_t lp_status_partitions(const lp_status_t *status) {
    return atomic_load(&((lp_status_t *)status)->partitions);
}

void lp_status_rules_changed(lp_status_t *status) {
    if (status != NULL) {
        atomic_fetch_add(&status->rules_gen, 1);
    }
}

uint64_t lp_status_rules_generation(const lp_status_t *status) {
    return atomic_load(&((lp_status_t *)status)->rules_gen);
}

void lp_status_publish(lp_status_t *status, const char *text, size_t len) {
    char *copy = malloc(len + 1);
    if (status == NULL || copy == NULL) {
        free(copy);
        return;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&status->lock);
    char *old = status->text;
    status->text = copy;
    status->len = len;
    pthread_mutex_unlock(&status->lock);
    free(old);
}

char *lp_status_metrics(lp_status_t *status, size_t *len) {
    pthread_mutex_lock(&status->lock);
    size_t n = status->text != NULL ? status->len : 0;
    char *copy = malloc(n + 1);
    if (copy != NULL) {
        memcpy(copy, status->text != NULL ? status->text : "", n);
        copy[n] = '\0';
    }
    pthread_mutex_unlock(&status->lock);
    *len = copy != NULL ? n : 0;
    return copy;
}
