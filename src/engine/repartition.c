/* Moving leads' stored state after the input topics grew (leadpulse/repartition.h). Three scans
 * of the old partitions: plan (checks, counts), copy (moved leads and their timers into their
 * new partitions), delete (the moved leads from their old partitions), with the suppression
 * entries copied between the last two. Each phase only depends on what is stored, so a run
 * interrupted anywhere is finished by running it again. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadpulse/account_engine.h"
#include "leadpulse/account_state.h"
#include "leadpulse/repartition.h"
#include "leadpulse/score.h"

typedef struct {
    lp_store_t *store;
    const lp_rules_t *rules;
    const lp_repartition_opts_t *o;
    lp_repartition_result_t *res;
    size_t page;
    int64_t *epochs;         /* epochs[q] after the fence */
    lp_lead_t *lead;         /* decode scratch */
    lp_account_state_t acct; /* decode scratch (accounts) */
    int32_t base;            /* store partition of partition 0: 0, or LP_ACCOUNT_PARTITION_BASE */
    char *errstr;
    size_t errstr_size;
} rp_t;

/* One lead of a scan page, copied out of the store's memory. */
typedef struct {
    int32_t q;
    char *id;
    uint8_t *data;
    size_t len;
    int64_t due;
} item_t;

static int fail(rp_t *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(rp_t *rp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rp->errstr, rp->errstr_size, fmt, ap);
    va_end(ap);
    return LP_ERR;
}

static const char *pname(const rp_t *rp) {
    return rp->o->accounts ? "account partition" : "partition";
}

static int commit_failed(rp_t *rp, int rc, int32_t partition, const char *what) {
    if (rc == LP_STORE_FENCED) {
        return fail(rp,
                    "%s %" PRId32 ": %s refused: another writer fenced the partition "
                    "(is a worker running?). Stop every worker, then run repartition again",
                    pname(rp), partition, what);
    }
    return fail(rp, "%s %" PRId32 ": %s: %s", pname(rp), partition, what, rp->store->errstr);
}

static int32_t part_of(const rp_t *rp, const char *id, int32_t count) {
    return lp_partition_of(rp->o->accounts ? LP_PARTITIONER_CRC32 : rp->o->partitioner, id,
                           strlen(id), count);
}

/* Entries that are the partition's own and never move: an account partition's last applied
 * record. */
static bool pinned(const rp_t *rp, const char *id) {
    return rp->o->accounts && strcmp(id, LP_ACCOUNT_APPLIED_KEY) == 0;
}

/* A forgotten account's tombstone: deleted from its old partition, not copied. */
static bool tombstone(const rp_t *rp, const uint8_t *data, size_t len) {
    return rp->o->accounts && lp_account_is_tombstone(data, len);
}

static const char *what(const rp_t *rp) {
    return rp->o->accounts ? "accounts" : "leads";
}

/* The store partition of partition p (of the input topics, or account partition p). */
static int32_t sp(const rp_t *rp, int32_t p) {
    return rp->base + p;
}

static int check_outbox(rp_t *rp, int32_t p) {
    lp_store_outbox_list_t list = {0};
    if (lp_store_outbox_read(rp->store, sp(rp, p), 1, &list) != LP_OK) {
        return fail(rp, "%s %" PRId32 ": read outbox: %s", pname(rp), p, rp->store->errstr);
    }
    if (list.n > 0) {
        return fail(rp,
                    "%s %" PRId32 ": its outbox holds undelivered records: run the "
                    "workers until every outbox is empty, stop them, then repartition",
                    pname(rp), p);
    }
    return LP_OK;
}

/* Scan 1: outboxes empty, every lead where the partitioner puts it, the moves counted. */
static int plan(rp_t *rp) {
    const int32_t from = rp->o->from, to = rp->o->to;
    for (int32_t p = 0; p < from; p++) {
        if (check_outbox(rp, p) != LP_OK) {
            return LP_ERR;
        }
        int64_t count = -1;
        if (rp->o->accounts && lp_store_get_offset(rp->store, sp(rp, p),
                                                   LP_ACCOUNT_PARTITIONS_OFFSET, &count) != LP_OK) {
            return fail(rp, "%s %" PRId32 ": read offsets: %s", pname(rp), p, rp->store->errstr);
        }
        if (count >= 0 && count != from && count != to) {
            return fail(rp,
                        "%s %" PRId32 " was written with %" PRId64
                        " partitions of the members topic, not %" PRId32
                        ": wrong --from? Nothing was changed",
                        pname(rp), p, count, from);
        }
        uint64_t cursor = 0, misplaced = 0;
        do {
            lp_store_scan_t page = {0};
            if (lp_store_scan(rp->store, sp(rp, p), &cursor, rp->page, &page) != LP_OK) {
                return fail(rp, "%s %" PRId32 ": scan: %s", pname(rp), p, rp->store->errstr);
            }
            for (size_t i = 0; i < page.n; i++) {
                if (pinned(rp, page.ids[i])) {
                    continue;
                }
                int32_t home = part_of(rp, page.ids[i], from), q = part_of(rp, page.ids[i], to);
                if (home == p) {
                    rp->res->leads_total++;
                    if (q != p) {
                        rp->res->moves[(size_t)p * (size_t)to + (size_t)q]++;
                        rp->res->leads_moved++;
                    }
                } else if (q != p) {
                    misplaced++;
                }
                /* else: moved here by an earlier, interrupted run */
            }
        } while (cursor != 0);
        if (misplaced > 0) {
            return fail(
                rp,
                "%s %" PRId32 " holds %" PRIu64 " %s that %s puts neither there with %" PRId32
                " partitions nor with %" PRId32 ": wrong %s? Nothing was changed",
                pname(rp), p, misplaced, what(rp),
                lp_partitioner_name(rp->o->accounts ? LP_PARTITIONER_CRC32 : rp->o->partitioner),
                from, to, rp->o->accounts ? "--from" : "--partitioner or --from");
        }
    }
    return LP_OK;
}

static void free_items(item_t *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(items[i].id);
        free(items[i].data);
    }
}

static int by_partition(const void *a, const void *b) {
    const item_t *x = a, *y = b;
    return (x->q > y->q) - (x->q < y->q);
}

/* Commits items[0..n) (sorted by q) into their partitions: leads and timers, no offsets. */
static int copy_items(rp_t *rp, item_t *items, size_t n, lp_store_lead_t *leads,
                      lp_store_timer_t *timers) {
    qsort(items, n, sizeof(*items), by_partition);
    for (size_t i = 0; i < n;) {
        int32_t q = items[i].q;
        size_t nl = 0, nt = 0;
        for (; i < n && items[i].q == q; i++) {
            leads[nl++] = (lp_store_lead_t){items[i].id, items[i].data, items[i].len};
            if (items[i].due > 0) {
                timers[nt++] = (lp_store_timer_t){items[i].id, items[i].due};
            }
        }
        lp_store_batch_t b = {.partition = sp(rp, q),
                              .epoch = rp->epochs[q],
                              .nleads = nl,
                              .leads = leads,
                              .ntimers = nt,
                              .timers = timers};
        int rc = lp_store_commit(rp->store, &b);
        if (rc != LP_OK) {
            return commit_failed(
                rp, rc, q, rp->o->accounts ? "copy of moved accounts" : "copy of moved leads");
        }
        rp->res->leads_moved += nl;
        rp->res->timers_moved += nt;
    }
    return LP_OK;
}

/* Scan 2: each moved lead (its stored bytes as they are) and its timer into its new partition. */
static int copy_leads(rp_t *rp) {
    const int32_t to = rp->o->to;
    item_t *items = calloc(rp->page, sizeof(*items));
    lp_store_lead_t *leads = calloc(rp->page, sizeof(*leads));
    lp_store_timer_t *timers = calloc(rp->page, sizeof(*timers));
    int rc = LP_OK;
    if (items == NULL || leads == NULL || timers == NULL) {
        rc = fail(rp, "out of memory");
        goto done;
    }
    rp->res->leads_moved = 0;
    for (int32_t p = 0; p < rp->o->from && rc == LP_OK; p++) {
        uint64_t cursor = 0;
        do {
            lp_store_scan_t page = {0};
            size_t n = 0;
            if (lp_store_scan(rp->store, sp(rp, p), &cursor, rp->page, &page) != LP_OK) {
                rc = fail(rp, "%s %" PRId32 ": scan: %s", pname(rp), p, rp->store->errstr);
                break;
            }
            for (size_t i = 0; i < page.n; i++) {
                if (pinned(rp, page.ids[i])) {
                    continue;
                }
                int32_t q = part_of(rp, page.ids[i], to);
                if (q == p || tombstone(rp, page.data[i], page.len[i])) {
                    continue;
                }
                if (n == rp->page) { /* a page larger than asked for (HSCAN may) */
                    rc = copy_items(rp, items, n, leads, timers);
                    free_items(items, n);
                    n = 0;
                    if (rc != LP_OK) {
                        break;
                    }
                }
                item_t *it = &items[n];
                it->q = q;
                it->len = page.len[i];
                it->id = strdup(page.ids[i]);
                it->data = malloc(page.len[i] > 0 ? page.len[i] : 1);
                if (it->id == NULL || it->data == NULL) {
                    free(it->id);
                    free(it->data);
                    rc = fail(rp, "out of memory");
                    break;
                }
                memcpy(it->data, page.data[i], page.len[i]);
                n++;
                /* A worker's timer entry is the next deadline of the lead (account) it stored. */
                if (rp->o->accounts) {
                    if (lp_account_decode(&rp->acct, it->data, it->len) == LP_OK) {
                        it->due = lp_account_next_deadline(&rp->acct);
                    } else {
                        it->due = 0;
                        rp->res->unreadable++;
                    }
                } else if (lp_lead_decode_keyed(rp->lead, rp->rules, it->id, it->data, it->len) ==
                           LP_OK) {
                    it->due = lp_lead_next_due(rp->lead);
                } else {
                    it->due = 0;
                    rp->res->unreadable++;
                }
            }
            if (rc == LP_OK && n > 0) {
                rc = copy_items(rp, items, n, leads, timers);
            }
            free_items(items, n);
        } while (rc == LP_OK && cursor != 0);
    }
done:
    free(items);
    free(leads);
    free(timers);
    return rc;
}

static int by_hash(const void *a, const void *b) {
    return strcmp(((const lp_store_suppress_t *)a)->hash, ((const lp_store_suppress_t *)b)->hash);
}

/* The partition's suppression entries, copied (sorted by hash). */
static int read_suppressed(rp_t *rp, int32_t p, lp_store_suppress_t **out, size_t *n) {
    const lp_store_suppress_t *entries = NULL;
    size_t count = 0;
    *out = NULL;
    *n = 0;
    if (rp->store->ops->suppressed(rp->store, p, &count, &entries) != LP_OK) {
        return fail(rp, "partition %" PRId32 ": read suppression entries: %s", p,
                    rp->store->errstr);
    }
    if (count == 0) {
        return LP_OK;
    }
    *out = malloc(count * sizeof(**out));
    if (*out == NULL) {
        return fail(rp, "out of memory");
    }
    memcpy(*out, entries, count * sizeof(**out));
    qsort(*out, count, sizeof(**out), by_hash);
    *n = count;
    return LP_OK;
}

/* Every suppression entry of the old partitions into every partition 0..to-1 that lacks it (they
 * name hashes of lead ids: which partition the lead goes to cannot be told). An entry found with
 * different times in two partitions keeps the later (0, "until lifted", counts as latest). */
static int copy_suppressed(rp_t *rp) {
    lp_store_suppress_t *all = NULL, *mine = NULL, *missing = NULL;
    size_t nall = 0, nmine = 0;
    int rc = LP_OK;
    for (int32_t p = 0; p < rp->o->from; p++) {
        if (read_suppressed(rp, p, &mine, &nmine) != LP_OK) {
            rc = LP_ERR;
            goto done;
        }
        lp_store_suppress_t *grown = realloc(all, (nall + nmine + 1) * sizeof(*all));
        if (grown == NULL) {
            rc = fail(rp, "out of memory");
            goto done;
        }
        all = grown;
        if (nmine > 0) {
            memcpy(all + nall, mine, nmine * sizeof(*all));
        }
        nall += nmine;
        free(mine);
        mine = NULL;
    }
    if (nall == 0) {
        goto done;
    }
    qsort(all, nall, sizeof(*all), by_hash);
    size_t u = 0;
    for (size_t i = 0; i < nall; i++) {
        if (u > 0 && strcmp(all[u - 1].hash, all[i].hash) == 0) {
            int64_t a = all[u - 1].until_ms, b = all[i].until_ms;
            all[u - 1].until_ms = a == 0 || b == 0 ? 0 : (a > b ? a : b);
        } else {
            all[u++] = all[i];
        }
    }
    nall = u;
    missing = malloc(nall * sizeof(*missing));
    if (missing == NULL) {
        rc = fail(rp, "out of memory");
        goto done;
    }
    for (int32_t q = 0; q < rp->o->to && rc == LP_OK; q++) {
        if (read_suppressed(rp, q, &mine, &nmine) != LP_OK) {
            rc = LP_ERR;
            break;
        }
        size_t nmiss = 0;
        for (size_t i = 0; i < nall; i++) {
            if (nmine == 0 || bsearch(&all[i], mine, nmine, sizeof(*mine), by_hash) == NULL) {
                missing[nmiss++] = all[i];
            }
        }
        free(mine);
        mine = NULL;
        for (size_t off = 0; off < nmiss; off += rp->page) {
            size_t k = nmiss - off < rp->page ? nmiss - off : rp->page;
            lp_store_batch_t b = {
                .partition = q, .epoch = rp->epochs[q], .nsuppress = k, .suppress = missing + off};
            int c = lp_store_commit(rp->store, &b);
            if (c != LP_OK) {
                rc = commit_failed(rp, c, q, "copy of suppression entries");
                break;
            }
            rp->res->suppress_copied += k;
        }
    }
done:
    free(all);
    free(mine);
    free(missing);
    return rc;
}

/* Scan 3: the moved leads out of their old partitions. Ids are collected over the whole scan
 * first (erasing while the in-memory store walks its table could skip leads), then erased: the
 * commit script's erase removes each one's state, timer and outbox entries (none: checked). */
static int delete_moved(rp_t *rp) {
    int rc = LP_OK;
    char **ids = NULL;
    size_t n = 0, cap = 0;
    for (int32_t p = 0; p < rp->o->from && rc == LP_OK; p++) {
        uint64_t cursor = 0;
        n = 0;
        do {
            lp_store_scan_t page = {0};
            if (lp_store_scan(rp->store, sp(rp, p), &cursor, rp->page, &page) != LP_OK) {
                rc = fail(rp, "%s %" PRId32 ": scan: %s", pname(rp), p, rp->store->errstr);
                break;
            }
            for (size_t i = 0; i < page.n && rc == LP_OK; i++) {
                if (pinned(rp, page.ids[i]) || part_of(rp, page.ids[i], rp->o->to) == p) {
                    continue;
                }
                if (tombstone(rp, page.data[i], page.len[i])) {
                    rp->res->tombstones++;
                }
                if (n == cap) {
                    size_t ncap = cap ? cap * 2 : 1024;
                    char **grown = realloc(ids, ncap * sizeof(*ids));
                    if (grown == NULL) {
                        rc = fail(rp, "out of memory");
                        break;
                    }
                    ids = grown;
                    cap = ncap;
                }
                if ((ids[n] = strdup(page.ids[i])) == NULL) {
                    rc = fail(rp, "out of memory");
                    break;
                }
                n++;
            }
        } while (rc == LP_OK && cursor != 0);
        /* HSCAN may return a lead twice: erasing it twice in one batch is harmless. */
        for (size_t off = 0; rc == LP_OK && off < n; off += rp->page) {
            size_t k = n - off < rp->page ? n - off : rp->page;
            lp_store_batch_t b = {.partition = sp(rp, p),
                                  .epoch = rp->epochs[p],
                                  .nerase = k,
                                  .erase = (const char *const *)(ids + off)};
            int c = lp_store_commit(rp->store, &b);
            if (c != LP_OK) {
                rc = commit_failed(rp, c, p,
                                   rp->o->accounts ? "delete of moved accounts"
                                                   : "delete of moved leads");
                break;
            }
            rp->res->leads_deleted += k;
        }
        for (size_t i = 0; i < n; i++) {
            free(ids[i]);
        }
    }
    free(ids);
    return rc;
}

/* Accounts: every account partition 0..to-1 records the new count. */
static int record_count(rp_t *rp) {
    for (int32_t q = 0; q < rp->o->to; q++) {
        int64_t stored = -1;
        if (lp_store_get_offset(rp->store, sp(rp, q), LP_ACCOUNT_PARTITIONS_OFFSET, &stored) !=
            LP_OK) {
            return fail(rp, "%s %" PRId32 ": read offsets: %s", pname(rp), q, rp->store->errstr);
        }
        if (stored == rp->o->to) {
            continue;
        }
        lp_store_offset_t off = {LP_ACCOUNT_PARTITIONS_OFFSET, rp->o->to, stored};
        lp_store_batch_t b = {
            .partition = sp(rp, q), .epoch = rp->epochs[q], .noffsets = 1, .offsets = &off};
        int c = lp_store_commit(rp->store, &b);
        if (c != LP_OK) {
            return commit_failed(rp, c, q, "record the partition count");
        }
    }
    return LP_OK;
}

int lp_repartition(lp_store_t *store, const lp_rules_t *rules, const lp_repartition_opts_t *opts,
                   lp_repartition_result_t *res, char *errstr, size_t errstr_size) {
    rp_t rp = {.store = store,
               .rules = rules,
               .o = opts,
               .res = res,
               .page = opts != NULL && opts->page > 0 ? opts->page : 500,
               .errstr = errstr,
               .errstr_size = errstr_size,
               .base = opts != NULL && opts->accounts ? LP_ACCOUNT_PARTITION_BASE : 0};
    int rc = LP_ERR;
    lp_account_init(&rp.acct);
    if (errstr_size > 0) {
        errstr[0] = '\0';
    }
    if (res == NULL) {
        snprintf(errstr, errstr_size, "no result");
        return LP_ERR;
    }
    memset(res, 0, sizeof(*res));
    if (store == NULL || rules == NULL || opts == NULL) {
        return fail(&rp, "no store, rules or options");
    }
    if (opts->from < 1 || opts->to <= opts->from || opts->to > LP_PARTITIONS_MAX) {
        return fail(&rp,
                    "the partition count grows: need 1 <= from < to <= %d (got from %" PRId32
                    ", to %" PRId32 ")",
                    LP_PARTITIONS_MAX, opts->from, opts->to);
    }
    if (store->ops->scan == NULL) {
        return fail(&rp, "store %s cannot list its leads (no scan)", store->ops->name);
    }
    res->moves = calloc((size_t)opts->from * (size_t)opts->to, sizeof(*res->moves));
    rp.epochs = calloc((size_t)opts->to, sizeof(*rp.epochs));
    rp.lead = malloc(sizeof(*rp.lead));
    if (res->moves == NULL || rp.epochs == NULL || rp.lead == NULL) {
        fail(&rp, "out of memory");
        goto done;
    }
    if (plan(&rp) != LP_OK) {
        goto done;
    }
    if (opts->dry_run) {
        rc = LP_OK;
        goto done;
    }
    /* From here on no other writer can commit into partitions 0..to-1 with an older epoch. */
    for (int32_t q = 0; q < opts->to; q++) {
        if (lp_store_fence(store, sp(&rp, q), &rp.epochs[q]) != LP_OK) {
            fail(&rp, "%s %" PRId32 ": fence: %s", pname(&rp), q, store->errstr);
            goto done;
        }
        res->epochs_bumped++;
    }
    /* Checked again under the fence: a worker stopped after the planning scan may have written
     * outbox entries since. */
    for (int32_t p = 0; p < opts->from; p++) {
        if (check_outbox(&rp, p) != LP_OK) {
            goto done;
        }
    }
    if (copy_leads(&rp) == LP_OK && (opts->accounts || copy_suppressed(&rp) == LP_OK) &&
        delete_moved(&rp) == LP_OK && (!opts->accounts || record_count(&rp) == LP_OK)) {
        rc = LP_OK;
    }
done:
    free(rp.epochs);
    free(rp.lead);
    lp_account_free(&rp.acct);
    return rc;
}

void lp_repartition_result_free(lp_repartition_result_t *res) {
    if (res != NULL) {
        free(res->moves);
        res->moves = NULL;
    }
}
