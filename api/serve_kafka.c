/* serve_kafka.c - the Kafka pipeline of `vigil serve` and the `vigil stream` command
 * (see serve_kafka.h).
 *
 * `vigil stream` takes the Kafka settings of SPEC section 5 as flags, those of ENV_NAMES
 * below also read from VIGIL_<NAME> (a flag wins over the environment; an empty flag value
 * is a usage error, an empty variable is unset), compiles the rules, starts the
 * service, and runs until SIGTERM or SIGINT, which stop it cleanly (produced output
 * acknowledged, state checkpointed with the offsets, group left). It exits 1 when the
 * service failed (a restart resumes from the last checkpoint).
 */
#include "api/serve_kafka.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/cli.h"
#include "engine/kafka.h"
#include "rules/errors.h"

struct vg_serve_kafka {
    vg_kafka_mock_t *mock;
    vg_kafka_t *k;
    char *brokers;
};

/* A topic setting of the group: "off" -> NULL, a name -> it, unset -> GROUP.suffix (in
 * buf, 300 bytes). */
static const char *group_topic(const char *set, const char *group, const char *suffix,
                               char *buf) {
    if (set && strcmp(set, "off") == 0) return NULL;
    if (set && *set) return set;
    snprintf(buf, 300, "%.240s.%s", group, suffix);
    return buf;
}

/* Kafka's rule for topic names: 1..249 bytes of [a-zA-Z0-9._-], not "." or "..". */
static int topic_name_ok(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The brokers' list: HOST[:PORT] entries separated by commas (an optional PROTOCOL://
 * before one, an IPv6 HOST in brackets), each port 1..65535. librdkafka took a port
 * past 65535 modulo 65536 (99999 connected to 34463) and an empty entry as nothing. */
static int brokers_ok(const char *list, char *errbuf, size_t errlen) {
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        const char *h = p, *he = p + n;
        for (size_t i = 0; i + 3 <= n; i++)   /* PROTOCOL:// */
            if (memcmp(p + i, "://", 3) == 0) {
                h = p + i + 3;
                break;
            }
        const char *port = NULL;
        if (h < he && *h == '[') {   /* [IPv6]:PORT */
            const char *rb = memchr(h, ']', (size_t)(he - h));
            if (!rb || rb == h + 1 || (rb + 1 < he && rb[1] != ':')) h = he;   /* refused below */
            else if (rb + 1 < he) port = rb + 2;
        } else {
            const char *c = memchr(h, ':', (size_t)(he - h));
            if (c && memchr(c + 1, ':', (size_t)(he - c - 1))) h = he;   /* IPv6 unbracketed */
            else if (c) port = c + 1;
        }
        int good = h < he && *h != ':';
        if (good && port) {
            long v = 0;
            const char *q = port;
            for (; q < he && *q >= '0' && *q <= '9' && v <= 65535; q++) v = v * 10 + (*q - '0');
            good = q == he && q > port && v >= 1 && v <= 65535;
        }
        if (!good) {
            snprintf(errbuf, errlen, "kafka (--kafka, VIGIL_KAFKA or the config file): "
                     "'%.*s' in '%.200s' is not a broker: expected HOST:PORT (port 1..65535), "
                     "several separated by commas, or embedded", (int)(n > 200 ? 200 : n), p,
                     list);
            return -1;
        }
        if (!end) return 0;
        p = end + 1;
    }
}

int vg_serve_kafka_check(const vg_serve_kafka_cfg_t *cfg, char *errbuf, size_t errlen) {
    if (!cfg->kafka || !*cfg->kafka) {
        snprintf(errbuf, errlen, "kafka (--kafka, VIGIL_KAFKA or the config file) needs BROKERS "
                 "(host:port,...) or embedded");
        return -1;
    }
    if (strcmp(cfg->kafka, "embedded") != 0 && brokers_ok(cfg->kafka, errbuf, errlen) != 0)
        return -1;
    const char *group = cfg->group ? cfg->group : "vigil";
    if (!*group || strlen(group) > 240) {
        snprintf(errbuf, errlen, "group (--group, VIGIL_GROUP or the config file) needs a "
                 "consumer group name of 1..240 bytes");
        return -1;
    }
    for (int i = 0; cfg->kafka_conf && cfg->kafka_conf[i]; i++)   /* as serve's config does */
        if (vg_kafka_conf_check(cfg->kafka_conf[i], errbuf, errlen) != 0) return -1;
    char clname[300], labname[300], ername[300];
    snprintf(ername, sizeof ername, "%.240s.erasures", group);
    struct { const char *setting, *name; } t[7] = {
        {"topic-in (--topic-in, VIGIL_TOPIC_IN or the config file)", cfg->topic_in ? cfg->topic_in : "transactions"},
        {"topic-alerts (--topic-alerts, VIGIL_TOPIC_ALERTS or the config file)", cfg->topic_alerts ? cfg->topic_alerts : "alerts"},
        {"topic-dlq (--topic-dlq, VIGIL_TOPIC_DLQ or the config file)", cfg->topic_dlq ? cfg->topic_dlq : "transactions.dlq"},
        {"topic-decisions (--topic-decisions, VIGIL_TOPIC_DECISIONS or the config file)", cfg->topic_decisions},
        {"changelog (--changelog, VIGIL_CHANGELOG or the config file)", group_topic(cfg->changelog, group, "changelog", clname)},
        {"topic-labels (--topic-labels, VIGIL_TOPIC_LABELS or the config file)", group_topic(cfg->topic_labels, group, "labels", labname)},
        {"the erasures topic (GROUP.erasures)", ername},
    };
    if (cfg->kafka_conf && vg_kafka_conf_try(cfg->kafka_conf, errbuf, errlen) != 0) return -1;
    for (int i = 0; i < 7; i++) {
        if (!t[i].name) continue;
        if (!topic_name_ok(t[i].name)) {
            snprintf(errbuf, errlen, "%s: '%.260s' is not a Kafka topic name (1..249 of "
                     "a-z A-Z 0-9 . _ -)", t[i].setting, t[i].name);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (t[j].name && strcmp(t[i].name, t[j].name) == 0) {
                snprintf(errbuf, errlen, "%s and %s both name the topic %.250s: the topics must "
                         "all differ%s", t[j].setting, t[i].setting, t[i].name,
                         j == 0 ? " (the service would read its own output as input)" : "");
                return -1;
            }
    }
    return 0;
}

vg_serve_kafka_t *vg_serve_kafka_start(const vg_serve_kafka_cfg_t *cfg, vg_program_t *prog,
                                       vg_lists_t *lists, char *errbuf, size_t errlen) {
    if (vg_serve_kafka_check(cfg, errbuf, errlen) != 0) return NULL;
    vg_serve_kafka_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    vg_kafka_opts_t o;
    vg_kafka_opts_default(&o);
    if (cfg->group) o.group = cfg->group;
    if (cfg->topic_in) o.topic_in = cfg->topic_in;
    if (cfg->topic_alerts) o.topic_alerts = cfg->topic_alerts;
    if (cfg->topic_dlq) o.topic_dlq = cfg->topic_dlq;
    o.topic_decisions = cfg->topic_decisions;
    char clname[300], labname[300];
    o.topic_changelog = group_topic(cfg->changelog, o.group, "changelog", clname);
    o.topic_labels = group_topic(cfg->topic_labels, o.group, "labels", labname);
    if (!cfg->kafka || !*cfg->kafka) {
        snprintf(errbuf, errlen, "--kafka BROKERS|embedded is required");
        goto err;
    }
    if (strcmp(cfg->kafka, "embedded") == 0) {
        int parts = cfg->partitions > 0 ? cfg->partitions : 8;
        char t[7][300];
        snprintf(t[0], sizeof(t[0]), "%.250s:%d", o.topic_in, parts);
        snprintf(t[1], sizeof(t[1]), "%.250s:%d", o.topic_alerts, parts);
        snprintf(t[2], sizeof(t[2]), "%.250s:%d", o.topic_dlq, parts);
        snprintf(t[3], sizeof(t[3]), "%.250s:%d", o.topic_decisions ? o.topic_decisions : "",
                 parts);
        snprintf(t[4], sizeof(t[4]), "%.250s:%d", o.topic_changelog ? o.topic_changelog : "",
                 parts);
        /* the erasures topic (GROUP.erasures, one partition: DELETE /v1/accounts for
         * every instance's alert list, api/alert_feed.c) */
        snprintf(t[5], sizeof(t[5]), "%.240s.erasures:1", o.group);
        snprintf(t[6], sizeof(t[6]), "%.250s:%d", o.topic_labels ? o.topic_labels : "", parts);
        const char *topics[8] = {t[0], t[1], t[2], t[5], NULL, NULL, NULL, NULL};
        int nt = 4;
        if (o.topic_decisions) topics[nt++] = t[3];
        if (o.topic_changelog) topics[nt++] = t[4];
        if (o.topic_labels) topics[nt++] = t[6];
        s->mock = vg_kafka_mock_new(1, topics, parts, errbuf, errlen);
        if (!s->mock) goto err;
        o.embedded = 1;
        s->brokers = strdup(vg_kafka_mock_bootstrap(s->mock));
        fprintf(stderr, "vigil: embedded Kafka broker (librdkafka mock cluster) at %s\n",
                s->brokers ? s->brokers : "?");
        if (cfg->addr_file && s->brokers) {
            FILE *f = fopen(cfg->addr_file, "w");
            if (!f || fprintf(f, "%s\n", s->brokers) < 0 || fclose(f) != 0) {
                snprintf(errbuf, errlen, "cannot write %.200s", cfg->addr_file);
                goto err;
            }
        }
    } else {
        s->brokers = strdup(cfg->kafka);
    }
    if (!s->brokers) {
        snprintf(errbuf, errlen, "out of memory");
        goto err;
    }
    o.brokers = s->brokers;
    o.state_dir = cfg->state;
    o.prog = prog;
    o.pipeline.lists = lists;
    /* 0 is a value (no lateness; a horizon is never less than the lateness: engine/
     * state.c), as in replay and serve's HTTP engine; it was read as "the default" here */
    if (cfg->lateness_ms >= 0) o.pipeline.lateness_ms = cfg->lateness_ms;
    if (cfg->dedupe_horizon_ms >= 0) o.pipeline.dedupe_horizon_ms = cfg->dedupe_horizon_ms;
    o.pipeline.ruleset_version = cfg->ruleset_version > 0 ? cfg->ruleset_version : 0;
    o.pipeline.mem_budget = cfg->mem_budget;
    o.pipeline.anomaly = cfg->anomaly;
    if (cfg->future_ms != 0) o.future_ms = cfg->future_ms;
    if (cfg->checkpoint_ms > 0) o.checkpoint_ms = cfg->checkpoint_ms;
    if (cfg->threads > 0) o.threads = cfg->threads;
    o.sync = !cfg->no_sync;
    o.conf = cfg->kafka_conf;
    o.quiet = cfg->quiet;
    o.on_assign = cfg->on_assign;
    o.on_assign_ctx = cfg->on_assign_ctx;
    o.on_label = cfg->on_label;
    o.on_label_ctx = cfg->on_label_ctx;
    s->k = vg_kafka_new(&o, errbuf, errlen);
    if (!s->k || vg_kafka_start(s->k, errbuf, errlen) != 0) goto err;
    return s;
err:
    vg_kafka_free(s->k);
    vg_kafka_mock_free(s->mock);
    free(s->brokers);
    free(s);
    return NULL;
}

int vg_serve_kafka_stop(vg_serve_kafka_t *s) {
    if (!s) return 0;
    vg_kafka_stop(s->k);
    int rc = vg_kafka_wait(s->k);
    vg_kafka_free(s->k);
    vg_kafka_mock_free(s->mock);
    free(s->brokers);
    free(s);
    return rc;
}

vg_kafka_t *vg_serve_kafka_engine(vg_serve_kafka_t *s) { return s->k; }

int vg_serve_kafka_failed(const vg_serve_kafka_t *s) { return vg_kafka_failed(s->k); }
int vg_serve_kafka_ready(const vg_serve_kafka_t *s) { return vg_kafka_ready(s->k); }
int vg_serve_kafka_metrics(const vg_serve_kafka_t *s, vg_buf_t *out) {
    return vg_kafka_metrics(s->k, out);
}
const char *vg_serve_kafka_brokers(const vg_serve_kafka_t *s) { return s->brokers; }
void vg_serve_kafka_set_program(vg_serve_kafka_t *s, vg_program_t *p, int64_t ruleset) {
    vg_kafka_set_program(s->k, p, ruleset);
}
void vg_serve_kafka_set_lists(vg_serve_kafka_t *s, vg_lists_t *lists) {
    vg_kafka_set_lists(s->k, lists);
}

/* ---- vigil stream ---- */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* The settings also read from the environment (docs/kafka.md, Settings). */
#define ENV_NAMES                                                                        \
    "VIGIL_KAFKA, VIGIL_GROUP,\n"                                                          \
    "VIGIL_TOPIC_IN, VIGIL_TOPIC_ALERTS, VIGIL_TOPIC_DECISIONS, VIGIL_TOPIC_DLQ,\n"         \
    "VIGIL_CHANGELOG, VIGIL_TOPIC_LABELS, VIGIL_STATE, VIGIL_RULES, VIGIL_LISTS,\n"         \
    "VIGIL_LATENESS, VIGIL_DEDUPE_HORIZON, VIGIL_FUTURE and VIGIL_THREADS"

static void usage(FILE *f) {
    fprintf(f,
        "usage: vigil stream --kafka BROKERS|embedded --rules PATH [--state DIR] [options]\n"
        "\n"
        "The Kafka pipeline of `vigil serve` without the HTTP API: consumes transactions,\n"
        "decides, produces alerts, decisions and dead letters; state and offsets are\n"
        "checkpointed together. SIGTERM/SIGINT stop it cleanly.\n"
        "  --kafka BROKERS|embedded   bootstrap servers; `embedded` starts a mock broker\n"
        "                             in this process (address on stderr)\n"
        "  --group NAME               consumer group (vigil)\n"
        "  --topic-in NAME            transactions (transactions)\n"
        "  --topic-alerts NAME        alerts (alerts)\n"
        "  --topic-decisions NAME     every decision (unset: none)\n"
        "  --topic-dlq NAME           rejected input (transactions.dlq)\n"
        "  --changelog NAME|off       state changelog, one partition per input partition,\n"
        "                             compacted, created when missing (GROUP.changelog)\n"
        "  --topic-labels NAME|off    labels (POST /v1/labels of `vigil serve`), one\n"
        "                             partition per input partition, read by each\n"
        "                             partition's owner; created when missing (GROUP.labels)\n"
        "  --state DIR                state directory (./vigil-data)\n"
        "  --rules PATH               .vrl file or directory (repeatable)\n"
        "  --lists FILE               named lists, {\"name\": [\"item\", ...]}\n"
        "  --lateness DUR             allowed lateness (1h)\n"
        "  --dedupe-horizon DUR       duplicate horizon (24h)\n"
        "  --future DUR|off           reject events further ahead of the clock (5m)\n"
        "  --anomaly on|auto          anomaly models for every event, or only while the\n"
        "                             rules read anomaly.* (on)\n"
        "  --threads N                processing threads = group members (2)\n"
        "  --checkpoint-interval DUR  each partition about this often (5s)\n"
        "  --no-sync                  no fsync at checkpoints\n"
        "  -X NAME=VALUE              librdkafka setting for every client (repeatable;\n"
        "                             consumer.NAME / producer.NAME for one kind)\n"
        "  --partitions N             embedded only: partitions per topic (8)\n"
        "  --kafka-addr-file FILE     embedded only: write the broker address to FILE\n"
        "  --metrics-file FILE        write the metrics (Prometheus text) every second\n"
        "                             (checked writable at start)\n"
        "  --drain                    stop cleanly once caught up (no lag, idle for 1 s)\n"
        "An empty value is a usage error. When their flag is not given, these are read\n"
        "from the environment (an empty variable counts as unset): " ENV_NAMES ".\n"
        "The other flags are not read from the environment.\n");
}

static const char *env_or(const char *flag_val, const char *env) {
    if (flag_val) return flag_val;
    const char *v = getenv(env);
    return v && *v ? v : NULL;
}

/* --metrics-file at start: FILE.tmp can be made (then removed) and FILE is not a
 * directory, so that the renames of write_metrics can work. 0, or -1 with the reason in
 * errbuf. */
static int metrics_check(const char *path, char *errbuf, size_t errlen) {
    char tmp[4096];
    struct stat st;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(errbuf, errlen, "the path is too long");
        return -1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(errbuf, errlen, "is a directory");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(errbuf, errlen, "cannot write %.900s: %s", tmp, strerror(errno));
        return -1;
    }
    fclose(f);
    unlink(tmp);
    return 0;
}

/* Writes the metrics to path (through path.tmp, renamed). 0, or -1 with the reason in
 * errbuf (the caller logs it once: a failed write was silently skipped every second). */
static int write_metrics(vg_serve_kafka_t *s, const char *path, char *errbuf, size_t errlen) {
    vg_buf_t b;
    vg_buf_init(&b);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int rc = vg_serve_kafka_metrics(s, &b);
    if (rc) {
        snprintf(errbuf, errlen, "%s", vg_strerror(rc));
    } else {
        FILE *f = fopen(tmp, "w");
        int bad = !f;
        if (f) {
            bad = b.len && fwrite(b.p, 1, b.len, f) != b.len;
            bad = fclose(f) != 0 || bad;
            bad = bad || rename(tmp, path) != 0;
        }
        if (bad) {
            snprintf(errbuf, errlen, "%s", strerror(errno));
            rc = -1;
        }
    }
    vg_buf_deinit(&b);
    return rc ? -1 : 0;
}

/* write_metrics, logged on the first failure and when it works again. */
static void metrics_tick(vg_serve_kafka_t *s, const char *path, int *failing) {
    char why[256];
    if (write_metrics(s, path, why, sizeof(why)) != 0) {
        if (!*failing)
            fprintf(stderr, "vigil stream: --metrics-file %s: cannot write: %s (said once; "
                    "retried every second)\n", path, why);
        *failing = 1;
    } else if (*failing) {
        fprintf(stderr, "vigil stream: --metrics-file %s: written again\n", path);
        *failing = 0;
    }
}

int vg_cmd_stream(int argc, char **argv) {
    static const struct option lo[] = {
        {"kafka", required_argument, 0, 'k'},
        {"group", required_argument, 0, 'g'},
        {"topic-in", required_argument, 0, 'i'},
        {"topic-alerts", required_argument, 0, 'a'},
        {"topic-decisions", required_argument, 0, 'd'},
        {"topic-dlq", required_argument, 0, 'q'},
        {"changelog", required_argument, 0, 'c'},
        {"topic-labels", required_argument, 0, 'T'},
        {"state", required_argument, 0, 's'},
        {"rules", required_argument, 0, 'r'},
        {"lists", required_argument, 0, 'L'},
        {"lateness", required_argument, 0, 'l'},
        {"dedupe-horizon", required_argument, 0, 'H'},
        {"future", required_argument, 0, 'f'},
        {"anomaly", required_argument, 0, 'Y'},
        {"threads", required_argument, 0, 't'},
        {"checkpoint-interval", required_argument, 0, 'C'},
        {"no-sync", no_argument, 0, 'n'},
        {"partitions", required_argument, 0, 'p'},
        {"kafka-addr-file", required_argument, 0, 'A'},
        {"metrics-file", required_argument, 0, 'M'},
        {"quiet", no_argument, 0, 'Q'},
        {"drain", no_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    const char *kafka = NULL, *group = NULL, *tin = NULL, *talerts = NULL, *tdec = NULL,
               *tdlq = NULL, *state = NULL, *lists_file = NULL, *lateness = NULL,
               *horizon = NULL, *future = NULL, *threads = NULL, *ckpt = NULL,
               *metrics_file = NULL, *changelog = NULL, *tlabels = NULL, *anomaly = NULL;
    vg_serve_kafka_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.lateness_ms = cfg.dedupe_horizon_ms = -1;   /* not given: the defaults (1h, 24h) */
    char **rules = calloc((size_t)argc + 2, sizeof(char *));
    char **xconf = calloc((size_t)argc + 1, sizeof(char *));
    int nrules = 0, nx = 0, status = 2, drain = 0;
    vg_sources_t src = {0};
    vg_program_t *prog = NULL;
    vg_lists_t *lists = NULL;
    vg_serve_kafka_t *s = NULL;
    if (!rules || !xconf) {
        status = 1;
        goto done;
    }
    optind = 1;
    opterr = 0;
    int c, li = -1;
    while ((c = getopt_long(argc, argv, "X:", lo, &li)) != -1) {
        /* an empty value: `--changelog ''` and `--topic-labels ''` were the defaults
         * while `--topic-in ''` was refused */
        if (optarg && !*optarg && c != '?' && c != ':') {
            fprintf(stderr, "vigil stream: %s%s needs a value, not an empty string\n",
                    c == 'X' ? "-" : "--", c == 'X' ? "X" : lo[li].name);
            goto done;
        }
        li = -1;
        switch (c) {
        case 'k': kafka = optarg; break;
        case 'g': group = optarg; break;
        case 'i': tin = optarg; break;
        case 'a': talerts = optarg; break;
        case 'd': tdec = optarg; break;
        case 'q': tdlq = optarg; break;
        case 'c': changelog = optarg; break;
        case 'T': tlabels = optarg; break;
        case 's': state = optarg; break;
        case 'r': rules[nrules++] = optarg; break;
        case 'L': lists_file = optarg; break;
        case 'l': lateness = optarg; break;
        case 'H': horizon = optarg; break;
        case 'f': future = optarg; break;
        case 'Y': anomaly = optarg; break;
        case 't': threads = optarg; break;
        case 'C': ckpt = optarg; break;
        case 'n': cfg.no_sync = 1; break;
        case 'p': {   /* atoi took "abc" or -3 for the default 8 without a word */
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || n < 1 || n > 100000) {
                fprintf(stderr, "vigil stream: --partitions must be 1..100000, not '%s'\n", optarg);
                goto done;
            }
            cfg.partitions = (int)n;
            break;
        }
        case 'A': cfg.addr_file = optarg; break;
        case 'M': metrics_file = optarg; break;
        case 'Q': cfg.quiet = 1; break;
        case 'D': drain = 1; break;
        case 'X': xconf[nx++] = optarg; break;
        case 'h': usage(stdout); status = 0; goto done;
        case 'V': printf("vigil %s\n", VIGIL_VERSION); status = 0; goto done;
        default:
            fprintf(stderr, "vigil stream: bad option '%s'\n", argv[optind - 1]);
            usage(stderr);
            goto done;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigil stream: unexpected argument '%s'\n", argv[optind]);
        goto done;
    }
    anomaly = env_or(anomaly, "VIGIL_ANOMALY");
    if (anomaly && strcmp(anomaly, "on") != 0 && strcmp(anomaly, "auto") != 0) {
        fprintf(stderr, "vigil stream: --anomaly must be on or auto, not '%.40s'\n", anomaly);
        goto done;
    }
    cfg.anomaly = !anomaly || strcmp(anomaly, "on") == 0;
    cfg.kafka = env_or(kafka, "VIGIL_KAFKA");
    cfg.group = env_or(group, "VIGIL_GROUP");
    cfg.topic_in = env_or(tin, "VIGIL_TOPIC_IN");
    cfg.topic_alerts = env_or(talerts, "VIGIL_TOPIC_ALERTS");
    cfg.topic_decisions = env_or(tdec, "VIGIL_TOPIC_DECISIONS");
    cfg.topic_dlq = env_or(tdlq, "VIGIL_TOPIC_DLQ");
    cfg.changelog = env_or(changelog, "VIGIL_CHANGELOG");
    cfg.topic_labels = env_or(tlabels, "VIGIL_TOPIC_LABELS");
    cfg.state = env_or(state, "VIGIL_STATE");
    lists_file = env_or(lists_file, "VIGIL_LISTS");
    if (!cfg.state) cfg.state = "./vigil-data";
    if (nrules == 0 && getenv("VIGIL_RULES") && *getenv("VIGIL_RULES"))
        rules[nrules++] = getenv("VIGIL_RULES");
    lateness = env_or(lateness, "VIGIL_LATENESS");
    horizon = env_or(horizon, "VIGIL_DEDUPE_HORIZON");
    future = env_or(future, "VIGIL_FUTURE");
    threads = env_or(threads, "VIGIL_THREADS");
    if (!cfg.kafka) {
        fprintf(stderr, "vigil stream: --kafka BROKERS|embedded is required\n");
        goto done;
    }
    if (nrules == 0) {
        fprintf(stderr, "vigil stream: --rules PATH is required\n");
        goto done;
    }
    if (strcmp(cfg.kafka, "embedded") != 0 && (cfg.partitions || cfg.addr_file)) {
        /* they were silently ignored: the brokers' topics have their own partitions */
        fprintf(stderr, "vigil stream: %s is for --kafka embedded only (with brokers, the "
                "topics' partitions are the brokers' and their address is --kafka's)\n",
                cfg.partitions ? "--partitions" : "--kafka-addr-file");
        goto done;
    }
    {   /* durations at most 36500d; the checkpoint interval positive (0 was the
         * default 5s); future `off` or 0: no check */
        const struct {
            const char *v, *what;
            int64_t min, *dst;
        } durs[] = {
            {lateness, "lateness (--lateness or VIGIL_LATENESS)", 0, &cfg.lateness_ms},
            {horizon, "dedupe-horizon (--dedupe-horizon or VIGIL_DEDUPE_HORIZON)", 0,
             &cfg.dedupe_horizon_ms},
            {ckpt, "--checkpoint-interval", 1, &cfg.checkpoint_ms},
            {future && strcmp(future, "off") != 0 ? future : NULL,
             "future (--future or VIGIL_FUTURE)", 0, &cfg.future_ms},
        };
        int bad = 0;
        for (size_t i = 0; i < sizeof durs / sizeof durs[0] && !bad; i++) {
            char err[300];
            if (durs[i].v &&
                vg_cli_duration_in(durs[i].v, durs[i].min, 0, durs[i].dst, err, sizeof err)) {
                fprintf(stderr, "vigil stream: %s: %s\n", durs[i].what, err);
                bad = 1;
            }
        }
        if (bad) goto done;
        if (future && (strcmp(future, "off") == 0 || cfg.future_ms == 0)) cfg.future_ms = -1;
    }
    if (threads) {
        char *end;
        errno = 0;
        long n = strtol(threads, &end, 10);   /* "2x" was read as 2 */
        cfg.threads = errno || end == threads || *end || n < 1 || n > 256 ? 0 : (int)n;
        if (cfg.threads < 1 || cfg.threads > 256) {
            fprintf(stderr, "vigil stream: threads (--threads or VIGIL_THREADS) must be "
                    "1..256, not '%s'\n", threads);
            goto done;
        }
    }
    cfg.kafka_conf = (const char *const *)xconf;
    {
        char terr[700];
        if (vg_serve_kafka_check(&cfg, terr, sizeof terr) != 0) {
            fprintf(stderr, "vigil stream: %s\n", terr);
            goto done;
        }
    }
    cfg.ruleset_version = 1;   /* rules from files: version 1, as in vigil replay */
    status = 1;
    char err[1024];
    if (metrics_file && metrics_check(metrics_file, err, sizeof(err)) != 0) {
        /* it was silently never written */
        fprintf(stderr, "vigil stream: --metrics-file %s: %s\n", metrics_file, err);
        goto done;
    }
    if (vg_sources_load(&src, rules, nrules, err, sizeof(err)) != 0) {
        fprintf(stderr, "vigil stream: %s\n", err);
        goto done;
    }
    prog = vg_cli_compile(&src, NULL, NULL);
    if (!prog) {
        fprintf(stderr, "vigil stream: the rules do not compile\n");
        goto done;
    }
    if (lists_file) {
        vg_list_source_t ls;
        if (vg_list_source_file(&ls, lists_file) != 0) goto done;
        lists = vg_list_source_fetch(&ls, err, sizeof(err));
        vg_list_source_close(&ls);
        if (!lists) {
            fprintf(stderr, "vigil stream: --lists %s\n", err);
            goto done;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);   /* a closed terminal: a clean stop, as SIGTERM */
    signal(SIGPIPE, SIG_IGN);
    s = vg_serve_kafka_start(&cfg, prog, lists, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "vigil stream: %s\n", err);
        goto done;
    }
    int ready_said = 0, tick = 0, drain_idle = 0, metrics_failing = 0;
    uint64_t drain_seen = UINT64_MAX;
    while (!g_stop && !vg_serve_kafka_failed(s)) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        if (!ready_said && vg_serve_kafka_ready(s)) {
            fprintf(stderr, "vigil stream: ready\n");
            ready_said = 1;
        }
        if (metrics_file && ++tick % 10 == 0) metrics_tick(s, metrics_file, &metrics_failing);
        if (drain) {
            /* caught up: no lag and nothing new for a second, once every thread has been
             * assigned or this process owns every input partition (a thread whose group
             * join never completes, seen once on a loaded machine, must not keep a
             * drained stream running) */
            vg_kafka_stats_t ds;
            vg_kafka_get_stats(s->k, &ds);
            int all = ready_said ||
                      (ds.input_partitions > 0 && ds.partitions >= ds.input_partitions);
            if (all && ds.lag == 0 && ds.partitions > 0 && ds.messages == drain_seen) {
                if (++drain_idle >= 10) break;
            } else {
                drain_idle = 0;
            }
            drain_seen = ds.messages;
        }
    }
    fprintf(stderr, "vigil stream: stopping\n");
    vg_kafka_stop(s->k);
    int rc = vg_kafka_wait(s->k);
    if (metrics_file) metrics_tick(s, metrics_file, &metrics_failing);
    vg_kafka_stats_t st;
    vg_kafka_get_stats(s->k, &st);
    fprintf(stderr, "vigil stream: %" PRIu64 " messages: %" PRIu64 " decided, %" PRIu64
            " duplicates, %" PRIu64 " rejected, %" PRIu64 " empty; %" PRIu64 " alerts, %" PRIu64
            " dead letters; %" PRIu64 " labels applied; %s\n", st.messages, st.decided,
            st.duplicates, st.rejected, st.blank, st.alerts, st.dead_letters, st.labels,
            rc == 0 ? "stopped cleanly" : "FAILED");
    status = rc == 0 ? 0 : 1;
done:
    vg_serve_kafka_stop(s);
    vg_lists_unref(lists);
    vg_prog_unref(prog);
    vg_sources_free(&src);
    free(rules);
    free(xconf);
    return status;
}
