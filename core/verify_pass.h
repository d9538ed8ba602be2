/* verify_pass: the pacing and the progress of a background verification pass (`--verify=full`, `hekatectl verify`;
 * docs/design.md §13), pure: time is given by the caller (the seeder passes rt->now()), nothing is read or hashed
 * here. The seeder (seeder_vpass.c) chooses the pieces; this module says when the next may start and what to report.
 *
 * Contract
 * --------
 * Pacing is a virtual clock: issuing a piece of n bytes moves `next_at` to max(next_at, now) + n / rate seconds
 * (integer nanoseconds, the remainder carried, so the average rate is exact); a piece may start when now >= next_at
 * and fewer than max_inflight pass pieces are being checked. Time not used is not saved up (no burst after an idle
 * spell beyond the one piece). Pieces the pass finds already known (good or bad, or checked by a lazy verify at that
 * moment) cost no time: hk_vpass_skip counts them done.
 * Progress: torrents and bytes queued (total) and done; bytes actually hashed by the pass (checked) over the time
 * since the pass started give the rate and the ETA. A report is due every `every` nanoseconds while active.
 * Limits: 1 <= rate <= HK_VPASS_RATE_MAX (hk_vpass_init clamps); max_inflight >= 1.
 */
#ifndef HEKATE_VERIFY_PASS_H
#define HEKATE_VERIFY_PASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#define HK_VPASS_RATE_MAX (1ull << 34) /* 16 GiB/s: "as fast as the disk threads go"; (rate - 1) x 10^9 fits 64 bits */

typedef struct hk_vpass {
    uint64_t rate;               /* bytes per second */
    uint64_t carry;              /* byte-nanoseconds not yet turned into time (< rate) */
    hk_time next_at;             /* the earliest start of the next piece */
    uint32_t inflight, max_inflight;
    bool active;
    hk_time started, reported;   /* when the pass began, when progress was last reported */
    uint32_t torrents_total, torrents_done;
    uint64_t bytes_total, bytes_done, bytes_checked;
} hk_vpass;

/* An idle pass (no work) with this rate and bound on pieces in flight. */
void hk_vpass_init(hk_vpass *p, uint64_t rate, uint32_t max_inflight);
/* A new rate from now on (clamped; the piece under way keeps its time). */
void hk_vpass_set_rate(hk_vpass *p, uint64_t rate);
/* Work queued: one torrent of `bytes` bytes. An idle pass becomes active (its counters start again from zero). */
void hk_vpass_add(hk_vpass *p, uint64_t bytes, hk_time now);
/* true when a piece may start now. */
bool hk_vpass_may_issue(const hk_vpass *p, hk_time now);
/* A piece of n bytes started now: paced, counted in flight. */
void hk_vpass_issued(hk_vpass *p, uint64_t n, hk_time now);
/* A piece of n bytes the pass started came back: checked (counted done) unless `again` (it will be checked again). */
void hk_vpass_completed(hk_vpass *p, uint64_t n, bool again);
/* n bytes found already known: done without hashing. */
void hk_vpass_skip(hk_vpass *p, uint64_t n);
/* A queued torrent was finished (or dropped: its remaining bytes count done). */
void hk_vpass_torrent_done(hk_vpass *p, uint64_t remaining);
/* The pass has nothing queued and nothing in flight: it becomes idle. */
void hk_vpass_finish(hk_vpass *p);
/* When the pass wants to be woken to start a piece: next_at when pacing holds it back, HK_TIME_NEVER when idle or
 * every piece slot is busy (a completion wakes it). */
hk_time hk_vpass_wake(const hk_vpass *p, hk_time now);
/* true (and the report clock reset) when a progress report is due now. */
bool hk_vpass_report_due(hk_vpass *p, hk_time now, hk_time every);
/* Hashing rate so far in bytes per second (0 before any time passed). */
uint64_t hk_vpass_rate_now(const hk_vpass *p, hk_time now);
/* "verify: 3/10 torrents, 1.2 GiB of 4.0 GiB, 95.3 MiB/s, ETA 30 s" into buf (always terminated). Returns buf. */
char *hk_vpass_format(const hk_vpass *p, hk_time now, char *buf, size_t len);

#endif
