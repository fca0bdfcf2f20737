/* Stage 2 in memory (include/leadpulse/account_stage.h): a binary heap of buffered records in
 * lp_member_msg_cmp order, the sources' marks, and the accounts in an open-addressing table. */
#include <stdlib.h>
#include <string.h>

#include "leadpulse/account_stage.h"
#include "leadpulse/hash.h"

typedef struct {
    char *key;
    lp_account_state_t *a;
} slot_t;

struct lp_acct_stage {
    const lp_rules_t *rules;
    lp_acct_stage_stats_t st;
    /* marks */
    int32_t sources;
    int64_t *mark; /* per source, INT64_MIN until its first mark */
    /* buffered records */
    lp_member_msg_t *heap;
    size_t nheap, cap_heap;
    bool have_last;
    lp_member_msg_t last; /* the last record applied */
    /* accounts */
    slot_t *tab;
    size_t ntab, cap_tab; /* cap_tab a power of two */
    lp_account_fact_t facts[LP_ACCOUNT_APPLY_FACTS];
};

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
    for (size_t i = 0; i < s->cap_tab; i++) {
        if (s->tab[i].key != NULL) {
            free(s->tab[i].key);
            lp_account_free(s->tab[i].a);
            free(s->tab[i].a);
        }
    }
    free(s->tab);
    free(s->heap);
    free(s->mark);
    free(s);
}

const lp_acct_stage_stats_t *lp_acct_stage_stats(const lp_acct_stage_t *s) {
    return &s->st;
}

/* ---- accounts ---------------------------------------------------------------------------- */

static size_t key_hash(const char *key) {
    return (size_t)lp_hash64(key, strlen(key), 0x61636374u /* "acct" */);
}

static slot_t *find(const lp_acct_stage_t *s, const char *key) {
    if (s->cap_tab == 0) {
        return NULL;
    }
    size_t j = key_hash(key) & (s->cap_tab - 1);
    while (s->tab[j].key != NULL) {
        if (strcmp(s->tab[j].key, key) == 0) {
            return &s->tab[j];
        }
        j = (j + 1) & (s->cap_tab - 1);
    }
    return NULL;
}

const lp_account_state_t *lp_acct_stage_account(const lp_acct_stage_t *s, const char *key) {
    slot_t *e = find(s, key);
    return e != NULL && e->a->nmembers > 0 ? e->a : NULL;
}

static int grow(lp_acct_stage_t *s) {
    size_t cap = s->cap_tab ? s->cap_tab * 2 : 256;
    slot_t *tab = calloc(cap, sizeof(*tab));
    if (tab == NULL) {
        return LP_ERR;
    }
    for (size_t i = 0; i < s->cap_tab; i++) {
        if (s->tab[i].key != NULL) {
            size_t j = key_hash(s->tab[i].key) & (cap - 1);
            while (tab[j].key != NULL) {
                j = (j + 1) & (cap - 1);
            }
            tab[j] = s->tab[i];
        }
    }
    free(s->tab);
    s->tab = tab;
    s->cap_tab = cap;
    return LP_OK;
}

/* The account of key, created empty when new. NULL on no memory. */
static lp_account_state_t *account_for(lp_acct_stage_t *s, const char *key) {
    slot_t *e = find(s, key);
    if (e != NULL) {
        return e->a;
    }
    if ((s->ntab + 1) * 2 > s->cap_tab && grow(s) != LP_OK) {
        return NULL;
    }
    size_t j = key_hash(key) & (s->cap_tab - 1);
    while (s->tab[j].key != NULL) {
        j = (j + 1) & (s->cap_tab - 1);
    }
    char *k = strdup(key);
    lp_account_state_t *a = calloc(1, sizeof(*a));
    if (k == NULL || a == NULL) {
        free(k);
        free(a);
        return NULL;
    }
    lp_account_init(a);
    s->tab[j].key = k;
    s->tab[j].a = a;
    s->ntab++;
    return a;
}

/* ---- heap -------------------------------------------------------------------------------- */

static void heap_swap(lp_member_msg_t *a, lp_member_msg_t *b) {
    lp_member_msg_t t = *a;
    *a = *b;
    *b = t;
}

static int heap_push(lp_acct_stage_t *s, const lp_member_msg_t *m) {
    if (s->nheap == s->cap_heap) {
        size_t cap = s->cap_heap ? s->cap_heap * 2 : 256;
        lp_member_msg_t *h = realloc(s->heap, cap * sizeof(*h));
        if (h == NULL) {
            return LP_ERR;
        }
        s->heap = h;
        s->cap_heap = cap;
    }
    size_t i = s->nheap++;
    s->heap[i] = *m;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (lp_member_msg_cmp(&s->heap[p], &s->heap[i]) <= 0) {
            break;
        }
        heap_swap(&s->heap[p], &s->heap[i]);
        i = p;
    }
    return LP_OK;
}

static void heap_pop(lp_acct_stage_t *s, lp_member_msg_t *out) {
    *out = s->heap[0];
    s->heap[0] = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && lp_member_msg_cmp(&s->heap[l], &s->heap[m]) < 0) {
            m = l;
        }
        if (r < s->nheap && lp_member_msg_cmp(&s->heap[r], &s->heap[m]) < 0) {
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

static int due_cmp(const void *x, const void *y) {
    const due_t *a = x, *b = y;
    if (a->due != b->due) {
        return a->due < b->due ? -1 : 1;
    }
    return strcmp(a->key, b->key);
}

int lp_acct_stage_pop(lp_acct_stage_t *s, int64_t w, lp_member_msg_t *m) {
    while (s->nheap > 0 && s->heap[0].st_ms < w) {
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
        if (s->heap[i].offset >= 0 && s->heap[i].offset < low) {
            low = s->heap[i].offset;
        }
    }
    return low;
}

int64_t lp_acct_stage_next_st(const lp_acct_stage_t *s) {
    return s->nheap > 0 ? s->heap[0].st_ms : INT64_MAX;
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
    size_t ndue = 0;
    due_t *due = NULL;
    for (size_t i = 0; i < s->cap_tab; i++) {
        lp_account_state_t *a = s->tab[i].a;
        if (s->tab[i].key == NULL || a->nmembers == 0) {
            continue;
        }
        int64_t d = lp_account_next_deadline(a);
        if (d == 0 || d > w) {
            continue;
        }
        due_t *grown = realloc(due, (ndue + 1) * sizeof(*due));
        if (grown == NULL) {
            free(due);
            return LP_ERR;
        }
        due = grown;
        due[ndue++] = (due_t){d, s->tab[i].key, a};
    }
    if (ndue > 1) {
        qsort(due, ndue, sizeof(*due), due_cmp);
    }
    int rc = LP_OK;
    for (size_t i = 0; i < ndue && rc == LP_OK; i++) {
        rc = fire(s, due[i].a, w, emit, ctx);
    }
    free(due);
    return rc;
}
