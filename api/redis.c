/* redis.c - the Redis control plane on hiredis (see redis.h).
 *
 * Two connections: `cmd` for writes and reads (mutex-guarded, re-opened on demand with
 * short timeouts, so that a write fails fast with VG_EIO while Redis is down) and the
 * subscriber's, owned by its thread, which polls its socket so that it notices a stop
 * request within 200 ms. Every multi-key change is one Lua script, so that each is
 * atomic and compare-and-set.
 *
 * Module versions: a module's every version is a field of `vigil:versions:<module>`,
 * written with its newest record. sync_module() makes an instance's versions and
 * Redis's the same both ways (the versions Redis has and this instance lacks are
 * stored here, those it has and Redis lost are written back with HSETNX, announced
 * when any was), then applies the newest record; it runs for each notification and
 * for every module at each (re)connection.
 *
 * A Redis that refuses vigil (NOAUTH: it needs a password; WRONGPASS; NOPERM: its ACL)
 * is treated as down, said once in the log and in vg_redis_down_why(); any other error
 * line is logged at most once a minute while it repeats (rlog).
 */
#include "api/redis.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "rules/errors.h"
#include "rules/lists.h"

#define K_RULES "vigil:rules"
#define K_VERSIONS "vigil:versions:"   /* + module */
#define K_RULESET "vigil:ruleset"
#define K_LISTVER "vigil:listver"
#define K_LISTDEL "vigil:listdel"
#define K_LISTCNT "vigil:listcount" /* name -> "VERSION COUNT": the items that version has */
#define K_CHANNEL "vigil:changes"

#define VER_BATCH 64          /* versions fetched or written back by one command */
#define LOG_SLOTS 8           /* distinct error lines remembered for rate limiting */
#define LOG_EVERY_MS 60000    /* an error line repeats in the log at most this often */
#define READ_WAIT_MS 1000     /* an answer to a read or a resynchronisation's command */
#define WRITE_WAIT_MS 10000   /* an answer to a write's script, once it was sent */
#define SYNC_WAIT_MS 3000     /* a write waits this long for a resynchronisation under way */

/* Why writes fail: the reason vg_redis_down_why() gives. */
enum { WHY_DOWN = 0, WHY_NEED_PASSWORD, WHY_BAD_PASSWORD, WHY_NOPERM };

/* Where the subscriber is: writes go on only once it has resynchronised (PH_SYNCED), so
 * that none is made on a Redis that lost what this instance holds before it is written
 * back. */
enum { PH_START = 0, PH_DOWN, PH_SYNCING, PH_SYNCED };

typedef struct log_slot {
    char msg[512];
    int64_t at_ms;            /* last printed (0: free slot) */
    uint64_t repeats;         /* suppressed since */
} log_slot_t;

struct vg_redis {
    vg_api_t *a;
    char host[256];
    int port;
    pthread_mutex_t mu;
    redisContext *cmd;        /* reads and resynchronisation, under mu */
    pthread_mutex_t wmu;
    redisContext *wr;         /* writes' scripts, under wmu (waits longer for an answer) */
    char werr[256];           /* under wmu: the last write's Redis error, for the answer */
    atomic_int up;
    atomic_int phase;         /* PH_* */
    atomic_int need_resync;   /* set by a write that found Redis behind this instance */
    atomic_int stop;
    pthread_t th;
    int started;
    atomic_int why;           /* WHY_*: of the last failure (auth ones logged once) */
    pthread_mutex_t log_mu;
    log_slot_t logs[LOG_SLOTS];
    /* vg_redis_on_sync's hook, under hook_mu (the subscriber calls it with it held, so
     * that unsetting it waits for a call under way) */
    pthread_mutex_t hook_mu;
    void (*on_sync)(void *ctx);
    void *on_sync_ctx;
};

/* A module write (ARGV: module, expected version or -1, record, this instance's version,
 * the ruleset it was compiled against, 1 when the module exists here, 1 when a record
 * with its current source changes nothing). Answers {1, stored record, created, 1 when
 * it replaced a field that was not a module record}, {0, version} (not the expected
 * one), {2, current record} (nothing to change), {3, version} (Redis has an older
 * version than this instance: it lost changes, to be written back first), {4, message}
 * (a key holds something else than vigil writes there), {5, ruleset} (another module
 * changed since this one was compiled: the write is compiled again on the new rules). */
static const char *LUA_PUT_MODULE =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local curv, created, bad, c = 0, 1, 0, nil\n"
    "if cur then\n"
    "  local ok, d = pcall(cjson.decode, cur)\n"
    "  if ok and type(d) == 'table' and type(d['version']) == 'number' then\n"
    "    c = d; curv = d['version']\n"
    "    if d['deleted'] ~= true then created = 0 end\n"
    "  else bad = 1 end\n"
    "end\n"
    "if (not c) and ARGV[6] == '1' then created = 0 end\n"   /* Redis lost it: it exists here */
    "local lv = tonumber(ARGV[4])\n"
    "if bad == 1 then curv = lv end\n"   /* not a record (by hand): this write replaces it */
    "if lv > curv then return {3, tostring(curv)} end\n"
    "local e = tonumber(ARGV[2])\n"
    "if e >= 0 and curv ~= e then return {0, tostring(curv)} end\n"
    "local rec = cjson.decode(ARGV[3])\n"
    "if c and ARGV[7] == '1' and c['deleted'] ~= true and type(rec['source']) == 'string' and\n"
    "   c['source'] == rec['source'] then return {2, cur} end\n"
    "local t = redis.call('TYPE', KEYS[2])['ok']\n"
    "local rs0 = 0\n"
    "if t ~= 'none' then\n"
    "  local x = t == 'string' and redis.call('GET', KEYS[2]) or ''\n"
    "  rs0 = tonumber(x)\n"
    "  if not rs0 or rs0 ~= math.floor(rs0) or rs0 >= 2^53 or rs0 <= -2^53 then\n"
    "    return {4, 'redis key ' .. KEYS[2] .. ' does not hold a ruleset counter (a ' .. t ..\n"
    "            ' ' .. string.sub(x, 1, 40) .. '): set it to the highest ruleset of ' ..\n"
    "            KEYS[1] .. ' or delete it'}\n"
    "  end\n"
    "end\n"
    "local base = tonumber(ARGV[5])\n"
    "if rs0 > base then return {5, tostring(rs0)} end\n"
    /* never reuse a version another instance wrote back after Redis lost the newest */
    "while redis.call('HEXISTS', KEYS[4], tostring(curv + 1)) == 1 do curv = curv + 1 end\n"
    "local rs = base + 1\n"   /* a counter lower than this instance's newest is corrected */
    "redis.call('SET', KEYS[2], rs)\n"
    "rec['version'] = curv + 1\n"
    "rec['ruleset'] = rs\n"
    "local s = cjson.encode(rec)\n"
    "redis.call('HSET', KEYS[1], ARGV[1], s)\n"
    "redis.call('HSET', KEYS[4], tostring(curv + 1), s)\n"
    "redis.call('PUBLISH', KEYS[3], 'rules:' .. ARGV[1])\n"
    "return {1, s, created, bad}\n";

/* Writes back this instance's newest record of a module when Redis's is older, lost, or
 * not a module record. 0: nothing written; 1: written; 2: written over a field that was
 * not a module record. */
static const char *LUA_PUSH_MODULE =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local curv, bad = 0, 0\n"
    "if cur then\n"
    "  local ok, d = pcall(cjson.decode, cur)\n"
    "  if ok and type(d) == 'table' and type(d['version']) == 'number' then curv = d['version']\n"
    "  else bad = 1 end\n"
    "end\n"
    "if curv >= tonumber(ARGV[3]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('HSETNX', KEYS[4], ARGV[3], ARGV[2])\n"
    "if redis.call('TYPE', KEYS[2])['ok'] ~= 'hash' then\n"
    "  local rs = tonumber(redis.call('GET', KEYS[2]) or '0')\n"   /* garbage: the next write says */
    "  if rs and rs < tonumber(ARGV[4]) then redis.call('SET', KEYS[2], ARGV[4]) end\n"
    "end\n"
    "redis.call('PUBLISH', KEYS[3], 'rules:' .. ARGV[1])\n"
    "return 1 + bad\n";

/* writes back versions Redis lacks (ARGV: module, then version, record pairs); the
 * other instances are told when any was missing, so that they fetch it too */
static const char *LUA_PUSH_VERSIONS =
    "local added = 0\n"
    "for i = 2, #ARGV - 1, 2 do\n"
    "  added = added + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])\n"
    "end\n"
    "if added > 0 then redis.call('PUBLISH', KEYS[2], 'rules:' .. ARGV[1]) end\n"
    "return added\n";

/* A list write. Answers {1, version, created}, {0, version} (not the expected one),
 * {2, version} (nothing to change), {3, version} (Redis has an older version than this
 * instance, or lost the items of the version this instance holds: to be written back
 * first), {4, 0, 0, message} (a key holds something else than vigil writes there).
 * KEYS[5] (vigil:listcount) gets "VERSION COUNT" of the list written. */
static const char *LUA_LIST_OP =
    "local lt = redis.call('TYPE', KEYS[1])['ok']\n"
    "if lt ~= 'set' and lt ~= 'none' then\n"
    "  return {4, 0, 0, 'redis key ' .. KEYS[1] .. ' is a ' .. lt .. ', not a set of items: ' ..\n"
    "          'delete it (the list is written again from the instances)'}\n"
    "end\n"
    "local vs = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "local v = tonumber(vs or '0')\n"
    "if not v or v ~= math.floor(v) or v < 0 or v >= 2^53 then\n"
    "  return {4, 0, 0, 'redis hash ' .. KEYS[2] .. ' field ' .. ARGV[1] ..\n"
    "          ' is not a list version (' .. string.sub(vs, 1, 40) .. ')'}\n"
    "end\n"
    "local lv = tonumber(ARGV[4])\n"
    "if lv > v then return {3, v, 0} end\n"
    "local gone = redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1\n"
    /* the set lost (evicted, deleted by hand) while its version stayed: this instance,
     * which holds that version, writes it back first */
    "local cs = redis.call('HGET', KEYS[5], ARGV[1])\n"
    "if lv == v and v > 0 and not gone and cs then\n"
    "  local cv, cn = string.match(cs, '^(%d+) (%d+)$')\n"
    "  if tonumber(cv) == v and tonumber(cn) ~= redis.call('SCARD', KEYS[1]) then\n"
    "    return {3, v, 0}\n"
    "  end\n"
    "end\n"
    "local e = tonumber(ARGV[2])\n"
    "if e >= 0 and v ~= e then return {0, v, 0} end\n"
    "local op = ARGV[3]\n"
    /* nothing to change (the list is there, current, and has exactly those items, or
     * the item): the version stays */
    "if v > 0 and not gone then\n"
    "  if op == 'add' and redis.call('SISMEMBER', KEYS[1], ARGV[6]) == 1 then\n"
    "    return {2, v, 0}\n"
    "  end\n"
    "  if op == 'put' then\n"
    "    local seen, u, same = {}, 0, true\n"
    "    for i = 6, #ARGV do\n"
    "      if not seen[ARGV[i]] then seen[ARGV[i]] = true; u = u + 1 end\n"
    "      if same and redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then same = false end\n"
    "    end\n"
    "    if same and redis.call('SCARD', KEYS[1]) == u then return {2, v, 0} end\n"
    "  end\n"
    "end\n"
    /* made by this write: no list in Redis (nor here), or a deleted one */
    "local created = 0\n"
    "if (op == 'put' or op == 'add') and (gone or (v == 0 and ARGV[5] ~= '1')) then\n"
    "  created = 1\n"
    "end\n"
    "if op == 'put' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  for i = 6, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end\n"
    "  redis.call('SREM', KEYS[3], ARGV[1])\n"
    "elseif op == 'add' then\n"
    "  redis.call('SADD', KEYS[1], ARGV[6])\n"
    "  redis.call('SREM', KEYS[3], ARGV[1])\n"
    "elseif op == 'rem' then redis.call('SREM', KEYS[1], ARGV[6])\n"
    "elseif op == 'del' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('SADD', KEYS[3], ARGV[1])\n"
    "end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], v + 1)\n"
    "redis.call('HSET', KEYS[5], ARGV[1], (v + 1) .. ' ' .. redis.call('SCARD', KEYS[1]))\n"
    "redis.call('PUBLISH', KEYS[4], 'list:' .. ARGV[1])\n"
    "return {1, v + 1, created}\n";

/* {version, deleted, items, count}: count is the number of items that version has
 * (vigil:listcount), -1 when not known (written by an older vigil, or for another version) */
static const char *LUA_FETCH_LIST =
    "local v = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')\n"
    "local n, cs = -1, redis.call('HGET', KEYS[4], ARGV[1])\n"
    "if cs and v then\n"
    "  local cv, cn = string.match(cs, '^(%d+) (%d+)$')\n"
    "  if tonumber(cv) == v then n = tonumber(cn) end\n"
    "end\n"
    "return {v, redis.call('SISMEMBER', KEYS[3], ARGV[1]), redis.call('SMEMBERS', KEYS[1]), n}\n";

/* Writes back this instance's list (ARGV: name, version, deleted, items) when Redis has
 * an older version, or the same one with its items lost (vigil:listcount says how many
 * it has). 0: nothing written; 1: written (older); 2: written (items lost). */
static const char *LUA_PUSH_LIST =
    "local v = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')\n"
    "local lv, res = tonumber(ARGV[2]), 1\n"
    "if v > lv then return 0 end\n"
    "if v == lv then\n"
    "  local cs = redis.call('HGET', KEYS[5], ARGV[1])\n"
    "  if ARGV[3] == '1' or not cs or redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then\n"
    "    return 0\n"
    "  end\n"
    "  local cv, cn = string.match(cs, '^(%d+) (%d+)$')\n"
    "  if tonumber(cv) ~= v or tonumber(cn) == redis.call('SCARD', KEYS[1]) then return 0 end\n"
    "  res = 2\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "if ARGV[3] == '1' then redis.call('SADD', KEYS[3], ARGV[1])\n"
    "else\n"
    "  for i = 4, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end\n"
    "  redis.call('SREM', KEYS[3], ARGV[1])\n"
    "end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "redis.call('HSET', KEYS[5], ARGV[1], ARGV[2] .. ' ' .. redis.call('SCARD', KEYS[1]))\n"
    "redis.call('PUBLISH', KEYS[4], 'list:' .. ARGV[1])\n"
    "return res\n";

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs "vigil serve: <message>", but a line that was logged less than a minute ago is
 * only counted (said with its next appearance): a Redis that answers every retry with
 * the same error would fill the log ~10 times a second. Can't fail. */
static void rlog(vg_redis_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rlog(vg_redis_t *r, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int64_t now = mono_ms();
    uint64_t repeats = 0;
    pthread_mutex_lock(&r->log_mu);
    int slot = -1, oldest = 0;
    for (int i = 0; i < LOG_SLOTS && slot < 0; i++) {
        if (r->logs[i].at_ms && strcmp(r->logs[i].msg, msg) == 0) slot = i;
        else if (r->logs[i].at_ms < r->logs[oldest].at_ms) oldest = i;
    }
    if (slot >= 0 && now - r->logs[slot].at_ms < LOG_EVERY_MS) {
        r->logs[slot].repeats++;
        pthread_mutex_unlock(&r->log_mu);
        return;
    }
    if (slot >= 0) repeats = r->logs[slot].repeats;
    else slot = oldest;
    memcpy(r->logs[slot].msg, msg, sizeof(msg));
    r->logs[slot].at_ms = now;
    r->logs[slot].repeats = 0;
    pthread_mutex_unlock(&r->log_mu);
    if (repeats)
        fprintf(stderr, "vigil serve: %s (%llu more time%s since this line was last logged)\n",
                msg, (unsigned long long)repeats, repeats == 1 ? "" : "s");
    else
        fprintf(stderr, "vigil serve: %s\n", msg);
}

/* An error answer that means Redis refuses vigil rather than one command: NOAUTH (it
 * needs a password), WRONGPASS or another answer to AUTH, NOPERM (the user's ACL).
 * Sets the reason writes give and logs it once, until it changes. Returns 1 for those,
 * 0 for any other error (logged, rate-limited). */
static int refused(vg_redis_t *r, const char *err, int to_auth) {
    const vg_config_t *cfg = r->a->cfg;
    int why;
    if (strncmp(err, "NOAUTH", 6) == 0 && !cfg->redis_password) why = WHY_NEED_PASSWORD;
    else if (to_auth || strncmp(err, "WRONGPASS", 9) == 0 || strncmp(err, "NOAUTH", 6) == 0)
        why = WHY_BAD_PASSWORD;
    else if (strncmp(err, "NOPERM", 6) == 0) why = WHY_NOPERM;
    else {
        rlog(r, "redis %s:%d: %s", r->host, r->port, err);
        return 0;
    }
    if (atomic_exchange(&r->why, why) == why) return 1;
    if (why == WHY_NEED_PASSWORD)
        fprintf(stderr, "vigil serve: redis %s:%d needs a password (%s): set redis-password (in "
                        "the config file or VIGIL_REDIS_PASSWORD); until then it is treated as "
                        "down: serving from the local copy, rule and list writes answer 503\n",
                r->host, r->port, err);
    else if (why == WHY_BAD_PASSWORD)
        fprintf(stderr, "vigil serve: redis %s:%d refused the password%s%s: %s (treated as "
                        "down until it takes it)\n", r->host, r->port,
                cfg->redis_user ? " of user " : "", cfg->redis_user ? cfg->redis_user : "", err);
    else
        fprintf(stderr, "vigil serve: redis %s:%d refuses a command to %s%s: %s (its ACL must "
                        "allow vigil's commands on the keys vigil:* and the channel "
                        "vigil:changes; writes answer 503 until it does)\n", r->host, r->port,
                cfg->redis_user ? "user " : "the default user",
                cfg->redis_user ? cfg->redis_user : "", err);
    return 1;
}

/* Connects and authenticates (AUTH [user] password when a password is set, else a
 * PING, so that a Redis that needs a password is known at once). NULL when Redis is
 * down or refuses, with the reason in why. */
static redisContext *connect_to(vg_redis_t *r, int timeout_ms, char *why, size_t whylen) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!c || c->err) {
        snprintf(why, whylen, "%s", c ? c->errstr : "out of memory");
        redisFree(c);
        atomic_store(&r->why, WHY_DOWN);
        return NULL;
    }
    struct timeval rtv = {1, 0};   /* the answer to AUTH or PING */
    redisSetTimeout(c, rtv);
    const vg_config_t *cfg = r->a->cfg;
    redisReply *rep;
    if (!cfg->redis_password) rep = redisCommand(c, "PING");
    else if (cfg->redis_user)
        rep = redisCommand(c, "AUTH %s %s", cfg->redis_user, cfg->redis_password);
    else rep = redisCommand(c, "AUTH %s", cfg->redis_password);
    int ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (!rep) {
        snprintf(why, whylen, "%s", c->errstr[0] ? c->errstr : "no answer");
        atomic_store(&r->why, WHY_DOWN);
    } else if (!ok) {
        snprintf(why, whylen, "%s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected answer");
        if (rep->type != REDIS_REPLY_ERROR || !refused(r, rep->str, cfg->redis_password != NULL))
            atomic_store(&r->why, WHY_DOWN);   /* LOADING, ...: down for now */
    }
    freeReplyObject(rep);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    /* it takes us: a refused password is over (a NOPERM is over once a write passes) */
    int w = WHY_NEED_PASSWORD;
    if (!atomic_compare_exchange_strong(&r->why, &w, WHY_DOWN)) {
        w = WHY_BAD_PASSWORD;
        atomic_compare_exchange_strong(&r->why, &w, WHY_DOWN);
    }
    return c;
}

const char *vg_redis_down_why(vg_redis_t *r) {
    switch (atomic_load(&r->why)) {
    case WHY_NEED_PASSWORD: return "Redis needs a password (set redis-password)";
    case WHY_BAD_PASSWORD: return "Redis refuses the password (redis-password)";
    case WHY_NOPERM: return "Redis refuses vigil's commands (NOPERM: the ACL of redis-user)";
    default: return "Redis is down";
    }
}

/* 1 when an idle connection still looks usable: nothing to read (a connection Redis
 * closed, killed or restarted, reads as end of file; no answer is ever pending here). */
static int idle_ok(redisContext *c) {
    struct pollfd pf = {c->fd, POLLIN, 0};
    return poll(&pf, 1, 0) == 0;
}

/* Runs a command on *slot (its mutex held), connecting first when needed, and waits
 * wait_ms for the answer. Returns the reply, or NULL with *rc: VG_EIO when the command
 * was not sent (Redis is down, or refuses vigil), VG_ETIMEOUT when it was sent but no
 * answer came (the connection is dropped: whether Redis ran it is unknown), VG_EREMOTE
 * when Redis answered an error (in err, without the script's name; logged,
 * rate-limited). An answer that refuses vigil drops the connection, so that the next
 * one authenticates. */
static redisReply *exec(vg_redis_t *r, redisContext **slot, int wait_ms, int argc,
                        const char **argv, const size_t *lens, int *rc, char *err, size_t errlen) {
    *rc = 0;
    if (err && errlen) err[0] = 0;
    if (*slot && ((*slot)->err || !idle_ok(*slot))) {
        redisFree(*slot);
        *slot = NULL;
    }
    if (!*slot) {
        char why[256];
        *slot = connect_to(r, 300, why, sizeof(why));
        if (!*slot) {
            atomic_store(&r->up, 0);
            *rc = VG_EIO;
            return NULL;
        }
    }
    redisContext *c = *slot;
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    redisSetTimeout(c, tv);
    int done = 0;
    if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK) done = -1;
    while (done == 0)   /* an incomplete command is never run by Redis */
        if (redisBufferWrite(c, &done) != REDIS_OK) done = -1;
    void *reply = NULL;
    if (done < 0) {
        *rc = VG_EIO;
    } else if (redisGetReply(c, &reply) != REDIS_OK || !reply) {
        *rc = VG_ETIMEOUT;
        rlog(r, "redis %s:%d: no answer within %d ms (%s); connection dropped", r->host, r->port,
             wait_ms, c->errstr[0] ? c->errstr : "no answer");
    }
    if (*rc) {
        atomic_store(&r->up, 0);
        atomic_store(&r->why, WHY_DOWN);
        redisFree(*slot);
        *slot = NULL;
        return NULL;
    }
    redisReply *rep = reply;
    if (rep->type == REDIS_REPLY_ERROR) {
        if (refused(r, rep->str, 0)) {
            if (strncmp(rep->str, "NOPERM", 6) != 0) {
                redisFree(*slot);
                *slot = NULL;
            }
            *rc = VG_EIO;
        } else {
            *rc = VG_EREMOTE;
            if (err && errlen) {
                const char *cut = strstr(rep->str, " script: ");   /* EVAL's sha and line */
                int n = cut ? (int)(cut - rep->str) : (int)strlen(rep->str);
                snprintf(err, errlen, "%.*s", n, rep->str);
            }
        }
        freeReplyObject(rep);
        return NULL;
    }
    atomic_store(&r->up, 1);
    return rep;
}

/* Runs a command on the read connection (r->mu held). NULL when Redis is down, slow or
 * answered an error (see exec). */
static redisReply *command(vg_redis_t *r, int argc, const char **argv, const size_t *lens) {
    int rc;
    return exec(r, &r->cmd, READ_WAIT_MS, argc, argv, lens, &rc, NULL, 0);
}

/* A write went through: a NOPERM that refused writes is over. */
static void write_passed(vg_redis_t *r) {
    int w = WHY_NOPERM;
    atomic_compare_exchange_strong(&r->why, &w, WHY_DOWN);
}

/* EVAL of script on *slot (its mutex held): exec's contract. */
static redisReply *eval_on(vg_redis_t *r, redisContext **slot, int wait_ms, const char *script,
                           int nkeys, const char **keys, int nargs, const char **args,
                           const size_t *arglens, int *rc, char *err, size_t errlen) {
    int argc = 3 + nkeys + nargs;
    const char **argv = calloc((size_t)argc, sizeof(*argv));
    size_t *lens = calloc((size_t)argc, sizeof(*lens));
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    redisReply *rep = NULL;
    *rc = VG_ENOMEM;
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
        rep = exec(r, slot, wait_ms, argc, argv, lens, rc, err, errlen);
    }
    free(argv);
    free(lens);
    return rep;
}

/* EVAL on the read connection (r->mu held): NULL on any failure. */
static redisReply *eval(vg_redis_t *r, const char *script, int nkeys, const char **keys,
                        int nargs, const char **args, const size_t *arglens) {
    int rc;
    return eval_on(r, &r->cmd, READ_WAIT_MS, script, nkeys, keys, nargs, args, arglens, &rc,
                   NULL, 0);
}

/* Waits for the subscriber's resynchronisation while one is under way (at most
 * SYNC_WAIT_MS): a write made before this instance has written back what Redis lost
 * would build on Redis's stale copy. 0 when synchronised, VG_EIO while Redis is down
 * (at once), VG_EAGAIN when the resynchronisation takes longer. */
static int writable(vg_redis_t *r) {
    int64_t until = mono_ms() + SYNC_WAIT_MS;
    for (;;) {
        int ph = atomic_load(&r->phase);
        if (ph == PH_SYNCED) return 0;
        if (ph == PH_DOWN) return VG_EIO;
        if (mono_ms() >= until) return VG_EAGAIN;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Redis has an older version than this instance: it lost changes (restarted from an old
 * snapshot) before the subscriber noticed. Asks it to resynchronise now. */
static void behind(vg_redis_t *r) {
    int ph = PH_SYNCED;
    atomic_compare_exchange_strong(&r->phase, &ph, PH_SYNCING);
    atomic_store(&r->need_resync, 1);
}

void vg_redis_last_error(vg_redis_t *r, char *buf, size_t len) {
    pthread_mutex_lock(&r->wmu);
    snprintf(buf, len, "%s", r->werr[0] ? r->werr : "unknown error");
    pthread_mutex_unlock(&r->wmu);
}

void vg_redis_answer(vg_redis_t *r, vg_resp_t *resp, int rc, const char *what) {
    if (rc == VG_EIO) {
        resp->retry_after = 1;
        vg_resp_error(resp, 503, "unavailable", "%s: %s changes are refused until it is back "
                      "(scoring goes on)", vg_redis_down_why(r), what);
    } else if (rc == VG_EAGAIN) {
        resp->retry_after = 1;
        vg_resp_error(resp, 503, "unavailable", "Redis is being resynchronised with this "
                      "instance (it lost changes, which are written back first); the %s change "
                      "was not made: retry", what);
    } else if (rc == VG_ETIMEOUT) {
        vg_resp_error(resp, 504, "redis_timeout", "the %s change was sent to Redis, which did "
                      "not answer within %d s: whether it was made is unknown; read it back "
                      "before retrying", what, WRITE_WAIT_MS / 1000);
    } else if (rc == VG_EREMOTE) {
        char e[256];
        vg_redis_last_error(r, e, sizeof(e));
        vg_resp_error(resp, 500, "redis_error", "Redis refused the %s change: %s", what, e);
    } else {
        vg_resp_error(resp, 500, "internal", "Redis: %s", vg_strerror(rc));
    }
}

int vg_redis_up(vg_redis_t *r) { return r && atomic_load(&r->up); }

int vg_redis_put_module(vg_redis_t *r, const char *name, int64_t expect, const char *record,
                        int64_t base, int same_ok, char **stored, int64_t *current,
                        int *created, int *unchanged) {
    *stored = NULL;
    *created = 0;
    *unchanged = 0;
    *current = 0;
    char e[24], lv[24], lrs[24], vkey[300];
    snprintf(e, sizeof(e), "%lld", (long long)expect);
    snprintf(lrs, sizeof(lrs), "%lld", (long long)base);
    snprintf(vkey, sizeof(vkey), K_VERSIONS "%s", name);
    const char *keys[4] = {K_RULES, K_RULESET, K_CHANNEL, vkey};
    int rc = VG_EIO;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = writable(r);
        if (rc) return rc;
        int64_t local = 0;
        int exists = 0;
        pthread_mutex_lock(&r->a->mu);
        for (int i = 0; i < r->a->nmods; i++)
            if (strcmp(r->a->mods[i].name, name) == 0) {
                local = r->a->mods[i].version;
                exists = !r->a->mods[i].deleted;
            }
        pthread_mutex_unlock(&r->a->mu);
        snprintf(lv, sizeof(lv), "%lld", (long long)local);
        const char *args[7] = {name, e, record, lv, lrs, exists ? "1" : "0", same_ok ? "1" : "0"};
        pthread_mutex_lock(&r->wmu);
        redisReply *rep = eval_on(r, &r->wr, WRITE_WAIT_MS, LUA_PUT_MODULE, 4, keys, 7, args,
                                  NULL, &rc, r->werr, sizeof(r->werr));
        pthread_mutex_unlock(&r->wmu);
        if (!rep) {
            if (rc == VG_ETIMEOUT)
                rlog(r, "redis: the change of module %s was sent but Redis did not answer within "
                        "%d s: whether it was made is unknown (answered 504)", name,
                     WRITE_WAIT_MS / 1000);
            return rc;
        }
        rc = VG_EIO;
        long long st = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
                               rep->element[0]->type == REDIS_REPLY_INTEGER
                           ? rep->element[0]->integer : -1;
        const char *s1 = st >= 0 ? rep->element[1]->str : NULL;
        if ((st == 1 && s1 && rep->elements == 4) || (st == 2 && s1)) {
            *stored = strdup(s1);
            *created = st == 1 && rep->element[2]->integer == 1;
            *unchanged = st == 2;
            rc = *stored ? 0 : VG_ENOMEM;
            if (st == 1 && rep->element[3]->integer == 1)
                rlog(r, "redis: %s field %s was not a module record; replaced by this "
                        "instance's change of the module", K_RULES, name);
        } else if ((st == 0 || st == 3 || st == 5) && s1) {
            *current = strtoll(s1, NULL, 10);
            rc = st == 0 ? VG_EMISMATCH : st == 3 ? VG_EAGAIN : VG_ESTALE;
        } else if (st == 4 && s1) {
            pthread_mutex_lock(&r->wmu);
            snprintf(r->werr, sizeof(r->werr), "%s", s1);
            pthread_mutex_unlock(&r->wmu);
            rlog(r, "redis: %s", s1);
            rc = VG_EREMOTE;
        }
        freeReplyObject(rep);
        write_passed(r);
        if (rc != VG_EAGAIN) break;
        behind(r);   /* written back by the subscriber; then once more */
    }
    return rc;
}

/* The version of list `name` held here (0: none). */
static int64_t local_list_version(vg_api_t *a, const char *name) {
    int64_t v = 0;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->nlists; i++)
        if (strcmp(a->lists[i].name, name) == 0) v = a->lists[i].version;
    pthread_mutex_unlock(&a->mu);
    return v;
}

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Whether this instance holds version `v` of list `name` with exactly items[0..n)
 * (deleted alike): 1 same, 0 same version with other items, -1 another version (or
 * none, or no memory to tell). Sorts items. */
static int list_same(vg_api_t *a, const char *name, int64_t v, char **items, size_t n, int del) {
    qsort(items, n, sizeof(*items), cmp_str);
    size_t u = 0;   /* Redis's set has no duplicates; the API's are made unique too */
    for (size_t i = 0; i < n; i++)
        if (!u || strcmp(items[u - 1], items[i]) != 0) items[u++] = items[i];
    int res = -1;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->nlists; i++) {
        vg_list_t *x = &a->lists[i];
        if (strcmp(x->name, name) != 0 || x->version != v) continue;
        res = 0;
        if (x->deleted || del) {
            res = x->deleted && del;
            break;
        }
        if (x->n != u) break;
        char **mine = malloc((x->n + 1) * sizeof(*mine));
        if (!mine) {
            res = -1;
            break;
        }
        memcpy(mine, x->items, x->n * sizeof(*mine));
        qsort(mine, x->n, sizeof(*mine), cmp_str);
        res = 1;
        for (size_t k = 0; k < u && res; k++) res = strcmp(mine[k], items[k]) == 0;
        free(mine);
        break;
    }
    pthread_mutex_unlock(&a->mu);
    return res;
}

/* Reads list `name` from Redis and installs it locally: on the read connection (r->mu
 * not held), or on_wr on the write connection (r->wmu held: right after a write, with
 * the write's patience). */
static int sync_list_on(vg_redis_t *r, const char *name, int on_wr) {
    char why[160];
    if (vg_lists_check_name(name, strlen(name), why, sizeof why)) {   /* written by hand */
        rlog(r, "redis: list \"%.128s\" left out: the name %s", name, why);
        return 0;
    }
    char key[300];
    snprintf(key, sizeof(key), "vigil:list:%s", name);
    const char *keys[4] = {key, K_LISTVER, K_LISTDEL, K_LISTCNT};
    const char *args[1] = {name};
    redisReply *rep;
    int erc;
    if (on_wr) {
        rep = eval_on(r, &r->wr, WRITE_WAIT_MS, LUA_FETCH_LIST, 4, keys, 1, args, NULL, &erc,
                      NULL, 0);
    } else {
        pthread_mutex_lock(&r->mu);
        rep = eval(r, LUA_FETCH_LIST, 4, keys, 1, args, NULL);
        pthread_mutex_unlock(&r->mu);
    }
    if (!rep) return VG_EIO;
    int rc = VG_EIO;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 4) {
        int64_t v = rep->element[0]->integer;
        long long cnt = rep->element[3]->integer;
        int del = rep->element[1]->integer == 1;
        redisReply *m = rep->element[2];
        char **items = calloc(m->elements + 1, sizeof(*items));
        if (items) {
            /* items are matched against event strings: UTF-8 of 1..1024 bytes, as the
             * API takes them; anything else written to Redis by hand is left out, said */
            size_t k = 0, bad = 0;
            for (size_t i = 0; i < m->elements; i++) {
                redisReply *e = m->element[i];
                if (e->type == REDIS_REPLY_STRING &&
                    vg_lists_check_item(e->str, e->len, why, sizeof why) == 0)
                    items[k++] = e->str;
                else
                    bad++;
            }
            if (bad)
                rlog(r, "redis: list %s: %zu item(s) left out (not UTF-8 text of 1..1024 "
                        "bytes)", name, bad);
            if (v <= 0 && m->elements)
                rlog(r, "redis: list %s has items but no version in %s; ignored (change "
                        "lists through the API)", name, K_LISTVER);
            if (v > 0 && !del && cnt >= 0 && (size_t)cnt != m->elements) {
                /* its items were lost from Redis (evicted, deleted by hand) while the
                 * version stayed: not installed; an instance holding that version writes
                 * them back at its resynchronisation (this one now, if it holds it) */
                int64_t lv = local_list_version(r->a, name);
                rlog(r, "redis: list %s version %lld: Redis holds %zu of its %lld items (lost "
                        "from Redis); not installed%s", name, (long long)v, m->elements, cnt,
                     lv == v ? ", written back from this instance"
                             : ", waiting for an instance that holds it to write it back");
                if (lv == v && !on_wr) behind(r);
                rc = 0;
            } else if (v > 0) {
                int same = list_same(r->a, name, v, items, k, del);
                if (same == 0)
                    rlog(r, "redis: list %s version %lld: this instance held other items under "
                            "that version; replaced by Redis's (%zu items), which every "
                            "instance reads", name, (long long)v, k);
                rc = same == 1 ? 0 : vg_api_apply_list(r->a, name, v, items, k, del);
            } else {
                rc = 0;
            }
            free(items);
        }
    }
    freeReplyObject(rep);
    return rc;
}

static int sync_list(vg_redis_t *r, const char *name) { return sync_list_on(r, name, 0); }

int vg_redis_list_op(vg_redis_t *r, const char *name, int64_t expect, const char *op,
                     char **items, size_t n, int64_t *version, int *unchanged, int *created) {
    *unchanged = 0;
    *created = 0;
    char key[300], e[24], lv[24];
    snprintf(key, sizeof(key), "vigil:list:%s", name);
    snprintf(e, sizeof(e), "%lld", (long long)expect);
    const char *keys[5] = {key, K_LISTVER, K_LISTDEL, K_CHANNEL, K_LISTCNT};
    const char **args = calloc(n + 5, sizeof(*args));
    if (!args) return VG_ENOMEM;
    int rc = VG_EIO;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = writable(r);
        if (rc) break;
        int64_t local = 0;
        int exists = 0;
        pthread_mutex_lock(&r->a->mu);
        for (int i = 0; i < r->a->nlists; i++)
            if (strcmp(r->a->lists[i].name, name) == 0) {
                local = r->a->lists[i].version;
                exists = !r->a->lists[i].deleted;
            }
        pthread_mutex_unlock(&r->a->mu);
        snprintf(lv, sizeof(lv), "%lld", (long long)local);
        args[0] = name;
        args[1] = e;
        args[2] = op;
        args[3] = lv;
        args[4] = exists ? "1" : "0";
        for (size_t i = 0; i < n; i++) args[5 + i] = items[i];
        pthread_mutex_lock(&r->wmu);
        redisReply *rep = eval_on(r, &r->wr, WRITE_WAIT_MS, LUA_LIST_OP, 5, keys, (int)(n + 5),
                                  args, NULL, &rc, r->werr, sizeof(r->werr));
        if (!rep) {
            pthread_mutex_unlock(&r->wmu);
            if (rc == VG_ETIMEOUT)
                rlog(r, "redis: the change of list %s was sent but Redis did not answer within "
                        "%d s: whether it was made is unknown (answered 504)", name,
                     WRITE_WAIT_MS / 1000);
            break;
        }
        long long st = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 &&
                               rep->element[0]->type == REDIS_REPLY_INTEGER
                           ? rep->element[0]->integer : -1;
        rc = VG_EIO;
        if (st == 4 && rep->elements == 4 && rep->element[3]->str) {
            snprintf(r->werr, sizeof(r->werr), "%s", rep->element[3]->str);
            rlog(r, "redis: %s", rep->element[3]->str);
            rc = VG_EREMOTE;
        } else if (st >= 0) {
            *version = rep->element[1]->integer;
            rc = st == 1 || st == 2 ? 0 : st == 3 ? VG_EAGAIN : VG_EMISMATCH;
            *unchanged = st == 2;
            *created = st == 1 && rep->element[2]->integer == 1;
        }
        freeReplyObject(rep);
        /* the change is made: the local copy follows now, with the write's patience (a
         * failure here is no failure of the change: its notification brings it too) */
        if (rc == 0) sync_list_on(r, name, 1);
        pthread_mutex_unlock(&r->wmu);
        write_passed(r);
        if (rc != VG_EAGAIN) break;
        behind(r);   /* written back by the subscriber; then once more */
    }
    free(args);
    return rc;
}

/* ---- module versions --------------------------------------------------------------- */

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

typedef struct vlist {
    int64_t *v;
    size_t n, cap;
} vlist_t;

static int vlist_add(vlist_t *l, int64_t v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        int64_t *nv = realloc(l->v, cap * sizeof(*nv));
        if (!nv) return VG_ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}

static int local_ver_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)v;
    (void)vl;
    return kl >= 8 ? vlist_add(ctx, (int64_t)vg_rd_be64((const unsigned char *)k + kl - 8)) : 0;
}

/* The versions of module `name` in the local copy, in order. 0 or an error. */
static int local_versions(vg_redis_t *r, const char *name, vlist_t *out) {
    unsigned char pre[VG_CTL_VKEY_MAX];
    size_t pl = vg_ctl_version_key(pre, name, 0);
    if (!pl) return VG_EINVAL;
    int rc = vg_ctl_scan(r->a->ctl, pre, pl - 8, NULL, 0, local_ver_cb, out);
    return rc < 0 ? rc : 0;
}

/* Stores version `v` of module `name` (a record from vigil:versions:<name>) in the local
 * copy, unless it is there or is not that version's module record (reported). The
 * module's newest record is vg_api_apply_module's to install: this writes only the
 * version. 0 or an error. */
static int store_version(vg_redis_t *r, const char *name, int64_t v, const char *rec, size_t len) {
    json_t *j = json_loadb(rec, len, 0, NULL);
    const char *m = json_string_value(json_object_get(j, "module"));
    json_t *ver = json_object_get(j, "version");
    int good = m && strcmp(m, name) == 0 && json_is_integer(ver) && json_integer_value(ver) == v &&
               (json_is_true(json_object_get(j, "deleted")) ||
                json_is_string(json_object_get(j, "source")));
    json_decref(j);
    if (!good) {
        rlog(r, "redis: %s%s field %lld is not version %lld of module %s; ignored", K_VERSIONS,
             name, (long long)v, (long long)v, name);
        return 0;
    }
    unsigned char key[VG_CTL_VKEY_MAX];
    size_t kl = vg_ctl_version_key(key, name, v);
    vg_buf_t b;
    vg_buf_init(&b);
    int rc = vg_ctl_get(r->a->ctl, key, kl, &b);
    vg_buf_deinit(&b);
    if (rc == VG_ENOTFOUND) rc = vg_ctl_put(r->a->ctl, key, kl, rec, len);
    return rc;
}

/* HMGET of versions v[0..k) (k <= VER_BATCH) of the hash vkey: the reply (an array in
 * that order), or NULL with Redis down. */
static redisReply *hmget_versions(vg_redis_t *r, const char *vkey, const int64_t *v, size_t k) {
    const char *argv[2 + VER_BATCH];
    char num[VER_BATCH][24];
    argv[0] = "HMGET";
    argv[1] = vkey;
    for (size_t i = 0; i < k; i++) {
        snprintf(num[i], sizeof(num[i]), "%lld", (long long)v[i]);
        argv[2 + i] = num[i];
    }
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, (int)(2 + k), argv, NULL);
    pthread_mutex_unlock(&r->mu);
    return rep;
}

/* Fetches versions want[0..n) of module `name` from Redis into the local copy. */
static int fetch_versions(vg_redis_t *r, const char *name, const char *vkey, const int64_t *want,
                          size_t n) {
    int rc = 0;
    for (size_t at = 0; at < n && !rc; at += VER_BATCH) {
        size_t k = n - at < VER_BATCH ? n - at : VER_BATCH;
        redisReply *rep = hmget_versions(r, vkey, want + at, k);
        if (!rep) return VG_EIO;
        for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && i < k && !rc; i++)
            if (rep->element[i]->type == REDIS_REPLY_STRING)
                rc = store_version(r, name, want[at + i], rep->element[i]->str,
                                   rep->element[i]->len);
        freeReplyObject(rep);
    }
    return rc;
}

/* Writes versions have[0..n) of module `name` from the local copy back to Redis (each
 * only where Redis lacks it). */
static int push_versions(vg_redis_t *r, const char *name, const char *vkey, const int64_t *have,
                         size_t n) {
    int rc = 0;
    for (size_t at = 0; at < n && !rc; at += VER_BATCH) {
        size_t k = n - at < VER_BATCH ? n - at : VER_BATCH, na = 1;
        const char *args[1 + 2 * VER_BATCH];
        size_t lens[1 + 2 * VER_BATCH];
        char num[VER_BATCH][24];
        vg_buf_t recs[VER_BATCH];
        args[0] = name;
        lens[0] = strlen(name);
        for (size_t i = 0; i < k; i++) {
            vg_buf_init(&recs[i]);
            unsigned char key[VG_CTL_VKEY_MAX];
            size_t kl = vg_ctl_version_key(key, name, have[at + i]);
            if (vg_ctl_get(r->a->ctl, key, kl, &recs[i]) != 0) continue;
            snprintf(num[i], sizeof(num[i]), "%lld", (long long)have[at + i]);
            args[na] = num[i];
            lens[na++] = strlen(num[i]);
            args[na] = recs[i].p;
            lens[na++] = recs[i].len;
        }
        const char *keys[2] = {vkey, K_CHANNEL};
        if (na > 1) {
            pthread_mutex_lock(&r->mu);
            redisReply *rep = eval(r, LUA_PUSH_VERSIONS, 2, keys, (int)na, args, lens);
            pthread_mutex_unlock(&r->mu);
            if (!rep) rc = VG_EIO;
            freeReplyObject(rep);
        }
        for (size_t i = 0; i < k; i++) vg_buf_deinit(&recs[i]);
    }
    return rc;
}

/* Versions same[0..n) of module `name`, which Redis and this instance both hold: where
 * Redis's record has another source (two instances made that version while Redis had
 * lost the other's), Redis's replaces this instance's, logged with the replaced source.
 * At a resynchronisation only (it reads every version). */
static int compare_versions(vg_redis_t *r, const char *name, const char *vkey,
                            const int64_t *same, size_t n) {
    for (size_t at = 0; at < n; at += VER_BATCH) {
        size_t k = n - at < VER_BATCH ? n - at : VER_BATCH;
        redisReply *rep = hmget_versions(r, vkey, same + at, k);
        if (!rep) return VG_EIO;
        for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && i < k; i++) {
            redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_STRING) continue;
            unsigned char key[VG_CTL_VKEY_MAX];
            size_t kl = vg_ctl_version_key(key, name, same[at + i]);
            vg_buf_t b;
            vg_buf_init(&b);
            if (vg_ctl_get(r->a->ctl, key, kl, &b) == 0) {
                json_t *t = json_loadb(e->str, e->len, 0, NULL);
                json_t *h = json_loadb(b.p, b.len, 0, NULL);
                const char *m = json_string_value(json_object_get(t, "module"));
                json_t *tv = json_object_get(t, "version");
                int tdel = json_is_true(json_object_get(t, "deleted"));
                int hdel = json_is_true(json_object_get(h, "deleted"));
                const char *ts = json_string_value(json_object_get(t, "source"));
                const char *hs = json_string_value(json_object_get(h, "source"));
                int good = m && strcmp(m, name) == 0 && json_is_integer(tv) &&
                           json_integer_value(tv) == same[at + i] && (tdel || ts);
                if (good && h && (tdel != hdel || (!tdel && (!hs || strcmp(ts, hs) != 0)))) {
                    json_t *q = json_string(hs ? hs : "");
                    char *qs = q ? json_dumps(q, JSON_ENCODE_ANY) : NULL;
                    fprintf(stderr, "vigil serve: warning: redis: module %s version %lld: this "
                                    "instance held %s under that version than Redis, which "
                                    "every instance reads (two instances made that version "
                                    "while Redis had lost the other's); this instance's "
                                    "replaced by Redis's%s; the replaced local source: %s\n",
                            name, (long long)same[at + i],
                            hdel ? "a deletion, not a source," : "another source",
                            tdel ? " (a deletion)" : "",
                            hdel ? "(none: deleted)" : qs ? qs : "?");
                    free(qs);
                    json_decref(q);
                    vg_ctl_put(r->a->ctl, key, kl, e->str, e->len);
                }
                json_decref(t);
                json_decref(h);
            }
            vg_buf_deinit(&b);
        }
        freeReplyObject(rep);
    }
    return 0;
}

/* Makes this instance's versions of module `name` and Redis's the same, both ways
 * (deep, at a resynchronisation: also the content of the versions both hold). */
static int sync_versions(vg_redis_t *r, const char *name, int deep) {
    char vkey[300];
    snprintf(vkey, sizeof(vkey), K_VERSIONS "%s", name);
    const char *argv[2] = {"HKEYS", vkey};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 2, argv, NULL);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    vlist_t there = {0}, here = {0}, fetch = {0}, push = {0}, same = {0};
    int rc = 0;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && !rc; i++) {
        char *end;
        const char *f = rep->element[i]->str;
        long long v = f ? strtoll(f, &end, 10) : 0;
        if (v > 0 && !*end) rc = vlist_add(&there, v);
    }
    freeReplyObject(rep);
    if (!rc) rc = local_versions(r, name, &here);
    if (!rc) {
        if (there.n) qsort(there.v, there.n, sizeof(*there.v), cmp_i64);
        size_t i = 0, j = 0;   /* both sorted: a merge */
        while (!rc && (i < there.n || j < here.n)) {
            if (j == here.n || (i < there.n && there.v[i] < here.v[j]))
                rc = vlist_add(&fetch, there.v[i++]);
            else if (i == there.n || here.v[j] < there.v[i])
                rc = vlist_add(&push, here.v[j++]);
            else {
                if (deep) rc = vlist_add(&same, there.v[i]);
                i++, j++;
            }
        }
    }
    if (!rc && fetch.n) rc = fetch_versions(r, name, vkey, fetch.v, fetch.n);
    if (!rc && push.n) rc = push_versions(r, name, vkey, push.v, push.n);
    if (!rc && same.n) rc = compare_versions(r, name, vkey, same.v, same.n);
    free(same.v);
    free(there.v);
    free(here.v);
    free(fetch.v);
    free(push.v);
    return rc;
}

int vg_redis_fetch_version(vg_redis_t *r, const char *name, int64_t version) {
    if (!atomic_load(&r->up)) return VG_EIO;   /* never waits for a Redis that is down */
    if (!vg_api_valid_module_name(name) || version < 1) return VG_ENOTFOUND;
    char vkey[300], num[24];
    snprintf(vkey, sizeof(vkey), K_VERSIONS "%s", name);
    snprintf(num, sizeof(num), "%lld", (long long)version);
    const char *argv[3] = {"HGET", vkey, num};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 3, argv, NULL);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    int rc = VG_ENOTFOUND;
    if (rep->type == REDIS_REPLY_STRING) {
        store_version(r, name, version, rep->str, rep->len);
        unsigned char key[VG_CTL_VKEY_MAX];
        size_t kl = vg_ctl_version_key(key, name, version);
        vg_buf_t b;
        vg_buf_init(&b);
        rc = vg_ctl_get(r->a->ctl, key, kl, &b);
        vg_buf_deinit(&b);
    }
    freeReplyObject(rep);
    return rc;
}

/* Redis's record `rec` of a module holds the version this instance holds of it with
 * another source (or deleted here and not there, or the reverse): two instances made
 * that version while Redis had lost the other's (restored from an older snapshot). Every
 * instance adopts Redis's, which they all read (vg_api_apply_modules installs it); the
 * warning keeps this instance's replaced source in the log, whole (JSON string). */
static void same_version_check(vg_redis_t *r, const char *rec, size_t len) {
    json_t *j = json_loadb(rec, len, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "module"));
    json_int_t version = json_integer_value(json_object_get(j, "version"));
    int deleted = json_is_true(json_object_get(j, "deleted"));
    const char *source = json_string_value(json_object_get(j, "source"));
    char *mine = NULL;
    int differs = 0, mine_deleted = 0;
    long long rs = 0;
    if (name && (deleted || source)) {
        pthread_mutex_lock(&r->a->mu);
        for (int i = 0; i < r->a->nmods; i++) {
            vg_module_t *m = &r->a->mods[i];
            if (strcmp(m->name, name) != 0 || m->version != version) continue;
            differs = m->deleted != deleted ||
                      (!deleted && (!m->source || strcmp(m->source, source) != 0));
            mine_deleted = m->deleted;
            rs = (long long)m->ruleset;
            if (differs && m->source) mine = strdup(m->source);
        }
        pthread_mutex_unlock(&r->a->mu);
    }
    if (differs) {
        json_t *s = json_string(mine ? mine : "");
        char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        fprintf(stderr, "vigil serve: warning: redis: module %s version %lld: this instance "
                        "held %s under that version (ruleset %lld) than Redis, which every "
                        "instance reads (two instances made that version while Redis had lost "
                        "the other's); this instance's replaced by Redis's%s; the replaced "
                        "local source: %s\n",
                name, (long long)version, mine_deleted ? "a deletion, not a source," :
                                          "another source", rs,
                deleted ? " (a deletion)" : "", mine_deleted ? "(none: deleted)" : q ? q : "?");
        free(q);
        json_decref(s);
    }
    free(mine);
    json_decref(j);
}

/* Reads every module's newest record and the ruleset counter from Redis (one script:
 * a consistent snapshot) and installs those newer than the local copy as one change, so
 * that the program in force is never named by a ruleset whose other changes have not
 * arrived yet (a notification read late finds later changes of other modules too).
 * Fields that are not module records are left out, logged. 0 or VG_EIO. */
static int apply_snapshot(vg_redis_t *r, int64_t *ruleset) {
    static const char *LUA_PULL =
        "return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])}\n";
    const char *keys[2] = {K_RULES, K_RULESET};
    *ruleset = 0;
    pthread_mutex_lock(&r->mu);
    redisReply *rep = eval(r, LUA_PULL, 2, keys, 0, NULL, NULL);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    int rc = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->str &&
        rep->element[1]->type == REDIS_REPLY_ARRAY) {
        *ruleset = strtoll(rep->element[0]->str, NULL, 10);
        redisReply *h = rep->element[1];
        size_t n = h->elements / 2;
        const char **recs = calloc(n + 1, sizeof(*recs));
        size_t *lens = calloc(n + 1, sizeof(*lens));
        int *bad = calloc(n + 1, sizeof(*bad));
        if (!recs || !lens || !bad) rc = VG_ENOMEM;
        for (size_t i = 0; !rc && i < n; i++) {
            recs[i] = h->element[2 * i + 1]->str ? h->element[2 * i + 1]->str : "";
            lens[i] = h->element[2 * i + 1]->len;
        }
        for (size_t i = 0; !rc && i < n; i++) same_version_check(r, recs[i], lens[i]);
        if (!rc && n && vg_api_apply_modules(r->a, recs, lens, (int)n, bad) > 0)
            for (size_t i = 0; i < n; i++)
                if (bad[i])
                    rlog(r, "redis: %s field %s is not a module record (JSON with module, "
                            "version and source); ignored", K_RULES,
                         h->element[2 * i]->str ? h->element[2 * i]->str : "?");
        free(recs);
        free(lens);
        free(bad);
    }
    freeReplyObject(rep);
    return rc;
}

int vg_redis_pull_modules(vg_redis_t *r, int64_t *ruleset) { return apply_snapshot(r, ruleset); }

/* Writes this instance's newest record of module `name` to Redis if Redis has an older
 * one, or none (it lost it). */
static int push_module(vg_redis_t *r, const char *name) {
    vg_api_t *a = r->a;
    char *rec = NULL, v[24], rs[24], vkey[300];
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->nmods; i++)
        if (strcmp(a->mods[i].name, name) == 0) {
            rec = strdup(a->mods[i].record);
            snprintf(v, sizeof(v), "%lld", (long long)a->mods[i].version);
            snprintf(rs, sizeof(rs), "%lld", (long long)a->mods[i].ruleset);
        }
    pthread_mutex_unlock(&a->mu);
    if (!rec) return 0;
    snprintf(vkey, sizeof(vkey), K_VERSIONS "%s", name);
    const char *keys[4] = {K_RULES, K_RULESET, K_CHANNEL, vkey};
    const char *args[4] = {name, rec, v, rs};
    pthread_mutex_lock(&r->mu);
    redisReply *x = eval(r, LUA_PUSH_MODULE, 4, keys, 4, args, NULL);
    pthread_mutex_unlock(&r->mu);
    if (x && x->type == REDIS_REPLY_INTEGER && x->integer == 2)
        rlog(r, "redis: %s field %s was not a module record; replaced by this instance's "
                "version %s", K_RULES, name, v);
    free(rec);
    if (!x) return VG_EIO;
    freeReplyObject(x);
    return 0;
}

/* Brings module `name` up to date both ways: its versions (a name that is not a module
 * name has none), then (push, at a resynchronisation, which installs the newest records
 * of all modules itself) this instance's newest back when Redis's is older, or else
 * the newest records of every module (apply_snapshot). */
static int sync_module(vg_redis_t *r, const char *name, int push) {
    int valid = vg_api_valid_module_name(name);
    int rc = valid ? sync_versions(r, name, push) : 0;
    if (rc == VG_EIO) return rc;
    if (push) return valid ? push_module(r, name) : 0;
    int64_t rs;
    return apply_snapshot(r, &rs);
}

/* rc of one module's or list's synchronisation, for the resynchronisation: a failure
 * while Redis answers (an error about that key: logged) is no reason to stop the others;
 * one while it is down (or too slow) is. */
static int fatal(vg_redis_t *r, int rc) { return rc && !atomic_load(&r->up) ? rc : 0; }

/* Both ways: newer in Redis -> here; newer here (or missing there) -> Redis. */
static int resync(vg_redis_t *r) {
    vg_api_t *a = r->a;
    /* modules: those Redis has and those this instance has */
    const char *hk[2] = {"HKEYS", K_RULES};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 2, hk, NULL);
    pthread_mutex_unlock(&r->mu);
    if (!rep) return VG_EIO;
    int64_t rs;
    int rc = fatal(r, apply_snapshot(r, &rs));   /* newer in Redis: installed as one change */
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && !rc; i++)
        if (rep->element[i]->str) rc = fatal(r, sync_module(r, rep->element[i]->str, 1));
    pthread_mutex_lock(&a->mu);
    int n = a->nmods;
    char **names = calloc((size_t)n + 1, sizeof(*names));
    for (int i = 0; names && i < n; i++) names[i] = strdup(a->mods[i].name);
    pthread_mutex_unlock(&a->mu);
    for (int i = 0; names && i < n && !rc; i++) {
        int seen = 0;   /* synchronised above */
        size_t nr = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
        for (size_t k = 0; names[i] && k < nr && !seen; k++)
            seen = rep->element[k]->str && strcmp(rep->element[k]->str, names[i]) == 0;
        if (names[i] && !seen) rc = fatal(r, sync_module(r, names[i], 1));
    }
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
    freeReplyObject(rep);
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
        const char *keys[5] = {key, K_LISTVER, K_LISTDEL, K_CHANNEL, K_LISTCNT};
        pthread_mutex_lock(&r->mu);
        redisReply *x = eval(r, LUA_PUSH_LIST, 5, keys, (int)na, args, NULL);
        pthread_mutex_unlock(&r->mu);
        if (!x) rc = fatal(r, VG_EIO);
        else if (x->type == REDIS_REPLY_INTEGER && x->integer == 2)
            rlog(r, "redis: list %s version %s: its items were lost from Redis (the version "
                    "stayed); written back from this instance (%zu items)", snap[i].name, v,
                 snap[i].n);
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
    if (strncmp(p, "rules:", 6) == 0) sync_module(r, p + 6, 0);
    else if (strncmp(p, "list:", 5) == 0) sync_list(r, p + 5);
}

static void *subscriber(void *arg) {
    vg_redis_t *r = arg;
    int was_up = 0, first = 1;
    while (!atomic_load(&r->stop)) {
        char why[256] = "";
        redisContext *c = connect_to(r, 300, why, sizeof(why));
        if (!c) {
            /* a refusal (NOAUTH, WRONGPASS) was logged by connect_to */
            int down = atomic_load(&r->why) == WHY_DOWN;
            if (first && down)
                fprintf(stderr, "vigil serve: redis %s:%d is unreachable (%s); serving from the "
                                "local copy (rules and lists as last synchronised), refusing rule "
                                "and list writes until it is back\n", r->host, r->port, why);
            else if (was_up && down)
                fprintf(stderr, "vigil serve: redis %s:%d is down (%s); serving from the local "
                                "copy, refusing writes\n", r->host, r->port, why);
            first = was_up = 0;
            atomic_store(&r->up, 0);
            atomic_store(&r->phase, PH_DOWN);
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        first = 0;
        redisReply *rep = redisCommand(c, "SUBSCRIBE %s", K_CHANNEL);
        int ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
        if (rep && rep->type == REDIS_REPLY_ERROR) refused(r, rep->str, 0);   /* NOPERM */
        freeReplyObject(rep);
        atomic_store(&r->phase, PH_SYNCING);
        atomic_store(&r->need_resync, 0);
        if (ok && resync(r) == 0) {
            atomic_store(&r->up, 1);
            atomic_store(&r->phase, PH_SYNCED);
            if (!was_up) fprintf(stderr, "vigil serve: redis %s:%d connected and synchronised\n",
                                 r->host, r->port);
            was_up = 1;
            pthread_mutex_lock(&r->hook_mu);   /* e.g. the partitions owned, advertised again */
            if (r->on_sync) r->on_sync(r->on_sync_ctx);
            pthread_mutex_unlock(&r->hook_mu);
        } else {
            ok = 0;
        }
        while (ok && !atomic_load(&r->stop)) {
            struct pollfd pf = {c->fd, POLLIN, 0};
            int pr = poll(&pf, 1, 200);
            if (pr == 0 && atomic_exchange(&r->need_resync, 0)) {
                /* a write found Redis behind this instance (it lost changes) while this
                 * connection went on: written back now, before writes go on */
                atomic_store(&r->phase, PH_SYNCING);
                if (resync(r) != 0) {
                    ok = 0;
                    break;
                }
                atomic_store(&r->phase, PH_SYNCED);
                continue;
            }
            if (pr <= 0) continue;
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
        atomic_store(&r->phase, PH_DOWN);
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
    pthread_mutex_init(&r->wmu, NULL);
    pthread_mutex_init(&r->log_mu, NULL);
    pthread_mutex_init(&r->hook_mu, NULL);
    if (pthread_create(&r->th, NULL, subscriber, r) != 0) {
        snprintf(errbuf, errlen, "cannot start the redis thread");
        pthread_mutex_destroy(&r->mu);
        pthread_mutex_destroy(&r->wmu);
        pthread_mutex_destroy(&r->log_mu);
        pthread_mutex_destroy(&r->hook_mu);
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
    if (r->wr) redisFree(r->wr);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->wmu);
    pthread_mutex_destroy(&r->log_mu);
    pthread_mutex_destroy(&r->hook_mu);
    free(r);
}

void vg_redis_on_sync(vg_redis_t *r, void (*fn)(void *ctx), void *ctx) {
    if (!r) return;
    pthread_mutex_lock(&r->hook_mu);
    r->on_sync = fn;
    r->on_sync_ctx = ctx;
    pthread_mutex_unlock(&r->hook_mu);
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
