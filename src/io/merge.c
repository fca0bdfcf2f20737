/* The worker's cross-topic merge and its release rule (see merge.h). */
#include <string.h>

#include "io/merge.h"

static bool covers(const lp_end_probe_t ring[LP_END_RING], const lp_part_ends_t *ends,
                   uint64_t seq) {
    size_t slot = seq % LP_END_RING;
    return ring[slot].seq == seq && ends->seq[slot] == seq;
}

bool lp_merge_release(const lp_end_probe_t ring[LP_END_RING], uint64_t last_seq,
                      const lp_part_ends_t *ends, const int64_t next[LP_EV__COUNT], int grace_ms,
                      int64_t rel[LP_EV__COUNT], bool caught[LP_EV__COUNT]) {
    for (int t = 0; t < LP_EV__COUNT; t++) {
        rel[t] = 0;
        caught[t] = false;
    }
    /* m: the newest probe that covers the partition. */
    uint64_t m = 0;
    for (uint64_t i = 0; i < LP_END_RING && i < last_seq && m == 0; i++) {
        if (covers(ring, ends, last_seq - i)) {
            m = last_seq - i;
        }
    }
    if (m == 0) {
        return false;
    }
    const lp_end_probe_t *pm = &ring[m % LP_END_RING];
    for (int t = 0; t < LP_EV__COUNT; t++) {
        int64_t end = ends->end[m % LP_END_RING][t];
        caught[t] = end >= 0 && next[t] >= 0 && end <= next[t];
    }
    /* k: the newest probe answered grace_ms or more before m was sent. */
    for (uint64_t k = m; k > 0 && m - k < LP_END_RING; k--) {
        if (covers(ring, ends, k) && ring[k % LP_END_RING].recv_ms + grace_ms <= pm->send_ms) {
            for (int t = 0; t < LP_EV__COUNT; t++) {
                int64_t end = ends->end[k % LP_END_RING][t];
                rel[t] = end > 0 ? end : 0;
            }
            break;
        }
    }
    return true;
}

void lp_merge_select(const lp_merge_in_t *in, lp_merge_wait_t *wait, lp_merge_out_t *out,
                     int *seq) {
    static const int tie_order[LP_EV__COUNT] = {LP_EV_PROFILE, LP_EV_ENGAGEMENT, LP_EV_FEEDBACK};
    bool blocked = false;
    memset(out, 0, sizeof(*out));
    out->wait_topic = -1;
    while (out->n < in->max) {
        int best = -1;
        int64_t best_ts = 0;
        for (int k = 0; k < LP_EV__COUNT; k++) {
            int t = tie_order[k];
            if (out->take[t] < in->nq[t] && (in->limit == NULL || out->take[t] < in->limit[t])) {
                int64_t ts = in->q[t][out->take[t]].ts;
                if (best < 0 || ts < best_ts) {
                    best = t;
                    best_ts = ts;
                }
            }
        }
        if (best < 0) {
            break;
        }
        /* A topic with nothing buffered: wait while it has older records to fetch, or while its
         * position is unknown (as Kafka Streams does with max.task.idle.ms >= 0): giving up
         * would apply records out of timestamp order. */
        for (int t = 0; t < LP_EV__COUNT && !blocked && in->limit == NULL; t++) {
            if (out->take[t] < in->nq[t] || in->state[t] == LP_TOPIC_CAUGHT_UP) {
                continue;
            }
            if (wait->waiting_since_ms == 0 || in->kafka_unsettled) {
                /* The clock of the fail-safe runs only while Kafka answers. */
                wait->waiting_since_ms = in->now;
            }
            blocked = in->now - wait->waiting_since_ms < LP_MERGE_MAX_WAIT_MS;
            out->waited = true;
            out->wait_topic = t;
            out->wait_state = in->state[t];
            if (!blocked && !wait->gave_up_reported) {
                wait->gave_up_reported = true;
                out->gave_up = true;
            }
        }
        /* A caught-up topic may still receive a record older than this one that a producer is
         * sending right now: hold this record for the grace period after its arrival, unless an
         * end probe shows that no such record can come. */
        const lp_rec_t *r = &in->q[best][out->take[best]];
        bool fresh = in->grace_ms > 0 && in->limit == NULL && in->now - r->at < in->grace_ms;
        bool early = in->probed && r->offset < in->rel[best];
        bool hold = false, by_probe = false;
        for (int t = 0; t < LP_EV__COUNT && !blocked && fresh; t++) {
            if (t != best && out->take[t] >= in->nq[t]) {
                by_probe = true;
                hold = hold || !(early && in->caught[t]);
            }
        }
        blocked = blocked || hold;
        if (hold && in->hi[best] >= 0 && in->hi[best] - r->offset >= LP_MERGE_PROBE_BACKLOG) {
            /* Probes help a backlog only: a record of a live stream arrives within the grace of
             * its append, and gains nothing from them. */
            out->want_probe = true;
        }
        if (blocked) {
            break;
        }
        out->early += by_probe ? 1 : 0;
        seq[out->n++] = best;
        out->take[best]++;
    }
    if (!out->waited) {
        /* (a grace hold is no wait for a topic) */
        out->ended_wait_ms = wait->waiting_since_ms > 0 ? in->now - wait->waiting_since_ms : 0;
        wait->waiting_since_ms = 0;
        wait->gave_up_reported = false;
    }
}
