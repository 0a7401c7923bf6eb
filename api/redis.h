/* redis.h - the Redis control plane (SPEC section 7): rule modules and lists shared by
 * every instance, with change notifications.
 *
 * Redis keys: `vigil:rules` (hash module -> its newest module record JSON, deleted
 * modules kept as tombstones so that versions only grow), `vigil:versions:<module>`
 * (hash version -> module record JSON: every version of the module, written by the same
 * compare-and-set script as `vigil:rules`), `vigil:ruleset` (counter of ruleset
 * versions), `vigil:list:<name>` (set of items, SPEC), `vigil:listver` (hash name ->
 * version), `vigil:listdel` (set of deleted list names); channel `vigil:changes`
 * carries "rules:<module>" and "list:<name>".
 *
 * Writes are compare-and-set Lua scripts (the expected version, from If-Match or the
 * local copy), so that two writers never overwrite each other. A write's failure says
 * whether it was made: VG_EIO (not sent: Redis is down or refuses vigil; the API answers
 * 503 with vg_redis_down_why), VG_EAGAIN (not sent, or refused by the script: this
 * instance is writing back what Redis lost, 503 too), VG_ETIMEOUT (sent, and no answer
 * within 10 s: whether it was made is unknown; 504), VG_EREMOTE (Redis answered an
 * error: a key holds something vigil does not write there; vg_redis_last_error says
 * which; 500). Writes wait for the subscriber's resynchronisation after a (re)connection
 * (at most 3 s) and are refused by the scripts when Redis holds an older version than
 * this instance (it lost changes: they are written back first, then the write is tried
 * once more), so that no write builds on a Redis restored from an old snapshot. A
 * subscriber thread applies every change to the local copy (api/http_rules.c,
 * api/http_data.c: RocksDB + the engine), fetching the module versions this instance
 * lacks, and on every (re)connection resynchronises both ways: what Redis has that is
 * newer (or that this instance lacks: old versions) is stored locally; what this
 * instance has that is newer (or Redis lost) is written back, so that instances
 * converge on the highest version of everything and on the same version history.
 *
 * Threading: writes may come from any thread (one mutex-guarded connection); the
 * subscriber has its own connection and thread. Ownership: vg_redis_free stops the
 * thread and frees everything.
 */
#ifndef VG_REDIS_H
#define VG_REDIS_H

#include <stdint.h>

#include "api/http.h"

/* Connects (or keeps trying in the background) to HOST:PORT. NULL on bad address or
 * out of memory, with a reason in errbuf. Never waits for Redis to be up. */
vg_redis_t *vg_redis_new(vg_api_t *a, const char *hostport, char *errbuf, size_t errlen);
void vg_redis_free(vg_redis_t *r);

/* 1 when the last exchange with Redis succeeded. */
int vg_redis_up(vg_redis_t *r);
/* Why the last write was refused (a static string): "Redis is down", "Redis needs a
 * password (redis-password)" (it answered NOAUTH and none is set), "Redis refuses the
 * password (redis-password)" (AUTH failed, WRONGPASS) or "Redis refuses vigil's
 * commands (NOPERM: ...)" (its ACL). Can't fail. */
const char *vg_redis_down_why(vg_redis_t *r);

/* Writes module `name`'s record (source NULL: a deletion) if Redis holds version
 * `expect` (-1: any) and its newest ruleset is `base` (the one the change was compiled
 * against; a lower one, lost by Redis, is corrected), as `vigil:rules`' newest and in
 * `vigil:versions:<name>`. On success returns 0, the stored record (JSON with its
 * version and ruleset; malloc'ed, the caller frees it) in *stored, and *created = 1 when
 * this write made the module (Redis had none, or a tombstone), else 0. With same_ok, a
 * record whose source is the module's current source changes nothing: 0 with
 * *unchanged = 1 and the current record in *stored. VG_EMISMATCH with *current set when
 * the version differs; VG_ESTALE with *current the newest ruleset when another module
 * changed since `base` (compile again on the new rules: vg_redis_pull_modules); else
 * the write failures above. */
int vg_redis_put_module(vg_redis_t *r, const char *name, int64_t expect, const char *record,
                        int64_t base, int same_ok, char **stored, int64_t *current,
                        int *created, int *unchanged);

/* Answers a failed write (rc from vg_redis_put_module or vg_redis_list_op; `what`:
 * "rule" or "list"): 503 with Retry-After for VG_EIO and VG_EAGAIN (not made), 504
 * `redis_timeout` for VG_ETIMEOUT (sent, outcome unknown), 500 `redis_error` naming the
 * key for VG_EREMOTE, 500 `internal` for anything else. VG_EMISMATCH and VG_ESTALE are
 * the caller's. */
void vg_redis_answer(vg_redis_t *r, vg_resp_t *resp, int rc, const char *what);

/* Reads every module's newest record from Redis and applies those newer than the local
 * copy, with the newest ruleset counter in *ruleset (read together). 0, or VG_EIO while
 * Redis is down. */
int vg_redis_pull_modules(vg_redis_t *r, int64_t *ruleset);

/* The Redis error that made the last write fail with VG_EREMOTE (what is wrong, with the
 * key), in buf. Can't fail. */
void vg_redis_last_error(vg_redis_t *r, char *buf, size_t len);

/* Stores version `version` of module `name` from `vigil:versions:<name>` in the local
 * copy, if it is not there (for a version asked for before its change reached this
 * instance). 0 when it is there now, VG_ENOTFOUND when Redis does not have it either,
 * VG_EIO when Redis is down (answered at once: never waits for it). */
int vg_redis_fetch_version(vg_redis_t *r, const char *name, int64_t version);

/* List operations: op "put" (items replace the list), "add", "rem" (one item), "del".
 * Same contract; *version the new version; *created = 1 when this "put" or "add" made
 * the list (Redis had none, or a deleted one), else 0. A "put" of the items the list
 * has and an "add" of an item it has change nothing: 0 with *unchanged = 1 and
 * *version the current one. */
int vg_redis_list_op(vg_redis_t *r, const char *name, int64_t expect, const char *op,
                     char **items, size_t n, int64_t *version, int *unchanged, int *created);

/* The owner registry of Kafka partitions (`vigil serve --kafka` with several
 * instances): hash vigil:owners:<group>, field <partition>, value the owner's HTTP base
 * URL. _set: 0 or VG_EIO (Redis down). _get: 0 with the URL in out, VG_ENOTFOUND, or
 * VG_EIO. Both answer VG_EIO at once while Redis is known to be down. */
int vg_redis_owner_set(vg_redis_t *r, const char *group, int32_t partition, const char *url);
int vg_redis_owner_get(vg_redis_t *r, const char *group, int32_t partition, char *out,
                       size_t outlen);

/* fn(ctx) is called on the subscriber's thread each time Redis is (re)connected and
 * synchronised, so that what only lives in Redis while this instance runs (the owner
 * registry) is written again after Redis lost it (restarted empty) or was down when it
 * was written. fn NULL: none; unsetting waits for a call under way. */
void vg_redis_on_sync(vg_redis_t *r, void (*fn)(void *ctx), void *ctx);

#endif
