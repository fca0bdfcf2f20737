/* The scoring core: decay, points and caps, machine activity, de-duplication, lifecycle and MQL
 * hysteresis (timers in timers.c, facts in facts.c, profile rules in fit.c).
 * Pure: the lead, the event, the rules and the time in; the new lead and facts out. */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/core_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Facts one event may still need after its timers fired: a qualification and an immediate
 * cooling. Timers beyond the rest of the buffer stay due and fire on the next call. */
#define EVENT_FACT_RESERVE 2

/* ---- time and decay ---------------------------------------------------------------------- */

double lp_lead_score_at(const lp_lead_t *lead, const lp_rules_t *rules, int64_t t_ms) {
    if (t_ms <= lead->ref_ms) {
        return lp_core_clamp_floor(rules, lead->score);
    }
    return lp_core_clamp_floor(
        rules, lp_core_total(lead, rules, lp_core_decay(rules, t_ms, lead->ref_ms)));
}

/* E from the contributions, in the order a hand-off lists them (lp_core_total). Called after
 * every change of a contribution, so the score compared with the thresholds is the one shown. */
static void sum_up(lp_lead_t *lead, const lp_rules_t *rules) {
    lead->score = lp_core_total(lead, rules, 1.0);
}

/* Moves the lead's reference time forward to t: the contributions, and so E, decay together. */
static void advance_to(lp_lead_t *lead, const lp_rules_t *rules, int64_t t) {
    if (t <= lead->ref_ms) {
        return;
    }
    double f = lp_core_decay(rules, t, lead->ref_ms);
    if (f != 1.0) {
        int n = lp_core_nactivities(rules);
        if (f < 0x1p-10) {
            for (int i = 0; i < n; i++) {
                lead->act[i].points = lp_core_flush_tiny(lead->act[i].points * f);
            }
        } else {
            /* Short gaps cannot take a value from above LP_CORE_TINY to a subnormal; the hot path
             * skips the test (a value already below LP_CORE_TINY is flushed by the next long gap).
             */
            for (int i = 0; i < n; i++) {
                lead->act[i].points *= f;
            }
        }
        sum_up(lead, rules);
    }
    lead->ref_ms = t;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static bool is_open_stage(uint8_t stage) {
    return stage == LP_STAGE_SUSPECT || stage == LP_STAGE_RESPONDER || stage == LP_STAGE_WARM ||
           stage == LP_STAGE_MQL || stage == LP_STAGE_RECYCLED || stage == LP_STAGE_DISQUALIFIED;
}

/* Stage of a lead in the open funnel below MQL, from its engagement and score at ref_ms. An
 * inactive lead stays a responder: it becomes warm again only by engaging. */
static uint8_t funnel_stage(const lp_lead_t *lead, const lp_rules_t *rules) {
    if (lead->last_activity_ms == 0) {
        return LP_STAGE_SUSPECT;
    }
    if (lead->score >= rules->warm_threshold && lp_core_is_active(lead, rules, lead->ref_ms)) {
        return LP_STAGE_WARM;
    }
    return LP_STAGE_RESPONDER;
}

/* Re-arm once the score at ref_ms is below rearm_level. An MQL re-arms through its cooling timer
 * instead, which also tells sales. */
static void maybe_rearm(lp_lead_t *lead, const lp_rules_t *rules) {
    if (!lead->armed && lead->stage != LP_STAGE_MQL && lead->score < rules->rearm_level) {
        lead->armed = true;
    }
}

static bool fit_gate_passes(const lp_lead_t *lead, const lp_rules_t *rules) {
    char gate = rules->min_fit_grade;
    if (gate < 'A' || gate > 'D') {
        gate = 'D';
    }
    return lead->fit_grade <= gate;
}

/* MQL: a warm, armed lead whose score at ref_ms reaches the threshold and passes the fit gate.
 * Disqualified, SQL, closed and recycled leads are not warm, so they never qualify here. */
static void maybe_qualify(lp_lead_t *lead, const lp_rules_t *rules, lp_facts_t *facts) {
    if (lead->stage != LP_STAGE_WARM || !lead->armed || lead->score < rules->mql_threshold ||
        !fit_gate_passes(lead, rules) || lead->dq_reason[0] != '\0') {
        return;
    }
    if (!lp_core_facts_room(facts, 0)) {
        return; /* stays armed: qualifies on its next event rather than losing the hand-off */
    }
    int64_t t = lead->ref_ms;
    lead->armed = false;
    lead->mql_seq++;
    lead->mql_at_ms = t;
    lead->stage = LP_STAGE_MQL;
    lp_core_cancel_handoff(lead);
    lead->sla_deadline_ms = rules->sla_ms > 0 ? lp_core_time_add(t, rules->sla_ms) : 0;
    lp_core_update_timers(lead, rules);
    lp_fact_t *fact = lp_core_emit(facts, lead, rules, LP_FACT_QUALIFIED, t);
    lp_event_id_derive(fact->event_id, lead->lead_id, "qualified", lead->mql_seq, 0);
}

/* ---- de-duplication ---------------------------------------------------------------------- */

static int dedup_window(const lp_rules_t *rules) {
    int w = rules->dedup_window;
    return w <= 0 ? 0 : w > LP_DEDUP_MAX ? LP_DEDUP_MAX : w;
}

/* Runs for every event over the whole ring (a duplicate is rare). With SSE2, four ids per step
 * are compared by their 32-bit halves against h's: a ring where no half equals h's (nearly
 * always) cannot hold h, and one where some half does is settled by the exact compare. */
static bool seen_contains(const lp_lead_t *lead, uint64_t h) {
    int n = lead->nseen < 0 ? 0 : lead->nseen > LP_DEDUP_MAX ? LP_DEDUP_MAX : lead->nseen;
    int i = 0;
#if defined(__SSE2__)
    const __m128i hv = _mm_set1_epi64x((long long)h);
    __m128i any = _mm_setzero_si128();
    for (; i + 4 <= n; i += 4) {
        __m128i a = _mm_loadu_si128((const __m128i *)&lead->seen[i]);
        __m128i b = _mm_loadu_si128((const __m128i *)&lead->seen[i + 2]);
        any = _mm_or_si128(any, _mm_or_si128(_mm_cmpeq_epi32(a, hv), _mm_cmpeq_epi32(b, hv)));
    }
    if (_mm_movemask_epi8(any) != 0) {
        i = 0;
    }
#endif
    for (; i < n; i++) {
        if (lead->seen[i] == h) {
            return true;
        }
    }
    return false;
}

static void seen_add(lp_lead_t *lead, int window, uint64_t h) {
    if (lead->seen_pos < 0 || lead->seen_pos >= window) {
        lead->seen_pos = 0;
    }
    lead->seen[lead->seen_pos++] = h;
    if (lead->nseen < window) {
        lead->nseen++;
    }
}

/* ---- events ------------------------------------------------------------------------------ */

static bool is_machine(const lp_engagement_t *eng, const lp_rules_t *rules) {
    if (rules->honor_machine_flag && eng->machine) {
        return true;
    }
    if (rules->machine_click_within_s <= 0 || eng->seconds_since_send < 0 ||
        eng->seconds_since_send >= rules->machine_click_within_s) {
        return false;
    }
    return strcmp(eng->type, "email_open") == 0 || strcmp(eng->type, "email_click") == 0;
}

/* Path part of an absolute URL ("https://host/p?q" -> "/p?q"), or the URL itself. */
static const char *url_path(const char *url) {
    const char *scheme = strstr(url, "://");
    if (scheme == NULL) {
        return url;
    }
    const char *slash = strchr(scheme + 3, '/');
    return slash != NULL ? slash : "/";
}

/* `path` is url_path(eng->url), computed once per event. */
static bool condition_matches(const lp_condition_t *cond, const lp_engagement_t *eng,
                              const char *path) {
    if (cond->url_prefix[0] != '\0') {
        size_t len;
        if (eng->url[0] == '\0') {
            return false;
        }
        len = strlen(cond->url_prefix);
        if (strncmp(eng->url, cond->url_prefix, len) != 0 &&
            strncmp(path, cond->url_prefix, len) != 0) {
            return false;
        }
    }
    if (cond->asset_id[0] != '\0' && strcmp(eng->asset_id, cond->asset_id) != 0) {
        return false;
    }
    return cond->campaign_id[0] == '\0' || strcmp(eng->campaign_id, cond->campaign_id) == 0;
}

static double rule_points(const lp_activity_rule_t *rule, const lp_engagement_t *eng) {
    int n = rule->ncond < LP_MAX_CONDITIONS ? rule->ncond : LP_MAX_CONDITIONS;
    const char *path = n > 0 && eng->url[0] != '\0' ? url_path(eng->url) : eng->url;
    for (int i = 0; i < n; i++) {
        if (condition_matches(&rule->cond[i], eng, path)) {
            return rule->cond[i].points;
        }
    }
    return rule->points;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Moves an activity's newest cap window forward by `shift` windows: the count of the old newest
 * window and of the past ones slide back, the ones past LP_CAP_PAST are forgotten. */
static void shift_windows(uint16_t past[LP_CAP_PAST], uint64_t shift, int32_t newest_count) {
    for (int k = LP_CAP_PAST - 1; k >= 0; k--) {
        if ((uint64_t)k + 1 == shift) {
            past[k] = (uint16_t)newest_count;
        } else {
            past[k] = (uint64_t)k >= shift ? past[(uint64_t)k - shift] : 0;
        }
    }
}

/* Counts the event against its activity's cap in the event's own window; false if that window is
 * full, or older than the LP_CAP_PAST windows kept before the activity's newest one. `window` is
 * the index of the event's cap window. */
static bool within_cap(lp_lead_t *lead, int idx, const lp_activity_rule_t *rule, int64_t window) {
    lp_lead_activity_t *act = &lead->act[idx];
    uint16_t *past = lead->cap_past[idx];
    if (rule->cap_count <= 0) {
        return true;
    }
    if (act->cap_count == 0 && act->cap_window == 0) {
        memset(past, 0, sizeof(lead->cap_past[idx]));
        act->cap_window = window;
    } else if (window > act->cap_window) {
        shift_windows(past, (uint64_t)window - (uint64_t)act->cap_window, act->cap_count);
        act->cap_window = window;
        act->cap_count = 0;
    }
    if (window == act->cap_window) {
        if (act->cap_count >= rule->cap_count) {
            return false;
        }
        act->cap_count++;
        return true;
    }
    uint64_t back = (uint64_t)act->cap_window - (uint64_t)window;
    if (back > LP_CAP_PAST || past[back - 1] >= rule->cap_count) {
        return false;
    }
    past[back - 1]++;
    return true;
}

/* What an engagement is worth, from the event and the rules alone. lp_score_apply works it out
 * before it reads the lead, so it runs (the cap window's division included) while the lead's
 * lines are still on their way. */
typedef struct {
    bool machine;       /* scores nothing, counts toward no cap, is not activity */
    double points;      /* of the first matching condition, else of the activity */
    int64_t cap_window; /* index of the event's cap window: t / cap_window_ms, or 0 */
} worth_t;

static worth_t engagement_worth(const lp_rules_t *rules, int idx, const lp_engagement_t *eng,
                                int64_t t) {
    const lp_activity_rule_t *rule = &rules->activities[idx];
    worth_t w = {true, 0.0, 0};
    if (!is_machine(eng, rules)) {
        w.machine = false;
        w.points = rule_points(rule, eng);
        if (w.points != 0 && rule->cap_count > 0 && rule->cap_window_ms > 0) {
            w.cap_window = floor_div(t, rule->cap_window_ms);
        }
    }
    return w;
}

/* What a recycle at recycled_at_ms left of points earned at t: a late event older than the
 * latest recycle gets what the recycle would have left of it. */
static double after_recycle(const lp_lead_t *lead, const lp_rules_t *rules, double points,
                            int64_t t) {
    if (lead->recycled_at_ms == 0 || t >= lead->recycled_at_ms) {
        return points;
    }
    if (rules->recycle_mode == LP_RECYCLE_RESET) {
        return 0.0;
    }
    if (rules->recycle_mode == LP_RECYCLE_SCALE) {
        return points * (rules->recycle_scale >= 0 ? rules->recycle_scale : 0.0);
    }
    return points;
}

static void apply_engagement(lp_lead_t *lead, const lp_rules_t *rules, int idx, worth_t worth,
                             int64_t t) {
    const lp_activity_rule_t *rule = &rules->activities[idx];
    lp_lead_activity_t *act = &lead->act[idx];
    bool counts = false;

    if (!worth.machine) {
        double points = worth.points;
        counts = points > 0 || rule->is_engagement;
        if (points != 0 && within_cap(lead, idx, rule, worth.cap_window)) {
            /* A late event adds what its points have decayed to by ref_ms. */
            double add =
                after_recycle(lead, rules, points, t) * lp_core_decay(rules, lead->ref_ms, t);
            act->points = lp_core_flush_tiny(act->points + add);
            sum_up(lead, rules);
        }
        if (counts && t > lead->last_activity_ms) {
            lead->last_activity_ms = t;
        }
    }
    maybe_rearm(lead, rules);
    /* A recycled lead leaves recycled by engaging after the recycle: an event dated before it
     * (arriving late) happened while sales still had the lead. */
    bool after_recycle_time = lead->recycled_at_ms == 0 || t > lead->recycled_at_ms;
    bool moves = counts ? (lead->stage == LP_STAGE_SUSPECT || lead->stage == LP_STAGE_RESPONDER ||
                           lead->stage == LP_STAGE_WARM ||
                           (lead->stage == LP_STAGE_RECYCLED && after_recycle_time))
                        : (lead->stage == LP_STAGE_RESPONDER || lead->stage == LP_STAGE_WARM);
    if (moves) {
        lead->stage = funnel_stage(lead, rules);
    }
}

static void set_dq_reason(lp_lead_t *lead, const lp_match_rule_t *dq) {
    const char *reason = dq == NULL ? "" : dq->reason[0] != '\0' ? dq->reason : "disqualified";
    size_t len = strnlen(reason, LP_NAME_MAX);
    memcpy(lead->dq_reason, reason, len);
    lead->dq_reason[len] = '\0';
}

static void apply_profile(lp_lead_t *lead, const lp_rules_t *rules,
                          const lp_profile_update_t *update, int64_t t) {
    lp_core_profile_merge(&lead->profile, lead->profile_ms, update, t);
    lp_core_account_id_merge(&lead->profile, &lead->account_id_ms, update->account_id, t);
    /* Recomputed from the whole current profile: a field changed twice never counts twice. */
    lead->fit_points = lp_core_fit_points(rules, &lead->profile);
    lead->fit_grade = lp_core_fit_grade(rules, lead->fit_points);
    set_dq_reason(lead, lp_core_dq_match(rules, &lead->profile));
    if (lead->dq_reason[0] != '\0' && is_open_stage(lead->stage)) {
        lead->stage = LP_STAGE_DISQUALIFIED;
    } else if (lead->dq_reason[0] == '\0' && lead->stage == LP_STAGE_DISQUALIFIED) {
        lead->stage = funnel_stage(lead, rules);
    }
}

/* A rejection's effect on the score, whenever it arrives: E as it is now is reset or scaled. */
static void recycle_score(lp_lead_t *lead, const lp_rules_t *rules) {
    int n = lp_core_nactivities(rules);
    if (rules->recycle_mode == LP_RECYCLE_RESET) {
        for (int i = 0; i < n; i++) {
            lead->act[i].points = 0.0;
        }
    } else if (rules->recycle_mode == LP_RECYCLE_SCALE) {
        double scale = rules->recycle_scale >= 0 ? rules->recycle_scale : 0.0;
        for (int i = 0; i < n; i++) {
            lead->act[i].points = lp_core_flush_tiny(lead->act[i].points * scale);
        }
    }
    sum_up(lead, rules);
}

/* Feedback is ordered by its own time: the stage follows the latest decision (feedback_ms); a
 * close (won/lost) is terminal for decisions dated after it and overrides those before it. */
static void apply_feedback(lp_lead_t *lead, const lp_rules_t *rules, const lp_feedback_t *fb,
                           int64_t t) {
    bool closed = lead->stage == LP_STAGE_CLOSED_WON || lead->stage == LP_STAGE_CLOSED_LOST;
    bool latest = lead->feedback_ms == 0 || t >= lead->feedback_ms;

    switch (fb->outcome) {
    case LP_FB_WON:
    case LP_FB_LOST:
        /* Terminal; won and lost may still correct each other (the later one stands). */
        if (!closed || latest) {
            lead->stage = fb->outcome == LP_FB_WON ? LP_STAGE_CLOSED_WON : LP_STAGE_CLOSED_LOST;
            lead->armed = false;
            lead->feedback_ms = t;
        }
        break;
    case LP_FB_ACCEPTED:
        if (t > lead->accepted_ms) {
            lead->accepted_ms = t;
        }
        if (!closed && latest) {
            lead->stage = LP_STAGE_SQL;
            lead->feedback_ms = t;
        }
        break;
    case LP_FB_REJECTED:
    case LP_FB_RECYCLED:
        if (closed && latest) {
            break; /* dated after the close: ignored */
        }
        lead->reject_count++;
        if (lead->recycled_at_ms == 0 || t >= lead->recycled_at_ms) {
            lead->reject_reason = (uint8_t)fb->reason;
            lead->recycled_at_ms = t;
        }
        recycle_score(lead, rules);
        if (!closed && latest) {
            lead->armed = true;
            lead->stage = lead->dq_reason[0] != '\0' ? LP_STAGE_DISQUALIFIED : LP_STAGE_RECYCLED;
            lead->feedback_ms = t;
        }
        break;
    default:
        break;
    }
    if (fb->owner[0] != '\0') {
        lp_core_owner_merge(&lead->profile, lead->profile_ms, fb->owner, t);
    }
}

static const char *validate(const lp_event_t *event, const lp_rules_t *rules, int *idx) {
    switch (event->kind) {
    case LP_EV_ENGAGEMENT:
        *idx = lp_core_activity_index(rules, event->u.engagement.type);
        return *idx < 0 ? "unknown activity type" : NULL;
    case LP_EV_PROFILE:
        return NULL;
    case LP_EV_FEEDBACK:
        if ((unsigned)event->u.feedback.outcome >= LP_FB__COUNT) {
            return "unknown feedback outcome";
        }
        return (unsigned)event->u.feedback.reason >= LP_REJ__COUNT ? "unknown reject reason" : NULL;
    default:
        return "unknown event kind";
    }
}

const char *lp_score_check(const lp_event_t *event, const lp_rules_t *rules) {
    int idx;
    return validate(event, rules, &idx);
}

/* A lead the cache does not hold costs a memory round trip per line it touches. Asking for all
 * of them up front lets the misses overlap instead of queueing behind one another: the scalars
 * and the remembered ids (contiguous: the slots in use are the ring's first), then the
 * per-activity state. */
static inline void prefetch_lead(const lp_lead_t *lead, const lp_rules_t *rules) {
    uintptr_t line = (uintptr_t)lead & ~(uintptr_t)63;
    uintptr_t end = (uintptr_t)&lead->seen[dedup_window(rules)];
    for (; line < end; line += 64) {
        __builtin_prefetch((const void *)line, 1);
    }
    line = (uintptr_t)lead->act & ~(uintptr_t)63;
    end = (uintptr_t)&lead->act[lp_core_nactivities(rules)];
    for (; line < end; line += 64) {
        __builtin_prefetch((const void *)line, 1);
    }
}

lp_apply_result_t lp_score_apply(lp_lead_t *lead, const lp_event_t *event, const lp_rules_t *rules,
                                 lp_facts_t *facts) {
    lp_apply_result_t res = {LP_APPLIED, false, false, NULL};
    int idx = -1;
    worth_t worth = {true, 0.0, 0};
    int window = dedup_window(rules);
    uint64_t h = 0;
    int64_t t = event->ts_ms;

    prefetch_lead(lead, rules);
    res.reason = validate(event, rules, &idx);
    if (res.reason != NULL) {
        res.outcome = LP_DEAD_LETTER;
        return res;
    }
    if (event->kind == LP_EV_ENGAGEMENT) {
        worth = engagement_worth(rules, idx, &event->u.engagement, t);
    }
    if (window > 0) {
        h = lp_hash64(event->event_id, strnlen(event->event_id, LP_ID_MAX), LP_CORE_SEED_DEDUP) &
            LP_SEEN_MASK;
        if (seen_contains(lead, h)) {
            res.duplicate = true;
            return res;
        }
    }
    /* Event-time semantics: whatever fell due before this event happened first. */
    if (lp_core_any_due(lead, t)) {
        lp_core_fire_timers(lead, rules, t, facts, EVENT_FACT_RESERVE);
    }
    if (window > 0) {
        seen_add(lead, window, h);
    }
    res.changed = true;
    advance_to(lead, rules, t);
    maybe_rearm(lead, rules);

    switch (event->kind) {
    case LP_EV_ENGAGEMENT:
        apply_engagement(lead, rules, idx, worth, t);
        break;
    case LP_EV_PROFILE:
        apply_profile(lead, rules, &event->u.profile, t);
        break;
    case LP_EV_FEEDBACK:
        apply_feedback(lead, rules, &event->u.feedback, t);
        break;
    }
    maybe_qualify(lead, rules, facts);
    lp_core_update_timers(lead, rules);
    /* Negative points can take an MQL below the re-arm level right now: cool it at once. */
    if (lp_core_any_due(lead, lead->ref_ms)) {
        lp_core_fire_timers(lead, rules, lead->ref_ms, facts, 0);
    }
    return res;
}

void lp_lead_init(lp_lead_t *lead, const lp_rules_t *rules, const char *lead_id) {
    memset(lead, 0, sizeof(*lead));
    if (lead_id != NULL) {
        size_t len = strnlen(lead_id, LP_ID_MAX);
        memcpy(lead->lead_id, lead_id, len);
    }
    lead->score = 0.0;
    lead->stage = LP_STAGE_SUSPECT;
    lead->armed = true;
    lead->profile.company_size = -1;
    lead->fit_points = lp_core_fit_points(rules, &lead->profile);
    lead->fit_grade = lp_core_fit_grade(rules, lead->fit_points);
}
