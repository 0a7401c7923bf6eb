/* acctx.h - what an account keeps besides its windows: the anomaly baseline and the
 * label memo.
 *
 * An account extension (vg_acctx_t) is kept by engine/state.c with the account (so it is
 * checkpointed, evicted and reloaded exactly like the account's windows) when the
 * ruleset reads anomaly.* (the per-account vg_anomaly_state_t of models/anomaly.h) or
 * label aggregates (the memo), or when a label was posted for one of its events.
 *
 * Under rules that read no label aggregate (layout memo 0: entries of id hash, time and
 * status only) no event enters the memo and nothing expires from it: it keeps the
 * entries it had when such rules were installed (their key hashes and x values
 * dropped), and a label finds its event there or, failing that, in the account's
 * dedupe log (engine/state.h vg_state_event_time), which adds an entry. Rules that read
 * labels again take these entries over (key hashes 0, x values null), so that their
 * account label aggregates count every label posted meanwhile.
 *
 * The label memo lists the account's accepted events of the last `horizon` ms (the
 * longest label window plus the allowed lateness: a label for an older event can never
 * count in the window of a later event, so forgetting it is exact): for each, a 64-bit
 * hash of its id, its time, its label status (none, genuine, fraud), a 64-bit hash of
 * its value of each `by` key group (0: none), and the event's x of each label sum
 * (fraud_sum(x, W), labelled_sum(x, W): a double, NaN for null). A label that arrives
 * later finds its event here by id and so knows the event's time, keys and x values.
 *
 * Threading: none; owned by one state. Ownership: the state owns its accounts'
 * extensions (vg_acctx_free accepts NULL).
 */
#ifndef VG_ACCTX_H
#define VG_ACCTX_H

#include <stddef.h>
#include <stdint.h>

#include "engine/jsonout.h"
#include "models/anomaly.h"

typedef struct vg_acctx_layout {
    int anomaly;          /* keep an anomaly state */
    int memo;             /* label aggregates read the memo: every event enters it
                             (0: only labelled events, see above) */
    int ngroups;          /* key hashes per memo entry (the program's by-groups) */
    int nx;               /* x values per memo entry (the program's label-sum slots) */
    uint64_t xsig;        /* a hash of the slots' x texts (vg_acctx_xsig), 0 when nx is 0 */
} vg_acctx_layout_t;

enum { VG_LABEL_NONE = 0, VG_LABEL_GENUINE = 1, VG_LABEL_FRAUD = 2 };

typedef struct vg_acctx {
    uint8_t has_anomaly;
    vg_anomaly_state_t an;     /* valid when has_anomaly */
    /* label memo: entries [head, n) of `stride` words: id hash, ts, status, key hashes,
     * x values (doubles, bit for bit) */
    uint32_t head, n, cap;     /* in entries */
    uint32_t stride;           /* 3 + ngroups + nx */
    uint32_t ngroups;          /* key hashes per entry */
    uint64_t *m;
} vg_acctx_t;

#define VG_ACCTX_IDH(x, i) ((x)->m[(size_t)(i) * (x)->stride])
#define VG_ACCTX_TS(x, i) ((int64_t)(x)->m[(size_t)(i) * (x)->stride + 1])
#define VG_ACCTX_STATUS(x, i) ((x)->m[(size_t)(i) * (x)->stride + 2])
#define VG_ACCTX_KEYH(x, i, g) ((x)->m[(size_t)(i) * (x)->stride + 3 + (size_t)(g)])
/* The word of x value k of entry i (a double's bits; vg_acctx_memo_x reads it). */
#define VG_ACCTX_XW(x, i, k) ((x)->m[(size_t)(i) * (x)->stride + 3 + (x)->ngroups + (size_t)(k)])

/* The xsig of a program's label-sum slots (rules/program.h vg_prog_memo_x_text), 0 when
 * it has none. Can't fail. */
struct vg_program;
uint64_t vg_acctx_xsig(const struct vg_program *p);

/* A fingerprint of the layout (for the state's layout record). Can't fail. */
uint64_t vg_acctx_fingerprint(const vg_acctx_layout_t *l);

/* A new, empty extension for layout l. NULL on out of memory. Free with vg_acctx_free. */
vg_acctx_t *vg_acctx_new(const vg_acctx_layout_t *l);
void vg_acctx_free(vg_acctx_t *x);
/* Bytes held. Can't fail. */
size_t vg_acctx_mem(const vg_acctx_t *x);

/* Appends the record (versioned, little endian). Returns 0 or VG_ENOMEM. */
int vg_acctx_encode(const vg_acctx_t *x, vg_buf_t *out);
/* Decodes a record written by vg_acctx_encode for layout l. NULL when the bytes are not
 * such a record (or out of memory); *corrupt says which (1: bad bytes). */
vg_acctx_t *vg_acctx_decode(const vg_acctx_layout_t *l, const void *p, size_t n, int *corrupt);

/* Memo: drops entries older than `oldest`; appends an entry (status none) with the key
 * hashes keyh[0 .. ngroups-1] and the x values xv[0 .. nx-1] (either may be NULL: all 0,
 * all NaN). Append returns 0 or VG_ENOMEM; it allocates only when the memo outgrows its
 * block. */
void vg_acctx_memo_expire(vg_acctx_t *x, int64_t oldest);
int vg_acctx_memo_add(vg_acctx_t *x, uint64_t idh, int64_t ts, const uint64_t *keyh,
                      const double *xv);
/* x value k of entry i (NaN: null). Can't fail. */
double vg_acctx_memo_x(const vg_acctx_t *x, uint32_t i, int k);
/* The index of the newest entry with this id hash, or -1. Can't fail. */
long vg_acctx_memo_find(const vg_acctx_t *x, uint64_t idh);
/* Counts the entries with time in [lo, hi]: labelled fraud, and labelled at all. */
void vg_acctx_memo_count(const vg_acctx_t *x, int64_t lo, int64_t hi, int64_t *fraud,
                         int64_t *labelled);
/* Sums x value k over the entries with time in [lo, hi]: of those labelled fraud, and of
 * those labelled at all; a null (NaN) x adds nothing, as in sum(). Can't fail. */
void vg_acctx_memo_sum(const vg_acctx_t *x, int k, int64_t lo, int64_t hi, double *fraud,
                       double *labelled);

/* 64-bit hash of bytes (ids, key values). Never 0. Can't fail. */
uint64_t vg_acctx_hash(const void *p, size_t n, uint64_t seed);

#endif
