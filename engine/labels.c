/* labels.c - label lists and label windows by key (see labels.h).
 *
 * Label window record "lk/<16 hex of the key>" (little endian): i64 newest, u32 n,
 * n x (u64 id hash, i64 event time, u8 status).
 */
#include "engine/labels.h"
#include "engine/le.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/acctx.h"
#include "engine/event.h"
#include "rules/errors.h"
#include "rules/file.h"
#include "rules/utf8.h"

/* ---- label lists -------------------------------------------------------------------- */

struct vg_labels {
    vg_label_t *v;
    size_t n, cap;
    char *text;       /* the file's bytes: labels point into it */
};

void vg_labels_free(vg_labels_t *l) {
    if (!l) return;
    free(l->v);
    free(l->text);
    free(l);
}

size_t vg_labels_count(const vg_labels_t *l) { return l ? l->n : 0; }
const vg_label_t *vg_labels_get(const vg_labels_t *l, size_t i) {
    return l && i < l->n ? &l->v[i] : NULL;
}

static int cmp_at(const void *x, const void *y) {
    const vg_label_t *a = x, *b = y;
    if (a->at_ms != b->at_ms) return a->at_ms < b->at_ms ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;   /* stable: file order */
}

static int trim(char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r')) (*n)--;
    return *n > 0;
}

/* 1 with "FILE:LINE: reason" in errbuf when an id or account holds U+0000 or is not
 * valid UTF-8 (an overlong form, a surrogate: a Latin-1 export), which POST /v1/labels
 * and an event's id and account refuse; such a label could never match an event. */
static int bad_text(const char *s, size_t n, const char *name, long line, const char *what,
                    char *errbuf, size_t errlen) {
    if (memchr(s, 0, n)) {
        snprintf(errbuf, errlen, "%s:%ld: %s may not contain U+0000", name, line, what);
        return 1;
    }
    for (size_t i = 0; i < n;) {
        size_t k = vg_utf8_seq((const unsigned char *)s + i, n - i);
        if (!k) {
            snprintf(errbuf, errlen, "%s:%ld: %s is not valid UTF-8 (byte 0x%02x at offset %zu)",
                     name, line, what, (unsigned char)s[i], i);
            return 1;
        }
        i += k;
    }
    return 0;
}

vg_labels_t *vg_labels_read(FILE *f, const char *name, char *errbuf, size_t errlen) {
    vg_labels_t *l = calloc(1, sizeof *l);
    size_t cap = 1 << 16, len = 0;
    char *t = malloc(cap + 1);
    if (!l || !t) goto nomem;
    for (;;) {
        if (len == cap) {
            char *nt = realloc(t, cap * 2 + 1);
            if (!nt) goto nomem;
            t = nt;
            cap *= 2;
        }
        size_t r = fread(t + len, 1, cap - len, f);
        if (r == 0) break;
        len += r;
    }
    if (ferror(f)) {
        snprintf(errbuf, errlen, "%s: read error", name);
        goto fail;
    }
    t[len] = 0;
    l->text = t;
    /* a leading UTF-8 byte order mark is skipped, as in .vrl modules and config files */
    size_t pos = len >= 3 && memcmp(t, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    long line = 0;
    int header = 0;
    while (pos < len) {
        char *s = t + pos;
        char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        s[n] = 0;
        char *cs = s;
        size_t cn = n;
        if (!trim(&cs, &cn)) continue;
        if (!header) {
            if (cn != 19 || memcmp(cs, "id,account,fraud,at", 19) != 0) {
                snprintf(errbuf, errlen, "%s:%ld: expected the header id,account,fraud,at",
                         name, line);
                goto fail;
            }
            header = 1;
            continue;
        }
        char *fld[4];
        size_t fl[4];
        static const char *const fname[4] = {"id", "account", "fraud", "at"};
        int nf = 0, more = 1;
        char *p = cs, *end = cs + cn;
        while (more && nf < 4) {
            fld[nf] = p;
            if (p < end && *p == '"') {   /* RFC 4180: quoted, "" a quote, commas allowed;
                                             unescaped in place */
                size_t o = 0;
                char *r = p + 1;
                for (;;) {
                    if (r >= end) {
                        snprintf(errbuf, errlen, "%s:%ld: %s: a quoted field without its "
                                 "closing quote", name, line, fname[nf]);
                        goto fail;
                    }
                    if (*r == '"') {
                        if (r + 1 < end && r[1] == '"') {
                            p[o++] = '"';
                            r += 2;
                            continue;
                        }
                        r++;
                        break;
                    }
                    p[o++] = *r++;
                }
                fl[nf] = o;
                if (r < end && *r != ',') {
                    snprintf(errbuf, errlen, "%s:%ld: %s: text after a quoted field", name,
                             line, fname[nf]);
                    goto fail;
                }
                more = r < end;
                p = r + 1;
            } else {
                char *c = memchr(p, ',', (size_t)(end - p));
                fl[nf] = c ? (size_t)(c - p) : (size_t)(end - p);
                if (memchr(fld[nf], '"', fl[nf])) {
                    snprintf(errbuf, errlen, "%s:%ld: %s: a quote inside an unquoted field "
                             "(quote the whole field, a quote in it doubled)", name, line,
                             fname[nf]);
                    goto fail;
                }
                more = c != NULL;
                p = c ? c + 1 : end;
            }
            nf++;
        }
        if (nf != 4 || more) {   /* fewer fields, or more (a 5th) */
            snprintf(errbuf, errlen, "%s:%ld: expected 4 fields id,account,fraud,at", name, line);
            goto fail;
        }
        /* " 1" and "true" were read as fraud although docs/replay.md says 0/1 */
        for (int i = 0; i < 4; i++) {
            if (fl[i] && (fld[i][0] == ' ' || fld[i][0] == '\t' || fld[i][fl[i] - 1] == ' ' ||
                          fld[i][fl[i] - 1] == '\t')) {
                snprintf(errbuf, errlen, "%s:%ld: %s: spaces around the value '%.*s'", name,
                         line, fname[i], (int)(fl[i] > 40 ? 40 : fl[i]), fld[i]);
                goto fail;
            }
        }
        if (fl[0] == 0 || fl[0] > 128 || fl[1] == 0 || fl[1] > 128) {
            snprintf(errbuf, errlen, "%s:%ld: id and account must be 1..128 bytes", name, line);
            goto fail;
        }
        for (int i = 0; i < 2; i++)   /* as POST /v1/labels and events refuse them */
            if (bad_text(fld[i], fl[i], name, line, fname[i], errbuf, errlen)) goto fail;
        int fraud;
        if (fl[2] == 1 && (fld[2][0] == '0' || fld[2][0] == '1'))
            fraud = fld[2][0] - '0';
        else {
            snprintf(errbuf, errlen, "%s:%ld: fraud must be 0 or 1, found '%.*s'", name, line,
                     (int)(fl[2] > 40 ? 40 : fl[2]), fld[2]);
            goto fail;
        }
        int64_t at;
        char terr[128];
        int digits = fl[3] > 0 && fl[3] <= 18;
        for (size_t i = 0; digits && i < fl[3]; i++) digits = fld[3][i] >= '0' && fld[3][i] <= '9';
        if (digits) {
            at = 0;
            for (size_t i = 0; i < fl[3]; i++) at = at * 10 + (fld[3][i] - '0');
            if (at > VG_TIME_MAX_MS) {   /* as an event's ts */
                snprintf(errbuf, errlen,
                         "%s:%ld: epoch milliseconds %" PRId64 " out of range (years 0000-9999)",
                         name, line, at);
                goto fail;
            }
        } else if (vg_time_parse(fld[3], fl[3], &at, terr, sizeof terr) != 0) {
            snprintf(errbuf, errlen, "%s:%ld: bad time '%.*s': %s", name, line,
                     (int)(fl[3] > 40 ? 40 : fl[3]), fld[3], terr);
            goto fail;
        }
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 1024;
            vg_label_t *nv = realloc(l->v, nc * sizeof *nv);
            if (!nv) goto nomem;
            l->v = nv;
            l->cap = nc;
        }
        fld[0][fl[0]] = 0;
        fld[1][fl[1]] = 0;
        l->v[l->n++] = (vg_label_t){fld[0], fl[0], fld[1], fl[1], fraud, at};
    }
    if (!header) {
        snprintf(errbuf, errlen, "%s:1: expected the header id,account,fraud,at", name);
        goto fail;
    }
    /* stable sort by time: ids point into the text in file order */
    qsort(l->v, l->n, sizeof *l->v, cmp_at);
    return l;
nomem:
    snprintf(errbuf, errlen, "%s: out of memory", name);
fail:
    if (l && !l->text) free(t);
    vg_labels_free(l);
    return NULL;
}

vg_labels_t *vg_labels_load(const char *path, char *errbuf, size_t errlen) {
    FILE *f = vg_file_fopen(path, errbuf, errlen);   /* a regular file: not /dev/zero */
    if (!f) return NULL;
    vg_labels_t *l = vg_labels_read(f, path, errbuf, errlen);
    fclose(f);
    return l;
}

/* ---- label windows by key ------------------------------------------------------------ */

typedef struct lent {
    uint64_t idh;
    int64_t ts;
    uint8_t status;
} lent_t;

typedef struct lkey {
    uint64_t key;
    int64_t newest;
    uint32_t n, cap;
    uint8_t dirty;
    lent_t *v;
} lkey_t;

struct vg_lkeys {
    int64_t lateness, maxw;
    uint32_t *slot;     /* 1 + index into keys, 0 empty */
    size_t cap;         /* power of two */
    lkey_t *keys;
    size_t n, kcap;
    uint32_t *dirty;
    size_t ndirty, dcap;
};

vg_lkeys_t *vg_lkeys_new(int64_t lateness_ms, int64_t max_window_ms) {
    vg_lkeys_t *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->lateness = lateness_ms;
    k->maxw = max_window_ms;
    k->cap = 1024;
    k->slot = calloc(k->cap, sizeof *k->slot);
    if (!k->slot) {
        free(k);
        return NULL;
    }
    return k;
}

void vg_lkeys_free(vg_lkeys_t *k) {
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) free(k->keys[i].v);
    free(k->keys);
    free(k->slot);
    free(k->dirty);
    free(k);
}

size_t vg_lkeys_size(const vg_lkeys_t *k) { return k->n; }

uint64_t vg_lkeys_key(int g, int type, const void *bytes, size_t n) {
    return vg_acctx_hash(bytes, n, ((uint64_t)(uint32_t)g << 8 | (uint8_t)type) * 0x100000001b3ULL);
}

static lkey_t *find(const vg_lkeys_t *k, uint64_t key) {
    size_t m = k->cap - 1;
    for (size_t i = key & m;; i = (i + 1) & m) {
        if (!k->slot[i]) return NULL;
        lkey_t *e = &k->keys[k->slot[i] - 1];
        if (e->key == key) return e;
    }
}

static lkey_t *get(vg_lkeys_t *k, uint64_t key) {
    lkey_t *e = find(k, key);
    if (e) return e;
    if ((k->n + 1) * 10 > k->cap * 7) {
        size_t nc = k->cap * 2;
        uint32_t *ns = calloc(nc, sizeof *ns);
        if (!ns) return NULL;
        for (size_t j = 0; j < k->n; j++) {
            size_t i = k->keys[j].key & (nc - 1);
            while (ns[i]) i = (i + 1) & (nc - 1);
            ns[i] = (uint32_t)j + 1;
        }
        free(k->slot);
        k->slot = ns;
        k->cap = nc;
    }
    if (k->n == k->kcap) {
        size_t nc = k->kcap ? k->kcap * 2 : 256;
        lkey_t *nk = realloc(k->keys, nc * sizeof *nk);
        if (!nk) return NULL;
        k->keys = nk;
        k->kcap = nc;
    }
    e = &k->keys[k->n];
    memset(e, 0, sizeof *e);
    e->key = key;
    e->newest = INT64_MIN;
    size_t i = key & (k->cap - 1);
    while (k->slot[i]) i = (i + 1) & (k->cap - 1);
    k->slot[i] = (uint32_t)++k->n;
    return e;
}

static int mark(vg_lkeys_t *k, lkey_t *e) {
    if (e->dirty) return 0;
    if (k->ndirty == k->dcap) {
        size_t nc = k->dcap ? k->dcap * 2 : 256;
        uint32_t *nd = realloc(k->dirty, nc * sizeof *nd);
        if (!nd) return VG_ENOMEM;
        k->dirty = nd;
        k->dcap = nc;
    }
    k->dirty[k->ndirty++] = (uint32_t)(e - k->keys);
    e->dirty = 1;
    return 0;
}

static void prune(lkey_t *e, int64_t oldest) {
    uint32_t j = 0;
    for (uint32_t i = 0; i < e->n; i++)
        if (e->v[i].ts >= oldest) e->v[j++] = e->v[i];
    e->n = j;
}

int vg_lkeys_touch(vg_lkeys_t *k, uint64_t key, int64_t t) {
    lkey_t *e = get(k, key);
    if (!e) return VG_ENOMEM;
    if (e->newest != INT64_MIN && t < e->newest - k->lateness) return 1;
    if (t > e->newest) {
        if (mark(k, e)) return VG_ENOMEM;
        e->newest = t;
    }
    return 0;
}

void vg_lkeys_count(const vg_lkeys_t *k, uint64_t key, int64_t lo, int64_t hi,
                    int64_t *fraud, int64_t *labelled) {
    int64_t f = 0, l = 0;
    const lkey_t *e = find(k, key);
    for (uint32_t i = 0; e && i < e->n; i++) {
        if (e->v[i].ts < lo || e->v[i].ts > hi) continue;
        l++;
        if (e->v[i].status == VG_LABEL_FRAUD) f++;
    }
    *fraud = f;
    *labelled = l;
}

int vg_lkeys_set(vg_lkeys_t *k, uint64_t key, uint64_t idh, int64_t ts, int status) {
    lkey_t *e = get(k, key);
    if (!e || mark(k, e)) return VG_ENOMEM;
    if (e->newest != INT64_MIN) prune(e, e->newest - k->lateness - k->maxw);
    for (uint32_t i = 0; i < e->n; i++)
        if (e->v[i].idh == idh && e->v[i].ts == ts) {
            if (status == VG_LABEL_NONE) e->v[i] = e->v[--e->n];
            else e->v[i].status = (uint8_t)status;
            return 0;
        }
    if (status == VG_LABEL_NONE) return 0;
    if (e->n == e->cap) {
        uint32_t nc = e->cap ? e->cap * 2 : 4;
        lent_t *nv = realloc(e->v, nc * sizeof *nv);
        if (!nv) return VG_ENOMEM;
        e->v = nv;
        e->cap = nc;
    }
    e->v[e->n++] = (lent_t){idh, ts, (uint8_t)status};
    return 0;
}

int vg_lkeys_dirty(vg_lkeys_t *k, vg_buf_t *names, vg_buf_t *vals,
                   int (*emit)(void *ctx, size_t noff, size_t voff, size_t vlen), void *ctx) {
    for (size_t d = 0; d < k->ndirty; d++) {
        lkey_t *e = &k->keys[k->dirty[d]];
        char nm[32];
        int nn = snprintf(nm, sizeof nm, "lk/%016" PRIx64, e->key);
        size_t noff = names->len, voff = vals->len;
        int rc = vg_buf_append(names, nm, (size_t)nn + 1);
        if (!rc) rc = vg_le_put(vals, (uint64_t)e->newest, 8);
        if (!rc) rc = vg_le_put(vals, e->n, 4);
        for (uint32_t i = 0; !rc && i < e->n; i++) {
            rc = vg_le_put(vals, e->v[i].idh, 8);
            if (!rc) rc = vg_le_put(vals, (uint64_t)e->v[i].ts, 8);
            if (!rc) rc = vg_le_put(vals, e->v[i].status, 1);
        }
        if (!rc) rc = emit(ctx, noff, voff, vals->len - voff);
        if (rc) return rc;
    }
    for (size_t d = 0; d < k->ndirty; d++) k->keys[k->dirty[d]].dirty = 0;
    k->ndirty = 0;
    return 0;
}

static uint64_t rd(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int vg_lkeys_load(vg_lkeys_t *k, const char *name, size_t nlen, const void *val, size_t vlen) {
    if (nlen != 19 || memcmp(name, "lk/", 3) != 0) return VG_EINVAL;
    char hex[17];
    memcpy(hex, name + 3, 16);
    hex[16] = 0;
    char *end;
    uint64_t key = strtoull(hex, &end, 16);
    const unsigned char *p = val;
    if (*end || vlen < 12) return VG_EINVAL;
    uint32_t n = (uint32_t)rd(p + 8, 4);
    if ((vlen - 12) / 17 < n || vlen != 12 + (size_t)n * 17) return VG_EINVAL;
    lkey_t *e = get(k, key);
    if (!e) return VG_ENOMEM;
    e->newest = (int64_t)rd(p, 8);
    free(e->v);
    e->v = n ? malloc(n * sizeof *e->v) : NULL;
    if (n && !e->v) return VG_ENOMEM;
    e->n = e->cap = n;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *q = p + 12 + (size_t)i * 17;
        e->v[i] = (lent_t){rd(q, 8), (int64_t)rd(q + 8, 8), q[16]};
    }
    return 0;
}
