/* serve_kafka.h - the Kafka pipeline of `vigil serve` (SPEC sections 5 and 7), and the
 * standalone `vigil stream` command that runs it without the HTTP API.
 *
 * vg_serve_kafka_start() starts engine/kafka.h's service for the settings of SPEC
 * section 5 (--kafka BROKERS|embedded, --group, --topic-*, --state, lateness, horizon)
 * plus librdkafka settings passed through ("name=value", as -X of kcat). With
 * `embedded`, librdkafka's mock cluster is started in this process first (topics
 * created with `partitions` partitions) and its address is logged and written to
 * `addr_file` when set.
 *
 * Threading: start/stop from one controlling thread; metrics/ready from any thread.
 * Ownership: the caller keeps its program and lists (the service takes references);
 * every string is copied.
 */
#ifndef VG_SERVE_KAFKA_H
#define VG_SERVE_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "engine/jsonout.h"
#include "engine/kafka.h"
#include "rules/lists.h"
#include "rules/program.h"

typedef struct vg_serve_kafka vg_serve_kafka_t;

typedef struct vg_serve_kafka_cfg {
    const char *kafka;            /* bootstrap servers or "embedded"; required */
    const char *group;            /* NULL: "vigil" */
    const char *changelog;        /* the state changelog topic; NULL: GROUP.changelog;
                                     "off": none */
    const char *topic_labels;     /* the labels topic; NULL: GROUP.labels; "off": none */
    const char *topic_in, *topic_alerts, *topic_decisions, *topic_dlq;  /* NULL: defaults
                                     (decisions: none) */
    const char *state;            /* state directory; required */
    int64_t lateness_ms, dedupe_horizon_ms;   /* < 0: defaults 1h, 24h; 0 is a value */
    int64_t future_ms;            /* 0: default 5m; < 0: off */
    int64_t checkpoint_ms;        /* <= 0: 1s */
    int threads;                  /* <= 0: 2 */
    int no_sync;                  /* 1: no fsync at checkpoints */
    size_t mem_budget;            /* per partition; 0: unlimited */
    int anomaly;                  /* vg_pipeline_opts_t.anomaly */
    const char *const *kafka_conf;    /* "name=value" librdkafka settings, NULL-terminated */
    int partitions;               /* embedded: partitions per topic (<= 0: 8) */
    const char *addr_file;        /* embedded: write the bootstrap address here */
    int64_t ruleset_version;      /* the decisions' "ruleset" (serve: 0 while no module) */
    int quiet;
    void (*on_assign)(void *ctx, int32_t partition);   /* NULL: none (engine/kafka.h) */
    void *on_assign_ctx;
    void (*on_label)(void *ctx, const vg_label_t *lb, const char *rec, size_t len);
    void *on_label_ctx;                                 /* NULL: none (engine/kafka.h) */
} vg_serve_kafka_cfg_t;

/* Checks the topic settings before anything starts: every topic the service reads or
 * writes (input, alerts, dead letters, decisions, changelog, labels, GROUP.erasures) must
 * be a valid Kafka topic name and differ from the others (a dead-letter topic that is
 * the input would feed every rejected message back as input, wrapped again each time).
 * Returns 0, or -1 with the reason in errbuf (a usage error). */
int vg_serve_kafka_check(const vg_serve_kafka_cfg_t *cfg, char *errbuf, size_t errlen);

/* Starts the pipeline (vg_serve_kafka_check() first). Returns NULL with a reason in errbuf. Stop and free with
 * vg_serve_kafka_stop(). */
vg_serve_kafka_t *vg_serve_kafka_start(const vg_serve_kafka_cfg_t *cfg, vg_program_t *prog,
                                       vg_lists_t *lists, char *errbuf, size_t errlen);

/* Stops gracefully (acknowledged output, checkpoint, commit, leave the group), frees.
 * Returns 0 when it stopped cleanly, VG_EIO when the service had failed (state is at
 * its last checkpoint). Accepts NULL (returns 0). */
int vg_serve_kafka_stop(vg_serve_kafka_t *s);

/* The service itself (vg_kafka_score); borrowed, valid until vg_serve_kafka_stop. */
vg_kafka_t *vg_serve_kafka_engine(vg_serve_kafka_t *s);

/* 1 when the service failed and should be restarted. */
int vg_serve_kafka_failed(const vg_serve_kafka_t *s);
/* 1 once every consumer has its first assignment (GET /readyz). */
int vg_serve_kafka_ready(const vg_serve_kafka_t *s);
/* Appends the vigil_kafka_* metrics (Prometheus text). 0 or VG_ENOMEM. */
int vg_serve_kafka_metrics(const vg_serve_kafka_t *s, vg_buf_t *out);
/* The pipelines follow a rule change (vg_kafka_set_program) or a list change. */
void vg_serve_kafka_set_program(vg_serve_kafka_t *s, vg_program_t *p, int64_t ruleset);
void vg_serve_kafka_set_lists(vg_serve_kafka_t *s, vg_lists_t *lists);
/* The bootstrap servers in use (the embedded broker's address with "embedded"). */
const char *vg_serve_kafka_brokers(const vg_serve_kafka_t *s);

/* `vigil stream`: the Kafka pipeline alone (see --help). Exit 0 on a clean stop, 1 on
 * failure, 2 on a usage error. */
int vg_cmd_stream(int argc, char **argv);

#endif
