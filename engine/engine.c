/* engine.c - N mutex-protected pipelines shared by many threads (see engine.h).
 *
 * A shard is a pipeline, its store and a mutex. Everything that changes a shard's
 * pipeline (scoring, swapping the ruleset or the lists, checkpoints, erasing an
 * account) holds that shard's mutex, so that it happens between two events.
 *
 * Periodic checkpoints do not stop scoring for long, and are still atomic: a checkpoint
 * takes a cut of what changed (vg_pipeline_checkpoint_cut, the shard's mutex held),
 * then encodes the cut's accounts and keys CKPT_SLICE at a time into the shard's batch
 * `cb`, releasing the mutex between two slices (an event that changes an entry of the
 * cut not yet encoded encodes it first, as it was at the cut), and writes the whole
 * batch in one RocksDB write after releasing the mutex, so that events are scored while
 * it encodes and while RocksDB writes, and the store only ever holds whole checkpoints
 * (accounts and `by` keys of one moment: slices written one by one left, after a
 * crash, a key counting an event its account had lost, and so counting it twice when
 * the client sent it again). Writes to a shard's store are ordered by its write mutex
 * `wmu`, taken with `mu` held (lock order: engine ckmu, then shard mu, then shard wmu).
 * A full checkpoint (dry runs, ruleset swaps, erasing, the final one) gives up a cut
 * still being encoded (its entries are dirty again and written by the full one), and
 * waits for a cut being written, so that an older copy of an account never lands after
 * a newer one.
 * The slices are spread out over up to `checkpoint_spread_ms` (a pause between two,
 * without the mutex): the checkpoint's CPU work then comes in small pieces instead of
 * a burst that the request threads would queue behind.
 */
#include "engine/engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine/store.h"
#include "rules/errors.h"

#define CKPT_SLICE 16   /* records per slice of a periodic checkpoint */
#define CKPT_BACKLOG 1024   /* changed records past which slices are CKPT_SLICE_BIG and
                               unpaced: the checkpoint keeps up with the changes (new
                               accounts arriving faster than paced slices of 16 wrote
                               them grew the memory past any budget) */
#define CKPT_SLICE_BIG 256
#define PACE_MAX_NS 1000000L   /* the longest pause between two slices */

typedef struct shard {
    pthread_mutex_t mu;
    pthread_mutex_t wmu;         /* orders writes to the store (see above) */
    uint64_t gen;                /* bumped when the pipeline is replaced */
    vg_batch_t *cb;              /* the cut being encoded and written (shard_checkpoint_sliced) */
    int snap_active;             /* a cut is being encoded into cb */
    uint64_t snap_seq;           /* bumped when a cut is given up */
    vg_pipeline_t *pl;
    vg_store_t *store;
    uint64_t swapped_decided, swapped_dups, swapped_rejected;   /* of freed pipelines */
    vg_state_stats_t swapped_st;  /* their states' loads and evictions */
    uint64_t ckpt_decided;       /* shard_mark at its last checkpoint */
    uint64_t changes;            /* labels and baseline resets applied (not decisions) */
    int carried;                 /* the pipeline carried a state of other rules over: not
                                    written yet */
} shard_t;

/* What the shard changed so far: its pipeline's decisions, labels and baseline resets
 * (a checkpoint, and a dry run's, writes the shard when this moved since the last). */
static uint64_t shard_mark(shard_t *s) {
    vg_pipeline_stats_t st;
    vg_pipeline_get_stats(s->pl, &st);
    return st.decided + s->changes + ((uint64_t)s->carried << 63);
}

/* Adds the loads and evictions of state st to *to. */
static void add_loads(vg_state_stats_t *to, const vg_state_t *st) {
    if (!st) return;
    vg_state_stats_t x;
    vg_state_get_stats(st, &x);
    to->loads += x.loads;
    to->key_loads += x.key_loads;
    to->evictions += x.evictions;
    to->key_evictions += x.key_evictions;
}

/* Gives up the cut being encoded by a periodic checkpoint (shard locked): its entries
 * are dirty again, for the full checkpoint that follows. */
static void shard_cut_abandon(shard_t *s) {
    if (!s->snap_active) return;
    if (s->pl) vg_pipeline_checkpoint_end(s->pl, 0);
    s->snap_active = 0;
    s->snap_seq++;
}

/* Checkpoints the shard (locked) when it decided anything since its last checkpoint:
 * an idle shard costs nothing. */
static int shard_checkpoint(shard_t *s, int sync, char *errbuf, size_t errlen) {
    if (!s->pl) return 0;
    uint64_t mark = shard_mark(s);
    if (mark == s->ckpt_decided && !s->snap_active) return 0;
    pthread_mutex_lock(&s->wmu);   /* after a cut being written, if any */
    shard_cut_abandon(s);
    int rc = vg_pipeline_checkpoint(s->pl, NULL, 0, sync, errbuf, errlen);
    pthread_mutex_unlock(&s->wmu);
    if (!rc) s->ckpt_decided = mark;
    return rc;
}

/* Checkpoints the shard (not locked): a cut of what changed before the call, encoded a
 * slice at a time with the shard's lock released between two slices, then written in
 * one write. What changes meanwhile is written by the next checkpoint. */
static int shard_checkpoint_sliced(shard_t *s, int64_t spread_ms, char *errbuf, size_t errlen) {
    pthread_mutex_lock(&s->mu);
    if (!s->pl || !s->store || !s->cb || s->snap_active) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    uint64_t decided = shard_mark(s), gen = s->gen;
    if (s->ckpt_decided == decided) {
        /* nothing changed: what was loaded since (duplicates read their account from
         * the store) is still dropped to the budget */
        vg_state_evict(vg_pipeline_state(s->pl));
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    vg_batch_clear(s->cb);
    size_t left = 0;
    int rc = vg_pipeline_checkpoint_cut(s->pl, NULL, 0, s->cb, &left);
    if (rc) {
        pthread_mutex_unlock(&s->mu);
        snprintf(errbuf, errlen, "out of memory while writing a checkpoint");
        return rc;
    }
    s->snap_active = 1;
    uint64_t seq = s->snap_seq;
    /* many changes: bigger slices, no pause (the checkpoint keeps up with the changes);
     * else ceil(left / CKPT_SLICE) slices spread over `spread_ms` */
    const int behind = left > CKPT_BACKLOG;
    const size_t slice = behind ? CKPT_SLICE_BIG : CKPT_SLICE;
    long pace_ns = 0;
    if (!behind && spread_ms > 0) {
        long long p = spread_ms * 1000000LL / (long long)(1 + (left + CKPT_SLICE - 1) / CKPT_SLICE);
        pace_ns = p > PACE_MAX_NS ? PACE_MAX_NS : (long)p;
    }
    while (left > 0) {
        rc = vg_pipeline_checkpoint_step(s->pl, slice, &left);
        if (rc) {
            shard_cut_abandon(s);
            pthread_mutex_unlock(&s->mu);
            snprintf(errbuf, errlen, "out of memory while writing a checkpoint");
            return rc;
        }
        if (left == 0) break;
        pthread_mutex_unlock(&s->mu);
        /* spread out (no burst of background work); unpaced, still a short pause, so
         * that a request waiting for the lock gets it (relocking at once could take it
         * again before the waiter woke: requests then waited past their deadline, 429) */
        struct timespec ts = {0, pace_ns > 0 ? pace_ns : 50000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&s->mu);
        if (!s->pl || s->gen != gen || s->snap_seq != seq) {
            /* given up by a full checkpoint, or the pipeline replaced: it wrote it all */
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
    }
    /* the whole cut in one write, events scored meanwhile (a full checkpoint waits) */
    pthread_mutex_lock(&s->wmu);
    pthread_mutex_unlock(&s->mu);
    rc = vg_store_write(s->store, s->cb, 0, errbuf, errlen);
    vg_batch_clear(s->cb);
    pthread_mutex_unlock(&s->wmu);
    pthread_mutex_lock(&s->mu);
    if (s->pl && s->gen == gen && s->snap_seq == seq) {
        vg_pipeline_checkpoint_end(s->pl, rc == 0);
        s->snap_active = 0;
        if (rc == 0) s->ckpt_decided = decided;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

struct vg_engine {
    vg_engine_opts_t o;
    int n;
    shard_t *sh;
    pthread_mutex_t mu;          /* guards prog, lists, version */
    pthread_mutex_t ckmu;        /* one periodic checkpoint at a time */
    vg_program_t *prog;
    vg_lists_t *lists;
    int64_t version;
    atomic_uint_least64_t read_failures;   /* vg_engine_read_failures */
};

void vg_engine_ctx_init(vg_engine_ctx_t *x) { vg_event_init(&x->ev); }
void vg_engine_ctx_deinit(vg_engine_ctx_t *x) { vg_event_deinit(&x->ev); }

static uint64_t hash_account(const char *p, size_t n) {
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int vg_engine_shard_of(const vg_engine_t *e, const char *account, size_t len) {
    if (e->n == 1) return 0;
    return (int)(hash_account(account, len) % (uint64_t)e->n);
}

/* The shard's pipeline; with `reset`, a store holding state of other rules or options
 * starts empty (*was_reset set) instead of being refused. */
static vg_pipeline_t *make_pipeline(vg_engine_t *e, shard_t *s, vg_program_t *p,
                                    int64_t version, vg_lists_t *lists, int reset,
                                    int *was_reset, char *errbuf, size_t errlen) {
    vg_pipeline_opts_t po;
    vg_pipeline_opts_default(&po);
    po.reset_mismatch = reset;
    po.was_reset = was_reset;
    po.lateness_ms = e->o.lateness_ms;
    po.dedupe_horizon_ms = e->o.dedupe_horizon_ms;
    po.mem_budget = e->o.mem_budget;
    po.anomaly = e->o.anomaly;
    po.store = s->store;
    po.ruleset_version = version;
    po.lists = lists;
    if (!reset) return vg_pipeline_new(p, &po, errbuf, errlen);
    int carried = 0;
    vg_pipeline_t *pl = vg_pipeline_open(p, &po, &carried, errbuf, errlen);
    if (carried) {
        fprintf(stderr, "vigil: state in %s was made by other rules (or anomaly setting); carried over to these "
                        "(as a live change of rules would)\n", vg_store_path(s->store));
        /* the store holds the old layout until the carried state is written: the next
         * checkpoint writes it even with nothing decided (a dry run, which reads the
         * store, failed until an event was scored) */
        s->carried = 1;
    }
    return pl;
}

vg_engine_t *vg_engine_new(const vg_engine_opts_t *o, vg_program_t *p, int64_t version,
                           vg_lists_t *lists, char *errbuf, size_t errlen) {
    vg_engine_t *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    e->o = *o;
    e->o.state_dir = NULL;
    e->n = o->shards < 1 ? 1 : o->shards;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->ckmu, NULL);
    e->prog = vg_prog_ref(p);
    e->lists = lists ? vg_lists_ref(lists) : NULL;
    e->version = version;
    e->sh = calloc((size_t)e->n, sizeof(*e->sh));
    if (!e->sh) {
        snprintf(errbuf, errlen, "out of memory");
        goto err;
    }
    for (int i = 0; i < e->n; i++) {
        pthread_mutex_init(&e->sh[i].mu, NULL);
        pthread_mutex_init(&e->sh[i].wmu, NULL);
    }
    for (int i = 0; i < e->n; i++) {
        shard_t *s = &e->sh[i];
        if (o->state_dir) {
            char dir[4096];
            if (e->n == 1) snprintf(dir, sizeof(dir), "%s", o->state_dir);
            else snprintf(dir, sizeof(dir), "%s/shard-%d", o->state_dir, i);
            if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                snprintf(errbuf, errlen, "%s: %s", dir, strerror(errno));
                goto err;
            }
            char err[512];
            s->store = vg_store_open(dir, err, sizeof(err));
            if (!s->store) {
                snprintf(errbuf, errlen, "state %s: %s", dir, err);
                goto err;
            }
            s->cb = vg_batch_new();
            if (!s->cb) {
                snprintf(errbuf, errlen, "out of memory");
                goto err;
            }
        }
        int reset = 0;
        pthread_mutex_lock(&s->wmu);
        s->pl = make_pipeline(e, s, p, version, lists, s->store && o->reset_mismatch, &reset,
                              errbuf, errlen);
        pthread_mutex_unlock(&s->wmu);
        if (reset)
            fprintf(stderr, "vigil: state in %s was made by other rules or options; that state "
                            "starts empty\n", vg_store_path(s->store));
        if (!s->pl) goto err;
    }
    e->o.state_dir = o->state_dir;   /* only non-NULL once stores are open */
    return e;
err:
    vg_engine_free(e);
    return NULL;
}

void vg_engine_free(vg_engine_t *e) {
    if (!e) return;
    for (int i = 0; e->sh && i < e->n; i++) {
        vg_pipeline_free(e->sh[i].pl);
        vg_store_close(e->sh[i].store);
        vg_batch_free(e->sh[i].cb);
        pthread_mutex_destroy(&e->sh[i].mu);
        pthread_mutex_destroy(&e->sh[i].wmu);
    }
    free(e->sh);
    vg_prog_unref(e->prog);
    vg_lists_unref(e->lists);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->ckmu);
    free(e);
}

static int lock_shard(shard_t *s, const struct timespec *deadline) {
    if (!deadline) return pthread_mutex_lock(&s->mu) == 0 ? 0 : VG_ELIMIT;
    int rc = pthread_mutex_timedlock(&s->mu, deadline);
    return rc == 0 ? 0 : VG_ELIMIT;
}

static int write_future(vg_buf_t *out, const vg_event_t *ev, int64_t now, int64_t lim) {
    char reason[200], t1[40], t2[40];
    vg_time_format(ev->ts_ms, t1);
    vg_time_format(now, t2);
    snprintf(reason, sizeof(reason),
             "event time %s is %lld ms ahead of the service clock (%s); at most %lld ms allowed",
             t1, (long long)(ev->ts_ms - now), t2, (long long)lim);
    int rc = vg_buf_puts(out, "{\"id\":");
    if (!rc) rc = vg_json_str(out, ev->id.p, ev->id.len);
    if (!rc) rc = vg_buf_puts(out, ",\"error\":");
    if (!rc) rc = vg_json_str(out, reason, strlen(reason));
    if (!rc) rc = vg_buf_puts(out, ",\"code\":\"future\"}\n");
    return rc;
}

/* Scores in a throw-away pipeline over the shard's store (shard locked). */
static int dry_score(vg_engine_t *e, shard_t *s, const char *body, size_t len, vg_buf_t *out,
                     vg_engine_result_t *res) {
    char err[512];
    int rc = shard_checkpoint(s, 0, err, sizeof(err));
    if (rc) return rc;
    pthread_mutex_lock(&e->mu);
    vg_program_t *p = vg_prog_ref(e->prog);
    vg_lists_t *l = e->lists ? vg_lists_ref(e->lists) : NULL;
    int64_t v = e->version;
    pthread_mutex_unlock(&e->mu);
    vg_pipeline_t *pl = make_pipeline(e, s, p, v, l, 0, NULL, err, sizeof(err));
    vg_prog_unref(p);
    vg_lists_unref(l);
    if (!pl) {   /* not only memory: the store may refuse (the reason is logged) */
        fprintf(stderr, "vigil: a dry run could not open the shard's state: %s\n", err);
        return VG_ESTORE;
    }
    rc = vg_pipeline_line(pl, body, len, out, &res->outcome);
    if (!rc && res->outcome == VG_OUT_REJECTED) res->reject = vg_pipeline_last_reject(pl);
    if (!rc && res->outcome == VG_OUT_DECIDED) res->alert = vg_pipeline_last_alert(pl);
    res->ruleset = v;
    vg_pipeline_free(pl);
    return rc;
}

int vg_engine_score(vg_engine_t *e, vg_engine_ctx_t *x, const char *body, size_t len,
                    int dry_run, const struct timespec *deadline, vg_buf_t *out,
                    vg_engine_result_t *res) {
    memset(res, 0, sizeof(*res));
    if (dry_run && !e->o.state_dir) return VG_EINVAL;
    int sh = 0;
    /* parse once here to route and to check the clock; the pipeline validates again */
    int prc = vg_event_parse(&x->ev, body, len);
    if (prc == VG_ENOMEM) return VG_ENOMEM;
    if (prc == 0) {
        sh = vg_engine_shard_of(e, x->ev.account.p, x->ev.account.len);
        if (e->o.future_ms > 0) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            int64_t nms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
            if (x->ev.ts_ms > nms + e->o.future_ms) {
                res->outcome = VG_OUT_REJECTED;
                res->reject = VG_REJECT_FUTURE;
                return write_future(out, &x->ev, nms, e->o.future_ms);
            }
        }
    }
    shard_t *s = &e->sh[sh];
    int rc = lock_shard(s, deadline);
    if (rc) return rc;
    if (!s->pl) {   /* a failed ruleset swap left no pipeline */
        pthread_mutex_unlock(&s->mu);
        return VG_ESTORE;
    }
    if (dry_run) {
        rc = dry_score(e, s, body, len, out, res);
    } else {
        rc = vg_pipeline_line(s->pl, body, len, out, &res->outcome);
        if (rc == VG_ESTORE) atomic_fetch_add(&e->read_failures, 1);
        if (!rc && res->outcome == VG_OUT_REJECTED) res->reject = vg_pipeline_last_reject(s->pl);
        if (!rc && res->outcome == VG_OUT_DECIDED) res->alert = vg_pipeline_last_alert(s->pl);
        pthread_mutex_lock(&e->mu);
        res->ruleset = e->version;   /* the shard's pipeline was swapped under its lock */
        pthread_mutex_unlock(&e->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Replaces the shard's pipeline (shard locked). */
static int rebuild(vg_engine_t *e, shard_t *s, vg_program_t *p, int64_t version,
                   vg_lists_t *lists, int allow_wipe, char *errbuf, size_t errlen) {
    int rc = shard_checkpoint(s, 0, errbuf, errlen);
    if (rc) return rc;
    vg_pipeline_stats_t st;
    vg_pipeline_get_stats(s->pl, &st);
    add_loads(&s->swapped_st, vg_pipeline_state(s->pl));
    vg_pipeline_t *npl = NULL;
    /* the old pipeline must be gone before the new one reads the store */
    vg_pipeline_free(s->pl);
    s->pl = NULL;
    s->gen++;
    s->swapped_decided += st.decided;
    s->swapped_dups += st.duplicates;
    s->swapped_rejected += st.rejected;
    char err[512];
    int reset = 0;
    pthread_mutex_lock(&s->wmu);
    npl = make_pipeline(e, s, p, version, lists, s->store && allow_wipe, &reset, err,
                        sizeof(err));
    pthread_mutex_unlock(&s->wmu);
    if (reset)
        fprintf(stderr, "vigil: the new ruleset changes the state layout (state in %s was "
                        "made by other rules or options); that state starts empty\n",
                vg_store_path(s->store));
    if (!npl) {
        snprintf(errbuf, errlen, "%s", err);
        return VG_ESTORE;
    }
    s->pl = npl;
    s->ckpt_decided = 0;
    return 0;
}

/* Moves the shard's pipeline (locked) to program p, its state carried over
 * (vg_pipeline_set_program), then writes the moved state at once, so that the store
 * never waits for the next event to hold the new layout. A failed write is only
 * reported: the state stays in memory, dirty, for the next checkpoint. */
static int swap_program(vg_engine_t *e, shard_t *s, vg_program_t *p, int64_t version,
                        vg_lists_t *lists, char *errbuf, size_t errlen) {
    if (!s->pl) {   /* a failed swap left no pipeline: build one */
        char err[512];
        s->pl = make_pipeline(e, s, p, version, lists, 0, NULL, err, sizeof(err));
        if (!s->pl) {
            snprintf(errbuf, errlen, "%s", err);
            return VG_ESTORE;
        }
        s->ckpt_decided = 0;
        return 0;
    }
    shard_cut_abandon(s);   /* a cut in flight belongs to the old layouts */
    int rc = vg_pipeline_set_program(s->pl, p, errbuf, errlen);
    if (rc) return rc;
    vg_pipeline_set_versions(s->pl, version, -1);
    s->gen++;
    char err[512];
    pthread_mutex_lock(&s->wmu);
    int crc = vg_pipeline_checkpoint(s->pl, NULL, 0, 1, err, sizeof(err));
    pthread_mutex_unlock(&s->wmu);
    if (!crc) s->ckpt_decided = shard_mark(s);
    else fprintf(stderr, "vigil: writing the state after a ruleset swap: %s (retried at the "
                         "next checkpoint)\n", err);
    return 0;
}

int vg_engine_set_program(vg_engine_t *e, vg_program_t *p, int64_t version, char *errbuf,
                          size_t errlen) {
    pthread_mutex_lock(&e->mu);
    vg_lists_t *l = e->lists ? vg_lists_ref(e->lists) : NULL;
    vg_program_t *old = vg_prog_ref(e->prog);
    int64_t oldv = e->version;
    pthread_mutex_unlock(&e->mu);
    int rc = 0, done = 0;
    /* lock every shard so that no event is scored with a mix of versions */
    for (int i = 0; i < e->n; i++) pthread_mutex_lock(&e->sh[i].mu);
    for (; !rc && done < e->n; done++) {
        rc = swap_program(e, &e->sh[done], p, version, l, errbuf, errlen);
        if (rc) break;
    }
    if (!rc) {
        pthread_mutex_lock(&e->mu);
        vg_prog_ref(p);
        vg_prog_unref(e->prog);
        e->prog = p;
        e->version = version;
        pthread_mutex_unlock(&e->mu);
    } else {
        /* put the old ruleset back on the shards that took the new one */
        for (int i = 0; i < done; i++) {
            char err[256];
            if (swap_program(e, &e->sh[i], old, oldv, l, err, sizeof(err)))
                fprintf(stderr, "vigil: restoring the previous ruleset: %s\n", err);
        }
    }
    for (int i = e->n - 1; i >= 0; i--) pthread_mutex_unlock(&e->sh[i].mu);
    vg_lists_unref(l);
    vg_prog_unref(old);
    return rc;
}

void vg_engine_set_lists(vg_engine_t *e, vg_lists_t *lists) {
    pthread_mutex_lock(&e->mu);
    if (lists) vg_lists_ref(lists);
    vg_lists_unref(e->lists);
    e->lists = lists;
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->n; i++) {
        pthread_mutex_lock(&e->sh[i].mu);
        if (e->sh[i].pl) vg_pipeline_set_lists(e->sh[i].pl, lists);
        pthread_mutex_unlock(&e->sh[i].mu);
    }
}

int64_t vg_engine_version(vg_engine_t *e) {
    pthread_mutex_lock(&e->mu);
    int64_t v = e->version;
    pthread_mutex_unlock(&e->mu);
    return v;
}

int vg_engine_checkpoint(vg_engine_t *e, int sync, char *errbuf, size_t errlen) {
    int rc = 0;
    pthread_mutex_lock(&e->ckmu);
    for (int i = 0; !rc && i < e->n; i++) {
        if (!sync) {
            rc = shard_checkpoint_sliced(&e->sh[i], e->o.checkpoint_spread_ms, errbuf, errlen);
            continue;
        }
        pthread_mutex_lock(&e->sh[i].mu);
        rc = shard_checkpoint(&e->sh[i], sync, errbuf, errlen);
        pthread_mutex_unlock(&e->sh[i].mu);
    }
    pthread_mutex_unlock(&e->ckmu);
    return rc;
}

int vg_engine_forget(vg_engine_t *e, const char *account, size_t len, char *errbuf,
                     size_t errlen) {
    if (!e->o.state_dir) {
        snprintf(errbuf, errlen, "erasing an account needs a state directory");
        return VG_EINVAL;
    }
    shard_t *s = &e->sh[vg_engine_shard_of(e, account, len)];
    pthread_mutex_lock(&e->mu);
    vg_program_t *p = vg_prog_ref(e->prog);
    vg_lists_t *l = e->lists ? vg_lists_ref(e->lists) : NULL;
    int64_t v = e->version;
    pthread_mutex_unlock(&e->mu);
    pthread_mutex_lock(&s->mu);
    int rc = shard_checkpoint(s, 0, errbuf, errlen);
    if (!rc) {
        pthread_mutex_lock(&s->wmu);
        rc = vg_state_delete_account(s->store, account, len, NULL, errbuf, errlen);
        pthread_mutex_unlock(&s->wmu);
    }
    /* drop the in-memory copy: a fresh pipeline reloads the others from the store */
    if (!rc) rc = rebuild(e, s, p, v, l, 0, errbuf, errlen);
    pthread_mutex_unlock(&s->mu);
    /* the deleted records leave the store's files too (WAL, SST, MANIFEST), without
     * holding the shard meanwhile */
    if (!rc) rc = vg_store_purge_account(s->store, account, len, errbuf, errlen);
    vg_prog_unref(p);
    vg_lists_unref(l);
    return rc;
}

void vg_engine_get_stats(vg_engine_t *e, vg_engine_stats_t *out) {
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < e->n; i++) {
        shard_t *s = &e->sh[i];
        pthread_mutex_lock(&s->mu);
        if (s->pl) {
            vg_pipeline_stats_t ps;
            vg_pipeline_get_stats(s->pl, &ps);
            vg_state_stats_t ss;
            vg_state_get_stats(vg_pipeline_state(s->pl), &ss);
            out->decided += ps.decided;
            out->duplicates += ps.duplicates;
            out->rejected += ps.rejected;
            out->accounts_in_memory += ss.accounts_in_memory;
            out->keys_in_memory += ss.keys_in_memory;
            out->bytes += ss.bytes;
        }
        vg_state_stats_t ls = s->swapped_st;
        if (s->pl) add_loads(&ls, vg_pipeline_state(s->pl));
        out->account_evictions += ls.evictions - ls.key_evictions;
        out->key_evictions += ls.key_evictions;
        out->account_loads += ls.loads;
        out->key_loads += ls.key_loads;
        out->decided += s->swapped_decided;
        out->duplicates += s->swapped_dups;
        out->rejected += s->swapped_rejected;
        pthread_mutex_unlock(&s->mu);
    }
}

/* Labels and baselines go to the shard that owns the account (locked). */
int vg_engine_label(vg_engine_t *e, const vg_label_t *lb, int *matched, char *errbuf,
                    size_t errlen) {
    shard_t *s = &e->sh[vg_engine_shard_of(e, lb->account, lb->alen)];
    pthread_mutex_lock(&s->mu);
    uint64_t ap0 = 0, ap1 = 0, un;
    if (s->pl) vg_pipeline_label_stats(s->pl, &ap0, &un);
    int rc = s->pl ? vg_pipeline_label(s->pl, lb) : VG_ESTORE;
    if (!rc) vg_pipeline_label_stats(s->pl, &ap1, &un);
    if (matched) *matched = !rc && ap1 > ap0;   /* applied: it matched an event */
    if (!rc) s->changes++;   /* for the next checkpoint (and a dry run's) */
    pthread_mutex_unlock(&s->mu);
    if (rc) snprintf(errbuf, errlen, "applying a label: %s", vg_strerror(rc));
    return rc;
}

int vg_engine_reset_baseline(vg_engine_t *e, const char *account, size_t len, char *errbuf,
                             size_t errlen) {
    shard_t *s = &e->sh[vg_engine_shard_of(e, account, len)];
    char err[512];
    pthread_mutex_lock(&s->mu);
    /* durable when answered, as an erasure is: what the shard changed before is written
     * first (a failure changes nothing), then the reset, synchronously (it waited for
     * the next periodic checkpoint: a kill -9 meanwhile brought the old baseline back) */
    int rc = !s->pl ? VG_ESTORE : s->store ? shard_checkpoint(s, 0, err, sizeof(err)) : 0;
    if (rc) {
        pthread_mutex_unlock(&s->mu);
        snprintf(errbuf, errlen, "resetting the baseline: %s",
                 s->pl ? err : vg_strerror(rc));
        return rc;
    }
    rc = vg_pipeline_reset_baseline(s->pl, account, len);
    if (!rc) s->changes++;   /* for the checkpoint (and a dry run's) */
    if (rc) {
        pthread_mutex_unlock(&s->mu);
        snprintf(errbuf, errlen, "resetting the baseline: %s", vg_strerror(rc));
        return rc;
    }
    if (s->store) rc = shard_checkpoint(s, 1, err, sizeof(err));
    pthread_mutex_unlock(&s->mu);
    if (rc)   /* the reset stays in memory, written by a later checkpoint */
        snprintf(errbuf, errlen, "the baseline was reset but could not be written yet (a "
                                 "later checkpoint retries): %s", err);
    return rc;
}

int vg_engine_account_view(vg_engine_t *e, const char *account, size_t len, int max,
                           vg_buf_t *out) {
    shard_t *s = &e->sh[vg_engine_shard_of(e, account, len)];
    pthread_mutex_lock(&s->mu);
    int rc = s->pl ? vg_pipeline_account_view(s->pl, account, len, max, out) : VG_ESTORE;
    if (rc == VG_ESTORE && s->pl) atomic_fetch_add(&e->read_failures, 1);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

uint64_t vg_engine_read_failures(vg_engine_t *e) {
    return e ? (uint64_t)atomic_load(&e->read_failures) : 0;
}
