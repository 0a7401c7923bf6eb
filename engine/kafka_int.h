/* kafka_int.h - private to engine/kafka.c and engine/kafka_util.c: helpers that read a
 * decision line (SPEC section 3, as the pipeline writes it) and build output records.
 * All are pure functions of their arguments; none can fail unless said.
 */
#ifndef VG_KAFKA_INT_H
#define VG_KAFKA_INT_H

#include <stddef.h>

#include "engine/jsonout.h"

#define VG_KAFKA_NB 16   /* buckets of the latency histogram (vg_kafka_latency_bounds_ms) */

/* With i at an opening quote of s[0..n): the index past the closing quote (or n). */
size_t vg_kafka_str_end(const char *s, size_t n, size_t i);

/* The highest severity ("low".."critical") among the fired active rules of a decision
 * line; "medium" when none says. Returns a static string. */
const char *vg_kafka_max_severity(const char *d, size_t n);

/* Points *id and *acc (borrowed from d) at the escaped text of the decision's "id" and
 * "account" (the line starts {"id":"..","account":".."). 0, or -1 when it does not. */
int vg_kafka_dec_id_account(const char *d, size_t n, const char **id, size_t *il,
                            const char **acc, size_t *al);

/* 0 allow, 1 review, 2 block, 3 alert (allow when absent). */
int vg_kafka_decision_index(const char *d, size_t n);

/* Appends the standard base64 of s[0..n) to b. 0 or VG_ENOMEM. */
int vg_kafka_put_b64(vg_buf_t *b, const unsigned char *s, size_t n);

#endif
