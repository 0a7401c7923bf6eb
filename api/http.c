/* http.c - the HTTP server: libmicrohttpd set-up, request bodies and limits, routing,
 * auth, errors, metrics, health, scoring (see http.h; the other handlers are in
 * api/http_rules.c and api/http_data.c).
 *
 * A request goes: path length (414) -> route (404, 405) -> auth (401 with
 * WWW-Authenticate, 403) -> query parameters (400: unknown, repeated, empty or without a
 * value) -> body limit (413, from Content-Length before reading, else while reading) ->
 * body time limit (408) -> handler.
 * Every error is {"error":{"code":"...","message":"..."}} with its status (except those
 * libmicrohttpd answers itself, before any of this: docs/api.md, Errors).
 *
 * Overload: a scoring request waits for its engine shard at most `deadline` after it
 * was complete (its body received); past that it is answered 429 with Retry-After, so
 * that a backlog turns into quick refusals rather than ever slower answers. Connections
 * are limited (max-connections) and idle ones closed after request-timeout; a request's
 * headers must arrive within request-timeout of the connection's start or of the previous
 * request's end (conns_main), and a body within request-timeout of its headers.
 */
#include "api/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "api/redis.h"
#include "engine/window.h"
#include "rules/errors.h"
#include "rules/file.h"
#include "rules/utf8.h"

extern const char vg_openapi_json[];

static const double BUCKETS[VG_HIST_N] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                         1,      2.5};
static const int CODES[VG_NCODES] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 408,
                                     409, 412, 413, 414, 415, 422, 429, 500, 501, 503, 0};
static const char *ROUTE_NAMES[] = {
#define VG_ROUTE_NAME(n, s) s,
    VG_ROUTE_LIST(VG_ROUTE_NAME)
#undef VG_ROUTE_NAME
};

int64_t vg_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vg_api_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void vg_iso_time(int64_t ms, char out[40]) { vg_time_format(ms, out); }

void vg_resp_error(vg_resp_t *r, int status, const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->status = status;
    r->ctype = "application/json";
    vg_buf_clear(&r->body);
    vg_buf_puts(&r->body, "{\"error\":{\"code\":");
    vg_json_str(&r->body, code, strlen(code));
    vg_buf_puts(&r->body, ",\"message\":");
    vg_json_str(&r->body, msg, strlen(msg));
    vg_buf_puts(&r->body, "}}");
}

/* Adds `"id":` (the string id[0..n), or null when id is NULL) to the error that
 * vg_resp_error put in r: a refused event's error.id (docs/api.md, Errors). */
static void resp_error_id(vg_resp_t *r, const char *id, size_t n) {
    if (r->body.len < 2) return;
    r->body.len -= 2;   /* the closing "}}" */
    vg_buf_puts(&r->body, ",\"id\":");
    if (id) vg_json_str(&r->body, id, n);
    else vg_buf_puts(&r->body, "null");
    vg_buf_puts(&r->body, "}}");
}

/* A refused event's error.id when its body (or the first bytes of it that were kept)
 * is s[0..n): the id as far as it can be read (vg_event_peek_id), else null. */
static void resp_error_peek_id(vg_resp_t *r, const char *s, size_t n) {
    char id[VG_EVENT_MAX_ID];
    size_t il = s ? vg_event_peek_id(s, n, id) : 0;
    resp_error_id(r, il ? id : NULL, il);
}

int vg_resp_unknown_members(vg_resp_t *r, json_t *o, const char *const *known,
                            const char *what, const char *hint) {
    char names[320];   /* 'a', 'b', ... : each name cut to 64 bytes at a UTF-8 boundary */
    size_t n = 0, count = 0;
    int full = 0;
    const char *key;
    json_t *v;
    names[0] = 0;
    json_object_foreach(o, key, v) {
        int i = 0;
        while (known[i] && strcmp(known[i], key) != 0) i++;
        if (known[i]) continue;
        if (count++ && n + 80 > sizeof names) {   /* no room for another: ", ..." once */
            if (!full) n += (size_t)snprintf(names + n, sizeof names - n, ", ...");
            full = 1;
            continue;
        }
        n += (size_t)snprintf(names + n, sizeof names - n, "%s'%.*s'", count > 1 ? ", " : "",
                              (int)vg_utf8_cut(key, strlen(key), 64), key);
    }
    if (!count) return 0;
    vg_resp_error(r, 400, "bad_request", "%sunknown field%s %s (%s)", what, count > 1 ? "s" : "",
                  names, hint);
    return -1;
}

/* Compact JSON of j with every real in the shortest form that reads back exactly
 * (vg_json_num, as the decisions are written: jansson prints 17 digits, "57.399999999999999"
 * for 57.4, and "5.0" for 5); keys in their insertion order. Returns 0 or VG_ENOMEM. */
static int dump_json(vg_buf_t *b, const json_t *j, int depth) {
    if (depth > 256) return VG_ENOMEM;   /* never built by the API */
    char t[32];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        int rc = vg_buf_putc(b, '{'), first = 1;
        json_object_foreach((json_t *)j, k, v) {
            if (!rc && !first) rc = vg_buf_putc(b, ',');
            if (!rc) rc = vg_json_str(b, k, strlen(k));
            if (!rc) rc = vg_buf_putc(b, ':');
            if (!rc) rc = dump_json(b, v, depth + 1);
            first = 0;
        }
        return rc ? rc : vg_buf_putc(b, '}');
    }
    case JSON_ARRAY: {
        int rc = vg_buf_putc(b, '[');
        for (size_t i = 0; !rc && i < json_array_size(j); i++) {
            if (i) rc = vg_buf_putc(b, ',');
            if (!rc) rc = dump_json(b, json_array_get(j, i), depth + 1);
        }
        return rc ? rc : vg_buf_putc(b, ']');
    }
    case JSON_STRING: return vg_json_str(b, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        snprintf(t, sizeof t, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return vg_buf_puts(b, t);
    case JSON_REAL: return vg_json_num(b, json_real_value(j));
    case JSON_TRUE: return vg_buf_puts(b, "true");
    case JSON_FALSE: return vg_buf_puts(b, "false");
    default: return vg_buf_puts(b, "null");
    }
}

void vg_resp_json(vg_resp_t *r, int status, json_t *j) {
    r->status = status;
    r->ctype = "application/json";
    vg_buf_clear(&r->body);
    int rc = j ? dump_json(&r->body, j, 0) : VG_ENOMEM;
    json_decref(j);
    if (rc) vg_resp_error(r, 500, "internal", "out of memory");
}

const char *vg_req_arg(vg_req_t *q, const char *name) {
    return MHD_lookup_connection_value((struct MHD_Connection *)q->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}

const char *vg_req_header(vg_req_t *q, const char *name) {
    return MHD_lookup_connection_value((struct MHD_Connection *)q->conn, MHD_HEADER_KIND, name);
}

/* ---- routing --------------------------------------------------------------------- */

enum { M_GET = 1, M_PUT = 2, M_POST = 4, M_DELETE = 8 };
typedef struct route_def {
    vg_route_t route;
    int methods;
    vg_role_t need_get, need_other;   /* role for GET, for the other methods */
} route_def_t;

/* Splits the path into segments (in place, in `buf`), returns the count (max 8). */
static int split(char *buf, char **seg) {
    int n = 0;
    char *p = buf;
    while (*p == '/') p++;
    while (*p && n < 8) {
        seg[n++] = p;
        char *s = strchr(p, '/');
        if (!s) break;
        *s = 0;
        p = s + 1;
        if (!*p) break;   /* a trailing slash is ignored */
    }
    return n;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes %XX escapes in place (others are kept as they are, as libmicrohttpd does). */
static void unescape(char *p) {
    char *o = p;
    for (; *p; p++) {
        int h, l;
        if (p[0] == '%' && (h = hexval(p[1])) >= 0 && (l = hexval(p[2])) >= 0) {
            *o++ = (char)(h * 16 + l);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

/* Finds the route; returns 0 and fills q (segments borrowed from buf), or 404. buf is
 * the raw path when `raw` (split at its slashes first, then each segment decoded, so
 * that an encoded slash, %2F, stays inside its segment: an account or list item named
 * "a/b"), else the decoded path. */
static int match(char *buf, int raw, vg_req_t *q, route_def_t *d) {
    char *s[8];
    int n = split(buf, s);
    if (raw)
        for (int i = 0; i < n; i++) unescape(s[i]);
    memset(d, 0, sizeof(*d));
    d->need_get = VG_ROLE_NONE;
    q->nseg = 0;
#define R(rt, m, g, o) (d->route = (rt), d->methods = (m), d->need_get = (g), d->need_other = (o), 0)
    if (n == 1 && strcmp(s[0], "healthz") == 0) return R(VG_ROUTE_HEALTHZ, M_GET, VG_ROLE_NONE, 0);
    if (n == 1 && strcmp(s[0], "readyz") == 0) return R(VG_ROUTE_READYZ, M_GET, VG_ROLE_NONE, 0);
    if (n == 1 && strcmp(s[0], "metrics") == 0) return R(VG_ROUTE_METRICS, M_GET, VG_ROLE_NONE, 0);
    if (n < 2 || strcmp(s[0], "v1") != 0) return 404;
    for (int i = 2; i < n; i++) q->seg[q->nseg++] = s[i];
    const char *r = s[1];
    if (n == 2 && strcmp(r, "openapi.json") == 0) return R(VG_ROUTE_OPENAPI, M_GET, VG_ROLE_NONE, 0);
    if (n == 2 && strcmp(r, "score") == 0) return R(VG_ROUTE_SCORE, M_POST, 0, VG_ROLE_SCORER);
    if (n == 2 && strcmp(r, "alerts") == 0) return R(VG_ROUTE_ALERTS, M_GET, VG_ROLE_ANALYST, 0);
    if (n == 2 && strcmp(r, "audit") == 0) return R(VG_ROUTE_AUDIT, M_GET, VG_ROLE_ANALYST, 0);
    if (n == 2 && strcmp(r, "labels") == 0) return R(VG_ROUTE_LABELS, M_POST, 0, VG_ROLE_ANALYST);
    if (strcmp(r, "rules") == 0) {
        if (n == 2) return R(VG_ROUTE_RULES, M_GET, VG_ROLE_ANALYST, 0);
        if (n == 3 && strcmp(s[2], "validate") == 0)
            return R(VG_ROUTE_VALIDATE, M_POST, 0, VG_ROLE_ANALYST);
        if (n == 3) return R(VG_ROUTE_RULE, M_GET | M_PUT | M_DELETE, VG_ROLE_ANALYST, VG_ROLE_ADMIN);
        if ((n == 4 || n == 5) && strcmp(s[3], "versions") == 0)
            return R(VG_ROUTE_RULE_VERSIONS, M_GET, VG_ROLE_ANALYST, 0);
        if (n == 4 && strcmp(s[3], "rollback") == 0)
            return R(VG_ROUTE_RULE_ROLLBACK, M_POST, 0, VG_ROLE_ADMIN);
        return 404;
    }
    if (strcmp(r, "accounts") == 0 && n == 3)
        return R(VG_ROUTE_ACCOUNT, M_GET | M_DELETE, VG_ROLE_ANALYST, VG_ROLE_ADMIN);
    if (strcmp(r, "accounts") == 0 && n == 4 && strcmp(s[3], "reset-baseline") == 0)
        return R(VG_ROUTE_ACCOUNT_RESET, M_POST, 0, VG_ROLE_ADMIN);
    if (strcmp(r, "lists") == 0) {
        if (n == 2) return R(VG_ROUTE_LISTS, M_GET, VG_ROLE_ANALYST, 0);
        if (n == 3) return R(VG_ROUTE_LIST, M_GET | M_PUT | M_DELETE, VG_ROLE_ANALYST, VG_ROLE_ADMIN);
        if (n == 4) return R(VG_ROUTE_LIST_ITEM, M_PUT | M_DELETE, 0, VG_ROLE_ADMIN);
        return 404;
    }
#undef R
    return 404;
}

/* Why the request method is not an RFC 9110 token (1*tchar), NULL when it is one. `uri` is
 * where libmicrohttpd's URI starts in the same buffer (on_uri), or NULL when unknown:
 * libmicrohttpd (0.9.75) cuts the request line at its first space and ends the method
 * there with a NUL, so anything but spaces between the method's end (as strlen sees it)
 * and the URI is the rest of a method that had a NUL byte (`DELETE\0JUNK` was taken for
 * DELETE). */
static const char *method_bad(const char *m, const char *uri) {
    size_t n = strlen(m);
    if (uri) {
        const char *p = m + n + 1;
        while (p < uri && *p == ' ') p++;
        if (p != uri) return "the request method has a NUL byte";
    }
    if (n == 0) return "the request line has no method";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)m[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (ch && strchr("!#$%&'*+-.^_`|~", ch))))
            return "the request method is not an HTTP token (RFC 9110: letters, digits and "
                   "!#$%&'*+-.^_`|~)";
    }
    return NULL;
}

static int method_bit(const char *m) {
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) return M_GET;
    if (strcmp(m, "PUT") == 0) return M_PUT;
    if (strcmp(m, "POST") == 0) return M_POST;
    if (strcmp(m, "DELETE") == 0) return M_DELETE;
    return 0;
}

static void allow_header(int methods, char *out, size_t n) {
    out[0] = 0;
    const char *names[] = {"GET", "PUT", "POST", "DELETE"};
    for (int i = 0; i < 4; i++)
        if (methods & (1 << i)) {
            if (out[0]) strncat(out, ", ", n - strlen(out) - 1);
            strncat(out, names[i], n - strlen(out) - 1);
        }
}

/* ---- per connection and per request ---------------------------------------------- */

typedef struct conn_ctx {
    vg_engine_ctx_t ectx;
    vg_buf_t out;
    /* the header deadline (conns_t): while `waiting`, the current request's headers
     * must be complete within request-timeout of `since` (the connection's start, or
     * the previous request's end); fields under conns_t.mu */
    struct conn_ctx *prev, *next;
    int fd;
    int waiting, cut;
    int64_t since_us;
    int idle;            /* waiting for the next request of a keep-alive connection, no
                            request line of it seen: cut without a log line (the
                            connection's idle timeout, as before) */
} conn_ctx_t;

/* The open connections, for the header deadline: libmicrohttpd's own timeout is one of
 * inactivity, so a client sending a header byte a second was never cut off, and
 * max-connections such clients locked everyone out. A housekeeping thread shuts down
 * (shutdown(2)) the socket of a connection whose request headers are late;
 * libmicrohttpd then closes it as it would any connection whose peer went away. */
typedef struct conns {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    conn_ctx_t *head;
    int stop;
    pthread_t thr;
    int64_t logged_us;         /* the last log line (one a second at most) */
    uint64_t cut_unlogged;     /* connections cut since then */
    /* libmicrohttpd's own messages (mhd_log): one line a second at most too */
    int64_t mhd_logged_us;     /* the last one written */
    uint64_t mhd_unlogged;     /* messages not written since then */
    char mhd_last[256];        /* the last of them */
    /* requests refused by auth (401, 403): one line a second at most (log_denied) */
    int64_t denied_logged_us;
    uint64_t denied_unlogged;
} conns_t;

/* The longest request path routed (414 above it): a list item is up to 1024 bytes, so
 * /v1/lists/{name}/{item} with both percent-encoded byte for byte (3 characters a byte:
 * 10 + 3 * 128 + 1 + 3 * 1024 = 3467) fits, with room to spare. */
#define PATH_MAX_BYTES 4096

/* libmicrohttpd's memory pool per connection (MHD_OPTION_CONNECTION_MEMORY_LIMIT; its
 * default is 32 KiB). Its pages are touched as they are used. */
#define CONN_POOL_BYTES (64 * 1024)

typedef struct req_state {
    int64_t start_us;    /* the headers were read (metrics; the body's time limit) */
    route_def_t def;
    vg_req_t q;
    char path[PATH_MAX_BYTES];
    vg_buf_t body;
    size_t limit;
    int too_large;
    uint64_t received;   /* body bytes received (kept or not) */
    unsigned tmo_s;      /* the connection's timeout as set for the body (0: as configured) */
    int late;            /* the body took longer than request-timeout: 408 */
    int done;            /* a response was queued on the first call */
    int started;         /* on_request has seen the request */
    int bad_escape;      /* the raw URI has a '%' without two hex digits: 1 + its offset */
    char escape[4];      /* then that '%' and the (at most 2) bytes after it */
    const char *uri_at;  /* the raw URI in libmicrohttpd's buffer (on_uri), NULL if unknown */
    int nul_in_uri;      /* the raw URI has %00 (libmicrohttpd decodes it into a NUL), or
                            a NUL byte itself (libmicrohttpd's string ends there) */
    int close_after;     /* framing RFC 9112 wants closed after the answer: chunked with a
                            Content-Length too, or Transfer-Encoding in HTTP/1.0 */
    char *raw;           /* the raw path (before any '?'), for routing: NULL if unknown */
    /* a score queued for the Kafka pipeline (score_kafka_start): the connection is
     * suspended until the partition's thread answers (score_kafka_done) */
    int kpending, kdry;
    vg_kafka_req_t kq;
    vg_kafka_score_res_t kr;
    /* an account request asked of its Kafka partition (account_kafka_start): suspended
     * the same way; kview holds a view's answer, kp what the handler is given */
    int kacct;
    vg_buf_t kview;
    vg_kphase_t kp;
    /* an erasure (DELETE /v1/accounts/{a}), a list or a rule write handled on a thread
     * of its own (erase_start): suspended the same way; eresp holds its answer */
    int erasing;
    vg_resp_t eresp;
    vg_api_t *a;
    struct MHD_Connection *conn;
} req_state_t;

/* Called with the raw URI before libmicrohttpd decodes it: a %00 would turn into a NUL
 * byte that silently cuts a module name, an account or a query value short, so such a
 * request is refused (400) instead. The state made here is the request's. */
static void header_started(vg_api_t *a, struct MHD_Connection *c);

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
    header_started(cls, c);
    req_state_t *rs = calloc(1, sizeof(*rs));
    if (rs && uri) {
        /* libmicrohttpd (0.9.75) ends the URI with a NUL in place of the space before the
         * version, which follows: anything else after the URI's end is the rest of a URI
         * that had a NUL byte (DELETE /v1/accounts/victim\0/x erased `victim`) */
        const char *after = uri + strlen(uri) + 1;
        rs->nul_in_uri = strstr(uri, "%00") != NULL || strncmp(after, "HTTP/", 5) != 0;
        rs->uri_at = *uri ? uri : NULL;   /* "" without a URI: not in the buffer */
        for (const char *p = uri; *p && !rs->bad_escape; p++)
            if (*p == '%' && (hexval(p[1]) < 0 || hexval(p[2]) < 0)) {
                rs->bad_escape = 1 + (int)(p - uri);
                snprintf(rs->escape, sizeof rs->escape, "%s", p);
            }
        rs->raw = strndup(uri, strcspn(uri, "?"));
    }
    return rs;
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_ctx,
                        enum MHD_ConnectionNotificationCode toe) {
    vg_api_t *a = cls;
    conns_t *cs = a->conns;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_ctx_t *x = calloc(1, sizeof(*x));
        if (x) {
            vg_engine_ctx_init(&x->ectx);
            vg_buf_init(&x->out);
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
            x->fd = ci ? ci->connect_fd : -1;
            x->waiting = 1;
            x->since_us = vg_api_mono_us();
            if (cs && x->fd >= 0) {
                pthread_mutex_lock(&cs->mu);
                x->next = cs->head;
                if (cs->head) cs->head->prev = x;
                cs->head = x;
                pthread_mutex_unlock(&cs->mu);
            }
        }
        *socket_ctx = x;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_ctx_t *x = *socket_ctx;
        if (x) {
            if (cs && x->fd >= 0) {   /* before libmicrohttpd closes the socket */
                pthread_mutex_lock(&cs->mu);
                if (x->prev) x->prev->next = x->next;
                else if (cs->head == x) cs->head = x->next;
                if (x->next) x->next->prev = x->prev;
                pthread_mutex_unlock(&cs->mu);
            }
            vg_engine_ctx_deinit(&x->ectx);
            vg_buf_deinit(&x->out);
            free(x);
        }
        *socket_ctx = NULL;
    }
}

/* The connection's per-connection context, NULL when it could not be made. */
static conn_ctx_t *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The current request's headers are complete (waiting 0), or a request ended and the
 * next one's headers are awaited from now (waiting 1). */
static void header_wait(vg_api_t *a, struct MHD_Connection *c, int waiting) {
    conns_t *cs = a->conns;
    conn_ctx_t *x = conn_of(c);
    if (!cs || !x) return;
    pthread_mutex_lock(&cs->mu);
    x->waiting = waiting;
    x->idle = waiting;
    x->since_us = vg_api_mono_us();
    pthread_mutex_unlock(&cs->mu);
}

/* The request line of the next request arrived: no longer idle (its deadline stays). */
static void header_started(vg_api_t *a, struct MHD_Connection *c) {
    conns_t *cs = a->conns;
    conn_ctx_t *x = conn_of(c);
    if (!cs || !x) return;
    pthread_mutex_lock(&cs->mu);
    x->idle = 0;
    pthread_mutex_unlock(&cs->mu);
}

/* libmicrohttpd's messages (MHD_OPTION_EXTERNAL_LOGGER): it writes one line per malformed
 * request (`Error processing request (HTTP response code is 400 (Bad Request)). Closing
 * connection.`), so a client sending them grew the log at network speed. One a second is
 * written as it is; the others are counted and summed up by conns_main a second later. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    vg_api_t *a = cls;
    conns_t *cs = a->conns;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (!cs) {
        fprintf(stderr, "%s\n", line);
        return;
    }
    pthread_mutex_lock(&cs->mu);
    int64_t now = vg_api_mono_us();
    if (!cs->mhd_logged_us || now - cs->mhd_logged_us >= 1000000) {
        fprintf(stderr, "%s\n", line);
        cs->mhd_logged_us = now;
    } else {
        cs->mhd_unlogged++;
        size_t k = n < sizeof cs->mhd_last ? n : sizeof cs->mhd_last - 1;
        memcpy(cs->mhd_last, line, k);   /* cut to fit (snprintf "%s" warns of the cut) */
        cs->mhd_last[k] = 0;
    }
    pthread_mutex_unlock(&cs->mu);
}

/* The housekeeping thread: four times a second, shuts down the connections whose
 * request headers are later than request-timeout. */
static void *conns_main(void *arg) {
    vg_api_t *a = arg;
    conns_t *cs = a->conns;
    const int64_t limit_us = a->cfg->request_timeout_ms * 1000;
    pthread_mutex_lock(&cs->mu);
    while (!cs->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cs->cv, &cs->mu, &ts);
        if (cs->stop) break;
        int64_t now = vg_api_mono_us();
        for (conn_ctx_t *x = cs->head; x; x = x->next)
            if (x->waiting && !x->cut && now - x->since_us > limit_us) {
                x->cut = 1;
                shutdown(x->fd, SHUT_RDWR);
                if (x->idle) continue;
                cs->cut_unlogged++;
                atomic_fetch_add(&a->slow_headers, 1);
            }
        if (cs->cut_unlogged && now - cs->logged_us >= 1000000) {
            fprintf(stderr, "vigil serve: closed %" PRIu64 " connection%s whose request "
                    "headers did not arrive within request-timeout (%lld ms)\n",
                    cs->cut_unlogged, cs->cut_unlogged == 1 ? "" : "s",
                    (long long)a->cfg->request_timeout_ms);
            cs->cut_unlogged = 0;
            cs->logged_us = now;
        }
        if (cs->mhd_unlogged && now - cs->mhd_logged_us >= 1000000) {
            fprintf(stderr, "vigil serve: %" PRIu64 " more libmicrohttpd message%s not shown "
                    "(one a second at most), the last: %s\n", cs->mhd_unlogged,
                    cs->mhd_unlogged == 1 ? "" : "s", cs->mhd_last);
            cs->mhd_unlogged = 0;
            cs->mhd_logged_us = now;
        }
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    vg_api_t *a = cls;
    (void)toe;
    /* the next request on this connection must have its headers within request-timeout
     * of now (a keep-alive connection's idle time counts) */
    header_wait(a, c, 1);
    req_state_t *rs = *con_cls;
    if (rs) {
        vg_buf_deinit(&rs->body);
        vg_buf_deinit(&rs->kview);
        free(rs->raw);
        free(rs);
    }
    *con_cls = NULL;
}

static int code_index(int status) {
    for (int i = 0; i < VG_NCODES - 1; i++)
        if (CODES[i] == status) return i;
    return VG_NCODES - 1;
}

static void observe(vg_api_t *a, vg_route_t rt, int status, int64_t us) {
    vg_route_metrics_t *m = &a->routes[rt];
    atomic_fetch_add(&m->by_code[code_index(status)], 1);
    double s = (double)us / 1e6;
    int b = 0;
    while (b < VG_HIST_N && s > BUCKETS[b]) b++;
    atomic_fetch_add(&m->hist[b], 1);
    atomic_fetch_add(&m->sum_us, (uint64_t)us);
}

static enum MHD_Result send_resp(vg_api_t *a, struct MHD_Connection *c, req_state_t *rs,
                                 vg_resp_t *r) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->body.len, r->body.p,
                                                                MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "application/json");
    if (r->etag[0]) MHD_add_response_header(resp, "ETag", r->etag);
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (r->www_auth) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"vigil\"");
    if (r->close || rs->close_after) MHD_add_response_header(resp, "Connection", "close");
    if (r->status == 405) {
        char allow[64];
        allow_header(rs->def.methods, allow, sizeof(allow));
        MHD_add_response_header(resp, "Allow", allow);
    }
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    observe(a, rs->def.route, r->status, vg_api_mono_us() - rs->start_us);
    return ok;
}

/* ---- built-in handlers ----------------------------------------------------------- */

/* The Redis control plane's state (--redis): 2 connected and synchronised (rule and list
 * changes are written and arrive), 1 connected and not synchronised yet, 0 down; *age_s:
 * seconds since it was last connected and synchronised (0 while it is; since the start
 * when it never was). */
static int redis_state(vg_api_t *a, int64_t *age_s) {
    int64_t now = vg_now_ms();
    int st = !vg_redis_up(a->redis) ? 0 : atomic_load(&a->redis_synced) ? 2 : 1;
    if (st == 0) atomic_store(&a->redis_synced, 0);   /* the next (re)connection syncs */
    if (st == 2) atomic_store(&a->redis_ok_ms, now);
    int64_t ok = atomic_load(&a->redis_ok_ms);
    *age_s = st == 2 || now < ok ? 0 : (now - ok) / 1000;
    return st;
}

static void h_metrics(vg_api_t *a, vg_resp_t *r) {
    vg_buf_t *b = &r->body;
    char line[2048];
    r->status = 200;
    r->ctype = "text/plain; version=0.0.4";
    vg_buf_puts(b, "# HELP vigil_http_requests_total HTTP requests by route and status.\n"
                   "# TYPE vigil_http_requests_total counter\n");
    for (int rt = 0; rt < VG_ROUTE__COUNT; rt++)
        for (int k = 0; k < VG_NCODES; k++) {
            uint64_t v = atomic_load(&a->routes[rt].by_code[k]);
            if (!v) continue;
            snprintf(line, sizeof(line), "vigil_http_requests_total{route=\"%s\",code=\"%d\"} %" PRIu64 "\n",
                     ROUTE_NAMES[rt], CODES[k], v);
            vg_buf_puts(b, line);
        }
    vg_buf_puts(b, "# HELP vigil_http_request_duration_seconds Request latency by route.\n"
                   "# TYPE vigil_http_request_duration_seconds histogram\n");
    for (int rt = 0; rt < VG_ROUTE__COUNT; rt++) {
        uint64_t cum = 0;
        for (int k = 0; k <= VG_HIST_N; k++) {
            cum += atomic_load(&a->routes[rt].hist[k]);
            if (k < VG_HIST_N)
                snprintf(line, sizeof(line),
                         "vigil_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                         ROUTE_NAMES[rt], BUCKETS[k], cum);
            else
                snprintf(line, sizeof(line),
                         "vigil_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n"
                         "vigil_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                         "vigil_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n",
                         ROUTE_NAMES[rt], cum, ROUTE_NAMES[rt],
                         (double)atomic_load(&a->routes[rt].sum_us) / 1e6, ROUTE_NAMES[rt], cum);
            vg_buf_puts(b, line);
        }
    }
    vg_buf_puts(b, "# HELP vigil_rejected_total Events refused over HTTP (POST /v1/score, "
                   "not dry runs) by code; they sum to vigil_decisions_total{decision=\"rejected\"}.\n"
                   "# TYPE vigil_rejected_total counter\n");
    for (int i = 1; i < VG_REJECT__COUNT; i++) {
        snprintf(line, sizeof(line), "vigil_rejected_total{code=\"%s\"} %" PRIu64 "\n",
                 vg_reject_code((vg_reject_t)i), (uint64_t)atomic_load(&a->rejected_by[i]));
        vg_buf_puts(b, line);
    }
    static const char *dn[4] = {"allow", "review", "block", "alert"};
    vg_buf_puts(b, "# HELP vigil_decisions_total Scored events by decision or outcome.\n"
                   "# TYPE vigil_decisions_total counter\n");
    for (int i = 0; i < 4; i++) {
        snprintf(line, sizeof(line), "vigil_decisions_total{decision=\"%s\"} %" PRIu64 "\n", dn[i],
                 (uint64_t)atomic_load(&a->decisions[i]));
        vg_buf_puts(b, line);
    }
    snprintf(line, sizeof(line),
             "vigil_decisions_total{decision=\"rejected\"} %" PRIu64 "\n"
             "vigil_decisions_total{decision=\"duplicate\"} %" PRIu64 "\n"
             "# HELP vigil_alerts_total Alerts raised.\n# TYPE vigil_alerts_total counter\n"
             "vigil_alerts_total %" PRIu64 "\n"
             "# HELP vigil_http_slow_headers_total Connections closed because a request's "
             "headers did not arrive within request-timeout.\n"
             "# TYPE vigil_http_slow_headers_total counter\nvigil_http_slow_headers_total %"
             PRIu64 "\n"
             "# HELP vigil_labels_total Labels posted to POST /v1/labels and applied "
             "(without Kafka), by whether they matched an event the service decided.\n"
             "# TYPE vigil_labels_total counter\n"
             "vigil_labels_total{result=\"matched\"} %" PRIu64 "\n"
             "vigil_labels_total{result=\"unmatched\"} %" PRIu64 "\n"
             "# HELP vigil_overloaded_total Requests refused with 429.\n"
             "# TYPE vigil_overloaded_total counter\nvigil_overloaded_total %" PRIu64 "\n"
             "# HELP vigil_kafka_scores_in_flight Scores waiting for a Kafka partition's "
             "thread (their connections suspended).\n"
             "# TYPE vigil_kafka_scores_in_flight gauge\nvigil_kafka_scores_in_flight %d\n",
             (uint64_t)atomic_load(&a->rejected), (uint64_t)atomic_load(&a->duplicates),
             (uint64_t)atomic_load(&a->alerts), (uint64_t)atomic_load(&a->slow_headers),
             (uint64_t)atomic_load(&a->labels_matched),
             (uint64_t)atomic_load(&a->labels_unmatched),
             (uint64_t)atomic_load(&a->overloaded),
             atomic_load(&a->kafka_inflight));
    vg_buf_puts(b, line);
    vg_buf_puts(b, "# HELP vigil_rule_hits_total Fired rules (active and shadow).\n"
                   "# TYPE vigil_rule_hits_total counter\n");
    pthread_mutex_lock(&a->hits_mu);
    for (int i = 0; i < a->nhits; i++) {
        vg_buf_puts(b, "vigil_rule_hits_total{rule=");
        vg_json_str(b, a->hit_names[i], strlen(a->hit_names[i]));
        snprintf(line, sizeof(line), "} %" PRIu64 "\n", a->hit_counts[i]);
        vg_buf_puts(b, line);
    }
    pthread_mutex_unlock(&a->hits_mu);
    vg_engine_stats_t es;
    vg_engine_get_stats(a->eng, &es);
    pthread_mutex_lock(&a->mu);
    int64_t rs = a->active_ruleset, newest = a->ruleset;
    int nf = 0;
    pthread_mutex_unlock(&a->mu);
    (void)nf;
    snprintf(line, sizeof(line),
             "# HELP vigil_accounts_in_memory Accounts held in memory.\n"
             "# TYPE vigil_accounts_in_memory gauge\nvigil_accounts_in_memory %zu\n"
             "# HELP vigil_keys_in_memory by-key window states held in memory.\n"
             "# TYPE vigil_keys_in_memory gauge\nvigil_keys_in_memory %zu\n"
             "# HELP vigil_state_bytes Bytes of account and key state in memory.\n"
             "# TYPE vigil_state_bytes gauge\nvigil_state_bytes %zu\n"
             "# HELP vigil_ruleset_version The ruleset version in force (decisions carry it).\n"
             "# TYPE vigil_ruleset_version gauge\nvigil_ruleset_version %" PRId64 "\n"
             "# HELP vigil_ruleset_newest The newest ruleset version known; above "
             "vigil_ruleset_version while a module received from Redis does not compile here.\n"
             "# TYPE vigil_ruleset_newest gauge\nvigil_ruleset_newest %" PRId64 "\n",
             es.accounts_in_memory, es.keys_in_memory, es.bytes, rs, newest);
    vg_buf_puts(b, line);
    snprintf(line, sizeof(line),
             "# HELP vigil_state_evictions_total Accounts and by-key states dropped from "
             "memory to the state store (--mem-budget).\n"
             "# TYPE vigil_state_evictions_total counter\n"
             "vigil_state_evictions_total{kind=\"account\"} %" PRIu64 "\n"
             "vigil_state_evictions_total{kind=\"key\"} %" PRIu64 "\n"
             "# HELP vigil_state_loads_total Accounts and by-key states read back from the "
             "state store (evicted ones needed again; after a restart, each one's first use).\n"
             "# TYPE vigil_state_loads_total counter\n"
             "vigil_state_loads_total{kind=\"account\"} %" PRIu64 "\n"
             "vigil_state_loads_total{kind=\"key\"} %" PRIu64 "\n",
             es.account_evictions, es.key_evictions, es.account_loads, es.key_loads);
    vg_buf_puts(b, line);
    snprintf(line, sizeof(line),
             "# HELP vigil_checkpoint_failures_total Checkpoints of the scoring state that "
             "failed (e.g. a full disk); each is retried at the next interval.\n"
             "# TYPE vigil_checkpoint_failures_total counter\nvigil_checkpoint_failures_total %"
             PRIu64 "\n"
             "# HELP vigil_control_write_failures_total Writes of alerts, decisions, rules or "
             "lists to the control store that failed.\n"
             "# TYPE vigil_control_write_failures_total counter\n"
             "vigil_control_write_failures_total %" PRIu64 "\n",
             (uint64_t)atomic_load(&a->ckpt_failures), vg_ctl_failed_writes(a->ctl));
    vg_buf_puts(b, line);
    if (!a->kafka) {   /* the HTTP engine's checkpoints (with Kafka: vigil_kafka_checkpoint_*) */
        int64_t ok_ms = atomic_load(&a->ckpt_ok_ms), since = atomic_load(&a->ckpt_since_ms);
        int64_t age = vg_now_ms() - (ok_ms ? ok_ms : since);
        snprintf(line, sizeof(line),
                 "# HELP vigil_checkpoint_duration_seconds The periodic checkpoints of the "
                 "scoring state (every checkpoint-interval): their count and time.\n"
                 "# TYPE vigil_checkpoint_duration_seconds summary\n"
                 "vigil_checkpoint_duration_seconds_sum %.6f\n"
                 "vigil_checkpoint_duration_seconds_count %" PRIu64 "\n"
                 "# HELP vigil_checkpoint_last_duration_seconds The last periodic checkpoint's "
                 "time.\n# TYPE vigil_checkpoint_last_duration_seconds gauge\n"
                 "vigil_checkpoint_last_duration_seconds %.6f\n"
                 "# HELP vigil_checkpoint_age_seconds Seconds since the last checkpoint that "
                 "succeeded ended (since the start before the first): what the memory budget "
                 "cannot evict yet was changed since.\n"
                 "# TYPE vigil_checkpoint_age_seconds gauge\nvigil_checkpoint_age_seconds %.3f\n",
                 (double)atomic_load(&a->ckpt_us_sum) / 1e6,
                 (uint64_t)atomic_load(&a->ckpt_count),
                 (double)atomic_load(&a->ckpt_last_us) / 1e6, age > 0 ? (double)age / 1000 : 0.0);
        vg_buf_puts(b, line);
    }
    snprintf(line, sizeof(line),
             "# HELP vigil_state_read_failures_total Scores and account views that failed "
             "because the state store could not read an account's records back (a damaged "
             "state: the log says what to do).\n"
             "# TYPE vigil_state_read_failures_total counter\n"
             "vigil_state_read_failures_total %" PRIu64 "\n", vg_engine_read_failures(a->eng));
    vg_buf_puts(b, line);
    vg_wstats_t ws;
    vg_wstats_get(&ws);
    snprintf(line, sizeof(line),
             "# HELP vigil_late_events_total Events added out of time order to a window (of "
             "their account or of a by key; Kafka partitions included).\n"
             "# TYPE vigil_late_events_total counter\nvigil_late_events_total %" PRIu64 "\n"
             "# HELP vigil_late_rows_moved_total Window rows moved to make room for late "
             "events: a late event's cost grows with them; thousands per late event mean "
             "sources with skewed clocks feeding one by key (docs/rules.md section 6).\n"
             "# TYPE vigil_late_rows_moved_total counter\nvigil_late_rows_moved_total %" PRIu64
             "\n",
             ws.late_events, ws.rows_moved);
    vg_buf_puts(b, line);
    if (a->redis) {
        int64_t age;
        int st = redis_state(a, &age);
        snprintf(line, sizeof(line),
                 "# HELP vigil_redis_connected 1 while connected to Redis (redis = HOST:PORT) "
                 "and synchronised: rule and list changes can be made and arrive; 0 while it "
                 "is down, refuses vigil or is being synchronised (scoring goes on with the "
                 "local copy).\n"
                 "# TYPE vigil_redis_connected gauge\nvigil_redis_connected %d\n"
                 "# HELP vigil_redis_sync_age_seconds Seconds since this instance was last "
                 "connected to Redis and synchronised (0 while it is; since the start when it "
                 "never was).\n"
                 "# TYPE vigil_redis_sync_age_seconds gauge\nvigil_redis_sync_age_seconds %"
                 PRId64 "\n"
                 "# HELP vigil_redis_synchronisations_total Synchronisations with Redis, one "
                 "at each (re)connection: growing, Redis or the way to it goes up and down.\n"
                 "# TYPE vigil_redis_synchronisations_total counter\n"
                 "vigil_redis_synchronisations_total %" PRIu64 "\n",
                 st == 2, age, (uint64_t)atomic_load(&a->redis_syncs));
        vg_buf_puts(b, line);
    }
    if (a->feed) {
        snprintf(line, sizeof(line),
                 "# HELP vigil_alert_list_indexed_total Alerts of the alerts topic added to "
                 "the alert list (GET /v1/alerts).\n"
                 "# TYPE vigil_alert_list_indexed_total counter\n"
                 "vigil_alert_list_indexed_total %" PRIu64 "\n"
                 "# HELP vigil_alert_list_duplicates_total Alerts of the alerts topic already "
                 "listed (produced again after a crash: same alert_id).\n"
                 "# TYPE vigil_alert_list_duplicates_total counter\n"
                 "vigil_alert_list_duplicates_total %" PRIu64 "\n"
                 "# HELP vigil_alert_list_invalid_total Records of the alerts topic that are "
                 "not alerts (skipped).\n"
                 "# TYPE vigil_alert_list_invalid_total counter\n"
                 "vigil_alert_list_invalid_total %" PRIu64 "\n"
                 "# HELP vigil_alert_list_erased_total Listed alerts deleted by erasures of "
                 "their account (the erasures topic).\n"
                 "# TYPE vigil_alert_list_erased_total counter\n"
                 "vigil_alert_list_erased_total %" PRIu64 "\n"
                 "# HELP vigil_alert_list_partitions Partitions of the alerts topic read.\n"
                 "# TYPE vigil_alert_list_partitions gauge\nvigil_alert_list_partitions %d\n",
                 (uint64_t)atomic_load(&a->feed_indexed), (uint64_t)atomic_load(&a->feed_dups),
                 (uint64_t)atomic_load(&a->feed_bad), (uint64_t)atomic_load(&a->feed_erased),
                 vg_kafka_tail_partitions(a->feed));
        vg_buf_puts(b, line);
    }
    if (a->extra_metrics) a->extra_metrics(a->extra_metrics_ctx, b);
}

/* 409: the account's state lives in a Kafka partition another instance owns; its
 * HTTP address from the owner registry (Redis), null when unknown. */
void vg_api_self_url(vg_api_t *a, char *url, size_t len) {
    if (a->cfg->advertise) {
        snprintf(url, len, "%.590s", a->cfg->advertise);
        return;
    }
    const char *h = a->cfg->http, *colon = strrchr(h, ':');
    int port = vg_api_port(a);
    const char *sch = vg_api_scheme(a);
    if (colon && port > 0)
        snprintf(url, len, "%s://%.*s:%d", sch, (int)(colon - h), h, port);
    else
        snprintf(url, len, "%s://%.580s", sch, h);
}

void vg_api_not_owner(vg_api_t *a, vg_resp_t *r, const char *acct, size_t alen, int32_t part) {
    char url[600], self[600];
    int known = part >= 0 && a->redis &&
                vg_redis_owner_get(a->redis, a->cfg->group ? a->cfg->group : "vigil", part, url,
                                   sizeof(url)) == 0;
    /* Redis still names this instance (it owned the partition, or will once the
     * rebalance under way assigns it): no other instance to send the client to */
    int self_named = 0;
    if (known) {
        vg_api_self_url(a, self, sizeof(self));
        self_named = strcmp(url, self) == 0;
        if (self_named) known = 0;
    }
    char msg[512];
    snprintf(msg, sizeof(msg), "account %.*s is in Kafka partition %d, owned by %s",
             (int)(alen > 200 ? 200 : alen), acct, (int)part,
             known ? "another instance"
             : self_named ? "no instance right now (a rebalance is under way: retry)"
                          : "an unknown instance");
    json_t *e = json_pack("{s:s,s:s,s:i}", "code", "not_owner", "message", msg, "partition",
                          (int)part);
    json_object_set_new(e, "owner", known ? json_string(url) : json_null());
    atomic_fetch_add(&a->not_owner, 1);
    vg_resp_json(r, 409, json_pack("{s:o}", "error", e));
}

/* An event refused over HTTP (not a dry run): counted in vigil_decisions_total's
 * "rejected" and by its code in vigil_rejected_total (only the total was, and without
 * the 413s of an event over 64 KiB or the empty body: an on-call engineer could not tell a
 * client with a wrong clock, `future`, from one sending bad JSON). */
static void count_rejected(vg_api_t *a, vg_reject_t code) {
    atomic_fetch_add(&a->rejected, 1);
    if ((int)code > 0 && (int)code < VG_REJECT__COUNT) atomic_fetch_add(&a->rejected_by[code], 1);
}

/* A score request refused as too large before the engine saw it (its Content-Length, or
 * its body past the limit): counted unless it asked for a dry run. */
static void count_score_too_large(vg_api_t *a, struct MHD_Connection *c, vg_route_t rt) {
    if (rt != VG_ROUTE_SCORE) return;
    const char *dr = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "dry_run");
    if (dr && (strcmp(dr, "true") == 0 || strcmp(dr, "1") == 0)) return;
    count_rejected(a, VG_REJECT_TOO_LARGE);
}

/* h_score's answer from the engine's (or the partition's) result: rc, *res and the
 * decision or rejection line in q->out. */
static void score_answer(vg_api_t *a, vg_req_t *q, vg_resp_t *r, int rc,
                         const vg_engine_result_t *res, int dry) {
    vg_buf_t *out = q->out;
    if (rc == VG_ELIMIT) {
        atomic_fetch_add(&a->overloaded, 1);
        r->retry_after = 1;
        vg_resp_error(r, 429, "overloaded", "the engine is busy; retry later");
        return;
    }
    if (rc == VG_EINVAL) {
        vg_resp_error(r, 400, "bad_request", "dry runs need a state directory");
        return;
    }
    if (rc) {
        vg_resp_error(r, 500, "internal", "engine failure: %s", vg_strerror(rc));
        return;
    }
    if (out->len && out->p[out->len - 1] == '\n') out->len--;
    if (res->outcome == VG_OUT_REJECTED) {
        /* {"id":..,"error":"..","code":".."} -> the error shape of section 6 */
        json_t *j = json_loadb(out->p, out->len, JSON_ALLOW_NUL, NULL);
        const char *code = vg_reject_code(res->reject);
        const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
        json_t *e = json_pack("{s:s,s:s}", "code", code, "message", msg ? msg : code);
        json_t *id = j ? json_object_get(j, "id") : NULL;
        json_object_set(e, "id", id ? id : json_null());
        json_decref(j);
        if (!dry) count_rejected(a, res->reject);   /* dry runs are not counted */
        vg_resp_json(r, res->reject == VG_REJECT_TOO_LARGE ? 413 : 400, json_pack("{s:o}", "error", e));
        return;
    }
    if (res->outcome == VG_OUT_BLANK) {
        if (!dry) count_rejected(a, VG_REJECT_INVALID_JSON);
        vg_resp_error(r, 400, "invalid_json", "the body is empty");
        resp_error_id(r, NULL, 0);
        return;
    }
    r->status = 200;
    r->ctype = "application/json";
    vg_buf_clear(&r->body);
    vg_buf_append(&r->body, out->p, out->len);
    if (res->outcome == VG_OUT_DUPLICATE) {
        /* as decisions: a dry run is not counted (it counted duplicates only) */
        if (!dry) atomic_fetch_add(&a->duplicates, 1);
        return;
    }
    if (!dry)
        vg_api_record_decision(a, q->ectx->ev.account.p, q->ectx->ev.account.len, out->p,
                               out->len, res->alert);
}

/* dry_run of a score request: 0/1 in *dry, or -1 with the error in r. */
static int score_dry(vg_req_t *q, vg_resp_t *r, int *dry) {
    const char *dr = vg_req_arg(q, "dry_run");
    *dry = dr && (strcmp(dr, "true") == 0 || strcmp(dr, "1") == 0);
    if (dr && !*dry && strcmp(dr, "false") != 0 && strcmp(dr, "0") != 0) {
        vg_resp_error(r, 400, "bad_request", "dry_run must be true or false");
        return -1;
    }
    return 0;
}

/* The time left before the request's deadline (microseconds); <= 0: 429 set in r. */
static int64_t score_left(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    int64_t left_us = a->cfg->deadline_ms * 1000 - (vg_api_mono_us() - q->start_us);
    if (left_us <= 0) {
        atomic_fetch_add(&a->overloaded, 1);
        r->retry_after = 1;
        vg_resp_error(r, 429, "overloaded", "the request waited longer than its deadline");
    }
    return left_us;
}

/* Scoring on the HTTP engine (no Kafka, or an event the partitions do not take). */
static void score_engine(vg_api_t *a, vg_req_t *q, vg_resp_t *r, int dry, int64_t left_us) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += (long)(left_us % 1000000) * 1000;
    dl.tv_sec += (time_t)(left_us / 1000000) + dl.tv_nsec / 1000000000;
    dl.tv_nsec %= 1000000000;
    vg_buf_clear(q->out);
    vg_engine_result_t res;
    int rc = vg_engine_score(a->eng, q->ectx, q->body, q->len, dry, &dl, q->out, &res);
    score_answer(a, q, r, rc, &res, dry);
}

/* The answer to a score the Kafka pipeline took or refused: rc and rs->kr. */
static void score_kafka_answer(vg_api_t *a, req_state_t *rs, vg_resp_t *r, int rc) {
    vg_req_t *q = &rs->q;
    if (rc == VG_ENOTFOUND && rs->kr.partition < 0) {
        /* the input topic's partitions are unknown (it did not exist at start):
         * nothing is routed, the HTTP engine decides */
        int64_t left_us = score_left(a, q, r);
        if (left_us > 0) score_engine(a, q, r, rs->kdry, left_us);
        return;
    }
    if (rc == VG_ENOTFOUND) {
        vg_api_not_owner(a, r, q->ectx->ev.account.p, q->ectx->ev.account.len, rs->kr.partition);
        return;
    }
    if (rc == VG_EIO) {
        r->retry_after = 1;
        vg_resp_error(r, 503, "unavailable", "the Kafka pipeline is not running");
        return;
    }
    vg_engine_result_t res;
    memset(&res, 0, sizeof(res));
    res.outcome = rs->kr.outcome;
    res.reject = rs->kr.reject;
    res.alert = rs->kr.alert;
    res.ruleset = rs->kr.ruleset;
    score_answer(a, q, r, rc, &res, rs->kdry);
}

/* Called by the partition's thread (or the deadline thread) once the queued score is
 * answered: the connection resumes and on_request sends the answer. rs may be freed
 * as soon as the connection is resumed. */
static void score_kafka_done(void *arg) {
    req_state_t *rs = arg;
    vg_api_t *a = rs->a;
    MHD_resume_connection(rs->conn);
    atomic_fetch_sub(&a->kafka_inflight, 1);
}

/* A request about to wait for a Kafka partition's thread: counted (vg_api_stop waits
 * for it) and bound to its connection for score_kafka_done. 0, or -1 with a 503 in r
 * while the service stops. */
static int kafka_wait_begin(vg_api_t *a, req_state_t *rs, struct MHD_Connection *c,
                            vg_resp_t *r) {
    atomic_fetch_add(&a->kafka_inflight, 1);
    if (atomic_load(&a->stopping)) {
        atomic_fetch_sub(&a->kafka_inflight, 1);
        r->retry_after = 1;
        vg_resp_error(r, 503, "unavailable", "the service is stopping");
        return -1;
    }
    rs->a = a;
    rs->conn = c;
    return 0;
}

/* POST /v1/score with the Kafka pipeline: the event goes to the thread that owns the
 * account's partition; this thread does not wait for it (the connection is suspended
 * and resumed by score_kafka_done). 1: suspended (the answer comes later); 0: the
 * answer is in r. */
static int score_kafka_start(vg_api_t *a, req_state_t *rs, struct MHD_Connection *c,
                             vg_resp_t *r) {
    vg_req_t *q = &rs->q;
    if (score_dry(q, r, &rs->kdry) != 0) return 0;
    int64_t left_us = score_left(a, q, r);
    if (left_us <= 0) return 0;
    if (vg_event_parse(&q->ectx->ev, q->body, q->len) != 0) {
        /* bad input: the HTTP engine rejects it as it would anywhere */
        score_engine(a, q, r, rs->kdry, left_us);
        return 0;
    }
    if (kafka_wait_begin(a, rs, c, r) != 0) return 0;
    rs->kpending = 1;
    vg_buf_clear(q->out);
    /* suspended before it is queued: the answer may come before this call returns */
    MHD_suspend_connection(c);
    int rc = vg_kafka_score_async(a->kafka, &rs->kq, q->ectx->ev.account.p,
                                  q->ectx->ev.account.len, q->body, q->len, rs->kdry,
                                  vg_api_mono_us() + left_us, q->out, &rs->kr, score_kafka_done, rs);
    if (rc != 0) {   /* refused at once: answered when the connection resumes */
        rs->kq.rc = rc;
        score_kafka_done(rs);
    }
    return 1;
}

/* GET or DELETE /v1/accounts/{a} and POST /v1/accounts/{a}/reset-baseline with the
 * Kafka pipeline: the view, erasure or reset goes to the thread that owns the account's
 * partition first, and this thread does not wait for it (the connection is suspended and
 * resumed by score_kafka_done, like a score's); the handler then runs with the answer
 * (vg_req_t.kp). 1: suspended; 0: not such a request here (the handler answers it as it
 * is: a bad account, say); the answer is in r when refused at once. */
static int account_kafka_start(vg_api_t *a, req_state_t *rs, struct MHD_Connection *c,
                               vg_resp_t *r) {
    vg_req_t *q = &rs->q;
    if (q->route != VG_ROUTE_ACCOUNT && q->route != VG_ROUTE_ACCOUNT_RESET) return 0;
    const char *acct = q->nseg > 0 ? q->seg[0] : "";
    size_t al = strlen(acct);
    if (al == 0 || al > VG_EVENT_MAX_ID) return 0;
    int view = q->route == VG_ROUTE_ACCOUNT && strcmp(q->method, "DELETE") != 0;
    int erase = q->route == VG_ROUTE_ACCOUNT && !view;
    if (kafka_wait_begin(a, rs, c, r) != 0) return 0;
    rs->kacct = 1;
    vg_buf_clear(&rs->kview);
    int rc = vg_buf_putc(&rs->kview, '{');
    /* suspended before it is queued: the answer may come before this call returns */
    MHD_suspend_connection(c);
    if (rc == 0 && view)
        rc = vg_kafka_account_view_async(a->kafka, &rs->kq, acct, al, VG_RECENT_MAX,
                                         vg_api_mono_us() + VG_KVIEW_WAIT_MS * 1000LL, &rs->kview,
                                         &rs->kr, score_kafka_done, rs);
    else if (rc == 0)
        rc = vg_kafka_account_op_async(a->kafka, &rs->kq, erase, acct, al,
                                       vg_api_mono_us() + VG_KOP_WAIT_MS * 1000LL, &rs->kr,
                                       score_kafka_done, rs);
    else
        rs->kr.partition = -1;
    if (rc != 0) {   /* refused at once: answered when the connection resumes */
        rs->kq.rc = rc;
        score_kafka_done(rs);
    }
    return 1;
}

/* DELETE /v1/accounts/{a}: its handler purges the erased records from the stores'
 * files (docs/architecture.md, Erasure), a compaction of seconds on a large state. It
 * runs on a thread of its own, one erasure at a time, with the connection suspended
 * (resumed by score_kafka_done, like a Kafka score's): run on libmicrohttpd's thread it
 * stalled every connection of that thread, /healthz and scores included, for as long
 * (found by a tester: 1.7 s on 40,000 accounts, 8 s with six at once). */
static void dispatch(vg_api_t *a, vg_req_t *q, vg_resp_t *r);

static int is_erasure(const vg_req_t *q) {
    return q->route == VG_ROUTE_ACCOUNT && strcmp(q->method, "DELETE") == 0;
}

/* A write that may take seconds: an erasure (its purge compacts the stores), a list's
 * (a list of a million items is copied, written and indexed again: 1 to 2.7 s, during
 * which every connection of the HTTP thread that ran it waited, scores too, and none
 * got its 429: a scale tester), a rule module's (a ruleset swap with many accounts in
 * memory). Run on a thread of their own, the connection suspended. */
static int runs_apart(const vg_req_t *q) {
    if (is_erasure(q)) return 1;
    int get = strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0;
    return !get && (q->route == VG_ROUTE_LIST || q->route == VG_ROUTE_LIST_ITEM ||
                    q->route == VG_ROUTE_RULE || q->route == VG_ROUTE_RULE_ROLLBACK);
}

static void *erase_main(void *arg) {
    req_state_t *rs = arg;
    vg_api_t *a = rs->a;
    pthread_mutex_t *mu = is_erasure(&rs->q) ? &a->erase_mu : &a->write_mu;
    pthread_mutex_lock(mu);
    dispatch(a, &rs->q, &rs->eresp);
    pthread_mutex_unlock(mu);
    score_kafka_done(rs);   /* rs may be freed from here on */
    return NULL;
}

/* 1: suspended (the answer comes when the erasure's thread is done); 0: not started
 * (stopping: the 503 is in r; no thread: the caller runs the handler itself). */
static int erase_start(vg_api_t *a, req_state_t *rs, struct MHD_Connection *c, vg_resp_t *r) {
    if (kafka_wait_begin(a, rs, c, r) != 0) return 0;
    memset(&rs->eresp, 0, sizeof(rs->eresp));
    vg_buf_init(&rs->eresp.body);
    rs->erasing = 1;
    /* suspended before the thread starts: the answer may come before this returns */
    MHD_suspend_connection(c);
    pthread_attr_t at;
    pthread_t t;
    int ok = pthread_attr_init(&at) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&t, &at, erase_main, rs) == 0;
        pthread_attr_destroy(&at);
    }
    if (!ok) {   /* no thread: run here, as before */
        pthread_mutex_t *mu = is_erasure(&rs->q) ? &a->erase_mu : &a->write_mu;
        pthread_mutex_lock(mu);
        dispatch(a, &rs->q, &rs->eresp);
        pthread_mutex_unlock(mu);
        score_kafka_done(rs);
    }
    return 1;
}

/* POST /v1/score without the Kafka pipeline. */
static void h_score(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    int dry;
    if (score_dry(q, r, &dry) != 0) return;
    int64_t left_us = score_left(a, q, r);
    if (left_us > 0) score_engine(a, q, r, dry, left_us);
}

/* /readyz's `kafka` member (serve --kafka) added to j: whether the brokers are reachable
 * (else for how long), the input partitions owned and the topic's, the lag, a rebalance
 * in progress. Returns 1 while a processing thread waits for its assignment after the
 * group took its partitions (rebalancing), and when the brokers have been unreachable for
 * longer than the group's session timeout:
 * the group has then taken this instance's partitions (it neither consumes nor can
 * decide an event: every score is 409 not_owner), so it is not ready (SPEC section 5,
 * "answers 200 once it consumes and serves"). An instance that owns no partition with
 * the brokers reachable (more instances than partitions) stays ready: it sends its
 * clients to the owners. */
static int kafka_readyz(vg_api_t *a, json_t *j) {
    vg_kafka_stats_t ks;
    vg_kafka_get_stats(a->kafka, &ks);
    int64_t down = vg_kafka_down_ms(a->kafka);
    int64_t sess = atomic_load(&a->kafka_session_ms);
    if (!sess) {
        char v[32];
        sess = vg_kafka_client_conf(a->kafka, 1, "session.timeout.ms", v, sizeof v) == 0
                   ? strtoll(v, NULL, 10) : 0;
        if (sess <= 0) sess = 45000;   /* librdkafka's default */
        atomic_store(&a->kafka_session_ms, sess);
    }
    json_t *k = json_pack("{s:s}", "brokers", down ? "unreachable" : "reachable");
    if (down) json_object_set_new(k, "unreachable_s", json_integer((json_int_t)(down / 1000)));
    /* past the session timeout the group has taken them (or will at the rejoin): this
     * instance owns none, whatever its threads still hold until librdkafka revokes them
     * ("partitions":4 13 s into an outage with a 6 s session before 2026-12-08) */
    int lost = down > sess;
    json_object_set_new(k, "partitions", json_integer(lost ? 0 : (json_int_t)ks.partitions));
    json_object_set_new(k, "input_partitions", json_integer((json_int_t)ks.input_partitions));
    json_object_set_new(k, "lag", ks.lag >= 0 ? json_integer((json_int_t)ks.lag) : json_null());
    json_object_set_new(k, "session_timeout_ms", json_integer((json_int_t)sess));
    /* a processing thread between the group's revocation and its next assignment: the
     * partitions are being moved (a rebalance, the rejoin after an outage) and it
     * consumes nothing; scores for its accounts would answer 409 with no owner */
    int64_t rb = vg_kafka_rebalancing_ms(a->kafka);
    if (rb) json_object_set_new(k, "rebalancing_s", json_integer((json_int_t)(rb / 1000)));
    json_object_set_new(j, "kafka", k);
    return lost || rb > 0;
}

static void dispatch(vg_api_t *a, vg_req_t *q, vg_resp_t *r) {
    switch (q->route) {
    case VG_ROUTE_HEALTHZ:
        vg_resp_json(r, 200, json_pack("{s:s}", "status", "ok"));
        break;
    case VG_ROUTE_READYZ: {
        int ready = atomic_load(&a->ready);
        int64_t rs, newest;
        /* a probe never waits on a ruleset swap (it held /readyz for 2-3 s): the figures
         * of the last answer then */
        if (pthread_mutex_trylock(&a->mu) == 0) {
            rs = a->active_ruleset;
            newest = a->ruleset;
            pthread_mutex_unlock(&a->mu);
            atomic_store(&a->rz_active, rs);
            atomic_store(&a->rz_newest, newest);
        } else {
            rs = atomic_load(&a->rz_active);
            newest = atomic_load(&a->rz_newest);
        }
        if (!ready) r->retry_after = 1;
        json_t *j = json_pack("{s:s,s:I}", "status", ready ? "ready" : "starting", "ruleset",
                              (json_int_t)rs);
        /* newer modules are stored but do not compile here (docs/api.md) */
        if (newest != rs) json_object_set_new(j, "newest_ruleset", json_integer(newest));
        /* a damaged state fails only the accounts whose records cannot be read: ready */
        uint64_t rf = vg_engine_read_failures(a->eng);
        if (rf) json_object_set_new(j, "state_read_failures", json_integer((json_int_t)rf));
        if (a->redis) {   /* scoring goes on without it: information, not readiness */
            int64_t age;
            int st = redis_state(a, &age);
            static const char *const names[3] = {"down", "synchronising", "synchronised"};
            json_t *rj = json_pack("{s:s,s:I}", "status", names[st], "sync_age_s",
                                   (json_int_t)age);
            if (st == 0) json_object_set_new(rj, "why", json_string(vg_redis_down_why(a->redis)));
            json_object_set_new(j, "redis", rj);
        }
        int kafka_gone = a->kafka && ready && kafka_readyz(a, j);
        if (kafka_gone) {
            r->retry_after = 1;
            json_object_set_new(j, "status", json_string("unavailable"));
        }
        vg_resp_json(r, ready && !kafka_gone ? 200 : 503, j);
        break;
    }
    case VG_ROUTE_METRICS: h_metrics(a, r); break;
    case VG_ROUTE_OPENAPI:
        r->status = 200;
        r->ctype = "application/json";
        vg_buf_puts(&r->body, vg_openapi_json);
        break;
    case VG_ROUTE_SCORE: h_score(a, q, r); break;
    case VG_ROUTE_RULES: vg_h_rules(a, q, r); break;
    case VG_ROUTE_RULE: vg_h_rule(a, q, r); break;
    case VG_ROUTE_RULE_VERSIONS: vg_h_rule_versions(a, q, r); break;
    case VG_ROUTE_RULE_ROLLBACK: vg_h_rule_rollback(a, q, r); break;
    case VG_ROUTE_VALIDATE: vg_h_validate(a, q, r); break;
    case VG_ROUTE_ACCOUNT: vg_h_account(a, q, r); break;
    case VG_ROUTE_ACCOUNT_RESET: vg_h_account_reset(a, q, r); break;
    case VG_ROUTE_ALERTS: vg_h_alerts(a, q, r); break;
    case VG_ROUTE_LISTS: vg_h_lists(a, q, r); break;
    case VG_ROUTE_LIST: vg_h_list(a, q, r); break;
    case VG_ROUTE_LIST_ITEM: vg_h_list_item(a, q, r); break;
    case VG_ROUTE_LABELS: vg_h_labels(a, q, r); break;
    case VG_ROUTE_AUDIT: vg_h_audit(a, q, r); break;
    default: vg_resp_error(r, 404, "not_found", "no such route"); break;
    }
}

/* 1 when the NUL-terminated s is valid UTF-8. */
static int is_utf8(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), k;
    for (size_t j = 0; j < n; j += k)
        if (!(k = vg_utf8_seq(u + j, n - j))) return 0;
    return 1;
}

/* 1 when every path segment of q is valid UTF-8 (after libmicrohttpd's percent
 * decoding). */
static int segs_utf8(const vg_req_t *q) {
    for (int i = 0; i < q->nseg; i++)
        if (!is_utf8(q->seg[i])) return 0;
    return 1;
}

/* ---- query parameters -------------------------------------------------------------- */

/* The query parameters each /v1 route knows (NULL-terminated; none for the others).
 * /healthz, /readyz and /metrics are not checked (probes and scrapers may add their own). */
static const char *const *route_params(vg_route_t rt) {
    static const char *const score[] = {"dry_run", NULL};
    static const char *const validate[] = {"module", NULL};
    static const char *const rollback[] = {"version", NULL};
    static const char *const alerts[] = {"account", "rule", "since", "limit", "cursor", NULL};
    static const char *const audit[] = {"action", "target", "limit", "cursor", NULL};
    static const char *const none[] = {NULL};
    switch (rt) {
    case VG_ROUTE_SCORE: return score;
    case VG_ROUTE_VALIDATE: return validate;
    case VG_ROUTE_RULE_ROLLBACK: return rollback;
    case VG_ROUTE_ALERTS: return alerts;
    case VG_ROUTE_AUDIT: return audit;
    case VG_ROUTE_HEALTHZ: case VG_ROUTE_READYZ: case VG_ROUTE_METRICS: return NULL;
    default: return none;
    }
}

typedef struct query_check {
    const char *const *known;
    unsigned seen;       /* bit i: known[i] was given */
    int empty_ok;        /* an empty value means "not given" (the list filters) */
    vg_resp_t *r;        /* the error, when one is found */
} query_check_t;

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
    (void)kind;
    query_check_t *qc = cls;
    if (!key || (!*key && !value)) return MHD_YES;   /* a stray '&' */
    int i = 0;
    while (qc->known[i] && strcmp(qc->known[i], key) != 0) i++;
    if (!qc->known[i])
        vg_resp_error(qc->r, 400, "bad_request", "unknown query parameter '%.100s'%s", key,
                      qc->known[0] ? "" : " (this route takes none)");
    else if (qc->seen & (1u << i))
        vg_resp_error(qc->r, 400, "bad_request", "query parameter '%s' is given twice", key);
    else if (!value)
        vg_resp_error(qc->r, 400, "bad_request", "query parameter '%s' needs a value (%s=...)",
                      key, key);
    else if (!*value && !qc->empty_ok)
        vg_resp_error(qc->r, 400, "bad_request", "query parameter '%s' is empty", key);
    else if (!is_utf8(value))
        /* as a path segment: no account, rule or target is named so (a mis-encoded
         * filter found nothing, 200 with an empty list, before 2026-12-07) */
        vg_resp_error(qc->r, 400, "bad_request", "query parameter '%s' is not valid UTF-8",
                      key);
    else {
        qc->seen |= 1u << i;
        return MHD_YES;
    }
    return MHD_NO;
}

/* 0 when every query parameter is one the route knows, given once with a value
 * (non-empty, except the filters of the alert and audit lists, where an empty one is
 * not given: SPEC section 6 writes them `?account=&rule=&since=&limit=&cursor=`); else
 * -1 with a 400 in r naming the parameter (a typo such as `dryrun=true`, or a bare
 * `dry_run`, used to be ignored: the event was scored for real). */
static int check_query(struct MHD_Connection *c, vg_route_t rt, vg_resp_t *r) {
    query_check_t qc = {route_params(rt), 0, rt == VG_ROUTE_ALERTS || rt == VG_ROUTE_AUDIT, r};
    if (!qc.known) return 0;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_cb, &qc);
    return r->status ? -1 : 0;
}

/* A request refused by auth, on stderr (a security team looks for the denied attempts:
 * who, what, from where; only a counter had them): one line a second at most, the ones
 * not written counted in the next. The token is never shown, only its pseudonym. */
static void log_denied(vg_api_t *a, struct MHD_Connection *c, const req_state_t *rs,
                       int status, const char *why) {
    const vg_req_t *q = &rs->q;
    conns_t *cs = a->conns;
    if (!cs) return;
    pthread_mutex_lock(&cs->mu);
    int64_t now = vg_api_mono_us();
    if (cs->denied_logged_us && now - cs->denied_logged_us < 1000000) {
        cs->denied_unlogged++;
        pthread_mutex_unlock(&cs->mu);
        return;
    }
    uint64_t more = cs->denied_unlogged;
    cs->denied_unlogged = 0;
    cs->denied_logged_us = now;
    pthread_mutex_unlock(&cs->mu);
    char from[INET6_ADDRSTRLEN] = "?";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, from,
                  sizeof from);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, from,
                  sizeof from);
    char tail[64] = "";
    if (more) snprintf(tail, sizeof tail, " (%" PRIu64 " more refused since the last line)", more);
    /* the route, not the path as sent (a path's bytes would go to the log as they are) */
    fprintf(stderr, "vigil serve: refused %d: %s %s by %s from %s: %s%s\n", status, q->method,
            ROUTE_NAMES[rs->def.route], q->who, from, why, tail);
}

/* Auth: 0 when allowed, else the error set in r. */
static int authorize(vg_api_t *a, struct MHD_Connection *c, req_state_t *rs, vg_resp_t *r) {
    vg_req_t *q = &rs->q;
    int is_get = strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0;
    vg_role_t need = is_get ? rs->def.need_get : rs->def.need_other;
    snprintf(q->who, sizeof(q->who), "anonymous");
    if (a->cfg->ntokens == 0) {
        q->role = VG_ROLE_ADMIN;
        return 0;
    }
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (need == VG_ROLE_NONE) {
        q->role = VG_ROLE_NONE;
        return 0;
    }
    if (!h) {
        r->www_auth = 1;
        vg_resp_error(r, 401, "unauthorized", "a bearer token is required");
        log_denied(a, c, rs, 401, "no token");
        return -1;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        r->www_auth = 1;
        vg_resp_error(r, 401, "unauthorized", "the Authorization header must be `Bearer TOKEN`");
        log_denied(a, c, rs, 401, "not a bearer token");
        return -1;
    }
    /* optional whitespace around the token is not part of it (RFC 9110 section 5.5) */
    const char *t = h + 7;
    while (*t == ' ' || *t == '\t') t++;
    size_t tl = strlen(t);
    while (tl > 0 && (t[tl - 1] == ' ' || t[tl - 1] == '\t')) tl--;
    unsigned char hash[4];
    q->role = vg_config_role(a->cfg, t, tl, hash);
    if (q->role == VG_ROLE_NONE) {
        r->www_auth = 1;
        vg_resp_error(r, 401, "unauthorized", "unknown token");
        log_denied(a, c, rs, 401, tl ? "unknown token" : "no token");
        return -1;
    }
    snprintf(q->who, sizeof(q->who), "%s:%02x%02x%02x%02x", vg_role_name(q->role), hash[0],
             hash[1], hash[2], hash[3]);
    if (q->role < need) {
        vg_resp_error(r, 403, "forbidden", "role %s may not %s %s (needs %s)", vg_role_name(q->role),
                      q->method, ROUTE_NAMES[rs->def.route], vg_role_name(need));
        char why[48];
        snprintf(why, sizeof why, "role %s, needs %s", vg_role_name(q->role), vg_role_name(need));
        log_denied(a, c, rs, 403, why);
        return -1;
    }
    return 0;
}

/* 0 when the route and method take no body (docs/api.md): every GET, every DELETE,
 * PUT /v1/lists/{name}/{item} and POST /v1/accounts/{account}/reset-baseline. A rollback
 * takes one unless ?version= is given (vg_h_rule_rollback says). /healthz, /readyz and
 * /metrics are not checked, as their query is not. */
static int takes_body(vg_route_t rt, const char *method) {
    switch (rt) {
    case VG_ROUTE_SCORE:
    case VG_ROUTE_VALIDATE:
    case VG_ROUTE_LABELS:
    case VG_ROUTE_RULE_ROLLBACK:
    case VG_ROUTE_HEALTHZ:
    case VG_ROUTE_READYZ:
    case VG_ROUTE_METRICS: return 1;
    case VG_ROUTE_RULE:
    case VG_ROUTE_LIST: return strcmp(method, "PUT") == 0;
    default: return 0;
    }
}

/* The body limit of a route: max-body, and never more than an event (64 KiB) or a
 * module (1 MiB) can be. */
static size_t route_limit(vg_api_t *a, vg_route_t rt) {
    size_t mb = a->cfg->max_body;
    if (rt == VG_ROUTE_SCORE) return mb < VG_EVENT_MAX_BYTES ? mb : VG_EVENT_MAX_BYTES;
    if (rt == VG_ROUTE_RULE || rt == VG_ROUTE_VALIDATE)
        return mb < VG_RULES_MAX_SOURCE ? mb : VG_RULES_MAX_SOURCE;
    return mb;
}

/* The bytes a body may have beyond route_limit: for an event, one trailing newline
 * (LF or CR LF), which SPEC section 1 does not count in the 64 KiB of a line (replay and
 * Kafka took a line of 65,536 bytes and its newline; POST /v1/score answered 413 before
 * 2026-12-07). */
static size_t route_slack(vg_route_t rt) { return rt == VG_ROUTE_SCORE ? 2 : 0; }

/* The body's length without the one trailing newline (LF or CR LF) an event may have. */
static size_t event_len(const char *p, size_t n) {
    if (n && p[n - 1] == '\n') {
        n--;
        if (n && p[n - 1] == '\r') n--;
    }
    return n;
}

/* What bounds route_limit, for 413 messages. */
static const char *limit_why(vg_route_t rt) {
    if (rt == VG_ROUTE_SCORE) return "max-body, and at most 64 KiB for an event";
    if (rt == VG_ROUTE_RULE || rt == VG_ROUTE_VALIDATE)
        return "max-body, and at most 1 MiB for a module";
    return "max-body";
}

/* The configured request-timeout in whole seconds (libmicrohttpd's unit; at least 1). */
static unsigned timeout_s(const vg_api_t *a) {
    int64_t s = (a->cfg->request_timeout_ms + 999) / 1000;
    return s < 1 ? 1 : s > 86400 * 365 ? 86400 * 365 : (unsigned)s;
}

/* 1 when the body bytes received so far are all that Content-Length announced. */
static int body_complete(struct MHD_Connection *c, const req_state_t *rs) {
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    char *end;
    if (!cl || *cl < '0' || *cl > '9') return 0;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    return errno == 0 && *end == 0 && n == rs->received;
}

/* A chunk of the body arrived: the whole body must arrive within request-timeout of the
 * headers (the connection's idle timeout alone let a body trickled a byte at a time go on
 * for ever). 0 to go on; -1 to close the connection. */
static int body_time(vg_api_t *a, struct MHD_Connection *c, req_state_t *rs) {
    int64_t left_us = a->cfg->request_timeout_ms * 1000 - (vg_api_mono_us() - rs->start_us);
    if (left_us <= 0) rs->late = 1;
    if (rs->late) {
        /* libmicrohttpd (0.9.75) cannot answer in the middle of a body: 408 is answered
         * when this chunk ends it, else the connection is closed (which libmicrohttpd
         * logs as "Application reported internal error") */
        if (body_complete(c, rs)) return 0;
        fprintf(stderr, "vigil serve: closing a connection: its %s %s body did not arrive "
                "within request-timeout (%lld ms)\n", rs->q.method, ROUTE_NAMES[rs->def.route],
                (long long)a->cfg->request_timeout_ms);
        return -1;
    }
    /* the idle timeout shortened to the time left, so that a body that stops coming is
     * closed at the limit too; set back when the body is complete */
    unsigned s = (unsigned)((left_us + 999999) / 1000000);
    if (s < timeout_s(a) && s != rs->tmo_s) {
        rs->tmo_s = s;
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, s);
    }
    return 0;
}

/* The request's header fields as the framing rules want them (RFC 9112): */
typedef struct hdr_check {
    const char *nul;          /* the name of a field whose value has a NUL byte */
    const char *pk, *pv;      /* the field before (name, value) */
    size_t pvs;
    const char *cl;           /* the first Content-Length */
    size_t cl_len;
    int cl_differ;            /* another Content-Length with a different value */
    const char *te;           /* the first Transfer-Encoding */
    int te_n, auth_n, host_n; /* Transfer-Encoding, Authorization and Host fields */
    const char *bad_name;     /* a field name with whitespace (or empty) */
    int cl_bad;               /* a Content-Length that is not digits, or one folded */
} hdr_check_t;

/* Whether the value of the field before (h->pv) was cut at a NUL byte. libmicrohttpd
 * (0.9.75) measures a value with strlen() in its read buffer, where it ended the line
 * with NUL bytes in place of CR LF (or of LF alone): after the value's end come NUL
 * (its CR LF), or optional whitespace it trimmed and then NUL, or the next field's name
 * (a bare LF); anything else is the rest of a value that had a NUL byte. */
static void hdr_prev_nul(hdr_check_t *h, const char *next_key) {
    if (!h->pv || h->nul) return;
    const char *p = h->pv + h->pvs + 1;
    while (*p == ' ' || *p == '\t') p++;
    if (*p && p != next_key) h->nul = h->pk;
}

static enum MHD_Result hdr_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                              size_t key_size, const char *value, size_t value_size) {
    (void)kind;
    (void)key_size;
    hdr_check_t *h = cls;
    if (!key) return MHD_YES;
    hdr_prev_nul(h, key);
    h->pk = key;
    h->pv = value;
    h->pvs = value_size;
    /* `Content-Length : 5` is not a Content-Length to libmicrohttpd, which then read the
     * body as the next request (a proxy that trims the name frames it as this one's) */
    if (!h->bad_name && (!*key || strpbrk(key, " \t"))) h->bad_name = key;
    /* a framing field with its value on a folded line (obs-fold, RFC 9112 5.2):
     * libmicrohttpd joins the line to the name (`Content-Length:` CRLF ` 2` is the field
     * `Content-Length2`, empty), so there was no Content-Length and the body ran as the
     * next request (a hidden DELETE; found by a tester) */
    if ((!value || value_size == 0) && (strncasecmp(key, "Content-Length", 14) == 0 ||
                                        strncasecmp(key, "Transfer-Encoding", 17) == 0))
        h->cl_bad = 1;
    if (strcasecmp(key, "Transfer-Encoding") == 0) h->te_n++;
    else if (strcasecmp(key, "Authorization") == 0) h->auth_n++;
    else if (strcasecmp(key, "Host") == 0) h->host_n++;
    if (!value) return MHD_YES;
    if (strcasecmp(key, "Content-Length") == 0) {
        size_t d = 0;
        while (d < value_size && value[d] >= '0' && value[d] <= '9') d++;
        if (value_size == 0 || d != value_size) h->cl_bad = 1;
        if (!h->cl) {
            h->cl = value;
            h->cl_len = value_size;
        } else if (value_size != h->cl_len || memcmp(value, h->cl, value_size) != 0) {
            h->cl_differ = 1;
        }
    } else if (strcasecmp(key, "Transfer-Encoding") == 0 && !h->te) {
        h->te = value;
    }
    return MHD_YES;
}

/* Refuses what libmicrohttpd lets through but the request's framing or its fields
 * make ambiguous: a NUL byte in a field (libmicrohttpd's lookups cut the value there:
 * `Bearer TOKEN\0junk` was the token), two Content-Length fields with different
 * values (libmicrohttpd used the first and read the rest of the body as the next
 * request: request smuggling; identical ones are one, as RFC 9112 section 6.3 allows),
 * a transfer coding other than chunked (RFC 9112 section 6.1: 501; libmicrohttpd waited
 * for a body it could not frame until request-timeout). 0, or -1 with the answer in r;
 * the framing ones close the connection (nothing after them is read). */
static int check_headers(struct MHD_Connection *c, const char *version, vg_resp_t *r,
                         int *close_after) {
    hdr_check_t h = {0};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, hdr_cb, &h);
    hdr_prev_nul(&h, NULL);
    if (h.nul) {
        vg_resp_error(r, 400, "bad_request", "header field '%.64s' has a NUL byte", h.nul);
        r->close = 1;
        return -1;
    }
    if (h.bad_name) {   /* RFC 9112 section 5.1: whitespace before the colon is a 400 */
        /* the name not shown: a folded line's value (a token, say) may be joined to it */
        vg_resp_error(r, 400, "bad_request", "a header field name has whitespace (none may "
                      "come before the colon, and no line may be folded)");
        r->close = 1;
        return -1;
    }
    if (h.cl_bad) {
        vg_resp_error(r, 400, "bad_request", "a Content-Length or Transfer-Encoding without a "
                      "value, or not a number (a value on a folded line is not taken)");
        r->close = 1;
        return -1;
    }
    if (h.cl_differ) {
        vg_resp_error(r, 400, "bad_request", "two Content-Length header fields with different "
                      "values");
        r->close = 1;
        return -1;
    }
    if (h.te_n > 1) {   /* they add up to one list of codings: chunked only once, last */
        vg_resp_error(r, 501, "not_implemented", "Transfer-Encoding in %d header fields is "
                      "not supported (only chunked, once)", h.te_n);
        r->close = 1;
        return -1;
    }
    /* one caller and one host: with two, a proxy or an audit layer may read the other
     * (libmicrohttpd's lookup takes the first); RFC 9112 section 3.2 for Host */
    if (h.auth_n > 1) {
        vg_resp_error(r, 400, "bad_request", "two Authorization header fields");
        return -1;
    }
    if (h.host_n > 1 || (h.host_n == 0 && version && strcmp(version, "HTTP/1.1") == 0)) {
        vg_resp_error(r, 400, "bad_request", h.host_n ? "two Host header fields"
                                                      : "an HTTP/1.1 request without Host");
        return -1;
    }
    if (h.te && strcasecmp(h.te, "chunked") != 0) {
        vg_resp_error(r, 501, "not_implemented", "Transfer-Encoding '%.40s' is not supported "
                      "(only chunked)", h.te);
        r->close = 1;
        return -1;
    }
    /* chunked wins over a Content-Length, and Transfer-Encoding in HTTP/1.0 is faulty
     * framing: answered, then the connection is closed (RFC 9112 6.1, 6.3): what a
     * proxy framed otherwise is never read as another request */
    if (h.te && (h.cl || (version && strcmp(version, "HTTP/1.0") == 0))) *close_after = 1;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
    vg_api_t *a = cls;
    req_state_t *rs = *con_cls;
    if (!rs || !rs->started) {
        if (!rs) rs = calloc(1, sizeof(*rs));
        if (!rs) return MHD_NO;
        *con_cls = rs;
        rs->started = 1;
        rs->start_us = vg_api_mono_us();
        header_wait(a, c, 0);   /* the headers are complete */
        vg_buf_init(&rs->body);
        vg_resp_t r;
        memset(&r, 0, sizeof(r));
        vg_buf_init(&r.body);
        /* routed on the raw path when it is known (segments decoded one by one) */
        const char *route_path = rs->raw ? rs->raw : url;
        snprintf(rs->path, sizeof(rs->path), "%s", route_path);
        rs->q.method = method;
        rs->q.conn = c;
        rs->q.start_us = rs->start_us;
        int err = 0;
        const char *mbad = method_bad(method, rs->uri_at);
        if (mbad) {
            /* before 2026-12-07 `DELETE<NUL>JUNK /v1/accounts/victim` erased `victim`:
             * a filter by method saw an unknown method, vigil acted on the cut one */
            rs->def.route = VG_ROUTE_OTHER;
            vg_resp_error(&r, 400, "bad_request", "%s", mbad);
            r.close = 1;
            err = 1;
        } else if (rs->nul_in_uri) {
            rs->def.route = VG_ROUTE_OTHER;
            vg_resp_error(&r, 400, "bad_request", "the URL has a NUL byte (%%00)");
            err = 1;
        } else if (rs->bad_escape) {
            /* libmicrohttpd keeps `%zz`, `%4` and a last `%` as they are: before
             * 2026-12-07 /v1/accounts/%zz named the account "%zz" */
            rs->def.route = VG_ROUTE_OTHER;
            vg_resp_error(&r, 400, "bad_request", "the URL has a malformed percent-escape "
                          "'%s' at byte %d (a %% is followed by two hex digits)", rs->escape,
                          rs->bad_escape - 1);
            err = 1;
        } else if (check_headers(c, version, &r, &rs->close_after) != 0) {
            rs->def.route = VG_ROUTE_OTHER;
            err = 1;
        } else if (strlen(route_path) >= sizeof(rs->path)) {
            rs->def.route = VG_ROUTE_OTHER;
            vg_resp_error(&r, 414, "uri_too_long", "the path is %zu bytes, limit %zu",
                          strlen(route_path), sizeof(rs->path) - 1);
            err = 1;
        } else if (match(rs->path, rs->raw != NULL, &rs->q, &rs->def) != 0) {
            rs->def.route = VG_ROUTE_OTHER;
            vg_resp_error(&r, 404, "not_found", "no route %s", url);
            err = 1;
        } else if (!segs_utf8(&rs->q)) {
            /* an account, list, item or module named so can match no event (events
             * are UTF-8 JSON) and cannot be written back in a JSON answer */
            vg_resp_error(&r, 400, "bad_request", "a path segment is not valid UTF-8");
            err = 1;
        } else if (!(method_bit(method) & rs->def.methods)) {
            vg_resp_error(&r, 405, "method_not_allowed", "%s is not allowed on %s", method,
                          ROUTE_NAMES[rs->def.route]);
            err = 1;
        } else if (authorize(a, c, rs, &r) != 0) {
            err = 1;
        } else if (check_query(c, rs->def.route, &r) != 0) {
            err = 1;
        } else {
            rs->limit = route_limit(a, rs->def.route);
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
            if (cl && strtoull(cl, NULL, 10) > rs->limit + route_slack(rs->def.route)) {
                vg_resp_error(&r, 413, "too_large", "the body is %.40s bytes, limit %zu (%s)", cl,
                              rs->limit, limit_why(rs->def.route));
                count_score_too_large(a, c, rs->def.route);
                /* an event not read: its id is not known */
                if (rs->def.route == VG_ROUTE_SCORE) resp_error_id(&r, NULL, 0);
                err = 1;
            }
        }
        rs->q.route = rs->def.route;
        if (err) {
            rs->done = 1;
            enum MHD_Result ok = send_resp(a, c, rs, &r);
            vg_buf_deinit(&r.body);
            return ok;
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rs->done) {
            rs->received += *upload_size;
            if (body_time(a, c, rs) != 0) return MHD_NO;   /* closes the connection */
        }
        if (!rs->done && !rs->too_large && !rs->late) {
            size_t room = rs->limit + route_slack(rs->def.route) - rs->body.len;
            /* over the limit: its first bytes are kept (an event's id is read there) */
            if (*upload_size > room) rs->too_large = 1;
            vg_buf_append(&rs->body, upload, *upload_size > room ? room : *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rs->erasing) {   /* resumed: the erasure's thread answered (erase_start) */
        rs->erasing = 0;
        enum MHD_Result ok = send_resp(a, c, rs, &rs->eresp);
        vg_buf_deinit(&rs->eresp.body);
        return ok;
    }
    if (rs->kacct) {   /* resumed: the account's partition answered (account_kafka_start) */
        rs->kacct = 0;
        rs->kp = (vg_kphase_t){rs->kq.rc, rs->kr.partition, &rs->kview, rs->kr.found,
                               rs->kr.erased_at_ms};
        rs->q.kp = &rs->kp;
        vg_resp_t r;
        memset(&r, 0, sizeof(r));
        vg_buf_init(&r.body);
        if (is_erasure(&rs->q) && erase_start(a, rs, c, &r)) {
            vg_buf_deinit(&r.body);
            return MHD_YES;   /* suspended again: answered when the erasure is done */
        }
        if (r.status == 0) dispatch(a, &rs->q, &r);
        enum MHD_Result ok = send_resp(a, c, rs, &r);
        vg_buf_deinit(&r.body);
        return ok;
    }
    if (rs->kpending) {   /* resumed: the Kafka pipeline answered (score_kafka_start) */
        rs->kpending = 0;
        vg_resp_t r;
        memset(&r, 0, sizeof(r));
        vg_buf_init(&r.body);
        score_kafka_answer(a, rs, &r, rs->kq.rc);
        enum MHD_Result ok = send_resp(a, c, rs, &r);
        vg_buf_deinit(&r.body);
        return ok;
    }
    if (rs->done) return MHD_YES;
    rs->done = 1;
    if (rs->tmo_s)   /* the body's shortened timeout (body_time) back to request-timeout */
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, timeout_s(a));
    /* the request is complete: a score's deadline counts from here (the time its body
     * took to arrive is not time spent waiting for a shard) */
    rs->q.start_us = vg_api_mono_us();
    vg_resp_t r;
    memset(&r, 0, sizeof(r));
    vg_buf_init(&r.body);
    if (rs->late) {
        vg_resp_error(&r, 408, "request_timeout", "the body took longer than request-timeout "
                      "(%lld ms) to arrive", (long long)a->cfg->request_timeout_ms);
    } else if (rs->too_large) {
        vg_resp_error(&r, 413, "too_large", "the body is over the limit of %zu bytes (%s)",
                      rs->limit, limit_why(rs->def.route));
        count_score_too_large(a, c, rs->q.route);
        if (rs->q.route == VG_ROUTE_SCORE) resp_error_peek_id(&r, rs->body.p, rs->body.len);
    } else if (rs->q.route == VG_ROUTE_SCORE && event_len(rs->body.p, rs->body.len) > rs->limit) {
        /* within the slack of a newline, but not one (or more than the line) */
        size_t el = event_len(rs->body.p, rs->body.len);
        vg_resp_error(&r, 413, "too_large", "the body is %zu bytes%s, limit %zu (%s)", el,
                      el < rs->body.len ? " without its newline" : "", rs->limit,
                      limit_why(rs->def.route));
        count_score_too_large(a, c, rs->q.route);
        resp_error_peek_id(&r, rs->body.p, rs->body.len);
    } else {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        conn_ctx_t *x = ci ? ci->socket_context : NULL;
        if (!x) {
            vg_resp_error(&r, 500, "internal", "out of memory");
        } else if (rs->body.len > 0 && !takes_body(rs->q.route, rs->q.method)) {
            /* a body where none is documented was ignored: refused rather than guessed
             * at (docs/api.md, Errors) */
            vg_resp_error(&r, 400, "bad_request", "%s %s takes no body (%zu byte%s sent)",
                          rs->q.method, ROUTE_NAMES[rs->q.route], rs->body.len,
                          rs->body.len == 1 ? " was" : "s were");
        } else {
            rs->q.body = rs->body.p ? rs->body.p : "";
            rs->q.len = rs->q.route == VG_ROUTE_SCORE ? event_len(rs->body.p, rs->body.len)
                                                      : rs->body.len;
            rs->q.ectx = &x->ectx;
            rs->q.out = &x->out;
            if (rs->q.route == VG_ROUTE_SCORE && a->kafka) {
                if (score_kafka_start(a, rs, c, &r)) {
                    vg_buf_deinit(&r.body);
                    return MHD_YES;   /* suspended: answered when resumed */
                }
            } else if (a->kafka && account_kafka_start(a, rs, c, &r)) {
                vg_buf_deinit(&r.body);
                return MHD_YES;       /* suspended: answered when resumed */
            } else if (r.status == 0 && runs_apart(&rs->q)) {
                if (erase_start(a, rs, c, &r)) {
                    vg_buf_deinit(&r.body);
                    return MHD_YES;   /* suspended: answered when the erasure is done */
                }
            } else if (r.status == 0) {
                dispatch(a, &rs->q, &r);
            }
        }
    }
    enum MHD_Result ok = send_resp(a, c, rs, &r);
    vg_buf_deinit(&r.body);
    return ok;
}

/* A PEM file's text (at most 1 MiB), NUL-terminated, malloc'ed; NULL with errbuf. */
char *vg_api_read_pem(const char *path, const char *what, char *errbuf, size_t errlen) {
    char why[400];
    FILE *f = vg_file_fopen(path, why, sizeof why);   /* a FIFO: no wait for a writer */
    if (!f) {
        snprintf(errbuf, errlen, "%s %.350s", what, why);
        return NULL;
    }
    size_t cap = 1u << 20, n = 0;
    char *p = malloc(cap + 1);
    if (p) n = fread(p, 1, cap + 1, f);
    int err = ferror(f);
    fclose(f);
    if (p && n <= cap) p[n] = 0;
    if (!p || err || n > cap || n == 0 || strlen(p) != n || !strstr(p, "-----BEGIN ")) {
        snprintf(errbuf, errlen, "%s %.300s: %s", what, path,
                 !p ? "out of memory" : err ? "cannot read it" : n > cap ? "larger than 1 MiB"
                                                                     : "not a PEM file");
        free(p);
        return NULL;
    }
    return p;
}

const char *vg_api_scheme(const vg_api_t *a) {
    return a->cfg->tls_cert ? "https" : "http";
}

int vg_api_listen(vg_api_t *a, char *errbuf, size_t errlen) {
    const char *hp = a->cfg->http;
    struct sockaddr_storage sa;
    int rc = vg_config_http_addr(hp, &sa, errbuf, errlen);
    if (rc) return rc;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;   /* scores queued for Kafka partitions */
    uint16_t port;
    if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&sa;
        port = ntohs(s6->sin6_port);
        /* [::] takes IPv4 connections too (as most servers do); a given address only its own */
        flags |= IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    } else {
        port = ntohs(((const struct sockaddr_in *)&sa)->sin_port);
    }
    errno = 0;
    /* HTTPS: the certificate and key (PEM) read now, kept while the daemon runs */
    struct MHD_OptionItem tls[4] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL},
                                    {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
    if (a->cfg->tls_cert && a->cfg->tls_key) {
        if (!(a->tls_cert_pem = vg_api_read_pem(a->cfg->tls_cert, "tls-cert", errbuf, errlen)) ||
            !(a->tls_key_pem = vg_api_read_pem(a->cfg->tls_key, "tls-key", errbuf, errlen))) {
            free(a->tls_cert_pem);
            a->tls_cert_pem = NULL;
            return VG_EINVAL;
        }
        flags |= MHD_USE_TLS;
        tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key_pem};
        tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, a->tls_cert_pem};
        /* TLS 1.2 and 1.3 only (GnuTLS's NORMAL still offers 1.0 and 1.1) */
        tls[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                         (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
    }
    conns_t *cs = calloc(1, sizeof(*cs));
    if (!cs) {
        snprintf(errbuf, errlen, "out of memory");
        free(a->tls_cert_pem);
        free(a->tls_key_pem);
        a->tls_cert_pem = a->tls_key_pem = NULL;
        return VG_ENOMEM;
    }
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->cv, NULL);
    a->conns = cs;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, a,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,   /* first: it applies to the options too */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)a->cfg->threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)a->cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s(a),
        /* each connection's memory pool: the request line and header fields, a record
         * of each header field and query parameter, and the answer's headers. With the
         * default 32 KiB a URL of 2.8 KB with 469 query parameters got no answer at all
         * (the records did not fit, nor then libmicrohttpd's own 431); see
         * docs/api.md, "Answers of libmicrohttpd itself", for the limits this gives */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL_BYTES,
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn, a,
        MHD_OPTION_NOTIFY_COMPLETED, completed, a,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_END);
    if (d && pthread_create(&cs->thr, NULL, conns_main, a) != 0) {
        MHD_stop_daemon(d);
        d = NULL;
    }
    if (!d) {
        int e = errno;   /* the failing call's (bind: in use; epoll, sockets: file limit) */
        a->conns = NULL;
        pthread_cond_destroy(&cs->cv);
        pthread_mutex_destroy(&cs->mu);
        free(cs);
        if (a->tls_cert_pem)
            snprintf(errbuf, errlen, "cannot listen on %s with HTTPS: %s (are tls-cert and "
                     "tls-key a PEM certificate and its private key?)", hp,
                     e ? strerror(e) : "refused");
        else
            snprintf(errbuf, errlen, "cannot listen on %s: %s", hp,
                     e ? strerror(e) : "address in use?");
        free(a->tls_cert_pem);
        free(a->tls_key_pem);
        a->tls_cert_pem = a->tls_key_pem = NULL;
        return VG_EIO;
    }
    a->mhd = d;
    return 0;
}

int vg_api_port(vg_api_t *a) {
    if (!a->mhd) return 0;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : 0;
}

void vg_api_stop(vg_api_t *a) {
    if (!a->mhd) return;
    /* no suspended connection may be left when the daemon stops: new Kafka scores are
     * refused (503) and the queued ones answered first (their deadline bounds it) */
    atomic_store(&a->stopping, 1);
    while (atomic_load(&a->kafka_inflight) > 0) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(a->mhd);
    a->mhd = NULL;
    conns_t *cs = a->conns;   /* every connection is closed: the list is empty */
    pthread_mutex_lock(&cs->mu);
    cs->stop = 1;
    pthread_cond_signal(&cs->cv);
    pthread_mutex_unlock(&cs->mu);
    pthread_join(cs->thr, NULL);
    pthread_cond_destroy(&cs->cv);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
    a->conns = NULL;
    free(a->tls_cert_pem);
    free(a->tls_key_pem);
    a->tls_cert_pem = a->tls_key_pem = NULL;
}

/* ---- conditional writes ----------------------------------------------------------- */

/* If-Match as a whole: every field line of it is one comma-separated list. */
typedef struct if_match {
    uint64_t cur;
    int lines, star, tags, match, bad;
    uint64_t first;      /* the first tag's version */
} if_match_t;

/* Parses one If-Match field value into m (RFC 9110 sections 13.1.1 and 8.8.3: "*", or
 * #entity-tag; empty list elements are ignored). A tag is "N" or W/"N" with N decimal
 * without leading zeros and below 2^64: anything else (5, an unclosed "5, W/5, "05",
 * "-5", "0x5", "18446744073709551616", two tags without a comma) makes m->bad. */
static void if_match_parse(if_match_t *m, const char *p) {
    m->lines++;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == ',') {   /* an empty element */
            p++;
            continue;
        }
        if (!*p) return;
        if (*p == '*') {
            m->star++;
            p++;
        } else {
            if (p[0] == 'W' && p[1] == '/') p += 2;
            if (*p++ != '"' || *p < '0' || *p > '9' || (p[0] == '0' && p[1] != '"')) {
                m->bad = 1;
                return;
            }
            uint64_t v = 0;
            for (; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned)(*p - '0');
                if (v > (UINT64_MAX - d) / 10) {
                    m->bad = 1;
                    return;
                }
                v = v * 10 + d;
            }
            if (*p++ != '"') {
                m->bad = 1;
                return;
            }
            if (m->tags++ == 0) m->first = v;
            if (v == m->cur) m->match = 1;
        }
        while (*p == ' ' || *p == '\t') p++;
        if (*p && *p != ',') {
            m->bad = 1;
            return;
        }
    }
}

static enum MHD_Result if_match_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    if (key && strcasecmp(key, "If-Match") == 0) if_match_parse(cls, value ? value : "");
    return MHD_YES;
}

int vg_http_if_match(vg_req_t *q, vg_resp_t *r, int64_t cur, int exists, int64_t *expect) {
    if_match_t m = {(uint64_t)(cur > 0 ? cur : 0), 0, 0, 0, 0, 0, 0};
    *expect = -1;
    MHD_get_connection_values((struct MHD_Connection *)q->conn, MHD_HEADER_KIND, if_match_cb,
                              &m);
    if (m.lines == 0) return 0;
    /* "*" stands alone (RFC 9110: "*" / #entity-tag); a field with no tag is no list */
    if (m.bad || (m.star && (m.star > 1 || m.tags)) || (!m.star && !m.tags)) {
        vg_resp_error(r, 412, "precondition_failed", "If-Match must be \"*\" or a list of "
                      "tags separated by commas, each an ETag like \"3\" or W/\"3\"");
        return -1;
    }
    if (m.star) {
        if (exists) return 0;
        vg_resp_error(r, 412, "precondition_failed", "If-Match: * but it does not exist");
        return -1;
    }
    if (!exists) {   /* RFC 9110: If-Match with a tag is false when nothing is there */
        vg_resp_error(r, 412, "precondition_failed",
                      "If-Match: \"%" PRIu64 "\"%s but it does not exist: reload and retry",
                      m.first, m.tags > 1 ? ", ..." : "");
        return -1;
    }
    if (!m.match || cur <= 0) {
        if (m.tags > 1)
            vg_resp_error(r, 412, "precondition_failed", "the current version is %lld, none of "
                          "the %d in If-Match: reload and retry", (long long)cur, m.tags);
        else
            vg_resp_error(r, 412, "precondition_failed", "the current version is %lld, not %"
                          PRIu64 ": reload and retry", (long long)cur, m.first);
        return -1;
    }
    *expect = cur;
    return 0;
}
