/* event_json.cpp - the simdjson DOM parser behind engine/event_json.h.
 *
 * One simdjson::dom::parser per vg_jdoc_t, allocated for the largest event up front, and
 * a padded copy of the line in a reused buffer: once warm, a parse allocates nothing.
 * Only simdjson's error-code API is used, and every entry point catches everything, so
 * no exception crosses into C.
 *
 * simdjson rejects a whole document for a number it cannot hold (NUMBER_ERROR). In that
 * case the line is scanned once more: every well-formed number token that overflows a
 * double is replaced by "0" (same length, padded with spaces) and every integer beyond
 * 64 bits gets "e0" appended so that it is read as a double; the repaired copy is then
 * parsed again. If that succeeds the line was valid JSON: with an overflowing number it is
 * rejected as VG_JDOC_NON_FINITE, else accepted. If it fails, the line really is invalid.
 */
#include "engine/event_json.h"

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "engine/jsonout.h"
#include "rules/errors.h"
#include "rules/utf8.h"

using simdjson::error_code;
namespace dom = simdjson::dom;

struct vg_jdoc {
    dom::parser parser;
    std::vector<char> pad;   /* the line, then SIMDJSON_PADDING bytes */
    std::vector<char> fix;   /* the repaired line (rare) */
    std::vector<vg_jfield_t> fields;
    vg_buf_t raw;            /* minified text of object and array values */
    std::vector<std::string_view> keys;   /* one nested object's keys (duplicate check) */
    std::string dup;         /* the path of the first key given twice in a nested object */
    bool dup_check = true;   /* until one is found */
    vg_jdoc() { vg_buf_init(&raw); }
    ~vg_jdoc() { vg_buf_deinit(&raw); }
};

extern "C" vg_jdoc_t *vg_jdoc_new(size_t capacity) {
    vg_jdoc_t *d = nullptr;
    try {
        d = new vg_jdoc();
        if (d->parser.allocate(capacity + 64) != simdjson::SUCCESS) goto err;
        d->pad.resize(capacity + simdjson::SIMDJSON_PADDING);
        d->fields.reserve(64);
        d->keys.reserve(64);
        d->dup.reserve(256);
        if (vg_buf_reserve(&d->raw, 4096) < 0) goto err;
        return d;
    } catch (...) {
    }
err:
    delete d;
    return nullptr;
}

extern "C" void vg_jdoc_free(vg_jdoc_t *d) { delete d; }

extern "C" const vg_jfield_t *vg_jdoc_fields(const vg_jdoc_t *d, uint32_t *n) {
    *n = (uint32_t)d->fields.size();
    return d->fields.data();
}

extern "C" const char *vg_jdoc_dup_path(const vg_jdoc_t *d, size_t *len) {
    *len = d->dup.size();
    return d->dup.c_str();
}

/* ---- minified text of a nested value ---------------------------------------------- */

static int write_int(vg_buf_t *b, int64_t i, uint64_t u, int is_unsigned) {
    char tmp[32];
    int n = is_unsigned ? snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)u)
                        : snprintf(tmp, sizeof tmp, "%lld", (long long)i);
    return vg_buf_append(b, tmp, (size_t)n);
}

/* DUP: write_element found a key twice; d->dup holds its path from there down. */
enum { DUP = 1 };

/* Prefixes d->dup (a path below) with one step: an object's key or an array's index. */
static void dup_prefix(vg_jdoc_t *d, const char *key, size_t klen, long index) {
    std::string step;
    bool plain = key && klen > 0;
    for (size_t i = 0; plain && i < klen; i++) {
        unsigned char c = (unsigned char)key[i];
        plain = c >= 0x20 && c != '.' && c != '[' && c != ']' && c != '"' && c != '\\';
    }
    if (plain) {
        step.assign(key, klen);
    } else if (key) {   /* empty, or with a NUL, a dot...: quoted and escaped, so that the
                           path names the key unambiguously ('x.""', 'x."a\u0000"') */
        step = "\"";
        for (size_t i = 0; i < klen; i++) {
            unsigned char c = (unsigned char)key[i];
            if (c == '"' || c == '\\') {
                step += '\\';
                step += (char)c;
            } else if (c < 0x20) {
                char u[8];
                std::snprintf(u, sizeof u, "\\u%04x", c);
                step += u;
            } else {
                step += (char)c;
            }
        }
        step += '"';
    } else {
        step = "[" + std::to_string(index) + "]";
    }
    if (!d->dup.empty() && d->dup[0] != '[') step += '.';
    d->dup.insert(0, step);
}

/* 1 when object o has a key twice (compared unescaped), with that key in d->dup. Small
 * objects are compared pairwise; larger ones sorted (d->keys, reused). */
static bool object_dup(vg_jdoc_t *d, dom::object o) {
    if (!d->dup_check) return false;
    size_t base = d->keys.size();
    for (dom::key_value_pair kv : o) d->keys.push_back(kv.key);
    size_t n = d->keys.size() - base;
    std::string_view *k = d->keys.data() + base;
    const std::string_view *hit = nullptr;
    if (n <= 12) {
        for (size_t i = 1; i < n && !hit; i++)
            for (size_t j = 0; j < i; j++)
                if (k[i] == k[j]) {
                    hit = &k[i];
                    break;
                }
    } else {
        std::sort(k, k + n);
        for (size_t i = 1; i < n && !hit; i++)
            if (k[i] == k[i - 1]) hit = &k[i];
    }
    if (hit) {
        d->dup.clear();
        dup_prefix(d, hit->data(), hit->size(), 0);
    }
    d->keys.resize(base);
    return hit != nullptr;
}

/* Appends e's minified text to b. 0, VG_ENOMEM / VG_EINVAL, or DUP (the text is then
 * incomplete: the event is rejected). */
static int write_element(vg_jdoc_t *d, vg_buf_t *b, dom::element e) {
    int rc = 0;
    switch (e.type()) {
    case dom::element_type::ARRAY: {
        dom::array a;
        if (e.get_array().get(a)) return VG_EINVAL;
        rc = vg_buf_putc(b, '[');
        bool first = true;
        long idx = 0;
        for (dom::element c : a) {
            if (!rc && !first) rc = vg_buf_putc(b, ',');
            if (!rc) rc = write_element(d, b, c);
            if (rc == DUP) {
                dup_prefix(d, nullptr, 0, idx);
                return DUP;
            }
            first = false;
            idx++;
        }
        if (!rc) rc = vg_buf_putc(b, ']');
        return rc;
    }
    case dom::element_type::OBJECT: {
        dom::object o;
        if (e.get_object().get(o)) return VG_EINVAL;
        if (object_dup(d, o)) return DUP;
        rc = vg_buf_putc(b, '{');
        bool first = true;
        for (dom::key_value_pair kv : o) {
            if (!rc && !first) rc = vg_buf_putc(b, ',');
            if (!rc) rc = vg_json_str(b, kv.key.data(), kv.key.size());
            if (!rc) rc = vg_buf_putc(b, ':');
            if (!rc) rc = write_element(d, b, kv.value);
            if (rc == DUP) {
                dup_prefix(d, kv.key.data(), kv.key.size(), 0);
                return DUP;
            }
            first = false;
        }
        if (!rc) rc = vg_buf_putc(b, '}');
        return rc;
    }
    case dom::element_type::INT64: {
        int64_t i = 0;
        i = e.get_int64().value_unsafe();
        return write_int(b, i, 0, 0);
    }
    case dom::element_type::UINT64: {
        uint64_t u = 0;
        u = e.get_uint64().value_unsafe();
        return write_int(b, 0, u, 1);
    }
    case dom::element_type::DOUBLE: {
        double x = 0;
        x = e.get_double().value_unsafe();
        return vg_json_num(b, x);
    }
    case dom::element_type::STRING: {
        std::string_view sv;
        sv = e.get_string().value_unsafe();
        return vg_json_str(b, sv.data(), sv.size());
    }
    case dom::element_type::BOOL: {
        bool v = false;
        v = e.get_bool().value_unsafe();
        return vg_buf_puts(b, v ? "true" : "false");
    }
    case dom::element_type::NULL_VALUE:
    default: return vg_buf_puts(b, "null");
    }
}

/* Flattens the top-level object into d->fields. Returns 0 or VG_ENOMEM. */
static int flatten(vg_jdoc_t *d, dom::object obj) {
    d->fields.clear();
    d->dup.clear();
    d->dup_check = true;
    vg_buf_clear(&d->raw);
    for (dom::key_value_pair kv : obj) {
        vg_jfield_t f;
        std::memset(&f, 0, sizeof f);
        f.key = kv.key.data();
        f.key_len = (uint32_t)kv.key.size();
        dom::element v = kv.value;
        switch (v.type()) {
        case dom::element_type::NULL_VALUE: f.type = VG_J_NULL; break;
        case dom::element_type::BOOL: {
            bool b = false;
            b = v.get_bool().value_unsafe();
            f.type = VG_J_BOOL;
            f.b = b;
            break;
        }
        case dom::element_type::INT64:
            f.type = VG_J_INT;
            f.i = v.get_int64().value_unsafe();
            f.d = (double)f.i;
            break;
        case dom::element_type::UINT64:
            f.type = VG_J_UINT;
            f.u = v.get_uint64().value_unsafe();
            f.d = (double)f.u;
            break;
        case dom::element_type::DOUBLE:
            f.type = VG_J_DOUBLE;
            f.d = v.get_double().value_unsafe();
            break;
        case dom::element_type::STRING: {
            std::string_view sv;
            sv = v.get_string().value_unsafe();
            f.type = VG_J_STR;
            f.s = sv.data();
            f.s_len = (uint32_t)sv.size();
            break;
        }
        case dom::element_type::ARRAY:
        case dom::element_type::OBJECT: {
            f.type = v.type() == dom::element_type::ARRAY ? VG_J_ARRAY : VG_J_OBJECT;
            size_t off = d->raw.len;
            int rc = write_element(d, &d->raw, v);
            if (rc < 0) return VG_ENOMEM;
            if (rc == DUP) {
                /* the event is rejected: later fields are not checked, so d->dup stays
                 * this one's path; its text (cut short) is written no further */
                f.dup = 1;
                dup_prefix(d, f.key, f.key_len, 0);
                d->dup_check = false;
            }
            f.u = off; /* turned into a pointer below, once raw stops growing */
            f.s_len = (uint32_t)(d->raw.len - off);
            break;
        }
        }
        d->fields.push_back(f);
    }
    for (vg_jfield_t &f : d->fields)
        if (f.type == VG_J_ARRAY || f.type == VG_J_OBJECT) {
            f.s = d->raw.p + f.u;
            f.u = 0;
        }
    return 0;
}

/* ---- reasons ------------------------------------------------------------------------ */

/* Offset of the first byte that does not start a valid UTF-8 sequence, or len. */
static size_t utf8_bad_offset(const unsigned char *s, size_t len) {
    size_t i = 0, k;
    while (i < len && (k = vg_utf8_seq(s + i, len - i)) != 0) i += k;
    return i;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* When the first value of the line is balanced, returns the offset of the first
 * non-blank byte after it (trailing content), else len. */
static size_t trailing_offset(const char *s, size_t len) {
    size_t i = 0;
    while (i < len && is_ws(s[i])) i++;
    if (i == len || (s[i] != '{' && s[i] != '[')) return len;
    int depth = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
            if (i >= len) return len;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) {
                for (i++; i < len && is_ws(s[i]); i++) {}
                return i;
            }
        }
    }
    return len;
}

static void describe(error_code err, const char *s, size_t len, char *errbuf, size_t errlen) {
    switch (err) {
    case simdjson::EMPTY: snprintf(errbuf, errlen, "invalid JSON: the line is blank"); return;
    case simdjson::UTF8_ERROR:
        snprintf(errbuf, errlen, "invalid UTF-8 at byte %zu",
                 utf8_bad_offset((const unsigned char *)s, len));
        return;
    case simdjson::TAPE_ERROR: {
        size_t t = trailing_offset(s, len);
        if (t < len)
            snprintf(errbuf, errlen, "invalid JSON: unexpected content after the object at byte %zu", t);
        else
            snprintf(errbuf, errlen, "invalid JSON: bad structure (a missing or extra comma, "
                                     "colon, brace, bracket or key)");
        return;
    }
    case simdjson::DEPTH_ERROR:
        snprintf(errbuf, errlen, "invalid JSON: nested more than %zu levels deep",
                 (size_t)simdjson::DEFAULT_MAX_DEPTH);
        return;
    case simdjson::STRING_ERROR:
        snprintf(errbuf, errlen, "invalid JSON: bad escape sequence in a string");
        return;
    case simdjson::UNCLOSED_STRING:
        snprintf(errbuf, errlen, "invalid JSON: unclosed string");
        return;
    case simdjson::UNESCAPED_CHARS:
        snprintf(errbuf, errlen, "invalid JSON: a control character in a string must be escaped");
        return;
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
        snprintf(errbuf, errlen, "invalid JSON: unknown literal (expected true, false or null)");
        return;
    case simdjson::NUMBER_ERROR:
        snprintf(errbuf, errlen, "invalid JSON: malformed number");
        return;
    default: snprintf(errbuf, errlen, "invalid JSON: %s", simdjson::error_message(err)); return;
    }
}

static const char *type_name(dom::element_type t) {
    switch (t) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return "a number";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
    default: return "an object";
    }
}

/* ---- repairing numbers simdjson cannot hold ----------------------------------------- */

/* Checks the JSON number grammar over the whole token; sets *integer when it has no
 * fraction and no exponent. */
static bool number_ok(const char *t, size_t n, bool *integer) {
    size_t i = 0;
    *integer = true;
    if (i < n && t[i] == '-') i++;
    if (i == n) return false;
    if (t[i] == '0') i++;
    else if (t[i] >= '1' && t[i] <= '9') while (i < n && t[i] >= '0' && t[i] <= '9') i++;
    else return false;
    if (i < n && t[i] == '.') {
        *integer = false;
        size_t s = ++i;
        while (i < n && t[i] >= '0' && t[i] <= '9') i++;
        if (i == s) return false;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        *integer = false;
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-')) i++;
        size_t s = i;
        while (i < n && t[i] >= '0' && t[i] <= '9') i++;
        if (i == s) return false;
    }
    return i == n;
}

/* True when a well-formed number token rounds to an infinite double. Locale-free: the
 * decimal point is removed before strtod() sees the digits. */
static bool number_overflows(const char *t, size_t n) {
    char tmp[512];
    size_t k = 0, i = 0;
    long exp10 = 0;
    if (t[i] == '-') i++;
    bool lead = true;
    size_t ndig = 0;
    bool frac = false;
    for (; i < n && t[i] != 'e' && t[i] != 'E'; i++) {
        if (t[i] == '.') {
            frac = true;
            continue;
        }
        if (frac) exp10--;
        if (lead && t[i] == '0') continue;
        lead = false;
        if (ndig < 400) tmp[k++] = t[i];
        else exp10++; /* dropped digit: enough digits kept to decide exactly */
        ndig++;
    }
    if (ndig == 0) return false;
    if (i < n) {
        i++;
        int sign = 1;
        if (t[i] == '+') i++;
        else if (t[i] == '-') { sign = -1; i++; }
        long e = 0;
        for (; i < n; i++) e = e < 100000000 ? e * 10 + (t[i] - '0') : e;
        exp10 += sign * e;
    }
    if (exp10 + (long)k > 400) return true;       /* >= 10^399 */
    if (exp10 + (long)k < -400) return false;     /* underflows to 0, finite */
    snprintf(tmp + k, sizeof tmp - k, "e%ld", exp10);
    errno = 0;
    return std::isinf(strtod(tmp, nullptr));
}

/* Fits a JSON integer token in int64 (negative) or uint64 (positive)? */
static bool integer_fits(const char *t, size_t n) {
    bool neg = t[0] == '-';
    size_t i = neg ? 1 : 0;
    if (n - i > 20) return false;
    unsigned __int128 v = 0;
    for (; i < n; i++) v = v * 10 + (unsigned)(t[i] - '0');
    return neg ? v <= ((unsigned __int128)1 << 63) : v <= (unsigned __int128)UINT64_MAX;
}

/* Builds d->fix from s. Returns the number of overflowing numbers found, with the first
 * one's top-level key and text in errbuf; -1 when out of memory. */
static long repair(vg_jdoc_t *d, const char *s, size_t len, char *errbuf, size_t errlen) {
    std::vector<char> &o = d->fix;
    o.clear();
    long bad = 0;
    int depth = 0;
    const char *key = nullptr;
    size_t key_len = 0;
    for (size_t i = 0; i < len;) {
        char c = s[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < len && s[j] != '"') j += s[j] == '\\' ? 2 : 1;
            if (j > len) j = len;
            size_t end = j < len ? j + 1 : len;
            if (depth == 1) {
                size_t k = end;
                while (k < len && is_ws(s[k])) k++;
                if (k < len && s[k] == ':') {
                    key = s + i + 1;
                    key_len = j - i - 1;
                }
            }
            o.insert(o.end(), s + i, s + end);
            i = end;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < len && (s[j] == '-' || s[j] == '+' || s[j] == '.' || s[j] == 'e' ||
                               s[j] == 'E' || (s[j] >= '0' && s[j] <= '9')))
                j++;
            bool integer;
            const char *t = s + i;
            size_t n = j - i;
            if (number_ok(t, n, &integer)) {
                if (number_overflows(t, n)) {
                    if (bad++ == 0) {
                        int kl = (int)(key_len > 64 ? 64 : key_len);
                        int nl = (int)(n > 40 ? 40 : n);
                        if (key && depth >= 1)
                            snprintf(errbuf, errlen, "field '%.*s': number %.*s%s is too large "
                                     "(not a finite double)", kl, key, nl, t, n > 40 ? "..." : "");
                        else
                            snprintf(errbuf, errlen, "number %.*s%s is too large (not a finite double)",
                                     nl, t, n > 40 ? "..." : "");
                    }
                    o.push_back('0');
                    o.insert(o.end(), n - 1, ' ');
                } else {
                    o.insert(o.end(), t, t + n);
                    if (integer && !integer_fits(t, n)) {
                        o.push_back('e');
                        o.push_back('0');
                    }
                }
            } else {
                o.insert(o.end(), t, t + n);
            }
            i = j;
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') depth--;
        o.push_back(c);
        i++;
    }
    o.insert(o.end(), simdjson::SIMDJSON_PADDING, '\0');
    return bad;
}

/* ---- parsing -------------------------------------------------------------------------- */

extern "C" int vg_jdoc_parse(vg_jdoc_t *d, const char *line, size_t len, vg_jdoc_kind_t *kind,
                             char *errbuf, size_t errlen) {
    try {
        *kind = VG_JDOC_INVALID;
        d->fields.clear();
        if (d->pad.size() < len + simdjson::SIMDJSON_PADDING)
            d->pad.resize(len + simdjson::SIMDJSON_PADDING);
        char *p = d->pad.data();
        if (len) std::memcpy(p, line, len);
        std::memset(p + len, 0, simdjson::SIMDJSON_PADDING);

        dom::element root;
        error_code err = d->parser.parse(p, len, false).get(root);
        long overflow = 0;
        if (err == simdjson::NUMBER_ERROR) {
            char nf[256] = "";
            overflow = repair(d, line, len, nf, sizeof nf);
            size_t flen = d->fix.size() - simdjson::SIMDJSON_PADDING;
            error_code err2 = d->parser.parse(d->fix.data(), flen, false).get(root);
            if (err2) {
                describe(err2, d->fix.data(), flen, errbuf, errlen);
                return VG_EINVAL;
            }
            err = simdjson::SUCCESS;
            if (overflow) snprintf(errbuf, errlen, "%s", nf);
        }
        if (err) {
            describe(err, p, len, errbuf, errlen);
            return VG_EINVAL;
        }
        dom::object obj;
        if (root.get_object().get(obj)) {
            snprintf(errbuf, errlen, "invalid JSON: expected an object, found %s",
                     type_name(root.type()));
            return VG_EINVAL;
        }
        if (flatten(d, obj) < 0) return VG_ENOMEM;
        if (overflow) {
            *kind = VG_JDOC_NON_FINITE;
            return VG_EINVAL;
        }
        *kind = VG_JDOC_OK;
        return 0;
    } catch (...) {
        return VG_ENOMEM;
    }
}
