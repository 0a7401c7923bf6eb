/* config.c - settings of `vigil serve` from flags, environment and file (see config.h).
 *
 * Every setting is a row of one table (name, kind, where it goes, default). Values are
 * gathered as strings in three layers (file, environment, flags), the highest layer
 * that has a value wins, and then each winner is parsed into its typed field, so that
 * every source reports errors the same way. librdkafka settings (`kafka.<property>`,
 * `-X property=value`, VIGIL_KAFKA_CONF) are layered the same way, one property at a
 * time, and each winner is checked by engine/kafka.h's vg_kafka_conf_check().
 */
#include "api/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "api/cli.h"
#include "engine/kafka.h"
#include "rules/errors.h"
#include "rules/file.h"

typedef enum { K_STR, K_DUR, K_INT, K_SIZE } kind_t;

typedef struct setting {
    const char *name;      /* flag without dashes; env is VIGIL_ + upper, '-' -> '_' */
    kind_t kind;
    size_t off;            /* offset in vg_config_t */
    const char *def;       /* default, or NULL */
    const char *help;
} setting_t;

#define OFF(f) offsetof(vg_config_t, f)
static const setting_t SETTINGS[] = {
    {"http", K_STR, OFF(http), "127.0.0.1:8080", "HOST:PORT of the HTTP API"},
    {"state", K_STR, OFF(state), "./vigil-data", "state directory (RocksDB)"},
    {"rules", K_STR, OFF(rules), NULL, "a .vrl file or directory loaded at start"},
    {"kafka", K_STR, OFF(kafka), NULL, "Kafka brokers (or `embedded`)"},
    {"group", K_STR, OFF(group), "vigil", "Kafka consumer group"},
    {"topic-in", K_STR, OFF(topic_in), "transactions", "input topic"},
    {"topic-alerts", K_STR, OFF(topic_alerts), "alerts", "alerts topic"},
    {"topic-decisions", K_STR, OFF(topic_decisions), NULL, "decisions topic (unset: none)"},
    {"topic-dlq", K_STR, OFF(topic_dlq), "transactions.dlq", "dead-letter topic"},
    {"advertise", K_STR, OFF(advertise), NULL,
     "HTTP base URL of this instance for other instances' 409 not_owner (http://HTTP)"},
    {"changelog", K_STR, OFF(changelog), NULL,
     "state changelog topic (unset: GROUP.changelog; off: none)"},
    {"topic-labels", K_STR, OFF(topic_labels), NULL,
     "labels topic, read by each partition's owner (unset: GROUP.labels; off: none)"},
    {"redis", K_STR, OFF(redis), NULL, "HOST:PORT of Redis (control plane)"},
    {"redis-user", K_STR, OFF(redis_user), NULL, "Redis ACL user (with redis-password)"},
    {"redis-password", K_STR, OFF(redis_password), NULL,
     "Redis password (config file or VIGIL_REDIS_PASSWORD, never a flag)"},
    {"lateness", K_DUR, OFF(lateness_ms), "1h", "allowed lateness"},
    {"dedupe-horizon", K_DUR, OFF(dedupe_horizon_ms), "24h", "duplicate horizon"},
    {"future", K_DUR, OFF(future_ms), "5m", "reject events this far ahead of the clock (off: never)"},
    {"shards", K_INT, OFF(shards), "1", "engine shards (account hash % N)"},
    {"threads", K_INT, OFF(threads), "2", "HTTP worker threads"},
    {"max-body", K_SIZE, OFF(max_body), "1M", "largest request body (events at most 64K, rule modules at most 1M)"},
    {"max-connections", K_INT, OFF(max_connections), "1024", "concurrent connections"},
    {"request-timeout", K_DUR, OFF(request_timeout_ms), "30s", "idle connection timeout; a request's headers and its body must each arrive within it"},
    {"tls-cert", K_STR, OFF(tls_cert), NULL,
     "PEM certificate (chain) file: the HTTP API speaks HTTPS (with tls-key)"},
    {"tls-key", K_STR, OFF(tls_key), NULL, "PEM private key file of tls-cert"},
    {"deadline", K_DUR, OFF(deadline_ms), "250ms", "queueing deadline before 429"},
    {"alert-retention", K_DUR, OFF(alert_retention_ms), "30d", "how long alerts are kept"},
    {"checkpoint-interval", K_DUR, OFF(checkpoint_ms), "1s", "state checkpoint interval"},
    {"mem-budget", K_SIZE, OFF(mem_budget), "0", "account state per shard in memory"},
    {"kafka-threads", K_INT, OFF(kafka_threads), "2", "Kafka processing threads (group members)"},
    {"anomaly", K_STR, OFF(anomaly), "on",
     "anomaly models: on (every event) or auto (only while the rules read anomaly.*)"},
};
#define NSET ((int)(sizeof(SETTINGS) / sizeof(SETTINGS[0])))

/* The durations whose range is narrower than 0..VG_CLI_DURATION_MAX_MS (36500d). */
static const struct {
    const char *name;
    int64_t min_ms, max_ms;   /* max 0: VG_CLI_DURATION_MAX_MS */
} DUR_RANGE[] = {
    /* 0 was 1s for libmicrohttpd and cut every connection at once; libmicrohttpd 0.9.75
     * keeps it as unsigned int milliseconds: 4294968s was 0.7s */
    {"request-timeout", 1, 49 * 86400000LL},
    {"deadline", 1, 0},              /* 0 answered every score request 429 */
    {"checkpoint-interval", 1, 0},   /* 0 was taken as 1s without a word */
};

void vg_config_usage(FILE *f) {
    fprintf(f, "usage: vigil serve [--config FILE] [--SETTING VALUE ...]\n\n"
               "The service: the HTTP API (docs/api.md), Redis control plane when --redis is\n"
               "set. Every setting is also a config-file key (`key = value`) and an\n"
               "environment variable VIGIL_<NAME>; a flag wins over the environment, the\n"
               "environment over the file. Tokens (`role:token,...`, roles admin, analyst,\n"
               "scorer) come from the file's `tokens` key or VIGIL_TOKENS only (which then\n"
               "replaces the file's).\n\n"
               "  --config FILE            config file (or VIGIL_CONFIG)\n"
               "  -X PROPERTY=VALUE        a librdkafka setting for every Kafka client,\n"
               "                           repeatable (file: `kafka.PROPERTY = VALUE`; env:\n"
               "                           VIGIL_KAFKA_CONF=\"p=v,p=v\"); `consumer.`/`producer.`\n"
               "                           prefix: one kind of client only\n");
    for (int i = 0; i < NSET; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", SETTINGS[i].name);
        fprintf(f, "  %-24s %s%s%s%s\n", flag, SETTINGS[i].help, SETTINGS[i].def ? " (" : "",
                SETTINGS[i].def ? SETTINGS[i].def : "", SETTINGS[i].def ? ")" : "");
    }
    fprintf(f, "  --help, --version\n");
}

void vg_sha256(const void *p, size_t n, unsigned char out[32]) {
    unsigned int len = 32;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

int vg_config_anomaly(const vg_config_t *c) {
    return !c->anomaly || strcmp(c->anomaly, "auto") != 0;
}

const char *vg_role_name(vg_role_t r) {
    switch (r) {
    case VG_ROLE_SCORER: return "scorer";
    case VG_ROLE_ANALYST: return "analyst";
    case VG_ROLE_ADMIN: return "admin";
    default: return "none";
    }
}

static vg_role_t parse_role(const char *s, size_t n) {
    if (n == 5 && memcmp(s, "admin", 5) == 0) return VG_ROLE_ADMIN;
    if (n == 7 && memcmp(s, "analyst", 7) == 0) return VG_ROLE_ANALYST;
    if (n == 6 && memcmp(s, "scorer", 6) == 0) return VG_ROLE_SCORER;
    return VG_ROLE_NONE;
}

int vg_config_add_tokens(vg_config_t *c, const char *spec, char *errbuf, size_t errlen) {
    const char *p = spec;
    int entry = 0;   /* entries of this spec, counted from 1, name them in errors: an
                        entry's text may be a secret, so it is never shown */
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        entry++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *end = e;
        while (end > p && isspace((unsigned char)end[-1])) end--;
        const char *colon = memchr(p, ':', (size_t)(end - p));
        /* the secret without the whitespace after the colon (`admin: s3cret`): a header's
         * token never has it (the whitespace around it is stripped), so no request could
         * use such a token */
        const char *sec = colon ? colon + 1 : NULL;
        while (sec && sec < end && isspace((unsigned char)*sec)) sec++;
        if (!colon || colon == p || sec == end) {
            snprintf(errbuf, errlen, "token entry %d (of %zu bytes, not shown) is not "
                     "role:token", entry, (size_t)(end - p));
            return VG_EINVAL;
        }
        vg_role_t r = parse_role(p, (size_t)(colon - p));
        if (r == VG_ROLE_NONE) {
            /* the role is shown only when it looks like a misspelt one (up to 16 lower
             * case letters): a token written token:role must not be printed */
            size_t rl = (size_t)(colon - p), k = 0;
            while (k < rl && p[k] >= 'a' && p[k] <= 'z') k++;
            if (rl <= 16 && k == rl)
                snprintf(errbuf, errlen, "token entry %d: unknown role '%.*s' (admin, analyst, "
                         "scorer)", entry, (int)rl, p);
            else
                snprintf(errbuf, errlen, "token entry %d: unknown role (not shown; admin, "
                         "analyst, scorer)", entry);
            return VG_EINVAL;
        }
        unsigned char h[32];
        vg_sha256(sec, (size_t)(end - sec), h);
        for (int i = 0; i < c->ntokens; i++)
            if (CRYPTO_memcmp(h, c->tokens[i].hash, 32) == 0) {
                /* one secret, one role: with two, the role a caller got depended on order */
                snprintf(errbuf, errlen, "the token of entry %d (%s) is given twice; a token "
                         "has one role", entry, vg_role_name(r));
                OPENSSL_cleanse(h, sizeof(h));
                return VG_EINVAL;
            }
        vg_token_t *nt = realloc(c->tokens, (size_t)(c->ntokens + 1) * sizeof(*nt));
        if (!nt) return VG_ENOMEM;
        c->tokens = nt;
        nt[c->ntokens].role = r;
        memcpy(nt[c->ntokens].hash, h, 32);
        if (PKCS5_PBKDF2_HMAC(sec, (int)(end - sec), (const unsigned char *)VG_WHO_SALT,
                              (int)sizeof(VG_WHO_SALT) - 1, VG_WHO_ITER, EVP_sha256(),
                              (int)sizeof(nt[c->ntokens].who), nt[c->ntokens].who) != 1) {
            OPENSSL_cleanse(h, sizeof(h));
            return VG_ENOMEM;
        }
        OPENSSL_cleanse(h, sizeof(h));
        c->ntokens++;
        p = e;
    }
    if (entry == 0) {   /* "," or " ": auth was off, silently, even over the file's tokens */
        snprintf(errbuf, errlen, "no role:token entry in %zu bytes of commas and spaces (to "
                 "serve without auth, leave tokens out)", strlen(spec));
        return VG_EINVAL;
    }
    return 0;
}

vg_role_t vg_config_role(const vg_config_t *c, const char *token, size_t len,
                         unsigned char who_out[4]) {
    unsigned char h[32];
    vg_sha256(token, len, h);
    vg_role_t role = VG_ROLE_NONE;
    for (int i = 0; i < c->ntokens; i++)
        if (CRYPTO_memcmp(h, c->tokens[i].hash, 32) == 0) {
            role = c->tokens[i].role;
            if (who_out) memcpy(who_out, c->tokens[i].who, 4);
        }
    return role;
}

void vg_config_free(vg_config_t *c) {
    if (!c) return;
    for (int i = 0; i < NSET; i++)
        if (SETTINGS[i].kind == K_STR) free(*(char **)((char *)c + SETTINGS[i].off));
    if (c->tokens) OPENSSL_cleanse(c->tokens, (size_t)c->ntokens * sizeof(*c->tokens));
    free(c->tokens);
    for (int i = 0; i < c->nkafka_conf; i++) free(c->kafka_conf[i]);
    free(c->kafka_conf);
    free(c->config_file);
    free(c);
}

static int find_setting(const char *name, size_t n) {
    for (int i = 0; i < NSET; i++) {
        const char *s = SETTINGS[i].name;
        if (strlen(s) != n) continue;
        size_t k = 0;
        for (; k < n; k++) {
            char a = name[k] == '_' ? '-' : (char)tolower((unsigned char)name[k]);
            if (a != s[k]) break;
        }
        if (k == n) return i;
    }
    return -1;
}

/* ---- librdkafka settings ---- */

/* One layer of librdkafka settings, or the merged result: "name=value" strings (owned)
 * and where each came from (static strings). */
typedef struct kconf {
    char **kv;
    const char **from;
    int n, cap;
} kconf_t;

static void kconf_free(kconf_t *l) {
    for (int i = 0; i < l->n; i++) free(l->kv[i]);
    free(l->kv);
    free(l->from);
    memset(l, 0, sizeof(*l));
}

/* Sets name=value (name of nl bytes, value NUL-terminated) in l: an earlier value of
 * the same name is removed and the new one appended, so that later settings come
 * later (librdkafka applies aliases such as compression.codec/compression.type in
 * order). 0 or -1 (out of memory). */
static int kconf_put(kconf_t *l, const char *name, size_t nl, const char *val,
                     const char *from) {
    for (int i = 0; i < l->n; i++)
        if (strncmp(l->kv[i], name, nl) == 0 && l->kv[i][nl] == '=') {
            free(l->kv[i]);
            memmove(&l->kv[i], &l->kv[i + 1], (size_t)(l->n - i - 1) * sizeof(char *));
            memmove(&l->from[i], &l->from[i + 1], (size_t)(l->n - i - 1) * sizeof(char *));
            l->n--;
            break;
        }
    if (l->n + 2 > l->cap) {   /* room for a NULL terminator too */
        int cap = l->cap ? l->cap * 2 : 8;
        char **kv = realloc(l->kv, (size_t)cap * sizeof(char *));
        if (!kv) return -1;
        l->kv = kv;
        const char **fr = realloc(l->from, (size_t)cap * sizeof(char *));
        if (!fr) return -1;
        l->from = fr;
        l->cap = cap;
    }
    size_t vl = strlen(val);
    char *e = malloc(nl + vl + 2);
    if (!e) return -1;
    memcpy(e, name, nl);
    e[nl] = '=';
    memcpy(e + nl + 1, val, vl + 1);
    l->kv[l->n] = e;
    l->from[l->n] = from;
    l->n++;
    l->kv[l->n] = NULL;
    return 0;
}

/* Adds "name=value" (as given to -X or in VIGIL_KAFKA_CONF) to l. 0, or 2 with a
 * message when it is not name=value. */
static int kconf_put_kv(kconf_t *l, const char *kv, const char *from) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        fprintf(stderr, "vigil serve: %s: '%s': expected PROPERTY=VALUE (a librdkafka "
                        "setting)\n", from, kv);
        return 2;
    }
    return kconf_put(l, kv, (size_t)(eq - kv), eq + 1, from) ? 2 : 0;
}

/* Adds VIGIL_KAFKA_CONF's "p=v,p=v" entries (`\,` is a comma inside a value; spaces
 * around an entry are dropped). 0 or 2. */
static int kconf_put_env(kconf_t *l, const char *spec) {
    char *buf = malloc(strlen(spec) + 1);
    if (!buf) return 2;
    int rc = 0;
    const char *p = spec;
    while (!rc && *p) {
        size_t n = 0;
        for (; *p && *p != ','; p++) {
            if (*p == '\\' && p[1] == ',') p++;
            buf[n++] = *p;
        }
        if (*p == ',') p++;
        buf[n] = 0;
        char *b = buf, *e = buf + n;
        while (isspace((unsigned char)*b)) b++;
        while (e > b && isspace((unsigned char)e[-1])) *--e = 0;
        if (*b) rc = kconf_put_kv(l, b, "VIGIL_KAFKA_CONF");
    }
    free(buf);
    return rc;
}

/* Merges the layers (file < environment < flags) into c->kafka_conf and checks every
 * winner. 0 or 2 (message printed). */
static int kconf_merge(vg_config_t *c, kconf_t *layers[3]) {
    kconf_t m = {0};
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++)
        for (int i = 0; i < layers[k]->n && !rc; i++) {
            const char *kv = layers[k]->kv[i];
            if (kconf_put(&m, kv, (size_t)(strchr(kv, '=') - kv), strchr(kv, '=') + 1,
                          layers[k]->from[i]))
                rc = 2;
        }
    for (int i = 0; i < m.n && !rc; i++) {
        char err[1024];
        if (vg_kafka_conf_check(m.kv[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "vigil serve: %s: %s\n", m.from[i], err);
            rc = 2;
        }
    }
    if (!rc && !m.kv && !(m.kv = calloc(1, sizeof(char *)))) rc = 2;
    if (rc) {
        kconf_free(&m);
        return rc;
    }
    c->kafka_conf = m.kv;   /* NULL-terminated */
    c->nkafka_conf = m.n;
    free(m.from);
    return 0;
}

/* Parses value `v` of setting i into c. 0 or 2 (message printed). */
static int set_value(vg_config_t *c, int i, const char *v, const char *from) {
    const setting_t *s = &SETTINGS[i];
    void *dst = (char *)c + s->off;
    switch (s->kind) {
    case K_STR: {
        if (dst == &c->anomaly && strcmp(v, "on") != 0 && strcmp(v, "auto") != 0) {
            fprintf(stderr, "vigil serve: %s: anomaly must be on or auto, not '%.40s'\n", from, v);
            return 2;
        }
        char *d = strdup(v);
        if (!d) return 2;
        free(*(char **)dst);
        *(char **)dst = d;
        return 0;
    }
    case K_DUR: {
        if (dst == &c->future_ms && strcmp(v, "off") == 0) {   /* `off` or 0: no future
                                                                  check, as `vigil stream` */
            c->future_ms = -1;
            return 0;
        }
        char err[300];
        int64_t lo = 0, hi = 0;
        for (size_t k = 0; k < sizeof DUR_RANGE / sizeof DUR_RANGE[0]; k++)
            if (strcmp(DUR_RANGE[k].name, s->name) == 0) {
                lo = DUR_RANGE[k].min_ms;
                hi = DUR_RANGE[k].max_ms;
            }
        if (vg_cli_duration_in(v, lo, hi, (int64_t *)dst, err, sizeof err)) {
            fprintf(stderr, "vigil serve: %s: %s\n", from, err);
            return 2;
        }
        if (dst == &c->future_ms && c->future_ms == 0) c->future_ms = -1;
        return 0;
    }
    case K_SIZE:
        if (vg_cli_size(v, (size_t *)dst) == 0) return 0;
        fprintf(stderr, "vigil serve: %s: bad size '%s' (e.g. 64K, 1M)\n", from, v);
        return 2;
    case K_INT: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || *end || end == v) {
            fprintf(stderr, "vigil serve: %s: bad number '%s' (a whole number, 1 or more)\n",
                    from, v);
            return 2;
        }
        if (n < 1 || n > 1000000) {
            fprintf(stderr, "vigil serve: %s: '%s': must be %s\n", from, v,
                    n < 1 ? "1 or more" : "at most 1000000");
            return 2;
        }
        *(int *)dst = (int)n;
        return 0;
    }
    }
    return 2;
}

/* The file's `tokens =` / `token =` lines, kept as text until it is known whether
 * VIGIL_TOKENS replaces them (then they are not parsed, as any setting the environment
 * overrides), with their line numbers for the errors. */
typedef struct ftokens {
    char **spec;
    int *line;
    int n;
} ftokens_t;

static int ftokens_add(ftokens_t *t, const char *v, int lno) {
    char **ns = realloc(t->spec, (size_t)(t->n + 1) * sizeof(*ns));
    if (!ns) return 2;
    t->spec = ns;
    int *nl = realloc(t->line, (size_t)(t->n + 1) * sizeof(*nl));
    if (!nl) return 2;
    t->line = nl;
    if (!(t->spec[t->n] = strdup(v))) return 2;
    t->line[t->n++] = lno;
    return 0;
}

static void ftokens_free(ftokens_t *t) {
    for (int i = 0; i < t->n; i++) {
        OPENSSL_cleanse(t->spec[i], strlen(t->spec[i]));
        free(t->spec[i]);
    }
    free(t->spec);
    free(t->line);
}

/* Reads the config file into vals[] (strdup'ed), token lines into ft and kafka.*
 * settings into kf. Lines of any length; a UTF-8 byte-order mark at the start is
 * skipped. A setting or a kafka.* property given twice is an error (a second `threads
 * =` silently won before); `token` lines repeat by design. 0 or 2. */
static int read_file(const char *path, char **vals, int *set_at, ftokens_t *ft, kconf_t *kf) {
    char why[400];
    FILE *f = vg_file_fopen(path, why, sizeof why);   /* a regular file: not /dev/zero */
    if (!f) {
        fprintf(stderr, "vigil serve: config %s\n", why);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lno = 0, rc = 0;
    memset(set_at, 0, NSET * sizeof(*set_at));
    kconf_t seen = {0};   /* kafka.* names given so far, the value being the line number */
    while (!rc && (got = getline(&line, &cap, f)) >= 0) {
        lno++;
        char *p = line;
        if (lno == 1 && got >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
        if (memchr(p, 0, (size_t)(got - (p - line)))) {
            fprintf(stderr, "vigil serve: %s:%d: a NUL byte in the line\n", path, lno);
            rc = 2;
            break;
        }
        while (isspace((unsigned char)*p)) p++;
        if (*p == 0 || *p == '#') continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            fprintf(stderr, "vigil serve: %s:%d: expected `key = value`\n", path, lno);
            rc = 2;
            break;
        }
        char *ke = eq;
        while (ke > p && isspace((unsigned char)ke[-1])) ke--;
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t') v++;
        char *ve = v + strlen(v);
        while (ve > v && isspace((unsigned char)ve[-1])) ve--;
        *ve = 0;
        if (*v == '"') {
            char *q = strchr(v + 1, '"');
            char *after = q ? q + 1 : NULL;
            while (after && isspace((unsigned char)*after)) after++;
            if (q && *after && *after != '#') {   /* the last quote closes: "a"b" stays whole */
                q = strrchr(v + 1, '"');
                after = q + 1;
                while (isspace((unsigned char)*after)) after++;
            }
            if (!q) {
                fprintf(stderr, "vigil serve: %s:%d: unterminated quote\n", path, lno);
                rc = 2;
                break;
            }
            if (*after && *after != '#') {
                fprintf(stderr, "vigil serve: %s:%d: unexpected '%.20s' after the quoted value\n",
                        path, lno, after);
                rc = 2;
                break;
            }
            *q = 0;
            v++;
        } else {
            for (char *h = v; *h; h++)   /* a comment after whitespace */
                if (*h == '#' && h > v && isspace((unsigned char)h[-1])) {
                    *h = 0;
                    ve = h;
                    while (ve > v && isspace((unsigned char)ve[-1])) *--ve = 0;
                    break;
                }
        }
        size_t kl = (size_t)(ke - p);
        if ((kl == 6 && memcmp(p, "tokens", 6) == 0) || (kl == 5 && memcmp(p, "token", 5) == 0)) {
            rc = ftokens_add(ft, v, lno);
            continue;
        }
        if (kl > 6 && memcmp(p, "kafka.", 6) == 0) {
            for (int i = 0; i < seen.n; i++)
                if (strncmp(seen.kv[i], p + 6, kl - 6) == 0 && seen.kv[i][kl - 6] == '=') {
                    fprintf(stderr, "vigil serve: %s:%d: '%.*s' is already set on line %s\n",
                            path, lno, (int)kl, p, seen.kv[i] + kl - 5);
                    rc = 2;
                }
            char at[16];
            snprintf(at, sizeof(at), "%d", lno);
            if (!rc && (kconf_put(&seen, p + 6, kl - 6, at, "") ||
                        kconf_put(kf, p + 6, kl - 6, v, "config file")))
                rc = 2;
            continue;
        }
        int i = find_setting(p, kl);
        if (i < 0) {
            fprintf(stderr, "vigil serve: %s:%d: unknown setting '%.*s'\n", path, lno, (int)kl, p);
            rc = 2;
            break;
        }
        if (set_at[i]) {
            fprintf(stderr, "vigil serve: %s:%d: '%s' is already set on line %d\n", path, lno,
                    SETTINGS[i].name, set_at[i]);
            rc = 2;
            break;
        }
        set_at[i] = lno;
        free(vals[i]);
        vals[i] = strdup(v);
        if (!vals[i]) rc = 2;
    }
    kconf_free(&seen);
    free(line);
    fclose(f);
    return rc;
}

int vg_config_http_addr(const char *hp, struct sockaddr_storage *ss, char *errbuf,
                        size_t errlen) {
    const char *colon = strrchr(hp, ':');
    if (!colon) {
        snprintf(errbuf, errlen, "'%s': expected HOST:PORT", hp);
        return VG_EINVAL;
    }
    char host[256];
    if ((size_t)(colon - hp) >= sizeof(host)) {
        snprintf(errbuf, errlen, "the host is too long");
        return VG_EINVAL;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
    char *pend;
    long port = strtol(colon + 1, &pend, 10);   /* 0: a free port, printed when listening */
    if (!colon[1] || *pend || colon[1] == '-' || colon[1] == '+' || port > 65535) {
        snprintf(errbuf, errlen, "'%s': bad port", hp);
        return VG_EINVAL;
    }
    memset(ss, 0, sizeof(*ss));
    size_t hl = strlen(host);
    if (host[0] == '[') {   /* an IPv6 address, bracketed as in URLs: [::1]:8080 */
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (hl < 3 || host[hl - 1] != ']') {
            snprintf(errbuf, errlen, "'%s': an IPv6 host is written in brackets, as "
                     "[::1]:8080", hp);
            return VG_EINVAL;
        }
        host[hl - 1] = 0;
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) {
            snprintf(errbuf, errlen, "'%s': not an IPv6 address", hp);
            return VG_EINVAL;
        }
        return 0;
    }
    struct sockaddr_in *sa = (struct sockaddr_in *)ss;
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof(host), "127.0.0.1");
    if (host[0] == 0) {   /* it bound every address (0.0.0.0) without a word */
        snprintf(errbuf, errlen, "'%s': give a host (127.0.0.1:%ld for this machine, *:%ld for "
                 "every IPv4 address)", hp, port, port);
        return VG_EINVAL;
    }
    if (strcmp(host, "*") == 0) sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        snprintf(errbuf, errlen, "'%s': host must be an IPv4 address or an IPv6 address "
                 "in brackets ([::1]:8080)", hp);
        return VG_EINVAL;
    }
    return 0;
}

int vg_config_load(int argc, char **argv, vg_config_t **out) {
    *out = NULL;
    vg_config_t *c = calloc(1, sizeof(*c));
    char *file_vals[NSET], *flag_vals[NSET];
    int file_lines[NSET];   /* where each file value was set */
    char srcs[NSET][300];   /* where each setting's value came from, for its errors */
    memset(file_vals, 0, sizeof(file_vals));
    memset(file_lines, 0, sizeof(file_lines));
    memset(flag_vals, 0, sizeof(flag_vals));
    kconf_t kfile = {0}, kenv = {0}, kflag = {0};
    kconf_t *klayers[3] = {&kfile, &kenv, &kflag};
    ftokens_t ftok = {0};
    if (!c) return 2;
    int rc = 0;
    const char *cfg = getenv("VIGIL_CONFIG");

    /* flags: --name VALUE or --name=VALUE */
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            vg_config_usage(stdout);
            rc = -1;
            break;
        }
        if (strcmp(a, "--version") == 0) {
            printf("vigil %s\n", VIGIL_VERSION);
            rc = -1;
            break;
        }
        if (strncmp(a, "-X", 2) == 0) {   /* -X name=value or -Xname=value */
            const char *kv = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!kv) {
                fprintf(stderr, "vigil serve: option '-X' needs PROPERTY=VALUE\n");
                rc = 2;
                break;
            }
            rc = kconf_put_kv(&kflag, kv, "flag -X");
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "vigil serve: unexpected argument '%s'\n", a);
            rc = 2;
            break;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const char *val = eq ? eq + 1 : NULL;
        int s = -1;
        for (int k = 0; k < NSET; k++)
            if (strlen(SETTINGS[k].name) == nl && memcmp(SETTINGS[k].name, name, nl) == 0) s = k;
        /* an unknown option is said to be unknown, with a value or without one (the last
         * flag, `--bogus`, was said to need a value) */
        if (s < 0 && !(nl == 6 && (memcmp(name, "config", 6) == 0 || memcmp(name, "tokens", 6) == 0)) &&
            !(nl == 5 && memcmp(name, "token", 5) == 0) &&
            !(nl == 14 && memcmp(name, "redis-password", 14) == 0)) {
            fprintf(stderr, "vigil serve: unknown option '--%.*s'\n", (int)nl, name);
            rc = 2;
            break;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vigil serve: option '%s' needs a value\n", a);
                rc = 2;
                break;
            }
            val = argv[++i];
        }
        if (nl == 6 && memcmp(name, "config", 6) == 0) {
            cfg = val;
            continue;
        }
        if ((nl == 6 && memcmp(name, "tokens", 6) == 0) || (nl == 5 && memcmp(name, "token", 5) == 0)) {
            fprintf(stderr, "vigil serve: tokens are never given as flags (command lines are "
                            "visible to every user); use the config file or VIGIL_TOKENS\n");
            rc = 2;
            break;
        }
        if (nl == 14 && memcmp(name, "redis-password", 14) == 0) {
            fprintf(stderr, "vigil serve: the Redis password is never given as a flag (command "
                            "lines are visible to every user); use the config file or "
                            "VIGIL_REDIS_PASSWORD\n");
            rc = 2;
            break;
        }
        free(flag_vals[s]);
        flag_vals[s] = strdup(val);
    }
    if (!rc && cfg) {
        c->config_file = strdup(cfg);
        rc = read_file(cfg, file_vals, file_lines, &ftok, &kfile);
    }
    if (!rc) {
        const char *kc = getenv("VIGIL_KAFKA_CONF");
        if (kc) rc = kconf_put_env(&kenv, kc);
    }
    if (!rc) rc = kconf_merge(c, klayers);
    if (!rc) {   /* VIGIL_TOKENS replaces the file's tokens (empty: unset, as any setting) */
        const char *t = getenv("VIGIL_TOKENS");
        char err[200];
        if (t && *t) {
            if (vg_config_add_tokens(c, t, err, sizeof(err)) != 0) {
                fprintf(stderr, "vigil serve: VIGIL_TOKENS: %s\n", err);
                rc = 2;
            }
        } else {
            for (int i = 0; i < ftok.n && !rc; i++)
                if (vg_config_add_tokens(c, ftok.spec[i], err, sizeof(err)) != 0) {
                    fprintf(stderr, "vigil serve: %s:%d: %s\n", cfg, ftok.line[i], err);
                    rc = 2;
                }
        }
    }
    for (int i = 0; i < NSET && !rc; i++) {
        char env[64] = "VIGIL_";
        size_t k = 6;
        for (const char *n = SETTINGS[i].name; *n && k < sizeof(env) - 1; n++)
            env[k++] = *n == '-' ? '_' : (char)toupper((unsigned char)*n);
        env[k] = 0;
        const char *ev = getenv(env);
        /* where the value comes from names it in errors: FILE:LINE: name, VIGIL_NAME,
         * --name, or the name (the default) */
        const char *v = SETTINGS[i].def;
        snprintf(srcs[i], sizeof(srcs[i]), "%s", SETTINGS[i].name);
        if (file_vals[i]) {
            v = file_vals[i];
            snprintf(srcs[i], sizeof(srcs[i]), "%.250s:%d: %s", cfg, file_lines[i],
                     SETTINGS[i].name);
        }
        if (ev && *ev) v = ev, snprintf(srcs[i], sizeof(srcs[i]), "%s", env);
        if (flag_vals[i]) v = flag_vals[i], snprintf(srcs[i], sizeof(srcs[i]), "--%s", SETTINGS[i].name);
        if (v) rc = set_value(c, i, v, srcs[i]);
    }
#define SRC(name) srcs[find_setting(name, strlen(name))]
    if (!rc && c->shards > 256) {
        fprintf(stderr, "vigil serve: %s: at most 256\n", SRC("shards"));
        rc = 2;
    }
    if (!rc && c->redis_user && !c->redis_password) {
        fprintf(stderr, "vigil serve: redis-user needs redis-password\n");
        rc = 2;
    }
    if (!rc && (!c->tls_cert) != (!c->tls_key)) {
        fprintf(stderr, "vigil serve: tls-cert and tls-key go together (HTTPS needs both)\n");
        rc = 2;
    }
    if (!rc) {   /* a bad --http is a usage error, found before anything starts */
        struct sockaddr_storage sa;
        char herr[512];
        if (vg_config_http_addr(c->http, &sa, herr, sizeof(herr)) != 0) {
            fprintf(stderr, "vigil serve: %s: %s\n", SRC("http"), herr);
            rc = 2;
        }
    }
    if (!rc && c->redis && strstr(c->redis, "://")) {
        /* redis://HOST:PORT was taken for the host name "redis://HOST": unreachable, and
         * found out only at the first rule or list change */
        const char *hp = strstr(c->redis, "://") + 3, *at = strchr(hp, '@');
        if (at && at < hp + strcspn(hp, "/")) hp = at + 1;   /* user:password@ */
        fprintf(stderr, "vigil serve: %s: '%s': expected HOST:PORT, without a scheme (e.g. "
                        "%.*s; a password is redis-password, a user redis-user)\n",
                SRC("redis"), c->redis, (int)strcspn(hp, "/"), hp);
        rc = 2;
    }
    if (!rc && c->redis) {   /* HOST:PORT, port 1..65535 ("6379x" was read as 6379) */
        const char *colon = strrchr(c->redis, ':');
        char *end = NULL;
        long port = colon && colon[1] >= '0' && colon[1] <= '9' ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == c->redis || (size_t)(colon - c->redis) >= 256 || !end || *end ||
            port < 1 || port > 65535) {
            fprintf(stderr, "vigil serve: %s: '%s': expected HOST:PORT (port 1..65535)\n",
                    SRC("redis"), c->redis);
            rc = 2;
        }
    }
    if (!rc && c->max_body == 0) {   /* 0 refused every list, label and rollback body */
        fprintf(stderr, "vigil serve: %s: must be positive (e.g. 1M)\n", SRC("max-body"));
        rc = 2;
    }
    if (!rc && c->threads > 256) {
        fprintf(stderr, "vigil serve: %s: at most 256\n", SRC("threads"));
        rc = 2;
    }
    if (!rc && c->kafka_threads > 256) {
        fprintf(stderr, "vigil serve: %s: at most 256\n", SRC("kafka-threads"));
        rc = 2;
    }
    for (int k = 0; k < 3; k++) kconf_free(klayers[k]);
    ftokens_free(&ftok);
    for (int i = 0; i < NSET; i++) {
        free(file_vals[i]);
        free(flag_vals[i]);
    }
    if (rc) {
        vg_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}
