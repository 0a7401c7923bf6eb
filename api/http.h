/* http.h - the HTTP API of SPEC section 6 on libmicrohttpd, and the service state it
 * serves (vg_api_t): the engine, the control store, the rule modules, the lists, the
 * metrics, and the Redis control plane when configured.
 *
 * Threading: libmicrohttpd runs an epoll thread pool (`threads` workers) with
 * keep-alive; handlers run on those threads. Scoring takes only the account's engine
 * shard (engine/engine.h); rules and lists changes are serialised by one mutex
 * (vg_api_t.mu) and swap the ruleset or the lists whole. Everything else is atomic
 * counters or RocksDB (thread-safe).
 * Ownership: vg_api_new takes nothing; the caller frees with vg_api_free.
 */
#ifndef VG_HTTP_H
#define VG_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "api/config.h"
#include "api/ctl.h"
#include "engine/engine.h"
#include "engine/kafka.h"

#include <jansson.h>

/* Routes, for metrics. */
#define VG_ROUTE_LIST(X) \
    X(SCORE, "/v1/score") X(RULES, "/v1/rules") X(RULE, "/v1/rules/{module}") \
    X(RULE_VERSIONS, "/v1/rules/{module}/versions") X(RULE_ROLLBACK, "/v1/rules/{module}/rollback") \
    X(VALIDATE, "/v1/rules/validate") X(ACCOUNT, "/v1/accounts/{account}") \
    X(ACCOUNT_RESET, "/v1/accounts/{account}/reset-baseline") \
    X(ALERTS, "/v1/alerts") X(LISTS, "/v1/lists") X(LIST, "/v1/lists/{name}") \
    X(LIST_ITEM, "/v1/lists/{name}/{item}") X(LABELS, "/v1/labels") X(AUDIT, "/v1/audit") \
    X(HEALTHZ, "/healthz") X(READYZ, "/readyz") X(METRICS, "/metrics") \
    X(OPENAPI, "/v1/openapi.json") X(OTHER, "other")
typedef enum vg_route {
#define VG_ROUTE_ENUM(n, s) VG_ROUTE_##n,
    VG_ROUTE_LIST(VG_ROUTE_ENUM)
#undef VG_ROUTE_ENUM
    VG_ROUTE__COUNT
} vg_route_t;

#define VG_HIST_N 14     /* latency buckets, seconds, see http.c */
#define VG_NCODES 21     /* statuses counted per route */

typedef struct vg_route_metrics {
    atomic_uint_least64_t by_code[VG_NCODES];
    atomic_uint_least64_t hist[VG_HIST_N + 1];   /* cumulative at export; last: +Inf */
    atomic_uint_least64_t sum_us;
} vg_route_metrics_t;

/* A rule module as this instance holds it. */
typedef struct vg_module {
    char *name;
    char *record;        /* the JSON record (module, version, ruleset, source, ...) */
    int64_t version, ruleset;
    int deleted;
    char *source;        /* NULL when deleted */
} vg_module_t;

/* A list as this instance holds it. */
typedef struct vg_list {
    char *name;
    int64_t version;
    char **items;        /* sorted, unique */
    size_t n;
    int deleted;         /* a tombstone: its version is kept so that versions only grow */
} vg_list_t;

typedef struct vg_redis vg_redis_t;

typedef struct vg_api {
    vg_config_t *cfg;    /* borrowed */
    vg_engine_t *eng;
    vg_ctl_t *ctl;
    vg_redis_t *redis;   /* NULL without --redis */
    pthread_mutex_t mu;  /* modules, lists, program swaps, counters below */
    vg_module_t *mods;
    int nmods;
    vg_list_t *lists;
    int nlists;
    vg_lists_t *cur_lists;   /* the lists last given to the engine (built from `lists`): a
                                change of one list shares the others with it */
    int64_t ruleset;     /* the newest ruleset version known (modules' records) */
    /* the ruleset in force and its program: the same as `ruleset` except while a module
     * received from Redis does not compile with the others (e.g. written by a newer vigil
     * during a rolling upgrade); then the last one that compiled stays in force, and a
     * restart falls back to it too (the control store's G/active record) */
    int64_t active_ruleset;
    /* what /readyz said last (active_ruleset, ruleset), answered while `mu` is held by a
     * ruleset swap, which can take seconds with many accounts in memory */
    atomic_llong rz_active, rz_newest;
    vg_program_t *active;
    uint64_t audit_seq;
    atomic_uint_least64_t idgen;   /* ids of alerts and recent decisions: ms << 16 | n */
    atomic_int ready;
    atomic_uint_least64_t decisions[4], rejected, duplicates, alerts, overloaded, not_owner;
    atomic_uint_least64_t rejected_by[VG_REJECT__COUNT];   /* rejected, by code (/metrics) */
    atomic_uint_least64_t labels_matched, labels_unmatched;   /* POST /v1/labels, no Kafka */
    atomic_uint_least64_t ckpt_failures;   /* checkpoints of the HTTP engine that failed */
    atomic_uint_least64_t slow_headers;    /* connections closed: headers too slow */
    /* the Redis control plane, for /metrics and /readyz (serve.c): synchronisations
     * done (each (re)connection), whether one was done since Redis was last seen down,
     * and when this instance was last seen connected and synchronised */
    atomic_uint_least64_t redis_syncs;
    atomic_int redis_synced;
    atomic_int_least64_t redis_ok_ms;
    uint64_t read_fail_seen;               /* vg_engine_read_failures at the last tick */
    int64_t read_fail_logged_ms;           /* when the damaged state was last logged */
    uint64_t ckpt_failing;                 /* failures in a row (the tick thread's) */
    /* the periodic checkpoints of the HTTP engine (the tick thread's), for /metrics: their
     * count and time, the last one's, and when the last one that succeeded ended (0: none
     * yet, then since ckpt_since_ms, the service's start) */
    atomic_uint_least64_t ckpt_count, ckpt_us_sum;
    atomic_int_least64_t ckpt_last_us, ckpt_ok_ms, ckpt_since_ms;
    vg_route_metrics_t routes[VG_ROUTE__COUNT];
    pthread_mutex_t hits_mu;   /* rule hit counters */
    /* DELETE /v1/accounts/{a}: one erasure at a time, each on a thread of its own (its
     * purge compacts the stores for seconds; api/http.c erase_start) */
    pthread_mutex_t erase_mu;
    /* list and rule writes, each on a thread of its own too (a change of a list of a
     * million items takes seconds: on an HTTP thread it held every connection that
     * thread serves, scores included), one at a time */
    pthread_mutex_t write_mu;
    char **hit_names;
    uint64_t *hit_counts;
    int nhits;
    char **fnames;       /* interned "<module>.vrl" names (diagnostics point at them) */
    int nfnames;
    char *openapi;       /* the OpenAPI document served at /v1/openapi.json */
    size_t openapi_len;
    void *mhd;           /* struct MHD_Daemon */
    void *conns;         /* the open connections and their header deadlines (http.c) */
    char *tls_cert_pem, *tls_key_pem;   /* read by vg_api_listen, freed by vg_api_stop */
    /* set by serve before listening: more of /metrics (the Kafka pipeline's) and a
     * condition of /readyz is serve's own (it stores `ready`); NULL: none */
    int (*extra_metrics)(const void *ctx, vg_buf_t *out);
    const void *extra_metrics_ctx;
    /* called (mu held) after each change of the ruleset (p, its version; lists NULL) or
     * of the lists (p NULL), so that serve's Kafka pipelines follow; NULL: none */
    void (*on_rules)(void *ctx, vg_program_t *p, int64_t ruleset, vg_lists_t *lists);
    void *on_rules_ctx;
    /* serve --kafka: POST /v1/score is decided by the Kafka partition that holds the
     * account (vg_kafka_score), 409 not_owner when another instance holds it; NULL:
     * by the HTTP engine. Set before listening and cleared after vg_api_stop (never
     * while an HTTP thread runs), so the threads read it without a lock. */
    vg_kafka_t *kafka;
    /* scores queued for the Kafka pipeline while their connection is suspended
     * (vg_kafka_score_async); vg_api_stop waits for them with new ones refused */
    atomic_int kafka_inflight, stopping;
    /* the consumers' group session timeout (session.timeout.ms), read at the first
     * /readyz; 0 before */
    atomic_llong kafka_session_ms;
    /* serve --kafka: the alerts topic read whole into the alert list (api/alert_feed.c;
     * every instance lists every alert); NULL: alerts are recorded as they are answered */
    vg_kafka_tail_t *feed, *efeed;   /* the alerts topic; the erasures topic */
    pthread_mutex_t feed_mu;         /* one of their batches at a time (alert_feed.c) */
    int feed_erasures;               /* an erasure is known ("E/" records; under feed_mu) */
    _Atomic uint64_t feed_indexed, feed_dups, feed_bad, feed_erased;
    uint64_t feed_seq;             /* low bits of the feed's alert ids (under feed_mu) */
    /* the last erasures the feed applied, with the alerts each took out of the list
     * (under feed_mu): the DELETE whose partition published one counts those too */
    struct {
        char acct[VG_EVENT_MAX_ID + 1];
        int64_t at_ms;
        int n;
    } feed_recent[32];
    unsigned feed_recent_i;
    int64_t feed_pruned_ms;   /* last pruning of the feed's alert-id index (tick thread) */
    int64_t aidx_pruned_ms;   /* last pruning of the alert index, "M/" (tick thread) */
} vg_api_t;

/* Opens the control store under cfg->state, loads modules and lists from it (and from
 * cfg->rules), builds the engine. NULL with a reason in errbuf. */
vg_api_t *vg_api_new(vg_config_t *cfg, char *errbuf, size_t errlen);
void vg_api_free(vg_api_t *a);

/* Starts serving on cfg->http. 0 or VG_EIO with a reason in errbuf. */
int vg_api_listen(vg_api_t *a, char *errbuf, size_t errlen);
/* A PEM file (tls-cert, tls-key: `what`) read whole (at most 1 MiB), for the caller to
 * free; NULL with the reason in errbuf (unreadable, empty, not PEM). */
char *vg_api_read_pem(const char *path, const char *what, char *errbuf, size_t errlen);
/* Stops accepting and waits for the handlers to finish. Can't fail. */
void vg_api_stop(vg_api_t *a);
/* The address this instance advertises as a partition's owner (Redis vigil:owners:):
 * `advertise`, or SCHEME://HOST:PORT of `http`. */
void vg_api_self_url(vg_api_t *a, char *url, size_t len);
/* The bound port (useful with port 0). */
int vg_api_port(vg_api_t *a);
/* "https" when tls-cert and tls-key are set, else "http". */
const char *vg_api_scheme(const vg_api_t *a);

/* serve --kafka: starts reading the alerts topic of a->kafka into the alert list
 * (GET /v1/alerts), each alert once (by alert_id), from where the last run stopped.
 * 0, or VG_ENOMEM / VG_EIO with a reason in errbuf. vg_api_alert_feed_stop stops it
 * (accepts a stopped one). */
int vg_api_alert_feed_start(vg_api_t *a, char *errbuf, size_t errlen);
void vg_api_alert_feed_stop(vg_api_t *a);
/* With feed_mu held: the alerts of acct the feed took out of the list for the erasure
 * published at at_ms (erased_at_ms), and forgets them; 0 when it has not applied it. */
int vg_api_feed_erased(vg_api_t *a, const char *acct, int64_t at_ms);
/* After an erasure with Kafka: publishes it to the erasures topic, so that every
 * instance's alert list drops the account's alerts (alert_feed.c). 0 (also without a
 * feed), or VG_EIO / VG_ENOMEM with errbuf. */
int vg_api_publish_erasure(vg_api_t *a, const char *acct, char *errbuf, size_t errlen);

/* Periodic work (checkpoint, alert retention); called by serve's main loop. */
/* The monotonic clock in microseconds (request deadlines, checkpoint times). */
int64_t vg_api_mono_us(void);

void vg_api_tick(vg_api_t *a, int64_t now_ms);

/* ---- shared by api/http*.c and api/redis.c (not for other callers) ---- */

/* With Kafka, GET and DELETE /v1/accounts/{a} and POST .../reset-baseline go to the
 * partition that holds the account first; http.c asks it without blocking its thread
 * (the connection is suspended meanwhile) and then calls the handler with the answer
 * in vg_req_t.kp (NULL: not asked; the handler answers 503). */
typedef struct vg_kphase {
    int rc;                   /* vg_kafka_account_view's or vg_kafka_account_op's */
    int32_t part;             /* the account's partition (-1: not routed) */
    vg_buf_t *view;           /* GET: "{" and the view's members (nothing: no state) */
    int found;                /* reset-baseline: the partition holds the account */
    int64_t erased_at_ms;     /* DELETE: the erasure the partition published (0: none) */
} vg_kphase_t;

#define VG_RECENT_MAX 10      /* decisions GET /v1/accounts/{account} shows */
#define VG_KVIEW_WAIT_MS 10000   /* a view's wait for its partition's thread */
#define VG_KOP_WAIT_MS 30000     /* an erasure's or baseline reset's */

typedef struct vg_req {
    const char *method;
    vg_route_t route;
    const char *seg[4];       /* path parameters */
    int nseg;
    const char *body;
    size_t len;
    void *conn;               /* struct MHD_Connection */
    vg_role_t role;
    char who[48];             /* "role:hash8" or "anonymous" */
    vg_engine_ctx_t *ectx;    /* per-connection engine scratch */
    vg_buf_t *out;            /* per-connection output buffer */
    int64_t start_us;         /* when the request was complete (its body received): a
                                 score's `deadline` counts from here, not upload time */
    const vg_kphase_t *kp;    /* see vg_kphase_t */
} vg_req_t;

typedef struct vg_resp {
    int status;
    vg_buf_t body;            /* JSON unless ctype says otherwise */
    const char *ctype;
    char etag[48];
    int retry_after;          /* seconds, 0: none */
    int www_auth;
    int close;                /* Connection: close (the request's framing is not trusted) */
} vg_resp_t;

/* Checks the request's If-Match against the resource's current version `cur` (0: none;
 * `exists`: whether the resource exists). If-Match is `*` alone, or a comma-separated
 * list of "N" and W/"N" (N decimal without leading zeros, below 2^64; several If-Match
 * lines make one list): it passes when one of its tags is `cur` (`*`: when the resource
 * exists). Returns 0 when the write may go on, with *expect the version the client
 * expects (-1 when it sent no If-Match, or `*`); else sets a 412 precondition_failed on
 * r (a malformed If-Match too) and returns -1. Shared by rule modules and lists. */
int vg_http_if_match(vg_req_t *q, vg_resp_t *r, int64_t cur, int exists, int64_t *expect);

/* Sets an error response {"error":{"code":..,"message":..}}. */
void vg_resp_error(vg_resp_t *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 0 when every member of the JSON object o is one of known (NULL-terminated); else -1
 * with a 400 bad_request in r naming the unknown members: "<what>unknown field 'x'
 * (<hint>)". Request bodies of the non-event routes refuse what they do not know. */
int vg_resp_unknown_members(vg_resp_t *r, json_t *o, const char *const *known,
                            const char *what, const char *hint);
/* Sets a JSON response from a jansson value (takes ownership of j). */
void vg_resp_json(vg_resp_t *r, int status, json_t *j);
/* A query argument, or NULL (http.c has refused unknown, repeated, empty and
 * valueless ones before the handler runs). */
const char *vg_req_arg(vg_req_t *q, const char *name);
/* The If-Match header, or NULL. */
const char *vg_req_header(vg_req_t *q, const char *name);
int64_t vg_now_ms(void);
/* A new id for a record keyed by time: created ms << 16 | counter, increasing. */
uint64_t vg_api_next_id(vg_api_t *a);
void vg_iso_time(int64_t ms, char out[40]);

/* Handlers (api/http_rules.c, api/http_data.c). */
void vg_h_rules(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_rule(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_rule_versions(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_rule_rollback(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_validate(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_lists(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_list(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_list_item(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_labels(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_account(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_account_reset(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_alerts(vg_api_t *a, vg_req_t *q, vg_resp_t *r);
void vg_h_audit(vg_api_t *a, vg_req_t *q, vg_resp_t *r);

/* Rules and lists state (api/http_rules.c, api/http_data.c), mu held by the caller. */
/* Loads modules and lists from the control store; 0 or error with errbuf. */
int vg_api_load_state(vg_api_t *a, char *errbuf, size_t errlen);
/* Compiles the modules (the last ruleset in force when the newest do not compile) and
 * opens the engine on the state directory with it; 0 or error with errbuf. Called after
 * --rules is loaded, so that a directory made by `vigil replay --state` with the same
 * rules is opened with them and served warm (SPEC section 5). */
int vg_api_start_engine(vg_api_t *a, char *errbuf, size_t errlen);
/* Applies the stored labels posted recently to the engine's state again (at start, after
 * vg_api_start_engine; a kill -9 before the next checkpoint lost them): api/http_data.c.
 * Without Kafka only; logs what it did. */
void vg_api_labels_restore(vg_api_t *a);
/* Diagnostics in the log (api/http_state.c): the first error of d (NULL when none: a
 * warning is never "the" error), and every diagnostic on stderr, errors first, each
 * "  FILE:LINE:COL: error|warning: MESSAGE" (as SPEC section 5 tags them). */
const vg_diag_t *vg_api_first_error(const vg_diags_t *d);
void vg_api_log_diags(const vg_diags_t *d);
/* Compiles the active modules (with `override` replacing or adding module `name`, or
 * removing it when override is NULL and remove is set). Returns the program or NULL
 * with diagnostics in d. */
/* 1 when s is a module name: 1..64 letters, digits, _ or -. */
int vg_api_valid_module_name(const char *s);
vg_program_t *vg_api_compile(vg_api_t *a, const char *name, const char *override, int remove,
                             vg_diags_t *d);
/* Installs a module record (JSON text) coming from this instance or from Redis:
 * ignored when not newer than the one held; else stored, compiled and swapped in.
 * 0, or an error (logged). */
int vg_api_apply_module(vg_api_t *a, const char *record, size_t len, int64_t *ruleset_out);
/* Installs the module records recs[0..n) (those newer than the local copy) as one
 * change: a single program, named by the newest ruleset, so that no program is ever
 * named by a ruleset whose other modules are not in it yet. Returns how many were not
 * module records (bad[k] = 1 for those, when bad is not NULL). */
int vg_api_apply_modules(vg_api_t *a, const char *const *recs, const size_t *lens, int n,
                         int *bad);
/* Installs a list (name, version, items) coming from this instance or Redis. */
int vg_api_apply_list(vg_api_t *a, const char *name, int64_t version, char **items, size_t n,
                      int deleted);
/* Rebuilds the engine's lists from a->lists. */
int vg_api_push_lists(vg_api_t *a);
/* Appends an audit entry. */
/* 409 not_owner for an account whose Kafka partition another instance owns (its
 * address from the owner registry in Redis, null when unknown). */
void vg_api_not_owner(vg_api_t *a, vg_resp_t *r, const char *acct, size_t alen, int32_t part);
void vg_api_audit(vg_api_t *a, const vg_req_t *q, const char *action, const char *target,
                  int64_t old_version, int64_t new_version);
/* The same with the members of the object `more` added to the entry (taken; NULL:
 * none), e.g. labels.post's counts. */
void vg_api_audit_more(vg_api_t *a, const vg_req_t *q, const char *action, const char *target,
                       int64_t old_version, int64_t new_version, json_t *more);
/* Records a decision (recent decisions, alert, rule hits). */
void vg_api_record_decision(vg_api_t *a, const char *account, size_t alen, const char *line,
                            size_t len, int alert);

#endif
