/* test_cli.c - unit tests for api/cli.c: durations, sizes, loading rule sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/cli.h"
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
    assert_int_equal(vg_cli_duration("99999999999999999999d", &ms), VG_EINVAL);
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

    unlink(p1);
    unlink(p2);
    unlink(p3);
    rmdir(sub);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
