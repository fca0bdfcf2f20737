/* The evaluation index of a large account (src/core/account_index.c): what an account evaluation
 * needs at the account's time T, kept up to date per member instead of recomputed over every
 * member for every record. Internal to src/core (account_state.c); not stored (rebuilt from the
 * members when missing).
 *
 * A member's score s(t) = max(floor, v(t)), v(t) = e * 2^-((t - ref) / h), is monotone in t, so
 * each of its three predicates - engaged (s >= engaged_score), capped (s >= member_cap) and
 * floored (v < floor) - changes at most once as T grows; the index keeps, for every member, its
 * predicates at T and the next time one of them changes (found with the very expressions the
 * plain evaluation uses, so they agree to the millisecond), in a heap. It holds:
 *  - exactly: the engaged members by role and by fit grade, the capped and floored counts;
 *  - approximately: the sum of the other members' terms, as A * 2^-((T - base) / h) with
 *    A = sum of v(base) (one number, updated as members change), with a bound on its error
 *    (built afresh when T is 64 half-lives past base, the rules' half-life, floor, cap or
 *    engaged score changed, or the tracked rounding grew).
 * An account with more members than LP_ACCOUNT_INDEX_MIN decides with it: engaged members, roles
 * and fit exactly, the score when it is farther from the threshold than the bound, else by the
 * plain O(members) sum (so decisions equal the plain evaluation's). Cost per record O(log
 * members) (plus the O(members) shifts a join or leave already costs). */
#ifndef LEADPULSE_CORE_ACCOUNT_INDEX_H
#define LEADPULSE_CORE_ACCOUNT_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "leadpulse/account_state.h"
#include "leadpulse/rules.h"

/* Accounts with at least this many members use the index (below, the plain evaluation is as
 * cheap). */
#define LP_ACCOUNT_INDEX_MIN 48

typedef struct lp_account_index lp_account_index_t;

/* What an evaluation at T gives (the plain one's eval_t, with the score's error bound). */
typedef struct {
    double score;      /* approximate S */
    double bound;      /* |score - the plain evaluation's S| <= bound */
    int32_t engaged;   /* exact */
    unsigned covered;  /* exact */
    char best_engaged; /* exact, 0 = none */
} lp_account_index_eval_t;

void lp_account_index_free(lp_account_index_t *x);

/* The index of a at time t (a->t_ms), built when a has none; NULL on no memory. */
lp_account_index_t *lp_account_index_get(lp_account_state_t *a, const lp_rules_t *rules);

/* Member i leaves the index's sums (before it is updated or removed). */
void lp_account_index_out(lp_account_index_t *x, int32_t i);

/* Member i (updated, or inserted) enters the sums at the index's time (an evaluation at a
 * later T moves it on). */
void lp_account_index_in(lp_account_index_t *x, const lp_account_state_t *a,
                         const lp_rules_t *rules, int32_t i);

/* A member was inserted at i (the members array grew by one; i not yet in the sums) or removed
 * from i (after lp_account_index_out). LP_OK, or LP_ERR on no memory (the caller drops the
 * index). */
int lp_account_index_insert(lp_account_index_t *x, int32_t i);
void lp_account_index_remove(lp_account_index_t *x, int32_t i);

/* Moves the index to time t >= its time (members whose predicates changed move class) and
 * evaluates there. */
void lp_account_index_eval(lp_account_index_t *x, const lp_account_state_t *a,
                           const lp_rules_t *rules, int64_t t, lp_account_index_eval_t *ev);

#endif
