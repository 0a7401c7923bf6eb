/* test_cli.c - unit tests for api/cli.c: durations, sizes, loading rule sources (the same
 * file twice, a module too large), the messages for bad options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/cli.h"
#include "engine/state.h"
#include "rules/errors.h"

static void test_duration(void **st) {
    (void)st;
    int64_t ms;
    assert_int_equal(vg_cli_duration("500ms", &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(vg_cli_duration("30s", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(vg_cli_duration("10m", &ms), 0);
    assert_int_equal(ms, 600000);
    assert_int_equal(vg_cli_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(vg_cli_duration("7d", &ms), 0);
    assert_int_equal(ms, 7 * 86400000LL);
    assert_int_equal(vg_cli_duration("0", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(vg_cli_duration("", &ms), VG_EINVAL);
    assert_int_equal(vg_cli_duration("h", &ms), VG_EINVAL);
    assert_int_equal(vg_cli_duration("10", &ms), VG_EINVAL);
    assert_int_equal(vg_cli_duration("10x", &ms), VG_EINVAL);
    assert_int_equal(vg_cli_duration("-1h", &ms), VG_EINVAL);
    assert_int_equal(vg_cli_duration("1.5h", &ms), VG_EINVAL);
    /* every duration is at most 36500d: larger ones were taken up to INT64_MAX / 4 ms and
     * overflowed where they were added to times or turned into microseconds */
    assert_int_equal(vg_cli_duration("99999999999999999999d", &ms), VG_ELIMIT);
    assert_int_equal(vg_cli_duration("99999999999999999999", &ms), VG_EINVAL);   /* no unit */
    assert_int_equal(vg_cli_duration("36500d", &ms), 0);
    assert_int_equal(ms, VG_CLI_DURATION_MAX_MS);
    assert_int_equal(vg_cli_duration("36501d", &ms), VG_ELIMIT);
    assert_int_equal(vg_cli_duration("3153600000001ms", &ms), VG_ELIMIT);
    /* a range, and the messages */
    char err[300];
    ms = -7;
    assert_int_equal(vg_cli_duration_in("4294968s", 1, 49 * 86400000LL, &ms, err, sizeof err),
                     VG_EINVAL);
    assert_string_equal(err, "'4294968s' is too long (at most 49d)");
    assert_int_equal(ms, -7);   /* untouched */
    assert_int_equal(vg_cli_duration_in("0s", 1, 0, &ms, err, sizeof err), VG_EINVAL);
    assert_string_equal(err, "'0s': must be positive (e.g. 1s)");
    assert_int_equal(vg_cli_duration_in("500ms", 1000, 0, &ms, err, sizeof err), VG_EINVAL);
    assert_string_equal(err, "'500ms' is too short (at least 1s)");
    assert_int_equal(vg_cli_duration_in("40000d", 0, 0, &ms, err, sizeof err), VG_EINVAL);
    assert_string_equal(err, "'40000d' is too long (at most 36500d)");
    assert_int_equal(vg_cli_duration_in("1q", 0, 0, &ms, err, sizeof err), VG_EINVAL);
    assert_non_null(strstr(err, "bad duration '1q'"));
    assert_int_equal(vg_cli_duration_in("49d", 1, 49 * 86400000LL, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 49 * 86400000LL);
    assert_int_equal(vg_cli_duration_in("0", 0, 0, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 0);
    char buf[32];
    vg_fmt_duration(90 * 60000, buf, sizeof buf);
    assert_string_equal(buf, "90m");
    vg_fmt_duration(86400000, buf, sizeof buf);
    assert_string_equal(buf, "24h");
    vg_fmt_duration(1500, buf, sizeof buf);
    assert_string_equal(buf, "1500ms");
}

static void test_size(void **st) {
    (void)st;
    size_t b;
    assert_int_equal(vg_cli_size("512", &b), 0);
    assert_int_equal(b, 512);
    assert_int_equal(vg_cli_size("64k", &b), 0);
    assert_int_equal(b, 65536);
    assert_int_equal(vg_cli_size("256M", &b), 0);
    assert_int_equal(b, 256u << 20);
    assert_int_equal(vg_cli_size("2GiB", &b), 0);
    assert_int_equal(b, 2ull << 30);
    assert_int_equal(vg_cli_size("x", &b), VG_EINVAL);
    assert_int_equal(vg_cli_size("12q", &b), VG_EINVAL);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_sources(void **st) {
    (void)st;
    char dir[] = "/tmp/vigil-test-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p1[256], p2[256], p3[256], sub[256];
    snprintf(p1, sizeof(p1), "%s/b.vrl", dir);
    snprintf(p2, sizeof(p2), "%s/a.vrl", dir);
    snprintf(p3, sizeof(p3), "%s/notes.txt", dir);
    write_file(p1, "feature b = 1\n");
    write_file(p2, "feature a = 2\n");
    write_file(p3, "not rules");
    char err[256];
    vg_sources_t s;
    char *paths[] = {dir};
    assert_int_equal(vg_sources_load(&s, paths, 1, err, sizeof(err)), 0);
    assert_int_equal(s.n, 2);   /* only .vrl files, sorted by name */
    assert_non_null(strstr(s.v[0].name, "a.vrl"));
    assert_non_null(strstr(s.v[1].name, "b.vrl"));
    assert_int_equal(s.v[0].len, strlen("feature a = 2\n"));
    assert_memory_equal(s.v[0].text, "feature a = 2\n", s.v[0].len);
    vg_sources_free(&s);

    char *missing[] = {"/nonexistent/x.vrl"};
    assert_int_equal(vg_sources_load(&s, missing, 1, err, sizeof(err)), VG_EIO);
    assert_non_null(strstr(err, "/nonexistent/x.vrl"));

    snprintf(sub, sizeof(sub), "%s/empty", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    char *empty[] = {sub};
    assert_int_equal(vg_sources_load(&s, empty, 1, err, sizeof(err)), VG_EINVAL);
    assert_non_null(strstr(err, "no .vrl files"));

    /* the same file twice, by one path or by a directory and a path: refused as such
     * (every declaration was reported duplicated, "first declared" at itself) */
    char *twice[] = {p1, p1};
    assert_int_equal(vg_sources_load(&s, twice, 2, err, sizeof(err)), VG_EINVAL);
    assert_non_null(strstr(err, "b.vrl: the same file is given twice"));
    assert_int_equal(s.n, 0);
    char alias[300];
    snprintf(alias, sizeof(alias), "%s/./a.vrl", dir);
    char *dir_and_file[] = {dir, alias};
    assert_int_equal(vg_sources_load(&s, dir_and_file, 2, err, sizeof(err)), VG_EINVAL);
    assert_non_null(strstr(err, "/./a.vrl: the same file as "));
    char *two[] = {p1, p2};
    assert_int_equal(vg_sources_load(&s, two, 2, err, sizeof(err)), 0);
    assert_int_equal(s.n, 2);
    vg_sources_free(&s);

    /* a module over 1 MiB: VG_ECOMPILE with the compiler's diagnostic at 1:1, unread */
    char big[256];
    snprintf(big, sizeof(big), "%s/big.vrl", dir);
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    for (int i = 0; i <= VG_RULES_MAX_SOURCE; i++) fputc('#', f);
    fclose(f);
    char *bigp[] = {p1, big};
    assert_int_equal(vg_sources_load(&s, bigp, 2, err, sizeof(err)), VG_ECOMPILE);
    char want[400];
    snprintf(want, sizeof(want), "%s:1:1: error: module too large (%d bytes, limit %d)", big,
             VG_RULES_MAX_SOURCE + 1, VG_RULES_MAX_SOURCE);
    assert_string_equal(err, want);
    assert_int_equal(s.n, 0);
    vg_sources_free(&s);   /* harmless after a failure */

    unlink(big);
    unlink(p1);
    unlink(p2);
    unlink(p3);
    rmdir(sub);
    rmdir(dir);
}

/* A file name that gives no module name vigil serve and PUT /v1/rules accept is refused
 * when loading, so that vigil check fails on it (it said "0 warnings", then serve would
 * not start) and replay names no module serve could have */
static void test_module_names(void **st) {
    (void)st;
    char name[80];
    assert_int_equal(vg_cli_module_name("rules/cards.vrl", name, sizeof name), 1);
    assert_string_equal(name, "cards");
    assert_int_equal(vg_cli_module_name("a-b_C9.vrl", name, sizeof name), 1);
    assert_string_equal(name, "a-b_C9");
    assert_int_equal(vg_cli_module_name("rules/a b.vrl", name, sizeof name), 0);
    assert_int_equal(vg_cli_module_name("x/.vrl", name, sizeof name), 0);
    assert_int_equal(vg_cli_module_name("x/a.b.vrl", name, sizeof name), 0);
    assert_int_equal(vg_cli_module_name("x/notes.txt", name, sizeof name), 0);
    char m64[80] = "d/", m65[80] = "d/";   /* d/ and 64 or 65 m, then .vrl */
    memset(m64 + 2, 'm', 64);
    memcpy(m64 + 66, ".vrl", 5);
    memset(m65 + 2, 'm', 65);
    memcpy(m65 + 67, ".vrl", 5);
    assert_int_equal(vg_cli_module_name(m64, name, sizeof name), 1);
    assert_int_equal(strlen(name), 64);
    assert_int_equal(vg_cli_module_name(m65, name, sizeof name), 0);

    char dir[] = "/tmp/vigil-test-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *bad[] = {"a b.vrl", ".vrl", m65 + 2, "a.b.vrl"};
    char err[400], p[300], want[400];
    vg_sources_t s;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, bad[i]);
        write_file(p, "feature a = 1\n");
        char *paths[] = {p};
        assert_int_equal(vg_sources_load(&s, paths, 1, err, sizeof err), VG_EINVAL);
        snprintf(want, sizeof want, "%s: the file name must give a module name (1..64 "
                 "letters, digits, _ or - before .vrl)", p);
        assert_string_equal(err, want);
        assert_int_equal(s.n, 0);
        if (bad[i][0] != '.') {   /* in a directory too (a dot file is not listed) */
            char *dirs[] = {dir};
            assert_int_equal(vg_sources_load(&s, dirs, 1, err, sizeof err), VG_EINVAL);
            assert_non_null(strstr(err, ": the file name must give a module name"));
        }
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/%s", dir, m64 + 2);
    write_file(p, "feature a = 1\n");
    char *dirs[] = {dir};
    assert_int_equal(vg_sources_load(&s, dirs, 1, err, sizeof err), 0);
    assert_int_equal(s.n, 1);
    vg_sources_free(&s);
    unlink(p);
    rmdir(dir);
}

/* vg_cli_bad_option: what getopt_long's '?' or ':' was about */
static void test_bad_option(void **st) {
    (void)st;
    static const struct option lo[] = {
        {"rules", required_argument, 0, 'r'},
        {"no-sync", no_argument, 0, 'n'},
        {"lateness", required_argument, 0, 'l'},
        {"lists", required_argument, 0, 'L'},
        {0, 0, 0, 0},
    };
    struct {
        char *argv[4];
        int argc;
        const char *want;
    } cases[] = {
        {{"replay", "-x", "foo", NULL}, 3, "vigil replay: unknown option '-x'\n"},
        {{"replay", "--bogus", NULL, NULL}, 2, "vigil replay: unknown option '--bogus'\n"},
        {{"replay", "--rules", NULL, NULL}, 2, "vigil replay: option '--rules' needs a value\n"},
        {{"replay", "--no-sync=1", NULL, NULL}, 2, "vigil replay: option '--no-sync' takes no value\n"},
        {{"replay", "--l", "1h", NULL}, 3, "vigil replay: option '--l' is ambiguous\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fflush(stderr);
        FILE *cap = tmpfile();
        assert_non_null(cap);
        int saved = dup(2);
        dup2(fileno(cap), 2);
        optind = 1;
        opterr = 0;
        int c = getopt_long(cases[i].argc, cases[i].argv, ":", lo, NULL);
        assert_true(c == '?' || c == ':');
        vg_cli_bad_option("replay", c, cases[i].argv, lo);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        char got[256] = {0};
        rewind(cap);
        size_t n = fread(got, 1, sizeof(got) - 1, cap);
        got[n] = 0;
        fclose(cap);
        assert_string_equal(got, cases[i].want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_module_names),
        cmocka_unit_test(test_bad_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
