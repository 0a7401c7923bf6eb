/* file.h - opening a file that is read whole: a rule module, a --lists, --labels or
 * --truth file, a config file, a TLS PEM file.
 *
 * Only a regular file is opened: a FIFO, a device (/dev/zero) or a directory given by
 * mistake is refused at once with "PATH: not a regular file" (a FIFO blocked until a
 * writer came, /dev/zero grew the reader's buffer without end). The open itself does not
 * block (O_NONBLOCK, cleared once the file is known to be regular). In rules/ because
 * every layer reads such files (STYLE.md: api -> engine -> rules). No state; reentrant.
 */
#ifndef VG_FILE_H
#define VG_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

/* Opens `path` read-only (close-on-exec) if it is a regular file. Returns the descriptor,
 * with *st its fstat() when st is given; or VG_EIO with "PATH: reason" in errbuf (the
 * system's reason, or "not a regular file"). The caller closes the descriptor. */
int vg_file_open(const char *path, struct stat *st, char *errbuf, size_t errlen);

/* The same as a stdio stream ("rb"). Returns it, or NULL with "PATH: reason" in errbuf.
 * The caller closes it with fclose(). */
FILE *vg_file_fopen(const char *path, char *errbuf, size_t errlen);

#endif
