/* leadpulse core: helpers shared by the files of the scoring core. Not a public contract. */
#ifndef LEADPULSE_CORE_INTERNAL_H
#define LEADPULSE_CORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "leadpulse/event.h"
#include "leadpulse/rules.h"
#include "leadpulse/score.h"

/* Seeds of the 64-bit hash: event-id de-duplication and the two halves of emitted ids. */
#define LP_CORE_SEED_DEDUP 0x6c656164u /* "lead" */
#define LP_CORE_SEED_ID_HI 0x9ae16a3b2f90404fULL
#define LP_CORE_SEED_ID_LO 0xc3a5c85c97cb3127ULL

/* Well-mixed 64-bit hash of len bytes (byte-order independent, so ids agree across hosts). */
uint64_t lp_core_hash64(const void *data, size_t len, uint64_t seed);

/* Index of the activity rule named `type` (exact match), or -1. Pure: no lookup tables. */
int lp_core_activity_index(const lp_rules_t *rules, const char *type);

/* Profile updates: non-empty strings and company_size >= 0 replace the old values. */
void lp_core_profile_merge(lp_profile_update_t *profile, const lp_profile_update_t *update);

/* Sum of the points of the fit rules the profile matches. */
double lp_core_fit_points(const lp_rules_t *rules, const lp_profile_update_t *profile);

/* 'A' if points >= grade_a, 'B' >= grade_b, 'C' >= grade_c, else 'D'. */
char lp_core_fit_grade(const lp_rules_t *rules, double points);

/* First disqualify rule the profile matches, or NULL. */
const lp_match_rule_t *lp_core_dq_match(const lp_rules_t *rules,
                                        const lp_profile_update_t *profile);

#endif
