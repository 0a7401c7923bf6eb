/* serve.h - `vigil serve`: the service (HTTP API, Redis control plane when configured).
 * See api/config.h for its settings and docs/api.md for the API. */
#ifndef VG_SERVE_H
#define VG_SERVE_H

/* Runs the service until SIGTERM or SIGINT. Exit status: 0 after a clean stop, 1 when
 * it cannot start (state, rules, address), 2 on a usage error. */
int vg_cmd_serve(int argc, char **argv);

#endif
