/* test_config.c - settings of `vigil serve`: defaults, file, environment and flag
 * precedence (VIGIL_TOKENS replacing the file's tokens), token parsing, hashing and
 * roles; librdkafka settings passed through (kafka.<property>, -X, VIGIL_KAFKA_CONF)
 * with their precedence and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "api/config.h"
#include "rules/errors.h"

static void clear_env(void) {
    unsetenv("VIGIL_CONFIG");
    unsetenv("VIGIL_TOKENS");
    unsetenv("VIGIL_HTTP");
    unsetenv("VIGIL_TOPIC_IN");
    unsetenv("VIGIL_LATENESS");
    unsetenv("VIGIL_KAFKA_CONF");
    unsetenv("VIGIL_KAFKA_THREADS");
}

/* Writes text to a new temporary file named in path (a mkstemp template). */
static void write_file(char *path, const char *text) {
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The value of property name in c->kafka_conf, NULL when absent; asserts it is there
 * at most once. */
static const char *kconf(const vg_config_t *c, const char *name) {
    const char *found = NULL;
    size_t n = strlen(name);
    for (int i = 0; i < c->nkafka_conf; i++)
        if (strncmp(c->kafka_conf[i], name, n) == 0 && c->kafka_conf[i][n] == '=') {
            assert_null(found);
            found = c->kafka_conf[i] + n + 1;
        }
    return found;
}

static void test_defaults(void **st) {
    (void)st;
    clear_env();
    char *argv[] = {"serve", NULL};
    vg_config_t *c;
    assert_int_equal(vg_config_load(1, argv, &c), 0);
    assert_string_equal(c->http, "127.0.0.1:8080");
    assert_string_equal(c->state, "./vigil-data");
    assert_string_equal(c->topic_in, "transactions");
    assert_null(c->redis);
    assert_null(c->topic_decisions);
    assert_int_equal(c->lateness_ms, 3600 * 1000);
    assert_int_equal(c->dedupe_horizon_ms, 24 * 3600 * 1000LL);
    assert_int_equal(c->ntokens, 0);
    assert_int_equal(c->kafka_threads, 2);
    assert_non_null(c->kafka_conf);          /* empty, NULL-terminated */
    assert_int_equal(c->nkafka_conf, 0);
    assert_null(c->kafka_conf[0]);
    vg_config_free(c);
}

static void test_kafka_conf_precedence(void **st) {
    (void)st;
    clear_env();
    char path[] = "/tmp/vigil-test-config-XXXXXX";
    write_file(path, "kafka = b1:9092\n"
                     "kafka.security.protocol = SASL_SSL\n"
                     "kafka.compression.type = gzip\n"
                     "kafka.linger.ms = 5   # a comment\n"
                     "kafka.sasl.username = \" u \"\n"
                     "kafka.consumer.fetch.wait.max.ms = 50\n"
                     "kafka.client.rack = from-file\n"
                     "kafka-threads = 3\n");
    setenv("VIGIL_CONFIG", path, 1);
    setenv("VIGIL_KAFKA_CONF", " compression.type=snappy , linger.ms=7,"
                               "ssl.cipher.suites=A\\,B ,", 1);
    char *argv[] = {"serve", "-X", "linger.ms=9", "-Xsocket.keepalive.enable=true",
                    "--kafka-threads", "4", NULL};
    vg_config_t *c;
    assert_int_equal(vg_config_load(6, argv, &c), 0);
    assert_int_equal(c->nkafka_conf, 8);
    assert_null(c->kafka_conf[8]);
    assert_string_equal(kconf(c, "security.protocol"), "SASL_SSL");   /* file */
    assert_string_equal(kconf(c, "sasl.username"), " u ");           /* quoted */
    assert_string_equal(kconf(c, "consumer.fetch.wait.max.ms"), "50");
    assert_string_equal(kconf(c, "client.rack"), "from-file");
    assert_string_equal(kconf(c, "compression.type"), "snappy");     /* env over file */
    assert_string_equal(kconf(c, "ssl.cipher.suites"), "A,B");       /* \, */
    assert_string_equal(kconf(c, "linger.ms"), "9");                 /* flag over env */
    assert_string_equal(kconf(c, "socket.keepalive.enable"), "true");
    /* an overridden property moves after the lower layers: the flag comes last */
    assert_string_equal(c->kafka_conf[7], "socket.keepalive.enable=true");
    assert_string_equal(c->kafka_conf[6], "linger.ms=9");
    assert_int_equal(c->kafka_threads, 4);                          /* flag over file */
    vg_config_free(c);
    /* without the flags: the environment's value; the file's threads */
    char *a2[] = {"serve", NULL};
    assert_int_equal(vg_config_load(1, a2, &c), 0);
    assert_string_equal(kconf(c, "linger.ms"), "7");
    assert_int_equal(c->kafka_threads, 3);
    vg_config_free(c);
    unlink(path);
    clear_env();
}

/* Loads argv (NULL-terminated) expecting exit code want. */
static vg_config_t *load_file(const char *text, int want) {
    char path[] = "/tmp/vigil-test-config-XXXXXX";
    write_file(path, text);
    char *argv[] = {"serve", "--config", path, NULL};
    vg_config_t *c = NULL;
    assert_int_equal(vg_config_load(3, argv, &c), want);
    unlink(path);
    return c;
}

static void load_expect(char **argv, int want) {
    int argc = 0;
    while (argv[argc]) argc++;
    vg_config_t *c = NULL;
    assert_int_equal(vg_config_load(argc, argv, &c), want);
    if (want == 0) assert_non_null(c);
    else assert_null(c);
    vg_config_free(c);
}

static void test_kafka_conf_refusals(void **st) {
    (void)st;
    clear_env();
    /* unknown property, bad value, not name=value, missing value */
    char *a1[] = {"serve", "-X", "no.such.property=1", NULL};
    load_expect(a1, 2);
    char *a2[] = {"serve", "-X", "compression.type=bogus", NULL};
    load_expect(a2, 2);
    char *a3[] = {"serve", "-X", "linger.ms", NULL};
    load_expect(a3, 2);
    char *a4[] = {"serve", "-X", NULL};
    load_expect(a4, 2);
    char *a5[] = {"serve", "-X", "=1", NULL};
    load_expect(a5, 2);
    /* the guarantees' settings: changes refused, vigil's own value in any spelling
     * accepted */
    const char *refused[] = {
        "enable.auto.commit=true", "enable.auto.offset.store=true",
        "enable.idempotence=false", "acks=1", "request.required.acks=0",
        "isolation.level=read_uncommitted", "transactional.id=t", "group.id=g",
        "bootstrap.servers=h:1", "producer.acks=1", "consumer.enable.auto.commit=true",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char *a[] = {"serve", "-X", (char *)refused[i], NULL};
        load_expect(a, 2);
    }
    const char *same[] = {
        "enable.auto.commit=false", "enable.idempotence=true", "enable.idempotence=1",
        "acks=all", "acks=-1", "isolation.level=read_committed",
        "compression.codec=zstd", "security.protocol=plaintext",
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        char *a[] = {"serve", "-X", (char *)same[i], NULL};
        load_expect(a, 0);
    }
    /* the same checks for the file and the environment */
    char path[] = "/tmp/vigil-test-config-XXXXXX";
    write_file(path, "kafka.acks = 0\n");
    setenv("VIGIL_CONFIG", path, 1);
    char *a6[] = {"serve", NULL};
    load_expect(a6, 2);
    char *a7[] = {"serve", "-X", "acks=all", NULL};   /* overridden by a flag: fine */
    load_expect(a7, 0);
    unlink(path);
    clear_env();
    setenv("VIGIL_KAFKA_CONF", "linger.ms=1,nope.nope=2", 1);
    load_expect(a6, 2);
    setenv("VIGIL_KAFKA_CONF", "linger.ms=1,missing-equals", 1);
    load_expect(a6, 2);
    clear_env();
    char *a8[] = {"serve", "--kafka-threads", "0", NULL};
    load_expect(a8, 2);
    char *a9[] = {"serve", "--kafka-threads", "257", NULL};
    load_expect(a9, 2);
    /* HTTP worker threads are bounded too (100000 ran the machine out of memory and
     * file descriptors, and the half-started service ignored SIGTERM) */
    char *a10[] = {"serve", "--threads", "257", NULL};
    load_expect(a10, 2);
    char *a11[] = {"serve", "--threads", "256", NULL};
    load_expect(a11, 0);
    char *a12[] = {"serve", "--deadline", "0", NULL};   /* every score request a 429 */
    load_expect(a12, 2);
    /* request-timeout: libmicrohttpd keeps it as 32-bit milliseconds (4294968s was 0.7s),
     * 0 cut every connection; any duration is at most 36500d */
    static const char *const bad_dur[][2] = {
        {"--request-timeout", "4294968s"}, {"--request-timeout", "50d"},
        {"--request-timeout", "0s"}, {"--request-timeout", "0"},
        {"--deadline", "36501d"}, {"--lateness", "99999999999999999999d"},
        {"--alert-retention", "9999999999999s"}, {"--future", "36501d"},
        {"--checkpoint-interval", "0ms"}, {"--dedupe-horizon", "9223372036854775807ms"}};
    for (size_t i = 0; i < sizeof bad_dur / sizeof bad_dur[0]; i++) {
        char *a[] = {"serve", (char *)bad_dur[i][0], (char *)bad_dur[i][1], NULL};
        load_expect(a, 2);
    }
    {
        char *a[] = {"serve", "--request-timeout", "49d", "--lateness", "36500d", NULL};
        vg_config_t *c = NULL;
        assert_int_equal(vg_config_load(5, a, &c), 0);
        assert_int_equal(c->request_timeout_ms, 49 * 86400000LL);
        assert_int_equal(c->lateness_ms, 36500 * 86400000LL);
        vg_config_free(c);
    }
    /* future: a duration, `off` or 0 (off, as `vigil stream`); serve refused `off` and
     * took 0 as the 5 m default for Kafka but as off for HTTP scoring */
    static const struct {
        const char *v;
        int64_t want;
    } fu[] = {{"5m", 300000}, {"off", -1}, {"0", -1}, {"10s", 10000}};
    for (size_t i = 0; i < sizeof fu / sizeof fu[0]; i++) {
        char *a[] = {"serve", "--future", (char *)fu[i].v, NULL};
        vg_config_t *c = NULL;
        assert_int_equal(vg_config_load(3, a, &c), 0);
        assert_int_equal(c->future_ms, fu[i].want);
        vg_config_free(c);
    }
    char *a13[] = {"serve", "--future", "soon", NULL};
    load_expect(a13, 2);
    /* a bad --http is a usage error (SPEC: exit 2), found before anything starts */
    static const char *const bad_http[] = {"127.0.0.1:abc", "127.0.0.1:", "127.0.0.1:-1",
                                           "127.0.0.1:65536", "nohost:80", "8080",
                                           "::1:80", "[::1:80", "[]:80", "[nohost]:80",
                                           "[127.0.0.1]:80", "[::1]:", "[::1]:x",
                                           ":8080", ":0"};   /* bound 0.0.0.0 silently */
    for (size_t i = 0; i < sizeof bad_http / sizeof bad_http[0]; i++) {
        char *a[] = {"serve", "--http", (char *)bad_http[i], NULL};
        load_expect(a, 2);
    }
    char *a14[] = {"serve", "--http", "localhost:0", NULL};
    load_expect(a14, 0);
    /* HTTPS needs both files (read when listening) */
    char *t1[] = {"serve", "--tls-cert", "/c.pem", NULL};
    load_expect(t1, 2);
    char *t2[] = {"serve", "--tls-key", "/k.pem", NULL};
    load_expect(t2, 2);
    char *t3[] = {"serve", "--tls-cert", "/c.pem", "--tls-key", "/k.pem", NULL};
    load_expect(t3, 0);
    /* the Redis password: never a flag; a user needs one */
    char *r1[] = {"serve", "--redis-password", "x", NULL};
    load_expect(r1, 2);
    char *r2[] = {"serve", "--redis-user", "u", NULL};
    load_expect(r2, 2);
    static const char *const good_v6[] = {"[::1]:0", "[::]:8080", "[fe80::1]:1"};
    for (size_t i = 0; i < sizeof good_v6 / sizeof good_v6[0]; i++) {
        char *a[] = {"serve", "--http", (char *)good_v6[i], NULL};
        load_expect(a, 0);
    }
    struct sockaddr_storage ss;
    char e[256];
    assert_int_equal(vg_config_http_addr("[::1]:8081", &ss, e, sizeof e), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 8081);
    assert_true(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr));
    assert_int_equal(vg_config_http_addr("127.0.0.1:8082", &ss, e, sizeof e), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8082);
    assert_int_equal(vg_config_http_addr("*:8083", &ss, e, sizeof e), 0);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(vg_config_http_addr(":8080", &ss, e, sizeof e), VG_EINVAL);
    assert_string_equal(e, "':8080': give a host (127.0.0.1:8080 for this machine, *:8080 for "
                           "every IPv4 address)");
    assert_null(load_file("http = :8080\n", 2));
}

static void test_precedence(void **st) {
    (void)st;
    clear_env();
    char path[] = "/tmp/vigil-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\nhttp = 127.0.0.1:1111\ntopic_in = from-file\nlateness = 5m  # note\n"
               "group = \" spaced \"\ntokens = admin:abc, scorer:xyz\n");
    fclose(f);
    setenv("VIGIL_CONFIG", path, 1);
    setenv("VIGIL_TOPIC_IN", "from-env", 1);
    setenv("VIGIL_LATENESS", "10m", 1);
    char *argv[] = {"serve", "--lateness", "2h", NULL};
    vg_config_t *c;
    assert_int_equal(vg_config_load(3, argv, &c), 0);
    assert_string_equal(c->http, "127.0.0.1:1111");     /* file */
    assert_string_equal(c->topic_in, "from-env");       /* env over file */
    assert_int_equal(c->lateness_ms, 2 * 3600 * 1000);  /* flag over env */
    assert_string_equal(c->group, " spaced ");
    assert_int_equal(c->ntokens, 2);
    unsigned char h[4], hx[4] = {0};
    assert_int_equal(vg_config_role(c, "abc", 3, h), VG_ROLE_ADMIN);
    assert_int_equal(vg_config_role(c, "xyz", 3, hx), VG_ROLE_SCORER);
    assert_int_equal(vg_config_role(c, "abd", 3, NULL), VG_ROLE_NONE);
    /* only the hash is kept */
    unsigned char want[32];
    vg_sha256("abc", 3, want);
    assert_memory_equal(c->tokens[0].hash, want, 32);
    /* the pseudonym is a slow hash's (PBKDF2-HMAC-SHA256 of the token, 50,000 rounds),
     * not the SHA-256's first bytes (one hash per guess of a weak token) */
    unsigned char pw[4];
    assert_int_equal(PKCS5_PBKDF2_HMAC("abc", 3, (const unsigned char *)"vigil audit pseudonym",
                                       21, 50000, EVP_sha256(), 4, pw), 1);
    assert_memory_equal(h, pw, 4);
    assert_memory_not_equal(h, want, 4);
    assert_memory_not_equal(hx, pw, 4);
    vg_config_free(c);
    unlink(path);
    clear_env();
}

static void test_sha256_vector(void **st) {
    (void)st;
    unsigned char h[32];
    vg_sha256("abc", 3, h);
    static const unsigned char want[4] = {0xba, 0x78, 0x16, 0xbf};   /* FIPS 180-2 */
    assert_memory_equal(h, want, 4);
}

static void test_errors(void **st) {
    (void)st;
    clear_env();
    vg_config_t *c;
    char *a1[] = {"serve", "--tokens", "admin:x", NULL};
    assert_int_equal(vg_config_load(3, a1, &c), 2);    /* never from a flag */
    char *a2[] = {"serve", "--nope", "1", NULL};
    assert_int_equal(vg_config_load(3, a2, &c), 2);
    char *a3[] = {"serve", "--lateness", "soon", NULL};
    assert_int_equal(vg_config_load(3, a3, &c), 2);
    char *a4[] = {"serve", "--http", NULL};
    assert_int_equal(vg_config_load(2, a4, &c), 2);
    setenv("VIGIL_TOKENS", "root:x", 1);
    char *a5[] = {"serve", NULL};
    assert_int_equal(vg_config_load(1, a5, &c), 2);    /* unknown role */
    setenv("VIGIL_TOKENS", "analyst:", 1);
    assert_int_equal(vg_config_load(1, a5, &c), 2);    /* empty token */
    setenv("VIGIL_TOKENS", "analyst:t1,admin:t2", 1);
    assert_int_equal(vg_config_load(1, a5, &c), 0);
    assert_int_equal(vg_config_role(c, "t1", 2, NULL), VG_ROLE_ANALYST);
    vg_config_free(c);
    clear_env();
}

/* VIGIL_TOKENS replaces the file's tokens, as the environment wins over the file for
 * every setting (SPEC section 5); before, it added to them: the file's tokens still
 * worked, and one token in both was "given twice" (exit 2). */
static void test_tokens_env_replaces_file(void **st) {
    (void)st;
    clear_env();
    char path[] = "/tmp/vigil-test-config-XXXXXX";
    write_file(path, "tokens = admin:file-a,scorer:file-s\ntoken = analyst:same\n");
    setenv("VIGIL_CONFIG", path, 1);
    char *argv[] = {"serve", NULL};
    vg_config_t *c = NULL;
    /* without VIGIL_TOKENS (or with it empty, as for any setting): the file's */
    assert_int_equal(vg_config_load(1, argv, &c), 0);
    assert_int_equal(c->ntokens, 3);
    assert_int_equal(vg_config_role(c, "file-a", 6, NULL), VG_ROLE_ADMIN);
    vg_config_free(c);
    setenv("VIGIL_TOKENS", "", 1);
    assert_int_equal(vg_config_load(1, argv, &c), 0);
    assert_int_equal(c->ntokens, 3);
    vg_config_free(c);
    /* with it: only its tokens, a token of the file's under another role included */
    setenv("VIGIL_TOKENS", "admin:env-a,scorer:same", 1);
    assert_int_equal(vg_config_load(1, argv, &c), 0);
    assert_int_equal(c->ntokens, 2);
    assert_int_equal(vg_config_role(c, "env-a", 5, NULL), VG_ROLE_ADMIN);
    assert_int_equal(vg_config_role(c, "same", 4, NULL), VG_ROLE_SCORER);
    assert_int_equal(vg_config_role(c, "file-a", 6, NULL), VG_ROLE_NONE);
    assert_int_equal(vg_config_role(c, "file-s", 6, NULL), VG_ROLE_NONE);
    vg_config_free(c);
    unlink(path);
    /* the file's tokens are not read then (a bad one there does not matter), but the
     * environment's are checked as before */
    char bad[] = "/tmp/vigil-test-config-XXXXXX";
    write_file(bad, "tokens = root:x,admin:dup,scorer:dup\n");
    setenv("VIGIL_CONFIG", bad, 1);
    assert_int_equal(vg_config_load(1, argv, &c), 0);
    assert_int_equal(c->ntokens, 2);
    vg_config_free(c);
    setenv("VIGIL_TOKENS", "admin:e1,scorer:e1", 1);
    assert_int_equal(vg_config_load(1, argv, &c), 2);
    unsetenv("VIGIL_TOKENS");
    assert_int_equal(vg_config_load(1, argv, &c), 2);   /* the file's own, when used */
    unlink(bad);
    clear_env();
}

/* Loads a config file with `text` expecting exit code want; returns the config when 0
 * (the caller frees it). */
/* Config-file edge cases: each of these was taken without a word before. */
static void test_file_edges(void **st) {
    (void)st;
    clear_env();
    static const char *const refused[] = {
        /* a setting or a kafka property twice (the second silently won) */
        "threads = 2\nthreads = 3\n", "topic-in = a\ntopic_in = b\n",
        "kafka.linger.ms = 3\nkafka.linger.ms = 4\n",
        /* one secret under two roles (the last one won) */
        "tokens = admin:s1,scorer:s1\n", "token = admin:s1\ntoken = admin:s1\n",
        /* zero where zero means nothing useful */
        "max-body = 0\n", "checkpoint-interval = 0\n", "request-timeout = 0s\n",
        "request-timeout = 4294968s\n",
        /* a Redis port that is not one */
        "redis = 127.0.0.1:6379x\n", "redis = 127.0.0.1:99999\n", "redis = 127.0.0.1\n",
        /* text after a closing quote */
        "group = \"g\" junk\n"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_null(load_file(refused[i], 2));
    vg_config_free(load_file("redis = 127.0.0.1:6379\n", 0));
    /* a byte-order mark, a comment after a quoted value, repeated token lines, CRLF */
    vg_config_t *c = load_file("\xEF\xBB\xBFgroup = \"g # h\" # comment \"x\"\r\n"
                               "token = admin:s1\r\ntoken = scorer:s2\r\n", 0);
    assert_non_null(c);
    assert_string_equal(c->group, "g # h");
    assert_int_equal(c->ntokens, 2);
    vg_config_free(c);
    /* a line longer than the old 4 KiB buffer (its tail was read as the next line) */
    size_t n = 9000;
    char *big = malloc(n + 64);
    assert_non_null(big);
    strcpy(big, "advertise = http://");
    size_t k = strlen(big);
    memset(big + k, 'a', n);
    strcpy(big + k + n, ".example:8080\nthreads = 3\n");
    c = load_file(big, 0);
    assert_non_null(c);
    assert_int_equal(strlen(c->advertise), 7 + n + 13);
    assert_int_equal(c->threads, 3);
    vg_config_free(c);
    free(big);
    clear_env();
}

/* --config reads a regular file only: /dev/zero grew a line buffer without end (GBs a
 * second), a FIFO waited for a writer; both are refused at once, exit 2 */
static void test_config_not_regular(void **st) {
    (void)st;
    clear_env();
    char dir[] = "/tmp/vigil-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/vigil.conf", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    vg_config_t *c = NULL;
    char *a1[] = {"serve", "--config", fifo, NULL};
    alarm(30);   /* the FIFO waited for a writer for good: fail, don't hang */
    int rc = vg_config_load(3, a1, &c);
    alarm(0);
    unlink(fifo);
    rmdir(dir);
    assert_int_equal(rc, 2);
    char *a2[] = {"serve", "--config", "/dev/zero", NULL};
    assert_int_equal(vg_config_load(3, a2, &c), 2);
    setenv("VIGIL_CONFIG", "/dev/zero", 1);
    char *a3[] = {"serve", NULL};
    assert_int_equal(vg_config_load(1, a3, &c), 2);
    clear_env();
}

/* A malformed token entry is named by its number, never shown: it was printed whole
 * ("token entry 'MY-REAL-SECRET-123' is not role:token"), though tokens are secrets. */
static void test_token_errors_hide_secrets(void **st) {
    (void)st;
    static const char *const specs[] = {"MY-REAL-SECRET-123", "admin:good1,MY-REAL-SECRET-456",
                                        "MY-REAL-SECRET-7:xyz", "admin:MY-REAL-SECRET-8,"
                                        "scorer:MY-REAL-SECRET-8", "admin:a,  MY-REAL-SECRET-9 "};
    static const char *const want[] = {"token entry 1 ", "token entry 2 ", "token entry 1:",
                                       "entry 2 (scorer)", "token entry 2 "};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        vg_config_t c;
        memset(&c, 0, sizeof(c));
        char err[200] = "";
        assert_int_not_equal(vg_config_add_tokens(&c, specs[i], err, sizeof(err)), 0);
        assert_null(strstr(err, "SECRET"));
        assert_non_null(strstr(err, want[i]));
        free(c.tokens);
    }
    /* a misspelt role is still named */
    vg_config_t c;
    memset(&c, 0, sizeof(c));
    char err[200] = "";
    assert_int_not_equal(vg_config_add_tokens(&c, "admn:x", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "'admn'"));
    free(c.tokens);
}

/* A spec of commas and spaces only turned auth off (tester: VIGIL_TOKENS="," from a
 * template with unset variables, over the file's tokens); whitespace after the colon
 * made a token no request could use (`admin: s3cret`). */
static void test_token_spec_edges(void **st) {
    (void)st;
    static const char *const empty[] = {",", " ", ", ", " ,, \t"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        vg_config_t c;
        memset(&c, 0, sizeof(c));
        char err[200] = "";
        assert_int_not_equal(vg_config_add_tokens(&c, empty[i], err, sizeof(err)), 0);
        assert_non_null(strstr(err, "no role:token entry"));
        assert_int_equal(c.ntokens, 0);
        free(c.tokens);
    }
    vg_config_t c;
    memset(&c, 0, sizeof(c));
    char err[200] = "";
    assert_int_equal(vg_config_add_tokens(&c, "admin: s3cret, analyst:\tan2", err, sizeof(err)), 0);
    assert_int_equal(c.ntokens, 2);
    assert_int_equal(vg_config_role(&c, "s3cret", 6, NULL), VG_ROLE_ADMIN);
    assert_int_equal(vg_config_role(&c, "an2", 3, NULL), VG_ROLE_ANALYST);
    assert_int_not_equal(vg_config_add_tokens(&c, "scorer:  ", err, sizeof(err)), 0);
    free(c.tokens);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_spec_edges),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_sha256_vector),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_file_edges),
        cmocka_unit_test(test_config_not_regular),
        cmocka_unit_test(test_tokens_env_replaces_file),
        cmocka_unit_test(test_token_errors_hide_secrets),
        cmocka_unit_test(test_kafka_conf_precedence),
        cmocka_unit_test(test_kafka_conf_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
