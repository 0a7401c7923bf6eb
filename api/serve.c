/* serve.c - `vigil serve`: starts the HTTP API over the engine and waits for SIGTERM or
 * SIGINT, checkpointing the state and expiring old alerts every checkpoint interval.
 * With --kafka it also runs the Kafka pipeline (api/serve_kafka.h) with the rules and
 * lists loaded at start: /readyz waits for its first assignment, /metrics includes it,
 * and it is stopped (acknowledged, checkpointed, group left) before the HTTP API.
 *
 * Signals are blocked in every thread and taken synchronously by the main thread
 * (sigtimedwait), so that no handler runs inside a worker and no global flag is needed.
 * A stop drains the HTTP workers, then writes a final synchronous checkpoint.
 */
#include "api/serve.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api/config.h"
#include "api/http.h"
#include "api/redis.h"
#include "api/serve_kafka.h"

#define CHECKPOINT_NICE 19

vg_lists_t *vg_api_build_lists(vg_api_t *a);   /* api/http_data.c */

static int kafka_metrics(const void *ctx, vg_buf_t *out) {
    return vg_serve_kafka_metrics(ctx, out);
}

/* Starts the Kafka pipeline over the rules and lists active now. NULL with errbuf. */
static void on_rules(void *ctx, vg_program_t *p, int64_t ruleset, vg_lists_t *lists) {
    if (p) vg_serve_kafka_set_program(ctx, p, ruleset);
    else vg_serve_kafka_set_lists(ctx, lists);
}

/* A label read from the labels topic by a partition this instance owns: kept with the
 * account's labels (the key POST /v1/labels writes: the same record when it was posted
 * here), so that the account's view here lists labels posted to other instances too. */
static void on_label(void *ctx, const vg_label_t *lb, const char *rec, size_t len) {
    vg_api_t *a = ctx;
    char stack[512];
    size_t kl = 3 + lb->alen + lb->idlen;
    char *key = kl <= sizeof(stack) ? stack : malloc(kl);
    if (!key) return;   /* out of memory: the view lacks it, the label is applied */
    memcpy(key, "B/", 2);
    memcpy(key + 2, lb->account, lb->alen);
    key[2 + lb->alen] = 0;
    memcpy(key + 3 + lb->alen, lb->id, lb->idlen);
    vg_ctl_op_t op = {key, kl, rec, len};
    vg_ctl_write_later(a->ctl, &op, 1);
    if (key != stack) free(key);
}

/* A partition assigned to this instance: it is advertised as the owner (Redis), so
 * that the other instances' 409 not_owner name it. */
static void on_assign(void *ctx, int32_t partition) {
    vg_api_t *a = ctx;
    if (!a->redis) return;
    char url[600];
    vg_api_self_url(a, url, sizeof(url));
    if (vg_redis_owner_set(a->redis, a->cfg->group ? a->cfg->group : "vigil", partition, url) != 0)
        fprintf(stderr, "vigil serve: cannot advertise partition %d in Redis (down?): other "
                        "instances answer not_owner without its address\n", (int)partition);
}

/* Redis (re)connected and synchronised: counted for /metrics and /readyz. */
static void on_redis_synced(void *ctx) {
    vg_api_t *a = ctx;
    atomic_fetch_add(&a->redis_syncs, 1);
    atomic_store(&a->redis_synced, 1);
    atomic_store(&a->redis_ok_ms, vg_now_ms());
}

/* Redis (re)connected: the partitions owned here are advertised again (Redis restarted
 * empty has no owner registry; one down at an assignment missed it). */
static void on_redis_sync(void *ctx) {
    vg_api_t *a = ctx;
    on_redis_synced(a);
    vg_kafka_t *k = a->kafka;
    if (!k) return;
    int32_t parts[1024];
    int n = vg_kafka_owned(k, parts, (int)(sizeof(parts) / sizeof(parts[0])));
    for (int i = 0; i < n; i++) on_assign(a, parts[i]);
}

/* The HTTP address, bound (not listened on: a connection is refused until the API
 * answers) before anything else starts: an address in use (another instance given the
 * same port), not of this host or not allowed stops the start before the state is
 * opened and, with Kafka, before the consumers join the group (they joined first, and
 * every instance of the group gave up and took back its partitions at each try under a
 * supervisor). With SO_REUSEADDR, as libmicrohttpd binds, so that it binds beside it
 * (the reservation is closed once it did), and the TIME_WAIT connections of a stopped
 * instance do not refuse it. Returns the socket, -2 for port 0 (a free one: nothing
 * to reserve), or -1 with errbuf. */
static int reserve_http(const vg_config_t *cfg, char *errbuf, size_t errlen) {
    struct sockaddr_storage sa;
    if (vg_config_http_addr(cfg->http, &sa, errbuf, errlen) != 0) return -1;
    int v6 = sa.ss_family == AF_INET6;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&sa;
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&sa;
    if ((v6 ? s6->sin6_port : s4->sin_port) == 0) return -2;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, e = 0;
    if (fd < 0) e = errno;
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) e = errno;
    if (!e && v6) {   /* [::]: IPv4 too, as vg_api_listen makes it (dual stack) */
        int only = !IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only) != 0) e = errno;
    }
    if (!e && bind(fd, (const struct sockaddr *)&sa,
                   v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0)
        e = errno;
    if (!e) return fd;
    if (fd >= 0) close(fd);
    snprintf(errbuf, errlen, "cannot listen on %s: %s", cfg->http, strerror(e));
    return -1;
}

static enum MHD_Result no_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ctx) {
    (void)cls, (void)c, (void)url, (void)method, (void)version, (void)data, (void)size;
    (void)ctx;
    return MHD_NO;
}

static int no_passphrase(char *buf, int size, int rw, void *u) {
    (void)buf, (void)size, (void)rw, (void)u;
    return 0;   /* an encrypted key is refused, never asked for */
}

/* What the certificate and key are, read with OpenSSL (libmicrohttpd's GnuTLS only says
 * no): *why the reason a pair is refused ("" when OpenSSL takes it); a certificate that
 * has expired or is not valid yet is said on stderr (every client that verifies it
 * refuses the connection), and serve goes on. */
static void tls_inspect(const vg_config_t *cfg, const char *cert, const char *key, char *why,
                        size_t n) {
    why[0] = 0;
    BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, no_passphrase, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL) : NULL;
    if (!x)
        snprintf(why, n, "tls-cert %s holds no PEM certificate", cfg->tls_cert);
    else if (!k && strstr(key, "ENCRYPTED"))
        snprintf(why, n, "tls-key %s is encrypted (give the key without a passphrase)",
                 cfg->tls_key);
    else if (!k)
        snprintf(why, n, "tls-key %s holds no PEM private key", cfg->tls_key);
    else if (X509_check_private_key(x, k) != 1)
        snprintf(why, n, "tls-key %s is not the private key of tls-cert %s", cfg->tls_key,
                 cfg->tls_cert);
    if (x && !why[0]) {
        const ASN1_TIME *na = X509_get0_notAfter(x), *nb = X509_get0_notBefore(x);
        struct tm t;
        char when[40] = "?";
        if (X509_cmp_current_time(na) < 0) {
            if (ASN1_TIME_to_tm(na, &t) == 1) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &t);
            fprintf(stderr, "vigil serve: warning: tls-cert %s expired at %s: every client "
                            "that verifies it refuses the connection\n", cfg->tls_cert, when);
        } else if (X509_cmp_current_time(nb) > 0) {
            if (ASN1_TIME_to_tm(nb, &t) == 1) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &t);
            fprintf(stderr, "vigil serve: warning: tls-cert %s is not valid before %s: every "
                            "client that verifies it refuses the connection until then\n",
                    cfg->tls_cert, when);
        }
    }
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
}

/* tls-cert and tls-key, read and loaded as vg_api_listen loads them (a daemon without a
 * listening socket), before anything else starts, as the address. 0 or -1 with errbuf. */
static int check_tls(const vg_config_t *cfg, char *errbuf, size_t errlen) {
    if (!cfg->tls_cert || !cfg->tls_key) return 0;
    char *cert = vg_api_read_pem(cfg->tls_cert, "tls-cert", errbuf, errlen);
    char *key = cert ? vg_api_read_pem(cfg->tls_key, "tls-key", errbuf, errlen) : NULL;
    int rc = -1;
    char why[600] = "";
    if (key) tls_inspect(cfg, cert, key, why, sizeof why);
    if (key && why[0]) {
        snprintf(errbuf, errlen, "cannot listen on %s with HTTPS: %s", cfg->http, why);
    } else if (key) {
        struct MHD_Daemon *d = MHD_start_daemon(
            MHD_USE_TLS | MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, no_request, NULL,
            MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
        if (d) {
            MHD_stop_daemon(d);
            rc = 0;
        } else {
            snprintf(errbuf, errlen, "cannot listen on %s with HTTPS: refused (are tls-cert and "
                     "tls-key a PEM certificate and its private key?)", cfg->http);
        }
    }
    free(cert);
    free(key);
    return rc;
}

static vg_serve_kafka_t *start_kafka(vg_api_t *a, const vg_config_t *cfg, char *errbuf,
                                     size_t errlen) {
    vg_serve_kafka_cfg_t kc = {
        .kafka = cfg->kafka, .group = cfg->group, .topic_in = cfg->topic_in,
        .topic_alerts = cfg->topic_alerts, .topic_decisions = cfg->topic_decisions,
        .topic_dlq = cfg->topic_dlq, .changelog = cfg->changelog,
        .topic_labels = cfg->topic_labels, .state = cfg->state, .lateness_ms = cfg->lateness_ms,
        .dedupe_horizon_ms = cfg->dedupe_horizon_ms, .future_ms = cfg->future_ms,
        .mem_budget = cfg->mem_budget, .threads = cfg->kafka_threads,
        .anomaly = vg_config_anomaly(cfg),
        .kafka_conf = (const char *const *)cfg->kafka_conf,
        .on_assign = on_assign, .on_assign_ctx = a, .on_label = on_label, .on_label_ctx = a,
    };
    pthread_mutex_lock(&a->mu);
    vg_program_t *p = a->active ? vg_prog_ref(a->active) : NULL;   /* the ruleset in force, as HTTP scoring */
    vg_lists_t *l = vg_api_build_lists(a);
    kc.ruleset_version = a->active_ruleset;
    pthread_mutex_unlock(&a->mu);
    vg_serve_kafka_t *k = NULL;
    if (!p) snprintf(errbuf, errlen, "kafka: the rules do not compile");
    else k = vg_serve_kafka_start(&kc, p, l, errbuf, errlen);
    vg_prog_unref(p);
    vg_lists_unref(l);
    if (!k) return NULL;
    /* from now on the pipelines follow every rule and list change; one made while they
     * started is handed over here */
    pthread_mutex_lock(&a->mu);
    if (a->active_ruleset != kc.ruleset_version && a->active)
        vg_serve_kafka_set_program(k, a->active, a->active_ruleset);
    vg_lists_t *l2 = vg_api_build_lists(a);
    if (l2) vg_serve_kafka_set_lists(k, l2);
    vg_lists_unref(l2);
    a->on_rules = on_rules;
    a->on_rules_ctx = k;
    pthread_mutex_unlock(&a->mu);
    return k;
}

int vg_cmd_serve(int argc, char **argv) {
    vg_config_t *cfg = NULL;
    int rc = vg_config_load(argc, argv, &cfg);
    if (rc) return rc < 0 ? 0 : rc;
    if (cfg->kafka) {   /* topics and client settings: a usage error before anything starts */
        vg_serve_kafka_cfg_t kc = {
            .kafka = cfg->kafka, .group = cfg->group, .topic_in = cfg->topic_in,
            .topic_alerts = cfg->topic_alerts, .topic_decisions = cfg->topic_decisions,
            .topic_dlq = cfg->topic_dlq, .changelog = cfg->changelog,
            .topic_labels = cfg->topic_labels,
            .kafka_conf = (const char *const *)cfg->kafka_conf,
        };
        char terr[700];
        if (vg_serve_kafka_check(&kc, terr, sizeof terr) != 0) {
            fprintf(stderr, "vigil serve: %s\n", terr);
            vg_config_free(cfg);
            return 2;
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);   /* a closed terminal: stop cleanly too (it killed the process
                                  without its final checkpoint) */
    pthread_sigmask(SIG_BLOCK, &set, NULL);   /* inherited by every thread started below */
    signal(SIGPIPE, SIG_IGN);

    char err[1024];
    int reserved = reserve_http(cfg, err, sizeof(err));   /* closed once the API listens */
    if (reserved == -1 || check_tls(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "vigil serve: %s\n", err);
        if (reserved >= 0) close(reserved);
        vg_config_free(cfg);
        return 1;
    }
    vg_api_t *a = vg_api_new(cfg, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "vigil serve: %s\n", err);
        if (reserved >= 0) close(reserved);
        vg_config_free(cfg);
        return 1;
    }
    vg_redis_on_sync(a->redis, on_redis_synced, a);   /* with Kafka: on_redis_sync, below */
    if (vg_redis_up(a->redis)) {   /* synchronised before the hook was set */
        uint_least64_t none = 0;
        atomic_compare_exchange_strong(&a->redis_syncs, &none, 1);
        atomic_store(&a->redis_synced, 1);
        atomic_store(&a->redis_ok_ms, vg_now_ms());
    }
    vg_serve_kafka_t *kafka = NULL;
    if (cfg->kafka && !(kafka = start_kafka(a, cfg, err, sizeof(err)))) {
        vg_redis_on_sync(a->redis, NULL, NULL);
        fprintf(stderr, "vigil serve: %s\n", err);
        if (reserved >= 0) close(reserved);
        vg_api_free(a);
        vg_config_free(cfg);
        return 1;
    }
    if (kafka) {   /* before listening: the HTTP threads only read them */
        a->extra_metrics = kafka_metrics;
        a->extra_metrics_ctx = kafka;
        a->kafka = vg_serve_kafka_engine(kafka);   /* scores go to the partitions */
        vg_redis_on_sync(a->redis, on_redis_sync, a);   /* unset before a->kafka is */
        if (vg_api_alert_feed_start(a, err, sizeof(err)) != 0) {   /* the alert list */
            fprintf(stderr, "vigil serve: %s\n", err);
            vg_redis_on_sync(a->redis, NULL, NULL);
            a->kafka = NULL;
            vg_serve_kafka_stop(kafka);
            if (reserved >= 0) close(reserved);
            vg_api_free(a);
            vg_config_free(cfg);
            return 1;
        }
    }
    int listen_rc = vg_api_listen(a, err, sizeof(err));
    if (reserved >= 0) close(reserved);   /* the API's own socket holds the address now */
    if (listen_rc != 0) {
        fprintf(stderr, "vigil serve: %s\n", err);
        vg_redis_on_sync(a->redis, NULL, NULL);
        pthread_mutex_lock(&a->mu);
        a->on_rules = NULL;
        pthread_mutex_unlock(&a->mu);
        vg_api_alert_feed_stop(a);
        vg_redis_on_sync(a->redis, NULL, NULL);
        a->kafka = NULL;
        vg_serve_kafka_stop(kafka);
        vg_api_free(a);
        vg_config_free(cfg);
        return 1;
    }
    if (cfg->redis && !cfg->kafka)   /* shared rules invite several instances behind one LB */
        fprintf(stderr, "vigil serve: redis without kafka: rules and lists are shared, account "
                        "state is not (windows, duplicates, labels, alerts are this "
                        "instance's): send each account's requests to one instance (route by "
                        "account) or run one\n");
    const char *colon = strrchr(cfg->http, ':');
    fprintf(stderr, "vigil serve: listening on %s://%.*s:%d (state %s, ruleset %lld, %d shard%s, "
                    "%d threads%s%s, auth %s)\n", vg_api_scheme(a),
            (int)(colon - cfg->http), cfg->http, vg_api_port(a), cfg->state,
            (long long)vg_engine_version(a->eng), cfg->shards, cfg->shards == 1 ? "" : "s",
            cfg->threads, cfg->redis ? ", redis " : "", cfg->redis ? cfg->redis : "",
            cfg->ntokens ? "bearer tokens" : "off (no tokens configured)");
    /* this thread checkpoints (vg_api_tick): background work, below the threads that
     * answer (started above at the normal priority), so that a request never waits for
     * a core behind it (nice values are per thread on Linux) */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CHECKPOINT_NICE) != 0)
        fprintf(stderr, "vigil serve: cannot lower the checkpoint thread's priority: %s\n",
                strerror(errno));
    int status = 0;
    atomic_store(&a->ready, !cfg->kafka);   /* with Kafka: once it has its partitions */
    int64_t every = cfg->checkpoint_ms > 0 ? cfg->checkpoint_ms : 1000, last_tick = vg_now_ms();
    int64_t shared_since = 0;   /* another instance seen in the group without Redis */
    int shared_warned = 0;
    while (status == 0) {
        int64_t wait = kafka && !atomic_load(&a->ready) ? 100 : every < 1000 ? every : 1000;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            fprintf(stderr, "vigil serve: %s: stopping\n",
                    sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM");
            break;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR) break;
        if (kafka && vg_serve_kafka_failed(kafka)) {
            fprintf(stderr, "vigil serve: the Kafka pipeline failed; stopping (a restart "
                            "resumes from its last checkpoint)\n");
            status = 1;
        } else if (kafka && vg_serve_kafka_ready(kafka)) {
            atomic_store(&a->ready, 1);
        }
        if (vg_now_ms() - last_tick >= every) {
            vg_api_tick(a, vg_now_ms());
            last_tick = vg_now_ms();
        }
        if (a->redis && !vg_redis_up(a->redis)) atomic_store(&a->redis_synced, 0);
        else if (a->redis && atomic_load(&a->redis_synced))
            atomic_store(&a->redis_ok_ms, vg_now_ms());
        if (kafka && !cfg->redis && !shared_warned) {
            /* another instance in the group (this one owns only some partitions, for a
             * 30 s): without Redis, rule and list changes made here do not reach it */
            vg_kafka_stats_t ks;
            vg_kafka_get_stats(vg_serve_kafka_engine(kafka), &ks);
            int shared = atomic_load(&a->ready) && ks.input_partitions > 0 &&
                         ks.partitions < ks.input_partitions;
            if (!shared) shared_since = 0;
            else if (!shared_since) shared_since = vg_now_ms();
            else if (vg_now_ms() - shared_since >= 30000) {
                fprintf(stderr, "vigil serve: this instance has owned %u of the %u partitions "
                        "for 30 s: another instance shares the group %s, and without "
                        "Redis (redis = HOST:PORT) rule and list changes made on one do not "
                        "reach the other\n", ks.partitions, ks.input_partitions,
                        cfg->group ? cfg->group : "vigil");
                shared_warned = 1;
            }
        }
    }
    atomic_store(&a->ready, 0);
    vg_api_stop(a);   /* the HTTP threads are done: then the pipeline they report on */
    pthread_mutex_lock(&a->mu);   /* no rule change reaches the pipelines from now on */
    a->on_rules = NULL;
    pthread_mutex_unlock(&a->mu);
    vg_api_alert_feed_stop(a);   /* before the broker (embedded) goes */
    vg_redis_on_sync(a->redis, NULL, NULL);
    a->kafka = NULL;
    if (kafka && vg_serve_kafka_stop(kafka) != 0) status = 1;
    /* the final checkpoint, synchronous: a failure loses what was scored since the last
     * one, so the exit status says so (it was 0) */
    if (a->eng) {
        char ferr[512];
        if (vg_engine_checkpoint(a->eng, 1, ferr, sizeof(ferr)) != 0) {
            fprintf(stderr, "vigil serve: final checkpoint failed: %s; what was scored since "
                    "the last checkpoint is not in the state (exit 1)\n", ferr);
            status = 1;
        }
        vg_engine_free(a->eng);
        a->eng = NULL;
    }
    vg_api_free(a);
    vg_config_free(cfg);
    fprintf(stderr, "vigil serve: stopped\n");
    return status;
}
