/* evlog: the event log of a run — one line per event, simulated time first ("12.000345678 <what>"), hashed with
 * SHA-256 as it is written (the determinism check compares hashes), optionally written to a file.
 *
 * Contract: lines are formatted into a bounded buffer (longer ones are truncated, deterministically); the hash covers
 * exactly the bytes that the file receives, newline included. evlog_close finalises the hash (hex, 64 chars + NUL).
 */
#ifndef HEKATE_SIM_EVLOG_H
#define HEKATE_SIM_EVLOG_H

#include <stdint.h>
#include <stdio.h>

#include "runtime.h"

typedef struct evlog evlog;

/* path may be NULL: hash only. Returns NULL if the file cannot be created. */
evlog *evlog_open(const char *path);
void evlog_line(evlog *l, hk_time t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t evlog_count(const evlog *l);
/* Finishes the hash into hex[65], closes the file and frees the log. Returns 0, or -1 if writing failed. */
int evlog_close(evlog *l, char hex[65]);

#endif
