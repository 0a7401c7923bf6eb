/* event.c - validating one transaction event (SPEC section 1) into a vg_event_t.
 *
 * The JSON itself is read by simdjson behind engine/event_json.h (a complete validation
 * of the line, then its top-level fields flattened in document order); this file checks
 * the fields against the contract and fills the event's vg_tx_t. Strings are not copied:
 * they point into the simdjson parser owned by the event's buffers, valid until the next
 * parse into the same event.
 *
 * Decisions (beyond SPEC section 1):
 * - Size: a line over VG_EVENT_MAX_BYTES (65536) is too_large, checked before parsing;
 *   exactly 65536 bytes is accepted. A last byte \r is not counted (nor parsed): it is
 *   the \r of a CRLF newline. A too_large line still has its id when its bytes show a
 *   JSON object whose top-level "id" is a valid id (vg_event_peek_id). An empty or blank line is invalid_json (callers skip
 *   blank lines themselves).
 * - Which reason: the first problem in document order among the fields (bad_type,
 *   bad_value, bad_timestamp, duplicate_field, a null required field); then missing
 *   required fields in the order id, account, ts, amount. A non-finite number anywhere in
 *   the line (1e999, which simdjson cannot hold) wins over all of these: non_finite.
 * - duplicate_field: the same key twice in one object, at any depth (compared after
 *   unescaping, so "id" and "\u0069d" are the same key), rejects the event; the reason
 *   names its path ('attrs.3ds', 'items[2].k'). Nested objects are checked while their
 *   text is written (event_json.cpp): events without them pay nothing.
 * - null: for an optional known field it means absent; for a required field it is
 *   missing_field with the reason "field 'x' is null".
 * - id, account: strings of 1..128 bytes (after unescaping) without U+0000; empty,
 *   longer or with U+0000 (`"acct\u0000x"`: such an account could never be named in a
 *   URL, where %00 is refused, nor in a label, so never shown or erased) is bad_value;
 *   another JSON type is bad_type.
 * - has_id after a rejection: 1 when the line is a JSON object (including a non_finite
 *   rejection) whose "id" appears exactly once as a valid id (a string of 1..128 bytes
 *   without U+0000).
 * - ts as a string: RFC 3339 as vg_time_parse() says (engine/time.c): 'T', 't' or a space;
 *   'Z', 'z' or +hh:mm/-hh:mm; any number of fraction digits truncated to the
 *   millisecond; a leap second :60 becomes :59.999; no zone is bad_timestamp.
 * - ts as a number: a JSON integer (no fraction, no exponent) of epoch milliseconds.
 *   Negative values are allowed (before 1970); the range is years 0000-9999 UTC
 *   [VG_TIME_MIN_MS, VG_TIME_MAX_MS]. 1.5, 1000.0 or 1e3 are bad_timestamp. Outside the
 *   range: bad_timestamp.
 * - amount: any finite JSON number (integer or not); lat in [-90, 90] and lon in
 *   [-180, 180], else bad_value. Numbers too small for a double (1e-999) read as 0.
 * - A JSON integer beyond 64 bits (in amount, an extra, anywhere) is read as a double.
 * - Extras: any other top-level key, with its JSON type; numbers become VG_T_NUM,
 *   objects and arrays VG_T_JSON holding their minified text (strings re-escaped per
 *   RFC 8259, numbers re-printed in shortest form, e.g. 1.50 -> 1.5).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/event.h"
#include "engine/event_json.h"
#include "engine/jsonout.h"
#include "rules/errors.h"
#include "rules/utf8.h"

struct vg_event_bufs {
    vg_jdoc_t *jd;
    vg_extra_t *extra;
    uint32_t extra_cap;
    uint32_t *slots;   /* open addressing over extra names: index + 1, 0 = empty */
    uint32_t slot_cap; /* a power of two */
    char big_id[VG_EVENT_MAX_ID];   /* the id of a too_large line (vg_event_peek_id) */
};

static const struct {
    const char *name;
    uint8_t len, type;
} known[VG_FIELD__COUNT] = {
#define VG_FIELD_ROW(n, str, t) {str, (uint8_t)(sizeof(str) - 1), t},
    VG_FIELD_LIST(VG_FIELD_ROW)
#undef VG_FIELD_ROW
};

const char *vg_reject_code(vg_reject_t r) {
    switch (r) {
#define VG_REJECT_CASE(name, code) case VG_REJECT_##name: return code;
        VG_REJECT_LIST(VG_REJECT_CASE)
#undef VG_REJECT_CASE
    default: return "";
    }
}

void vg_event_init(vg_event_t *ev) {
    memset(ev, 0, sizeof *ev);
    ev->id.p = "";
    ev->account.p = "";
}

void vg_event_deinit(vg_event_t *ev) {
    vg_event_bufs_t *b = ev->bufs;
    if (b) {
        vg_jdoc_free(b->jd);
        free(b->extra);
        free(b->slots);
        free(b);
    }
    ev->bufs = NULL;
}

/* Records the first rejection; later ones are ignored. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void reject(vg_event_t *ev, vg_reject_t code, const char *fmt, ...) {
    if (ev->reject != VG_REJECT_NONE) return;
    ev->reject = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->reason, sizeof ev->reason, fmt, ap);
    va_end(ap);
}

/* How many bytes of a name to quote in a reason: at most 64, cut at a UTF-8 boundary. */
static int quote_len(const char *s, uint32_t len) { return (int)vg_utf8_cut(s, len, 64); }

static const char *jtype_name(uint8_t t) {
    switch (t) {
    case VG_J_NULL: return "null";
    case VG_J_BOOL: return "a boolean";
    case VG_J_INT:
    case VG_J_UINT:
    case VG_J_DOUBLE: return "a number";
    case VG_J_STR: return "a string";
    case VG_J_OBJECT: return "an object";
    default: return "an array";
    }
}

static int is_number(uint8_t t) { return t == VG_J_INT || t == VG_J_UINT || t == VG_J_DOUBLE; }

/* The known field named k, or -1. Constant-size memcmp compiles to integer compares. */
static int find_known(const char *k, uint32_t n) {
#define IS(lit) (memcmp(k, lit, sizeof(lit) - 1) == 0)
    switch (n) {
    case 2:
        if (IS("id")) return VG_FIELD_ID;
        if (IS("ts")) return VG_FIELD_TS;
        if (IS("ip")) return VG_FIELD_IP;
        break;
    case 3:
        if (IS("mcc")) return VG_FIELD_MCC;
        if (IS("lat")) return VG_FIELD_LAT;
        if (IS("lon")) return VG_FIELD_LON;
        break;
    case 4:
        if (IS("card")) return VG_FIELD_CARD;
        if (IS("type")) return VG_FIELD_TYPE;
        break;
    case 6:
        if (IS("amount")) return VG_FIELD_AMOUNT;
        if (IS("device")) return VG_FIELD_DEVICE;
        break;
    case 7:
        if (IS("account")) return VG_FIELD_ACCOUNT;
        if (IS("country")) return VG_FIELD_COUNTRY;
        if (IS("channel")) return VG_FIELD_CHANNEL;
        break;
    case 8:
        if (IS("currency")) return VG_FIELD_CURRENCY;
        if (IS("merchant")) return VG_FIELD_MERCHANT;
        break;
    }
#undef IS
    return -1;
}

/* Checks one known field and stores it in ev->tx. Returns 1 when it is a valid id. */
static int check_known(vg_event_t *ev, int k, const vg_jfield_t *f) {
    const char *name = known[k].name;
    char num[40];
    if (f->type == VG_J_NULL) {
        if (k <= VG_FIELD_AMOUNT) reject(ev, VG_REJECT_MISSING_FIELD, "field '%s' is null", name);
        return 0;
    }
    switch (k) {
    case VG_FIELD_ID:
    case VG_FIELD_ACCOUNT:
        if (f->type != VG_J_STR) break;
        if (f->s_len == 0) {
            reject(ev, VG_REJECT_BAD_VALUE, "field '%s' is empty", name);
            return 0;
        }
        if (f->s_len > VG_EVENT_MAX_ID) {
            reject(ev, VG_REJECT_BAD_VALUE, "field '%s' is %u bytes, limit %d", name,
                   (unsigned)f->s_len, VG_EVENT_MAX_ID);
            return 0;
        }
        /* the string's length counts, not a C string's: "a\u0000b" is 3 bytes */
        if (memchr(f->s, 0, f->s_len)) {
            reject(ev, VG_REJECT_BAD_VALUE, "field '%s' may not contain U+0000", name);
            return 0;
        }
        ev->tx.f[k] = vg_strv(f->s, f->s_len);
        return k == VG_FIELD_ID;
    case VG_FIELD_TS:
        if (f->type == VG_J_STR) {
            char err[160];
            int64_t ms;
            if (vg_time_parse_canonical(f->s, f->s_len, &ms)) {
                ev->tx.f[k] = vg_time(ms);
                ev->ts_text = f->s;
            } else if (vg_time_parse(f->s, f->s_len, &ms, err, sizeof err) < 0) {
                /* digits only: epoch milliseconds sent as a string */
                size_t d = 0;
                while (d < f->s_len && f->s[d] >= '0' && f->s[d] <= '9') d++;
                if (f->s_len > 0 && f->s_len <= 20 && d == f->s_len && f->s_len != 8)
                    reject(ev, VG_REJECT_BAD_TIMESTAMP, "field 'ts': a string of digits; epoch "
                           "milliseconds are a JSON number (no quotes), an RFC 3339 time a "
                           "string");
                else
                    reject(ev, VG_REJECT_BAD_TIMESTAMP, "field 'ts': %s", err);
            } else
                ev->tx.f[k] = vg_time(ms);
            return 0;
        }
        if (f->type == VG_J_INT) {
            if (f->i < VG_TIME_MIN_MS || f->i > VG_TIME_MAX_MS)
                reject(ev, VG_REJECT_BAD_TIMESTAMP,
                       "field 'ts': epoch milliseconds %lld out of range (years 0000-9999)",
                       (long long)f->i);
            else
                ev->tx.f[k] = vg_time(f->i);
            return 0;
        }
        if (f->type == VG_J_UINT || (f->type == VG_J_DOUBLE && (f->d >= 9.2e18 || f->d <= -9.2e18))) {
            vg_fmt_double(f->d, num);
            reject(ev, VG_REJECT_BAD_TIMESTAMP,
                   "field 'ts': epoch milliseconds %s out of range (years 0000-9999)", num);
            return 0;
        }
        if (f->type == VG_J_DOUBLE) {
            /* the number as written has a fraction or an exponent: its value printed
             * back (1772359200000.0 read 1772359200000) would look like an integer */
            vg_fmt_double(f->d, num);
            reject(ev, VG_REJECT_BAD_TIMESTAMP,
                   "field 'ts': epoch milliseconds must be a JSON integer, found a number "
                   "written with a fraction or an exponent (value %s)", num);
            return 0;
        }
        reject(ev, VG_REJECT_BAD_TYPE,
               "field 'ts': expected an RFC 3339 string or integer epoch milliseconds, found %s",
               jtype_name(f->type));
        return 0;
    case VG_FIELD_AMOUNT:
        if (!is_number(f->type)) break;
        ev->tx.f[k] = vg_num(f->d);
        return 0;
    case VG_FIELD_LAT:
    case VG_FIELD_LON: {
        if (!is_number(f->type)) break;
        double lim = k == VG_FIELD_LAT ? 90 : 180;
        if (!(f->d >= -lim && f->d <= lim)) {
            vg_fmt_double(f->d, num);
            reject(ev, VG_REJECT_BAD_VALUE, "field '%s': %s out of range -%g..%g", name, num,
                   lim, lim);
            return 0;
        }
        ev->tx.f[k] = vg_num(f->d);
        return 0;
    }
    default: /* optional strings */
        if (f->type != VG_J_STR) break;
        ev->tx.f[k] = vg_strv(f->s, f->s_len);
        return 0;
    }
    reject(ev, VG_REJECT_BAD_TYPE, "field '%s': expected %s, found %s", name,
           known[k].type == VG_T_STR ? "a string" : "a number", jtype_name(f->type));
    return 0;
}

static uint32_t hash_name(const char *s, uint32_t n) {
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Grows the extras array and the name table for n top-level fields. */
static int reserve(vg_event_bufs_t *b, uint32_t n) {
    if (n > b->extra_cap) {
        uint32_t cap = b->extra_cap ? b->extra_cap : 16;
        while (cap < n) cap *= 2;
        vg_extra_t *e = realloc(b->extra, cap * sizeof *e);
        if (!e) return VG_ENOMEM;
        b->extra = e;
        b->extra_cap = cap;
    }
    if (n > 16 && 2 * n > b->slot_cap) {
        uint32_t cap = b->slot_cap ? b->slot_cap : 64;
        while (cap < 2 * n) cap *= 2;
        uint32_t *s = realloc(b->slots, cap * sizeof *s);
        if (!s) return VG_ENOMEM;
        b->slots = s;
        b->slot_cap = cap;
    }
    return 0;
}

/* Adds an extra unless its name was seen; returns 0, or 1 for a duplicate name. */
static int add_extra(vg_event_bufs_t *b, vg_tx_t *tx, int hashed, const vg_jfield_t *f) {
    uint32_t n = tx->n_extra;
    if (hashed) {
        uint32_t mask = b->slot_cap - 1, i = hash_name(f->key, f->key_len) & mask;
        for (; b->slots[i]; i = (i + 1) & mask) {
            const vg_extra_t *e = &b->extra[b->slots[i] - 1];
            if (e->name.len == f->key_len && memcmp(e->name.p, f->key, f->key_len) == 0) return 1;
        }
        b->slots[i] = n + 1;
    } else {
        for (uint32_t i = 0; i < n; i++)
            if (b->extra[i].name.len == f->key_len &&
                memcmp(b->extra[i].name.p, f->key, f->key_len) == 0)
                return 1;
    }
    vg_extra_t *e = &b->extra[n];
    e->name.p = f->key;
    e->name.len = f->key_len;
    switch (f->type) {
    case VG_J_NULL: e->v = vg_null(); break;
    case VG_J_BOOL: e->v = vg_bool(f->b); break;
    case VG_J_INT:
    case VG_J_UINT:
    case VG_J_DOUBLE: e->v = vg_num(f->d); break;
    case VG_J_STR: e->v = vg_strv(f->s, f->s_len); break;
    default:
        e->v.type = VG_T_JSON;
        e->v.u.s.p = f->s;
        e->v.u.s.len = f->s_len;
    }
    tx->n_extra = n + 1;
    return 0;
}

static void reset(vg_event_t *ev) {
    for (int i = 0; i < VG_FIELD__COUNT; i++) ev->tx.f[i] = vg_null();
    ev->tx.extra = ev->bufs ? ev->bufs->extra : NULL;
    ev->tx.n_extra = 0;
    ev->id.p = ev->account.p = "";
    ev->id.len = ev->account.len = 0;
    ev->ts_ms = 0;
    ev->ts_text = NULL;
    ev->amount = 0;
    ev->has_id = 0;
    ev->reject = VG_REJECT_NONE;
    ev->reason[0] = '\0';
}

/* ---- the id of a line too large to parse ------------------------------------------ */

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

/* Reads the JSON string whose opening quote is s[*i], decoding it into out (at most cap
 * bytes kept; *olen is the decoded length, even beyond cap). Returns 1 with *i after
 * the closing quote, 0 when the bytes end first, -1 when it is not a valid string (a
 * control character, a bad escape, a lone surrogate, invalid UTF-8). */
static int read_string(const char *s, size_t n, size_t *i, char *out, size_t cap,
                       size_t *olen) {
    size_t j = *i + 1, o = 0;
    while (j < n) {
        unsigned char c = (unsigned char)s[j];
        unsigned char u[4];
        size_t ul = 0;
        if (c == '"') {
            *i = j + 1;
            *olen = o;
            return 1;
        }
        if (c < 0x20) return -1;
        if (c == '\\') {
            if (j + 1 >= n) return 0;
            char e = s[j + 1];
            j += 2;
            unsigned cp;
            switch (e) {
            case '"': case '\\': case '/': u[0] = (unsigned char)e; ul = 1; break;
            case 'b': u[0] = '\b'; ul = 1; break;
            case 'f': u[0] = '\f'; ul = 1; break;
            case 'n': u[0] = '\n'; ul = 1; break;
            case 'r': u[0] = '\r'; ul = 1; break;
            case 't': u[0] = '\t'; ul = 1; break;
            case 'u':
                if (j + 4 > n) return 0;
                if (hex4(s + j, &cp) < 0) return -1;
                j += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
                if (cp >= 0xD800 && cp <= 0xDBFF) {   /* a surrogate pair */
                    unsigned lo;
                    if (j + 6 > n) return 0;
                    if (s[j] != '\\' || s[j + 1] != 'u' || hex4(s + j + 2, &lo) < 0 ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    j += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp < 0x80) u[ul++] = (unsigned char)cp;
                else if (cp < 0x800) {
                    u[ul++] = (unsigned char)(0xC0 | (cp >> 6));
                    u[ul++] = (unsigned char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    u[ul++] = (unsigned char)(0xE0 | (cp >> 12));
                    u[ul++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    u[ul++] = (unsigned char)(0x80 | (cp & 0x3F));
                } else {
                    u[ul++] = (unsigned char)(0xF0 | (cp >> 18));
                    u[ul++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                    u[ul++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    u[ul++] = (unsigned char)(0x80 | (cp & 0x3F));
                }
                break;
            default: return -1;
            }
        } else {
            ul = vg_utf8_seq((const unsigned char *)s + j, n - j);
            if (ul == 0) return n - j < 4 && c >= 0xC2 ? 0 : -1;   /* cut, or invalid */
            memcpy(u, s + j, ul);
            j += ul;
        }
        for (size_t k = 0; k < ul; k++, o++)
            if (o < cap) out[o] = (char)u[k];
    }
    return 0;
}

/* Skips the JSON value at s[*i] (not checking it closely: only strings, nesting and
 * where it ends). Returns 1 with *i after it, 0 when the bytes end first, -1 when it is
 * malformed. */
static int skip_value(const char *s, size_t n, size_t *i) {
    size_t j = *i;
    int depth = 0;
    do {
        if (j >= n) return 0;
        char c = s[j];
        if (c == '"') {
            size_t k = j + 1;
            while (k < n && s[k] != '"') k += s[k] == '\\' ? 2 : 1;
            if (k >= n) return 0;
            j = k + 1;
        } else if (c == '{' || c == '[') {
            depth++;
            j++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return -1;
            depth--;
            j++;
        } else if (depth > 0) {
            j++;
        } else {   /* a number or a literal: up to the next delimiter */
            size_t k = j;
            while (k < n && s[k] != ',' && s[k] != '}' && s[k] != ']' && s[k] != ' ' &&
                   s[k] != '\t' && s[k] != '\r' && s[k] != '\n')
                k++;
            if (k == j) return -1;
            if (k >= n) return 0;
            j = k;
        }
    } while (depth > 0);
    *i = j;
    return 1;
}

size_t vg_event_peek_id(const char *s, size_t n, char *out) {
    size_t i = skip_ws(s, n, 0), found = 0;
    char tmp[VG_EVENT_MAX_ID];
    if (i >= n || s[i] != '{') return 0;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}') return 0;
    for (;;) {
        if (i >= n) return found;
        if (s[i] != '"') return 0;
        char key[2];
        size_t klen;
        int r = read_string(s, n, &i, key, sizeof key, &klen);
        if (r <= 0) return r < 0 ? 0 : found;
        int is_id = klen == 2 && key[0] == 'i' && key[1] == 'd';
        i = skip_ws(s, n, i);
        if (i >= n) return found;
        if (s[i] != ':') return 0;
        i = skip_ws(s, n, i + 1);
        if (i >= n) return found;
        if (is_id) {
            if (found) return 0;   /* "id" twice: duplicate_field, no id */
            if (s[i] != '"') return 0;
            size_t len;
            r = read_string(s, n, &i, tmp, sizeof tmp, &len);
            if (r <= 0 || len < 1 || len > VG_EVENT_MAX_ID || memchr(tmp, 0, len)) return 0;
            memcpy(out, tmp, len);
            found = len;
        } else {
            r = skip_value(s, n, &i);
            if (r <= 0) return r < 0 ? 0 : found;
        }
        i = skip_ws(s, n, i);
        if (i >= n) return found;
        if (s[i] == '}') return skip_ws(s, n, i + 1) == n ? found : 0;
        if (s[i] != ',') return 0;
        i = skip_ws(s, n, i + 1);
    }
}

static int out_of_memory(vg_event_t *ev) {
    snprintf(ev->reason, sizeof ev->reason, "out of memory");
    return VG_ENOMEM;
}

int vg_event_parse(vg_event_t *ev, const char *line, size_t len) {
    reset(ev);
    /* the \r of a CRLF line is part of its newline, not of the line (JSON whitespace) */
    if (len && line[len - 1] == '\r') len--;
    vg_event_bufs_t *b = ev->bufs;
    if (!b) {
        if (!(b = calloc(1, sizeof *b))) return out_of_memory(ev);
        ev->bufs = b;
    }
    if (len > VG_EVENT_MAX_BYTES) {
        reject(ev, VG_REJECT_TOO_LARGE, "line is %zu bytes, limit %d", len, VG_EVENT_MAX_BYTES);
        size_t n = vg_event_peek_id(line, len, b->big_id);
        if (n) {
            ev->has_id = 1;
            ev->id.p = b->big_id;
            ev->id.len = (uint32_t)n;
        }
        return VG_EINVAL;
    }
    if (!b->jd && !(b->jd = vg_jdoc_new(VG_EVENT_MAX_BYTES))) return out_of_memory(ev);

    vg_jdoc_kind_t kind;
    int rc = vg_jdoc_parse(b->jd, line, len, &kind, ev->reason, sizeof ev->reason);
    if (rc == VG_ENOMEM) return out_of_memory(ev);
    if (rc < 0) {
        if (kind != VG_JDOC_NON_FINITE) {
            ev->reject = VG_REJECT_INVALID_JSON;
            return VG_EINVAL;
        }
        ev->reject = VG_REJECT_NON_FINITE; /* the reason is in ev->reason */
    }

    uint32_t n;
    const vg_jfield_t *f = vg_jdoc_fields(b->jd, &n);
    if (reserve(b, n) < 0) return out_of_memory(ev);
    ev->tx.extra = b->extra;
    int hashed = n > 16;
    if (hashed) memset(b->slots, 0, b->slot_cap * sizeof *b->slots);

    uint32_t seen = 0;
    int id_ok = 0, id_dup = 0;
    for (uint32_t i = 0; i < n; i++) {
        int k = find_known(f[i].key, f[i].key_len);
        if (f[i].dup) {   /* a key twice in an object inside the value: ambiguous */
            size_t pl;
            const char *path = vg_jdoc_dup_path(b->jd, &pl);
            reject(ev, VG_REJECT_DUPLICATE_FIELD, "field '%.*s' appears more than once",
                   (int)vg_utf8_cut(path, pl, 128), path);
            if (k >= 0) seen |= 1u << k;   /* not also missing */
            continue;
        }
        if (k >= 0) {
            if (seen & (1u << k)) {
                if (k == VG_FIELD_ID) id_dup = 1;
                reject(ev, VG_REJECT_DUPLICATE_FIELD, "field '%s' appears more than once",
                       known[k].name);
                continue;
            }
            seen |= 1u << k;
            if (check_known(ev, k, &f[i])) id_ok = 1;
        } else if (add_extra(b, &ev->tx, hashed, &f[i])) {
            reject(ev, VG_REJECT_DUPLICATE_FIELD, "field '%.*s' appears more than once",
                   quote_len(f[i].key, f[i].key_len), f[i].key);
        }
    }
    for (int k = 0; k <= VG_FIELD_AMOUNT; k++)
        if (!(seen & (1u << k)))
            reject(ev, VG_REJECT_MISSING_FIELD, "field '%s' is missing", known[k].name);

    if (id_ok && !id_dup) {
        ev->has_id = 1;
        ev->id = ev->tx.f[VG_FIELD_ID].u.s;
    }
    if (ev->reject != VG_REJECT_NONE) return VG_EINVAL;
    ev->account = ev->tx.f[VG_FIELD_ACCOUNT].u.s;
    ev->ts_ms = ev->tx.f[VG_FIELD_TS].u.ms;
    ev->amount = ev->tx.f[VG_FIELD_AMOUNT].u.n;
    return 0;
}
