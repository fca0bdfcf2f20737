/* Stage 2 of account qualification in the worker (docs/architecture.md "Accounts: the second
 * stage"): the members topic is consumed in the same group as the input topics; each of its
 * partitions given to this worker is an account partition of the account engine
 * (leadpulse/account_engine.h), taken by fencing it in the store and read from the offset the
 * store holds. Records go into the partition's ordering buffer as they arrive; steps apply what
 * the sources' marks allow and commit; the account hand-offs leave through the account
 * partition's outbox (worker_outbox.c). Stage 1's clock marks are sent from here too. */
#include "io/worker_internal.h"

#define ACCT_STEPS_PER_PASS 8 /* steps per account partition per loop pass at most */

/* The partition count of a topic (metadata; the topic must exist). -1 with a reason. */
static int32_t topic_partitions(rd_kafka_t *rk, const char *topic, char *errstr, size_t size) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int32_t n = -1;
    rd_kafka_resp_err_t err =
        rkt != NULL ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : RD_KAFKA_RESP_ERR__FAIL;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, size, "topic %s: metadata: %s", topic, rd_kafka_err2str(err));
    } else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
               md->topics[0].partition_cnt < 1) {
        snprintf(errstr, size, "topic %s: %s", topic,
                 md->topic_cnt == 1 && md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR
                     ? rd_kafka_err2str(md->topics[0].err)
                     : "no partitions");
    } else {
        n = md->topics[0].partition_cnt;
    }
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    if (rkt != NULL) {
        rd_kafka_topic_destroy(rkt);
    }
    return n;
}

int lp_wk_acct_setup(lp_worker_t *worker, char *errstr, size_t size) {
    if (worker->opts.accounts == NULL) {
        return LP_OK;
    }
    const char *members = worker->opts.out_topics[LP_OUT_MEMBER];
    worker->input_parts =
        topic_partitions(worker->producer, worker->opts.in_topics[LP_EV_ENGAGEMENT], errstr, size);
    if (worker->input_parts < 0) {
        return LP_ERR;
    }
    worker->members_parts = topic_partitions(worker->producer, members, errstr, size);
    if (worker->members_parts < 0) {
        size_t n = strlen(errstr);
        snprintf(errstr + n, size - n,
                 " (with `accounts` in the rules the worker needs topics.members: create it with "
                 "as many partitions as the input topics)");
        return LP_ERR;
    }
    if (worker->members_parts > LP_PARTITIONS_MAX) {
        snprintf(errstr, size, "topic %s has more than %d partitions", members, LP_PARTITIONS_MAX);
        return LP_ERR;
    }
    worker->acct_dirty = calloc((size_t)worker->members_parts, sizeof(bool));
    worker->acct_assigned = calloc((size_t)worker->members_parts, sizeof(bool));
    if (worker->acct_dirty == NULL || worker->acct_assigned == NULL) {
        snprintf(errstr, size, "out of memory");
        return LP_ERR;
    }
    lp_acct_engine_set_partitions(worker->opts.accounts, worker->members_parts);
    int checked =
        lp_acct_engine_check_partitions(worker->opts.accounts, worker->members_parts, errstr, size);
    if (checked == LP_ERR) {
        return LP_ERR;
    }
    if (checked == LP_ACCT_UNCHECKED) {
        LP_LOG(LP_LOG_WARN, "worker",
               "accounts: partition count not checked at start (%s); each account partition is "
               "checked when taken",
               errstr);
        errstr[0] = '\0';
    }
    lp_engine_set_member_source_count(worker->engine, worker->input_parts);
    if (lp_engine_set_member_targets(worker->engine, worker->members_parts) != LP_OK) {
        snprintf(errstr, size, "out of memory");
        return LP_ERR;
    }
    LP_LOG(LP_LOG_INFO, "worker",
           "accounts: stage 1 writes to %s (%" PRId32 " partitions) from %" PRId32
           " lead partitions",
           members, worker->members_parts, worker->input_parts);
    return LP_OK;
}

bool lp_wk_acct_topic(const lp_worker_t *worker, const char *topic) {
    return worker->opts.accounts != NULL &&
           strcmp(worker->opts.out_topics[LP_OUT_MEMBER], topic) == 0;
}

/* Takes account partition q, retrying while the store is down; *offset where to read from. */
static int take(lp_worker_t *worker, int32_t q, int64_t *offset) {
    int backoff = BACKOFF_MIN_MS;
    while (!*worker->opts.stop) {
        if (lp_acct_engine_assign(worker->opts.accounts, q, offset) == LP_OK) {
            lp_status_set(worker->opts.status, LP_READY_STORE, true);
            worker->acct_dirty[q] = true; /* what a previous owner left in its outbox */
            return LP_OK;
        }
        worker->store_errors++;
        lp_status_set(worker->opts.status, LP_READY_STORE, false);
        LP_LOG(LP_LOG_WARN, "worker", "taking account partition %" PRId32 ": %s; retrying in %d ms",
               q, lp_acct_engine_errstr(worker->opts.accounts), backoff);
        lp_status_wait(worker->opts.status, backoff, worker->opts.stop);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return LP_ERR;
}

void lp_wk_acct_on_assign(lp_worker_t *worker, rd_kafka_topic_partition_list_t *list) {
    for (int i = 0; i < list->cnt; i++) {
        int32_t q = list->elems[i].partition;
        if (!lp_wk_acct_topic(worker, list->elems[i].topic) || q < 0 ||
            q >= worker->members_parts) {
            continue;
        }
        worker->acct_assigned[q] = true;
        int64_t offset = -1;
        if (take(worker, q, &offset) != LP_OK) {
            continue;
        }
        list->elems[i].offset = offset >= 0 ? offset : RD_KAFKA_OFFSET_BEGINNING;
        LP_LOG(LP_LOG_INFO, "worker", "account partition %" PRId32 " assigned (offset %" PRId64 ")",
               q, offset);
    }
}

void lp_wk_acct_on_revoke(lp_worker_t *worker, rd_kafka_topic_partition_list_t *list) {
    for (int i = 0; i < list->cnt; i++) {
        int32_t q = list->elems[i].partition;
        if (!lp_wk_acct_topic(worker, list->elems[i].topic) || q < 0 ||
            q >= worker->members_parts) {
            continue;
        }
        worker->acct_assigned[q] = false;
        if (lp_acct_engine_owns(worker->opts.accounts, q)) {
            lp_acct_engine_revoke(worker->opts.accounts, q);
            LP_LOG(LP_LOG_INFO, "worker", "account partition %" PRId32 " revoked", q);
        }
    }
}

void lp_wk_acct_add(lp_worker_t *worker, rd_kafka_message_t *m) {
    int32_t q = m->partition;
    char why[256];
    if (q >= 0 && q < worker->members_parts && lp_acct_engine_owns(worker->opts.accounts, q) &&
        lp_acct_engine_add(worker->opts.accounts, q, m->payload, m->len, m->offset, why,
                           sizeof(why)) != LP_OK) {
        uint64_t held = 0;
        worker->acct_malformed++;
        if (lp_log_limit(&worker->acct_log, 5, &held)) {
            LP_LOG(LP_LOG_WARN, "worker",
                   "%s [%" PRId32 "] offset %" PRId64 ": %s; skipped (%" PRIu64 " more held back)",
                   rd_kafka_topic_name(m->rkt), q, m->offset, why, held);
        }
    }
    rd_kafka_message_destroy(m);
}

/* Takes q again from the store after it lost writes: assign, and read from its offset. */
static void retake(lp_worker_t *worker, int32_t q) {
    int64_t offset = -1;
    worker->lost_writes++;
    if (!worker->acct_assigned[q] || take(worker, q, &offset) != LP_OK) {
        return;
    }
    /* an async seek (librdkafka 2.0.2's seek_partitions has a broken timeout) */
    rd_kafka_topic_t *rkt =
        rd_kafka_topic_new(worker->consumer, worker->opts.out_topics[LP_OUT_MEMBER], NULL);
    if (rkt != NULL) {
        rd_kafka_resp_err_t err =
            rd_kafka_seek(rkt, q, offset >= 0 ? offset : RD_KAFKA_OFFSET_BEGINNING, 0);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            LP_LOG(LP_LOG_ERROR, "worker", "seek account partition %" PRId32 ": %s", q,
                   rd_kafka_err2str(err));
        }
        rd_kafka_topic_destroy(rkt);
    }
    LP_LOG(LP_LOG_WARN, "worker",
           "account partition %" PRId32 ": the store lost writes; resumed from offset %" PRId64, q,
           offset);
}

void lp_wk_acct_steps(lp_worker_t *worker) {
    lp_acct_engine_t *ae = worker->opts.accounts;
    if (ae == NULL || worker->outbox_blocked) {
        return;
    }
    for (int32_t q = 0; q < worker->members_parts; q++) {
        for (int k = 0; k < ACCT_STEPS_PER_PASS && lp_acct_engine_ready(ae, q); k++) {
            size_t applied = 0;
            int rc = lp_acct_engine_step(ae, q, &applied);
            if (rc == LP_OK) {
                worker->acct_dirty[q] = true;
                lp_status_set(worker->opts.status, LP_READY_STORE, true);
                continue;
            }
            if (rc == LP_STORE_MOVED) {
                retake(worker, q);
            } else if (rc == LP_STORE_FENCED) {
                LP_LOG(LP_LOG_WARN, "worker", "%s", lp_acct_engine_errstr(ae));
            } else {
                worker->acct_steps_failed++;
                worker->store_errors++;
                lp_status_set(worker->opts.status, LP_READY_STORE, false);
                LP_LOG(LP_LOG_WARN, "worker", "%s", lp_acct_engine_errstr(ae));
            }
            break;
        }
    }
}

void lp_wk_acct_tick(lp_worker_t *worker, int32_t p, int64_t now) {
    if (worker->opts.accounts == NULL) {
        return;
    }
    bool restate = lp_wk_mono_ms() >= worker->acct_restate_ms, marked = false;
    int rc = lp_engine_member_tick(worker->engine, p, now, restate, &marked);
    if (marked) {
        worker->parts[p].outbox_dirty = true;
    }
    if (rc == LP_STORE_MOVED) {
        worker->lost_writes++;
        lp_wk_retake_partition(worker, p, "the store lost writes");
    } else if (rc != LP_OK && rc != LP_STORE_FENCED) {
        worker->store_errors++;
        LP_LOG(LP_LOG_WARN, "worker", "accounts mark of partition %" PRId32 ": %s", p,
               lp_engine_errstr(worker->engine));
    }
}
