/* test_event.c - unit tests for engine/event.c, engine/event_json.cpp, engine/time.c:
 * every rejection code with its reason, every timestamp form, boundaries, extras,
 * duplicates, unicode, non-finite numbers and has_id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/event.h"
#include "rules/errors.h"

#define REQ "\"id\":\"tx-1\",\"account\":\"a-1\",\"ts\":\"2026-11-23T21:13:43.123Z\",\"amount\":12.5"
#define TS_BASE 1795468423000LL /* 2026-11-23T21:13:43Z */

static int parse(vg_event_t *ev, const char *s) { return vg_event_parse(ev, s, strlen(s)); }

/* Parses `line` and checks the rejection code and that the reason contains `reason`. */
#define expect_reject(line, code, reason) expect_reject_at(line, strlen(line), code, reason, __LINE__)
static void expect_reject_at(const char *line, size_t len, vg_reject_t code, const char *reason,
                             int at) {
    vg_event_t ev;
    vg_event_init(&ev);
    int rc = vg_event_parse(&ev, line, len);
    if (rc != VG_EINVAL || ev.reject != code || !strstr(ev.reason, reason)) {
        print_error("line %d: input %.200s\n  got rc=%d code=%s reason '%s'\n  want code=%s reason ~ '%s'\n",
                    at, line, rc, vg_reject_code(ev.reject), ev.reason, vg_reject_code(code),
                    reason);
        vg_event_deinit(&ev);
        fail();
    }
    vg_event_deinit(&ev);
}

static void expect_str(vg_value_t v, const char *s) {
    assert_int_equal(v.type, VG_T_STR);
    assert_int_equal(v.u.s.len, strlen(s));
    assert_memory_equal(v.u.s.p, s, strlen(s));
}

static void test_accept_spec_example(void **state) {
    (void)state;
    const char *line =
        "{\"id\":\"tx-981\",\"account\":\"acct-42\",\"ts\":\"2026-11-23T21:13:43.123Z\",\"amount\":123.45,"
        " \"currency\":\"USD\",\"merchant\":\"m-4411\",\"mcc\":\"5411\",\"country\":\"US\",\"ip\":\"203.0.113.7\","
        " \"device\":\"d-98a7f\",\"card\":\"card-5512\",\"channel\":\"ecom\",\"type\":\"authorization\","
        " \"lat\":40.71,\"lon\":-74.0,\"attrs\":{\"any\":\"extra data\"}}";
    vg_event_t ev;
    vg_event_init(&ev);
    assert_int_equal(parse(&ev, line), 0);
    assert_int_equal(ev.reject, VG_REJECT_NONE);
    assert_int_equal(ev.has_id, 1);
    assert_int_equal(ev.id.len, 6);
    assert_memory_equal(ev.id.p, "tx-981", 6);
    assert_memory_equal(ev.account.p, "acct-42", 7);
    assert_true(ev.ts_ms == TS_BASE + 123);
    assert_true(ev.amount == 123.45);
    expect_str(ev.tx.f[VG_FIELD_ID], "tx-981");
    expect_str(ev.tx.f[VG_FIELD_ACCOUNT], "acct-42");
    assert_int_equal(ev.tx.f[VG_FIELD_TS].type, VG_T_TIME);
    assert_true(ev.tx.f[VG_FIELD_TS].u.ms == TS_BASE + 123);
    assert_int_equal(ev.tx.f[VG_FIELD_AMOUNT].type, VG_T_NUM);
    expect_str(ev.tx.f[VG_FIELD_CURRENCY], "USD");
    expect_str(ev.tx.f[VG_FIELD_MERCHANT], "m-4411");
    expect_str(ev.tx.f[VG_FIELD_MCC], "5411");
    expect_str(ev.tx.f[VG_FIELD_COUNTRY], "US");
    expect_str(ev.tx.f[VG_FIELD_IP], "203.0.113.7");
    expect_str(ev.tx.f[VG_FIELD_DEVICE], "d-98a7f");
    expect_str(ev.tx.f[VG_FIELD_CARD], "card-5512");
    expect_str(ev.tx.f[VG_FIELD_CHANNEL], "ecom");
    expect_str(ev.tx.f[VG_FIELD_TYPE], "authorization");
    assert_int_equal(ev.tx.f[VG_FIELD_LAT].type, VG_T_NUM);
    assert_true(ev.tx.f[VG_FIELD_LAT].u.n == 40.71);
    assert_true(ev.tx.f[VG_FIELD_LON].u.n == -74.0);
    assert_int_equal(ev.tx.n_extra, 1);
    vg_value_t a = vg_tx_extra(&ev.tx, "attrs", 5);
    assert_int_equal(a.type, VG_T_JSON);
    assert_int_equal(a.u.s.len, strlen("{\"any\":\"extra data\"}"));
    assert_memory_equal(a.u.s.p, "{\"any\":\"extra data\"}", a.u.s.len);

    /* minimal event: optional fields are null, amount may be an integer or negative */
    assert_int_equal(parse(&ev, "{\"id\":\"x\",\"account\":\"y\",\"ts\":0,\"amount\":-7}"), 0);
    assert_true(ev.amount == -7);
    assert_true(ev.ts_ms == 0);
    for (int k = VG_FIELD_CURRENCY; k < VG_FIELD__COUNT; k++)
        assert_int_equal(ev.tx.f[k].type, VG_T_NULL);
    assert_int_equal(ev.tx.n_extra, 0);
    vg_event_deinit(&ev);
}

static void test_timestamp_forms(void **state) {
    (void)state;
    static const struct {
        const char *ts;
        int64_t ms;
    } ok[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01t00:00:00z", 0},
        {"1970-01-01 00:00:00Z", 0},
        {"1970-01-01T01:00:00+01:00", 0},
        {"1969-12-31T19:00:00-05:00", 0},
        {"1970-01-01T00:00:00-00:00", 0},
        {"1970-01-01T05:30:00.5+05:30", 500},
        {"1970-01-02T00:00:00+23:59", 86400000 - 86340000},
        {"2026-11-23T21:13:43Z", TS_BASE},
        {"2026-11-23T21:13:43.1Z", TS_BASE + 100},
        {"2026-11-23T21:13:43.12Z", TS_BASE + 120},
        {"2026-11-23T21:13:43.123Z", TS_BASE + 123},
        {"2026-11-23T21:13:43.1234Z", TS_BASE + 123},
        {"2026-11-23T21:13:43.12345Z", TS_BASE + 123},
        {"2026-11-23T21:13:43.123456Z", TS_BASE + 123},
        {"2026-11-23T21:13:43.1234567Z", TS_BASE + 123},
        {"2026-11-23T21:13:43.12345678Z", TS_BASE + 123},
        {"2026-11-23T21:13:43.123456789Z", TS_BASE + 123},
        {"2026-11-23T21:13:43.99999999999999999999Z", TS_BASE + 999},
        {"2026-11-23T21:13:43.000Z", TS_BASE},
        {"2016-12-31T23:59:60Z", 1483228800000LL - 1},      /* leap second -> :59.999 */
        {"2016-12-31T23:59:60.5Z", 1483228800000LL - 1},
        {"2016-12-31T18:59:60-05:00", 1483228800000LL - 1}, /* 23:59:60 UTC */
        {"2017-01-01T00:59:60+01:00", 1483228800000LL - 1},
        {"2026-06-30T23:59:60Z", 1782863999999LL},          /* end of any month */
        {"2024-02-29T00:00:00Z", 1709164800000LL},          /* leap year */
        {"2000-02-29T12:00:00Z", 951825600000LL},           /* divisible by 400 */
        {"1969-12-31T23:59:59.999Z", -1},
        {"1969-12-31T23:59:59.9999Z", -1},                  /* truncation, not rounding */
        {"0000-01-01T00:00:00Z", VG_TIME_MIN_MS},
        {"9999-12-31T23:59:59.999Z", VG_TIME_MAX_MS},
        {"0000-01-01T01:00:00+01:00", VG_TIME_MIN_MS},
    };
    char line[256];
    vg_event_t ev;
    vg_event_init(&ev);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(line, sizeof line, "{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":\"%s\"}", ok[i].ts);
        int rc = parse(&ev, line);
        if (rc != 0 || ev.ts_ms != ok[i].ms)
            fail_msg("%s: rc %d reason '%s' ms %lld want %lld", ok[i].ts, rc, ev.reason,
                     (long long)ev.ts_ms, (long long)ok[i].ms);
        /* and directly */
        int64_t ms = 0;
        char err[128];
        assert_int_equal(vg_time_parse(ok[i].ts, strlen(ok[i].ts), &ms, err, sizeof err), 0);
        assert_true(ms == ok[i].ms);
    }
    /* the unicode-escaped form of the same string is the same time */
    assert_int_equal(parse(&ev, "{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":\"1970-01-01\\u005400:00:01Z\"}"), 0);
    assert_true(ev.ts_ms == 1000);
    vg_event_deinit(&ev);
}

static void test_timestamp_rejections(void **state) {
    (void)state;
    static const struct {
        const char *ts, *reason;
    } bad[] = {
        {"2026-11-23T21:13:43", "field 'ts': time zone missing"},
        {"2026-11-23T21:13:43.123", "time zone missing"},
        {"2026-13-01T00:00:00Z", "month 13 out of range"},
        {"2026-00-01T00:00:00Z", "month 00 out of range"},
        {"2026-04-31T00:00:00Z", "day 31 out of range for 2026-04"},
        {"2023-02-29T00:00:00Z", "day 29 out of range for 2023-02"},
        {"1900-02-29T00:00:00Z", "day 29 out of range for 1900-02"},
        {"2026-01-00T00:00:00Z", "day 00 out of range"},
        {"2026-11-23T24:00:00Z", "hour 24 out of range"},
        {"2026-11-23T23:60:00Z", "minute 60 out of range"},
        {"2026-11-23T23:59:61Z", "second 61 out of range"},
        /* RFC 3339 5.7: 60 only for a leap second, 23:59:60 UTC at the end of a month */
        {"2026-11-23T21:13:60Z", "second 60 only for a leap second, 23:59:60 UTC at the "
                                 "end of a month (this is 21:13:60 UTC)"},
        {"2026-11-23T21:13:60.750Z", "(this is 21:13:60 UTC)"},
        {"2026-11-30T23:58:60Z", "(this is 23:58:60 UTC)"},
        {"2026-11-29T23:59:60Z", "(this is 23:59:60 UTC)"},
        {"2016-12-31T23:59:60+01:00", "(this is 22:59:60 UTC)"},
        {"2026-11-23T21:13:43+24:00", "offset hours 24 out of range"},
        {"2026-11-23T21:13:43+01:60", "offset minutes 60 out of range"},
        {"2026-11-23T21:13:43+0100", "offset +hh:mm"},
        {"2026-11-23", "date without a time"},
        {"2026-11-23X21:13:43Z", "between date and time"},
        {"2026-11-23T21:13Z", "expected a time HH:MM:SS"},
        {"2026-11-23T21:13:43.Z", "expected digits after '.'"},
        {"2026-11-23T21:13:43Z ", "unexpected text after the time zone"},
        {"2026-11-23T21:13:43ZZ", "unexpected text after the time zone"},
        {"2026-11-23T21:13:43UTC", "expected 'Z', 'z' or an offset"},
        {"26-11-23T21:13:43Z", "expected a date YYYY-MM-DD"},
        {"", "expected a date YYYY-MM-DD"},
        {"yesterday", "expected a date YYYY-MM-DD"},
        {"0000-01-01T00:00:00+00:01", "time out of range"},
        {"9999-12-31T23:59:59-00:01", "time out of range"},
    };
    char line[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(line, sizeof line, "{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":\"%s\"}", bad[i].ts);
        expect_reject(line, VG_REJECT_BAD_TIMESTAMP, bad[i].reason);
    }
}

static void test_epoch_ms(void **state) {
    (void)state;
    vg_event_t ev;
    vg_event_init(&ev);
    assert_int_equal(parse(&ev, "{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":1795468423123}"), 0);
    assert_true(ev.ts_ms == TS_BASE + 123);
    assert_int_equal(parse(&ev, "{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":-1}"), 0);
    assert_true(ev.ts_ms == -1);
    assert_int_equal(parse(&ev, "{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":-62167219200000}"), 0);
    assert_true(ev.ts_ms == VG_TIME_MIN_MS);
    assert_int_equal(parse(&ev, "{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":253402300799999}"), 0);
    assert_true(ev.ts_ms == VG_TIME_MAX_MS);
    vg_event_deinit(&ev);

    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":-62167219200001}",
                  VG_REJECT_BAD_TIMESTAMP, "field 'ts': epoch milliseconds -62167219200001 out of range");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":253402300800000}",
                  VG_REJECT_BAD_TIMESTAMP, "out of range (years 0000-9999)");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":18446744073709551615}",
                  VG_REJECT_BAD_TIMESTAMP, "out of range");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":123456789012345678901234}",
                  VG_REJECT_BAD_TIMESTAMP, "out of range");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":1.5}",
                  VG_REJECT_BAD_TIMESTAMP, "must be a JSON integer, found a number written with a fraction or an exponent (value 1.5)");
    /* the value printed back looks like an integer: the message says how it was written */
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":1000.0}",
                  VG_REJECT_BAD_TIMESTAMP, "written with a fraction or an exponent (value 1000)");
    /* epoch milliseconds in a string: said so, not "expected a date" */
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":\"1772359200000\"}",
                  VG_REJECT_BAD_TIMESTAMP, "field 'ts': a string of digits; epoch milliseconds are a JSON number (no quotes)");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":1e3}",
                  VG_REJECT_BAD_TIMESTAMP, "must be a JSON integer");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":true}", VG_REJECT_BAD_TYPE,
                  "field 'ts': expected an RFC 3339 string or integer epoch milliseconds, found a boolean");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1,\"ts\":{}}", VG_REJECT_BAD_TYPE,
                  "found an object");
}

/* A line of exactly `len` bytes: the required fields and a padding extra. */
static char *line_of(size_t len) {
    const char *head = "{" REQ ",\"pad\":\"";
    size_t h = strlen(head);
    char *s = malloc(len + 1);
    assert_non_null(s);
    memcpy(s, head, h);
    memset(s + h, 'x', len - h - 2);
    memcpy(s + len - 2, "\"}", 2);
    s[len] = '\0';
    return s;
}

static void test_size_limits(void **state) {
    (void)state;
    vg_event_t ev;
    vg_event_init(&ev);
    char *s = line_of(65536);
    assert_int_equal(parse(&ev, s), 0);
    assert_int_equal(vg_tx_extra(&ev.tx, "pad", 3).u.s.len, 65536 - strlen("{" REQ ",\"pad\":\"") - 2);
    free(s);
    s = line_of(65537);
    assert_int_equal(parse(&ev, s), VG_EINVAL);
    assert_int_equal(ev.reject, VG_REJECT_TOO_LARGE);
    assert_string_equal(ev.reason, "line is 65537 bytes, limit 65536");
    /* SPEC section 3: still the event's id (a JSON object with a valid string id) */
    assert_int_equal(ev.has_id, 1);
    assert_int_equal(ev.id.len, 4);
    assert_memory_equal(ev.id.p, "tx-1", 4);
    assert_string_equal(vg_reject_code(ev.reject), "too_large");
    free(s);
    /* the \r of a CRLF newline is not counted: 65,536 bytes and \r is accepted */
    s = line_of(65537);
    s[65536] = '\r';
    memcpy(s + 65534, "\"}", 2);
    assert_int_equal(vg_event_parse(&ev, s, 65537), 0);
    free(s);
    /* too_large is decided before parsing: not even JSON */
    s = malloc(70000);
    memset(s, '!', 70000);
    assert_int_equal(vg_event_parse(&ev, s, 70000), VG_EINVAL);
    assert_string_equal(ev.reason, "line is 70000 bytes, limit 65536");
    free(s);
    vg_event_deinit(&ev);
}

static void test_id_and_account_limits(void **state) {
    (void)state;
    char id128[129], id129[130], line[512];
    memset(id128, 'i', 128);
    id128[128] = '\0';
    memset(id129, 'i', 129);
    id129[129] = '\0';
    vg_event_t ev;
    vg_event_init(&ev);
    snprintf(line, sizeof line, "{\"id\":\"%s\",\"account\":\"%s\",\"ts\":0,\"amount\":1}", id128, id128);
    assert_int_equal(parse(&ev, line), 0);
    assert_int_equal(ev.id.len, 128);
    assert_int_equal(ev.account.len, 128);
    snprintf(line, sizeof line, "{\"id\":\"%s\",\"account\":\"b\",\"ts\":0,\"amount\":1}", id129);
    assert_int_equal(parse(&ev, line), VG_EINVAL);
    assert_int_equal(ev.reject, VG_REJECT_BAD_VALUE);
    assert_string_equal(ev.reason, "field 'id' is 129 bytes, limit 128");
    assert_int_equal(ev.has_id, 0);
    snprintf(line, sizeof line, "{\"id\":\"a\",\"account\":\"%s\",\"ts\":0,\"amount\":1}", id129);
    assert_int_equal(parse(&ev, line), VG_EINVAL);
    assert_string_equal(ev.reason, "field 'account' is 129 bytes, limit 128");
    assert_int_equal(ev.has_id, 1);
    vg_event_deinit(&ev);
    expect_reject("{\"id\":\"\",\"account\":\"b\",\"ts\":0,\"amount\":1}", VG_REJECT_BAD_VALUE, "field 'id' is empty");
    expect_reject("{\"id\":\"a\",\"account\":\"\",\"ts\":0,\"amount\":1}", VG_REJECT_BAD_VALUE, "field 'account' is empty");
    /* bytes, not characters: 64 x "é" (2 bytes each) = 128 bytes is fine, 65 is not */
    char u[400] = "{\"id\":\"";
    for (int i = 0; i < 65; i++) strcat(u, "\xc3\xa9");
    strcat(u, "\",\"account\":\"b\",\"ts\":0,\"amount\":1}");
    expect_reject(u, VG_REJECT_BAD_VALUE, "field 'id' is 130 bytes, limit 128");
    /* U+0000 in an id or account: refused (no route could name the account after) */
    expect_reject("{\"id\":\"a\\u0000b\",\"account\":\"b\",\"ts\":0,\"amount\":1}", VG_REJECT_BAD_VALUE,
                  "field 'id' may not contain U+0000");
    expect_reject("{\"id\":\"a\",\"account\":\"\\u0000\",\"ts\":0,\"amount\":1}", VG_REJECT_BAD_VALUE,
                  "field 'account' may not contain U+0000");
    expect_reject("{\"id\":\"a\",\"account\":\"acct\\u0000\",\"ts\":0,\"amount\":1}", VG_REJECT_BAD_VALUE,
                  "field 'account' may not contain U+0000");
}

static void test_missing_and_null(void **state) {
    (void)state;
    expect_reject("{\"account\":\"b\",\"ts\":0,\"amount\":1}", VG_REJECT_MISSING_FIELD, "field 'id' is missing");
    expect_reject("{\"id\":\"a\",\"ts\":0,\"amount\":1}", VG_REJECT_MISSING_FIELD, "field 'account' is missing");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"amount\":1}", VG_REJECT_MISSING_FIELD, "field 'ts' is missing");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"ts\":0}", VG_REJECT_MISSING_FIELD, "field 'amount' is missing");
    expect_reject("{}", VG_REJECT_MISSING_FIELD, "field 'id' is missing");
    expect_reject("{\"id\":null,\"account\":\"b\",\"ts\":0,\"amount\":1}", VG_REJECT_MISSING_FIELD, "field 'id' is null");
    expect_reject("{\"id\":\"a\",\"account\":null,\"ts\":0,\"amount\":1}", VG_REJECT_MISSING_FIELD, "field 'account' is null");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"ts\":null,\"amount\":1}", VG_REJECT_MISSING_FIELD, "field 'ts' is null");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"ts\":0,\"amount\":null}", VG_REJECT_MISSING_FIELD, "field 'amount' is null");
    assert_string_equal(vg_reject_code(VG_REJECT_MISSING_FIELD), "missing_field");

    /* null for an optional known field means absent */
    vg_event_t ev;
    vg_event_init(&ev);
    assert_int_equal(parse(&ev, "{" REQ ",\"currency\":null,\"merchant\":null,\"mcc\":null,\"country\":null,"
                               "\"ip\":null,\"device\":null,\"card\":null,\"channel\":null,\"type\":null,"
                               "\"lat\":null,\"lon\":null}"), 0);
    for (int k = VG_FIELD_CURRENCY; k < VG_FIELD__COUNT; k++)
        assert_int_equal(ev.tx.f[k].type, VG_T_NULL);
    assert_int_equal(ev.tx.n_extra, 0);
    vg_event_deinit(&ev);
}

static void test_wrong_types(void **state) {
    (void)state;
    static const struct {
        const char *field, *value, *reason;
    } bad[] = {
        {"id", "5", "field 'id': expected a string, found a number"},
        {"id", "true", "field 'id': expected a string, found a boolean"},
        {"account", "[\"x\"]", "field 'account': expected a string, found an array"},
        {"amount", "\"12\"", "field 'amount': expected a number, found a string"},
        {"amount", "false", "field 'amount': expected a number, found a boolean"},
        {"amount", "{\"v\":1}", "field 'amount': expected a number, found an object"},
        {"currency", "1", "field 'currency': expected a string, found a number"},
        {"merchant", "{}", "field 'merchant': expected a string, found an object"},
        {"mcc", "5411", "field 'mcc': expected a string, found a number"},
        {"country", "[]", "field 'country': expected a string, found an array"},
        {"ip", "false", "field 'ip': expected a string, found a boolean"},
        {"device", "1.5", "field 'device': expected a string, found a number"},
        {"card", "true", "field 'card': expected a string, found a boolean"},
        {"channel", "7", "field 'channel': expected a string, found a number"},
        {"type", "[1]", "field 'type': expected a string, found an array"},
        {"lat", "\"40.7\"", "field 'lat': expected a number, found a string"},
        {"lon", "true", "field 'lon': expected a number, found a boolean"},
    };
    char line[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* the required fields come from REQ unless the field under test is one of them */
        const char *f = bad[i].field;
        int req = !strcmp(f, "id") || !strcmp(f, "account") || !strcmp(f, "amount");
        if (req)
            snprintf(line, sizeof line, "{%s\"%s\":%s,\"ts\":0%s%s}",
                     strcmp(f, "id") ? "\"id\":\"a\"," : "", f, bad[i].value,
                     strcmp(f, "account") ? ",\"account\":\"b\"" : "",
                     strcmp(f, "amount") ? ",\"amount\":1" : "");
        else
            snprintf(line, sizeof line, "{" REQ ",\"%s\":%s}", f, bad[i].value);
        expect_reject(line, VG_REJECT_BAD_TYPE, bad[i].reason);
    }
}

static void test_lat_lon_ranges(void **state) {
    (void)state;
    vg_event_t ev;
    vg_event_init(&ev);
    assert_int_equal(parse(&ev, "{" REQ ",\"lat\":90,\"lon\":-180}"), 0);
    assert_true(ev.tx.f[VG_FIELD_LAT].u.n == 90);
    assert_int_equal(parse(&ev, "{" REQ ",\"lat\":-90.0,\"lon\":180.0}"), 0);
    assert_true(ev.tx.f[VG_FIELD_LON].u.n == 180);
    vg_event_deinit(&ev);
    expect_reject("{" REQ ",\"lat\":90.0001}", VG_REJECT_BAD_VALUE, "field 'lat': 90.0001 out of range -90..90");
    expect_reject("{" REQ ",\"lat\":-91}", VG_REJECT_BAD_VALUE, "field 'lat': -91 out of range");
    expect_reject("{" REQ ",\"lon\":180.5}", VG_REJECT_BAD_VALUE, "field 'lon': 180.5 out of range -180..180");
    expect_reject("{" REQ ",\"lon\":-1e10}", VG_REJECT_BAD_VALUE, "field 'lon': -10000000000 out of range");
    assert_string_equal(vg_reject_code(VG_REJECT_BAD_VALUE), "bad_value");
}

static void test_extras_every_type(void **state) {
    (void)state;
    vg_event_t ev;
    vg_event_init(&ev);
    assert_int_equal(parse(&ev, "{" REQ ",\"s\":\"str\",\"i\":42,\"f\":-2.5,\"big\":123456789012345678901234567890,"
                               "\"u\":18446744073709551615,\"t\":true,\"fa\":false,\"n\":null,"
                               "\"o\": { \"a\" : [1, 2.50, \"x\\\"y\", {\"b\":null}] , \"c\":true, \"d\":1e2 },"
                               "\"arr\":[ ],\"eo\":{},\"nested\":[[[\"\\u00e9\"]]],\"\":\"empty key\"}"), 0);
    assert_int_equal(ev.tx.n_extra, 13);
    expect_str(vg_tx_extra(&ev.tx, "s", 1), "str");
    vg_value_t v = vg_tx_extra(&ev.tx, "i", 1);
    assert_int_equal(v.type, VG_T_NUM);
    assert_true(v.u.n == 42);
    v = vg_tx_extra(&ev.tx, "f", 1);
    assert_true(v.type == VG_T_NUM && v.u.n == -2.5);
    v = vg_tx_extra(&ev.tx, "big", 3);
    assert_true(v.type == VG_T_NUM && v.u.n == 123456789012345678901234567890.0);
    v = vg_tx_extra(&ev.tx, "u", 1);
    assert_true(v.type == VG_T_NUM && v.u.n == 18446744073709551615.0);
    v = vg_tx_extra(&ev.tx, "t", 1);
    assert_true(v.type == VG_T_BOOL && v.u.b == 1);
    v = vg_tx_extra(&ev.tx, "fa", 2);
    assert_true(v.type == VG_T_BOOL && v.u.b == 0);
    assert_int_equal(ev.tx.extra[7].v.type, VG_T_NULL);
    assert_int_equal(ev.tx.extra[7].name.len, 1);
    assert_memory_equal(ev.tx.extra[7].name.p, "n", 1);
    static const struct {
        const char *name, *text;
    } js[] = {
        {"o", "{\"a\":[1,2.5,\"x\\\"y\",{\"b\":null}],\"c\":true,\"d\":100}"},
        {"arr", "[]"},
        {"eo", "{}"},
        {"nested", "[[[\"\xc3\xa9\"]]]"},
    };
    for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
        v = vg_tx_extra(&ev.tx, js[i].name, (uint32_t)strlen(js[i].name));
        assert_int_equal(v.type, VG_T_JSON);
        if (v.u.s.len != strlen(js[i].text) || memcmp(v.u.s.p, js[i].text, v.u.s.len))
            fail_msg("%s: got %.*s want %s", js[i].name, (int)v.u.s.len, v.u.s.p, js[i].text);
    }
    expect_str(vg_tx_extra(&ev.tx, "", 0), "empty key");
    /* the extras array belongs to the event: a second parse replaces it */
    assert_int_equal(parse(&ev, "{" REQ ",\"k\":1}"), 0);
    assert_int_equal(ev.tx.n_extra, 1);
    assert_int_equal(vg_tx_extra(&ev.tx, "s", 1).type, VG_T_NULL);
    vg_event_deinit(&ev);
}

static void test_duplicates(void **state) {
    (void)state;
    expect_reject("{" REQ ",\"amount\":13}", VG_REJECT_DUPLICATE_FIELD, "field 'amount' appears more than once");
    expect_reject("{" REQ ",\"lat\":1,\"lat\":1}", VG_REJECT_DUPLICATE_FIELD, "field 'lat' appears more than once");
    expect_reject("{" REQ ",\"x\":1,\"y\":2,\"x\":1}", VG_REJECT_DUPLICATE_FIELD, "field 'x' appears more than once");
    expect_reject("{" REQ ",\"x\":null,\"x\":null}", VG_REJECT_DUPLICATE_FIELD, "field 'x' appears more than once");
    assert_string_equal(vg_reject_code(VG_REJECT_DUPLICATE_FIELD), "duplicate_field");

    vg_event_t ev;
    vg_event_init(&ev);
    /* the same key written with an escape */
    assert_int_equal(parse(&ev, "{" REQ ",\"\\u0069d\":\"tx-2\"}"), VG_EINVAL);
    assert_int_equal(ev.reject, VG_REJECT_DUPLICATE_FIELD);
    assert_string_equal(ev.reason, "field 'id' appears more than once");
    assert_int_equal(ev.has_id, 0); /* which id? neither */
    /* nested objects may reuse top-level names, but not repeat a key at any depth: the
     * JSON would be ambiguous, and it was copied into decisions as it was
     * ("features":{"a":{"3ds":true,"3ds":false}}) */
    assert_int_equal(parse(&ev, "{" REQ ",\"o\":{\"a\":1,\"b\":2,\"id\":3}}"), 0);
    assert_memory_equal(vg_tx_extra(&ev.tx, "o", 1).u.s.p, "{\"a\":1,\"b\":2,\"id\":3}", 19);
    static const struct {
        const char *json, *reason;
    } nested[] = {
        {",\"attrs\":{\"3ds\":true,\"3ds\":false}}", "field 'attrs.3ds' appears more than once"},
        {",\"o\":{\"a\":1,\"\\u0061\":2}}", "field 'o.a' appears more than once"},
        /* an empty key, one with U+0000 or a dot: quoted (it said 'o' and 'o.a') */
        {",\"o\":{\"\":1,\"\":2}}", "field 'o.\"\"' appears more than once"},
        {",\"o\":{\"a\\u0000\":1,\"a\\u0000\":2}}", "field 'o.\"a\\u0000\"' appears more than once"},
        {",\"o\":{\"a.b\":{\"q\":1,\"q\":2}}}", "field 'o.\"a.b\".q' appears more than once"},
        {",\"o\":{\"p\":{\"q\":{\"z\":1,\"y\":[],\"z\":2}}}}", "field 'o.p.q.z' appears more than once"},
        {",\"items\":[1,{\"k\":1},{\"j\":0,\"k\":1,\"k\":1}]}", "field 'items[2].k' appears more than once"},
        {",\"m\":[[{}],[{\"x\":1,\"x\":1}]]}", "field 'm[1][0].x' appears more than once"},
        /* a big object (sorted, not compared pairwise) */
        {",\"big\":{\"a0\":0,\"a1\":0,\"a2\":0,\"a3\":0,\"a4\":0,\"a5\":0,\"a6\":0,"
         "\"a7\":0,\"a8\":0,\"a9\":0,\"b0\":0,\"b1\":0,\"b2\":0,\"b3\":0,\"a5\":1}}",
         "field 'big.a5' appears more than once"},
        /* the first such field in document order is named */
        {",\"u\":{\"b\":1,\"b\":1},\"v\":{\"c\":1,\"c\":1}}", "field 'u.b' appears more than once"},
        /* a known field's object value too (before its type is looked at) */
        {",\"card\":{\"n\":1,\"n\":1}}", "field 'card.n' appears more than once"},
    };
    for (size_t i = 0; i < sizeof nested / sizeof nested[0]; i++) {
        char ln[1024];
        snprintf(ln, sizeof ln, "{" REQ "%s", nested[i].json);
        assert_int_equal(parse(&ev, ln), VG_EINVAL);
        assert_int_equal(ev.reject, VG_REJECT_DUPLICATE_FIELD);
        if (strcmp(ev.reason, nested[i].reason) != 0) fail_msg("%s: %s", ln, ev.reason);
        assert_int_equal(ev.has_id, 1);
    }
    /* the same keys in sibling objects, and equal keys at different depths, are fine */
    assert_int_equal(parse(&ev, "{" REQ ",\"s\":[{\"k\":1},{\"k\":2}],\"t\":{\"k\":{\"k\":1}}}"), 0);
    assert_memory_equal(vg_tx_extra(&ev.tx, "t", 1).u.s.p, "{\"k\":{\"k\":1}}", 13);

    /* many extras (hash table path): 40 distinct accepted, a repeat rejected */
    char line[2048];
    size_t n = (size_t)snprintf(line, sizeof line, "{" REQ);
    for (int i = 0; i < 40; i++) n += (size_t)snprintf(line + n, sizeof line - n, ",\"k%d\":%d", i, i);
    strcpy(line + n, "}");
    assert_int_equal(parse(&ev, line), 0);
    assert_int_equal(ev.tx.n_extra, 40);
    assert_true(vg_tx_extra(&ev.tx, "k39", 3).u.n == 39);
    strcpy(line + n, ",\"k17\":0}");
    assert_int_equal(parse(&ev, line), VG_EINVAL);
    assert_int_equal(ev.reject, VG_REJECT_DUPLICATE_FIELD);
    assert_string_equal(ev.reason, "field 'k17' appears more than once");
    assert_int_equal(ev.has_id, 1);
    vg_event_deinit(&ev);
}

static void test_unicode(void **state) {
    (void)state;
    vg_event_t ev;
    vg_event_init(&ev);
    assert_int_equal(parse(&ev, "{" REQ ",\"merchant\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\n\\t\","
                               "\"device\":\"a\\u0000b\",\"country\":\"\xc3\xa9\xf0\x9f\x98\x80\"}"), 0);
    expect_str(ev.tx.f[VG_FIELD_MERCHANT], "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \n\t");
    assert_int_equal(ev.tx.f[VG_FIELD_DEVICE].u.s.len, 3);
    assert_memory_equal(ev.tx.f[VG_FIELD_DEVICE].u.s.p, "a\0b", 3);
    expect_str(ev.tx.f[VG_FIELD_COUNTRY], "\xc3\xa9\xf0\x9f\x98\x80");
    /* an unicode-escaped id is unescaped */
    assert_int_equal(parse(&ev, "{\"id\":\"t\\u0078\",\"account\":\"b\",\"ts\":0,\"amount\":1}"), 0);
    assert_int_equal(ev.id.len, 2);
    assert_memory_equal(ev.id.p, "tx", 2);
    vg_event_deinit(&ev);
    expect_reject("{" REQ ",\"m\":\"\\ud800\"}", VG_REJECT_INVALID_JSON, "bad escape sequence");
    expect_reject("{" REQ ",\"m\":\"\\x\"}", VG_REJECT_INVALID_JSON, "bad escape sequence");
}

static void test_invalid_json(void **state) {
    (void)state;
    static const struct {
        const char *line, *reason;
    } bad[] = {
        {"not json", "invalid JSON"},
        {"{", "invalid JSON"},
        {"{\"id\":\"a\"", "invalid JSON"},
        {"[1,2]", "invalid JSON: expected an object, found an array"},
        {"\"str\"", "expected an object, found a string"},
        {"42", "expected an object, found a number"},
        {"null", "expected an object, found null"},
        {"{} {}", "unexpected content after the object at byte 3"},
        {"{" REQ "}x", "unexpected content after the object"},
        {"{\"a\":1,}", "invalid JSON: bad structure"},
        {"{\"a\" 1}", "invalid JSON"},
        {"{\"a\":tru}", "unknown literal"},
        {"{\"a\":01}", "malformed number"},
        {"{\"a\":1.}", "malformed number"},
        {"{\"a\":-}", "malformed number"},
        {"{\"a\":\"x\ty\"}", "control character in a string must be escaped"},
        {"{\"a\":\"abc}", "invalid JSON"},
        {"", "invalid JSON: the line is blank"},
        {"   ", "the line is blank"},
        {"{\"a\":NaN}", "invalid JSON"},
        {"{\"a\":Infinity}", "invalid JSON"},
    };
    vg_event_t ev;
    vg_event_init(&ev);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_reject(bad[i].line, VG_REJECT_INVALID_JSON, bad[i].reason);
        parse(&ev, bad[i].line);
        assert_int_equal(ev.has_id, 0);
    }
    /* invalid UTF-8, with the offset of the first bad byte */
    expect_reject("{\"id\":\"a\",\"m\":\"ab\xff\"}", VG_REJECT_INVALID_JSON, "invalid UTF-8 at byte 17");
    expect_reject("{\"id\":\"a\",\"m\":\"\xc0\xaf\"}", VG_REJECT_INVALID_JSON, "invalid UTF-8 at byte 15");
    expect_reject("{\"id\":\"a\",\"m\":\"\xed\xa0\x80\"}", VG_REJECT_INVALID_JSON, "invalid UTF-8 at byte 15");
    /* a NUL byte in the line, and lines not NUL-terminated */
    expect_reject_at("{\"a\":1}\0", 8, VG_REJECT_INVALID_JSON, "invalid JSON", __LINE__);
    assert_int_equal(vg_event_parse(&ev, "{\"id\":\"a\",\"account\":\"b\",\"ts\":0,\"amount\":1}GARBAGE", 42), 0);
    /* deep nesting */
    char deep[3000];
    size_t n = (size_t)snprintf(deep, sizeof deep, "{" REQ ",\"d\":");
    for (int i = 0; i < 1100; i++) deep[n++] = '[';
    for (int i = 0; i < 1100; i++) deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    expect_reject(deep, VG_REJECT_INVALID_JSON, "nested more than");
    assert_string_equal(vg_reject_code(VG_REJECT_INVALID_JSON), "invalid_json");
    vg_event_deinit(&ev);
}

static void test_non_finite(void **state) {
    (void)state;
    vg_event_t ev;
    vg_event_init(&ev);
    assert_int_equal(parse(&ev, "{\"id\":\"tx-9\",\"account\":\"b\",\"ts\":0,\"amount\":1e999}"), VG_EINVAL);
    assert_int_equal(ev.reject, VG_REJECT_NON_FINITE);
    assert_string_equal(ev.reason, "field 'amount': number 1e999 is too large (not a finite double)");
    assert_int_equal(ev.has_id, 1);
    assert_int_equal(ev.id.len, 4);
    assert_memory_equal(ev.id.p, "tx-9", 4);
    assert_string_equal(vg_reject_code(ev.reject), "non_finite");
    vg_event_deinit(&ev);

    expect_reject("{" REQ ",\"lat\":-1.5e400}", VG_REJECT_NON_FINITE, "field 'lat': number -1.5e400 is too large");
    expect_reject("{" REQ ",\"x\":{\"y\":[1,2E+309]}}", VG_REJECT_NON_FINITE, "field 'x': number 2E+309");
    expect_reject("{\"amount\":1.7976931348623159e308}", VG_REJECT_NON_FINITE, "field 'amount'");
    /* a 400-digit integer overflows too */
    char big[600];
    size_t n = (size_t)snprintf(big, sizeof big, "{" REQ ",\"b\":1");
    for (int i = 0; i < 400; i++) big[n++] = '0';
    strcpy(big + n, "}");
    expect_reject(big, VG_REJECT_NON_FINITE, "field 'b': number 1000000000");
    /* non_finite wins over other field problems; has_id stays */
    expect_reject("{\"amount\":\"x\",\"id\":\"a\",\"z\":1e999}", VG_REJECT_NON_FINITE, "field 'z'");
    /* ... but a line that is invalid anyway is invalid_json */
    expect_reject("{" REQ ",\"x\":1e999,}", VG_REJECT_INVALID_JSON, "invalid JSON");
    expect_reject("{" REQ ",\"x\":1e999,\"y\":01}", VG_REJECT_INVALID_JSON, "malformed number");
    expect_reject("[1e999]", VG_REJECT_INVALID_JSON, "expected an object");

    /* finite edge cases are accepted */
    vg_event_init(&ev);
    assert_int_equal(parse(&ev, "{\"id\":\"a\",\"account\":\"b\",\"ts\":0,\"amount\":1.7976931348623157e308,\"t\":1e-999}"), 0);
    assert_true(ev.amount == 1.7976931348623157e308);
    assert_true(vg_tx_extra(&ev.tx, "t", 1).u.n == 0);
    assert_int_equal(parse(&ev, "{\"id\":\"a\",\"account\":\"b\",\"ts\":0,\"amount\":-9223372036854775809}"), 0);
    assert_true(ev.amount == -9223372036854775808.0);
    assert_int_equal(parse(&ev, "{\"id\":\"a\",\"account\":\"b\",\"ts\":0,\"amount\":123456789012345678901234567890}"), 0);
    assert_true(ev.amount == 1.2345678901234568e29);
    vg_event_deinit(&ev);
}

static void test_has_id(void **state) {
    (void)state;
    vg_event_t ev;
    vg_event_init(&ev);
    assert_int_equal(parse(&ev, "{\"id\":\"keep\",\"account\":\"b\",\"ts\":\"2026-01-01T00:00:00\",\"amount\":1}"), VG_EINVAL);
    assert_int_equal(ev.reject, VG_REJECT_BAD_TIMESTAMP);
    assert_int_equal(ev.has_id, 1);
    assert_memory_equal(ev.id.p, "keep", 4);
    /* id after the faulty field still found */
    assert_int_equal(parse(&ev, "{\"amount\":\"1\",\"account\":\"b\",\"ts\":0,\"id\":\"late-id\"}"), VG_EINVAL);
    assert_int_equal(ev.reject, VG_REJECT_BAD_TYPE);
    assert_int_equal(ev.has_id, 1);
    assert_int_equal(ev.id.len, 7);
    /* missing other fields */
    assert_int_equal(parse(&ev, "{\"id\":\"only\"}"), VG_EINVAL);
    assert_int_equal(ev.has_id, 1);
    /* not a valid id */
    assert_int_equal(parse(&ev, "{\"id\":7,\"account\":\"b\",\"ts\":0,\"amount\":1}"), VG_EINVAL);
    assert_int_equal(ev.has_id, 0);
    assert_int_equal(parse(&ev, "{\"id\":null}"), VG_EINVAL);
    assert_int_equal(ev.has_id, 0);
    assert_int_equal(parse(&ev, "{\"id\":\"\"}"), VG_EINVAL);
    assert_int_equal(ev.has_id, 0);
    assert_int_equal(parse(&ev, "{\"id\":\"a\",}"), VG_EINVAL); /* invalid JSON */
    assert_int_equal(ev.has_id, 0);
    assert_int_equal(ev.id.len, 0);
    /* a good parse after rejections is clean */
    assert_int_equal(parse(&ev, "{" REQ "}"), 0);
    assert_int_equal(ev.reject, VG_REJECT_NONE);
    assert_string_equal(ev.reason, "");
    assert_int_equal(ev.has_id, 1);
    vg_event_deinit(&ev);
}

static void test_first_problem_wins(void **state) {
    (void)state;
    /* document order among field problems, then missing fields */
    expect_reject("{\"lat\":100,\"amount\":\"x\"}", VG_REJECT_BAD_VALUE, "field 'lat'");
    expect_reject("{\"amount\":\"x\",\"lat\":100}", VG_REJECT_BAD_TYPE, "field 'amount'");
    expect_reject("{\"id\":\"a\",\"account\":\"b\",\"lat\":100}", VG_REJECT_BAD_VALUE, "field 'lat'");
    /* deinit of a never-used event, and codes of every rejection */
    vg_event_t ev;
    vg_event_init(&ev);
    vg_event_deinit(&ev);
    vg_event_deinit(&ev);
    assert_string_equal(vg_reject_code(VG_REJECT_NONE), "");
    assert_string_equal(vg_reject_code(VG_REJECT_BAD_TYPE), "bad_type");
    assert_string_equal(vg_reject_code(VG_REJECT_BAD_TIMESTAMP), "bad_timestamp");
    assert_string_equal(vg_reject_code(VG_REJECT_LATE), "late");
    assert_string_equal(vg_reject_code(VG_REJECT_FUTURE), "future");
}

/* The canonical fast path of the time parser: every time vg_time_format writes comes
 * back exactly (and is marked reusable as the event's ts_text); a canonical-looking string
 * with a field out of range, or a leap second, is left to the general parser, which
 * rejects or places it as before. */
/* The canonical form's syntax and ranges, checked byte by byte (the reference for the
 * word-at-a-time parser): YYYY-MM-DDTHH:MM:SS.mmmZ, month 1-12, a day of that month,
 * hour < 24, minute and second < 60. */
static int ref_canonical_ok(const unsigned char *s) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; i < 24; i++) {
        if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != (unsigned char)shape[i])
            return 0;
    }
#define N2(i) ((s[i] - '0') * 10 + (s[(i) + 1] - '0'))
    int y = N2(0) * 100 + N2(2), mo = N2(5), d = N2(8);
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    if (mo < 1 || mo > 12 || d < 1 || d > dm[mo - 1] + (mo == 2 && leap)) return 0;
    return N2(11) < 24 && N2(14) < 60 && N2(17) < 60;
#undef N2
}

/* Random canonical times with one or two bytes replaced (digits, separators, the bytes
 * around '0'..'9', high bytes): vg_time_parse_canonical accepts exactly what the
 * byte-by-byte check accepts (but for times outside the supported range, which the
 * general parser then rejects too), and what it accepts formats back to the same
 * bytes. */
static void test_timestamp_canonical_mutated(void **state) {
    (void)state;
    static const unsigned char subst[] = "0123456789-:T.Zz/;?@ \x80\xff\x00\x39\x3a\x3f\x2f";
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    int accepted = 0, rejected = 0;
    for (int i = 0; i < 300000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t span = (uint64_t)(VG_TIME_MAX_MS - VG_TIME_MIN_MS) + 1;
        int64_t ms0 = VG_TIME_MIN_MS + (int64_t)(x % span);
        char t[40];
        assert_int_equal(vg_time_format(ms0, t), 24);
        for (int k = 0; k < 1 + (int)(x >> 62 & 1); k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            t[x % 24] = (char)subst[(x >> 8) % (sizeof subst - 1)];
        }
        int64_t ms = -1;
        int got = vg_time_parse_canonical(t, 24, &ms);
        int want = ref_canonical_ok((const unsigned char *)t);
        if (got) {
            assert_true(want);
            char back[40];
            assert_int_equal(vg_time_format(ms, back), 24);
            assert_memory_equal(back, t, 24);
            accepted++;
        } else {
            int64_t g;
            if (want) assert_int_not_equal(vg_time_parse(t, 24, &g, NULL, 0), 0);
            rejected++;
        }
    }
    assert_true(accepted > 10000 && rejected > 10000);
}

static void test_timestamp_canonical(void **state) {
    (void)state;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t span = (uint64_t)(VG_TIME_MAX_MS - VG_TIME_MIN_MS) + 1;
        int64_t ms = VG_TIME_MIN_MS + (int64_t)(x % span);
        if (i == 0) ms = VG_TIME_MIN_MS;
        if (i == 1) ms = VG_TIME_MAX_MS;
        char t[40];
        size_t n = vg_time_format(ms, t);
        int64_t got = -1;
        assert_int_equal(vg_time_parse_canonical(t, n, &got), 1);
        assert_true(got == ms);
        got = -1;
        assert_int_equal(vg_time_parse(t, n, &got, NULL, 0), 0);
        assert_true(got == ms);
    }
    static const char *const off[] = {
        "2026-13-01T00:00:00.000Z", "2026-00-01T00:00:00.000Z", "2026-04-31T00:00:00.000Z",
        "2025-02-29T00:00:00.000Z", "2026-01-01T24:00:00.000Z", "2026-01-01T00:60:00.000Z",
        "2026-01-01T23:59:60.500Z", "2026-01-01T00:00:00.000z", "2026-01-01t00:00:00.000Z",
        "2026-01-01T00:00:00,000Z", "2026-01-01T00:0a:00.000Z", "2026-01-01T00:00:00.0000Z",
    };
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        int64_t ms;
        assert_int_equal(vg_time_parse_canonical(off[i], strlen(off[i]), &ms), 0);
    }
    int64_t ms, want;
    /* the leap second stays in its minute, as the general parser places it */
    assert_int_equal(vg_time_parse("2026-01-31T23:59:60.500Z", 24, &ms, NULL, 0), 0);
    assert_int_equal(vg_time_parse("2026-01-31T23:59:59.999Z", 24, &want, NULL, 0), 0);
    assert_true(ms == want);
    assert_int_equal(vg_time_parse("2026-01-01T00:00:00.000z", 24, &ms, NULL, 0), 0);
    assert_int_equal(vg_time_parse("2026-04-31T00:00:00.000Z", 24, &ms, NULL, 0), VG_EINVAL);
    /* ts_text: set for the canonical form only */
    vg_event_t ev;
    vg_event_init(&ev);
    const char *a =
        "{\"id\":\"e1\",\"account\":\"a\",\"ts\":\"2026-11-01T10:00:00.250Z\",\"amount\":1}";
    assert_int_equal(vg_event_parse(&ev, a, strlen(a)), 0);
    assert_non_null(ev.ts_text);
    assert_memory_equal(ev.ts_text, "2026-11-01T10:00:00.250Z", 24);
    const char *b =
        "{\"id\":\"e1\",\"account\":\"a\",\"ts\":\"2026-11-01T10:00:00.25Z\",\"amount\":1}";
    assert_int_equal(vg_event_parse(&ev, b, strlen(b)), 0);
    assert_null(ev.ts_text);
    assert_true(ev.ts_ms == 1793527200250LL);   /* 2026-11-01T10:00:00.250Z */
    vg_event_deinit(&ev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_spec_example),
        cmocka_unit_test(test_timestamp_forms),
        cmocka_unit_test(test_timestamp_rejections),
        cmocka_unit_test(test_timestamp_canonical),
        cmocka_unit_test(test_timestamp_canonical_mutated),
        cmocka_unit_test(test_epoch_ms),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_id_and_account_limits),
        cmocka_unit_test(test_missing_and_null),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_lat_lon_ranges),
        cmocka_unit_test(test_extras_every_type),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_has_id),
        cmocka_unit_test(test_first_problem_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
