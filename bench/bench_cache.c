/* Cost of the engine's lead cache as the worker uses it: per event a get of the lead, then a put
 * of its new encoding (a length that changes from event to event). Lead ids are Zipf-distributed
 * (s = 1) over 250,000 distinct ids in 12 partitions; the cache holds the default
 * cache.max_leads (200,000), so the tail of the distribution keeps evicting.
 * Usage: bench_cache [operations] [max] (build with CMAKE_BUILD_TYPE=Release). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cache.h"

#define NIDS 250000
#define NPART 12
#define ID_SIZE 24

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* xorshift64*: the same sequence on every run. */
static uint64_t next_rand(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

int main(int argc, char **argv) {
    long nops = argc > 1 ? atol(argv[1]) : 4000000;
    size_t max = argc > 2 ? (size_t)atol(argv[2]) : 200000;
    static char ids[NIDS][ID_SIZE];
    static size_t id_lens[NIDS];
    double *cdf = malloc(NIDS * sizeof(*cdf));
    uint32_t *ops = malloc((size_t)nops * sizeof(*ops));
    uint8_t data[512];
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    volatile size_t sink = 0;
    int status = 1;

    if (cdf == NULL || ops == NULL || nops <= 0) {
        goto out;
    }
    /* Rank r gets a share proportional to 1/r; ids are shuffled so rank says nothing of the id. */
    double sum = 0;
    for (int r = 0; r < NIDS; r++) {
        sum += 1.0 / (r + 1);
        cdf[r] = sum;
    }
    for (int i = 0; i < NIDS; i++) {
        id_lens[i] = (size_t)snprintf(ids[i], ID_SIZE, "lead-%09llu",
                                      (unsigned long long)(next_rand(&rng) % 1000000000ULL));
    }
    for (long k = 0; k < nops; k++) {
        double u = (double)(next_rand(&rng) >> 11) / 9007199254740992.0 * sum;
        size_t lo = 0, hi = NIDS - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cdf[mid] < u) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        ops[k] = (uint32_t)lo;
    }
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 31 + 7);
    }

    printf("%-34s %10s %10s %8s\n", "cache (200k max unless given)", "ns/get+put", "hit rate",
           "entries");
    for (int pass = 0; pass < 2; pass++) {
        lp_cache_t *cache = lp_cache_new(max);
        long hits = 0;
        double t0;
        if (cache == NULL) {
            goto out;
        }
        /* Warm-up: one pass over the op sequence fills the cache as a running worker's is. */
        for (int timed = 0; timed < 2; timed++) {
            hits = 0;
            t0 = now_ns();
            for (long k = 0; k < nops; k++) {
                uint32_t r = ops[k];
                int32_t partition = (int32_t)(r % NPART);
                size_t len = 0;
                size_t put_len = 96 + (size_t)((k * 7 + r) % 96);
                const uint8_t *got;
                if (pass == 0) {
                    got = lp_cache_get(cache, partition, ids[r], &len);
                } else {
                    got = lp_cache_get_n(cache, partition, ids[r], id_lens[r], &len);
                }
                if (got != NULL) {
                    hits++;
                    sink += got[len - 1];
                }
                if (pass == 0) {
                    sink += (size_t)lp_cache_put(cache, partition, ids[r], data, put_len);
                } else {
                    sink +=
                        (size_t)lp_cache_put_n(cache, partition, ids[r], id_lens[r], data, put_len);
                }
            }
        }
        printf("%-34s %10.1f %9.1f%% %8zu\n",
               pass == 0 ? "get + put (C-string ids)" : "get_n + put_n (ids with length)",
               (now_ns() - t0) / (double)nops, 100.0 * (double)hits / (double)nops,
               lp_cache_count(cache));
        lp_cache_destroy(cache);
    }
    status = sink == 0;
out:
    free(cdf);
    free(ops);
    return status;
}
