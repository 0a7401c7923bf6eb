/* errors.h - error codes shared by every vigil module.
 *
 * Functions that return int return 0 on success or one of these negative codes;
 * vg_strerror() turns a code into a short message. Detail goes into the caller's errbuf.
 */
#ifndef VG_ERRORS_H
#define VG_ERRORS_H

#define VG_ERROR_LIST(X)                       \
    X(VG_ENOMEM, -1, "out of memory")          \
    X(VG_EINVAL, -2, "invalid argument")       \
    X(VG_EIO, -3, "input/output error")        \
    X(VG_ESTORE, -4, "state store error")      \
    X(VG_ECOMPILE, -5, "rules do not compile") \
    X(VG_ELIMIT, -6, "limit exceeded")         \
    X(VG_ENOTFOUND, -7, "not found")           \
    X(VG_EMISMATCH, -8, "state does not match this input")                   \
    X(VG_ETIMEOUT, -9, "no answer in time (whether it was done is unknown)") \
    X(VG_ESTALE, -10, "changed meanwhile: retry on the new state")          \
    X(VG_EAGAIN, -11, "not ready yet: retry")                                 \
    X(VG_EREMOTE, -12, "the remote store answered an error")

enum {
#define VG_ERR_ENUM(name, val, msg) name = val,
    VG_ERROR_LIST(VG_ERR_ENUM)
#undef VG_ERR_ENUM
};

/* Returns a static string for a code. Can't fail. */
const char *vg_strerror(int code);

#endif
