/* cli.c - helpers shared by the `vigil` subcommands (see cli.h). */
#include "api/cli.h"
#include "api/http.h"
#include "engine/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules/errors.h"
#include "rules/file.h"
#include "rules/program.h"

/* A file's identity: the same file given twice (by one path or two) is found by it. */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
} file_id_t;

int vg_cli_duration(const char *s, int64_t *ms) {
    if (!s || !*s) return VG_EINVAL;
    const char *p = s;
    int64_t n = 0;
    int big = 0;   /* more digits than any duration needs: too long, if the unit is good */
    if (*p < '0' || *p > '9') return VG_EINVAL;
    while (*p >= '0' && *p <= '9') {
        if (n > VG_CLI_DURATION_MAX_MS) big = 1;
        else n = n * 10 + (*p - '0');
        p++;
    }
    int64_t mul;
    if (strcmp(p, "ms") == 0) mul = 1;
    else if (strcmp(p, "s") == 0) mul = 1000;
    else if (strcmp(p, "m") == 0) mul = 60 * 1000;
    else if (strcmp(p, "h") == 0) mul = 3600 * 1000;
    else if (strcmp(p, "d") == 0) mul = 86400 * 1000;
    else if (*p == 0 && n == 0 && !big) mul = 1;
    else return VG_EINVAL;
    if (big || n > VG_CLI_DURATION_MAX_MS / mul) return VG_ELIMIT;
    *ms = n * mul;
    return 0;
}

int vg_cli_duration_in(const char *s, int64_t min_ms, int64_t max_ms, int64_t *ms, char *errbuf,
                       size_t errlen) {
    int64_t v = 0;
    int rc = vg_cli_duration(s, &v);
    if (max_ms <= 0 || max_ms > VG_CLI_DURATION_MAX_MS) max_ms = VG_CLI_DURATION_MAX_MS;
    char lim[32];
    if (rc == VG_EINVAL) {
        snprintf(errbuf, errlen, "bad duration '%s' (a whole number and ms, s, m, h or d: "
                 "500ms, 30s, 10m, 1h, 7d)", s ? s : "");
        return VG_EINVAL;
    }
    if (rc == VG_ELIMIT || v > max_ms) {
        vg_fmt_duration(max_ms, lim, sizeof lim);
        snprintf(errbuf, errlen, "'%s' is too long (at most %s)", s, lim);
        return VG_EINVAL;
    }
    if (v < min_ms) {
        vg_fmt_duration(min_ms, lim, sizeof lim);
        if (min_ms == 1) snprintf(errbuf, errlen, "'%s': must be positive (e.g. 1s)", s);
        else snprintf(errbuf, errlen, "'%s' is too short (at least %s)", s, lim);
        return VG_EINVAL;
    }
    *ms = v;
    return 0;
}

int vg_cli_empty_value(const char *cmd, int c, const char *value, const char *which,
                       const struct option *lo) {
    if (!value || *value || c <= 0 || !strchr(which, c)) return 0;
    for (const struct option *x = lo; x->name; x++)
        if (x->val == c)
            fprintf(stderr, "vigil %s: --%s needs a value, not an empty string\n", cmd, x->name);
    return 1;
}

void vg_cli_bad_option(const char *cmd, int c, char *const *argv, const struct option *lo) {
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (c == ':') {
        fprintf(stderr, "vigil %s: option '%s' needs a value\n", cmd, arg);
        return;
    }
    if (strncmp(arg, "--", 2) != 0) {   /* a short option: none is known */
        if (optopt > 0 && optopt < 128)
            fprintf(stderr, "vigil %s: unknown option '-%c'\n", cmd, optopt);
        else
            fprintf(stderr, "vigil %s: unknown option '%s'\n", cmd, arg);
        return;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    int matches = 0, exact = 0, has_arg = 0;
    for (const struct option *o = lo; o && o->name; o++) {
        if (strncmp(o->name, name, n) != 0) continue;
        matches++;
        has_arg = o->has_arg;
        if (strlen(o->name) == n) {
            exact = 1;
            break;
        }
    }
    if ((exact || matches == 1) && eq && has_arg == no_argument)
        fprintf(stderr, "vigil %s: option '--%.*s' takes no value\n", cmd, (int)n, name);
    else if (!exact && matches > 1)
        fprintf(stderr, "vigil %s: option '--%.*s' is ambiguous\n", cmd, (int)n, name);
    else
        fprintf(stderr, "vigil %s: unknown option '--%.*s'\n", cmd, (int)n, name);
}

int vg_cli_size(const char *s, size_t *bytes) {
    if (!s || *s < '0' || *s > '9') return VG_EINVAL;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno) return VG_EINVAL;
    unsigned long long mul = 1;
    if (*end == 'k' || *end == 'K') mul = 1ULL << 10, end++;
    else if (*end == 'm' || *end == 'M') mul = 1ULL << 20, end++;
    else if (*end == 'g' || *end == 'G') mul = 1ULL << 30, end++;
    if (*end == 'i' && end[1] == 'B') end += 2;
    else if (*end == 'B') end++;
    if (*end) return VG_EINVAL;
    if (n > (~0ULL) / mul) return VG_EINVAL;
    *bytes = (size_t)(n * mul);
    return 0;
}

/* Reads a module file. Only regular files (a FIFO named x.vrl blocked `vigil check` for
 * good, /dev/zero grew its buffer without end), and at most one byte more than a module
 * may have: a larger file is refused by its size, not read into memory, with VG_ECOMPILE
 * and errbuf the diagnostic the compiler gives a module too large
 * (`PATH:1:1: error: module too large (...)`). *id is the file's device and inode. */
static int read_file(const char *path, char **out, size_t *len, file_id_t *id, char *errbuf,
                     size_t errlen) {
    struct stat st;
    int fd = vg_file_open(path, &st, errbuf, errlen);
    if (fd < 0) return fd;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    if (st.st_size > VG_RULES_MAX_SOURCE) {
        snprintf(errbuf, errlen, "%s:1:1: error: module too large (%lld bytes, limit %d)", path,
                 (long long)st.st_size, VG_RULES_MAX_SOURCE);
        close(fd);
        return VG_ECOMPILE;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;   /* +1: sees a file that grew */
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        snprintf(errbuf, errlen, "out of memory");
        return VG_ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap > VG_RULES_MAX_SOURCE) {
                free(buf);
                close(fd);
                snprintf(errbuf, errlen, "%s:1:1: error: module too large (more than %d bytes)",
                         path, VG_RULES_MAX_SOURCE);
                return VG_ECOMPILE;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                snprintf(errbuf, errlen, "out of memory");
                return VG_ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(errbuf, errlen, "%s: read error: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return VG_EIO;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n == cap) {   /* room for a terminator: callers may treat the text as a string */
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            snprintf(errbuf, errlen, "out of memory");
            return VG_ENOMEM;
        }
        buf = nb;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int vg_cli_module_name(const char *path, char *name, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bl = strlen(base);
    if (bl > 4 && strcmp(base + bl - 4, ".vrl") == 0) bl -= 4;   /* as the compiler does */
    if (cap) snprintf(name, cap, "%.*s", (int)bl, base);
    return bl <= 64 && cap > bl && vg_api_valid_module_name(name);
}

/* Appends the module at `path`; *ids holds the device and inode of each source so far
 * (the same file given twice, by one path or two, is refused: its features and rules
 * would all be reported as declared twice, each "first declared" at itself). */
static int add_source(vg_sources_t *s, file_id_t **ids, const char *path, char *errbuf,
                      size_t errlen) {
    vg_source_t *nv = realloc(s->v, sizeof(*nv) * (size_t)(s->n + 1));
    if (!nv) {
        snprintf(errbuf, errlen, "out of memory");
        return VG_ENOMEM;
    }
    s->v = nv;
    file_id_t *ni = realloc(*ids, sizeof(*ni) * (size_t)(s->n + 1));
    if (!ni) {
        snprintf(errbuf, errlen, "out of memory");
        return VG_ENOMEM;
    }
    *ids = ni;
    char *text;
    size_t len;
    char mod[80];
    if (!vg_cli_module_name(path, mod, sizeof mod)) {   /* as vigil serve and PUT refuse it */
        snprintf(errbuf, errlen, "%s: the file name must give a module name (1..64 letters, "
                 "digits, _ or - before .vrl)", path);
        return VG_EINVAL;
    }
    int rc = read_file(path, &text, &len, &ni[s->n], errbuf, errlen);
    if (rc) return rc;
    for (int i = 0; i < s->n; i++) {
        if (ni[i].dev != ni[s->n].dev || ni[i].ino != ni[s->n].ino) continue;
        if (strcmp(s->v[i].name, path) == 0)
            snprintf(errbuf, errlen, "%s: the same file is given twice (give each module once)",
                     path);
        else
            snprintf(errbuf, errlen, "%s: the same file as %s, given twice (give each module "
                     "once)", path, s->v[i].name);
        free(text);
        return VG_EINVAL;
    }
    char *name = strdup(path);
    if (!name) {
        free(text);
        snprintf(errbuf, errlen, "out of memory");
        return VG_ENOMEM;
    }
    s->v[s->n].name = name;
    s->v[s->n].text = text;
    s->v[s->n].len = len;
    s->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && memcmp(s + a - b, suf, b) == 0;
}

int vg_sources_load(vg_sources_t *s, char *const *paths, int npaths, char *errbuf,
                    size_t errlen) {
    s->v = NULL;
    s->n = 0;
    file_id_t *ids = NULL;
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            snprintf(errbuf, errlen, "%s: %s", paths[i], strerror(errno));
            vg_sources_free(s);
            free(ids);
            return VG_EIO;
        }
        if (!S_ISDIR(st.st_mode)) {
            int rc = add_source(s, &ids, paths[i], errbuf, errlen);
            if (rc) {
                vg_sources_free(s);
                free(ids);
                return rc;
            }
            continue;
        }
        DIR *d = opendir(paths[i]);
        if (!d) {
            snprintf(errbuf, errlen, "%s: %s", paths[i], strerror(errno));
            vg_sources_free(s);
            free(ids);
            return VG_EIO;
        }
        char **names = NULL;
        int nn = 0, rc = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' || !ends_with(de->d_name, ".vrl")) continue;
            size_t l = strlen(paths[i]) + strlen(de->d_name) + 2;
            char *full = malloc(l);
            char **nv = realloc(names, sizeof(*names) * (size_t)(nn + 1));
            if (!full || !nv) {
                free(full);
                if (nv) names = nv;
                rc = VG_ENOMEM;
                break;
            }
            names = nv;
            snprintf(full, l, "%s/%s", paths[i], de->d_name);
            names[nn++] = full;
        }
        closedir(d);
        if (!rc && nn == 0) {
            snprintf(errbuf, errlen, "%s: no .vrl files in this directory", paths[i]);
            rc = VG_EINVAL;
        }
        if (!rc) qsort(names, (size_t)nn, sizeof(*names), cmp_str);
        for (int k = 0; !rc && k < nn; k++) rc = add_source(s, &ids, names[k], errbuf, errlen);
        for (int k = 0; k < nn; k++) free(names[k]);
        free(names);
        if (rc) {
            if (rc == VG_ENOMEM) snprintf(errbuf, errlen, "out of memory");
            vg_sources_free(s);
            free(ids);
            return rc;
        }
    }
    free(ids);
    return 0;
}

void vg_sources_free(vg_sources_t *s) {
    for (int i = 0; i < s->n; i++) {
        free((char *)s->v[i].name);
        free((char *)s->v[i].text);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

vg_program_t *vg_cli_compile(const vg_sources_t *s, int *n_errors, int *n_warnings) {
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *p = vg_prog_compile(s->v, s->n, &d);
    if (n_warnings) {
        vg_diags_print(&d, s->v, s->n, stderr);
    } else {
        /* replay and serve print errors only; `vigil check` shows the warnings */
        vg_diags_t e = d;
        int k = 0, nw = 0;
        vg_diag_t *only = malloc(sizeof(*only) * (size_t)(d.n ? d.n : 1));
        if (only) {
            for (int i = 0; i < d.n; i++) {
                if (d.v[i].is_error) only[k++] = d.v[i];
                else nw++;
            }
            e.v = only;
            e.n = k;
            vg_diags_print(&e, s->v, s->n, stderr);
            free(only);
        } else {
            vg_diags_print(&d, s->v, s->n, stderr);
        }
        if (nw)
            fprintf(stderr, "vigil: %d warning%s in the rules (vigil check shows them)\n", nw,
                    nw == 1 ? "" : "s");
    }
    if (n_errors) *n_errors = d.n_errors;
    if (n_warnings) *n_warnings = d.n - d.n_errors;
    vg_diags_deinit(&d);
    return p;
}
