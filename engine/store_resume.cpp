/* store_resume.cpp - DB::Resume() and an erasure's purge for a RocksDB handle of the C
 * API (engine/store.h).
 *
 * After a write fails for lack of space (or another I/O error), RocksDB keeps the
 * database in a background-error state: every later write fails with the same error,
 * even once space is back, until DB::Resume() succeeds. RocksDB 7.8's C API (Debian 12)
 * has no rocksdb_resume(), so this reaches the DB behind a rocksdb_t: in c.cc that
 * struct is `struct rocksdb_t { DB* rep; };`, unchanged since the C API began, and
 * mirrored here. tests/integration/test_disk_full.sh fills a small file system under
 * vigil, frees it, and checks that checkpoints are written again: it fails if this
 * stops working.
 */
#include <rocksdb/c.h>
extern "C" {
#include "engine/store.h"
#include "rules/errors.h"
}

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <cstdio>
#include <string>

struct rocksdb_t {
    rocksdb::DB *rep;
};

extern "C" int vg_rocksdb_resume(rocksdb_t *db, char *errbuf, size_t errlen) {
    try {
        rocksdb::Status st = db->rep->Resume();
        if (st.ok()) return 0;
        if (st.IsBusy() && errbuf && errlen) {
            /* after "no space", RocksDB's own recovery waits until the file system has
             * room for the write buffers it reserved at open (DBImpl::Open reserves
             * write_buffer_size x max_write_buffer_number), and Resume() is refused
             * meanwhile with an empty "Resource busy" */
            rocksdb::Options o = db->rep->GetOptions();
            double mb = (double)o.write_buffer_size * o.max_write_buffer_number / 1048576.0;
            std::snprintf(errbuf, errlen, "waiting for room: RocksDB takes writes again once "
                          "the file system has %.0f MB free", mb);
            return VG_ESTORE;
        }
        if (errbuf && errlen) std::snprintf(errbuf, errlen, "%s", st.ToString().c_str());
    } catch (...) {
        if (errbuf && errlen) std::snprintf(errbuf, errlen, "out of memory");
    }
    return VG_ESTORE;
}

static int purge_fail(const char *what, const rocksdb::Status &st, char *errbuf,
                      size_t errlen) {
    if (errbuf && errlen)
        std::snprintf(errbuf, errlen, "purging the erased records: %s: %s", what,
                      st.ToString().c_str());
    return VG_ESTORE;
}

/* Flush (the WAL files holding the records retired), compaction of each range to the
 * last level with bottommost files rewritten too (kForce: values and tombstones gone),
 * a flushed tombstone of the marker (one more change of files, so that the MANIFEST
 * that listed the compacted files is replaced: max_manifest_file_size is 0), then file
 * deletions disabled and enabled again: EnableFileDeletions finds and deletes every
 * obsolete file (WAL, SST, MANIFEST) in this thread before it returns. */
extern "C" int vg_rocksdb_purge(rocksdb_t *db, const vg_key_range_t *r, int n, char *errbuf,
                                size_t errlen) {
    try {
        rocksdb::DB *d = db->rep;
        rocksdb::FlushOptions fo;
        fo.wait = true;
        fo.allow_write_stall = true;
        rocksdb::Status st = d->Flush(fo);
        if (!st.ok()) return purge_fail("flush", st, errbuf, errlen);
        rocksdb::CompactRangeOptions co;
        co.exclusive_manual_compaction = false;   /* background compactions go on */
        co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
        for (int i = 0; i < n; i++) {
            rocksdb::Slice b((const char *)r[i].from, r[i].flen);
            rocksdb::Slice e((const char *)r[i].to, r[i].to ? r[i].tlen : 0);
            st = d->CompactRange(co, &b, r[i].to ? &e : nullptr);
            if (!st.ok()) return purge_fail("compaction", st, errbuf, errlen);
        }
        st = d->Delete(rocksdb::WriteOptions(), rocksdb::Slice(VG_PURGE_MARKER));
        if (st.ok()) st = d->Flush(fo);
        if (!st.ok()) return purge_fail("flush", st, errbuf, errlen);
        st = d->DisableFileDeletions();
        if (!st.ok()) return purge_fail("deleting obsolete files", st, errbuf, errlen);
        st = d->EnableFileDeletions(false);
        if (!st.ok()) return purge_fail("deleting obsolete files", st, errbuf, errlen);
        return 0;
    } catch (...) {
        if (errbuf && errlen) std::snprintf(errbuf, errlen, "out of memory");
    }
    return VG_ESTORE;
}
