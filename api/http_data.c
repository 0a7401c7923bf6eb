/* http_data.c - lists, labels, accounts, alerts and the audit trail over HTTP
 * (SPEC section 6).
 *
 * A list is kept as {"name","version","items":[sorted],"deleted"} under "L/" in the
 * control store; every change bumps its version (ETag) and swaps the engine's lists
 * whole. With Redis, the change is made in Redis first (api/redis.c), which then
 * installs the shared result here.
 * Alerts and recent decisions are written by vg_api_record_decision (http_state.c);
 * alerts are read newest first with an opaque cursor (the alert's id).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "api/redis.h"
#include "models/anomaly.h"
#include "rules/errors.h"
#include "rules/lists.h"

static int find_list(vg_api_t *a, const char *name) {
    for (int i = 0; i < a->nlists; i++)
        if (strcmp(a->lists[i].name, name) == 0) return i;
    return -1;
}

/* A list name as every list source requires it (rules/lists.h); 400 in r when not. */
static int valid_list_name(const char *s, vg_resp_t *r) {
    char why[160];
    if (vg_lists_check_name(s, strlen(s), why, sizeof why) == 0) return 1;
    vg_resp_error(r, 400, "bad_request", "bad list name: the name %s", why);
    return 0;
}

static int cmpstr(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void free_items(char **items, size_t n) {
    for (size_t k = 0; k < n; k++) free(items[k]);
    free(items);
}

/* Sorted, unique copy. NULL on out of memory (n == 0 gives a valid empty array). */
static char **copy_items(char **items, size_t n, size_t *out_n) {
    char **c = calloc(n + 1, sizeof(*c));
    if (!c) return NULL;
    for (size_t k = 0; k < n; k++)
        if (!(c[k] = strdup(items[k]))) {
            free_items(c, k);
            return NULL;
        }
    qsort(c, n, sizeof(*c), cmpstr);
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        if (m > 0 && strcmp(c[m - 1], c[k]) == 0) free(c[k]);
        else c[m++] = c[k];
    }
    *out_n = m;
    return c;
}

vg_lists_t *vg_api_build_lists(vg_api_t *a) {
    vg_lists_t *l = vg_lists_new();
    if (!l) return NULL;
    for (int i = 0; i < a->nlists; i++) {
        vg_list_t *x = &a->lists[i];
        if (x->deleted) continue;
        vg_lists_declare(l, x->name, strlen(x->name));
        for (size_t k = 0; k < x->n; k++)
            vg_lists_add(l, x->name, strlen(x->name), x->items[k], strlen(x->items[k]));
    }
    return l;
}

/* Gives the engine (and serve's Kafka pipelines) the lists l; keeps l as cur_lists. */
static void set_lists(vg_api_t *a, vg_lists_t *l) {
    if (a->eng) vg_engine_set_lists(a->eng, l);
    if (a->on_rules) a->on_rules(a->on_rules_ctx, NULL, 0, l);
    vg_lists_unref(a->cur_lists);
    a->cur_lists = l;
}

int vg_api_push_lists(vg_api_t *a) {
    vg_lists_t *l = vg_api_build_lists(a);
    if (!l) return VG_ENOMEM;
    set_lists(a, l);
    return 0;
}

/* After a change of list x alone: the lists in force with x's new contents, the others
 * shared with the ones before (O(x's size) + O(number of lists) pointers; a whole
 * rebuild, before 2026-12-07, made each change cost the square of the number of lists:
 * 57 ms a change with 2,000 lists). */
static int push_list(vg_api_t *a, const vg_list_t *x) {
    if (!a->cur_lists) return vg_api_push_lists(a);
    size_t nl = strlen(x->name);
    vg_lists_t *l = vg_lists_clone_without(a->cur_lists, x->name, nl);
    int rc = l ? 0 : VG_ENOMEM;
    if (!rc && !x->deleted) rc = vg_lists_declare(l, x->name, nl);
    for (size_t k = 0; !rc && !x->deleted && k < x->n; k++)
        rc = vg_lists_add(l, x->name, nl, x->items[k], strlen(x->items[k]));
    if (rc) {
        vg_lists_unref(l);
        return rc;
    }
    set_lists(a, l);
    return 0;
}

static char *list_record(const vg_list_t *x) {
    json_t *items = json_array();
    for (size_t k = 0; k < x->n; k++) json_array_append_new(items, json_string(x->items[k]));
    json_t *j = json_pack("{s:s,s:I,s:b,s:o}", "name", x->name, "version", (json_int_t)x->version,
                          "deleted", x->deleted, "items", items);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* mu held */
static int apply_list_locked(vg_api_t *a, const char *name, int64_t version, char **items,
                             size_t n, int deleted) {
    int i = find_list(a, name);
    /* the same version is installed again only when it differs (redis.c compares: Redis
     * held other items under that version, which every instance adopts) */
    if (i >= 0 && a->lists[i].version > version) return 0;
    vg_list_t nx = {0};
    nx.name = strdup(name);
    nx.version = version;
    nx.deleted = deleted;
    nx.items = copy_items(items, deleted ? 0 : n, &nx.n);
    if (!nx.name || !nx.items) {
        free(nx.name);
        if (nx.items) free_items(nx.items, nx.n);
        return VG_ENOMEM;
    }
    char *rec = list_record(&nx);
    size_t nl = strlen(name);
    char *key = malloc(nl + 2);
    int rc = rec && key ? 0 : VG_ENOMEM;
    if (!rc) {
        memcpy(key, "L/", 2);
        memcpy(key + 2, name, nl);
        rc = vg_ctl_put(a->ctl, key, nl + 2, rec, strlen(rec));
    }
    free(key);
    free(rec);
    if (rc) {
        free(nx.name);
        free_items(nx.items, nx.n);
        return rc;
    }
    if (i < 0) {
        vg_list_t *nl2 = realloc(a->lists, (size_t)(a->nlists + 1) * sizeof(*nl2));
        if (!nl2) {
            free(nx.name);
            free_items(nx.items, nx.n);
            return VG_ENOMEM;
        }
        a->lists = nl2;
        i = a->nlists++;
    } else {
        free(a->lists[i].name);
        free_items(a->lists[i].items, a->lists[i].n);
    }
    a->lists[i] = nx;
    return push_list(a, &a->lists[i]);
}

int vg_api_apply_list(vg_api_t *a, const char *name, int64_t version, char **items, size_t n,
                      int deleted) {
    pthread_mutex_lock(&a->mu);
    int rc = apply_list_locked(a, name, version, items, n, deleted);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

static int load_list_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)k;
    (void)kl;
    vg_api_t *a = ctx;
    json_t *j = json_loadb(v, vl, 0, NULL);
    if (!j) return 0;
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *items = json_object_get(j, "items");
    size_t n = json_array_size(items);
    char **it = calloc(n + 1, sizeof(*it));
    vg_list_t *nl = realloc(a->lists, (size_t)(a->nlists + 1) * sizeof(*nl));
    if (nl) a->lists = nl;
    if (name && it && nl) {
        for (size_t k2 = 0; k2 < n; k2++) {
            const char *s = json_string_value(json_array_get(items, k2));
            it[k2] = strdup(s ? s : "");
        }
        vg_list_t *x = &a->lists[a->nlists++];
        memset(x, 0, sizeof(*x));
        x->name = strdup(name);
        x->version = json_integer_value(json_object_get(j, "version"));
        x->deleted = json_is_true(json_object_get(j, "deleted"));
        x->items = it;
        x->n = n;
        it = NULL;
    }
    free(it);
    json_decref(j);
    return 0;
}

int vg_api_load_lists(vg_api_t *a) { return vg_ctl_scan(a->ctl, "L/", 2, NULL, 0, load_list_cb, a); }

/* ---- list handlers --------------------------------------------------------------- */

static json_t *list_json(const vg_list_t *x) {
    json_t *items = json_array();
    for (size_t k = 0; k < x->n; k++) json_array_append_new(items, json_string(x->items[k]));
    return json_pack("{s:s,s:I,s:I,s:o}", "name", x->name, "version", (json_int_t)x->version,
                     "size", (json_int_t)x->n, "items", items);
}

void vg_h_lists(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    (void)q;
    json_t *arr = json_array();
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->nlists; i++)
        if (!a->lists[i].deleted)
            json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "name", a->lists[i].name,
                                                 "version", (json_int_t)a->lists[i].version,
                                                 "size", (json_int_t)a->lists[i].n));
    pthread_mutex_unlock(&a->mu);
    vg_resp_json(r, 200, json_pack("{s:o}", "lists", arr));
}

/* 1 when "add" of items[0] or "put" of items[0..n) would leave list x as it is (its items
 * are sorted and unique, as copy_items makes them). */
static int same_items(const vg_list_t *x, const char *op, char **items, size_t n) {
    if (strcmp(op, "add") == 0)
        return bsearch(&items[0], x->items, x->n, sizeof(char *), cmpstr) != NULL;
    size_t m;
    char **c = copy_items(items, n, &m);
    if (!c) return 0;   /* out of memory: changed as before */
    int same = m == x->n;
    for (size_t k = 0; same && k < m; k++) same = strcmp(c[k], x->items[k]) == 0;
    free_items(c, m);
    return same;
}

/* The warnings of a list change's answer (docs/api.md, Lists): a PUT to a list the active
 * rules do not declare (a typo of its name blocks nothing), or the deletion of one they
 * declare (their `in list(..)` now sees it empty). An array, possibly empty. */
static json_t *list_warnings(vg_api_t *a, const char *name, int is_del, int is_rem) {
    json_t *w = json_array();
    if (is_rem) return w;
    pthread_mutex_lock(&a->mu);
    vg_program_t *p = a->active ? vg_prog_ref(a->active) : NULL;
    pthread_mutex_unlock(&a->mu);
    int declared = 0, n = p ? vg_prog_nlists(p) : 0;
    char decl[512] = "";
    for (int k = 0; k < n; k++) {
        const char *ln = vg_prog_list_name(p, k);
        if (!ln) continue;
        declared |= strcmp(ln, name) == 0;
        size_t dl = strlen(decl);
        if (dl < sizeof(decl) - 1)
            snprintf(decl + dl, sizeof(decl) - dl, "%s%s", dl ? ", " : "", ln);
    }
    char msg[1024];
    if (is_del && declared)
        snprintf(msg, sizeof msg, "list %s is declared by the active rules: their "
                 "`in list(\"%s\")` now sees it empty", name, name);
    else if (!is_del && !declared)
        snprintf(msg, sizeof msg, "no active rule declares list %s (declared: %s)", name,
                 *decl ? decl : "none");
    else msg[0] = 0;
    if (*msg) json_array_append_new(w, json_string(msg));
    vg_prog_unref(p);
    return w;
}

#define AUDIT_ITEMS 100   /* items a lists.put / lists.del audit entry names, each way */

/* What a PUT or DELETE of a whole list changed, for its audit entry: the items added and
 * removed (sorted, the first AUDIT_ITEMS of each) and their counts, against the list as
 * this instance held it (`old`, sorted and unique; with Redis, the copy it had). A
 * version bump alone let a replace take a card off a blocklist without a trace. */
static json_t *list_diff(const char *name, char **old, size_t no, char **items, size_t n) {
    size_t m = 0;
    char **nw = n ? copy_items(items, n, &m) : NULL;
    json_t *add = json_array(), *rem = json_array();
    size_t na = 0, nr = 0, i = 0, k = 0;
    while (i < no || k < m) {
        int c = i == no ? 1 : k == m ? -1 : strcmp(old[i], nw[k]);
        if (c < 0 && nr++ < AUDIT_ITEMS) json_array_append_new(rem, json_string(old[i]));
        if (c > 0 && na++ < AUDIT_ITEMS) json_array_append_new(add, json_string(nw[k]));
        if (c <= 0) i++;
        if (c >= 0) k++;
    }
    if (nw) free_items(nw, m);
    return json_pack("{s:s,s:o,s:I,s:o,s:I}", "list", name, "added", add, "added_count",
                     (json_int_t)na, "removed", rem, "removed_count", (json_int_t)nr);
}

/* Applies op to list `name` (locally or through Redis) and answers. `items` for "put",
 * `item` for "add"/"rem". A "put" of the items the list has, or an "add" of an item it
 * has, changes nothing: 200 with the list and its version as they are, no audit entry. */
static void list_change(vg_api_t *a, vg_req_t *q, vg_resp_t *r, const char *name, const char *op,
                        char **items, size_t n) {
    pthread_mutex_lock(&a->mu);
    int i = find_list(a, name);
    int exists = i >= 0 && !a->lists[i].deleted;
    int64_t cur = i >= 0 ? a->lists[i].version : 0, expect;
    if (vg_http_if_match(q, r, cur, exists, &expect) != 0) {
        pthread_mutex_unlock(&a->mu);
        return;
    }
    int is_del = strcmp(op, "del") == 0, is_rem = strcmp(op, "rem") == 0;
    if ((is_del || is_rem) && !exists) {
        pthread_mutex_unlock(&a->mu);
        vg_resp_error(r, 404, "not_found", "no list %s", name);
        return;
    }
    if (is_rem && !bsearch(&items[0], a->lists[i].items, a->lists[i].n, sizeof(char *), cmpstr)) {
        pthread_mutex_unlock(&a->mu);
        vg_resp_error(r, 404, "not_found", "list %s has no item %s", name, items[0]);
        return;
    }
    int rc = 0, unchanged = 0, created = !exists && !is_del;
    int64_t nv = cur + 1;
    /* a whole list's items before the change, for the audit entry (list_diff) */
    size_t nold = 0;
    char **old = NULL;
    if (!is_rem && strcmp(op, "add") != 0)
        old = exists ? copy_items(a->lists[i].items, a->lists[i].n, &nold) : calloc(1, sizeof(char *));
    if (a->redis) {
        pthread_mutex_unlock(&a->mu);
        /* whether this change made the list is Redis's to say (another instance may have
         * made or deleted it since this copy was updated) */
        rc = vg_redis_list_op(a->redis, name, expect, op, items, n, &nv, &unchanged, &created);
        if (rc == VG_EMISMATCH) {
            vg_resp_error(r, 412, "precondition_failed", "the shared version is %lld: reload and "
                                                         "retry", (long long)nv);
            goto out;
        }
        if (rc) {   /* 503 when not made, 504 when unknown, 500 naming a bad key */
            vg_redis_answer(a->redis, r, rc, "list");
            goto out;
        }
        pthread_mutex_lock(&a->mu);
    } else if (exists && (strcmp(op, "add") == 0 || strcmp(op, "put") == 0) &&
               same_items(&a->lists[i], op, items, n)) {
        unchanged = 1;   /* nothing to change: the version stays, no audit entry */
    } else {
        /* the new contents from the local copy */
        size_t m = 0;
        const vg_list_t *x = i >= 0 ? &a->lists[i] : NULL;
        size_t base = exists ? x->n : 0;
        char **nw = calloc(base + n + 1, sizeof(*nw));
        if (!nw) rc = VG_ENOMEM;
        else {
            if (strcmp(op, "put") == 0) {
                for (size_t k = 0; k < n; k++) nw[m++] = items[k];
            } else if (!is_del) {
                for (size_t k = 0; k < base; k++)
                    if (!is_rem || strcmp(x->items[k], items[0]) != 0) nw[m++] = x->items[k];
                if (!is_rem) nw[m++] = items[0];
            }
            rc = apply_list_locked(a, name, nv, nw, m, is_del);
            free(nw);
        }
    }
    if (rc) {
        pthread_mutex_unlock(&a->mu);
        vg_resp_error(r, 500, "internal", "cannot change the list: %s", vg_strerror(rc));
        goto out;
    }
    i = find_list(a, name);
    json_t *out;
    if (a->redis && strcmp(op, "put") == 0 && !unchanged) {
        /* with Redis the version is Redis's answer, and the list this write made is its
         * items: the copy may hold another instance's newer write already (it answered
         * 201 with that one's items and version, and audited that version) */
        vg_list_t mine = {(char *)name, nv, NULL, 0, 0};
        mine.items = copy_items(items, n, &mine.n);
        out = list_json(&mine);
        if (mine.items) free_items(mine.items, mine.n);
    } else {
        out = i >= 0 ? list_json(&a->lists[i]) : json_object();
        if (i >= 0 && !a->redis) nv = a->lists[i].version;
    }
    if (is_del) json_object_set_new(out, "deleted", json_true());
    pthread_mutex_unlock(&a->mu);
    json_object_set_new(out, "warnings", list_warnings(a, name, is_del, is_rem));
    snprintf(r->etag, sizeof(r->etag), "\"%lld\"", (long long)nv);
    if (unchanged) {
        vg_resp_json(r, 200, out);
        goto out;
    }
    char action[32];
    snprintf(action, sizeof(action), "lists.%s", op);
    char target[VG_LISTS_NAME_MAX + 1 + VG_LISTS_ITEM_MAX + 1];   /* a name and an item, whole */
    /* the list and the item in fields of their own too: a name and an item may hold "/",
     * so "a/b/c" was list a/b's item c or list a's item b/c */
    json_t *more;
    if (strcmp(op, "add") == 0 || is_rem) {
        snprintf(target, sizeof(target), "%s/%s", name, items[0]);
        more = json_pack("{s:s,s:s}", "list", name, "item", items[0]);
    } else {
        snprintf(target, sizeof(target), "%s", name);
        more = old ? list_diff(name, old, nold, is_del ? NULL : items, is_del ? 0 : n)
                   : json_pack("{s:s}", "list", name);
    }
    vg_api_audit_more(a, q, action, target, cur, nv, more);
    vg_resp_json(r, created && !is_del ? 201 : 200, out);
out:
    if (old) free_items(old, nold);
}

void vg_h_list(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    const char *name = q->seg[0];
    if (!valid_list_name(name, r)) return;
    if (strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0) {
        pthread_mutex_lock(&a->mu);
        int i = find_list(a, name);
        if (i < 0 || a->lists[i].deleted) {
            pthread_mutex_unlock(&a->mu);
            vg_resp_error(r, 404, "not_found", "no list %s", name);
            return;
        }
        json_t *j = list_json(&a->lists[i]);
        snprintf(r->etag, sizeof(r->etag), "\"%lld\"", (long long)a->lists[i].version);
        pthread_mutex_unlock(&a->mu);
        vg_resp_json(r, 200, j);
        return;
    }
    if (strcmp(q->method, "DELETE") == 0) {
        list_change(a, q, r, name, "del", NULL, 0);
        return;
    }
    json_error_t je;
    /* \u0000 read (and refused below with a message of ours, not jansson's) */
    json_t *b = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!b) {
        vg_resp_error(r, 400, "invalid_json", "body: %s (line %d, column %d)", je.text, je.line,
                      je.column);
        return;
    }
    if (!json_is_array(b)) {
        json_decref(b);
        vg_resp_error(r, 400, "bad_type", "the body must be a JSON array of strings");
        return;
    }
    size_t n = json_array_size(b);
    char **items = calloc(n + 1, sizeof(*items));
    for (size_t k = 0; items && k < n; k++) {
        json_t *v = json_array_get(b, k);
        /* the wrong JSON type is bad_type; a string of a bad length bad_value, as for an
         * event's id (it was bad_type too) */
        if (!json_is_string(v)) {
            free(items);
            json_decref(b);
            vg_resp_error(r, 400, "bad_type", "item %zu must be a string of 1..1024 bytes", k);
            return;
        }
        char why[160];
        if (vg_lists_check_item(json_string_value(v), json_string_length(v), why, sizeof why)) {
            free(items);
            json_decref(b);
            vg_resp_error(r, 400, "bad_value", "item %zu %s", k, why);
            return;
        }
        items[k] = (char *)json_string_value(v);
    }
    if (items) list_change(a, q, r, name, "put", items, n);
    else vg_resp_error(r, 500, "internal", "out of memory");
    free(items);
    json_decref(b);
}

void vg_h_list_item(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    const char *name = q->seg[0];
    char *item = (char *)q->seg[1];
    if (!valid_list_name(name, r)) return;
    char why[160];   /* as an item in a body: bad_value (was bad_request) */
    if (vg_lists_check_item(item, strlen(item), why, sizeof why)) {
        vg_resp_error(r, 400, "bad_value", "the list item %s", why);
        return;
    }
    list_change(a, q, r, name, strcmp(q->method, "PUT") == 0 ? "add" : "rem", &item, 1);
}

/* ---- labels ---------------------------------------------------------------------- */

/* A label is {"id","account","fraud"} and nothing else: an unknown member (a typo such
 * as "frau") is 400 bad_request naming it (it was ignored). The wrong JSON type is
 * bad_type; an id or account empty, over 128 bytes or with U+0000 is bad_value, as an
 * event's (empty or too long was bad_type). */
static int check_label(json_t *l, size_t idx, vg_resp_t *r) {
    const char *f[2] = {"id", "account"};
    if (!json_is_object(l)) {
        vg_resp_error(r, 400, "bad_type", "label %zu must be an object", idx);
        return -1;
    }
    static const char *const known[] = {"id", "account", "fraud", NULL};
    char what[40];
    snprintf(what, sizeof what, "label %zu: ", idx);
    if (vg_resp_unknown_members(r, l, known, what, "a label has id, account and fraud") != 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(l, f[k]);
        if (!v) {
            vg_resp_error(r, 400, "missing_field", "label %zu: field '%s' is missing", idx, f[k]);
            return -1;
        }
        if (!json_is_string(v)) {
            vg_resp_error(r, 400, "bad_type", "label %zu: field '%s' must be a string of 1..128 "
                                              "bytes", idx, f[k]);
            return -1;
        }
        if (json_string_length(v) == 0) {
            vg_resp_error(r, 400, "bad_value", "label %zu: field '%s' is empty", idx, f[k]);
            return -1;
        }
        if (json_string_length(v) > 128) {
            vg_resp_error(r, 400, "bad_value", "label %zu: field '%s' is %zu bytes, limit 128",
                          idx, f[k], json_string_length(v));
            return -1;
        }
        if (memchr(json_string_value(v), 0, json_string_length(v))) {
            vg_resp_error(r, 400, "bad_value", "label %zu: field '%s' may not contain U+0000",
                          idx, f[k]);
            return -1;
        }
    }
    json_t *fr = json_object_get(l, "fraud");
    if (!fr) {
        vg_resp_error(r, 400, "missing_field", "label %zu: field 'fraud' is missing", idx);
        return -1;
    }
    if (!json_is_boolean(fr)) {
        vg_resp_error(r, 400, "bad_type", "label %zu: field 'fraud' must be true or false", idx);
        return -1;
    }
    return 0;
}

#define AUDIT_ACCOUNTS 20   /* accounts a labels.post audit entry names */

/* The audit entry of stored labels (they change later decisions: fraud_count, ...):
 * labels.post, its target the account when they are all of one account, else "N
 * accounts"; `labels` and `fraud` count them, `accounts` names up to AUDIT_ACCOUNTS
 * distinct accounts in the order given (`accounts_more` true when there were more). */
static void audit_labels(vg_api_t *a, vg_req_t *q, json_t *b) {
    json_t *accts = json_array(), *seen = json_object();
    size_t i, nfraud = 0, ndist = 0;
    json_t *l;
    json_array_foreach(b, i, l) {
        const char *acct = json_string_value(json_object_get(l, "account"));
        if (json_is_true(json_object_get(l, "fraud"))) nfraud++;
        if (!acct || json_object_get(seen, acct)) continue;
        json_object_set_new(seen, acct, json_true());
        if (ndist++ < AUDIT_ACCOUNTS) json_array_append_new(accts, json_string(acct));
    }
    char target[64];
    snprintf(target, sizeof(target), "%zu accounts", ndist);
    const char *t = ndist == 1 ? json_string_value(json_array_get(accts, 0)) : target;
    json_t *more = json_pack("{s:I,s:I,s:O,s:b}", "labels", (json_int_t)json_array_size(b),
                             "fraud", (json_int_t)nfraud, "accounts", accts, "accounts_more",
                             ndist > AUDIT_ACCOUNTS);
    vg_api_audit_more(a, q, "labels.post", t ? t : "", 0, 0, more);
    json_decref(accts);
    json_decref(seen);
}

void vg_h_labels(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    json_error_t je;
    /* \u0000 read (and refused by check_label with a message of ours) */
    json_t *b = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!b) {
        vg_resp_error(r, 400, "invalid_json", "body: %s (line %d, column %d)", je.text, je.line,
                      je.column);
        return;
    }
    if (json_is_object(b)) {
        json_t *arr = json_array();
        json_array_append(arr, b);
        json_decref(b);
        b = arr;
    }
    if (!json_is_array(b) || json_array_size(b) == 0) {
        json_decref(b);
        vg_resp_error(r, 400, "bad_type", "the body must be a label object or a non-empty array");
        return;
    }
    size_t i;
    json_t *l;
    json_array_foreach(b, i, l) {
        if (check_label(l, i, r) != 0) {
            json_decref(b);
            return;
        }
    }
    char at[40];
    vg_iso_time(vg_now_ms(), at);
    size_t n = json_array_size(b);
    vg_ctl_op_t *ops = calloc(n, sizeof(*ops));
    char **keys = calloc(n, sizeof(*keys)), **vals = calloc(n, sizeof(*vals));
    char *matched = calloc(n, 1);
    int rc = ops && keys && vals && matched ? 0 : VG_ENOMEM;
    /* applied on the shard that owns each account first (later events see it), which
     * says whether it matched an event the service decided (docs/api.md, Labels); with
     * Kafka, where the partitions hold the accounts, that is not known here */
    char err[256] = "";
    int erc = 0;
    size_t nmatched = 0;
    json_array_foreach(b, i, l) {
        if (rc || erc) break;
        const char *id = json_string_value(json_object_get(l, "id"));
        const char *acct = json_string_value(json_object_get(l, "account"));
        vg_label_t lb = {id, strlen(id), acct, strlen(acct),
                         json_is_true(json_object_get(l, "fraud")), INT64_MIN};
        int m = 0;
        erc = vg_engine_label(a->eng, &lb, &m, err, sizeof(err));
        matched[i] = (char)m;
        nmatched += m != 0;
    }
    json_array_foreach(b, i, l) {
        if (rc || erc) break;
        const char *id = json_string_value(json_object_get(l, "id"));
        const char *acct = json_string_value(json_object_get(l, "account"));
        json_t *rec = json_pack("{s:s,s:s,s:O,s:s,s:s}", "id", id, "account", acct, "fraud",
                                json_object_get(l, "fraud"), "at", at, "by", q->who);
        /* the account view shows whether it matched (a typo of an id matches nothing);
         * the record produced to the labels topic has no such member */
        if (!a->kafka) json_object_set_new(rec, "matched", json_boolean(matched[i]));
        vals[i] = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        size_t al = strlen(acct), il = strlen(id);
        keys[i] = malloc(2 + al + 1 + il);
        if (!keys[i] || !vals[i]) {
            rc = VG_ENOMEM;
            break;
        }
        memcpy(keys[i], "B/", 2);
        memcpy(keys[i] + 2, acct, al);
        keys[i][2 + al] = 0;
        memcpy(keys[i] + 3 + al, id, il);
        ops[i] = (vg_ctl_op_t){keys[i], 3 + al + il, vals[i], strlen(vals[i])};
    }
    if (!rc && !erc) rc = vg_ctl_write(a->ctl, ops, (int)n);
    const int stored = !rc && !erc;
    if (!rc && !erc) audit_labels(a, q, b);
    if (!rc && !erc && !a->kafka) {
        atomic_fetch_add(&a->labels_matched, nmatched);
        atomic_fetch_add(&a->labels_unmatched, n - nmatched);
    }
    /* stored, then with Kafka applied in the partition that holds it, when this
     * instance owns it */
    json_int_t elsewhere = 0, busy = 0, applied = -1;
    /* with a labels topic, every label goes through it to the instance that owns its
     * partition (this one or another), which applies it with its offset checkpointed */
    const int topic = a->kafka && vg_kafka_topic_labels(a->kafka);
    vg_label_t *lbs = topic ? calloc(n, sizeof(*lbs)) : NULL;
    if (topic && !lbs) rc = VG_ENOMEM;
    json_array_foreach(b, i, l) {
        if (rc || erc) break;
        const char *id = json_string_value(json_object_get(l, "id"));
        const char *acct = json_string_value(json_object_get(l, "account"));
        vg_label_t lb = {id, strlen(id), acct, strlen(acct),
                         json_is_true(json_object_get(l, "fraud")), INT64_MIN};
        if (lbs) lbs[i] = lb;
        if (erc || !a->kafka || topic) continue;
        if (busy) {   /* one partition did not take its label in time: the answer is 503
                       * anyway, so the others do not wait too (the wait stays 10 s) */
            busy++;
            continue;
        }
        int32_t part = -1;
        int krc = vg_kafka_label(a->kafka, &lb, VG_KVIEW_WAIT_MS, &part);
        if (krc == VG_ENOTFOUND && part >= 0) elsewhere++;
        else if (krc == VG_ELIMIT || krc == VG_EIO) busy++;
        else if (krc && krc != VG_ENOTFOUND) {
            erc = krc;
            snprintf(err, sizeof(err), "partition %d: %s", (int)part, vg_strerror(krc));
        }
    }
    char kerr[512] = "";
    int krc = 0;
    if (topic && !rc && !erc) {
        int ap = 0, away = 0;
        krc = vg_kafka_post_labels(a->kafka, lbs, (const char *const *)vals, (int)n,
                                   VG_KVIEW_WAIT_MS, &ap, &away, kerr, sizeof(kerr));
        applied = ap;
        elsewhere = away;
    }
    free(lbs);
    for (size_t k = 0; keys && vals && k < n; k++) {
        free(keys[k]);
        free(vals[k]);
    }
    free(keys);
    free(vals);
    free(ops);
    free(matched);
    json_decref(b);
    if (rc) vg_resp_error(r, 500, "internal", "cannot store the labels");
    else if (erc) vg_resp_error(r, 500, "internal", "labels %s: %s",
                                stored ? "stored but not applied" : "not applied nor stored", err);
    else if (krc) {
        r->retry_after = 1;
        vg_resp_error(r, 503, "unavailable", "the %zu labels were stored here but not every "
                      "one reached the labels topic (%s); post them again", n, kerr);
    } else if (busy) {
        r->retry_after = 1;
        vg_resp_error(r, 503, "unavailable", "%lld of the %zu labels were stored but not "
                      "applied: their partitions are busy or stopping; post them again",
                      (long long)busy, n);
    } else {
        json_t *out = json_pack("{s:I}", "accepted", (json_int_t)n);
        /* without Kafka: how many matched an event the service decided (the others,
         * a mistyped id or an account never seen, change nothing: docs/rules.md) */
        if (!a->kafka) {
            json_object_set_new(out, "matched", json_integer((json_int_t)nmatched));
            json_object_set_new(out, "unmatched", json_integer((json_int_t)(n - nmatched)));
        }
        /* with Kafka: labels of accounts whose partitions another instance owns are stored
         * here but apply there only when posted there (409 not_owner of the account
         * routes names the owner) */
        if (a->kafka) json_object_set_new(out, "not_owner", json_integer(elsewhere));
        /* through the labels topic: how many of them this instance's partitions applied
         * before the answer (the rest when their owner reads them) */
        if (applied >= 0) json_object_set_new(out, "applied", json_integer(applied));
        vg_resp_json(r, 200, out);
    }
}

/* Labels again at start: a label is applied to the engine's state at once but reaches
 * the state store only with the shard's next checkpoint, while its record in the control
 * store is written before the answer. After a kill -9 between the two the state had lost
 * it for good (fraud_count 0, the label still listed and audited). The stored labels
 * that the state may lack are applied again here: applying one the state already has
 * changes nothing (vg_pipeline_label: the same status is left as it is; an unknown event
 * or account is only counted unmatched). Each costs about an account's load from the
 * store, so they are bounded: those posted since the previous start (G/labels/restored:
 * every label stored before it was applied again then and checkpointed; 10 minutes
 * before it, for a clock set back), and within the longest label window of the rules in
 * force (at least the dedupe horizon, for rules that read no label) plus the lateness.
 * The records are all read (the control store has no index by time); one outside the
 * bound is not applied. Without Kafka only: with Kafka the partitions hold the accounts
 * and labels go through the labels topic, whose offsets are checkpointed with the
 * partitions' state. */
#define RELABEL_CLOCK_MS (10 * 60 * 1000LL)

typedef struct relabel {
    vg_api_t *a;
    char since[40];         /* RFC 3339, as "at" is stored: labels posted before it stay */
    uint64_t stored, applied, matched, failed;
    char err[256];
} relabel_t;

static int relabel_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    relabel_t *rl = ctx;
    rl->stored++;
    /* the key is "B/" + account + NUL + id */
    const char *acct = k + 2, *nul = kl > 2 ? memchr(acct, 0, kl - 2) : NULL;
    if (!nul || nul == acct || (size_t)(nul + 1 - k) >= kl) return 0;
    json_t *j = json_loadb(v, vl, JSON_ALLOW_NUL, NULL);
    const char *at = json_string_value(json_object_get(j, "at"));
    json_t *fraud = json_object_get(j, "fraud");
    /* the same fixed form (vg_iso_time): the strings compare as the times */
    if (at && json_is_boolean(fraud) && strcmp(at, rl->since) >= 0) {
        vg_label_t lb = {nul + 1, kl - (size_t)(nul + 1 - k), acct, (size_t)(nul - acct),
                         json_is_true(fraud), INT64_MIN};
        int m = 0;
        char err[256];
        if (vg_engine_label(rl->a->eng, &lb, &m, err, sizeof(err)) != 0) {
            if (!rl->failed++) snprintf(rl->err, sizeof(rl->err), "%s", err);
        } else {
            rl->applied++;
            rl->matched += m != 0;
        }
    }
    json_decref(j);
    return 0;
}

void vg_api_labels_restore(vg_api_t *a) {
    if (!a || !a->eng || a->cfg->kafka) return;
    int64_t t0 = vg_now_ms();
    pthread_mutex_lock(&a->mu);
    int64_t lw = a->active ? vg_prog_max_label_window(a->active) : 0;
    pthread_mutex_unlock(&a->mu);
    if (lw < a->cfg->dedupe_horizon_ms) lw = a->cfg->dedupe_horizon_ms;
    int64_t since = t0 - lw - a->cfg->lateness_ms;
    vg_buf_t b;
    vg_buf_init(&b);
    if (vg_ctl_get(a->ctl, "G/labels/restored", 17, &b) == 0 && b.len > 0 && b.len < 24) {
        char num[24];
        memcpy(num, b.p, b.len);
        num[b.len] = 0;
        long long prev = strtoll(num, NULL, 10);
        if (prev - RELABEL_CLOCK_MS > since) since = prev - RELABEL_CLOCK_MS;
    }
    vg_buf_deinit(&b);
    relabel_t rl = {.a = a};
    vg_iso_time(since, rl.since);
    if (vg_ctl_scan(a->ctl, "B/", 2, NULL, 0, relabel_cb, &rl) != 0) {
        fprintf(stderr, "vigil serve: labels: cannot read the stored labels to apply them "
                        "again; those posted just before the last stop may be missing from "
                        "the state (post them again)\n");
        return;
    }
    char err[512] = "";
    /* written at once, so that the next start need not apply them again */
    int crc = rl.applied ? vg_engine_checkpoint(a->eng, 1, err, sizeof(err)) : 0;
    if (rl.applied || rl.failed)
        fprintf(stderr, "vigil serve: labels: %llu posted since %s (of %llu stored) applied "
                        "again to the state, %llu of them matching an event (one the state "
                        "had already is unchanged); %lld ms\n",
                (unsigned long long)rl.applied, rl.since, (unsigned long long)rl.stored,
                (unsigned long long)rl.matched, (long long)(vg_now_ms() - t0));
    if (rl.failed)
        fprintf(stderr, "vigil serve: labels: %llu could not be applied again (post them "
                        "again): %s\n", (unsigned long long)rl.failed, rl.err);
    if (crc) {
        fprintf(stderr, "vigil serve: labels: writing the state after applying them again: %s "
                        "(the next start applies them again)\n", err);
        return;
    }
    if (rl.failed) return;
    char num[24];
    int nl = snprintf(num, sizeof num, "%lld", (long long)t0);
    if (vg_ctl_put(a->ctl, "G/labels/restored", 17, num, (size_t)nl) != 0)
        fprintf(stderr, "vigil serve: labels: cannot record the start in the control store "
                        "(the next start applies these labels again)\n");
}

/* ---- accounts -------------------------------------------------------------------- */

typedef struct collect {
    json_t *arr;
    int limit;
    vg_ctl_t *ctl;      /* delete mode when set */
    int deleted;        /* records deleted (delete mode) */
} collect_t;

static int collect_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    collect_t *c = ctx;
    if (c->ctl) {
        vg_ctl_del(c->ctl, k, kl);
        c->deleted++;
        return 0;
    }
    json_t *j = json_loadb(v, vl, JSON_ALLOW_NUL, NULL);
    if (j) json_array_append_new(c->arr, j);
    return (int)json_array_size(c->arr) >= c->limit;
}

static size_t acct_prefix(char c, const char *acct, unsigned char *out) {
    size_t al = strlen(acct);
    out[0] = (unsigned char)c;
    out[1] = '/';
    memcpy(out + 2, acct, al);
    out[2 + al] = 0;
    return 3 + al;
}

typedef struct alert_del {
    vg_ctl_t *ctl;
    const char *acct;
    vg_ctl_span_t span;   /* the alerts deleted (for the answer and the purge) */
} alert_del_t;

static int alert_del_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    alert_del_t *d = ctx;
    json_t *j = json_loadb(v, vl, JSON_ALLOW_NUL, NULL);
    const char *ac = j ? json_string_value(json_object_get(j, "account")) : NULL;
    if (ac && strcmp(ac, d->acct) == 0 && kl == 10) {   /* with its alert index entry */
        vg_ctl_alert_del(d->ctl, (const unsigned char *)k, ac, strlen(ac));
        vg_ctl_span_add(&d->span, k, kl);
    }
    json_decref(j);
    return 0;
}

/* With Kafka, an account operation goes to the partition that holds the account first
 * (409 not_owner when another instance owns it; asked by http.c account_kafka_start,
 * the answer in q->kp); the HTTP engine's copy and the control store's records are
 * handled as without Kafka after it. 0 to go on; -1 when the answer was given. */
static int kafka_op(vg_api_t *a, vg_req_t *q, vg_resp_t *r, const char *acct, size_t al) {
    if (!a->kafka) return 0;
    int rc = q->kp ? q->kp->rc : VG_EIO;
    int32_t part = q->kp ? q->kp->part : -1;
    if (rc == 0 || (rc == VG_ENOTFOUND && part < 0)) return 0;   /* < 0: not routed */
    if (rc == VG_ENOTFOUND) vg_api_not_owner(a, r, acct, al, part);
    else if (rc == VG_ELIMIT || rc == VG_EIO) {
        r->retry_after = 1;
        vg_resp_error(r, 503, "unavailable", "the Kafka partition of the account is busy or "
                      "stopping (%s)", vg_strerror(rc));
    } else {
        vg_resp_error(r, 500, "internal", "in the account's Kafka partition: %s", vg_strerror(rc));
    }
    return -1;
}

/* Whether this instance recorded decisions of the account (its HTTP scores). */
static int decisions_known(vg_api_t *a, const char *acct, size_t al) {
    (void)al;
    unsigned char pre[2 + VG_EVENT_MAX_ID + 1];
    collect_t c = {json_array(), 1, NULL, 0};
    size_t pl = acct_prefix('D', acct, pre);
    vg_ctl_scan(a->ctl, pre, pl, NULL, 0, collect_cb, &c);
    int known = json_array_size(c.arr) > 0;
    json_decref(c.arr);
    return known;
}

/* Whether GET /v1/accounts/{account} would find the account here (without Kafka): a
 * state on its shard, or a decision this instance answered. 1, 0, or a VG_E* code. */
static int account_known(vg_api_t *a, const char *acct, size_t al) {
    vg_buf_t b;
    vg_buf_init(&b);
    int rc = vg_engine_account_view(a->eng, acct, al, 0, &b);
    vg_buf_deinit(&b);
    if (rc == 0) return 1;
    if (rc != VG_ENOTFOUND) return rc;
    return decisions_known(a, acct, al);
}

/* The baseline of an account whose anomaly models have learned no event yet (just
 * reset, or every event kept out of its baseline): what vg_anomaly_describe says of a
 * new state, in the shape of a learned one. NULL on out of memory. */
static json_t *empty_baseline(void) {
    json_t *kv = json_object(), *hours = json_array();
    for (int f = 0; f < VG_ANOMALY_CAT__COUNT; f++)
        json_object_set_new(kv, vg_anomaly_signal_name(VG_ANOMALY_MERCHANT + f), json_integer(0));
    for (int h = 0; h < 24; h++) json_array_append_new(hours, json_integer(0));
    return json_pack("{s:i,s:n,s:n,s:o,s:o,s:i,s:i}", "events", 0, "since", "last",
                     "known_values", kv, "hours_utc", hours, "burst_1h", 0, "p_compromised", 0);
}

/* POST /v1/accounts/{account}/reset-baseline: the account's next events are scored
 * as a new account's (its anomaly baseline is forgotten); audited. An account GET does
 * not know answers 404 as GET does (it answered 200 "baseline_reset":true). */
void vg_h_account_reset(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    const char *acct = q->seg[0];
    size_t al = strlen(acct);
    if (al == 0 || al > VG_EVENT_MAX_ID) {
        vg_resp_error(r, 400, "bad_value", "an account is 1..128 bytes (this one is %zu)", al);
        return;
    }
    char err[256];
    if (kafka_op(a, q, r, acct, al) != 0) return;
    /* with Kafka, the partition said whether it holds the account (and reset it) */
    if (!a->kafka || !(q->kp && q->kp->rc == 0 && q->kp->found)) {
        int known = a->kafka ? decisions_known(a, acct, al) : account_known(a, acct, al);
        if (known < 0) {
            vg_resp_error(r, 500, "internal", "reading the account's state: %s",
                          vg_strerror(known));
            return;
        }
        if (!known) {
            vg_resp_error(r, 404, "not_found", "no scored events for account %s", acct);
            return;
        }
    }
    if (vg_engine_reset_baseline(a->eng, acct, al, err, sizeof(err)) != 0) {
        vg_resp_error(r, 500, "internal", "%s", err);
        return;
    }
    vg_api_audit(a, q, "accounts.reset_baseline", acct, 0, 0);
    vg_resp_json(r, 200, json_pack("{s:s,s:b}", "account", acct, "baseline_reset", 1));
}

#define RECENT_MAX VG_RECENT_MAX

typedef struct dsort {
    json_t *d;
    const char *ts;
    size_t i;
} dsort_t;

static int dsort_cmp(const void *x, const void *y) {
    const dsort_t *a = x, *b = y;
    int c = strcmp(b->ts, a->ts);   /* canonical RFC 3339 times sort as text */
    return c ? c : (a->i > b->i) - (a->i < b->i);
}

/* Sorts decisions by their event time, newest first (ties keep their order). */
static void sort_newest_first(json_t *arr) {
    size_t n = json_array_size(arr);
    if (n < 2) return;
    dsort_t *v = malloc(n * sizeof *v);
    if (!v) return;   /* left in arrival order */
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(arr, i);
        const char *ts = json_string_value(json_object_get(d, "ts"));
        v[i] = (dsort_t){json_incref(d), ts ? ts : "", i};
    }
    qsort(v, n, sizeof *v, dsort_cmp);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, v[i].d);
    free(v);
}

void vg_h_account(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    const char *acct = q->seg[0];
    size_t al = strlen(acct);
    if (al == 0 || al > VG_EVENT_MAX_ID) {
        vg_resp_error(r, 400, "bad_value", "an account is 1..128 bytes (this one is %zu)", al);
        return;
    }
    unsigned char pre[2 + VG_EVENT_MAX_ID + 1];
    if (strcmp(q->method, "DELETE") == 0) {
        char err[512] = "";
        if (kafka_op(a, q, r, acct, al) != 0) return;
        /* whether anything of the account was held (the answer's "erased"): its state
         * (with Kafka, the partition said), its decisions, labels or alerts here. Every
         * step runs anyway: a retried erasure finds nothing and says so, with 200 */
        int held = 0;
        if (a->kafka) held = q->kp && q->kp->rc == 0 && q->kp->found;
        else {
            vg_buf_t vb;
            vg_buf_init(&vb);
            held = vg_engine_account_view(a->eng, acct, al, 0, &vb) == 0;
            vg_buf_deinit(&vb);
        }
        int rc = vg_engine_forget(a->eng, acct, al, err, sizeof(err));
        collect_t c = {NULL, 0, a->ctl, 0};
        size_t pl = acct_prefix('D', acct, pre);
        if (!rc) rc = vg_ctl_scan(a->ctl, pre, pl, NULL, 0, collect_cb, &c);
        pl = acct_prefix('B', acct, pre);
        if (!rc) rc = vg_ctl_scan(a->ctl, pre, pl, NULL, 0, collect_cb, &c);
        alert_del_t d = {a->ctl, acct, {{0}, {0}, 0, 0}};
        vg_ctl_span_init(&d.span);
        /* with Kafka this instance's alert feed may have applied the erasure the
         * partition published before this scan: the alerts it took out count too */
        int fed = 0, feed = a->kafka && a->feed;
        if (feed) pthread_mutex_lock(&a->feed_mu);
        if (!rc) rc = vg_ctl_scan(a->ctl, "N/", 2, NULL, 0, alert_del_cb, &d);
        /* and the index entries of its alerts the retention took (purged below too) */
        if (!rc) {
            int64_t nd = vg_ctl_alert_index_drop_gone(a->ctl, acct, al);
            if (nd < 0) rc = (int)nd;
        }
        if (feed && q->kp) fed = vg_api_feed_erased(a, acct, q->kp->erased_at_ms);
        if (feed) pthread_mutex_unlock(&a->feed_mu);
        if (rc && !err[0]) snprintf(err, sizeof(err), "reading the control store: %s",
                                    vg_strerror(rc));
        /* the deleted decisions, labels and alerts leave the control store's files too
         * (WAL, SST, MANIFEST); this request's audit entry, written below, stays */
        if (!rc) rc = vg_ctl_purge_account(a->ctl, acct, al, &d.span, err, sizeof(err));
        int nalerts = d.span.n + fed;
        vg_ctl_span_deinit(&d.span);
        if (rc) {
            vg_resp_error(r, 500, "internal", "erasing the account failed: %s", err);
            return;
        }
        /* with Kafka, every instance's alert list drops the account's alerts too: the
         * partition's thread published the erasure (acknowledged with its checkpoint);
         * an account routed to no partition (the input's partitions unknown) from here */
        if (a->kafka && !(q->kp && q->kp->rc == 0) &&
            vg_api_publish_erasure(a, acct, err, sizeof(err)) != 0) {
            r->retry_after = 1;
            vg_resp_error(r, 503, "unavailable", "the account was erased here, but the erasure "
                          "could not be published for the other instances' alert lists (%s): "
                          "retry the DELETE", err);
            return;
        }
        held = held || c.deleted > 0 || nalerts > 0;
        /* audited either way (the request is part of the privacy trail) */
        vg_api_audit_more(a, q, "accounts.delete", acct, 0, 0,
                          json_pack("{s:b}", "erased", held));
        vg_resp_json(r, 200, json_pack("{s:s,s:b,s:i}", "account", acct, "erased", held,
                                       "alerts_erased", nalerts));
        return;
    }
    /* the account's state where it lives: the engine's shard, or with Kafka the
     * partition that holds it (409 not_owner when another instance owns it) */
    vg_buf_t own;
    vg_buf_init(&own);
    vg_buf_t *vb = &own;   /* "{" and the view's members */
    int32_t part = -1;
    int vrc;
    if (a->kafka) {   /* asked already, without blocking (http.c account_kafka_start) */
        vrc = q->kp ? q->kp->rc : VG_EIO;
        part = q->kp ? q->kp->part : -1;
        if (q->kp) vb = q->kp->view;
    } else {
        vrc = vg_buf_putc(vb, '{');
        if (!vrc) vrc = vg_engine_account_view(a->eng, acct, al, RECENT_MAX, vb);
    }
    if (vrc == VG_ENOTFOUND && a->kafka && part >= 0) {
        vg_buf_deinit(&own);
        vg_api_not_owner(a, r, acct, al, part);
        return;
    }
    if (vrc == VG_ELIMIT || (vrc == VG_EIO && a->kafka)) {
        vg_buf_deinit(&own);
        r->retry_after = 1;
        vg_resp_error(r, 503, "unavailable", "the state of the account is busy or stopping "
                      "(%s)", vg_strerror(vrc));
        return;
    }
    if (vrc && vrc != VG_ENOTFOUND) {
        vg_buf_deinit(&own);
        vg_resp_error(r, 500, "internal", "reading the account's state: %s", vg_strerror(vrc));
        return;
    }
    json_t *view = NULL;
    if (!vrc && vb->len > 1 && !vg_buf_putc(vb, '}'))
        view = json_loadb(vb->p, vb->len, JSON_ALLOW_NUL, NULL);
    vg_buf_deinit(&own);
    /* recent decisions: the state's (its events within the dedupe horizon) and those this
     * instance answered over HTTP (kept longer), by event time, newest first */
    json_t *rec = json_array();
    json_t *ids = json_object();
    json_t *vr = json_object_get(view, "recent_decisions");
    for (size_t i = 0; i < json_array_size(vr); i++) {
        json_t *d = json_array_get(vr, i);
        const char *id = json_string_value(json_object_get(d, "id"));
        if (id) json_object_set_new(ids, id, json_true());
        json_array_append(rec, d);
    }
    collect_t c = {json_array(), RECENT_MAX, NULL, 0};
    size_t pl = acct_prefix('D', acct, pre);
    vg_ctl_scan(a->ctl, pre, pl, NULL, 0, collect_cb, &c);
    for (size_t i = 0; i < json_array_size(c.arr); i++) {
        json_t *d = json_array_get(c.arr, i);
        const char *id = json_string_value(json_object_get(d, "id"));
        if (!id || !json_object_get(ids, id)) json_array_append(rec, d);
    }
    json_decref(c.arr);
    json_decref(ids);
    sort_newest_first(rec);
    while (json_array_size(rec) > RECENT_MAX) json_array_remove(rec, RECENT_MAX);
    if (json_array_size(rec) == 0 && !view) {
        json_decref(rec);
        vg_resp_error(r, 404, "not_found", "no scored events for account %s", acct);
        return;
    }
    json_t *last = json_array_get(rec, 0);   /* NULL: no decision within the horizon */
    collect_t lb = {json_array(), 100, NULL, 0};
    pl = acct_prefix('B', acct, pre);
    vg_ctl_scan(a->ctl, pre, pl, NULL, 0, collect_cb, &lb);
    json_t *lastev = last ? json_object_get(last, "ts") : json_object_get(view, "newest");
    json_t *out = json_pack("{s:s,s:O,s:O,s:O,s:O,s:o,s:o}", "account", acct,
                            "last_event", lastev ? lastev : json_null(),
                            "ruleset", last ? json_object_get(last, "ruleset") : json_null(),
                            "features", last ? json_object_get(last, "features") : json_null(),
                            "anomaly", last ? json_object_get(last, "anomaly") : json_null(),
                            "recent_decisions", rec, "labels", lb.arr);
    json_t *ss = json_object_get(view, "sessions");
    json_object_set(out, "session", json_array_size(ss) ? json_array_get(ss, 0) : json_null());
    json_object_set_new(out, "sessions", ss ? json_incref(ss) : json_array());
    json_t *bl = json_object_get(view, "baseline");
    if (view && (!bl || json_is_null(bl))) {
        /* an account whose models learned nothing yet (after a reset-baseline): null
         * said "the rules use no anomaly score" (docs/api.md) */
        pthread_mutex_lock(&a->mu);
        int uses = a->active && vg_prog_uses_anomaly(a->active);
        pthread_mutex_unlock(&a->mu);
        if (uses) json_object_set_new(out, "baseline", empty_baseline());
    }
    if (!json_object_get(out, "baseline")) json_object_set(out, "baseline", bl ? bl : json_null());
    if (a->kafka)
        json_object_set_new(out, "partition", part >= 0 ? json_integer(part) : json_null());
    else
        json_object_set_new(out, "shard", json_integer(vg_engine_shard_of(a->eng, acct, al)));
    json_decref(view);
    vg_resp_json(r, 200, out);
}

/* ---- alerts and audit: newest first, with a cursor ------------------------------- */

typedef struct page {
    json_t *arr;
    int limit;
    const char *account, *rule, *action, *target;
    int64_t since_ms;
    uint64_t last;       /* id of the last entry taken */
    int more;
    int audit;
    size_t bytes;        /* of the entries taken: a page stops at PAGE_MAX_BYTES */
} page_t;

/* A page of alerts ends at this many bytes even before `limit` (an alert carries its
 * decision, which can be large: 1,000 alerts of a 1.26 MB decision were one 1.2 GB
 * answer); next_cursor goes on from there. */
#define PAGE_MAX_BYTES (8u << 20)

static int rule_match(json_t *j, const char *rule) {
    const char *lists[2] = {"rules", "shadow"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(j, lists[l]), i, x) {
            const char *n = json_string_value(json_object_get(x, "rule"));
            if (n && strcmp(n, rule) == 0) return 1;
        }
    }
    return 0;
}

static int page_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    page_t *p = ctx;
    if (kl != 10) return 0;
    uint64_t id = ~vg_rd_be64((const unsigned char *)k + 2);
    if (!p->audit && p->since_ms > 0 && (int64_t)(id >> 16) < p->since_ms) return 1;
    if ((int)json_array_size(p->arr) >= p->limit ||
        (json_array_size(p->arr) > 0 && p->bytes + vl > PAGE_MAX_BYTES)) {
        p->more = 1;
        return 1;
    }
    json_t *j = json_loadb(v, vl, JSON_ALLOW_NUL, NULL);
    if (!j) return 0;
    int ok = 1;
    if (p->account && (!json_is_string(json_object_get(j, "account")) ||
                       strcmp(json_string_value(json_object_get(j, "account")), p->account) != 0))
        ok = 0;
    if (ok && p->rule && !rule_match(j, p->rule)) ok = 0;
    const char *act = json_string_value(json_object_get(j, "action"));
    const char *tg = json_string_value(json_object_get(j, "target"));
    if (ok && p->action && (!act || strcmp(act, p->action) != 0)) ok = 0;
    if (ok && p->target && (!tg || strcmp(tg, p->target) != 0)) ok = 0;
    if (ok) {
        if (p->audit) json_object_del(j, "cursor");
        json_array_append_new(p->arr, j);
        p->last = id;
        p->bytes += vl;
    } else {
        json_decref(j);
    }
    return 0;
}

/* The first alert after a full page (the scan's page_cb would set `more` on it): 1 when
 * it is within `since`, else 2 (the scan stops there). */
static int more_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)v, (void)vl;
    page_t *p = ctx;
    if (kl != 10) return 0;
    uint64_t id = ~vg_rd_be64((const unsigned char *)k + 2);
    return p->since_ms > 0 && (int64_t)(id >> 16) < p->since_ms ? 2 : 1;
}

/* A query value of decimal digits only (no sign, no space: strtoull reads "-1" as
 * 2^64 - 1) that fits 64 bits, in *v; -1 otherwise. */
static int digits_u64(const char *s, uint64_t *v) {
    *v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (*v > (UINT64_MAX - d) / 10) return -1;
        *v = *v * 10 + d;
    }
    return 0;
}

/* A filter of the alert or audit list: NULL when not given or empty (SPEC section 6's
 * `?account=&rule=&since=&limit=&cursor=`). */
static const char *filter_arg(vg_req_t *q, const char *name) {
    const char *v = vg_req_arg(q, name);
    return v && *v ? v : NULL;
}

static int page_args(vg_req_t *q, vg_resp_t *r, page_t *p, unsigned char from[10], char pfx) {
    const char *lim = filter_arg(q, "limit"), *cur = filter_arg(q, "cursor");
    p->limit = 50;
    if (lim) {
        uint64_t v;
        if (digits_u64(lim, &v) != 0 || v < 1 || v > 1000) {
            vg_resp_error(r, 400, "bad_request", "limit must be 1..1000");
            return -1;
        }
        p->limit = (int)v;
    }
    from[0] = (unsigned char)pfx;
    from[1] = '/';
    vg_be64(from + 2, 0);
    if (cur) {
        uint64_t c;
        if (digits_u64(cur, &c) != 0 || c == 0) {
            vg_resp_error(r, 400, "bad_request", "bad cursor: the next_cursor of an earlier "
                          "page (a positive integer)");
            return -1;
        }
        vg_be64(from + 2, ~(uint64_t)c + 1);
    }
    return 0;
}

void vg_h_alerts(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    page_t p = {0};
    unsigned char from[10];
    if (page_args(q, r, &p, from, 'N') != 0) return;
    p.account = filter_arg(q, "account");
    p.rule = filter_arg(q, "rule");
    const char *since = filter_arg(q, "since");
    if (since) {
        char err[200];
        uint64_t ms;
        /* all digits: epoch milliseconds, which must fit (strtoll clamped
         * 99999999999999999999 to 2^63 - 1 and listed nothing) */
        if (digits_u64(since, &ms) == 0 && ms <= (uint64_t)INT64_MAX) p.since_ms = (int64_t)ms;
        else if (since[strspn(since, "0123456789")] == 0) {
            vg_resp_error(r, 400, "bad_timestamp", "since: %s is beyond the epoch milliseconds "
                          "a time can have (RFC 3339 or milliseconds since 1970 below 2^63)",
                          since);
            return;
        } else if (vg_time_parse(since, strlen(since), &p.since_ms, err, sizeof(err)) != 0) {
            vg_resp_error(r, 400, "bad_timestamp", "since: %s", err);
            return;
        }
    }
    p.arr = json_array();
    int rc;
    if (p.account) {
        /* the account's alerts from its index ("M/", api/ctl.h), at the cost of their
         * number: the same entries, order and pages as the scan of the list below */
        rc = vg_ctl_alerts_of(a->ctl, p.account, strlen(p.account), from, page_cb, &p);
        /* a full page: the scan would give a cursor when the list goes on after its last
         * alert (within `since`), of this account or not; the same here */
        if (rc >= 0 && !p.more && (int)json_array_size(p.arr) >= p.limit) {
            unsigned char after[10] = {'N', '/'};
            vg_be64(after + 2, ~p.last + 1);
            p.more = vg_ctl_scan(a->ctl, "N/", 2, after, sizeof(after), more_cb, &p) == 1;
        }
    } else {
        rc = vg_ctl_scan(a->ctl, "N/", 2, from, sizeof(from), page_cb, &p);
    }
    if (rc < 0) {
        json_decref(p.arr);
        vg_resp_error(r, 500, "internal", "reading the alert list: %s", vg_strerror(rc));
        return;
    }
    json_t *out = json_pack("{s:o}", "alerts", p.arr);
    if (p.more) {
        char c[32];
        snprintf(c, sizeof(c), "%llu", (unsigned long long)p.last);
        json_object_set_new(out, "next_cursor", json_string(c));
    } else {
        json_object_set_new(out, "next_cursor", json_null());
    }
    vg_resp_json(r, 200, out);
}

/* Every action of an audit entry (docs/api.md, "Audit"). */
static const char *const AUDIT_ACTIONS[] = {
    "rules.put", "rules.delete", "rules.rollback", "rules.load", "lists.put", "lists.add",
    "lists.rem", "lists.del", "labels.post", "accounts.reset_baseline", "accounts.delete",
    NULL};

void vg_h_audit(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    page_t p = {0};
    unsigned char from[10];
    if (page_args(q, r, &p, from, 'A') != 0) return;
    p.audit = 1;
    p.action = filter_arg(q, "action");
    if (p.action) {   /* one of the fixed set (a typo listed nothing: 200 and empty) */
        int known = 0;
        for (int k = 0; AUDIT_ACTIONS[k]; k++) known |= strcmp(p.action, AUDIT_ACTIONS[k]) == 0;
        if (!known) {
            char all[400] = "";
            for (int k = 0; AUDIT_ACTIONS[k]; k++)
                snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s", k ? ", " : "",
                         AUDIT_ACTIONS[k]);
            vg_resp_error(r, 400, "bad_request", "unknown action '%s': the actions are %s",
                          p.action, all);
            return;
        }
    }
    p.target = filter_arg(q, "target");
    p.arr = json_array();
    vg_ctl_scan(a->ctl, "A/", 2, from, sizeof(from), page_cb, &p);
    json_t *out = json_pack("{s:o}", "entries", p.arr);
    if (p.more) {
        char c[32];
        snprintf(c, sizeof(c), "%llu", (unsigned long long)p.last);
        json_object_set_new(out, "next_cursor", json_string(c));
    } else {
        json_object_set_new(out, "next_cursor", json_null());
    }
    vg_resp_json(r, 200, out);
}
