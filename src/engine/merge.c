/* The merge's release rule (see merge.h). */
#include "engine/merge.h"

static bool covers(const lp_end_probe_t ring[LP_END_RING], const lp_part_ends_t *ends,
                   uint64_t seq) {
    size_t slot = seq % LP_END_RING;
    return ring[slot].seq == seq && ends->seq[slot] == seq;
}

bool lp_merge_release(const lp_end_probe_t ring[LP_END_RING], uint64_t last_seq,
                      const lp_part_ends_t *ends, const int64_t next[LP_IN_TOPICS], int grace_ms,
                      int64_t rel[LP_IN_TOPICS], bool caught[LP_IN_TOPICS]) {
    for (int t = 0; t < LP_IN_TOPICS; t++) {
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
    for (int t = 0; t < LP_IN_TOPICS; t++) {
        int64_t end = ends->end[m % LP_END_RING][t];
        caught[t] = end >= 0 && next[t] >= 0 && end <= next[t];
    }
    /* k: the newest probe answered grace_ms or more before m was sent. */
    for (uint64_t k = m; k > 0 && m - k < LP_END_RING; k--) {
        if (covers(ring, ends, k) && ring[k % LP_END_RING].recv_ms + grace_ms <= pm->send_ms) {
            for (int t = 0; t < LP_IN_TOPICS; t++) {
                int64_t end = ends->end[k % LP_END_RING][t];
                rel[t] = end > 0 ? end : 0;
            }
            break;
        }
    }
    return true;
}
