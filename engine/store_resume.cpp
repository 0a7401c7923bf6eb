/* store_resume.cpp - DB::Resume() for a RocksDB handle of the C API (engine/store.h).
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
