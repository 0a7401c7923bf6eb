/* serve.c - `vigil serve`: starts the HTTP API over the engine and waits for SIGTERM or
 * SIGINT, checkpointing the state and expiring old alerts every checkpoint interval.
 *
 * Signals are blocked in every thread and taken synchronously by the main thread
 * (sigtimedwait), so that no handler runs inside a worker and no global flag is needed.
 * A stop drains the HTTP workers, then writes a final synchronous checkpoint.
 */
#include "api/serve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/config.h"
#include "api/http.h"
#include "api/redis.h"

int vg_cmd_serve(int argc, char **argv) {
    vg_config_t *cfg = NULL;
    int rc = vg_config_load(argc, argv, &cfg);
    if (rc) return rc < 0 ? 0 : rc;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);   /* inherited by every thread started below */
    signal(SIGPIPE, SIG_IGN);

    char err[1024];
    vg_api_t *a = vg_api_new(cfg, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "vigil serve: %s\n", err);
        vg_config_free(cfg);
        return 1;
    }
    if (vg_api_listen(a, err, sizeof(err)) != 0) {
        fprintf(stderr, "vigil serve: %s\n", err);
        vg_api_free(a);
        vg_config_free(cfg);
        return 1;
    }
    const char *colon = strrchr(cfg->http, ':');
    fprintf(stderr, "vigil serve: listening on http://%.*s:%d (state %s, ruleset %lld, %d shard%s, "
                    "%d threads%s%s, auth %s)\n",
            (int)(colon - cfg->http), cfg->http, vg_api_port(a), cfg->state,
            (long long)vg_engine_version(a->eng), cfg->shards, cfg->shards == 1 ? "" : "s",
            cfg->threads, cfg->redis ? ", redis " : "", cfg->redis ? cfg->redis : "",
            cfg->ntokens ? "bearer tokens" : "off (no tokens configured)");
    atomic_store(&a->ready, 1);
    int64_t every = cfg->checkpoint_ms > 0 ? cfg->checkpoint_ms : 1000;
    for (;;) {
        struct timespec ts = {(time_t)(every / 1000), (long)(every % 1000) * 1000000L};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            fprintf(stderr, "vigil serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR) break;
        vg_api_tick(a, vg_now_ms());
    }
    atomic_store(&a->ready, 0);
    vg_api_stop(a);
    vg_api_free(a);   /* final checkpoint, synchronous */
    vg_config_free(cfg);
    fprintf(stderr, "vigil serve: stopped\n");
    return 0;
}
