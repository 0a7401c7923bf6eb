/* test_config.c - settings of `vigil serve`: defaults, file, environment and flag
 * precedence, token parsing, hashing and roles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/config.h"

static void clear_env(void) {
    unsetenv("VIGIL_CONFIG");
    unsetenv("VIGIL_TOKENS");
    unsetenv("VIGIL_HTTP");
    unsetenv("VIGIL_TOPIC_IN");
    unsetenv("VIGIL_LATENESS");
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
    vg_config_free(c);
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
    unsigned char h[32];
    assert_int_equal(vg_config_role(c, "abc", 3, h), VG_ROLE_ADMIN);
    assert_int_equal(vg_config_role(c, "xyz", 3, NULL), VG_ROLE_SCORER);
    assert_int_equal(vg_config_role(c, "abd", 3, NULL), VG_ROLE_NONE);
    /* only the hash is kept */
    unsigned char want[32];
    vg_sha256("abc", 3, want);
    assert_memory_equal(c->tokens[0].hash, want, 32);
    assert_memory_equal(h, want, 32);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_sha256_vector),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
