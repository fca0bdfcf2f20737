/* The evaluation index of a large account (src/core/account_index.h). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/account_index.h"
#include "core/core_internal.h"

/* A member's predicates at a time: bit set = true. Exclusive classes: capped, else floored,
 * else free (its term v counts); DECAYING: t > ref (v = e * 2^-((t - ref) / h), else v = e). */
#define B_ENGAGED 1u
#define B_CAPPED 2u
#define B_FLOORED 4u
#define B_DECAYING 8u

typedef struct {
    int64_t t; /* when the member's predicates change next */
    int32_t i; /* member index */
    uint32_t gen;
} ev_t;

struct lp_account_index {
    /* the rules' values it was built with (a reload that changes one: built afresh) */
    double half_life, floor, member_cap, engaged;
    int32_t n, cap;         /* members covered, room in the per-member arrays */
    int64_t pos;            /* the time the predicates are at */
    int64_t base;           /* reference time of A's terms */
    double a, abs_a, err_a; /* sum of the decaying free members' v(base), of |v(base)|, error */
    double f, abs_f, err_f; /* sum of the other free members' v (= e), of |e|, error */
    int32_t ncapped, nfloored, nengaged;
    int32_t by_role[LP_ROLE__COUNT];
    int32_t by_grade[4];
    /* per member, as added to the sums (removed the same way) */
    uint8_t *bits;
    uint8_t *role;
    uint8_t *grade;
    double *term; /* its v(base) or e when free, else 0 */
    uint32_t *gen;
    int64_t *next; /* its pending change time (INT64_MAX: none) */
    ev_t *heap;
    int32_t nheap, heap_cap;
};

/* ---- a member's predicates (the expressions of account_state.c's plain evaluation) -------- */

static double v_at(const lp_member_view_t *m, const lp_rules_t *rules, int64_t t) {
    return m->e * lp_core_decay(rules, t, m->ref_ms);
}

static unsigned bits_at(const lp_member_view_t *m, const lp_rules_t *rules, int64_t t) {
    const lp_account_rules_t *acc = &rules->accounts;
    double v = v_at(m, rules, t);
    double s = v < rules->floor ? rules->floor : v;
    unsigned b = 0;
    if (s >= acc->engaged_score) {
        b |= B_ENGAGED;
    }
    if (!(s < acc->member_cap)) {
        b |= B_CAPPED;
    } else if (v < rules->floor) {
        b |= B_FLOORED;
    }
    if (t > m->ref_ms) {
        b |= B_DECAYING;
    }
    return b;
}

static int64_t sat_add(int64_t a, double d) {
    if (!(d < (double)(INT64_MAX / 2))) {
        return INT64_MAX;
    }
    return lp_core_time_add(a, (int64_t)d);
}

/* The first t > t0 at which the member's predicates differ from b0 (= bits_at(t0)); INT64_MAX
 * if never. Each predicate is monotone in t (v moves toward 0 once t passes ref), so "differs"
 * is false up to some time and true after: found by bracketing around the time the formula
 * gives for the nearest threshold and bisecting, with the exact predicates. */
static int64_t next_change(const lp_member_view_t *m, const lp_rules_t *rules, int64_t t0,
                           unsigned b0) {
    const double h = rules->half_life_ms;
    if (!(h > 0) || m->e == 0.0) {
        return INT64_MAX; /* v never moves (decaying changes nothing then) */
    }
    int64_t start = t0 > m->ref_ms ? t0 : m->ref_ms;
    /* 2^-1100 underflows every double: v is 0 (or -0) from there on. */
    int64_t far = sat_add(start, 1100.0 * h + 2.0);
    if (far <= t0 || bits_at(m, rules, far) == b0) {
        return INT64_MAX;
    }
    int64_t lo = t0, hi = far;
    /* estimate: the nearest crossing of a threshold by v, or ref itself */
    int64_t est = INT64_MAX;
    if (m->ref_ms > t0 && m->ref_ms < est) {
        est = m->ref_ms + 1 <= m->ref_ms ? INT64_MAX : m->ref_ms + 1;
    }
    const double xs[3] = {rules->accounts.engaged_score, rules->accounts.member_cap, rules->floor};
    for (int k = 0; k < 3; k++) {
        double r = m->e / xs[k];
        if (xs[k] != 0.0 && r > 0 && isfinite(r)) {
            double dt = h * log2(r);
            int64_t t = dt <= 0 ? m->ref_ms : sat_add(m->ref_ms, ceil(dt));
            if (t > t0 && t < est) {
                est = t;
            }
        }
    }
    if (est > lo && est < hi) {
        if (bits_at(m, rules, est) != b0) {
            hi = est;
            for (uint64_t step = 1; est - lo > (int64_t)step; step *= 2) {
                int64_t t = est - (int64_t)step;
                if (bits_at(m, rules, t) == b0) {
                    lo = t;
                    break;
                }
                hi = t;
            }
        } else {
            lo = est;
            for (uint64_t step = 1; hi - est > (int64_t)step; step *= 2) {
                int64_t t = est + (int64_t)step;
                if (bits_at(m, rules, t) != b0) {
                    hi = t;
                    break;
                }
                lo = t;
            }
        }
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (bits_at(m, rules, mid) != b0) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    return hi;
}

/* ---- heap of pending changes ---------------------------------------------------------------- */

static void sift_up(ev_t *h, int32_t i) {
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (h[p].t <= h[i].t) {
            break;
        }
        ev_t t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static void sift_down(ev_t *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].t < h[m].t) {
            m = l;
        }
        if (r < n && h[r].t < h[m].t) {
            m = r;
        }
        if (m == i) {
            return;
        }
        ev_t t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
}

/* The heap again from the members' pending changes (drops stale entries). */
static void reheap(lp_account_index_t *x) {
    x->nheap = 0;
    for (int32_t i = 0; i < x->n; i++) {
        if (x->next[i] != INT64_MAX) {
            x->heap[x->nheap++] = (ev_t){x->next[i], i, x->gen[i]};
        }
    }
    for (int32_t i = x->nheap / 2 - 1; i >= 0; i--) {
        sift_down(x->heap, x->nheap, i);
    }
}

static void push(lp_account_index_t *x, int32_t i) {
    if (x->next[i] == INT64_MAX) {
        return;
    }
    if (x->nheap == x->heap_cap) {
        reheap(x); /* at most n live entries; heap_cap >= 2n + 16 */
    }
    x->heap[x->nheap] = (ev_t){x->next[i], i, x->gen[i]};
    sift_up(x->heap, x->nheap++);
}

/* ---- sums ---------------------------------------------------------------------------------- */

/* sign +1 adds term to a sum, -1 takes it out again; the error bound only grows. */
static void add(double *sum, double *abs_sum, double *err, double term, double sign) {
    *sum += sign * term;
    *abs_sum += sign * fabs(term);
    *err += DBL_EPSILON * (fabs(*sum) + fabs(term));
}

void lp_account_index_out(lp_account_index_t *x, int32_t i) {
    unsigned b = x->bits[i];
    if (b & B_ENGAGED) {
        x->nengaged--;
        x->by_role[x->role[i]]--;
        x->by_grade[x->grade[i]]--;
    }
    if (b & B_CAPPED) {
        x->ncapped--;
    } else if (b & B_FLOORED) {
        x->nfloored--;
    } else if (b & B_DECAYING) {
        add(&x->a, &x->abs_a, &x->err_a, x->term[i], -1);
    } else {
        add(&x->f, &x->abs_f, &x->err_f, x->term[i], -1);
    }
    x->term[i] = 0;
    x->next[i] = INT64_MAX;
    x->gen[i]++;
}

/* Member i into the sums at x->pos. */
void lp_account_index_in(lp_account_index_t *x, const lp_account_state_t *a,
                         const lp_rules_t *rules, int32_t i) {
    const lp_member_view_t *m = &a->members[i];
    unsigned b = bits_at(m, rules, x->pos);
    x->bits[i] = (uint8_t)b;
    x->role[i] = m->role < LP_ROLE__COUNT ? m->role : 0;
    x->grade[i] = (uint8_t)(m->fit_grade >= 'A' && m->fit_grade <= 'D' ? m->fit_grade - 'A' : 3);
    x->term[i] = 0;
    if (b & B_ENGAGED) {
        x->nengaged++;
        x->by_role[x->role[i]]++;
        x->by_grade[x->grade[i]]++;
    }
    if (b & B_CAPPED) {
        x->ncapped++;
    } else if (b & B_FLOORED) {
        x->nfloored++;
    } else if (b & B_DECAYING) {
        x->term[i] = m->e * exp2(((double)m->ref_ms - (double)x->base) / rules->half_life_ms);
        add(&x->a, &x->abs_a, &x->err_a, x->term[i], 1);
    } else {
        x->term[i] = m->e;
        add(&x->f, &x->abs_f, &x->err_f, x->term[i], 1);
    }
    x->next[i] = next_change(m, rules, x->pos, b);
    push(x, i);
}

/* ---- life ---------------------------------------------------------------------------------- */

void lp_account_index_free(lp_account_index_t *x) {
    if (x == NULL) {
        return;
    }
    free(x->bits);
    free(x->role);
    free(x->grade);
    free(x->term);
    free(x->gen);
    free(x->next);
    free(x->heap);
    free(x);
}

static int reserve(lp_account_index_t *x, int32_t n) {
    if (n <= x->cap) {
        return LP_OK;
    }
    int32_t cap = x->cap < 64 ? 64 : x->cap;
    while (cap < n) {
        cap *= 2;
    }
    void *p;
#define GROW(field)                                                                                \
    if ((p = realloc(x->field, (size_t)cap * sizeof(*x->field))) == NULL) {                        \
        return LP_ERR;                                                                             \
    }                                                                                              \
    x->field = p;
    GROW(bits)
    GROW(role)
    GROW(grade)
    GROW(term)
    GROW(gen)
    GROW(next)
#undef GROW
    if ((p = realloc(x->heap, (size_t)(2 * cap + 16) * sizeof(*x->heap))) == NULL) {
        return LP_ERR;
    }
    x->heap = p;
    x->heap_cap = 2 * cap + 16;
    x->cap = cap;
    return LP_OK;
}

/* Everything from the members at t. */
static int build(lp_account_index_t *x, const lp_account_state_t *a, const lp_rules_t *rules,
                 int64_t t) {
    if (reserve(x, a->nmembers) != LP_OK) {
        return LP_ERR;
    }
    x->half_life = rules->half_life_ms;
    x->floor = rules->floor;
    x->member_cap = rules->accounts.member_cap;
    x->engaged = rules->accounts.engaged_score;
    x->n = a->nmembers;
    x->pos = x->base = t;
    x->a = x->abs_a = x->err_a = x->f = x->abs_f = x->err_f = 0;
    x->ncapped = x->nfloored = x->nengaged = 0;
    memset(x->by_role, 0, sizeof(x->by_role));
    memset(x->by_grade, 0, sizeof(x->by_grade));
    x->nheap = 0;
    for (int32_t i = 0; i < x->n; i++) {
        x->gen[i] = 0;
        x->bits[i] = 0;
        lp_account_index_in(x, a, rules, i);
    }
    return LP_OK;
}

lp_account_index_t *lp_account_index_get(lp_account_state_t *a, const lp_rules_t *rules) {
    lp_account_index_t *x = a->index;
    if (x != NULL && x->half_life == rules->half_life_ms && x->floor == rules->floor &&
        x->member_cap == rules->accounts.member_cap &&
        x->engaged == rules->accounts.engaged_score && x->n == a->nmembers && x->pos <= a->t_ms) {
        /* Kept while A's reference time is within 64 half-lives (a term's exponent, and so its
         * rounding against the plain evaluation's, stays small: see the bound in
         * lp_account_index_eval) and its tracked rounding is small; else built afresh. */
        double span = ((double)a->t_ms - (double)x->base) / rules->half_life_ms;
        double scale = exp2(-span);
        if (span < 64 && x->err_a * scale + x->err_f < 1e-9 * (1 + x->abs_a * scale + x->abs_f)) {
            return x;
        }
    }
    lp_account_index_free(x);
    a->index = NULL;
    if (!(rules->half_life_ms > 0) || (x = calloc(1, sizeof(*x))) == NULL) {
        return NULL;
    }
    if (build(x, a, rules, a->t_ms) != LP_OK) {
        lp_account_index_free(x);
        return NULL;
    }
    a->index = x;
    return x;
}

int lp_account_index_insert(lp_account_index_t *x, int32_t i) {
    if (reserve(x, x->n + 1) != LP_OK) {
        return LP_ERR;
    }
    size_t k = (size_t)(x->n - i);
#define SHIFT(field) memmove(&x->field[i + 1], &x->field[i], k * sizeof(*x->field));
    SHIFT(bits)
    SHIFT(role)
    SHIFT(grade)
    SHIFT(term)
    SHIFT(gen)
    SHIFT(next)
#undef SHIFT
    x->n++;
    x->bits[i] = 0;
    x->term[i] = 0;
    x->gen[i] = 0;
    x->next[i] = INT64_MAX;
    reheap(x); /* indices from i on moved up */
    return LP_OK;
}

void lp_account_index_remove(lp_account_index_t *x, int32_t i) {
    size_t k = (size_t)(x->n - i - 1);
#define SHIFT(field) memmove(&x->field[i], &x->field[i + 1], k * sizeof(*x->field));
    SHIFT(bits)
    SHIFT(role)
    SHIFT(grade)
    SHIFT(term)
    SHIFT(gen)
    SHIFT(next)
#undef SHIFT
    x->n--;
    reheap(x);
}

void lp_account_index_eval(lp_account_index_t *x, const lp_account_state_t *a,
                           const lp_rules_t *rules, int64_t t, lp_account_index_eval_t *ev) {
    const lp_account_rules_t *acc = &rules->accounts;
    if (t > x->pos) {
        x->pos = t;
        while (x->nheap > 0 && x->heap[0].t <= t) {
            ev_t e = x->heap[0];
            x->heap[0] = x->heap[--x->nheap];
            sift_down(x->heap, x->nheap, 0);
            if (e.i < x->n && x->gen[e.i] == e.gen) {
                lp_account_index_out(x, e.i);
                lp_account_index_in(x, a, rules, e.i);
            }
        }
    }
    double scale = exp2(-((double)x->pos - (double)x->base) / rules->half_life_ms);
    double fixed = x->ncapped * acc->member_cap + x->nfloored * rules->floor;
    double total_abs = x->ncapped * acc->member_cap + x->nfloored * fabs(rules->floor) + x->abs_f +
                       (x->abs_a > 0 ? x->abs_a : 0) * scale;
    ev->engaged = x->nengaged;
    ev->covered = 0;
    ev->best_engaged = 0;
    double roles = 0;
    for (int r = 0; r < LP_ROLE__COUNT; r++) {
        if (x->by_role[r] > 0) {
            ev->covered |= 1u << r;
            roles += acc->role_points[r];
            total_abs += fabs(acc->role_points[r]);
        }
    }
    for (int g = 0; g < 4; g++) {
        if (x->by_grade[g] > 0) {
            ev->best_engaged = (char)('A' + g);
            break;
        }
    }
    ev->score = fixed + x->f + x->a * scale + roles;
    /* The sums' own rounding (tracked); each decaying term's against the plain evaluation's
     * (two exp2 whose exponents, below 64 half-lives and so rounded by at most 64 * eps, are off
     * by at most ~45 eps relative each, plus the products); and the plain evaluation's rounding
     * over n + 6 terms: 8 * (n + 16) * eps >= 512 * eps of every term's magnitude covers it. */
    ev->bound = 2 * (x->err_a * scale + x->err_f) +
                8 * DBL_EPSILON * (double)(x->n + 16) * (total_abs + fabs(ev->score));
}
