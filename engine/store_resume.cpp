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
        if (errbuf && errlen) std::snprintf(errbuf, errlen, "%s", st.ToString().c_str());
    } catch (...) {
        if (errbuf && errlen) std::snprintf(errbuf, errlen, "out of memory");
    }
    return VG_ESTORE;
}
