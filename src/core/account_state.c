/* The account model of stage 2 (include/leadpulse/account_state.h; docs/rules.md "accounts"):
 * member records in, account hand-offs out. A plain evaluation walks every member (O(members));
 * a large account decides with its index (core/account_index.h) at O(log members). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/account_index.h"
#include "core/core_internal.h"
#include "leadpulse/account_state.h"

void lp_account_init(lp_account_state_t *a) {
    memset(a, 0, sizeof(*a));
}

void lp_account_free(lp_account_state_t *a) {
    if (a == NULL) {
        return;
    }
    free(a->members);
    free(a->untracked);
    lp_account_index_free(a->index);
    lp_account_init(a);
}

int32_t lp_account_members_untracked(const lp_account_state_t *a) {
    return a->untracked_saturated ? LP_ACCOUNT_UNTRACKED_MAX : a->nuntracked;
}

/* Forgets the account (it lost its last member), keeping the arrays' memory. */
static void forget(lp_account_state_t *a) {
    lp_member_view_t *members = a->members;
    lp_untracked_t *untracked = a->untracked;
    int32_t mcap = a->members_cap, ucap = a->untracked_cap;
    bool plain = a->plain_eval;

    lp_account_index_free(a->index);
    lp_account_init(a);
    a->plain_eval = plain;
    a->members = members;
    a->members_cap = mcap;
    a->untracked = untracked;
    a->untracked_cap = ucap;
}

/* ---- sorted arrays ------------------------------------------------------------------------ */

/* Index of lead_id in the sorted array (stride bytes per entry, the id first), or -(insertion
 * point) - 1. */
static int32_t find(const void *base, int32_t n, size_t stride, const char *lead_id) {
    int32_t lo = 0, hi = n;

    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int c = strcmp((const char *)base + (size_t)mid * stride, lead_id);
        if (c == 0) {
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -lo - 1;
}

/* Room for one more entry (capacity doubles, up to max). */
static int reserve(void **base, int32_t *cap, int32_t n, int32_t max, size_t stride) {
    int32_t want;
    void *p;

    if (n < *cap) {
        return LP_OK;
    }
    if (n >= max) {
        return LP_ERR;
    }
    want = *cap < 8 ? 8 : *cap > max / 2 ? max : *cap * 2;
    p = realloc(*base, (size_t)want * stride);
    if (p == NULL) {
        return LP_ERR;
    }
    *base = p;
    *cap = want;
    return LP_OK;
}

static void remove_at(void *base, int32_t *n, size_t stride, int32_t i) {
    memmove((char *)base + (size_t)i * stride, (char *)base + (size_t)(i + 1) * stride,
            (size_t)(*n - i - 1) * stride);
    (*n)--;
}

/* Opens a slot at i (room reserved). */
static void *insert_at(void *base, int32_t *n, size_t stride, int32_t i) {
    memmove((char *)base + (size_t)(i + 1) * stride, (char *)base + (size_t)i * stride,
            (size_t)(*n - i) * stride);
    (*n)++;
    return (char *)base + (size_t)i * stride;
}

const lp_member_view_t *lp_account_member(const lp_account_state_t *a, const char *lead_id) {
    int32_t i = find(a->members, a->nmembers, sizeof(lp_member_view_t), lead_id);
    return i >= 0 ? &a->members[i] : NULL;
}

/* ---- evaluation --------------------------------------------------------------------------- */

double lp_account_member_score(const lp_member_view_t *m, const lp_rules_t *rules, int64_t t) {
    double s = m->e * lp_core_decay(rules, t, m->ref_ms); /* 1 when t <= ref */
    return s < rules->floor ? rules->floor : s;
}

typedef struct {
    double score;      /* S */
    int32_t engaged;   /* engaged members */
    unsigned covered;  /* roles of engaged members, 1u << lp_role_t */
    char best_engaged; /* best fit grade of an engaged member, 0 = none */
} eval_t;

static void evaluate(const lp_account_state_t *a, const lp_rules_t *rules, int64_t t, eval_t *ev) {
    const lp_account_rules_t *acc = &rules->accounts;
    double sum = 0.0;

    memset(ev, 0, sizeof(*ev));
    for (int32_t i = 0; i < a->nmembers; i++) {
        const lp_member_view_t *m = &a->members[i];
        double s = lp_account_member_score(m, rules, t);
        sum += s < acc->member_cap ? s : acc->member_cap;
        if (s >= acc->engaged_score) {
            ev->engaged++;
            ev->covered |= 1u << m->role;
            if (ev->best_engaged == 0 || m->fit_grade < ev->best_engaged) {
                ev->best_engaged = m->fit_grade;
            }
        }
    }
    for (int r = 0; r < LP_ROLE__COUNT; r++) {
        if (ev->covered & (1u << r)) {
            sum += acc->role_points[r];
        }
    }
    ev->score = sum;
}

void lp_account_evaluate(const lp_account_state_t *a, const lp_rules_t *rules, int64_t t,
                         lp_account_eval_t *out) {
    eval_t ev;
    evaluate(a, rules, t, &ev);
    out->score = ev.score;
    out->engaged = ev.engaged;
    out->covered = ev.covered;
    out->best_engaged = ev.best_engaged;
}

static int ngroups(const lp_account_rules_t *acc) {
    return acc->nrequired < 0                    ? 0
           : acc->nrequired > LP_MAX_ROLE_GROUPS ? LP_MAX_ROLE_GROUPS
                                                 : acc->nrequired;
}

static bool mqa(const lp_account_rules_t *acc, const eval_t *ev) {
    int n = ngroups(acc);

    if (!(ev->score >= acc->mqa_score) || ev->engaged < acc->mqa_engaged_members) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        if ((acc->required[i] & ev->covered) == 0) {
            return false;
        }
    }
    return acc->mqa_min_fit == 0 || (ev->best_engaged != 0 && ev->best_engaged <= acc->mqa_min_fit);
}

/* Keeps top[0..*n) the first LP_ACCOUNT_FACT_MEMBERS members in lp_account_member_cmp order. */
static void top_insert(lp_account_member_t *top, int *n, const lp_account_member_t *m) {
    int lo = 0, hi = *n, keep;

    if (*n == LP_ACCOUNT_FACT_MEMBERS && lp_account_member_cmp(m, &top[*n - 1]) >= 0) {
        return;
    }
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (lp_account_member_cmp(&top[mid], m) <= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    keep = *n < LP_ACCOUNT_FACT_MEMBERS ? *n : LP_ACCOUNT_FACT_MEMBERS - 1;
    memmove(&top[lo + 1], &top[lo], (size_t)(keep - lo) * sizeof(top[0]));
    top[lo] = *m;
    if (*n < LP_ACCOUNT_FACT_MEMBERS) {
        (*n)++;
    }
}

/* A hand-off describing the account at time t. */
static void fill_fact(const lp_account_state_t *a, const lp_rules_t *rules, lp_account_fact_t *f,
                      lp_account_fact_kind_t kind, lp_account_stale_reason_t reason, int64_t t) {
    const lp_account_rules_t *acc = &rules->accounts;
    int n = ngroups(acc);
    eval_t ev;

    evaluate(a, rules, t, &ev);
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    f->stale_reason = kind == LP_ACCOUNT_FACT_STALE ? reason : LP_ACCOUNT_STALE_SLA_BREACHED;
    memcpy(f->account, a->account, sizeof(f->account));
    f->ts_ms = t;
    f->score = ev.score;
    f->engaged_members = ev.engaged;
    f->members_total = a->nmembers;
    f->members_untracked = lp_account_members_untracked(a);
    f->roles_covered = ev.covered;
    for (int i = 0; i < n; i++) {
        if ((acc->required[i] & ev.covered) == 0) {
            f->roles_missing[f->nroles_missing++] = acc->required[i];
        }
    }
    memcpy(f->model_id, rules->model_id, sizeof(f->model_id));
    memcpy(f->model_version, rules->model_version, sizeof(f->model_version));
    f->qualification = a->qualification;
    f->qualified_at_ms = a->qualified_at_ms;
    for (int32_t i = 0; i < a->nmembers; i++) {
        const lp_member_view_t *m = &a->members[i];
        lp_account_member_t am;
        memset(&am, 0, sizeof(am));
        memcpy(am.lead_id, m->lead_id, sizeof(am.lead_id));
        am.role = (lp_role_t)m->role;
        am.score = lp_account_member_score(m, rules, t);
        am.counted = am.score < acc->member_cap ? am.score : acc->member_cap;
        am.engaged = am.score >= acc->engaged_score;
        am.fit_grade = m->fit_grade;
        am.stage = m->stage;
        am.last_activity_ms = m->last_activity_ms;
        top_insert(f->members, &f->nmembers, &am);
    }
    lp_account_members_sort(f->members, f->nmembers);
    lp_account_event_id(f->event_id, f->account, kind, reason, f->qualification,
                        f->qualified_at_ms);
}

/* Ends the current qualification: armed again, timers cancelled. */
static void rearm(lp_account_state_t *a) {
    a->armed = true;
    a->accepted = false;
    a->rejected = false;
    a->qualified_at_ms = 0;
    a->sla_deadline_ms = 0;
    a->quiet_deadline_ms = 0;
}

/* The committee_quiet deadline for a last activity (0: none). */
static int64_t quiet_deadline(const lp_account_state_t *a, const lp_rules_t *rules,
                              int64_t last_activity) {
    int64_t from = last_activity > a->qualified_at_ms ? last_activity : a->qualified_at_ms;
    return lp_core_time_add(from, rules->accounts.quiet_after_ms);
}

/* Fires the timers due at or before now while facts has room. */
static int fire_due(lp_account_state_t *a, const lp_rules_t *rules, int64_t now,
                    lp_account_fact_t *facts, size_t max_facts, size_t *n) {
    int changed = 0;

    while (*n < max_facts) {
        int64_t sla = a->sla_deadline_ms, quiet = a->quiet_deadline_ms;
        bool sla_due = sla != 0 && sla <= now, quiet_due = quiet != 0 && quiet <= now;
        if (sla_due && (!quiet_due || sla <= quiet)) {
            fill_fact(a, rules, &facts[(*n)++], LP_ACCOUNT_FACT_STALE,
                      LP_ACCOUNT_STALE_SLA_BREACHED, sla);
            a->sla_deadline_ms = 0; /* once per qualification; it stays qualified */
        } else if (quiet_due) {
            fill_fact(a, rules, &facts[(*n)++], LP_ACCOUNT_FACT_STALE,
                      LP_ACCOUNT_STALE_COMMITTEE_QUIET, quiet);
            rearm(a);
        } else {
            break;
        }
        changed = 1;
    }
    return changed;
}

/* The evaluation at T for a decision against threshold: with the index of a large account
 * (the score exact only where it matters: within the index's error bound of the threshold, the
 * plain sum decides), else plain. */
static void evaluate_for(lp_account_state_t *a, const lp_rules_t *rules, double threshold,
                         eval_t *ev) {
    lp_account_index_t *x = NULL;
    if (!a->plain_eval && (a->index != NULL || a->nmembers >= LP_ACCOUNT_INDEX_MIN)) {
        if (a->nmembers < LP_ACCOUNT_INDEX_MIN / 2) {
            lp_account_index_free(a->index); /* small again: the plain sum is as cheap */
            a->index = NULL;
        } else {
            x = lp_account_index_get(a, rules);
        }
    }
    if (x == NULL) {
        evaluate(a, rules, a->t_ms, ev);
        return;
    }
    lp_account_index_eval_t ie;
    lp_account_index_eval(x, a, rules, a->t_ms, &ie);
    ev->engaged = ie.engaged;
    ev->covered = ie.covered;
    ev->best_engaged = ie.best_engaged;
    ev->score = ie.score;
    if (!(fabs(ie.score - threshold) > ie.bound)) {
        eval_t plain;
        evaluate(a, rules, a->t_ms, &plain);
        ev->score = plain.score;
    }
}

/* Qualification or re-arm, at T. */
static void decide(lp_account_state_t *a, const lp_rules_t *rules, lp_account_fact_t *facts,
                   size_t *n) {
    const lp_account_rules_t *acc = &rules->accounts;
    int64_t t = a->t_ms, last = 0;
    eval_t ev;

    evaluate_for(a, rules, a->armed ? acc->mqa_score : acc->mqa_rearm, &ev);
    if (!a->armed) {
        if (ev.score < acc->mqa_rearm) {
            rearm(a);
        }
        return;
    }
    if (!mqa(acc, &ev)) {
        return;
    }
    a->armed = false;
    a->qualification++;
    a->qualified_at_ms = t;
    a->accepted = false;
    a->rejected = false;
    bool rejected = false;
    for (int32_t i = 0; i < a->nmembers; i++) {
        const lp_member_view_t *m = &a->members[i];
        if (m->accepted_ms != 0 && m->accepted_ms >= t) {
            a->accepted = true;
        }
        if (m->rejected_ms != 0 && m->rejected_ms >= t) {
            rejected = true;
        }
        if (m->last_activity_ms > last) {
            last = m->last_activity_ms;
        }
    }
    /* An acceptance wins over a rejection found at the same moment. */
    a->rejected = rejected && !a->accepted;
    a->sla_deadline_ms = acc->accept_within_ms > 0 && !a->accepted && !a->rejected
                             ? lp_core_time_add(t, acc->accept_within_ms)
                             : 0;
    a->quiet_deadline_ms =
        acc->quiet_after_ms > 0 && !a->rejected ? quiet_deadline(a, rules, last) : 0;
    fill_fact(a, rules, &facts[(*n)++], LP_ACCOUNT_FACT_QUALIFIED, LP_ACCOUNT_STALE_SLA_BREACHED,
              t);
}

/* ---- records ------------------------------------------------------------------------------ */

static bool valid_key(const char *key) {
    size_t n = strnlen(key, LP_ACCOUNT_KEY_MAX + 1);
    if (n > LP_ACCOUNT_KEY_MAX) {
        return false;
    }
    return (n > 3 && strncmp(key, "id:", 3) == 0) || (n > 7 && strncmp(key, "domain:", 7) == 0);
}

static bool valid_record(const lp_member_record_t *r) {
    size_t idlen = strnlen(r->lead_id, sizeof(r->lead_id));
    if (!valid_key(r->account) || idlen == 0 || idlen > LP_ID_MAX || r->event_ms < 0) {
        return false;
    }
    if (r->leave) {
        return true;
    }
    return (unsigned)r->role < LP_ROLE__COUNT && r->fit_grade >= 'A' && r->fit_grade <= 'D' &&
           r->stage < LP_STAGE__COUNT && isfinite(r->e) && r->ref_ms >= 0 &&
           r->last_activity_ms >= 0 && r->accepted_ms >= 0 && r->rejected_ms >= 0;
}

static bool valid_rules(const lp_rules_t *rules) {
    return rules->accounts.enabled && rules->accounts.max_members >= 1 &&
           rules->accounts.max_members <= LP_ACCOUNT_MEMBERS_MAX;
}

static void view_of(lp_member_view_t *m, const lp_member_record_t *r) {
    memset(m, 0, sizeof(*m));
    memcpy(m->lead_id, r->lead_id, sizeof(m->lead_id));
    m->seq = r->seq;
    m->e = r->e;
    m->ref_ms = r->ref_ms;
    m->last_activity_ms = r->last_activity_ms;
    m->accepted_ms = r->accepted_ms;
    m->rejected_ms = r->rejected_ms;
    m->role = (uint8_t)r->role;
    m->fit_grade = r->fit_grade;
    m->stage = r->stage;
}

/* A record of a lead that is not tracked and cannot join (the account is full). */
static int untracked_record(lp_account_state_t *a, const lp_member_record_t *r, int32_t u) {
    if (u >= 0) {
        a->untracked[u].seq = r->seq;
        return LP_OK;
    }
    if (a->nuntracked >= LP_ACCOUNT_UNTRACKED_MAX) {
        if (a->untracked_saturated) {
            return LP_ACCOUNT_UNCHANGED;
        }
        a->untracked_saturated = true;
        return LP_OK;
    }
    if (reserve((void **)&a->untracked, &a->untracked_cap, a->nuntracked, LP_ACCOUNT_UNTRACKED_MAX,
                sizeof(lp_untracked_t)) != LP_OK) {
        return LP_ERR;
    }
    lp_untracked_t *e = insert_at(a->untracked, &a->nuntracked, sizeof(lp_untracked_t), -u - 1);
    memset(e, 0, sizeof(*e));
    memcpy(e->lead_id, r->lead_id, sizeof(e->lead_id));
    e->seq = r->seq;
    return LP_OK;
}

int lp_account_apply(lp_account_state_t *a, const lp_rules_t *rules, const lp_member_record_t *r,
                     lp_account_fact_t *facts, size_t max_facts, size_t *nfacts) {
    int32_t i, u = -1;
    size_t n = 0;

    if (nfacts != NULL) {
        *nfacts = 0;
    }
    if (a == NULL || rules == NULL || r == NULL || facts == NULL || nfacts == NULL ||
        max_facts < LP_ACCOUNT_APPLY_FACTS || !valid_rules(rules) || !valid_record(r)) {
        return LP_ERR;
    }
    if (a->nmembers > 0 && strcmp(a->account, r->account) != 0) {
        return LP_ERR;
    }
    i = find(a->members, a->nmembers, sizeof(lp_member_view_t), r->lead_id);
    if (i >= 0 && r->seq <= a->members[i].seq) {
        return LP_ACCOUNT_UNCHANGED;
    }
    if (i < 0) {
        u = find(a->untracked, a->nuntracked, sizeof(lp_untracked_t), r->lead_id);
        if (u >= 0 && r->seq <= a->untracked[u].seq) {
            return LP_ACCOUNT_UNCHANGED;
        }
        if (r->leave) {
            if (u < 0) {
                return LP_ACCOUNT_UNCHANGED; /* not known here */
            }
            remove_at(a->untracked, &a->nuntracked, sizeof(lp_untracked_t), u);
            return LP_OK;
        }
        if (a->nmembers >= rules->accounts.max_members) {
            return untracked_record(a, r, u);
        }
        /* Joins: room first, so that nothing has changed when there is none. */
        if (reserve((void **)&a->members, &a->members_cap, a->nmembers, LP_ACCOUNT_MEMBERS_MAX,
                    sizeof(lp_member_view_t)) != LP_OK) {
            return LP_ERR;
        }
    }

    /* A record of a member, or of a lead that joins: time, timers, change, evaluation. */
    int64_t t = a->nmembers == 0 || r->event_ms > a->t_ms ? r->event_ms : a->t_ms;
    if (a->nmembers > 0) {
        fire_due(a, rules, t, facts, max_facts, &n);
    }
    if (i >= 0 && r->leave) {
        if (a->index != NULL) {
            lp_account_index_out(a->index, i);
        }
        remove_at(a->members, &a->nmembers, sizeof(lp_member_view_t), i);
        if (a->index != NULL) {
            lp_account_index_remove(a->index, i);
        }
        if (a->nmembers == 0) {
            forget(a);
            *nfacts = n;
            return LP_OK;
        }
    } else if (i >= 0) {
        if (a->index != NULL) {
            lp_account_index_out(a->index, i);
        }
        view_of(&a->members[i], r);
        if (a->index != NULL) {
            lp_account_index_in(a->index, a, rules, i);
        }
    } else {
        if (a->nmembers == 0) {
            forget(a); /* starts afresh, armed */
            memcpy(a->account, r->account, sizeof(a->account));
            a->armed = true;
        }
        if (u >= 0) {
            remove_at(a->untracked, &a->nuntracked, sizeof(lp_untracked_t), u);
        }
        i = -find(a->members, a->nmembers, sizeof(lp_member_view_t), r->lead_id) - 1;
        view_of(insert_at(a->members, &a->nmembers, sizeof(lp_member_view_t), i), r);
        if (a->index != NULL) {
            if (lp_account_index_insert(a->index, i) == LP_OK) {
                lp_account_index_in(a->index, a, rules, i);
            } else {
                lp_account_index_free(a->index); /* no memory: rebuilt when needed */
                a->index = NULL;
            }
        }
    }
    a->t_ms = t;
    if (!a->armed && !r->leave) {
        /* The qualification's acceptance and committee activity, from this member's record. */
        if (!a->accepted && !a->rejected && r->accepted_ms != 0 &&
            r->accepted_ms >= a->qualified_at_ms) {
            a->accepted = true;
            a->sla_deadline_ms = 0;
        }
        if (!a->accepted && !a->rejected && r->rejected_ms != 0 &&
            r->rejected_ms >= a->qualified_at_ms) {
            /* Sales rejected the account: no stale alert for it; it qualifies again only once
             * re-armed (its score below mqa.rearm). */
            a->rejected = true;
            a->sla_deadline_ms = 0;
            a->quiet_deadline_ms = 0;
        }
        if (a->quiet_deadline_ms != 0) {
            int64_t d = quiet_deadline(a, rules, r->last_activity_ms);
            if (d > a->quiet_deadline_ms) {
                a->quiet_deadline_ms = d;
            }
        }
    }
    decide(a, rules, facts, &n);
    *nfacts = n;
    return LP_OK;
}

int lp_account_fire_timers(lp_account_state_t *a, const lp_rules_t *rules, int64_t now_ms,
                           lp_account_fact_t *facts, size_t max_facts, size_t *nfacts) {
    size_t n = 0;
    int changed;

    if (nfacts != NULL) {
        *nfacts = 0;
    }
    if (a == NULL || rules == NULL || nfacts == NULL || (facts == NULL && max_facts > 0) ||
        !rules->accounts.enabled) {
        return LP_ERR;
    }
    if (a->nmembers == 0) {
        return LP_ACCOUNT_UNCHANGED;
    }
    changed = fire_due(a, rules, now_ms, facts, max_facts, &n);
    *nfacts = n;
    return changed ? LP_OK : LP_ACCOUNT_UNCHANGED;
}

int64_t lp_account_next_deadline(const lp_account_state_t *a) {
    int64_t sla = a->sla_deadline_ms, quiet = a->quiet_deadline_ms;
    if (sla == 0) {
        return quiet;
    }
    return quiet == 0 || sla <= quiet ? sla : quiet;
}
