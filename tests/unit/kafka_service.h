/* kafka_service.h - shared by the unit tests that run the Kafka service against the
 * in-process mock cluster (test_kafka_fit.c, test_kafka_start.c). Include after
 * <cmocka.h>. */
#ifndef VIGIL_TESTS_KAFKA_SERVICE_H
#define VIGIL_TESTS_KAFKA_SERVICE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kafka.h"
#include "rules/program.h"

/* librdkafka's mock cluster, one broker, with `topics` ("name:partitions", NULL-terminated);
 * the test fails when it does not start. */
static inline vg_kafka_mock_t *start_mock(const char *const *topics) {
    char err[512];
    vg_kafka_mock_t *m = vg_kafka_mock_new(1, topics, 1, err, sizeof(err));
    if (!m) fail_msg("mock cluster: %s", err);
    return m;
}

/* The rules `src` compiled (the test fails when they do not compile). */
static inline vg_program_t *compile_rules(const char *src) {
    vg_source_t s = {"t.vrl", src, strlen(src)};
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *p = vg_prog_compile(&s, 1, &d);
    vg_diags_deinit(&d);
    assert_non_null(p);
    return p;
}

/* Frees the service, its program and the mock cluster, and removes the state
 * directory (made with mkdtemp). */
static inline void end_service(vg_kafka_t *k, vg_program_t *prog, vg_kafka_mock_t *mock,
                               const char *dir) {
    vg_kafka_free(k);
    vg_prog_unref(prog);
    vg_kafka_mock_free(mock);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

#endif
