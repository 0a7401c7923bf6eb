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
 * local copy), so that two writers never overwrite each other; they fail with VG_EIO
 * while Redis is down or refuses vigil (the API answers 503 with vg_redis_down_why). A
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
 * `expect` (-1: any), as `vigil:rules`' newest and in `vigil:versions:<name>`. On
 * success returns 0, the stored record (JSON with its version and ruleset; malloc'ed,
 * the caller frees it) in *stored, and *created = 1 when this write made the module
 * (Redis had none, or a tombstone), else 0. VG_EMISMATCH with *current set when the
 * version differs; VG_EIO when Redis is down or refuses. */
int vg_redis_put_module(vg_redis_t *r, const char *name, int64_t expect, const char *record,
                        char **stored, int64_t *current, int *created);

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
