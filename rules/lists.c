/* lists.c - named string sets (see lists.h).
 *
 * Each set is an open-addressing table of {64-bit hash, length, bytes}; the bytes of
 * every item live in one growing buffer per set (offsets, so the buffer may move while
 * building). Hash: FNV-1a 64 mixed, computed once per lookup.
 */
#include "rules/lists.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/errors.h"
#include "rules/file.h"
#include "rules/utf8.h"

typedef struct slot {
    uint64_t h;        /* 0: empty */
    uint32_t off, len;
} slot_t;

struct vg_strset {
    atomic_int refs;   /* collections holding it: a set is shared, unchanged, between a
                          collection and the ones vg_lists_clone_without makes of it */
    char *name;
    size_t nlen;
    uint64_t nh;       /* hash64 of the name */
    slot_t *slots;
    size_t cap, n;     /* cap a power of two */
    char *bytes;
    size_t blen, bcap;
};

struct vg_lists {
    atomic_int refs;
    vg_strset_t **sets;
    int n, cap;
    int *idx;          /* open addressing by name hash: index into sets + 1, 0 empty */
    size_t icap;       /* a power of two, at least twice n (0: none yet) */
};

static uint64_t hash64(const char *p, size_t n) {
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

vg_lists_t *vg_lists_new(void) {
    vg_lists_t *l = calloc(1, sizeof *l);
    if (l) atomic_init(&l->refs, 1);
    return l;
}

vg_lists_t *vg_lists_ref(vg_lists_t *l) {
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    return l;
}

static void strset_unref(vg_strset_t *s) {
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
    free(s->name);
    free(s->slots);
    free(s->bytes);
    free(s);
}

void vg_lists_unref(vg_lists_t *l) {
    if (!l || atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1) return;
    for (int i = 0; i < l->n; i++) strset_unref(l->sets[i]);
    free(l->sets);
    free(l->idx);
    free(l);
}

static vg_strset_t *find(const vg_lists_t *l, const char *name, size_t nlen) {
    if (!l->icap) return NULL;
    uint64_t h = hash64(name, nlen);
    for (size_t i = h & (l->icap - 1);; i = (i + 1) & (l->icap - 1)) {
        int j = l->idx[i];
        if (!j) return NULL;
        vg_strset_t *s = l->sets[j - 1];
        if (s->nh == h && s->nlen == nlen && memcmp(s->name, name, nlen) == 0) return s;
    }
}

/* Appends set s (its reference taken over) to l and indexes it. 0 or VG_ENOMEM (s not
 * taken). */
static int append_set(vg_lists_t *l, vg_strset_t *s) {
    if (l->n == l->cap) {
        int ncap = l->cap ? l->cap * 2 : 8;
        vg_strset_t **ns = realloc(l->sets, sizeof *ns * (size_t)ncap);
        if (!ns) return VG_ENOMEM;
        l->sets = ns;
        l->cap = ncap;
    }
    if ((size_t)(l->n + 1) * 2 > l->icap) {
        size_t ncap = l->icap ? l->icap * 2 : 16;
        int *ni = calloc(ncap, sizeof *ni);
        if (!ni) return VG_ENOMEM;
        for (int k = 0; k < l->n; k++) {
            size_t j = l->sets[k]->nh & (ncap - 1);
            while (ni[j]) j = (j + 1) & (ncap - 1);
            ni[j] = k + 1;
        }
        free(l->idx);
        l->idx = ni;
        l->icap = ncap;
    }
    size_t j = s->nh & (l->icap - 1);
    while (l->idx[j]) j = (j + 1) & (l->icap - 1);
    l->sets[l->n++] = s;
    l->idx[j] = l->n;
    return 0;
}

const vg_strset_t *vg_lists_get(const vg_lists_t *l, const char *name, size_t nlen) {
    return l ? find(l, name, nlen) : NULL;
}

int vg_lists_count(const vg_lists_t *l) { return l ? l->n : 0; }
const char *vg_lists_name(const vg_lists_t *l, int i) { return l->sets[i]->name; }
size_t vg_strset_size(const vg_strset_t *s) { return s ? s->n : 0; }

int vg_lists_declare(vg_lists_t *l, const char *name, size_t nlen) {
    if (find(l, name, nlen)) return 0;
    vg_strset_t *s = calloc(1, sizeof *s);
    if (!s || !(s->name = malloc(nlen + 1))) {
        free(s);
        return VG_ENOMEM;
    }
    atomic_init(&s->refs, 1);
    memcpy(s->name, name, nlen);
    s->name[nlen] = 0;
    s->nlen = nlen;
    s->nh = hash64(name, nlen);
    if (append_set(l, s) != 0) {
        strset_unref(s);
        return VG_ENOMEM;
    }
    return 0;
}

vg_lists_t *vg_lists_clone_without(const vg_lists_t *base, const char *name, size_t nlen) {
    vg_lists_t *l = vg_lists_new();
    if (!l || !base) return l;
    for (int i = 0; i < base->n; i++) {
        vg_strset_t *s = base->sets[i];
        if (s->nlen == nlen && memcmp(s->name, name, nlen) == 0) continue;
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
        if (append_set(l, s) != 0) {
            strset_unref(s);
            vg_lists_unref(l);
            return NULL;
        }
    }
    return l;
}

static slot_t *probe(slot_t *slots, size_t cap, const char *bytes, uint64_t h, const char *p,
                     size_t n) {
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        slot_t *s = &slots[i];
        if (!s->h) return s;
        if (s->h == h && s->len == n && memcmp(bytes + s->off, p, n) == 0) return s;
    }
}

int vg_lists_add(vg_lists_t *l, const char *name, size_t nlen, const char *item, size_t ilen) {
    if (ilen > UINT32_MAX / 2) return VG_ENOMEM;
    if (vg_lists_declare(l, name, nlen)) return VG_ENOMEM;
    vg_strset_t *s = find(l, name, nlen);
    if (atomic_load_explicit(&s->refs, memory_order_relaxed) > 1) return VG_EINVAL;   /* shared */
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        slot_t *ns = calloc(ncap, sizeof *ns);
        if (!ns) return VG_ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i].h) {
                size_t j = s->slots[i].h & (ncap - 1);
                while (ns[j].h) j = (j + 1) & (ncap - 1);
                ns[j] = s->slots[i];
            }
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    uint64_t h = hash64(item, ilen);
    slot_t *sl = probe(s->slots, s->cap, s->bytes, h, item, ilen);
    if (sl->h) return 0;   /* already there */
    if (s->blen + ilen + 1 > s->bcap) {
        size_t nb = s->bcap ? s->bcap * 2 : 256;
        while (nb < s->blen + ilen + 1) nb *= 2;
        if (nb > UINT32_MAX) return VG_ENOMEM;
        char *b = realloc(s->bytes, nb);
        if (!b) return VG_ENOMEM;
        s->bytes = b;
        s->bcap = nb;
    }
    if (ilen) memcpy(s->bytes + s->blen, item, ilen);
    sl->h = h;
    sl->off = (uint32_t)s->blen;
    sl->len = (uint32_t)ilen;
    s->blen += ilen;
    s->n++;
    return 0;
}

int vg_strset_has(const vg_strset_t *s, const char *p, size_t n) {
    if (!s || !s->n) return 0;
    return probe(s->slots, s->cap, s->bytes, hash64(p, n), p, n)->h != 0;
}

/* 1..max bytes: 0, or VG_EINVAL with "is empty" / "is N bytes, limit M" in errbuf. */
static int check_len(size_t n, int max, char *errbuf, size_t errlen) {
    if (n == 0) {
        snprintf(errbuf, errlen, "is empty");
        return VG_EINVAL;
    }
    if (n > (size_t)max) {
        snprintf(errbuf, errlen, "is %zu bytes, limit %d", n, max);
        return VG_EINVAL;
    }
    return 0;
}

int vg_lists_check_name(const char *name, size_t n, char *errbuf, size_t errlen) {
    if (check_len(n, VG_LISTS_NAME_MAX, errbuf, errlen)) return VG_EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == '"') {
            snprintf(errbuf, errlen, "may not contain '\"' or a control character (byte "
                     "0x%02x at offset %zu)", (unsigned char)name[i], i);
            return VG_EINVAL;
        }
    return 0;
}

int vg_lists_check_item(const char *item, size_t n, char *errbuf, size_t errlen) {
    if (check_len(n, VG_LISTS_ITEM_MAX, errbuf, errlen)) return VG_EINVAL;
    const unsigned char *u = (const unsigned char *)item;
    for (size_t j = 0, q; j < n; j += q) {
        if (u[j] == 0) {
            snprintf(errbuf, errlen, "may not contain U+0000");
            return VG_EINVAL;
        }
        if ((q = vg_utf8_seq(u + j, n - j)) == 0) {
            snprintf(errbuf, errlen, "is not valid UTF-8 (byte 0x%02x at offset %zu)", u[j], j);
            return VG_EINVAL;
        }
    }
    return 0;
}

int vg_lists_load_json(vg_lists_t *l, const char *text, size_t len, char *errbuf,
                       size_t errlen) {
    json_error_t je;
    /* U+0000 read, to be refused by vg_lists_check_item in its words, not jansson's */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root) {
        snprintf(errbuf, errlen, "line %d, column %d: %s", je.line, je.column, je.text);
        return VG_EINVAL;
    }
    int rc = 0;
    if (!json_is_object(root)) {
        snprintf(errbuf, errlen, "expected an object {\"name\": [\"item\", ...]}");
        rc = VG_EINVAL;
        goto out;
    }
    const char *name;
    json_t *arr;
    json_object_foreach(root, name, arr) {
        if (!json_is_array(arr)) {
            snprintf(errbuf, errlen, "list \"%s\": expected an array of strings", name);
            rc = VG_EINVAL;
            goto out;
        }
        char why[160];
        if (vg_lists_check_name(name, strlen(name), why, sizeof why)) {
            char shown[4 * 40 + 4];   /* the first 40 bytes, control bytes and '"' as \xNN */
            size_t o = 0;
            shown[0] = 0;
            for (size_t i = 0; name[i] && i < 40; i++)
                o += (size_t)snprintf(shown + o, sizeof shown - o,
                                      (unsigned char)name[i] < 0x20 || name[i] == '"'
                                          ? "\\x%02x" : "%c", (unsigned char)name[i]);
            if (strlen(name) > 40) snprintf(shown + o, sizeof shown - o, "...");
            snprintf(errbuf, errlen, "list \"%s\": the name %s (as vigil serve and PUT "
                     "/v1/lists require)", shown, why);
            rc = VG_EINVAL;
            goto out;
        }
        if ((rc = vg_lists_declare(l, name, strlen(name)))) goto out;
        size_t i;
        json_t *it;
        json_array_foreach(arr, i, it) {
            if (!json_is_string(it)) {
                snprintf(errbuf, errlen, "list \"%s\", item %zu: expected a string", name, i);
                rc = VG_EINVAL;
                goto out;
            }
            if (vg_lists_check_item(json_string_value(it), json_string_length(it), why,
                                    sizeof why)) {
                snprintf(errbuf, errlen, "list \"%s\", item %zu %s (as vigil serve and PUT "
                         "/v1/lists require)", name, i, why);
                rc = VG_EINVAL;
                goto out;
            }
            rc = vg_lists_add(l, name, strlen(name), json_string_value(it), json_string_length(it));
            if (rc) goto out;
        }
    }
out:
    if (rc == VG_ENOMEM) snprintf(errbuf, errlen, "out of memory");
    json_decref(root);
    return rc;
}

/* ---- the file source ------------------------------------------------------------- */

static vg_lists_t *file_fetch(void *ctx, char *errbuf, size_t errlen) {
    const char *path = ctx;
    FILE *f = vg_file_fopen(path, errbuf, errlen);   /* a regular file: not /dev/zero */
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); snprintf(errbuf, errlen, "out of memory"); return NULL; }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(errbuf, errlen, "%s: read error", path);
        return NULL;
    }
    vg_lists_t *l = vg_lists_new();
    char why[200];
    /* a leading UTF-8 byte order mark is skipped, as in .vrl modules and config files */
    size_t bom = n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    if (!l || vg_lists_load_json(l, buf ? buf + bom : "", n - bom, why, sizeof why) != 0) {
        snprintf(errbuf, errlen, "%s: %s", path, l ? why : "out of memory");
        vg_lists_unref(l);
        l = NULL;
    }
    free(buf);
    return l;
}

static void file_close(void *ctx) { free(ctx); }

static const vg_list_source_ops_t file_ops = {"file", file_fetch, file_close};

int vg_list_source_file(vg_list_source_t *src, const char *path) {
    char *p = strdup(path);
    if (!p) return VG_ENOMEM;
    src->ops = &file_ops;
    src->ctx = p;
    return 0;
}
