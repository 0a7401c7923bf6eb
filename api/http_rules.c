/* http_rules.c - rule modules over HTTP: list, read, put, delete, versions, rollback,
 * validate (SPEC section 6), with ETag / If-Match and the audit trail.
 *
 * A module record is JSON {"module","version","ruleset","source","deleted","updated_at",
 * "by"}; every version is kept ("V/" keys of the control store; with Redis also in
 * vigil:versions:<module>, from where every instance fetches those it lacks: see
 * api/redis.h), a deletion is a tombstone version, so that versions only grow and a
 * module can be rolled back to any earlier version. The ruleset version grows by one
 * with every change of any module. A change that does not compile (with every other
 * active module) answers 422 with every error's line and column and changes nothing.
 * The ruleset is swapped whole in the engine between two events.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "api/redis.h"
#include "rules/errors.h"

static int find_module(vg_api_t *a, const char *name) {
    for (int i = 0; i < a->nmods; i++)
        if (strcmp(a->mods[i].name, name) == 0) return i;
    return -1;
}

int vg_api_valid_module_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

/* A persistent "<name>.vrl" (mu held): compiler diagnostics keep pointers to it. */
static const char *intern(vg_api_t *a, const char *name) {
    char buf[80];
    snprintf(buf, sizeof(buf), "%s.vrl", name);
    for (int i = 0; i < a->nfnames; i++)
        if (strcmp(a->fnames[i], buf) == 0) return a->fnames[i];
    if (a->nfnames >= 10000) return "module.vrl";
    char **nf = realloc(a->fnames, (size_t)(a->nfnames + 1) * sizeof(*nf));
    if (!nf) return "module.vrl";
    a->fnames = nf;
    char *d = strdup(buf);
    if (!d) return "module.vrl";
    a->fnames[a->nfnames++] = d;
    return d;
}

vg_program_t *vg_api_compile(vg_api_t *a, const char *name, const char *override, int remove,
                             vg_diags_t *d) {
    vg_source_t *src = calloc((size_t)a->nmods + 2, sizeof(*src));
    int n = 0, placed = 0;
    vg_program_t *p = NULL;
    if (!src) goto done;
    for (int i = 0; i <= a->nmods; i++) {
        /* keep modules in name order, the override at its place */
        if (name && !placed && !remove && override &&
            (i == a->nmods || strcmp(name, a->mods[i].name) <= 0)) {
            src[n].name = intern(a, name);
            src[n].text = override;
            src[n].len = strlen(override);
            n++;
            placed = 1;
        }
        if (i == a->nmods) break;
        vg_module_t *m = &a->mods[i];
        if (m->deleted || !m->source) continue;
        if (name && strcmp(name, m->name) == 0) continue;
        src[n].name = intern(a, m->name);
        src[n].text = m->source;
        src[n].len = strlen(m->source);
        n++;
    }
    if (n == 0) {
        src[0].name = "empty.vrl";
        src[0].text = "";
        src[0].len = 0;
        p = vg_prog_compile(src, 1, d);
    } else {
        p = vg_prog_compile(src, n, d);
    }
done:
    free(src);
    return p;
}

/* Makes p (version `ruleset`) the program in force (mu held) and records which module
 * versions it was compiled from under G/active: what a restart falls back to when the
 * newest stored modules do not compile. */
static void set_active(vg_api_t *a, vg_program_t *p, int64_t ruleset, int record) {
    if (record)   /* decisions name each rule's module version (SPEC section 3) */
        for (int i = 0; i < a->nmods; i++)
            if (!a->mods[i].deleted && a->mods[i].source)
                vg_prog_set_module_version(p, a->mods[i].name, a->mods[i].version);
    vg_prog_ref(p);
    vg_prog_unref(a->active);
    a->active = p;
    a->active_ruleset = ruleset;
    atomic_store(&a->rz_active, ruleset);   /* for /readyz during a later swap */
    atomic_store(&a->rz_newest, a->ruleset > ruleset ? a->ruleset : ruleset);
    if (!record) return;
    json_t *m = json_object();
    for (int i = 0; i < a->nmods; i++)
        if (!a->mods[i].deleted && a->mods[i].source)
            json_object_set_new(m, a->mods[i].name, json_integer(a->mods[i].version));
    json_t *j = json_pack("{s:I,s:o}", "ruleset", (json_int_t)ruleset, "modules", m);
    char *txt = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!txt || vg_ctl_put(a->ctl, "G/active", 8, txt, strlen(txt)) != 0)
        fprintf(stderr, "vigil serve: cannot record the ruleset in force (%lld); a restart "
                        "needs the newest modules to compile\n", (long long)ruleset);
    free(txt);
    json_decref(j);
}

/* Compiles the module versions recorded in G/active (mu held). NULL when there is no
 * such record or it does not compile either; *ruleset: its version. */
static vg_program_t *compile_recorded_active(vg_api_t *a, int64_t *ruleset) {
    vg_buf_t b;
    vg_buf_init(&b);
    vg_program_t *p = NULL;
    json_t *j = NULL;
    vg_source_t *src = NULL;
    char **texts = NULL;
    size_t n = 0;
    if (vg_ctl_get(a->ctl, "G/active", 8, &b) != 0) goto out;
    j = json_loadb(b.p, b.len, 0, NULL);
    json_t *mods = json_object_get(j, "modules");
    if (!json_is_object(mods) || !json_is_integer(json_object_get(j, "ruleset"))) goto out;
    *ruleset = json_integer_value(json_object_get(j, "ruleset"));
    size_t cap = json_object_size(mods);
    src = calloc(cap + 1, sizeof(*src));
    texts = calloc(cap + 1, sizeof(*texts));
    if (!src || !texts) goto out;
    const char *name;
    json_t *ver;
    json_object_foreach(mods, name, ver) {   /* written with sorted keys: name order */
        unsigned char vkey[VG_CTL_VKEY_MAX];
        size_t vkl =
            json_is_integer(ver) ? vg_ctl_version_key(vkey, name, json_integer_value(ver)) : 0;
        if (!vkl) goto out;
        vg_buf_t r;
        vg_buf_init(&r);
        json_t *rec = NULL;
        if (vg_ctl_get(a->ctl, vkey, vkl, &r) == 0)
            rec = json_loadb(r.p, r.len, 0, NULL);
        vg_buf_deinit(&r);
        const char *text = json_string_value(json_object_get(rec, "source"));
        texts[n] = text ? strdup(text) : NULL;
        json_decref(rec);
        if (!texts[n]) goto out;
        src[n].name = intern(a, name);
        src[n].text = texts[n];
        src[n].len = strlen(texts[n]);
        n++;
    }
    vg_diags_t d;
    vg_diags_init(&d);
    if (n == 0) {
        src[0].name = "empty.vrl";
        src[0].text = "";
        src[0].len = 0;
    }
    p = vg_prog_compile(src, n ? (int)n : 1, &d);
    vg_diags_deinit(&d);
    json_object_foreach(mods, name, ver)   /* the versions it was compiled from */
        if (p && json_is_integer(ver)) vg_prog_set_module_version(p, name, json_integer_value(ver));
out:
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(src);
    json_decref(j);
    vg_buf_deinit(&b);
    return p;
}

/* Installs a parsed module record (mu held). `pre`: the program already compiled for
 * it, or NULL; `defer`: store it only (the caller compiles once for several). Returns 0
 * (also when the record is not newer: nothing to do) or an error; *applied = 1 when it
 * was newer. */
static int apply_locked(vg_api_t *a, const char *rec, size_t len, vg_program_t *pre, int defer,
                        int *applied) {
    json_t *j = json_loadb(rec, len, 0, NULL);
    if (!j) return VG_EINVAL;
    const char *name = json_string_value(json_object_get(j, "module"));
    json_int_t version = json_integer_value(json_object_get(j, "version"));
    json_int_t ruleset = json_integer_value(json_object_get(j, "ruleset"));
    int deleted = json_is_true(json_object_get(j, "deleted"));
    const char *source = json_string_value(json_object_get(j, "source"));
    int rc = 0;
    if (!name || !vg_api_valid_module_name(name) || version < 1 || (!deleted && !source)) {
        rc = VG_EINVAL;
        goto done;
    }
    int i = find_module(a, name);
    /* not newer; the same version is installed again only when its content differs
     * (Redis held another source under that version, which every instance adopts:
     * api/redis.c logs it with the source replaced) */
    if (i >= 0 && (a->mods[i].version > version ||
                   (a->mods[i].version == version && a->mods[i].deleted == deleted &&
                    (deleted || (a->mods[i].source && strcmp(a->mods[i].source, source) == 0)))))
        goto done;
    if (applied) *applied = 1;
    vg_program_t *p = pre ? vg_prog_ref(pre) : NULL;
    if (!p && a->eng && !defer) {   /* before the engine opens (--rules at start) nothing to swap */
        vg_diags_t d;
        vg_diags_init(&d);
        p = vg_api_compile(a, name, deleted ? NULL : source, deleted, &d);
        if (!p) {
            fprintf(stderr, "vigil serve: module %s version %lld does not compile with the "
                            "active modules; keeping the ruleset in force (%lld) until it is "
                            "fixed\n", name, (long long)version, (long long)a->active_ruleset);
            vg_api_log_diags(&d);   /* errors first, tagged (api/http_state.c) */
        }
        vg_diags_deinit(&d);
    }
    /* durable first: the record and its version */
    unsigned char vkey[VG_CTL_VKEY_MAX];
    size_t nl = strlen(name), vkl = vg_ctl_version_key(vkey, name, version);
    char rkey[2 + 64];
    memcpy(rkey, "R/", 2);
    memcpy(rkey + 2, name, nl);
    vg_ctl_op_t ops[2] = {{rkey, 2 + nl, rec, len}, {vkey, vkl, rec, len}};
    rc = vg_ctl_write(a->ctl, ops, 2);
    if (rc) {
        vg_prog_unref(p);
        goto done;
    }
    if (i < 0) {
        vg_module_t *nm = realloc(a->mods, (size_t)(a->nmods + 1) * sizeof(*nm));
        if (!nm) {
            vg_prog_unref(p);
            rc = VG_ENOMEM;
            goto done;
        }
        a->mods = nm;
        i = 0;
        while (i < a->nmods && strcmp(a->mods[i].name, name) < 0) i++;
        memmove(&a->mods[i + 1], &a->mods[i], (size_t)(a->nmods - i) * sizeof(*nm));
        memset(&a->mods[i], 0, sizeof(*nm));
        a->mods[i].name = strdup(name);
        a->nmods++;
    }
    vg_module_t *m = &a->mods[i];
    free(m->record);
    free(m->source);
    m->record = strndup(rec, len);
    m->source = deleted ? NULL : strdup(source);
    m->version = version;
    m->ruleset = ruleset;
    m->deleted = deleted;
    if (ruleset > a->ruleset) a->ruleset = ruleset;
    if (p && a->eng) {
        char err[512];
        rc = vg_engine_set_program(a->eng, p, a->ruleset, err, sizeof(err));
        if (rc) {
            fprintf(stderr, "vigil serve: ruleset swap failed: %s\n", err);
        } else {
            set_active(a, p, a->ruleset, 1);
            if (a->on_rules) a->on_rules(a->on_rules_ctx, p, a->ruleset, NULL);
        }
    }
    vg_prog_unref(p);
done:
    json_decref(j);
    return rc;
}

int vg_api_apply_module(vg_api_t *a, const char *record, size_t len, int64_t *ruleset_out) {
    pthread_mutex_lock(&a->mu);
    int rc = apply_locked(a, record, len, NULL, 0, NULL);
    if (ruleset_out) *ruleset_out = a->ruleset;
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int vg_api_apply_modules(vg_api_t *a, const char *const *recs, const size_t *lens, int n,
                         int *bad) {
    int nbad = 0, any = 0;
    pthread_mutex_lock(&a->mu);
    for (int k = 0; k < n; k++) {
        int rc = apply_locked(a, recs[k], lens[k], NULL, 1, &any);
        if (bad) bad[k] = rc == VG_EINVAL;
        nbad += rc == VG_EINVAL;
    }
    if (any && a->eng) {   /* one program for them all, named by the newest ruleset */
        vg_diags_t d;
        vg_diags_init(&d);
        vg_program_t *p = vg_api_compile(a, NULL, NULL, 0, &d);
        char err[512];
        if (!p) {
            const vg_diag_t *fe = vg_api_first_error(&d);
            fprintf(stderr, "vigil serve: the newest rule modules (ruleset %lld) do not compile "
                            "(first error in %s); keeping the ruleset in force (%lld) until they "
                            "are fixed\n", (long long)a->ruleset, fe ? fe->file : "?",
                    (long long)a->active_ruleset);
            vg_api_log_diags(&d);   /* errors first, tagged (api/http_state.c) */
            atomic_store(&a->rz_newest, a->ruleset);
        } else if (vg_engine_set_program(a->eng, p, a->ruleset, err, sizeof(err)) != 0) {
            fprintf(stderr, "vigil serve: ruleset swap failed: %s\n", err);
        } else {
            set_active(a, p, a->ruleset, 1);
            if (a->on_rules) a->on_rules(a->on_rules_ctx, p, a->ruleset, NULL);
        }
        vg_prog_unref(p);
        vg_diags_deinit(&d);
    }
    pthread_mutex_unlock(&a->mu);
    return nbad;
}

static int load_mod_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)k;
    (void)kl;
    vg_api_t *a = ctx;
    json_t *j = json_loadb(v, vl, 0, NULL);
    if (!j) return 0;
    const char *name = json_string_value(json_object_get(j, "module"));
    const char *source = json_string_value(json_object_get(j, "source"));
    vg_module_t *nm = realloc(a->mods, (size_t)(a->nmods + 1) * sizeof(*nm));
    if (nm && name) {
        a->mods = nm;
        vg_module_t *m = &a->mods[a->nmods++];
        memset(m, 0, sizeof(*m));
        m->name = strdup(name);
        m->record = strndup(v, vl);
        m->version = json_integer_value(json_object_get(j, "version"));
        m->ruleset = json_integer_value(json_object_get(j, "ruleset"));
        m->deleted = json_is_true(json_object_get(j, "deleted"));
        m->source = m->deleted || !source ? NULL : strdup(source);
        if (m->ruleset > a->ruleset) a->ruleset = m->ruleset;
    } else if (nm) {
        a->mods = nm;
    }
    json_decref(j);
    return 0;
}

/* in http_data.c */
int vg_api_load_lists(vg_api_t *a);
vg_lists_t *vg_api_build_lists(vg_api_t *a);

int vg_api_load_state(vg_api_t *a, char *errbuf, size_t errlen) {
    if (vg_ctl_scan(a->ctl, "R/", 2, NULL, 0, load_mod_cb, a) != 0 || vg_api_load_lists(a) != 0) {
        snprintf(errbuf, errlen, "cannot read the control store");
        return VG_ESTORE;
    }
    return 0;
}

int vg_api_start_engine(vg_api_t *a, char *errbuf, size_t errlen) {
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *p = vg_api_compile(a, NULL, NULL, 0, &d);
    int64_t rs = a->ruleset;
    int newest = p != NULL;
    const vg_diag_t *fe = vg_api_first_error(&d);   /* not a warning of another module */
    if (!p) {
        /* a module received from Redis that never compiled here: the last ruleset that
         * did (G/active) runs, as before the restart */
        p = compile_recorded_active(a, &rs);
        if (!p) {
            snprintf(errbuf, errlen, "the stored rule modules do not compile (%d errors; first: "
                                     "%s:%d:%d: error: %s)", d.n_errors, fe ? fe->file : "?",
                     fe ? fe->line : 0, fe ? fe->col : 0, fe ? fe->msg : "");
            vg_diags_deinit(&d);
            return VG_ECOMPILE;
        }
        fprintf(stderr, "vigil serve: the newest rule modules (ruleset %lld) do not compile "
                        "(%d errors; first: %s:%d:%d: error: %s); ruleset %lld, the last that "
                        "did, stays in force until they are fixed\n",
                (long long)a->ruleset, d.n_errors, fe ? fe->file : "?",
                fe ? fe->line : 0, fe ? fe->col : 0, fe ? fe->msg : "", (long long)rs);
    }
    vg_diags_deinit(&d);
    vg_lists_t *l = vg_api_build_lists(a);
    vg_engine_opts_t eo = {
        .shards = a->cfg->shards,
        .state_dir = a->cfg->state,
        .lateness_ms = a->cfg->lateness_ms,
        .dedupe_horizon_ms = a->cfg->dedupe_horizon_ms,
        .future_ms = a->cfg->future_ms,
        .mem_budget = a->cfg->mem_budget,
        .anomaly = vg_config_anomaly(a->cfg),
        .reset_mismatch = 1,
        /* half the interval: done well before the next one */
        .checkpoint_spread_ms = (a->cfg->checkpoint_ms > 0 ? a->cfg->checkpoint_ms : 1000) / 2,
    };
    a->eng = vg_engine_new(&eo, p, rs, l, errbuf, errlen);
    if (a->eng) set_active(a, p, rs, newest);
    vg_prog_unref(p);
    vg_lists_unref(l);
    return a->eng ? 0 : VG_ESTORE;
}

/* ---- helpers for handlers -------------------------------------------------------- */

static json_t *diags_json(const vg_diags_t *d, int errors) {
    json_t *arr = json_array();
    for (int i = 0; i < d->n; i++) {
        if (d->v[i].is_error != errors) continue;
        json_array_append_new(arr, json_pack("{s:s,s:i,s:i,s:s}", "file", d->v[i].file ? d->v[i].file : "",
                                             "line", d->v[i].line, "col", d->v[i].col,
                                             "message", d->v[i].msg));
    }
    return arr;
}

static void compile_error(vg_resp_t *r, int status, const char *code, const vg_diags_t *d) {
    json_t *e = json_pack("{s:s,s:s}", "code", code, "message", "the rules do not compile");
    char msg[400];
    if (d->n > 0)
        for (int i = 0; i < d->n; i++)
            if (d->v[i].is_error) {
                snprintf(msg, sizeof(msg), "%d error(s); first: %s:%d:%d: %s", d->n_errors,
                         d->v[i].file, d->v[i].line, d->v[i].col, d->v[i].msg);
                json_object_set_new(e, "message", json_string(msg));
                break;
            }
    json_object_set_new(e, "errors", diags_json(d, 1));
    json_object_set_new(e, "warnings", diags_json(d, 0));
    vg_resp_json(r, status, json_pack("{s:o}", "error", e));
}

static json_t *summary(const vg_module_t *m, int with_source) {
    json_t *j = json_loadb(m->record, strlen(m->record), 0, NULL);
    if (!j) j = json_object();
    if (!with_source) json_object_del(j, "source");
    return j;
}

/* Changes module `name` to `source` (NULL: delete); `restored` > 0: a rollback to that
 * version. Sets the response. A PUT of the module's current source changes nothing
 * (200, no new version, no audit entry). With Redis, a change is compiled against the
 * rules of one ruleset and written only if that is still the newest (compare-and-set on
 * vigil:ruleset too): when another instance changed a module meanwhile, the newest
 * modules are fetched and the change compiled again on them (up to 20 times, then 409),
 * so that two concurrent changes that each compile never make a ruleset that does not. */
static void commit(vg_api_t *a, vg_req_t *q, vg_resp_t *r, const char *name, const char *source,
                   const char *action, int64_t restored) {
    int same_ok = source && !restored;   /* a PUT, not a rollback */
    int64_t pulled = 0;                   /* Redis's newest ruleset when last fetched */
    for (int attempt = 0;; attempt++) {
        pthread_mutex_lock(&a->mu);
        int i = find_module(a, name);
        int64_t cur = i >= 0 ? a->mods[i].version : 0;
        int exists = i >= 0 && !a->mods[i].deleted;
        int64_t expect;
        if (vg_http_if_match(q, r, cur, exists, &expect) != 0) {
            pthread_mutex_unlock(&a->mu);
            return;
        }
        if (!source && !exists) {
            pthread_mutex_unlock(&a->mu);
            vg_resp_error(r, 404, "not_found", "no module %s", name);
            return;
        }
        if (same_ok && exists && !a->redis && a->mods[i].source &&
            strcmp(a->mods[i].source, source) == 0) {
            json_t *out = summary(&a->mods[i], 0);   /* nothing to change */
            pthread_mutex_unlock(&a->mu);
            snprintf(r->etag, sizeof(r->etag), "\"%lld\"", (long long)cur);
            vg_resp_json(r, 200, out);
            return;
        }
        vg_diags_t d;
        vg_diags_init(&d);
        vg_program_t *p = vg_api_compile(a, name, source, source == NULL, &d);
        if (!p) {
            pthread_mutex_unlock(&a->mu);
            /* deleting a module others depend on is a conflict, a bad PUT is 422 */
            compile_error(r, source ? 422 : 409, source ? "compile_error" : "conflict", &d);
            vg_diags_deinit(&d);
            return;
        }
        vg_diags_deinit(&d);
        int64_t base = a->ruleset > pulled ? a->ruleset : pulled;
        char at[40];
        vg_iso_time(vg_now_ms(), at);
        json_t *j = json_pack("{s:s,s:I,s:I,s:b,s:s,s:s}", "module", name, "version",
                              (json_int_t)(cur + 1), "ruleset", (json_int_t)(base + 1),
                              "deleted", source == NULL, "updated_at", at, "by", q->who);
        json_object_set_new(j, "source", source ? json_string(source) : json_null());
        char *rec = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        int rc, created = !exists, unchanged = 0;   /* with Redis: its compare-and-set's */
        if (!rec) {
            rc = VG_ENOMEM;
        } else if (a->redis) {
            pthread_mutex_unlock(&a->mu);
            char *stored = NULL;
            int64_t current = 0;
            rc = vg_redis_put_module(a->redis, name, expect >= 0 ? expect : -1, rec, base, same_ok,
                                     &stored, &current, &created, &unchanged);
            vg_prog_unref(p);
            free(rec);
            if (rc == VG_ESTALE && attempt < 20) {
                /* another instance changed the rules: compile again on the newest */
                if (vg_redis_pull_modules(a->redis, &current) == 0 && current > pulled)
                    pulled = current;
                continue;
            }
            if (rc) {
                free(stored);
                if (rc == VG_EMISMATCH) {
                    vg_resp_error(r, 412, "precondition_failed",
                                  "the shared version is %lld: reload and retry",
                                  (long long)current);
                } else if (rc == VG_ESTALE) {
                    r->retry_after = 1;
                    vg_resp_error(r, 409, "conflict", "the rules keep being changed on other "
                                  "instances (ruleset %lld): retry", (long long)current);
                } else {
                    vg_redis_answer(a->redis, r, rc, "rule");
                }
                return;
            }
            rec = stored;
            p = NULL;
            pthread_mutex_lock(&a->mu);
            rc = apply_locked(a, rec, strlen(rec), NULL, 0, NULL);
        } else {
            rc = apply_locked(a, rec, strlen(rec), p, 0, NULL);
        }
        vg_prog_unref(p);
        if (rc) {
            pthread_mutex_unlock(&a->mu);
            free(rec);
            vg_resp_error(r, 500, "internal", "cannot store the module: %s", vg_strerror(rc));
            return;
        }
        i = find_module(a, name);
        int64_t nv = i >= 0 ? a->mods[i].version : cur + 1;
        json_t *out = i >= 0 ? summary(&a->mods[i], 0) : json_object();
        pthread_mutex_unlock(&a->mu);
        free(rec);
        snprintf(r->etag, sizeof(r->etag), "\"%lld\"", (long long)nv);
        if (unchanged) {   /* Redis had this source already: no version, no audit entry */
            vg_resp_json(r, 200, out);
            return;
        }
        if (restored > 0)   /* which version a rollback brought back */
            vg_api_audit_more(a, q, action, name, cur, nv,
                              json_pack("{s:I}", "restored_version", (json_int_t)restored));
        else
            vg_api_audit(a, q, action, name, cur, nv);
        /* a PUT that made the module (again, after a delete) is 201; a rollback is 200.
         * With Redis, of concurrent PUTs that make a module on several instances, only
         * the one whose compare-and-set found no module (or a tombstone) is 201 */
        vg_resp_json(r, source && created && q->route == VG_ROUTE_RULE ? 201 : 200, out);
        return;
    }
}

/* A body with a NUL byte (not .vrl text) is answered as `vigil check` says it: 422 with
 * the byte's line and column (the compiler reads the whole body, its length given). */
static void nul_body(vg_api_t *a, vg_req_t *q, vg_resp_t *r, const char *name) {
    vg_diags_t d;
    vg_diags_init(&d);
    vg_source_t src;
    pthread_mutex_lock(&a->mu);
    src.name = intern(a, name);
    pthread_mutex_unlock(&a->mu);
    src.text = q->body;
    src.len = q->len;
    vg_program_t *p = vg_prog_compile(&src, 1, &d);
    if (!p && d.n_errors > 0) compile_error(r, 422, "compile_error", &d);
    else vg_resp_error(r, 400, "bad_request", "the body must be .vrl source text");
    vg_prog_unref(p);
    vg_diags_deinit(&d);
}

/* ---- handlers -------------------------------------------------------------------- */

void vg_h_rules(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    (void)q;
    json_t *arr = json_array();
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->nmods; i++)
        if (!a->mods[i].deleted) json_array_append_new(arr, summary(&a->mods[i], 0));
    int64_t rs = a->ruleset, active = a->active_ruleset;
    pthread_mutex_unlock(&a->mu);
    /* ruleset: the newest (these modules); active_ruleset: the one decisions carry, older
     * while a module received from Redis does not compile here */
    vg_resp_json(r, 200, json_pack("{s:I,s:I,s:o}", "ruleset", (json_int_t)rs, "active_ruleset",
                                   (json_int_t)active, "modules", arr));
}

void vg_h_rule(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    const char *name = q->seg[0];
    if (!vg_api_valid_module_name(name)) {
        vg_resp_error(r, 400, "bad_request", "a module name is 1..64 letters, digits, _ or -");
        return;
    }
    if (strcmp(q->method, "PUT") == 0) {
        if (memchr(q->body, 0, q->len)) {
            nul_body(a, q, r, name);
            return;
        }
        char *src = strndup(q->body, q->len);
        if (!src) {
            vg_resp_error(r, 500, "internal", "out of memory");
            return;
        }
        commit(a, q, r, name, src, "rules.put", 0);
        free(src);
        return;
    }
    if (strcmp(q->method, "DELETE") == 0) {
        commit(a, q, r, name, NULL, "rules.delete", 0);
        return;
    }
    pthread_mutex_lock(&a->mu);
    int i = find_module(a, name);
    if (i < 0 || a->mods[i].deleted) {
        pthread_mutex_unlock(&a->mu);
        vg_resp_error(r, 404, "not_found", "no module %s", name);
        return;
    }
    json_t *j = summary(&a->mods[i], 1);
    snprintf(r->etag, sizeof(r->etag), "\"%lld\"", (long long)a->mods[i].version);
    pthread_mutex_unlock(&a->mu);
    vg_resp_json(r, 200, j);
}

typedef struct ver_ctx {
    json_t *arr;
    int64_t want;        /* > 0: the record of this version */
    json_t *found;
} ver_ctx_t;

static int ver_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)k;
    (void)kl;
    ver_ctx_t *c = ctx;
    json_t *j = json_loadb(v, vl, 0, NULL);
    if (!j) return 0;
    json_object_del(j, "source");
    json_array_insert_new(c->arr, 0, j);   /* newest first */
    return 0;
}

/* Scans module `name`'s versions into c. With Redis, a version asked for (c->want) that
 * is not here yet (its change is on its way to this instance) is fetched from there
 * first. */
static int versions(vg_api_t *a, const char *name, ver_ctx_t *c) {
    unsigned char key[VG_CTL_VKEY_MAX];
    size_t kl = vg_ctl_version_key(key, name, c->want > 0 ? c->want : 0);
    if (!kl) return VG_EINVAL;
    if (c->want <= 0) return vg_ctl_scan(a->ctl, key, kl - 8, NULL, 0, ver_cb, c);
    vg_buf_t b;
    vg_buf_init(&b);
    int rc = vg_ctl_get(a->ctl, key, kl, &b);
    if (rc == VG_ENOTFOUND && a->redis && vg_redis_fetch_version(a->redis, name, c->want) == 0)
        rc = vg_ctl_get(a->ctl, key, kl, &b);
    if (rc == 0) c->found = json_loadb(b.p, b.len, 0, NULL);
    vg_buf_deinit(&b);
    return rc;
}

void vg_h_rule_versions(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    const char *name = q->seg[0];
    if (!vg_api_valid_module_name(name)) {   /* "" too (/v1/rules//versions) */
        vg_resp_error(r, 400, "bad_request", "a module name is 1..64 letters, digits, _ or -");
        return;
    }
    ver_ctx_t c = {json_array(), 0, NULL};
    if (q->nseg == 3) {
        char *end;
        c.want = strtoll(q->seg[2], &end, 10);
        if (*end || c.want < 1) {
            json_decref(c.arr);
            vg_resp_error(r, 400, "bad_request", "a version is a positive integer");
            return;
        }
    }
    versions(a, name, &c);
    if (q->nseg == 3) {
        json_decref(c.arr);
        if (!c.found) vg_resp_error(r, 404, "not_found", "module %s has no version %s", name, q->seg[2]);
        else vg_resp_json(r, 200, c.found);
        return;
    }
    if (json_array_size(c.arr) == 0) {
        json_decref(c.arr);
        vg_resp_error(r, 404, "not_found", "no module %s", name);
        return;
    }
    vg_resp_json(r, 200, json_pack("{s:s,s:o}", "module", name, "versions", c.arr));
}

void vg_h_rule_rollback(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    const char *name = q->seg[0];
    int64_t want = 0;
    const char *qv = vg_req_arg(q, "version");
    if (qv) {
        if (q->len > 0) {   /* which version: the query's or the body's? */
            vg_resp_error(r, 400, "bad_request", "a rollback with ?version= takes no body "
                          "(give the version in the query or in the body, not both)");
            return;
        }
        char *end;
        errno = 0;
        want = *qv >= '0' && *qv <= '9' ? strtoll(qv, &end, 10) : 0;
        if (want > 0 && *end) want = 0; /* "1abc": refused below, not read as 1 */
        if (want > 0 && errno == ERANGE) {
            /* it was clamped to 2^63 - 1, and a version of that number looked for */
            vg_resp_error(r, 400, "bad_request", "version %.40s%s is out of range (at most "
                          "%lld)", qv, strlen(qv) > 40 ? "..." : "", (long long)INT64_MAX);
            return;
        }
    } else {
        json_error_t je;
        json_t *b = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, &je);
        if (!b) {
            vg_resp_error(r, 400, "invalid_json", "body: %s (line %d, column %d)", je.text, je.line,
                          je.column);
            return;
        }
        if (!json_is_object(b)) {   /* [] or 7: not {"version":N} */
            json_decref(b);
            vg_resp_error(r, 400, "bad_type", "the body must be a JSON object {\"version\":N}");
            return;
        }
        /* an unknown member (a typo such as "verison", or "dry_run") is refused: it used
         * to be ignored, and the rollback done */
        static const char *const known[] = {"version", NULL};
        if (vg_resp_unknown_members(r, b, known, "", "the body is {\"version\":N}") != 0) {
            json_decref(b);
            return;
        }
        json_t *v = json_object_get(b, "version");
        if (!v) {
            json_decref(b);
            vg_resp_error(r, 400, "missing_field", "field 'version' is missing");
            return;
        }
        if (!json_is_integer(v)) {
            json_decref(b);
            vg_resp_error(r, 400, "bad_type", "field 'version' must be an integer");
            return;
        }
        want = json_integer_value(v);
        json_decref(b);
    }
    if (!vg_api_valid_module_name(name)) {
        vg_resp_error(r, 400, "bad_request", "a module name is 1..64 letters, digits, _ or -");
        return;
    }
    if (want < 1) {
        vg_resp_error(r, 400, "bad_request", "version must be a positive integer");
        return;
    }
    ver_ctx_t c = {NULL, want, NULL};
    versions(a, name, &c);
    if (!c.found) {
        vg_resp_error(r, 404, "not_found", "module %s has no version %lld", name, (long long)want);
        return;
    }
    const char *src = json_string_value(json_object_get(c.found, "source"));
    if (!src) {
        json_decref(c.found);
        vg_resp_error(r, 409, "conflict", "version %lld of %s is a deletion", (long long)want, name);
        return;
    }
    char *s = strdup(src);
    json_decref(c.found);
    commit(a, q, r, name, s, "rules.rollback", want);
    free(s);
}

void vg_h_validate(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    const char *name = vg_req_arg(q, "module");
    if (!name) name = "validate";
    if (!vg_api_valid_module_name(name)) {
        vg_resp_error(r, 400, "bad_request", "a module name is 1..64 letters, digits, _ or -");
        return;
    }
    if (memchr(q->body, 0, q->len)) {
        nul_body(a, q, r, name);
        return;
    }
    char *src = strndup(q->body, q->len);
    if (!src) {
        vg_resp_error(r, 500, "internal", "out of memory");
        return;
    }
    vg_diags_t d;
    vg_diags_init(&d);
    pthread_mutex_lock(&a->mu);
    vg_program_t *p = vg_api_compile(a, name, src, 0, &d);
    pthread_mutex_unlock(&a->mu);
    free(src);
    if (!p) compile_error(r, 422, "compile_error", &d);
    else
        vg_resp_json(r, 200, json_pack("{s:b,s:i,s:i,s:o}", "valid", 1, "features",
                                       vg_prog_nfeatures(p), "rules", vg_prog_nrules(p),
                                       "warnings", diags_json(&d, 0)));
    vg_prog_unref(p);
    vg_diags_deinit(&d);
}
