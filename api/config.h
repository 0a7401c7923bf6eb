/* config.h - the settings of `vigil serve` (SPEC section 5): flags, VIGIL_<NAME>
 * environment variables and a config file, with precedence flag > environment > file.
 *
 * The config file has one `key = value` per line; `#` starts a comment (at the start of
 * a line or after whitespace); blank lines are skipped; the key is the flag's name
 * without its dashes (`topic-in = transactions`; `topic_in` is accepted too); values
 * may be quoted with "..." to keep leading or trailing spaces. Tokens come from the
 * file (`tokens = role:token,role:token`, or one `token = role:token` per line) or from
 * VIGIL_TOKENS, never from a flag; as for any setting, the environment wins: a
 * non-empty VIGIL_TOKENS replaces the file's tokens (all of them; they are not read).
 * They are hashed (SHA-256) as soon as they are parsed and only the hashes are kept.
 *
 * librdkafka settings pass through to every Kafka client: file keys `kafka.<property>`
 * (`kafka.security.protocol = SASL_SSL`), repeatable flags `-X property=value` and
 * VIGIL_KAFKA_CONF="property=value,property=value" (`\,` is a literal comma). Each
 * property is decided on its own, flag > environment > file; a "consumer." or
 * "producer." prefix limits it to one kind of client. Every winner is checked with
 * vg_kafka_conf_check() (engine/kafka.h) while loading: an unknown property, a bad
 * value or a change to a setting vigil's guarantees depend on is a usage error.
 *
 * Threading: a vg_config_t is built by one thread and then read-only.
 * Ownership: the caller owns the config (vg_config_free accepts NULL).
 */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum vg_role {
    VG_ROLE_NONE = 0,   /* no token: only the open routes */
    VG_ROLE_SCORER,     /* score only */
    VG_ROLE_ANALYST,    /* reads, score, validate, labels */
    VG_ROLE_ADMIN       /* everything */
} vg_role_t;

typedef struct vg_token {
    vg_role_t role;
    unsigned char hash[32];   /* SHA-256 of the token */
    unsigned char who[4];     /* its pseudonym in audit entries and logs (VG_WHO_ITER) */
} vg_token_t;

/* A token's pseudonym ("admin:" and 8 hex digits in the audit trail and the log) is the
 * first 4 bytes of PBKDF2-HMAC-SHA256(token, VG_WHO_SALT, VG_WHO_ITER): the same on every
 * instance, and a guess of a weak token costs 50,000 hashes to check against it offline
 * (before 2026-12-08 it was the SHA-256's first 4 bytes: one hash a guess). Computed
 * once per token when the configuration is read (~50 ms each). */
#define VG_WHO_SALT "vigil audit pseudonym"
#define VG_WHO_ITER 50000

typedef struct vg_config {
    /* SPEC section 5 */
    char *http;               /* HOST:PORT, default 127.0.0.1:8080 */
    char *state;              /* default ./vigil-data */
    char *rules;              /* .vrl file or directory loaded at start; NULL: none */
    char *kafka, *group, *topic_in, *topic_alerts, *topic_decisions, *topic_dlq, *changelog;
    char *topic_labels;       /* NULL: GROUP.labels; "off": none */
    char *tls_cert, *tls_key; /* PEM files: HTTPS (both or neither) */
    char *advertise;          /* this instance's HTTP base URL for 409 not_owner (NULL:
                                 http://<http>) */
    char *redis;              /* HOST:PORT or NULL */
    char *redis_user, *redis_password;   /* AUTH (password: file or environment only) */
    int64_t lateness_ms, dedupe_horizon_ms;
    /* vigil's own */
    int64_t future_ms;        /* `future` rejection: ahead of the clock by more (5m);
                                 -1: off (`off` or 0) */
    int shards;               /* engine shards (1); each a mutex-protected pipeline */
    int threads;              /* HTTP worker threads (2) */
    size_t max_body;          /* bytes of a request body (1 MiB; events: 64 KiB) */
    int max_connections;      /* concurrent connections (1024) */
    int64_t request_timeout_ms;   /* idle connection timeout (30s) */
    int64_t deadline_ms;      /* a request waiting longer for its shard gets 429 (250ms) */
    int64_t alert_retention_ms;   /* alerts older than this are deleted (30d) */
    int64_t checkpoint_ms;    /* state checkpoint interval (1s) */
    size_t mem_budget;        /* per shard, 0 = unlimited */
    char *anomaly;            /* "on" (default): the anomaly models score and learn every
                                 event; "auto": only while the ruleset reads anomaly.* */
    int kafka_threads;        /* Kafka processing threads = group members (2) */
    char **kafka_conf;        /* "property=value" librdkafka settings, NULL-terminated
                                 (never NULL after a load), in precedence order */
    int nkafka_conf;
    vg_token_t *tokens;
    int ntokens;
    char *config_file;        /* the file read, or NULL */
} vg_config_t;

/* Builds the configuration from argv (argv[0] is the subcommand name), the process
 * environment and the config file named by --config or VIGIL_CONFIG. Returns 0 and sets
 * *out (free with vg_config_free), -1 when --help or --version was printed (nothing to
 * do), or 2 on a usage error (message printed on stderr). */
int vg_config_load(int argc, char **argv, vg_config_t **out);

/* Parses the `http` setting "HOST:PORT" (IPv4 or `localhost`, `*` for every IPv4 address,
 * an IPv6 address in brackets: `[::1]`, `[::]` for every address, IPv4 included; an empty
 * host, ":8080", is refused: it bound every address without a word; port 0..65535, 0: a
 * free one) into *sa (a sockaddr_in or sockaddr_in6). vg_config_load checks it (a bad one
 * is a usage error); vg_api_listen binds it. Returns 0 or VG_EINVAL with the reason. */
struct sockaddr_storage;
int vg_config_http_addr(const char *hp, struct sockaddr_storage *sa, char *errbuf, size_t errlen);
void vg_config_free(vg_config_t *c);

/* Parses "role:token,role:token" adding hashed tokens to c. Returns 0 or VG_EINVAL
 * with a reason in errbuf (unknown role, empty token). */
int vg_config_add_tokens(vg_config_t *c, const char *spec, char *errbuf, size_t errlen);

/* The SHA-256 of n bytes (OpenSSL's libcrypto). Can't fail. */
void vg_sha256(const void *p, size_t n, unsigned char out[32]);

/* The role of a bearer token (constant-time comparison of hashes), VG_ROLE_NONE when
 * unknown; who_out (when not NULL) gets its pseudonym (vg_token_t.who) when known. Can't
 * fail. */
vg_role_t vg_config_role(const vg_config_t *c, const char *token, size_t len,
                         unsigned char who_out[4]);

const char *vg_role_name(vg_role_t r);

/* 1 when the anomaly models run for every event (`anomaly = on`, the default), 0 when
 * only while the ruleset reads anomaly.* (`auto`). */
int vg_config_anomaly(const vg_config_t *c);

/* Prints the serve usage text. */
void vg_config_usage(FILE *f);

#endif
