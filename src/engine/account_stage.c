/* Stage 2 in memory (include/leadpulse/account_stage.h): a binary heap of buffered records in
 * lp_member_msg_cmp order (of pointers: a record is ~600 bytes, and sifting moved three copies
 * per level), the sources' marks, and the accounts in an open-addressing table. */
#include <stdlib.h>
#include <string.h>

#include "engine/account_table.h"
#include "leadpulse/account_stage.h"

struct lp_acct_stage {
    const lp_rules_t *rules;
    lp_acct_stage_stats_t st;
    /* marks */
    int32_t sources;
    int64_t *mark; /* per source, INT64_MIN until its first mark */
    /* buffered records */
    lp_member_msg_t **heap;
    size_t nheap, cap_heap;
    bool have_last;
    lp_member_msg_t last; /* the last record applied */
    /* accounts: key -> lp_account_state_t * */
    acct_table_t accounts;
    lp_account_fact_t facts[LP_ACCOUNT_APPLY_FACTS];
};

static void free_account(void *value) {
    lp_account_free(value);
    free(value);
}

lp_acct_stage_t *lp_acct_stage_new(const lp_rules_t *rules) {
    lp_acct_stage_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->rules = rules;
    return s;
}

void lp_acct_stage_free(lp_acct_stage_t *s) {
    if (s == NULL) {
        return;
    }
    acct_table_clear(&s->accounts, free_account);
    for (size_t i = 0; i < s->nheap; i++) {
        free(s->heap[i]);
    }
    free(s->heap);
    free(s->mark);
    free(s);
}

const lp_acct_stage_stats_t *lp_acct_stage_stats(const lp_acct_stage_t *s) {
    return &s->st;
}

/* ---- accounts ---------------------------------------------------------------------------- */

const lp_account_state_t *lp_acct_stage_account(const lp_acct_stage_t *s, const char *key) {
    const lp_account_state_t *a = acct_table_get(&s->accounts, key);
    return a != NULL && a->nmembers > 0 ? a : NULL;
}

/* The account of key, created empty when new. NULL on no memory. */
static lp_account_state_t *account_for(lp_acct_stage_t *s, const char *key) {
    lp_account_state_t *a = acct_table_get(&s->accounts, key);
    if (a != NULL) {
        return a;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        return NULL;
    }
    lp_account_init(a);
    if (acct_table_put(&s->accounts, key, a) != LP_OK) {
        free(a);
        return NULL;
    }
    return a;
}

/* ---- heap -------------------------------------------------------------------------------- */

static void heap_swap(lp_member_msg_t **a, lp_member_msg_t **b) {
    lp_member_msg_t *t = *a;
    *a = *b;
    *b = t;
}

static int heap_push(lp_acct_stage_t *s, const lp_member_msg_t *m) {
    if (s->nheap == s->cap_heap) {
        size_t cap = s->cap_heap ? s->cap_heap * 2 : 256;
        lp_member_msg_t **h = realloc(s->heap, cap * sizeof(*h));
        if (h == NULL) {
            return LP_ERR;
        }
        s->heap = h;
        s->cap_heap = cap;
    }
    lp_member_msg_t *copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        return LP_ERR;
    }
    *copy = *m;
    size_t i = s->nheap++;
    s->heap[i] = copy;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (lp_member_msg_cmp(s->heap[p], s->heap[i]) <= 0) {
            break;
        }
        heap_swap(&s->heap[p], &s->heap[i]);
        i = p;
    }
    return LP_OK;
}

static void heap_pop(lp_acct_stage_t *s, lp_member_msg_t *out) {
    *out = *s->heap[0];
    free(s->heap[0]);
    s->heap[0] = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && lp_member_msg_cmp(s->heap[l], s->heap[m]) < 0) {
            m = l;
        }
        if (r < s->nheap && lp_member_msg_cmp(s->heap[r], s->heap[m]) < 0) {
            m = r;
        }
        if (m == i) {
            break;
        }
        heap_swap(&s->heap[i], &s->heap[m]);
        i = m;
    }
}

/* ---- input ------------------------------------------------------------------------------- */

int lp_acct_stage_add(lp_acct_stage_t *s, const lp_member_msg_t *m) {
    if (m->type == LP_MW_MARK) {
        s->st.marks++;
        if (m->sources != s->sources) {
            int64_t *mark = realloc(s->mark, (size_t)m->sources * sizeof(*mark));
            if (mark == NULL) {
                return LP_ERR;
            }
            for (int32_t i = s->sources; i < m->sources; i++) {
                mark[i] = INT64_MIN;
            }
            s->mark = mark;
            s->sources = m->sources;
        }
        if (m->st_ms > s->mark[m->source]) {
            s->mark[m->source] = m->st_ms;
        }
        return LP_OK;
    }
    s->st.records++;
    if (s->have_last) {
        int c = lp_member_msg_cmp(m, &s->last);
        if (c <= 0) {
            if (c == 0) {
                s->st.copies++;
            } else {
                s->st.late++;
            }
            return LP_OK;
        }
    }
    if (heap_push(s, m) != LP_OK) {
        return LP_ERR;
    }
    s->st.buffered = s->nheap;
    return LP_OK;
}

int64_t lp_acct_stage_watermark(const lp_acct_stage_t *s) {
    if (s->sources == 0) {
        return INT64_MIN;
    }
    int64_t w = INT64_MAX;
    for (int32_t i = 0; i < s->sources; i++) {
        if (s->mark[i] < w) {
            w = s->mark[i];
        }
    }
    return w;
}

/* ---- release ----------------------------------------------------------------------------- */

static int emit_all(lp_acct_stage_t *s, size_t n, lp_acct_emit_fn emit, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        if (s->facts[i].kind == LP_ACCOUNT_FACT_QUALIFIED) {
            s->st.qualified++;
        } else {
            s->st.stale++;
        }
        if (emit(ctx, &s->facts[i]) != LP_OK) {
            return LP_ERR;
        }
    }
    return LP_OK;
}

static int fire(lp_acct_stage_t *s, lp_account_state_t *a, int64_t now, lp_acct_emit_fn emit,
                void *ctx) {
    size_t n = 0;
    int64_t due = lp_account_next_deadline(a);
    if (a->nmembers == 0 || due == 0 || due > now) {
        return LP_OK;
    }
    if (lp_account_fire_timers(a, s->rules, now, s->facts, LP_ACCOUNT_TIMER_FACTS, &n) == LP_ERR) {
        return LP_ERR;
    }
    return emit_all(s, n, emit, ctx);
}

typedef struct {
    int64_t due;
    const char *key;
    lp_account_state_t *a;
} due_t;

typedef struct {
    int64_t w;
    due_t *due;
    size_t n, cap;
    bool oom;
} due_list_t;

/* An account with a timer due at or before the watermark joins the list. */
static void collect_due(void *ctx, const char *key, void *value) {
    due_list_t *dl = ctx;
    lp_account_state_t *a = value;
    int64_t d = a->nmembers > 0 ? lp_account_next_deadline(a) : 0;
    if (d == 0 || d > dl->w || dl->oom) {
        return;
    }
    if (dl->n == dl->cap) {
        size_t cap = dl->cap ? dl->cap * 2 : 64;
        due_t *grown = realloc(dl->due, cap * sizeof(*grown));
        if (grown == NULL) {
            dl->oom = true;
            return;
        }
        dl->due = grown;
        dl->cap = cap;
    }
    dl->due[dl->n++] = (due_t){d, key, a};
}

static int due_cmp(const void *x, const void *y) {
    const due_t *a = x, *b = y;
    if (a->due != b->due) {
        return a->due < b->due ? -1 : 1;
    }
    return strcmp(a->key, b->key);
}

int lp_acct_stage_pop(lp_acct_stage_t *s, int64_t w, lp_member_msg_t *m) {
    while (s->nheap > 0 && s->heap[0]->st_ms < w) {
        heap_pop(s, m);
        if (s->have_last && lp_member_msg_cmp(m, &s->last) == 0) {
            s->st.copies++; /* a copy buffered with its original */
            continue;
        }
        s->last = *m;
        s->have_last = true;
        s->st.buffered = s->nheap;
        return 1;
    }
    s->st.buffered = s->nheap;
    return 0;
}

int lp_acct_stage_unpop(lp_acct_stage_t *s, const lp_member_msg_t *msgs, size_t n,
                        const lp_member_msg_t *prev) {
    for (size_t i = 0; i < n; i++) {
        if (heap_push(s, &msgs[i]) != LP_OK) {
            return LP_ERR;
        }
    }
    s->have_last = prev != NULL;
    if (prev != NULL) {
        s->last = *prev;
    }
    s->st.buffered = s->nheap;
    return LP_OK;
}

void lp_acct_stage_set_last(lp_acct_stage_t *s, const lp_member_msg_t *last) {
    s->last = *last;
    s->have_last = true;
}

const lp_member_msg_t *lp_acct_stage_last(const lp_acct_stage_t *s) {
    return s->have_last ? &s->last : NULL;
}

int64_t lp_acct_stage_low_offset(const lp_acct_stage_t *s) {
    int64_t low = INT64_MAX;
    for (size_t i = 0; i < s->nheap; i++) {
        if (s->heap[i]->offset >= 0 && s->heap[i]->offset < low) {
            low = s->heap[i]->offset;
        }
    }
    return low;
}

int64_t lp_acct_stage_next_st(const lp_acct_stage_t *s) {
    return s->nheap > 0 ? s->heap[0]->st_ms : INT64_MAX;
}

int lp_acct_stage_release(lp_acct_stage_t *s, int64_t w, lp_acct_emit_fn emit, void *ctx) {
    lp_member_msg_t m;
    while (lp_acct_stage_pop(s, w, &m) == 1) {
        lp_account_state_t *a = account_for(s, m.rec.account);
        if (a == NULL) {
            return LP_ERR;
        }
        bool had = a->nmembers > 0;
        if (fire(s, a, m.st_ms, emit, ctx) != LP_OK) {
            return LP_ERR;
        }
        size_t n = 0;
        if (lp_account_apply(a, s->rules, &m.rec, s->facts, LP_ACCOUNT_APPLY_FACTS, &n) == LP_ERR) {
            return LP_ERR;
        }
        s->st.applied++;
        s->st.accounts += (a->nmembers > 0) - had;
        if (emit_all(s, n, emit, ctx) != LP_OK) {
            return LP_ERR;
        }
    }
    s->st.buffered = s->nheap;
    /* the timers the watermark passed, in (deadline, key) order */
    due_list_t dl = {w, NULL, 0, 0, false};
    acct_table_foreach(&s->accounts, collect_due, &dl);
    if (dl.oom) {
        free(dl.due);
        return LP_ERR;
    }
    if (dl.n > 1) {
        qsort(dl.due, dl.n, sizeof(*dl.due), due_cmp);
    }
    int rc = LP_OK;
    for (size_t i = 0; i < dl.n && rc == LP_OK; i++) {
        rc = fire(s, dl.due[i].a, w, emit, ctx);
    }
    free(dl.due);
    return rc;
}
