/* value.h - typed values and the read-only view of one event that the rules VM reads.
 *
 * This header is shared by rules/ (which evaluates expressions) and engine/ (which
 * parses events and fills a vg_tx_t). It has no functions with state; values are plain
 * structs passed by value.
 *
 * Ownership: a vg_value_t of type VG_T_STR borrows its bytes; whoever produced the value
 * says how long they live (for event fields: until the next event is parsed into the
 * same vg_event_t; for VM results: until the arena they came from is reset).
 */
#ifndef VG_VALUE_H
#define VG_VALUE_H

#include <stdint.h>
#include <stddef.h>

typedef enum vg_type {
    VG_T_NULL = 0,
    VG_T_BOOL,
    VG_T_NUM,   /* double, always finite */
    VG_T_STR,   /* bytes, not NUL-terminated, may contain any byte */
    VG_T_TIME,  /* epoch milliseconds, UTC */
    VG_T_DUR,   /* milliseconds */
    VG_T_JSON   /* raw JSON text of an object or array in an extra field */
} vg_type_t;

typedef struct vg_str {
    const char *p;
    uint32_t len;
} vg_str_t;

typedef struct vg_value {
    uint8_t type;      /* vg_type_t */
    union {
        int b;         /* VG_T_BOOL: 0 or 1 */
        double n;      /* VG_T_NUM */
        int64_t ms;    /* VG_T_TIME, VG_T_DUR */
        vg_str_t s;    /* VG_T_STR, VG_T_JSON */
    } u;
} vg_value_t;

/* Times: 0000-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z (epoch ms); time
 * arithmetic that leaves this range gives null. */
#define VG_TIME_MIN_MS (-62167219200000LL)
#define VG_TIME_MAX_MS 253402300799999LL

static inline vg_value_t vg_null(void) { vg_value_t v; v.type = VG_T_NULL; v.u.ms = 0; return v; }
static inline vg_value_t vg_num(double n) { vg_value_t v; v.type = VG_T_NUM; v.u.n = n; return v; }
static inline vg_value_t vg_bool(int b) { vg_value_t v; v.type = VG_T_BOOL; v.u.b = b ? 1 : 0; return v; }
static inline vg_value_t vg_time(int64_t ms) { vg_value_t v; v.type = VG_T_TIME; v.u.ms = ms; return v; }
static inline vg_value_t vg_dur(int64_t ms) { vg_value_t v; v.type = VG_T_DUR; v.u.ms = ms; return v; }
static inline vg_value_t vg_strv(const char *p, uint32_t len) {
    vg_value_t v; v.type = VG_T_STR; v.u.s.p = p; v.u.s.len = len; return v;
}

/* The known fields of an event (SPEC section 1), in a fixed order. VG_FIELD_ID,
 * VG_FIELD_ACCOUNT are strings, VG_FIELD_TS a time, VG_FIELD_AMOUNT a number; the
 * optional ones are strings (CURRENCY..TYPE) or numbers (LAT, LON), or null when the
 * event does not carry them. */
#define VG_FIELD_LIST(X)        \
    X(ID, "id", VG_T_STR)       \
    X(ACCOUNT, "account", VG_T_STR) \
    X(TS, "ts", VG_T_TIME)      \
    X(AMOUNT, "amount", VG_T_NUM) \
    X(CURRENCY, "currency", VG_T_STR) \
    X(MERCHANT, "merchant", VG_T_STR) \
    X(MCC, "mcc", VG_T_STR)     \
    X(COUNTRY, "country", VG_T_STR) \
    X(IP, "ip", VG_T_STR)       \
    X(DEVICE, "device", VG_T_STR) \
    X(CARD, "card", VG_T_STR)   \
    X(CHANNEL, "channel", VG_T_STR) \
    X(TYPE, "type", VG_T_STR)   \
    X(LAT, "lat", VG_T_NUM)     \
    X(LON, "lon", VG_T_NUM)

typedef enum vg_field {
#define VG_FIELD_ENUM(name, str, type) VG_FIELD_##name,
    VG_FIELD_LIST(VG_FIELD_ENUM)
#undef VG_FIELD_ENUM
    VG_FIELD__COUNT
} vg_field_t;

/* An extra (unknown) top-level field: its name and its value with its JSON type
 * (string, number, bool, null; objects and arrays as VG_T_JSON raw text). */
typedef struct vg_extra {
    vg_str_t name;
    vg_value_t v;
} vg_extra_t;

/* What the rules VM may read of an event. Filled by the engine; borrowed by the VM. */
typedef struct vg_tx {
    vg_value_t f[VG_FIELD__COUNT];
    const vg_extra_t *extra;
    uint32_t n_extra;
} vg_tx_t;

/* Returns the value of the extra field `name`, or null when the event has none.
 * Can't fail. */
static inline vg_value_t vg_tx_extra(const vg_tx_t *tx, const char *name, uint32_t len) {
    for (uint32_t i = 0; i < tx->n_extra; i++) {
        const vg_extra_t *e = &tx->extra[i];
        if (e->name.len == len) {
            uint32_t k = 0;
            while (k < len && e->name.p[k] == name[k]) k++;
            if (k == len) return e->v;
        }
    }
    return vg_null();
}

#endif
