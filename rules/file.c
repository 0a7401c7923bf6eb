/* file.c - opening a file that is read whole, regular files only (see file.h). */
#include "rules/file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "rules/errors.h"

int vg_file_open(const char *path, struct stat *st, char *errbuf, size_t errlen) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);   /* a FIFO: no wait */
    if (fd < 0) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return VG_EIO;
    }
    struct stat s;
    if (fstat(fd, &s) != 0 || !S_ISREG(s.st_mode)) {
        snprintf(errbuf, errlen, "%s: not a regular file", path);
        close(fd);
        return VG_EIO;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (st) *st = s;
    return fd;
}

FILE *vg_file_fopen(const char *path, char *errbuf, size_t errlen) {
    int fd = vg_file_open(path, NULL, errbuf, errlen);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}
