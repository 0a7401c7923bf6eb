/* utf8.h - the one UTF-8 validity check and cut of the project (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), for the rules parser (source text), the event
 * parser's messages and the JSON writer. In rules/ because every layer may use rules/
 * (STYLE.md: api -> engine -> rules). Inline, no state; C and C++.
 */
#ifndef VG_UTF8_H
#define VG_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (n > 0 bytes available), or 0 when the byte
 * at s does not start one. */
static inline size_t vg_utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

/* The length of s[0..len) cut to at most n bytes without splitting a character (s is
 * valid UTF-8): n moved back over continuation bytes. */
static inline size_t vg_utf8_cut(const char *s, size_t len, size_t n) {
    if (len <= n) return len;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return n;
}

#endif
