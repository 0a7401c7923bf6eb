/* replay.c - `vigil replay`: NDJSON events in, decisions out, in input order.
 *
 * With --state DIR the state lives in RocksDB under DIR and is checkpointed, together
 * with the input position, the output length and a fingerprint of the input and of the
 * rules, in one atomic write. Killed at any point and started again with the same
 * arguments, replay cuts the output back to the checkpoint's length, skips the input to
 * the checkpoint's position and goes on, so that the finished output is byte for byte
 * that of an uninterrupted run. The output is made durable (fdatasync) before the
 * checkpoint that records its length.
 *
 * Exit: 0 when the input was read to its end (rejected lines included); 1 when the
 * rules do not compile or input, output or state fail; 2 on a usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api/cli.h"
#include "engine/kafka.h"
#include "engine/pipeline.h"
#include "engine/store.h"
#include "rules/errors.h"

/* Input is read and output written in pieces that stay in the CPU's L2 cache between
 * the copy and their use (1 MiB pieces: the kernel's copy into a cold buffer, then the
 * parser's reads of it, miss the cache). */
#define READ_CHUNK (1u << 16)
#define OUT_FLUSH (1u << 17)
#define MAX_HELD_LINE (VG_EVENT_MAX_BYTES + 1)
#define FP_HEAD (64u << 10)   /* the input fingerprint covers the first 64 KiB ... */
#define FP_TAIL (4u << 10)    /* ... and the 4 KiB before the checkpoint's position */

typedef struct opts {
    char **rules;
    int nrules;
    const char *input, *output, *state, *lists;
    const char *labels;     /* --labels FILE */
    int64_t lateness_ms, horizon_ms;
    size_t mem_budget;
    uint64_t ckpt_every;
    int64_t ckpt_interval_ms;
    int sync;
    int partitions;         /* --partitions N: serve's split over N partitions */
    int crc;                /* --partitioner crc32: that split by CRC32, not murmur2 */
    int anomaly;            /* --anomaly on (1, the default) | auto (0) */
} opts_t;

static void usage(FILE *f) {
    fprintf(f,
        "usage: vigil replay --rules PATH [--input FILE|-] [--output FILE|-] [--state DIR]\n"
        "                    [--lists FILE] [--lateness DUR] [--dedupe-horizon DUR]\n"
        "                    [--mem-budget SIZE] [--partitions N [--partitioner P]]\n"
        "                    [--labels FILE] [--anomaly on|auto]\n"
        "\n"
        "Reads NDJSON events in order and writes one decision (or rejection) per line.\n"
        "  --rules PATH           a .vrl file or a directory of .vrl files (repeatable)\n"
        "  --input FILE|-         events, default standard input\n"
        "  --output FILE|-        decisions, default standard output\n"
        "  --state DIR            keep state in RocksDB under DIR and checkpoint it; a\n"
        "                         killed run started again with the same arguments\n"
        "                         continues from its last checkpoint (needs --output FILE)\n"
        "  --lists FILE           named lists for `in list(\"name\")`: a JSON object\n"
        "                         {\"name\": [\"item\", ...]}; without it every list is empty\n"
        "  --labels FILE          confirmed labels, CSV with the header id,account,fraud,at:\n"
        "                         each is applied before the first event whose time is\n"
        "                         at or after its `at` (fraud_count, labelled_count)\n"
        "  --anomaly on|auto      the anomaly models score and learn every event (on, the\n"
        "                         default, as vigil serve), or only while the rules read\n"
        "                         anomaly.* (auto: decisions then carry \"anomaly\":{})\n"
        "  --lateness DUR         allowed lateness of out-of-order events (default 1h)\n"
        "  --dedupe-horizon DUR   how long an (account, id) is remembered (default 24h)\n"
        "  --mem-budget SIZE      with --state: keep at most SIZE bytes of account state\n"
        "                         in memory (e.g. 512M), evicting cold accounts to disk\n"
        "  --checkpoint-every N   with --state: checkpoint every N lines (default 100000)\n"
        "  --checkpoint-interval DUR  ... and at least this often (default 1s), also\n"
        "                         while the input is idle\n"
        "  --partitions N         decide as `vigil serve` over N Kafka partitions keyed by\n"
        "                         account (murmur2, Kafka's default partitioner): one\n"
        "                         state per partition, so `by K` windows are per\n"
        "                         partition; output in input order (not with --state)\n"
        "  --partitioner murmur2|crc32  the producers' partitioner for --partitions:\n"
        "                         murmur2 (Kafka's Java default, the default here) or\n"
        "                         crc32 (librdkafka's default, as kcat)\n"
        "  --no-sync              with --state: do not wait for the disk at checkpoints (safe\n"
        "                         against a killed process, not against power loss)\n"
        "Durations: 500ms, 30s, 10m, 1h, 7d. Exit status: 0 input read to its end,\n"
        "1 rules, input, output or state failed, 2 usage error.\n");
}

/* A 64-bit FNV-1a, streaming. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}
#define FNV_INIT 14695981039346656037ULL

/* A fingerprint is never 0: 0 records "option not given". */
static uint64_t nonzero(uint64_t h) { return h ? h : 1; }

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct item {
    const char *p;
    size_t n;
} item_t;

static int cmp_item(const void *a, const void *b) {
    const item_t *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The fingerprint of a --lists file's content: each list's name and its set of items,
 * in sorted order, so that the same lists written otherwise (spacing, order, an item
 * twice) give the same fingerprint. The file was read and checked before (rules/lists.c,
 * with the same jansson flags); should it not parse now, its bytes are the fingerprint.
 * Returns 0 on a read error or without memory. */
static uint64_t lists_fingerprint(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    vg_buf_t b;
    vg_buf_init(&b);
    char chunk[1 << 14];
    size_t n;
    int bad = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (vg_buf_append(&b, chunk, n) != 0) bad = 1;
    bad |= ferror(f);
    fclose(f);
    uint64_t h = FNV_INIT;
    json_error_t je;
    size_t bom = b.len >= 3 && memcmp(b.p, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;   /* skipped */
    json_t *root = bad || !b.len ? NULL
                   : json_loadb(b.p + bom, b.len - bom, JSON_REJECT_DUPLICATES, &je);
    if (!bad && !json_is_object(root)) h = fnv(FNV_INIT, b.p, b.len);
    else if (!bad) {
        size_t nn = json_object_size(root), k = 0;
        const char **names = malloc(sizeof(*names) * (nn ? nn : 1));
        const char *name;
        json_t *arr;
        if (!names) bad = 1;
        json_object_foreach(root, name, arr) if (names && k < nn) names[k++] = name;
        if (names) qsort(names, k, sizeof(*names), cmp_cstr);
        nn = k;
        for (size_t i = 0; !bad && i < nn; i++) {
            arr = json_object_get(root, names[i]);
            size_t ni = json_array_size(arr), m = 0;
            item_t *it = malloc(sizeof(*it) * (ni ? ni : 1));
            if (!it) {
                bad = 1;
                break;
            }
            for (size_t j = 0; j < ni; j++) {
                json_t *e = json_array_get(arr, j);
                if (!json_is_string(e)) continue;
                it[m].p = json_string_value(e);
                it[m++].n = json_string_length(e);
            }
            qsort(it, m, sizeof(*it), cmp_item);
            uint64_t len = strlen(names[i]);
            h = fnv(h, &len, sizeof len);
            h = fnv(h, names[i], len);
            uint64_t distinct = 0;
            for (size_t j = 0; j < m; j++) distinct += j == 0 || cmp_item(&it[j - 1], &it[j]);
            h = fnv(h, &distinct, sizeof distinct);
            for (size_t j = 0; j < m; j++) {
                if (j > 0 && cmp_item(&it[j - 1], &it[j]) == 0) continue;
                len = it[j].n;
                h = fnv(h, &len, sizeof len);
                h = fnv(h, it[j].p, it[j].n);
            }
            free(it);
        }
        free(names);
    }
    json_decref(root);
    vg_buf_deinit(&b);
    return bad ? 0 : nonzero(h);
}

/* The fingerprint of the labels as applied: each one's id, account, status and time, in
 * application order (so the same labels written otherwise give the same one). */
static uint64_t labels_fingerprint(const vg_labels_t *l) {
    uint64_t h = FNV_INIT, n = vg_labels_count(l);
    h = fnv(h, &n, sizeof n);
    for (size_t i = 0; i < n; i++) {
        const vg_label_t *x = vg_labels_get(l, i);
        uint64_t len = x->idlen;
        h = fnv(h, &len, sizeof len);
        h = fnv(h, x->id, x->idlen);
        len = x->alen;
        h = fnv(h, &len, sizeof len);
        h = fnv(h, x->account, x->alen);
        int64_t v[2] = {x->fraud, x->at_ms};
        h = fnv(h, v, sizeof v);
    }
    return nonzero(h);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The input reader: a growable buffer of bytes read from fd, split into lines. */
typedef struct reader {
    int fd;
    char *buf;
    size_t cap, start, end;
    int eof;
    uint64_t pos;           /* input offset of buf[start] */
    /* fingerprint of the input, maintained as lines are consumed */
    uint64_t head_hash;     /* hash of the first min(pos, FP_HEAD) bytes */
    char tail[FP_TAIL];     /* ring of the last FP_TAIL bytes consumed */
    uint64_t consumed;
    int fp_on;              /* fingerprinting only matters with --state */
    /* an oversize line whose first bytes were dropped before its end was found: its
     * first MAX_HELD_LINE bytes (for its id) and the last byte dropped (a CRLF's \r) */
    char *head;
    size_t head_len;        /* 0: the line returned was not cut */
    char last_dropped;
    int bom_done;           /* a leading UTF-8 byte order mark was looked for (skipped) */
    /* the line returned last had no newline (the input's end came first: a file still
     * being written may end inside a line): a checkpoint records the position and the
     * fingerprint at its start (cut_pos, cut_fp), never past it, so that a resume reads
     * the line again whole once its rest has been written */
    int cut;
    uint64_t cut_pos, cut_fp;
    uint64_t ov_pos, ov_fp; /* the same at the start of the oversize line being dropped */
    /* an input that can be idle (a pipe, a terminal): before waiting for more, next_line
     * returns 2 when the caller has output to flush (want_flush) or at `deadline` (a
     * checkpoint is due), so that neither waits for the input */
    int idle;
    int want_flush;
    int64_t deadline;       /* now_ms() clock; INT64_MAX: none */
} reader_t;

static void fp_consume(reader_t *r, const char *p, size_t n) {
    if (!r->fp_on) {
        r->consumed += n;
        return;
    }
    if (r->consumed < FP_HEAD) {
        size_t k = n;
        if (r->consumed + k > FP_HEAD) k = (size_t)(FP_HEAD - r->consumed);
        r->head_hash = fnv(r->head_hash, p, k);
    }
    /* copy the last min(n, FP_TAIL) bytes into the ring, in at most two pieces */
    uint64_t at = r->consumed;
    if (n > FP_TAIL) {
        at += n - FP_TAIL;
        p += n - FP_TAIL;
        n = FP_TAIL;
    }
    size_t off = (size_t)(at % FP_TAIL);
    size_t first = n < FP_TAIL - off ? n : FP_TAIL - off;
    memcpy(r->tail + off, p, first);
    memcpy(r->tail, p + first, n - first);
    r->consumed = at + n;
}

static uint64_t fp_value(const reader_t *r) {
    uint64_t h = r->head_hash;
    uint64_t n = r->consumed < FP_TAIL ? r->consumed : FP_TAIL;
    for (uint64_t i = r->consumed - n; i < r->consumed; i++) {
        char c = r->tail[i % FP_TAIL];
        h = fnv(h, &c, 1);
    }
    return fnv(h, &r->consumed, sizeof(r->consumed));
}

/* Skips a UTF-8 byte order mark at the start of the input (editors on Windows write one;
 * it made the first event invalid_json). Sets bom_done once the first bytes tell. */
static void skip_bom(reader_t *r) {
    size_t have = r->end - r->start, k = have < 3 ? have : 3;
    if (have && memcmp(r->buf + r->start, "\xEF\xBB\xBF", k) != 0) r->bom_done = 1;
    else if (have >= 3) {
        fp_consume(r, r->buf + r->start, 3);
        r->start += 3;
        r->pos += 3;
        r->bom_done = 1;
    } else if (r->eof) r->bom_done = 1;
}

/* Returns 1 with a line (without newline; `*oversize` set when the line was longer
 * than MAX_HELD_LINE and only its length is known), 0 at the end, -1 on read error, 2
 * (an idle input, above) when no complete line is buffered and the caller has output to
 * flush or a checkpoint is due: it calls again after them. */
static int next_line(reader_t *r, const char **line, size_t *len, size_t *oversize) {
    size_t skipped = 0;   /* bytes of an oversize line already dropped */
    *oversize = 0;
    r->head_len = 0;
    for (;;) {
        if (!r->bom_done) skip_bom(r);
        char *nl = r->end > r->start ? memchr(r->buf + r->start, '\n', r->end - r->start) : NULL;
        if (r->bom_done && (nl || (r->eof && r->end > r->start))) {
            size_t l = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;
            size_t adv = nl ? l + 1 : l;
            if (!nl) {   /* the input's last line has no newline */
                r->cut = 1;
                r->cut_pos = skipped ? r->ov_pos : r->pos;
                r->cut_fp = skipped ? r->ov_fp : r->fp_on ? fp_value(r) : 0;
            }
            *line = r->buf + r->start;
            *len = l;
            if (skipped) *oversize = skipped + l;
            else if (l > MAX_HELD_LINE) *oversize = l;
            /* the 64 KiB limit does not count a CRLF's \r (nor vg_event_parse) */
            if (*oversize && (l ? (*line)[l - 1] : r->last_dropped) == '\r') (*oversize)--;
            fp_consume(r, r->buf + r->start, adv);
            r->start += adv;
            r->pos += adv;
            return 1;
        }
        if (r->eof && r->bom_done) {
            if (skipped) {   /* an oversize last line without newline */
                r->cut = 1;
                r->cut_pos = r->ov_pos;
                r->cut_fp = r->ov_fp;
                *oversize = skipped - (r->last_dropped == '\r');
                *line = r->buf;
                *len = 0;
                return 1;
            }
            return 0;
        }
        /* keep at most MAX_HELD_LINE bytes of a line: drop the rest, counting it */
        if (r->end - r->start > MAX_HELD_LINE + (size_t)READ_CHUNK) {
            size_t drop = r->end - r->start;
            if (!skipped) {   /* where the line starts, should it have no newline */
                r->ov_pos = r->pos;
                r->ov_fp = r->fp_on ? fp_value(r) : 0;
            }
            if (!skipped && (r->head || (r->head = malloc(MAX_HELD_LINE)))) {
                r->head_len = MAX_HELD_LINE;
                memcpy(r->head, r->buf + r->start, MAX_HELD_LINE);
            }
            r->last_dropped = r->buf[r->end - 1];
            fp_consume(r, r->buf + r->start, drop);
            r->pos += drop;
            skipped += drop;
            r->start = r->end = 0;
        }
        if (r->start > 0 && (r->cap - r->end) < READ_CHUNK) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->cap - r->end < READ_CHUNK) {
            size_t ncap = r->cap ? r->cap * 2 : 4 * READ_CHUNK;
            char *nb = realloc(r->buf, ncap);
            if (!nb) return -1;
            r->buf = nb;
            r->cap = ncap;
        }
        if (r->idle && !skipped && (r->want_flush || r->deadline != INT64_MAX)) {
            int64_t t = now_ms();
            if (t >= r->deadline) return 2;
            int64_t wait = r->want_flush ? 0 : r->deadline - t;
            struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
            int pr = poll(&pfd, 1, wait > INT_MAX ? INT_MAX : (int)wait);
            if (pr == 0) return 2;   /* nothing to read yet */
            if (pr < 0 && errno == EINTR) continue;
        }
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) r->eof = 1;
        r->end += (size_t)n;
    }
}

/* Lookahead prefetching: while line i is processed, the accounts of the lines already
 * buffered after it are found cheaply (the raw bytes of the first "account":"..." with no
 * escape) and their state is prefetched in stages (engine/state.h), so that the hash
 * slot, the account's entry and its windows are in cache when their line comes: stage 0
 * PF_AHEAD lines ahead, stage 1 four lines ahead, stage 2 two lines ahead. A hint only:
 * a line whose account is not found this way is simply not prefetched. Positions are
 * input offsets, so they survive the reader moving or growing its buffer. */
#define PF_AHEAD 8

typedef struct pf_ent {
    uint64_t line;          /* input offset of the line's start */
    uint64_t acct;          /* input offset of the account's bytes (0 length: none) */
    size_t len;             /* the line's length, without its newline */
    uint32_t alen;
    uint64_t h;             /* the account's hash (vg_state_hash), for every stage */
    vg_state_t *st;         /* the state of the line's pipeline */
} pf_ent_t;

typedef struct prefetcher {
    pf_ent_t q[PF_AHEAD];
    unsigned head, n;       /* q[head] is the line after the current one */
    uint64_t scan;          /* input offset of the first line not yet queued */
} prefetcher_t;

static const char *pf_at(const reader_t *r, uint64_t off) {
    return r->buf + r->start + (size_t)(off - r->pos);
}

/* The stage's prefetch for a queued line (vg_prefetch_event, with its account's hash). */
static void pf_stage(const reader_t *r, const pf_ent_t *e, int stage) {
    if (e->alen) vg_prefetch_event(e->st, e->h, pf_at(r, e->line), e->len, stage);
}

static int parse_args(int argc, char **argv, opts_t *o) {
    static const struct option lo[] = {
        {"rules", required_argument, 0, 'r'},
        {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'},
        {"state", required_argument, 0, 's'},
        {"lateness", required_argument, 0, 'l'},
        {"dedupe-horizon", required_argument, 0, 'd'},
        {"mem-budget", required_argument, 0, 'm'},
        {"checkpoint-every", required_argument, 0, 'c'},
        {"checkpoint-interval", required_argument, 0, 'C'},
        {"no-sync", no_argument, 0, 'n'},
        {"lists", required_argument, 0, 'L'},
        {"partitions", required_argument, 0, 'P'},
        {"partitioner", required_argument, 0, 'R'},
        {"labels", required_argument, 0, 'B'},
        {"anomaly", required_argument, 0, 'Y'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof(*o));
    o->input = "-";
    o->output = "-";
    o->lateness_ms = 3600 * 1000LL;
    o->horizon_ms = 24 * 3600 * 1000LL;
    o->ckpt_every = 100000;
    o->ckpt_interval_ms = 1000;
    o->sync = 1;
    o->anomaly = 1;
    o->rules = calloc((size_t)argc + 1, sizeof(char *));
    if (!o->rules) return 1;
    optind = 1;
    opterr = 0;
    int c;
    /* the options that only mean something with --state (or --partitions): given
     * without it they were accepted and ignored */
    const char *needs_state = NULL, *needs_parts = NULL;
    while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
        if (vg_cli_empty_value("replay", c, optarg, "riosLB", lo)) return 2;
        if (strchr("mcCn", c)) {
            for (const struct option *x = lo; x->name; x++)
                if (x->val == c && !needs_state) needs_state = x->name;
        }
        if (c == 'R') needs_parts = "partitioner";
        switch (c) {
        case 'r': o->rules[o->nrules++] = optarg; break;
        case 'i': o->input = optarg; break;
        case 'o': o->output = optarg; break;
        case 's': o->state = optarg; break;
        case 'l':
        case 'd':
        case 'C': {   /* the interval must be positive; each at most 36500d */
            char err[300];
            int64_t *dst = c == 'l' ? &o->lateness_ms : c == 'd' ? &o->horizon_ms
                                                                 : &o->ckpt_interval_ms;
            if (vg_cli_duration_in(optarg, c == 'C', 0, dst, err, sizeof err)) {
                fprintf(stderr, "vigil replay: --%s: %s\n", c == 'l' ? "lateness"
                        : c == 'd' ? "dedupe-horizon" : "checkpoint-interval", err);
                return 2;
            }
            break;
        }
        case 'Y':
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "auto") != 0) {
                fprintf(stderr, "vigil replay: --anomaly must be on or auto, not '%.40s'\n", optarg);
                return 2;
            }
            o->anomaly = strcmp(optarg, "on") == 0;
            break;
        case 'm':
            if (vg_cli_size(optarg, &o->mem_budget)) {
                fprintf(stderr, "vigil replay: --mem-budget: bad size '%s' (e.g. 512M)\n", optarg);
                return 2;
            }
            break;
        case 'c': {
            char *end;
            errno = 0;
            /* strtoull took "-5" as 2^64-5: never */
            unsigned long long v = optarg[0] >= '0' && optarg[0] <= '9' ? strtoull(optarg, &end, 10) : 0;
            if (errno || v == 0 || *end) {
                fprintf(stderr, "vigil replay: --checkpoint-every: bad count '%s'\n", optarg);
                return 2;
            }
            o->ckpt_every = v;
            break;
        }
        case 'n': o->sync = 0; break;
        case 'L': o->lists = optarg; break;
        case 'B': o->labels = optarg; break;
        case 'P': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || v < 1 || v > 100000) {
                fprintf(stderr, "vigil replay: --partitions: bad count '%s' (1..100000)\n", optarg);
                return 2;
            }
            o->partitions = (int)v;
            break;
        }
        case 'R':
            if (strcmp(optarg, "murmur2") != 0 && strcmp(optarg, "crc32") != 0) {
                fprintf(stderr, "vigil replay: --partitioner: '%s' is not murmur2 or crc32\n",
                        optarg);
                return 2;
            }
            o->crc = strcmp(optarg, "crc32") == 0;
            break;
        case 'h': usage(stdout); return -1;
        case 'V': printf("vigil %s\n", VIGIL_VERSION); return -1;
        default:
            vg_cli_bad_option("replay", c, argv, lo);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigil replay: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (o->nrules == 0) {
        fprintf(stderr, "vigil replay: --rules PATH is required\n");
        usage(stderr);
        return 2;
    }
    if (needs_state && !o->state) {
        fprintf(stderr, "vigil replay: --%s only works with --state DIR\n", needs_state);
        return 2;
    }
    if (needs_parts && !o->partitions) {
        fprintf(stderr, "vigil replay: --%s only works with --partitions N\n", needs_parts);
        return 2;
    }
    if (o->state && o->partitions > 1) {
        fprintf(stderr, "vigil replay: --partitions does not work with --state\n");
        return 2;
    }
    if (o->state && strcmp(o->output, "-") == 0) {
        fprintf(stderr, "vigil replay: --state needs --output FILE (the output is cut back "
                        "to the last checkpoint when resuming)\n");
        return 2;
    }
    return 0;
}

typedef struct run {
    opts_t o;
    vg_sources_t src;
    vg_program_t *prog;
    vg_store_t *store;
    vg_pipeline_t *pl;
    vg_pipeline_t **parts;  /* --partitions N > 1: one pipeline per partition (pl = [0]) */
    vg_labels_t *labels;    /* --labels */
    vg_event_t route_ev;    /* the account of a line, for routing */
    reader_t rd;
    int out_fd;
    vg_buf_t out;
    uint64_t out_len;       /* bytes of output written or buffered so far */
    uint64_t rules_hash;    /* replay/rules: modules (names, contents) and options */
    uint64_t rules_hash_v1; /* the same as older vigils made it (with the paths' text) */
    uint64_t modules_hash;  /* replay/modules: the modules' file names and contents */
    uint64_t labels_before; /* labels taken before the checkpoint resumed from */
    uint64_t lists_hash;    /* fingerprint of --lists' content, 0 without --lists */
    uint64_t labels_hash;   /* fingerprint of --labels' labels, 0 without --labels */
    uint64_t lines;         /* input lines consumed (blank ones included) */
    int resumed;            /* from a checkpoint: label counts are this run's */
    uint64_t ck_out_len;    /* the checkpoint's output length (resume, then resume_output) */
} run_t;

static int flush_out(run_t *r) {
    if (r->out.len == 0) return 0;
    if (write_all(r->out_fd, r->out.p, r->out.len) < 0) {
        fprintf(stderr, "vigil replay: writing %s: %s\n", r->o.output, strerror(errno));
        return -1;
    }
    vg_buf_clear(&r->out);
    return 0;
}

/* The fingerprints of the rules (replay/modules: each module's file name, without its
 * directory, and its content, in load order) and of the rules with the options
 * (replay/rules), so that the same rules reached by another path (./m.vrl, $PWD/m.vrl,
 * rules/ for rules) resume the state; and replay/rules as vigils before this one made
 * it, from the paths as written, which their states still match. */
static void rules_fingerprints(run_t *r) {
    uint64_t m = FNV_INIT, v1 = FNV_INIT, n = (uint64_t)r->src.n;
    m = fnv(m, &n, sizeof n);
    for (int i = 0; i < r->src.n; i++) {
        const char *name = r->src.v[i].name, *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        m = fnv(m, base, strlen(base) + 1);
        uint64_t len = r->src.v[i].len;
        m = fnv(m, &len, sizeof len);
        m = fnv(m, r->src.v[i].text, r->src.v[i].len);
        v1 = fnv(v1, name, strlen(name) + 1);
        v1 = fnv(v1, r->src.v[i].text, r->src.v[i].len);
    }
    r->modules_hash = nonzero(m);
    uint64_t h = fnv(FNV_INIT, &r->modules_hash, sizeof r->modules_hash);
    h = fnv(h, &r->o.lateness_ms, sizeof(r->o.lateness_ms));
    r->rules_hash = fnv(h, &r->o.horizon_ms, sizeof(r->o.horizon_ms));
    v1 = fnv(v1, &r->o.lateness_ms, sizeof(r->o.lateness_ms));
    r->rules_hash_v1 = fnv(v1, &r->o.horizon_ms, sizeof(r->o.horizon_ms));
}

static int is_file(const struct stat *a, const char *path) {
    struct stat b;
    return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

/* Refuses an --output that is one of the files read (the same device and inode, however
 * spelt): opening it would cut it to nothing before it is read (--output set to the
 * --input emptied the input and replayed "0 events", exit 0). Nothing is written. */
static int same_file_check(run_t *r) {
    struct stat os, is;
    if (strcmp(r->o.output, "-") == 0 || stat(r->o.output, &os) != 0 || !S_ISREG(os.st_mode))
        return 0;
    const char *opt = NULL, *path = NULL;
    if (strcmp(r->o.input, "-") != 0 ? is_file(&os, r->o.input)
        : fstat(0, &is) == 0 && is.st_dev == os.st_dev && is.st_ino == os.st_ino)
        opt = "--input", path = strcmp(r->o.input, "-") ? r->o.input : "(standard input)";
    for (int i = 0; !opt && i < r->src.n; i++)
        if (is_file(&os, r->src.v[i].name)) opt = "--rules", path = r->src.v[i].name;
    if (!opt && r->o.labels && is_file(&os, r->o.labels)) opt = "--labels", path = r->o.labels;
    if (!opt && r->o.lists && is_file(&os, r->o.lists)) opt = "--lists", path = r->o.lists;
    if (!opt) return 0;
    fprintf(stderr, "vigil replay: --output %s is the same file as %s %s: it would be "
                    "overwritten; give another --output (nothing was written)\n",
            r->o.output, opt, path);
    return -1;
}

static int checkpoint(run_t *r) {
    if (!r->store) return 0;
    if (flush_out(r) < 0) return -1;
    if (r->o.sync && fdatasync(r->out_fd) < 0 && errno != EINVAL) {
        fprintf(stderr, "vigil replay: syncing %s: %s\n", r->o.output, strerror(errno));
        return -1;
    }
    /* never past a last line without its newline (taken before that line) */
    uint64_t in_pos = r->rd.cut ? r->rd.cut_pos : r->rd.pos;
    uint64_t fp = r->rd.cut ? r->rd.cut_fp : fp_value(&r->rd);
    vg_kv_t meta[] = {
        {"replay/input_pos", &in_pos, sizeof(in_pos)},
        {"replay/input_fp", &fp, sizeof(fp)},
        {"replay/output_len", &r->out_len, sizeof(r->out_len)},
        {"replay/lines", &r->lines, sizeof(r->lines)},
        {"replay/rules", &r->rules_hash, sizeof(r->rules_hash)},
        {"replay/modules", &r->modules_hash, sizeof(r->modules_hash)},
        {"replay/lateness", &r->o.lateness_ms, sizeof(r->o.lateness_ms)},
        {"replay/horizon", &r->o.horizon_ms, sizeof(r->o.horizon_ms)},
        {"replay/lists", &r->lists_hash, sizeof(r->lists_hash)},
        {"replay/labels", &r->labels_hash, sizeof(r->labels_hash)},
    };
    char err[256];
    if (vg_pipeline_checkpoint(r->pl, meta, (int)(sizeof(meta) / sizeof(meta[0])), r->o.sync,
                               err, sizeof(err)) != 0) {
        fprintf(stderr, "vigil replay: checkpoint failed: %s\n", err);
        return -1;
    }
    return 0;
}

/* Reads the checkpoint's record `key` ("m/" + key in the store, as vg_pipeline_meta
 * does; read from the store, it can be read before the pipeline is made). */
static int meta_u64(run_t *r, const char *key, uint64_t *v) {
    vg_buf_t b;
    vg_buf_init(&b);
    char k[64];
    int kn = snprintf(k, sizeof k, "m/%s", key);
    int rc = vg_store_get(r->store, k, (size_t)kn, &b);
    if (rc == 0) {
        if (b.len != sizeof(*v)) rc = VG_ESTORE;
        else memcpy(v, b.p, sizeof(*v));
    }
    vg_buf_deinit(&b);
    return rc;
}

/* Checks the fingerprint of --OPT (path `now`, NULL when not given, fingerprint `fp`, 0
 * when not given) against the one the checkpoint recorded ("replay/OPT"). A state
 * checkpointed by an older vigil, which recorded neither replay/lists nor replay/labels,
 * is accepted as it is, with a note (that vigil did not check them either); its next
 * checkpoint records them. Returns 0, or -1 with the reason on stderr. */
static int check_data(run_t *r, const char *opt, const char *now, uint64_t fp) {
    char key[32];
    snprintf(key, sizeof key, "replay/%s", opt);
    uint64_t was;
    int rc = meta_u64(r, key, &was);
    if (rc == VG_ENOTFOUND) {
        fprintf(stderr, "vigil replay: note: %s does not record its --%s (checkpointed by an "
                        "older vigil); not checked\n", r->o.state, opt);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "vigil replay: %s: checkpoint records are unreadable\n", r->o.state);
        return -1;
    }
    if (was == fp) return 0;
    if (!was)
        fprintf(stderr, "vigil replay: %s holds state made without --%s, and this run has "
                        "--%s %s; run it as it was made, or use a new --state directory\n",
                r->o.state, opt, opt, now);
    else if (!fp)
        fprintf(stderr, "vigil replay: %s holds state made with --%s, and this run has none; "
                        "run it as it was made, or use a new --state directory\n",
                r->o.state, opt);
    else
        fprintf(stderr, "vigil replay: %s holds state made with other --%s than %s (their "
                        "content differs); run it as it was made, or use a new --state "
                        "directory\n", r->o.state, opt, now);
    return -1;
}

/* The state was made with other rules or options (replay/rules differs): says which,
 * from the separate records a checkpoint keeps since they exist. */
static void rules_differ(run_t *r) {
    uint64_t mods, late, hor;
    if (meta_u64(r, "replay/modules", &mods) || meta_u64(r, "replay/lateness", &late) ||
        meta_u64(r, "replay/horizon", &hor)) {
        fprintf(stderr, "vigil replay: %s holds state made with other rules or options (the "
                        "--rules paths as written and their contents, --lateness or "
                        "--dedupe-horizon: an older vigil made it, which does not record "
                        "which); run it with the arguments it was made with, or use a new "
                        "--state directory\n", r->o.state);
        return;
    }
    char was[32], now[32];
    if (mods != r->modules_hash)
        fprintf(stderr, "vigil replay: %s holds state made with other rules (--rules: the "
                        "modules' file names or contents differ); run it with the rules it "
                        "was made with, or use a new --state directory\n", r->o.state);
    if ((int64_t)late != r->o.lateness_ms) {
        vg_fmt_duration((int64_t)late, was, sizeof was);
        vg_fmt_duration(r->o.lateness_ms, now, sizeof now);
        fprintf(stderr, "vigil replay: %s holds state made with --lateness %s, and this run "
                        "has --lateness %s; run it as it was made, or use a new --state "
                        "directory\n", r->o.state, was, now);
    }
    if ((int64_t)hor != r->o.horizon_ms) {
        vg_fmt_duration((int64_t)hor, was, sizeof was);
        vg_fmt_duration(r->o.horizon_ms, now, sizeof now);
        fprintf(stderr, "vigil replay: %s holds state made with --dedupe-horizon %s, and this "
                        "run has --dedupe-horizon %s; run it as it was made, or use a new "
                        "--state directory\n", r->o.state, was, now);
    }
    if (mods == r->modules_hash && (int64_t)late == r->o.lateness_ms &&
        (int64_t)hor == r->o.horizon_ms)
        fprintf(stderr, "vigil replay: %s holds state made with other rules or options; "
                        "use a new --state directory\n", r->o.state);
}

/* Before the pipeline reads the state (whose layout follows the rules and options, and
 * which would refuse other ones without saying which): a checkpoint made with other
 * rules or options is refused here, saying which. Returns 0 or -1. */
static int check_rules(run_t *r) {
    uint64_t pos, rules;
    int rc = meta_u64(r, "replay/input_pos", &pos);
    if (rc == VG_ENOTFOUND) return 0;
    if (rc || meta_u64(r, "replay/rules", &rules)) {
        fprintf(stderr, "vigil replay: %s: checkpoint records are unreadable\n", r->o.state);
        return -1;
    }
    /* an older vigil's fingerprint covered the rules' paths as written: it is still
     * accepted, spelt the same way; the next checkpoint records the new one */
    if (rules != r->rules_hash && rules != r->rules_hash_v1) {
        rules_differ(r);
        return -1;
    }
    return 0;
}

/* Refuses a --state directory that is not one replay made: vigil serve's (its control
 * store control/, shards shard-N/, Kafka partitions kafka/) or vigil stream's (kafka/),
 * or a non-empty directory without a RocksDB store (CURRENT). Replay went on in them
 * silently (a serve state with one shard keeps its engine store at its top, as replay
 * does). An absent or empty directory is made. 0, or -1 with the reason printed. */
static int state_dir_check(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) return 0;   /* made next (mkdir says what is wrong) */
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "vigil replay: --state %s: not a directory\n", dir);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "vigil replay: --state %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char first[256] = "";
    int rocks = 0, control = 0, kafka = 0, shard = 0, n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
        if (n++ == 0) snprintf(first, sizeof first, "%s", nm);
        if (strcmp(nm, "CURRENT") == 0) rocks = 1;
        else if (strcmp(nm, "control") == 0) control = 1;
        else if (strcmp(nm, "kafka") == 0) kafka = 1;
        else if (strncmp(nm, "shard-", 6) == 0 && nm[6] >= '0' && nm[6] <= '9') shard = 1;
    }
    closedir(d);
    if (control || shard)
        fprintf(stderr, "vigil replay: --state %s is a vigil serve state directory (it holds "
                        "%s); replay keeps a state of its own: give a new or empty directory\n",
                dir, control ? "control/, the control store" : "shard directories, shard-N/");
    else if (kafka)
        fprintf(stderr, "vigil replay: --state %s is a vigil stream state directory (it holds "
                        "kafka/, the partitions' stores); replay keeps a state of its own: give "
                        "a new or empty directory\n", dir);
    else if (n > 0 && !rocks)
    {
        char more[48] = "";
        if (n > 1) snprintf(more, sizeof more, " and %d more entr%s", n - 1, n > 2 ? "ies" : "y");
        fprintf(stderr, "vigil replay: --state %s is not a vigil state (it holds '%s'%s, but no "
                        "RocksDB store); give a new or empty directory, or one an earlier vigil "
                        "replay --state made\n", dir, first, more);
    }
    else
        return 0;
    return -1;
}

/* Resumes from the last checkpoint in the state directory, if any, up to the output:
 * checks the lists, labels and input it was made with and skips the input to its
 * position; the output is not opened yet (a refused resume leaves it as it was). -1 with
 * the reason printed. resume_output() then cuts the output back. */
static int resume(run_t *r) {
    uint64_t in_pos, fp, out_len, lines;
    int rc = meta_u64(r, "replay/input_pos", &in_pos);
    if (rc == VG_ENOTFOUND) return 0;
    if (rc || meta_u64(r, "replay/input_fp", &fp) || meta_u64(r, "replay/output_len", &out_len) ||
        meta_u64(r, "replay/lines", &lines)) {
        fprintf(stderr, "vigil replay: %s: checkpoint records are unreadable\n", r->o.state);
        return -1;
    }
    if (r->labels) {   /* the labels taken before the checkpoint, for the summary */
        vg_buf_t b;
        vg_buf_init(&b);
        if (vg_pipeline_meta(r->pl, "labels/next", &b) == 0 && b.len == 8)
            for (int i = 0; i < 8; i++)
                r->labels_before |= (uint64_t)(unsigned char)b.p[i] << (8 * i);
        vg_buf_deinit(&b);
    }
    if (check_data(r, "lists", r->o.lists, r->lists_hash) < 0 ||
        check_data(r, "labels", r->o.labels, r->labels_hash) < 0)
        return -1;
    /* skip the input to the checkpoint's position, checking that it is the same input */
    reader_t *rd = &r->rd;
    while (rd->pos < in_pos) {
        if (rd->start == rd->end) {
            if (rd->eof) break;
            if (rd->cap == 0) {
                rd->buf = malloc(4 * READ_CHUNK);
                if (!rd->buf) return -1;
                rd->cap = 4 * READ_CHUNK;
            }
            rd->start = rd->end = 0;
            ssize_t n = read(rd->fd, rd->buf, rd->cap);
            if (n < 0) {
                if (errno == EINTR) continue;
                fprintf(stderr, "vigil replay: reading %s: %s\n", r->o.input, strerror(errno));
                return -1;
            }
            if (n == 0) rd->eof = 1;
            rd->end = (size_t)n;
            continue;
        }
        size_t k = rd->end - rd->start;
        if (k > in_pos - rd->pos) k = (size_t)(in_pos - rd->pos);
        fp_consume(rd, rd->buf + rd->start, k);
        rd->start += k;
        rd->pos += k;
    }
    rd->bom_done = in_pos > 0;   /* a BOM was skipped (and counted) before */
    if (rd->pos != in_pos || fp_value(rd) != fp) {
        fprintf(stderr, "vigil replay: %s was checkpointed with another input than %s; "
                        "use a new --state directory\n", r->o.state, r->o.input);
        return -1;
    }
    struct stat st;   /* checked by its path before it is opened (and created) */
    if (out_len > 0 && stat(r->o.output, &st) < 0) {
        fprintf(stderr, "vigil replay: %s: %s; %s was checkpointed with %" PRIu64 " bytes "
                        "of it (give the output it was made with, or use a new --state "
                        "directory)\n", r->o.output, strerror(errno), r->o.state, out_len);
        return -1;
    }
    if (out_len > 0 && (uint64_t)st.st_size < out_len) {
        fprintf(stderr, "vigil replay: %s is shorter than its checkpoint says; it was changed "
                        "outside vigil\n", r->o.output);
        return -1;
    }
    r->ck_out_len = out_len;
    r->lines = lines;
    r->resumed = 1;
    fprintf(stderr, "vigil replay: resuming from checkpoint at line %" PRIu64 " (input byte %"
            PRIu64 ")\n", lines, in_pos);
    return 0;
}

/* Cuts the output, just opened, back to the checkpoint's length (to nothing without a
 * checkpoint). -1 with the reason printed. */
static int resume_output(run_t *r) {
    struct stat st;
    uint64_t out_len = r->resumed ? r->ck_out_len : 0;
    if (fstat(r->out_fd, &st) < 0 || (uint64_t)st.st_size < out_len) {
        fprintf(stderr, "vigil replay: %s is shorter than its checkpoint says; it was changed "
                        "outside vigil\n", r->o.output);
        return -1;
    }
    if (ftruncate(r->out_fd, (off_t)out_len) < 0 && (out_len || errno != EINVAL)) {
        fprintf(stderr, "vigil replay: cutting %s back: %s\n", r->o.output, strerror(errno));
        return -1;
    }
    if (lseek(r->out_fd, 0, SEEK_END) < 0 && out_len) {
        fprintf(stderr, "vigil replay: cutting %s back: %s\n", r->o.output, strerror(errno));
        return -1;
    }
    r->out_len = out_len;
    return 0;
}

static void summary(run_t *r, double secs, int tty) {
    vg_pipeline_stats_t s;
    vg_pipeline_get_stats(r->pl, &s);
    for (int p = 1; r->parts && p < r->o.partitions; p++) {
        vg_pipeline_stats_t t;
        vg_pipeline_get_stats(r->parts[p], &t);
        s.lines += t.lines;
        s.decided += t.decided;
        s.duplicates += t.duplicates;
        s.rejected += t.rejected;
        for (int i = 0; i < VG_REJECT__COUNT; i++) s.rejected_by[i] += t.rejected_by[i];
    }
    if (tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "vigil replay: %" PRIu64 " events: %" PRIu64 " decided, %" PRIu64
            " duplicates, %" PRIu64 " rejected", s.lines, s.decided, s.duplicates, s.rejected);
    if (s.rejected) {
        fprintf(stderr, " (");
        int first = 1;
        for (int i = 1; i < VG_REJECT__COUNT; i++) {
            if (!s.rejected_by[i]) continue;
            fprintf(stderr, "%s%s %" PRIu64, first ? "" : ", ", vg_reject_code((vg_reject_t)i),
                    s.rejected_by[i]);
            first = 0;
        }
        fprintf(stderr, ")");
    }
    /* a run under 10 ms shows its time in ms and no rate (it printed "0.00 s, 0 events/s",
     * and a rate from a few events in a few microseconds says nothing) */
    if (secs < 0.01) fprintf(stderr, "; %.2f ms\n", secs * 1000.0);
    else fprintf(stderr, "; %.2f s, %.0f events/s\n", secs, (double)s.lines / secs);
    if (r->labels) {   /* a label that matched nothing went unnoticed */
        uint64_t applied = 0, unmatched = 0, a, u, total = vg_labels_count(r->labels);
        vg_pipeline_label_stats(r->pl, &applied, &unmatched);
        uint64_t taken = applied + unmatched;   /* each partition takes every label */
        for (int p = 1; r->parts && p < r->o.partitions; p++) {
            vg_pipeline_label_stats(r->parts[p], &a, &u);
            applied += a;
        }
        unmatched = taken > applied ? taken - applied : 0;
        fprintf(stderr, "vigil replay: labels: %" PRIu64 " applied, %" PRIu64 " matched no "
                "event", applied, unmatched);
        if (r->resumed) fprintf(stderr, " since the checkpoint");
        taken += r->labels_before;   /* after a resume: and those taken before it */
        /* the labels the pipeline did not reach (after a resume too: it was left out),
         * 0 included: the line always has its three clauses, as docs/replay.md shows */
        fprintf(stderr, ", %" PRIu64 " known only after the last event (not applied)\n",
                total > taken ? total - taken : 0);
    }
}

/* --partitions: the pipeline of the line's partition, as Kafka's default (murmur2)
 * partitioner places a message keyed by the event's account. A line without a valid
 * account is rejected the same way by every pipeline and changes no state: partition 0. */
static vg_pipeline_t *route(run_t *r, const char *line, size_t len) {
    if (vg_event_parse(&r->route_ev, line, len) != 0) return r->parts[0];
    /* the labels this event's time makes known, in every partition first: a label is
     * applied before the first event of the whole stream at or after its time (SPEC
     * section 5), not of its partition's (errors surface at the next line) */
    for (int p = 0; r->labels && p < r->o.partitions; p++)
        (void)vg_pipeline_labels_until(r->parts[p], r->route_ev.ts_ms);
    return r->parts[vg_kafka_partition(r->route_ev.account.p, r->route_ev.account.len,
                                       r->o.partitions, r->o.crc)];
}

/* Called after each line taken from run->rd (whose input offset was `line`): drops it
 * from the queue, queues the following buffered lines and issues the prefetches. */
static void pf_step(run_t *run, prefetcher_t *f, uint64_t line) {
    const reader_t *r = &run->rd;
    if (f->n && f->q[f->head].line == line) {
        f->head = (f->head + 1) % PF_AHEAD;
        f->n--;
    } else if (f->n || f->scan != r->pos) {   /* out of step (an oversize line): restart */
        f->n = 0;
        f->scan = r->pos;
    }
    uint64_t end = r->pos + (r->end - r->start);
    while (f->n < PF_AHEAD && f->scan < end) {
        const char *p = pf_at(r, f->scan);
        const char *nl = memchr(p, '\n', (size_t)(end - f->scan));
        if (!nl) break;
        pf_ent_t *e = &f->q[(f->head + f->n) % PF_AHEAD];
        const char *a = NULL;
        e->line = f->scan;
        e->len = (size_t)(nl - p);
        e->alen = vg_peek_account(p, (size_t)(nl - p), &a);
        e->acct = e->alen ? f->scan + (uint64_t)(a - p) : 0;
        e->st = NULL;
        if (e->alen) {
            vg_pipeline_t *pl = run->parts
                ? run->parts[vg_kafka_partition(a, e->alen, run->o.partitions, run->o.crc)]
                : run->pl;
            e->st = vg_pipeline_state(pl);
            if (!e->st) e->alen = 0;
            else e->h = vg_state_hash(a, e->alen);
        }
        f->n++;
        f->scan += (uint64_t)(nl - p) + 1;
        pf_stage(r, e, 0);
    }
    if (f->n > 3) pf_stage(r, &f->q[(f->head + 3) % PF_AHEAD], 1);
    if (f->n > 1) pf_stage(r, &f->q[(f->head + 1) % PF_AHEAD], 2);
}

int vg_cmd_replay(int argc, char **argv) {
    run_t r;
    memset(&r, 0, sizeof(r));
    vg_event_init(&r.route_ev);
    r.out_fd = -1;
    r.rd.fd = -1;
    r.rd.head_hash = FNV_INIT;
    vg_buf_init(&r.out);
    int status = 1;
    int prc = parse_args(argc, argv, &r.o);
    if (prc) {
        free(r.o.rules);
        return prc < 0 ? 0 : prc;
    }
    char err[512];
    int lrc = vg_sources_load(&r.src, r.o.rules, r.o.nrules, err, sizeof(err));
    if (lrc == VG_ECOMPILE) {   /* a module too large: err is its diagnostic */
        fprintf(stderr, "%s\nvigil replay: the rules do not compile\n", err);
        goto done;
    }
    if (lrc != 0) {
        fprintf(stderr, "vigil replay: %s\n", err);
        goto done;
    }
    r.prog = vg_cli_compile(&r.src, NULL, NULL);
    if (!r.prog) {
        fprintf(stderr, "vigil replay: the rules do not compile\n");
        goto done;
    }
    rules_fingerprints(&r);
    if (same_file_check(&r) < 0) goto done;

    if (strcmp(r.o.input, "-") == 0) r.rd.fd = 0;
    else if ((r.rd.fd = open(r.o.input, O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "vigil replay: %s: %s\n", r.o.input, strerror(errno));
        goto done;
    }
    if (r.o.state) {
        if (state_dir_check(r.o.state) < 0) goto done;
        if (mkdir(r.o.state, 0755) < 0 && errno != EEXIST) {
            fprintf(stderr, "vigil replay: %s: %s\n", r.o.state, strerror(errno));
            goto done;
        }
        r.store = vg_store_open(r.o.state, err, sizeof(err));
        if (!r.store) {
            fprintf(stderr, "vigil replay: state %s: %s\n", r.o.state, err);
            goto done;
        }
        if (check_rules(&r) < 0) goto done;
    }
    vg_lists_t *lists = NULL;
    if (r.o.lists) {
        vg_list_source_t ls;
        if (vg_list_source_file(&ls, r.o.lists) != 0) goto done;
        lists = vg_list_source_fetch(&ls, err, sizeof(err));
        vg_list_source_close(&ls);
        if (!lists) {
            fprintf(stderr, "vigil replay: --lists %s\n", err);
            goto done;
        }
        for (int i = 0; i < vg_prog_nlists(r.prog); i++) {
            const char *nm = vg_prog_list_name(r.prog, i);
            if (!vg_lists_get(lists, nm, strlen(nm)))
                fprintf(stderr, "vigil replay: note: %s has no list \"%s\"; it is empty\n",
                        r.o.lists, nm);
        }
    } else {
        for (int i = 0; i < vg_prog_nlists(r.prog); i++)
            fprintf(stderr, "vigil replay: note: no --lists given; list \"%s\" is empty\n",
                    vg_prog_list_name(r.prog, i));
    }
    if (r.o.horizon_ms < r.o.lateness_ms) {   /* the engine raises it (it did silently) */
        char hor[32], late[32];
        vg_fmt_duration(r.o.horizon_ms, hor, sizeof hor);
        vg_fmt_duration(r.o.lateness_ms, late, sizeof late);
        fprintf(stderr, "vigil replay: note: --dedupe-horizon %s is less than --lateness %s; "
                        "it is raised to %s (an event resent within the lateness is always "
                        "recognised)\n", hor, late, late);
    }
    vg_pipeline_opts_t po;
    vg_pipeline_opts_default(&po);
    po.lists = lists;
    po.lateness_ms = r.o.lateness_ms;
    po.dedupe_horizon_ms = r.o.horizon_ms;
    po.mem_budget = r.o.mem_budget;
    po.anomaly = r.o.anomaly;
    po.store = r.store;
    r.pl = vg_pipeline_new(r.prog, &po, err, sizeof(err));
    if (r.pl && r.o.partitions > 1) {
        r.parts = calloc((size_t)r.o.partitions, sizeof(*r.parts));
        if (r.parts) r.parts[0] = r.pl;
        for (int p = 1; r.parts && p < r.o.partitions; p++)
            if (!(r.parts[p] = vg_pipeline_new(r.prog, &po, err, sizeof(err)))) {
                vg_lists_unref(lists);
                fprintf(stderr, "vigil replay: partition %d: %s\n", p, err);
                goto done;
            }
        if (!r.parts) snprintf(err, sizeof(err), "out of memory");
    }
    vg_lists_unref(lists);   /* the pipeline holds its own reference */
    if (!r.pl || (r.o.partitions > 1 && !r.parts)) {
        fprintf(stderr, "vigil replay: %s\n", err);
        goto done;
    }
    if (r.o.labels) {
        if (!(r.labels = vg_labels_load(r.o.labels, err, sizeof(err)))) {
            fprintf(stderr, "vigil replay: --labels %s\n", err);
            goto done;
        }
        vg_pipeline_set_labels(r.pl, r.labels);
        for (int p = 1; r.parts && p < r.o.partitions; p++)
            vg_pipeline_set_labels(r.parts[p], r.labels);
        if (r.store) r.labels_hash = labels_fingerprint(r.labels);
    }
    if (r.store && r.o.lists && !(r.lists_hash = lists_fingerprint(r.o.lists))) {
        fprintf(stderr, "vigil replay: --lists %s: %s\n", r.o.lists, strerror(errno ? errno : EIO));
        goto done;
    }
    r.rd.fp_on = r.store != NULL;
    if (r.store && resume(&r) < 0) goto done;
    /* the output is opened (created, cut) once everything else is known to be right: a
     * refused run (a state made otherwise or locked, a bad --lists or --labels) left an
     * empty or truncated output behind */
    if (strcmp(r.o.output, "-") == 0) r.out_fd = 1;
    else if ((r.out_fd = open(r.o.output, O_WRONLY | O_CREAT | O_CLOEXEC | (r.o.state ? 0 : O_TRUNC),
                              0644)) < 0) {
        fprintf(stderr, "vigil replay: %s: %s\n", r.o.output, strerror(errno));
        goto done;
    }
    if (r.store && resume_output(&r) < 0) goto done;

    int tty = isatty(2);
    int64_t t0 = now_ms(), last_ckpt = t0, last_progress = t0;
    struct stat in_st;
    /* a pipe can be idle: the output is flushed and a checkpoint taken (every
     * --checkpoint-interval) while it is; a regular file is read without a wait */
    r.rd.idle = fstat(r.rd.fd, &in_st) == 0 && !S_ISREG(in_st.st_mode);
    r.rd.deadline = r.store ? last_ckpt + r.o.ckpt_interval_ms : INT64_MAX;
    double start = now_secs();
    uint64_t since_ckpt = 0;
    prefetcher_t pf = {.scan = r.rd.pos};
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        const char *line;
        size_t len, oversize;
        uint64_t line_at = r.rd.pos;
        int got;
        if (pf.n && pf.q[pf.head].line == line_at && pf.q[pf.head].len <= MAX_HELD_LINE) {
            /* the prefetcher already found this line's end: take it without a search */
            got = 1;
            line = r.rd.buf + r.rd.start;
            len = pf.q[pf.head].len;
            oversize = 0;
            fp_consume(&r.rd, line, len + 1);
            r.rd.start += len + 1;
            r.rd.pos += len + 1;
        } else {
            r.rd.want_flush = r.out.len > 0;
            got = next_line(&r.rd, &line, &len, &oversize);
        }
        if (got == 2) {   /* an idle input: flush, and checkpoint when due */
            int64_t t = now_ms();
            if (r.store && t - last_ckpt >= r.o.ckpt_interval_ms) {
                if (since_ckpt && checkpoint(&r) < 0) goto done;
                since_ckpt = 0;
                last_ckpt = t;
                r.rd.deadline = t + r.o.ckpt_interval_ms;
            }
            if (flush_out(&r) < 0) goto done;
            continue;
        }
        if (got < 0) {
            fprintf(stderr, "vigil replay: reading %s: %s\n", r.o.input, strerror(errno));
            goto done;
        }
        if (got == 0) break;
        /* a last line without newline (the input may still be being written): the state
         * and output before it are checkpointed, and it is decided after the checkpoint,
         * as a line, so that a resume cuts its output back and reads it again whole */
        if (r.rd.cut && r.store && checkpoint(&r) < 0) goto done;
        r.lines++;
        if (oversize) pf.n = 0, pf.scan = r.rd.pos;
        else pf_step(&r, &pf, line_at);
        vg_outcome_t oc;
        size_t before = r.out.len;
        vg_pipeline_t *pl = r.parts && !oversize ? route(&r, line, len) : r.pl;
        int rc = !oversize ? vg_pipeline_line(pl, line, len, &r.out, &oc)
                 : r.rd.head_len ? vg_pipeline_oversize_head(r.pl, oversize, r.rd.head,
                                                             r.rd.head_len, &r.out)
                                 : vg_pipeline_oversize_head(r.pl, oversize, line, len, &r.out);
        if (rc == VG_ESTORE && r.store) {
            fprintf(stderr, "vigil replay: line %" PRIu64 ": the state in %s is damaged: one "
                    "of its records (an account's state, window rows or dedupe records) could "
                    "not be read back; it cannot be used: restore a copy of %s, or start again "
                    "with a new --state directory\n", r.lines, r.o.state, r.o.state);
            goto done;
        }
        if (rc) {
            fprintf(stderr, "vigil replay: line %" PRIu64 ": %s\n", r.lines, vg_strerror(rc));
            goto done;
        }
        r.out_len += r.out.len - before;
        if (r.rd.cut) break;   /* the input's end: no checkpoint after this line */
        if (r.out.len >= OUT_FLUSH && flush_out(&r) < 0) goto done;
        since_ckpt++;
        if ((r.lines & 1023) == 0) {
            int64_t t = now_ms();
            if (r.store && (since_ckpt >= r.o.ckpt_every || t - last_ckpt >= r.o.ckpt_interval_ms)) {
                if (checkpoint(&r) < 0) goto done;
                since_ckpt = 0;
                last_ckpt = t;
                r.rd.deadline = t + r.o.ckpt_interval_ms;
            }
            if (tty && t - last_progress >= 500) {
                fprintf(stderr, "\r\033[Kvigil replay: %" PRIu64 " lines, %.0f lines/s", r.lines,
                        (double)r.lines * 1000.0 / (double)(t - t0 + 1));
                last_progress = t;
            }
        } else if (r.store && since_ckpt >= r.o.ckpt_every) {
            if (checkpoint(&r) < 0) goto done;
            since_ckpt = 0;
            last_ckpt = now_ms();
            r.rd.deadline = last_ckpt + r.o.ckpt_interval_ms;
        }
    }
    if (flush_out(&r) < 0) goto done;
    if (r.store && !r.rd.cut && checkpoint(&r) < 0) goto done;
    summary(&r, now_secs() - start, tty);
    status = 0;
done:
    if (r.out_fd > 1) {
        if (close(r.out_fd) < 0 && status == 0) {
            fprintf(stderr, "vigil replay: closing %s: %s\n", r.o.output, strerror(errno));
            status = 1;
        }
    }
    if (r.rd.fd > 0) close(r.rd.fd);
#if defined(__SANITIZE_ADDRESS__)
#define REPLAY_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLAY_SANITIZED 1
#endif
#endif
#ifndef REPLAY_SANITIZED
    /* A successful replay without --state is about to exit: freeing every account's
     * state one allocation at a time cost ~5% of a 1M-event replay (tests/bench), and
     * the process's exit returns it all at once. Only in builds without AddressSanitizer:
     * the Asan build (CI) still frees everything, so its leak checks keep covering the
     * pipeline's teardown. */
    if (status == 0 && !r.store) return status;
#endif
    if (r.parts) {
        for (int p = 1; p < r.o.partitions; p++) vg_pipeline_free(r.parts[p]);
        free(r.parts);
    }
    vg_event_deinit(&r.route_ev);
    vg_pipeline_free(r.pl);
    vg_labels_free(r.labels);
    vg_store_close(r.store);
    vg_prog_unref(r.prog);
    vg_sources_free(&r.src);
    vg_buf_deinit(&r.out);
    free(r.rd.buf);
    free(r.rd.head);
    free(r.o.rules);
    return status;
}
