/* The worker's cross-topic merge and its release rule (see merge.h). */
#include <string.h>

#include "io/merge.h"

size_t lp_merge_probes(const lp_end_probe_t ring[LP_END_RING], uint64_t last_seq,
                       const lp_part_ends_t *ends, lp_probe_view_t out[LP_END_RING]) {
    size_t n = 0;
    for (uint64_t i = 0; i < LP_END_RING && i < last_seq; i++) {
        uint64_t seq = last_seq - i;
        size_t slot = seq % LP_END_RING;
        if (ring[slot].seq != seq || ends->seq[slot] != seq) {
            continue; /* overwritten, or the probe did not cover this partition */
        }
        lp_probe_view_t *v = &out[n++];
        v->send_ms = ring[slot].send_ms;
        v->recv_ms = ring[slot].recv_ms;
        memcpy(v->end, ends->end[slot], sizeof(v->end));
    }
    return n;
}

/* When r (of topic b) was appended at the latest: at its arrival, or at the answer of a probe
 * that found b's end past it. */
static int64_t appended_by(const lp_merge_in_t *in, int b, const lp_rec_t *r) {
    int64_t by = r->at;
    for (size_t j = 0; j < in->nprobes; j++) {
        const lp_probe_view_t *pj = &in->probes[j];
        if (pj->end[b] > r->offset && pj->recv_ms < by) {
            by = pj->recv_ms;
        }
    }
    return by;
}

/* The first topic other than b with nothing left for this merge (take >= nq) that probe pj did
 * not find at or below our position; -1 when it found every such topic there. */
static int probe_uncleared(const lp_merge_in_t *in, const lp_probe_view_t *pj, int b,
                           const size_t take[LP_EV__COUNT]) {
    for (int t = 0; t < LP_EV__COUNT; t++) {
        if (t == b || take[t] < in->nq[t]) {
            continue;
        }
        if (pj->end[t] < 0 || in->next[t] < 0 || pj->end[t] > in->next[t]) {
            return t;
        }
    }
    return -1;
}

typedef enum { HOLD_NONE, HOLD_GRACE, HOLD_DUE } hold_t;

/* The grace hold of r (topic b), see merge.h. HOLD_DUE: its grace has passed and no probe has
 * released it yet: a wait for *topic (behind: a probe found records of it still to fetch;
 * unknown: no probe sent late enough has answered for it). */
static hold_t grace_hold(const lp_merge_in_t *in, int b, const lp_rec_t *r,
                         const size_t take[LP_EV__COUNT], lp_merge_out_t *out, int *topic,
                         lp_topic_state_t *state) {
    bool empty = false;
    for (int t = 0; t < LP_EV__COUNT; t++) {
        empty = empty || (t != b && take[t] >= in->nq[t]);
    }
    if (!empty || in->grace_ms <= 0 || in->limit != NULL) {
        return HOLD_NONE;
    }
    int64_t due = appended_by(in, b, r) + in->grace_ms;
    *topic = -1;
    for (size_t j = 0; j < in->nprobes; j++) {
        const lp_probe_view_t *pj = &in->probes[j];
        if (pj->send_ms < due) {
            continue;
        }
        int t = probe_uncleared(in, pj, b, take);
        if (t < 0) {
            out->early += in->now - r->at < in->grace_ms ? 1 : 0;
            return HOLD_NONE;
        }
        if (*topic < 0) {
            /* the newest late-enough probe decides what is waited for */
            *topic = t;
            *state = pj->end[t] >= 0 && in->next[t] >= 0 ? LP_TOPIC_BEHIND : LP_TOPIC_UNKNOWN;
        }
    }
    if (in->now >= due) {
        if (*topic < 0) {
            for (int t = 0; t < LP_EV__COUNT && *topic < 0; t++) {
                if (t != b && take[t] >= in->nq[t]) {
                    *topic = t;
                }
            }
            *state = LP_TOPIC_UNKNOWN;
        }
        out->want_probe = true;
        return HOLD_DUE;
    }
    if (in->hi[b] >= 0 && in->hi[b] - r->offset >= LP_MERGE_PROBE_BACKLOG) {
        /* A backlog: a probe now proves its records appended long ago, and releases them a
         * grace later. A record of a live stream arrives within the grace of its append, and
         * gains nothing from an early probe. */
        out->want_probe = true;
    }
    return HOLD_GRACE;
}

/* A wait for topic t (state st): blocks unless it has lasted LP_MERGE_MAX_WAIT_MS while Kafka
 * answers (then reported once, and the merge goes on). */
static bool wait_for(const lp_merge_in_t *in, lp_merge_wait_t *wait, lp_merge_out_t *out, int t,
                     lp_topic_state_t st) {
    if (wait->waiting_since_ms == 0 || in->kafka_unsettled) {
        /* The clock of the fail-safe runs only while Kafka answers. */
        wait->waiting_since_ms = in->now;
    }
    bool blocked = in->now - wait->waiting_since_ms < LP_MERGE_MAX_WAIT_MS;
    out->waited = true;
    out->wait_topic = t;
    out->wait_state = st;
    if (!blocked && !wait->gave_up_reported) {
        wait->gave_up_reported = true;
        out->gave_up = true;
    }
    return blocked;
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
            blocked = wait_for(in, wait, out, t, in->state[t]);
        }
        if (blocked) {
            break;
        }
        int wt = -1;
        lp_topic_state_t ws = LP_TOPIC_UNKNOWN;
        hold_t hold = grace_hold(in, best, &in->q[best][out->take[best]], out->take, out, &wt, &ws);
        if (hold == HOLD_GRACE || (hold == HOLD_DUE && wait_for(in, wait, out, wt, ws))) {
            break;
        }
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
