/* redis.c - the Redis control plane on hiredis (see redis.h).
 *
 * Two connections: `cmd` for writes and reads (mutex-guarded, re-opened on demand with
 * short timeouts, so that a write fails fast with VG_EIO while Redis is down) and the
 * subscriber's, owned by its thread, which polls its socket so that it notices a stop
 * request within 200 ms. Every multi-key change is one Lua script, so that each is
 * atomic and compare-and-set.
 */
#include "api/redis.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "rules/errors.h"
#include "rules/utf8.h"

#define K_RULES "vigil:rules"
#define K_RULESET "vigil:ruleset"
#define K_LISTVER "vigil:listver"
#define K_LISTDEL "vigil:listdel"
#define K_CHANNEL "vigil:changes"

struct vg_redis {
    vg_api_t *a;
    char host[256];
    int port;
    pthread_mutex_t mu;
    redisContext *cmd;
    atomic_int up;
    atomic_int stop;
    pthread_t th;
    int started;
    atomic_int auth_failing;   /* the last AUTH was refused (logged once until it passes) */
};

static const char *LUA_PUT_MODULE =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local curv = 0\n"
    "if cur then curv = cjson.decode(cur)['version'] end\n"
    "local e = tonumber(ARGV[2])\n"
    "if e >= 0 and curv ~= e then return {0, tostring(curv)} end\n"
    "local lv = tonumber(ARGV[4])\n"
    "if lv > curv then curv = lv end\n"
    "local rs = redis.call('INCR', KEYS[2])\n"
    "local lrs = tonumber(ARGV[5])\n"
    "if rs <= lrs then rs = lrs + 1; redis.call('SET', KEYS[2], rs) end\n"
    "local rec = cjson.decode(ARGV[3])\n"
    "rec['version'] = curv + 1\n"
    "rec['ruleset'] = rs\n"
    "local s = cjson.encode(rec)\n"
    "redis.call('HSET', KEYS[1], ARGV[1], s)\n"
    "redis.call('PUBLISH', KEYS[3], 'rules:' .. ARGV[1])\n"
    "return {1, s}\n";

static const char *LUA_PUSH_MODULE =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local curv = 0\n"
    "if cur then curv = cjson.decode(cur)['version'] end\n"
    "if curv >= tonumber(ARGV[3]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "local rs = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "if rs < tonumber(ARGV[4]) then redis.call('SET', KEYS[2], ARGV[4]) end\n"
    "redis.call('PUBLISH', KEYS[3], 'rules:' .. ARGV[1])\n"
    "return 1\n";

static const char *LUA_LIST_OP =
    "local v = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')\n"
    "local e = tonumber(ARGV[2])\n"
    "if e >= 0 and v ~= e then return {0, v} end\n"
    "local lv = tonumber(ARGV[4])\n"
    "local op = ARGV[3]\n"
    /* nothing to change (the list is there, current, and has exactly those items, or
     * the item): the version stays */
    "if v > 0 and lv <= v and redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then\n"
    "  if op == 'add' and redis.call('SISMEMBER', KEYS[1], ARGV[5]) == 1 then return {2, v} end\n"
    "  if op == 'put' then\n"
    "    local seen, u, same = {}, 0, true\n"
    "    for i = 5, #ARGV do\n"
    "      if not seen[ARGV[i]] then seen[ARGV[i]] = true; u = u + 1 end\n"
    "      if same and redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then same = false end\n"
    "    end\n"
    "    if same and redis.call('SCARD', KEYS[1]) == u then return {2, v} end\n"
    "  end\n"
    "end\n"
    "if lv > v then v = lv end\n"
    "if op == 'put' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  for i = 5, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end\n"
    "  redis.call('SREM', KEYS[3], ARGV[1])\n"
    "elseif op == 'add' then\n"
    "  redis.call('SADD', KEYS[1], ARGV[5])\n"
    "  redis.call('SREM', KEYS[3], ARGV[1])\n"
    "elseif op == 'rem' then redis.call('SREM', KEYS[1], ARGV[5])\n"
    "elseif op == 'del' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('SADD', KEYS[3], ARGV[1])\n"
    "end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], v + 1)\n"
    "redis.call('PUBLISH', KEYS[4], 'list:' .. ARGV[1])\n"
    "return {1, v + 1}\n";

static const char *LUA_FETCH_LIST =
    "return {tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0'),\n"
    "        redis.call('SISMEMBER', KEYS[3], ARGV[1]), redis.call('SMEMBERS', KEYS[1])}\n";

static const char *LUA_PUSH_LIST =
    "local v = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')\n"
    "if v >= tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "if ARGV[3] == '1' then redis.call('SADD', KEYS[3], ARGV[1])\n"
    "else\n"
    "  for i = 4, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end\n"
    "  redis.call('SREM', KEYS[3], ARGV[1])\n"
    "end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "redis.call('PUBLISH', KEYS[4], 'list:' .. ARGV[1])\n"
    "return 1\n";

static redisContext *connect_to(vg_redis_t *r, int timeout_ms) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!c) return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    const vg_config_t *cfg = r->a->cfg;
    if (cfg->redis_password) {   /* AUTH [user] password (Redis 6 ACLs, or requirepass) */
        redisReply *rep = cfg->redis_user
                              ? redisCommand(c, "AUTH %s %s", cfg->redis_user, cfg->redis_password)
                              : redisCommand(c, "AUTH %s", cfg->redis_password);
        int ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (!ok && rep && rep->type == REDIS_REPLY_ERROR &&
            !atomic_exchange(&r->auth_failing, 1))
            fprintf(stderr, "vigil serve: redis %s:%d refused the password%s%s: %s (treated as "
                            "down until it takes it)\n", r->host, r->port,
                    cfg->redis_user ? " of user " : "", cfg->redis_user ? cfg->redis_user : "",
                    rep->str);
        freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
        atomic_store(&r->auth_failing, 0);
    }
    return c;
}

const char *vg_redis_down_why(vg_redis_t *r) {
    return atomic_load(&r->auth_failing) ? "Redis refuses the password (redis-password)"
                                         : "Redis is down";
}

/* The command connection (r->mu held), or NULL while Redis is down. */
static redisContext *cmd_conn(vg_redis_t *r) {
    if (r->cmd && r->cmd->err) {
        redisFree(r->cmd);
        r->cmd = NULL;
    }
    if (!r->cmd) {
        r->cmd = connect_to(r, 300);
        if (r->cmd) {
            struct timeval tv = {1, 0};
            redisSetTimeout(r->cmd, tv);
        }
    }
    if (!r->cmd) atomic_store(&r->up, 0);
    return r->cmd;
}

/* Runs a command (r->mu held). NULL when Redis is down or answered an error. */
static redisReply *command(vg_redis_t *r, int argc, const char **argv, const size_t *lens) {
    redisContext *c = cmd_conn(r);
    if (!c) return NULL;
    redisReply *rep = redisCommandArgv(c, argc, argv, lens);
    if (!rep) {
        atomic_store(&r->up, 0);
        redisFree(r->cmd);
        r->cmd = NULL;
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "vigil serve: redis: %s\n", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

static redisReply *eval(vg_redis_t *r, const char *script, int nkeys, const char **keys,
                        int nargs, const char **args, const size_t *arglens) {
    int argc = 3 + nkeys + nargs;
    const char **argv = calloc((size_t)argc, sizeof(*argv));
    size_t *lens = calloc((size_t)argc, sizeof(*lens));
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    redisReply *rep = NULL;
    if (argv && lens) {
        argv[0] = "EVAL";
        argv[1] = script;
        argv[2] = nk;
        for (int i = 0; i < nkeys; i++) argv[3 + i] = keys[i];
        for (int i = 0; i < nargs; i++) {
            argv[3 + nkeys + i] = args[i];
            lens[3 + nkeys + i] = arglens ? arglens[i] : strlen(args[i]);
        }
        for (int i = 0; i < 3 + nkeys; i++) lens[i] = strlen(argv[i]);
        rep = command(r, argc, argv, lens);
    }
    free(argv);
    free(lens);
    return rep;
}

int vg_redis_up(vg_redis_t *r) { return r && atomic_load(&r->up); }

int vg_redis_put_module(vg_redis_t *r, const char *name, int64_t expect, const char *record,
                        char **stored, int64_t *current) {
    *stored = NULL;
    char e[24], lv[24], lrs[24];
    int64_t local = 0, lruleset;
    pthread_mutex_lock(&r->a->mu);
    for (int i = 0; i < r->a->nmods; i++)
        if (strcmp(r->a->mods[i].name, name) == 0) local = r->a->mods[i].version;
    lruleset = r->a->ruleset;
    pthread_mutex_unlock(&r->a->mu);
    snprintf(e, sizeof(e), "%lld", (long long)expect);
    snprintf(lv, sizeof(lv), "%lld", (long long)local);
    snprintf(lrs, sizeof(lrs), "%lld", (long long)lruleset);
    const char *keys[3] = {K_RULES, K_RULESET, K_CHANNEL};
    const char *args[5] = {name, e, record, lv, lrs};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = eval(r, LUA_PUT_MODULE, 3, keys, 5, args, NULL);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    int rc = VG_EIO;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER) {
        if (rep->element[0]->integer == 1 && rep->element[1]->str) {
            *stored = strdup(rep->element[1]->str);
            rc = *stored ? 0 : VG_ENOMEM;
        } else {
            *current = rep->element[1]->str ? strtoll(rep->element[1]->str, NULL, 10) : 0;
            rc = VG_EMISMATCH;
        }
    }
    freeReplyObject(rep);
    return rc;
}

/* Reads list `name` from Redis and installs it locally (r->mu not held). */
static int sync_list(vg_redis_t *r, const char *name) {
    char key[300];
    snprintf(key, sizeof(key), "vigil:list:%s", name);
    const char *keys[3] = {key, K_LISTVER, K_LISTDEL};
    const char *args[1] = {name};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = eval(r, LUA_FETCH_LIST, 3, keys, 1, args, NULL);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    int rc = VG_EIO;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
        int64_t v = rep->element[0]->integer;
        int del = rep->element[1]->integer == 1;
        redisReply *m = rep->element[2];
        char **items = calloc(m->elements + 1, sizeof(*items));
        if (items) {
            /* items are matched against event strings: UTF-8 of 1..1024 bytes, as the
             * API takes them; anything else written to Redis by hand is left out, said */
            size_t k = 0, bad = 0;
            for (size_t i = 0; i < m->elements; i++) {
                redisReply *e = m->element[i];
                int ok = e->type == REDIS_REPLY_STRING && e->len >= 1 && e->len <= 1024;
                const unsigned char *u = (const unsigned char *)e->str;
                for (size_t j = 0, q = 0; ok && j < e->len; j += q)
                    ok = u[j] != 0 && (q = vg_utf8_seq(u + j, e->len - j)) != 0;
                if (ok) items[k++] = e->str;
                else bad++;
            }
            if (bad)
                fprintf(stderr, "vigil serve: redis: list %s: %zu item(s) left out (not UTF-8 "
                                "text of 1..1024 bytes)\n", name, bad);
            if (v <= 0 && m->elements)
                fprintf(stderr, "vigil serve: redis: list %s has items but no version in %s; "
                                "ignored (change lists through the API)\n", name, K_LISTVER);
            rc = v > 0 ? vg_api_apply_list(r->a, name, v, items, k, del) : 0;
            free(items);
        }
    }
    freeReplyObject(rep);
    return rc;
}

int vg_redis_list_op(vg_redis_t *r, const char *name, int64_t expect, const char *op,
                     char **items, size_t n, int64_t *version, int *unchanged) {
    *unchanged = 0;
    char key[300], e[24], lv[24];
    int64_t local = 0;
    pthread_mutex_lock(&r->a->mu);
    for (int i = 0; i < r->a->nlists; i++)
        if (strcmp(r->a->lists[i].name, name) == 0) local = r->a->lists[i].version;
    pthread_mutex_unlock(&r->a->mu);
    snprintf(key, sizeof(key), "vigil:list:%s", name);
    snprintf(e, sizeof(e), "%lld", (long long)expect);
    snprintf(lv, sizeof(lv), "%lld", (long long)local);
    const char *keys[4] = {key, K_LISTVER, K_LISTDEL, K_CHANNEL};
    const char **args = calloc(n + 4, sizeof(*args));
    if (!args) return VG_ENOMEM;
    args[0] = name;
    args[1] = e;
    args[2] = op;
    args[3] = lv;
    for (size_t i = 0; i < n; i++) args[4 + i] = items[i];
    pthread_mutex_lock(&r->mu);
    redisReply *rep = eval(r, LUA_LIST_OP, 4, keys, (int)(n + 4), args, NULL);
    pthread_mutex_unlock(&r->mu);
    free(args);
    if (!rep) return VG_EIO;
    int rc = VG_EIO;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        *version = rep->element[1]->integer;
        rc = rep->element[0]->integer >= 1 ? 0 : VG_EMISMATCH;
        *unchanged = rep->element[0]->integer == 2;
    }
    freeReplyObject(rep);
    if (rc == 0) rc = sync_list(r, name);
    return rc;
}

/* Applies a module record read from Redis; one that is not a module record (written
 * there by hand) is reported and left alone. */
static void apply_module(vg_redis_t *r, const char *name, const char *rec, size_t len) {
    if (!rec) return;
    if (vg_api_apply_module(r->a, rec, len, NULL) == VG_EINVAL)
        fprintf(stderr, "vigil serve: redis: %s field %s is not a module record (JSON with "
                        "module, version and source); ignored\n", K_RULES, name ? name : "?");
}

static int sync_module(vg_redis_t *r, const char *name) {
    const char *argv[3] = {"HGET", K_RULES, name};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 3, argv, NULL);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    if (rep->type == REDIS_REPLY_STRING) apply_module(r, name, rep->str, rep->len);
    freeReplyObject(rep);
    return 0;
}

/* Both ways: newer in Redis -> here; newer here (or missing there) -> Redis. */
static int resync(vg_redis_t *r) {
    vg_api_t *a = r->a;
    const char *hg[2] = {"HGETALL", K_RULES};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 2, hg, NULL);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2)
        apply_module(r, rep->element[i]->str, rep->element[i + 1]->str, rep->element[i + 1]->len);
    freeReplyObject(rep);
    /* push what this instance has newer */
    pthread_mutex_lock(&a->mu);
    int n = a->nmods;
    char **names = calloc((size_t)n + 1, sizeof(*names)), **recs = calloc((size_t)n + 1, sizeof(*recs));
    int64_t *vers = calloc((size_t)n + 1, sizeof(*vers)), *rss = calloc((size_t)n + 1, sizeof(*rss));
    for (int i = 0; names && recs && vers && rss && i < n; i++) {
        names[i] = strdup(a->mods[i].name);
        recs[i] = strdup(a->mods[i].record);
        vers[i] = a->mods[i].version;
        rss[i] = a->mods[i].ruleset;
    }
    pthread_mutex_unlock(&a->mu);
    int rc = 0;
    for (int i = 0; names && recs && vers && rss && i < n && !rc; i++) {
        if (!names[i] || !recs[i]) continue;
        char v[24], rs[24];
        snprintf(v, sizeof(v), "%lld", (long long)vers[i]);
        snprintf(rs, sizeof(rs), "%lld", (long long)rss[i]);
        const char *keys[3] = {K_RULES, K_RULESET, K_CHANNEL};
        const char *args[4] = {names[i], recs[i], v, rs};
        pthread_mutex_lock(&r->mu);
        redisReply *x = eval(r, LUA_PUSH_MODULE, 3, keys, 4, args, NULL);
        pthread_mutex_unlock(&r->mu);
        if (!x) rc = VG_EIO;
        freeReplyObject(x);
    }
    for (int i = 0; i < n; i++) {
        if (names) free(names[i]);
        if (recs) free(recs[i]);
    }
    free(names);
    free(recs);
    free(vers);
    free(rss);
    if (rc) return rc;

    /* lists */
    const char *hl[2] = {"HGETALL", K_LISTVER};
    pthread_mutex_lock(&r->mu);
    rep = command(r, 2, hl, NULL);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2)
        sync_list(r, rep->element[i]->str);
    freeReplyObject(rep);
    pthread_mutex_lock(&a->mu);
    int nl = a->nlists;
    vg_list_t *snap = calloc((size_t)nl + 1, sizeof(*snap));
    for (int i = 0; snap && i < nl; i++) {
        vg_list_t *x = &a->lists[i];
        snap[i].name = strdup(x->name);
        snap[i].version = x->version;
        snap[i].deleted = x->deleted;
        snap[i].items = calloc(x->n + 1, sizeof(char *));
        for (size_t k = 0; snap[i].items && k < x->n; k++) snap[i].items[k] = strdup(x->items[k]);
        snap[i].n = snap[i].items ? x->n : 0;
    }
    pthread_mutex_unlock(&a->mu);
    for (int i = 0; snap && i < nl && !rc; i++) {
        char key[300], v[24];
        snprintf(key, sizeof(key), "vigil:list:%s", snap[i].name ? snap[i].name : "");
        snprintf(v, sizeof(v), "%lld", (long long)snap[i].version);
        const char **args = calloc(snap[i].n + 3, sizeof(*args));
        if (!args || !snap[i].name) {
            free(args);
            continue;
        }
        args[0] = snap[i].name;
        args[1] = v;
        args[2] = snap[i].deleted ? "1" : "0";
        size_t na = 3;
        for (size_t k = 0; k < snap[i].n; k++)
            if (snap[i].items[k]) args[na++] = snap[i].items[k];
        const char *keys[4] = {key, K_LISTVER, K_LISTDEL, K_CHANNEL};
        pthread_mutex_lock(&r->mu);
        redisReply *x = eval(r, LUA_PUSH_LIST, 4, keys, (int)na, args, NULL);
        pthread_mutex_unlock(&r->mu);
        if (!x) rc = VG_EIO;
        freeReplyObject(x);
        free(args);
    }
    for (int i = 0; snap && i < nl; i++) {
        free(snap[i].name);
        for (size_t k = 0; snap[i].items && k < snap[i].n; k++) free(snap[i].items[k]);
        free(snap[i].items);
    }
    free(snap);
    return rc;
}

static void handle_message(vg_redis_t *r, redisReply *m) {
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 || !m->element[0]->str ||
        strcmp(m->element[0]->str, "message") != 0 || !m->element[2]->str)
        return;
    const char *p = m->element[2]->str;
    if (strncmp(p, "rules:", 6) == 0) sync_module(r, p + 6);
    else if (strncmp(p, "list:", 5) == 0) sync_list(r, p + 5);
}

static void *subscriber(void *arg) {
    vg_redis_t *r = arg;
    int was_up = 0;
    while (!atomic_load(&r->stop)) {
        redisContext *c = connect_to(r, 300);
        if (!c) {
            if (was_up) fprintf(stderr, "vigil serve: redis %s:%d is down; serving from the "
                                        "local copy, refusing writes\n", r->host, r->port);
            was_up = 0;
            atomic_store(&r->up, 0);
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        redisReply *rep = redisCommand(c, "SUBSCRIBE %s", K_CHANNEL);
        int ok = rep != NULL;
        freeReplyObject(rep);
        if (ok && resync(r) == 0) {
            atomic_store(&r->up, 1);
            if (!was_up) fprintf(stderr, "vigil serve: redis %s:%d connected and synchronised\n",
                                 r->host, r->port);
            was_up = 1;
        } else {
            ok = 0;
        }
        while (ok && !atomic_load(&r->stop)) {
            struct pollfd pf = {c->fd, POLLIN, 0};
            int pr = poll(&pf, 1, 200);
            if (pr < 0) continue;
            if (pr == 0) continue;
            if (redisBufferRead(c) != REDIS_OK) {
                ok = 0;
                break;
            }
            void *reply = NULL;
            while (redisGetReplyFromReader(c, &reply) == REDIS_OK && reply) {
                handle_message(r, reply);
                freeReplyObject(reply);
                reply = NULL;
            }
        }
        redisFree(c);
        atomic_store(&r->up, 0);
        if (!atomic_load(&r->stop)) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

vg_redis_t *vg_redis_new(vg_api_t *a, const char *hostport, char *errbuf, size_t errlen) {
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= 256 || atoi(colon + 1) <= 0) {
        snprintf(errbuf, errlen, "--redis %s: expected HOST:PORT", hostport);
        return NULL;
    }
    vg_redis_t *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    r->a = a;
    /* an IPv6 address is bracketed, as in URLs ([::1]:6379); hiredis takes it bare */
    size_t hl = (size_t)(colon - hostport);
    if (hl >= 2 && hostport[0] == '[' && hostport[hl - 1] == ']')
        snprintf(r->host, sizeof(r->host), "%.*s", (int)(hl - 2), hostport + 1);
    else
        snprintf(r->host, sizeof(r->host), "%.*s", (int)hl, hostport);
    r->port = atoi(colon + 1);
    pthread_mutex_init(&r->mu, NULL);
    if (pthread_create(&r->th, NULL, subscriber, r) != 0) {
        snprintf(errbuf, errlen, "cannot start the redis thread");
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    r->started = 1;
    return r;
}

void vg_redis_free(vg_redis_t *r) {
    if (!r) return;
    atomic_store(&r->stop, 1);
    if (r->started) pthread_join(r->th, NULL);
    if (r->cmd) redisFree(r->cmd);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- owners of Kafka partitions ---- */

int vg_redis_owner_set(vg_redis_t *r, const char *group, int32_t partition, const char *url) {
    char key[300], field[16];
    snprintf(key, sizeof(key), "vigil:owners:%.250s", group);
    snprintf(field, sizeof(field), "%d", (int)partition);
    const char *argv[] = {"HSET", key, field, url};
    size_t lens[] = {4, strlen(key), strlen(field), strlen(url)};
    if (!atomic_load(&r->up)) return VG_EIO;   /* never waits for a Redis that is down */
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 4, argv, lens);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    freeReplyObject(rep);
    return 0;
}

int vg_redis_owner_get(vg_redis_t *r, const char *group, int32_t partition, char *out,
                       size_t outlen) {
    char key[300], field[16];
    snprintf(key, sizeof(key), "vigil:owners:%.250s", group);
    snprintf(field, sizeof(field), "%d", (int)partition);
    const char *argv[] = {"HGET", key, field};
    size_t lens[] = {4, strlen(key), strlen(field)};
    if (!atomic_load(&r->up)) return VG_EIO;   /* never waits for a Redis that is down */
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 3, argv, lens);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    int rc = VG_ENOTFOUND;
    if (rep->type == REDIS_REPLY_STRING && rep->len > 0 && (size_t)rep->len < outlen) {
        memcpy(out, rep->str, (size_t)rep->len);
        out[rep->len] = 0;
        rc = 0;
    }
    freeReplyObject(rep);
    return rc;
}
