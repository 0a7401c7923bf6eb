/* errors.c - messages for the VG_E* codes. */
#include "rules/errors.h"

const char *vg_strerror(int code) {
    switch (code) {
    case 0: return "success";
#define VG_ERR_CASE(name, val, msg) case val: return msg;
        VG_ERROR_LIST(VG_ERR_CASE)
#undef VG_ERR_CASE
    default: return "unknown error";
    }
}
