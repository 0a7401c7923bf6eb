/* cli.h - helpers shared by the `vigil` subcommands: durations, sizes, rule sources.
 *
 * Nothing here keeps state; every function is reentrant.
 */
#ifndef VG_CLI_H
#define VG_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "rules/program.h"

/* The longest duration any option or setting takes: 36500d (100 years). Every duration
 * is bounded by it, so that none overflows where it is added to event times or turned
 * into microseconds (a duration near INT64_MAX / 4 was taken before). */
#define VG_CLI_DURATION_MAX_MS (36500LL * 86400 * 1000)

/* Parses a duration like "500ms", "30s", "10m", "1h", "7d" (a non-negative integer and a
 * unit; "0" alone is accepted) into milliseconds. Returns 0, VG_EINVAL (not a duration)
 * or VG_ELIMIT (longer than VG_CLI_DURATION_MAX_MS). */
int vg_cli_duration(const char *s, int64_t *ms);

/* Parses the value of a duration option or setting and checks it is within min_ms..max_ms
 * (max_ms <= 0 or over VG_CLI_DURATION_MAX_MS: VG_CLI_DURATION_MAX_MS). Returns 0, or
 * VG_EINVAL with the reason in errbuf, to be printed after "vigil CMD: OPTION: ":
 * `bad duration 'x' (...)`, `'0s': must be positive (e.g. 1s)` (min_ms 1), `'1ms' is too
 * short (at least 1s)`, `'4294968s' is too long (at most 49d)`. */
int vg_cli_duration_in(const char *s, int64_t min_ms, int64_t max_ms, int64_t *ms, char *errbuf,
                       size_t errlen);

/* Prints on stderr why getopt_long (with an optstring starting with ':') returned `c`
 * ('?' or ':') for the option it just read: `vigil CMD: unknown option '-x'`, `option
 * '--rules' needs a value`, `option '--no-sync' takes no value`, `option '--l' is
 * ambiguous`. `lo` is the long option table given to getopt_long. Can't fail. */
struct option;
void vg_cli_bad_option(const char *cmd, int c, char *const *argv, const struct option *lo);

/* Whether `value` is an empty value given to an option whose short letter `c` is in
 * `which` (the options naming files: an empty one named no file, "vigil CMD: : No such
 * file or directory"); then prints `vigil CMD: --NAME needs a value, not an empty string`
 * (a usage error) and returns 1. Else 0. */
int vg_cli_empty_value(const char *cmd, int c, const char *value, const char *which,
                       const struct option *lo);

/* Parses a size like "512", "64k", "256M", "2G" (bytes, binary units). 0 or VG_EINVAL. */
int vg_cli_size(const char *s, size_t *bytes);

/* The rule sources of a ruleset: PATHs are .vrl files or directories (every *.vrl file
 * in it, sorted by name, not recursive). */
typedef struct vg_sources {
    vg_source_t *v;
    int n;
} vg_sources_t;

/* The module name the rule file at `path` gives: its base name without ".vrl" (as the
 * compiler names the module in decisions), copied to name (cut to cap). Returns 1 when it
 * is a module name vigil serve and the API accept (1..64 letters, digits, _ or -:
 * vg_api_valid_module_name), else 0 ("a b.vrl", ".vrl", 65 characters). Can't fail. */
int vg_cli_module_name(const char *path, char *name, size_t cap);

/* Reads every source. Returns 0, or VG_EIO/VG_EINVAL with a reason in errbuf (missing
 * file, not a regular file, a directory without .vrl files, unreadable file, the same
 * file given twice, a file name that gives no module name: vg_cli_module_name), or
 * VG_ECOMPILE for a module over VG_RULES_MAX_SOURCE bytes, with errbuf the compiler's
 * diagnostic `PATH:1:1: error: module too large (...)` (the file is not read). Free with
 * vg_sources_free (also after a failure: it is then empty). */
int vg_sources_load(vg_sources_t *s, char *const *paths, int npaths, char *errbuf,
                    size_t errlen);
void vg_sources_free(vg_sources_t *s);

/* Compiles the sources, printing diagnostics to stderr: every diagnostic when
 * n_warnings is given (vigil check), else the errors and a count of warnings.
 * Returns the program or NULL. */
vg_program_t *vg_cli_compile(const vg_sources_t *s, int *n_errors, int *n_warnings);

int vg_cmd_replay(int argc, char **argv);
int vg_cmd_check(int argc, char **argv);

#endif
