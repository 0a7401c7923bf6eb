/* ctl.c - the control store on RocksDB's C API (see ctl.h). */
#include "api/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "rules/errors.h"

struct vg_ctl {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_readoptions_t *ro;
    rocksdb_writeoptions_t *wo;
};

void vg_be64(unsigned char out[8], uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t vg_rd_be64(const unsigned char in[8]) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | in[i];
    return v;
}

vg_ctl_t *vg_ctl_open(const char *dir, char *errbuf, size_t errlen) {
    vg_ctl_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    c->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(c->opts, 1);
    rocksdb_options_set_keep_log_file_num(c->opts, 2);
    rocksdb_options_set_max_open_files(c->opts, 64);
    c->ro = rocksdb_readoptions_create();
    c->wo = rocksdb_writeoptions_create();
    char *err = NULL;
    c->db = rocksdb_open(c->opts, dir, &err);
    if (!c->db) {
        snprintf(errbuf, errlen, "%s", err ? err : "cannot open");
        rocksdb_free(err);
        vg_ctl_close(c);
        return NULL;
    }
    return c;
}

void vg_ctl_close(vg_ctl_t *c) {
    if (!c) return;
    if (c->db) rocksdb_close(c->db);
    if (c->opts) rocksdb_options_destroy(c->opts);
    if (c->ro) rocksdb_readoptions_destroy(c->ro);
    if (c->wo) rocksdb_writeoptions_destroy(c->wo);
    free(c);
}

int vg_ctl_get(vg_ctl_t *c, const void *key, size_t klen, vg_buf_t *out) {
    char *err = NULL;
    size_t vl = 0;
    char *v = rocksdb_get(c->db, c->ro, key, klen, &vl, &err);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    if (!v) return VG_ENOTFOUND;
    vg_buf_clear(out);
    int rc = vg_buf_append(out, v, vl);
    rocksdb_free(v);
    return rc;
}

int vg_ctl_write(vg_ctl_t *c, const vg_ctl_op_t *ops, int n) {
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    for (int i = 0; i < n; i++) {
        if (ops[i].val) rocksdb_writebatch_put(b, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen);
        else rocksdb_writebatch_delete(b, ops[i].key, ops[i].klen);
    }
    char *err = NULL;
    rocksdb_write(c->db, c->wo, b, &err);
    rocksdb_writebatch_destroy(b);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    return 0;
}

int vg_ctl_scan(vg_ctl_t *c, const void *prefix, size_t plen, const void *from, size_t flen,
                vg_ctl_scan_cb cb, void *ctx) {
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, c->ro);
    if (from && flen >= plen) rocksdb_iter_seek(it, from, flen);
    else rocksdb_iter_seek(it, prefix, plen);
    int rc = 0;
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen) != 0) break;
        const char *v = rocksdb_iter_value(it, &vl);
        rc = cb(ctx, k, kl, v, vl);
        if (rc) break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    return rc;
}

int vg_ctl_delete_range(vg_ctl_t *c, const void *from, size_t flen, const void *to,
                        size_t tlen) {
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range(b, from, flen, to, tlen);
    char *err = NULL;
    rocksdb_write(c->db, c->wo, b, &err);
    rocksdb_writebatch_destroy(b);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    return 0;
}
