/* state.c - per-key state of one engine: accounts, `by K` keys, duplicates, memory
 * (see state.h).
 *
 * Accounts and by-keys are "entries" (ent_t) held in two open-addressing hash tables
 * (linear probing, backward-shift deletion, pointers to entries so that an entry never
 * moves). An account holds its window state for the account group, its newest time and
 * its dedupe log; a by-key entry holds the window state of one key of one by-group,
 * keyed by 2-byte group + type byte + value bytes (the same bytes follow "k/" in the
 * store).
 *
 * With a store, every entry is either dirty (changed since the last checkpoint; listed
 * in st->dirty, never evicted) or clean (on the LRU list, most recently used first).
 * vg_state_evict() drops clean entries from the LRU tail, accounts and by-keys alike,
 * until the memory is within the budget; a dropped entry is reloaded from the store,
 * unchanged, when next needed. A checkpoint writes the dirty entries and puts them back
 * on the LRU list in the order they were last used. An incremental checkpoint
 * (vg_state_checkpoint_some) takes the oldest dirty entries into st->pend, encodes them
 * into the caller's batch and marks them clean and `pending`: off both lists, so never
 * evicted, until vg_state_checkpoint_done() after the caller's write. Without a store there is no LRU,
 * nothing is dirty and nothing is dropped.
 *
 * Dedupe log (per account): accepted events in arrival order, each an entry
 * {ts, offset, id length, decision length, id hash} and the id and decision bytes
 * appended to one per-account byte buffer. Entries older than newest - horizon are
 * dropped from the front; the buffer and the entry array are compacted when the dead
 * front is at least half of them, so that a warm account appends without allocating.
 * Lookups compare the 32-bit hash, then the id bytes exactly. The account itself keeps
 * the hashes of its last 16 records and the time of its first one, so that a log of at
 * most 16 records (it has no index) answers a new id, and an append with nothing to
 * expire, without reading a record (a cache miss on most events otherwise).
 *
 * Records in the store (integers little endian):
 *   account "a/" + name: u8 version 5 is version 4 (below) with, after has_window, the
 *     window's head (vg_wstate_encode_head: everything but its rows) instead of the
 *     whole window state; its rows are in
 *   window rows "w/" + u32be name length + name + u64be chunk: the rows at positions
 *     [chunk * WCHUNK, (chunk + 1) * WCHUNK) from the window's first position on
 *     (vg_wstate_encode_rows), rewritten by a checkpoint from the first row that
 *     changed (appended, or moved by a late event) and the lowest one when rows before
 *     it expired, deleted once all its rows expired: so that a checkpoint writes what
 *     the events changed, not the window's history.
 *   account "a/" + name: u8 version 4, i64 newest, u64 seq0, u32 n, u32 m, m x (u64 rule
 *     id, i64 time of that rule's last alert), u8 has_ext, [u32 length, extension
 *     (engine/acctx.h)], u8 has_window, window state (vg_wstate_encode). Its dedupe log
 *     is records seq0 .. seq0+n-1 of
 *   dedupe record "d/" + u32be name length + name + u64be seq: the events remembered
 *     since the account's last checkpoint, numbered seq, seq+1, ...: i64 INT64_MIN,
 *     u32 count, then each as i64 ts, u32 idlen, u32 dlen, id, decision (dlen's top bit
 *     set when packed against "m/dtpl", the next one when the decision is stored without
 *     its head, rebuilt from the id, the account and ts when read: since 2026-12-06;
 *     the third when it is kept as the binary values of a decision shape, DL_VALUES
 *     below: since 2026-12-06, session 17);
 *     or (written before 2026-12-06) one event without the first two fields. Written
 *     once by the first checkpoint after its events and deleted by the first after all
 *     of them left the horizon, so that a checkpoint writes what changed, not the
 *     whole log, in one record per account.
 *   Versions 1-3 (still read; the log inline, numbered from 0 when loaded):
 *   account "a/" + name: u8 version 1, i64 newest, u32 n, n x (i64 ts, u32 idlen,
 *     u32 dlen, id, decision), u8 has_window, window state (vg_wstate_encode); dlen
 *     has its top bit set when the decision is packed against "m/dtpl". Version 2
 *     (written only by an account with suppression state) has, before has_window,
 *     u32 m > 0, m x (u64 rule id, i64 time of that rule's last alert).
 *   by-key "k/" + u16be group + u8 type + bytes: u8 version 1, window state.
 *   "m/dtpl": the decision template (engine/dpack.h), written once, with the first
 *     checkpoint after it was chosen (the first decision line of 64 bytes or more).
 *   "m/shp/" + u16be number: a decision shape (vg_state_shape, shape_t below), written
 *     with the first checkpoint after it was registered.
 *   "m/layout": "vglay1", u32 ngroups, u64 fingerprint of the account layout and of
 *     each group's, i64 lateness, i64 horizon.
 *   "m/src": the sources of the program the layout was made by (rules/program.h,
 *     vg_prog_sources), with every "m/layout"; absent over 1 MiB.
 */
#include "engine/state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/acctx.h"
#include "rules/digits.h"
#include "engine/dpack.h"
#include "engine/event.h"
#include "engine/jsonout.h"
#include "engine/le.h"
#include "engine/window.h"
#include "rules/errors.h"

#define REC_VERSION 1
#define REC_VERSION_SUPP 2   /* account record with a suppression table */
#define REC_VERSION_X 3      /* ... (possibly empty) and an extension (engine/acctx.h) */
#define REC_VERSION_D 4      /* the dedupe log in "d/" records (written since 2026-12) */
#define REC_VERSION_W 5      /* ... and the window rows in "w/" records */
#define WCHUNK 4             /* window rows per "w/" record */
#define DEFAULT_LATENESS_MS (3600LL * 1000)
#define DEFAULT_HORIZON_MS (24LL * 3600 * 1000)

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* ---- entries, hash tables, LRU ------------------------------------------------ */

typedef struct ent ent_t;
struct ent {
    ent_t *prev, *next;     /* LRU links (clean entries, with a store) */
    uint64_t hash;
    uint64_t tick;          /* last use */
    size_t mem;             /* bytes held, counted in st->bytes */
    char *key;              /* the entry's key bytes, inside the entry's allocation */
    uint32_t klen;
    uint8_t dirty, linked, is_key;
    uint8_t wspace;         /* the allocation has room for the window state after the
                               key (ent_wspace): a new key's state lives there */
    uint8_t pending;        /* encoded by vg_state_checkpoint_some, not yet written:
                               kept off the LRU */
    uint8_t snap;           /* in the cut of vg_state_snapshot_begin, not yet encoded:
                               encoded before its next change (mark_dirty) */
};

static inline size_t al8(size_t x) { return (x + 7) & ~(size_t)7; }

/* One remembered event: this header, then the id and decision bytes, padded to 8. */
typedef struct dd_rec {
    int64_t ts;
    uint32_t idlen, dlen;   /* dlen: stored bytes, | DL_PACKED when packed (dpack.h),
                               | DL_HEADLESS when stored without the decision's head */
    uint32_t h;             /* hash of the id */
    uint32_t pad;
} dd_rec_t;

#define DL_PACKED 0x80000000u
/* The decision was stored without its head (vg_state_decision_head: the id, the
 * account, the time), which is written again when it is read (since 2026-12-06; older
 * records never have this bit, their lengths being below 1 GiB) */
#define DL_HEADLESS 0x40000000u
/* The decision is stored as binary values of a shape (vg_state_shape; since 2026-12-06,
 * always with DL_HEADLESS): u16 shape number, u8 kind (0: the shape's standard text
 * around the features, then the tail's number as an unsigned LEB128 varint; 1: the text
 * around the features stored, u32 mid length, u32 length, the bytes; 2: the same, packed
 * against "m/dtpl"), then each feature's value as a tag byte and its bytes (vals_put).
 * Older records never have this bit (decisions are far below 512 MiB). */
#define DL_VALUES 0x20000000u
#define DL_LEN(x) ((x) & ~(DL_PACKED | DL_HEADLESS | DL_VALUES))
#define SHAPES_MAX 4096

/* The shape of a ruleset's decision lines: its features' key texts and the standard
 * text around them (SPEC section 3: what comes after the head up to the first key,
 * `mid`, and after the last value the tail, with a number in it, the ruleset version:
 * `ta` before the number, `tb` after it; kept together in `rest` as mid ta tb). Stored
 * as "m/shp/" + u16be number: u32 n, n x (u32 length, key text), u32 mid length, u32 ta
 * length, u32 length, rest. */
typedef struct shape {
    uint32_t nf;
    char *keys;             /* the key texts one after another */
    uint32_t *koff;         /* nf + 1 offsets into keys */
    char *rest;
    uint32_t midlen, talen, restlen;
    uint8_t saved, pend;    /* in the store; in the slice being written */
} shape_t;

typedef struct dedupe {
    char *b;                /* live records b[bhead .. blen), in arrival order */
    uint32_t bhead, blen, bcap;
    uint32_t n;             /* live records */
    uint32_t *ix;           /* with more than IX_MIN live records: open-addressing
                               index of 1 + record offset / 8 by id hash, else NULL */
    uint32_t ixcap, ixn;    /* ixn: records in the index (dropped ones included) */
    /* With a store, the records (numbered by arrival: the first live record is number
     * seq0) are written once, those new at a checkpoint together in one store record
     * ("d/" + the number of its first; log_put) */
    uint64_t seq0;          /* number of the first live record */
    uint64_t wseq;          /* records seq0 .. wseq-1 are known written */
    uint64_t hseq;          /* no record from hseq on was ever put in a batch */
    uint64_t pwseq;         /* wseq once the slice in flight is written */
    uint64_t *rs;           /* the first numbers of the store records that may exist, */
    uint32_t nrs, rscap;    /* ascending (one ends where the next starts, the last at
                               hseq) */
    uint32_t prsdel;        /* the first prsdel of them are deleted by the batch in
                               flight (dropped from rs once it is written) */
    /* kept in the account, so that the common event (a new id, nothing expiring)
     * touches no record: the id hash of record number q (seq0 <= q < seq0 + n) is
     * hh[q % DD_HH] when n <= DD_HH; ts0 is the time of record seq0 when n > 0 */
    uint32_t hh[16];
    int64_t ts0;
    int64_t tsmax;          /* the latest time of a live record, when n > 0 (records
                               are kept in arrival order, not time order) */
    /* record number cseq starts at offset coff (cseq == seq0 + n: where the next one
     * goes), when dd_cache_ok: log_put starts there instead of walking the live records
     * from the first (an account keeping many records was walked whole at every
     * checkpoint). Zero-initialised it is right for an empty log. */
    uint64_t cseq;
    uint32_t coff;
} dedupe_t;

#define DD_HH 16   /* = IX_MIN: a log without an index is answered from hh */

#define IX_MIN 16

/* Suppression: the time of the last alert of one rule (by rule id) for the account. */
typedef struct supp {
    uint64_t rule;
    int64_t last;
} supp_t;

struct vg_acct {
    ent_t e;
    int64_t newest;
    vg_wstate_t *w;         /* NULL until the first event (or when no account specs) */
    dedupe_t dd;
    supp_t *sup;            /* last alert per suppressing rule; few entries, linear search */
    uint32_t nsup, supcap;
    vg_acctx_t *x;          /* anomaly baseline and label memo, or NULL */
    /* window rows in the store ("w/" records, WCHUNK rows each, by position / WCHUNK):
     * the records below wclo are known deleted, none from wchi on was ever put; pwclo
     * is wclo once the slice in flight is written; enc_from/enc_dirty: what the last
     * encoding took off the window's dirty mark, given back if it is not written */
    int64_t wclo, wchi, pwclo, enc_from;
    int enc_dirty;
    char name[];
};

typedef struct kstate {
    ent_t e;
    vg_wstate_t *w;
    char kb[];              /* u16be group, u8 type, value bytes */
} kstate_t;

/* A slot holds the entry's hash beside the pointer, so that probing past other
 * entries (and missing) never touches them: one cache miss per lookup, not one per
 * probe. */
typedef struct hslot {
    uint64_t h;
    ent_t *e;               /* NULL: empty */
} hslot_t;

typedef struct htab {
    hslot_t *slot;
    size_t cap, n;          /* cap a power of two */
} htab_t;

typedef struct group {
    vg_wlayout_t *lay;
    int nspecs;
    int *specs;             /* the program's spec indexes of this group */
} group_t;

struct vg_state {
    vg_program_t *p;
    vg_store_t *store;
    int64_t lateness, horizon;
    size_t budget;
    vg_wlayout_t *alay;
    int a_nspecs;
    int ngroups;
    group_t *groups;
    htab_t accts, keys;
    ent_t lru;              /* sentinel: lru.next most recent, lru.prev least recent */
    ent_t **dirty;
    size_t ndirty, dcap;
    uint64_t tick;
    size_t bytes;           /* sum of entries' mem */
    uint64_t loads, key_loads, evictions, key_evictions;
    int acct_maybe_stored, key_maybe_stored;
    vg_buf_t kbuf, vbuf, layout;
    int apf_lines;          /* cache lines of a new account's block (name of 16 bytes),
                               at most 16: what vg_state_prefetch stage 1 fetches */
    vg_dpack_t dp;          /* decision template, the first decision line of 64+ bytes */
    int dtpl_saved;         /* "m/dtpl" is in the store */
    int src_saved;          /* "m/src" of st->p is in the store (put_src) */
    int src_pend;           /* the slice being written holds it */
    vg_buf_t pbuf, ubuf;    /* packed / unpacked decision scratch */
    shape_t *shapes;        /* decision shapes (vg_state_shape) */
    uint32_t nshapes, shcap;
    vg_buf_t rbuf;          /* an unpacked rest */
    vg_batch_t *batch;
    ent_t **pend;           /* the slice of vg_state_checkpoint_some being written */
    size_t npend, pcap;
    int dtpl_pend;          /* that slice holds "m/dtpl" */
    int has_x;              /* accounts may carry an extension (engine/acctx.h) */
    vg_acctx_layout_t xlay;
    /* after vg_state_set_program, until a checkpoint wrote it all: every entry is dirty
     * (rewritten for the new layouts), `dels` lists the store keys to delete first
     * (u32 length, bytes), and the next checkpoint, even a slice, writes everything */
    int swap_pending;
    int swap_inflight;      /* the slice being written holds the whole swap */
    vg_buf_t dels;
    /* a snapshot (vg_state_snapshot_begin): st->pend is its cut, entries pend[snext..]
     * may still be unencoded (their `snap` flag), encoded into sb in steps or just
     * before they change */
    vg_batch_t *sb;
    size_t snext, sleft;
};

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    const size_t total = n;
    uint64_t h = 0x243f6a8885a308d3ULL ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, s, 8);
        h = (h ^ mix64(k)) * 0x9e3779b97f4a7c15ULL;
        s += 8;
        n -= 8;
    }
    uint64_t k = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n && total >= 8) {   /* the last 8 bytes in one load, the tail's n at the top */
        memcpy(&k, s + n - 8, 8);
        k >>= 8 * (8 - n);
    } else
#endif
        for (size_t i = 0; i < n; i++) k |= (uint64_t)s[i] << (8 * i);
    h = (h ^ mix64(k ^ ((uint64_t)n << 59))) * 0x9e3779b97f4a7c15ULL;
    return mix64(h);
}

static int ht_init(htab_t *t, size_t cap) {
    t->slot = calloc(cap, sizeof *t->slot);
    t->cap = cap;
    t->n = 0;
    return t->slot ? 0 : VG_ENOMEM;
}

static ent_t *ht_find(const htab_t *t, uint64_t h, const char *k, uint32_t kl) {
    size_t m = t->cap - 1;
    for (size_t i = h & m;; i = (i + 1) & m) {
        const hslot_t *s = &t->slot[i];
        if (!s->e) return NULL;
        if (s->h == h && s->e->klen == kl && memcmp(s->e->key, k, kl) == 0) return s->e;
    }
}

static void ht_place(hslot_t *slot, size_t cap, uint64_t h, ent_t *e) {
    size_t m = cap - 1, i = h & m;
    while (slot[i].e) i = (i + 1) & m;
    slot[i].h = h;
    slot[i].e = e;
}

/* Inserts e (not present). Returns 0 or VG_ENOMEM (table unchanged). */
static int ht_insert(htab_t *t, ent_t *e) {
    if ((t->n + 1) * 10 > t->cap * 7) {
        size_t ncap = t->cap * 2;
        hslot_t *ns = calloc(ncap, sizeof *ns);
        if (!ns) return VG_ENOMEM;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i].e) ht_place(ns, ncap, t->slot[i].h, t->slot[i].e);
        free(t->slot);
        t->slot = ns;
        t->cap = ncap;
    }
    ht_place(t->slot, t->cap, e->hash, e);
    t->n++;
    return 0;
}

/* Removes e (present) by backward-shift deletion. Can't fail. */
static void ht_remove(htab_t *t, ent_t *e) {
    size_t m = t->cap - 1, i = e->hash & m;
    while (t->slot[i].e != e) i = (i + 1) & m;
    size_t j = i;
    for (;;) {
        j = (j + 1) & m;
        hslot_t x = t->slot[j];
        if (!x.e) break;
        size_t home = x.h & m;
        /* x may move to i when its home is not in (i, j] cyclically */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t->slot[i] = x;
            i = j;
        }
    }
    t->slot[i].e = NULL;
    t->n--;
}

static void lru_unlink(ent_t *e) {
    if (!e->linked) return;
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
    e->linked = 0;
}

static void lru_push_front(vg_state_t *st, ent_t *e) {
    e->next = st->lru.next;
    e->prev = &st->lru;
    st->lru.next->prev = e;
    st->lru.next = e;
    e->linked = 1;
}

static void touch(vg_state_t *st, ent_t *e) {
    e->tick = ++st->tick;
    if (e->linked && st->lru.next != e) {
        lru_unlink(e);
        lru_push_front(st, e);
    }
}

static int snap_encode(vg_state_t *st, ent_t *e);

/* Marks e changed since the last checkpoint (an entry of a snapshot's cut is encoded
 * first, as it was at the cut). Returns 0 or VG_ENOMEM (nothing done). */
static int mark_dirty(vg_state_t *st, ent_t *e) {
    if (!st->store || e->dirty) return 0;
    if (e->snap) {
        int rc = snap_encode(st, e);
        if (rc) return rc;
    }
    if (st->ndirty == st->dcap) {
        size_t nc = st->dcap ? st->dcap * 2 : 256;
        ent_t **nd = realloc(st->dirty, nc * sizeof *nd);
        if (!nd) return VG_ENOMEM;
        st->dirty = nd;
        st->dcap = nc;
    }
    st->dirty[st->ndirty++] = e;
    e->dirty = 1;
    lru_unlink(e);
    return 0;
}

static void set_mem(vg_state_t *st, ent_t *e, size_t mem) {
    st->bytes = st->bytes - e->mem + mem;
    e->mem = mem;
}

static void acct_remem(vg_state_t *st, vg_acct_t *a) {
    size_t m = al8(sizeof *a + a->e.klen) + (a->e.wspace ? vg_wstate_size(st->alay) : 0) +
               a->dd.bcap + (size_t)a->dd.rscap * sizeof(uint64_t) +
               (size_t)a->dd.ixcap * sizeof(uint32_t) + (size_t)a->supcap * sizeof(supp_t);
    if (a->w) m += vg_wstate_mem(a->w);
    if (a->x) m += vg_acctx_mem(a->x);
    set_mem(st, &a->e, m);
}

/* The room for a new key's window state and first rows (vg_wstate_init_rows_at). */
static size_t key_wspace(const vg_wlayout_t *lay) {
    return vg_wstate_size(lay) + vg_wstate_inline_rows(lay) * vg_wlayout_row_bytes(lay);
}

static void key_remem(vg_state_t *st, kstate_t *k) {
    size_t m = al8(sizeof *k + k->e.klen) +
               (k->e.wspace ? key_wspace(st->groups[(uint8_t)k->kb[0] << 8 |
                                                   (uint8_t)k->kb[1]].lay)
                            : 0);
    if (k->w) m += vg_wstate_mem(k->w);
    set_mem(st, &k->e, m);
}

static void acct_free(vg_acct_t *a) {
    vg_wstate_free(a->w);
    vg_acctx_free(a->x);
    free(a->sup);
    free(a->dd.ix);
    free(a->dd.b);
    free(a->dd.rs);
    free(a);
}

static void key_free(kstate_t *k) {
    vg_wstate_free(k->w);
    free(k);
}

static void ent_free(ent_t *e) {
    if (e->is_key) key_free((kstate_t *)e);
    else acct_free((vg_acct_t *)e);
}

/* ---- little-endian encoding (engine/le.h) ---------------------------------------- */

static inline int put_u32(vg_buf_t *b, uint32_t v) { return vg_le_put(b, v, 4); }
static inline int put_u64(vg_buf_t *b, uint64_t v) { return vg_le_put(b, v, 8); }

/* ---- dedupe log ------------------------------------------------------------------- */

static inline int64_t sat_sub(int64_t a, int64_t b) {
    if (b > 0 && a < INT64_MIN + b) return INT64_MIN;
    return a - b;
}

static inline dd_rec_t *dd_rec(const dedupe_t *d, uint32_t off) {
    return (dd_rec_t *)(void *)(d->b + off);
}

static inline uint32_t dd_size(uint32_t idlen, uint32_t dlen) {
    return (uint32_t)((sizeof(dd_rec_t) + idlen + DL_LEN(dlen) + 7) & ~(size_t)7);
}

static inline uint32_t dd_next(const dedupe_t *d, uint32_t off) {
    const dd_rec_t *x = dd_rec(d, off);
    return off + dd_size(x->idlen, x->dlen);
}

static inline int dd_cache_ok(const dedupe_t *d) {
    return d->cseq >= d->seq0 && d->cseq - d->seq0 <= d->n && d->coff >= d->bhead &&
           d->coff <= d->blen;
}

/* (Re)builds the index for the live records with room for `room` more, or frees it
 * when there are few records. Returns 0 or VG_ENOMEM (no index then: lookups scan,
 * which is slower but correct). */
static int dd_reindex(dedupe_t *d, uint32_t room) {
    if (d->n + room <= IX_MIN) {
        free(d->ix);
        d->ix = NULL;
        d->ixcap = d->ixn = 0;
        return 0;
    }
    uint64_t want = 64;
    while (want < 2 * ((uint64_t)d->n + room)) want *= 2;
    if (want > UINT32_MAX) return VG_ENOMEM;
    if (want != d->ixcap) {
        uint32_t *nx = malloc((size_t)want * sizeof *nx);
        if (!nx) {
            free(d->ix);
            d->ix = NULL;
            d->ixcap = d->ixn = 0;
            return VG_ENOMEM;
        }
        free(d->ix);
        d->ix = nx;
        d->ixcap = (uint32_t)want;
    }
    memset(d->ix, 0, (size_t)d->ixcap * sizeof *d->ix);
    uint32_t m = d->ixcap - 1;
    for (uint32_t off = d->bhead; off < d->blen; off = dd_next(d, off)) {
        uint32_t j = dd_rec(d, off)->h & m;
        while (d->ix[j]) j = (j + 1) & m;
        d->ix[j] = off / 8 + 1;
    }
    d->ixn = d->n;
    return 0;
}

/* Moves the live records to the front of the buffer; shrinks a buffer far larger than
 * its contents; rebuilds the index. Can't fail (a failed shrink keeps the old block,
 * a failed index rebuild leaves no index). */
static void dd_compact(dedupe_t *d) {
    if (dd_cache_ok(d)) d->coff -= d->bhead;   /* the records move down by bhead */
    else d->cseq = UINT64_MAX;
    if (d->n == 0) {
        d->bhead = d->blen = 0;
    } else if (d->bhead > 0) {
        memmove(d->b, d->b + d->bhead, d->blen - d->bhead);
        d->blen -= d->bhead;
        d->bhead = 0;
    }
    if (d->bcap > 4096 && d->blen < d->bcap / 4) {
        uint32_t nc = d->blen * 2 > 1024 ? d->blen * 2 : 1024;
        char *nb = realloc(d->b, nc);
        if (nb) {
            d->b = nb;
            d->bcap = nc;
        }
    }
    if (d->ix || d->n > IX_MIN) dd_reindex(d, 0);
}

/* Drops records older than `oldest` from the front. Can't fail. */
static void dd_expire(dedupe_t *d, int64_t oldest) {
    if (d->n == 0 || d->ts0 >= oldest) return;   /* nothing expires */
    if (d->tsmax < oldest) {   /* all expire: as the walk below would, without reading them */
        d->seq0 += d->n;
        d->n = 0;
        d->bhead = d->blen;
        dd_compact(d);
        return;
    }
    uint32_t h0 = d->bhead;
    while (d->n > 0 && dd_rec(d, d->bhead)->ts < oldest) {
        d->bhead = dd_next(d, d->bhead);
        d->n--;
        d->seq0++;
    }
    if (d->n > 0) d->ts0 = dd_rec(d, d->bhead)->ts;
    if (d->n == 0) dd_compact(d);
    else if (d->bhead != h0 && d->bhead * 2 >= d->blen) dd_compact(d);
}

static int dd_append(dedupe_t *d, int64_t ts, const char *id, uint32_t idlen,
                     const char *dec, uint32_t dlen, uint32_t h) {
    uint32_t need = dd_size(idlen, dlen);
    if (d->blen + (uint64_t)need > d->bcap && d->bhead > 0) dd_compact(d);
    if (d->blen + (uint64_t)need > d->bcap) {
        /* the first block fits the record exactly (most accounts keep one), then the
         * buffer doubles (growing by half, a log of a few records was reallocated at
         * almost every append until its first compaction) */
        uint64_t nc = 2 * (uint64_t)d->bcap;
        if (nc < (uint64_t)d->blen + need) nc = (uint64_t)d->blen + need;
        nc = (nc + 15) & ~(uint64_t)15;
        if (nc > UINT32_MAX / 2) return VG_ENOMEM;
        char *nb = realloc(d->b, (size_t)nc);
        if (!nb) return VG_ENOMEM;
        d->b = nb;
        d->bcap = (uint32_t)nc;
    }
    if (d->n + 1 > IX_MIN && (!d->ix || 2 * ((uint64_t)d->ixn + 1) > d->ixcap))
        dd_reindex(d, d->n + 1);
    if (d->ix) {
        uint32_t m = d->ixcap - 1, j = h & m;
        while (d->ix[j]) j = (j + 1) & m;
        d->ix[j] = d->blen / 8 + 1;
        d->ixn++;
    }
    d->hh[(d->seq0 + d->n) % DD_HH] = h;
    if (d->n == 0) d->ts0 = d->tsmax = ts;
    else if (ts > d->tsmax) d->tsmax = ts;
    dd_rec_t *x = dd_rec(d, d->blen);
    x->ts = ts;
    x->idlen = idlen;
    x->dlen = dlen;
    x->h = h;
    x->pad = 0;
    char *p = (char *)(x + 1);
    memcpy(p, id, idlen);
    memcpy(p + idlen, dec, DL_LEN(dlen));
    d->blen += need;
    d->n++;
    return 0;
}

/* ---- accounts and keys: create, encode, decode ---------------------------------- */

/* The room for a window state in an entry's allocation, after its key. */
static void *ent_wspace(ent_t *e, size_t fixed) { return (char *)e + al8(fixed + e->klen); }

/* A new account; with room for its window state when wsize > 0. */
static vg_acct_t *acct_alloc(const char *name, size_t len, uint64_t h, size_t wsize) {
    vg_acct_t *a = calloc(1, al8(sizeof *a + len) + wsize);
    if (!a) return NULL;
    memcpy(a->name, name, len);
    a->e.key = a->name;
    a->e.klen = (uint32_t)len;
    a->e.hash = h;
    a->e.wspace = wsize > 0;
    a->newest = INT64_MIN;
    return a;
}

/* Appends (id, decision) to the log, the decision packed against the state's template
 * when that is shorter. Returns 0 or VG_ENOMEM. */
static int log_entry(vg_state_t *st, dedupe_t *d, int64_t ts, const char *id,
                     uint32_t idlen, const char *dec, size_t dlen, uint32_t headless) {
    if (dlen >= DL_VALUES) return VG_ENOMEM;
    if (!st->dp.tpl && dlen >= 64) {
        int rc = vg_dpack_set_template(&st->dp, dec, dlen);
        if (rc) return rc;
    }
    uint32_t flag = 0;
    if (st->dp.tpl) {
        vg_buf_clear(&st->pbuf);
        if (vg_dpack_pack(&st->dp, dec, dlen, &st->pbuf) == 0 && st->pbuf.len < dlen) {
            dec = st->pbuf.p;
            dlen = st->pbuf.len;
            flag = DL_PACKED;
        }
    }
    return dd_append(d, ts, id, idlen, dec, (uint32_t)dlen | flag | headless,
                     (uint32_t)hash_bytes(id, idlen));
}

int vg_state_decision_head_text(vg_buf_t *out, const char *id, size_t idlen,
                                const char *account, size_t alen, int64_t ts,
                                const char *ts_text) {
    char tbuf[40];
    size_t tl = 24;
    if (!ts_text) {
        tl = vg_time_format(ts, tbuf);
        ts_text = tbuf;
    }
    int rc = vg_buf_append(out, "{\"id\":", 6);
    if (!rc) rc = vg_json_str(out, id, idlen);
    if (!rc) rc = vg_buf_append(out, ",\"account\":", 11);
    if (!rc) rc = vg_json_str(out, account, alen);
    if (!rc) rc = vg_buf_append(out, ",\"ts\":\"", 7);
    if (!rc) rc = vg_buf_append(out, ts_text, tl);
    return rc;
}

int vg_state_decision_head(vg_buf_t *out, const char *id, size_t idlen, const char *account,
                           size_t alen, int64_t ts) {
    return vg_state_decision_head_text(out, id, idlen, account, alen, ts, NULL);
}

/* ---- decisions as values of a shape ------------------------------------------------ */

enum { VT_NULL, VT_FALSE, VT_TRUE, VT_U8, VT_I32, VT_F64, VT_TIME, VT_DUR, VT_STR, VT_JSON };

/* Appends the n values as a tag byte and its bytes each: the same JSON comes back out
 * of val_get (numbers that are integers below 2^31 in 1 or 4 bytes, other doubles in
 * 8; -0 as 0, which prints the same). 0 or VG_ENOMEM. */
static int vals_put(vg_buf_t *b, const vg_value_t *vals, uint32_t n) {
    if (vg_buf_reserve(b, 9 * (size_t)n) < 0) return VG_ENOMEM;
    unsigned char *o = (unsigned char *)b->p + b->len;
    for (uint32_t k = 0; k < n; k++) {
        const vg_value_t *v = &vals[k];
        switch (v->type) {
        case VG_T_BOOL: *o++ = v->u.b ? VT_TRUE : VT_FALSE; break;
        case VG_T_NUM: {
            double d = v->u.n;
            if (fabs(d) < 2147483648.0) {
                int32_t i = (int32_t)d;
                if ((double)i == d && (i != 0 || !signbit(d))) {   /* -0: as an f64 */
                    if ((uint32_t)i < 256) {
                        o[0] = VT_U8;
                        o[1] = (unsigned char)i;
                        o += 2;
                    } else {
                        o[0] = VT_I32;
                        vg_le_store32(o + 1, (uint32_t)i);
                        o += 5;
                    }
                    break;
                }
            }
            uint64_t bits;
            memcpy(&bits, &d, 8);
            o[0] = VT_F64;
            vg_le_store64(o + 1, bits);
            o += 9;
            break;
        }
        case VG_T_TIME: case VG_T_DUR:
            o[0] = v->type == VG_T_TIME ? VT_TIME : VT_DUR;
            vg_le_store64(o + 1, (uint64_t)v->u.ms);
            o += 9;
            break;
        case VG_T_STR: case VG_T_JSON: {
            /* room for this one and 9 bytes for each after it */
            b->len = (size_t)((char *)o - b->p);
            if (vg_buf_reserve(b, 5 + (size_t)v->u.s.len + 9 * (size_t)(n - k)) < 0)
                return VG_ENOMEM;
            o = (unsigned char *)b->p + b->len;
            o[0] = v->type == VG_T_STR ? VT_STR : VT_JSON;
            vg_le_store32(o + 1, v->u.s.len);
            if (v->u.s.len) memcpy(o + 5, v->u.s.p, v->u.s.len);
            o += 5 + (size_t)v->u.s.len;
            break;
        }
        default: *o++ = VT_NULL; break;
        }
    }
    b->len = (size_t)((char *)o - b->p);
    return 0;
}

/* Reads one value written by vals_put (strings borrow from r). 0, or 1 when malformed. */
static int val_get(vg_le_rd_t *r, vg_value_t *v) {
    unsigned t = (unsigned)vg_le_get(r, 1);
    switch (t) {
    case VT_NULL: *v = vg_null(); break;
    case VT_FALSE: case VT_TRUE: *v = vg_bool(t == VT_TRUE); break;
    case VT_U8: *v = vg_num((double)vg_le_get(r, 1)); break;
    case VT_I32: *v = vg_num((double)(int32_t)(uint32_t)vg_le_get(r, 4)); break;
    case VT_F64: {
        uint64_t u = vg_le_get(r, 8);
        double d;
        memcpy(&d, &u, 8);
        *v = vg_num(d);
        break;
    }
    case VT_TIME: *v = vg_time((int64_t)vg_le_get(r, 8)); break;
    case VT_DUR: *v = vg_dur((int64_t)vg_le_get(r, 8)); break;
    case VT_STR: case VT_JSON: {
        uint32_t n = (uint32_t)vg_le_get(r, 4);
        const char *p = vg_le_bytes(r, n);
        *v = vg_strv(p ? p : "", n);
        if (t == VT_JSON) v->type = VG_T_JSON;
        break;
    }
    default: return 1;
    }
    return r->bad;
}

static void shape_free(shape_t *s) {
    free(s->keys);
    free(s->koff);
    free(s->rest);
}

/* Adds a shape (copied) to the table; its number, or VG_ENOMEM / VG_ELIMIT. */
static int shape_add(vg_state_t *st, uint32_t n, char *const *keys, const size_t *klen,
                     const char *mid, size_t midlen, const char *ta, size_t talen,
                     const char *tb, size_t tblen, int saved) {
    if (st->nshapes >= SHAPES_MAX) return VG_ELIMIT;
    size_t taillen = talen + tblen;
    if (midlen + taillen >= UINT32_MAX / 2) return VG_ENOMEM;
    if (st->nshapes == st->shcap) {
        uint32_t nc = st->shcap ? st->shcap * 2 : 4;
        shape_t *ns = realloc(st->shapes, nc * sizeof *ns);
        if (!ns) return VG_ENOMEM;
        st->shapes = ns;
        st->shcap = nc;
    }
    shape_t s = {0};
    size_t kl = 0;
    for (uint32_t i = 0; i < n; i++) kl += klen[i];
    s.nf = n;
    s.keys = malloc(kl + 1);
    s.koff = malloc(((size_t)n + 1) * sizeof *s.koff);
    s.rest = malloc(midlen + taillen + 1);
    if (!s.keys || !s.koff || !s.rest || kl >= UINT32_MAX) {
        shape_free(&s);
        return VG_ENOMEM;
    }
    kl = 0;
    for (uint32_t i = 0; i < n; i++) {
        s.koff[i] = (uint32_t)kl;
        memcpy(s.keys + kl, keys[i], klen[i]);
        kl += klen[i];
    }
    s.koff[n] = (uint32_t)kl;
    memcpy(s.rest, mid, midlen);
    memcpy(s.rest + midlen, ta, talen);
    memcpy(s.rest + midlen + talen, tb, tblen);
    s.midlen = (uint32_t)midlen;
    s.talen = (uint32_t)talen;
    s.restlen = (uint32_t)(midlen + taillen);
    s.saved = (uint8_t)saved;
    st->shapes[st->nshapes] = s;
    return (int)st->nshapes++;
}

int vg_state_shape(vg_state_t *st, int n, char *const *keys, const size_t *klen,
                   const char *mid, size_t midlen, const char *ta, size_t talen,
                   const char *tb, size_t tblen) {
    if (n < 0) return VG_EINVAL;
    for (uint32_t j = 0; j < st->nshapes; j++) {
        const shape_t *s = &st->shapes[j];
        const char *r = s->rest;
        if (s->nf != (uint32_t)n || s->midlen != midlen || s->talen != talen ||
            s->restlen != midlen + talen + tblen || memcmp(r, mid, midlen) != 0 ||
            memcmp(r + midlen, ta, talen) != 0 || memcmp(r + midlen + talen, tb, tblen) != 0)
            continue;
        int same = 1;
        for (int i = 0; same && i < n; i++)
            same = s->koff[i + 1] - s->koff[i] == klen[i] &&
                   memcmp(s->keys + s->koff[i], keys[i], klen[i]) == 0;
        if (same) return (int)j;
    }
    return shape_add(st, (uint32_t)n, keys, klen, mid, midlen, ta, talen, tb, tblen, 0);
}

/* Appends the store record of shape j to batch b. 0 or VG_ENOMEM. */
static int shape_put(vg_state_t *st, vg_batch_t *b, uint32_t j) {
    const shape_t *s = &st->shapes[j];
    unsigned char key[8] = {'m', '/', 's', 'h', 'p', '/', (unsigned char)(j >> 8),
                            (unsigned char)j};
    vg_buf_clear(&st->vbuf);
    int rc = put_u32(&st->vbuf, s->nf);
    for (uint32_t i = 0; !rc && i < s->nf; i++) {
        rc = put_u32(&st->vbuf, s->koff[i + 1] - s->koff[i]);
        if (!rc) rc = vg_buf_append(&st->vbuf, s->keys + s->koff[i], s->koff[i + 1] - s->koff[i]);
    }
    if (!rc) rc = put_u32(&st->vbuf, s->midlen);
    if (!rc) rc = put_u32(&st->vbuf, s->talen);
    if (!rc) rc = put_u32(&st->vbuf, s->restlen);
    if (!rc) rc = vg_buf_append(&st->vbuf, s->rest, s->restlen);
    if (!rc) vg_batch_put(b, key, sizeof key, st->vbuf.p, st->vbuf.len);
    return rc;
}

/* The shapes not yet in the store into batch b (marked pending when `slice`). */
static int shapes_put(vg_state_t *st, vg_batch_t *b, int slice) {
    for (uint32_t j = 0; j < st->nshapes; j++) {
        if (st->shapes[j].saved) continue;
        int rc = shape_put(st, b, j);
        if (rc) return rc;
        if (slice) st->shapes[j].pend = 1;
    }
    return 0;
}

/* how 0: every shape was written; 1: the pending ones were; 2: they were not. */
static void shapes_written(vg_state_t *st, int how) {
    for (uint32_t j = 0; j < st->nshapes; j++) {
        if (how == 0 || (how == 1 && st->shapes[j].pend)) st->shapes[j].saved = 1;
        st->shapes[j].pend = 0;
    }
}

typedef struct shload {
    vg_state_t *st;
    int bad, oom;
} shload_t;

/* One "m/shp/" record, read at start in key (= number) order. */
static int shape_load_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    shload_t *c = ctx;
    vg_state_t *st = c->st;
    const unsigned char *kb = k;
    if (kl != 8 || (uint32_t)(kb[6] << 8 | kb[7]) != st->nshapes) {
        c->bad = 1;
        return 1;
    }
    vg_le_rd_t r = {v, vl, 0, 0};
    uint32_t n = (uint32_t)vg_le_get(&r, 4);
    if (r.bad || n > vl / 4) {
        c->bad = 1;
        return 1;
    }
    char **keys = calloc((size_t)n + 1, sizeof *keys);
    size_t *klen = calloc((size_t)n + 1, sizeof *klen);
    int rc = 0;
    if (!keys || !klen) rc = VG_ENOMEM;
    for (uint32_t i = 0; !rc && i < n; i++) {
        klen[i] = (size_t)vg_le_get(&r, 4);
        keys[i] = (char *)vg_le_bytes(&r, klen[i]);
        if (r.bad) break;
    }
    uint32_t midlen = (uint32_t)vg_le_get(&r, 4), talen = (uint32_t)vg_le_get(&r, 4);
    uint32_t restlen = (uint32_t)vg_le_get(&r, 4);
    const char *rest = vg_le_bytes(&r, restlen);
    if (!rc && (r.bad || r.i != r.n || midlen > restlen || talen > restlen - midlen))
        c->bad = 1;
    else if (!rc)
        rc = shape_add(st, n, keys, klen, rest, midlen, rest + midlen, talen,
                       rest + midlen + talen, restlen - midlen - talen, 1);
    free(keys);
    free(klen);
    if (rc < 0) c->oom = 1;
    return c->bad || c->oom;
}

/* 1 when tail is the shape's standard tail with `num` in it. */
static int std_tail(const shape_t *s, const char *tail, size_t taillen, int64_t num) {
    const char *ta = s->rest + s->midlen, *tb = ta + s->talen;
    size_t tblen = s->restlen - s->midlen - s->talen;
    char d[24];
    size_t dn = vg_fmt_i64(num, d);
    return taillen == s->talen + dn + tblen && memcmp(tail, ta, s->talen) == 0 &&
           memcmp(tail + s->talen, d, dn) == 0 && memcmp(tail + s->talen + dn, tb, tblen) == 0;
}

int vg_state_remember_values(vg_state_t *st, vg_acct_t *a, const char *id, size_t idlen,
                             int64_t ts, int shape, const char *mid, size_t midlen,
                             const vg_value_t *vals, const char *tail, size_t taillen,
                             int64_t num) {
    if (idlen > UINT32_MAX || shape < 0 || (uint32_t)shape >= st->nshapes ||
        midlen + taillen >= DL_VALUES)
        return VG_EINVAL;
    const shape_t *s = &st->shapes[shape];
    int rc = mark_dirty(st, &a->e);
    if (rc) return rc;
    if (ts > a->newest) a->newest = ts;
    dd_expire(&a->dd, sat_sub(a->newest, st->horizon));
    vg_buf_t *b = &st->pbuf;
    vg_buf_clear(b);
    if (vg_buf_reserve(b, 16) < 0) return VG_ENOMEM;
    b->p[0] = (char)(shape & 0xff);
    b->p[1] = (char)(shape >> 8);
    if (midlen == s->midlen && memcmp(mid, s->rest, midlen) == 0 &&
        std_tail(s, tail, taillen, num)) {
        b->p[2] = 0;
        b->len = 3;
        for (uint64_t u = (uint64_t)num;; u >>= 7) {   /* the number: LEB128, <= 10 bytes */
            if (u < 0x80) {
                b->p[b->len++] = (char)u;
                break;
            }
            b->p[b->len++] = (char)(0x80 | (u & 0x7f));
        }
    } else {   /* the text around the features (fired rules, anomaly): packed when shorter */
        vg_buf_t *r = &st->rbuf;
        vg_buf_clear(r);
        if (vg_buf_append(r, mid, midlen) < 0 || vg_buf_append(r, tail, taillen) < 0)
            return VG_ENOMEM;
        if (!st->dp.tpl && r->len >= 64 && vg_dpack_set_template(&st->dp, r->p, r->len))
            return VG_ENOMEM;
        b->p[2] = 1;
        b->len = 11;
        if (st->dp.tpl) {
            if (vg_dpack_pack(&st->dp, r->p, r->len, b) < 0) return VG_ENOMEM;
            if (b->len - 11 < r->len) b->p[2] = 2;
            else b->len = 11;
        }
        if (b->p[2] == 1 && vg_buf_append(b, r->p, r->len) < 0) return VG_ENOMEM;
        vg_le_store32((unsigned char *)b->p + 3, (uint32_t)midlen);
        vg_le_store32((unsigned char *)b->p + 7, (uint32_t)(b->len - 11));
    }
    if (vals_put(b, vals, s->nf)) return VG_ENOMEM;
    if (b->len >= DL_VALUES) return VG_ENOMEM;
    rc = dd_append(&a->dd, ts, id, (uint32_t)idlen, b->p,
                   (uint32_t)b->len | DL_VALUES | DL_HEADLESS, (uint32_t)hash_bytes(id, idlen));
    acct_remem(st, a);
    return rc;
}

/* Writes the decision stored as values (p, n bytes) after its head in st->ubuf. 0,
 * VG_EINVAL when malformed, or VG_ENOMEM. */
static int values_decision(vg_state_t *st, const char *p, size_t n) {
    vg_le_rd_t r = {(const unsigned char *)p, n, 0, 0};
    uint32_t j = (uint32_t)vg_le_get(&r, 2);
    unsigned kind = (unsigned)vg_le_get(&r, 1);
    if (r.bad || j >= st->nshapes) return VG_EINVAL;
    const shape_t *s = &st->shapes[j];
    const char *rest = s->rest;
    size_t midlen = s->midlen, restlen = s->restlen;
    char num[24];
    size_t numlen = 0;
    if (kind == 0) {   /* the tail's number */
        uint64_t u = 0;
        for (int sh = 0;; sh += 7) {
            unsigned c = (unsigned)vg_le_get(&r, 1);
            if (r.bad || sh > 63) return VG_EINVAL;
            u |= (uint64_t)(c & 0x7f) << sh;
            if (!(c & 0x80)) break;
        }
        numlen = vg_fmt_i64((int64_t)u, num);
    }
    if (kind == 1 || kind == 2) {
        midlen = (size_t)vg_le_get(&r, 4);
        size_t bl = (size_t)vg_le_get(&r, 4);
        rest = vg_le_bytes(&r, bl);
        if (r.bad) return VG_EINVAL;
        restlen = bl;
        if (kind == 2) {
            if (!st->dp.tpl) return VG_EINVAL;
            vg_buf_clear(&st->rbuf);
            int rc = vg_dpack_unpack(&st->dp, rest, bl, &st->rbuf);
            if (rc) return rc;
            rest = st->rbuf.p ? st->rbuf.p : "";
            restlen = st->rbuf.len;
        }
        if (midlen > restlen) return VG_EINVAL;
    } else if (kind != 0) {
        return VG_EINVAL;
    }
    vg_buf_t *o = &st->ubuf;
    int rc = vg_buf_append(o, rest, midlen);
    for (uint32_t i = 0; !rc && i < s->nf; i++) {
        vg_value_t v;
        if (val_get(&r, &v)) return VG_EINVAL;
        rc = vg_buf_append(o, s->keys + s->koff[i], s->koff[i + 1] - s->koff[i]);
        if (!rc) rc = vg_json_value(o, &v);
    }
    if (!rc && r.i != r.n) return VG_EINVAL;
    if (!rc && kind == 0) {   /* ta, the number, tb */
        rc = vg_buf_append(o, rest + midlen, s->talen);
        if (!rc) rc = vg_buf_append(o, num, numlen);
        if (!rc) rc = vg_buf_append(o, rest + midlen + s->talen, restlen - midlen - s->talen);
    } else if (!rc) {
        rc = vg_buf_append(o, rest + midlen, restlen - midlen);
    }
    return rc;
}

/* Points *dec at the decision of entry x of account a (written into st->ubuf when packed
 * or headless). */
static int entry_decision(vg_state_t *st, const vg_acct_t *a, const dd_rec_t *x,
                          const char **dec, size_t *dlen) {
    const char *p = (const char *)(x + 1) + x->idlen;
    if (!(x->dlen & (DL_PACKED | DL_HEADLESS))) {
        *dec = p;
        *dlen = x->dlen;
        return 0;
    }
    vg_buf_clear(&st->ubuf);
    int rc = 0;
    if (x->dlen & DL_HEADLESS)
        rc = vg_state_decision_head(&st->ubuf, (const char *)(x + 1), x->idlen, a->name,
                                    a->e.klen, x->ts);
    if (!rc && (x->dlen & DL_VALUES))
        rc = values_decision(st, p, DL_LEN(x->dlen));
    else if (!rc)
        rc = (x->dlen & DL_PACKED) ? vg_dpack_unpack(&st->dp, p, DL_LEN(x->dlen), &st->ubuf)
                                   : vg_buf_append(&st->ubuf, p, DL_LEN(x->dlen));
    if (rc) return rc;
    *dec = st->ubuf.p ? st->ubuf.p : "";
    *dlen = st->ubuf.len;
    return 0;
}

static int acct_encode(vg_state_t *st, const vg_acct_t *a, vg_buf_t *out) {
    const dedupe_t *d = &a->dd;
    int rc = vg_buf_putc(out, REC_VERSION_W);
    if (!rc) rc = put_u64(out, (uint64_t)a->newest);
    if (!rc) rc = put_u64(out, d->seq0);
    if (!rc) rc = put_u32(out, d->n);
    if (!rc) rc = put_u32(out, a->nsup);
    for (uint32_t i = 0; !rc && i < a->nsup; i++) {
        rc = put_u64(out, a->sup[i].rule);
        if (!rc) rc = put_u64(out, (uint64_t)a->sup[i].last);
    }
    if (!rc) rc = vg_buf_putc(out, a->x ? 1 : 0);
    if (!rc && a->x) {   /* u32 length, then the extension record */
        size_t at = out->len;
        rc = put_u32(out, 0);
        if (!rc) rc = vg_acctx_encode(a->x, out);
        if (!rc) {
            uint32_t xl = (uint32_t)(out->len - at - 4);
            for (int i = 0; i < 4; i++) out->p[at + (size_t)i] = (char)(xl >> (8 * i));
        }
    }
    if (!rc) rc = vg_buf_putc(out, a->w ? 1 : 0);
    if (!rc && a->w) rc = vg_wstate_encode_head(a->w, st->alay, out);   /* rows: "w/" */
    return rc;
}

/* Builds "w/" + u32be name length + name (+ u64be chunk when with_chunk) in st->kbuf. */
static int acct_sub_key(vg_state_t *st, const vg_acct_t *a, char kind, int with_n, uint64_t n);
static int rows_key(vg_state_t *st, const vg_acct_t *a, int with_chunk, int64_t chunk) {
    return acct_sub_key(st, a, 'w', with_chunk, (uint64_t)chunk);
}

/* Adds to b the account's window row records that changed (rewritten from the dirty
 * position on; the lowest live one also when its first rows expired, so that a record
 * always holds its rows from `first` on: the store's content does not depend on when
 * checkpoints ran) and the deletes of those entirely expired. Takes the window's dirty
 * mark (enc_from/enc_dirty keep it for rows_unwritten). Returns 0 or VG_ENOMEM. */
static int rows_put(vg_state_t *st, vg_acct_t *a, vg_batch_t *b) {
    int64_t first = a->w ? vg_wstate_first(a->w) : 0, end = a->w ? vg_wstate_end(a->w) : 0;
    int64_t lo = a->w ? first / WCHUNK : a->wchi;   /* no window: every record goes */
    int64_t dend = lo < a->wchi ? lo : a->wchi;
    for (int64_t c = a->wclo; c < dend; c++) {
        if (rows_key(st, a, 1, c)) return VG_ENOMEM;
        vg_batch_delete(b, st->kbuf.p, st->kbuf.len);
    }
    int64_t from = 0;
    int dirty = a->w && vg_wstate_dirty(a->w, &from);
    /* the lowest record holds rows from `first`: rewrite it when `first` moved */
    if (a->w && end > first && first % WCHUNK != 0) {
        if (!dirty || first < from) from = first;
        dirty = 1;
    }
    if (dirty && end > first) {
        if (from < first) from = first;
        for (int64_t c = from / WCHUNK; c * WCHUNK < end; c++) {
            vg_buf_clear(&st->vbuf);
            int rc = vg_wstate_encode_rows(a->w, st->alay, c * WCHUNK, (c + 1) * WCHUNK, &st->vbuf);
            if (!rc) rc = rows_key(st, a, 1, c);
            if (rc) return rc;
            vg_batch_put(b, st->kbuf.p, st->kbuf.len, st->vbuf.p, st->vbuf.len);
        }
        int64_t top = (end - 1) / WCHUNK + 1;
        if (top > a->wchi) a->wchi = top;
    }
    if (a->w) {
        int64_t f = 0;
        a->enc_dirty = vg_wstate_dirty(a->w, &f);
        a->enc_from = f;
        vg_wstate_set_clean(a->w);
    }
    a->pwclo = lo;   /* wclo once b is written (rows_written) */
    return 0;
}

/* The batch with the account's rows_put was written. */
static void rows_written(vg_acct_t *a) {
    if (a->pwclo > a->wclo) a->wclo = a->pwclo;
    a->enc_dirty = 0;
}

/* ... or will not be: the rows it held are dirty again. */
static void rows_unwritten(vg_acct_t *a) {
    if (a->enc_dirty && a->w) vg_wstate_set_dirty(a->w, a->enc_from);
    a->enc_dirty = 0;
}

/* Builds KIND "/" + u32be name length + name (+ u64be n when with_n) in st->kbuf: the
 * keys of an account's dedupe ('d') and window row ('w') records. */
static int acct_sub_key(vg_state_t *st, const vg_acct_t *a, char kind, int with_n, uint64_t n) {
    vg_buf_clear(&st->kbuf);
    uint32_t l = a->e.klen;
    unsigned char hd[6] = {(unsigned char)kind, '/', (unsigned char)(l >> 24),
                           (unsigned char)(l >> 16), (unsigned char)(l >> 8), (unsigned char)l};
    int rc = vg_buf_append(&st->kbuf, hd, sizeof hd);
    if (!rc) rc = vg_buf_append(&st->kbuf, a->name, a->e.klen);
    if (!rc && with_n) {
        unsigned char x[8];
        for (int i = 0; i < 8; i++) x[i] = (unsigned char)(n >> (56 - 8 * i));
        rc = vg_buf_append(&st->kbuf, x, 8);
    }
    return rc;
}

/* "d/" + u32be name length + name (+ u64be seq when with_seq) in st->kbuf. */
static int dlog_key(vg_state_t *st, const vg_acct_t *a, int with_seq, uint64_t seq) {
    return acct_sub_key(st, a, 'd', with_seq, seq);
}

/* The value of a "d/" record holding several remembered events starts with this (an
 * event time no record of one event can have), then u32 count, then each event as the
 * record of one event is: i64 ts, u32 idlen, u32 dlen, id, decision. */
#define DREC_GROUP INT64_MIN

/* Room for one more record start in d->rs. 0 or VG_ENOMEM. */
static int rs_reserve(dedupe_t *d) {
    if (d->nrs < d->rscap) return 0;
    uint32_t nc = d->rscap ? 2 * d->rscap : 4;
    uint64_t *nr = realloc(d->rs, nc * sizeof *nr);
    if (!nr) return VG_ENOMEM;
    d->rs = nr;
    d->rscap = nc;
    return 0;
}

/* Adds to b the account's dedupe records not yet written, as one store record, and the
 * deletes of the store records all of whose events left the log. With `slice` (b is
 * written later, unlocked), the value that the account's wseq takes once b is written
 * is left in pwseq; without, the caller calls log_now_written after writing b, the
 * account unchanged. Either way log_*written drops the deleted ones from rs. Returns 0
 * or VG_ENOMEM. */
static int log_put(vg_state_t *st, vg_acct_t *a, vg_batch_t *b, int slice) {
    dedupe_t *d = &a->dd;
    uint64_t end = d->seq0 + d->n;
    uint32_t k = 0;
    while (k < d->nrs && (k + 1 < d->nrs ? d->rs[k + 1] : d->hseq) <= d->seq0) {
        if (dlog_key(st, a, 1, d->rs[k])) return VG_ENOMEM;
        vg_batch_delete(b, st->kbuf.p, st->kbuf.len);
        k++;
    }
    uint64_t from = d->wseq > d->seq0 ? d->wseq : d->seq0, q = d->seq0;
    if (from < end) {
        if (d->nrs == 0 || d->rs[d->nrs - 1] != from) {
            if (rs_reserve(d)) return VG_ENOMEM;
            acct_remem(st, a);
        }
        vg_buf_clear(&st->vbuf);
        int rc = put_u64(&st->vbuf, (uint64_t)DREC_GROUP);
        if (!rc) rc = put_u32(&st->vbuf, (uint32_t)(end - from));
        uint32_t off = d->bhead;
        if (dd_cache_ok(d) && d->cseq <= from) {
            off = d->coff;
            q = d->cseq;
        }
        for (; !rc && off < d->blen; off = dd_next(d, off), q++) {
            if (q < from) continue;
            const dd_rec_t *x = dd_rec(d, off);
            rc = put_u64(&st->vbuf, (uint64_t)x->ts);
            if (!rc) rc = put_u32(&st->vbuf, x->idlen);
            if (!rc) rc = put_u32(&st->vbuf, x->dlen);   /* packed ones stay packed */
            if (!rc) rc = vg_buf_append(&st->vbuf, x + 1, (size_t)x->idlen + DL_LEN(x->dlen));
        }
        if (!rc) rc = dlog_key(st, a, 1, from);
        if (rc) return rc;
        vg_batch_put(b, st->kbuf.p, st->kbuf.len, st->vbuf.p, st->vbuf.len);
        /* a record given up and put again starts at the same number (its key) */
        if (d->nrs == 0 || d->rs[d->nrs - 1] != from) d->rs[d->nrs++] = from;
    }
    d->cseq = end;   /* the next record goes at blen */
    d->coff = d->blen;
    if (end > d->hseq) d->hseq = end;
    if (slice) d->pwseq = end;
    d->prsdel = k;
    return 0;
}

/* The batch holding the account's last log_put was written: its deletes are done. */
static void log_dels_done(dedupe_t *d) {
    uint32_t k = d->prsdel < d->nrs ? d->prsdel : d->nrs;
    if (k) memmove(d->rs, d->rs + k, (size_t)(d->nrs - k) * sizeof *d->rs);
    d->nrs -= k;
    d->prsdel = 0;
}

/* The slice holding the account's log_put was written. */
static void log_written(vg_acct_t *a) {
    if (a->dd.pwseq > a->dd.wseq) a->dd.wseq = a->dd.pwseq;
    log_dels_done(&a->dd);
}

/* The batch holding the account's log_put (no slice) was written, the account unchanged
 * since. */
static void log_now_written(vg_acct_t *a) {
    a->dd.wseq = a->dd.seq0 + a->dd.n;
    log_dels_done(&a->dd);
}

typedef struct dload {
    vg_state_t *st;
    dedupe_t *d;
    uint64_t next, end;
    int bad;
} dload_t;

/* Appends one remembered event (number q) read from the store to the log when it is
 * live. 0, 1 (corrupt) or -1 (out of memory). */
static int dload_one(dload_t *c, uint64_t q, vg_le_rd_t *r) {
    int64_t ts = (int64_t)vg_le_get(r, 8);
    uint32_t il = (uint32_t)vg_le_get(r, 4), dl = (uint32_t)vg_le_get(r, 4);
    const char *id = vg_le_bytes(r, (size_t)il + DL_LEN(dl));
    if (r->bad || ((dl & DL_PACKED) && !c->st->dp.tpl)) return 1;
    if (q < c->next) return 0;   /* left the log (its record holds later ones) */
    if (q != c->next || q >= c->end) return 1;
    int rc = (dl & (DL_PACKED | DL_VALUES))
                 ? dd_append(c->d, ts, id, il, id + il, dl, (uint32_t)hash_bytes(id, il))
                              : log_entry(c->st, c->d, ts, id, il, id + il, DL_LEN(dl),
                                          dl & DL_HEADLESS);
    if (rc) return -1;
    c->next++;
    return 0;
}

/* One stored dedupe record, in number order: one event, or several (DREC_GROUP); its
 * live events appended to the log, its first number to rs. */
static int dload_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    dload_t *c = ctx;
    dedupe_t *d = c->d;
    const unsigned char *kp = k;
    uint64_t q = 0;
    for (int i = 0; i < 8; i++) q = q << 8 | kp[kl - 8 + (size_t)i];
    if (d->nrs && q <= d->rs[d->nrs - 1]) {
        c->bad = 1;
        return 1;
    }
    if (rs_reserve(d)) return -1;
    d->rs[d->nrs++] = q;
    vg_le_rd_t r = {v, vl, 0, 0};
    uint64_t cnt = 1;
    if (vl >= 12 && (int64_t)vg_le_get(&r, 8) == DREC_GROUP) {
        cnt = vg_le_get(&r, 4);
        if (cnt == 0 || q > UINT64_MAX - cnt) {
            c->bad = 1;
            return 1;
        }
    } else {
        r.i = 0;
    }
    for (uint64_t i = 0; i < cnt; i++) {
        int rc = dload_one(c, q + i, &r);
        if (rc) {
            if (rc > 0) c->bad = 1;
            return rc;
        }
    }
    if (r.i != r.n) {
        c->bad = 1;
        return 1;
    }
    return 0;
}

/* The rest of an account record of version 4 (after its version byte), its dedupe log
 * read from its "d/" records. */
typedef struct rload {
    vg_buf_t *bytes;        /* the records' values, one after another */
    size_t *off;            /* where each starts */
    size_t n, cap;
    int64_t lo, hi;         /* lowest chunk seen, highest + 1 */
} rload_t;

static int rload_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    rload_t *c = ctx;
    const unsigned char *kp = k;
    int64_t chunk = 0;
    for (int i = 0; i < 8; i++) chunk = (int64_t)((uint64_t)chunk << 8 | kp[kl - 8 + (size_t)i]);
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        size_t *no = realloc(c->off, nc * sizeof *no);
        if (!no) return -1;
        c->off = no;
        c->cap = nc;
    }
    c->off[c->n++] = c->bytes->len;
    if (vg_buf_append(c->bytes, v, vl)) return -1;
    if (c->n == 1) c->lo = chunk;
    c->hi = chunk + 1;
    return 0;
}

/* The window of a version 5 record: its head (h, hn) and its "w/" records. */
static int rows_load(vg_state_t *st, vg_acct_t *a, const void *h, size_t hn) {
    if (rows_key(st, a, 0, 0)) return VG_ENOMEM;
    vg_buf_t bytes;
    vg_buf_init(&bytes);
    rload_t c = {&bytes, NULL, 0, 0, 0, 0};
    /* the head is in st->vbuf, which the scan does not touch */
    int rc = vg_store_scan(st->store, st->kbuf.p, st->kbuf.len, rload_cb, &c);
    vg_wpart_t *parts = rc == 0 && c.n ? malloc(c.n * sizeof *parts) : NULL;
    if (rc == 0 && c.n && !parts) rc = -1;
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        parts[i].p = bytes.p + c.off[i];
        parts[i].n = (i + 1 < c.n ? c.off[i + 1] : bytes.len) - c.off[i];
    }
    if (rc == 0) {
        char err[128];
        a->w = vg_wstate_decode_parts(st->alay, h, hn, parts, c.n, err, sizeof err);
        if (!a->w) rc = VG_ESTORE;
        a->wclo = c.n ? c.lo : 0;
        a->wchi = c.n ? c.hi : 0;
    }
    free(parts);
    free(c.off);
    vg_buf_deinit(&bytes);
    return rc == -1 ? VG_ENOMEM : rc ? VG_ESTORE : 0;
}

static int acct_decode_d(vg_state_t *st, vg_acct_t *a, vg_le_rd_t *r, int rows_apart) {
    a->newest = (int64_t)vg_le_get(r, 8);
    uint64_t seq0 = vg_le_get(r, 8);
    uint32_t cnt = (uint32_t)vg_le_get(r, 4);
    uint32_t ns = (uint32_t)vg_le_get(r, 4);
    if (r->bad || (size_t)ns > (r->n - r->i) / 16 || seq0 > UINT64_MAX - cnt) return VG_ESTORE;
    if (ns && !(a->sup = malloc(sizeof(supp_t) * ns))) return VG_ENOMEM;
    a->supcap = a->nsup = ns;
    for (uint32_t i = 0; i < ns; i++) {
        a->sup[i].rule = vg_le_get(r, 8);
        a->sup[i].last = (int64_t)vg_le_get(r, 8);
    }
    if (vg_le_get(r, 1)) {
        uint32_t xl = (uint32_t)vg_le_get(r, 4);
        const void *xp = vg_le_bytes(r, xl);
        if (r->bad || !st->has_x) return VG_ESTORE;
        int corrupt = 0;
        a->x = vg_acctx_decode(&st->xlay, xp, xl, &corrupt);
        if (!a->x) return corrupt ? VG_ESTORE : VG_ENOMEM;
    }
    uint64_t has_w = vg_le_get(r, 1);
    if (r->bad) return VG_ESTORE;
    if (has_w && rows_apart) {
        int rc = rows_load(st, a, r->p + r->i, r->n - r->i);
        if (rc) return rc;
    } else if (has_w) {
        char err[128];
        a->w = vg_wstate_decode(st->alay, r->p + r->i, r->n - r->i, err, sizeof err);
        if (!a->w) return VG_ESTORE;
        /* its rows were never written apart: all of them go out with the next change */
        vg_wstate_set_dirty(a->w, vg_wstate_first(a->w));
    } else if (r->i != r->n) {
        return VG_ESTORE;
    }
    dedupe_t *d = &a->dd;
    d->seq0 = seq0;
    d->wseq = d->hseq = seq0 + cnt;
    if (cnt) {
        /* the caller's record (st->vbuf) is decoded: kbuf is free for the prefix */
        if (dlog_key(st, a, 0, 0)) return VG_ENOMEM;
        dload_t c = {st, d, seq0, seq0 + cnt, 0};
        int rc = vg_store_scan(st->store, st->kbuf.p, st->kbuf.len, dload_cb, &c);
        if (rc == -1) return VG_ENOMEM;
        if (rc && !c.bad) return VG_ESTORE;
        if (c.bad || c.next != c.end) return VG_ESTORE;
        d->seq0 = seq0;   /* dd_append leaves seq0 as it is */
    }
    return 0;
}

/* Decodes an account record into a new account. Returns 0, VG_ENOMEM or VG_ESTORE
 * (corrupt record). */
static int acct_decode(vg_state_t *st, vg_acct_t *a, const void *p, size_t n) {
    vg_le_rd_t r = {p, n, 0, 0};
    uint64_t ver = vg_le_get(&r, 1);
    if (ver == REC_VERSION_D || ver == REC_VERSION_W)
        return acct_decode_d(st, a, &r, ver == REC_VERSION_W);
    if (ver != REC_VERSION && ver != REC_VERSION_SUPP && ver != REC_VERSION_X) return VG_ESTORE;
    a->newest = (int64_t)vg_le_get(&r, 8);
    uint32_t cnt = (uint32_t)vg_le_get(&r, 4);
    if (r.bad || cnt > n) return VG_ESTORE;
    dedupe_t *d = &a->dd;
    if (cnt) {
        /* check the bounds first; then the buffer is allocated once, for the records
         * as they are stored (unpacked ones can only shrink when packed) */
        size_t save = r.i, total = 0;
        for (uint32_t i = 0; i < cnt && !r.bad; i++) {
            vg_le_get(&r, 8);
            size_t il = vg_le_get(&r, 4), dl = vg_le_get(&r, 4);
            if ((dl & DL_PACKED) && !st->dp.tpl) return VG_ESTORE;
            dl = DL_LEN(dl);
            vg_le_bytes(&r, il + dl);
            total += (sizeof(dd_rec_t) + il + dl + 7) & ~(size_t)7;
        }
        if (r.bad || total > UINT32_MAX / 2) return VG_ESTORE;
        r.i = save;
        total = (total + 15) & ~(size_t)15;
        d->b = malloc(total);
        if (!d->b) return VG_ENOMEM;
        d->bcap = (uint32_t)total;
        for (uint32_t i = 0; i < cnt; i++) {
            int64_t ts = (int64_t)vg_le_get(&r, 8);
            uint32_t il = (uint32_t)vg_le_get(&r, 4), dl = (uint32_t)vg_le_get(&r, 4);
            const char *id = vg_le_bytes(&r, (size_t)il + DL_LEN(dl));
            int rc = (dl & (DL_PACKED | DL_VALUES))
                         ? dd_append(d, ts, id, il, id + il, dl, (uint32_t)hash_bytes(id, il))
                         : log_entry(st, d, ts, id, il, id + il, DL_LEN(dl), dl & DL_HEADLESS);
            if (rc) return rc;
        }
    }
    if (ver == REC_VERSION_SUPP || ver == REC_VERSION_X) {
        uint32_t ns = (uint32_t)vg_le_get(&r, 4);
        if (r.bad || (ns == 0 && ver == REC_VERSION_SUPP) || (size_t)ns > (r.n - r.i) / 16)
            return VG_ESTORE;
        if (ns && !(a->sup = malloc(sizeof(supp_t) * ns))) return VG_ENOMEM;
        a->supcap = a->nsup = ns;
        for (uint32_t i = 0; i < ns; i++) {
            a->sup[i].rule = vg_le_get(&r, 8);
            a->sup[i].last = (int64_t)vg_le_get(&r, 8);
        }
    }
    if (ver == REC_VERSION_X) {
        uint32_t xl = (uint32_t)vg_le_get(&r, 4);
        const void *xp = vg_le_bytes(&r, xl);
        if (r.bad || !st->has_x) return VG_ESTORE;
        int corrupt = 0;
        a->x = vg_acctx_decode(&st->xlay, xp, xl, &corrupt);
        if (!a->x) return corrupt ? VG_ESTORE : VG_ENOMEM;
    }
    uint64_t has_w = vg_le_get(&r, 1);
    if (r.bad) return VG_ESTORE;
    if (has_w) {
        char err[128];
        a->w = vg_wstate_decode(st->alay, r.p + r.i, r.n - r.i, err, sizeof err);
        if (!a->w) return VG_ESTORE;
        vg_wstate_set_dirty(a->w, vg_wstate_first(a->w));   /* rows not apart yet */
    } else if (r.i != r.n) {
        return VG_ESTORE;
    }
    return 0;
}

/* Builds "a/" + name in st->kbuf. */
static int acct_store_key(vg_state_t *st, const char *name, size_t len) {
    vg_buf_clear(&st->kbuf);
    int rc = vg_buf_append(&st->kbuf, "a/", 2);
    if (!rc) rc = vg_buf_append(&st->kbuf, name, len);
    return rc;
}

/* A key's bytes after "k/": u16be group, type, then the value: 1 byte (bool), 8 bytes
 * big-endian (a number's bits, -0 as 0; a time's or duration's ms) or the string's or
 * raw JSON's bytes. key_len: their count; key_put writes them to b. */
static size_t key_len(const vg_value_t *v) {
    switch (v->type) {
    case VG_T_BOOL: return 4;
    case VG_T_NUM:
    case VG_T_TIME:
    case VG_T_DUR: return 11;
    default: return 3 + (size_t)v->u.s.len;
    }
}

static void key_put(int g, const vg_value_t *v, unsigned char *b) {
    b[0] = (unsigned char)(g >> 8);
    b[1] = (unsigned char)g;
    b[2] = v->type;
    uint64_t u = 0;
    switch (v->type) {
    case VG_T_BOOL:
        b[3] = v->u.b ? 1 : 0;
        return;
    case VG_T_NUM: {
        double d = v->u.n == 0 ? 0.0 : v->u.n;   /* -0 and 0 are one key */
        memcpy(&u, &d, 8);
        break;
    }
    case VG_T_TIME:
    case VG_T_DUR:
        u = (uint64_t)v->u.ms;
        break;
    default:   /* strings, raw JSON */
        if (v->u.s.len) memcpy(b + 3, v->u.s.p, v->u.s.len);
        return;
    }
    for (int i = 0; i < 8; i++) b[3 + i] = (unsigned char)(u >> (56 - 8 * i));
}

/* Builds "k/" + the key's bytes (key_put) in st->kbuf. Returns 0, VG_ENOMEM. */
static int key_store_key(vg_state_t *st, int g, const vg_value_t *v) {
    vg_buf_t *b = &st->kbuf;
    vg_buf_clear(b);
    size_t n = key_len(v);
    if (vg_buf_reserve(b, 2 + n) < 0) return VG_ENOMEM;
    b->p[0] = 'k';
    b->p[1] = '/';
    key_put(g, v, (unsigned char *)b->p + 2);
    b->len = 2 + n;
    return 0;
}

/* ---- the state -------------------------------------------------------------------- */

static int any_record_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)ctx;
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    return 1;
}

static void seterr(char *errbuf, size_t errlen, const char *msg, const char *arg) {
    if (!errbuf || !errlen) return;
    size_t i = 0;
    for (const char *s = msg; *s && i + 1 < errlen; s++) {
        if (*s == '%' && arg) {
            for (const char *q = arg; *q && i + 1 < errlen; q++) errbuf[i++] = *q;
            continue;
        }
        errbuf[i++] = *s;
    }
    errbuf[i] = 0;
}

/* The window layouts of a program and the "m/layout" record they make. */
typedef struct lays {
    vg_wlayout_t *alay;
    int a_nspecs;
    int ngroups;
    group_t *groups;
    vg_buf_t layout;
} lays_t;

static void lays_free(lays_t *ls) {
    if (ls->groups) {
        for (int g = 0; g < ls->ngroups; g++) {
            vg_wlayout_free(ls->groups[g].lay);
            free(ls->groups[g].specs);
        }
        free(ls->groups);
    }
    vg_wlayout_free(ls->alay);
    vg_buf_deinit(&ls->layout);
    memset(ls, 0, sizeof *ls);
}

/* Builds the layouts of program p for st's lateness and horizon, and extension layout
 * xl (NULL: none). Returns 0, or an error with a reason in errbuf (*ls then empty). */
static int make_layouts(const vg_state_t *st, vg_program_t *p, const vg_acctx_layout_t *xl,
                        lays_t *ls, char *errbuf, size_t errlen) {
    memset(ls, 0, sizeof *ls);
    vg_buf_init(&ls->layout);
    ls->alay = vg_wlayout_new(p, -1, st->lateness);
    if (!ls->alay) goto nomem;
    ls->a_nspecs = vg_wlayout_nspecs(ls->alay);
    ls->ngroups = vg_prog_nbygroups(p);
    if (ls->ngroups > 0xffff) {
        seterr(errbuf, errlen, "too many `by` key expressions", NULL);
        lays_free(ls);
        return VG_EINVAL;
    }
    ls->groups = calloc((size_t)ls->ngroups + 1, sizeof *ls->groups);
    if (!ls->groups) goto nomem;
    int nspecs = vg_prog_nspecs(p);
    for (int g = 0; g < ls->ngroups; g++) {
        group_t *gr = &ls->groups[g];
        gr->lay = vg_wlayout_new(p, g, st->lateness);
        gr->specs = malloc(((size_t)nspecs + 1) * sizeof *gr->specs);
        if (!gr->lay || !gr->specs) goto nomem;
        for (int i = 0; i < nspecs; i++)
            if (vg_prog_spec(p, i)->by_group == g) gr->specs[gr->nspecs++] = i;
    }
    vg_buf_t *L = &ls->layout;
    int rc = vg_buf_append(L, "vglay1", 6);
    if (!rc) rc = put_u32(L, (uint32_t)ls->ngroups);
    if (!rc) rc = put_u64(L, vg_wlayout_fingerprint(ls->alay));
    for (int g = 0; !rc && g < ls->ngroups; g++)
        rc = put_u64(L, vg_wlayout_fingerprint(ls->groups[g].lay));
    if (!rc) rc = put_u64(L, (uint64_t)st->lateness);
    if (!rc) rc = put_u64(L, (uint64_t)st->horizon);
    /* an extension of neither anomaly state nor label aggregates (only the labels
     * posted under rules that read none, acctx.h) is no part of the layout: a state
     * made before it existed opens as it is */
    const int xfp = xl && (xl->anomaly || xl->memo);
    if (!rc && xfp) rc = vg_buf_append(L, "acctx", 5);
    if (!rc && xfp) rc = put_u64(L, vg_acctx_fingerprint(xl));
    if (rc) goto nomem;
    return 0;
nomem:
    seterr(errbuf, errlen, "out of memory", NULL);
    lays_free(ls);
    return VG_ENOMEM;
}

void vg_fmt_duration(int64_t ms, char *buf, size_t n) {
    static const struct {
        int64_t ms;
        const char *u;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms && ms % units[i].ms == 0 && (i > 0 || ms >= 2 * 86400000)) {
            snprintf(buf, n, "%lld%s", (long long)(ms / units[i].ms), units[i].u);
            return;
        }
    snprintf(buf, n, "%lldms", (long long)ms);
}

/* 1, with the reason in errbuf, when the stored layout record `rec` ("m/layout") was
 * made with another lateness or dedupe horizon than st's; 0 when it was not, or when it
 * can't be read (then only the layouts differ). */
static int options_differ(const vg_state_t *st, const vg_buf_t *rec, char *errbuf,
                          size_t errlen) {
    vg_le_rd_t r = {(const unsigned char *)rec->p, rec->len, 0, 0};
    const char *magic = vg_le_bytes(&r, 6);
    if (!magic || memcmp(magic, "vglay1", 6) != 0) return 0;
    uint64_t ng = vg_le_get(&r, 4);
    if (r.bad || ng > 0xffff) return 0;
    (void)vg_le_bytes(&r, (size_t)(ng + 1) * 8);
    int64_t late = (int64_t)vg_le_get(&r, 8), hor = (int64_t)vg_le_get(&r, 8);
    if (r.bad || late < 0 || hor < 0) return 0;
    if (late == st->lateness && hor == st->horizon) return 0;
    char was[96] = "", now[96] = "", d1[32], d2[32], d3[32], d4[32];
    vg_fmt_duration(late, d1, sizeof d1);
    vg_fmt_duration(hor, d2, sizeof d2);
    vg_fmt_duration(st->lateness, d3, sizeof d3);
    vg_fmt_duration(st->horizon, d4, sizeof d4);
    if (late != st->lateness && hor != st->horizon) {
        snprintf(was, sizeof was, "--lateness %s --dedupe-horizon %s", d1, d2);
        snprintf(now, sizeof now, "--lateness %s --dedupe-horizon %s", d3, d4);
    } else if (late != st->lateness) {
        snprintf(was, sizeof was, "--lateness %s", d1);
        snprintf(now, sizeof now, "--lateness %s", d3);
    } else {
        snprintf(was, sizeof was, "--dedupe-horizon %s", d2);
        snprintf(now, sizeof now, "--dedupe-horizon %s", d4);
    }
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "state in %s was made with %s, and this run has %s; run it "
                 "with the options it was made with, or use a new --state directory",
                 vg_store_path(st->store), was, now);
    return 1;
}

static void set_apf_lines(vg_state_t *st) {
    size_t b = al8(sizeof(vg_acct_t) + 16) + (st->a_nspecs > 0 ? vg_wstate_size(st->alay) : 0);
    st->apf_lines = b / 64 + 1 > 16 ? 16 : (int)(b / 64 + 1);
}

vg_state_t *vg_state_new(vg_program_t *p, const vg_state_opts_t *o, char *errbuf,
                         size_t errlen) {
    vg_state_t *st = calloc(1, sizeof *st);
    if (!st) goto nomem;
    st->p = vg_prog_ref(p);
    st->lateness = o && o->lateness_ms >= 0 ? o->lateness_ms : DEFAULT_LATENESS_MS;
    st->horizon = o && o->dedupe_horizon_ms >= 0 ? o->dedupe_horizon_ms : DEFAULT_HORIZON_MS;
    /* ids are kept at least as long as an event may come late: one forgotten sooner
     * could come again within the lateness and be counted twice */
    if (st->horizon < st->lateness) st->horizon = st->lateness;
    st->budget = o ? o->mem_budget : 0;
    st->store = o ? o->store : NULL;
    if (o && o->acctx) {
        st->has_x = 1;
        st->xlay = *o->acctx;
    }
    st->lru.next = st->lru.prev = &st->lru;
    vg_buf_init(&st->kbuf);
    vg_buf_init(&st->vbuf);
    vg_buf_init(&st->layout);
    vg_buf_init(&st->pbuf);
    vg_buf_init(&st->ubuf);
    vg_buf_init(&st->rbuf);
    vg_buf_init(&st->dels);
    vg_dpack_init(&st->dp);
    if (ht_init(&st->accts, 1024) || ht_init(&st->keys, 1024)) goto nomem;

    lays_t ls;
    if (make_layouts(st, p, st->has_x ? &st->xlay : NULL, &ls, errbuf, errlen)) goto err;
    st->alay = ls.alay;
    st->a_nspecs = ls.a_nspecs;
    st->ngroups = ls.ngroups;
    st->groups = ls.groups;
    set_apf_lines(st);
    vg_buf_deinit(&st->layout);
    st->layout = ls.layout;
    vg_buf_t *L = &st->layout;
    int rc;

    if (st->store) {
        st->batch = vg_batch_new();
        if (!st->batch) goto nomem;
        rc = vg_store_get(st->store, "m/layout", 8, &st->vbuf);
        if (rc == 0) {
            if (st->vbuf.len != L->len || memcmp(st->vbuf.p, L->p, L->len) != 0) {
                /* other options: refused even where other rules are carried over or
                 * start empty (a restart with another --lateness or --dedupe-horizon
                 * must not lose the state) */
                if (options_differ(st, &st->vbuf, errbuf, errlen)) goto err;
                if (!o || !o->reset_mismatch) {
                    seterr(errbuf, errlen, "state in % was made by other rules or options "
                           "(the rules and --anomaly must be those it was made with; states "
                           "made before 2026-12-08 had --anomaly auto)",
                           vg_store_path(st->store));
                    goto err;
                }
                if (vg_state_wipe(st->store, errbuf, errlen)) goto err;
                if (o->was_reset) *o->was_reset = 1;
                return st;   /* empty: nothing stored */
            }
            st->acct_maybe_stored = st->key_maybe_stored = 1;
            rc = vg_store_get(st->store, "m/dtpl", 6, &st->vbuf);
            if (rc == 0) {
                if (vg_dpack_set_template(&st->dp, st->vbuf.p, st->vbuf.len)) goto nomem;
                st->dtpl_saved = 1;
            } else if (rc != VG_ENOTFOUND) {
                goto storeerr;
            }
            shload_t c = {st, 0, 0};
            int rs = vg_store_scan(st->store, "m/shp/", 6, shape_load_cb, &c);
            if (c.oom) goto nomem;
            if (c.bad || rs < 0) goto storeerr;
        } else if (rc == VG_ENOTFOUND) {
            int ra = vg_store_scan(st->store, "a/", 2, any_record_cb, NULL);
            int rk = vg_store_scan(st->store, "k/", 2, any_record_cb, NULL);
            if (ra < 0 || rk < 0) goto storeerr;
            st->acct_maybe_stored = ra != 0;
            st->key_maybe_stored = rk != 0;
        } else {
            goto storeerr;
        }
    }
    return st;

storeerr:
    seterr(errbuf, errlen, "cannot read the state in %", vg_store_path(st->store));
    goto err;
nomem:
    seterr(errbuf, errlen, "out of memory", NULL);
err:
    vg_state_free(st);
    return NULL;
}

void vg_state_free(vg_state_t *st) {
    if (!st) return;
    htab_t *tabs[2] = {&st->accts, &st->keys};
    for (int t = 0; t < 2; t++) {
        if (!tabs[t]->slot) continue;
        for (size_t i = 0; i < tabs[t]->cap; i++)
            if (tabs[t]->slot[i].e) ent_free(tabs[t]->slot[i].e);
        free(tabs[t]->slot);
    }
    if (st->groups) {
        for (int g = 0; g < st->ngroups; g++) {
            vg_wlayout_free(st->groups[g].lay);
            free(st->groups[g].specs);
        }
        free(st->groups);
    }
    vg_wlayout_free(st->alay);
    free(st->dirty);
    vg_buf_deinit(&st->kbuf);
    vg_buf_deinit(&st->vbuf);
    vg_buf_deinit(&st->layout);
    vg_buf_deinit(&st->pbuf);
    vg_buf_deinit(&st->ubuf);
    vg_buf_deinit(&st->rbuf);
    for (uint32_t j = 0; j < st->nshapes; j++) shape_free(&st->shapes[j]);
    free(st->shapes);
    vg_buf_deinit(&st->dels);
    vg_dpack_deinit(&st->dp);
    vg_batch_free(st->batch);
    free(st->pend);
    vg_prog_unref(st->p);
    free(st);
}

/* Inserts a new entry into table t (and the LRU with a store). */
static int add_entry(vg_state_t *st, htab_t *t, ent_t *e) {
    int rc = ht_insert(t, e);
    if (rc) return rc;
    e->tick = ++st->tick;
    if (st->store) lru_push_front(st, e);
    return 0;
}

/* Finds, loads or (create) makes the account's entry. */
static int acct_get(vg_state_t *st, const char *account, size_t len, int create,
                    vg_acct_t **out) {
    if (len > UINT32_MAX) return VG_EINVAL;
    uint64_t h = hash_bytes(account, len);
    ent_t *e = ht_find(&st->accts, h, account, (uint32_t)len);
    if (e) {
        touch(st, e);
        *out = (vg_acct_t *)e;
        return 0;
    }
    int rc = VG_ENOTFOUND;
    if (st->store && st->acct_maybe_stored) {
        rc = acct_store_key(st, account, len);
        if (!rc) rc = vg_store_get(st->store, st->kbuf.p, st->kbuf.len, &st->vbuf);
        if (rc && rc != VG_ENOTFOUND) return rc == VG_ENOMEM ? rc : VG_ESTORE;
    }
    if (rc == VG_ENOTFOUND && !create) return VG_ENOTFOUND;
    /* a new account's window state shares its allocation (a loaded one is decoded
     * apart) */
    vg_acct_t *a = acct_alloc(account, len, h,
                              rc == VG_ENOTFOUND && st->a_nspecs > 0 ? vg_wstate_size(st->alay)
                                                                     : 0);
    if (!a) return VG_ENOMEM;
    if (rc == 0) {
        rc = acct_decode(st, a, st->vbuf.p, st->vbuf.len);
        if (rc == 0) st->loads++;
    } else {
        rc = 0;
    }
    if (!rc) rc = add_entry(st, &st->accts, &a->e);
    if (rc) {
        acct_free(a);
        return rc == VG_ENOMEM ? rc : VG_ESTORE;
    }
    acct_remem(st, a);
    *out = a;
    return 0;
}

int vg_state_account(vg_state_t *st, const char *account, size_t len, vg_acct_t **out) {
    return acct_get(st, account, len, 1, out);
}

int vg_state_find(vg_state_t *st, const char *account, size_t len, vg_acct_t **out) {
    return acct_get(st, account, len, 0, out);
}

int vg_state_recent(vg_state_t *st, vg_acct_t *a, int max,
                    int (*cb)(void *ctx, const char *line, size_t len), void *ctx) {
    const dedupe_t *d = &a->dd;
    if (max <= 0 || d->n == 0) return 0;
    if (max > 1024) max = 1024;
    int64_t oldest = sat_sub(a->newest, st->horizon);
    /* the records are in arrival order: the offsets of the last max live ones */
    uint32_t ring[1024];
    uint32_t n = 0;
    for (uint32_t off = d->bhead; off < d->blen; off = dd_next(d, off))
        if (dd_rec(d, off)->ts >= oldest) ring[n++ % (uint32_t)max] = off;
    int handed = 0;
    for (uint32_t i = 0; i < n && i < (uint32_t)max; i++) {
        const dd_rec_t *x = dd_rec(d, ring[(n - 1 - i) % (uint32_t)max]);
        const char *line;
        size_t len;
        int rc = entry_decision(st, a, x, &line, &len);
        if (rc) return rc;
        handed++;
        if (cb(ctx, line, len)) break;
    }
    return handed;
}

int vg_state_sessions(const vg_state_t *st, const vg_acct_t *a, vg_wsession_t *out,
                      int max) {
    return a->w ? vg_wstate_sessions(a->w, st->alay, out, max) : 0;
}

vg_anomaly_state_t *vg_state_anomaly(vg_acct_t *a) {
    return a->x && a->x->has_anomaly ? &a->x->an : NULL;
}


uint64_t vg_state_hash(const char *account, size_t len) { return hash_bytes(account, len); }

void vg_state_prefetch(const vg_state_t *st, const char *account, size_t len, int stage) {
    if (len > UINT32_MAX) return;
    vg_state_prefetch_hashed(st, hash_bytes(account, len), stage);
}

/* The account entry of hash h (the first slot with this hash: almost always it), or
 * NULL. Reads only the table. */
static const ent_t *pf_find(const vg_state_t *st, uint64_t h) {
    const htab_t *t = &st->accts;
    size_t m = t->cap - 1;
    for (size_t i = h & m;; i = (i + 1) & m) {
        const hslot_t *s = &t->slot[i];
        if (!s->e) return NULL;
        if (s->h == h) return s->e;
    }
}

const vg_acct_t *vg_state_prefetch_hashed(const vg_state_t *st, uint64_t h, int stage) {
    if (stage <= 0) {
        PREFETCH(&st->accts.slot[h & (st->accts.cap - 1)]);
        return NULL;
    }
    const ent_t *e = pf_find(st, h);
    if (!e) return NULL;
    if (stage == 1) {
        /* the account and its embedded window state (stage 2 reads both) */
        for (int k = 0; k < st->apf_lines; k++) PREFETCH((const char *)e + 64 * k);
        return NULL;
    }
    if (e->is_key) return NULL;
    const vg_acct_t *a = (const vg_acct_t *)e;
    if (a->dd.b) {
        /* vg_state_find_dup reads the records only when the account keeps more than
         * DD_HH or one has the id's hash; vg_state_remember appends at blen and reads
         * the first record when it expires */
        if (a->dd.n) PREFETCH(a->dd.b + a->dd.bhead);
        if (a->dd.blen < a->dd.bcap) PREFETCH(a->dd.b + a->dd.blen);
    }
    if (a->w) vg_wstate_prefetch(a->w);
    return a->dd.ix ? a : NULL;
}

void vg_state_prefetch_id(const vg_acct_t *a, const char *id, size_t idlen) {
    const dedupe_t *d = &a->dd;
    if (d->ix) PREFETCH(&d->ix[(uint32_t)hash_bytes(id, idlen) & (d->ixcap - 1)]);
}

int64_t vg_state_newest(const vg_acct_t *a) { return a->newest; }

/* The record of (a, id) within the dedupe horizon, or NULL. */
static const dd_rec_t *dd_find(const vg_state_t *st, const vg_acct_t *a, const char *id,
                               size_t idlen) {
    const dedupe_t *d = &a->dd;
    if (d->n == 0) return NULL;
    int64_t oldest = sat_sub(a->newest, st->horizon);
    uint32_t h = (uint32_t)hash_bytes(id, idlen);
    if (d->n <= DD_HH) {   /* no live record has this hash: no need to read them */
        int any = 0;
        for (uint32_t j = 0; j < d->n; j++) any |= d->hh[(d->seq0 + j) % DD_HH] == h;
        if (!any) return NULL;
    }
    const dd_rec_t *x = NULL;
    if (d->ix) {
        /* at most one unexpired record has this id (an id is only accepted again once
         * its record has expired), so the first match in probe order is the one */
        uint32_t m = d->ixcap - 1;
        for (uint32_t j = h & m; d->ix[j]; j = (j + 1) & m) {
            uint32_t off = (d->ix[j] - 1) * 8;
            if (off < d->bhead) continue;   /* dropped from the front */
            const dd_rec_t *y = dd_rec(d, off);
            if (y->h == h && y->idlen == idlen && y->ts >= oldest &&
                memcmp(y + 1, id, idlen) == 0) {
                x = y;
                break;
            }
        }
    } else {
        /* the newest match (the last in arrival order) */
        for (uint32_t off = d->bhead; off < d->blen; off = dd_next(d, off)) {
            const dd_rec_t *y = dd_rec(d, off);
            if (y->h == h && y->idlen == idlen && y->ts >= oldest &&
                memcmp(y + 1, id, idlen) == 0)
                x = y;
        }
    }
    return x;
}

int vg_state_find_dup(vg_state_t *st, vg_acct_t *a, const char *id, size_t idlen,
                      const char **decision, size_t *dlen) {
    const dd_rec_t *x = dd_find(st, a, id, idlen);
    return x && entry_decision(st, a, x, decision, dlen) == 0;
}

int vg_state_event_time(const vg_state_t *st, const vg_acct_t *a, const char *id,
                        size_t idlen, int64_t *ts) {
    const dd_rec_t *x = dd_find(st, a, id, idlen);
    if (x) *ts = x->ts;
    return x != NULL;
}

/* Finds or loads or creates the state of the key in st->kbuf (group g); `h` is the
 * hash of its bytes after "k/" when known, else 0. */
static int key_get(vg_state_t *st, int g, uint64_t h, kstate_t **out) {
    const char *kb = st->kbuf.p + 2;
    uint32_t kl = (uint32_t)(st->kbuf.len - 2);
    if (!h) h = hash_bytes(kb, kl);
    ent_t *e = ht_find(&st->keys, h, kb, kl);
    if (e) {
        touch(st, e);
        *out = (kstate_t *)e;
        return 0;
    }
    const vg_wlayout_t *lay = st->groups[g].lay;
    int rc = VG_ENOTFOUND;
    if (st->store && st->key_maybe_stored) rc = vg_store_get(st->store, st->kbuf.p,
                                                             st->kbuf.len, &st->vbuf);
    /* a new key's window state and its first rows share its allocation; a loaded one
     * is decoded apart */
    size_t wsize = rc == VG_ENOTFOUND ? key_wspace(lay) : 0;
    kstate_t *k = calloc(1, al8(sizeof *k + kl) + wsize);
    if (!k) return VG_ENOMEM;
    memcpy(k->kb, kb, kl);
    k->e.key = k->kb;
    k->e.klen = kl;
    k->e.hash = h;
    k->e.is_key = 1;
    k->e.wspace = wsize > 0;
    if (st->store && st->key_maybe_stored) {
        if (rc == 0) {
            char err[128];
            if (st->vbuf.len < 1 || st->vbuf.p[0] != REC_VERSION) rc = VG_ESTORE;
            else if (!(k->w = vg_wstate_decode(lay, st->vbuf.p + 1, st->vbuf.len - 1, err,
                                               sizeof err)))
                rc = VG_ESTORE;
            else st->key_loads++;
        } else if (rc != VG_ENOTFOUND) {
            rc = VG_ESTORE;
        }
    }
    if (rc == VG_ENOTFOUND) {
        k->w = vg_wstate_init_rows_at(ent_wspace(&k->e, sizeof *k), lay,
                                      vg_wstate_inline_rows(lay));
        rc = 0;
    }
    if (!rc) rc = add_entry(st, &st->keys, &k->e);
    if (rc) {
        key_free(k);
        return rc;
    }
    key_remem(st, k);
    *out = k;
    return 0;
}

int vg_state_apply(vg_state_t *st, vg_acct_t *a, int64_t ts, const vg_spec_input_t *in,
                   vg_value_t *spec_vals, vg_arena_t *scratch) {
    /* the by-keys' table slots are fetched while the account's windows are updated
     * (a key is looked up right after: its slot is then in cache); keys of up to
     * KEY_SHORT bytes are built here once, for the lookup too */
    enum { KEY_SHORT = 64 };
    uint64_t kh[8] = {0};   /* their hashes (0: not known) */
    unsigned char kb[8][KEY_SHORT];
    size_t kbl[8] = {0};    /* the key's bytes in kb[g] (0: not there) */
    for (int g = 0; g < st->ngroups && g < 8; g++) {
        const group_t *gr = &st->groups[g];
        if (gr->nspecs == 0) continue;
        const vg_value_t *key = &in[gr->specs[0]].key;
        if (key->type == VG_T_NULL) continue;
        size_t n = key_len(key);
        if (n <= KEY_SHORT) {
            key_put(g, key, kb[g]);
            kbl[g] = n;
            kh[g] = hash_bytes(kb[g], n);
        } else {
            if (key_store_key(st, g, key)) break;
            kh[g] = hash_bytes(st->kbuf.p + 2, st->kbuf.len - 2);
        }
        PREFETCH(&st->keys.slot[kh[g] & (st->keys.cap - 1)]);
    }
    int rc = mark_dirty(st, &a->e);
    if (rc) return rc;
    if (st->a_nspecs > 0) {
        if (!a->w) {
            a->w = a->e.wspace ? vg_wstate_init_at(ent_wspace(&a->e, sizeof *a), st->alay)
                               : vg_wstate_new(st->alay);
            if (!a->w) return VG_ENOMEM;
        }
        rc = vg_wstate_add(a->w, st->alay, ts, in, spec_vals, scratch);
        if (rc) return rc;
    }
    if (ts > a->newest) a->newest = ts;
    acct_remem(st, a);

    for (int g = 0; g < st->ngroups; g++) {
        const group_t *gr = &st->groups[g];
        if (gr->nspecs == 0) continue;
        const vg_value_t *key = &in[gr->specs[0]].key;
        kstate_t *k = NULL;
        if (key->type != VG_T_NULL) {
            ent_t *e = g < 8 && kbl[g] ? ht_find(&st->keys, kh[g], (const char *)kb[g],
                                                 (uint32_t)kbl[g])
                                       : NULL;
            if (e) {   /* in memory: no store key needed */
                touch(st, e);
                k = (kstate_t *)e;
            } else {
                rc = key_store_key(st, g, key);
                if (!rc) rc = key_get(st, g, g < 8 ? kh[g] : 0, &k);
                if (rc) return rc;
            }
            int64_t kn = vg_wstate_newest(k->w);
            if (kn != INT64_MIN && ts < sat_sub(kn, st->lateness)) k = NULL;  /* late */
        }
        if (!k) {
            for (int i = 0; i < gr->nspecs; i++) spec_vals[gr->specs[i]] = vg_null();
            continue;
        }
        rc = mark_dirty(st, &k->e);
        if (!rc) rc = vg_wstate_add(k->w, gr->lay, ts, in, spec_vals, scratch);
        if (rc) return rc;
        key_remem(st, k);
    }
    return 0;
}

vg_acctx_t *vg_state_acctx(vg_state_t *st, vg_acct_t *a) {
    if (!st->has_x) return NULL;
    if (mark_dirty(st, &a->e)) return NULL;
    if (!a->x) {
        if (!(a->x = vg_acctx_new(&st->xlay))) return NULL;
        acct_remem(st, a);
    }
    return a->x;
}

vg_acctx_t *vg_state_acctx_peek(vg_acct_t *a) { return a->x; }

void vg_state_acctx_remem(vg_state_t *st, vg_acct_t *a) { acct_remem(st, a); }

int vg_state_reset_baseline(vg_state_t *st, const char *account, size_t len) {
    vg_acct_t *a;
    int rc = vg_state_find(st, account, len, &a);   /* an unknown account is not made */
    if (rc == VG_ENOTFOUND) return 0;
    if (rc) return rc;
    if (!a->x || !a->x->has_anomaly) return 0;
    rc = mark_dirty(st, &a->e);
    if (rc) return rc;
    vg_anomaly_state_reset(&a->x->an);
    return 0;
}

int64_t vg_state_last_alert(const vg_acct_t *a, uint64_t rule_id) {
    for (uint32_t i = 0; i < a->nsup; i++)
        if (a->sup[i].rule == rule_id) return a->sup[i].last;
    return INT64_MIN;
}

int vg_state_set_alert(vg_state_t *st, vg_acct_t *a, uint64_t rule_id, int64_t ts) {
    int rc = mark_dirty(st, &a->e);
    if (rc) return rc;
    for (uint32_t i = 0; i < a->nsup; i++)
        if (a->sup[i].rule == rule_id) {
            a->sup[i].last = ts;
            return 0;
        }
    if (a->nsup == a->supcap) {
        uint32_t ncap = a->supcap ? a->supcap * 2 : 4;
        supp_t *ns = realloc(a->sup, sizeof(supp_t) * ncap);
        if (!ns) return VG_ENOMEM;
        a->sup = ns;
        a->supcap = ncap;
    }
    a->sup[a->nsup++] = (supp_t){rule_id, ts};
    acct_remem(st, a);
    return 0;
}

int vg_state_remember(vg_state_t *st, vg_acct_t *a, const char *id, size_t idlen,
                      int64_t ts, const char *decision, size_t dlen, size_t head) {
    if (idlen > UINT32_MAX || dlen > UINT32_MAX || head > dlen) return VG_ENOMEM;
    int rc = mark_dirty(st, &a->e);
    if (rc) return rc;
    if (ts > a->newest) a->newest = ts;
    dd_expire(&a->dd, sat_sub(a->newest, st->horizon));
    rc = log_entry(st, &a->dd, ts, id, (uint32_t)idlen, decision + head, dlen - head,
                   head ? DL_HEADLESS : 0);
    acct_remem(st, a);
    return rc;
}

static int cmp_tick(const void *x, const void *y) {
    const ent_t *a = *(ent_t *const *)x, *b = *(ent_t *const *)y;
    return a->tick < b->tick ? -1 : a->tick > b->tick;
}

/* Store-key order: accounts ("a/") before keys ("k/"), then the key bytes. */
static int cmp_storekey(const void *x, const void *y) {
    const ent_t *a = *(ent_t *const *)x, *b = *(ent_t *const *)y;
    if (a->is_key != b->is_key) return a->is_key ? 1 : -1;
    uint32_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, n);
    if (c) return c;
    return a->klen < b->klen ? -1 : a->klen > b->klen;
}

/* After a ruleset swap: the deletes of the old records, before any put. */
static void put_dels(vg_state_t *st, vg_batch_t *b) {
    vg_le_rd_t r = {(const unsigned char *)st->dels.p, st->dels.len, 0, 0};
    size_t n;
    for (const void *k; (k = vg_le_get_key(&r, &n)) != NULL;) vg_batch_delete(b, k, n);
}

/* A checkpoint holding a whole swap was written: the store is valid again. */
static void swap_written(vg_state_t *st) {
    if (!st->swap_pending) return;
    st->swap_pending = 0;
    vg_buf_clear(&st->dels);
    st->acct_maybe_stored = st->key_maybe_stored = 1;
}

/* Appends e's record to batch b (copied). Returns 0 or VG_ENOMEM. */
static int put_entry(vg_state_t *st, ent_t *e, vg_batch_t *b, int slice) {
    vg_buf_clear(&st->kbuf);
    vg_buf_clear(&st->vbuf);
    int rc = vg_buf_append(&st->kbuf, e->is_key ? "k/" : "a/", 2);
    if (!rc) rc = vg_buf_append(&st->kbuf, e->key, e->klen);
    if (!rc && e->is_key) {
        rc = vg_buf_putc(&st->vbuf, REC_VERSION);
        if (!rc) rc = vg_wstate_encode(((const kstate_t *)e)->w,
                                       st->groups[(uint8_t)e->key[0] << 8 |
                                                  (uint8_t)e->key[1]].lay,
                                       &st->vbuf);
    } else if (!rc) {
        rc = acct_encode(st, (const vg_acct_t *)e, &st->vbuf);
    }
    if (!rc) vg_batch_put(b, st->kbuf.p, st->kbuf.len, st->vbuf.p, st->vbuf.len);
    if (!rc && !e->is_key) rc = log_put(st, (vg_acct_t *)e, b, slice);
    if (!rc && !e->is_key) rc = rows_put(st, (vg_acct_t *)e, b);
    return rc;
}

/* "m/src": the sources of the program the layout was made by (rules/program.h,
 * vg_prog_sources), written with the first "m/layout" after the program changed (and
 * after a start, which cannot tell whether the store has it), so that a restart with other rules
 * can carry the state over (engine/pipeline.h, vg_pipeline_open). Sources over 1 MiB
 * are not kept (the record is deleted: such a restart starts empty, as before). */
static void put_src(vg_state_t *st, vg_batch_t *b) {
    size_t n;
    const char *src = vg_prog_sources(st->p, &n);
    if (src && n <= (1u << 20)) vg_batch_put(b, "m/src", 5, src, n);
    else vg_batch_delete(b, "m/src", 5);
}

/* A full checkpoint was not written: every dirty account's rows stay dirty. */
static void rows_all_unwritten(vg_state_t *st) {
    for (size_t i = 0; i < st->ndirty; i++)
        if (!st->dirty[i]->is_key) rows_unwritten((vg_acct_t *)st->dirty[i]);
}

int vg_state_checkpoint(vg_state_t *st, const vg_kv_t *meta, int n_meta, int sync,
                        char *errbuf, size_t errlen) {
    if (!st->store) return 0;
    vg_batch_clear(st->batch);
    /* records in key order: RocksDB's memtable inserts a sorted batch much faster
     * (each insert starts from the previous one's place in the skip list) */
    if (st->ndirty > 1) qsort(st->dirty, st->ndirty, sizeof *st->dirty, cmp_storekey);
    put_dels(st, st->batch);
    int rc = 0;
    for (size_t i = 0; !rc && i < st->ndirty; i++)
        rc = put_entry(st, st->dirty[i], st->batch, 0);
    for (int i = 0; !rc && i < n_meta; i++) {
        vg_buf_clear(&st->kbuf);
        rc = vg_buf_append(&st->kbuf, "m/", 2);
        if (!rc) rc = vg_buf_puts(&st->kbuf, meta[i].key);
        if (!rc)
            vg_batch_put(st->batch, st->kbuf.p, st->kbuf.len, meta[i].val, meta[i].len);
    }
    if (!rc) vg_batch_put(st->batch, "m/layout", 8, st->layout.p, st->layout.len);
    if (!rc && !st->src_saved) put_src(st, st->batch);
    if (!rc && st->dp.tpl && !st->dtpl_saved)
        vg_batch_put(st->batch, "m/dtpl", 6, st->dp.tpl, st->dp.tlen);
    if (!rc) rc = shapes_put(st, st->batch, 0);
    if (rc) {
        seterr(errbuf, errlen, "out of memory while writing a checkpoint", NULL);
        vg_batch_clear(st->batch);
        rows_all_unwritten(st);
        return rc;
    }
    rc = vg_store_write(st->store, st->batch, sync, errbuf, errlen);
    vg_batch_clear(st->batch);
    if (rc) {
        rows_all_unwritten(st);
        return VG_ESTORE;
    }
    if (st->dp.tpl) st->dtpl_saved = 1;
    st->src_saved = 1;
    shapes_written(st, 0);
    swap_written(st);
    /* clean again: back on the LRU list in the order of their last use (which only a
     * memory budget ever reads: without one the order is left as it is) */
    if (st->ndirty > 1 && st->budget) qsort(st->dirty, st->ndirty, sizeof *st->dirty, cmp_tick);
    for (size_t i = 0; i < st->ndirty; i++) {
        ent_t *e = st->dirty[i];
        e->dirty = 0;
        if (!e->is_key) {
            log_now_written((vg_acct_t *)e);
            rows_written((vg_acct_t *)e);
        }
        if (!e->pending) lru_push_front(st, e);
    }
    st->ndirty = 0;
    return 0;
}

/* ---- incremental checkpoints (vg_state_checkpoint_some / _done) --------------------- */

/* Copies the k entries changed longest ago (st->dirty is in the order entries became
 * dirty) into st->pend, in store-key order. 0 or VG_ENOMEM (nothing taken). */
static int take_pend(vg_state_t *st, size_t k) {
    if (k > st->pcap) {
        ent_t **np = realloc(st->pend, k * sizeof *np);
        if (!np) return VG_ENOMEM;
        st->pend = np;
        st->pcap = k;
    }
    if (k) memcpy(st->pend, st->dirty, k * sizeof *st->pend);
    if (k > 1) qsort(st->pend, k, sizeof *st->pend, cmp_storekey);
    return 0;
}

/* The records a slice or snapshot carries besides its entries: the layout, and the
 * decision template until one written holds it. */
static int put_slice_meta(vg_state_t *st, vg_batch_t *b) {
    vg_batch_put(b, "m/layout", 8, st->layout.p, st->layout.len);
    st->src_pend = !st->src_saved;
    if (st->src_pend) put_src(st, b);
    st->dtpl_pend = 0;
    if (st->dp.tpl && !st->dtpl_saved) {
        vg_batch_put(b, "m/dtpl", 6, st->dp.tpl, st->dp.tlen);
        st->dtpl_pend = 1;
    }
    return shapes_put(st, b, 1);
}

int vg_state_checkpoint_some(vg_state_t *st, size_t max_records, vg_batch_t *b,
                             size_t *left) {
    *left = 0;
    if (!st->store) return 0;
    if (st->npend) vg_state_checkpoint_done(st, 0);   /* a forgotten slice: write again */
    /* after a ruleset swap the whole state is one slice: the store must never hold a
     * mix of layouts */
    size_t k = st->ndirty < max_records || st->swap_pending ? st->ndirty : max_records;
    if (take_pend(st, k)) return VG_ENOMEM;
    int rc = 0;
    st->swap_inflight = st->swap_pending;
    if (st->swap_pending) put_dels(st, b);
    for (size_t i = 0; !rc && i < k; i++) rc = put_entry(st, st->pend[i], b, 1);
    if (rc) {
        st->swap_inflight = 0;
        return rc;
    }   /* the caller clears its batch; nothing changed here */
    rc = put_slice_meta(st, b);
    if (rc) {
        st->swap_inflight = 0;
        shapes_written(st, 2);
        return rc;
    }
    if (st->ndirty > k) memmove(st->dirty, st->dirty + k, (st->ndirty - k) * sizeof *st->dirty);
    st->ndirty -= k;
    for (size_t i = 0; i < k; i++) {
        st->pend[i]->dirty = 0;
        st->pend[i]->pending = 1;   /* off the LRU (never evicted) until written */
    }
    st->npend = k;
    *left = st->ndirty;
    return 0;
}

void vg_state_checkpoint_done(vg_state_t *st, int written) {
    if (st->sb) {
        /* a snapshot: written only once complete; given up, nothing of it counts */
        if (st->sleft) written = 0;
        for (size_t i = 0; i < st->npend; i++) st->pend[i]->snap = 0;
        st->sb = NULL;
        st->snext = st->sleft = 0;
    }
    if (written && st->swap_inflight) swap_written(st);
    st->swap_inflight = 0;
    if (written) {
        if (st->dtpl_pend) st->dtpl_saved = 1;
        if (st->src_pend) st->src_saved = 1;
        shapes_written(st, 1);
        /* evictable again, in the order of their last use; an entry changed since it
         * was encoded is dirty (written by a later checkpoint), one a full checkpoint
         * wrote meanwhile is on the LRU already */
        if (st->npend > 1 && st->budget)
            qsort(st->pend, st->npend, sizeof *st->pend, cmp_tick);
        for (size_t i = 0; i < st->npend; i++) {
            ent_t *e = st->pend[i];
            e->pending = 0;
            if (!e->is_key) {
                log_written((vg_acct_t *)e);
                rows_written((vg_acct_t *)e);
            }
            if (!e->dirty && !e->linked) lru_push_front(st, e);
        }
    } else {
        for (size_t i = 0; i < st->npend; i++) {
            ent_t *e = st->pend[i];
            e->pending = 0;
            if (!e->is_key) rows_unwritten((vg_acct_t *)e);
            /* on out of memory the entry stays clean and off the LRU: kept in memory,
             * written again when it next changes */
            mark_dirty(st, e);
        }
    }
    st->dtpl_pend = 0;
    st->src_pend = 0;
    shapes_written(st, 2);
    st->npend = 0;
}

/* ---- snapshots (vg_state_snapshot_begin / _step) ------------------------------------ */

int vg_state_snapshot_begin(vg_state_t *st, vg_batch_t *b, size_t *left) {
    *left = 0;
    if (!st->store) return 0;
    if (st->npend) vg_state_checkpoint_done(st, 0);   /* a forgotten one: given up */
    size_t k = st->ndirty;
    if (take_pend(st, k)) return VG_ENOMEM;   /* the cut; the steps encode in its order */
    st->swap_inflight = st->swap_pending;
    if (st->swap_pending) put_dels(st, b);
    int rc = put_slice_meta(st, b);
    if (rc) {
        st->swap_inflight = 0;
        shapes_written(st, 2);
        return rc;
    }
    for (size_t i = 0; i < k; i++) {
        ent_t *e = st->pend[i];
        e->dirty = 0;
        e->pending = 1;   /* off the LRU (never evicted) until written */
        e->snap = 1;
    }
    st->ndirty = 0;
    st->npend = k;
    st->sb = b;
    st->snext = 0;
    st->sleft = k;
    *left = k;
    return 0;
}

/* Encodes e (in the cut, not yet encoded) into the snapshot's batch. 0 or VG_ENOMEM
 * (e stays unencoded; the snapshot can't complete and is given up by its done). */
static int snap_encode(vg_state_t *st, ent_t *e) {
    int rc = put_entry(st, e, st->sb, 1);
    if (rc) return rc;
    e->snap = 0;
    st->sleft--;
    return 0;
}

int vg_state_snapshot_step(vg_state_t *st, size_t max_records, size_t *left) {
    *left = st->sleft;
    if (!st->sb) return 0;
    for (size_t n = 0; st->sleft && n < max_records && st->snext < st->npend; st->snext++) {
        ent_t *e = st->pend[st->snext];
        if (!e->snap) continue;   /* encoded before it changed */
        int rc = snap_encode(st, e);
        if (rc) return rc;
        n++;
    }
    *left = st->sleft;
    return 0;
}

int vg_state_meta(vg_state_t *st, const char *key, vg_buf_t *out) {
    if (!st->store) return VG_ENOTFOUND;
    vg_buf_clear(&st->kbuf);
    int rc = vg_buf_append(&st->kbuf, "m/", 2);
    if (!rc) rc = vg_buf_puts(&st->kbuf, key);
    if (rc) return rc;
    return vg_store_get(st->store, st->kbuf.p, st->kbuf.len, out);
}

static size_t total_bytes(const vg_state_t *st) {
    return st->bytes + (st->accts.cap + st->keys.cap) * sizeof(hslot_t) +
           st->dcap * sizeof(void *);
}

int vg_state_evict(vg_state_t *st) {
    if (!st->store || st->budget == 0) return 0;
    int n = 0;
    while (total_bytes(st) > st->budget && st->lru.prev != &st->lru) {
        ent_t *e = st->lru.prev;
        lru_unlink(e);
        ht_remove(e->is_key ? &st->keys : &st->accts, e);
        if (e->is_key) st->key_maybe_stored = 1;
        else st->acct_maybe_stored = 1;
        st->bytes -= e->mem;
        st->evictions++;
        if (e->is_key) st->key_evictions++;   /* before the entry is freed */
        ent_free(e);
        n++;
    }
    return n;
}

void vg_state_get_stats(const vg_state_t *st, vg_state_stats_t *out) {
    out->accounts_in_memory = st->accts.n;
    out->keys_in_memory = st->keys.n;
    out->bytes = total_bytes(st);
    out->loads = st->loads;
    out->evictions = st->evictions;
    out->key_loads = st->key_loads;
    out->key_evictions = st->key_evictions;
}

/* ---- ruleset swap (vg_state_set_program) ------------------------------------------ */

static int load_acct_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    vg_state_t *st = ctx;
    vg_acct_t *a;
    return vg_state_account(st, (const char *)k + 2, kl - 2, &a) ? -1 : 0;
}

static int load_key_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    vg_state_t *st = ctx;
    if (kl < 5) return -1;
    int g = (uint8_t)((const char *)k)[2] << 8 | (uint8_t)((const char *)k)[3];
    if (g >= st->ngroups) return -1;
    vg_buf_clear(&st->kbuf);
    if (vg_buf_append(&st->kbuf, k, kl)) return -1;
    kstate_t *ks;
    return key_get(st, g, 0, &ks) ? -1 : 0;
}

/* Every entry of table t, in an array the caller frees (NULL when empty or out of
 * memory: *n says which). */
static ent_t **table_entries(const htab_t *t, size_t *n) {
    *n = t->n;
    if (!t->n) return NULL;
    ent_t **v = malloc(t->n * sizeof *v);
    if (!v) return NULL;
    size_t m = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i].e) v[m++] = t->slot[i].e;
    return v;
}

/* The extension of an account for the new layout `nl`: the anomaly baseline kept, the
 * label memo's key hashes moved to the new group numbers (gmap: old -> new, -1 gone) and
 * its x values to the new label-sum slots (xmap: new -> old, -1: null, a new x).
 * NULL with *oom = 1 when out of memory; NULL with *oom = 0 when nothing is kept. */
static vg_acctx_t *acctx_migrate(const vg_acctx_t *x, const vg_acctx_layout_t *ol,
                                 const vg_acctx_layout_t *nl, const int *gmap,
                                 const int *xmap, int *oom) {
    *oom = 0;
    vg_acctx_t *nx = vg_acctx_new(nl);
    if (!nx) goto nomem;
    if (nx->has_anomaly && x->has_anomaly) nx->an = x->an;
    {   /* every layout keeps a memo (acctx.h): its entries move to the new one */
        uint64_t keyh[256], *kh = keyh;
        int ng = nl->ngroups > 0 ? nl->ngroups : 0;
        if (ng > 256 && !(kh = malloc((size_t)ng * sizeof *kh))) goto nomem;
        for (uint32_t i = x->head; i < x->n; i++) {
            for (int g = 0; g < ng; g++) kh[g] = 0;
            for (int g = 0; g < ol->ngroups; g++)
                if (gmap[g] >= 0 && gmap[g] < ng) kh[gmap[g]] = VG_ACCTX_KEYH(x, i, g);
            if (vg_acctx_memo_add(nx, VG_ACCTX_IDH(x, i), VG_ACCTX_TS(x, i), kh, NULL)) {
                if (kh != keyh) free(kh);
                goto nomem;
            }
            VG_ACCTX_STATUS(nx, nx->n - 1) = VG_ACCTX_STATUS(x, i);
            for (int k = 0; k < nl->nx; k++)
                if (xmap[k] >= 0 && xmap[k] < ol->nx)
                    VG_ACCTX_XW(nx, nx->n - 1, k) = VG_ACCTX_XW(x, i, xmap[k]);
        }
        if (kh != keyh) free(kh);
    }
    return nx;
nomem:
    vg_acctx_free(nx);
    *oom = 1;
    return NULL;
}

int vg_state_set_program(vg_state_t *st, vg_program_t *p, const vg_acctx_layout_t *acctx,
                         char *errbuf, size_t errlen) {
    int rc = 0;
    lays_t ls;
    memset(&ls, 0, sizeof ls);
    int *gmap = NULL, *xmap = NULL;
    ent_t **ea = NULL, **ek = NULL;
    vg_wstate_t **wa = NULL, **wk = NULL;
    vg_acctx_t **xa = NULL;
    hslot_t *nks = NULL;
    size_t na = 0, nk = 0;
    if ((rc = make_layouts(st, p, acctx, &ls, errbuf, errlen))) return rc;
    /* the same layouts (same specs, texts, spec indexes, extension): nothing moves */
    if (ls.layout.len == st->layout.len && memcmp(ls.layout.p, st->layout.p, ls.layout.len) == 0) {
        lays_free(&ls);
        vg_prog_ref(p);
        vg_prog_unref(st->p);
        st->p = p;
        st->src_saved = 0;   /* the same layout, other sources: recorded at the next one */
        return 0;
    }
    if (st->npend) vg_state_checkpoint_done(st, 0);   /* a slice in flight: rewrite it */
    /* 1. everything stored comes into memory, decoded with the old layouts */
    if (st->store && !st->swap_pending) {
        if ((st->acct_maybe_stored &&
             vg_store_scan(st->store, "a/", 2, load_acct_cb, st) != 0) ||
            (st->key_maybe_stored && vg_store_scan(st->store, "k/", 2, load_key_cb, st) != 0)) {
            seterr(errbuf, errlen, "cannot read the state in % to move it to the new rules",
                   vg_store_path(st->store));
            lays_free(&ls);
            return VG_ESTORE;
        }
    }
    /* 2. every entry's new state, built aside: a failure changes nothing */
    gmap = malloc(((size_t)st->ngroups + 1) * sizeof *gmap);
    if (!gmap) goto nomem;
    for (int g = 0; g < st->ngroups; g++) {
        gmap[g] = -1;
        const char *t = vg_prog_bygroup_text(st->p, g);
        for (int h = 0; t && h < ls.ngroups; h++) {
            const char *u = vg_prog_bygroup_text(p, h);
            if (u && strcmp(t, u) == 0) gmap[g] = h;
        }
    }
    int nnx = vg_prog_memo_nx(p);
    xmap = malloc(((size_t)nnx + 1) * sizeof *xmap);
    if (!xmap) goto nomem;
    for (int k = 0; k < nnx; k++) {
        xmap[k] = -1;
        const char *t = vg_prog_memo_x_text(p, k);
        for (int h = 0; h < vg_prog_memo_nx(st->p); h++) {
            const char *u = vg_prog_memo_x_text(st->p, h);
            if (t && u && strcmp(t, u) == 0) xmap[k] = h;
        }
    }
    ea = table_entries(&st->accts, &na);
    ek = table_entries(&st->keys, &nk);
    wa = calloc(na + 1, sizeof *wa);
    xa = calloc(na + 1, sizeof *xa);
    wk = calloc(nk + 1, sizeof *wk);
    if ((na && !ea) || (nk && !ek) || !wa || !xa || !wk) goto nomem;
    size_t kcap = 1024;
    while (kcap * 7 < nk * 10 + 10) kcap *= 2;
    if (!(nks = calloc(kcap, sizeof *nks))) goto nomem;
    if (st->store && st->dcap < na + nk) {
        ent_t **nd = realloc(st->dirty, (na + nk) * sizeof *nd);
        if (!nd) goto nomem;
        st->dirty = nd;
        st->dcap = na + nk;
    }
    for (size_t i = 0; i < na; i++) {
        vg_acct_t *a = (vg_acct_t *)ea[i];
        if (a->w && ls.a_nspecs > 0 && !(wa[i] = vg_wstate_migrate(st->alay, ls.alay, a->w)))
            goto nomem;
        if (a->x && acctx) {
            int oom;
            xa[i] = acctx_migrate(a->x, &st->xlay, acctx, gmap, xmap, &oom);
            if (oom) goto nomem;
        }
    }
    for (size_t i = 0; i < nk; i++) {
        kstate_t *k = (kstate_t *)ek[i];
        int g = (uint8_t)k->kb[0] << 8 | (uint8_t)k->kb[1];
        if (gmap[g] >= 0 &&
            !(wk[i] = vg_wstate_migrate(st->groups[g].lay, ls.groups[gmap[g]].lay, k->w)))
            goto nomem;
    }
    /* 3. commit (nothing fails from here on, except the list of store deletes, which
     * only costs garbage in the store: removed keys are never read again) */
    st->ndirty = 0;
    for (size_t i = 0; i < na; i++) {
        vg_acct_t *a = (vg_acct_t *)ea[i];
        vg_wstate_free(a->w);
        a->w = wa[i];
        a->e.wspace = 0;
        vg_acctx_free(a->x);
        a->x = xa[i];
        a->e.dirty = 0;
    }
    for (size_t i = 0; i < nk; i++) ek[i]->dirty = 0;
    free(st->keys.slot);
    st->keys.slot = nks;
    st->keys.cap = kcap;
    st->keys.n = 0;
    for (size_t i = 0; i < nk; i++) {
        kstate_t *k = (kstate_t *)ek[i];
        int g = (uint8_t)k->kb[0] << 8 | (uint8_t)k->kb[1];
        if (st->store && gmap[g] != g && !put_u32(&st->dels, k->e.klen + 2) &&
            !vg_buf_append(&st->dels, "k/", 2))
            vg_buf_append(&st->dels, k->kb, k->e.klen);
        lru_unlink(&k->e);
        if (gmap[g] < 0) {
            st->bytes -= k->e.mem;
            k->e.mem = 0;
            key_free(k);
            continue;
        }
        vg_wstate_free(k->w);
        k->w = wk[i];
        k->e.wspace = 0;
        k->kb[0] = (char)(gmap[g] >> 8);
        k->kb[1] = (char)gmap[g];
        k->e.hash = hash_bytes(k->kb, k->e.klen);
        ht_place(st->keys.slot, st->keys.cap, k->e.hash, &k->e);
        st->keys.n++;
        ek[i] = &k->e;
    }
    for (int g = 0; g < st->ngroups; g++) {
        vg_wlayout_free(st->groups[g].lay);
        free(st->groups[g].specs);
    }
    free(st->groups);
    vg_wlayout_free(st->alay);
    vg_buf_deinit(&st->layout);
    st->alay = ls.alay;
    st->a_nspecs = ls.a_nspecs;
    st->ngroups = ls.ngroups;
    st->groups = ls.groups;
    st->layout = ls.layout;
    set_apf_lines(st);
    st->has_x = acctx != NULL;
    if (acctx) st->xlay = *acctx;
    vg_prog_ref(p);
    vg_prog_unref(st->p);
    st->p = p;
    st->src_saved = 0;
    for (size_t i = 0; i < na; i++) {
        acct_remem(st, (vg_acct_t *)ea[i]);
        mark_dirty(st, ea[i]);   /* room reserved above: can't fail */
    }
    /* the surviving keys are the ones in the table */
    for (size_t i = 0; i < st->keys.cap; i++) {
        ent_t *e = st->keys.slot ? st->keys.slot[i].e : NULL;
        if (!e) continue;
        key_remem(st, (kstate_t *)e);
        mark_dirty(st, e);
    }
    if (st->store) {
        st->swap_pending = 1;
        /* until that checkpoint, the store holds nothing valid that is not in memory */
        st->acct_maybe_stored = st->key_maybe_stored = 0;
    }
    free(gmap);
    free(xmap);
    free(ea);
    free(ek);
    free(wa);
    free(wk);
    free(xa);
    return 0;
nomem:
    seterr(errbuf, errlen, "out of memory", NULL);
    if (wa)
        for (size_t i = 0; i < na; i++) vg_wstate_free(wa[i]);
    if (xa)
        for (size_t i = 0; i < na; i++) vg_acctx_free(xa[i]);
    if (wk)
        for (size_t i = 0; i < nk; i++) vg_wstate_free(wk[i]);
    free(gmap);
    free(xmap);
    free(ea);
    free(ek);
    free(wa);
    free(wk);
    free(xa);
    free(nks);
    lays_free(&ls);
    return VG_ENOMEM;
}

static int del_meta_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    vg_state_t *st = ctx;
    if (vg_le_put_key(&st->dels, k, kl)) return -1;
    return 0;
}

int vg_state_delete_meta(vg_state_t *st, const char *prefix) {
    if (!st->store) return 0;
    vg_buf_t pre;
    vg_buf_init(&pre);
    int rc = vg_buf_append(&pre, "m/", 2);
    if (!rc) rc = vg_buf_puts(&pre, prefix);
    if (!rc) {
        int s = vg_store_scan(st->store, pre.p, pre.len, del_meta_cb, st);
        rc = s == 0 ? 0 : s == -1 ? VG_ENOMEM : VG_ESTORE;
    }
    vg_buf_deinit(&pre);
    if (!rc) st->swap_pending = 1;
    return rc;
}

static int wipe_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    vg_batch_delete((vg_batch_t *)ctx, k, kl);
    return 0;
}

int vg_state_wipe(vg_store_t *store, char *errbuf, size_t errlen) {
    vg_batch_t *b = vg_batch_new();
    if (!b) {
        seterr(errbuf, errlen, "out of memory", NULL);
        return VG_ENOMEM;
    }
    static const char *const pre[] = {"a/", "d/", "k/", "w/"};
    int rc = 0;
    for (int i = 0; !rc && i < 4; i++)
        if (vg_store_scan(store, pre[i], 2, wipe_cb, b) != 0) {
            seterr(errbuf, errlen, "cannot read the state in %", vg_store_path(store));
            rc = VG_ESTORE;
        }
    if (!rc && vg_store_scan(store, "m/shp/", 6, wipe_cb, b) != 0) {
        seterr(errbuf, errlen, "cannot read the state in %", vg_store_path(store));
        rc = VG_ESTORE;
    }
    if (!rc) {
        vg_batch_delete(b, "m/layout", 8);
        vg_batch_delete(b, "m/dtpl", 6);
        rc = vg_store_write(store, b, 1, errbuf, errlen) ? VG_ESTORE : 0;
    }
    vg_batch_free(b);
    return rc;
}

static void note_key(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    vg_le_put_key(ctx, k, kl);   /* out of memory: fewer tombstones, never a wrong one */
}

int vg_state_delete_account(vg_store_t *store, const char *account, size_t len,
                            vg_buf_t *deleted, char *errbuf,
                            size_t errlen) {
    vg_batch_t *b = vg_batch_new();
    unsigned char *key = malloc(len + 6);
    int rc = 0;
    if (!b || !key || len > UINT32_MAX) {
        seterr(errbuf, errlen, "out of memory", NULL);
        rc = VG_ENOMEM;
    } else {
        memcpy(key, "a/", 2);
        memcpy(key + 2, account, len);
        vg_batch_delete(b, key, len + 2);
        /* its dedupe ('d') and window row ('w') records: KIND "/" + u32be length + name */
        static const char kinds[2] = {'d', 'w'};
        for (int i = 0; !rc && i < 2; i++) {
            key[0] = (unsigned char)kinds[i];
            for (int j = 0; j < 4; j++) key[2 + j] = (unsigned char)((uint64_t)len >> (24 - 8 * j));
            memcpy(key + 6, account, len);
            if (vg_store_scan(store, key, len + 6, wipe_cb, b) != 0) {
                seterr(errbuf, errlen, "cannot read the account's records in %", vg_store_path(store));
                rc = VG_ESTORE;
            }
        }
        if (!rc) rc = vg_store_write(store, b, 1, errbuf, errlen) ? VG_ESTORE : 0;
        if (!rc && deleted) vg_batch_iterate(b, note_key, deleted);
    }
    free(key);
    vg_batch_free(b);
    return rc;
}
