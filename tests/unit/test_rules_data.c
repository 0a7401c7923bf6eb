/* test_rules_data.c - runs every .test file of tests/rules: rules, events, and the
 * decisions or diagnostics they must give (the format is in tests/rules/README.md).
 *
 * Each case compiles its modules with vg_prog_compile(), runs its events through a
 * memory-only vg_pipeline_t (the same path as `vigil replay`) and compares:
 *   - `--- diagnostics`: the exact list of `file:line:col: error|warning: message`
 *     lines (a line ending in "..." matches any line starting with the rest);
 *   - `--- decisions`: one JSON object per decided event; each key must equal the
 *     actual line's value (jansson json_equal), plus the pseudo keys "fired" and
 *     "shadow_fired" (names of the fired active / shadow rules, in order) and
 *     "suppressed" (names of fired rules marked suppressed).
 * An optional `--- labels` section is a label list (CSV `id,account,fraud,at`, as for
 * `vigil replay --labels`) given to the pipeline.
 * Every case of every file runs; the test fails listing each failing case.
 *
 * A line `--- known-bug TEXT` marks a case that expects the correct behaviour where the
 * code is known to be wrong: its failures are printed but not counted, and the test
 * fails once it passes (so that the marker is removed with the fix).
 *
 * In a rules section, a line `%repeat N TEXT` stands for N copies of TEXT, each with
 * `{i}` replaced by the copy's number (0..N-1) and `\n` by a newline: it reaches the
 * size limits (features, rules, module bytes) without megabytes of test file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>

#include "engine/pipeline.h"
#include "rules/lists.h"
#include "rules/program.h"

#define MAX_MODS 8

typedef struct section { const char *p; size_t n; } section_t;

typedef struct tcase {
    char name[200];
    int line;                       /* of the === line */
    section_t mods[MAX_MODS];
    char modname[MAX_MODS][64];
    int nmods;
    section_t lists, labels, events, decisions, diags;
    int has_decisions, has_diags;
    section_t known_bug;            /* `--- known-bug TEXT`: the case shows a reported bug */
    int has_known_bug;
} tcase_t;

static int failures;

static void failf(const char *file, const tcase_t *c, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "FAIL %s:%d (%s): ", file, c->line, c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    failures++;
}

/* Next line of s[*pos..n): returns its start and sets *len (without newline). */
static const char *next_line(const char *s, size_t n, size_t *pos, size_t *len) {
    if (*pos >= n) return NULL;
    const char *b = s + *pos;
    const char *nl = memchr(b, '\n', n - *pos);
    *len = nl ? (size_t)(nl - b) : n - *pos;
    *pos += *len + (nl ? 1 : 0);
    return b;
}

static void diag_line(char *out, size_t cap, const vg_diag_t *g) {
    snprintf(out, cap, "%s:%d:%d: %s: %s", g->file, g->line, g->col,
             g->is_error ? "error" : "warning", g->msg);
}

static int line_matches(const char *want, size_t wl, const char *got) {
    if (wl >= 3 && memcmp(want + wl - 3, "...", 3) == 0)
        return strncmp(got, want, wl - 3) == 0;
    return strlen(got) == wl && memcmp(got, want, wl) == 0;
}

/* Names of fired rules in `arr` (the "rules" or "shadow" array), optionally only the
 * suppressed ones, as a JSON array. */
static json_t *names_of(json_t *arr, int only_suppressed) {
    json_t *r = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        if (only_suppressed && !json_is_true(json_object_get(e, "suppressed"))) continue;
        json_array_append(r, json_object_get(e, "rule"));
    }
    return r;
}

/* Appends n bytes to a growing malloc'd buffer; exits on out of memory (a test). */
static void put(char **b, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *b = realloc(*b, *cap);
        if (!*b) { fprintf(stderr, "out of memory\n"); exit(1); }
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = 0;
}

/* The text of a rules section with `%repeat N TEXT` lines expanded: a malloc'd copy
 * (the caller frees it) when there is such a line, else NULL. */
static char *expand(const section_t *m, size_t *outlen) {
    size_t len = 0, cap = 0, pos = 0, ll;
    const char *l;
    int any = 0;
    while (!any && (l = next_line(m->p, m->n, &pos, &ll)))
        any = ll > 8 && memcmp(l, "%repeat ", 8) == 0;
    if (!any) return NULL;
    char *b = NULL;
    pos = 0;
    while ((l = next_line(m->p, m->n, &pos, &ll))) {
        long n;
        int skip;
        if (ll > 8 && memcmp(l, "%repeat ", 8) == 0 && sscanf(l + 8, "%ld %n", &n, &skip) == 1) {
            const char *t = l + 8 + skip, *e = l + ll;
            for (long i = 0; i < n; i++) {
                for (const char *q = t; q < e; q++) {
                    if (q + 3 <= e && memcmp(q, "{i}", 3) == 0) {
                        char num[24];
                        put(&b, &len, &cap, num, (size_t)snprintf(num, sizeof num, "%ld", i));
                        q += 2;
                    } else if (q + 2 <= e && q[0] == '\\' && q[1] == 'n') {
                        put(&b, &len, &cap, "\n", 1);
                        q++;
                    } else put(&b, &len, &cap, q, 1);
                }
                put(&b, &len, &cap, "\n", 1);
            }
        } else {
            put(&b, &len, &cap, l, ll);
            put(&b, &len, &cap, "\n", 1);
        }
    }
    *outlen = len;
    return b ? b : calloc(1, 1);
}

static void run_case(const char *file, tcase_t *c) {
    vg_source_t src[MAX_MODS];
    char *big[MAX_MODS] = {0};
    for (int i = 0; i < c->nmods; i++) {
        src[i].name = c->modname[i];
        src[i].text = c->mods[i].p;
        src[i].len = c->mods[i].n;
        size_t bl;
        if ((big[i] = expand(&c->mods[i], &bl))) {
            src[i].text = big[i];
            src[i].len = bl;
        }
    }
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *p = vg_prog_compile(src, c->nmods, &d);
    if (c->has_diags) {
        size_t pos = 0, wl;
        const char *w;
        int k = 0;
        char got[512];
        while ((w = next_line(c->diags.p, c->diags.n, &pos, &wl))) {
            if (wl == 0) continue;
            if (k >= d.n) {
                failf(file, c, "missing diagnostic: %.*s", (int)wl, w);
                k++;
                continue;
            }
            diag_line(got, sizeof got, &d.v[k]);
            if (!line_matches(w, wl, got))
                failf(file, c, "diagnostic %d:\n  want %.*s\n  got  %s", k + 1, (int)wl, w, got);
            k++;
        }
        for (; k < d.n; k++) {
            diag_line(got, sizeof got, &d.v[k]);
            failf(file, c, "unexpected diagnostic: %s", got);
        }
    } else if (!p) {
        char got[512];
        diag_line(got, sizeof got, d.n ? &d.v[0] : &(vg_diag_t){1, "?", 0, 0, "?"});
        failf(file, c, "does not compile: %s", got);
    }
    if (!p || !c->has_decisions) goto out;

    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    vg_lists_t *lists = NULL;
    char err[256];
    if (c->lists.n) {
        lists = vg_lists_new();
        if (vg_lists_load_json(lists, c->lists.p, c->lists.n, err, sizeof err) != 0) {
            failf(file, c, "bad lists: %s", err);
            vg_lists_unref(lists);
            goto out;
        }
    }
    o.lists = lists;
    vg_pipeline_t *pl = vg_pipeline_new(p, &o, err, sizeof err);
    vg_lists_unref(lists);
    if (!pl) {
        failf(file, c, "pipeline: %s", err);
        goto out;
    }
    vg_labels_t *labels = NULL;
    if (c->labels.n) {
        FILE *lf = fmemopen((void *)c->labels.p, c->labels.n, "r");
        labels = lf ? vg_labels_read(lf, "labels", err, sizeof err) : NULL;
        if (lf) fclose(lf);
        if (!labels) {
            failf(file, c, "bad labels: %s", lf ? err : "fmemopen");
            vg_pipeline_free(pl);
            goto out;
        }
        vg_pipeline_set_labels(pl, labels);
    }
    vg_buf_t out;
    vg_buf_init(&out);
    size_t pos = 0, len;
    const char *ln;
    while ((ln = next_line(c->events.p, c->events.n, &pos, &len))) {
        vg_outcome_t oc;
        if (vg_pipeline_line(pl, ln, len, &out, &oc) != 0) {
            failf(file, c, "engine error");
            break;
        }
    }
    /* compare line by line */
    size_t ap = 0, wp = 0, al, wl;
    const char *a, *w;
    int n = 0;
    for (;;) {
        w = next_line(c->decisions.p, c->decisions.n, &wp, &wl);
        while (w && wl == 0) w = next_line(c->decisions.p, c->decisions.n, &wp, &wl);
        a = next_line(out.p ? out.p : "", out.len, &ap, &al);
        if (!w && !a) break;
        n++;
        if (!w) { failf(file, c, "output line %d not expected: %.*s", n, (int)al, a); break; }
        if (!a) { failf(file, c, "output line %d missing (want %.*s)", n, (int)wl, w); break; }
        json_error_t je;
        json_t *jw = json_loadb(w, wl, 0, &je);
        json_t *ja = json_loadb(a, al, 0, &je);
        if (!jw || !ja) {
            failf(file, c, "line %d: bad JSON (%s)", n, jw ? "actual" : "expected");
        } else {
            const char *key;
            json_t *v;
            json_object_foreach(jw, key, v) {
                json_t *got;
                int own = 1;
                if (strcmp(key, "fired") == 0) got = names_of(json_object_get(ja, "rules"), 0);
                else if (strcmp(key, "shadow_fired") == 0)
                    got = names_of(json_object_get(ja, "shadow"), 0);
                else if (strcmp(key, "suppressed") == 0) {
                    got = names_of(json_object_get(ja, "rules"), 1);
                    json_t *s2 = names_of(json_object_get(ja, "shadow"), 1);
                    json_array_extend(got, s2);
                    json_decref(s2);
                } else { got = json_object_get(ja, key); own = 0; }
                if (!got || !json_equal(got, v)) {
                    char *gs = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
                    char *ws = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                    failf(file, c, "line %d, \"%s\":\n  want %s\n  got  %s\n  line %.*s", n, key,
                          ws, gs ? gs : "(absent)", (int)al, a);
                    free(gs);
                    free(ws);
                }
                if (own) json_decref(got);
            }
        }
        json_decref(jw);
        json_decref(ja);
    }
    vg_buf_deinit(&out);
    vg_pipeline_free(pl);
    vg_labels_free(labels);
out:
    vg_prog_unref(p);
    vg_diags_deinit(&d);
    for (int i = 0; i < c->nmods; i++) free(big[i]);
}

/* Splits a file into cases and runs each. Returns the number of cases. */
static int run_file(const char *path, const char *short_name) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    tcase_t c;
    int have = 0, ncases = 0, lineno = 0;
    section_t *cur = NULL;
    size_t pos = 0, len;
    const char *ln;
    while (1) {
        ln = next_line(buf, n, &pos, &len);
        lineno++;
        int is_case = ln && len >= 4 && memcmp(ln, "=== ", 4) == 0;
        if ((!ln || is_case) && have) {
            int before = failures;
            run_case(short_name, &c);
            if (c.has_known_bug && failures > before) {
                fprintf(stderr, "KNOWN BUG %s:%d (%s):%.*s (the failures above are expected)\n",
                        short_name, c.line, c.name, (int)c.known_bug.n, c.known_bug.p);
                failures = before;
            } else if (c.has_known_bug) {
                failf(short_name, &c, "passes now: remove its `--- known-bug` line");
            }
            ncases++;
            have = 0;
        }
        if (!ln) break;
        if (is_case) {
            memset(&c, 0, sizeof c);
            snprintf(c.name, sizeof c.name, "%.*s", (int)(len - 4), ln + 4);
            c.line = lineno;
            have = 1;
            cur = NULL;
            continue;
        }
        if (!have) continue;   /* text before the first case: comments */
        if (len >= 4 && memcmp(ln, "--- ", 4) == 0) {
            const char *s = ln + 4;
            size_t sl = len - 4;
            if (sl >= 5 && memcmp(s, "rules", 5) == 0 && c.nmods < MAX_MODS) {
                const char *nm = sl > 6 ? s + 6 : "m.vrl";
                size_t nl = sl > 6 ? sl - 6 : 5;
                snprintf(c.modname[c.nmods], sizeof c.modname[0], "%.*s", (int)nl, nm);
                cur = &c.mods[c.nmods++];
            } else if (sl == 5 && memcmp(s, "lists", 5) == 0) cur = &c.lists;
            else if (sl == 6 && memcmp(s, "labels", 6) == 0) cur = &c.labels;
            else if (sl >= 9 && memcmp(s, "known-bug", 9) == 0) {
                c.known_bug.p = s + 9;
                c.known_bug.n = sl - 9;
                c.has_known_bug = 1;
                continue;
            }
            else if (sl == 6 && memcmp(s, "events", 6) == 0) cur = &c.events;
            else if (sl == 9 && memcmp(s, "decisions", 9) == 0) { cur = &c.decisions; c.has_decisions = 1; }
            else if (sl == 11 && memcmp(s, "diagnostics", 11) == 0) { cur = &c.diags; c.has_diags = 1; }
            else { fprintf(stderr, "%s:%d: unknown section\n", short_name, lineno); failures++; cur = NULL; }
            if (cur) { cur->p = buf + pos; cur->n = 0; }
            continue;
        }
        if (cur) cur->n = (size_t)(ln + len - cur->p) + (pos <= n && ln[len] == '\n' ? 1 : 0);
    }
    return ncases;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lists file's errors: each names what is wrong, and a list named twice is one of
 * them (jansson kept the last one silently). */
static void test_lists_json_errors(void **state) {
    (void)state;
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"bl\":[\"a\"],\"bl\":[\"b\"]}", "duplicate object key"},
        {"{\"bl\":[1]}", "item 0: expected a string"},
        {"{\"bl\":\"x\"}", "expected an array of strings"},
        {"[\"a\"]", "expected an object"},
        {"{\"bl\":[\"a\"]} x", "end of file expected"},
        /* what vigil serve and PUT /v1/lists refuse (vg_lists_check_name/_item); a
         * --lists file took them */
        {"{\"bl\":[\"a\",\"\"]}", "list \"bl\", item 1 is empty"},
        {"{\"\":[\"a\"]}", "list \"\": the name is empty"},
        {"{\"a\\\"b\":[\"a\"]}", "list \"a\\x22b\": the name may not contain"},
        {"{\"a\\nb\":[]}", "(byte 0x0a at offset 1)"},
        /* in the item check's words (jansson's said "\u0000 is not allowed without
         * JSON_ALLOW_NUL") */
        {"{\"bl\":[\"a\\u0000b\"]}", "list \"bl\", item 0 may not contain U+0000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vg_lists_t *l = vg_lists_new();
        assert_non_null(l);
        char err[256] = "";
        assert_int_not_equal(vg_lists_load_json(l, bad[i].json, strlen(bad[i].json), err,
                                                sizeof err), 0);
        if (!strstr(err, bad[i].err)) fail_msg("%s: %s", bad[i].json, err);
        vg_lists_unref(l);
    }
    /* the limits themselves: 1024 bytes and 128 bytes are taken, one more is not */
    char item[1026], name[130], json[1400];
    memset(item, 'x', sizeof item);
    memset(name, 'n', sizeof name);
    static const struct {
        int nlen, ilen;
        const char *err;   /* NULL: taken */
    } lim[] = {{128, 1024, NULL}, {128, 1025, "item 0 is 1025 bytes, limit 1024"},
               {129, 1, "the name is 129 bytes, limit 128"}};
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        snprintf(json, sizeof json, "{\"%.*s\":[\"%.*s\"]}", lim[i].nlen, name, lim[i].ilen, item);
        vg_lists_t *l = vg_lists_new();
        char err[256] = "";
        int rc = vg_lists_load_json(l, json, strlen(json), err, sizeof err);
        if (!lim[i].err) assert_int_equal(rc, 0);
        else if (rc == 0 || !strstr(err, lim[i].err)) fail_msg("%d/%d: %s", lim[i].nlen, lim[i].ilen, err);
        vg_lists_unref(l);
    }
    char why[160];
    assert_int_equal(vg_lists_check_item("a\0b", 3, why, sizeof why), VG_EINVAL);
    assert_string_equal(why, "may not contain U+0000");
    assert_int_equal(vg_lists_check_item("a\xff", 2, why, sizeof why), VG_EINVAL);
    assert_string_equal(why, "is not valid UTF-8 (byte 0xff at offset 1)");
    assert_int_equal(vg_lists_check_item("\xc3\xa9", 2, why, sizeof why), 0);
    assert_int_equal(vg_lists_check_name("blocked_cards", 13, why, sizeof why), 0);
}

/* A change of one list shares the others with the collection before
 * (vg_lists_clone_without): vigil serve rebuilt every list on each change, and each
 * list's lookup by name was a scan, so a change cost the square of the number of lists
 * (57 ms a change with 2,000 lists). */
static void test_lists_clone_without(void **state) {
    (void)state;
    enum { N = 5000 };
    vg_lists_t *a = vg_lists_new();
    assert_non_null(a);
    char name[32], item[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(name, sizeof name, "l-%d", i);
        assert_int_equal(vg_lists_add(a, name, (size_t)n, "a", 1), 0);
    }
    assert_int_equal(vg_lists_count(a), N);
    vg_lists_t *b = vg_lists_clone_without(a, "l-7", 3);
    assert_non_null(b);
    assert_int_equal(vg_lists_count(b), N - 1);
    assert_null(vg_lists_get(b, "l-7", 3));
    /* the others are the very same sets, and cannot be added to through b */
    for (int i = 0; i < N; i += 97) {
        int n = snprintf(name, sizeof name, "l-%d", i);
        if (i == 7) continue;
        assert_ptr_equal(vg_lists_get(a, name, (size_t)n), vg_lists_get(b, name, (size_t)n));
    }
    assert_int_equal(vg_lists_add(b, "l-8", 3, "z", 1), VG_EINVAL);
    assert_false(vg_strset_has(vg_lists_get(a, "l-8", 3), "z", 1));
    /* l-7 made again in b: a keeps its own */
    for (int k = 0; k < 100; k++) {
        int n = snprintf(item, sizeof item, "x%d", k);
        assert_int_equal(vg_lists_add(b, "l-7", 3, item, (size_t)n), 0);
    }
    assert_int_equal(vg_strset_size(vg_lists_get(b, "l-7", 3)), 100);
    assert_int_equal(vg_strset_size(vg_lists_get(a, "l-7", 3)), 1);
    assert_true(vg_strset_has(vg_lists_get(b, "l-4999", 6), "a", 1));
    /* a freed first: b's shared sets live on */
    vg_lists_unref(a);
    assert_true(vg_strset_has(vg_lists_get(b, "l-0", 3), "a", 1));
    assert_true(vg_strset_has(vg_lists_get(b, "l-7", 3), "x99", 3));
    vg_lists_t *c = vg_lists_clone_without(NULL, "x", 1);
    assert_int_equal(vg_lists_count(c), 0);
    vg_lists_unref(c);
    vg_lists_unref(b);
}

static void test_rules_files(void **state) {
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strstr(dir, "tests/unit/test_rules_data.c");
    assert_non_null(slash);
    strcpy(slash, "tests/rules");
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    char *names[512];
    int nn = 0;
    struct dirent *de;
    while ((de = readdir(dp)) && nn < 512) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".test") == 0) names[nn++] = strdup(de->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)nn, sizeof names[0], cmp_str);
    int total = 0;
    for (int i = 0; i < nn; i++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int k = run_file(path, names[i]);
        fprintf(stderr, "%s: %d cases\n", names[i], k);
        total += k;
        free(names[i]);
    }
    fprintf(stderr, "%d files, %d cases, %d failures\n", nn, total, failures);
    assert_true(nn > 0);
    assert_true(total > 0);
    assert_int_equal(failures, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_lists_json_errors),
                                       cmocka_unit_test(test_lists_clone_without),
                                       cmocka_unit_test(test_rules_files)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
